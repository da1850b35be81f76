//! `bald._bald`, the native part of the Python package `bald` (`python/bald`).
//!
//! The Python wrapper hands every pool over as a C-contiguous, aligned N x K x C NumPy array
//! of float16, float32 or float64, or, for a CUDA tensor, as the tensor itself (C-contiguous,
//! float16, bfloat16, float32 or float64), which is imported through DLPack and read in place
//! by the CUDA backend, never copied to the host. This layer reads the pool in place, turns
//! names into the CLI's types, runs the CLI's acquisition code with the GIL released, and
//! raises each failure as its exception: `InputError` for bad values, shapes and arguments,
//! `BackendError` for a backend that is unavailable or fails, `KeyboardInterrupt` for Ctrl-C
//! between greedy steps.
//!
//! By concept: `errors` (the exceptions, failures and names), `host` (NumPy arrays), `gpu`
//! (CUDA arrays through DLPack), and here the functions the module exports.

#![warn(missing_docs)]

mod errors;
mod gpu;
mod host;

use std::cell::RefCell;
use std::ops::ControlFlow;

use bald_cli::acquire::{
    check_exclude, check_params, point_scores, Acquired, InputKind, Layout, Params, Request,
    Scored, Spelling, Values, Warning,
};
use bald_cli::backends::BackendChoice;
use bald_cli::npy::NpyData;
use bald_core::{dropout_keep, keep_threshold, Greedy, Pick, PointScore, Shape, StdKind};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray};
use pyo3::prelude::*;

use errors::{host_failure, input_error, parse, parse_score, BackendError, Failure, InputError};
use gpu::{GpuAcquire, GpuArray, GpuPlace, GpuScores};
use host::{converted, Pool};

/// Where the pool's values are, for the computation (the GIL released).
#[derive(Clone, Copy)]
enum Place<'a> {
    Host(Values<'a>),
    Gpu(GpuPlace),
}

/// A pool as the wrapper hands it over: a NumPy array, or a CUDA array.
enum Input<'py> {
    Host(Pool<'py>),
    Gpu(GpuArray),
}

impl<'py> Input<'py> {
    fn of(x: &Bound<'py, PyAny>, kind: InputKind) -> PyResult<Self> {
        if x.is_instance_of::<PyUntypedArray>() {
            return Pool::of(x).map(Input::Host);
        }
        let array = GpuArray::of(x)?;
        if kind != InputKind::LogProbs {
            return Err(input_error(
                "a CUDA array must hold log-probs (the wrapper converts a torch tensor's \
                 probs or logits on its device)"
                    .into(),
            ));
        }
        Ok(Input::Gpu(array))
    }

    /// Where the values are, and their shape.
    fn place(&self) -> PyResult<(Place<'_>, Shape)> {
        Ok(match self {
            Input::Host(pool) => {
                let (values, shape) = pool.values()?;
                (Place::Host(values), shape)
            }
            Input::Gpu(array) => (Place::Gpu(array.place), array.place.shape),
        })
    }
}

/// What [`acquire`] returns: pool indices (in pick order), their scores, BatchBALD's
/// evaluations per step, the backend's name, seconds, BatchBALD's regime and standard error of
/// each pick, the pick that reached the information limit and the picks made before the
/// `past_limit` switch.
type Batch<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<usize>,
    &'static str,
    f64,
    Vec<&'static str>,
    Bound<'py, PyArray1<f64>>,
    Option<usize>,
    Option<usize>,
);

/// One acquisition: the batch's pool indices (in pick order) and scores, and what BatchBALD
/// records of it ([`Batch`]). `warn(message)` is called with each warning when it applies
/// (before any work, or at the pick), `progress(done, total)` after each BatchBALD pick.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (log_probs, strategy, batch_size, num_samples, beta, seed, backend, input_kind, layout, greedy, past_limit, exclude, warn, progress))]
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
    layout: &str,
    greedy: &str,
    past_limit: &str,
    exclude: Vec<usize>,
    warn: &Bound<'py, PyAny>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Batch<'py>> {
    let greedy: bald_cli::acquire::GreedyArg = parse("greedy", greedy)?;
    let params = Params {
        strategy: parse("strategy", strategy)?,
        batch_size,
        num_samples,
        beta,
        seed,
        greedy: Greedy::from(greedy),
        past_limit: parse("past_limit", past_limit)?,
    };
    let backend: BackendChoice = parse("backend", backend)?;
    let kind: InputKind = parse("input_kind", input_kind)?;
    let layout: Layout = parse("layout", layout)?;
    let input = Input::of(log_probs, kind)?;
    let (place, shape) = input.place()?;
    for w in check_params(params, shape, layout, Spelling::Python).map_err(input_error)? {
        warn.call1((w.message(Spelling::Python),))?;
    }
    check_exclude(&exclude, shape.n, Spelling::Python).map_err(input_error)?;
    let (warn, progress) = (warn.clone().unbind(), progress.map(|p| p.clone().unbind()));
    let run = || -> Result<(Acquired, &'static str, f64), Failure> {
        // Ctrl-C stops BatchBALD between picks: the signal handlers run here, and an exception
        // from the progress or warning callback (warnings as errors) stops it too.
        let raised: RefCell<Option<PyErr>> = RefCell::new(None);
        let mut on_pick = |p: Pick| {
            let outcome = Python::attach(|py| {
                py.check_signals()?;
                match &progress {
                    Some(f) => f.call1(py, (p.done, p.total)).map(drop),
                    None => Ok(()),
                }
            });
            let earlier = raised.borrow_mut().take();
            match outcome.and(earlier.map_or(Ok(()), Err)) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    *raised.borrow_mut() = Some(e);
                    ControlFlow::Break(())
                }
            }
        };
        let mut on_warning = |w: &Warning| {
            let message = w.message(Spelling::Python);
            if let Err(e) = Python::attach(|py| warn.call1(py, (message,))) {
                raised.borrow_mut().get_or_insert(e);
            }
        };
        let outcome = match place {
            Place::Host(values) => {
                let copy = converted(values, shape, kind)?;
                let request = Request {
                    values: copy.as_ref().map_or(values, NpyData::values),
                    shape,
                    params,
                    exclude: &exclude,
                    backend,
                    all_scores: false,
                };
                bald_cli::acquire::acquire(request, &mut on_pick, &mut on_warning)
                    .map(|o| (o.acquired, o.backend, o.seconds))
                    .map_err(|f| host_failure(f, values, shape, kind))
            }
            Place::Gpu(gpu) => {
                let job = GpuAcquire {
                    params,
                    exclude: &exclude,
                    on_pick: &mut on_pick,
                    on_warning: &mut on_warning,
                };
                gpu.compute(backend, job)
                    .map(|(a, seconds)| (a, "cuda", seconds))
            }
        };
        match (outcome, raised.into_inner()) {
            (_, Some(e)) => Err(Failure::Interrupted(e)),
            (outcome, None) => outcome,
        }
    };
    let (acquired, name, seconds) = py.detach(run)?;
    let Acquired {
        batch,
        evaluations,
        regimes,
        standard_errors,
        information_limit,
        switched_at,
        ..
    } = acquired;
    let indices: Vec<i64> = batch.indices.iter().map(|&i| i as i64).collect();
    Ok((
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, batch.scores),
        evaluations,
        name,
        seconds,
        regimes,
        PyArray1::from_vec(py, standard_errors),
        information_limit,
        switched_at,
    ))
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
    let input = Input::of(log_probs, kind)?;
    let (place, shape) = input.place()?;
    if score == PointScore::MeanStd(StdKind::Unbiased) && shape.k < 2 {
        return Err(input_error(
            "score 'mean-std-unbiased' needs K >= 2 MC samples per point".into(),
        ));
    }
    let run = || -> Result<Scored, Failure> {
        match place {
            Place::Host(values) => {
                let copy = converted(values, shape, kind)?;
                let given = copy.as_ref().map_or(values, NpyData::values);
                point_scores(given, shape, score, backend)
                    .map_err(|f| host_failure(f, values, shape, kind))
            }
            Place::Gpu(gpu) => {
                let (scores, seconds) = gpu.compute(backend, GpuScores(score))?;
                Ok(Scored {
                    scores,
                    backend: "cuda",
                    seconds,
                })
            }
        }
    };
    let out = py.detach(run)?;
    Ok((PyArray1::from_vec(py, out.scores), out.backend, out.seconds))
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
