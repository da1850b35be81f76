//! Training and trunk throughput of Gal et al.'s CNN on 28x28 images, in images/s, beside
//! the same measurement of burn and torch in `tools/trainer-bench`:
//! `cargo run --release -p bald-experiment --example train_throughput`.

use std::time::Instant;

use bald_experiment::cnn::{GalCnn, Workspace};
use bald_experiment::nn::Adam;

fn main() {
    let mut state = 1u32;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32
    };
    let mut net = GalCnn::new(28, 10, || uniform() * 2.0 - 1.0).expect("28x28 fits");
    let mut adam = Adam::new(1e-3, 1e-4, &net.tensor_lengths());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{threads} threads; images/s, best of 3 runs of 10 steps after 2 warm-ups");
    for batch in [64, 128] {
        let images: Vec<f32> = (0..batch * 784).map(|i| (i % 17) as f32 / 17.0).collect();
        let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
        let keep_f: Vec<f32> = (0..batch * net.features())
            .map(|i| if i % 4 == 0 { 0.0 } else { 4.0 / 3.0 })
            .collect();
        let keep_h: Vec<f32> = (0..batch * net.hidden())
            .map(|i| if i % 2 == 0 { 0.0 } else { 2.0 })
            .collect();
        let mut ws = Workspace::default();
        let mut train = || {
            net.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
            net.apply(&mut adam, &ws);
        };
        let train_rate = rate(batch, &mut train);
        let mut ws = Workspace::default();
        let mut out = Vec::new();
        let infer_rate = rate(batch, || net.trunk(&images, &mut ws, &mut out));
        println!("batch {batch}: train {train_rate:.0} images/s, trunk {infer_rate:.0} images/s");
    }
}

/// Images per second of `step` on batches of `batch`.
fn rate(batch: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..2 {
        step();
    }
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..10 {
                step();
            }
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (10 * batch) as f64 / best
}
