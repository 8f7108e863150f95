//! dlbench-data owns the data side of a benchmark: the [`Dataset`] (features and optional
//! targets as dlbench tensors) with seeded, stratified train / validation / test splits and batches; loaders for `.npy`, `.npz`,
//! `.csv` and `.csv.gz` files and IDX (MNIST) files; the preprocessing that spec files ask for (standardize, scale,
//! reshape, sliding windows); seeded synthetic generators of learnable tasks; and the metrics
//! a run reports ([`metrics`]; [`confusion`]: the confusion matrix with precision, recall and
//! F1 as scikit-learn defines them).
//!
//! Every random choice (shuffles, splits, synthetic samples) comes from `dlbench_core::rng`, so
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
