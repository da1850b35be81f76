//! `bald._bald`, the native part of the Python package `bald` (`python/bald`).
//!
//! The Python wrapper hands every pool over as a C-contiguous, aligned NumPy array of float16,
//! float32 or float64 in the caller's layout, or, for a CUDA tensor, as the tensor itself
//! (C-contiguous N x K x C, float16, bfloat16, float32 or float64), which is imported through
//! DLPack and read in place by the CUDA backend, never copied to the host. This layer is a thin
//! client of the `bald` crate, as the CLI is: it parses names with the crate's parsers, runs
//! the crate's acquisition with the GIL released (a `bald::Pool` on the NumPy array, read in
//! place when it is N x K x C log-probs), gives the crate's warnings and hints in Python's
//! words, and raises each failure as its exception: `InputError` for bad values, shapes and
//! arguments, `BackendError` for a backend that is unavailable or fails, `KeyboardInterrupt`
//! for Ctrl-C between greedy steps.
//!
//! By concept: `errors` (the exceptions and failures), `host` (NumPy arrays), `gpu` (CUDA
//! arrays through DLPack), `shards` (a pool split across a cluster, for `bald.ray`), and here
//! the functions the module exports.

#![warn(missing_docs)]

mod errors;
mod gpu;
mod host;
mod shards;

use std::cell::RefCell;
use std::ops::ControlFlow;

use bald::{
    Acquisition, Device, InputKind, Kind, Layout, Options, Pick, PoolOptions, Settings, Shape,
    Spelling, Strategy, Values, Warning,
};
use bald_core::{dropout_keep, keep_threshold};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray};
use pyo3::prelude::*;

use errors::{input_error, parse, BackendError, Failure, InputError};
use gpu::{GpuAcquire, GpuArray, GpuEpig, GpuPlace, GpuScores};
use host::Pool;

/// A pool as the wrapper hands it over: a NumPy array (in the caller's layout), or a CUDA
/// array (already N x K x C log-probs).
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

    /// Where the values are (for the computation, the GIL released), and the pool's shape,
    /// N x K x C.
    fn place(&self, layout: Layout) -> PyResult<(Place<'_>, Shape)> {
        Ok(match self {
            Input::Host(pool) => {
                let (values, dims) = pool.values()?;
                (Place::Host(values, dims), layout.shape(dims))
            }
            Input::Gpu(array) => (Place::Gpu(array.place), array.place.shape),
        })
    }
}

/// Where the pool's values are: in host memory (with the array's dimensions, in the caller's
/// layout), or on a GPU.
#[derive(Clone, Copy)]
enum Place<'a> {
    Host(Values<'a>, [usize; 3]),
    Gpu(GpuPlace),
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

/// A strategy's name and settings as the wrapper passes them: (strategy, batch_size,
/// num_samples, beta, seed, greedy, past_limit).
pub(crate) type PySettings = (String, usize, usize, f64, u64, String, String);

/// The strategy the wrapper's arguments name.
pub(crate) fn strategy_of(
    (name, batch_size, num_samples, beta, seed, greedy, past_limit): &PySettings,
) -> PyResult<Strategy> {
    let kind: Kind = parse(name, str::parse)?;
    let settings = Settings {
        batch_size: *batch_size,
        num_samples: *num_samples,
        beta: *beta,
        seed: *seed,
        greedy: parse(greedy, bald::greedy_named)?,
        past_limit: parse(past_limit, str::parse)?,
    };
    Ok(Strategy::new(kind, settings))
}

/// One acquisition: the batch's pool indices (in pick order) and scores, and what BatchBALD
/// records of it ([`Batch`]). `warn(message)` is called with each warning when it applies
/// (before any work, or at the pick), `progress(done, total)` after each BatchBALD pick.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (log_probs, strategy, batch_size, num_samples, beta, seed, backend, input_kind, layout, greedy, past_limit, exclude, warn, progress, targets=None, targets_kind="log_probs"))]
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
    targets: Option<&Bound<'py, PyAny>>,
    targets_kind: &str,
) -> PyResult<Batch<'py>> {
    let strategy = strategy_of(&(
        strategy.into(),
        batch_size,
        num_samples,
        beta,
        seed,
        greedy.into(),
        past_limit.into(),
    ))?;
    let backend: Device = parse(backend, str::parse)?;
    let input_kind: InputKind = parse(input_kind, str::parse)?;
    let layout: Layout = parse(layout, str::parse)?;
    let input = Input::of(log_probs, input_kind)?;
    let (place, shape) = input.place(layout)?;
    let targets = targets.map(Pool::of).transpose()?;
    let targets = targets.as_ref().map(|t| t.values()).transpose()?;
    // The arguments first, before the values are read through.
    let target_shape = targets.map(|(_, dims)| layout.shape(dims));
    bald::check(&strategy, shape, &exclude, target_shape).map_err(Failure::from)?;
    let (options, target_options) = pool_options(input_kind, targets_kind, layout)?;
    let (warn, progress) = (warn.clone().unbind(), progress.map(|p| p.clone().unbind()));
    let run = || -> Result<Acquisition, Failure> {
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
        let targets = match &targets {
            Some((values, dims)) => {
                Some(bald::Pool::from_slice_with(values, *dims, target_options)?)
            }
            None => None,
        };
        let outcome = match place {
            Place::Host(values, dims) => {
                let acquired =
                    bald::Pool::from_slice_with(&values, dims, options).and_then(|pool| {
                        let options = Options {
                            exclude: &exclude,
                            on_pick: Some(&mut on_pick),
                            on_warning: Some(&mut on_warning),
                            all_scores: false,
                            targets: targets.as_ref(),
                        };
                        bald::acquire_with(&pool, strategy, backend, options)
                    });
                acquired.map_err(Failure::from)
            }
            Place::Gpu(gpu) => {
                if let Some(w) = Warning::for_layout(shape, layout) {
                    on_warning(&w);
                }
                let job = GpuAcquire {
                    strategy: &strategy,
                    options: Options {
                        exclude: &exclude,
                        on_pick: Some(&mut on_pick),
                        on_warning: Some(&mut on_warning),
                        all_scores: false,
                        targets: targets.as_ref(),
                    },
                };
                gpu.compute(backend, job).map(|(mut a, seconds)| {
                    a.seconds = seconds;
                    a
                })
            }
        };
        match (outcome, raised.into_inner()) {
            (_, Some(e)) => Err(Failure::Interrupted(e)),
            (outcome, None) => outcome,
        }
    };
    let acquired = py.detach(run)?;
    let Acquisition {
        indices,
        scores,
        evaluations,
        regimes,
        standard_errors,
        information_limit,
        switched_at,
        backend,
        seconds,
        ..
    } = acquired;
    let indices: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Ok((
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, scores),
        evaluations,
        backend,
        seconds,
        regimes.iter().map(|r| r.name()).collect(),
        PyArray1::from_vec(py, standard_errors),
        information_limit,
        switched_at,
    ))
}

/// Every point's `score`: a float64 array of N, the backend's name and the seconds it took.
#[pyfunction]
#[pyo3(signature = (log_probs, score, backend, input_kind, layout))]
fn scores<'py>(
    py: Python<'py>,
    log_probs: &Bound<'py, PyAny>,
    score: &str,
    backend: &str,
    input_kind: &str,
    layout: &str,
) -> PyResult<(Bound<'py, PyArray1<f64>>, &'static str, f64)> {
    let score = parse(score, bald::score_named)?;
    let backend: Device = parse(backend, str::parse)?;
    let input_kind: InputKind = parse(input_kind, str::parse)?;
    let layout: Layout = parse(layout, str::parse)?;
    let input = Input::of(log_probs, input_kind)?;
    let (place, shape) = input.place(layout)?;
    if shape.k < 2 && score == bald::Score::MeanStd(bald::StdKind::Unbiased) {
        return Err(
            Failure::from(bald::Error::Argument(bald::Argument::NeedsTwoSamples {
                strategy: false,
                name: score.name(),
            }))
            .into(),
        );
    }
    let run = || -> Result<(Vec<f64>, &'static str, f64), Failure> {
        match place {
            Place::Host(values, dims) => {
                let start = std::time::Instant::now();
                let options = PoolOptions {
                    kind: input_kind,
                    layout,
                };
                let pool = bald::Pool::from_slice_with(&values, dims, options)?;
                let prepared = pool.on(backend)?;
                let all = prepared.scores(score)?;
                Ok((all, prepared.backend(), start.elapsed().as_secs_f64()))
            }
            Place::Gpu(gpu) => {
                let (all, seconds) = gpu.compute(backend, GpuScores(score))?;
                Ok((all, "cuda", seconds))
            }
        }
    };
    let (all, name, seconds) = py.detach(run)?;
    Ok((PyArray1::from_vec(py, all), name, seconds))
}

/// Every pool point's EPIG against `targets` (a NumPy array in `layout`, holding
/// `targets_kind`, from the same K posterior samples as the pool), float64, with the
/// backend's name and seconds.
#[pyfunction]
fn epig<'py>(
    py: Python<'py>,
    log_probs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    backend: &str,
    input_kind: &str,
    layout: &str,
    targets_kind: &str,
) -> PyResult<(Bound<'py, PyArray1<f64>>, &'static str, f64)> {
    let backend: Device = parse(backend, str::parse)?;
    let input_kind: InputKind = parse(input_kind, str::parse)?;
    let layout: Layout = parse(layout, str::parse)?;
    let input = Input::of(log_probs, input_kind)?;
    let (place, shape) = input.place(layout)?;
    let targets = Pool::of(targets)?;
    let (target_values, target_dims) = targets.values()?;
    bald_core::check_targets(shape, layout.shape(target_dims))
        .map_err(|e| Failure::from(bald::Error::from(e)))?;
    let (options, target_options) = pool_options(input_kind, targets_kind, layout)?;
    let run = || -> Result<(Vec<f64>, &'static str, f64), Failure> {
        let start = std::time::Instant::now();
        let targets = bald::Pool::from_slice_with(&target_values, target_dims, target_options)?;
        match place {
            Place::Host(values, dims) => {
                let pool = bald::Pool::from_slice_with(&values, dims, options)?;
                let prepared = pool.on(backend)?;
                let all = prepared.epig(&targets)?;
                Ok((all, prepared.backend(), start.elapsed().as_secs_f64()))
            }
            Place::Gpu(gpu) => {
                let (all, seconds) = gpu.compute(backend, GpuEpig(&targets))?;
                Ok((all, "cuda", seconds))
            }
        }
    };
    let (all, name, seconds) = py.detach(run)?;
    Ok((PyArray1::from_vec(py, all), name, seconds))
}

/// The pool's options, and its targets' (the targets may hold another input kind: a torch
/// pool on the GPU arrives as log-probs, its targets on the host as given).
fn pool_options(
    kind: InputKind,
    targets_kind: &str,
    layout: Layout,
) -> PyResult<(PoolOptions, PoolOptions)> {
    let targets = PoolOptions {
        kind: parse(targets_kind, str::parse)?,
        layout,
    };
    Ok((PoolOptions { kind, layout }, targets))
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
    m.add_function(wrap_pyfunction!(epig, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_keep_mask, m)?)?;
    m.add_function(wrap_pyfunction!(shards::check, m)?)?;
    m.add_function(wrap_pyfunction!(shards::rank, m)?)?;
    m.add_function(wrap_pyfunction!(shards::merge_ranked, m)?)?;
    m.add_class::<shards::Shard>()?;
    m.add_class::<shards::Driver>()?;
    Ok(())
}
