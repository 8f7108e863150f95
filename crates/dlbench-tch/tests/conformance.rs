//! The shared conformance suite on libtorch: every op case and the four seed specs, forward
//! (with intermediates), gradients and 20 training steps, against the f64 reference.

use dlbench_harness::conformance::assert_conforms;
use dlbench_native::reference::ReferenceBackend;
use dlbench_tch::TchBackend;

#[test]
fn conforms() {
    let report = assert_conforms(&TchBackend, &ReferenceBackend, &[]);
    for case in &report.cases {
        eprintln!("{}", case.describe());
    }
}
