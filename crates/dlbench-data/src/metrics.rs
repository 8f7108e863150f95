//! The metrics a run reports on its validation split. Each takes the model's output and the
//! dataset's targets as tensors of any float dtype (f32 from a backend, f64 from the reference).

use dlbench_core::Tensor;

use crate::error::{Error, Result};

/// A metric a spec can name, e.g. as a training target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// See [`accuracy`].
    Accuracy,
    /// See [`binary_accuracy`] (on probabilities).
    BinaryAccuracy,
    /// See [`mean_squared_error`].
    Mse,
}

impl Metric {
    /// Every metric, in the order of [`Metric::name`]s shown to users.
    pub const ALL: [Metric; 3] = [Metric::Accuracy, Metric::BinaryAccuracy, Metric::Mse];

    /// The name specs and results use: `accuracy`, `binary_accuracy`, `mse`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy => "binary_accuracy",
            Metric::Mse => "mse",
        }
    }

    /// The metric whose [`Metric::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a larger value is better (a training target is reached from below).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Mse)
    }

    /// The metric of `outputs` (the model's first output) against `targets`.
    pub fn compute(self, outputs: &Tensor, targets: &Tensor) -> Result<f64> {
        match self {
            Metric::Accuracy => accuracy(outputs, targets),
            Metric::BinaryAccuracy => binary_accuracy(outputs, targets, false),
            Metric::Mse => mean_squared_error(outputs, targets),
        }
    }
}

/// Classification accuracy: the fraction of rows of `logits` `[N, C]` whose arg-max (the first
/// one, on ties) equals the i64 label in `labels` `[N]`. Works on probabilities too, since
/// softmax keeps the arg-max.
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    let (predicted, labels) = predicted_classes("accuracy", logits, labels)?;
    if labels.is_empty() {
        return Err(Error::invalid("accuracy of zero samples"));
    }
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(&p, &label)| p as i64 == label)
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

/// The class each row of `logits` `[N, C]` predicts (its arg-max, the first on ties), and the
/// i64 labels `[N]` it is judged against; `what` names the metric in errors. The decision rule
/// of [`accuracy`] and of the confusion matrix.
pub(crate) fn predicted_classes<'a>(
    what: &str,
    logits: &Tensor,
    labels: &'a Tensor,
) -> Result<(Vec<usize>, &'a [i64])> {
    let (n, classes) = match logits.shape() {
        [n, c] if *c > 0 => (*n, *c),
        shape => {
            return Err(Error::invalid(format!(
                "{what} needs logits [N, C], got {shape:?}"
            )))
        }
    };
    let labels = labels.as_i64().filter(|l| l.len() == n).ok_or_else(|| {
        Error::invalid(format!(
            "{what} needs {n} i64 labels, got {} {:?}",
            labels.dtype(),
            labels.shape()
        ))
    })?;
    let predicted = logits
        .to_f64_vec()
        .chunks_exact(classes)
        .map(|row| (0..classes).fold(0, |b, c| if row[c] > row[b] { c } else { b }))
        .collect();
    Ok((predicted, labels))
}

/// Binary accuracy: the fraction of elements where the prediction is on the same side as the
/// 0/1 target (`> 0.5`). A prediction counts as 1 when it is above 0.5 for probabilities, or
/// above 0 when `logits` is set (`sigmoid(0) = 0.5`, so both agree). Shapes must match,
/// typically `[N, 1]`.
pub fn binary_accuracy(outputs: &Tensor, targets: &Tensor, logits: bool) -> Result<f64> {
    same_shape("binary accuracy", outputs, targets)?;
    let (o, t) = (outputs.to_f64_vec(), targets.to_f64_vec());
    let correct = o
        .iter()
        .zip(&t)
        .filter(|(o, t)| predicts_positive(**o, logits) == (**t > 0.5))
        .count();
    Ok(correct as f64 / o.len() as f64)
}

/// Whether a binary output predicts class 1: above 0.5 for a probability, above 0 for a logit.
/// The decision rule of [`binary_accuracy`] and of the confusion matrix.
pub(crate) fn predicts_positive(output: f64, logits: bool) -> bool {
    output > if logits { 0.0 } else { 0.5 }
}

/// Mean squared error over every element: `mean((prediction - target)^2)`, as PyTorch's
/// `MSELoss` with the default mean reduction.
pub fn mean_squared_error(predictions: &Tensor, targets: &Tensor) -> Result<f64> {
    same_shape("mean squared error", predictions, targets)?;
    let (p, t) = (predictions.to_f64_vec(), targets.to_f64_vec());
    Ok(p.iter()
        .zip(&t)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / p.len() as f64)
}

fn same_shape(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() || a.is_empty() {
        return Err(Error::invalid(format!(
            "{what} needs non-empty outputs and targets of one shape, got {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_argmax_hits() {
        let logits = Tensor::f32(vec![3, 2], vec![0.1, 0.9, 2.0, -1.0, 0.0, 0.0]).unwrap();
        let labels = Tensor::i64(vec![3], vec![1, 1, 0]).unwrap();
        assert_eq!(accuracy(&logits, &labels).unwrap(), 2.0 / 3.0);
        assert_eq!(
            Metric::Accuracy.compute(&logits, &labels).unwrap(),
            2.0 / 3.0
        );
        let floats = Tensor::f32(vec![3], vec![1.0, 1.0, 0.0]).unwrap();
        assert!(accuracy(&logits, &floats).is_err());
    }

    #[test]
    fn binary_accuracy_thresholds_probabilities_or_logits() {
        let targets = Tensor::f32(vec![4, 1], vec![1.0, 0.0, 1.0, 0.0]).unwrap();
        let probs = Tensor::f64(vec![4, 1], vec![0.7, 0.2, 0.4, 0.6]).unwrap();
        assert_eq!(binary_accuracy(&probs, &targets, false).unwrap(), 0.5);
        let logits = Tensor::f32(vec![4, 1], vec![2.0, -1.0, 0.5, -0.5]).unwrap();
        assert_eq!(binary_accuracy(&logits, &targets, true).unwrap(), 1.0);
        assert!(
            binary_accuracy(&logits, &Tensor::f32(vec![4], vec![0.0; 4]).unwrap(), true).is_err()
        );
    }

    #[test]
    fn mse_is_the_mean_over_elements() {
        let p = Tensor::f32(vec![2, 1], vec![1.0, 3.0]).unwrap();
        let t = Tensor::f32(vec![2, 1], vec![0.0, 1.0]).unwrap();
        assert_eq!(mean_squared_error(&p, &t).unwrap(), 2.5);
        assert_eq!(Metric::from_name("mse"), Some(Metric::Mse));
        assert!(!Metric::Mse.higher_is_better());
        assert_eq!(Metric::from_name("f1"), None);
    }
}
