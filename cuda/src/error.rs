//! The one error type of bald-cuda.

use core::fmt;

/// Everything that can go wrong on the CUDA backend. No path panics: a missing driver, a
/// missing GPU or NVRTC, a failed compile or launch, and bad input all come back as one of these.
#[derive(Debug)]
pub enum CudaError {
    /// libcuda (the driver) could not be loaded: no NVIDIA driver on this machine.
    NoDriver,
    /// libnvrtc could not be loaded (kernels are compiled at first use).
    NoNvrtc,
    /// The driver is present but there is no GPU with this ordinal.
    NoDevice {
        /// The ordinal asked for.
        ordinal: usize,
        /// GPUs the driver reports.
        count: usize,
    },
    /// A CUDA driver call failed.
    Driver {
        /// What was being done (`"launch scores_f32"`, `"upload pool"`, ...).
        during: String,
        /// The driver's error.
        message: String,
    },
    /// NVRTC rejected a module.
    Compile {
        /// The module (`.cu` file).
        module: &'static str,
        /// The kernels that module defines.
        kernels: Vec<&'static str>,
        /// Target architecture (`sm_90`, ...).
        arch: String,
        /// NVRTC's log.
        log: String,
    },
    /// bald-core's input checks refused the input.
    Input(bald_core::Error),
    /// The input is valid but outside what the kernels handle.
    Unsupported {
        /// What is too large.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaError::NoDriver => write!(
                f,
                "no CUDA driver found (libcuda could not be loaded); use a CPU backend"
            ),
            CudaError::NoNvrtc => write!(
                f,
                "NVRTC not found (libnvrtc.so.13 could not be loaded): install the CUDA 13 \
                 toolkit or the nvidia-cuda-nvrtc wheel and add its lib folder to LD_LIBRARY_PATH"
            ),
            CudaError::NoDevice { ordinal, count } => {
                write!(
                    f,
                    "no GPU with ordinal {ordinal} (the driver reports {count})"
                )
            }
            CudaError::Driver { during, message } => {
                write!(f, "CUDA driver error during {during}: {message}")
            }
            CudaError::Compile {
                module,
                kernels,
                arch,
                log,
            } => write!(
                f,
                "NVRTC failed to compile {module}.cu (kernels {}) for {arch}:\n{log}",
                kernels.join(", ")
            ),
            CudaError::Input(e) => write!(f, "{e}"),
            CudaError::Unsupported { what, reason } => write!(f, "unsupported {what}: {reason}"),
        }
    }
}

impl std::error::Error for CudaError {}

impl From<bald_core::Error> for CudaError {
    fn from(e: bald_core::Error) -> Self {
        CudaError::Input(e)
    }
}

/// Wraps a driver error with what was being done.
pub(crate) fn driver(
    during: impl Into<String>,
) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    let during = during.into();
    move |e| CudaError::Driver {
        during,
        message: format!("{e:?}"),
    }
}

/// `x` as a kernel's u32 argument, or an error naming it.
pub(crate) fn u32_of(what: &'static str, x: usize) -> Result<u32, CudaError> {
    u32::try_from(x).map_err(|_| CudaError::Unsupported {
        what,
        reason: format!("{x} does not fit the kernels' 32-bit counters"),
    })
}
