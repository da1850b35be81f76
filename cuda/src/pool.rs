//! Pools on the device: the storage the kernels read, uploaded whole when it fits in the
//! memory budget, else chunk by chunk for every pass.

use core::ops::Range;

use bald_core::{Element, ElementSlice, LogProbs, PreparedPool};
use bald_kernels::Kernel;
use cudarc::driver::{CudaSlice, LaunchArgs, PushKernelArg};

use crate::error::{driver, CudaError};
use crate::CudaBackend;

/// Log-probs on the device: f32 (f64 pools are rounded to f32), or the bits of f16 / bf16.
pub(crate) enum DeviceData {
    F32(CudaSlice<f32>),
    F16(CudaSlice<u16>),
    Bf16(CudaSlice<u16>),
}

impl DeviceData {
    pub(crate) fn scores_kernel(&self) -> Kernel {
        match self {
            DeviceData::F32(_) => Kernel::ScoresF32,
            DeviceData::F16(_) => Kernel::ScoresF16,
            DeviceData::Bf16(_) => Kernel::ScoresBf16,
        }
    }

    /// Pushes the data as a kernel's pointer argument.
    pub(crate) fn push_arg<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        match self {
            DeviceData::F32(s) => b.arg(s),
            DeviceData::F16(s) | DeviceData::Bf16(s) => b.arg(s),
        };
    }

    pub(crate) fn joint_kernel(&self) -> Kernel {
        match self {
            DeviceData::F32(_) => Kernel::JointEntropyF32,
            DeviceData::F16(_) => Kernel::JointEntropyF16,
            DeviceData::Bf16(_) => Kernel::JointEntropyBf16,
        }
    }
}

/// Bytes one element takes on the device.
pub(crate) fn device_bytes<T: Element>() -> usize {
    match T::as_slice(&[]) {
        ElementSlice::F64(_) | ElementSlice::F32(_) => 4,
        ElementSlice::F16(_) | ElementSlice::Bf16(_) => 2,
    }
}

/// A pool prepared by [`CudaBackend`]: resident on the device when it fits the memory budget,
/// else uploaded `chunk` points at a time by every pass (same results, more transfers).
pub struct CudaPool<'a, T: Element> {
    pub(crate) host: LogProbs<'a, T>,
    pub(crate) resident: Option<DeviceData>,
    pub(crate) chunk: usize,
}

impl<'a, T: Element> PreparedPool<'a, T> for CudaPool<'a, T> {
    fn log_probs(&self) -> LogProbs<'a, T> {
        self.host
    }
}

impl<T: Element> CudaPool<'_, T> {
    /// Whether the whole pool is on the device.
    pub fn is_resident(&self) -> bool {
        self.resident.is_some()
    }

    /// Points per pass when the pool is not resident (N when it is).
    pub fn chunk_points(&self) -> usize {
        self.chunk
    }
}

impl CudaBackend {
    /// Uploads the points `range` of `host`.
    pub(crate) fn upload<T: Element>(
        &self,
        host: &LogProbs<'_, T>,
        range: Range<usize>,
    ) -> Result<DeviceData, CudaError> {
        let shape = host.shape();
        let per = shape.k * shape.c;
        let elems = range.start * per..range.end * per;
        let stream = &self.device.stream;
        let up = driver("uploading the pool");
        Ok(match T::as_slice(host.data()) {
            ElementSlice::F32(s) => DeviceData::F32(stream.clone_htod(&s[elems]).map_err(up)?),
            ElementSlice::F64(s) => {
                let v: Vec<f32> = s[elems].iter().map(|&x| x as f32).collect();
                DeviceData::F32(stream.clone_htod(&v).map_err(up)?)
            }
            ElementSlice::F16(s) => {
                let v: Vec<u16> = s[elems].iter().map(|x| x.to_bits()).collect();
                DeviceData::F16(stream.clone_htod(&v).map_err(up)?)
            }
            ElementSlice::Bf16(s) => {
                let v: Vec<u16> = s[elems].iter().map(|x| x.to_bits()).collect();
                DeviceData::Bf16(stream.clone_htod(&v).map_err(up)?)
            }
        })
    }

    /// Calls `f` with each chunk of the pool on the device: the resident data once, or each
    /// uploaded chunk in turn.
    pub(crate) fn for_each_chunk<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        mut f: impl FnMut(Range<usize>, &DeviceData) -> Result<(), CudaError>,
    ) -> Result<(), CudaError> {
        let n = pool.host.shape().n;
        if let Some(data) = &pool.resident {
            return f(0..n, data);
        }
        for start in (0..n).step_by(pool.chunk) {
            let range = start..(start + pool.chunk).min(n);
            let data = self.upload(&pool.host, range.clone())?;
            f(range, &data)?;
        }
        Ok(())
    }
}
