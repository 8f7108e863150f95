//! Train / validation / test splits: seeded, and stratified by class for classifiers, as
//! scikit-learn's `train_test_split(..., stratify=y)` applied twice would give.

use dlbench_core::rng::Stream;

use crate::clean::CleaningReport;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// The three splits of a dataset. `validation` and `test` may be empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// What the model is trained on.
    pub train: Dataset,
    /// What training is watched on (the quality target, time to quality).
    pub validation: Dataset,
    /// Held out until training ends: the final metrics.
    pub test: Dataset,
    /// What cleaning did to each file read (empty when the data was not cleaned).
    pub cleaning: Vec<CleaningReport>,
}

/// The shares of a dataset held out from training, each in [0, 1), summing below 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// The validation split's share of all samples.
    pub validation: f64,
    /// The test split's share of all samples.
    pub test: f64,
}

impl Dataset {
    /// Shuffles with `seed` and holds out `round(n * fraction)` samples for validation and for
    /// test (at least one each when its fraction is positive and the data allows), keeping
    /// the rest for training. With `stratify`, each class (the targets' values, see
    /// [`Dataset::class_labels`]) is spread over the splits in proportion, within one sample.
    /// Every split keeps the file's order, so that training without shuffling (`shuffle:
    /// false`) sees the samples as the file holds them.
    pub fn split(&self, holdout: Holdout, seed: u64, stratify: bool) -> Result<Splits> {
        for (name, f) in [("validation", holdout.validation), ("test", holdout.test)] {
            if !(0.0..1.0).contains(&f) {
                return Err(Error::invalid(format!(
                    "the {name} fraction must be in [0, 1), got {f}"
                )));
            }
        }
        if holdout.validation + holdout.test >= 1.0 {
            return Err(Error::invalid(format!(
                "the validation and test fractions ({} + {}) leave nothing to train on",
                holdout.validation, holdout.test
            )));
        }
        let n = self.len();
        let shuffled = Stream::new(seed, "split", 0).permutation(n);
        // Classes laid end to end, each in shuffled order: taking every k-th sample of this
        // line takes each class in proportion.
        let mut line = shuffled;
        if stratify {
            if let Some(labels) = self.class_labels() {
                line.sort_by_key(|&row| labels[row]);
            }
        }
        let test_count = held_out_count(n, holdout.test, 0);
        let validation_count = held_out_count(n, holdout.validation, test_count);
        let (test, rest) = every_kth(&line, test_count);
        let (validation, train) = every_kth(&rest, validation_count);
        let in_file_order = |mut rows: Vec<usize>| {
            rows.sort_unstable();
            self.select(&rows)
        };
        Ok(Splits {
            train: in_file_order(train),
            validation: in_file_order(validation),
            test: in_file_order(test),
            cleaning: Vec::new(),
        })
    }

    /// The class of each sample, when the targets are one whole number per sample (i64 labels,
    /// or 0/1 values `[n, 1]`); `None` otherwise (regression, several targets, no targets).
    pub fn class_labels(&self) -> Option<Vec<i64>> {
        let targets = self.targets.as_ref()?;
        if targets.len() != self.len() {
            return None;
        }
        if let Some(labels) = targets.as_i64() {
            return Some(labels.to_vec());
        }
        let values = targets.to_f64_vec();
        let whole = values.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
        whole.then(|| values.iter().map(|&v| v as i64).collect())
    }
}

/// `round(n * fraction)`, at least 1 for a positive fraction, leaving at least one sample
/// beside the `taken` already held out (when `n` allows).
fn held_out_count(n: usize, fraction: f64, taken: usize) -> usize {
    let k = (n as f64 * fraction).round() as usize;
    let room = n.saturating_sub(taken + 1);
    if fraction > 0.0 {
        k.max(1).min(room)
    } else {
        0
    }
}

/// Splits `line` into `k` samples spread evenly along it and the rest, both in line order.
fn every_kth(line: &[usize], k: usize) -> (Vec<usize>, Vec<usize>) {
    let n = line.len().max(1);
    let (mut taken, mut rest) = (Vec::with_capacity(k), Vec::with_capacity(line.len() - k));
    for (i, &row) in line.iter().enumerate() {
        // Exactly k of the n positions cross a multiple of n in (i * k, (i + 1) * k].
        if (i + 1) * k / n > i * k / n {
            taken.push(row);
        } else {
            rest.push(row);
        }
    }
    (taken, rest)
}

#[cfg(test)]
mod tests {
    use dlbench_core::Tensor;

    use super::*;

    fn counting(n: usize, classes: i64) -> Dataset {
        let features = Tensor::f32(vec![n, 2], (0..2 * n).map(|i| i as f32).collect()).unwrap();
        let targets = Tensor::i64(vec![n], (0..n as i64).map(|i| i % classes).collect()).unwrap();
        Dataset::new(features, Some(targets)).unwrap()
    }

    fn holdout(validation: f64, test: f64) -> Holdout {
        Holdout { validation, test }
    }

    /// The sample ids (feature 0 / 2) of a split, sorted.
    fn ids(d: &Dataset) -> Vec<usize> {
        let mut ids: Vec<usize> = d
            .features
            .as_f32()
            .unwrap()
            .chunks(2)
            .map(|r| r[0] as usize / 2)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn splits_are_seeded_disjoint_and_complete() {
        let data = counting(100, 1);
        let s = data.split(holdout(0.2, 0.1), 7, false).unwrap();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (70, 20, 10)
        );
        assert_eq!(s, data.split(holdout(0.2, 0.1), 7, false).unwrap());
        let mut all = [ids(&s.train), ids(&s.validation), ids(&s.test)].concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let other = data.split(holdout(0.2, 0.1), 8, false).unwrap();
        assert_ne!(ids(&other.test), ids(&s.test));
        // Rows stay whole: the label of sample i sits beside its features.
        let f = s.train.features.as_f32().unwrap();
        let labels = s.train.targets.as_ref().unwrap().as_i64().unwrap();
        assert!(labels.iter().all(|&l| l == 0));
        assert_eq!(f[1], f[0] + 1.0);
    }

    #[test]
    fn stratified_splits_keep_each_class_in_proportion() {
        // 90 samples of class 0, 10 of class 1 (every 10th).
        let features = Tensor::f32(vec![100, 2], (0..200).map(|i| i as f32).collect()).unwrap();
        let labels = (0..100).map(|i| i64::from(i % 10 == 0)).collect();
        let data = Dataset::new(features, Some(Tensor::i64(vec![100], labels).unwrap())).unwrap();
        for seed in 0..20 {
            let s = data.split(holdout(0.2, 0.2), seed, true).unwrap();
            let positives = |d: &Dataset| d.class_labels().unwrap().iter().sum::<i64>();
            assert_eq!(
                (
                    positives(&s.train),
                    positives(&s.validation),
                    positives(&s.test)
                ),
                (6, 2, 2),
                "seed {seed}"
            );
            assert_eq!((s.validation.len(), s.test.len()), (20, 20));
        }
        // Binary targets f32 [n, 1] are classes too.
        let binary = data.clone().with_value_targets().unwrap();
        assert_eq!(binary.class_labels(), data.class_labels());
        let half = Tensor::f32(vec![100, 1], vec![0.5; 100]).unwrap();
        let regression = Dataset::new(data.features.clone(), Some(half)).unwrap();
        assert_eq!(regression.class_labels(), None);
    }

    #[test]
    fn split_rejects_bad_fractions_and_keeps_every_side() {
        let data = counting(4, 2);
        assert!(data.split(holdout(1.0, 0.0), 0, false).is_err());
        assert!(data.split(holdout(-0.1, 0.0), 0, false).is_err());
        let err = data.split(holdout(0.5, 0.5), 0, true).unwrap_err();
        assert!(
            err.to_string().contains("leave nothing to train on"),
            "{err}"
        );
        let s = counting(3, 1).split(holdout(0.01, 0.01), 0, false).unwrap();
        assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (1, 1, 1));
        let s = counting(3, 1).split(holdout(0.0, 0.0), 0, false).unwrap();
        assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (3, 0, 0));
        assert_eq!(ids(&s.train), [0, 1, 2]);
        // Nothing held out: the training split is the file, in its order.
        let all = counting(50, 2).split(holdout(0.0, 0.0), 9, true).unwrap();
        assert_eq!(all.train, counting(50, 2));
    }

    #[test]
    fn every_kth_takes_exactly_k_spread_out() {
        let line: Vec<usize> = (0..10).collect();
        assert_eq!(every_kth(&line, 2).0, [4, 9]);
        assert_eq!(every_kth(&line, 0).0, Vec::<usize>::new());
        assert_eq!(every_kth(&line, 10).1, Vec::<usize>::new());
    }
}
