//! The finite-difference checks of the reference ops, as data: every case names a one-node
//! graph, its inputs and which of them are differentiated. `tests/gradcheck_basic.rs` and
//! `tests/gradcheck_spatial.rs` run them; the conformance crate's coverage test reads the list
//! to see that every op has one.
//!
//! Inputs are seeded (`Stream`), so a case is the same numbers on every run.

use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::rng::Stream;
use dlbench_core::{BinaryOp, LossOp, Mode, Node, Op, Result, Tensor, UnaryOp};

use super::{GradCheck, GradCheckReport};

/// One finite-difference check of one op.
#[derive(Debug, Clone)]
pub struct GradCheckCase {
    /// Unique within [`all`]: `dense_with_bias`, `conv_groups2_pad1`...
    pub name: String,
    /// A node of the op, named after the case, reading `in0`, `in1`...
    pub node: Node,
    /// The node's inputs, f64 (labels i64), drawn from a seeded stream.
    pub inputs: Vec<Tensor>,
    /// Which inputs are differentiated (not labels, not dropout masks).
    pub differentiable: Vec<bool>,
}

impl GradCheckCase {
    fn new(name: impl Into<String>, op: Op, inputs: Vec<Tensor>, differentiable: &[bool]) -> Self {
        let name = name.into();
        assert_eq!(
            inputs.len(),
            differentiable.len(),
            "{name}: one flag per input"
        );
        GradCheckCase {
            node: Node {
                name: name.clone(),
                outputs: op.output_names(&name),
                op,
                inputs: (0..inputs.len()).map(|i| format!("in{i}")).collect(),
            },
            name,
            inputs,
            differentiable: differentiable.to_vec(),
        }
    }

    /// Every input differentiated.
    fn all_inputs(name: impl Into<String>, op: Op, inputs: Vec<Tensor>) -> Self {
        let differentiable = vec![true; inputs.len()];
        GradCheckCase::new(name, op, inputs, &differentiable)
    }

    /// The check at its default step and tolerances, in training mode.
    pub fn run(&self) -> Result<GradCheckReport> {
        GradCheck::default().check(
            &self.node,
            &self.inputs,
            &self.differentiable,
            Mode::Training,
        )
    }
}

/// Every case: [`basic`], then [`spatial`].
pub fn all() -> Vec<GradCheckCase> {
    let mut cases = basic();
    cases.extend(spatial());
    cases
}

fn tensor(shape: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::f64(shape.to_vec(), data).expect("shape matches data")
}

/// Uniform in `[lo, hi)`, seeded by `name`.
fn uniform(name: &str, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    let data = Stream::new(7, name, 0)
        .uniform_vec(n)
        .iter()
        .map(|u| lo + (hi - lo) * u)
        .collect();
    tensor(shape, data)
}

/// Standard normal times `scale`, seeded by `name`.
pub fn normal(name: &str, shape: &[usize], scale: f64) -> Tensor {
    let n = shape.iter().product();
    let data = Stream::new(7, name, 0)
        .normal_vec(n)
        .iter()
        .map(|v| v * scale)
        .collect();
    tensor(shape, data)
}

fn shape_name(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// The linear, element-wise, activation, layout and loss families.
pub fn basic() -> Vec<GradCheckCase> {
    let mut cases = Vec::new();
    let mut all = |name: &str, op: Op, inputs: Vec<Tensor>| {
        cases.push(GradCheckCase::all_inputs(name, op, inputs));
    };

    // ---- linear
    let (x, w, b) = (
        normal("x", &[4, 3], 1.0),
        normal("w", &[5, 3], 1.0),
        normal("b", &[5], 1.0),
    );
    all("dense_with_bias", Op::Dense, vec![x, w, b]);
    let (x, w) = (normal("x", &[4, 3], 1.0), normal("w", &[2, 3], 1.0));
    all("dense_without_bias", Op::Dense, vec![x, w]);
    let (x, w, b) = (
        normal("x", &[2, 3, 4], 1.0),
        normal("w", &[5, 4], 1.0),
        normal("b", &[5], 1.0),
    );
    all("dense_3d_input", Op::Dense, vec![x, w, b]);
    let (a, b) = (normal("a", &[3, 4], 1.0), normal("b", &[4, 2], 1.0));
    all("matmul_2d", Op::MatMul, vec![a, b]);
    let (a, b) = (normal("a", &[2, 3, 4], 1.0), normal("b", &[2, 4, 5], 1.0));
    all("matmul_batched_3d", Op::MatMul, vec![a, b]);
    let (a, b) = (normal("a", &[2, 3, 4], 1.0), normal("b", &[4, 5], 1.0));
    all("matmul_3d_by_2d", Op::MatMul, vec![a, b]);

    // ---- element-wise, with broadcasting either way
    for (name, op) in [
        ("add", BinaryOp::Add),
        ("sub", BinaryOp::Sub),
        ("mul", BinaryOp::Mul),
    ] {
        let op = Op::Binary(op);
        let big = normal("a", &[2, 3, 4], 1.0);
        for small in [&[3, 1][..], &[1], &[2, 3, 4], &[4], &[2, 1, 4]] {
            let other = normal("b", small, 1.0);
            let (bs, os) = (shape_name(big.shape()), shape_name(small));
            let pair = vec![big.clone(), other.clone()];
            all(&format!("{name}_{bs}_{os}"), op.clone(), pair);
            all(
                &format!("{name}_{os}_{bs}"),
                op.clone(),
                vec![other, big.clone()],
            );
        }
        // Both operands broadcast: [3, 1] with [1, 4].
        let (a, b) = (normal("a", &[3, 1], 1.0), normal("b", &[1, 4], 1.0));
        all(&format!("{name}_3x1_1x4"), op, vec![a, b]);
    }

    // ---- activations
    let magnitude = uniform("mag", &[3, 4], 0.01, 2.0);
    let sign = uniform("sign", &[3, 4], 0.0, 1.0);
    let data: Vec<f64> = magnitude
        .as_f64()
        .expect("f64")
        .iter()
        .zip(sign.as_f64().expect("f64"))
        .map(|(m, s)| if *s < 0.5 { -m } else { *m })
        .collect();
    assert!(
        data.iter().any(|v| *v < 0.0) && data.iter().any(|v| *v > 0.0),
        "relu's input must have both signs"
    );
    all(
        "relu_away_from_zero",
        Op::Unary(UnaryOp::Relu),
        vec![tensor(&[3, 4], data)],
    );
    for (name, op) in [
        ("sigmoid", UnaryOp::Sigmoid),
        ("tanh", UnaryOp::Tanh),
        ("exp", UnaryOp::Exp),
        ("scale", UnaryOp::Scale { factor: -2.5 }),
    ] {
        all(name, Op::Unary(op), vec![normal("x", &[3, 4], 1.5)]);
    }
    let x = normal("x", &[2, 3, 4], 2.0);
    for axis in [1, -1, 0, -2] {
        all(
            &format!("softmax_axis{axis}"),
            Op::Softmax { axis },
            vec![x.clone()],
        );
        all(
            &format!("log_softmax_axis{axis}"),
            Op::LogSoftmax { axis },
            vec![x.clone()],
        );
    }

    // ---- layout
    let x = normal("x", &[2, 3, 4], 1.0);
    all("flatten_axis1", Op::Flatten { axis: 1 }, vec![x.clone()]);
    all("flatten_axis0", Op::Flatten { axis: 0 }, vec![x.clone()]);
    let shape = vec![0, -1, 2];
    all("reshape", Op::Reshape { shape }, vec![x.clone()]);
    let perm = vec![2, 0, 1];
    all("transpose", Op::Transpose { perm }, vec![x]);
    let inputs = vec![
        normal("a", &[2, 1, 3], 1.0),
        normal("b", &[2, 4, 3], 1.0),
        normal("c", &[2, 2, 3], 1.0),
    ];
    all(
        "concat_three_on_middle_axis",
        Op::Concat { axis: 1 },
        inputs,
    );

    // ---- losses
    let (p, t) = (normal("p", &[3, 4], 1.0), normal("t", &[3, 4], 1.0));
    all("mse_loss", Op::Loss(LossOp::Mse), vec![p, t]);
    let (p, t) = (
        uniform("p", &[3, 4], 0.05, 0.95),
        uniform("t", &[3, 4], 0.0, 1.0),
    );
    all("bce_loss", Op::Loss(LossOp::BinaryCrossEntropy), vec![p, t]);
    let (z, t) = (normal("z", &[3, 4], 3.0), uniform("t", &[3, 4], 0.0, 1.0));
    let op = Op::Loss(LossOp::BinaryCrossEntropyWithLogits);
    all("bce_with_logits_loss", op, vec![z, t]);
    let inputs = vec![
        uniform("recon", &[3, 6], 0.05, 0.95),
        normal("mu", &[3, 2], 1.0),
        normal("logvar", &[3, 2], 0.5),
        uniform("x", &[3, 6], 0.0, 1.0),
    ];
    all("vae_elbo_loss", Op::Loss(LossOp::VaeElbo), inputs);

    // ---- with inputs that are not differentiated
    let logits = normal("z", &[4, 5], 2.0);
    let labels = Tensor::i64(vec![4], vec![0, 4, 2, 2]).expect("shape matches data");
    cases.push(GradCheckCase::new(
        "cross_entropy_loss",
        Op::Loss(LossOp::CrossEntropy),
        vec![logits, labels],
        &[true, false],
    ));
    let x = normal("x", &[4, 5], 1.0);
    let mask = Stream::new(7, "mask", 0).keep_mask(20, 0.3);
    assert!(
        mask.contains(&0.0) && mask.contains(&1.0),
        "the dropout mask must keep some elements and drop some"
    );
    cases.push(GradCheckCase::new(
        "dropout_with_mask",
        Op::Dropout { p: 0.3 },
        vec![x, tensor(&[4, 5], mask)],
        &[true, false],
    ));
    cases
}

/// Standard normal, seeded by `seed` and `name`.
pub fn seeded_normal(seed: u64, name: &str, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    tensor(shape, Stream::new(seed, name, 0).normal_vec(n))
}

/// Distinct values (a scaled random permutation), so no max-pool window has a tie that a
/// finite-difference step could flip.
pub fn distinct(seed: u64, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let perm = Stream::new(seed, "distinct", 0).permutation(n);
    tensor(shape, perm.iter().map(|&p| p as f64 * 0.1 - 1.0).collect())
}

/// Convolution attributes, equal on both axes.
pub fn conv(stride: usize, padding: usize, dilation: usize, groups: usize) -> Conv2d {
    Conv2d {
        stride: [stride; 2],
        padding: [padding; 2],
        dilation: [dilation; 2],
        groups,
    }
}

/// Pooling attributes, equal on both axes.
pub fn pool(
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
    include: bool,
) -> Pool2d {
    Pool2d {
        kernel: [kernel; 2],
        stride: [stride; 2],
        padding: [padding; 2],
        ceil_mode,
        count_include_pad: include,
    }
}

/// x and the weights of every direction of an LSTM, scaled so gates stay away from
/// saturation.
pub fn lstm_inputs(attrs: Lstm, t: usize, n: usize, i: usize, seed: u64) -> Vec<Tensor> {
    let x_shape = if attrs.batch_first {
        [n, t, i]
    } else {
        [t, n, i]
    };
    let mut inputs = vec![seeded_normal(seed, "x", &x_shape)];
    let h4 = 4 * attrs.hidden;
    for d in 0..attrs.direction.count() {
        let shapes: [&[usize]; 4] = [&[h4, i], &[h4, attrs.hidden], &[h4], &[h4]];
        for (k, shape) in shapes.into_iter().enumerate() {
            let w = seeded_normal(seed, &format!("w{d}{k}"), shape);
            let scaled = w.as_f64().expect("f64").iter().map(|v| v * 0.5).collect();
            inputs.push(tensor(shape, scaled));
        }
    }
    inputs
}

/// Conv2d, pooling and LSTM. Every input is differentiated.
pub fn spatial() -> Vec<GradCheckCase> {
    let mut cases = Vec::new();

    // ---- conv: (name, attrs, x, w, bias, seed)
    let convs = [
        (
            "conv_plain_bias",
            conv(1, 0, 1, 1),
            [2, 3, 5, 5],
            [4, 3, 3, 3],
            true,
            1,
        ),
        (
            "conv_plain_no_bias",
            conv(1, 0, 1, 1),
            [2, 3, 5, 5],
            [4, 3, 3, 3],
            false,
            2,
        ),
        (
            "conv_stride2",
            conv(2, 0, 1, 1),
            [1, 2, 6, 7],
            [3, 2, 3, 3],
            true,
            3,
        ),
        (
            "conv_pad1",
            conv(1, 1, 1, 1),
            [2, 2, 4, 4],
            [3, 2, 3, 3],
            true,
            4,
        ),
        (
            "conv_dilation2",
            conv(1, 0, 2, 1),
            [1, 2, 7, 6],
            [2, 2, 3, 2],
            true,
            5,
        ),
        (
            "conv_stride2_pad1_dilation2",
            conv(2, 1, 2, 1),
            [1, 2, 7, 8],
            [2, 2, 3, 3],
            false,
            6,
        ),
        (
            "conv_groups2_pad1",
            conv(1, 1, 1, 2),
            [2, 4, 5, 5],
            [6, 2, 3, 3],
            true,
            7,
        ),
        (
            "conv_depthwise",
            conv(1, 1, 1, 3),
            [1, 3, 5, 5],
            [3, 1, 3, 3],
            true,
            8,
        ),
        (
            "conv_depthwise_x2_stride2",
            conv(2, 1, 1, 3),
            [1, 3, 6, 6],
            [6, 1, 2, 3],
            false,
            9,
        ),
        (
            "conv_non_square",
            Conv2d {
                stride: [2, 1],
                padding: [1, 0],
                dilation: [1, 2],
                groups: 1,
            },
            [2, 2, 5, 8],
            [3, 2, 2, 3],
            true,
            10,
        ),
    ];
    for (name, attrs, x, w, bias, seed) in convs {
        let mut inputs = vec![seeded_normal(seed, "x", &x), seeded_normal(seed, "w", &w)];
        if bias {
            inputs.push(seeded_normal(seed, "b", &[w[0]]));
        }
        cases.push(GradCheckCase::all_inputs(name, Op::Conv2d(attrs), inputs));
    }

    // ---- max pooling, on distinct values
    let max_pools = [
        (pool(2, 2, 0, false, true), [2, 2, 4, 4]),
        (pool(3, 1, 0, false, true), [1, 2, 5, 5]),
        (pool(3, 2, 1, false, true), [1, 2, 5, 6]),
        (pool(2, 2, 0, true, true), [1, 2, 5, 5]),
        (pool(3, 2, 1, true, true), [2, 1, 6, 5]),
    ];
    for (seed, (p, shape)) in max_pools.into_iter().enumerate() {
        cases.push(GradCheckCase::all_inputs(
            format!("max_pool_{seed}"),
            Op::MaxPool2d(p),
            vec![distinct(seed as u64, &shape)],
        ));
    }
    let rect = Pool2d {
        kernel: [2, 3],
        stride: [1, 2],
        padding: [1, 1],
        ceil_mode: true,
        count_include_pad: true,
    };
    cases.push(GradCheckCase::all_inputs(
        "max_pool_rect",
        Op::MaxPool2d(rect),
        vec![distinct(9, &[1, 2, 5, 6])],
    ));

    // ---- average pooling, with and without the padding in the divisor
    for include in [true, false] {
        let avg_pools = [
            (pool(2, 2, 0, false, include), [2, 2, 4, 4]),
            (pool(3, 1, 1, false, include), [1, 2, 5, 5]),
            (pool(3, 2, 1, true, include), [1, 2, 6, 5]),
            (pool(2, 2, 1, true, include), [1, 1, 5, 5]),
        ];
        let tag = if include {
            "include_pad"
        } else {
            "exclude_pad"
        };
        for (seed, (p, shape)) in avg_pools.into_iter().enumerate() {
            cases.push(GradCheckCase::all_inputs(
                format!("avg_pool_{seed}_{tag}"),
                Op::AvgPool2d(p),
                vec![seeded_normal(seed as u64, "x", &shape)],
            ));
        }
    }

    // ---- LSTM, every output weighted
    let mut seed = 0;
    for direction in [
        Direction::Forward,
        Direction::Reverse,
        Direction::Bidirectional,
    ] {
        for batch_first in [false, true] {
            let attrs = Lstm {
                hidden: 3,
                direction,
                batch_first,
            };
            seed += 1;
            let layout = if batch_first {
                "batch_first"
            } else {
                "seq_first"
            };
            cases.push(GradCheckCase::all_inputs(
                format!("lstm_{direction:?}_{layout}").to_lowercase(),
                Op::Lstm(attrs),
                lstm_inputs(attrs, 4, 2, 2, seed),
            ));
        }
    }
    cases
}
