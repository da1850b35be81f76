//! A pool split in shards, each held where its points are (a Ray actor on another machine, say):
//! greedy BatchBALD one step at a time, with the same picks and scores as [`crate::acquire`] on
//! the whole pool.
//!
//! A [`Shard`] holds its points, prepared once on a backend, and its part of each step
//! (bald-core's [`bald_core::GreedyShard`]). A driver holds the batch so far. Each step it asks
//! every shard for a [`Proposal`]: the shard's best candidate, with its K x C point. Almost
//! always the best of the bests is the pick ([`Driver::step`]); otherwise the driver fetches
//! every shard's evaluations ([`Shard::evaluated`]), merges them ([`Driver::merge`]) and
//! fetches the pick's point from its shard ([`Shard::point_of`]). Then it sends the pick and
//! its point to every shard ([`Shard::commit`]). So a step moves one proposal per shard and one
//! point each way, O(shards x K x C), whatever the pool's size. [`acquire`] is that driver for
//! shards in this process; a cluster's driver makes the same calls through its own transport.

use std::sync::mpsc;
use std::thread;

use bald_core::{
    merge_step, pick_from_bests, Backend, Element, Evaluated, GreedyShard, LogProbs, PreparedPool,
    Scalar, Shape,
};

use crate::acquire::{at_information_limit, tail_on, Acquisition, PickRegime, Warning};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::pool::{failed, Entropies, Pool, PoolJob};
use crate::rank::{merge as merge_ranked, Ranked};
use crate::strategy::{BatchBald, PastLimit};

/// A pick's K x C point (as f64) and its conditional entropy.
pub type Point = (Vec<f64>, f64);

/// A shard's part of one greedy step: its best candidate, and what [`Driver::step`] needs to
/// tell whether that settles the step.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Its best evaluation, index in the whole pool (`None` when it has no candidate left).
    pub best: Option<Evaluated>,
    /// The best's point, which the driver sends to every shard when it is the pick.
    pub point: Option<Point>,
    /// The score this step's gains are measured from (the same on every shard).
    pub previous: f64,
    /// This step's widening of the lazy bounds (the same on every shard).
    pub widening: f64,
    /// Candidates it evaluated.
    pub evaluations: usize,
}

/// How a step ends, from the shards' proposals ([`Driver::step`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The bests settle it: the pick, from shard `shard`'s proposal (with its point); every
    /// shard commits it with `keep` = `None`.
    Settled {
        /// The pick.
        pick: Evaluated,
        /// The shard whose proposal it is.
        shard: usize,
    },
    /// They do not: [`Driver::merge`] every shard's evaluations ([`Shard::evaluated`]).
    Merge,
}

enum Command {
    SetBatch(usize),
    Propose,
    Evaluated,
    PointOf(usize),
    Commit {
        keep: Option<usize>,
        pick: Evaluated,
        remote: Option<Point>,
    },
    Tail {
        rest: usize,
        picks: Vec<usize>,
    },
}

enum Reply {
    Ready(usize),
    Done,
    Proposal(Proposal),
    Evaluated(Vec<Evaluated>),
    Point(Option<Point>),
    Ranked(Ranked),
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
    /// `strategy`, prepared on `device` (on CUDA, the GPU evaluates each step's candidates and
    /// the greedy's bookkeeping stays on the host), with `exclude` (indices in the shard) never
    /// picked. The batch is clamped to the whole
    /// pool's points, `whole_n`.
    pub fn new(
        pool: Pool<'static>,
        (offset, whole_n): (usize, usize),
        strategy: &BatchBald,
        device: Device,
        exclude: Vec<usize>,
    ) -> Result<Shard> {
        let shape = pool.shape();
        crate::acquire::check_exclude(&exclude, shape.n)?;
        let params = strategy.core();
        // At least one pick's state; a batch of 0 makes no step.
        let batch = params.picks(whole_n.max(shape.n)).max(1);
        let (commands, inbox) = mpsc::channel();
        let (outbox, replies) = mpsc::channel();
        let strategy = *strategy;
        let worker = thread::spawn(move || {
            let job = Serve {
                strategy,
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

    /// This step's proposal: the shard's candidates evaluated until its best is certain, and
    /// its best.
    pub fn propose(&mut self) -> Result<Proposal> {
        self.send(Command::Propose)?;
        self.proposal()
    }

    /// This step's evaluations, in the order it made them, indices in the whole pool (for
    /// [`Driver::merge`], when the bests do not settle the step).
    pub fn evaluated(&mut self) -> Result<Vec<Evaluated>> {
        self.send(Command::Evaluated)?;
        self.evaluations()
    }

    /// The K x C point (as f64) and conditional entropy of the whole pool's point `index`,
    /// when this shard holds it.
    pub fn point_of(&mut self, index: usize) -> Result<Option<Point>> {
        self.send(Command::PointOf(index))?;
        match self.reply()? {
            Reply::Point(p) => Ok(p),
            _ => Err(out_of_turn()),
        }
    }

    /// Ends the step with `pick`, keeping `keep` of this shard's evaluations ([`Driver::merge`]'s
    /// count; `None` when the bests settled the step, [`Step::Settled`]); `remote` is the
    /// pick's point and conditional entropy when another shard holds it.
    pub fn commit(
        &mut self,
        keep: Option<usize>,
        pick: Evaluated,
        remote: Option<Point>,
    ) -> Result<()> {
        self.send(Command::Commit { keep, pick, remote })?;
        self.reply().map(|_| ())
    }

    /// Its part of BatchBALD's PowerBALD tail ([`Driver::tail`]): its best `rest` points by
    /// PowerBALD's keys, never its excluded points or the greedy's `picks` (indices in the whole
    /// pool).
    pub fn tail(&mut self, rest: usize, picks: &[usize]) -> Result<Ranked> {
        self.send(Command::Tail {
            rest,
            picks: picks.to_vec(),
        })?;
        self.ranked()
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

    fn ranked(&self) -> Result<Ranked> {
        match self.reply()? {
            Reply::Ranked(r) => Ok(r),
            _ => Err(out_of_turn()),
        }
    }

    fn evaluations(&self) -> Result<Vec<Evaluated>> {
        match self.reply()? {
            Reply::Evaluated(e) => Ok(e),
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
    strategy: BatchBald,
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
                    let best = shard.best();
                    Reply::Proposal(Proposal {
                        best,
                        point: best.and_then(|b| point_of(&shard, b.index)),
                        previous: shard.previous(),
                        widening: shard.widening(),
                        evaluations,
                    })
                }),
                Command::Evaluated => Ok(Reply::Evaluated(shard.evaluated().collect())),
                Command::PointOf(index) => Ok(Reply::Point(point_of(&shard, index))),
                Command::Commit { keep, pick, remote } => {
                    let keep = keep.unwrap_or_else(|| shard.kept(pick.score));
                    shard
                        .commit(keep, pick, remote.as_ref().map(|(p, h)| (&p[..], *h)))
                        .map_err(failed)
                        .map(|_| Reply::Done)
                }
                Command::Tail { rest, picks } => {
                    let n = shape.n;
                    let mine: Vec<usize> = picks
                        .iter()
                        .filter_map(|&i| i.checked_sub(self.offset).filter(|&i| i < n))
                        .collect();
                    tail_on(
                        backend,
                        pool,
                        &self.strategy,
                        rest,
                        self.offset,
                        self.exclude,
                        &mine,
                        given,
                    )
                    .map(Reply::Ranked)
                }
            };
            if self.outbox.send(reply).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// The point of the whole pool's `index` as f64, when `shard` holds it.
fn point_of<'a, B: Backend, T: Element + 'a>(
    shard: &GreedyShard<'_, 'a, B, T>,
    index: usize,
) -> Option<Point> {
    shard
        .point_of(index)
        .map(|(point, h)| (point.iter().map(|v| v.to_f64()).collect(), h))
}

/// The driver's side of greedy BatchBALD over shards: the batch so far (picks, scores,
/// regimes, the picks' points), the information limit, and the end. The shards never see each
/// other; each step the driver decides the pick from their proposals ([`Driver::step`], else
/// [`Driver::merge`]), sends it with its point to every shard ([`Shard::commit`]) and
/// [`Driver::record`]s it.
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
    /// `candidates` can be picked (the sum of [`Shard::batch`]).
    pub fn new(
        strategy: &BatchBald,
        (k, c): (usize, usize),
        (whole_n, candidates): (usize, usize),
    ) -> Result<Driver> {
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

    /// Whether the greedy steps are over: the batch is full, or stopped at the information
    /// limit (then [`Driver::tail`] says what is left to draw).
    pub fn done(&self) -> bool {
        self.stopped || self.picks.indices.len() == self.batch
    }

    /// The picks BatchBALD's PowerBALD tail draws: the rest of the batch, once the greedy
    /// stopped at the information limit with [`PastLimit::PowerBald`]; 0 otherwise. Each shard
    /// draws its part ([`Shard::tail`]) and [`Driver::record_tail`] merges them.
    pub fn tail(&self) -> usize {
        match self.strategy.past_limit {
            PastLimit::PowerBald if self.stopped => self.batch - self.picks.indices.len(),
            _ => 0,
        }
    }

    /// The greedy's picks so far, indices in the whole pool.
    pub fn picks(&self) -> &[usize] {
        &self.picks.indices
    }

    /// Records the PowerBALD tail from every shard's part ([`Shard::tail`]).
    pub fn record_tail(&mut self, parts: &[Ranked]) -> Result<()> {
        let rest = self.tail();
        if rest == 0 {
            return Err(Error::Backend(
                "the batch has no PowerBALD tail to draw".into(),
            ));
        }
        let tail = merge_ranked(parts, rest);
        let a = &mut self.picks;
        a.regimes
            .extend(tail.indices.iter().map(|_| PickRegime::PowerBald));
        a.indices.extend(tail.indices);
        a.scores.extend(tail.scores);
        // Drawn: no tail is left.
        self.batch = a.indices.len();
        Ok(())
    }

    /// How the step ends, from every shard's proposal (in shard order): settled by the bests
    /// (almost always), or by [`Driver::merge`].
    pub fn step(&self, proposals: &[Proposal]) -> Result<Step> {
        let (previous, widening) = step_terms(proposals)?;
        let bests = proposals.iter().map(|p| p.best);
        match pick_from_bests(bests, previous, widening) {
            Some(pick) => {
                let shard = proposals
                    .iter()
                    .position(|p| p.best == Some(pick))
                    .ok_or_else(|| Error::Backend("the pick is no shard's best".into()))?;
                Ok(Step::Settled { pick, shard })
            }
            None => Ok(Step::Merge),
        }
    }

    /// The step of the whole pool from every shard's proposal and evaluations
    /// ([`Shard::evaluated`]), in shard order, when the bests do not settle it: the pick, and
    /// how many of each shard's evaluations to keep.
    pub fn merge(
        &self,
        proposals: &[Proposal],
        evaluated: &[Vec<Evaluated>],
    ) -> Result<(Evaluated, Vec<usize>)> {
        let (previous, widening) = step_terms(proposals)?;
        let mut keep = vec![0; evaluated.len()];
        let mut lists: Vec<_> = evaluated
            .iter()
            .map(|e| e.iter().copied().peekable())
            .collect();
        let pick =
            merge_step(&mut lists, &mut keep, previous, widening).ok_or_else(no_candidate)?;
        Ok((pick, keep))
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
        if self.strategy.past_limit != PastLimit::Continue {
            a.switched_at = Some(t + 1);
            self.stopped = true;
        }
        Ok(Some(w))
    }

    /// The batch, with each pick's standard error (from the picks' points alone).
    pub fn finish(self) -> Result<Acquisition> {
        let mut a = self.picks;
        // The greedy's picks' errors; the tail's are 0.
        let made = a.evaluations.len();
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
        a.standard_errors.resize(a.indices.len(), 0.0);
        a.backend = "shards";
        Ok(a)
    }
}

/// The step's previous score and widening, the same in every proposal.
fn step_terms(proposals: &[Proposal]) -> Result<(f64, f64)> {
    let first = proposals.first().ok_or_else(no_candidate)?;
    if proposals.iter().all(|p| p.best.is_none()) {
        return Err(no_candidate());
    }
    Ok((first.previous, first.widening))
}

fn no_candidate() -> Error {
    Error::Backend("no candidate is left in any shard".into())
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
        let (pick, keep, owner, point) = match driver.step(&proposals)? {
            Step::Settled { pick, shard } => {
                let point = proposals[shard].point.clone();
                (pick, vec![None; shards.len()], shard, point)
            }
            Step::Merge => {
                for s in shards.iter() {
                    s.send(Command::Evaluated)?;
                }
                let lists: Vec<Result<Vec<Evaluated>>> =
                    shards.iter().map(|s| s.evaluations()).collect();
                let lists = lists.into_iter().collect::<Result<Vec<_>>>()?;
                let (pick, keep) = driver.merge(&proposals, &lists)?;
                let owner = shards
                    .iter()
                    .position(|s| (s.offset..s.offset + s.shape.n).contains(&pick.index))
                    .ok_or_else(|| no_owner(pick))?;
                let point = shards[owner].point_of(pick.index)?;
                (pick, keep.into_iter().map(Some).collect(), owner, point)
            }
        };
        let (row, cond) = point.ok_or_else(|| no_owner(pick))?;
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
    let rest = driver.tail();
    if rest > 0 {
        for s in shards.iter() {
            s.send(Command::Tail {
                rest,
                picks: driver.picks().to_vec(),
            })?;
        }
        let parts: Vec<Result<Ranked>> = shards.iter().map(|s| s.ranked()).collect();
        let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
        driver.record_tail(&parts)?;
    }
    driver.finish()
}

fn no_owner(pick: Evaluated) -> Error {
    Error::Backend(format!("no shard holds the pick, index {}", pick.index))
}
