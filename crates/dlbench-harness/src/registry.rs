//! The harness's view of the backend registry. The binary owns the registry (one cargo feature
//! per adapter) and hands it in as a slice of `&dyn Backend`; this module looks backends up in
//! it by name, picks out the f64 reference ([`REFERENCE`]), and says what a build lacks.

use dlbench_core::Backend;

/// The name of the backend every other one is checked against: the f64 reference.
pub const REFERENCE: &str = "reference";

/// The backend named `name` in `registry`, if this build has it.
pub fn find<'a>(registry: &[&'a dyn Backend], name: &str) -> Option<&'a dyn Backend> {
    registry.iter().copied().find(|b| b.name() == name)
}

/// The agreement oracle in `registry`, if this build has it.
pub fn reference<'a>(registry: &[&'a dyn Backend]) -> Option<&'a dyn Backend> {
    find(registry, REFERENCE)
}

/// What a spec that names no backends compares: every backend in `registry` but the f64
/// reference and the deliberately faulty `test-...` doubles. The reference is the oracle: each
/// run checks its backend against it (forward, gradients, the training trajectory), but it is
/// trained to the end and timed only when named (`--backends reference,...`), because an f64
/// interpreter is no framework a person would choose, and timing it would take most of a run.
pub fn every_backend(registry: &[&dyn Backend]) -> Vec<String> {
    registry
        .iter()
        .map(|b| b.name().to_string())
        .filter(|name| name != REFERENCE && !name.starts_with("test-"))
        .collect()
}

/// Why a run of `name` cannot happen: it is not in `registry`, which lists what is.
pub fn not_built_message(name: &str, registry: &[&dyn Backend]) -> String {
    let built: Vec<&str> = registry.iter().map(|b| b.name()).collect();
    format!(
        "backend `{name}` is not in this build of dlbench (built in: {}); `dlbench list` shows how to add the others",
        built.join(", ")
    )
}
