//! The options of each layer written as a mapping (`dense: {units: 10}`), with the spec
//! format's defaults, which are PyTorch's unless a field says otherwise.

use dlbench_core::ir::Direction;
use serde::Deserialize;

use super::Activation;
use crate::de;

fn yes() -> bool {
    true
}

fn ones() -> [usize; 2] {
    [1, 1]
}

/// `dense: {units: 100, activation: relu, bias: true}`: PyTorch `Linear` on the last axis.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    #[serde(deserialize_with = "de::positive")]
    /// Output features (PyTorch `out_features`), positive; required. The weight is
    /// `[units, in_features]`.
    pub units: usize,
    #[serde(default = "yes")]
    /// Whether to add a learned bias `[units]` (PyTorch `bias`); default true.
    pub bias: bool,
    #[serde(default)]
    /// An activation applied to the output, as its own node `<name>.<activation>`; default
    /// none.
    pub activation: Option<Activation>,
}

/// `conv2d: {filters: 32, kernel: 3, stride: 1, padding: 0, dilation: 1, groups: 1}`; each
/// of kernel, stride, padding and dilation is an integer or a pair `[h, w]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    #[serde(deserialize_with = "de::positive")]
    /// Output channels (PyTorch `out_channels`), positive; required. The weight is OIHW,
    /// `[filters, in_channels / groups, kernel_h, kernel_w]`.
    pub filters: usize,
    #[serde(deserialize_with = "de::positive_pair")]
    /// Kernel size `[h, w]` in pixels (PyTorch `kernel_size`), positive; required. An integer
    /// `k` means `[k, k]`.
    pub kernel: [usize; 2],
    #[serde(default = "ones", deserialize_with = "de::positive_pair")]
    /// Step between windows `[h, w]` in pixels, positive; default 1.
    pub stride: [usize; 2],
    #[serde(default, deserialize_with = "de::pair")]
    /// Zeros added on both sides of each spatial axis, `[h, w]` in pixels; default 0.
    pub padding: [usize; 2],
    #[serde(default = "ones", deserialize_with = "de::positive_pair")]
    /// Spacing between kernel taps `[h, w]` (1: adjacent), positive; default 1.
    pub dilation: [usize; 2],
    #[serde(default = "one", deserialize_with = "de::positive")]
    /// Channel groups (PyTorch `groups`): the channels split into `groups` independent
    /// convolutions, so the input channels must divide by it (equal to them: depthwise);
    /// positive, default 1.
    pub groups: usize,
    #[serde(default = "yes")]
    /// Whether to add a learned bias `[filters]` (PyTorch `bias`); default true.
    pub bias: bool,
    #[serde(default)]
    /// An activation applied to the output, as its own node `<name>.<activation>`; default
    /// none.
    pub activation: Option<Activation>,
}

fn one() -> usize {
    1
}

/// `max_pool2d: {kernel: 2, stride: 2, padding: 0, ceil_mode: false}` (stride defaults to the
/// kernel, as in PyTorch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPoolSpec {
    #[serde(deserialize_with = "de::positive_pair")]
    /// Window size `[h, w]` in pixels (PyTorch `kernel_size`), positive; required. An integer
    /// `k` means `[k, k]`.
    pub kernel: [usize; 2],
    #[serde(default, deserialize_with = "de::positive_pair_opt")]
    /// Step between windows `[h, w]` in pixels, positive; default (`None`) the kernel, as in
    /// PyTorch.
    pub stride: Option<[usize; 2]>,
    #[serde(default, deserialize_with = "de::pair")]
    /// Implicit padding on both sides of each spatial axis, `[h, w]` in pixels, at most half
    /// the kernel; default 0.
    pub padding: [usize; 2],
    #[serde(default)]
    /// Rounds the output size up, keeping a last partial window, instead of down (PyTorch
    /// `ceil_mode`); default false.
    pub ceil_mode: bool,
}

/// `avg_pool2d`: the options of `max_pool2d` and `count_include_pad` (default true).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPoolSpec {
    #[serde(deserialize_with = "de::positive_pair")]
    /// Window size `[h, w]` in pixels (PyTorch `kernel_size`), positive; required. An integer
    /// `k` means `[k, k]`.
    pub kernel: [usize; 2],
    #[serde(default, deserialize_with = "de::positive_pair_opt")]
    /// Step between windows `[h, w]` in pixels, positive; default (`None`) the kernel, as in
    /// PyTorch.
    pub stride: Option<[usize; 2]>,
    #[serde(default, deserialize_with = "de::pair")]
    /// Implicit padding on both sides of each spatial axis, `[h, w]` in pixels, at most half
    /// the kernel; default 0.
    pub padding: [usize; 2],
    #[serde(default)]
    /// Rounds the output size up, keeping a last partial window, instead of down (PyTorch
    /// `ceil_mode`); default false.
    pub ceil_mode: bool,
    #[serde(default = "yes")]
    /// Divides each window's sum by the whole window, padding included, instead of by the
    /// input elements it covers (PyTorch `count_include_pad`); default true.
    pub count_include_pad: bool,
}

fn half() -> f64 {
    0.5
}

/// `dropout: {p: 0.5}`: the probability of zeroing an element while training.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    #[serde(default = "half", deserialize_with = "de::fraction")]
    /// Probability of zeroing each element in training (PyTorch `p`), in [0, 1); default 0.5.
    pub p: f64,
}

/// What an LSTM layer passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LstmReturn {
    /// The final hidden state, `[batch, directions * hidden]` (Keras' default).
    #[default]
    Last,
    /// The hidden state at every step, Y (`return_sequences=True`).
    Sequence,
}

fn forward() -> Direction {
    Direction::Forward
}

/// `lstm: {hidden: 50, direction: forward, batch_first: true, return: last}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmSpec {
    #[serde(deserialize_with = "de::positive")]
    /// Hidden size (PyTorch `hidden_size`): features of the hidden and cell state, positive;
    /// required.
    pub hidden: usize,
    #[serde(default = "forward")]
    /// `forward`, `reverse` or `bidirectional` (PyTorch `bidirectional=True`: both ways,
    /// outputs concatenated along features, forward first); default `forward`.
    pub direction: Direction,
    #[serde(default = "yes")]
    /// Whether the input and a `sequence` output are `[batch, steps, features]` rather than
    /// `[steps, batch, features]` (PyTorch `batch_first`); default true, unlike PyTorch.
    pub batch_first: bool,
    #[serde(default, rename = "return")]
    /// YAML key `return`: `last` passes on the final hidden state, `sequence` every step;
    /// default `last`.
    pub returns: LstmReturn,
}

/// `reshape: {shape: [1, 8, 8]}`: the new shape of each sample (the batch dim is kept); one
/// entry may be -1, inferred from the others.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeSpec {
    /// The shape of each sample, without the batch dim (kept from the input); one entry may
    /// be -1, inferred from the others; required.
    pub shape: Vec<i64>,
}

/// `scale: {factor: 0.5}`: multiplies by a constant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    #[serde(deserialize_with = "de::finite")]
    /// The constant every element is multiplied by, any finite number; required.
    pub factor: f64,
}

/// `concat: {axis: 1}`: joins the inputs along an axis (0 is the batch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatSpec {
    /// The axis the inputs are joined along, the batch being 0; required. The inputs agree on
    /// every other axis.
    pub axis: usize,
}

/// `transpose: {perm: [0, 2, 1]}`: output dim `i` is input dim `perm[i]` (0 is the batch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransposeSpec {
    /// A permutation of all axes, the batch being 0: output dim `i` is input dim `perm[i]`;
    /// required.
    pub perm: Vec<usize>,
}
