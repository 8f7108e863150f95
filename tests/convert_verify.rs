//! Every `dlbench convert` verifies itself: the written file is read back and run against its
//! source on a seeded batch, the largest difference per output is printed, and a conversion
//! that changed the numbers (planted here through the test hook) exits 1 and leaves no file.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_ok, dlbench, path_str, temp_dir, text};

/// Converts `from` to `to` and returns stderr, checking the verification table is there.
fn convert_verified(from: &Path, to: &Path, like: Option<&Path>) -> String {
    let mut args = vec!["convert", path_str(from), path_str(to)];
    if let Some(like) = like {
        args.extend(["--like", path_str(like)]);
    }
    let out = dlbench(&args);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("max |difference|"), "{stderr}");
    assert!(stderr.contains("verified: every output within"), "{stderr}");
    stderr
}

#[test]
fn conversions_between_native_onnx_and_state_dict_verify_in_every_direction() {
    let dir = temp_dir("verify");
    let native = dir.join("vae.safetensors");
    assert_ok(&dlbench(&[
        "init",
        "specs/vae.yaml",
        "--out",
        path_str(&native),
    ]));
    let onnx = dir.join("vae.onnx");
    let pt = dir.join("vae.pt");
    let stderr = convert_verified(&native, &onnx, None);
    // The VAE's three outputs are each compared, and agree exactly.
    assert_eq!(stderr.matches("0.000e0").count(), 3, "{stderr}");
    convert_verified(&onnx, &dir.join("from_onnx.safetensors"), None);
    convert_verified(&onnx, &pt, None);
    convert_verified(&native, &dir.join("from_native.pt"), None);
    convert_verified(&pt, &dir.join("from_pt.safetensors"), Some(&native));
    convert_verified(&pt, &dir.join("from_pt.onnx"), Some(&onnx));
    // --no-verify skips it.
    let out = dlbench(&[
        "convert",
        path_str(&native),
        path_str(&dir.join("quiet.onnx")),
        "--no-verify",
    ]);
    assert_ok(&out);
    assert!(
        !text(&out.stderr).contains("max |difference|"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_conversion_that_changes_the_numbers_exits_1_and_leaves_no_file() {
    let dir = temp_dir("verify-tampered");
    let native = dir.join("cnn.safetensors");
    assert_ok(&dlbench(&[
        "init",
        "specs/cnn.yaml",
        "--out",
        path_str(&native),
    ]));
    for target in ["bad.onnx", "bad.pt", "bad.safetensors"] {
        let out_path = dir.join(target);
        let out = Command::new(env!("CARGO_BIN_EXE_dlbench"))
            .args(["convert", path_str(&native), path_str(&out_path)])
            .env("DLBENCH_TEST_TAMPER_CONVERSION", "0.25")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{target}: {stderr}");
        assert!(stderr.contains("DISAGREES"), "{target}: {stderr}");
        assert!(stderr.contains("verification failed"), "{target}: {stderr}");
        assert!(!out_path.exists(), "{target} was left behind");
    }
    // A tamper below the tolerance passes: the check compares numbers, not bytes.
    let out = Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(["convert", path_str(&native), path_str(&dir.join("ok.onnx"))])
        .env("DLBENCH_TEST_TAMPER_CONVERSION", "1e-9")
        .output()
        .unwrap();
    assert_ok(&out);
}
