//! The package's exceptions, how a computation fails before it becomes one, and the names of
//! strategies, scores and options as Python spells them.

use bald_cli::acquire::{hint, InputKind, Spelling, Values};
use bald_core::{PointScore, Shape};
use clap::ValueEnum;
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
    /// Bad input, with bald-core's error and the hint to fix it (the CLI's, in Python's words).
    Input(String),
    /// A CUDA array the backend cannot read (not in its GPU's memory, misaligned).
    Array(String),
    /// The backend could not be started or failed.
    Backend(String),
    /// Ctrl-C (or another signal handler's exception) between greedy steps.
    Interrupted(PyErr),
}

impl From<bald_cli::acquire::Failure> for Failure {
    fn from(f: bald_cli::acquire::Failure) -> Failure {
        match f {
            bald_cli::acquire::Failure::Input(e) => Failure::Input(e.to_string()),
            bald_cli::acquire::Failure::Backend(e) => Failure::Backend(e),
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Input(e) => InputError::new_err(e),
            Failure::Array(e) => InputError::new_err(e),
            Failure::Backend(e) => BackendError::new_err(e),
            Failure::Interrupted(e) => e,
        }
    }
}

pub(crate) fn input_error(message: String) -> PyErr {
    InputError::new_err(message)
}

/// A name in the CLI's spelling (`_` for `-` accepted), or an [`InputError`] listing them.
pub(crate) fn parse<E: ValueEnum>(what: &str, name: &str) -> PyResult<E> {
    E::from_str(&name.replace('_', "-"), true).map_err(|_| {
        let names: Vec<String> = E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        input_error(format!(
            "unknown {what} '{name}': one of {}",
            names.join(", ")
        ))
    })
}

/// A score by its name ([`PointScore::name`], `_` for `-` accepted).
pub(crate) fn parse_score(name: &str) -> PyResult<PointScore> {
    let wanted = name.replace('_', "-").to_ascii_lowercase();
    PointScore::ALL
        .into_iter()
        .find(|s| s.name() == wanted)
        .ok_or_else(|| {
            let names: Vec<&str> = PointScore::ALL.iter().map(|s| s.name()).collect();
            input_error(format!(
                "unknown score '{name}': one of {}",
                names.join(", ")
            ))
        })
}

/// An input error with its hint, from the pool's values as the caller gave them.
pub(crate) fn hinted(
    e: &bald_core::Error,
    values: Values<'_>,
    shape: Shape,
    kind: InputKind,
) -> Failure {
    Failure::Input(format!(
        "{e}{}",
        hint(e, values, shape, kind, Spelling::Python)
    ))
}

/// [`hinted`] for a failure of the host path.
pub(crate) fn host_failure(
    f: bald_cli::acquire::Failure,
    values: Values<'_>,
    shape: Shape,
    kind: InputKind,
) -> Failure {
    match f {
        bald_cli::acquire::Failure::Input(e) => hinted(&e, values, shape, kind),
        f => f.into(),
    }
}
