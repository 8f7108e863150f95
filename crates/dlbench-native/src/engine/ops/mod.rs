//! One op family per file, mirroring `dlbench_reference::ops` in f32; this module dispatches a
//! [`Node`] to its family. Inputs were validated by shape inference and by the session's batch
//! check before they get here, so the families index without checks; what only the data can
//! break (a label out of range, a probability outside [0, 1]) comes back as an error naming
//! the node.

mod activation;
mod conv;
mod elementwise;
mod layout;
mod linear;
mod loss;
mod lstm;
mod pool;

use crate::kernels::isa::with_simd;
use crate::kernels::split::split_mut;
use dlbench_core::{Error, Mode, Node, Op, Result};

/// A value of the engine: a row-major f32 buffer and its shape. Class labels (the graph's i64
/// inputs) keep their integers in `labels` and leave `data` empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buf {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Buf {
    /// A float value; `data.len()` must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Buf {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Buf {
            shape,
            data,
            labels: Vec::new(),
        }
    }

    /// A label value (i64 class indices).
    #[cfg(test)]
    pub fn labels(shape: Vec<usize>, labels: Vec<i64>) -> Buf {
        Buf {
            shape,
            data: Vec::new(),
            labels,
        }
    }
}

/// What a step keeps from call to call: what its forward pass saved for its backward pass,
/// and the buffers its kernels reuse, so that a steady-state step allocates nothing (every
/// buffer here grows on the first call at a batch size and is reused after).
#[derive(Debug, Default)]
pub struct State {
    /// LSTM: per direction, the activated gates and the states of every step.
    pub lstm: Vec<lstm::Trace>,
    /// Max pooling over whole windows: where each window's maximum is (`kernels::pool`);
    /// empty when the forward pass did not keep it.
    pub argmax: Vec<u8>,
    /// Convolution: the transposed weights, and each chunk of images' lowering buffers and
    /// gradient sums.
    pub conv: conv::Scratch,
    /// Floats any op may use within one call; contents unspecified on entry.
    pub scratch: Vec<f32>,
    /// A fixed weight laid out for its kernel on the first call (see [`Ctx::fixed_inputs`]),
    /// empty until then: Dense's `Wᵀ`.
    pub laid_out: Vec<f32>,
}

/// Settings every kernel call shares.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub mode: Mode,
    /// Threads handed to `sgemm`.
    pub threads: usize,
    /// Bit `k`: input `k` of the node is a parameter that never changes in this session (an
    /// inference session's weights), so a kernel may lay it out once and keep that in its
    /// step's state (tract's prepare once, run many).
    pub fixed_inputs: u64,
}

impl Ctx {
    /// Whether input `k` is a parameter that never changes in this session.
    pub fn is_fixed(&self, k: usize) -> bool {
        k < 64 && self.fixed_inputs & (1 << k) != 0
    }
}

/// The values a node reads (or its outputs, in backward), as slots of the session's values:
/// indexing gives `&Buf` without collecting references into a new vector per call.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    values: &'a [Buf],
    slots: &'a [usize],
}

impl<'a> Args<'a> {
    pub fn new(values: &'a [Buf], slots: &'a [usize]) -> Self {
        Args { values, slots }
    }

    /// Every value of `values` in order (up to 16), for tests of a single op.
    #[cfg(test)]
    pub fn all(values: &'a [Buf]) -> Self {
        const IDENTITY: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        Args::new(values, &IDENTITY[..values.len()])
    }

    pub fn get(&self, i: usize) -> Option<&'a Buf> {
        self.slots.get(i).map(|&s| &self.values[s])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a Buf> + '_ {
        self.slots.iter().map(|&s| &self.values[s])
    }
}

impl<'a> std::ops::Index<usize> for Args<'a> {
    type Output = Buf;

    fn index(&self, i: usize) -> &Buf {
        &self.values[self.slots[i]]
    }
}

/// The gradient buffer of an input, or `None` when nobody wants it: the session sizes a
/// wanted gradient to its input and leaves the others empty. A zero-size input's gradient
/// is empty either way, and there is nothing to write.
pub fn wanted(grad: &mut [f32]) -> Option<&mut [f32]> {
    (!grad.is_empty()).then_some(grad)
}

/// `v` holding `len` floats, for a buffer reused from call to call: its contents are
/// unspecified, so every user writes what it later reads.
pub fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    v
}

/// `to = from`, split over `threads` when large (a flatten of a conv's output is megabytes).
fn copy(from: &[f32], to: &mut [f32], threads: usize) {
    split_mut(threads, to, 1, |start, to| {
        to.copy_from_slice(&from[start..start + to.len()])
    });
}

/// `out[i] = f(a[i], b[i])`: a plain zip loop, which the compiler vectorises.
pub fn zip_map(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    with_simd(
        #[inline(always)]
        || {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        },
    )
}

fn node_error(node: &Node) -> impl Fn(String) -> Error + '_ {
    move |message| Error::node(&node.name, node.op.name(), message)
}

/// Writes the node's outputs from its inputs. Each output's shape is set and its data sized
/// by the session (the inferred shapes at this batch size); a kernel writes every element
/// of it (what it held before is unspecified).
pub fn forward(
    node: &Node,
    inputs: Args,
    outputs: &mut [Buf],
    state: &mut State,
    ctx: Ctx,
) -> Result<()> {
    let x = &inputs[0];
    let threads = ctx.threads;
    if let Op::Lstm(attrs) = &node.op {
        lstm::lstm(attrs, inputs, outputs, &mut state.lstm, ctx);
        return Ok(());
    }
    let Buf { shape, data: y, .. } = &mut outputs[0];
    match &node.op {
        Op::Dense if ctx.is_fixed(1) && linear::lay_out_pays(x, &inputs[1]) => {
            linear::dense_laid_out(
                x,
                &inputs[1],
                inputs.get(2),
                y,
                &mut state.laid_out,
                threads,
            )
        }
        Op::Dense => linear::dense(x, &inputs[1], inputs.get(2), y, threads),
        Op::MatMul => linear::matmul(x, &inputs[1], y, threads),
        Op::Conv2d(attrs) => conv::conv2d(
            attrs,
            x,
            &inputs[1],
            inputs.get(2),
            y,
            &mut state.conv,
            threads,
        ),
        Op::MaxPool2d(p) => {
            let keep_argmax = ctx.mode == Mode::Training;
            pool::max_pool2d(p, x, y, keep_argmax, &mut state.argmax, threads)
        }
        Op::AvgPool2d(p) => pool::avg_pool2d(p, x, y, threads),
        Op::Flatten { .. } | Op::Reshape { .. } => copy(&x.data, y, threads),
        Op::Transpose { perm } => layout::transpose(perm, x, y),
        Op::Concat { axis } => layout::concat(*axis, inputs, y),
        Op::Unary(op) => activation::unary(*op, &x.data, y, threads),
        Op::Softmax { axis } => activation::softmax(*axis, x, y, false, &mut state.scratch),
        Op::LogSoftmax { axis } => activation::softmax(*axis, x, y, true, &mut state.scratch),
        Op::Dropout { p } => activation::dropout(*p, x, &inputs[1], y, ctx.mode),
        Op::Lstm(_) => unreachable!("handled above"),
        Op::Binary(op) => elementwise::binary(*op, x, &inputs[1], shape, y),
        Op::Loss(op) => {
            let value =
                loss::loss(*op, inputs, &mut state.scratch, threads).map_err(node_error(node))?;
            y[0] = value;
        }
    }
    Ok(())
}

/// Writes the gradient of each wanted input into `grads` (one buffer per input, sized to the
/// input when wanted, empty otherwise; see [`wanted`]), given the inputs, the outputs and the
/// state of [`forward`], and the gradients flowing into each output (`None`: that output does
/// not reach the loss). A kernel writes every element of a wanted gradient; an input that is
/// not differentiable (labels, dropout masks) gets zeros.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    node: &Node,
    inputs: Args,
    outputs: Args,
    output_grads: &[Option<&[f32]>],
    grads: &mut [Vec<f32>],
    state: &mut State,
    threads: usize,
) -> Result<()> {
    let x = &inputs[0];
    let Some(dy) = output_grads.iter().flatten().next().copied() else {
        grads.iter_mut().for_each(|g| g.fill(0.0));
        return Ok(());
    };
    match &node.op {
        Op::Dense => {
            let [dx, dw, db @ ..] = grads else {
                unreachable!("Dense has 2 or 3 inputs")
            };
            linear::dense_backward(
                x,
                &inputs[1],
                dy,
                wanted(dx),
                wanted(dw),
                db.first_mut().and_then(|d| wanted(d)),
                threads,
            )
        }
        Op::MatMul => {
            let [da, db] = grads else {
                unreachable!("MatMul has 2 inputs")
            };
            linear::matmul_backward(x, &inputs[1], dy, wanted(da), wanted(db), threads)
        }
        Op::Conv2d(attrs) => {
            let [dx, dw, db @ ..] = grads else {
                unreachable!("Conv2d has 2 or 3 inputs")
            };
            let db = db.first_mut().and_then(|d| wanted(d));
            conv::conv2d_backward(
                attrs,
                x,
                &inputs[1],
                dy,
                wanted(dx),
                wanted(dw),
                db,
                &mut state.conv,
                threads,
            )
        }
        Op::MaxPool2d(p) => {
            pool::max_pool2d_backward(p, x, dy, &state.argmax, &mut grads[0], threads)
        }
        Op::AvgPool2d(p) => pool::avg_pool2d_backward(p, x, dy, &mut grads[0], threads),
        Op::Flatten { .. } | Op::Reshape { .. } => copy(dy, &mut grads[0], threads),
        Op::Transpose { perm } => {
            layout::transpose_backward(perm, &outputs[0].shape, dy, &mut grads[0])
        }
        Op::Concat { axis } => layout::concat_backward(*axis, inputs, dy, grads),
        Op::Unary(op) => {
            let y = &outputs[0].data;
            activation::unary_backward(*op, &x.data, y, dy, &mut grads[0], threads)
        }
        Op::Softmax { axis } => activation::softmax_backward(
            *axis,
            &outputs[0],
            dy,
            false,
            &mut grads[0],
            &mut state.scratch,
        ),
        Op::LogSoftmax { axis } => activation::softmax_backward(
            *axis,
            &outputs[0],
            dy,
            true,
            &mut grads[0],
            &mut state.scratch,
        ),
        Op::Dropout { p } => {
            activation::dropout_backward(*p, &inputs[1], dy, &mut grads[0]);
            grads[1].fill(0.0);
        }
        Op::Lstm(attrs) => {
            let output_grads = [output_grads[0], output_grads[1], output_grads[2]];
            lstm::lstm_backward(attrs, inputs, &mut state.lstm, output_grads, grads, threads)
        }
        Op::Binary(op) => {
            let [da, db] = grads else {
                unreachable!("binary ops have 2 inputs")
            };
            elementwise::binary_backward(*op, x, &inputs[1], &outputs[0].shape, dy, da, db)
        }
        Op::Loss(op) => loss::loss_backward(*op, inputs, dy[0], grads, &mut state.scratch, threads)
            .map_err(node_error(node))?,
    }
    Ok(())
}
