//! The seed CNN in candle 0.11, as candle's MNIST example writes a model: candle-nn layers
//! built from a `VarMap`, `Tensor::max_pool2d`, `candle_nn::loss::cross_entropy`, and
//! candle-nn's SGD stepping every variable with `backward_step`.
//!
//! This is what a candle user gets, and it is not quite PyTorch's training step: candle's
//! max-pool backward multiplies the gradient by 1/(kh*kw) (see dlbench-candle's crate docs),
//! which dlbench's adapter corrects by composing the training max-pool. `benches/plain.rs`
//! times that difference separately.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Linear, Optimizer, VarBuilder, VarMap, SGD};

use crate::plain::shape::{CLASSES, FILTERS, FLAT, HIDDEN, INPUT, LR};

/// Conv(1->32, 3x3) -> relu -> maxpool 2 -> Conv(32->64, 3x3) -> relu -> maxpool 2 -> flatten
/// -> Dense(100) -> relu -> Dense(10).
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Cnn {
    /// The layers with candle-nn's default initialisation, their variables in `vars`.
    pub fn new(vars: &VarMap, device: &Device) -> Result<Cnn> {
        let vb = VarBuilder::from_varmap(vars, DType::F32, device);
        let conv = Default::default();
        Ok(Cnn {
            conv1: candle_nn::conv2d(INPUT[0], FILTERS[0], 3, conv, vb.pp("conv1"))?,
            conv2: candle_nn::conv2d(FILTERS[0], FILTERS[1], 3, conv, vb.pp("conv2"))?,
            fc1: candle_nn::linear(FLAT, HIDDEN, vb.pp("fc1"))?,
            fc2: candle_nn::linear(HIDDEN, CLASSES, vb.pp("fc2"))?,
        })
    }
}

impl Module for Cnn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(x)?.relu()?.max_pool2d(2)?;
        let x = self.conv2.forward(&x)?.relu()?.max_pool2d(2)?;
        let x = self.fc1.forward(&x.flatten_from(1)?)?.relu()?;
        self.fc2.forward(&x)
    }
}

/// A batch of images as a candle tensor on the CPU.
fn images(pixels: &[f32], device: &Device) -> Result<Tensor> {
    let n = pixels.len() / INPUT.iter().product::<usize>();
    Tensor::from_slice(pixels, (n, INPUT[0], INPUT[1], INPUT[2]), device)
}

/// The model, its SGD and one batch on the CPU.
pub struct Training {
    model: Cnn,
    optimizer: SGD,
    x: Tensor,
    labels: Tensor,
}

impl Training {
    /// A fresh model and SGD (lr 0.01) with `pixels` / `labels` as its batch.
    pub fn new(pixels: &[f32], labels: &[u32]) -> Result<Training> {
        let device = Device::Cpu;
        let vars = VarMap::new();
        let model = Cnn::new(&vars, &device)?;
        Ok(Training {
            optimizer: SGD::new(vars.all_vars(), LR)?,
            model,
            x: images(pixels, &device)?,
            labels: Tensor::from_slice(labels, labels.len(), &device)?,
        })
    }

    /// Forward, loss, backward and one SGD update.
    pub fn step(&mut self) -> Result<()> {
        let logits = self.model.forward(&self.x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &self.labels)?;
        self.optimizer.backward_step(&loss)
    }
}

/// The model and one batch on the CPU.
pub struct Inference {
    model: Cnn,
    x: Tensor,
}

impl Inference {
    /// A fresh model with `pixels` as its batch.
    pub fn new(pixels: &[f32]) -> Result<Inference> {
        let device = Device::Cpu;
        let vars = VarMap::new();
        Ok(Inference {
            model: Cnn::new(&vars, &device)?,
            x: images(pixels, &device)?,
        })
    }

    /// One forward pass; returns the logits.
    pub fn forward(&self) -> Result<Tensor> {
        self.model.forward(&self.x)
    }
}

/// The CNN's first block alone, conv(1->32, 3x3) -> max-pool 2, trained against a mean squared
/// error on the pooled output: it isolates the cost of candle's max-pool in a training step,
/// whose backward dlbench's adapter replaces.
pub struct ConvPoolTraining {
    conv: Conv2d,
    optimizer: SGD,
    x: Tensor,
    target: Tensor,
}

impl ConvPoolTraining {
    /// A fresh convolution and SGD (lr 0.01) with `pixels` as its batch and a target of ones.
    pub fn new(pixels: &[f32]) -> Result<ConvPoolTraining> {
        let device = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let conv = candle_nn::conv2d(INPUT[0], FILTERS[0], 3, Default::default(), vb)?;
        let x = images(pixels, &device)?;
        let pooled = [INPUT[1] - 2, INPUT[2] - 2].map(|d| d / 2);
        let target = Tensor::ones(
            (x.dim(0)?, FILTERS[0], pooled[0], pooled[1]),
            DType::F32,
            &device,
        )?;
        Ok(ConvPoolTraining {
            conv,
            optimizer: SGD::new(vars.all_vars(), LR)?,
            x,
            target,
        })
    }

    /// Forward, loss, backward and one SGD update.
    pub fn step(&mut self) -> Result<()> {
        let y = self.conv.forward(&self.x)?.max_pool2d(2)?;
        let loss = candle_nn::loss::mse(&y, &self.target)?;
        self.optimizer.backward_step(&loss)
    }
}
