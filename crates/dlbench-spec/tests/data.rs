//! The `data:` section end to end: held-out files, IDX sources, cleaning, normalisation fitted
//! on the training split, augmentation's checks, and the errors of each.

use std::path::{Path, PathBuf};

use dlbench_spec::Spec;

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs")
}

/// A spec in a fresh folder of its own, with `files` written beside it.
fn in_folder(name: &str, text: &str, files: &[(&str, Vec<u8>)]) -> (Spec, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dlbench-data-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    (Spec::parse(text, &dir.join("spec.yaml")).unwrap(), dir)
}

fn idx_u8(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
    bytes.extend(values);
    bytes
}

const IMAGES: &str = "
model:
  input: [1, 2, 2]
  layers: [flatten, {dense: {units: 3}}]
data:
  idx: {images: train-images, labels: train-labels}
  scale: 0.00392156862745098
  reshape: [1, 2, 2]
  validation: 0.25
  test: {idx: {images: test-images, labels: test-labels}}
train: {loss: cross_entropy, optimizer: adam, batch_size: 2, steps: 3}
";

#[test]
fn idx_files_give_train_validation_and_a_test_file() {
    let pixels: Vec<u8> = (0..32).map(|v| v * 8).collect();
    let files = [
        ("train-images", idx_u8(&[8, 2, 2], &pixels)),
        ("train-labels", idx_u8(&[8], &[0, 1, 2, 0, 1, 2, 0, 1])),
        ("test-images", idx_u8(&[2, 2, 2], &[255; 8])),
        ("test-labels", idx_u8(&[2], &[2, 1])),
    ];
    let (spec, dir) = in_folder("idx", IMAGES, &files);
    let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            splits.train.len(),
            splits.validation.len(),
            splits.test.len()
        ),
        (6, 2, 2)
    );
    assert_eq!(splits.train.sample_shape(), [1, 2, 2]);
    assert_eq!(splits.test.features.as_f32().unwrap(), [1.0; 8]);
    assert_eq!(splits.test.class_labels().unwrap(), [2, 1]);
    // A label beyond the model's classes is refused, naming the split and the sample.
    std::fs::write(dir.join("test-labels"), idx_u8(&[2], &[2, 7])).unwrap();
    let err = spec.load_data().unwrap_err().to_string();
    assert!(
        err.contains("data: test: ")
            && err.contains("test-labels: the label of sample 1 is 7, out of range for 3 classes"),
        "{err}"
    );
    // A file shorter than its header says.
    std::fs::write(dir.join("test-images"), idx_u8(&[2, 2, 2], &[255; 5])).unwrap();
    let err = spec.load_data().unwrap_err().to_string();
    assert!(
        err.contains("test-images: the header announces [2, 2, 2] = 8 values"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_names_the_package_that_installs_it() {
    let text = IMAGES.replace("  scale:", "  package: dataset-fashion-mnist\n  scale:");
    let (spec, dir) = in_folder("package", &text, &[]);
    let err = spec.load_data().unwrap_err().to_string();
    assert!(
        err.contains("train-images: No such file")
            && err.contains("the Debian package `dataset-fashion-mnist` installs it"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let fashion = Spec::load(&specs_dir().join("cnn-fashion.yaml")).unwrap();
    assert_eq!(
        fashion.data.package.as_deref(),
        Some("dataset-fashion-mnist")
    );
}

#[test]
fn held_out_files_must_be_of_the_data_kind_and_fractions_must_leave_training_data() {
    let bad = IMAGES.replace(
        "test: {idx: {images: test-images, labels: test-labels}}",
        "test: {csv: test.csv}",
    );
    let err = Spec::parse(&bad, Path::new("spec.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a held-out split's file must be of the data's kind (`idx`), got `csv`"),
        "{err}"
    );
    let bad = IMAGES.replace(
        "test: {idx: {images: test-images, labels: test-labels}}",
        "test: 0.8",
    );
    let err = Spec::parse(&bad, Path::new("spec.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("leave nothing to train on"), "{err}");
    let bad = IMAGES.replace(
        "test: {idx: {images: test-images, labels: test-labels}}",
        "test: 1.5",
    );
    let err = Spec::parse(&bad, Path::new("spec.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected a fraction in [0, 1)"), "{err}");
}

#[test]
fn penguins_clean_and_normalise_with_training_statistics() {
    let spec = Spec::load(&specs_dir().join("mlp-penguins.yaml")).unwrap();
    let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            splits.train.len(),
            splits.validation.len(),
            splits.test.len()
        ),
        (206, 69, 69)
    );
    let report = &splits.cleaning[0];
    assert!(report.file.ends_with("penguins.csv"), "{}", report.file);
    // 8 measurements of two birds measured not at all are imputed; 11 unknown sexes become
    // no category.
    let counts = (
        report.missing_values,
        report.values_imputed,
        report.categories_missing,
    );
    assert_eq!(counts, (19, 8, 11));
    assert_eq!(report.rows_kept, 344);
    // Standardized with the training split's statistics: its columns have mean 0, the
    // others only about.
    let x = splits.train.features.as_f32().unwrap();
    for column in 0..10 {
        let mean: f32 = x.iter().skip(column).step_by(10).sum::<f32>() / 206.0;
        assert!(mean.abs() < 1e-4, "column {column}: mean {mean}");
    }
    assert!(splits
        .test
        .features
        .as_f32()
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
    // The same file without `clean` is refused, naming the line and column.
    let text = std::fs::read_to_string(specs_dir().join("mlp-penguins.yaml")).unwrap();
    let start = text.find("  clean:").unwrap();
    let end = text.find("  normalize:").unwrap();
    let raw = format!("{}{}", &text[..start], &text[end..]);
    let spec = Spec::parse(&raw, &specs_dir().join("raw.yaml")).unwrap();
    let err = spec.load_data().unwrap_err().to_string();
    assert!(
        err.contains("penguins.csv: line 2, column 1: `Adelie` is not a number"),
        "{err}"
    );
}

#[test]
fn min_max_uses_the_training_range_and_augment_needs_images() {
    let csv = b"1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n7,0\n8,1\n9,0\n10,1\n".to_vec();
    let text = "
model: {input: [1], layers: [{dense: {units: 1, activation: sigmoid}}]}
data: {csv: d.csv, target_column: -1, normalize: min_max, validation: 0.3, stratify: false}
train: {loss: binary_cross_entropy, optimizer: adam, batch_size: 2, steps: 1}
";
    let (spec, dir) = in_folder("minmax", text, &[("d.csv", csv)]);
    let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
    let train = splits.train.features.as_f32().unwrap();
    let lo = train.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = train.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!((lo, hi), (0.0, 1.0));
    let augment = text.replace(
        "stratify: false}",
        "stratify: false, augment: {flip: true}}",
    );
    let spec = Spec::parse(&augment, &dir.join("spec.yaml")).unwrap();
    let err = spec.load_data().unwrap_err().to_string();
    assert!(err.contains("`augment` transforms images"), "{err}");
    let both = text.replace(
        "normalize: min_max",
        "normalize: min_max, standardize: true",
    );
    let err = Spec::parse(&both, &dir.join("spec.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("give `normalize` or `standardize`, not both"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fashion_mnist_loads_at_full_size() {
    let spec = Spec::load(&specs_dir().join("cnn-fashion.yaml")).unwrap();
    let images = Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
    if !images.exists() {
        assert!(
            std::env::var_os("DLBENCH_REQUIRE_DATASETS").is_none(),
            "{} is missing: apt-get install dataset-fashion-mnist",
            images.display()
        );
        println!("skipped: dataset-fashion-mnist is not installed");
        return;
    }
    let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            splits.train.len(),
            splits.validation.len(),
            splits.test.len()
        ),
        (54_000, 6_000, 10_000)
    );
    assert_eq!(splits.test.sample_shape(), [1, 28, 28]);
    let max = splits
        .test
        .features
        .as_f32()
        .unwrap()
        .iter()
        .copied()
        .fold(0.0, f32::max);
    assert_eq!(max, 1.0);
    // Stratified: each of the 10 classes has 600 of the 6,000 validation images.
    let labels = splits.validation.class_labels().unwrap();
    for class in 0..10 {
        assert_eq!(
            labels.iter().filter(|&&l| l == class).count(),
            600,
            "class {class}"
        );
    }
}
