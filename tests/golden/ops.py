"""Golden single-op forward and backward values from real PyTorch, for the f64 reference ops.

Regenerate (from the repository root, in a throw-away virtualenv outside the repo):

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.11.0 numpy
    /tmp/venv-torch/bin/python tests/golden/ops.py > crates/dlbench-reference/tests/golden/ops.json

Written with torch 2.11.0 (the JSON's "torch" field records the exact build).

Each case runs one PyTorch op in float64 on seeded random inputs, draws a random upstream
gradient g_k for each output y_k, and backpropagates sum_k sum(g_k * y_k). The JSON keeps the
op in dlbench's own serde format (so the Rust test deserializes an `Op`), the inputs in
dlbench's input order, the outputs, the upstream gradients, and the gradient of every input
(null where PyTorch has none: integer labels).

Inputs and upstream gradients are rounded to float32 values: JSON parsers may read a decimal
1 ulp away from the float64 Python wrote, and rounding a parsed float32 value to float32 takes
that back out, so the Rust side computes on exactly the same numbers. Outputs and gradients
are full float64 and are compared with a tolerance.
"""

import json
import math

import torch
import torch.nn.functional as F

SEED = 20240612

DTYPE = torch.float64


def f32_exact(t):
    return t.to(torch.float32).to(DTYPE)


def randn(*shape, scale=1.0):
    return f32_exact(torch.randn(*shape, dtype=DTYPE) * scale)


def probabilities(*shape):
    """Probabilities strictly inside (0, 1), as a sigmoid would give."""
    return f32_exact(torch.sigmoid(torch.randn(*shape, dtype=DTYPE) * 2))


def tensor_json(t):
    if t is None:
        return None
    data = t.detach().reshape(-1).tolist()
    if t.dtype == torch.int64:
        return {"shape": list(t.shape), "dtype": "i64", "data": data}
    # JSON has no inf or NaN: those are written as the strings "inf", "-inf" and "nan".
    data = [v if math.isfinite(v) else repr(v) for v in data]
    return {"shape": list(t.shape), "dtype": "f64", "data": data}


def input_json(t):
    if t.is_floating_point():
        assert torch.equal(t, f32_exact(t)), "inputs must be float32 values"
    return tensor_json(t)


CASES = []


def case(family, name, op, fn, inputs):
    """Runs `fn(*inputs)` (a tensor or a tuple of tensors) and records one case.

    Floating-point inputs are differentiated; integer inputs (labels) are not.
    """
    leaves = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    outputs = fn(*leaves)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    grads = [f32_exact(torch.randn(y.shape, dtype=DTYPE)) for y in outputs]
    sum(torch.sum(g * y) for g, y in zip(grads, outputs)).backward()
    CASES.append({
        "family": family,
        "name": name,
        "op": op,
        "inputs": [input_json(x) for x in inputs],
        "outputs": [tensor_json(y) for y in outputs],
        "output_grads": [input_json(g) for g in grads],
        "input_grads": [tensor_json(x.grad) if x.is_floating_point() else None
                        for x in leaves],
    })


# ------------------------------------------------------------------------------------ conv

def conv_op(stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: list(v) if isinstance(v, tuple) else [v, v]
    return {"type": "conv2d", "stride": pair(stride), "padding": pair(padding),
            "dilation": pair(dilation), "groups": groups}


def conv_case(name, x, w, bias=True, **attrs):
    inputs = [randn(*x), randn(*w)] + ([randn(w[0])] if bias else [])
    case("conv2d", name, conv_op(**attrs),
         lambda *t: F.conv2d(*t, **attrs), inputs)


def conv_cases():
    conv_case("plain_bias", [2, 3, 6, 6], [4, 3, 3, 3])
    conv_case("plain_no_bias", [1, 2, 5, 4], [3, 2, 3, 3], bias=False)
    conv_case("stride2_pad1", [1, 2, 7, 7], [3, 2, 3, 3], stride=2, padding=1)
    conv_case("dilation2", [1, 2, 7, 8], [2, 2, 3, 3], dilation=2)
    conv_case("groups2", [2, 4, 5, 5], [6, 2, 3, 3], groups=2, padding=1)
    conv_case("depthwise", [1, 3, 6, 5], [3, 1, 3, 3], groups=3)
    conv_case("depthwise_multiplier2", [1, 3, 5, 5], [6, 1, 2, 2], groups=3, stride=2)
    conv_case("kernel2x3_stride2x1_pad0x1", [2, 2, 7, 6], [3, 2, 2, 3],
              stride=(2, 1), padding=(0, 1))


# ------------------------------------------------------------------------------------ pool

def pool_op(kind, kernel, stride, padding=0, ceil_mode=False, count_include_pad=True):
    pair = lambda v: list(v) if isinstance(v, tuple) else [v, v]
    return {"type": kind, "kernel": pair(kernel), "stride": pair(stride),
            "padding": pair(padding), "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad}


def max_pool_case(name, x, kernel, stride, padding=0, ceil_mode=False):
    # Random normal values: no ties, so the argmax (where the gradient goes) is unambiguous.
    case("max_pool2d", name, pool_op("max_pool2d", kernel, stride, padding, ceil_mode),
         lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode), [randn(*x)])


def avg_pool_case(name, x, kernel, stride, padding=0, ceil_mode=False, count_include_pad=True):
    case("avg_pool2d", name,
         pool_op("avg_pool2d", kernel, stride, padding, ceil_mode, count_include_pad),
         lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode,
                                count_include_pad=count_include_pad),
         [randn(*x)])


def pool_cases():
    max_pool_case("k3_s2_p1", [1, 2, 7, 7], 3, 2, 1)
    max_pool_case("k2_s2_ceil_odd", [1, 2, 5, 5], 2, 2, ceil_mode=True)
    max_pool_case("k3_s2_p1_ceil", [1, 2, 6, 6], 3, 2, 1, ceil_mode=True)
    # With k3 s2 p1 no window can start in the right padding; these two hit the rule that
    # drops such a window (5 + 2 padding gives 4 windows in ceil mode, PyTorch keeps 3).
    max_pool_case("k2_s2_p1_ceil_drops_last", [1, 2, 5, 5], 2, 2, 1, ceil_mode=True)
    max_pool_case("k3_s3_p1_ceil_drops_last", [2, 1, 5, 7], 3, 3, 1, ceil_mode=True)
    max_pool_case("k2x3_s2x1", [1, 2, 6, 5], (2, 3), (2, 1))
    for include in (True, False):
        tag = "include_pad" if include else "exclude_pad"
        avg_pool_case(f"k3_s2_p1_{tag}", [1, 2, 6, 6], 3, 2, 1, count_include_pad=include)
        avg_pool_case(f"k3_s2_p1_ceil_{tag}", [1, 2, 6, 6], 3, 2, 1, ceil_mode=True,
                      count_include_pad=include)
        avg_pool_case(f"k2_s2_ceil_odd_{tag}", [1, 2, 5, 5], 2, 2, ceil_mode=True,
                      count_include_pad=include)
        avg_pool_case(f"k2_s2_p1_ceil_drops_last_{tag}", [1, 2, 5, 5], 2, 2, 1,
                      ceil_mode=True, count_include_pad=include)
        avg_pool_case(f"k3_s3_p1_ceil_drops_last_{tag}", [2, 1, 5, 7], 3, 3, 1,
                      ceil_mode=True, count_include_pad=include)


# ------------------------------------------------------------------------------------ lstm

HIDDEN, INPUT, STEPS, BATCH = 3, 2, 4, 2


def lstm_case(name, batch_first, bidirectional):
    module = torch.nn.LSTM(INPUT, HIDDEN, batch_first=batch_first,
                           bidirectional=bidirectional).double()
    # dlbench's input order is torch's parameter order: w_ih, w_hh, b_ih, b_hh, then the
    # same four `_reverse` ones.
    names = [n for n, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    x_shape = [BATCH, STEPS, INPUT] if batch_first else [STEPS, BATCH, INPUT]
    inputs = [randn(*x_shape)] + [randn(*s) for s in shapes]

    def run(x, *weights):
        y, (h, c) = torch.func.functional_call(module, dict(zip(names, weights)), (x,))
        return y, h, c

    op = {"type": "lstm", "hidden": HIDDEN,
          "direction": "bidirectional" if bidirectional else "forward",
          "batch_first": batch_first}
    case("lstm", name, op, run, inputs)


def lstm_cases():
    for batch_first in (False, True):
        for bidirectional in (False, True):
            layout = "batch_first" if batch_first else "seq_first"
            direction = "bidirectional" if bidirectional else "forward"
            lstm_case(f"{direction}_{layout}", batch_first, bidirectional)


# ---------------------------------------------------------------------------------- linear

def linear_cases():
    case("linear", "dense_3d_bias", {"type": "dense"}, F.linear,
         [randn(2, 3, 4), randn(5, 4), randn(5)])
    case("linear", "dense_2d_no_bias", {"type": "dense"}, F.linear, [randn(3, 4), randn(2, 4)])
    case("linear", "matmul_3d_2d", {"type": "mat_mul"}, torch.matmul,
         [randn(2, 3, 4), randn(4, 5)])
    case("linear", "matmul_3d_3d", {"type": "mat_mul"}, torch.matmul,
         [randn(2, 3, 4), randn(2, 4, 5)])


# --------------------------------------------------------------------------------- softmax

def softmax_cases():
    case("softmax", "softmax_dim1", {"type": "softmax", "axis": 1},
         lambda t: F.softmax(t, dim=1), [randn(2, 4, 3, scale=3)])
    case("softmax", "log_softmax_dim1", {"type": "log_softmax", "axis": 1},
         lambda t: F.log_softmax(t, dim=1), [randn(2, 4, 3, scale=3)])
    case("softmax", "softmax_dim_minus1", {"type": "softmax", "axis": -1},
         lambda t: F.softmax(t, dim=-1), [randn(2, 4, 3, scale=3)])
    case("softmax", "log_softmax_dim_minus1", {"type": "log_softmax", "axis": -1},
         lambda t: F.log_softmax(t, dim=-1), [randn(2, 4, 3, scale=3)])


# ---------------------------------------------------------------------------------- losses

def vae_elbo(recon, mu, logvar, x):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp())
    return (bce + kl) / recon.shape[0]


def loss_cases():
    case("loss", "mse", {"type": "mse_loss"}, F.mse_loss, [randn(3, 4), randn(3, 4)])
    case("loss", "cross_entropy", {"type": "cross_entropy_loss"}, F.cross_entropy,
         [randn(4, 5, scale=3), torch.tensor([0, 4, 2, 2])])
    case("loss", "cross_entropy_large_logits", {"type": "cross_entropy_loss"}, F.cross_entropy,
         [torch.tensor([[800.0, -40.0, 2.0], [-700.0, 0.5, 30.0]], dtype=DTYPE),
          torch.tensor([1, 2])])
    case("loss", "bce_hard_targets", {"type": "bce_loss"}, F.binary_cross_entropy,
         [probabilities(3, 4), torch.randint(0, 2, (3, 4)).to(DTYPE)])
    case("loss", "bce_soft_targets", {"type": "bce_loss"}, F.binary_cross_entropy,
         [probabilities(2, 5), f32_exact(torch.rand(2, 5, dtype=DTYPE))])
    # Probabilities exactly 0 and 1, matching and mismatching their targets, and 2^-149 (the
    # smallest float32, whose log is below the clamp): each log is clamped at -100, d/dp is
    # PyTorch's (p - t) / max(p (1 - p), 1e-12f), not the derivative of the clamped loss (ATen's
    # epsilon is a float, 9.99999996e-13 in double), and
    # d/dt is PyTorch's unclamped -logit(p), infinite at p = 0 or 1.
    case("loss", "bce_saturated", {"type": "bce_loss"}, F.binary_cross_entropy,
         [torch.tensor([0.0, 1.0, 0.0, 1.0, 2.0 ** -149, 2.0 ** -149, 1 - 2.0 ** -24, 0.5],
                       dtype=DTYPE),
          torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], dtype=DTYPE)])
    case("loss", "bce_with_logits", {"type": "bce_with_logits_loss"},
         F.binary_cross_entropy_with_logits,
         [randn(3, 4, scale=3), f32_exact(torch.rand(3, 4, dtype=DTYPE))])
    case("loss", "bce_with_logits_large", {"type": "bce_with_logits_loss"},
         F.binary_cross_entropy_with_logits,
         [torch.tensor([40.0, -40.0, 40.0, -40.0, 700.0, -700.0], dtype=DTYPE),
          torch.tensor([0.0, 1.0, 1.0, 0.0, 0.25, 0.75], dtype=DTYPE)])
    case("loss", "vae_elbo", {"type": "vae_elbo_loss"}, vae_elbo,
         [probabilities(3, 6), randn(3, 2), randn(3, 2), f32_exact(torch.rand(3, 6, dtype=DTYPE))])
    case("loss", "vae_elbo_binary_x", {"type": "vae_elbo_loss"}, vae_elbo,
         [probabilities(2, 5), randn(2, 3), randn(2, 3),
          torch.randint(0, 2, (2, 5)).to(DTYPE)])
    # The ELBO's reconstruction term is BCE too: the same saturated rules hold inside it.
    case("loss", "vae_elbo_saturated", {"type": "vae_elbo_loss"}, vae_elbo,
         [torch.tensor([[0.0, 1.0, 0.25], [1.0, 0.0, 2.0 ** -149]], dtype=DTYPE),
          randn(2, 2), randn(2, 2),
          torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=DTYPE)])


# ----------------------------------------------------------------------------- elementwise

def elementwise_cases():
    for kind, fn in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)):
        case("elementwise", f"{kind}_broadcast", {"type": kind}, fn,
             [randn(2, 3, 4), randn(3, 1)])
        case("elementwise", f"{kind}_broadcast_swapped", {"type": kind}, fn,
             [randn(3, 1), randn(2, 3, 4)])
    for kind, fn in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu),
                     ("exp", torch.exp)):
        case("elementwise", kind, {"type": kind}, fn, [randn(2, 3, 4, scale=2)])


# ------------------------------------------------------------------ layout, scale, dropout
# Added after the others, so that the random draws of every earlier case stay as they were.

def layout_cases():
    case("layout", "flatten_axis1", {"type": "flatten", "axis": 1},
         lambda t: torch.flatten(t, 1), [randn(2, 3, 4)])
    case("layout", "flatten_axis2", {"type": "flatten", "axis": 2},
         lambda t: torch.flatten(t, 2), [randn(2, 3, 4, 2)])
    # dlbench's reshape is ONNX's: 0 copies the input dim (the batch here), -1 is inferred.
    case("layout", "reshape_0_minus1_2", {"type": "reshape", "shape": [0, -1, 2]},
         lambda t: t.reshape(t.shape[0], -1, 2), [randn(2, 3, 4)])
    case("layout", "transpose_2_0_1", {"type": "transpose", "perm": [2, 0, 1]},
         lambda t: t.permute(2, 0, 1), [randn(2, 3, 4)])
    case("layout", "concat_axis1", {"type": "concat", "axis": 1},
         lambda *t: torch.cat(t, 1), [randn(2, 1, 3), randn(2, 4, 3), randn(2, 2, 3)])


def dropout_case(name, shape, p, seed):
    """PyTorch's own dropout (training mode) with the mask it draws under `seed`, which
    becomes dlbench's mask input (the harness feeds masks; PyTorch's RNG cannot be shared).
    The mask gets no gradient, in PyTorch as in dlbench."""
    def dropout(x):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return F.dropout(x, p, training=True)

    mask = (dropout(torch.ones(*shape, dtype=DTYPE)) != 0).to(DTYPE)
    x = randn(*shape)

    def run(x, _mask):
        y = dropout(x)
        assert torch.equal(y != 0, mask != 0), "the mask must be the one drawn"
        return y

    case("elementwise", name, {"type": "dropout", "p": p}, run, [x, mask])


def scale_and_dropout_cases():
    case("elementwise", "scale", {"type": "scale", "factor": -2.5},
         lambda t: t * -2.5, [randn(2, 3, 4)])
    dropout_case("dropout_p0.3", [4, 5], 0.3, 7)
    dropout_case("dropout_p0.5", [2, 3, 4], 0.5, 8)


def main():
    torch.manual_seed(SEED)
    conv_cases()
    pool_cases()
    lstm_cases()
    linear_cases()
    softmax_cases()
    loss_cases()
    elementwise_cases()
    layout_cases()
    scale_and_dropout_cases()
    lines = ",\n".join(json.dumps(c, allow_nan=False) for c in CASES)
    print('{"torch": %s, "seed": %d, "cases": [\n%s\n]}'
          % (json.dumps(torch.__version__), SEED, lines))


if __name__ == "__main__":
    main()
