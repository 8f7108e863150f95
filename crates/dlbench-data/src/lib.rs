//! dlbench-data owns the data side of a benchmark: the [`Dataset`] (features, optional targets
//! and recorded noise inputs as dlbench tensors) with seeded, stratified train / validation /
//! test [`Splits`] and batches; loaders for `.npy`, `.npz`, `.csv` / `.csv.gz` and IDX (MNIST)
//! files; [`clean`]ing of CSV tables; the preprocessing that spec files ask for (scale,
//! reshape, sliding windows, standard or min-max rescaling); image [`augment`]ation; seeded
//! synthetic generators of learnable tasks; and the metrics a run reports ([`evaluation`],
//! [`metrics`]; [`confusion`]: the confusion matrix with precision, recall and F1 as
//! scikit-learn defines them).
//!
//! Every random choice (shuffles, splits, augmentation, synthetic samples) comes from `dlbench_core::rng`, so
//! a seed fixes the data exactly, whichever backend later reads it.

pub mod augment;
mod bounds;
pub mod clean;
pub mod confusion;
pub mod csv;
mod dataset;
mod error;
pub mod evaluation;
pub mod idx;
pub mod metrics;
pub mod npy;
pub mod preprocess;
mod split;
pub mod synthetic;

pub use dataset::{Batch, Batches, Dataset};
pub use error::{Error, Result};
pub use split::{Holdout, Splits};
