//! `dlbench predict` end to end: the seed models' outputs, written as `.npy` under their output
//! names, equal the f64 reference's run in this process; the inputs are checked against the
//! graph, and every mistake is a usage error (exit 2) naming the input and its file; a backend
//! that fails is exit 1 and leaves no files behind.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_core::{Backend, Mode, Model, PrepareOptions, Tensor, Values};
use dlbench_data::npy::{encode, read_npy};
use dlbench_reference::ReferenceBackend;

/// Exit code 2 and a message containing each of `parts`.
fn assert_usage_error(out: &Output, parts: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "missing {part:?} in\n{stderr}");
    }
}

/// `dlbench init SPEC --out DIR/NAME`.
fn init(spec: &str, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    assert_ok(&dlbench(&["init", spec, "--out", path_str(&path)]));
    path
}

/// Writes `tensor` as `DIR/NAME` and returns the path.
fn npy(dir: &Path, name: &str, tensor: &Tensor) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, encode(tensor)).unwrap();
    path
}

/// `n` deterministic values in about [-1, 1], different for each `seed`.
fn values(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 37 + seed * 11) % 101) as f64 / 50.0 - 1.0)
        .collect()
}

/// `dlbench predict MODEL --input ... --out OUT EXTRA...`.
fn predict(model: &Path, inputs: &[(&str, &Path)], out: &Path, extra: &[&str]) -> Output {
    let inputs: Vec<String> = inputs
        .iter()
        .map(|(name, path)| format!("{name}={}", path.display()))
        .collect();
    let mut args = vec!["predict", path_str(model)];
    for input in &inputs {
        args.extend(["--input", input.as_str()]);
    }
    args.extend(["--out", path_str(out)]);
    args.extend(extra);
    dlbench(&args)
}

/// The graph outputs of `model` on `inputs`, from the f64 reference in this process.
fn reference(model: &Model, inputs: &Values) -> Values {
    let mut session = ReferenceBackend
        .prepare(model, &PrepareOptions::default())
        .unwrap();
    session.load(inputs).unwrap();
    session.forward(Mode::Inference).unwrap();
    session.outputs().unwrap()
}

/// The file names in `dir`.
fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Asserts that `DIR/FILE` holds `expected` (same shape) within `atol + rtol * |expected|`.
fn assert_close(dir: &Path, file: &str, expected: &Tensor, atol: f64, rtol: f64) {
    let got = read_npy(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(got.shape(), expected.shape(), "{file}");
    for (i, (g, e)) in got
        .to_f64_vec()
        .iter()
        .zip(expected.to_f64_vec())
        .enumerate()
    {
        assert!(
            (g - e).abs() <= atol + rtol * e.abs(),
            "{file}[{i}]: {g} vs {e}"
        );
    }
}

/// Renames the value `old` of `model` (where nodes define and read it, and in the outputs).
fn rename(model: Model, old: &str, new: &str) -> Model {
    let Model { mut graph, weights } = model;
    let swap = |name: &mut String| {
        if name == old {
            *name = new.to_string();
        }
    };
    for node in &mut graph.nodes {
        node.inputs.iter_mut().for_each(swap);
        node.outputs.iter_mut().for_each(swap);
    }
    graph.outputs.iter_mut().for_each(swap);
    Model::new(graph, weights).unwrap()
}

/// The MLP seed and a batch of 4 for it.
fn mlp(dir: &Path) -> (PathBuf, Tensor, PathBuf) {
    let model = init("specs/mlp.yaml", dir, "mlp.safetensors");
    let x = Tensor::f32(
        vec![4, 30],
        values(120, 1).iter().map(|&v| v as f32).collect(),
    )
    .unwrap();
    let file = npy(dir, "x.npy", &x);
    (model, x, file)
}

#[test]
fn mlp_outputs_are_the_reference_s_under_the_output_name() {
    let dir = temp_dir("mlp");
    let (model, x, x_file) = mlp(&dir);
    let expected = reference(
        &Model::load(&model).unwrap(),
        &Values::from([("x".into(), x)]),
    );
    let out = dir.join("out");
    let run = predict(&model, &[("x", &x_file)], &out, &[]);
    assert_ok(&run);
    assert_eq!(files(&out), BTreeSet::from(["dense_3.sigmoid.npy".into()]));
    // The default backend is the f64 reference: the same numbers, in f64.
    assert_close(
        &out,
        "dense_3.sigmoid.npy",
        &expected["dense_3.sigmoid"],
        1e-12,
        0.0,
    );
    let stdout = text(&run.stdout);
    let row = stdout.lines().nth(1).unwrap_or_default();
    for cell in ["dense_3.sigmoid", "dense_3.sigmoid.npy", "f64", "[4, 1]"] {
        assert!(row.contains(cell), "{cell:?} not in {row:?}\n{stdout}");
    }

    // Native computes in f32 and writes f32.
    let native = dir.join("native");
    let run = predict(&model, &[("x", &x_file)], &native, &["--backend", "native"]);
    assert_ok(&run);
    assert!(text(&run.stdout).contains("f32"), "{}", text(&run.stdout));
    let got = read_npy(&native.join("dense_3.sigmoid.npy")).unwrap();
    assert_eq!(got.dtype(), dlbench_core::DType::F32);
    assert_close(
        &native,
        "dense_3.sigmoid.npy",
        &expected["dense_3.sigmoid"],
        1e-6,
        1e-5,
    );
}

#[cfg(feature = "test-backends")]
#[test]
fn the_backend_named_is_the_one_that_runs() {
    // A backend that reads Dense weights transposed computes other numbers: predict must
    // write those, not the reference's.
    let dir = temp_dir("mutant");
    let (model, x, x_file) = mlp(&dir);
    let expected = reference(
        &Model::load(&model).unwrap(),
        &Values::from([("x".into(), x)]),
    )["dense_3.sigmoid"]
        .to_f64_vec();
    let out = dir.join("out");
    let args = ["--backend", "test-transposed-dense", "--threads", "2"];
    assert_ok(&predict(&model, &[("x", &x_file)], &out, &args));
    let got = read_npy(&out.join("dense_3.sigmoid.npy"))
        .unwrap()
        .to_f64_vec();
    assert!(
        got.iter().zip(&expected).any(|(g, e)| (g - e).abs() > 1e-3),
        "{got:?} vs {expected:?}"
    );
}

#[test]
fn vae_reads_two_inputs_and_writes_three_outputs() {
    let dir = temp_dir("vae");
    let model = init("specs/vae.yaml", &dir, "vae.safetensors");
    // x in [0, 1] as f64 (numpy's default) for an f32 graph; eps as f32.
    let x = Tensor::f64(
        vec![2, 1000],
        values(2000, 2).iter().map(|v| (v + 1.0) / 2.0).collect(),
    )
    .unwrap();
    let eps = Tensor::f32(
        vec![2, 50],
        values(100, 3).iter().map(|&v| v as f32).collect(),
    )
    .unwrap();
    let (x_file, eps_file) = (npy(&dir, "x.npy", &x), npy(&dir, "eps.npy", &eps));
    let expected = reference(
        &Model::load(&model).unwrap(),
        &Values::from([("x".into(), x), ("eps".into(), eps)]),
    );
    let out = dir.join("out");
    let run = predict(
        &model,
        &[("x", &x_file), ("eps", &eps_file)],
        &out,
        &["--backend", "native"],
    );
    assert_ok(&run);
    assert_eq!(
        files(&out),
        ["logvar.npy", "mu.npy", "recon.sigmoid.npy"]
            .map(String::from)
            .into()
    );
    for name in ["recon.sigmoid", "mu", "logvar"] {
        assert_close(&out, &format!("{name}.npy"), &expected[name], 1e-5, 1e-4);
    }
    // The table lists them in graph order.
    let stdout = text(&run.stdout);
    let names: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["recon.sigmoid", "mu", "logvar"], "{stdout}");
    assert!(
        stdout.contains("[2, 1000]") && stdout.contains("[2, 50]"),
        "{stdout}"
    );
}

#[test]
fn onnx_style_output_names_become_safe_file_names() {
    let dir = temp_dir("names");
    let (model, x, x_file) = mlp(&dir);
    let renamed = rename(
        Model::load(&model).unwrap(),
        "dense_3.sigmoid",
        "/fc/Gemm_output_0:0",
    );
    let expected = reference(&renamed, &Values::from([("x".into(), x)]));
    let model = dir.join("renamed.safetensors");
    renamed.save(&model).unwrap();
    let out = dir.join("out");
    let run = predict(&model, &[("x", &x_file)], &out, &[]);
    assert_ok(&run);
    assert_eq!(
        files(&out),
        BTreeSet::from(["_fc_Gemm_output_0_0.npy".into()])
    );
    assert_close(
        &out,
        "_fc_Gemm_output_0_0.npy",
        &expected["/fc/Gemm_output_0:0"],
        1e-12,
        0.0,
    );
    assert!(text(&run.stdout).contains("/fc/Gemm_output_0:0"));
}

#[test]
fn outputs_whose_file_names_collide_are_refused() {
    let dir = temp_dir("collide");
    let vae = Model::load(&init("specs/vae.yaml", &dir, "vae.safetensors")).unwrap();
    let eps = Tensor::zeros(dlbench_core::DType::F32, vec![1, 50]);
    let x = Tensor::zeros(dlbench_core::DType::F32, vec![1, 1000]);
    let (x_file, eps_file) = (npy(&dir, "x.npy", &x), npy(&dir, "eps.npy", &eps));
    let out = dir.join("out");
    // `z/mu` and `z:mu` are both `z_mu.npy`; `Z:mu` is `Z_mu.npy`, the same file where case
    // is ignored (macOS, Windows).
    for (second, file) in [
        ("z:mu", "both be written to z_mu.npy"),
        ("Z:mu", "z_mu.npy and Z_mu.npy"),
    ] {
        let model = dir.join("collide.safetensors");
        rename(rename(vae.clone(), "mu", "z/mu"), "logvar", second)
            .save(&model)
            .unwrap();
        let run = predict(&model, &[("x", &x_file), ("eps", &eps_file)], &out, &[]);
        assert_usage_error(&run, &["`z/mu`", &format!("`{second}`"), file]);
    }
    assert!(!out.exists());
}

#[test]
fn a_missing_input_is_named_with_its_role() {
    let dir = temp_dir("missing");
    let model = init("specs/vae.yaml", &dir, "vae.safetensors");
    let x = npy(
        &dir,
        "x.npy",
        &Tensor::zeros(dlbench_core::DType::F32, vec![2, 1000]),
    );
    let out = dir.join("out");
    let run = predict(&model, &[("x", &x)], &out, &[]);
    assert_usage_error(
        &run,
        &[
            "input `eps`",
            "standard normal noise",
            "--input eps=FILE.npy",
        ],
    );
    assert!(!out.exists());
}

/// A spec of `model` (the `model:` section's body) with the data and training that a spec
/// needs and predict ignores.
fn spec(dir: &Path, name: &str, model: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "model:\n{model}data:\n  synthetic: {{kind: regression, samples: 64}}\ntrain:\n  \
         loss: mse\n  optimizer: {{sgd: {{lr: 0.01}}}}\n  batch_size: 8\n  steps: 1\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_dropout_mask_is_required_and_ignored_in_inference() {
    let dir = temp_dir("dropout");
    let spec = spec(
        &dir,
        "drop.yaml",
        "  input: [4]\n  layers:\n    - dense: {units: 3, activation: relu}\n    - dropout: \
         {p: 0.5}\n    - dense: {units: 1}\n",
    );
    let model = init(path_str(&spec), &dir, "drop.safetensors");
    let x = Tensor::f32(
        vec![3, 4],
        values(12, 4).iter().map(|&v| v as f32).collect(),
    )
    .unwrap();
    let x_file = npy(&dir, "x.npy", &x);
    let run = predict(&model, &[("x", &x_file)], &dir.join("none"), &[]);
    assert_usage_error(
        &run,
        &[
            "input `dropout_1.mask`",
            "dropout keep-mask",
            "--input dropout_1.mask=FILE.npy",
        ],
    );
    // Run in inference mode, a mask of zeros drops nothing: the same outputs as ones.
    let mask = Tensor::zeros(dlbench_core::DType::F32, vec![3, 3]);
    let expected = reference(
        &Model::load(&model).unwrap(),
        &Values::from([("x".into(), x), ("dropout_1.mask".into(), mask.clone())]),
    );
    let zeros = npy(&dir, "zeros.npy", &mask);
    let out = dir.join("out");
    let run = predict(
        &model,
        &[("x", &x_file), ("dropout_1.mask", &zeros)],
        &out,
        &[],
    );
    assert_ok(&run);
    assert_close(&out, "dense_2.npy", &expected["dense_2"], 1e-12, 0.0);
    let got = read_npy(&out.join("dense_2.npy")).unwrap().to_f64_vec();
    assert!(got.iter().any(|v| v.abs() > 1e-6), "{got:?}");
}

#[test]
fn inputs_that_do_not_fit_the_graph_are_named_with_their_file() {
    let dir = temp_dir("misfit");
    let (model, _, x_file) = mlp(&dir);
    let f32s = |shape: Vec<usize>| Tensor::zeros(dlbench_core::DType::F32, shape);
    let out = dir.join("out");

    let run = predict(&model, &[("x", &x_file), ("y", &x_file)], &out, &[]);
    assert_usage_error(
        &run,
        &["--input y=", "x.npy", "no input `y`", "its inputs are x"],
    );

    let narrow = npy(&dir, "narrow.npy", &f32s(vec![4, 29]));
    let run = predict(&model, &[("x", &narrow)], &out, &[]);
    assert_usage_error(
        &run,
        &[
            "narrow.npy",
            "input `x`",
            "expected shape [batch, 30]",
            "[4, 29]",
        ],
    );

    let labels = Tensor::i64(vec![4, 30], vec![1; 120]).unwrap();
    let labels = npy(&dir, "labels.npy", &labels);
    let run = predict(&model, &[("x", &labels)], &out, &[]);
    assert_usage_error(&run, &["labels.npy", "input `x`", "f32 or f64", "i64"]);

    // Two inputs of different batch sizes: the second one is at fault, and named.
    let vae = init("specs/vae.yaml", &dir, "vae.safetensors");
    let vx = npy(&dir, "vx.npy", &f32s(vec![2, 1000]));
    let eps = npy(&dir, "eps3.npy", &f32s(vec![3, 50]));
    let run = predict(&vae, &[("x", &vx), ("eps", &eps)], &out, &[]);
    assert_usage_error(
        &run,
        &["--input eps=", "eps3.npy", "input `eps`", "[3, 50]"],
    );
    assert!(
        !text(&run.stderr).contains("vx.npy"),
        "{}",
        text(&run.stderr)
    );

    let run = predict(&model, &[("x", &x_file), ("x", &x_file)], &out, &[]);
    assert_usage_error(&run, &["input `x` is already given"]);
    assert!(!out.exists());
}

#[test]
fn bad_arguments_exit_2() {
    let dir = temp_dir("usage");
    let (model, _, x_file) = mlp(&dir);
    let out = dir.join("out");
    let m = path_str(&model);
    let o = path_str(&out);

    let run = dlbench(&["predict", m, "--input", path_str(&x_file), "--out", o]);
    assert_usage_error(&run, &["NAME=FILE", "x.npy"]);

    let nowhere = dir.join("nowhere.npy");
    let run = predict(&model, &[("x", &nowhere)], &out, &[]);
    assert_usage_error(&run, &["--input x=", "nowhere.npy", "No such file"]);

    let run = predict(&model, &[("x", &x_file)], &out, &["--backend", "nope"]);
    assert_usage_error(&run, &["backend `nope`", "reference", "native"]);

    let run = predict(&model, &[("x", &x_file)], &out, &["--device", "cuda:99"]);
    assert_usage_error(&run, &["cuda:99", "`reference`", "it can use cpu"]);

    let run = predict(&model, &[("x", &x_file)], &out, &["--threads", "0"]);
    assert_usage_error(&run, &["--threads", "0"]);
    assert!(!out.exists());
}

#[test]
fn a_state_dict_with_like_predicts_what_its_native_model_does() {
    let dir = temp_dir("state-dict");
    let (model, _, x_file) = mlp(&dir);
    let pt = dir.join("mlp.pt");
    assert_ok(&dlbench(&["convert", path_str(&model), path_str(&pt)]));
    let (native, from_pt) = (dir.join("native"), dir.join("from-pt"));
    assert_ok(&predict(&model, &[("x", &x_file)], &native, &[]));
    let like = ["--like", "specs/mlp.yaml"];
    assert_ok(&predict(&pt, &[("x", &x_file)], &from_pt, &like));
    let file = "dense_3.sigmoid.npy";
    assert_eq!(
        std::fs::read(native.join(file)).unwrap(),
        std::fs::read(from_pt.join(file)).unwrap()
    );
    let run = predict(&pt, &[("x", &x_file)], &dir.join("none"), &[]);
    assert_usage_error(&run, &["mlp.pt", "needs --like"]);
}

#[test]
fn a_failed_write_leaves_no_outputs_of_the_call() {
    let dir = temp_dir("write");
    let model = init("specs/vae.yaml", &dir, "vae.safetensors");
    let f32s = |shape: Vec<usize>| Tensor::zeros(dlbench_core::DType::F32, shape);
    let x = npy(&dir, "x.npy", &f32s(vec![1, 1000]));
    let eps = npy(&dir, "eps.npy", &f32s(vec![1, 50]));
    // `recon.sigmoid.npy` is written first; `mu.npy` cannot be, a folder is in its way.
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("mu.npy")).unwrap();
    let run = predict(&model, &[("x", &x), ("eps", &eps)], &out, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("mu.npy"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(files(&out), BTreeSet::from(["mu.npy".into()]));
}

#[cfg(feature = "test-backends")]
#[test]
fn a_backend_that_fails_exits_1_and_leaves_nothing() {
    // Ceil-mode pooling makes 3x3 of 5x5; the test backend that ignores ceil_mode makes 2x2,
    // and the Dense after it cannot be prepared.
    let dir = temp_dir("fails");
    let spec = spec(
        &dir,
        "pool.yaml",
        "  input: [1, 5, 5]\n  layers:\n    - max_pool2d: {kernel: 2, ceil_mode: true}\n    \
         - flatten\n    - dense: {units: 1}\n",
    );
    let model = init(path_str(&spec), &dir, "pool.safetensors");
    let x = npy(
        &dir,
        "x.npy",
        &Tensor::zeros(dlbench_core::DType::F32, vec![2, 1, 5, 5]),
    );
    let out = dir.join("out");
    assert_ok(&predict(&model, &[("x", &x)], &out, &[]));
    let nothing = dir.join("nothing");
    let run = predict(
        &model,
        &[("x", &x)],
        &nothing,
        &["--backend", "test-floor-pooling"],
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("test-floor-pooling"), "{stderr}");
    assert!(!nothing.exists());
}
