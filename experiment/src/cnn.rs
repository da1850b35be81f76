//! Gal et al.'s (2017) Bayesian CNN: conv 32@4x4, ReLU, conv 32@4x4, ReLU, max-pool 2x2,
//! dropout 0.25, dense 128, ReLU, dropout 0.5, dense C. Both dropouts come after the pool, so
//! the trunk (the convolutions and the pool) is deterministic and runs once per image, and only
//! the head (dropout, dense, ReLU, dropout, dense) runs once per MC sample.

use crate::nn::{self, Adam, Images, Mat};

/// Filters of each convolution.
const FILTERS: usize = 32;
/// Kernel side of each convolution.
const KERNEL: usize = 4;
/// Hidden units of the head.
const HIDDEN: usize = 128;
/// Images per chunk of the second convolution.
const CHUNK: usize = 8;

/// An image too small for the trunk: two valid 4x4 convolutions and a 2x2 pool need 8x8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall {
    /// The image side given.
    pub side: usize,
}

impl std::fmt::Display for TooSmall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{0}x{0} images are too small for the CNN (two 4x4 convolutions and a 2x2 pool need at least 8x8)",
            self.side
        )
    }
}

impl std::error::Error for TooSmall {}

/// The CNN's parameters: convolutions as (k k in) x out matrices, dense layers in torch's
/// out x in layout (bald-core's `DenseLayer`).
#[derive(Debug, Clone)]
pub struct GalCnn {
    side: usize,
    classes: usize,
    /// Parameters in the order of [`GalCnn::tensors`].
    params: [Vec<f32>; 8],
}

/// Scratch of a training step, kept between steps.
#[derive(Debug, Default)]
pub struct Workspace {
    cols1: Vec<f32>,
    a1: Vec<f32>,
    cols2: Vec<f32>,
    a2: Vec<f32>,
    pooled: Vec<f32>,
    argmax: Vec<u32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    g_hidden: Vec<f32>,
    g_pooled: Vec<f32>,
    g_a2: Vec<f32>,
    g_cols2: Vec<f32>,
    g_a1: Vec<f32>,
    /// Gradients in the order of [`GalCnn::tensors`].
    grads: [Vec<f32>; 8],
}

impl GalCnn {
    /// The network for `side x side` single-channel images and `classes` classes, weights
    /// drawn by `normal` (standard normal samples) scaled by sqrt(2 / fan-in), biases 0.
    pub fn new(
        side: usize,
        classes: usize,
        mut normal: impl FnMut() -> f32,
    ) -> Result<Self, TooSmall> {
        if side < 8 {
            return Err(TooSmall { side });
        }
        let mut draw = |fan_in: usize, len: usize| -> Vec<f32> {
            let scale = (2.0 / fan_in as f32).sqrt();
            (0..len).map(|_| normal() * scale).collect()
        };
        let features = Self::features_of(side);
        let params = [
            draw(KERNEL * KERNEL, KERNEL * KERNEL * FILTERS),
            vec![0.0; FILTERS],
            draw(
                KERNEL * KERNEL * FILTERS,
                KERNEL * KERNEL * FILTERS * FILTERS,
            ),
            vec![0.0; FILTERS],
            draw(features, HIDDEN * features),
            vec![0.0; HIDDEN],
            draw(HIDDEN, classes * HIDDEN),
            vec![0.0; classes],
        ];
        Ok(GalCnn {
            side,
            classes,
            params,
        })
    }

    /// The trunk's output width for `side x side` images: 3872 for 28x28.
    pub fn features_of(side: usize) -> usize {
        let pooled = (side + 2 - 2 * KERNEL) / 2;
        pooled * pooled * FILTERS
    }

    /// The trunk's output width.
    pub fn features(&self) -> usize {
        Self::features_of(self.side)
    }

    /// The head's hidden width.
    pub fn hidden(&self) -> usize {
        HIDDEN
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Parameter tensors' lengths, in order: conv1 weight and bias, conv2 weight and bias,
    /// dense1 weight and bias, dense2 weight and bias.
    pub fn tensor_lengths(&self) -> [usize; 8] {
        self.params.each_ref().map(Vec::len)
    }

    /// The head's dense layers, torch layout: (weight, bias) of features -> hidden, then of
    /// hidden -> classes.
    pub fn head(&self) -> [(&[f32], &[f32]); 2] {
        [
            (&self.params[4], &self.params[5]),
            (&self.params[6], &self.params[7]),
        ]
    }

    /// The deterministic trunk of a batch of images (batch x side x side) into `out`
    /// (batch x features).
    pub fn trunk(&self, images: &[f32], ws: &mut Workspace, out: &mut Vec<f32>) {
        let batch = images.len() / (self.side * self.side);
        assert_eq!(images.len(), batch * self.side * self.side);
        self.forward_trunk(images, batch, ws);
        out.clear();
        out.extend_from_slice(&ws.pooled);
    }

    fn forward_trunk(&self, images: &[f32], batch: usize, ws: &mut Workspace) {
        let (s0, s1) = (self.side, self.side + 1 - KERNEL);
        let s2 = s1 + 1 - KERNEL;
        let p = &self.params;
        let shape0 = Images {
            batch,
            side: s0,
            channels: 1,
        };
        nn::im2col(images, shape0, KERNEL, &mut ws.cols1);
        let rows1 = batch * s1 * s1;
        ws.a1.resize(rows1 * FILTERS, 0.0);
        let k1 = KERNEL * KERNEL;
        nn::matmul(
            &mut ws.a1,
            Mat::new(&ws.cols1, rows1, k1),
            Mat::new(&p[0], k1, FILTERS),
            false,
        );
        nn::bias_relu(&mut ws.a1, &p[1]);
        let shape1 = Images {
            batch,
            side: s1,
            channels: FILTERS,
        };
        // conv2 by chunks of images, so that its im2col matrix (1 MB an image at 28x28) stays
        // in cache between its writing and its use.
        let k2 = k1 * FILTERS;
        ws.a2.resize(batch * s2 * s2 * FILTERS, 0.0);
        let a1_chunks = ws.a1.chunks(CHUNK * s1 * s1 * FILTERS);
        for (a1, a2) in a1_chunks.zip(ws.a2.chunks_mut(CHUNK * s2 * s2 * FILTERS)) {
            let images = a1.len() / (s1 * s1 * FILTERS);
            nn::im2col(a1, shape1.with_batch(images), KERNEL, &mut ws.cols2);
            let rows = images * s2 * s2;
            nn::matmul(
                a2,
                Mat::new(&ws.cols2, rows, k2),
                Mat::new(&p[2], k2, FILTERS),
                false,
            );
        }
        nn::bias_relu(&mut ws.a2, &p[3]);
        let shape2 = Images {
            batch,
            side: s2,
            channels: FILTERS,
        };
        nn::max_pool(&ws.a2, shape2, &mut ws.pooled, &mut ws.argmax);
    }

    /// The mean cross-entropy of a batch of images against `labels`, with the dropout masks
    /// given as kept-unit scales (0 or 1 / (1 - rate)): `keep_features` batch x features,
    /// `keep_hidden` batch x hidden. The gradients are left in `ws`, for [`GalCnn::apply`].
    pub fn loss_and_gradients(
        &self,
        images: &[f32],
        labels: &[usize],
        (keep_features, keep_hidden): (&[f32], &[f32]),
        ws: &mut Workspace,
    ) -> f64 {
        let batch = labels.len();
        let (s1, features, c) = (self.side + 1 - KERNEL, self.features(), self.classes);
        let s2 = s1 + 1 - KERNEL;
        assert_eq!(images.len(), batch * self.side * self.side);
        assert_eq!(keep_features.len(), batch * features);
        assert_eq!(keep_hidden.len(), batch * HIDDEN);
        assert!(labels.iter().all(|&y| y < c), "labels below {c}");
        self.forward_trunk(images, batch, ws);
        let p = &self.params;
        // Head forward: dropout, dense, ReLU, dropout, dense.
        for (v, &k) in ws.pooled.iter_mut().zip(keep_features) {
            *v *= k;
        }
        ws.hidden.resize(batch * HIDDEN, 0.0);
        nn::matmul(
            &mut ws.hidden,
            Mat::new(&ws.pooled, batch, features),
            Mat::new(&p[4], HIDDEN, features).t(),
            false,
        );
        nn::bias_relu(&mut ws.hidden, &p[5]);
        for (v, &k) in ws.hidden.iter_mut().zip(keep_hidden) {
            *v *= k;
        }
        ws.logits.resize(batch * c, 0.0);
        nn::matmul(
            &mut ws.logits,
            Mat::new(&ws.hidden, batch, HIDDEN),
            Mat::new(&p[6], c, HIDDEN).t(),
            false,
        );
        nn::add_bias(&mut ws.logits, &p[7]);
        let loss = nn::softmax_cross_entropy(&mut ws.logits, labels);

        // Backward, into ws.grads in the parameters' order.
        let lengths = self.tensor_lengths();
        for (g, &n) in ws.grads.iter_mut().zip(&lengths) {
            g.clear();
            g.resize(n, 0.0);
        }
        let [g_w1, g_b1, g_w2, g_b2, g_d1, g_e1, g_d2, g_e2] = &mut ws.grads;
        let g_logits = Mat::new(&ws.logits, batch, c);
        nn::matmul(
            g_d2,
            g_logits.t(),
            Mat::new(&ws.hidden, batch, HIDDEN),
            false,
        );
        nn::bias_grad(g_e2, &ws.logits);
        ws.g_hidden.resize(batch * HIDDEN, 0.0);
        nn::matmul(
            &mut ws.g_hidden,
            g_logits,
            Mat::new(&p[6], c, HIDDEN),
            false,
        );
        // Through the dropout (a zero scale zeroes the gradient) and the ReLU (hidden is
        // its output times the scale, zero where either is).
        for ((g, &k), &h) in ws.g_hidden.iter_mut().zip(keep_hidden).zip(&ws.hidden) {
            *g = if h > 0.0 { *g * k } else { 0.0 };
        }
        let g_hidden = Mat::new(&ws.g_hidden, batch, HIDDEN);
        nn::matmul(
            g_d1,
            g_hidden.t(),
            Mat::new(&ws.pooled, batch, features),
            false,
        );
        nn::bias_grad(g_e1, &ws.g_hidden);
        ws.g_pooled.resize(batch * features, 0.0);
        nn::matmul(
            &mut ws.g_pooled,
            g_hidden,
            Mat::new(&p[4], HIDDEN, features),
            false,
        );
        for (g, &k) in ws.g_pooled.iter_mut().zip(keep_features) {
            *g *= k;
        }
        // Trunk backward: pool, ReLU, conv2, ReLU, conv1.
        ws.g_a2.resize(ws.a2.len(), 0.0);
        nn::max_pool_backward(&ws.g_pooled, &ws.argmax, &mut ws.g_a2);
        nn::relu_backward(&mut ws.g_a2, &ws.a2);
        nn::bias_grad(g_b2, &ws.g_a2);
        // conv2's gradients by the forward pass's chunks, its im2col matrix computed again.
        let k2 = KERNEL * KERNEL * FILTERS;
        let shape1 = Images {
            batch,
            side: s1,
            channels: FILTERS,
        };
        ws.g_a1.resize(ws.a1.len(), 0.0);
        let (in_len, out_len) = (CHUNK * s1 * s1 * FILTERS, CHUNK * s2 * s2 * FILTERS);
        let chunks = ws.a1.chunks(in_len).zip(ws.g_a2.chunks(out_len));
        for ((a1, g_a2), g_a1) in chunks.zip(ws.g_a1.chunks_mut(in_len)) {
            let images = a1.len() / (s1 * s1 * FILTERS);
            let shape = shape1.with_batch(images);
            nn::im2col(a1, shape, KERNEL, &mut ws.cols2);
            let rows = images * s2 * s2;
            let g_a2 = Mat::new(g_a2, rows, FILTERS);
            nn::matmul(g_w2, Mat::new(&ws.cols2, rows, k2).t(), g_a2, true);
            ws.g_cols2.resize(rows * k2, 0.0);
            nn::matmul(
                &mut ws.g_cols2,
                g_a2,
                Mat::new(&p[2], k2, FILTERS).t(),
                false,
            );
            nn::col2im(&ws.g_cols2, shape, KERNEL, g_a1);
        }
        nn::relu_backward(&mut ws.g_a1, &ws.a1);
        let (rows1, k1) = (batch * s1 * s1, KERNEL * KERNEL);
        let g_a1 = Mat::new(&ws.g_a1, rows1, FILTERS);
        nn::matmul(g_w1, Mat::new(&ws.cols1, rows1, k1).t(), g_a1, false);
        nn::bias_grad(g_b1, &ws.g_a1);
        loss
    }

    /// An optimiser step with the gradients of the last [`GalCnn::loss_and_gradients`]
    /// (weights decayed, biases not).
    pub fn apply(&mut self, adam: &mut Adam, ws: &Workspace) {
        let mut tensors: Vec<(&mut [f32], &[f32], bool)> = self
            .params
            .iter_mut()
            .zip(&ws.grads)
            .enumerate()
            .map(|(i, (p, g))| (p.as_mut_slice(), g.as_slice(), i % 2 == 0))
            .collect();
        adam.step(&mut tensors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for normal samples.
    fn normals(seed: u32) -> impl FnMut() -> f32 {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        move || {
            // xorshift32, then the sum of four uniforms, centred and scaled to unit variance.
            let mut sum = 0.0;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                sum += state as f32 / u32::MAX as f32;
            }
            (sum - 2.0) * 3.0f32.sqrt()
        }
    }

    #[test]
    fn sizes_itself_from_the_image() {
        assert_eq!(GalCnn::features_of(28), 3872);
        let net = GalCnn::new(28, 10, normals(1)).unwrap();
        assert_eq!(
            net.tensor_lengths(),
            [512, 32, 16384, 32, 128 * 3872, 128, 1280, 10]
        );
        assert_eq!(
            GalCnn::new(7, 10, normals(1)).unwrap_err(),
            TooSmall { side: 7 }
        );
        assert!(GalCnn::new(8, 10, normals(1)).is_ok());
    }

    /// Central differences of the loss (in f64 from f32 evaluations) agree with the backward
    /// pass for sampled coordinates of every tensor, with dropout masks in place (a step of
    /// 1e-2 crosses ReLU and pooling kinks; 1e-3 does not here).
    #[test]
    fn gradients_match_finite_differences() {
        // More images than a chunk of conv2, so that the chunks' seams are crossed.
        let (side, classes, batch) = (10, 3, CHUNK + 1);
        let mut net = GalCnn::new(side, classes, normals(3)).unwrap();
        // Non-zero biases, so that the bias gradients are exercised through live ReLUs.
        for i in [1, 3, 5, 7] {
            net.params[i]
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = 0.05 * (j % 3) as f32);
        }
        let mut draw = normals(9);
        let images: Vec<f32> = (0..batch * side * side).map(|_| draw()).collect();
        let labels: Vec<usize> = (0..batch).map(|i| i * 2 % classes).collect();
        let features = net.features();
        let keep_f: Vec<f32> = (0..batch * features)
            .map(|i| if i % 4 == 1 { 0.0 } else { 4.0 / 3.0 })
            .collect();
        let keep_h: Vec<f32> = (0..batch * HIDDEN)
            .map(|i| if i % 2 == 0 { 0.0 } else { 2.0 })
            .collect();
        let mut ws = Workspace::default();
        net.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
        let grads = ws.grads.clone();
        let mut checked = 0;
        for (t, grad) in grads.iter().enumerate() {
            for i in (0..grad.len()).step_by(grad.len() / 7 + 1) {
                let h = 1e-3;
                let mut loss_at = |delta: f32| {
                    let mut moved = net.clone();
                    moved.params[t][i] += delta;
                    moved.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws)
                };
                let fd = (loss_at(h) - loss_at(-h)) / (2.0 * f64::from(h));
                let g = f64::from(grad[i]);
                assert!(
                    (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
                    "tensor {t} [{i}]: finite difference {fd}, backward {g}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 40);
    }

    /// Training lowers the loss on a small task it can fit (bright left half vs right half).
    #[test]
    fn training_fits_a_separable_task() {
        let (side, batch) = (12, 16);
        let mut net = GalCnn::new(side, 2, normals(5)).unwrap();
        let mut draw = normals(6);
        let labels: Vec<usize> = (0..batch).map(|i| i % 2).collect();
        let images: Vec<f32> = (0..batch * side * side)
            .map(|i| {
                let (b, x) = (i / (side * side), i % side);
                let bright = (x < side / 2) == (labels[b] == 0);
                0.2 * draw() + if bright { 1.0 } else { 0.0 }
            })
            .collect();
        let keep_f = vec![1.0; batch * net.features()];
        let keep_h = vec![1.0; batch * HIDDEN];
        let mut adam = Adam::new(1e-3, 0.0, &net.tensor_lengths());
        let mut ws = Workspace::default();
        let first = net.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
        let mut last = first;
        for _ in 0..30 {
            net.apply(&mut adam, &ws);
            last = net.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
        }
        assert!(last < 0.1 * first, "loss {first} -> {last}");
        // The trunk alone gives the pooled features the loss used.
        let mut out = Vec::new();
        net.trunk(&images, &mut ws, &mut out);
        assert_eq!(out.len(), batch * net.features());
    }
}
