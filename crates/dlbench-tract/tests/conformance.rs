//! The shared conformance suite on tract: every op case and the four seed specs, forward pass
//! against the f64 reference (tract infers only: the gradient and training checks do not
//! apply, and its optimized plan returns no intermediates).

use dlbench_conformance::assert_conforms;
use dlbench_reference::ReferenceBackend;
use dlbench_tract::TractBackend;

/// Cases expected to fail on tract, each with the reason: none. (tract 0.23.9 cannot run a
/// one-direction LSTM whose `Y_c` is read with `Y` or `Y_h`; the session computes `Y_c` with a
/// second LSTM node, see `split_cell_state`, and the LSTM cases pass.)
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn conforms() {
    let report = assert_conforms(&TractBackend, &ReferenceBackend, EXPECTED_FAILURES);
    for case in &report.cases {
        eprintln!("{}", case.describe());
    }
}
