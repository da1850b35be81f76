//! The kernels, written once against [`Simd`] and instantiated per ISA by `dispatch`, by family
//! as the CUDA kernels' `.cu` files are: `scores` (entropies, every point score, and the
//! validation that rides on them: `scores.cu`), `joint` (BatchBALD's joint-entropy step:
//! `joint.cu`), `head` (the MC-dropout head's dense layers: `head.cu`), and `convert` (logits and
//! probabilities to log-probs, on the host for every backend).

mod convert;
mod head;
mod joint;
mod scores;

pub use convert::{ln_in_place, log_softmax_rows};
pub use head::dense;
pub use joint::{joint_entropy, JointF32, JOINT_ROW_PAD};
pub use scores::{entropies, scores, RowCheck, ScoreScratch, NO_CHECK};

use crate::math::{clamp_exp_arg, exp_of_clamped};
use crate::simd::Simd;

/// 0, 1, 2, ... as f32, for lane masks.
const LANE_INDEX: [f32; 16] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// p = exp(lp) for a whole K x C point (flat), returning sum p * lp (0 * -inf = 0) in f64.
#[inline(always)]
pub fn exp_and_plogp<S: Simd>(s: S, lp: &[f32], p: &mut [f32]) -> f64 {
    let lanes = S::LANES;
    let mut acc = s.splat(0.0);
    let mut total = 0.0;
    let full = lp.len() / lanes * lanes;
    for (i, (x, out)) in lp[..full]
        .chunks_exact(lanes)
        .zip(p[..full].chunks_exact_mut(lanes))
        .enumerate()
    {
        // p * lp with the clamped lp: p = 0 exactly where lp <= -104, so 0 * (-inf) never occurs.
        let x = clamp_exp_arg(s, s.load(x));
        let e = exp_of_clamped(s, x);
        s.store(e, out);
        acc = s.fma(e, x, acc);
        // Fold into f64 every 64 vectors so that long points stay accurate.
        if i % 64 == 63 {
            total += s.reduce(acc);
            acc = s.splat(0.0);
        }
    }
    let tail = lp.len() - full;
    if tail > 0 && full > 0 {
        // One more vector ending at the last element; lanes already done count 0 to the sum.
        let start = lp.len() - lanes;
        let x = clamp_exp_arg(s, s.load(&lp[start..]));
        let e = exp_of_clamped(s, x);
        s.store(e, &mut p[start..]);
        let done = s.lt(s.load(&LANE_INDEX), s.splat((lanes - tail) as f32));
        acc = s.fma(s.select(done, s.splat(0.0), e), x, acc);
    } else if tail > 0 {
        let mut buf = [f32::NEG_INFINITY; 16];
        buf[..tail].copy_from_slice(&lp[full..]);
        let x = clamp_exp_arg(s, s.load(&buf));
        let e = exp_of_clamped(s, x);
        acc = s.fma(e, x, acc);
        let mut out = [0.0f32; 16];
        s.store(e, &mut out);
        p[full..].copy_from_slice(&out[..tail]);
    }
    total + s.reduce(acc)
}
