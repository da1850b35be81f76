//! Choosing a backend by name, and running generic work on it.

use bald_core::{Backend, Scalar};
use bald_cpu_simd::SimdBackend;
use bald_cuda::CudaBackend;
use clap::ValueEnum;

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// CUDA when a GPU is usable, else the SIMD CPU backend.
    Auto,
    /// The f64 scalar reference.
    Scalar,
    /// The SIMD CPU backend (best instruction set, all cores).
    Cpu,
    /// The CUDA backend on GPU 0 (an error without one).
    Cuda,
}

/// Work that runs on any backend.
pub trait OnBackend {
    /// What the work returns.
    type Out;
    /// Runs on `backend`; errors are reported as one line.
    fn on<B: Backend>(self, backend: &B) -> Result<Self::Out, String>;
}

/// Runs `job` on the chosen backend; returns its output and the backend's name (the name it is
/// chosen by: `scalar`, `cpu` or `cuda`).
pub fn dispatch<J: OnBackend>(
    choice: BackendChoice,
    job: J,
) -> Result<(J::Out, &'static str), String> {
    fn on<B: Backend, J: OnBackend>(b: &B, job: J) -> Result<(J::Out, &'static str), String> {
        Ok((job.on(b)?, b.name()))
    }
    match choice {
        BackendChoice::Scalar => on(&Scalar, job),
        BackendChoice::Cpu => on(&SimdBackend::new(), job),
        BackendChoice::Cuda => {
            let gpu = CudaBackend::new(0).map_err(|e| format!("--backend cuda: {e}"))?;
            on(&gpu, job)
        }
        BackendChoice::Auto => match CudaBackend::new(0) {
            Ok(gpu) => on(&gpu, job),
            Err(_) => on(&SimdBackend::new(), job),
        },
    }
}
