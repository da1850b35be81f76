//! The acquisition strategies, each with its own parameters and the CLI's defaults.

use std::fmt;
use std::str::FromStr;

use bald_core::{Greedy, StdKind, StochasticMode};

use crate::by_name;

/// A per-point acquisition score: `bald::Score::Bald`, `Score::Entropy`, ...
pub use bald_core::PointScore as Score;

/// How a batch is picked: a strategy with its parameters.
///
/// Built by the constructors, whose defaults are the CLI's, and adjusted by the builder
/// methods of each strategy's parameters:
///
/// ```
/// use bald::{PastLimit, Score, Strategy};
/// let s: Strategy = Strategy::batchbald(10).num_samples(1000).past_limit(PastLimit::Stop).into();
/// assert_eq!(s.name(), "batchbald");
/// assert_eq!(s.batch_size(), 10);
/// assert_eq!(Strategy::from(Strategy::top(Score::Margin, 5)).name(), "margin");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The points with the highest score.
    Top(Top),
    /// A uniformly random batch.
    Random(Random),
    /// Greedy BatchBALD (Kirsch et al. 2019): the batch whose joint mutual information with
    /// the model's parameters is largest, built one point at a time.
    BatchBald(BatchBald),
    /// A stochastic batch (Kirsch et al. 2023): drawn with probabilities that follow BALD or
    /// EPIG (PowerBALD: p ∝ BALD^beta).
    Stochastic(Stochastic),
    /// The points with the highest EPIG against the targets ([`crate::Options::targets`]).
    Epig(Epig),
    /// Greedy batch EPIG: the batch whose joint labels tell most about the predictions on
    /// the targets ([`crate::Options::targets`]), built one point at a time.
    BatchEpig(BatchEpig),
}

/// Parameters of [`Strategy::BatchEpig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchEpig {
    /// Points to pick.
    pub batch_size: usize,
    /// The targets' joint is exact while C^t M C <= this, sampled beyond with at most this
    /// many rows (`bald_core::BatchEpig`). Default 10000.
    pub num_samples: usize,
    /// Seed of the sampled configurations. Default 0.
    pub seed: u64,
}

impl BatchEpig {
    /// Sets `num_samples`.
    pub fn num_samples(mut self, num_samples: usize) -> Self {
        self.num_samples = num_samples;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// bald-core's parameters of the greedy.
    pub(crate) fn core(&self) -> bald_core::BatchEpig {
        bald_core::BatchEpig {
            batch_size: self.batch_size,
            num_samples: self.num_samples,
            seed: self.seed,
        }
    }
}

/// What a stochastic batch's probabilities follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// BALD.
    Bald,
    /// EPIG against the targets ([`crate::Options::targets`]).
    Epig,
}

/// Parameters of [`Strategy::Epig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epig {
    /// Points to pick.
    pub batch_size: usize,
}

/// Parameters of [`Strategy::Top`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Top {
    /// The score.
    pub score: Score,
    /// Points to pick (more than the candidates: all of them).
    pub batch_size: usize,
}

/// Parameters of [`Strategy::Random`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Random {
    /// Points to pick.
    pub batch_size: usize,
    /// Seed of the draw.
    pub seed: u64,
}

impl Random {
    /// Sets the seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Parameters of [`Strategy::BatchBald`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchBald {
    /// Points to pick.
    pub batch_size: usize,
    /// The joint entropy is exact while C^t <= this, sampled with this many configurations
    /// beyond (at least K: one per MC sample). Default 10000.
    pub num_samples: usize,
    /// Seed of the sampled configurations and of the PowerBALD tail. Default 0.
    pub seed: u64,
    /// Lazy (the default: the same picks, far fewer evaluations) or full greedy steps.
    pub greedy: Greedy,
    /// What happens once the batch's score reaches ln K. Default [`PastLimit::PowerBald`].
    pub past_limit: PastLimit,
    /// The inverse temperature of the PowerBALD tail past the limit. Default 1.
    pub beta: f64,
}

impl BatchBald {
    /// Sets `num_samples`.
    pub fn num_samples(mut self, num_samples: usize) -> Self {
        self.num_samples = num_samples;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the greedy steps.
    pub fn greedy(mut self, greedy: Greedy) -> Self {
        self.greedy = greedy;
        self
    }

    /// Sets what happens past the information limit.
    pub fn past_limit(mut self, past_limit: PastLimit) -> Self {
        self.past_limit = past_limit;
        self
    }

    /// Sets the PowerBALD tail's beta.
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// bald-core's parameters of the greedy.
    pub(crate) fn core(&self) -> bald_core::BatchBald {
        bald_core::BatchBald {
            batch_size: self.batch_size,
            num_samples: self.num_samples,
            seed: self.seed,
            greedy: self.greedy,
        }
    }
}

/// Parameters of [`Strategy::Stochastic`]: a batch drawn without replacement with p(n) ∝
/// max(s_n, 0)^beta (power), exp(beta s_n) (softmax) or rank_n^(-beta) (softrank, rank 1 the
/// best), s the measure's scores, by Gumbel-top-k with noise keyed by each point's index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stochastic {
    /// How scores become probabilities.
    pub mode: StochasticMode,
    /// The scores.
    pub measure: Measure,
    /// Points to pick.
    pub batch_size: usize,
    /// Inverse temperature >= 0 (0: uniform, large: top-k). Default 1.
    pub beta: f64,
    /// Seed of the draw. Default 0.
    pub seed: u64,
}

impl Stochastic {
    /// Sets beta.
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What BatchBALD does once its cumulative score reaches ln K, the most mutual information K
/// MC samples can hold: later greedy picks are driven by noise, and each still evaluates the
/// candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    /// Every mode.
    pub const ALL: [PastLimit; 3] = [PastLimit::PowerBald, PastLimit::Stop, PastLimit::Continue];

    /// The name, as the CLI and Python spell it.
    pub fn name(self) -> &'static str {
        match self {
            PastLimit::PowerBald => "power-bald",
            PastLimit::Stop => "stop",
            PastLimit::Continue => "continue",
        }
    }

    /// One line on what it does.
    pub fn about(self) -> &'static str {
        match self {
            PastLimit::PowerBald => "the rest of the batch is drawn by PowerBALD",
            PastLimit::Stop => "the batch ends at the pick that reached the limit",
            PastLimit::Continue => "the greedy goes on (batchbald_redux's behaviour)",
        }
    }
}

/// A strategy by name, without its parameters: what `--strategy` and Python's `strategy` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `random`.
    Random,
    /// `entropy`.
    Entropy,
    /// `bald`.
    Bald,
    /// `var-ratios`.
    VarRatios,
    /// `var-ratios-mode`.
    VarRatiosMode,
    /// `mean-std`.
    MeanStd,
    /// `margin`.
    Margin,
    /// `least-confidence`.
    LeastConfidence,
    /// `batchbald`.
    BatchBald,
    /// `power-bald`.
    PowerBald,
    /// `softmax-bald`.
    SoftmaxBald,
    /// `softrank-bald`.
    SoftrankBald,
    /// `epig`.
    Epig,
    /// `power-epig`.
    PowerEpig,
    /// `softmax-epig`.
    SoftmaxEpig,
    /// `softrank-epig`.
    SoftrankEpig,
    /// `batch-epig`.
    BatchEpig,
}

impl Kind {
    /// Every strategy.
    pub const ALL: [Kind; 17] = [
        Kind::Random,
        Kind::Entropy,
        Kind::Bald,
        Kind::VarRatios,
        Kind::VarRatiosMode,
        Kind::MeanStd,
        Kind::Margin,
        Kind::LeastConfidence,
        Kind::BatchBald,
        Kind::PowerBald,
        Kind::SoftmaxBald,
        Kind::SoftrankBald,
        Kind::Epig,
        Kind::PowerEpig,
        Kind::SoftmaxEpig,
        Kind::SoftrankEpig,
        Kind::BatchEpig,
    ];

    /// The name, as the CLI and Python spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::BatchBald => "batchbald",
            Kind::PowerBald => "power-bald",
            Kind::SoftmaxBald => "softmax-bald",
            Kind::SoftrankBald => "softrank-bald",
            Kind::Epig => "epig",
            Kind::PowerEpig => "power-epig",
            Kind::SoftmaxEpig => "softmax-epig",
            Kind::SoftrankEpig => "softrank-epig",
            Kind::BatchEpig => "batch-epig",
            top => top.score().map_or("random", |s| s.name()),
        }
    }

    /// A stochastic batch's weighting and scores, for the stochastic kinds.
    pub fn stochastic(self) -> Option<(StochasticMode, Measure)> {
        use StochasticMode::{Power, SoftRank, Softmax};
        Some(match self {
            Kind::PowerBald => (Power, Measure::Bald),
            Kind::SoftmaxBald => (Softmax, Measure::Bald),
            Kind::SoftrankBald => (SoftRank, Measure::Bald),
            Kind::PowerEpig => (Power, Measure::Epig),
            Kind::SoftmaxEpig => (Softmax, Measure::Epig),
            Kind::SoftrankEpig => (SoftRank, Measure::Epig),
            _ => return None,
        })
    }

    /// Whether it ranks points by EPIG, which needs target inputs' predictions.
    pub fn needs_targets(self) -> bool {
        matches!(self, Kind::Epig | Kind::BatchEpig)
            || matches!(self.stochastic(), Some((_, Measure::Epig)))
    }

    /// One line on what it picks.
    pub fn about(self) -> &'static str {
        match self {
            Kind::Random => "a uniformly random batch",
            Kind::Entropy => "max entropy of the mean prediction",
            Kind::Bald => "BALD: mutual information between prediction and weights",
            Kind::VarRatios => "variation ratios, 1 - max mean probability",
            Kind::VarRatiosMode => "variation ratios, mode-count form (Gal et al. 2017)",
            Kind::MeanStd => "mean standard deviation of the class probabilities",
            Kind::Margin => "1 - (top1 - top2) of the mean probabilities",
            Kind::LeastConfidence => "1 - max mean probability",
            Kind::BatchBald => "greedy BatchBALD",
            Kind::PowerBald => "stochastic PowerBALD: a batch drawn with p ∝ BALD^beta",
            Kind::SoftmaxBald => "a batch drawn with p ∝ exp(beta BALD)",
            Kind::SoftrankBald => "a batch drawn with p ∝ rank^-beta by BALD",
            Kind::Epig => "EPIG: information about the predictions on the targets",
            Kind::PowerEpig => "a batch drawn with p ∝ EPIG^beta",
            Kind::SoftmaxEpig => "a batch drawn with p ∝ exp(beta EPIG)",
            Kind::SoftrankEpig => "a batch drawn with p ∝ rank^-beta by EPIG",
            Kind::BatchEpig => "greedy batch EPIG",
        }
    }

    /// Whether it measures disagreement between MC samples, which one sample cannot show.
    pub fn needs_two_samples(self) -> bool {
        matches!(self.score(), Some(Score::Bald | Score::MeanStd(_)))
    }

    /// The per-point score behind the strategy (BALD for BatchBALD and the stochastic BALD
    /// batches); `None` for random and EPIG.
    pub fn score(self) -> Option<Score> {
        match self {
            Kind::Random | Kind::Epig | Kind::BatchEpig => None,
            Kind::PowerEpig | Kind::SoftmaxEpig | Kind::SoftrankEpig => None,
            Kind::Entropy => Some(Score::Entropy),
            Kind::Bald | Kind::BatchBald => Some(Score::Bald),
            Kind::PowerBald | Kind::SoftmaxBald | Kind::SoftrankBald => Some(Score::Bald),
            Kind::VarRatios => Some(Score::VariationRatios),
            Kind::VarRatiosMode => Some(Score::VariationRatiosMode),
            Kind::MeanStd => Some(Score::MeanStd(StdKind::Population)),
            Kind::Margin => Some(Score::Margin),
            Kind::LeastConfidence => Some(Score::LeastConfidence),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        by_name(&Kind::ALL, Kind::name, s, "strategy")
    }
}

impl FromStr for PastLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<PastLimit, String> {
        by_name(&PastLimit::ALL, PastLimit::name, s, "past_limit")
    }
}

/// A score by its name ([`Score::name`]), in any case, `_` for `-` accepted.
pub fn score_named(s: &str) -> Result<Score, String> {
    by_name(&Score::ALL, |v| v.name(), s, "score")
}

/// Greedy steps by name: `lazy` or `full`.
pub fn greedy_named(s: &str) -> Result<Greedy, String> {
    by_name(&[Greedy::Lazy, Greedy::Full], |g| g.name(), s, "greedy")
}

/// Every parameter a strategy may take, flat, as the CLI's and Python's arguments give them;
/// [`Default`] is the CLI's defaults. [`Strategy::new`] takes what its kind uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Points to pick. Default 10.
    pub batch_size: usize,
    /// BatchBALD's and batch EPIG's `num_samples`. Default 10000.
    pub num_samples: usize,
    /// The stochastic batches' beta (and BatchBALD's PowerBALD past the limit). Default 1.
    pub beta: f64,
    /// Seed of every random choice. Default 0.
    pub seed: u64,
    /// BatchBALD's greedy steps. Default lazy.
    pub greedy: Greedy,
    /// BatchBALD past its information limit. Default power-bald.
    pub past_limit: PastLimit,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            batch_size: 10,
            num_samples: 10000,
            beta: 1.0,
            seed: 0,
            greedy: Greedy::Lazy,
            past_limit: PastLimit::PowerBald,
        }
    }
}

impl Strategy {
    /// The strategy `kind` with the parameters of `settings` that it uses.
    pub fn new(kind: Kind, settings: Settings) -> Strategy {
        let Settings {
            batch_size,
            num_samples,
            beta,
            seed,
            greedy,
            past_limit,
        } = settings;
        match kind {
            Kind::Random => Strategy::Random(Random { batch_size, seed }),
            Kind::BatchBald => Strategy::BatchBald(BatchBald {
                batch_size,
                num_samples,
                seed,
                greedy,
                past_limit,
                beta,
            }),
            Kind::Epig => Strategy::Epig(Epig { batch_size }),
            Kind::BatchEpig => Strategy::BatchEpig(BatchEpig {
                batch_size,
                num_samples,
                seed,
            }),
            _ => match kind.stochastic() {
                Some((mode, measure)) => Strategy::Stochastic(Stochastic {
                    mode,
                    measure,
                    batch_size,
                    beta,
                    seed,
                }),
                None => Strategy::Top(Top {
                    score: kind.score().unwrap_or(Score::Bald),
                    batch_size,
                }),
            },
        }
    }

    /// The `batch_size` points with the highest `score`.
    pub fn top(score: Score, batch_size: usize) -> Top {
        Top { score, batch_size }
    }

    /// The top-`batch_size` BALD batch.
    pub fn bald(batch_size: usize) -> Top {
        Strategy::top(Score::Bald, batch_size)
    }

    /// The top-`batch_size` batch by predictive entropy.
    pub fn entropy(batch_size: usize) -> Top {
        Strategy::top(Score::Entropy, batch_size)
    }

    /// A uniformly random batch, seed 0.
    pub fn random(batch_size: usize) -> Random {
        Random {
            batch_size,
            seed: 0,
        }
    }

    /// A BatchBALD batch, with the CLI's defaults: `num_samples` 10000, seed 0, lazy greedy,
    /// PowerBALD past the information limit with beta 1.
    pub fn batchbald(batch_size: usize) -> BatchBald {
        let d = Settings::default();
        BatchBald {
            batch_size,
            num_samples: d.num_samples,
            seed: d.seed,
            greedy: d.greedy,
            past_limit: d.past_limit,
            beta: d.beta,
        }
    }

    /// A PowerBALD batch, beta 1, seed 0.
    pub fn power_bald(batch_size: usize) -> Stochastic {
        Strategy::stochastic(StochasticMode::Power, Measure::Bald, batch_size)
    }

    /// A stochastic batch of `mode` over `measure`'s scores, beta 1, seed 0.
    pub fn stochastic(mode: StochasticMode, measure: Measure, batch_size: usize) -> Stochastic {
        Stochastic {
            mode,
            measure,
            batch_size,
            beta: 1.0,
            seed: 0,
        }
    }

    /// The top-`batch_size` EPIG batch (the targets go in [`crate::Options::targets`]).
    pub fn epig(batch_size: usize) -> Epig {
        Epig { batch_size }
    }

    /// A greedy batch-EPIG batch, `num_samples` 10000, seed 0 (the targets go in
    /// [`crate::Options::targets`]).
    pub fn batch_epig(batch_size: usize) -> BatchEpig {
        let d = Settings::default();
        BatchEpig {
            batch_size,
            num_samples: d.num_samples,
            seed: d.seed,
        }
    }

    /// The strategy's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Strategy::Random(_) => Kind::Random,
            Strategy::BatchBald(_) => Kind::BatchBald,
            Strategy::Epig(_) => Kind::Epig,
            Strategy::BatchEpig(_) => Kind::BatchEpig,
            Strategy::Stochastic(s) => Kind::ALL
                .into_iter()
                .find(|k| k.stochastic() == Some((s.mode, s.measure)))
                .unwrap_or(Kind::PowerBald),
            Strategy::Top(t) => Kind::ALL
                .into_iter()
                .find(|k| {
                    k.score() == Some(t.score) && k.stochastic().is_none() && *k != Kind::BatchBald
                })
                .unwrap_or(Kind::Bald),
        }
    }

    /// The name: the kind's, or the score's for a top-k batch of a score no kind names
    /// (`conditional-entropy`, `mean-std-unbiased`).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Top(t) => t.score.name(),
            s => s.kind().name(),
        }
    }

    /// Points to pick.
    pub fn batch_size(&self) -> usize {
        match self {
            Strategy::Top(t) => t.batch_size,
            Strategy::Random(r) => r.batch_size,
            Strategy::BatchBald(b) => b.batch_size,
            Strategy::Stochastic(s) => s.batch_size,
            Strategy::Epig(e) => e.batch_size,
            Strategy::BatchEpig(e) => e.batch_size,
        }
    }

    /// The per-point score behind it (BALD for BatchBALD and the stochastic BALD batches);
    /// `None` for random and EPIG.
    pub fn score(&self) -> Option<Score> {
        match self {
            Strategy::Top(t) => Some(t.score),
            Strategy::Random(_) | Strategy::Epig(_) | Strategy::BatchEpig(_) => None,
            Strategy::Stochastic(s) => (s.measure == Measure::Bald).then_some(Score::Bald),
            Strategy::BatchBald(_) => Some(Score::Bald),
        }
    }

    /// Whether it measures disagreement between MC samples, which one sample cannot show
    /// (EPIG too: with one sample every point's EPIG is 0).
    pub fn needs_two_samples(&self) -> bool {
        self.needs_targets() || matches!(self.score(), Some(Score::Bald | Score::MeanStd(_)))
    }

    /// Whether it ranks points by EPIG, which needs target inputs' predictions.
    pub fn needs_targets(&self) -> bool {
        self.kind().needs_targets()
    }
}

impl From<Top> for Strategy {
    fn from(t: Top) -> Strategy {
        Strategy::Top(t)
    }
}

impl From<Random> for Strategy {
    fn from(r: Random) -> Strategy {
        Strategy::Random(r)
    }
}

impl From<BatchBald> for Strategy {
    fn from(b: BatchBald) -> Strategy {
        Strategy::BatchBald(b)
    }
}

impl From<Stochastic> for Strategy {
    fn from(s: Stochastic) -> Strategy {
        Strategy::Stochastic(s)
    }
}

impl From<Epig> for Strategy {
    fn from(e: Epig) -> Strategy {
        Strategy::Epig(e)
    }
}

impl From<BatchEpig> for Strategy {
    fn from(e: BatchEpig) -> Strategy {
        Strategy::BatchEpig(e)
    }
}
