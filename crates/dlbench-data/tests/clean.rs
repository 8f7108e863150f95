//! Cleaning a real dirty table, the Palmer penguins (missing values, text columns), and a
//! copy made dirtier still (duplicate rows, a constant column).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use dlbench_core::Tensor;
use dlbench_data::clean::{read_clean_csv, CleanOptions, Encoding, Imputer, Missing};
use dlbench_data::csv::{read_csv, CsvOptions};

fn penguins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/penguins.csv")
}

fn options() -> CsvOptions {
    CsvOptions {
        skip_rows: 1,
        target_column: Some(0),
        ..CsvOptions::default()
    }
}

fn clean(missing: Missing, encoding: Encoding) -> CleanOptions {
    CleanOptions {
        missing: Some(missing),
        drop_duplicates: true,
        drop_constant_columns: true,
        categorical: vec![0, 1, 6],
        encoding,
    }
}

fn limits() -> Limits {
    Limits::from_env().unwrap()
}

#[test]
fn without_cleaning_a_missing_value_names_its_line_and_column() {
    let err = read_csv(&penguins(), &options()).unwrap_err().to_string();
    // The first data line is line 2; `Torgersen` is the first text field met.
    assert!(
        err.contains("penguins.csv: line 2, column 1: `Adelie` is not a number"),
        "{err}"
    );
    let numeric_only = CsvOptions {
        categorical: vec![0, 1, 6],
        ..options()
    };
    let err = read_csv(&penguins(), &numeric_only)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("penguins.csv: line 5, column 3: missing value (`NA`); to clean it, set"),
        "{err}"
    );
}

#[test]
fn penguins_drop_rows_with_missing_values_and_one_hot_encode() {
    let (data, report) = read_clean_csv(
        &penguins(),
        &options(),
        &clean(Missing::Drop, Encoding::OneHot),
        None,
        &limits(),
    )
    .unwrap();
    assert_eq!(report.rows_read, 344);
    assert_eq!(report.missing_values, 19);
    assert_eq!(report.rows_dropped_missing, 11);
    assert_eq!((report.duplicates_dropped, report.rows_kept), (0, 333));
    assert_eq!(report.categories_missing, 0);
    assert_eq!(
        report.categories,
        BTreeMap::from([
            (
                1,
                vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]
            ),
            (2, vec!["Biscoe".into(), "Dream".into(), "Torgersen".into()]),
            (7, vec!["female".into(), "male".into()]),
        ])
    );
    // island (3) + 4 measurements + sex (2) + year.
    assert_eq!(data.features.shape(), [333, 10]);
    let first: Vec<f32> = data.features.as_f32().unwrap()[..10].to_vec();
    assert_eq!(
        first,
        [0.0, 0.0, 1.0, 39.1, 18.7, 181.0, 3750.0, 0.0, 1.0, 2007.0]
    );
    let labels = data.class_labels().unwrap();
    assert_eq!(
        (0..3)
            .map(|c| labels.iter().filter(|&&l| l == c).count())
            .collect::<Vec<_>>(),
        [146, 68, 119]
    );
}

#[test]
fn duplicates_and_constant_columns_are_dropped_and_counted() {
    let text = std::fs::read_to_string(penguins()).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            format!(
                "{l},{}",
                if l.starts_with("species") {
                    "site"
                } else {
                    "7"
                }
            )
        })
        .collect();
    // Rows 2..=4 again at the end: three duplicates.
    let again: Vec<String> = lines[1..4].to_vec();
    lines.extend(again);
    let dir = std::env::temp_dir().join(format!("dlbench-clean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("penguins-dirtier.csv");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let (data, report) = read_clean_csv(
        &path,
        &options(),
        &clean(Missing::Median, Encoding::Label),
        None,
        &limits(),
    )
    .unwrap();
    assert_eq!((report.rows_read, report.duplicates_dropped), (347, 3));
    assert_eq!(report.constant_columns_dropped, [9]);
    assert_eq!(
        report.categories_missing, 0,
        "label encoding leaves them to the imputer"
    );
    // Two rows have no measurement at all but keep their place: imputed later.
    assert_eq!((report.rows_dropped_missing, report.rows_kept), (0, 344));
    // island, 4 measurements, sex, year: label-encoded, the constant column gone.
    assert_eq!(data.features.shape(), [344, 7]);
    let missing = data
        .features
        .as_f32()
        .unwrap()
        .iter()
        .filter(|v| v.is_nan())
        .count();
    assert_eq!(missing, 19);
    let (filled, n) = Imputer::fit(&data.features, Missing::Median)
        .unwrap()
        .apply(&data.features)
        .unwrap();
    assert_eq!(n, 19);
    assert!(filled.as_f32().unwrap().iter().all(|v| v.is_finite()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn held_out_files_are_encoded_with_the_training_categories() {
    let dir = std::env::temp_dir().join(format!("dlbench-clean-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let held = dir.join("held.csv");
    std::fs::write(&held, "label,colour,x\nb,red,1\na,blue,2\n").unwrap();
    let known = BTreeMap::from([
        (0, vec!["a".to_string(), "b".to_string()]),
        (1, vec!["blue".into(), "green".into(), "red".into()]),
    ]);
    let options = CsvOptions {
        skip_rows: 1,
        target_column: Some(0),
        ..CsvOptions::default()
    };
    let clean = CleanOptions {
        missing: None,
        categorical: vec![0, 1],
        ..CleanOptions::default()
    };
    let (data, _) = read_clean_csv(&held, &options, &clean, Some(&known), &limits()).unwrap();
    // `red` is the third training colour, though this file has only two.
    assert_eq!(
        data.features.as_f32().unwrap(),
        [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 2.0]
    );
    assert_eq!(data.class_labels().unwrap(), [1, 0]);
    std::fs::write(&held, "label,colour,x\nb,purple,1\n").unwrap();
    let err = read_clean_csv(&held, &options, &clean, Some(&known), &limits())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("held.csv: line 2, column 2: category `purple` is not in the training data"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn imputers_follow_scikit_learn() {
    let nan = f32::NAN;
    let x = Tensor::f32(
        vec![5, 2],
        vec![1.0, 4.0, 2.0, nan, 2.0, 4.0, 9.0, 5.0, nan, 5.0],
    )
    .unwrap();
    let fill = |m| Imputer::fit(&x, m).unwrap().fill;
    assert_eq!(fill(Missing::Mean), [3.5, 4.5]);
    assert_eq!(fill(Missing::Median), [2.0, 4.5]);
    // Ties go to the smallest value.
    assert_eq!(fill(Missing::MostFrequent), [2.0, 4.0]);
}

#[test]
fn one_hot_columns_are_checked_against_the_memory_limit_before_they_are_made() {
    // 2,000 rows of 2,000 categories: 4 M values, 32 MB once one-hot encoded.
    let dir = std::env::temp_dir().join(format!("dlbench-clean-wide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wide.csv");
    let text: String = (0..2000).map(|i| format!("c{i},{}\n", i % 2)).collect();
    std::fs::write(&path, text).unwrap();
    let options = CsvOptions {
        target_column: Some(-1),
        ..CsvOptions::default()
    };
    let clean = CleanOptions {
        categorical: vec![0],
        ..CleanOptions::default()
    };
    let mut small = Limits::defaults(16 << 30);
    small.memory_bytes = 8 << 20;
    let err = read_clean_csv(&path, &options, &clean, None, &small)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wide.csv: ") && err.contains("the encoded table of 2000 rows x 2001 columns"),
        "{err}"
    );
    let (data, _) = read_clean_csv(&path, &options, &clean, None, &limits()).unwrap();
    assert_eq!(data.features.shape(), [2000, 2000]);
    std::fs::remove_dir_all(&dir).unwrap();
}
