//! The same seed gives the same picks: run to run, at any thread count, and across backends
//! (scalar reference, every SIMD instruction set, CUDA when a GPU is present) in the exact
//! regime. Randomness comes only from Philox counters, so nothing depends on scheduling.

use bald_testing::skip;

use bald_core::owned::{batchbald, random_batch, scores, stochastic_batch, Batch};
use bald_core::{BatchBald, LogProbs, PointScore, Scalar, Shape, StochasticBatch, StochasticMode};
use bald_cpu_simd::{Isa, SimdBackend};

fn pool(shape: Shape) -> Vec<f32> {
    let mut out = Vec::with_capacity(shape.n * shape.k * shape.c);
    for i in 0..shape.n * shape.k {
        let row: Vec<f64> = (0..shape.c)
            .map(|j| {
                (((i * 7919 + j * 104_729 + (i / shape.k) * j * 13) % 1000) as f64 / 1000.0 - 0.5)
                    * 8.0
            })
            .collect();
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|v| (v - lse) as f32));
    }
    out
}

#[test]
fn same_seed_same_picks_run_to_run_and_at_any_thread_count() {
    let shape = Shape::new(300, 12, 6);
    let data = pool(shape);
    let lp = LogProbs::new(&data, shape).unwrap();
    // Exact for 3 picks (6^3 = 216 <= 300), sampled after.
    let params = BatchBald {
        batch_size: 8,
        num_samples: 300,
        seed: 42,
        greedy: bald_core::Greedy::Lazy,
    };
    for isa in Isa::available() {
        let one = SimdBackend::with_isa(isa).unwrap().with_threads(1);
        let first = batchbald(&one, &lp, params).unwrap();
        assert_eq!(
            first,
            batchbald(&one, &lp, params).unwrap(),
            "{isa:?} run to run"
        );
        for threads in [2, 3, 5, 8] {
            let many = one.with_threads(threads);
            assert_eq!(
                first,
                batchbald(&many, &lp, params).unwrap(),
                "{isa:?} {threads} threads"
            );
            let bald_one = scores(&one, &lp, PointScore::Bald).unwrap();
            let bald_many = scores(&many, &lp, PointScore::Bald).unwrap();
            assert_eq!(bald_one, bald_many, "{isa:?} {threads} threads");
        }
    }
    // Random and stochastic acquisition depend on the seed only.
    assert_eq!(random_batch(300, 10, 7), random_batch(300, 10, 7));
    assert_ne!(random_batch(300, 10, 7), random_batch(300, 10, 8));
    let bald = scores(&Scalar, &lp, PointScore::Bald).unwrap();
    let power = StochasticBatch {
        mode: StochasticMode::Power,
        beta: 1.0,
        batch_size: 10,
        seed: 3,
    };
    assert_eq!(
        stochastic_batch(power, &bald).unwrap(),
        stochastic_batch(power, &bald).unwrap()
    );
}

#[test]
fn backends_agree_in_the_exact_regime() {
    let shape = Shape::new(200, 10, 4);
    let data = pool(shape);
    let lp = LogProbs::new(&data, shape).unwrap();
    // 4^4 = 256 <= 1000: all five steps exact.
    let params = BatchBald {
        batch_size: 5,
        num_samples: 1000,
        seed: 9,
        greedy: bald_core::Greedy::Lazy,
    };
    let want: Batch = batchbald(&Scalar, &lp, params).unwrap();
    for isa in Isa::available() {
        for threads in [1, 2] {
            let b = SimdBackend::with_isa(isa).unwrap().with_threads(threads);
            let got = batchbald(&b, &lp, params).unwrap();
            assert_eq!(got.indices, want.indices, "{isa:?} {threads} threads");
        }
    }
    if let Ok(gpu) = bald_cuda::CudaBackend::new(0) {
        let pool = bald_core::Backend::prepare(&gpu, lp).unwrap();
        assert_eq!(
            batchbald(&gpu, &pool, params).unwrap().indices,
            want.indices,
            "cuda"
        );
    } else {
        skip::skipped("CUDA in the determinism tests: no usable GPU");
    }
}
