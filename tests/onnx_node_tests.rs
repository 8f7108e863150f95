//! The ONNX backend node tests (the 1,765 that the `onnx==1.22.0` wheel ships on disk) as a
//! conformance table: each test dlbench imports ("covered") runs on every backend compiled in,
//! and its outputs are compared with ONNX's own expected outputs at ONNX's own tolerance
//! (`|got - want| <= 1e-7 + 1e-3 * |want|`, numpy's `assert_allclose` with rtol 1e-3, atol 1e-7,
//! NaN equal to NaN; shapes must be equal; dtypes are not compared, since dlbench computes half
//! floats in f32 and reads integer and bool tensors as i64).
//!
//! A second section, *weights as initializers*, takes every test of opsets 9 to 22 that is not
//! imported as is and has inputs besides the first, moves those inputs (weights, shapes,
//! indices, which dlbench needs known at import time) into initializers holding the test's own
//! `input_<i>.pb` values, and runs the variants that then import the same way.
//!
//! Each backend has its lists of the tests expected to pass, `tests/onnx-node/<backend>.txt`
//! and `tests/onnx-node/<backend>.initializers.txt` (tract's style): the test fails when a
//! listed test does not pass, or when a covered test that is not listed passes, and prints the
//! lines to add or remove. With `DLBENCH_WRITE_ONNX_CONFORMANCE=1` it instead rewrites the lists
//! from what passed and writes `docs/onnx-conformance.md` (`scripts/onnx-conformance.sh` does
//! that with every backend).
//!
//! The tests are found through the project's Python (`dlbench_testkit::python::torch_python`),
//! which also lists each model's opset, ops, graph inputs and outputs, and writes the variants
//! (with `onnx`); without it the test is skipped.

#[path = "onnx-node/page.rs"]
mod page;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dlbench_core::{Backend, DType, Dim, InputRole, Mode, Model, PrepareOptions, Tensor, Values};
use dlbench_formats::onnx::{import_onnx, read_tensor_file, OPSETS};
use serde_json::{json, Value};

/// ONNX's tolerance for node tests (numpy.testing.assert_allclose).
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;
/// Set to `1`: rewrite the expected lists and the conformance page instead of checking.
const WRITE_VAR: &str = "DLBENCH_WRITE_ONNX_CONFORMANCE";
const REGENERATE: &str = "scripts/onnx-conformance.sh";
const LISTS: &str = "tests/onnx-node";
const PAGE: &str = "docs/onnx-conformance.md";

/// Lists every node test: its default-domain opset, its ops, its non-initializer graph inputs
/// and its outputs, in graph order (the order of `input_<i>.pb` and `output_<i>.pb`).
const MANIFEST_PY: &str = r#"
import json, os, sys
import onnx
root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
tests = []
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "model.onnx")
    if not os.path.isfile(path):
        continue
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    ops = []
    for node in graph.node:
        op = node.op_type if node.domain in ("", "ai.onnx") else node.domain + "." + node.op_type
        if op not in ops:
            ops.append(op)
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    tests.append({
        "name": name,
        "opset": opsets[0] if opsets else None,
        "ops": ops,
        "inputs": [i.name for i in graph.input if i.name not in inits],
        "outputs": [o.name for o in graph.output],
    })
print(json.dumps({"onnx": onnx.__version__, "root": root, "tests": tests}))
"#;

/// Reads `{"out": DIR, "tests": [{"name", "dir"}]}` on stdin and writes, for each test, the
/// variant `DIR/<name>/model.onnx` whose graph inputs 1.. are initializers holding the test's
/// own `input_<i>.pb` values; prints `{name: why}` for the tests it could not vary.
const VARIANTS_PY: &str = r#"
import json, os, sys
import onnx
job = json.load(sys.stdin)
skipped = {}
for test in job["tests"]:
    model = onnx.load(os.path.join(test["dir"], "model.onnx"), load_external_data=False)
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    odd = [i.name for i in inputs[1:] if not i.type.HasField("tensor_type")]
    if odd:
        skipped[test["name"]] = "input `%s` is a sequence or an optional: it cannot be an initializer" % odd[0]
        continue
    for k, value in enumerate(inputs[1:], start=1):
        tensor = onnx.TensorProto()
        with open(os.path.join(test["dir"], "test_data_set_0", "input_%d.pb" % k), "rb") as f:
            tensor.ParseFromString(f.read())
        tensor.name = value.name
        graph.initializer.append(tensor)
        graph.input.remove(value)
    os.makedirs(os.path.join(job["out"], test["name"]), exist_ok=True)
    onnx.save(model, os.path.join(job["out"], test["name"], "model.onnx"))
print(json.dumps(skipped))
"#;

/// One node test folder, as the manifest describes it, or its variant with weights as
/// initializers (its `model` written elsewhere, its `inputs` the first only).
#[derive(Clone)]
struct Case {
    name: String,
    dir: PathBuf,
    model: PathBuf,
    opset: Option<i64>,
    ops: Vec<String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// What a backend did with a covered test.
#[derive(Clone)]
enum Outcome {
    Pass,
    Fail(String),
}

/// The project's Python with `script` on `stdin`; `None` (printed) where it lacks onnx.
fn python(script: &str, stdin: &str) -> Option<Vec<u8>> {
    let python = dlbench_testkit::python::torch_python()?;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the project's python runs");
    let mut pipe = child.stdin.take().expect("a stdin");
    pipe.write_all(stdin.as_bytes()).expect("writes to python");
    drop(pipe);
    let out = child.wait_with_output().expect("the project's python runs");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // The test command sets $DLBENCH_PYTHON and installs onnx: there, never skip.
        let set_up = std::env::var_os("DLBENCH_PYTHON").is_some_and(|p| !p.is_empty());
        if !set_up && err.contains("No module named 'onnx'") {
            println!("skipped: {} has no onnx module", python.display());
            return None;
        }
        panic!("the project's python failed:\n{err}");
    }
    Some(out.stdout)
}

/// The wheel's node tests and its version, or `None` (printed) without a Python with onnx.
fn node_tests() -> Option<(String, Vec<Case>)> {
    let out = python(MANIFEST_PY, "")?;
    let json: Value = serde_json::from_slice(&out).expect("the manifest is JSON");
    let root = PathBuf::from(json["root"].as_str().expect("root"));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    };
    let cases = json["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().expect("name").to_string();
            Case {
                dir: root.join(&name),
                model: root.join(&name).join("model.onnx"),
                name,
                opset: t["opset"].as_i64(),
                ops: strings(&t["ops"]),
                inputs: strings(&t["inputs"]),
                outputs: strings(&t["outputs"]),
            }
        })
        .collect();
    Some((json["onnx"].as_str().unwrap_or("?").to_string(), cases))
}

/// The variants of `cases` with weights as initializers, written under `out`, and the tests
/// that have none, with why.
fn variants(cases: &[&Case], out: &Path) -> (Vec<Case>, Vec<(String, String)>) {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("creates the variants' folder");
    let job = json!({
        "out": out,
        "tests": cases.iter().map(|c| json!({"name": c.name, "dir": c.dir})).collect::<Vec<_>>(),
    });
    let stdout = python(VARIANTS_PY, &job.to_string())
        .expect("the project's python, which listed the tests");
    let skipped: BTreeMap<String, String> =
        serde_json::from_slice(&stdout).expect("the variants' report is JSON");
    let written = cases
        .iter()
        .filter(|c| !skipped.contains_key(&c.name))
        .map(|&c| Case {
            model: out.join(&c.name).join("model.onnx"),
            inputs: c.inputs[..1].to_vec(),
            ..c.clone()
        })
        .collect();
    (written, skipped.into_iter().collect())
}

/// Every real backend compiled into this build (the construction of `crates/cli/registry.rs`,
/// without the deliberately faulty test backends).
fn backends() -> Vec<Box<dyn Backend>> {
    #[allow(unused_mut)] // extended only by features
    let mut all: Vec<Box<dyn Backend>> = vec![
        Box::new(dlbench_reference::ReferenceBackend),
        Box::new(dlbench_native::engine::NativeBackend),
    ];
    #[cfg(feature = "burn")]
    all.push(Box::new(dlbench_burn::BurnBackend));
    #[cfg(feature = "candle")]
    all.push(Box::new(dlbench_candle::CandleBackend));
    #[cfg(feature = "tract")]
    all.push(Box::new(dlbench_tract::TractBackend));
    #[cfg(feature = "tch")]
    all.push(Box::new(dlbench_tch::TchBackend));
    all
}

/// The first line of a message, at most `max` characters.
fn short(message: &str, max: usize) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// The panic's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// The case's model imported, or why not (the error without the file's path in front).
fn import(case: &Case) -> Result<Model, String> {
    match catch_unwind(AssertUnwindSafe(|| import_onnx(&case.model))) {
        Ok(Ok(model)) => Ok(model),
        Ok(Err(dlbench_formats::Error::File { message, .. })) => Err(short(&message, 400)),
        Ok(Err(other)) => Err(short(&other.to_string(), 400)),
        Err(payload) => Err(format!(
            "the import panicked: {}",
            short(&panic_message(&*payload), 200)
        )),
    }
}

/// The test's inputs for the imported graph: the `.pb` tensors by ONNX input name, in the IR
/// input's dtype; a dropout mask the import added is all ones.
fn inputs(case: &Case, model: &Model) -> Result<Values, String> {
    let data = case.dir.join("test_data_set_0");
    let mut by_name = BTreeMap::new();
    for (i, name) in case.inputs.iter().enumerate() {
        let path = data.join(format!("input_{i}.pb"));
        let (_, tensor) = read_tensor_file(&path)
            .map_err(|e| format!("input_{i}.pb: {}", short(&e.to_string(), 200)))?;
        by_name.insert(name.clone(), tensor);
    }
    let batch = model
        .graph
        .inputs
        .iter()
        .find_map(
            |input| match (input.value.shape.first(), by_name.get(&input.value.name)) {
                (Some(Dim::Batch), Some(t)) => t.shape().first().copied(),
                _ => None,
            },
        )
        .unwrap_or(1);
    let mut values = Values::new();
    for input in &model.graph.inputs {
        let info = &input.value;
        let tensor = match (by_name.get(&info.name), input.role) {
            (Some(t), _) => t.to_dtype(info.dtype),
            (None, InputRole::DropoutMask { .. }) => {
                let shape: Vec<usize> = info.shape.iter().map(|d| d.resolve(batch)).collect();
                let n = shape.iter().product();
                let ones = match info.dtype {
                    DType::F64 => Tensor::f64(shape, vec![1.0; n]),
                    DType::I64 => Tensor::i64(shape, vec![1; n]),
                    DType::F32 => Tensor::f32(shape, vec![1.0; n]),
                };
                ones.map_err(|e| e.to_string())?
            }
            (None, role) => {
                return Err(format!(
                    "the imported graph has input `{}` ({role:?}) that the test does not feed",
                    info.name
                ))
            }
        };
        values.insert(info.name.clone(), tensor);
    }
    Ok(values)
}

/// `got` against `want` at ONNX's tolerance; the error says by how much.
fn compare(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut bad = 0;
    let mut worst: Option<(f64, f64, f64)> = None;
    for (&a, &b) in g.iter().zip(&w) {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ATOL + RTOL * b.abs();
        if !ok {
            bad += 1;
            let diff = if (a - b).is_nan() {
                f64::INFINITY
            } else {
                (a - b).abs()
            };
            if worst.is_none_or(|(d, _, _)| diff > d) {
                worst = Some((diff, a, b));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((diff, a, b)) => Err(format!(
            "max |diff| {diff:.2e} (got {a:.6}, want {b:.6}); {bad} of {} off",
            w.len()
        )),
    }
}

/// Runs a covered test on one backend.
fn run(case: &Case, model: &Model, feed: &Values, backend: &dyn Backend) -> Outcome {
    let attempt = || -> Result<(), String> {
        let err =
            |what: &str, e: dlbench_core::Error| format!("{what}: {}", short(&e.to_string(), 200));
        let mut session = backend
            .prepare(model, &PrepareOptions::default())
            .map_err(|e| err("prepare", e))?;
        session.load(feed).map_err(|e| err("load", e))?;
        session
            .forward(Mode::Inference)
            .map_err(|e| err("forward", e))?;
        let outputs = session.outputs().map_err(|e| err("outputs", e))?;
        let data = case.dir.join("test_data_set_0");
        for (i, name) in model.graph.outputs.iter().enumerate() {
            let (_, want) = read_tensor_file(&data.join(format!("output_{i}.pb")))
                .map_err(|e| format!("output_{i}.pb: {}", short(&e.to_string(), 200)))?;
            let got = outputs
                .get(name)
                .ok_or_else(|| format!("the session returned no output `{name}`"))?;
            compare(got, &want).map_err(|e| format!("output {i} `{}`: {e}", case.outputs[i]))?;
        }
        Ok(())
    };
    match catch_unwind(AssertUnwindSafe(attempt)) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(reason)) => Outcome::Fail(reason),
        Err(payload) => Outcome::Fail(format!(
            "panicked: {}",
            short(&panic_message(&*payload), 200)
        )),
    }
}

/// The tests named in a list file (`#` starts a comment); empty if there is no file.
fn read_list(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// One section of the table: per covered test, each backend's outcome; per other test, why it
/// is not imported; each backend's time.
#[derive(Default)]
struct Section {
    covered: Vec<(String, Vec<String>, Vec<Outcome>)>,
    not_imported: Vec<(String, Vec<String>, String)>,
    times: Vec<Duration>,
}

impl Section {
    fn passes(&self, b: usize) -> BTreeSet<String> {
        self.covered
            .iter()
            .filter(|(_, _, o)| matches!(o[b], Outcome::Pass))
            .map(|(name, _, _)| name.clone())
            .collect()
    }

    /// Imports `case` and runs it on every backend, or records why it is not imported.
    fn add(&mut self, case: &Case, backends: &[Box<dyn Backend>]) {
        let model = match import(case) {
            Ok(model) => model,
            Err(why) => {
                let entry = (case.name.clone(), case.ops.clone(), why);
                return self.not_imported.push(entry);
            }
        };
        self.times.resize(backends.len(), Duration::ZERO);
        let outcomes = match inputs(case, &model) {
            Ok(feed) => backends
                .iter()
                .enumerate()
                .map(|(b, backend)| {
                    let start = Instant::now();
                    let outcome = run(case, &model, &feed, backend.as_ref());
                    self.times[b] += start.elapsed();
                    outcome
                })
                .collect(),
            Err(why) => vec![Outcome::Fail(why); backends.len()],
        };
        let entry = (case.name.clone(), case.ops.clone(), outcomes);
        self.covered.push(entry);
    }

    /// Why `test` is not in this section's passes on backend `b`.
    fn why_not(&self, test: &str, b: usize) -> Option<String> {
        let failed = self.covered.iter().find(|(n, _, _)| n == test);
        let refused = self.not_imported.iter().find(|(n, _, _)| n == test);
        match (failed, refused) {
            (Some((_, _, outcomes)), _) => match &outcomes[b] {
                Outcome::Fail(why) => Some(why.clone()),
                Outcome::Pass => Some(String::new()),
            },
            (None, Some((_, _, why))) => Some(format!("not imported: {why}")),
            (None, None) => None,
        }
    }
}

/// Everything observed: the tests as ONNX ships them (`as_is`), and the variants of those of
/// opsets 9 to 22 not imported as is with their inputs 1.. as initializers (`initializers`;
/// its `not_imported` holds the variants that still do not import, and the tests that have
/// no variant for a reason other than having a single input).
struct Observed {
    onnx: String,
    total: usize,
    backends: Vec<&'static str>,
    as_is: Section,
    initializers: Section,
    /// Tests of opsets 9 to 22 not imported as is, and how many of them have a single input.
    in_opsets: usize,
    single_input: usize,
}

/// The two sections: their names (in the lists' headers) and their lists' file suffixes.
const SECTIONS: [(&str, &str); 2] = [("as is", ""), ("weights as initializers", ".initializers")];

impl Observed {
    fn section(&self, index: usize) -> &Section {
        [&self.as_is, &self.initializers][index]
    }
}

fn observe() -> Option<Observed> {
    let (onnx, cases) = node_tests()?;
    let backends = backends();
    let mut as_is = Section::default();
    let mut initializers = Section::default();
    // Backends' panics are outcomes, printed in the table; keep them off the test's output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in &cases {
        as_is.add(case, &backends);
    }
    let refused: BTreeSet<&str> = as_is
        .not_imported
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    let in_opsets: Vec<&Case> = cases
        .iter()
        .filter(|c| refused.contains(c.name.as_str()))
        .filter(|c| c.opset.is_some_and(|o| OPSETS.contains(&o)))
        .collect();
    let candidates: Vec<&Case> = in_opsets
        .iter()
        .copied()
        .filter(|c| c.inputs.len() > 1)
        .collect();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("onnx-node-initializers-{}", std::process::id()));
    let (written, skipped) = variants(&candidates, &out);
    for case in &written {
        initializers.add(case, &backends);
    }
    for (name, why) in skipped {
        let ops = cases
            .iter()
            .find(|c| c.name == name)
            .expect("a test")
            .ops
            .clone();
        initializers.not_imported.push((name, ops, why));
    }
    initializers.not_imported.sort_by(|a, b| a.0.cmp(&b.0));
    let _ = std::fs::remove_dir_all(&out);
    std::panic::set_hook(hook);
    Some(Observed {
        onnx,
        total: cases.len(),
        backends: backends.iter().map(|b| b.name()).collect(),
        as_is,
        initializers,
        single_input: in_opsets.len() - candidates.len(),
        in_opsets: in_opsets.len(),
    })
}

#[test]
fn onnx_node_tests_pass_as_listed() {
    let start = Instant::now();
    let Some(observed) = observe() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!(
        "{} ONNX node tests, {} imported as is, {} more with weights as initializers, in {:.1} s",
        observed.total,
        observed.as_is.covered.len(),
        observed.initializers.covered.len(),
        start.elapsed().as_secs_f64()
    );
    for (b, name) in observed.backends.iter().enumerate() {
        let (main, init) = (&observed.as_is, &observed.initializers);
        println!(
            "  {name}: {} of {} pass as is, {} of {} with weights as initializers ({:.1} s)",
            main.passes(b).len(),
            main.covered.len(),
            init.passes(b).len(),
            init.covered.len(),
            (main.times.get(b).copied().unwrap_or_default()
                + init.times.get(b).copied().unwrap_or_default())
            .as_secs_f64()
        );
    }
    if std::env::var(WRITE_VAR).is_ok_and(|v| v == "1") {
        write_lists(&observed, root);
        let page = page::conformance_page(&observed);
        std::fs::write(root.join(PAGE), page).expect("writes the conformance page");
        println!("wrote {LISTS}/*.txt and {PAGE}");
        return;
    }
    let mut problems = String::new();
    for (s, (_, suffix)) in SECTIONS.iter().enumerate() {
        let section = observed.section(s);
        for (b, name) in observed.backends.iter().enumerate() {
            let file = format!("{LISTS}/{name}{suffix}.txt");
            let listed = read_list(&root.join(&file));
            let passing = section.passes(b);
            let add: Vec<&String> = passing.difference(&listed).collect();
            let remove: Vec<&String> = listed.difference(&passing).collect();
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            let _ = writeln!(problems, "{file}:");
            for test in add {
                let _ = writeln!(problems, "  add (passes, not listed): {test}");
            }
            for test in remove {
                let why = section.why_not(test, b).unwrap_or_else(|| {
                    // In the second section: a test that is now imported as is has no variant.
                    match observed.as_is.covered.iter().any(|(n, _, _)| n == test) {
                        true => "imported as is now: see the lists without `.initializers`",
                        false => "no such node test, or none of opsets 9 to 22 with weights",
                    }
                    .to_string()
                });
                let _ = writeln!(problems, "  remove (listed, fails): {test}  # {why}");
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the ONNX node tests no longer match the expected lists (fix the code, or edit the \
         lists; `{REGENERATE}` rewrites them):\n{problems}"
    );
}

/// Rewrites each compiled backend's lists from what passed.
fn write_lists(observed: &Observed, root: &Path) {
    std::fs::create_dir_all(root.join(LISTS)).expect("creates the lists' folder");
    for (s, (title, suffix)) in SECTIONS.iter().enumerate() {
        for (b, name) in observed.backends.iter().enumerate() {
            let mut text = format!(
                "# ONNX {} node tests ({title}) that dlbench imports and the `{name}` backend \
                 passes,\n# one a line, checked by tests/onnx_node_tests.rs. Regenerate with \
                 `{REGENERATE}`; see {PAGE}.\n",
                observed.onnx
            );
            for test in observed.section(s).passes(b) {
                text.push_str(&test);
                text.push('\n');
            }
            let file = root.join(format!("{LISTS}/{name}{suffix}.txt"));
            std::fs::write(file, text).expect("writes a list");
        }
    }
}
