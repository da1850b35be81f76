//! The GPU the device tests share.

use std::sync::OnceLock;

use bald_cuda::CudaBackend;

/// The GPU backend, or None with the reason printed (once per test).
pub fn gpu() -> Option<&'static CudaBackend> {
    static GPU: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    match GPU.get_or_init(|| CudaBackend::new(0).map_err(|e| e.to_string())) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipped: no usable GPU ({e})");
            None
        }
    }
}
