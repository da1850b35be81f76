//! # bald: Bayesian deep active learning
//!
//! Which unlabelled points should be labelled next? Given a model's MC-dropout predictions on
//! a pool, N points x K stochastic forward passes x C classes of log-probabilities, bald
//! scores every point (BALD, entropy, variation ratios, mean STD, margin) and picks batches:
//! top-k, PowerBALD, and exact greedy BatchBALD. It runs on the CPU (SIMD, every core) or a
//! CUDA GPU, and gives the same picks on each.
//!
//! ```
//! # fn main() -> Result<(), bald::Error> {
//! // 100 points, 8 MC samples, 3 classes: log-probs in N x K x C order.
//! let (n, k, c) = (100, 8, 3);
//! let values: Vec<f32> = (0..n * k)
//!     .flat_map(|i| {
//!         let x = ((i * 37 % 101) as f32 / 101.0, (i * 53 % 97) as f32 / 97.0);
//!         let z = [x.0, x.1, 1.0 - x.0].map(|v| 3.0 * v);
//!         let lse = z.iter().map(|v| v.exp()).sum::<f32>().ln();
//!         z.map(|v| v - lse)
//!     })
//!     .collect();
//!
//! let pool = bald::Pool::from_slice(&values, [n, k, c])?;
//! let a = bald::acquire(&pool, bald::Strategy::batchbald(10).num_samples(1000), bald::Device::auto())?;
//! let (indices, scores): (&[usize], &[f64]) = (&a.indices, &a.scores);
//! assert_eq!(indices.len(), 10);
//! assert!(scores.windows(2).all(|w| w[0] <= w[1] + 1e-9)); // cumulative joint information
//!
//! let s: Vec<f64> = bald::scores(&pool, bald::Score::Bald, bald::Device::Cpu)?;
//! assert_eq!(s.len(), n);
//! # Ok(())
//! # }
//! ```
//!
//! - [`Pool`] holds the predictions, validated (and converted from probabilities or logits,
//!   or from another axis order) once; [`Pool::open`] reads a `.npy`.
//! - [`Strategy`] is what to pick, with each strategy's parameters; [`Device`] is where.
//! - [`acquire`] and [`scores`] do the work; [`Pool::on`] prepares a pool on a device (a GPU
//!   upload) to acquire on it many times; [`Options`] excludes points and reports each pick.
//! - [`Error`] is every failure as data, with a [`Hint`] when the values look like another
//!   input kind; [`Warning`] is given when it applies.
//!
//! The backends are features, both on by default: `cpu-simd` (AVX-512, AVX2, NEON, detected at
//! run time) and `cuda` (cudarc loads CUDA at run time, so it costs nothing without a GPU).
//! The scalar f64 backend of `bald-core` is always there: [`Device::Scalar`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod acquire;
mod device;
mod error;
pub mod npy;
mod pool;
pub mod rank;
pub mod shard;
mod strategy;

use std::time::Instant;

pub use acquire::{
    acquire_on, at_information_limit, check, check_across_shards, check_exclude, epig_on,
    Acquisition, OnPick, OnWarning, Options, PickRegime, Warning,
};
pub use bald_core::{Backend, Greedy, Pick, Shape, StdKind, StochasticMode};
pub use device::{Device, OnBackend};
pub use error::{Argument, Error, Hint, Result, Spelling};
pub use pool::{read_npy, AsValues, InputKind, Layout, Pool, PoolOptions, Prepared, Values};
pub use strategy::{
    greedy_named, score_named, BatchBald, BatchEpig, Epig, Kind, Measure, PastLimit, Random, Score,
    Settings, Stochastic, Strategy, Top,
};

/// The backends, for work that needs one directly ([`Device::run`], [`acquire_on`]).
pub mod backends {
    pub use bald_core::Scalar;
    #[cfg(feature = "cpu-simd")]
    pub use bald_cpu_simd::SimdBackend;
    #[cfg(feature = "cuda")]
    pub use bald_cuda::CudaBackend;
}

/// Picks a batch from `pool` with `strategy` on `device`.
pub fn acquire(
    pool: &Pool<'_>,
    strategy: impl Into<Strategy>,
    device: Device,
) -> Result<Acquisition> {
    acquire_with(pool, strategy, device, Options::default())
}

/// [`acquire`] with [`Options`]: points to exclude, a callback at each BatchBALD pick, a
/// callback for each warning, every point's score.
pub fn acquire_with(
    pool: &Pool<'_>,
    strategy: impl Into<Strategy>,
    device: Device,
    options: Options<'_>,
) -> Result<Acquisition> {
    let start = Instant::now();
    let mut a = pool.on(device)?.acquire_with(strategy, options)?;
    a.seconds = start.elapsed().as_secs_f64();
    Ok(a)
}

/// Every point's `score` on `pool`, in pool order, computed on `device`.
pub fn scores(pool: &Pool<'_>, score: Score, device: Device) -> Result<Vec<f64>> {
    pool.on(device)?.scores(score)
}

/// Every point's EPIG against `targets` ([`Prepared::epig`]) on `device`.
pub fn epig(pool: &Pool<'_>, targets: &Pool<'_>, device: Device) -> Result<Vec<f64>> {
    pool.on(device)?.epig(targets)
}

/// A name among `all` (as `name` spells them), in any case, `_` for `-` accepted.
fn by_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    s: &str,
    what: &str,
) -> Result<T, String> {
    let wanted = s.trim().replace('_', "-").to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|&v| name(v) == wanted)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
            format!("unknown {what} '{s}': one of {}", names.join(", "))
        })
}

/// The README's Rust example, run as a doctest (its other blocks are shell and Python: the
/// Python package's tests run those).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
