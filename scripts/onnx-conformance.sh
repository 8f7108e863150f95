#!/usr/bin/env bash
# Regenerates the ONNX node-test conformance record: the expected-pass lists
# tests/onnx-node/<backend>.txt (the tests as ONNX ships them) and
# tests/onnx-node/<backend>.initializers.txt (their weight inputs moved into initializers),
# and the page docs/onnx-conformance.md, by running
# tests/onnx_node_tests.rs with DLBENCH_WRITE_ONNX_CONFORMANCE=1 and every backend the CI
# command builds (the default burn, candle and tract, plus tch). It sets up the project's
# virtualenv first (scripts/setup-torch.sh: torch for tch, onnx 1.22.0 for the node tests), as
# scripts/test.sh does. Review the diff of the lists before committing it: a test that leaves a
# list is a regression unless the change explains it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-torch.sh
export VIRTUAL_ENV="$PWD/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=1
export DLBENCH_PYTHON="$VIRTUAL_ENV/bin/python"

DLBENCH_WRITE_ONNX_CONFORMANCE=1 cargo test --locked --features test-backends,tch \
    --test onnx_node_tests -- --nocapture
