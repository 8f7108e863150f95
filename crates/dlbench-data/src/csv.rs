//! Numeric delimited text, plain or gzipped (detected from the file's first bytes, so
//! `digits.csv.gz` and a gzipped file without the suffix both work).
//!
//! Every kept line must have the same number of fields, each a number (surrounding spaces and
//! double quotes are ignored); blank lines are skipped. Errors give the 1-based line and column.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use dlbench_core::limits::{bytes_of, format_bytes, is_over_cap, BoundedReader, Limits};
use dlbench_core::Tensor;

use crate::bounds::{env_limits, not_data, read_up_to, NOT_FINITE};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// Lines to skip at the top (headers).
    pub skip_rows: usize,
    /// The field separator.
    pub delimiter: char,
    /// The 0-based index of the target column, negative counting from the end (`-1` is the
    /// last); `None` keeps every column as a feature.
    pub target_column: Option<i64>,
    /// Read the [`MISSING`] markers as missing values (NaN) instead of refusing them.
    pub missing_values: bool,
    /// Columns (0-based, negative from the end) whose fields are category names, each read
    /// as its index in the column's sorted names ([`Table::categories`]).
    pub categorical: Vec<i64>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            skip_rows: 0,
            delimiter: ',',
            target_column: None,
            missing_values: false,
            categorical: Vec::new(),
        }
    }
}

/// The fields that mean "no value" (pandas reads these as NaN too).
pub const MISSING: [&str; 9] = ["", "NA", "N/A", "NaN", "nan", "?", "NULL", "null", "None"];

/// A rectangular table of numbers, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Kept lines (after the skipped header lines and blank lines).
    pub rows: usize,
    /// Fields per line, the same for every line.
    pub columns: usize,
    /// `rows * columns` numbers, row-major; NaN for a missing value.
    pub values: Vec<f64>,
    /// The 1-based line of the file each row came from.
    pub lines: Vec<usize>,
    /// For each categorical column, its category names, sorted: a value `k` in that column
    /// stands for `categories[&column][k]`.
    pub categories: BTreeMap<usize, Vec<String>>,
}

/// The longest line read, in bytes: a longer one (a binary file, `/dev/zero`, a file without
/// line breaks) is refused before it can fill memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Reads every number of a CSV file, under the limits of the environment
/// ([`Limits::from_env`]); see [`read_table_with`].
pub fn read_table(path: &Path, skip_rows: usize, delimiter: char) -> Result<Table> {
    read_table_with(path, skip_rows, delimiter, &env_limits()?)
}

/// Reads every number of a CSV file, streaming it: a regular file over the memory limit is
/// refused before it is read, a gzipped one may expand to [`Limits::decompressed_cap`] of its
/// size, anything else (a pipe, a device) is stopped at the memory limit, and the table is
/// checked against the memory limit as it grows.
pub fn read_table_with(
    path: &Path,
    skip_rows: usize,
    delimiter: char,
    limits: &Limits,
) -> Result<Table> {
    let options = CsvOptions {
        skip_rows,
        delimiter,
        ..CsvOptions::default()
    };
    read_fields(path, &options, limits)
}

/// [`read_table_with`] reading missing values and categorical columns as `options` says.
pub fn read_fields(path: &Path, options: &CsvOptions, limits: &Limits) -> Result<Table> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let known_len = meta.is_file().then_some(meta.len());
    read_source(file, known_len, path, options, limits)
}

/// [`read_table_with`] over any reader (an in-memory buffer, a socket); `path` only names
/// the input in errors. A gzipped stream may expand to [`Limits::decompressed_cap`] of an
/// unknown size, that is the floor of `dlbench_core::limits::EXPANSION_FLOOR`.
pub fn read_table_from(
    reader: impl Read,
    path: &Path,
    skip_rows: usize,
    delimiter: char,
    limits: &Limits,
) -> Result<Table> {
    let options = CsvOptions {
        skip_rows,
        delimiter,
        ..CsvOptions::default()
    };
    read_source(reader, None, path, &options, limits)
}

/// Picks plain or gzip from the first two bytes and bounds what may come through.
fn read_source(
    mut source: impl Read,
    known_len: Option<u64>,
    path: &Path,
    options: &CsvOptions,
    limits: &Limits,
) -> Result<Table> {
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut source, &mut magic).map_err(|e| Error::io(path, e))?;
    let source = (&magic[..got]).chain(source);
    let (text, bound): (Box<dyn Read + '_>, Bound) = if magic[..got] == [0x1f, 0x8b] {
        let cap = limits.decompressed_cap(known_len.unwrap_or(0));
        let gunzip = flate2::read::MultiGzDecoder::new(source);
        (
            Box::new(BoundedReader::new(gunzip, cap)),
            Bound { cap, gzip: true },
        )
    } else {
        if let Some(len) = known_len {
            limits
                .check_memory("reading it", len)
                .map_err(|e| Error::file(path, e.to_string()))?;
        }
        let cap = limits.memory_bytes;
        (
            Box::new(BoundedReader::new(source, cap)),
            Bound { cap, gzip: false },
        )
    };
    parse(BufReader::new(text), path, options, limits, bound)
}

/// How the text is bounded, to explain an error while reading it.
#[derive(Clone, Copy)]
struct Bound {
    /// The most bytes of text that may come through.
    cap: u64,
    /// Whether the text comes out of a gzip decoder.
    gzip: bool,
}

impl Bound {
    /// What a failed read of line `number` means.
    fn error(self, e: std::io::Error, number: usize, path: &Path, limits: &Limits) -> Error {
        let message = if is_over_cap(&e) && self.gzip {
            limits.decompression_message(self.cap)
        } else if is_over_cap(&e) {
            format!(
                "the file holds more than {}, over the memory limit (DLBENCH_MAX_MEMORY; set \
                 it higher to allow more)",
                format_bytes(self.cap)
            )
        } else if self.gzip {
            format!("cannot decompress (gzip): {e}")
        } else {
            return Error::io(path, e);
        };
        Error::file(path, format!("line {number}: {message}"))
    }
}

/// Parses the lines of `text`, which `bound` bounds.
fn parse(
    mut text: impl BufRead,
    path: &Path,
    options: &CsvOptions,
    limits: &Limits,
    bound: Bound,
) -> Result<Table> {
    let skip_rows = options.skip_rows;
    let mut table = Table {
        rows: 0,
        columns: 0,
        values: Vec::new(),
        lines: Vec::new(),
        categories: BTreeMap::new(),
    };
    // Category names by first appearance, per column; sorted once the table is read.
    let mut names: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut raw = Vec::new();
    let mut number = 0usize;
    loop {
        number += 1;
        let read =
            read_line(&mut text, &mut raw).map_err(|e| bound.error(e, number, path, limits))?;
        match read {
            Line::End => break,
            Line::TooLong => {
                return Err(Error::file(
                    path,
                    format!(
                        "line {number} is longer than {} (is this a text file?)",
                        format_bytes(MAX_LINE_BYTES as u64)
                    ),
                ))
            }
            Line::Read => {}
        }
        if number <= skip_rows {
            continue;
        }
        let line = std::str::from_utf8(&raw)
            .map_err(|_| Error::file(path, format!("line {number}: not UTF-8 text")))?;
        if line.trim().is_empty() {
            continue;
        }
        push_row(&mut table, &mut names, line, number, path, options, limits)?;
    }
    if table.rows == 0 {
        return Err(Error::file(
            path,
            format!("no data after skipping {skip_rows} line(s)"),
        ));
    }
    sort_categories(&mut table, names);
    Ok(table)
}

/// Renumbers each categorical column's values by the sorted order of its names (scikit-learn's
/// `LabelEncoder` order), and records the names.
fn sort_categories(table: &mut Table, names: BTreeMap<usize, Vec<String>>) {
    for (column, first_seen) in names {
        let mut sorted = first_seen.clone();
        sorted.sort();
        let new_code: Vec<f64> = first_seen
            .iter()
            .map(|n| sorted.binary_search(n).expect("present") as f64)
            .collect();
        for row in table.values.chunks_exact_mut(table.columns) {
            if !row[column].is_nan() {
                row[column] = new_code[row[column] as usize];
            }
        }
        table.categories.insert(column, sorted);
    }
}

/// The 0-based index of `column` (negative from the end) in a table of `columns`.
pub fn column_index(column: i64, columns: usize) -> Option<usize> {
    let cols = columns as i64;
    let index = if column < 0 { cols + column } else { column };
    (0..cols).contains(&index).then_some(index as usize)
}

/// Parses one line's fields onto the table, growing it only within the memory limit.
fn push_row(
    table: &mut Table,
    names: &mut BTreeMap<usize, Vec<String>>,
    line: &str,
    number: usize,
    path: &Path,
    options: &CsvOptions,
    limits: &Limits,
) -> Result<()> {
    let start = table.values.len();
    // Resolved per line (a negative index counts from this line's end); only when asked, so
    // that a plain numeric file pays nothing for it.
    let categorical: Vec<usize> = if options.categorical.is_empty() {
        Vec::new()
    } else {
        let fields = line.split(options.delimiter).count();
        options
            .categorical
            .iter()
            .filter_map(|&c| column_index(c, fields))
            .collect()
    };
    for (column, field) in line.split(options.delimiter).enumerate() {
        let field = field.trim().trim_matches('"');
        let at = || format!("line {number}, column {}: `{field}`", column + 1);
        let value = if MISSING.contains(&field) {
            if !options.missing_values {
                return Err(Error::file(
                    path,
                    format!(
                        "line {number}, column {}: missing value (`{field}`); to clean it, set \
                         `clean: {{missing: drop}}` (or mean, median, most_frequent)",
                        column + 1
                    ),
                ));
            }
            f64::NAN
        } else if categorical.contains(&column) {
            let seen = names.entry(column).or_default();
            let code = seen.iter().position(|n| n == field).unwrap_or_else(|| {
                seen.push(field.to_string());
                seen.len() - 1
            });
            code as f64
        } else {
            field.parse::<f64>().map_err(|_| {
                let categories = format!(
                    "if column {} holds categories, list it in `clean: {{categorical: ...}}`",
                    column + 1
                );
                let hint = if table.rows == 0 {
                    format!(" (is it a header? set skip_rows; or {categories})")
                } else {
                    format!(" ({categories})")
                };
                Error::file(path, format!("{} is not a number{hint}", at()))
            })?
        };
        // A missing value was let through above; a number that parses to NaN was not.
        let missing = MISSING.contains(&field);
        if let Some(why) = not_data(value).filter(|_| !missing) {
            let why = if value.is_finite() {
                why
            } else {
                "not finite".to_string()
            };
            return Err(Error::file(
                path,
                format!("{} is {why}: {NOT_FINITE}", at()),
            ));
        }
        if table.values.len() == table.values.capacity() {
            // Grow by doubling, but check the new allocation before making it.
            let grown = table.values.capacity().saturating_mul(2).max(64);
            limits
                .check_memory(
                    &format!("line {number}: the table of {} rows", table.rows + 1),
                    bytes_of(grown, std::mem::size_of::<f64>()),
                )
                .map_err(|e| Error::file(path, e.to_string()))?;
            table.values.reserve_exact(grown - table.values.len());
        }
        table.values.push(value);
    }
    let columns = table.values.len() - start;
    if table.rows == 0 {
        table.columns = columns;
    } else if columns != table.columns {
        return Err(Error::file(
            path,
            format!(
                "line {number} has {columns} columns, expected {} like the lines before it",
                table.columns
            ),
        ));
    }
    table.rows += 1;
    table.lines.push(number);
    Ok(())
}

/// What [`read_line`] found.
enum Line {
    /// A line (possibly empty, possibly the last one without a line break) is in the buffer.
    Read,
    /// The input has ended.
    End,
    /// The line is longer than [`MAX_LINE_BYTES`].
    TooLong,
}

/// Reads one line into `line` without its `\n` or `\r\n`, holding at most
/// [`MAX_LINE_BYTES`] of it.
fn read_line(text: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    line.clear();
    let mut any = false;
    loop {
        let buf = text.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() > MAX_LINE_BYTES {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        text.consume(used);
        if done.is_some() {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(if any { Line::Read } else { Line::End })
}

/// Reads a CSV file into features f32 `[rows, columns]` and, with a target column, targets
/// f32 `[rows, 1]` (see [`Dataset::with_class_targets`] for class indices), under the limits of
/// the environment ([`Limits::from_env`]).
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    read_csv_with(path, options, &env_limits()?)
}

/// [`read_csv`] under `limits`; see [`read_table_with`] for how the file is bounded.
pub fn read_csv_with(path: &Path, options: &CsvOptions, limits: &Limits) -> Result<Dataset> {
    let table = read_fields(path, options, limits)?;
    into_dataset(table, options.target_column, path)
}

/// Features f32 `[rows, columns]` and, with a target column, targets f32 `[rows, 1]`; `path`
/// names the file in errors.
pub(crate) fn into_dataset(table: Table, target: Option<i64>, path: &Path) -> Result<Dataset> {
    let Some(target) = target else {
        let features = Tensor::f64(vec![table.rows, table.columns], table.values)?;
        return Dataset::new(features, None);
    };
    let cols = table.columns as i64;
    let index = match column_index(target, table.columns) {
        Some(index) if cols >= 2 => index,
        _ => {
            return Err(Error::file(
                path,
                format!(
                    "target_column {target} is out of range for {cols} columns (expected \
                     -{cols}..{})",
                    cols - 1
                ),
            ))
        }
    };
    let mut features = Vec::with_capacity(table.rows * (table.columns - 1));
    let mut targets = Vec::with_capacity(table.rows);
    for row in table.values.chunks_exact(table.columns) {
        for (c, &v) in row.iter().enumerate() {
            if c == index {
                targets.push(v as f32);
            } else {
                features.push(v as f32);
            }
        }
    }
    Dataset::new(
        Tensor::f32(vec![table.rows, table.columns - 1], features)?,
        Some(Tensor::f32(vec![table.rows, 1], targets)?),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dlbench-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_features_and_a_target_column() {
        let path = fixture("plain.csv", b"\"a\",\"b\",\"label\"\n1, 2, 0\n3,4,1\n\n");
        let options = CsvOptions {
            skip_rows: 1,
            target_column: Some(-1),
            ..CsvOptions::default()
        };
        let data = read_csv(&path, &options).unwrap();
        assert_eq!(data.features.shape(), [2, 2]);
        assert_eq!(data.features.as_f32().unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(data.targets.unwrap().as_f32().unwrap(), [0.0, 1.0]);
        let first = CsvOptions {
            target_column: Some(0),
            ..options
        };
        let data = read_csv(&path, &first).unwrap();
        assert_eq!(data.targets.unwrap().as_f32().unwrap(), [1.0, 3.0]);
    }

    #[test]
    fn reads_gzip_and_other_delimiters() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"1;2\n3;4\n").unwrap();
        let path = fixture("semi.csv.gz", &gz.finish().unwrap());
        let table = read_table(&path, 0, ';').unwrap();
        assert_eq!((table.rows, table.columns), (2, 2));
        assert_eq!(table.values, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let path = fixture("bad.csv", b"1,2,3\n4,x,6\n");
        let err = read_table(&path, 0, ',').unwrap_err().to_string();
        assert!(
            err.contains(
                "bad.csv: line 2, column 2: `x` is not a number (if column 2 holds \
                          categories, list it in `clean: {categorical: ...}`)"
            ),
            "{err}"
        );
        let path = fixture("ragged.csv", b"1,2,3\n4,5\n");
        let err = read_table(&path, 0, ',').unwrap_err().to_string();
        assert!(err.contains("line 2 has 2 columns, expected 3"), "{err}");
        let path = fixture("header.csv", b"a,b\n1,2\n");
        let err = read_table(&path, 0, ',').unwrap_err().to_string();
        assert!(
            err.contains("line 1, column 1: `a` is not a number (is it a header?"),
            "{err}"
        );
        let options = CsvOptions {
            target_column: Some(5),
            skip_rows: 1,
            ..CsvOptions::default()
        };
        let err = read_csv(&path, &options).unwrap_err().to_string();
        assert!(
            err.contains("target_column 5 is out of range for 2 columns"),
            "{err}"
        );
        let err = read_table(&path.with_file_name("nope.csv"), 0, ',').unwrap_err();
        assert!(err.to_string().contains("nope.csv"), "{err}");
    }

    #[test]
    fn reads_the_shipped_datasets() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        let options = CsvOptions {
            skip_rows: 1,
            target_column: Some(-1),
            ..CsvOptions::default()
        };
        let cancer = read_csv(&data.join("breast_cancer.csv"), &options).unwrap();
        assert_eq!(cancer.features.shape(), [569, 30]);
        let digits = read_csv(
            &data.join("digits.csv.gz"),
            &CsvOptions {
                skip_rows: 0,
                ..options
            },
        )
        .unwrap();
        assert_eq!(digits.features.shape(), [1797, 64]);
        let sunspots = read_table(&data.join("sunspots.csv"), 1, ',').unwrap();
        assert_eq!((sunspots.rows, sunspots.columns), (309, 2));
    }
}
