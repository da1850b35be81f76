//! Logits and probabilities to log-probs.

use crate::math;
use crate::simd::Simd;

/// log_softmax over each row of `c` values of `x` (one point, K rows), in place:
/// (x - max) - ln sum e^(x - max), with e^ and ln vectorised. Returns false, leaving `x` partly
/// converted, when a row holds a NaN or `+inf` or is all `-inf` (the scalar path then reports
/// the error). `buf` holds `x.len()`, `rows` K values.
#[inline(always)]
pub fn log_softmax_rows<S: Simd>(
    s: S,
    x: &mut [f32],
    c: usize,
    buf: &mut [f32],
    rows: &mut [f32],
) -> bool {
    for (row, m) in x.chunks_exact_mut(c).zip(rows.iter_mut()) {
        let (mut max, mut nan) = (f32::NEG_INFINITY, false);
        for &v in row.iter() {
            max = max.max(v);
            nan |= v.is_nan();
        }
        if nan || !max.is_finite() {
            return false;
        }
        for v in row.iter_mut() {
            *v -= max;
        }
        *m = max;
    }
    // Shifted logits kept in x, their exponentials in buf.
    let mut from = x.chunks_exact(S::LANES);
    let mut to = buf.chunks_exact_mut(S::LANES);
    for (f, t) in (&mut from).zip(&mut to) {
        s.store(math::exp(s, s.load(f)), t);
    }
    for (f, t) in from.remainder().iter().zip(to.into_remainder()) {
        *t = f.exp();
    }
    for (b, m) in buf.chunks_exact(c).zip(rows.iter_mut()) {
        *m = b.iter().sum();
    }
    ln_in_place(s, rows);
    for (row, &l) in x.chunks_exact_mut(c).zip(rows.iter()) {
        for v in row.iter_mut() {
            *v -= l;
        }
    }
    true
}

/// ln x of every value, vectorised. (Loops written out, not through a closure: closures are
/// compiled without the caller's target features, so their intrinsics would not inline.)
#[inline(always)]
pub fn ln_in_place<S: Simd>(s: S, x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(S::LANES);
    for ch in &mut chunks {
        s.store(math::ln(s, s.load(ch)), ch);
    }
    for v in chunks.into_remainder() {
        *v = v.ln();
    }
}
