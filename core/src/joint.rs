//! Joint entropy of a batch plus one candidate: exact, sampled, and the dynamic switch between
//! them that BatchBALD uses.
//!
//! For chosen points 1..t with predictions p_i(y | w_k) and a candidate n, the joint
//! predictive of (y_1..y_t, y_n) is p(y, c) = (1/K) sum_k P(y | w_k) p_n(c | w_k), with
//! P(y | w_k) = prod_i p_i(y_i | w_k). Both regimes reduce to one form, which every backend
//! computes for all candidates at once ([`JointProbs`]):
//!
//! H_n = weight * sum_m sum_c -x_mc (ln x_mc + s_m),   x_mc = sum_k a[m, k] p_n(c | w_k).
//!
//! - Exact (C^t <= num_samples): m runs over all C^t configurations y, a[m, k] = P(y_m | w_k)/K,
//!   s_m = 0, weight = 1.
//! - Sampled (beyond): as batchbald_redux, S = num_samples / K (at least 1) configurations
//!   are drawn from each P(. | w_k), M = S K rows. Unlike batchbald_redux, which redraws them
//!   at every step, a configuration keeps its classes and each step draws only the newest
//!   point's (see [`DynamicJoint`]): a step costs O(M (K + C)), not O(M t K). With
//!   q_m = (1/K) sum_k P(y_m | w_k), the importance-sampled estimate
//!   (1/M) sum_m sum_c -p(y_m, c) ln p(y_m, c) / q_m is computed with rows scaled by 1/q_m:
//!   a[m, k] = P(y_m | w_k) / (K q_m), s_m = ln q_m, weight = 1/M. The products P are formed
//!   in log space, so long batches never underflow.
//!
//! Sampled configurations repeat: the chosen points are the pool's most uncertain, but each
//! has a few likely classes, so M draws of t of them hold far fewer than M distinct
//! configurations. Identical rows are merged into one, scaled by their count w (a[m, k] times
//! w, s_m - ln w: -w x (ln(w x) + s_m - ln w) = w (-x (ln x + s_m))), which gives the same
//! estimate with fewer rows for every backend's joint step to evaluate.

use crate::element::Element;
use crate::error::{check_at_least, check_len, mul, Error};
use crate::logprobs::{LogProbs, Shape};
use crate::math::{log_sum_exp, neg_x_ln_x};
use crate::rng::{counter, key_of, philox4x32_10, unit_f64, Domain};

/// Whether a joint entropy is computed over all configurations or estimated from samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Regime {
    /// All C^t configurations.
    Exact,
    /// Importance-sampled configurations.
    Sampled,
}

/// The batch-so-far side of a joint-entropy computation, in the form of the module docs.
#[derive(Debug, Clone, Copy)]
pub struct JointProbs<'a> {
    /// Row-major M x K coefficients a[m, k].
    pub a: &'a [f64],
    /// Per-row log scale s_m (`None`: all zero, the exact regime).
    pub log_scale: Option<&'a [f64]>,
    /// The factor in front of the sum.
    pub weight: f64,
    /// Rows M.
    pub m: usize,
    /// MC samples K.
    pub k: usize,
}

impl JointProbs<'_> {
    /// H_n for one candidate given as its K x C probabilities `probs` (p_n(c | w_k), row-major),
    /// the scalar reference of every backend's joint-entropy step.
    pub fn entropy_of(&self, probs: &[f64], c: usize) -> f64 {
        let mut total = 0.0;
        for m in 0..self.m {
            let s = self.log_scale.map_or(0.0, |s| s[m]);
            total += row_term(&self.a[m * self.k..(m + 1) * self.k], probs, c, s);
        }
        total * self.weight
    }
}

/// Row m's term of H_n: sum_c -x_c (ln x_c + s_m), x_c = sum_k a[m, k] p_n(c | w_k).
fn row_term(a_row: &[f64], probs: &[f64], c: usize, s: f64) -> f64 {
    let mut sum = 0.0;
    for class in 0..c {
        let x: f64 = a_row
            .iter()
            .enumerate()
            .map(|(k, &a)| a * probs[k * c + class])
            .sum();
        sum += neg_x_ln_x(x) - x * s;
    }
    sum
}

impl JointProbs<'_> {
    /// The standard error of [`JointProbs::entropy_of`] for the same candidate, as an estimate
    /// over its sampled configurations: 0 in the exact regime (`log_scale` `None`, no sampling).
    /// Each merged row j stands for w_j = sum_k a[j, k] identical configurations, each of which
    /// contributes f_j = v_j / w_j, where v_j is the row's term of the sum; with M = 1 / weight
    /// configurations and their mean H, the sample variance is
    /// sum_j w_j (f_j - H)^2 / (M - 1), and the standard error its square root over sqrt(M)
    /// (0 for M = 1, where no spread can be measured).
    pub fn entropy_standard_error(&self, probs: &[f64], c: usize) -> f64 {
        let Some(log_scale) = self.log_scale else {
            return 0.0;
        };
        let samples = 1.0 / self.weight;
        if samples < 1.5 {
            return 0.0;
        }
        let mean = self.entropy_of(probs, c);
        let mut sum_sq = 0.0;
        for (a_row, &s) in self.a.chunks_exact(self.k).zip(log_scale).take(self.m) {
            let w: f64 = a_row.iter().sum();
            if w <= 0.0 {
                continue;
            }
            let d = row_term(a_row, probs, c, s) / w - mean;
            sum_sq += w * d * d;
        }
        libm::sqrt(sum_sq / (samples - 1.0) / samples)
    }

    /// The joint entropy of the chosen points alone under this joint (the form above with a
    /// candidate certain of its class, x_m = sum_k a[m, k]): exact, or, in the sampled regime,
    /// -(1/M) sum_m ln q_m over the current samples.
    pub fn batch_entropy(&self) -> f64 {
        let mut total = 0.0;
        for m in 0..self.m {
            let x: f64 = self.a[m * self.k..(m + 1) * self.k].iter().sum();
            let s = self.log_scale.map_or(0.0, |s| s[m]);
            total += neg_x_ln_x(x) - x * s;
        }
        total * self.weight
    }
}

/// Scratch f64s a backend's joint-entropy step may use: one candidate's K x C probabilities.
pub fn joint_entropies_workspace_len(shape: Shape) -> usize {
    shape.k * shape.c
}

/// Checks the arguments of a joint-entropy step (shared by every backend): over every pool
/// point (`candidates` `None`), or over the listed ones.
pub fn check_joint_args(
    shape: Shape,
    joint: &JointProbs<'_>,
    candidates: Option<&[usize]>,
    out_len: usize,
    workspace_len: usize,
) -> Result<(), Error> {
    check_len("joint K", shape.k, joint.k)?;
    check_len("joint a", mul(joint.m, joint.k)?, joint.a.len())?;
    if let Some(s) = joint.log_scale {
        check_len("joint log_scale", joint.m, s.len())?;
    }
    check_len("out", candidates.map_or(shape.n, <[usize]>::len), out_len)?;
    if let Some(&index) = candidates.and_then(|c| c.iter().find(|&&i| i >= shape.n)) {
        return Err(Error::IndexOutOfRange {
            index,
            len: shape.n,
        });
    }
    check_at_least(
        "workspace",
        joint_entropies_workspace_len(shape),
        workspace_len,
    )
}

/// H_n of every pool point as the candidate (`candidates` `None`), or of the listed pool
/// points, into `out` (N, or one per listed point): the scalar reference.
pub fn joint_entropies<T: Element>(
    lp: &LogProbs<'_, T>,
    joint: &JointProbs<'_>,
    candidates: Option<&[usize]>,
    out: &mut [f64],
    workspace: &mut [f64],
) -> Result<(), Error> {
    let shape = lp.shape();
    check_joint_args(shape, joint, candidates, out.len(), workspace.len())?;
    let probs = &mut workspace[..shape.k * shape.c];
    for (i, o) in out.iter_mut().enumerate() {
        let n = candidates.map_or(i, |c| c[i]);
        for (p, &l) in probs.iter_mut().zip(lp.point(n)) {
            *p = libm::exp(l.to_f64());
        }
        *o = joint.entropy_of(probs, shape.c);
    }
    Ok(())
}

/// The most rows a [`DynamicJoint`] for up to `max_points` chosen points reaches (device
/// backends size their copy of the joint by it).
pub fn dynamic_joint_rows(
    shape: Shape,
    max_points: usize,
    num_samples: usize,
) -> Result<usize, Error> {
    let mut exact_rows = 1usize;
    let mut sampled = false;
    for _ in 0..max_points {
        match exact_rows.checked_mul(shape.c) {
            Some(r) if r <= num_samples => exact_rows = r,
            _ => {
                sampled = true;
                break;
            }
        }
    }
    Ok(if sampled {
        exact_rows.max(mul(samples_per_component(shape.k, num_samples), shape.k)?)
    } else {
        exact_rows
    })
}

/// S = num_samples / K, at least 1 (batchbald_redux divides by zero below K).
fn samples_per_component(k: usize, num_samples: usize) -> usize {
    (num_samples / k).max(1)
}

/// f64s a [`DynamicJoint`] for up to `max_points` chosen points needs: the joint and its row
/// scales, and in the sampled regime each configuration's log-likelihoods under every
/// component and two f64s a row to merge repeated configurations.
pub fn dynamic_joint_workspace_len(
    shape: Shape,
    max_points: usize,
    num_samples: usize,
) -> Result<usize, Error> {
    shape.elements()?;
    let rows = dynamic_joint_rows(shape, max_points, num_samples)?;
    mul(rows, ROW_F64S * shape.k + 3)
}

/// f64s a row of a [`DynamicJoint`] takes per MC sample: its coefficients and log-likelihoods.
const ROW_F64S: usize = 2;

/// The joint of the points chosen so far, exact while C^t <= num_samples, sampled beyond
/// (as batchbald_redux's `DynamicJointEntropy`).
#[derive(Debug)]
pub struct DynamicJoint<'w> {
    a: &'w mut [f64],
    log_scale: &'w mut [f64],
    /// Sampled regime: log P(y_m | w_k) of each configuration's chosen points so far, M x K.
    log_lik: &'w mut [f64],
    /// Sampled regime: the configurations in the order that groups identical ones (indices
    /// as f64s), then each configuration's count (0 for a repeat of an earlier one).
    order: &'w mut [f64],
    count: &'w mut [f64],
    shape: Shape,
    /// Rows of the joint (distinct configurations in the sampled regime).
    rows: usize,
    /// Configurations M (the exact regime's rows, or those sampled).
    samples: usize,
    chosen: usize,
    max_points: usize,
    num_samples: usize,
    seed: u64,
    regime: Regime,
}

impl<'w> DynamicJoint<'w> {
    /// An empty joint (t = 0: one row, a = 1/K) for up to `max_points` points, in `workspace`
    /// of at least [`dynamic_joint_workspace_len`] f64s. `seed` keys the sampled regime.
    pub fn new(
        workspace: &'w mut [f64],
        shape: Shape,
        max_points: usize,
        num_samples: usize,
        seed: u64,
    ) -> Result<Self, Error> {
        let need = dynamic_joint_workspace_len(shape, max_points, num_samples)?;
        check_at_least("workspace", need, workspace.len())?;
        let rows_cap = need / (ROW_F64S * shape.k + 3);
        let (a, rest) = workspace.split_at_mut(rows_cap * shape.k);
        let (log_lik, rest) = rest.split_at_mut(rows_cap * shape.k);
        let (log_scale, rest) = rest.split_at_mut(rows_cap);
        let (order, rest) = rest.split_at_mut(rows_cap);
        let count = &mut rest[..rows_cap];
        a[..shape.k].fill(1.0 / shape.k as f64);
        Ok(DynamicJoint {
            a,
            log_scale,
            log_lik,
            order,
            count,
            shape,
            rows: 1,
            samples: 1,
            chosen: 0,
            max_points,
            num_samples,
            seed,
            regime: Regime::Exact,
        })
    }

    /// The regime of the current joint.
    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// The configurations M behind the joint: C^t in the exact regime, the number drawn in the
    /// sampled one (where the joint's rows, [`JointProbs::m`], are the distinct ones).
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Adds the newest chosen point: `chosen` lists every chosen point so far, oldest first,
    /// the new one last (entering the sampled regime draws all of them).
    pub fn add<T: Element>(&mut self, lp: &LogProbs<'_, T>, chosen: &[usize]) -> Result<(), Error> {
        let shape = lp.shape();
        check_len(
            "joint shape",
            self.shape.k * self.shape.c,
            shape.k * shape.c,
        )?;
        if let Some(&bad) = chosen.iter().find(|&&i| i >= shape.n) {
            return Err(Error::IndexOutOfRange {
                index: bad,
                len: shape.n,
            });
        }
        self.add_points(chosen.len(), |i| lp.point(chosen[i]))
    }

    /// [`DynamicJoint::add`] with the chosen points given by `point(i)`, the K x C log-probs of
    /// the i-th of the `chosen` points (in pick order), wherever they are: a shard of a pool
    /// builds the joint of picks that other shards hold.
    pub fn add_points<'p, T: Element + 'p>(
        &mut self,
        chosen: usize,
        point: impl Fn(usize) -> &'p [T],
    ) -> Result<(), Error> {
        check_len("chosen", self.chosen + 1, chosen)?;
        if chosen > self.max_points {
            return Err(Error::InvalidParameter {
                name: "chosen",
                reason: "more points than the joint was sized for",
            });
        }
        let kc = self.shape.k * self.shape.c;
        if let Some(bad) = (0..chosen).find(|&i| point(i).len() != kc) {
            check_len("chosen point", kc, point(bad).len())?;
        }
        let exact_rows = match self.regime {
            Regime::Exact => self
                .rows
                .checked_mul(self.shape.c)
                .filter(|&r| r <= self.num_samples),
            Regime::Sampled => None,
        };
        match exact_rows {
            Some(rows) => self.expand_exact(point(chosen - 1), rows),
            None => self.sample(chosen, point)?,
        }
        self.chosen += 1;
        Ok(())
    }

    /// Row m*C + c of the new joint = row m of the old one times p_new(c | w_k), in place
    /// (rows are written from the last, so no old row is overwritten before it is read).
    fn expand_exact<T: Element>(&mut self, point: &[T], rows: usize) {
        let (k, c) = (self.shape.k, self.shape.c);
        for m in (0..self.rows).rev() {
            for class in (0..c).rev() {
                let dst = (m * c + class) * k;
                for s in 0..k {
                    let p = libm::exp(point[s * c + class].to_f64());
                    self.a[dst + s] = self.a[m * k + s] * p;
                }
            }
        }
        self.rows = rows;
        self.samples = rows;
    }

    /// The sampled regime: M = S K configurations of the chosen points, S drawn from each
    /// component k. Configuration m's class of chosen point i is drawn once, with Philox
    /// counter (m, i, 0, JointSample), and kept: entering the regime draws every chosen point,
    /// each later step only the newest, so a step costs O(M (K + C)) however long the batch.
    /// The samples stay common to all steps (common random numbers: successive estimates and
    /// their differences, the gains, are far less noisy than with a redraw per step).
    fn sample<'p, T: Element + 'p>(
        &mut self,
        chosen: usize,
        point_of: impl Fn(usize) -> &'p [T],
    ) -> Result<(), Error> {
        let (k, c) = (self.shape.k, self.shape.c);
        let per = samples_per_component(k, self.num_samples);
        let rows = per * k;
        let first = match self.regime {
            Regime::Exact => 0,
            Regime::Sampled => chosen - 1,
        };
        let key = key_of(self.seed);
        for m in 0..rows {
            let m32 = counter(m)?;
            let component = m / per;
            let log_lik = &mut self.log_lik[m * k..(m + 1) * k];
            if first == 0 {
                log_lik.fill(0.0);
            }
            for i in first..chosen {
                let w = philox4x32_10([m32, counter(i)?, 0, Domain::JointSample as u32], key);
                add_drawn_class(log_lik, point_of(i), component, c, unit_f64(w[0], w[1]));
            }
        }
        self.merge_repeats(rows);
        self.samples = rows;
        self.regime = Regime::Sampled;
        Ok(())
    }

    /// [`merge_repeated_rows`] of the first `samples` configurations, into the joint.
    fn merge_repeats(&mut self, samples: usize) {
        let k = self.shape.k;
        self.rows = merge_repeated_rows(
            &self.log_lik[..samples * k],
            k,
            (&mut self.order[..samples], &mut self.count[..samples]),
            &mut self.a[..samples * k],
            &mut self.log_scale[..samples],
        );
    }

    /// The current joint in the backends' form.
    pub fn view(&self) -> JointProbs<'_> {
        let k = self.shape.k;
        match self.regime {
            Regime::Exact => JointProbs {
                a: &self.a[..self.rows * k],
                log_scale: None,
                weight: 1.0,
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
}

/// Draws a class from one row of log-probs with a uniform `u` in [0, 1): the first class whose
/// cumulative probability exceeds u * total. A class of probability 0 is never drawn.
fn sample_class<T: Element>(row: &[T], u: f64) -> usize {
    let total: f64 = row.iter().map(|l| libm::exp(l.to_f64())).sum();
    let target = u * total;
    let mut cum = 0.0;
    let mut last_positive = 0;
    for (class, l) in row.iter().enumerate() {
        let p = libm::exp(l.to_f64());
        if p > 0.0 {
            cum += p;
            last_positive = class;
            if cum > target {
                return class;
            }
        }
    }
    last_positive
}

/// Counts repeated configurations: of the M rows of `log_lik` (M x K), those with the same
/// `group` and bit-identical values are one configuration, counted at its first occurrence
/// (0 at its repeats) in the returned slice of `scratch`'s second half; the first half holds
/// the order that groups them. A total order (group, the rows' IEEE total order, index), so
/// the grouping does not depend on the sort's algorithm.
pub(crate) fn count_repeats<'s>(
    log_lik: &[f64],
    k: usize,
    group: impl Fn(usize) -> usize,
    (order, count): (&mut [f64], &'s mut [f64]),
) -> &'s mut [f64] {
    let samples = log_lik.len() / k.max(1);
    let row = |m: usize| &log_lik[m * k..(m + 1) * k];
    let (order, count) = (&mut order[..samples], &mut count[..samples]);
    for (m, o) in order.iter_mut().enumerate() {
        *o = m as f64;
    }
    order.sort_unstable_by(|&x, &y| {
        let (x, y) = (x as usize, y as usize);
        group(x)
            .cmp(&group(y))
            .then_with(|| {
                row(x)
                    .iter()
                    .zip(row(y))
                    .map(|(a, b)| a.total_cmp(b))
                    .find(|o| o.is_ne())
                    .unwrap_or(core::cmp::Ordering::Equal)
            })
            .then(x.cmp(&y))
    });
    count.fill(0.0);
    let mut first = 0;
    for (i, &o) in order.iter().enumerate() {
        let m = o as usize;
        let same = i > 0
            && group(m) == group(first)
            && row(m)
                .iter()
                .zip(row(first))
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            first = m;
        }
        count[first] += 1.0;
    }
    count
}

/// A configuration's row of the sampled joint from its log-likelihoods `l` (K), counted `w`
/// times, into `out` (K): w P(y | w_k) / (K q), q = (1/K) sum_k P(y | w_k); returns its log
/// scale ln q - ln w (module docs).
pub(crate) fn merged_row(l: &[f64], w: f64, out: &mut [f64]) -> f64 {
    let k = l.len() as f64;
    let log_q = log_sum_exp(l.iter().copied()) - libm::log(k);
    for (a, &l) in out.iter_mut().zip(l) {
        *a = w * libm::exp(l - log_q) / k;
    }
    log_q - libm::log(w)
}

/// Draws the class of one chosen point for a configuration drawn from MC sample `component`,
/// with a uniform `u` ([`sample_class`] on that sample's row of `point`, K x C log-probs), and
/// adds the class's log-likelihoods under every sample to `log_lik` (K).
pub(crate) fn add_drawn_class<T: Element>(
    log_lik: &mut [f64],
    point: &[T],
    component: usize,
    c: usize,
    u: f64,
) {
    let class = sample_class(&point[component * c..(component + 1) * c], u);
    for (s, l) in log_lik.iter_mut().enumerate() {
        *l += point[s * c + class].to_f64();
    }
}

/// The sampled joint of the configurations whose log-likelihoods `log_lik` holds (M x K,
/// log P(y_m | w_k)), one row per distinct configuration, in the order of their first
/// occurrence, scaled by its count w (module docs): a[j, k] = w P(y_m | w_k) / (K q_m) into `a`
/// and s_j = ln q_m - ln w into `log_scale`; returns the rows. Configurations are identical
/// when their log-likelihoods are, bit for bit: the same classes give the same sums, and
/// different classes with the same values give the same row anyway. `scratch` holds M f64s
/// twice; `a` M x K and `log_scale` M. (The weight in front of the sum stays 1/M.)
pub fn merge_repeated_rows(
    log_lik: &[f64],
    k: usize,
    scratch: (&mut [f64], &mut [f64]),
    a: &mut [f64],
    log_scale: &mut [f64],
) -> usize {
    let row = |m: usize| &log_lik[m * k..(m + 1) * k];
    let count = count_repeats(log_lik, k, |_| 0, scratch);
    let mut rows = 0;
    for (m, &w) in count.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        log_scale[rows] = merged_row(row(m), w, &mut a[rows * k..(rows + 1) * k]);
        rows += 1;
    }
    rows
}

/// The joint entropy H(y_i : i in `indices`) of a set of pool points, exact when
/// C^(|indices| - 1) <= `num_samples`, else sampled with `seed` (the regime BatchBALD would
/// use for that set). `workspace` holds [`dynamic_joint_workspace_len`]`(shape, len - 1,
/// num_samples)` + K C f64s.
pub fn joint_entropy<T: Element>(
    lp: &LogProbs<'_, T>,
    indices: &[usize],
    num_samples: usize,
    seed: u64,
    workspace: &mut [f64],
) -> Result<(f64, Regime), Error> {
    let shape = lp.shape();
    let (&last, rest) = indices.split_last().ok_or(Error::InvalidParameter {
        name: "indices",
        reason: "the joint entropy of no variables is not defined here",
    })?;
    if last >= shape.n {
        return Err(Error::IndexOutOfRange {
            index: last,
            len: shape.n,
        });
    }
    let need = dynamic_joint_workspace_len(shape, rest.len(), num_samples)?;
    let probs_len = shape.k * shape.c;
    check_at_least("workspace", need + probs_len, workspace.len())?;
    let (joint_ws, probs) = workspace.split_at_mut(need);
    let mut joint = DynamicJoint::new(joint_ws, shape, rest.len(), num_samples, seed)?;
    for t in 0..rest.len() {
        joint.add(lp, &rest[..=t])?;
    }
    let probs = &mut probs[..probs_len];
    for (p, &l) in probs.iter_mut().zip(lp.point(last)) {
        *p = libm::exp(l.to_f64());
    }
    Ok((joint.view().entropy_of(probs, shape.c), joint.regime()))
}
