//! Augmentation of image batches `[N, C, H, W]` for training: random horizontal flip, random
//! crop after zero padding, small random rotation, random translation and Gaussian noise, as
//! torchvision's `RandomHorizontalFlip`, `RandomCrop(padding=p)`, `RandomAffine` and an added
//! noise transform do.
//!
//! The harness augments each training batch before any backend sees it, from the stream
//! (seed, "augment", step): every backend gets the same pixels, and each epoch different ones.

use dlbench_core::rng::Stream;
use dlbench_core::Tensor;

use crate::error::{Error, Result};

/// The random transforms to apply, in this order: flip, crop, rotate, translate, noise.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Pad each side with this many zero pixels, then crop the original size at a random
    /// offset (0: no crop).
    pub crop_padding: usize,
    /// Rotate about the centre by an angle drawn uniformly from ±this many degrees
    /// (bilinear, zero outside the image; 0: no rotation).
    pub rotate_degrees: f64,
    /// Shift by a whole number of pixels drawn uniformly from ±this, each axis (zero fill).
    pub translate: usize,
    /// Add Gaussian noise of this standard deviation to every value (0: none).
    pub noise_std: f64,
}

impl Augment {
    /// Whether any transform is on.
    pub fn is_active(&self) -> bool {
        self.flip
            || self.crop_padding > 0
            || self.rotate_degrees > 0.0
            || self.translate > 0
            || self.noise_std > 0.0
    }

    /// The augmented batch for training step `step`.
    pub fn apply(&self, batch: &Tensor, seed: u64, step: u32) -> Result<Tensor> {
        let &[_, c, h, w] = batch.shape() else {
            return Err(Error::invalid(format!(
                "augmentation needs image batches [N, C, H, W], got {:?}",
                batch.shape()
            )));
        };
        let mut stream = Stream::new(seed, "augment", step);
        let mut values: Vec<f32> = match batch.as_f32() {
            Some(v) => v.to_vec(),
            None => batch.to_f64_vec().iter().map(|&v| v as f32).collect(),
        };
        let plane = h * w;
        let mut scratch = vec![0.0f32; plane];
        for sample in values.chunks_exact_mut(c * plane.max(1)) {
            // Every draw is made whether or not its transform applies to this sample, so that
            // turning one transform on does not change what the others draw.
            let flip = self.flip && stream.uniform() < 0.5;
            let span = 2 * self.crop_padding + 1;
            let crop = (
                (stream.uniform() * span as f64) as usize,
                (stream.uniform() * span as f64) as usize,
            );
            let angle = (2.0 * stream.uniform() - 1.0) * self.rotate_degrees.to_radians();
            let span = 2 * self.translate + 1;
            let shift = (
                (stream.uniform() * span as f64) as isize - self.translate as isize,
                (stream.uniform() * span as f64) as isize - self.translate as isize,
            );
            for image in sample.chunks_exact_mut(plane.max(1)) {
                if flip {
                    image.chunks_exact_mut(w).for_each(|row| row.reverse());
                }
                if self.crop_padding > 0 {
                    let p = self.crop_padding as isize;
                    let (dy, dx) = (crop.0 as isize - p, crop.1 as isize - p);
                    shift_image(image, &mut scratch, h, w, dy, dx);
                }
                if self.rotate_degrees > 0.0 {
                    rotate(image, &mut scratch, h, w, angle);
                }
                if self.translate > 0 {
                    shift_image(image, &mut scratch, h, w, -shift.0, -shift.1);
                }
            }
        }
        if self.noise_std > 0.0 {
            let noise = stream.normal_vec(values.len());
            for (v, z) in values.iter_mut().zip(noise) {
                *v += (z * self.noise_std) as f32;
            }
        }
        Ok(Tensor::f32(batch.shape().to_vec(), values)?)
    }
}

/// `image[y][x] = old[y + dy][x + dx]`, zero where that falls outside.
fn shift_image(image: &mut [f32], scratch: &mut [f32], h: usize, w: usize, dy: isize, dx: isize) {
    scratch.copy_from_slice(image);
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = (y as isize + dy, x as isize + dx);
            image[y * w + x] = if (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx) {
                scratch[sy as usize * w + sx as usize]
            } else {
                0.0
            };
        }
    }
}

/// Rotates by `angle` radians about the image's centre (counter-clockwise on screen),
/// sampling bilinearly; zero outside the image.
fn rotate(image: &mut [f32], scratch: &mut [f32], h: usize, w: usize, angle: f64) {
    scratch.copy_from_slice(image);
    let (sin, cos) = angle.sin_cos();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let at = |y: isize, x: isize| -> f64 {
        if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
            f64::from(scratch[y as usize * w + x as usize])
        } else {
            0.0
        }
    };
    for y in 0..h {
        for x in 0..w {
            // The source of this output pixel: the inverse rotation of its offset.
            let (oy, ox) = (y as f64 - cy, x as f64 - cx);
            let sy = cy + cos * oy + sin * ox;
            let sx = cx - sin * oy + cos * ox;
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as isize, x0 as isize);
            let value = at(y0, x0) * (1.0 - fy) * (1.0 - fx)
                + at(y0, x0 + 1) * (1.0 - fy) * fx
                + at(y0 + 1, x0) * fy * (1.0 - fx)
                + at(y0 + 1, x0 + 1) * fy * fx;
            image[y * w + x] = value as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, h: usize, w: usize) -> Tensor {
        Tensor::f32(vec![n, 1, h, w], (0..n * h * w).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn flips_mirror_rows_and_draws_depend_on_seed_and_step_only() {
        let flip = Augment {
            flip: true,
            ..Augment::default()
        };
        let x = ramp(64, 2, 3);
        let a = flip.apply(&x, 1, 0).unwrap();
        assert_eq!(a, flip.apply(&x, 1, 0).unwrap());
        assert_ne!(a, flip.apply(&x, 1, 1).unwrap(), "a new step draws anew");
        let (before, after) = (x.as_f32().unwrap(), a.as_f32().unwrap());
        let mut flipped = 0;
        for (b, a) in before.chunks(6).zip(after.chunks(6)) {
            if a != b {
                assert_eq!(a, [b[2], b[1], b[0], b[5], b[4], b[3]]);
                flipped += 1;
            }
        }
        assert!((20..=44).contains(&flipped), "{flipped} of 64 flipped");
    }

    #[test]
    fn crops_and_translations_shift_with_zero_fill() {
        let mut image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut scratch = vec![0.0; 9];
        shift_image(&mut image, &mut scratch, 3, 3, 1, -1);
        assert_eq!(image, [0.0, 4.0, 5.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0]);
        let crop = Augment {
            crop_padding: 2,
            ..Augment::default()
        };
        let x = ramp(16, 4, 4);
        let out = crop.apply(&x, 3, 0).unwrap();
        // Each image is its original shifted by at most the padding on each axis.
        let mut shifts = std::collections::BTreeSet::new();
        for (b, a) in x
            .as_f32()
            .unwrap()
            .chunks(16)
            .zip(out.as_f32().unwrap().chunks(16))
        {
            let shift = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    let mut expected = b.to_vec();
                    shift_image(&mut expected, &mut [0.0; 16], 4, 4, dy, dx);
                    expected == a
                });
            shifts.insert(shift.expect("a shift within the padding"));
        }
        assert!(shifts.len() > 3, "{shifts:?}");
    }

    #[test]
    fn a_quarter_turn_moves_corners_and_noise_has_its_spread() {
        // 3x3: rotating 90 degrees counter-clockwise takes the top-right corner to the top-left.
        let mut image = vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut scratch = vec![0.0; 9];
        rotate(&mut image, &mut scratch, 3, 3, std::f64::consts::FRAC_PI_2);
        let rounded: Vec<f32> = image.iter().map(|v| v.round()).collect();
        assert_eq!(rounded, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let noise = Augment {
            noise_std: 0.5,
            ..Augment::default()
        };
        let zeros = Tensor::f32(vec![100, 1, 10, 10], vec![0.0; 10_000]).unwrap();
        let out = noise.apply(&zeros, 0, 0).unwrap().to_f64_vec();
        let std = (out.iter().map(|v| v * v).sum::<f64>() / out.len() as f64).sqrt();
        assert!((std - 0.5).abs() < 0.02, "std {std}");
        let flat = Tensor::f32(vec![2, 3], vec![0.0; 6]).unwrap();
        assert!(noise
            .apply(&flat, 0, 0)
            .unwrap_err()
            .to_string()
            .contains("[N, C, H, W]"));
        assert!(!Augment::default().is_active());
    }
}
