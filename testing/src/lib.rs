//! bald-testing: what the tests, benchmarks and fuzz targets of bald's crates share (a
//! dev-dependency only, as libm's `libm-test`): the batchbald_redux reference cases and random
//! pools ([`cases`]), the fuzz targets' bodies ([`fuzzing`]), and saying that a test's GPU
//! checks were skipped ([`skip`]).

pub mod cases;
/// The `.npy` reader and writer (the `bald` crate's), for tests, examples and benchmarks.
pub use bald::npy;
pub mod fuzzing;
pub mod skip;
