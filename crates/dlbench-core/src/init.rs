//! Seeded weight initialisation with PyTorch's default schemes, so that a fresh dlbench model
//! is distributed like a fresh PyTorch model. The numbers come from the counter-based RNG, one
//! stream per parameter name: adding a parameter never changes another's initial values.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::checked_numel;
use crate::rng::Stream;
use crate::tensor::Tensor;

/// How a parameter starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    /// U(-bound, bound). PyTorch's `Linear` and `Conv2d` weights and biases use
    /// `bound = 1 / sqrt(fan_in)` (kaiming_uniform with a = sqrt(5)); `LSTM` uses
    /// `1 / sqrt(hidden)` for every tensor.
    Uniform {
        /// Half-width of the interval; positive.
        bound: f64,
    },
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

impl Init {
    /// PyTorch's default for `Linear` / `Conv2d` with this fan-in.
    pub fn fan_in(fan_in: usize) -> Self {
        Init::Uniform {
            bound: 1.0 / (fan_in as f64).sqrt(),
        }
    }
}

impl Init {
    /// The initial f32 value of the parameter `name` of this shape, from `seed`.
    pub fn sample(self, name: &str, shape: Vec<usize>, seed: u64) -> Result<Tensor> {
        let n = checked_numel(&shape).ok_or_else(|| {
            Error::invalid(format!(
                "parameter `{name}`: shape {shape:?} is too large to address"
            ))
        })?;
        let data: Vec<f32> = match self {
            Init::Uniform { bound } => {
                let mut stream = Stream::new(seed, name, 0);
                (0..n)
                    .map(|_| ((stream.uniform() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            }
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
        };
        Tensor::f32(shape, data)
    }
}
