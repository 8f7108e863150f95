//! The machine and software a run happened on, for the results record.

use std::collections::BTreeMap;

use dlbench_core::Device;
use serde::{Deserialize, Serialize};

/// Where and with what a run was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// The CPU model (`model name` of `/proc/cpuinfo`), or the architecture when unknown.
    pub cpu: String,
    /// The SIMD features that decide kernel choice (avx2, fma, avx512f...).
    pub cpu_flags: Vec<String>,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Distribution, kernel release and architecture, e.g. `Ubuntu 24.04 (Linux 6.8.0, x86_64)`.
    pub os: String,
    /// `rustc --version` of the compiler that built dlbench.
    pub rustc: String,
    /// dlbench and each framework used, by name.
    pub versions: BTreeMap<String, String>,
    /// The git commit of the working tree, when run inside one.
    pub git: Option<String>,
    /// `DLBENCH_ISA`, when set: the cap on the native kernels' instruction set (each run's
    /// `kernels` says what ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isa_cap: Option<String>,
}

const INTERESTING_FLAGS: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "neon",
    "asimd",
];

fn cpuinfo() -> (String, Vec<String>) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name")
        .or_else(|| field("Model"))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags = field("flags")
        .or_else(|| field("Features"))
        .unwrap_or_default();
    let present: Vec<String> = INTERESTING_FLAGS
        .iter()
        .filter(|f| flags.split_whitespace().any(|g| g == **f))
        .map(|f| f.to_string())
        .collect();
    (model, present)
}

fn os() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p} (Linux {k}, {})", std::env::consts::ARCH),
        (Some(p), None) => p,
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}

impl Environment {
    /// Reads this machine; `versions` names dlbench and every framework in the run.
    pub fn capture(versions: BTreeMap<String, String>) -> Self {
        let (cpu, cpu_flags) = cpuinfo();
        Environment {
            cpu,
            cpu_flags,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: os(),
            rustc: env!("DLBENCH_RUSTC_VERSION").to_string(),
            versions,
            git: git_commit(),
            isa_cap: std::env::var("DLBENCH_ISA")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }
}

/// The devices of this machine: the CPU, and a CUDA device per NVIDIA GPU the driver lists
/// (`/proc/driver/nvidia/gpus`), numbered from 0 as CUDA numbers them.
pub fn devices() -> Vec<Device> {
    let gpus = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .map(|dir| dir.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    std::iter::once(Device::Cpu)
        .chain((0..gpus).map(Device::Cuda))
        .collect()
}

/// The peak resident set size of this process so far (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
