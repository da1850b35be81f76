//! Lazy ("accelerated") greedy selection (Minoux 1978) for BatchBALD.
//!
//! The BatchBALD objective is submodular (Kirsch et al. 2019): a candidate's marginal gain
//! a_t(n) - a_{t-1} never grows as the batch grows, and its first gain is its BALD score. So the
//! last gain computed for a candidate bounds every later one. Each step evaluates candidates in
//! decreasing order of their bounds, in blocks, and stops once the best cumulative score found,
//! less the previous pick's, beats every remaining bound by more than [`budget::LAZY_SLACK`]:
//! in the exact regime every candidate left unevaluated then scores strictly below the best
//! one, so the pick (and its score) is the one full evaluation makes, ties to the lower index
//! included. In the sampled regime a bound may not hold (the estimates are noisy); there the
//! rule of [`LazyGreedy::start_sampled_step`] applies.
//!
//! Between steps the bounds are also lowered to each candidate's gain given the newest pick
//! alone ([`LazyGreedy::tighten`] with [`pick_joint`]): I(y_n; w | y_b) = BALD(n) - I(y_n; y_b)
//! bounds I(y_n; w | batch), since conditioning on more points never raises an entropy. It
//! costs a C-row joint step per candidate, a fraction of a full one, and drops a pick's
//! near-copies (Repeated-MNIST's, or a real pool's look-alikes), whose stale bounds are as high
//! as the pick's own gain was.
//!
//! The bound needs the slack because gains are computed, not known: a backend's cumulative
//! score is within [`budget::LAZY_SLACK`] / 4 of the exact one, and a stale bound compares
//! four such numbers (the candidate's score then and now, the previous picks' scores then and
//! now).
//!
//! The candidates live in a binary max-heap of (bound, index) pairs in an f64 workspace (2 per
//! point; indices below 2^53 are exact, and 2 more per point keep a parked candidate's old bound
//! and score). Popped candidates are parked just past the heap's end, where the heap's pops
//! leave them, until the step's pick is made; then the others go back in with their new bounds.
//!
//! A pool split in shards runs one [`LazyGreedy`] per shard. Each shard evaluates until its own
//! best is certain, which evaluates at least the candidates one lazy greedy over the whole pool
//! would (a shard's best is never above the whole pool's); [`merge_step`] then walks the shards'
//! [`Evaluated`] lists in the whole pool's order, finds where that one lazy greedy stops and
//! its pick, and [`LazyGreedy::commit`] keeps each shard's evaluations up to there, the others
//! going back with their old bounds. The picks, scores and bounds are then those of one lazy
//! greedy over the whole pool, in both regimes, however the pool is split.

use crate::budget;
use crate::element::Element;
use crate::error::{check_at_least, Error};
use crate::math::neg_x_ln_x;

/// f64s of workspace a [`LazyGreedy`] over `n` points needs.
pub fn lazy_workspace_len(n: usize) -> Result<usize, Error> {
    n.checked_mul(4).ok_or(Error::ShapeOverflow)
}

/// A candidate evaluated at a step: its bound before, its index, its cumulative score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluated {
    /// The bound it was popped with.
    pub bound: f64,
    /// Its index (in the whole pool, for [`merge_step`]).
    pub index: usize,
    /// Its cumulative score at this step.
    pub score: f64,
}

/// Whether a step's best cumulative score so far, `best`, beats `bound` by more than the slack
/// (the previous score `previous` and the sampled regime's `widening` as the step set them).
fn settles(best: Option<(f64, usize)>, previous: f64, widening: f64, bound: f64) -> bool {
    match best {
        Some((best, _)) => best - previous > bound + budget::LAZY_SLACK + widening,
        None => false,
    }
}

/// Whether `score` at `index` beats the best so far (ties to the lower index; NaN never).
pub(crate) fn beats(best: Option<(f64, usize)>, score: f64, index: usize) -> bool {
    match best {
        _ if score.is_nan() => false,
        None => true,
        Some((best, best_index)) => score > best || (score == best && index < best_index),
    }
}

/// The step of one lazy greedy over the union of shards, from each shard's evaluations in the
/// order it made them ([`LazyGreedy::evaluated`], indices in the whole pool), with the step's
/// `previous` score and `widening` ([`LazyGreedy::previous`], [`LazyGreedy::widening`]): the
/// candidates are taken in decreasing order of their bounds (ties to the lower index) until the
/// best so far settles the next bound, as one [`LazyGreedy`] over the whole pool takes them.
/// Writes into `keep` (one per shard) how many of each shard's evaluations that lazy greedy
/// makes, and returns its pick (`None` when no score compares).
pub fn merge_step<I: Iterator<Item = Evaluated>>(
    shards: &mut [core::iter::Peekable<I>],
    keep: &mut [usize],
    previous: f64,
    widening: f64,
) -> Option<Evaluated> {
    keep.fill(0);
    let mut best: Option<(f64, usize)> = None;
    let mut pick = None;
    loop {
        let mut next: Option<(usize, Evaluated)> = None;
        for (s, shard) in shards.iter_mut().enumerate() {
            if let Some(&e) = shard.peek() {
                let above = match next {
                    None => true,
                    Some((_, n)) => e.bound > n.bound || (e.bound == n.bound && e.index < n.index),
                };
                if above {
                    next = Some((s, e));
                }
            }
        }
        let Some((s, e)) = next else {
            return pick;
        };
        if settles(best, previous, widening, e.bound) {
            return pick;
        }
        shards[s].next();
        keep[s] += 1;
        if beats(best, e.score, e.index) {
            best = Some((e.score, e.index));
            pick = Some(e);
        }
    }
}

/// The step's pick from each shard's best alone ([`LazyGreedy::best`], indices in the whole
/// pool), when they settle it, so that no shard sends its evaluations: the best of the bests,
/// G, when G's score does not beat G's own bound by more than the slack (always in the exact
/// regime, where bounds hold up to rounding; mostly in the sampled one). `None` when they do
/// not settle it (or no shard has a candidate): then [`merge_step`] over every shard's
/// evaluations decides.
///
/// Why G is [`merge_step`]'s pick: its walk's best so far is never above G, so every
/// evaluation whose bound G does not settle comes before the walk stops; G is one of them,
/// and once they are walked the best is G, which settles the next bound. The walk is exactly
/// the evaluations whose bounds G does not settle, in each shard a prefix of its list
/// ([`LazyGreedy::kept`] with G's score counts it).
pub fn pick_from_bests(
    bests: impl IntoIterator<Item = Option<Evaluated>>,
    previous: f64,
    widening: f64,
) -> Option<Evaluated> {
    let mut best: Option<Evaluated> = None;
    for e in bests.into_iter().flatten() {
        if beats(best.map(|b| (b.score, b.index)), e.score, e.index) {
            best = Some(e);
        }
    }
    best.filter(|g| !settles(Some((g.score, g.index)), previous, widening, g.bound))
}

/// How much more than the rounding slack a bound must be beaten by in a sampled step of
/// `rows` configurations over `c` classes: a quarter of the largest standard error a mean of
/// `rows` values in [0, ln C] can have, (ln C) / (2 sqrt(rows)). The quarter is measured
/// (`core/tests/lazy_sampled.rs`, figures in the README): without widening, lazy's batches
/// lost 0.1% of exact MI to full greedy's at one configuration per MC sample; with it, they
/// gain that much.
pub fn sampled_widening(c: usize, rows: usize) -> f64 {
    libm::log(c as f64) / (8.0 * libm::sqrt(rows.max(1) as f64))
}

/// The exact joint of one pick `point` (its K x C log-probs) as C rows of coefficients,
/// a[c, k] = p(c | w_k) / K, into `a` (C x K); returns the pick's entropy H(y_b). With it a
/// backend's joint-entropy step gives H(y_n, y_b), hence the pairwise bound
/// H(y_n, y_b) - H(y_b) - E_w H(y_n | w) >= I(y_n; w | batch) of [`LazyGreedy::tighten`].
pub fn pick_joint<T: Element>(point: &[T], k: usize, c: usize, a: &mut [f64]) -> f64 {
    let inv_k = 1.0 / k as f64;
    let mut h = 0.0;
    for class in 0..c {
        let mut q = 0.0;
        for kk in 0..k {
            let p = libm::exp(point[kk * c + class].to_f64()) * inv_k;
            a[class * k + kk] = p;
            q += p;
        }
        h += neg_x_ln_x(q);
    }
    h
}

/// The lazy-greedy state of one BatchBALD acquisition: the candidates' bounds, the step's best
/// candidate so far, and the evaluations made.
#[derive(Debug)]
pub struct LazyGreedy<'w> {
    /// (bound, index) pairs: the heap in [0, len), the step's parked candidates after it.
    entries: &'w mut [f64],
    /// (old bound, score) of the parked candidate in the same slot.
    saved: &'w mut [f64],
    len: usize,
    /// The block handed out and not yet reported.
    block: usize,
    parked: usize,
    /// The cumulative score of the previous pick (0 before the first).
    previous: f64,
    /// The step's best (score, index) so far.
    best: Option<(f64, usize)>,
    evaluations: usize,
    /// Added to the slack in the sampled regime ([`sampled_widening`]).
    widening: f64,
}

impl<'w> LazyGreedy<'w> {
    /// The candidates `n` with their BALD scores `bald(n)` as first bounds, in `workspace` of
    /// at least [`lazy_workspace_len`] f64s; points with a NaN score are left out.
    pub fn new(
        workspace: &'w mut [f64],
        points: usize,
        bald: impl Fn(usize) -> f64,
    ) -> Result<Self, Error> {
        let need = lazy_workspace_len(points)?;
        check_at_least("workspace", need, workspace.len())?;
        let (entries, saved) = workspace[..need].split_at_mut(2 * points);
        let mut len = 0;
        for n in 0..points {
            let bound = bald(n);
            if !bound.is_nan() {
                entries[2 * len] = bound;
                entries[2 * len + 1] = n as f64;
                len += 1;
            }
        }
        let mut lazy = LazyGreedy {
            entries,
            saved,
            len,
            block: 0,
            parked: 0,
            previous: 0.0,
            best: None,
            evaluations: 0,
            widening: 0.0,
        };
        for i in (0..len / 2).rev() {
            lazy.sift_down(i);
        }
        Ok(lazy)
    }

    /// Starts a step of the sampled regime, whose joint is a fresh draw of `rows`
    /// configurations over `c` classes: gains are measured from `batch_score`, the batch's
    /// cumulative score re-estimated with these samples, and bounds must be beaten by
    /// [`sampled_widening`] more.
    ///
    /// The last pick's own score would be the wrong base: it won among noisy estimates, so it
    /// is biased high (the winner's curse) and every gain measured from it looks small against
    /// the bounds. Measured from the batch's score under the same samples, a gain estimates
    /// H(y_n | batch) less the candidate's conditional entropy with the noise of the samples
    /// alone; the widening covers part of that noise, as the README's measurement chose.
    pub fn start_sampled_step(&mut self, batch_score: f64, c: usize, rows: usize) {
        self.previous = batch_score;
        self.widening = sampled_widening(c, rows);
    }

    /// Candidates evaluated since the last [`LazyGreedy::commit`].
    pub fn evaluations(&self) -> usize {
        self.evaluations
    }

    /// The score gains are measured from at this step.
    pub fn previous(&self) -> f64 {
        self.previous
    }

    /// What bounds must be beaten by beyond the slack at this step (0 in the exact regime).
    pub fn widening(&self) -> f64 {
        self.widening
    }

    /// The candidates kept at this step, in the order they were evaluated.
    pub fn evaluated(&self) -> impl Iterator<Item = Evaluated> + '_ {
        let top = self.len + self.parked;
        (0..self.parked).map(move |j| {
            let slot = top - 1 - j;
            Evaluated {
                bound: self.saved[2 * slot],
                index: self.index(slot),
                score: self.saved[2 * slot + 1],
            }
        })
    }

    /// The step's best evaluation so far (the best of [`LazyGreedy::evaluated`]).
    pub fn best(&self) -> Option<Evaluated> {
        let (_, index) = self.best?;
        self.evaluated().find(|e| e.index == index)
    }

    /// How many of the step's evaluations (from the first) have bounds that the cumulative
    /// score `score` does not settle: those one lazy greedy keeps when its pick scores `score`
    /// ([`pick_from_bests`]).
    pub fn kept(&self, score: f64) -> usize {
        let best = Some((score, 0));
        self.evaluated()
            .take_while(|e| !settles(best, self.previous, self.widening, e.bound))
            .count()
    }

    /// The next block of at most `out.len()` candidates to evaluate at this step, into the start
    /// of `out`, in decreasing order of their bounds; an empty block when the best candidate so
    /// far is certain (or none is left). Their cumulative scores go to [`LazyGreedy::report`]
    /// before the next call.
    pub fn next_block<'o>(&mut self, out: &'o mut [usize]) -> &'o [usize] {
        let mut taken = 0;
        while taken < out.len() && self.len > 0 && !self.settled(self.entries[0]) {
            self.len -= 1;
            self.swap(0, self.len);
            self.sift_down(0);
            taken += 1;
        }
        // The block is parked at [len, len + taken), the first popped last.
        self.block = taken;
        for (j, o) in out[..taken].iter_mut().enumerate() {
            *o = self.index(self.len + taken - 1 - j);
        }
        &out[..taken]
    }

    /// The cumulative scores of the block [`LazyGreedy::next_block`] returned, in its order.
    ///
    /// They are taken as one-at-a-time lazy greedy would: a candidate whose bound the best
    /// score before it already beats is dropped with its old bound, as if never evaluated. So
    /// the picks do not depend on the block sizes, in the sampled regime too (where estimates
    /// are noisy and a bound may not hold).
    pub fn report(&mut self, scores: &[f64]) {
        let top = self.len + self.block - 1;
        let mut kept = 0;
        for (j, &score) in scores.iter().enumerate().take(self.block) {
            let slot = top - j;
            if self.settled(self.entries[2 * slot]) {
                break;
            }
            let index = self.index(slot);
            if beats(self.best, score, index) {
                self.best = Some((score, index));
            }
            self.saved[2 * slot] = self.entries[2 * slot];
            self.saved[2 * slot + 1] = score;
            // A NaN score (never from valid input) ranks below every bound.
            self.entries[2 * slot] = if score.is_nan() {
                f64::NEG_INFINITY
            } else {
                score - self.previous
            };
            kept += 1;
        }
        // The dropped ones go back into the heap now; the kept ones stay parked until the pick.
        // The dropped ones, the last popped, sit just past the heap: they go back in as they
        // were; the kept ones stay parked until the pick.
        for _ in kept..self.block {
            self.len += 1;
            self.sift_up(self.len - 1);
        }
        self.parked += kept;
        self.evaluations += scores.len();
        self.block = 0;
    }

    /// Ends the step of a lazy greedy that is the whole pool: its best candidate evaluated
    /// (index, cumulative score), which leaves the candidates; the others go back with their
    /// new bounds. `None` when no candidate had a score that compares.
    pub fn pick(&mut self) -> Option<(usize, f64)> {
        let mut keep = [0];
        let (previous, widening) = (self.previous, self.widening);
        let pick = merge_step(
            &mut [self.evaluated().peekable()],
            &mut keep,
            previous,
            widening,
        )?;
        self.commit(keep[0], Some(pick.index), pick.score);
        Some((pick.index, pick.score))
    }

    /// Ends the step as [`merge_step`] decided it: the first `keep` candidates evaluated keep
    /// their new bounds and the others go back with their old ones, as if never evaluated;
    /// `pick`, when it is one of this lazy greedy's candidates, leaves them; gains are measured
    /// from `score`, the pick's, from now on.
    pub fn commit(&mut self, keep: usize, pick: Option<usize>, score: f64) {
        let top = self.len + self.parked;
        for j in keep.min(self.parked)..self.parked {
            let slot = top - 1 - j;
            self.entries[2 * slot] = self.saved[2 * slot];
        }
        if let Some(index) = pick {
            // Only an evaluated candidate can be the pick: drop it where it is parked.
            if let Some(slot) = (self.len..top).find(|&s| self.index(s) == index) {
                self.swap(slot, top - 1);
                self.parked -= 1;
            }
        }
        for _ in 0..self.parked {
            self.len += 1;
            self.sift_up(self.len - 1);
        }
        self.parked = 0;
        self.evaluations = 0;
        self.best = None;
        self.previous = score;
    }

    /// Lowers the bounds between steps to `gains` where that is lower: `gains(indices, out)`
    /// writes an upper bound on each listed candidate's next gain (at most `indices.len()` of
    /// them at a time, from `indices`), and the heap is rebuilt.
    pub fn tighten<E>(
        &mut self,
        indices: &mut [usize],
        out: &mut [f64],
        mut gains: impl FnMut(&[usize], &mut [f64]) -> Result<(), E>,
    ) -> Result<(), E> {
        debug_assert_eq!(self.parked + self.block, 0, "tighten between steps only");
        let per = indices.len().min(out.len()).max(1);
        let mut first = 0;
        while first < self.len {
            let count = per.min(self.len - first);
            for (j, i) in indices[..count].iter_mut().enumerate() {
                *i = self.index(first + j);
            }
            gains(&indices[..count], &mut out[..count])?;
            for (j, &g) in out[..count].iter().enumerate() {
                let bound = &mut self.entries[2 * (first + j)];
                if g < *bound {
                    *bound = g;
                }
            }
            first += count;
        }
        for i in (0..self.len / 2).rev() {
            self.sift_down(i);
        }
        Ok(())
    }

    /// Whether the step's best so far beats `bound` by more than the slack.
    fn settled(&self, bound: f64) -> bool {
        settles(self.best, self.previous, self.widening, bound)
    }

    fn index(&self, slot: usize) -> usize {
        self.entries[2 * slot + 1] as usize
    }

    /// Whether the entry at slot `a` goes above the one at `b`: a higher bound, or an equal
    /// one and a lower index.
    fn above(&self, a: usize, b: usize) -> bool {
        let (ba, bb) = (self.entries[2 * a], self.entries[2 * b]);
        ba > bb || (ba == bb && self.entries[2 * a + 1] < self.entries[2 * b + 1])
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.entries.swap(2 * a, 2 * b);
        self.entries.swap(2 * a + 1, 2 * b + 1);
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut top = i;
            if l < self.len && self.above(l, top) {
                top = l;
            }
            if r < self.len && self.above(r, top) {
                top = r;
            }
            if top == i {
                return;
            }
            self.swap(i, top);
            i = top;
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.above(i, parent) {
                return;
            }
            self.swap(i, parent);
            i = parent;
        }
    }
}
