//! Where the work runs: [`Device`], and the one place that turns it into a backend.

use std::fmt;
use std::str::FromStr;

use bald_core::{Backend, Scalar};
#[cfg(feature = "cpu-simd")]
use bald_cpu_simd::SimdBackend;
#[cfg(feature = "cuda")]
use bald_cuda::CudaBackend;

use crate::error::{Error, Result};

/// Where a pool is scored and its batch picked.
///
/// ```
/// use bald::Device;
/// assert_eq!("cuda:1".parse::<Device>().unwrap(), Device::Cuda(1));
/// assert_eq!(Device::auto(), Device::Auto);
/// assert_eq!(Device::Cpu.to_string(), "cpu");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// CUDA GPU 0 when it is usable, else [`Device::Cpu`]; decided when the work starts.
    #[default]
    Auto,
    /// The scalar f64 reference backend: the oracle the others are tested against.
    Scalar,
    /// The SIMD CPU backend: the best instruction set this CPU has, on every core.
    Cpu,
    /// The CUDA backend on the GPU of this ordinal (an error without one).
    Cuda(usize),
}

impl Device {
    /// [`Device::Auto`]: CUDA when a GPU is usable, else the CPU.
    pub fn auto() -> Device {
        Device::Auto
    }

    /// The names [`FromStr`] takes (`cuda:N` picks GPU N).
    pub const NAMES: [&'static str; 4] = ["auto", "scalar", "cpu", "cuda"];

    /// What each of [`Device::NAMES`] means, for help texts.
    pub fn about(name: &str) -> &'static str {
        match name {
            "auto" => "CUDA when a GPU is usable, else the SIMD CPU backend",
            "scalar" => "the f64 scalar reference",
            "cpu" => "the SIMD CPU backend (best instruction set, all cores)",
            "cuda" => "the CUDA backend on GPU 0 (an error without one)",
            _ => "",
        }
    }

    /// Starts the backend, and runs `job` on it; returns what the job gives and the backend's
    /// name (`scalar`, `cpu` or `cuda`), the name it is chosen by. Generic work that needs the
    /// [`Backend`] itself (a custom pipeline around [`crate::acquire_on`]) goes through here.
    pub fn run<J: OnBackend>(self, job: J) -> Result<(J::Out, &'static str)> {
        Ok(self.engine()?.dispatch(job))
    }

    /// The backend this device stands for, started.
    pub(crate) fn engine(self) -> Result<Engine> {
        Ok(match self {
            Device::Scalar => Engine::Scalar(Scalar),
            Device::Cpu => Engine::cpu(),
            Device::Cuda(ordinal) => Engine::cuda(ordinal)?,
            Device::Auto => Engine::cuda(0).unwrap_or_else(|_| Engine::cpu()),
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Scalar => f.write_str("scalar"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(0) => f.write_str("cuda"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    /// `auto`, `scalar`, `cpu`, `cuda` or `cuda:N`, in any case.
    fn from_str(s: &str) -> Result<Device, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => Ok(Device::Auto),
            "scalar" => Ok(Device::Scalar),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| {
                    format!(
                        "unknown backend '{s}': one of {}, cuda:N",
                        Device::NAMES.join(", ")
                    )
                }),
        }
    }
}

/// Work that runs on any backend: see [`Device::run`].
pub trait OnBackend {
    /// What the work gives.
    type Out;
    /// Runs on `backend`.
    fn on<B: Backend>(self, backend: &B) -> Self::Out;
}

/// A started backend: the one match over the backends.
pub(crate) enum Engine {
    Scalar(Scalar),
    #[cfg(feature = "cpu-simd")]
    Cpu(SimdBackend),
    /// Boxed: the CUDA backend is far larger than the others.
    #[cfg(feature = "cuda")]
    Cuda(Box<CudaBackend>),
}

impl Engine {
    /// The CPU backend: SIMD when built in, else the scalar one.
    fn cpu() -> Engine {
        #[cfg(feature = "cpu-simd")]
        return Engine::Cpu(SimdBackend::new());
        #[cfg(not(feature = "cpu-simd"))]
        return Engine::Scalar(Scalar);
    }

    fn cuda(ordinal: usize) -> Result<Engine> {
        #[cfg(feature = "cuda")]
        return CudaBackend::new(ordinal)
            .map(|b| Engine::Cuda(Box::new(b)))
            .map_err(|e| Error::Unavailable {
                device: "cuda",
                reason: e.to_string(),
            });
        #[cfg(not(feature = "cuda"))]
        return Err(Error::Unavailable {
            device: "cuda",
            reason: format!("GPU {ordinal}: bald was built without its `cuda` feature"),
        });
    }

    /// Runs `job` on this backend; returns its output and the backend's name.
    pub(crate) fn dispatch<J: OnBackend>(&self, job: J) -> (J::Out, &'static str) {
        fn on<B: Backend, J: OnBackend>(b: &B, job: J) -> (J::Out, &'static str) {
            (job.on(b), b.name())
        }
        match self {
            Engine::Scalar(b) => on(b, job),
            #[cfg(feature = "cpu-simd")]
            Engine::Cpu(b) => on(b, job),
            #[cfg(feature = "cuda")]
            Engine::Cuda(b) => on(&**b, job),
        }
    }
}
