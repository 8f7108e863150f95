//! `docs/onnx-conformance.md`, from what `tests/onnx_node_tests.rs` observed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Observed, Outcome, Section, LISTS, REGENERATE};

/// Markdown-safe text for a table cell or a list item.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Groups an import error by what is wrong, without the node's own name: "op `Abs` is not
/// supported by dlbench's IR" rather than "node `Abs #0` (Abs, opset 13): this op...".
fn import_reason(error: &str) -> String {
    // `node `NAME` (OP, opset N): REST`
    let parsed = error.strip_prefix("node `").and_then(|rest| {
        let (_, after) = rest.split_once("` (")?;
        let (op, after) = after.split_once(", opset ")?;
        let (_, message) = after.split_once("): ")?;
        Some((op.to_string(), message.to_string()))
    });
    match parsed {
        Some((op, message)) if message == "this op is not supported by dlbench's IR" => {
            format!("op `{op}` is not supported by dlbench's IR")
        }
        Some((op, message)) => format!("`{op}`: {}", generalise(&message)),
        None => generalise(error),
    }
}

/// A message with the names of values (inside backticks) and the numbers in it kept only
/// where they say what is wrong: graph input names and shapes vary from test to test.
fn generalise(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut previous = String::new();
    for part in message.split('`') {
        if quoted {
            // Keep attribute names, dtypes and ops; replace value names.
            let keep = previous.trim_end().ends_with("attribute")
                || previous.trim_end().ends_with("op")
                || previous.trim_end().ends_with("domain");
            out.push('`');
            out.push_str(if keep { part } else { "…" });
            out.push('`');
        } else {
            out.push_str(part);
        }
        previous = part.to_string();
        quoted = !quoted;
    }
    // Shapes after a dtype (`f32 3x6x6`) vary with the test, not with the reason.
    let words: Vec<&str> = out.split(' ').collect();
    let mut general: Vec<String> = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let shape = word.trim_end_matches([',', ';', ')']);
        let is_shape = shape.chars().any(|c| c.is_ascii_digit())
            && shape.chars().all(|c| c.is_ascii_digit() || c == 'x');
        match i > 0 && is_shape && ["f32", "f64", "i64"].contains(&words[i - 1]) {
            true => general.push(format!("…{}", &word[shape.len()..])),
            false => general.push(word.to_string()),
        }
    }
    general.join(" ")
}

/// The per-backend summary table of a section.
fn summary(md: &mut String, backends: &[&str], section: &Section) {
    let covered = section.covered.len();
    let _ = writeln!(md, "| backend | covered tests passing |\n|---|---|");
    for (b, name) in backends.iter().enumerate() {
        let _ = writeln!(md, "| {name} | {} / {covered} |", section.passes(b).len());
    }
}

/// A section's table of covered tests, then its failure reasons under the heading `reasons`.
fn outcomes(md: &mut String, backends: &[&str], section: &Section, reasons: &str) {
    // Failure reasons, numbered once each.
    let mut notes: Vec<String> = Vec::new();
    let mut note = |why: &str| -> usize {
        match notes.iter().position(|n| n == why) {
            Some(i) => i + 1,
            None => {
                notes.push(why.to_string());
                notes.len()
            }
        }
    };
    let any_failure = section
        .covered
        .iter()
        .any(|(_, _, o)| o.iter().any(|o| matches!(o, Outcome::Fail(_))));
    let anchor = reasons.to_lowercase().replace(' ', "-");
    let _ = match any_failure {
        true => writeln!(
            md,
            "✓ passes; ✗ *n* fails, for the reason numbered *n* [under the table](#{anchor}).\n"
        ),
        false => writeln!(md, "✓ passes.\n"),
    };
    let _ = write!(md, "| test | ops |");
    for name in backends {
        let _ = write!(md, " {name} |");
    }
    let _ = write!(md, "\n|---|---|");
    for _ in backends {
        let _ = write!(md, "---|");
    }
    md.push('\n');
    for (test, ops, outcomes) in &section.covered {
        let _ = write!(md, "| `{test}` | {} |", cell(&ops.join(", ")));
        for outcome in outcomes {
            match outcome {
                Outcome::Pass => md.push_str(" ✓ |"),
                Outcome::Fail(why) => {
                    let n = note(why);
                    let _ = write!(md, " ✗ {n} |");
                }
            }
        }
        md.push('\n');
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\n### {reasons}\n");
        for (i, why) in notes.iter().enumerate() {
            let _ = writeln!(md, "{}. {}", i + 1, cell(why));
        }
    }
}

/// Tests not imported, one item per reason, the most common first.
fn refusals(md: &mut String, not_imported: &[(String, Vec<String>, String)]) {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (test, _, why) in not_imported {
        groups.entry(import_reason(why)).or_default().push(test);
    }
    let mut groups: Vec<(String, Vec<&str>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    for (why, tests) in groups {
        let names: Vec<String> = tests.iter().map(|t| format!("`{t}`")).collect();
        let _ = writeln!(
            md,
            "- {} — {} test{}: {}",
            cell(&why),
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
}

/// `docs/onnx-conformance.md`.
pub(super) fn conformance_page(observed: &Observed) -> String {
    let mut md = String::new();
    let (main, init) = (&observed.as_is, &observed.initializers);
    let covered = main.covered.len();
    let (first, last) = (
        dlbench_formats::onnx::OPSETS.start(),
        dlbench_formats::onnx::OPSETS.end(),
    );
    let _ = writeln!(md, "# ONNX node-test conformance\n");
    let _ = writeln!(
        md,
        "The ONNX backend node tests shipped in the `onnx=={}` wheel (`onnx/backend/test/data/node/`, \
         {} tests: one small model each, with its inputs and the outputs ONNX expects), run \
         through dlbench: each model is imported with `dlbench_formats::onnx::import_onnx`, and \
         every test dlbench imports (*covered*) runs on every backend, forward in inference mode, \
         its outputs compared with ONNX's at ONNX's own tolerance, \
         `|got - want| <= 1e-7 + 1e-3 * |want|` (numpy `assert_allclose`, rtol 1e-3, atol 1e-7; \
         NaN equals NaN), shapes equal. Dtypes are not compared: dlbench computes half floats in \
         f32 and reads integer and bool tensors as i64. Only the first data set of each test \
         (`test_data_set_0`) is used. A dropout mask that the import adds as an input is fed \
         ones.\n",
        observed.onnx, observed.total
    );
    let _ = writeln!(
        md,
        "Generated by `tests/onnx_node_tests.rs`; regenerate this page and the expected-pass \
         lists `{LISTS}/<backend>.txt` (the tests as ONNX ships them) and \
         `{LISTS}/<backend>.initializers.txt` ([weights as initializers](#weights-as-initializers)) \
         with `{REGENERATE}`. `cargo test --features test-backends,tch --test onnx_node_tests` \
         fails when a backend stops passing a listed test or passes one that is not listed.\n"
    );
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "{covered} of {} node tests are covered (imported); {} are not (see [below](#not-imported)).\n",
        observed.total,
        main.not_imported.len()
    );
    let refused = |needle: &str| {
        main.not_imported
            .iter()
            .filter(|(_, _, why)| why.contains(needle))
            .collect::<Vec<_>>()
    };
    let data_dependent = refused("depends on the data");
    let ops: BTreeSet<String> = data_dependent
        .iter()
        .filter_map(|(_, _, why)| {
            let (_, rest) = why.split_once("` (")?;
            Some(format!("`{}`", rest.split_once(", opset")?.0))
        })
        .collect();
    let _ = writeln!(
        md,
        "Of those not imported, {} are refused for their opset alone (dlbench reads opsets {first} \
         to {last}; the wheel writes most tests at the newest opset of their op), and {} because an \
         operand that dlbench needs known at import time (a weight, a shape, indices) is a graph \
         input of the test (node tests feed every operand as an input): tests of {}.\n",
        refused("is not supported; dlbench reads opsets").len(),
        data_dependent.len(),
        ops.into_iter().collect::<Vec<_>>().join(", ")
    );
    summary(&mut md, &observed.backends, main);
    let _ = writeln!(
        md,
        "\nA second section, [weights as initializers](#weights-as-initializers), runs {} more \
         tests with their weight inputs moved into initializers; it does not count above.",
        init.covered.len()
    );
    let _ = writeln!(md, "\n## Covered tests\n");
    outcomes(&mut md, &observed.backends, main, "Failure reasons");
    let _ = writeln!(md, "\n## Not imported\n");
    let _ = writeln!(
        md,
        "Tests whose model `import_onnx` refuses, grouped by the reason (the node's name and \
         the values' names left out).\n"
    );
    refusals(&mut md, &main.not_imported);

    let candidates = observed.in_opsets - observed.single_input;
    let _ = writeln!(md, "\n## Weights as initializers\n");
    let _ = writeln!(
        md,
        "**These are not ONNX's tests as shipped.** dlbench needs a layer's weights, a shape, \
         indices known at import time, and a node test feeds every operand as a graph input. So \
         for each test of opsets {first} to {last} that is not imported as is ({} tests), the \
         test's weight inputs were moved into initializers with the test's own values: every \
         graph input but the first (the data) became an initializer holding that test's \
         `input_<i>.pb` (the model rewritten with the `onnx` Python package); the first input is \
         still fed from `input_0.pb` and the outputs are compared with the test's `output_<i>.pb` \
         as above. The numbers are the test's, the graph is not byte-for-byte ONNX's test: its \
         weights are constants, which the import may fold.\n",
        observed.in_opsets
    );
    let _ = writeln!(
        md,
        "{} of those tests have a single input and no variant. Of the other {candidates}, {} \
         variants import and are covered here, with their own expected-pass lists \
         `{LISTS}/<backend>.initializers.txt`; {} are not (see [below](#variants-not-imported)). \
         This section leaves the definition of *covered* above unchanged: there a test counts \
         only as ONNX ships it.\n",
        observed.single_input,
        init.covered.len(),
        init.not_imported.len()
    );
    summary(&mut md, &observed.backends, init);
    let _ = writeln!(md, "\n### Covered variants\n");
    outcomes(
        &mut md,
        &observed.backends,
        init,
        "Failure reasons with weights as initializers",
    );
    let _ = writeln!(md, "\n### Variants not imported\n");
    let as_shipped: BTreeMap<&str, String> = main
        .not_imported
        .iter()
        .map(|(test, _, why)| (test.as_str(), import_reason(why)))
        .collect();
    let same = init
        .not_imported
        .iter()
        .filter(|(test, _, why)| as_shipped.get(test.as_str()) == Some(&import_reason(why)))
        .count();
    let _ = writeln!(
        md,
        "Variants that `import_onnx` still refuses, grouped by the reason as above; {same} of \
         the {} for the same reason as the test as shipped.\n",
        init.not_imported.len()
    );
    refusals(&mut md, &init.not_imported);
    md
}
