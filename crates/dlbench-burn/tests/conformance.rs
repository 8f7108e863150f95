//! The shared conformance suite on burn: every op case and the four seed specs, forward (with
//! intermediates), gradients and 20 training steps, against the f64 reference — on every
//! device this build of burn finds (the CPU, and each GPU with the `cuda` or `wgpu` feature).

use dlbench_burn::BurnBackend;
use dlbench_conformance::assert_conforms_on;
use dlbench_core::Backend;
use dlbench_reference::ReferenceBackend;

/// Cases expected to fail on burn, each with the reason.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn conforms_on_every_device() {
    for device in BurnBackend.capabilities().devices {
        let report = assert_conforms_on(&BurnBackend, device, &ReferenceBackend, EXPECTED_FAILURES);
        eprintln!("{}:", report.backend);
        for case in &report.cases {
            eprintln!("{}", case.describe());
        }
    }
}
