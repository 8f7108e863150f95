//! Where the windows of convolution and pooling fall and how an LSTM's values are laid out:
//! the geometry that shape inference, the f64 reference and every backend's kernels must agree
//! on, written once beside the op attributes. (The reference's arithmetic stays independent of
//! the engines it judges; its geometry need not.)

use super::{Conv2d, Direction, Lstm, Pool2d};

impl Conv2d {
    /// The output length along spatial `axis` (0 = height, 1 = width) for an input of `input`
    /// and a kernel of `kernel` taps, or `None` when the dilated kernel does not fit the
    /// padded input, the stride is zero or the sizes overflow (a crafted padding of 2^62
    /// must not wrap into a plausible length). PyTorch: `(in + 2p - d(k - 1) - 1) / s + 1`.
    pub fn output_len(&self, input: usize, kernel: usize, axis: usize) -> Option<usize> {
        let stride = self.stride[axis];
        if stride == 0 || kernel == 0 {
            return None;
        }
        let span = self.dilation[axis]
            .checked_mul(kernel - 1)?
            .checked_add(1)?;
        let padded = input.checked_add(self.padding[axis].checked_mul(2)?)?;
        Some(padded.checked_sub(span)? / stride + 1)
    }
}

/// One pooling window along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    /// First and one-past-last real (non-padding) input index covered.
    pub start: usize,
    /// See `start`; `end - start` is the divisor without `count_include_pad`.
    pub end: usize,
    /// Length of the window clipped to `[-pad, input + pad)`: PyTorch's divisor with
    /// `count_include_pad`, taken before clipping to the real input.
    pub padded_len: usize,
}

impl Pool2d {
    /// The output length along spatial `axis`, or `None` when the window does not fit or the
    /// sizes overflow.
    pub fn output_len(&self, input: usize, axis: usize) -> Option<usize> {
        let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
        if s == 0 {
            return None;
        }
        let span = input.checked_add(p.checked_mul(2)?)?.checked_sub(k)?;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        // PyTorch: the last window must start inside the input or the left padding.
        if self.ceil_mode && (out - 1) * s >= input + p {
            out -= 1;
        }
        Some(out)
    }

    /// The window of every output position along spatial `axis`; empty when the window does
    /// not fit (shape inference refuses such a model before any kernel runs).
    pub fn windows(&self, input: usize, axis: usize) -> Vec<PoolWindow> {
        let out = self.output_len(input, axis).unwrap_or(0);
        let (k, s, pad) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
        (0..out)
            .map(|o| {
                // Padded coordinates (input index + pad) keep everything unsigned.
                let start = o * s;
                let end = (start + k).min(input + 2 * pad);
                PoolWindow {
                    start: start.max(pad) - pad,
                    end: end.min(input + pad).saturating_sub(pad),
                    padded_len: end - start,
                }
            })
            .collect()
    }
}

impl Direction {
    /// How many directions the layer runs: 2 when bidirectional.
    pub fn count(self) -> usize {
        match self {
            Direction::Forward | Direction::Reverse => 1,
            Direction::Bidirectional => 2,
        }
    }
}

impl Lstm {
    /// Whether direction slot `d` (0, or 1 for the second of a bidirectional layer) reads the
    /// sequence from its end.
    pub fn reversed(&self, d: usize) -> bool {
        match self.direction {
            Direction::Forward => false,
            Direction::Reverse => true,
            Direction::Bidirectional => d == 1,
        }
    }
}

/// Sizes of one LSTM layer and where its values live in the flat row-major buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmDims {
    /// Time steps.
    pub t: usize,
    /// Batch size.
    pub n: usize,
    /// Input features.
    pub i: usize,
    /// Hidden size.
    pub h: usize,
    /// Directions (1, or 2 when bidirectional).
    pub dirs: usize,
    /// Whether x and Y are `[N, T, ..]` rather than `[T, N, ..]`.
    pub batch_first: bool,
}

impl LstmDims {
    /// The sizes of `attrs` over an input x of shape `x` (`[N, T, I]` or `[T, N, I]`).
    pub fn new(attrs: &Lstm, x: &[usize]) -> Self {
        let (t, n) = if attrs.batch_first {
            (x[1], x[0])
        } else {
            (x[0], x[1])
        };
        LstmDims {
            t,
            n,
            i: x[2],
            h: attrs.hidden,
            dirs: attrs.direction.count(),
            batch_first: attrs.batch_first,
        }
    }

    /// Offset of the first of the `width` features of (time `t`, batch `n`) in x or Y (and in
    /// anything laid out in x's row order).
    pub fn at(&self, t: usize, n: usize, width: usize) -> usize {
        if self.batch_first {
            (n * self.t + t) * width
        } else {
            (t * self.n + n) * width
        }
    }

    /// The shape of Y: `[N, T, D*H]` or `[T, N, D*H]`.
    pub fn y_shape(&self) -> Vec<usize> {
        let features = self.dirs * self.h;
        if self.batch_first {
            vec![self.n, self.t, features]
        } else {
            vec![self.t, self.n, features]
        }
    }
}
