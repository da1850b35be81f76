//! EPIG on the scalar backend against its definition summed by brute force, known values
//! (exact zeros included, which the authors' code of 2023 mishandled), invariants, and the
//! targets' shape error.

use bald_core::owned::{epig, scores};
use bald_core::{budget, epig_reference, Error, LogProbs, PointScore, Scalar, Shape};
use bald_testing::cases::pool_and_targets;
use proptest::prelude::*;

fn reference(pool: &LogProbs<'_, f64>, targets: &LogProbs<'_, f64>) -> Vec<f64> {
    let mut out = vec![0.0; pool.shape().n];
    epig_reference(pool, targets, &mut out).unwrap();
    out
}

/// Two samples, each certain of another class, for the pool point and the target alike: y and
/// y* are the same coin, I(y; y*) = ln 2. Half the probabilities are exact zeros (log p =
/// -inf); zeroing a point's joint entropy when one probability is 0, as the authors' code of
/// 2023 did, gives 2 ln 2 instead.
#[test]
fn one_shared_coin_is_ln_2() {
    let ninf = f64::NEG_INFINITY;
    let coin = [0.0, ninf, ninf, 0.0];
    let pool = LogProbs::new(&coin, Shape::new(1, 2, 2)).unwrap();
    let got = epig(&Scalar, &pool, &pool).unwrap();
    assert!((got[0] - 2f64.ln()).abs() < 1e-12, "{}", got[0]);
    assert_eq!(reference(&pool, &pool), got);
    // A target whose samples agree tells nothing: EPIG 0, whatever the point's BALD (ln 2).
    let sure = [0.0, ninf, 0.0, ninf];
    let targets = LogProbs::new(&sure, Shape::new(1, 2, 2)).unwrap();
    assert_eq!(epig(&Scalar, &pool, &targets).unwrap(), vec![0.0]);
    // The mean over targets: (ln 2 + 0) / 2.
    let both: Vec<f64> = coin.iter().chain(&sure).copied().collect();
    let targets = LogProbs::new(&both, Shape::new(2, 2, 2)).unwrap();
    let got = epig(&Scalar, &pool, &targets).unwrap();
    assert!((got[0] - 2f64.ln() / 2.0).abs() < 1e-12, "{}", got[0]);
}

#[test]
fn targets_need_the_pools_k_and_c() {
    let x = vec![-(2f64.ln()); 2 * 3 * 2];
    let pool = LogProbs::new(&x, Shape::new(2, 3, 2)).unwrap();
    let y = vec![-(2f64.ln()); 3 * 4 * 2];
    let targets = LogProbs::new(&y, Shape::new(3, 4, 2)).unwrap();
    let e = epig(&Scalar, &pool, &targets).unwrap_err();
    assert_eq!(
        e,
        Error::TargetsMismatch {
            pool: (2, 3, 2),
            targets: (3, 4, 2)
        }
    );
    assert!(e.to_string().contains("3 x 4 x 2"), "{e}");
    assert!(e.to_string().contains("2 x 3 x 2"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_scalar_backend_is_the_definition((x, s, y, t) in pool_and_targets(12, 6, 9, 7)) {
        let pool = LogProbs::new(&x, s).unwrap();
        let targets = LogProbs::new(&y, t).unwrap();
        let got = epig(&Scalar, &pool, &targets).unwrap();
        let want = reference(&pool, &targets);
        let bald = scores(&Scalar, &pool, PointScore::Bald).unwrap();
        for n in 0..s.n {
            prop_assert!((got[n] - want[n].max(0.0)).abs() <= budget::EPIG, "point {n}: {} vs {}", got[n], want[n]);
            // Mutual information is never negative, and y* depends on the data only through
            // the parameters: I(y; y*) <= I(y; w), BALD.
            prop_assert!(want[n] >= -budget::EPIG, "point {n}: {}", want[n]);
            prop_assert!(got[n] <= bald[n] + budget::EPIG, "point {n}: EPIG {} above BALD {}", got[n], bald[n]);
        }
    }
}
