//! Vectorised exp and ln against f64, at every ISA level, with their error budgets.

use bald_cpu_simd::math::{exp, ln};
use bald_cpu_simd::simd::{Portable, Simd};
use bald_cpu_simd::Isa;

/// Relative error budget for normal results, in units of f32 epsilon.
const ULP_BUDGET: f64 = 2.0;

/// Applies f lane-wise through the portable implementation and, where available, the vector
/// ones (through the public backend entry point that runs each ISA).
fn check(
    name: &str,
    xs: &[f32],
    f32_fn: impl Fn(&[f32]) -> Vec<Vec<f32>>,
    reference: impl Fn(f64) -> f64,
) {
    let outs = f32_fn(xs);
    for out in &outs {
        for (&x, &y) in xs.iter().zip(out) {
            let want = reference(f64::from(x));
            if want.is_nan() {
                assert!(y.is_nan(), "{name}({x}) = {y}, want NaN");
                continue;
            }
            // Results beyond f32's range must be the infinity f32 rounds them to.
            let want_f32 = want as f32;
            if want_f32.is_infinite() || want == 0.0 {
                assert_eq!(y, want_f32, "{name}({x})");
                continue;
            }
            let err = (f64::from(y) - want).abs();
            if want.abs() < f64::from(f32::MIN_POSITIVE) {
                // Subnormal results: within one subnormal step (plus half for rounding).
                assert!(
                    err <= 1.5 * f64::from(f32::from_bits(1)),
                    "{name}({x}) = {y:e}, want {want:e}"
                );
            } else {
                let rel = err / want.abs() / f64::from(f32::EPSILON);
                assert!(
                    rel <= ULP_BUDGET,
                    "{name}({x}) = {y}, want {want}: {rel:.2} ulp"
                );
            }
        }
    }
}

fn run_all(xs: &[f32], f: fn(Isa, &[f32]) -> Vec<f32>) -> Vec<Vec<f32>> {
    Isa::available().into_iter().map(|isa| f(isa, xs)).collect()
}

fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
        .collect()
}

#[test]
fn exp_within_budget() {
    let mut xs = sweep(-110.0, 89.0, 200_001);
    xs.extend([
        0.0,
        -0.0,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NAN,
        -87.33,
        -103.9,
        88.72,
        1e-30,
    ]);
    check(
        "exp",
        &xs,
        |xs| run_all(xs, bald_cpu_simd::apply_exp),
        f64::exp,
    );
}

#[test]
fn exp_of_log_probs_within_budget() {
    // Validated log-probs: at most ln(1 + tolerance), clamped below at -87 (e^-87 is normal).
    let mut xs = sweep(-110.0, 0.01, 200_001);
    xs.extend([0.0, -0.0, f32::NEG_INFINITY, -87.0, -86.99, -87.01]);
    check(
        "exp_log_prob",
        &xs,
        |xs| run_all(xs, bald_cpu_simd::apply_exp_log_prob),
        |x| x.max(-87.0).exp(),
    );
}

#[test]
fn ln_within_budget() {
    let mut xs: Vec<f32> = sweep(-30.0, 30.0, 100_001)
        .into_iter()
        .map(|e| 2f32.powf(e))
        .collect();
    xs.extend(sweep(0.5, 2.0, 100_001));
    // Subnormals, zero, negatives and the special values.
    xs.extend([
        f32::from_bits(1),
        f32::from_bits(12345),
        f32::MIN_POSITIVE / 3.0,
        0.0,
        -0.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        1.0,
    ]);
    check(
        "ln",
        &xs,
        |xs| run_all(xs, bald_cpu_simd::apply_ln),
        |x| if x == 0.0 { f64::NEG_INFINITY } else { x.ln() },
    );
}

#[test]
fn ln_normal_within_budget() {
    let mut xs: Vec<f32> = sweep(-125.0, 127.0, 200_001)
        .into_iter()
        .map(|e| 2f32.powf(e))
        .collect();
    xs.extend(sweep(0.5, 2.0, 100_001));
    xs.extend([f32::MIN_POSITIVE, f32::MAX, 1.0]);
    check(
        "ln_normal",
        &xs,
        |xs| run_all(xs, bald_cpu_simd::apply_ln_normal),
        f64::ln,
    );
}

#[test]
fn portable_matches_the_trait_directly() {
    // The portable token is usable without detection.
    let s = Portable;
    assert_eq!(exp(s, 0.0), 1.0);
    assert_eq!(ln(s, 1.0), 0.0);
    assert_eq!(Portable::LANES, 1);
}

#[test]
fn transpose_sums_are_row_sums() {
    for seed in 0..64u32 {
        // Distinct magnitudes per row and column, so any mixed-up lane shows.
        let m: [[f32; 16]; 16] = core::array::from_fn(|i| {
            core::array::from_fn(|j| {
                let h = (seed.wrapping_mul(2_654_435_761) ^ (i as u32 * 16 + j as u32)) % 1000;
                (h as f32 - 500.0) * (1.0 + i as f32) / (1.0 + j as f32)
            })
        });
        for isa in Isa::available() {
            let got = bald_cpu_simd::apply_transpose_sums(isa, &m);
            for (i, row) in m.iter().enumerate() {
                let want: f64 = row.iter().map(|&x| f64::from(x)).sum();
                let scale: f64 = row.iter().map(|&x| f64::from(x).abs()).sum();
                let err = (f64::from(got[i]) - want).abs();
                assert!(
                    err <= 16.0 * f64::from(f32::EPSILON) * scale,
                    "{isa:?} row {i}: {} vs {want}",
                    got[i]
                );
            }
        }
    }
}
