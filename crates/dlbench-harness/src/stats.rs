//! Robust summaries of timing samples: median, percentiles, MAD and a bootstrap interval.
//!
//! Samples are taken in rounds spread over the whole measurement (see `measure`), and with
//! `dlbench run --processes` in several worker processes; the interval of the median resamples
//! whole processes and rounds ([`Clusters`], in `bootstrap`), because on a shared machine the
//! largest error is drift between moments of the run and between processes, which a bootstrap
//! of single samples cannot see.

use serde::{Deserialize, Serialize};

pub use crate::bootstrap::Clusters;

/// A summary of nanosecond samples; the raw samples travel beside it in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples summarised.
    pub samples: usize,
    /// Median sample, nanoseconds.
    pub median_ns: f64,
    /// 90th percentile, nanoseconds (linear between closest ranks).
    pub p90_ns: f64,
    /// 99th percentile, nanoseconds (linear between closest ranks).
    pub p99_ns: f64,
    /// Median absolute deviation from the median.
    pub mad_ns: f64,
    /// 95% interval of the median: percentile bootstrap (1,000 seeded resamples) over whole
    /// processes and the rounds within them when there are `processes` >= 2, over whole rounds
    /// when there are `rounds` >= 2, else over single samples.
    pub median_ci95_ns: [f64; 2],
    /// Rounds the samples were taken in, over all processes: the clusters the interval
    /// resamples.
    #[serde(default = "one")]
    pub rounds: usize,
    /// Worker processes the samples were taken in (`dlbench run --processes`).
    #[serde(default = "one")]
    pub processes: usize,
}

/// Records written before rounds (or processes) took all their samples in one.
fn one() -> usize {
    1
}

/// The `q`-quantile (0..=1) of sorted data, linear between closest ranks.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of unsorted data (the mean of the two middle values for an even count); NaN
/// when empty.
pub fn median(values: &[f64]) -> f64 {
    quantile(&sorted(values), 0.5)
}

/// The round of each of `n` chronological samples cut into `rounds` consecutive blocks of
/// (nearly) equal size: how a training run's step times are grouped.
pub fn consecutive_rounds(n: usize, rounds: usize) -> Vec<usize> {
    let rounds = rounds.clamp(1, n.max(1));
    (0..n).map(|i| i * rounds / n).collect()
}

/// Summarises samples, `round[i]` being the round sample `i` was taken in (empty: all in one).
/// The bootstrap is seeded, so the same samples give the same interval.
pub fn summarize(samples: &[f64], round: &[usize]) -> Summary {
    summarize_processes(samples, &[], round)
}

/// Summarises samples taken in several worker processes: `process[i]` and `round[i]` say
/// where sample `i` was taken (either empty: all in one). The interval of the median
/// resamples processes, then rounds within each ([`Clusters`]).
pub fn summarize_processes(samples: &[f64], process: &[usize], round: &[usize]) -> Summary {
    let s = sorted(samples);
    let med = quantile(&s, 0.5);
    let deviations: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
    let clusters = Clusters::new(samples, process, round);
    let ci = clusters.median_ci95().unwrap_or([med, med]);
    Summary {
        samples: s.len(),
        median_ns: med,
        p90_ns: quantile(&s, 0.9),
        p99_ns: quantile(&s, 0.99),
        mad_ns: median(&deviations),
        median_ci95_ns: ci,
        rounds: clusters.rounds().max(1),
        processes: clusters.processes().max(1),
    }
}

/// `1.23 ms`, `456 us`, `78 ns`.
pub fn format_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.1} us", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlbench_core::rng::Stream;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }

    #[test]
    fn summary_is_robust_to_an_outlier() {
        let mut v: Vec<f64> = (0..99).map(|i| 100.0 + (i % 5) as f64).collect();
        v.push(1e9);
        let s = summarize(&v, &[]);
        assert_eq!(s.median_ns, 102.0);
        assert!(s.mad_ns <= 2.0);
        assert!(s.median_ci95_ns[0] <= 102.0 && s.median_ci95_ns[1] >= 102.0);
        assert!(s.p99_ns > 1000.0);
        assert_eq!(s.rounds, 1);
        assert_eq!(summarize(&v, &[]), s, "the bootstrap is seeded");
    }

    /// `rounds` rounds of `per_round` noisy samples around 100, plus `shift(round)`.
    fn in_rounds(rounds: usize, per_round: usize, shift: impl Fn(usize) -> f64) -> Summaries {
        let mut noise = Stream::new(7, "noise", 0);
        let (mut samples, mut round) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            for _ in 0..per_round {
                samples.push(100.0 + 4.0 * noise.uniform() + shift(r));
                round.push(r);
            }
        }
        Summaries {
            by_round: summarize(&samples, &round),
            by_sample: summarize(&samples, &[]),
        }
    }

    struct Summaries {
        by_round: Summary,
        by_sample: Summary,
    }

    fn width(s: &Summary) -> f64 {
        s.median_ci95_ns[1] - s.median_ci95_ns[0]
    }

    #[test]
    fn rounds_that_disagree_widen_the_interval() {
        // The machine slowed down by 10% for three rounds out of ten.
        let s = in_rounds(10, 10, |r| if (3..6).contains(&r) { 10.0 } else { 0.0 });
        assert_eq!(s.by_round.rounds, 10);
        assert_eq!(s.by_round.median_ns, s.by_sample.median_ns);
        assert!(
            width(&s.by_round) > 3.0 * width(&s.by_sample),
            "rounds {:?}, samples {:?}",
            s.by_round.median_ci95_ns,
            s.by_sample.median_ci95_ns
        );
        // A bootstrap that can draw the slow rounds more often than they came reaches them.
        assert!(s.by_round.median_ci95_ns[1] > 104.0, "{:?}", s.by_round);
        assert!(s.by_sample.median_ci95_ns[1] < 104.0, "{:?}", s.by_sample);
    }

    #[test]
    fn rounds_that_agree_give_about_the_interval_of_single_samples() {
        let s = in_rounds(10, 10, |_| 0.0);
        let ratio = width(&s.by_round) / width(&s.by_sample);
        assert!(
            (0.5..2.0).contains(&ratio),
            "rounds {:?}, samples {:?}",
            s.by_round.median_ci95_ns,
            s.by_sample.median_ci95_ns
        );
        let [lo, hi] = s.by_round.median_ci95_ns;
        assert!(lo <= s.by_round.median_ns && s.by_round.median_ns <= hi);
        assert_eq!(in_rounds(10, 10, |_| 0.0).by_round, s.by_round, "seeded");
    }

    #[test]
    fn one_round_falls_back_to_single_samples() {
        let samples: Vec<f64> = (0..50).map(|i| 100.0 + (i % 7) as f64).collect();
        let one = summarize(&samples, &vec![3; samples.len()]);
        assert_eq!(one, summarize(&samples, &[]));
        assert_eq!(one.rounds, 1);
        assert!(width(&one) > 0.0);
    }

    #[test]
    fn consecutive_rounds_are_equal_blocks_in_order() {
        assert_eq!(consecutive_rounds(6, 3), [0, 0, 1, 1, 2, 2]);
        assert_eq!(consecutive_rounds(5, 2), [0, 0, 0, 1, 1]);
        assert_eq!(
            consecutive_rounds(2, 10),
            [0, 1],
            "no more rounds than samples"
        );
        assert!(consecutive_rounds(0, 10).is_empty());
    }
}
