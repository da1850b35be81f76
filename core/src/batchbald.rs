//! Greedy BatchBALD (Kirsch, van Amersfoort, Gal 2019), as batchbald_redux's
//! `get_batchbald_batch(log_probs, batch_size, num_samples)`.

use core::ops::ControlFlow;

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::Error;
use crate::joint::{
    dynamic_joint_workspace_len, joint_entropies_workspace_len, DynamicJoint, JointProbs, Regime,
};
use crate::lazy::{lazy_workspace_len, pick_joint, LazyGreedy};
use crate::logprobs::Shape;

/// How each greedy step finds its pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Greedy {
    /// Lazy greedy ([`crate::LazyGreedy`]): candidates in decreasing order of a bound on their
    /// gain, until the best found is certain; the same picks and scores as [`Greedy::Full`] in
    /// the exact regime, far fewer evaluations on real pools.
    #[default]
    Lazy,
    /// Every candidate at every step.
    Full,
}

impl Greedy {
    /// The name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Greedy::Lazy => "lazy",
            Greedy::Full => "full",
        }
    }
}

/// Most candidates one lazy block evaluates in the host driver (its index buffer is on the
/// stack).
const MAX_LAZY_BLOCK: usize = 4096;

/// The parameters of one BatchBALD acquisition.
///
/// Step t (t points chosen) picks the point n maximising the cumulative score
/// a_t(n) = H(y_1, .., y_t, y_n) - sum_{i <= t} E H(y_i) - E H(y_n), the mutual information of
/// the batch with the model; the joint entropy is exact while C^t <= `num_samples` and sampled
/// beyond (see [`crate::joint`]). Ties go to the lower index. The reported score of each pick is
/// a_t at that step, so scores are cumulative and non-decreasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBald {
    /// Points to pick; clamped to N as in the reference.
    pub batch_size: usize,
    /// The exact/sampled switch and the number of sampled configurations.
    pub num_samples: usize,
    /// Seed of the sampled regime.
    pub seed: u64,
    /// Lazy or full evaluation of each step.
    pub greedy: Greedy,
}

/// One pick of a greedy acquisition, as [`Hooks::on_pick`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Picks made so far, this one included.
    pub done: usize,
    /// Picks the acquisition will make in all.
    pub total: usize,
    /// The pool index picked.
    pub index: usize,
    /// Its cumulative score.
    pub score: f64,
    /// Candidates evaluated at this step (N for full greedy).
    pub evaluations: usize,
}

/// Every pool point's entropy and conditional entropy (N each), as [`Hooks::entropies`].
pub type Entropies<'a> = (&'a [f64], &'a [f64]);

/// What a caller adds to one greedy acquisition: points to leave out of the candidates, and a
/// call after each pick (for progress, or to stop between picks).
#[derive(Default)]
pub struct Hooks<'h> {
    /// Pool indices never picked (already labelled, say); repeats are allowed, and an index
    /// `>= N` is [`Error::IndexOutOfRange`]. The batch is clamped to the points left.
    pub exclude: &'h [usize],
    /// Called after each pick; `ControlFlow::Break(())` stops the acquisition there with
    /// [`Error::Interrupted`].
    pub on_pick: Option<&'h mut dyn FnMut(Pick) -> ControlFlow<()>>,
    /// The pool's entropies and conditional entropies (N each) when the caller has them
    /// already, from [`Backend::validate_entropies`], the pass that validated the pool: the
    /// acquisition then skips its own first pass. Other lengths are [`Error::ShapeMismatch`].
    pub entropies: Option<Entropies<'h>>,
}

impl Hooks<'_> {
    /// Checks that every excluded index is a pool index.
    pub fn check(&self, n: usize) -> Result<(), Error> {
        match self.exclude.iter().find(|&&i| i >= n) {
            Some(&index) => Err(Error::IndexOutOfRange { index, len: n }),
            None => Ok(()),
        }
    }

    /// The given first pass ([`Hooks::entropies`]) after a check of its lengths against N.
    pub fn given_entropies(&self, n: usize) -> Result<Option<Entropies<'_>>, Error> {
        let Some((h, eh)) = self.entropies else {
            return Ok(None);
        };
        for (what, len) in [("entropies", h.len()), ("conditional entropies", eh.len())] {
            if len != n {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: n,
                    actual: len,
                });
            }
        }
        Ok(Some((h, eh)))
    }

    /// Reports `pick`; an error when the caller stops the acquisition.
    pub fn picked(&mut self, pick: Pick) -> Result<(), Error> {
        match self.on_pick.as_mut().map(|f| f(pick)) {
            Some(ControlFlow::Break(())) => Err(Error::Interrupted { picks: pick.done }),
            _ => Ok(()),
        }
    }
}

/// Marks the excluded points of `conditional` (N conditional entropies, all finite) with
/// `+inf`, which gives them a score of `-inf` in every greedy step; returns how many
/// candidates are left. An index `>= N` is [`Error::IndexOutOfRange`].
pub fn exclude_candidates(conditional: &mut [f64], exclude: &[usize]) -> Result<usize, Error> {
    let len = conditional.len();
    for &i in exclude {
        *conditional
            .get_mut(i)
            .ok_or(Error::IndexOutOfRange { index: i, len })? = f64::INFINITY;
    }
    Ok(conditional.iter().filter(|&&h| h != f64::INFINITY).count())
}

impl BatchBald {
    /// The batch size actually picked from a pool of `n` points.
    pub fn picks(&self, n: usize) -> usize {
        self.batch_size.min(n)
    }

    /// The regime of step `t` (t points already chosen) with C classes.
    pub fn regime_at(&self, c: usize, t: usize) -> Regime {
        let mut rows = 1usize;
        for _ in 0..t {
            match rows.checked_mul(c) {
                Some(r) if r <= self.num_samples => rows = r,
                _ => return Regime::Sampled,
            }
        }
        Regime::Exact
    }

    /// f64s of workspace [`BatchBald::run`] needs for a pool of `shape`.
    pub fn workspace_len(&self, shape: Shape) -> Result<usize, Error> {
        let b = self.picks(shape.n);
        if b == 0 {
            return Ok(0);
        }
        let joint = dynamic_joint_workspace_len(shape, b - 1, self.num_samples)?;
        let lazy = match self.greedy {
            Greedy::Lazy => lazy_workspace_len(shape.n)?
                .checked_add(shape.k * shape.c)
                .ok_or(Error::ShapeOverflow)?,
            Greedy::Full => 0,
        };
        [2 * shape.n, joint_entropies_workspace_len(shape), lazy]
            .iter()
            .try_fold(joint, |acc, &x| acc.checked_add(x))
            .ok_or(Error::ShapeOverflow)
    }

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
