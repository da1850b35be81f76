//! The experiment's models: the MLP, and Gal et al.'s Bayesian CNN ([`Cnn`]), trained from
//! scratch each round (cross-entropy, Adam, weight decay, early stopping on the validation
//! split). A model is run as features (once per image: the pixels, or the CNN's deterministic
//! trunk) and an MC-dropout head (bald-core's, so the K samples run on the chosen backend;
//! for the CNN dropout 0.25, 3872 -> 128, ReLU, dropout 0.5, 128 -> C).

use bald_core::owned::mc_dropout_forward;
use bald_core::{DenseLayer, McDropoutHead, Scalar};

use crate::cnn::{GalCnn, Workspace};
use crate::data::Dataset;
use crate::mlp::{fit, Mlp, TrainConfig};
use crate::nn::Adam;
use crate::rng::Rng;

/// The experiment's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Dense layers on the pixels.
    Mlp,
    /// Gal et al.'s Bayesian CNN.
    Cnn,
}

impl ModelKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
        }
    }
}

/// The MLP's shape: pixels -> `hidden` -> classes, with dropout before each layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlpShape {
    /// Hidden layer width.
    pub hidden: usize,
    /// Dropout before the first layer.
    pub input_dropout: f32,
    /// Dropout before the output layer.
    pub hidden_dropout: f32,
}

/// A round's model: trained on the labelled images, then run as features (once per image)
/// and an MC-dropout head (K times, on the backend).
pub enum Model {
    /// The MLP.
    Mlp(Mlp),
    /// The CNN.
    Cnn(Cnn),
}

impl Model {
    /// A fresh model of `kind` for `data`, weights drawn with `seed`.
    pub fn new(kind: ModelKind, mlp: MlpShape, data: &Dataset, seed: u64) -> Result<Self, String> {
        Ok(match kind {
            ModelKind::Mlp => Model::Mlp(Mlp::new(
                &[data.dim, mlp.hidden, data.classes],
                &[mlp.input_dropout, mlp.hidden_dropout],
                seed,
            )),
            ModelKind::Cnn => Model::Cnn(Cnn::new(data, seed)?),
        })
    }

    /// Trains on `train`, early stopping on `val`.
    pub fn train(
        &mut self,
        data: &Dataset,
        train: &[usize],
        val: &[usize],
        cfg: TrainConfig,
        seed: u64,
    ) {
        match self {
            Model::Mlp(m) => {
                m.train(data, train, val, cfg, seed);
            }
            Model::Cnn(m) => {
                m.train(data, train, val, cfg, seed);
            }
        }
    }

    /// The head's inputs for the images `idx`: the pixels (MLP) or the trunk's features (CNN).
    pub fn features(&self, data: &Dataset, idx: &[usize]) -> Vec<f32> {
        match self {
            Model::Mlp(_) => idx
                .iter()
                .flat_map(|&i| data.row(i).iter().copied())
                .collect(),
            Model::Cnn(m) => m.features(data, idx),
        }
    }

    /// The MC-dropout head, or with `dropout` false the same layers with dropout off.
    pub fn head(&self, dropout: bool) -> Vec<DenseLayer<'_>> {
        let layers = match self {
            Model::Mlp(m) => m.head(),
            Model::Cnn(m) => m.head(),
        };
        if dropout {
            return layers;
        }
        layers
            .into_iter()
            .map(|l| DenseLayer { dropout: 0.0, ..l })
            .collect()
    }
}

/// The head's dropout rates, before the first and the second dense layer (Gal et al.).
const DROPOUTS: [f32; 2] = [0.25, 0.5];
/// Images per trunk call when computing features.
const TRUNK_BATCH: usize = 256;

/// The CNN and its scratch.
#[derive(Debug, Clone)]
pub struct Cnn {
    net: GalCnn,
}

impl Cnn {
    /// A fresh network for `data`'s images (square, at least 8 x 8), weights drawn with `seed`.
    pub fn new(data: &Dataset, seed: u64) -> Result<Self, String> {
        let (rows, cols) = data.rows_cols;
        if rows != cols {
            return Err(format!(
                "--model cnn needs square images, these are {rows} x {cols}"
            ));
        }
        let mut rng = Rng::new(seed, 5);
        let net = GalCnn::new(rows, data.classes, || rng.normal() as f32)
            .map_err(|e| format!("--model cnn: {e}"))?;
        Ok(Cnn { net })
    }

    /// The head as bald-core's MC-dropout head, with the given dropout rates.
    fn layers(&self, dropouts: [f32; 2]) -> Vec<DenseLayer<'_>> {
        let [(w1, b1), (w2, b2)] = self.net.head();
        vec![
            DenseLayer {
                weight: w1,
                bias: b1,
                inputs: self.net.features(),
                outputs: self.net.hidden(),
                dropout: dropouts[0],
            },
            DenseLayer {
                weight: w2,
                bias: b2,
                inputs: self.net.hidden(),
                outputs: self.net.classes(),
                dropout: dropouts[1],
            },
        ]
    }

    /// The MC-dropout head (dropout 0.25 and 0.5).
    pub fn head(&self) -> Vec<DenseLayer<'_>> {
        self.layers(DROPOUTS)
    }

    /// The trunk's features of the images `idx` (len x 3872 for 28 x 28).
    pub fn features(&self, data: &Dataset, idx: &[usize]) -> Vec<f32> {
        let mut ws = Workspace::default();
        let mut out = Vec::with_capacity(idx.len() * self.net.features());
        let mut part = Vec::new();
        for chunk in idx.chunks(TRUNK_BATCH) {
            let images: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| data.row(i).iter().copied())
                .collect();
            self.net.trunk(&images, &mut ws, &mut part);
            out.extend_from_slice(&part);
        }
        out
    }

    /// Accuracy with dropout off over `idx` (the head on the scalar backend, one sample).
    pub fn accuracy(&self, data: &Dataset, idx: &[usize]) -> f64 {
        if idx.is_empty() {
            return 0.0;
        }
        let layers = self.layers([0.0, 0.0]);
        let Ok(head) = McDropoutHead::new(&layers) else {
            return 0.0;
        };
        let x = self.features(data, idx);
        let Ok(lp) = mc_dropout_forward::<_, f32>(&Scalar, &head, &x, idx.len(), 1, 0) else {
            return 0.0;
        };
        let c = self.net.classes();
        let correct = lp
            .chunks_exact(c)
            .zip(idx)
            .filter(|(z, &i)| {
                let best = (0..c).fold(0, |b, j| if z[j] > z[b] { j } else { b });
                best == usize::from(data.y[i])
            })
            .count();
        correct as f64 / idx.len() as f64
    }

    /// Trains on `train` with early stopping on `val` (best validation weights kept); with no
    /// validation points, for exactly `max_epochs` epochs. Mini-batches are drawn as the MLP's
    /// are (`epoch_samples` per epoch, reshuffled), with fresh dropout masks per image. Returns
    /// the epochs run.
    pub fn train(
        &mut self,
        data: &Dataset,
        train: &[usize],
        val: &[usize],
        cfg: TrainConfig,
        seed: u64,
    ) -> usize {
        let mut rng = Rng::new(seed, 4);
        let mut adam = Adam::new(cfg.lr, cfg.weight_decay, &self.net.tensor_lengths());
        let mut ws = Workspace::default();
        let (features, hidden) = (self.net.features(), self.net.hidden());
        fit(
            self,
            (train, val),
            cfg,
            &mut rng,
            |m| m.accuracy(data, val),
            |m, batch, rng| {
                let images: Vec<f32> = batch
                    .iter()
                    .flat_map(|&i| data.row(i).iter().copied())
                    .collect();
                let labels: Vec<usize> = batch.iter().map(|&i| usize::from(data.y[i])).collect();
                let mut mask = |len: usize, rate: f32| -> Vec<f32> {
                    let scale = 1.0 / (1.0 - rate);
                    (0..len)
                        .map(|_| {
                            if rng.uniform() < f64::from(rate) {
                                0.0
                            } else {
                                scale
                            }
                        })
                        .collect()
                };
                let keep_f = mask(batch.len() * features, DROPOUTS[0]);
                let keep_h = mask(batch.len() * hidden, DROPOUTS[1]);
                m.net
                    .loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
                m.net.apply(&mut adam, &ws);
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few epochs on 200 images of the embedded MNIST-5k lift validation accuracy well above
    /// chance, and the head the backend runs is the trained one.
    #[test]
    fn trains_on_mnist_and_gives_a_working_head() {
        let data = crate::data::embedded().unwrap();
        // Every 25th image (MNIST-5k is stored class by class): 200 images of every class.
        let train: Vec<usize> = (0..data.len()).step_by(25).collect();
        let val: Vec<usize> = (1..data.len()).step_by(25).collect();
        let mut cnn = Cnn::new(&data, 1).unwrap();
        let before = cnn.accuracy(&data, &val);
        let cfg = TrainConfig {
            lr: 1e-3,
            weight_decay: 5e-4,
            batch: 64,
            epoch_samples: 256,
            max_epochs: 4,
            patience: 4,
        };
        cnn.train(&data, &train, &val, cfg, 2);
        let after = cnn.accuracy(&data, &val);
        assert!(after > 0.5 && after > before, "{before} -> {after}");
        let layers = cnn.head();
        assert_eq!(layers[0].inputs, 3872);
        assert_eq!((layers[0].dropout, layers[1].dropout), (0.25, 0.5));
    }

    #[test]
    fn images_too_small_or_not_square_are_clear_errors() {
        let mut data = crate::data::embedded().unwrap();
        data.rows_cols = (28, 14);
        assert!(Cnn::new(&data, 0).unwrap_err().contains("square"));
        data.rows_cols = (4, 4);
        let err = Cnn::new(&data, 0).unwrap_err();
        assert!(err.contains("--model cnn"), "{err}");
    }
}
