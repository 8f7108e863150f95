"""Golden values for the four seed models (specs/{mlp,cnn,rnn,vae}.yaml) from real PyTorch.

Regenerate (from the repository root, in a throw-away virtualenv outside the repo):

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.11.0 numpy
    /tmp/venv-torch/bin/python tests/golden/seeds.py > crates/dlbench-reference/tests/golden/seeds.json

Written with torch 2.11.0 (the JSON's "torch" field records the exact build). The Rust side is
crates/dlbench-reference/tests/golden/seeds_data.rs, run on the f64 reference by
crates/dlbench-reference/tests/golden_seeds.rs and on libtorch (f32) by
crates/dlbench-tch/tests/golden_seeds.rs.

Each seed model is rebuilt here with torch.nn modules in float64, exactly as the spec describes
it (PyTorch's own layers, not a transcription of dlbench's graph): Linear, Conv2d, MaxPool2d,
LSTM(batch_first=True) whose h_n[-1] feeds the head, and the VAE with
z = mu + exp(0.5 * logvar) * eps and the loss (BCE(recon, x, sum) + KL) / batch. For each model
the JSON records, under dlbench's parameter names:

- the training config (loss and optimizer, in dlbench's serde format; the Rust test checks it
  equals what the spec file says, so a changed spec cannot silently drift from this script);
- the batch: a few real samples prepared as the spec's `data:` section prepares them (MLP:
  breast cancer rows standardized with the whole file's statistics; CNN: digits scaled to [0, 1]
  and enlarged 4x; RNN: sunspot windows scaled by 0.005, target "next year is higher"), or for
  the VAE seeded synthetic data sigmoid(B z) on a rank-8 structure and a fixed eps. (The
  enlarged digits give max-pool windows with exactly tied values, but tied values come from
  identical input patches, so where the gradient goes among them changes no weight gradient:
  this data does not test the tie rule.)
- the forward outputs, the loss and every parameter's gradient at the initial weights;
- the loss of each of STEPS training steps (before that step's update, as a training loop reads
  it) with the spec's optimizer, and the weights after the last step.

Initial weights. The CNN and VAE hold 250k and 552k parameters: stored in full they would not
fit the ~3 MB this file may take. So every initial weight comes from a tiny counter-based
generator that seeds_data.rs reimplements bit for bit: for parameter `name` of spec `spec`,
element i is

    z     = splitmix64(fnv1a64("spec/name") + (i + 1) * 0x9E3779B97F4A7C15)
    u     = (z >> 40) / 2**24                      # 24 bits: uniform in [0, 1)
    value = float32(bound * (2 u - 1)),  bound = 1 / sqrt(fan_in)

which is PyTorch's default initialization for these layers (uniform +-1/sqrt(fan_in) for
Linear and Conv2d weights and biases; +-1/sqrt(hidden) for every LSTM tensor). The values are
float32 numbers, so an f32 dlbench Model holds them exactly. The JSON records each parameter's
fan_in and a summary of its initial values, which the Rust test checks against its own
generator before anything else.

Tensors. Inputs are float32 values written in full. A float64 result (output, gradient, final
weight) with at most FULL_LIMIT elements is written in full; a larger one (the CNN's conv2d_2 and
dense_1 weights, the VAE's weight matrices) as a summary: its sum, sum of |x|, sum of squares,
a position-weighted sum sum_i x[i] * c(i) with c(i) = ((i * 7919) mod 10007) / 10007 (so a
transposed or permuted tensor fails too), and SAMPLES elements at seeded indices plus the first
and the last.
"""

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"

STEPS = 5
FULL_LIMIT = 10_000
SAMPLES = 48
SEED = 20240613

DTYPE = torch.float64
MASK = (1 << 64) - 1

# dlbench's training configs, in its serde format; the Rust test compares them with the specs.
ADAM = {"adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                 "weight_decay": 0.0, "amsgrad": False}}
SGD = {"sgd": {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
               "weight_decay": 0.0}}


# ---------------------------------------------------------------- initial weights

def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def uniform_f32(key, count, bound):
    """The shared generator (see the module docstring): `count` float32 values in +-bound."""
    with np.errstate(over="ignore"):
        i = np.arange(1, count + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(key)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (bound * (2.0 * u - 1.0)).astype(np.float32).astype(np.float64)


def initialize(spec, net, names, fan_ins):
    """Overwrites every parameter of `net` from the generator; returns {dlbench name: fan_in}."""
    fans = {}
    with torch.no_grad():
        for torch_name, param in net.named_parameters():
            name = names[torch_name]
            fan_in = fan_ins[name]
            values = uniform_f32(f"{spec}/{name}", param.numel(), 1.0 / math.sqrt(fan_in))
            param.copy_(torch.from_numpy(values).reshape(param.shape))
            fans[name] = fan_in
    return fans


# ---------------------------------------------------------------- JSON

def f32_exact(t):
    return t.to(torch.float32).to(DTYPE)


def full(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def summary(t, rng):
    flat = t.detach().reshape(-1).to(DTYPE)
    n = flat.numel()
    c = torch.from_numpy((np.arange(n, dtype=np.int64) * 7919 % 10007) / 10007.0)
    picks = sorted({0, n - 1, *rng.choice(n, size=min(SAMPLES, n), replace=False).tolist()})
    return {
        "shape": list(t.shape),
        "sum": flat.sum().item(),
        "abs_sum": flat.abs().sum().item(),
        "sum_sq": (flat * flat).sum().item(),
        "weighted": (flat * c).sum().item(),
        "samples": [[i, flat[i].item()] for i in picks],
    }


def tensor_json(t, rng):
    return full(t) if t.numel() <= FULL_LIMIT else summary(t, rng)


def labels_json(t):
    return {"shape": list(t.shape), "dtype": "i64", "data": t.tolist()}


# ---------------------------------------------------------------- the four models

class Mlp(torch.nn.Module):
    NAMES = {f"net.{i}.{k}": f"dense_{j}.{k}" for i, j in [(0, 1), (2, 2), (4, 3)]
             for k in ["weight", "bias"]}

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(30, 10), torch.nn.ReLU(),
            torch.nn.Linear(10, 10), torch.nn.ReLU(),
            torch.nn.Linear(10, 1), torch.nn.Sigmoid(),
        )

    def forward(self, x):
        return [self.net(x)]


class Cnn(torch.nn.Module):
    NAMES = {f"net.{i}.{k}": f"{n}.{k}" for i, n in
             [(0, "conv2d_1"), (3, "conv2d_2"), (7, "dense_1"), (9, "dense_2")]
             for k in ["weight", "bias"]}

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(2304, 100), torch.nn.ReLU(),
            torch.nn.Linear(100, 10),
        )

    def forward(self, x):
        return [self.net(x)]


class Rnn(torch.nn.Module):
    NAMES = {"lstm.weight_ih_l0": "lstm_1.w_ih", "lstm.weight_hh_l0": "lstm_1.w_hh",
             "lstm.bias_ih_l0": "lstm_1.b_ih", "lstm.bias_hh_l0": "lstm_1.b_hh",
             "head.weight": "dense_1.weight", "head.bias": "dense_1.bias"}

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(1, 50, batch_first=True)
        self.head = torch.nn.Linear(50, 1)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        # h_n is [layers * directions, batch, hidden]; the last layer's state is the summary.
        return [torch.sigmoid(self.head(h_n[-1]))]


class Vae(torch.nn.Module):
    NAMES = {f"{n}.{k}": f"{n}.{k}" for n in ["enc", "mu", "logvar", "dec", "recon"]
             for k in ["weight", "bias"]}

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(1000, 256)
        self.mu = torch.nn.Linear(256, 50)
        self.logvar = torch.nn.Linear(256, 50)
        self.dec = torch.nn.Linear(50, 256)
        self.recon = torch.nn.Linear(256, 1000)

    def forward(self, x, eps):
        h = torch.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * eps
        return [torch.sigmoid(self.recon(torch.relu(self.dec(z)))), mu, logvar]


def vae_elbo(outputs, x):
    """Negative ELBO, summed over features and averaged over the batch (dlbench's vae_elbo)."""
    recon, mu, logvar = outputs
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
    return (bce + kl) / x.shape[0]


# ---------------------------------------------------------------- batches

def mlp_batch():
    with open(DATA / "breast_cancer.csv") as f:
        rows = np.array([[float(v) for v in r] for r in list(csv.reader(f))[1:]])
    features, labels = rows[:, :-1], rows[:, -1]
    # Standardized with the whole file's statistics (the spec uses its training split's).
    features = (features - features.mean(0)) / features.std(0)
    picks = np.arange(8) * 71
    x = f32_exact(torch.from_numpy(features[picks]))
    target = torch.from_numpy(labels[picks]).reshape(-1, 1).to(DTYPE)
    return {"x": x}, target


def cnn_batch():
    with gzip.open(DATA / "digits.csv.gz", "rt") as f:
        rows = np.array([[float(v) for v in r] for r in csv.reader(f)][:4])
    images = torch.from_numpy(rows[:, :-1] * 0.0625).reshape(4, 1, 8, 8)
    # Nearest-neighbour enlargement to 32x32, as the spec's `upsample: 4`.
    x = images.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    return {"x": f32_exact(x)}, torch.from_numpy(rows[:, -1]).to(torch.int64)


def rnn_batch():
    with open(DATA / "sunspots.csv") as f:
        series = np.array([float(r[1]) for r in list(csv.reader(f))[1:]])
    starts = 5 + np.arange(8) * 37
    windows = np.stack([series[s:s + 10] for s in starts])
    target = np.array([series[s + 10] > series[s + 9] for s in starts], dtype=np.float64)
    x = f32_exact(torch.from_numpy(windows * 0.005).reshape(8, 10, 1))
    return {"x": x}, torch.from_numpy(target).reshape(-1, 1)


def vae_batch():
    basis = torch.randn(1000, 8, dtype=DTYPE) / math.sqrt(8)
    codes = torch.randn(8, 8, dtype=DTYPE)
    x = f32_exact(torch.sigmoid(codes @ basis.T))
    eps = f32_exact(torch.randn(8, 50, dtype=DTYPE))
    return {"x": x, "eps": eps}, None


# spec name, module, batch, loss(outputs, inputs, target), dlbench loss, optimizer, fan-ins
SEEDS = [
    ("mlp", Mlp, mlp_batch,
     lambda out, inp, t: F.binary_cross_entropy(out[0], t), "binary_cross_entropy", ADAM,
     {"dense_1.weight": 30, "dense_1.bias": 30, "dense_2.weight": 10, "dense_2.bias": 10,
      "dense_3.weight": 10, "dense_3.bias": 10}),
    ("cnn", Cnn, cnn_batch,
     lambda out, inp, t: F.cross_entropy(out[0], t), "cross_entropy", SGD,
     {"conv2d_1.weight": 9, "conv2d_1.bias": 9, "conv2d_2.weight": 288,
      "conv2d_2.bias": 288, "dense_1.weight": 2304, "dense_1.bias": 2304,
      "dense_2.weight": 100, "dense_2.bias": 100}),
    ("rnn", Rnn, rnn_batch,
     lambda out, inp, t: F.binary_cross_entropy(out[0], t), "binary_cross_entropy", ADAM,
     {"lstm_1.w_ih": 50, "lstm_1.w_hh": 50, "lstm_1.b_ih": 50, "lstm_1.b_hh": 50,
      "dense_1.weight": 50, "dense_1.bias": 50}),
    ("vae", Vae, vae_batch,
     lambda out, inp, t: vae_elbo(out, inp["x"]), "vae_elbo", SGD,
     {"enc.weight": 1000, "enc.bias": 1000, "mu.weight": 256, "mu.bias": 256,
      "logvar.weight": 256, "logvar.bias": 256, "dec.weight": 50, "dec.bias": 50,
      "recon.weight": 256, "recon.bias": 256}),
]


def optimizer(config, params):
    (kind, c), = config.items()
    if kind == "sgd":
        return torch.optim.SGD(params, foreach=False, **c)
    return torch.optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                            weight_decay=c["weight_decay"], amsgrad=c["amsgrad"], foreach=False)


def record(spec, module, make_batch, loss_fn, loss_name, config, fan_ins, rng):
    net = module().to(DTYPE)
    fans = initialize(spec, net, module.NAMES, fan_ins)
    initial = {module.NAMES[k]: summary(p, rng) for k, p in net.named_parameters()}
    inputs, target = make_batch()
    named = lambda tensors: {module.NAMES[k]: tensor_json(v, rng) for k, v in tensors}

    outputs = net(*inputs.values())
    loss = loss_fn(outputs, inputs, target)
    loss.backward()
    gradients = named((k, p.grad) for k, p in net.named_parameters())

    opt = optimizer(config, net.parameters())
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        step_loss = loss_fn(net(*inputs.values()), inputs, target)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())

    batch = {k: full(v) for k, v in inputs.items()}
    if target is not None:
        batch["target"] = labels_json(target) if target.dtype == torch.int64 else full(target)
    return {
        "spec": spec,
        "training": {"loss": loss_name, "optimizer": config},
        "fan_in": fans,
        "initial_weights": initial,
        "batch": batch,
        "outputs": [tensor_json(o, rng) for o in outputs],
        "loss": loss.item(),
        "gradients": gradients,
        "losses": losses,
        "final_weights": named(net.named_parameters()),
    }


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    seeds = [record(*seed, rng) for seed in SEEDS]
    print(json.dumps({
        "torch": torch.__version__,
        "steps": STEPS,
        "seeds": seeds,
    }, indent=0))


if __name__ == "__main__":
    main()
