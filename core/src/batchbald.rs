//! Greedy BatchBALD (Kirsch, van Amersfoort, Gal 2019), as batchbald_redux's
//! `get_batchbald_batch(log_probs, batch_size, num_samples)`.

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::Error;
use crate::joint::{
    dynamic_joint_workspace_len, joint_entropies_workspace_len, DynamicJoint, JointProbs, Regime,
};
use crate::lazy::{pick_joint, LazyGreedy};
use crate::params::{exclude_candidates, BatchBald, Greedy, Hooks, Pick};

/// Most candidates one lazy block evaluates in the host driver (its index buffer is on the
/// stack).
const MAX_LAZY_BLOCK: usize = 4096;

impl BatchBald {
    /// Runs the greedy acquisition on `backend` ([`Backend::batchbald`]) with `hooks`
    /// (excluded points, a call after each pick; `&mut Hooks::default()` for none), writing the
    /// picks (pool indices, in pick order) and their cumulative scores into the first entries of
    /// the outputs, which hold at least `picks(N)`; returns the picks made,
    /// `min(batch_size, points not excluded)`. `workspace` holds [`BatchBald::workspace_len`]
    /// f64s (device backends may leave it unused).
    pub fn run<'a, B: Backend, T: Element + 'a>(
        &self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
        hooks: &mut Hooks<'_>,
    ) -> Result<usize, B::Error> {
        let b = self.picks(pool.shape().n);
        if b == 0 {
            return Ok(0);
        }
        check_outputs(b, out_indices, out_scores)?;
        backend.batchbald(self, pool, workspace, out_indices, out_scores, hooks)
    }

    /// The host driver behind [`BatchBald::run`] (the default of [`Backend::batchbald`]):
    /// the joint lives in `workspace` and each pick is one [`Backend::select_candidate`] call.
    /// Outputs hold at least `picks(N)` entries.
    pub fn greedy<'a, B: Backend, T: Element + 'a>(
        &self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
        hooks: &mut Hooks<'_>,
    ) -> Result<usize, B::Error> {
        let lp = pool.host().ok_or(Error::InvalidParameter {
            name: "pool",
            reason: "it is on a device only, and its backend does not run BatchBALD there",
        })?;
        let shape = lp.shape();
        let b = self.picks(shape.n);
        if b == 0 {
            return Ok(0);
        }
        let need = self.workspace_len(shape)?;
        if workspace.len() < need {
            return Err(Error::ShapeMismatch {
                what: "workspace",
                expected: need,
                actual: workspace.len(),
            }
            .into());
        }
        check_outputs(b, out_indices, out_scores)?;
        let joint_len = dynamic_joint_workspace_len(shape, b - 1, self.num_samples)?;
        let (joint_ws, rest) = workspace.split_at_mut(joint_len);
        let (cond, rest) = rest.split_at_mut(shape.n);
        let (scratch, rest) = rest.split_at_mut(shape.n);
        let (step_ws, rest) = rest.split_at_mut(joint_entropies_workspace_len(shape));
        let (pair_ws, lazy_ws) = match self.greedy {
            Greedy::Lazy => rest.split_at_mut(shape.k * shape.c),
            Greedy::Full => rest.split_at_mut(0),
        };
        // Entropies into scratch with the conditional ones: BALD bounds lazy's first gains.
        match hooks.given_entropies(shape.n)? {
            Some((h, eh)) => {
                scratch.copy_from_slice(h);
                cond.copy_from_slice(eh);
            }
            None => backend.entropies(pool, scratch, cond)?,
        }
        let b = b.min(exclude_candidates(cond, hooks.exclude)?);
        if b == 0 {
            return Ok(0);
        }
        let mut lazy = match self.greedy {
            Greedy::Lazy => Some(LazyGreedy::new(lazy_ws, shape.n, |i| {
                // Excluded points (conditional entropy +inf) are no candidates.
                match cond[i] {
                    f64::INFINITY => f64::NAN,
                    h => scratch[i] - h,
                }
            })?),
            Greedy::Full => None,
        };
        let mut joint = DynamicJoint::new(joint_ws, shape, b - 1, self.num_samples, self.seed)?;
        for t in 0..b {
            if t > 0 {
                joint.add(&lp, &out_indices[..t])?;
            }
            let chosen = &out_indices[..t];
            let (best, score, evaluations) = match lazy.as_mut() {
                Some(lazy) => {
                    let shared: f64 = chosen.iter().map(|&i| cond[i]).sum();
                    if joint.regime() == Regime::Sampled {
                        let h_batch = joint.view().batch_entropy();
                        lazy.start_sampled_step(h_batch - shared, shape.c, joint.samples());
                    }
                    let mut block = backend.lazy_block(shape).clamp(1, MAX_LAZY_BLOCK);
                    let mut buf = [0usize; MAX_LAZY_BLOCK];
                    loop {
                        let candidates = lazy.next_block(&mut buf[..block]);
                        if candidates.is_empty() {
                            break;
                        }
                        let h = &mut scratch[..candidates.len()];
                        backend.joint_entropies(
                            pool,
                            &joint.view(),
                            Some(candidates),
                            h,
                            step_ws,
                        )?;
                        // The full step's arithmetic (Backend::select_candidate).
                        for (s, &i) in h.iter_mut().zip(candidates) {
                            *s -= cond[i] + shared;
                        }
                        lazy.report(h);
                        block = (2 * block).min(MAX_LAZY_BLOCK);
                    }
                    let evaluations = lazy.evaluations();
                    let (best, score) = lazy.pick().ok_or(Error::EmptyDimension { dim: "N" })?;
                    (best, score, evaluations)
                }
                None => {
                    let (best, score) = backend.select_candidate(
                        pool,
                        &joint.view(),
                        cond,
                        chosen,
                        scratch,
                        step_ws,
                    )?;
                    (best, score, shape.n)
                }
            };
            out_indices[t] = best;
            out_scores[t] = score;
            if let Some(lazy) = lazy.as_mut().filter(|_| t + 1 < b) {
                pairwise_bounds(
                    backend,
                    pool,
                    lp.point(best),
                    pair_ws,
                    cond,
                    scratch,
                    step_ws,
                    lazy,
                )?;
            }
            hooks.picked(Pick {
                done: t + 1,
                total: b,
                index: best,
                score,
                evaluations,
            })?;
        }
        Ok(b)
    }
}

/// Lowers lazy's bounds to each candidate's gain given the newest pick alone,
/// I(y_n; w | y_b) = H(y_n, y_b) - H(y_b) - E_w H(y_n | w), exact with C rows: conditioning on
/// more points never raises an entropy, so it bounds the gain given the whole batch. A pick's
/// near-copies, whose stale bounds are as high as its own, then drop out at the cost of a
/// C-row step instead of a full one.
#[allow(clippy::too_many_arguments)]
fn pairwise_bounds<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    pick: &[T],
    a: &mut [f64],
    cond: &[f64],
    out: &mut [f64],
    step_ws: &mut [f64],
    lazy: &mut LazyGreedy<'_>,
) -> Result<(), B::Error> {
    let (k, c) = (pool.shape().k, pool.shape().c);
    let h_pick = pick_joint(pick, k, c, a);
    let joint = JointProbs {
        a,
        log_scale: None,
        weight: 1.0,
        m: c,
        k,
    };
    let mut indices = [0usize; MAX_LAZY_BLOCK];
    lazy.tighten(&mut indices, out, |candidates, h| {
        backend.joint_entropies(pool, &joint, Some(candidates), h, step_ws)?;
        for (h, &i) in h.iter_mut().zip(candidates) {
            *h -= h_pick + cond[i];
        }
        Ok(())
    })
}

/// Both outputs hold at least the `b` picks.
fn check_outputs(b: usize, out_indices: &[usize], out_scores: &[f64]) -> Result<(), Error> {
    let actual = out_indices.len().min(out_scores.len());
    if actual < b {
        return Err(Error::ShapeMismatch {
            what: "out",
            expected: b,
            actual,
        });
    }
    Ok(())
}
