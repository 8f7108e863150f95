//! Seeded synthetic datasets. Each is a learnable task, so a benchmark's training loss can go
//! down and time-to-quality means something: labels come from a fixed random "teacher" that a
//! model can imitate, never from noise.
//!
//! Samples and teachers come from separate named streams of `dlbench_core::rng`, so the same
//! seed gives the same data on every machine.

use dlbench_core::limits::checked_numel;
use dlbench_core::rng::Stream;
use dlbench_core::Tensor;

use crate::bounds::env_limits;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// `samples` standard-normal samples of `width` values, row-major.
fn gaussian(samples: usize, width: usize, seed: u64) -> Vec<f64> {
    Stream::new(seed, "synthetic.features", 0).normal_vec(samples * width)
}

/// A `[rows, width]` teacher matrix of standard-normal weights.
fn teacher(rows: usize, width: usize, seed: u64) -> Vec<f64> {
    Stream::new(seed, "synthetic.teacher", 0).normal_vec(rows * width)
}

/// A `[classes, width]` teacher whose rows are orthonormal (or, with more classes than
/// values, unit length): the class scores of a standard-normal sample are then independent
/// N(0, 1), so every class is equally likely.
fn orthonormal_teacher(classes: usize, width: usize, seed: u64) -> Vec<f64> {
    let mut w = teacher(classes, width, seed);
    for c in 0..classes {
        let (done, rest) = w.split_at_mut(c * width);
        let row = &mut rest[..width];
        if c < width {
            for prev in done.chunks_exact(width) {
                let dot: f64 = prev.iter().zip(row.iter()).map(|(a, b)| a * b).sum();
                row.iter_mut().zip(prev).for_each(|(r, p)| *r -= dot * p);
            }
        }
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        row.iter_mut().for_each(|r| *r /= norm);
    }
    w
}

/// The scores `x W^T` of each sample against each teacher row.
fn scores(x: &[f64], width: usize, w: &[f64]) -> Vec<Vec<f64>> {
    x.chunks_exact(width.max(1))
        .map(|row| {
            w.chunks_exact(width.max(1))
                .map(|t| t.iter().zip(row).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect()
}

fn features(samples: usize, sample_shape: &[usize], x: Vec<f64>) -> Result<Tensor> {
    let shape = std::iter::once(samples)
        .chain(sample_shape.iter().copied())
        .collect();
    Ok(Tensor::f64(shape, x)?)
}

/// What generating a dataset holds at its peak, in bytes: per value of the features, per
/// sample, and in all (the teacher).
struct Cost {
    per_value: u64,
    per_sample: u64,
    fixed: u64,
}

/// Checks the request before anything is generated: some samples of some values, a sample
/// size and a total that can be counted, and a peak within the memory limit (the limits of
/// the environment). Returns the values per sample. The error names `samples`, as the spec
/// does, and the size.
fn check(samples: usize, sample_shape: &[usize], cost: Cost) -> Result<usize> {
    let width = checked_numel(sample_shape).ok_or_else(|| {
        Error::invalid(format!(
            "a sample of shape {sample_shape:?} has more values than can be counted"
        ))
    })?;
    if samples == 0 || width == 0 {
        return Err(Error::invalid(format!(
            "a synthetic dataset needs samples and sample values, got {samples} samples of {width} values"
        )));
    }
    let samples64 = samples as u64;
    let bytes = samples64
        .checked_mul(width as u64)
        .and_then(|values| values.checked_mul(cost.per_value))
        .and_then(|b| b.checked_add(samples64.checked_mul(cost.per_sample)?))
        .and_then(|b| b.checked_add(cost.fixed))
        .unwrap_or(u64::MAX);
    let values = samples.checked_mul(width).ok_or_else(|| {
        Error::invalid(format!(
            "samples: {samples} samples of {width} values each are more values than can be counted"
        ))
    })?;
    env_limits()?.check_memory(
        &format!("samples: {samples} samples of {width} values each ({values} values)"),
        bytes,
    )?;
    Ok(width)
}

/// The features as f64 while generated, then as the dataset's f32.
const FEATURES: u64 = 8 + 4;
/// One score per teacher row, in a vector of its own per sample.
const SCORES: u64 = 24;

/// Bytes of `rows x width` f64 values, saturating (a saturated size is over any limit).
fn matrix(rows: usize, width: usize) -> u64 {
    (rows as u64).saturating_mul(width as u64).saturating_mul(8)
}

/// Multi-class classification: features ~ N(0, 1) of `sample_shape`; the label (i64 `[n]`) is
/// the arg-max of a fixed random linear teacher with orthonormal rows, so classes are equally
/// likely and a linear model can reach 100% accuracy.
pub fn classification(
    samples: usize,
    sample_shape: &[usize],
    classes: usize,
    seed: u64,
) -> Result<Dataset> {
    if classes < 2 {
        return Err(Error::invalid(format!(
            "classification needs at least 2 classes, got {classes}"
        )));
    }
    let width = checked_numel(sample_shape).unwrap_or(usize::MAX);
    let width = check(
        samples,
        sample_shape,
        Cost {
            per_value: FEATURES,
            per_sample: matrix(classes, 1).saturating_add(SCORES + 8),
            fixed: matrix(classes, width),
        },
    )?;
    let x = gaussian(samples, width, seed);
    let w = orthonormal_teacher(classes, width, seed);
    let labels = scores(&x, width, &w)
        .iter()
        .map(|s| {
            let best = (0..s.len()).fold(0, |best, c| if s[c] > s[best] { c } else { best });
            best as i64
        })
        .collect();
    Dataset::new(
        features(samples, sample_shape, x)?,
        Some(Tensor::i64(vec![samples], labels)?),
    )
}

/// The cost of a task with one score and one f32 target per sample.
fn one_target() -> Cost {
    Cost {
        per_value: FEATURES,
        per_sample: 8 + SCORES + 4,
        fixed: 0,
    }
}

/// Binary classification: features ~ N(0, 1); the target (f32 `[n, 1]`) is 1 when a fixed
/// random linear teacher scores the sample above zero.
pub fn binary(samples: usize, sample_shape: &[usize], seed: u64) -> Result<Dataset> {
    let width = check(samples, sample_shape, one_target())?;
    let x = gaussian(samples, width, seed);
    let w = teacher(1, width, seed);
    let targets = scores(&x, width, &w)
        .iter()
        .map(|s| f32::from(u8::from(s[0] > 0.0)))
        .collect();
    Dataset::new(
        features(samples, sample_shape, x)?,
        Some(Tensor::f32(vec![samples, 1], targets)?),
    )
}

/// Regression: features ~ N(0, 1); the target (f32 `[n, 1]`) is a fixed random linear
/// teacher's score divided by `sqrt(width)`, so it has unit variance.
pub fn regression(samples: usize, sample_shape: &[usize], seed: u64) -> Result<Dataset> {
    let width = check(samples, sample_shape, one_target())?;
    let x = gaussian(samples, width, seed);
    let w = teacher(1, width, seed);
    let norm = (width as f64).sqrt();
    let targets = scores(&x, width, &w)
        .iter()
        .map(|s| (s[0] / norm) as f32)
        .collect();
    Dataset::new(
        features(samples, sample_shape, x)?,
        Some(Tensor::f32(vec![samples, 1], targets)?),
    )
}

/// Sequence classification: `steps` time steps of `features` values ~ N(0, 1), shaped
/// `[steps, features]` (batch-first, as `nn.LSTM(batch_first=True)` reads them); the target
/// (f32 `[n, 1]`) is 1 when the first feature sums to more than zero over time, a rule an LSTM
/// learns by accumulating its input.
pub fn sequence(samples: usize, steps: usize, features: usize, seed: u64) -> Result<Dataset> {
    let cost = Cost {
        per_value: FEATURES,
        per_sample: 4,
        fixed: 0,
    };
    let width = check(samples, &[steps, features], cost)?;
    let x = gaussian(samples, width, seed);
    let targets = x
        .chunks_exact(width)
        .map(|s| f32::from(u8::from(s.iter().step_by(features).sum::<f64>() > 0.0)))
        .collect();
    Dataset::new(
        self::features(samples, &[steps, features], x)?,
        Some(Tensor::f32(vec![samples, 1], targets)?),
    )
}

/// The rank of the hidden structure of [`reconstruction`] data.
pub const RECONSTRUCTION_RANK: usize = 8;

/// Reconstruction (a VAE's task): each sample is `sigmoid(B z)` with `z ~ N(0, I)` of
/// dimension [`RECONSTRUCTION_RANK`] and a fixed random basis `B`, so the values lie in (0, 1)
/// on a low-dimensional manifold a small latent space can capture. The target is the sample.
pub fn reconstruction(samples: usize, sample_shape: &[usize], seed: u64) -> Result<Dataset> {
    let rank = RECONSTRUCTION_RANK;
    // The latent, the scores and the values as f64, then features and targets as f32.
    let cost = Cost {
        per_value: 8 + 8 + 4 + 4,
        per_sample: matrix(rank, 1).saturating_add(SCORES),
        fixed: matrix(checked_numel(sample_shape).unwrap_or(usize::MAX), rank),
    };
    let width = check(samples, sample_shape, cost)?;
    // Scaled so that B z has standard deviation 3: contrasted patterns, few saturated values.
    let basis: Vec<f64> = teacher(width, rank, seed)
        .iter()
        .map(|b| b * 3.0 / (rank as f64).sqrt())
        .collect();
    let z = Stream::new(seed, "synthetic.latent", 0).normal_vec(samples * rank);
    let x: Vec<f64> = scores(&z, rank, &basis)
        .into_iter()
        .flatten()
        .map(|s| 1.0 / (1.0 + (-s).exp()))
        .collect();
    let features = features(samples, sample_shape, x)?;
    Dataset::new(
        features.clone(),
        Some(features.to_dtype(dlbench_core::DType::F32)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(labels: &[i64], classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        labels.iter().for_each(|&l| c[l as usize] += 1);
        c
    }

    #[test]
    fn classification_is_seeded_and_balanced() {
        let data = classification(2000, &[1, 4, 4], 10, 3).unwrap();
        assert_eq!(data.features.shape(), [2000, 1, 4, 4]);
        assert_eq!(data, classification(2000, &[1, 4, 4], 10, 3).unwrap());
        assert_ne!(data, classification(2000, &[1, 4, 4], 10, 4).unwrap());
        let labels = data.targets.unwrap();
        assert_eq!(labels.shape(), [2000]);
        for (class, n) in counts(labels.as_i64().unwrap(), 10).into_iter().enumerate() {
            assert!(
                (100..320).contains(&n),
                "class {class} has {n} of 2000 samples"
            );
        }
    }

    #[test]
    fn binary_and_sequence_labels_are_balanced_ish() {
        for data in [
            binary(2000, &[20], 1).unwrap(),
            sequence(2000, 10, 2, 1).unwrap(),
        ] {
            let t = data.targets.unwrap();
            assert_eq!(t.shape(), [2000, 1]);
            let ones: f32 = t.as_f32().unwrap().iter().sum();
            assert!((800.0..1200.0).contains(&ones), "{ones} positives of 2000");
        }
        assert_eq!(sequence(5, 10, 2, 1).unwrap().features.shape(), [5, 10, 2]);
    }

    #[test]
    fn labels_follow_a_learnable_rule() {
        // Regression targets are exactly the teacher's normalised score.
        let data = regression(500, &[3], 2).unwrap();
        let x = data.features.to_f64_vec();
        let y = data.targets.unwrap().to_f64_vec();
        let w = teacher(1, 3, 2);
        for (row, target) in x.chunks_exact(3).zip(&y) {
            let score: f64 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
            assert!((score / 3f64.sqrt() - target).abs() < 1e-5);
        }
        // The sequence rule: the first feature's sum decides the label.
        let data = sequence(50, 4, 3, 9).unwrap();
        let x = data.features.to_f64_vec();
        let t = data.targets.unwrap().to_f64_vec();
        for (s, label) in x.chunks_exact(12).zip(t) {
            let sum: f64 = s.iter().step_by(3).sum();
            assert_eq!(label, f64::from(u8::from(sum > 0.0)));
        }
    }

    #[test]
    fn reconstruction_lies_in_the_unit_interval_with_contrast() {
        let data = reconstruction(100, &[1000], 0).unwrap();
        assert_eq!(data.features.shape(), [100, 1000]);
        assert_eq!(data.targets.as_ref(), Some(&data.features));
        let x = data.features.as_f32().unwrap();
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let spread = x.iter().map(|v| (v - mean).abs()).sum::<f32>() / x.len() as f32;
        assert!(
            (0.4..0.6).contains(&mean) && spread > 0.2,
            "mean {mean}, spread {spread}"
        );
    }

    #[test]
    fn rejects_degenerate_requests() {
        assert!(classification(10, &[4], 1, 0).is_err());
        assert!(binary(0, &[4], 0).is_err());
        assert!(reconstruction(10, &[0], 0).is_err());
    }
}
