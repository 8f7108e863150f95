//! Benchmark spec files (YAML): what to build, what to train it on, and how to measure it.
//!
//! `Spec::load("specs/cnn.yaml")` reads a file into typed structs; every mapping rejects unknown
//! fields, so a typo is reported with its line, column and the accepted names. The format is
//! documented field by field in `docs/specs.md`.

mod data;
mod de;
pub mod feed;
mod guard;
mod layer;
mod model;
pub mod workload;

use std::path::{Path, PathBuf};

use dlbench_core::footprint::Footprint;
use dlbench_core::limits::{read_file, Limits};
use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{Device, Graph, Loss, Model, Optimizer, TrainingConfig};
use dlbench_data::metrics::Metric;
use dlbench_data::Splits;
use serde::de::value::MapAccessDeserializer;
use serde::de::Deserializer;
use serde::Deserialize;

pub use data::{
    DataSource, DataSpec, Holdout, Normalize, SyntheticKind, SyntheticSpec, WindowsSpec,
};
pub use layer::{
    bare_layers, layers_with_options, Activation, AvgPoolSpec, ConcatSpec, Conv2dSpec, DenseSpec,
    DropoutSpec, Form, Layer, LayerEntry, LayerKind, LstmReturn, LstmSpec, MaxPoolSpec,
    ReshapeSpec, ScaleSpec, TransposeSpec,
};
pub use model::{GraphSpec, InputKind, InputSpec, ModelSpec, NodeSpec};

/// A spec file that cannot be read, parsed or built. Displays as `<file>:<line>:<column>:
/// <message>` when the position is known, else `<file>: <message>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {}", .path.display(), at(.location), .message)]
pub struct SpecError {
    /// The spec file (or the file it names) at fault.
    pub path: PathBuf,
    /// 1-based (line, column).
    pub location: Option<(usize, usize)>,
    /// What is wrong, with the accepted names or values where it helps.
    pub message: String,
}

fn at(location: &Option<(usize, usize)>) -> String {
    location
        .map(|(l, c)| format!(":{l}:{c}"))
        .unwrap_or_default()
}

impl SpecError {
    /// An error about the file as a whole.
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        SpecError {
            path: path.to_path_buf(),
            location: None,
            message: message.into(),
        }
    }

    fn yaml(path: &Path, err: &serde_yaml::Error) -> Self {
        let location = err.location().map(|l| (l.line(), l.column()));
        let mut message = err.to_string();
        // serde_yaml appends the position to its message; ours leads with it instead.
        if let Some((line, column)) = location {
            message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        SpecError {
            path: path.to_path_buf(),
            location,
            message,
        }
    }
}

/// A parsed spec file. Defaults are those documented in `docs/specs.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The spec file (relative paths inside it are relative to its folder).
    #[serde(skip)]
    pub path: PathBuf,
    /// Default: the file's stem (`cnn` for `specs/cnn.yaml`).
    #[serde(default)]
    pub name: String,
    /// Seeds weights, synthetic data, splits, shuffles, dropout masks and noise.
    #[serde(default)]
    pub seed: u64,
    /// The `model:` section: what to build.
    pub model: ModelSpec,
    /// The `data:` section: what to train and validate on.
    pub data: DataSpec,
    /// The `train:` section: loss, optimizer, batch size and length.
    pub train: TrainSpec,
    /// The `inference:` section; default batch sizes `[1, 32]`.
    #[serde(default)]
    pub inference: InferenceSpec,
    /// Backends to compare; empty (the default) means every framework backend in this build
    /// (not the f64 reference, which checks every run but is timed only when named).
    #[serde(default, deserialize_with = "de::non_empty")]
    pub backends: Vec<String>,
    /// Default `[cpu]`.
    #[serde(default = "default_devices", deserialize_with = "de::non_empty")]
    pub devices: Vec<Device>,
    /// Thread counts to measure; default `[1]`.
    #[serde(default = "default_threads", deserialize_with = "de::positive_list")]
    pub threads: Vec<usize>,
    /// The `agreement:` section: tolerances against the f64 reference.
    #[serde(default)]
    pub agreement: AgreementSpec,
    /// The `benchmark:` section: warm-up and sampling budget.
    #[serde(default)]
    pub benchmark: BenchmarkSpec,
}

fn default_devices() -> Vec<Device> {
    vec![Device::Cpu]
}

fn default_threads() -> Vec<usize> {
    vec![1]
}

/// The `train:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// `cross_entropy`, `binary_cross_entropy`, `binary_cross_entropy_with_logits`, `mse` or
    /// `vae_elbo`; it reads the model's first output (`vae_elbo`: `recon, mu, logvar`).
    pub loss: Loss,
    /// `{sgd: {...}}`, `{adam: {...}}`, `{gd: {lr}}` or a bare name; omitted options take
    /// PyTorch's defaults. Validated on parse.
    pub optimizer: Optimizer,
    /// Rows per optimizer step, as given (positive); a run may cap it by the training split
    /// (see `effective_batch_size`).
    pub batch_size: usize,
    /// Passes over the training split; exactly one of `epochs` and `steps` is given.
    pub epochs: Option<usize>,
    /// Optimizer steps (batches), across epochs as needed.
    pub steps: Option<usize>,
    /// Reshuffle the training split every epoch; default true.
    pub shuffle: bool,
    /// Stop the time-to-quality clock when the validation metric reaches this value.
    pub target: Option<MetricTarget>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    loss: Loss,
    #[serde(deserialize_with = "optimizer")]
    optimizer: Optimizer,
    #[serde(deserialize_with = "de::positive")]
    batch_size: usize,
    #[serde(default, deserialize_with = "de::positive_opt")]
    epochs: Option<usize>,
    #[serde(default, deserialize_with = "de::positive_opt")]
    steps: Option<usize>,
    #[serde(default = "yes")]
    shuffle: bool,
    target: Option<MetricTarget>,
}

impl TryFrom<RawTrain> for TrainSpec {
    type Error = String;
    fn try_from(raw: RawTrain) -> Result<Self, String> {
        if raw.epochs.is_some() == raw.steps.is_some() {
            return Err("give exactly one of `epochs` and `steps`".to_string());
        }
        raw.optimizer.validate().map_err(|e| e.to_string())?;
        Ok(TrainSpec {
            loss: raw.loss,
            optimizer: raw.optimizer,
            batch_size: raw.batch_size,
            epochs: raw.epochs,
            steps: raw.steps,
            shuffle: raw.shuffle,
            target: raw.target,
        })
    }
}

impl<'de> Deserialize<'de> for TrainSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via::<D, RawTrain, TrainSpec>(d)
    }
}

/// An optimizer as `{sgd: {lr: 0.01}}`, or a bare name (`adam`) for PyTorch's defaults.
fn optimizer<'de, D: Deserializer<'de>>(d: D) -> Result<Optimizer, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Optimizer;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an optimizer: `adam`, or a mapping such as `{sgd: {lr: 0.01}}`")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Optimizer, E> {
            match v {
                "gd" => Ok(Optimizer::Gd(Gd::default())),
                "sgd" => Ok(Optimizer::Sgd(Sgd::default())),
                "adam" => Ok(Optimizer::Adam(Adam::default())),
                _ => Err(E::unknown_variant(v, &["gd", "sgd", "adam"])),
            }
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Optimizer, A::Error> {
            serde_yaml::with::singleton_map::deserialize(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(V)
}

/// `target: {metric: accuracy, value: 0.9}`: a validation metric to reach.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    /// `loss`, or a metric of `dlbench_data::metrics`: `accuracy`, `binary_accuracy`, `mse`.
    #[serde(deserialize_with = "metric_name")]
    pub metric: String,
    /// The value to reach: from below for accuracies, from above for `mse` and `loss`.
    #[serde(deserialize_with = "de::finite")]
    pub value: f64,
}

fn metric_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a metric name")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            if v == "loss" || Metric::from_name(v).is_some() {
                return Ok(v.to_string());
            }
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            Err(E::custom(format!(
                "unknown metric `{v}`, expected `loss`, `{}`",
                names.join("`, `")
            )))
        }
    }
    d.deserialize_str(V)
}

/// The `inference:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceSpec {
    /// Batch sizes to time; default `[1, 32]`.
    #[serde(deserialize_with = "de::positive_list")]
    pub batch_sizes: Vec<usize>,
}

impl Default for InferenceSpec {
    fn default() -> Self {
        InferenceSpec {
            batch_sizes: vec![1, 32],
        }
    }
}

/// The `agreement:` section: how close a backend must stay to the f64 reference.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgreementSpec {
    /// Relative tolerance; default 1e-3.
    #[serde(deserialize_with = "de::non_negative")]
    pub rtol: f64,
    /// Absolute tolerance; default 1e-5.
    #[serde(deserialize_with = "de::non_negative")]
    pub atol: f64,
    /// Training steps whose losses are compared; default 20.
    #[serde(deserialize_with = "de::positive")]
    pub steps: usize,
}

impl Default for AgreementSpec {
    fn default() -> Self {
        AgreementSpec {
            rtol: 1e-3,
            atol: 1e-5,
            steps: 20,
        }
    }
}

/// The `benchmark:` section: how long to measure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchmarkSpec {
    /// Seconds of warm-up before sampling; default 0.5.
    #[serde(deserialize_with = "de::non_negative")]
    pub warmup_s: f64,
    /// Samples to take at least; default 10.
    #[serde(deserialize_with = "de::positive")]
    pub min_samples: usize,
    /// Seconds to keep sampling for (after `min_samples`); default 3.
    #[serde(deserialize_with = "de::positive_number")]
    pub budget_s: f64,
    /// Rounds the samples are spread over, each timing every batch size in turn; default 10.
    #[serde(deserialize_with = "de::positive")]
    pub rounds: usize,
}

impl Default for BenchmarkSpec {
    fn default() -> Self {
        BenchmarkSpec {
            warmup_s: 0.5,
            min_samples: 10,
            budget_s: 3.0,
            rounds: 10,
        }
    }
}

impl Spec {
    /// Reads and parses a spec file. A file over the spec size limit (or a device such as
    /// `/dev/zero`) is refused before it is read whole; a UTF-8 byte-order mark is skipped.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let limits = limits(path)?;
        // A regular file's size is known before reading: refused naming the limit's variable.
        if let Ok(meta) = std::fs::metadata(path) {
            limits
                .check_spec_bytes("the spec", meta.len())
                .map_err(|e| SpecError::new(path, e.to_string()))?;
        }
        let bytes = read_file(path, limits.spec_bytes, "the spec")
            .map_err(|e| SpecError::new(path, core_message(e)))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            SpecError::new(
                path,
                format!(
                    "not UTF-8 text (byte {} is not part of a UTF-8 character)",
                    e.utf8_error().valid_up_to() + 1
                ),
            )
        })?;
        Spec::parse(&text, path)
    }

    /// Parses spec text; `path` names it in errors, gives the default name and anchors
    /// relative paths. Text over the size or nesting limits is refused before the YAML
    /// parser sees it.
    pub fn parse(text: &str, path: &Path) -> Result<Spec, SpecError> {
        let limits = limits(path)?;
        // Editors on Windows write a byte-order mark, which YAML would read as content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        limits
            .check_spec_bytes("the spec", text.len() as u64)
            .map_err(|e| SpecError::new(path, e.to_string()))?;
        let depth = guard::yaml_depth(text);
        if depth > limits.spec_depth {
            return Err(SpecError::new(
                path,
                format!(
                    "the YAML nests {depth} levels deep, over the limit of {} \
                     (DLBENCH_MAX_SPEC_DEPTH; set it higher to allow more)",
                    limits.spec_depth
                ),
            ));
        }
        let mut spec: Spec = serde_yaml::from_str(text).map_err(|e| SpecError::yaml(path, &e))?;
        spec.path = path.to_path_buf();
        if spec.name.is_empty() {
            spec.name = path
                .file_stem()
                .map(|s| guard::plain_name(&s.to_string_lossy()))
                .unwrap_or_else(|| "spec".to_string());
        } else if !guard::is_plain_name(&spec.name) {
            return Err(SpecError::new(
                path,
                format!(
                    "name: {:?} is not a plain name: it names the results folder under \
                     reports/, so it may hold only letters, digits, `.`, `_` and `-`, start \
                     with a letter, digit or `_`, and be at most 100 characters",
                    spec.name
                ),
            ));
        }
        Ok(spec)
    }

    /// The folder relative paths in the spec start from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The model's graph without weights (nothing is initialised: `inspect` of a huge model
    /// costs nothing), checked against the limits: its node count, and the memory its
    /// parameters and training at the spec's largest batch size would need. Also checks that
    /// the model can end in the spec's loss.
    pub fn build_graph(&self) -> Result<Graph, SpecError> {
        let limits = limits(&self.path)?;
        let layers = match &self.model {
            ModelSpec::Sequential { layers, .. } => layers.len(),
            ModelSpec::Graph(graph) => graph.nodes.len(),
            ModelSpec::File(_) => 0,
        };
        limits
            .check_nodes("model", layers)
            .map_err(|e| SpecError::new(&self.path, e.to_string()))?;
        let graph = self
            .model
            .graph(&self.name, self.dir())
            .map_err(|e| SpecError::new(&self.path, e))?;
        self.check_graph(&graph, &limits)?;
        Ok(graph)
    }

    /// The model with its initial weights (`Model::initialized` from `seed`), or as saved in
    /// its file, after the checks of [`Spec::build_graph`].
    pub fn build_model(&self) -> Result<Model, SpecError> {
        let at = |e: String| SpecError::new(&self.path, e);
        match &self.model {
            ModelSpec::File(_) => {
                let model = self
                    .model
                    .model(&self.name, self.seed, self.dir())
                    .map_err(at)?;
                self.check_graph(&model.graph, &limits(&self.path)?)?;
                Ok(model)
            }
            _ => Model::initialized(self.build_graph()?, self.seed).map_err(|e| at(e.to_string())),
        }
    }

    /// The limits a built graph must meet (see [`Spec::build_graph`]).
    fn check_graph(&self, graph: &Graph, limits: &Limits) -> Result<(), SpecError> {
        let at = |e: dlbench_core::Error| SpecError::new(&self.path, e.to_string());
        limits.check_nodes("model", graph.nodes.len()).map_err(at)?;
        let batch = self
            .inference
            .batch_sizes
            .iter()
            .copied()
            .chain([self.train.batch_size])
            .max()
            .unwrap_or(1);
        Footprint::of(graph, batch)
            .and_then(|f| f.check(&self.name, limits))
            .map_err(at)?;
        graph.with_loss(self.train.loss).map_err(|e| {
            SpecError::new(
                &self.path,
                format!("train.loss `{}`: {e}", loss_name(self.train.loss)),
            )
        })?;
        Ok(())
    }

    /// The training, validation and test splits, prepared as the `data:` section says and
    /// checked against the model.
    pub fn load_data(&self) -> Result<Splits, SpecError> {
        let graph = self.build_graph()?;
        self.data
            .load(&graph, self.train.loss, self.seed, self.dir())
            .map_err(|e| SpecError::new(&self.path, format!("data: {e}")))
    }

    /// The loss and optimizer to train with.
    pub fn training_config(&self) -> TrainingConfig {
        TrainingConfig {
            loss: self.train.loss,
            optimizer: self.train.optimizer,
        }
    }
}

impl TrainSpec {
    /// Rows per step: the whole split for full-batch gradient descent, else `batch_size`
    /// (at most the split's size).
    pub fn effective_batch_size(&self, samples: usize) -> usize {
        match self.optimizer {
            Optimizer::Gd(_) => samples,
            _ => self.batch_size.min(samples),
        }
        .max(1)
    }

    /// Optimizer steps in the run: `steps`, or `epochs` passes over `samples` rows.
    pub fn total_steps(&self, samples: usize) -> usize {
        self.steps.unwrap_or_else(|| {
            self.epochs.unwrap_or(1) * samples.div_ceil(self.effective_batch_size(samples))
        })
    }
}

impl MetricTarget {
    /// Whether `value` of the metric reaches the target: at least it for accuracies, at most
    /// it for the loss and errors.
    pub fn is_met(&self, value: f64) -> bool {
        match Metric::from_name(&self.metric) {
            Some(m) if m.higher_is_better() => value >= self.value,
            _ => value <= self.value,
        }
    }

    /// The key of this metric in the results record's validation metrics.
    pub fn record_key(&self) -> String {
        format!("val_{}", self.metric)
    }
}

/// The limits in force; a malformed `DLBENCH_MAX_...` variable is reported against the spec
/// being read.
fn limits(path: &Path) -> Result<Limits, SpecError> {
    Limits::from_env().map_err(|e| SpecError::new(path, e.to_string()))
}

/// A core error's message without the file name the spec error adds again.
fn core_message(error: dlbench_core::Error) -> String {
    match error {
        dlbench_core::Error::File { message, .. } => message,
        dlbench_core::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// The loss's name as written in specs.
fn loss_name(loss: Loss) -> String {
    serde_json::to_value(loss)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{loss:?}"))
}
