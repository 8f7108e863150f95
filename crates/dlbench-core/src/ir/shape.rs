//! Shape and dtype inference, one node at a time. Errors name the node, its op and the shapes.

use super::{format_shape, op::LossOp, op::Op, Dim, Node, ValueInfo};
use crate::error::{Error, Result};
use crate::tensor::DType;

struct Check<'a> {
    node: &'a Node,
    inputs: &'a [&'a ValueInfo],
}

impl Check<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::node(&self.node.name, self.node.op.name(), message)
    }

    fn describe(&self, i: usize) -> String {
        let v = self.inputs[i];
        format!("`{}` {} {}", v.name, v.dtype, format_shape(&v.shape))
    }

    fn arity(&self, min: usize, max: usize, outputs: usize) -> Result<()> {
        let n = self.inputs.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(format!("expects {want} inputs, got {n}")));
        }
        if self.node.outputs.len() != outputs {
            return Err(self.err(format!(
                "expects {outputs} output name(s), got {}",
                self.node.outputs.len()
            )));
        }
        Ok(())
    }

    fn float(&self, i: usize) -> Result<&ValueInfo> {
        let v = self.inputs[i];
        if !v.dtype.is_float() {
            return Err(self.err(format!("input {} must be float", self.describe(i))));
        }
        Ok(v)
    }

    fn rank(&self, i: usize, rank: usize) -> Result<&ValueInfo> {
        let v = self.float(i)?;
        if v.shape.len() != rank {
            return Err(self.err(format!("input {} must have rank {rank}", self.describe(i))));
        }
        Ok(v)
    }

    fn expect_shape(&self, i: usize, shape: &[Dim]) -> Result<()> {
        if self.inputs[i].shape != shape {
            return Err(self.err(format!(
                "input {} must have shape {}",
                self.describe(i),
                format_shape(shape)
            )));
        }
        Ok(())
    }

    fn out(&self, i: usize, dtype: DType, shape: Vec<Dim>) -> ValueInfo {
        ValueInfo::new(self.node.outputs[i].clone(), dtype, shape)
    }

    fn overflow(&self, a: usize, b: usize, how: &str) -> Error {
        self.err(format!("sizes overflow ({a} {how} {b})"))
    }

    fn sum(&self, a: usize, b: usize) -> Result<usize> {
        a.checked_add(b).ok_or_else(|| self.overflow(a, b, "+"))
    }

    fn product(&self, a: usize, b: usize) -> Result<usize> {
        a.checked_mul(b).ok_or_else(|| self.overflow(a, b, "x"))
    }
}

fn known(d: usize) -> Dim {
    Dim::Known(d)
}

/// Infers the outputs of `node` from the types of its inputs. An output whose element count
/// per sample overflows is refused here, so that every later size computation (buffers,
/// FLOPs, memory limits) starts from a count that fits.
pub fn infer_node(node: &Node, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
    let outputs = infer_outputs(node, inputs)?;
    for out in &outputs {
        if known_product(&out.shape).is_none() {
            return Err(Error::node(
                &node.name,
                node.op.name(),
                format!(
                    "output `{}` {} has more elements than can be addressed",
                    out.name,
                    format_shape(&out.shape)
                ),
            ));
        }
    }
    Ok(outputs)
}

fn infer_outputs(node: &Node, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
    let c = Check { node, inputs };
    match &node.op {
        Op::Dense => {
            c.arity(2, 3, 1)?;
            let x = c.float(0)?;
            let w = c.rank(1, 2)?;
            let in_features = x.shape.last().copied();
            if x.shape.is_empty() || in_features != Some(w.shape[1]) {
                return Err(c.err(format!(
                    "input {} does not match weight {} (expected [.., in] and [out, in])",
                    c.describe(0),
                    c.describe(1)
                )));
            }
            if inputs.len() == 3 {
                c.float(2)?;
                c.expect_shape(2, &[w.shape[0]])?;
            }
            let mut shape = x.shape.clone();
            *shape.last_mut().expect("rank checked") = w.shape[0];
            Ok(vec![c.out(0, x.dtype, shape)])
        }
        Op::MatMul => {
            c.arity(2, 2, 1)?;
            let (a, b) = (c.float(0)?, c.float(1)?);
            let (ra, rb) = (a.shape.len(), b.shape.len());
            let fits = ra >= 2
                && rb >= 2
                && a.shape[ra - 1] == b.shape[rb - 2]
                && (rb == 2 || (ra == rb && a.shape[..ra - 2] == b.shape[..rb - 2]));
            if !fits {
                return Err(c.err(format!(
                    "cannot multiply {} by {}",
                    c.describe(0),
                    c.describe(1)
                )));
            }
            let mut shape = a.shape.clone();
            shape[ra - 1] = b.shape[rb - 1];
            Ok(vec![c.out(0, a.dtype, shape)])
        }
        Op::Conv2d(attrs) => {
            c.arity(2, 3, 1)?;
            let x = c.rank(0, 4)?;
            let w = c.rank(1, 4)?;
            let g = attrs.groups;
            let (Some(o), Some(ci), Some(kh), Some(kw)) = (
                w.shape[0].known(),
                w.shape[1].known(),
                w.shape[2].known(),
                w.shape[3].known(),
            ) else {
                return Err(c.err("weight shape must be known"));
            };
            if g == 0 || ci.checked_mul(g).map(known) != Some(x.shape[1]) || o % g != 0 {
                return Err(c.err(format!(
                    "input {} does not match weight {} with groups {g} (expected [N, C, H, W] and [O, C/groups, kh, kw])",
                    c.describe(0),
                    c.describe(1)
                )));
            }
            if inputs.len() == 3 {
                c.float(2)?;
                c.expect_shape(2, &[known(o)])?;
            }
            let mut shape = vec![x.shape[0], known(o)];
            for (axis, k) in [kh, kw].into_iter().enumerate() {
                let Some(size) = x.shape[2 + axis].known() else {
                    return Err(c.err("spatial dims must be known"));
                };
                let Some(out) = attrs.output_len(size, k, axis) else {
                    return Err(c.err(format!(
                        "kernel {kh}x{kw} (stride {:?}, padding {:?}, dilation {:?}) does not \
                         fit input {}, or its sizes overflow",
                        attrs.stride,
                        attrs.padding,
                        attrs.dilation,
                        c.describe(0)
                    )));
                };
                shape.push(known(out));
            }
            Ok(vec![c.out(0, x.dtype, shape)])
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            c.arity(1, 1, 1)?;
            let x = c.rank(0, 4)?;
            if p.stride.contains(&0)
                || p.padding[0] > p.kernel[0] / 2
                || p.padding[1] > p.kernel[1] / 2
            {
                return Err(c.err(format!(
                    "stride must be positive and padding at most half the kernel, got {p:?}"
                )));
            }
            let mut shape = x.shape[..2].to_vec();
            for axis in 0..2 {
                let out = x.shape[2 + axis]
                    .known()
                    .and_then(|size| p.output_len(size, axis));
                match out {
                    Some(n) => shape.push(known(n)),
                    None => {
                        return Err(c.err(format!(
                            "window {:?} does not fit input {}",
                            p.kernel,
                            c.describe(0)
                        )))
                    }
                }
            }
            Ok(vec![c.out(0, x.dtype, shape)])
        }
        Op::Flatten { axis } => {
            c.arity(1, 1, 1)?;
            let x = c.float(0)?;
            if *axis > x.shape.len() {
                return Err(c.err(format!("axis {axis} is out of range for {}", c.describe(0))));
            }
            let mut shape = x.shape[..*axis].to_vec();
            shape.push(product(&x.shape[*axis..]).ok_or_else(|| {
                c.err(format!(
                    "cannot flatten the batch dimension of {} into other dims, or its size overflows",
                    c.describe(0)
                ))
            })?);
            Ok(vec![c.out(0, x.dtype, shape)])
        }
        Op::Reshape { shape: target } => {
            c.arity(1, 1, 1)?;
            let x = c.float(0)?;
            Ok(vec![c.out(0, x.dtype, reshape(&c, &x.shape, target)?)])
        }
        Op::Transpose { perm } => {
            c.arity(1, 1, 1)?;
            let x = c.float(0)?;
            let mut seen = vec![false; x.shape.len()];
            let valid = perm.len() == x.shape.len()
                && perm
                    .iter()
                    .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return Err(c.err(format!(
                    "perm {perm:?} is not a permutation of the dims of {}",
                    c.describe(0)
                )));
            }
            let shape = perm.iter().map(|&p| x.shape[p]).collect();
            Ok(vec![c.out(0, x.dtype, shape)])
        }
        Op::Concat { axis } => {
            if inputs.is_empty() {
                return Err(c.err("expects at least one input"));
            }
            c.arity(1, usize::MAX, 1)?;
            let first = c.float(0)?;
            if *axis >= first.shape.len() {
                return Err(c.err(format!("axis {axis} is out of range for {}", c.describe(0))));
            }
            let mut total = 0;
            for i in 0..inputs.len() {
                let v = c.float(i)?;
                let same_elsewhere = v.shape.len() == first.shape.len()
                    && (0..v.shape.len()).all(|d| d == *axis || v.shape[d] == first.shape[d]);
                match (same_elsewhere, v.shape[*axis].known()) {
                    (true, Some(n)) if v.dtype == first.dtype => {
                        total = c.sum(total, n)?;
                    }
                    _ => {
                        return Err(c.err(format!(
                            "input {} does not match {} outside axis {axis}",
                            c.describe(i),
                            c.describe(0)
                        )))
                    }
                }
            }
            let mut shape = first.shape.clone();
            shape[*axis] = known(total);
            Ok(vec![c.out(0, first.dtype, shape)])
        }
        Op::Unary(_) => {
            c.arity(1, 1, 1)?;
            let x = c.float(0)?;
            Ok(vec![c.out(0, x.dtype, x.shape.clone())])
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            c.arity(1, 1, 1)?;
            let x = c.float(0)?;
            if normalize_axis(*axis, x.shape.len()).is_none() {
                return Err(c.err(format!("axis {axis} is out of range for {}", c.describe(0))));
            }
            Ok(vec![c.out(0, x.dtype, x.shape.clone())])
        }
        Op::Dropout { p } => {
            c.arity(2, 2, 1)?;
            let x = c.float(0)?;
            c.float(1)?;
            c.expect_shape(1, &x.shape)?;
            if !(0.0..1.0).contains(p) {
                return Err(c.err(format!("p must be in [0, 1), got {p}")));
            }
            Ok(vec![c.out(0, x.dtype, x.shape.clone())])
        }
        Op::Lstm(attrs) => {
            let dirs = attrs.direction.count();
            c.arity(1 + 4 * dirs, 1 + 4 * dirs, 3)?;
            let x = c.rank(0, 3)?;
            let (t, n) = if attrs.batch_first {
                (x.shape[1], x.shape[0])
            } else {
                (x.shape[0], x.shape[1])
            };
            let (h, i) = (known(attrs.hidden), x.shape[2]);
            let gates = known(c.product(4, attrs.hidden)?);
            for d in 0..dirs {
                let base = 1 + 4 * d;
                c.float(base)?;
                c.expect_shape(base, &[gates, i])?;
                c.expect_shape(base + 1, &[gates, h])?;
                c.expect_shape(base + 2, &[gates])?;
                c.expect_shape(base + 3, &[gates])?;
            }
            let y_feat = known(c.product(dirs, attrs.hidden)?);
            let y = if attrs.batch_first {
                vec![n, t, y_feat]
            } else {
                vec![t, n, y_feat]
            };
            let state = vec![known(dirs), n, h];
            Ok(vec![
                c.out(0, x.dtype, y),
                c.out(1, x.dtype, state.clone()),
                c.out(2, x.dtype, state),
            ])
        }
        Op::Binary(_) => {
            c.arity(2, 2, 1)?;
            let (a, b) = (c.float(0)?, c.float(1)?);
            let shape = broadcast(&a.shape, &b.shape).ok_or_else(|| {
                c.err(format!(
                    "cannot broadcast {} with {}",
                    c.describe(0),
                    c.describe(1)
                ))
            })?;
            Ok(vec![c.out(0, a.dtype, shape)])
        }
        Op::Loss(loss) => match loss {
            LossOp::Mse | LossOp::BinaryCrossEntropy | LossOp::BinaryCrossEntropyWithLogits => {
                c.arity(2, 2, 1)?;
                let p = c.float(0)?;
                c.float(1)?;
                c.expect_shape(1, &p.shape)?;
                Ok(vec![c.out(0, p.dtype, vec![])])
            }
            LossOp::CrossEntropy => {
                c.arity(2, 2, 1)?;
                let logits = c.rank(0, 2)?;
                if inputs[1].dtype != DType::I64 || inputs[1].shape != [logits.shape[0]] {
                    return Err(c.err(format!(
                        "labels {} must be i64 of shape [{}]",
                        c.describe(1),
                        logits.shape[0]
                    )));
                }
                Ok(vec![c.out(0, logits.dtype, vec![])])
            }
            LossOp::VaeElbo => {
                c.arity(4, 4, 1)?;
                let recon = c.rank(0, 2)?;
                let mu = c.rank(1, 2)?;
                c.float(2)?;
                c.expect_shape(2, &mu.shape)?;
                c.float(3)?;
                c.expect_shape(3, &recon.shape)?;
                if mu.shape[0] != recon.shape[0] {
                    return Err(c.err(format!(
                        "mu {} and recon {} disagree on the batch",
                        c.describe(1),
                        c.describe(0)
                    )));
                }
                Ok(vec![c.out(0, recon.dtype, vec![])])
            }
        },
    }
}

/// The axis an op means by `axis` on a value of `rank` dims (negative counts from the end).
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

/// The product of the known dims, or `None` when it overflows.
fn known_product(dims: &[Dim]) -> Option<usize> {
    dims.iter()
        .filter_map(|d| d.known())
        .try_fold(1usize, |n, d| n.checked_mul(d))
}

/// The product of dims, `batch` only if it is the only non-unit dim's factor; `None` also
/// when it overflows.
fn product(dims: &[Dim]) -> Option<Dim> {
    let known = known_product(dims)?;
    match dims.iter().filter(|d| **d == Dim::Batch).count() {
        0 => Some(Dim::Known(known)),
        1 if known == 1 => Some(Dim::Batch),
        _ => None,
    }
}

/// numpy broadcasting; `batch` broadcasts only with 1 or itself.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    let rank = a.len().max(b.len());
    let at = |s: &[Dim], i: usize| {
        let offset = rank - s.len();
        if i < offset {
            Dim::Known(1)
        } else {
            s[i - offset]
        }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (Dim::Known(1), y) => Some(y),
            (x, Dim::Known(1)) => Some(x),
            _ => None,
        })
        .collect()
}

fn reshape(c: &Check, input: &[Dim], target: &[i64]) -> Result<Vec<Dim>> {
    let bad = |why: &str| {
        c.err(format!(
            "cannot reshape {} to {target:?}: {why}",
            c.describe(0)
        ))
    };
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| bad("0 copies a dim the input lacks"))?,
            ),
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(Dim::Known(1));
            }
            t if t > 0 => out.push(Dim::Known(t as usize)),
            _ => return Err(bad("dims must be positive, 0 or a single -1")),
        }
    }
    let batch_in = input.iter().filter(|d| **d == Dim::Batch).count();
    let batch_out = out.iter().filter(|d| **d == Dim::Batch).count();
    let known_in = known_product(input).ok_or_else(|| bad("the input's size overflows"))?;
    let known_out = known_product(&out).ok_or_else(|| bad("the target's size overflows"))?;
    match infer_at {
        Some(i) => {
            if known_out == 0 || !known_in.is_multiple_of(known_out) {
                return Err(bad("the element counts do not divide"));
            }
            let rest = known_in / known_out;
            out[i] = match batch_in - batch_out {
                0 => Dim::Known(rest),
                1 if rest == 1 => Dim::Batch,
                _ => return Err(bad("the batch dimension must stay a dim of its own")),
            };
        }
        None if batch_in != batch_out || known_in != known_out => {
            return Err(bad("the element counts differ"))
        }
        None => {}
    }
    Ok(out)
}
