//! bald-cuda: bald's [`Backend`](bald_core::Backend) on NVIDIA GPUs, with the hand-written kernels of
//! `bald-kernels` compiled by NVRTC at first use for the device's own architecture.
//!
//! - Nothing CUDA is linked: cudarc loads libcuda and libnvrtc at run time. [`CudaBackend::new`]
//!   probes for both first and returns [`CudaError::NoDriver`], [`CudaError::NoNvrtc`] or
//!   [`CudaError::NoDevice`] on machines without them; no path panics there.
//! - Modules are compiled to a CUBIN for the device's `sm_XX` (the PTX is the fallback, for
//!   an architecture NVRTC cannot build machine code for) and kept in an on-disk cache
//!   (`$BALD_KERNEL_CACHE`, else the user's cache folder), so NVRTC runs once per source,
//!   architecture and NVRTC version, not once per process.
//! - The pool is uploaded once by [`Backend::prepare`](bald_core::Backend::prepare) (f32, or f16/bf16 bits; f64 pools are
//!   rounded to f32) and stays on the device; BatchBALD runs every greedy step there, the joint
//!   included: full greedy brings back only the picks and their scores, lazy greedy the scores
//!   of each block of candidates, which it gathers on the device by index.
//! - Memory: every operation plans all of its device buffers against the budget (free device
//!   memory, capped by [`CudaBackend::with_memory_limit`]); a pool that does not fit beside them
//!   is streamed in chunks of points by every pass, with the same results.
//! - Dropout masks come from the same Philox stream as bald-core, bit for bit.
//! - Three switches, off by default, wait for a GPU run to confirm them (cuda/BENCHMARKS.md
//!   has their checks and predictions): [`CudaBackend::with_tensor_cores`] (the joint step in
//!   3xTF32), [`CudaBackend::with_grouped_scores`] (score kernels with more loads in flight)
//!   and [`CudaBackend::with_pinned_transfers`] (pinned staging buffers, and the MC-dropout
//!   head pipelined over three streams).
//!
//! Accuracy: probabilities and the joint-entropy products are f32 (sums over K blocked, sums
//! over rows f64); the budgets of `bald_core::budget` apply as to the CPU backends.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod backend;
mod cache;
mod device;
mod error;
mod greedy;
mod head;
mod pool;
#[doc(hidden)]
pub mod testing;
mod transfer;

pub use backend::CudaBackend;
pub use cache::{ImageKind, KERNEL_CACHE_ENV};
pub use device::{
    compile, driver_present, driver_version, nvrtc_present, nvrtc_version, ptx_text, Compiled,
    LoadedImage,
};
pub use error::{CudaError, LoadFailure};
pub use pool::CudaPool;
