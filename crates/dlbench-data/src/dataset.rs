//! [`Dataset`]: features and targets as tensors, and the seeded splitting, shuffling and
//! batching every backend is fed from, so they all see the same batches.

use std::collections::BTreeMap;

use dlbench_core::rng::Stream;
use dlbench_core::{DType, Tensor};

use crate::error::{Error, Result};

/// Samples and, for supervised tasks, their targets.
///
/// `features` is f32 `[n, ..sample]`. `targets`, when present, has `n` rows: i64 `[n]` class
/// indices for cross-entropy, f32 `[n, k]` for binary cross-entropy and regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// f32 `[n, ..sample]`, one row per sample.
    pub features: Tensor,
    /// `n` rows of targets; `None` when the data has none, which only the VAE's ELBO accepts.
    pub targets: Option<Tensor>,
    /// Values of other graph inputs, by input name, one row per sample: noise recorded
    /// elsewhere (a VAE's `eps` from a PyTorch run) that then replaces the generated noise.
    pub inputs: BTreeMap<String, Tensor>,
}

/// The rows of one batch: features, targets and the given inputs, as a [`Dataset`] holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// f32 `[rows, ..sample]`.
    pub features: Tensor,
    /// The targets of those rows.
    pub targets: Option<Tensor>,
    /// The given inputs of those rows, by input name (empty: every noise input is generated).
    pub inputs: BTreeMap<String, Tensor>,
}

impl Dataset {
    /// A dataset; features become f32 and both tensors must have the same number of rows.
    pub fn new(features: Tensor, targets: Option<Tensor>) -> Result<Self> {
        let rows = |t: &Tensor| t.shape().first().copied();
        if rows(&features).is_none() {
            return Err(Error::invalid(
                "features must have a row dimension, got a scalar",
            ));
        }
        if let Some(t) = &targets {
            if rows(t) != rows(&features) {
                return Err(Error::invalid(format!(
                    "features have {} rows but targets have shape {:?}",
                    features.shape()[0],
                    t.shape()
                )));
            }
        }
        Ok(Dataset {
            features: features.to_dtype(DType::F32),
            targets,
            inputs: BTreeMap::new(),
        })
    }

    /// The same dataset with `values` given for the graph input `name`, one row per sample.
    pub fn with_input(mut self, name: &str, values: Tensor) -> Result<Self> {
        if values.shape().first() != Some(&self.len()) {
            return Err(Error::invalid(format!(
                "input `{name}` has shape {:?}: expected one row per sample ({} samples)",
                values.shape(),
                self.len()
            )));
        }
        self.inputs.insert(name.to_string(), values);
        Ok(self)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.features.shape()[0]
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of one sample (features without the row dimension).
    pub fn sample_shape(&self) -> &[usize] {
        &self.features.shape()[1..]
    }

    /// The samples `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        Dataset {
            features: self.features.select_rows(rows),
            targets: self.targets.as_ref().map(|t| t.select_rows(rows)),
            inputs: self
                .inputs
                .iter()
                .map(|(name, t)| (name.clone(), t.select_rows(rows)))
                .collect(),
        }
    }

    /// A batch: the features, targets and given inputs of `rows`.
    pub fn batch(&self, rows: &[usize]) -> Batch {
        let Dataset {
            features,
            targets,
            inputs,
        } = self.select(rows);
        Batch {
            features,
            targets,
            inputs,
        }
    }

    /// The number of batches in one epoch, the last partial batch included.
    pub fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.len().div_ceil(batch_size.max(1))
    }

    /// One epoch of batches of `batch_size` rows; the last partial batch is kept (PyTorch's
    /// `DataLoader` default). With `shuffle`, the order is the permutation of the stream
    /// (`seed`, "shuffle", `epoch`), so every backend sees the same batches.
    ///
    /// # Panics
    /// If `batch_size` is zero.
    pub fn batches(&self, batch_size: usize, shuffle: bool, seed: u64, epoch: u32) -> Batches<'_> {
        assert!(batch_size > 0, "batch size must be positive");
        let order = if shuffle {
            Stream::new(seed, "shuffle", epoch).permutation(self.len())
        } else {
            (0..self.len()).collect()
        };
        Batches {
            data: self,
            order,
            batch_size,
            next: 0,
        }
    }

    /// The same dataset with targets as i64 class indices `[n]`, as cross-entropy wants them.
    /// Accepts targets `[n]` or `[n, 1]` holding non-negative whole numbers.
    pub fn with_class_targets(self) -> Result<Dataset> {
        let Some(targets) = &self.targets else {
            return Ok(self);
        };
        let n = self.len();
        if targets.len() != n || targets.shape().len() > 2 {
            return Err(Error::invalid(format!(
                "class targets must have one value per sample, got shape {:?}",
                targets.shape()
            )));
        }
        let labels = targets
            .to_f64_vec()
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(v as i64)
                } else {
                    Err(Error::invalid(format!(
                        "target of sample {row} is {v}, not a class index"
                    )))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Dataset {
            targets: Some(Tensor::i64(vec![n], labels)?),
            ..self
        })
    }

    /// The same dataset with targets as f32 values `[n, k]` (a `[n]` target becomes `[n, 1]`),
    /// as binary cross-entropy and regression losses want them.
    pub fn with_value_targets(self) -> Result<Dataset> {
        let Some(targets) = &self.targets else {
            return Ok(self);
        };
        let mut shape = targets.shape().to_vec();
        if shape.len() == 1 {
            shape.push(1);
        }
        let targets = targets.to_dtype(DType::F32).reshape(shape)?;
        Ok(Dataset {
            targets: Some(targets),
            ..self
        })
    }
}

/// The batches of one epoch; see [`Dataset::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let rows = &self.order[self.next..end];
        self.next = end;
        Some(self.data.batch(rows))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(n: usize) -> Dataset {
        let features = Tensor::f32(vec![n, 2], (0..2 * n).map(|i| i as f32).collect()).unwrap();
        let targets = Tensor::i64(vec![n], (0..n as i64).collect()).unwrap();
        Dataset::new(features, Some(targets)).unwrap()
    }

    fn labels(t: &Option<Tensor>) -> Vec<i64> {
        t.as_ref().unwrap().as_i64().unwrap().to_vec()
    }

    #[test]
    fn batches_keep_the_last_partial_batch() {
        let data = counting(10);
        let sizes: Vec<usize> = data
            .batches(4, false, 0, 0)
            .map(|b| {
                assert_eq!(b.features.shape()[1], 2);
                b.targets.unwrap().len()
            })
            .collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(data.batches(4, true, 0, 0).len(), 3);
        assert_eq!(data.batches_per_epoch(4), 3);
    }

    #[test]
    fn shuffled_batches_depend_on_seed_and_epoch_only() {
        let data = counting(20);
        let order = |seed, epoch| -> Vec<i64> {
            data.batches(3, true, seed, epoch)
                .flat_map(|b| b.targets.unwrap().as_i64().unwrap().to_vec())
                .collect()
        };
        assert_eq!(order(1, 0), order(1, 0));
        assert_ne!(order(1, 0), order(1, 1));
        let mut sorted = order(1, 1);
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        let plain: Vec<i64> = data
            .batches(3, false, 1, 0)
            .flat_map(|b| b.targets.unwrap().as_i64().unwrap().to_vec())
            .collect();
        assert_eq!(plain, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn targets_convert_between_classes_and_values() {
        let features = Tensor::f32(vec![3, 1], vec![0.0; 3]).unwrap();
        let targets = Tensor::f32(vec![3, 1], vec![1.0, 0.0, 2.0]).unwrap();
        let data = Dataset::new(features.clone(), Some(targets)).unwrap();
        let classes = data.clone().with_class_targets().unwrap();
        assert_eq!(labels(&classes.targets), [1, 0, 2]);
        let values = classes.with_value_targets().unwrap().targets.unwrap();
        assert_eq!(values.shape(), [3, 1]);
        assert_eq!(values.as_f32().unwrap(), [1.0, 0.0, 2.0]);
        let half = Tensor::f32(vec![3], vec![1.0, 0.5, 2.0]).unwrap();
        let err = Dataset::new(features, Some(half))
            .unwrap()
            .with_class_targets()
            .unwrap_err();
        assert!(err.to_string().contains("sample 1 is 0.5"), "{err}");
    }

    #[test]
    fn new_checks_row_counts() {
        let features = Tensor::f32(vec![3, 1], vec![0.0; 3]).unwrap();
        let targets = Tensor::i64(vec![2], vec![0, 1]).unwrap();
        assert!(Dataset::new(features, Some(targets)).is_err());
    }
}
