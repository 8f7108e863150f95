//! The "Quality" part of a spec's section: what each trained run scored on the validation and
//! test splits (accuracy, precision, recall, F1, log loss, or MSE / MAE), and the confusion
//! matrices of the test split.

use dlbench_harness::results::{Results, TrainingRecord, QUALITY_METRICS};

use crate::cells;
use crate::verdict;

/// The splits a record may score, by their metric prefix and their name.
const SPLITS: [(&str, &str); 2] = [("val", "validation"), ("test", "test")];

/// The quality table and the confusion matrices; empty when no run was trained.
pub fn quality_section(results: &Results) -> String {
    let trained: Vec<(String, &TrainingRecord)> = results
        .runs
        .iter()
        .filter_map(|run| Some((verdict::label(results, run), run.training.as_ref()?)))
        .collect();
    let has = |key: &str| trained.iter().any(|(_, t)| t.metrics.contains_key(key));
    let columns: Vec<&str> = QUALITY_METRICS
        .into_iter()
        .filter(|m| {
            SPLITS
                .iter()
                .any(|(prefix, _)| has(&format!("{prefix}_{m}")))
        })
        .collect();
    if columns.is_empty() {
        return String::new();
    }
    let mut titles = vec!["backend", "split"];
    titles.extend(columns.iter().copied());
    let mut lines = vec![cells::header(&titles)];
    for (label, training) in &trained {
        for (prefix, split) in SPLITS {
            if !training
                .metrics
                .keys()
                .any(|k| k.starts_with(&format!("{prefix}_")))
            {
                continue;
            }
            let mut row = vec![cells::escape(label), split.to_string()];
            row.extend(columns.iter().map(|m| {
                training
                    .metrics
                    .get(&format!("{prefix}_{m}"))
                    .map_or_else(|| cells::NOT_APPLICABLE.to_string(), |v| cells::number(*v))
            }));
            lines.push(cells::row(&row));
        }
    }
    let mut out = lines.join("\n");
    for (label, training) in &trained {
        if let Some(counts) = training.confusion.get("test") {
            out.push_str(&format!(
                "\n\nConfusion matrix of {} on the test split (rows: true class, columns: \
                 predicted class):\n\n",
                cells::escape(label)
            ));
            out.push_str(&confusion_table(counts));
        }
    }
    out
}

/// `counts[true][predicted]` as a Markdown table.
pub fn confusion_table(counts: &[Vec<u64>]) -> String {
    let classes: Vec<String> = (0..counts.len()).map(|c| c.to_string()).collect();
    let mut titles = vec!["true \\ predicted"];
    titles.extend(classes.iter().map(String::as_str));
    let mut lines = vec![cells::header(&titles)];
    for (truth, row) in counts.iter().enumerate() {
        let mut cells_of_row = vec![format!("**{truth}**")];
        cells_of_row.extend(row.iter().map(u64::to_string));
        lines.push(cells::row(&cells_of_row));
    }
    lines.join("\n")
}
