//! Greedy batch EPIG on the scalar backend against its definition summed by brute force: each
//! pick's cumulative score, each pick the best of the candidates, the sampled regime's
//! estimate, exclusions and hooks, and the targets' shape error.

use bald_core::owned::{batch_epig, epig};
use bald_core::{
    batch_epig_reference, budget, BatchEpig, Error, Hooks, LogProbs, Pick, Scalar, Shape,
};
use bald_testing::cases::{log_softmax_rows, pool_and_targets};
use proptest::prelude::*;

fn params(batch_size: usize, num_samples: usize) -> BatchEpig {
    BatchEpig {
        batch_size,
        num_samples,
        seed: 7,
    }
}

/// A pool of `n` points and `m` targets with K `k`, C `c`, from a fixed generator.
fn generate(n: usize, m: usize, k: usize, c: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut gen = |points: usize| {
        let mut x: Vec<f64> = (0..points * k * c).map(|_| 4.0 * next() - 2.0).collect();
        log_softmax_rows(&mut x, c);
        x
    };
    (gen(n), gen(m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// In the exact regime every pick's score is mean_m I(y_B; y*_m) of the batch so far, and
    /// no other candidate's is higher.
    #[test]
    fn exact_picks_are_the_definitions_greedy((x, s, y, t) in pool_and_targets(9, 4, 6, 4)) {
        let pool = LogProbs::new(&x, s).unwrap();
        let targets = LogProbs::new(&y, t).unwrap();
        let b = s.n.min(3);
        let full = batch_epig(&Scalar, &pool, &targets, params(b, usize::MAX / 2), &mut Hooks::default()).unwrap();
        for (t, &score) in full.scores.iter().enumerate() {
            let want = batch_epig_reference(&pool, &targets, &full.indices[..=t]).unwrap();
            prop_assert!((score - want).abs() <= budget::EPIG, "pick {t}: {score} vs {want}");
            for n in (0..s.n).filter(|n| !full.indices[..t].contains(n)) {
                let mut other = full.indices[..t].to_vec();
                other.push(n);
                let r = batch_epig_reference(&pool, &targets, &other).unwrap();
                prop_assert!(r <= want + budget::LAZY_SLACK, "pick {t}: {n} scores {r} above {want}");
            }
        }
        // The first pick is EPIG's best.
        let e = epig(&Scalar, &pool, &targets).unwrap();
        prop_assert!((full.scores[0] - e[full.indices[0]]).abs() <= budget::EPIG);
    }
}

/// A pool whose exact target rows run out at the second pick: the sampled estimate stays near
/// the definition, the picks are distinct, and the same seed gives the same batch.
#[test]
fn the_sampled_regime_estimates_the_definition() {
    let (n, m, k, c) = (40, 5, 16, 3);
    let (x, y) = generate(n, m, k, c, 1);
    let pool = LogProbs::new(&x, Shape::new(n, k, c)).unwrap();
    let targets = LogProbs::new(&y, Shape::new(m, k, c)).unwrap();
    // C M = 15 rows at t = 0, 45 at t = 1: num_samples 40 samples from the second pick on.
    let p = params(5, 4000);
    let sampled = BatchEpig {
        num_samples: 40,
        ..p
    };
    let a = batch_epig(&Scalar, &pool, &targets, sampled, &mut Hooks::default()).unwrap();
    let again = batch_epig(&Scalar, &pool, &targets, sampled, &mut Hooks::default()).unwrap();
    assert_eq!(a, again);
    let mut seen = a.indices.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    // 50 targets (150 exact rows at t = 0): num_samples 3000 samples 20 configurations per
    // target from the fourth pick on, within a hundredth of a nat of the definition.
    let m = 50;
    let (_, y) = generate(0, m, k, c, 3);
    let targets = LogProbs::new(&y, Shape::new(m, k, c)).unwrap();
    let many = batch_epig(
        &Scalar,
        &pool,
        &targets,
        BatchEpig {
            num_samples: 3000,
            ..p
        },
        &mut Hooks::default(),
    )
    .unwrap();
    for (t, &score) in many.scores.iter().enumerate() {
        let want = batch_epig_reference(&pool, &targets, &many.indices[..=t]).unwrap();
        assert!((score - want).abs() < 0.01, "pick {t}: {score} vs {want}");
    }
}

#[test]
fn exclusions_and_hooks() {
    let (n, m, k, c) = (300, 4, 12, 3);
    let (x, y) = generate(n, m, k, c, 2);
    let pool = LogProbs::new(&x, Shape::new(n, k, c)).unwrap();
    let targets = LogProbs::new(&y, Shape::new(m, k, c)).unwrap();
    let mut seen: Vec<Pick> = vec![];
    let mut on_pick = |p: Pick| {
        seen.push(p);
        core::ops::ControlFlow::Continue(())
    };
    let exclude = [0, 5, 5];
    let mut hooks = Hooks {
        exclude: &exclude,
        on_pick: Some(&mut on_pick),
        entropies: None,
    };
    let got = batch_epig(&Scalar, &pool, &targets, params(3, 1_000_000), &mut hooks).unwrap();
    assert!(!got.indices.contains(&0) && !got.indices.contains(&5));
    let evaluations: Vec<usize> = seen.iter().map(|p| p.evaluations).collect();
    assert_eq!(evaluations, [298, 297, 296]);
    assert_eq!(
        seen.iter().map(|p| p.index).collect::<Vec<_>>(),
        got.indices
    );
    // Stopping after the second pick is Interrupted.
    let mut stop = |p: Pick| {
        if p.done == 2 {
            core::ops::ControlFlow::Break(())
        } else {
            core::ops::ControlFlow::Continue(())
        }
    };
    let mut hooks = Hooks {
        on_pick: Some(&mut stop),
        ..Hooks::default()
    };
    let e = batch_epig(&Scalar, &pool, &targets, params(3, 1_000_000), &mut hooks).unwrap_err();
    assert_eq!(e, Error::Interrupted { picks: 2 });
}

#[test]
fn bad_input_is_a_typed_error() {
    let (x, y) = generate(6, 2, 3, 2, 3);
    let pool = LogProbs::new(&x, Shape::new(6, 3, 2)).unwrap();
    let wrong = LogProbs::new(&y[..2 * 2 * 2], Shape::new(2, 2, 2)).unwrap();
    let e = batch_epig(
        &Scalar,
        &pool,
        &wrong,
        params(2, 100),
        &mut Hooks::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::TargetsMismatch { .. }), "{e}");
    let targets = LogProbs::new(&y, Shape::new(2, 3, 2)).unwrap();
    let e = batch_epig(
        &Scalar,
        &pool,
        &targets,
        params(2, 100),
        &mut Hooks {
            exclude: &[6],
            ..Hooks::default()
        },
    )
    .unwrap_err();
    assert_eq!(e, Error::IndexOutOfRange { index: 6, len: 6 });
    // Every point excluded: no pick, no error.
    let all: Vec<usize> = (0..6).collect();
    let got = batch_epig(
        &Scalar,
        &pool,
        &targets,
        params(2, 100),
        &mut Hooks {
            exclude: &all,
            ..Hooks::default()
        },
    )
    .unwrap();
    assert!(got.indices.is_empty());
}
