//! bald-kernels: bald's hand-written CUDA C kernels, embedded as source for NVRTC.
//!
//! One `.cu` file per kernel family ([`Module`]), each prefixed with the shared
//! `common.cuh` (element loads, Philox4x32-10, -x ln x). Kernels are named `<op>_<dtype>`
//! ([`Kernel`]); the dtype is the pool's storage (`f32`, or `f16`/`bf16` bits) or the type the
//! kernel computes in. Launch geometry and argument lists are documented above each kernel in
//! its source; `bald-cuda` is the only caller.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// A kernel family: one `.cu` file, compiled by NVRTC into one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Module {
    /// Per-point scores, and the validation of pools that are on the device (`scores.cu`).
    Scores,
    /// BatchBALD: joint entropies, candidate scores, argmax, joint updates (`joint.cu`).
    Joint,
    /// The MC-dropout head forward pass (`head.cu`).
    Head,
    /// BatchBALD's joint-entropy step on tensor cores, 3xTF32, sm_80 and later
    /// (`joint_tc.cu`).
    JointTc,
}

impl Module {
    /// Every module.
    pub const ALL: [Module; 4] = [Module::Scores, Module::Joint, Module::Head, Module::JointTc];

    /// The module's name, as errors print it.
    pub fn name(self) -> &'static str {
        match self {
            Module::Scores => "scores",
            Module::Joint => "joint",
            Module::Head => "head",
            Module::JointTc => "joint_tc",
        }
    }

    /// The module's full CUDA C source (common header included).
    pub fn source(self) -> &'static str {
        match self {
            Module::Scores => concat!(include_str!("cu/common.cuh"), include_str!("cu/scores.cu")),
            Module::Joint => concat!(include_str!("cu/common.cuh"), include_str!("cu/joint.cu")),
            Module::Head => concat!(include_str!("cu/common.cuh"), include_str!("cu/head.cu")),
            Module::JointTc => {
                concat!(
                    include_str!("cu/common.cuh"),
                    include_str!("cu/joint_tc.cu")
                )
            }
        }
    }

    /// The module's position in [`Module::ALL`] (for per-module caches).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Every kernel, by `<op>_<dtype>` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Scores of f32 pools.
    ScoresF32,
    /// Scores of f16 pools.
    ScoresF16,
    /// Scores of bf16 pools.
    ScoresBf16,
    /// Scores of f32 pools, loads grouped (`CudaBackend::with_grouped_scores`).
    ScoresGroupedF32,
    /// Scores of f16 pools, loads grouped.
    ScoresGroupedF16,
    /// Scores of bf16 pools, loads grouped.
    ScoresGroupedBf16,
    /// Validation of an f32 pool on the device.
    ValidateF32,
    /// Validation of an f16 pool on the device.
    ValidateF16,
    /// Validation of a bf16 pool on the device.
    ValidateBf16,
    /// Validation of an f64 pool on the device, rounding it to f32.
    ValidateF64,
    /// Joint-entropy step over f32 pools.
    JointEntropyF32,
    /// Joint-entropy step over f16 pools.
    JointEntropyF16,
    /// Joint-entropy step over bf16 pools.
    JointEntropyBf16,
    /// Joint-entropy step over f32 pools on tensor cores.
    JointEntropyTcF32,
    /// Joint-entropy step over f16 pools on tensor cores.
    JointEntropyTcF16,
    /// Joint-entropy step over bf16 pools on tensor cores.
    JointEntropyTcBf16,
    /// Greedy scores from joint and conditional entropies.
    CandidateScoresF64,
    /// Block-wise argmax with ties to the lower index.
    ArgmaxF64,
    /// Exact-regime expansion of the joint.
    JointExpandF64,
    /// Sampled-regime draws of the joint, the newest point added to kept configurations.
    JointSampleF64,
    /// Dropout masks from Philox.
    DropoutMaskF32,
    /// Tiled dense layer with masked inputs.
    DenseF32,
    /// Row-wise log_softmax.
    LogSoftmaxF32,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 23] = [
        Kernel::ScoresF32,
        Kernel::ScoresF16,
        Kernel::ScoresBf16,
        Kernel::ScoresGroupedF32,
        Kernel::ScoresGroupedF16,
        Kernel::ScoresGroupedBf16,
        Kernel::ValidateF32,
        Kernel::ValidateF16,
        Kernel::ValidateBf16,
        Kernel::ValidateF64,
        Kernel::JointEntropyF32,
        Kernel::JointEntropyF16,
        Kernel::JointEntropyBf16,
        Kernel::JointEntropyTcF32,
        Kernel::JointEntropyTcF16,
        Kernel::JointEntropyTcBf16,
        Kernel::CandidateScoresF64,
        Kernel::ArgmaxF64,
        Kernel::JointExpandF64,
        Kernel::JointSampleF64,
        Kernel::DropoutMaskF32,
        Kernel::DenseF32,
        Kernel::LogSoftmaxF32,
    ];

    /// The kernel's symbol in its module.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::ScoresF32 => "scores_f32",
            Kernel::ScoresF16 => "scores_f16",
            Kernel::ScoresBf16 => "scores_bf16",
            Kernel::ScoresGroupedF32 => "scores_grouped_f32",
            Kernel::ScoresGroupedF16 => "scores_grouped_f16",
            Kernel::ScoresGroupedBf16 => "scores_grouped_bf16",
            Kernel::ValidateF32 => "validate_f32",
            Kernel::ValidateF16 => "validate_f16",
            Kernel::ValidateBf16 => "validate_bf16",
            Kernel::ValidateF64 => "validate_f64",
            Kernel::JointEntropyF32 => "joint_entropy_f32",
            Kernel::JointEntropyF16 => "joint_entropy_f16",
            Kernel::JointEntropyBf16 => "joint_entropy_bf16",
            Kernel::JointEntropyTcF32 => "joint_entropy_tc_f32",
            Kernel::JointEntropyTcF16 => "joint_entropy_tc_f16",
            Kernel::JointEntropyTcBf16 => "joint_entropy_tc_bf16",
            Kernel::CandidateScoresF64 => "candidate_scores_f64",
            Kernel::ArgmaxF64 => "argmax_f64",
            Kernel::JointExpandF64 => "joint_expand_f64",
            Kernel::JointSampleF64 => "joint_sample_f64",
            Kernel::DropoutMaskF32 => "dropout_mask_f32",
            Kernel::DenseF32 => "dense_f32",
            Kernel::LogSoftmaxF32 => "log_softmax_f32",
        }
    }

    /// The module that defines the kernel.
    pub fn module(self) -> Module {
        match self {
            Kernel::ScoresF32
            | Kernel::ScoresF16
            | Kernel::ScoresBf16
            | Kernel::ScoresGroupedF32
            | Kernel::ScoresGroupedF16
            | Kernel::ScoresGroupedBf16
            | Kernel::ValidateF32
            | Kernel::ValidateF16
            | Kernel::ValidateBf16
            | Kernel::ValidateF64 => Module::Scores,
            Kernel::JointEntropyF32
            | Kernel::JointEntropyF16
            | Kernel::JointEntropyBf16
            | Kernel::CandidateScoresF64
            | Kernel::ArgmaxF64
            | Kernel::JointExpandF64
            | Kernel::JointSampleF64 => Module::Joint,
            Kernel::DropoutMaskF32 | Kernel::DenseF32 | Kernel::LogSoftmaxF32 => Module::Head,
            Kernel::JointEntropyTcF32 | Kernel::JointEntropyTcF16 | Kernel::JointEntropyTcBf16 => {
                Module::JointTc
            }
        }
    }
}

/// Score selectors of the `scores_*` kernels (`SCORE_*` in `scores.cu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ScoreKind {
    /// Entropy into `out`, conditional entropy into `out2`.
    Entropies = 0,
    /// Predictive entropy.
    Entropy = 1,
    /// Expected conditional entropy.
    Conditional = 2,
    /// BALD.
    Bald = 3,
    /// 1 - max mean probability (variation ratios, least confidence).
    VarRatios = 4,
    /// 1 - f_mode / K.
    VarRatiosMode = 5,
    /// Mean population std.
    MeanStd = 6,
    /// Mean unbiased std.
    MeanStdUnbiased = 7,
    /// 1 - (top1 - top2).
    Margin = 8,
}

/// The `scores_*` kernels' layout switch (`SCORES_WIDE_C`): up to this many classes, blocks of
/// `P * R * C` threads for `P = max(1, 256 / (R * C))` points, R = 1 for `scores_<dtype>` and
/// [`scores_rows`] for `scores_grouped_<dtype>`; beyond, one block of [`SCORES_WIDE_THREADS`]
/// threads per point (any C).
pub const SCORES_WIDE_C: u32 = 256;
/// The rows R of a point that the `scores_grouped_*` kernels' narrow layout reads at once
/// (`R * C` threads a point): max(1, 32 / C), so that a warp reads contiguous values.
pub fn scores_rows(c: u32) -> u32 {
    (32 / c.max(1)).max(1)
}

/// Threads per block of the `scores_*` kernels' wide layout (`SCORES_WIDE_THREADS`).
pub const SCORES_WIDE_THREADS: u32 = 256;

/// Threads per block of the `joint_entropy_*` kernels (`JOINT_THREADS`).
pub const JOINT_THREADS: u32 = 256;
/// Candidates per block of the `joint_entropy_*` kernels (`JOINT_NB`).
pub const JOINT_CANDIDATES_PER_BLOCK: u32 = 4;
/// Threads per block of the `joint_entropy_tc_*` kernels (`TC_THREADS`).
pub const JOINT_TC_THREADS: u32 = 128;
/// Columns (candidate, class) per block of the `joint_entropy_tc_*` kernels (`TC_COLS`): they
/// take C up to this, `JOINT_TC_COLUMNS / C` candidates a block.
pub const JOINT_TC_COLUMNS: u32 = 64;
/// Output tile (rows, outputs) of `dense_f32` (`DENSE_TM`, `DENSE_TN`); 256 threads per block.
pub const DENSE_TILE: (u32, u32) = (128, 128);
