//! Timing in rounds. Several cases (the inference batch sizes) are each warmed up by time,
//! then sampled in `rounds` rounds; every round times every case in turn, in an order that
//! rotates from round to round. Each case's samples thus span the whole measurement, and the
//! rounds are the clusters whose disagreement the interval of the median reports
//! (`stats::summarize`): drift of a shared machine shows up as rounds that disagree instead of
//! as a difference between one case and the next, or between one run and the next.

use std::time::{Duration, Instant};

use crate::observer::Observer;
use dlbench_spec::BenchmarkSpec;

/// What is timed: one of several cases, each made current by an untimed `select`.
pub trait Timed {
    /// Makes case `case` the one that `run` runs (loads its inputs); not timed.
    fn select(&mut self, case: usize) -> dlbench_core::Result<()>;
    /// One iteration of the current case.
    fn run(&mut self) -> dlbench_core::Result<()>;
}

/// The samples of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Per-iteration time of each sample, in nanoseconds, in the order taken.
    pub per_iteration_ns: Vec<f64>,
    /// The round each sample was taken in.
    pub round: Vec<usize>,
    /// Iterations timed together in one sample.
    pub iterations_per_sample: usize,
}

/// Shortest sample worth timing: well above the clock's resolution and overhead.
const MIN_SAMPLE: Duration = Duration::from_micros(200);
/// Samples a budget is sized for (criterion's default): enough for stable percentiles and a
/// bootstrap, few enough to keep raw samples in the record.
const TARGET_SAMPLES: f64 = 100.0;
const MAX_SAMPLES: usize = 10_000;

/// Times `cases` cases of `subject` as the budget says; one [`Timing`] per case.
///
/// Each case is warmed up for `warmup_s`, which also measures how many iterations fill a
/// sample (`budget_s / 100`, at least `MIN_SAMPLE`). Then, in each of `rounds` rounds, each
/// case is selected, run once untimed (so that the first sample does not pay for a change of
/// batch size), and sampled until it has its share of both the samples and the time of the
/// round: `ceil(min_samples / rounds)` samples and `budget_s / rounds` seconds. Every case so
/// gets at least `min_samples` samples over at least `budget_s` seconds in all, as without
/// rounds. `observer` advances by one per round.
pub fn measure_in_rounds(
    subject: &mut dyn Timed,
    cases: usize,
    budget: &BenchmarkSpec,
    observer: &mut dyn Observer,
) -> dlbench_core::Result<Vec<Timing>> {
    let rounds = budget.rounds.max(1);
    let mut timings = Vec::with_capacity(cases);
    for case in 0..cases {
        subject.select(case)?;
        let estimate = warm_up(subject, budget.warmup_s)?;
        let per_sample = MIN_SAMPLE.max(Duration::from_secs_f64(budget.budget_s / TARGET_SAMPLES));
        timings.push(Timing {
            per_iteration_ns: Vec::new(),
            round: Vec::new(),
            iterations_per_sample: (per_sample.as_nanos() / estimate.as_nanos().max(1))
                .clamp(1, 100_000) as usize,
        });
    }
    let samples_per_round = budget.min_samples.div_ceil(rounds).max(1);
    let max_per_round = (MAX_SAMPLES / rounds).max(1);
    let seconds_per_round = budget.budget_s / rounds as f64;
    for round in 0..rounds {
        for case in round_order(cases, round) {
            subject.select(case)?;
            subject.run()?;
            let timing = &mut timings[case];
            let started = Instant::now();
            let mut taken = 0;
            loop {
                let t = Instant::now();
                for _ in 0..timing.iterations_per_sample {
                    subject.run()?;
                }
                let ns = t.elapsed().as_nanos() as f64;
                timing
                    .per_iteration_ns
                    .push(ns / timing.iterations_per_sample as f64);
                timing.round.push(round);
                taken += 1;
                let enough = taken >= samples_per_round
                    && started.elapsed().as_secs_f64() >= seconds_per_round;
                if enough || taken >= max_per_round {
                    break;
                }
            }
        }
        observer.advance(round as u64 + 1, "");
    }
    Ok(timings)
}

/// The cases in the order round `round` times them: rotated by one each round, so that no
/// case always runs first (after the previous round's last) or last.
pub fn round_order(cases: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..cases).map(move |k| (k + round) % cases)
}

/// Runs the current case for `warmup_s` seconds (at least once); the mean iteration time.
fn warm_up(subject: &mut dyn Timed, warmup_s: f64) -> dlbench_core::Result<Duration> {
    let started = Instant::now();
    let mut runs = 0u32;
    while runs == 0 || started.elapsed().as_secs_f64() < warmup_s {
        subject.run()?;
        runs += 1;
    }
    Ok(started.elapsed() / runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs what it is asked to do; an iteration of case `k` takes `k + 1` times 20 us.
    struct Logged {
        current: usize,
        log: Vec<(usize, &'static str)>,
    }

    impl Timed for Logged {
        fn select(&mut self, case: usize) -> dlbench_core::Result<()> {
            self.current = case;
            self.log.push((case, "select"));
            Ok(())
        }
        fn run(&mut self) -> dlbench_core::Result<()> {
            let until = Instant::now() + Duration::from_micros(20 * (self.current as u64 + 1));
            while Instant::now() < until {}
            self.log.push((self.current, "run"));
            Ok(())
        }
    }

    struct Silent;

    impl Observer for Silent {
        fn begin(&mut self, _: &str, _: u64) {}
        fn advance(&mut self, _: u64, _: &str) {}
        fn end(&mut self, _: &str) {}
    }

    fn budget(rounds: usize) -> BenchmarkSpec {
        BenchmarkSpec {
            warmup_s: 0.001,
            min_samples: 25,
            budget_s: 0.02,
            rounds,
        }
    }

    #[test]
    fn every_round_times_every_case_in_a_rotating_order() {
        let mut subject = Logged {
            current: 0,
            log: Vec::new(),
        };
        let timings = measure_in_rounds(&mut subject, 3, &budget(4), &mut Silent).unwrap();
        assert_eq!(timings.len(), 3);
        for timing in &timings {
            // ceil(25 / 4) = 7 samples a round at least, in rounds 0, 1, 2, 3 in turn.
            assert_eq!(timing.round.len(), timing.per_iteration_ns.len());
            assert!(timing.per_iteration_ns.len() >= 25);
            assert!(timing.round.windows(2).all(|w| w[0] <= w[1]));
            for round in 0..4 {
                let taken = timing.round.iter().filter(|&&r| r == round).count();
                assert!(taken >= 7, "round {round}: {taken} samples");
            }
        }
        // Iterations per sample fill 200 us: at most 10, 5 and 3 (fewer when preempted).
        for (timing, most) in timings.iter().zip([10, 5, 3]) {
            assert!(
                (1..=most).contains(&timing.iterations_per_sample),
                "{timing:?}"
            );
        }
        // After the warm-ups (a select each), the rounds select the cases in rotated order.
        let selects: Vec<usize> = subject
            .log
            .iter()
            .filter(|(_, what)| *what == "select")
            .map(|(case, _)| *case)
            .collect();
        assert_eq!(selects[..3], [0, 1, 2], "warm-ups");
        assert_eq!(selects[3..], [0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2]);
        // Each round's turn of a case runs it once untimed, then its samples' iterations.
        let mut turns = subject.log.split(|(_, what)| *what == "select").skip(4);
        for round in 0..4 {
            for case in round_order(3, round) {
                let runs = turns.next().unwrap();
                assert!(runs.iter().all(|&(c, _)| c == case));
                let timing = &timings[case];
                let samples = timing.round.iter().filter(|&&r| r == round).count();
                assert_eq!(runs.len(), 1 + samples * timing.iterations_per_sample);
            }
        }
    }

    #[test]
    fn the_per_iteration_time_is_measured() {
        let mut subject = Logged {
            current: 0,
            log: Vec::new(),
        };
        let timings = measure_in_rounds(&mut subject, 2, &budget(2), &mut Silent).unwrap();
        for (case, timing) in timings.iter().enumerate() {
            let expected = 20_000.0 * (case + 1) as f64;
            let fastest = timing
                .per_iteration_ns
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            assert!(fastest >= expected, "case {case}: {fastest} ns");
        }
    }

    #[test]
    fn one_round_is_the_whole_budget_in_one_block() {
        let mut subject = Logged {
            current: 0,
            log: Vec::new(),
        };
        let timings = measure_in_rounds(&mut subject, 1, &budget(1), &mut Silent).unwrap();
        assert!(timings[0].round.iter().all(|&r| r == 0));
        assert!(timings[0].per_iteration_ns.len() >= 25);
    }
}
