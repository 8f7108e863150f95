//! Test data for the kernels' tests: a small deterministic xorshift generator, so that every
//! test draws its operands the same way and a failure reproduces from its seed.

pub(crate) struct Rng(pub u64);

impl Rng {
    /// The next 64 bits of the sequence (a zero seed stays zero: seed with something else).
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in [-1, 1).
    pub fn next(&mut self) -> f32 {
        ((self.bits() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `len` values in [-1, 1).
    pub fn fill(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}
