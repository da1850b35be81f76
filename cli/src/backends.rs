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
    fn run<B: Backend>(self, backend: &B) -> Result<Self::Out, String>;
}

/// Runs `job` on the chosen backend; returns its output and the backend's name.
pub fn dispatch<J: OnBackend>(
    choice: BackendChoice,
    job: J,
) -> Result<(J::Out, &'static str), String> {
    match choice {
        BackendChoice::Scalar => Ok((job.run(&Scalar)?, "scalar")),
        BackendChoice::Cpu => Ok((job.run(&SimdBackend::new())?, "cpu-simd")),
        BackendChoice::Cuda => {
            let gpu = CudaBackend::new(0).map_err(|e| format!("--backend cuda: {e}"))?;
            Ok((job.run(&gpu)?, "cuda"))
        }
        BackendChoice::Auto => match CudaBackend::new(0) {
            Ok(gpu) => Ok((job.run(&gpu)?, "cuda")),
            Err(_) => Ok((job.run(&SimdBackend::new())?, "cpu-simd")),
        },
    }
}
