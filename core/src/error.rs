//! The one error type of bald-core.

use core::fmt;

/// Everything that can go wrong in bald-core, each with the position or value that caused it.
///
/// Every public entry point returns `Result<_, Error>`: bad input never panics and never
/// yields a silent NaN.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// One of the dimensions N (pool points), K (MC samples) or C (classes) is zero.
    EmptyDimension {
        /// Which dimension: `"N"`, `"K"` or `"C"` (or a layer width for a head).
        dim: &'static str,
    },
    /// A buffer's length does not match the shape it was given with.
    ShapeMismatch {
        /// What the buffer is (`"log_probs"`, `"out"`, `"workspace"`, ...).
        what: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length passed.
        actual: usize,
    },
    /// A shape whose element count overflows `usize`.
    ShapeOverflow,
    /// A NaN in the input, at pool point `n`, sample `k`, class `c`.
    NotANumber {
        /// Pool point.
        n: usize,
        /// MC sample.
        k: usize,
        /// Class.
        c: usize,
    },
    /// A `+inf` log-probability or logit (or an infinite probability), at (`n`, `k`, `c`).
    Infinite {
        /// Pool point.
        n: usize,
        /// MC sample.
        k: usize,
        /// Class.
        c: usize,
    },
    /// A probability outside [0, 1], at (`n`, `k`, `c`).
    ProbabilityOutOfRange {
        /// Pool point.
        n: usize,
        /// MC sample.
        k: usize,
        /// Class.
        c: usize,
        /// The offending value.
        value: f64,
    },
    /// The row (`n`, `k`) does not normalise: its log-sum-exp over classes is `log_sum`
    /// (0 expected), beyond the tolerance `tolerance` of the input type.
    NotNormalised {
        /// Pool point.
        n: usize,
        /// MC sample.
        k: usize,
        /// log sum_c p(c) of the row (`-inf` when every class has probability 0).
        log_sum: f64,
        /// The tolerance that was exceeded.
        tolerance: f64,
    },
    /// A parameter outside its domain (a temperature that is negative, a dropout rate of 1, ...).
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A pool index that does not exist.
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// The pool size.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyDimension { dim } => write!(f, "dimension {dim} is zero"),
            Error::ShapeMismatch {
                what,
                expected,
                actual,
            } => write!(
                f,
                "{what} has length {actual}, but its shape needs {expected}"
            ),
            Error::ShapeOverflow => write!(f, "shape is too large: element count overflows usize"),
            Error::NotANumber { n, k, c } => {
                write!(f, "NaN in the input at point {n}, sample {k}, class {c}")
            }
            Error::Infinite { n, k, c } => {
                write!(f, "+inf in the input at point {n}, sample {k}, class {c}")
            }
            Error::ProbabilityOutOfRange { n, k, c, value } => write!(
                f,
                "probability {value} outside [0, 1] at point {n}, sample {k}, class {c}"
            ),
            Error::NotNormalised {
                n,
                k,
                log_sum,
                tolerance,
            } => write!(
                f,
                "row at point {n}, sample {k} does not normalise: log sum exp = {log_sum:e} \
                 (tolerance {tolerance:e})"
            ),
            Error::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter {name}: {reason}")
            }
            Error::IndexOutOfRange { index, len } => {
                write!(f, "index {index} out of range for a pool of {len} points")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Checks that a buffer has the length its shape requires.
pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected,
            actual,
        })
    }
}

/// `a * b`, or [`Error::ShapeOverflow`].
pub(crate) fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::ShapeOverflow)
}
