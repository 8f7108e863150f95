//! Loading the `data:` section: read the sources, transform each, fit targets to the loss,
//! split, then rescale with the training split's statistics.

use std::path::Path;

use dlbench_core::limits::{bytes_of, Limits};
use dlbench_core::{Dim, Graph, InputRole, Loss};
use dlbench_data::clean::{read_clean_csv, CleaningReport, Imputer, Missing};
use dlbench_data::idx::read_idx_dataset;
use dlbench_data::npy::{read_npy, read_npz};
use dlbench_data::preprocess::{self, Rescaler};
use dlbench_data::{synthetic, Dataset, Splits};

use super::{DataSource, DataSpec, Holdout, Normalize, SyntheticKind, SyntheticSpec};

/// Each categorical column (0-based) of the training file and its category names.
type Categories = std::collections::BTreeMap<usize, Vec<String>>;

impl DataSpec {
    /// Loads and prepares the data for `graph` trained with `loss`: checks that samples match
    /// the graph's data input and targets match its first output, then splits with `seed`
    /// (stratified by class for classification losses unless `stratify` says otherwise).
    /// Files are relative to `dir`.
    pub fn load(&self, graph: &Graph, loss: Loss, seed: u64, dir: &Path) -> Result<Splits, String> {
        let input = data_input(graph)?;
        let sample: Vec<usize> = input.shape[1..].iter().filter_map(|d| d.known()).collect();
        let prepare = |source: &DataSource,
                       split: &str,
                       categories: Option<&Categories>|
         -> Result<(Dataset, Option<CleaningReport>), String> {
            let (data, report) = self.read(source, &sample, seed, dir, categories)?;
            let data = self.transform(data)?;
            if data.sample_shape() != sample {
                return Err(format!(
                    "{split}the data's samples have shape {:?}, the model's input `{}` expects \
                     {:?}",
                    data.sample_shape(),
                    input.name,
                    sample
                ));
            }
            // Target errors name the file holding the targets.
            let file = source
                .targets_file()
                .map(|f| format!("{}: ", dir.join(f).display()))
                .unwrap_or_default();
            let data = fit_targets(data, graph, loss).map_err(|e| format!("{split}{file}{e}"))?;
            Ok((data, report))
        };
        if self.augment.is_some() && sample.len() != 3 {
            return Err(format!(
                "`augment` transforms images, samples [C, H, W]; the model's input `{}` takes \
                 {sample:?}",
                input.name
            ));
        }
        if let DataSource::Npz { inputs, .. } = &self.source {
            for (name, _) in inputs {
                let noise = graph.inputs.iter().any(|i| {
                    i.value.name == *name
                        && matches!(i.role, InputRole::Normal | InputRole::DropoutMask { .. })
                });
                if !noise {
                    return Err(format!(
                        "inputs: `{name}` is not a noise input of the model (a `normal` or \
                         dropout-mask input); the data and targets feed the others"
                    ));
                }
            }
        }
        let (data, report) = prepare(&self.source, "", None)?;
        // A held-out file's categories are numbered as the training file's.
        let categories: Option<Categories> = report.as_ref().map(|r| {
            r.categories
                .iter()
                .map(|(column, names)| (column - 1, names.clone()))
                .collect()
        });
        let classifier = matches!(
            loss,
            Loss::CrossEntropy | Loss::BinaryCrossEntropy | Loss::BinaryCrossEntropyWithLogits
        );
        let holdout = dlbench_data::Holdout {
            validation: self.validation.fraction(),
            test: self.test.fraction(),
        };
        let mut splits = data
            .split(holdout, seed, self.stratify.unwrap_or(classifier))
            .map_err(|e| e.to_string())?;
        splits.cleaning.extend(report);
        for (holdout, name) in [(&self.validation, "validation"), (&self.test, "test")] {
            if let Holdout::Source(source) = holdout {
                let (data, report) = prepare(source, &format!("{name}: "), categories.as_ref())?;
                *if name == "test" {
                    &mut splits.test
                } else {
                    &mut splits.validation
                } = data;
                splits.cleaning.extend(report);
            }
        }
        self.impute(&mut splits)?;
        if let Some(normalize) = self.normalize {
            let fit = match normalize {
                Normalize::Standard => Rescaler::standard,
                Normalize::MinMax => Rescaler::min_max,
            };
            let scaler = fit(&splits.train.features).map_err(|e| e.to_string())?;
            for split in [&mut splits.train, &mut splits.validation, &mut splits.test] {
                if !split.is_empty() {
                    split.features = scaler.apply(&split.features).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(splits)
    }

    /// Fills the missing values that cleaning left with the training split's statistics, and
    /// counts them in the first cleaning report (the training file's).
    fn impute(&self, splits: &mut Splits) -> Result<(), String> {
        let strategy = match self.clean.as_ref().and_then(|c| c.missing) {
            Some(Missing::Drop) | None => return Ok(()),
            Some(strategy) => strategy,
        };
        let imputer = Imputer::fit(&splits.train.features, strategy).map_err(|e| e.to_string())?;
        let mut filled = 0;
        for split in [&mut splits.train, &mut splits.validation, &mut splits.test] {
            if !split.is_empty() {
                let (features, n) = imputer.apply(&split.features).map_err(|e| e.to_string())?;
                split.features = features;
                filled += n;
            }
        }
        if let Some(report) = splits.cleaning.first_mut() {
            report.values_imputed = filled;
        }
        Ok(())
    }

    /// The samples of one source, as its files hold them, and what cleaning did to them.
    fn read(
        &self,
        source: &DataSource,
        sample: &[usize],
        seed: u64,
        dir: &Path,
        categories: Option<&Categories>,
    ) -> Result<(Dataset, Option<CleaningReport>), String> {
        let err = |e: dlbench_data::Error| match (&e, &self.package) {
            (dlbench_data::Error::Io { source, .. }, Some(package))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                format!(
                    "{e}; the Debian package `{package}` installs it (apt-get install {package})"
                )
            }
            _ => e.to_string(),
        };
        if let (DataSource::Csv { path, options }, Some(clean)) = (source, &self.clean) {
            let limits = Limits::from_env().map_err(|e| e.to_string())?;
            let (data, report) =
                read_clean_csv(&dir.join(path), options, clean, categories, &limits)
                    .map_err(err)?;
            return Ok((data, Some(report)));
        }
        let data = match source {
            DataSource::Synthetic(s) => generate(s, s.shape.as_deref().unwrap_or(sample), seed),
            DataSource::Csv { path, options } => {
                dlbench_data::csv::read_csv(&dir.join(path), options).map_err(err)
            }
            DataSource::Npz {
                path,
                features,
                targets,
                inputs,
            } => {
                let path = dir.join(path);
                let targets = targets
                    .as_ref()
                    .map(|t| read_npz(&path, t))
                    .transpose()
                    .map_err(err)?;
                let mut data =
                    Dataset::new(read_npz(&path, features).map_err(err)?, targets).map_err(err)?;
                for (input, array) in inputs {
                    let values = read_npz(&path, array).map_err(err)?;
                    data = data
                        .with_input(input, values)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                Ok(data)
            }
            DataSource::Npy { features, targets } => {
                let targets = targets
                    .as_ref()
                    .map(|t| read_npy(&dir.join(t)))
                    .transpose()
                    .map_err(err)?;
                Dataset::new(read_npy(&dir.join(features)).map_err(err)?, targets).map_err(err)
            }
            DataSource::Idx { images, labels } => {
                let labels = labels.as_ref().map(|l| dir.join(l));
                read_idx_dataset(&dir.join(images), labels.as_deref()).map_err(err)
            }
        }?;
        Ok((data, None))
    }

    /// `windows`, `scale`, `reshape` and `upsample`, in that order.
    fn transform(&self, mut data: Dataset) -> Result<Dataset, String> {
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
        Ok(data)
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
            crate::loss_name(loss)
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
