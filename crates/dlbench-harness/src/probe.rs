//! The machine-speed probe: a fixed small workload timed again and again through a run (before
//! every backend run and at the end), so that a record carries how fast the machine itself was.
//!
//! The shared machines dlbench runs on switch between states some 40% apart for minutes at a
//! time. Two records taken in different states differ although no code changed; comparing
//! their probes (`compare`) tells that case apart from a real change. The workload is plain
//! scalar-and-autovectorised Rust on one thread, independent of every backend and of the
//! thread pools, so that it measures the machine rather than dlbench's kernels.

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::stats::{summarize, Summary};

/// What the probe times, as the record names it; change it when the workload changes, so that
/// probes of different workloads are not compared.
pub const WORKLOAD: &str = "matmul-f32-64x64x64 x8, one thread";
/// Timings per moment: the moment's median is robust to one preempted timing.
const TIMINGS_PER_MOMENT: usize = 5;
const N: usize = 64;

/// The probe's timings through a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedProbe {
    /// [`WORKLOAD`] of the build that took it.
    pub workload: String,
    /// Statistics of the timings, each moment a round of the bootstrap.
    pub summary: Summary,
    /// Nanoseconds of each timing, in the order taken.
    pub raw_ns: Vec<f64>,
    /// The moment (0, 1, ...) of each timing: timings of one moment were taken back to back.
    pub raw_moment: Vec<usize>,
}

/// Takes the probe at moments of a run.
#[derive(Debug, Default)]
pub struct Probe {
    raw_ns: Vec<f64>,
    raw_moment: Vec<usize>,
    moments: usize,
}

impl Probe {
    /// A probe with no timings yet.
    pub fn new() -> Probe {
        Probe::default()
    }

    /// Times the workload [`TIMINGS_PER_MOMENT`] times, now (some milliseconds).
    pub fn take(&mut self) {
        let (a, b) = matrices();
        let mut c = vec![0f32; N * N];
        multiply(&a, &b, &mut c); // warm: caches, and the first-touch page faults of `c`
        for _ in 0..TIMINGS_PER_MOMENT {
            let started = Instant::now();
            for _ in 0..8 {
                multiply(black_box(&a), black_box(&b), &mut c);
                black_box(&c);
            }
            self.raw_ns.push(started.elapsed().as_nanos() as f64);
            self.raw_moment.push(self.moments);
        }
        self.moments += 1;
    }

    /// The record of every timing taken; `None` before the first.
    pub fn finish(self) -> Option<SpeedProbe> {
        (!self.raw_ns.is_empty()).then(|| SpeedProbe {
            workload: WORKLOAD.to_string(),
            summary: summarize(&self.raw_ns, &self.raw_moment),
            raw_ns: self.raw_ns,
            raw_moment: self.raw_moment,
        })
    }
}

fn matrices() -> (Vec<f32>, Vec<f32>) {
    let fill = |k: usize| ((k * 7919) % 1000) as f32 / 1000.0 - 0.5;
    let a = (0..N * N).map(fill).collect();
    let b = (0..N * N).map(|k| fill(k + 13)).collect();
    (a, b)
}

/// `c = a b` for row-major `N x N` matrices, in i-k-j order.
fn multiply(a: &[f32], b: &[f32], c: &mut [f32]) {
    c.fill(0.0);
    for i in 0..N {
        for k in 0..N {
            let aik = a[i * N + k];
            let (row, b_row) = (&mut c[i * N..(i + 1) * N], &b[k * N..(k + 1) * N]);
            for (cij, bkj) in row.iter_mut().zip(b_row) {
                *cij += aik * bkj;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_moment_gives_its_timings_as_one_round() {
        let mut probe = Probe::new();
        assert!(Probe::new().finish().is_none());
        probe.take();
        probe.take();
        let record = probe.finish().unwrap();
        assert_eq!(record.workload, WORKLOAD);
        assert_eq!(record.raw_ns.len(), 2 * TIMINGS_PER_MOMENT);
        assert_eq!(record.raw_moment, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
        assert_eq!(record.summary.rounds, 2);
        assert!(record.raw_ns.iter().all(|&ns| ns > 0.0));
    }

    #[test]
    fn the_workload_computes_a_product() {
        let a: Vec<f32> = (0..N * N).map(|k| (k % N == k / N) as u8 as f32).collect();
        let (_, b) = matrices();
        let mut c = vec![0f32; N * N];
        multiply(&a, &b, &mut c);
        assert_eq!(c, b, "identity times b");
    }
}
