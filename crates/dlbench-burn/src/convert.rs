//! Moving values across the boundary and between ranks. burn's tensors carry their rank in the
//! type (`Tensor<D>`) while an IR value's rank is known only at run time, so this backend holds
//! every value as a [`Value`]: a flat rank-1 burn tensor and its IR shape. An op views its
//! inputs at the rank it needs (a `reshape`, metadata only for a contiguous tensor, recorded by
//! autodiff like any op) and flattens its result back. Also: host [`dlbench_core::Tensor`]s to
//! burn tensors and back, and burn panics (burn reports bad input by panicking) to
//! [`Error::Backend`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use burn::tensor::{Device, Int, Tensor, TensorData};
use dlbench_core::{DType, Data, Error, Result};

use crate::NAME;

/// One IR value on a burn device: the data as a flat rank-1 tensor and the IR shape.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// f32 data (burn's default float type on every device this backend uses).
    Float {
        /// The elements in row-major order.
        flat: Tensor<1>,
        /// The IR shape.
        shape: Vec<usize>,
    },
    /// Integer labels (burn's default int type).
    Int {
        /// The elements in row-major order.
        flat: Tensor<1, Int>,
        /// The IR shape.
        shape: Vec<usize>,
    },
}

impl Value {
    /// A float value from a burn tensor of any rank: flattened, its dims kept as the shape.
    pub(crate) fn from_float<const D: usize>(t: Tensor<D>) -> Value {
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        Value::Float {
            flat: t.reshape([n]),
            shape,
        }
    }

    /// A float value with a new shape of the same element count (Flatten, Reshape).
    pub(crate) fn with_shape(flat: Tensor<1>, shape: Vec<usize>) -> Value {
        Value::Float { flat, shape }
    }

    /// The value's IR shape.
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::Float { shape, .. } | Value::Int { shape, .. } => shape,
        }
    }

    /// The flat float tensor, or an error naming what needed a float.
    pub(crate) fn flat(&self) -> Result<&Tensor<1>> {
        match self {
            Value::Float { flat, .. } => Ok(flat),
            Value::Int { .. } => Err(Error::invalid("expected a float value, got integers")),
        }
    }

    /// The flat integer tensor (labels).
    pub(crate) fn flat_int(&self) -> Result<&Tensor<1, Int>> {
        match self {
            Value::Int { flat, .. } => Ok(flat),
            Value::Float { .. } => Err(Error::invalid("expected integer labels, got floats")),
        }
    }

    /// The float value viewed as a rank-`D` burn tensor of its IR shape.
    pub(crate) fn view<const D: usize>(&self) -> Result<Tensor<D>> {
        let dims = dims_of::<D>(self.shape())?;
        Ok(self.flat()?.clone().reshape(dims))
    }

    /// The float value viewed as a rank-`D` tensor of another shape with the same elements.
    pub(crate) fn view_as<const D: usize>(&self, shape: [usize; D]) -> Result<Tensor<D>> {
        let n: usize = shape.iter().product();
        if n != self.shape().iter().product::<usize>() {
            return Err(Error::invalid(format!(
                "cannot view a value of shape {:?} as {shape:?}",
                self.shape()
            )));
        }
        Ok(self.flat()?.clone().reshape(shape))
    }
}

/// `shape` as a fixed-size array of rank `D`, or an error if its rank differs.
pub(crate) fn dims_of<const D: usize>(shape: &[usize]) -> Result<[usize; D]> {
    <[usize; D]>::try_from(shape).map_err(|_| {
        Error::invalid(format!(
            "expected a value of rank {D}, got shape {shape:?} (rank {})",
            shape.len()
        ))
    })
}

/// Runs `f`, turning a burn panic (its way of reporting a bad shape or argument) into
/// [`Error::Backend`] that says what was being done.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(Error::Backend {
            backend: NAME.to_string(),
            message: format!("{what}: burn panicked: {}", panic_message(panic.as_ref())),
        }),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A burn error (reading data, synchronising) as dlbench's.
pub(crate) fn burn_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: NAME.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// A host tensor on `device`: floats as f32 (burn's default float), labels as integers.
pub(crate) fn to_burn(tensor: &dlbench_core::Tensor, device: &Device) -> Result<Value> {
    let shape = tensor.shape().to_vec();
    let n = tensor.len();
    guard("copying a tensor to burn", || {
        Ok(match tensor.data() {
            Data::F32(v) => Value::Float {
                flat: Tensor::from_data(TensorData::new(v.clone(), [n]), device),
                shape,
            },
            Data::F64(v) => {
                let narrowed: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                Value::Float {
                    flat: Tensor::from_data(TensorData::new(narrowed, [n]), device),
                    shape,
                }
            }
            Data::I64(v) => Value::Int {
                flat: Tensor::from_data(TensorData::new(v.clone(), [n]), device),
                shape,
            },
        })
    })
}

/// A value copied back to the host: floats as f32, integers as i64.
pub(crate) fn to_host(value: &Value) -> Result<dlbench_core::Tensor> {
    let what = "copying a tensor back from burn";
    match value {
        Value::Float { flat, shape } => {
            let data = guard(what, || {
                flat.to_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| burn_error(what, format!("{e:?}")))
            })?;
            dlbench_core::Tensor::f32(shape.clone(), data)
        }
        Value::Int { flat, shape } => {
            let data = guard(what, || {
                flat.to_data()
                    .convert::<i64>()
                    .try_into_vec::<i64>()
                    .map_err(|e| burn_error(what, format!("{e:?}")))
            })?;
            dlbench_core::Tensor::i64(shape.clone(), data)
        }
    }
}

/// A flat float tensor copied back to the host with `shape` (gradients, weights).
pub(crate) fn flat_to_host(flat: &Tensor<1>, shape: &[usize]) -> Result<dlbench_core::Tensor> {
    to_host(&Value::Float {
        flat: flat.clone(),
        shape: shape.to_vec(),
    })
}

/// A 2-D host tensor transposed (the IR's Dense weight `[out, in]` to burn's `Linear` layout
/// `[in, out]`, and back).
pub(crate) fn transpose_2d(t: &dlbench_core::Tensor) -> Result<dlbench_core::Tensor> {
    let (&[rows, cols], Some(data)) = (t.shape(), t.as_f32()) else {
        return Err(Error::invalid(format!(
            "expected a 2-D f32 weight, got {:?} of shape {:?}",
            t.dtype(),
            t.shape()
        )));
    };
    let mut out = Vec::with_capacity(data.len());
    for c in 0..cols {
        out.extend((0..rows).map(|r| data[r * cols + c]));
    }
    dlbench_core::Tensor::f32(vec![cols, rows], out)
}

/// A 2-D float value transposed on the device (a copy: burn flattens the strided view).
pub(crate) fn transposed_2d(v: &Value) -> Result<Value> {
    Ok(Value::from_float(v.view::<2>()?.transpose()))
}

/// Zeros of `shape` on the host (the gradient of a parameter the loss does not reach).
pub(crate) fn host_zeros(shape: &[usize]) -> dlbench_core::Tensor {
    dlbench_core::Tensor::zeros(DType::F32, shape.to_vec())
}

/// Calls `$body` with `$d` bound to the const rank `$rank` (1 to 6), or evaluates to an
/// unsupported-rank error. burn's ops take their rank as a const generic; this picks the
/// monomorphised one for a rank known only at run time.
macro_rules! with_rank {
    ($rank:expr, $d:ident => $body:expr) => {
        match $rank {
            1 => {
                const $d: usize = 1;
                $body
            }
            2 => {
                const $d: usize = 2;
                $body
            }
            3 => {
                const $d: usize = 3;
                $body
            }
            4 => {
                const $d: usize = 4;
                $body
            }
            5 => {
                const $d: usize = 5;
                $body
            }
            6 => {
                const $d: usize = 6;
                $body
            }
            r => Err(dlbench_core::Error::unsupported(
                $crate::NAME,
                format!("a value of rank {r}: this backend handles ranks 1 to 6"),
            )),
        }
    };
}
pub(crate) use with_rank;
