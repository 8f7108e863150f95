//! The bootstrap behind every interval: samples grouped as they were taken (worker processes,
//! rounds within a process) and resampled by whole groups.
//!
//! On a shared machine the largest errors are not between one sample and the next but between
//! moments of the run (other processes, clock states) and between processes (memory layout,
//! which core, frequency state at start). Samples of one round, or of one process, share those
//! effects, so they are not independent: resampling single samples gives an interval as narrow
//! as if they were. Drawing whole processes, then whole rounds within each drawn process (a
//! two-level bootstrap), makes the interval as wide as the processes and rounds disagree.

use dlbench_core::rng::Stream;

use crate::stats::{median, quantile, sorted};

/// Bootstrap resamples behind an interval.
const RESAMPLES: usize = 1000;

/// Samples grouped for resampling: processes, each a list of rounds, each a list of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    processes: Vec<Vec<Vec<f64>>>,
    /// Rounds as taken, over all processes (before a lone round is split into its samples).
    rounds: usize,
}

impl Clusters {
    /// Groups `samples` by `process[i]` and `round[i]` (either empty: all in one). Ids need not
    /// be contiguous; groups keep the order of their ids. One process of one round says
    /// nothing about drift: its samples are then resampled one by one.
    pub fn new(samples: &[f64], process: &[usize], round: &[usize]) -> Clusters {
        assert!(
            process.is_empty() || process.len() == samples.len(),
            "one process per sample"
        );
        assert!(
            round.is_empty() || round.len() == samples.len(),
            "one round per sample"
        );
        let mut groups: std::collections::BTreeMap<usize, std::collections::BTreeMap<usize, _>> =
            Default::default();
        for (i, &x) in samples.iter().enumerate() {
            let p = process.get(i).copied().unwrap_or(0);
            let r = round.get(i).copied().unwrap_or(0);
            groups
                .entry(p)
                .or_default()
                .entry(r)
                .or_insert_with(Vec::new)
                .push(x);
        }
        let mut processes: Vec<Vec<Vec<f64>>> = groups
            .into_values()
            .map(|rounds| rounds.into_values().collect())
            .collect();
        let rounds = processes.iter().map(Vec::len).sum();
        if let [only] = processes.as_mut_slice() {
            if only.len() == 1 {
                *only = only[0].iter().map(|&x| vec![x]).collect();
            }
        }
        Clusters { processes, rounds }
    }

    /// Processes that gave samples.
    pub fn processes(&self) -> usize {
        self.processes.len()
    }

    /// Rounds that gave samples, over all processes.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// The earlier and the later half of the processes (in the order of their ids, which is
    /// the order they ran in); `None` with fewer than four processes.
    pub fn halves(&self) -> Option<(Clusters, Clusters)> {
        if self.processes.len() < 4 {
            return None;
        }
        let (earlier, later) = self.processes.split_at(self.processes.len() / 2);
        let part = |processes: &[Vec<Vec<f64>>]| Clusters {
            processes: processes.to_vec(),
            rounds: processes.iter().map(Vec::len).sum(),
        };
        Some((part(earlier), part(later)))
    }

    /// The median of every sample, pooled.
    pub fn median(&self) -> f64 {
        let all: Vec<f64> = self.processes.iter().flatten().flatten().copied().collect();
        median(&all)
    }

    fn samples(&self) -> usize {
        self.processes.iter().flatten().map(Vec::len).sum()
    }

    /// The 95% percentile interval of the median (`RESAMPLES` seeded resamples); `None` for
    /// fewer than two samples.
    pub fn median_ci95(&self) -> Option<[f64; 2]> {
        if self.samples() < 2 {
            return None;
        }
        let mut stream = Stream::new(0, "bootstrap", 0);
        let mut pooled = Vec::new();
        let medians: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let picks = self.pick_processes(&mut stream);
                self.pool(&picks, &mut stream, &mut pooled);
                median(&pooled)
            })
            .collect();
        Some(percentile_interval(medians))
    }

    /// The processes one resample draws: all `n` drawn with replacement, or the only one.
    fn pick_processes(&self, stream: &mut Stream) -> Vec<usize> {
        draw(self.processes.len(), stream)
    }

    /// Fills `pooled` with the samples of the `picks` processes, each one's rounds drawn with
    /// replacement.
    fn pool(&self, picks: &[usize], stream: &mut Stream, pooled: &mut Vec<f64>) {
        pooled.clear();
        for &p in picks {
            let rounds = &self.processes[p];
            for r in draw(rounds.len(), stream) {
                pooled.extend_from_slice(&rounds[r]);
            }
        }
    }
}

/// `n` indices below `n` drawn with replacement; `[0]` when `n` is 1 (nothing to draw).
fn draw(n: usize, stream: &mut Stream) -> Vec<usize> {
    if n <= 1 {
        return vec![0; n];
    }
    (0..n)
        .map(|_| ((stream.uniform() * n as f64) as usize).min(n - 1))
        .collect()
}

fn percentile_interval(values: Vec<f64>) -> [f64; 2] {
    let values = sorted(&values);
    [quantile(&values, 0.025), quantile(&values, 0.975)]
}

/// The 95% interval of `median(new) / median(old)`; `None` when either has fewer than two
/// samples.
///
/// `paired`: the two were measured side by side, process `k` of one next to process `k` of the
/// other (two backends of one interleaved `--processes` run). Each resample then draws the same
/// process numbers for both, so that drift the pair shared cancels in the ratio; with unequal
/// process counts the draws are independent, as for two separate records.
pub fn ratio_ci95(old: &Clusters, new: &Clusters, paired: bool) -> Option<[f64; 2]> {
    if old.samples() < 2 || new.samples() < 2 {
        return None;
    }
    let paired = paired && old.processes() == new.processes() && old.processes() >= 2;
    let mut picks_stream = Stream::new(0, "bootstrap-pairs", 0);
    let mut old_stream = Stream::new(0, "bootstrap-old", 0);
    let mut new_stream = Stream::new(0, "bootstrap-new", 0);
    let (mut old_pooled, mut new_pooled) = (Vec::new(), Vec::new());
    let ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let (old_picks, new_picks) = if paired {
                let picks = old.pick_processes(&mut picks_stream);
                (picks.clone(), picks)
            } else {
                (
                    old.pick_processes(&mut old_stream),
                    new.pick_processes(&mut new_stream),
                )
            };
            old.pool(&old_picks, &mut old_stream, &mut old_pooled);
            new.pool(&new_picks, &mut new_stream, &mut new_pooled);
            median(&new_pooled) / median(&old_pooled)
        })
        .collect();
    Some(percentile_interval(ratios))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `processes` processes of `rounds` rounds of 10 samples around 100, each process shifted
    /// by `shift(process)`; the process and round of each sample beside it.
    fn measured(
        processes: usize,
        rounds: usize,
        seed: u64,
        shift: impl Fn(usize) -> f64,
    ) -> Clusters {
        let mut noise = Stream::new(seed, "noise", 0);
        let (mut samples, mut process, mut round) = (Vec::new(), Vec::new(), Vec::new());
        for p in 0..processes {
            for r in 0..rounds {
                for _ in 0..10 {
                    samples.push(100.0 + 4.0 * noise.uniform() + shift(p));
                    process.push(p);
                    round.push(r);
                }
            }
        }
        Clusters::new(&samples, &process, &round)
    }

    fn width(ci: [f64; 2]) -> f64 {
        ci[1] - ci[0]
    }

    #[test]
    fn processes_that_disagree_widen_the_interval() {
        // Every process is internally steady, but each started in its own state.
        let shifted = measured(10, 4, 1, |p| (p % 3) as f64 * 5.0);
        let steady = measured(10, 4, 1, |_| 0.0);
        assert_eq!((shifted.processes(), shifted.rounds()), (10, 40));
        let (wide, narrow) = (
            shifted.median_ci95().unwrap(),
            steady.median_ci95().unwrap(),
        );
        assert!(width(wide) > 3.0 * width(narrow), "{wide:?} vs {narrow:?}");
    }

    #[test]
    fn groups_follow_their_ids_not_their_positions() {
        let c = Clusters::new(&[1.0, 2.0, 3.0, 4.0], &[7, 3, 7, 3], &[0, 0, 1, 1]);
        assert_eq!(
            c.processes,
            vec![vec![vec![2.0], vec![4.0]], vec![vec![1.0], vec![3.0]]]
        );
        assert_eq!((c.processes(), c.rounds()), (2, 4));
        let lone = Clusters::new(&[1.0, 2.0, 3.0], &[], &[]);
        assert_eq!(lone.rounds(), 1, "as taken");
        assert_eq!(lone.processes, vec![vec![vec![1.0], vec![2.0], vec![3.0]]]);
        assert_eq!(Clusters::new(&[1.0], &[], &[]).median_ci95(), None);
    }

    #[test]
    fn the_ratio_interval_finds_a_ten_percent_slowdown_and_no_change() {
        let old = measured(8, 3, 1, |_| 0.0);
        let same = measured(8, 3, 2, |_| 0.0);
        let slower = Clusters::new(
            &old.processes
                .iter()
                .flatten()
                .flatten()
                .map(|x| x * 1.1)
                .collect::<Vec<_>>(),
            &[],
            &[],
        );
        let [lo, hi] = ratio_ci95(&old, &same, false).unwrap();
        assert!(lo < 1.0 && 1.0 < hi, "[{lo}, {hi}]");
        let [lo, hi] = ratio_ci95(&old, &slower, false).unwrap();
        assert!(1.05 < lo && hi < 1.15, "[{lo}, {hi}]");
    }

    #[test]
    fn pairing_cancels_drift_the_pair_shared() {
        // Both backends slowed together in some processes (the machine's state at the time):
        // paired, the ratio's interval is narrow; drawn independently, it is wide.
        let drift = |p: usize| if p.is_multiple_of(2) { 30.0 } else { 0.0 };
        let a = measured(10, 3, 1, drift);
        let b = measured(10, 3, 2, drift);
        let paired = ratio_ci95(&a, &b, true).unwrap();
        let independent = ratio_ci95(&a, &b, false).unwrap();
        assert!(paired[0] < 1.0 && 1.0 < paired[1], "{paired:?}");
        assert!(
            width(independent) > 2.0 * width(paired),
            "{independent:?} vs {paired:?}"
        );
    }
}
