//! The `data:` section: where samples come from and how they are prepared.

use std::path::{Path, PathBuf};

use dlbench_core::limits::{bytes_of, Limits};
use dlbench_core::{Dim, Graph, InputRole, Loss};
use dlbench_data::csv::CsvOptions;
use dlbench_data::npy::{read_npy, read_npz};
use dlbench_data::preprocess::{self, Standardizer};
use dlbench_data::{synthetic, Dataset};
use serde::de::Deserializer;
use serde::Deserialize;

use super::de;

/// The `data:` section. Steps run in this order: load (or generate), `windows`, `scale`,
/// `reshape`, `upsample`, split off `validation`, then `standardize` with the training split's
/// statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Where the samples come from: `synthetic`, `csv`, `npz` or `npy`.
    pub source: DataSource,
    /// Sliding windows over one column of the loaded features.
    pub windows: Option<WindowsSpec>,
    /// Multiply every feature by this factor.
    pub scale: Option<f64>,
    /// The shape of each sample after loading (e.g. 64 values to `[1, 8, 8]`).
    pub reshape: Option<Vec<usize>>,
    /// Enlarge `[C, H, W]` samples by this integer factor (nearest neighbour).
    pub upsample: Option<usize>,
    /// Standardize each feature with the training split's mean and standard deviation.
    pub standardize: bool,
    /// The fraction of samples held out for validation, in [0, 1); default 0.2.
    pub validation: f64,
}

/// Where the samples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// `synthetic: {kind: classification, samples: 1024, classes: 10}`.
    Synthetic(SyntheticSpec),
    /// `csv: path` (plain or gzipped) with `skip_rows`, `delimiter`, `target_column`.
    Csv {
        /// The file, relative to the spec's folder.
        path: PathBuf,
        /// Header rows, delimiter and target column.
        options: CsvOptions,
    },
    /// `npz: path` with `features: <array>` and optionally `targets: <array>`.
    Npz {
        /// The archive, relative to the spec's folder.
        path: PathBuf,
        /// The features array's name in the archive (`.npy` optional).
        features: String,
        /// The targets array's name; `None` for data without targets.
        targets: Option<String>,
    },
    /// `npy: {features: x.npy, targets: y.npy}`.
    Npy {
        /// The features file, relative to the spec's folder.
        features: PathBuf,
        /// The targets file; `None` for data without targets.
        targets: Option<PathBuf>,
    },
}

/// A seeded synthetic task (see `dlbench_data::synthetic`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSpec {
    /// The task, hence the targets' form.
    pub kind: SyntheticKind,
    /// Samples to generate, before the validation split; positive.
    #[serde(deserialize_with = "de::positive")]
    pub samples: usize,
    /// The number of classes, for `classification` only.
    #[serde(default, deserialize_with = "de::positive_opt")]
    pub classes: Option<usize>,
    /// The shape of one sample; defaults to the model's data input.
    #[serde(default, deserialize_with = "de::positive_list_opt")]
    pub shape: Option<Vec<usize>>,
}

/// The synthetic tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticKind {
    /// Class labels i64 `[n]` from a random linear teacher (cross-entropy).
    Classification,
    /// 0/1 targets f32 `[n, 1]` (binary cross-entropy).
    Binary,
    /// Real targets f32 `[n, 1]` (mean squared error).
    Regression,
    /// Samples `[steps, features]` with a 0/1 target (an LSTM's task).
    Sequence,
    /// Values in [0, 1] that are their own target (a VAE's task).
    Reconstruction,
}

/// `windows: {length: 10, column: 1}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsSpec {
    /// Time steps per window; each sample is `[length, 1]`.
    #[serde(deserialize_with = "de::positive")]
    pub length: usize,
    /// The 0-based column holding the series.
    #[serde(default)]
    pub column: usize,
}

fn validation_default() -> f64 {
    0.2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    synthetic: Option<SyntheticSpec>,
    csv: Option<PathBuf>,
    npz: Option<PathBuf>,
    npy: Option<NpyFiles>,
    #[serde(default)]
    skip_rows: Option<usize>,
    #[serde(default)]
    delimiter: Option<char>,
    #[serde(default)]
    target_column: Option<i64>,
    #[serde(default)]
    features: Option<String>,
    #[serde(default)]
    targets: Option<String>,
    windows: Option<WindowsSpec>,
    #[serde(default, deserialize_with = "finite_opt")]
    scale: Option<f64>,
    #[serde(default, deserialize_with = "de::positive_list_opt")]
    reshape: Option<Vec<usize>>,
    #[serde(default, deserialize_with = "de::positive_opt")]
    upsample: Option<usize>,
    #[serde(default)]
    standardize: bool,
    #[serde(default = "validation_default", deserialize_with = "de::fraction")]
    validation: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpyFiles {
    features: PathBuf,
    targets: Option<PathBuf>,
}

fn finite_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    de::finite(d).map(Some)
}

impl TryFrom<RawData> for DataSpec {
    type Error = String;
    fn try_from(raw: RawData) -> Result<Self, String> {
        let csv_options =
            raw.skip_rows.is_some() || raw.delimiter.is_some() || raw.target_column.is_some();
        let npz_options = raw.features.is_some() || raw.targets.is_some();
        let source = match (raw.synthetic, raw.csv, raw.npz, raw.npy) {
            (Some(s), None, None, None) => {
                if s.classes.is_some() != (s.kind == SyntheticKind::Classification) {
                    return Err(
                        "`synthetic.classes` is required for kind `classification` and only there"
                            .to_string(),
                    );
                }
                DataSource::Synthetic(s)
            }
            (None, Some(path), None, None) => DataSource::Csv {
                path,
                options: CsvOptions {
                    skip_rows: raw.skip_rows.unwrap_or(0),
                    delimiter: raw.delimiter.unwrap_or(','),
                    target_column: raw.target_column,
                },
            },
            (None, None, Some(path), None) => DataSource::Npz {
                path,
                features: raw
                    .features
                    .ok_or("missing field `features`: the name of the npz array of samples")?,
                targets: raw.targets,
            },
            (None, None, None, Some(files)) => DataSource::Npy {
                features: files.features,
                targets: files.targets,
            },
            _ => {
                return Err(
                    "give exactly one data source: `synthetic`, `csv`, `npz` or `npy`".to_string(),
                )
            }
        };
        if csv_options && !matches!(source, DataSource::Csv { .. }) {
            return Err(
                "`skip_rows`, `delimiter` and `target_column` apply to `csv` data only".to_string(),
            );
        }
        if npz_options && !matches!(source, DataSource::Npz { .. }) {
            return Err("`features` and `targets` name arrays of `npz` data only".to_string());
        }
        Ok(DataSpec {
            source,
            windows: raw.windows,
            scale: raw.scale,
            reshape: raw.reshape,
            upsample: raw.upsample,
            standardize: raw.standardize,
            validation: raw.validation,
        })
    }
}

impl<'de> Deserialize<'de> for DataSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via::<D, RawData, DataSpec>(d)
    }
}

impl DataSpec {
    /// Loads and prepares the data for `graph` trained with `loss`: checks that samples match
    /// the graph's data input and targets match its first output, then splits with `seed`.
    /// Returns (train, validation). Files are relative to `dir`.
    pub fn load(
        &self,
        graph: &Graph,
        loss: Loss,
        seed: u64,
        dir: &Path,
    ) -> Result<(Dataset, Dataset), String> {
        let input = data_input(graph)?;
        let sample: Vec<usize> = input.shape[1..].iter().filter_map(|d| d.known()).collect();
        let err = |e: dlbench_data::Error| e.to_string();
        let mut data = match &self.source {
            DataSource::Synthetic(s) => generate(s, s.shape.as_deref().unwrap_or(&sample), seed)?,
            DataSource::Csv { path, options } => {
                dlbench_data::csv::read_csv(&dir.join(path), options).map_err(err)?
            }
            DataSource::Npz {
                path,
                features,
                targets,
            } => {
                let path = dir.join(path);
                let targets = targets
                    .as_ref()
                    .map(|t| read_npz(&path, t))
                    .transpose()
                    .map_err(err)?;
                Dataset::new(read_npz(&path, features).map_err(err)?, targets).map_err(err)?
            }
            DataSource::Npy { features, targets } => {
                let targets = targets
                    .as_ref()
                    .map(|t| read_npy(&dir.join(t)))
                    .transpose()
                    .map_err(err)?;
                Dataset::new(read_npy(&dir.join(features)).map_err(err)?, targets).map_err(err)?
            }
        };
        if let Some(w) = &self.windows {
            if data.targets.is_some() {
                return Err(
                    "`windows` make their own targets; remove `target_column` / `targets`"
                        .to_string(),
                );
            }
            let series = preprocess::column(&data.features, w.column)
                .map_err(|e| format!("windows: {e}"))?;
            data = preprocess::windows(&series, w.length).map_err(|e| format!("windows: {e}"))?;
        }
        if let Some(factor) = self.scale {
            data = preprocess::scale(data, factor);
        }
        if let Some(shape) = &self.reshape {
            data = preprocess::reshape(data, shape).map_err(|e| format!("reshape: {e}"))?;
        }
        if let Some(factor) = self.upsample {
            upsampled_size(&data, factor)?;
            data = preprocess::upsample(data, factor).map_err(|e| format!("upsample: {e}"))?;
        }
        if data.sample_shape() != sample {
            return Err(format!(
                "the data's samples have shape {:?}, the model's input `{}` expects {:?}",
                data.sample_shape(),
                input.name,
                sample
            ));
        }
        let data = fit_targets(data, graph, loss)?;
        let (mut train, mut validation) = data.split(self.validation, seed).map_err(err)?;
        if self.standardize {
            let s = Standardizer::fit(&train.features).map_err(err)?;
            train.features = s.apply(&train.features).map_err(err)?;
            validation.features = s.apply(&validation.features).map_err(err)?;
        }
        Ok((train, validation))
    }
}

/// Refuses an `upsample` factor whose output would overflow or exceed the memory limit,
/// before anything is allocated (a factor of 100000 once aborted the process).
fn upsampled_size(data: &Dataset, factor: usize) -> Result<(), String> {
    let elements = [factor, factor]
        .into_iter()
        .chain([data.len()])
        .chain(data.sample_shape().iter().copied())
        .try_fold(1usize, |n, d| n.checked_mul(d));
    let bytes = elements.map_or(u64::MAX, |n| bytes_of(n, 4));
    Limits::from_env()
        .and_then(|limits| {
            limits.check_memory(
                &format!("upsample: {factor} (the upsampled features)"),
                bytes,
            )
        })
        .map_err(|e| e.to_string())
}

fn data_input(graph: &Graph) -> Result<&dlbench_core::ValueInfo, String> {
    let mut data = graph.inputs.iter().filter(|i| i.role == InputRole::Data);
    match (data.next(), data.next()) {
        (Some(input), None) if input.value.shape.first() == Some(&Dim::Batch) => Ok(&input.value),
        (Some(_), Some(_)) => {
            Err("the model has several data inputs; a dataset feeds exactly one".to_string())
        }
        _ => Err("the model needs one data input whose first dim is the batch".to_string()),
    }
}

fn generate(s: &SyntheticSpec, shape: &[usize], seed: u64) -> Result<Dataset, String> {
    let data = match s.kind {
        SyntheticKind::Classification => {
            synthetic::classification(s.samples, shape, s.classes.unwrap_or(0), seed)
        }
        SyntheticKind::Binary => synthetic::binary(s.samples, shape, seed),
        SyntheticKind::Regression => synthetic::regression(s.samples, shape, seed),
        SyntheticKind::Sequence => match shape {
            [steps, features] => synthetic::sequence(s.samples, *steps, *features, seed),
            _ => {
                return Err(format!(
                    "synthetic sequences have samples [steps, features], not {shape:?}"
                ))
            }
        },
        SyntheticKind::Reconstruction => synthetic::reconstruction(s.samples, shape, seed),
    };
    data.map_err(|e| format!("synthetic: {e}"))
}

/// Puts targets in the form `loss` wants and checks them against the model's first output.
fn fit_targets(data: Dataset, graph: &Graph, loss: Loss) -> Result<Dataset, String> {
    if loss == Loss::VaeElbo {
        return Ok(data);
    }
    if data.targets.is_none() {
        return Err(format!(
            "loss `{}` needs targets, and the data has none",
            super::loss_name(loss)
        ));
    }
    let outputs = graph.output_infos().map_err(|e| e.to_string())?;
    let output = &outputs[0];
    let per_sample: Vec<usize> = output
        .shape
        .iter()
        .skip(1)
        .filter_map(|d| d.known())
        .collect();
    let describe = || {
        format!(
            "the model's output `{}` is {}",
            output.name,
            dlbench_core::ir::format_shape(&output.shape)
        )
    };
    if loss == Loss::CrossEntropy {
        let data = data.with_class_targets().map_err(|e| e.to_string())?;
        let classes = match per_sample[..] {
            [c] if c >= 2 => c,
            _ => {
                return Err(format!(
                    "cross-entropy needs logits [batch, classes] with at least 2 classes; {}",
                    describe()
                ))
            }
        };
        let labels = data
            .targets
            .as_ref()
            .and_then(|t| t.as_i64())
            .unwrap_or_default();
        if let Some((row, label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(format!(
                "the label of sample {row} is {label}, out of range for {classes} classes; {}",
                describe()
            ));
        }
        return Ok(data);
    }
    let data = data.with_value_targets().map_err(|e| e.to_string())?;
    let targets = data
        .targets
        .as_ref()
        .map(|t| t.shape()[1..].to_vec())
        .unwrap_or_default();
    if targets != per_sample {
        return Err(format!(
            "the data's targets have shape {targets:?} per sample; {}",
            describe()
        ));
    }
    Ok(data)
}
