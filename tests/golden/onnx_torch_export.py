"""Exports the four seed models (specs/{mlp,cnn,rnn,vae}.yaml) to ONNX with real PyTorch, with
both of torch.onnx.export's exporters, and records what torch computes for a seeded batch.

    python tests/golden/onnx_torch_export.py OUT_DIR

For each model M and exporter E (`torchscript`: the TorchScript-based exporter, dynamo=False;
`dynamo`: torch.export with onnxscript, dynamo=True) it writes:

- OUT_DIR/M.E.onnx: the model, with a symbolic batch dimension, opset 17 for the TorchScript
  exporter and the dynamo exporter's own default opset;
- OUT_DIR/M.in.<input>.npy: a batch of 3 seeded float32 samples per graph input;
- OUT_DIR/M.out.<i>.npy: torch's outputs (float32, eager mode, the same module) in order;

and prints a JSON manifest on stdout: for each file, the graph's input and output names
and the ops it uses. The modules are those of tests/golden/seeds.py (PyTorch's own layers), in
float32 with torch's default initialisation from a fixed seed. The Rust side is
tests/onnx_import.rs.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import Cnn, Mlp, Rnn, Vae  # noqa: E402

BATCH = 3


class One(torch.nn.Module):
    """The seed modules return a list (for seeds.py's loss code); an exported graph wants a
    tensor or a tuple, and torch.export wants the inputs named."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)[0]


class Two(One):
    def forward(self, x, eps):
        return tuple(self.inner(x, eps))


def models():
    gen = torch.Generator().manual_seed(7)
    yield "mlp", Mlp(), {"x": torch.randn(BATCH, 30, generator=gen)}
    yield "cnn", Cnn(), {"x": torch.rand(BATCH, 1, 32, 32, generator=gen)}
    yield "rnn", Rnn(), {"x": torch.rand(BATCH, 10, 1, generator=gen)}
    yield "vae", Vae(), {"x": torch.rand(BATCH, 1000, generator=gen),
                         "eps": torch.randn(BATCH, 50, generator=gen)}


def export(module, inputs, path, exporter, output_names):
    args = tuple(inputs.values())
    names = list(inputs)
    if exporter == "torchscript":
        torch.onnx.export(module, args, path, dynamo=False, opset_version=17,
                          input_names=names, output_names=output_names,
                          dynamic_axes={n: {0: "N"} for n in names + output_names})
    else:
        batch = torch.export.Dim("N", min=1)
        torch.onnx.export(module, args, path, dynamo=True, external_data=False,
                          input_names=names, output_names=output_names,
                          dynamic_shapes={n: {0: batch} for n in names})


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    manifest = {"torch": torch.__version__, "onnx": onnx.__version__, "files": {}}
    warnings.simplefilter("ignore")
    for name, inner, inputs in models():
        module = (One if len(inputs) == 1 else Two)(inner).eval()
        with torch.no_grad():
            result = module(*inputs.values())
        results = result if isinstance(result, tuple) else (result,)
        output_names = ["y"] if len(results) == 1 else ["recon", "mu", "logvar"]
        for key, value in inputs.items():
            np.save(out / f"{name}.in.{key}.npy", value.numpy())
        for i, value in enumerate(results):
            np.save(out / f"{name}.out.{i}.npy", value.numpy())
        for exporter in ["torchscript", "dynamo"]:
            path = out / f"{name}.{exporter}.onnx"
            export(module, inputs, str(path), exporter, output_names)
            model = onnx.load(str(path))
            manifest["files"][path.name] = {
                "model": name,
                "exporter": exporter,
                "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                "inputs": [i.name for i in model.graph.input],
                "outputs": [o.name for o in model.graph.output],
                "ops": sorted({n.op_type for n in model.graph.node}),
            }
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
