//! burn-flex's thread count, in a test binary of its own: rayon's global pool is sized once
//! per process, so this is the process's only test and its first parallel work.

use dlbench_burn::BurnBackend;
use dlbench_core::{Backend, Error, GraphBuilder, Mode, Model, PrepareOptions, Tensor, Values};

fn model() -> Model {
    let mut b = GraphBuilder::new("dense");
    b.data_input("x", &[64]).unwrap();
    let y = b.dense(Some("out"), "x", 64, true).unwrap();
    Model::initialized(b.finish(&[&y]).unwrap(), 1).unwrap()
}

fn options(threads: usize) -> PrepareOptions {
    PrepareOptions {
        threads,
        ..PrepareOptions::default()
    }
}

#[test]
fn threads_are_applied_once_and_a_different_count_is_refused() {
    assert!(BurnBackend.prepare(&model(), &options(0)).is_err());

    let mut session = BurnBackend.prepare(&model(), &options(3)).unwrap();
    assert_eq!(dlbench_burn::threads(), 3);
    assert_eq!(rayon::current_num_threads(), 3);
    let x = Tensor::f32(vec![256, 64], vec![0.5; 256 * 64]).unwrap();
    session.load(&Values::from([("x".to_string(), x)])).unwrap();
    session.forward(Mode::Inference).unwrap();
    // burn computed on that pool; it has not been rebuilt at another size.
    assert_eq!(rayon::current_num_threads(), 3);

    // The same count again is fine; another is an error, not silently ignored.
    BurnBackend.prepare(&model(), &options(3)).unwrap();
    match BurnBackend.prepare(&model(), &options(1)) {
        Err(Error::Backend { backend, message }) => {
            assert_eq!(backend, "burn");
            assert!(message.contains("already runs 3"), "{message}");
        }
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("a second thread count was accepted"),
    }
    assert_eq!(dlbench_burn::threads(), 3);
}
