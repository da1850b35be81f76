//! `bald experiment`: the active-learning loop of Gal et al. (2017) and of the BatchBALD paper
//! (Kirsch et al. 2019) on MNIST, end to end. Each round trains the Bayesian MLP from scratch on
//! the labelled set, evaluates it on the test split (mean of K MC-dropout predictions), runs
//! K consistent MC-dropout passes over the pool on the chosen backend, and acquires a batch
//! with each strategy, until the label budget.

mod data;
mod mlp;
mod plot;
mod rng;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use bald_core::owned::mc_dropout_forward;
use bald_core::{Backend, McDropoutHead, Shape};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::acquire::{acquire_on, Params, Strategy};
use crate::backends::{dispatch, BackendChoice, OnBackend};
use data::Dataset;
use mlp::{Mlp, TrainConfig};

/// `bald experiment` arguments. With none, a one-seed run to 150 labels on MNIST-5k
/// (a few minutes at most on 2 cores).
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// Strategies to compare (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "random,entropy,bald,var-ratios-mode,mean-std,batchbald,power-bald"
    )]
    pub strategies: Vec<Strategy>,
    /// Repetitions with seeds 0, 1, ... (splits, initial labels, training, MC masks).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Stop when this many points are labelled.
    #[arg(long, default_value_t = 150)]
    pub budget: usize,
    /// Points acquired per round.
    #[arg(long, default_value_t = 10)]
    pub acquire: usize,
    /// MC-dropout samples K for acquisition and test predictions.
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Repeated-MNIST: each pool image R times with Gaussian noise (std 0.1).
    #[arg(long, default_value_t = 1)]
    pub repeated: usize,
    /// Read the real MNIST (train-images-idx3-ubyte, train-labels-idx1-ubyte, plain or .gz)
    /// from this folder instead of the embedded MNIST-5k.
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Test images per class (balanced test split).
    #[arg(long, default_value_t = 100)]
    pub test_per_class: usize,
    /// Validation images (early stopping).
    #[arg(long, default_value_t = 100)]
    pub validation: usize,
    /// Initial labelled images per class.
    #[arg(long, default_value_t = 2)]
    pub initial_per_class: usize,
    /// Hidden layer width of the MLP (784 -> hidden -> 10).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Dropout rate before the first layer.
    #[arg(long, default_value_t = 0.25)]
    pub input_dropout: f32,
    /// Dropout rate before the output layer.
    #[arg(long, default_value_t = 0.5)]
    pub hidden_dropout: f32,
    /// Samples drawn per training epoch.
    #[arg(long, default_value_t = 1024)]
    pub epoch_samples: usize,
    /// Most training epochs per round.
    #[arg(long, default_value_t = 30)]
    pub max_epochs: usize,
    /// Early stopping: epochs without a better validation accuracy.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// BatchBALD: exact joint entropy while C^t <= this, sampled beyond.
    #[arg(long, default_value_t = 1000)]
    pub num_samples: usize,
    /// PowerBALD's inverse temperature.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Where inference and acquisition run.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Folder for curves.csv, curves.svg and table.md.
    #[arg(long, default_value = "bald-experiment")]
    pub out: PathBuf,
}

/// One learning curve.
struct Curve {
    strategy: Strategy,
    seed: u64,
    /// (labels, test accuracy) per round.
    points: Vec<(usize, f64)>,
    /// Seconds of inference + acquisition per acquisition round.
    round_seconds: Vec<f64>,
}

struct Job<'a> {
    args: &'a ExperimentArgs,
    data: &'a Dataset,
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

fn gather(data: &Dataset, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| data.row(i).iter().copied())
        .collect()
}

impl OnBackend for Job<'_> {
    type Out = Vec<Curve>;

    fn run<B: Backend>(self, backend: &B) -> Result<Vec<Curve>, String> {
        let a = self.args;
        let classes = 10;
        let initial = a.initial_per_class * classes;
        let rounds = a.budget.saturating_sub(initial).div_ceil(a.acquire.max(1)) + 1;
        let bar = ProgressBar::new(a.strategies.len() as u64 * a.seeds * rounds as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} rounds {msg}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
        );
        let cfg = TrainConfig {
            lr: 1e-3,
            weight_decay: 5e-4,
            batch: 64,
            epoch_samples: a.epoch_samples,
            max_epochs: a.max_epochs,
            patience: a.patience,
        };
        let e = |e: B::Error| e.to_string();
        let mut curves = Vec::new();
        for seed in 0..a.seeds {
            let splits = data::split(
                self.data,
                seed,
                a.test_per_class,
                a.validation,
                a.initial_per_class,
            )?;
            let (data, pool0) = data::repeat_pool(self.data, &splits.pool, a.repeated, seed);
            let test_x = gather(&data, &splits.test);
            for &strategy in &a.strategies {
                bar.set_message(format!("{} seed {seed}", strategy.name()));
                let mut labelled = splits.initial.clone();
                let mut pool = pool0.clone();
                let mut curve = Curve {
                    strategy,
                    seed,
                    points: Vec::new(),
                    round_seconds: Vec::new(),
                };
                for round in 0u64.. {
                    let round_seed = seed.wrapping_mul(1_000_003).wrapping_add(round);
                    let mut model = Mlp::new(
                        &[data.dim, a.hidden, classes],
                        &[a.input_dropout, a.hidden_dropout],
                        round_seed,
                    );
                    model.train(&data, &labelled, &splits.validation, cfg, round_seed);
                    let layers = model.head();
                    let head = McDropoutHead::new(&layers).map_err(|e| e.to_string())?;
                    let test_lp: Vec<f32> = mc_dropout_forward(
                        backend,
                        &head,
                        &test_x,
                        splits.test.len(),
                        a.k,
                        round_seed,
                    )
                    .map_err(e)?;
                    let acc = mc_accuracy(
                        &test_lp,
                        a.k,
                        classes,
                        splits.test.iter().map(|&i| data.y[i]),
                    );
                    curve.points.push((labelled.len(), acc));
                    bar.inc(1);
                    if labelled.len() >= a.budget || pool.is_empty() {
                        break;
                    }
                    let start = Instant::now();
                    let pool_x = gather(&data, &pool);
                    let lp: Vec<f32> =
                        mc_dropout_forward(backend, &head, &pool_x, pool.len(), a.k, round_seed)
                            .map_err(e)?;
                    let shape = Shape::new(pool.len(), a.k, classes);
                    let valid = backend.validate(&lp, shape).map_err(e)?;
                    let prepared = backend.prepare(valid).map_err(e)?;
                    let params = Params {
                        strategy,
                        batch_size: a.acquire.min(a.budget - labelled.len()),
                        num_samples: a.num_samples,
                        beta: a.beta,
                        seed: round_seed,
                    };
                    let batch = acquire_on(backend, &prepared, params)?;
                    curve.round_seconds.push(start.elapsed().as_secs_f64());
                    let mut picked = vec![false; pool.len()];
                    for &i in &batch.indices {
                        picked[i] = true;
                        labelled.push(pool[i]);
                    }
                    pool = pool
                        .iter()
                        .zip(&picked)
                        .filter(|(_, &p)| !p)
                        .map(|(&i, _)| i)
                        .collect();
                }
                curves.push(curve);
            }
        }
        bar.finish_and_clear();
        Ok(curves)
    }
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

/// The papers' table: labels to 90% and 95% (median over seeds), final accuracy, time per
/// acquisition round.
fn table(args: &ExperimentArgs, curves: &[Curve], backend: &str, dataset: &str) -> String {
    let mut s = format!(
        "Active learning on {dataset}, {} seed(s), {} initial labels, {} per round, budget {}, K = {}, backend {backend}\n\n",
        args.seeds,
        args.initial_per_class * 10,
        args.acquire,
        args.budget,
        args.k
    );
    s.push_str("| strategy | labels to 90% (median) | labels to 95% (median) | final accuracy (mean) | s per round: inference + acquisition (mean) |\n");
    s.push_str("| --- | --- | --- | --- | --- |\n");
    for &strategy in &args.strategies {
        let mine: Vec<&Curve> = curves.iter().filter(|c| c.strategy == strategy).collect();
        let fmt = |m: Option<f64>| {
            m.map_or(format!("not reached (> {})", args.budget), |x| {
                format!("{x:.0}")
            })
        };
        let reach = |t: f64| median(mine.iter().map(|c| labels_to_reach(&c.points, t)).collect());
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
            "| {} | {} | {} | {:.4} | {:.3} |",
            strategy.name(),
            fmt(reach(0.90)),
            fmt(reach(0.95)),
            mean(&finals),
            mean(&times)
        );
    }
    s
}

/// Runs `bald experiment`: writes the outputs and returns the table.
pub fn run(args: &ExperimentArgs) -> Result<String, String> {
    if args.acquire == 0 || args.k == 0 || args.seeds == 0 || args.strategies.is_empty() {
        return Err("--acquire, --k, --seeds and --strategies must be positive".into());
    }
    let (data, name) = match &args.mnist_dir {
        Some(dir) => (
            data::from_dir(dir)?,
            format!("MNIST from {}", dir.display()),
        ),
        None => (data::embedded()?, "MNIST-5k".to_string()),
    };
    let name = if args.repeated > 1 {
        format!("Repeated-{name} (R = {})", args.repeated)
    } else {
        name
    };
    let (curves, backend) = dispatch(args.backend, Job { args, data: &data })?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut csv = String::from("strategy,seed,labels,accuracy\n");
    for c in &curves {
        for (labels, acc) in &c.points {
            let _ = writeln!(csv, "{},{},{labels},{acc}", c.strategy.name(), c.seed);
        }
    }
    // Mean curve over seeds per strategy for the plot.
    let series: Vec<plot::Series> = args
        .strategies
        .iter()
        .map(|&s| {
            let mine: Vec<&Curve> = curves.iter().filter(|c| c.strategy == s).collect();
            let len = mine.iter().map(|c| c.points.len()).min().unwrap_or(0);
            let points = (0..len)
                .map(|i| {
                    let x = mine[0].points[i].0 as f64;
                    let y = mine.iter().map(|c| c.points[i].1).sum::<f64>() / mine.len() as f64;
                    (x, y)
                })
                .collect();
            plot::Series {
                name: s.name().to_string(),
                points,
            }
        })
        .collect();
    let svg = plot::svg(
        &format!("{name}: test accuracy (mean of {} seed(s))", args.seeds),
        "labelled points",
        "test accuracy",
        &series,
    );
    let table = table(args, &curves, backend, &name);
    let out = |f: &str| args.out.join(f);
    crate::acquire::write_atomically(&out("curves.csv"), csv.as_bytes())?;
    crate::acquire::write_atomically(&out("curves.svg"), svg.as_bytes())?;
    crate::acquire::write_atomically(&out("table.md"), table.as_bytes())?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn embedded_mnist_is_balanced_and_splits_are_disjoint() {
        let d = data::embedded().unwrap();
        assert_eq!((d.len(), d.dim), (5000, 784));
        for class in 0..10u8 {
            assert_eq!(d.y.iter().filter(|&&l| l == class).count(), 500);
        }
        let s = data::split(&d, 3, 100, 100, 2).unwrap();
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
}
