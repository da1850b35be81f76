//! A pool split in shards, for a cluster's driver (`bald.ray`): `check`, the arguments
//! against the whole pool before any work; `rank` and `merge_ranked`, a shard's part of a
//! strategy that ranks points by one key, and the whole pool's batch from the parts; `Shard`,
//! a shard's points and its part of each greedy BatchBALD step (held by a Ray actor); and
//! `Driver`, the batch so far (held by the driver). Thin clients of `bald::shard` and
//! `bald::rank`.

use std::sync::Mutex;

use bald::npy::{NpyArray, NpyData};
use bald::rank::Ranked;
use bald::shard::{Proposal, Step};
use bald::{Device, Layout, PoolOptions, Shape, Spelling, Strategy, Values, Warning};
use bald_core::Evaluated;
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::errors::{parse, Failure};
use crate::host::Pool;
use crate::{strategy_of, PySettings};

/// BatchBALD's parameters from the wrapper's settings.
fn batchbald(settings: &PySettings) -> PyResult<bald::BatchBald> {
    match strategy_of(settings)? {
        Strategy::BatchBald(b) => Ok(b),
        other => Err(Failure::from(bald::Error::Backend(format!(
            "a shard's greedy steps are BatchBALD's, not {}'s",
            other.name()
        )))
        .into()),
    }
}

/// A ranking as the wrapper passes it: (keys, indices, scores).
type PyRanked = (Vec<f64>, Vec<usize>, Vec<f64>);

fn py_ranked(r: Ranked) -> PyRanked {
    (r.keys, r.indices, r.scores)
}

/// The pool options the wrapper's names give.
fn options(input_kind: &str, layout: &str) -> PyResult<PoolOptions> {
    Ok(PoolOptions {
        kind: parse(input_kind, str::parse)?,
        layout: parse(layout, str::parse)?,
    })
}

/// A shard's values as an array the shard owns (copied once, in the caller's layout).
fn owned(log_probs: &Bound<'_, PyAny>) -> PyResult<NpyArray> {
    let pool = Pool::of(log_probs)?;
    let (values, dims) = pool.values()?;
    let data = match values {
        Values::F16(v) => NpyData::F16(v.to_vec()),
        Values::F32(v) => NpyData::F32(v.to_vec()),
        Values::F64(v) => NpyData::F64(v.to_vec()),
    };
    Ok(NpyArray {
        shape: dims.to_vec(),
        data,
    })
}

/// Checks the strategy's `settings` against the whole pool, whose array has dimensions `dims`
/// in `layout`, the indices to `exclude` and EPIG's targets' dimensions, before any work: the
/// warnings that apply, in Python's words; InputError for arguments that are refused.
#[pyfunction]
#[pyo3(signature = (settings, dims, layout, exclude, targets=None))]
pub(crate) fn check(
    settings: PySettings,
    dims: [usize; 3],
    layout: &str,
    exclude: Vec<usize>,
    targets: Option<[usize; 3]>,
) -> PyResult<Vec<String>> {
    let strategy = strategy_of(&settings)?;
    bald::check_across_shards(&strategy).map_err(Failure::from)?;
    let layout: Layout = parse(layout, str::parse)?;
    let shape: Shape = layout.shape(dims);
    let targets = targets.map(|t| layout.shape(t));
    let mut warnings = bald::check(&strategy, shape, &exclude, targets).map_err(Failure::from)?;
    warnings.splice(0..0, Warning::for_layout(shape, layout));
    Ok(warnings
        .iter()
        .map(|w| w.message(Spelling::Python))
        .collect())
}

/// A shard's part of a strategy that ranks points by one key: its best points (keys, indices
/// in the whole pool, scores), from its values (in `layout`, holding `input_kind`), points
/// `offset..` of the whole pool, never those in `exclude` (indices in the shard), with EPIG's
/// `targets` (in the same layout and kind).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (log_probs, settings, backend, input_kind, layout, offset, exclude, targets=None))]
pub(crate) fn rank(
    py: Python<'_>,
    log_probs: &Bound<'_, PyAny>,
    settings: PySettings,
    backend: &str,
    input_kind: &str,
    layout: &str,
    offset: usize,
    exclude: Vec<usize>,
    targets: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyRanked> {
    let strategy = strategy_of(&settings)?;
    let device: Device = parse(backend, str::parse)?;
    let options = options(input_kind, layout)?;
    let array = owned(log_probs)?;
    let targets = targets.map(owned).transpose()?;
    let targets = targets
        .map(|t| bald::Pool::from_array(t, options))
        .transpose()
        .map_err(Failure::from)?;
    let r = py
        .detach(|| {
            let pool = bald::Pool::from_array(array, options)?;
            pool.on(device)?
                .rank(strategy, (offset, &exclude), targets.as_ref())
        })
        .map_err(|e| Failure::from(e.at_offset(offset)))?;
    Ok(py_ranked(r))
}

/// The whole pool's `batch` from every shard's part (`rank`, or `Shard.tail`): (indices,
/// scores).
#[pyfunction]
pub(crate) fn merge_ranked<'py>(
    py: Python<'py>,
    parts: Vec<PyRanked>,
    batch: usize,
) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>) {
    let parts: Vec<Ranked> = parts.into_iter().map(ranked).collect();
    let r = bald::rank::merge(&parts, batch);
    let indices = r.indices.iter().map(|&i| i as i64).collect();
    (
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, r.scores),
    )
}

fn ranked((keys, indices, scores): PyRanked) -> Ranked {
    Ranked {
        keys,
        indices,
        scores,
    }
}

/// A candidate as the wrapper passes it: (bound, index, score).
type PyEvaluated = (f64, usize, f64);

fn evaluated((bound, index, score): PyEvaluated) -> Evaluated {
    Evaluated {
        bound,
        index,
        score,
    }
}

fn py_evaluated(e: Evaluated) -> PyEvaluated {
    (e.bound, e.index, e.score)
}

/// A shard's proposal as the wrapper passes it: (best, (best's point, its conditional entropy),
/// previous, widening, evaluations).
type PyProposal<'py> = (
    Option<PyEvaluated>,
    Option<(Bound<'py, PyArray1<f64>>, f64)>,
    f64,
    f64,
    usize,
);

/// The proposals as [`bald::shard::Driver`] reads them (their points stay with the wrapper).
fn proposals(list: Vec<PyProposal<'_>>) -> Vec<Proposal> {
    list.into_iter()
        .map(|(best, _, previous, widening, evaluations)| Proposal {
            best: best.map(evaluated),
            point: None,
            previous,
            widening,
            evaluations,
        })
        .collect()
}

/// One shard of a pool: its values (in `layout`, holding `input_kind`; copied once), at
/// `offset` in a pool of `whole_n` points, prepared on `backend` (`cpu` or `scalar`) for
/// BatchBALD with `settings`, `exclude` (indices in the shard) never picked.
#[pyclass(module = "bald._bald")]
pub(crate) struct Shard(Mutex<bald::shard::Shard>);

impl Shard {
    fn with<R>(&self, f: impl FnOnce(&mut bald::shard::Shard) -> bald::Result<R>) -> PyResult<R> {
        let mut shard = self
            .0
            .lock()
            .map_err(|_| Failure::from(bald::Error::Backend("a shard call panicked".into())))?;
        Ok(f(&mut shard).map_err(Failure::from)?)
    }
}

#[pymethods]
impl Shard {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (log_probs, settings, offset, whole_n, backend, input_kind, layout, exclude))]
    fn new(
        py: Python<'_>,
        log_probs: &Bound<'_, PyAny>,
        settings: PySettings,
        offset: usize,
        whole_n: usize,
        backend: &str,
        input_kind: &str,
        layout: &str,
        exclude: Vec<usize>,
    ) -> PyResult<Self> {
        let strategy = batchbald(&settings)?;
        let device: Device = parse(backend, str::parse)?;
        let options = options(input_kind, layout)?;
        let array = owned(log_probs)?;
        let shard = py
            .detach(|| {
                let pool = bald::Pool::from_array(array, options)?;
                bald::shard::Shard::new(pool, (offset, whole_n), &strategy, device, exclude)
            })
            .map_err(|e| Failure::from(e.at_offset(offset)))?;
        Ok(Shard(Mutex::new(shard)))
    }

    /// Its part of BatchBALD's PowerBALD tail: its best `rest` points by PowerBALD's keys,
    /// never its excluded points or the greedy's `picks` (indices in the whole pool): (keys,
    /// indices, scores).
    fn tail(&self, py: Python<'_>, rest: usize, picks: Vec<usize>) -> PyResult<PyRanked> {
        let r = py.detach(|| self.with(|s| s.tail(rest, &picks)))?;
        Ok(py_ranked(r))
    }

    /// The picks it can take part in (its batch clamped to its points not excluded).
    fn batch(&self) -> PyResult<usize> {
        self.with(|s| Ok(s.batch()))
    }

    /// Sets the whole pool's batch, before the first step.
    fn set_batch(&self, py: Python<'_>, batch: usize) -> PyResult<()> {
        py.detach(|| self.with(|s| s.set_batch(batch)))
    }

    /// This step's proposal: (best as (bound, index, score), (its point, its conditional
    /// entropy), previous, widening, evaluations).
    fn propose<'py>(&self, py: Python<'py>) -> PyResult<PyProposal<'py>> {
        let p = py.detach(|| self.with(|s| s.propose()))?;
        Ok((
            p.best.map(py_evaluated),
            p.point.map(|(row, h)| (PyArray1::from_vec(py, row), h)),
            p.previous,
            p.widening,
            p.evaluations,
        ))
    }

    /// This step's evaluations, (bound, index, score) each, in the order it made them.
    fn evaluated(&self, py: Python<'_>) -> PyResult<Vec<PyEvaluated>> {
        let list = py.detach(|| self.with(|s| s.evaluated()))?;
        Ok(list.into_iter().map(py_evaluated).collect())
    }

    /// The point (K x C values, float64) and conditional entropy of the whole pool's point
    /// `index`, when this shard holds it.
    #[allow(clippy::type_complexity)]
    fn point_of<'py>(
        &self,
        py: Python<'py>,
        index: usize,
    ) -> PyResult<Option<(Bound<'py, PyArray1<f64>>, f64)>> {
        let point = py.detach(|| self.with(|s| s.point_of(index)))?;
        Ok(point.map(|(row, h)| (PyArray1::from_vec(py, row), h)))
    }

    /// Ends the step with `pick` = (bound, index, score), keeping `keep` of this shard's
    /// evaluations (`None` when the bests settled the step); `remote` = (point, conditional
    /// entropy) when another shard holds it.
    #[pyo3(signature = (keep, pick, remote=None))]
    fn commit(
        &self,
        py: Python<'_>,
        keep: Option<usize>,
        pick: PyEvaluated,
        remote: Option<(Vec<f64>, f64)>,
    ) -> PyResult<()> {
        py.detach(|| self.with(|s| s.commit(keep, evaluated(pick), remote)))
    }
}

/// The driver's side of greedy BatchBALD over shards: the batch so far.
#[pyclass(module = "bald._bald")]
pub(crate) struct Driver(Mutex<Option<bald::shard::Driver>>);

impl Driver {
    fn with<R>(&self, f: impl FnOnce(&mut bald::shard::Driver) -> bald::Result<R>) -> PyResult<R> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| Failure::from(bald::Error::Backend("a driver call panicked".into())))?;
        let driver = guard
            .as_mut()
            .ok_or_else(|| Failure::from(bald::Error::Backend("the batch is finished".into())))?;
        Ok(f(driver).map_err(Failure::from)?)
    }
}

/// A finished batch as the wrapper unpacks it: indices, scores, evaluations, regimes, standard
/// errors, information limit, switched at.
type PyBatch<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<usize>,
    Vec<&'static str>,
    Bound<'py, PyArray1<f64>>,
    Option<usize>,
    Option<usize>,
);

#[pymethods]
impl Driver {
    #[new]
    fn new(
        settings: PySettings,
        k: usize,
        c: usize,
        whole_n: usize,
        candidates: usize,
    ) -> PyResult<Self> {
        let strategy = batchbald(&settings)?;
        let driver = bald::shard::Driver::new(&strategy, (k, c), (whole_n, candidates))
            .map_err(Failure::from)?;
        Ok(Driver(Mutex::new(Some(driver))))
    }

    /// The picks of the PowerBALD tail, once the greedy stopped at the information limit; 0
    /// otherwise.
    fn tail(&self) -> PyResult<usize> {
        self.with(|d| Ok(d.tail()))
    }

    /// The greedy's picks so far, indices in the whole pool.
    fn picks(&self) -> PyResult<Vec<usize>> {
        self.with(|d| Ok(d.picks().to_vec()))
    }

    /// Records the PowerBALD tail from every shard's part (`Shard.tail`).
    fn record_tail(&self, parts: Vec<PyRanked>) -> PyResult<()> {
        let parts: Vec<Ranked> = parts.into_iter().map(ranked).collect();
        self.with(|d| d.record_tail(&parts))
    }

    /// The whole pool's batch.
    fn batch(&self) -> PyResult<usize> {
        self.with(|d| Ok(d.batch()))
    }

    /// Whether the batch is complete.
    fn done(&self) -> PyResult<bool> {
        self.with(|d| Ok(d.done()))
    }

    /// How the step ends: (pick, the shard whose proposal it is) when the shards' bests settle
    /// it, else `None` (then `merge`).
    fn step(&self, proposals: Vec<PyProposal<'_>>) -> PyResult<Option<(PyEvaluated, usize)>> {
        let proposals = self::proposals(proposals);
        Ok(match self.with(|d| d.step(&proposals))? {
            Step::Settled { pick, shard } => Some((py_evaluated(pick), shard)),
            Step::Merge => None,
        })
    }

    /// The step from every shard's proposal and evaluations, when the bests do not settle it:
    /// (pick, keep per shard).
    fn merge(
        &self,
        proposals: Vec<PyProposal<'_>>,
        lists: Vec<Vec<PyEvaluated>>,
    ) -> PyResult<(PyEvaluated, Vec<usize>)> {
        let proposals = self::proposals(proposals);
        let lists: Vec<Vec<Evaluated>> = lists
            .into_iter()
            .map(|l| l.into_iter().map(evaluated).collect())
            .collect();
        let (pick, keep) = self.with(|d| d.merge(&proposals, &lists))?;
        Ok((py_evaluated(pick), keep))
    }

    /// Records the step's pick, its point and the shards' evaluations; returns the
    /// information-limit warning, in Python's words, when the batch reaches ln K.
    fn record(
        &self,
        pick: PyEvaluated,
        point: Vec<f64>,
        evaluations: usize,
    ) -> PyResult<Option<String>> {
        let warning = self.with(|d| d.record(evaluated(pick), &point, evaluations))?;
        Ok(warning.map(|w| w.message(Spelling::Python)))
    }

    /// The batch: (indices, scores, evaluations, regimes, standard errors, information limit,
    /// switched at).
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<PyBatch<'py>> {
        let driver = self
            .0
            .lock()
            .map_err(|_| Failure::from(bald::Error::Backend("a driver call panicked".into())))?
            .take()
            .ok_or_else(|| Failure::from(bald::Error::Backend("the batch is finished".into())))?;
        let a = driver.finish().map_err(Failure::from)?;
        let indices: Vec<i64> = a.indices.iter().map(|&i| i as i64).collect();
        Ok((
            PyArray1::from_vec(py, indices),
            PyArray1::from_vec(py, a.scores),
            a.evaluations,
            a.regimes.iter().map(|r| r.name()).collect(),
            PyArray1::from_vec(py, a.standard_errors),
            a.information_limit,
            a.switched_at,
        ))
    }
}
