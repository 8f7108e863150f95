//! The seed CNN in burn 0.22, as burn's book writes a model: a `#[derive(Module)]` struct of
//! burn-nn layers, `CrossEntropyLoss`, and burn-optim's SGD stepping the whole module from
//! `GradientsParams`. Train on `Device::flex().autodiff()`, infer on `Device::flex()`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::plain::shape::{CLASSES, FILTERS, FLAT, HIDDEN, INPUT, LR};

/// Conv(1->32, 3x3) -> relu -> maxpool 2 -> Conv(32->64, 3x3) -> relu -> maxpool 2 -> flatten
/// -> Dense(100) -> relu -> Dense(10).
#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    relu: Relu,
}

impl Cnn {
    /// The layers with burn's default initialisation on `device`.
    pub fn new(device: &Device) -> Cnn {
        Cnn {
            conv1: Conv2dConfig::new([INPUT[0], FILTERS[0]], [3, 3]).init(device),
            conv2: Conv2dConfig::new([FILTERS[0], FILTERS[1]], [3, 3]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(FLAT, HIDDEN).init(device),
            fc2: LinearConfig::new(HIDDEN, CLASSES).init(device),
            relu: Relu::new(),
        }
    }

    /// The logits of a batch of images `[N, 1, 32, 32]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x = self.relu.forward(self.fc1.forward(x.flatten(1, 3)));
        self.fc2.forward(x)
    }
}

/// A batch of images as a burn tensor on `device`.
fn images(pixels: &[f32], device: &Device) -> Tensor<4> {
    let n = pixels.len() / INPUT.iter().product::<usize>();
    let data = TensorData::new(pixels.to_vec(), [n, INPUT[0], INPUT[1], INPUT[2]]);
    Tensor::from_data(data, device)
}

/// The model, its optimizer and loss, and one batch on burn's autodiff CPU device.
pub struct Training {
    /// `None` only inside [`Training::step`]: burn's optimizer takes the module by value.
    model: Option<Cnn>,
    optimizer: ModuleOptimizer,
    loss: CrossEntropyLoss,
    device: Device,
    x: Tensor<4>,
    labels: Tensor<1, Int>,
}

impl Training {
    /// A fresh model and SGD (lr 0.01, no momentum) with `pixels` / `labels` as its batch.
    pub fn new(pixels: &[f32], labels: &[u32]) -> Training {
        let device = Device::flex().autodiff();
        let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
        let n = labels.len();
        Training {
            model: Some(Cnn::new(&device)),
            optimizer: SgdConfig::new().init(),
            loss: CrossEntropyLossConfig::new().init(&device),
            x: images(pixels, &device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), &device),
            device,
        }
    }

    /// Forward, loss, backward and one SGD update.
    ///
    /// # Panics
    /// When the device fails to synchronise.
    pub fn step(&mut self) {
        let model = self
            .model
            .take()
            .expect("the model is back after each step");
        let logits = model.forward(self.x.clone());
        let loss = self.loss.forward(logits, self.labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(LR, model, grads));
        self.device.sync().expect("device sync");
    }
}

/// The model and one batch on burn's plain (non-autodiff) CPU device.
pub struct Inference {
    model: Cnn,
    device: Device,
    x: Tensor<4>,
}

impl Inference {
    /// A fresh model with `pixels` as its batch.
    pub fn new(pixels: &[f32]) -> Inference {
        let device = Device::flex();
        Inference {
            model: Cnn::new(&device),
            x: images(pixels, &device),
            device,
        }
    }

    /// One forward pass; returns the logits.
    ///
    /// # Panics
    /// When the device fails to synchronise.
    pub fn forward(&self) -> Tensor<2> {
        let logits = self.model.forward(self.x.clone());
        self.device.sync().expect("device sync");
        logits
    }
}
