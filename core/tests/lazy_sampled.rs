//! Lazy greedy in the sampled regime, measured: over 200 seeded small pools whose batches'
//! mutual information can be computed exactly, the batches lazy greedy picks are, on average,
//! as informative as full greedy's.
//!
//! In the sampled regime a stale bound may not hold (the estimates are noisy), so lazy may
//! pick differently from full; what matters is that it does not pick worse. Each pool has a few
//! uncertain points among many confident ones (as real MC-dropout pools do), and num_samples
//! is small, so most steps are sampled with few configurations: a harsh case for the bounds.
//! `cargo test -p bald-core --release --test lazy_sampled -- --nocapture` prints the figures
//! the README quotes.

use bald_testing::cases as common;

use bald_core::joint::joint_entropy;
use bald_core::owned::{batchbald, scores};
use bald_core::{BatchBald, Greedy, LogProbs, PointScore, Regime, Scalar, Shape};
use common::log_softmax_rows;

/// A reproducible pool: per point a temperature (most points confident), per sample a random
/// perturbation of the point's logits, so that some points have high BALD.
fn pool(shape: Shape, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (k, c) = (shape.k, shape.c);
    let mut data = vec![0.0; shape.n * k * c];
    for point in data.chunks_exact_mut(k * c) {
        let centre: Vec<f64> = (0..c).map(|_| 4.0 * next() - 2.0).collect();
        let sharp = if next() < 0.2 { 1.0 } else { 6.0 };
        let spread = 3.0 * next();
        for row in point.chunks_exact_mut(c) {
            for (v, &m) in row.iter_mut().zip(&centre) {
                *v = sharp * (m + spread * (next() - 0.5));
            }
            log_softmax_rows(row, c);
        }
    }
    data
}

/// The exact mutual information of `batch` with the model: H(batch) - sum of conditional
/// entropies.
fn exact_mi(lp: &LogProbs<'_, f64>, batch: &[usize]) -> f64 {
    let shape = lp.shape();
    let mut ws = vec![0.0; 1 << 16];
    let (h, regime) = joint_entropy(lp, batch, usize::MAX, 0, &mut ws).unwrap();
    assert_eq!(regime, Regime::Exact);
    let cond = scores(&Scalar, lp, PointScore::ConditionalEntropy).unwrap();
    let _ = shape;
    h - batch.iter().map(|&i| cond[i]).sum::<f64>()
}

#[test]
fn lazy_batches_are_as_informative_as_full_ones_in_the_sampled_regime() {
    for num_samples in [8, 64] {
        compare(num_samples);
    }
}

fn compare(num_samples: usize) {
    let shape = Shape::new(40, 8, 3);
    let pools = 500;
    let (mut diffs, mut same, mut evaluations) = (Vec::new(), 0, [0usize; 2]);
    let (mut mi_lazy, mut mi_full) = (0.0, 0.0);
    for seed in 0..pools {
        let data = pool(shape, seed);
        let lp = LogProbs::new(&data, shape).unwrap();
        // Exact for t <= 1 (C^2 = 9 > 8), then 8 sampled configurations: one per MC sample.
        let full = BatchBald {
            batch_size: 6,
            num_samples,
            seed,
            greedy: Greedy::Full,
        };
        let lazy = BatchBald {
            greedy: Greedy::Lazy,
            ..full
        };
        let mut counts = [0usize; 2];
        let mut run = |params: BatchBald, slot: usize| {
            let mut on_pick = |p: bald_core::Pick| {
                counts[slot] += p.evaluations;
                core::ops::ControlFlow::Continue(())
            };
            let mut hooks = bald_core::Hooks {
                exclude: &[],
                on_pick: Some(&mut on_pick),
                entropies: None,
            };
            bald_core::owned::batchbald_with(&Scalar, &lp, params, &mut hooks).unwrap()
        };
        let (a, b) = (run(lazy, 0), run(full, 1));
        evaluations[0] += counts[0];
        evaluations[1] += counts[1];
        same += usize::from(a.indices == b.indices);
        let (x, y) = (exact_mi(&lp, &a.indices), exact_mi(&lp, &b.indices));
        mi_lazy += x;
        mi_full += y;
        diffs.push(x - y);
        // The same for batchbald itself (a smoke check of the owned API on these pools).
        assert_eq!(batchbald(&Scalar, &lp, lazy).unwrap(), a);
    }
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let se = (var / n).sqrt();
    println!(
        "{pools} pools {:?}, batch 6, num_samples {num_samples}: exact MI lazy {:.5}, full {:.5} (mean); \
         lazy - full {mean:.5} +- {se:.5} (SE); identical batches {same}/{pools}; \
         evaluations lazy {} vs full {}",
        (shape.n, shape.k, shape.c),
        mi_lazy / n,
        mi_full / n,
        evaluations[0],
        evaluations[1]
    );
    assert!(
        mean >= -2.0 * se,
        "lazy batches are less informative: {mean} +- {se}"
    );
    assert!(evaluations[0] < evaluations[1]);
}
