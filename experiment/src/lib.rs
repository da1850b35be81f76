//! bald-experiment: the active-learning experiment (the loop in [`active`], data, models,
//! trainers, plots), in a crate of its own so that `bald acquire`, the Python package and the
//! kernels crates never compile it. `bald experiment` (bald-cli's `experiment` feature, on by
//! default) gives it its arguments and writes what it reports.
//!
//! [`cnn::GalCnn`] is the Bayesian CNN of Gal et al. (2017), trained on batches with im2col and
//! the `gemm` crate's sgemm, each thread running the trunk of its share of the batch. The
//! choice was measured on the 2-core AVX2 development machine (`tools/gemm-bench`,
//! `tools/trainer-bench`): `gemm` 0.19 runs the CNN's matrix products at 50-114 GFLOP/s
//! against 61-82 for `matrixmultiply` 0.3; this trainer takes 730-1000 images/s through a
//! training step, burn 0.22's CPU backend 367 and torch 953.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod active;
pub mod cnn;
pub mod data;
pub mod mlp;
pub mod model;
pub mod nn;
pub mod plot;
pub mod rng;
