//! `bald acquire`: one acquisition strategy on a pool read from `.npy`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bald_core::half::f16;
use bald_core::owned::{
    batchbald, log_probs_from_logits, log_probs_from_probs, random_batch, scores, stochastic_batch,
    top_k_of, Batch,
};
use bald_core::{
    Backend, BatchBald, Element, PointScore, Shape, StdKind, StochasticBatch, StochasticMode,
};
use clap::{Args, ValueEnum};

use crate::backends::{dispatch, BackendChoice, OnBackend};
use crate::npy::{self, NpyData};

/// An acquisition strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
}

/// What the input array holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    /// Log-probabilities (rows log-sum-exp to 0).
    LogProbs,
    /// Probabilities (rows sum to 1).
    Probs,
    /// Unnormalised logits (log_softmax is applied).
    Logits,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object.
    Json,
    /// A header and one line per pick: rank,index,score.
    Csv,
}

/// Parameters of one acquisition.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// The strategy.
    pub strategy: Strategy,
    /// Points to pick (clamped to N).
    pub batch_size: usize,
    /// BatchBALD's exact/sampled switch and sample count.
    pub num_samples: usize,
    /// PowerBALD's inverse temperature.
    pub beta: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// Runs `params` on a prepared pool with `backend`.
pub fn acquire_on<'a, B: Backend, T: Element + 'a>(
    backend: &B,
    pool: &B::Pool<'a, T>,
    params: Params,
) -> Result<Batch, String> {
    let n = bald_core::PreparedPool::log_probs(pool).shape().n;
    let e = |e: B::Error| e.to_string();
    let ranked = |score: PointScore| -> Result<Batch, String> {
        Ok(top_k_of(
            &scores(backend, pool, score).map_err(e)?,
            params.batch_size,
        ))
    };
    match params.strategy {
        Strategy::Random => Ok(random_batch(n, params.batch_size, params.seed)),
        Strategy::Entropy => ranked(PointScore::Entropy),
        Strategy::Bald => ranked(PointScore::Bald),
        Strategy::VarRatios => ranked(PointScore::VariationRatios),
        Strategy::VarRatiosMode => ranked(PointScore::VariationRatiosMode),
        Strategy::MeanStd => ranked(PointScore::MeanStd(StdKind::Population)),
        Strategy::Margin => ranked(PointScore::Margin),
        Strategy::LeastConfidence => ranked(PointScore::LeastConfidence),
        Strategy::Batchbald => {
            let params = BatchBald {
                batch_size: params.batch_size,
                num_samples: params.num_samples,
                seed: params.seed,
            };
            batchbald(backend, pool, params).map_err(e)
        }
        Strategy::PowerBald => {
            let bald = scores(backend, pool, PointScore::Bald).map_err(e)?;
            let stochastic = StochasticBatch {
                mode: StochasticMode::Power,
                beta: params.beta,
                batch_size: params.batch_size,
                seed: params.seed,
            };
            stochastic_batch(stochastic, &bald).map_err(|e| e.to_string())
        }
    }
}

/// `bald acquire` arguments.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// The pool: a .npy array of shape N x K x C (float16, float32 or float64).
    pub input: PathBuf,
    /// What the array holds.
    #[arg(long, value_enum, default_value_t = InputKind::LogProbs)]
    pub input_kind: InputKind,
    /// The acquisition strategy.
    #[arg(long, value_enum, default_value_t = Strategy::Batchbald)]
    pub strategy: Strategy,
    /// Points to pick (larger than the pool: the whole pool; 0: an empty batch).
    #[arg(long, default_value_t = 10)]
    pub batch_size: usize,
    /// BatchBALD: exact joint entropy while C^t <= this, sampled with this many configurations beyond.
    #[arg(long, default_value_t = 10_000)]
    pub num_samples: usize,
    /// PowerBALD: inverse temperature beta (0: uniform, large: top-k).
    #[arg(long, default_value_t = 1.0)]
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
}

struct Job<'d, T> {
    data: &'d [T],
    shape: Shape,
    kind: InputKind,
    params: Params,
}

impl<T: Element> OnBackend for Job<'_, T> {
    type Out = (Batch, f64);

    fn run<B: Backend>(self, backend: &B) -> Result<(Batch, f64), String> {
        let start = Instant::now();
        let converted;
        let data = match self.kind {
            InputKind::LogProbs => self.data,
            InputKind::Probs => {
                converted =
                    log_probs_from_probs(self.data, self.shape).map_err(|e| e.to_string())?;
                &converted[..]
            }
            InputKind::Logits => {
                converted =
                    log_probs_from_logits(self.data, self.shape).map_err(|e| e.to_string())?;
                &converted[..]
            }
        };
        let lp = backend
            .validate(data, self.shape)
            .map_err(|e| e.to_string())?;
        let pool = backend.prepare(lp).map_err(|e| e.to_string())?;
        let batch = acquire_on(backend, &pool, self.params)?;
        Ok((batch, start.elapsed().as_secs_f64()))
    }
}

/// Runs `bald acquire`; returns the text written (to stdout when no `--output`).
pub fn run(args: &AcquireArgs) -> Result<String, String> {
    let path = &args.input;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let array = npy::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let [n, k, c] = array.shape[..] else {
        return Err(format!(
            "{}: expected a 3-d array N x K x C, got shape {:?}",
            path.display(),
            array.shape
        ));
    };
    let shape = Shape::new(n, k, c);
    let params = Params {
        strategy: args.strategy,
        batch_size: args.batch_size,
        num_samples: args.num_samples,
        beta: args.beta,
        seed: args.seed,
    };
    let in_file = |e: String| format!("{}: {e}", path.display());
    // A spinner on stderr while the acquisition runs (hidden when stderr is not a terminal).
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("{} on {n} x {k} x {c}", args.strategy.name()));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let result = match &array.data {
        NpyData::F16(v) => dispatch(args.backend, job::<f16>(v, shape, args.input_kind, params)),
        NpyData::F32(v) => dispatch(args.backend, job::<f32>(v, shape, args.input_kind, params)),
        NpyData::F64(v) => dispatch(args.backend, job::<f64>(v, shape, args.input_kind, params)),
    };
    spinner.finish_and_clear();
    let ((batch, seconds), backend) = result.map_err(in_file)?;
    let text = render(&batch, args.strategy, backend, seconds, args.format);
    if let Some(out) = &args.output {
        write_atomically(out, text.as_bytes())?;
    }
    Ok(text)
}

fn job<T>(data: &[T], shape: Shape, kind: InputKind, params: Params) -> Job<'_, T> {
    Job {
        data,
        shape,
        kind,
        params,
    }
}

/// The output document.
pub fn render(
    batch: &Batch,
    strategy: Strategy,
    backend: &str,
    seconds: f64,
    format: Format,
) -> String {
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "indices": batch.indices,
                "scores": batch.scores,
                "strategy": strategy.name(),
                "backend": backend,
                "seconds": seconds,
            });
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
