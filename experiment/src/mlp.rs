//! The Bayesian MLP of the experiment: dense layers with dropout before each and ReLU between
//! (bald-core's MC-dropout head, so inference runs on any backend), trained here on the CPU with
//! cross-entropy, Adam, weight decay and early stopping on a validation set.

use bald_core::DenseLayer;

use crate::data::Dataset;
use crate::rng::Rng;

/// One dense layer, torch layout (outputs x inputs).
#[derive(Debug, Clone)]
struct Layer {
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
    dropout: f32,
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Adam learning rate.
    pub lr: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
    /// Mini-batch size.
    pub batch: usize,
    /// Samples drawn per epoch (with reshuffles), so that tiny labelled sets still get enough
    /// steps, as the BatchBALD code's fixed-length sampler does; 0: one pass over the
    /// labelled set (Gal et al.'s epoch).
    pub epoch_samples: usize,
    /// At most this many epochs.
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation accuracy (best weights kept);
    /// 0: no early stopping (last weights kept).
    pub patience: usize,
}

/// The training loop both models share: mini-batches of `cfg.batch` drawn from `train`
/// (`epoch_samples` per epoch, or one pass when 0, reshuffled when used up) handed to `step`,
/// and early stopping on `val` by `accuracy` (best weights kept); with no validation points
/// or a patience of 0, exactly `max_epochs` epochs and the last weights. Returns the epochs
/// run.
pub fn fit<M: Clone>(
    model: &mut M,
    (train, val): (&[usize], &[usize]),
    cfg: TrainConfig,
    rng: &mut Rng,
    accuracy: impl Fn(&M) -> f64,
    mut step: impl FnMut(&mut M, &[usize], &mut Rng),
) -> usize {
    let early_stopping = !val.is_empty() && cfg.patience > 0;
    let per_epoch = match cfg.epoch_samples {
        0 => train.len(),
        n => n,
    };
    let mut best = if early_stopping {
        Some((accuracy(model), model.clone()))
    } else {
        None
    };
    let mut since_best = 0;
    let mut order: Vec<usize> = train.to_vec();
    let mut cursor = order.len();
    let mut epochs = 0;
    for _ in 0..cfg.max_epochs {
        epochs += 1;
        let mut seen = 0;
        while seen < per_epoch && !order.is_empty() {
            let mut batch = Vec::with_capacity(cfg.batch);
            while batch.len() < cfg.batch.min(per_epoch - seen) {
                if cursor == order.len() {
                    rng.shuffle(&mut order);
                    cursor = 0;
                }
                batch.push(order[cursor]);
                cursor += 1;
            }
            seen += batch.len();
            step(model, &batch, rng);
        }
        let Some(best) = best.as_mut() else {
            continue;
        };
        let acc = accuracy(model);
        if acc > best.0 {
            *best = (acc, model.clone());
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= cfg.patience {
                break;
            }
        }
    }
    if let Some((_, weights)) = best {
        *model = weights;
    }
    epochs
}

/// The model.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Layer>,
}

/// Adam state of one parameter tensor.
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Moments {
    fn new(len: usize) -> Self {
        Moments {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }
}

/// dot product with eight accumulators (vectorisable).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// y += a x.
#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

impl Mlp {
    /// Widths `sizes` (input, hidden..., classes), dropout rate before each layer, torch's
    /// default initialisation U(-1/sqrt(in), 1/sqrt(in)).
    pub fn new(sizes: &[usize], dropouts: &[f32], seed: u64) -> Self {
        let mut rng = Rng::new(seed, 3);
        let layers = sizes
            .windows(2)
            .zip(dropouts)
            .map(|(io, &dropout)| {
                let (inputs, outputs) = (io[0], io[1]);
                let bound = 1.0 / (inputs as f64).sqrt();
                let mut u = || ((2.0 * rng.uniform() - 1.0) * bound) as f32;
                Layer {
                    w: (0..inputs * outputs).map(|_| u()).collect(),
                    b: (0..outputs).map(|_| u()).collect(),
                    inputs,
                    outputs,
                    dropout,
                }
            })
            .collect();
        Mlp { layers }
    }

    /// The layers as bald-core's MC-dropout head.
    pub fn head(&self) -> Vec<DenseLayer<'_>> {
        self.layers
            .iter()
            .map(|l| DenseLayer {
                weight: &l.w,
                bias: &l.b,
                inputs: l.inputs,
                outputs: l.outputs,
                dropout: l.dropout,
            })
            .collect()
    }

    /// Deterministic (dropout off) class scores of one image, for validation.
    fn logits(&self, x: &[f32]) -> Vec<f32> {
        let mut a = x.to_vec();
        for (l, layer) in self.layers.iter().enumerate() {
            let last = l + 1 == self.layers.len();
            a = (0..layer.outputs)
                .map(|o| {
                    let z =
                        dot(&layer.w[o * layer.inputs..(o + 1) * layer.inputs], &a) + layer.b[o];
                    if last {
                        z
                    } else {
                        z.max(0.0)
                    }
                })
                .collect();
        }
        a
    }

    /// Accuracy with dropout off over `idx`.
    pub fn accuracy(&self, data: &Dataset, idx: &[usize]) -> f64 {
        let correct = idx
            .iter()
            .filter(|&&i| {
                let z = self.logits(data.row(i));
                let best = (0..z.len()).fold(0, |b, c| if z[c] > z[b] { c } else { b });
                best == usize::from(data.y[i])
            })
            .count();
        correct as f64 / idx.len().max(1) as f64
    }

    /// Trains on `train` with early stopping on `val` (best validation weights kept); with no
    /// validation points, for exactly `max_epochs` epochs (last weights kept). Returns the epochs
    /// run.
    pub fn train(
        &mut self,
        data: &Dataset,
        train: &[usize],
        val: &[usize],
        cfg: TrainConfig,
        seed: u64,
    ) -> usize {
        let mut rng = Rng::new(seed, 4);
        let mut moments: Vec<(Moments, Moments)> = self
            .layers
            .iter()
            .map(|l| (Moments::new(l.w.len()), Moments::new(l.b.len())))
            .collect();
        let mut step = 0i32;
        fit(
            self,
            (train, val),
            cfg,
            &mut rng,
            |m| m.accuracy(data, val),
            |m, batch, rng| {
                step += 1;
                let grads = m.gradients(data, batch, rng);
                m.adam(&grads, &mut moments, cfg, step);
            },
        )
    }

    /// Gradients of the mean cross-entropy over `batch`, with fresh dropout masks.
    fn gradients(
        &self,
        data: &Dataset,
        batch: &[usize],
        rng: &mut Rng,
    ) -> Vec<(Vec<f32>, Vec<f32>)> {
        let nl = self.layers.len();
        let bsz = batch.len();
        // inputs[l]: the masked, scaled input of layer l (bsz x inputs); pre[l]: its output.
        let mut inputs: Vec<Vec<f32>> = Vec::with_capacity(nl);
        let mut pre: Vec<Vec<f32>> = Vec::with_capacity(nl);
        let mut masks: Vec<Vec<f32>> = Vec::with_capacity(nl);
        let mut act: Vec<f32> = batch
            .iter()
            .flat_map(|&i| data.row(i).iter().copied())
            .collect();
        for (l, layer) in self.layers.iter().enumerate() {
            let scale = 1.0 / (1.0 - layer.dropout);
            let mask: Vec<f32> = (0..act.len())
                .map(|_| {
                    if rng.uniform() < f64::from(layer.dropout) {
                        0.0
                    } else {
                        scale
                    }
                })
                .collect();
            let x: Vec<f32> = act.iter().zip(&mask).map(|(a, m)| a * m).collect();
            let mut z = vec![0.0f32; bsz * layer.outputs];
            for b in 0..bsz {
                let xr = &x[b * layer.inputs..(b + 1) * layer.inputs];
                for o in 0..layer.outputs {
                    z[b * layer.outputs + o] =
                        dot(&layer.w[o * layer.inputs..(o + 1) * layer.inputs], xr) + layer.b[o];
                }
            }
            act = if l + 1 < nl {
                z.iter().map(|v| v.max(0.0)).collect()
            } else {
                z.clone()
            };
            inputs.push(x);
            pre.push(z);
            masks.push(mask);
        }
        // d loss / d logits = softmax - onehot, over the batch mean.
        let c = self.layers[nl - 1].outputs;
        let mut dz = act;
        for b in 0..bsz {
            let row = &mut dz[b * c..(b + 1) * c];
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            for (j, v) in row.iter_mut().enumerate() {
                let p = (*v - max).exp() / sum;
                let target = if j == usize::from(data.y[batch[b]]) {
                    1.0
                } else {
                    0.0
                };
                *v = (p - target) / bsz as f32;
            }
        }
        let mut grads = vec![(Vec::new(), Vec::new()); nl];
        for l in (0..nl).rev() {
            let layer = &self.layers[l];
            let (ni, no) = (layer.inputs, layer.outputs);
            let mut gw = vec![0.0f32; no * ni];
            let mut gb = vec![0.0f32; no];
            let x = &inputs[l];
            for b in 0..bsz {
                for o in 0..no {
                    let d = dz[b * no + o];
                    if d != 0.0 {
                        axpy(&mut gw[o * ni..(o + 1) * ni], d, &x[b * ni..(b + 1) * ni]);
                        gb[o] += d;
                    }
                }
            }
            if l > 0 {
                // Back through this layer's input mask and the previous ReLU.
                let mut dx = vec![0.0f32; bsz * ni];
                for b in 0..bsz {
                    for o in 0..no {
                        let d = dz[b * no + o];
                        if d != 0.0 {
                            axpy(
                                &mut dx[b * ni..(b + 1) * ni],
                                d,
                                &layer.w[o * ni..(o + 1) * ni],
                            );
                        }
                    }
                }
                let (mask, prev) = (&masks[l], &pre[l - 1]);
                dz = dx
                    .iter()
                    .zip(mask)
                    .zip(prev)
                    .map(|((d, m), z)| if *z > 0.0 { d * m } else { 0.0 })
                    .collect();
            }
            grads[l] = (gw, gb);
        }
        grads
    }

    fn adam(
        &mut self,
        grads: &[(Vec<f32>, Vec<f32>)],
        moments: &mut [(Moments, Moments)],
        cfg: TrainConfig,
        step: i32,
    ) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(step);
        let c2 = 1.0 - b2.powi(step);
        let update = |p: &mut [f32], g: &[f32], mo: &mut Moments, decay: f32| {
            for i in 0..p.len() {
                let gi = g[i] + decay * p[i];
                mo.m[i] = b1 * mo.m[i] + (1.0 - b1) * gi;
                mo.v[i] = b2 * mo.v[i] + (1.0 - b2) * gi * gi;
                p[i] -= cfg.lr * (mo.m[i] / c1) / ((mo.v[i] / c2).sqrt() + eps);
            }
        };
        for ((layer, (gw, gb)), (mw, mb)) in self.layers.iter_mut().zip(grads).zip(moments) {
            update(&mut layer.w, gw, mw, cfg.weight_decay);
            update(&mut layer.b, gb, mb, 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop's epochs: a model that records its batches, best after the first epoch.
    #[test]
    fn fit_runs_passes_fixed_epochs_and_early_stopping() {
        let train: Vec<usize> = (0..10).collect();
        let run = |epoch_samples, patience, val: &[usize]| {
            let cfg = TrainConfig {
                lr: 0.0,
                weight_decay: 0.0,
                batch: 4,
                epoch_samples,
                max_epochs: 5,
                patience,
            };
            let mut model: Vec<Vec<usize>> = Vec::new();
            let accuracy = |m: &Vec<Vec<usize>>| if m.len() == 3 { 1.0 } else { 0.5 };
            let epochs = fit(
                &mut model,
                (&train, val),
                cfg,
                &mut Rng::new(0, 0),
                accuracy,
                |m, batch, _| m.push(batch.to_vec()),
            );
            (epochs, model)
        };
        // 0: an epoch is one pass over the labelled set, batches 4, 4, 2; with patience 0 all
        // 5 epochs run and the last weights stay.
        let (epochs, model) = run(0, 0, &[0]);
        assert_eq!(epochs, 5);
        assert_eq!(model.len(), 15);
        let lens: Vec<usize> = model.iter().map(Vec::len).collect();
        assert_eq!(lens[..3], [4, 4, 2]);
        let mut first: Vec<usize> = model[..3].concat();
        first.sort_unstable();
        assert_eq!(first, train, "one pass sees each point once");
        // 25 samples an epoch: 7 batches.
        assert_eq!(run(25, 0, &[0]).1.len(), 35);
        // Patience 2: epochs 2 and 3 are no better, so it stops after 3 and keeps epoch 1's
        // weights (3 batches).
        let (epochs, model) = run(0, 2, &[0]);
        assert_eq!((epochs, model.len()), (3, 3));
        // No validation points: no early stopping.
        assert_eq!(run(0, 2, &[]).0, 5);
    }

    /// Finite differences agree with the backward pass (dropout off).
    #[test]
    fn gradients_match_finite_differences() {
        let data = Dataset {
            x: (0..5 * 6)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
                .collect(),
            y: vec![0, 1, 2, 1, 0],
            dim: 6,
            classes: 3,
            rows_cols: (2, 3),
        };
        let mlp = Mlp::new(&[6, 4, 3], &[0.0, 0.0], 1);
        let batch = [0, 1, 2, 3, 4];
        let loss = |m: &Mlp| -> f64 {
            batch
                .iter()
                .map(|&i| {
                    let z = m.logits(data.row(i));
                    let max = z.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                    let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                    f64::from(lse - z[usize::from(data.y[i])])
                })
                .sum::<f64>()
                / batch.len() as f64
        };
        let grads = mlp.gradients(&data, &batch, &mut Rng::new(0, 0));
        for (l, grad) in grads.iter().enumerate() {
            for i in 0..mlp.layers[l].w.len() {
                let mut plus = mlp.clone();
                plus.layers[l].w[i] += 1e-2;
                let mut minus = mlp.clone();
                minus.layers[l].w[i] -= 1e-2;
                let fd = (loss(&plus) - loss(&minus)) / 2e-2;
                let g = f64::from(grad.0[i]);
                assert!((fd - g).abs() < 2e-3, "layer {l} w[{i}]: {fd} vs {g}");
            }
        }
    }
}
