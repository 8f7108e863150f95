//! `prepare` applies `options.threads` to candle, once per process: candle's pools read their
//! size once. This file is its own test binary (its own process), and runs one test, so that
//! no other test has started candle at another size first.

use dlbench_candle::CandleBackend;
use dlbench_core::{Backend, Error, GraphBuilder, Mode, Model, PrepareOptions, Tensor, Values};

fn model() -> Model {
    let mut b = GraphBuilder::new("dense");
    b.data_input("x", &[3]).unwrap();
    let y = b.dense(Some("out"), "x", 2, true).unwrap();
    Model::initialized(b.finish(&[&y]).unwrap(), 3).unwrap()
}

fn with_threads(threads: usize) -> PrepareOptions {
    PrepareOptions {
        threads,
        ..PrepareOptions::default()
    }
}

#[test]
fn threads_are_applied_once_and_a_change_is_an_error() {
    let zero = CandleBackend.prepare(&model(), &with_threads(0));
    assert!(matches!(zero, Err(Error::Invalid(_))));

    let mut session = CandleBackend.prepare(&model(), &with_threads(3)).unwrap();
    assert_eq!(dlbench_candle::threads(), 3);
    assert_eq!(candle_core::utils::get_num_threads(), 3);
    assert_eq!(std::env::var("RAYON_NUM_THREADS").unwrap(), "3");
    assert_eq!(std::env::var("CANDLE_NUM_THREADS").unwrap(), "3");
    // candle's own pools, where every pass runs.
    let pool = candle_core::utils::with_threadpool(rayon::current_num_threads);
    assert_eq!(pool, 3);
    assert_eq!(candle_core::utils::barrier_pool().n_workers(), 2);

    // The session runs, and the same count again is fine.
    let x = Tensor::f32(vec![2, 3], vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75]).unwrap();
    session.load(&Values::from([("x".to_string(), x)])).unwrap();
    session.forward(Mode::Inference).unwrap();
    CandleBackend.prepare(&model(), &with_threads(3)).unwrap();

    // Another count cannot be applied in this process: an error, not ignored.
    match CandleBackend.prepare(&model(), &with_threads(1)) {
        Err(Error::Backend { backend, message }) => {
            assert_eq!(backend, "candle");
            assert!(message.contains("once per process"), "{message}");
            assert!(message.contains("runs 3"), "{message}");
        }
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("a second thread count was silently accepted"),
    }
    assert_eq!(dlbench_candle::threads(), 3);
    assert!(dlbench_candle::configure_threads(2).is_err());
}
