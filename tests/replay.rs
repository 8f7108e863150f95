//! Replaying a PyTorch training run: `tests/golden/replay.py` records 20 steps of each seed
//! model in PyTorch (initial state_dict, batches, per-step losses); dlbench converts the
//! state_dict, reads the batches in file order with the VAE's noise from the file, and every
//! backend must follow PyTorch's losses step by step. The recipe is docs/replay.md.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_testkit::python::torch_python;
use serde_json::Value;

const STEPS: usize = 20;

/// Rows per step, as `tests/golden/replay.py` records them: small, so that the debug build's
/// unoptimised burn and candle train the CNN in seconds.
const BATCH: usize = 8;

/// The relative distance a step's loss may have from PyTorch's.
const TOLERANCE: f64 = 1e-4;

/// Each seed model: its loss and optimizer as its spec has them, and the `--map` pairs that
/// place the state_dict tensors whose shapes alone do not (tests/convert.rs explains them).
const MODELS: [(&str, &str, &str, &[&str]); 4] = [
    (
        "mlp",
        "binary_cross_entropy",
        "{adam: {lr: 0.001}}",
        &["0.bias=dense_1.bias", "2.bias=dense_2.bias"],
    ),
    ("cnn", "cross_entropy", "{sgd: {lr: 0.01}}", &[]),
    (
        "rnn",
        "binary_cross_entropy",
        "{adam: {lr: 0.001}}",
        &["lstm.bias_ih_l0=lstm_1.b_ih", "lstm.bias_hh_l0=lstm_1.b_hh"],
    ),
    ("vae", "vae_elbo", "{sgd: {lr: 0.01}}", &[]),
];

/// Records PyTorch's run of `name` into `dir` (with batches `swap` and `swap + 1` exchanged
/// in the data file, if given), converts its initial weights and writes the replay spec.
fn record(python: &Path, name: &str, dir: &Path, swap: Option<usize>) -> Vec<f64> {
    let (_, loss, optimizer, map) = MODELS.iter().find(|m| m.0 == name).unwrap();
    let mut args = vec![
        "tests/golden/replay.py".to_string(),
        name.to_string(),
        STEPS.to_string(),
        path_str(dir).to_string(),
    ];
    args.extend(swap.map(|k| k.to_string()));
    let out = Command::new(python)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python runs");
    assert_ok(&out);
    let (pt, init) = (dir.join("init.pt"), dir.join("init.safetensors"));
    let spec = format!("specs/{name}.yaml");
    let mut convert = vec!["convert", path_str(&pt), path_str(&init), "--like", &spec];
    for pair in map.iter() {
        convert.extend(["--map", pair]);
    }
    assert_ok(&dlbench(&convert));
    let (targets, inputs) = if name == "vae" {
        ("", ", inputs: {eps: eps}")
    } else {
        (", targets: y", "")
    };
    let replay = format!(
        "name: replay-{name}\n\
         model: {{file: init.safetensors}}\n\
         data: {{npz: batches.npz, features: x{targets}{inputs}, validation: 0}}\n\
         train: {{loss: {loss}, optimizer: {optimizer}, batch_size: {BATCH}, steps: {STEPS}, \
         shuffle: false}}\n\
         inference: {{batch_sizes: [1]}}\n"
    );
    std::fs::write(dir.join("replay.yaml"), replay).unwrap();
    let torch: Value =
        serde_json::from_slice(&std::fs::read(dir.join("losses.json")).unwrap()).unwrap();
    torch["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Every backend this build has that trains or infers for real: `dlbench list`'s, without the
/// test doubles (`test-...`).
fn backends_in_this_build() -> String {
    let out = dlbench(&["list"]);
    assert_ok(&out);
    let listing = text(&out.stdout);
    let names: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.starts_with("Backends in this build"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !name.starts_with("test-"))
        .collect();
    assert!(names.contains(&"reference"), "{listing}");
    names.join(",")
}

/// Runs the replay spec in `dir` on `backends` and gives each run's backend and per-step
/// losses; a run that failed fails the test, one that cannot train is left out.
fn replay(dir: &Path, backends: &str) -> Vec<(String, Vec<f64>)> {
    let spec = dir.join("replay.yaml");
    let out_dir = dir.join("out");
    let args = [
        "run",
        path_str(&spec),
        "--quick",
        "--out",
        path_str(&out_dir),
        "--backends",
        backends,
    ];
    let out = dlbench(&args);
    assert_ok(&out);
    let results: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    let mut runs = Vec::new();
    for run in results["runs"].as_array().unwrap() {
        let backend = run["backend"].as_str().unwrap().to_string();
        assert_eq!(
            run["status"],
            "ok",
            "{backend}: {}\n{}",
            run["error"],
            text(&out.stdout)
        );
        let Some(losses) = run["training"]["losses"].as_array() else {
            println!("{backend}: does not train");
            continue;
        };
        runs.push((
            backend,
            losses.iter().map(|v| v.as_f64().unwrap()).collect(),
        ));
    }
    runs
}

/// `Err` naming the first step whose loss is further than [`TOLERANCE`] from PyTorch's.
fn follows(torch: &[f64], ours: &[f64]) -> Result<f64, String> {
    if torch.len() != ours.len() {
        return Err(format!("{} steps, PyTorch ran {}", ours.len(), torch.len()));
    }
    let mut worst: f64 = 0.0;
    for (step, (t, o)) in torch.iter().zip(ours).enumerate() {
        let rel = (o - t).abs() / t.abs().max(f64::MIN_POSITIVE);
        if rel > TOLERANCE || rel.is_nan() {
            return Err(format!(
                "step {step}: loss {o}, PyTorch's {t} (relative distance {rel:.2e})"
            ));
        }
        worst = worst.max(rel);
    }
    Ok(worst)
}

#[test]
fn every_backend_follows_a_pytorch_training_run_step_by_step() {
    let Some(python) = torch_python() else {
        return;
    };
    let backends = backends_in_this_build();
    for (name, ..) in MODELS {
        let dir = temp_dir(name);
        let torch = record(&python, name, &dir, None);
        let runs = replay(&dir, &backends);
        assert!(runs.len() >= 2, "{name}: {runs:?}");
        for (backend, losses) in runs {
            match follows(&torch, &losses) {
                Ok(worst) => println!("{name} {backend}: worst relative distance {worst:.1e}"),
                Err(e) => panic!("{name} on {backend} leaves PyTorch's run at {e}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_batch_out_of_order_leaves_pytorchs_run_at_that_step() {
    let Some(python) = torch_python() else {
        return;
    };
    for name in ["mlp", "vae"] {
        let dir = temp_dir(&format!("swapped-{name}"));
        let torch = record(&python, name, &dir, Some(3));
        let runs = replay(&dir, "native");
        let error = follows(&torch, &runs[0].1).unwrap_err();
        assert!(error.starts_with("step 3: "), "{name}: {error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
