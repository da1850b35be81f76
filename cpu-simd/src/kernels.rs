//! The kernels, written once against [`Simd`] and instantiated per ISA by `dispatch`.

use bald_core::{PointScore, StdKind};

use crate::math::{clamp_exp_arg, exp_of_clamped, ln_normal};
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

/// Whether a point's rows pass the checks of `LogProbs::new` with margin: no NaN or +inf, and
/// every row's sum of probabilities in [lo, hi] (`probs` is scratch of K x C).
#[inline(always)]
pub fn point_rows_ok<S: Simd>(
    s: S,
    lp: &[f32],
    c: usize,
    lo: f64,
    hi: f64,
    probs: &mut [f32],
) -> bool {
    let lanes = S::LANES;
    let inf = s.splat(f32::INFINITY);
    let (one, zero) = (s.splat(1.0), s.splat(0.0));
    let mut bad = zero;
    let mut chunks = lp.chunks_exact(lanes);
    for x in &mut chunks {
        // x < inf is false exactly for NaN and +inf.
        bad = s.add(bad, s.select(s.lt(s.load(x), inf), zero, one));
    }
    if s.reduce(bad) > 0.0
        || chunks
            .remainder()
            .iter()
            .any(|x| x.is_nan() || *x == f32::INFINITY)
    {
        return false;
    }
    exp_and_plogp(s, lp, probs);
    probs.chunks_exact(c).all(|row| {
        let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
        (lo..=hi).contains(&sum)
    })
}

/// Per-thread scratch of the score kernel.
pub struct ScoreScratch {
    /// K x C probabilities, then 16 zeros of slack for whole-vector reads past the end.
    pub probs: Vec<f32>,
    /// f32 column sums of the current block of rows (C rounded up to 16).
    pub col32: Vec<f32>,
    /// Per-class sums (C), f64.
    pub col: Vec<f64>,
    /// Per-class second accumulator (C).
    pub col2: Vec<f64>,
}

impl ScoreScratch {
    /// Scratch for points of K x C.
    pub fn new(k: usize, c: usize) -> Self {
        ScoreScratch {
            probs: vec![0.0; k * c + 16],
            col32: vec![0.0; c.div_ceil(16) * 16],
            col: vec![0.0; c],
            col2: vec![0.0; c],
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

/// -sum_c m_c ln m_c over the first C entries of `mean` (ln in f32 vectors, sum in f64).
#[inline(always)]
fn entropy_of_mean<S: Simd>(s: S, mean: &[f64], buf: &mut [f32]) -> f64 {
    let lanes = S::LANES;
    let c = mean.len();
    let tiny = s.splat(f32::MIN_POSITIVE);
    buf.fill(0.0);
    for (b, &m) in buf.iter_mut().zip(mean) {
        *b = m as f32;
    }
    let mut total = 0.0;
    for v in 0..c.div_ceil(lanes) {
        let x = s.load(&buf[v * lanes..]);
        // Lanes past C hold 0 and contribute 0 ln(tiny) * 0 = 0.
        total -= s.reduce(s.mul(x, ln_normal(s, s.max(x, tiny))));
    }
    total
}

/// (entropy, conditional entropy) of one point in one pass.
///
/// Class sums are kept in registers by phase: vector q of the flat K x C point holds classes
/// (q L + lane) mod C, a pattern that repeats every P = lcm(L, C) / L vectors, so P
/// accumulators (P <= 8) sum each class without storing the probabilities. Wider class counts
/// and short points go through [`exp_and_plogp`] and [`column_sums`].
#[inline(always)]
pub fn point_entropies<S: Simd>(
    s: S,
    lp: &[f32],
    k: usize,
    c: usize,
    scratch: &mut ScoreScratch,
) -> (f64, f64) {
    let lanes = S::LANES;
    let period = c / gcd(lanes, c);
    // Short points spend more on folding P accumulators than the store-and-sum path does.
    let long_enough = lp.len() >= 4 * period * lanes;
    let plogp = match if long_enough { period } else { 0 } {
        1 => phased_sums::<S, 1>(s, lp, c, &mut scratch.col32, &mut scratch.col),
        2 => phased_sums::<S, 2>(s, lp, c, &mut scratch.col32, &mut scratch.col),
        4 => phased_sums::<S, 4>(s, lp, c, &mut scratch.col32, &mut scratch.col),
        5 => phased_sums::<S, 5>(s, lp, c, &mut scratch.col32, &mut scratch.col),
        8 => phased_sums::<S, 8>(s, lp, c, &mut scratch.col32, &mut scratch.col),
        _ => {
            let plogp = exp_and_plogp(s, lp, &mut scratch.probs[..k * c]);
            scratch.col.fill(0.0);
            column_sums(
                s,
                &scratch.probs,
                k,
                c,
                &mut scratch.col32,
                &mut scratch.col,
            );
            plogp
        }
    };
    let inv_k = 1.0 / k as f64;
    for m in scratch.col.iter_mut() {
        *m *= inv_k;
    }
    (
        entropy_of_mean(s, &scratch.col, &mut scratch.col32),
        -plogp * inv_k,
    )
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Periods of the phase accumulators summed in f32 before a fold into f64.
const PHASE_BLOCK: usize = 16;

/// One vector of [`phased_sums`]: a += p, plogp += p lp. (A function, not a closure: closures
/// are compiled without the caller's target features, so their intrinsics would not inline.)
#[inline(always)]
fn phased_step<S: Simd>(s: S, lp: &[f32], a: &mut S::V, plogp: &mut S::V) {
    let x = clamp_exp_arg(s, s.load(lp));
    let e = exp_of_clamped(s, x);
    *a = s.add(*a, e);
    *plogp = s.fma(e, x, *plogp);
}

/// Class sums of exp(lp) into `col` (C) and sum p lp, with P phase accumulators.
#[inline(always)]
fn phased_sums<S: Simd, const P: usize>(
    s: S,
    lp: &[f32],
    c: usize,
    col32: &mut [f32],
    col: &mut [f64],
) -> f64 {
    let lanes = S::LANES;
    let zero = s.splat(0.0);
    let vectors = lp.len() / lanes;
    let mut total = 0.0;
    col.fill(0.0);
    // Blocks of PHASE_BLOCK periods are summed in f32 registers, then folded into f64. The P
    // accumulators, stored in order, form a (P L / C) x C matrix whose column sums are the
    // class sums.
    let mut buf = [0.0f32; 8 * 16 + 16];
    for block in (0..vectors).step_by(PHASE_BLOCK * P) {
        let end = (block + PHASE_BLOCK * P).min(vectors);
        let mut acc = [zero; P];
        let mut plogp = zero;
        let mut q = block;
        while q + P <= end {
            for (j, a) in acc.iter_mut().enumerate() {
                phased_step(s, &lp[(q + j) * lanes..], a, &mut plogp);
            }
            q += P;
        }
        for (j, a) in acc.iter_mut().enumerate().take(end - q) {
            phased_step(s, &lp[(q + j) * lanes..], a, &mut plogp);
        }
        total += s.reduce(plogp);
        for (j, a) in acc.iter().enumerate() {
            s.store(*a, &mut buf[j * lanes..]);
        }
        column_sums(s, &buf, P * lanes / c, c, col32, col);
    }
    // The last elements, fewer than a vector: one more vector ending at the end (or padded
    // with -inf when the point is shorter than a vector), counting only its new lanes.
    let done = vectors * lanes;
    let tail = lp.len() - done;
    if tail > 0 {
        let mut xs = [f32::NEG_INFINITY; 16];
        let first_new = if lp.len() >= lanes {
            xs[..lanes].copy_from_slice(&lp[lp.len() - lanes..]);
            lanes - tail
        } else {
            xs[..tail].copy_from_slice(lp);
            0
        };
        let x = clamp_exp_arg(s, s.load(&xs));
        s.store(x, &mut xs);
        let mut e = [0.0f32; 16];
        s.store(exp_of_clamped(s, x), &mut e);
        let mut class = done % c;
        for lane in first_new..first_new + tail {
            col[class] += f64::from(e[lane]);
            total += f64::from(e[lane]) * f64::from(xs[lane]);
            class += 1;
            if class == c {
                class = 0;
            }
        }
    }
    total
}

/// `score` of one point (`lp`: K x C, f32). Same definitions as bald-core's reference.
#[inline(always)]
pub fn point_score<S: Simd>(
    s: S,
    lp: &[f32],
    k: usize,
    c: usize,
    score: PointScore,
    scratch: &mut ScoreScratch,
) -> f64 {
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
    match score {
        PointScore::Entropy => return point_entropies(s, lp, k, c, scratch).0,
        PointScore::ConditionalEntropy => return point_entropies(s, lp, k, c, scratch).1,
        PointScore::Bald => {
            let (h, eh) = point_entropies(s, lp, k, c, scratch);
            return (h - eh).max(0.0);
        }
        _ => {}
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
        PointScore::Entropy
        | PointScore::ConditionalEntropy
        | PointScore::Bald
        | PointScore::VariationRatiosMode => unreachable!("returned above"),
    }
}

/// The batch side of the joint-entropy step in f32, transposed for the kernel: `at` is
/// K x `mp` (M padded to a multiple of 16 with zero rows), `scale` the per-row s_m (padded 0).
pub struct JointF32 {
    /// a^T, K x mp.
    pub at: Vec<f32>,
    /// s_m, mp.
    pub scale: Vec<f32>,
    /// Padded rows.
    pub mp: usize,
    /// The weight in front of the sum.
    pub weight: f64,
    /// Whether `scale` holds anything but zeros (the sampled regime).
    pub scaled: bool,
}

/// Class blocks of at most this many classes share one pass over a^T: the accumulators, a^T's
/// vector and a broadcast must fit in the ISA's registers (16 below 16 lanes, 32 with them).
fn max_class_block(lanes: usize) -> usize {
    if lanes >= 16 {
        12
    } else {
        8
    }
}

/// H_n for one candidate whose K x C probabilities are `probs`:
/// weight * sum_m sum_c -x_mc (ln x_mc + s_m), x_mc = sum_k a[m, k] p[k, c].
#[inline(always)]
pub fn joint_entropy<S: Simd>(s: S, joint: &JointF32, probs: &[f32], k: usize, c: usize) -> f64 {
    // The exact regime has s_m = 0: its kernel skips the add.
    if joint.scaled {
        joint_entropy_with::<S, true>(s, joint, probs, k, c)
    } else {
        joint_entropy_with::<S, false>(s, joint, probs, k, c)
    }
}

#[inline(always)]
fn joint_entropy_with<S: Simd, const SCALED: bool>(
    s: S,
    joint: &JointF32,
    probs: &[f32],
    k: usize,
    c: usize,
) -> f64 {
    let blocks = c.div_ceil(max_class_block(S::LANES));
    let per = c.div_ceil(blocks);
    let mut total = 0.0;
    let mut start = 0;
    while start < c {
        let width = per.min(c - start);
        let args = (s, joint, probs, k, c, start);
        total += match width {
            1 => class_block::<S, 1, SCALED>(args),
            2 => class_block::<S, 2, SCALED>(args),
            3 => class_block::<S, 3, SCALED>(args),
            4 => class_block::<S, 4, SCALED>(args),
            5 => class_block::<S, 5, SCALED>(args),
            6 => class_block::<S, 6, SCALED>(args),
            7 => class_block::<S, 7, SCALED>(args),
            8 => class_block::<S, 8, SCALED>(args),
            9 => class_block::<S, 9, SCALED>(args),
            10 => class_block::<S, 10, SCALED>(args),
            11 => class_block::<S, 11, SCALED>(args),
            _ => class_block::<S, 12, SCALED>(args),
        };
        start += width;
    }
    -total * joint.weight
}

/// sum over all rows m and classes start..start+CB of x (ln x + s_m) (s_m only when SCALED),
/// vectorised over m.
#[inline(always)]
fn class_block<S: Simd, const CB: usize, const SCALED: bool>(
    (s, joint, probs, k, c, start): (S, &JointF32, &[f32], usize, usize, usize),
) -> f64 {
    let lanes = S::LANES;
    let tiny = s.splat(f32::MIN_POSITIVE);
    let mut total = 0.0;
    let mut blocks_sum = s.splat(0.0);
    for (block, mb) in (0..joint.mp).step_by(lanes).enumerate() {
        let mut acc = [s.splat(0.0); CB];
        for kk in 0..k {
            let a = s.load(&joint.at[kk * joint.mp + mb..]);
            let p = &probs[kk * c + start..kk * c + start + CB];
            for j in 0..CB {
                acc[j] = s.fma(a, s.splat(p[j]), acc[j]);
            }
        }
        let mut sum = s.splat(0.0);
        for x in acc {
            // x = 0 gives 0 * (ln(tiny) + s) = 0: 0 ln 0 = 0 without a select.
            let l = ln_normal(s, s.max(x, tiny));
            let l = if SCALED {
                s.add(l, s.load(&joint.scale[mb..]))
            } else {
                l
            };
            sum = s.fma(x, l, sum);
        }
        // Blocks' sums stay independent; their total is folded into f64 every 16 blocks.
        blocks_sum = s.add(blocks_sum, sum);
        if block % 16 == 15 {
            total += s.reduce(blocks_sum);
            blocks_sum = s.splat(0.0);
        }
    }
    total + s.reduce(blocks_sum)
}

/// out[r, o] = act(sum_j x[r, j] wt[j, o] + b[o]) for a block of rows of `x` (row stride
/// `x_stride`), `wt` being `inputs x outputs_padded` (a multiple of the lane count, zero columns
/// beyond the real outputs); `out` has row stride `outputs_padded`. Loops run over panels of
/// two output vectors outermost, so a panel of `wt` stays in cache across the row block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn dense<S: Simd>(
    s: S,
    x: &[f32],
    rows: usize,
    x_stride: usize,
    inputs: usize,
    wt: &[f32],
    bias: &[f32],
    outputs_padded: usize,
    relu: bool,
    out: &mut [f32],
) {
    let lanes = S::LANES;
    debug_assert_eq!(outputs_padded % lanes, 0);
    let mut o = 0;
    while o < outputs_padded {
        let width = if o + 2 * lanes <= outputs_padded {
            2
        } else {
            1
        };
        let panel = Panel {
            wt,
            bias,
            stride: outputs_padded,
            o,
            relu,
        };
        let mut r = 0;
        while r + 4 <= rows {
            match width {
                2 => dense_tile::<S, 4, 2>(s, x, r, x_stride, inputs, &panel, out),
                _ => dense_tile::<S, 4, 1>(s, x, r, x_stride, inputs, &panel, out),
            }
            r += 4;
        }
        while r < rows {
            match width {
                2 => dense_tile::<S, 1, 2>(s, x, r, x_stride, inputs, &panel, out),
                _ => dense_tile::<S, 1, 1>(s, x, r, x_stride, inputs, &panel, out),
            }
            r += 1;
        }
        o += width * lanes;
    }
}

/// Columns o..o + W lanes of the transposed weights, with bias and activation.
struct Panel<'a> {
    wt: &'a [f32],
    bias: &'a [f32],
    stride: usize,
    o: usize,
    relu: bool,
}

/// An R x W-vector tile of the output: R rows broadcast against W weight vectors.
#[inline(always)]
fn dense_tile<S: Simd, const R: usize, const W: usize>(
    s: S,
    x: &[f32],
    r0: usize,
    x_stride: usize,
    inputs: usize,
    panel: &Panel<'_>,
    out: &mut [f32],
) {
    let lanes = S::LANES;
    let zero = s.splat(0.0);
    let mut acc = [[zero; W]; R];
    for j in 0..inputs {
        let mut w = [zero; W];
        for (v, wv) in w.iter_mut().enumerate() {
            *wv = s.load(&panel.wt[j * panel.stride + panel.o + v * lanes..]);
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xv = s.splat(x[(r0 + r) * x_stride + j]);
            for (a, &wv) in acc_r.iter_mut().zip(&w) {
                *a = s.fma(xv, wv, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let row = &mut out[(r0 + r) * panel.stride..];
        for (v, &a) in acc_r.iter().enumerate() {
            let at = panel.o + v * lanes;
            let mut y = s.add(a, s.load(&panel.bias[at..]));
            if panel.relu {
                y = s.max(y, zero);
            }
            s.store(y, &mut row[at..]);
        }
    }
}
