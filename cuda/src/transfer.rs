//! Host-device copies of f32 values through two pinned (page-locked) staging buffers per
//! direction, allocated at the first transfer and kept for the backend's life, when
//! [`CudaBackend::with_pinned_transfers`] asks for them (by default copies go straight from and
//! into the caller's memory, as measured on the H200).
//!
//! The H200 run measured where the MC-dropout head's host time goes: a download into fresh,
//! never-touched pages at 1.4 GB/s (the copy faults every page in) and a pageable upload at
//! 7.3 GB/s. Through pinned buffers the DMA runs at the link's rate, and the host's copy
//! between a pinned buffer and the caller's memory (which touches the pages) overlaps the
//! next chunk's DMA: a download issues chunk i into one buffer, then copies chunk i - 1 out of
//! the other while chunk i flies; an upload fills one buffer while the other's chunk flies.
//! Every chunk but the last (when it is short) is asynchronous; the buffers' events order the
//! reuse.

use std::sync::{Mutex, MutexGuard};

use cudarc::driver::{CudaView, CudaViewMut, PinnedHostSlice};

use crate::backend::CudaBackend;
use crate::error::{driver, CudaError};

/// The two pinned buffers of one direction (none until the first transfer).
#[derive(Default)]
pub(crate) struct Buffers(Mutex<Vec<PinnedHostSlice<f32>>>);

/// The pinned buffers of a backend: floats per buffer, and the buffers of each direction.
#[derive(Default)]
pub(crate) struct Staging {
    /// Floats per buffer; 0: transfers are not staged.
    pub(crate) floats: usize,
    down: Buffers,
    up: Buffers,
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

impl CudaBackend {
    /// The pinned buffers of `buffers` (allocated now at the first use; `write_combined` for
    /// buffers the host only writes).
    fn buffers<'b>(
        &self,
        buffers: &'b Buffers,
        write_combined: bool,
    ) -> Result<MutexGuard<'b, Vec<PinnedHostSlice<f32>>>, CudaError> {
        let mut guard = buffers.0.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_empty() {
            let floats = self.staging.floats;
            let flags = if write_combined {
                cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED
            } else {
                READ_BACK
            };
            let alloc = || -> Result<PinnedHostSlice<f32>, CudaError> {
                // SAFETY: FFI allocation of page-locked memory; every element is written (by a
                // copy from the device, or by the host) before it is read.
                unsafe {
                    self.device
                        .ctx
                        .alloc_pinned_with_flags::<f32>(floats, flags)
                }
                .map_err(driver("allocating pinned staging memory"))
            };
            *guard = vec![alloc()?, alloc()?];
        }
        Ok(guard)
    }

    /// Whether transfers go through the pinned buffers.
    pub(crate) fn staged(&self) -> bool {
        self.staging.floats > 0
    }

    /// Copies `src` (after the stream's work so far, whose faults it reports as
    /// [`crate::device`] does) to the host through the pinned buffers, handing each chunk to
    /// `sink` with its offset in `src`, in order; `what` names the values in errors.
    pub(crate) fn download_f32(
        &self,
        src: &CudaView<'_, f32>,
        mut sink: impl FnMut(usize, &[f32]),
        what: &str,
    ) -> Result<(), CudaError> {
        let stream = &self.device.stream;
        let err = || driver(format!("downloading {what}"));
        let len = src.len();
        self.device.sync()?;
        let mut guard = self.buffers(&self.staging.down, false)?;
        let bufs = &mut *guard;
        let chunk = self.staging.floats;
        // The chunk in flight in the other buffer: (buffer, offset, length).
        let mut pending: Option<(usize, usize, usize)> = None;
        for (i, start) in (0..len).step_by(chunk).enumerate() {
            let end = (start + chunk).min(len);
            let b = i % 2;
            let part = src.slice(start..end);
            if end - start == chunk {
                stream.memcpy_dtoh(&part, &mut bufs[b]).map_err(err())?;
            } else {
                // A short last chunk (a copy takes the host side's length): into part of the
                // buffer, a copy that completes here.
                let host = &mut bufs[b].as_mut_slice().map_err(err())?[..end - start];
                stream.memcpy_dtoh(&part, host).map_err(err())?;
            }
            if let Some((pb, at, n)) = pending.take() {
                sink(at, &bufs[pb].as_slice().map_err(err())?[..n]);
            }
            pending = Some((b, start, end - start));
        }
        if let Some((pb, at, n)) = pending {
            sink(at, &bufs[pb].as_slice().map_err(err())?[..n]);
        }
        self.device.sync()
    }

    /// Copies `src`, each value through `convert`, into `dst` (as long as `src`) through the
    /// pinned buffers, in stream order: kernels launched after it see the values. `what` names
    /// them in errors.
    pub(crate) fn upload_f32<S: Copy>(
        &self,
        src: &[S],
        convert: impl Fn(S) -> f32,
        dst: &mut CudaViewMut<'_, f32>,
        what: &str,
    ) -> Result<(), CudaError> {
        let stream = &self.device.stream;
        let err = || driver(format!("uploading {what}"));
        let len = src.len();
        let mut guard = self.buffers(&self.staging.up, true)?;
        let bufs = &mut *guard;
        let chunk = self.staging.floats;
        for (i, start) in (0..len).step_by(chunk).enumerate() {
            let end = (start + chunk).min(len);
            let buf = &mut bufs[i % 2];
            // Waits for the buffer's previous copy before it is written again.
            let host = buf.as_mut_slice().map_err(err())?;
            for (o, &v) in host.iter_mut().zip(&src[start..end]) {
                *o = convert(v);
            }
            let mut part = dst.slice_mut(start..end);
            if end - start == chunk {
                stream.memcpy_htod(&*buf, &mut part).map_err(err())?;
            } else {
                // A short last chunk: from part of the buffer, a copy that completes here.
                let host = buf.as_slice().map_err(err())?;
                stream
                    .memcpy_htod(&host[..end - start], &mut part)
                    .map_err(err())?;
            }
        }
        Ok(())
    }
}
