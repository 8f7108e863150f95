//! The engine's convolution against the f64 reference on geometries that reach every path:
//! weight gradients as row dot products (under 64 taps) and through `sgemm` with im2row's
//! channels-last runs (8+ channels) and block transposes (fewer), the identity lowering of a
//! 1x1 kernel, and padding, stride, dilation and groups among them. (The conformance suite's
//! conv cases all have few taps; the seed CNN's second layer is the only `sgemm` one there.)

use dlbench_core::ir::Conv2d;
use dlbench_core::{Mode, Node, Op, Tensor};

use super::parallel::Chunks;
use super::{conv2d, conv2d_backward, Buf, Scratch};
use crate::kernels::test_rng::Rng;
use dlbench_reference::ops as reference;

fn tensor(b: &Buf) -> Tensor {
    let data = b.data.iter().map(|&v| f64::from(v)).collect();
    Tensor::f64(b.shape.clone(), data).expect("shape matches data")
}

/// `|got - want| <= tolerance * (1 + |want|)` elementwise. [`SMALL`] for sums of at most a few
/// hundred terms in [-1, 1), whose rounding stays far below it, while one wrong or missing
/// term is off by far more.
fn assert_close(what: &str, got: &[f32], want: &Tensor, tolerance: f64) {
    let want = want.as_f64().expect("reference tensors are f64");
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tolerance * (1.0 + w.abs()),
            "{what}[{i}]: {g}, expected {w}"
        );
    }
}

/// The tolerance of [`cases`], sums of at most a few hundred terms.
const SMALL: f64 = 1e-5;

/// The tolerance of [`parallel_cases`], whose weight gradients sum a few thousand terms (and
/// sum them in a different order on each thread count); a chunk's missing images are still
/// off by hundreds of terms.
const LARGE: f64 = 1e-4;

struct Case {
    about: &'static str,
    /// Input `[n, c, h, w]`, and filters, kernel and attributes.
    input: [usize; 4],
    filters: usize,
    kernel: [usize; 2],
    attrs: Conv2d,
    bias: bool,
}

fn cases() -> Vec<Case> {
    let attrs = |stride, padding, dilation, groups| Conv2d {
        stride,
        padding,
        dilation,
        groups,
    };
    let plain = Conv2d::default();
    vec![
        Case {
            about: "one channel, 9 taps: row dot products",
            input: [2, 1, 12, 11],
            filters: 5,
            kernel: [3, 3],
            attrs: attrs([1, 1], [1, 1], [1, 1], 1),
            bias: true,
        },
        Case {
            about: "8 channels, 72 taps: sgemm, channels-last runs, stride 2",
            input: [2, 8, 9, 10],
            filters: 7,
            kernel: [3, 3],
            attrs: attrs([2, 2], [1, 1], [1, 1], 1),
            bias: true,
        },
        Case {
            about: "2 channels, 70 taps: sgemm, block transposes, dilation",
            input: [2, 2, 13, 12],
            filters: 6,
            kernel: [5, 7],
            attrs: attrs([1, 1], [2, 3], [2, 1], 1),
            bias: false,
        },
        Case {
            about: "2 groups of 16 channels: sgemm per group",
            input: [3, 32, 6, 7],
            filters: 10,
            kernel: [3, 2],
            attrs: attrs([1, 2], [1, 0], [1, 1], 2),
            bias: true,
        },
        Case {
            about: "1x1 on 80 channels: identity lowering, sgemm",
            input: [2, 80, 4, 5],
            filters: 6,
            kernel: [1, 1],
            attrs: plain,
            bias: true,
        },
        Case {
            about: "1x1 with stride 2 on 40 channels: not the identity, dot products",
            input: [2, 40, 5, 5],
            filters: 3,
            kernel: [1, 1],
            attrs: attrs([2, 2], [0, 0], [1, 1], 1),
            bias: false,
        },
    ]
}

/// Runs `case` forward and backward (with and without dx) on `threads` threads, checks every
/// result against the f64 reference, and returns them all (y, then dx, dw and db of each
/// backward pass) for comparison across thread counts.
fn check_against_reference(
    case: &Case,
    seed: u64,
    threads: usize,
    tolerance: f64,
) -> Vec<Vec<f32>> {
    let [n, c, _, _] = case.input;
    let x = Buf::new(
        case.input.to_vec(),
        Rng(seed).fill(case.input.iter().product()),
    );
    let w_shape = vec![
        case.filters,
        c / case.attrs.groups,
        case.kernel[0],
        case.kernel[1],
    ];
    let w = Buf::new(
        w_shape.clone(),
        Rng(seed + 1).fill(w_shape.iter().product()),
    );
    let b = Buf::new(vec![case.filters], Rng(seed + 2).fill(case.filters));
    let b = case.bias.then_some(&b);
    let inputs: Vec<Tensor> = [Some(&x), Some(&w), b]
        .into_iter()
        .flatten()
        .map(tensor)
        .collect();
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let node = Node {
        name: "conv".to_string(),
        op: Op::Conv2d(case.attrs),
        inputs: (0..refs.len()).map(|i| format!("in{i}")).collect(),
        outputs: vec!["y".to_string()],
    };
    let about = format!("{} on {threads} threads", case.about);
    let want_y = reference::forward(&node, &refs, Mode::Training).expect("reference forward");
    // Outputs start as NaN, so that an element the kernels leave unwritten shows.
    let poisoned = |len: usize| vec![f32::NAN; len];
    // One scratch for every pass, as a session reuses it from step to step.
    let mut scratch = Scratch::default();
    let mut y = poisoned(want_y[0].len());
    conv2d(&case.attrs, &x, &w, b, &mut y, &mut scratch, threads);
    assert_close(&format!("{about}: y"), &y, &want_y[0], tolerance);

    let dy = Buf::new(want_y[0].shape().to_vec(), Rng(seed + 3).fill(y.len()));
    let want = reference::backward(&node, &refs, &[&want_y[0]], &[Some(&tensor(&dy))])
        .expect("reference backward");
    let mut results = vec![y];
    for need_dx in [true, false] {
        let mut dx = poisoned(if need_dx { x.data.len() } else { 0 });
        let (mut dw, mut db) = (poisoned(w.data.len()), poisoned(case.filters));
        conv2d_backward(
            &case.attrs,
            &x,
            &w,
            &dy.data,
            need_dx.then_some(&mut dx[..]),
            Some(&mut dw),
            case.bias.then_some(&mut db[..]),
            &mut scratch,
            threads,
        );
        let what = |name: &str| format!("{about} (need_dx {need_dx}): {name}");
        if need_dx {
            assert_close(&what("dx"), &dx, want[0].as_ref().expect("dx"), tolerance);
            results.push(dx);
        }
        assert_close(&what("dw"), &dw, want[1].as_ref().expect("dw"), tolerance);
        results.push(dw);
        if case.bias {
            assert_close(&what("db"), &db, want[2].as_ref().expect("db"), tolerance);
            results.push(db);
        }
    }
    assert!(
        n > 1,
        "{about}: a batch of one would not test the image loop"
    );
    results
}

#[test]
fn conv2d_matches_the_f64_reference() {
    for (k, case) in cases().iter().enumerate() {
        check_against_reference(case, 17 * k as u64 + 1, 1, SMALL);
    }
}

/// Batches big enough to be split over threads, with odd image counts so that chunks differ
/// in size, through each way of computing dW.
fn parallel_cases() -> Vec<Case> {
    vec![
        Case {
            about: "5 images, 144 taps: sgemm dW, padding",
            input: [5, 16, 24, 24],
            filters: 32,
            kernel: [3, 3],
            attrs: Conv2d {
                padding: [1, 1],
                ..Conv2d::default()
            },
            bias: true,
        },
        Case {
            about: "17 images, one channel, 9 taps: row dot products",
            input: [17, 1, 32, 32],
            filters: 32,
            kernel: [3, 3],
            attrs: Conv2d::default(),
            bias: true,
        },
        Case {
            about: "5 images, 1x1 in 2 groups of 40 channels: identity lowering",
            input: [5, 80, 24, 24],
            filters: 64,
            kernel: [1, 1],
            attrs: Conv2d {
                groups: 2,
                ..Conv2d::default()
            },
            bias: false,
        },
    ]
}

#[test]
fn conv2d_over_threads_matches_one_thread_and_the_reference() {
    for (k, case) in parallel_cases().iter().enumerate() {
        let [n, c, h, w] = case.input;
        let plane = (h + 2 * case.attrs.padding[0] + 1 - case.kernel[0])
            * (w + 2 * case.attrs.padding[1] + 1 - case.kernel[1]);
        let work = case.filters * c / case.attrs.groups * case.kernel[0] * case.kernel[1] * plane;
        for threads in [2, 3] {
            let chunks = Chunks::new(n, work, threads);
            assert_eq!(chunks.len(), threads, "{}: not split", case.about);
        }
        let seed = 31 * k as u64 + 7;
        let one = check_against_reference(case, seed, 1, LARGE);
        for threads in [2, 3] {
            let many = check_against_reference(case, seed, threads, LARGE);
            assert_eq!(one.len(), many.len(), "{}: results", case.about);
            for (r, (a, b)) in one.iter().zip(&many).enumerate() {
                assert_eq!(a.len(), b.len(), "{}: result {r} length", case.about);
                for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        f64::from((a - b).abs()) <= LARGE * (1.0 + f64::from(a.abs())),
                        "{} on {threads} threads: result {r}[{i}]: {b}, one thread {a}",
                        case.about
                    );
                }
            }
        }
    }
}

#[test]
fn image_chunks_cover_the_batch_in_order() {
    let listed = |images, work, threads| {
        let chunks = Chunks::new(images, work, threads);
        (0..chunks.len()).map(|t| chunks.get(t)).collect::<Vec<_>>()
    };
    let big = 1 << 22;
    assert_eq!(listed(5, big, 2), vec![0..2, 2..5]);
    assert_eq!(listed(5, big, 3), vec![0..1, 1..3, 3..5]);
    assert_eq!(listed(2, big, 3), vec![0..1, 1..2]);
    assert_eq!(listed(32, 1000, 2), vec![0..32], "too little work to split");
    assert_eq!(listed(7, big, 1), vec![0..7]);
    assert_eq!(listed(0, big, 2), vec![0..0]);
}
