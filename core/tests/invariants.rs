//! Property tests of the scalar reference: invariants that hold for every valid pool.

use bald_testing::cases as common;

use std::ops::ControlFlow;

use bald_core::owned::{batchbald, batchbald_with, scores};
use bald_core::{
    budget, joint::joint_entropy, BatchBald, Greedy, Hooks, LogProbs, Pick, PointScore, Regime,
    Scalar, Shape, StdKind,
};
use common::log_softmax_rows;
use proptest::prelude::*;

/// A random valid pool: tempered logits (some classes with probability exactly 0) through
/// log_softmax.
fn pool(max_n: usize, max_k: usize, max_c: usize) -> impl Strategy<Value = (Vec<f64>, Shape)> {
    (1..=max_n, 1..=max_k, 1..=max_c, 0.05f64..8.0, any::<bool>())
        .prop_flat_map(|(n, k, c, temp, zeros)| {
            let len = n * k * c;
            (
                Just(Shape::new(n, k, c)),
                prop::collection::vec(-3.0f64..3.0, len),
                prop::collection::vec(0u8..10, len),
                Just(temp),
                Just(zeros),
            )
        })
        .prop_map(|(shape, mut x, masks, temp, zeros)| {
            for (row, mrow) in x.chunks_exact_mut(shape.c).zip(masks.chunks_exact(shape.c)) {
                for (v, &m) in row.iter_mut().zip(mrow) {
                    *v *= temp;
                    // About one entry in ten gets probability 0, never the whole row.
                    if zeros && m == 0 && shape.c > 1 {
                        *v = f64::NEG_INFINITY;
                    }
                }
                if row.iter().all(|v| *v == f64::NEG_INFINITY) {
                    row[0] = 0.0;
                }
            }
            log_softmax_rows(&mut x, shape.c);
            (x, shape)
        })
}

const EPS: f64 = 1e-12;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn entropy_bounds((data, shape) in pool(8, 10, 6)) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let h = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
        let eh = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
        let bald = scores(&Scalar, &lp, PointScore::Bald).unwrap();
        let ln_c = (shape.c as f64).ln();
        for n in 0..shape.n {
            prop_assert!(bald[n] >= 0.0);
            prop_assert!(bald[n] <= h[n] + EPS);
            prop_assert!(h[n] <= ln_c + EPS, "H {} > ln C {}", h[n], ln_c);
            prop_assert!(eh[n] >= 0.0 && eh[n] <= h[n] + EPS);
            prop_assert!((bald[n] - (h[n] - eh[n]).max(0.0)).abs() <= EPS);
        }
    }

    #[test]
    fn other_scores_in_range((data, shape) in pool(8, 10, 6)) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let c = shape.c as f64;
        for score in [PointScore::VariationRatios, PointScore::LeastConfidence, PointScore::VariationRatiosMode] {
            for v in scores(&Scalar, &lp, score).unwrap() {
                // At most 1 - 1/C: the top class holds at least 1/C of the mass (or count).
                prop_assert!(v >= -EPS && v <= 1.0 - 1.0 / c + 1e-9, "{score:?} {v}");
            }
        }
        for v in scores(&Scalar, &lp, PointScore::Margin).unwrap() {
            prop_assert!((-EPS..=1.0 + EPS).contains(&v));
        }
        for v in scores(&Scalar, &lp, PointScore::MeanStd(StdKind::Population)).unwrap() {
            prop_assert!((0.0..=0.5 + EPS).contains(&v));
        }
    }

    #[test]
    fn permuting_the_pool_permutes_the_scores((data, shape) in pool(8, 6, 5), rot in 0usize..8) {
        let stride = shape.k * shape.c;
        let rot = rot % shape.n;
        let mut permuted = data[rot * stride..].to_vec();
        permuted.extend_from_slice(&data[..rot * stride]);
        let a = LogProbs::new(&data, shape).unwrap();
        let b = LogProbs::new(&permuted, shape).unwrap();
        for score in [PointScore::Entropy, PointScore::Bald, PointScore::VariationRatiosMode, PointScore::Margin] {
            let sa = scores(&Scalar, &a, score).unwrap();
            let sb = scores(&Scalar, &b, score).unwrap();
            for n in 0..shape.n {
                prop_assert_eq!(sb[n], sa[(n + rot) % shape.n]);
            }
        }
    }

    #[test]
    fn f32_input_matches_f64((data, shape) in pool(6, 8, 6)) {
        let lp64 = LogProbs::new(&data, shape).unwrap();
        let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        let lp32 = LogProbs::new(&data32, shape).unwrap();
        for score in [PointScore::Entropy, PointScore::ConditionalEntropy, PointScore::Bald,
                      PointScore::Margin, PointScore::MeanStd(StdKind::Population)] {
            let a = scores(&Scalar, &lp64, score).unwrap();
            let b = scores(&Scalar, &lp32, score).unwrap();
            for n in 0..shape.n {
                prop_assert!((a[n] - b[n]).abs() <= budget::F32_INPUT, "{score:?}: {} vs {}", a[n], b[n]);
            }
        }
    }

    #[test]
    fn half_input_matches_f64((data, shape) in pool(4, 6, 5)) {
        use bald_core::half::{bf16, f16};
        let lp64 = LogProbs::new(&data, shape).unwrap();
        let h64 = scores(&Scalar, &lp64, PointScore::Bald).unwrap();
        let d16: Vec<f16> = data.iter().map(|&x| f16::from_f64(x)).collect();
        let db16: Vec<bf16> = data.iter().map(|&x| bf16::from_f64(x)).collect();
        // Rounded log-probs may leave the row's normalisation tolerance only in extreme rows;
        // where they validate, the scores stay within budget.
        if let Ok(lp) = LogProbs::new(&d16, shape) {
            let h = scores(&Scalar, &lp, PointScore::Bald).unwrap();
            for n in 0..shape.n { prop_assert!((h[n] - h64[n]).abs() <= budget::F16_INPUT); }
        }
        if let Ok(lp) = LogProbs::new(&db16, shape) {
            let h = scores(&Scalar, &lp, PointScore::Bald).unwrap();
            for n in 0..shape.n { prop_assert!((h[n] - h64[n]).abs() <= budget::BF16_INPUT); }
        }
    }

    #[test]
    fn batchbald_first_pick_is_bald_argmax_and_scores_grow((data, shape) in pool(10, 6, 4), b in 1usize..6) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let bald = scores(&Scalar, &lp, PointScore::Bald).unwrap();
        let params = BatchBald { batch_size: b, num_samples: usize::MAX, seed: 1, greedy: bald_core::Greedy::Lazy };
        let batch = batchbald(&Scalar, &lp, params).unwrap();
        prop_assert_eq!(batch.indices.len(), b.min(shape.n));
        let best = bald.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!((bald[batch.indices[0]] - best).abs() <= 1e-12);
        prop_assert!((batch.scores[0] - best).abs() <= 1e-12);
        for t in 1..batch.scores.len() {
            prop_assert!(batch.scores[t] >= batch.scores[t - 1] - 1e-12, "{:?}", batch.scores);
        }
        let mut seen = batch.indices.clone();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), batch.indices.len(), "a point picked twice");
    }

    /// Lazy greedy's picks and scores are full greedy's, bit for bit, in the exact regime:
    /// pools with points of every confidence (per-point temperatures), so that lazy leaves
    /// candidates out.
    #[test]
    fn lazy_greedy_picks_what_full_greedy_picks(
        (mut data, shape) in pool(40, 6, 5),
        temps in prop::collection::vec(0.0f64..1.0, 40),
        b in 1usize..9,
    ) {
        for (point, &t) in data.chunks_exact_mut(shape.k * shape.c).zip(&temps) {
            // Sharpen some points' predictions (log-probs times 1 + 20 t, renormalised).
            for v in point.iter_mut() { *v *= 1.0 + 20.0 * t * t; }
            log_softmax_rows(point, shape.c);
        }
        let lp = LogProbs::new(&data, shape).unwrap();
        let full = BatchBald { batch_size: b, num_samples: usize::MAX, seed: 1, greedy: Greedy::Full };
        let lazy = BatchBald { greedy: Greedy::Lazy, ..full };
        let want = batchbald(&Scalar, &lp, full).unwrap();
        let mut evaluations = 0;
        let mut on_pick = |p: Pick| { evaluations += p.evaluations; ControlFlow::Continue(()) };
        let mut hooks = Hooks { exclude: &[], on_pick: Some(&mut on_pick), entropies: None };
        let got = batchbald_with(&Scalar, &lp, lazy, &mut hooks).unwrap();
        prop_assert_eq!(&got, &want);
        prop_assert!(evaluations <= shape.n * want.indices.len());
    }

    #[test]
    fn joint_entropy_at_least_each_marginal((data, shape) in pool(6, 6, 4)) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let idx: Vec<usize> = (0..shape.n.min(4)).collect();
        let mut ws = vec![0.0; 1 << 12];
        let (joint, regime) = joint_entropy(&lp, &idx, usize::MAX, 0, &mut ws).unwrap();
        prop_assert_eq!(regime, Regime::Exact);
        let h = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
        for &i in &idx {
            prop_assert!(joint >= h[i] - 1e-12, "joint {joint} < H[{i}] {}", h[i]);
        }
        // Subadditivity: at most the sum of the marginals.
        prop_assert!(joint <= idx.iter().map(|&i| h[i]).sum::<f64>() + 1e-12);
    }
}

/// Lazy greedy's pairwise bound: after the first pick, each candidate's bound is its gain
/// given that pick, which at step 1 is its exact gain. So step 1 takes only its first block
/// (the scalar backend's 16 candidates) however many copies of the pick there are. With the
/// bounds of the last evaluation alone, the 40 copies' stale bounds (their BALD score, above
/// every gain) would all be evaluated: 48 in two blocks.
#[test]
fn bounds_after_the_first_pick_are_exact_gains() {
    let members =
        |rows: [[f64; 3]; 4]| -> Vec<f64> { rows.iter().flatten().map(|p| p.ln()).collect() };
    let sure = [
        [0.9, 0.05, 0.05],
        [0.05, 0.9, 0.05],
        [0.05, 0.05, 0.9],
        [0.9, 0.05, 0.05],
    ];
    let split = [
        [0.8, 0.1, 0.1],
        [0.1, 0.8, 0.1],
        [0.8, 0.1, 0.1],
        [0.1, 0.8, 0.1],
    ];
    let mild = [
        [0.6, 0.2, 0.2],
        [0.2, 0.2, 0.6],
        [0.2, 0.6, 0.2],
        [0.2, 0.6, 0.2],
    ];
    let agree = [[0.7, 0.2, 0.1]; 4];
    let points: Vec<_> = std::iter::repeat_n(sure, 41)
        .chain([split, mild, agree])
        .collect();
    let data: Vec<f64> = points.iter().flat_map(|&p| members(p)).collect();
    let lp = LogProbs::new(&data, Shape::new(points.len(), 4, 3)).unwrap();
    let full = BatchBald {
        batch_size: 3,
        num_samples: usize::MAX,
        seed: 0,
        greedy: Greedy::Full,
    };
    let mut evaluations = Vec::new();
    let mut on_pick = |p: Pick| {
        evaluations.push(p.evaluations);
        ControlFlow::Continue(())
    };
    let mut hooks = Hooks {
        exclude: &[],
        on_pick: Some(&mut on_pick),
        entropies: None,
    };
    let lazy = batchbald_with(
        &Scalar,
        &lp,
        BatchBald {
            greedy: Greedy::Lazy,
            ..full
        },
        &mut hooks,
    );
    let want = batchbald(&Scalar, &lp, full).unwrap();
    assert_eq!(lazy.unwrap(), want);
    assert_eq!(want.indices[0], 0);
    assert!(
        want.indices[1] > 40,
        "a copy adds nothing: {:?}",
        want.indices
    );
    assert_eq!(
        evaluations[1], 16,
        "evaluations per step: {evaluations:?}, {want:?}"
    );
}

/// The sampled joint merges repeated configurations into one row scaled by its count: the
/// estimate is the one over all M draws, written out here from the same Philox draws, to
/// rounding; and on a pool whose chosen points have few likely classes, far fewer rows.
#[test]
fn merged_sampled_rows_give_the_estimate_over_every_draw() {
    use bald_core::joint::{dynamic_joint_workspace_len, DynamicJoint};
    use bald_core::rng::{counter, key_of, philox4x32_10, unit_f64, Domain};
    let (n, k, c) = (7, 6, 4);
    // Points 0-4 sure of one class or split between two; 5-6 spread out.
    let mut data = Vec::new();
    for i in 0..n {
        for kk in 0..k {
            let mut row = [1e-4f64; 4];
            match i {
                0 | 1 => row[i % c] = 1.0,
                2..=4 => {
                    row[i % c] = 0.6 + 0.05 * kk as f64;
                    row[(i + 1) % c] = 0.4;
                }
                _ => row = [0.4, 0.3, 0.2 + 0.01 * kk as f64, 0.1],
            }
            let total: f64 = row.iter().sum();
            data.extend(row.iter().map(|p| (p / total).ln()));
        }
    }
    let lp = LogProbs::new(&data, Shape::new(n, k, c)).unwrap();
    let chosen = [0, 1, 2, 3, 4];
    let (num_samples, seed) = (600, 9);
    let len = dynamic_joint_workspace_len(lp.shape(), chosen.len(), num_samples).unwrap();
    let mut ws = vec![0.0; len];
    let mut joint =
        DynamicJoint::new(&mut ws, lp.shape(), chosen.len(), num_samples, seed).unwrap();
    for t in 0..chosen.len() {
        joint.add(&lp, &chosen[..=t]).unwrap();
    }
    assert_eq!(joint.regime(), Regime::Sampled);
    let m = joint.samples();
    assert_eq!(m, num_samples);
    let view = joint.view();
    assert!(
        view.m <= 2 * 2 * 2,
        "{} rows for 8 likely configurations",
        view.m
    );
    // Every draw, as the sampled regime makes it: configuration r's class of chosen point i
    // from component r / (M / K), with Philox counter (r, i, 0, JointSample).
    let p = |i: usize, kk: usize, class: usize| lp.point(i)[kk * c + class].exp();
    let per = m / k;
    let mut lik = vec![vec![1.0f64; k]; m];
    for (r, lik) in lik.iter_mut().enumerate() {
        for (i, &point) in chosen.iter().enumerate() {
            let ctr = [
                counter(r).unwrap(),
                counter(i).unwrap(),
                0,
                Domain::JointSample as u32,
            ];
            let w = philox4x32_10(ctr, key_of(seed));
            let u = unit_f64(w[0], w[1]);
            let total: f64 = (0..c).map(|cl| p(point, r / per, cl)).sum();
            let (mut cum, mut class) = (0.0, c - 1);
            for cl in 0..c {
                cum += p(point, r / per, cl);
                if cum > u * total {
                    class = cl;
                    break;
                }
            }
            for (kk, l) in lik.iter_mut().enumerate() {
                *l *= p(point, kk, class);
            }
        }
    }
    for cand in [5, 6] {
        let probs: Vec<f64> = lp.point(cand).iter().map(|l| l.exp()).collect();
        let mut want = 0.0;
        for lik in &lik {
            let q = lik.iter().sum::<f64>() / k as f64;
            for class in 0..c {
                let x = (0..k)
                    .map(|kk| lik[kk] * probs[kk * c + class])
                    .sum::<f64>()
                    / k as f64;
                want -= x * x.ln() / q;
            }
        }
        want /= m as f64;
        let got = view.entropy_of(&probs, c);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "candidate {cand}: {got} vs {want}"
        );
        // The standard error over every draw, each its own term, against the merged rows'.
        let terms: Vec<f64> = lik
            .iter()
            .map(|lik| {
                let q = lik.iter().sum::<f64>() / k as f64;
                (0..c)
                    .map(|class| {
                        let x = (0..k)
                            .map(|kk| lik[kk] * probs[kk * c + class])
                            .sum::<f64>()
                            / k as f64;
                        -x * x.ln() / q
                    })
                    .sum::<f64>()
            })
            .collect();
        let var = terms.iter().map(|f| (f - want).powi(2)).sum::<f64>() / (m - 1) as f64;
        let want_se = (var / m as f64).sqrt();
        let got_se = view.entropy_standard_error(&probs, c);
        assert!(
            want_se > 0.0 && (got_se - want_se).abs() <= 1e-9 * want_se,
            "candidate {cand}: standard error {got_se} vs {want_se}"
        );
    }
}

#[test]
fn standard_errors_are_zero_when_exact_and_match_the_spread_over_seeds() {
    let mut data: Vec<f64> = (0..6 * 5 * 3)
        .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 4.0)
        .collect();
    log_softmax_rows(&mut data, 3);
    let lp = LogProbs::new(&data, Shape::new(6, 5, 3)).unwrap();
    let idx = [0, 2, 3, 5];
    let params = |num_samples, seed| BatchBald {
        batch_size: 4,
        num_samples,
        seed,
        greedy: Greedy::Lazy,
    };
    let exact = bald_core::owned::standard_errors(&Scalar, &lp, params(1000, 0), &idx).unwrap();
    assert_eq!(exact, vec![0.0; 4]);
    // The estimate of H(y_0, y_2, y_3, y_5) with 20 samples over many seeds: its spread
    // against the standard error each run reports.
    let mut ws = vec![0.0; 4096];
    let runs = 200;
    let (mut est, mut reported) = (Vec::new(), 0.0);
    for seed in 0..runs {
        let (h, _) = joint_entropy(&lp, &idx, 20, seed, &mut ws).unwrap();
        est.push(h);
        let se = bald_core::owned::standard_errors(&Scalar, &lp, params(20, seed), &idx).unwrap();
        assert_eq!(se[..3], [0.0, 0.0, 0.0]);
        reported += se[3] / runs as f64;
    }
    let mean = est.iter().sum::<f64>() / runs as f64;
    let sd = (est.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / (runs - 1) as f64).sqrt();
    assert!(
        (0.6..1.6).contains(&(reported / sd)),
        "mean reported standard error {reported} vs the spread over seeds {sd}"
    );
}

#[test]
fn standard_errors_redraw_the_greedys_samples() {
    let mut data: Vec<f64> = (0..50 * 6 * 4)
        .map(|i| ((i * 104729 % 211) as f64 / 211.0 - 0.5) * 5.0)
        .collect();
    log_softmax_rows(&mut data, 4);
    let lp = LogProbs::new(&data, Shape::new(50, 6, 4)).unwrap();
    let params = BatchBald {
        batch_size: 7,
        num_samples: 30,
        seed: 5,
        greedy: Greedy::Full,
    };
    let batch = batchbald(&Scalar, &lp, params).unwrap();
    let se = bald_core::owned::standard_errors(&Scalar, &lp, params, &batch.indices).unwrap();
    let cond = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
    let mut ws = vec![0.0; 1 << 16];
    for (t, &se) in se.iter().enumerate() {
        let picks = &batch.indices[..=t];
        let (h, regime) = joint_entropy(&lp, picks, 30, 5, &mut ws).unwrap();
        assert_eq!(regime, params.regime_at(4, t));
        // The pick's score is the estimate over the draws the standard error is taken over.
        let score = h - picks.iter().map(|&i| cond[i]).sum::<f64>();
        assert!((score - batch.scores[t]).abs() < 1e-9, "pick {t}");
        assert_eq!(se > 0.0, regime == Regime::Sampled, "pick {t}: {se}");
    }
}

#[test]
fn sampled_joint_entropy_agrees_with_exact() {
    let mut data: Vec<f64> = (0..6 * 5 * 3)
        .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 4.0)
        .collect();
    log_softmax_rows(&mut data, 3);
    let lp = LogProbs::new(&data, Shape::new(6, 5, 3)).unwrap();
    let idx = [0, 2, 3, 5];
    let mut ws = vec![0.0; 4096];
    let (exact, regime) = joint_entropy(&lp, &idx, 1000, 0, &mut ws).unwrap();
    assert_eq!(regime, Regime::Exact);
    let runs = 64;
    let est: Vec<f64> = (0..runs)
        .map(|seed| {
            let (h, r) = joint_entropy(&lp, &idx, 20, seed, &mut ws).unwrap();
            assert_eq!(r, Regime::Sampled);
            h
        })
        .collect();
    let mean = est.iter().sum::<f64>() / runs as f64;
    let var = est.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / (runs - 1) as f64;
    let se = (var / runs as f64).sqrt();
    assert!(se > 0.0, "sampled estimates do not vary with the seed");
    assert!(
        (mean - exact).abs() <= 4.0 * se,
        "sampled mean {mean} vs exact {exact}, standard error {se}"
    );
    // Same seed, same estimate.
    assert_eq!(joint_entropy(&lp, &idx, 20, 3, &mut ws).unwrap().0, est[3]);
}

#[test]
fn sampled_batchbald_is_finite_and_deterministic() {
    let mut data: Vec<f64> = (0..40 * 8 * 5)
        .map(|i| ((i * 104729 % 211) as f64 / 211.0 - 0.5) * 6.0)
        .collect();
    log_softmax_rows(&mut data, 5);
    // Probability 0 in some rows: the sampled regime must stay finite.
    for i in (0..data.len()).step_by(17) {
        data[i] = f64::NEG_INFINITY;
    }
    for row in data.chunks_exact_mut(5) {
        let lse = bald_core::log_sum_exp(row.iter().copied());
        row.iter_mut().for_each(|v| *v -= lse);
    }
    let lp = LogProbs::new(&data, Shape::new(40, 8, 5)).unwrap();
    let params = BatchBald {
        batch_size: 8,
        num_samples: 100,
        seed: 9,
        greedy: bald_core::Greedy::Lazy,
    };
    assert_eq!(params.regime_at(5, 3), Regime::Sampled);
    let a = batchbald(&Scalar, &lp, params).unwrap();
    let b = batchbald(&Scalar, &lp, params).unwrap();
    assert_eq!(a, b);
    assert!(a.scores.iter().all(|s| s.is_finite()), "{:?}", a.scores);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Excluding points is acquiring on the pool without them (exact regime): same picks
    /// (mapped back), same scores, and the batch clamped to the points left.
    #[test]
    fn excluded_points_are_never_picked((data, shape) in pool(12, 5, 4), mask in prop::collection::vec(any::<bool>(), 12), b in 1usize..8) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let exclude: Vec<usize> = (0..shape.n).filter(|&i| mask[i]).chain((0..shape.n).filter(|&i| mask[i])).collect();
        let kept: Vec<usize> = (0..shape.n).filter(|&i| !mask[i]).collect();
        let params = BatchBald { batch_size: b, num_samples: 1 << 20, seed: 3, greedy: bald_core::Greedy::Lazy };
        let mut hooks = Hooks { exclude: &exclude, on_pick: None, entropies: None };
        let got = batchbald_with(&Scalar, &lp, params, &mut hooks).unwrap();
        prop_assert_eq!(got.indices.len(), b.min(kept.len()));
        if kept.is_empty() {
            return Ok(());
        }
        let stride = shape.k * shape.c;
        let reduced: Vec<f64> = kept.iter().flat_map(|&i| data[i * stride..(i + 1) * stride].iter().copied()).collect();
        let rshape = Shape::new(kept.len(), shape.k, shape.c);
        let want = batchbald(&Scalar, &LogProbs::new(&reduced, rshape).unwrap(), params).unwrap();
        let mapped: Vec<usize> = want.indices.iter().map(|&i| kept[i]).collect();
        prop_assert_eq!(got.indices, mapped);
        prop_assert_eq!(got.scores, want.scores);
    }
}

#[test]
fn a_stop_from_on_pick_interrupts_between_picks() {
    let mut data: Vec<f64> = (0..20 * 4 * 3)
        .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 4.0)
        .collect();
    log_softmax_rows(&mut data, 3);
    let lp = LogProbs::new(&data, Shape::new(20, 4, 3)).unwrap();
    let params = BatchBald {
        batch_size: 5,
        num_samples: 1000,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    };
    let mut seen = Vec::new();
    let mut on_pick = |p: Pick| {
        seen.push(p);
        if p.done == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let mut hooks = Hooks {
        exclude: &[],
        on_pick: Some(&mut on_pick),
        entropies: None,
    };
    let err = batchbald_with(&Scalar, &lp, params, &mut hooks).unwrap_err();
    assert_eq!(err, bald_core::Error::Interrupted { picks: 2 });
    let full = batchbald(&Scalar, &lp, params).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].total, seen[0].index), (5, full.indices[0]));
    assert_eq!(seen[1].score, full.scores[1]);
    let bad = Hooks {
        exclude: &[20],
        on_pick: None,
        entropies: None,
    };
    assert_eq!(
        batchbald_with(&Scalar, &lp, params, &mut { bad }).unwrap_err(),
        bald_core::Error::IndexOutOfRange { index: 20, len: 20 }
    );
}

/// Entropies handed in (from the pass that validated the pool) replace the driver's first
/// pass: the same batch as computing them, in both greedy modes; they are what the driver
/// uses; and lengths other than N are refused.
#[test]
fn given_entropies_replace_the_first_pass() {
    let data = common::random_pool(Shape::new(30, 5, 4), 3);
    let data: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    let shape = Shape::new(30, 5, 4);
    let lp = LogProbs::new(&data, shape).unwrap();
    let (h, eh) = bald_core::owned::entropies(&Scalar, &lp).unwrap();
    for greedy in [Greedy::Lazy, Greedy::Full] {
        let params = BatchBald {
            batch_size: 4,
            num_samples: 1000,
            seed: 0,
            greedy,
        };
        let mut hooks = Hooks {
            entropies: Some((&h, &eh)),
            ..Hooks::default()
        };
        let given = batchbald_with(&Scalar, &lp, params, &mut hooks).unwrap();
        assert_eq!(
            given,
            batchbald(&Scalar, &lp, params).unwrap(),
            "{greedy:?}"
        );
        // A point whose conditional entropy is said to be far lower is picked first.
        let last = shape.n - 1;
        let mut low = eh.clone();
        low[last] -= 10.0;
        let mut hooks = Hooks {
            entropies: Some((&h, &low)),
            ..Hooks::default()
        };
        let batch = batchbald_with(&Scalar, &lp, params, &mut hooks).unwrap();
        assert_eq!(batch.indices[0], last, "{greedy:?}");
        let mut short = Hooks {
            entropies: Some((&h, &eh[1..])),
            ..Hooks::default()
        };
        assert_eq!(
            batchbald_with(&Scalar, &lp, params, &mut short).unwrap_err(),
            bald_core::Error::ShapeMismatch {
                what: "conditional entropies",
                expected: 30,
                actual: 29
            }
        );
    }
}
