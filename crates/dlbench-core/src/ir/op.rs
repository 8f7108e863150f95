use serde::{Deserialize, Serialize};

/// Attributes of a 2-D convolution (PyTorch `Conv2d` semantics, symmetric zero padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Attributes of a 2-D pooling window (PyTorch `MaxPool2d` / `AvgPool2d` semantics).
///
/// `count_include_pad` only matters for average pooling. With `ceil_mode`, a window that would
/// start inside the right padding is dropped, as PyTorch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

impl Pool2d {
    /// A `k x k` window with stride `k`, no padding, floor mode (PyTorch's defaults).
    pub fn square(k: usize) -> Self {
        Pool2d {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

/// Which way an LSTM reads the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

/// Attributes of an LSTM layer (PyTorch `nn.LSTM` semantics, zero initial state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lstm {
    pub hidden: usize,
    pub direction: Direction,
    pub batch_first: bool,
}

/// The closed set of operations. Adding a variant must fail to compile in every backend until
/// it handles the op or says `Unsupported` explicitly: match on it without a wildcard arm.
///
/// Inputs are listed per variant; `?` marks an optional trailing input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// `y = x W^T + b`. Inputs: x `[.., in]`, weight `[out, in]`, bias? `[out]`.
    Dense,
    /// Matrix product. Inputs: a `[.., m, k]`, b `[k, n]` or `[.., k, n]` (same leading dims).
    MatMul,
    /// Inputs: x `[N, C, H, W]`, weight `[O, C/groups, kh, kw]`, bias? `[O]`.
    Conv2d(Conv2d),
    /// Inputs: x `[N, C, H, W]`. Padding is -inf.
    MaxPool2d(Pool2d),
    /// Inputs: x `[N, C, H, W]`. Padding is zeros, counted in the divisor if `count_include_pad`.
    AvgPool2d(Pool2d),
    /// Keeps the dims before `axis` and flattens the rest into one (PyTorch `start_dim`).
    Flatten {
        axis: usize,
    },
    /// New shape; `0` copies the input dim at that position, one `-1` is inferred (ONNX).
    Reshape {
        shape: Vec<i64>,
    },
    /// Permutes dims: output dim `i` is input dim `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// Joins its inputs along `axis`.
    Concat {
        axis: usize,
    },
    Relu,
    Sigmoid,
    Tanh,
    /// Softmax along `axis` (negative counts from the end).
    Softmax {
        axis: i64,
    },
    LogSoftmax {
        axis: i64,
    },
    /// Inputs: x, mask (same shape, 0/1, from the harness). Training: `x * mask / (1 - p)`;
    /// inference: `x`.
    Dropout {
        p: f64,
    },
    /// Inputs: x (`[N, T, I]` if batch_first else `[T, N, I]`), w_ih `[4H, I]`, w_hh `[4H, H]`,
    /// b_ih `[4H]`, b_hh `[4H]`, and for the reverse direction of a bidirectional layer the
    /// same four again. Outputs: Y (`[N, T, D*H]` or `[T, N, D*H]`), Y_h `[D, N, H]`,
    /// Y_c `[D, N, H]`. Gates in order i, f, g, o.
    Lstm(Lstm),
    /// Element-wise with numpy broadcasting.
    Add,
    Sub,
    Mul,
    Exp,
    /// `y = factor * x`.
    Scale {
        factor: f64,
    },
    /// Mean squared error over every element. Inputs: prediction, target. Output: scalar.
    MseLoss,
    /// Softmax cross-entropy, mean over the batch. Inputs: logits `[N, C]`, labels i64 `[N]`.
    CrossEntropyLoss,
    /// Binary cross-entropy on probabilities, mean over every element, each log clamped at
    /// -100 (PyTorch `BCELoss`). Inputs: probabilities, target.
    BceLoss,
    /// Binary cross-entropy on logits, numerically stable, mean over every element.
    BceWithLogitsLoss,
    /// The VAE's negative ELBO, summed over features and averaged over the batch:
    /// `BCE(recon, x) + KL(N(mu, exp(logvar)) || N(0, 1))`.
    /// Inputs: recon (probabilities) `[N, D]`, mu `[N, Z]`, logvar `[N, Z]`, x `[N, D]`.
    VaeElboLoss,
}

impl Op {
    /// The op's name as written in specs, graphs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dense => "dense",
            Op::MatMul => "mat_mul",
            Op::Conv2d(_) => "conv2d",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::Flatten { .. } => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Relu => "relu",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Dropout { .. } => "dropout",
            Op::Lstm(_) => "lstm",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Exp => "exp",
            Op::Scale { .. } => "scale",
            Op::MseLoss => "mse_loss",
            Op::CrossEntropyLoss => "cross_entropy_loss",
            Op::BceLoss => "bce_loss",
            Op::BceWithLogitsLoss => "bce_with_logits_loss",
            Op::VaeElboLoss => "vae_elbo_loss",
        }
    }

    pub fn is_loss(&self) -> bool {
        matches!(
            self,
            Op::MseLoss
                | Op::CrossEntropyLoss
                | Op::BceLoss
                | Op::BceWithLogitsLoss
                | Op::VaeElboLoss
        )
    }
}
