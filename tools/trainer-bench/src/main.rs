//! Images per second of Gal et al.'s Bayesian CNN (conv 32@4x4, ReLU, conv 32@4x4, ReLU,
//! max-pool 2x2, dropout 0.25, dense 128, ReLU, dropout 0.5, dense 10) with burn on the CPU:
//! one training step (forward, backward, Adam) on a batch of 28x28 images, and inference.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

#[derive(Module, Debug)]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    drop1: Dropout,
    fc1: Linear,
    drop2: Dropout,
    fc2: Linear,
    relu: Relu,
}

impl Cnn {
    fn new(device: &Device) -> Self {
        Cnn {
            conv1: Conv2dConfig::new([1, 32], [4, 4]).init(device),
            conv2: Conv2dConfig::new([32, 32], [4, 4]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            drop1: DropoutConfig::new(0.25).init(),
            fc1: LinearConfig::new(3872, 128).init(device),
            drop2: DropoutConfig::new(0.5).init(),
            fc2: LinearConfig::new(128, 10).init(device),
            relu: Relu::new(),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.relu.forward(self.conv1.forward(x));
        let x = self.relu.forward(self.conv2.forward(x));
        let x = self.pool.forward(x);
        let x = self.drop1.forward(x);
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.relu.forward(self.fc1.forward(x));
        let x = self.drop2.forward(x);
        self.fc2.forward(x)
    }
}

fn train(device: &Device, batch: usize, steps: usize) {
    let mut model = Cnn::new(device);
    let mut opt = AdamConfig::new().init();
    let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, device);
    let y = Tensor::<1, Int>::from_ints(
        (0..batch as i32)
            .map(|i| i % 10)
            .collect::<Vec<_>>()
            .as_slice(),
        device,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    for _ in 0..2 {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(1e-3, model, grads);
    }
    let t = Instant::now();
    for _ in 0..steps {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(1e-3, model, grads);
    }
    let _ = loss_fn
        .forward(model.forward(x.clone()), y.clone())
        .into_data();
    let s = t.elapsed().as_secs_f64();
    println!(
        "batch {batch}: {:.0} images/s (train step: fwd+bwd+adam)",
        (batch * steps) as f64 / s
    );
    let m = model.valid();
    let xi = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &cpu());
    let t = Instant::now();
    for _ in 0..steps {
        let _ = m.forward(xi.clone()).into_data();
    }
    println!(
        "batch {batch}: {:.0} images/s (inference)",
        (batch * steps) as f64 / t.elapsed().as_secs_f64()
    );
}

/// The CPU backend the features choose.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
fn cpu() -> Device {
    Device::ndarray()
}

/// The CPU backend the features choose.
#[cfg(not(feature = "ndarray"))]
fn cpu() -> Device {
    Device::flex()
}

fn main() {
    let device = cpu().autodiff();
    for batch in [64usize, 128] {
        train(&device, batch, 10);
    }
}
