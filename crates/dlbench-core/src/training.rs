//! What training means for a model: a loss, appended to the graph as a node, and an optimizer
//! whose hyperparameters and defaults are PyTorch's.

use serde::{Deserialize, Serialize};
use strum::{EnumDiscriminants, EnumIter};

use crate::error::{Error, Result};
use crate::ir::{Dim, Graph, Input, InputRole, LossOp, Node, Op, ValueInfo};
use crate::tensor::DType;

/// The losses a training graph can end in: the loss family of the IR, under the name the
/// training configuration, the spec's `loss:` and the results use (one enum, not two).
pub use crate::ir::LossOp as Loss;

/// `torch.optim.SGD`: momentum, dampening, Nesterov and (L2) weight decay, PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: none).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer (PyTorch's default 0; burn's
    /// is 0.1).
    pub dampening: f64,
    /// Nesterov momentum (needs a positive momentum and zero dampening).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// `torch.optim.Adam` (L2 weight decay added to the gradient, optional AMSGrad).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first-moment (mean) estimate, in `[0, 1)`.
    pub beta1: f64,
    /// Decay of the second-moment (uncentred variance) estimate, in `[0, 1)`.
    pub beta2: f64,
    /// Added to the denominator's square root (PyTorch's 1e-8; burn's default is 1e-5).
    pub eps: f64,
    /// L2 penalty added to the gradient (Adam's, not AdamW's decoupled decay).
    pub weight_decay: f64,
    /// Divides by the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

/// Plain gradient descent on the whole training set as one batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gd {
    /// Learning rate.
    pub lr: f64,
}

impl Default for Gd {
    fn default() -> Self {
        Gd { lr: 1e-3 }
    }
}

/// An optimizer and its hyperparameters. [`OptimizerKind`] lists the optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, EnumDiscriminants)]
#[serde(rename_all = "snake_case")]
#[strum_discriminants(name(OptimizerKind), derive(Hash, EnumIter))]
pub enum Optimizer {
    /// Plain gradient descent.
    Gd(Gd),
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.Adam`.
    Adam(Adam),
}

impl Optimizer {
    /// The optimizer's name as written in specs (`gd`, `sgd`, `adam`).
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Gd(_) => "gd",
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(_) => "adam",
        }
    }

    /// The hyperparameters by name, as specs write them.
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Optimizer::Gd(Gd { lr }) => vec![("lr", lr)],
            Optimizer::Sgd(s) => vec![
                ("lr", s.lr),
                ("momentum", s.momentum),
                ("dampening", s.dampening),
                ("weight_decay", s.weight_decay),
            ],
            Optimizer::Adam(a) => vec![
                ("lr", a.lr),
                ("beta1", a.beta1),
                ("beta2", a.beta2),
                ("eps", a.eps),
                ("weight_decay", a.weight_decay),
            ],
        }
    }

    /// Refuses hyperparameters PyTorch refuses: a non-positive learning rate, a negative
    /// momentum, weight decay or epsilon, betas outside `[0, 1)`, Nesterov without
    /// momentum or with dampening; and any that is not finite (`.nan`, `.inf`), which would
    /// only surface as a backend's NaN loss.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::invalid(format!("optimizer {}: {what}", self.name())));
        let params = self.hyperparameters();
        if let Some((name, v)) = params.iter().find(|(_, v)| !v.is_finite()) {
            return bad(&format!("{name} is {v}; it must be a finite number"));
        }
        if let Some((name, v)) = params
            .iter()
            .find(|(n, v)| !matches!(*n, "lr" | "dampening") && *v < 0.0)
        {
            return bad(&format!("{name} is {v}; it must not be negative"));
        }
        match *self {
            Optimizer::Gd(Gd { lr }) if lr <= 0.0 => bad("lr must be positive"),
            Optimizer::Sgd(s) if s.lr <= 0.0 => bad("lr must be positive"),
            Optimizer::Sgd(s) if s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0) => {
                bad("nesterov needs a positive momentum and zero dampening")
            }
            Optimizer::Adam(a) if a.lr <= 0.0 => bad("lr must be positive"),
            Optimizer::Adam(a)
                if !(0.0..1.0).contains(&a.beta1) || !(0.0..1.0).contains(&a.beta2) =>
            {
                bad("betas must be in [0, 1)")
            }
            _ => Ok(()),
        }
    }
}

/// The loss and optimizer a session trains with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// The loss appended to the graph.
    pub loss: Loss,
    /// How the parameters are updated from its gradients.
    pub optimizer: Optimizer,
}

/// The name of the loss value in a training graph.
pub const LOSS: &str = "loss";
/// The name of the target input a training graph adds (the VAE's ELBO uses its own input).
pub const TARGET: &str = "target";

impl Graph {
    /// The training graph: this graph, a target input where the loss needs one, and a loss
    /// node producing the scalar [`LOSS`], appended to the outputs.
    ///
    /// The loss reads the first output as the prediction; the VAE's ELBO reads the outputs
    /// `recon, mu, logvar` and the first data input.
    pub fn with_loss(&self, loss: Loss) -> Result<Graph> {
        let infos = self.output_infos()?;
        let mut graph = self.clone();
        let prediction = infos
            .first()
            .ok_or_else(|| Error::invalid(format!("graph `{}` has no output", self.name)))?;
        let target = match loss {
            LossOp::Mse | LossOp::BinaryCrossEntropy | LossOp::BinaryCrossEntropyWithLogits => {
                Some(ValueInfo::new(
                    TARGET,
                    prediction.dtype,
                    prediction.shape.clone(),
                ))
            }
            LossOp::CrossEntropy => Some(ValueInfo::new(
                TARGET,
                DType::I64,
                vec![prediction.shape[0]],
            )),
            // The ELBO reads the data input back instead.
            LossOp::VaeElbo => None,
        };
        let inputs = match target {
            None => {
                let data = self
                    .inputs
                    .iter()
                    .find(|i| i.role == InputRole::Data)
                    .ok_or_else(|| Error::invalid("the VAE ELBO needs a data input"))?;
                if infos.len() < 3 {
                    return Err(Error::invalid(format!(
                        "the VAE ELBO needs outputs recon, mu, logvar; graph `{}` has {}",
                        self.name,
                        infos.len()
                    )));
                }
                vec![
                    self.outputs[0].clone(),
                    self.outputs[1].clone(),
                    self.outputs[2].clone(),
                    data.value.name.clone(),
                ]
            }
            Some(target) => {
                if prediction.shape.first() != Some(&Dim::Batch) {
                    return Err(Error::invalid(format!(
                        "the prediction `{}` must have the batch as its first dim",
                        prediction.name
                    )));
                }
                graph.inputs.push(Input {
                    value: target,
                    role: InputRole::Target,
                });
                vec![self.outputs[0].clone(), TARGET.to_string()]
            }
        };
        graph.nodes.push(Node {
            name: LOSS.to_string(),
            op: Op::Loss(loss),
            inputs,
            outputs: vec![LOSS.to_string()],
        });
        graph.outputs.push(LOSS.to_string());
        graph.infer()?;
        Ok(graph)
    }
}
