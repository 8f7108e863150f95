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

/// Per-feature mean and standard deviation (scikit-learn's `StandardScaler`: population
/// variance). Fit it on the training split and apply it to every split, so the validation data
/// never leaks into the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean of each element of a sample, flattened row-major.
    pub mean: Vec<f64>,
    /// Population standard deviation of each element, same layout as `mean`.
    pub std: Vec<f64>,
}

impl Standardizer {
    /// The statistics of each element of a sample over the rows of `features`.
    pub fn fit(features: &Tensor) -> Result<Standardizer> {
        let rows = features.shape().first().copied().unwrap_or(0);
        if rows == 0 {
            return Err(Error::invalid(
                "cannot standardize with statistics of zero samples",
            ));
        }
        let width = features.len() / rows;
        if width == 0 {
            return Err(Error::invalid(format!(
                "cannot standardize samples of shape {:?}: they hold no values",
                &features.shape()[1..]
            )));
        }
        let values = features.to_f64_vec();
        let mut mean = vec![0.0; width];
        for row in values.chunks_exact(width) {
            mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var = vec![0.0; width];
        for row in values.chunks_exact(width) {
            for ((v, x), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        // A constant feature keeps its values centred rather than becoming NaN (sklearn too).
        let std = var
            .iter()
            .map(|v| (v / rows as f64).sqrt())
            .map(|s| if s > 0.0 { s } else { 1.0 })
            .collect();
        Ok(Standardizer { mean, std })
    }

    /// `(x - mean) / std`, feature by feature.
    pub fn apply(&self, features: &Tensor) -> Result<Tensor> {
        let width = self.mean.len();
        let sample: usize = features.shape().iter().skip(1).product();
        if sample != width {
            return Err(Error::invalid(format!(
                "the standardizer was fit on samples of {width} values, these have {sample}"
            )));
        }
        let data = features
            .to_f64_vec()
            .chunks_exact(width.max(1))
            .flat_map(|row| {
                row.iter()
                    .zip(self.mean.iter().zip(&self.std))
                    .map(|(x, (m, s))| ((x - m) / s) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Tensor::f32(features.shape().to_vec(), data)?)
    }
}

/// Multiplies every feature by `factor` (e.g. pixel values 0..255 by 1/255).
pub fn scale(data: Dataset, factor: f64) -> Dataset {
    let values = data
        .features
        .to_f64_vec()
        .iter()
        .map(|x| (x * factor) as f32)
        .collect();
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
        let s = Standardizer::fit(&train).unwrap();
        assert_eq!(s.mean, [2.0, 5.0]);
        assert_eq!(s.std[1], 1.0, "a constant feature keeps unit scale");
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
