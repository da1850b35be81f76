//! Lazy against full greedy BatchBALD on realistic pools, on the CPU backend.
//!
//! `cargo bench -p bald-cli --bench greedy`. The pools are built at setup, deterministically,
//! from the embedded MNIST-5k (and kept in `target/bald-bench/` for the next run and for
//! `bald acquire`):
//! - `realistic-47k.npy`: the Repeated-MNIST-5k pool (R = 12, 46,500 points, K = 20, C = 10)
//!   after three rounds of BALD (`bald experiment --save-pools`, 50 labels);
//! - `million.npy`: 10^6 points, that pool repeated with Gaussian noise (std 0.1) on every
//!   log-prob, renormalised.
//!
//! Groups: `realistic-47k` (a batch of 10, num_samples 1000: exact for t <= 3) with lazy and
//! full greedy; `million` (the same from the 10^6 pool) one timed run of each. Both print each
//! run's seconds with validation, picks and evaluations per step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bald::npy::{self, NpyData};
use bald_core::owned::batchbald_with;
use bald_core::{Backend, BatchBald, Greedy, Hooks, LogProbs, Pick, Shape};
use bald_cpu_simd::SimdBackend;
use criterion::{criterion_group, criterion_main, Criterion};

const K: usize = 20;
const C: usize = 10;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bald-bench")
}

/// The f32 data of a pool `.npy`, and its number of points.
fn read_npy(path: &Path) -> (Vec<f32>, usize) {
    let array = npy::parse(&std::fs::read(path).unwrap()).unwrap();
    let NpyData::F32(data) = array.data else {
        panic!("{} is not float32", path.display())
    };
    (data, array.shape[0])
}

/// The realistic pool: three rounds of BALD on Repeated-MNIST-5k, round 3's pool.
fn realistic() -> (Vec<f32>, usize) {
    let path = dir().join("realistic-47k.npy");
    if !path.exists() {
        let pools = dir().join("pools");
        let status = Command::new(env!("CARGO_BIN_EXE_bald"))
            .args(["experiment", "--strategies", "bald", "--budget", "60"])
            .args(["--repeated", "12", "--k", "20", "--backend", "cpu"])
            .arg("--save-pools")
            .arg(&pools)
            .arg("--out")
            .arg(dir().join("experiment"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::copy(pools.join("bald-seed0-round003.npy"), &path).unwrap();
    }
    read_npy(&path)
}

/// 10^6 points: the realistic pool repeated, each copy with N(0, 0.1^2) noise on every
/// log-prob (xorshift + Box-Muller), renormalised.
fn million(base: &[f32]) -> Vec<f32> {
    let path = dir().join("million.npy");
    if path.exists() {
        return read_npy(&path).0;
    }
    let n = 1_000_000;
    let point = K * C;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let base_n = base.len() / point;
    let mut out = Vec::with_capacity(n * point);
    for i in 0..n {
        let src = &base[(i % base_n) * point..][..point];
        for row in src.chunks_exact(C) {
            let noisy: Vec<f64> = row
                .iter()
                .map(|&v| {
                    let g = (-2.0 * uniform().ln()).sqrt()
                        * (2.0 * std::f64::consts::PI * uniform()).cos();
                    f64::from(v) + 0.1 * g
                })
                .collect();
            let lse = bald_core::log_sum_exp(noisy.iter().copied());
            out.extend(noisy.iter().map(|&v| (v - lse) as f32));
        }
    }
    std::fs::write(&path, npy::write(&[n, K, C], &NpyData::F32(out))).unwrap();
    read_npy(&path).0
}

/// Lazy or full greedy on `data`, with the evaluations of each step.
fn run(data: &[f32], n: usize, greedy: Greedy) -> (Vec<usize>, Vec<usize>) {
    let simd = SimdBackend::new();
    // Validation in the first pass, as `bald acquire` runs it.
    let (mut h, mut eh) = (vec![0.0; n], vec![0.0; n]);
    let lp = simd
        .validate_entropies(data, Shape::new(n, K, C), &mut h, &mut eh)
        .unwrap();
    let mut evaluations = Vec::new();
    let mut on_pick = |p: Pick| {
        evaluations.push(p.evaluations);
        std::ops::ControlFlow::Continue(())
    };
    let mut hooks = Hooks {
        exclude: &[],
        on_pick: Some(&mut on_pick),
        entropies: Some((&h, &eh)),
    };
    let batch = batchbald_with(&simd, &lp, params(greedy), &mut hooks).unwrap();
    (batch.indices, evaluations)
}

fn params(greedy: Greedy) -> BatchBald {
    BatchBald {
        batch_size: 10,
        num_samples: 1000,
        seed: 0,
        greedy,
    }
}

fn report(name: &str, data: &[f32], n: usize) {
    for greedy in [Greedy::Lazy, Greedy::Full] {
        let start = Instant::now();
        let (picks, evaluations) = run(data, n, greedy);
        println!(
            "{name} {}: {:.2} s with validation, picks {picks:?}, evaluations {evaluations:?} \
             ({} in all)",
            greedy.name(),
            start.elapsed().as_secs_f64(),
            evaluations.iter().sum::<usize>()
        );
    }
}

fn realistic_group(c: &mut Criterion) {
    let (data, n) = realistic();
    report("realistic-47k", &data, n);
    let simd = SimdBackend::new();
    let lp = LogProbs::new(&data, Shape::new(n, K, C)).unwrap();
    let mut g = c.benchmark_group("realistic-47k");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    for greedy in [Greedy::Lazy, Greedy::Full] {
        g.bench_function(greedy.name(), |b| {
            b.iter(|| bald_core::owned::batchbald(&simd, &lp, params(greedy)).unwrap())
        });
    }
    g.finish();
}

/// One timed run each (criterion's ten samples of a ~30 s run would take minutes).
fn million_group(_: &mut Criterion) {
    let (base, _) = realistic();
    let data = million(&base);
    report("million", &data, 1_000_000);
}

criterion_group!(benches, realistic_group, million_group);
criterion_main!(benches);
