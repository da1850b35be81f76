//! Error budgets: how far an implementation may stray from the f64 scalar reference, per
//! function, in absolute nats (or absolute units for ratios and probabilities). One table for
//! every backend's tests (and the fuzzers), so a loosened budget is visible in one place.
//!
//! Two sources of error are budgeted apart: the input type's rounding (f32, f16, bf16 input
//! against the f64 input it was rounded from), and a backend's own arithmetic on the same input.

/// f32 input vs the f64 input it was rounded from, scalar reference on both.
pub const F32_INPUT: f64 = 1e-5;
/// f16 input vs the f64 input it was rounded from.
pub const F16_INPUT: f64 = 2e-2;
/// bf16 input vs the f64 input it was rounded from.
pub const BF16_INPUT: f64 = 1e-1;

/// A backend's per-point scores vs the reference on the same input, per unit of the scores'
/// scale 1 + ln C: see [`score_tolerance`].
pub const SCORES: f64 = 1e-6;
/// A backend's joint entropies H_n vs the reference (exact and sampled regimes).
pub const JOINT_ENTROPY: f64 = 1e-5;
/// A backend's EPIG scores vs the reference (a point's entropy, within the scores' budget,
/// plus a joint-entropy step weighted 1/M, within [`JOINT_ENTROPY`]).
pub const EPIG: f64 = 1e-5;
/// A backend's BatchBALD cumulative scores vs the reference, when the picks agree.
pub const BATCHBALD_SCORE: f64 = 1e-5;
/// The rounding slack of lazy greedy BatchBALD ([`crate::LazyGreedy`]): a stale bound must be
/// beaten by more than this before a candidate is left unevaluated. A bound compares four
/// computed cumulative scores; each is a joint entropy (within [`JOINT_ENTROPY`]) less
/// conditional entropies (within [`score_tolerance`], under 1e-5 up to C = 10^4), so each is
/// within 2e-5 of the exact value and the four within 8e-5.
pub const LAZY_SLACK: f64 = 1e-4;
/// A backend's MC-dropout head log-probs vs the reference (f32 arithmetic, f64 reference),
/// relative to 1 + |reference|: a log-prob of -545 carries f32 rounding of ~3e-5 per operation
/// (fuzzing found an error of 1.02e-4 there).
pub const HEAD_LOG_PROB: f64 = 1e-4;

/// A backend's logits or probabilities -> log-probs conversion (f32) vs the reference on the
/// same input, relative to 1 + |reference|: f32 exp or ln of 1.4 ulp, and the f32 rounding of
/// the result.
pub const CONVERSION: f64 = 1e-6;

/// The tolerance of a per-point score on C classes: [`SCORES`] x (1 + ln C). Scores are
/// entropies (at most ln C), BALD (the difference of two of them) or ratios in [0, 1]. f32 exp
/// and ln errors on equal log-probs are correlated rather than averaging out, so the absolute
/// error of an entropy grows with its size, and BALD carries the errors of both its terms:
/// fuzzing found 1.07e-6 on a conditional entropy of ln 12 = 2.48 and 1.1e-6 on a BALD of 0.
pub fn score_tolerance(c: usize) -> f64 {
    SCORES * (1.0 + libm::log(c as f64))
}
