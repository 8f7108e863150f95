//! A spec made ready to run: its model built, its data loaded and split, its budget settled.
//! Prepared once per spec (in each worker), shared by every backend run.

use dlbench_core::Model;
use dlbench_data::clean::CleaningReport;
use dlbench_data::{Dataset, Splits};

use crate::{BenchmarkSpec, Spec, SpecError};

/// Training steps a `--quick` run is capped at.
pub const QUICK_STEPS: usize = 30;

/// Everything a backend run needs.
pub struct Workload {
    /// The spec it was prepared from.
    pub spec: Spec,
    /// The model with its initial weights ([`Spec::build_model`]).
    pub model: Model,
    /// The training split, targets in the form the loss wants; not empty.
    pub train: Dataset,
    /// The held-out split training is watched on (the quality target); may be empty.
    pub validation: Dataset,
    /// The held-out split scored once, after training; may be empty.
    pub test: Dataset,
    /// What cleaning did to each file read (empty when the spec asks for none).
    pub cleaning: Vec<CleaningReport>,
    /// Rows per training step, settled once: the spec's batch size capped by the training
    /// split's size, or the whole split for full-batch gradient descent (see
    /// [`TrainSpec::effective_batch_size`](crate::TrainSpec::effective_batch_size)). Training,
    /// the agreement checks and the results record all read it here.
    pub batch_size: usize,
    /// Training steps to run: the spec's, capped by `--quick`.
    pub steps: usize,
    /// Timing budget: the spec's, shortened by `--quick`.
    pub benchmark: BenchmarkSpec,
}

impl Workload {
    /// Builds the model and loads the data of `spec`; `quick` caps steps and timing budgets.
    pub fn prepare(spec: Spec, quick: bool) -> Result<Workload, SpecError> {
        let model = spec.build_model()?;
        let Splits {
            train,
            validation,
            test,
            cleaning,
        } = spec.load_data()?;
        if train.is_empty() {
            return Err(SpecError::new(&spec.path, "the training split is empty"));
        }
        let batch_size = spec.train.effective_batch_size(train.len());
        let mut steps = spec.train.total_steps(train.len());
        let mut benchmark = spec.benchmark.clone();
        if quick {
            steps = steps.min(QUICK_STEPS);
            benchmark = BenchmarkSpec {
                warmup_s: 0.02,
                min_samples: 3,
                budget_s: 0.1,
                ..benchmark
            };
        }
        Ok(Workload {
            spec,
            model,
            train,
            validation,
            test,
            cleaning,
            batch_size,
            steps,
            benchmark,
        })
    }
}
