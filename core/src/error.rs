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
    /// A greedy acquisition stopped by its caller ([`crate::Hooks::on_pick`]) after `picks`
    /// picks.
    Interrupted {
        /// Picks made before the stop.
        picks: usize,
    },
    /// EPIG's targets have other K or C than the pool (they must come from the same K
    /// posterior samples, over the same classes).
    TargetsMismatch {
        /// The pool's points, MC samples and classes.
        pool: (usize, usize, usize),
        /// The targets'.
        targets: (usize, usize, usize),
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
                "probability {} outside [0, 1] at point {n}, sample {k}, class {c}",
                Plain(*value)
            ),
            Error::NotNormalised {
                n,
                k,
                log_sum,
                tolerance,
            } => write!(
                f,
                "row at point {n}, sample {k} does not normalise: log sum exp = {} \
                 (tolerance {})",
                Plain(*log_sum),
                Plain(*tolerance)
            ),
            Error::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter {name}: {reason}")
            }
            Error::Interrupted { picks } => {
                write!(f, "interrupted after {picks} pick(s)")
            }
            Error::TargetsMismatch { pool, targets } => write!(
                f,
                "the targets are {} x {} x {} (M x K x C) and the pool is {} x {} x {} \
                 (N x K x C): they need the same K MC samples and C classes",
                targets.0, targets.1, targets.2, pool.0, pool.1, pool.2
            ),
            Error::IndexOutOfRange { index, len } => {
                write!(f, "index {index} out of range for a pool of {len} points")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// A number as people write it: five significant digits without an exponent from 1e-4 to 1e9
/// (`3.2248`, `0.0001`, `-0.5`), scientific beyond (`2.5e-7`); `inf`, `-inf`, `NaN` as such.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plain(pub f64);

impl fmt::Display for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        let a = x.abs();
        if !x.is_finite() || a == 0.0 {
            return write!(f, "{}", if a == 0.0 { 0.0 } else { x });
        }
        if !(1e-4..1e9).contains(&a) {
            let mut buf = Buf::default();
            fmt::write(&mut buf, format_args!("{x:.4e}")).map_err(|_| fmt::Error)?;
            // 2.5000e-7 -> 2.5e-7
            let text = buf.text();
            let (mantissa, exponent) = text.split_at(text.find('e').unwrap_or(text.len()));
            return write!(f, "{}{exponent}", trim_zeros(mantissa));
        }
        let digits = 4 - libm::floor(libm::log10(a)) as i32;
        let decimals = usize::try_from(digits.max(0)).unwrap_or(0);
        let mut buf = Buf::default();
        fmt::write(&mut buf, format_args!("{x:.decimals$}")).map_err(|_| fmt::Error)?;
        f.write_str(trim_zeros(buf.text()))
    }
}

/// `1.2500` -> `1.25`, `3.000` -> `3`; text without a point is left alone.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A small stack buffer for [`Plain`] (a formatted f64 with at most 13 decimals fits).
struct Buf {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Buf {
    fn text(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

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

/// [`Error::ShapeMismatch`] unless a buffer of `actual` elements holds the `need` it is asked
/// for (workspaces and outputs may be longer than needed).
pub(crate) fn check_at_least(what: &'static str, need: usize, actual: usize) -> Result<(), Error> {
    if actual < need {
        return Err(Error::ShapeMismatch {
            what,
            expected: need,
            actual,
        });
    }
    Ok(())
}

/// `a * b`, or [`Error::ShapeOverflow`].
pub(crate) fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::ShapeOverflow)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::Plain;
    use std::string::ToString;

    #[test]
    fn numbers_are_written_plainly() {
        let cases = [
            (3.224768906365944, "3.2248"),
            (1e-4, "0.0001"),
            (-0.5, "-0.5"),
            (2.0, "2"),
            (123456.0, "123456"),
            (0.012345678, "0.012346"),
            (2.5e-7, "2.5e-7"),
            (3e12, "3e12"),
            (0.0, "0"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(Plain(x).to_string(), want, "{x}");
        }
    }
}
