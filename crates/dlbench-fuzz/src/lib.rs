//! Fuzzing for dlbench's parsers on stable Rust.
//!
//! Coverage-guided fuzzers (cargo-fuzz, libFuzzer) need a nightly compiler, which the machines
//! dlbench is built on do not have; this crate is the fallback the field uses there: a seeded,
//! structure-aware mutation loop ([`mutate`]) over seed corpora taken from the repository
//! ([`seeds`]), run against each parser exactly as the CLI calls it ([`targets`]).
//!
//! Every input runs in a worker process under guards ([`guard`]): a counting allocator that
//! ends the worker when live heap memory would pass a cap (1 GiB by default), a panic hook,
//! and a watchdog for inputs that run past a time limit (10 s). The supervisor
//! ([`supervise`]) follows the worker, saves the input it died on with the cause, and starts a
//! new worker at the next input. Inputs are a pure function of (corpus, seed, index), so a run
//! resumes exactly and a failure is found again by its index. Inputs that once failed live in
//! `regressions/<target>/` and are replayed by the tests. See `docs/fuzzing.md`.

pub mod coverage;
pub mod guard;
pub mod mutate;
pub mod onnx;
pub mod seeds;
pub mod supervise;
pub mod targets;
pub mod worker;

/// dlbench's memory limit while fuzzing, unless the environment sets `DLBENCH_MAX_MEMORY`: low
/// enough that a parser which honours it stays well under the fuzzer's 1 GiB cap.
pub const FUZZ_MAX_MEMORY: &str = "256M";

pub use supervise::{supervise, Failure, Options, Report};
pub use targets::Target;
pub use worker::{Guards, Inputs};
