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
            _ => return Err(out_of_turn()),
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
            _ => Err(out_of_turn()),
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
            _ => Err(out_of_turn()),
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

/// A reply to another command than the one asked: a call whose reply was left unread.
fn out_of_turn() -> Error {
    Error::Backend("the shard answered another command: an earlier reply was left unread".into())
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

/// The driver's side of greedy BatchBALD over shards: the batch so far (picks, scores,
/// regimes, the picks' points), the information limit, and the end. The shards never see each
/// other; each step the driver [`Driver::merge`]s their proposals, sends the pick with its
/// point to every shard ([`Shard::commit`]) and [`Driver::record`]s it.
#[derive(Debug, Clone)]
pub struct Driver {
    strategy: BatchBald,
    k: usize,
    c: usize,
    batch: usize,
    picks: Acquisition,
    rows: Vec<f64>,
    stopped: bool,
}

impl Driver {
    /// The driver of `strategy` over shards of K x C points, `whole_n` of them in all, of which
    /// `candidates` can be picked (the sum of [`Shard::batch`]). Past the information limit,
    /// [`PastLimit::Stop`] and [`PastLimit::Continue`] apply; the PowerBALD tail of
    /// [`PastLimit::PowerBald`] is drawn over the whole pool's scores, which shards do not
    /// gather: it is [`Argument::ShardedPowerBaldTail`], before any work.
    pub fn new(
        strategy: &BatchBald,
        (k, c): (usize, usize),
        (whole_n, candidates): (usize, usize),
    ) -> Result<Driver> {
        if strategy.past_limit == PastLimit::PowerBald {
            return Err(Argument::ShardedPowerBaldTail.into());
        }
        let batch = strategy.core().picks(whole_n).min(candidates);
        Ok(Driver {
            strategy: *strategy,
            k,
            c,
            batch,
            picks: Acquisition::default(),
            rows: Vec::with_capacity(batch * k * c),
            stopped: false,
        })
    }

    /// The whole pool's batch: set it on every shard before the first step.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether the batch is complete (full, or stopped at the information limit).
    pub fn done(&self) -> bool {
        self.stopped || self.picks.indices.len() == self.batch
    }

    /// The step of the whole pool from every shard's proposal (in shard order): the pick, and
    /// how many of each shard's evaluations to keep.
    pub fn merge(&self, proposals: &[Proposal]) -> Result<(Evaluated, Vec<usize>)> {
        merge(proposals).ok_or_else(|| Error::Backend("no candidate is left in any shard".into()))
    }

    /// Records the step's `pick`, its K x C `point` (from its shard) and the `evaluations` the
    /// shards made; the information-limit warning when the batch reaches ln K, which it also
    /// returns.
    pub fn record(
        &mut self,
        pick: Evaluated,
        point: &[f64],
        evaluations: usize,
    ) -> Result<Option<Warning>> {
        let (k, c) = (self.k, self.c);
        if self.done() {
            return Err(Error::Backend("the batch is complete".into()));
        }
        if point.len() != k * c {
            return Err(Error::Backend(format!(
                "the pick's point has {} values, not K x C = {}",
                point.len(),
                k * c
            )));
        }
        let a = &mut self.picks;
        let t = a.indices.len();
        self.rows.extend_from_slice(point);
        a.indices.push(pick.index);
        a.scores.push(pick.score);
        a.evaluations.push(evaluations);
        a.regimes.push(match self.strategy.core().regime_at(c, t) {
            bald_core::Regime::Exact => PickRegime::Exact,
            bald_core::Regime::Sampled => PickRegime::Sampled,
        });
        if a.information_limit.is_some() || !at_information_limit(pick.score, k) {
            return Ok(None);
        }
        a.information_limit = Some(t + 1);
        if t + 1 == self.batch {
            return Ok(None);
        }
        let w = Warning::InformationLimit {
            at: t + 1,
            total: self.batch,
            k,
            past_limit: self.strategy.past_limit,
        };
        a.warnings.push(w);
        if self.strategy.past_limit == PastLimit::Stop {
            a.switched_at = Some(t + 1);
            self.stopped = true;
        }
        Ok(Some(w))
    }

    /// The batch, with each pick's standard error (from the picks' points alone).
    pub fn finish(self) -> Result<Acquisition> {
        let mut a = self.picks;
        let made = a.indices.len();
        a.standard_errors = match made {
            0 => vec![],
            _ => {
                let picks =
                    LogProbs::new(&self.rows, Shape::new(made, self.k, self.c)).map_err(failed)?;
                let order: Vec<usize> = (0..made).collect();
                bald_core::owned::standard_errors(&Scalar, &picks, self.strategy.core(), &order)
                    .map_err(failed)?
            }
        };
        a.backend = "shards";
        Ok(a)
    }
}

/// Greedy BatchBALD over `shards` (their offsets cover the whole pool, in order) in this
/// process, as [`crate::acquire`] picks on the whole pool: the same picks, scores, regimes,
/// standard errors and information-limit warning ([`Driver`] says which limits apply). The
/// shards evaluate each step's candidates in parallel, each on its own thread.
pub fn acquire(shards: &mut [Shard], strategy: &BatchBald) -> Result<Acquisition> {
    let Some(first) = shards.first() else {
        return Ok(Acquisition::default());
    };
    let kc = (first.shape.k, first.shape.c);
    let whole_n = shards.iter().map(|s| s.shape.n).sum();
    let candidates = shards.iter().map(|s| s.batch).sum();
    let mut driver = Driver::new(strategy, kc, (whole_n, candidates))?;
    for s in shards.iter_mut() {
        s.set_batch(driver.batch())?;
    }
    while !driver.done() {
        for s in shards.iter() {
            s.send(Command::Propose)?;
        }
        // Every reply is read before an error returns, so that none is left for a later call.
        let proposals: Vec<Result<Proposal>> = shards.iter().map(|s| s.proposal()).collect();
        let proposals = proposals.into_iter().collect::<Result<Vec<_>>>()?;
        let (pick, keep) = driver.merge(&proposals)?;
        let owner = shards
            .iter()
            .position(|s| (s.offset..s.offset + s.shape.n).contains(&pick.index));
        let no_owner = || Error::Backend(format!("no shard holds the pick, index {}", pick.index));
        let owner = owner.ok_or_else(no_owner)?;
        let (row, cond) = shards[owner].point_of(pick.index)?.ok_or_else(no_owner)?;
        for (i, s) in shards.iter().enumerate() {
            let remote = (i != owner).then(|| (row.clone(), cond));
            s.send(Command::Commit {
                keep: keep[i],
                pick,
                remote,
            })?;
        }
        let replies: Vec<Result<Reply>> = shards.iter().map(|s| s.reply()).collect();
        for r in replies {
            r?;
        }
        let evaluations = proposals.iter().map(|p| p.evaluations).sum();
        driver.record(pick, &row, evaluations)?;
    }
    driver.finish()
}
