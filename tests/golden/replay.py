"""Records a PyTorch training run of a seed model for dlbench to replay (tests/replay.rs).

    .venv/bin/python tests/golden/replay.py MODEL STEPS OUT_DIR [SWAP]

MODEL is mlp, cnn, rnn or vae: the seed workload of specs/MODEL.yaml as a PyTorch user writes
it (`seed_models()` of tests/golden/state_dict.py, with its key names), trained in float32 on the data
the spec reads, with the spec's loss and optimizer, in batches of BATCH, for STEPS steps. The batches
come from a shuffling DataLoader (drop_last, so every batch is whole). It writes:

- OUT_DIR/init.pt: the initial state_dict (before the first step);
- OUT_DIR/batches.npz: the samples of every batch, in the order trained: `x`, `y` (no `y` for
  the vae) and, for the vae, `eps`, the noise each sample drew;
- OUT_DIR/losses.json: {"losses": [...]}, the loss of each step, before its update.

dlbench then reads batches.npz in file order (shuffle: false, no validation or test split),
so its step k trains on PyTorch's batch k. With SWAP = k, batches.npz holds batches k and k + 1
in each other's place (losses.json is unchanged): a replay that must fail from step k.
"""

import gzip
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from state_dict import seed_models  # noqa: E402

SEED = 20261206
BATCH = 8
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def data_path(name):
    return os.path.join(ROOT, "data", name)


def breast_cancer():
    table = np.loadtxt(data_path("breast_cancer.csv"), delimiter=",", skiprows=1)
    x, y = table[:, :-1], table[:, -1:]
    return (x - x.mean(0)) / x.std(0), y


def digits():
    with gzip.open(data_path("digits.csv.gz"), "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    x = (table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)
    return x.repeat(4, axis=2).repeat(4, axis=3), table[:, -1].astype(np.int64)


def sunspots():
    series = np.loadtxt(data_path("sunspots.csv"), delimiter=",", skiprows=1)[:, 1] * 0.005
    n = len(series) - 10
    x = np.stack([series[i:i + 10] for i in range(n)])[:, :, None]
    y = (series[10:] > series[9:-1]).astype(np.float64)[:, None]
    return x, y


def reconstruction(rng):
    """Values in [0, 1] with low-rank structure, as dlbench's synthetic VAE task has."""
    basis = rng.normal(size=(8, 1000))
    return 1.0 / (1.0 + np.exp(-rng.normal(size=(1024, 8)) @ basis / np.sqrt(8))), None


def elbo(recon, mu, logvar, x):
    bce = -(x * torch.clamp(torch.log(recon), min=-100)
            + (1 - x) * torch.clamp(torch.log(1 - recon), min=-100)).sum(1)
    kl = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(1)
    return (bce + kl).mean()


def workload(name, rng):
    """The model, its data, its loss of (model, batch) and its optimizer, as the spec says."""
    if name not in ("mlp", "cnn", "rnn", "vae"):
        raise SystemExit(f"unknown model {name}: expected mlp, cnn, rnn or vae")
    model = seed_models()[name]
    if name == "mlp":
        x, y = breast_cancer()
        loss = lambda m, b: nn.functional.binary_cross_entropy(m(b["x"]), b["y"])  # noqa: E731
        return model, x, y, loss, torch.optim.Adam(model.parameters(), lr=0.001)
    if name == "cnn":
        x, y = digits()
        loss = lambda m, b: nn.functional.cross_entropy(m(b["x"]), b["y"])  # noqa: E731
        return model, x, y, loss, torch.optim.SGD(model.parameters(), lr=0.01)
    if name == "rnn":
        x, y = sunspots()
        loss = lambda m, b: nn.functional.binary_cross_entropy(m(b["x"]), b["y"])  # noqa: E731
        return model, x, y, loss, torch.optim.Adam(model.parameters(), lr=0.001)
    if name == "vae":
        x, y = reconstruction(rng)
        loss = lambda m, b: elbo(*m(b["x"], b["eps"]), b["x"])  # noqa: E731
    return model, x, y, loss, torch.optim.SGD(model.parameters(), lr=0.01)


def main(name, steps, out, swap=None):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model, x, y, loss_of, optimizer = workload(name, rng)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "init.pt"))
    x = torch.tensor(x, dtype=torch.float32)
    if y is not None:
        y = torch.from_numpy(y).to(torch.int64 if y.dtype == np.int64 else torch.float32)
    generator = torch.Generator().manual_seed(SEED)
    order = torch.utils.data.DataLoader(
        torch.arange(len(x)), batch_size=BATCH, shuffle=True, drop_last=True, generator=generator
    )
    taken = {"x": [], "y": [], "eps": []}
    losses = []
    step = 0
    while step < steps:
        for rows in order:
            if step == steps:
                break
            batch = {"x": x[rows]}
            if y is not None:
                batch["y"] = y[rows]
            if name == "vae":
                batch["eps"] = torch.randn(len(rows), 50, generator=generator)
            for key, value in batch.items():
                taken[key].append(value.numpy())
            optimizer.zero_grad()
            loss = loss_of(model, batch)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
    if swap is not None:
        for batches in taken.values():
            if batches:
                batches[swap], batches[swap + 1] = batches[swap + 1], batches[swap]
    arrays = {k: np.concatenate(v) for k, v in taken.items() if v}
    np.savez(os.path.join(out, "batches.npz"), **arrays)
    with open(os.path.join(out, "losses.json"), "w") as f:
        json.dump({"torch": torch.__version__, "losses": losses}, f)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    swap = int(sys.argv[4]) if len(sys.argv) == 5 else None
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], swap)
