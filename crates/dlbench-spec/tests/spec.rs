//! The seed specs build the models DESIGN.md describes, and bad specs fail with messages that
//! say where and what.

use std::path::{Path, PathBuf};

use dlbench_core::ir::format_shape;
use dlbench_core::{Device, Loss, Optimizer};
use dlbench_spec::{ModelSpec, Spec, SpecError};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs")
}

fn seed(name: &str) -> Spec {
    Spec::load(&specs_dir().join(format!("{name}.yaml"))).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `text` as if it were `specs/test.yaml`, so `../data` reaches the shipped datasets.
fn parse(text: &str) -> Result<Spec, SpecError> {
    Spec::parse(text, &specs_dir().join("test.yaml"))
}

fn output_shapes(spec: &Spec) -> Vec<String> {
    let model = spec.build_model().unwrap_or_else(|e| panic!("{e}"));
    let infos = model.graph.output_infos().unwrap();
    infos.iter().map(|i| format_shape(&i.shape)).collect()
}

const MLP: &str = "
model:
  input: [30]
  layers:
    - dense: {units: 10, activation: relu}
    - dense: {units: 1, activation: sigmoid}
data:
  csv: ../data/breast_cancer.csv
  skip_rows: 1
  target_column: -1
train:
  loss: binary_cross_entropy
  optimizer: {sgd: {lr: 0.01}}
  batch_size: 32
  steps: 10
";

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "`{part}` is missing from:\n{message}"
        );
    }
}

#[test]
fn seed_specs_have_the_designed_parameter_counts_and_outputs() {
    let expected = [
        ("mlp", 431, vec!["batchx1"]),
        ("cnn", 250_326, vec!["batchx10"]),
        ("rnn", 10_651, vec!["batchx1"]),
        ("vae", 552_012, vec!["batchx1000", "batchx50", "batchx50"]),
    ];
    for (name, params, outputs) in expected {
        let spec = seed(name);
        assert_eq!(spec.name, name);
        let model = spec.build_model().unwrap();
        assert_eq!(model.parameter_count(), params, "{name}");
        assert_eq!(output_shapes(&spec), outputs, "{name}");
        assert_eq!(spec.train.batch_size, 32);
        assert!(spec.train.steps.is_some_and(|s| (100..=400).contains(&s)));
        model.with_loss(spec.train.loss).unwrap();
    }
}

#[test]
fn cnn_flattens_to_2304_and_trains_with_sgd() {
    let spec = seed("cnn");
    let model = spec.build_model().unwrap();
    let values = model.graph.infer().unwrap();
    let flatten = model
        .graph
        .nodes
        .iter()
        .find(|n| n.op.name() == "flatten")
        .unwrap();
    assert_eq!(
        format_shape(&values[&flatten.outputs[0]].shape),
        "batchx2304"
    );
    let config = spec.training_config();
    assert_eq!(config.loss, Loss::CrossEntropy);
    assert!(matches!(config.optimizer, Optimizer::Sgd(s) if s.lr == 0.01));
}

#[test]
fn seed_specs_take_the_documented_defaults() {
    let spec = seed("vae");
    assert_eq!(spec.seed, 0);
    assert_eq!(spec.inference.batch_sizes, [1, 32]);
    assert!(
        spec.backends.is_empty(),
        "default: every backend in the build"
    );
    assert_eq!(spec.devices, [Device::Cpu]);
    assert_eq!(spec.threads, [1]);
    assert_eq!(
        (
            spec.agreement.rtol,
            spec.agreement.atol,
            spec.agreement.steps
        ),
        (1e-3, 1e-5, 20)
    );
    assert_eq!(spec.benchmark.warmup_s, 0.5);
    assert_eq!(
        (
            spec.benchmark.min_samples,
            spec.benchmark.budget_s,
            spec.benchmark.rounds
        ),
        (10, 3.0, 10)
    );
    assert!(spec.train.shuffle);
    assert!(matches!(spec.model, ModelSpec::Graph(_)));
    let eps = spec.build_model().unwrap();
    assert!(eps
        .graph
        .inputs
        .iter()
        .any(|i| i.value.name == "eps" && i.role == dlbench_core::InputRole::Normal));
}

#[test]
fn seed_specs_load_their_data() {
    let sizes = [
        ("mlp", vec![30], 569),
        ("cnn", vec![1, 32, 32], 1797),
        ("rnn", vec![10, 1], 299),
        ("vae", vec![1000], 1024),
    ];
    for (name, sample, total) in sizes {
        let spec = seed(name);
        let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
        let (train, validation, test) = (splits.train, splits.validation, splits.test);
        assert_eq!(train.sample_shape(), sample, "{name}");
        assert_eq!(train.len() + validation.len() + test.len(), total, "{name}");
        let fifth = (total as f64 * 0.2).round() as usize;
        assert_eq!((validation.len(), test.len()), (fifth, fifth), "{name}");
    }
    let train = seed("mlp").load_data().unwrap().train;
    // Standardized with the training split's own statistics.
    let x = train.features.as_f32().unwrap();
    let mean: f32 = x.iter().step_by(30).sum::<f32>() / train.len() as f32;
    assert!(mean.abs() < 1e-4, "mean {mean}");
    assert_eq!(train.targets.as_ref().unwrap().shape(), [train.len(), 1]);
    let splits = seed("cnn").load_data().unwrap();
    assert_eq!(
        splits.train.targets.unwrap().dtype(),
        dlbench_core::DType::I64
    );
    // Stratified: each digit's share of the test split is its share of the data, within one.
    let test_labels = splits.test.class_labels().unwrap();
    for digit in 0..10 {
        let in_test = test_labels.iter().filter(|&&l| l == digit).count() as f64;
        assert!(
            (in_test - 0.2 * 1797.0 / 10.0).abs() <= 2.0,
            "digit {digit}: {in_test}"
        );
    }
    let train = seed("rnn").load_data().unwrap().train;
    let max = train
        .features
        .as_f32()
        .unwrap()
        .iter()
        .cloned()
        .fold(0.0, f32::max);
    assert!(max > 0.5 && max <= 0.951, "max {max}");
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    assert_eq!(parse(MLP).unwrap().name, "test");
    let named = parse(&format!("name: tiny\nseed: 7\n{MLP}")).unwrap();
    assert_eq!((named.name.as_str(), named.seed), ("tiny", 7));
    let bare = parse(&MLP.replace("{sgd: {lr: 0.01}}", "adam")).unwrap();
    assert_eq!(bare.train.optimizer, Optimizer::Adam(Default::default()));
    let message = err(&MLP.replace("{sgd: {lr: 0.01}}", "{sgd: {lr: -1}}"));
    assert_contains(&message, &["lr must be positive"]);
}

#[test]
fn a_typo_names_the_line_column_and_accepted_fields() {
    let message = err(&MLP.replace("{sgd: {lr: 0.01}}", "{sgd: {lerning_rate: 0.01}}"));
    assert_contains(
        &message,
        &[
            "test.yaml:13:",
            "unknown field `lerning_rate`, expected one of `lr`, `momentum`",
        ],
    );
    let message = err(&MLP.replace("  batch_size: 32", "  batch_sise: 32"));
    assert_contains(
        &message,
        &[
            "test.yaml:14:3: ",
            "unknown field `batch_sise`",
            "`batch_size`",
        ],
    );
    let message = err(&MLP.replace("skip_rows", "skip_row"));
    assert_contains(
        &message,
        &["test.yaml:9:3: ", "data: unknown field `skip_row`"],
    );
}

#[test]
fn a_wrong_type_or_value_is_located() {
    let message = err(&MLP.replace("batch_size: 32", "batch_size: ten"));
    assert_contains(
        &message,
        &[
            "test.yaml:14:15: ",
            "train.batch_size: invalid type: string \"ten\", expected a positive integer",
        ],
    );
    let message = err(&MLP.replace("batch_size: 32", "batch_size: 0"));
    assert_contains(
        &message,
        &[
            "test.yaml:14:15: ",
            "invalid value: integer `0`, expected a positive integer",
        ],
    );
    let message = err(&format!("{MLP}threads: [1, 0]\n"));
    assert_contains(&message, &["test.yaml:16:", "expected a positive integer"]);
    let message = err(&format!("{MLP}inference: {{batch_sizes: []}}\n"));
    assert_contains(
        &message,
        &["inference.batch_sizes", "expected a non-empty list"],
    );
    let message = err(&MLP.replace("units: 10,", "units: 10.5,"));
    assert_contains(&message, &["test.yaml:5:", "expected a positive integer"]);
    let message = err(&format!("{MLP}benchmark: {{rounds: 0}}\n"));
    assert_contains(
        &message,
        &["benchmark.rounds", "expected a positive integer"],
    );
    let message = err(&format!("{MLP}devices: [gpu]\n"));
    assert_contains(&message, &["unknown device `gpu`"]);
}

#[test]
fn missing_or_conflicting_fields_are_reported() {
    let message = err(&MLP.replace("  loss: binary_cross_entropy\n", ""));
    assert_contains(&message, &["test.yaml:", "missing field `loss`"]);
    let message = err(&MLP.replace("steps: 10", "steps: 10\n  epochs: 2"));
    assert_contains(
        &message,
        &["test.yaml:12:", "give exactly one of `epochs` and `steps`"],
    );
    let message = err(&MLP.replace("  input: [30]\n", ""));
    assert_contains(&message, &["test.yaml:3:", "missing field `input`"]);
    let message = err(&MLP.replace("  csv: ../data/breast_cancer.csv\n", ""));
    assert_contains(&message, &["give exactly one data source"]);
    let message = err(&MLP.replace("train:", "target: {metric: f1, value: 1}\ntrain:"));
    assert_contains(&message, &["unknown field `target`"]);
    let message = err(&MLP.replace("steps: 10", "steps: 10\n  target: {metric: f1, value: 1}"));
    assert_contains(
        &message,
        &["unknown metric `f1`, expected `loss`, `accuracy`"],
    );
}

#[test]
fn an_unknown_layer_lists_the_layers() {
    let message = err(&MLP.replace("- dense: {units: 1,", "- dens: {units: 1,"));
    assert_contains(
        &message,
        &[
            "test.yaml:6:7: ",
            "unknown layer `dens`, expected one of `dense`, `conv2d`",
            "`flatten`",
        ],
    );
    let message = err(&MLP.replace("- dense: {units: 1, activation: sigmoid}", "- sigmod"));
    assert_contains(&message, &["test.yaml:6:7: ", "unknown layer `sigmod`"]);
    let message = err(&MLP.replace("- dense: {units: 1, activation: sigmoid}", "- dense"));
    assert_contains(&message, &["layer `dense` needs options"]);
}

#[test]
fn inconsistent_shapes_name_the_layer_and_node() {
    let cnn = std::fs::read_to_string(specs_dir().join("cnn.yaml")).unwrap();
    let no_flatten = parse(&cnn.replace("    - flatten\n", "")).unwrap();
    let message = no_flatten.build_model().unwrap_err().to_string();
    assert_contains(
        &message,
        &[
            "test.yaml: ",
            "model.layers[6] (dense)",
            "max_pool2d_2",
            "batchx64x6x6",
            "add `flatten`",
        ],
    );
    let conv_after_flatten = parse(&cnn.replace(
        "    - flatten\n",
        "    - flatten\n    - conv2d: {filters: 8, kernel: 3}\n",
    ))
    .unwrap();
    let message = conv_after_flatten.build_model().unwrap_err().to_string();
    assert_contains(
        &message,
        &[
            "model.layers[7] (conv2d)",
            "node `conv2d_3` (conv2d)",
            "rank 4",
        ],
    );
}

#[test]
fn graph_errors_name_the_node() {
    let vae = std::fs::read_to_string(specs_dir().join("vae.yaml")).unwrap();
    let typo = parse(&vae.replace("inputs: [std, eps]", "inputs: [std, epsilon]")).unwrap();
    let message = typo.build_model().unwrap_err().to_string();
    assert_contains(
        &message,
        &[
            "model.graph.nodes[5] (`noise`, mul): unknown input `epsilon`",
            "`eps`, `enc`",
        ],
    );
    let wrong = parse(&vae.replace("inputs: [mu, noise]", "inputs: [mu, enc]")).unwrap();
    let message = wrong.build_model().unwrap_err().to_string();
    assert_contains(&message, &["nodes[6] (`z`, add)", "node `z` (add)"]);
    let message = err(&vae.replace("op: exp, inputs", "op: exp, input"));
    assert_contains(
        &message,
        &[
            "unknown layer `input`",
            "or a node field `name`, `inputs`, `op`",
        ],
    );
    let message = err(&vae.replace("{name: std, op: exp,", "{name: std, op: exp, relu: {},"));
    assert_contains(&message, &["layer `relu` takes no options"]);
}

#[test]
fn data_must_fit_the_model() {
    let wide = parse(&MLP.replace("input: [30]", "input: [31]")).unwrap();
    let message = wide.load_data().unwrap_err().to_string();
    assert_contains(
        &message,
        &["test.yaml: data: the data's samples have shape [30], the model's input `x` expects [31]"],
    );
    let ce = parse(&MLP.replace("loss: binary_cross_entropy", "loss: cross_entropy")).unwrap();
    let message = ce.load_data().unwrap_err().to_string();
    assert_contains(&message, &["cross-entropy needs logits [batch, classes]"]);
}

#[test]
fn a_missing_data_file_names_the_path() {
    let spec = parse(&MLP.replace("breast_cancer.csv", "no_such_file.csv")).unwrap();
    let message = spec.load_data().unwrap_err().to_string();
    assert_contains(
        &message,
        &["test.yaml: data: ", "no_such_file.csv", "No such file"],
    );
    let spec = parse(&MLP.replace(
        "  input: [30]\n  layers:\n    - dense: {units: 10, activation: relu}\n    - dense: {units: 1, activation: sigmoid}\n",
        "  file: missing.safetensors\n",
    ))
    .unwrap();
    let message = spec.build_model().unwrap_err().to_string();
    assert_contains(&message, &["missing.safetensors"]);
}

#[test]
fn npy_sources_load_and_labels_are_checked() {
    let dir = std::env::temp_dir().join(format!("dlbench-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = dlbench_core::Tensor::f32(vec![10, 4], (0..40).map(|v| v as f32).collect()).unwrap();
    let y = dlbench_core::Tensor::i64(vec![10], (0..10).map(|v| v % 3).collect()).unwrap();
    std::fs::write(dir.join("x.npy"), dlbench_data::npy::encode(&x)).unwrap();
    std::fs::write(dir.join("y.npy"), dlbench_data::npy::encode(&y)).unwrap();
    let text = "
model:
  input: [1, 2, 2]
  layers: [flatten, {dense: {units: 3}}]
data:
  npy: {features: x.npy, targets: y.npy}
  reshape: [1, 2, 2]
  validation: 0.3
train: {loss: cross_entropy, optimizer: {adam: {}}, batch_size: 4, epochs: 2}
";
    let spec = Spec::parse(text, &dir.join("npy.yaml")).unwrap();
    let splits = spec.load_data().unwrap_or_else(|e| panic!("{e}"));
    let (train, validation) = (splits.train, splits.validation);
    assert_eq!(
        (train.len(), validation.len(), splits.test.len()),
        (7, 3, 0)
    );
    assert_eq!(train.sample_shape(), [1, 2, 2]);
    let bad = Spec::parse(&text.replace("units: 3", "units: 2"), &dir.join("npy.yaml")).unwrap();
    let message = bad.load_data().unwrap_err().to_string();
    assert_contains(
        &message,
        &["label of sample", "is 2, out of range for 2 classes"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_display_file_line_and_column() {
    let e = parse("model: [").unwrap_err();
    assert!(e.location.is_some());
    assert!(e
        .to_string()
        .starts_with(&format!("{}:", specs_dir().join("test.yaml").display())));
    let e = SpecError::new(Path::new("a.yaml"), "boom");
    assert_eq!(e.to_string(), "a.yaml: boom");
}

#[test]
fn documented_data_forms_load() {
    let digits = parse(
        "
model:
  input: [1, 8, 8]
  layers: [{conv2d: {filters: 4, kernel: 3, padding: 1, activation: relu}}, flatten, {dense: {units: 10}}]
data: {csv: ../data/digits.csv.gz, target_column: -1, scale: 0.0625, reshape: [1, 8, 8]}
train: {loss: cross_entropy, optimizer: adam, batch_size: 32, epochs: 1}
",
    )
    .unwrap();
    let splits = digits.load_data().unwrap_or_else(|e| panic!("{e}"));
    let train = splits.train;
    assert_eq!(train.len() + splits.validation.len(), 1797);
    let max = train
        .features
        .as_f32()
        .unwrap()
        .iter()
        .cloned()
        .fold(0.0, f32::max);
    assert_eq!(max, 1.0);
    let sequence = parse(
        "
model:
  input: [12, 3]
  layers: [{lstm: {hidden: 8, direction: bidirectional}}, {dense: {units: 1}}]
data: {synthetic: {kind: sequence, samples: 64}, validation: 0.25}
train: {loss: binary_cross_entropy_with_logits, optimizer: adam, batch_size: 8, steps: 5}
",
    )
    .unwrap();
    assert_eq!(output_shapes(&sequence), ["batchx1"]);
    let train = sequence.load_data().unwrap_or_else(|e| panic!("{e}")).train;
    assert_eq!((train.len(), train.sample_shape()), (48, &[12, 3][..]));
}
