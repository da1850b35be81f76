//! Host-device copies of f32 values through two pinned (page-locked) staging buffers per
//! direction, allocated at the first transfer and kept for the backend's life, when
//! [`CudaBackend::with_pinned_transfers`] asks for them (by default copies go straight from and
//! into the caller's memory, as measured on the H200), and the two copy streams of the
//! MC-dropout head's pipeline (`head.rs`).
//!
//! The H200 run measured where the MC-dropout head's host time goes: a download into fresh,
//! never-touched pages at 1.4 GB/s (the copy faults every page in) and a pageable upload at
//! 7.3 GB/s. Through pinned buffers the DMA runs at the link's rate, and the host's copy
//! between a pinned buffer and the caller's memory (which touches the pages) overlaps the
//! DMA of the other buffer.
//!
//! Each buffer carries the event of the last copy that used it, and the host touches a buffer
//! only after that event: cudarc's own event on a pinned slice is recorded only once a
//! context has several streams, so it does not order a single stream's copies against the
//! host. A copy's length is that of the part of the buffer it names, so short chunks need no
//! special case.

use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{CudaEvent, CudaStream, CudaView, CudaViewMut, PinnedHostSlice};

use crate::backend::{mul, CudaBackend};
use crate::error::{driver, CudaError};

/// A pinned buffer of f32s and the event of the last copy from or into it.
pub(crate) struct Pinned {
    host: PinnedHostSlice<f32>,
    /// The last copy from or into the buffer.
    pub(crate) done: CudaEvent,
}

impl Pinned {
    /// The buffer's values, once its last copy has completed.
    pub(crate) fn values(&mut self, be: &CudaBackend) -> Result<&mut [f32], CudaError> {
        be.wait_for(&self.done, "a pinned staging buffer")?;
        self.host
            .as_mut_slice()
            .map_err(driver("reading a pinned staging buffer"))
    }

    /// Copies the buffer's first `dst.len()` values to `dst` on `stream` (asynchronously).
    pub(crate) fn send(
        &self,
        stream: &Arc<CudaStream>,
        dst: &mut CudaViewMut<'_, f32>,
        what: &str,
    ) -> Result<(), CudaError> {
        let err = || driver(format!("uploading {what}"));
        let len = dst.len();
        // The host wrote these values before this call (through `values`), so the slice is
        // complete; the copy reads it after this returns, and `done` guards the next write.
        let host = &self.host.as_slice().map_err(err())?[..len];
        stream.memcpy_htod(host, dst).map_err(err())?;
        self.done.record(stream).map_err(err())
    }

    /// Copies `src` into the buffer's first `src.len()` values on `stream` (asynchronously).
    pub(crate) fn fetch(
        &mut self,
        stream: &Arc<CudaStream>,
        src: &CudaView<'_, f32>,
        what: &str,
    ) -> Result<(), CudaError> {
        let err = || driver(format!("downloading {what}"));
        let host = &mut self.host.as_mut_slice().map_err(err())?[..src.len()];
        stream.memcpy_dtoh(src, host).map_err(err())?;
        self.done.record(stream).map_err(err())
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The memory is freed after this: no copy may still use it (best effort: a drop has
        // nowhere to report an error).
        let _ = self.done.synchronize();
    }
}

/// The pinned buffers of a backend and the head pipeline's copy streams.
#[derive(Default)]
pub(crate) struct Staging {
    /// Floats per buffer; 0: transfers are not staged.
    pub(crate) floats: usize,
    down: Mutex<Vec<Pinned>>,
    up: Mutex<Vec<Pinned>>,
    /// The upload and download streams, made at the first pipelined pass.
    streams: Mutex<Option<[Arc<CudaStream>; 2]>>,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("floats", &self.floats)
            .finish()
    }
}

impl Staging {
    /// Buffers of `floats` f32s (0: no staging), not allocated yet.
    pub(crate) fn new(floats: usize) -> Staging {
        Staging {
            floats,
            ..Staging::default()
        }
    }
}

/// Flags of the download buffers: plain page-locked memory, which the host reads fast
/// (write-combined memory, cudarc's default, is for buffers the host only writes).
const READ_BACK: u32 = 0;

/// The two buffers of one direction, locked for one transfer.
pub(crate) type Buffers<'b> = MutexGuard<'b, Vec<Pinned>>;

impl CudaBackend {
    /// The buffers of `buffers` (allocated now at the first use; `write_combined` for buffers
    /// the host only writes).
    fn buffers<'b>(
        &self,
        buffers: &'b Mutex<Vec<Pinned>>,
        write_combined: bool,
    ) -> Result<Buffers<'b>, CudaError> {
        let mut guard = buffers.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_empty() {
            let floats = self.staging.floats;
            // cudarc panics on a size that overflows: refuse it here.
            if mul(floats, 4).map_or(true, |bytes| bytes > isize::MAX as usize) {
                return Err(bald_core::Error::InvalidParameter {
                    name: "pinned_transfers",
                    reason: "the staging buffers' size overflows",
                }
                .into());
            }
            let flags = if write_combined {
                cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED
            } else {
                READ_BACK
            };
            let err = || driver("allocating pinned staging memory");
            let alloc = || -> Result<Pinned, CudaError> {
                // SAFETY: FFI allocation of page-locked memory; every element is written (by a
                // copy from the device, or by the host) before it is read.
                let host = unsafe {
                    self.device
                        .ctx
                        .alloc_pinned_with_flags::<f32>(floats, flags)
                }
                .map_err(err())?;
                let done = self.device.ctx.new_event(None).map_err(err())?;
                Ok(Pinned { host, done })
            };
            *guard = vec![alloc()?, alloc()?];
        }
        Ok(guard)
    }

    /// The upload buffers (write-combined) and the download buffers.
    pub(crate) fn pinned_buffers(&self) -> Result<(Buffers<'_>, Buffers<'_>), CudaError> {
        Ok((
            self.buffers(&self.staging.up, true)?,
            self.buffers(&self.staging.down, false)?,
        ))
    }

    /// The head pipeline's upload and download streams (made at the first call; from then on
    /// cudarc orders every device buffer's uses across streams by its events).
    pub(crate) fn copy_streams(&self) -> Result<[Arc<CudaStream>; 2], CudaError> {
        let mut guard = self
            .staging
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(streams) = &*guard {
            return Ok(streams.clone());
        }
        let fork = || {
            self.device
                .stream
                .fork()
                .map_err(driver("creating a copy stream"))
        };
        let streams = [fork()?, fork()?];
        *guard = Some(streams.clone());
        Ok(streams)
    }

    /// Waits on the host for `event`; a failure (a kernel's fault, seen by the event) is
    /// reported as [`crate::device`] reports faults, naming the kernels in flight.
    pub(crate) fn wait_for(&self, event: &CudaEvent, what: &str) -> Result<(), CudaError> {
        match event.synchronize() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.device.sync()?;
                Err(driver(format!("waiting for {what}"))(e))
            }
        }
    }

    /// Whether transfers go through the pinned buffers.
    pub(crate) fn staged(&self) -> bool {
        self.staging.floats > 0
    }

    /// Copies `src`, each value through `convert`, into `dst` (as long as `src`) through the
    /// pinned buffers, in stream order: kernels launched after it see the values. The host
    /// fills one buffer while the other's copy runs. `what` names the values in errors.
    pub(crate) fn upload_f32<S: Copy>(
        &self,
        src: &[S],
        convert: impl Fn(S) -> f32,
        dst: &mut CudaViewMut<'_, f32>,
        what: &str,
    ) -> Result<(), CudaError> {
        let mut bufs = self.buffers(&self.staging.up, true)?;
        let chunk = self.staging.floats;
        for (i, start) in (0..src.len()).step_by(chunk).enumerate() {
            let end = (start + chunk).min(src.len());
            let buf = &mut bufs[i % 2];
            let host = buf.values(self)?;
            for (o, &v) in host.iter_mut().zip(&src[start..end]) {
                *o = convert(v);
            }
            buf.send(&self.device.stream, &mut dst.slice_mut(start..end), what)?;
        }
        Ok(())
    }
}
