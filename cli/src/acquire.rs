//! `bald acquire`: one acquisition strategy on a pool read from `.npy`.

use std::cell::RefCell;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bald_core::half::f16;
use bald_core::owned::{batchbald_with, scores, stochastic_batch, top_k_of, Batch};
use bald_core::{
    random_scores, Backend, BatchBald, Element, Error, Greedy, Hooks, LogProbs, Pick, Plain,
    PointScore, Regime, Shape, StdKind, StochasticBatch, StochasticMode,
};
use bald_cpu_simd::SimdBackend;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::backends::{dispatch, BackendChoice, OnBackend};
use crate::npy::{self, NpyData};

/// BatchBALD's greedy steps, as `--greedy` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum GreedyArg {
    /// Lazy greedy (bald_core::Greedy::Lazy).
    Lazy,
    /// Every candidate at every step.
    Full,
}

impl From<GreedyArg> for Greedy {
    fn from(g: GreedyArg) -> Greedy {
        match g {
            GreedyArg::Lazy => Greedy::Lazy,
            GreedyArg::Full => Greedy::Full,
        }
    }
}

/// An acquisition strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Strategy {
    /// A uniformly random batch.
    Random,
    /// Max entropy of the mean prediction.
    Entropy,
    /// BALD: mutual information between prediction and weights.
    Bald,
    /// Variation ratios, 1 - max mean probability.
    VarRatios,
    /// Variation ratios, mode-count form (Gal et al. 2017).
    VarRatiosMode,
    /// Mean standard deviation of the class probabilities.
    MeanStd,
    /// 1 - (top1 - top2) of the mean probabilities.
    Margin,
    /// 1 - max mean probability.
    LeastConfidence,
    /// Greedy BatchBALD.
    Batchbald,
    /// Stochastic PowerBALD: batch drawn with p ∝ BALD^beta.
    PowerBald,
}

impl Strategy {
    /// The strategy's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Entropy => "entropy",
            Strategy::Bald => "bald",
            Strategy::VarRatios => "var-ratios",
            Strategy::VarRatiosMode => "var-ratios-mode",
            Strategy::MeanStd => "mean-std",
            Strategy::Margin => "margin",
            Strategy::LeastConfidence => "least-confidence",
            Strategy::Batchbald => "batchbald",
            Strategy::PowerBald => "power-bald",
        }
    }

    /// Strategies that measure disagreement between MC samples, which one sample cannot show.
    pub fn needs_two_samples(self) -> bool {
        matches!(
            self,
            Strategy::Bald | Strategy::Batchbald | Strategy::MeanStd | Strategy::PowerBald
        )
    }

    /// The per-point score behind the strategy (BALD for BatchBALD's first pick and PowerBALD);
    /// `None` for random.
    pub fn point_score(self) -> Option<PointScore> {
        match self {
            Strategy::Random => None,
            Strategy::Entropy => Some(PointScore::Entropy),
            Strategy::Bald | Strategy::Batchbald | Strategy::PowerBald => Some(PointScore::Bald),
            Strategy::VarRatios => Some(PointScore::VariationRatios),
            Strategy::VarRatiosMode => Some(PointScore::VariationRatiosMode),
            Strategy::MeanStd => Some(PointScore::MeanStd(StdKind::Population)),
            Strategy::Margin => Some(PointScore::Margin),
            Strategy::LeastConfidence => Some(PointScore::LeastConfidence),
        }
    }
}

/// What the input array holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    /// Log-probabilities (rows log-sum-exp to 0).
    LogProbs,
    /// Probabilities (rows sum to 1).
    Probs,
    /// Unnormalised logits (log_softmax is applied, which also renormalises log-probs).
    Logits,
}

/// The order of the array's three axes: N pool points, K MC samples, C classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// N x K x C (batchbald_redux's order); read in place.
    Nkc,
    /// K x N x C (`torch.stack(samples)`'s order); copied once into N x K x C.
    Knc,
    /// N x C x K (baal's order); copied once into N x K x C.
    Nck,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object.
    Json,
    /// A header and one line per pick: rank,index,score.
    Csv,
}

/// What BatchBALD does once its cumulative score reaches ln K, the most mutual information K
/// MC samples can hold: later greedy picks are driven by noise, and each still evaluates the
/// candidates (at K = 20 it came after 6 to 19 picks on the pools measured in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, ValueEnum)]
pub enum PastLimit {
    /// The rest of the batch is drawn by PowerBALD among the remaining candidates.
    #[default]
    PowerBald,
    /// The batch ends at the pick that reached the limit.
    Stop,
    /// The greedy goes on to the end of the batch (batchbald_redux's behaviour).
    Continue,
}

impl PastLimit {
    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            PastLimit::PowerBald => "power-bald",
            PastLimit::Stop => "stop",
            PastLimit::Continue => "continue",
        }
    }
}

/// How a message names an argument: as the CLI spells it (`--layout knc`) or as Python does
/// (`layout='knc'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `--name value`.
    Cli,
    /// `name='value'` (`name=value` for numbers).
    Python,
}

impl Spelling {
    /// The argument `name` (the CLI's spelling, with `-`) set to the word `value`.
    pub fn arg(self, name: &str, value: &str) -> String {
        match self {
            Spelling::Cli => format!("--{name} {value}"),
            Spelling::Python => format!("{}='{value}'", name.replace('-', "_")),
        }
    }

    /// The argument `name` set to the number `value`.
    pub fn num(self, name: &str, value: usize) -> String {
        match self {
            Spelling::Cli => format!("--{name} {value}"),
            Spelling::Python => format!("{}={value}", name.replace('-', "_")),
        }
    }

    /// The argument `name` alone.
    pub fn name(self, name: &str) -> String {
        match self {
            Spelling::Cli => format!("--{name}"),
            Spelling::Python => name.replace('-', "_"),
        }
    }
}

/// A warning about an acquisition, given when it applies: before any work for the arguments,
/// at the pick itself for BatchBALD's information limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// Layout NKC with fewer points than MC samples: likely a K x N x C array.
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
                        "the other {} picks are drawn by PowerBALD among the remaining points \
                         ({}; {} keeps the greedy going)",
                        total - at,
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

/// Parameters of one acquisition.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// The strategy.
    pub strategy: Strategy,
    /// Points to pick (clamped to the candidates).
    pub batch_size: usize,
    /// BatchBALD's exact/sampled switch and sample count.
    pub num_samples: usize,
    /// PowerBALD's inverse temperature.
    pub beta: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// BatchBALD's greedy steps: lazy or full.
    pub greedy: Greedy,
    /// What BatchBALD does past its information limit.
    pub past_limit: PastLimit,
}

/// A batch, and every point's score when the strategy computed one.
#[derive(Debug, Clone)]
pub struct Acquired {
    /// The picks.
    pub batch: Batch,
    /// One score per pool point: the strategy's score, BALD for PowerBALD, the random keys for
    /// random; `None` for BatchBALD.
    pub point_scores: Option<Vec<f64>>,
    /// Candidates BatchBALD evaluated at each step (empty for the other strategies).
    pub evaluations: Vec<usize>,
    /// BatchBALD: how each pick was made, "exact" or "sampled" (the joint entropy's regime),
    /// or "power-bald" (past the information limit); empty for the other strategies.
    pub regimes: Vec<&'static str>,
    /// BatchBALD: the standard error of each pick's score, the spread of a sampled joint
    /// entropy's estimate over its configurations; 0 for exact and PowerBALD picks.
    pub standard_errors: Vec<f64>,
    /// BatchBALD: the first pick (1-based) whose cumulative score reached ln K, if any.
    pub information_limit: Option<usize>,
    /// BatchBALD: the greedy picks made before [`PastLimit`] took over, when it did.
    pub switched_at: Option<usize>,
}

/// Picks with `pick` among the points not in `excluded` (a mask over the pool), from a
/// compacted copy of `all` (N scores, never the pool), and maps the picks back.
fn pick_among(
    all: &[f64],
    excluded: Option<&[bool]>,
    pick: impl FnOnce(&[f64]) -> Result<Batch, String>,
) -> Result<Batch, String> {
    let Some(mask) = excluded else {
        return pick(all);
    };
    let kept: Vec<usize> = (0..all.len()).filter(|&i| !mask[i]).collect();
    let compact: Vec<f64> = kept.iter().map(|&i| all[i]).collect();
    let mut batch = pick(&compact)?;
    batch.indices.iter_mut().for_each(|i| *i = kept[*i]);
    Ok(batch)
}

/// Runs `params` on a prepared pool with `backend`, never picking an excluded point
/// (`hooks.exclude`); BatchBALD reports each pick to `hooks.on_pick`, and a warning to
/// `on_warning` at the pick that reaches its information limit, where [`PastLimit`] takes over.
/// `known`: the strategy's point scores when the caller has them already (from the validating
/// pass).
pub fn acquire_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: Params,
    known: Option<Vec<f64>>,
    hooks: &mut Hooks<'_>,
    on_warning: &mut dyn FnMut(&Warning),
) -> Result<Acquired, String> {
    let n = bald_core::PreparedPool::shape(pool).n;
    let e = |e: B::Error| e.to_string();
    if params.strategy == Strategy::Batchbald {
        return batchbald_on(backend, pool, params, hooks, on_warning);
    }
    hooks.check(n).map_err(|e| e.to_string())?;
    let mask = excluded_mask(n, hooks.exclude, &[]);
    let mask = mask.as_deref();
    let all = match (known, params.strategy.point_score()) {
        (Some(all), _) => all,
        (None, Some(score)) => scores(backend, pool, score).map_err(e)?,
        (None, None) => {
            let mut keys = vec![0.0; n];
            random_scores(params.seed, &mut keys);
            keys
        }
    };
    let batch = match params.strategy {
        Strategy::PowerBald => {
            pick_among(&all, mask, |s| power_bald(params, params.batch_size, s))?
        }
        _ => pick_among(&all, mask, |s| Ok(top_k_of(s, params.batch_size)))?,
    };
    Ok(Acquired {
        batch,
        point_scores: Some(all),
        evaluations: Vec::new(),
        regimes: Vec::new(),
        standard_errors: Vec::new(),
        information_limit: None,
        switched_at: None,
    })
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

/// A PowerBALD batch of `size` among `scores` (BALD), with `params`' beta and seed.
fn power_bald(params: Params, size: usize, scores: &[f64]) -> Result<Batch, String> {
    let stochastic = StochasticBatch {
        mode: StochasticMode::Power,
        beta: params.beta,
        batch_size: size,
        seed: params.seed,
    };
    stochastic_batch(stochastic, scores).map_err(|e| e.to_string())
}

/// [`acquire_on`] for BatchBALD: the greedy until the batch is full or its score reaches ln K,
/// then `params.past_limit`.
fn batchbald_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: Params,
    hooks: &mut Hooks<'_>,
    on_warning: &mut dyn FnMut(&Warning),
) -> Result<Acquired, String> {
    let shape = bald_core::PreparedPool::shape(pool);
    let e = |e: B::Error| e.to_string();
    let bb = BatchBald {
        batch_size: params.batch_size,
        num_samples: params.num_samples,
        seed: params.seed,
        greedy: params.greedy,
    };
    let mut evaluations = Vec::new();
    let mut greedy = Batch::default();
    let mut limit = None;
    let mut switched = false;
    let result = {
        let mut outer = hooks.on_pick.as_mut();
        let mut record = |p: Pick| {
            evaluations.push(p.evaluations);
            greedy.indices.push(p.index);
            greedy.scores.push(p.score);
            if outer
                .as_mut()
                .map_or(ControlFlow::Continue(()), |f| f(p))
                .is_break()
            {
                return ControlFlow::Break(());
            }
            if limit.is_none() && at_information_limit(p.score, shape.k) {
                limit = Some(p.done);
                if p.done < p.total {
                    on_warning(&Warning::InformationLimit {
                        at: p.done,
                        total: p.total,
                        k: shape.k,
                        past_limit: params.past_limit,
                    });
                    if params.past_limit != PastLimit::Continue {
                        switched = true;
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        };
        let mut inner = Hooks {
            exclude: hooks.exclude,
            on_pick: Some(&mut record),
            entropies: hooks.entropies,
        };
        batchbald_with(backend, pool, bb, &mut inner)
    };
    let mut batch = match result {
        Ok(batch) => batch,
        // Stopped by the limit: the greedy's picks so far.
        Err(_) if switched => greedy,
        Err(err) => return Err(e(err)),
    };
    let made = batch.indices.len();
    let mut regimes: Vec<&'static str> = (0..made)
        .map(|t| match bb.regime_at(shape.c, t) {
            Regime::Exact => "exact",
            Regime::Sampled => "sampled",
        })
        .collect();
    let mut standard_errors =
        bald_core::owned::standard_errors(backend, pool, bb, &batch.indices).map_err(e)?;
    if switched && params.past_limit == PastLimit::PowerBald {
        let bald = match hooks.given_entropies(shape.n).map_err(|e| e.to_string())? {
            Some((h, eh)) => bald_of(h, eh),
            None => scores(backend, pool, PointScore::Bald).map_err(e)?,
        };
        let rest = bb.picks(shape.n) - made;
        let mask = excluded_mask(shape.n, hooks.exclude, &batch.indices);
        let tail = pick_among(&bald, mask.as_deref(), |s| power_bald(params, rest, s))?;
        regimes.extend(tail.indices.iter().map(|_| "power-bald"));
        standard_errors.extend(tail.indices.iter().map(|_| 0.0));
        batch.indices.extend(tail.indices);
        batch.scores.extend(tail.scores);
    }
    Ok(Acquired {
        batch,
        point_scores: None,
        evaluations,
        regimes,
        standard_errors,
        information_limit: limit,
        switched_at: switched.then_some(made),
    })
}

/// BALD from entropies and conditional entropies, as the backends compute it from the two
/// (clamped at 0 against rounding).
fn bald_of(h: &[f64], eh: &[f64]) -> Vec<f64> {
    h.iter().zip(eh).map(|(h, eh)| (h - eh).max(0.0)).collect()
}

/// A pool validated on the host, with the entropies of the pass that validated it.
pub struct Validated<'d, T> {
    /// The log-probs, validated.
    pub pool: LogProbs<'d, T>,
    /// Every point's entropy and conditional entropy, when the validating pass computed them.
    pub entropies: Option<(Vec<f64>, Vec<f64>)>,
}

impl<T> Validated<'_, T> {
    /// Every point's `score`, when it comes from the validating pass's entropies (entropy,
    /// conditional entropy, BALD as the backends compute it from the two).
    pub fn scores(&self, score: PointScore) -> Option<Vec<f64>> {
        let (h, eh) = self.entropies.as_ref()?;
        match score {
            PointScore::Entropy => Some(h.clone()),
            PointScore::ConditionalEntropy => Some(eh.clone()),
            PointScore::Bald => Some(bald_of(h, eh)),
            _ => None,
        }
    }
}

/// Validates `data` (N x K x C log-probs) before `backend` (by name) computes `score` on it
/// (BALD for BatchBALD and PowerBALD). On the SIMD backend, a score built from the entropies
/// is validated in the pass that computes them (BatchBALD's first pass); every other pool is
/// checked by the SIMD backend's validation, the fastest on the host. The errors are
/// `LogProbs::new`'s, with the first offending (n, k, c).
pub fn validate_for<'d, T: Element>(
    backend: &str,
    score: Option<PointScore>,
    data: &'d [T],
    shape: Shape,
) -> Result<Validated<'d, T>, Error> {
    let simd = SimdBackend::new();
    let fused = backend == simd.name()
        && matches!(
            score,
            Some(PointScore::Entropy | PointScore::ConditionalEntropy | PointScore::Bald)
        );
    if !fused {
        let pool = simd.validate(data, shape)?;
        return Ok(Validated {
            pool,
            entropies: None,
        });
    }
    // The shape first: no buffers for a pool that is not there.
    let len = shape.elements()?;
    if data.len() != len {
        return Err(Error::ShapeMismatch {
            what: "log_probs",
            expected: len,
            actual: data.len(),
        });
    }
    let (mut h, mut eh) = (vec![0.0; shape.n], vec![0.0; shape.n]);
    let pool = simd.validate_entropies(data, shape, &mut h, &mut eh)?;
    Ok(Validated {
        pool,
        entropies: Some((h, eh)),
    })
}

/// A count argument: a whole number >= 0 (a negative one is a range error, not a flag).
pub fn count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must be 0 or more, not {v}")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{v} is too large")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// A finite number >= 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be finite and 0 or more, not {}", Plain(v))),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// `bald acquire` arguments.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// The pool: a .npy array of N x K x C (or see --layout) MC-dropout predictions, float16,
    /// float32 or float64.
    pub input: PathBuf,
    /// What the array holds.
    #[arg(long, value_enum, default_value_t = InputKind::LogProbs)]
    pub input_kind: InputKind,
    /// The order of the array's axes (N points, K MC samples, C classes). knc is what
    /// torch.stack(samples) gives, nck is baal's; both are copied once into nkc.
    #[arg(long, value_enum, default_value_t = Layout::Nkc)]
    pub layout: Layout,
    /// The acquisition strategy.
    #[arg(long, value_enum, default_value_t = Strategy::Batchbald)]
    pub strategy: Strategy,
    /// Points to pick (more than the candidates: all of them; 0: an empty batch).
    #[arg(long, default_value = "10", value_parser = count, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// BatchBALD: exact joint entropy while C^t <= this, sampled with this many
    /// configurations beyond (at least K: one per MC sample).
    #[arg(long, default_value = "10000", value_parser = count, allow_negative_numbers = true)]
    pub num_samples: usize,
    /// BatchBALD's greedy steps: lazy evaluates candidates in decreasing order of a bound on
    /// their gain until the best is certain (the same picks as full in the exact regime, far
    /// fewer evaluations); full evaluates every candidate at every step.
    #[arg(long, value_enum, default_value_t = GreedyArg::Lazy)]
    pub greedy: GreedyArg,
    /// BatchBALD past its information limit: once the cumulative score reaches ln K, the most
    /// that K MC samples can tell (at K = 20 often within 5 to 20 picks), later greedy
    /// picks are noise, and each still evaluates the candidates. power-bald draws the rest of
    /// the batch by PowerBALD (--beta) among the remaining points, stop ends the batch there,
    /// continue keeps the greedy going. A warning is given at that pick.
    #[arg(long, value_enum, default_value_t = PastLimit::PowerBald)]
    pub past_limit: PastLimit,
    /// PowerBALD: inverse temperature beta >= 0 (0: uniform, large: top-k).
    #[arg(long, default_value = "1", value_parser = non_negative, allow_negative_numbers = true)]
    pub beta: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write here (whole or not at all) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write every point's score here as a float64 .npy of N (BALD for BatchBALD and
    /// PowerBALD, the random keys for random).
    #[arg(long, value_name = "FILE")]
    pub all_scores: Option<PathBuf>,
    /// Pool indices never to pick (already labelled, say): a .npy of integers, or text with
    /// one index per line (or separated by commas or spaces). The pool is not copied.
    #[arg(long, value_name = "FILE")]
    pub exclude: Option<PathBuf>,
    /// One line per BatchBALD pick on stderr (index, score, elapsed time), for logs; on a
    /// terminal a progress bar shows picks, elapsed time and ETA anyway.
    #[arg(long, short)]
    pub verbose: bool,
}

/// A pool's values, N x K x C in order, in one of the element types the backends read.
#[derive(Debug, Clone, Copy)]
pub enum Values<'d> {
    /// float16.
    F16(&'d [f16]),
    /// float32.
    F32(&'d [f32]),
    /// float64.
    F64(&'d [f64]),
}

impl NpyData {
    /// The values, borrowed.
    pub fn values(&self) -> Values<'_> {
        match self {
            NpyData::F16(v) => Values::F16(v),
            NpyData::F32(v) => Values::F32(v),
            NpyData::F64(v) => Values::F64(v),
        }
    }
}

/// Converts `data` (N x K x C, holding what `kind` says) to log-probs in place with the SIMD
/// backend's conversions, on every core; log-probs are left as they are. The errors are the
/// conversions', with the first offending (n, k, c).
pub fn to_log_probs(data: &mut NpyData, shape: Shape, kind: InputKind) -> Result<(), Error> {
    fn convert<T: Element>(data: &mut [T], shape: Shape, kind: InputKind) -> Result<(), Error> {
        let simd = SimdBackend::new();
        match kind {
            InputKind::LogProbs => Ok(()),
            InputKind::Probs => simd.probs_to_log_probs(data, shape),
            InputKind::Logits => simd.logits_to_log_probs(data, shape),
        }
    }
    match data {
        NpyData::F16(v) => convert(v, shape, kind),
        NpyData::F32(v) => convert(v, shape, kind),
        NpyData::F64(v) => convert(v, shape, kind),
    }
}

/// One acquisition, as `bald acquire` and the Python package ask for it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'d> {
    /// The pool: log-probs, validated on the way.
    pub values: Values<'d>,
    /// Its shape.
    pub shape: Shape,
    /// The strategy and its parameters.
    pub params: Params,
    /// Pool indices never to pick (each below N).
    pub exclude: &'d [usize],
    /// Where to compute.
    pub backend: BackendChoice,
    /// Also every point's BALD score when the strategy computes none (BatchBALD).
    pub all_scores: bool,
}

/// How an acquisition or a scoring failed.
#[derive(Debug)]
pub enum Failure {
    /// Invalid values: bald-core's error, with the first offending (n, k, c).
    Input(Error),
    /// The backend could not start or failed, or `on_pick` stopped the greedy steps.
    Backend(String),
}

/// What [`acquire`] returns.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The batch, and the point scores asked for.
    pub acquired: Acquired,
    /// The backend's name.
    pub backend: &'static str,
    /// The backend's work: validation, upload, and scores or BatchBALD.
    pub seconds: f64,
}

/// Runs `request` on its backend: validates the pool (in the first pass where the backend
/// can), then picks the batch; BatchBALD reports each pick to `on_pick`, its information limit
/// to `on_warning` at the pick that reaches it, and stops when `on_pick`
/// breaks. Not generic, so that the callers (the CLI, the Python extension) share one
/// compiled copy of the acquisition path.
pub fn acquire(
    request: Request<'_>,
    on_pick: &mut dyn FnMut(Pick) -> ControlFlow<()>,
    on_warning: &mut dyn FnMut(&Warning),
) -> Result<Outcome, Failure> {
    let (acquired, backend) = match request.values {
        Values::F16(data) => dispatch(
            request.backend,
            AcquireJob {
                data,
                request,
                on_pick,
                on_warning,
            },
        ),
        Values::F32(data) => dispatch(
            request.backend,
            AcquireJob {
                data,
                request,
                on_pick,
                on_warning,
            },
        ),
        Values::F64(data) => dispatch(
            request.backend,
            AcquireJob {
                data,
                request,
                on_pick,
                on_warning,
            },
        ),
    }
    .map_err(Failure::Backend)?;
    let (acquired, seconds) = acquired?;
    Ok(Outcome {
        acquired,
        backend,
        seconds,
    })
}

/// [`acquire`] on one element type: `data` is `request.values`.
struct AcquireJob<'d, 'p, T> {
    data: &'d [T],
    request: Request<'d>,
    on_pick: &'p mut dyn FnMut(Pick) -> ControlFlow<()>,
    on_warning: &'p mut dyn FnMut(&Warning),
}

impl<T: Element> OnBackend for AcquireJob<'_, '_, T> {
    type Out = Result<(Acquired, f64), Failure>;

    fn on<B: Backend>(self, backend: &B) -> Result<Self::Out, String> {
        let start = Instant::now();
        let Request {
            shape,
            params,
            exclude,
            all_scores,
            ..
        } = self.request;
        let fail = |e: B::Error| Failure::Backend(e.to_string());
        let score = params.strategy.point_score();
        let batchbald = params.strategy == Strategy::Batchbald;
        let v = match validate_for(backend.name(), score, self.data, shape) {
            Ok(v) => v,
            Err(e) => return Ok(Err(Failure::Input(e))),
        };
        let known = score.filter(|_| !batchbald).and_then(|s| v.scores(s));
        let Validated {
            pool: lp,
            entropies,
        } = v;
        let pool = match backend.prepare(lp) {
            Ok(pool) => pool,
            Err(e) => return Ok(Err(fail(e))),
        };
        let mut hooks = Hooks {
            exclude,
            on_pick: Some(self.on_pick),
            entropies: entropies
                .as_ref()
                .filter(|_| batchbald)
                .map(|(h, eh)| (&h[..], &eh[..])),
        };
        let mut acquired =
            match acquire_on(backend, &pool, params, known, &mut hooks, self.on_warning) {
                Ok(a) => a,
                Err(e) => return Ok(Err(Failure::Backend(e))),
            };
        if all_scores && acquired.point_scores.is_none() {
            match scores(backend, &pool, PointScore::Bald) {
                Ok(all) => acquired.point_scores = Some(all),
                Err(e) => return Ok(Err(fail(e))),
            }
        }
        Ok(Ok((acquired, start.elapsed().as_secs_f64())))
    }
}

/// What [`point_scores`] returns.
#[derive(Debug, Clone)]
pub struct Scored {
    /// One score per pool point.
    pub scores: Vec<f64>,
    /// The backend's name.
    pub backend: &'static str,
    /// The backend's work: validation, upload, scores.
    pub seconds: f64,
}

/// Every point's `score` on the pool `values`, validated on the way, on `backend`. Not
/// generic, as [`acquire`].
pub fn point_scores(
    values: Values<'_>,
    shape: Shape,
    score: PointScore,
    backend: BackendChoice,
) -> Result<Scored, Failure> {
    let (scored, backend) = match values {
        Values::F16(data) => dispatch(backend, ScoresJob { data, shape, score }),
        Values::F32(data) => dispatch(backend, ScoresJob { data, shape, score }),
        Values::F64(data) => dispatch(backend, ScoresJob { data, shape, score }),
    }
    .map_err(Failure::Backend)?;
    let (scores, seconds) = scored?;
    Ok(Scored {
        scores,
        backend,
        seconds,
    })
}

/// [`point_scores`] on one element type.
struct ScoresJob<'d, T> {
    data: &'d [T],
    shape: Shape,
    score: PointScore,
}

impl<T: Element> OnBackend for ScoresJob<'_, T> {
    type Out = Result<(Vec<f64>, f64), Failure>;

    fn on<B: Backend>(self, backend: &B) -> Result<Self::Out, String> {
        let start = Instant::now();
        let v = match validate_for(backend.name(), Some(self.score), self.data, self.shape) {
            Ok(v) => v,
            Err(e) => return Ok(Err(Failure::Input(e))),
        };
        let all = match v.scores(self.score) {
            Some(known) => Ok(known),
            None => backend
                .prepare(v.pool)
                .and_then(|pool| scores(backend, &pool, self.score))
                .map_err(|e| Failure::Backend(e.to_string())),
        };
        Ok(all.map(|all| (all, start.elapsed().as_secs_f64())))
    }
}

/// Runs `bald acquire`; returns the text written (to stdout when no `--output`).
pub fn command(args: &AcquireArgs) -> Result<String, String> {
    let path = &args.input;
    // The outputs first: a long acquisition must not fail at its end.
    if let Some(out) = &args.output {
        check_writable(out, "--output")?;
    }
    if let Some(out) = &args.all_scores {
        check_writable(out, "--all-scores")?;
    }
    let in_file = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let read_start = Instant::now();
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    let array = npy::read(&mut file, len).map_err(|e| in_file(&e))?;
    drop(file);
    let read_seconds = read_start.elapsed().as_secs_f64();
    let [a, b, c] = array.shape[..] else {
        return Err(in_file(&format!(
            "expected a 3-d array N x K x C, got shape {:?}",
            array.shape
        )));
    };
    let shape = match args.layout {
        Layout::Nkc => Shape::new(a, b, c),
        Layout::Knc => Shape::new(b, a, c),
        Layout::Nck => Shape::new(a, c, b),
    };
    let params = Params {
        strategy: args.strategy,
        batch_size: args.batch_size,
        num_samples: args.num_samples,
        beta: args.beta,
        seed: args.seed,
        greedy: args.greedy.into(),
        past_limit: args.past_limit,
    };
    for w in check_params(params, shape, args.layout, Spelling::Cli)? {
        warn(&w);
    }
    let exclude = match &args.exclude {
        Some(p) => read_exclude(p, shape.n)?,
        None => Vec::new(),
    };
    let prepare_start = Instant::now();
    let mut data = reorder(array.data, shape, args.layout);
    let kind = args.input_kind;
    // An invalid pool's error names the file and what the values look like.
    let invalid = |e: &Error, data: &NpyData| {
        format!(
            "{}: {e}{}",
            path.display(),
            hint(e, data.values(), shape, kind, Spelling::Cli)
        )
    };
    to_log_probs(&mut data, shape, kind).map_err(|e| invalid(&e, &data))?;
    let prepare_seconds = prepare_start.elapsed().as_secs_f64();
    let request = Request {
        values: data.values(),
        shape,
        params,
        exclude: &exclude,
        backend: args.backend,
        all_scores: args.all_scores.is_some(),
    };
    // A progress bar on stderr from the first pick (hidden when stderr is not a terminal).
    let start = Instant::now();
    let bar: RefCell<Option<indicatif::ProgressBar>> = RefCell::new(None);
    let mut on_pick = |p: Pick| {
        let mut bar = bar.borrow_mut();
        let bar = bar.get_or_insert_with(|| {
            let style = indicatif::ProgressStyle::with_template(
                "{pos}/{len} picks [{elapsed_precise}, ETA {eta}] {wide_bar}",
            );
            let b = indicatif::ProgressBar::new(p.total as u64);
            if let Ok(style) = style {
                b.set_style(style);
            }
            b
        });
        bar.set_position(p.done as u64);
        if args.verbose {
            bar.suspend(|| {
                eprintln!(
                    "bald: pick {}/{}: point {}, score {}, {:.1} s",
                    p.done,
                    p.total,
                    p.index,
                    Plain(p.score),
                    start.elapsed().as_secs_f64()
                )
            });
        }
        ControlFlow::Continue(())
    };
    let mut on_warning = |w: &Warning| match bar.borrow().as_ref() {
        Some(bar) => bar.suspend(|| warn(w)),
        None => warn(w),
    };
    let outcome = acquire(request, &mut on_pick, &mut on_warning);
    if let Some(bar) = bar.take() {
        bar.finish_and_clear();
    }
    let mut outcome = outcome.map_err(|f| match f {
        Failure::Input(e) => invalid(&e, &data),
        Failure::Backend(e) => e,
    })?;
    let report = Report {
        args,
        shape,
        backend: outcome.backend,
        read_seconds,
        prepare_seconds,
        seconds: outcome.seconds,
        excluded: exclude.len(),
        acquired: &outcome.acquired,
    };
    let text = report.render();
    if let (Some(out), Some(all)) = (&args.all_scores, outcome.acquired.point_scores.take()) {
        let bytes = npy::write(&[all.len()], &NpyData::F64(all));
        write_atomically(out, &bytes)?;
    }
    if let Some(out) = &args.output {
        write_atomically(out, text.as_bytes())?;
    }
    Ok(text)
}

/// Gives a warning on stderr, as `bald: warning: ...`.
fn warn(w: &Warning) {
    eprintln!("bald: warning: {}", w.message(Spelling::Cli));
}

/// The checks of an acquisition's arguments that need the pool's shape (after `layout` put it
/// in N x K x C order), shared by `bald acquire` and the Python package: an error names the
/// argument as `spelling` writes it; the warnings that apply are returned, to be given before
/// any work.
pub fn check_params(
    params: Params,
    shape: Shape,
    layout: Layout,
    spelling: Spelling,
) -> Result<Vec<Warning>, String> {
    let Shape { n, k, .. } = shape;
    let strategy = params.strategy;
    let mut warnings = Vec::new();
    if layout == Layout::Nkc && n > 0 && n < k {
        warnings.push(Warning::LooksTransposed { n, k });
    }
    if k == 1 && strategy.needs_two_samples() {
        return Err(format!(
            "{} needs K >= 2 MC samples per point (the pool has K = 1): it measures \
             disagreement between samples",
            spelling.arg("strategy", strategy.name())
        ));
    }
    if !(params.beta.is_finite() && params.beta >= 0.0) {
        return Err(format!(
            "{} must be finite and >= 0, not {}",
            spelling.name("beta"),
            Plain(params.beta)
        ));
    }
    if strategy == Strategy::Batchbald {
        if params.num_samples == 0 {
            return Err(format!(
                "{} must be at least 1 for BatchBALD",
                spelling.name("num-samples")
            ));
        }
        if params.num_samples < k {
            warnings.push(Warning::FewSamples {
                num_samples: params.num_samples,
                k,
            });
        }
    }
    Ok(warnings)
}

/// Checks pool indices to exclude: each below `n`, none twice; the error names the argument
/// as `spelling` writes it.
pub fn check_exclude(indices: &[usize], n: usize, spelling: Spelling) -> Result<(), String> {
    let what = spelling.name("exclude");
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(format!(
            "{what}: index {bad} is out of range for a pool of {n} points"
        ));
    }
    // Sorted, not a mask of N: no allocation beyond the indices themselves.
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(format!("{what}: index {} is given twice", w[0])),
        None => Ok(()),
    }
}

/// Checks before any work that `path` can be written (its folder exists and takes a file), so
/// that a long acquisition does not fail at its end.
pub fn check_writable(path: &Path, what: &str) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
    if path.is_dir() {
        return Err(fail(&"is a folder"));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| fail(&"not a file name"))?;
    let probe = dir.join(format!(
        ".{}.check-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    File::create(&probe).map_err(|e| fail(&e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Reads `--exclude`: a `.npy` of integers or text, every index below `n`.
fn read_exclude(path: &Path, n: usize) -> Result<Vec<usize>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("--exclude {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
    let indices = if bytes.starts_with(b"\x93NUMPY") {
        npy::parse_indices(&bytes).map_err(|e| fail(&e))?
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| fail(&"neither .npy nor text"))?;
        text.split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<usize>()
                    .map_err(|_| fail(&format!("'{t}' is not a pool index")))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    check_exclude(&indices, n, Spelling::Cli)
        .map_err(|e| format!("{e} (in {})", path.display()))?;
    Ok(indices)
}

/// `data` (in `layout`) as N x K x C: moved when it already is, copied once when not.
fn reorder(data: NpyData, shape: Shape, layout: Layout) -> NpyData {
    fn typed<T: Copy>(data: Vec<T>, shape: Shape, layout: Layout) -> Vec<T> {
        let Shape { n, k, c } = shape;
        let at = |i: usize, j: usize, l: usize| match layout {
            Layout::Nkc => (i * k + j) * c + l,
            Layout::Knc => (j * n + i) * c + l,
            Layout::Nck => (i * c + l) * k + j,
        };
        if layout == Layout::Nkc {
            return data;
        }
        let mut out = Vec::with_capacity(data.len());
        for i in 0..n {
            for j in 0..k {
                out.extend((0..c).map(|l| data[at(i, j, l)]));
            }
        }
        out
    }
    match data {
        NpyData::F16(v) => NpyData::F16(typed(v, shape, layout)),
        NpyData::F32(v) => NpyData::F32(typed(v, shape, layout)),
        NpyData::F64(v) => NpyData::F64(typed(v, shape, layout)),
    }
}

/// The fix to suggest for an input error, from the offending row, naming the argument as
/// `spelling` writes it (empty when there is none to suggest).
pub fn hint(
    e: &Error,
    data: Values<'_>,
    shape: Shape,
    kind: InputKind,
    spelling: Spelling,
) -> String {
    let row = |n: usize, k: usize| -> Vec<f64> {
        let at = (n * shape.k + k) * shape.c;
        match data {
            Values::F16(d) => d[at..at + shape.c].iter().map(|v| v.to_f64()).collect(),
            Values::F32(d) => d[at..at + shape.c].iter().map(|v| v.to_f64()).collect(),
            Values::F64(d) => d[at..at + shape.c].to_vec(),
        }
    };
    let kind_arg = |k: &str| spelling.arg("input-kind", k);
    match (e, kind) {
        (Error::NotNormalised { n, k, log_sum, .. }, InputKind::LogProbs) => {
            let r = row(*n, *k);
            let sum: f64 = r.iter().sum();
            if r.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() < 0.05 {
                format!(
                    ". These look like probabilities: pass {}",
                    kind_arg("probs")
                )
            } else if log_sum.abs() < 0.05 {
                format!(
                    ". Close to normalised, as log-softmax computed in low precision (float16) \
                     is: pass {}, which renormalises",
                    kind_arg("logits")
                )
            } else {
                format!(
                    ". If these are raw logits, pass {} (probabilities: {})",
                    kind_arg("logits"),
                    kind_arg("probs")
                )
            }
        }
        (Error::NotNormalised { .. }, InputKind::Probs) => format!(
            ". If these are logits, pass {}; log-probs: {}",
            kind_arg("logits"),
            kind_arg("log-probs")
        ),
        (Error::ProbabilityOutOfRange { value, .. }, InputKind::Probs) => {
            if *value < 0.0 {
                format!(
                    ". Negative values: if these are log-probs, pass {}; logits: {}",
                    kind_arg("log-probs"),
                    kind_arg("logits")
                )
            } else {
                format!(". If these are logits, pass {}", kind_arg("logits"))
            }
        }
        _ => String::new(),
    }
}

/// Everything the output reports beside the batch.
struct Report<'a> {
    args: &'a AcquireArgs,
    shape: Shape,
    backend: &'a str,
    read_seconds: f64,
    prepare_seconds: f64,
    seconds: f64,
    excluded: usize,
    /// The batch, and BatchBALD's record of it.
    acquired: &'a Acquired,
}

impl Report<'_> {
    /// The output document.
    fn render(&self) -> String {
        let a = self.args;
        let acquired = self.acquired;
        let batch = &acquired.batch;
        match a.format {
            Format::Json => {
                let mut doc = json!({
                    "indices": batch.indices,
                    "scores": batch.scores,
                    "strategy": a.strategy.name(),
                    "backend": self.backend,
                    "seconds": self.seconds,
                    "read_seconds": self.read_seconds,
                    "prepare_seconds": self.prepare_seconds,
                    "n": self.shape.n,
                    "k": self.shape.k,
                    "c": self.shape.c,
                    "batch_size": a.batch_size,
                    "seed": a.seed,
                    "input_kind": kind_name(a.input_kind),
                    "layout": layout_name(a.layout),
                    "excluded": self.excluded,
                });
                if a.strategy == Strategy::Batchbald {
                    doc["num_samples"] = json!(a.num_samples);
                    doc["regimes"] = json!(acquired.regimes);
                    doc["standard_errors"] = json!(acquired.standard_errors);
                    doc["greedy"] = json!(Greedy::from(a.greedy).name());
                    doc["evaluations"] = json!(acquired.evaluations);
                    doc["information_limit"] = json!({
                        "ln_k": (self.shape.k as f64).ln(),
                        "reached_at_pick": acquired.information_limit,
                    });
                    doc["past_limit"] = json!({
                        "mode": a.past_limit.name(),
                        "switched_after_pick": acquired.switched_at,
                    });
                }
                if a.strategy == Strategy::PowerBald {
                    doc["beta"] = json!(a.beta);
                }
                format!("{doc}\n")
            }
            Format::Csv => {
                let mut s = String::from("rank,index,score\n");
                for (rank, (i, v)) in batch.indices.iter().zip(&batch.scores).enumerate() {
                    s.push_str(&format!("{rank},{i},{v}\n"));
                }
                s
            }
        }
    }
}

fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::LogProbs => "log-probs",
        InputKind::Probs => "probs",
        InputKind::Logits => "logits",
    }
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Nkc => "nkc",
        Layout::Knc => "knc",
        Layout::Nck => "nck",
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, then a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
