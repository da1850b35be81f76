//! The GPUs the device tests share: the default backend, one with its joint-entropy steps on
//! tensor cores, and one with grouped score kernels.

use std::sync::OnceLock;

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
