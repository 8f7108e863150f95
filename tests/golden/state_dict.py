"""PyTorch state_dict files from real torch, for dlbench-formats' `.pt` reader and writer.

Run from the repository root with a Python that has torch 2.11.0 and numpy (the repo's
`.venv/bin/python` once `scripts/setup-torch.sh` made it, or any throw-away virtualenv):

    # The small fixtures the Rust tests read (committed; < 200 KB in all):
    .venv/bin/python tests/golden/state_dict.py fixtures crates/dlbench-formats/tests/fixtures

    # Used by the tests themselves, when a torch python is found ($DLBENCH_PYTHON or .venv):
    .venv/bin/python tests/golden/state_dict.py seed OUT_DIR   # the four seed models, full size
    .venv/bin/python tests/golden/state_dict.py load FILE.pt   # torch.load(weights_only=True) -> JSON

Values go into JSON as IEEE-754 bit patterns (`bits`: float32 as u32, float64 as u64, int64
as is), so that the Rust side compares exactly, NaN and -0.0 included; the larger tensors as
checksums in float64 (`sum` and `weighted` = sum of (i + 1) * x_i over the row-major
elements, which catches a transposed or shuffled read) plus their first values' bits.
"""

import collections
import json
import os
import struct
import sys

import torch
from torch import nn

SEED = 20240612

# Tensors up to this many elements are written out in full; larger ones as checksums.
FULL_LIMIT = 64


def bits(t):
    flat = t.detach().reshape(-1)
    if t.dtype == torch.float32:
        return [struct.unpack("<I", struct.pack("<f", x))[0] for x in flat.tolist()]
    if t.dtype == torch.float64:
        return [struct.unpack("<Q", struct.pack("<d", x))[0] for x in flat.tolist()]
    if t.dtype == torch.int64:
        return flat.tolist()
    raise ValueError(f"no bits for {t.dtype}")


def describe(t):
    d = {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "contiguous": t.is_contiguous(),
    }
    if t.numel() <= FULL_LIMIT:
        d["bits"] = bits(t)
        return d
    flat = t.detach().reshape(-1).to(torch.float64)
    index = torch.arange(1, t.numel() + 1, dtype=torch.float64)
    d["first_bits"] = bits(t.reshape(-1)[:4])
    d["sum"] = flat.sum().item()
    d["weighted"] = (flat * index).sum().item()
    return d


def describe_all(sd):
    return {"keys": list(sd.keys()), "tensors": {k: describe(v) for k, v in sd.items()}}


def basic():
    """Every dtype, views with offsets and strides, a shared storage, a scalar, an empty tensor."""
    g = torch.Generator().manual_seed(SEED)
    base = torch.randn(3, 4, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f64"] = torch.randn(4, generator=g, dtype=torch.float64)
    sd["i64"] = torch.tensor([[-3, -1, 0, 1], [2**40, -(2**40), 2**62, -(2**63)]])
    sd["base"] = base
    sd["transposed"] = base.t()  # stride (1, 4): the same storage, read column by column
    sd["offset"] = base.view(-1)[5:9]  # storage offset 5
    sd["strided"] = base[:, ::2]  # stride (4, 2)
    sd["expanded"] = torch.arange(3, dtype=torch.float32).expand(2, 3)  # stride (0, 1)
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.empty(0, 3)
    sd["special"] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan")])
    return sd


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(2304, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class Rnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 50, batch_first=True)
        self.fc = nn.Linear(50, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return torch.sigmoid(self.fc(out[:, -1]))


class Vae(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(1000, 256)
        self.mu = nn.Linear(256, 50)
        self.logvar = nn.Linear(256, 50)
        self.dec = nn.Linear(50, 256)
        self.recon = nn.Linear(256, 1000)

    def forward(self, x, eps):
        h = torch.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * eps
        return torch.sigmoid(self.recon(torch.relu(self.dec(z)))), mu, logvar


def seed_models():
    """The seed workloads as a PyTorch user writes them, with PyTorch's own key names."""
    torch.manual_seed(SEED)
    mlp = nn.Sequential(
        nn.Linear(30, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1), nn.Sigmoid()
    )
    return {"mlp": mlp, "cnn": Cnn(), "rnn": Rnn(), "vae": Vae()}


class Evil:
    """What a malicious checkpoint holds: unpickling it would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo this file ran code",))


def fixtures(out):
    os.makedirs(out, exist_ok=True)
    expected = {"torch": torch.__version__}
    sd = basic()
    torch.save(sd, os.path.join(out, "basic.pt"))
    expected["basic"] = describe_all(sd)
    models = seed_models()
    # The two small seed models in full; cnn (1 MB) and vae (2.2 MB) are made at test time.
    for name in ["mlp", "rnn"]:
        sd = models[name].state_dict()
        torch.save(sd, os.path.join(out, f"{name}.pt"))
        expected[name] = describe_all(sd)
    # Files the reader must refuse, each with a clear message.
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, os.path.join(out, "bf16.pt"))
    torch.save({"w": torch.ones(2), "evil": Evil()}, os.path.join(out, "malicious.pt"))
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 3}, os.path.join(out, "checkpoint.pt"))
    torch.save(
        {"w": torch.ones(2)},
        os.path.join(out, "legacy.pt"),
        _use_new_zipfile_serialization=False,
    )
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


def seed(out):
    os.makedirs(out, exist_ok=True)
    expected = {"torch": torch.__version__}
    for name, model in seed_models().items():
        sd = model.state_dict()
        torch.save(sd, os.path.join(out, f"{name}.pt"))
        expected[name] = describe_all(sd)
    with open(os.path.join(out, "seed.json"), "w") as f:
        json.dump(expected, f)


def load(path):
    sd = torch.load(path, weights_only=True)
    if not isinstance(sd, collections.OrderedDict):
        raise SystemExit(f"{path}: torch.load gave {type(sd).__name__}, not an OrderedDict")
    # The storages are 64-byte aligned as torch writes them: memory-mapping must work too.
    mapped = torch.load(path, weights_only=True, mmap=True)
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise SystemExit(f"{path}: `{k}` is a {type(v).__name__}, not a tensor")
        if not torch.equal(v, mapped[k]) and not (v.isnan().any() and v.dtype.is_floating_point):
            raise SystemExit(f"{path}: `{k}` differs when memory-mapped")
    json.dump(describe_all(sd), sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("fixtures", "seed", "load"):
        raise SystemExit(__doc__)
    {"fixtures": fixtures, "seed": seed, "load": load}[sys.argv[1]](sys.argv[2])
