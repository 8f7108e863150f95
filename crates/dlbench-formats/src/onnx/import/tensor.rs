//! ONNX tensors (initializers, `Constant` values, attribute tensors) into import-time
//! constants: the data is checked against what the file actually holds before anything the
//! header claims is allocated, and external data is read from beside the model, never from
//! outside its folder.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use dlbench_core::limits::{checked_numel, format_bytes, Limits};
use dlbench_core::{DType, Dim};

use super::value::{Const, ConstData, Origin, Sym};
use crate::onnx::proto::{DataLocation, DataType, TensorProto};

/// Where a tensor is read: the model's folder (for external data) and the limits.
pub(super) struct TensorSource<'a> {
    /// The folder external data locations are relative to; `None` when the model came from
    /// memory, where external data is refused.
    pub dir: Option<&'a Path>,
    /// The memory limits every tensor is checked against.
    pub limits: &'a Limits,
}

/// The element kinds an ONNX tensor may hold that the importer reads, with their byte size.
#[derive(Debug, Clone, Copy)]
enum Element {
    Float(DType, usize),
    Half { bfloat: bool },
    Int(usize, bool),
    Bool,
}

fn element(data_type: i32) -> Option<Element> {
    Some(match DataType::try_from(data_type).ok()? {
        DataType::Float => Element::Float(DType::F32, 4),
        DataType::Double => Element::Float(DType::F64, 8),
        DataType::Float16 => Element::Half { bfloat: false },
        DataType::Bfloat16 => Element::Half { bfloat: true },
        DataType::Int64 => Element::Int(8, true),
        DataType::Int32 => Element::Int(4, true),
        DataType::Int16 => Element::Int(2, true),
        DataType::Int8 => Element::Int(1, true),
        DataType::Uint8 => Element::Int(1, false),
        DataType::Uint16 => Element::Int(2, false),
        DataType::Uint32 => Element::Int(4, false),
        DataType::Uint64 => Element::Int(8, false),
        DataType::Bool => Element::Bool,
        DataType::Undefined | DataType::String | DataType::Complex64 | DataType::Complex128 => {
            return None
        }
    })
}

fn size_of(element: Element) -> usize {
    match element {
        Element::Float(_, size) | Element::Int(size, _) => size,
        Element::Half { .. } => 2,
        Element::Bool => 1,
    }
}

/// The name of an ONNX element type, for messages.
pub(super) fn type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| format!("{t:?}").to_lowercase())
        .unwrap_or_else(|_| format!("type {data_type}"))
}

/// A tensor as an import-time constant; `what` names it in errors (`initializer `w``).
pub(super) fn read_tensor(
    tensor: &TensorProto,
    source: &TensorSource,
    what: &str,
) -> Result<Const, String> {
    let element = element(tensor.data_type).ok_or_else(|| {
        format!(
            "{what}: element type {} is not supported (dlbench reads floats, integers and bools)",
            type_name(tensor.data_type)
        )
    })?;
    let shape = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{what}: negative dim {d}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let numel = checked_numel(&shape)
        .ok_or_else(|| format!("{what}: dims {:?} have too many elements", tensor.dims))?;
    let bytes = (numel as u64).saturating_mul(size_of(element) as u64);
    source
        .limits
        .check_memory(what, bytes.saturating_mul(2))
        .map_err(|e| e.to_string())?;
    let external = tensor.data_location == DataLocation::External as i32;
    let data = if external {
        let raw = read_external(tensor, source, what, bytes)?;
        from_raw(&raw, element)
    } else if !tensor.raw_data.is_empty() {
        if tensor.raw_data.len() as u64 != bytes {
            return Err(format!(
                "{what}: dims {:?} need {} of raw data, the file holds {}",
                tensor.dims,
                format_bytes(bytes),
                format_bytes(tensor.raw_data.len() as u64)
            ));
        }
        from_raw(&tensor.raw_data, element)
    } else {
        from_typed(tensor, element, numel, what)?
    };
    let dims = shape.into_iter().map(Dim::Known).collect();
    Ok(Const::new(dims, data, Origin::Computed))
}

/// Little-endian bytes of `element` (already checked to be a whole number of elements).
fn from_raw(raw: &[u8], element: Element) -> ConstData {
    let size = size_of(element);
    let chunks = raw.chunks_exact(size);
    match element {
        Element::Float(dtype, 4) => ConstData::floats(
            chunks
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            dtype,
        ),
        Element::Float(dtype, _) => ConstData::floats(
            chunks
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            dtype,
        ),
        Element::Half { bfloat } => ConstData::floats(
            chunks
                .map(|c| half_to_f64(u16::from_le_bytes([c[0], c[1]]), bfloat))
                .collect(),
            DType::F32,
        ),
        Element::Int(_, signed) => ConstData::Int(
            chunks
                .map(|c| {
                    let mut wide = [0u8; 8];
                    wide[..c.len()].copy_from_slice(c);
                    let value = i64::from_le_bytes(wide);
                    // Sign-extend the narrower signed types.
                    let shift = 64 - 8 * c.len() as u32;
                    Sym::Int(match signed && shift > 0 {
                        true => (value << shift) >> shift,
                        false => value,
                    })
                })
                .collect(),
        ),
        Element::Bool => ConstData::Int(chunks.map(|c| Sym::Int(i64::from(c[0] != 0))).collect()),
    }
}

/// The typed repeated fields (`float_data`, `int64_data`...), whose length must be the
/// element count.
fn from_typed(
    tensor: &TensorProto,
    element: Element,
    numel: usize,
    what: &str,
) -> Result<ConstData, String> {
    let (held, data) = match element {
        Element::Float(DType::F64, _) => (
            tensor.double_data.len(),
            ConstData::floats(tensor.double_data.clone(), DType::F64),
        ),
        Element::Float(dtype, _) => (
            tensor.float_data.len(),
            ConstData::floats(
                tensor.float_data.iter().map(|&v| f64::from(v)).collect(),
                dtype,
            ),
        ),
        Element::Half { bfloat } => (
            tensor.int32_data.len(),
            ConstData::floats(
                tensor
                    .int32_data
                    .iter()
                    .map(|&v| half_to_f64(v as u16, bfloat))
                    .collect(),
                DType::F32,
            ),
        ),
        Element::Int(8, true) => (
            tensor.int64_data.len(),
            ConstData::Int(tensor.int64_data.iter().map(|&v| Sym::Int(v)).collect()),
        ),
        Element::Int(8, false) | Element::Int(4, false) => (
            tensor.uint64_data.len(),
            ConstData::Int(
                tensor
                    .uint64_data
                    .iter()
                    .map(|&v| Sym::Int(i64::try_from(v).unwrap_or(i64::MAX)))
                    .collect(),
            ),
        ),
        Element::Int(..) | Element::Bool => (
            tensor.int32_data.len(),
            ConstData::Int(
                tensor
                    .int32_data
                    .iter()
                    .map(|&v| Sym::Int(v.into()))
                    .collect(),
            ),
        ),
    };
    if held != numel {
        return Err(format!(
            "{what}: dims {:?} need {numel} elements, the file holds {held}",
            tensor.dims
        ));
    }
    Ok(data)
}

/// IEEE half or bfloat16 bits as a number.
fn half_to_f64(bits: u16, bfloat: bool) -> f64 {
    if bfloat {
        return f64::from(f32::from_bits(u32::from(bits) << 16));
    }
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// The bytes of an external tensor: `location` relative to the model's folder (no absolute
/// path, no `..`), `offset` and `length` inside the file, `length` equal to what the dims need.
fn read_external(
    tensor: &TensorProto,
    source: &TensorSource,
    what: &str,
    bytes: u64,
) -> Result<Vec<u8>, String> {
    let entry = |key: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let number = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{what}: external data `{key}` is `{v}`, not a number"))
            })
            .transpose()
    };
    let location =
        entry("location").ok_or_else(|| format!("{what}: external data without a `location`"))?;
    let dir = source.dir.ok_or_else(|| {
        format!("{what}: external data `{location}` cannot be read for a model read from memory")
    })?;
    let relative = Path::new(location);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{what}: external data location `{location}` leaves the model's folder; it must be a \
             relative path without `..`"
        ));
    }
    let path = dir.join(relative);
    let mut file = std::fs::File::open(&path)
        .map_err(|e| format!("{what}: external data {}: {e}", path.display()))?;
    let size = file
        .metadata()
        .map_err(|e| format!("{what}: external data {}: {e}", path.display()))?
        .len();
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?.unwrap_or(size.saturating_sub(offset));
    if length != bytes {
        return Err(format!(
            "{what}: dims {:?} need {} of data, external data `{location}` gives {}",
            tensor.dims,
            format_bytes(bytes),
            format_bytes(length)
        ));
    }
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!(
            "{what}: external data `{location}` is {}, too short for {} at offset {offset}",
            format_bytes(size),
            format_bytes(length)
        ));
    }
    let mut raw = vec![0u8; length as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut raw))
        .map_err(|e| format!("{what}: external data {}: {e}", path.display()))?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::half_to_f64;

    #[test]
    fn half_precision_bits_decode() {
        assert_eq!(half_to_f64(0x3c00, false), 1.0);
        assert_eq!(half_to_f64(0xc000, false), -2.0);
        assert_eq!(half_to_f64(0x0001, false), 2f64.powi(-24));
        assert_eq!(half_to_f64(0x7c00, false), f64::INFINITY);
        assert_eq!(half_to_f64(0x3f80, true), 1.0);
        assert_eq!(half_to_f64(0xc040, true), -3.0);
    }
}
