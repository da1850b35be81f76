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

/// A C-order little-endian f32 `.npy` of rank 3.
fn read_npy_f32(path: &str) -> (Vec<f32>, Shape) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}: not a .npy file");
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("header");
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let dims: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dim"))
        .collect();
    assert_eq!(dims.len(), 3, "{path}: rank {}", dims.len());
    let data = bytes[start + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data, Shape::new(dims[0], dims[1], dims[2]))
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
    let mut times = Vec::new();
    let mut picks = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        picks = match kind {
            // Full greedy: every candidate at every step, as batchbald_redux evaluates them.
            "batchbald" => {
                batchbald(
                    &backend,
                    &lp,
                    BatchBald {
                        batch_size: 10,
                        num_samples: 1000,
                        seed: 0,
                        greedy: bald_core::Greedy::Full,
                    },
                )
                .expect("batchbald")
                .indices
            }
            "bald" => {
                let (h, eh) = entropies(&backend, &lp).expect("entropies");
                let bald: Vec<f64> = h.iter().zip(&eh).map(|(a, b)| (a - b).max(0.0)).collect();
                bald_core::owned::top_k_of(&bald, 10).indices
            }
            _ => panic!("KIND is batchbald or bald"),
        };
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"impl\": \"bald-cpu-simd ({:?}, {} threads)\", \"kind\": \"{kind}\", \"median_s\": {}, \"validate_s\": {validate_s}, \"picks\": {:?}}}",
        backend.isa(),
        backend.threads(),
        times[times.len() / 2],
        picks
    );
}
