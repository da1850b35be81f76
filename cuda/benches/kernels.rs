//! Throughput of the CUDA kernels, for the device machine (built here with
//! `cargo bench -p bald-cuda --no-run`, run there). Without a GPU it prints why and exits.
//!
//! Groups: `limits` (device-to-device copy bandwidth, printed: the bound of the score pass),
//! `scores` (entropy and conditional entropy in one pass; GB/s of f32 input), `joint` (the
//! BatchBALD joint-entropy step over all candidates; GFLOP/s counting 2 M K C flops per
//! candidate; includes uploading the joint and downloading N results), `forward` (Gal et al.'s
//! MC-dropout head 3872 -> 128 -> 10 over N points and K samples; GFLOP/s of the dense layers),
//! `batchbald` (a full acquisition of 10 points, all steps on the device).

use std::time::{Duration, Instant};

use bald_testing::cases as common;

use bald_core::owned::{batchbald, entropies, mc_dropout_forward};
use bald_core::{Backend, BatchBald, JointProbs, LogProbs, McDropoutHead, Shape};
use bald_cuda::CudaBackend;
use common::{random_pool, GalHead};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn gpu() -> Option<CudaBackend> {
    match CudaBackend::new(0) {
        Ok(b) => {
            println!("device: {} ({})", b.device_name(), b.arch());
            Some(b)
        }
        Err(e) => {
            println!("skipped: no usable GPU ({e})");
            None
        }
    }
}

fn limits(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let gbs = bald_cuda::testing::copy_bandwidth_gbs(&gpu, 1 << 30).unwrap();
    println!("limits: device-to-device copy of 1 GiB, {gbs:.0} GB/s (read + write counted)");
    let _ = c;
}

fn scores(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mut group = c.benchmark_group("scores");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (n, k) in [(1_000_000, 100), (60_000, 100), (60_000, 20)] {
        let shape = Shape::new(n, k, 10);
        let data = random_pool(shape, 1);
        let lp = LogProbs::new(&data, shape).unwrap();
        let pool = gpu.prepare(lp).unwrap();
        group.throughput(Throughput::Bytes((data.len() * 4) as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("N{n}_K{k}_C10")), |b| {
            b.iter(|| entropies(&gpu, &pool).unwrap())
        });
    }
    group.finish();
}

fn joint(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mut group = c.benchmark_group("joint");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (k, m) in [(100, 1000), (100, 10_000), (20, 10_000)] {
        let shape = Shape::new(60_000, k, 10);
        let data = random_pool(shape, 2);
        let lp = LogProbs::new(&data, shape).unwrap();
        let pool = gpu.prepare(lp).unwrap();
        let a: Vec<f64> = (0..m * k)
            .map(|i| ((i % 97) as f64 + 1.0) / (97.0 * k as f64))
            .collect();
        let view = JointProbs {
            a: &a,
            log_scale: None,
            weight: 1.0,
            m,
            k,
        };
        let mut out = vec![0.0; shape.n];
        let mut ws = vec![0.0; k * 10];
        group.throughput(Throughput::Elements((2 * shape.n * m * k * 10) as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("N60000_K{k}_C10_M{m}")),
            |b| {
                b.iter(|| {
                    gpu.joint_entropies(&pool, &view, None, &mut out, &mut ws)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

fn forward(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mut group = c.benchmark_group("forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let weights = GalHead::new();
    let layers = weights.layers();
    let head = McDropoutHead::new(&layers).unwrap();
    for (n, k) in [(10_000usize, 100usize), (60_000, 100)] {
        let x = GalHead::features(n);
        group.throughput(Throughput::Elements(GalHead::flops(n, k)));
        group.bench_function(
            BenchmarkId::from_parameter(format!("N{n}_K{k}_3872-128-10")),
            |b| b.iter(|| mc_dropout_forward::<_, f32>(&gpu, &head, &x, n, k, 7).unwrap()),
        );
    }
    group.finish();
}

fn batchbald_acquisition(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mut group = c.benchmark_group("batchbald");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let shape = Shape::new(60_000, 100, 10);
    let data = random_pool(shape, 3);
    let lp = LogProbs::new(&data, shape).unwrap();
    let t = Instant::now();
    let pool = gpu.prepare(lp).unwrap();
    println!(
        "batchbald: upload of the pool {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let params = BatchBald {
        batch_size: 10,
        num_samples: 10_000,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    };
    group.bench_function("N60000_K100_C10_b10_s10000", |b| {
        b.iter(|| batchbald(&gpu, &pool, params).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    limits,
    scores,
    joint,
    forward,
    batchbald_acquisition
);
criterion_main!(benches);
