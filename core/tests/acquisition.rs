//! Known values of the non-entropy scores, top-k, random and stochastic acquisition.

use bald_core::owned::{random_batch, scores, stochastic_batch, top_k_of};
use bald_core::{
    top_k, LogProbs, PointScore, Scalar, Shape, StdKind, StochasticBatch, StochasticMode,
};
use proptest::prelude::*;

/// One point, K = 3, C = 3, probabilities given by hand.
fn point(probs: &[[f64; 3]; 3]) -> Vec<f64> {
    probs.iter().flatten().map(|p| p.ln()).collect()
}

#[test]
fn hand_computed_scores() {
    let probs = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]];
    let data = point(&probs);
    let lp = LogProbs::new(&data, Shape::new(1, 3, 3)).unwrap();
    let get = |s| scores(&Scalar, &lp, s).unwrap()[0];
    // mean probs: (1.3/3, 1.4/3, 0.1) -> max 1.4/3, second 1.3/3
    let (m0, m1) = (1.3 / 3.0, 1.4 / 3.0);
    assert!((get(PointScore::VariationRatios) - (1.0 - m1)).abs() < 1e-14);
    assert!((get(PointScore::LeastConfidence) - (1.0 - m1)).abs() < 1e-14);
    assert!((get(PointScore::Margin) - (1.0 - (m1 - m0))).abs() < 1e-14);
    // modes: class 0, class 1, class 0 -> f_mode = 2
    assert!((get(PointScore::VariationRatiosMode) - (1.0 - 2.0 / 3.0)).abs() < 1e-14);
    // std per class, population and unbiased
    let std = |col: [f64; 3], denom: f64| {
        let m = col.iter().sum::<f64>() / 3.0;
        (col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / denom).sqrt()
    };
    let cols = [[0.6, 0.2, 0.5], [0.3, 0.7, 0.4], [0.1, 0.1, 0.1]];
    let pop = cols.iter().map(|&c| std(c, 3.0)).sum::<f64>() / 3.0;
    let unb = cols.iter().map(|&c| std(c, 2.0)).sum::<f64>() / 3.0;
    assert!((get(PointScore::MeanStd(StdKind::Population)) - pop).abs() < 1e-14);
    assert!((get(PointScore::MeanStd(StdKind::Unbiased)) - unb).abs() < 1e-14);
}

#[test]
fn mode_ties_go_to_the_lower_class() {
    // K = 4: two samples vote class 2, two vote class 0: f_mode = 2 either way.
    let probs = [
        [0.1, 0.1, 0.8],
        [0.8, 0.1, 0.1],
        [0.1, 0.1, 0.8],
        [0.8, 0.1, 0.1],
    ];
    let data: Vec<f64> = probs.iter().flatten().map(|p: &f64| p.ln()).collect();
    let lp = LogProbs::new(&data, Shape::new(1, 4, 3)).unwrap();
    assert_eq!(
        scores(&Scalar, &lp, PointScore::VariationRatiosMode).unwrap()[0],
        0.5
    );
    // An argmax tie inside one sample counts for the lower class: (0.45, 0.45, 0.1) -> 0.
    let probs = [[0.45, 0.45, 0.1], [0.1, 0.8, 0.1]];
    let data: Vec<f64> = probs.iter().flatten().map(|p: &f64| p.ln()).collect();
    let lp = LogProbs::new(&data, Shape::new(1, 2, 3)).unwrap();
    assert_eq!(
        scores(&Scalar, &lp, PointScore::VariationRatiosMode).unwrap()[0],
        0.5
    );
}

#[test]
fn top_k_orders_by_score_then_index() {
    let s = [0.5, 0.9, f64::NEG_INFINITY, 0.9, 0.1, 0.5];
    let mut out = [0; 6];
    assert_eq!(top_k(&s, 4, &mut out).unwrap(), &[1, 3, 0, 5]);
    assert_eq!(top_k(&s, 10, &mut out).unwrap(), &[1, 3, 0, 5, 4, 2]);
    assert_eq!(top_k(&s, 0, &mut out).unwrap(), &[] as &[usize]);
    assert!(top_k(&s, 3, &mut [0; 2]).is_err());
}

proptest! {
    #[test]
    fn top_k_matches_a_full_sort(s in prop::collection::vec(prop_oneof![-3i32..3, Just(i32::MIN)], 0..60), k in 0usize..70) {
        // Small integer range: many ties.
        let s: Vec<f64> = s.into_iter().map(|x| if x == i32::MIN { f64::NEG_INFINITY } else { x as f64 }).collect();
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| s[b].partial_cmp(&s[a]).unwrap().then(a.cmp(&b)));
        order.truncate(k);
        let batch = top_k_of(&s, k);
        prop_assert_eq!(batch.indices, order);
    }
}

#[test]
fn random_batches_are_seeded_subsets() {
    let a = random_batch(100, 10, 7);
    assert_eq!(a, random_batch(100, 10, 7));
    assert_ne!(a.indices, random_batch(100, 10, 8).indices);
    let mut idx = a.indices.clone();
    idx.sort();
    idx.dedup();
    assert_eq!(idx.len(), 10);
    assert_eq!(random_batch(5, 10, 7).indices.len(), 5);
    // Every point is equally likely: counts over many seeds.
    let mut counts = [0usize; 20];
    for seed in 0..2000 {
        for i in random_batch(20, 5, seed).indices {
            counts[i] += 1;
        }
    }
    for c in counts {
        assert!((c as f64 - 500.0).abs() < 90.0, "{counts:?}");
    }
}

#[test]
fn stochastic_acquisition_follows_its_weights() {
    // Two points with scores 2 and 1, batch of 1: P(pick 0) = w0 / (w0 + w1).
    let scores = [2.0, 1.0];
    let trials = 4000;
    for (mode, beta, p0) in [
        (StochasticMode::Power, 1.0, 2.0 / 3.0),
        (StochasticMode::Power, 2.0, 4.0 / 5.0),
        (StochasticMode::Softmax, 1.0, 1.0 / (1.0 + (-1.0f64).exp())),
        (StochasticMode::SoftRank, 1.0, 1.0 / 1.5),
        (StochasticMode::Power, 0.0, 0.5),
    ] {
        let hits = (0..trials)
            .filter(|&seed| {
                let p = StochasticBatch {
                    mode,
                    beta,
                    batch_size: 1,
                    seed,
                };
                stochastic_batch(p, &scores).unwrap().indices[0] == 0
            })
            .count();
        let freq = hits as f64 / trials as f64;
        let se = (p0 * (1.0 - p0) / trials as f64).sqrt();
        assert!(
            (freq - p0).abs() < 4.0 * se,
            "{mode:?} beta {beta}: {freq} vs {p0}"
        );
    }
}

#[test]
fn stochastic_batches_are_distinct_and_clamped() {
    let scores: Vec<f64> = (0..50).map(|i| (i % 7) as f64 * 0.1).collect();
    for mode in [
        StochasticMode::Power,
        StochasticMode::Softmax,
        StochasticMode::SoftRank,
    ] {
        let p = StochasticBatch {
            mode,
            beta: 1.0,
            batch_size: 20,
            seed: 3,
        };
        let b = stochastic_batch(p, &scores).unwrap();
        assert_eq!(b, stochastic_batch(p, &scores).unwrap());
        let mut idx = b.indices.clone();
        idx.sort();
        idx.dedup();
        assert_eq!(idx.len(), 20);
        let p = StochasticBatch {
            batch_size: 500,
            ..p
        };
        assert_eq!(stochastic_batch(p, &scores).unwrap().indices.len(), 50);
    }
}
