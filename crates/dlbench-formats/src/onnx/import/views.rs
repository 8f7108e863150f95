//! The IR's `Reshape` and `Transpose` as the import writes them: a chain of either collapses
//! into one node from the chain's start, and one that gives the start back is no node at all.
//! Exporters wrap ops in layout changes that cancel (dlbench's own export turns a batch-first
//! LSTM into `Transpose`, a sequence-first LSTM and `Transpose` + `Reshape` back); collapsing
//! them gives the graph that was exported, not a longer one that computes the same.

use dlbench_core::{Dim, Op, ValueInfo};

use super::attrs::At;
use super::Importer;

/// The IR value `value` reshaped to `target`, named `out` if a node is needed.
pub(super) fn reshape(
    im: &mut Importer,
    at: &At,
    value: &ValueInfo,
    target: &[Dim],
    out: String,
) -> Result<ValueInfo, String> {
    // A reshape of a reshape reads the first one's input in the same order.
    let source = match im.producer(&value.name) {
        Some((Op::Reshape { .. }, input)) => im.info(&input)?,
        _ => value.clone(),
    };
    if source.shape == target {
        return Ok(source);
    }
    if target.iter().filter(|d| **d == Dim::Batch).count() > 1 {
        return Err(at.error(format!(
            "the result {} holds the batch twice",
            dlbench_core::ir::format_shape(target)
        )));
    }
    // The IR's Reshape reads 0 as "copy the input's dim": a dim of size 0 is written so only
    // where the input has one at that position.
    if let Some(i) = (0..target.len())
        .find(|&i| target[i] == Dim::Known(0) && source.shape.get(i) != Some(&Dim::Known(0)))
    {
        return Err(at.error(format!(
            "the result {} has a dim of size 0 at position {i}, which dlbench's IR reshape \
             cannot express",
            dlbench_core::ir::format_shape(target)
        )));
    }
    let spec = target
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(n) => *n as i64,
            Dim::Batch if source.shape.get(i) == Some(&Dim::Batch) => 0,
            Dim::Batch => -1,
        })
        .collect();
    let op = Op::Reshape { shape: spec };
    Ok(im.emit(at, op, vec![source.name], vec![out])?.remove(0))
}

/// The IR value `value` with its dims permuted (output dim `i` is input dim `perm[i]`),
/// named `out` if a node is needed.
pub(super) fn transpose(
    im: &mut Importer,
    at: &At,
    value: &ValueInfo,
    perm: &[usize],
    out: String,
) -> Result<ValueInfo, String> {
    // A transpose of a transpose is one transpose: output dim i is dim first[perm[i]].
    let (source, perm) = match im.producer(&value.name) {
        Some((Op::Transpose { perm: first }, input)) => {
            (im.info(&input)?, perm.iter().map(|&p| first[p]).collect())
        }
        _ => (value.clone(), perm.to_vec()),
    };
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(source);
    }
    let op = Op::Transpose { perm };
    Ok(im.emit(at, op, vec![source.name], vec![out])?.remove(0))
}
