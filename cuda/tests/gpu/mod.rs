//! The GPUs the device tests share (the default backend, one with its joint-entropy steps on
//! tensor cores, and one with grouped score kernels) and the check of every score against the
//! oracle.

use std::sync::OnceLock;

use bald_core::owned::{entropies, scores};
use bald_core::{budget, Backend, Element, LogProbs, PointScore, Scalar, Shape, StdKind};
use bald_cuda::CudaBackend;

use crate::skip::skipped;

type Opened = OnceLock<Result<CudaBackend, String>>;

/// The backend `make` opens once into `cell`, or None, the test then said to be skipped
/// (`what` names the tests).
fn opened(
    cell: &'static Opened,
    make: fn() -> Result<CudaBackend, bald_cuda::CudaError>,
    what: &str,
) -> Option<&'static CudaBackend> {
    match cell.get_or_init(|| make().map_err(|e| e.to_string())) {
        Ok(b) => Some(b),
        Err(e) => {
            skipped(&format!(
                "the {what} tests of this binary pass without checking: no usable GPU ({e})"
            ));
            None
        }
    }
}

/// The GPU backend, or None, the test then said to be skipped.
pub fn gpu() -> Option<&'static CudaBackend> {
    static GPU: Opened = OnceLock::new();
    opened(&GPU, || CudaBackend::new(0), "GPU")
}

/// The GPU backend with its joint-entropy steps on tensor cores, or None (skipped).
pub fn gpu_tc() -> Option<&'static CudaBackend> {
    static GPU: Opened = OnceLock::new();
    opened(
        &GPU,
        || CudaBackend::new(0).map(|b| b.with_tensor_cores(true)),
        "tensor-core",
    )
}

/// The GPU backend with grouped score kernels, or None (skipped).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn gpu_grouped() -> Option<&'static CudaBackend> {
    static GPU: Opened = OnceLock::new();
    opened(
        &GPU,
        || CudaBackend::new(0).map(|b| b.with_grouped_scores(true)),
        "grouped-scores",
    )
}

/// Every score and the entropies of `data` on `gpu` against the oracle on the same typed input,
/// within `budget::score_tolerance` plus `extra` (panics otherwise, which fails a proptest case
/// too); returns the largest error over the tolerance. The unbiased mean STD with K < 2 must be
/// an error.
pub fn check_scores<T: Element>(gpu: &CudaBackend, data: &[T], shape: Shape, extra: f64) -> f64 {
    let lp = LogProbs::new(data, shape).unwrap();
    let pool = gpu.prepare(lp).unwrap();
    let tol = budget::score_tolerance(shape.c) + extra;
    let mut worst = 0.0f64;
    for score in PointScore::ALL {
        if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
            assert!(scores(gpu, &pool, score).is_err(), "{score:?} with K = 1");
            continue;
        }
        let want = scores(&Scalar, &lp, score).unwrap();
        let got = scores(gpu, &pool, score).unwrap();
        for n in 0..shape.n {
            let err = (got[n] - want[n]).abs();
            worst = worst.max(err / tol);
            assert!(
                err <= tol,
                "{shape:?} {score:?} point {n}: {} vs {} (tolerance {tol:e})",
                got[n],
                want[n]
            );
        }
    }
    let (h, eh) = entropies(&Scalar, &lp).unwrap();
    let (gh, geh) = entropies(gpu, &pool).unwrap();
    for n in 0..shape.n {
        assert!(
            (gh[n] - h[n]).abs() <= tol && (geh[n] - eh[n]).abs() <= tol,
            "{shape:?} entropies of point {n}: ({}, {}) vs ({}, {})",
            gh[n],
            geh[n],
            h[n],
            eh[n]
        );
    }
    worst
}
