//! Which SIMD instruction set the kernels run on, detected at run time, for every kernel
//! family (`gemm` picks its micro-kernel by it). A kernel without code for an instruction
//! set runs the next one it has, down to the portable loops.
//!
//! `DLBENCH_ISA=avx512|avx2|portable` caps the choice, so that the AVX2 path can be tested and
//! measured on an AVX-512 machine, and every path's conformance checked on one machine. A cap
//! above what the CPU has changes nothing: [`kernel_isa`] says what actually runs.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that caps the instruction set of the native kernels.
pub const ISA_VARIABLE: &str = "DLBENCH_ISA";

/// An implementation of a kernel: one SIMD instruction set, or plain loops that run anywhere.
/// Ordered from the least to the most capable, so a cap is an upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain loops: any CPU.
    Portable,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512F (masked loads and stores do the edges of each run).
    Avx512,
}

impl Isa {
    /// Every instruction set, as `DLBENCH_ISA` spells them, most capable first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The name `DLBENCH_ISA` takes and the results record: `avx512`, `avx2`, `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// The fastest the CPU supports within the cap, decided once per process.
    ///
    /// # Panics
    /// When `DLBENCH_ISA` holds an unknown name. Entry points check it first ([`isa_cap`]):
    /// the native backend's `prepare` refuses it and `dlbench` exits with code 2, so a kernel
    /// never runs on an instruction set other than the one asked for.
    pub(crate) fn chosen() -> Isa {
        static CHOSEN: OnceLock<Isa> = OnceLock::new();
        *CHOSEN.get_or_init(|| Isa::available()[0])
    }

    /// Every implementation this CPU can run within the cap, fastest first (the kernel tests
    /// run them all).
    pub fn available() -> Vec<Isa> {
        let cap = isa_cap().unwrap_or_else(|e| panic!("{e}"));
        Isa::detected()
            .into_iter()
            .filter(|isa| cap.is_none_or(|cap| *isa <= cap))
            .collect()
    }

    /// Every implementation this CPU can run, fastest first, whatever the cap.
    pub fn detected() -> Vec<Isa> {
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

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `DLBENCH_ISA` holds a name that is not an instruction set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsaError {
    /// The value found.
    pub value: String,
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ISA_VARIABLE}=`{}`: expected one of avx512, avx2, portable (it caps the \
             instruction set of the native kernels)",
            self.value
        )
    }
}

impl std::error::Error for IsaError {}

/// The cap `DLBENCH_ISA` sets, `None` when it is unset or empty.
pub fn isa_cap() -> Result<Option<Isa>, IsaError> {
    match std::env::var(ISA_VARIABLE) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(value.trim()))
            .map(Some)
            .ok_or(IsaError { value }),
    }
}

/// The instruction set the native kernels run on in this process: the best the CPU has within
/// `DLBENCH_ISA`'s cap.
pub fn kernel_isa() -> Result<Isa, IsaError> {
    isa_cap()?;
    Ok(Isa::chosen())
}

/// Runs `f` compiled for the chosen instruction set: the plain loops of the engine (optimizer
/// updates, gradient formulas, element-wise passes) are built for the baseline x86-64, whose
/// widest vectors are SSE2's four floats. Called from a function with the wider features
/// enabled, `f`'s body is inlined into it and vectorised with them. Two things make that
/// happen: mark the closure `#[inline(always)]` (it is called from three trampolines, and a
/// large one was otherwise left out of line, in SSE2), along with what it calls; and write its
/// loops over slices or indices (`chunks_exact`, `step_by` and `try_into` inlined there stayed
/// scalar, 7x slower). Only the instructions change: without fast-math the compiler neither
/// reorders nor fuses floating-point operations, so every path computes the same bits.
#[inline(always)]
pub fn with_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match Isa::chosen() {
        // SAFETY: a path is only chosen on CPUs that have its features (`Isa::detected`).
        Isa::Avx512 => return unsafe { on_avx512(f) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { on_avx2(f) },
        Isa::Portable => {}
    }
    f()
}

/// `f()`, compiled with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F and AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn on_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()`, compiled with AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn on_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
