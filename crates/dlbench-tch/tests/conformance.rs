//! The shared conformance suite on libtorch: every op case and the four seed specs, forward
//! (with intermediates), gradients and 20 training steps, against the f64 reference — on every
//! device libtorch finds (the CPU, and each CUDA device where there is one).

use dlbench_conformance::assert_conforms_on;
use dlbench_core::Backend;
use dlbench_reference::ReferenceBackend;
use dlbench_tch::TchBackend;

#[test]
fn conforms_on_every_device() {
    for device in TchBackend.capabilities().devices {
        let report = assert_conforms_on(&TchBackend, device, &ReferenceBackend, &[]);
        eprintln!("{}:", report.backend);
        for case in &report.cases {
            eprintln!("{}", case.describe());
        }
    }
}
