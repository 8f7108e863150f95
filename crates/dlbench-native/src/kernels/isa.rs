//! Which SIMD instruction set the kernels run on, detected at run time, for every kernel
//! family (`gemm` picks its micro-kernel by it). A kernel without code for an instruction
//! set runs the next one it has, down to the portable loops.

use std::sync::OnceLock;

/// An implementation of a kernel: one SIMD instruction set, or plain loops that run anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F (masked loads and stores do the edges of each run).
    Avx512,
    /// AVX2 + FMA.
    Avx2,
    /// Plain loops: any CPU.
    Portable,
}

impl Isa {
    /// The fastest this CPU supports, detected once.
    pub(crate) fn chosen() -> Isa {
        static CHOSEN: OnceLock<Isa> = OnceLock::new();
        *CHOSEN.get_or_init(|| Isa::available()[0])
    }

    /// Every implementation this CPU can run, fastest first (tests run them all).
    pub(crate) fn available() -> Vec<Isa> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                isas.push(Isa::Avx2);
            }
        }
        isas.push(Isa::Portable);
        isas
    }
}
