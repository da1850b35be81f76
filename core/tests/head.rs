//! The MC-dropout head: consistent masks, dropout rates, and the forward pass by hand.

use bald_core::owned::mc_dropout_forward;
use bald_core::{dropout_keep, keep_threshold, DenseLayer, LogProbs, McDropoutHead, Scalar, Shape};

#[test]
fn masks_are_pure_functions_of_seed_layer_sample_unit() {
    let t = keep_threshold(0.5);
    assert_eq!(t, 1 << 23);
    let a: Vec<bool> = (0..64).map(|j| dropout_keep(1, 0, 3, j, t)).collect();
    let b: Vec<bool> = (0..64).map(|j| dropout_keep(1, 0, 3, j, t)).collect();
    assert_eq!(a, b);
    let other_sample: Vec<bool> = (0..64).map(|j| dropout_keep(1, 0, 4, j, t)).collect();
    let other_layer: Vec<bool> = (0..64).map(|j| dropout_keep(1, 1, 3, j, t)).collect();
    let other_seed: Vec<bool> = (0..64).map(|j| dropout_keep(2, 0, 3, j, t)).collect();
    assert_ne!(a, other_sample);
    assert_ne!(a, other_layer);
    assert_ne!(a, other_seed);
    // p = 0 keeps everything.
    assert!((0..1000).all(|j| dropout_keep(1, 0, 0, j, keep_threshold(0.0))));
}

#[test]
fn dropout_rate_is_respected() {
    for p in [0.1f32, 0.25, 0.5, 0.9] {
        let t = keep_threshold(p);
        let n = 40000u32;
        let kept = (0..n)
            .filter(|&j| dropout_keep(5, 2, j % 100, j / 100, t))
            .count();
        let rate = 1.0 - kept as f64 / n as f64;
        assert!((rate - f64::from(p)).abs() < 0.01, "p {p}: dropped {rate}");
    }
}

#[test]
fn forward_matches_a_hand_computation() {
    // 3 -> 2 (ReLU) -> 2, dropout 0.5 then 0.25.
    let w1 = [0.5f32, -1.0, 2.0, 1.5, 0.25, -0.5];
    let b1 = [0.1f32, -0.2];
    let w2 = [1.0f32, -1.0, 0.5, 2.0];
    let b2 = [0.0f32, 0.3];
    let layers = [
        DenseLayer {
            weight: &w1,
            bias: &b1,
            inputs: 3,
            outputs: 2,
            dropout: 0.5,
        },
        DenseLayer {
            weight: &w2,
            bias: &b2,
            inputs: 2,
            outputs: 2,
            dropout: 0.25,
        },
    ];
    let head = McDropoutHead::new(&layers).unwrap();
    let x = [1.0f32, 2.0, -1.0, 0.5, 0.0, 3.0];
    let (n, k, seed) = (2, 8, 11);
    let out: Vec<f64> = mc_dropout_forward(&Scalar, &head, &x, n, k, seed).unwrap();
    LogProbs::new(&out, Shape::new(n, k, 2)).unwrap();
    for p in 0..n {
        for s in 0..k {
            let mask = |l: u32, j: u32, rate: f32| {
                if dropout_keep(seed, l, s as u32, j, keep_threshold(rate)) {
                    1.0 / (1.0 - f64::from(rate))
                } else {
                    0.0
                }
            };
            let xin: Vec<f64> = (0..3)
                .map(|j| f64::from(x[p * 3 + j]) * mask(0, j as u32, 0.5))
                .collect();
            let h: Vec<f64> = (0..2)
                .map(|o| {
                    let z: f64 = (0..3)
                        .map(|j| f64::from(w1[o * 3 + j]) * xin[j])
                        .sum::<f64>()
                        + f64::from(b1[o]);
                    z.max(0.0) * mask(1, o as u32, 0.25)
                })
                .collect();
            let z: Vec<f64> = (0..2)
                .map(|o| {
                    (0..2).map(|j| f64::from(w2[o * 2 + j]) * h[j]).sum::<f64>() + f64::from(b2[o])
                })
                .collect();
            let lse = (z[0].exp() + z[1].exp()).ln();
            for c in 0..2 {
                let got = out[(p * k + s) * 2 + c];
                assert!(
                    (got - (z[c] - lse)).abs() < 1e-12,
                    "point {p} sample {s}: {got} vs {}",
                    z[c] - lse
                );
            }
        }
    }
}

#[test]
fn masks_are_consistent_across_points_and_chunks() {
    // One layer, identity-like weights: the log-probs of point p under sample k depend on the
    // mask of k alone, so running points one at a time gives the same output.
    let w: Vec<f32> = (0..4 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
    let b = [0.0f32; 3];
    let layers = [DenseLayer {
        weight: &w,
        bias: &b,
        inputs: 4,
        outputs: 3,
        dropout: 0.5,
    }];
    let head = McDropoutHead::new(&layers).unwrap();
    let x: Vec<f32> = (0..5 * 4).map(|i| (i as f32 * 0.11).cos()).collect();
    let all: Vec<f32> = mc_dropout_forward(&Scalar, &head, &x, 5, 6, 99).unwrap();
    for p in 0..5 {
        let one: Vec<f32> =
            mc_dropout_forward(&Scalar, &head, &x[p * 4..(p + 1) * 4], 1, 6, 99).unwrap();
        assert_eq!(&all[p * 18..(p + 1) * 18], &one[..]);
    }
    // Samples differ (dropout is on), so the K predictions are not all equal.
    assert_ne!(&all[0..3], &all[3..6]);
}
