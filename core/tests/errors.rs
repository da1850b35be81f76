//! Every class of bad input gets its typed error (one test each), never a panic or a NaN.

use bald_core::owned::{batchbald, log_probs_from_logits, log_probs_from_probs, stochastic_batch};
use bald_core::{
    scores, BatchBald, DenseLayer, Error, Hooks, LogProbs, McDropoutHead, PointScore, Scalar,
    Shape, StdKind, StochasticBatch, StochasticMode,
};

fn uniform(n: usize, k: usize, c: usize) -> Vec<f64> {
    vec![-(c as f64).ln(); n * k * c]
}

#[test]
fn wrong_length_is_shape_mismatch() {
    let data = uniform(2, 3, 4);
    let err = LogProbs::new(&data[1..], Shape::new(2, 3, 4)).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            what: "log_probs",
            expected: 24,
            actual: 23
        }
    );
    assert!(err.to_string().contains("23"));
}

#[test]
fn zero_dimensions_are_refused() {
    for (shape, dim) in [
        (Shape::new(0, 3, 4), "N"),
        (Shape::new(2, 0, 4), "K"),
        (Shape::new(2, 3, 0), "C"),
    ] {
        assert_eq!(
            LogProbs::<f64>::new(&[], shape).unwrap_err(),
            Error::EmptyDimension { dim }
        );
    }
}

#[test]
fn overflowing_shape_is_refused() {
    let err = LogProbs::<f32>::new(&[], Shape::new(usize::MAX, 2, 2)).unwrap_err();
    assert_eq!(err, Error::ShapeOverflow);
}

#[test]
fn nan_is_refused_with_its_position() {
    let mut data = uniform(2, 3, 4);
    data[4 * 4 + 2] = f64::NAN;
    assert_eq!(
        LogProbs::new(&data, Shape::new(2, 3, 4)).unwrap_err(),
        Error::NotANumber { n: 1, k: 1, c: 2 }
    );
}

#[test]
fn positive_infinity_is_refused() {
    let mut data = uniform(2, 3, 4);
    data[1] = f64::INFINITY;
    assert_eq!(
        LogProbs::new(&data, Shape::new(2, 3, 4)).unwrap_err(),
        Error::Infinite { n: 0, k: 0, c: 1 }
    );
}

#[test]
fn unnormalised_rows_are_refused() {
    let mut data = uniform(2, 3, 4);
    data[2 * 4] += 0.1;
    match LogProbs::new(&data, Shape::new(2, 3, 4)).unwrap_err() {
        Error::NotNormalised {
            n: 0,
            k: 2,
            log_sum,
            ..
        } => assert!(log_sum > 0.0),
        e => panic!("{e:?}"),
    }
    // Raw logits are not log-probs.
    let logits = vec![1.0f32; 2 * 3 * 4];
    assert!(matches!(
        LogProbs::new(&logits, Shape::new(2, 3, 4)),
        Err(Error::NotNormalised { .. })
    ));
}

#[test]
fn all_zero_probability_row_is_refused() {
    let mut data = uniform(1, 2, 3);
    data[3..6].fill(f64::NEG_INFINITY);
    match LogProbs::new(&data, Shape::new(1, 2, 3)).unwrap_err() {
        Error::NotNormalised {
            n: 0,
            k: 1,
            log_sum,
            ..
        } => assert_eq!(log_sum, f64::NEG_INFINITY),
        e => panic!("{e:?}"),
    }
}

#[test]
fn negative_infinity_is_valid_and_finite() {
    let data = [
        0.0,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
        (0.5f64).ln(),
        (0.5f64).ln(),
        f64::NEG_INFINITY,
    ];
    let lp = LogProbs::new(&data, Shape::new(1, 2, 3)).unwrap();
    let mut out = [0.0];
    for score in [
        PointScore::Entropy,
        PointScore::ConditionalEntropy,
        PointScore::Bald,
    ] {
        scores(&lp, score, &mut out, &mut []).unwrap();
        assert!(out[0].is_finite() && out[0] >= 0.0, "{score:?}: {}", out[0]);
    }
}

#[test]
fn bad_probabilities_are_refused() {
    let shape = Shape::new(1, 1, 2);
    assert_eq!(
        log_probs_from_probs(&[1.5f64, -0.5], shape).unwrap_err(),
        Error::ProbabilityOutOfRange {
            n: 0,
            k: 0,
            c: 0,
            value: 1.5
        }
    );
    assert_eq!(
        log_probs_from_probs(&[0.5f64, f64::NAN], shape).unwrap_err(),
        Error::NotANumber { n: 0, k: 0, c: 1 }
    );
    // In range but not summing to one.
    assert!(matches!(
        log_probs_from_probs(&[0.5f64, 0.2], shape),
        Err(Error::NotNormalised { .. })
    ));
    // Zeros are fine, through the borrowing constructor too.
    let mut buf = [0.0f64; 2];
    let lp = LogProbs::from_probs(&[1.0f64, 0.0], shape, &mut buf).unwrap();
    assert_eq!(lp.data(), &[0.0, f64::NEG_INFINITY]);
}

#[test]
fn bad_logits_are_refused() {
    let shape = Shape::new(1, 1, 2);
    assert_eq!(
        log_probs_from_logits(&[f32::INFINITY, 0.0], shape).unwrap_err(),
        Error::Infinite { n: 0, k: 0, c: 0 }
    );
    assert!(matches!(
        log_probs_from_logits(&[f32::NEG_INFINITY; 2], shape).unwrap_err(),
        Error::NotNormalised { .. }
    ));
    let lp = log_probs_from_logits(&[3.0f32, f32::NEG_INFINITY], shape).unwrap();
    assert_eq!(lp, vec![0.0, f32::NEG_INFINITY]);
}

#[test]
fn wrong_output_and_workspace_lengths_are_refused() {
    let data = uniform(3, 2, 2);
    let lp = LogProbs::new(&data, Shape::new(3, 2, 2)).unwrap();
    let mut out = [0.0; 2];
    assert!(matches!(
        scores(&lp, PointScore::Entropy, &mut out, &mut []),
        Err(Error::ShapeMismatch { what: "out", .. })
    ));
    let mut out = [0.0; 3];
    assert!(matches!(
        scores(
            &lp,
            PointScore::VariationRatiosMode,
            &mut out,
            &mut [0.0; 1]
        ),
        Err(Error::ShapeMismatch {
            what: "workspace",
            ..
        })
    ));
    let params = BatchBald {
        batch_size: 2,
        num_samples: 10,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    };
    let mut idx = [0usize; 2];
    let mut sc = [0.0; 2];
    assert!(matches!(
        params.run(
            &Scalar,
            &lp,
            &mut [0.0; 3],
            &mut idx,
            &mut sc,
            &mut Hooks::default()
        ),
        Err(Error::ShapeMismatch {
            what: "workspace",
            ..
        })
    ));
}

#[test]
fn unbiased_std_needs_two_samples() {
    let data = uniform(2, 1, 3);
    let lp = LogProbs::new(&data, Shape::new(2, 1, 3)).unwrap();
    let mut out = [0.0; 2];
    assert!(matches!(
        scores(
            &lp,
            PointScore::MeanStd(StdKind::Unbiased),
            &mut out,
            &mut []
        ),
        Err(Error::InvalidParameter { name: "K", .. })
    ));
}

#[test]
fn batch_larger_than_pool_is_clamped_and_zero_is_empty() {
    let data = uniform(3, 2, 2);
    let lp = LogProbs::new(&data, Shape::new(3, 2, 2)).unwrap();
    let big = batchbald(
        &Scalar,
        &lp,
        BatchBald {
            batch_size: 10,
            num_samples: 100,
            seed: 0,
            greedy: bald_core::Greedy::Lazy,
        },
    )
    .unwrap();
    assert_eq!(big.indices.len(), 3);
    let empty = batchbald(
        &Scalar,
        &lp,
        BatchBald {
            batch_size: 0,
            num_samples: 100,
            seed: 0,
            greedy: bald_core::Greedy::Lazy,
        },
    )
    .unwrap();
    assert!(empty.indices.is_empty() && empty.scores.is_empty());
}

#[test]
fn bad_temperature_and_scores_are_refused() {
    for beta in [-1.0, f64::NAN, f64::INFINITY] {
        let p = StochasticBatch {
            mode: StochasticMode::Power,
            beta,
            batch_size: 1,
            seed: 0,
        };
        assert!(matches!(
            stochastic_batch(p, &[0.5, 0.2]),
            Err(Error::InvalidParameter { name: "beta", .. })
        ));
    }
    let p = StochasticBatch {
        mode: StochasticMode::Softmax,
        beta: 1.0,
        batch_size: 1,
        seed: 0,
    };
    assert!(matches!(
        stochastic_batch(p, &[0.5, f64::NAN]),
        Err(Error::InvalidParameter { name: "scores", .. })
    ));
}

#[test]
fn bad_heads_are_refused() {
    let w = [0.0f32; 6];
    let b = [0.0f32; 3];
    let layer = |dropout| DenseLayer {
        weight: &w,
        bias: &b,
        inputs: 2,
        outputs: 3,
        dropout,
    };
    assert!(matches!(
        McDropoutHead::new(&[]),
        Err(Error::EmptyDimension { .. })
    ));
    assert!(matches!(
        McDropoutHead::new(&[layer(1.0)]),
        Err(Error::InvalidParameter {
            name: "dropout",
            ..
        })
    ));
    // 2 -> 3 then 2 -> 3: the widths do not chain.
    assert!(matches!(
        McDropoutHead::new(&[layer(0.5), layer(0.5)]),
        Err(Error::ShapeMismatch {
            what: "layer inputs",
            ..
        })
    ));
    let short = DenseLayer {
        weight: &w[..5],
        bias: &b,
        inputs: 2,
        outputs: 3,
        dropout: 0.0,
    };
    assert!(matches!(
        McDropoutHead::new(&[short]),
        Err(Error::ShapeMismatch { what: "weight", .. })
    ));
    let nan_w = [f32::NAN; 6];
    let nan = DenseLayer {
        weight: &nan_w,
        bias: &b,
        inputs: 2,
        outputs: 3,
        dropout: 0.0,
    };
    assert!(matches!(
        McDropoutHead::new(&[nan]),
        Err(Error::InvalidParameter { name: "weight", .. })
    ));
    // Features with NaN.
    let layers = [layer(0.5)];
    let head = McDropoutHead::new(&layers).unwrap();
    let mut out = [0.0f32; 3];
    let mut ws = [0.0; 6];
    assert_eq!(
        bald_core::forward(&head, &[1.0, f32::NAN], 1, 1, 0, &mut out, &mut ws).unwrap_err(),
        Error::NotANumber { n: 0, k: 0, c: 1 }
    );
}
