//! The libtorch backend end to end, through the `dlbench` binary built with the `tch` feature:
//! it is listed, and a quick run of the MLP spec agrees with the reference and is timed. The
//! binary finds libtorch through its rpath: nothing here sets LD_LIBRARY_PATH.

#![cfg(feature = "tch")]

mod common;

use common::{dlbench, text};
use std::process::Command;

use serde_json::Value;

#[test]
fn list_shows_tch_with_its_libtorch_version() {
    let out = dlbench(&["list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tch = json["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "tch")
        .unwrap_or_else(|| panic!("no tch backend in {json}"));
    let version = tch["version"].as_str().unwrap();
    assert!(
        version.starts_with("tch 0.22.0 / libtorch 2.11.0"),
        "{version}"
    );
    assert_eq!(tch["capabilities"]["training"], true);
    assert_eq!(tch["capabilities"]["devices"][0], "cpu");
    let missing = json["not_built"].as_array().unwrap();
    assert!(missing.iter().all(|b| b["name"] != "tch"), "{json}");
}

#[test]
fn a_quick_mlp_run_on_tch_agrees_and_is_timed() {
    let dir = std::env::temp_dir().join(format!("dlbench-tch-mlp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args([
            "run",
            "specs/mlp.yaml",
            "--backends",
            "reference,tch",
            "--quick",
        ])
        .arg("--out")
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("dlbench runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let run = record["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == "tch")
        .unwrap_or_else(|| panic!("no tch run in {record}"));
    assert_eq!(run["status"], "ok", "{run}");
    for check in ["forward", "gradients", "training"] {
        assert_eq!(run["agreement"][check]["pass"], true, "{check}: {run}");
    }
    let inference = run["inference"].as_array().unwrap();
    assert_eq!(inference.len(), 2, "{run}");
    for entry in inference {
        assert!(entry["median_ns"].as_f64().unwrap() > 0.0, "{entry}");
    }
    assert!(run["training"]["step_median_ns"].as_f64().unwrap() > 0.0);
    assert!(record["environment"]["versions"]["tch"]
        .as_str()
        .is_some_and(|v| v.contains("libtorch")));
    let _ = std::fs::remove_dir_all(&dir);
}
