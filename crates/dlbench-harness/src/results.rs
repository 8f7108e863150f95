//! The results record, `dlbench.results/v1`: the one contract between `dlbench run`,
//! `dlbench report` and any tool downstream. Raw samples are kept so that a report can be
//! regenerated, and its statistics recomputed, without re-running.

use std::collections::BTreeMap;
use std::path::Path;

use dlbench_core::Device;
use dlbench_data::clean::CleaningReport;
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
pub use crate::probe::SpeedProbe;
use crate::stats::Summary;

/// The `schema` this build writes; `docs/results.md` documents it field by field.
pub const SCHEMA: &str = "dlbench.results/v1";

/// A whole run of one spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`] for records of this version.
    pub schema: String,
    /// What was run.
    pub spec: SpecInfo,
    /// Where and with what it was run.
    pub environment: Environment,
    /// One record per backend x device x thread count, in run order.
    pub runs: Vec<RunRecord>,
    /// The machine's speed through the run, for telling a change of code from a change of
    /// machine state; `None` in records from before it was taken.
    #[serde(default)]
    pub probe: Option<SpeedProbe>,
}

/// What was run: enough to read the record without the spec file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecInfo {
    /// The spec's name (by default its file's stem).
    pub name: String,
    /// The spec file's path, as it was loaded.
    pub path: String,
    /// The spec's seed.
    pub seed: u64,
    /// Trainable scalars of the model.
    pub parameters: usize,
    /// Floating-point operations of one sample's forward pass (a multiply-add counts 2).
    pub flops_per_sample: u64,
    /// The loss's spec name, e.g. `cross_entropy`.
    pub loss: String,
    /// The optimizer's name: `gd`, `sgd` or `adam`.
    pub optimizer: String,
    /// Rows per training step as run (the spec's, capped by the training split).
    pub batch_size: usize,
    /// Samples in the training split.
    pub train_samples: usize,
    /// Samples in the validation split.
    pub validation_samples: usize,
    /// Samples in the test split (0 in older records, and when the spec holds none out).
    #[serde(default)]
    pub test_samples: usize,
    /// What cleaning did to each data file (empty when the spec asks for none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleaning: Vec<CleaningReport>,
}

/// How one backend run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran to the end. One whose `agreement` fails is `ok` too, but not timed.
    Ok,
    /// It errored, panicked, crashed or ran past the timeout; `error` says why.
    Failed,
    /// Not in this build, or it lacks a capability the spec needs; `error` says which.
    Unsupported,
}

/// One backend on one device with one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The backend's name.
    pub backend: String,
    /// Where it computed.
    pub device: Device,
    /// Intra-op threads it was given.
    pub threads: usize,
    /// Which kernels ran, where the backend says ([`dlbench_core::Backend::kernels`]): the
    /// native backend's instruction set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
    /// How the run ended.
    pub status: Status,
    /// Why it failed or is unsupported.
    pub error: Option<String>,
    /// Peak resident set size of the process that ran it.
    pub peak_rss_bytes: Option<u64>,
    /// Untimed preparation (lowering, weight upload, JIT), reported apart from the timings.
    pub prepare_ns: Option<f64>,
    /// Agreement with the f64 reference; `None` for the reference itself, the oracle.
    pub agreement: Option<Agreement>,
    /// One record per inference batch size; empty when the run did not get that far.
    pub inference: Vec<InferenceRecord>,
    /// The training run; `None` when it did not get that far.
    pub training: Option<TrainingRecord>,
    /// Caveats a reader of the numbers needs (e.g. what the peak RSS covers).
    pub notes: Vec<String>,
}

impl RunRecord {
    /// A run that did not produce results, with the reason.
    pub fn without_results(
        backend: &str,
        device: Device,
        threads: usize,
        status: Status,
        error: String,
    ) -> Self {
        RunRecord {
            backend: backend.to_string(),
            device,
            threads,
            kernels: None,
            status,
            error: Some(error),
            peak_rss_bytes: None,
            prepare_ns: None,
            agreement: None,
            inference: Vec::new(),
            training: None,
            notes: Vec::new(),
        }
    }
}

/// Agreement of a backend with the reference, by kind of check. A check is `None` when the
/// backend cannot do it (an inference-only backend has no gradients); `notes` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Every graph output, and every intermediate value when the backend returns them, of one
    /// inference-mode forward pass.
    pub forward: Option<AgreementCheck>,
    /// Every parameter gradient of one backward pass on a training batch.
    pub gradients: Option<AgreementCheck>,
    /// The loss trajectory of `agreement.steps` training steps from the same initial weights.
    pub training: Option<AgreementCheck>,
    /// Checks that were skipped, and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Agreement {
    /// True when every check that ran passed.
    pub fn pass(&self) -> bool {
        [&self.forward, &self.gradients, &self.training]
            .into_iter()
            .flatten()
            .all(|c| c.pass)
    }

    /// The first error a backend raised while being checked, if any.
    pub fn error(&self) -> Option<&str> {
        [&self.forward, &self.gradients, &self.training]
            .into_iter()
            .flatten()
            .find_map(|c| c.error.as_deref())
    }
}

/// The worst difference found by one check; passes if `|a - r| <= atol + rtol * |r|` throughout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementCheck {
    /// Largest `|a - r|` over everything compared.
    #[serde(with = "non_finite")]
    pub max_abs: f64,
    /// Largest `|a - r| / |r|` over the elements whose reference is not zero.
    #[serde(with = "non_finite")]
    pub max_rel: f64,
    /// Largest distance in f32 units in the last place (the reference rounded to f32).
    pub max_ulp: u64,
    /// Largest `|a - r| / (atol + rtol * |r|)` over everything compared: the share of the
    /// tolerance used, above 1 fails. The figure to read: `max_rel` is large wherever the
    /// reference is near zero, even well within `atol`. NaN in a record written before it
    /// was kept.
    #[serde(default = "not_recorded", with = "non_finite")]
    pub tolerance_used: f64,
    /// True when every comparison passed; false when the check hit an `error`.
    pub pass: bool,
    /// What was furthest outside tolerance (or closest to it): a value of the graph, a
    /// parameter (for gradients) or `loss[step]` (for training).
    #[serde(default)]
    pub worst: Option<String>,
    /// The first node whose own error exceeds tolerance when replayed on reference inputs.
    pub first_divergent_node: Option<String>,
    /// The op of that node (`dense`, `lstm`...).
    #[serde(default)]
    pub first_divergent_op: Option<String>,
    /// That node's own error: its outputs on reference inputs against the reference's.
    #[serde(default)]
    pub divergence: Option<Comparison>,
    /// What could not be compared or replayed, and why (a missing value, a backend error).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The backend failed while running this check: an error, not a disagreement.
    #[serde(default)]
    pub error: Option<String>,
}

/// A figure a record from before it was kept does not have.
fn not_recorded() -> f64 {
    f64::NAN
}

/// One tensor against its reference; see `agreement::compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Largest `|a - r|`.
    #[serde(with = "non_finite")]
    pub max_abs: f64,
    /// Largest `|a - r| / |r|` over the elements whose reference is not zero.
    #[serde(with = "non_finite")]
    pub max_rel: f64,
    /// Largest distance in f32 units in the last place (the reference rounded to f32).
    pub max_ulp: u64,
    /// Largest `|a - r| / (atol + rtol * |r|)`: the share of the tolerance used; above 1 fails.
    #[serde(with = "non_finite")]
    pub tolerance_used: f64,
    /// Elements outside tolerance, out of `elements`.
    pub mismatched: usize,
    /// Elements compared.
    pub elements: usize,
    /// No element is outside tolerance and the tensors are comparable (`problem` is `None`).
    pub pass: bool,
    /// Why the tensors could not be compared element by element (shape or dtype).
    #[serde(default)]
    pub problem: Option<String>,
}

/// JSON has no NaN or infinity (serde_json writes `null` and cannot read it back): write them
/// as the strings `"NaN"`, `"inf"`, `"-inf"`, since a diverged backend produces exactly these.
mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *value {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrName {
        Number(f64),
        Name(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match NumberOrName::deserialize(d)? {
            NumberOrName::Number(v) => Ok(v),
            NumberOrName::Name(name) => match name.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a number, \"NaN\", \"inf\" or \"-inf\", got \"{name}\""
                ))),
            },
        }
    }

    /// The same for the values of a map of named numbers (metrics).
    pub mod map {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Serialize, Deserialize)]
        struct Number(#[serde(with = "super")] f64);

        pub fn serialize<S: Serializer>(
            map: &BTreeMap<String, f64>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_map(map.iter().map(|(name, &v)| (name, Number(v))))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, f64>, D::Error> {
            let map = BTreeMap::<String, Number>::deserialize(d)?;
            Ok(map.into_iter().map(|(name, v)| (name, v.0)).collect())
        }
    }
}

/// Inference latency at one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceRecord {
    /// Rows per forward pass.
    pub batch: usize,
    /// Per-pass time statistics, flattened into the record's JSON.
    #[serde(flatten)]
    pub summary: Summary,
    /// Samples per second at the median: `batch / median`.
    pub throughput_per_s: f64,
    /// Iterations timed together in one sample (more than one when a run is very short).
    pub iterations_per_sample: usize,
    /// Per-iteration time of each sample, in the order taken.
    pub raw_ns: Vec<f64>,
    /// The round each sample of `raw_ns` was taken in, counted within its process (empty in
    /// records from before rounds: all in one).
    #[serde(default)]
    pub raw_round: Vec<usize>,
    /// The worker process each sample of `raw_ns` was taken in, from 0 (empty: all in one).
    #[serde(default)]
    pub raw_process: Vec<usize>,
}

/// Training: step time, the loss trajectory and the final metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// Rows per step.
    pub batch: usize,
    /// Optimizer steps run.
    pub steps: usize,
    /// `step_time.median_ns`, kept at the top for readers of the JSON.
    pub step_median_ns: f64,
    /// Statistics of the step times, grouped into rounds of consecutive steps.
    pub step_time: Summary,
    /// The training loss of each step (before its update).
    pub losses: Vec<f64>,
    /// Metrics after training on the validation (`val_...`) and test (`test_...`) splits:
    /// the loss, accuracy, precision, recall, F1 and log loss for classifiers, MSE and MAE for
    /// regression (see docs/results.md); a diverged model's NaN or infinity is written as in
    /// [`AgreementCheck`].
    #[serde(with = "non_finite::map")]
    pub metrics: BTreeMap<String, f64>,
    /// A classifier's confusion matrix on each held-out split (`validation`, `test`), as
    /// `counts[true class][predicted class]`; empty for other tasks and older records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confusion: BTreeMap<String, Vec<Vec<u64>>>,
    /// Training time (steps only, evaluation excluded) until the spec's target was first met.
    pub time_to_quality_s: Option<f64>,
    /// The time of each step, in order.
    pub raw_step_ns: Vec<f64>,
    /// The round of each step of `raw_step_ns`: the steps cut into `step_time.rounds`
    /// consecutive blocks, counted within its process (empty in records from before rounds:
    /// all in one).
    #[serde(default)]
    pub raw_step_round: Vec<usize>,
    /// The worker process of each step of `raw_step_ns`, from 0 (empty: all in one).
    #[serde(default)]
    pub raw_step_process: Vec<usize>,
}

/// The metrics that describe a held-out split's quality, in the order tables show them,
/// without the split's prefix (`accuracy` for `test_accuracy`).
pub const QUALITY_METRICS: [&str; 15] = [
    "accuracy",
    "binary_accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "log_loss",
    "mse",
    "mae",
    "loss",
];

impl TrainingRecord {
    /// The one metric that sums up a split (`val` or `test`): accuracy, binary accuracy or
    /// MSE, else the loss; `None` when the split was not scored.
    pub fn headline(&self, split: &str) -> Option<(&'static str, f64)> {
        ["accuracy", "binary_accuracy", "mse", "loss"]
            .into_iter()
            .find_map(|name| {
                let value = self.metrics.get(&format!("{split}_{name}"))?;
                Some((name, *value))
            })
    }
}

impl Results {
    /// Writes `results.json` into `dir`, creating it; the file appears whole or not at all.
    pub fn write(&self, dir: &Path) -> dlbench_core::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| dlbench_core::Error::io(dir, e))?;
        let path = dir.join("results.json");
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| dlbench_core::Error::invalid(format!("results to JSON: {e}")))?;
        dlbench_core::format::write_atomically(&path, &json)?;
        Ok(path)
    }

    /// Reads a record, checking its schema.
    pub fn read(path: &Path) -> dlbench_core::Result<Results> {
        let bytes = std::fs::read(path).map_err(|e| dlbench_core::Error::io(path, e))?;
        let results: Results = serde_json::from_slice(&bytes)
            .map_err(|e| dlbench_core::Error::file(path, format!("not a {SCHEMA} record: {e}")))?;
        if results.schema != SCHEMA {
            return Err(dlbench_core::Error::file(
                path,
                format!("schema `{}`, expected `{SCHEMA}`", results.schema),
            ));
        }
        Ok(results)
    }

    /// True when every run that was asked for succeeded.
    pub fn all_ok(&self) -> bool {
        self.runs.iter().all(|r| r.status == Status::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;

    fn trained(metrics: BTreeMap<String, f64>) -> RunRecord {
        let mut record =
            RunRecord::without_results("native", Device::Cpu, 1, Status::Ok, "unused".to_string());
        record.training = Some(TrainingRecord {
            batch: 32,
            steps: 2,
            step_median_ns: 1.5,
            step_time: summarize(&[1.0, 2.0], &[0, 1]),
            losses: vec![0.7, 0.6],
            metrics,
            confusion: Default::default(),
            time_to_quality_s: None,
            raw_step_ns: vec![1.0, 2.0],
            raw_step_round: vec![0, 1],
            raw_step_process: Vec::new(),
        });
        record
    }

    #[test]
    fn non_finite_metrics_survive_json() {
        let metrics = BTreeMap::from([
            ("val_loss".to_string(), f64::NAN),
            ("val_mse".to_string(), f64::INFINITY),
            ("val_accuracy".to_string(), f64::NEG_INFINITY),
            ("val_binary_accuracy".to_string(), 0.25),
        ]);
        let json = serde_json::to_string(&trained(metrics)).unwrap();
        assert!(json.contains(r#""val_loss":"NaN""#), "{json}");
        let back: RunRecord = serde_json::from_str(&json).unwrap();
        let metrics = &back.training.as_ref().unwrap().metrics;
        assert!(metrics["val_loss"].is_nan());
        assert_eq!(metrics["val_mse"], f64::INFINITY);
        assert_eq!(metrics["val_accuracy"], f64::NEG_INFINITY);
        assert_eq!(metrics["val_binary_accuracy"], 0.25);
    }

    #[test]
    fn finite_metrics_are_plain_numbers() {
        let record = trained(BTreeMap::from([("val_loss".to_string(), 0.5)]));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["training"]["metrics"]["val_loss"], 0.5);
        assert_eq!(serde_json::from_value::<RunRecord>(json).unwrap(), record);
    }

    #[test]
    fn a_record_from_before_rounds_reads_as_one_round() {
        let mut json = serde_json::to_value(trained(BTreeMap::new())).unwrap();
        let training = json["training"].as_object_mut().unwrap();
        training.remove("raw_step_round");
        training["step_time"]
            .as_object_mut()
            .unwrap()
            .remove("rounds");
        let back: RunRecord = serde_json::from_value(json).unwrap();
        let training = back.training.unwrap();
        assert!(training.raw_step_round.is_empty());
        assert_eq!(training.step_time.rounds, 1);
    }
}
