//! A counter-based RNG (Philox4x32-10, as in PyTorch's CUDA generator, JAX and Random123).
//!
//! Every random number dlbench uses — initial weights, dropout masks, the VAE's epsilon — is a
//! pure function of (seed, stream name, sub-stream, index), so the harness can hand the same
//! numbers to every backend and any one of them can be regenerated alone.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: maps a 128-bit counter under a 64-bit key to 128 random bits.
pub fn philox4x32_10(mut counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut k = key;
    for _ in 0..10 {
        let p0 = (M0 as u64) * (counter[0] as u64);
        let p1 = (M1 as u64) * (counter[2] as u64);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        counter = [hi1 ^ counter[1] ^ k[0], lo1, hi0 ^ counter[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    counter
}

/// FNV-1a, 32 bits: turns a stream name into the counter word that separates streams.
pub fn name_hash(name: &str) -> u32 {
    name.bytes().fold(0x811C_9DC5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// A sequence of random numbers addressed by (seed, name, sub-stream): the counter's words are
/// `[block low, block high, sub-stream, hash(name)]`.
#[derive(Debug, Clone)]
pub struct Stream {
    key: [u32; 2],
    name: u32,
    sub: u32,
    block: u64,
    buffer: [u32; 4],
    used: usize,
}

impl Stream {
    /// The stream `name` under `seed`; `sub` separates, say, the training steps of one stream.
    pub fn new(seed: u64, name: &str, sub: u32) -> Self {
        Stream {
            key: [seed as u32, (seed >> 32) as u32],
            name: name_hash(name),
            sub,
            block: 0,
            buffer: [0; 4],
            used: 4,
        }
    }

    /// The next 32 random bits; one Philox block yields four, in counter order.
    pub fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            let counter = [
                self.block as u32,
                (self.block >> 32) as u32,
                self.sub,
                self.name,
            ];
            self.buffer = philox4x32_10(counter, self.key);
            self.block += 1;
            self.used = 0;
        }
        self.used += 1;
        self.buffer[self.used - 1]
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        let hi = (self.next_u32() as u64) << 21;
        let lo = (self.next_u32() >> 11) as u64;
        (hi | lo) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller; one pair of uniforms per value keeps addressing simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// The next `n` values of [`Stream::uniform`].
    pub fn uniform_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.uniform()).collect()
    }

    /// The next `n` values of [`Stream::normal`] (two uniforms each).
    pub fn normal_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }

    /// A dropout keep-mask: 1 with probability `1 - p`, else 0.
    pub fn keep_mask(&mut self, n: usize, p: f64) -> Vec<f64> {
        (0..n)
            .map(|_| if self.uniform() < p { 0.0 } else { 1.0 })
            .collect()
    }

    /// A uniformly random permutation of `0..n` (Fisher-Yates), for shuffling a dataset.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.uniform() * (i + 1) as f64) as usize;
            order.swap(i, j.min(i));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from Random123's kat_vectors for philox4x32_10.
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = Stream::new(7, "w", 0).uniform_vec(10);
        assert_eq!(a, Stream::new(7, "w", 0).uniform_vec(10));
        assert_ne!(a, Stream::new(7, "w", 1).uniform_vec(10));
        assert_ne!(a, Stream::new(7, "b", 0).uniform_vec(10));
        assert_ne!(a, Stream::new(8, "w", 0).uniform_vec(10));
    }

    #[test]
    fn normal_has_unit_moments() {
        let v = Stream::new(1, "eps", 0).normal_vec(100_000);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn keep_mask_drops_about_p() {
        let m = Stream::new(1, "mask", 3).keep_mask(100_000, 0.3);
        let dropped = m.iter().filter(|&&x| x == 0.0).count() as f64 / m.len() as f64;
        assert!((dropped - 0.3).abs() < 0.01, "dropped {dropped}");
    }
}
