//! Moving tensors across the boundary: host [`dlbench_core::Tensor`]s to libtorch tensors on a
//! device and back, and libtorch errors to [`Error::Backend`].

use dlbench_core::{DType, Data, Device, Error, Result, Tensor};
use tch::{Kind, TchError};

use crate::NAME;

/// A libtorch error as dlbench's, saying what was being done.
pub(crate) fn torch_error(what: &str) -> impl Fn(TchError) -> Error + '_ {
    move |e| Error::Backend {
        backend: NAME.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// The libtorch device for a dlbench device.
pub(crate) fn device(device: Device) -> tch::Device {
    match device {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda(i) => tch::Device::Cuda(i),
    }
}

/// A host tensor on `device`: floats as f32 (the precision this backend computes in, as a
/// PyTorch model does by default), labels as i64.
pub(crate) fn to_torch(tensor: &Tensor, on: tch::Device) -> Result<tch::Tensor> {
    let shape = dims(tensor.shape())?;
    let what = "copying a tensor to libtorch";
    let flat = match tensor.data() {
        Data::F32(v) => tch::Tensor::f_from_slice(v),
        Data::F64(v) => {
            let narrowed: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            tch::Tensor::f_from_slice(&narrowed)
        }
        Data::I64(v) => tch::Tensor::f_from_slice(v),
    }
    .map_err(torch_error(what))?;
    // A fresh tensor of its own (not a view of `flat`), so that a parameter made from it is a
    // plain leaf that the optimizer updates in place.
    let kind = flat.f_kind().map_err(torch_error(what))?;
    let mut fresh =
        tch::Tensor::f_empty(shape.as_slice(), (kind, on)).map_err(torch_error(what))?;
    let src = flat.f_view(shape.as_slice()).map_err(torch_error(what))?;
    fresh.f_copy_(&src).map_err(torch_error(what))?;
    Ok(fresh)
}

/// A libtorch tensor copied back to the host: floating kinds as f32, integer kinds as i64.
/// Detached first, so that reading a value never touches the autograd graph.
pub(crate) fn to_host(tensor: &tch::Tensor) -> Result<Tensor> {
    let what = "copying a tensor back from libtorch";
    let shape: Vec<usize> = tensor
        .size()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let kind = tensor.f_kind().map_err(torch_error(what))?;
    let integer = matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64 | Kind::Bool
    );
    let (target, dtype) = if integer {
        (Kind::Int64, DType::I64)
    } else {
        (Kind::Float, DType::F32)
    };
    let host = tensor
        .f_detach()
        .and_then(|t| t.f_to_device(tch::Device::Cpu))
        .and_then(|t| t.f_to_kind(target))
        .and_then(|t| t.f_contiguous())
        .map_err(torch_error(what))?;
    let n = host.numel();
    match dtype {
        DType::I64 => {
            let mut data = vec![0i64; n];
            host.f_copy_data(&mut data, n).map_err(torch_error(what))?;
            Tensor::i64(shape, data)
        }
        DType::F32 | DType::F64 => {
            let mut data = vec![0f32; n];
            host.f_copy_data(&mut data, n).map_err(torch_error(what))?;
            Tensor::f32(shape, data)
        }
    }
}

/// A shape as libtorch's i64 sizes.
pub(crate) fn dims(shape: &[usize]) -> Result<Vec<i64>> {
    shape
        .iter()
        .map(|&d| {
            i64::try_from(d).map_err(|_| Error::invalid(format!("dimension {d} is too large")))
        })
        .collect()
}
