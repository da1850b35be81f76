//! Vectorised exp and ln (Cephes single-precision polynomials), branchless, written once for
//! every [`Simd`]. Budgets against f64 are in the tests (`tests/math.rs`).

use crate::simd::Simd;

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split so that n * LN2_HI is exact for |n| <= 2^9.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs are clamped to [EXP_LO, EXP_HI]: e^EXP_HI overflows to +inf in the final scaling,
/// e^EXP_LO (< 2^-150) rounds to exactly 0, so no special-case selects are needed.
const EXP_HI: f32 = 89.0;
const EXP_LO: f32 = -104.0;

/// e^x: ~1 ulp for normal results, subnormal results right to within an ulp of the smallest
/// subnormal, exactly 0 for x <= -104 (and -inf), +inf past the overflow threshold 88.72,
/// NaN through.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    exp_of_clamped(s, clamp_exp_arg(s, x))
}

/// x clamped to the range [`exp_of_clamped`] takes (NaN passes).
#[inline(always)]
pub fn clamp_exp_arg<S: Simd>(s: S, x: S::V) -> S::V {
    // min/max take NaN from their second operand on x86: keep x second so NaN passes.
    s.max(s.splat(EXP_LO), s.min(s.splat(EXP_HI), x))
}

/// e^x for x already clamped by [`clamp_exp_arg`].
#[inline(always)]
pub fn exp_of_clamped<S: Simd>(s: S, x: S::V) -> S::V {
    let fx = s.round(s.mul(x, s.splat(LOG2E)));
    let r = s.fma(fx, s.splat(-LN2_HI), x);
    let r = s.fma(fx, s.splat(-LN2_LO), r);
    let z = s.mul(r, r);
    let mut y = s.splat(1.987_569_2e-4);
    y = s.fma(y, r, s.splat(1.398_2e-3));
    y = s.fma(y, r, s.splat(8.333_452e-3));
    y = s.fma(y, r, s.splat(4.166_579_6e-2));
    y = s.fma(y, r, s.splat(1.666_666_5e-1));
    y = s.fma(y, r, s.splat(0.5));
    y = s.fma(y, z, r);
    y = s.add(y, s.splat(1.0));
    s.ldexp(y, fx)
}

/// ln x: ~1 ulp; subnormal inputs right; ln 0 = -inf, ln(x < 0) = NaN, ln inf = inf, NaN through.
#[inline(always)]
pub fn ln<S: Simd>(s: S, x: S::V) -> S::V {
    // Subnormals are scaled into the normal range and the exponent corrected.
    let subnormal = s.lt(x, s.splat(f32::MIN_POSITIVE));
    let scaled = s.select(subnormal, s.mul(x, s.splat(8_388_608.0)), x);
    let r = ln_normal(s, scaled);
    let r = s.select(
        subnormal,
        s.sub(r, s.splat(23.0 * core::f32::consts::LN_2)),
        r,
    );
    // Special values: NaN through (x - x is NaN for NaN and inf), then 0, negatives, inf.
    let r = s.add(r, s.sub(x, x));
    let r = s.select(
        s.lt(x, s.splat(f32::from_bits(1))),
        s.splat(f32::NEG_INFINITY),
        r,
    );
    let r = s.select(s.lt(x, s.splat(0.0)), s.splat(f32::NAN), r);
    s.select(s.lt(s.splat(f32::MAX), x), s.splat(f32::INFINITY), r)
}

/// ln x for positive, normal, finite x only (no special cases): the kernels' fast path, where
/// the argument is clamped to at least `f32::MIN_POSITIVE`.
#[inline(always)]
pub fn ln_normal<S: Simd>(s: S, x: S::V) -> S::V {
    let (m, e) = s.frexp(x);
    // Centre the mantissa on 1: m in [sqrt(1/2), sqrt(2)), then m - 1.
    let below = s.lt(m, s.splat(core::f32::consts::FRAC_1_SQRT_2));
    let e = s.select(below, s.sub(e, s.splat(1.0)), e);
    let m = s.sub(s.add(m, s.select(below, m, s.splat(0.0))), s.splat(1.0));
    let z = s.mul(m, m);
    let mut y = s.splat(7.037_683_6e-2);
    y = s.fma(y, m, s.splat(-1.151_461e-1));
    y = s.fma(y, m, s.splat(1.167_699_9e-1));
    y = s.fma(y, m, s.splat(-1.242_014_1e-1));
    y = s.fma(y, m, s.splat(1.424_932_3e-1));
    y = s.fma(y, m, s.splat(-1.666_805_8e-1));
    y = s.fma(y, m, s.splat(2.000_071_4e-1));
    y = s.fma(y, m, s.splat(-2.499_999_4e-1));
    y = s.fma(y, m, s.splat(3.333_333e-1));
    y = s.mul(s.mul(y, m), z);
    y = s.fma(e, s.splat(LN2_LO), y);
    y = s.fma(z, s.splat(-0.5), y);
    s.fma(e, s.splat(LN2_HI), s.add(m, y))
}
