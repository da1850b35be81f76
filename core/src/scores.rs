//! Per-point acquisition scores: the scalar f64 reference definitions.

use crate::element::Element;
use crate::error::{check_at_least, check_len, Error};
use crate::logprobs::{LogProbs, Shape};
use crate::math::{neg_p_log_p, neg_x_ln_x};

/// Which std the mean-STD score uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdKind {
    /// sqrt(sum_k (p_k - mean)^2 / K).
    Population,
    /// sqrt(sum_k (p_k - mean)^2 / (K - 1)); needs K >= 2.
    Unbiased,
}

/// A per-point acquisition score. Higher always means "more worth labelling".
///
/// With `p_k = exp(lp[n, k, :])` the k-th MC prediction and p̄ = (1/K) sum_k p_k, all logs
/// natural and 0 ln 0 = 0:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointScore {
    /// Predictive entropy (Max Entropy): `H[p̄] = -sum_c p̄_c ln p̄_c`.
    Entropy,
    /// Expected conditional entropy: `E_k H[p_k] = -(1/K) sum_k sum_c p_kc ln p_kc`.
    ConditionalEntropy,
    /// BALD, the mutual information `I[y; w] = H[p̄] - E_k H[p_k]`, clamped at 0 against rounding.
    Bald,
    /// Variation ratios, mean-probability form: 1 - max_c p̄_c.
    VariationRatios,
    /// Variation ratios, mode-count form of Gal et al. (2017): 1 - f_mode / K, where f_mode
    /// is how many of the K samples predict the modal class (argmax ties go to the lower class,
    /// and so do ties between class counts).
    VariationRatiosMode,
    /// Mean STD: (1/C) sum_c std_k(p_kc), with the std chosen by [`StdKind`].
    MeanStd(StdKind),
    /// Margin: 1 - (p̄_(1) - p̄_(2)), the two largest mean probabilities (p̄_(2) = 0 when C = 1).
    Margin,
    /// Least confidence: 1 - max_c p̄_c. The same number as [`PointScore::VariationRatios`],
    /// kept under the name the literature also uses.
    LeastConfidence,
}

impl PointScore {
    /// Every score, both std kinds included (for tests, fuzzing and tools that list them).
    pub const ALL: [PointScore; 9] = [
        PointScore::Entropy,
        PointScore::ConditionalEntropy,
        PointScore::Bald,
        PointScore::VariationRatios,
        PointScore::VariationRatiosMode,
        PointScore::MeanStd(StdKind::Population),
        PointScore::MeanStd(StdKind::Unbiased),
        PointScore::Margin,
        PointScore::LeastConfidence,
    ];

    /// The score's name as the CLI and reports spell it.
    pub fn name(&self) -> &'static str {
        match self {
            PointScore::Entropy => "entropy",
            PointScore::ConditionalEntropy => "conditional-entropy",
            PointScore::Bald => "bald",
            PointScore::VariationRatios => "var-ratios",
            PointScore::VariationRatiosMode => "var-ratios-mode",
            PointScore::MeanStd(StdKind::Population) => "mean-std",
            PointScore::MeanStd(StdKind::Unbiased) => "mean-std-unbiased",
            PointScore::Margin => "margin",
            PointScore::LeastConfidence => "least-confidence",
        }
    }
}

/// Scratch f64s [`scores`] needs for `score` on `shape`: C for the mode-count form, else 0.
pub fn score_workspace_len(score: PointScore, shape: Shape) -> usize {
    match score {
        PointScore::VariationRatiosMode => shape.c,
        _ => 0,
    }
}

/// Checks the arguments of a score computation (shared by every backend).
pub fn check_score_args(
    score: PointScore,
    shape: Shape,
    out_len: usize,
    workspace_len: usize,
) -> Result<(), Error> {
    check_len("out", shape.n, out_len)?;
    check_at_least(
        "workspace",
        score_workspace_len(score, shape),
        workspace_len,
    )?;
    if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
        return Err(Error::InvalidParameter {
            name: "K",
            reason: "the unbiased std needs at least 2 MC samples",
        });
    }
    Ok(())
}

/// Computes `score` for every pool point into `out` (length N), the scalar reference.
pub fn scores<T: Element>(
    lp: &LogProbs<'_, T>,
    score: PointScore,
    out: &mut [f64],
    workspace: &mut [f64],
) -> Result<(), Error> {
    let shape = lp.shape();
    check_score_args(score, shape, out.len(), workspace.len())?;
    for (n, o) in out.iter_mut().enumerate() {
        *o = point_score(lp.point(n), shape.k, shape.c, score, workspace);
    }
    Ok(())
}

/// Checks the outputs of [`crate::Backend::entropies`]: both of length N.
pub fn check_entropies_args(
    shape: Shape,
    entropy_len: usize,
    conditional_len: usize,
) -> Result<(), Error> {
    check_len("entropy", shape.n, entropy_len)?;
    check_len("conditional", shape.n, conditional_len)
}

/// Entropy and conditional entropy of every point (the scalar reference of
/// [`crate::Backend::entropies`]).
pub fn entropies<T: Element>(
    lp: &LogProbs<'_, T>,
    entropy: &mut [f64],
    conditional: &mut [f64],
) -> Result<(), Error> {
    let shape = lp.shape();
    check_entropies_args(shape, entropy.len(), conditional.len())?;
    for (n, (h, eh)) in entropy.iter_mut().zip(conditional.iter_mut()).enumerate() {
        let point = lp.point(n);
        *h = self::entropy(point, shape.k, shape.c);
        *eh = conditional_entropy(point, shape.k);
    }
    Ok(())
}

/// `score` of one point's K x C log-probs. `workspace` holds at least
/// [`score_workspace_len`] f64s; arguments are assumed checked.
pub fn point_score<T: Element>(
    point: &[T],
    k: usize,
    c: usize,
    score: PointScore,
    workspace: &mut [f64],
) -> f64 {
    match score {
        PointScore::Entropy => entropy(point, k, c),
        PointScore::ConditionalEntropy => conditional_entropy(point, k),
        PointScore::Bald => (entropy(point, k, c) - conditional_entropy(point, k)).max(0.0),
        PointScore::VariationRatios | PointScore::LeastConfidence => {
            let (top1, _) = top_two_mean_probs(point, k, c);
            1.0 - top1
        }
        PointScore::VariationRatiosMode => variation_ratio_mode(point, k, c, &mut workspace[..c]),
        PointScore::MeanStd(kind) => mean_std(point, k, c, kind),
        PointScore::Margin => {
            let (top1, top2) = top_two_mean_probs(point, k, c);
            1.0 - (top1 - top2)
        }
    }
}

/// p̄_c = (1/K) sum_k exp(lp[k, c]).
fn mean_prob<T: Element>(point: &[T], k: usize, c: usize, class: usize) -> f64 {
    let sum: f64 = (0..k)
        .map(|s| libm::exp(point[s * c + class].to_f64()))
        .sum();
    sum / k as f64
}

fn entropy<T: Element>(point: &[T], k: usize, c: usize) -> f64 {
    (0..c)
        .map(|class| neg_x_ln_x(mean_prob(point, k, c, class)))
        .sum()
}

fn conditional_entropy<T: Element>(point: &[T], k: usize) -> f64 {
    let sum: f64 = point.iter().map(|&lp| neg_p_log_p(lp.to_f64())).sum();
    sum / k as f64
}

/// The two largest mean probabilities (the second is 0 when C = 1).
fn top_two_mean_probs<T: Element>(point: &[T], k: usize, c: usize) -> (f64, f64) {
    let (mut top1, mut top2) = (0.0f64, 0.0f64);
    for class in 0..c {
        let p = mean_prob(point, k, c, class);
        if p > top1 {
            top2 = top1;
            top1 = p;
        } else if p > top2 {
            top2 = p;
        }
    }
    (top1, top2)
}

fn variation_ratio_mode<T: Element>(point: &[T], k: usize, c: usize, counts: &mut [f64]) -> f64 {
    counts.fill(0.0);
    for row in point.chunks_exact(c) {
        let mut best = 0;
        for (class, v) in row.iter().enumerate() {
            if v.to_f64() > row[best].to_f64() {
                best = class;
            }
        }
        counts[best] += 1.0;
    }
    let f_mode = counts.iter().fold(0.0f64, |a, &b| a.max(b));
    1.0 - f_mode / k as f64
}

fn mean_std<T: Element>(point: &[T], k: usize, c: usize, kind: StdKind) -> f64 {
    let denom = match kind {
        StdKind::Population => k as f64,
        StdKind::Unbiased => (k - 1) as f64,
    };
    let total: f64 = (0..c)
        .map(|class| {
            let mean = mean_prob(point, k, c, class);
            let ss: f64 = (0..k)
                .map(|s| {
                    let d = libm::exp(point[s * c + class].to_f64()) - mean;
                    d * d
                })
                .sum();
            libm::sqrt(ss / denom)
        })
        .sum();
    total / c as f64
}
