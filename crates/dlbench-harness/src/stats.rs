//! Robust summaries of timing samples: median, percentiles, MAD and a bootstrap interval.

use dlbench_core::rng::Stream;
use serde::{Deserialize, Serialize};

/// A summary of nanosecond samples; the raw samples travel beside it in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: usize,
    pub median_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// Median absolute deviation from the median.
    pub mad_ns: f64,
    /// 95% bootstrap interval of the median (percentile method, 1,000 resamples).
    pub median_ci95_ns: [f64; 2],
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

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

pub fn median(values: &[f64]) -> f64 {
    quantile(&sorted(values), 0.5)
}

/// Summarises samples; the bootstrap is seeded, so the same samples give the same interval.
pub fn summarize(samples: &[f64]) -> Summary {
    let s = sorted(samples);
    let med = quantile(&s, 0.5);
    let deviations: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
    let mut stream = Stream::new(0, "bootstrap", 0);
    let n = s.len();
    let medians: Vec<f64> = (0..if n > 1 { 1000 } else { 0 })
        .map(|_| {
            let resample: Vec<f64> = (0..n)
                .map(|_| s[((stream.uniform() * n as f64) as usize).min(n - 1)])
                .collect();
            median(&resample)
        })
        .collect();
    let medians = sorted(&medians);
    let ci = if medians.is_empty() {
        [med, med]
    } else {
        [quantile(&medians, 0.025), quantile(&medians, 0.975)]
    };
    Summary {
        samples: n,
        median_ns: med,
        p90_ns: quantile(&s, 0.9),
        p99_ns: quantile(&s, 0.99),
        mad_ns: median(&deviations),
        median_ci95_ns: ci,
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
        let s = summarize(&v);
        assert_eq!(s.median_ns, 102.0);
        assert!(s.mad_ns <= 2.0);
        assert!(s.median_ci95_ns[0] <= 102.0 && s.median_ci95_ns[1] >= 102.0);
        assert!(s.p99_ns > 1000.0);
        assert_eq!(summarize(&v), s, "the bootstrap is seeded");
    }
}
