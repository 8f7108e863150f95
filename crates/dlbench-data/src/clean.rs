//! Cleaning a CSV table before it becomes a dataset: rows with missing values dropped (or
//! their values left for an [`Imputer`] fitted on the training split), duplicate rows and
//! constant columns dropped, categorical columns label- or one-hot-encoded. What was done is
//! counted in a [`CleaningReport`], which the results record keeps.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use dlbench_core::limits::{bytes_of, Limits};
use dlbench_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::csv::{column_index, into_dataset, read_fields, CsvOptions, Table};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// What to do with missing values. A missing category of a one-hot encoded column is not
/// imputed: it is encoded as no category (all zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Drop every row holding one.
    Drop,
    /// Fill with the training split's mean of the feature.
    Mean,
    /// Fill with the training split's median of the feature.
    Median,
    /// Fill with the training split's most frequent value of the feature (the smallest on
    /// ties, as scikit-learn's `SimpleImputer`).
    MostFrequent,
}

/// How a categorical feature becomes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One 0/1 column per category, in sorted order (`OneHotEncoder`).
    #[default]
    OneHot,
    /// The category's index in sorted order (`OrdinalEncoder`).
    Label,
}

/// The cleaning a spec asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CleanOptions {
    /// Missing values: refused when `None`.
    pub missing: Option<Missing>,
    /// Drop rows equal to an earlier row.
    pub drop_duplicates: bool,
    /// Drop feature columns holding a single value.
    pub drop_constant_columns: bool,
    /// Columns of category names (0-based, negative from the end). A categorical target
    /// column is always label-encoded.
    pub categorical: Vec<i64>,
    /// How categorical features are encoded.
    pub encoding: Encoding,
}

/// What cleaning did to one file, for the results record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CleaningReport {
    /// The file cleaned.
    pub file: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Fields holding a missing-value marker.
    pub missing_values: usize,
    /// Rows dropped for a missing value (all of them under `missing: drop`, else those
    /// missing their target, which cannot be imputed).
    pub rows_dropped_missing: usize,
    /// Missing feature values filled by the imputer (counted over every split).
    pub values_imputed: usize,
    /// Missing values of one-hot encoded columns, encoded as no category (all zeros) rather
    /// than imputed.
    #[serde(default)]
    pub categories_missing: usize,
    /// Rows dropped as duplicates of an earlier row.
    pub duplicates_dropped: usize,
    /// 1-based columns of the file dropped as constant.
    pub constant_columns_dropped: Vec<usize>,
    /// Each categorical column (1-based) and its categories, in encoding order.
    pub categories: BTreeMap<usize, Vec<String>>,
    /// Rows kept.
    pub rows_kept: usize,
}

impl CleaningReport {
    /// One line for people: `data.csv: 344 rows read; 19 missing values: 2 rows dropped, 9
    /// values imputed; 3 duplicate rows dropped; constant columns 7 dropped; categorical
    /// columns 1 (3 categories), 5 (2); 339 rows kept`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} rows read", self.rows_read)];
        if self.missing_values > 0 {
            let mut missing = format!(
                "{} missing values: {} rows dropped, {} values imputed",
                self.missing_values, self.rows_dropped_missing, self.values_imputed
            );
            if self.categories_missing > 0 {
                missing.push_str(&format!(
                    ", {} categories left empty (one-hot zeros)",
                    self.categories_missing
                ));
            }
            parts.push(missing);
        }
        parts.push(format!(
            "{} duplicate rows dropped",
            self.duplicates_dropped
        ));
        if !self.constant_columns_dropped.is_empty() {
            let list: Vec<String> = self
                .constant_columns_dropped
                .iter()
                .map(usize::to_string)
                .collect();
            parts.push(format!("constant columns {} dropped", list.join(", ")));
        }
        if !self.categories.is_empty() {
            let list: Vec<String> = self
                .categories
                .iter()
                .map(|(c, names)| format!("{c} ({} categories)", names.len()))
                .collect();
            parts.push(format!("categorical columns {}", list.join(", ")));
        }
        parts.push(format!("{} rows kept", self.rows_kept));
        format!("{}: {}", self.file, parts.join("; "))
    }
}

/// Reads a CSV file and cleans it as `clean` says. `categories` are the training file's
/// (for a validation or test file, so that codes and one-hot columns mean the same); a
/// category they lack is an error naming the line.
pub fn read_clean_csv(
    path: &Path,
    options: &CsvOptions,
    clean: &CleanOptions,
    categories: Option<&BTreeMap<usize, Vec<String>>>,
    limits: &Limits,
) -> Result<(Dataset, CleaningReport)> {
    let options = CsvOptions {
        missing_values: clean.missing.is_some(),
        categorical: clean.categorical.clone(),
        ..options.clone()
    };
    let mut table = read_fields(path, &options, limits)?;
    if let Some(known) = categories {
        recode(&mut table, known, path)?;
    }
    let target = match options.target_column {
        Some(t) => Some(column_index(t, table.columns).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "target_column {t} is out of range for {} columns",
                    table.columns
                ),
            )
        })?),
        None => None,
    };
    let mut report = CleaningReport {
        file: path.display().to_string(),
        rows_read: table.rows,
        missing_values: table.values.iter().filter(|v| v.is_nan()).count(),
        categories: table
            .categories
            .iter()
            .map(|(c, names)| (c + 1, names.clone()))
            .collect(),
        ..CleaningReport::default()
    };
    let before = table.rows;
    retain_rows(&mut table, |row| match clean.missing {
        Some(Missing::Drop) => row.iter().all(|v| !v.is_nan()),
        _ => target.is_none_or(|t| !row[t].is_nan()),
    });
    report.rows_dropped_missing = before - table.rows;
    if clean.drop_duplicates {
        let before = table.rows;
        let mut seen = HashSet::new();
        retain_rows(&mut table, |row| {
            seen.insert(row.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        });
        report.duplicates_dropped = before - table.rows;
    }
    let mut dropped: Vec<usize> = Vec::new();
    if clean.drop_constant_columns && table.rows > 0 {
        dropped = (0..table.columns)
            .filter(|&c| Some(c) != target && is_constant(&table, c))
            .collect();
        report.constant_columns_dropped = dropped.iter().map(|c| c + 1).collect();
    }
    report.rows_kept = table.rows;
    let one_hot: BTreeMap<usize, usize> = match clean.encoding {
        Encoding::OneHot => table
            .categories
            .iter()
            .filter(|(c, _)| Some(**c) != target)
            .map(|(c, names)| (*c, names.len()))
            .collect(),
        Encoding::Label => BTreeMap::new(),
    };
    report.categories_missing = table
        .values
        .chunks_exact(table.columns.max(1))
        .map(|row| one_hot.keys().filter(|&&c| row[c].is_nan()).count())
        .sum();
    let (table, target) = reshape_columns(table, &dropped, &one_hot, target, path, limits)?;
    let dataset = into_dataset(table, target.map(|t| t as i64), path)?;
    Ok((dataset, report))
}

/// Renumbers the categorical columns of a held-out file by the training file's categories.
fn recode(table: &mut Table, known: &BTreeMap<usize, Vec<String>>, path: &Path) -> Result<()> {
    let columns = table.columns;
    for (column, names) in std::mem::take(&mut table.categories) {
        let train = known.get(&column).cloned().unwrap_or_default();
        let map: Vec<Option<usize>> = names
            .iter()
            .map(|n| train.iter().position(|t| t == n))
            .collect();
        for (row, line) in table.values.chunks_exact_mut(columns).zip(&table.lines) {
            if row[column].is_nan() {
                continue;
            }
            let code = row[column] as usize;
            row[column] = map[code].ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "line {line}, column {}: category `{}` is not in the training data \
                         (which has {train:?})",
                        column + 1,
                        names[code]
                    ),
                )
            })? as f64;
        }
        table.categories.insert(column, train);
    }
    Ok(())
}

/// Keeps the rows (and their line numbers) for which `keep` is true.
fn retain_rows(table: &mut Table, mut keep: impl FnMut(&[f64]) -> bool) {
    let columns = table.columns.max(1);
    let (mut values, mut lines) = (Vec::new(), Vec::new());
    for (row, &line) in table.values.chunks_exact(columns).zip(&table.lines) {
        if keep(row) {
            values.extend_from_slice(row);
            lines.push(line);
        }
    }
    table.rows = lines.len();
    table.values = values;
    table.lines = lines;
}

/// Whether column `c` holds at most one distinct present value.
fn is_constant(table: &Table, c: usize) -> bool {
    let mut present = table
        .values
        .chunks_exact(table.columns)
        .map(|row| row[c])
        .filter(|v| !v.is_nan());
    match present.next() {
        Some(first) => present.all(|v| v == first),
        None => true,
    }
}

/// The table without the `dropped` columns and with each `one_hot` column (of `k`
/// categories) spread over `k` 0/1 columns (all 0 for a missing value: no category, as
/// scikit-learn's `OneHotEncoder(handle_unknown="ignore")` encodes what it cannot name); the
/// target column's new index. The encoded table must fit the memory limit: a column of many
/// categories multiplies the table's width.
fn reshape_columns(
    table: Table,
    dropped: &[usize],
    one_hot: &BTreeMap<usize, usize>,
    target: Option<usize>,
    path: &Path,
    limits: &Limits,
) -> Result<(Table, Option<usize>)> {
    let width = |c: usize| {
        if dropped.contains(&c) {
            0
        } else {
            one_hot.get(&c).copied().unwrap_or(1)
        }
    };
    let columns: usize = (0..table.columns).map(width).sum();
    let new_target = target.map(|t| (0..t).map(width).sum());
    let encoded = |e: dlbench_core::Error| Error::file(path, e.to_string());
    let n = table.rows.saturating_mul(columns);
    limits
        .check_memory(
            &format!(
                "the encoded table of {} rows x {columns} columns",
                table.rows
            ),
            bytes_of(n, std::mem::size_of::<f64>()),
        )
        .map_err(encoded)?;
    let mut values = Vec::with_capacity(n);
    for row in table.values.chunks_exact(table.columns.max(1)) {
        for (c, &v) in row.iter().enumerate() {
            match (width(c), one_hot.get(&c)) {
                (0, _) => {}
                (k, Some(_)) => values
                    .extend((0..k).map(|i| f64::from(u8::from(!v.is_nan() && v as usize == i)))),
                _ => values.push(v),
            }
        }
    }
    let table = Table {
        columns,
        values,
        categories: BTreeMap::new(),
        ..table
    };
    Ok((table, new_target))
}

/// Fills missing feature values (NaN) with a statistic of each feature over the training
/// split (scikit-learn's `SimpleImputer`).
#[derive(Debug, Clone, PartialEq)]
pub struct Imputer {
    /// The value that fills each feature, flattened row-major.
    pub fill: Vec<f64>,
}

impl Imputer {
    /// The statistic of each feature's present values over the rows of `features`; a feature
    /// with no present value fills with 0.
    pub fn fit(features: &Tensor, strategy: Missing) -> Result<Imputer> {
        let rows = features.shape().first().copied().unwrap_or(0);
        let width = features.len() / rows.max(1);
        let values = features.to_f64_vec();
        let fill = (0..width)
            .map(|c| {
                let mut present: Vec<f64> = values
                    .iter()
                    .skip(c)
                    .step_by(width.max(1))
                    .copied()
                    .filter(|v| !v.is_nan())
                    .collect();
                if present.is_empty() {
                    return 0.0;
                }
                present.sort_by(f64::total_cmp);
                match strategy {
                    Missing::Mean | Missing::Drop => {
                        present.iter().sum::<f64>() / present.len() as f64
                    }
                    Missing::Median => {
                        let n = present.len();
                        if n % 2 == 1 {
                            present[n / 2]
                        } else {
                            (present[n / 2 - 1] + present[n / 2]) / 2.0
                        }
                    }
                    Missing::MostFrequent => most_frequent(&present),
                }
            })
            .collect();
        Ok(Imputer { fill })
    }

    /// `features` with each NaN replaced by its feature's fill value, and how many were.
    pub fn apply(&self, features: &Tensor) -> Result<(Tensor, usize)> {
        let width = self.fill.len().max(1);
        let mut filled = 0;
        let values: Vec<f32> = features
            .to_f64_vec()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v.is_nan() {
                    filled += 1;
                    self.fill[i % width] as f32
                } else {
                    v as f32
                }
            })
            .collect();
        Ok((Tensor::f32(features.shape().to_vec(), values)?, filled))
    }
}

/// The most frequent of sorted values, the smallest on ties.
fn most_frequent(sorted: &[f64]) -> f64 {
    let (mut best, mut best_count) = (sorted[0], 0);
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|&&v| v == sorted[i]).count();
        if j > best_count {
            (best, best_count) = (sorted[i], j);
        }
        i += j;
    }
    best
}
