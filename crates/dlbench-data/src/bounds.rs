//! The shared limits of `dlbench_core::limits` as the data loaders apply them, and the check
//! that loaded data is finite: a NaN or an infinity in a file would silently turn every loss
//! into NaN, so it is refused as bad input where it is read, naming where it sits.

use std::io::{ErrorKind, Read};

use dlbench_core::limits::Limits;
use dlbench_core::{Data, Tensor};

use crate::error::Result;

/// Reads as many bytes as there are, up to `buf.len()` (fewer only at the end of the input).
pub(crate) fn read_up_to(source: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The limits in force (`Limits::from_env`), for the entry points that do not take them.
pub(crate) fn env_limits() -> Result<Limits> {
    Ok(Limits::from_env()?)
}

/// Why `value` cannot be data, or `None` when it can: data is trained in f32, so a finite
/// f64 beyond f32's range would become an infinity too.
pub(crate) fn not_data(value: f64) -> Option<String> {
    if value.is_nan() {
        Some("NaN".to_string())
    } else if value.is_infinite() {
        Some(format!("{value}"))
    } else if !(value as f32).is_finite() {
        Some(format!(
            "{value:e}, beyond the f32 range (±3.4e38) data is used in"
        ))
    } else {
        None
    }
}

/// The explanation that follows a refused value.
pub(crate) const NOT_FINITE: &str =
    "data must be finite numbers (NaN and infinities are refused; clean or impute them first)";

/// Refuses a float tensor holding a value that is not finite in f32, naming its flat
/// (row-major) index; integer tensors always pass.
pub(crate) fn check_finite(tensor: &Tensor) -> std::result::Result<(), String> {
    let bad = match tensor.data() {
        Data::F32(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|i| (i, f64::from(v[i]))),
        Data::F64(v) => v
            .iter()
            .position(|&x| not_data(x).is_some())
            .map(|i| (i, v[i])),
        Data::I64(_) => None,
    };
    match bad {
        None => Ok(()),
        Some((index, value)) => Err(format!(
            "the value at flat index {index} is {}: {NOT_FINITE}",
            not_data(value).unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_values_pass_and_others_are_located() {
        assert!(check_finite(&Tensor::f32(vec![2], vec![1.0, -2.0]).unwrap()).is_ok());
        assert!(check_finite(&Tensor::i64(vec![1], vec![i64::MAX]).unwrap()).is_ok());
        let err = check_finite(&Tensor::f64(vec![3], vec![0.0, 1.0, f64::NAN]).unwrap());
        assert!(err
            .unwrap_err()
            .starts_with("the value at flat index 2 is NaN"));
        let err = check_finite(&Tensor::f64(vec![1], vec![1e39]).unwrap()).unwrap_err();
        assert!(err.contains("1e39, beyond the f32 range"), "{err}");
        let err = check_finite(&Tensor::f32(vec![2], vec![0.0, f32::NEG_INFINITY]).unwrap());
        assert!(err.unwrap_err().contains("index 1 is -inf"));
    }
}
