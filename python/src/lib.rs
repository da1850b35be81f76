//! `bald._bald`, the native part of the Python package `bald` (`python/bald`).
//!
//! The Python wrapper hands every pool over as a C-contiguous, aligned N x K x C NumPy array
//! of float16, float32 or float64, or, for a CUDA tensor, as the tensor itself (C-contiguous,
//! float16, bfloat16, float32 or float64), which is imported through DLPack and read in place
//! by the CUDA backend, never copied to the host. This layer reads the pool in place, turns
//! names into the CLI's types, runs the CLI's acquisition code with the GIL released, and
//! raises each failure as its exception: [`InputError`] for bad values, shapes and arguments,
//! [`BackendError`] for a backend that is unavailable or fails, `KeyboardInterrupt` for Ctrl-C
//! between greedy steps.

#![warn(missing_docs)]

use std::ops::ControlFlow;
use std::time::Instant;

use std::cell::RefCell;

use bald_cli::acquire::{
    acquire_on, check_exclude, check_params, hint, point_scores, to_log_probs, Acquired, InputKind,
    Layout, Params, Request, Scored, Spelling, Values, Warning,
};
use bald_cli::backends::BackendChoice;
use bald_cli::npy::NpyData;
use bald_core::half::{bf16, f16};
use bald_core::{
    dropout_keep, keep_threshold, Element, Greedy, Hooks, Pick, PointScore, Shape, StdKind,
};
use bald_cuda::{CudaBackend, CudaError};
use clap::ValueEnum;
use dlpark::ffi::{DLDataTypeCode, DLDeviceType};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray3, PyUntypedArray, PyUntypedArrayMethods,
};
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

impl<'py> Pool<'py> {
    /// The values in place, and their shape.
    fn values(&self) -> PyResult<(Values<'_>, Shape)> {
        Ok(match self {
            Pool::F16(a) => view(a).map(|(d, s)| (Values::F16(d), s))?,
            Pool::F32(a) => view(a).map(|(d, s)| (Values::F32(d), s))?,
            Pool::F64(a) => view(a).map(|(d, s)| (Values::F64(d), s))?,
        })
    }
}

/// `values` converted from probabilities or logits to log-probs, in a copy (`None` for
/// log-probs, which are read in place).
fn converted(
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

/// An input error with its hint, from the pool's values as the caller gave them.
fn hinted(e: &bald_core::Error, values: Values<'_>, shape: Shape, kind: InputKind) -> Failure {
    Failure::Input(format!(
        "{e}{}",
        hint(e, values, shape, kind, Spelling::Python)
    ))
}

/// [`hinted`] for a failure of the host path.
fn host_failure(
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

/// The element type of a CUDA array.
#[derive(Clone, Copy)]
enum GpuDtype {
    F16,
    Bf16,
    F32,
    F64,
}

/// A pool in CUDA device memory, imported through DLPack: where it is, and `_owner`, which
/// keeps the producer's memory alive (its deleter runs when this is dropped).
struct GpuArray {
    _owner: dlpark::python::ImportedDlpack,
    place: GpuPlace,
}

impl GpuArray {
    /// Imports `x` (anything with `__dlpack__` on a CUDA device).
    fn of(x: &Bound<'_, PyAny>) -> PyResult<Self> {
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
struct GpuPlace {
    ptr: u64,
    shape: Shape,
    device: usize,
    dtype: GpuDtype,
}

/// A CUDA error as a failure: bald-core's input errors and unreadable arrays are bad input.
fn cuda_failure(e: CudaError) -> Failure {
    match e {
        CudaError::Input(e) => Failure::Input(e.to_string()),
        CudaError::NotOnDevice { .. } => Failure::Array(e.to_string()),
        e => Failure::Backend(e.to_string()),
    }
}

/// The failure of a pool on the device, an unnormalised row with the hint the host gives (its
/// C values read back from the device).
fn invalid_on_device<T: Element>(gpu: &CudaBackend, place: GpuPlace, e: CudaError) -> Failure {
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
    let at_row = err(0, 0);
    let hint = hint(
        &at_row,
        Values::F64(&row),
        Shape::new(1, 1, c),
        InputKind::LogProbs,
        Spelling::Python,
    );
    Failure::Input(format!("{}{hint}", err(n, k)))
}

/// Work on a pool that is on the device.
trait OnGpu {
    /// What the work returns.
    type Out;
    /// Runs on `pool`.
    fn run<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Self::Out, Failure>;
}

impl GpuPlace {
    /// Runs `job` on the CUDA backend of the array's GPU (`backend` must allow it), the pool
    /// validated there and read in place; returns its output and the seconds it took.
    fn run<J: OnGpu>(self, backend: BackendChoice, job: J) -> Result<(J::Out, f64), Failure> {
        if !matches!(backend, BackendChoice::Auto | BackendChoice::Cuda) {
            return Err(Failure::Array(
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
            job.run(gpu, &pool)
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
struct GpuAcquire<'e, 'p> {
    params: Params,
    exclude: &'e [usize],
    on_pick: &'p mut dyn FnMut(Pick) -> ControlFlow<()>,
    on_warning: &'p mut dyn FnMut(&Warning),
}

impl OnGpu for GpuAcquire<'_, '_> {
    type Out = Acquired;

    fn run<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Acquired, Failure> {
        let mut hooks = Hooks {
            exclude: self.exclude,
            on_pick: Some(self.on_pick),
            entropies: None,
        };
        acquire_on(gpu, pool, self.params, None, &mut hooks, self.on_warning)
            .map_err(Failure::Backend)
    }
}

/// Every point's score on the device.
struct GpuScores(PointScore);

impl OnGpu for GpuScores {
    type Out = Vec<f64>;

    fn run<T: Element>(
        self,
        gpu: &CudaBackend,
        pool: &bald_cuda::CudaPool<'_, T>,
    ) -> Result<Vec<f64>, Failure> {
        bald_core::owned::scores(gpu, pool, self.0).map_err(cuda_failure)
    }
}

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
                gpu.run(backend, job)
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
                let (scores, seconds) = gpu.run(backend, GpuScores(score))?;
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
