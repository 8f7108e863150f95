//! Conv2d, pooling and LSTM in the f64 reference: backward checked by finite differences (the
//! cases are data, `gradcheck::cases::spatial`), forward checked against hand-computed values
//! that pin PyTorch's conventions, and every output shape checked against shape inference.

use dlbench_core::ir::shape::infer_node;
use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{DType, Dim, Mode, Node, Op, Tensor, ValueInfo};
use dlbench_reference::gradcheck::cases::{
    self, conv, distinct, lstm_inputs, pool, seeded_normal, GradCheckCase,
};
use dlbench_reference::ops;

fn node(op: Op, inputs: usize, outputs: usize) -> Node {
    Node {
        name: op.name().to_string(),
        op,
        inputs: (0..inputs).map(|i| format!("in{i}")).collect(),
        outputs: (0..outputs).map(|i| format!("out{i}")).collect(),
    }
}

fn tensor(shape: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::f64(shape.to_vec(), data).expect("shape matches data")
}

/// Runs the node forward and asserts every output's shape is the one shape inference gives.
fn forward(node: &Node, inputs: &[Tensor]) -> Vec<Tensor> {
    let infos: Vec<ValueInfo> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let shape = t.shape().iter().map(|&d| Dim::Known(d)).collect();
            ValueInfo::new(format!("in{i}"), DType::F64, shape)
        })
        .collect();
    let info_refs: Vec<&ValueInfo> = infos.iter().collect();
    let inferred = infer_node(node, &info_refs).expect("shape inference accepts the node");
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let outputs = ops::forward(node, &refs, Mode::Training).expect("forward runs");
    assert_eq!(outputs.len(), inferred.len(), "{}: output count", node.name);
    for (y, info) in outputs.iter().zip(&inferred) {
        assert_eq!(
            y.shape(),
            info.resolve(1).as_slice(),
            "{}: {}",
            node.name,
            info.name
        );
    }
    outputs
}

/// Runs the spatial gradient checks whose names start with `prefix` (at least one), each
/// after checking its output shapes against shape inference.
fn gradcheck(prefix: &str) {
    let cases: Vec<GradCheckCase> = cases::spatial()
        .into_iter()
        .filter(|c| c.name.starts_with(prefix))
        .collect();
    assert!(!cases.is_empty(), "no `{prefix}` cases");
    for case in &cases {
        forward(&case.node, &case.inputs);
        let report = case.run().expect("gradcheck runs");
        assert!(
            report.passed(),
            "{} ({:?}) failed its gradient check: {report:?}",
            case.name,
            case.node.op
        );
    }
}

/// The prefixes the tests below run.
const GROUPS: [&str; 4] = ["conv_", "max_pool_", "avg_pool_", "lstm_"];

#[test]
fn every_spatial_case_is_in_a_group() {
    for case in cases::spatial() {
        assert!(
            GROUPS.iter().any(|g| case.name.starts_with(g)),
            "{} is run by no test",
            case.name
        );
    }
}

fn values(t: &Tensor) -> &[f64] {
    t.as_f64().expect("f64")
}

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
    }
}

// ---------------------------------------------------------------- conv

#[test]
fn conv_gradients() {
    gradcheck("conv_");
}

#[test]
fn conv_is_cross_correlation() {
    let x = tensor(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let w = tensor(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = forward(
        &node(Op::Conv2d(Conv2d::default()), 2, 1),
        &[x.clone(), w.clone()],
    );
    // y[0,0] = 1*1 + 2*2 + 3*4 + 4*5; a flipped (true) convolution would give 23.
    assert_close(values(&y[0]), &[37.0, 47.0, 67.0, 77.0]);

    let b = tensor(&[1], vec![0.5]);
    let y = forward(
        &node(Op::Conv2d(Conv2d::default()), 3, 1),
        &[x.clone(), w.clone(), b],
    );
    assert_close(values(&y[0]), &[37.5, 47.5, 67.5, 77.5]);

    // Dilation 2 spreads the 2x2 kernel over the corners of the 3x3 input.
    let y = forward(
        &node(Op::Conv2d(conv(1, 0, 2, 1)), 2, 1),
        &[x.clone(), w.clone()],
    );
    assert_close(values(&y[0]), &[1.0 + 2.0 * 3.0 + 3.0 * 7.0 + 4.0 * 9.0]);

    let ones = tensor(&[1, 1, 2, 2], vec![1.0; 4]);
    let y = forward(&node(Op::Conv2d(conv(2, 1, 1, 1)), 2, 1), &[x, ones]);
    // Windows at padded rows/cols {0,1} and {2,3}: the top-left one sees only x[0,0].
    assert_close(values(&y[0]), &[1.0, 5.0, 11.0, 28.0]);
}

#[test]
fn conv_groups_do_not_mix_channels() {
    // Channel 0 holds ones, channel 1 tens. With 2 groups and 4 outputs, outputs 0 and 1
    // (the first O/groups, not the even ones) see only channel 0, as PyTorch.
    let mut data = vec![1.0; 4];
    data.extend([10.0; 4]);
    let x = tensor(&[1, 2, 2, 2], data);
    let w = tensor(&[4, 1, 1, 1], vec![1.0, 2.0, 3.0, 4.0]);
    let y = forward(&node(Op::Conv2d(conv(1, 0, 1, 2)), 2, 1), &[x, w]);
    let expected: Vec<f64> = [1.0, 2.0, 30.0, 40.0]
        .iter()
        .flat_map(|&v| [v; 4])
        .collect();
    assert_close(values(&y[0]), &expected);
}

// ---------------------------------------------------------------- pooling

#[test]
fn max_pool_gradients() {
    gradcheck("max_pool_");
}

#[test]
fn avg_pool_gradients() {
    gradcheck("avg_pool_");
}

fn max_pool_grad(p: Pool2d, x: Tensor) -> Vec<f64> {
    let n = node(Op::MaxPool2d(p), 1, 1);
    let y = forward(&n, std::slice::from_ref(&x));
    let dy = tensor(y[0].shape(), vec![1.0; y[0].len()]);
    let grads = ops::backward(&n, &[&x], &[&y[0]], &[Some(&dy)]).expect("backward runs");
    values(grads[0].as_ref().expect("dx")).to_vec()
}

#[test]
fn max_pool_tie_goes_to_first_maximum() {
    let all_equal = tensor(&[1, 1, 2, 2], vec![3.0; 4]);
    assert_close(
        &max_pool_grad(Pool2d::square(2), all_equal),
        &[1.0, 0.0, 0.0, 0.0],
    );
    let later_tie = tensor(&[1, 1, 2, 2], vec![1.0, 5.0, 5.0, 2.0]);
    assert_close(
        &max_pool_grad(Pool2d::square(2), later_tie),
        &[0.0, 1.0, 0.0, 0.0],
    );
    // Padding is -inf: an all-negative window at the padded corner still picks a real value.
    let negative = tensor(&[1, 1, 2, 2], vec![-4.0, -3.0, -2.0, -1.0]);
    let y = forward(
        &node(Op::MaxPool2d(pool(2, 2, 1, false, true)), 1, 1),
        &[negative],
    );
    assert_close(values(&y[0]), &[-4.0, -3.0, -2.0, -1.0]);
}

#[test]
fn ceil_mode_output_shapes() {
    let x = distinct(0, &[1, 1, 5, 5]);
    let floor = forward(
        &node(Op::MaxPool2d(pool(2, 2, 0, false, true)), 1, 1),
        std::slice::from_ref(&x),
    );
    assert_eq!(floor[0].shape(), &[1, 1, 2, 2]);
    let ceil = forward(
        &node(Op::MaxPool2d(pool(2, 2, 0, true, true)), 1, 1),
        std::slice::from_ref(&x),
    );
    assert_eq!(ceil[0].shape(), &[1, 1, 3, 3]);
    // The extra window holds only the last row/column.
    let xs = values(&x);
    assert_eq!(values(&ceil[0])[8], xs[24]);
    // A window that would start in the right padding is dropped: 3, not 4.
    let padded = forward(&node(Op::MaxPool2d(pool(2, 2, 1, true, true)), 1, 1), &[x]);
    assert_eq!(padded[0].shape(), &[1, 1, 3, 3]);
}

fn avg(p: Pool2d, x: &Tensor) -> Vec<f64> {
    let y = forward(&node(Op::AvgPool2d(p), 1, 1), std::slice::from_ref(x));
    values(&y[0]).to_vec()
}

#[test]
fn avg_pool_divisor_at_padded_corner() {
    let x = tensor(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    // Each 2x2 window at padding 1 holds one real element and three zeros of padding.
    assert_close(
        &avg(pool(2, 2, 1, false, true), &x),
        &[0.25, 0.5, 0.75, 1.0],
    );
    assert_close(&avg(pool(2, 2, 1, false, false), &x), &[1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn avg_pool_ceil_mode_divisor_clips_to_padded_extent() {
    // Beyond `input + pad` the window is not counted even with count_include_pad.
    let ones = tensor(&[1, 1, 5, 5], vec![1.0; 25]);
    assert_close(&avg(pool(2, 2, 0, true, true), &ones), &[1.0; 9]);
    // Per axis (real elements, divisor length) are (2, 3), (3, 3), (1, 2): PyTorch's
    // `hend = min(hstart + k, H + pad)`, size taken before clipping to the input.
    let ones = tensor(&[1, 1, 4, 4], vec![1.0; 16]);
    let axis = [(2.0, 3.0), (3.0, 3.0), (1.0, 2.0)];
    let mut include = Vec::new();
    for (rr, rp) in axis {
        for (cr, cp) in axis {
            include.push(rr * cr / (rp * cp));
        }
    }
    assert_close(&avg(pool(3, 2, 1, true, true), &ones), &include);
    assert_close(&avg(pool(3, 2, 1, true, false), &ones), &[1.0; 9]);
}

// ---------------------------------------------------------------- LSTM

fn lstm_attrs(hidden: usize, direction: Direction, batch_first: bool) -> Lstm {
    Lstm {
        hidden,
        direction,
        batch_first,
    }
}

fn lstm_node(attrs: Lstm) -> Node {
    node(Op::Lstm(attrs), 1 + 4 * attrs.direction.count(), 3)
}

/// Finite differences of `L = sum_k sum(g_k * y_k)` over the selected outputs only, against
/// `backward` given `None` for the others.
fn lstm_partial_check(attrs: Lstm, inputs: &[Tensor], selected: [bool; 3]) {
    let n = lstm_node(attrs);
    let outputs = forward(&n, inputs);
    let weights: Vec<Option<Tensor>> = outputs
        .iter()
        .zip(selected)
        .enumerate()
        .map(|(k, (y, on))| on.then(|| seeded_normal(99, &format!("g{k}"), y.shape())))
        .collect();
    let loss = |args: &[&Tensor]| -> f64 {
        let ys = ops::forward(&n, args, Mode::Training).expect("forward runs");
        ys.iter()
            .zip(&weights)
            .filter_map(|(y, g)| g.as_ref().map(|g| (y, g)))
            .map(|(y, g)| {
                values(y)
                    .iter()
                    .zip(values(g))
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .sum()
    };
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let out_refs: Vec<&Tensor> = outputs.iter().collect();
    let grad_refs: Vec<Option<&Tensor>> = weights.iter().map(Option::as_ref).collect();
    let analytic = ops::backward(&n, &refs, &out_refs, &grad_refs).expect("backward runs");
    let step = 1e-6;
    for (i, input) in inputs.iter().enumerate() {
        let grad = analytic[i]
            .as_ref()
            .expect("every LSTM input gets a gradient");
        for e in 0..input.len() {
            let probe = |delta: f64| {
                let mut moved = values(input).to_vec();
                moved[e] += delta;
                let moved = tensor(input.shape(), moved);
                let mut args = refs.clone();
                args[i] = &moved;
                loss(&args)
            };
            let numeric = (probe(step) - probe(-step)) / (2.0 * step);
            let err = (values(grad)[e] - numeric).abs();
            assert!(
                err <= 1e-7 + 1e-5 * numeric.abs(),
                "{attrs:?} outputs {selected:?}: input {i} element {e}: analytic {} numeric {numeric}",
                values(grad)[e]
            );
        }
    }
}

#[test]
fn lstm_gradients_all_outputs() {
    gradcheck("lstm_");
}

#[test]
fn lstm_gradients_from_single_outputs() {
    let mut seed = 10;
    for direction in [
        Direction::Forward,
        Direction::Reverse,
        Direction::Bidirectional,
    ] {
        let attrs = lstm_attrs(2, direction, direction == Direction::Reverse);
        for selected in [
            [true, false, false],
            [false, true, false],
            [false, false, true],
        ] {
            seed += 1;
            lstm_partial_check(attrs, &lstm_inputs(attrs, 3, 2, 2, seed), selected);
        }
    }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Hidden size 1, one input feature: rows of w_ih are the gates i, f, g, o.
fn scalar_lstm(x: &[f64], w_ih: [f64; 4], w_hh: [f64; 4], b: [f64; 4]) -> Vec<Tensor> {
    let attrs = lstm_attrs(1, Direction::Forward, false);
    let b_hh: Vec<f64> = b.iter().map(|v| v * 0.25).collect();
    let b_ih: Vec<f64> = b.iter().map(|v| v * 0.75).collect();
    let inputs = [
        tensor(&[x.len(), 1, 1], x.to_vec()),
        tensor(&[4, 1], w_ih.to_vec()),
        tensor(&[4, 1], w_hh.to_vec()),
        tensor(&[4], b_ih),
        tensor(&[4], b_hh),
    ];
    forward(&lstm_node(attrs), &inputs)
}

#[test]
fn lstm_scalar_steps_by_hand() {
    let (w_ih, w_hh, b) = (
        [0.5, -0.3, 0.8, 0.2],
        [0.1, 0.7, -0.4, 0.6],
        [0.1, 0.4, -0.2, 0.3],
    );
    let ys = scalar_lstm(&[0.9], w_ih, w_hh, b);
    let x = 0.9;
    let i = sigmoid(0.5 * x + 0.1);
    let g = (0.8 * x - 0.2).tanh();
    let o = sigmoid(0.2 * x + 0.3);
    let c1 = i * g;
    let h1 = o * c1.tanh();
    assert_close(values(&ys[0]), &[h1]);
    assert_close(values(&ys[1]), &[h1]);
    assert_close(values(&ys[2]), &[c1]);

    // A second step, where the forget gate and the recurrent weights matter.
    let ys = scalar_lstm(&[0.9, -0.6], w_ih, w_hh, b);
    let x = -0.6;
    let i = sigmoid(0.5 * x + 0.1 * h1 + 0.1);
    let f = sigmoid(-0.3 * x + 0.7 * h1 + 0.4);
    let g = (0.8 * x - 0.4 * h1 - 0.2).tanh();
    let o = sigmoid(0.2 * x + 0.6 * h1 + 0.3);
    let c2 = f * c1 + i * g;
    let h2 = o * c2.tanh();
    assert_close(values(&ys[0]), &[h1, h2]);
    assert_close(values(&ys[1]), &[h2]);
    assert_close(values(&ys[2]), &[c2]);
}

#[test]
fn lstm_gate_order_matters() {
    let (w_ih, w_hh, b) = (
        [0.5, -0.3, 0.8, 0.2],
        [0.1, 0.7, -0.4, 0.6],
        [0.1, 0.4, -0.2, 0.3],
    );
    let swap = |v: [f64; 4]| [v[0], v[2], v[1], v[3]];
    let x = [0.9, -0.6];
    let original = scalar_lstm(&x, w_ih, w_hh, b);
    let swapped = scalar_lstm(&x, swap(w_ih), swap(w_hh), swap(b));
    for (a, s) in original.iter().zip(&swapped) {
        let diff = values(a).iter().zip(values(s)).map(|(p, q)| (p - q).abs());
        assert!(
            diff.fold(0.0, f64::max) > 1e-3,
            "swapping f and g rows changed nothing"
        );
    }
}

/// The single-direction layer `d` of a bidirectional input list, as its own node's inputs.
fn direction_inputs(inputs: &[Tensor], d: usize) -> Vec<Tensor> {
    let mut own = vec![inputs[0].clone()];
    own.extend_from_slice(&inputs[1 + 4 * d..5 + 4 * d]);
    own
}

#[test]
fn lstm_reverse_and_bidirectional_layout() {
    let (t, n, h) = (3, 2, 2);
    let bi = lstm_attrs(h, Direction::Bidirectional, false);
    let inputs = lstm_inputs(bi, t, n, 3, 42);
    let both = forward(&lstm_node(bi), &inputs);
    let fwd_attrs = lstm_attrs(h, Direction::Forward, false);
    let fwd = forward(&lstm_node(fwd_attrs), &direction_inputs(&inputs, 0));
    let rev_attrs = lstm_attrs(h, Direction::Reverse, false);
    let rev = forward(&lstm_node(rev_attrs), &direction_inputs(&inputs, 1));

    // Y: forward features first, reverse last, each at its own time position.
    let y = values(&both[0]);
    for row in 0..t * n {
        assert_close(
            &y[row * 2 * h..row * 2 * h + h],
            &values(&fwd[0])[row * h..][..h],
        );
        assert_close(&y[row * 2 * h + h..][..h], &values(&rev[0])[row * h..][..h]);
    }
    for k in 1..3 {
        assert_close(&values(&both[k])[..n * h], values(&fwd[k]));
        assert_close(&values(&both[k])[n * h..], values(&rev[k]));
    }
    // The reverse direction ends at t = 0, so its final state is Y at time 0...
    assert_close(values(&rev[1]), &values(&rev[0])[..n * h]);
    // ...and its output at the last time step has seen only that step.
    let mut last = direction_inputs(&inputs, 1);
    last[0] = tensor(&[1, n, 3], values(&inputs[0])[(t - 1) * n * 3..].to_vec());
    let one_step = forward(&lstm_node(rev_attrs), &last);
    assert_close(&values(&rev[0])[(t - 1) * n * h..], values(&one_step[0]));
}

#[test]
fn lstm_batch_first_transposes_x_and_y() {
    let (t, n, i, h) = (3, 2, 2, 2);
    let seq = lstm_attrs(h, Direction::Bidirectional, false);
    let inputs = lstm_inputs(seq, t, n, i, 7);
    let transpose = |data: &[f64], a: usize, b: usize, f: usize| {
        let mut out = vec![0.0; data.len()];
        for p in 0..a {
            for q in 0..b {
                out[(q * a + p) * f..][..f].copy_from_slice(&data[(p * b + q) * f..][..f]);
            }
        }
        out
    };
    let mut bf_inputs = inputs.clone();
    bf_inputs[0] = tensor(&[n, t, i], transpose(values(&inputs[0]), t, n, i));
    let bf = lstm_attrs(h, Direction::Bidirectional, true);
    let a = forward(&lstm_node(seq), &inputs);
    let b = forward(&lstm_node(bf), &bf_inputs);
    assert_close(values(&b[0]), &transpose(values(&a[0]), t, n, 2 * h));
    assert_close(values(&b[1]), values(&a[1]));
    assert_close(values(&b[2]), values(&a[2]));
}
