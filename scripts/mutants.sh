#!/usr/bin/env bash
# Mutation testing of dlbench's numerical code with cargo-mutants: the f64 reference's ops,
# losses and optimizers, and the native engine's ops, losses, optimizers and kernels, each
# against its own crate's tests. docs/mutation-testing.md says how long it takes and lists
# the surviving mutants known to be equivalent.
#
#   scripts/mutants.sh                      # every numerical file (hours on 2 cores)
#   scripts/mutants.sh FILE...              # only these files (paths from the repository root)
#   scripts/mutants.sh FILE... -- ARGS...   # extra cargo-mutants arguments, e.g. --iterate
#
# Results go to mutants.out/<crate>/mutants.out/ (missed.txt, caught.txt, ...). Needs
# `cargo install cargo-mutants --locked`. MUTANTS_JOBS sets cargo-mutants' -j (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is missing: cargo install cargo-mutants --locked" >&2
    exit 1
}

files=()
extra=()
while (($#)); do
    if [[ $1 == -- ]]; then
        shift
        extra=("$@")
        break
    fi
    files+=("$1")
    shift
done
if ((${#files[@]} == 0)); then
    files=(
        crates/dlbench-reference/src/ops/*.rs
        crates/dlbench-reference/src/optim.rs
        crates/dlbench-native/src/engine/ops/*.rs
        crates/dlbench-native/src/engine/ops/conv/parallel.rs
        crates/dlbench-native/src/engine/optim.rs
        crates/dlbench-native/src/kernels/*.rs
        crates/dlbench-native/src/kernels/*/*.rs
    )
fi

ref_files=()
native_files=()
for f in "${files[@]}"; do
    [[ -f $f ]] || { echo "no such file: $f" >&2; exit 1; }
    case $f in
    crates/dlbench-reference/*) ref_files+=("$f") ;;
    crates/dlbench-native/*) native_files+=("$f") ;;
    *) echo "not numerical code of the reference or the engine: $f" >&2; exit 1 ;;
    esac
done

# Settings common to both crates:
# - the `mutants` profile (root Cargo.toml): the test profile without debug info, which
#   halves each mutant's relink; the crates keep their opt-level 3, so the tests stay fast
#   and an incremental rebuild of the one changed codegen unit takes a second or two;
# - -j 1: the machine has 2 cores, and each extra job would pay its own full build;
# - a 60 s test timeout: the selected tests take under 15 s unmutated, so only a mutant
#   that loops (or slows a kernel tenfold) reaches it.
common=(--profile mutants --timeout 60 -j "${MUTANTS_JOBS:-1}" --no-shuffle)

run() {
    local out=$1
    shift
    mkdir -p "mutants.out/$out"
    echo "== cargo mutants $* (results in mutants.out/$out)"
    cargo mutants "${common[@]}" "${extra[@]}" -o "mutants.out/$out" "$@"
}

status=0
if ((${#ref_files[@]})); then
    # The reference's whole suite runs in about 2 s; every test target is selected.
    args=(-p dlbench-reference)
    for f in "${ref_files[@]}"; do args+=(-f "$f"); done
    run reference "${args[@]}" -C --lib -C --tests || status=$?
fi
if ((${#native_files[@]})); then
    # The engine's unit tests (kernels and ops against f64), the shared conformance suite
    # against the reference, and the session tests; not the allocation-counting tests,
    # which check no numbers. The `engine::` filter skips the slow kernel tests, which
    # cannot see a mutant of an engine file, unless a kernel file is mutated.
    args=(-p dlbench-native)
    filter=(engine:: conforms a_training_step_is_sgd)
    for f in "${native_files[@]}"; do
        args+=(-f "$f")
        [[ $f == crates/dlbench-native/src/kernels/* ]] && filter=()
    done
    run native "${args[@]}" \
        -C --lib -C --test=native_conformance -C --test=native_session \
        -- -- "${filter[@]}" || status=$?
fi
# cargo-mutants exits 2 when some mutant survived, 3 on timeouts, 4 if the unmutated tree
# fails its tests.
exit $status
