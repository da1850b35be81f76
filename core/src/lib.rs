//! bald-core: the math of Bayesian deep active learning, written once and plainly.
//!
//! Input is a pool of N points, each with K stochastic predictions (MC dropout) over C classes,
//! as row-major N x K x C log-probabilities ([`LogProbs`], validated). From it:
//!
//! - per-point scores ([`PointScore`]): predictive entropy, expected conditional entropy, BALD,
//!   variation ratios (both forms), mean STD, margin, least confidence; random keys
//!   ([`random_scores`]); stochastic batches ([`StochasticBatch`], PowerBALD);
//! - greedy BatchBALD ([`BatchBald`]) with exact, sampled and dynamic joint entropy
//!   ([`joint`]);
//! - EPIG against target inputs ([`epig`]), as a joint-entropy step over the targets;
//! - the MC-dropout head ([`McDropoutHead`]) whose K forward passes produce the pool;
//! - [`Backend`], the heavy steps, with [`Scalar`], the f64 reference every other backend is
//!   tested against.
//!
//! `no_std`; no allocation on the core paths (callers pass outputs and scratch, sized by the
//! `*_workspace_len` functions). Feature `alloc` adds `Vec`-returning conveniences
//! ([`owned`]), `std` the `std::error::Error` impl, `half` f16/bf16 input.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod backend;
mod batch_epig;
mod batchbald;
#[doc(hidden)]
pub mod budget;
mod element;
mod epig;
mod error;
mod head;
pub mod joint;
mod lazy;
mod logprobs;
mod math;
#[cfg(feature = "alloc")]
pub mod owned;
mod params;
pub mod rng;
mod scores;
mod stochastic;
mod topk;

pub use backend::{read_host_point, Backend, PreparedPool, Scalar};
pub use batch_epig::{batch_epig_reference, BatchEpig};
pub use batchbald::GreedyShard;
pub use element::{Element, ElementSlice};
pub use epig::{check_targets, epig, epig_reference, epig_targets, epig_workspace_len};
pub use error::{Error, Plain};
pub use head::{
    check_forward_args, dropout_keep, forward, head_workspace_len, keep_threshold, DenseLayer,
    McDropoutHead,
};
pub use joint::{check_joint_args, joint_entropies_workspace_len, JointProbs, Regime};
pub use lazy::{
    lazy_workspace_len, merge_step, pick_from_bests, pick_joint, sampled_widening, Evaluated,
    LazyGreedy,
};
pub use logprobs::{logits_to_log_probs, probs_to_log_probs, LogProbs, Shape};
pub use math::{log_sum_exp, neg_p_log_p, neg_x_ln_x};
pub use params::{exclude_candidates, BatchBald, Entropies, Greedy, Hooks, Pick};
pub use scores::{
    check_entropies_args, check_score_args, point_score, score_workspace_len, scores, PointScore,
    StdKind,
};
pub use stochastic::{random_scores, StochasticBatch, StochasticMode};
pub use topk::{argmax, better_first, top_k};

#[cfg(feature = "half")]
pub use half;
