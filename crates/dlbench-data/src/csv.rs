//! Numeric delimited text, plain or gzipped (detected from the file's first bytes, so
//! `digits.csv.gz` and a gzipped file without the suffix both work).
//!
//! Every kept line must have the same number of fields, each a number (surrounding spaces and
//! double quotes are ignored); blank lines are skipped. Errors give the 1-based line and column.

use std::io::Read;
use std::path::Path;

use dlbench_core::Tensor;

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
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            skip_rows: 0,
            delimiter: ',',
            target_column: None,
        }
    }
}

/// A rectangular table of numbers, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Kept lines (after the skipped header lines and blank lines).
    pub rows: usize,
    /// Fields per line, the same for every line.
    pub columns: usize,
    /// `rows * columns` numbers, row-major.
    pub values: Vec<f64>,
}

/// Reads every number of a CSV file.
pub fn read_table(path: &Path, skip_rows: usize, delimiter: char) -> Result<Table> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| Error::file(path, format!("cannot decompress (gzip): {e}")))?;
        text
    } else {
        String::from_utf8(raw).map_err(|_| Error::file(path, "not UTF-8 text"))?
    };
    let mut table = Table {
        rows: 0,
        columns: 0,
        values: Vec::new(),
    };
    for (index, line) in text.lines().enumerate().skip(skip_rows) {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let start = table.values.len();
        for (column, field) in line.split(delimiter).enumerate() {
            let field = field.trim().trim_matches('"');
            let value = field.parse::<f64>().map_err(|_| {
                Error::file(
                    path,
                    format!(
                        "line {number}, column {}: `{field}` is not a number{}",
                        column + 1,
                        if table.rows == 0 {
                            " (is it a header? set skip_rows)"
                        } else {
                            ""
                        }
                    ),
                )
            })?;
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
    }
    if table.rows == 0 {
        return Err(Error::file(
            path,
            format!("no data after skipping {skip_rows} line(s)"),
        ));
    }
    Ok(table)
}

/// Reads a CSV file into features f32 `[rows, columns]` and, with a target column, targets
/// f32 `[rows, 1]` (see [`Dataset::with_class_targets`] for class indices).
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let table = read_table(path, options.skip_rows, options.delimiter)?;
    let Some(target) = options.target_column else {
        let features = Tensor::f64(vec![table.rows, table.columns], table.values)?;
        return Dataset::new(features, None);
    };
    let cols = table.columns as i64;
    let index = if target < 0 { cols + target } else { target };
    if !(0..cols).contains(&index) || cols < 2 {
        return Err(Error::file(
            path,
            format!(
                "target_column {target} is out of range for {cols} columns (expected -{cols}..{})",
                cols - 1
            ),
        ));
    }
    let index = index as usize;
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
            err.ends_with("bad.csv: line 2, column 2: `x` is not a number"),
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
