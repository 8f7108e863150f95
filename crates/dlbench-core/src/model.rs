//! [`Model`]: a graph with its weights, the unit that backends prepare and formats read and
//! write, and the checks that keep the two consistent.

use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::tensor::Values;
use crate::training::Loss;

/// A graph and a value for each of its parameters: what backends prepare and formats move.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The computation, without a loss node unless built by [`Model::with_loss`].
    pub graph: Graph,
    /// One tensor per graph parameter, by name, of its declared dtype and shape.
    pub weights: Values,
}

impl Model {
    /// Checks the graph (shape inference) and that the weights match its parameters exactly.
    pub fn new(graph: Graph, weights: Values) -> Result<Self> {
        let model = Model { graph, weights };
        model.validate()?;
        Ok(model)
    }

    /// The checks of [`Model::new`], for a model whose fields were set directly: the graph
    /// infers, and each parameter has a weight of its declared dtype and shape, and no more.
    pub fn validate(&self) -> Result<()> {
        let graph = &self.graph;
        graph.infer()?;
        for param in &graph.params {
            let name = &param.value.name;
            let weight = self.weights.get(name).ok_or_else(|| {
                Error::invalid(format!(
                    "model `{}`: no weight for parameter `{name}`",
                    graph.name
                ))
            })?;
            let expected = param.value.resolve(1);
            if weight.shape() != expected || weight.dtype() != param.value.dtype {
                return Err(Error::invalid(format!(
                    "model `{}`: weight `{name}` is {} {:?}, the graph declares {} {:?}",
                    graph.name,
                    weight.dtype(),
                    weight.shape(),
                    param.value.dtype,
                    expected
                )));
            }
        }
        // A set, not `graph.param` per weight: a crafted file may hold a million weights.
        let params: std::collections::HashSet<&str> =
            graph.params.iter().map(|p| p.value.name.as_str()).collect();
        if let Some(extra) = self.weights.keys().find(|k| !params.contains(k.as_str())) {
            return Err(Error::invalid(format!(
                "model `{}`: weight `{extra}` is not a parameter of the graph",
                graph.name
            )));
        }
        Ok(())
    }

    /// A fresh model, initialised like PyTorch from `seed`.
    pub fn initialized(graph: Graph, seed: u64) -> Result<Self> {
        let weights = graph
            .params
            .iter()
            .map(|param| {
                let name = &param.value.name;
                let value = param.init.sample(name, param.value.resolve(1), seed)?;
                Ok((name.clone(), value))
            })
            .collect::<Result<Values>>()?;
        Model::new(graph, weights)
    }

    /// The same weights under the training graph for `loss`.
    pub fn with_loss(&self, loss: Loss) -> Result<Model> {
        Ok(Model {
            graph: self.graph.with_loss(loss)?,
            weights: self.weights.clone(),
        })
    }

    /// Total number of trainable scalars, as [`Graph::parameter_count`].
    pub fn parameter_count(&self) -> usize {
        self.graph.parameter_count()
    }
}
