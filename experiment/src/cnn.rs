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
    lanes: Vec<Lane>,
    /// Images per lane.
    per_lane: usize,
    a1: Vec<f32>,
    a2: Vec<f32>,
    pooled: Vec<f32>,
    argmax: Vec<usize>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    g_hidden: Vec<f32>,
    g_pooled: Vec<f32>,
    g_a2: Vec<f32>,
    g_a1: Vec<f32>,
    flipped: Vec<f32>,
    /// Gradients in the order of [`GalCnn::tensor_lengths`].
    grads: [Vec<f32>; 8],
}

/// One thread's scratch of the trunk: im2col matrices, a padded gradient, and the gradients
/// of conv1's and conv2's weights and biases over its images.
#[derive(Debug, Default)]
struct Lane {
    cols1: Vec<f32>,
    cols2: Vec<f32>,
    padded: Vec<f32>,
    grads: [Vec<f32>; 4],
}

/// Image sides through the trunk: input, after conv1, after conv2, after the pool.
#[derive(Debug, Clone, Copy)]
struct Sides {
    input: usize,
    conv1: usize,
    conv2: usize,
    pooled: usize,
}

impl Sides {
    fn of(side: usize) -> Self {
        let conv1 = side + 1 - KERNEL;
        let conv2 = conv1 + 1 - KERNEL;
        Sides {
            input: side,
            conv1,
            conv2,
            pooled: conv2 / 2,
        }
    }

    /// (input, conv1, conv2, pooled) values of one image.
    fn sizes(self) -> [usize; 4] {
        [
            self.input * self.input,
            self.conv1 * self.conv1 * FILTERS,
            self.conv2 * self.conv2 * FILTERS,
            self.pooled * self.pooled * FILTERS,
        ]
    }

    fn images(side: usize, channels: usize, batch: usize) -> Images {
        Images {
            batch,
            side,
            channels,
        }
    }
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

    /// The trunk of a batch, its images split across threads: a1, a2, pooled and argmax in
    /// `ws`.
    fn forward_trunk(&self, images: &[f32], batch: usize, ws: &mut Workspace) {
        let sides = Sides::of(self.side);
        let [s0, s1, s2, sp] = sides.sizes();
        ws.a1.resize(batch * s1, 0.0);
        ws.a2.resize(batch * s2, 0.0);
        ws.pooled.resize(batch * sp, 0.0);
        ws.argmax.resize(batch * sp, 0);
        let per = batch.div_ceil(nn::threads()).max(1);
        ws.per_lane = per;
        ws.lanes.resize_with(batch.div_ceil(per), Lane::default);
        let parts = images
            .chunks(per * s0)
            .zip(ws.a1.chunks_mut(per * s1))
            .zip(ws.a2.chunks_mut(per * s2))
            .zip(ws.pooled.chunks_mut(per * sp))
            .zip(ws.argmax.chunks_mut(per * sp))
            .zip(ws.lanes.iter_mut());
        std::thread::scope(|scope| {
            for (((((x, a1), a2), pooled), argmax), lane) in parts {
                scope.spawn(move || self.trunk_part(x, (a1, a2), (pooled, argmax), lane));
            }
        });
    }

    /// The trunk of some images on this thread, conv by chunks of [`CHUNK`] images so that
    /// the im2col matrices (1 MB an image for conv2 at 28x28) stay in cache.
    fn trunk_part(
        &self,
        x: &[f32],
        (a1, a2): (&mut [f32], &mut [f32]),
        (pooled, argmax): (&mut [f32], &mut [usize]),
        lane: &mut Lane,
    ) {
        let sides = Sides::of(self.side);
        let [s0, s1, s2, _] = sides.sizes();
        let (k1, k2) = (KERNEL * KERNEL, KERNEL * KERNEL * FILTERS);
        let p = &self.params;
        let chunks = x.chunks(CHUNK * s0).zip(a1.chunks_mut(CHUNK * s1));
        for ((x, a1), a2) in chunks.zip(a2.chunks_mut(CHUNK * s2)) {
            let n = x.len() / s0;
            nn::im2col(x, Sides::images(sides.input, 1, n), KERNEL, &mut lane.cols1);
            let rows = n * sides.conv1 * sides.conv1;
            let w1 = Mat::new(&p[0], k1, FILTERS);
            nn::matmul(a1, Mat::new(&lane.cols1, rows, k1), w1, false, false);
            nn::bias_relu(a1, &p[1]);
            let shape = Sides::images(sides.conv1, FILTERS, n);
            nn::im2col(a1, shape, KERNEL, &mut lane.cols2);
            let rows = n * sides.conv2 * sides.conv2;
            let w2 = Mat::new(&p[2], k2, FILTERS);
            nn::matmul(a2, Mat::new(&lane.cols2, rows, k2), w2, false, false);
            nn::bias_relu(a2, &p[3]);
        }
        let shape = Sides::images(sides.conv2, FILTERS, x.len() / s0);
        nn::max_pool(a2, shape, pooled, argmax);
    }

    /// The trunk's gradients over some images on this thread, into `lane.grads`, from the
    /// gradient of their pooled features; `g_a2` and `g_a1` are scratch of the activations'
    /// sizes. conv2's input gradient is the full convolution of its output gradient
    /// (zero-padded by K - 1) with the flipped kernel `flipped`: a product of the forward's
    /// shape (inner dimension K K filters) instead of dY W^T (inner dimension 32) and its
    /// col2im.
    #[allow(clippy::too_many_arguments)]
    fn trunk_backward_part(
        &self,
        x: &[f32],
        (a1, a2, argmax): (&[f32], &[f32], &[usize]),
        g_pooled: &[f32],
        (g_a2, g_a1): (&mut [f32], &mut [f32]),
        flipped: &[f32],
        lane: &mut Lane,
    ) {
        let sides = Sides::of(self.side);
        let [s0, s1, s2, _] = sides.sizes();
        let (k1, k2) = (KERNEL * KERNEL, KERNEL * KERNEL * FILTERS);
        let lengths = self.tensor_lengths();
        for (g, &n) in lane.grads.iter_mut().zip(&lengths) {
            g.clear();
            g.resize(n, 0.0);
        }
        let [g_w1, g_b1, g_w2, g_b2] = &mut lane.grads;
        nn::max_pool_backward(g_pooled, argmax, g_a2);
        nn::relu_backward(g_a2, a2);
        let wide = sides.conv2 + 2 * (KERNEL - 1);
        let chunks = x
            .chunks(CHUNK * s0)
            .zip(a1.chunks(CHUNK * s1))
            .zip(g_a2.chunks(CHUNK * s2))
            .zip(g_a1.chunks_mut(CHUNK * s1));
        for (((x, a1), g_a2), g_a1) in chunks {
            let n = x.len() / s0;
            let rows2 = n * sides.conv2 * sides.conv2;
            nn::bias_grad(g_b2, g_a2);
            nn::im2col(
                a1,
                Sides::images(sides.conv1, FILTERS, n),
                KERNEL,
                &mut lane.cols2,
            );
            let g_a2m = Mat::new(g_a2, rows2, FILTERS);
            nn::matmul(
                g_w2,
                Mat::new(&lane.cols2, rows2, k2).t(),
                g_a2m,
                true,
                false,
            );
            let shape = Sides::images(sides.conv2, FILTERS, n);
            nn::pad(g_a2, shape, KERNEL - 1, &mut lane.padded);
            let shape = Sides::images(wide, FILTERS, n);
            nn::im2col(&lane.padded, shape, KERNEL, &mut lane.cols2);
            let rows1 = n * sides.conv1 * sides.conv1;
            let flipped = Mat::new(flipped, k2, FILTERS);
            nn::matmul(
                g_a1,
                Mat::new(&lane.cols2, rows1, k2),
                flipped,
                false,
                false,
            );
            nn::relu_backward(g_a1, a1);
            nn::bias_grad(g_b1, g_a1);
            nn::im2col(x, Sides::images(sides.input, 1, n), KERNEL, &mut lane.cols1);
            let g_a1m = Mat::new(g_a1, rows1, FILTERS);
            nn::matmul(
                g_w1,
                Mat::new(&lane.cols1, rows1, k1).t(),
                g_a1m,
                true,
                false,
            );
        }
    }

    /// The head's forward pass on the trunk's output in `ws.pooled` (masked there in place):
    /// dropout, dense, ReLU, dropout, dense, into `ws.hidden` and `ws.logits`.
    fn head_logits(
        &self,
        batch: usize,
        (keep_features, keep_hidden): (&[f32], &[f32]),
        ws: &mut Workspace,
    ) {
        let (features, c) = (self.features(), self.classes);
        let p = &self.params;
        for (v, &k) in ws.pooled.iter_mut().zip(keep_features) {
            *v *= k;
        }
        ws.hidden.resize(batch * HIDDEN, 0.0);
        nn::matmul(
            &mut ws.hidden,
            Mat::new(&ws.pooled, batch, features),
            Mat::new(&p[4], HIDDEN, features).t(),
            false,
            true,
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
            true,
        );
        nn::add_bias(&mut ws.logits, &p[7]);
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
        let (features, c) = (self.features(), self.classes);
        assert_eq!(images.len(), batch * self.side * self.side);
        assert_eq!(keep_features.len(), batch * features);
        assert_eq!(keep_hidden.len(), batch * HIDDEN);
        assert!(labels.iter().all(|&y| y < c), "labels below {c}");
        self.forward_trunk(images, batch, ws);
        self.head_logits(batch, (keep_features, keep_hidden), ws);
        let p = &self.params;
        let loss = nn::softmax_cross_entropy(&mut ws.logits, labels);

        // Backward, into ws.grads in the parameters' order.
        let lengths = self.tensor_lengths();
        for (g, &n) in ws.grads.iter_mut().zip(&lengths) {
            g.clear();
            g.resize(n, 0.0);
        }
        let [_, _, _, _, g_d1, g_e1, g_d2, g_e2] = &mut ws.grads;
        let output = Mat::new(&p[6], c, HIDDEN);
        nn::dense_backward(
            &ws.logits,
            &ws.hidden,
            output,
            (g_d2, g_e2),
            &mut ws.g_hidden,
        );
        // Through the dropout (a zero scale zeroes the gradient) and the ReLU (hidden is
        // its output times the scale, zero where either is).
        for ((g, &k), &h) in ws.g_hidden.iter_mut().zip(keep_hidden).zip(&ws.hidden) {
            *g = if h > 0.0 { *g * k } else { 0.0 };
        }
        let hidden = Mat::new(&p[4], HIDDEN, features);
        nn::dense_backward(
            &ws.g_hidden,
            &ws.pooled,
            hidden,
            (g_d1, g_e1),
            &mut ws.g_pooled,
        );
        for (g, &k) in ws.g_pooled.iter_mut().zip(keep_features) {
            *g *= k;
        }
        // The trunk's backward pass, on the forward's split of the images.
        let [s0, s1, s2, sp] = Sides::of(self.side).sizes();
        ws.g_a2.resize(ws.a2.len(), 0.0);
        ws.g_a1.resize(ws.a1.len(), 0.0);
        nn::flip_kernel(&p[2], KERNEL, FILTERS, FILTERS, &mut ws.flipped);
        let per = ws.per_lane;
        let parts = images
            .chunks(per * s0)
            .zip(ws.a1.chunks(per * s1))
            .zip(ws.a2.chunks(per * s2))
            .zip(ws.argmax.chunks(per * sp))
            .zip(ws.g_pooled.chunks(per * sp))
            .zip(ws.g_a2.chunks_mut(per * s2))
            .zip(ws.g_a1.chunks_mut(per * s1))
            .zip(ws.lanes.iter_mut());
        let flipped = &ws.flipped;
        std::thread::scope(|scope| {
            for (((((((x, a1), a2), argmax), g_pooled), g_a2), g_a1), lane) in parts {
                scope.spawn(move || {
                    self.trunk_backward_part(
                        x,
                        (a1, a2, argmax),
                        g_pooled,
                        (g_a2, g_a1),
                        flipped,
                        lane,
                    )
                });
            }
        });
        for lane in &ws.lanes {
            for (total, part) in ws.grads.iter_mut().zip(&lane.grads) {
                for (t, &g) in total.iter_mut().zip(part) {
                    *t += g;
                }
            }
        }
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
        // More images than two chunks of conv2, so that the seams of chunks and of threads are
        // crossed.
        let (side, classes, batch) = (10, 3, 2 * CHUNK + 3);
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

    /// The trunk's features through bald-core's MC-dropout head (the scalar f64 oracle) give,
    /// for every MC sample, the training graph's log-probs under that sample's masks: the head
    /// that the pool's inference runs K times is the one trained, dropout scaling included.
    #[test]
    fn the_head_is_bald_cores_mc_dropout_head() {
        use bald_core::{DenseLayer, McDropoutHead, Scalar};
        let (side, classes, batch, k, seed) = (10, 3, 4, 5, 7);
        let mut net = GalCnn::new(side, classes, normals(11)).unwrap();
        for i in [1, 3, 5, 7] {
            net.params[i]
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = 0.05 * (j % 3) as f32);
        }
        let mut draw = normals(12);
        let images: Vec<f32> = (0..batch * side * side).map(|_| draw()).collect();
        let mut ws = Workspace::default();
        let mut features = Vec::new();
        net.trunk(&images, &mut ws, &mut features);
        let [(w1, b1), (w2, b2)] = net.head();
        let layers = [
            DenseLayer {
                weight: w1,
                bias: b1,
                inputs: net.features(),
                outputs: HIDDEN,
                dropout: 0.25,
            },
            DenseLayer {
                weight: w2,
                bias: b2,
                inputs: HIDDEN,
                outputs: classes,
                dropout: 0.5,
            },
        ];
        let head = McDropoutHead::new(&layers).unwrap();
        let want: Vec<f64> =
            bald_core::owned::mc_dropout_forward(&Scalar, &head, &features, batch, k, seed)
                .unwrap();
        for sample in 0..k {
            // One mask per sample, the same for every point (consistent MC dropout).
            let keep = |l: usize| -> Vec<f32> {
                let scale = 1.0 / (1.0 - layers[l].dropout);
                let mask: Vec<f32> = layers[l]
                    .kept_inputs(
                        seed,
                        u32::try_from(l).unwrap(),
                        u32::try_from(sample).unwrap(),
                    )
                    .map(|kept| if kept { scale } else { 0.0 })
                    .collect();
                mask.repeat(batch)
            };
            let (keep_f, keep_h) = (keep(0), keep(1));
            assert!(keep_f.contains(&0.0) && keep_h.contains(&0.0));
            net.trunk(&images, &mut ws, &mut features);
            net.head_logits(batch, (&keep_f, &keep_h), &mut ws);
            for (point, z) in ws.logits.chunks_exact(classes).enumerate() {
                let max = z.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                for (c, &zc) in z.iter().enumerate() {
                    let got = f64::from(zc - lse);
                    let w = want[(point * k + sample) * classes + c];
                    assert!(
                        (got - w).abs() < 1e-4,
                        "point {point} sample {sample}: {got} vs {w}"
                    );
                }
            }
        }
    }
}
