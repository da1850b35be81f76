//! Every operation at every available ISA against the bald-core scalar oracle, with the
//! budgets of `bald_core::budget`, over shapes around the lane widths.

use bald_testing::cases as common;

use bald_core::owned::{batch_epig, batchbald, entropies, epig, mc_dropout_forward, scores};
use bald_core::{
    batch_epig_reference, budget, epig_reference, Backend, BatchBald, BatchEpig, DenseLayer, Hooks,
    LogProbs, McDropoutHead, PointScore, Scalar, Shape, StdKind,
};
use bald_cpu_simd::{Isa, SimdBackend};
use common::{
    check_lazy_and_full, extreme_pool, f32_of, load_case, log_softmax_rows, pool_and_targets,
    with_joint, PICK_CASES,
};
use proptest::prelude::*;

fn backends() -> Vec<SimdBackend> {
    Isa::available()
        .into_iter()
        .flat_map(|isa| {
            let b = SimdBackend::with_isa(isa).unwrap();
            [b.with_threads(1), b.with_threads(3)]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn scores_match_the_oracle((data, shape) in extreme_pool(20, 12, 20)) {
        // The oracle on the same f32 input the backend reads.
        let data32 = f32_of(&data);
        let lp = LogProbs::new(&data32, shape).unwrap();
        for score in PointScore::ALL {
            if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
                continue;
            }
            let want = scores(&Scalar, &lp, score).unwrap();
            for b in backends() {
                let got = scores(&b, &lp, score).unwrap();
                for n in 0..shape.n {
                    prop_assert!((got[n] - want[n]).abs() <= budget::score_tolerance(shape.c),
                        "{score:?} {:?} point {n}: {} vs {}", b.isa(), got[n], want[n]);
                }
            }
        }
    }

    #[test]
    fn fused_entropies_match_the_oracle((data, shape) in extreme_pool(20, 12, 20)) {
        let data32 = f32_of(&data);
        let lp = LogProbs::new(&data32, shape).unwrap();
        let (h, eh) = entropies(&Scalar, &lp).unwrap();
        for b in backends() {
            let (gh, geh) = entropies(&b, &lp).unwrap();
            for n in 0..shape.n {
                prop_assert!((gh[n] - h[n]).abs() <= budget::score_tolerance(shape.c), "{:?}", b.isa());
                prop_assert!((geh[n] - eh[n]).abs() <= budget::score_tolerance(shape.c), "{:?}", b.isa());
            }
        }
    }

    #[test]
    fn half_input_matches_the_oracle((data, shape) in extreme_pool(20, 12, 20)) {
        use bald_core::half::{bf16, f16};
        let d16: Vec<f16> = data.iter().map(|&x| f16::from_f64(x)).collect();
        let db16: Vec<bf16> = data.iter().map(|&x| bf16::from_f64(x)).collect();
        // f16 and bf16 widen to f32 exactly: the same budget as f32 input. Rounded rows may
        // leave the normalisation tolerance; those are refused alike by both validations.
        if let Ok(lp) = LogProbs::new(&d16, shape) {
            let want = entropies(&Scalar, &lp).unwrap();
            for b in backends() {
                prop_assert!(b.validate(&d16, shape).is_ok());
                let got = entropies(&b, &lp).unwrap();
                for n in 0..shape.n {
                    prop_assert!((got.0[n] - want.0[n]).abs() <= budget::score_tolerance(shape.c));
                    prop_assert!((got.1[n] - want.1[n]).abs() <= budget::score_tolerance(shape.c));
                }
            }
        }
        if let Ok(lp) = LogProbs::new(&db16, shape) {
            let want = scores(&Scalar, &lp, PointScore::Bald).unwrap();
            for b in backends() {
                let got = scores(&b, &lp, PointScore::Bald).unwrap();
                for n in 0..shape.n {
                    prop_assert!((got[n] - want[n]).abs() <= budget::score_tolerance(shape.c));
                }
            }
        }
    }

    #[test]
    fn f64_input_matches_the_oracle((data, shape) in extreme_pool(20, 12, 20)) {
        let lp = LogProbs::new(&data, shape).unwrap();
        let want = scores(&Scalar, &lp, PointScore::Bald).unwrap();
        for b in backends() {
            let got = scores(&b, &lp, PointScore::Bald).unwrap();
            for n in 0..shape.n {
                prop_assert!((got[n] - want[n]).abs() <= budget::score_tolerance(shape.c) + budget::F32_INPUT);
            }
        }
    }

    #[test]
    fn joint_entropies_match_the_oracle((data, shape) in extreme_pool(20, 12, 20), chosen in 0usize..4, samples in 1usize..40) {
        let data32 = f32_of(&data);
        let lp = LogProbs::new(&data32, shape).unwrap();
        let chosen: Vec<usize> = (0..chosen.min(shape.n)).collect();
        with_joint(&lp, &chosen, samples, |joint, want| -> Result<(), TestCaseError> {
            let mut scratch = vec![0.0; shape.k * shape.c];
            for b in backends() {
                let mut got = vec![0.0; shape.n];
                b.joint_entropies(&lp, &joint.view(), None, &mut got, &mut scratch).unwrap();
                for n in 0..shape.n {
                    let tol = budget::JOINT_ENTROPY * (1.0 + want[n].abs());
                    prop_assert!((got[n] - want[n]).abs() <= tol,
                        "{:?} {:?} candidate {n}: {} vs {}", b.isa(), joint.regime(), got[n], want[n]);
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn epig_matches_the_oracle((x, s, y, t) in pool_and_targets(20, 8, 12, 20)) {
        // The oracle on the same f32 input the backend reads; targets as given.
        let (x32, y32) = (f32_of(&x), f32_of(&y));
        let pool = LogProbs::new(&x32, s).unwrap();
        let targets = LogProbs::new(&y32, t).unwrap();
        let mut want = vec![0.0; s.n];
        epig_reference(&pool, &targets, &mut want).unwrap();
        for b in backends() {
            let got = epig(&b, &pool, &targets).unwrap();
            for n in 0..s.n {
                prop_assert!((got[n] - want[n].max(0.0)).abs() <= budget::EPIG,
                    "{:?} point {n}: {} vs {}", b.isa(), got[n], want[n]);
            }
        }
    }

    /// Exact batch EPIG: each pick's score is the definition's for the batch so far, and no
    /// other candidate's is higher (ties may break either way between backends).
    #[test]
    fn batch_epig_matches_the_oracle((x, s, y, t) in pool_and_targets(12, 5, 9, 5)) {
        let (x32, y32) = (f32_of(&x), f32_of(&y));
        let pool = LogProbs::new(&x32, s).unwrap();
        let targets = LogProbs::new(&y32, t).unwrap();
        let params = BatchEpig { batch_size: 3, num_samples: usize::MAX / 2, seed: 0 };
        for b in backends() {
            let got = batch_epig(&b, &pool, &targets, params, &mut Hooks::default()).unwrap();
            for (i, &score) in got.scores.iter().enumerate() {
                let want = batch_epig_reference(&pool, &targets, &got.indices[..=i]).unwrap();
                prop_assert!((score - want).abs() <= budget::EPIG, "{:?} pick {i}: {score} vs {want}", b.isa());
                for n in (0..s.n).filter(|n| !got.indices[..i].contains(n)) {
                    let mut other = got.indices[..i].to_vec();
                    other.push(n);
                    let r = batch_epig_reference(&pool, &targets, &other).unwrap();
                    prop_assert!(r <= want + budget::LAZY_SLACK, "{:?} pick {i}: {n} scores {r} above {want}", b.isa());
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_oracle(n in 1usize..40, k in 1usize..6, d in 1usize..40, h in 1usize..40, c in 1usize..20, seed: u64) {
        let w = |len: usize, salt: usize| -> Vec<f32> {
            (0..len).map(|i| (((i * 7919 + salt * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.8).collect()
        };
        let (w1, b1, w2, b2) = (w(h * d, 1), w(h, 2), w(c * h, 3), w(c, 4));
        let layers = [
            DenseLayer { weight: &w1, bias: &b1, inputs: d, outputs: h, dropout: 0.25 },
            DenseLayer { weight: &w2, bias: &b2, inputs: h, outputs: c, dropout: 0.5 },
        ];
        let head = McDropoutHead::new(&layers).unwrap();
        let x = w(n * d, 5);
        let want: Vec<f64> = mc_dropout_forward(&Scalar, &head, &x, n, k, seed).unwrap();
        for b in backends() {
            let got: Vec<f32> = mc_dropout_forward(&b, &head, &x, n, k, seed).unwrap();
            for i in 0..want.len() {
                prop_assert!((f64::from(got[i]) - want[i]).abs() <= budget::HEAD_LOG_PROB * (1.0 + want[i].abs()),
                    "{:?} {i}: {} vs {}", b.isa(), got[i], want[i]);
            }
        }
    }
}

#[test]
fn every_isa_is_forceable_and_detection_picks_the_best() {
    let available = Isa::available();
    assert_eq!(available[0], Isa::Portable);
    assert_eq!(Isa::detect(), *available.last().unwrap());
    for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Neon] {
        assert_eq!(SimdBackend::with_isa(isa).is_ok(), available.contains(&isa));
    }
    println!("ISA levels on this machine: {available:?}");
}

#[test]
fn reference_cases_give_identical_picks() {
    for (name, groups) in PICK_CASES {
        let case = load_case(name);
        let lp = LogProbs::new(&case.data, case.shape).unwrap();
        for b in backends() {
            let label = format!("{:?}", b.isa());
            check_lazy_and_full(&case, name, groups, budget::BATCHBALD_SCORE, &label, |p| {
                batchbald(&b, &lp, p).unwrap()
            });
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let case = load_case("r200_20_10");
    let lp = LogProbs::new(&case.data, case.shape).unwrap();
    let params = BatchBald {
        batch_size: 6,
        num_samples: 500,
        seed: 3,
        greedy: bald_core::Greedy::Lazy,
    };
    for isa in Isa::available() {
        let one = SimdBackend::with_isa(isa).unwrap().with_threads(1);
        let a = batchbald(&one, &lp, params).unwrap();
        for t in [2, 3, 7] {
            assert_eq!(
                a,
                batchbald(&one.with_threads(t), &lp, params).unwrap(),
                "{isa:?} {t} threads"
            );
            assert_eq!(
                scores(&one, &lp, PointScore::Bald).unwrap(),
                scores(&one.with_threads(t), &lp, PointScore::Bald).unwrap()
            );
        }
    }
}

/// The fast validation accepts and refuses exactly what `LogProbs::new` does, with its errors.
mod validation {
    use super::*;
    use bald_core::Error;

    /// `validate` and `validate_entropies` give the scalar check's verdict, and the latter the
    /// entropies `entropies` computes, bit for bit.
    fn same_verdict(data: &[f32], shape: Shape) -> Result<(), TestCaseError> {
        let want = LogProbs::new(data, shape);
        for b in backends() {
            let got = b.validate(data, shape).map(|_| ());
            prop_assert_eq!(
                &got,
                &want.as_ref().map(|_| ()).map_err(Clone::clone),
                "{:?}",
                b.isa()
            );
            let (mut h, mut eh) = (vec![0.0; shape.n], vec![0.0; shape.n]);
            let got = b
                .validate_entropies(data, shape, &mut h, &mut eh)
                .map(|_| ());
            prop_assert_eq!(
                &got,
                &want.as_ref().map(|_| ()).map_err(Clone::clone),
                "{:?}",
                b.isa()
            );
            if let Ok(lp) = &want {
                prop_assert_eq!((h, eh), entropies(&b, lp).unwrap(), "{:?}", b.isa());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn agrees_with_the_scalar_check((data, shape) in extreme_pool(20, 12, 20), at in 0usize..10_000, what in 0u8..8) {
            let mut data = f32_of(&data);
            let i = at % data.len();
            let row = i / shape.c * shape.c;
            match what {
                0 => {}
                1 => data[i] = f32::NAN,
                2 => data[i] = f32::INFINITY,
                // Off the tolerance by a lot, and at its edge (either side of 1e-4).
                3 => data[i] += 0.5,
                // Far above any log-prob; an exp scaled by 2^n bit by bit wraps to a tiny
                // probability at 280 (n = 404), so the row could pass as normalised.
                5 => data[i] = [30.0, 200.0, 280.0, 1e30][at % 4],
                6 => data[row..row + shape.c].iter_mut().for_each(|v| *v = f32::NEG_INFINITY),
                7 => data[i] = f32::NEG_INFINITY,
                _ => {
                    let shift = if at % 2 == 0 { 0.99e-4 } else { 1.01e-4 };
                    data[row..row + shape.c].iter_mut().for_each(|v| *v += shift);
                }
            }
            same_verdict(&data, shape)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The fast check accepts every valid point (a refusal costs a scalar re-check of the
        /// pool) and refuses a point with one row off the tolerance, at every ISA; classes up
        /// to 39 (rows of one to five vectors).
        #[test]
        fn fast_check_accepts_valid_points_only((data, shape) in extreme_pool(12, 40, 40), at in 0usize..100_000, up in any::<bool>()) {
            let mut data = f32_of(&data);
            for isa in Isa::available() {
                prop_assert!(bald_cpu_simd::fast_check_accepts(isa, &data, shape).iter().all(|&ok| ok), "{:?}", isa);
            }
            let i = at % data.len();
            let row = i / shape.c * shape.c;
            let shift = if up { 2e-4 } else { -2e-4 };
            data[row..row + shape.c].iter_mut().for_each(|v| *v += shift);
            for isa in Isa::available() {
                let ok = bald_cpu_simd::fast_check_accepts(isa, &data, shape);
                for (n, &ok) in ok.iter().enumerate() {
                    prop_assert_eq!(ok, n != i / (shape.k * shape.c), "{:?} point {}", isa, n);
                }
            }
        }
    }

    /// Long points (K = 700: the phase kernel's blocks of periods) with one bad value at every
    /// position class: the first block, a later one, the tail.
    #[test]
    fn long_points_agree_with_the_scalar_check() {
        let shape = Shape::new(3, 700, 10);
        let base = common::random_pool(shape, 7);
        for at in [5, 4_000, 6_999, 13_000, 20_995] {
            for bad in [f32::NAN, f32::INFINITY, 30.0, 200.0, 1e30, 0.5] {
                let mut data = base.clone();
                data[at] = bad;
                same_verdict(&data, shape).unwrap();
            }
        }
        same_verdict(&base, shape).unwrap();
    }

    #[test]
    fn reports_the_first_error_like_the_scalar_check() {
        let shape = Shape::new(3, 2, 4);
        let mut data = vec![-(4f32).ln(); 24];
        data[13] = f32::NAN;
        data[20] = 0.5;
        let b = SimdBackend::new();
        assert_eq!(
            b.validate(&data, shape).unwrap_err(),
            Error::NotANumber { n: 1, k: 1, c: 1 }
        );
        assert!(b.validate(&data[1..], shape).is_err());
    }
}

/// Long points take the phase-accumulator path of the entropy kernel: every class count whose
/// phase period fits, at K large enough, against the oracle.
#[test]
fn long_points_match_the_oracle() {
    for c in [1, 2, 3, 4, 5, 8, 10, 12, 16, 20, 40] {
        for k in [20, 33, 64, 100, 257] {
            let shape = Shape::new(3, k, c);
            let mut data: Vec<f64> = (0..shape.n * k * c)
                .map(|i| ((i * 7919 + c * 31) % 997) as f64 / 997.0 * 6.0 - 3.0)
                .collect();
            // Some zero probabilities.
            for i in (0..data.len()).step_by(13) {
                data[i] = f64::NEG_INFINITY;
            }
            for row in data.chunks_exact_mut(c) {
                if row.iter().all(|v| *v == f64::NEG_INFINITY) {
                    row[0] = 0.0;
                }
            }
            log_softmax_rows(&mut data, c);
            let data32 = f32_of(&data);
            let lp = LogProbs::new(&data32, shape).unwrap();
            let (h, eh) = entropies(&Scalar, &lp).unwrap();
            for b in backends() {
                let (gh, geh) = entropies(&b, &lp).unwrap();
                for n in 0..shape.n {
                    assert!(
                        (gh[n] - h[n]).abs() <= budget::score_tolerance(c),
                        "{:?} C={c} K={k}: {} vs {}",
                        b.isa(),
                        gh[n],
                        h[n]
                    );
                    assert!(
                        (geh[n] - eh[n]).abs() <= budget::score_tolerance(c),
                        "{:?} C={c} K={k}: {} vs {}",
                        b.isa(),
                        geh[n],
                        eh[n]
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Logits and probabilities to log-probs, vectorised, against bald-core's scalar conversion
    /// of the same f32 values; a NaN, +inf or out-of-range value gives the scalar error.
    #[test]
    fn conversions_match_the_oracle(
        n in 1usize..9, k in 1usize..5, c in 1usize..40, scale in 0.1f32..60.0,
        raw in prop::collection::vec(-1.0f32..1.0, 9 * 5 * 40),
        holes in prop::collection::vec(0u8..12, 9 * 5 * 40),
        bad in 0usize..4,
    ) {
        let shape = Shape::new(n, k, c);
        let len = n * k * c;
        // Logits with some -inf (never a whole row).
        let mut logits: Vec<f32> = raw[..len].iter().map(|v| v * scale).collect();
        for (row, h) in logits.chunks_exact_mut(c).zip(holes.chunks_exact(c)) {
            for (v, &m) in row.iter_mut().zip(h).skip(1) {
                if m == 0 {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
        let mut probs: Vec<f32> = raw[..len].iter().map(|v| (v + 1.0) / 2.0).collect();
        let at = len / 2;
        match bad {
            1 => {
                logits[at] = f32::NAN;
                probs[at] = f32::NAN;
            }
            2 => {
                logits[at] = f32::INFINITY;
                probs[at] = 1.5;
            }
            _ => {}
        }
        for b in backends() {
            for (input, is_logits) in [(&logits, true), (&probs, false)] {
                let (mut want, mut got) = (input.clone(), input.clone());
                let (w, g) = if is_logits {
                    (bald_core::logits_to_log_probs(&mut want, shape), b.logits_to_log_probs(&mut got, shape))
                } else {
                    (bald_core::probs_to_log_probs(&mut want, shape), b.probs_to_log_probs(&mut got, shape))
                };
                prop_assert_eq!(&g, &w, "{:?} logits {}", b.isa(), is_logits);
                for (i, (&x, &y)) in got.iter().zip(&want).enumerate().filter(|_| w.is_ok()) {
                    let (x, y) = (f64::from(x), f64::from(y));
                    let ok = x == y || (x - y).abs() <= budget::CONVERSION * (1.0 + y.abs());
                    prop_assert!(ok, "{:?} logits {} at {}: {} vs {}", b.isa(), is_logits, i, x, y);
                }
                // f64 pools take bald-core's own conversion, threaded: bit for bit, errors too.
                let wide: Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
                let (mut want, mut got) = (wide.clone(), wide);
                let (w, g) = if is_logits {
                    (bald_core::logits_to_log_probs(&mut want, shape), b.logits_to_log_probs(&mut got, shape))
                } else {
                    (bald_core::probs_to_log_probs(&mut want, shape), b.probs_to_log_probs(&mut got, shape))
                };
                prop_assert_eq!(&g, &w, "f64 {:?} logits {}", b.isa(), is_logits);
                if w.is_ok() {
                    prop_assert!(got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()));
                }
            }
        }
    }
}
