//! Acquiring a batch: the checks, the warnings, and the one generic driver that every
//! interface (this crate's functions, the CLI, the Python package, the experiment) runs.

use std::ops::ControlFlow;
use std::time::Instant;

use bald_core::owned::{
    batch_epig as owned_batch_epig, batchbald_with, epig as owned_epig, scores as owned_scores,
    Batch,
};
use bald_core::{
    random_scores, Backend, Element, Hooks, LogProbs, Pick, Plain, PreparedPool, Regime, Shape,
    StochasticMode,
};

use crate::error::{Argument, Error, Result, Spelling};
use crate::pool::{failed, Entropies, Layout, OnLogProbs, Pool, PoolJob, Prepared};
use crate::rank::{rank, Keys, Ranked};
use crate::strategy::{BatchBald, BatchEpig, PastLimit, Score, Strategy};

/// A warning about an acquisition, given when it applies: before any work for the arguments,
/// at the pick itself for BatchBALD's information limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// Layout N x K x C with fewer points than MC samples: likely a K x N x C array.
    LooksTransposed {
        /// Points.
        n: usize,
        /// MC samples.
        k: usize,
    },
    /// BatchBALD's `num_samples` below K.
    FewSamples {
        /// The argument.
        num_samples: usize,
        /// MC samples.
        k: usize,
    },
    /// BatchBALD's cumulative score reached ln K at pick `at` of `total`.
    InformationLimit {
        /// The pick (1-based) that reached it.
        at: usize,
        /// The picks asked for.
        total: usize,
        /// MC samples.
        k: usize,
        /// What happens to the rest of the batch.
        past_limit: PastLimit,
    },
}

impl Warning {
    /// The warning for a pool of `shape` given in `layout`, if it looks transposed.
    pub fn for_layout(shape: Shape, layout: Layout) -> Option<Warning> {
        let Shape { n, k, .. } = shape;
        (layout == Layout::Nkc && n > 0 && n < k).then_some(Warning::LooksTransposed { n, k })
    }

    /// The warning's text, naming the arguments to change as `spelling` writes them.
    pub fn message(&self, spelling: Spelling) -> String {
        match *self {
            Warning::LooksTransposed { n, k } => format!(
                "the pool has N = {n} points and K = {k} MC samples: if the array is K x N x C \
                 (torch.stack(samples)'s order), pass {}",
                spelling.arg("layout", "knc")
            ),
            Warning::FewSamples { num_samples, k } => format!(
                "{} is below K = {k}: the sampled joint entropy draws K configurations (one per \
                 MC sample) instead",
                spelling.num("num-samples", num_samples)
            ),
            Warning::InformationLimit {
                at,
                total,
                k,
                past_limit,
            } => {
                let what = match past_limit {
                    PastLimit::PowerBald => format!(
                        "{} drawn by PowerBALD among the remaining points ({}; {} keeps the \
                         greedy going)",
                        match total - at {
                            1 => "the last pick is".to_string(),
                            n => format!("the other {n} picks are"),
                        },
                        spelling.arg("past-limit", "power-bald"),
                        spelling.arg("past-limit", "continue")
                    ),
                    PastLimit::Stop => format!(
                        "the batch stops there with {at} picks ({})",
                        spelling.arg("past-limit", "stop")
                    ),
                    PastLimit::Continue => format!(
                        "later picks are driven by noise ({}; {} draws them by PowerBALD)",
                        spelling.arg("past-limit", "continue"),
                        spelling.arg("past-limit", "power-bald")
                    ),
                };
                format!(
                    "BatchBALD reached ln K = {} nats, the most that K = {k} MC samples can \
                     tell, at pick {at} of {total}: {what}. For more informed picks, use more \
                     MC samples (K).",
                    Plain((k as f64).ln()),
                )
            }
        }
    }
}

/// Whether a cumulative BatchBALD score is within 1% of ln K, the most mutual information K
/// equally likely posterior samples can hold.
pub fn at_information_limit(score: f64, k: usize) -> bool {
    score >= 0.99 * (k as f64).ln()
}

/// How a BatchBALD pick was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PickRegime {
    /// The greedy, with the exact joint entropy.
    Exact,
    /// The greedy, with the joint entropy sampled.
    Sampled,
    /// Drawn by PowerBALD past the information limit.
    PowerBald,
}

impl PickRegime {
    /// `exact`, `sampled` or `power-bald`.
    pub fn name(self) -> &'static str {
        match self {
            PickRegime::Exact => "exact",
            PickRegime::Sampled => "sampled",
            PickRegime::PowerBald => "power-bald",
        }
    }
}

/// The callback of each BatchBALD pick: [`ControlFlow::Break`] stops the greedy steps.
pub type OnPick<'o> = &'o mut dyn FnMut(Pick) -> ControlFlow<()>;
/// The callback of each warning, when it applies.
pub type OnWarning<'o> = &'o mut dyn FnMut(&Warning);

/// What an acquisition may be told besides its strategy; [`Default`]: nothing.
///
/// ```
/// # fn main() -> Result<(), bald::Error> {
/// # let lp: Vec<f32> = (0..40).flat_map(|i| {
/// #     let p = 0.1 + 0.8 * ((i * 7 % 11) as f32 / 11.0);
/// #     [p.ln(), (1.0 - p).ln()]
/// # }).collect();
/// let pool = bald::Pool::from_slice(&lp, [10, 4, 2])?;
/// let mut picks = 0;
/// let mut on_pick = |_: bald::Pick| {
///     picks += 1;
///     std::ops::ControlFlow::Continue(())
/// };
/// let options = bald::Options::default().exclude(&[0, 1]).on_pick(&mut on_pick);
/// let a = bald::acquire_with(&pool, bald::Strategy::batchbald(3), bald::Device::Cpu, options)?;
/// assert!(a.indices.iter().all(|&i| i > 1));
/// assert_eq!(picks, a.indices.len());
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct Options<'o> {
    /// Pool indices never to pick (each below N, none twice).
    pub exclude: &'o [usize],
    /// Called after each BatchBALD pick.
    pub on_pick: Option<OnPick<'o>>,
    /// Called with each warning when it applies (they are in [`Acquisition::warnings`] too).
    pub on_warning: Option<OnWarning<'o>>,
    /// Also every point's score when the strategy computes none: BALD for BatchBALD, EPIG for
    /// batch EPIG.
    pub all_scores: bool,
    /// EPIG's targets: predictions on inputs drawn from the distribution the model will be
    /// asked about (M x K x C, from the same K posterior samples as the pool, its C classes).
    /// The EPIG strategies need them; the others refuse them.
    pub targets: Option<&'o Pool<'o>>,
}

impl<'o> Options<'o> {
    /// Sets the indices never to pick.
    pub fn exclude(mut self, exclude: &'o [usize]) -> Self {
        self.exclude = exclude;
        self
    }

    /// Sets the pick callback.
    pub fn on_pick(mut self, f: OnPick<'o>) -> Self {
        self.on_pick = Some(f);
        self
    }

    /// Sets the warning callback.
    pub fn on_warning(mut self, f: OnWarning<'o>) -> Self {
        self.on_warning = Some(f);
        self
    }

    /// Sets EPIG's targets.
    pub fn targets(mut self, targets: &'o Pool<'o>) -> Self {
        self.targets = Some(targets);
        self
    }

    /// Asks for every point's score.
    pub fn all_scores(mut self, all: bool) -> Self {
        self.all_scores = all;
        self
    }

    fn warn(&mut self, w: Warning, warnings: &mut Vec<Warning>) {
        if let Some(f) = self.on_warning.as_mut() {
            f(&w);
        }
        warnings.push(w);
    }
}

/// A batch, and what its strategy recorded of it.
#[derive(Debug, Clone, Default)]
pub struct Acquisition {
    /// Pool indices, in pick order.
    pub indices: Vec<usize>,
    /// Their scores: the strategy's score, or BatchBALD's cumulative joint mutual information.
    pub scores: Vec<f64>,
    /// One score per pool point: the strategy's score, BALD for PowerBALD (and BatchBALD when
    /// asked for), EPIG for batch EPIG when asked for, the random keys for random; `None`
    /// otherwise.
    pub point_scores: Option<Vec<f64>>,
    /// BatchBALD and batch EPIG: candidates evaluated at each greedy step.
    pub evaluations: Vec<usize>,
    /// BatchBALD and batch EPIG: how each pick was made.
    pub regimes: Vec<PickRegime>,
    /// BatchBALD: the standard error of each pick's score, the spread of a sampled joint
    /// entropy's estimate over its configurations; 0 for exact and PowerBALD picks.
    pub standard_errors: Vec<f64>,
    /// BatchBALD: the first pick (1-based) whose cumulative score reached ln K, if any.
    pub information_limit: Option<usize>,
    /// BatchBALD: the greedy picks made before [`PastLimit`] took over, when it did.
    pub switched_at: Option<usize>,
    /// The warnings given.
    pub warnings: Vec<Warning>,
    /// The backend's name: `scalar`, `cpu` or `cuda`.
    pub backend: &'static str,
    /// Seconds of the backend's work (and the upload, for [`crate::acquire`]).
    pub seconds: f64,
}

/// Checks `strategy` against a pool of `shape`, the indices to exclude and the shape of EPIG's
/// targets (`None` without targets); returns the warnings that apply before any work.
pub fn check(
    strategy: &Strategy,
    shape: Shape,
    exclude: &[usize],
    targets: Option<Shape>,
) -> Result<Vec<Warning>> {
    let mut warnings = Vec::new();
    if shape.k == 1 && strategy.needs_two_samples() {
        return Err(Argument::NeedsTwoSamples {
            strategy: true,
            name: strategy.name(),
        }
        .into());
    }
    match (strategy.needs_targets(), targets) {
        (true, None) => {
            return Err(Argument::NeedsTargets {
                name: strategy.name(),
            }
            .into())
        }
        (false, Some(_)) => {
            return Err(Argument::UnusedTargets {
                name: strategy.name(),
            }
            .into())
        }
        (true, Some(t)) => bald_core::check_targets(shape, t)?,
        (false, None) => {}
    }
    match *strategy {
        Strategy::Stochastic(s) => check_beta(s.beta)?,
        Strategy::BatchBald(b) => {
            check_beta(b.beta)?;
            if b.num_samples == 0 {
                return Err(Argument::NoSamples.into());
            }
            if b.num_samples < shape.k {
                warnings.push(Warning::FewSamples {
                    num_samples: b.num_samples,
                    k: shape.k,
                });
            }
        }
        Strategy::BatchEpig(b) => {
            if b.num_samples == 0 {
                return Err(Argument::NoSamples.into());
            }
        }
        Strategy::Top(_) | Strategy::Random(_) | Strategy::Epig(_) => {}
    }
    check_exclude(exclude, shape.n)?;
    Ok(warnings)
}

fn check_beta(beta: f64) -> Result<()> {
    if beta.is_finite() && beta >= 0.0 {
        Ok(())
    } else {
        Err(Argument::Beta(beta).into())
    }
}

/// Checks that `strategy` can pick from a pool split in shards: BatchBALD on
/// [`crate::shard::Shard`]s, the others by merging each shard's ranking
/// ([`Prepared::rank`]), except softrank, whose probabilities follow ranks in the whole pool,
/// and batch EPIG, whose greedy steps need the whole pool ([`Argument::NotAcrossShards`]).
pub fn check_across_shards(strategy: &Strategy) -> Result<()> {
    let across = match strategy {
        Strategy::BatchEpig(_) => false,
        Strategy::Stochastic(s) => s.mode != StochasticMode::SoftRank,
        _ => true,
    };
    if across {
        Ok(())
    } else {
        Err(Argument::NotAcrossShards {
            name: strategy.name(),
        }
        .into())
    }
}

/// Checks pool indices to exclude: each below `n`, none twice.
pub fn check_exclude(indices: &[usize], n: usize) -> Result<()> {
    if let Some(&index) = indices.iter().find(|&&i| i >= n) {
        return Err(Argument::ExcludeOutOfRange { index, n }.into());
    }
    // Sorted, not a mask of N: no allocation beyond the indices themselves.
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Argument::ExcludedTwice(w[0]).into()),
        None => Ok(()),
    }
}

/// Runs `strategy` on `pool`, prepared by `backend`: the driver behind every interface, for a
/// pool prepared by hand (on a backend's own memory, say). Checks the arguments first
/// ([`check`]), gives the warnings that apply, then picks the batch. `entropies`: every
/// point's entropy and conditional entropy when the caller has them (from a validating pass on
/// the same backend), reused for BALD.
pub fn acquire_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    strategy: &Strategy,
    mut options: Options<'_>,
    entropies: Option<(&[f64], &[f64])>,
) -> Result<Acquisition> {
    let start = Instant::now();
    let shape = pool.shape();
    let mut warnings = Vec::new();
    let targets = options.targets.map(|t| t.shape());
    for w in check(strategy, shape, options.exclude, targets)? {
        options.warn(w, &mut warnings);
    }
    let mut a = match strategy {
        Strategy::BatchBald(bb) => {
            batchbald_on(backend, pool, bb, &mut options, entropies, &mut warnings)?
        }
        Strategy::BatchEpig(be) => batch_epig_on(backend, pool, be, &mut options, entropies)?,
        _ => {
            let (ranked, all) = rank_on(
                backend,
                pool,
                strategy,
                (0, options.exclude),
                options.targets,
                entropies,
            )?;
            Acquisition {
                indices: ranked.indices,
                scores: ranked.scores,
                point_scores: Some(all),
                ..Acquisition::default()
            }
        }
    };
    if options.all_scores && a.point_scores.is_none() {
        a.point_scores = Some(match (options.targets, entropies) {
            // Batch EPIG: every point's EPIG.
            (Some(targets), _) => epig_on(backend, pool, targets)?,
            (None, Some((h, eh))) => bald_of(h, eh),
            (None, None) => owned_scores(backend, pool, Score::Bald).map_err(failed)?,
        });
    }
    a.warnings = warnings;
    a.backend = backend.name();
    a.seconds = start.elapsed().as_secs_f64();
    Ok(a)
}

/// `score` from every point's entropy `h` and conditional entropy `eh`, when it follows from
/// them.
fn from_entropies(score: Score, h: &[f64], eh: &[f64]) -> Option<Vec<f64>> {
    match score {
        Score::Entropy => Some(h.to_vec()),
        Score::ConditionalEntropy => Some(eh.to_vec()),
        Score::Bald => Some(bald_of(h, eh)),
        _ => None,
    }
}

/// BALD from entropies and conditional entropies, as the backends compute it from the two
/// (clamped at 0 against rounding).
fn bald_of(h: &[f64], eh: &[f64]) -> Vec<f64> {
    h.iter().zip(eh).map(|(h, eh)| (h - eh).max(0.0)).collect()
}

/// The best points of a strategy that ranks them by one key each (not BatchBALD), on points
/// `offset..` of the whole pool, never those in `exclude` (indices among them), with EPIG's
/// `targets`: the ranking, and every point's score (the random keys for random). The driver of
/// [`acquire_on`], and of a shard's part of the whole pool's batch.
pub(crate) fn rank_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    strategy: &Strategy,
    (offset, exclude): (usize, &[usize]),
    targets: Option<&Pool<'_>>,
    entropies: Option<(&[f64], &[f64])>,
) -> Result<(Ranked, Vec<f64>)> {
    let n = pool.shape().n;
    let all = match (strategy.score(), targets) {
        (Some(score), _) => match entropies.and_then(|(h, eh)| from_entropies(score, h, eh)) {
            Some(known) => known,
            None => owned_scores(backend, pool, score).map_err(failed)?,
        },
        (None, Some(targets)) if strategy.needs_targets() => epig_on(backend, pool, targets)?,
        (None, _) => {
            let mut keys = vec![0.0; n];
            let seed = match strategy {
                Strategy::Random(r) => r.seed,
                _ => 0,
            };
            random_scores(seed, offset, &mut keys);
            keys
        }
    };
    let keys = match strategy {
        Strategy::Stochastic(s) => Keys::Stochastic {
            mode: s.mode,
            beta: s.beta,
            seed: s.seed,
        },
        _ => Keys::Scores,
    };
    let mask = excluded_mask(n, exclude, &[]);
    let ranked = rank(keys, &all, offset, mask.as_deref(), strategy.batch_size())?;
    Ok((ranked, all))
}

/// Every pool point's EPIG against the targets the job is given.
struct EpigJob<'b, 'p, 'a, B: Backend, T: Element + 'a> {
    backend: &'b B,
    pool: &'p B::Pool<'a, T>,
}

impl<'a, B: Backend, T: Element + 'a> OnLogProbs for EpigJob<'_, '_, 'a, B, T> {
    type Out = Result<Vec<f64>>;

    fn on<U: Element>(self, targets: LogProbs<'_, U>) -> Result<Vec<f64>> {
        owned_epig(self.backend, self.pool, &targets).map_err(failed)
    }
}

/// BatchBALD's PowerBALD tail on points `offset..` of the whole pool: `rest` picks by `bb`'s
/// PowerBALD among the points not in `exclude` or `picked` (indices among them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tail_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    bb: &BatchBald,
    rest: usize,
    offset: usize,
    exclude: &[usize],
    picked: &[usize],
    entropies: Option<(&[f64], &[f64])>,
) -> Result<Ranked> {
    let bald = match entropies {
        Some((h, eh)) => bald_of(h, eh),
        None => owned_scores(backend, pool, Score::Bald).map_err(failed)?,
    };
    let mask = excluded_mask(pool.shape().n, exclude, picked);
    let keys = Keys::Stochastic {
        mode: StochasticMode::Power,
        beta: bb.beta,
        seed: bb.seed,
    };
    rank(keys, &bald, offset, mask.as_deref(), rest)
}

/// A mask over the `n` pool points of those in `exclude` or `picked`; `None` when both are
/// empty.
fn excluded_mask(n: usize, exclude: &[usize], picked: &[usize]) -> Option<Vec<bool>> {
    if exclude.is_empty() && picked.is_empty() {
        return None;
    }
    let mut mask = vec![false; n];
    exclude.iter().chain(picked).for_each(|&i| mask[i] = true);
    Some(mask)
}

/// [`acquire_on`] for BatchBALD: the greedy until the batch is full or its score reaches ln K,
/// then `bb.past_limit`.
fn batchbald_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    bb: &BatchBald,
    options: &mut Options<'_>,
    entropies: Option<(&[f64], &[f64])>,
    warnings: &mut Vec<Warning>,
) -> Result<Acquisition> {
    let shape = pool.shape();
    let core = bb.core();
    let mut evaluations = Vec::new();
    let mut greedy = Batch::default();
    let mut limit = None;
    let mut switched = false;
    let mut stopped = false;
    let result = {
        let on_pick = &mut options.on_pick;
        let on_warning = &mut options.on_warning;
        let mut record = |p: Pick| {
            evaluations.push(p.evaluations);
            greedy.indices.push(p.index);
            greedy.scores.push(p.score);
            if on_pick
                .as_mut()
                .map_or(ControlFlow::Continue(()), |f| f(p))
                .is_break()
            {
                stopped = true;
                return ControlFlow::Break(());
            }
            if limit.is_none() && at_information_limit(p.score, shape.k) {
                limit = Some(p.done);
                if p.done < p.total {
                    let w = Warning::InformationLimit {
                        at: p.done,
                        total: p.total,
                        k: shape.k,
                        past_limit: bb.past_limit,
                    };
                    if let Some(f) = on_warning.as_mut() {
                        f(&w);
                    }
                    warnings.push(w);
                    if bb.past_limit != PastLimit::Continue {
                        switched = true;
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        };
        let mut hooks = Hooks {
            exclude: options.exclude,
            on_pick: Some(&mut record),
            entropies,
        };
        batchbald_with(backend, pool, core, &mut hooks)
    };
    let mut batch = match result {
        Ok(batch) => batch,
        Err(_) if stopped => return Err(Error::Stopped),
        // Stopped by the limit: the greedy's picks so far.
        Err(_) if switched => greedy,
        Err(err) => return Err(failed(err)),
    };
    let made = batch.indices.len();
    let mut regimes: Vec<PickRegime> = (0..made)
        .map(|t| match core.regime_at(shape.c, t) {
            Regime::Exact => PickRegime::Exact,
            Regime::Sampled => PickRegime::Sampled,
        })
        .collect();
    let mut standard_errors =
        bald_core::owned::standard_errors(backend, pool, core, &batch.indices).map_err(failed)?;
    if switched && bb.past_limit == PastLimit::PowerBald {
        let rest = core.picks(shape.n) - made;
        let tail = tail_on(
            backend,
            pool,
            bb,
            rest,
            0,
            options.exclude,
            &batch.indices,
            entropies,
        )?;
        regimes.extend(tail.indices.iter().map(|_| PickRegime::PowerBald));
        standard_errors.extend(tail.indices.iter().map(|_| 0.0));
        batch.indices.extend(tail.indices);
        batch.scores.extend(tail.scores);
    }
    Ok(Acquisition {
        indices: batch.indices,
        scores: batch.scores,
        evaluations,
        regimes,
        standard_errors,
        information_limit: limit,
        switched_at: switched.then_some(made),
        ..Acquisition::default()
    })
}

/// [`acquire_on`] for batch EPIG: the greedy against the options' targets, each pick's
/// evaluations and regime recorded.
fn batch_epig_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    be: &BatchEpig,
    options: &mut Options<'_>,
    entropies: Option<(&[f64], &[f64])>,
) -> Result<Acquisition> {
    let targets = options
        .targets
        .ok_or(Argument::NeedsTargets { name: "batch-epig" })?;
    let mut evaluations = Vec::new();
    let mut stopped = false;
    let on_pick = &mut options.on_pick;
    let mut record = |p: Pick| {
        evaluations.push(p.evaluations);
        let flow = on_pick.as_mut().map_or(ControlFlow::Continue(()), |f| f(p));
        stopped |= flow.is_break();
        flow
    };
    let hooks = Hooks {
        exclude: options.exclude,
        on_pick: Some(&mut record),
        entropies,
    };
    let job = BatchEpigJob {
        backend,
        pool,
        params: be.core(),
        hooks,
    };
    let batch = match targets.log_probs(job) {
        Ok(batch) => batch,
        Err(_) if stopped => return Err(Error::Stopped),
        Err(err) => return Err(failed(err)),
    };
    let regimes = (0..batch.indices.len())
        .map(|t| match be.core().regime_at(targets.shape(), t) {
            Regime::Exact => PickRegime::Exact,
            Regime::Sampled => PickRegime::Sampled,
        })
        .collect();
    Ok(Acquisition {
        indices: batch.indices,
        scores: batch.scores,
        evaluations,
        regimes,
        ..Acquisition::default()
    })
}

/// Greedy batch EPIG against the targets the job is given.
struct BatchEpigJob<'b, 'p, 'h, 'a, B: Backend, T: Element + 'a> {
    backend: &'b B,
    pool: &'p B::Pool<'a, T>,
    params: bald_core::BatchEpig,
    hooks: Hooks<'h>,
}

impl<'a, B: Backend, T: Element + 'a> OnLogProbs for BatchEpigJob<'_, '_, '_, 'a, B, T> {
    type Out = std::result::Result<Batch, B::Error>;

    fn on<U: Element>(mut self, targets: LogProbs<'_, U>) -> Self::Out {
        owned_batch_epig(
            self.backend,
            self.pool,
            &targets,
            self.params,
            &mut self.hooks,
        )
    }
}

/// Runs [`acquire_on`] on a prepared pool.
struct AcquireJob<'s, 'o> {
    strategy: &'s Strategy,
    options: Options<'o>,
}

impl PoolJob for AcquireJob<'_, '_> {
    type Out = Acquisition;

    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        entropies: Option<&Entropies>,
    ) -> Result<Acquisition> {
        let given = entropies.map(|(h, eh)| (&h[..], &eh[..]));
        acquire_on(backend, pool, self.strategy, self.options, given)
    }
}

/// A shard's ranking on a prepared pool.
struct RankJob<'s> {
    strategy: &'s Strategy,
    offset: usize,
    exclude: &'s [usize],
    targets: Option<&'s Pool<'s>>,
}

impl PoolJob for RankJob<'_> {
    type Out = Ranked;

    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        entropies: Option<&Entropies>,
    ) -> Result<Ranked> {
        let given = entropies.map(|(h, eh)| (&h[..], &eh[..]));
        let part = (self.offset, self.exclude);
        let (ranked, _) = rank_on(backend, pool, self.strategy, part, self.targets, given)?;
        Ok(ranked)
    }
}

/// Every point's EPIG on a prepared pool.
struct EpigScoresJob<'t>(&'t Pool<'t>);

impl PoolJob for EpigScoresJob<'_> {
    type Out = Vec<f64>;

    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        _: Option<&Entropies>,
    ) -> Result<Vec<f64>> {
        epig_on(backend, pool, self.0)
    }
}

/// Every point's EPIG against `targets` on a pool prepared by `backend` (on a backend's own
/// memory, say), as [`Prepared::epig`] gives it.
pub fn epig_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    targets: &Pool<'_>,
) -> Result<Vec<f64>> {
    bald_core::check_targets(pool.shape(), targets.shape())?;
    targets.log_probs(EpigJob { backend, pool })
}

/// Every point's score on a prepared pool.
struct ScoresJob(Score);

impl PoolJob for ScoresJob {
    type Out = Vec<f64>;

    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        entropies: Option<&Entropies>,
    ) -> Result<Vec<f64>> {
        match entropies.and_then(|(h, eh)| from_entropies(self.0, h, eh)) {
            Some(known) => Ok(known),
            None => owned_scores(backend, pool, self.0).map_err(failed),
        }
    }
}

impl Prepared<'_> {
    /// Picks a batch with `strategy`.
    pub fn acquire(&self, strategy: impl Into<Strategy>) -> Result<Acquisition> {
        self.acquire_with(strategy, Options::default())
    }

    /// Picks a batch with `strategy` and `options`.
    pub fn acquire_with(
        &self,
        strategy: impl Into<Strategy>,
        mut options: Options<'_>,
    ) -> Result<Acquisition> {
        let strategy = strategy.into();
        let pool = self.pool();
        let mut early = Vec::new();
        if let Some(w) = Warning::for_layout(pool.shape(), pool.options().layout) {
            // Checked with the rest first: no warning for arguments that are refused.
            let targets = options.targets.map(|t| t.shape());
            check(&strategy, pool.shape(), options.exclude, targets)?;
            options.warn(w, &mut early);
        }
        let mut a = self.visit(AcquireJob {
            strategy: &strategy,
            options,
        })?;
        early.append(&mut a.warnings);
        a.warnings = early;
        Ok(a)
    }

    /// This pool's part of `strategy`'s batch when it is a shard, points `offset..` of a whole
    /// pool: its best points, never those in `exclude` (indices in the shard), with EPIG's
    /// `targets`. [`crate::rank::merge`] of every shard's part is the batch
    /// [`Prepared::acquire`] picks on the whole pool. For the strategies that rank points by
    /// one key, except softrank, whose probabilities follow ranks in the whole pool, and batch
    /// EPIG, whose greedy steps no shard can take alone ([`Argument::NotAcrossShards`];
    /// BatchBALD's shards are [`crate::shard::Shard`]s).
    pub fn rank(
        &self,
        strategy: impl Into<Strategy>,
        (offset, exclude): (usize, &[usize]),
        targets: Option<&Pool<'_>>,
    ) -> Result<Ranked> {
        let strategy = strategy.into();
        if let Strategy::BatchBald(_) = strategy {
            return Err(Argument::NotAcrossShards {
                name: strategy.name(),
            }
            .into());
        }
        check_across_shards(&strategy)?;
        check(
            &strategy,
            self.pool().shape(),
            exclude,
            targets.map(|t| t.shape()),
        )?;
        self.visit(RankJob {
            strategy: &strategy,
            offset,
            exclude,
            targets,
        })
    }

    /// Every point's EPIG against `targets` (M x K x C, the pool's K and C), in pool order.
    pub fn epig(&self, targets: &Pool<'_>) -> Result<Vec<f64>> {
        bald_core::check_targets(self.pool().shape(), targets.shape())?;
        self.visit(EpigScoresJob(targets))
    }

    /// Every point's `score`, in pool order.
    pub fn scores(&self, score: Score) -> Result<Vec<f64>> {
        if score == Score::MeanStd(bald_core::StdKind::Unbiased) && self.pool().shape().k < 2 {
            return Err(Argument::NeedsTwoSamples {
                strategy: false,
                name: score.name(),
            }
            .into());
        }
        self.visit(ScoresJob(score))
    }
}
