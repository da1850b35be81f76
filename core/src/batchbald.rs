//! Greedy BatchBALD (Kirsch, van Amersfoort, Gal 2019), as batchbald_redux's
//! `get_batchbald_batch(log_probs, batch_size, num_samples)`.

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::{check_at_least, check_len, Error};
use crate::joint::{
    dynamic_joint_workspace_len, joint_entropies_workspace_len, DynamicJoint, JointProbs, Regime,
};
use crate::lazy::{
    lazy_workspace_len, merge_step, pick_from_bests, pick_joint, Evaluated, LazyGreedy,
};
use crate::logprobs::{LogProbs, Shape};
use crate::params::{exclude_candidates, BatchBald, Entropies, Greedy, Hooks, Pick};
use crate::topk::argmax;

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

    /// The host driver behind [`BatchBald::run`] (the default of [`Backend::batchbald`]): the
    /// pool as one [`GreedyShard`], each step its proposal, the pick ([`pick_from_bests`], else
    /// [`merge_step`]) and its commit.
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
        let n = pool.shape().n;
        let b = self.picks(n);
        if b == 0 {
            return Ok(0);
        }
        check_outputs(b, out_indices, out_scores)?;
        let given = hooks.given_entropies(n)?;
        let mut shard =
            GreedyShard::new(backend, pool, self, (0, b), workspace, hooks.exclude, given)?;
        let b = shard.batch();
        for t in 0..b {
            let evaluations = shard.propose()?;
            let (previous, widening) = (shard.previous(), shard.widening());
            let (pick, keep) = match pick_from_bests([shard.best()], previous, widening) {
                Some(pick) => (pick, shard.kept(pick.score)),
                None => {
                    let mut keep = [0];
                    let pick = merge_step(
                        &mut [shard.evaluated().peekable()],
                        &mut keep,
                        previous,
                        widening,
                    )
                    .ok_or(Error::EmptyDimension { dim: "N" })?;
                    (pick, keep[0])
                }
            };
            shard.commit(keep, pick, None)?;
            out_indices[t] = pick.index;
            out_scores[t] = pick.score;
            hooks.picked(Pick {
                done: t + 1,
                total: b,
                index: pick.index,
                score: pick.score,
                evaluations,
            })?;
        }
        Ok(b)
    }

    /// f64s of workspace a [`GreedyShard`] of `shape` needs for a batch of `batch` picks.
    pub fn shard_workspace_len(&self, shape: Shape, batch: usize) -> Result<usize, Error> {
        if batch == 0 {
            return Ok(0);
        }
        let kc = shape.k * shape.c;
        let joint = dynamic_joint_workspace_len(shape, batch - 1, self.num_samples)?;
        let lazy = match self.greedy {
            Greedy::Lazy => lazy_workspace_len(shape.n)?
                .checked_add(kc)
                .ok_or(Error::ShapeOverflow)?,
            Greedy::Full => 0,
        };
        let rows = (batch - 1).checked_mul(kc).ok_or(Error::ShapeOverflow)?;
        [
            2 * shape.n,
            joint_entropies_workspace_len(shape),
            lazy,
            rows,
        ]
        .iter()
        .try_fold(joint, |acc, &x| acc.checked_add(x))
        .ok_or(Error::ShapeOverflow)
    }
}

/// One shard's part of a greedy BatchBALD acquisition over a pool that may be split in shards
/// (the whole pool is one shard): its points, global indices `offset..offset + N`, prepared
/// once; its lazy bounds (or, for full greedy, its step's best); and the joint of the batch
/// so far, built from the picks' points whichever shard holds them. Each step:
/// [`GreedyShard::propose`] evaluates candidates until the shard's best is certain;
/// [`pick_from_bests`] over every shard's [`GreedyShard::best`] decides the pick, each shard
/// keeping [`GreedyShard::kept`] of its evaluations, or, when the bests do not settle it,
/// [`merge_step`] over every shard's [`GreedyShard::evaluated`]; then [`GreedyShard::commit`]
/// on every shard, with the pick's point and conditional entropy from its shard
/// ([`GreedyShard::point_of`]). The picks and scores are those of one process over the
/// whole pool, in both regimes: the sampled joint's draws are keyed by configuration and pick
/// order, not by pool index.
pub struct GreedyShard<'s, 'a, B: Backend, T: Element + 'a> {
    backend: &'s B,
    pool: &'s B::Pool<'a, T>,
    lp: LogProbs<'a, T>,
    offset: usize,
    batch: usize,
    cond: &'s mut [f64],
    scratch: &'s mut [f64],
    step_ws: &'s mut [f64],
    pair_ws: &'s mut [f64],
    /// The picks' points (K x C, f64), in pick order, for the joint.
    rows: &'s mut [f64],
    lazy: Option<LazyGreedy<'s>>,
    joint: DynamicJoint<'s>,
    picks: usize,
    /// The sum of the picks' conditional entropies, in pick order.
    shared: f64,
    /// Full greedy: the step's best (score, local index).
    best: Option<(f64, usize)>,
}

impl<'s, 'a, B: Backend, T: Element + 'a> GreedyShard<'s, 'a, B, T> {
    /// Prepares the shard of `pool` whose first point is the whole pool's `offset`, for a batch
    /// of `batch` picks (`(offset, batch)`), in `workspace` of
    /// [`BatchBald::shard_workspace_len`]: its entropies (`given`, or computed), its excluded
    /// points (`exclude`, local indices) and its lazy bounds. The batch is clamped to the
    /// points not excluded ([`GreedyShard::batch`]).
    pub fn new(
        backend: &'s B,
        pool: &'s B::Pool<'a, T>,
        params: &BatchBald,
        (offset, batch): (usize, usize),
        workspace: &'s mut [f64],
        exclude: &[usize],
        given: Option<Entropies<'_>>,
    ) -> Result<Self, B::Error> {
        let lp = pool.host().ok_or(Error::InvalidParameter {
            name: "pool",
            reason: "it is on a device only, and its backend does not run BatchBALD there",
        })?;
        let shape = lp.shape();
        if batch == 0 {
            return Err(Error::InvalidParameter {
                name: "batch_size",
                reason: "a shard takes part in a batch of at least one pick",
            }
            .into());
        }
        let need = params.shard_workspace_len(shape, batch)?;
        check_at_least("workspace", need, workspace.len())?;
        let kc = shape.k * shape.c;
        let joint_len = dynamic_joint_workspace_len(shape, batch - 1, params.num_samples)?;
        let (joint_ws, rest) = workspace.split_at_mut(joint_len);
        let (cond, rest) = rest.split_at_mut(shape.n);
        let (scratch, rest) = rest.split_at_mut(shape.n);
        let (step_ws, rest) = rest.split_at_mut(joint_entropies_workspace_len(shape));
        let (rows, rest) = rest.split_at_mut((batch - 1) * kc);
        let (pair_ws, lazy_ws) = match params.greedy {
            Greedy::Lazy => rest.split_at_mut(kc),
            Greedy::Full => rest.split_at_mut(0),
        };
        // Entropies into scratch with the conditional ones: BALD bounds lazy's first gains.
        match given {
            Some((h, eh)) => {
                check_len("entropies", shape.n, h.len())?;
                check_len("conditional entropies", shape.n, eh.len())?;
                scratch.copy_from_slice(h);
                cond.copy_from_slice(eh);
            }
            None => backend.entropies(pool, scratch, cond)?,
        }
        let candidates = exclude_candidates(cond, exclude)?;
        let lazy = match params.greedy {
            Greedy::Lazy => Some(LazyGreedy::new(lazy_ws, shape.n, |i| {
                // Excluded points (conditional entropy +inf) are no candidates.
                match cond[i] {
                    f64::INFINITY => f64::NAN,
                    h => scratch[i] - h,
                }
            })?),
            Greedy::Full => None,
        };
        let joint = DynamicJoint::new(joint_ws, shape, batch - 1, params.num_samples, params.seed)?;
        Ok(GreedyShard {
            backend,
            pool,
            lp,
            offset,
            batch: batch.min(candidates),
            cond,
            scratch,
            step_ws,
            pair_ws,
            rows,
            lazy,
            joint,
            picks: 0,
            shared: 0.0,
            best: None,
        })
    }

    /// The batch this shard can fill alone: the batch it was made for, clamped to its points
    /// not excluded. A pool's batch is the smallest of the batch asked for and the sum of its
    /// shards' candidates.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sets the batch: the pool's, which may be more than this shard's candidates, at most
    /// the one the shard was made for (see [`GreedyShard::batch`]).
    pub fn set_batch(&mut self, batch: usize) {
        self.batch = batch.min(self.rows.len() / (self.lp.shape().k * self.lp.shape().c) + 1);
    }

    /// Evaluates this step's candidates until the shard's best is certain (lazy), or all of
    /// them (full); returns the evaluations made.
    pub fn propose(&mut self) -> Result<usize, B::Error> {
        let shape = self.lp.shape();
        let Some(lazy) = self.lazy.as_mut() else {
            let scores = &mut *self.scratch;
            self.backend.joint_entropies(
                self.pool,
                &self.joint.view(),
                None,
                scores,
                self.step_ws,
            )?;
            for (s, &h) in scores.iter_mut().zip(self.cond.iter()) {
                *s -= h + self.shared;
            }
            self.best = argmax(scores)
                .map(|i| (scores[i], i))
                .filter(|&(s, _)| s > f64::NEG_INFINITY);
            return Ok(shape.n);
        };
        if self.joint.regime() == Regime::Sampled {
            let h_batch = self.joint.view().batch_entropy();
            lazy.start_sampled_step(h_batch - self.shared, shape.c, self.joint.samples());
        }
        let mut block = self.backend.lazy_block(shape).clamp(1, MAX_LAZY_BLOCK);
        let mut buf = [0usize; MAX_LAZY_BLOCK];
        loop {
            let candidates = lazy.next_block(&mut buf[..block]);
            if candidates.is_empty() {
                break;
            }
            let h = &mut self.scratch[..candidates.len()];
            self.backend.joint_entropies(
                self.pool,
                &self.joint.view(),
                Some(candidates),
                h,
                self.step_ws,
            )?;
            for (s, &i) in h.iter_mut().zip(candidates) {
                *s -= self.cond[i] + self.shared;
            }
            lazy.report(h);
            block = (2 * block).min(MAX_LAZY_BLOCK);
        }
        Ok(lazy.evaluations())
    }

    /// The step's evaluations for [`merge_step`], in the order they were made, with indices in
    /// the whole pool (full greedy: the shard's best, with an infinite bound).
    pub fn evaluated(&self) -> impl Iterator<Item = Evaluated> + '_ {
        let offset = self.offset;
        let lazy = self.lazy.as_ref().map(|l| l.evaluated());
        let full = self.best.map(|(score, index)| Evaluated {
            bound: f64::INFINITY,
            index,
            score,
        });
        lazy.into_iter()
            .flatten()
            .chain(full)
            .map(move |e| Evaluated {
                index: e.index + offset,
                ..e
            })
    }

    /// The step's best evaluation, index in the whole pool (for [`pick_from_bests`]; full
    /// greedy: its best, with an infinite bound).
    pub fn best(&self) -> Option<Evaluated> {
        let e = match (&self.lazy, self.best) {
            (Some(lazy), _) => lazy.best()?,
            (None, Some((score, index))) => Evaluated {
                bound: f64::INFINITY,
                index,
                score,
            },
            (None, None) => return None,
        };
        Some(Evaluated {
            index: e.index + self.offset,
            ..e
        })
    }

    /// How many of the step's evaluations one lazy greedy over the whole pool keeps when its
    /// pick, decided by [`pick_from_bests`], scores `score` (the `keep` of
    /// [`GreedyShard::commit`]).
    pub fn kept(&self, score: f64) -> usize {
        match &self.lazy {
            Some(lazy) => lazy.kept(score),
            // Full greedy's one evaluation, unbounded.
            None => usize::from(self.best.is_some()),
        }
    }

    /// The score this step's gains are measured from (for [`merge_step`]).
    pub fn previous(&self) -> f64 {
        self.lazy.as_ref().map_or(0.0, |l| l.previous())
    }

    /// This step's widening of the lazy bounds (for [`merge_step`]).
    pub fn widening(&self) -> f64 {
        self.lazy.as_ref().map_or(0.0, |l| l.widening())
    }

    /// The point (K x C log-probs) and conditional entropy of the whole pool's point `index`,
    /// when this shard holds it.
    pub fn point_of(&self, index: usize) -> Option<(&'a [T], f64)> {
        let local = self.local(index)?;
        Some((self.lp.point(local), self.cond[local]))
    }

    /// Ends the step with `pick`, as [`merge_step`] decided it: `keep` is this shard's count
    /// from it. `remote` gives the pick's point (as f64) and conditional entropy when another
    /// shard holds it ([`GreedyShard::point_of`] there). The pick's point joins the joint, and
    /// the lazy bounds are lowered to each candidate's gain given that point alone.
    pub fn commit(
        &mut self,
        keep: usize,
        pick: Evaluated,
        remote: Option<(&[f64], f64)>,
    ) -> Result<(), B::Error> {
        let kc = self.lp.shape().k * self.lp.shape().c;
        let local = self.local(pick.index);
        /// Where the pick's point is.
        enum Point<'p> {
            Here(usize),
            Given(&'p [f64]),
        }
        // The pick's conditional entropy, and its point.
        let (cond, point) = match (local, remote) {
            (Some(i), _) => (self.cond[i], Point::Here(i)),
            (None, Some((point, h))) => {
                check_len("pick's point", kc, point.len())?;
                (h, Point::Given(point))
            }
            (None, None) => {
                return Err(Error::InvalidParameter {
                    name: "pick",
                    reason: "another shard holds it, and its point was not given",
                }
                .into())
            }
        };
        if self.picks >= self.batch {
            return Err(Error::InvalidParameter {
                name: "pick",
                reason: "the batch is complete",
            }
            .into());
        }
        if let Some(lazy) = self.lazy.as_mut() {
            lazy.commit(keep, local, pick.score);
        }
        self.best = None;
        if let Some(i) = local {
            // No longer a candidate (full greedy's scores read it; lazy's heap has let it go).
            self.cond[i] = f64::INFINITY;
        }
        self.shared += cond;
        self.picks += 1;
        if self.picks == self.batch {
            return Ok(());
        }
        let row = &mut self.rows[(self.picks - 1) * kc..self.picks * kc];
        match point {
            Point::Given(point) => row.copy_from_slice(point),
            Point::Here(i) => {
                for (r, v) in row.iter_mut().zip(self.lp.point(i)) {
                    *r = v.to_f64();
                }
            }
        }
        let rows = &*self.rows;
        self.joint
            .add_points(self.picks, |i| &rows[i * kc..(i + 1) * kc])?;
        if let Some(lazy) = self.lazy.as_mut() {
            pairwise_bounds(
                self.backend,
                self.pool,
                &rows[(self.picks - 1) * kc..self.picks * kc],
                self.pair_ws,
                self.cond,
                self.scratch,
                self.step_ws,
                lazy,
            )?;
        }
        Ok(())
    }

    /// The local index of the whole pool's `index`, when this shard holds it.
    fn local(&self, index: usize) -> Option<usize> {
        index
            .checked_sub(self.offset)
            .filter(|&i| i < self.lp.shape().n)
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
    pick: &[f64],
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
pub(crate) fn check_outputs(
    b: usize,
    out_indices: &[usize],
    out_scores: &[f64],
) -> Result<(), Error> {
    check_at_least("out", b, out_indices.len().min(out_scores.len()))
}
