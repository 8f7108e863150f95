//! [`Evaluation`]: the metrics of one split, accumulated batch by batch from the model's
//! outputs, so that a split of any size is never held whole: the mean loss, accuracy,
//! precision / recall / F1 and the confusion matrix for classifiers, log loss, and MSE / MAE
//! for regression.

use dlbench_core::Tensor;

use crate::confusion::{ConfusionMatrix, Scores};
use crate::error::{Error, Result};

/// What the model's first output is, hence which metrics apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Logits `[N, C]` against i64 labels `[N]` (cross-entropy).
    Classes(usize),
    /// One output per sample against 0/1 targets: probabilities, or logits when set.
    Binary {
        /// The output is a logit (`sigmoid` not applied yet).
        logits: bool,
    },
    /// Real outputs against real targets of the same shape.
    Regression,
    /// No targets to judge against (a VAE): the loss only.
    Unsupervised,
}

/// The running sums of one split's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    task: Task,
    samples: usize,
    loss_sum: f64,
    log_loss_sum: f64,
    squared_error_sum: f64,
    absolute_error_sum: f64,
    elements: usize,
    confusion: Option<ConfusionMatrix>,
}

/// The smallest probability log loss takes the log of (scikit-learn clips to the dtype's
/// epsilon): a confident wrong answer costs -ln(ε) ≈ 36, not infinity.
const PROBABILITY_FLOOR: f64 = f64::EPSILON;

impl Evaluation {
    /// Nothing counted yet.
    pub fn new(task: Task) -> Self {
        let confusion = match task {
            Task::Classes(c) => Some(ConfusionMatrix::new(c)),
            Task::Binary { .. } => Some(ConfusionMatrix::new(2)),
            Task::Regression | Task::Unsupervised => None,
        };
        Evaluation {
            task,
            samples: 0,
            loss_sum: 0.0,
            log_loss_sum: 0.0,
            squared_error_sum: 0.0,
            absolute_error_sum: 0.0,
            elements: 0,
            confusion,
        }
    }

    /// Counts one batch: its mean `loss` (as the training loss reduces it), the model's
    /// first output and the targets (`None` for [`Task::Unsupervised`]).
    pub fn add(&mut self, loss: f64, output: &Tensor, targets: Option<&Tensor>) -> Result<()> {
        let rows = output.shape().first().copied().unwrap_or(0);
        let targets = match (self.task, targets) {
            (Task::Unsupervised, _) => None,
            (_, Some(t)) => Some(t),
            (_, None) => return Err(Error::invalid("evaluation needs the split's targets")),
        };
        match (self.task, targets, &mut self.confusion) {
            (Task::Classes(_), Some(labels), Some(confusion)) => {
                confusion.add_logits(output, labels)?;
                self.log_loss_sum += class_log_loss(output, labels)?;
            }
            (Task::Binary { logits }, Some(targets), Some(confusion)) => {
                confusion.add_binary(output, targets, logits)?;
                self.log_loss_sum += binary_log_loss(output, targets, logits);
            }
            (Task::Regression, Some(targets), _) => {
                if output.shape() != targets.shape() {
                    return Err(Error::invalid(format!(
                        "regression metrics need outputs and targets of one shape, got {:?} \
                         and {:?}",
                        output.shape(),
                        targets.shape()
                    )));
                }
                for (p, t) in output.to_f64_vec().iter().zip(targets.to_f64_vec()) {
                    self.squared_error_sum += (p - t) * (p - t);
                    self.absolute_error_sum += (p - t).abs();
                }
                self.elements += output.len();
            }
            _ => {}
        }
        self.loss_sum += loss * rows as f64;
        self.samples += rows;
        Ok(())
    }

    /// Samples counted.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The confusion matrix, for classifiers.
    pub fn confusion(&self) -> Option<&ConfusionMatrix> {
        self.confusion.as_ref()
    }

    /// The share of samples classified right (0 for other tasks or no samples).
    pub fn accuracy(&self) -> f64 {
        self.confusion
            .as_ref()
            .map_or(0.0, ConfusionMatrix::accuracy)
    }

    /// Every metric, named `<split>_<metric>`: `loss`; `accuracy` (or `binary_accuracy`),
    /// `log_loss`, `precision`, `recall` and `f1` of class 1 for a binary classifier, or with
    /// `_macro` and `_weighted` for several classes; `mse` and `mae` for regression. Empty when
    /// nothing was counted.
    pub fn metrics(&self, split: &str) -> Vec<(String, f64)> {
        if self.samples == 0 {
            return Vec::new();
        }
        let n = self.samples as f64;
        let mut out = vec![("loss", self.loss_sum / n)];
        let scores = |names: [&'static str; 3], s: Scores| {
            [
                (names[0], s.precision),
                (names[1], s.recall),
                (names[2], s.f1),
            ]
        };
        match (self.task, &self.confusion) {
            (Task::Classes(_), Some(c)) => {
                out.push(("accuracy", c.accuracy()));
                out.push(("log_loss", self.log_loss_sum / n));
                let macro_ = ["precision_macro", "recall_macro", "f1_macro"];
                let weighted = ["precision_weighted", "recall_weighted", "f1_weighted"];
                out.extend(scores(macro_, c.macro_average()));
                out.extend(scores(weighted, c.weighted_average()));
            }
            (Task::Binary { .. }, Some(c)) => {
                out.push(("binary_accuracy", c.accuracy()));
                out.push(("log_loss", self.log_loss_sum / n));
                out.extend(scores(["precision", "recall", "f1"], c.class(1)));
            }
            (Task::Regression, _) if self.elements > 0 => {
                out.push(("mse", self.squared_error_sum / self.elements as f64));
                out.push(("mae", self.absolute_error_sum / self.elements as f64));
            }
            _ => {}
        }
        out.into_iter()
            .map(|(name, v)| (format!("{split}_{name}"), v))
            .collect()
    }
}

/// The summed cross-entropy of softmax(`logits` `[N, C]`) at the i64 `labels`, each term
/// floored as [`PROBABILITY_FLOOR`] says.
fn class_log_loss(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    let classes = logits.shape().get(1).copied().unwrap_or(1).max(1);
    let labels = labels.as_i64().unwrap_or_default();
    let mut sum = 0.0;
    for (row, &label) in logits.to_f64_vec().chunks_exact(classes).zip(labels) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_norm = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        let log_p = row[label as usize] - log_norm;
        sum += -log_p.max(PROBABILITY_FLOOR.ln());
    }
    Ok(sum)
}

/// The summed binary cross-entropy of outputs (probabilities, or logits) against 0/1
/// targets, averaged over the outputs of each sample.
fn binary_log_loss(outputs: &Tensor, targets: &Tensor, logits: bool) -> f64 {
    let per_sample = outputs.shape()[1..].iter().product::<usize>().max(1) as f64;
    let floor = PROBABILITY_FLOOR;
    let sum: f64 = outputs
        .to_f64_vec()
        .iter()
        .zip(targets.to_f64_vec())
        .map(|(&o, t)| {
            let p = if logits { 1.0 / (1.0 + (-o).exp()) } else { o };
            let p = p.clamp(floor, 1.0 - floor);
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum();
    sum / per_sample
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(e: &Evaluation, name: &str) -> f64 {
        e.metrics("test")
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", e.metrics("test")))
            .1
    }

    /// `-mean(log(softmax(logits)[label]))`, scikit-learn's `log_loss([0, 2, 1],
    /// softmax(logits))`, is 0.44923764341039957 for the logits below (computed with numpy).
    #[test]
    fn class_log_loss_matches_scikit_learn() {
        let logits = Tensor::f32(
            vec![3, 3],
            vec![2.0, 0.5, -1.0, 0.0, 0.0, 1.0, 1.0, 1.5, -0.5],
        )
        .unwrap();
        let labels = Tensor::i64(vec![3], vec![0, 2, 1]).unwrap();
        let mut e = Evaluation::new(Task::Classes(3));
        // Two batches give the same as one.
        e.add(
            0.1,
            &logits.select_rows(&[0]),
            Some(&labels.select_rows(&[0])),
        )
        .unwrap();
        e.add(
            0.4,
            &logits.select_rows(&[1, 2]),
            Some(&labels.select_rows(&[1, 2])),
        )
        .unwrap();
        assert_eq!(e.samples(), 3);
        assert!((metric(&e, "test_log_loss") - 0.44923764341039957).abs() < 1e-12);
        assert!((metric(&e, "test_loss") - 0.3).abs() < 1e-12);
        assert_eq!(metric(&e, "test_accuracy"), 1.0);
        assert_eq!(e.confusion().unwrap().counts()[2], [0, 0, 1]);
    }

    /// `log_loss([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.3])` is (−ln 0.9 − ln 0.8 − ln 0.4 − ln 0.7) / 4
    /// = 0.40036743569623084 (computed with numpy).
    #[test]
    fn binary_log_loss_on_probabilities_and_logits() {
        let targets = Tensor::f32(vec![4, 1], vec![1.0, 0.0, 1.0, 0.0]).unwrap();
        let p = Tensor::f64(vec![4, 1], vec![0.9, 0.2, 0.4, 0.3]).unwrap();
        let mut e = Evaluation::new(Task::Binary { logits: false });
        e.add(0.0, &p, Some(&targets)).unwrap();
        assert!((metric(&e, "test_log_loss") - 0.40036743569623084).abs() < 1e-12);
        assert_eq!(metric(&e, "test_binary_accuracy"), 0.75);
        assert_eq!(metric(&e, "test_recall"), 0.5);
        let logits = p
            .to_f64_vec()
            .iter()
            .map(|p| (p / (1.0 - p)).ln())
            .collect();
        let mut l = Evaluation::new(Task::Binary { logits: true });
        l.add(
            0.0,
            &Tensor::f64(vec![4, 1], logits).unwrap(),
            Some(&targets),
        )
        .unwrap();
        assert!((metric(&l, "test_log_loss") - 0.40036743569623084).abs() < 1e-12);
        // A certain, wrong answer costs -ln(ε), not infinity.
        let mut c = Evaluation::new(Task::Binary { logits: false });
        let wrong = Tensor::f64(vec![1, 1], vec![0.0]).unwrap();
        c.add(
            0.0,
            &wrong,
            Some(&Tensor::f32(vec![1, 1], vec![1.0]).unwrap()),
        )
        .unwrap();
        assert!((metric(&c, "test_log_loss") + f64::EPSILON.ln()).abs() < 1e-9);
    }

    #[test]
    fn regression_gives_mse_and_mae() {
        let mut e = Evaluation::new(Task::Regression);
        let p = Tensor::f32(vec![2, 1], vec![1.0, 3.0]).unwrap();
        let t = Tensor::f32(vec![2, 1], vec![0.0, 1.0]).unwrap();
        e.add(2.5, &p, Some(&t)).unwrap();
        assert_eq!(metric(&e, "test_mse"), 2.5);
        assert_eq!(metric(&e, "test_mae"), 1.5);
        assert!(e.confusion().is_none());
        let wrong = Tensor::f32(vec![2], vec![0.0; 2]).unwrap();
        assert!(e.add(0.0, &p, Some(&wrong)).is_err());
        assert!(Evaluation::new(Task::Regression).metrics("x").is_empty());
    }
}
