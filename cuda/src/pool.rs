//! Pools on the device: the storage the kernels read, uploaded whole when it fits in the
//! memory budget, else streamed chunk by chunk through one reused buffer by every pass.
//!
//! f32 and the f16 / bf16 bits are uploaded straight from the caller's slice (no host copy);
//! f64 pools are rounded to f32 through a bounded host staging buffer.

use core::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bald_core::half::slice::HalfFloatSliceExt;
use bald_core::{Element, ElementSlice, LogProbs, PreparedPool};
use bald_kernels::Kernel;
use cudarc::driver::{CudaSlice, CudaStream, LaunchArgs, PushKernelArg};

use crate::error::{driver, u32_of, CudaError};
use crate::CudaBackend;

/// f64 elements converted to f32 per host staging step (4 MiB of f32).
const F64_STAGING: usize = 1 << 20;

/// Log-probs on the device: f32 (f64 pools are rounded to f32), or the bits of f16 / bf16.
pub(crate) enum DeviceData {
    F32(CudaSlice<f32>),
    F16(CudaSlice<u16>),
    Bf16(CudaSlice<u16>),
}

impl DeviceData {
    /// A buffer for `len` elements of `T`'s device type, written by [`DeviceData::write`]
    /// before a kernel reads it (the kernels read only the points of the chunk just uploaded).
    fn alloc<T: Element>(be: &CudaBackend, len: usize) -> Result<Self, CudaError> {
        let what = "pool storage";
        Ok(match T::as_slice(&[]) {
            ElementSlice::F64(_) | ElementSlice::F32(_) => DeviceData::F32(be.uninit(len, what)?),
            ElementSlice::F16(_) => DeviceData::F16(be.uninit(len, what)?),
            ElementSlice::Bf16(_) => DeviceData::Bf16(be.uninit(len, what)?),
        })
    }

    pub(crate) fn scores_kernel(&self) -> Kernel {
        match self {
            DeviceData::F32(_) => Kernel::ScoresF32,
            DeviceData::F16(_) => Kernel::ScoresF16,
            DeviceData::Bf16(_) => Kernel::ScoresBf16,
        }
    }

    pub(crate) fn joint_kernel(&self) -> Kernel {
        match self {
            DeviceData::F32(_) => Kernel::JointEntropyF32,
            DeviceData::F16(_) => Kernel::JointEntropyF16,
            DeviceData::Bf16(_) => Kernel::JointEntropyBf16,
        }
    }

    /// Pushes the data as a kernel's pointer argument.
    pub(crate) fn push_arg<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        match self {
            DeviceData::F32(s) => b.arg(s),
            DeviceData::F16(s) | DeviceData::Bf16(s) => b.arg(s),
        };
    }

    /// Copies the elements `elems` of `host` to this buffer, from element `to` on.
    fn write<T: Element>(
        &mut self,
        stream: &Arc<CudaStream>,
        host: &[T],
        elems: Range<usize>,
        to: usize,
    ) -> Result<(), CudaError> {
        let up = || driver("uploading the pool");
        let len = elems.len();
        let dst = to..to + len;
        match (self, T::as_slice(host)) {
            (DeviceData::F32(d), ElementSlice::F32(s)) => stream
                .memcpy_htod(&s[elems], &mut d.slice_mut(dst))
                .map_err(up())?,
            (DeviceData::F32(d), ElementSlice::F64(s)) => {
                let mut staging = vec![0.0f32; len.min(F64_STAGING)];
                for at in (0..len).step_by(F64_STAGING) {
                    let part = &s[elems.start + at..elems.start + (at + F64_STAGING).min(len)];
                    let buf = &mut staging[..part.len()];
                    for (o, &v) in buf.iter_mut().zip(part) {
                        *o = v as f32;
                    }
                    let mut view = d.slice_mut(to + at..to + at + part.len());
                    stream.memcpy_htod(&*buf, &mut view).map_err(up())?;
                    // The staging buffer is reused: the copy must have read it.
                    stream.synchronize().map_err(up())?;
                }
            }
            (DeviceData::F16(d), ElementSlice::F16(s)) => stream
                .memcpy_htod(s[elems].reinterpret_cast(), &mut d.slice_mut(dst))
                .map_err(up())?,
            (DeviceData::Bf16(d), ElementSlice::Bf16(s)) => stream
                .memcpy_htod(s[elems].reinterpret_cast(), &mut d.slice_mut(dst))
                .map_err(up())?,
            _ => {
                return Err(CudaError::Unsupported {
                    what: "pool storage",
                    reason: "the element type does not match the device buffer".into(),
                })
            }
        }
        Ok(())
    }
}

/// Bytes one element takes on the device.
pub(crate) fn device_bytes<T: Element>() -> usize {
    match T::as_slice(&[]) {
        ElementSlice::F64(_) | ElementSlice::F32(_) => 4,
        ElementSlice::F16(_) | ElementSlice::Bf16(_) => 2,
    }
}

/// A resident pool's storage, with its bytes counted in the backend's ledger while it lives.
pub(crate) struct Resident {
    pub(crate) data: DeviceData,
    bytes: usize,
    ledger: Arc<AtomicUsize>,
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.ledger.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A pool prepared by [`CudaBackend`]: resident on the device when it fits the memory budget,
/// else streamed `chunk` points at a time by every pass (same results, more transfers). An
/// operation that needs the room of a resident pool (a large BatchBALD joint under a memory
/// cap) evicts it and streams from then on.
pub struct CudaPool<'a, T: Element> {
    pub(crate) host: LogProbs<'a, T>,
    pub(crate) resident: Mutex<Option<Resident>>,
}

impl<'a, T: Element> PreparedPool<'a, T> for CudaPool<'a, T> {
    fn log_probs(&self) -> LogProbs<'a, T> {
        self.host
    }
}

impl<T: Element> CudaPool<'_, T> {
    /// Whether the whole pool is on the device.
    pub fn is_resident(&self) -> bool {
        self.lock().is_some()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Resident>> {
        self.resident.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Device bytes per point.
    pub(crate) fn point_bytes(&self) -> usize {
        let shape = self.host.shape();
        shape.k * shape.c * device_bytes::<T>()
    }
}

/// One operation's use of a pool: the pool locked for its duration (so that nothing evicts it
/// midway), run on the resident data or streamed in chunks of `chunk` points.
pub(crate) struct Pass<'p, 'a, T: Element> {
    host: LogProbs<'a, T>,
    resident: MutexGuard<'p, Option<Resident>>,
    chunk: usize,
}

impl<T: Element> Pass<'_, '_, T> {
    /// Points processed at once (N when resident).
    pub(crate) fn chunk(&self) -> usize {
        self.chunk
    }
}

impl CudaBackend {
    /// Uploads the whole pool (counted in the ledger), or `None` when it does not fit beside
    /// `reserve` bytes of outputs.
    pub(crate) fn upload_resident<T: Element>(
        &self,
        host: &LogProbs<'_, T>,
        reserve: usize,
    ) -> Result<Option<Resident>, CudaError> {
        let shape = host.shape();
        let elems = shape.elements()?;
        let bytes = elems
            .checked_mul(device_bytes::<T>())
            .ok_or(bald_core::Error::ShapeOverflow)?;
        if bytes.saturating_add(reserve) > self.available()? {
            return Ok(None);
        }
        let stream = &self.device.stream;
        let mut data = DeviceData::alloc::<T>(self, elems)?;
        data.write(stream, host.data(), 0..elems, 0)?;
        self.ledger.fetch_add(bytes, Ordering::Relaxed);
        Ok(Some(Resident {
            data,
            bytes,
            ledger: self.ledger.clone(),
        }))
    }

    /// Plans an operation over `pool` that needs `fixed` device bytes of its own plus `extra`
    /// per point processed at once: on the resident pool when all of it fits beside it, else
    /// (evicting a resident pool) in the largest chunks that fit.
    pub(crate) fn plan<'p, 'a, T: Element>(
        &self,
        pool: &'p CudaPool<'a, T>,
        what: &'static str,
        fixed: usize,
        extra: usize,
    ) -> Result<Pass<'p, 'a, T>, CudaError> {
        let n = pool.host.shape().n;
        let mut resident = pool.lock();
        if resident.is_some() {
            let need = n
                .checked_mul(extra)
                .and_then(|e| e.checked_add(fixed))
                .unwrap_or(usize::MAX);
            if need <= self.available()? {
                return Ok(Pass {
                    host: pool.host,
                    resident,
                    chunk: n,
                });
            }
            *resident = None;
            self.device.sync()?;
        }
        let per_point = pool.point_bytes().saturating_add(extra);
        let available = self.available()?;
        let chunk = available.saturating_sub(fixed) / per_point.max(1);
        if chunk == 0 {
            return Err(CudaError::DeviceMemory {
                what,
                needed: fixed.saturating_add(per_point),
                available,
            });
        }
        Ok(Pass {
            host: pool.host,
            resident,
            chunk: chunk.min(n),
        })
    }

    /// Calls `f` with each range of points and its data on the device: the resident data once,
    /// or each chunk in turn, uploaded into one buffer reused by every chunk.
    pub(crate) fn for_each_chunk<T: Element>(
        &self,
        pass: &Pass<'_, '_, T>,
        mut f: impl FnMut(Range<usize>, &DeviceData) -> Result<(), CudaError>,
    ) -> Result<(), CudaError> {
        let shape = pass.host.shape();
        let n = shape.n;
        if let Some(resident) = pass.resident.as_ref() {
            return f(0..n, &resident.data);
        }
        let per = shape.k * shape.c;
        let stream = &self.device.stream;
        let mut data = DeviceData::alloc::<T>(self, pass.chunk * per)?;
        for start in (0..n).step_by(pass.chunk) {
            let range = start..(start + pass.chunk).min(n);
            // Stream order: the copy starts after the previous chunk's kernels.
            data.write(
                stream,
                pass.host.data(),
                range.start * per..range.end * per,
                0,
            )?;
            f(range, &data)?;
        }
        Ok(())
    }

    /// Calls `f` with the data holding `candidates` (at most [`Pass::chunk`] of them) and the
    /// index list a kernel reads them by: the resident data with the list uploaded (gathered on
    /// the device), or, when the pool streams, the candidates' points copied in list order
    /// into a buffer of their own (no list).
    pub(crate) fn with_candidates<T: Element>(
        &self,
        pass: &Pass<'_, '_, T>,
        candidates: &[usize],
        f: impl FnOnce(&DeviceData, Option<&CudaSlice<u32>>) -> Result<(), CudaError>,
    ) -> Result<(), CudaError> {
        let stream = &self.device.stream;
        if let Some(resident) = pass.resident.as_ref() {
            let idx = candidates
                .iter()
                .map(|&i| u32_of("N", i))
                .collect::<Result<Vec<u32>, _>>()?;
            let mut dev = self.uninit::<u32>(idx.len(), "candidate indices")?;
            stream
                .memcpy_htod(&idx, &mut dev)
                .map_err(driver("uploading candidate indices"))?;
            return f(&resident.data, Some(&dev));
        }
        let shape = pass.host.shape();
        let per = shape.k * shape.c;
        let mut data = DeviceData::alloc::<T>(self, candidates.len() * per)?;
        for (j, &i) in candidates.iter().enumerate() {
            data.write(stream, pass.host.data(), i * per..(i + 1) * per, j * per)?;
        }
        f(&data, None)
    }
}
