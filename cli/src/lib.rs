//! bald-cli: the library behind the `bald` binary, a thin client of the `bald` crate:
//! `bald acquire` and, with the default feature `experiment`, `bald experiment`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acquire;
pub mod args;
#[cfg(feature = "experiment")]
pub mod experiment;
