//! The validated input view: N x K x C log-probabilities.

use crate::element::Element;
use crate::error::{check_len, mul, Error};
use crate::math::log_sum_exp;

/// The shape of a pool of predictions: `n` pool points, `k` MC samples, `c` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Pool points.
    pub n: usize,
    /// Stochastic forward passes (MC-dropout samples) per point.
    pub k: usize,
    /// Classes.
    pub c: usize,
}

impl Shape {
    /// A shape; no check is made until it is used.
    pub const fn new(n: usize, k: usize, c: usize) -> Self {
        Shape { n, k, c }
    }

    /// `n * k * c`, or an error when a dimension is zero or the product overflows.
    pub fn elements(&self) -> Result<usize, Error> {
        for (dim, v) in [("N", self.n), ("K", self.k), ("C", self.c)] {
            if v == 0 {
                return Err(Error::EmptyDimension { dim });
            }
        }
        mul(mul(self.n, self.k)?, self.c)
    }
}

/// A row-major N x K x C slice of log-probabilities, validated.
///
/// Construction ([`LogProbs::new`]) checks that the length is N*K*C, that no dimension is zero,
/// that no value is NaN or `+inf`, and that every row (n, k) normalises:
/// `|log sum_c exp(lp[n,k,c])| <=` [`Element::NORM_TOLERANCE`]. `-inf` (probability 0) is valid.
#[derive(Debug, Clone, Copy)]
pub struct LogProbs<'a, T> {
    data: &'a [T],
    shape: Shape,
}

impl<'a, T: Element> LogProbs<'a, T> {
    /// Validates `data` as log-probabilities of `shape`.
    pub fn new(data: &'a [T], shape: Shape) -> Result<Self, Error> {
        check_len("log_probs", shape.elements()?, data.len())?;
        for (row_index, row) in data.chunks_exact(shape.c).enumerate() {
            let (n, k) = (row_index / shape.k, row_index % shape.k);
            reject_nan_and_inf(row, n, k)?;
            let log_sum = log_sum_exp(row.iter().map(|v| v.to_f64()));
            // A row of all -inf has log_sum = -inf and is refused here too.
            if log_sum.is_nan() || log_sum.abs() > T::NORM_TOLERANCE {
                return Err(Error::NotNormalised {
                    n,
                    k,
                    log_sum,
                    tolerance: T::NORM_TOLERANCE,
                });
            }
        }
        Ok(LogProbs { data, shape })
    }

    /// [`LogProbs::new`] with a faster check of the rows first (a backend's, vectorised and
    /// threaded): when `rows_ok` accepts, the view is made without the scalar row check; when
    /// it refuses, the scalar check runs and reports the exact error. `rows_ok` must accept only
    /// data that [`LogProbs::new`] accepts (it may refuse more, near the tolerance).
    pub fn new_with_fast_check(
        data: &'a [T],
        shape: Shape,
        rows_ok: impl FnOnce(&[T], Shape) -> bool,
    ) -> Result<Self, Error> {
        check_len("log_probs", shape.elements()?, data.len())?;
        if rows_ok(data, shape) {
            Ok(LogProbs { data, shape })
        } else {
            LogProbs::new(data, shape)
        }
    }

    /// Converts probabilities to log-probabilities in `buf` (N x K x C) and validates them.
    ///
    /// Each probability must be finite and in [0, 1] (up to the type's rounding:
    /// 1 + [`Element::NORM_TOLERANCE`] is accepted); 0 becomes `-inf`; rows must sum to 1
    /// within the tolerance.
    pub fn from_probs(probs: &[T], shape: Shape, buf: &'a mut [T]) -> Result<Self, Error> {
        check_len("probs", shape.elements()?, probs.len())?;
        check_len("out", probs.len(), buf.len())?;
        buf.copy_from_slice(probs);
        probs_to_log_probs(buf, shape)?;
        LogProbs::new(buf, shape)
    }

    /// Converts logits to log-probabilities in `buf` (log_softmax over classes).
    ///
    /// Logits must not be NaN or `+inf`; `-inf` is a class of probability 0, and a row of all
    /// `-inf` is refused as [`Error::NotNormalised`].
    pub fn from_logits(logits: &[T], shape: Shape, buf: &'a mut [T]) -> Result<Self, Error> {
        check_len("logits", shape.elements()?, logits.len())?;
        check_len("out", logits.len(), buf.len())?;
        buf.copy_from_slice(logits);
        logits_to_log_probs(buf, shape)?;
        LogProbs::new(buf, shape)
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The whole row-major buffer.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The K x C log-probs of pool point `n` (panics if `n >= N`; callers index validated points).
    pub fn point(&self, n: usize) -> &'a [T] {
        let stride = self.shape.k * self.shape.c;
        &self.data[n * stride..(n + 1) * stride]
    }

    /// A view of pool points `start..end` (panics if the range is out of bounds).
    pub fn slice_points(&self, start: usize, end: usize) -> LogProbs<'a, T> {
        let stride = self.shape.k * self.shape.c;
        LogProbs {
            data: &self.data[start * stride..end * stride],
            shape: Shape::new(end - start, self.shape.k, self.shape.c),
        }
    }
}

/// Replaces probabilities by their logarithms in place (see [`LogProbs::from_probs`]); rows are
/// not checked for normalisation here.
pub fn probs_to_log_probs<T: Element>(data: &mut [T], shape: Shape) -> Result<(), Error> {
    check_len("probs", shape.elements()?, data.len())?;
    for (i, v) in data.iter_mut().enumerate() {
        let (n, k, c) = unravel(shape, i);
        let p = v.to_f64();
        if p.is_nan() {
            return Err(Error::NotANumber { n, k, c });
        }
        if p.is_infinite() {
            return Err(Error::Infinite { n, k, c });
        }
        if !(0.0..=1.0 + T::NORM_TOLERANCE).contains(&p) {
            return Err(Error::ProbabilityOutOfRange { n, k, c, value: p });
        }
        *v = T::from_f64(libm::log(p));
    }
    Ok(())
}

/// Replaces logits by log_softmax over classes in place (see [`LogProbs::from_logits`]).
pub fn logits_to_log_probs<T: Element>(data: &mut [T], shape: Shape) -> Result<(), Error> {
    check_len("logits", shape.elements()?, data.len())?;
    for (row_index, row) in data.chunks_exact_mut(shape.c).enumerate() {
        let (n, k) = (row_index / shape.k, row_index % shape.k);
        reject_nan_and_inf(row, n, k)?;
        let lse = log_sum_exp(row.iter().map(|v| v.to_f64()));
        if lse == f64::NEG_INFINITY {
            return Err(Error::NotNormalised {
                n,
                k,
                log_sum: lse,
                tolerance: T::NORM_TOLERANCE,
            });
        }
        for v in row.iter_mut() {
            *v = T::from_f64(v.to_f64() - lse);
        }
    }
    Ok(())
}

/// The first NaN or `+inf` of row (n, k) as its error.
fn reject_nan_and_inf<T: Element>(row: &[T], n: usize, k: usize) -> Result<(), Error> {
    for (c, &v) in row.iter().enumerate() {
        let v = v.to_f64();
        if v.is_nan() {
            return Err(Error::NotANumber { n, k, c });
        }
        if v == f64::INFINITY {
            return Err(Error::Infinite { n, k, c });
        }
    }
    Ok(())
}

/// (n, k, c) of flat index `i`.
fn unravel(shape: Shape, i: usize) -> (usize, usize, usize) {
    let c = i % shape.c;
    let row = i / shape.c;
    (row / shape.k, row % shape.k, c)
}

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// [`LogProbs::from_probs`] into a new, validated `Vec`.
    pub fn log_probs_from_probs<T: Element>(probs: &[T], shape: Shape) -> Result<Vec<T>, Error> {
        let mut out = vec![T::from_f64(0.0); shape.elements()?];
        LogProbs::from_probs(probs, shape, &mut out)?;
        Ok(out)
    }

    /// [`LogProbs::from_logits`] into a new, validated `Vec`.
    pub fn log_probs_from_logits<T: Element>(logits: &[T], shape: Shape) -> Result<Vec<T>, Error> {
        let mut out = vec![T::from_f64(0.0); shape.elements()?];
        LogProbs::from_logits(logits, shape, &mut out)?;
        Ok(out)
    }
}

#[cfg(feature = "alloc")]
pub use owned::{log_probs_from_logits, log_probs_from_probs};
