#!/usr/bin/env bash
# Runs every dlbench test on a fresh machine: formatting, lints, then the whole workspace,
# including the libtorch (`tch`) backend. It installs what the tests need first: the project's
# virtualenv with torch (scripts/setup-torch.sh; a no-op once done) and Debian's chromium for
# the HTML report's browser test and Debian's dataset-fashion-mnist (apt-get, once). `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== setting up torch (scripts/setup-torch.sh)"
bash scripts/setup-torch.sh
# torch-sys finds libtorch through this virtualenv's python (it runs `python` when VIRTUAL_ENV
# is set); the pip wheel is newer than tch 0.22 expects, hence the bypass.
export VIRTUAL_ENV="$PWD/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=1
# Golden and round-trip tests run this python; set, it must exist (no silent skips here).
export DLBENCH_PYTHON="$VIRTUAL_ENV/bin/python"

echo "== setting up chromium (the HTML report's browser test) and Fashion-MNIST (specs/cnn-fashion.yaml)"
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
    # Debian's packages; as root here (CI), through sudo elsewhere.
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null
fi
# Set, the browser test must find it (no silent skips here).
DLBENCH_CHROMIUM="$(command -v chromium)"
export DLBENCH_CHROMIUM
# Set, the Fashion-MNIST test must find the package's files (no silent skips here).
export DLBENCH_REQUIRE_DATASETS=1

# A fresh clone gains nothing from incremental compilation, and its files (1.5 GB of the
# 7 GB debug build) count against the disk of a CI machine.
export CARGO_INCREMENTAL=0

# --features test-backends registers the faulty `test-...` backends that tests/workers.rs runs;
# --features tch builds the libtorch backend into dlbench (tests/tch.rs).
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --features test-backends,tch -- -D warnings

echo "== cargo test"
cargo test --workspace --locked --features test-backends,tch
