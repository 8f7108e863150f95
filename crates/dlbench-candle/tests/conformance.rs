//! The shared conformance suite on candle: every op case and the four seed specs, forward
//! (with intermediates), gradients and 20 training steps, against the f64 reference, on every
//! device this build of candle finds (the CPU; CUDA devices with the `cuda` feature).

use dlbench_candle::CandleBackend;
use dlbench_conformance::assert_conforms_on;
use dlbench_core::Backend;
use dlbench_reference::ReferenceBackend;

/// Cases candle does not pass, each with the reason. `assert_conforms_on` fails on a listed
/// case that passes, so this list stays honest.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn conforms_on_every_device() {
    for device in CandleBackend.capabilities().devices {
        let report =
            assert_conforms_on(&CandleBackend, device, &ReferenceBackend, EXPECTED_FAILURES);
        eprintln!("{}:", report.backend);
        for case in &report.cases {
            eprintln!("{}", case.describe());
        }
    }
}
