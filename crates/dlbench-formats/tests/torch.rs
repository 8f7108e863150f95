//! Files dlbench writes, read by real torch: `torch.load(path, weights_only=True)` (and with
//! `mmap=True`) must give an `OrderedDict` with the same keys, dtypes, shapes and values.
//! Needs a torch Python ($DLBENCH_PYTHON or .venv/bin/python); skipped, saying so, without.

mod support;

use std::path::Path;

use dlbench_core::ir::{Conv2d, Direction, Lstm};
use dlbench_core::{GraphBuilder, Model, Tensor};
use dlbench_formats::pytorch::{export_state_dict, write_state_dict};
use dlbench_testkit::python::torch_python;
use serde_json::Value;
use support::{assert_matches, golden, temp_dir};

fn torch_load(python: &Path, path: &Path) -> Value {
    serde_json::from_str(&golden(python, "load", path)).unwrap()
}

fn assert_torch_reads(python: &Path, path: &Path, tensors: &[(String, Tensor)]) {
    let loaded = torch_load(python, path);
    let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        loaded["keys"],
        serde_json::json!(keys),
        "{}",
        path.display()
    );
    for (key, tensor) in tensors {
        let got = &loaded["tensors"][key];
        assert_eq!(got["contiguous"], true, "{key}");
        assert_matches(key, tensor, got);
    }
}

#[test]
fn torch_loads_what_dlbench_writes() {
    let Some(python) = torch_python() else {
        return;
    };
    let dir = temp_dir("torch-load");
    let tensors = vec![
        (
            "f32".to_string(),
            Tensor::f32(
                vec![2, 4],
                vec![
                    1.5,
                    -0.0,
                    f32::INFINITY,
                    f32::NAN,
                    f32::MIN_POSITIVE,
                    3e38,
                    -7.25,
                    0.1,
                ],
            )
            .unwrap(),
        ),
        (
            "f64".to_string(),
            Tensor::f64(vec![3], vec![0.1, -1e300, f64::EPSILON]).unwrap(),
        ),
        (
            "i64".to_string(),
            Tensor::i64(vec![2, 2], vec![i64::MIN, -1, 1 << 40, i64::MAX]).unwrap(),
        ),
        (
            "scalar".to_string(),
            Tensor::f32(vec![], vec![2.5]).unwrap(),
        ),
        (
            "empty".to_string(),
            Tensor::f32(vec![0, 3], vec![]).unwrap(),
        ),
        (
            "empty_i64".to_string(),
            Tensor::i64(vec![0], vec![]).unwrap(),
        ),
        (
            "big".to_string(),
            Tensor::f32(vec![70, 300], (0..21000).map(|i| i as f32 * 0.5).collect()).unwrap(),
        ),
    ];
    // A plain name, and one torch would not pick as an archive folder.
    for file in ["weights.pt", "my model.v2.pt"] {
        let path = dir.join(file);
        write_state_dict(&path, &tensors).unwrap();
        assert_torch_reads(&python, &path, &tensors);
    }
}

#[test]
fn torch_loads_exported_models_with_conv_and_lstm_weights() {
    let Some(python) = torch_python() else {
        return;
    };
    let mut b = GraphBuilder::new("mixed");
    let x = b.data_input("x", &[1, 8, 8]).unwrap();
    let attrs = Conv2d {
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let c = b.conv2d(Some("conv1"), &x, 4, [3, 3], attrs, true).unwrap();
    let seq = b.data_input("seq", &[5, 3]).unwrap();
    let lstm = Lstm {
        hidden: 6,
        direction: Direction::Bidirectional,
        batch_first: true,
    };
    let [y, _, _] = b.lstm(Some("lstm"), &seq, lstm).unwrap();
    let graph = b.finish(&[&c, &y]).unwrap();
    let model = Model::initialized(graph, 11).unwrap();
    let path = temp_dir("torch-export").join("mixed.pt");
    export_state_dict(&model, &path).unwrap();
    let tensors: Vec<(String, Tensor)> = model
        .graph
        .params
        .iter()
        .map(|p| (p.value.name.clone(), model.weights[&p.value.name].clone()))
        .collect();
    assert_eq!(tensors[0].1.shape(), [4, 1, 3, 3]);
    assert_torch_reads(&python, &path, &tensors);
}
