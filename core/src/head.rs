//! The MC-dropout head: dense layers with dropout before each, run K times per pool point.
//!
//! As in the BayesianModule split of the seed papers' code, a model is a deterministic feature
//! extractor (run once per point, outside bald) and a stochastic head run here K times:
//! for each layer l, h <- W_l (mask_l,k ⊙ h / (1 - p_l)) + b_l, ReLU between layers,
//! log_softmax at the end. Masks are *consistent*: the mask of MC sample k at layer l for input
//! unit j is a pure function of (seed, l, k, j) ([`dropout_keep`]), the same for every pool
//! point, chunk and backend, so that all points are scored under the same K models.

use crate::element::Element;
use crate::error::{check_at_least, check_len, mul, Error};
use crate::logprobs::Shape;
use crate::math::log_sum_exp;
use crate::rng::{counter, key_of, philox4x32_10, Domain};

/// One dense layer `outputs x inputs`, preceded by dropout with rate `dropout`.
#[derive(Debug, Clone, Copy)]
pub struct DenseLayer<'a> {
    /// Row-major `outputs x inputs` weights (torch's `Linear.weight` layout).
    pub weight: &'a [f32],
    /// `outputs` biases.
    pub bias: &'a [f32],
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Dropout probability applied to this layer's inputs, in [0, 1).
    pub dropout: f32,
}

impl DenseLayer<'_> {
    /// Whether each input unit of this layer (`layer`, its index in the head) is kept in MC
    /// sample `sample`: the dropout mask every backend applies, from [`dropout_keep`]. Input
    /// widths fit in u32 for validated forward passes ([`check_forward_args`]).
    pub fn kept_inputs(
        &self,
        seed: u64,
        layer: u32,
        sample: u32,
    ) -> impl Iterator<Item = bool> + use<'_> {
        let threshold = keep_threshold(self.dropout);
        (0u32..)
            .take(self.inputs)
            .map(move |unit| dropout_keep(seed, layer, sample, unit, threshold))
    }
}

/// A validated stack of [`DenseLayer`]s; the last layer's outputs are the classes.
#[derive(Debug, Clone, Copy)]
pub struct McDropoutHead<'a> {
    layers: &'a [DenseLayer<'a>],
}

impl<'a> McDropoutHead<'a> {
    /// Checks that there is at least one layer, widths are non-zero and chain, buffers have
    /// their lengths, weights are finite, and dropout rates are in [0, 1).
    pub fn new(layers: &'a [DenseLayer<'a>]) -> Result<Self, Error> {
        if layers.is_empty() {
            return Err(Error::EmptyDimension { dim: "layers" });
        }
        for (l, layer) in layers.iter().enumerate() {
            if layer.inputs == 0 {
                return Err(Error::EmptyDimension {
                    dim: "layer inputs",
                });
            }
            if layer.outputs == 0 {
                return Err(Error::EmptyDimension {
                    dim: "layer outputs",
                });
            }
            if l > 0 {
                check_len("layer inputs", layers[l - 1].outputs, layer.inputs)?;
            }
            check_len(
                "weight",
                mul(layer.outputs, layer.inputs)?,
                layer.weight.len(),
            )?;
            check_len("bias", layer.outputs, layer.bias.len())?;
            if !(0.0..1.0).contains(&layer.dropout) {
                return Err(Error::InvalidParameter {
                    name: "dropout",
                    reason: "must be in [0, 1)",
                });
            }
            if layer
                .weight
                .iter()
                .chain(layer.bias)
                .any(|w| !w.is_finite())
            {
                return Err(Error::InvalidParameter {
                    name: "weight",
                    reason: "weights and biases must be finite",
                });
            }
        }
        Ok(McDropoutHead { layers })
    }

    /// The layers.
    pub fn layers(&self) -> &'a [DenseLayer<'a>] {
        self.layers
    }

    /// Input feature width D_in.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Classes C (the last layer's width).
    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// The widest layer input or output.
    pub fn max_width(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.inputs.max(l.outputs))
            .max()
            .unwrap_or(0)
    }
}

/// Scratch f64s [`forward`] needs: two activation buffers of the widest layer.
pub fn head_workspace_len(head: &McDropoutHead<'_>) -> usize {
    2 * head.max_width()
}

/// The 24-bit threshold of dropout rate `p`: a unit is kept when its 24-bit draw is >= it,
/// which happens with probability 1 - ceil(p 2^24) / 2^24.
pub fn keep_threshold(p: f32) -> u32 {
    // In [0, 2^24] for p in [0, 1): the float-to-int conversion is exact.
    libm::ceil(f64::from(p) * f64::from(1u32 << 24)) as u32
}

/// Whether input unit `unit` of layer `layer` is kept in MC sample `sample`: the top 24 bits
/// of word `unit % 4` of Philox(seed; counter (unit / 4, sample, layer, Dropout)) compared
/// with `threshold` ([`keep_threshold`]). Integer-only, so every backend agrees bit for bit.
#[inline]
pub fn dropout_keep(seed: u64, layer: u32, sample: u32, unit: u32, threshold: u32) -> bool {
    let w = philox4x32_10(
        [unit / 4, sample, layer, Domain::Dropout as u32],
        key_of(seed),
    );
    (w[(unit % 4) as usize] >> 8) >= threshold
}

/// Checks the arguments of a forward pass (shared by every backend): lengths, counters that
/// must fit in u32, and finite features.
pub fn check_forward_args(
    head: &McDropoutHead<'_>,
    features: &[f32],
    n: usize,
    k: usize,
    out_len: usize,
) -> Result<(), Error> {
    let shape = Shape::new(n, k, head.classes());
    check_len("out", shape.elements()?, out_len)?;
    check_len("features", mul(n, head.inputs())?, features.len())?;
    counter(k)?;
    counter(head.layers.len())?;
    counter(head.max_width())?;
    if let Some(i) = features.iter().position(|x| !x.is_finite()) {
        let (n, c) = (i / head.inputs(), i % head.inputs());
        return Err(if features[i].is_nan() {
            Error::NotANumber { n, k: 0, c }
        } else {
            Error::Infinite { n, k: 0, c }
        });
    }
    Ok(())
}

/// The scalar reference forward pass: N x K x C log-probs of `features` (N x D_in) into `out`,
/// accumulating in f64. Features must be finite.
pub fn forward<O: Element>(
    head: &McDropoutHead<'_>,
    features: &[f32],
    n: usize,
    k: usize,
    seed: u64,
    out: &mut [O],
    workspace: &mut [f64],
) -> Result<(), Error> {
    check_forward_args(head, features, n, k, out.len())?;
    let width = head.max_width();
    let need = head_workspace_len(head);
    check_at_least("workspace", need, workspace.len())?;
    let (a, b) = workspace[..need].split_at_mut(width);
    let c = head.classes();
    for (point, x) in features.chunks_exact(head.inputs()).enumerate() {
        for sample in 0..k {
            for (h, &xi) in a.iter_mut().zip(x) {
                *h = f64::from(xi);
            }
            let (mut cur, mut next) = (&mut *a, &mut *b);
            for (l, layer) in head.layers.iter().enumerate() {
                let scale = 1.0 / (1.0 - f64::from(layer.dropout));
                let kept = layer.kept_inputs(seed, counter(l)?, counter(sample)?);
                for (h, keep) in cur[..layer.inputs].iter_mut().zip(kept) {
                    *h = if keep { *h * scale } else { 0.0 };
                }
                for (o, nx) in next[..layer.outputs].iter_mut().enumerate() {
                    let row = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
                    let dot: f64 = row
                        .iter()
                        .zip(&cur[..layer.inputs])
                        .map(|(&w, &h)| f64::from(w) * h)
                        .sum();
                    let y = dot + f64::from(layer.bias[o]);
                    *nx = if l + 1 < head.layers.len() {
                        y.max(0.0)
                    } else {
                        y
                    };
                }
                core::mem::swap(&mut cur, &mut next);
            }
            let logits = &cur[..c];
            if logits.iter().any(|z| !z.is_finite()) {
                return Err(Error::InvalidParameter {
                    name: "weight",
                    reason: "activations overflow f64 for this input",
                });
            }
            let lse = log_sum_exp(logits.iter().copied());
            let base = (point * k + sample) * c;
            for (o, &z) in out[base..base + c].iter_mut().zip(logits) {
                *o = O::from_f64(z - lse);
            }
        }
    }
    Ok(())
}
