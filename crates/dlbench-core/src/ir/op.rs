//! The closed set of IR operations: [`Op`], its families ([`UnaryOp`], [`BinaryOp`],
//! [`LossOp`]) and their attributes, the enumerable [`OpKind`]s every suite must cover, and the
//! flat serialized form saved graphs use.

use serde::{Deserialize, Serialize};
use strum::{EnumDiscriminants, EnumIter, IntoEnumIterator};

/// Attributes of a 2-D convolution (PyTorch `Conv2d` semantics, symmetric zero padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Step between windows, `[h, w]`.
    pub stride: [usize; 2],
    /// Zeros added on both sides, `[h, w]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `[h, w]` (1: adjacent).
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels split into `groups` independent
    /// convolutions (`groups == C`: depthwise).
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
    /// Window size, `[h, w]`.
    pub kernel: [usize; 2],
    /// Step between windows, `[h, w]`.
    pub stride: [usize; 2],
    /// Padding on both sides, `[h, w]`, at most half the kernel.
    pub padding: [usize; 2],
    /// Rounds the output length up (a last, partial window) instead of down.
    pub ceil_mode: bool,
    /// Average pooling divides by the whole window, padding included, instead of by the real
    /// input elements it covers.
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
    /// From the first time step to the last.
    Forward,
    /// From the last time step to the first.
    Reverse,
    /// Both, outputs concatenated along features (forward first).
    Bidirectional,
}

/// Attributes of an LSTM layer (PyTorch `nn.LSTM` semantics, zero initial state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lstm {
    /// Hidden size `H` (features of h and c).
    pub hidden: usize,
    /// Which way the sequence is read.
    pub direction: Direction,
    /// x and Y are `[N, T, ..]` instead of `[T, N, ..]`.
    pub batch_first: bool,
}

/// An element-wise op of one input, output shaped like it.
#[derive(Debug, Clone, Copy, PartialEq, EnumDiscriminants)]
#[strum_discriminants(name(UnaryKind), derive(Hash, PartialOrd, Ord, EnumIter))]
pub enum UnaryOp {
    /// `max(x, 0)`; NaN stays NaN, the gradient at 0 is 0 (PyTorch).
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `e^x`.
    Exp,
    /// `y = factor * x`.
    Scale {
        /// The constant multiplier.
        factor: f64,
    },
}

impl UnaryOp {
    /// The op without its attributes.
    pub fn kind(self) -> UnaryKind {
        UnaryKind::from(self)
    }
}

/// An element-wise op of two inputs, with numpy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
}

/// A loss: a scalar from a prediction and a target. The same enum names the loss a training
/// configuration appends to a graph ([`crate::training::Loss`]); its serde names (`mse`,
/// `binary_cross_entropy`...) are the spec file's `loss:` names, and a graph's node spells it
/// as the op (`mse_loss`, see [`OpKind::name`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LossOp {
    /// Mean squared error over every element. Inputs: prediction, target. Output: scalar.
    Mse,
    /// Softmax cross-entropy, mean over the batch. Inputs: logits `[N, C]`, labels i64 `[N]`.
    CrossEntropy,
    /// Binary cross-entropy on probabilities, mean over every element, each log clamped at
    /// -100 (PyTorch `BCELoss`). Inputs: probabilities, target.
    BinaryCrossEntropy,
    /// Binary cross-entropy on logits, numerically stable, mean over every element.
    BinaryCrossEntropyWithLogits,
    /// The VAE's negative ELBO, summed over features and averaged over the batch:
    /// `BCE(recon, x) + KL(N(mu, exp(logvar)) || N(0, 1))`.
    /// Inputs: recon (probabilities) `[N, D]`, mu `[N, Z]`, logvar `[N, Z]`, x `[N, D]`.
    VaeElbo,
}

/// The closed set of operations. Adding a variant must fail to compile in every backend until
/// it handles the op or says `Unsupported` explicitly: match on it without a wildcard arm.
/// Ops that share their inputs, shapes and gradient structure form a family, a closed
/// sub-enum ([`UnaryOp`], [`BinaryOp`], [`LossOp`]) matched the same way one level down.
///
/// Inputs are listed per variant; `?` marks an optional trailing input. The serialized form
/// is flat and internally tagged (`{"type": "relu"}`, `{"type": "scale", "factor": 2.0}`),
/// as graphs in saved models have it: the families do not show in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EnumDiscriminants)]
#[serde(from = "FlatOp", into = "FlatOp")]
#[strum_discriminants(name(OpTag), derive(Hash, PartialOrd, Ord, EnumIter))]
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
        /// The first dim flattened.
        axis: usize,
    },
    /// New shape; `0` copies the input dim at that position, one `-1` is inferred (ONNX).
    Reshape {
        /// The target shape, batch dim included.
        shape: Vec<i64>,
    },
    /// Permutes dims: output dim `i` is input dim `perm[i]`.
    Transpose {
        /// The input dim each output dim takes.
        perm: Vec<usize>,
    },
    /// Joins its inputs along `axis`.
    Concat {
        /// The dim the inputs are joined along.
        axis: usize,
    },
    /// Element-wise, one input: Relu, Sigmoid, Tanh, Exp, Scale.
    Unary(UnaryOp),
    /// Softmax along `axis` (negative counts from the end).
    Softmax {
        /// The dim normalised over.
        axis: i64,
    },
    /// `log(softmax(x))` along `axis`, computed stably.
    LogSoftmax {
        /// The dim normalised over (negative counts from the end).
        axis: i64,
    },
    /// Inputs: x, mask (same shape, 0/1, from the harness). Training: `x * mask / (1 - p)`;
    /// inference: `x`.
    Dropout {
        /// The probability an element is dropped, in `[0, 1)`.
        p: f64,
    },
    /// Inputs: x (`[N, T, I]` if batch_first else `[T, N, I]`), w_ih `[4H, I]`, w_hh `[4H, H]`,
    /// b_ih `[4H]`, b_hh `[4H]`, and for the reverse direction of a bidirectional layer the
    /// same four again. Outputs: Y (`[N, T, D*H]` or `[T, N, D*H]`), Y_h `[D, N, H]`,
    /// Y_c `[D, N, H]`. Gates in order i, f, g, o.
    Lstm(Lstm),
    /// Element-wise with numpy broadcasting: Add, Sub, Mul.
    Binary(BinaryOp),
    /// A loss; output: a scalar.
    Loss(LossOp),
}

/// One leaf op, without its attributes: the unit that a backend implements, a conformance
/// case, a golden case and a gradient check cover. [`OpKind::all`] lists every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Op::Dense`].
    Dense,
    /// [`Op::MatMul`].
    MatMul,
    /// [`Op::Conv2d`].
    Conv2d,
    /// [`Op::MaxPool2d`].
    MaxPool2d,
    /// [`Op::AvgPool2d`].
    AvgPool2d,
    /// [`Op::Flatten`].
    Flatten,
    /// [`Op::Reshape`].
    Reshape,
    /// [`Op::Transpose`].
    Transpose,
    /// [`Op::Concat`].
    Concat,
    /// One member of [`Op::Unary`].
    Unary(UnaryKind),
    /// [`Op::Softmax`].
    Softmax,
    /// [`Op::LogSoftmax`].
    LogSoftmax,
    /// [`Op::Dropout`].
    Dropout,
    /// [`Op::Lstm`].
    Lstm,
    /// One member of [`Op::Binary`].
    Binary(BinaryOp),
    /// One member of [`Op::Loss`].
    Loss(LossOp),
}

impl OpKind {
    /// Every leaf op: each top-level variant of [`Op`], a family expanded into its members.
    pub fn all() -> Vec<OpKind> {
        OpTag::iter()
            .flat_map(|tag| -> Vec<OpKind> {
                match tag {
                    OpTag::Dense => vec![OpKind::Dense],
                    OpTag::MatMul => vec![OpKind::MatMul],
                    OpTag::Conv2d => vec![OpKind::Conv2d],
                    OpTag::MaxPool2d => vec![OpKind::MaxPool2d],
                    OpTag::AvgPool2d => vec![OpKind::AvgPool2d],
                    OpTag::Flatten => vec![OpKind::Flatten],
                    OpTag::Reshape => vec![OpKind::Reshape],
                    OpTag::Transpose => vec![OpKind::Transpose],
                    OpTag::Concat => vec![OpKind::Concat],
                    OpTag::Unary => UnaryKind::iter().map(OpKind::Unary).collect(),
                    OpTag::Softmax => vec![OpKind::Softmax],
                    OpTag::LogSoftmax => vec![OpKind::LogSoftmax],
                    OpTag::Dropout => vec![OpKind::Dropout],
                    OpTag::Lstm => vec![OpKind::Lstm],
                    OpTag::Binary => BinaryOp::iter().map(OpKind::Binary).collect(),
                    OpTag::Loss => LossOp::iter().map(OpKind::Loss).collect(),
                }
            })
            .collect()
    }

    /// The op's name as written in specs, graphs and error messages: its serialized `type`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Dense => "dense",
            OpKind::MatMul => "mat_mul",
            OpKind::Conv2d => "conv2d",
            OpKind::MaxPool2d => "max_pool2d",
            OpKind::AvgPool2d => "avg_pool2d",
            OpKind::Flatten => "flatten",
            OpKind::Reshape => "reshape",
            OpKind::Transpose => "transpose",
            OpKind::Concat => "concat",
            OpKind::Unary(u) => match u {
                UnaryKind::Relu => "relu",
                UnaryKind::Sigmoid => "sigmoid",
                UnaryKind::Tanh => "tanh",
                UnaryKind::Exp => "exp",
                UnaryKind::Scale => "scale",
            },
            OpKind::Softmax => "softmax",
            OpKind::LogSoftmax => "log_softmax",
            OpKind::Dropout => "dropout",
            OpKind::Lstm => "lstm",
            OpKind::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
            },
            OpKind::Loss(l) => match l {
                LossOp::Mse => "mse_loss",
                LossOp::CrossEntropy => "cross_entropy_loss",
                LossOp::BinaryCrossEntropy => "bce_loss",
                LossOp::BinaryCrossEntropyWithLogits => "bce_with_logits_loss",
                LossOp::VaeElbo => "vae_elbo_loss",
            },
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Op {
    /// The leaf op this is, without its attributes.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Dense => OpKind::Dense,
            Op::MatMul => OpKind::MatMul,
            Op::Conv2d(_) => OpKind::Conv2d,
            Op::MaxPool2d(_) => OpKind::MaxPool2d,
            Op::AvgPool2d(_) => OpKind::AvgPool2d,
            Op::Flatten { .. } => OpKind::Flatten,
            Op::Reshape { .. } => OpKind::Reshape,
            Op::Transpose { .. } => OpKind::Transpose,
            Op::Concat { .. } => OpKind::Concat,
            Op::Unary(u) => OpKind::Unary(u.kind()),
            Op::Softmax { .. } => OpKind::Softmax,
            Op::LogSoftmax { .. } => OpKind::LogSoftmax,
            Op::Dropout { .. } => OpKind::Dropout,
            Op::Lstm(_) => OpKind::Lstm,
            Op::Binary(b) => OpKind::Binary(*b),
            Op::Loss(l) => OpKind::Loss(*l),
        }
    }

    /// The op's name as written in specs, graphs and error messages.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Whether the op is a loss (a training graph's last node).
    pub fn is_loss(&self) -> bool {
        matches!(self, Op::Loss(_))
    }

    /// The output names of a node `node` of this op: the node's name for a single output,
    /// `<node>.y`, `<node>.y_h`, `<node>.y_c` for an LSTM.
    pub fn output_names(&self, node: &str) -> Vec<String> {
        match self {
            Op::Lstm(_) => ["y", "y_h", "y_c"]
                .iter()
                .map(|s| format!("{node}.{s}"))
                .collect(),
            Op::Dense
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Unary(_)
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout { .. }
            | Op::Binary(_)
            | Op::Loss(_) => vec![node.to_string()],
        }
    }
}

/// [`Op`] as it is serialized: one flat, internally tagged enum, the form graphs have in saved
/// models and golden files (written before the families existed). Only the conversions below
/// use it; both are exhaustive, so a new op cannot be left out of the format.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FlatOp {
    Dense,
    MatMul,
    Conv2d(Conv2d),
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
    Flatten { axis: usize },
    Reshape { shape: Vec<i64> },
    Transpose { perm: Vec<usize> },
    Concat { axis: usize },
    Relu,
    Sigmoid,
    Tanh,
    Softmax { axis: i64 },
    LogSoftmax { axis: i64 },
    Dropout { p: f64 },
    Lstm(Lstm),
    Add,
    Sub,
    Mul,
    Exp,
    Scale { factor: f64 },
    MseLoss,
    CrossEntropyLoss,
    BceLoss,
    BceWithLogitsLoss,
    VaeElboLoss,
}

impl From<FlatOp> for Op {
    fn from(flat: FlatOp) -> Op {
        match flat {
            FlatOp::Dense => Op::Dense,
            FlatOp::MatMul => Op::MatMul,
            FlatOp::Conv2d(attrs) => Op::Conv2d(attrs),
            FlatOp::MaxPool2d(p) => Op::MaxPool2d(p),
            FlatOp::AvgPool2d(p) => Op::AvgPool2d(p),
            FlatOp::Flatten { axis } => Op::Flatten { axis },
            FlatOp::Reshape { shape } => Op::Reshape { shape },
            FlatOp::Transpose { perm } => Op::Transpose { perm },
            FlatOp::Concat { axis } => Op::Concat { axis },
            FlatOp::Relu => Op::Unary(UnaryOp::Relu),
            FlatOp::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
            FlatOp::Tanh => Op::Unary(UnaryOp::Tanh),
            FlatOp::Softmax { axis } => Op::Softmax { axis },
            FlatOp::LogSoftmax { axis } => Op::LogSoftmax { axis },
            FlatOp::Dropout { p } => Op::Dropout { p },
            FlatOp::Lstm(attrs) => Op::Lstm(attrs),
            FlatOp::Add => Op::Binary(BinaryOp::Add),
            FlatOp::Sub => Op::Binary(BinaryOp::Sub),
            FlatOp::Mul => Op::Binary(BinaryOp::Mul),
            FlatOp::Exp => Op::Unary(UnaryOp::Exp),
            FlatOp::Scale { factor } => Op::Unary(UnaryOp::Scale { factor }),
            FlatOp::MseLoss => Op::Loss(LossOp::Mse),
            FlatOp::CrossEntropyLoss => Op::Loss(LossOp::CrossEntropy),
            FlatOp::BceLoss => Op::Loss(LossOp::BinaryCrossEntropy),
            FlatOp::BceWithLogitsLoss => Op::Loss(LossOp::BinaryCrossEntropyWithLogits),
            FlatOp::VaeElboLoss => Op::Loss(LossOp::VaeElbo),
        }
    }
}

impl From<Op> for FlatOp {
    fn from(op: Op) -> FlatOp {
        match op {
            Op::Dense => FlatOp::Dense,
            Op::MatMul => FlatOp::MatMul,
            Op::Conv2d(attrs) => FlatOp::Conv2d(attrs),
            Op::MaxPool2d(p) => FlatOp::MaxPool2d(p),
            Op::AvgPool2d(p) => FlatOp::AvgPool2d(p),
            Op::Flatten { axis } => FlatOp::Flatten { axis },
            Op::Reshape { shape } => FlatOp::Reshape { shape },
            Op::Transpose { perm } => FlatOp::Transpose { perm },
            Op::Concat { axis } => FlatOp::Concat { axis },
            Op::Unary(u) => match u {
                UnaryOp::Relu => FlatOp::Relu,
                UnaryOp::Sigmoid => FlatOp::Sigmoid,
                UnaryOp::Tanh => FlatOp::Tanh,
                UnaryOp::Exp => FlatOp::Exp,
                UnaryOp::Scale { factor } => FlatOp::Scale { factor },
            },
            Op::Softmax { axis } => FlatOp::Softmax { axis },
            Op::LogSoftmax { axis } => FlatOp::LogSoftmax { axis },
            Op::Dropout { p } => FlatOp::Dropout { p },
            Op::Lstm(attrs) => FlatOp::Lstm(attrs),
            Op::Binary(b) => match b {
                BinaryOp::Add => FlatOp::Add,
                BinaryOp::Sub => FlatOp::Sub,
                BinaryOp::Mul => FlatOp::Mul,
            },
            Op::Loss(l) => match l {
                LossOp::Mse => FlatOp::MseLoss,
                LossOp::CrossEntropy => FlatOp::CrossEntropyLoss,
                LossOp::BinaryCrossEntropy => FlatOp::BceLoss,
                LossOp::BinaryCrossEntropyWithLogits => FlatOp::BceWithLogitsLoss,
                LossOp::VaeElbo => FlatOp::VaeElboLoss,
            },
        }
    }
}
