//! `dlbench convert MODEL.safetensors MODEL.ts` end to end, in a build with libtorch: the
//! MLP spec's model (`dlbench init`) is exported to TorchScript, and Python's
//! `torch.jit.load` runs the file at two batch sizes with nothing from dlbench.

#![cfg(feature = "tch")]

mod common;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_testkit::python::torch_python;
use std::process::Command;

/// Loads the module (in eval mode, its argument named after the graph input `x`), runs it on
/// batches of 1 and 5 rows of 30 features (the MLP's input), and prints each output's shape
/// and whether every value is a probability.
const RUN_PY: &str = r#"
import sys
import torch

module = torch.jit.load(sys.argv[1])
assert not module.training
assert "x: Tensor" in module.code, module.code
for batch in (1, 5):
    x = torch.linspace(0, 1, batch * 30).reshape(batch, 30)
    with torch.no_grad():
        y = module(x)
    ok = bool(((y > 0) & (y < 1)).all())
    print(f"batch {batch}: {list(y.shape)} {ok}")
"#;

#[test]
fn an_initialised_mlp_converts_to_torchscript_that_torch_runs() {
    let dir = temp_dir("mlp");
    let (native, ts) = (dir.join("mlp.safetensors"), dir.join("model.ts"));
    assert_ok(&dlbench(&[
        "init",
        "specs/mlp.yaml",
        "--out",
        path_str(&native),
    ]));
    let out = dlbench(&["convert", path_str(&native), path_str(&ts)]);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("431 parameters"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join(".model.ts.tmp").exists());
    let Some(python) = torch_python() else {
        return;
    };
    let out = Command::new(python)
        .args(["-c", RUN_PY, path_str(&ts)])
        .output()
        .expect("python runs");
    assert_ok(&out);
    assert_eq!(
        text(&out.stdout),
        "batch 1: [1, 1] True\nbatch 5: [5, 1] True\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_state_dict_converts_to_torchscript_with_its_graph_from_like() {
    let dir = temp_dir("state-dict");
    let (native, pt, ts) = (
        dir.join("rnn.safetensors"),
        dir.join("rnn.pt"),
        dir.join("rnn.torchscript"),
    );
    assert_ok(&dlbench(&[
        "init",
        "specs/rnn.yaml",
        "--out",
        path_str(&native),
    ]));
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&pt)]));
    let out = dlbench(&["convert", path_str(&pt), path_str(&ts)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("needs --like"),
        "{}",
        text(&out.stderr)
    );
    let out = dlbench(&[
        "convert",
        path_str(&pt),
        path_str(&ts),
        "--like",
        "specs/rnn.yaml",
    ]);
    assert_ok(&out);
    assert!(ts.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
