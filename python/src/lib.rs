//! `bald._bald`, the native part of the Python package `bald` (`python/bald`).
//!
//! The Python wrapper hands every pool over as a C-contiguous, aligned N x K x C NumPy array
//! of float16, float32 or float64. This layer reads it in place, turns names into the CLI's
//! types, runs the CLI's acquisition code with the GIL released, and raises each failure as
//! its exception: [`InputError`] for bad values, shapes and arguments, [`BackendError`] for a
//! backend that is unavailable or fails, `KeyboardInterrupt` for Ctrl-C between greedy steps.

#![warn(missing_docs)]

use std::ops::ControlFlow;
use std::time::Instant;

use bald_cli::acquire::{acquire_on, validate_for, InputKind, Params, Strategy, Validated};
use bald_cli::backends::{dispatch, BackendChoice, OnBackend};
use bald_core::half::f16;
use bald_core::owned::scores as point_scores;
use bald_core::{
    dropout_keep, keep_threshold, Backend, Element, Error, Greedy, Hooks, Pick, PointScore, Shape,
    StdKind,
};
use bald_cpu_simd::SimdBackend;
use clap::ValueEnum;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray3, PyUntypedArrayMethods};
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
enum Failure {
    /// Bad input, with bald-core's error.
    Input(Error),
    /// The backend could not be started or failed.
    Backend(String),
    /// Ctrl-C (or another signal handler's exception) between greedy steps.
    Interrupted(PyErr),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Input(e) => InputError::new_err(e.to_string()),
            Failure::Backend(e) => BackendError::new_err(e),
            Failure::Interrupted(e) => e,
        }
    }
}

fn input_error(message: String) -> PyErr {
    InputError::new_err(message)
}

/// A name in the CLI's spelling (`_` for `-` accepted), or an [`InputError`] listing them.
fn parse<E: ValueEnum>(what: &str, name: &str) -> PyResult<E> {
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
fn parse_score(name: &str) -> PyResult<PointScore> {
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

/// The pool array, by element type.
enum Pool<'py> {
    F16(PyReadonlyArray3<'py, f16>),
    F32(PyReadonlyArray3<'py, f32>),
    F64(PyReadonlyArray3<'py, f64>),
}

impl<'py> Pool<'py> {
    fn of(x: &Bound<'py, PyAny>) -> PyResult<Self> {
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
fn view<'a, T: Element + numpy::Element>(
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

/// `data` as log-probs: itself, or converted from probabilities or logits into a copy.
fn log_probs<T: Element>(
    data: &[T],
    shape: Shape,
    kind: InputKind,
) -> Result<Option<Vec<T>>, Failure> {
    let simd = SimdBackend::new();
    let mut copy = match kind {
        InputKind::LogProbs => return Ok(None),
        _ => data.to_vec(),
    };
    match kind {
        InputKind::Probs => simd.probs_to_log_probs(&mut copy, shape),
        _ => simd.logits_to_log_probs(&mut copy, shape),
    }
    .map_err(Failure::Input)?;
    Ok(Some(copy))
}

/// What an acquisition returns to Python.
struct Outcome {
    indices: Vec<usize>,
    scores: Vec<f64>,
    evaluations: Vec<usize>,
    backend: &'static str,
    seconds: f64,
}

/// One acquisition on a validated-on-the-way pool, on whichever backend `dispatch` picks.
struct AcquireJob<'d, T> {
    data: &'d [T],
    shape: Shape,
    params: Params,
    exclude: &'d [usize],
}

impl<T: Element> OnBackend for AcquireJob<'_, T> {
    type Out = Result<(Vec<usize>, Vec<f64>, Vec<usize>), Failure>;

    fn run<B: Backend>(self, backend: &B) -> Result<Self::Out, String> {
        let strategy = self.params.strategy;
        let v = match validate_for(
            backend.name(),
            strategy.point_score(),
            self.data,
            self.shape,
        ) {
            Ok(v) => v,
            Err(e) => return Ok(Err(Failure::Input(e))),
        };
        let known = match strategy.point_score() {
            Some(score) if strategy != Strategy::Batchbald => v.scores(score),
            _ => None,
        };
        let Validated { pool, entropies } = v;
        let pool = match backend.prepare(pool) {
            Ok(p) => p,
            Err(e) => return Ok(Err(Failure::Backend(e.to_string()))),
        };
        // Ctrl-C stops BatchBALD between picks: the signal handlers run here.
        let mut interrupted = None;
        let mut on_pick = |_: Pick| match Python::attach(|py| py.check_signals()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                interrupted = Some(e);
                ControlFlow::Break(())
            }
        };
        let mut hooks = Hooks {
            exclude: self.exclude,
            on_pick: Some(&mut on_pick),
            entropies: entropies
                .as_ref()
                .filter(|_| strategy == Strategy::Batchbald)
                .map(|(h, eh)| (&h[..], &eh[..])),
        };
        let acquired = acquire_on(backend, &pool, self.params, known, &mut hooks);
        Ok(match acquired {
            Ok(a) => Ok((a.batch.indices, a.batch.scores, a.evaluations)),
            Err(e) => Err(match interrupted {
                Some(signal) => Failure::Interrupted(signal),
                None => Failure::Backend(e),
            }),
        })
    }
}

/// Every point's score on a pool, on whichever backend `dispatch` picks.
struct ScoresJob<'d, T> {
    data: &'d [T],
    shape: Shape,
    score: PointScore,
}

impl<T: Element> OnBackend for ScoresJob<'_, T> {
    type Out = Result<Vec<f64>, Failure>;

    fn run<B: Backend>(self, backend: &B) -> Result<Self::Out, String> {
        let v = match validate_for(backend.name(), Some(self.score), self.data, self.shape) {
            Ok(v) => v,
            Err(e) => return Ok(Err(Failure::Input(e))),
        };
        if let Some(known) = v.scores(self.score) {
            return Ok(Ok(known));
        }
        let fail = |e: B::Error| Failure::Backend(e.to_string());
        Ok(backend
            .prepare(v.pool)
            .and_then(|pool| point_scores(backend, &pool, self.score))
            .map_err(fail))
    }
}

/// Runs `job` on `choice`, timing it; the backend's name comes back with the result.
fn on_backend<J: OnBackend<Out = Result<O, Failure>>, O>(
    choice: BackendChoice,
    job: J,
) -> Result<(O, &'static str, f64), Failure> {
    let start = Instant::now();
    let (out, name) = dispatch(choice, job).map_err(Failure::Backend)?;
    Ok((out?, name, start.elapsed().as_secs_f64()))
}

/// The arguments of [`acquire`] after parsing.
#[derive(Clone, Copy)]
struct AcquireArgs {
    params: Params,
    backend: BackendChoice,
    kind: InputKind,
}

fn acquire_typed<T: Element + numpy::Element>(
    py: Python<'_>,
    a: &PyReadonlyArray3<'_, T>,
    args: AcquireArgs,
    exclude: &[usize],
) -> PyResult<Outcome> {
    let (data, shape) = view(a)?;
    check_acquire(args.params, shape, exclude)?;
    let run = || -> Result<Outcome, Failure> {
        let converted = log_probs(data, shape, args.kind)?;
        let data = converted.as_deref().unwrap_or(data);
        let job = AcquireJob {
            data,
            shape,
            params: args.params,
            exclude,
        };
        let ((indices, scores, evaluations), backend, seconds) = on_backend(args.backend, job)?;
        Ok(Outcome {
            indices,
            scores,
            evaluations,
            backend,
            seconds,
        })
    };
    Ok(py.detach(run)?)
}

/// The checks of the arguments that need the pool's shape (those `bald acquire` makes).
fn check_acquire(params: Params, shape: Shape, exclude: &[usize]) -> PyResult<()> {
    let strategy = params.strategy;
    if shape.k == 1 && strategy.needs_two_samples() {
        return Err(input_error(format!(
            "strategy '{}' needs K >= 2 MC samples per point (the pool has K = 1): it measures \
             disagreement between samples",
            strategy.name()
        )));
    }
    if strategy == Strategy::Batchbald && params.num_samples == 0 {
        return Err(input_error(
            "num_samples must be at least 1 for BatchBALD".into(),
        ));
    }
    if !(params.beta.is_finite() && params.beta >= 0.0) {
        return Err(input_error(format!(
            "beta must be finite and >= 0, not {}",
            params.beta
        )));
    }
    if let Some(&bad) = exclude.iter().find(|&&i| i >= shape.n) {
        return Err(input_error(format!(
            "exclude: index {bad} is out of range for a pool of {} points",
            shape.n
        )));
    }
    Ok(())
}

/// What [`acquire`] returns: pool indices (in pick order), their scores, BatchBALD's
/// evaluations per step, the backend's name, seconds.
type Acquired<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<usize>,
    &'static str,
    f64,
);

/// One acquisition: the batch's pool indices (in pick order) and scores, BatchBALD's
/// evaluations per step, the backend's name and the seconds it took (validation included).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (log_probs, strategy, batch_size, num_samples, beta, seed, backend, input_kind, greedy, exclude))]
fn acquire<'py>(
    py: Python<'py>,
    log_probs: &Bound<'py, PyAny>,
    strategy: &str,
    batch_size: usize,
    num_samples: usize,
    beta: f64,
    seed: u64,
    backend: &str,
    input_kind: &str,
    greedy: &str,
    exclude: Vec<usize>,
) -> PyResult<Acquired<'py>> {
    let greedy: bald_cli::acquire::GreedyArg = parse("greedy", greedy)?;
    let args = AcquireArgs {
        params: Params {
            strategy: parse("strategy", strategy)?,
            batch_size,
            num_samples,
            beta,
            seed,
            greedy: Greedy::from(greedy),
        },
        backend: parse("backend", backend)?,
        kind: parse("input_kind", input_kind)?,
    };
    let out = match Pool::of(log_probs)? {
        Pool::F16(a) => acquire_typed(py, &a, args, &exclude)?,
        Pool::F32(a) => acquire_typed(py, &a, args, &exclude)?,
        Pool::F64(a) => acquire_typed(py, &a, args, &exclude)?,
    };
    let indices: Vec<i64> = out.indices.iter().map(|&i| i as i64).collect();
    Ok((
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, out.scores),
        out.evaluations,
        out.backend,
        out.seconds,
    ))
}

fn scores_typed<T: Element + numpy::Element>(
    py: Python<'_>,
    a: &PyReadonlyArray3<'_, T>,
    score: PointScore,
    backend: BackendChoice,
    kind: InputKind,
) -> PyResult<(Vec<f64>, &'static str, f64)> {
    let (data, shape) = view(a)?;
    if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
        return Err(input_error(
            "score 'mean-std-unbiased' needs K >= 2 MC samples per point".into(),
        ));
    }
    let run = || -> Result<(Vec<f64>, &'static str, f64), Failure> {
        let converted = log_probs(data, shape, kind)?;
        let data = converted.as_deref().unwrap_or(data);
        on_backend(backend, ScoresJob { data, shape, score })
    };
    Ok(py.detach(run)?)
}

/// Every point's `score`: a float64 array of N, the backend's name and the seconds it took.
#[pyfunction]
#[pyo3(signature = (log_probs, score, backend, input_kind))]
fn scores<'py>(
    py: Python<'py>,
    log_probs: &Bound<'py, PyAny>,
    score: &str,
    backend: &str,
    input_kind: &str,
) -> PyResult<(Bound<'py, PyArray1<f64>>, &'static str, f64)> {
    let score = parse_score(score)?;
    let backend: BackendChoice = parse("backend", backend)?;
    let kind: InputKind = parse("input_kind", input_kind)?;
    let (out, name, seconds) = match Pool::of(log_probs)? {
        Pool::F16(a) => scores_typed(py, &a, score, backend, kind)?,
        Pool::F32(a) => scores_typed(py, &a, score, backend, kind)?,
        Pool::F64(a) => scores_typed(py, &a, score, backend, kind)?,
    };
    Ok((PyArray1::from_vec(py, out), name, seconds))
}

/// The dropout mask of bald's MC-dropout head: `keep[j, u]` is whether input unit `u` of
/// layer `layer` is kept in MC sample `j` (K x units, bool), for drop rate `rate` in [0, 1).
#[pyfunction]
fn dropout_keep_mask<'py>(
    py: Python<'py>,
    seed: u64,
    layer: u32,
    k: u32,
    units: u32,
    rate: f64,
) -> PyResult<Bound<'py, PyArray2<bool>>> {
    if !(0.0..1.0).contains(&rate) {
        return Err(input_error(format!("rate must be in [0, 1), not {rate}")));
    }
    let threshold = keep_threshold(rate as f32);
    let mut keep = Vec::new();
    for sample in 0..k {
        keep.extend((0..units).map(|unit| dropout_keep(seed, layer, sample, unit, threshold)));
    }
    PyArray1::from_vec(py, keep).reshape([k as usize, units as usize])
}

/// The native module.
#[pymodule]
fn _bald(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("BackendError", m.py().get_type::<BackendError>())?;
    m.add_function(wrap_pyfunction!(acquire, m)?)?;
    m.add_function(wrap_pyfunction!(scores, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_keep_mask, m)?)?;
    Ok(())
}
