//! Which SIMD instruction set the non-GEMM kernels run on, detected at run time. (`gemm` has
//! its own, finer choice of micro-kernels.)

use std::sync::OnceLock;

/// An implementation of a kernel: AVX-512 code, or plain loops that run anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F (masked loads and stores do the edges of each run).
    Avx512,
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
        if is_x86_feature_detected!("avx512f") {
            isas.push(Isa::Avx512);
        }
        isas.push(Isa::Portable);
        isas
    }
}
