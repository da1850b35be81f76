//! Pools in host memory: NumPy arrays, read in place.

use bald_cli::acquire::{to_log_probs, InputKind, Values};
use bald_cli::npy::NpyData;
use bald_core::half::f16;
use bald_core::{Element, Shape};
use numpy::{PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{hinted, input_error, Failure};

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
}

/// The array's values in place (C-contiguous and aligned), and its shape as N x K x C.
pub(crate) fn view<'a, T: Element + numpy::Element>(
    a: &'a PyReadonlyArray3<'_, T>,
) -> PyResult<(&'a [T], Shape)> {
    let data = a
        .as_slice()
        .map_err(|_| input_error("the array is not C-contiguous".into()))?;
    if data.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        return Err(input_error("the array is not aligned".into()));
    }
    let s = a.shape();
    Ok((data, Shape::new(s[0], s[1], s[2])))
}

impl<'py> Pool<'py> {
    /// The values in place, and their shape.
    pub(crate) fn values(&self) -> PyResult<(Values<'_>, Shape)> {
        Ok(match self {
            Pool::F16(a) => view(a).map(|(d, s)| (Values::F16(d), s))?,
            Pool::F32(a) => view(a).map(|(d, s)| (Values::F32(d), s))?,
            Pool::F64(a) => view(a).map(|(d, s)| (Values::F64(d), s))?,
        })
    }
}

/// `values` converted from probabilities or logits to log-probs, in a copy (`None` for
/// log-probs, which are read in place).
pub(crate) fn converted(
    values: Values<'_>,
    shape: Shape,
    kind: InputKind,
) -> Result<Option<NpyData>, Failure> {
    if kind == InputKind::LogProbs {
        return Ok(None);
    }
    let mut copy = match values {
        Values::F16(d) => NpyData::F16(d.to_vec()),
        Values::F32(d) => NpyData::F32(d.to_vec()),
        Values::F64(d) => NpyData::F64(d.to_vec()),
    };
    to_log_probs(&mut copy, shape, kind).map_err(|e| hinted(&e, values, shape, kind))?;
    Ok(Some(copy))
}
