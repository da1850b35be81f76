//! Greedy BatchBALD (Kirsch, van Amersfoort, Gal 2019), as batchbald_redux's
//! `get_batchbald_batch(log_probs, batch_size, num_samples)`.

use crate::backend::{Backend, PreparedPool};
use crate::element::Element;
use crate::error::Error;
use crate::joint::{
    dynamic_joint_workspace_len, joint_entropies_workspace_len, DynamicJoint, Regime,
};
use crate::logprobs::Shape;
use crate::scores::PointScore;

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
        Ok(joint + 2 * shape.n + joint_entropies_workspace_len(shape))
    }

    /// Runs the greedy acquisition on `backend` ([`Backend::batchbald`]), writing the picks
    /// (pool indices, in pick order) and their cumulative scores into the first `picks(N)`
    /// entries of the outputs; returns that count. `workspace` holds
    /// [`BatchBald::workspace_len`] f64s (device backends may leave it unused).
    pub fn run<'a, B: Backend, T: Element + 'a>(
        &self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
    ) -> Result<usize, B::Error> {
        let b = self.picks(pool.log_probs().shape().n);
        if b == 0 {
            return Ok(0);
        }
        check_outputs(b, out_indices, out_scores)?;
        backend.batchbald(self, pool, workspace, out_indices, out_scores)
    }

    /// The host driver behind [`BatchBald::run`] (the default of [`Backend::batchbald`]): the
    /// joint lives in `workspace` and each pick is one [`Backend::select_candidate`] call.
    /// Outputs hold at least `picks(N)` entries.
    pub fn greedy<'a, B: Backend, T: Element + 'a>(
        &self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
    ) -> Result<usize, B::Error> {
        let lp = pool.log_probs();
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
        let (scratch, step_ws) = rest.split_at_mut(shape.n);
        backend.scores(pool, PointScore::ConditionalEntropy, cond, &mut [])?;
        let mut joint = DynamicJoint::new(joint_ws, shape, b - 1, self.num_samples, self.seed)?;
        for t in 0..b {
            if t > 0 {
                joint.add(&lp, &out_indices[..t])?;
            }
            let (best, score) = backend.select_candidate(
                pool,
                &joint.view(),
                cond,
                &out_indices[..t],
                scratch,
                step_ws,
            )?;
            out_indices[t] = best;
            out_scores[t] = score;
        }
        Ok(b)
    }
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
