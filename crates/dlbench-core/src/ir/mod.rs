//! The framework-neutral model IR: a [`Graph`] of [`Node`]s in topological order over named,
//! typed values. Canonical layouts: NCHW activations, Dense weight `[out, in]`, Conv weight
//! OIHW, LSTM `w_ih [4H, I]`, `w_hh [4H, H]`, `b_ih [4H]`, `b_hh [4H]`, gates i, f, g, o.

mod geometry;
mod graph;
mod op;
pub mod shape;

pub use geometry::{LstmDims, PoolWindow};
pub use graph::{Graph, Input, InputRole, Node, Param};
pub use op::{
    BinaryOp, Conv2d, Direction, LossOp, Lstm, Op, OpKind, OpTag, Pool2d, UnaryKind, UnaryOp,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tensor::DType;

/// One dimension of a value's shape: known, or the symbolic batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The batch size, fixed only when a batch is loaded; written `"batch"`.
    Batch,
    /// A fixed size, the same for every batch.
    Known(usize),
}

impl Dim {
    /// The size once the batch size is known.
    pub fn resolve(self, batch: usize) -> usize {
        match self {
            Dim::Batch => batch,
            Dim::Known(n) => n,
        }
    }

    /// The size when it is fixed, `None` for the batch dimension.
    pub fn known(self) -> Option<usize> {
        match self {
            Dim::Batch => None,
            Dim::Known(n) => Some(n),
        }
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Batch => f.write_str("batch"),
            Dim::Known(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Dim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dim::Batch => s.serialize_str("batch"),
            Dim::Known(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dim;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a dimension size or \"batch\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dim, E> {
                Ok(Dim::Known(v as usize))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dim, E> {
                usize::try_from(v)
                    .map(Dim::Known)
                    .map_err(|_| E::custom(format!("dimension {v} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dim, E> {
                match v {
                    "batch" => Ok(Dim::Batch),
                    _ => Err(E::custom(format!(
                        "unknown symbolic dimension `{v}`, expected \"batch\""
                    ))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Formats a shape the way `inspect` prints it: `batch x 64 x 6 x 6`.
pub fn format_shape(shape: &[Dim]) -> String {
    if shape.is_empty() {
        return "scalar".to_string();
    }
    shape
        .iter()
        .map(Dim::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// A named value's type: its dtype and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    /// The value's name, unique in its graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first (NCHW for images); empty for a scalar.
    pub shape: Vec<Dim>,
}

impl ValueInfo {
    /// A value named `name` of this dtype and shape.
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<Dim>) -> Self {
        ValueInfo {
            name: name.into(),
            dtype,
            shape,
        }
    }

    /// The concrete shape for a batch size.
    pub fn resolve(&self, batch: usize) -> Vec<usize> {
        self.shape.iter().map(|d| d.resolve(batch)).collect()
    }

    /// The element count of one sample (batch = 1), saturating at `usize::MAX` (shape
    /// inference refuses such values; a saturated count is over every limit).
    pub fn numel_per_sample(&self) -> usize {
        crate::limits::checked_numel(&self.resolve(1)).unwrap_or(usize::MAX)
    }
}
