//! `bald acquire`: one acquisition strategy on a pool read from `.npy`, a thin client of the
//! `bald` crate.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bald::npy::{self, NpyData};
use bald::{
    Acquisition, Device, Greedy, InputKind, Kind, Layout, Options, PastLimit, Pick, Pool,
    PoolOptions, Settings, Spelling, Strategy, Warning,
};
use bald_core::Plain;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::args::{self, check_writable, count, non_negative, write_atomically};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object.
    Json,
    /// A header and one line per pick: rank,index,score.
    Csv,
}

/// `bald acquire` arguments.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// The pool: a .npy array of N x K x C (or see --layout) MC-dropout predictions, float16,
    /// float32 or float64.
    pub input: PathBuf,
    /// What the array holds.
    #[arg(long, default_value = "log-probs", value_parser = args::input_kind())]
    pub input_kind: InputKind,
    /// The order of the array's axes (N points, K MC samples, C classes). knc is what
    /// torch.stack(samples) gives, nck is baal's; both are copied once into nkc.
    #[arg(long, default_value = "nkc", value_parser = args::layout())]
    pub layout: Layout,
    /// The acquisition strategy.
    #[arg(long, default_value = "batchbald", value_parser = args::strategy())]
    pub strategy: Kind,
    /// Points to pick (more than the candidates: all of them; 0: an empty batch).
    #[arg(long, default_value = "10", value_parser = count, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// BatchBALD: exact joint entropy while C^t <= this, sampled with this many
    /// configurations beyond (at least K: one per MC sample). batch-epig: the targets' joint
    /// (M targets) is exact while C^t M C <= this, sampled with at most this many rows beyond.
    #[arg(long, default_value = "10000", value_parser = count, allow_negative_numbers = true)]
    pub num_samples: usize,
    /// BatchBALD's greedy steps.
    #[arg(long, default_value = "lazy", value_parser = args::greedy())]
    pub greedy: Greedy,
    /// BatchBALD past its information limit: once the cumulative score reaches ln K, the most
    /// that K MC samples can tell (at K = 20 often within 5 to 20 picks), later greedy
    /// picks are noise, and each still evaluates the candidates. power-bald draws the rest of
    /// the batch by PowerBALD (--beta) among the remaining points, stop ends the batch there,
    /// continue keeps the greedy going. A warning is given at that pick.
    #[arg(long, default_value = "power-bald", value_parser = args::past_limit())]
    pub past_limit: PastLimit,
    /// EPIG's targets: a .npy of M x K x C predictions (in --layout, holding --input-kind) on
    /// inputs drawn from the distribution the model will be asked about, from the same K MC
    /// samples (the same dropout masks) as the pool. The EPIG strategies need it.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// The stochastic strategies (power-bald, softmax-epig, ...): inverse temperature
    /// beta >= 0 (0: uniform, large: top-k).
    #[arg(long, default_value = "1", value_parser = non_negative, allow_negative_numbers = true)]
    pub beta: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to compute.
    #[arg(long, default_value = "auto", value_parser = args::backend())]
    pub backend: Device,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write here (whole or not at all) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write every point's score here as a float64 .npy of N (BALD for BatchBALD and
    /// the stochastic BALD batches, EPIG for the EPIG strategies, the random keys for
    /// random).
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

impl AcquireArgs {
    /// The strategy, with the parameters it uses.
    pub fn strategy(&self) -> Strategy {
        Strategy::new(
            self.strategy,
            Settings {
                batch_size: self.batch_size,
                num_samples: self.num_samples,
                beta: self.beta,
                seed: self.seed,
                greedy: self.greedy,
                past_limit: self.past_limit,
            },
        )
    }
}

/// Runs `bald acquire`; returns the text written (to stdout when no `--output`).
pub fn command(args: &AcquireArgs) -> Result<String, String> {
    let path = &args.input;
    let text = |e: bald::Error| e.message(Spelling::Cli);
    // The outputs first: a long acquisition must not fail at its end.
    if let Some(out) = &args.output {
        check_writable(out, "--output")?;
    }
    if let Some(out) = &args.all_scores {
        check_writable(out, "--all-scores")?;
    }
    let read_start = Instant::now();
    let array = bald::read_npy(path).map_err(text)?;
    let read_seconds = read_start.elapsed().as_secs_f64();
    let in_file = |e: bald::Error| {
        text(bald::Error::InFile {
            path: path.clone(),
            error: Box::new(e),
        })
    };
    let dims: [usize; 3] = array.shape[..]
        .try_into()
        .map_err(|_| in_file(bald::Error::Dimensions(array.shape.clone())))?;
    let shape = args.layout.shape(dims);
    let strategy = args.strategy();
    // The arguments before the values are read through: an error now, not after validation.
    let exclude = match &args.exclude {
        Some(p) => read_exclude(p)?,
        None => Vec::new(),
    };
    let targets = match &args.targets {
        Some(p) => {
            let array = bald::read_npy(p).map_err(text)?;
            let in_targets = |e: bald::Error| {
                text(bald::Error::InFile {
                    path: p.clone(),
                    error: Box::new(e),
                })
            };
            let dims: [usize; 3] = array.shape[..]
                .try_into()
                .map_err(|_| in_targets(bald::Error::Dimensions(array.shape.clone())))?;
            Some((array, args.layout.shape(dims), in_targets))
        }
        None => None,
    };
    bald::check(&strategy, shape, &[], targets.as_ref().map(|t| t.1)).map_err(text)?;
    if let Some(p) = &args.exclude {
        bald::check_exclude(&exclude, shape.n)
            .map_err(|e| format!("{} (in {})", text(e), p.display()))?;
    }
    let prepare_start = Instant::now();
    let options = PoolOptions {
        kind: args.input_kind,
        layout: args.layout,
    };
    let pool = Pool::from_array(array, options).map_err(in_file)?;
    let targets = match targets {
        Some((array, _, in_targets)) => Some(Pool::from_array(array, options).map_err(in_targets)?),
        None => None,
    };
    let prepare_seconds = prepare_start.elapsed().as_secs_f64();
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
    let options = Options {
        exclude: &exclude,
        on_pick: Some(&mut on_pick),
        on_warning: Some(&mut on_warning),
        all_scores: args.all_scores.is_some(),
        targets: targets.as_ref(),
    };
    let acquired = bald::acquire_with(&pool, strategy, args.backend, options);
    if let Some(bar) = bar.take() {
        bar.finish_and_clear();
    }
    let mut acquired = acquired.map_err(|e| if e.is_input() { in_file(e) } else { text(e) })?;
    let report = Report {
        args,
        pool: &pool,
        read_seconds,
        prepare_seconds,
        excluded: exclude.len(),
        targets: targets.as_ref(),
        acquired: &acquired,
    };
    let text = report.render();
    if let (Some(out), Some(all)) = (&args.all_scores, acquired.point_scores.take()) {
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

/// Reads `--exclude`: a `.npy` of integers or text.
fn read_exclude(path: &Path) -> Result<Vec<usize>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("--exclude {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
    if bytes.starts_with(b"\x93NUMPY") {
        return npy::parse_indices(&bytes).map_err(|e| fail(&e));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(&"neither .npy nor text"))?;
    text.split(|ch: char| ch == ',' || ch.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| fail(&format!("'{t}' is not a pool index")))
        })
        .collect()
}

/// Everything the output reports beside the batch.
struct Report<'a> {
    args: &'a AcquireArgs,
    pool: &'a Pool<'a>,
    read_seconds: f64,
    prepare_seconds: f64,
    excluded: usize,
    /// EPIG's targets.
    targets: Option<&'a Pool<'a>>,
    /// The batch, and BatchBALD's record of it.
    acquired: &'a Acquisition,
}

impl Report<'_> {
    /// The output document.
    fn render(&self) -> String {
        let a = self.args;
        let acquired = self.acquired;
        let shape = self.pool.shape();
        match a.format {
            Format::Json => {
                let mut doc = json!({
                    "indices": acquired.indices,
                    "scores": acquired.scores,
                    "strategy": a.strategy.name(),
                    "backend": acquired.backend,
                    "seconds": acquired.seconds,
                    "read_seconds": self.read_seconds,
                    "prepare_seconds": self.prepare_seconds,
                    "n": shape.n,
                    "k": shape.k,
                    "c": shape.c,
                    "batch_size": a.batch_size,
                    "seed": a.seed,
                    "input_kind": a.input_kind.name(),
                    "layout": a.layout.name(),
                    "excluded": self.excluded,
                });
                if a.strategy == Kind::BatchBald {
                    let regimes: Vec<&str> = acquired.regimes.iter().map(|r| r.name()).collect();
                    doc["num_samples"] = json!(a.num_samples);
                    doc["regimes"] = json!(regimes);
                    doc["standard_errors"] = json!(acquired.standard_errors);
                    doc["greedy"] = json!(a.greedy.name());
                    doc["evaluations"] = json!(acquired.evaluations);
                    doc["information_limit"] = json!({
                        "ln_k": (shape.k as f64).ln(),
                        "reached_at_pick": acquired.information_limit,
                    });
                    doc["past_limit"] = json!({
                        "mode": a.past_limit.name(),
                        "switched_after_pick": acquired.switched_at,
                    });
                }
                if a.strategy == Kind::BatchEpig {
                    let regimes: Vec<&str> = acquired.regimes.iter().map(|r| r.name()).collect();
                    doc["num_samples"] = json!(a.num_samples);
                    doc["regimes"] = json!(regimes);
                    doc["evaluations"] = json!(acquired.evaluations);
                }
                if a.strategy.stochastic().is_some() {
                    doc["beta"] = json!(a.beta);
                }
                if let Some(t) = &self.targets {
                    doc["targets"] = json!(t.shape().n);
                }
                format!("{doc}\n")
            }
            Format::Csv => {
                let mut s = String::from("rank,index,score\n");
                for (rank, (i, v)) in acquired.indices.iter().zip(&acquired.scores).enumerate() {
                    s.push_str(&format!("{rank},{i},{v}\n"));
                }
                s
            }
        }
    }
}
