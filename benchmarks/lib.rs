//! Shared set-up for the criterion benchmarks in `benches/`: the backends to compare and the
//! seed workloads, prepared outside the timed code (burnbench's prepare / execute / sync).

pub mod plain;

use std::path::Path;

use dlbench_core::{Backend, Model, Values};
use dlbench_native::engine::NativeBackend;
use dlbench_reference::ReferenceBackend;
use dlbench_spec::feed::{batch_inputs, Phase};
use dlbench_spec::Spec;

/// The seed specs, by name.
pub const SEED_SPECS: &[&str] = &["mlp", "cnn", "rnn", "vae"];

/// Every backend the benchmarks compare, side by side: the reference, native, burn, candle and
/// tract (default features), and libtorch when built with the `tch` feature. A backend that
/// cannot train (tract) is left out of the training benches.
pub fn backends() -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(ReferenceBackend),
        Box::new(NativeBackend),
        #[cfg(feature = "burn")]
        Box::new(dlbench_burn::BurnBackend),
        #[cfg(feature = "candle")]
        Box::new(dlbench_candle::CandleBackend),
        #[cfg(feature = "tract")]
        Box::new(dlbench_tract::TractBackend),
        #[cfg(feature = "tch")]
        Box::new(dlbench_tch::TchBackend),
    ]
}

/// The backend of that name in this build (for the examples' command lines).
///
/// # Panics
/// When this build has no such backend.
pub fn backend(name: &str) -> Box<dyn Backend> {
    backends()
        .into_iter()
        .find(|b| b.name() == name)
        .unwrap_or_else(|| panic!("no backend `{name}` in this build"))
}

/// A seed workload ready to time: its model, and one batch of `batch` rows for inference and
/// for training (targets included).
pub struct Workload {
    /// The parsed `specs/<name>.yaml`.
    pub spec: Spec,
    /// The spec's model from [`Spec::build_model`], without a loss node.
    pub model: Model,
    /// One batch for the model's graph: data and noise inputs, evaluation phase 0.
    pub inference: Values,
    /// One batch for the training graph (with the spec's loss): data, targets and noise,
    /// training step 0.
    pub training: Values,
}

impl Workload {
    /// Loads `specs/<name>.yaml` and cuts one batch from its training split.
    pub fn load(name: &str, batch: usize) -> Workload {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../specs/{name}.yaml"));
        let spec = Spec::load(&path).expect("seed spec parses");
        let model = spec.build_model().expect("seed model builds");
        let train = spec.load_data().expect("seed data loads").train;
        let rows: Vec<usize> = (0..batch).map(|i| i % train.len()).collect();
        let b = train.batch(&rows);
        let (x, y) = (b.features, b.targets);
        let inference =
            batch_inputs(&model.graph, &x, None, spec.seed, Phase::Eval(0)).expect("inputs");
        let graph = model
            .graph
            .with_loss(spec.train.loss)
            .expect("training graph");
        let training =
            batch_inputs(&graph, &x, y.as_ref(), spec.seed, Phase::Train(0)).expect("inputs");
        Workload {
            spec,
            model,
            inference,
            training,
        }
    }
}
