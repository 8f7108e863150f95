//! The cases of the conformance suite: a small model per IR op, per loss and per optimizer
//! option, each built with [`GraphBuilder`] on seeded synthetic data, and the seed specs.
//!
//! Op cases take their trainable parameters from the op itself where it has some (dense,
//! conv, LSTM) and otherwise from an element-wise `add` or `mul` with a parameter, never from
//! a Dense layer: a backend that breaks one op then fails that op's cases and no others.

use dlbench_core::init::Init;
use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::training::Adam;
use dlbench_core::{BinaryOp, GraphBuilder, Loss, Op, Optimizer, Result, TrainingConfig, UnaryOp};

mod training;

use super::{Case, GraphCase};

use super::X;
use training::{loss_cases, optimizer_cases};

/// A graph case trained with Adam (lr 0.01), whose first output feeds `loss`.
fn case<F>(name: &str, about: &str, loss: Loss, sample: &[usize], build: F) -> Case
where
    F: Fn(&mut GraphBuilder) -> Result<Vec<String>> + Send + Sync + 'static,
{
    let optimizer = Optimizer::Adam(Adam {
        lr: 0.01,
        ..Adam::default()
    });
    with_optimizer(name, about, loss, optimizer, sample, build)
}

fn with_optimizer<F>(
    name: &str,
    about: &str,
    loss: Loss,
    optimizer: Optimizer,
    sample: &[usize],
    build: F,
) -> Case
where
    F: Fn(&mut GraphBuilder) -> Result<Vec<String>> + Send + Sync + 'static,
{
    let graph = GraphCase {
        sample: sample.to_vec(),
        training: TrainingConfig { loss, optimizer },
        build: Box::new(build),
    };
    Case::graph(name, about, graph)
}

/// A parameter for element-wise ops, initialised like a layer with this fan-in.
fn param(b: &mut GraphBuilder, name: &str, shape: &[usize]) -> Result<String> {
    b.param(
        name,
        shape,
        Init::fan_in(shape.iter().product::<usize>().max(1)),
    )
}

/// `x + p` with `p` shaped like one sample's last axis: the parameters of a parameter-free op.
fn shifted(b: &mut GraphBuilder, width: usize) -> Result<String> {
    let p = param(b, "shift", &[width])?;
    b.op(Some("shifted"), Op::Binary(BinaryOp::Add), &[X, &p])
}

fn dense_cases() -> Vec<Case> {
    vec![
        case("dense", "Dense 6 -> 4 with bias", Loss::Mse, &[6], |b| {
            Ok(vec![b.dense(None, X, 4, true)?])
        }),
        case(
            "dense_no_bias",
            "Dense 6 -> 4 without bias",
            Loss::Mse,
            &[6],
            |b| Ok(vec![b.dense(None, X, 4, false)?]),
        ),
        case(
            "dense_3d",
            "Dense on the last axis of [batch, 3, 6]",
            Loss::Mse,
            &[3, 6],
            |b| Ok(vec![b.dense(None, X, 4, true)?]),
        ),
        case(
            "mat_mul",
            "[batch, 3, 4] x [4, 5] parameter",
            Loss::Mse,
            &[3, 4],
            |b| {
                let w = param(b, "w", &[4, 5])?;
                Ok(vec![b.op(None, Op::MatMul, &[X, &w])?])
            },
        ),
    ]
}

fn conv_cases() -> Vec<Case> {
    let conv = |name: &str, about: &str, sample: [usize; 3], filters, kernel, attrs, bias| {
        case(name, about, Loss::Mse, &sample, move |b| {
            Ok(vec![b.conv2d(None, X, filters, kernel, attrs, bias)?])
        })
    };
    vec![
        conv(
            "conv2d",
            "3x3, 2 -> 3 channels",
            [2, 6, 6],
            3,
            [3, 3],
            Conv2d::default(),
            true,
        ),
        conv(
            "conv2d_stride_padding",
            "3x2 kernel, stride (2, 1), padding (1, 2)",
            [2, 6, 5],
            3,
            [3, 2],
            Conv2d {
                stride: [2, 1],
                padding: [1, 2],
                ..Conv2d::default()
            },
            true,
        ),
        conv(
            "conv2d_dilation",
            "3x3 kernel, dilation 2",
            [2, 7, 7],
            3,
            [3, 3],
            Conv2d {
                dilation: [2, 2],
                ..Conv2d::default()
            },
            true,
        ),
        conv(
            "conv2d_groups",
            "4 -> 6 channels in 2 groups, padding 1, no bias",
            [4, 5, 5],
            6,
            [3, 3],
            Conv2d {
                padding: [1, 1],
                groups: 2,
                ..Conv2d::default()
            },
            false,
        ),
    ]
}

fn pool_cases() -> Vec<Case> {
    // A 3x3 same-padded conv gives the case parameters and keeps the spatial size.
    let pool = |name: &str, about: &str, size: usize, max: bool, attrs: Pool2d| {
        let sample = [2, size, size];
        case(name, about, Loss::Mse, &sample, move |b| {
            let same = Conv2d {
                padding: [1, 1],
                ..Conv2d::default()
            };
            let h = b.conv2d(None, X, 3, [3, 3], same, true)?;
            let op = match max {
                true => Op::MaxPool2d(attrs),
                false => Op::AvgPool2d(attrs),
            };
            Ok(vec![b.op(None, op, &[&h])?])
        })
    };
    let ceil = |p: Pool2d| Pool2d {
        ceil_mode: true,
        ..p
    };
    let padded = Pool2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let excluded = Pool2d {
        count_include_pad: false,
        ..padded
    };
    let square = Pool2d::square(2);
    vec![
        pool("max_pool2d", "2x2, stride 2, on 6x6", 6, true, square),
        pool(
            "max_pool2d_ceil",
            "2x2, stride 2, ceil mode, on 7x7",
            7,
            true,
            ceil(square),
        ),
        pool(
            "max_pool2d_padding",
            "3x3, stride 2, padding 1, on 6x6",
            6,
            true,
            padded,
        ),
        pool(
            "max_pool2d_padding_ceil",
            "3x3, stride 2, padding 1, ceil mode, on 6x6",
            6,
            true,
            ceil(padded),
        ),
        pool("avg_pool2d", "2x2, stride 2, on 6x6", 6, false, square),
        pool(
            "avg_pool2d_ceil",
            "2x2, stride 2, ceil mode, on 7x7",
            7,
            false,
            ceil(square),
        ),
        pool(
            "avg_pool2d_pad_include",
            "3x3, stride 2, padding 1, count_include_pad, on 6x6",
            6,
            false,
            padded,
        ),
        pool(
            "avg_pool2d_pad_exclude",
            "3x3, stride 2, padding 1, padding not counted, on 6x6",
            6,
            false,
            excluded,
        ),
        pool(
            "avg_pool2d_ceil_pad_exclude",
            "3x3, stride 2, padding 1, ceil mode, padding not counted, on 6x6",
            6,
            false,
            ceil(excluded),
        ),
    ]
}

fn layout_cases() -> Vec<Case> {
    vec![
        case(
            "flatten",
            "[batch, 2, 3, 4] -> [batch, 24]",
            Loss::Mse,
            &[2, 3, 4],
            |b| {
                let h = shifted(b, 4)?;
                Ok(vec![b.op(None, Op::Flatten { axis: 1 }, &[&h])?])
            },
        ),
        case(
            "reshape",
            "[batch, 12] -> [batch, 3, -1]",
            Loss::Mse,
            &[12],
            |b| {
                let h = shifted(b, 12)?;
                let shape = vec![0, 3, -1];
                Ok(vec![b.op(None, Op::Reshape { shape }, &[&h])?])
            },
        ),
        case(
            "transpose",
            "[batch, 3, 4] -> [batch, 4, 3]",
            Loss::Mse,
            &[3, 4],
            |b| {
                let h = shifted(b, 4)?;
                let perm = vec![0, 2, 1];
                Ok(vec![b.op(None, Op::Transpose { perm }, &[&h])?])
            },
        ),
        case(
            "concat",
            "[batch, 3] and [batch, 3] on axis 1",
            Loss::Mse,
            &[3],
            |b| {
                let h = shifted(b, 3)?;
                let p = param(b, "scale", &[3])?;
                let m = b.op(Some("scaled"), Op::Binary(BinaryOp::Mul), &[X, &p])?;
                Ok(vec![b.op(None, Op::Concat { axis: 1 }, &[&h, &m])?])
            },
        ),
    ]
}

fn activation_cases() -> Vec<Case> {
    let unary = |name: &str, about: &str, sample: &[usize], op: Op| {
        let width = *sample.last().expect("a sample has an axis");
        case(name, about, Loss::Mse, sample, move |b| {
            let h = shifted(b, width)?;
            Ok(vec![b.op(None, op.clone(), &[&h])?])
        })
    };
    vec![
        unary("relu", "relu(x + p)", &[6], Op::Unary(UnaryOp::Relu)),
        unary(
            "sigmoid",
            "sigmoid(x + p)",
            &[6],
            Op::Unary(UnaryOp::Sigmoid),
        ),
        unary("tanh", "tanh(x + p)", &[6], Op::Unary(UnaryOp::Tanh)),
        unary(
            "softmax",
            "softmax on the last axis",
            &[6],
            Op::Softmax { axis: -1 },
        ),
        unary(
            "softmax_axis1",
            "softmax on axis 1 of [batch, 3, 4]",
            &[3, 4],
            Op::Softmax { axis: 1 },
        ),
        unary(
            "log_softmax",
            "log-softmax on the last axis",
            &[6],
            Op::LogSoftmax { axis: -1 },
        ),
        unary("exp", "exp(x + p)", &[6], Op::Unary(UnaryOp::Exp)),
        unary(
            "scale",
            "-0.5 * (x + p)",
            &[6],
            Op::Unary(UnaryOp::Scale { factor: -0.5 }),
        ),
        case(
            "dropout",
            "dropout p = 0.5 with a fed mask",
            Loss::Mse,
            &[6],
            |b| {
                let h = shifted(b, 6)?;
                let d = b.dropout(None, &h, 0.5)?;
                let p = param(b, "scale", &[6])?;
                Ok(vec![b.op(None, Op::Binary(BinaryOp::Mul), &[&d, &p])?])
            },
        ),
    ]
}

fn elementwise_cases() -> Vec<Case> {
    let binary = |name: &str, about: &str, op: Op, shape: &'static [usize], param_first: bool| {
        case(name, about, Loss::Mse, &[3, 4], move |b| {
            let p = param(b, "p", shape)?;
            let inputs = match param_first {
                true => [p.as_str(), X],
                false => [X, p.as_str()],
            };
            Ok(vec![b.op(None, op.clone(), &inputs)?])
        })
    };
    vec![
        binary(
            "add_broadcast",
            "[batch, 3, 4] + [4]",
            Op::Binary(BinaryOp::Add),
            &[4],
            false,
        ),
        binary(
            "sub_broadcast",
            "[3, 1] - [batch, 3, 4]",
            Op::Binary(BinaryOp::Sub),
            &[3, 1],
            true,
        ),
        binary(
            "mul_broadcast",
            "[batch, 3, 4] * [1, 4]",
            Op::Binary(BinaryOp::Mul),
            &[1, 4],
            false,
        ),
        case("mul_values", "(x + p) * (x - q)", Loss::Mse, &[3, 4], |b| {
            let h = shifted(b, 4)?;
            let q = param(b, "q", &[3, 4])?;
            let d = b.op(Some("diff"), Op::Binary(BinaryOp::Sub), &[X, &q])?;
            Ok(vec![b.op(None, Op::Binary(BinaryOp::Mul), &[&h, &d])?])
        }),
    ]
}

/// An LSTM over 4 steps of 3 features, 5 hidden units, reading the data shifted by a
/// parameter (so that the gradient with respect to its input is checked too). The data is
/// batch-first; a sequence-first LSTM gets it transposed, and its Y transposed back so the
/// loss reads a batch-first prediction. Outputs Y, Y_h, Y_c.
fn lstm_case(name: &str, about: &str, direction: Direction, batch_first: bool) -> Case {
    case(name, about, Loss::Mse, &[4, 3], move |b| {
        let perm = vec![1, 0, 2];
        let attrs = Lstm {
            hidden: 5,
            direction,
            batch_first,
        };
        let h = shifted(b, 3)?;
        if batch_first {
            let [y, y_h, y_c] = b.lstm(None, &h, attrs)?;
            return Ok(vec![y, y_h, y_c]);
        }
        let seq = b.op(Some("to_seq"), Op::Transpose { perm: perm.clone() }, &[&h])?;
        let [y, y_h, y_c] = b.lstm(None, &seq, attrs)?;
        let y = b.op(Some("to_batch"), Op::Transpose { perm }, &[&y])?;
        Ok(vec![y, y_h, y_c])
    })
}

fn lstm_cases() -> Vec<Case> {
    vec![
        lstm_case(
            "lstm_forward",
            "sequence-first, forward",
            Direction::Forward,
            false,
        ),
        lstm_case(
            "lstm_reverse",
            "sequence-first, reverse",
            Direction::Reverse,
            false,
        ),
        lstm_case(
            "lstm_bidirectional",
            "sequence-first, bidirectional",
            Direction::Bidirectional,
            false,
        ),
        lstm_case(
            "lstm_batch_first",
            "batch-first, forward",
            Direction::Forward,
            true,
        ),
        lstm_case(
            "lstm_batch_first_bidirectional",
            "batch-first, bidirectional",
            Direction::Bidirectional,
            true,
        ),
    ]
}

/// Every case, ops first, then the seed specs. For speed (the f64 reference is a naive
/// interpreter, and tests run unoptimized) the CNN runs at batch 4 for 3 training steps, the
/// RNN and the VAE at batch 8; the MLP as written.
pub fn all() -> Vec<Case> {
    let mut cases = dense_cases();
    cases.extend(conv_cases());
    cases.extend(pool_cases());
    cases.extend(layout_cases());
    cases.extend(activation_cases());
    cases.extend(elementwise_cases());
    cases.extend(lstm_cases());
    cases.extend(loss_cases());
    cases.extend(optimizer_cases());
    cases.push(Case::spec("mlp", None, 20));
    cases.push(Case::spec("cnn", Some(4), 3));
    cases.push(Case::spec("rnn", Some(8), 20));
    cases.push(Case::spec("vae", Some(8), 20));
    cases
}
