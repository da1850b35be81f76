//! The package's exceptions, and how a computation fails before it becomes one.

use bald::Spelling;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    bald,
    InputError,
    PyValueError,
    "Bad input: a wrong shape or dtype, invalid values (NaN, +inf, rows that do not sum to 1), \
     or an argument out of range."
);
create_exception!(
    bald,
    BackendError,
    PyRuntimeError,
    "A backend that is unavailable (no GPU for backend='cuda') or that failed."
);

/// How a computation failed, before it becomes a Python exception.
pub(crate) enum Failure {
    /// Bad input: the `bald` crate's message, in Python's words.
    Input(String),
    /// The backend could not be started or failed.
    Backend(String),
    /// Ctrl-C (or another signal handler's exception) between greedy steps.
    Interrupted(PyErr),
}

impl From<bald::Error> for Failure {
    fn from(e: bald::Error) -> Failure {
        let message = e.message(Spelling::Python);
        if e.is_input() {
            Failure::Input(message)
        } else {
            Failure::Backend(message)
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Input(e) => InputError::new_err(e),
            Failure::Backend(e) => BackendError::new_err(e),
            Failure::Interrupted(e) => e,
        }
    }
}

pub(crate) fn input_error(message: String) -> PyErr {
    InputError::new_err(message)
}

/// A name parsed by the `bald` crate, or an [`InputError`] listing the names.
pub(crate) fn parse<T>(name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> PyResult<T> {
    parse(name).map_err(input_error)
}
