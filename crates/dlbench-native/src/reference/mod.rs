//! The f64 reference interpreter.
