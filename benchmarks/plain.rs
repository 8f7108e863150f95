//! The seed CNN (`specs/cnn.yaml`) written directly against each framework, with no dlbench:
//! what a user of that framework writes from its own documentation. `benches/plain.rs` times
//! each beside dlbench's adapter for the same framework, so that the adapter's overhead (its
//! graph interpreter, its layout changes, its composed ops) is measured rather than assumed.
//!
//! Both programs hold one batch on the device and expose the same three calls: a training
//! step (forward, loss, backward, optimizer update) and an inference forward pass.
//! Initialisation is each framework's default: the values do not change the speed.

#[cfg(feature = "burn")]
pub mod burn_cnn;
#[cfg(feature = "candle")]
pub mod candle_cnn;

/// The seed CNN's sizes, shared by both programs.
pub mod shape {
    /// Input channels, height and width of one image.
    pub const INPUT: [usize; 3] = [1, 32, 32];
    /// Filters of the first and second convolution (3 x 3, no padding).
    pub const FILTERS: [usize; 2] = [32, 64];
    /// Features after the second pool: 64 x 6 x 6.
    pub const FLAT: usize = 64 * 6 * 6;
    /// Units of the hidden dense layer.
    pub const HIDDEN: usize = 100;
    /// Classes.
    pub const CLASSES: usize = 10;
    /// The spec's SGD learning rate.
    pub const LR: f64 = 0.01;
}

/// One deterministic batch for either program: `batch` images with values in [0, 1) and their
/// labels in `0..CLASSES`.
pub fn batch(batch: usize) -> (Vec<f32>, Vec<u32>) {
    let [c, h, w] = shape::INPUT;
    let pixels = (0..batch * c * h * w)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let labels = (0..batch).map(|i| (i % shape::CLASSES) as u32).collect();
    (pixels, labels)
}
