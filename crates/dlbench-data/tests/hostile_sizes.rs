//! Requests whose sizes overflow or exceed the memory limit must be refused by name before
//! anything is generated or allocated: synthetic datasets of absurd sample counts or shapes,
//! and preprocessing steps (sliding windows, upsampling, reshape) that would multiply the data.
//!
//! These run under the limits of the environment; no test here sets a variable, and the sizes
//! asked for are beyond any machine's memory.

use dlbench_core::Tensor;
use dlbench_data::preprocess::{reshape, upsample, windows, Rescaler};
use dlbench_data::{synthetic, Dataset};

const TRILLION: usize = 1_000_000_000_000;

#[test]
fn synthetic_datasets_too_large_for_memory_are_refused_by_samples() {
    let results = [
        synthetic::classification(TRILLION, &[4], 3, 0),
        synthetic::binary(TRILLION, &[4], 0),
        synthetic::regression(TRILLION, &[4], 0),
        synthetic::sequence(TRILLION, 10, 2, 0),
        synthetic::reconstruction(TRILLION, &[4], 0),
    ];
    for result in results {
        let err = result.unwrap_err().to_string();
        assert!(
            err.starts_with("samples: 1000000000000 samples of ")
                && err.contains("over the memory limit")
                && err.contains("DLBENCH_MAX_MEMORY"),
            "{err}"
        );
    }
}

#[test]
fn synthetic_sizes_that_overflow_are_refused() {
    let err = synthetic::binary(usize::MAX, &[4], 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("samples: 18446744073709551615 samples of 4 values each are more values"),
        "{err}"
    );
    let err = synthetic::regression(10, &[1 << 32, 1 << 32, 2], 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has more values than can be counted"), "{err}");
    let err = synthetic::classification(10, &[1 << 20], 1 << 50, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("over the memory limit"), "{err}");
    let err = synthetic::sequence(10, usize::MAX, 2, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more values than can be counted"), "{err}");
}

#[test]
fn windows_that_would_multiply_the_series_past_memory_are_refused() {
    // 2 million values in windows of a million: a million windows, 10^12 values.
    let series = vec![0.0; 2_000_000];
    let err = windows(&series, 1_000_000).unwrap_err().to_string();
    assert!(
        err.starts_with("length 1000000: 1000000 samples of shape [1000000] needs"),
        "{err}"
    );
    let err = windows(&series, TRILLION).unwrap_err().to_string();
    assert!(err.contains("need a series longer than that"), "{err}");
}

fn images() -> Dataset {
    Dataset::new(Tensor::f32(vec![2, 1, 2, 2], vec![0.0; 8]).unwrap(), None).unwrap()
}

#[test]
fn upsampling_and_reshaping_check_their_sizes() {
    let err = upsample(images(), usize::MAX).unwrap_err().to_string();
    assert!(err.contains("larger than can be counted"), "{err}");
    let err = upsample(images(), 1 << 20).unwrap_err().to_string();
    assert!(
        err.starts_with("factor 1048576: 2 samples of shape [1, 2097152, 2097152] needs"),
        "{err}"
    );
    let err = reshape(images(), &[1 << 32, 1 << 32, 1 << 32])
        .unwrap_err()
        .to_string();
    assert!(err.contains("more values than can be counted"), "{err}");
    let empty = Dataset::new(Tensor::f32(vec![2, 1, 0, 2], vec![]).unwrap(), None).unwrap();
    assert!(upsample(empty.clone(), 2).is_err());
    let err = Rescaler::standard(&empty.features).unwrap_err().to_string();
    assert!(err.contains("they hold no values"), "{err}");
}
