//! The bodies of the fuzz targets in `fuzz/` (each target is one line calling one of these), so
//! that stable `cargo test` can replay the committed corpus, every past crash and a random
//! sweep (`testing/tests/fuzz_replay.rs`). Each body panics exactly when it finds a bug: a panic in
//! the code under test, a disagreement with the scalar oracle beyond `bald_core::budget`, or a
//! broken invariant.

use bald_core::joint::joint_entropy;
use bald_core::owned::{batchbald, mc_dropout_forward, scores};
use bald_core::{
    budget, Backend, BatchBald, DenseLayer, LogProbs, McDropoutHead, PointScore, Regime, Scalar,
    Shape, StdKind,
};
use bald_cpu_simd::{Isa, SimdBackend};

use bald::npy;

/// Reads the fuzzer's bytes as parameters; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }

    fn f32_bits(&mut self) -> f32 {
        f32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |a, _| a << 8 | u64::from(self.u8()))
    }
}

/// Every SIMD backend this machine can run, single-threaded (the tests cover threads).
fn simd_backends() -> Vec<SimdBackend> {
    Isa::available()
        .into_iter()
        .filter_map(|isa| SimdBackend::with_isa(isa).ok())
        .map(|b| b.with_threads(1))
        .collect()
}

/// A valid pool decoded from bytes: tempered logits (some -inf) through log_softmax, as f32.
fn pool(b: &mut Bytes<'_>, shape: Shape) -> Vec<f32> {
    let temp = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0][b.below(6)];
    let zeros = b.below(3);
    let mut x = vec![0.0f64; shape.n * shape.k * shape.c];
    for row in x.chunks_exact_mut(shape.c) {
        for v in row.iter_mut() {
            let byte = b.u8();
            *v = if zeros > 0 && byte.is_multiple_of(5) {
                f64::NEG_INFINITY
            } else {
                f64::from(byte as i8) / 32.0 * temp
            };
        }
        if row.iter().all(|v| *v == f64::NEG_INFINITY) {
            row[0] = 0.0;
        }
        let lse = bald_core::log_sum_exp(row.iter().copied());
        row.iter_mut().for_each(|v| *v -= lse);
    }
    x.iter().map(|&v| v as f32).collect()
}

/// `.npy` reader: never panics, allocates only what the bytes back, and round-trips.
#[doc(hidden)]
pub fn fuzz_npy(data: &[u8]) {
    if let Ok(a) = npy::parse(data) {
        let again = npy::parse(&npy::write(&a.shape, &a.data)).expect("written arrays parse");
        assert_eq!(again.shape, a.shape);
        let same = match (&again.data, &a.data) {
            (npy::NpyData::F16(x), npy::NpyData::F16(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            (npy::NpyData::F32(x), npy::NpyData::F32(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            (npy::NpyData::F64(x), npy::NpyData::F64(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            _ => false,
        };
        assert!(same, "round trip changed the data");
    }
}

/// Validation of arbitrary shapes and values (NaN, +-inf, subnormals, huge): the SIMD backend's
/// fast check gives exactly the scalar check's verdict and error.
#[doc(hidden)]
pub fn fuzz_validation(data: &[u8]) {
    let mut b = Bytes(data);
    let shape = Shape::new(b.below(6), b.below(6), b.below(9));
    let len = shape.n * shape.k * shape.c;
    let len = match b.below(8) {
        0 => len + 1,
        1 => len.saturating_sub(1),
        _ => len,
    };
    let values: Vec<f32> = match b.below(3) {
        // Raw bits: mostly refused, every special value reachable.
        0 => (0..len).map(|_| b.f32_bits()).collect(),
        // Valid rows with some entries replaced by raw bits or nudged off normalisation.
        _ => {
            let ok = Shape::new(shape.n.max(1), shape.k.max(1), shape.c.max(1));
            let mut v = pool(&mut b, ok);
            v.resize(len, -1.0);
            for _ in 0..b.below(3) {
                if !v.is_empty() {
                    let i = b.below(256) % v.len();
                    v[i] = if b.u8() % 2 == 0 {
                        b.f32_bits()
                    } else {
                        v[i] + f32::from(b.u8() as i8) * 1e-5
                    };
                }
            }
            v
        }
    };
    let want = LogProbs::new(&values, shape).map(|_| ());
    for backend in simd_backends() {
        let got = backend.validate(&values, shape).map(|_| ());
        assert_eq!(got, want, "{:?} on {shape:?}", backend.isa());
    }
    // The wider and narrower types go through the same checks without panicking.
    let wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let _ = LogProbs::new(&wide, shape);
    let half: Vec<bald_core::half::f16> = values
        .iter()
        .map(|&v| bald_core::half::f16::from_f32(v))
        .collect();
    let _ = LogProbs::new(&half, shape);
}

/// Every score: each SIMD backend against the scalar oracle within `budget::score_tolerance`,
/// and the invariants 0 <= BALD <= H <= ln C with nothing NaN (H <= ln C up to the f32 rounding
/// of the log-probs, `budget::F32_INPUT`: rounded rows do not sum to exactly 1).
#[doc(hidden)]
pub fn fuzz_scores(data: &[u8]) {
    let mut b = Bytes(data);
    let shape = Shape::new(1 + b.below(8), 1 + b.below(8), 1 + b.below(12));
    let values = pool(&mut b, shape);
    let lp = LogProbs::new(&values, shape).expect("log_softmax rows validate");
    let h = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
    let bald = scores(&Scalar, &lp, PointScore::Bald).unwrap();
    let ln_c = (shape.c as f64).ln();
    for n in 0..shape.n {
        assert!(
            bald[n] >= 0.0 && bald[n] <= h[n] + 1e-12 && h[n] <= ln_c + budget::F32_INPUT,
            "invariant at {n}: BALD {} H {} ln C {ln_c}",
            bald[n],
            h[n]
        );
    }
    for score in PointScore::ALL {
        let want = scores(&Scalar, &lp, score);
        if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
            assert!(want.is_err());
            continue;
        }
        let want = want.unwrap();
        assert!(want.iter().all(|v| v.is_finite()), "{score:?} not finite");
        for backend in simd_backends() {
            let got = scores(&backend, &lp, score).unwrap();
            for n in 0..shape.n {
                assert!(
                    (got[n] - want[n]).abs() <= budget::score_tolerance(shape.c),
                    "{score:?} {:?} point {n}: {} vs {}",
                    backend.isa(),
                    got[n],
                    want[n]
                );
            }
        }
    }
}

/// BatchBALD on small pools: each SIMD backend against the oracle (same picks and scores while
/// the joint is exact, unless two candidates tie within the budget), exact cumulative scores
/// non-decreasing, sampled scores finite, picks distinct.
#[doc(hidden)]
pub fn fuzz_batchbald(data: &[u8]) {
    let mut b = Bytes(data);
    let shape = Shape::new(1 + b.below(12), 1 + b.below(6), 2 + b.below(4));
    let params = BatchBald {
        batch_size: 1 + b.below(5),
        num_samples: [1, 5, 50, 1000][b.below(4)],
        seed: b.u64(),
        greedy: bald_core::Greedy::Lazy,
    };
    let values = pool(&mut b, shape);
    let lp = LogProbs::new(&values, shape).expect("log_softmax rows validate");
    let want = batchbald(&Scalar, &lp, params).unwrap();
    // Lazy greedy picks what full greedy picks, with the same scores, while the joint is exact.
    let full = BatchBald {
        greedy: bald_core::Greedy::Full,
        ..params
    };
    let full = batchbald(&Scalar, &lp, full).unwrap();
    for t in (0..want.indices.len()).take_while(|&t| params.regime_at(shape.c, t) == Regime::Exact)
    {
        assert_eq!(want.indices[t], full.indices[t], "lazy vs full pick {t}");
        assert_eq!(want.scores[t], full.scores[t], "lazy vs full score {t}");
    }
    let picks = params.picks(shape.n);
    assert_eq!(want.indices.len(), picks);
    let mut seen = want.indices.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), picks, "picks repeat");
    assert!(want.scores.iter().all(|s| s.is_finite()));
    let exact = |t: usize| params.regime_at(shape.c, t) == Regime::Exact;
    // Exact cumulative scores (the batch's mutual information) never decrease, up to the f32
    // rounding of the log-probs: rounded rows sum to 1 only within ~1e-7, which moves joint and
    // conditional entropies apart by ~1e-8 (fuzzing found -1.06e-8 after a first pick of 0).
    for t in 1..picks {
        if exact(t) {
            let tol = budget::F32_INPUT * (1.0 + want.scores[t].abs());
            assert!(
                want.scores[t] >= want.scores[t - 1] - tol,
                "exact scores decrease at {t}: {:?}",
                want.scores
            );
        }
    }
    let cond = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
    let mut ws = vec![0.0; 1 << 16];
    // The scalar score a_t of picking `n` after `chosen` (exact regime).
    let mut score_of = |chosen: &[usize], n: usize| -> f64 {
        let mut set = chosen.to_vec();
        set.push(n);
        let (h, _) = joint_entropy(&lp, &set, params.num_samples, params.seed, &mut ws).unwrap();
        h - set.iter().map(|&i| cond[i]).sum::<f64>()
    };
    for backend in simd_backends() {
        let got = batchbald(&backend, &lp, params).unwrap();
        assert_eq!(got.indices.len(), picks);
        assert!(got.scores.iter().all(|s| s.is_finite()));
        for t in 0..picks {
            if !exact(t) {
                break;
            }
            let tol = budget::BATCHBALD_SCORE * (1.0 + want.scores[t].abs());
            if got.indices[t] != want.indices[t] {
                // Only a near tie may flip a pick; after it the batches legitimately differ.
                let alt = score_of(&want.indices[..t], got.indices[t]);
                assert!(
                    (alt - want.scores[t]).abs() <= tol,
                    "{:?} step {t}: picked {} ({alt}) over {} ({})",
                    backend.isa(),
                    got.indices[t],
                    want.indices[t],
                    want.scores[t]
                );
                break;
            }
            assert!(
                (got.scores[t] - want.scores[t]).abs() <= tol,
                "{:?} step {t}: {} vs {}",
                backend.isa(),
                got.scores[t],
                want.scores[t]
            );
        }
    }
}

/// The MC-dropout head forward: each SIMD backend against the f64 oracle within
/// `budget::HEAD_LOG_PROB`.
#[doc(hidden)]
pub fn fuzz_forward(data: &[u8]) {
    let mut b = Bytes(data);
    let (n, k) = (1 + b.below(5), 1 + b.below(4));
    let (d, h, c) = (1 + b.below(24), 1 + b.below(24), 1 + b.below(10));
    let (p1, p2) = (b.below(10) as f32 * 0.095, b.below(10) as f32 * 0.095);
    let seed = b.u64();
    let mut w = |len: usize, scale: f32| -> Vec<f32> {
        (0..len).map(|_| f32::from(b.u8() as i8) * scale).collect()
    };
    let (w1, b1, w2, b2) = (
        w(h * d, 1.0 / 64.0),
        w(h, 1.0 / 64.0),
        w(c * h, 1.0 / 64.0),
        w(c, 1.0 / 64.0),
    );
    let x = w(n * d, 1.0 / 16.0);
    let layers = [
        DenseLayer {
            weight: &w1,
            bias: &b1,
            inputs: d,
            outputs: h,
            dropout: p1,
        },
        DenseLayer {
            weight: &w2,
            bias: &b2,
            inputs: h,
            outputs: c,
            dropout: p2,
        },
    ];
    let head = McDropoutHead::new(&layers).unwrap();
    let want: Vec<f64> = mc_dropout_forward(&Scalar, &head, &x, n, k, seed).unwrap();
    for backend in simd_backends() {
        let got: Vec<f32> = mc_dropout_forward(&backend, &head, &x, n, k, seed).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= budget::HEAD_LOG_PROB * (1.0 + w.abs()),
                "{:?} {i}: {g} vs {w}",
                backend.isa()
            );
        }
    }
}

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// The fuzz targets by name (the names of `fuzz/fuzz_targets/*.rs`).
#[doc(hidden)]
pub const TARGETS: [(&str, Body); 5] = [
    ("npy", fuzz_npy),
    ("validation", fuzz_validation),
    ("scores", fuzz_scores),
    ("batchbald", fuzz_batchbald),
    ("forward", fuzz_forward),
];
