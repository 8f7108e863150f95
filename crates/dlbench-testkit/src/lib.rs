//! dlbench-testkit: backends that are wrong on purpose, to prove that the harness catches what
//! real frameworks get wrong. Each wraps the f64 reference and breaks one thing:
//! [`faults`] break the process (abort, hang, panic, error) to test containment;
//! [`mutants`] compute wrong numbers the way real adapter bugs do (a transposed Dense weight,
//! swapped LSTM gates, floor instead of ceil pooling) to test agreement and localization;
//! [`twins`] compute right, one of them 10% slower, to test that `dlbench compare` tells a real
//! slowdown from noise.
//!
//! [`python`] finds the Python with torch that golden and round-trip tests run.
//!
//! They are never in a normal build of `dlbench`: the binary registers them only with its
//! `test-backends` feature, which the test command enables.

use dlbench_core::Backend;

pub mod faults;
pub mod mutants;
pub mod python;
pub mod twins;
mod wrapped;

/// Every faulty backend, by its `test-...` name.
pub fn backends() -> Vec<Box<dyn Backend>> {
    let mut all = faults::backends();
    all.extend(mutants::backends());
    all.extend(twins::backends());
    all
}
