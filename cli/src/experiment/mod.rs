//! `bald experiment`: the active-learning experiment of Gal et al. (2017) and of the BatchBALD
//! paper (Kirsch et al. 2019) on MNIST (or any IDX data). The loop is bald-experiment's
//! (`bald_experiment::active`); this command gives it its arguments, writes `curves.csv` as
//! rounds end and the pools it saves, shows the progress, and makes the table and the plot.

pub mod presets;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bald_core::{Backend, Plain, Shape};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{self, count, non_negative, write_atomically};
use bald::npy::{self, NpyData};
use bald::{Device, Greedy, Kind as Strategy, OnBackend, PastLimit, Spelling, Warning};
use bald_experiment::active::{self, Config, Curve, Observer, Round, RoundPool};
use bald_experiment::data::{self, Dataset, Setup};
use bald_experiment::mlp::TrainConfig;
use bald_experiment::model::{MlpShape, ModelKind};
use bald_experiment::plot;

/// `bald experiment` arguments. With none, the BatchBALD paper's Repeated-MNIST experiment
/// (`--preset batchbald-repeated`), one seed, in about 2 minutes on 2 cores.
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// Every argument of a published protocol (--list-presets shows them); arguments given
    /// here win over the preset's.
    #[arg(long, value_name = "NAME", value_parser = presets::PRESETS.map(|p| p.name))]
    pub preset: Option<String>,
    /// List the presets, each with its paper and its run time here, and run nothing.
    #[arg(long)]
    pub list_presets: bool,
    /// Strategies to compare (comma-separated, each once).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = args::strategy(),
        default_value = "random,bald,batchbald"
    )]
    pub strategies: Vec<Strategy>,
    /// The Bayesian model: `mlp` (pixels -> --hidden -> classes) or `cnn` (Gal et al.'s
    /// network: two 4x4 convolutions of 32, max-pool, dropout 0.25, dense 128, dropout 0.5,
    /// dense C; its trunk runs once per image, its head K times on the backend).
    #[arg(long, default_value = "mlp", value_parser = model())]
    pub model: ModelKind,
    /// Repetitions with seeds 0, 1, ... (splits, initial labels, training, MC masks).
    #[arg(long, default_value = "1", value_parser = count, allow_negative_numbers = true)]
    pub seeds: usize,
    /// The first seed: the runs use seeds first-seed .. first-seed + seeds - 1. A seed's
    /// curves do not depend on the other seeds or strategies in the run, so a long
    /// reproduction can be split across runs.
    #[arg(long, default_value = "0")]
    pub first_seed: u64,
    /// Train nothing: make the table and plot from the curves.csv files of earlier runs
    /// (comma-separated), which must hold each curve of --strategies and the seeds once in all.
    /// The other arguments say what those runs were (model, budget, K, thresholds...). With
    /// --first-seed, the way to put a reproduction split across runs back together.
    #[arg(long, value_delimiter = ',', value_name = "CSV")]
    pub from_curves: Vec<PathBuf>,
    /// Stop when this many points are labelled (at least the initial labels).
    #[arg(long, default_value = "400", value_parser = count, allow_negative_numbers = true)]
    pub budget: usize,
    /// Points acquired per round.
    #[arg(long, default_value = "20", value_parser = count, allow_negative_numbers = true)]
    pub acquire: usize,
    /// MC-dropout samples K for acquisition and test predictions.
    #[arg(long, default_value = "20", value_parser = count, allow_negative_numbers = true)]
    pub k: usize,
    /// Repeated data (Repeated-MNIST): each pool image R times with Gaussian noise (std 0.1)
    /// [default: 3 on the embedded MNIST-5k, the BatchBALD paper's Repeated-MNIST; 1 with
    /// --data].
    #[arg(long, value_parser = count, allow_negative_numbers = true)]
    pub repeated: Option<usize>,
    /// IDX data instead of the embedded MNIST-5k: a folder holding train-images-idx3-ubyte
    /// and train-labels-idx1-ubyte (or Kaggle's train-images.idx3-ubyte; plain or .gz), or the
    /// images file itself with its labels file beside it. Any number of classes. MNIST's test
    /// files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, or Kaggle's names) beside them
    /// are the test set.
    #[arg(long, visible_alias = "mnist-dir", value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Test images per class (balanced test split), when the data has no test set of its own
    /// (with --data, MNIST's t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte beside the
    /// training files are the test set, whole: the paper's 10,000 images).
    #[arg(long, default_value = "100", value_parser = count, allow_negative_numbers = true)]
    pub test_per_class: usize,
    /// Validation images for early stopping; 0: no early stopping, every round trains for
    /// --max-epochs epochs and keeps the last weights.
    #[arg(long, default_value = "100", value_parser = count, allow_negative_numbers = true)]
    pub validation: usize,
    /// Initial labelled images per class (at least 1).
    #[arg(long, default_value = "2", value_parser = count, allow_negative_numbers = true)]
    pub initial_per_class: usize,
    /// Hidden layer width of the MLP (pixels -> hidden -> classes).
    #[arg(long, default_value = "128", value_parser = count, allow_negative_numbers = true)]
    pub hidden: usize,
    /// Dropout rate before the first layer, in [0, 1) (MLP).
    #[arg(long, default_value_t = 0.25)]
    pub input_dropout: f32,
    /// Dropout rate before the output layer, in [0, 1) (MLP; the CNN has Gal et al.'s 0.25
    /// and 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub hidden_dropout: f32,
    /// Training mini-batch size [default: 128 for the CNN (Gal et al.), 64 for the MLP].
    #[arg(long, value_parser = count, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Samples drawn per training epoch (reshuffled when the labelled set is used up); 0: one
    /// pass over the labelled set, Gal et al.'s epoch [default: 0 for the CNN, 1024 for the
    /// MLP, as the BatchBALD code's fixed-length sampler].
    #[arg(long, value_parser = count, allow_negative_numbers = true)]
    pub epoch_samples: Option<usize>,
    /// Most training epochs per round, at least 1 [default: 50 for the CNN (Gal et al.), 100
    /// for the MLP].
    #[arg(long, value_parser = count, allow_negative_numbers = true)]
    pub max_epochs: Option<usize>,
    /// Early stopping: epochs without a better validation accuracy, the best weights kept; 0:
    /// none, every round trains for --max-epochs and keeps the last weights [default: 0 for
    /// the CNN (Gal et al. train a fixed 50 epochs), 10 for the MLP: its curves are steadier
    /// than with 3].
    #[arg(long, value_parser = count, allow_negative_numbers = true)]
    pub patience: Option<usize>,
    /// BatchBALD: exact joint entropy while C^t <= this, sampled with this many
    /// configurations beyond (as `bald acquire --num-samples`).
    #[arg(long, default_value = "10000", value_parser = count, allow_negative_numbers = true)]
    pub num_samples: usize,
    /// BatchBALD's greedy steps: lazy (the same picks as full in the exact regime, far fewer
    /// evaluations) or full.
    #[arg(long, default_value = "lazy", value_parser = args::greedy())]
    pub greedy: Greedy,
    /// BatchBALD past its information limit, ln K (as `bald acquire --past-limit`):
    /// power-bald draws the rest of the round's batch by PowerBALD, stop ends it there,
    /// continue keeps the greedy going.
    #[arg(long, default_value = "power-bald", value_parser = args::past_limit())]
    pub past_limit: PastLimit,
    /// Also write each round's pool, as the strategy saw it, into this folder:
    /// STRATEGY-seedS-roundRRR.npy (R with three digits: round001; MC-dropout log-probs,
    /// float32, N x K x C) with a .json beside
    /// it (round, seed, strategy, model, labelled count, the pool's indices in the data set,
    /// the picks, and the acquisition's parameters: `bald acquire` with them picks the same).
    #[arg(long, value_name = "DIR")]
    pub save_pools: Option<PathBuf>,
    /// Each acquisition scores a fresh random subset of this many pool images (Gal et al.'s
    /// code scores 2000), drawn per round from the seed; default: the whole pool.
    #[arg(long, value_name = "N", value_parser = count, allow_negative_numbers = true)]
    pub pool_subset: Option<usize>,
    /// Acquire from one forward pass with dropout off (Gal et al.'s experiment 2: the
    /// importance of model uncertainty), not K MC-dropout samples; test accuracy stays MC
    /// dropout. For the strategies that read a single prediction: entropy, var-ratios, margin,
    /// least-confidence, random.
    #[arg(long)]
    pub deterministic: bool,
    /// What the model will be asked about, against what the pool holds (the EPIG paper's MNIST
    /// set-ups): standard, redundant (test inputs and EPIG's targets of classes 1 and 7 only,
    /// the pool of all ten), or unbalanced (the pool with a tenth of its images of classes 0-4).
    /// Test accuracy is measured on the test distribution.
    #[arg(long, default_value = "standard", value_parser = setup())]
    pub setup: Setup,
    /// EPIG's target inputs: this many drawn each round from a split of twice as many
    /// unlabelled inputs of the test distribution, held out of the pool, and predicted with
    /// the pool's dropout masks (the EPIG strategies only).
    #[arg(long, default_value = "100", value_parser = count, allow_negative_numbers = true)]
    pub targets: usize,
    /// PowerBALD's inverse temperature (>= 0).
    #[arg(long, default_value = "1", value_parser = non_negative, allow_negative_numbers = true)]
    pub beta: f64,
    /// Test accuracies the table reports the labels needed for, and the plot draws.
    #[arg(long, value_delimiter = ',', default_value = "0.85,0.87")]
    pub thresholds: Vec<f64>,
    /// Where inference and acquisition run.
    #[arg(long, default_value = "auto", value_parser = args::backend())]
    pub backend: Device,
    /// Folder for curves.csv (one line per round, written as it ends), curves.svg and table.md.
    #[arg(long, alias = "out", default_value = "bald-experiment")]
    pub output: PathBuf,
}

impl ExperimentArgs {
    /// Each pool image's copies: 3 on the embedded data, 1 on a user's, unless given.
    pub fn repeated(&self) -> usize {
        self.repeated
            .unwrap_or(if self.data.is_some() { 1 } else { 3 })
    }

    /// The training settings, each the model's default where not given.
    pub fn train_config(&self) -> TrainConfig {
        let cnn = self.model == ModelKind::Cnn;
        let pick = |given: Option<usize>, cnn_default, mlp_default| {
            given.unwrap_or(if cnn { cnn_default } else { mlp_default })
        };
        TrainConfig {
            lr: 1e-3,
            weight_decay: 5e-4,
            batch: pick(self.batch_size, 128, 64),
            epoch_samples: pick(self.epoch_samples, 0, 1024),
            max_epochs: pick(self.max_epochs, 50, 100),
            patience: pick(self.patience, 0, 10),
        }
    }
}

/// Set by Ctrl-C: the run stops after the current round and writes what it has.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `curves.csv`, one line per round as it ends.
struct CurveLog {
    file: std::fs::File,
    path: PathBuf,
}

impl CurveLog {
    const HEADER: &'static str = "strategy,seed,labels,accuracy,round_seconds\n";

    /// Creates the output folder and the log (truncated), so a bad `--output` fails at once.
    fn create(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("curves.csv");
        let mut log = CurveLog {
            file: std::fs::File::create(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
            path,
        };
        log.append(Self::HEADER)?;
        Ok(log)
    }

    fn append(&mut self, line: &str) -> Result<(), String> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// `--setup`.
fn setup() -> impl clap::builder::TypedValueParser<Value = Setup> {
    args::one_of(Setup::ALL.map(|s| (s.name(), s.about())), |s| {
        Setup::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown setup '{s}': one of standard, redundant, unbalanced"))
    })
}

/// `--model`.
fn model() -> impl clap::builder::TypedValueParser<Value = ModelKind> {
    args::one_of(
        [
            ("mlp", "dense layers on the pixels"),
            ("cnn", "Gal et al.'s Bayesian CNN"),
        ],
        |s| match s {
            "mlp" => Ok(ModelKind::Mlp),
            "cnn" => Ok(ModelKind::Cnn),
            _ => Err(format!("unknown model '{s}': one of mlp, cnn")),
        },
    )
}

impl ExperimentArgs {
    /// The loop's configuration.
    pub fn config(&self) -> Config {
        Config {
            strategies: self.strategies.clone(),
            model: self.model,
            mlp: MlpShape {
                hidden: self.hidden,
                input_dropout: self.input_dropout,
                hidden_dropout: self.hidden_dropout,
            },
            train: self.train_config(),
            seeds: self.seeds,
            first_seed: self.first_seed,
            budget: self.budget,
            acquire: self.acquire,
            k: self.k,
            repeated: self.repeated(),
            test_per_class: self.test_per_class,
            validation: self.validation,
            initial_per_class: self.initial_per_class,
            num_samples: self.num_samples,
            greedy: self.greedy,
            past_limit: self.past_limit,
            beta: self.beta,
            pool_subset: self.pool_subset,
            deterministic: self.deterministic,
            setup: self.setup,
            targets: self.targets,
        }
    }
}

/// What the command does with each round: the progress bar, `curves.csv`, the saved pools,
/// the warnings, Ctrl-C.
struct Reporter<'a> {
    args: &'a ExperimentArgs,
    bar: ProgressBar,
    log: &'a mut CurveLog,
    /// Each (strategy, kind of warning) given so far, and how many times since it was shown.
    warned: Vec<(Strategy, std::mem::Discriminant<Warning>, usize)>,
}

impl Observer for Reporter<'_> {
    fn started(&mut self, strategy: Strategy, seed: u64) {
        self.bar
            .set_message(format!("{} seed {seed}", strategy.name()));
    }

    fn round(&mut self, round: Round<'_>) -> Result<(), String> {
        self.bar.inc(1);
        if let (Some(dir), Some(pool)) = (&self.args.save_pools, &round.pool) {
            save_pool(self.args, dir, &round, pool)?;
        }
        let seconds = round.seconds.map(|s| format!("{s:.4}")).unwrap_or_default();
        self.log.append(&format!(
            "{},{},{},{},{seconds}\n",
            round.strategy.name(),
            round.seed,
            round.labels,
            round.accuracy
        ))
    }

    /// A strategy's first warning of each kind in full, when it applies; the same warning in
    /// later rounds is counted, and the count given when the run ends.
    fn warning(&mut self, strategy: Strategy, seed: u64, round: u64, w: &Warning) {
        let kind = std::mem::discriminant(w);
        if let Some(seen) = self
            .warned
            .iter_mut()
            .find(|(s, k, _)| (*s, *k) == (strategy, kind))
        {
            seen.2 += 1;
            return;
        }
        self.warned.push((strategy, kind, 0));
        self.bar.suspend(|| {
            eprintln!(
                "bald: warning: {} seed {seed} round {round}: {} (the same warning in later \
                 rounds is counted, not repeated)",
                strategy.name(),
                w.message(Spelling::Cli)
            )
        })
    }

    fn stopped(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }

    fn wants_pools(&self) -> bool {
        self.args.save_pools.is_some()
    }
}

/// The loop on a backend.
struct Job<'a> {
    args: &'a ExperimentArgs,
    data: &'a Dataset,
    /// The data's own test set (MNIST's t10k files), used whole instead of a split.
    test: Option<&'a Dataset>,
    log: &'a mut CurveLog,
}

impl OnBackend for Job<'_> {
    type Out = Result<Vec<Curve>, String>;

    fn on<B: Backend>(self, backend: &B) -> Result<Vec<Curve>, String> {
        let config = self.args.config();
        let rounds = config.rounds(self.data.classes);
        let bar = ProgressBar::new((config.strategies.len() * config.seeds * rounds) as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} rounds, ETA {eta} {msg}",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        let mut reporter = Reporter {
            args: self.args,
            bar,
            log: self.log,
            warned: Vec::new(),
        };
        let curves = active::run(backend, &config, self.data, self.test, &mut reporter);
        reporter.bar.finish_and_clear();
        for &(strategy, _, more) in reporter.warned.iter().filter(|w| w.2 > 0) {
            eprintln!(
                "bald: warning: {}: the same warning in {more} more round{}",
                strategy.name(),
                if more == 1 { "" } else { "s" }
            );
        }
        curves
    }
}

/// Writes a round's pool as STRATEGY-seedS-roundRRR.npy (N x K x C) and its facts as .json.
fn save_pool(
    a: &ExperimentArgs,
    dir: &Path,
    round: &Round<'_>,
    pool: &RoundPool<'_>,
) -> Result<(), String> {
    let shape: Shape = pool.shape;
    let stem = format!(
        "{}-seed{}-round{:03}",
        round.strategy.name(),
        round.seed,
        round.round
    );
    let bytes = npy::write(
        &[shape.n, shape.k, shape.c],
        &NpyData::F32(pool.log_probs.clone()),
    );
    let facts = serde_json::json!({
        "round": round.round,
        "seed": round.seed,
        "strategy": round.strategy.name(),
        "model": match a.model {
            ModelKind::Mlp => serde_json::json!({
                "kind": "mlp",
                "layers": [a.hidden, shape.c],
                "input_dropout": a.input_dropout,
                "hidden_dropout": a.hidden_dropout,
            }),
            ModelKind::Cnn => serde_json::json!({
                "kind": "cnn",
                "layers": ["conv 32@4x4", "conv 32@4x4", "max-pool 2x2", 128, shape.c],
                "input_dropout": 0.25,
                "hidden_dropout": 0.5,
            }),
        },
        "labelled": round.labels,
        "repeated": a.repeated(),
        "pool_subset": a.pool_subset,
        "deterministic": a.deterministic,
        "setup": a.setup.name(),
        "targets": pool.targets.as_ref().map(|t| t.len() / (shape.k * shape.c)),
        "n": shape.n,
        "k": shape.k,
        "c": shape.c,
        "pool_indices": pool.pool,
        "picks": pool.picks,
        "acquire": {
            "seed": pool.acquire_seed,
            "batch_size": pool.picks.len(),
            "num_samples": a.num_samples,
            "beta": a.beta,
            "greedy": a.greedy.name(),
            "past_limit": a.past_limit.name(),
        },
    });
    let mut files = vec![("npy", bytes), ("json", format!("{facts}\n").into_bytes())];
    if let Some(t) = &pool.targets {
        let m = t.len() / (shape.k * shape.c);
        let body = npy::write(&[m, shape.k, shape.c], &NpyData::F32(t.clone()));
        files.push(("targets.npy", body));
    }
    for (ext, body) in files {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Labels at which a curve first reaches `threshold`.
fn labels_to_reach(points: &[(usize, f64)], threshold: f64) -> Option<usize> {
    points.iter().find(|p| p.1 >= threshold).map(|p| p.0)
}

/// Median with "not reached" as +inf.
fn median(mut v: Vec<Option<usize>>) -> Option<f64> {
    v.sort_by_key(|x| x.unwrap_or(usize::MAX));
    let n = v.len();
    if n == 0 {
        return None;
    }
    let at = |i: usize| v[i].map(|x| x as f64);
    if n % 2 == 1 {
        at(n / 2)
    } else {
        Some((at(n / 2 - 1)? + at(n / 2)?) / 2.0)
    }
}

/// `0.85` as `85%`.
fn percent(t: f64) -> String {
    format!("{}%", Plain(t * 100.0))
}

/// The papers' table: labels to each threshold (median over seeds, and each seed's), final
/// accuracy, time per acquisition round.
fn table(args: &ExperimentArgs, curves: &[Curve], backend: &str, dataset: &str) -> String {
    let initial = curves.iter().filter_map(|c| c.points.first()).map(|p| p.0);
    let seeds = match args.first_seed {
        0 => format!("{} seed(s)", args.seeds),
        first => format!("{} seed(s) from seed {first}", args.seeds),
    };
    let mut s = format!(
        "Active learning on {dataset} with the {}, {seeds}, {} initial labels, {} per round, budget {}, K = {}, backend {backend}\n\n",
        args.model.name().to_uppercase(),
        initial.min().unwrap_or(0),
        args.acquire,
        args.budget,
        args.k
    );
    let cfg = args.train_config();
    s.insert_str(
        s.len() - 2,
        &format!(
            ", trained from scratch each round (Adam, batch {}, up to {} epochs of {}, {})",
            cfg.batch,
            cfg.max_epochs,
            match cfg.epoch_samples {
                0 => "one pass over the labelled set".to_string(),
                n => format!("{n} samples"),
            },
            match (cfg.patience, args.validation) {
                (0, _) | (_, 0) => "no early stopping".to_string(),
                (p, v) => format!("early stopping on {v} validation images, patience {p}"),
            }
        ),
    );
    if let Some(n) = args.pool_subset {
        s.insert_str(
            s.len() - 2,
            &format!(", each acquisition scoring {n} random pool images"),
        );
    }
    if args.deterministic {
        s.insert_str(
            s.len() - 2,
            ", acquisition from one forward pass without dropout (--deterministic)",
        );
    }
    if args.setup != Setup::Standard {
        s.insert_str(
            s.len() - 2,
            &format!(
                ", set-up {} ({}), test accuracy on the test distribution",
                args.setup.name(),
                args.setup.about()
            ),
        );
    }
    if args.strategies.iter().any(|s| s.needs_targets()) {
        s.insert_str(
            s.len() - 2,
            &format!(
                ", EPIG against {} target inputs drawn a round",
                args.targets
            ),
        );
    }
    let heads: Vec<String> = args
        .thresholds
        .iter()
        .map(|&t| format!("labels to {}", percent(t)))
        .collect();
    let _ = writeln!(
        s,
        "| strategy | {} | final accuracy (mean) | s per round: inference + acquisition (mean) |",
        heads.join(" | ")
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(heads.len() + 3));
    for &strategy in &args.strategies {
        let mine: Vec<&Curve> = curves.iter().filter(|c| c.strategy == strategy).collect();
        if mine.is_empty() {
            continue;
        }
        let cells: Vec<String> = args
            .thresholds
            .iter()
            .map(|&t| {
                let reached: Vec<Option<usize>> =
                    mine.iter().map(|c| labels_to_reach(&c.points, t)).collect();
                let med = median(reached.clone())
                    .map_or(format!("> {}", args.budget), |x| format!("{}", Plain(x)));
                if mine.len() == 1 {
                    return med;
                }
                let each: Vec<String> = reached
                    .iter()
                    .map(|r| r.map_or("-".into(), |x| x.to_string()))
                    .collect();
                format!("{med} ({})", each.join(", "))
            })
            .collect();
        let finals: Vec<f64> = mine
            .iter()
            .filter_map(|c| c.points.last().map(|p| p.1))
            .collect();
        let times: Vec<f64> = mine
            .iter()
            .flat_map(|c| c.round_seconds.iter().copied())
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} | {:.3} |",
            strategy.name(),
            cells.join(" | "),
            mean(&finals),
            mean(&times)
        );
    }
    if args.seeds > 1 {
        s.push_str("\nLabels to a threshold: the median over seeds, then each seed's (-: not reached within the budget).\n");
    }
    s
}

/// One sentence read from the table: at the highest threshold any strategy reached (median
/// over seeds), the labels each strategy needed, fewest first.
fn verdict(args: &ExperimentArgs, curves: &[Curve]) -> String {
    let needed = |strategy: Strategy, t: f64| {
        let reached: Vec<Option<usize>> = curves
            .iter()
            .filter(|c| c.strategy == strategy)
            .map(|c| labels_to_reach(&c.points, t))
            .collect();
        median(reached)
    };
    let mut thresholds = args.thresholds.clone();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    let of_seeds = match args.seeds {
        1 => String::new(),
        n => format!(" (medians of {n} seeds)"),
    };
    let Some((t, mut order)) = thresholds.iter().find_map(|&t| {
        let order: Vec<(Strategy, Option<f64>)> =
            args.strategies.iter().map(|&s| (s, needed(s, t))).collect();
        order.iter().any(|o| o.1.is_some()).then_some((t, order))
    }) else {
        let lowest = thresholds.last().copied().unwrap_or(0.0);
        return format!(
            "No strategy reached {} test accuracy within {} labels{of_seeds}.",
            percent(lowest),
            args.budget
        );
    };
    order.sort_by(|a, b| {
        let key = |x: Option<f64>| x.unwrap_or(f64::INFINITY);
        key(a.1).total_cmp(&key(b.1))
    });
    let parts: Vec<String> = order
        .iter()
        .enumerate()
        .map(|(i, (s, n))| match (i, n) {
            (0, Some(n)) => format!(
                "{} reached {} test accuracy with {} labels",
                s.name(),
                percent(t),
                Plain(*n)
            ),
            (_, Some(n)) => format!("{} needed {}", s.name(), Plain(*n)),
            (_, None) => format!("{} did not reach it within {}", s.name(), args.budget),
        })
        .collect();
    format!("{}{of_seeds}.", parts.join("; "))
}

/// Checks the arguments that need no data; one line naming what is wrong.
fn check(args: &ExperimentArgs) -> Result<(), String> {
    let positive = [
        ("--acquire", args.acquire),
        ("--k", args.k),
        ("--seeds", args.seeds),
        ("--repeated", args.repeated()),
        ("--initial-per-class", args.initial_per_class),
        ("--hidden", args.hidden),
        ("--batch-size", args.train_config().batch),
        ("--max-epochs", args.train_config().max_epochs),
        ("--test-per-class", args.test_per_class),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(format!("{name} must be at least 1"));
    }
    for (i, s) in args.strategies.iter().enumerate() {
        if args.strategies[..i].contains(s) {
            return Err(format!("--strategies lists {} twice", s.name()));
        }
        if s.needs_targets() && args.targets == 0 {
            return Err(format!(
                "--strategies {} needs --targets 1 or more target inputs a round",
                s.name()
            ));
        }
    }
    for (name, p) in [
        ("--input-dropout", args.input_dropout),
        ("--hidden-dropout", args.hidden_dropout),
    ] {
        if !(0.0..1.0).contains(&p) {
            return Err(format!(
                "{name} must be in [0, 1), not {}",
                Plain(f64::from(p))
            ));
        }
    }
    if let Some(t) = args.thresholds.iter().find(|t| !(**t > 0.0 && **t <= 1.0)) {
        return Err(format!("--thresholds must be in (0, 1], not {}", Plain(*t)));
    }
    if u64::try_from(args.seeds - 1)
        .ok()
        .and_then(|n| args.first_seed.checked_add(n))
        .is_none()
    {
        return Err("--first-seed + --seeds - 1 must fit in 64 bits".into());
    }
    if args.pool_subset == Some(0) {
        return Err("--pool-subset must be at least 1".into());
    }
    if args.deterministic {
        if let Some(s) = args
            .strategies
            .iter()
            .find(|s| s.needs_two_samples() || **s == Strategy::VarRatiosMode)
        {
            return Err(format!(
                "--strategies {} needs MC samples, and --deterministic acquires from one \
                 forward pass without dropout (its variation ratio is var-ratios)",
                s.name()
            ));
        }
    }
    if args.k == 1 {
        if let Some(s) = args.strategies.iter().find(|s| s.needs_two_samples()) {
            return Err(format!(
                "--strategies {} needs --k 2 or more MC samples",
                s.name()
            ));
        }
    }
    if args.num_samples == 0 && args.strategies.contains(&Strategy::BatchBald) {
        return Err("--num-samples must be at least 1 for BatchBALD".into());
    }
    Ok(())
}

/// The curves of `--from-curves`, in a run's order (seeds, then strategies), each from exactly
/// one row group of the files.
fn read_curves(args: &ExperimentArgs) -> Result<Vec<Curve>, String> {
    let seeds: Vec<u64> = (args.first_seed..).take(args.seeds).collect();
    let slot = |strategy: Strategy, seed: u64| {
        let s = args.strategies.iter().position(|&x| x == strategy)?;
        let i = seeds.iter().position(|&x| x == seed)?;
        Some(i * args.strategies.len() + s)
    };
    let mut found: Vec<Option<(Curve, &Path)>> = Vec::new();
    found.resize_with(seeds.len() * args.strategies.len(), || None);
    for path in &args.from_curves {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(CurveLog::HEADER.trim_end()) {
            return Err(format!(
                "{} is not a bald experiment curves.csv (its first line is not {})",
                path.display(),
                CurveLog::HEADER.trim_end()
            ));
        }
        // Rows of one curve are consecutive; a curve seen in an earlier group or file is twice.
        let mut current: Option<usize> = None;
        for (i, line) in lines {
            let bad = |what: &str| format!("{} line {}: {what}: {line}", path.display(), i + 1);
            let f: Vec<&str> = line.split(',').collect();
            let [name, seed, labels, acc, seconds] = f[..] else {
                return Err(bad("not 5 fields"));
            };
            let strategy: Strategy = name.parse().map_err(|_| bad("no such strategy"))?;
            let seed: u64 = seed.parse().map_err(|_| bad("bad seed"))?;
            let labels: usize = labels.parse().map_err(|_| bad("bad label count"))?;
            let acc: f64 = acc.parse().map_err(|_| bad("bad accuracy"))?;
            let seconds: Option<f64> = match seconds {
                "" => None,
                s => Some(s.parse().map_err(|_| bad("bad seconds"))?),
            };
            let Some(at) = slot(strategy, seed) else {
                continue;
            };
            if current != Some(at) {
                if let Some((_, other)) = &found[at] {
                    return Err(format!(
                        "{} seed {seed} is in {} and again in {}",
                        strategy.name(),
                        other.display(),
                        path.display()
                    ));
                }
                let curve = Curve {
                    strategy,
                    points: Vec::new(),
                    round_seconds: Vec::new(),
                };
                found[at] = Some((curve, path));
                current = Some(at);
            }
            let (curve, _) = found[at].as_mut().expect("just set");
            curve.points.push((labels, acc));
            curve.round_seconds.extend(seconds);
        }
    }
    found
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.map(|(c, _)| c).ok_or_else(|| {
                format!(
                    "no curve of {} seed {} in {}",
                    args.strategies[i % args.strategies.len()].name(),
                    seeds[i / args.strategies.len()],
                    args.from_curves
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}

/// Runs `bald experiment`: writes `curves.csv` as rounds end, then the table and plot (also on
/// Ctrl-C, with the rounds done); returns the table and where the files are.
pub fn command(args: &ExperimentArgs) -> Result<String, String> {
    if args.list_presets {
        return Ok(presets::list());
    }
    check(args)?;
    let (data, name) = match &args.data {
        Some(path) => (
            data::from_path(path)?,
            format!("IDX data from {}", path.display()),
        ),
        None => (data::embedded()?, "MNIST-5k".to_string()),
    };
    let test = match &args.data {
        Some(path) => data::test_set_beside(path)?,
        None => None,
    };
    if let Some((t, file)) = &test {
        if t.rows_cols != data.rows_cols || t.classes > data.classes {
            return Err(format!(
                "{}: {} images of {}x{} in {} classes, against the training data's {}x{} in {}",
                file.display(),
                t.len(),
                t.rows_cols.0,
                t.rows_cols.1,
                t.classes,
                data.rows_cols.0,
                data.rows_cols.1,
                data.classes
            ));
        }
    }
    let initial = args.initial_per_class * data.classes;
    if args.budget < initial {
        return Err(format!(
            "--budget {} is below the {initial} initial labels ({} per class, {} classes)",
            args.budget, args.initial_per_class, data.classes
        ));
    }
    let name = match (args.repeated(), args.data.is_some()) {
        (1, _) => name,
        (r, false) => format!("Repeated-{name} (R = {r})"),
        (r, true) => format!("{name}, each pool image {r} times with noise"),
    };
    let name = format!(
        "{name} ({} images of {}x{}, {} classes{})",
        data.len(),
        data.rows_cols.0,
        data.rows_cols.1,
        data.classes,
        match &test {
            Some((t, file)) => format!("; test set: the {} images of {}", t.len(), file.display()),
            None => String::new(),
        }
    );
    // Read before the log is created: --output may be where one of the files is.
    let saved = match args.from_curves.is_empty() {
        true => None,
        false => Some(read_curves(args)?),
    };
    let mut log = CurveLog::create(&args.output)?;
    if let Some(dir) = &args.save_pools {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Ctrl-C once: stop after the round and write what is done; twice: stop at once.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\nbald: interrupted: finishing the round, then writing the table and plot");
    });
    let (curves, backend) = if let Some(curves) = saved {
        for (i, c) in curves.iter().enumerate() {
            let seed = args.first_seed + (i / args.strategies.len()) as u64;
            for (j, &(labels, acc)) in c.points.iter().enumerate() {
                let seconds = c.round_seconds.get(j).map(|s| format!("{s:.4}"));
                log.append(&format!(
                    "{},{seed},{labels},{acc},{}\n",
                    c.strategy.name(),
                    seconds.unwrap_or_default()
                ))?;
            }
        }
        (curves, "of the runs (from their curves)")
    } else {
        let job = Job {
            args,
            data: &data,
            test: test.as_ref().map(|(t, _)| t),
            log: &mut log,
        };
        let (curves, backend) = args
            .backend
            .run(job)
            .map_err(|e| e.message(Spelling::Cli))?;
        (curves?, backend)
    };
    let series: Vec<plot::Series> = args
        .strategies
        .iter()
        .map(|&s| {
            let mine: Vec<&Curve> = curves.iter().filter(|c| c.strategy == s).collect();
            let len = mine.iter().map(|c| c.points.len()).min().unwrap_or(0);
            let points = (0..len)
                .map(|i| {
                    let ys = mine.iter().map(|c| c.points[i].1);
                    plot::Point {
                        x: mine[0].points[i].0 as f64,
                        mean: ys.clone().sum::<f64>() / mine.len() as f64,
                        lo: ys.clone().fold(f64::INFINITY, f64::min),
                        hi: ys.fold(f64::NEG_INFINITY, f64::max),
                    }
                })
                .collect();
            plot::Series {
                name: s.name().to_string(),
                points,
            }
        })
        .collect();
    let band = if args.seeds > 1 {
        ", band: min to max"
    } else {
        ""
    };
    let svg = plot::svg(
        &format!(
            "{name}: test accuracy (mean of {} seed(s){band})",
            args.seeds
        ),
        "labelled points",
        "test accuracy",
        &series,
        &args.thresholds,
    );
    let table = table(args, &curves, backend, &name);
    let out = |f: &str| args.output.join(f);
    write_atomically(&out("curves.svg"), svg.as_bytes())?;
    write_atomically(&out("table.md"), table.as_bytes())?;
    let place = format!(
        "The learning curves: {} (curves.csv and table.md beside it).",
        out("curves.svg").display()
    );
    if INTERRUPTED.load(Ordering::Relaxed) {
        print!("{table}");
        return Err(format!(
            "interrupted: the rounds done so far are written. {place}"
        ));
    }
    Ok(format!("{table}\n{}\n{place}\n", verdict(args, &curves)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExperimentArgs,
    }

    /// The CNN trains as Gal et al. (batch 128, 50 epochs of one pass, no early stopping), the
    /// MLP as the BatchBALD code; each setting given wins.
    #[test]
    fn training_defaults_follow_the_model() {
        let cfg = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["bald"], args].concat()).unwrap();
            let c = cli.args.train_config();
            (c.batch, c.epoch_samples, c.max_epochs, c.patience)
        };
        assert_eq!(cfg(&["--model", "cnn"]), (128, 0, 50, 0));
        assert_eq!(cfg(&[]), (64, 1024, 100, 10));
        assert_eq!(
            cfg(&["--model", "cnn", "--batch-size", "32", "--patience", "4"]),
            (32, 0, 50, 4)
        );
        assert_eq!(
            cfg(&["--epoch-samples", "0", "--max-epochs", "9"]),
            (64, 0, 9, 10)
        );
    }

    /// `bald experiment` with no arguments is the batchbald-repeated preset.
    #[test]
    fn the_default_run_is_the_batchbald_repeated_preset() {
        let parse = |argv: &[&str]| {
            let argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
            let argv = presets::expand(argv).unwrap();
            Cli::try_parse_from(&argv[1..]).unwrap().args
        };
        let plain = parse(&["bald", "experiment"]);
        let preset = parse(&["bald", "experiment", "--preset", "batchbald-repeated"]);
        assert_eq!(plain.config(), preset.config());
        assert_eq!(plain.thresholds, preset.thresholds);
        assert_eq!(plain.repeated(), 3);
        let theirs = parse(&["bald", "experiment", "--data", "mine"]);
        assert_eq!(
            theirs.repeated(),
            1,
            "a user's data is not repeated unless asked"
        );
    }

    #[test]
    fn median_treats_unreached_as_infinite() {
        assert_eq!(median(vec![Some(30), None, Some(50)]), Some(50.0));
        assert_eq!(median(vec![Some(30), None, None]), None);
        assert_eq!(median(vec![Some(30), Some(40)]), Some(35.0));
        assert_eq!(
            labels_to_reach(&[(20, 0.5), (30, 0.91), (40, 0.89)], 0.9),
            Some(30)
        );
    }

    /// The closing sentence: the highest threshold a strategy reached, strategies fewest
    /// labels first, medians over seeds, those that never reached it last.
    #[test]
    fn the_verdict_reads_the_table() {
        let args = |a: &[&str]| Cli::try_parse_from([&["bald"], a].concat()).unwrap().args;
        let curve = |strategy: &str, points: &[(usize, f64)]| Curve {
            strategy: strategy.parse().unwrap(),
            points: points.to_vec(),
            round_seconds: vec![],
        };
        let one = [
            curve("random", &[(20, 0.5), (40, 0.81), (60, 0.84)]),
            curve("bald", &[(20, 0.5), (40, 0.7), (60, 0.79)]),
            curve("batchbald", &[(20, 0.5), (40, 0.82), (60, 0.86)]),
        ];
        let a = args(&[
            "--strategies",
            "random,bald,batchbald",
            "--budget",
            "60",
            "--thresholds",
            "0.8,0.85,0.9",
        ]);
        assert_eq!(
            verdict(&a, &one),
            "batchbald reached 85% test accuracy with 60 labels; random did not reach it \
             within 60; bald did not reach it within 60."
        );
        let a = args(&[
            "--strategies",
            "random,bald,batchbald",
            "--thresholds",
            "0.8",
            "--seeds",
            "2",
            "--budget",
            "150",
        ]);
        let two = [
            &one[..],
            &[
                curve("random", &[(20, 0.5), (40, 0.7), (60, 0.8)]),
                curve("bald", &[(20, 0.5), (40, 0.8), (60, 0.8)]),
                curve("batchbald", &[(20, 0.8), (40, 0.8), (60, 0.9)]),
            ],
        ]
        .concat();
        assert_eq!(
            verdict(&a, &two),
            "batchbald reached 80% test accuracy with 30 labels; random needed 50; bald did not \
             reach it within 150 (medians of 2 seeds)."
        );
        let a = args(&[
            "--strategies",
            "random,bald",
            "--thresholds",
            "0.9,0.95",
            "--budget",
            "150",
        ]);
        assert_eq!(
            verdict(&a, &one[..2]),
            "No strategy reached 90% test accuracy within 150 labels."
        );
    }

    #[test]
    fn embedded_mnist_is_balanced_and_splits_are_disjoint() {
        let d = data::embedded().unwrap();
        assert_eq!((d.len(), d.dim), (5000, 784));
        for class in 0..10u8 {
            assert_eq!(d.y.iter().filter(|&&l| l == class).count(), 500);
        }
        let sizes = data::SplitSizes {
            test_per_class: 100,
            validation: 100,
            initial_per_class: 2,
            ..data::SplitSizes::default()
        };
        let s = data::split(&d, 3, sizes).unwrap();
        assert_eq!(
            (s.test.len(), s.validation.len(), s.initial.len()),
            (1000, 100, 20)
        );
        assert_eq!(s.pool.len(), 5000 - 1120);
        let mut all: Vec<usize> = [&s.test[..], &s.validation, &s.initial, &s.pool].concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5000);
        let (r, pool) = data::repeat_pool(&d, &s.pool, 3, 0);
        assert_eq!(pool.len(), 3 * s.pool.len());
        assert_eq!(r.y[pool[0]], r.y[pool[2]]);
        assert_ne!(r.row(pool[0]), r.row(pool[1]));
    }

    #[test]
    fn the_epig_setups_split_as_the_paper() {
        let d = data::embedded().unwrap();
        let class_of = |idx: &[usize]| -> Vec<usize> {
            let mut count = vec![0; 10];
            idx.iter().for_each(|&i| count[usize::from(d.y[i])] += 1);
            count
        };
        let base = data::SplitSizes {
            test_per_class: 100,
            validation: 100,
            initial_per_class: 2,
            targets_per_class: 50,
            setup: Setup::Redundant,
        };
        // Redundant: test inputs and targets of 1 and 7 only, the pool of every class.
        let s = data::split(&d, 3, base).unwrap();
        let tests = class_of(&s.test);
        assert_eq!(
            (tests[1], tests[7], tests.iter().sum::<usize>()),
            (100, 100, 200)
        );
        let targets = class_of(&s.targets);
        assert_eq!(
            (targets[1], targets[7], targets.iter().sum::<usize>()),
            (50, 50, 100)
        );
        let pool = class_of(&s.pool);
        assert_eq!((pool[0], pool[1], pool[7]), (500 - 10 - 2, 338, 338));
        assert_eq!(class_of(&s.initial), vec![2; 10]);
        let mut all: Vec<usize> =
            [&s.test[..], &s.validation, &s.initial, &s.pool, &s.targets].concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5000);
        // Unbalanced: a tenth of classes 0-4 in the pool, test inputs and targets balanced.
        let s = data::split(
            &d,
            3,
            data::SplitSizes {
                setup: Setup::Unbalanced,
                ..base
            },
        )
        .unwrap();
        let pool = class_of(&s.pool);
        assert_eq!((pool[0], pool[4], pool[5]), (34, 34, 338));
        assert_eq!(class_of(&s.test), vec![100; 10]);
        assert_eq!(class_of(&s.targets), vec![50; 10]);
        // Redundant needs classes 1 and 7.
        assert!(Setup::Redundant
            .check(5)
            .unwrap_err()
            .contains("classes 1 and 7"));
    }
}
