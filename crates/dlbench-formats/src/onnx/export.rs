//! IR → ONNX (opset 17): the model's inference graph as ONNX operators, its weights as
//! initializers under dlbench's parameter names, a symbolic batch dim `N`. What the harness
//! feeds only in training (dropout masks, targets) is not an input of the exported graph:
//! Dropout is the identity at inference, as `torch.onnx.export` writes it.
//!
//! Where ONNX's operator differs from the IR's, the export adds the nodes that make up the
//! difference, named after the IR node (`<node>/...`):
//! - Dense: `Gemm` (`transB = 1`) on a rank-2 input; otherwise `MatMul` by `Transpose(W)` and
//!   `Add(b)`.
//! - Flatten with `axis != 1` (ONNX's always returns rank 2): `Reshape` to `[0, ..., 0, -1]`.
//! - Scale: `Mul` by a scalar initializer.
//! - LSTM: ONNX orders the gates i, o, f, c and stacks both directions and both biases
//!   (`W [D, 4H, I]`, `R [D, 4H, H]`, `B [D, 8H]`): the IR's weights are reordered into new
//!   initializers `<node>.W`, `<node>.R`, `<node>.B`. The LSTM runs with `layout = 0`
//!   (`[T, N, I]`), a `Transpose` on each side for a batch-first IR node, and `Y`
//!   (`[T, D, N, H]`) becomes the IR's `[.., D*H]` by `Transpose` and `Reshape`.

use std::collections::BTreeMap;

use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{
    BinaryOp, DType, Data, Dim, Graph, Input, InputRole, Model, Node, Op, Tensor, UnaryOp,
    ValueInfo, Values,
};

use super::proto::{
    AttributeProto, AttributeType, DataType, Dimension, DimensionValue, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};
use crate::error::Result;

/// The ONNX operator set the export writes.
pub const OPSET: i64 = 17;
/// The file-format version that goes with [`OPSET`].
const IR_VERSION: i64 = 8;
/// The symbol of the batch dim in exported inputs and outputs.
pub const BATCH_SYMBOL: &str = "N";

/// The model as an ONNX `ModelProto`. An op with no inference meaning (a loss) is refused,
/// naming the node.
pub fn to_onnx(model: &Model) -> Result<ModelProto> {
    model.validate()?;
    let graph = &model.graph;
    let infos = graph.infer()?;
    let mut out = Writer {
        weights: &model.weights,
        nodes: Vec::new(),
        initializers: Vec::new(),
        taken: infos.keys().cloned().collect(),
    };
    // An LSTM's weights are written reordered, as `<node>.W`, `.R`, `.B`: the IR's own are
    // written only if another node (or an output) reads them too.
    let read_elsewhere: std::collections::HashSet<&str> = graph
        .nodes
        .iter()
        .filter(|n| !matches!(n.op, Op::Lstm(_)))
        .flat_map(|n| n.inputs.iter().map(String::as_str))
        .chain(graph.outputs.iter().map(String::as_str))
        .collect();
    let lstm_weight = |name: &str| {
        graph
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Lstm(_)) && n.inputs[1..].iter().any(|i| i == name))
    };
    for param in &graph.params {
        let name = &param.value.name;
        if lstm_weight(name) && !read_elsewhere.contains(name.as_str()) {
            continue;
        }
        let weight = model.weights.get(name).ok_or_else(|| {
            dlbench_core::Error::invalid(format!("no weight for parameter `{name}`"))
        })?;
        out.initializer(name, weight);
    }
    for node in &graph.nodes {
        out.node(node, &infos)?;
    }
    let input = exported_inputs(graph)
        .map(|i| value_info(&i.value))
        .collect();
    let output = graph
        .outputs
        .iter()
        .map(|name| {
            infos.get(name).map(value_info).ok_or_else(|| {
                dlbench_core::Error::invalid(format!("output `{name}` has no inferred type"))
            })
        })
        .collect::<dlbench_core::Result<Vec<_>>>()?;
    // Roles other than data (the VAE's noise) travel in the metadata, so that an import gives
    // the harness back what to feed.
    let roles: BTreeMap<&str, InputRole> = exported_inputs(graph)
        .filter(|i| i.role != InputRole::Data)
        .map(|i| (i.value.name.as_str(), i.role))
        .collect();
    let metadata_props = match roles.is_empty() {
        true => Vec::new(),
        false => vec![StringStringEntryProto {
            key: super::import::ROLES_KEY.into(),
            value: serde_json::to_string(&roles)
                .map_err(|e| dlbench_core::Error::invalid(format!("input roles as JSON: {e}")))?,
        }],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        metadata_props,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "dlbench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: out.nodes,
            name: graph.name.clone(),
            initializer: out.initializers,
            input,
            output,
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    })
}

/// The graph inputs the exported model has, in the graph's order: what is fed at inference
/// (data and noise). Dropout masks and targets are training-only and left out.
pub fn exported_inputs(graph: &Graph) -> impl Iterator<Item = &Input> {
    graph.inputs.iter().filter(|i| match i.role {
        InputRole::Data | InputRole::Normal => true,
        InputRole::Target | InputRole::DropoutMask { .. } => false,
    })
}

/// A value's ONNX type: f32 or i64, its batch dim as [`BATCH_SYMBOL`].
fn value_info(info: &ValueInfo) -> ValueInfoProto {
    let dim = info
        .shape
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => DimensionValue::DimParam(BATCH_SYMBOL.into()),
                Dim::Known(n) => DimensionValue::DimValue(*n as i64),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: info.name.clone(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type(info.dtype) as i32,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn data_type(dtype: DType) -> DataType {
    match dtype {
        DType::F32 => DataType::Float,
        DType::F64 => DataType::Double,
        DType::I64 => DataType::Int64,
    }
}

/// A tensor as an initializer: raw little-endian data.
fn tensor_proto(name: &str, tensor: &Tensor) -> TensorProto {
    let raw_data = match tensor.data() {
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    TensorProto {
        dims: tensor.shape().iter().map(|&d| d as i64).collect(),
        data_type: data_type(tensor.dtype()) as i32,
        name: name.into(),
        raw_data,
        ..TensorProto::default()
    }
}

fn ints(name: &str, values: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.into_iter().collect(),
        ..AttributeProto::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..AttributeProto::default()
    }
}

fn pair(values: [usize; 2]) -> [i64; 2] {
    values.map(|v| v as i64)
}

/// ONNX pads: begins of every spatial axis, then ends.
fn pads(padding: [usize; 2]) -> AttributeProto {
    let [h, w] = pair(padding);
    ints("pads", [h, w, h, w])
}

/// The nodes and initializers written so far.
struct Writer<'a> {
    /// The model's weights (the LSTM's are reordered into new initializers).
    weights: &'a Values,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Every value name in use: the graph's, and those the export adds.
    taken: std::collections::HashSet<String>,
}

impl Writer<'_> {
    fn initializer(&mut self, name: &str, tensor: &Tensor) {
        self.initializers.push(tensor_proto(name, tensor));
    }

    /// A name for a value the export adds: `base`, or `base.1`, `base.2`... if the graph
    /// already uses it (an imported model may hold a value named `<node>/y`).
    fn fresh(&mut self, base: String) -> String {
        let name = match self.taken.contains(&base) {
            false => base,
            true => (1..)
                .map(|k| format!("{base}.{k}"))
                .find(|n| !self.taken.contains(n))
                .unwrap_or_default(),
        };
        self.taken.insert(name.clone());
        name
    }

    /// An int64 vector initializer (a shape), named after the node that reads it.
    fn shape_constant(&mut self, name: String, values: &[i64]) -> Result<String> {
        let name = self.fresh(name);
        let tensor = Tensor::i64(vec![values.len()], values.to_vec())?;
        self.initializer(&name, &tensor);
        Ok(name)
    }

    fn push(
        &mut self,
        name: String,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op_type.into(),
            attribute,
            ..NodeProto::default()
        });
    }

    /// The nodes for one IR node. `infos` gives input ranks.
    fn node(&mut self, node: &Node, infos: &BTreeMap<String, ValueInfo>) -> Result<()> {
        let n = node.name.as_str();
        let ins: Vec<&str> = node.inputs.iter().map(String::as_str).collect();
        let outs: Vec<&str> = node.outputs.iter().map(String::as_str).collect();
        let sub = |what: &str| format!("{n}/{what}");
        let rank = |i: usize| {
            ins.get(i)
                .and_then(|name| infos.get(*name))
                .map_or(0, |info| info.shape.len())
        };
        match &node.op {
            Op::Dense if rank(0) == 2 => {
                self.push(n.into(), "Gemm", &ins, &outs, vec![int("transB", 1)])
            }
            Op::Dense => {
                let wt = self.fresh(sub("weight_t"));
                self.push(
                    wt.clone(),
                    "Transpose",
                    &ins[1..2],
                    &[&wt],
                    vec![ints("perm", [1, 0])],
                );
                match ins.get(2) {
                    Some(bias) => {
                        let xw = self.fresh(sub("matmul"));
                        self.push(xw.clone(), "MatMul", &[ins[0], &wt], &[&xw], vec![]);
                        self.push(n.into(), "Add", &[&xw, bias], &outs, vec![]);
                    }
                    None => self.push(n.into(), "MatMul", &[ins[0], &wt], &outs, vec![]),
                }
            }
            Op::MatMul => self.push(n.into(), "MatMul", &ins, &outs, vec![]),
            Op::Conv2d(a) => {
                let kernel = ins
                    .get(1)
                    .and_then(|w| infos.get(*w))
                    .and_then(|info| match info.shape[..] {
                        [_, _, Dim::Known(kh), Dim::Known(kw)] => Some([kh, kw]),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        dlbench_core::Error::node(
                            n,
                            node.op.name(),
                            "the weight is not [O, C, kh, kw]",
                        )
                    })?;
                self.push(n.into(), "Conv", &ins, &outs, conv_attributes(a, kernel))
            }
            Op::MaxPool2d(p) => {
                self.push(n.into(), "MaxPool", &ins, &outs, pool_attributes(p, None))
            }
            Op::AvgPool2d(p) => {
                let include = i64::from(p.count_include_pad);
                self.push(
                    n.into(),
                    "AveragePool",
                    &ins,
                    &outs,
                    pool_attributes(p, Some(include)),
                )
            }
            Op::Flatten { axis: 1 } if rank(0) >= 2 => {
                self.push(n.into(), "Flatten", &ins, &outs, vec![int("axis", 1)])
            }
            Op::Flatten { axis } => {
                let mut shape = vec![0; *axis];
                shape.push(-1);
                let shape = self.shape_constant(sub("shape"), &shape)?;
                self.push(n.into(), "Reshape", &[ins[0], &shape], &outs, vec![])
            }
            Op::Reshape { shape } => {
                let shape = self.shape_constant(sub("shape"), shape)?;
                self.push(n.into(), "Reshape", &[ins[0], &shape], &outs, vec![])
            }
            Op::Transpose { perm } => {
                let perm = ints("perm", perm.iter().map(|&p| p as i64));
                self.push(n.into(), "Transpose", &ins, &outs, vec![perm])
            }
            Op::Concat { axis } => self.push(
                n.into(),
                "Concat",
                &ins,
                &outs,
                vec![int("axis", *axis as i64)],
            ),
            Op::Unary(op) => self.unary(n, *op, &ins, &outs)?,
            Op::Softmax { axis } => {
                self.push(n.into(), "Softmax", &ins, &outs, vec![int("axis", *axis)])
            }
            Op::LogSoftmax { axis } => self.push(
                n.into(),
                "LogSoftmax",
                &ins,
                &outs,
                vec![int("axis", *axis)],
            ),
            Op::Dropout { .. } => self.push(n.into(), "Identity", &ins[..1], &outs, vec![]),
            Op::Lstm(attrs) => self.lstm(node, attrs)?,
            Op::Binary(op) => {
                let op_type = match op {
                    BinaryOp::Add => "Add",
                    BinaryOp::Sub => "Sub",
                    BinaryOp::Mul => "Mul",
                };
                self.push(n.into(), op_type, &ins, &outs, vec![])
            }
            Op::Loss(_) => {
                return Err(dlbench_core::Error::node(
                    n,
                    node.op.name(),
                    "a loss is training-only and has no ONNX inference form; export the model \
                     without its loss",
                )
                .into())
            }
        }
        Ok(())
    }

    fn unary(&mut self, n: &str, op: UnaryOp, ins: &[&str], outs: &[&str]) -> Result<()> {
        let op_type = match op {
            UnaryOp::Relu => "Relu",
            UnaryOp::Sigmoid => "Sigmoid",
            UnaryOp::Tanh => "Tanh",
            UnaryOp::Exp => "Exp",
            UnaryOp::Scale { factor } => {
                let name = self.fresh(format!("{n}/factor"));
                let scalar = Tensor::f32(vec![], vec![factor as f32])?;
                self.initializer(&name, &scalar);
                self.push(n.into(), "Mul", &[ins[0], &name], outs, vec![]);
                return Ok(());
            }
        };
        self.push(n.into(), op_type, ins, outs, vec![]);
        Ok(())
    }

    /// ONNX's LSTM with the IR's weights reordered (see the module docs).
    fn lstm(&mut self, node: &Node, attrs: &Lstm) -> Result<()> {
        let n = node.name.as_str();
        let sub = |what: &str| format!("{n}/{what}");
        let directions = match attrs.direction {
            Direction::Bidirectional => 2,
            Direction::Forward | Direction::Reverse => 1,
        };
        // Inputs 1..5 (and 5..9 for the reverse direction): w_ih, w_hh, b_ih, b_hh.
        let weight = |k: usize| -> Result<&Tensor> {
            let name = node.inputs.get(k).map(String::as_str).unwrap_or_default();
            self.weights.get(name).ok_or_else(|| {
                let message = format!(
                    "input {k} (`{name}`) is not a parameter: ONNX's LSTM takes its weights as \
                     initializers"
                );
                dlbench_core::Error::node(n, node.op.name(), message).into()
            })
        };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..directions {
            let k = 1 + 4 * d;
            w.extend(onnx_gate_order(weight(k)?, attrs.hidden));
            r.extend(onnx_gate_order(weight(k + 1)?, attrs.hidden));
            b.extend(onnx_gate_order(weight(k + 2)?, attrs.hidden));
            b.extend(onnx_gate_order(weight(k + 3)?, attrs.hidden));
        }
        let (h, d) = (attrs.hidden, directions);
        let input = w.len() / (d * 4 * h).max(1);
        let names = [".W", ".R", ".B"].map(|suffix| self.fresh(format!("{n}{suffix}")));
        for (name, (shape, data)) in names.iter().zip([
            (vec![d, 4 * h, input], w),
            (vec![d, 4 * h, h], r),
            (vec![d, 8 * h], b),
        ]) {
            let tensor = Tensor::f32(shape, data)?;
            self.initializer(name, &tensor);
        }
        let x = node.inputs[0].as_str();
        let seq_first = self.fresh(sub("x_seq_first"));
        let x_in = if attrs.batch_first {
            let perm = vec![ints("perm", [1, 0, 2])];
            self.push(seq_first.clone(), "Transpose", &[x], &[&seq_first], perm);
            seq_first.as_str()
        } else {
            x
        };
        let direction = AttributeProto {
            name: "direction".into(),
            r#type: AttributeType::String as i32,
            s: match attrs.direction {
                Direction::Forward => b"forward".to_vec(),
                Direction::Reverse => b"reverse".to_vec(),
                Direction::Bidirectional => b"bidirectional".to_vec(),
            },
            ..AttributeProto::default()
        };
        let y4 = self.fresh(sub("y"));
        let [w, r, b] = &names;
        let outs = [y4.as_str(), &node.outputs[1], &node.outputs[2]];
        let attributes = vec![int("hidden_size", h as i64), direction, int("layout", 0)];
        self.push(n.into(), "LSTM", &[x_in, w, r, b], &outs, attributes);
        // Y [T, D, N, H] -> [T, N, D, H] (or [N, T, D, H] batch-first) -> [.., D*H].
        let perm = if attrs.batch_first {
            [2, 0, 1, 3]
        } else {
            [0, 2, 1, 3]
        };
        let yt = self.fresh(sub("y_t"));
        self.push(
            yt.clone(),
            "Transpose",
            &[&y4],
            &[&yt],
            vec![ints("perm", perm)],
        );
        let shape = self.shape_constant(sub("y_shape"), &[0, 0, -1])?;
        let y = [node.outputs[0].as_str()];
        self.push(sub("y_merge"), "Reshape", &[&yt, &shape], &y, vec![]);
        Ok(())
    }
}

/// The rows of an IR LSTM weight or bias (gate blocks i, f, g, o of `hidden` rows each) in
/// ONNX's gate order i, o, f, c.
fn onnx_gate_order(tensor: &Tensor, hidden: usize) -> Vec<f32> {
    let data = tensor.as_f32().unwrap_or_default();
    let block = data.len() / 4;
    debug_assert_eq!(block % hidden.max(1), 0);
    [0, 3, 1, 2]
        .iter()
        .flat_map(|&gate| data[gate * block..(gate + 1) * block].iter().copied())
        .collect()
}

fn conv_attributes(a: &Conv2d, kernel: [usize; 2]) -> Vec<AttributeProto> {
    vec![
        ints("kernel_shape", pair(kernel)),
        ints("strides", pair(a.stride)),
        pads(a.padding),
        ints("dilations", pair(a.dilation)),
        int("group", a.groups as i64),
    ]
}

/// MaxPool's or AveragePool's attributes; `count_include_pad` for AveragePool only.
fn pool_attributes(p: &Pool2d, count_include_pad: Option<i64>) -> Vec<AttributeProto> {
    let mut attributes = vec![
        ints("kernel_shape", pair(p.kernel)),
        ints("strides", pair(p.stride)),
        pads(p.padding),
        int("ceil_mode", i64::from(p.ceil_mode)),
    ];
    if let Some(include) = count_include_pad {
        attributes.push(int("count_include_pad", include));
    }
    attributes
}
