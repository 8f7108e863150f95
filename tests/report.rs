//! `dlbench report`: a Markdown report from a real run's record, and exit 2 for records it
//! must refuse (missing, not JSON, another schema), naming the file.

mod common;

use common::{assert_ok, dlbench, path_str, temp_dir, text};

#[test]
fn a_run_of_mlp_reports_both_backends_and_a_recommendation() {
    let dir = temp_dir("mlp");
    let out = dlbench(&[
        "run",
        "specs/mlp.yaml",
        "--quick",
        "--backends",
        "reference,native",
        "--out",
        path_str(&dir),
    ]);
    assert_ok(&out);
    // `run` writes its report beside the record.
    let beside = std::fs::read_to_string(dir.join("index.md")).expect("run writes index.md");
    assert!(beside.contains("## Recommendation"), "{beside}");
    for chart in [
        "mlp-latency.svg",
        "mlp-latency.png",
        "mlp-loss.svg",
        "mlp-loss.png",
    ] {
        assert!(dir.join("charts").join(chart).is_file(), "{chart} missing");
        assert!(beside.contains("charts/mlp-latency.svg"), "{beside}");
    }
    let record = dir.join("results.json");
    let report_dir = dir.join("report");
    let out = dlbench(&["report", path_str(&record), "--out", path_str(&report_dir)]);
    assert_ok(&out);
    let index = std::fs::read_to_string(report_dir.join("index.md")).expect("index.md written");
    for expected in [
        "## Recommendation",
        "**Lowest-latency inference (batch 1)**",
        "**Training throughput",
        "| reference |",
        "| native |",
        "## Spec `mlp`",
    ] {
        assert!(index.contains(expected), "{expected} in\n{index}");
    }
    assert!(!index.contains("NaN"), "{index}");

    // The same record under a schema this build does not know is refused, naming the file.
    let json = std::fs::read_to_string(&record).unwrap();
    let newer = dir.join("v2.json");
    std::fs::write(
        &newer,
        json.replacen("dlbench.results/v1", "dlbench.results/v2", 1),
    )
    .unwrap();
    let out = dlbench(&["report", path_str(&newer), "--out", path_str(&report_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("v2.json"), "{stderr}");
    assert!(stderr.contains("dlbench.results/v2"), "{stderr}");
}

#[test]
fn missing_and_unreadable_records_exit_2_naming_the_file() {
    let dir = temp_dir("refused");
    let out_dir = dir.join("report");
    let missing = dir.join("missing.json");
    let out = dlbench(&["report", path_str(&missing), "--out", path_str(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("missing.json"),
        "{}",
        text(&out.stderr)
    );

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let out = dlbench(&["report", path_str(&garbage), "--out", path_str(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("garbage.json"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.join("index.md").exists());

    let out = dlbench(&["report", "--out", path_str(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "no records is a usage error");
}
