//! bald-cpu-simd: bald-core's [`Backend`] on the CPU with SIMD and threads.
//!
//! The instruction set (AVX-512F, AVX2+FMA, NEON, or the portable fallback) is detected once
//! at run time ([`Isa::detect`]); no `-C target-cpu` is needed. Kernels are written once
//! against a small vector trait and compiled per ISA; arithmetic is f32 (inputs of every type
//! are read into f32), sums are f32 over short spans (a point's score of up to 16 periods of its
//! class pattern, summed across lanes by pairwise trees) and folded into f64 beyond. The pool is
//! split across threads; each point's (or candidate's) result is computed by one thread in a
//! fixed order, so results do not depend on the thread count.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod isa;
mod kernels;
#[doc(hidden)]
pub mod math;
#[cfg(target_arch = "aarch64")]
mod neon;
#[doc(hidden)]
pub mod simd;
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
mod x86;

use bald_core::{
    check_entropies_args, check_forward_args, check_joint_args, check_score_args, Backend, Element,
    ElementSlice, Error, JointProbs, LogProbs, McDropoutHead, PointScore, Shape,
};

use isa::dispatch;
pub use isa::Isa;
use kernels::{JointF32, RowCheck, ScoreScratch, JOINT_ROW_PAD};

/// The SIMD CPU backend.
#[derive(Debug, Clone, Copy)]
pub struct SimdBackend {
    isa: Isa,
    threads: usize,
}

impl Default for SimdBackend {
    fn default() -> Self {
        SimdBackend::new()
    }
}

/// Available cores, read once: `available_parallelism` reads cgroup files on every call,
/// which made creating a backend cost more than scoring a small pool (seen when fuzzing).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl SimdBackend {
    /// The best ISA of this CPU, one thread per available core (one thread without the
    /// `threads` feature).
    pub fn new() -> Self {
        SimdBackend {
            isa: Isa::detect(),
            threads: if cfg!(feature = "threads") {
                cores()
            } else {
                1
            },
        }
    }

    /// Forces an instruction set (for tests and benchmarks); refused when the CPU lacks it.
    pub fn with_isa(isa: Isa) -> Result<Self, Error> {
        if !isa.is_available() {
            return Err(Error::InvalidParameter {
                name: "isa",
                reason: "this CPU does not support the requested instruction set",
            });
        }
        Ok(SimdBackend {
            isa,
            ..SimdBackend::new()
        })
    }

    /// The same backend on `threads` threads (at least 1; always 1 without the `threads`
    /// feature).
    pub fn with_threads(self, threads: usize) -> Self {
        SimdBackend {
            threads: if cfg!(feature = "threads") {
                threads.max(1)
            } else {
                1
            },
            ..self
        }
    }

    /// Logits to log-probs in place, as [`bald_core::logits_to_log_probs`], on every thread:
    /// f32 pools with e^x and ln vectorised (each point through an f32 buffer; within
    /// `budget::CONVERSION` of bald-core), f16 and f64 pools with bald-core's f64 conversion
    /// itself. A pool with a NaN, a `+inf` or a row of all `-inf` then goes to the scalar
    /// function on the whole pool, which reports the exact error (rows already converted are
    /// log-probs, which are valid logits, so its first error is the same).
    pub fn logits_to_log_probs<T: Element>(
        &self,
        data: &mut [T],
        shape: Shape,
    ) -> Result<(), Error> {
        let point = Self::point_len(data, shape, "logits")?;
        let ok = std::sync::atomic::AtomicBool::new(true);
        let (isa, c) = (self.isa, shape.c);
        let vectorised = matches!(T::as_slice(&data[..0]), ElementSlice::F32(_));
        self.par_chunks(data, point, |_, chunk| {
            let done = if vectorised {
                let (mut x, mut exps, mut rows) = (
                    vec![0.0f32; point],
                    vec![0.0f32; point],
                    vec![0.0f32; shape.k],
                );
                let mut done = true;
                // A loop, not a closure, inside dispatch: closures lose the target features.
                dispatch!(isa, |s| {
                    for p in chunk.chunks_exact_mut(point) {
                        widen(p, &mut x);
                        if !kernels::log_softmax_rows(s, &mut x, c, &mut exps, &mut rows) {
                            done = false;
                            break;
                        }
                        narrow(&x, p);
                    }
                });
                done
            } else {
                let part = Shape::new(chunk.len() / point, shape.k, c);
                bald_core::logits_to_log_probs(chunk, part).is_ok()
            };
            if !done {
                ok.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        });
        if ok.into_inner() {
            Ok(())
        } else {
            bald_core::logits_to_log_probs(data, shape)
        }
    }

    /// Probabilities to log-probs in place, as [`bald_core::probs_to_log_probs`], on every
    /// thread after a check of every value: f32 pools with ln vectorised, f16 and f64 pools with
    /// bald-core's function itself. A pool that fails the check goes unchanged to the scalar
    /// function, which reports the exact error.
    pub fn probs_to_log_probs<T: Element>(
        &self,
        data: &mut [T],
        shape: Shape,
    ) -> Result<(), Error> {
        let point = Self::point_len(data, shape, "probs")?;
        let hi = 1.0 + T::NORM_TOLERANCE;
        if !data.iter().all(|&v| (0.0..=hi).contains(&v.to_f64())) {
            return bald_core::probs_to_log_probs(data, shape);
        }
        let (isa, c) = (self.isa, shape.c);
        let vectorised = matches!(T::as_slice(&data[..0]), ElementSlice::F32(_));
        self.par_chunks(data, point, |_, chunk| {
            if vectorised {
                let mut x = vec![0.0f32; chunk.len()];
                widen(chunk, &mut x);
                dispatch!(isa, |s| kernels::ln_in_place(s, &mut x));
                narrow(&x, chunk);
            } else {
                // Every value passed the check above, so this cannot fail.
                let part = Shape::new(chunk.len() / point, shape.k, c);
                let _ = bald_core::probs_to_log_probs(chunk, part);
            }
        });
        Ok(())
    }

    /// K x C, after checking that `data` holds `shape`.
    fn point_len<T>(data: &[T], shape: Shape, what: &'static str) -> Result<usize, Error> {
        let len = shape.elements()?;
        if data.len() != len {
            return Err(Error::ShapeMismatch {
                what,
                expected: len,
                actual: data.len(),
            });
        }
        Ok(shape.k * shape.c)
    }

    /// The instruction set in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(first_index, chunk)` over `out` split into at most `threads` contiguous chunks of
    /// whole items of `item` entries each, in parallel.
    fn par_chunks<O: Send>(&self, out: &mut [O], item: usize, f: impl Fn(usize, &mut [O]) + Sync) {
        let items = out.len() / item.max(1);
        let per = items.div_ceil(self.threads).max(1);
        if self.threads == 1 || items <= 1 {
            f(0, out);
            return;
        }
        std::thread::scope(|scope| {
            let mut chunks = out.chunks_mut(per * item).enumerate();
            let first = chunks.next();
            for (i, chunk) in chunks {
                let f = &f;
                scope.spawn(move || f(i * per, chunk));
            }
            if let Some((_, chunk)) = first {
                f(0, chunk);
            }
        });
    }
}

/// The bounds of the fast checks: row sums comfortably inside the tolerance (f32 arithmetic is
/// off by far less than the margin, and rows near the edge go to the exact scalar check).
fn row_check<T: Element>() -> RowCheck {
    let tol = T::NORM_TOLERANCE * 0.9;
    RowCheck {
        lo: (-tol).exp(),
        hi: tol.exp(),
    }
}

/// `from` as f32 into `to` (exact for f32 input).
fn widen<T: Element>(from: &[T], to: &mut [f32]) {
    for (t, &v) in to.iter_mut().zip(from) {
        *t = v.to_f64() as f32;
    }
}

/// `from` rounded to `T` into `to` (exact for f32 output).
fn narrow<T: Element>(from: &[f32], to: &mut [T]) {
    for (t, &v) in to.iter_mut().zip(from) {
        *t = T::from_f64(f64::from(v));
    }
}

/// A point's log-probs as f32: the input itself for f32 pools, else converted into `buf`.
pub(crate) fn point_f32<'b>(
    points: ElementSlice<'b>,
    i: usize,
    len: usize,
    buf: &'b mut [f32],
) -> &'b [f32] {
    fn widened<'b, T: Element>(xs: &[T], buf: &'b mut [f32]) -> &'b [f32] {
        for (b, &x) in buf.iter_mut().zip(xs) {
            *b = x.to_f64() as f32;
        }
        buf
    }
    match points.slice(i * len..(i + 1) * len) {
        ElementSlice::F32(s) => s,
        ElementSlice::F64(s) => widened(s, buf),
        ElementSlice::F16(s) => widened(s, buf),
        ElementSlice::Bf16(s) => widened(s, buf),
    }
}

/// The entropy kernel at `isa` over consecutive points, each checked when `check` is given.
/// Not generic over the element type, so that it is compiled here once, whatever the callers.
fn entropies_at(
    isa: Isa,
    points: ElementSlice<'_>,
    (k, c): (usize, usize),
    out: &mut [(f64, f64)],
    check: Option<(&mut [bool], &RowCheck)>,
    scratch: &mut ScoreScratch,
) {
    match check {
        Some(check) => dispatch!(isa, |s| kernels::entropies::<_, true>(
            s, points, k, c, out, check, scratch
        )),
        None => dispatch!(isa, |s| kernels::entropies::<_, false>(
            s,
            points,
            k,
            c,
            out,
            (&mut [], &kernels::NO_CHECK),
            scratch
        )),
    }
}

/// The joint entropy with `joint` of points `first..` of `data` (or of the given `points`) at
/// `isa`, compiled here once as [`entropies_at`].
fn joint_entropies_at(
    isa: Isa,
    data: ElementSlice<'_>,
    (k, c): (usize, usize),
    joint: &JointF32,
    (first, points): (usize, Option<&[usize]>),
    out: &mut [f64],
) {
    let mut probs = vec![0.0f32; k * c];
    let mut conv = vec![0.0f32; k * c];
    // A loop, not a closure, inside dispatch: closures lose the target features.
    dispatch!(isa, |s| {
        for (i, o) in out.iter_mut().enumerate() {
            let n = points.map_or(first + i, |p| p[i]);
            let lp = point_f32(data, n, k * c, &mut conv);
            kernels::exp_and_plogp(s, lp, &mut probs);
            *o = kernels::joint_entropy(s, joint, &probs, k, c);
        }
    })
}

/// The score kernel at `isa` over consecutive points, compiled here once as [`entropies_at`].
fn scores_at(
    isa: Isa,
    points: ElementSlice<'_>,
    (k, c): (usize, usize),
    score: PointScore,
    out: &mut [f64],
    scratch: &mut ScoreScratch,
) {
    dispatch!(isa, |s| kernels::scores(
        s, points, k, c, score, out, scratch
    ))
}

impl Backend for SimdBackend {
    type Error = Error;
    type Pool<'a, T: Element + 'a> = LogProbs<'a, T>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    /// The entropy kernel with each point's check riding on it: one read of every value, the
    /// probabilities the entropies need summed by rows as well. A pool it refuses goes to the
    /// scalar check, which reports the exact error (or accepts rows near the tolerance, whose
    /// entropies are already computed).
    fn validate_entropies<'a, T: Element>(
        &self,
        data: &'a [T],
        shape: Shape,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<LogProbs<'a, T>, Error> {
        Self::point_len(data, shape, "log_probs")?;
        check_entropies_args(shape, entropy.len(), conditional.len())?;
        LogProbs::new_with_fast_check(data, shape, |data, shape| {
            let check = row_check::<T>();
            let (k, c) = (shape.k, shape.c);
            let isa = self.isa;
            let mut results = vec![((0.0, 0.0), false); shape.n];
            self.par_chunks(&mut results, 1, |first, chunk| {
                let mut scratch = ScoreScratch::new(k, c);
                let points = &data[first * k * c..(first + chunk.len()) * k * c];
                let mut pairs = vec![(0.0, 0.0); chunk.len()];
                let mut ok = vec![false; chunk.len()];
                entropies_at(
                    isa,
                    T::as_slice(points),
                    (k, c),
                    &mut pairs,
                    Some((&mut ok, &check)),
                    &mut scratch,
                );
                for (r, (p, o)) in chunk.iter_mut().zip(pairs.into_iter().zip(ok)) {
                    *r = (p, o);
                }
            });
            let mut all_ok = true;
            for ((h, eh), ((ph, peh), ok)) in
                entropy.iter_mut().zip(conditional.iter_mut()).zip(results)
            {
                *h = ph;
                *eh = peh;
                all_ok &= ok;
            }
            all_ok
        })
    }

    /// [`Backend::validate_entropies`]'s pass, its entropies left unused.
    fn validate<'a, T: Element>(
        &self,
        data: &'a [T],
        shape: Shape,
    ) -> Result<LogProbs<'a, T>, Error> {
        // The shape first: no buffer for a pool that is not there.
        Self::point_len(data, shape, "log_probs")?;
        let (mut h, mut eh) = (vec![0.0; shape.n], vec![0.0; shape.n]);
        self.validate_entropies(data, shape, &mut h, &mut eh)
    }

    fn prepare<'a, T: Element>(&self, lp: LogProbs<'a, T>) -> Result<LogProbs<'a, T>, Error> {
        Ok(lp)
    }

    fn scores<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        score: PointScore,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Error> {
        let shape = pool.shape();
        check_score_args(score, shape, out.len(), workspace.len())?;
        let (k, c) = (shape.k, shape.c);
        let isa = self.isa;
        let data = pool.data();
        self.par_chunks(out, 1, |first, chunk| {
            let mut scratch = ScoreScratch::new(k, c);
            let points = &data[first * k * c..(first + chunk.len()) * k * c];
            scores_at(isa, T::as_slice(points), (k, c), score, chunk, &mut scratch)
        });
        Ok(())
    }

    fn entropies<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<(), Error> {
        let shape = pool.shape();
        check_entropies_args(shape, entropy.len(), conditional.len())?;
        let (k, c) = (shape.k, shape.c);
        let isa = self.isa;
        let mut pairs = vec![(0.0, 0.0); shape.n];
        let data = pool.data();
        self.par_chunks(&mut pairs, 1, |first, chunk| {
            let mut scratch = ScoreScratch::new(k, c);
            let points = &data[first * k * c..(first + chunk.len()) * k * c];
            entropies_at(isa, T::as_slice(points), (k, c), chunk, None, &mut scratch)
        });
        for ((h, eh), (ph, peh)) in entropy.iter_mut().zip(conditional.iter_mut()).zip(pairs) {
            *h = ph;
            *eh = peh;
        }
        Ok(())
    }

    fn joint_entropies<T: Element>(
        &self,
        pool: &LogProbs<'_, T>,
        joint: &JointProbs<'_>,
        candidates: Option<&[usize]>,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), Error> {
        let shape = pool.shape();
        check_joint_args(shape, joint, candidates, out.len(), workspace.len())?;
        let (k, c) = (shape.k, shape.c);
        let mp = joint.m.div_ceil(JOINT_ROW_PAD) * JOINT_ROW_PAD;
        let mut at = vec![0.0f32; k * mp];
        for m in 0..joint.m {
            let panel = m / JOINT_ROW_PAD * k;
            for kk in 0..k {
                at[(panel + kk) * JOINT_ROW_PAD + m % JOINT_ROW_PAD] = joint.a[m * k + kk] as f32;
            }
        }
        let mut scale = vec![0.0f32; mp];
        if let Some(s) = joint.log_scale {
            for (d, &v) in scale.iter_mut().zip(s) {
                *d = v as f32;
            }
        }
        let jf = JointF32 {
            at,
            scale,
            mp,
            weight: joint.weight,
            scaled: joint.log_scale.is_some(),
        };
        let (isa, data) = (self.isa, T::as_slice(pool.data()));
        self.par_chunks(out, 1, |first, chunk| {
            let points = candidates.map(|c| &c[first..first + chunk.len()]);
            joint_entropies_at(isa, data, (k, c), &jf, (first, points), chunk);
        });
        Ok(())
    }

    /// Enough candidates for every thread to take 16.
    fn lazy_block(&self, _shape: Shape) -> usize {
        16 * self.threads
    }

    fn mc_dropout_forward<O: Element>(
        &self,
        head: &McDropoutHead<'_>,
        features: &[f32],
        n: usize,
        k: usize,
        seed: u64,
        out: &mut [O],
        _workspace: &mut [f64],
    ) -> Result<(), Error> {
        check_forward_args(head, features, n, k, out.len())?;
        let layers = head.layers();
        let c = head.classes();
        let pad = |w: usize| w.div_ceil(16) * 16;
        let max_pad = layers.iter().map(|l| pad(l.outputs)).max().unwrap_or(0);
        let d_in = head.inputs();
        let isa = self.isa;
        // Philox counter words (their ranges were checked by check_forward_args).
        let k32 = u32::try_from(k).map_err(|_| Error::ShapeOverflow)?;
        const BLOCK: usize = 64;
        self.par_chunks(out, k * c, |first, chunk| {
            let rows_here = chunk.len() / (k * c);
            // Per layer: masked, scaled, transposed weights (inputs x padded outputs), bias.
            let mut wts: Vec<Vec<f32>> = layers
                .iter()
                .map(|l| vec![0.0; l.inputs * pad(l.outputs)])
                .collect();
            let biases: Vec<Vec<f32>> = layers
                .iter()
                .map(|l| {
                    let mut b = vec![0.0; pad(l.outputs)];
                    b[..l.outputs].copy_from_slice(l.bias);
                    b
                })
                .collect();
            let mut act = [vec![0.0f32; BLOCK * max_pad], vec![0.0f32; BLOCK * max_pad]];
            for sample32 in 0..k32 {
                let sample = sample32 as usize;
                for (l32, (layer, wt)) in (0u32..).zip(layers.iter().zip(wts.iter_mut())) {
                    let scale = 1.0 / (1.0 - layer.dropout);
                    let op = pad(layer.outputs);
                    for (j, keep) in layer.kept_inputs(seed, l32, sample32).enumerate() {
                        let f = if keep { scale } else { 0.0 };
                        for o in 0..layer.outputs {
                            wt[j * op + o] = layer.weight[o * layer.inputs + j] * f;
                        }
                    }
                }
                for r0 in (0..rows_here).step_by(BLOCK) {
                    let rows = BLOCK.min(rows_here - r0);
                    let x0 = &features[(first + r0) * d_in..(first + r0 + rows) * d_in];
                    let [a, b] = &mut act;
                    dispatch!(isa, |s| {
                        let mut input: &[f32] = x0;
                        let mut stride = d_in;
                        let (mut cur, mut next) = (&mut *a, &mut *b);
                        for (l, layer) in layers.iter().enumerate() {
                            let relu = l + 1 < layers.len();
                            let op = pad(layer.outputs);
                            kernels::dense(
                                s,
                                input,
                                rows,
                                stride,
                                layer.inputs,
                                &wts[l],
                                &biases[l],
                                op,
                                relu,
                                cur,
                            );
                            std::mem::swap(&mut cur, &mut next);
                            input = &*next;
                            stride = op;
                        }
                        let last = pad(c);
                        for r in 0..rows {
                            let z = &input[r * last..r * last + c];
                            let lse = bald_core::log_sum_exp(z.iter().map(|&v| f64::from(v)));
                            let base = ((r0 + r) * k + sample) * c;
                            for (o, &v) in chunk[base..base + c].iter_mut().zip(z) {
                                *o = O::from_f64(f64::from(v) - lse);
                            }
                        }
                    });
                }
            }
        });
        Ok(())
    }
}

/// exp of every element at `isa`, lengths of any size (tests of the vector math).
#[doc(hidden)]
pub fn apply_exp(isa: Isa, xs: &[f32]) -> Vec<f32> {
    apply(isa, xs, MathOp::Exp)
}

/// The kernels' exp of validated log-probs (clamped below at -87) of every element at `isa`
/// (tests of the vector math).
#[doc(hidden)]
pub fn apply_exp_log_prob(isa: Isa, xs: &[f32]) -> Vec<f32> {
    apply(isa, xs, MathOp::ExpLogProb)
}

/// ln of every element at `isa` (tests of the vector math).
#[doc(hidden)]
pub fn apply_ln(isa: Isa, xs: &[f32]) -> Vec<f32> {
    apply(isa, xs, MathOp::Ln)
}

/// The kernels' ln for positive normal inputs, at `isa` (tests of the vector math).
#[doc(hidden)]
pub fn apply_ln_normal(isa: Isa, xs: &[f32]) -> Vec<f32> {
    apply(isa, xs, MathOp::LnNormal)
}

/// Row sums of a 16 x 16 matrix at `isa` through `Simd::transpose_sums` on every L x L block
/// (tests of the vector trait).
#[doc(hidden)]
pub fn apply_transpose_sums(isa: Isa, m: &[[f32; 16]; 16]) -> [f32; 16] {
    assert!(isa.is_available(), "{isa:?} is not available on this CPU");
    let mut out = [0.0f32; 16];
    dispatch!(isa, |s| {
        use simd::Simd;
        let lanes = lanes_of(s);
        for r0 in (0..16).step_by(lanes) {
            let mut acc = s.splat(0.0);
            for c0 in (0..16).step_by(lanes) {
                let mut vs = [s.splat(0.0); 16];
                for (v, row) in vs.iter_mut().zip(&m[r0..r0 + lanes]) {
                    *v = s.load(&row[c0..]);
                }
                acc = s.add(acc, s.transpose_sums(&vs[..lanes]));
            }
            s.store(acc, &mut out[r0..]);
        }
    });
    out
}

/// Per point, whether the entropy kernel's fast check at `isa` accepts it (tests of the check:
/// a refused point costs a scalar re-check, so every valid point should pass).
#[doc(hidden)]
pub fn fast_check_accepts(isa: Isa, data: &[f32], shape: Shape) -> Vec<bool> {
    assert!(isa.is_available(), "{isa:?} is not available on this CPU");
    let mut ok = vec![false; shape.n];
    let mut pairs = vec![(0.0, 0.0); shape.n];
    let mut scratch = ScoreScratch::new(shape.k, shape.c);
    let check = row_check::<f32>();
    entropies_at(
        isa,
        ElementSlice::F32(data),
        (shape.k, shape.c),
        &mut pairs,
        Some((&mut ok, &check)),
        &mut scratch,
    );
    ok
}

#[derive(Clone, Copy)]
enum MathOp {
    Exp,
    ExpLogProb,
    Ln,
    LnNormal,
}

fn apply(isa: Isa, xs: &[f32], op: MathOp) -> Vec<f32> {
    assert!(isa.is_available(), "{isa:?} is not available on this CPU");
    let mut out = vec![0.0f32; xs.len()];
    dispatch!(isa, |s| {
        use simd::Simd;
        let mut buf = [0.0f32; 16];
        for (x, o) in xs.chunks(16).zip(out.chunks_mut(16)) {
            buf[..x.len()].copy_from_slice(x);
            let mut res = [0.0f32; 16];
            for (b, r) in buf
                .chunks_exact(lanes_of(s))
                .zip(res.chunks_exact_mut(lanes_of(s)))
            {
                let v = s.load(b);
                let y = match op {
                    MathOp::Exp => math::exp(s, v),
                    MathOp::ExpLogProb => math::exp_log_prob(s, math::clamp_log_prob(s, v)),
                    MathOp::Ln => math::ln(s, v),
                    MathOp::LnNormal => math::ln_normal(s, v),
                };
                s.store(y, r);
            }
            o.copy_from_slice(&res[..x.len()]);
        }
    });
    out
}

fn lanes_of<S: simd::Simd>(_: S) -> usize {
    S::LANES
}

/// Machine limits for the benchmarks' reports: f32 FMA throughput in GFLOP/s (2 flops per
/// lane per FMA) of `iters` rounds of 12 independent FMA chains on every thread.
#[doc(hidden)]
pub fn fma_peak_gflops(backend: &SimdBackend, iters: usize) -> f64 {
    let threads = backend.threads;
    let isa = backend.isa;
    let mut sink = vec![0.0f32; threads];
    let start = std::time::Instant::now();
    let lanes = std::sync::atomic::AtomicUsize::new(1);
    backend.par_chunks(&mut sink, 1, |_, out| {
        dispatch!(isa, |s| {
            use simd::Simd;
            lanes.store(lanes_of(s), std::sync::atomic::Ordering::Relaxed);
            let mut acc = [s.splat(0.0); 12];
            let (a, b) = (s.splat(0.999_999), s.splat(1e-7));
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = s.fma(*v, a, b);
                }
            }
            let mut lanes_out = [0.0f32; 16];
            let total = acc.iter().fold(s.splat(0.0), |x, &y| s.add(x, y));
            s.store(total, &mut lanes_out);
            for o in out.iter_mut() {
                *o = lanes_out[0];
            }
        })
    });
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    let flops = 2.0 * 12.0 * iters as f64 * lanes.into_inner() as f64 * threads as f64;
    flops / secs / 1e9
}

/// Machine limits for the benchmarks' reports: read bandwidth in GB/s, summing `data` on every
/// thread with vector loads.
#[doc(hidden)]
pub fn read_bandwidth_gbs(backend: &SimdBackend, data: &[f32]) -> f64 {
    let isa = backend.isa;
    let per = data.len().div_ceil(backend.threads);
    let mut sums = vec![0.0f64; backend.threads];
    let start = std::time::Instant::now();
    backend.par_chunks(&mut sums, 1, |first, out| {
        for (i, o) in out.iter_mut().enumerate() {
            let lo = ((first + i) * per).min(data.len());
            let hi = (lo + per).min(data.len());
            let part = &data[lo..hi];
            *o = dispatch!(isa, |s| {
                use simd::Simd;
                let lanes = lanes_of(s);
                let mut acc = [s.splat(0.0); 4];
                let mut chunks = part.chunks_exact(4 * lanes);
                for c in &mut chunks {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = s.add(*a, s.load(&c[j * lanes..]));
                    }
                }
                let tail: f64 = chunks.remainder().iter().map(|&x| f64::from(x)).sum();
                acc.iter().map(|&a| s.reduce(a)).sum::<f64>() + tail
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(sums);
    (data.len() * 4) as f64 / secs / 1e9
}
