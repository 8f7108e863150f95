//! Element-wise ONNX ops: `Relu`, `Sigmoid`, `Tanh`, `Exp`, `Neg`, `Softmax`, `LogSoftmax`,
//! and `Add`, `Sub`, `Mul`, `Div`. A scalar constant factor becomes the IR's `Scale`; a bias
//! added after a `MatMul` by a weight joins that `Dense`; other constant operands become
//! parameters; two constants are folded.

use std::rc::Rc;

use dlbench_core::init::Init;
use dlbench_core::ir::format_shape;
use dlbench_core::ir::shape::{broadcast, normalize_axis};
use dlbench_core::{BinaryOp, DType, Op, UnaryOp, ValueInfo};

use super::attrs::At;
use super::value::{Const, ConstData, Origin, Sym, Value};
use super::Importer;

/// Imports the node if it is one of this module's ops; `Ok(false)` if not.
pub(super) fn import(im: &mut Importer, at: &At) -> Result<bool, String> {
    let unary = match at.node.op_type.as_str() {
        "Relu" => UnaryOp::Relu,
        "Sigmoid" => UnaryOp::Sigmoid,
        "Tanh" => UnaryOp::Tanh,
        "Exp" => UnaryOp::Exp,
        "Neg" => UnaryOp::Scale { factor: -1.0 },
        "Softmax" | "LogSoftmax" => return softmax(im, at).map(|_| true),
        "Add" | "Sub" | "Mul" | "Div" => return binary(im, at).map(|_| true),
        _ => return Ok(false),
    };
    let x = im.runtime(at, 0)?;
    im.emit_as_output(at, Op::Unary(unary), vec![x.name])?;
    Ok(true)
}

/// Before opset 13 both ops flatten the input to 2-D at `axis` (default 1) and normalise each
/// row; that equals the IR's op only when `axis` is the last dim.
fn softmax(im: &mut Importer, at: &At) -> Result<(), String> {
    let x = im.runtime(at, 0)?;
    let rank = x.shape.len();
    let default = if at.opset < 13 { 1 } else { -1 };
    let axis = at.int("axis", default)?;
    let normal = normalize_axis(axis, rank)
        .ok_or_else(|| at.attr_error("axis", format!("{axis} is out of range for rank {rank}")))?;
    if at.opset < 13 && normal + 1 != rank {
        return Err(at.attr_error(
            "axis",
            format!(
                "{axis} before opset 13 normalises over every dim from {axis} on, which dlbench's \
                 IR expresses only for the last dim (rank {rank})"
            ),
        ));
    }
    let op = match at.node.op_type.as_str() {
        "Softmax" => Op::Softmax {
            axis: normal as i64,
        },
        _ => Op::LogSoftmax {
            axis: normal as i64,
        },
    };
    im.emit_as_output(at, op, vec![x.name])?;
    Ok(())
}

fn binary(im: &mut Importer, at: &At) -> Result<(), String> {
    let (a, b) = (im.get(at, 0)?, im.get(at, 1)?);
    let op = at.node.op_type.as_str();
    match (a, b) {
        (Value::Const(a), Value::Const(b)) => {
            let out = fold(im, at, &a, &b)?;
            im.define(at, 0, Value::Const(Rc::new(out)));
            Ok(())
        }
        (Value::Runtime(x), Value::Const(c)) => with_constant(im, at, x, &c, false),
        (Value::Const(c), Value::Runtime(x)) => with_constant(im, at, x, &c, true),
        (Value::Runtime(a), Value::Runtime(b)) => {
            let op = ir_binary(op).ok_or_else(|| {
                at.error(
                    "dividing by a computed value is not supported (dlbench's IR has no \
                     division)",
                )
            })?;
            im.emit_as_output(at, Op::Binary(op), vec![a.name, b.name])?;
            Ok(())
        }
    }
}

/// `x op c` (or `c op x` when `const_first`).
fn with_constant(
    im: &mut Importer,
    at: &At,
    x: ValueInfo,
    c: &Const,
    const_first: bool,
) -> Result<(), String> {
    let op = at.node.op_type.as_str();
    let scalar = c.scalar().filter(|_| c.shape.len() <= x.shape.len());
    let factor = match (op, scalar) {
        ("Mul", Some(s)) => Some(s),
        ("Div", Some(s)) if !const_first && s != 0.0 => Some(1.0 / s),
        _ => None,
    };
    if let Some(factor) = factor {
        im.emit_as_output(at, Op::Unary(UnaryOp::Scale { factor }), vec![x.name])?;
        return Ok(());
    }
    if op == "Add" && fold_bias(im, at, &x, c)? {
        return Ok(());
    }
    let op = ir_binary(op).ok_or_else(|| {
        at.error(
            "dividing by a constant tensor (not a scalar) is not supported (dlbench's IR has no \
             division)",
        )
    })?;
    let hint = format!("{}.constant", at.name);
    let param = im.const_param(c, &hint, Init::Zeros)?;
    let inputs = match const_first {
        true => vec![param, x.name],
        false => vec![x.name, param],
    };
    im.emit_as_output(at, Op::Binary(op), inputs)?;
    Ok(())
}

/// `Add(Dense(x, W), b)`, written by exporters as `MatMul` then `Add`: the bias joins the
/// `Dense` when nothing else reads the `MatMul`'s result and `b` is one value per output.
fn fold_bias(im: &mut Importer, at: &At, x: &ValueInfo, c: &Const) -> Result<bool, String> {
    let Some(&node) = im.biasless_dense.get(&x.name) else {
        return Ok(false);
    };
    let out_features = x.shape.last().and_then(|d| d.known());
    let dims = c.dims()?;
    let per_output = match dims.split_last() {
        Some((&n, rest)) => Some(n) == out_features && rest.iter().all(|&d| d == 1),
        None => false,
    };
    if !per_output || dims.len() > x.shape.len() || im.uses.get(&x.name) != Some(&1) {
        return Ok(false);
    }
    if !im.make_dense(node) {
        return Ok(false);
    }
    let n = out_features.unwrap_or(0);
    let dtype = c.float_dtype().unwrap_or(DType::F32);
    let hint = format!("{}.bias", im.ir_node_name(node));
    // PyTorch's Linear starts its bias like its weight, from the fan-in.
    let init = Init::fan_in(im.dense_fan_in(node));
    let bias = im.param(&c.origin, &hint, vec![n], c.to_f64()?, dtype, init)?;
    let out = im.output_name(at, 0);
    im.ir_node_mut(node).inputs.push(bias);
    im.rename_output(node, &x.name, &out);
    // The node is the `Add`'s result now, and takes its name (dlbench's export names the
    // `Add` after the Dense it writes).
    im.rename_node(node, &at.name);
    im.biasless_dense.remove(&x.name);
    let info = ValueInfo::new(out, x.dtype, x.shape.clone());
    im.define(at, 0, Value::Runtime(info));
    Ok(true)
}

/// Two constants combined (shape arithmetic: a symbolic batch survives `+ 0`, `* 1`, `/ 1`).
fn fold(im: &Importer, at: &At, a: &Const, b: &Const) -> Result<Const, String> {
    let shape = broadcast(&a.shape, &b.shape).ok_or_else(|| {
        at.error(format!(
            "{} and {} do not broadcast",
            format_shape(&a.shape),
            format_shape(&b.shape)
        ))
    })?;
    im.check_folded(at, &shape)?;
    let (a, b) = (
        a.broadcast_to(shape.clone()).map_err(|e| at.error(e))?,
        b.broadcast_to(shape.clone()).map_err(|e| at.error(e))?,
    );
    let op = at.node.op_type.as_str();
    if let (ConstData::Int(x), ConstData::Int(y)) = (&a.data, &b.data) {
        let values = x
            .iter()
            .zip(y)
            .map(|(&x, &y)| int_op(op, x, y))
            .collect::<Option<Vec<Sym>>>()
            .ok_or_else(|| at.error("arithmetic on the batch size that dlbench cannot follow"))?;
        return Ok(Const::new(shape, ConstData::Int(values), Origin::Computed));
    }
    let dtype = a.float_dtype().or(b.float_dtype()).unwrap_or(DType::F32);
    let (x, y) = (
        a.to_f64().map_err(|e| at.error(e))?,
        b.to_f64().map_err(|e| at.error(e))?,
    );
    let values = x
        .iter()
        .zip(&y)
        .map(|(&x, &y)| match op {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            _ => x / y,
        })
        .collect();
    Ok(Const::new(
        shape,
        ConstData::floats(values, dtype),
        Origin::Computed,
    ))
}

fn int_op(op: &str, x: Sym, y: Sym) -> Option<Sym> {
    Some(match (op, x, y) {
        ("Add", Sym::Int(x), Sym::Int(y)) => Sym::Int(x.checked_add(y)?),
        ("Sub", Sym::Int(x), Sym::Int(y)) => Sym::Int(x.checked_sub(y)?),
        ("Mul", Sym::Int(x), Sym::Int(y)) => Sym::Int(x.checked_mul(y)?),
        ("Div", Sym::Int(x), Sym::Int(y)) if y != 0 => Sym::Int(x.div_euclid(y)),
        ("Add" | "Sub", Sym::Batch, Sym::Int(0)) | ("Add", Sym::Int(0), Sym::Batch) => Sym::Batch,
        ("Mul" | "Div", Sym::Batch, Sym::Int(1)) | ("Mul", Sym::Int(1), Sym::Batch) => Sym::Batch,
        _ => return None,
    })
}

/// The IR's element-wise op for an ONNX one; `None` for `Div`, which the IR lacks.
fn ir_binary(op: &str) -> Option<BinaryOp> {
    match op {
        "Add" => Some(BinaryOp::Add),
        "Sub" => Some(BinaryOp::Sub),
        "Mul" => Some(BinaryOp::Mul),
        _ => None,
    }
}
