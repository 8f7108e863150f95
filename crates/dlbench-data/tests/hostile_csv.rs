//! Crafted CSV files that must be refused as bad input, naming the file and what is wrong,
//! without aborting or filling memory: decompression bombs, devices, files too large for the
//! memory limit, over-long lines, text that is not UTF-8 and values that are not finite.

use std::io::Write;
use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use dlbench_data::csv::{read_csv_with, read_table_from, read_table_with, CsvOptions};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-hostile-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn limits() -> Limits {
    Limits::defaults(16 << 30)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn table_err(path: &Path, limits: &Limits) -> String {
    read_table_with(path, 0, ',', limits)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_gzip_bomb_is_refused_at_the_decompression_cap() {
    // 4 MiB of valid rows from a few KiB; the cap is lowered to 1 MiB so the test stays
    // small, the code path is the one the 64 MiB floor takes.
    let rows = b"0\n".repeat(2 << 20);
    let path = fixture("bomb.csv.gz", &gzip(&rows));
    assert!(std::fs::metadata(&path).unwrap().len() < 64 << 10);
    let limits = Limits {
        decompressed_bytes: 1 << 20,
        ..limits()
    };
    let err = table_err(&path, &limits);
    assert!(err.contains("bomb.csv.gz: line "), "{err}");
    assert!(
        err.contains("expands to more than 1.0 MiB") && err.contains("decompression bomb"),
        "{err}"
    );
}

#[test]
fn a_device_is_refused_at_its_first_line() {
    let err = table_err(Path::new("/dev/zero"), &limits());
    assert!(
        err.starts_with("/dev/zero: line 1 is longer than 16.0 MiB"),
        "{err}"
    );
}

#[test]
fn a_file_over_the_memory_limit_is_refused_before_it_is_read() {
    let path = fixture("large.csv", &b"1,2\n".repeat(1000));
    let limits = Limits {
        memory_bytes: 1000,
        ..limits()
    };
    let err = table_err(&path, &limits);
    assert!(
        err.contains("large.csv: reading it needs 3.9 KiB, over the memory limit"),
        "{err}"
    );
}

#[test]
fn the_table_is_held_to_the_memory_limit_as_it_grows() {
    // 40 KB of text is 20000 values, 160 KB as f64.
    let path = fixture("values.csv", &b"1,2\n".repeat(10_000));
    let limits = Limits {
        memory_bytes: 64 << 10,
        ..limits()
    };
    let err = table_err(&path, &limits);
    assert!(err.contains("values.csv: line "), "{err}");
    assert!(
        err.contains("rows needs") && err.contains("DLBENCH_MAX_MEMORY"),
        "{err}"
    );
}

#[test]
fn a_pipe_is_bounded_like_a_device() {
    // Long lines of few values, so that the stream reaches the cap before the table does.
    let limits = Limits {
        memory_bytes: 4000,
        ..limits()
    };
    let line = format!("{}\n", "1".repeat(39));
    let err = read_table_from(
        line.repeat(1000).as_bytes(),
        Path::new("<stdin>"),
        0,
        ',',
        &limits,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("<stdin>: line 101: the file holds more than 3.9 KiB"),
        "{err}"
    );
}

#[test]
fn text_that_is_not_utf8_names_its_line() {
    let path = fixture("latin1.csv", b"1,2\n3,\xe94\n");
    let err = table_err(&path, &limits());
    assert!(err.ends_with("latin1.csv: line 2: not UTF-8 text"), "{err}");
}

#[test]
fn values_that_are_not_finite_are_refused_by_line_and_column() {
    for (text, expected) in [
        ("1,2\n3,NAN\n", "line 2, column 2: `NAN` is not finite"),
        ("1,inf\n", "line 1, column 2: `inf` is not finite"),
        (
            "\"-Infinity\",1\n",
            "line 1, column 1: `-Infinity` is not finite",
        ),
        (
            "1,2\n1e39,0\n",
            "line 2, column 1: `1e39` is 1e39, beyond the f32 range",
        ),
    ] {
        let path = fixture("nonfinite.csv", text.as_bytes());
        let err = table_err(&path, &limits());
        assert!(
            err.contains("nonfinite.csv: ") && err.contains(expected),
            "{err}"
        );
        assert!(err.contains("data must be finite"), "{err}");
    }
    let gz = fixture("nonfinite.csv.gz", &gzip(b"1,NaN\n"));
    let err = read_csv_with(&gz, &CsvOptions::default(), &limits())
        .unwrap_err()
        .to_string();
    // `NaN` is a missing-value marker: refused unless the spec says how to clean it.
    assert!(
        err.contains("line 1, column 2: missing value (`NaN`); to clean it, set `clean:"),
        "{err}"
    );
}

#[test]
fn crlf_lines_and_a_last_line_without_a_break_still_read() {
    let path = fixture("crlf.csv", b"a,b\r\n1,2\r\n\r\n3,4");
    let table = read_table_with(&path, 1, ',', &limits()).unwrap();
    assert_eq!((table.rows, table.columns), (2, 2));
    assert_eq!(table.values, [1.0, 2.0, 3.0, 4.0]);
}
