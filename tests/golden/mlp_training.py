"""Golden whole-model training run from real PyTorch, for the f64 reference session.

Regenerate (from the repository root, in a throw-away virtualenv outside the repo):

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.11.0 numpy
    /tmp/venv-torch/bin/python tests/golden/mlp_training.py \
        > crates/dlbench-reference/tests/golden/mlp_training.json

The model is Linear(4, 8) -> ReLU -> Linear(8, 1) -> Sigmoid with nn.BCELoss (mean), trained in
float64 for STEPS full-batch steps. Initial weights and the batch are drawn here, rounded to
float32 values (so that the Rust side can hold them in an f32 `Model` without loss) and written
to the JSON under dlbench's parameter names; each case then records the loss of every step
(computed before that step's update, as a training loop reads it) and the final weights.
"""

import json

import torch

STEPS = 5
BATCH = 16
FEATURES = 4
HIDDEN = 8

CASES = [
    ("adam", {"adam": {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                       "weight_decay": 0.0, "amsgrad": False}}),
    ("adam_amsgrad_weight_decay", {"adam": {"lr": 0.05, "beta1": 0.8, "beta2": 0.9, "eps": 1e-8,
                                            "weight_decay": 0.01, "amsgrad": True}}),
    ("sgd_nesterov", {"sgd": {"lr": 0.5, "momentum": 0.9, "dampening": 0.0, "nesterov": True,
                              "weight_decay": 0.001}}),
]

# dlbench's GraphBuilder names (dense_1, dense_2) for torch's Sequential indices.
NAMES = {"0.weight": "dense_1.weight", "0.bias": "dense_1.bias",
         "2.weight": "dense_2.weight", "2.bias": "dense_2.bias"}


def f32_exact(t):
    return t.to(torch.float32).to(torch.float64)


def tensor_json(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def model():
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, 1), torch.nn.Sigmoid(),
    ).double()


def optimizer(config, params):
    (kind, c), = config.items()
    if kind == "sgd":
        return torch.optim.SGD(params, foreach=False, **c)
    return torch.optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                            weight_decay=c["weight_decay"], amsgrad=c["amsgrad"], foreach=False)


def main():
    torch.manual_seed(20240611)
    initial = {k: f32_exact(v) for k, v in model().state_dict().items()}
    x = f32_exact(torch.rand(BATCH, FEATURES, dtype=torch.float64) * 2 - 1)
    target = (x[:, :1] - 0.5 * x[:, 1:2] + 0.25 * x[:, 2:3] > 0).to(torch.float64)
    cases = []
    for name, config in CASES:
        net = model()
        net.load_state_dict(initial)
        opt = optimizer(config, net.parameters())
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy(net(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        final = {NAMES[k]: tensor_json(v) for k, v in net.state_dict().items()}
        cases.append({
            "name": name,
            "training": {"loss": "binary_cross_entropy", "optimizer": config},
            "losses": losses,
            "final_weights": final,
        })
    print(json.dumps({
        "torch": torch.__version__,
        "steps": STEPS,
        "weights": {NAMES[k]: tensor_json(v) for k, v in initial.items()},
        "batch": {"x": tensor_json(x), "target": tensor_json(target)},
        "cases": cases,
    }, indent=1))


if __name__ == "__main__":
    main()
