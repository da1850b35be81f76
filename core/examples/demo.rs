//! Scores the seed example and a random pool, and prints BALD and BatchBALD picks.
//!
//! `cargo run --release -p bald-core --example demo`

use bald_core::owned::{batchbald, log_probs_from_logits, scores, top_k_batch};
use bald_core::rng::{point_uniform, Domain};
use bald_core::{BatchBald, LogProbs, PointScore, Scalar, Shape};

fn main() -> Result<(), bald_core::Error> {
    // The seed document's example: 4 points, 20 MC samples, 4 classes, each point a sweep
    // between two class distributions.
    let pairs = [
        ([0.7, 0.1, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2]),
        ([0.1, 0.7, 0.1, 0.1], [0.2, 0.3, 0.3, 0.2]),
        ([0.1, 0.1, 0.7, 0.1], [0.2, 0.2, 0.3, 0.3]),
        ([0.1, 0.1, 0.1, 0.7], [0.3, 0.2, 0.2, 0.3]),
    ];
    let mut seed_example = Vec::new();
    for (p1, p2) in pairs {
        for i in 0..20 {
            let m = f64::from(i) / 19.0;
            seed_example.extend((0..4).map(|c| ((1.0 - m) * p1[c] + m * p2[c]).ln()));
        }
    }
    let lp = LogProbs::new(&seed_example, Shape::new(4, 20, 4))?;
    println!("seed example (N=4, K=20, C=4)");
    for (name, score) in [
        ("entropy", PointScore::Entropy),
        ("conditional entropy", PointScore::ConditionalEntropy),
        ("BALD", PointScore::Bald),
    ] {
        let s = scores(&Scalar, &lp, score)?;
        println!("  {name:<20} {}", fmt(&s));
    }
    let batch = batchbald(
        &Scalar,
        &lp,
        BatchBald {
            batch_size: 4,
            num_samples: 1000,
            seed: 0,
            greedy: bald_core::Greedy::Lazy,
        },
    )?;
    println!(
        "  BatchBALD picks      {:?}, cumulative MI {}",
        batch.indices,
        fmt(&batch.scores)
    );

    // A random pool: per-point tempered logits with per-sample noise, log_softmax.
    let shape = Shape::new(2000, 20, 10);
    let u = |i: usize| point_uniform(2024, Domain::Random, i);
    let mut logits = vec![0.0f64; shape.n * shape.k * shape.c];
    for n in 0..shape.n {
        let scale = 0.2 + 4.0 * u(n);
        let noise = 2.0 * u(shape.n + n);
        for k in 0..shape.k {
            for c in 0..shape.c {
                let mean = u(10 * shape.n + n * shape.c + c) - 0.5;
                let eps = u(100 * shape.n + (n * shape.k + k) * shape.c + c) - 0.5;
                logits[(n * shape.k + k) * shape.c + c] = scale * mean * 4.0 + noise * eps * 4.0;
            }
        }
    }
    let data = log_probs_from_logits(&logits, shape)?;
    let lp = LogProbs::new(&data, shape)?;
    println!("random pool (N={}, K={}, C={})", shape.n, shape.k, shape.c);
    let bald = top_k_batch(&Scalar, &lp, PointScore::Bald, 10)?;
    println!("  BALD top 10          {:?}", bald.indices);
    println!("                       {}", fmt(&bald.scores));
    let start = std::time::Instant::now();
    let batch = batchbald(
        &Scalar,
        &lp,
        BatchBald {
            batch_size: 10,
            num_samples: 1000,
            seed: 0,
            greedy: bald_core::Greedy::Lazy,
        },
    )?;
    println!("  BatchBALD 10         {:?}", batch.indices);
    println!("  cumulative MI        {}", fmt(&batch.scores));
    println!(
        "  ({:.2} s on the scalar reference backend)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fmt(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:.4}"))
        .collect::<Vec<_>>()
        .join(" ")
}
