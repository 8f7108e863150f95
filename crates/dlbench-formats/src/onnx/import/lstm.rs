//! ONNX's `LSTM` as the IR's: gates from ONNX's i, o, f, c to the IR's i, f, g, o, the stacked
//! bias `B = [Wb ‖ Rb]` split into `b_ih` and `b_hh`, one set of weights per direction, and
//! ONNX's outputs (`Y` `[T, D, N, H]`, or `[N, T, D, H]` with `layout = 1`; `Y_h`, `Y_c`
//! `[D, N, H]` or `[N, D, H]`) rebuilt from the IR's (`[.., D*H]` and `[D, N, H]`) by
//! `Reshape` and `Transpose` where they differ.

use dlbench_core::init::Init;
use dlbench_core::ir::format_shape;
use dlbench_core::ir::{Direction, Lstm};
use dlbench_core::{DType, Dim, Op, ValueInfo};

use super::attrs::At;
use super::value::{Origin, Value};
use super::{is_zeros, views, Importer};

/// A value that holds the output sequence of a one-direction LSTM (its `Y`, reshaped by unit
/// dims at most): the step along `time_axis` the LSTM ends on holds its final state.
#[derive(Debug, Clone)]
pub(super) struct Sequence {
    /// The LSTM's `Y_h` in the IR, `[1, N, H]`.
    pub final_state: ValueInfo,
    pub time_axis: usize,
    /// A forward LSTM ends on the last step, a reverse one on the first.
    pub final_step_last: bool,
}

impl Sequence {
    /// The same sequence after a reshape from `from` to `to` that only adds or drops dims of
    /// size 1 (a `Squeeze` of the direction axis), with its time axis where it moved to.
    pub fn reshaped(&self, from: &[Dim], to: &[Dim]) -> Option<Sequence> {
        let wide = |dims: &[Dim]| -> Vec<(usize, Dim)> {
            dims.iter()
                .copied()
                .enumerate()
                .filter(|(_, d)| *d != Dim::Known(1))
                .collect()
        };
        let (before, after) = (wide(from), wide(to));
        let same =
            before.len() == after.len() && before.iter().zip(&after).all(|((_, a), (_, b))| a == b);
        let k = before.iter().position(|(i, _)| *i == self.time_axis)?;
        same.then(|| Sequence {
            time_axis: after[k].0,
            ..self.clone()
        })
    }
}

/// Where each IR gate block (i, f, g, o) is in ONNX's order (i, o, f, c).
const FROM_ONNX: [usize; 4] = [0, 2, 3, 1];

/// Imports the node if it is an `LSTM`; `Ok(false)` if not.
pub(super) fn import(im: &mut Importer, at: &At) -> Result<bool, String> {
    if at.node.op_type != "LSTM" {
        return Ok(false);
    }
    let x = im.runtime(at, 0)?;
    let layout = at.int("layout", 0)?;
    if layout != 0 && layout != 1 {
        return Err(at.attr_error("layout", format!("{layout} is not 0 or 1")));
    }
    let direction = match at.string("direction")?.as_deref().unwrap_or("forward") {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        other => return Err(at.attr_error("direction", format!("`{other}` is not an ONNX value"))),
    };
    let d = match direction {
        Direction::Bidirectional => 2,
        Direction::Forward | Direction::Reverse => 1,
    };
    check_attributes(at, d)?;
    let w = im.constant(at, 1, "W")?;
    let r = im.constant(at, 2, "R")?;
    let (w_dims, r_dims) = (
        w.dims().map_err(|e| at.error(e))?,
        r.dims().map_err(|e| at.error(e))?,
    );
    let h = match at.int("hidden_size", 0)? {
        0 => r_dims.last().copied().unwrap_or(0),
        h => usize::try_from(h).map_err(|_| at.attr_error("hidden_size", "negative"))?,
    };
    let features = x.shape.last().and_then(|d| d.known()).unwrap_or(0);
    // Checked: the attribute is the file's word, not yet held against the weights.
    let (Some(rows), Some(stacked)) = (h.checked_mul(4), h.checked_mul(8)) else {
        return Err(at.attr_error("hidden_size", format!("{h} is too large")));
    };
    if x.shape.len() != 3 || w_dims != [d, rows, features] || r_dims != [d, rows, h] || h == 0 {
        return Err(at.error(format!(
            "X {}, W {w_dims:?}, R {r_dims:?} do not fit hidden_size {h} and {d} direction(s)",
            format_shape(&x.shape)
        )));
    }
    let b = match im.get_opt(at, 3)? {
        Some(_) => {
            let b = im.constant(at, 3, "B")?;
            if b.dims().map_err(|e| at.error(e))? != [d, stacked] {
                return Err(at.error(format!(
                    "B is {}, expected [{d}, {stacked}]",
                    format_shape(&b.shape),
                )));
            }
            b.to_f64().map_err(|e| at.error(e))?
        }
        None => vec![0.0; d * stacked],
    };
    for (i, what) in [
        (4, "sequence_lens"),
        (5, "initial_h"),
        (6, "initial_c"),
        (7, "P"),
    ] {
        if im.get_opt(at, i)?.is_some() {
            let known = im.constant(at, i, what)?;
            let full_length = i == 4
                && x.shape[layout as usize].known().is_some_and(|t| {
                    known
                        .to_ints()
                        .is_ok_and(|v| v.iter().all(|&l| l == t as i64))
                });
            // X is [T, N, I] (layout 0) or [N, T, I]: `sequence_lens` must all be T.
            if !(is_zeros(&known) && i != 4 || full_length) {
                return Err(at.error(format!(
                    "input {i} ({what}) is not supported unless {}",
                    match i {
                        4 => "every sequence is full length",
                        7 => "it is all zeros (dlbench's IR has no peephole connections)",
                        _ => "it is all zeros (dlbench's IR starts from a zero state)",
                    }
                )));
            }
        }
    }
    let (w, r) = (
        w.to_f64().map_err(|e| at.error(e))?,
        r.to_f64().map_err(|e| at.error(e))?,
    );
    let dtype = im.constant(at, 1, "W")?.float_dtype().unwrap_or(DType::F32);
    let init = Init::Uniform {
        bound: 1.0 / (h as f64).sqrt(),
    };
    let mut inputs = vec![x.name.clone()];
    for k in 0..d {
        let suffix = if k == 1 { "_reverse" } else { "" };
        let tensors = [
            (
                "w_ih",
                vec![rows, features],
                gates(&w[k * rows * features..][..rows * features], h),
            ),
            (
                "w_hh",
                vec![rows, h],
                gates(&r[k * rows * h..][..rows * h], h),
            ),
            ("b_ih", vec![rows], gates(&b[k * 2 * rows..][..rows], h)),
            (
                "b_hh",
                vec![rows],
                gates(&b[k * 2 * rows + rows..][..rows], h),
            ),
        ];
        for (name, shape, values) in tensors {
            let hint = format!("{}.{name}{suffix}", at.name);
            inputs.push(im.param(&Origin::Computed, &hint, shape, values, dtype, init)?);
        }
    }
    // A sequence-first LSTM of a transposed batch-first input is the IR's batch-first LSTM
    // (dlbench's export writes that one so).
    let transposed_from = match (layout, im.producer(&x.name)) {
        (0, Some((Op::Transpose { perm }, source))) if perm == [1, 0, 2] => Some(source),
        _ => None,
    };
    let batch_first = layout == 1 || transposed_from.is_some();
    if let Some(source) = transposed_from {
        inputs[0] = source;
    }
    let outputs = [
        im.fresh_value(&format!("{}/y", at.name)),
        match layout {
            0 => im.output_name(at, 1),
            _ => im.fresh_value(&format!("{}/y_h", at.name)),
        },
        match layout {
            0 => im.output_name(at, 2),
            _ => im.fresh_value(&format!("{}/y_c", at.name)),
        },
    ];
    let attrs = Lstm {
        hidden: h,
        direction,
        batch_first,
    };
    let infos = im.emit(at, Op::Lstm(attrs), inputs, outputs.to_vec())?;
    let [y, y_h, y_c] = [&infos[0], &infos[1], &infos[2]];
    if let Some(name) = at.output(0) {
        // The IR's [T, N, D*H] (batch-first [N, T, D*H]) split to [.., .., D, H], then
        // permuted to ONNX's [T, D, N, H] (layout 1: [N, T, D, H]).
        let mut split_dims = y.shape[..2].to_vec();
        split_dims.extend([Dim::Known(d), Dim::Known(h)]);
        let split = im.fresh_value(&format!("{}/y_split", at.name));
        let split = views::reshape(im, at, y, &split_dims, split)?;
        let perm: &[usize] = match (batch_first, layout) {
            (false, 0) => &[0, 2, 1, 3],
            (false, _) => &[1, 0, 2, 3],
            (true, 0) => &[1, 2, 0, 3],
            (true, _) => &[0, 1, 2, 3],
        };
        let value = views::transpose(im, at, &split, perm, name.to_string())?;
        if d == 1 {
            let sequence = Sequence {
                final_state: y_h.clone(),
                time_axis: layout as usize,
                final_step_last: direction == Direction::Forward,
            };
            im.sequences.insert(value.name.clone(), sequence);
        }
        im.define(at, 0, Value::Runtime(value));
    }
    for (i, state) in [(1, y_h), (2, y_c)] {
        let Some(name) = at.output(i) else { continue };
        // ONNX's [D, N, H] is the IR's; layout 1 has [N, D, H].
        let perm: &[usize] = match layout {
            0 => &[0, 1, 2],
            _ => &[1, 0, 2],
        };
        let value = views::transpose(im, at, state, perm, name.to_string())?;
        im.define(at, i, Value::Runtime(value));
    }
    Ok(true)
}

/// The attributes the IR's LSTM fixes: the default activations, no clip, no coupled gates.
fn check_attributes(at: &At, directions: usize) -> Result<(), String> {
    if let Some(activations) = at.strings("activations")? {
        let expected = ["Sigmoid", "Tanh", "Tanh"].repeat(directions);
        let same = activations.len() == expected.len()
            && activations
                .iter()
                .zip(&expected)
                .all(|(a, e)| a.eq_ignore_ascii_case(e));
        if !same {
            return Err(at.attr_error(
                "activations",
                format!("{activations:?} is not supported; dlbench's IR uses Sigmoid, Tanh, Tanh"),
            ));
        }
    }
    if at.floats("activation_alpha")?.is_some() || at.floats("activation_beta")?.is_some() {
        return Err(at.error("activation_alpha / activation_beta are not supported"));
    }
    if at.node.attribute.iter().any(|a| a.name == "clip") {
        return Err(at.attr_error("clip", "is not supported; dlbench's IR does not clip"));
    }
    at.require_int(
        "input_forget",
        0,
        "dlbench's IR keeps the input and forget gates apart",
    )
}

/// One direction's rows (gate blocks in ONNX's order) in the IR's order.
fn gates(rows: &[f64], hidden: usize) -> Vec<f64> {
    let block = rows.len() / 4;
    debug_assert_eq!(block % hidden, 0);
    FROM_ONNX
        .iter()
        .flat_map(|&g| rows[g * block..(g + 1) * block].iter().copied())
        .collect()
}
