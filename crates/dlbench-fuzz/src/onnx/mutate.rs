//! The protobuf-aware mutation of ONNX models: decode, change one to four fields (dims,
//! tensors and where their data is, attributes, op types, wiring, opsets, metadata), encode.

use dlbench_formats::onnx::proto::{
    AttributeProto, AttributeType, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, ValueInfoProto,
};
use prost::Message;

use super::{entry, ATTRIBUTES, OP_TYPES, WORDS};
use crate::mutate::{Rng, MAX_INPUT};

/// Integers that overflow, wrap, go negative or ask for more than any file holds.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    -2,
    7,
    255,
    1_000_000_000,
    i32::MAX as i64,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 62,
    -(1 << 62),
    i64::MAX,
    i64::MIN,
];

/// Input `bytes`, decoded as a model, with one to four fields mutated and encoded again; `None`
/// if the bytes are not a model.
pub fn mutate_model(rng: &mut Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut model = ModelProto::decode(bytes).ok()?;
    let count = 1 + rng.bits().trailing_zeros().min(3);
    for _ in 0..count {
        match rng.below(16) {
            0 => mutate_opset(rng, &mut model),
            1 => mutate_metadata(rng, &mut model),
            _ => mutate_graph(rng, model.graph.get_or_insert_with(GraphProto::default)),
        }
    }
    let mut out = model.encode_to_vec();
    out.truncate(MAX_INPUT);
    Some(out)
}

/// An element of `items`, if it has one.
fn some<'a, T>(rng: &mut Rng, items: &'a mut [T]) -> Option<&'a mut T> {
    match items.len() {
        0 => None,
        n => Some(&mut items[rng.below(n)]),
    }
}

fn interesting(rng: &mut Rng) -> i64 {
    match rng.below(4) {
        0 => rng.below(10) as i64 - 2,
        _ => *rng.pick(INTERESTING),
    }
}

fn word(rng: &mut Rng, words: &[&str]) -> String {
    rng.pick(words).to_string()
}

fn mutate_opset(rng: &mut Rng, model: &mut ModelProto) {
    if model.opset_import.is_empty() || rng.one_in(8) {
        model.opset_import.push(OperatorSetIdProto::default());
    }
    let Some(opset) = some(rng, &mut model.opset_import) else {
        return;
    };
    match rng.below(4) {
        0 => opset.domain = word(rng, &["", "ai.onnx", "com.microsoft", "ai.onnx.ml"]),
        1 => opset.version = interesting(rng),
        _ => opset.version = *rng.pick(&[1, 8, 9, 11, 13, 17, 18, 21, 22, 23]),
    }
    if rng.one_in(4) {
        model.ir_version = interesting(rng);
    }
}

fn mutate_metadata(rng: &mut Rng, model: &mut ModelProto) {
    let values = [
        "{}",
        "{\"eps\": \"normal\"}",
        "{\"x\": \"normal\", \"eps\": \"data\"}",
        "{\"eps\": \"weights\"}",
        "[1]",
        "{",
        "null",
    ];
    let value = word(rng, &values);
    match model
        .metadata_props
        .iter_mut()
        .find(|p| p.key == "dlbench.input_roles")
    {
        Some(entry) if !rng.one_in(4) => entry.value = value,
        _ => model
            .metadata_props
            .push(entry("dlbench.input_roles", &value)),
    }
}

fn mutate_graph(rng: &mut Rng, graph: &mut GraphProto) {
    match rng.below(12) {
        0 | 1 => {
            let infos = match rng.below(3) {
                0 => &mut graph.input,
                1 => &mut graph.output,
                _ => &mut graph.value_info,
            };
            if let Some(info) = some(rng, infos) {
                mutate_value_info(rng, info);
            }
        }
        2 | 3 => {
            let names = names(graph);
            if let Some(tensor) = some(rng, &mut graph.initializer) {
                mutate_tensor(rng, tensor, &names);
            }
        }
        4..=6 => {
            let donor = random_attribute(rng, graph);
            if let Some(node) = some(rng, &mut graph.node) {
                mutate_attributes(rng, node, donor);
            }
        }
        7 | 8 => mutate_node(rng, graph),
        9 => wire(rng, graph),
        _ => edit_lists(rng, graph),
    }
}

fn mutate_value_info(rng: &mut Rng, info: &mut ValueInfoProto) {
    if rng.one_in(16) {
        info.r#type = None;
        return;
    }
    let value_type = info.r#type.get_or_insert_with(Default::default);
    let tensor_type = value_type.tensor_type.get_or_insert_with(Default::default);
    if rng.one_in(8) {
        tensor_type.elem_type = rng.below(18) as i32;
        return;
    }
    if rng.one_in(16) {
        tensor_type.shape = None;
        return;
    }
    let dims = &mut tensor_type.shape.get_or_insert_with(Default::default).dim;
    match rng.below(6) {
        0 => dims.push(Dimension::default()),
        1 => {
            dims.pop();
        }
        _ => {
            if let Some(dim) = some(rng, dims) {
                dim.value = match rng.below(6) {
                    0 => None,
                    1 => Some(DimensionValue::DimParam(word(
                        rng,
                        &["N", "batch", "", "x"],
                    ))),
                    _ => Some(DimensionValue::DimValue(interesting(rng))),
                };
            }
        }
    }
}

/// The names values have in `graph`, and two they do not.
fn names(graph: &GraphProto) -> Vec<String> {
    let mut names: Vec<String> = graph
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .chain(graph.input.iter().map(|i| i.name.clone()))
        .chain(graph.node.iter().flat_map(|n| n.output.iter().cloned()))
        .collect();
    names.extend(["".to_string(), "missing".to_string()]);
    names
}

fn mutate_tensor(rng: &mut Rng, tensor: &mut TensorProto, names: &[String]) {
    match rng.below(10) {
        0 | 1 => match rng.below(4) {
            0 => tensor.dims.push(interesting(rng)),
            1 => {
                tensor.dims.pop();
            }
            _ => {
                if let Some(dim) = some(rng, &mut tensor.dims) {
                    *dim = interesting(rng);
                }
            }
        },
        2 => tensor.data_type = *rng.pick(&[0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, -1]),
        3 | 4 => {
            let len = tensor.raw_data.len();
            match rng.below(4) {
                0 => tensor.raw_data.truncate(rng.below(len)),
                1 => tensor.raw_data.truncate(len.saturating_sub(1)),
                2 => tensor.raw_data.extend([0x7f, 0xff, 0, 0]),
                _ => {
                    let value = *rng.pick(&[f32::NAN, f32::INFINITY, -0.0, 1e30]);
                    let at = rng.below(len / 4 + 1) * 4;
                    let end = (at + 4).min(len);
                    tensor.raw_data.splice(at..end, value.to_le_bytes());
                }
            }
        }
        5 => {
            // The data in the typed fields instead (or as well).
            let raw = &tensor.raw_data;
            match rng.below(3) {
                0 => tensor.float_data = raw.chunks_exact(4).map(le_f32).collect(),
                1 => tensor.int64_data = raw.chunks_exact(8).map(le_i64).collect(),
                _ => tensor.int32_data.push(interesting(rng) as i32),
            }
            if rng.one_in(2) {
                tensor.raw_data.clear();
            }
        }
        6 | 7 => {
            tensor.data_location = *rng.pick(&[0, 1, 1, 1, 7]);
            let location = word(
                rng,
                &[
                    "model.onnx",
                    "../model.onnx",
                    "/etc/hostname",
                    "/dev/zero",
                    ".",
                    "",
                    "missing.bin",
                    "./model.onnx",
                    "a/../../x",
                ],
            );
            let key = word(rng, WORDS);
            let value = match key.as_str() {
                "location" => location,
                _ => interesting(rng).to_string(),
            };
            match tensor.external_data.iter_mut().find(|e| e.key == key) {
                Some(entry) if !rng.one_in(4) => entry.value = value,
                _ => tensor.external_data.push(entry(&key, &value)),
            }
        }
        8 => tensor.name = rng.pick(names).clone(),
        _ => tensor.raw_data.clear(),
    }
}

fn le_f32(bytes: &[u8]) -> f32 {
    f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn le_i64(bytes: &[u8]) -> i64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    i64::from_le_bytes(array)
}

/// An attribute of some node in `graph`, to graft onto another.
fn random_attribute(rng: &mut Rng, graph: &GraphProto) -> Option<AttributeProto> {
    let with: Vec<&NodeProto> = graph
        .node
        .iter()
        .filter(|n| !n.attribute.is_empty())
        .collect();
    if with.is_empty() {
        return None;
    }
    let node = rng.pick(&with);
    Some(rng.pick(&node.attribute).clone())
}

fn mutate_attributes(rng: &mut Rng, node: &mut NodeProto, donor: Option<AttributeProto>) {
    match rng.below(12) {
        0 => {
            let name = word(rng, ATTRIBUTES);
            let ints = rng.one_in(2);
            node.attribute.push(AttributeProto {
                name,
                r#type: if ints {
                    AttributeType::Ints
                } else {
                    AttributeType::Int
                } as i32,
                i: interesting(rng),
                ints: (0..rng.below(5)).map(|_| interesting(rng)).collect(),
                ..AttributeProto::default()
            });
            return;
        }
        1 => {
            if !node.attribute.is_empty() {
                let i = rng.below(node.attribute.len());
                let copy = node.attribute[i].clone();
                if rng.one_in(2) {
                    node.attribute.remove(i);
                } else {
                    node.attribute.push(copy);
                }
            }
            return;
        }
        2 => {
            node.attribute.extend(donor);
            return;
        }
        _ => {}
    }
    let Some(attribute) = some(rng, &mut node.attribute) else {
        return;
    };
    match rng.below(10) {
        0 | 1 => attribute.i = interesting(rng),
        2..=4 => match rng.below(4) {
            0 => attribute.ints.push(interesting(rng)),
            1 => {
                attribute.ints.pop();
            }
            2 => attribute.ints = vec![interesting(rng); rng.below(9)],
            _ => {
                if let Some(v) = some(rng, &mut attribute.ints) {
                    *v = interesting(rng);
                }
            }
        },
        5 => attribute.f = *rng.pick(&[f32::NAN, f32::INFINITY, -0.0, 1e30, -1.0, 2.0]),
        6 => attribute.r#type = rng.below(15) as i32,
        7 => attribute.name = word(rng, ATTRIBUTES),
        8 => match rng.below(3) {
            0 => attribute.s = word(rng, WORDS).into_bytes(),
            1 => attribute.strings.push(word(rng, WORDS).into_bytes()),
            _ => attribute.strings.clear(),
        },
        _ => {
            if let Some(t) = attribute.t.as_mut() {
                mutate_tensor(rng, t, &[]);
            } else {
                attribute.floats.push(*rng.pick(&[f32::NAN, 0.5, -1.0]));
            }
        }
    }
}

fn mutate_node(rng: &mut Rng, graph: &mut GraphProto) {
    if graph.node.is_empty() || rng.one_in(3) {
        // A new node of any op on any values, an attribute borrowed from another node.
        let names = names(graph);
        let donor = random_attribute(rng, graph);
        let node = NodeProto {
            op_type: word(rng, OP_TYPES),
            input: (0..1 + rng.below(3))
                .map(|_| rng.pick(&names).clone())
                .collect(),
            output: vec![match rng.one_in(3) {
                true => rng.pick(&names).clone(),
                false => format!("fuzz_{}", rng.below(1000)),
            }],
            attribute: donor.into_iter().collect(),
            ..NodeProto::default()
        };
        if let (Some(output), Some(out)) = (graph.output.first_mut(), node.output.first()) {
            if rng.one_in(2) {
                output.name = out.clone();
            }
        }
        let at = rng.below(graph.node.len() + 1);
        graph.node.insert(at, node);
        return;
    }
    let Some(node) = some(rng, &mut graph.node) else {
        return;
    };
    match rng.below(4) {
        0 => node.domain = word(rng, &["", "ai.onnx", "com.microsoft", "ai.onnx.ml"]),
        _ => node.op_type = word(rng, OP_TYPES),
    }
}

/// Rewires a node or the graph's outputs: cycles, values read before they are made or never
/// made, values made twice, inputs dropped or added.
fn wire(rng: &mut Rng, graph: &mut GraphProto) {
    let names = names(graph);
    if rng.one_in(5) {
        if let Some(output) = some(rng, &mut graph.output) {
            output.name = rng.pick(&names).clone();
        }
        return;
    }
    let Some(node) = some(rng, &mut graph.node) else {
        return;
    };
    match rng.below(6) {
        0 => node.input.push(rng.pick(&names).clone()),
        1 => {
            node.input.pop();
        }
        2 => {
            if let Some(output) = some(rng, &mut node.output) {
                *output = rng.pick(&names).clone();
            }
        }
        3 => node.output.push(format!("extra_{}", rng.below(10))),
        _ => {
            if let Some(input) = some(rng, &mut node.input) {
                *input = rng.pick(&names).clone();
            }
        }
    }
}

/// Removes, duplicates or swaps nodes, initializers, inputs and outputs.
fn edit_lists(rng: &mut Rng, graph: &mut GraphProto) {
    fn edit<T: Clone>(rng: &mut Rng, items: &mut Vec<T>) {
        if items.is_empty() {
            return;
        }
        let i = rng.below(items.len());
        let j = rng.below(items.len());
        match rng.below(3) {
            0 => {
                items.remove(i);
            }
            1 => {
                let copy = items[i].clone();
                items.insert(j, copy);
            }
            _ => items.swap(i, j),
        }
    }
    match rng.below(5) {
        0 | 1 => edit(rng, &mut graph.node),
        2 => edit(rng, &mut graph.initializer),
        3 => edit(rng, &mut graph.input),
        _ => edit(rng, &mut graph.output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structural_mutation_is_a_model_again() {
        for seed in super::super::models() {
            for index in 0..200 {
                let mut rng = Rng::for_input(7, index);
                let out = mutate_model(&mut rng, &seed).unwrap();
                assert!(ModelProto::decode(out.as_slice()).is_ok());
            }
        }
    }
}
