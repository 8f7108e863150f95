//! The engine's losses against hand-computed values, the f64 formulas and PyTorch's edge
//! behaviour (clamped logs, refused probabilities and labels).

use super::{evaluate, Args, Buf, LossOp, Want};

/// Agreement to f32 accuracy: infinities exactly, NaN with NaN. The absolute term allows
/// for cancellation in f32 (`sigmoid(z) - t`, `ln(1 - p) - ln(p)` near p = 1/2), which
/// PyTorch's f32 kernels share; the relative term is 100 times tighter than the
/// conformance suite's.
fn close(got: f64, want: f64) -> bool {
    if want.is_nan() || want.is_infinite() {
        return got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
    }
    (got - want).abs() <= 1e-5 * want.abs() + 1e-7
}

fn buf(data: &[f32]) -> Buf {
    Buf::new(vec![data.len()], data.to_vec())
}

/// The loss of `op` on `inputs`, in f64 as computed before the cast to f32.
fn loss_of(op: LossOp, inputs: &[Buf]) -> f64 {
    evaluate(op, Args::all(inputs), Want::Loss, &mut Vec::new(), 1).unwrap()
}

/// The gradients of `dloss * loss` for the inputs `need` marks (NaN-filled first, so an
/// element left unwritten shows; empty for the others).
fn grads_of(op: LossOp, inputs: &[Buf], dloss: f32, need: &[bool]) -> Vec<Vec<f32>> {
    let mut grads: Vec<Vec<f32>> = inputs
        .iter()
        .zip(need)
        .map(|(b, &n)| vec![f32::NAN; if n { b.data.len() } else { 0 }])
        .collect();
    let want = Want::Grads {
        dloss,
        grads: &mut grads,
    };
    evaluate(op, Args::all(inputs), want, &mut Vec::new(), 1).unwrap();
    grads
}

/// The loss and the gradients (with d/d the target) of `op` on `inputs`.
fn run(op: LossOp, inputs: &[Buf]) -> (f64, Vec<Vec<f32>>) {
    let need = vec![true; inputs.len()];
    (loss_of(op, inputs), grads_of(op, inputs, 1.0, &need))
}

fn assert_all_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(close(f64::from(g), w), "{what}[{i}]: got {g:e}, want {w:e}");
    }
}

/// BCE on one probability: the loss, d/dp, d/dt (PyTorch's formulas).
fn bce64(p: f64, t: f64) -> (f64, f64, f64) {
    let ln = |v: f64| v.ln().max(-100.0);
    let loss = -(t * ln(p) + (1.0 - t) * ln(1.0 - p));
    let dp = (p - t) / (p * (1.0 - p)).max(f64::from(1e-12f32));
    (loss, dp, -(p / (1.0 - p)).ln())
}

#[test]
fn bce_matches_f64_at_the_edges_of_0_and_1() {
    let ps = [0.0, 1e-30, 1e-40, 1e-7, 0.3, 0.5, 0.999_999_9, 1.0];
    for p in ps {
        for t in [0.0, 0.25, 1.0] {
            let (loss, g) = run(LossOp::BinaryCrossEntropy, &[buf(&[p]), buf(&[t])]);
            let (l, dp, dt) = bce64(f64::from(p), f64::from(t));
            assert!(close(loss, l), "p {p:e}, t {t}: loss {loss:e}, want {l:e}");
            assert_all_close(&format!("p {p:e} t {t} dp"), &g[0], &[dp]);
            assert_all_close(&format!("p {p:e} t {t} dt"), &g[1], &[dt]);
        }
    }
}

#[test]
fn bce_with_logits_matches_f64_when_saturated() {
    for z in [
        -200.0, -90.0, -20.0, -1e-3, 0.0, 1e-8, 3.0, 20.0, 90.0, 200.0,
    ] {
        for t in [0.0, 0.5, 1.0] {
            let (loss, g) = run(
                LossOp::BinaryCrossEntropyWithLogits,
                &[buf(&[z]), buf(&[t])],
            );
            let (z, t) = (f64::from(z), f64::from(t));
            // Where t = 1 and z is large, the loss is ln(1 + e^-z) alone: ~2e-9 at z = 20.
            let l = z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            let sigmoid = 1.0 / (1.0 + (-z).exp());
            // Relative down to f32's normal range: the loss is a sum of terms >= 0, tiny
            // when saturated.
            let error = (loss - l).abs();
            assert!(
                error <= 1e-5 * l + f64::from(f32::MIN_POSITIVE),
                "z {z}, t {t}: loss {loss:e}, want {l:e}"
            );
            assert_all_close(&format!("z {z} t {t} dz"), &g[0], &[sigmoid - t]);
            assert_all_close(&format!("z {z} t {t} dt"), &g[1], &[-z]);
        }
    }
}

/// Deterministic values in (0, 1), every `every`-th one exactly 0 or 1.
fn unit_values(len: usize, seed: u64, every: usize) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|i| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            match i % every {
                0 => (i / every % 2) as f32,
                _ => ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32,
            }
        })
        .collect()
}

#[test]
fn vae_elbo_matches_f64_across_chunks_and_skips_unwanted_target_gradients() {
    let (rows, cols, latent) = (3, 301, 7);
    let recon = Buf::new(vec![rows, cols], unit_values(rows * cols, 1, 97));
    let x = Buf::new(vec![rows, cols], unit_values(rows * cols, 2, 1000));
    let mu: Vec<f32> = unit_values(rows * latent, 3, 1000)
        .iter()
        .map(|v| 4.0 * v - 2.0)
        .collect();
    let lv: Vec<f32> = unit_values(rows * latent, 4, 1000)
        .iter()
        .map(|v| 6.0 * v - 3.0)
        .collect();
    let (mu, lv) = (
        Buf::new(vec![rows, latent], mu),
        Buf::new(vec![rows, latent], lv),
    );
    let inputs = [recon, mu, lv, x];
    let (loss, g) = run(LossOp::VaeElbo, &inputs);

    let n = rows as f64;
    let wide = |b: &Buf| -> Vec<f64> { b.data.iter().map(|&v| f64::from(v)).collect() };
    let [recon, mu, lv, x] = [0, 1, 2, 3].map(|i| wide(&inputs[i]));
    let terms: Vec<(f64, f64, f64)> = recon.iter().zip(&x).map(|(&p, &t)| bce64(p, t)).collect();
    let kl: f64 = mu
        .iter()
        .zip(&lv)
        .map(|(m, v)| -0.5 * (1.0 + v - m * m - v.exp()))
        .sum();
    let want = (terms.iter().map(|t| t.0).sum::<f64>() + kl) / n;
    assert!(close(loss, want), "loss {loss}, want {want}");
    let scaled = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|g| g / n).collect() };
    assert_all_close(
        "drecon",
        &g[0],
        &scaled(terms.iter().map(|t| t.1).collect()),
    );
    assert_all_close("dmu", &g[1], &scaled(mu.clone()));
    assert_all_close(
        "dlogvar",
        &g[2],
        &scaled(lv.iter().map(|v| 0.5 * (v.exp() - 1.0)).collect()),
    );
    assert_all_close("dx", &g[3], &scaled(terms.iter().map(|t| t.2).collect()));

    let g2 = grads_of(LossOp::VaeElbo, &inputs, 2.0, &[true, true, true, false]);
    assert!(g2[3].is_empty(), "d/dx computed though not needed");
    let doubled: Vec<f32> = g[0].iter().map(|v| 2.0 * v).collect();
    assert_eq!(g2[0], doubled, "dloss scales the gradients");
}

#[test]
fn cross_entropy_matches_f64_on_spread_logits() {
    let z = [1000.0, 0.0, -1000.0, 2.5, -3.0, 0.5, 88.0, 89.0, 90.0];
    let labels = [2i64, 0, 1];
    let inputs = [
        Buf::new(vec![3, 3], z.to_vec()),
        Buf::labels(vec![3], labels.to_vec()),
    ];
    let loss = loss_of(LossOp::CrossEntropy, &inputs);
    let g = grads_of(LossOp::CrossEntropy, &inputs, 1.0, &[true, false]);
    let (mut want, mut dz) = (0.0, Vec::new());
    for (row, &label) in z.chunks(3).zip(&labels) {
        let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        want += max + sum.ln() - row[label as usize];
        for (c, v) in row.iter().enumerate() {
            let onehot = if c == label as usize { 1.0 } else { 0.0 };
            dz.push(((v - max).exp() / sum - onehot) / 3.0);
        }
    }
    assert!(close(loss, want / 3.0), "loss {loss}, want {}", want / 3.0);
    assert_all_close("dz", &g[0], &dz);
    assert!(g[1].is_empty());
}

/// MSE by hand: p = [1, 2, -1, 0.5] against t = [0, 4, 1, 0.5] is (1 + 4 + 4 + 0) / 4;
/// with dloss = 3, d/dp = 3 * 2 (p - t) / 4 and d/dt its negation, each also when it is
/// the only gradient wanted. Every value is exact in f32.
#[test]
fn mse_and_both_its_gradients_match_hand_computed_values() {
    let inputs = [buf(&[1.0, 2.0, -1.0, 0.5]), buf(&[0.0, 4.0, 1.0, 0.5])];
    assert_eq!(loss_of(LossOp::Mse, &inputs), 2.25);
    let g = grads_of(LossOp::Mse, &inputs, 3.0, &[true, true]);
    assert_eq!(g[0], [1.5, -3.0, -3.0, 0.0], "d/dp");
    assert_eq!(g[1], [-1.5, 3.0, 3.0, 0.0], "d/dt");
    let only_target = grads_of(LossOp::Mse, &inputs, 3.0, &[false, true]);
    assert!(only_target[0].is_empty(), "d/dp computed though not needed");
    assert_eq!(only_target[1], g[1], "d/dt alone");
    let only_prediction = grads_of(LossOp::Mse, &inputs, 3.0, &[true, false]);
    assert_eq!(only_prediction[0], g[0], "d/dp alone");
    assert!(
        only_prediction[1].is_empty(),
        "d/dt computed though not needed"
    );
}

/// PyTorch's BCELoss, and the ELBO on its reconstruction, refuse a probability outside
/// [0, 1], NaN included (`torch.nn.functional.binary_cross_entropy` raises "all elements
/// of input should be between 0 and 1" for NaN too), in the forward and the backward
/// pass; the error names the first offending element, wherever it sits among the chunks,
/// also where a chunk holds two. 0 and 1 themselves pass.
#[test]
fn probabilities_outside_the_unit_interval_are_refused_with_their_index() {
    let len = 600;
    let valid = unit_values(len, 5, 50);
    let bce_inputs = |p: &[f32]| [buf(p), buf(&valid)];
    let vae_inputs = |p: &[f32]| {
        [
            Buf::new(vec![2, len / 2], p.to_vec()),
            buf(&[0.5, -0.5]),
            buf(&[0.1, 0.2]),
            Buf::new(vec![2, len / 2], valid.clone()),
        ]
    };
    let cases: [(&[usize], f32); 6] = [
        (&[0], -0.5),
        (&[300], f32::NAN),
        (&[7], 1.5),
        (&[300, 301], 1.0 + f32::EPSILON),
        (&[256, 511], -f32::MIN_POSITIVE),
        (&[599], f32::INFINITY),
    ];
    for (at, bad) in cases {
        let mut p = valid.clone();
        at.iter().for_each(|&i| p[i] = bad);
        let want = format!("{bad} at element {} is outside [0, 1]", at[0]);
        for (op, inputs, what) in [
            (
                LossOp::BinaryCrossEntropy,
                bce_inputs(&p).to_vec(),
                "probability",
            ),
            (LossOp::VaeElbo, vae_inputs(&p).to_vec(), "reconstruction"),
        ] {
            let mut grads: Vec<Vec<f32>> = inputs.iter().map(|b| vec![0.0; b.data.len()]).collect();
            let backward = Want::Grads {
                dloss: 1.0,
                grads: &mut grads,
            };
            for (pass, result) in [
                (
                    "loss",
                    evaluate(op, Args::all(&inputs), Want::Loss, &mut Vec::new(), 1),
                ),
                (
                    "backward",
                    evaluate(op, Args::all(&inputs), backward, &mut Vec::new(), 1),
                ),
            ] {
                let err = result.expect_err(&format!("{op:?} {pass} took {bad} at {at:?}"));
                assert_eq!(err, format!("{what} {want}"), "{op:?} {pass}");
            }
        }
    }
    // 0 and 1 themselves are valid (`valid` holds both).
    assert!(loss_of(LossOp::BinaryCrossEntropy, &bce_inputs(&valid)).is_finite());
    assert!(loss_of(LossOp::VaeElbo, &vae_inputs(&valid)).is_finite());
}

/// Labels index `0..C`: a label equal to C is refused (PyTorch: "Target 3 is out of
/// bounds"), in the forward and the backward pass, even on a row whose neighbour would
/// give it an element to read; C - 1 is in range.
#[test]
fn cross_entropy_refuses_a_label_equal_to_the_class_count() {
    let z = vec![0.5, -1.0, 2.0, 0.0, 1.0, -2.0];
    for (labels, bad_row) in [([3i64, 0], 0), ([2, 3], 1), ([-1, 1], 0)] {
        let inputs = [
            Buf::new(vec![2, 3], z.clone()),
            Buf::labels(vec![2], labels.to_vec()),
        ];
        let want = format!("label {} at row {bad_row} is outside 0..3", labels[bad_row]);
        let loss = evaluate(
            LossOp::CrossEntropy,
            Args::all(&inputs),
            Want::Loss,
            &mut Vec::new(),
            1,
        );
        assert_eq!(loss, Err(want.clone()), "loss, labels {labels:?}");
        let mut grads = vec![vec![0.0; 6], Vec::new()];
        let backward = Want::Grads {
            dloss: 1.0,
            grads: &mut grads,
        };
        let backward = evaluate(
            LossOp::CrossEntropy,
            Args::all(&inputs),
            backward,
            &mut Vec::new(),
            1,
        );
        assert_eq!(backward, Err(want), "backward, labels {labels:?}");
    }
    // No classes at all: every label is out of range, as in the reference and PyTorch
    // (the engine answered NaN before mutation testing found it).
    let no_classes = [
        Buf::new(vec![2, 0], Vec::new()),
        Buf::labels(vec![2], vec![0, 0]),
    ];
    let loss = evaluate(
        LossOp::CrossEntropy,
        Args::all(&no_classes),
        Want::Loss,
        &mut Vec::new(),
        1,
    );
    assert_eq!(loss, Err("label 0 at row 0 is outside 0..0".to_string()));
    let inputs = [Buf::new(vec![2, 3], z), Buf::labels(vec![2], vec![2, 2])];
    // Row 0: lse(0.5, -1, 2) - 2; row 1: lse(0, 1, -2) + 2.
    let lse = |r: [f64; 3]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = (lse([0.5, -1.0, 2.0]) - 2.0 + lse([0.0, 1.0, -2.0]) + 2.0) / 2.0;
    let got = loss_of(LossOp::CrossEntropy, &inputs);
    assert!(close(got, want), "{got} != {want}");
}

/// BCE with logits against its f64 formula over 600 elements (three chunks) whose
/// logits sweep |z| from 0 to 24, through the range where e^-|z| is below f32's epsilon
/// but not negligible next to the loss (the `ln(1 + e)` correction); targets of 0 and 1
/// there make the loss that correction alone. With dloss = 2, every gradient element.
#[test]
fn bce_with_logits_matches_f64_across_chunks_and_small_exponentials() {
    let len = 600;
    let z: Vec<f32> = (0..len)
        .map(|i| {
            let magnitude = 24.0 * (i / 2) as f32 / (len / 2) as f32;
            if i % 2 == 0 {
                magnitude
            } else {
                -magnitude
            }
        })
        .collect();
    // t = 1 for z > 0 and 0 for z < 0 (the loss is ln(1 + e^-|z|)), except every third.
    let t: Vec<f32> = z
        .iter()
        .enumerate()
        .map(|(i, &z)| match (i % 3, z > 0.0) {
            (0, _) => 0.25,
            (_, true) => 1.0,
            _ => 0.0,
        })
        .collect();
    let inputs = [buf(&z), buf(&t)];
    let loss = loss_of(LossOp::BinaryCrossEntropyWithLogits, &inputs);
    let g = grads_of(
        LossOp::BinaryCrossEntropyWithLogits,
        &inputs,
        2.0,
        &[true, true],
    );
    let n = len as f64;
    let (mut want, mut dz, mut dt) = (0.0, Vec::new(), Vec::new());
    for (&z, &t) in z.iter().zip(&t) {
        let (z, t) = (f64::from(z), f64::from(t));
        let term = z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        // Each term to f32's relative precision, however small.
        let one = loss_of(
            LossOp::BinaryCrossEntropyWithLogits,
            &[buf(&[z as f32]), buf(&[t as f32])],
        );
        assert!(
            (one - term).abs() <= 1e-5 * term,
            "z {z}, t {t}: {one:e}, want {term:e}"
        );
        want += term;
        dz.push(2.0 * (1.0 / (1.0 + (-z).exp()) - t) / n);
        dt.push(2.0 * -z / n);
    }
    assert!(close(loss, want / n), "loss {loss}, want {}", want / n);
    assert_all_close("dz", &g[0], &dz);
    assert_all_close("dt", &g[1], &dt);
}

/// Cross-entropy on a single row, by hand: logits [1, 2, 3] and label 2 give
/// ln(e + e^2 + e^3) - 3; with dloss = 2, d/dz = 2 (softmax - onehot).
#[test]
fn cross_entropy_on_one_row_with_dloss_matches_hand_values() {
    let inputs = [
        Buf::new(vec![1, 3], vec![1.0, 2.0, 3.0]),
        Buf::labels(vec![1], vec![2]),
    ];
    let sum: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
    let loss = loss_of(LossOp::CrossEntropy, &inputs);
    assert!(close(loss, sum.ln() - 3.0), "loss {loss}");
    let g = grads_of(LossOp::CrossEntropy, &inputs, 2.0, &[true, false]);
    let softmax = [1.0f64, 2.0, 3.0].map(|v| v.exp() / sum);
    let want = [2.0 * softmax[0], 2.0 * softmax[1], 2.0 * (softmax[2] - 1.0)];
    assert_all_close("dz", &g[0], &want);
}

/// Split over threads (a batch of 40 K elements), the BCE terms give the same gradients, bit
/// for bit, and the same loss up to the order of the f64 partial sums.
#[test]
fn losses_split_over_threads_match_one_thread() {
    let (rows, cols, latent) = (40, 1000, 8);
    let p: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 997) as f32 / 1000.0 + 0.001)
        .collect();
    let t: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0)
        .collect();
    let z: Vec<f32> = p.iter().map(|v| 8.0 * v - 4.0).collect();
    let small = |seed: usize| -> Vec<f32> {
        (0..rows * latent)
            .map(|i| ((i * seed) % 17) as f32 / 10.0 - 0.8)
            .collect()
    };
    let shaped = |data: &[f32], width: usize| Buf::new(vec![rows, width], data.to_vec());
    let cases = [
        (
            LossOp::BinaryCrossEntropy,
            vec![shaped(&p, cols), shaped(&t, cols)],
        ),
        (
            LossOp::BinaryCrossEntropyWithLogits,
            vec![shaped(&z, cols), shaped(&t, cols)],
        ),
        (
            LossOp::VaeElbo,
            vec![
                shaped(&p, cols),
                shaped(&small(3), latent),
                shaped(&small(5), latent),
                shaped(&t, cols),
            ],
        ),
    ];
    for (op, inputs) in cases {
        let run = |threads| {
            let loss = evaluate(op, Args::all(&inputs), Want::Loss, &mut Vec::new(), threads);
            let mut grads: Vec<Vec<f32>> = inputs.iter().map(|b| vec![0.0; b.data.len()]).collect();
            let want = Want::Grads {
                dloss: 1.0,
                grads: &mut grads,
            };
            evaluate(op, Args::all(&inputs), want, &mut Vec::new(), threads).unwrap();
            let bits: Vec<Vec<u32>> = grads
                .iter()
                .map(|g| g.iter().map(|v| v.to_bits()).collect())
                .collect();
            (loss.unwrap(), bits)
        };
        let (loss, grads) = run(1);
        for threads in [2, 3] {
            let (split_loss, split_grads) = run(threads);
            assert!(
                (split_loss - loss).abs() <= 1e-12 * loss.abs(),
                "{op:?} on {threads} threads: {split_loss} against {loss}"
            );
            assert!(
                split_grads == grads,
                "{op:?} gradients on {threads} threads"
            );
        }
    }
}
