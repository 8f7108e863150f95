#!/usr/bin/env bash
# Creates the project's virtualenv `.venv` with the libtorch the `tch` backend builds against:
# torch 2.11.0 from PyPI (with its CUDA libraries; about 2 minutes and 4.8 GB) and numpy.
# Idempotent: does nothing when `.venv` already has torch 2.11.0. Silent on success.
#
# Then build with the `tch` feature (see the README):
#   export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
#   export LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1
#   cargo build --release --features tch
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
VENV=.venv

has_torch() {
    "$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION')" \
        >/dev/null 2>&1
}

if has_torch; then
    exit 0
fi

echo "setup-torch: installing torch $TORCH_VERSION into $VENV (about 2 minutes)" >&2
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" numpy
if ! has_torch; then
    echo "setup-torch: torch $TORCH_VERSION is still not importable from $VENV" >&2
    exit 1
fi
