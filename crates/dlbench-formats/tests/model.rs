//! Moving a dlbench model's weights to and from state_dicts: by name, by position (PyTorch's
//! own key names), and the errors when they do not fit.

mod support;

use dlbench_core::ir::{Direction, Lstm};
use std::path::Path;

use dlbench_core::{Graph, GraphBuilder, Model, Tensor};
use dlbench_formats::matching::{Mapping, MatchedBy};
use dlbench_formats::pytorch::{
    export_state_dict, import_state_dict, read_state_dict, write_state_dict,
};
use support::{fixture, temp_dir};

/// The mlp seed model: 30 -> 10 -> 10 -> 1 (activations carry no parameters).
fn mlp() -> Graph {
    let mut b = GraphBuilder::new("mlp");
    let x = b.data_input("x", &[30]).unwrap();
    let h = b.dense(None, &x, 10, true).unwrap();
    let h = b.dense(None, &h, 10, true).unwrap();
    let y = b.dense(None, &h, 1, true).unwrap();
    b.finish(&[&y]).unwrap()
}

/// The rnn seed model's parameters: LSTM(50) over 1 feature, then Dense(1).
fn rnn() -> Graph {
    let mut b = GraphBuilder::new("rnn");
    let x = b.data_input("x", &[10, 1]).unwrap();
    let lstm = Lstm {
        hidden: 50,
        direction: Direction::Forward,
        batch_first: true,
    };
    let [_, y_h, _] = b.lstm(Some("lstm"), &x, lstm).unwrap();
    let y = b.dense(Some("fc"), &y_h, 1, true).unwrap();
    b.finish(&[&y]).unwrap()
}

/// Imports with no explicit mapping; the model only.
fn import(graph: Graph, path: &Path) -> dlbench_formats::Result<Model> {
    import_state_dict(graph, path, &Mapping::new()).map(|(model, _)| model)
}

fn param_names(graph: &Graph) -> Vec<String> {
    graph.params.iter().map(|p| p.value.name.clone()).collect()
}

#[test]
fn export_writes_dlbench_names_in_parameter_order_and_import_reads_them_back() {
    let dir = temp_dir("export");
    let model = Model::initialized(rnn(), 7).unwrap();
    let path = dir.join("rnn.pt");
    export_state_dict(&model, &path).unwrap();
    let tensors = read_state_dict(&path).unwrap();
    let names: Vec<String> = tensors.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(names, param_names(&model.graph));
    assert_eq!(names[0], "lstm.w_ih");
    let back = import(rnn(), &path).unwrap();
    assert_eq!(back, model);
}

#[test]
fn import_by_name_ignores_the_file_order() {
    let dir = temp_dir("by-name");
    let model = Model::initialized(mlp(), 3).unwrap();
    // Reversed: the names match, so the order does not matter.
    let mut tensors: Vec<(String, Tensor)> = model
        .weights
        .iter()
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    tensors.reverse();
    let path = dir.join("reversed.pt");
    write_state_dict(&path, &tensors).unwrap();
    assert_eq!(import(mlp(), &path).unwrap(), model);
}

#[test]
fn torch_key_names_are_matched_by_position_once_equal_shapes_are_mapped() {
    // nn.Sequential says `0.weight`, nn.LSTM says `weight_ih_l0`: same order, same layouts.
    // Each has two biases of one shape, which position alone must not tell apart: mapping one
    // of them leaves the other alone in its shape.
    for (graph, file, old, new) in [
        (mlp(), "mlp.pt", "0.bias", "dense_1.bias"),
        (rnn(), "rnn.pt", "lstm.bias_ih_l0", "lstm.b_ih"),
    ] {
        let tensors = read_state_dict(&fixture(file)).unwrap();
        let err = import(graph.clone(), &fixture(file)).unwrap_err();
        assert!(err.to_string().contains("position alone"), "{file}: {err}");
        let mapping = Mapping::from_args([format!("{old}={new}")]).unwrap();
        let (model, matched) = import_state_dict(graph, &fixture(file), &mapping).unwrap();
        for (param, (key, tensor)) in model.graph.params.iter().zip(&tensors) {
            assert_eq!(
                &model.weights[&param.value.name], tensor,
                "{file}: {key} -> {}",
                param.value.name
            );
        }
        for m in &matched {
            // The rnn here names its Dense `fc`, as the torch module does.
            let want = if m.key == old {
                MatchedBy::Map
            } else if m.key == m.param {
                MatchedBy::Name
            } else {
                MatchedBy::Position
            };
            assert_eq!(m.how, want, "{file}: {}", m.key);
        }
    }
}

#[test]
fn a_shape_mismatch_names_the_key_and_both_shapes() {
    // The mlp's file into the rnn: same count (6), different shapes.
    let err = import(rnn(), &fixture("mlp.pt")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "mlp.pt: `0.weight`: is [10, 30] but parameter `lstm.w_ih` of graph `rnn` is [200, 1]"
        ),
        "{message}"
    );
}

#[test]
fn a_count_mismatch_lists_both_sides() {
    let dir = temp_dir("count");
    let path = dir.join("one.pt");
    write_state_dict(
        &path,
        &[("w".into(), Tensor::f32(vec![1], vec![1.0]).unwrap())],
    )
    .unwrap();
    let message = import(mlp(), &path).unwrap_err().to_string();
    assert!(
        message.contains("one.pt: holds 1 tensors (`w`)"),
        "{message}"
    );
    assert!(
        message.contains("graph `mlp` has 6 parameters"),
        "{message}"
    );
}

#[test]
fn floats_are_converted_to_the_parameter_dtype_and_ints_refused() {
    let dir = temp_dir("dtype");
    let model = Model::initialized(mlp(), 5).unwrap();
    let as_f64: Vec<(String, Tensor)> = model
        .graph
        .params
        .iter()
        .map(|p| {
            let t = &model.weights[&p.value.name];
            (p.value.name.clone(), t.to_dtype(dlbench_core::DType::F64))
        })
        .collect();
    let path = dir.join("f64.pt");
    write_state_dict(&path, &as_f64).unwrap();
    assert_eq!(import(mlp(), &path).unwrap(), model);

    let mut as_i64 = as_f64.clone();
    as_i64[1].1 = as_i64[1].1.to_dtype(dlbench_core::DType::I64);
    write_state_dict(&path, &as_i64).unwrap();
    let message = import(mlp(), &path).unwrap_err().to_string();
    assert!(message.contains("is i64 but parameter"), "{message}");
}
