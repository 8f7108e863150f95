//! The ONNX ops that give a computed value another shape, the same elements in the same
//! order: `Reshape` (with `0`, `-1` and a symbolic batch), `Flatten`, `Squeeze` and
//! `Unsqueeze`, as the IR's `Reshape` or `Flatten`, folded on constants; and the one slice of
//! a computed value the IR can express, an LSTM's final step (its `Y_h`).

use std::rc::Rc;

use dlbench_core::ir::format_shape;
use dlbench_core::{Dim, Op, ValueInfo};

use super::attrs::At;
use super::shapes::{axis, dims_of};
use super::value::{known, Sym, Value};
use super::{views, Importer};

/// Defines output 0 as an IR `Reshape` of `input` to `target`, or as `input` itself when the
/// shape does not change.
pub(super) fn reshape_to(
    im: &mut Importer,
    at: &At,
    input: &ValueInfo,
    target: &[Dim],
) -> Result<(), String> {
    if input.shape == target {
        im.define(at, 0, Value::Runtime(input.clone()));
        return Ok(());
    }
    let sequence = im
        .sequences
        .get(&input.name)
        .and_then(|s| s.reshaped(&input.shape, target));
    let out = im.output_name(at, 0);
    let out = views::reshape(im, at, input, target, out)?;
    im.define(at, 0, Value::Runtime(out.clone()));
    if let Some(sequence) = sequence {
        im.sequences.entry(out.name).or_insert(sequence);
    }
    Ok(())
}

/// `Squeeze` and `Unsqueeze`: axes from the attribute before opset 13, the input after.
pub(super) fn squeeze(im: &mut Importer, at: &At) -> Result<(), String> {
    let data = im.get(at, 0)?;
    let dims = dims_of(&data);
    let axes = match at.opset < 13 {
        true => at.ints("axes")?,
        false => im
            .get_opt(at, 1)?
            .map(|_| im.constant(at, 1, "the axes")?.to_ints())
            .transpose()?,
    };
    let target = if at.node.op_type == "Unsqueeze" {
        let axes = axes.ok_or_else(|| at.error("no axes"))?;
        let rank = dims.len() + axes.len();
        let mut axes = axes
            .iter()
            .map(|&a| axis(at, "axes", a, rank))
            .collect::<Result<Vec<usize>, String>>()?;
        axes.sort_unstable();
        let mut rest = dims.iter();
        (0..rank)
            .map(|i| match axes.binary_search(&i) {
                Ok(_) => Dim::Known(1),
                Err(_) => rest.next().copied().unwrap_or(Dim::Known(1)),
            })
            .collect()
    } else {
        let axes = match axes {
            Some(axes) => axes
                .iter()
                .map(|&a| axis(at, "axes", a, dims.len()))
                .collect::<Result<Vec<usize>, String>>()?,
            None => (0..dims.len())
                .filter(|&i| dims[i] == Dim::Known(1))
                .collect(),
        };
        if let Some(&bad) = axes.iter().find(|&&a| dims[a] != Dim::Known(1)) {
            return Err(at.error(format!("axis {bad} has size {}, not 1", dims[bad])));
        }
        (0..dims.len())
            .filter(|i| !axes.contains(i))
            .map(|i| dims[i])
            .collect::<Vec<Dim>>()
    };
    match data {
        Value::Const(c) => {
            im.define(at, 0, Value::Const(Rc::new(c.reshaped(target))));
            Ok(())
        }
        Value::Runtime(info) => reshape_to(im, at, &info, &target),
    }
}

/// Whether step `index` along `axis` of `value` is the final state of the one-direction LSTM
/// whose output sequence `value` is.
pub(super) fn final_step(
    im: &Importer,
    value: &ValueInfo,
    axis: usize,
    index: usize,
) -> Result<bool, String> {
    let Some(sequence) = im.sequences.get(&value.name) else {
        return Ok(false);
    };
    let steps = value.shape[axis].known().unwrap_or(0);
    let last = match sequence.final_step_last {
        true => steps.saturating_sub(1),
        false => 0,
    };
    Ok(axis == sequence.time_axis && index == last)
}

/// Defines output 0 as the final state (`Y_h`) of the LSTM whose sequence `value` is, shaped
/// `target`: with one direction and one step, the two hold the same numbers in the same order.
pub(super) fn final_state_as(
    im: &mut Importer,
    at: &At,
    value: &ValueInfo,
    target: &[Dim],
) -> Result<(), String> {
    let state = im.sequences[&value.name].final_state.clone();
    reshape_to(im, at, &state, target)
}

/// ONNX's `Reshape` target resolved against the input's dims: `0` copies (unless
/// `allowzero`), one `-1` takes what is left, a symbolic entry is the batch.
pub(super) fn reshape_target(at: &At, input: &[Dim], spec: &[Sym]) -> Result<Vec<Dim>, String> {
    let allowzero = at.int("allowzero", 0)? != 0;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, s) in spec.iter().enumerate() {
        out.push(match *s {
            Sym::Batch => Dim::Batch,
            Sym::Int(0) if !allowzero => *input.get(i).ok_or_else(|| {
                at.error(format!("0 at position {i} copies a dim the input lacks"))
            })?,
            Sym::Int(-1) if infer.is_none() => {
                infer = Some(i);
                Dim::Known(1)
            }
            Sym::Int(n) => usize::try_from(n)
                .map(Dim::Known)
                .map_err(|_| at.error(format!("{n} in the shape {spec:?}")))?,
        });
    }
    let Some(i) = infer else {
        return Ok(out);
    };
    // Checked: the dims are the file's word (a graph input may claim 2^62).
    let product = |dims: &[Dim]| -> Result<(usize, usize), String> {
        let batches = dims.iter().filter(|d| **d == Dim::Batch).count();
        let known = dims
            .iter()
            .filter_map(|d| d.known())
            .try_fold(1usize, |n, d| n.checked_mul(d))
            .ok_or_else(|| at.error(format!("{} has too many elements", format_shape(dims))))?;
        Ok((batches, known))
    };
    let ((in_batch, in_known), (out_batch, out_known)) = (product(input)?, product(&out)?);
    let fits = out_known > 0 && in_known % out_known == 0;
    out[i] = match (in_batch, out_batch) {
        (b, o) if b == o && fits => Dim::Known(in_known / out_known),
        (1, 0) if fits && in_known == out_known => Dim::Batch,
        _ => {
            return Err(at.error(format!(
                "cannot infer the -1 of {spec:?} for an input of {input:?} (dlbench's IR \
                 keeps the batch a dim of its own)"
            )))
        }
    };
    Ok(out)
}

pub(super) fn reshape(im: &mut Importer, at: &At) -> Result<(), String> {
    let input = im.get(at, 0)?;
    let dims = dims_of(&input);
    let spec = im.constant(at, 1, "the shape")?.to_syms()?;
    let target = reshape_target(at, &dims, &spec)?;
    match input {
        Value::Const(c) => {
            let (from, to) = (known(&c.shape), known(&target));
            if from.is_some() != to.is_some()
                || from.map(|f| f.iter().product::<usize>()) != to.map(|t| t.iter().product())
            {
                return Err(at.error(format!(
                    "{} cannot be reshaped to {}",
                    format_shape(&c.shape),
                    format_shape(&target)
                )));
            }
            im.define(at, 0, Value::Const(Rc::new(c.reshaped(target))));
            Ok(())
        }
        Value::Runtime(info) => {
            // The IR's Reshape reads a spec as ONNX does (0 copies, -1 infers): a spec of
            // known numbers is kept as written, and `[0, .., 0, -1]` is the IR's Flatten (as
            // dlbench's export writes it). Other forms are resolved against the input.
            let written: Option<Vec<i64>> = spec.iter().map(|s| s.int()).collect();
            let reshaped = matches!(im.producer(&info.name), Some((Op::Reshape { .. }, _)));
            match written {
                Some(w) if at.int("allowzero", 0)? == 0 && !reshaped && info.shape != target => {
                    let flatten = w.len() >= 2
                        && w[w.len() - 1] == -1
                        && w[..w.len() - 1].iter().all(|&d| d == 0);
                    let op = match flatten {
                        true => Op::Flatten { axis: w.len() - 1 },
                        false => Op::Reshape { shape: w },
                    };
                    im.emit_as_output(at, op, vec![info.name])?;
                    Ok(())
                }
                _ => reshape_to(im, at, &info, &target),
            }
        }
    }
}

pub(super) fn flatten(im: &mut Importer, at: &At) -> Result<(), String> {
    let info = im.runtime(at, 0)?;
    let rank = info.shape.len();
    // Flatten's axis may be the rank itself (everything in the second dim), so it is
    // normalised against the rank, not rank + 1.
    let given = at.int("axis", 1)?;
    let axis = usize::try_from(if given < 0 {
        given + rank as i64
    } else {
        given
    })
    .ok()
    .filter(|&a| a <= rank)
    .ok_or_else(|| at.attr_error("axis", format!("{given} is out of range for rank {rank}")))?;
    if axis == 1 && rank >= 2 {
        im.emit_as_output(at, Op::Flatten { axis: 1 }, vec![info.name])?;
        return Ok(());
    }
    // ONNX always returns rank 2: the dims before `axis` collapse too.
    let collapse = |dims: &[Dim]| match dims.iter().all(|d| d.known().is_some()) {
        true => Ok(Dim::Known(dims.iter().filter_map(|d| d.known()).product())),
        false if dims.len() == 1 => Ok(Dim::Batch),
        false => Err(at.error("flattening the batch into other dims")),
    };
    let target = vec![
        collapse(&info.shape[..axis])?,
        collapse(&info.shape[axis..])?,
    ];
    reshape_to(im, at, &info, &target)
}
