//! A pool split in shards, each held where its points are (a Ray actor on another machine, say):
//! greedy BatchBALD one step at a time, with the same picks and scores as [`crate::acquire`] on
//! the whole pool.
//!
//! A [`Shard`] holds its points, prepared once on a host backend, and its part of each step
//! (bald-core's [`bald_core::GreedyShard`]). A driver holds the batch so far: each step it asks
//! every shard for a [`Proposal`], merges them ([`merge`]), fetches the pick's K x C point from
//! the shard that holds it ([`Shard::point_of`]) and sends it to every shard
//! ([`Shard::commit`]). Only a proposal (a few evaluated candidates) and one point cross
//! between the driver and a shard at each step. [`acquire`] is that driver for shards in this
//! process; a cluster's driver makes the same calls through its own transport.

use std::sync::mpsc;
use std::thread;

use bald_core::{
    merge_step, Backend, Element, Evaluated, GreedyShard, LogProbs, PreparedPool, Scalar, Shape,
};

use crate::acquire::{at_information_limit, Acquisition, PickRegime, Warning};
use crate::device::Device;
use crate::error::{Argument, Error, Result};
use crate::pool::{failed, Entropies, Pool, PoolJob};
use crate::strategy::{BatchBald, PastLimit};

/// A shard's part of one greedy step: what [`merge`] needs from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The candidates it evaluated, in the order it evaluated them, with indices in the whole
    /// pool.
    pub evaluated: Vec<Evaluated>,
    /// The score this step's gains are measured from (the same on every shard).
    pub previous: f64,
    /// This step's widening of the lazy bounds (the same on every shard).
    pub widening: f64,
    /// Candidates it evaluated.
    pub evaluations: usize,
}

/// The step of the whole pool from every shard's proposal: the pick, and how many of each
/// shard's evaluations it keeps (for [`Shard::commit`]). `None` when no candidate is left.
pub fn merge(proposals: &[Proposal]) -> Option<(Evaluated, Vec<usize>)> {
    let first = proposals.first()?;
    let mut keep = vec![0; proposals.len()];
    let mut lists: Vec<_> = proposals
        .iter()
        .map(|p| p.evaluated.iter().copied().peekable())
        .collect();
    let pick = merge_step(&mut lists, &mut keep, first.previous, first.widening)?;
    Some((pick, keep))
}

enum Command {
    SetBatch(usize),
    Propose,
    PointOf(usize),
    Commit {
        keep: usize,
        pick: Evaluated,
        remote: Option<(Vec<f64>, f64)>,
    },
}

enum Reply {
    Ready(usize),
    Done,
    Proposal(Proposal),
    Point(Option<(Vec<f64>, f64)>),
}

/// One shard of a pool: its points (indices `offset..offset + N` in the whole pool), prepared
/// once on a host backend, and its part of each greedy BatchBALD step. It works on a thread of
/// its own, which ends when the shard is dropped.
pub struct Shard {
    commands: mpsc::Sender<Command>,
    replies: mpsc::Receiver<Result<Reply>>,
    worker: Option<thread::JoinHandle<()>>,
    shape: Shape,
    offset: usize,
    batch: usize,
}

impl Shard {
    /// The shard of `pool`'s points at `offset..` in the whole pool, for a batch of
    /// `strategy`, prepared on `device` (`Auto`, `Cpu` or `Scalar`: a shard runs on the host),
    /// with `exclude` (indices in the shard) never picked. The batch is clamped to the whole
    /// pool's points, `whole_n`.
    pub fn new(
        pool: Pool<'static>,
        (offset, whole_n): (usize, usize),
        strategy: &BatchBald,
        device: Device,
        exclude: Vec<usize>,
    ) -> Result<Shard> {
        let device = match device {
            Device::Auto => Device::Cpu,
            Device::Cuda(_) => {
                return Err(Error::Unavailable {
                    device: "cuda",
                    reason: "a shard runs its greedy steps on the host (`cpu` or `scalar`)".into(),
                })
            }
            d => d,
        };
        let shape = pool.shape();
        crate::acquire::check_exclude(&exclude, shape.n)?;
        let params = strategy.core();
        // At least one pick's state; a batch of 0 makes no step.
        let batch = params.picks(whole_n.max(shape.n)).max(1);
        let (commands, inbox) = mpsc::channel();
        let (outbox, replies) = mpsc::channel();
        let worker = thread::spawn(move || {
            let job = Serve {
                params,
                offset,
                batch,
                exclude: &exclude,
                inbox,
                outbox: outbox.clone(),
            };
            if let Err(e) = pool.on(device).and_then(|p| p.visit(job)) {
                let _ = outbox.send(Err(e));
            }
        });
        let mut shard = Shard {
            commands,
            replies,
            worker: Some(worker),
            shape,
            offset,
            batch: 0,
        };
        match shard.reply()? {
            Reply::Ready(batch) => shard.batch = batch,
            _ => unreachable!("a shard's first reply is Ready"),
        }
        Ok(shard)
    }

    /// Its points, K and C.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Its first point's index in the whole pool.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The picks it can take part in: its batch, clamped to its points not excluded. The
    /// whole pool's batch is the smallest of the batch asked for and the sum over shards.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sets the whole pool's batch, before the first step.
    pub fn set_batch(&mut self, batch: usize) -> Result<()> {
        self.send(Command::SetBatch(batch))?;
        self.reply().map(|_| ())
    }

    /// This step's proposal: the shard's candidates evaluated until its best is certain.
    pub fn propose(&mut self) -> Result<Proposal> {
        self.send(Command::Propose)?;
        self.proposal()
    }

    /// The K x C point (as f64) and conditional entropy of the whole pool's point `index`,
    /// when this shard holds it.
    pub fn point_of(&mut self, index: usize) -> Result<Option<(Vec<f64>, f64)>> {
        self.send(Command::PointOf(index))?;
        match self.reply()? {
            Reply::Point(p) => Ok(p),
            _ => unreachable!("PointOf replies with a point"),
        }
    }

    /// Ends the step with `pick` ([`merge`]'s), keeping `keep` of this shard's evaluations;
    /// `remote` is the pick's point and conditional entropy when another shard holds it.
    pub fn commit(
        &mut self,
        keep: usize,
        pick: Evaluated,
        remote: Option<(Vec<f64>, f64)>,
    ) -> Result<()> {
        self.send(Command::Commit { keep, pick, remote })?;
        self.reply().map(|_| ())
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| gone())
    }

    fn reply(&self) -> Result<Reply> {
        self.replies.recv().map_err(|_| gone())?
    }

    fn proposal(&self) -> Result<Proposal> {
        match self.reply()? {
            Reply::Proposal(p) => Ok(p),
            _ => unreachable!("Propose replies with a proposal"),
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        let (closed, _) = mpsc::channel();
        self.commands = closed;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn gone() -> Error {
    Error::Backend("the shard's worker has stopped".into())
}

/// A shard's worker: its greedy state, serving commands until the shard is dropped.
struct Serve<'x> {
    params: bald_core::BatchBald,
    offset: usize,
    batch: usize,
    exclude: &'x [usize],
    inbox: mpsc::Receiver<Command>,
    outbox: mpsc::Sender<Result<Reply>>,
}

impl PoolJob for Serve<'_> {
    type Out = ();

    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        entropies: Option<&Entropies>,
    ) -> Result<()> {
        let shape = pool.shape();
        let mut ws = vec![
            0.0;
            self.params
                .shard_workspace_len(shape, self.batch)
                .map_err(failed)?
        ];
        let given = entropies.map(|(h, eh)| (&h[..], &eh[..]));
        let mut shard = GreedyShard::new(
            backend,
            pool,
            &self.params,
            (self.offset, self.batch),
            &mut ws,
            self.exclude,
            given,
        )
        .map_err(failed)?;
        let _ = self.outbox.send(Ok(Reply::Ready(shard.batch())));
        for command in self.inbox {
            let reply = match command {
                Command::SetBatch(b) => {
                    shard.set_batch(b);
                    Ok(Reply::Done)
                }
                Command::Propose => shard.propose().map_err(failed).map(|evaluations| {
                    Reply::Proposal(Proposal {
                        evaluated: shard.evaluated().collect(),
                        previous: shard.previous(),
                        widening: shard.widening(),
                        evaluations,
                    })
                }),
                Command::PointOf(index) => {
                    Ok(Reply::Point(shard.point_of(index).map(|(point, h)| {
                        (point.iter().map(|v| v.to_f64()).collect(), h)
                    })))
                }
                Command::Commit { keep, pick, remote } => shard
                    .commit(keep, pick, remote.as_ref().map(|(p, h)| (&p[..], *h)))
                    .map_err(failed)
                    .map(|_| Reply::Done),
            };
            if self.outbox.send(reply).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Greedy BatchBALD over `shards` (their offsets cover the whole pool, in order), as
/// [`crate::acquire`] picks on the whole pool: the same picks, scores, regimes, standard errors
/// and information-limit warning. The shards evaluate each step's candidates in parallel.
/// Past the limit, [`PastLimit::Stop`] and [`PastLimit::Continue`] apply; the PowerBALD tail
/// of [`PastLimit::PowerBald`] is drawn over the whole pool's scores, which shards do not
/// gather: it is [`Argument::ShardedPowerBaldTail`] here, before any work.
pub fn acquire(shards: &mut [Shard], strategy: &BatchBald) -> Result<Acquisition> {
    if strategy.past_limit == PastLimit::PowerBald {
        return Err(Argument::ShardedPowerBaldTail.into());
    }
    let params = strategy.core();
    let (k, c) = match shards.first() {
        Some(s) => (s.shape.k, s.shape.c),
        None => return Ok(Acquisition::default()),
    };
    let whole: usize = shards.iter().map(|s| s.shape.n).sum();
    let b = params
        .picks(whole)
        .min(shards.iter().map(|s| s.batch).sum());
    for s in shards.iter_mut() {
        s.set_batch(b)?;
    }
    let mut a = Acquisition::default();
    let mut rows: Vec<f64> = Vec::with_capacity(b * k * c);
    for t in 0..b {
        for s in shards.iter() {
            s.send(Command::Propose)?;
        }
        let proposals = shards
            .iter()
            .map(|s| s.proposal())
            .collect::<Result<Vec<_>>>()?;
        let (pick, keep) = merge(&proposals).ok_or(Error::Backend("no candidate left".into()))?;
        let mut point = None;
        for (i, s) in shards.iter_mut().enumerate() {
            if let Some(p) = s.point_of(pick.index)? {
                point = Some((i, p));
            }
        }
        let (owner, (row, cond)) = point.ok_or(Error::Backend(format!(
            "no shard holds the pick {}",
            pick.index
        )))?;
        for (i, s) in shards.iter().enumerate() {
            let remote = (i != owner).then(|| (row.clone(), cond));
            s.send(Command::Commit {
                keep: keep[i],
                pick,
                remote,
            })?;
        }
        for s in shards.iter() {
            s.reply()?;
        }
        rows.extend_from_slice(&row);
        a.indices.push(pick.index);
        a.scores.push(pick.score);
        a.evaluations
            .push(proposals.iter().map(|p| p.evaluations).sum());
        a.regimes.push(match params.regime_at(c, t) {
            bald_core::Regime::Exact => PickRegime::Exact,
            bald_core::Regime::Sampled => PickRegime::Sampled,
        });
        if a.information_limit.is_none() && at_information_limit(pick.score, k) {
            a.information_limit = Some(t + 1);
            if t + 1 < b {
                a.warnings.push(Warning::InformationLimit {
                    at: t + 1,
                    total: b,
                    k,
                    past_limit: strategy.past_limit,
                });
                if strategy.past_limit == PastLimit::Stop {
                    a.switched_at = Some(t + 1);
                    break;
                }
            }
        }
    }
    let made = a.indices.len();
    let picks = LogProbs::new(&rows, Shape::new(made, k, c)).map_err(failed)?;
    let order: Vec<usize> = (0..made).collect();
    a.standard_errors = match made {
        0 => vec![],
        _ => bald_core::owned::standard_errors(&Scalar, &picks, params, &order).map_err(failed)?,
    };
    a.backend = "shards";
    Ok(a)
}
