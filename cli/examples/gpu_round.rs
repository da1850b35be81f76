//! One acquisition round as the BatchBALD paper times it (85.7 s per acquisition on MNIST),
//! on the GPU: Gal et al.'s CNN trained on 20 labels of MNIST-5k, its trunk run once over a
//! 60000-image Repeated-MNIST pool (MNIST-5k x 12 with noise), the MC-dropout head K = 100
//! times on the GPU, and a BatchBALD batch of 10 (num_samples 10000) there. Prints the time of
//! each stage, with today's defaults and again with the switches that wait for a GPU run
//! (pinned, pipelined transfers; the joint step on tensor cores; grouped score kernels).
//! `cargo run --release -p bald-cli --example gpu_round` (with `BALD_ROUND_SMALL=1`, 600 images
//! and K = 10, to check it on the emulation); built for the device machine by
//! `cuda/device/build.sh`.

use std::time::Instant;

use bald_core::owned::{batchbald, mc_dropout_forward};
use bald_core::{Backend, BatchBald, DenseLayer, Greedy, McDropoutHead, Shape};
use bald_cuda::CudaBackend;
use bald_experiment::cnn::{GalCnn, Workspace};
use bald_experiment::data::{embedded, repeat_pool};
use bald_experiment::nn::Adam;

fn main() {
    let gpu = match CudaBackend::new(0) {
        Ok(b) => b,
        Err(e) => {
            println!("skipped: no usable GPU ({e})");
            return;
        }
    };
    let small = std::env::var("BALD_ROUND_SMALL").is_ok();
    let (repeats, k, num_samples) = if small {
        (1, 10, 100)
    } else {
        (12, 100, 10_000)
    };
    let data = embedded().expect("the embedded MNIST-5k");
    let side = data.rows_cols.0;
    let all: Vec<usize> = (0..if small { 600 } else { data.len() }).collect();
    let (pool_data, pool) = repeat_pool(&data, &all, repeats, 1);

    // Train on 20 balanced labels (2 per class), as a round of the experiment does.
    let mut state = 7u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let labelled: Vec<usize> = (0..data.classes)
        .flat_map(|c| {
            data.y
                .iter()
                .enumerate()
                .filter(move |&(_, &y)| usize::from(y) == c)
                .map(|(i, _)| i)
                .take(2)
        })
        .collect();
    let mut net = GalCnn::new(side, data.classes, || {
        // Box-Muller from two uniforms.
        let (u, v) = (uniform().max(1e-7), uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    })
    .expect("28x28 fits");
    let t = Instant::now();
    let images: Vec<f32> = labelled
        .iter()
        .flat_map(|&i| data.row(i).to_vec())
        .collect();
    let labels: Vec<usize> = labelled.iter().map(|&i| usize::from(data.y[i])).collect();
    let mut adam = Adam::new(1e-3, 1e-4, &net.tensor_lengths());
    let mut ws = Workspace::default();
    let steps = if small { 5 } else { 100 };
    for _ in 0..steps {
        let mut mask = |len: usize, rate: f32| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    if uniform() < rate {
                        0.0
                    } else {
                        1.0 / (1.0 - rate)
                    }
                })
                .collect()
        };
        let keep_f = mask(labels.len() * net.features(), 0.25);
        let keep_h = mask(labels.len() * net.hidden(), 0.5);
        net.loss_and_gradients(&images, &labels, (&keep_f, &keep_h), &mut ws);
        net.apply(&mut adam, &ws);
    }
    let train = t.elapsed().as_secs_f64();

    // The trunk, once per pool image (CPU, all cores).
    let t = Instant::now();
    let n = pool.len();
    let d = net.features();
    let mut features = Vec::with_capacity(n * d);
    let mut batch_out = Vec::new();
    for chunk in pool.chunks(512) {
        let imgs: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| pool_data.row(i).to_vec())
            .collect();
        net.trunk(&imgs, &mut ws, &mut batch_out);
        features.extend_from_slice(&batch_out);
    }
    let trunk = t.elapsed().as_secs_f64();

    // The head K times on the GPU (features up, log-probs down), then BatchBALD there.
    let [(w1, b1), (w2, b2)] = net.head();
    let layers = [
        DenseLayer {
            weight: w1,
            bias: b1,
            inputs: d,
            outputs: net.hidden(),
            dropout: 0.25,
        },
        DenseLayer {
            weight: w2,
            bias: b2,
            inputs: net.hidden(),
            outputs: data.classes,
            dropout: 0.5,
        },
    ];
    let head = McDropoutHead::new(&layers).expect("the CNN's head");
    let simd = bald_cpu_simd::SimdBackend::new();
    let tuned = CudaBackend::new(0)
        .unwrap()
        .with_pinned_transfers(Some(1 << 21))
        .with_tensor_cores(true)
        .with_grouped_scores(true);
    let mut report = Vec::new();
    for (backend, gpu) in [("defaults", &gpu), ("switches on", &tuned)] {
        for run in 0..3 {
            let t = Instant::now();
            let lp: Vec<f32> = mc_dropout_forward(gpu, &head, &features, n, k, 11).unwrap();
            let inference = t.elapsed().as_secs_f64();
            let shape = Shape::new(n, k, data.classes);
            // The check `bald acquire` makes of every pool (NaN, inf, each row's sum): on the
            // CPU, SIMD and all threads.
            let t = Instant::now();
            let (mut h, mut eh) = (vec![0.0; n], vec![0.0; n]);
            let lp_view = simd
                .validate_entropies(&lp, shape, &mut h, &mut eh)
                .unwrap();
            let validation = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let pool = gpu.prepare(lp_view).unwrap();
            let upload = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let params = BatchBald {
                batch_size: 10,
                num_samples,
                seed: 0,
                greedy: Greedy::Lazy,
            };
            let batch = batchbald(gpu, &pool, params).unwrap();
            let acquisition = t.elapsed().as_secs_f64();
            // Run 0 warms up (module loads from the kernel cache, allocator).
            if run > 0 {
                report.push((
                    backend,
                    inference,
                    validation,
                    upload,
                    acquisition,
                    batch.indices,
                ));
            }
        }
    }
    println!(
        "round: {n} pool images ({side}x{side}, MNIST-5k x {repeats}), K = {k}, C = {}, \
         BatchBALD b = 10, num_samples = {num_samples}, lazy greedy, on {}",
        data.classes,
        gpu.device_name()
    );
    println!(
        "round: CPU ({} threads): training on 20 labels {steps} steps {train:.2} s, trunk over \
         the pool {trunk:.2} s ({:.0} images/s)",
        bald_experiment::nn::threads(),
        n as f64 / trunk
    );
    for (backend, inference, validation, upload, acquisition, picks) in &report {
        println!(
            "round: GPU, {backend}: MC-dropout head (features {:.0} MB up, log-probs {:.0} MB \
             down) {:.3} s, validation (CPU) {:.3} s, pool upload {:.3} s, BatchBALD (scores + \
             greedy, picks down) {:.3} s: {:.3} s in all; picks {picks:?}",
            (n * d * 4) as f64 / 1e6,
            (n * k * data.classes * 4) as f64 / 1e6,
            inference,
            validation,
            upload,
            acquisition,
            inference + validation + upload + acquisition
        );
    }
}
