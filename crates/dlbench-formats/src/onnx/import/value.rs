//! What the importer knows about each ONNX value: computed at run time by the IR graph
//! ([`Value::Runtime`]), or known now ([`Const`]: weights, and the shape arithmetic that
//! exporters write around them, where the batch size is the one unknown, [`Sym::Batch`]).
//! Constants are folded here with index maps, so that every shape op (transpose, slice,
//! gather, expand) works alike on floats and on symbolic integers.

use std::rc::Rc;

use dlbench_core::limits::checked_numel;
use dlbench_core::{DType, Dim, ValueInfo};

/// An integer known at import time, or the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sym {
    Int(i64),
    Batch,
}

impl Sym {
    pub fn int(self) -> Option<i64> {
        match self {
            Sym::Int(v) => Some(v),
            Sym::Batch => None,
        }
    }
}

/// The elements of a constant.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ConstData {
    /// Numbers of a float type (kept as f64: every f32 and f16 is exact in it).
    Float { values: Vec<f64>, dtype: DType },
    /// Integers and bools, of any width: shapes, axes, indices.
    Int(Vec<Sym>),
    /// Every element is `value`: `ConstantOfShape` and `Expand` of a scalar, whose shape may
    /// hold the batch (the zero initial state of an LSTM).
    Fill { value: f64, dtype: DType },
}

impl ConstData {
    pub fn floats(values: Vec<f64>, dtype: DType) -> Self {
        ConstData::Float { values, dtype }
    }
}

/// Where a constant's numbers come from: parameters keep an initializer's name when they hold
/// its numbers, in its layout or transposed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Origin {
    Initializer(String),
    /// The 2-D transpose of the initializer named (a `MatMul` weight written as
    /// `Transpose(W)`).
    Transposed(String),
    Computed,
}

/// A value known at import time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Const {
    /// Known dims, except for a [`ConstData::Fill`], which may hold the batch.
    pub shape: Vec<Dim>,
    pub data: ConstData,
    pub origin: Origin,
}

/// An ONNX value as the importer knows it.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// Computed by the IR graph: its IR name, dtype and shape.
    Runtime(ValueInfo),
    /// Known now.
    Const(Rc<Const>),
}

/// The known dims of `shape`, or `None` if it holds the batch.
pub(super) fn known(shape: &[Dim]) -> Option<Vec<usize>> {
    shape.iter().map(|d| d.known()).collect()
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Calls `f` with each multi-index of `shape`, in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut index = vec![0; shape.len()];
    loop {
        f(&index);
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

impl Const {
    pub fn new(shape: Vec<Dim>, data: ConstData, origin: Origin) -> Self {
        Const {
            shape,
            data,
            origin,
        }
    }

    /// The float dtype, or `None` for integers.
    pub fn float_dtype(&self) -> Option<DType> {
        match self.data {
            ConstData::Float { dtype, .. } | ConstData::Fill { dtype, .. } => Some(dtype),
            ConstData::Int(_) => None,
        }
    }

    /// The known dims (every constant but a batch-shaped fill has them).
    pub fn dims(&self) -> Result<Vec<usize>, String> {
        known(&self.shape).ok_or_else(|| "a constant shaped by the batch".to_string())
    }

    /// The elements as numbers, a fill expanded (its shape must be known).
    pub fn to_f64(&self) -> Result<Vec<f64>, String> {
        match &self.data {
            ConstData::Float { values, .. } => Ok(values.clone()),
            ConstData::Int(values) => values
                .iter()
                .map(|v| v.int().map(|v| v as f64))
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| "the batch size is not known at import time".to_string()),
            ConstData::Fill { value, .. } => {
                let n = checked_numel(&self.dims()?).ok_or("too many elements")?;
                Ok(vec![*value; n])
            }
        }
    }

    /// The elements as integers (shapes, axes, indices), symbolic ones included.
    pub fn to_syms(&self) -> Result<Vec<Sym>, String> {
        match &self.data {
            ConstData::Int(values) => Ok(values.clone()),
            ConstData::Float { .. } | ConstData::Fill { .. } => {
                Err("expected integers, got floats".to_string())
            }
        }
    }

    /// The elements as known integers.
    pub fn to_ints(&self) -> Result<Vec<i64>, String> {
        self.to_syms()?
            .into_iter()
            .map(Sym::int)
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| "the batch size is not known at import time".to_string())
    }

    /// The one element of a scalar or one-element constant.
    pub fn scalar(&self) -> Option<f64> {
        match &self.data {
            ConstData::Fill { value, .. } => Some(*value),
            _ if known(&self.shape).and_then(|s| checked_numel(&s)) != Some(1) => None,
            ConstData::Float { values, .. } => values.first().copied(),
            ConstData::Int(values) => values.first().and_then(|v| v.int()).map(|v| v as f64),
        }
    }

    /// A constant of `shape` whose element `i` is this one's `source[i]` (a fill stays a fill).
    fn select(&self, shape: Vec<Dim>, source: &[usize]) -> Const {
        let data = match &self.data {
            ConstData::Float { values, dtype } => ConstData::Float {
                values: source.iter().map(|&i| values[i]).collect(),
                dtype: *dtype,
            },
            ConstData::Int(values) => ConstData::Int(source.iter().map(|&i| values[i]).collect()),
            fill @ ConstData::Fill { .. } => fill.clone(),
        };
        Const::new(shape, data, Origin::Computed)
    }

    /// Applies an index map over the output shape `out`: `map(index)` is the input's flat
    /// position. A fill needs no map and may keep the batch in its shape.
    fn mapped(&self, out: Vec<Dim>, map: impl Fn(&[usize]) -> usize) -> Result<Const, String> {
        if let ConstData::Fill { .. } = self.data {
            return Ok(self.select(out, &[]));
        }
        let dims = known(&out).ok_or("a constant shaped by the batch")?;
        let mut source = Vec::with_capacity(checked_numel(&dims).ok_or("too many elements")?);
        for_each_index(&dims, |index| source.push(map(index)));
        Ok(self.select(out, &source))
    }

    /// The same elements under a new shape of as many elements.
    pub fn reshaped(&self, shape: Vec<Dim>) -> Const {
        let mut out = self.clone();
        out.shape = shape;
        out.origin = Origin::Computed;
        out
    }

    /// Output dim `i` is input dim `perm[i]`.
    pub fn transposed(&self, perm: &[usize]) -> Result<Const, String> {
        let out: Vec<Dim> = perm.iter().map(|&p| self.shape[p]).collect();
        let in_strides = strides(&self.dims().unwrap_or_default());
        let mut result = self.mapped(out, |index| {
            index
                .iter()
                .zip(perm)
                .map(|(&i, &p)| i * in_strides[p])
                .sum()
        })?;
        if let (Origin::Initializer(name), [1, 0]) = (&self.origin, perm) {
            result.origin = Origin::Transposed(name.clone());
        }
        Ok(result)
    }

    /// Elements `starts[a] + k * steps[a]` along each axis, `counts[a]` of them (`None`: the
    /// whole axis, which may be the batch of a fill).
    pub fn sliced(
        &self,
        starts: &[usize],
        steps: &[i64],
        counts: &[Option<usize>],
    ) -> Result<Const, String> {
        let mut out = self.shape.clone();
        for (axis, count) in counts.iter().enumerate() {
            if let Some(count) = count {
                out[axis] = Dim::Known(*count);
            }
        }
        let in_strides = strides(&self.dims().unwrap_or_default());
        self.mapped(out, |index| {
            index
                .iter()
                .enumerate()
                .map(|(a, &i)| (starts[a] as i64 + i as i64 * steps[a]) as usize * in_strides[a])
                .sum()
        })
    }

    /// numpy `take(self, indices, axis)`: indices already normalised to `0..dim`.
    pub fn gathered(
        &self,
        axis: usize,
        indices: &[usize],
        index_shape: &[usize],
    ) -> Result<Const, String> {
        let mut out: Vec<Dim> = self.shape[..axis].to_vec();
        out.extend(index_shape.iter().map(|&d| Dim::Known(d)));
        out.extend_from_slice(&self.shape[axis + 1..]);
        let in_strides = strides(&self.dims().unwrap_or_default());
        let index_strides = strides(index_shape);
        let k = index_shape.len();
        self.mapped(out, |index| {
            let position: usize = index[axis..axis + k]
                .iter()
                .zip(&index_strides)
                .map(|(i, s)| i * s)
                .sum();
            let picked = indices[position];
            index[..axis]
                .iter()
                .enumerate()
                .map(|(a, &i)| i * in_strides[a])
                .sum::<usize>()
                + picked * in_strides[axis]
                + index[axis + k..]
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| i * in_strides[axis + 1 + a])
                    .sum::<usize>()
        })
    }

    /// Broadcast to `out` (numpy rules, already checked).
    pub fn broadcast_to(&self, out: Vec<Dim>) -> Result<Const, String> {
        let rank = out.len();
        let dims = self.dims().unwrap_or_default();
        let in_strides = strides(&dims);
        let offset = rank - dims.len();
        self.mapped(out, |index| {
            dims.iter()
                .enumerate()
                .map(|(a, &d)| match d {
                    1 => 0,
                    _ => index[offset + a] * in_strides[a],
                })
                .sum()
        })
    }
}

/// Joins constants along `axis` (their other dims agree).
pub(super) fn concat(parts: &[Rc<Const>], axis: usize) -> Result<Const, String> {
    let first = parts.first().ok_or("nothing to join")?;
    let fits = |p: &Rc<Const>| {
        p.shape.len() == first.shape.len()
            && (0..first.shape.len()).all(|a| a == axis || p.shape[a] == first.shape[a])
    };
    if axis >= first.shape.len() || !parts.iter().all(fits) {
        return Err("the parts' shapes differ outside the joined axis".to_string());
    }
    let mut shape = first.shape.clone();
    let total: Option<usize> = parts.iter().map(|p| p.shape[axis].known()).sum();
    shape[axis] = Dim::Known(total.ok_or("joining along the batch")?);
    if let ConstData::Fill { value, dtype } = first.data {
        if parts.iter().all(|p| p.data == first.data) {
            return Ok(Const::new(
                shape,
                ConstData::Fill { value, dtype },
                Origin::Computed,
            ));
        }
    }
    let dims = known(&shape).ok_or("a constant shaped by the batch")?;
    let outer: usize = dims[..axis].iter().product();
    let data = if let Some(dtype) = first.float_dtype() {
        let parts = parts
            .iter()
            .map(|p| Ok((p.to_f64()?, p.dims()?[axis..].iter().product::<usize>())))
            .collect::<Result<Vec<_>, String>>()?;
        let mut values = Vec::new();
        for o in 0..outer {
            for (part, inner) in &parts {
                values.extend_from_slice(&part[o * inner..(o + 1) * inner]);
            }
        }
        ConstData::Float { values, dtype }
    } else {
        let parts = parts
            .iter()
            .map(|p| Ok((p.to_syms()?, p.dims()?[axis..].iter().product::<usize>())))
            .collect::<Result<Vec<_>, String>>()?;
        let mut values = Vec::new();
        for o in 0..outer {
            for (part, inner) in &parts {
                values.extend_from_slice(&part[o * inner..(o + 1) * inner]);
            }
        }
        ConstData::Int(values)
    };
    Ok(Const::new(shape, data, Origin::Computed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(shape: &[usize], values: &[i64]) -> Const {
        let shape = shape.iter().map(|&d| Dim::Known(d)).collect();
        let data = ConstData::Int(values.iter().map(|&v| Sym::Int(v)).collect());
        Const::new(shape, data, Origin::Computed)
    }

    #[test]
    fn folding_transposes_slices_gathers_and_broadcasts_like_numpy() {
        let a = ints(&[2, 3], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(
            a.transposed(&[1, 0]).unwrap().to_ints().unwrap(),
            [0, 3, 1, 4, 2, 5]
        );
        let s = a.sliced(&[0, 2], &[1, -1], &[Some(2), Some(2)]).unwrap();
        assert_eq!(s.to_ints().unwrap(), [2, 1, 5, 4]);
        let g = a.gathered(1, &[2, 0], &[2]).unwrap();
        assert_eq!(g.to_ints().unwrap(), [2, 0, 5, 3]);
        let g = a.gathered(0, &[1], &[]).unwrap();
        assert_eq!(g.shape, [Dim::Known(3)]);
        assert_eq!(g.to_ints().unwrap(), [3, 4, 5]);
        let b = ints(&[3], &[7, 8, 9]);
        let out = b.broadcast_to(vec![Dim::Known(2), Dim::Known(3)]).unwrap();
        assert_eq!(out.to_ints().unwrap(), [7, 8, 9, 7, 8, 9]);
        let c = concat(&[Rc::new(a.clone()), Rc::new(ints(&[2, 1], &[9, 9]))], 1).unwrap();
        assert_eq!(c.to_ints().unwrap(), [0, 1, 2, 9, 3, 4, 5, 9]);
    }
}
