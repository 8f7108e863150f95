//! A state_dict file as an ordered list of named tensors: the pickle's dict, each tensor's view
//! gathered from its storage entry.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use dlbench_core::format::write_atomically;
use dlbench_core::limits::{bytes_of, checked_numel, Limits};
use dlbench_core::{DType, Data, Tensor};

use super::archive::{self, Archive, MAX_PICKLE_BYTES};
use super::pickle::{self, Key, Object, Pickle, StorageKind, TensorOut, TensorRef};
use crate::error::{Error, Result};

/// A view may read its storage more than once (an `expand`ed tensor, stride 0) and so have more
/// elements than the storage. Up to this many elements that is allowed; beyond, a tiny file
/// could make the reader allocate without bound.
pub const MAX_EXPANDED_ELEMENTS: usize = 1 << 24;

/// Reads the tensors of a file written by `torch.save(model.state_dict(), path)`, in the file's
/// order, without executing any of its pickle (see [`pickle`](super::pickle)). Tensors may be
/// f32, f64 or i64, on any device, and views (offsets, transposes) of shared storages.
/// Read under the limits of the environment ([`Limits::from_env`]); see
/// [`read_state_dict_with`].
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    read_state_dict_with(path, &Limits::from_env()?)
}

/// [`read_state_dict`] under `limits`: compressed entries may expand to
/// [`Limits::decompressed_cap`] of their size, and the storages and tensors read, together,
/// must fit [`Limits::memory_bytes`]; each is checked before it is allocated, so that a small
/// file whose tensors all expand one storage element (stride 0) or share one storage cannot
/// make the reader allocate without bound.
pub fn read_state_dict_with(path: &Path, limits: &Limits) -> Result<Vec<(String, Tensor)>> {
    let mut archive = Archive::open_with(path, limits)?;
    let pickle_bytes = archive
        .entry("data.pkl", MAX_PICKLE_BYTES)?
        .ok_or_else(|| Error::file(path, "no data.pkl in the archive"))?;
    let big_endian = match archive.entry("byteorder", 16)?.as_deref() {
        None | Some(b"little") => false,
        Some(b"big") => true,
        Some(other) => {
            return Err(Error::file(
                path,
                format!(
                    "byteorder is {:?}, expected \"little\" or \"big\"",
                    String::from_utf8_lossy(other)
                ),
            ))
        }
    };
    let parsed = pickle::read(&pickle_bytes).map_err(|e| {
        // TorchScript archives also have a data.pkl, whose globals name the model's classes.
        let hint = if archive.contains("constants.pkl") {
            " (this is a TorchScript archive from torch.jit.save; save `model.state_dict()` \
             with torch.save instead)"
        } else {
            ""
        };
        Error::file(path, format!("{e}{hint}"))
    })?;
    let mut reader = Reader {
        archive,
        pickle: &parsed,
        big_endian,
        storages: HashMap::new(),
        limits: *limits,
        held: 0,
    };
    reader.tensors()
}

struct Reader<'a> {
    archive: Archive,
    pickle: &'a Pickle,
    big_endian: bool,
    /// Storage bytes by arena index: tensors sharing a storage read it once.
    storages: HashMap<usize, Vec<u8>>,
    limits: Limits,
    /// Bytes of the storages and tensors read so far.
    held: u64,
}

impl Reader<'_> {
    fn path(&self) -> &Path {
        self.archive.path()
    }

    /// Counts `bytes` more for tensor `name`, refusing them over the memory limit.
    fn hold(&mut self, name: &str, bytes: u64) -> Result<()> {
        self.held = self.held.saturating_add(bytes);
        self.limits
            .check_memory("the state_dict up to it", self.held)
            .map_err(|e| Error::tensor(self.path(), name, e.to_string()))
    }

    fn tensors(&mut self) -> Result<Vec<(String, Tensor)>> {
        let pickle = self.pickle;
        let Some(Object::Dict(dict)) = pickle.object(&pickle.root) else {
            return Err(Error::file(
                self.path(),
                format!(
                    "the pickle holds {}, expected a state_dict (a dict of tensors)",
                    pickle.kind(&pickle.root)
                ),
            ));
        };
        let mut out = Vec::with_capacity(dict.entries.len());
        for (key, value) in &dict.entries {
            let name = match key {
                Key::Str(s) => s.to_string(),
                Key::Int(i) => {
                    return Err(Error::file(
                        self.path(),
                        format!("the state_dict has the int key {i}, expected names"),
                    ))
                }
            };
            let Some(Object::Tensor(view)) = pickle.object(value) else {
                return Err(Error::tensor(
                    self.path(),
                    &name,
                    format!(
                        "holds {}, expected a tensor: only a flat state_dict (name -> tensor) is \
                         read, not a checkpoint with nested dicts",
                        pickle.kind(value)
                    ),
                ));
            };
            let tensor = self.tensor(&name, view)?;
            out.push((name, tensor));
        }
        Ok(out)
    }

    fn tensor(&mut self, name: &str, view: &TensorRef) -> Result<Tensor> {
        let Some(Object::Storage(storage)) = self.pickle.objects.get(view.storage) else {
            return Err(Error::tensor(self.path(), name, "its storage is missing"));
        };
        let kind = storage.kind;
        let dtype = kind.dtype.ok_or_else(|| {
            Error::tensor(
                self.path(),
                name,
                format!(
                    "is {} (torch.{}): dlbench reads float32, float64 and int64 tensors; \
                     convert it (for example `t.float()`) before saving",
                    kind.torch_dtype, kind.class
                ),
            )
        })?;
        let size = element_size(dtype);
        if !self.storages.contains_key(&view.storage) {
            let entry = format!("data/{}", storage.key);
            let needed = storage.numel.checked_mul(size).ok_or_else(|| {
                Error::tensor(self.path(), name, "its storage's byte size overflows")
            })?;
            self.hold(name, needed as u64)?;
            let bytes = self.archive.entry(&entry, needed as u64)?.ok_or_else(|| {
                Error::tensor(
                    self.path(),
                    name,
                    format!("its storage entry `{entry}` is missing from the archive"),
                )
            })?;
            if bytes.len() != needed {
                return Err(Error::tensor(
                    self.path(),
                    name,
                    format!(
                        "storage `{entry}` holds {} bytes, {} {} elements need {needed}",
                        bytes.len(),
                        storage.numel,
                        kind.torch_dtype
                    ),
                ));
            }
            self.storages.insert(view.storage, bytes);
        }
        // A view may read its storage many times over (stride 0), and many entries may name
        // the same view: each gathered tensor counts on its own.
        if let Some(numel) = checked_numel(&view.shape) {
            self.hold(name, bytes_of(numel, size))?;
        }
        let bytes = self
            .storages
            .get(&view.storage)
            .map(Vec::as_slice)
            .unwrap_or_default();
        gather(bytes, dtype, storage.numel, view, self.big_endian)
            .map_err(|message| Error::tensor(self.path(), name, message))
    }
}

fn element_size(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 4,
        DType::F64 | DType::I64 => 8,
    }
}

/// The elements of a strided view, row-major: element `i` of the view is storage element
/// `offset + sum(index_d * stride_d)`. `bytes` holds `storage_numel` elements of `dtype`.
pub fn gather(
    bytes: &[u8],
    dtype: DType,
    storage_numel: usize,
    view: &TensorRef,
    big_endian: bool,
) -> Result<Tensor, String> {
    let shape = view.shape.clone();
    // An empty view whose other dims overflow would hold nothing yet break every later size
    // computation on its shape.
    let nonzero: Vec<usize> = shape.iter().copied().filter(|&d| d != 0).collect();
    let numel = checked_numel(&shape)
        .filter(|_| checked_numel(&nonzero).is_some())
        .ok_or_else(|| format!("size {shape:?} overflows"))?;
    if view.stride.len() != shape.len() {
        return Err(format!(
            "size {shape:?} and stride {:?} differ in rank",
            view.stride
        ));
    }
    if numel == 0 {
        return Ok(Tensor::zeros(dtype, shape));
    }
    // The last element the view reads; every other index lies between the offset and it.
    let last = shape
        .iter()
        .zip(&view.stride)
        .try_fold(view.offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
        });
    if !matches!(last, Some(last) if last < storage_numel) {
        return Err(format!(
            "the view (offset {}, size {shape:?}, stride {:?}) reads past its storage of \
             {storage_numel} elements",
            view.offset, view.stride
        ));
    }
    if numel > storage_numel.max(MAX_EXPANDED_ELEMENTS) {
        return Err(format!(
            "the view has {numel} elements but its storage only {storage_numel}: an expanded \
             tensor this large is not read (save `t.contiguous()`)"
        ));
    }
    let indices = StridedIndices::new(&shape, &view.stride, view.offset);
    let data = match dtype {
        DType::F32 => Data::F32(decode(bytes, indices, |b: [u8; 4]| {
            if big_endian {
                f32::from_be_bytes(b)
            } else {
                f32::from_le_bytes(b)
            }
        })?),
        DType::F64 => Data::F64(decode(bytes, indices, |b: [u8; 8]| {
            if big_endian {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            }
        })?),
        DType::I64 => Data::I64(decode(bytes, indices, |b: [u8; 8]| {
            if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            }
        })?),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// Reads the element at each storage index.
fn decode<T, const N: usize>(
    bytes: &[u8],
    indices: StridedIndices,
    from: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, String> {
    indices
        .map(|i| {
            i.checked_mul(N)
                .and_then(|start| bytes.get(start..start.checked_add(N)?))
                .and_then(|b| <[u8; N]>::try_from(b).ok())
                .map(&from)
                .ok_or_else(|| format!("element {i} lies outside its storage"))
        })
        .collect()
}

/// The storage index of each element of a strided view, in row-major order (an odometer over
/// the view's indices). The caller has checked that no index overflows.
struct StridedIndices<'a> {
    shape: &'a [usize],
    stride: &'a [usize],
    index: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedIndices<'a> {
    fn new(shape: &'a [usize], stride: &'a [usize], offset: usize) -> Self {
        let empty = shape.contains(&0);
        StridedIndices {
            shape,
            stride,
            index: vec![0; shape.len()],
            next: (!empty).then_some(offset),
        }
    }
}

impl Iterator for StridedIndices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        // Advance the last dim; carry into earlier dims, undoing their full run.
        let mut position = Some(current);
        let mut d = self.shape.len();
        loop {
            if d == 0 {
                position = None;
                break;
            }
            d -= 1;
            let (size, stride) = (self.shape[d], self.stride[d]);
            if self.index[d] + 1 < size {
                self.index[d] += 1;
                position = position.map(|p| p + stride);
                break;
            }
            position = position.map(|p| p - (size - 1) * stride);
            self.index[d] = 0;
        }
        self.next = position;
        Some(current)
    }
}

/// Writes tensors as a state_dict file that `torch.load(path, weights_only=True)` reads as an
/// `OrderedDict[str, Tensor]`, in the given order. Each tensor gets its own contiguous storage.
/// The file appears whole or not at all.
pub fn write_state_dict(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut seen = HashSet::new();
    if let Some((name, _)) = tensors.iter().find(|(name, _)| !seen.insert(name)) {
        return Err(Error::tensor(
            path,
            name,
            "appears twice: a state_dict maps each name to one tensor",
        ));
    }
    let outs: Vec<TensorOut> = tensors
        .iter()
        .map(|(name, t)| TensorOut {
            name,
            kind: StorageKind::of(t.dtype()),
            shape: t.shape(),
        })
        .collect();
    let pickle = pickle::encode_state_dict(&outs);
    let storages: Vec<Vec<u8>> = tensors.iter().map(|(_, t)| le_bytes(t)).collect();
    let bytes = archive::write(&archive::archive_name(path), &pickle, &storages)
        .map_err(|e| Error::file(path, format!("writing the zip archive: {e}")))?;
    write_atomically(path, &bytes)?;
    Ok(())
}

fn le_bytes(t: &Tensor) -> Vec<u8> {
    match t.data() {
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}
