//! How much memory a model needs, computed from its graph alone: nothing is allocated, so a
//! model too large for the machine is refused (naming its largest parameter and layer) before
//! any weight is initialised or any buffer planned.

use crate::error::Result;
use crate::ir::{format_shape, Graph};
use crate::limits::{format_bytes, Limits};

/// Bytes per element: every value dlbench trains is f32 (labels are i64 but small).
const ELEMENT_BYTES: u64 = 4;

/// Copies of the parameters training holds: the weights, their gradients and up to two
/// optimizer moments (Adam).
const PARAMETER_COPIES: u64 = 4;

/// Copies of the activations training holds: the forward values and their gradients.
const ACTIVATION_COPIES: u64 = 2;

/// A model's element counts at one batch size; counts saturate rather than wrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// The batch size the activations are counted at.
    pub batch: usize,
    /// Trainable scalars.
    pub parameters: u64,
    /// The largest parameter: its name, shape and element count.
    pub largest_parameter: Option<(String, String, u64)>,
    /// Elements of every graph input and node output for one batch.
    pub activations: u64,
    /// The node with the largest outputs for one batch: its name and element count.
    pub largest_node: Option<(String, u64)>,
}

impl Footprint {
    /// The footprint of `graph` at `batch`, from shape inference only.
    pub fn of(graph: &Graph, batch: usize) -> Result<Footprint> {
        let values = graph.infer()?;
        let count = |shape: Vec<usize>| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64));
        let mut footprint = Footprint {
            batch,
            parameters: 0,
            largest_parameter: None,
            activations: 0,
            largest_node: None,
        };
        for param in &graph.params {
            let n = count(param.value.resolve(1));
            footprint.parameters = footprint.parameters.saturating_add(n);
            if footprint.largest_parameter.as_ref().is_none_or(|l| n > l.2) {
                let shape = format_shape(&param.value.shape);
                footprint.largest_parameter = Some((param.value.name.clone(), shape, n));
            }
        }
        for input in &graph.inputs {
            let n = count(input.value.resolve(batch));
            footprint.activations = footprint.activations.saturating_add(n);
        }
        for node in &graph.nodes {
            let n = node
                .outputs
                .iter()
                .map(|o| count(values[o].resolve(batch)))
                .fold(0u64, u64::saturating_add);
            footprint.activations = footprint.activations.saturating_add(n);
            if footprint.largest_node.as_ref().is_none_or(|l| n > l.1) {
                footprint.largest_node = Some((node.name.clone(), n));
            }
        }
        Ok(footprint)
    }

    /// Bytes of the parameters alone (what a saved model or `inspect` holds).
    pub fn parameter_bytes(&self) -> u64 {
        self.parameters.saturating_mul(ELEMENT_BYTES)
    }

    /// An estimate of the bytes training needs: weights, gradients and two optimizer moments
    /// per parameter, plus the forward values and gradients of one batch.
    pub fn training_bytes(&self) -> u64 {
        let params = self.parameter_bytes().saturating_mul(PARAMETER_COPIES);
        let activations = self
            .activations
            .saturating_mul(ELEMENT_BYTES)
            .saturating_mul(ACTIVATION_COPIES);
        params.saturating_add(activations)
    }

    /// Refuses a model whose parameters, or whose training at this batch size, would need
    /// more memory than `limits` allow; the error names the model, its largest parameter and
    /// its largest layer.
    pub fn check(&self, model: &str, limits: &Limits) -> Result<()> {
        let largest_parameter = match &self.largest_parameter {
            Some((name, shape, _)) => format!("; the largest, `{name}`, is {shape}"),
            None => String::new(),
        };
        let largest_node = match &self.largest_node {
            Some((name, n)) => format!("; the most, {n}, from layer `{name}`"),
            None => String::new(),
        };
        limits.check_memory(
            &format!(
                "model `{model}` ({} parameters{largest_parameter}) as f32",
                self.parameters
            ),
            self.parameter_bytes(),
        )?;
        limits.check_memory(
            &format!(
                "model `{model}` trained at batch {} ({} parameters{largest_parameter}; {} \
                 activation values per batch{largest_node}: about {} for parameters, gradients \
                 and optimizer state, {} for activations and their gradients)",
                self.batch,
                self.parameters,
                self.activations,
                format_bytes(self.parameter_bytes().saturating_mul(PARAMETER_COPIES)),
                format_bytes(
                    self.activations
                        .saturating_mul(ELEMENT_BYTES * ACTIVATION_COPIES)
                ),
            ),
            self.training_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::GraphBuilder;

    fn mlp(units: usize) -> Graph {
        let mut b = GraphBuilder::new("mlp");
        let x = b.data_input("x", &[10]).unwrap();
        let h = b.dense(Some("hidden"), &x, units, true).unwrap();
        b.finish(&[&h]).unwrap()
    }

    #[test]
    fn counts_parameters_and_activations_without_weights() {
        let f = Footprint::of(&mlp(20), 8).unwrap();
        assert_eq!(f.parameters, 20 * 10 + 20);
        assert_eq!(f.activations, 8 * 10 + 8 * 20);
        assert_eq!(f.largest_node, Some(("hidden".to_string(), 160)));
        assert_eq!(f.training_bytes(), 4 * 4 * 220 + 4 * 2 * 240);
    }

    #[test]
    fn a_model_over_the_memory_limit_is_refused_by_its_largest_layer() {
        let limits = Limits::defaults(2 << 30);
        let f = Footprint::of(&mlp(1_000_000_000_000), 1).unwrap();
        let err = f.check("mlp", &limits).unwrap_err().to_string();
        assert!(
            err.contains("`hidden.weight`, is 1000000000000x10")
                && err.contains("DLBENCH_MAX_MEMORY"),
            "{err}"
        );
        assert!(Footprint::of(&mlp(20), 32)
            .unwrap()
            .check("mlp", &limits)
            .is_ok());
    }
}
