//! The shared conformance suite on the native f32 engine: every op case and the seed specs,
//! forward (with intermediates), gradients and training steps, against the f64 reference.

use dlbench_conformance::assert_conforms;
use dlbench_native::engine::NativeBackend;
use dlbench_reference::ReferenceBackend;

#[test]
fn conforms() {
    let report = assert_conforms(&NativeBackend, &ReferenceBackend, &[]);
    for case in &report.cases {
        eprintln!("{}", case.describe());
    }
}
