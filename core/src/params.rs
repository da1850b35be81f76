//! BatchBALD's parameters, and what a caller adds to one greedy acquisition (excluded points,
//! a call after each pick): the types every backend's greedy takes; the host driver is in
//! `batchbald.rs`.

use core::ops::ControlFlow;

use crate::error::Error;
use crate::joint::Regime;
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
    /// already, from [`crate::Backend::validate_entropies`], the pass that validated the pool: the
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
        self.shard_workspace_len(shape, self.picks(shape.n))
    }
}
