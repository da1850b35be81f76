//! Greedy batch EPIG: the batch B whose labels tell most about the predictions on the targets,
//! mean_m I(y_B; y*_m), built one point at a time (Bickford Smith et al. 2023, section 3.3).
//!
//! With the batch so far B and a candidate x, the cumulative score of B + x is
//!
//! I(y_{B+x}; y*) = H(y_B, y_x) + (1/M) sum_m H(y*_m) - (1/M) sum_m H(y_B, y*_m, y_x),
//!
//! two joint-entropy steps ([`crate::joint`]) whose rows every backend's
//! [`Backend::joint_entropies`] evaluates for all candidates at once.
//!
//! - Exact while C^t M C <= `num_samples` (t = 0, the EPIG step, always): H(y_B, y_x) over the
//!   rows of the batch's exact [`DynamicJoint`], as BatchBALD's step, and the targets' term over
//!   every (configuration of y_B, target m, class of y*_m), weight 1/M.
//! - Sampled beyond: S = M max(1, `num_samples` / (M C)) configurations of y_B, S / M paired
//!   with each target, each drawn from one MC sample's predictive. Both terms are estimated
//!   from the same configurations, importance-weighted by q(y_B) = (1/K) sum_k P(y_B | w_k)
//!   as BatchBALD's sampled joint: H(y_B, y_x) over rows a[s, k] = P(y_B^s | w_k) / (K q_s),
//!   and the targets' term over rows (s, c*) that sum the paired target's class exactly,
//!   a[(s, c*), k] = P(y_B^s | w_k) p_k(c* | x*_m) / (K q_s), both with s_s = ln q_s and
//!   weight 1/S (identical (target, configuration) pairs merged). The two estimates move
//!   together with the configurations, so their difference, the score, is far less noisy
//!   than either; the targets' rows are S C <= `num_samples`. A configuration keeps its
//!   draws as the batch grows (Philox counter (s, i, 0, [`Domain::EpigSample`]), i = 0 for
//!   its component, i + 1 for the i-th pick): successive steps share their random numbers.
//!
//! The objective is not known to be submodular, so every step evaluates every candidate: no
//! bound from an earlier step holds. Within a step one does (given y_B, y_x and y*_m are
//! independent given the weights, so I(y_x; y*_m | y_B) <= I(y_x; w | y_B), the candidate's
//! BatchBALD gain), but EPIG is far below BALD on real pools and the bound skipped no
//! candidate where it was tried (300 points, 4 targets), so it is not used.

use crate::backend::{Backend, PreparedPool};
use crate::batchbald::check_outputs;
use crate::element::Element;
use crate::epig::{check_targets, epig_targets};
use crate::error::{check_at_least, mul, Error};
use crate::joint::{
    add_drawn_class, count_repeats, dynamic_joint_workspace_len, joint_entropies_workspace_len,
    merged_row, DynamicJoint, JointProbs, Regime,
};
use crate::lazy::beats;
use crate::logprobs::{LogProbs, Shape};
use crate::math::neg_x_ln_x;
use crate::params::{exclude_candidates, Hooks, Pick};
use crate::rng::{counter, key_of, philox4x32_10, unit_f64, Domain};

/// The parameters of one greedy batch-EPIG acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEpig {
    /// Points to pick; clamped to the candidates.
    pub batch_size: usize,
    /// The most rows of the targets' joint before it is sampled, which bounds its rows
    /// beyond too (see the module docs).
    pub num_samples: usize,
    /// Seed of the sampled configurations.
    pub seed: u64,
}

/// Configurations S the sampled [`TargetJoint`] draws for targets of `shape`: S / M per target.
fn target_samples(shape: Shape, num_samples: usize) -> Result<usize, Error> {
    let per = num_samples / mul(shape.n, shape.c)?.max(1);
    mul(per.max(1), shape.n)
}

/// Whether the [`TargetJoint`] of `t` picks is exact: t = 0 always (the EPIG step), else while
/// C^t M C <= `num_samples`.
fn target_exact(targets: Shape, t: usize, num_samples: usize) -> bool {
    let mut rows = targets.n.saturating_mul(targets.c);
    for _ in 0..t {
        rows = rows.saturating_mul(targets.c);
        if rows > num_samples {
            return false;
        }
    }
    true
}

/// The most picks, up to `max_points`, whose [`TargetJoint`] is exact: those the batch's own
/// [`DynamicJoint`] serves (it is exact for them too, C^t <= C^t M C <= `num_samples`).
fn exact_picks(targets: Shape, max_points: usize, num_samples: usize) -> usize {
    (0..=max_points)
        .take_while(|&t| target_exact(targets, t, num_samples))
        .last()
        .unwrap_or(0)
}

/// The sizes of a [`TargetJoint`] for up to `max_points` picks: the most exact rows, and the
/// sampled configurations (0 if it stays exact).
fn target_sizes(
    targets: Shape,
    max_points: usize,
    num_samples: usize,
) -> Result<(usize, usize), Error> {
    let mut exact = mul(targets.n, targets.c)?;
    for t in 1..=max_points {
        if !target_exact(targets, t, num_samples) {
            return Ok((exact, target_samples(targets, num_samples)?));
        }
        exact = mul(exact, targets.c)?;
    }
    Ok((exact, 0))
}

/// f64s a [`TargetJoint`] for up to `max_points` picks needs beside the targets' rows: the
/// exact rows, or the sampled ones (S C rows and their scales, S rows of the batch's term and
/// theirs, S configurations' log-likelihoods, two f64s each to merge them).
fn target_joint_len(targets: Shape, max_points: usize, num_samples: usize) -> Result<usize, Error> {
    let (exact, samples) = target_sizes(targets, max_points, num_samples)?;
    let k1 = targets.k.checked_add(1).ok_or(Error::ShapeOverflow)?;
    let rows = exact.max(mul(samples, targets.c)?);
    let per_sample = mul(2, k1)?.checked_add(2).ok_or(Error::ShapeOverflow)?;
    mul(rows, k1)?
        .checked_add(mul(samples, per_sample)?)
        .ok_or(Error::ShapeOverflow)
}

/// The targets' side of batch EPIG for the batch so far (module docs).
#[derive(Debug)]
struct TargetJoint<'w> {
    /// The targets as rows, a[(m, c), k] = p_k(c | x*_m) / K (M C x K).
    targets: &'w [f64],
    /// The targets' term's rows and their log scales.
    a: &'w mut [f64],
    log_scale: &'w mut [f64],
    /// Sampled: the batch's term's rows and their log scales.
    batch_a: &'w mut [f64],
    batch_log_scale: &'w mut [f64],
    /// Sampled: log P(y_B^s | w_k) of each configuration (S x K).
    log_lik: &'w mut [f64],
    /// Sampled: the configurations in the order that groups identical pairs, and their counts.
    order: &'w mut [f64],
    count: &'w mut [f64],
    /// Targets M, MC samples K, classes C.
    shape: Shape,
    rows: usize,
    batch_rows: usize,
    samples: usize,
    chosen: usize,
    num_samples: usize,
    seed: u64,
    regime: Regime,
}

impl<'w> TargetJoint<'w> {
    /// The joint of no picks (the EPIG step's M C rows) over `targets` (M C x K rows, from
    /// [`epig_targets`]) in `workspace` of [`target_joint_len`] f64s.
    fn new(
        targets: &'w [f64],
        shape: Shape,
        workspace: &'w mut [f64],
        (max_points, num_samples, seed): (usize, usize, u64),
    ) -> Result<Self, Error> {
        let (exact, samples) = target_sizes(shape, max_points, num_samples)?;
        let rows_cap = exact.max(samples * shape.c);
        let k = shape.k;
        let (a, rest) = workspace.split_at_mut(rows_cap * k);
        let (log_scale, rest) = rest.split_at_mut(rows_cap);
        let (batch_a, rest) = rest.split_at_mut(samples * k);
        let (batch_log_scale, rest) = rest.split_at_mut(samples);
        let (log_lik, rest) = rest.split_at_mut(samples * k);
        let (order, rest) = rest.split_at_mut(samples);
        let count = &mut rest[..samples];
        let mut joint = TargetJoint {
            targets,
            a,
            log_scale,
            batch_a,
            batch_log_scale,
            log_lik,
            order,
            count,
            shape,
            rows: 0,
            batch_rows: 0,
            samples: 0,
            chosen: 0,
            num_samples,
            seed,
            regime: Regime::Exact,
        };
        joint.expand_exact(None);
        Ok(joint)
    }

    /// Rows (r, j) = the batch's exact row r times target row j, times K (both carry 1/K);
    /// the target rows alone for the empty batch (`None`).
    fn expand_exact(&mut self, batch: Option<&JointProbs<'_>>) {
        let k = self.shape.k;
        let mc = self.shape.n * self.shape.c;
        let batch_rows = batch.map_or(1, |b| b.m);
        for r in 0..batch_rows {
            for j in 0..mc {
                let row = &mut self.a[(r * mc + j) * k..(r * mc + j + 1) * k];
                let t = &self.targets[j * k..(j + 1) * k];
                match batch {
                    None => row.copy_from_slice(t),
                    Some(b) => {
                        let b = &b.a[r * k..(r + 1) * k];
                        for ((o, &x), &y) in row.iter_mut().zip(b).zip(t) {
                            *o = x * y * k as f64;
                        }
                    }
                }
            }
        }
        self.rows = batch_rows * mc;
    }

    /// Adds the newest pick: `batch` is the batch's joint with it (exact while this one is),
    /// `point(i)` the K x C log-probs of the i-th pick.
    fn add<'p, T: Element + 'p>(
        &mut self,
        batch: &JointProbs<'_>,
        point: impl Fn(usize) -> &'p [T],
    ) -> Result<(), Error> {
        self.chosen += 1;
        if self.regime == Regime::Exact && target_exact(self.shape, self.chosen, self.num_samples) {
            self.expand_exact(Some(batch));
            return Ok(());
        }
        self.sample(point)
    }

    /// The sampled regime (module docs): draws the configurations' classes of the picks not
    /// drawn yet (all of them on entering it) and rebuilds both terms' rows.
    fn sample<'p, T: Element + 'p>(
        &mut self,
        point: impl Fn(usize) -> &'p [T],
    ) -> Result<(), Error> {
        let Shape { k, c, .. } = self.shape;
        let samples = target_samples(self.shape, self.num_samples)?;
        let first = match self.regime {
            Regime::Exact => 0,
            Regime::Sampled => self.chosen - 1,
        };
        let key = key_of(self.seed);
        let domain = Domain::EpigSample as u32;
        for s in 0..samples {
            let s32 = counter(s)?;
            let w = philox4x32_10([s32, 0, 0, domain], key);
            let component = ((unit_f64(w[0], w[1]) * k as f64) as usize).min(k - 1);
            let log_lik = &mut self.log_lik[s * k..(s + 1) * k];
            if first == 0 {
                log_lik.fill(0.0);
            }
            for i in first..self.chosen {
                let w = philox4x32_10([s32, counter(i + 1)?, 0, domain], key);
                add_drawn_class(log_lik, point(i), component, c, unit_f64(w[0], w[1]));
            }
        }
        self.merge_pairs(samples);
        self.samples = samples;
        self.regime = Regime::Sampled;
        Ok(())
    }

    /// Both terms' rows from the configurations, identical (target, configuration) pairs
    /// merged into one row scaled by their count w (as [`crate::joint`] merges BatchBALD's).
    fn merge_pairs(&mut self, samples: usize) {
        let Shape { n: m, k, c } = self.shape;
        let log_lik = &self.log_lik[..samples * k];
        let row = |s: usize| &log_lik[s * k..(s + 1) * k];
        let count = count_repeats(
            log_lik,
            k,
            |s| s % m,
            (&mut self.order[..samples], &mut self.count[..samples]),
        );
        let (mut rows, mut batch_rows) = (0, 0);
        for (s, &w) in count.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            // The batch's term's row, then the targets' rows: it times p_k(c* | x*_m) K (the
            // targets' rows carry 1/K, as the batch's does).
            let b = &mut self.batch_a[batch_rows * k..(batch_rows + 1) * k];
            let scale = merged_row(row(s), w, b);
            self.batch_log_scale[batch_rows] = scale;
            let b = &self.batch_a[batch_rows * k..(batch_rows + 1) * k];
            batch_rows += 1;
            let target = s % m;
            for class in 0..c {
                let t = &self.targets[(target * c + class) * k..(target * c + class + 1) * k];
                let a = &mut self.a[rows * k..(rows + 1) * k];
                for ((a, &x), &p) in a.iter_mut().zip(b).zip(t) {
                    *a = x * p * k as f64;
                }
                self.log_scale[rows] = scale;
                rows += 1;
            }
        }
        self.rows = rows;
        self.batch_rows = batch_rows;
    }

    /// The targets' term's rows in the backends' form: their step gives
    /// (1/M) sum_m H(y_B, y*_m, y_x).
    fn view(&self) -> JointProbs<'_> {
        let k = self.shape.k;
        match self.regime {
            Regime::Exact => JointProbs {
                a: &self.a[..self.rows * k],
                log_scale: None,
                weight: 1.0 / self.shape.n as f64,
                m: self.rows,
                k,
            },
            Regime::Sampled => JointProbs {
                a: &self.a[..self.rows * k],
                log_scale: Some(&self.log_scale[..self.rows]),
                weight: 1.0 / self.samples as f64,
                m: self.rows,
                k,
            },
        }
    }

    /// Sampled: the batch's term's rows from the same configurations (H(y_B, y_x)); `None` in
    /// the exact regime, where the batch's [`DynamicJoint`] gives it.
    fn batch_view(&self) -> Option<JointProbs<'_>> {
        let k = self.shape.k;
        (self.regime == Regime::Sampled).then(|| JointProbs {
            a: &self.batch_a[..self.batch_rows * k],
            log_scale: Some(&self.batch_log_scale[..self.batch_rows]),
            weight: 1.0 / self.samples as f64,
            m: self.batch_rows,
            k,
        })
    }
}

impl BatchEpig {
    /// The batch size actually picked from a pool of `n` points.
    pub fn picks(&self, n: usize) -> usize {
        self.batch_size.min(n)
    }

    /// The regime of step `t` (t points already chosen) against targets of `targets`.
    pub fn regime_at(&self, targets: Shape, t: usize) -> Regime {
        if target_exact(targets, t, self.num_samples) {
            Regime::Exact
        } else {
            Regime::Sampled
        }
    }

    /// f64s of workspace [`BatchEpig::run`] needs for a pool of `shape` and targets of
    /// `targets`.
    pub fn workspace_len(&self, shape: Shape, targets: Shape) -> Result<usize, Error> {
        check_targets(shape, targets)?;
        targets.elements()?;
        let b = self.picks(shape.n);
        let max_points = b.saturating_sub(1);
        [
            dynamic_joint_workspace_len(
                shape,
                exact_picks(targets, max_points, self.num_samples),
                self.num_samples,
            )?,
            targets.elements()?,
            target_joint_len(targets, max_points, self.num_samples)?,
            mul(3, shape.n)?,
            joint_entropies_workspace_len(shape),
        ]
        .iter()
        .try_fold(0usize, |acc, &x| acc.checked_add(x))
        .ok_or(Error::ShapeOverflow)
    }

    /// Runs greedy batch EPIG of `pool` against `targets` (M x K x C, the pool's K and C) on
    /// `backend`, with `hooks` (excluded points, a call after each pick, the pool's entropies
    /// if known), writing the picks and their cumulative scores mean_m I(y_B; y*_m) into the
    /// first entries of the outputs (at least `picks(N)` each); returns the picks made, at
    /// most the candidates. `workspace` holds [`BatchEpig::workspace_len`] f64s, and `rows`
    /// `(picks(N) - 1) K C` values: the picks' K x C log-probs, read with
    /// [`Backend::read_point`] (so a pool on a device only works too).
    #[allow(clippy::too_many_arguments)]
    pub fn run<'a, B: Backend, T: Element + 'a, U: Element>(
        &self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        targets: &LogProbs<'_, U>,
        (workspace, rows): (&mut [f64], &mut [T]),
        out_indices: &mut [usize],
        out_scores: &mut [f64],
        hooks: &mut Hooks<'_>,
    ) -> Result<usize, B::Error> {
        let shape = pool.shape();
        let t_shape = targets.shape();
        let need = self.workspace_len(shape, t_shape)?;
        let b = self.picks(shape.n);
        if b == 0 {
            return Ok(0);
        }
        check_outputs(b, out_indices, out_scores)?;
        check_at_least("workspace", need, workspace.len())?;
        let kc = shape.k * shape.c;
        let rows_len = mul(b - 1, kc)?;
        check_at_least("rows", rows_len, rows.len())?;
        let n = shape.n;
        // The batch's own joint serves the exact steps only.
        let exact_picks = exact_picks(t_shape, b - 1, self.num_samples);
        let joint_len = dynamic_joint_workspace_len(shape, exact_picks, self.num_samples)?;
        let (joint_ws, rest) = workspace.split_at_mut(joint_len);
        let (t_rows, rest) = rest.split_at_mut(t_shape.elements()?);
        let (t_ws, rest) = rest.split_at_mut(target_joint_len(t_shape, b - 1, self.num_samples)?);
        let (cond, rest) = rest.split_at_mut(n);
        let (h1, rest) = rest.split_at_mut(n);
        let (h2, rest) = rest.split_at_mut(n);
        let step_ws = &mut rest[..joint_entropies_workspace_len(shape)];

        let h_targets = epig_targets(targets, t_rows)?;
        // H(y_x) into h1: the first step's batch term (the empty batch's joint).
        match hooks.given_entropies(n)? {
            Some((h, eh)) => {
                h1.copy_from_slice(h);
                cond.copy_from_slice(eh);
            }
            None => backend.entropies(pool, h1, cond)?,
        }
        let b = b.min(exclude_candidates(cond, hooks.exclude)?);
        let mut joint =
            DynamicJoint::new(joint_ws, shape, exact_picks, self.num_samples, self.seed)?;
        let mut target = TargetJoint::new(
            t_rows,
            t_shape,
            t_ws,
            (b.saturating_sub(1), self.num_samples, self.seed),
        )?;
        for t in 0..b {
            if t > 0 {
                let batch = target.batch_view().unwrap_or_else(|| joint.view());
                backend.joint_entropies(pool, &batch, None, h1, step_ws)?;
            }
            backend.joint_entropies(pool, &target.view(), None, h2, step_ws)?;
            let mut pick: Option<(f64, usize)> = None;
            for i in (0..n).filter(|&i| cond[i] != f64::INFINITY) {
                let score = h1[i] - h2[i] + h_targets;
                if beats(pick, score, i) {
                    pick = Some((score, i));
                }
            }
            let evaluations = n - cond.iter().filter(|&&h| h == f64::INFINITY).count();
            let (score, index) = pick.ok_or(Error::EmptyDimension { dim: "N" })?;
            out_indices[t] = index;
            out_scores[t] = score;
            cond[index] = f64::INFINITY;
            if t + 1 < b {
                backend.read_point(pool, index, &mut rows[t * kc..(t + 1) * kc])?;
                let point = |i: usize| &rows[i * kc..(i + 1) * kc];
                if t < exact_picks {
                    joint.add_points(t + 1, point)?;
                }
                target.add(&joint.view(), point)?;
            }
            hooks.picked(Pick {
                done: t + 1,
                total: b,
                index,
                score,
                evaluations,
            })?;
        }
        Ok(b)
    }
}

/// mean_m I(y_B; y*_m) of the pool points `batch` against `targets` by its definition, the
/// oracle of [`BatchEpig`]: every configuration of the batch's labels and the target's, the
/// joint summed over the K samples, in f64. O(M C^(|B| + 1) K |B|): small cases only.
pub fn batch_epig_reference<T: Element, U: Element>(
    pool: &LogProbs<'_, T>,
    targets: &LogProbs<'_, U>,
    batch: &[usize],
) -> Result<f64, Error> {
    let (s, t) = (pool.shape(), targets.shape());
    check_targets(s, t)?;
    if let Some(&index) = batch.iter().find(|&&i| i >= s.n) {
        return Err(Error::IndexOutOfRange { index, len: s.n });
    }
    let (k, c) = (s.k, s.c);
    let configs = u32::try_from(batch.len())
        .ok()
        .and_then(|b| c.checked_pow(b))
        .ok_or(Error::ShapeOverflow)?;
    let inv_k = 1.0 / k as f64;
    let mut total = 0.0;
    for m in 0..t.n {
        let y = targets.point(m);
        let (mut h_b, mut h_star, mut h_joint) = (0.0, 0.0, 0.0);
        for star in 0..c {
            let q: f64 = (0..k).map(|kk| libm::exp(y[kk * c + star].to_f64())).sum();
            h_star += neg_x_ln_x(q * inv_k);
        }
        for config in 0..configs {
            // P(config | w_k) for every k.
            let lik = |kk: usize| {
                let mut rest = config;
                let mut l = 0.0;
                for &i in batch {
                    l += pool.point(i)[kk * c + rest % c].to_f64();
                    rest /= c;
                }
                l
            };
            let p: f64 = (0..k).map(|kk| libm::exp(lik(kk))).sum();
            h_b += neg_x_ln_x(p * inv_k);
            for star in 0..c {
                let j: f64 = (0..k)
                    .map(|kk| libm::exp(lik(kk) + y[kk * c + star].to_f64()))
                    .sum();
                h_joint += neg_x_ln_x(j * inv_k);
            }
        }
        total += h_b + h_star - h_joint;
    }
    Ok(total / t.n as f64)
}
