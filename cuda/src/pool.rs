//! Pools on the device: the storage the kernels read, uploaded whole when it fits in the
//! memory budget, else streamed chunk by chunk through one reused buffer by every pass.
//!
//! f32 and the f16 / bf16 bits are uploaded straight from the caller's slice (no host copy);
//! f64 pools are rounded to f32 through a bounded host staging buffer.
//!
//! A pool that is in device memory already (a CUDA tensor handed over through DLPack) is read
//! in place: [`CudaBackend::pool_on_device`] validates it there and never copies it to the host.

use core::marker::PhantomData;
use core::ops::Range;
use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bald_core::half::slice::HalfFloatSliceExt;
use bald_core::{Element, ElementSlice, Error, LogProbs, PreparedPool, Shape};
use bald_kernels::Kernel;
use cudarc::driver::{sys, CudaSlice, LaunchArgs, LaunchConfig, PushKernelArg};

use crate::backend::NULL;
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

    /// The score kernel for this storage, loads grouped or not.
    pub(crate) fn scores_kernel(&self, grouped: bool) -> Kernel {
        match (self, grouped) {
            (DeviceData::F32(_), false) => Kernel::ScoresF32,
            (DeviceData::F16(_), false) => Kernel::ScoresF16,
            (DeviceData::Bf16(_), false) => Kernel::ScoresBf16,
            (DeviceData::F32(_), true) => Kernel::ScoresGroupedF32,
            (DeviceData::F16(_), true) => Kernel::ScoresGroupedF16,
            (DeviceData::Bf16(_), true) => Kernel::ScoresGroupedBf16,
        }
    }

    /// The joint-entropy kernel for this storage, on tensor cores or not.
    pub(crate) fn joint_kernel(&self, tensor_cores: bool) -> Kernel {
        match (self, tensor_cores) {
            (DeviceData::F32(_), false) => Kernel::JointEntropyF32,
            (DeviceData::F16(_), false) => Kernel::JointEntropyF16,
            (DeviceData::Bf16(_), false) => Kernel::JointEntropyBf16,
            (DeviceData::F32(_), true) => Kernel::JointEntropyTcF32,
            (DeviceData::F16(_), true) => Kernel::JointEntropyTcF16,
            (DeviceData::Bf16(_), true) => Kernel::JointEntropyTcBf16,
        }
    }

    /// Pushes the data as a kernel's pointer argument.
    pub(crate) fn push_arg<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        match self {
            DeviceData::F32(s) => b.arg(s),
            DeviceData::F16(s) | DeviceData::Bf16(s) => b.arg(s),
        };
    }

    /// Copies the elements `elems` of `host` to this buffer, from element `to` on: f32 storage
    /// through `be`'s pinned buffers when it has them and the copy fills one at least
    /// ([`CudaBackend::with_pinned_transfers`]), else straight from `host`.
    fn write<T: Element>(
        &mut self,
        be: &CudaBackend,
        host: &[T],
        elems: Range<usize>,
        to: usize,
    ) -> Result<(), CudaError> {
        let stream = &be.device.stream;
        let up = || driver("uploading the pool");
        let len = elems.len();
        let dst = to..to + len;
        let staged = be.staged() && len >= be.staging.floats;
        match (self, T::as_slice(host)) {
            (DeviceData::F32(d), ElementSlice::F32(s)) if staged => {
                be.upload_f32(&s[elems], |v| v, &mut d.slice_mut(dst), "the pool")?
            }
            (DeviceData::F32(d), ElementSlice::F64(s)) if staged => {
                be.upload_f32(&s[elems], |v| v as f32, &mut d.slice_mut(dst), "the pool")?
            }
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
/// Borrowed storage (a caller's device memory) is left allocated when it is dropped.
pub(crate) struct Resident {
    pub(crate) data: ManuallyDrop<DeviceData>,
    bytes: usize,
    ledger: Arc<AtomicUsize>,
    borrowed: bool,
}

impl Resident {
    fn new(be: &CudaBackend, data: DeviceData, bytes: usize, borrowed: bool) -> Resident {
        be.ledger.fetch_add(bytes, Ordering::Relaxed);
        Resident {
            data: ManuallyDrop::new(data),
            bytes,
            ledger: be.ledger.clone(),
            borrowed,
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.ledger.fetch_sub(self.bytes, Ordering::Relaxed);
        // SAFETY: taken once, here, and not used after; borrowed memory is the caller's (FFI).
        let data = unsafe { ManuallyDrop::take(&mut self.data) };
        if self.borrowed {
            match data {
                DeviceData::F32(s) => _ = s.leak(),
                DeviceData::F16(s) | DeviceData::Bf16(s) => _ = s.leak(),
            }
        }
    }
}

/// Where a pool's values are: the caller's host slice, or the caller's device memory at `ptr`
/// (read in place, never copied to the host).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a, T> {
    Host(LogProbs<'a, T>),
    Device {
        ptr: sys::CUdeviceptr,
        values: PhantomData<&'a [T]>,
    },
}

/// A pool prepared by [`CudaBackend`]: resident on the device when it fits the memory budget,
/// else streamed `chunk` points at a time by every pass (same results, more transfers). An
/// operation that needs the room of a resident pool (a large BatchBALD joint under a memory
/// cap) evicts it and streams from then on. A pool made by [`CudaBackend::pool_on_device`] is
/// always resident, and has no host data ([`PreparedPool::host`] is `None`).
pub struct CudaPool<'a, T: Element> {
    pub(crate) shape: Shape,
    pub(crate) source: Source<'a, T>,
    pub(crate) resident: Mutex<Option<Resident>>,
}

impl<'a, T: Element> PreparedPool<'a, T> for CudaPool<'a, T> {
    fn shape(&self) -> Shape {
        self.shape
    }

    fn host(&self) -> Option<LogProbs<'a, T>> {
        match self.source {
            Source::Host(lp) => Some(lp),
            Source::Device { .. } => None,
        }
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
        self.shape.k * self.shape.c * device_bytes::<T>()
    }

    /// The K x C values of point `n` (< N), as the caller gave them: from the host slice, or
    /// copied from the device.
    pub(crate) fn point(&self, be: &CudaBackend, n: usize) -> Result<Cow<'_, [T]>, CudaError> {
        let per = self.shape.k * self.shape.c;
        match self.source {
            Source::Host(lp) => Ok(Cow::Borrowed(lp.point(n))),
            Source::Device { ptr, .. } => {
                let mut out = vec![T::from_f64(0.0); per];
                // SAFETY: ptr holds the N K C values (pool_on_device's contract), n < N.
                unsafe { be.read_device(ptr, n * per, &mut out) }?;
                Ok(Cow::Owned(out))
            }
        }
    }
}

/// One operation's use of a pool: the pool locked for its duration (so that nothing evicts it
/// midway), run on the resident data or streamed in chunks of `chunk` points.
pub(crate) struct Pass<'p, 'a, T: Element> {
    source: Source<'a, T>,
    resident: MutexGuard<'p, Option<Resident>>,
    chunk: usize,
}

impl<'a, T: Element> Pass<'_, 'a, T> {
    /// The host data of a streamed pass (a pool on the device only is never streamed).
    fn host(&self) -> Result<LogProbs<'a, T>, CudaError> {
        match self.source {
            Source::Host(lp) => Ok(lp),
            Source::Device { .. } => Err(CudaError::Unsupported {
                what: "a pool on the device",
                reason: "it cannot be streamed from the host".into(),
            }),
        }
    }

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
        let mut data = DeviceData::alloc::<T>(self, elems)?;
        data.write(self, host.data(), 0..elems, 0)?;
        Ok(Some(Resident::new(self, data, bytes, false)))
    }

    /// A pool that is in this GPU's memory already, read in place: the N x K x C values of
    /// `T` (row-major) at device address `ptr`, as a DLPack tensor hands them over (a torch
    /// CUDA tensor). Waits for the context's pending work (the producer's kernels), checks that
    /// the values lie in device memory of this GPU, and validates them on the device, with the
    /// errors of [`LogProbs::new`] and its first offending (n, k, c): a row the device finds
    /// suspect is checked on the host, which reads the values from there on, not before. f32,
    /// f16 and bf16 values are then read where they are; f64 values are rounded to f32 into a
    /// buffer of the pool's size on the device, as [`bald_core::Backend::prepare`] does on
    /// upload. Nothing of the pool is copied to the host but the chosen points (K x C values
    /// each) and, for an invalid pool, the values from the first suspect row on.
    ///
    /// # Safety
    /// `ptr` must be the address of `shape`'s N K C values of `T` in device memory that stays
    /// allocated, and is not written, while the pool lives.
    pub unsafe fn pool_on_device<'a, T: Element>(
        &self,
        ptr: u64,
        shape: Shape,
    ) -> Result<CudaPool<'a, T>, CudaError> {
        let elems = shape.elements()?;
        u32_of("N", shape.n)?;
        let size = core::mem::size_of::<T>();
        let bytes = elems.checked_mul(size).ok_or(Error::ShapeOverflow)?;
        if !ptr.is_multiple_of(size as u64) {
            return Err(CudaError::NotOnDevice {
                reason: format!("address {ptr:#x} is not aligned to its {size}-byte values"),
            });
        }
        // The producer's kernels may still be writing the values (any stream of the context).
        self.device
            .ctx
            .synchronize()
            .map_err(driver("waiting for the pool's producer"))?;
        let last = ptr
            .checked_add(bytes as u64 - 1)
            .ok_or_else(|| CudaError::NotOnDevice {
                reason: format!("{bytes} bytes from address {ptr:#x} pass the end of memory"),
            })?;
        for at in [ptr, last] {
            self.check_device_address(at)?;
        }
        let (first_bad, converted) = self.validate_on_device::<T>(ptr, shape)?;
        if let Some(row) = first_bad {
            self.check_on_host::<T>(ptr, shape, row / shape.k)?;
        }
        let stream = &self.device.stream;
        let (data, owned, borrowed) = match (T::as_slice(&[]), converted) {
            (_, Some(f32s)) => (DeviceData::F32(f32s), elems * 4, false),
            // SAFETY: FFI memory (the caller's, per this function's contract); leaked, not
            // freed, when the pool is dropped (Resident::drop).
            (ElementSlice::F32(_), None) => {
                let s = unsafe { stream.upgrade_device_ptr::<f32>(ptr, elems) };
                (DeviceData::F32(s), 0, true)
            }
            // SAFETY: as above, the 16-bit values as their bits.
            (ElementSlice::F16(_), None) => {
                let s = unsafe { stream.upgrade_device_ptr::<u16>(ptr, elems) };
                (DeviceData::F16(s), 0, true)
            }
            // SAFETY: as above.
            (ElementSlice::Bf16(_), None) => {
                let s = unsafe { stream.upgrade_device_ptr::<u16>(ptr, elems) };
                (DeviceData::Bf16(s), 0, true)
            }
            (ElementSlice::F64(_), None) => {
                return Err(CudaError::Unsupported {
                    what: "a pool on the device",
                    reason: "f64 values were not converted".into(),
                })
            }
        };
        Ok(CudaPool {
            shape,
            source: Source::Device {
                ptr,
                values: PhantomData,
            },
            resident: Mutex::new(Some(Resident::new(self, data, owned, borrowed))),
        })
    }

    /// Errors unless `address` is in device memory of this backend's GPU.
    fn check_device_address(&self, address: u64) -> Result<(), CudaError> {
        let mut kind = 0u32;
        let mut ordinal = -1i32;
        let attributes = [
            (
                sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                (&mut kind as *mut u32).cast(),
            ),
            (
                sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                (&mut ordinal as *mut i32).cast(),
            ),
        ];
        for (attribute, out) in attributes {
            // SAFETY: FFI query into a local of the attribute's type; any address is allowed.
            let r = unsafe { sys::cuPointerGetAttribute(out, attribute, address) };
            if r != sys::cudaError_enum::CUDA_SUCCESS {
                return Err(CudaError::NotOnDevice {
                    reason: format!("the driver does not know address {address:#x} ({r:?})"),
                });
            }
        }
        let device = sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as u32;
        if kind != device {
            return Err(CudaError::NotOnDevice {
                reason: format!("address {address:#x} is not device memory"),
            });
        }
        let ours = self.device.ctx.ordinal();
        if usize::try_from(ordinal).ok() != Some(ours) {
            return Err(CudaError::NotOnDevice {
                reason: format!("the values are on GPU {ordinal}, the backend runs on GPU {ours}"),
            });
        }
        Ok(())
    }

    /// Runs the `validate_*` kernel over the pool at `ptr`: the first suspect row (`None`:
    /// every row valid), and for f64 values their f32 rounding on the device.
    fn validate_on_device<T: Element>(
        &self,
        ptr: u64,
        shape: Shape,
    ) -> Result<(Option<usize>, Option<CudaSlice<f32>>), CudaError> {
        let elems = shape.elements()?;
        let kernel = match T::as_slice(&[]) {
            ElementSlice::F32(_) => Kernel::ValidateF32,
            ElementSlice::F16(_) => Kernel::ValidateF16,
            ElementSlice::Bf16(_) => Kernel::ValidateBf16,
            ElementSlice::F64(_) => Kernel::ValidateF64,
        };
        let mut converted = match kernel {
            Kernel::ValidateF64 => {
                let bytes = elems.checked_mul(4).ok_or(Error::ShapeOverflow)?;
                let available = self.available()?;
                if bytes > available {
                    return Err(CudaError::DeviceMemory {
                        what: "the f32 copy of an f64 pool",
                        needed: bytes,
                        available,
                    });
                }
                Some(self.uninit::<f32>(elems, "the f32 copy of an f64 pool")?)
            }
            _ => None,
        };
        let rows = (shape.n * shape.k) as u64;
        let c32 = u32_of("C", shape.c)?;
        // A hair inside the host's tolerance: the device's exp and log differ from the host's
        // by an ulp or two, and a row near the edge is left to the host.
        let tol = T::NORM_TOLERANCE * (1.0 - 1e-9);
        let stream = &self.device.stream;
        let mut first = stream
            .clone_htod(&[u64::MAX])
            .map_err(driver("uploading the validation flag"))?;
        let f = self.device.function(kernel)?;
        let blocks = u32_of("grid", (shape.n * shape.k).div_ceil(256).min(4096))?;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: arguments match validate_* in scores.cu; ptr holds rows x C values of T
        // (checked to be device memory), first one u64, converted rows x C f32s or NULL.
        unsafe {
            self.device.launch(&f, kernel, cfg, |b| {
                b.arg(&ptr).arg(&rows).arg(&c32).arg(&tol).arg(&mut first);
                match converted.as_mut() {
                    Some(out) => b.arg(out),
                    None => b.arg(&NULL),
                };
            })
        }?;
        let mut row = [0u64];
        self.download(&first, &mut row, "the validation flag")?;
        let row = (row[0] != u64::MAX).then(|| row[0] as usize);
        Ok((row, converted))
    }

    /// [`LogProbs::new`]'s check of the pool at `ptr` from point `from` on, reading it in
    /// bounded chunks: its error, with the point counted from the pool's start.
    fn check_on_host<T: Element>(
        &self,
        ptr: u64,
        shape: Shape,
        from: usize,
    ) -> Result<(), CudaError> {
        let per = shape.k * shape.c;
        let chunk = (F64_STAGING / per).max(1);
        let mut buf = vec![T::from_f64(0.0); chunk.min(shape.n - from) * per];
        for start in (from..shape.n).step_by(chunk) {
            let points = chunk.min(shape.n - start);
            let values = &mut buf[..points * per];
            // SAFETY: ptr holds the N K C values (pool_on_device's contract; the first and
            // last byte checked to be device memory), and start + points <= N.
            unsafe { self.read_device(ptr, start * per, values) }?;
            LogProbs::new(values, Shape::new(points, shape.k, shape.c))
                .map_err(|e| CudaError::Input(offset_point(e, start)))?;
        }
        Ok(())
    }

    /// Copies `out.len()` values of `T` from element `at` of the device array at `ptr`, after
    /// the backend's pending work (the Python package reads the offending row of a pool on the
    /// device this way, to name the input kind it looks like).
    ///
    /// # Safety
    /// Elements `at..at + out.len()` of `ptr` must be device memory holding values of `T`.
    pub unsafe fn read_device<T: Copy>(
        &self,
        ptr: u64,
        at: usize,
        out: &mut [T],
    ) -> Result<(), CudaError> {
        self.device.sync()?;
        let from = ptr + (at * core::mem::size_of::<T>()) as u64;
        // SAFETY: FFI copy into `out`, of memory the caller vouches for; sync bound the context.
        unsafe { cudarc::driver::result::memcpy_dtoh_sync(out, from) }
            .map_err(driver("reading the pool on the device"))
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
        let n = pool.shape.n;
        let mut resident = pool.lock();
        if resident.is_some() {
            let need = n
                .checked_mul(extra)
                .and_then(|e| e.checked_add(fixed))
                .unwrap_or(usize::MAX);
            let available = self.available()?;
            if need <= available {
                return Ok(Pass {
                    source: pool.source,
                    resident,
                    chunk: n,
                });
            }
            // A pool on the device only cannot be evicted: there is nothing to stream it from.
            if let Source::Device { .. } = pool.source {
                return Err(CudaError::DeviceMemory {
                    what,
                    needed: need,
                    available,
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
            source: pool.source,
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
        if let Some(resident) = pass.resident.as_ref() {
            return f(0..pass.chunk, &resident.data);
        }
        let host = pass.host()?;
        let shape = host.shape();
        let n = shape.n;
        let per = shape.k * shape.c;
        let mut data = DeviceData::alloc::<T>(self, pass.chunk * per)?;
        for start in (0..n).step_by(pass.chunk) {
            let range = start..(start + pass.chunk).min(n);
            // Stream order: the copy starts after the previous chunk's kernels.
            data.write(self, host.data(), range.start * per..range.end * per, 0)?;
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
        let host = pass.host()?;
        let shape = host.shape();
        let per = shape.k * shape.c;
        let mut data = DeviceData::alloc::<T>(self, candidates.len() * per)?;
        for (j, &i) in candidates.iter().enumerate() {
            data.write(self, host.data(), i * per..(i + 1) * per, j * per)?;
        }
        f(&data, None)
    }
}

/// `e` for a check that started at point `start`: its point counted from the pool's start.
fn offset_point(e: Error, start: usize) -> Error {
    match e {
        Error::NotANumber { n, k, c } => Error::NotANumber { n: n + start, k, c },
        Error::Infinite { n, k, c } => Error::Infinite { n: n + start, k, c },
        Error::NotNormalised {
            n,
            k,
            log_sum,
            tolerance,
        } => Error::NotNormalised {
            n: n + start,
            k,
            log_sum,
            tolerance,
        },
        e => e,
    }
}
