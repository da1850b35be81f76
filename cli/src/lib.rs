//! bald-cli: the library behind the `bald` binary: the `.npy` reader, `bald acquire` and, with
//! the default feature `experiment`, `bald experiment`.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acquire;
pub mod backends;
#[cfg(feature = "experiment")]
pub mod experiment;
#[doc(hidden)]
pub mod fuzzing;
pub mod npy;
