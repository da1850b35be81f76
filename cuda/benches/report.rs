//! The device report (issue 18): one pass over the measurements a GPU run records in
//! `cuda/BENCHMARKS.md`, with fixed repetitions and medians so that it fits a short lease
//! (criterion's `kernels` bench is the one to compare versions with). Built here with
//! `cargo bench -p bald-cuda --bench report --no-run`, run there by `cuda/device/run.sh`.
//!
//! - `copy`: device-to-device copy of 2 GiB (read + write counted), by CUDA events.
//! - `scores`: the one-pass entropy + conditional-entropy kernel (hence BALD) over
//!   N = 10^6, K = 100, C = 10 in f32 and f16, kernel time by CUDA events (no host copies),
//!   GB/s of input against the copy bandwidth.
//! - `joint`: the joint-entropy kernel over N = 60000, K = 100, C = 10 against M = 10000 joint
//!   rows, by CUDA events; 2 N M K C flops (the GEMM) against `BALD_FP32_TFLOPS` when given.
//! - `batchbald`: a batch of 10 from N = 60000, K = 100, C = 10, num_samples 10000, lazy and
//!   full greedy, host time of the whole acquisition (pool resident), evaluations per step.
//! - `head`: Gal et al.'s MC-dropout head 3872 -> 128 -> 10 over N = 60000, K = 100, host to
//!   host (features up, log-probs down).
//!
//! Without a GPU it prints why and exits 0.

use std::time::Instant;

use bald_testing::cases as common;

use bald_core::half::f16;
use bald_core::owned::{batchbald_with, entropies, mc_dropout_forward};
use bald_core::{Backend, BatchBald, Greedy, Hooks, JointProbs, LogProbs, McDropoutHead, Shape};
use bald_cuda::testing::{self, HeadPlan};
use bald_cuda::CudaBackend;
use common::{random_pool, GalHead};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// N x K x C by repeating a pool of `base` points (cheap to make at 10^9 values).
fn tiled_pool(shape: Shape, base: usize, seed: u64) -> Vec<f32> {
    let one = random_pool(Shape::new(base, shape.k, shape.c), seed);
    let mut out = Vec::with_capacity(shape.n * shape.k * shape.c);
    while out.len() < shape.n * shape.k * shape.c {
        let left = shape.n * shape.k * shape.c - out.len();
        out.extend_from_slice(&one[..left.min(one.len())]);
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gpu = match CudaBackend::new(0) {
        Ok(b) => b,
        Err(e) => {
            println!("skipped: no usable GPU ({e})");
            return;
        }
    };
    // BALD_REPORT_SMALL: sizes cut a thousandfold, to check this program on the emulation.
    let small = std::env::var("BALD_REPORT_SMALL").is_ok();
    let scale = |n: usize| if small { n / 1000 } else { n };
    let peak_tflops: Option<f64> = std::env::var("BALD_FP32_TFLOPS")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut table = vec![format!(
        "device: {} ({}), driver {:?}, NVRTC {:?}",
        gpu.device_name(),
        gpu.arch(),
        bald_cuda::driver_version().ok(),
        bald_cuda::nvrtc_version().ok()
    )];
    // BALD_REPORT_ONLY=head: the MC-dropout head alone (for a profiler run).
    let only_head = std::env::var("BALD_REPORT_ONLY").is_ok_and(|v| v == "head");
    let mut row = |line: String| {
        println!("{line}");
        table.push(line);
    };

    if !only_head {
        measure_kernels(&gpu, small, scale, peak_tflops, &mut row);
    }
    measure_head(&gpu, scale, &mut row);
    modules(&gpu, &mut row);

    println!("\n== report ==");
    for line in &table {
        println!("{line}");
    }
}

/// Copy bandwidth, scores, the joint kernel and BatchBALD.
fn measure_kernels(
    gpu: &CudaBackend,
    small: bool,
    scale: impl Fn(usize) -> usize,
    peak_tflops: Option<f64>,
    row: &mut impl FnMut(String),
) {
    let copy_bytes = if small { 1 << 20 } else { 1 << 31 };
    let copy = testing::copy_bandwidth_gbs(gpu, copy_bytes).unwrap();
    row(format!(
        "copy: {} MiB device to device, {copy:.0} GB/s (read + write)",
        copy_bytes >> 20
    ));

    // Scores over 10^6 x 100 x 10, with today's kernels and with the grouped ones (on a
    // backend with the switch on).
    let shape = Shape::new(scale(1_000_000), 100, 10);
    let data = tiled_pool(shape, scale(100_000), 1);
    let bytes32 = (data.len() * 4) as f64;
    let grouped = CudaBackend::new(0).unwrap().with_grouped_scores(true);
    let half: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
    let mut f32_scores = Vec::new();
    for (be, kernels) in [(gpu, "scores"), (&grouped, "grouped scores")] {
        let lp = LogProbs::new(&data, shape).unwrap();
        let pool = be.prepare(lp).unwrap();
        let ms = median(testing::time_entropies(be, &pool, 20).unwrap());
        let gbs = bytes32 / (ms / 1e3) / 1e9;
        let t = Instant::now();
        let (h, eh) = entropies(be, &pool).unwrap();
        let host = t.elapsed().as_secs_f64() * 1e3;
        assert!(h.iter().zip(&eh).all(|(h, e)| (0.0..=h + 1e-6).contains(e)));
        f32_scores.push((h, eh));
        row(format!(
            "{kernels} f32 N{} K100 C10: kernel {ms:.3} ms, {gbs:.0} GB/s = {:.0}% of copy; \
             with the download of N x 2 f64 {host:.2} ms",
            shape.n,
            100.0 * gbs / copy
        ));
        let lp = LogProbs::new(&half, shape).unwrap();
        let pool = be.prepare(lp).unwrap();
        let ms = median(testing::time_entropies(be, &pool, 20).unwrap());
        let gbs = bytes32 / 2.0 / (ms / 1e3) / 1e9;
        row(format!(
            "{kernels} f16 N{} K100 C10: kernel {ms:.3} ms, {gbs:.0} GB/s = {:.0}% of copy, \
             {:.2}x the copy time of its bytes",
            shape.n,
            100.0 * gbs / copy,
            copy / gbs
        ));
    }
    let diff = f32_scores[0]
        .0
        .iter()
        .zip(&f32_scores[1].0)
        .chain(f32_scores[0].1.iter().zip(&f32_scores[1].1))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    row(format!(
        "grouped scores against today's kernels, f32: largest difference {diff:.1e} \
         (budget {:.1e})",
        bald_core::budget::score_tolerance(shape.c)
    ));
    drop(half);
    drop(data);

    // The joint step and BatchBALD over 60000 x 100 x 10.
    let shape = Shape::new(scale(60_000), 100, 10);
    let data = random_pool(shape, 2);
    let lp = LogProbs::new(&data, shape).unwrap();
    let t = Instant::now();
    let pool = gpu.prepare(lp).unwrap();
    row(format!(
        "upload: pool of {} x 100 x 10 f32 ({:.0} MB) in {:.1} ms",
        shape.n,
        data.len() as f64 * 4e-6,
        t.elapsed().as_secs_f64() * 1e3
    ));
    let (k, m) = (100, if small { 100 } else { 10_000 });
    let a: Vec<f64> = (0..m * k)
        .map(|i| ((i % 97) as f64 + 1.0) / (97.0 * k as f64))
        .collect();
    let joint = JointProbs {
        a: &a,
        log_scale: None,
        weight: 1.0,
        m,
        k,
    };
    let ms = median(testing::time_joint(gpu, &pool, &joint, 10).unwrap());
    let tflops = 2.0 * (shape.n * m * k * 10) as f64 / (ms / 1e3) / 1e12;
    let of_peak = peak_tflops.map_or(String::new(), |p| {
        format!(" = {:.0}% of {p:.1} (cuBLAS SGEMM)", 100.0 * tflops / p)
    });
    row(format!(
        "joint N{} K100 C10 M{m}: kernel {ms:.2} ms, {tflops:.1} TFLOP/s{of_peak}",
        shape.n
    ));
    // The same step on tensor cores (3xTF32), on a backend with the switch on.
    let tc = CudaBackend::new(0).unwrap().with_tensor_cores(true);
    if tc.joint_on_tensor_cores(shape.c) {
        let tc_pool = tc.prepare(lp).unwrap();
        let tc_ms = median(testing::time_joint(&tc, &tc_pool, &joint, 10).unwrap());
        let tc_tflops = 2.0 * (shape.n * m * k * 10) as f64 / (tc_ms / 1e3) / 1e12;
        let mut want = vec![0.0; shape.n];
        let mut got = vec![0.0; shape.n];
        let mut scratch = vec![0.0; k * 10];
        gpu.joint_entropies(&pool, &joint, None, &mut want, &mut scratch)
            .unwrap();
        tc.joint_entropies(&tc_pool, &joint, None, &mut got, &mut scratch)
            .unwrap();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0.0f64, f64::max);
        row(format!(
            "joint on tensor cores (3xTF32) N{} K100 C10 M{m}: kernel {tc_ms:.2} ms, \
             {tc_tflops:.1} TFLOP/s, {:.2}x the f32 kernel; largest relative difference from \
             it {worst:.2e}",
            shape.n,
            ms / tc_ms
        ));
    } else {
        row(format!("joint on tensor cores: none on {}", tc.arch()));
    }
    drop(tc);
    let mut picks = Vec::new();
    for greedy in [Greedy::Lazy, Greedy::Full] {
        let params = BatchBald {
            batch_size: 10,
            num_samples: if small { 100 } else { 10_000 },
            seed: 0,
            greedy,
        };
        let mut times = Vec::new();
        let mut evaluations = Vec::new();
        let mut batch = None;
        for _ in 0..3 {
            evaluations.clear();
            let mut record = |p: bald_core::Pick| {
                evaluations.push(p.evaluations);
                std::ops::ControlFlow::Continue(())
            };
            let mut hooks = Hooks {
                on_pick: Some(&mut record),
                ..Hooks::default()
            };
            let t = Instant::now();
            batch = Some(batchbald_with(gpu, &pool, params, &mut hooks).unwrap());
            times.push(t.elapsed().as_secs_f64());
        }
        let batch = batch.unwrap();
        row(format!(
            "batchbald {greedy:?} N{} K100 C10 b10 s{}: {:.3} s (median of 3: {:.3} {:.3} {:.3}), \
             evaluations per step {evaluations:?}, picks {:?}",
            shape.n,
            params.num_samples,
            median(times.clone()),
            times[0],
            times[1],
            times[2],
            batch.indices
        ));
        picks.push(batch);
    }
    row(format!(
        "batchbald lazy == full picks: {}; largest score difference {:.2e}",
        picks[0].indices == picks[1].indices,
        picks[0]
            .scores
            .iter()
            .zip(&picks[1].scores)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    ));
    drop(pool);
    drop(data);
}

/// Gal et al.'s MC-dropout head, host to host.
fn measure_head(gpu: &CudaBackend, scale: impl Fn(usize) -> usize, row: &mut impl FnMut(String)) {
    // Gal et al.'s MC-dropout head.
    let weights = GalHead::new();
    let layers = weights.layers();
    let head = McDropoutHead::new(&layers).unwrap();
    let (n, k) = (scale(60_000), 100);
    let x = GalHead::features(n);
    let mut times = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        let out = mc_dropout_forward::<_, f32>(gpu, &head, &x, n, k, 7).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert!(out.iter().all(|v| v.is_finite()));
    }
    times.remove(0);
    let s = median(times);
    // Its transfers and buffers apart: features up, log-probs down, one activation buffer.
    let mut features = x;
    let [_, up, _] = testing::time_transfers(gpu, &mut features).unwrap();
    let mut lp = vec![0.0f32; n * k * 10];
    let [_, _, down] = testing::time_transfers(gpu, &mut lp).unwrap();
    let mut act = vec![0.0f32; n * k * 128];
    let [alloc, _, _] = testing::time_transfers(gpu, &mut act).unwrap();
    row(format!(
        "head transfers: features up {:.1} ms ({:.1} GB/s), log-probs down {:.1} ms ({:.1} GB/s), \
         allocating one {:.1} GB activation buffer {:.1} ms",
        up * 1e3,
        (features.len() * 4) as f64 / up / 1e9,
        down * 1e3,
        (lp.len() * 4) as f64 / down / 1e9,
        (act.len() * 4) as f64 / 1e9,
        alloc * 1e3
    ));
    row(format!(
        "head 3872-128-10 N{n} K{k}: {:.1} ms host to host (features up, log-probs down), {:.1} TFLOP/s",
        s * 1e3,
        GalHead::flops(n, k) as f64 / s / 1e12
    ));
    // The same through pinned staging buffers (8 MiB each), pipelined, into a fresh output
    // each time.
    let staged = CudaBackend::new(0)
        .unwrap()
        .with_pinned_transfers(Some(1 << 21));
    let direct: Vec<f32> = mc_dropout_forward(gpu, &head, &features, n, k, 7).unwrap();
    let mut times = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        let out = mc_dropout_forward::<_, f32>(&staged, &head, &features, n, k, 7).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert!(out == direct, "pinned transfers changed the head's output");
    }
    times.remove(0);
    let pinned = median(times);
    let plan = match testing::head_plan(&staged, &head, n, k).unwrap() {
        HeadPlan::Pipelined(piece) => format!("pipelined, {piece} points a piece"),
        HeadPlan::Direct(chunk) => format!("not pipelined, {chunk} points a chunk"),
    };
    row(format!(
        "head 3872-128-10 N{n} K{k} through pinned staging ({plan}): {:.1} ms host to host, \
         {:.2}x the direct copies; the same output",
        pinned * 1e3,
        s / pinned
    ));
}

/// The images the driver loaded, and whether it takes the PTX.
fn modules(gpu: &CudaBackend, row: &mut impl FnMut(String)) {
    // The images the driver took: the backend's CUBIN per module, and the PTX fallback.
    let images: Vec<String> = gpu
        .module_images()
        .iter()
        .map(|(m, image)| format!("{} {image:?}", m.name()))
        .collect();
    row(format!("modules as loaded: {}", images.join("; ")));
    let ptx: Vec<String> = testing::load_every_ptx(gpu)
        .into_iter()
        .map(|(m, r)| match r {
            Ok(()) => format!("{} ok", m.name()),
            Err(e) => format!("{} REFUSED ({e})", m.name()),
        })
        .collect();
    row(format!("PTX loaded by the driver: {}", ptx.join("; ")));
}
