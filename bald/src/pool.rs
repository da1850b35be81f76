//! [`Pool`]: a pool of MC-dropout predictions, validated and converted once; [`Prepared`]: a
//! pool on a device, acquired on many times.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;

use bald_core::half::f16;
use bald_core::{Backend, Element, LogProbs, Shape};
#[cfg(feature = "cpu-simd")]
use bald_cpu_simd::SimdBackend;
#[cfg(feature = "cuda")]
use bald_cuda::{CudaBackend, CudaPool};

use crate::by_name;
use crate::device::{Device, Engine, OnBackend};
use crate::error::{Error, Hint, Result};
use crate::npy::{self, NpyArray, NpyData};

/// What the values of a pool hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputKind {
    /// Log-probabilities (rows log-sum-exp to 0); `-inf` is probability 0.
    #[default]
    LogProbs,
    /// Probabilities (rows sum to 1).
    Probs,
    /// Unnormalised logits (log_softmax is applied, which also renormalises log-probs).
    Logits,
}

impl InputKind {
    /// Every kind.
    pub const ALL: [InputKind; 3] = [InputKind::LogProbs, InputKind::Probs, InputKind::Logits];

    /// The name, as the CLI and Python spell it.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::LogProbs => "log-probs",
            InputKind::Probs => "probs",
            InputKind::Logits => "logits",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            InputKind::LogProbs => "log-probabilities (rows log-sum-exp to 0)",
            InputKind::Probs => "probabilities (rows sum to 1)",
            InputKind::Logits => "unnormalised logits (log_softmax is applied)",
        }
    }
}

/// The order of an array's three axes: N pool points, K MC samples, C classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// N x K x C (batchbald_redux's order); read in place.
    #[default]
    Nkc,
    /// K x N x C (`torch.stack(samples)`'s order); copied once into N x K x C.
    Knc,
    /// N x C x K (baal's order); copied once into N x K x C.
    Nck,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 3] = [Layout::Nkc, Layout::Knc, Layout::Nck];

    /// The name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nkc => "nkc",
            Layout::Knc => "knc",
            Layout::Nck => "nck",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            Layout::Nkc => "N x K x C (batchbald_redux's order); read in place",
            Layout::Knc => "K x N x C (torch.stack(samples)'s order); copied once into nkc",
            Layout::Nck => "N x C x K (baal's order); copied once into nkc",
        }
    }

    /// The pool's shape from an array's dimensions in this layout.
    pub fn shape(self, dims: [usize; 3]) -> Shape {
        let [a, b, c] = dims;
        match self {
            Layout::Nkc => Shape::new(a, b, c),
            Layout::Knc => Shape::new(b, a, c),
            Layout::Nck => Shape::new(a, c, b),
        }
    }
}

impl FromStr for InputKind {
    type Err = String;
    /// A name in any case, `_` for `-` accepted.
    fn from_str(s: &str) -> Result<InputKind, String> {
        by_name(&InputKind::ALL, InputKind::name, s, "input_kind")
    }
}

impl FromStr for Layout {
    type Err = String;
    /// A name in any case.
    fn from_str(s: &str) -> Result<Layout, String> {
        by_name(&Layout::ALL, Layout::name, s, "layout")
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a pool's values are given: [`InputKind`] and [`Layout`], log-probs in N x K x C by
/// default.
///
/// ```
/// use bald::{InputKind, Layout, PoolOptions};
/// let o = PoolOptions::default().kind(InputKind::Probs).layout(Layout::Knc);
/// assert_eq!((o.kind, o.layout), (InputKind::Probs, Layout::Knc));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolOptions {
    /// What the values hold.
    pub kind: InputKind,
    /// The order of the array's axes.
    pub layout: Layout,
}

impl PoolOptions {
    /// Sets the input kind.
    pub fn kind(mut self, kind: InputKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
}

/// A pool's values, in one of the element types the backends read, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Values<'d> {
    /// float16.
    F16(&'d [f16]),
    /// float32.
    F32(&'d [f32]),
    /// float64.
    F64(&'d [f64]),
}

impl Values<'_> {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F16(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values from `at` to `at + len`, as f64.
    pub(crate) fn row(&self, at: usize, len: usize) -> Vec<f64> {
        match self {
            Values::F16(d) => d[at..at + len].iter().map(|v| v.to_f64()).collect(),
            Values::F32(d) => d[at..at + len].iter().map(|&v| f64::from(v)).collect(),
            Values::F64(d) => d[at..at + len].to_vec(),
        }
    }
}

/// Anything that holds a pool's values: a slice, array or `Vec` of `f16`, `f32` or `f64`, or a
/// reference to one.
pub trait AsValues {
    /// The values, borrowed.
    fn as_values(&self) -> Values<'_>;
}

macro_rules! as_values {
    ($($t:ty => $v:ident),*) => {$(
        impl AsValues for [$t] {
            fn as_values(&self) -> Values<'_> {
                Values::$v(self)
            }
        }
    )*};
}
as_values!(f16 => F16, f32 => F32, f64 => F64);

impl<T> AsValues for Vec<T>
where
    [T]: AsValues,
{
    fn as_values(&self) -> Values<'_> {
        self.as_slice().as_values()
    }
}

impl<T, const N: usize> AsValues for [T; N]
where
    [T]: AsValues,
{
    fn as_values(&self) -> Values<'_> {
        self.as_slice().as_values()
    }
}

impl AsValues for Values<'_> {
    fn as_values(&self) -> Values<'_> {
        *self
    }
}

impl<S: AsValues + ?Sized> AsValues for &S {
    fn as_values(&self) -> Values<'_> {
        (**self).as_values()
    }
}

/// A pool's log-probs in N x K x C, borrowed or owned.
#[derive(Debug, Clone)]
enum Data<'d> {
    F16(Cow<'d, [f16]>),
    F32(Cow<'d, [f32]>),
    F64(Cow<'d, [f64]>),
}

impl Data<'_> {
    fn values(&self) -> Values<'_> {
        match self {
            Data::F16(v) => Values::F16(v),
            Data::F32(v) => Values::F32(v),
            Data::F64(v) => Values::F64(v),
        }
    }
}

/// Every point's entropy and conditional entropy, from the pass that validated the pool.
pub(crate) type Entropies = (Vec<f64>, Vec<f64>);

/// A pool of MC-dropout predictions: N points, K MC samples each, C classes.
///
/// Made once from the caller's values, which it borrows when they are log-probs in N x K x C
/// and copies once otherwise (another layout, or probabilities or logits to convert). Making it
/// validates every value: NaN, `+inf` and rows that do not normalise are an [`Error::Input`]
/// naming the first offending (n, k, c), with a [`Hint`] when the values look like another
/// input kind. `-inf` (probability 0) is valid. On the SIMD backend, the pass that validates
/// also computes every point's entropies, which BALD and BatchBALD then reuse.
///
/// ```
/// # fn main() -> Result<(), bald::Error> {
/// // Two points, two MC samples, two classes: probabilities.
/// let probs = [0.5f32, 0.5, 0.5, 0.5, 0.9, 0.1, 0.1, 0.9];
/// let options = bald::PoolOptions::default().kind(bald::InputKind::Probs);
/// let pool = bald::Pool::from_slice_with(&probs, [2, 2, 2], options)?;
/// assert_eq!(pool.shape(), bald::Shape::new(2, 2, 2));
///
/// // Log-probs that are really probabilities: the error says so.
/// let e = bald::Pool::from_slice(&probs, [2, 2, 2]).unwrap_err();
/// assert_eq!(e.hint(), Some(bald::Hint::LooksLikeProbs));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Pool<'d> {
    data: Data<'d>,
    shape: Shape,
    options: PoolOptions,
    entropies: Option<Entropies>,
}

impl<'d> Pool<'d> {
    /// A pool of log-probs in N x K x C; `dims` is `[n, k, c]`. Borrows `values`.
    pub fn from_slice<S: AsValues + ?Sized>(values: &'d S, dims: [usize; 3]) -> Result<Self> {
        Pool::from_slice_with(values, dims, PoolOptions::default())
    }

    /// A pool of values as `options` says; `dims` are the array's dimensions in its layout.
    /// Borrows `values` when they are log-probs in N x K x C, copies them once otherwise.
    pub fn from_slice_with<S: AsValues + ?Sized>(
        values: &'d S,
        dims: [usize; 3],
        options: PoolOptions,
    ) -> Result<Self> {
        let data = match values.as_values() {
            Values::F16(v) => Data::F16(Cow::Borrowed(v)),
            Values::F32(v) => Data::F32(Cow::Borrowed(v)),
            Values::F64(v) => Data::F64(Cow::Borrowed(v)),
        };
        Pool::build(data, dims, options)
    }

    /// The pool's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// How the values were given.
    pub fn options(&self) -> PoolOptions {
        self.options
    }

    /// The validated log-probs, N x K x C.
    pub fn values(&self) -> Values<'_> {
        self.data.values()
    }

    /// `job` on the validated log-probs, in their element type.
    pub(crate) fn log_probs<J: OnLogProbs>(&self, job: J) -> J::Out {
        match self.data.values() {
            Values::F16(v) => job.on(validated(v, self.shape)),
            Values::F32(v) => job.on(validated(v, self.shape)),
            Values::F64(v) => job.on(validated(v, self.shape)),
        }
    }

    /// Its element type's NumPy name: `float16`, `float32` or `float64`.
    pub fn dtype(&self) -> &'static str {
        match self.data {
            Data::F16(_) => "float16",
            Data::F32(_) => "float32",
            Data::F64(_) => "float64",
        }
    }

    /// Prepares the pool on `device` (starts the backend; uploads the pool to a GPU), to
    /// acquire on it many times.
    pub fn on(&self, device: Device) -> Result<Prepared<'_>> {
        Prepared::new(self, device)
    }

    /// Every point's entropy and conditional entropy, from the validating pass, when it
    /// computed them.
    pub(crate) fn entropies(&self) -> Option<&Entropies> {
        self.entropies.as_ref()
    }

    /// Checks the shape, puts the values in N x K x C, converts them to log-probs and validates
    /// them.
    fn build(data: Data<'d>, dims: [usize; 3], options: PoolOptions) -> Result<Self> {
        let shape = options.layout.shape(dims);
        // The shape first: no buffers for a pool that is not there.
        let len = shape.elements()?;
        let given = data.values().len();
        if given != len {
            return Err(bald_core::Error::ShapeMismatch {
                what: "log_probs",
                expected: len,
                actual: given,
            }
            .into());
        }
        let mut data = match data {
            Data::F16(v) => Data::F16(reorder(v, shape, options.layout)),
            Data::F32(v) => Data::F32(reorder(v, shape, options.layout)),
            Data::F64(v) => Data::F64(reorder(v, shape, options.layout)),
        };
        let hinted = |error: bald_core::Error, data: &Data<'_>| Error::Input {
            hint: Hint::for_error(&error, data.values(), shape, options.kind),
            error,
        };
        if let Err(e) = match &mut data {
            Data::F16(v) => convert(v, shape, options.kind),
            Data::F32(v) => convert(v, shape, options.kind),
            Data::F64(v) => convert(v, shape, options.kind),
        } {
            return Err(hinted(e, &data));
        }
        let entropies = match &data {
            Data::F16(v) => validate(v, shape),
            Data::F32(v) => validate(v, shape),
            Data::F64(v) => validate(v, shape),
        }
        .map_err(|e| hinted(e, &data))?;
        Ok(Pool {
            data,
            shape,
            options,
            entropies,
        })
    }
}

impl Pool<'static> {
    /// A pool of log-probs in N x K x C, read from a `.npy` of float16, float32 or float64
    /// (either byte order, format versions 1 to 3).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Pool::open_with(path, PoolOptions::default())
    }

    /// A pool read from a `.npy` whose values are as `options` says.
    pub fn open_with(path: impl AsRef<Path>, options: PoolOptions) -> Result<Self> {
        let path = path.as_ref();
        let array = read_npy(path)?;
        Pool::from_array(array, options).map_err(|error| Error::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// A pool from a read `.npy` array of three dimensions, taking its values.
    pub fn from_array(array: NpyArray, options: PoolOptions) -> Result<Self> {
        let [a, b, c] = array.shape[..] else {
            return Err(Error::Dimensions(array.shape));
        };
        let data = match array.data {
            NpyData::F16(v) => Data::F16(Cow::Owned(v)),
            NpyData::F32(v) => Data::F32(Cow::Owned(v)),
            NpyData::F64(v) => Data::F64(Cow::Owned(v)),
        };
        Pool::build(data, [a, b, c], options)
    }
}

/// Reads a whole `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let fail = |reason: String| Error::File {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    npy::read(&mut file, len).map_err(|e| fail(e.to_string()))
}

/// `data` (in `layout`) as N x K x C: as it is when it already is, copied once when not.
fn reorder<T: Copy>(data: Cow<'_, [T]>, shape: Shape, layout: Layout) -> Cow<'_, [T]> {
    let Shape { n, k, c } = shape;
    let at = |i: usize, j: usize, l: usize| match layout {
        Layout::Nkc => (i * k + j) * c + l,
        Layout::Knc => (j * n + i) * c + l,
        Layout::Nck => (i * c + l) * k + j,
    };
    if layout == Layout::Nkc {
        return data;
    }
    let mut out = Vec::with_capacity(data.len());
    for i in 0..n {
        for j in 0..k {
            out.extend((0..c).map(|l| data[at(i, j, l)]));
        }
    }
    Cow::Owned(out)
}

/// Converts `data` (N x K x C, holding what `kind` says) to log-probs, in a copy when it is
/// borrowed; log-probs are left as they are. The SIMD backend converts on every core when it
/// is built in.
fn convert<T: Element>(
    data: &mut Cow<'_, [T]>,
    shape: Shape,
    kind: InputKind,
) -> Result<(), bald_core::Error> {
    if kind == InputKind::LogProbs {
        return Ok(());
    }
    let data = data.to_mut();
    #[cfg(feature = "cpu-simd")]
    {
        let simd = SimdBackend::new();
        match kind {
            InputKind::Probs => simd.probs_to_log_probs(data, shape),
            _ => simd.logits_to_log_probs(data, shape),
        }
    }
    #[cfg(not(feature = "cpu-simd"))]
    match kind {
        InputKind::Probs => bald_core::probs_to_log_probs(data, shape),
        _ => bald_core::logits_to_log_probs(data, shape),
    }
}

/// Validates `data` as N x K x C log-probs; on the SIMD backend, in the pass that computes every
/// point's entropies, which it returns.
fn validate<T: Element>(data: &[T], shape: Shape) -> Result<Option<Entropies>, bald_core::Error> {
    #[cfg(feature = "cpu-simd")]
    {
        let (mut h, mut eh) = (vec![0.0; shape.n], vec![0.0; shape.n]);
        SimdBackend::new().validate_entropies(data, shape, &mut h, &mut eh)?;
        Ok(Some((h, eh)))
    }
    #[cfg(not(feature = "cpu-simd"))]
    {
        LogProbs::new(data, shape)?;
        Ok(None)
    }
}

/// Work on a pool's validated log-probs, whatever their element type ([`Pool::log_probs`]).
pub(crate) trait OnLogProbs {
    /// What it gives.
    type Out;
    /// The work.
    fn on<U: Element>(self, lp: LogProbs<'_, U>) -> Self::Out;
}

/// The view of log-probs that [`Pool::build`] validated.
fn validated<T: Element>(data: &[T], shape: Shape) -> LogProbs<'_, T> {
    // Validated when the pool was made: the fast check accepts, and the length is right.
    LogProbs::new_with_fast_check(data, shape, |_, _| true)
        .unwrap_or_else(|_| unreachable!("a pool's values were validated when it was made"))
}

/// A pool on a device: the backend started, the pool uploaded to a GPU. Acquire on it as many
/// times as needed; made by [`Pool::on`].
pub struct Prepared<'p> {
    pool: &'p Pool<'p>,
    ready: Ready<'p>,
}

/// The backend, and the pool as it prepared it.
enum Ready<'p> {
    /// The scalar or SIMD backend, which read the host values in place.
    Host(Engine, PhantomData<&'p ()>),
    /// The CUDA backend, and the pool on its GPU.
    #[cfg(feature = "cuda")]
    Cuda(Box<CudaBackend>, CudaPools<'p>),
}

#[cfg(feature = "cuda")]
enum CudaPools<'p> {
    F16(CudaPool<'p, f16>),
    F32(CudaPool<'p, f32>),
    F64(CudaPool<'p, f64>),
}

/// Work on a prepared pool, on any backend and element type.
pub(crate) trait PoolJob {
    /// What it gives.
    type Out;
    /// Runs on `pool`, prepared by `backend`; `entropies` from the validating pass when
    /// `backend` is the one that computed them.
    fn on<'a, B: Backend, T: Element + 'a>(
        self,
        backend: &B,
        pool: &B::Pool<'a, T>,
        entropies: Option<&Entropies>,
    ) -> Result<Self::Out>;
}

/// The error of a backend that failed.
pub(crate) fn failed(e: impl fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl<'p> Prepared<'p> {
    fn new(pool: &'p Pool<'p>, device: Device) -> Result<Self> {
        let ready = match device.engine()? {
            #[cfg(feature = "cuda")]
            Engine::Cuda(gpu) => {
                let shape = pool.shape;
                let pools = match &pool.data {
                    Data::F16(v) => {
                        CudaPools::F16(gpu.prepare(validated(v, shape)).map_err(failed)?)
                    }
                    Data::F32(v) => {
                        CudaPools::F32(gpu.prepare(validated(v, shape)).map_err(failed)?)
                    }
                    Data::F64(v) => {
                        CudaPools::F64(gpu.prepare(validated(v, shape)).map_err(failed)?)
                    }
                };
                Ready::Cuda(gpu, pools)
            }
            host => Ready::Host(host, PhantomData),
        };
        Ok(Prepared { pool, ready })
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<'p> {
        self.pool
    }

    /// The backend's name: `scalar`, `cpu` or `cuda`.
    pub fn backend(&self) -> &'static str {
        match &self.ready {
            Ready::Host(engine, _) => engine.dispatch(Name).0,
            #[cfg(feature = "cuda")]
            Ready::Cuda(gpu, _) => gpu.name(),
        }
    }

    /// Runs `job` on the prepared pool: the one match over backends and element types.
    pub(crate) fn visit<J: PoolJob>(&self, job: J) -> Result<J::Out> {
        match &self.ready {
            Ready::Host(engine, _) => {
                let host = HostJob {
                    pool: self.pool,
                    job,
                };
                engine.dispatch(host).0
            }
            #[cfg(feature = "cuda")]
            Ready::Cuda(gpu, pools) => match pools {
                CudaPools::F16(p) => job.on(&**gpu, p, None),
                CudaPools::F32(p) => job.on(&**gpu, p, None),
                CudaPools::F64(p) => job.on(&**gpu, p, None),
            },
        }
    }
}

/// A backend's name.
struct Name;

impl OnBackend for Name {
    type Out = &'static str;
    fn on<B: Backend>(self, backend: &B) -> &'static str {
        backend.name()
    }
}

/// [`PoolJob`] on a host backend, which prepares the host values in place.
struct HostJob<'p, J> {
    pool: &'p Pool<'p>,
    job: J,
}

impl<J: PoolJob> OnBackend for HostJob<'_, J> {
    type Out = Result<J::Out>;

    fn on<B: Backend>(self, backend: &B) -> Result<J::Out> {
        let shape = self.pool.shape;
        // The entropies come from the SIMD backend's validating pass: used by that backend
        // only (named `cpu`), so that every other backend computes its own scores.
        let simd = cfg!(feature = "cpu-simd") && backend.name() == "cpu";
        let entropies = self.pool.entropies().filter(|_| simd);
        match &self.pool.data {
            Data::F16(v) => {
                let pool = backend.prepare(validated(v, shape)).map_err(failed)?;
                self.job.on(backend, &pool, entropies)
            }
            Data::F32(v) => {
                let pool = backend.prepare(validated(v, shape)).map_err(failed)?;
                self.job.on(backend, &pool, entropies)
            }
            Data::F64(v) => {
                let pool = backend.prepare(validated(v, shape)).map_err(failed)?;
                self.job.on(backend, &pool, entropies)
            }
        }
    }
}
