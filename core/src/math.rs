//! Small numerical helpers shared by the scalar reference code.

/// -x ln x with 0 ln 0 = 0 (and -x ln x = 0 for x <= 0, which only rounding can produce).
#[inline]
pub fn neg_x_ln_x(x: f64) -> f64 {
    if x > 0.0 {
        -x * libm::log(x)
    } else {
        0.0
    }
}

/// -p * lp for a log-probability `lp`, with p = exp(lp) and 0 * (-inf) = 0.
#[inline]
pub fn neg_p_log_p(lp: f64) -> f64 {
    if lp == f64::NEG_INFINITY {
        0.0
    } else {
        -libm::exp(lp) * lp
    }
}

/// log sum_i exp(x_i), stable; `-inf` for an empty sequence or one of all `-inf`.
pub fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    max + libm::log(xs.map(|x| libm::exp(x - max)).sum::<f64>())
}
