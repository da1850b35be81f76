//! The CUDA backend at the shapes users run, against the bald-core scalar oracle with the
//! budgets of `bald_core::budget`: K up to 20000, C = 2 to 1025 (both layouts of the score
//! kernel), f16/bf16/f32/f64 pools, BatchBALD through both regimes, and Gal et al.'s head.
//! Every test needs a GPU (CI runs them on the cudaemu CPU emulation); without one each prints
//! why it is skipped and passes.

use bald_testing::cases as common;
mod gpu;
use bald_testing::skip;

use bald_core::half::{bf16, f16};
use bald_core::owned::{batchbald, mc_dropout_forward, scores};
use bald_core::{
    budget, Backend, BatchBald, LogProbs, McDropoutHead, PointScore, Scalar, Shape, StdKind,
};
use common::{random_pool, with_joint, GalHead};
use gpu::{check_scores, gpu, gpu_grouped, gpu_tc};

#[test]
fn scores_at_every_class_count_and_k_up_to_5000() {
    let (Some(plain), Some(grouped)) = (gpu(), gpu_grouped()) else {
        return;
    };
    // C = 2, 10, 100 (one block of several points), 1000 (one point a block, one thread a
    // class) and 1025 (the wide layout, any C); K up to 5000.
    for (n, k, c) in [
        (300, 20, 2),
        (300, 20, 10),
        (40, 20, 100),
        (6, 8, 1000),
        (6, 8, 1025),
        (5, 5000, 10),
        (3, 300, 1025),
    ] {
        let shape = Shape::new(n, k, c);
        let data = random_pool(shape, (n * k * c) as u64);
        for (gpu, kernels) in [(plain, "scores"), (grouped, "grouped scores")] {
            let worst = check_scores(gpu, &data, shape, 0.0);
            println!("{shape:?} f32, {kernels}: worst error {worst:.3} of the budget");
        }
    }
}

#[test]
fn f16_bf16_f32_and_f64_pools_at_c_10_and_1025() {
    let (Some(plain), Some(grouped)) = (gpu(), gpu_grouped()) else {
        return;
    };
    for (gpu, (n, k, c)) in [plain, grouped]
        .into_iter()
        .flat_map(|gpu| [(200, 50, 10), (4, 20, 1025)].map(|shape| (gpu, shape)))
    {
        let shape = Shape::new(n, k, c);
        let data32 = random_pool(shape, 7 + c as u64);
        let data64: Vec<f64> = data32.iter().map(|&x| f64::from(x)).collect();
        check_scores(gpu, &data32, shape, 0.0);
        // f64 pools are rounded to f32 on the device.
        check_scores(gpu, &data64, shape, budget::F32_INPUT);
        // f16 and bf16 widen to f32 exactly: the budget of f32 input, on the rounded values
        // (renormalised in f64 first so that they pass validation).
        let renorm = |round: &dyn Fn(f64) -> f64| -> Vec<f64> {
            let mut v: Vec<f64> = data64.iter().map(|&x| round(x)).collect();
            for row in v.chunks_exact_mut(c) {
                let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
                row.iter_mut().for_each(|x| *x = round(*x - lse));
            }
            v
        };
        let d16: Vec<f16> = renorm(&|x| f16::from_f64(x).to_f64())
            .into_iter()
            .map(f16::from_f64)
            .collect();
        let db16: Vec<bf16> = renorm(&|x| bf16::from_f64(x).to_f64())
            .into_iter()
            .map(bf16::from_f64)
            .collect();
        check_scores(gpu, &d16, shape, 0.0);
        check_scores(gpu, &db16, shape, 0.0);
    }
}

#[test]
fn joint_entropies_stay_within_budget_at_k_5000_and_20000() {
    let (Some(f32_kernel), Some(tensor_cores)) = (gpu(), gpu_tc()) else {
        return;
    };
    for (gpu, k) in [
        (f32_kernel, 5000usize),
        (f32_kernel, 20000),
        (tensor_cores, 5000),
        (tensor_cores, 20000),
    ] {
        let shape = Shape::new(8, k, 10);
        let data = random_pool(shape, k as u64);
        let lp = LogProbs::new(&data, shape).unwrap();
        // Two chosen points: the exact joint of 100 rows.
        let pool = gpu.prepare(lp).unwrap();
        let worst = with_joint(&lp, &[0, 1], 1000, |joint, want| {
            let mut got = vec![0.0; shape.n];
            let mut scratch = vec![0.0; shape.k * shape.c];
            gpu.joint_entropies(&pool, &joint.view(), None, &mut got, &mut scratch)
                .unwrap();
            (0..shape.n)
                .map(|n| (got[n] - want[n]).abs() / (1.0 + want[n].abs()))
                .fold(0.0f64, f64::max)
        });
        let kernel = if gpu.joint_on_tensor_cores(shape.c) {
            "3xTF32"
        } else {
            "f32"
        };
        println!("K = {k}, {kernel}: joint entropy relative error {worst:.3e}");
        // A tenth of the budget: f32 sums over K without blocking exceed it from K ~ 2000.
        assert!(
            worst <= budget::JOINT_ENTROPY / 10.0,
            "K = {k}: relative error {worst:e}"
        );
    }
}

#[test]
fn batchbald_through_both_regimes_at_c_10_and_1025() {
    let Some(gpu) = gpu() else { return };
    // C = 10: steps 0-3 exact (1, 10, 100, 1000 rows), then sampled (1000 rows).
    // C = 1025: step 1 exact (1025 rows <= 2000), then sampled.
    for (shape, num_samples) in [
        (Shape::new(400, 100, 10), 1000),
        (Shape::new(12, 10, 1025), 2000),
    ] {
        let data = random_pool(shape, 99);
        let lp = LogProbs::new(&data, shape).unwrap();
        let params = BatchBald {
            batch_size: 6,
            num_samples,
            seed: 5,
            greedy: bald_core::Greedy::Lazy,
        };
        let want = batchbald(&Scalar, &lp, params).unwrap();
        let got = batchbald(gpu, &gpu.prepare(lp).unwrap(), params).unwrap();
        assert_eq!(got.indices.len(), 6);
        let mut agreed = 0;
        for t in 0..6 {
            if got.indices[t] != want.indices[t] {
                // Only a near tie may send the two apart.
                let gap = (got.scores[t] - want.scores[t]).abs();
                assert!(
                    gap <= 1e-4 * (1.0 + want.scores[t].abs()),
                    "step {t}: {got:?} vs {want:?}"
                );
                break;
            }
            let tol = budget::BATCHBALD_SCORE * (1.0 + want.scores[t].abs());
            assert!(
                (got.scores[t] - want.scores[t]).abs() <= tol,
                "step {t}: {} vs {}",
                got.scores[t],
                want.scores[t]
            );
            agreed += 1;
        }
        println!(
            "{shape:?} num_samples {num_samples}: {agreed} of 6 picks identical to the oracle's"
        );
        assert!(agreed >= 4, "{got:?} vs {want:?}");
    }
}

#[test]
fn gal_head_forward_over_a_realistic_pool() {
    let Some(gpu) = gpu() else { return };
    let gal = GalHead::new();
    let layers = gal.layers();
    let head = McDropoutHead::new(&layers).unwrap();
    let (d, _, c) = GalHead::DIMS;
    // 2000 points x K = 20: 40000 rows through 3872 -> 128 -> 10 (2e10 flops).
    let (n, k, seed) = (2000usize, 20usize, 17u64);
    let x = GalHead::features(n);
    let got: Vec<f32> = mc_dropout_forward(gpu, &head, &x, n, k, seed).unwrap();
    // The oracle on a spread of points: a point's log-probs depend on its features and the
    // (seed, layer, sample) masks only.
    for point in (0..n).step_by(97).chain([n - 1]) {
        let want: Vec<f64> =
            mc_dropout_forward(&Scalar, &head, &x[point * d..(point + 1) * d], 1, k, seed).unwrap();
        for (i, w) in want.iter().enumerate() {
            let g = f64::from(got[point * k * c + i]);
            assert!(
                (g - w).abs() <= budget::HEAD_LOG_PROB * (1.0 + w.abs()),
                "point {point} value {i}: {g} vs {w}"
            );
        }
    }
    // Unbiased mean STD needs K >= 2; every other score of the pool runs.
    let lp = LogProbs::new(&got, bald_core::Shape::new(n, k, c)).unwrap();
    let pool = gpu.prepare(lp).unwrap();
    assert!(scores(gpu, &pool, PointScore::MeanStd(StdKind::Unbiased)).is_ok());
}
