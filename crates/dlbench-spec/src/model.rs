//! The `model:` section: a sequential list of layers, an explicit graph, or a saved model, and
//! how each becomes a dlbench-core [`Graph`].

use std::fmt;
use std::path::{Path, PathBuf};

use dlbench_core::{DType, Dim, Graph, GraphBuilder, InputRole, Model};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;

use super::de;
use super::layer::{layer_value, Layer};

/// The `model:` section.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `{input: [1, 32, 32], layers: [...]}`: layers applied one after another (Keras'
    /// `Sequential`) to a data input `x` whose samples have the shape `input`.
    Sequential {
        /// The shape of one sample, without the batch dim (e.g. `[1, 32, 32]`, CHW).
        input: Vec<usize>,
        /// The layers, in order; each reads the previous one's output.
        layers: Vec<Layer>,
    },
    /// `{graph: {inputs, nodes, outputs}}`: named nodes wired explicitly.
    Graph(GraphSpec),
    /// `{file: model.safetensors}` or `{file: model.onnx}`: a model in dlbench's native
    /// format or in ONNX, weights included; relative to the spec's folder.
    File(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default, deserialize_with = "de::positive_list_opt")]
    input: Option<Vec<usize>>,
    layers: Option<Vec<Layer>>,
    graph: Option<GraphSpec>,
    file: Option<PathBuf>,
}

impl TryFrom<RawModel> for ModelSpec {
    type Error = String;
    fn try_from(raw: RawModel) -> Result<Self, String> {
        match (raw.input, raw.layers, raw.graph, raw.file) {
            (Some(_), Some(layers), None, None) if layers.is_empty() => {
                Err("`layers` is empty: give at least one layer".to_string())
            }
            (Some(input), Some(layers), None, None) => Ok(ModelSpec::Sequential { input, layers }),
            (None, None, Some(graph), None) => Ok(ModelSpec::Graph(graph)),
            (None, None, None, Some(file)) => Ok(ModelSpec::File(file)),
            (Some(_), None, None, None) => {
                Err("missing field `layers` next to `input`".to_string())
            }
            (None, Some(_), None, None) => Err(
                "missing field `input`: the shape of one sample, e.g. `input: [1, 32, 32]`"
                    .to_string(),
            ),
            _ => Err(
                "give one model form: `input` with `layers` (sequential), `graph` \
                      (an explicit graph) or `file` (a saved .safetensors or .onnx model)"
                    .to_string(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via::<D, RawModel, ModelSpec>(d)
    }
}

/// `graph: {inputs: {...}, nodes: [...], outputs: [...]}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// Inputs by name, in order: `x: [1000]` (a data input of that sample shape) or
    /// `eps: {shape: [50], role: normal}`.
    #[serde(deserialize_with = "de::ordered_map")]
    pub inputs: Vec<(String, InputSpec)>,
    /// Nodes in order; each reads inputs and earlier nodes by name.
    #[serde(deserialize_with = "de::non_empty")]
    pub nodes: Vec<NodeSpec>,
    /// The values the model returns, by name (node or input names).
    #[serde(deserialize_with = "de::non_empty")]
    pub outputs: Vec<String>,
}

/// What feeds a graph input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// The dataset's features.
    #[default]
    Data,
    /// Standard normal noise from the harness's seeded RNG (a VAE's epsilon).
    Normal,
}

/// One graph input: the shape of one sample (the batch dim is implied) and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The shape of one sample, without the batch dim; positive sizes.
    pub shape: Vec<usize>,
    /// What feeds it; default [`InputKind::Data`].
    pub role: InputKind,
}

/// The long form of an input: `{shape: [50], role: normal}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    #[serde(deserialize_with = "de::positive_list")]
    shape: Vec<usize>,
    #[serde(default)]
    role: InputKind,
}

impl From<RawInput> for InputSpec {
    fn from(raw: RawInput) -> Self {
        InputSpec {
            shape: raw.shape,
            role: raw.role,
        }
    }
}

/// The short form of an input: its shape, `[1000]`.
struct Shape(Vec<usize>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::positive_list(d).map(Shape)
    }
}

impl From<Shape> for InputSpec {
    fn from(shape: Shape) -> Self {
        InputSpec {
            shape: shape.0,
            role: InputKind::Data,
        }
    }
}

impl<'de> Deserialize<'de> for InputSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::list_or_map::<D, Shape, RawInput, InputSpec>(d)
    }
}

/// One node of an explicit graph: `{name: enc, dense: {units: 256}, inputs: [x]}` or, for a
/// layer without options, `{name: z, op: add, inputs: [mu, noise]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Unique; names the node and its parameters (`<name>.weight`...), and later nodes and
    /// the graph's `outputs` refer to its output by it.
    pub name: String,
    /// What the node computes, with its options.
    pub layer: Layer,
    /// Names of graph inputs or earlier nodes, in the layer's argument order.
    pub inputs: Vec<String>,
}

impl<'de> Deserialize<'de> for NodeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a node: `{name: ..., inputs: [...], op: ...}` or `{name: ..., inputs: [...], dense: {...}}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeSpec, A::Error> {
                let (mut name, mut inputs, mut layer) = (None, None, None::<Layer>);
                while let Some(key) = map.next_key::<String>()? {
                    let duplicate = match key.as_str() {
                        "name" => name.replace(map.next_value::<String>()?).is_some(),
                        "inputs" => inputs.replace(map.next_value::<Vec<String>>()?).is_some(),
                        _ => {
                            let next = match key.as_str() {
                                "op" => Layer::bare(&map.next_value::<String>()?)
                                    .map_err(A::Error::custom)?,
                                _ => layer_value(&key, &mut map).map_err(|e| {
                                    // An unknown key may be a misspelt field rather than a layer.
                                    let text = e.to_string();
                                    if text.starts_with("unknown layer") {
                                        A::Error::custom(format!(
                                            "{text}; or a node field `name`, `inputs`, `op`"
                                        ))
                                    } else {
                                        e
                                    }
                                })?,
                            };
                            if let Some(first) = layer.replace(next) {
                                return Err(A::Error::custom(format!(
                                    "a node has one layer, this one has `{}` and `{key}`",
                                    first.name()
                                )));
                            }
                            false
                        }
                    };
                    if duplicate {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                }
                let name = name.ok_or_else(|| A::Error::missing_field("name"))?;
                let inputs = inputs.ok_or_else(|| A::Error::missing_field("inputs"))?;
                let layer = layer.ok_or_else(|| {
                    A::Error::custom(format!(
                        "node `{name}` has no layer: add `op: add` or a layer such as `dense: {{units: 10}}`"
                    ))
                })?;
                Ok(NodeSpec {
                    name,
                    layer,
                    inputs,
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl ModelSpec {
    /// The model's graph, named `name`, without weights; a model file is read from `dir`.
    pub fn graph(&self, name: &str, dir: &Path) -> Result<Graph, String> {
        match self {
            ModelSpec::Sequential { input, layers } => sequential(name, input, layers),
            ModelSpec::Graph(graph) => explicit(name, graph),
            ModelSpec::File(file) => Ok(load(dir, file)?.graph),
        }
    }

    /// The model with its initial weights from `seed`, or as saved in its file.
    pub fn model(&self, name: &str, seed: u64, dir: &Path) -> Result<Model, String> {
        match self {
            ModelSpec::File(file) => load(dir, file),
            _ => Model::initialized(self.graph(name, dir)?, seed).map_err(|e| e.to_string()),
        }
    }
}

/// A model file by its extension: dlbench's native `.safetensors` or an ONNX model.
fn load(dir: &Path, file: &Path) -> Result<Model, String> {
    let path = dir.join(file);
    match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => dlbench_formats::onnx::import_onnx(&path).map_err(|e| e.to_string()),
        Some("safetensors") => Model::load(&path).map_err(|e| e.to_string()),
        _ => Err(format!(
            "model file {}: expected a native model (.safetensors) or an ONNX model (.onnx)",
            file.display()
        )),
    }
}

fn sequential(name: &str, input: &[usize], layers: &[Layer]) -> Result<Graph, String> {
    let mut b = GraphBuilder::new(name);
    let mut x = b.data_input("x", input).map_err(|e| e.to_string())?;
    for (i, layer) in layers.iter().enumerate() {
        let at = format!("model.layers[{i}] ({})", layer.name());
        let (min, _) = layer.arity();
        if min > 1 {
            return Err(format!(
                "{at}: takes {min} inputs; wire them with the `graph` model form"
            ));
        }
        x = layer
            .build(&mut b, None, &[&x])
            .map_err(|e| format!("{at}: {e}"))?;
    }
    b.finish(&[&x]).map_err(|e| e.to_string())
}

fn explicit(name: &str, spec: &GraphSpec) -> Result<Graph, String> {
    let mut b = GraphBuilder::new(name);
    // Spec names and the values they stand for: a layer's name stands for its last output.
    let mut defined: Vec<(String, String)> = Vec::new();
    for (input, s) in &spec.inputs {
        let result = match s.role {
            InputKind::Data => b.data_input(input, &s.shape),
            InputKind::Normal => {
                let shape = std::iter::once(Dim::Batch)
                    .chain(s.shape.iter().map(|&d| Dim::Known(d)))
                    .collect();
                b.input(input, DType::F32, shape, InputRole::Normal)
            }
        };
        result.map_err(|e| format!("model.graph.inputs: {e}"))?;
        defined.push((input.clone(), input.clone()));
    }
    let resolve = |defined: &[(String, String)], b: &GraphBuilder, name: &str| match defined
        .iter()
        .find(|(n, _)| n == name)
    {
        Some((_, value)) => Some(value.clone()),
        None => b.info(name).ok().map(|_| name.to_string()),
    };
    let known = |defined: &[(String, String)]| {
        defined
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, node) in spec.nodes.iter().enumerate() {
        let at = format!(
            "model.graph.nodes[{i}] (`{}`, {})",
            node.name,
            node.layer.name()
        );
        if defined.iter().any(|(n, _)| *n == node.name) {
            return Err(format!("{at}: the name `{}` is already used", node.name));
        }
        let (min, max) = node.layer.arity();
        let n = node.inputs.len();
        if n < min || n > max {
            let want = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!("{at}: takes {want} input(s), got {n}"));
        }
        let inputs = node
            .inputs
            .iter()
            .map(|input| {
                resolve(&defined, &b, input).ok_or_else(|| {
                    format!(
                        "{at}: unknown input `{input}`; defined before this node: {}",
                        known(&defined)
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let output = node
            .layer
            .build(&mut b, Some(&node.name), &refs)
            .map_err(|e| format!("{at}: {e}"))?;
        defined.push((node.name.clone(), output));
    }
    let outputs = spec
        .outputs
        .iter()
        .map(|o| {
            resolve(&defined, &b, o).ok_or_else(|| {
                format!(
                    "model.graph.outputs: unknown value `{o}`; defined: {}",
                    known(&defined)
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    b.finish(&refs).map_err(|e| e.to_string())
}
