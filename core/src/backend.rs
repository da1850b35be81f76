//! The `Backend` trait: the heavy steps that SIMD and GPU backends accelerate, and the scalar
//! reference backend every other one is tested against.

use crate::element::Element;
use crate::error::Error;
use crate::head::McDropoutHead;
use crate::joint::JointProbs;
use crate::logprobs::{LogProbs, Shape};
use crate::params::{BatchBald, Hooks};
use crate::scores::PointScore;

/// A pool prepared by a backend (uploaded to a device, say). It knows its shape, and its host
/// data unless it lives on a device only (a GPU tensor handed over in place): bald-core's
/// greedy driver reads the chosen points' rows from the host, so a backend that takes such
/// pools runs BatchBALD itself ([`Backend::batchbald`]).
pub trait PreparedPool<'a, T: Element> {
    /// The pool's shape.
    fn shape(&self) -> Shape;
    /// The host view of the pool; `None` for a pool that is on a device only.
    fn host(&self) -> Option<LogProbs<'a, T>>;
}

impl<'a, T: Element> PreparedPool<'a, T> for LogProbs<'a, T> {
    fn shape(&self) -> Shape {
        LogProbs::shape(self)
    }

    fn host(&self) -> Option<LogProbs<'a, T>> {
        Some(*self)
    }
}

/// The heavy steps of acquisition. Drivers (BatchBALD, stochastic acquisition) live in
/// bald-core and call only these; a backend implements them faster, with the scalar
/// [`Scalar`] backend as its reference.
///
/// Workspace slices are sized by bald-core's `*_workspace_len` functions; a backend may use
/// less of them, never more.
pub trait Backend {
    /// The backend's error type; bald-core's input errors convert into it.
    type Error: From<Error> + core::fmt::Debug + core::fmt::Display;
    /// A pool ready for repeated steps (device-resident for GPU backends).
    type Pool<'a, T: Element + 'a>: PreparedPool<'a, T>;

    /// The backend's name, as reports print it.
    fn name(&self) -> &'static str;

    /// Validates `data` as log-probs of `shape`: the checks and errors of [`LogProbs::new`],
    /// which backends may run faster.
    fn validate<'a, T: Element>(
        &self,
        data: &'a [T],
        shape: crate::Shape,
    ) -> Result<LogProbs<'a, T>, Self::Error> {
        Ok(LogProbs::new(data, shape)?)
    }

    /// Prepares a validated pool for the steps below.
    fn prepare<'a, T: Element>(
        &self,
        lp: LogProbs<'a, T>,
    ) -> Result<Self::Pool<'a, T>, Self::Error>;

    /// `score` of every point into `out` (N), with [`crate::score_workspace_len`] scratch.
    fn scores<T: Element>(
        &self,
        pool: &Self::Pool<'_, T>,
        score: PointScore,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Self::Error>;

    /// Predictive entropy and expected conditional entropy of every point, in one pass over
    /// the pool (BALD is their difference), into `entropy` and `conditional` (N each).
    fn entropies<T: Element>(
        &self,
        pool: &Self::Pool<'_, T>,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<(), Self::Error>;

    /// [`Backend::validate`] and [`Backend::entropies`] in one pass over `data`: the checks
    /// and errors of [`LogProbs::new`] (the first offending (n, k, c) in pool order), and on
    /// success every point's entropy and conditional entropy (BALD is their difference). The
    /// default validates, prepares and computes; backends that read each value once override it.
    fn validate_entropies<'a, T: Element>(
        &self,
        data: &'a [T],
        shape: crate::Shape,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<LogProbs<'a, T>, Self::Error> {
        let lp = self.validate(data, shape)?;
        self.entropies(&self.prepare(lp)?, entropy, conditional)?;
        Ok(lp)
    }

    /// The joint entropy H_n of `joint` plus each pool point n as the candidate, into `out`
    /// (N), or, with `candidates`, of the listed pool points only (one per entry, any order,
    /// each as it would be in the full pass), with [`crate::joint_entropies_workspace_len`]
    /// scratch (see [`crate::joint`]).
    fn joint_entropies<T: Element>(
        &self,
        pool: &Self::Pool<'_, T>,
        joint: &JointProbs<'_>,
        candidates: Option<&[usize]>,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Self::Error>;

    /// Candidates per [`Backend::joint_entropies`] call that lazy greedy BatchBALD starts
    /// each step with (it doubles the block while a step goes on): enough to keep the backend
    /// busy on a pool of `shape`.
    fn lazy_block(&self, shape: crate::Shape) -> usize {
        let _ = shape;
        16
    }

    /// The K x C log-probs of pool point `n` (< N), into `out` (K C): from the host values, or,
    /// for a pool on a device only, read back from it (the one point, not the pool).
    fn read_point<T: Element>(
        &self,
        pool: &Self::Pool<'_, T>,
        n: usize,
        out: &mut [T],
    ) -> Result<(), Self::Error> {
        let lp = pool.host().ok_or(Error::InvalidParameter {
            name: "pool",
            reason: "it is on a device only, and its backend cannot read a point back",
        })?;
        read_host_point(&lp, n, out)?;
        Ok(())
    }

    /// Greedy BatchBALD with `params` and `hooks` ([`BatchBald::run`] calls this after
    /// checking its outputs); returns the picks made. The default is bald-core's host driver,
    /// [`BatchBald::greedy`]; backends that keep the pool on a device override it to run every
    /// step there, with the same exclusion ([`crate::exclude_candidates`]) and calls.
    fn batchbald<'a, T: Element + 'a>(
        &self,
        params: &BatchBald,
        pool: &Self::Pool<'a, T>,
        workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
        hooks: &mut Hooks<'_>,
    ) -> Result<usize, Self::Error>
    where
        Self: Sized,
    {
        params.greedy(self, pool, workspace, out_indices, out_scores, hooks)
    }

    /// The MC-dropout head on `features` (row-major N x D_in, deterministic), K times with the
    /// masks of `seed`, writing N x K x C log-probs into `out`, with
    /// [`crate::head_workspace_len`] scratch.
    #[allow(clippy::too_many_arguments)]
    fn mc_dropout_forward<O: Element>(
        &self,
        head: &McDropoutHead<'_>,
        features: &[f32],
        n: usize,
        k: usize,
        seed: u64,
        out: &mut [O],
        workspace: &mut [f64],
    ) -> Result<(), Self::Error>;
}

/// The scalar f64 reference backend: plain loops, no unsafe, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scalar;

impl Backend for Scalar {
    type Error = Error;
    type Pool<'a, T: Element + 'a> = LogProbs<'a, T>;

    fn name(&self) -> &'static str {
        "scalar"
    }

    fn prepare<'a, T: Element>(&self, lp: LogProbs<'a, T>) -> Result<LogProbs<'a, T>, Error> {
        Ok(lp)
    }

    fn scores<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        score: PointScore,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Error> {
        crate::scores::scores(pool, score, out, workspace)
    }

    fn entropies<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<(), Error> {
        crate::scores::entropies(pool, entropy, conditional)
    }

    fn joint_entropies<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        joint: &JointProbs<'_>,
        candidates: Option<&[usize]>,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Error> {
        crate::joint::joint_entropies(pool, joint, candidates, out, workspace)
    }

    fn mc_dropout_forward<O: Element>(
        &self,
        head: &McDropoutHead<'_>,
        features: &[f32],
        n: usize,
        k: usize,
        seed: u64,
        out: &mut [O],
        workspace: &mut [f64],
    ) -> Result<(), Error> {
        crate::head::forward(head, features, n, k, seed, out, workspace)
    }
}

/// [`Backend::read_point`] from host values: point `n` of `lp` into `out` (K C).
pub fn read_host_point<T: Element>(
    lp: &LogProbs<'_, T>,
    n: usize,
    out: &mut [T],
) -> Result<(), Error> {
    let shape = lp.shape();
    if n >= shape.n {
        return Err(Error::IndexOutOfRange {
            index: n,
            len: shape.n,
        });
    }
    crate::error::check_len("out", shape.k * shape.c, out.len())?;
    out.copy_from_slice(lp.point(n));
    Ok(())
}
