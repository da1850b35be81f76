//! `Vec`-returning conveniences over the allocation-free API (feature `alloc`).

use alloc::vec;
use alloc::vec::Vec;

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::Error;
use crate::head::{head_workspace_len, McDropoutHead};
use crate::joint::{dynamic_joint_workspace_len, DynamicJoint, Regime};
use crate::logprobs::{LogProbs, Shape};
use crate::scores::{score_workspace_len, PointScore};
use crate::{BatchBald, BatchEpig, Hooks, StochasticBatch};

pub use crate::logprobs::{log_probs_from_logits, log_probs_from_probs};

/// A batch of picks: pool indices in pick order and one score per pick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Pool indices, in pick order.
    pub indices: Vec<usize>,
    /// The score of each pick (for BatchBALD, the cumulative joint mutual information).
    pub scores: Vec<f64>,
}

/// `score` of every point of `pool`.
pub fn scores<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    score: PointScore,
) -> Result<Vec<f64>, B::Error> {
    let shape = pool.shape();
    let mut out = vec![0.0; shape.n];
    let mut ws = vec![0.0; score_workspace_len(score, shape)];
    backend.scores(pool, score, &mut out, &mut ws)?;
    Ok(out)
}

/// EPIG of every point of `pool` against `targets` ([`crate::epig`]).
pub fn epig<'a, B: Backend, T: Element + 'a, U: Element>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    targets: &crate::LogProbs<'_, U>,
) -> Result<Vec<f64>, B::Error> {
    let shape = pool.shape();
    let mut out = vec![0.0; shape.n];
    let mut ws = vec![0.0; crate::epig_workspace_len(shape, targets.shape())?];
    crate::epig(backend, pool, targets, &mut out, &mut ws)?;
    Ok(out)
}

/// Entropy and conditional entropy of every point of `pool`, in one pass.
pub fn entropies<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
) -> Result<(Vec<f64>, Vec<f64>), B::Error> {
    let n = pool.shape().n;
    let (mut h, mut eh) = (vec![0.0; n], vec![0.0; n]);
    backend.entropies(pool, &mut h, &mut eh)?;
    Ok((h, eh))
}

/// The top `batch_size` points by `score` (ties to the lower index), with their scores.
pub fn top_k_batch<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    score: PointScore,
    batch_size: usize,
) -> Result<Batch, B::Error> {
    let all = scores(backend, pool, score)?;
    Ok(top_k_of(&all, batch_size))
}

/// The top `batch_size` entries of `scores` (ties to the lower index), with their scores.
pub fn top_k_of(scores: &[f64], batch_size: usize) -> Batch {
    let mut indices = vec![0; batch_size.min(scores.len())];
    // The buffer holds min(k, N) entries, which is all top_k asks for.
    let picked = crate::top_k(scores, batch_size, &mut indices).map_or(0, |p| p.len());
    indices.truncate(picked);
    let scores = indices.iter().map(|&i| scores[i]).collect();
    Batch { indices, scores }
}

/// `batch_size` uniformly random points (without replacement), keyed by `seed`; the scores
/// are the random keys.
pub fn random_batch(n: usize, batch_size: usize, seed: u64) -> Batch {
    let mut keys = vec![0.0; n];
    crate::random_scores(seed, 0, &mut keys);
    top_k_of(&keys, batch_size)
}

/// [`BatchBald::run`] with its buffers allocated here.
pub fn batchbald<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: BatchBald,
) -> Result<Batch, B::Error> {
    batchbald_with(backend, pool, params, &mut Hooks::default())
}

/// [`BatchBald::run`] with `hooks` and its buffers allocated here.
pub fn batchbald_with<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: BatchBald,
    hooks: &mut Hooks<'_>,
) -> Result<Batch, B::Error> {
    let shape = pool.shape();
    let b = params.picks(shape.n);
    let mut ws = vec![0.0; params.workspace_len(shape)?];
    let mut indices = vec![0; b];
    let mut scores = vec![0.0; b];
    let picked = params.run(backend, pool, &mut ws, &mut indices, &mut scores, hooks)?;
    indices.truncate(picked);
    scores.truncate(picked);
    Ok(Batch { indices, scores })
}

/// The standard error of each cumulative score of a BatchBALD batch whose joint entropy was
/// sampled: the spread of its estimate over the sampled configurations
/// ([`crate::JointProbs::entropy_standard_error`]); 0 for a pick of the exact regime. `indices`
/// are the first picks of a batch of `params` on `pool`, in pick order. The joint of the picks
/// is drawn again from their K x C rows alone (read with [`Backend::read_point`]) with the
/// same Philox counters, which do not depend on the pool: O(b M (K + C)) work and b K C values
/// read, nothing of the size of the pool.
pub fn standard_errors<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: BatchBald,
    indices: &[usize],
) -> Result<Vec<f64>, B::Error> {
    let shape = pool.shape();
    let b = indices.len();
    let mut out = vec![0.0; b];
    if (0..b).all(|t| params.regime_at(shape.c, t) == Regime::Exact) {
        return Ok(out);
    }
    let per = shape.k * shape.c;
    let mut rows = vec![T::from_f64(0.0); b * per];
    for (row, &i) in rows.chunks_exact_mut(per).zip(indices) {
        backend.read_point(pool, i, row)?;
    }
    let picks_shape = Shape::new(b, shape.k, shape.c);
    let picks = LogProbs::new(&rows, picks_shape)?;
    let mut ws = vec![0.0; dynamic_joint_workspace_len(picks_shape, b - 1, params.num_samples)?];
    let mut joint =
        DynamicJoint::new(&mut ws, picks_shape, b - 1, params.num_samples, params.seed)?;
    let order: Vec<usize> = (0..b).collect();
    let mut probs = vec![0.0; per];
    for (t, se) in out.iter_mut().enumerate() {
        if t > 0 {
            joint.add(&picks, &order[..t])?;
        }
        if joint.regime() == Regime::Sampled {
            for (p, l) in probs.iter_mut().zip(picks.point(t)) {
                *p = libm::exp(l.to_f64());
            }
            *se = joint.view().entropy_standard_error(&probs, shape.c);
        }
    }
    Ok(out)
}

/// [`StochasticBatch::select`] on precomputed `scores`; the batch's scores are the input
/// scores of the picks.
pub fn stochastic_batch(params: StochasticBatch, scores: &[f64]) -> Result<Batch, Error> {
    let n = scores.len();
    let mut keys = vec![0.0; n];
    let mut order = vec![0; n];
    let mut indices = vec![0; params.batch_size.min(n)];
    let picked = params
        .select(scores, &mut keys, &mut order, &mut indices)?
        .len();
    indices.truncate(picked);
    let picked_scores = indices.iter().map(|&i| scores[i]).collect();
    Ok(Batch {
        indices,
        scores: picked_scores,
    })
}

/// [`Backend::mc_dropout_forward`] into a new N x K x C `Vec`.
pub fn mc_dropout_forward<B: Backend, O: Element>(
    backend: &B,
    head: &McDropoutHead<'_>,
    features: &[f32],
    n: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<O>, B::Error> {
    let len = crate::Shape::new(n, k, head.classes()).elements()?;
    let mut out = vec![O::from_f64(0.0); len];
    let mut ws = vec![0.0; head_workspace_len(head)];
    backend.mc_dropout_forward(head, features, n, k, seed, &mut out, &mut ws)?;
    Ok(out)
}

/// [`BatchEpig::run`] against `targets` with `hooks` and its buffers allocated here.
pub fn batch_epig<'a, B: Backend, T: Element + 'a, U: Element>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    targets: &LogProbs<'_, U>,
    params: BatchEpig,
    hooks: &mut Hooks<'_>,
) -> Result<Batch, B::Error> {
    let shape = pool.shape();
    let b = params.picks(shape.n);
    let mut ws = vec![0.0; params.workspace_len(shape, targets.shape())?];
    let mut rows = vec![T::from_f64(0.0); b.saturating_sub(1) * shape.k * shape.c];
    let mut indices = vec![0; b];
    let mut scores = vec![0.0; b];
    let picked = params.run(
        backend,
        pool,
        targets,
        (&mut ws, &mut rows),
        &mut indices,
        &mut scores,
        hooks,
    )?;
    indices.truncate(picked);
    scores.truncate(picked);
    Ok(Batch { indices, scores })
}
