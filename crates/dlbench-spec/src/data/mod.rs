//! The `data:` section: where samples come from and how they are prepared.

mod load;

use std::path::PathBuf;

use dlbench_data::augment::Augment;
use dlbench_data::clean::{CleanOptions, Encoding, Missing};
use dlbench_data::csv::CsvOptions;
use serde::de::Deserializer;
use serde::Deserialize;

use super::de;

/// The `data:` section. Steps run in this order: load (or generate) the data and any separate
/// validation / test files, `windows`, `scale`, `reshape`, `upsample`, split off the
/// `validation` and `test` fractions (stratified by class for classifiers), then `normalize`
/// every split with the training split's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Where the samples come from: `synthetic`, `csv`, `npz`, `npy` or `idx`.
    pub source: DataSource,
    /// Sliding windows over one column of the loaded features.
    pub windows: Option<WindowsSpec>,
    /// Multiply every feature by this factor.
    pub scale: Option<f64>,
    /// The shape of each sample after loading (e.g. 64 values to `[1, 8, 8]`).
    pub reshape: Option<Vec<usize>>,
    /// Enlarge `[C, H, W]` samples by this integer factor (nearest neighbour).
    pub upsample: Option<usize>,
    /// Rescale each feature with the training split's statistics; `standardize: true` is
    /// `normalize: standard`.
    pub normalize: Option<Normalize>,
    /// The validation split: a fraction of the data (default 0.2), or its own file.
    pub validation: Holdout,
    /// The test split, scored once after training: a fraction of the data (default 0, none),
    /// or its own file.
    pub test: Holdout,
    /// Spread each class over the splits in proportion (default: for classification losses).
    pub stratify: Option<bool>,
    /// Random transforms of each training batch of images (`[C, H, W]` samples), drawn from
    /// the spec's seed and the step; the validation and test splits are never augmented.
    pub augment: Option<Augment>,
    /// How a CSV file is cleaned before use; `None` refuses missing values and text.
    pub clean: Option<CleanOptions>,
    /// The Debian package that installs the data files (`dataset-fashion-mnist`), named when
    /// a file is missing.
    pub package: Option<String>,
}

/// How features are rescaled, fitted on the training split only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// `(x - mean) / std` (scikit-learn's `StandardScaler`).
    Standard,
    /// `(x - min) / (max - min)`, into [0, 1] on the training split (`MinMaxScaler`).
    MinMax,
}

/// A held-out split: a fraction of the data, or a separate source of the same kind as the
/// data's, read with the same options (`test: {csv: test.csv}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Holdout {
    /// This share of all samples, in [0, 1).
    Fraction(f64),
    /// Its own file(s).
    Source(DataSource),
}

impl Holdout {
    /// The share of the data's samples it takes: 0 for a separate source.
    pub fn fraction(&self) -> f64 {
        match self {
            Holdout::Fraction(f) => *f,
            Holdout::Source(_) => 0.0,
        }
    }
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
        /// Graph inputs fed from arrays of the archive, one row per sample, instead of
        /// generated (`inputs: {eps: eps}`): input name, array name.
        inputs: Vec<(String, String)>,
    },
    /// `npy: {features: x.npy, targets: y.npy}`.
    Npy {
        /// The features file, relative to the spec's folder.
        features: PathBuf,
        /// The targets file; `None` for data without targets.
        targets: Option<PathBuf>,
    },
    /// `idx: {images: train-images-idx3-ubyte.gz, labels: train-labels-idx1-ubyte.gz}`: the
    /// MNIST format, plain or gzipped.
    Idx {
        /// The samples file, relative to the spec's folder (or absolute).
        images: PathBuf,
        /// The labels file; `None` for data without targets.
        labels: Option<PathBuf>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    synthetic: Option<SyntheticSpec>,
    csv: Option<PathBuf>,
    npz: Option<PathBuf>,
    npy: Option<NpyFiles>,
    idx: Option<IdxFiles>,
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
    #[serde(default, deserialize_with = "inputs_opt")]
    inputs: Option<Vec<(String, String)>>,
    windows: Option<WindowsSpec>,
    #[serde(default, deserialize_with = "finite_opt")]
    scale: Option<f64>,
    #[serde(default, deserialize_with = "de::positive_list_opt")]
    reshape: Option<Vec<usize>>,
    #[serde(default, deserialize_with = "de::positive_opt")]
    upsample: Option<usize>,
    #[serde(default)]
    standardize: bool,
    #[serde(default)]
    normalize: Option<Normalize>,
    #[serde(default)]
    validation: Option<RawHoldout>,
    #[serde(default)]
    test: Option<RawHoldout>,
    #[serde(default)]
    stratify: Option<bool>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    clean: Option<RawClean>,
    #[serde(default)]
    augment: Option<RawAugment>,
}

/// `augment: {flip: true, crop: 4, rotate: 10, translate: 2, noise: 0.05}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAugment {
    #[serde(default)]
    flip: bool,
    #[serde(default)]
    crop: usize,
    #[serde(default, deserialize_with = "de::non_negative")]
    rotate: f64,
    #[serde(default)]
    translate: usize,
    #[serde(default, deserialize_with = "de::non_negative")]
    noise: f64,
}

/// `clean: {missing: mean, drop_duplicates: true, categorical: [0, 4], encoding: one_hot}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClean {
    #[serde(default)]
    missing: Option<Missing>,
    #[serde(default)]
    drop_duplicates: bool,
    #[serde(default)]
    drop_constant_columns: bool,
    #[serde(default)]
    categorical: Vec<i64>,
    #[serde(default)]
    encoding: Encoding,
}

/// The file sources, at the top of `data:` or alone in a held-out split's mapping.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    csv: Option<PathBuf>,
    npz: Option<PathBuf>,
    npy: Option<NpyFiles>,
    idx: Option<IdxFiles>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpyFiles {
    features: PathBuf,
    targets: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdxFiles {
    images: PathBuf,
    labels: Option<PathBuf>,
}

/// `validation: 0.2` or `validation: {csv: valid.csv}`.
enum RawHoldout {
    Fraction(f64),
    Source(RawSource),
}

impl<'de> Deserialize<'de> for RawHoldout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::number_or_map::<D, RawSource>(d, "a fraction in [0, 1) or a mapping like {csv: FILE}")
            .and_then(|either| match either {
                Ok(f) if (0.0..1.0).contains(&f) => Ok(RawHoldout::Fraction(f)),
                Ok(f) => Err(serde::de::Error::custom(format!(
                    "expected a fraction in [0, 1) or a mapping like {{csv: FILE}}, got {f}"
                ))),
                Err(source) => Ok(RawHoldout::Source(source)),
            })
    }
}

fn inputs_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<(String, String)>>, D::Error> {
    de::ordered_map(d).map(Some)
}

fn finite_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    de::finite(d).map(Some)
}

impl RawSource {
    /// The one file source given, read with the options of `like` where it is `Some` (a
    /// held-out split's file takes its data's options); `Ok(None)` when none is given.
    fn into_source(self, like: Option<&DataSource>) -> Result<Option<DataSource>, String> {
        let source = match (self.csv, self.npz, self.npy, self.idx) {
            (None, None, None, None) => return Ok(None),
            (Some(path), None, None, None) => DataSource::Csv {
                path,
                options: CsvOptions::default(),
            },
            (None, Some(path), None, None) => DataSource::Npz {
                path,
                features: String::new(),
                targets: None,
                inputs: Vec::new(),
            },
            (None, None, Some(f), None) => DataSource::Npy {
                features: f.features,
                targets: f.targets,
            },
            (None, None, None, Some(f)) => DataSource::Idx {
                images: f.images,
                labels: f.labels,
            },
            _ => return Err("give exactly one data source: `csv`, `npz`, `npy` or `idx`".into()),
        };
        let Some(like) = like else {
            return Ok(Some(source));
        };
        Ok(Some(match (source, like) {
            (DataSource::Csv { path, .. }, DataSource::Csv { options, .. }) => DataSource::Csv {
                path,
                options: options.clone(),
            },
            (
                DataSource::Npz { path, .. },
                DataSource::Npz {
                    features,
                    targets,
                    inputs,
                    ..
                },
            ) => DataSource::Npz {
                path,
                features: features.clone(),
                targets: targets.clone(),
                inputs: inputs.clone(),
            },
            (s @ DataSource::Npy { .. }, DataSource::Npy { .. })
            | (s @ DataSource::Idx { .. }, DataSource::Idx { .. }) => s,
            (s, like) => {
                return Err(format!(
                    "a held-out split's file must be of the data's kind (`{}`), got `{}`",
                    like.kind(),
                    s.kind()
                ))
            }
        }))
    }
}

impl DataSource {
    /// The file the targets come from (`None` for synthetic data).
    pub fn targets_file(&self) -> Option<&std::path::Path> {
        match self {
            DataSource::Synthetic(_) => None,
            DataSource::Csv { path, .. } | DataSource::Npz { path, .. } => Some(path),
            DataSource::Npy {
                features, targets, ..
            } => Some(targets.as_ref().unwrap_or(features)),
            DataSource::Idx { images, labels } => Some(labels.as_ref().unwrap_or(images)),
        }
    }

    /// The source's key in a spec: `synthetic`, `csv`, `npz`, `npy` or `idx`.
    pub fn kind(&self) -> &'static str {
        match self {
            DataSource::Synthetic(_) => "synthetic",
            DataSource::Csv { .. } => "csv",
            DataSource::Npz { .. } => "npz",
            DataSource::Npy { .. } => "npy",
            DataSource::Idx { .. } => "idx",
        }
    }
}

impl TryFrom<RawData> for DataSpec {
    type Error = String;
    fn try_from(raw: RawData) -> Result<Self, String> {
        let csv_options =
            raw.skip_rows.is_some() || raw.delimiter.is_some() || raw.target_column.is_some();
        let npz_options = raw.features.is_some() || raw.targets.is_some() || raw.inputs.is_some();
        let files = RawSource {
            csv: raw.csv,
            npz: raw.npz,
            npy: raw.npy,
            idx: raw.idx,
        }
        .into_source(None)?;
        let mut source = match (raw.synthetic, files) {
            (Some(s), None) => {
                if s.classes.is_some() != (s.kind == SyntheticKind::Classification) {
                    return Err(
                        "`synthetic.classes` is required for kind `classification` and only there"
                            .to_string(),
                    );
                }
                DataSource::Synthetic(s)
            }
            (None, Some(source)) => source,
            _ => {
                return Err(
                    "give exactly one data source: `synthetic`, `csv`, `npz`, `npy` or `idx`"
                        .to_string(),
                )
            }
        };
        match &mut source {
            DataSource::Csv { options, .. } => {
                *options = CsvOptions {
                    skip_rows: raw.skip_rows.unwrap_or(0),
                    delimiter: raw.delimiter.unwrap_or(','),
                    target_column: raw.target_column,
                    ..CsvOptions::default()
                }
            }
            DataSource::Npz {
                features,
                targets,
                inputs,
                ..
            } => {
                *features = raw
                    .features
                    .ok_or("missing field `features`: the name of the npz array of samples")?;
                *targets = raw.targets;
                *inputs = raw.inputs.unwrap_or_default();
            }
            _ => {}
        }
        if csv_options && !matches!(source, DataSource::Csv { .. }) {
            return Err(
                "`skip_rows`, `delimiter` and `target_column` apply to `csv` data only".to_string(),
            );
        }
        if npz_options && !matches!(source, DataSource::Npz { .. }) {
            return Err(
                "`features`, `targets` and `inputs` name arrays of `npz` data only".to_string(),
            );
        }
        let holdout = |raw: Option<RawHoldout>, default: f64| -> Result<Holdout, String> {
            match raw {
                None => Ok(Holdout::Fraction(default)),
                Some(RawHoldout::Fraction(f)) => Ok(Holdout::Fraction(f)),
                Some(RawHoldout::Source(files)) => {
                    if matches!(source, DataSource::Synthetic(_)) {
                        return Err("synthetic data is split by fractions, not files".into());
                    }
                    files
                        .into_source(Some(&source))?
                        .map(Holdout::Source)
                        .ok_or_else(|| "a held-out split's mapping names no file".into())
                }
            }
        };
        let validation = holdout(raw.validation, 0.2)?;
        let test = holdout(raw.test, 0.0)?;
        if validation.fraction() + test.fraction() >= 1.0 {
            return Err(format!(
                "`validation` and `test` ({} + {}) leave nothing to train on",
                validation.fraction(),
                test.fraction()
            ));
        }
        let clean = raw.clean.map(|c| CleanOptions {
            missing: c.missing,
            drop_duplicates: c.drop_duplicates,
            drop_constant_columns: c.drop_constant_columns,
            categorical: c.categorical,
            encoding: c.encoding,
        });
        if clean.is_some() && !matches!(source, DataSource::Csv { .. }) {
            return Err("`clean` applies to `csv` data only".into());
        }
        let normalize = match (raw.standardize, raw.normalize) {
            (true, Some(_)) => return Err("give `normalize` or `standardize`, not both".into()),
            (true, None) => Some(Normalize::Standard),
            (false, n) => n,
        };
        Ok(DataSpec {
            source,
            windows: raw.windows,
            scale: raw.scale,
            reshape: raw.reshape,
            upsample: raw.upsample,
            normalize,
            validation,
            test,
            stratify: raw.stratify,
            package: raw.package,
            clean,
            augment: raw.augment.map(|a| Augment {
                flip: a.flip,
                crop_padding: a.crop,
                rotate_degrees: a.rotate,
                translate: a.translate,
                noise_std: a.noise,
            }),
        })
    }
}

impl<'de> Deserialize<'de> for DataSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via::<D, RawData, DataSpec>(d)
    }
}
