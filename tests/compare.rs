//! Noise versus change, as a user meets it: `dlbench run --processes` interleaves worker
//! processes and tags every sample with its process; `dlbench compare` finds the twin slowed by
//! 10% on purpose `slower` and its unslowed twin `no significant change`; a record whose
//! machine-speed probe says the machine was in another state gets no verdict; bad input is
//! exit 2 naming the file or flag.
#![cfg(feature = "test-backends")]

mod common;

use std::path::{Path, PathBuf};

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use serde_json::Value;

/// A quick run of the MLP on the twins, in `processes` worker processes each.
fn run_twins(dir: &Path, processes: usize) -> PathBuf {
    let out = dlbench(&[
        "run",
        "specs/mlp.yaml",
        "--quick",
        "--backends",
        "test-twin-a,test-twin-b,test-twin-slowed",
        "--processes",
        &processes.to_string(),
        "--out",
        path_str(dir),
    ]);
    assert_ok(&out);
    dir.join("results.json")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The verdict of `backend`'s `measure` in `dlbench compare`'s table.
fn verdict<'a>(table: &'a str, backend: &str, measure: &str) -> &'a str {
    let row = format!("{backend} cpu x1: {measure}");
    let line = table
        .lines()
        .find(|l| l.starts_with(&row))
        .unwrap_or_else(|| panic!("no row {row} in\n{table}"));
    [
        "slower",
        "faster",
        "no significant change",
        "machine changed: not comparable",
    ]
    .into_iter()
    .find(|v| line.ends_with(v))
    .unwrap_or_else(|| panic!("no verdict in {line}"))
}

#[test]
fn interleaved_processes_tell_the_slowed_twin_from_noise() {
    let dir = temp_dir("twins");
    let record = run_twins(&dir, 4);
    let results = read(&record);
    // Every sample knows its process; the summaries resampled four of them.
    for run in results["runs"].as_array().unwrap() {
        let training = &run["training"];
        assert_eq!(training["step_time"]["processes"], 4, "{}", run["backend"]);
        let processes: Vec<u64> = training["raw_step_process"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        assert_eq!(
            processes.len(),
            training["raw_step_ns"].as_array().unwrap().len()
        );
        assert_eq!((processes[0], processes[processes.len() - 1]), (0, 3));
        assert!(run["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("timed in 4 worker processes")));
        let inference = &run["inference"][0];
        assert_eq!(inference["processes"], 4);
    }
    // The probe was taken before each of the 12 worker processes and at the end.
    let probe = &results["probe"];
    assert_eq!(probe["summary"]["rounds"], 13, "{probe}");

    // The verdicts are statistics of a shared machine: a burst of other work (the page-cache
    // writeback after a cold build, say) can widen every interval past a 10% change. The
    // unslowed twin must never be called slower or faster; the slowed one must be found slower
    // in one of three runs. A change that hid it would fail all three.
    let mut tables = Vec::new();
    let mut record = record;
    for attempt in 1..=3 {
        if attempt > 1 {
            record = run_twins(&dir.join(format!("attempt-{attempt}")), 4);
        }
        let out = dlbench(&["compare", path_str(&record), "--baseline", "test-twin-a"]);
        assert_ok(&out);
        let table = text(&out.stdout);
        assert!(
            ["no significant change", "machine changed: not comparable"].contains(&verdict(
                &table,
                "test-twin-b",
                "training step"
            )),
            "{table}"
        );
        if verdict(&table, "test-twin-slowed", "training step") == "slower" {
            return;
        }
        tables.push(table);
    }
    panic!(
        "the slowed twin was not found slower in 3 runs:\n{}",
        tables.join("\n")
    );
}

#[test]
fn a_machine_in_another_state_gets_no_verdict() {
    let dir = temp_dir("machine");
    let old = run_twins(&dir.join("old"), 2);
    // The same record, as if everything, the probe included, had run 40% slower.
    let mut slow = read(&old);
    let scale = |v: &mut Value| *v = Value::from(v.as_f64().unwrap() * 1.4);
    for sample in slow["probe"]["raw_ns"].as_array_mut().unwrap() {
        scale(sample);
    }
    scale(&mut slow["probe"]["summary"]["median_ns"]);
    for run in slow["runs"].as_array_mut().unwrap() {
        for sample in run["training"]["raw_step_ns"].as_array_mut().unwrap() {
            scale(sample);
        }
        scale(&mut run["training"]["step_time"]["median_ns"]);
    }
    let new = dir.join("slow.json");
    std::fs::write(&new, serde_json::to_vec(&slow).unwrap()).unwrap();
    let out = dlbench(&["compare", path_str(&old), path_str(&new)]);
    assert_ok(&out);
    let table = text(&out.stdout);
    assert!(table.contains("machine-speed probe: 1.400x"), "{table}");
    assert!(
        table.contains("the machine was in another state"),
        "{table}"
    );
    assert_eq!(
        verdict(&table, "test-twin-a", "training step"),
        "machine changed: not comparable"
    );
    // A record against itself: no change anywhere.
    let out = dlbench(&["compare", path_str(&old), path_str(&old)]);
    assert_ok(&out);
    let table = text(&out.stdout);
    assert!(
        !table.contains("slower") && !table.contains("faster"),
        "{table}"
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_it() {
    let dir = temp_dir("bad");
    let record = run_twins(&dir, 1);
    let missing = dir.join("missing.json");
    let other_spec = dir.join("other.json");
    let mut other = read(&record);
    other["spec"]["name"] = Value::from("cnn");
    std::fs::write(&other_spec, serde_json::to_vec(&other).unwrap()).unwrap();
    let cases: [(Vec<&str>, String); 5] = [
        (
            vec![path_str(&record), path_str(&missing)],
            path_str(&missing).to_string(),
        ),
        (
            vec![path_str(&record), path_str(&other_spec)],
            "of spec `mlp`".to_string(),
        ),
        (
            vec![path_str(&record), "--baseline", "torch"],
            "--baseline `torch` is not in the record".to_string(),
        ),
        (vec![path_str(&record)], "give two records".to_string()),
        (
            vec![path_str(&record), path_str(&record), "--threshold", "5"],
            "not a fraction".to_string(),
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["compare"];
        all.extend(args);
        let out = dlbench(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&needle), "{all:?}: {stderr}");
    }
    // One process per run: the comparison says its intervals cannot see processes.
    let out = dlbench(&["compare", path_str(&record), "--baseline", "test-twin-a"]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains("--processes"),
        "{}",
        text(&out.stdout)
    );
}
