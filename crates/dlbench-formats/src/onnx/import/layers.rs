//! The ONNX layers with weights or windows: `Gemm` and `MatMul` (to `Dense` when the weight
//! is known, else `MatMul`), `Conv`, `MaxPool`, `AveragePool`, `GlobalAveragePool`, and
//! `Dropout`.

use dlbench_core::init::Init;
use dlbench_core::ir::format_shape;
use dlbench_core::ir::{Conv2d, InputRole, Pool2d};
use dlbench_core::{DType, Dim, Op, Tensor, ValueInfo};

use super::attrs::At;
use super::value::{Const, Origin, Value};
use super::Importer;

/// Imports the node if it is one of this module's ops; `Ok(false)` if not.
pub(super) fn import(im: &mut Importer, at: &At) -> Result<bool, String> {
    match at.node.op_type.as_str() {
        "Gemm" => gemm(im, at)?,
        "MatMul" => matmul(im, at)?,
        "Conv" => conv(im, at)?,
        "MaxPool" | "AveragePool" => pool(im, at)?,
        "GlobalAveragePool" => global_average_pool(im, at)?,
        "Dropout" => dropout(im, at)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A 2-D weight `[rows, cols]` and its numbers, transposed to `[cols, rows]` if asked.
fn matrix(at: &At, c: &Const, transpose: bool) -> Result<(Vec<usize>, Vec<f64>), String> {
    let dims = c.dims().map_err(|e| at.error(e))?;
    let [rows, cols] = dims[..] else {
        return Err(at.error(format!("the weight is {dims:?}, expected a matrix")));
    };
    let values = c.to_f64().map_err(|e| at.error(e))?;
    if !transpose {
        return Ok((dims, values));
    }
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for k in 0..cols {
            out[k * rows + r] = values[r * cols + k];
        }
    }
    Ok((vec![cols, rows], out))
}

/// Adds a `Dense` of `x` by the known weight `w` (in ONNX's `[in, out]` unless
/// `w_is_out_in`), scaled by `alpha`; returns the node's index.
fn dense(
    im: &mut Importer,
    at: &At,
    x: &ValueInfo,
    w: &Const,
    w_is_out_in: bool,
    alpha: f64,
    bias: Option<String>,
) -> Result<ValueInfo, String> {
    // The IR holds `[out, in]`. A weight written as `Transpose(W)` (dlbench's export of a
    // Dense on a rank-3 input) comes back as `W` exactly, under `W`'s name.
    let (shape, mut values) = matrix(at, w, !w_is_out_in)?;
    if alpha != 1.0 {
        values.iter_mut().for_each(|v| *v *= alpha);
    }
    let fan_in = shape[1];
    let dtype = w.float_dtype().unwrap_or(DType::F32);
    let origin = match alpha == 1.0 {
        true => w.origin.clone(),
        false => Origin::Computed,
    };
    let hint = format!("{}.weight", at.name);
    let weight = im.param(&origin, &hint, shape, values, dtype, Init::fan_in(fan_in))?;
    let mut inputs = vec![x.name.clone(), weight];
    let has_bias = bias.is_some();
    inputs.extend(bias);
    let index = im.ir_node_count();
    let info = im.emit_as_output(at, Op::Dense, inputs)?;
    if !has_bias {
        im.biasless_dense.insert(info.name.clone(), index);
    }
    Ok(info)
}

fn gemm(im: &mut Importer, at: &At) -> Result<(), String> {
    let a = im.runtime(at, 0)?;
    if at.int("transA", 0)? != 0 {
        return Err(at.attr_error("transA", "1 is not supported (the input must be [N, in])"));
    }
    if a.shape.len() != 2 {
        return Err(at.error(format!(
            "input A is {}, expected rank 2",
            format_shape(&a.shape)
        )));
    }
    let trans_b = at.int("transB", 0)? != 0;
    let alpha = f64::from(at.float("alpha", 1.0)?);
    let beta = f64::from(at.float("beta", 1.0)?);
    let b = match im.get(at, 1)? {
        Value::Const(b) => b,
        Value::Runtime(_) => {
            return Err(
                at.error("input B depends on the data; dlbench imports Gemm with a known weight")
            )
        }
    };
    let b_dims = b.dims().map_err(|e| at.error(e))?;
    let [rows, cols] = b_dims[..] else {
        return Err(at.error(format!("input B is {b_dims:?}, expected a matrix")));
    };
    let bias = match im.get_opt(at, 2)? {
        None => None,
        Some(Value::Const(c)) => {
            let n = if trans_b { rows } else { cols };
            let values = c.to_f64().map_err(|e| at.error(e))?;
            let values: Vec<f64> = match c.dims()?.iter().product::<usize>() {
                1 => vec![values[0]; n],
                k if k == n && c.dims()?.iter().rev().skip(1).all(|&d| d == 1) => values,
                _ => {
                    return Err(at.error(format!(
                        "input C is {}; dlbench imports a bias of one value per output ({n})",
                        format_shape(&c.shape)
                    )))
                }
            };
            let values: Vec<f64> = values.into_iter().map(|v| v * beta).collect();
            let origin = match beta == 1.0 && c.dims()? == [n] {
                true => c.origin.clone(),
                false => Origin::Computed,
            };
            let dtype = c.float_dtype().unwrap_or(DType::F32);
            let hint = format!("{}.bias", at.name);
            let fan_in = if trans_b { cols } else { rows };
            Some(im.param(&origin, &hint, vec![n], values, dtype, Init::fan_in(fan_in))?)
        }
        Some(Value::Runtime(_)) => {
            return Err(at.error("input C depends on the data; dlbench imports a known bias"))
        }
    };
    dense(im, at, &a, &b, trans_b, alpha, bias)?;
    Ok(())
}

fn matmul(im: &mut Importer, at: &At) -> Result<(), String> {
    let a = im.runtime(at, 0)?;
    match im.get(at, 1)? {
        // `MatMul(x, Transpose(W))`: dlbench's export of a Dense on a rank-3 input.
        Value::Const(w) if w.shape.len() == 2 && matches!(w.origin, Origin::Transposed(_)) => {
            dense(im, at, &a, &w, false, 1.0, None)?;
        }
        // By a weight as it is: the IR's MatMul, which becomes a Dense if a bias is added
        // next (exporters write a Dense so), see `elementwise::fold_bias`.
        Value::Const(w) if w.shape.len() == 2 => {
            let fan_in = w.dims().map_err(|e| at.error(e))?[0];
            let hint = format!("{}.weight", at.name);
            let weight = im.const_param(&w, &hint, Init::fan_in(fan_in))?;
            let index = im.ir_node_count();
            let info = im.emit_as_output(at, Op::MatMul, vec![a.name, weight])?;
            im.biasless_dense.insert(info.name, index);
        }
        Value::Const(w) => {
            return Err(at.error(format!(
                "a known right operand of {} is not supported; dlbench imports a weight matrix",
                format_shape(&w.shape)
            )))
        }
        Value::Runtime(b) => {
            im.emit_as_output(at, Op::MatMul, vec![a.name, b.name])?;
        }
    }
    Ok(())
}

/// ONNX `pads` `[h_begin, w_begin, h_end, w_end]` as the IR's symmetric `[h, w]`, with
/// `auto_pad` resolved against the input's spatial dims.
fn padding(
    at: &At,
    input: &ValueInfo,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[usize; 2], String> {
    let auto = at.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let pads: Vec<i64> = match auto.as_str() {
        "NOTSET" => at.ints("pads")?.unwrap_or_else(|| vec![0; 4]),
        "VALID" => vec![0; 4],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut begin = Vec::new();
            let mut end = Vec::new();
            for a in 0..2 {
                let size = input.shape[2 + a]
                    .known()
                    .ok_or_else(|| at.error("a spatial dim is the batch"))?
                    as i64;
                let (k, s, d) = (kernel[a] as i64, stride[a] as i64, dilation[a] as i64);
                let out = (size + s - 1) / s;
                let total = ((out - 1) * s + (k - 1) * d + 1 - size).max(0);
                let small = total / 2;
                let (b, e) = match auto.as_str() {
                    "SAME_UPPER" => (small, total - small),
                    _ => (total - small, small),
                };
                begin.push(b);
                end.push(e);
            }
            begin.into_iter().chain(end).collect()
        }
        other => return Err(at.attr_error("auto_pad", format!("`{other}` is not an ONNX value"))),
    };
    match pads[..] {
        [h0, w0, h1, w1] if h0 == h1 && w0 == w1 && h0 >= 0 && w0 >= 0 => {
            Ok([h0 as usize, w0 as usize])
        }
        _ => Err(at.attr_error(
            "pads",
            format!(
                "{pads:?} (auto_pad {auto}) is not supported: dlbench's IR pads both sides of a \
                 dim alike, for 2-D windows"
            ),
        )),
    }
}

/// A 2-D attribute (`strides`, `dilations`, `kernel_shape`), default `[default; 2]`.
fn pair(at: &At, name: &str, default: Option<usize>) -> Result<[usize; 2], String> {
    match (at.ints(name)?, default) {
        (Some(v), _) => match v[..] {
            [h, w] if h > 0 && w > 0 => Ok([h as usize, w as usize]),
            _ => Err(at.attr_error(name, format!("{v:?}: dlbench imports 2-D windows"))),
        },
        (None, Some(d)) => Ok([d, d]),
        (None, None) => Err(at.error(format!("attribute `{name}` is missing"))),
    }
}

/// The NCHW input of a 2-D window op.
fn image(im: &Importer, at: &At) -> Result<ValueInfo, String> {
    let x = im.runtime(at, 0)?;
    match x.shape.len() {
        4 => Ok(x),
        rank => Err(at.error(format!(
            "the input has rank {rank}; dlbench imports 2-D convolutions and pools on NCHW"
        ))),
    }
}

fn conv(im: &mut Importer, at: &At) -> Result<(), String> {
    let x = image(im, at)?;
    let w = im.constant(at, 1, "the weight")?;
    let dims = w.dims().map_err(|e| at.error(e))?;
    let [_, per_group, kh, kw] = dims[..] else {
        return Err(at.error(format!(
            "the weight is {dims:?}, expected [O, C/group, kh, kw]"
        )));
    };
    let kernel = pair(at, "kernel_shape", None).unwrap_or([kh, kw]);
    if kernel != [kh, kw] {
        return Err(at.attr_error(
            "kernel_shape",
            format!("{kernel:?} differs from the weight's"),
        ));
    }
    let stride = pair(at, "strides", Some(1))?;
    let dilation = pair(at, "dilations", Some(1))?;
    let groups = usize::try_from(at.int("group", 1)?)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| at.attr_error("group", "must be positive"))?;
    let padding = padding(at, &x, kernel, stride, dilation)?;
    let fan_in = per_group * kh * kw;
    let weight = im.const_param(&w, &format!("{}.weight", at.name), Init::fan_in(fan_in))?;
    let mut inputs = vec![x.name, weight];
    if im.get_opt(at, 2)?.is_some() {
        let b = im.constant(at, 2, "the bias")?;
        inputs.push(im.const_param(&b, &format!("{}.bias", at.name), Init::fan_in(fan_in))?);
    }
    let op = Op::Conv2d(Conv2d {
        stride,
        padding,
        dilation,
        groups,
    });
    im.emit_as_output(at, op, inputs)?;
    Ok(())
}

fn pool(im: &mut Importer, at: &At) -> Result<(), String> {
    let x = image(im, at)?;
    let kernel = pair(at, "kernel_shape", None)?;
    let stride = pair(at, "strides", Some(1))?;
    if pair(at, "dilations", Some(1))? != [1, 1] {
        return Err(at.attr_error("dilations", "dlbench's IR pools without dilation"));
    }
    at.require_int("storage_order", 0, "only row-major indices")?;
    if at.output(1).is_some_and(|o| im.uses.contains_key(o)) {
        return Err(at.error("output 1 (the indices) is read; dlbench's IR does not return them"));
    }
    let padding = padding(at, &x, kernel, stride, [1, 1])?;
    if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
        return Err(at.attr_error("pads", "more than half the window"));
    }
    let average = at.node.op_type == "AveragePool";
    let pool = Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode: at.int("ceil_mode", 0)? != 0,
        // ONNX's default leaves the padding out of the divisor (PyTorch's counts it). Max
        // pooling has no divisor: it keeps the IR's default, as `Pool2d::square` sets it.
        count_include_pad: !average || at.int("count_include_pad", 0)? != 0,
    };
    let op = match average {
        true => Op::AvgPool2d(pool),
        false => Op::MaxPool2d(pool),
    };
    im.emit_as_output(at, op, vec![x.name])?;
    Ok(())
}

fn global_average_pool(im: &mut Importer, at: &At) -> Result<(), String> {
    let x = image(im, at)?;
    let (Some(h), Some(w)) = (x.shape[2].known(), x.shape[3].known()) else {
        return Err(at.error("a spatial dim is the batch"));
    };
    let pool = Pool2d {
        kernel: [h, w],
        stride: [h, w],
        padding: [0, 0],
        ceil_mode: false,
        count_include_pad: true,
    };
    im.emit_as_output(at, Op::AvgPool2d(pool), vec![x.name])?;
    Ok(())
}

/// ONNX's `Dropout` as the IR's, with its keep-mask a new graph input `<node>.mask` that the
/// harness feeds (all ones at inference), so that training drops as the exporter's model did.
fn dropout(im: &mut Importer, at: &At) -> Result<(), String> {
    let x = im.runtime(at, 0)?;
    let ratio = match at.opset < 12 {
        true => f64::from(at.float("ratio", 0.5)?),
        false => match im.get_opt(at, 1)? {
            Some(_) => im
                .constant(at, 1, "the ratio")?
                .scalar()
                .ok_or_else(|| at.error("the ratio is not one number"))?,
            None => 0.5,
        },
    };
    if at.opset >= 12 && im.get_opt(at, 2)?.is_some() {
        let training = im.constant(at, 2, "training_mode")?;
        if training.scalar() != Some(0.0) {
            return Err(at.error("training_mode is true; dlbench imports inference graphs"));
        }
    }
    if at.output(1).is_some_and(|o| im.uses.contains_key(o)) {
        return Err(at.error("output 1 (the mask) is read; dlbench's IR does not return it"));
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(at.error(format!("ratio {ratio} is outside [0, 1)")));
    }
    let mask = im.add_input(
        &format!("{}.mask", at.name),
        x.dtype,
        x.shape.clone(),
        InputRole::DropoutMask { p: ratio },
    );
    im.emit_as_output(at, Op::Dropout { p: ratio }, vec![x.name, mask])?;
    Ok(())
}

impl Importer {
    /// Makes the node at `index` a `Dense`: a `MatMul` by a parameter `[in, out]` that no
    /// other node reads becomes one, its parameter transposed to `[out, in]` in place. False
    /// if it cannot.
    pub(super) fn make_dense(&mut self, index: usize) -> bool {
        let node = &self.graph.nodes[index];
        // A predicate on two ops, not a lowering: other ops are simply not MatMuls.
        if matches!(node.op, Op::Dense) {
            return true;
        }
        if !matches!(node.op, Op::MatMul) {
            return false;
        }
        let Some(weight) = node.inputs.get(1).cloned() else {
            return false;
        };
        let shared = self
            .graph
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i != index && n.inputs.contains(&weight));
        let Some(tensor) = self.weights.get(&weight) else {
            return false;
        };
        let [rows, cols] = tensor.shape()[..] else {
            return false;
        };
        if shared {
            return false;
        }
        let values = tensor.to_f64_vec();
        let mut transposed = vec![0.0; values.len()];
        for r in 0..rows {
            for k in 0..cols {
                transposed[k * rows + r] = values[r * cols + k];
            }
        }
        let dtype = tensor.dtype();
        let Ok(t) = Tensor::f64(vec![cols, rows], transposed) else {
            return false;
        };
        self.weights.insert(weight.clone(), t.to_dtype(dtype));
        let shape = vec![Dim::Known(cols), Dim::Known(rows)];
        if let Some(info) = self.infos.get_mut(&weight) {
            info.shape.clone_from(&shape);
        }
        if let Some(param) = self
            .graph
            .params
            .iter_mut()
            .find(|p| p.value.name == weight)
        {
            param.value.shape = shape;
        }
        self.graph.nodes[index].op = Op::Dense;
        true
    }
    /// The input features of the `Dense` node at `index` (its weight is `[out, in]`).
    pub(super) fn dense_fan_in(&self, index: usize) -> usize {
        self.graph.nodes[index]
            .inputs
            .get(1)
            .and_then(|w| self.infos.get(w))
            .and_then(|w| w.shape.get(1))
            .and_then(|d| d.known())
            .unwrap_or(1)
    }
}
