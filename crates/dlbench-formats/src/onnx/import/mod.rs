//! ONNX → IR (opsets 9 to 22): the graph's nodes become IR nodes, its initializers the model's
//! weights, its non-initializer inputs the graph inputs (the first dim, if symbolic, is the
//! batch).
//!
//! Exporters write more than layers: shape arithmetic (`Shape`, `Gather`, `Concat`...) around
//! the batch size, zero initial states, weights reordered by `Slice` and `Concat`. Everything
//! whose inputs are known at import time is folded here (`value`); what depends on the data
//! becomes IR nodes (`layers`, `lstm`, `elementwise`, `shapes`, `reshapes`),
//! with layout changes that cancel collapsed (`views`), so that dlbench's own export comes
//! back node for node. Where ONNX's operator differs from the IR's, the
//! import writes the IR's form: `Gemm` and `MatMul` + `Add` by a weight become `Dense`, an
//! LSTM's gates are reordered from ONNX's i, o, f, c to the IR's i, f, g, o and its stacked
//! bias split in two. An op, attribute or value the IR cannot express is an error naming the
//! node, its op, the attribute and the opset.

mod attrs;
mod elementwise;
mod finish;
mod layers;
mod lstm;
mod order;
mod reshapes;
mod shapes;
mod tensor;
mod value;
mod views;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use dlbench_core::init::Init;
use dlbench_core::ir::{shape::infer_node, Graph, Input, InputRole, Node, Param};
use dlbench_core::limits::{read_file, Limits};
use dlbench_core::{DType, Dim, Model, Op, Tensor, ValueInfo, Values};
use prost::Message;

use self::attrs::At;
use self::order::sorted;
use self::tensor::{read_tensor, type_name, TensorSource};
use self::value::{Const, ConstData, Origin, Value};
use super::proto::{DataType, GraphProto, ModelProto, TensorProto, ValueInfoProto};
use crate::error::{Error, Result};

/// The opsets the import reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 9..=22;

/// The metadata key under which dlbench's export records the roles of inputs that are not
/// data (the VAE's noise), as JSON `{input: role}`, so that a model comes back unchanged.
pub const ROLES_KEY: &str = "dlbench.input_roles";

/// Reads an ONNX file under the environment's limits; see [`import_onnx_with`].
pub fn import_onnx(path: &Path) -> Result<Model> {
    import_onnx_with(path, &Limits::from_env()?)
}

/// Reads an ONNX file: the file is refused if larger than the memory limit, every tensor is
/// checked against the bytes it actually has before it is copied, and external data is read
/// only from the model's folder. The model is named after the file.
pub fn import_onnx_with(path: &Path, limits: &Limits) -> Result<Model> {
    let bytes = read_file(path, limits.memory_bytes, "the ONNX model")?;
    let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| {
        Error::file(
            path,
            format!("not a readable ONNX model (the protobuf does not decode: {e})"),
        )
    })?;
    drop(bytes);
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let source = TensorSource {
        dir: Some(path.parent().unwrap_or(Path::new("."))),
        limits,
    };
    from_onnx(&proto, name, &source).map_err(|message| Error::file(path, message))
}

/// A serialised `TensorProto` file (`input_0.pb` of the ONNX node tests) as a tensor: f32 and
/// f64 keep their type, half floats become f32, integers and bools i64. Its name, if it has one,
/// comes with it.
pub fn read_tensor_file(path: &Path) -> Result<(String, Tensor)> {
    let limits = Limits::from_env()?;
    let bytes = read_file(path, limits.memory_bytes, "the tensor")?;
    let proto = TensorProto::decode(bytes.as_slice())
        .map_err(|e| Error::file(path, format!("not an ONNX TensorProto: {e}")))?;
    let source = TensorSource {
        dir: Some(path.parent().unwrap_or(Path::new("."))),
        limits: &limits,
    };
    let constant = read_tensor(&proto, &source, "the tensor").map_err(|m| Error::file(path, m))?;
    let shape = constant.dims().map_err(|m| Error::file(path, m))?;
    let tensor = match &constant.data {
        ConstData::Float {
            values,
            dtype: DType::F64,
        } => Tensor::f64(shape, values.clone()),
        ConstData::Float { values, .. } => {
            Tensor::f32(shape, values.iter().map(|&v| v as f32).collect())
        }
        ConstData::Int(_) => {
            Tensor::i64(shape, constant.to_ints().map_err(|m| Error::file(path, m))?)
        }
        ConstData::Fill { .. } => return Err(Error::file(path, "not a tensor with data")),
    }?;
    Ok((proto.name, tensor))
}

/// The model in `proto`, named `name`.
fn from_onnx(proto: &ModelProto, name: &str, source: &TensorSource) -> Result<Model, String> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or("the file holds no graph (is it an ONNX model?)")?;
    let opset = opset(proto)?;
    source
        .limits
        .check_nodes("the ONNX graph", graph.node.len())
        .map_err(|e| e.to_string())?;
    let roles: BTreeMap<String, InputRole> =
        match proto.metadata_props.iter().find(|p| p.key == ROLES_KEY) {
            Some(entry) => serde_json::from_str(&entry.value)
                .map_err(|e| format!("metadata `{ROLES_KEY}` is not a map of input roles: {e}"))?,
            None => BTreeMap::new(),
        };
    let mut importer = Importer::new(name, graph, source.limits.memory_bytes);
    for init in &graph.initializer {
        let what = format!("initializer `{}`", init.name);
        let mut constant = read_tensor(init, source, &what)?;
        constant.origin = Origin::Initializer(init.name.clone());
        importer
            .values
            .insert(init.name.clone(), Value::Const(Rc::new(constant)));
    }
    for input in &graph.input {
        if !importer.values.contains_key(&input.name) {
            let role = roles.get(&input.name).copied().unwrap_or(InputRole::Data);
            importer.input(input, role)?;
        }
    }
    for (index, node) in sorted(graph)? {
        let at = At::new(node, index, opset);
        importer.node(&at, source)?;
    }
    importer.finish(graph)
}

/// The default domain's opset, checked against [`OPSETS`].
fn opset(proto: &ModelProto) -> Result<i64, String> {
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or("the model imports no opset of the default ONNX domain")?;
    match OPSETS.contains(&opset) {
        true => Ok(opset),
        false => Err(format!(
            "opset {opset} is not supported; dlbench reads opsets {} to {}",
            OPSETS.start(),
            OPSETS.end()
        )),
    }
}

/// The import in progress.
struct Importer {
    /// The memory limit a constant the import folds may take (an `Expand` or a `Gather` can
    /// make one far larger than the file).
    memory_bytes: u64,
    /// Every ONNX value defined so far.
    values: HashMap<String, Value>,
    /// How many nodes (and graph outputs) read each ONNX value.
    uses: HashMap<String, usize>,
    graph: Graph,
    weights: Values,
    /// The IR type of every IR value.
    infos: HashMap<String, ValueInfo>,
    /// Names used for IR values (ONNX's, reserved from the start) and IR nodes.
    taken_values: HashSet<String>,
    taken_nodes: HashSet<String>,
    /// Dense nodes made from a `MatMul` by a weight, by output: an `Add` of a bias after
    /// one is folded into it.
    biasless_dense: HashMap<String, usize>,
    /// Values that hold a one-direction LSTM's output sequence, by IR name: the step it ends
    /// on can be read as its final state.
    sequences: HashMap<String, lstm::Sequence>,
    /// The IR node (by index) that defines each IR value.
    producers: HashMap<String, usize>,
    /// Names the import made up (not the file's).
    internal: HashSet<String>,
    /// ONNX values defined as an IR value of another name (a layout change that cancelled),
    /// in the order they were defined.
    aliases: Vec<(String, String)>,
}

impl Importer {
    fn new(name: &str, graph: &GraphProto, memory_bytes: u64) -> Self {
        let mut uses: HashMap<String, usize> = HashMap::new();
        for value in graph
            .node
            .iter()
            .flat_map(|n| &n.input)
            .chain(graph.output.iter().map(|o| &o.name))
        {
            *uses.entry(value.clone()).or_default() += 1;
        }
        let taken_values = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().chain(&n.input))
            .chain(graph.initializer.iter().map(|i| &i.name))
            .chain(graph.input.iter().map(|i| &i.name))
            .cloned()
            .collect();
        Importer {
            memory_bytes,
            values: HashMap::new(),
            uses,
            graph: Graph {
                name: name.to_string(),
                inputs: Vec::new(),
                params: Vec::new(),
                nodes: Vec::new(),
                outputs: Vec::new(),
            },
            weights: Values::new(),
            infos: HashMap::new(),
            taken_values,
            taken_nodes: HashSet::new(),
            biasless_dense: HashMap::new(),
            sequences: HashMap::new(),
            producers: HashMap::new(),
            internal: HashSet::new(),
            aliases: Vec::new(),
        }
    }

    /// A graph input: floats or integers, every dim known but a symbolic first one (the batch).
    fn input(&mut self, input: &ValueInfoProto, role: InputRole) -> Result<(), String> {
        let what = format!("graph input `{}`", input.name);
        let tensor = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| format!("{what}: not a tensor"))?;
        let dtype = match DataType::try_from(tensor.elem_type) {
            Ok(DataType::Float | DataType::Float16 | DataType::Bfloat16) => DType::F32,
            Ok(DataType::Double) => DType::F64,
            Ok(DataType::Int64 | DataType::Int32) => DType::I64,
            _ => {
                return Err(format!(
                    "{what}: element type {} is not supported",
                    type_name(tensor.elem_type)
                ))
            }
        };
        let dims = tensor.shape.as_ref().ok_or_else(|| {
            format!("{what}: has no shape; dlbench needs every dim but the batch")
        })?;
        let shape = dims
            .dim
            .iter()
            .enumerate()
            .map(|(i, d)| match d.value {
                Some(super::proto::DimensionValue::DimValue(n)) if n >= 0 => Ok(Dim::Known(n as usize)),
                _ if i == 0 => Ok(Dim::Batch),
                Some(super::proto::DimensionValue::DimParam(ref p)) => Err(format!(
                    "{what}: dim {i} is symbolic (`{p}`); dlbench needs every dim but the first \
                     (the batch) known"
                )),
                _ => Err(format!("{what}: dim {i} is unknown; dlbench needs every dim but the first (the batch) known")),
            })
            .collect::<Result<Vec<Dim>, String>>()?;
        let info = ValueInfo::new(input.name.clone(), dtype, shape);
        if dlbench_core::limits::checked_numel(&info.resolve(1)).is_none() {
            return Err(format!(
                "{what}: {} has more elements than can be addressed",
                dlbench_core::ir::format_shape(&info.shape)
            ));
        }
        self.infos.insert(info.name.clone(), info.clone());
        self.values
            .insert(info.name.clone(), Value::Runtime(info.clone()));
        self.graph.inputs.push(Input { value: info, role });
        Ok(())
    }

    /// Imports one node.
    fn node(&mut self, at: &At, source: &TensorSource) -> Result<(), String> {
        if !(at.node.domain.is_empty() || at.node.domain == "ai.onnx") {
            return Err(at.error(format!(
                "domain `{}` is not supported; dlbench reads the default ONNX domain",
                at.node.domain
            )));
        }
        // Errors from the folding helpers do not know the node: they get it here.
        let in_context = |e: String| match e.starts_with("node `") {
            true => e,
            false => at.error(e),
        };
        let imported = shapes::import(self, at, source).map_err(in_context)?
            || elementwise::import(self, at).map_err(in_context)?
            || layers::import(self, at).map_err(in_context)?
            || lstm::import(self, at).map_err(in_context)?;
        match imported {
            true => Ok(()),
            false => Err(at.error("this op is not supported by dlbench's IR")),
        }
    }

    /// The op and first input of the IR node that defines `value`, if a node does.
    fn producer(&self, value: &str) -> Option<(Op, String)> {
        let node = &self.graph.nodes[*self.producers.get(value)?];
        Some((node.op.clone(), node.inputs.first()?.clone()))
    }

    /// The type of the IR value `name`.
    fn info(&self, name: &str) -> Result<ValueInfo, String> {
        self.infos
            .get(name)
            .cloned()
            .ok_or_else(|| format!("value `{name}` has no type"))
    }

    /// Refuses to fold a constant of `shape` that would take more memory than the limit,
    /// before it is allocated.
    fn check_folded(&self, at: &At, shape: &[Dim]) -> Result<(), String> {
        // A shape that holds the batch is a fill's: it allocates nothing.
        let Some(dims) = value::known(shape) else {
            return Ok(());
        };
        let bytes = dlbench_core::limits::checked_numel(&dims)
            .map(|n| dlbench_core::limits::bytes_of(n, 8));
        match bytes {
            Some(b) if b <= self.memory_bytes => Ok(()),
            Some(_) | None => Err(at.error(format!(
                "folding gives a constant of {} elements, more than the memory limit allows",
                dlbench_core::ir::format_shape(shape)
            ))),
        }
    }

    /// A new graph input (a dropout mask the import adds); returns its name.
    fn add_input(&mut self, base: &str, dtype: DType, shape: Vec<Dim>, role: InputRole) -> String {
        let name = self.fresh_value(base);
        let info = ValueInfo::new(name.clone(), dtype, shape);
        self.infos.insert(name.clone(), info.clone());
        self.graph.inputs.push(Input { value: info, role });
        name
    }

    /// Input `i` of the node; an omitted required input is an error.
    fn get(&self, at: &At, i: usize) -> Result<Value, String> {
        self.get_opt(at, i)?
            .ok_or_else(|| at.error(format!("input {i} is missing")))
    }

    /// Optional input `i` of the node.
    fn get_opt(&self, at: &At, i: usize) -> Result<Option<Value>, String> {
        let Some(name) = at.input(i) else {
            return Ok(None);
        };
        self.values
            .get(name)
            .cloned()
            .map(Some)
            .ok_or_else(|| at.error(format!("input {i} (`{name}`) is not defined by the graph")))
    }

    /// Input `i`, which must be known at import time (`what` says what it is).
    fn constant(&self, at: &At, i: usize, what: &str) -> Result<Rc<Const>, String> {
        match self.get(at, i)? {
            Value::Const(c) => Ok(c),
            Value::Runtime(_) => Err(at.error(format!(
                "input {i} ({what}) depends on the data; dlbench needs it known at import time"
            ))),
        }
    }

    /// Input `i`, which must be computed by the graph.
    fn runtime(&self, at: &At, i: usize) -> Result<ValueInfo, String> {
        match self.get(at, i)? {
            Value::Runtime(info) => Ok(info),
            Value::Const(_) => Err(at.error(format!(
                "input {i} is a constant where dlbench's IR needs a value computed from the \
                 inputs"
            ))),
        }
    }

    /// Defines output `i` of the node (no-op if the node leaves it unnamed).
    fn define(&mut self, at: &At, i: usize, value: Value) {
        if let Some(name) = at.output(i) {
            if let Value::Runtime(info) = &value {
                if info.name != name {
                    self.aliases.push((name.to_string(), info.name.clone()));
                }
            }
            self.values.insert(name.to_string(), value);
        }
    }

    /// A name for a new IR value, derived from `base`, used by nothing else.
    fn fresh_value(&mut self, base: &str) -> String {
        let name = fresh(&self.taken_values, base);
        self.taken_values.insert(name.clone());
        self.internal.insert(name.clone());
        name
    }

    /// The IR name for ONNX output `i` of the node, or a fresh one if the node leaves it
    /// unnamed.
    fn output_name(&mut self, at: &At, i: usize) -> String {
        match at.output(i) {
            Some(name) => name.to_string(),
            None => self.fresh_value(&format!("{}/output_{i}", at.name)),
        }
    }

    /// Adds an IR node named after the ONNX node; returns its outputs' types.
    fn emit(
        &mut self,
        at: &At,
        op: Op,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> Result<Vec<ValueInfo>, String> {
        let name = fresh(&self.taken_nodes, &at.name);
        self.taken_nodes.insert(name.clone());
        let node = Node {
            name,
            op,
            inputs,
            outputs,
        };
        let infos = node
            .inputs
            .iter()
            .map(|i| {
                self.infos
                    .get(i)
                    .ok_or_else(|| at.error(format!("value `{i}` has no type")))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let outs = infer_node(&node, &infos).map_err(|e| at.error(e))?;
        for info in &outs {
            self.infos.insert(info.name.clone(), info.clone());
            self.producers
                .insert(info.name.clone(), self.graph.nodes.len());
        }
        self.graph.nodes.push(node);
        Ok(outs)
    }

    /// Adds an IR node and defines ONNX output 0 as its first output.
    fn emit_as_output(
        &mut self,
        at: &At,
        op: Op,
        inputs: Vec<String>,
    ) -> Result<ValueInfo, String> {
        let out = self.output_name(at, 0);
        let info = self.emit(at, op, inputs, vec![out])?.remove(0);
        self.define(at, 0, Value::Runtime(info.clone()));
        Ok(info)
    }

    /// A parameter holding `data` (of `shape`): named after the initializer it came from when
    /// it holds that initializer's numbers, else `hint`. The same numbers under the same name
    /// are one parameter (a weight shared by two nodes).
    fn param(
        &mut self,
        origin: &Origin,
        hint: &str,
        shape: Vec<usize>,
        values: Vec<f64>,
        dtype: DType,
        init: Init,
    ) -> Result<String, String> {
        let tensor = match dtype {
            DType::F64 => Tensor::f64(shape.clone(), values),
            _ => Tensor::f32(
                shape.clone(),
                values.into_iter().map(|v| v as f32).collect(),
            ),
        }
        .map_err(|e| e.to_string())?;
        let name = match origin {
            Origin::Initializer(name) | Origin::Transposed(name) => {
                if self.weights.get(name) == Some(&tensor) {
                    return Ok(name.clone());
                }
                // An initializer's own name is reserved for it: free unless already a
                // parameter in another layout.
                match self.infos.contains_key(name) {
                    true => self.fresh_value(name),
                    false => name.clone(),
                }
            }
            Origin::Computed => self.fresh_value(hint),
        };
        let info = ValueInfo::new(
            name.clone(),
            tensor.dtype(),
            shape.into_iter().map(Dim::Known).collect(),
        );
        self.infos.insert(name.clone(), info.clone());
        self.graph.params.push(Param { value: info, init });
        self.weights.insert(name.clone(), tensor);
        Ok(name)
    }

    /// A constant as a parameter in its own layout.
    fn const_param(&mut self, c: &Const, hint: &str, init: Init) -> Result<String, String> {
        let shape = c.dims()?;
        let dtype = c.float_dtype().unwrap_or(DType::F32);
        self.param(&c.origin, hint, shape, c.to_f64()?, dtype, init)
    }

    /// The node at `index` (for folding a bias into a `Dense`).
    fn ir_node_mut(&mut self, index: usize) -> &mut Node {
        &mut self.graph.nodes[index]
    }

    fn ir_node_count(&self) -> usize {
        self.graph.nodes.len()
    }

    fn ir_node_name(&self, index: usize) -> &str {
        &self.graph.nodes[index].name
    }

    /// Gives the IR node at `index` a fresh name derived from `name`.
    fn rename_node(&mut self, index: usize, name: &str) {
        let name = fresh(&self.taken_nodes, name);
        self.taken_nodes.insert(name.clone());
        self.graph.nodes[index].name = name;
    }

    /// Renames the IR value `from` (defined by a node, read by no node yet) to `to`.
    fn rename_output(&mut self, node: usize, from: &str, to: &str) {
        if let Some(out) = self.graph.nodes[node]
            .outputs
            .iter_mut()
            .find(|o| *o == from)
        {
            *out = to.to_string();
        }
        if let Some(mut info) = self.infos.remove(from) {
            info.name = to.to_string();
            self.infos.insert(to.to_string(), info);
        }
        if let Some(index) = self.producers.remove(from) {
            self.producers.insert(to.to_string(), index);
        }
    }
}

/// `base`, or `base.1`, `base.2`... whichever `taken` does not hold.
fn fresh(taken: &HashSet<String>, base: &str) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (1..)
        .map(|k| format!("{base}.{k}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default()
}

/// A float constant's data as a fill of zeros, for the IR's zero initial states.
fn is_zeros(c: &Const) -> bool {
    match &c.data {
        ConstData::Fill { value, .. } => *value == 0.0,
        ConstData::Float { values, .. } => values.iter().all(|&v| v == 0.0),
        ConstData::Int(values) => values.iter().all(|v| v.int() == Some(0)),
    }
}
