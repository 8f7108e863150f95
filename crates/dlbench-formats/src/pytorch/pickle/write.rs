//! The pickler: the bytes `torch.save` writes for an `OrderedDict[str, Tensor]`, opcode for
//! opcode (protocol 2), so that `torch.load(weights_only=True)` accepts them.

use super::{op, StorageKind};

/// One tensor of a state_dict to write: its storage is the archive entry `data/<position>`,
/// holding the elements contiguously (offset 0, row-major strides).
#[derive(Debug, Clone, Copy)]
pub struct TensorOut<'a> {
    /// The `state_dict` key, e.g. `fc1.weight`.
    pub name: &'a str,
    /// The storage class, from the tensor's dtype ([`StorageKind::of`]).
    pub kind: StorageKind,
    /// `tensor.size()`; the strides follow ([`contiguous_strides`]).
    pub shape: &'a [usize],
}

/// The `data.pkl` of a state_dict whose `i`-th tensor lives in storage `i`:
///
/// ```text
/// OrderedDict() then, per tensor, SETITEMS name ->
///   _rebuild_tensor_v2(persid(('storage', torch.FloatStorage, 'i', 'cpu', numel)),
///                      0, size, stride, False, OrderedDict())
/// ```
pub fn encode_state_dict(tensors: &[TensorOut]) -> Vec<u8> {
    let mut p = Pickler::default();
    p.byte(op::PROTO);
    p.byte(2);
    p.global("collections", "OrderedDict");
    p.byte(op::EMPTY_TUPLE);
    p.byte(op::REDUCE);
    // Python batches SETITEMS by 1000; one MARK per batch keeps the same bounded stack.
    for (b, batch) in tensors.chunks(1000).enumerate() {
        p.byte(op::MARK);
        for (i, t) in batch.iter().enumerate() {
            p.string(t.name);
            p.tensor(t, b * 1000 + i);
        }
        p.byte(op::SETITEMS);
    }
    p.byte(op::STOP);
    p.bytes
}

/// Row-major strides as torch computes them (a zero-sized dim counts as 1).
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1].max(1);
    }
    strides
}

/// Appends opcodes; `bytes` is the pickle so far.
#[derive(Default)]
pub(crate) struct Pickler {
    pub bytes: Vec<u8>,
}

impl Pickler {
    pub(crate) fn byte(&mut self, b: u8) {
        self.bytes.push(b);
    }

    pub(crate) fn global(&mut self, module: &str, name: &str) {
        self.byte(op::GLOBAL);
        self.bytes.extend_from_slice(module.as_bytes());
        self.byte(b'\n');
        self.bytes.extend_from_slice(name.as_bytes());
        self.byte(b'\n');
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.byte(op::BINUNICODE);
        // Names longer than 4 GiB do not occur; saturate rather than wrap.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(&s.as_bytes()[..len as usize]);
    }

    /// The shortest of BININT1, BININT2, BININT and LONG1, as Python picks.
    pub(crate) fn int(&mut self, v: i64) {
        if let Ok(v) = u8::try_from(v) {
            self.byte(op::BININT1);
            self.byte(v);
        } else if let Ok(v) = u16::try_from(v) {
            self.byte(op::BININT2);
            self.bytes.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.byte(op::BININT);
            self.bytes.extend_from_slice(&v.to_le_bytes());
        } else {
            // Minimal two's complement, little-endian.
            let raw = v.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let top = raw[n - 1];
                let sign_of_next = raw[n - 2] & 0x80;
                if (top == 0 && sign_of_next == 0) || (top == 0xff && sign_of_next != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.byte(op::LONG1);
            self.byte(n as u8);
            self.bytes.extend_from_slice(&raw[..n]);
        }
    }

    pub(crate) fn usize(&mut self, v: usize) {
        self.int(i64::try_from(v).unwrap_or(i64::MAX));
    }

    pub(crate) fn tuple(&mut self, items: &[usize]) {
        match items.len() {
            0 => self.byte(op::EMPTY_TUPLE),
            n @ 1..=3 => {
                for &v in items {
                    self.usize(v);
                }
                self.byte(op::TUPLE1 + (n as u8 - 1));
            }
            _ => {
                self.byte(op::MARK);
                for &v in items {
                    self.usize(v);
                }
                self.byte(op::TUPLE);
            }
        }
    }

    pub(crate) fn tensor(&mut self, t: &TensorOut, key: usize) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.byte(op::MARK);
        // The persistent id of the storage.
        self.byte(op::MARK);
        self.string("storage");
        self.global("torch", t.kind.class);
        self.string(&key.to_string());
        self.string("cpu");
        self.usize(t.shape.iter().product());
        self.byte(op::TUPLE);
        self.byte(op::BINPERSID);
        self.usize(0);
        self.tuple(t.shape);
        self.tuple(&contiguous_strides(t.shape));
        self.byte(op::NEWFALSE);
        // backward_hooks: an empty OrderedDict.
        self.global("collections", "OrderedDict");
        self.byte(op::EMPTY_TUPLE);
        self.byte(op::REDUCE);
        self.byte(op::TUPLE);
        self.byte(op::REDUCE);
    }
}
