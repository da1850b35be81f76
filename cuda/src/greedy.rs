//! Greedy BatchBALD on the device: every step there, the joint included. Full greedy brings
//! back only the picks and their scores; lazy greedy keeps bald-core's `LazyGreedy` (the
//! bounds) on the host and brings back each block's joint entropies.

use bald_core::joint::{dynamic_joint_rows, merge_repeated_rows};
use bald_core::rng::key_of;
use bald_core::{
    exclude_candidates, lazy_workspace_len, pick_joint, Backend, BatchBald, Element, Greedy, Hooks,
    JointProbs, LazyGreedy, Pick,
};
use bald_kernels::{Kernel, ScoreKind};
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use crate::backend::{grid_for, mul, transpose_f32, NULL};
use crate::error::{driver, u32_of};
use crate::{CudaBackend, CudaError, CudaPool};

/// Per-block and final (value, index) pairs of the two-pass argmax.
pub(crate) struct ArgmaxBuffers {
    block_val: CudaSlice<f64>,
    block_idx: CudaSlice<u32>,
    best_val: CudaSlice<f64>,
    best_idx: CudaSlice<u32>,
}

/// Most candidates one lazy block evaluates.
const MAX_LAZY_BLOCK: usize = 1 << 16;

/// Blocks of the argmax's first pass over `n` values.
fn argmax_blocks(n: usize) -> usize {
    n.div_ceil(256).clamp(1, 1024)
}

impl ArgmaxBuffers {
    /// Device bytes for `n` values.
    fn bytes(n: usize) -> usize {
        (argmax_blocks(n) + 1) * (8 + 4)
    }

    pub(crate) fn new(be: &CudaBackend, n: usize) -> Result<Self, CudaError> {
        let blocks = argmax_blocks(n);
        Ok(ArgmaxBuffers {
            block_val: be.uninit(blocks, "argmax buffers")?,
            block_idx: be.uninit(blocks, "argmax buffers")?,
            best_val: be.uninit(1, "argmax buffers")?,
            best_idx: be.uninit(1, "argmax buffers")?,
        })
    }
}

/// The device argmax of `vals` (ties to the lower index): (index, value), or `None` when no
/// value compares (every one NaN).
pub(crate) fn argmax(
    be: &CudaBackend,
    vals: &CudaSlice<f64>,
    bufs: &mut ArgmaxBuffers,
) -> Result<Option<(usize, f64)>, CudaError> {
    let n = vals.len();
    let blocks = bufs.block_val.len();
    let ArgmaxBuffers {
        block_val,
        block_idx,
        best_val,
        best_idx,
    } = bufs;
    let kernel = Kernel::ArgmaxF64;
    let f = be.device.function(kernel)?;
    let (n32, blocks32) = (u32_of("N", n)?, u32_of("blocks", blocks)?);
    let cfg = |grid: u32| LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: arguments match argmax_f64 in joint.cu; vals holds n f64s, the outputs one
    // entry per block.
    unsafe {
        be.device.launch(&f, kernel, cfg(blocks32), |b| {
            b.arg(vals)
                .arg(&NULL)
                .arg(&n32)
                .arg(&mut *block_val)
                .arg(&mut *block_idx);
        })
    }?;
    // SAFETY: as above, over the `blocks` block results with one block.
    unsafe {
        be.device.launch(&f, kernel, cfg(1), |b| {
            b.arg(&*block_val).arg(&*block_idx).arg(&blocks32);
            b.arg(&mut *best_val).arg(&mut *best_idx);
        })
    }?;
    let (mut v, mut i) = ([0.0f64], [0u32]);
    be.download(best_val, &mut v, "the argmax")?;
    be.download(best_idx, &mut i, "the argmax")?;
    // The sentinel index u32::MAX: nothing beat -inf with an index, i.e. every value NaN.
    let i = i[0] as usize;
    Ok((i < n).then_some((i, v[0])))
}

/// Greedy BatchBALD with `params` over `pool`, every step on the device.
pub(crate) fn run<T: Element>(
    be: &CudaBackend,
    params: &BatchBald,
    pool: &CudaPool<'_, T>,
    out_indices: &mut [usize],
    out_scores: &mut [f64],
    hooks: &mut Hooks<'_>,
) -> Result<usize, CudaError> {
    let stream = &be.device.stream;
    let shape = pool.shape;
    let (n, k, c) = (shape.n, shape.k, shape.c);
    let b = params.picks(n);
    if b == 0 {
        return Ok(0);
    }
    let num_samples = params.num_samples;
    // Capacities: rows the joint can reach, rows of the exact regime, chosen points kept.
    let rows_cap = dynamic_joint_rows(shape, b - 1, num_samples)?;
    let mut exact_cap = 1usize;
    for _ in 0..b - 1 {
        match exact_cap.checked_mul(c) {
            Some(r) if r <= num_samples => exact_cap = r,
            _ => break,
        }
    }
    let per = (num_samples / k).max(1);
    let kept = (b - 1).max(1);
    // Every buffer of the acquisition, planned together with the pool.
    let sizes = [
        mul(n, 2 * 8)?,                  // conditional and joint entropies
        mul(mul(k, exact_cap)?, 2 * 8)?, // the f64 joint, double-buffered
        mul(mul(k, rows_cap)?, 4)?,      // its f32 transpose
        mul(rows_cap, 4)?,               // log scales
        mul(mul(rows_cap, k)?, 8)?,      // sampled log-likelihoods
        mul(mul(mul(kept, k)?, c)?, 8)?, // the chosen points' log-probs
        mul(b, 4)?,                      // the chosen indices
        mul(mul(k, c)?, 4)?,             // the newest pick's joint (lazy's pairwise bounds)
        ArgmaxBuffers::bytes(n),
    ];
    let fixed = sizes
        .iter()
        .try_fold(0usize, |acc, &s| acc.checked_add(s))
        .ok_or(CudaError::Input(bald_core::Error::ShapeOverflow))?;
    let pass = be.plan(pool, "BatchBALD", fixed, 0)?;
    let mut cond = be.uninit::<f64>(n, "entropies")?;
    let mut h = be.uninit::<f64>(n, "entropies")?;
    let mut a64 = [
        be.uninit::<f64>(k * exact_cap, "the joint")?,
        be.uninit::<f64>(k * exact_cap, "the joint")?,
    ];
    let mut at = be.uninit::<f32>(k * rows_cap, "the joint")?;
    let mut log_scale = be.uninit::<f32>(rows_cap, "the joint")?;
    let mut log_lik = be.uninit::<f64>(rows_cap * k, "the joint")?;
    let mut chosen_lp = be.uninit::<f64>(kept * k * c, "chosen points")?;
    let mut chosen = be.uninit::<u32>(b, "chosen points")?;
    let mut pair_at = be.uninit::<f32>(k * c, "the joint")?;
    let mut pair_a = vec![0.0f64; k * c];
    let mut argmax_bufs = ArgmaxBuffers::new(be, n)?;

    // Entropies into h with the conditional ones: BALD bounds lazy's first gains.
    if let Some((given_h, given_cond)) = hooks.given_entropies(n)? {
        for (from, to) in [(given_h, &mut h), (given_cond, &mut cond)] {
            stream
                .memcpy_htod(from, to)
                .map_err(driver("uploading entropies"))?;
        }
    } else {
        be.for_each_chunk(&pass, |range, data| {
            let points = range.len();
            let mut view = cond.slice_mut(range.clone());
            let mut entropy = h.slice_mut(range);
            let kind = ScoreKind::Entropies;
            be.launch_scores(
                data,
                points,
                k,
                c,
                kind,
                &mut entropy,
                Some(&mut view),
                None,
            )
        })?;
    }
    let lazy = params.greedy == Greedy::Lazy;
    // Lazy greedy keeps the conditional entropies and the bounds on the host.
    let mut host_cond = Vec::new();
    let b = if hooks.exclude.is_empty() && !lazy {
        b
    } else {
        // Excluded points get a conditional entropy of +inf, hence a score of -inf.
        host_cond = vec![0.0; n];
        be.download(&cond, &mut host_cond, "entropies")?;
        let left = exclude_candidates(&mut host_cond, hooks.exclude)?;
        stream
            .memcpy_htod(&host_cond, &mut cond)
            .map_err(driver("uploading entropies"))?;
        b.min(left)
    };
    if b == 0 {
        return Ok(0);
    }
    let mut lazy_ws = vec![0.0; if lazy { lazy_workspace_len(n)? } else { 0 }];
    let mut lazy = if lazy {
        let mut entropy = vec![0.0; n];
        be.download(&h, &mut entropy, "entropies")?;
        Some(LazyGreedy::new(&mut lazy_ws, n, |i| {
            // Excluded points (conditional entropy +inf) are no candidates.
            match host_cond[i] {
                f64::INFINITY => f64::NAN,
                e => entropy[i] - e,
            }
        })?)
    } else {
        None
    };
    let max_block = pass.chunk().min(MAX_LAZY_BLOCK);
    let mut block_idx = vec![0usize; if lazy.is_some() { max_block } else { 0 }];
    let mut block_h = vec![0.0f64; block_idx.len()];
    // t = 0: one row, a = 1/K.
    let up = |what: &'static str| driver(format!("uploading {what}"));
    let start = vec![1.0 / k as f64; k];
    stream
        .memcpy_htod(&start, &mut a64[0].slice_mut(..k))
        .map_err(up("the joint"))?;
    let start32: Vec<f32> = start.iter().map(|&v| v as f32).collect();
    stream
        .memcpy_htod(&start32, &mut at.slice_mut(..k))
        .map_err(up("the joint"))?;
    let (k32, c32, n32) = (u32_of("K", k)?, u32_of("C", c)?, u32_of("N", n)?);
    let [key0, key1] = key_of(params.seed);
    let mut rows = 1usize;
    // Sampled regime: the configurations drawn (rows holds the distinct ones), and the batch's
    // entropy under them (JointProbs::batch_entropy).
    let mut samples = 1usize;
    let mut h_batch = 0.0f64;
    // The host side of the merge: log-likelihoods, sort order, counts, merged joint and scales,
    // sized at the first sampled step (the same size at every one).
    let (mut ll, mut order, mut count) = (Vec::new(), Vec::new(), Vec::new());
    let (mut merged, mut scales) = (Vec::new(), Vec::new());
    let mut cur = 0usize;
    let mut sampled = false;
    for t in 0..b {
        if t > 0 {
            let idx = out_indices[..t]
                .iter()
                .map(|&i| u32_of("N", i))
                .collect::<Result<Vec<u32>, _>>()?;
            let mut slot = chosen.slice_mut(..t);
            stream
                .memcpy_htod(&idx, &mut slot)
                .map_err(up("chosen points"))?;
            let exact_rows = rows
                .checked_mul(c)
                .filter(|&r| !sampled && r <= num_samples);
            if let Some(new_rows) = exact_rows {
                let kernel = Kernel::JointExpandF64;
                let f = be.device.function(kernel)?;
                let rows32 = u32_of("joint rows", rows)?;
                let point = chosen_lp.slice((t - 1) * k * c..t * k * c);
                let [x, y] = &mut a64;
                let (old, new) = if cur == 0 { (&*x, y) } else { (&*y, x) };
                // SAFETY: arguments match joint_expand_f64 in joint.cu; old holds K x rows,
                // new and at K x rows * C <= K x exact_cap, point K x C.
                unsafe {
                    be.device
                        .launch(&f, kernel, grid_for(k * new_rows)?, |bld| {
                            bld.arg(old).arg(&rows32).arg(&k32).arg(&point).arg(&c32);
                            bld.arg(new).arg(&mut at);
                        })
                }?;
                cur = 1 - cur;
                rows = new_rows;
            } else {
                let new_rows = per * k;
                let kernel = Kernel::JointSampleF64;
                let f = be.device.function(kernel)?;
                let (first32, t32, per32, rows32) = (
                    // Entering the regime draws every chosen point; later steps the newest.
                    u32_of("batch", if sampled { t - 1 } else { 0 })?,
                    u32_of("batch", t)?,
                    u32_of("samples", per)?,
                    u32_of("joint rows", new_rows)?,
                );
                // SAFETY: arguments match joint_sample_f64 in joint.cu; chosen_lp holds
                // t x K x C, log_lik rows x K (kept from the last step when first > 0),
                // rows <= rows_cap.
                unsafe {
                    be.device.launch(&f, kernel, grid_for(new_rows)?, |bld| {
                        bld.arg(&chosen_lp)
                            .arg(&first32)
                            .arg(&t32)
                            .arg(&k32)
                            .arg(&c32)
                            .arg(&per32);
                        bld.arg(&key0).arg(&key1).arg(&mut log_lik).arg(&rows32);
                    })
                }?;
                // Repeated configurations merged into one row each, on the host as bald-core's
                // DynamicJoint merges them: the same rows, in the same order, for every backend.
                for (v, len) in [
                    (&mut ll, new_rows * k),
                    (&mut merged, new_rows * k),
                    (&mut order, new_rows),
                    (&mut count, new_rows),
                    (&mut scales, new_rows),
                ] {
                    v.resize(len, 0.0f64);
                }
                be.download(&log_lik, &mut ll, "the joint")?;
                let scratch = (&mut order[..], &mut count[..]);
                rows = merge_repeated_rows(&ll, k, scratch, &mut merged, &mut scales);
                let (a, s) = (&merged[..rows * k], &scales[..rows]);
                stream
                    .memcpy_htod(&transpose_f32(a, rows, k), &mut at.slice_mut(..rows * k))
                    .map_err(up("the joint"))?;
                let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
                stream
                    .memcpy_htod(&s32, &mut log_scale.slice_mut(..rows))
                    .map_err(up("the joint"))?;
                samples = new_rows;
                let view = JointProbs {
                    a,
                    log_scale: Some(s),
                    weight: 1.0 / samples as f64,
                    m: rows,
                    k,
                };
                h_batch = view.batch_entropy();
                sampled = true;
            }
        }
        let weight = if sampled { 1.0 / samples as f64 } else { 1.0 };
        let scale = if sampled { Some(&log_scale) } else { None };
        let (best, score, evaluations) = match lazy.as_mut() {
            Some(lazy) => {
                // bald-core's driver, with the joint on the device and candidates gathered there.
                let shared: f64 = out_indices[..t].iter().map(|&i| host_cond[i]).sum();
                if sampled {
                    lazy.start_sampled_step(h_batch - shared, c, samples);
                }
                let mut block = be.lazy_block(shape).clamp(1, max_block);
                loop {
                    let candidates = lazy.next_block(&mut block_idx[..block]);
                    if candidates.is_empty() {
                        break;
                    }
                    let len = candidates.len();
                    let mut view = h.slice_mut(..len);
                    be.with_candidates(&pass, candidates, |data, idx| {
                        be.launch_joint(data, idx, len, k, c, &at, scale, rows, weight, &mut view)
                    })?;
                    let scores = &mut block_h[..len];
                    be.download(&h, scores, "joint entropies")?;
                    // The full step's arithmetic (candidate_scores_f64).
                    for (s, &i) in scores.iter_mut().zip(candidates) {
                        *s -= host_cond[i] + shared;
                    }
                    lazy.report(scores);
                    block = (2 * block).min(max_block);
                }
                let evaluations = lazy.evaluations();
                let (best, score) = lazy.pick().ok_or(CudaError::NoCandidate { step: t })?;
                (best, score, evaluations)
            }
            None => {
                be.for_each_chunk(&pass, |range, data| {
                    let points = range.len();
                    let mut view = h.slice_mut(range);
                    be.launch_joint(
                        data, None, points, k, c, &at, scale, rows, weight, &mut view,
                    )
                })?;
                let kernel = Kernel::CandidateScoresF64;
                let f = be.device.function(kernel)?;
                let t32 = u32_of("batch", t)?;
                // SAFETY: arguments match candidate_scores_f64 in joint.cu; h and cond hold N
                // f64s, chosen at least t indices < N.
                unsafe {
                    be.device.launch(&f, kernel, grid_for(n)?, |bld| {
                        bld.arg(&mut h).arg(&cond).arg(&chosen).arg(&t32).arg(&n32);
                    })
                }?;
                let (best, score) =
                    argmax(be, &h, &mut argmax_bufs)?.ok_or(CudaError::NoCandidate { step: t })?;
                (best, score, n)
            }
        };
        out_indices[t] = best;
        out_scores[t] = score;
        // The pick's log-probs (read from the device for a pool that is only there): into its
        // slot of the chosen points, for the next step's joint update.
        let point = if t + 1 < b {
            let point = pool.point(be, best)?;
            let lp: Vec<f64> = point.iter().map(|x| x.to_f64()).collect();
            let mut slot = chosen_lp.slice_mut(t * k * c..(t + 1) * k * c);
            stream
                .memcpy_htod(&lp, &mut slot)
                .map_err(up("chosen points"))?;
            Some(point)
        } else {
            None
        };
        if let (Some(lazy), Some(point)) = (lazy.as_mut(), point) {
            // bald-core's pairwise bounds (BatchBald::greedy): the pick's joint, transposed.
            let h_pick = pick_joint(&point, k, c, &mut pair_a);
            let pair32: Vec<f32> = (0..k * c)
                .map(|i| pair_a[(i % c) * k + i / c] as f32)
                .collect();
            stream
                .memcpy_htod(&pair32, &mut pair_at)
                .map_err(up("the joint"))?;
            lazy.tighten(&mut block_idx, &mut block_h, |candidates, gains| {
                let len = candidates.len();
                let mut view = h.slice_mut(..len);
                be.with_candidates(&pass, candidates, |data, idx| {
                    be.launch_joint(data, idx, len, k, c, &pair_at, None, c, 1.0, &mut view)
                })?;
                be.download(&h, gains, "joint entropies")?;
                for (g, &i) in gains.iter_mut().zip(candidates) {
                    *g -= h_pick + host_cond[i];
                }
                Ok::<(), CudaError>(())
            })?;
        }
        hooks.picked(Pick {
            done: t + 1,
            total: b,
            index: best,
            score,
            evaluations,
        })?;
    }
    Ok(b)
}
