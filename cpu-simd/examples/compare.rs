//! Times this backend on pools written by `compare/compare.py`, for the side-by-side with
//! batchbald_redux. Prints one JSON line per measurement.
//!
//! `cargo run --release -p bald-cpu-simd --example compare -- POOL.npy KIND [REPEATS]`
//! with KIND `batchbald` (batch 10, num_samples 1000) or `bald` (entropy and conditional
//! entropy in one pass, then BALD).

use std::time::Instant;

use bald_core::owned::{batchbald, entropies};
use bald_core::{Backend, BatchBald, Shape};
use bald_cpu_simd::SimdBackend;
use bald_testing::npy;

/// A float32 `.npy` of rank 3 (N x K x C).
fn read_npy_f32(path: &str) -> (Vec<f32>, Shape) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let array = npy::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let npy::NpyData::F32(data) = array.data else {
        panic!("{path}: not float32")
    };
    let [n, k, c] = array.shape[..] else {
        panic!("{path}: rank {}", array.shape.len())
    };
    (data, Shape::new(n, k, c))
}

/// The median of `repeats` timed runs of `f`, and its last result.
fn median(repeats: usize, mut f: impl FnMut() -> Vec<usize>) -> (f64, Vec<usize>) {
    let mut times = Vec::new();
    let mut picks = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        picks = f();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], picks)
}

/// The top 10 BALD points from entropies and conditional entropies.
fn top_bald(h: &[f64], eh: &[f64]) -> Vec<usize> {
    let bald: Vec<f64> = h.iter().zip(eh).map(|(a, b)| (a - b).max(0.0)).collect();
    bald_core::owned::top_k_of(&bald, 10).indices
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, kind) = (&args[1], args[2].as_str());
    let repeats: usize = args.get(3).map_or(3, |r| r.parse().expect("repeats"));
    let (data, shape) = read_npy_f32(path);
    let backend = SimdBackend::new();
    let validate_start = Instant::now();
    let lp = backend.validate(&data, shape).expect("valid log-probs");
    let validate_s = validate_start.elapsed().as_secs_f64();
    let name = format!(
        "bald-cpu-simd ({:?}, {} threads)",
        backend.isa(),
        backend.threads()
    );
    let mut rows = Vec::new();
    match kind {
        // Full greedy: every candidate at every step, as batchbald_redux evaluates them.
        "batchbald" => {
            let params = BatchBald {
                batch_size: 10,
                num_samples: 1000,
                seed: 0,
                greedy: bald_core::Greedy::Full,
            };
            let run = || batchbald(&backend, &lp, params).expect("batchbald").indices;
            rows.push((name, median(repeats, run)));
        }
        "bald" => {
            let run = || {
                let (h, eh) = entropies(&backend, &lp).expect("entropies");
                top_bald(&h, &eh)
            };
            rows.push((name.clone(), median(repeats, run)));
            // The same with the input validated in the pass (what `bald acquire` runs).
            let (mut h, mut eh) = (vec![0.0; shape.n], vec![0.0; shape.n]);
            let run = || {
                backend
                    .validate_entropies(&data, shape, &mut h, &mut eh)
                    .expect("valid log-probs");
                top_bald(&h, &eh)
            };
            rows.push((format!("{name} + validation"), median(repeats, run)));
        }
        _ => panic!("KIND is batchbald or bald"),
    }
    for (name, (secs, picks)) in rows {
        println!(
            "{{\"impl\": \"{name}\", \"kind\": \"{kind}\", \"median_s\": {secs}, \"validate_s\": {validate_s}, \"picks\": {picks:?}}}"
        );
    }
}
