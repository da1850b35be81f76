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

/// A backend's per-point scores vs the reference on the same input.
pub const SCORES: f64 = 1e-6;
/// A backend's joint entropies H_n vs the reference (exact and sampled regimes).
pub const JOINT_ENTROPY: f64 = 1e-5;
/// A backend's BatchBALD cumulative scores vs the reference, when the picks agree.
pub const BATCHBALD_SCORE: f64 = 1e-5;
/// A backend's MC-dropout head log-probs vs the reference (f32 arithmetic, f64 reference).
pub const HEAD_LOG_PROB: f64 = 1e-4;
