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
    /// The driver refused both the CUBIN and the PTX of a module, typically because NVRTC is
    /// newer than the driver (its PTX version is one the driver does not know).
    Load(Box<LoadFailure>),
    /// A kernel failed at launch or while it ran (found at the next synchronisation).
    Kernel {
        /// The kernels launched since the last synchronisation, the last first: the fault is in
        /// one of them (only the first when the launch itself failed).
        kernels: Vec<&'static str>,
        /// The driver's error.
        message: String,
    },
    /// The device memory the backend may use (free memory, or the cap of
    /// [`CudaBackend::with_memory_limit`](crate::CudaBackend::with_memory_limit)) is too small.
    DeviceMemory {
        /// What needed it.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A BatchBALD step found no candidate with a comparable score (every score NaN): a
    /// numerical fault on the device, reported instead of a pick.
    NoCandidate {
        /// The greedy step (0-based).
        step: usize,
    },
    /// bald-core's input checks refused the input.
    Input(bald_core::Error),
    /// A pool handed over on the device ([`CudaBackend::pool_on_device`](crate::CudaBackend::pool_on_device))
    /// is not in this GPU's memory, or not aligned.
    NotOnDevice {
        /// Why.
        reason: String,
    },
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
            CudaError::Load(l) => write!(
                f,
                "the CUDA driver (CUDA {}.{}) could not load {}.cu (kernels {}) compiled by \
                 NVRTC {}.{} for {}: CUBIN: {}; PTX: {}. A PTX or CUBIN newer than the driver \
                 is refused: update the driver, or use an NVRTC no newer than CUDA {}.{}",
                l.driver.0,
                l.driver.1,
                l.module,
                l.kernels.join(", "),
                l.nvrtc.0,
                l.nvrtc.1,
                l.arch,
                l.cubin,
                l.ptx,
                l.driver.0,
                l.driver.1
            ),
            CudaError::Kernel { kernels, message } => {
                let which = match kernels.as_slice() {
                    [one] => format!("kernel {one}"),
                    many => format!("one of the kernels {} (set CUDA_LAUNCH_BLOCKING=1 to tell which)", many.join(", ")),
                };
                write!(f, "{which} failed: {message}")
            }
            CudaError::DeviceMemory {
                what,
                needed,
                available,
            } => write!(
                f,
                "not enough device memory for {what}: {needed} bytes needed, {available} available (free memory, or the backend's memory limit)"
            ),
            CudaError::NoCandidate { step } => write!(
                f,
                "BatchBALD step {step}: every candidate's score is NaN (a numerical fault on the device); no pick is made"
            ),
            CudaError::Input(e) => write!(f, "{e}"),
            CudaError::NotOnDevice { reason } => {
                write!(f, "the pool is not in this GPU's memory: {reason}")
            }
            CudaError::Unsupported { what, reason } => write!(f, "unsupported {what}: {reason}"),
        }
    }
}

impl std::error::Error for CudaError {}

/// Why a module could not be loaded ([`CudaError::Load`]).
#[derive(Debug)]
pub struct LoadFailure {
    /// The module (`.cu` file).
    pub module: &'static str,
    /// The kernels that module defines.
    pub kernels: Vec<&'static str>,
    /// The device's architecture (`sm_90`, ...).
    pub arch: String,
    /// NVRTC's version (major, minor).
    pub nvrtc: (i32, i32),
    /// The CUDA version the driver supports (major, minor).
    pub driver: (i32, i32),
    /// Why the CUBIN was not loaded.
    pub cubin: String,
    /// Why the PTX was not loaded.
    pub ptx: String,
}

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
