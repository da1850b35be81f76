//! sgemm throughput at the shapes of one training step of Gal et al.'s CNN (batch 64), for
//! `gemm` and `matrixmultiply`, on all cores. `cargo run --release` in this folder.

use std::time::Instant;

/// (name, m, k, n) of C[m x n] = A[m x k] B[k x n], row-major, batch 64.
const B: usize = 64;
const SHAPES: [(&str, usize, usize, usize); 7] = [
    ("conv1 fwd (im2col)", 625 * B, 16, 32),
    ("conv2 fwd (im2col)", 484 * B, 512, 32),
    ("conv2 dW = cols^T dY", 512, 484 * B, 32),
    ("conv2 dX = dY W^T", 484 * B, 32, 512),
    ("dense1 fwd", B, 3872, 128),
    ("dense1 dW", 3872, B, 128),
    ("dense1 dX", B, 128, 3872),
];

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{threads} threads; GFLOP/s (best of 20 after 3 warm-ups)");
    println!("| shape | m x k x n | gemm 0.19 | matrixmultiply 0.3 |");
    println!("| --- | --- | --- | --- |");
    let mut total = [0.0f64; 2];
    for (name, m, k, n) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let g = best(|| unsafe {
            // SAFETY: row-major slices of the stated sizes, strides in elements.
            gemm::gemm(
                m, n, k,
                c.as_mut_ptr(), 1, n as isize,
                false,
                a.as_ptr(), 1, k as isize,
                b.as_ptr(), 1, n as isize,
                0.0f32, 1.0f32, false, false, false,
                gemm::Parallelism::Rayon(threads),
            )
        });
        let mm = best(|| unsafe {
            // SAFETY: as above.
            matrixmultiply::sgemm(
                m, k, n, 1.0,
                a.as_ptr(), k as isize, 1,
                b.as_ptr(), n as isize, 1,
                0.0, c.as_mut_ptr(), n as isize, 1,
            )
        });
        total[0] += g;
        total[1] += mm;
        println!(
            "| {name} | {m} x {k} x {n} | {:.1} | {:.1} |",
            flops / g / 1e9,
            flops / mm / 1e9
        );
    }
    println!(
        "all seven (one step's GEMMs but conv1's backward), s per image: gemm {:.1} us, matrixmultiply {:.1} us",
        total[0] / B as f64 * 1e6,
        total[1] / B as f64 * 1e6
    );
}

/// The best of 20 timed runs of `f`, in seconds.
fn best(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    (0..20)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
