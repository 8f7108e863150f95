//! [`Tensor`], the dense host-side array every backend takes and returns, its element types
//! ([`DType`], [`Data`]) and [`Values`], the named collections of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Named tensors: inputs, outputs, weights, gradients.
pub type Values = BTreeMap<String, Tensor>;

/// Element types a [`Tensor`] can hold: float data, double-precision reference values, and
/// integer class labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit float: what backends compute in (`torch.float32`).
    F32,
    /// 64-bit float: the reference's precision (`torch.float64`).
    F64,
    /// 64-bit signed integer: class labels (`torch.int64`, what `CrossEntropyLoss` takes).
    I64,
}

impl DType {
    /// True for [`DType::F32`] and [`DType::F64`].
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The lowercase name used in files and messages: `f32`, `f64`, `i64`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The elements of a tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// [`DType::F32`] elements.
    F32(Vec<f32>),
    /// [`DType::F64`] elements.
    F64(Vec<f64>),
    /// [`DType::I64`] elements.
    I64(Vec<i64>),
}

/// A dense, row-major, host-side tensor: the currency between the harness and every backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

impl Tensor {
    /// Builds a tensor, checking that the element count matches the shape.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Self> {
        // Checked: a crafted shape such as [2^63, 2] must not wrap to 0 elements and match.
        let expected = crate::limits::checked_numel(&shape).ok_or_else(|| {
            Error::invalid(format!("tensor of shape {shape:?}: its size overflows"))
        })?;
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
        };
        if len != expected {
            return Err(Error::invalid(format!(
                "tensor of shape {shape:?} needs {expected} elements, got {len}"
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// An f32 tensor; fails when `data.len()` is not the product of `shape`.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        Self::new(shape, Data::F32(data))
    }

    /// An f64 tensor; fails when `data.len()` is not the product of `shape`.
    pub fn f64(shape: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        Self::new(shape, Data::F64(data))
    }

    /// An i64 tensor; fails when `data.len()` is not the product of `shape`.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Self> {
        Self::new(shape, Data::I64(data))
    }

    /// A tensor of this dtype and shape filled with zeros. The shape must come from checked
    /// sizes (shape inference refuses values whose size overflows); one that overflows panics.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Self {
        let n = crate::limits::checked_numel(&shape).expect("a shape whose size fits in usize");
        let data = match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::I64 => Data::I64(vec![0; n]),
        };
        Tensor { shape, data }
    }

    /// A rank-0 (shape `[]`) f64 tensor holding `value`, like a loss.
    pub fn scalar_f64(value: f64) -> Self {
        Tensor {
            shape: Vec::new(),
            data: Data::F64(vec![value]),
        }
    }

    /// Dimensions, outermost first; empty for a scalar.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element count: the product of the shape (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when some dimension is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type, from the [`Data`] variant.
    pub fn dtype(&self) -> DType {
        match self.data {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
        }
    }

    /// The elements, row-major.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The elements, row-major, without copying; the shape is dropped.
    pub fn into_data(self) -> Data {
        self.data
    }

    /// The elements when the dtype is f32, else `None` (no conversion).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements when the dtype is f64, else `None` (no conversion).
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements when the dtype is i64, else `None` (no conversion).
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Every element widened (or, for labels, converted) to f64.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The same values in another dtype (floats are rounded to nearest; to i64 truncates).
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let data = match (dtype, &self.data) {
            (DType::F32, Data::F64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
            (DType::F32, Data::I64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
            (DType::F64, _) => Data::F64(self.to_f64_vec()),
            (DType::I64, _) => Data::I64(self.to_f64_vec().iter().map(|&x| x as i64).collect()),
            (DType::F32, Data::F32(_)) => unreachable!("same dtype returned above"),
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(mut self, shape: Vec<usize>) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(Error::invalid(format!(
                "cannot reshape {:?} into {shape:?}",
                self.shape
            )));
        }
        self.shape = shape;
        Ok(self)
    }

    /// Rows `rows` of the first axis (for batching a dataset).
    pub fn select_rows(&self, rows: &[usize]) -> Tensor {
        let row_len: usize = self.shape.iter().skip(1).product();
        let mut shape = self.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = rows.len();
        }
        fn pick<T: Copy>(v: &[T], rows: &[usize], row_len: usize) -> Vec<T> {
            rows.iter()
                .flat_map(|&r| v[r * row_len..(r + 1) * row_len].iter().copied())
                .collect()
        }
        let data = match &self.data {
            Data::F32(v) => Data::F32(pick(v, rows, row_len)),
            Data::F64(v) => Data::F64(pick(v, rows, row_len)),
            Data::I64(v) => Data::I64(pick(v, rows, row_len)),
        };
        Tensor { shape, data }
    }
}
