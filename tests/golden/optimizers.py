"""Golden optimizer trajectories from real PyTorch, for the f64 reference optimizers.

Regenerate (from the repository root, in a throw-away virtualenv outside the repo):

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.11.0 numpy
    /tmp/venv-torch/bin/python tests/golden/optimizers.py \
        > crates/dlbench-reference/tests/golden/optimizers.json

Each case runs `torch.optim.SGD` or `torch.optim.Adam` for STEPS steps in float64 on two small
parameter tensors. The gradient of a step is a fixed function of the parameters times a
per-step scale (so that Adam's second moment can shrink and AMSGrad matters). The JSON keeps
the gradients fed at every step as well as the parameters after it, so the Rust test replays
the exact same gradients: it checks the optimizer alone, not a re-implementation of the
gradient function. Optimizer configs are written in dlbench's own serde format.
"""

import json

import torch

STEPS = 5
SCALES = [1.0, 0.1, 2.0, 0.05, 1.0]
INITIAL = {"w": [1.0, -2.0, 0.5, 3.0], "b": [0.25, -0.75]}
CURVATURE = {"w": [1.0, 0.5, 2.0, 0.1], "b": [3.0, 0.2]}
OFFSET = {"w": [0.1, -0.3, 0.0, 0.2], "b": [-0.5, 0.05]}

SGD_DEFAULTS = dict(lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)
ADAM_DEFAULTS = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False)

CASES = [
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd_momentum_dampening", "sgd", dict(lr=0.1, momentum=0.9, dampening=0.1)),
    ("sgd_nesterov", "sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_weight_decay", "sgd", dict(lr=0.1, weight_decay=0.01)),
    ("sgd_all", "sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("adam_defaults", "adam", dict()),
    ("adam_lr", "adam", dict(lr=0.1)),
    ("adam_weight_decay", "adam", dict(lr=0.1, weight_decay=0.1)),
    ("adam_amsgrad", "adam", dict(lr=0.1, beta2=0.5, amsgrad=True)),
    ("adam_amsgrad_weight_decay", "adam", dict(lr=0.1, beta1=0.5, beta2=0.5, weight_decay=0.1, amsgrad=True)),
]


def make_optimizer(kind, config, params):
    if kind == "sgd":
        return torch.optim.SGD(params, **config)
    betas = (config.pop("beta1"), config.pop("beta2"))
    return torch.optim.Adam(params, betas=betas, **config)


def run(kind, overrides):
    config = dict(SGD_DEFAULTS if kind == "sgd" else ADAM_DEFAULTS, **overrides)
    names = list(INITIAL)
    params = {n: torch.tensor(INITIAL[n], dtype=torch.float64, requires_grad=True) for n in names}
    # foreach=False pins the single-tensor code path the reference mirrors.
    opt = make_optimizer(kind, dict(config, foreach=False), [params[n] for n in names])
    grads, trajectory = [], []
    for step in range(STEPS):
        opt.zero_grad()
        fed = {}
        with torch.no_grad():
            for n in names:
                p = params[n]
                curvature = torch.tensor(CURVATURE[n], dtype=torch.float64)
                offset = torch.tensor(OFFSET[n], dtype=torch.float64)
                g = (curvature * p + offset + 0.3 * torch.sin(p)) * SCALES[step]
                p.grad = g.clone()
                fed[n] = g.tolist()
        opt.step()
        grads.append(fed)
        trajectory.append({n: params[n].detach().tolist() for n in names})
    return {"optimizer": {kind: config}, "grads": grads, "params": trajectory}


def main():
    torch.set_default_dtype(torch.float64)
    cases = []
    for name, kind, overrides in CASES:
        case = {"name": name}
        case.update(run(kind, overrides))
        case["initial"] = INITIAL
        cases.append(case)
    print(json.dumps({"torch": torch.__version__, "steps": STEPS, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
