//! The preprocessing steps spec files use: standardize, scale, reshape and sliding windows.

use dlbench_core::limits::{bytes_of, checked_numel};
use dlbench_core::Tensor;

use crate::bounds::env_limits;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Counts `rows` samples of `sample` values, refusing a count that overflows or whose f32
/// values (`bytes_per_value` bytes each while built) exceed the memory limit; `what` names the
/// step and its argument in the error.
fn values(what: &str, rows: usize, sample: &[usize], bytes_per_value: usize) -> Result<usize> {
    let n = checked_numel(sample)
        .and_then(|width| width.checked_mul(rows))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{what}: {rows} samples of shape {sample:?} are more values than can be counted"
            ))
        })?;
    env_limits()?.check_memory(
        &format!("{what}: {rows} samples of shape {sample:?}"),
        bytes_of(n, bytes_per_value),
    )?;
    Ok(n)
}

/// A per-feature affine rescaling, `(x - shift) / divisor`, fitted on the training split and
/// applied to every split, so held-out data never leaks into the statistics:
/// [`Rescaler::standard`] (scikit-learn's `StandardScaler`, population variance) or
/// [`Rescaler::min_max`] (`MinMaxScaler` into [0, 1]). Missing values (NaN) are left out of
/// the statistics and stay missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescaler {
    /// Subtracted from each element of a sample, flattened row-major: the mean or the minimum.
    pub shift: Vec<f64>,
    /// Then divided by: the standard deviation or the range; 1 for a constant feature, which
    /// keeps its values centred rather than becoming NaN (scikit-learn does the same).
    pub divisor: Vec<f64>,
}

/// The present (non-NaN) values of each element of a sample over the rows of `features`.
struct Columns {
    width: usize,
    values: Vec<f64>,
}

impl Columns {
    fn of(features: &Tensor, what: &str) -> Result<Columns> {
        let rows = features.shape().first().copied().unwrap_or(0);
        if rows == 0 {
            return Err(Error::invalid(format!(
                "cannot {what} with statistics of zero samples"
            )));
        }
        let width = features.len() / rows;
        if width == 0 {
            return Err(Error::invalid(format!(
                "cannot {what} samples of shape {:?}: they hold no values",
                &features.shape()[1..]
            )));
        }
        Ok(Columns {
            width,
            values: features.to_f64_vec(),
        })
    }

    /// `f` folded over each column's present values, with their count.
    fn fold(&self, init: f64, f: impl Fn(f64, f64) -> f64) -> Vec<(f64, usize)> {
        let mut acc = vec![(init, 0usize); self.width];
        for row in self.values.chunks_exact(self.width) {
            for ((a, n), &x) in acc.iter_mut().zip(row) {
                if !x.is_nan() {
                    *a = f(*a, x);
                    *n += 1;
                }
            }
        }
        acc
    }
}

fn unit_if_zero(d: f64) -> f64 {
    if d > 0.0 && d.is_finite() {
        d
    } else {
        1.0
    }
}

impl Rescaler {
    /// Standardization: the mean and population standard deviation of each element.
    pub fn standard(features: &Tensor) -> Result<Rescaler> {
        let columns = Columns::of(features, "standardize")?;
        let mean: Vec<f64> = columns
            .fold(0.0, |a, x| a + x)
            .into_iter()
            .map(|(sum, n)| if n > 0 { sum / n as f64 } else { 0.0 })
            .collect();
        let mut var = vec![(0.0, 0usize); columns.width];
        for row in columns.values.chunks_exact(columns.width) {
            for ((v, m), &x) in var.iter_mut().zip(&mean).zip(row) {
                if !x.is_nan() {
                    v.0 += (x - m) * (x - m);
                    v.1 += 1;
                }
            }
        }
        let divisor = var
            .into_iter()
            .map(|(v, n)| unit_if_zero((v / n.max(1) as f64).sqrt()))
            .collect();
        Ok(Rescaler {
            shift: mean,
            divisor,
        })
    }

    /// Min-max scaling: each element's training minimum maps to 0 and its maximum to 1.
    pub fn min_max(features: &Tensor) -> Result<Rescaler> {
        let columns = Columns::of(features, "min-max scale")?;
        let min = columns.fold(f64::INFINITY, f64::min);
        let max = columns.fold(f64::NEG_INFINITY, f64::max);
        let shift: Vec<f64> = min
            .iter()
            .map(|&(m, n)| if n > 0 { m } else { 0.0 })
            .collect();
        let divisor = max
            .iter()
            .zip(&shift)
            .map(|(&(hi, _), lo)| unit_if_zero(hi - lo))
            .collect();
        Ok(Rescaler { shift, divisor })
    }

    /// `(x - shift) / divisor`, feature by feature.
    pub fn apply(&self, features: &Tensor) -> Result<Tensor> {
        let width = self.shift.len();
        let sample: usize = features.shape().iter().skip(1).product();
        if sample != width {
            return Err(Error::invalid(format!(
                "the scaler was fit on samples of {width} values, these have {sample}"
            )));
        }
        let data = features
            .to_f64_vec()
            .chunks_exact(width.max(1))
            .flat_map(|row| {
                row.iter()
                    .zip(self.shift.iter().zip(&self.divisor))
                    .map(|(x, (m, s))| ((x - m) / s) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Tensor::f32(features.shape().to_vec(), data)?)
    }
}

/// Multiplies every feature by `factor` (e.g. pixel values 0..255 by 1/255).
pub fn scale(data: Dataset, factor: f64) -> Dataset {
    // Straight from f32 where it can: an f64 copy of 60,000 images is 376 MB.
    let values = match data.features.as_f32() {
        Some(v) => v.iter().map(|&x| (f64::from(x) * factor) as f32).collect(),
        None => data
            .features
            .to_f64_vec()
            .iter()
            .map(|x| (x * factor) as f32)
            .collect(),
    };
    let features = Tensor::f32(data.features.shape().to_vec(), values).expect("same shape");
    Dataset { features, ..data }
}

/// Gives each sample a new shape with the same number of values (e.g. 64 to 1x8x8).
pub fn reshape(data: Dataset, sample_shape: &[usize]) -> Result<Dataset> {
    let (n, from) = (data.len(), data.sample_shape().to_vec());
    let have = checked_numel(&from).unwrap_or(usize::MAX);
    let want = checked_numel(sample_shape).ok_or_else(|| {
        Error::invalid(format!(
            "cannot reshape into {sample_shape:?}: more values than can be counted"
        ))
    })?;
    if have != want {
        return Err(Error::invalid(format!(
            "cannot reshape samples of shape {from:?} ({have} values) into {sample_shape:?} \
             ({want} values)"
        )));
    }
    let shape = std::iter::once(n)
        .chain(sample_shape.iter().copied())
        .collect();
    let features = data.features.reshape(shape)?;
    Ok(Dataset { features, ..data })
}

/// Enlarges `[C, H, W]` samples by an integer `factor` along H and W, repeating each pixel
/// (nearest neighbour), e.g. 8x8 digits to the 32x32 input of a LeNet-style network.
pub fn upsample(data: Dataset, factor: usize) -> Result<Dataset> {
    let &[c, h, w] = data.sample_shape() else {
        return Err(Error::invalid(format!(
            "upsampling needs samples of shape [C, H, W], got {:?}",
            data.sample_shape()
        )));
    };
    if factor == 0 {
        return Err(Error::invalid("the upsampling factor must be positive"));
    }
    if c == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(format!(
            "upsampling needs samples that hold values, got [{c}, {h}, {w}]"
        )));
    }
    let (oh, ow) = match (h.checked_mul(factor), w.checked_mul(factor)) {
        (Some(oh), Some(ow)) => (oh, ow),
        _ => {
            return Err(Error::invalid(format!(
                "factor {factor}: samples of {h}x{w} would be larger than can be counted"
            )))
        }
    };
    let n = values(&format!("factor {factor}"), data.len(), &[c, oh, ow], 4)?;
    let src = data.features.to_f64_vec();
    let mut out = Vec::with_capacity(n);
    for plane in src.chunks_exact(h * w) {
        for y in 0..oh {
            let row = &plane[(y / factor) * w..(y / factor + 1) * w];
            out.extend((0..ow).map(|x| row[x / factor] as f32));
        }
    }
    let features = Tensor::f32(vec![data.len(), c, oh, ow], out)?;
    Ok(Dataset { features, ..data })
}

/// One column of a `[rows, columns]` (or `[rows]`) feature tensor, as a series.
pub fn column(features: &Tensor, index: usize) -> Result<Vec<f64>> {
    let (rows, width) = match features.shape() {
        [rows] => (*rows, 1),
        [rows, width] => (*rows, *width),
        shape => {
            return Err(Error::invalid(format!(
                "a series needs features [rows] or [rows, columns], got {shape:?}"
            )))
        }
    };
    if index >= width {
        return Err(Error::invalid(format!(
            "column {index} is out of range for {width} columns"
        )));
    }
    let values = features.to_f64_vec();
    Ok((0..rows).map(|r| values[r * width + index]).collect())
}

/// Sliding windows over a series: sample `i` is `series[i..i + length]` shaped `[length, 1]`
/// (time steps of one feature, as an LSTM reads them), and its target is 1.0 when the next
/// value is higher than the window's last, else 0.0, as f32 `[n, 1]`. `n = len - length`.
pub fn windows(series: &[f64], length: usize) -> Result<Dataset> {
    if length == 0 || series.len() <= length {
        return Err(Error::invalid(format!(
            "windows of length {length} need a series longer than that, got {} values",
            series.len()
        )));
    }
    let n = series.len() - length;
    // Windows overlap: n windows of `length` values can be far more than the series.
    values(&format!("length {length}"), n, &[length], 4)?;
    let features = series
        .windows(length)
        .take(n)
        .flatten()
        .map(|&x| x as f32)
        .collect();
    let targets = (0..n)
        .map(|i| f32::from(u8::from(series[i + length] > series[i + length - 1])))
        .collect();
    Dataset::new(
        Tensor::f32(vec![n, length, 1], features)?,
        Some(Tensor::f32(vec![n, 1], targets)?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_repeats_each_pixel() {
        let features = Tensor::f32(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let data = Dataset::new(features, None).unwrap();
        let up = upsample(data, 2).unwrap();
        assert_eq!(up.sample_shape(), &[1, 4, 4]);
        assert_eq!(
            up.features.as_f32().unwrap(),
            &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]
        );
        let flat = Dataset::new(Tensor::f32(vec![1, 4], vec![0.0; 4]).unwrap(), None).unwrap();
        assert!(upsample(flat, 2)
            .unwrap_err()
            .to_string()
            .contains("[C, H, W]"));
    }

    #[test]
    fn standardizer_uses_the_statistics_it_was_fit_on() {
        let train = Tensor::f32(vec![3, 2], vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap();
        let s = Rescaler::standard(&train).unwrap();
        assert_eq!(s.shift, [2.0, 5.0]);
        assert_eq!(s.divisor[1], 1.0, "a constant feature keeps unit scale");
        let out = s.apply(&train).unwrap();
        let expected = (2.0f64 / 3.0).sqrt().recip() as f32;
        assert_eq!(
            out.as_f32().unwrap(),
            [-expected, 0.0, 0.0, 0.0, expected, 0.0]
        );
        let validation = Tensor::f32(vec![1, 2], vec![2.0, 6.0]).unwrap();
        assert_eq!(s.apply(&validation).unwrap().as_f32().unwrap(), [0.0, 1.0]);
        assert!(s
            .apply(&Tensor::f32(vec![1, 3], vec![0.0; 3]).unwrap())
            .is_err());
    }

    #[test]
    fn min_max_maps_the_training_range_to_0_1_and_skips_missing_values() {
        let train = Tensor::f32(vec![3, 2], vec![1.0, 5.0, 3.0, f32::NAN, 2.0, 5.0]).unwrap();
        let s = Rescaler::min_max(&train).unwrap();
        assert_eq!(
            (s.shift.clone(), s.divisor.clone()),
            (vec![1.0, 5.0], vec![2.0, 1.0])
        );
        let out = s.apply(&train).unwrap();
        let out = out.as_f32().unwrap();
        assert_eq!([out[0], out[2], out[4]], [0.0, 1.0, 0.5]);
        assert!(out[3].is_nan(), "a missing value stays missing");
        // Held-out data is scaled with the training range, so it may leave [0, 1].
        let validation = Tensor::f32(vec![1, 2], vec![5.0, 6.0]).unwrap();
        assert_eq!(s.apply(&validation).unwrap().as_f32().unwrap(), [2.0, 1.0]);
        let standard = Rescaler::standard(&train).unwrap();
        assert_eq!(standard.shift, [2.0, 5.0]);
    }

    #[test]
    fn scale_and_reshape_keep_targets() {
        let features = Tensor::f32(vec![2, 4], (0..8).map(|x| x as f32).collect()).unwrap();
        let targets = Tensor::i64(vec![2], vec![0, 1]).unwrap();
        let data = Dataset::new(features, Some(targets.clone())).unwrap();
        let data = scale(data, 0.5);
        assert_eq!(data.features.as_f32().unwrap()[7], 3.5);
        let data = reshape(data, &[1, 2, 2]).unwrap();
        assert_eq!(data.features.shape(), [2, 1, 2, 2]);
        assert_eq!(data.targets, Some(targets));
        let err = reshape(data, &[3]).unwrap_err().to_string();
        assert!(
            err.contains("[1, 2, 2] (4 values) into [3] (3 values)"),
            "{err}"
        );
    }

    #[test]
    fn windows_predict_whether_the_next_value_rises() {
        let data = windows(&[1.0, 3.0, 2.0, 5.0, 5.0], 2).unwrap();
        assert_eq!(data.features.shape(), [3, 2, 1]);
        assert_eq!(
            data.features.as_f32().unwrap(),
            [1.0, 3.0, 3.0, 2.0, 2.0, 5.0]
        );
        let targets = data.targets.unwrap();
        assert_eq!(targets.shape(), [3, 1]);
        assert_eq!(targets.as_f32().unwrap(), [0.0, 1.0, 0.0]);
        assert!(windows(&[1.0, 2.0], 2).is_err());
    }

    #[test]
    fn column_picks_one_series() {
        let table = Tensor::f32(vec![3, 2], vec![1700.0, 5.0, 1701.0, 11.0, 1702.0, 16.0]).unwrap();
        assert_eq!(column(&table, 1).unwrap(), [5.0, 11.0, 16.0]);
        assert!(column(&table, 2).is_err());
    }
}
