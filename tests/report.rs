//! `dlbench report`: the report of a real run's record (Markdown, charts, and the HTML page
//! checked in headless Chromium), and exit 2 for records it must refuse (missing, not JSON,
//! another schema), naming the file.

mod common;

use std::path::PathBuf;

use common::{assert_ok, dlbench, path_str, temp_dir, text};

/// The charts every quick run of the MLP on the reference and native gets.
const MLP_CHARTS: [&str; 6] = [
    "mlp-latency",
    "mlp-throughput",
    "mlp-step-time",
    "mlp-loss",
    "mlp-memory",
    "mlp-agreement",
];

/// A quick run of the MLP on the reference and native, into a fresh folder.
fn run_mlp(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    assert_ok(&dlbench(&[
        "run",
        "specs/mlp.yaml",
        "--quick",
        "--backends",
        "reference,native",
        "--out",
        path_str(&dir),
    ]));
    dir
}

#[test]
fn a_run_of_mlp_reports_both_backends_and_a_recommendation() {
    let dir = run_mlp("mlp");
    // `run` writes its report beside the record.
    let beside = std::fs::read_to_string(dir.join("index.md")).expect("run writes index.md");
    assert!(beside.contains("## Recommendation"), "{beside}");
    // The charts a quick run of two backends on one device and one thread count has data for
    // (time to quality too when a backend met the target; scaling and CPU against GPU need
    // more runs than this).
    for chart in MLP_CHARTS {
        for extension in ["svg", "png"] {
            let file = dir.join("charts").join(format!("{chart}.{extension}"));
            assert!(file.is_file(), "{} missing", file.display());
        }
        assert!(
            beside.contains(&format!("](charts/{chart}.svg)")),
            "{chart} in\n{beside}"
        );
    }
    for absent in ["mlp-scaling", "mlp-devices"] {
        assert!(!beside.contains(absent), "{absent} in\n{beside}");
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

/// The browser to check the HTML page in: `$DLBENCH_CHROMIUM` (set by scripts/test.sh, which
/// installs it: then it must work), else `chromium` on the PATH, else the test is skipped,
/// saying so.
fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("DLBENCH_CHROMIUM") {
        return Some(path);
    }
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(text(&found.stdout).trim().to_string())
}

#[test]
fn the_html_report_renders_every_chart_offline_in_a_real_browser() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no chromium (scripts/test.sh installs it)");
        return;
    };
    let dir = run_mlp("html");
    let page = dir.join("index.html");
    let html = std::fs::read_to_string(&page).expect("run writes index.html");
    // Self-contained: the charts are inline, nothing refers to another file or the network.
    assert!(!html.contains("src=") && !html.contains("href="), "{html}");
    let shot = dir.join("screenshot.png");
    let check = std::process::Command::new("python3")
        .arg("tests/browser/cdp_check.py")
        .arg(&page)
        .args(["--count", "svg", "--count", "table", "--height", "2400"])
        .arg("--screenshot")
        .arg(&shot)
        .env("DLBENCH_CHROMIUM", &browser)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&check.stdout), text(&check.stderr)));
    assert_eq!(check.status.code(), Some(0), "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    // Every chart the page lists drawn with a size (time to quality is listed only when a
    // backend met the target); the runs and agreement tables.
    let index = std::fs::read_to_string(dir.join("index.md")).expect("run writes index.md");
    let listed = index.matches("](charts/").count();
    assert!(listed >= MLP_CHARTS.len(), "{index}");
    assert_eq!(report["counts"]["svg"], listed as u64, "{report:#}");
    assert!(report["counts"]["table"].as_u64() >= Some(2), "{report:#}");
    let requests = report["requests"].as_array().unwrap();
    assert!(requests
        .iter()
        .all(|r| r.as_str().unwrap().starts_with("file://")));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 50_000,
        "a blank screenshot"
    );
}
