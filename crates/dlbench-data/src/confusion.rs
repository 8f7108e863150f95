//! The confusion matrix of a classifier, and the precision, recall and F1 read from it, as
//! scikit-learn defines them (`precision_recall_fscore_support`): per class, then averaged as
//! `binary` (class 1 only), `macro` (the plain mean over classes) and `weighted` (the mean
//! weighted by each class's number of true samples). A ratio whose denominator is zero (a class
//! never predicted, or absent) is 0, as scikit-learn's default `zero_division` gives.
//!
//! Counts accumulate batch by batch ([`ConfusionMatrix::add_labels`] and the helpers for
//! logits and binary outputs), so a split is never held whole.

use dlbench_core::Tensor;

use crate::error::{Error, Result};
use crate::metrics::{predicted_classes, predicts_positive};

/// `counts[truth][predicted]` over `classes` classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class or one average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Of the samples predicted as the class, the share that are.
    pub precision: f64,
    /// Of the samples of the class, the share predicted as it.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
}

impl ConfusionMatrix {
    /// An empty matrix of `classes` classes (2 for a binary classifier).
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// The counts, `[truth][predicted]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// Counts each `(truth, predicted)` pair; a class out of range is an error naming it.
    pub fn add_labels(&mut self, truth: &[usize], predicted: &[usize]) -> Result<()> {
        let classes = self.counts.len();
        if truth.len() != predicted.len() {
            return Err(Error::invalid(format!(
                "confusion matrix: {} true labels against {} predictions",
                truth.len(),
                predicted.len()
            )));
        }
        if let Some(bad) = truth.iter().chain(predicted).find(|&&c| c >= classes) {
            return Err(Error::invalid(format!(
                "confusion matrix: class {bad} is out of range for {classes} classes"
            )));
        }
        for (&t, &p) in truth.iter().zip(predicted) {
            self.counts[t][p] += 1;
        }
        Ok(())
    }

    /// Counts a batch of logits (or probabilities) `[N, C]` against i64 labels `[N]`: the
    /// prediction is the arg-max, the first on ties, as [`crate::metrics::accuracy`] takes it.
    pub fn add_logits(&mut self, logits: &Tensor, labels: &Tensor) -> Result<()> {
        let classes = self.counts.len();
        if logits.shape().get(1) != Some(&classes) {
            return Err(Error::invalid(format!(
                "confusion matrix of {classes} classes needs logits [N, {classes}], got {:?}",
                logits.shape()
            )));
        }
        let (predicted, labels) = predicted_classes("confusion matrix", logits, labels)?;
        let truth: Vec<usize> = labels
            .iter()
            .map(|&l| usize::try_from(l).unwrap_or(usize::MAX))
            .collect();
        self.add_labels(&truth, &predicted)
    }

    /// Counts a batch of binary outputs against 0/1 targets of the same shape: class 1 when
    /// above 0.5 (probabilities) or above 0 (`logits`), as [`crate::metrics::binary_accuracy`].
    pub fn add_binary(&mut self, outputs: &Tensor, targets: &Tensor, logits: bool) -> Result<()> {
        if outputs.shape() != targets.shape() || self.counts.len() != 2 {
            return Err(Error::invalid(format!(
                "a binary confusion matrix needs outputs and targets of one shape, got {:?} \
                 and {:?}",
                outputs.shape(),
                targets.shape()
            )));
        }
        let predicted: Vec<usize> = outputs
            .to_f64_vec()
            .into_iter()
            .map(|v| usize::from(predicts_positive(v, logits)))
            .collect();
        let truth: Vec<usize> = targets
            .to_f64_vec()
            .into_iter()
            .map(|v| usize::from(v > 0.5))
            .collect();
        self.add_labels(&truth, &predicted)
    }

    /// Samples of class `c`: its row's sum.
    fn support(&self, c: usize) -> u64 {
        self.counts[c].iter().sum()
    }

    /// The share of samples predicted right: the diagonal over the total (0 when empty), what
    /// [`crate::metrics::accuracy`] and `binary_accuracy` give over the same samples.
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.counts.len()).map(|c| self.counts[c][c]).sum();
        let total: u64 = self.counts.iter().flatten().sum();
        ratio(right as f64, total as f64)
    }

    /// Precision, recall and F1 of class `c`.
    pub fn class(&self, c: usize) -> Scores {
        let true_positive = self.counts[c][c] as f64;
        let predicted: u64 = self.counts.iter().map(|row| row[c]).sum();
        let precision = ratio(true_positive, predicted as f64);
        let recall = ratio(true_positive, self.support(c) as f64);
        Scores {
            precision,
            recall,
            f1: ratio(2.0 * precision * recall, precision + recall),
        }
    }

    /// The unweighted mean of every class's scores (scikit-learn's `average="macro"`).
    pub fn macro_average(&self) -> Scores {
        self.average(|_| 1.0)
    }

    /// The mean of every class's scores weighted by its support (`average="weighted"`).
    pub fn weighted_average(&self) -> Scores {
        self.average(|c| self.support(c) as f64)
    }

    fn average(&self, weight: impl Fn(usize) -> f64) -> Scores {
        let classes = 0..self.counts.len();
        let total: f64 = classes.clone().map(&weight).sum();
        let mean = |score: fn(&Scores) -> f64| {
            let sum: f64 = classes
                .clone()
                .map(|c| weight(c) * score(&self.class(c)))
                .sum();
            ratio(sum, total)
        };
        Scores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
        }
    }
}

/// `num / den`, or 0 when `den` is 0.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// scikit-learn's documented example of `precision_recall_fscore_support`: macro
    /// (0.222, 0.333, 0.267), weighted (0.222, 0.333, 0.267), F1 per class (0.8, 0, 0).
    #[test]
    fn scores_match_scikit_learn_on_its_documented_example() {
        let mut m = ConfusionMatrix::new(3);
        m.add_labels(&[0, 1, 2, 0, 1, 2], &[0, 2, 1, 0, 0, 1])
            .unwrap();
        assert_eq!(m.counts(), [vec![2, 0, 0], vec![1, 0, 1], vec![0, 2, 0]]);
        assert!(close(m.accuracy(), 1.0 / 3.0));
        let macro_ = m.macro_average();
        assert!(close(macro_.precision, 2.0 / 9.0), "{macro_:?}");
        assert!(close(macro_.recall, 1.0 / 3.0), "{macro_:?}");
        assert!(close(macro_.f1, 0.8 / 3.0), "{macro_:?}");
        let weighted = m.weighted_average();
        assert!(close(weighted.f1, 0.8 / 3.0), "{weighted:?}");
        let f1: Vec<f64> = (0..3).map(|c| m.class(c).f1).collect();
        assert!(close(f1[0], 0.8) && f1[1] == 0.0 && f1[2] == 0.0, "{f1:?}");
    }

    #[test]
    fn binary_outputs_and_logits_are_counted_on_their_side_of_the_threshold() {
        let targets = Tensor::f32(vec![4, 1], vec![1.0, 1.0, 0.0, 0.0]).unwrap();
        let mut m = ConfusionMatrix::new(2);
        let probabilities = Tensor::f32(vec![4, 1], vec![0.9, 0.2, 0.6, 0.1]).unwrap();
        m.add_binary(&probabilities, &targets, false).unwrap();
        assert_eq!(m.counts(), [vec![1, 1], vec![1, 1]]);
        let positive = m.class(1);
        assert_eq!((positive.precision, positive.recall), (0.5, 0.5));
        let mut m = ConfusionMatrix::new(2);
        let logits = Tensor::f32(vec![4, 1], vec![2.0, 0.5, -0.1, -3.0]).unwrap();
        m.add_binary(&logits, &targets, true).unwrap();
        assert_eq!(m.counts(), [vec![2, 0], vec![0, 2]]);
        assert_eq!(m.class(1).f1, 1.0);
    }

    #[test]
    fn logits_take_the_first_arg_max_and_bad_input_names_the_problem() {
        let mut m = ConfusionMatrix::new(2);
        let logits = Tensor::f32(vec![3, 2], vec![0.1, 0.9, 2.0, -1.0, 0.0, 0.0]).unwrap();
        let labels = Tensor::i64(vec![3], vec![1, 1, 0]).unwrap();
        m.add_logits(&logits, &labels).unwrap();
        assert_eq!(m.counts(), [vec![1, 0], vec![1, 1]]);
        let error = m.add_labels(&[0, 2], &[0, 0]).unwrap_err().to_string();
        assert!(
            error.contains("class 2 is out of range for 2 classes"),
            "{error}"
        );
        let wide = Tensor::f32(vec![1, 3], vec![0.0; 3]).unwrap();
        let error = m.add_logits(&wide, &labels).unwrap_err().to_string();
        assert!(error.contains("needs logits [N, 2]"), "{error}");
        // A class never predicted nor present scores 0, not NaN.
        let empty = ConfusionMatrix::new(3);
        assert_eq!(empty.macro_average().f1, 0.0);
    }
}
