//! The active-learning loop: for each seed and strategy, train a model on the labelled images,
//! measure its test accuracy, score the pool with K MC-dropout passes on a backend, acquire a
//! batch with the `bald` crate, label it, and go on until the budget. Each round is reported to
//! an [`Observer`], which writes, draws or stops as it likes.

use std::time::Instant;

use bald::{
    acquire_on, Backend, Greedy, Kind, Options, PastLimit, Pool, Settings, Strategy, Warning,
};
use bald_core::owned::mc_dropout_forward;
use bald_core::{McDropoutHead, Shape};

use crate::data::{self, Dataset, Setup, SplitSizes};
use crate::mlp::TrainConfig;
use crate::model::{MlpShape, Model, ModelKind};
use crate::rng::Rng;

/// Everything one experiment run is, but its data and backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The strategies compared, each at most once.
    pub strategies: Vec<Kind>,
    /// The model.
    pub model: ModelKind,
    /// The MLP's shape (for [`ModelKind::Mlp`]).
    pub mlp: MlpShape,
    /// Training.
    pub train: TrainConfig,
    /// Seeds `first_seed ..`, this many.
    pub seeds: usize,
    /// The first seed.
    pub first_seed: u64,
    /// Stop once this many points are labelled.
    pub budget: usize,
    /// Points acquired per round.
    pub acquire: usize,
    /// MC-dropout samples K.
    pub k: usize,
    /// Each pool image this many times, with noise (Repeated-MNIST).
    pub repeated: usize,
    /// Test images per class, when the data has no test set of its own.
    pub test_per_class: usize,
    /// Validation images for early stopping.
    pub validation: usize,
    /// Initial labels per class.
    pub initial_per_class: usize,
    /// BatchBALD's `num_samples`.
    pub num_samples: usize,
    /// BatchBALD's greedy steps.
    pub greedy: Greedy,
    /// BatchBALD past its information limit.
    pub past_limit: PastLimit,
    /// PowerBALD's beta.
    pub beta: f64,
    /// Each round scores a random subset of this many pool images (all of them when `None`).
    pub pool_subset: Option<usize>,
    /// Acquire from one forward pass with dropout off, not K MC-dropout samples.
    pub deterministic: bool,
    /// The test and target distribution against the pool's.
    pub setup: Setup,
    /// EPIG's target inputs drawn each round from the target split (the held-out unlabelled
    /// inputs of the target distribution, twice this many).
    pub targets: usize,
}

impl Config {
    /// Rounds per curve: the initial model, then one per acquisition until the budget.
    pub fn rounds(&self, classes: usize) -> usize {
        let initial = self.initial_per_class * classes;
        self.budget
            .saturating_sub(initial)
            .div_ceil(self.acquire.max(1))
            + 1
    }
}

/// One learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Its strategy.
    pub strategy: Kind,
    /// (labels, test accuracy) per round.
    pub points: Vec<(usize, f64)>,
    /// Seconds of inference and acquisition per acquisition round.
    pub round_seconds: Vec<f64>,
}

/// A round's pool as the strategy saw it, for whoever keeps it.
#[derive(Debug, Clone)]
pub struct RoundPool<'a> {
    /// The MC-dropout log-probs, N x K x C.
    pub log_probs: Vec<f32>,
    /// Their shape.
    pub shape: Shape,
    /// The pool points' indices in the data set, in pool order.
    pub pool: &'a [usize],
    /// The pool positions acquired.
    pub picks: &'a [usize],
    /// The acquisition's seed.
    pub acquire_seed: u64,
    /// EPIG's targets' MC-dropout log-probs (M x K x C), for the strategies that read them.
    pub targets: Option<Vec<f32>>,
}

/// One round, as it ends.
#[derive(Debug, Clone)]
pub struct Round<'a> {
    /// The strategy.
    pub strategy: Kind,
    /// The seed.
    pub seed: u64,
    /// The round, from 0.
    pub round: u64,
    /// Labelled points the round's model was trained on.
    pub labels: usize,
    /// Its test accuracy.
    pub accuracy: f64,
    /// Seconds of inference and acquisition, when the round acquired.
    pub seconds: Option<f64>,
    /// The pool and picks, when the round acquired and [`Observer::wants_pools`].
    pub pool: Option<RoundPool<'a>>,
}

/// What the loop reports to.
pub trait Observer {
    /// A curve starts.
    fn started(&mut self, strategy: Kind, seed: u64);
    /// A round ended; an error stops the run.
    fn round(&mut self, round: Round<'_>) -> Result<(), String>;
    /// A warning of the acquisition in `round`.
    fn warning(&mut self, strategy: Kind, seed: u64, round: u64, warning: &Warning);
    /// Whether to stop after the round in progress (Ctrl-C).
    fn stopped(&self) -> bool;
    /// Whether rounds carry their pool ([`Round::pool`]).
    fn wants_pools(&self) -> bool;
}

/// Class probabilities averaged over K samples, argmax, against the labels.
fn mc_accuracy(lp: &[f32], k: usize, c: usize, labels: impl Iterator<Item = u8>) -> f64 {
    let mut correct = 0usize;
    let mut total = 0usize;
    for (point, label) in lp.chunks_exact(k * c).zip(labels) {
        let mut mean = vec![0.0f64; c];
        for row in point.chunks_exact(c) {
            for (m, &l) in mean.iter_mut().zip(row) {
                *m += f64::from(l).exp();
            }
        }
        let best = (0..c).fold(0, |b, j| if mean[j] > mean[b] { j } else { b });
        correct += usize::from(best == usize::from(label));
        total += 1;
    }
    correct as f64 / total.max(1) as f64
}

/// The pool positions a round scores: `size` of the `len` drawn without replacement from
/// `seed` (a partial Fisher-Yates shuffle), in pool order; all of them without a size or when
/// it covers the pool.
pub fn pool_subset(len: usize, size: Option<usize>, seed: u64) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..len).collect();
    let Some(size) = size.filter(|&s| s < len) else {
        return positions;
    };
    let mut rng = Rng::new(seed, 6);
    for i in 0..size {
        let j = i + rng.below(len - i);
        positions.swap(i, j);
    }
    positions.truncate(size);
    positions.sort_unstable();
    positions
}

/// Runs the experiment of `config` on `data` (its own test set `test`, if any) with `backend`;
/// returns the curves, seeds first, then strategies (the curve in progress included when the
/// observer stopped the run).
pub fn run<B: Backend>(
    backend: &B,
    config: &Config,
    data: &Dataset,
    test: Option<&Dataset>,
    observer: &mut dyn Observer,
) -> Result<Vec<Curve>, String> {
    let a = config;
    let classes = data.classes;
    let e = |e: B::Error| e.to_string();
    let mut curves = Vec::new();
    // The caller checked that the last seed fits in a u64.
    a.setup.check(classes)?;
    // The target split, when a strategy reads targets: 2 x targets inputs of the target
    // classes, balanced.
    let target_classes = (0..classes).filter(|&c| a.setup.is_target(c)).count();
    let targets_per_class = if a.strategies.iter().any(|s| s.needs_targets()) {
        (2 * a.targets).div_ceil(target_classes.max(1))
    } else {
        0
    };
    'seeds: for seed in (a.first_seed..).take(a.seeds) {
        let sizes = SplitSizes {
            test_per_class: if test.is_some() { 0 } else { a.test_per_class },
            validation: a.validation,
            initial_per_class: a.initial_per_class,
            targets_per_class,
            setup: a.setup,
        };
        let splits = data::split(data, seed, sizes)?;
        let (data, pool0) = data::repeat_pool(data, &splits.pool, a.repeated, seed);
        let (test_data, test_idx) = match test {
            Some(t) => (
                t,
                (0..t.len())
                    .filter(|&i| a.setup.is_target(usize::from(t.y[i])))
                    .collect(),
            ),
            None => (&data, splits.test.clone()),
        };
        for &strategy in &a.strategies {
            observer.started(strategy, seed);
            let mut labelled = splits.initial.clone();
            let mut pool = pool0.clone();
            let mut curve = Curve {
                strategy,
                points: Vec::new(),
                round_seconds: Vec::new(),
            };
            for round in 0u64.. {
                let round_seed = seed.wrapping_mul(1_000_003).wrapping_add(round);
                let mut model = Model::new(a.model, a.mlp, &data, round_seed)?;
                model.train(&data, &labelled, &splits.validation, a.train, round_seed);
                let test_x = model.features(test_data, &test_idx);
                let layers = model.head(true);
                let head = McDropoutHead::new(&layers).map_err(|e| e.to_string())?;
                let test_lp: Vec<f32> =
                    mc_dropout_forward(backend, &head, &test_x, test_idx.len(), a.k, round_seed)
                        .map_err(e)?;
                let labels_of = test_idx.iter().map(|&i| test_data.y[i]);
                let accuracy = mc_accuracy(&test_lp, a.k, classes, labels_of);
                let labels = labelled.len();
                curve.points.push((labels, accuracy));
                let done = labelled.len() >= a.budget || pool.is_empty();
                let mut report = Round {
                    strategy,
                    seed,
                    round,
                    labels,
                    accuracy,
                    seconds: None,
                    pool: None,
                };
                if done || observer.stopped() {
                    observer.round(report)?;
                } else {
                    let start = Instant::now();
                    // Pool positions scored this round, and their data-set indices.
                    let subset = pool_subset(pool.len(), a.pool_subset, round_seed);
                    let scored: Vec<usize> = subset.iter().map(|&p| pool[p]).collect();
                    let pool_x = model.features(&data, &scored);
                    let (lp, k) = if a.deterministic {
                        let layers = model.head(false);
                        let one = McDropoutHead::new(&layers).map_err(|e| e.to_string())?;
                        let lp: Vec<f32> =
                            mc_dropout_forward(backend, &one, &pool_x, scored.len(), 1, round_seed)
                                .map_err(e)?;
                        (lp, 1)
                    } else {
                        let lp: Vec<f32> = mc_dropout_forward(
                            backend,
                            &head,
                            &pool_x,
                            scored.len(),
                            a.k,
                            round_seed,
                        )
                        .map_err(e)?;
                        (lp, a.k)
                    };
                    let shape = Shape::new(scored.len(), k, classes);
                    let valid = backend.validate(&lp, shape).map_err(e)?;
                    let prepared = backend.prepare(valid).map_err(e)?;
                    let settings = Settings {
                        batch_size: a.acquire.min(a.budget - labelled.len()),
                        num_samples: a.num_samples,
                        beta: a.beta,
                        seed: round_seed,
                        greedy: a.greedy,
                        past_limit: a.past_limit,
                    };
                    // EPIG's targets: a fresh draw from the target split, through the same
                    // head with the same seed, so the same dropout masks as the pool's.
                    let target_lp: Option<Vec<f32>> = if strategy.needs_targets() {
                        let drawn = pool_subset(splits.targets.len(), Some(a.targets), !round_seed);
                        let inputs: Vec<usize> = drawn.iter().map(|&p| splits.targets[p]).collect();
                        let target_x = model.features(&data, &inputs);
                        Some(
                            mc_dropout_forward(
                                backend,
                                &head,
                                &target_x,
                                inputs.len(),
                                k,
                                round_seed,
                            )
                            .map_err(e)?,
                        )
                    } else {
                        None
                    };
                    let targets_pool = target_lp
                        .as_deref()
                        .map(|lp| Pool::from_slice(lp, [lp.len() / (k * classes), k, classes]))
                        .transpose()
                        .map_err(|e| e.to_string())?;
                    let mut on_warning = |w: &Warning| observer.warning(strategy, seed, round, w);
                    let mut options = Options::default().on_warning(&mut on_warning);
                    if let Some(t) = &targets_pool {
                        options = options.targets(t);
                    }
                    let acquired = acquire_on(
                        backend,
                        &prepared,
                        &Strategy::new(strategy, settings),
                        options,
                        None,
                    )
                    .map_err(|e| e.to_string())?;
                    let seconds = start.elapsed().as_secs_f64();
                    curve.round_seconds.push(seconds);
                    // The pools' borrows end here: a kept pool takes the log-probs.
                    drop(prepared);
                    drop(targets_pool);
                    report.seconds = Some(seconds);
                    if observer.wants_pools() {
                        report.pool = Some(RoundPool {
                            log_probs: lp,
                            shape,
                            pool: &scored,
                            picks: &acquired.indices,
                            acquire_seed: round_seed,
                            targets: target_lp,
                        });
                    }
                    observer.round(report)?;
                    let mut picked = vec![false; pool.len()];
                    for &i in &acquired.indices {
                        picked[subset[i]] = true;
                        labelled.push(scored[i]);
                    }
                    pool = pool
                        .iter()
                        .zip(&picked)
                        .filter(|(_, &p)| !p)
                        .map(|(&i, _)| i)
                        .collect();
                }
                if observer.stopped() {
                    curves.push(curve);
                    break 'seeds;
                }
                if done {
                    break;
                }
            }
            curves.push(curve);
        }
    }
    Ok(curves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_subsets_are_seeded_distinct_and_clamped() {
        let a = pool_subset(1000, Some(100), 7);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[99] < 1000);
        assert_eq!(a, pool_subset(1000, Some(100), 7));
        assert_ne!(a, pool_subset(1000, Some(100), 8));
        // Every position is as likely: the subsets' mean position is near the middle.
        let mean = (0..200u64)
            .flat_map(|seed| pool_subset(1000, Some(10), seed))
            .sum::<usize>() as f64
            / 2000.0;
        assert!((mean - 499.5).abs() < 30.0, "{mean}");
        assert_eq!(pool_subset(50, Some(100), 7), (0..50).collect::<Vec<_>>());
        assert_eq!(pool_subset(50, None, 7), (0..50).collect::<Vec<_>>());
    }

    /// A reported round: labels, seconds, and the picks in its pool.
    type Seen = (usize, Option<f64>, Option<usize>);

    /// Records what the loop reports, and stops it after `stop_after` rounds.
    struct Record {
        rounds: Vec<Seen>,
        started: usize,
        stop_after: usize,
    }

    impl Observer for Record {
        fn started(&mut self, _: Kind, _: u64) {
            self.started += 1;
        }
        fn round(&mut self, r: Round<'_>) -> Result<(), String> {
            let picks = r.pool.as_ref().map(|p| {
                assert_eq!(p.log_probs.len(), p.shape.n * p.shape.k * p.shape.c);
                p.picks.len()
            });
            self.rounds.push((r.labels, r.seconds, picks));
            Ok(())
        }
        fn warning(&mut self, _: Kind, _: u64, _: u64, _: &Warning) {}
        fn stopped(&self) -> bool {
            self.rounds.len() >= self.stop_after
        }
        fn wants_pools(&self) -> bool {
            true
        }
    }

    #[test]
    fn every_round_is_reported_and_the_observer_can_stop_the_run() {
        let data = data::embedded().unwrap();
        let config = Config {
            strategies: vec![Kind::Random, Kind::BatchBald],
            model: ModelKind::Mlp,
            mlp: MlpShape {
                hidden: 16,
                input_dropout: 0.25,
                hidden_dropout: 0.5,
            },
            train: TrainConfig {
                lr: 1e-3,
                weight_decay: 5e-4,
                batch: 32,
                epoch_samples: 64,
                max_epochs: 2,
                patience: 0,
            },
            seeds: 1,
            first_seed: 0,
            budget: 30,
            acquire: 5,
            k: 4,
            repeated: 1,
            test_per_class: 10,
            validation: 0,
            initial_per_class: 2,
            num_samples: 100,
            greedy: Greedy::Lazy,
            past_limit: PastLimit::PowerBald,
            beta: 1.0,
            pool_subset: Some(300),
            deterministic: false,
            setup: Setup::Standard,
            targets: 100,
        };
        assert_eq!(config.rounds(10), 3);
        let mut record = Record {
            rounds: Vec::new(),
            started: 0,
            stop_after: usize::MAX,
        };
        let curves = run(&bald::backends::Scalar, &config, &data, None, &mut record).unwrap();
        assert_eq!(curves.len(), 2);
        assert_eq!(record.started, 2);
        // Per curve: rounds at 20 and 25 labels acquire 5 points each; the one at 30 ends it.
        let labels: Vec<usize> = record.rounds.iter().map(|r| r.0).collect();
        assert_eq!(labels, [20, 25, 30, 20, 25, 30]);
        for r in &record.rounds {
            assert_eq!(r.1.is_some(), r.0 < 30);
            assert_eq!(r.2, (r.0 < 30).then_some(5));
        }
        assert_eq!(curves[1].points.len(), 3);
        assert_eq!(curves[1].round_seconds.len(), 2);

        // Stopped once its first round is reported: that curve, nothing after.
        let mut record = Record {
            rounds: Vec::new(),
            started: 0,
            stop_after: 1,
        };
        let curves = run(&bald::backends::Scalar, &config, &data, None, &mut record).unwrap();
        assert_eq!(curves.len(), 1);
        assert_eq!(record.rounds.len(), 1);
        assert_eq!(curves[0].points.len(), 1);
    }

    #[test]
    fn mc_accuracy_averages_the_samples() {
        // Two points, two samples, two classes: point 0's mean favours class 1, point 1's class 0.
        let lp: Vec<f32> = [0.4f32, 0.6, 0.3, 0.7, 0.9, 0.1, 0.2, 0.8]
            .iter()
            .map(|p| p.ln())
            .collect();
        assert_eq!(mc_accuracy(&lp, 2, 2, [1u8, 0].into_iter()), 1.0);
        assert_eq!(mc_accuracy(&lp, 2, 2, [0u8, 0].into_iter()), 0.5);
    }
}
