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

/// What a greedy run holds room for: its picks, the rows its joint can reach, the rows of the
/// exact regime, the sampled configurations per MC sample and the chosen points kept.
struct Plan {
    picks: usize,
    rows_cap: usize,
    exact_cap: usize,
    per: usize,
    kept: usize,
}

impl Plan {
    fn new(params: &BatchBald, shape: bald_core::Shape) -> Result<Self, CudaError> {
        let (n, k, c) = (shape.n, shape.k, shape.c);
        let picks = params.picks(n);
        let num_samples = params.num_samples;
        let rows_cap = dynamic_joint_rows(shape, picks.saturating_sub(1), num_samples)?;
        let mut exact_cap = 1usize;
        for _ in 0..picks.saturating_sub(1) {
            match exact_cap.checked_mul(c) {
                Some(r) if r <= num_samples => exact_cap = r,
                _ => break,
            }
        }
        Ok(Plan {
            picks,
            rows_cap,
            exact_cap,
            per: (num_samples / k).max(1),
            kept: picks.saturating_sub(1).max(1),
        })
    }

    /// Device bytes of every buffer of the run, planned together with the pool.
    fn bytes(&self, shape: bald_core::Shape) -> Result<usize, CudaError> {
        let (n, k, c) = (shape.n, shape.k, shape.c);
        let sizes = [
            mul(n, 2 * 8)?,                       // conditional and joint entropies
            mul(mul(k, self.exact_cap)?, 2 * 8)?, // the f64 joint, double-buffered
            mul(mul(k, self.rows_cap)?, 4)?,      // its f32 transpose
            mul(self.rows_cap, 4)?,               // log scales
            mul(mul(self.rows_cap, k)?, 8)?,      // sampled log-likelihoods
            mul(mul(mul(self.kept, k)?, c)?, 8)?, // the chosen points' log-probs
            mul(self.picks, 4)?,                  // the chosen indices
            mul(mul(k, c)?, 4)?,                  // the newest pick's joint (pairwise bounds)
            ArgmaxBuffers::bytes(n),
        ];
        sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s))
            .ok_or(CudaError::Input(bald_core::Error::ShapeOverflow))
    }
}

/// The run's per-point buffers: entropies, then each step's joint entropies or scores, the
/// chosen points and the argmax's scratch.
struct Points {
    cond: CudaSlice<f64>,
    h: CudaSlice<f64>,
    chosen_lp: CudaSlice<f64>,
    chosen: CudaSlice<u32>,
    pair_at: CudaSlice<f32>,
    argmax: ArgmaxBuffers,
}

/// The joint of the chosen points on the device, exact (`a64`, double-buffered, and its f32
/// transpose `at`) or sampled (`log_lik` drawn there, merged on the host into `at` and
/// `log_scale`), and the step's state.
struct Joint {
    a64: [CudaSlice<f64>; 2],
    at: CudaSlice<f32>,
    log_scale: CudaSlice<f32>,
    log_lik: CudaSlice<f64>,
    /// Which of `a64` holds the joint.
    cur: usize,
    /// Its rows (distinct configurations when sampled).
    rows: usize,
    sampled: bool,
    /// Configurations drawn, and the batch's entropy under them (JointProbs::batch_entropy).
    samples: usize,
    h_batch: f64,
    /// The host side of the merge, sized at the first sampled step.
    ll: Vec<f64>,
    order: Vec<f64>,
    count: Vec<f64>,
    merged: Vec<f64>,
    scales: Vec<f64>,
}

/// The error of an upload of `what`.
fn up(what: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    driver(format!("uploading {what}"))
}

impl Joint {
    /// The empty batch's joint: one row, a = 1/K.
    fn start(be: &CudaBackend, plan: &Plan, k: usize) -> Result<Self, CudaError> {
        let mut joint = Joint {
            a64: [
                be.uninit::<f64>(k * plan.exact_cap, "the joint")?,
                be.uninit::<f64>(k * plan.exact_cap, "the joint")?,
            ],
            at: be.uninit::<f32>(k * plan.rows_cap, "the joint")?,
            log_scale: be.uninit::<f32>(plan.rows_cap, "the joint")?,
            log_lik: be.uninit::<f64>(plan.rows_cap * k, "the joint")?,
            cur: 0,
            rows: 1,
            sampled: false,
            samples: 1,
            h_batch: 0.0,
            ll: Vec::new(),
            order: Vec::new(),
            count: Vec::new(),
            merged: Vec::new(),
            scales: Vec::new(),
        };
        let stream = &be.device.stream;
        let start = vec![1.0 / k as f64; k];
        stream
            .memcpy_htod(&start, &mut joint.a64[0].slice_mut(..k))
            .map_err(up("the joint"))?;
        let start32: Vec<f32> = start.iter().map(|&v| v as f32).collect();
        stream
            .memcpy_htod(&start32, &mut joint.at.slice_mut(..k))
            .map_err(up("the joint"))?;
        Ok(joint)
    }

    /// The weight of a row and the log scales, for the joint-entropy kernel.
    fn weight(&self) -> (f64, Option<&CudaSlice<f32>>) {
        if self.sampled {
            (1.0 / self.samples as f64, Some(&self.log_scale))
        } else {
            (1.0, None)
        }
    }

    /// Extends the joint by the `t`-th pick (its log-probs in `chosen_lp`): exact while C^t
    /// rows fit `num_samples`, sampled beyond.
    fn extend(
        &mut self,
        be: &CudaBackend,
        plan: &Plan,
        params: &BatchBald,
        shape: bald_core::Shape,
        chosen_lp: &CudaSlice<f64>,
        t: usize,
    ) -> Result<(), CudaError> {
        let exact_rows = self
            .rows
            .checked_mul(shape.c)
            .filter(|&r| !self.sampled && r <= params.num_samples);
        match exact_rows {
            Some(rows) => self.extend_exact(be, shape, chosen_lp, t, rows),
            None => self.extend_sampled(be, plan, params, shape, chosen_lp, t),
        }
    }

    /// The exact joint times the newest pick's K x C: `rows` configurations.
    fn extend_exact(
        &mut self,
        be: &CudaBackend,
        shape: bald_core::Shape,
        chosen_lp: &CudaSlice<f64>,
        t: usize,
        rows: usize,
    ) -> Result<(), CudaError> {
        let (k, c) = (shape.k, shape.c);
        let (k32, c32) = (u32_of("K", k)?, u32_of("C", c)?);
        let kernel = Kernel::JointExpandF64;
        let f = be.device.function(kernel)?;
        let rows32 = u32_of("joint rows", self.rows)?;
        let point = chosen_lp.slice((t - 1) * k * c..t * k * c);
        let [x, y] = &mut self.a64;
        let (old, new) = if self.cur == 0 { (&*x, y) } else { (&*y, x) };
        let at = &mut self.at;
        // SAFETY: arguments match joint_expand_f64 in joint.cu; old holds K x rows, new and at
        // K x rows * C <= K x exact_cap, point K x C.
        unsafe {
            be.device.launch(&f, kernel, grid_for(k * rows)?, |bld| {
                bld.arg(old).arg(&rows32).arg(&k32).arg(&point).arg(&c32);
                bld.arg(new).arg(at);
            })
        }?;
        self.cur = 1 - self.cur;
        self.rows = rows;
        Ok(())
    }

    /// The sampled joint: the configurations drawn on the device (entering the regime draws
    /// every chosen point, later steps the newest), repeated ones merged on the host as
    /// bald-core's DynamicJoint merges them (the same rows, in the same order, for every
    /// backend), uploaded with their log scales.
    fn extend_sampled(
        &mut self,
        be: &CudaBackend,
        plan: &Plan,
        params: &BatchBald,
        shape: bald_core::Shape,
        chosen_lp: &CudaSlice<f64>,
        t: usize,
    ) -> Result<(), CudaError> {
        let (k, c) = (shape.k, shape.c);
        let (k32, c32) = (u32_of("K", k)?, u32_of("C", c)?);
        let [key0, key1] = key_of(params.seed);
        let new_rows = plan.per * k;
        let kernel = Kernel::JointSampleF64;
        let f = be.device.function(kernel)?;
        let (first32, t32, per32, rows32) = (
            u32_of("batch", if self.sampled { t - 1 } else { 0 })?,
            u32_of("batch", t)?,
            u32_of("samples", plan.per)?,
            u32_of("joint rows", new_rows)?,
        );
        let log_lik = &mut self.log_lik;
        // SAFETY: arguments match joint_sample_f64 in joint.cu; chosen_lp holds t x K x C,
        // log_lik rows x K (kept from the last step when first > 0), rows <= rows_cap.
        unsafe {
            be.device.launch(&f, kernel, grid_for(new_rows)?, |bld| {
                bld.arg(chosen_lp)
                    .arg(&first32)
                    .arg(&t32)
                    .arg(&k32)
                    .arg(&c32)
                    .arg(&per32);
                bld.arg(&key0).arg(&key1).arg(log_lik).arg(&rows32);
            })
        }?;
        for (v, len) in [
            (&mut self.ll, new_rows * k),
            (&mut self.merged, new_rows * k),
            (&mut self.order, new_rows),
            (&mut self.count, new_rows),
            (&mut self.scales, new_rows),
        ] {
            v.resize(len, 0.0f64);
        }
        be.download(&self.log_lik, &mut self.ll, "the joint")?;
        let scratch = (&mut self.order[..], &mut self.count[..]);
        let rows = merge_repeated_rows(&self.ll, k, scratch, &mut self.merged, &mut self.scales);
        let (a, s) = (&self.merged[..rows * k], &self.scales[..rows]);
        let stream = &be.device.stream;
        stream
            .memcpy_htod(
                &transpose_f32(a, rows, k),
                &mut self.at.slice_mut(..rows * k),
            )
            .map_err(up("the joint"))?;
        let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        stream
            .memcpy_htod(&s32, &mut self.log_scale.slice_mut(..rows))
            .map_err(up("the joint"))?;
        let view = JointProbs {
            a,
            log_scale: Some(s),
            weight: 1.0 / new_rows as f64,
            m: rows,
            k,
        };
        self.h_batch = view.batch_entropy();
        self.rows = rows;
        self.samples = new_rows;
        self.sampled = true;
        Ok(())
    }
}

/// Every point's entropy into `h` and conditional entropy into `cond`: the caller's (from a
/// validating pass) or computed. BALD bounds lazy's first gains.
fn entropies<T: Element>(
    be: &CudaBackend,
    pass: &crate::pool::Pass<'_, '_, T>,
    hooks: &Hooks<'_>,
    points: &mut Points,
    shape: bald_core::Shape,
) -> Result<(), CudaError> {
    if let Some((given_h, given_cond)) = hooks.given_entropies(shape.n)? {
        for (from, to) in [(given_h, &mut points.h), (given_cond, &mut points.cond)] {
            be.device
                .stream
                .memcpy_htod(from, to)
                .map_err(up("entropies"))?;
        }
        return Ok(());
    }
    let Points { cond, h, .. } = points;
    be.for_each_chunk(pass, |range, data| {
        let len = range.len();
        let mut view = cond.slice_mut(range.clone());
        let mut entropy = h.slice_mut(range);
        let kind = ScoreKind::Entropies;
        be.launch_scores(
            data,
            len,
            shape.k,
            shape.c,
            kind,
            &mut entropy,
            Some(&mut view),
            None,
        )
    })
}

/// The excluded points' conditional entropies set to +inf (scores of -inf), on the host too
/// when lazy greedy keeps its bounds there; returns the host copy (empty when not needed) and
/// the picks left.
fn exclude(
    be: &CudaBackend,
    hooks: &Hooks<'_>,
    lazy: bool,
    points: &mut Points,
    picks: usize,
) -> Result<(Vec<f64>, usize), CudaError> {
    if hooks.exclude.is_empty() && !lazy {
        return Ok((Vec::new(), picks));
    }
    let mut host_cond = vec![0.0; points.cond.len()];
    be.download(&points.cond, &mut host_cond, "entropies")?;
    let left = exclude_candidates(&mut host_cond, hooks.exclude)?;
    be.device
        .stream
        .memcpy_htod(&host_cond, &mut points.cond)
        .map_err(up("entropies"))?;
    Ok((host_cond, picks.min(left)))
}

/// Greedy BatchBALD with `params` over `pool`, every step on the device: plan the buffers, the
/// entropies, the exclusions, then at each step extend the joint by the last pick, pick (lazy
/// or full) and record the pick.
pub(crate) fn run<T: Element>(
    be: &CudaBackend,
    params: &BatchBald,
    pool: &CudaPool<'_, T>,
    out_indices: &mut [usize],
    out_scores: &mut [f64],
    hooks: &mut Hooks<'_>,
) -> Result<usize, CudaError> {
    let shape = pool.shape;
    let (n, k, c) = (shape.n, shape.k, shape.c);
    let plan = Plan::new(params, shape)?;
    if plan.picks == 0 {
        return Ok(0);
    }
    let pass = be.plan(pool, "BatchBALD", plan.bytes(shape)?, 0)?;
    let mut points = Points {
        cond: be.uninit::<f64>(n, "entropies")?,
        h: be.uninit::<f64>(n, "entropies")?,
        chosen_lp: be.uninit::<f64>(plan.kept * k * c, "chosen points")?,
        chosen: be.uninit::<u32>(plan.picks, "chosen points")?,
        pair_at: be.uninit::<f32>(k * c, "the joint")?,
        argmax: ArgmaxBuffers::new(be, n)?,
    };
    entropies(be, &pass, hooks, &mut points, shape)?;
    let lazy = params.greedy == Greedy::Lazy;
    let (host_cond, b) = exclude(be, hooks, lazy, &mut points, plan.picks)?;
    if b == 0 {
        return Ok(0);
    }
    let mut lazy_ws = vec![0.0; if lazy { lazy_workspace_len(n)? } else { 0 }];
    let mut lazy = if lazy {
        let mut entropy = vec![0.0; n];
        be.download(&points.h, &mut entropy, "entropies")?;
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
    let mut joint = Joint::start(be, &plan, k)?;
    for t in 0..b {
        if t > 0 {
            let idx = out_indices[..t]
                .iter()
                .map(|&i| u32_of("N", i))
                .collect::<Result<Vec<u32>, _>>()?;
            be.device
                .stream
                .memcpy_htod(&idx, &mut points.chosen.slice_mut(..t))
                .map_err(up("chosen points"))?;
            joint.extend(be, &plan, params, shape, &points.chosen_lp, t)?;
        }
        let (best, score, evaluations) = match lazy.as_mut() {
            Some(lazy) => {
                // Lazy greedy keeps the conditional entropies on the host.
                let shared: f64 = out_indices[..t].iter().map(|&i| host_cond[i]).sum();
                let blocks = (&mut block_idx[..], &mut block_h[..]);
                let step = Step { t, shared, shape };
                pick_lazy(
                    be,
                    &pass,
                    lazy,
                    &joint,
                    &mut points,
                    &host_cond,
                    blocks,
                    step,
                )?
            }
            None => pick_full(be, &pass, &joint, &mut points, shape, t)?,
        };
        out_indices[t] = best;
        out_scores[t] = score;
        if t + 1 < b {
            let point = keep_pick(be, pool, &mut points, best, t)?;
            if let Some(lazy) = lazy.as_mut() {
                let blocks = (&mut block_idx[..], &mut block_h[..]);
                tighten(
                    be,
                    &pass,
                    lazy,
                    &point,
                    &mut points,
                    &host_cond,
                    blocks,
                    shape,
                )?;
            }
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

/// A greedy step: `t` points chosen, the sum of their conditional entropies, the pool's shape.
#[derive(Clone, Copy)]
struct Step {
    t: usize,
    shared: f64,
    shape: bald_core::Shape,
}

/// Lazy greedy's step `t`: bald-core's driver, with the joint on the device and the candidates
/// of each block gathered there. Returns the pick, its score and the evaluations.
#[allow(clippy::too_many_arguments)]
fn pick_lazy<T: Element>(
    be: &CudaBackend,
    pass: &crate::pool::Pass<'_, '_, T>,
    lazy: &mut LazyGreedy<'_>,
    joint: &Joint,
    points: &mut Points,
    host_cond: &[f64],
    (block_idx, block_h): (&mut [usize], &mut [f64]),
    Step { t, shared, shape }: Step,
) -> Result<(usize, f64, usize), CudaError> {
    let (k, c) = (shape.k, shape.c);
    let (weight, scale) = joint.weight();
    if joint.sampled {
        lazy.start_sampled_step(joint.h_batch - shared, c, joint.samples);
    }
    let mut block = be.lazy_block(shape).clamp(1, block_idx.len());
    loop {
        let candidates = lazy.next_block(&mut block_idx[..block]);
        if candidates.is_empty() {
            break;
        }
        let len = candidates.len();
        let mut view = points.h.slice_mut(..len);
        let rows = joint.rows;
        be.with_candidates(pass, candidates, |data, idx| {
            be.launch_joint(
                data, idx, len, k, c, &joint.at, scale, rows, weight, &mut view,
            )
        })?;
        let scores = &mut block_h[..len];
        be.download(&points.h, scores, "joint entropies")?;
        // The full step's arithmetic (candidate_scores_f64).
        for (s, &i) in scores.iter_mut().zip(candidates) {
            *s -= host_cond[i] + shared;
        }
        lazy.report(scores);
        block = (2 * block).min(block_idx.len());
    }
    let evaluations = lazy.evaluations();
    let (best, score) = lazy.pick().ok_or(CudaError::NoCandidate { step: t })?;
    Ok((best, score, evaluations))
}

/// Full greedy's step `t`: every candidate's joint entropy, its score, and the device argmax.
fn pick_full<T: Element>(
    be: &CudaBackend,
    pass: &crate::pool::Pass<'_, '_, T>,
    joint: &Joint,
    points: &mut Points,
    shape: bald_core::Shape,
    t: usize,
) -> Result<(usize, f64, usize), CudaError> {
    let (n, k, c) = (shape.n, shape.k, shape.c);
    let (weight, scale) = joint.weight();
    let rows = joint.rows;
    let h = &mut points.h;
    be.for_each_chunk(pass, |range, data| {
        let len = range.len();
        let mut view = h.slice_mut(range);
        be.launch_joint(
            data, None, len, k, c, &joint.at, scale, rows, weight, &mut view,
        )
    })?;
    let kernel = Kernel::CandidateScoresF64;
    let f = be.device.function(kernel)?;
    let (t32, n32) = (u32_of("batch", t)?, u32_of("N", n)?);
    let Points {
        h, cond, chosen, ..
    } = points;
    // SAFETY: arguments match candidate_scores_f64 in joint.cu; h and cond hold N f64s,
    // chosen at least t indices < N.
    unsafe {
        be.device.launch(&f, kernel, grid_for(n)?, |bld| {
            bld.arg(&mut *h)
                .arg(&*cond)
                .arg(&*chosen)
                .arg(&t32)
                .arg(&n32);
        })
    }?;
    let (best, score) =
        argmax(be, &points.h, &mut points.argmax)?.ok_or(CudaError::NoCandidate { step: t })?;
    Ok((best, score, n))
}

/// The pick's log-probs (read from the device for a pool that is only there) into its slot of
/// the chosen points, for the next step's joint; returns them.
fn keep_pick<'p, T: Element>(
    be: &CudaBackend,
    pool: &'p CudaPool<'_, T>,
    points: &mut Points,
    best: usize,
    t: usize,
) -> Result<std::borrow::Cow<'p, [T]>, CudaError> {
    let kc = pool.shape.k * pool.shape.c;
    let point = pool.point(be, best)?;
    let lp: Vec<f64> = point.iter().map(|x| x.to_f64()).collect();
    be.device
        .stream
        .memcpy_htod(&lp, &mut points.chosen_lp.slice_mut(t * kc..(t + 1) * kc))
        .map_err(up("chosen points"))?;
    Ok(point)
}

/// bald-core's pairwise bounds (BatchBald::greedy): every bound lowered to the candidate's gain
/// given the newest pick alone, from the pick's joint (C rows), transposed.
#[allow(clippy::too_many_arguments)]
fn tighten<T: Element>(
    be: &CudaBackend,
    pass: &crate::pool::Pass<'_, '_, T>,
    lazy: &mut LazyGreedy<'_>,
    point: &[T],
    points: &mut Points,
    host_cond: &[f64],
    (block_idx, block_h): (&mut [usize], &mut [f64]),
    shape: bald_core::Shape,
) -> Result<(), CudaError> {
    let (k, c) = (shape.k, shape.c);
    let mut pair_a = vec![0.0f64; k * c];
    let h_pick = pick_joint(point, k, c, &mut pair_a);
    let pair32: Vec<f32> = (0..k * c)
        .map(|i| pair_a[(i % c) * k + i / c] as f32)
        .collect();
    be.device
        .stream
        .memcpy_htod(&pair32, &mut points.pair_at)
        .map_err(up("the joint"))?;
    let Points { h, pair_at, .. } = points;
    lazy.tighten(block_idx, block_h, |candidates, gains| {
        let len = candidates.len();
        let mut view = h.slice_mut(..len);
        be.with_candidates(pass, candidates, |data, idx| {
            be.launch_joint(data, idx, len, k, c, pair_at, None, c, 1.0, &mut view)
        })?;
        be.download(h, gains, "joint entropies")?;
        for (g, &i) in gains.iter_mut().zip(candidates) {
            *g -= h_pick + host_cond[i];
        }
        Ok::<(), CudaError>(())
    })
}
