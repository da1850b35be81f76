//! Throughput of the SIMD backend against the scalar reference and the machine's limits.
//!
//! `cargo bench -p bald-cpu-simd` (all), or filter: `cargo bench -p bald-cpu-simd -- scores`.
//! Groups: `limits` (read bandwidth, FMA peak: printed), `scores` (entropy and conditional entropy,
//! i.e. BALD, in one pass, and the same pass validating the input; GB/s of f32 input), `joint` (the BatchBALD joint-entropy
//! step; GFLOP/s counting 2 M K C flops per candidate), `forward` (Gal et al.'s MC-dropout
//! head 3872 -> 128 -> 10; GFLOP/s), `end_to_end` (a full BatchBALD acquisition and BALD on
//! the sizes of the Python comparison).

use std::time::Duration;

use bald_testing::cases as common;

use bald_core::owned::{batchbald, entropies, mc_dropout_forward};
use bald_core::rng::{point_uniform, Domain};
use bald_core::{Backend, BatchBald, JointProbs, LogProbs, McDropoutHead, Scalar, Shape};
use bald_cpu_simd::{fma_peak_gflops, read_bandwidth_gbs, Isa, SimdBackend};
use common::{random_pool, GalHead};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn simd_backends() -> Vec<SimdBackend> {
    Isa::available()
        .into_iter()
        .map(|isa| SimdBackend::with_isa(isa).unwrap())
        .collect()
}

fn limits(_: &mut Criterion) {
    let best = SimdBackend::new();
    let data = vec![1.0f32; 64 << 20];
    let bw = (0..5)
        .map(|_| read_bandwidth_gbs(&best, &data))
        .fold(0.0, f64::max);
    println!(
        "limits: read bandwidth {bw:.1} GB/s ({} threads, 256 MiB)",
        best.threads()
    );
    for b in simd_backends() {
        let peak = (0..3)
            .map(|_| fma_peak_gflops(&b, 20_000_000))
            .fold(0.0, f64::max);
        println!(
            "limits: f32 FMA peak {:?} {peak:.1} GFLOP/s ({} threads)",
            b.isa(),
            b.threads()
        );
    }
}

fn score_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("scores");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (n, k) in [(10_000, 20), (10_000, 100), (60_000, 20), (60_000, 100)] {
        let shape = Shape::new(n, k, 10);
        let data = random_pool(shape, 1);
        let lp = LogProbs::new(&data, shape).unwrap();
        g.throughput(Throughput::Bytes((data.len() * 4) as u64));
        let id = format!("N{n}_K{k}_C10");
        for b in simd_backends() {
            g.bench_with_input(BenchmarkId::new(b.isa().name(), &id), &lp, |bench, lp| {
                bench.iter(|| entropies(&b, lp).unwrap())
            });
        }
        if n == 10_000 {
            g.bench_with_input(BenchmarkId::new("scalar", &id), &lp, |bench, lp| {
                bench.iter(|| entropies(&Scalar, lp).unwrap())
            });
        }
        // The same pass validating the input as it goes (what `bald acquire --strategy bald`
        // runs), beside the entropies alone above, on every ISA.
        let (mut h, mut eh) = (vec![0.0; n], vec![0.0; n]);
        for b in simd_backends() {
            let name = format!("{}+validation", b.isa().name());
            g.bench_function(BenchmarkId::new(name, &id), |bench| {
                bench.iter(|| b.validate_entropies(&data, shape, &mut h, &mut eh).unwrap())
            });
        }
    }
    g.finish();
}

/// A joint of M rows in the exact-regime form (random, row sums as a real joint would have).
fn joint_rows(m: usize, k: usize) -> Vec<f64> {
    (0..m * k)
        .map(|i| point_uniform(7, Domain::JointSample, i) / (m * k) as f64)
        .collect()
}

fn joint_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("joint");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    for (n, k, m) in [
        (10_000, 20, 1000),
        (10_000, 100, 1000),
        (10_000, 20, 10_000),
        (10_000, 100, 10_000),
        (60_000, 20, 1000),
        (60_000, 100, 1000),
        (60_000, 20, 10_000),
        (60_000, 100, 10_000),
    ] {
        let shape = Shape::new(n, k, 10);
        let data = random_pool(shape, 2);
        let lp = LogProbs::new(&data, shape).unwrap();
        let a = joint_rows(m, k);
        let joint = JointProbs {
            a: &a,
            log_scale: None,
            weight: 1.0,
            m,
            k,
        };
        g.throughput(Throughput::Elements((2 * n * m * k * 10) as u64));
        let id = format!("N{n}_K{k}_C10_M{m}");
        let mut out = vec![0.0; n];
        let mut ws = vec![0.0; k * 10];
        let best = SimdBackend::new();
        g.bench_function(BenchmarkId::new(best.isa().name(), &id), |bench| {
            bench.iter(|| {
                best.joint_entropies(&lp, &joint, None, &mut out, &mut ws)
                    .unwrap()
            })
        });
        if (n, k, m) == (10_000, 20, 1000) {
            let small = lp.slice_points(0, 500);
            let mut out = vec![0.0; 500];
            g.throughput(Throughput::Elements((2 * 500 * m * k * 10) as u64));
            g.bench_function(BenchmarkId::new("scalar", "N500_K20_C10_M1000"), |bench| {
                bench.iter(|| {
                    Scalar
                        .joint_entropies(&small, &joint, None, &mut out, &mut ws)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn forward_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3));
    let weights = GalHead::new();
    let layers = weights.layers();
    let d = GalHead::DIMS.0;
    let head = McDropoutHead::new(&layers).unwrap();
    for (n, k) in [(1000, 20), (1000, 100)] {
        let x = GalHead::features(n);
        g.throughput(Throughput::Elements(GalHead::flops(n, k)));
        let id = format!("N{n}_K{k}_3872-128-10");
        let best = SimdBackend::new();
        g.bench_function(BenchmarkId::new(best.isa().name(), &id), |bench| {
            bench.iter(|| mc_dropout_forward::<_, f32>(&best, &head, &x, n, k, 1).unwrap())
        });
        if k == 20 {
            let small = 50;
            g.throughput(Throughput::Elements(GalHead::flops(small, k)));
            g.bench_function(BenchmarkId::new("scalar", "N50_K20_3872-128-10"), |bench| {
                bench.iter(|| {
                    mc_dropout_forward::<_, f32>(&Scalar, &head, &x[..small * d], small, k, 1)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("end_to_end");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(5));
    let best = SimdBackend::new();
    let shape = Shape::new(10_000, 20, 10);
    let data = random_pool(shape, 3);
    let lp = LogProbs::new(&data, shape).unwrap();
    let params = BatchBald {
        batch_size: 10,
        num_samples: 1000,
        seed: 0,
        // Full greedy, as batchbald_redux (and the README's earlier figures); lazy greedy is
        // measured against it on realistic pools by `cargo bench -p bald-cli --bench greedy`.
        greedy: bald_core::Greedy::Full,
    };
    g.bench_function("batchbald_N10000_K20_C10_b10_s1000", |bench| {
        bench.iter(|| batchbald(&best, &lp, params).unwrap())
    });
    let shape = Shape::new(60_000, 100, 10);
    let data = random_pool(shape, 4);
    let lp = LogProbs::new(&data, shape).unwrap();
    g.bench_function("bald_entropy_N60000_K100_C10", |bench| {
        bench.iter(|| entropies(&best, &lp).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    limits,
    score_group,
    joint_group,
    forward_group,
    end_to_end
);
criterion_main!(benches);
