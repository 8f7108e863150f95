//! Numeric delimited text, plain or gzipped (detected from the file's first bytes, so
//! `digits.csv.gz` and a gzipped file without the suffix both work).
//!
//! Every kept line must have the same number of fields, each a number (surrounding spaces and
//! double quotes are ignored); blank lines are skipped. Errors give the 1-based line and column.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use dlbench_core::limits::{bytes_of, format_bytes, is_over_cap, BoundedReader, Limits};
use dlbench_core::Tensor;

use crate::bounds::{env_limits, not_data, NOT_FINITE};
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
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let known_len = meta.is_file().then_some(meta.len());
    read_source(file, known_len, path, skip_rows, delimiter, limits)
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
    read_source(reader, None, path, skip_rows, delimiter, limits)
}

/// Picks plain or gzip from the first two bytes and bounds what may come through.
fn read_source(
    mut source: impl Read,
    known_len: Option<u64>,
    path: &Path,
    skip_rows: usize,
    delimiter: char,
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
    parse(
        BufReader::new(text),
        path,
        skip_rows,
        delimiter,
        limits,
        bound,
    )
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
    skip_rows: usize,
    delimiter: char,
    limits: &Limits,
    bound: Bound,
) -> Result<Table> {
    let mut table = Table {
        rows: 0,
        columns: 0,
        values: Vec::new(),
    };
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
        push_row(&mut table, line, number, path, delimiter, limits)?;
    }
    if table.rows == 0 {
        return Err(Error::file(
            path,
            format!("no data after skipping {skip_rows} line(s)"),
        ));
    }
    Ok(table)
}

/// Parses one line's fields onto the table, growing it only within the memory limit.
fn push_row(
    table: &mut Table,
    line: &str,
    number: usize,
    path: &Path,
    delimiter: char,
    limits: &Limits,
) -> Result<()> {
    let start = table.values.len();
    for (column, field) in line.split(delimiter).enumerate() {
        let field = field.trim().trim_matches('"');
        let at = || format!("line {number}, column {}: `{field}`", column + 1);
        let value = field.parse::<f64>().map_err(|_| {
            let hint = if table.rows == 0 {
                " (is it a header? set skip_rows)"
            } else {
                ""
            };
            Error::file(path, format!("{} is not a number{hint}", at()))
        })?;
        if let Some(why) = not_data(value) {
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

/// Reads as many bytes as there are, up to `buf.len()`.
fn read_up_to(source: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads a CSV file into features f32 `[rows, columns]` and, with a target column, targets
/// f32 `[rows, 1]` (see [`Dataset::with_class_targets`] for class indices), under the limits of
/// the environment ([`Limits::from_env`]).
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    read_csv_with(path, options, &env_limits()?)
}

/// [`read_csv`] under `limits`; see [`read_table_with`] for how the file is bounded.
pub fn read_csv_with(path: &Path, options: &CsvOptions, limits: &Limits) -> Result<Dataset> {
    let table = read_table_with(path, options.skip_rows, options.delimiter, limits)?;
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
