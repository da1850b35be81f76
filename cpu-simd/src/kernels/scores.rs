//! Entropies and every point score of a pool, with the row validation that rides on them
//! (`scores.cu`).

use bald_core::{ElementSlice, PointScore, StdKind};

use super::{exp_and_plogp, LANE_INDEX};
use crate::math::{clamp_log_prob, exp_log_prob, ln_normal};
use crate::point_f32;
use crate::simd::Simd;

/// Per-thread scratch of the score kernel.
pub struct ScoreScratch {
    /// K x C probabilities (of a group of [`GROUP`] points when that is at most
    /// [`GROUPED_VALUES`]), then 16 zeros of slack for whole-vector reads past the end.
    pub probs: Vec<f32>,
    /// f32 column sums of the current block of rows (C rounded up to 16).
    pub col32: Vec<f32>,
    /// Per-class sums (C), f64.
    pub col: Vec<f64>,
    /// Per-class second accumulator (C).
    pub col2: Vec<f64>,
    /// A point converted to f32 (K x C), for inputs of other types.
    pub conv: Vec<f32>,
    /// Phase accumulators of a group of points (at most 8 x 16 values each), then slack.
    pub phases: Vec<f32>,
}

impl ScoreScratch {
    /// Scratch for points of K x C.
    pub fn new(k: usize, c: usize) -> Self {
        ScoreScratch {
            probs: vec![0.0; (k * c).max((GROUP * k * c).min(GROUPED_VALUES)) + 16],
            col32: vec![0.0; c.div_ceil(16) * 16],
            col: vec![0.0; c],
            col2: vec![0.0; c],
            conv: vec![0.0; k * c],
            phases: vec![0.0; GROUP * 8 * 16 + 16],
        }
    }
}

/// Rows summed in f32 before being folded into the f64 column sums.
const COLUMN_BLOCK: usize = 16;

/// col[c] += sum_k probs[k, c] in f64, vectorised along each row (a row's last vector reads
/// into the next row or the slack; those lanes land beyond C and are ignored). Up to four
/// vectors of columns at a time are summed over blocks of rows in f32 registers, then folded
/// into f64.
#[inline(always)]
fn column_sums<S: Simd>(
    s: S,
    probs: &[f32],
    k: usize,
    c: usize,
    col32: &mut [f32],
    col: &mut [f64],
) {
    let vectors = c.div_ceil(S::LANES);
    for v0 in (0..vectors).step_by(4) {
        let args = (probs, k, c, v0, &mut *col32, &mut *col);
        match (vectors - v0).min(4) {
            1 => column_sums_in_registers::<S, 1>(s, args),
            2 => column_sums_in_registers::<S, 2>(s, args),
            3 => column_sums_in_registers::<S, 3>(s, args),
            _ => column_sums_in_registers::<S, 4>(s, args),
        }
    }
}

/// col[c] += col32[c] for the first C columns.
#[inline(always)]
fn fold_into(col: &mut [f64], col32: &[f32]) {
    for (c64, &c32) in col.iter_mut().zip(col32) {
        *c64 += f64::from(c32);
    }
}

/// Column sums of the NV vectors of columns from vector `v0` (see [`column_sums`]).
#[inline(always)]
#[allow(clippy::type_complexity)]
fn column_sums_in_registers<S: Simd, const NV: usize>(
    s: S,
    (probs, k, c, v0, col32, col): (&[f32], usize, usize, usize, &mut [f32], &mut [f64]),
) {
    let lanes = S::LANES;
    let base = v0 * lanes;
    for block in (0..k).step_by(COLUMN_BLOCK) {
        let mut acc = [s.splat(0.0); NV];
        for row in block..(block + COLUMN_BLOCK).min(k) {
            for (v, a) in acc.iter_mut().enumerate() {
                *a = s.add(*a, s.load(&probs[row * c + base + v * lanes..]));
            }
        }
        for (v, a) in acc.iter().enumerate() {
            s.store(*a, &mut col32[base + v * lanes..]);
        }
        fold_into(&mut col[base..], &col32[base..base + NV * lanes]);
    }
}

/// m ln m for the classes of one vector of class sums, m = sums * inv_k: classes `first`.. of
/// C, lanes past C giving 0 (ln in f32).
#[inline(always)]
fn mlnm<S: Simd>(s: S, sums: S::V, first: usize, c: usize, inv_k: f32) -> S::V {
    let m = s.mul(sums, s.splat(inv_k));
    let t = s.mul(m, ln_normal(s, s.max(m, s.splat(f32::MIN_POSITIVE))));
    let class = s.lt(s.load(&LANE_INDEX), s.splat((c - first) as f32));
    s.select(class, t, s.splat(0.0))
}

/// -sum_c m_c ln m_c, m = col / K, from f64 class sums (`buf`: f32 scratch, C rounded up to 16).
#[inline(always)]
fn entropy_of_col<S: Simd>(s: S, col: &[f64], k: usize, buf: &mut [f32]) -> f64 {
    let lanes = S::LANES;
    let c = col.len();
    let inv_k = 1.0 / k as f64;
    for (b, &m) in buf.iter_mut().zip(col) {
        *b = (m * inv_k) as f32;
    }
    let mut h = 0.0;
    for v in 0..c.div_ceil(lanes) {
        h -= s.reduce(mlnm(s, s.load(&buf[v * lanes..]), v * lanes, c, 1.0));
    }
    h
}

/// (entropy, conditional entropy) of consecutive K x C points (`points`, flat) into `out`.
///
/// Class sums are kept in registers by phase: vector q of a flat point holds classes
/// (q L + lane) mod C, a pattern that repeats every P = lcm(L, C) / L vectors, so P
/// accumulators (P <= 8) sum each class without storing the probabilities. Longer periods go
/// through [`exp_and_plogp`] and [`column_sums`].
///
/// With CHECK, each point is also checked against `check` in the same pass (its values are read
/// once), into `ok` (one flag per point; unused without CHECK): a refused point may still be
/// valid near the tolerance, an accepted one is.
#[inline(always)]
pub fn entropies<S: Simd, const CHECK: bool>(
    s: S,
    points: ElementSlice<'_>,
    k: usize,
    c: usize,
    out: &mut [(f64, f64)],
    (ok, check): (&mut [bool], &RowCheck),
    scratch: &mut ScoreScratch,
) {
    let args = (points, k, c, out, ok, check, scratch);
    match c / gcd(S::LANES, c) {
        1 => phased_entropies::<S, 1, CHECK>(s, args),
        2 => phased_entropies::<S, 2, CHECK>(s, args),
        3 => phased_entropies::<S, 3, CHECK>(s, args),
        4 => phased_entropies::<S, 4, CHECK>(s, args),
        5 => phased_entropies::<S, 5, CHECK>(s, args),
        6 => phased_entropies::<S, 6, CHECK>(s, args),
        7 => phased_entropies::<S, 7, CHECK>(s, args),
        8 => phased_entropies::<S, 8, CHECK>(s, args),
        _ => {
            let (points, k, c, out, ok, check, scratch) = args;
            for (i, o) in out.iter_mut().enumerate() {
                let lp = point_f32(points, i, k * c, &mut scratch.conv);
                let plogp = exp_and_plogp(s, lp, &mut scratch.probs[..k * c]);
                if CHECK {
                    // exp_and_plogp's exp is exact over f32's range: NaN rows sum to NaN,
                    // +inf and large log-probs to far more than 1.
                    ok[i] = rows_in_range(s, &scratch.probs, lp.len(), c, check);
                }
                scratch.col.fill(0.0);
                column_sums(
                    s,
                    &scratch.probs,
                    k,
                    c,
                    &mut scratch.col32,
                    &mut scratch.col,
                );
                let h = entropy_of_col(s, &scratch.col, k, &mut scratch.col32);
                *o = (h, -plogp / k as f64);
            }
        }
    }
}

#[inline(always)]
fn gcd(a: usize, b: usize) -> usize {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Validating, the probabilities of a group's points are kept side by side up to this many
/// values (16 KiB, within L1 beside the rest); longer points are checked one by one.
const GROUPED_VALUES: usize = 4096;

/// Periods of the phase accumulators summed in f32 before a fold into f64.
const PHASE_BLOCK: usize = 16;

/// Points whose phase accumulators are all stored before the first is folded: a fold straight
/// after its point's stores would wait on store forwarding, which fails for loads that
/// straddle two stores.
const GROUP: usize = 8;

/// One vector of [`phase_sums`]: a += p, plogp += p lp. (A function, not a closure: closures
/// are compiled without the caller's target features, so their intrinsics would not inline.)
#[inline(always)]
fn phased_step<S: Simd>(s: S, x: S::V, a: &mut S::V, plogp: &mut S::V) -> S::V {
    // p * lp with the clamped lp, so 0 * (-inf) never occurs.
    let x = clamp_log_prob(s, x);
    let e = exp_log_prob(s, x);
    *a = s.add(*a, e);
    *plogp = s.fma(e, x, *plogp);
    e
}

/// The check of passes that do not validate (never read).
pub const NO_CHECK: RowCheck = RowCheck { lo: 0.0, hi: 0.0 };

/// What a validating pass checks a point's rows against (the checks of `LogProbs::new`, with
/// margin): every row's sum of probabilities in [lo, hi]. NaN and `+inf` fail it: NaN passes
/// through the kernels' exp into the row's sum, and log-probs above [`CHECK_LOG_PROB_HI`] are
/// clamped to it, whose exp alone is more than any `hi`.
#[derive(Debug, Clone, Copy)]
pub struct RowCheck {
    /// Lowest accepted row sum.
    pub lo: f64,
    /// Highest accepted row sum.
    pub hi: f64,
}

/// The upper clamp of log-probs in a validating pass: above it the exp's scaling would wrap
/// (a huge log-prob could come out small), and e^1 = 2.7 is above every row check's `hi`.
const CHECK_LOG_PROB_HI: f32 = 1.0;

/// The probabilities of `lp` from `from` on into `probs` (the part of a point that the phase
/// kernels do not store), clamped as [`phase_sums`] clamps them with CHECK: one vector over
/// the point's last L values, which writes the L - (len - from) before `from` again with the
/// same bits, or a point shorter than a vector padded with -inf.
#[inline(always)]
fn tail_probs<S: Simd>(s: S, probs: &mut [f32], lp: &[f32], from: usize) {
    let (lanes, len) = (S::LANES, lp.len());
    if from < len && len >= lanes {
        let p = checked_probs(s, s.load(&lp[len - lanes..]));
        s.store(p, &mut probs[len - lanes..]);
    } else if from < len {
        let mut xs = [f32::NEG_INFINITY; 16];
        xs[..len].copy_from_slice(lp);
        let mut ps = [0.0f32; 16];
        s.store(checked_probs(s, s.load(&xs)), &mut ps);
        probs[..len].copy_from_slice(&ps[..len]);
    }
}

/// e^x with x clamped as a validating pass clamps it (see [`CHECK_LOG_PROB_HI`]). (A function,
/// not a closure: closures are compiled without the caller's target features.)
#[inline(always)]
fn checked_probs<S: Simd>(s: S, x: S::V) -> S::V {
    // x second in the min and max, so that NaN passes to the row's sum.
    let x = s.min(s.splat(CHECK_LOG_PROB_HI), clamp_log_prob(s, x));
    exp_log_prob(s, x)
}

/// Whether every row of `probs` (K x C = `len` values, a point's probabilities, then at least
/// 16 more readable values) sums into the check's range.
///
/// Up to 4 L classes, each row is summed as vectors (loads from the row's start, the last one
/// masked to the row) and L rows' vectors are transposed into one vector of row sums: f32
/// sums of at most 64 terms, within 4e-6 relative, inside the checks' margin (a tenth of the
/// tolerance). NaN sums are out of range. Longer rows are summed in f64.
#[inline(always)]
fn rows_in_range<S: Simd>(s: S, probs: &[f32], len: usize, c: usize, check: &RowCheck) -> bool {
    let args = (probs, len, c, check);
    match (c - 1) / S::LANES {
        0 => rows_in_range_of::<S, 0>(s, args),
        1 => rows_in_range_of::<S, 1>(s, args),
        2 => rows_in_range_of::<S, 2>(s, args),
        3 => rows_in_range_of::<S, 3>(s, args),
        _ => probs[..len].chunks_exact(c).all(|row| {
            let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
            (check.lo..=check.hi).contains(&sum)
        }),
    }
}

/// [`rows_in_range`] for rows of WHOLE full vectors and one more, masked to the row.
#[inline(always)]
fn rows_in_range_of<S: Simd, const WHOLE: usize>(
    s: S,
    (probs, len, c, check): (&[f32], usize, usize, &RowCheck),
) -> bool {
    let lanes = S::LANES;
    let rows = len / c;
    let zero = s.splat(0.0);
    let one = s.splat(1.0);
    let index = s.load(&LANE_INDEX);
    let last = s.lt(index, s.splat((c - WHOLE * lanes) as f32 - 0.5));
    let (lo, hi) = (s.splat(check.lo as f32), s.splat(check.hi as f32));
    let mut all = one;
    // A missing row's vector sums to 1.
    let mut vs = [s.select(s.lt(index, s.splat(0.5)), one, zero); 16];
    for first in (0..rows).step_by(lanes) {
        let count = (rows - first).min(lanes);
        for (i, v) in vs[..count].iter_mut().enumerate() {
            let row = &probs[(first + i) * c..];
            let mut sum = s.select(last, s.load(&row[WHOLE * lanes..]), zero);
            for j in 0..WHOLE {
                sum = s.add(sum, s.load(&row[j * lanes..]));
            }
            *v = sum;
        }
        let sums = s.transpose_sums(&vs[..lanes]);
        let inside = s.select(s.lt(lo, sums), s.select(s.lt(sums, hi), one, zero), zero);
        all = s.min(all, inside);
        if count < lanes {
            break;
        }
    }
    s.reduce(all) == lanes as f64
}

/// The P phase accumulators of exp(lp) over vectors `block..end` of a point, and the vector
/// of sum p lp; with `end` the last whole vector, the values after it too.
///
/// The probabilities of the whole vectors are left in `probs`; with CHECK, log-probs above
/// [`CHECK_LOG_PROB_HI`] are clamped to it there, for [`RowCheck`].
#[inline(always)]
fn phase_sums<S: Simd, const P: usize, const CHECK: bool>(
    s: S,
    lp: &[f32],
    block: usize,
    end: usize,
    probs: &mut [f32],
) -> ([S::V; P], S::V) {
    let lanes = S::LANES;
    let zero = s.splat(0.0);
    // First the probabilities of the whole vectors into `probs` (no accumulator is live, so the
    // exp's constants stay in registers), then the sums over them (only the accumulators are
    // live): one loop doing both spills accumulators to the stack, and their chains through
    // memory cost more than the extra store and load.
    let (values, out) = (
        &lp[block * lanes..end * lanes],
        &mut probs[block * lanes..end * lanes],
    );
    for (x, p) in values.chunks_exact(lanes).zip(out.chunks_exact_mut(lanes)) {
        let e = if CHECK {
            checked_probs(s, s.load(x))
        } else {
            exp_log_prob(s, clamp_log_prob(s, s.load(x)))
        };
        s.store(e, p);
    }
    let mut acc = [zero; P];
    let mut plogp = [zero; P];
    let period = P * lanes;
    let mut lps = values.chunks_exact(period);
    let mut ps = out.chunks_exact(period);
    for (x, p) in lps.by_ref().zip(ps.by_ref()) {
        for j in 0..P {
            let e = s.load(&p[j * lanes..]);
            acc[j] = s.add(acc[j], e);
            plogp[j] = s.fma(e, clamp_log_prob(s, s.load(&x[j * lanes..])), plogp[j]);
        }
    }
    let (x, p) = (lps.remainder(), ps.remainder());
    for j in 0..x.len() / lanes {
        let e = s.load(&p[j * lanes..]);
        acc[j] = s.add(acc[j], e);
        plogp[j] = s.fma(e, clamp_log_prob(s, s.load(&x[j * lanes..])), plogp[j]);
    }
    let mut plogp = {
        let mut sum = plogp[0];
        for &v in &plogp[1..] {
            sum = s.add(sum, v);
        }
        sum
    };
    let tail = lp.len() - end * lanes;
    if tail > 0 && tail < lanes {
        if end > 0 {
            // The last L values, of which the first L - tail were counted (-inf counts 0). They
            // start L before a multiple of C, so their classes are accumulator P - 1's (P L is
            // a multiple of C).
            let new = s.lt(s.splat((lanes - tail) as f32 - 0.5), s.load(&LANE_INDEX));
            let x = s.load(&lp[lp.len() - lanes..]);
            let x = s.select(new, x, s.splat(f32::NEG_INFINITY));
            phased_step(s, x, &mut acc[P - 1], &mut plogp);
        } else {
            // A point shorter than a vector, padded with -inf: accumulator 0's classes.
            let mut xs = [f32::NEG_INFINITY; 16];
            xs[..tail].copy_from_slice(lp);
            phased_step(s, s.load(&xs), &mut acc[0], &mut plogp);
        }
    }
    (acc, plogp)
}

/// The P accumulators, stored in order from `buf[0]`, form P L / C rows of C whose column
/// sums are the class sums: those of column vector `v` (lanes past C read into the next row
/// or the vector of slack after the rows).
#[inline(always)]
fn fold_phases<S: Simd, const P: usize>(s: S, buf: &[f32], c: usize, v: usize) -> S::V {
    let lanes = S::LANES;
    let mut sum = s.load(&buf[v * lanes..]);
    for r in 1..P * lanes / c {
        sum = s.add(sum, s.load(&buf[r * c + v * lanes..]));
    }
    sum
}

/// The arguments of [`phased_entropies`]: points, K, C, outputs, check flags, the check,
/// scratch.
type EntropyArgs<'a> = (
    ElementSlice<'a>,
    usize,
    usize,
    &'a mut [(f64, f64)],
    &'a mut [bool],
    &'a RowCheck,
    &'a mut ScoreScratch,
);

/// [`entropies`] with P phase accumulators. Points of at most [`PHASE_BLOCK`] periods (K = 20
/// and 100 at C = 10) stay in f32 registers until their accumulators are stored and folded,
/// by groups of [`GROUP`]; longer points fold each block of periods into f64 class sums.
#[inline(always)]
fn phased_entropies<S: Simd, const P: usize, const CHECK: bool>(
    s: S,
    (points, k, c, out, ok, check, scratch): EntropyArgs<'_>,
) {
    let lanes = S::LANES;
    let len = k * c;
    let vectors = len / lanes;
    let stride = P * lanes;
    let inv_k = 1.0 / k as f64;
    let class_vectors = c.div_ceil(lanes);
    if vectors > PHASE_BLOCK * P {
        for (i, o) in out.iter_mut().enumerate() {
            let lp = point_f32(points, i, len, &mut scratch.conv);
            scratch.col.fill(0.0);
            let mut plogp = 0.0;
            for block in (0..vectors).step_by(PHASE_BLOCK * P) {
                let end = (block + PHASE_BLOCK * P).min(vectors);
                let (acc, p) = phase_sums::<S, P, CHECK>(s, lp, block, end, &mut scratch.probs);
                plogp += s.reduce(p);
                for (j, a) in acc.iter().enumerate() {
                    s.store(*a, &mut scratch.phases[j * lanes..]);
                }
                for v in 0..class_vectors {
                    let sums = fold_phases::<S, P>(s, &scratch.phases, c, v);
                    s.store(sums, &mut scratch.col32[v * lanes..]);
                }
                fold_into(&mut scratch.col, &scratch.col32);
            }
            if CHECK {
                tail_probs(s, &mut scratch.probs, lp, vectors * lanes);
                ok[i] = rows_in_range(s, &scratch.probs, len, c, check);
            }
            *o = (
                entropy_of_col(s, &scratch.col, k, &mut scratch.col32),
                -plogp * inv_k,
            );
        }
        return;
    }
    let zero = s.splat(0.0);
    let grouped = CHECK && GROUP * len <= GROUPED_VALUES;
    for (first, outs) in out.chunks_mut(GROUP).enumerate() {
        // The group's vectors of p lp, then of m ln m, each summed over its lanes at the end.
        let mut terms = [zero; 2 * GROUP];
        for g in 0..outs.len() {
            let lp = point_f32(points, first * GROUP + g, len, &mut scratch.conv);
            // Short points' probabilities side by side, so that the group's rows are checked
            // at once; longer ones each in the same place, where they stay in L1.
            let probs = &mut scratch.probs[if grouped { g * len } else { 0 }..];
            let (acc, plogp) = phase_sums::<S, P, CHECK>(s, lp, 0, vectors, probs);
            if CHECK {
                tail_probs(s, probs, lp, vectors * lanes);
                if !grouped {
                    ok[first * GROUP + g] = rows_in_range(s, probs, len, c, check);
                }
            }
            terms[g] = plogp;
            for (j, a) in acc.iter().enumerate() {
                s.store(*a, &mut scratch.phases[g * stride + j * lanes..]);
            }
        }
        if grouped {
            // The group's rows in vectors of L across its points (K = 20 at L = 16: 10
            // transposes for 8 points, not 16); a refused group point by point.
            let flags = &mut ok[first * GROUP..first * GROUP + outs.len()];
            if rows_in_range(s, &scratch.probs, flags.len() * len, c, check) {
                flags.fill(true);
            } else {
                for (g, flag) in flags.iter_mut().enumerate() {
                    *flag = rows_in_range(s, &scratch.probs[g * len..], len, c, check);
                }
            }
        }
        for g in 0..outs.len() {
            let slot = &scratch.phases[g * stride..];
            for v in 0..class_vectors {
                let sums = fold_phases::<S, P>(s, slot, c, v);
                let t = mlnm(s, sums, v * lanes, c, inv_k as f32);
                terms[GROUP + g] = s.add(terms[GROUP + g], t);
            }
        }
        let mut sums = [0.0f32; 2 * GROUP];
        for (i, vs) in terms.chunks_exact(lanes).enumerate() {
            s.store(s.transpose_sums(vs), &mut sums[i * lanes..]);
        }
        for (g, o) in outs.iter_mut().enumerate() {
            *o = (-f64::from(sums[GROUP + g]), -f64::from(sums[g]) * inv_k);
        }
    }
}

/// `score` of consecutive K x C points (`points`, flat) into `out`. Same definitions as
/// bald-core's reference.
#[inline(always)]
pub fn scores<S: Simd>(
    s: S,
    points: ElementSlice<'_>,
    k: usize,
    c: usize,
    score: PointScore,
    out: &mut [f64],
    scratch: &mut ScoreScratch,
) {
    let pick = match score {
        PointScore::Entropy => |(h, _): (f64, f64)| h,
        PointScore::ConditionalEntropy => |(_, eh): (f64, f64)| eh,
        PointScore::Bald => |(h, eh): (f64, f64)| (h - eh).max(0.0),
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = point_score(s, points, i, (k, c), score, scratch);
            }
            return;
        }
    };
    let mut pairs = [(0.0, 0.0); GROUP];
    for (first, outs) in out.chunks_mut(GROUP).enumerate() {
        let pairs = &mut pairs[..outs.len()];
        let len = GROUP * k * c;
        let group = points.slice(first * len..first * len + outs.len() * k * c);
        entropies::<S, false>(s, group, k, c, pairs, (&mut [], &NO_CHECK), scratch);
        for (o, &pair) in outs.iter_mut().zip(pairs.iter()) {
            *o = pick(pair);
        }
    }
}

/// A score other than the entropies of one K x C point.
#[inline(always)]
fn point_score<S: Simd>(
    s: S,
    points: ElementSlice<'_>,
    i: usize,
    (k, c): (usize, usize),
    score: PointScore,
    scratch: &mut ScoreScratch,
) -> f64 {
    let lp = point_f32(points, i, k * c, &mut scratch.conv);
    if score == PointScore::VariationRatiosMode {
        let counts = &mut scratch.col;
        counts.fill(0.0);
        for row in lp.chunks_exact(c) {
            let mut best = 0;
            for (class, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = class;
                }
            }
            counts[best] += 1.0;
        }
        let f_mode = counts.iter().fold(0.0f64, |a, &b| a.max(b));
        return 1.0 - f_mode / k as f64;
    }
    let kf = k as f64;
    exp_and_plogp(s, lp, &mut scratch.probs[..k * c]);
    scratch.col.fill(0.0);
    column_sums(
        s,
        &scratch.probs,
        k,
        c,
        &mut scratch.col32,
        &mut scratch.col,
    );
    let mean = &mut scratch.col;
    for m in mean.iter_mut() {
        *m /= kf;
    }
    let top_two = |mean: &[f64]| {
        mean.iter().fold((0.0f64, 0.0f64), |(t1, t2), &p| {
            if p > t1 {
                (p, t1)
            } else if p > t2 {
                (t1, p)
            } else {
                (t1, t2)
            }
        })
    };
    match score {
        PointScore::VariationRatios | PointScore::LeastConfidence => 1.0 - top_two(mean).0,
        PointScore::Margin => {
            let (t1, t2) = top_two(mean);
            1.0 - (t1 - t2)
        }
        PointScore::MeanStd(kind) => {
            let ss = &mut scratch.col2;
            ss.fill(0.0);
            for row in scratch.probs[..k * c].chunks_exact(c) {
                for ((acc, &p), &m) in ss.iter_mut().zip(row).zip(mean.iter()) {
                    let d = f64::from(p) - m;
                    *acc += d * d;
                }
            }
            let denom = match kind {
                StdKind::Population => kf,
                StdKind::Unbiased => kf - 1.0,
            };
            ss.iter().map(|&v| (v / denom).sqrt()).sum::<f64>() / c as f64
        }
        PointScore::VariationRatiosMode => unreachable!("returned above"),
        PointScore::Entropy | PointScore::ConditionalEntropy | PointScore::Bald => {
            unreachable!("scored by `entropies`")
        }
    }
}
