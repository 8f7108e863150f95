//! The benchmark spec files (YAML).
