//! The GPU the device tests share.

use std::sync::OnceLock;

use bald_cuda::CudaBackend;

use crate::skip::skipped;

/// The GPU backend, or None, the test then said to be skipped.
pub fn gpu() -> Option<&'static CudaBackend> {
    static GPU: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    match GPU.get_or_init(|| CudaBackend::new(0).map_err(|e| e.to_string())) {
        Ok(b) => Some(b),
        Err(e) => {
            skipped(&format!(
                "the GPU tests of this binary pass without checking: no usable GPU ({e})"
            ));
            None
        }
    }
}

/// The GPU backend with its joint-entropy steps on tensor cores, or None (skipped).
pub fn gpu_tc() -> Option<&'static CudaBackend> {
    static GPU: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    let opened = GPU.get_or_init(|| {
        CudaBackend::new(0)
            .map(|b| b.with_tensor_cores(true))
            .map_err(|e| e.to_string())
    });
    match opened {
        Ok(b) => Some(b),
        Err(e) => {
            skipped(&format!(
                "the tensor-core tests of this binary pass without checking: no usable GPU ({e})"
            ));
            None
        }
    }
}
