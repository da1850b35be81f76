//! Pools in CUDA device memory (a torch CUDA tensor, any `__dlpack__` on a CUDA device),
//! imported through DLPack and read in place by the CUDA backend.

use std::time::Instant;

use bald::backends::CudaBackend;
use bald::{Acquisition, Device, Hint, InputKind, Options, Score, Shape, Strategy, Values};
use bald_core::half::{bf16, f16};
use bald_core::Element;
use bald_cuda::CudaError;
use dlpark::ffi::{DLDataTypeCode, DLDeviceType};
use pyo3::prelude::*;

use crate::errors::{input_error, Failure};

/// The element type of a CUDA array.
#[derive(Clone, Copy)]
pub(crate) enum GpuDtype {
    F16,
    Bf16,
    F32,
    F64,
}

/// A pool in CUDA device memory, imported through DLPack: where it is, and `_owner`, which
/// keeps the producer's memory alive (its deleter runs when this is dropped).
pub(crate) struct GpuArray {
    _owner: dlpark::python::ImportedDlpack,
    pub(crate) place: GpuPlace,
}

impl GpuArray {
    /// Imports `x` (anything with `__dlpack__` on a CUDA device).
    pub(crate) fn of(x: &Bound<'_, PyAny>) -> PyResult<Self> {
        let owner = dlpark::python::from_dlpack(x.as_borrowed(), None, None).map_err(|e| {
            input_error(format!(
                "expected a NumPy array, or a CUDA array with __dlpack__: {e}"
            ))
        })?;
        let t = owner
            .validate()
            .map_err(|e| input_error(format!("a malformed DLPack tensor: {e}")))?;
        let device = t.device();
        if device.device_type != DLDeviceType::CUDA {
            return Err(input_error(format!(
                "a DLPack array on device type {}: only CUDA arrays (type 2) are read in place, \
                 copy others to the host",
                device.device_type.0
            )));
        }
        let dt = t.dtype();
        let dtype = match (dt.code, dt.bits, dt.lanes) {
            (DLDataTypeCode::FLOAT, 16, 1) => GpuDtype::F16,
            (DLDataTypeCode::BFLOAT, 16, 1) => GpuDtype::Bf16,
            (DLDataTypeCode::FLOAT, 32, 1) => GpuDtype::F32,
            (DLDataTypeCode::FLOAT, 64, 1) => GpuDtype::F64,
            (code, bits, lanes) => {
                return Err(input_error(format!(
                    "expected float16, bfloat16, float32 or float64 values, got DLPack type \
                     code {}, {bits} bits, {lanes} lanes",
                    code.0
                )))
            }
        };
        let dims = t.shape();
        let [n, k, c] = dims else {
            return Err(input_error(format!(
                "expected a 3-d array N x K x C, got shape {dims:?}"
            )));
        };
        let dim = |d: i64| {
            usize::try_from(d).map_err(|_| input_error(format!("a negative dimension in {dims:?}")))
        };
        let shape = Shape::new(dim(*n)?, dim(*k)?, dim(*c)?);
        if !t.is_compact().unwrap_or(false) {
            return Err(input_error(
                "a CUDA array must be C-contiguous (torch: .contiguous())".into(),
            ));
        }
        let ptr = (t.data_ptr() as u64)
            .checked_add(t.byte_offset())
            .ok_or_else(|| input_error("a DLPack byte offset past the end of memory".into()))?;
        let device = usize::try_from(device.device_id)
            .map_err(|_| input_error(format!("a CUDA device id of {}", device.device_id)))?;
        let place = GpuPlace {
            ptr,
            shape,
            device,
            dtype,
        };
        Ok(GpuArray {
            _owner: owner,
            place,
        })
    }
}

/// A [`GpuArray`]'s address, shape, GPU and element type: what the computation needs, without
/// the owner (which stays with the GIL).
#[derive(Clone, Copy)]
pub(crate) struct GpuPlace {
    ptr: u64,
    pub(crate) shape: Shape,
    device: usize,
    dtype: GpuDtype,
}

/// A CUDA error as a failure: bald-core's input errors and unreadable arrays are bad input.
pub(crate) fn cuda_failure(e: CudaError) -> Failure {
    match e {
        CudaError::Input(e) => Failure::Input(e.to_string()),
        CudaError::NotOnDevice { .. } => Failure::Input(e.to_string()),
        e => Failure::Backend(e.to_string()),
    }
}

/// The failure of a pool on the device, an unnormalised row with the hint the host gives (its
/// C values read back from the device).
pub(crate) fn invalid_on_device<T: Element>(
    gpu: &CudaBackend,
    place: GpuPlace,
    e: CudaError,
) -> Failure {
    let CudaError::Input(bald_core::Error::NotNormalised {
        n,
        k,
        log_sum,
        tolerance,
    }) = e
    else {
        return cuda_failure(e);
    };
    let err = |n, k| bald_core::Error::NotNormalised {
        n,
        k,
        log_sum,
        tolerance,
    };
    let Shape { k: samples, c, .. } = place.shape;
    let mut row = vec![T::from_f64(0.0); c];
    // SAFETY: FFI memory: row (n, k) of the N K C values of T at ptr (the error names a row of
    // the pool, so n < N and k < K).
    if unsafe { gpu.read_device(place.ptr, (n * samples + k) * c, &mut row) }.is_err() {
        return Failure::Input(err(n, k).to_string());
    }
    let row: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
    // The hint reads the offending row: here the only one, at (0, 0).
    let hint = Hint::for_error(
        &err(0, 0),
        Values::F64(&row),
        Shape::new(1, 1, c),
        InputKind::LogProbs,
    );
    Failure::from(bald::Error::Input {
        error: err(n, k),
        hint,
    })
}

/// Work on a pool that is on the device.
pub(crate) trait OnGpu {
    /// What the work returns.
    type Out;
    /// Runs on `pool`.
    fn on_device<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Self::Out, Failure>;
}

impl GpuPlace {
    /// Runs `job` on the CUDA backend of the array's GPU (`backend` must allow it), the pool
    /// validated there and read in place; returns its output and the seconds it took.
    pub(crate) fn compute<J: OnGpu>(
        self,
        backend: Device,
        job: J,
    ) -> Result<(J::Out, f64), Failure> {
        if !matches!(backend, Device::Auto | Device::Cuda(_)) {
            return Err(Failure::Input(
                "a CUDA array is read by backend 'cuda' or 'auto'; copy it to the host for \
                 the CPU backends"
                    .into(),
            ));
        }
        let gpu = CudaBackend::new(self.device)
            .map_err(|e| Failure::Backend(format!("a CUDA array: {e}")))?;
        let start = Instant::now();
        fn go<T: Element, J: OnGpu>(
            gpu: &CudaBackend,
            place: GpuPlace,
            job: J,
        ) -> Result<J::Out, Failure> {
            // SAFETY: FFI memory: the DLPack tensor, kept alive by its GpuArray for the whole
            // call, holds the N K C values of T at ptr on this GPU, and nothing writes them.
            let pool = unsafe { gpu.pool_on_device::<T>(place.ptr, place.shape) }
                .map_err(|e| invalid_on_device::<T>(gpu, place, e))?;
            job.on_device(gpu, &pool)
        }
        let out = match self.dtype {
            GpuDtype::F16 => go::<f16, J>(&gpu, self, job),
            GpuDtype::Bf16 => go::<bf16, J>(&gpu, self, job),
            GpuDtype::F32 => go::<f32, J>(&gpu, self, job),
            GpuDtype::F64 => go::<f64, J>(&gpu, self, job),
        }?;
        Ok((out, start.elapsed().as_secs_f64()))
    }
}

/// An acquisition on the device.
pub(crate) struct GpuAcquire<'s, 'o> {
    pub(crate) strategy: &'s Strategy,
    pub(crate) options: Options<'o>,
}

impl OnGpu for GpuAcquire<'_, '_> {
    type Out = Acquisition;

    fn on_device<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Acquisition, Failure> {
        Ok(bald::acquire_on(
            gpu,
            pool,
            self.strategy,
            self.options,
            None,
        )?)
    }
}

/// Every point's EPIG on the device, against targets on the host.
pub(crate) struct GpuEpig<'t>(pub(crate) &'t bald::Pool<'t>);

impl OnGpu for GpuEpig<'_> {
    type Out = Vec<f64>;

    fn on_device<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Vec<f64>, Failure> {
        Ok(bald::epig_on(gpu, pool, self.0)?)
    }
}

/// Every point's score on the device.
pub(crate) struct GpuScores(pub(crate) Score);

impl OnGpu for GpuScores {
    type Out = Vec<f64>;

    fn on_device<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Vec<f64>, Failure> {
        bald_core::owned::scores(gpu, pool, self.0).map_err(cuda_failure)
    }
}
