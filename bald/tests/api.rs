//! The `bald` crate's interface: the calls as a user writes them, every input form giving the
//! same pool, the devices agreeing, and every error and warning as data.

use std::ops::ControlFlow;

use bald::{
    Argument, Device, Error, Hint, InputKind, Layout, PastLimit, Pick, PickRegime, Pool,
    PoolOptions, Score, Strategy, Warning,
};
use proptest::prelude::*;

/// N x K x C log-probs of a pool whose points disagree across samples, from `seed`.
fn log_probs(n: usize, k: usize, c: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(n * k * c);
    for _ in 0..n * k {
        let z: Vec<f64> = (0..c).map(|_| 4.0 * next() - 2.0).collect();
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        out.extend(z.iter().map(|v| (v - lse) as f32));
    }
    out
}

/// `lp` (N x K x C) with its axes in `layout`'s order.
fn in_layout(lp: &[f32], [n, k, c]: [usize; 3], layout: Layout) -> (Vec<f32>, [usize; 3]) {
    let at = |i: usize, j: usize, l: usize| lp[(i * k + j) * c + l];
    let mut out = Vec::new();
    let dims = match layout {
        Layout::Nkc => return (lp.to_vec(), [n, k, c]),
        Layout::Knc => {
            for j in 0..k {
                for i in 0..n {
                    out.extend((0..c).map(|l| at(i, j, l)));
                }
            }
            [k, n, c]
        }
        Layout::Nck => {
            for i in 0..n {
                for l in 0..c {
                    out.extend((0..k).map(|j| at(i, j, l)));
                }
            }
            [n, c, k]
        }
    };
    (out, dims)
}

#[test]
fn the_front_door_calls_work_as_written() -> Result<(), bald::Error> {
    let (n, k, c) = (60, 10, 4);
    let owned = log_probs(n, k, c, 1);
    let values: &[f32] = &owned;
    let pool = bald::Pool::from_slice(&values, [n, k, c])?;
    let a = bald::acquire(
        &pool,
        bald::Strategy::batchbald(10).num_samples(1000),
        bald::Device::auto(),
    )?;
    let (indices, scores): (&[usize], &[f64]) = (&a.indices, &a.scores);
    assert_eq!(indices.len(), 10);
    assert_eq!(scores.len(), 10);
    let s: Vec<f64> = bald::scores(&pool, bald::Score::Bald, bald::Device::Cpu)?;
    assert_eq!(s.len(), n);
    // The first BatchBALD pick is the top BALD point.
    let best = (0..n).fold(0, |b, i| if s[i] > s[b] { i } else { b });
    assert_eq!(indices[0], best);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.npy");
    let bytes = bald::npy::write(&[n, k, c], &bald::npy::NpyData::F32(owned.clone()));
    std::fs::write(&path, bytes).unwrap();
    let pool = bald::Pool::open(&path)?;
    let b = bald::acquire(
        &pool,
        bald::Strategy::batchbald(10).num_samples(1000),
        bald::Device::auto(),
    )?;
    assert_eq!(a.indices, b.indices);
    assert_eq!(a.scores, b.scores);
    Ok(())
}

#[test]
fn every_input_form_is_the_same_pool() {
    let (n, k, c) = (30, 6, 3);
    let lp = log_probs(n, k, c, 2);
    let reference = Pool::from_slice(&lp, [n, k, c]).unwrap();
    let want = bald::acquire(&reference, Strategy::batchbald(6), Device::Cpu).unwrap();
    let f64s: Vec<f64> = lp.iter().map(|&v| f64::from(v)).collect();
    for layout in Layout::ALL {
        for kind in InputKind::ALL {
            let given: Vec<f32> = match kind {
                InputKind::LogProbs => lp.clone(),
                InputKind::Probs => lp.iter().map(|v| v.exp()).collect(),
                // Logits: log-probs shifted per row are the same distribution.
                InputKind::Logits => lp.iter().map(|v| v + 3.0).collect(),
            };
            let (values, dims) = in_layout(&given, [n, k, c], layout);
            let options = PoolOptions::default().kind(kind).layout(layout);
            let pool = Pool::from_slice_with(&values, dims, options).unwrap();
            assert_eq!(pool.shape(), bald::Shape::new(n, k, c));
            let got = bald::acquire(&pool, Strategy::batchbald(6), Device::Cpu).unwrap();
            assert_eq!(got.indices, want.indices, "{layout} {kind}");
        }
    }
    let pool = Pool::from_slice(&f64s, [n, k, c]).unwrap();
    assert_eq!(pool.dtype(), "float64");
    let got = bald::acquire(&pool, Strategy::batchbald(6), Device::Scalar).unwrap();
    assert_eq!(got.indices, want.indices);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every strategy gives the same picks on the scalar oracle and the SIMD backend (scores
    /// within the budget), and a prepared pool gives what the one-call form gives.
    #[test]
    fn scalar_and_cpu_agree(n in 1usize..40, k in 2usize..9, c in 2usize..6, seed in 0u64..1000, size in 0usize..8) {
        let lp = log_probs(n, k, c, seed);
        let pool = Pool::from_slice(&lp, [n, k, c]).unwrap();
        let cpu = pool.on(Device::Cpu).unwrap();
        prop_assert_eq!(cpu.backend(), "cpu");
        // EPIG's targets: the pool itself stands in for them.
        let targets = Pool::from_slice(&lp, [n, k, c]).unwrap();
        for kind in bald::Kind::ALL {
            let strategy = Strategy::new(kind, bald::Settings { batch_size: size, ..Default::default() });
            let options = || match kind.needs_targets() {
                true => bald::Options::default().targets(&targets),
                false => bald::Options::default(),
            };
            let a = bald::acquire_with(&pool, strategy, Device::Scalar, options()).unwrap();
            let b = cpu.acquire_with(strategy, options()).unwrap();
            prop_assert_eq!(a.backend, "scalar");
            prop_assert_eq!(a.indices.len(), size.min(n));
            for (x, y) in a.scores.iter().zip(&b.scores) {
                prop_assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{kind}: {x} vs {y}");
            }
            // Ties within rounding may order differently; a clear winner may not.
            if kind == bald::Kind::Random {
                prop_assert_eq!(&a.indices, &b.indices, "{}", kind);
            }
        }
        for score in Score::ALL {
            let a = bald::scores(&pool, score, Device::Scalar).unwrap();
            let b = cpu.scores(score).unwrap();
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{}: {x} vs {y}", score.name());
            }
        }
    }
}

#[test]
fn values_that_are_another_kind_say_so() {
    let probs = [0.25f32, 0.75, 0.5, 0.5];
    let e = Pool::from_slice(&probs, [1, 2, 2]).unwrap_err();
    assert_eq!(e.hint(), Some(Hint::LooksLikeProbs));
    assert_eq!(e.hint().unwrap().kind(), InputKind::Probs);
    assert!(e.to_string().contains("pass input_kind = probs"), "{e}");
    assert!(e
        .message(bald::Spelling::Cli)
        .contains("--input-kind probs"));
    assert!(e
        .message(bald::Spelling::Python)
        .contains("input_kind='probs'"));

    let logits = [2.0f32, -1.0, 0.5, 3.0];
    let e = Pool::from_slice(&logits, [1, 2, 2]).unwrap_err();
    assert_eq!(e.hint(), Some(Hint::MaybeLogits));
    let options = PoolOptions::default().kind(InputKind::Probs);
    let e = Pool::from_slice_with(&[-0.5f64, 1.5], [1, 1, 2], options).unwrap_err();
    assert_eq!(e.hint(), Some(Hint::Negative));
    let e = Pool::from_slice_with(&[f32::NAN, 0.0], [1, 1, 2], PoolOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Input { hint: None, .. }), "{e}");

    // The shape before any buffer: a claimed 2^62 points is an error, not an allocation.
    let e = Pool::from_slice(&[0.0f32], [1 << 62, 4, 4]).unwrap_err();
    assert!(e.is_input(), "{e}");
    let e = Pool::open("/nonexistent/pool.npy").unwrap_err();
    assert!(matches!(e, Error::File { .. }), "{e}");
}

#[test]
fn arguments_are_checked_before_any_work() {
    let lp = log_probs(8, 1, 3, 3);
    let pool = Pool::from_slice(&lp, [8, 1, 3]).unwrap();
    let e = bald::acquire(&pool, Strategy::batchbald(2), Device::Cpu).unwrap_err();
    assert!(
        matches!(e, Error::Argument(Argument::NeedsTwoSamples { .. })),
        "{e}"
    );
    let e = bald::acquire(&pool, Strategy::entropy(2), Device::Cpu).map(|a| a.indices.len());
    assert_eq!(e.unwrap(), 2);

    let lp = log_probs(8, 4, 3, 3);
    let pool = Pool::from_slice(&lp, [8, 4, 3]).unwrap();
    let bad = Strategy::power_bald(2).beta(f64::NAN);
    let e = bald::acquire(&pool, bad, Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::Argument(Argument::Beta(_))), "{e}");
    let e = bald::acquire(&pool, Strategy::batchbald(2).num_samples(0), Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::Argument(Argument::NoSamples)), "{e}");
    for (exclude, want) in [
        (vec![8], Argument::ExcludeOutOfRange { index: 8, n: 8 }),
        (vec![3, 1, 3], Argument::ExcludedTwice(3)),
    ] {
        let options = bald::Options::default().exclude(&exclude);
        let e = bald::acquire_with(&pool, Strategy::bald(2), Device::Cpu, options).unwrap_err();
        assert!(matches!(&e, Error::Argument(a) if *a == want), "{e}");
    }
}

#[test]
fn warnings_come_when_they_apply() {
    // Fewer points than samples in layout NKC: likely transposed.
    let lp = log_probs(3, 8, 2, 4);
    let pool = Pool::from_slice(&lp, [3, 8, 2]).unwrap();
    let mut seen = Vec::new();
    let mut on_warning = |w: &Warning| seen.push(*w);
    let options = bald::Options::default().on_warning(&mut on_warning);
    let a = bald::acquire_with(
        &pool,
        Strategy::batchbald(1).num_samples(4),
        Device::Cpu,
        options,
    )
    .unwrap();
    let want = vec![
        Warning::LooksTransposed { n: 3, k: 8 },
        Warning::FewSamples {
            num_samples: 4,
            k: 8,
        },
    ];
    assert_eq!(seen, want);
    assert_eq!(a.warnings, want);

    // Confident, disagreeing samples: the batch reaches ln K within a few picks.
    let (n, k, c) = (40, 4, 10);
    let mut lp = vec![f32::NEG_INFINITY; n * k * c];
    for i in 0..n {
        for j in 0..k {
            lp[(i * k + j) * c + (i * 7 + j * 3) % c] = 0.0;
        }
    }
    let pool = Pool::from_slice(&lp, [n, k, c]).unwrap();
    for past in PastLimit::ALL {
        let s = Strategy::batchbald(12).past_limit(past);
        let a = bald::acquire(&pool, s, Device::Cpu).unwrap();
        let at = a.information_limit.expect("the limit is reached");
        assert!(a
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::InformationLimit { at: w_at, .. } if *w_at == at)));
        match past {
            PastLimit::Stop => assert_eq!(a.indices.len(), at),
            PastLimit::PowerBald => {
                assert_eq!(a.indices.len(), 12);
                assert_eq!(a.switched_at, Some(at));
                assert!(a.regimes[at..].iter().all(|&r| r == PickRegime::PowerBald));
            }
            PastLimit::Continue => {
                assert_eq!(a.indices.len(), 12);
                assert!(a.regimes.iter().all(|&r| r != PickRegime::PowerBald));
            }
        }
        let mut unique = a.indices.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), a.indices.len());
    }
}

#[test]
fn a_pick_callback_can_stop_the_greedy() {
    let lp = log_probs(50, 8, 3, 5);
    let pool = Pool::from_slice(&lp, [50, 8, 3]).unwrap();
    let mut picks = 0;
    let mut on_pick = |_: Pick| {
        picks += 1;
        if picks == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = bald::Options::default().on_pick(&mut on_pick);
    let e = bald::acquire_with(&pool, Strategy::batchbald(5), Device::Cpu, options).unwrap_err();
    assert!(matches!(e, Error::Stopped), "{e}");
}

#[test]
fn names_parse_as_the_cli_spells_them() {
    for kind in bald::Kind::ALL {
        assert_eq!(kind.name().parse::<bald::Kind>().unwrap(), kind);
        assert_eq!(
            kind.name()
                .replace('-', "_")
                .to_uppercase()
                .parse::<bald::Kind>()
                .unwrap(),
            kind
        );
    }
    for d in [
        Device::Auto,
        Device::Scalar,
        Device::Cpu,
        Device::Cuda(0),
        Device::Cuda(3),
    ] {
        assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
    }
    let e = "gpu".parse::<Device>().unwrap_err();
    assert!(e.contains("one of auto, scalar, cpu, cuda"), "{e}");
    assert_eq!("NKC".parse::<Layout>().unwrap(), Layout::Nkc);
    assert_eq!(
        "log_probs".parse::<InputKind>().unwrap(),
        InputKind::LogProbs
    );
    assert!(bald::score_named("mean-std-unbiased").is_ok());
    assert!(bald::greedy_named("lazy").is_ok());
    let s: Strategy = Strategy::batchbald(3).into();
    assert_eq!(s.kind(), bald::Kind::BatchBald);
    assert_eq!(
        Strategy::from(Strategy::top(Score::ConditionalEntropy, 2)).name(),
        "conditional-entropy"
    );
}

#[test]
fn batch_epig_through_the_front_door() {
    let (n, m, k, c) = (40, 6, 8, 3);
    let lp = log_probs(n + m, k, c, 9);
    let (x, y) = lp.split_at(n * k * c);
    let pool = Pool::from_slice(&x, [n, k, c]).unwrap();
    let targets = Pool::from_slice(&y, [m, k, c]).unwrap();
    let mut picks = vec![];
    let mut on_pick = |p: Pick| {
        picks.push(p.index);
        ControlFlow::Continue(())
    };
    let options = bald::Options::default()
        .targets(&targets)
        .exclude(&[0])
        .on_pick(&mut on_pick);
    // M C = 18 rows, 54 at the second pick: sampled from there with num_samples 20.
    let strategy = Strategy::batch_epig(4).num_samples(20).seed(5);
    let a = bald::acquire_with(&pool, strategy, Device::Cpu, options).unwrap();
    assert_eq!(a.indices, picks);
    assert_eq!(a.indices.len(), 4);
    assert!(!a.indices.contains(&0));
    assert_eq!(a.evaluations, [39, 38, 37, 36]);
    assert_eq!(
        a.regimes,
        [
            PickRegime::Exact,
            PickRegime::Sampled,
            PickRegime::Sampled,
            PickRegime::Sampled
        ]
    );
    // The first pick is the top EPIG point (0 excluded), and its score its EPIG.
    let epig = pool.on(Device::Cpu).unwrap().epig(&targets).unwrap();
    let best = (1..n).fold(1, |b, i| if epig[i] > epig[b] { i } else { b });
    assert_eq!(a.indices[0], best);
    assert!((a.scores[0] - epig[best]).abs() < 1e-5);
    // The scalar oracle picks the same; every point's score is its EPIG.
    let options = bald::Options::default()
        .targets(&targets)
        .exclude(&[0])
        .all_scores(true);
    let s = bald::acquire_with(&pool, strategy, Device::Scalar, options).unwrap();
    assert_eq!(s.indices, a.indices);
    let all = s.point_scores.unwrap();
    assert!(all.iter().zip(&epig).all(|(a, b)| (a - b).abs() < 1e-5));

    // Without targets, with num_samples 0, or across shards: typed errors before any work.
    let e = bald::acquire(&pool, Strategy::batch_epig(2), Device::Cpu).unwrap_err();
    assert!(
        matches!(e, Error::Argument(Argument::NeedsTargets { .. })),
        "{e}"
    );
    let options = bald::Options::default().targets(&targets);
    let zero = Strategy::batch_epig(2).num_samples(0);
    let e = bald::acquire_with(&pool, zero, Device::Cpu, options).unwrap_err();
    assert!(matches!(e, Error::Argument(Argument::NoSamples)), "{e}");
    let e = bald::check_across_shards(&Strategy::batch_epig(2).into()).unwrap_err();
    assert!(e.to_string().contains("whole pool in one process"), "{e}");
}
