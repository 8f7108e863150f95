//! The ONNX ops that move and reshape data without arithmetic: `Constant`, `Identity`,
//! `Shape`, `Gather`, `Unsqueeze`, `Squeeze`, `Concat`, `ConstantOfShape`, `Expand`, `Slice`,
//! `Cast`, `Transpose`, `Reshape`, `Flatten`. On constants they are folded; on values
//! computed by the graph they become the IR's `Reshape`, `Transpose`, `Flatten` and `Concat`,
//! or vanish when they change nothing (a full `Slice`, an `Expand` to the same shape).

use std::rc::Rc;

use dlbench_core::ir::format_shape;
use dlbench_core::ir::shape::{broadcast, normalize_axis};
use dlbench_core::{DType, Dim, Op};

use super::attrs::At;
use super::reshapes::{final_state_as, final_step, reshape_to};
use super::tensor::{read_tensor, TensorSource};
use super::value::{concat, Const, ConstData, Origin, Sym, Value};
use super::Importer;
use super::{reshapes, views};
use crate::onnx::proto::DataType;

/// Imports the node if it is one of this module's ops; `Ok(false)` if not.
pub(super) fn import(im: &mut Importer, at: &At, source: &TensorSource) -> Result<bool, String> {
    let value = match at.node.op_type.as_str() {
        "Constant" => Value::Const(Rc::new(constant(at, source)?)),
        "Identity" => im.get(at, 0)?,
        "Shape" => shape(im, at)?,
        "Gather" => return gather(im, at).map(|_| true),
        "Unsqueeze" | "Squeeze" => return reshapes::squeeze(im, at).map(|_| true),
        "Concat" => return join(im, at).map(|_| true),
        "ConstantOfShape" => constant_of_shape(im, at, source)?,
        "Expand" => expand(im, at)?,
        "Slice" => return slice(im, at).map(|_| true),
        "Cast" => cast(im, at)?,
        "Transpose" => return transpose(im, at).map(|_| true),
        "Reshape" => return reshapes::reshape(im, at).map(|_| true),
        "Flatten" => return reshapes::flatten(im, at).map(|_| true),
        _ => return Ok(false),
    };
    im.define(at, 0, value);
    Ok(true)
}

fn constant(at: &At, source: &TensorSource) -> Result<Const, String> {
    let floats = |values: Vec<f32>, shape: Vec<Dim>| {
        let data = ConstData::floats(values.into_iter().map(f64::from).collect(), DType::F32);
        Const::new(shape, data, Origin::Computed)
    };
    let ints = |values: Vec<i64>, shape: Vec<Dim>| {
        let data = ConstData::Int(values.into_iter().map(Sym::Int).collect());
        Const::new(shape, data, Origin::Computed)
    };
    if let Some(tensor) = at.tensor("value")? {
        return read_tensor(tensor, source, &at.attr_error("value", "the tensor"));
    }
    if let Some(v) = at.node.attribute.iter().find(|a| a.name == "value_float") {
        return Ok(floats(vec![v.f], vec![]));
    }
    if let Some(v) = at.floats("value_floats")? {
        let n = v.len();
        return Ok(floats(v, vec![Dim::Known(n)]));
    }
    if let Some(v) = at.node.attribute.iter().find(|a| a.name == "value_int") {
        return Ok(ints(vec![v.i], vec![]));
    }
    if let Some(v) = at.ints("value_ints")? {
        let n = v.len();
        return Ok(ints(v, vec![Dim::Known(n)]));
    }
    let names: Vec<&str> = at.attribute_names().collect();
    Err(at.error(format!(
        "holds {names:?}; dlbench reads `value`, `value_float(s)` and `value_int(s)` (not \
         strings or sparse tensors)"
    )))
}

/// The dims of a value, as symbolic integers.
pub(super) fn dims_of(value: &Value) -> Vec<Dim> {
    match value {
        Value::Runtime(info) => info.shape.clone(),
        Value::Const(c) => c.shape.clone(),
    }
}

fn sym(d: Dim) -> Sym {
    match d {
        Dim::Known(n) => Sym::Int(n as i64),
        Dim::Batch => Sym::Batch,
    }
}

fn int_vector(values: Vec<Sym>) -> Value {
    let shape = vec![Dim::Known(values.len())];
    Value::Const(Rc::new(Const::new(
        shape,
        ConstData::Int(values),
        Origin::Computed,
    )))
}

fn shape(im: &Importer, at: &At) -> Result<Value, String> {
    let dims = dims_of(&im.get(at, 0)?);
    let rank = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(at.int("start", 0)?);
    let end = clamp(at.int("end", rank)?);
    Ok(int_vector(
        dims[start..end.max(start)]
            .iter()
            .map(|&d| sym(d))
            .collect(),
    ))
}

/// An axis attribute or input checked against `rank`.
pub(super) fn axis(at: &At, what: &str, axis: i64, rank: usize) -> Result<usize, String> {
    normalize_axis(axis, rank)
        .ok_or_else(|| at.attr_error(what, format!("{axis} is out of range for rank {rank}")))
}

fn gather(im: &mut Importer, at: &At) -> Result<(), String> {
    let data = im.get(at, 0)?;
    let dims = dims_of(&data);
    let axis = axis(at, "axis", at.int("axis", 0)?, dims.len())?;
    let indices = im.constant(at, 1, "the indices")?;
    let index_shape = indices.dims()?;
    let size = dims[axis]
        .known()
        .ok_or_else(|| at.error("gathering along the batch"))?;
    let picked = indices
        .to_ints()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + size as i64 } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < size)
                .ok_or_else(|| at.error(format!("index {i} is out of range for dim {size}")))
        })
        .collect::<Result<Vec<usize>, String>>()?;
    match data {
        Value::Const(c) => {
            let mut shape = c.shape[..axis].to_vec();
            shape.extend(index_shape.iter().map(|&d| Dim::Known(d)));
            shape.extend_from_slice(&c.shape[axis + 1..]);
            im.check_folded(at, &shape)?;
            let out = c.gathered(axis, &picked, &index_shape)?;
            im.define(at, 0, Value::Const(Rc::new(out)));
            Ok(())
        }
        // Picking the one entry of a dim of size 1 (an LSTM's `Y_h[-1]` of one layer and
        // direction) is a reshape; anything else would need a gather the IR does not have.
        Value::Runtime(info) if size == 1 => {
            let mut target = dims[..axis].to_vec();
            target.extend(index_shape.iter().map(|&d| Dim::Known(d)));
            target.extend_from_slice(&dims[axis + 1..]);
            reshape_to(im, at, &info, &target)
        }
        Value::Runtime(info) if picked.len() == 1 && final_step(im, &info, axis, picked[0])? => {
            let mut target = dims[..axis].to_vec();
            target.extend(index_shape.iter().map(|&d| Dim::Known(d)));
            target.extend_from_slice(&dims[axis + 1..]);
            final_state_as(im, at, &info, &target)
        }
        Value::Runtime(_) => Err(at.error(format!(
            "gathering from a computed value along a dim of size {size} is not supported \
             (dlbench's IR has no gather); only a dim of size 1, or an LSTM's final step, can \
             be selected"
        ))),
    }
}

fn join(im: &mut Importer, at: &At) -> Result<(), String> {
    let parts = (0..at.node.input.len())
        .map(|i| im.get(at, i))
        .collect::<Result<Vec<Value>, String>>()?;
    let rank = parts.first().map(|p| dims_of(p).len()).unwrap_or(0);
    let axis = axis(at, "axis", at.int("axis", 0)?, rank)?;
    if parts.iter().all(|p| matches!(p, Value::Const(_))) {
        let consts: Vec<Rc<Const>> = parts
            .iter()
            .filter_map(|p| match p {
                Value::Const(c) => Some(c.clone()),
                Value::Runtime(_) => None,
            })
            .collect();
        let out = concat(&consts, axis).map_err(|e| at.error(e))?;
        im.define(at, 0, Value::Const(Rc::new(out)));
        return Ok(());
    }
    let names = (0..parts.len())
        .map(|i| im.runtime(at, i).map(|info| info.name))
        .collect::<Result<Vec<String>, String>>()?;
    im.emit_as_output(at, Op::Concat { axis }, names)?;
    Ok(())
}

fn constant_of_shape(im: &Importer, at: &At, source: &TensorSource) -> Result<Value, String> {
    let shape = im.constant(at, 0, "the shape")?.to_syms()?;
    let dims = shape
        .iter()
        .map(|s| match s {
            Sym::Int(n) => usize::try_from(*n)
                .map(Dim::Known)
                .map_err(|_| at.error(format!("negative dim {n}"))),
            Sym::Batch => Ok(Dim::Batch),
        })
        .collect::<Result<Vec<Dim>, String>>()?;
    let (value, dtype) = match at.tensor("value")? {
        Some(t) => {
            let c = read_tensor(t, source, &at.attr_error("value", "the tensor"))?;
            let value = c
                .scalar()
                .ok_or_else(|| at.attr_error("value", "not one element"))?;
            (value, c.float_dtype().unwrap_or(DType::I64))
        }
        None => (0.0, DType::F32),
    };
    Ok(Value::Const(Rc::new(Const::new(
        dims,
        ConstData::Fill { value, dtype },
        Origin::Computed,
    ))))
}

/// The dims a shape constant names (a symbolic entry is the batch).
fn dims_from(at: &At, shape: &Const) -> Result<Vec<Dim>, String> {
    shape
        .to_syms()?
        .iter()
        .map(|s| match *s {
            Sym::Int(n) if n >= 0 => Ok(Dim::Known(n as usize)),
            Sym::Int(n) => Err(at.error(format!("negative dim {n}"))),
            Sym::Batch => Ok(Dim::Batch),
        })
        .collect()
}

fn expand(im: &Importer, at: &At) -> Result<Value, String> {
    let input = im.get(at, 0)?;
    let target = dims_from(at, im.constant(at, 1, "the shape")?.as_ref())?;
    let shape = dims_of(&input);
    // `Expand` broadcasts both ways: a target dim of 1 keeps the input's.
    let out = broadcast(&shape, &target).ok_or_else(|| {
        at.error(format!(
            "{} does not broadcast to {}",
            format_shape(&shape),
            format_shape(&target)
        ))
    })?;
    match input {
        Value::Runtime(info) if out == info.shape => Ok(Value::Runtime(info)),
        Value::Runtime(info) => Err(at.error(format!(
            "expanding a computed value from {} to {} is not supported (dlbench's IR \
             broadcasts only inside element-wise ops)",
            format_shape(&info.shape),
            format_shape(&out)
        ))),
        Value::Const(c) => {
            let out = match c.scalar() {
                Some(value) => Const::new(
                    out,
                    ConstData::Fill {
                        value,
                        dtype: c.float_dtype().unwrap_or(DType::I64),
                    },
                    Origin::Computed,
                ),
                None => {
                    im.check_folded(at, &out)?;
                    c.broadcast_to(out).map_err(|e| at.error(e))?
                }
            };
            Ok(Value::Const(Rc::new(out)))
        }
    }
}

fn slice(im: &mut Importer, at: &At) -> Result<(), String> {
    let input = im.get(at, 0)?;
    let dims = dims_of(&input);
    let list = |i: usize, attr: &str| -> Result<Option<Vec<i64>>, String> {
        match at.opset < 10 {
            true => at.ints(attr),
            false => im
                .get_opt(at, i)?
                .map(|_| im.constant(at, i, attr)?.to_ints())
                .transpose(),
        }
    };
    let starts = list(1, "starts")?.ok_or_else(|| at.error("no starts"))?;
    let ends = list(2, "ends")?.ok_or_else(|| at.error("no ends"))?;
    let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = match at.opset < 10 {
        true => None,
        false => list(4, "steps")?,
    }
    .unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(at.error("starts, ends, axes and steps differ in length"));
    }
    let rank = dims.len();
    let mut begin = vec![0usize; rank];
    let mut step = vec![1i64; rank];
    let mut count: Vec<Option<usize>> = dims.iter().map(|d| d.known()).collect();
    for k in 0..starts.len() {
        let a = axis(at, "axes", axes[k], rank)?;
        if steps[k] == 0 {
            return Err(at.error("a step is 0"));
        }
        let full = starts[k] == 0 && steps[k] == 1 && ends[k] >= i64::from(i32::MAX);
        let Some(size) = dims[a].known() else {
            if full {
                continue;
            }
            return Err(at.error("slicing along the batch is not supported"));
        };
        if size == 0 {
            count[a] = Some(0);
            continue;
        }
        let size = size as i64;
        let (first, last) = (starts[k], ends[k]);
        let norm = |v: i64| if v < 0 { v + size } else { v };
        let (start, n) = if steps[k] > 0 {
            let (s, e) = (norm(first).clamp(0, size), norm(last).clamp(0, size));
            (s, (e - s + steps[k] - 1).div_euclid(steps[k]).max(0))
        } else {
            let (s, e) = (
                norm(first).clamp(0, size - 1),
                norm(last).clamp(-1, size - 1),
            );
            (s, (s - e + (-steps[k]) - 1).div_euclid(-steps[k]).max(0))
        };
        begin[a] = start as usize;
        step[a] = steps[k];
        count[a] = Some(n as usize);
    }
    let unchanged = (0..rank).all(|a| begin[a] == 0 && step[a] == 1 && count[a] == dims[a].known());
    let value = match input {
        Value::Runtime(info) if unchanged => Value::Runtime(info),
        Value::Runtime(info) => {
            // One step of an LSTM's output sequence along time: its final state if it is the
            // step the LSTM ends on (Keras' `return_sequences=False` is written so).
            let changed: Vec<usize> = (0..rank)
                .filter(|&a| !(begin[a] == 0 && step[a] == 1 && count[a] == dims[a].known()))
                .collect();
            if let ([axis], Some(Some(1))) = (&changed[..], changed.first().map(|&a| count[a])) {
                if final_step(im, &info, *axis, begin[*axis])? {
                    let mut target = info.shape.clone();
                    target[*axis] = Dim::Known(1);
                    return final_state_as(im, at, &info, &target);
                }
            }
            return Err(at.error(
                "slicing a computed value is not supported (dlbench's IR has no slice); only a \
                 slice that keeps everything, or an LSTM's final step, is",
            ));
        }
        Value::Const(c) => {
            let out = c.sliced(&begin, &step, &count).map_err(|e| at.error(e))?;
            Value::Const(Rc::new(out))
        }
    };
    im.define(at, 0, value);
    Ok(())
}

fn cast(im: &Importer, at: &At) -> Result<Value, String> {
    let to = at.int("to", 0)?;
    let half = matches!(
        DataType::try_from(to as i32),
        Ok(DataType::Float16 | DataType::Bfloat16)
    );
    let target = match DataType::try_from(to as i32) {
        Ok(DataType::Float | DataType::Float16 | DataType::Bfloat16) => Some(DType::F32),
        Ok(DataType::Double) => Some(DType::F64),
        Ok(
            DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Uint32
            | DataType::Uint64
            | DataType::Bool,
        ) => None,
        _ => return Err(at.attr_error("to", format!("type {to} is not supported"))),
    };
    match (im.get(at, 0)?, target) {
        // Rounding to half precision changes the numbers: not a no-op the IR may drop.
        (Value::Runtime(info), Some(dtype)) if info.dtype == dtype && !half => {
            Ok(Value::Runtime(info))
        }
        (Value::Runtime(info), _) => Err(at.error(format!(
            "casting a computed {} value is not supported (dlbench's IR has no cast)",
            info.dtype
        ))),
        (Value::Const(c), target) => {
            let data = match (&c.data, target) {
                (ConstData::Fill { value, .. }, Some(dtype)) => ConstData::Fill {
                    value: *value,
                    dtype,
                },
                (ConstData::Fill { value, .. }, None) => ConstData::Fill {
                    value: value.trunc(),
                    dtype: DType::I64,
                },
                (_, Some(dtype)) => ConstData::floats(c.to_f64().map_err(|e| at.error(e))?, dtype),
                (ConstData::Int(v), None) => ConstData::Int(v.clone()),
                (ConstData::Float { values, .. }, None) => {
                    ConstData::Int(values.iter().map(|v| Sym::Int(v.trunc() as i64)).collect())
                }
            };
            Ok(Value::Const(Rc::new(Const::new(
                c.shape.clone(),
                data,
                Origin::Computed,
            ))))
        }
    }
}

fn transpose(im: &mut Importer, at: &At) -> Result<(), String> {
    let input = im.get(at, 0)?;
    let rank = dims_of(&input).len();
    let perm = match at.ints("perm")? {
        Some(perm) => perm
            .iter()
            .map(|&p| axis(at, "perm", p, rank))
            .collect::<Result<Vec<usize>, String>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(at.attr_error(
            "perm",
            format!("{perm:?} is not a permutation of 0..{rank}"),
        ));
    }
    match input {
        Value::Const(c) => {
            let out = c.transposed(&perm).map_err(|e| at.error(e))?;
            im.define(at, 0, Value::Const(Rc::new(out)));
        }
        Value::Runtime(info) => {
            let out = im.output_name(at, 0);
            let out = views::transpose(im, at, &info, &perm, out)?;
            im.define(at, 0, Value::Runtime(out));
        }
    }
    Ok(())
}
