//! Vectorised exp and ln (Cephes-style reductions, minimax polynomials), branchless, written once for
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
/// 1.5 * 2^23: x + MAGIC - MAGIC is x rounded to an integer (ties to even) for |x| < 2^22.
const MAGIC: f32 = 12_582_912.0;

/// e^x: within 1.4 ulp (of f32 epsilon) for normal results, subnormal results right to within
/// an ulp of the smallest subnormal, exactly 0 for x <= -104 (and -inf), +inf past the overflow
/// threshold 88.72, NaN through.
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

/// The lower clamp of [`clamp_log_prob`]: e^-87 = 1.6e-38 is still a normal f32.
const LOG_PROB_LO: f32 = -87.0;

/// A validated log-prob clamped to the range [`exp_log_prob`] takes. Log-probs that passed
/// validation are at most ln(1 + tolerance), far below the overflow bound, so only the lower
/// end is clamped, at -87: probabilities below e^-87 = 1.6e-38 (p = 0 included) count as
/// 1.6e-38, which moves a score by less than 1e-35, and 2^n stays a normal number.
#[inline(always)]
pub fn clamp_log_prob<S: Simd>(s: S, x: S::V) -> S::V {
    s.max(s.splat(LOG_PROB_LO), x)
}

/// e^x for x clamped by [`clamp_log_prob`]: [`exp_of_clamped`] with 2^n as one normal factor
/// (four operations instead of ten where the ISA has no `vscalefps`).
#[inline(always)]
pub fn exp_log_prob<S: Simd>(s: S, x: S::V) -> S::V {
    let (y, n) = exp_parts(s, x);
    s.scale_normal(y, n)
}

/// e^x for x already clamped by [`clamp_exp_arg`]: x = n ln 2 + r (Cody-Waite, two steps),
/// e^r = 1 + r Q(r) with Q a degree-4 minimax fit on [-ln 2 / 2, ln 2 / 2] (Lawson's
/// algorithm, relative error 9e-8 before f32 rounding), then y 2^n.
#[inline(always)]
pub fn exp_of_clamped<S: Simd>(s: S, x: S::V) -> S::V {
    let (y, n) = exp_parts(s, x);
    s.ldexp(y, n)
}

/// (e^r, n) with x = n ln 2 + r, |r| <= ln 2 / 2 (see [`exp_of_clamped`]).
#[inline(always)]
fn exp_parts<S: Simd>(s: S, x: S::V) -> (S::V, S::V) {
    // n = round(x log2 e) by the magic-number trick: adding 1.5 * 2^23 rounds to an integer.
    let n = s.sub(s.fma(x, s.splat(LOG2E), s.splat(MAGIC)), s.splat(MAGIC));
    let r = s.fma(n, s.splat(-LN2_HI), x);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let mut y = s.splat(8.290_264e-3);
    y = s.fma(y, r, s.splat(4.189_815e-2));
    y = s.fma(y, r, s.splat(1.666_763_9e-1));
    y = s.fma(y, r, s.splat(4.999_914_8e-1));
    y = s.fma(y, r, s.splat(9.999_997e-1));
    (s.fma(y, r, s.splat(1.0)), n)
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
///
/// x = m 2^e with m in [0.75, 1.5) by integer operations alone (musl's logf reduction, shifted
/// to 0.75: adding half the mantissa range carries m >= 1.5 into the exponent), then
/// ln(1 + f) = f - f^2/2 + f^3 Q(f), f = m - 1, with Q a degree-6 minimax fit on [-0.25, 0.5)
/// (Lawson's algorithm, relative error 4e-8 before f32 rounding).
#[inline(always)]
pub fn ln_normal<S: Simd>(s: S, x: S::V) -> S::V {
    let bits = s.add_i(s.f2i_bits(x), s.splat_i(0x0040_0000));
    let e = s.to_float(s.sub_i(s.shr23(bits), s.splat_i(127)));
    let m = s.i2f_bits(s.add_i(
        s.and_i(bits, s.splat_i(0x007f_ffff)),
        s.splat_i(0x3f40_0000),
    ));
    let f = s.sub(m, s.splat(1.0));
    let z = s.mul(f, f);
    let mut y = s.splat(5.559_712_6e-2);
    y = s.fma(y, f, s.splat(-1.211_411_6e-1));
    y = s.fma(y, f, s.splat(1.490_443_2e-1));
    y = s.fma(y, f, s.splat(-1.678_881_8e-1));
    y = s.fma(y, f, s.splat(1.998_232e-1));
    y = s.fma(y, f, s.splat(-2.499_636_1e-1));
    y = s.fma(y, f, s.splat(3.333_347e-1));
    y = s.mul(s.mul(y, f), z);
    y = s.fma(e, s.splat(LN2_LO), y);
    y = s.fma(z, s.splat(-0.5), y);
    s.fma(e, s.splat(LN2_HI), s.add(f, y))
}
