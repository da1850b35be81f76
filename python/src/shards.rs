//! A pool split in shards, for a cluster's driver (`bald.ray`): `Shard`, a shard's points and
//! its part of each greedy BatchBALD step (held by a Ray actor), and `Driver`, the batch so
//! far (held by the driver). Thin clients of `bald::shard`.

use std::sync::Mutex;

use bald::npy::{NpyArray, NpyData};
use bald::shard::Proposal;
use bald::{Device, PoolOptions, Spelling, Strategy, Values};
use bald_core::Evaluated;
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::errors::{parse, Failure};
use crate::host::Pool;

/// BatchBALD's parameters from the wrapper's arguments.
fn batchbald(
    batch_size: usize,
    num_samples: usize,
    seed: u64,
    greedy: &str,
    past_limit: &str,
) -> PyResult<bald::BatchBald> {
    Ok(Strategy::batchbald(batch_size)
        .num_samples(num_samples)
        .seed(seed)
        .greedy(parse(greedy, bald::greedy_named)?)
        .past_limit(parse(past_limit, str::parse)?))
}

/// A shard's proposal as the wrapper passes it: (bounds, indices, scores, previous, widening,
/// evaluations).
type PyProposal = (Vec<f64>, Vec<usize>, Vec<f64>, f64, f64, usize);

/// One shard of a pool: its log-probs (N x K x C, copied once), at `offset` in a pool of
/// `whole_n` points, prepared on `backend` (`cpu` or `scalar`), `exclude` (indices in the
/// shard) never picked.
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
    #[pyo3(signature = (log_probs, offset, whole_n, batch_size, num_samples, seed, greedy, past_limit, backend, exclude))]
    fn new(
        py: Python<'_>,
        log_probs: &Bound<'_, PyAny>,
        offset: usize,
        whole_n: usize,
        batch_size: usize,
        num_samples: usize,
        seed: u64,
        greedy: &str,
        past_limit: &str,
        backend: &str,
        exclude: Vec<usize>,
    ) -> PyResult<Self> {
        let strategy = batchbald(batch_size, num_samples, seed, greedy, past_limit)?;
        let device: Device = parse(backend, str::parse)?;
        let pool = Pool::of(log_probs)?;
        let (values, dims) = pool.values()?;
        let data = match values {
            Values::F16(v) => NpyData::F16(v.to_vec()),
            Values::F32(v) => NpyData::F32(v.to_vec()),
            Values::F64(v) => NpyData::F64(v.to_vec()),
        };
        let array = NpyArray {
            shape: dims.to_vec(),
            data,
        };
        let shard = py
            .detach(|| {
                let pool = bald::Pool::from_array(array, PoolOptions::default())?;
                bald::shard::Shard::new(pool, (offset, whole_n), &strategy, device, exclude)
            })
            .map_err(|e| Failure::from(e.at_offset(offset)))?;
        Ok(Shard(Mutex::new(shard)))
    }

    /// The picks it can take part in (its batch clamped to its points not excluded).
    fn batch(&self) -> PyResult<usize> {
        self.with(|s| Ok(s.batch()))
    }

    /// Sets the whole pool's batch, before the first step.
    fn set_batch(&self, py: Python<'_>, batch: usize) -> PyResult<()> {
        py.detach(|| self.with(|s| s.set_batch(batch)))
    }

    /// This step's proposal: (bounds, indices, scores, previous, widening, evaluations).
    fn propose(&self, py: Python<'_>) -> PyResult<PyProposal> {
        let p = py.detach(|| self.with(|s| s.propose()))?;
        Ok((
            p.evaluated.iter().map(|e| e.bound).collect(),
            p.evaluated.iter().map(|e| e.index).collect(),
            p.evaluated.iter().map(|e| e.score).collect(),
            p.previous,
            p.widening,
            p.evaluations,
        ))
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
    /// evaluations; `remote` = (point, conditional entropy) when another shard holds it.
    #[pyo3(signature = (keep, pick, remote=None))]
    fn commit(
        &self,
        py: Python<'_>,
        keep: usize,
        pick: (f64, usize, f64),
        remote: Option<(Vec<f64>, f64)>,
    ) -> PyResult<()> {
        let pick = Evaluated {
            bound: pick.0,
            index: pick.1,
            score: pick.2,
        };
        py.detach(|| self.with(|s| s.commit(keep, pick, remote)))
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
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (k, c, whole_n, candidates, batch_size, num_samples, seed, greedy, past_limit))]
    fn new(
        k: usize,
        c: usize,
        whole_n: usize,
        candidates: usize,
        batch_size: usize,
        num_samples: usize,
        seed: u64,
        greedy: &str,
        past_limit: &str,
    ) -> PyResult<Self> {
        let strategy = batchbald(batch_size, num_samples, seed, greedy, past_limit)?;
        let driver = bald::shard::Driver::new(&strategy, (k, c), (whole_n, candidates))
            .map_err(Failure::from)?;
        Ok(Driver(Mutex::new(Some(driver))))
    }

    /// The whole pool's batch.
    fn batch(&self) -> PyResult<usize> {
        self.with(|d| Ok(d.batch()))
    }

    /// Whether the batch is complete.
    fn done(&self) -> PyResult<bool> {
        self.with(|d| Ok(d.done()))
    }

    /// The step from every shard's proposal: (pick as (bound, index, score), keep per shard).
    #[allow(clippy::type_complexity)]
    fn merge(&self, proposals: Vec<PyProposal>) -> PyResult<((f64, usize, f64), Vec<usize>)> {
        let proposals: Vec<Proposal> = proposals
            .into_iter()
            .map(
                |(bounds, indices, scores, previous, widening, evaluations)| Proposal {
                    evaluated: bounds
                        .iter()
                        .zip(&indices)
                        .zip(&scores)
                        .map(|((&bound, &index), &score)| Evaluated {
                            bound,
                            index,
                            score,
                        })
                        .collect(),
                    previous,
                    widening,
                    evaluations,
                },
            )
            .collect();
        let (pick, keep) = self.with(|d| d.merge(&proposals))?;
        Ok(((pick.bound, pick.index, pick.score), keep))
    }

    /// Records the step's pick, its point and the shards' evaluations; returns the
    /// information-limit warning, in Python's words, when the batch reaches ln K.
    fn record(
        &self,
        pick: (f64, usize, f64),
        point: Vec<f64>,
        evaluations: usize,
    ) -> PyResult<Option<String>> {
        let pick = Evaluated {
            bound: pick.0,
            index: pick.1,
            score: pick.2,
        };
        let warning = self.with(|d| d.record(pick, &point, evaluations))?;
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
