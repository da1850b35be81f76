//! Hooks for the device tests (`tests/device.rs`) and the device report (`benches/report.rs`)
//! into what the API cannot reach: the device argmax on any values, a kernel that faults, and
//! kernel times by CUDA events. Not part of the API.

use bald_core::{Element, JointProbs};
use bald_kernels::{Module, ScoreKind};

use crate::error::driver;
use crate::greedy::{argmax, ArgmaxBuffers};
pub use crate::head::HeadPlan;
use crate::pool::DeviceData;
use crate::{CudaBackend, CudaError, CudaPool};

/// The device argmax of `values` (ties to the lower index): (index, value), or `None` when
/// every value is NaN.
pub fn argmax_of(be: &CudaBackend, values: &[f64]) -> Result<Option<(usize, f64)>, CudaError> {
    let vals = be
        .device
        .stream
        .clone_htod(values)
        .map_err(crate::error::driver("uploading values"))?;
    let mut bufs = ArgmaxBuffers::new(be, values.len())?;
    argmax(be, &vals, &mut bufs)
}

/// Launches the f32 scores kernel over 1000 points of 2^20 x 10 values on a buffer of 4, then
/// synchronises: the error of a kernel that reads past its buffer. The points lie 40 MB apart,
/// so the reads leave any mapped memory on a GPU too (a read a few KB past a small buffer
/// stays inside the driver's 2 MB page and does not fault there). It leaves the context
/// unusable, so a test calls it in a process of its own.
pub fn overrun_scores(be: &CudaBackend) -> Result<(), CudaError> {
    let data = DeviceData::F32(be.zeros::<f32>(4, "data")?);
    let mut out = be.zeros::<f64>(1000, "out")?;
    let kind = ScoreKind::Entropy;
    be.launch_scores(
        &data,
        1000,
        1 << 20,
        10,
        kind,
        &mut out.slice_mut(..),
        None,
        None,
    )?;
    be.device.sync()
}

/// Milliseconds of GPU time, by CUDA events on the backend's stream, of each of `reps` calls
/// of `launch` after one warm-up call: kernel time alone, with no host copies in it.
fn time_launches(
    be: &CudaBackend,
    reps: usize,
    mut launch: impl FnMut() -> Result<(), CudaError>,
) -> Result<Vec<f64>, CudaError> {
    let stream = &be.device.stream;
    let timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
    let event = || {
        stream
            .record_event(timing)
            .map_err(driver("recording an event"))
    };
    launch()?;
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = event()?;
        launch()?;
        let end = event()?;
        let t = start.elapsed_ms(&end).map_err(driver("reading an event"))?;
        ms.push(f64::from(t));
    }
    be.device.sync()?;
    Ok(ms)
}

/// Kernel milliseconds of the one-pass score kernel (entropy and conditional entropy, hence
/// BALD) over a resident pool, `reps` times after a warm-up.
pub fn time_entropies<T: Element>(
    be: &CudaBackend,
    pool: &CudaPool<'_, T>,
    reps: usize,
) -> Result<Vec<f64>, CudaError> {
    let shape = pool.shape;
    let guard = pool.lock();
    let data = &resident(&guard)?.data;
    let mut h = be.uninit::<f64>(shape.n, "entropies")?;
    let mut eh = be.uninit::<f64>(shape.n, "entropies")?;
    time_launches(be, reps, || {
        let kind = ScoreKind::Entropies;
        let (mut hv, mut ehv) = (h.slice_mut(..), eh.slice_mut(..));
        be.launch_scores(
            data,
            shape.n,
            shape.k,
            shape.c,
            kind,
            &mut hv,
            Some(&mut ehv),
            None,
        )
    })
}

/// Kernel milliseconds of the joint-entropy kernel of every point of a resident pool against
/// `joint`, `reps` times after a warm-up (the joint's upload not included).
pub fn time_joint<T: Element>(
    be: &CudaBackend,
    pool: &CudaPool<'_, T>,
    joint: &JointProbs<'_>,
    reps: usize,
) -> Result<Vec<f64>, CudaError> {
    let shape = pool.shape;
    let guard = pool.lock();
    let data = &resident(&guard)?.data;
    let at = be
        .device
        .stream
        .clone_htod(&crate::backend::transpose_f32(joint.a, joint.m, joint.k))
        .map_err(driver("uploading the joint"))?;
    let mut out = be.uninit::<f64>(shape.n, "joint entropies")?;
    time_launches(be, reps, || {
        let mut view = out.slice_mut(..);
        let (k, c, m) = (shape.k, shape.c, joint.m);
        be.launch_joint(
            data,
            None,
            shape.n,
            k,
            c,
            &at,
            None,
            m,
            joint.weight,
            &mut view,
        )
    })
}

/// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written, per second, by
/// CUDA events; the median of 10 copies after a warm-up) over buffers of `bytes`: the memory
/// bound the score pass is measured against.
pub fn copy_bandwidth_gbs(be: &CudaBackend, bytes: usize) -> Result<f64, CudaError> {
    let len = bytes / 4;
    let src = be.zeros::<f32>(len, "copy buffers")?;
    let mut dst = be.zeros::<f32>(len, "copy buffers")?;
    let stream = &be.device.stream;
    let mut ms = time_launches(be, 10, || {
        stream
            .memcpy_dtod(&src, &mut dst)
            .map_err(driver("copying on the device"))
    })?;
    ms.sort_by(f64::total_cmp);
    Ok(2.0 * (len * 4) as f64 / (ms[ms.len() / 2] / 1e3) / 1e9)
}

/// Seconds of the allocation of a device buffer of `host.len()` floats, of a copy of `host`
/// (pageable memory) into it, and of the copy back: the head's transfers, timed apart.
pub fn time_transfers(be: &CudaBackend, host: &mut [f32]) -> Result<[f64; 3], CudaError> {
    let t = std::time::Instant::now();
    let mut dev = be.uninit::<f32>(host.len(), "transfer buffer")?;
    be.device.sync()?;
    let alloc = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    be.device
        .stream
        .memcpy_htod(&*host, &mut dev)
        .map_err(driver("uploading"))?;
    be.device.sync()?;
    let up = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    be.download(&dev, host, "the transfer buffer")?;
    Ok([alloc, up, t.elapsed().as_secs_f64()])
}

/// The device copy of a resident pool, or an error naming why there is none.
fn resident(guard: &Option<crate::pool::Resident>) -> Result<&crate::pool::Resident, CudaError> {
    guard.as_ref().ok_or(CudaError::Unsupported {
        what: "kernel timing",
        reason: "the pool is not resident on the device".into(),
    })
}

/// Compiles every module for the device's architecture and loads its PTX (not its CUBIN)
/// into the driver: `Ok` for each module whose PTX the driver's JIT accepts, the driver's
/// error for the others. The backend loads the CUBIN first; this checks the fallback.
pub fn load_every_ptx(be: &CudaBackend) -> Vec<(Module, Result<(), CudaError>)> {
    Module::ALL
        .iter()
        .map(|&module| {
            let loaded = crate::device::compile(module, &be.device.arch).and_then(|c| {
                be.device
                    .ctx
                    .load_module(cudarc::nvrtc::Ptx::from_binary(c.ptx))
                    .map(drop)
                    .map_err(driver(format!("loading the PTX of {}", module.name())))
            });
            (module, loaded)
        })
        .collect()
}

/// Values uploaded to a device buffer of their own, as a CUDA tensor holds them, for the tests
/// of [`CudaBackend::pool_on_device`]: its address, and a copy back of its bytes.
pub struct DeviceValues {
    ptr: u64,
    bytes: usize,
    stream: std::sync::Arc<cudarc::driver::CudaStream>,
}

impl DeviceValues {
    /// Uploads `values`.
    pub fn upload<T: Element>(be: &CudaBackend, values: &[T]) -> Result<Self, CudaError> {
        use bald_core::half::slice::HalfFloatSliceExt;
        use bald_core::ElementSlice;
        let stream = be.device.stream.clone();
        let up = || driver("uploading test values");
        let ptr = match T::as_slice(values) {
            ElementSlice::F32(v) => stream.clone_htod(v).map_err(up())?.leak(),
            ElementSlice::F64(v) => stream.clone_htod(v).map_err(up())?.leak(),
            ElementSlice::F16(v) => stream
                .clone_htod(v.reinterpret_cast())
                .map_err(up())?
                .leak(),
            ElementSlice::Bf16(v) => stream
                .clone_htod(v.reinterpret_cast())
                .map_err(up())?
                .leak(),
        };
        Ok(DeviceValues {
            ptr,
            bytes: core::mem::size_of_val(values),
            stream,
        })
    }

    /// The device address of the first value.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// The buffer's bytes, copied back (the test that the pool left them, and left them
    /// allocated).
    pub fn download(&self, be: &CudaBackend) -> Result<Vec<u8>, CudaError> {
        let mut out = vec![0u8; self.bytes];
        // SAFETY: the buffer `upload` allocated, of `bytes` bytes.
        unsafe { be.read_device(self.ptr, 0, &mut out) }?;
        Ok(out)
    }
}

impl Drop for DeviceValues {
    fn drop(&mut self) {
        // SAFETY: FFI memory leaked by `upload`, freed once, here.
        drop(unsafe { self.stream.upgrade_device_ptr::<u8>(self.ptr, self.bytes) });
    }
}

/// How the forward pass of `head` over `n` points with K = `k` would run on `be` now.
pub fn head_plan(
    be: &CudaBackend,
    head: &bald_core::McDropoutHead<'_>,
    n: usize,
    k: usize,
) -> Result<HeadPlan, CudaError> {
    be.head_plan(head, n, k)
}
