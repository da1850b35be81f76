//! EPIG, the expected predictive information gain (Bickford Smith, Kirsch, Farquhar, Gal,
//! Foster, Rainforth, "Prediction-oriented Bayesian active learning", AISTATS 2023): how much a
//! pool point's label tells about the predictions on target inputs x*_m, drawn from the
//! distribution the model will be asked about.
//!
//! The pool's log-probs lp[n, k, c] (N x K x C) and the targets' lt[m, k, c] (M x K x C) come
//! from the same K posterior samples (one forward pass with the same dropout masks). Each
//! (point, target) pair has the joint p(y, y*) = (1/K) sum_k p_k(y | x_n) p_k(y* | x*_m), and
//!
//! EPIG(x_n) = (1/M) sum_m I(y; y*_m) = H(y_n) + (1/M) sum_m H(y*_m) - (1/M) sum_m H(y_n, y*_m),
//!
//! with 0 log 0 = 0. The last term is a joint-entropy step ([`crate::joint`]) whose rows are
//! the targets' M x C (target, class) pairs, a[(m, c*), k] = p_k(c* | x*_m) / K, weighted 1/M:
//! every backend's [`Backend::joint_entropies`] computes it, one GEMM of [N·C x K] by
//! [K x M·C] with the x log x epilogue, and nothing of size N x M x C x C is ever held.

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::{check_at_least, check_len, Error};
use crate::joint::{joint_entropies_workspace_len, JointProbs};
use crate::logprobs::{LogProbs, Shape};
use crate::math::neg_x_ln_x;

/// Checks that `targets` have the pool's K and C.
pub fn check_targets(pool: Shape, targets: Shape) -> Result<(), Error> {
    if (pool.k, pool.c) != (targets.k, targets.c) {
        return Err(Error::TargetsMismatch {
            pool: (pool.n, pool.k, pool.c),
            targets: (targets.n, targets.k, targets.c),
        });
    }
    Ok(())
}

/// f64s of workspace [`epig`] needs for a pool of shape `pool` and targets of shape `targets`.
pub fn epig_workspace_len(pool: Shape, targets: Shape) -> Result<usize, Error> {
    check_targets(pool, targets)?;
    targets
        .elements()?
        .checked_add(pool.n)
        .and_then(|x| x.checked_add(joint_entropies_workspace_len(pool)))
        .ok_or(Error::ShapeOverflow)
}

/// The targets as joint rows, a[(m, c), k] = p_k(c | x*_m) / K, into `a` (M·C x K); returns
/// (1/M) sum_m H(y*_m), the targets' mean predictive entropy.
pub fn epig_targets<T: Element>(targets: &LogProbs<'_, T>, a: &mut [f64]) -> Result<f64, Error> {
    let Shape { n: m, k, c } = targets.shape();
    check_len("targets' rows", m * c * k, a.len())?;
    let inv_k = 1.0 / k as f64;
    let mut h = 0.0;
    for t in 0..m {
        let point = targets.point(t);
        for class in 0..c {
            let row = &mut a[(t * c + class) * k..(t * c + class + 1) * k];
            let mut q = 0.0;
            for (kk, r) in row.iter_mut().enumerate() {
                *r = libm::exp(point[kk * c + class].to_f64()) * inv_k;
                q += *r;
            }
            h += neg_x_ln_x(q);
        }
    }
    Ok(h / m as f64)
}

/// Every pool point's EPIG against `targets` (M x K x C log-probs, the pool's K and C) on
/// `backend`, into `out` (N), with [`epig_workspace_len`] f64s of `workspace`. Clamped at 0
/// against rounding, as BALD is (mutual information is never negative).
pub fn epig<'a, B: Backend, T: Element + 'a, U: Element>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    targets: &LogProbs<'_, U>,
    out: &mut [f64],
    workspace: &mut [f64],
) -> Result<(), B::Error> {
    let shape = pool.shape();
    let t = targets.shape();
    let need = epig_workspace_len(shape, t)?;
    check_len("out", shape.n, out.len())?;
    check_at_least("workspace", need, workspace.len())?;
    let (a, rest) = workspace.split_at_mut(t.n * t.c * t.k);
    let (joint, step) = rest.split_at_mut(shape.n);
    let h_targets = epig_targets(targets, a)?;
    // H(y_n) into out; the conditional entropies, unused, into joint's space.
    backend.entropies(pool, out, joint)?;
    let rows = JointProbs {
        a,
        log_scale: None,
        weight: 1.0 / t.n as f64,
        m: t.n * t.c,
        k: t.k,
    };
    backend.joint_entropies(
        pool,
        &rows,
        None,
        joint,
        &mut step[..joint_entropies_workspace_len(shape)],
    )?;
    for (o, &j) in out.iter_mut().zip(joint.iter()) {
        *o = (*o + h_targets - j).max(0.0);
    }
    Ok(())
}

/// EPIG by its definition, the oracle of [`epig`]: for each (point, target) pair the C x C
/// joint summed over the K samples, and I(y; y*) = H(y) + H(y*) - H(y, y*), in f64, unclamped.
/// O(N·M·C²·K).
pub fn epig_reference<T: Element, U: Element>(
    pool: &LogProbs<'_, T>,
    targets: &LogProbs<'_, U>,
    out: &mut [f64],
) -> Result<(), Error> {
    let (s, t) = (pool.shape(), targets.shape());
    check_targets(s, t)?;
    check_len("out", s.n, out.len())?;
    let (k, c) = (s.k, s.c);
    let inv_k = 1.0 / k as f64;
    for (n, o) in out.iter_mut().enumerate() {
        let x = pool.point(n);
        let mut total = 0.0;
        for m in 0..t.n {
            let y = targets.point(m);
            let (mut h, mut h_star, mut h_joint) = (0.0, 0.0, 0.0);
            for a in 0..c {
                let p: f64 = (0..k).map(|kk| libm::exp(x[kk * c + a].to_f64())).sum();
                h += neg_x_ln_x(p * inv_k);
                let q: f64 = (0..k).map(|kk| libm::exp(y[kk * c + a].to_f64())).sum();
                h_star += neg_x_ln_x(q * inv_k);
                for b in 0..c {
                    let j: f64 = (0..k)
                        .map(|kk| libm::exp(x[kk * c + a].to_f64() + y[kk * c + b].to_f64()))
                        .sum();
                    h_joint += neg_x_ln_x(j * inv_k);
                }
            }
            total += h + h_star - h_joint;
        }
        *o = total / t.n as f64;
    }
    Ok(())
}
