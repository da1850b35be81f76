//! Hooks for the device tests (`tests/device.rs`) into what the API cannot reach: the
//! device argmax on any values, and a kernel that faults. Not part of the API.

use bald_kernels::ScoreKind;

use crate::greedy::{argmax, ArgmaxBuffers};
use crate::pool::DeviceData;
use crate::{CudaBackend, CudaError};

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

/// Launches the f32 scores kernel over 1000 x 10 x 10 values on a buffer of 4, then
/// synchronises: the error of a kernel that reads past its buffer. It leaves the context
/// unusable, so a test calls it in a process of its own.
pub fn overrun_scores(be: &CudaBackend) -> Result<(), CudaError> {
    let data = DeviceData::F32(be.zeros::<f32>(4, "data")?);
    let mut out = be.zeros::<f64>(1000, "out")?;
    let kind = ScoreKind::Entropy;
    be.launch_scores(
        &data,
        1000,
        10,
        10,
        kind,
        &mut out.slice_mut(..),
        None,
        None,
    )?;
    be.device.sync()
}
