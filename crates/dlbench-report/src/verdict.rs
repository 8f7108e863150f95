//! The rankings behind the recommendations, and the recommendation text itself: who is
//! fastest at inference and at training, who is closest to the reference, and what ran where.
//! Only backends that ran and agree with the reference take part in a speed verdict: a fast
//! wrong answer is not a recommendation.

use dlbench_harness::results::{AgreementCheck, Results, RunRecord, Status};
use dlbench_harness::stats::Summary;

use crate::cells;

/// Longest error text in the portability line: enough to say why, short enough to read.
const PORTABILITY_REASON_CHARS: usize = 80;

/// One backend's median, with its interval, in a speed ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// The backend as the report names it (see [`label`]).
    pub label: String,
    /// The backend alone: a verdict compares its winner with another framework, not with the
    /// winner at another thread count.
    pub backend: String,
    /// Median nanoseconds.
    pub median_ns: f64,
    /// 95% interval of the median.
    pub ci95_ns: [f64; 2],
}

impl Timed {
    fn new(results: &Results, run: &RunRecord, summary: &Summary) -> Self {
        Timed {
            label: label(results, run),
            backend: run.backend.clone(),
            median_ns: summary.median_ns,
            ci95_ns: summary.median_ci95_ns,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}",
            cells::duration(self.median_ns),
            cells::interval(self.ci95_ns)
        )
    }
}

/// One backend's worst error as a share of the tolerance, in the fidelity ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Fidelity {
    /// The backend as the report names it.
    pub label: String,
    /// The backend alone (see [`Timed::backend`]).
    pub backend: String,
    /// Largest `tolerance_used` over its checks; NaN when a record predates the figure.
    pub worst_share: f64,
    /// The checks it went through (`forward`, `gradients`, `training`).
    pub checks: Vec<&'static str>,
}

/// The backend's name, with its device and threads when the record holds several runs of it.
pub fn label(results: &Results, run: &RunRecord) -> String {
    let runs_of_backend = results
        .runs
        .iter()
        .filter(|r| r.backend == run.backend)
        .count();
    if runs_of_backend > 1 {
        let threads = match run.threads {
            1 => "1 thread".to_string(),
            n => format!("{n} threads"),
        };
        format!("{} ({}, {threads})", run.backend, run.device)
    } else {
        run.backend.clone()
    }
}

/// True when the run agrees with the reference, or is the reference (no agreement: the oracle).
pub fn agrees(run: &RunRecord) -> bool {
    run.agreement.as_ref().is_none_or(|a| a.pass())
}

/// Runs that ran to the end and agree: the only ones a speed verdict may name. The reference
/// (the run without an agreement section) is the oracle, an f64 interpreter, not a framework
/// to choose: it is not a contender.
fn contenders(results: &Results) -> impl Iterator<Item = &RunRecord> {
    results
        .runs
        .iter()
        .filter(|r| r.status == Status::Ok && r.agreement.as_ref().is_some_and(|a| a.pass()))
}

/// Sorts fastest first, leaving out medians that are not numbers.
fn ranked(mut timed: Vec<Timed>) -> Vec<Timed> {
    timed.retain(|t| t.median_ns.is_finite());
    timed.sort_by(|a, b| a.median_ns.total_cmp(&b.median_ns));
    timed
}

/// Inference at `batch`, fastest first.
pub fn inference_ranking(results: &Results, batch: usize) -> Vec<Timed> {
    ranked(
        contenders(results)
            .flat_map(|run| {
                run.inference
                    .iter()
                    .filter(|i| i.batch == batch)
                    .map(|i| Timed::new(results, run, &i.summary))
            })
            .collect(),
    )
}

/// The largest inference batch size any contender measured.
pub fn largest_batch(results: &Results) -> Option<usize> {
    contenders(results)
        .flat_map(|run| run.inference.iter().map(|i| i.batch))
        .max()
}

/// Training step time, fastest first, among contenders that train.
pub fn training_ranking(results: &Results) -> Vec<Timed> {
    ranked(
        contenders(results)
            .filter_map(|run| {
                let training = run.training.as_ref()?;
                Some(Timed::new(results, run, &training.step_time))
            })
            .collect(),
    )
}

/// The checks an agreement holds, by name.
pub fn named_checks(
    agreement: &dlbench_harness::results::Agreement,
) -> Vec<(&'static str, &AgreementCheck)> {
    [
        ("forward", &agreement.forward),
        ("gradients", &agreement.gradients),
        ("training", &agreement.training),
    ]
    .into_iter()
    .filter_map(|(name, check)| Some((name, check.as_ref()?)))
    .collect()
}

/// Each check's name and the share of the tolerance it used.
type CheckShares = Vec<(&'static str, f64)>;

/// Backends that ran and passed every check, closest to the reference first, compared on the
/// checks they all ran (an inference-only backend has no gradients: ranking it on forward alone
/// against others' worst over three checks would favour it). Those whose record has no share
/// of the tolerance (NaN) come last, unranked.
pub fn fidelity_ranking(results: &Results) -> Vec<Fidelity> {
    let passing: Vec<(String, String, CheckShares)> = results
        .runs
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|run| {
            let agreement = run.agreement.as_ref()?;
            let checks = named_checks(agreement);
            if checks.is_empty() || !agreement.pass() {
                return None;
            }
            let shares = checks.iter().map(|(n, c)| (*n, c.tolerance_used)).collect();
            Some((label(results, run), run.backend.clone(), shares))
        })
        .collect();
    let common: Vec<&'static str> = ["forward", "gradients", "training"]
        .into_iter()
        .filter(|name| {
            passing
                .iter()
                .all(|(_, _, shares)| shares.iter().any(|(n, _)| n == name))
        })
        .collect();
    let mut ranked: Vec<Fidelity> = passing
        .into_iter()
        .map(|(label, backend, shares)| {
            // NaN anywhere means the worst is unknown: `f64::max` would silently skip it.
            let worst_share = shares
                .iter()
                .filter(|(name, _)| common.contains(name))
                .fold(0.0_f64, |worst, (_, share)| {
                    if worst.is_nan() || share.is_nan() {
                        f64::NAN
                    } else {
                        worst.max(*share)
                    }
                });
            Fidelity {
                label,
                backend,
                worst_share,
                checks: common.clone(),
            }
        })
        .collect();
    ranked.sort_by(
        |a, b| match (a.worst_share.is_nan(), b.worst_share.is_nan()) {
            (false, false) => a.worst_share.total_cmp(&b.worst_share),
            (nan_a, nan_b) => nan_a.cmp(&nan_b),
        },
    );
    ranked
}

/// The sentence of a speed verdict: the winner, by how much, and whether that is real.
fn speed_verdict(use_case: &str, ranking: &[Timed]) -> String {
    match ranking {
        [] => format!("**{use_case}**: no backend that agrees with the reference measured it."),
        [only] => format!(
            "**{use_case}**: **{}**, {} — the only backend measured.",
            only.label,
            only.describe()
        ),
        [winner, rest @ ..] => {
            let runner_up =
                &rest[runner_up_index(&winner.backend, rest.iter().map(|t| t.backend.as_str()))];
            let mut text = format!(
                "**{use_case}**: **{}**, {}, {} faster than {} ({}).",
                winner.label,
                winner.describe(),
                cells::ratio(runner_up.median_ns / winner.median_ns),
                runner_up.label,
                runner_up.describe()
            );
            let bounds_known = winner
                .ci95_ns
                .iter()
                .chain(&runner_up.ci95_ns)
                .all(|b| b.is_finite());
            if !bounds_known {
                text.push_str(" Their intervals are not recorded: treat the gap with care.");
            } else if winner.ci95_ns[1] >= runner_up.ci95_ns[0] {
                text.push_str(" Their 95% intervals overlap: not distinguishable on this machine.");
            }
            text
        }
    }
}

/// Which of `rest` (ranked, not empty) a winner of `winner` is measured against: the best of
/// another framework, or the next when all are the winner's (one backend at several thread
/// counts).
fn runner_up_index<'a>(winner: &str, mut rest: impl Iterator<Item = &'a str>) -> usize {
    rest.position(|backend| backend != winner).unwrap_or(0)
}

/// The fidelity verdict: who stays furthest inside the tolerance.
fn fidelity_verdict(ranking: &[Fidelity]) -> String {
    let title = "Numerical fidelity";
    let ranked: Vec<&Fidelity> = ranking.iter().filter(|f| !f.worst_share.is_nan()).collect();
    let unranked: Vec<&str> = ranking
        .iter()
        .filter(|f| f.worst_share.is_nan())
        .map(|f| f.label.as_str())
        .collect();
    let mut text = match ranked.as_slice() {
        [] if unranked.is_empty() => {
            format!("**{title}**: no backend other than the reference passed its checks.")
        }
        [] => format!("**{title}**: no backend has a recorded share of the tolerance to rank."),
        [winner, rest @ ..] => {
            let mut text = format!(
                "**{title}**: **{}**, worst error {} of the tolerance",
                winner.label,
                cells::share(winner.worst_share),
            );
            if !rest.is_empty() {
                let runner_up =
                    rest[runner_up_index(&winner.backend, rest.iter().map(|f| f.backend.as_str()))];
                text.push_str(&format!(
                    ", against {} for {}",
                    cells::share(runner_up.worst_share),
                    runner_up.label,
                ));
            }
            text.push_str(&format!(
                " (compared on {}, the checks every passing backend ran).",
                winner.checks.join(", ")
            ));
            text
        }
    };
    if !unranked.is_empty() {
        text.push_str(&format!(
            " Passing but not ranked (record predates the share of the tolerance): {}.",
            unranked.join(", ")
        ));
    }
    text
}

/// What ran, what failed and what is unsupported, with the reasons.
fn portability_verdict(results: &Results) -> String {
    let mut ran = Vec::new();
    let mut disagrees = Vec::new();
    let mut failed = Vec::new();
    let mut unsupported = Vec::new();
    for run in &results.runs {
        let name = label(results, run);
        let reason = || {
            cells::escape(&cells::first_line(
                run.error.as_deref().unwrap_or(""),
                PORTABILITY_REASON_CHARS,
            ))
        };
        match run.status {
            Status::Ok if agrees(run) => ran.push(name),
            Status::Ok => disagrees.push(name),
            Status::Failed => failed.push(format!("{name} ({})", reason())),
            Status::Unsupported => unsupported.push(format!("{name} ({})", reason())),
        }
    }
    let mut parts = vec![format!("ran and agree: {}", list_or_none(&ran))];
    for (what, names) in [
        ("disagree with the reference (not timed)", &disagrees),
        ("failed", &failed),
        ("unsupported", &unsupported),
    ] {
        if !names.is_empty() {
            parts.push(format!("{what}: {}", names.join("; ")));
        }
    }
    format!("**Portability**: {}.", parts.join("; "))
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Backends whose notes say they compose ops from tensor primitives, with how many notes.
fn composed_ops_caveat(results: &Results) -> Option<String> {
    let composing: Vec<String> = results
        .runs
        .iter()
        .filter_map(|run| {
            let composed = run
                .notes
                .iter()
                .filter(|n| n.to_lowercase().contains("compos"))
                .count();
            (composed > 0).then(|| format!("{} ({composed})", label(results, run)))
        })
        .collect();
    (!composing.is_empty()).then(|| {
        format!(
            "Composed ops: {} run some ops composed from tensor primitives rather than the \
             framework's own kernels (see the notes of the spec's section); their speed is \
             partly dlbench's composition, not the framework's.",
            composing.join(", ")
        )
    })
}

/// The recommendation for one record, as Markdown bullets: one per use case, then caveats.
pub fn recommendations(results: &Results) -> Vec<String> {
    let mut bullets = vec![speed_verdict(
        "Lowest-latency inference (batch 1)",
        &inference_ranking(results, 1),
    )];
    if let Some(largest) = largest_batch(results).filter(|&b| b > 1) {
        bullets.push(speed_verdict(
            &format!("Inference at batch {largest}"),
            &inference_ranking(results, largest),
        ));
    }
    bullets.push(speed_verdict(
        &format!("Training throughput (batch {})", results.spec.batch_size),
        &training_ranking(results),
    ));
    bullets.push(fidelity_verdict(&fidelity_ranking(results)));
    bullets.push(portability_verdict(results));
    let excluded = results
        .runs
        .iter()
        .any(|r| r.status != Status::Ok || !agrees(r));
    if excluded {
        bullets.push(
            "Speed verdicts leave out backends that failed, are unsupported or disagree with \
             the reference."
                .to_string(),
        );
    }
    bullets.extend(composed_ops_caveat(results));
    bullets
}
