//! The ONNX target's seeds, dictionary and protobuf-aware mutation.
//!
//! Seeds are dlbench's own export of small models (every layer the spec seeds reach, a VAE
//! with a noise input, one with its weights as external data in the model file itself) and
//! the tf2onnx files committed beside the formats' tests. Three mutations in four decode the
//! protobuf, change one to four fields (a dim to 2^62 or -1, an attribute, an op type, a
//! tensor's data or where it is, a node's wiring) and encode it again ([`mutate_model`]), so
//! that they reach the importer's checks rather than the protobuf decoder; the rest mutate the
//! bytes.

use std::path::Path;
use std::sync::OnceLock;

use dlbench_core::Model;
use dlbench_formats::onnx::proto::{DataLocation, ModelProto, StringStringEntryProto};
use dlbench_spec::Spec;
use prost::Message;

use crate::seeds::{repository, EXTRA_SPECS};

mod mutate;

pub use mutate::mutate_model;

/// Operator types: the ones the importer reads, and a few it does not.
pub const OP_TYPES: &[&str] = &[
    "LSTM",
    "Gemm",
    "MatMul",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Reshape",
    "Shape",
    "Gather",
    "Slice",
    "Concat",
    "Expand",
    "ConstantOfShape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Cast",
    "Constant",
    "Identity",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Neg",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Loop",
    "If",
    "GRU",
];

/// Attribute names the importer reads.
pub const ATTRIBUTES: &[&str] = &[
    "pads",
    "perm",
    "axes",
    "axis",
    "layout",
    "direction",
    "hidden_size",
    "kernel_shape",
    "strides",
    "dilations",
    "group",
    "auto_pad",
    "ceil_mode",
    "count_include_pad",
    "storage_order",
    "to",
    "value",
    "value_int",
    "value_ints",
    "value_float",
    "value_floats",
    "allowzero",
    "activations",
    "clip",
    "input_forget",
    "alpha",
    "beta",
    "transA",
    "transB",
    "ratio",
    "training_mode",
];

/// String attribute values and external-data keys.
const WORDS: &[&str] = &[
    "NOTSET",
    "SAME_UPPER",
    "SAME_LOWER",
    "VALID",
    "forward",
    "reverse",
    "bidirectional",
    "Tanh",
    "Sigmoid",
    "Relu",
    "location",
    "offset",
    "length",
    "checksum",
    "",
];

/// Protobuf wire bytes: varints at their limits, unterminated and overlong ones, tags of the
/// fields a model nests (graph, node, initializer, raw data), and a length of 4 GiB.
const PROTOBUF_BYTES: &[&[u8]] = &[
    b"\xff\xff\xff\xff\x0f",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x80",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    b"\x80\x80\x80\x80\x08",
    b"\x08",
    b"\x0a",
    b"\x12",
    b"\x2a",
    b"\x3a",
    b"\x42",
    b"\x4a",
    b"\x6a",
    b"\x70\x01",
    b"\x0a\xff\xff\xff\xff\x0f",
    b"\x4a\xff\xff\xff\x7f",
];

/// The dictionary: op types, attribute names, words and protobuf bytes.
pub fn tokens() -> &'static [&'static [u8]] {
    static TOKENS: OnceLock<Vec<&'static [u8]>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        OP_TYPES
            .iter()
            .chain(ATTRIBUTES)
            .chain(WORDS.iter().filter(|w| !w.is_empty()))
            .map(|w| w.as_bytes())
            .chain(PROTOBUF_BYTES.iter().copied())
            .collect()
    })
}

/// A VAE small enough to be a seed: a second input with the `normal` role (recorded in the
/// model's metadata), and a graph with three outputs.
const VAE_SPEC: &str = "model:\n  graph:\n    inputs:\n      x: [6]\n      eps: {shape: [2], role: normal}\n    nodes:\n      - {name: enc, dense: {units: 4, activation: relu}, inputs: [x]}\n      - {name: mu, dense: {units: 2}, inputs: [enc]}\n      - {name: logvar, dense: {units: 2}, inputs: [enc]}\n      - {name: half_logvar, scale: {factor: 0.5}, inputs: [logvar]}\n      - {name: std, op: exp, inputs: [half_logvar]}\n      - {name: noise, op: mul, inputs: [std, eps]}\n      - {name: z, op: add, inputs: [mu, noise]}\n      - {name: recon, dense: {units: 6, activation: sigmoid}, inputs: [z]}\n    outputs: [recon, mu, logvar]\ndata:\n  synthetic: {kind: reconstruction, samples: 8}\ntrain:\n  loss: vae_elbo\n  optimizer: {sgd: {lr: 0.01}}\n  batch_size: 4\n  steps: 1\n";

/// The seed models: the spec seeds and the small VAE.
fn seed_models() -> Vec<Model> {
    EXTRA_SPECS
        .iter()
        .chain([&VAE_SPEC])
        .filter_map(|text| Spec::parse(text, Path::new("seed.yaml")).ok())
        .filter_map(|spec| spec.build_model().ok())
        .collect()
}

/// ONNX seeds: dlbench's export of the seed models, one of them with its largest weight kept
/// as external data, and the committed tf2onnx files.
pub fn models() -> Vec<Vec<u8>> {
    let protos: Vec<ModelProto> = seed_models()
        .iter()
        .filter_map(|m| dlbench_formats::onnx::to_onnx(m).ok())
        .collect();
    let mut out: Vec<Vec<u8>> = protos.iter().map(Message::encode_to_vec).collect();
    out.extend(protos.first().and_then(with_external_data));
    for name in ["mlp", "cnn", "rnn"] {
        let path = format!("crates/dlbench-formats/tests/fixtures/keras/{name}.onnx");
        if let Ok(bytes) = std::fs::read(repository().join(path)) {
            out.push(bytes);
        }
    }
    out
}

/// `proto` with its largest initializer's data moved to the end of the file, in a field
/// protobuf skips, and read back as external data from `model.onnx` (the name the target
/// writes inputs under) at its offset.
fn with_external_data(proto: &ModelProto) -> Option<Vec<u8>> {
    let mut proto = proto.clone();
    let initializers = &mut proto.graph.as_mut()?.initializer;
    let index = (0..initializers.len()).max_by_key(|&i| initializers[i].raw_data.len())?;
    let data = std::mem::take(&mut initializers[index].raw_data);
    initializers[index].data_location = DataLocation::External as i32;
    // Field 100, length-delimited: unknown to ModelProto, skipped when decoding.
    let mut trailer = vec![0xa2, 0x06];
    prost::encoding::encode_varint(data.len() as u64, &mut trailer);
    // The offset is written in the file it points into: repeat until it stays put.
    let mut offset = 0;
    for _ in 0..8 {
        proto.graph.as_mut()?.initializer[index].external_data = vec![
            entry("location", "model.onnx"),
            entry("offset", &offset.to_string()),
            entry("length", &data.len().to_string()),
        ];
        let at = proto.encoded_len() + trailer.len();
        if at == offset {
            let mut out = proto.encode_to_vec();
            out.extend(trailer);
            out.extend(data);
            return Some(out);
        }
        offset = at;
    }
    None
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests {
    use dlbench_core::limits::Limits;

    use super::*;

    #[test]
    fn every_seed_is_a_model_the_importer_reads() {
        let dir = std::env::temp_dir().join(format!("dlbench-fuzz-onnx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.onnx");
        let seeds = models();
        // Five exports, one with external data, three tf2onnx files.
        assert_eq!(seeds.len(), 9);
        let limits = Limits::from_env().unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(&path, seed).unwrap();
            let model = dlbench_formats::onnx::import_onnx_with(&path, &limits)
                .unwrap_or_else(|e| panic!("seed {i}: {e}"));
            dlbench_core::flops::graph_flops(&model.graph).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
