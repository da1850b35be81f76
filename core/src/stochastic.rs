//! Random acquisition and stochastic batch acquisition (Kirsch et al. 2023, "Stochastic Batch
//! Acquisition: A Simple Baseline for Deep Active Learning"): PowerBALD and friends.

use crate::error::{check_len, Error};
use crate::rng::{point_uniform, Domain};
use crate::topk::{better_first, top_k};

/// Random acquisition keys of points `first..first + out.len()`: a uniform [0, 1) key per
/// point n from Philox(seed; n); the top-k of these keys is a uniformly random k-subset, the
/// same on every backend and however the pool is split.
pub fn random_scores(seed: u64, first: usize, out: &mut [f64]) {
    for (n, o) in out.iter_mut().enumerate() {
        *o = point_uniform(seed, Domain::Random, first + n);
    }
}

/// How scores become sampling weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StochasticMode {
    /// p(n) ∝ max(s_n, 0)^β (PowerBALD when the scores are BALD).
    Power,
    /// p(n) ∝ exp(β s_n).
    Softmax,
    /// p(n) ∝ rank_n^(-β), rank 1 the best score (ties to the lower index).
    SoftRank,
}

/// Stochastic batch acquisition: draws `batch_size` points without replacement with the
/// probabilities of [`StochasticMode`] at temperature `beta`, by Gumbel-top-k: the batch is the
/// top-k of β log w_n + G_n, G_n = -ln(-ln u_n) Gumbel noise from Philox(seed; n).
/// β = 0 is uniformly random; large β approaches the deterministic top-k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StochasticBatch {
    /// The weighting.
    pub mode: StochasticMode,
    /// Inverse temperature β >= 0.
    pub beta: f64,
    /// Points to pick; clamped to N.
    pub batch_size: usize,
    /// Seed of the Gumbel noise.
    pub seed: u64,
}

impl StochasticBatch {
    /// Picks the batch from `scores` (finite, one per point) into `out` (at least
    /// min(batch, N)), using `keys` (N) and, for [`StochasticMode::SoftRank`], `order` (N) as
    /// scratch. Returns the picks, best key first.
    pub fn select<'o>(
        &self,
        scores: &[f64],
        keys: &mut [f64],
        order: &mut [usize],
        out: &'o mut [usize],
    ) -> Result<&'o [usize], Error> {
        self.keys(scores, |n| n, keys, order)?;
        top_k(keys, self.batch_size, out)
    }

    /// Each point's key, β log w_n + G_n, into `keys` (one per score), the Gumbel noise of
    /// `scores[i]` keyed by `point(i)`, its point's index in the whole pool: the points left
    /// after exclusions, or a shard's, draw the noise the whole pool's points draw. `order` (N)
    /// is scratch for [`StochasticMode::SoftRank`], whose ranks are among `scores`.
    pub fn keys(
        &self,
        scores: &[f64],
        point: impl Fn(usize) -> usize,
        keys: &mut [f64],
        order: &mut [usize],
    ) -> Result<(), Error> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::InvalidParameter {
                name: "beta",
                reason: "must be finite and >= 0",
            });
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "scores",
                reason: "must be finite",
            });
        }
        check_len("keys", scores.len(), keys.len())?;
        let beta = self.beta;
        match self.mode {
            StochasticMode::Power => {
                for (key, &s) in keys.iter_mut().zip(scores) {
                    // s = 0 (or rounding below) has weight 0: key -inf, unless beta = 0.
                    *key = if beta == 0.0 {
                        0.0
                    } else {
                        beta * libm::log(s.max(0.0))
                    };
                }
            }
            StochasticMode::Softmax => {
                for (key, &s) in keys.iter_mut().zip(scores) {
                    *key = beta * s;
                }
            }
            StochasticMode::SoftRank => {
                check_len("order", scores.len(), order.len())?;
                for (i, o) in order.iter_mut().enumerate() {
                    *o = i;
                }
                order.sort_unstable_by(|&a, &b| better_first(scores, a, b));
                for (rank, &i) in order.iter().enumerate() {
                    keys[i] = -beta * libm::log((rank + 1) as f64);
                }
            }
        }
        for (i, key) in keys.iter_mut().enumerate() {
            *key += gumbel(self.seed, point(i));
        }
        Ok(())
    }
}

/// Standard Gumbel noise for point `n`: -ln(-ln u) with u in (0, 1).
fn gumbel(seed: u64, n: usize) -> f64 {
    let u = point_uniform(seed, Domain::Gumbel, n) + 0.5 / (1u64 << 53) as f64;
    -libm::log(-libm::log(u))
}
