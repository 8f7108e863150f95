//! Moving tensors across the boundary: host [`dlbench_core::Tensor`]s to candle tensors on a
//! device and back, and candle's errors to [`Error::Backend`].

use candle_core::{DType as CDType, Device as CDevice, Tensor as CTensor};
use dlbench_core::{Data, Error, Result, Tensor};

use crate::NAME;

/// A candle error as dlbench's, saying what was being done.
pub(crate) fn candle_error(what: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Backend {
        backend: NAME.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// A host tensor on `device`: floats as f32 (the precision this backend computes in, as a
/// PyTorch model does by default), labels as i64.
pub(crate) fn to_candle(tensor: &Tensor, device: &CDevice) -> Result<CTensor> {
    let shape = tensor.shape().to_vec();
    let made = match tensor.data() {
        Data::F32(v) => CTensor::from_slice(v, shape, device),
        Data::F64(v) => {
            let narrowed: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            CTensor::from_vec(narrowed, shape, device)
        }
        Data::I64(v) => CTensor::from_slice(v, shape, device),
    };
    made.map_err(candle_error("copying a tensor to candle"))
}

/// A candle tensor copied back to the host: floating dtypes as f32, integer dtypes as i64.
/// Detached first, so that reading a value never touches the autograd graph.
pub(crate) fn to_host(tensor: &CTensor) -> Result<Tensor> {
    let what = "copying a tensor back from candle";
    let shape = tensor.dims().to_vec();
    let flat = tensor
        .detach()
        .to_device(&CDevice::Cpu)
        .and_then(|t| t.flatten_all())
        .map_err(candle_error(what))?;
    if tensor.dtype().is_int() {
        let data = flat
            .to_dtype(CDType::I64)
            .and_then(|t| t.to_vec1::<i64>())
            .map_err(candle_error(what))?;
        Tensor::i64(shape, data)
    } else {
        let data = flat
            .to_dtype(CDType::F32)
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle_error(what))?;
        Tensor::f32(shape, data)
    }
}
