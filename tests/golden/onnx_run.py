"""Runs an ONNX file with onnxruntime, as a user of ONNX Runtime would.

    python onnx_run.py MODEL.onnx INPUTS.json

INPUTS.json maps each graph input to {"shape": [...], "dtype": "float32"|"int64", "data": [...]}.
Checks the model first (onnx.checker, full_check: types and shapes inferred), then prints
{"outputs": {name: {"shape": [...], "data": [...]}}, "opset": N} as JSON on stdout.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, inputs_path = sys.argv[1], sys.argv[2]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    with open(inputs_path) as f:
        described = json.load(f)
    feeds = {
        name: np.asarray(v["data"], dtype=v["dtype"]).reshape(v["shape"])
        for name, v in described.items()
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds)
    outputs = {
        name: {"shape": list(r.shape), "data": r.astype(np.float64).ravel().tolist()}
        for name, r in zip(names, results)
    }
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    json.dump({"outputs": outputs, "opset": opset[0]}, sys.stdout)


if __name__ == "__main__":
    main()
