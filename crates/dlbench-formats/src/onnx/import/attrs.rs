//! One ONNX node being imported: its attributes by name, with the node, op and opset in every
//! error, so that a message always says where the file went wrong.

use crate::onnx::proto::{AttributeProto, AttributeType, NodeProto, TensorProto};

/// An ONNX node and the opset it is read under.
pub(super) struct At<'a> {
    pub node: &'a NodeProto,
    /// The node's name, or `<op_type> #<index>` for an unnamed one.
    pub name: String,
    pub opset: i64,
}

impl<'a> At<'a> {
    pub fn new(node: &'a NodeProto, index: usize, opset: i64) -> Self {
        let name = match node.name.is_empty() {
            true => format!("{} #{index}", node.op_type),
            false => node.name.clone(),
        };
        At { node, name, opset }
    }

    /// An error about this node.
    pub fn error(&self, message: impl std::fmt::Display) -> String {
        format!(
            "node `{}` ({}, opset {}): {message}",
            self.name, self.node.op_type, self.opset
        )
    }

    /// An error about one of this node's attributes.
    pub fn attr_error(&self, attr: &str, message: impl std::fmt::Display) -> String {
        self.error(format!("attribute `{attr}`: {message}"))
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// The attribute `name` checked to be of `kind` (files from old writers leave the type
    /// unset; the value fields then decide).
    fn typed(&self, name: &str, kind: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        match self.attr(name) {
            Some(a) if a.r#type == kind as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(self.attr_error(
                name,
                format!(
                    "expected {kind:?}, got {:?}",
                    AttributeType::try_from(a.r#type).unwrap_or(AttributeType::Undefined)
                ),
            )),
            None => Ok(None),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self
            .typed(name, AttributeType::Int)?
            .map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .typed(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        self.typed(name, AttributeType::String)?
            .map(|a| String::from_utf8(a.s.clone()).map_err(|_| self.attr_error(name, "not UTF-8")))
            .transpose()
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        self.typed(name, AttributeType::Strings)?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.clone()).map_err(|_| self.attr_error(name, "not UTF-8"))
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, String> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Refuses an attribute the import cannot honour unless it has its default value.
    pub fn require_int(&self, name: &str, default: i64, why: &str) -> Result<(), String> {
        let value = self.int(name, default)?;
        match value == default {
            true => Ok(()),
            false => Err(self.attr_error(name, format!("{value} is not supported: {why}"))),
        }
    }

    /// The names of the attributes the node sets, for refusing unknown ones.
    pub fn attribute_names(&self) -> impl Iterator<Item = &'a str> {
        self.node.attribute.iter().map(|a| a.name.as_str())
    }

    /// Input `i`'s value name; an empty name (an omitted optional input) is `None`.
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Output `i`'s value name, if the node defines it.
    pub fn output(&self, i: usize) -> Option<&'a str> {
        self.node
            .output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}
