//! BatchBALD's joint-entropy step (`joint.cu`).

use crate::math::ln_normal;
use crate::simd::Simd;

/// Rows of the joint per tile of the joint-entropy kernel, in vectors: two, so that a class
/// block of five (AVX2) keeps ten independent FMA chains in flight, enough to cover the FMA
/// latency, where one vector's five chains left the FMA units idle half the time.
const TILE_VECTORS: usize = 2;

/// The padding of the joint's rows: a whole tile at the widest ISA (16 lanes).
pub const JOINT_ROW_PAD: usize = 16 * TILE_VECTORS;

/// The batch side of the joint-entropy step in f32, transposed for the kernel in panels: the
/// rows (M padded to `mp`, a multiple of [`JOINT_ROW_PAD`], with zero rows) in panels of
/// [`JOINT_ROW_PAD`], each panel K x [`JOINT_ROW_PAD`] and contiguous, so that a tile streams
/// one block of memory instead of K rows `mp` apart (a page apart at M = 1000: a TLB miss per
/// K); `scale` the per-row s_m (padded 0).
pub struct JointF32 {
    /// a^T in panels: a[m, k] at `(m / JOINT_ROW_PAD * K + k) * JOINT_ROW_PAD + m % JOINT_ROW_PAD`.
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

/// Class blocks of at most this many classes share one pass over a^T: the accumulators
/// ([`TILE_VECTORS`] per class), a^T's vectors and a broadcast must fit in the ISA's registers
/// (16 below 16 lanes, 32 with them).
fn max_class_block(lanes: usize) -> usize {
    if lanes >= 16 {
        12
    } else {
        6
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
/// vectorised over m, [`TILE_VECTORS`] vectors of rows at a time.
#[inline(always)]
fn class_block<S: Simd, const CB: usize, const SCALED: bool>(
    (s, joint, probs, k, c, start): (S, &JointF32, &[f32], usize, usize, usize),
) -> f64 {
    let lanes = S::LANES;
    let tiny = s.splat(f32::MIN_POSITIVE);
    let mut total = 0.0;
    let mut tiles_sum = s.splat(0.0);
    for (tile, mb) in (0..joint.mp).step_by(TILE_VECTORS * lanes).enumerate() {
        let mut acc = [[s.splat(0.0); CB]; TILE_VECTORS];
        for kk in 0..k {
            let at = (mb / JOINT_ROW_PAD * k + kk) * JOINT_ROW_PAD + mb % JOINT_ROW_PAD;
            let row = &joint.at[at..][..TILE_VECTORS * lanes];
            let a: [S::V; TILE_VECTORS] = core::array::from_fn(|v| s.load(&row[v * lanes..]));
            let p = &probs[kk * c + start..][..CB];
            for j in 0..CB {
                let pj = s.splat(p[j]);
                for (acc_v, &a_v) in acc.iter_mut().zip(&a) {
                    acc_v[j] = s.fma(a_v, pj, acc_v[j]);
                }
            }
        }
        let mut sum = s.splat(0.0);
        for (v, acc_v) in acc.iter().enumerate() {
            let scale = if SCALED {
                s.load(&joint.scale[mb + v * lanes..])
            } else {
                s.splat(0.0)
            };
            for &x in acc_v {
                // x = 0 gives 0 * (ln(tiny) + s) = 0: 0 ln 0 = 0 without a select.
                let l = ln_normal(s, s.max(x, tiny));
                let l = if SCALED { s.add(l, scale) } else { l };
                sum = s.fma(x, l, sum);
            }
        }
        // Tiles' sums stay independent; their total is folded into f64 every 8 tiles.
        tiles_sum = s.add(tiles_sum, sum);
        if tile % 8 == 7 {
            total += s.reduce(tiles_sum);
            tiles_sum = s.splat(0.0);
        }
    }
    total + s.reduce(tiles_sum)
}
