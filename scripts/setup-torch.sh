#!/usr/bin/env bash
# Creates the project's virtualenv `.venv` with the libtorch the `tch` backend builds against:
# torch 2.11.0 from PyPI (with its CUDA libraries; about 2 minutes and 4.8 GB) and numpy, and
# onnx and onnxruntime, which run the ONNX files dlbench writes (tests/golden/onnx_run.py), and
# onnxscript, which torch.onnx.export(dynamo=True) needs (tests/golden/onnx_torch_export.py).
# Idempotent: does nothing when `.venv` already has them. Silent on success.
#
# Then build with the `tch` feature (see the README):
#   export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
#   export LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1
#   cargo build --release --features tch
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
# onnx 1.22.0 still ships the ONNX node tests on disk; onnxruntime runs the exported files.
ONNX_VERSION=1.22.0
ONNXRUNTIME_VERSION=1.32.0
ONNXSCRIPT_VERSION=0.7.2
VENV=.venv

has_torch() {
    "$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION')" \
        >/dev/null 2>&1
}

has_onnx() {
    "$VENV/bin/python" -c "import onnx, onnxruntime, onnxscript; \
assert onnx.__version__ == '$ONNX_VERSION' and onnxruntime.__version__ == '$ONNXRUNTIME_VERSION' \
and onnxscript.__version__ == '$ONNXSCRIPT_VERSION'" \
        >/dev/null 2>&1
}

if has_torch && has_onnx; then
    exit 0
fi
if has_torch; then
    echo "setup-torch: installing onnx $ONNX_VERSION, onnxruntime $ONNXRUNTIME_VERSION and onnxscript $ONNXSCRIPT_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "onnx==$ONNX_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" "onnxscript==$ONNXSCRIPT_VERSION"
    has_onnx && exit 0
    echo "setup-torch: onnx / onnxruntime are still not importable from $VENV" >&2
    exit 1
fi

echo "setup-torch: installing torch $TORCH_VERSION into $VENV (about 2 minutes)" >&2
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" numpy "onnx==$ONNX_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" \
    "onnxscript==$ONNXSCRIPT_VERSION"
if ! has_torch || ! has_onnx; then
    echo "setup-torch: torch $TORCH_VERSION, onnx or onnxruntime is still not importable from $VENV" >&2
    exit 1
fi
