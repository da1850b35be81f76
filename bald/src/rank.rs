//! The strategies that rank points by one key each: the top-k of a score (EPIG's included),
//! random (uniform keys) and the stochastic batches (Gumbel-perturbed keys), and BatchBALD's
//! PowerBALD tail. Every key is keyed by its point's index in the whole pool, so a pool split
//! in shards ranks each shard's points ([`rank`]) and [`merge`]s the shards' best into the
//! batch of the whole pool; softrank's ranks are among the scores it is given, so it is the
//! whole pool's on one shard only.

use bald_core::{top_k, StochasticBatch, StochasticMode};

use crate::error::Result;

/// How points are keyed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Keys {
    /// By their scores (top-k; random, whose scores are its keys).
    Scores,
    /// By a stochastic batch's Gumbel-perturbed keys (PowerBALD's: β log max(s, 0) +
    /// G(seed; point)).
    Stochastic {
        /// How scores become weights.
        mode: StochasticMode,
        /// Inverse temperature β.
        beta: f64,
        /// Seed of the Gumbel noise.
        seed: u64,
    },
}

/// The best points of a ranking, best key first (ties to the lower index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranked {
    /// Their keys.
    pub keys: Vec<f64>,
    /// Their indices in the whole pool.
    pub indices: Vec<usize>,
    /// Their scores: what a batch reports for them.
    pub scores: Vec<f64>,
}

/// The best `batch` points by `keys` among `scores` (one per point; points `offset..` of the
/// whole pool), leaving out those `excluded` marks (one per point).
pub fn rank(
    keys: Keys,
    scores: &[f64],
    offset: usize,
    excluded: Option<&[bool]>,
    batch: usize,
) -> Result<Ranked> {
    let kept: Vec<usize> = match excluded {
        Some(mask) => (0..scores.len()).filter(|&i| !mask[i]).collect(),
        None => (0..scores.len()).collect(),
    };
    let compact: Vec<f64> = kept.iter().map(|&i| scores[i]).collect();
    let stochastic = match keys {
        Keys::Scores => None,
        Keys::Stochastic { mode, beta, seed } => {
            let stochastic = StochasticBatch {
                mode,
                beta,
                batch_size: batch,
                seed,
            };
            let mut key = vec![0.0; compact.len()];
            let mut order = match mode {
                StochasticMode::SoftRank => vec![0; compact.len()],
                _ => vec![],
            };
            stochastic.keys(&compact, |i| offset + kept[i], &mut key, &mut order)?;
            Some(key)
        }
    };
    // Top-k and random rank by the scores themselves: no copy.
    let key = stochastic.as_deref().unwrap_or(&compact);
    let mut best = vec![0; batch.min(key.len())];
    let picked = top_k(key, batch, &mut best)?.len();
    best.truncate(picked);
    Ok(Ranked {
        keys: best.iter().map(|&i| key[i]).collect(),
        indices: best.iter().map(|&i| offset + kept[i]).collect(),
        scores: best.iter().map(|&i| compact[i]).collect(),
    })
}

/// The best `batch` of the shards' rankings ([`rank`]): the whole pool's.
pub fn merge(parts: &[Ranked], batch: usize) -> Ranked {
    let mut all: Vec<(f64, usize, f64)> = parts
        .iter()
        .flat_map(|p| {
            p.keys
                .iter()
                .zip(&p.indices)
                .zip(&p.scores)
                .map(|((&k, &i), &s)| (k, i, s))
        })
        .collect();
    // top_k's order: NaN keys last, higher keys first, ties to the lower index.
    all.sort_by(|a, b| {
        a.0.is_nan()
            .cmp(&b.0.is_nan())
            .then(b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.1.cmp(&b.1))
    });
    all.truncate(batch);
    Ranked {
        keys: all.iter().map(|e| e.0).collect(),
        indices: all.iter().map(|e| e.1).collect(),
        scores: all.iter().map(|e| e.2).collect(),
    }
}
