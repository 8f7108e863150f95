//! The shared conformance suite on the native f32 engine: every op case and the seed specs,
//! forward (with intermediates), gradients and training steps, against the f64 reference; on
//! the best instruction set of this machine, then again on each lower one (`DLBENCH_ISA`).

#[path = "support/per_isa.rs"]
mod per_isa;

use dlbench_conformance::assert_conforms;
use dlbench_native::engine::NativeBackend;
use dlbench_reference::ReferenceBackend;

#[test]
fn conforms() {
    per_isa::announce();
    let report = assert_conforms(&NativeBackend, &ReferenceBackend, &[]);
    for case in &report.cases {
        eprintln!("{}", case.describe());
    }
}

#[test]
fn conforms_on_every_other_instruction_set() {
    per_isa::rerun_on_other_isas("conforms");
}
