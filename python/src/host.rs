//! Pools in host memory: NumPy arrays, read in place.

use bald::Values;
use bald_core::half::f16;
use numpy::{PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::input_error;

/// The pool array, by element type.
pub(crate) enum Pool<'py> {
    F16(PyReadonlyArray3<'py, f16>),
    F32(PyReadonlyArray3<'py, f32>),
    F64(PyReadonlyArray3<'py, f64>),
}

impl<'py> Pool<'py> {
    pub(crate) fn of(x: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = x.extract::<PyReadonlyArray3<'py, f32>>() {
            return Ok(Pool::F32(a));
        }
        if let Ok(a) = x.extract::<PyReadonlyArray3<'py, f64>>() {
            return Ok(Pool::F64(a));
        }
        if let Ok(a) = x.extract::<PyReadonlyArray3<'py, f16>>() {
            return Ok(Pool::F16(a));
        }
        Err(input_error(
            "expected a 3-d NumPy array of float16, float32 or float64".into(),
        ))
    }

    /// The values in place (C-contiguous and aligned), and the array's dimensions (in the
    /// caller's layout).
    pub(crate) fn values(&self) -> PyResult<(Values<'_>, [usize; 3])> {
        Ok(match self {
            Pool::F16(a) => view(a).map(|(d, s)| (Values::F16(d), s))?,
            Pool::F32(a) => view(a).map(|(d, s)| (Values::F32(d), s))?,
            Pool::F64(a) => view(a).map(|(d, s)| (Values::F64(d), s))?,
        })
    }
}

/// The array's values in place, and its dimensions.
fn view<'a, T: numpy::Element>(a: &'a PyReadonlyArray3<'_, T>) -> PyResult<(&'a [T], [usize; 3])> {
    let data = a
        .as_slice()
        .map_err(|_| input_error("the array is not C-contiguous".into()))?;
    if data.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        return Err(input_error("the array is not aligned".into()));
    }
    let s = a.shape();
    Ok((data, [s[0], s[1], s[2]]))
}
