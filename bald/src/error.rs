//! One error type for the crate, its hints, and how messages name arguments.

use std::fmt;
use std::path::PathBuf;

use bald_core::{Plain, Shape};

use crate::pool::{InputKind, Values};

/// How a message names an argument: as Rust code sets it (`layout = knc`), as the CLI spells it
/// (`--layout knc`) or as Python does (`layout='knc'`). The CLI and the Python package show
/// this crate's messages in their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spelling {
    /// `name = value`, `name` in snake case (what [`fmt::Display`] gives).
    #[default]
    Rust,
    /// `--name value`.
    Cli,
    /// `name='value'` (`name=value` for numbers).
    Python,
}

impl Spelling {
    /// The argument `name` (spelt as the CLI does, with `-`) set to the word `value`.
    pub fn arg(self, name: &str, value: &str) -> String {
        match self {
            Spelling::Rust => format!("{} = {value}", name.replace('-', "_")),
            Spelling::Cli => format!("--{name} {value}"),
            Spelling::Python => format!("{}='{value}'", name.replace('-', "_")),
        }
    }

    /// The argument `name` set to the number `value`.
    pub fn num(self, name: &str, value: usize) -> String {
        match self {
            Spelling::Rust => format!("{} = {value}", name.replace('-', "_")),
            Spelling::Cli => format!("--{name} {value}"),
            Spelling::Python => format!("{}={value}", name.replace('-', "_")),
        }
    }

    /// The argument `name` alone.
    pub fn name(self, name: &str) -> String {
        match self {
            Spelling::Cli => format!("--{name}"),
            Spelling::Rust | Spelling::Python => name.replace('-', "_"),
        }
    }
}

/// What invalid values look like, read from the offending row: the input kind to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Log-probs whose row is in [0, 1] and sums to 1: probabilities ([`InputKind::Probs`]).
    LooksLikeProbs,
    /// Log-probs close to normalised, as log-softmax computed in low precision (float16) is:
    /// [`InputKind::Logits`] renormalises them.
    NearlyNormalised,
    /// Log-probs far from normalised: raw logits, or probabilities.
    MaybeLogits,
    /// Probabilities that do not sum to 1: logits, or log-probs.
    ProbsMaybeLogits,
    /// Negative probabilities: log-probs, or logits.
    Negative,
    /// Probabilities above 1: logits.
    AboveOne,
}

impl Hint {
    /// The input kind the hint suggests first.
    pub fn kind(self) -> InputKind {
        match self {
            Hint::LooksLikeProbs => InputKind::Probs,
            Hint::Negative => InputKind::LogProbs,
            Hint::NearlyNormalised
            | Hint::MaybeLogits
            | Hint::ProbsMaybeLogits
            | Hint::AboveOne => InputKind::Logits,
        }
    }

    /// The hint for `e`, an error of the values `data` (N x K x C, of `shape`, given as
    /// `kind`), read from its offending row; `None` when there is none to give.
    pub fn for_error(
        e: &bald_core::Error,
        data: Values<'_>,
        shape: Shape,
        kind: InputKind,
    ) -> Option<Hint> {
        let row = |n: usize, k: usize| data.row((n * shape.k + k) * shape.c, shape.c);
        match (e, kind) {
            (bald_core::Error::NotNormalised { n, k, log_sum, .. }, InputKind::LogProbs) => {
                let r = row(*n, *k);
                let sum: f64 = r.iter().sum();
                Some(
                    if r.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() < 0.05 {
                        Hint::LooksLikeProbs
                    } else if log_sum.abs() < 0.05 {
                        Hint::NearlyNormalised
                    } else {
                        Hint::MaybeLogits
                    },
                )
            }
            (bald_core::Error::NotNormalised { .. }, InputKind::Probs) => {
                Some(Hint::ProbsMaybeLogits)
            }
            (bald_core::Error::ProbabilityOutOfRange { value, .. }, InputKind::Probs) => {
                Some(if *value < 0.0 {
                    Hint::Negative
                } else {
                    Hint::AboveOne
                })
            }
            _ => None,
        }
    }

    /// The hint as a sentence, naming the argument as `spelling` writes it.
    pub fn message(self, spelling: Spelling) -> String {
        let kind = |k: InputKind| spelling.arg("input-kind", k.name());
        let (logits, probs, log_probs) = (
            kind(InputKind::Logits),
            kind(InputKind::Probs),
            kind(InputKind::LogProbs),
        );
        match self {
            Hint::LooksLikeProbs => format!("These look like probabilities: pass {probs}"),
            Hint::NearlyNormalised => format!(
                "Close to normalised, as log-softmax computed in low precision (float16) is: \
                 pass {logits}, which renormalises"
            ),
            Hint::MaybeLogits => {
                format!("If these are raw logits, pass {logits} (probabilities: {probs})")
            }
            Hint::ProbsMaybeLogits => {
                format!("If these are logits, pass {logits}; log-probs: {log_probs}")
            }
            Hint::Negative => format!(
                "Negative values: if these are log-probs, pass {log_probs}; logits: {logits}"
            ),
            Hint::AboveOne => format!("If these are logits, pass {logits}"),
        }
    }
}

/// An argument out of its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Argument {
    /// A strategy or score that measures disagreement between MC samples, on a pool of K = 1.
    NeedsTwoSamples {
        /// Whether it is a strategy (else a score).
        strategy: bool,
        /// Its name.
        name: &'static str,
    },
    /// PowerBALD's beta negative or not finite.
    Beta(f64),
    /// BatchBALD's `num_samples` of 0.
    NoSamples,
    /// An excluded index not below N.
    ExcludeOutOfRange {
        /// The index.
        index: usize,
        /// Points in the pool.
        n: usize,
    },
    /// An index excluded twice.
    ExcludedTwice(usize),
    /// An EPIG strategy without targets.
    NeedsTargets {
        /// The strategy's name.
        name: &'static str,
    },
    /// A strategy that a shard cannot rank its part of.
    NotAcrossShards {
        /// The strategy's name.
        name: &'static str,
    },
    /// Targets for a strategy that does not use them.
    UnusedTargets {
        /// The strategy's name.
        name: &'static str,
    },
}

impl Argument {
    fn message(&self, spelling: Spelling) -> String {
        match *self {
            Argument::NeedsTwoSamples {
                strategy: true,
                name,
            } => format!(
                "{} needs K >= 2 MC samples per point (the pool has K = 1): it measures \
                 disagreement between samples",
                spelling.arg("strategy", name)
            ),
            Argument::NeedsTwoSamples {
                strategy: false,
                name,
            } => format!(
                "{} needs K >= 2 MC samples per point (the pool has K = 1)",
                spelling.arg("score", name)
            ),
            Argument::Beta(beta) => format!(
                "{} must be finite and >= 0, not {}",
                spelling.name("beta"),
                Plain(beta)
            ),
            Argument::NoSamples => format!(
                "{} must be at least 1 for BatchBALD",
                spelling.name("num-samples")
            ),
            Argument::ExcludeOutOfRange { index, n } => format!(
                "{}: index {index} is out of range for a pool of {n} points",
                spelling.name("exclude")
            ),
            Argument::ExcludedTwice(index) => {
                format!("{}: index {index} is given twice", spelling.name("exclude"))
            }
            Argument::NeedsTargets { name } => format!(
                "{} needs {}: the predictions (M x K x C, from the same K posterior samples as \
                 the pool) on inputs drawn from the distribution the model will be asked about",
                spelling.arg("strategy", name),
                spelling.name("targets")
            ),
            Argument::NotAcrossShards { name } => format!(
                "{} is not a shard's ranking: {}",
                spelling.arg("strategy", name),
                if name == "batchbald" {
                    "its greedy steps run on bald::shard's shards"
                } else if name == "batch-epig" {
                    "its greedy steps need the whole pool in one process; use bald.acquire, or \
                     epig across shards"
                } else {
                    "its probabilities follow each point's rank among the whole pool's scores, \
                     which the shards do not gather"
                }
            ),
            Argument::UnusedTargets { name } => format!(
                "{} are for the EPIG strategies, not {}",
                spelling.name("targets"),
                spelling.arg("strategy", name)
            ),
        }
    }
}

/// Everything that can go wrong, as data: the CLI and the Python package turn it into their
/// messages with [`Error::message`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Invalid values or shape: bald-core's error, with the first offending (n, k, c), and what
    /// the values look like when that suggests a fix.
    Input {
        /// What is wrong.
        error: bald_core::Error,
        /// The input kind to try, read from the offending row.
        hint: Option<Hint>,
    },
    /// An argument out of its range.
    Argument(Argument),
    /// An array of other than three dimensions, N x K x C: its shape.
    Dimensions(Vec<usize>),
    /// A file that cannot be read, or is not an array this crate reads.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The values of the pool in `path` are invalid.
    InFile {
        /// The file.
        path: PathBuf,
        /// The error ([`Error::Input`]).
        error: Box<Error>,
    },
    /// The device asked for is not available (no GPU, or a feature left out of the build).
    Unavailable {
        /// The device, by name (`cuda`, `cpu`).
        device: &'static str,
        /// Why.
        reason: String,
    },
    /// The backend failed while it ran.
    Backend(String),
    /// The pick callback stopped BatchBALD's greedy steps.
    Stopped,
}

impl Error {
    /// This error of a shard whose first point is the whole pool's `offset`, its point indices
    /// made the whole pool's: the error the whole pool gives.
    pub fn at_offset(self, offset: usize) -> Error {
        use bald_core::Error as E;
        let shift = |e: E| match e {
            E::NotANumber { n, k, c } => E::NotANumber {
                n: n + offset,
                k,
                c,
            },
            E::Infinite { n, k, c } => E::Infinite {
                n: n + offset,
                k,
                c,
            },
            E::ProbabilityOutOfRange { n, k, c, value } => E::ProbabilityOutOfRange {
                n: n + offset,
                k,
                c,
                value,
            },
            E::NotNormalised {
                n,
                k,
                log_sum,
                tolerance,
            } => E::NotNormalised {
                n: n + offset,
                k,
                log_sum,
                tolerance,
            },
            other => other,
        };
        match self {
            Error::Input { error, hint } => Error::Input {
                error: shift(error),
                hint,
            },
            other => other,
        }
    }

    /// The error as one line, naming arguments as `spelling` writes them.
    pub fn message(&self, spelling: Spelling) -> String {
        match self {
            Error::Input { error, hint: None } => error.to_string(),
            Error::Input {
                error,
                hint: Some(h),
            } => format!("{error}. {}", h.message(spelling)),
            Error::Argument(a) => a.message(spelling),
            Error::Dimensions(shape) => {
                format!("expected a 3-d array N x K x C, got shape {shape:?}")
            }
            Error::File { path, reason } => format!("{}: {reason}", path.display()),
            Error::InFile { path, error } => {
                format!("{}: {}", path.display(), error.message(spelling))
            }
            Error::Unavailable { device, reason } => {
                format!("{}: {reason}", spelling.arg("backend", device))
            }
            Error::Backend(e) => e.clone(),
            Error::Stopped => "stopped between greedy steps".into(),
        }
    }

    /// The hint, for an input error that has one.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Input { hint, .. } => *hint,
            Error::InFile { error, .. } => error.hint(),
            _ => None,
        }
    }

    /// Whether the input (values, shape, a file or an argument) is at fault, not the backend.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Error::Input { .. }
                | Error::Argument(_)
                | Error::Dimensions(_)
                | Error::File { .. }
                | Error::InFile { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Spelling::Rust))
    }
}

impl std::error::Error for Error {}

impl From<bald_core::Error> for Error {
    fn from(error: bald_core::Error) -> Error {
        Error::Input { error, hint: None }
    }
}

impl From<Argument> for Error {
    fn from(a: Argument) -> Error {
        Error::Argument(a)
    }
}

/// The result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
