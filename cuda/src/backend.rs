//! [`CudaBackend`]: the device, its memory budget and kernel modules, and bald-core's
//! [`Backend`] on them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bald_core::rng::key_of;
use bald_core::{
    check_entropies_args, check_joint_args, check_score_args, Backend, BatchBald, DenseLayer,
    Element, Hooks, JointProbs, LogProbs, McDropoutHead, PointScore, StdKind,
};
use bald_kernels::{
    scores_rows, Kernel, Module, ScoreKind, JOINT_CANDIDATES_PER_BLOCK, JOINT_TC_COLUMNS,
    JOINT_TC_THREADS, JOINT_THREADS, SCORES_WIDE_C, SCORES_WIDE_THREADS,
};
use cudarc::driver::{
    CudaSlice, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};

use crate::device::{Device, LoadedImage};
use crate::error::{driver, u32_of, CudaError};
use crate::pool::{CudaPool, DeviceData};
use crate::transfer::Staging;
use crate::{cache, greedy, pool};

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// The CUDA backend on one GPU.
pub struct CudaBackend {
    pub(crate) device: Device,
    pub(crate) memory_limit: Option<usize>,
    /// Bytes held by this backend's resident pools.
    pub(crate) ledger: Arc<AtomicUsize>,
    /// Whether joint-entropy steps run on tensor cores where the GPU and C allow
    /// ([`CudaBackend::with_tensor_cores`]).
    pub(crate) tensor_cores: bool,
    /// Whether the score kernels group their loads ([`CudaBackend::with_grouped_scores`]).
    pub(crate) grouped_scores: bool,
    /// The pinned staging buffers of [`CudaBackend::with_pinned_transfers`].
    pub(crate) staging: Staging,
}

impl core::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.device.name)
            .field("arch", &self.device.arch)
            .field("memory_limit", &self.memory_limit)
            .field("tensor_cores", &self.tensor_cores)
            .field("grouped_scores", &self.grouped_scores)
            .field("staging", &self.staging)
            .finish()
    }
}

/// Launch geometry of `count` independent items, one thread each.
pub(crate) fn grid_for(count: usize) -> Result<LaunchConfig, CudaError> {
    Ok(LaunchConfig {
        grid_dim: (u32_of("grid", count.div_ceil(THREADS as usize))?, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// The score kernels' selector for a score.
fn score_kind(score: PointScore) -> ScoreKind {
    match score {
        PointScore::Entropy => ScoreKind::Entropy,
        PointScore::ConditionalEntropy => ScoreKind::Conditional,
        PointScore::Bald => ScoreKind::Bald,
        PointScore::VariationRatios | PointScore::LeastConfidence => ScoreKind::VarRatios,
        PointScore::VariationRatiosMode => ScoreKind::VarRatiosMode,
        PointScore::MeanStd(StdKind::Population) => ScoreKind::MeanStd,
        PointScore::MeanStd(StdKind::Unbiased) => ScoreKind::MeanStdUnbiased,
        PointScore::Margin => ScoreKind::Margin,
    }
}

/// Device bytes per point that the score kernel needs besides the pool: the mode counters of
/// the wide layout.
fn score_scratch_per_point(kind: ScoreKind, c: usize) -> usize {
    if kind == ScoreKind::VarRatiosMode && c > SCORES_WIDE_C as usize {
        c.saturating_mul(4)
    } else {
        0
    }
}

/// `a * b` for buffer sizes, or [`bald_core::Error::ShapeOverflow`].
pub(crate) fn mul(a: usize, b: usize) -> Result<usize, CudaError> {
    a.checked_mul(b)
        .ok_or(CudaError::Input(bald_core::Error::ShapeOverflow))
}

/// A null device pointer, for optional kernel arguments.
pub(crate) const NULL: u64 = 0;

impl CudaBackend {
    /// The backend on GPU `ordinal` (0 for the first). Errors, without panicking, when there
    /// is no driver, no NVRTC or no such GPU.
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        Ok(CudaBackend {
            device: Device::open(ordinal)?,
            memory_limit: None,
            ledger: Arc::new(AtomicUsize::new(0)),
            tensor_cores: false,
            grouped_scores: false,
            staging: Staging::default(),
        })
    }

    /// Copies the pool's upload and the MC-dropout head's features and log-probs through two
    /// pinned staging buffers per direction of `floats` f32s each (`None`: straight from and into
    /// the caller's memory, the default). The buffers are allocated at the first transfer and
    /// kept; each chunk's host-side copy overlaps the next chunk's DMA. 1 << 21 (8 MiB) is a
    /// sensible size. Off by default until a GPU run has measured it (cuda/BENCHMARKS.md).
    pub fn with_pinned_transfers(mut self, floats: Option<usize>) -> Self {
        self.staging = Staging::new(floats.unwrap_or(0));
        self
    }

    /// Runs BatchBALD's and EPIG's joint-entropy steps on tensor cores (3xTF32: f32 accuracy
    /// from TF32 products) where the GPU has them (sm_80 and later) and C <= 64; the
    /// f32 kernel elsewhere. Off by default until a GPU run has measured it against the f32
    /// kernel (cuda/BENCHMARKS.md).
    pub fn with_tensor_cores(mut self, on: bool) -> Self {
        self.tensor_cores = on;
        self
    }

    /// Runs the per-point scores (and BatchBALD's and EPIG's first pass) with the grouped score
    /// kernels: each thread issues 8 f32 (16 f16 or bf16) loads before it uses any, a point's
    /// threads read consecutive rows, and each group is summed in f32 before the f64 sums
    /// (within `budget::SCORES`; the bound is in `scores.cu`). Off by default until a GPU run
    /// has measured it against the kernels of the first H200 run (cuda/BENCHMARKS.md).
    pub fn with_grouped_scores(mut self, on: bool) -> Self {
        self.grouped_scores = on;
        self
    }

    /// Whether a joint-entropy step over C classes runs on tensor cores.
    pub fn joint_on_tensor_cores(&self, c: usize) -> bool {
        self.tensor_cores && self.device.major >= 8 && c <= JOINT_TC_COLUMNS as usize
    }

    /// Caps the device memory the backend uses at `bytes`, a hard cap: resident pools and
    /// every operation's buffers (outputs, the BatchBALD joint and its scratch, the head's
    /// activations) stay within it together. Without a cap the budget is 90% of the free
    /// memory. Pools beyond the budget are processed in chunks; results do not change.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The GPU's name.
    pub fn device_name(&self) -> &str {
        &self.device.name
    }

    /// The architecture kernels are compiled for (`sm_90`, ...).
    pub fn arch(&self) -> &str {
        &self.device.arch
    }

    /// Sets the folder of the on-disk kernel cache (`None`: no cache) instead of
    /// `$BALD_KERNEL_CACHE` or the user's cache folder. Takes effect for modules not loaded
    /// yet.
    pub fn with_kernel_cache(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.device.cache = dir.map(cache::KernelCache::at);
        self
    }

    /// For each module, the image the driver loaded ([`crate::ImageKind::Cubin`] unless the
    /// device's architecture had none) and whether it came from the cache; `None` before
    /// the module's first use.
    pub fn module_images(&self) -> Vec<(Module, Option<LoadedImage>)> {
        self.device.module_images()
    }

    /// A zeroed device buffer of `len` elements (at least one); `what` names it in the error.
    pub(crate) fn zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        len: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        self.device
            .stream
            .alloc_zeros::<T>(len.max(1))
            .map_err(driver(format!("allocating {what}")))
    }

    /// A device buffer of `len` elements (at least one) that the caller's kernels overwrite
    /// before anything reads it.
    pub(crate) fn uninit<T: DeviceRepr>(
        &self,
        len: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        // SAFETY: FFI allocation without a fill; every caller writes each element it reads
        // (the emulation poisons new memory, so a read before a write fails its tests).
        unsafe { self.device.stream.alloc::<T>(len.max(1)) }
            .map_err(driver(format!("allocating {what}")))
    }

    /// Device memory the backend may use now, in bytes: 90% of the free memory, and within
    /// the cap less what resident pools hold.
    pub(crate) fn available(&self) -> Result<usize, CudaError> {
        let usable = self.device.free_memory()? / 10 * 9;
        Ok(match self.memory_limit {
            Some(cap) => usable.min(cap.saturating_sub(self.ledger.load(Ordering::Relaxed))),
            None => usable,
        })
    }

    /// Copies device results to the host after waiting for the kernels that made them.
    pub(crate) fn download<T: DeviceRepr>(
        &self,
        src: &CudaSlice<T>,
        dst: &mut [T],
        what: &str,
    ) -> Result<(), CudaError> {
        self.device.sync()?;
        let src = src.slice(..dst.len());
        self.device
            .stream
            .memcpy_dtoh(&src, dst)
            .map_err(driver(format!("downloading {what}")))?;
        self.device.sync()
    }

    /// The dropout masks of `layer` (index `layer_index` in its head) for K samples with
    /// `seed`, as the device computes them: K x inputs factors, 1 / (1 - p) where kept, 0
    /// where dropped. The forward pass applies exactly these.
    pub fn dropout_masks(
        &self,
        layer: &DenseLayer<'_>,
        layer_index: usize,
        k: usize,
        seed: u64,
    ) -> Result<Vec<f32>, CudaError> {
        let mask = self.masks_on_device(layer, layer_index, k, seed)?;
        let mut host = vec![0.0f32; mul(k, layer.inputs)?];
        self.download(&mask, &mut host, "masks")?;
        Ok(host)
    }

    pub(crate) fn masks_on_device(
        &self,
        layer: &DenseLayer<'_>,
        layer_index: usize,
        k: usize,
        seed: u64,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let len = mul(k, layer.inputs)?;
        let mut mask = self.uninit::<f32>(len, "masks")?;
        let kernel = Kernel::DropoutMaskF32;
        let f = self.device.function(kernel)?;
        let [key0, key1] = key_of(seed);
        let (l32, k32, units) = (
            u32_of("layer", layer_index)?,
            u32_of("K", k)?,
            u32_of("layer inputs", layer.inputs)?,
        );
        let threshold = bald_core::keep_threshold(layer.dropout);
        let scale = (1.0 / (1.0 - f64::from(layer.dropout))) as f32;
        // SAFETY: arguments match dropout_mask_f32 in head.cu; mask holds k * units floats,
        // each written by one thread.
        unsafe {
            self.device.launch(&f, kernel, grid_for(len)?, |b| {
                b.arg(&key0).arg(&key1).arg(&l32).arg(&k32).arg(&units);
                b.arg(&threshold).arg(&scale).arg(&mut mask);
            })
        }?;
        Ok(mask)
    }

    /// Launches the score kernel over `points` points of `data` into `out` (and `out2` for
    /// [`ScoreKind::Entropies`]), each holding `points` f64s. `counts` holds
    /// [`score_scratch_per_point`] bytes per point.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch_scores(
        &self,
        data: &DeviceData,
        points: usize,
        k: usize,
        c: usize,
        kind: ScoreKind,
        out: &mut CudaViewMut<'_, f64>,
        out2: Option<&mut CudaViewMut<'_, f64>>,
        counts: Option<&mut CudaSlice<u32>>,
    ) -> Result<(), CudaError> {
        let c32 = u32_of("C", c)?;
        // Rows of a point read at once by the narrow layout (`scores_rows` in scores.cu).
        let rows = if self.grouped_scores {
            scores_rows(c32)
        } else {
            1
        };
        let cfg = if c > SCORES_WIDE_C as usize {
            LaunchConfig {
                grid_dim: (u32_of("grid", points)?, 1, 1),
                block_dim: (SCORES_WIDE_THREADS, 1, 1),
                shared_mem_bytes: 0,
            }
        } else {
            let per_point = rows as usize * c;
            let per_block = (256 / per_point).max(1);
            let block = per_block * per_point;
            LaunchConfig {
                grid_dim: (u32_of("grid", points.div_ceil(per_block))?, 1, 1),
                block_dim: (u32_of("block", block)?, 1, 1),
                shared_mem_bytes: u32_of("shared memory", block * (3 * 8 + 4))?,
            }
        };
        let kernel = data.scores_kernel(self.grouped_scores);
        let f = self.device.function(kernel)?;
        let (n32, k32, kind32) = (u32_of("N", points)?, u32_of("K", k)?, kind as u32);
        let counts = counts.map(|buf| {
            let need = points * c;
            let mut view = buf.slice_mut(..need);
            self.device
                .stream
                .memset_zeros(&mut view)
                .map_err(driver("zeroing mode counters"))
                .map(|()| view)
        });
        let mut counts = counts.transpose()?;
        // SAFETY: arguments match scores_<dtype> and scores_grouped_<dtype> in scores.cu; data
        // holds points * K * C elements, the outputs `points` f64s (the callers slice them so),
        // counts (wide var-ratios-mode only) points * C zeroed u32s.
        unsafe {
            self.device.launch(&f, kernel, cfg, |b| {
                data.push_arg(b);
                b.arg(&n32).arg(&k32).arg(&c32).arg(&kind32).arg(out);
                match out2 {
                    Some(o) => b.arg(o),
                    None => b.arg(&NULL),
                };
                match counts.as_mut() {
                    Some(v) => b.arg(v),
                    None => b.arg(&NULL),
                };
            })
        }
    }

    /// Launches the joint-entropy kernel over `points` candidates into `out` (`points` f64s):
    /// the points `idx` lists of `data`, or its first `points`; with the transposed joint `at`
    /// (K x m) and optional row log-scales.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch_joint(
        &self,
        data: &DeviceData,
        idx: Option<&CudaSlice<u32>>,
        points: usize,
        k: usize,
        c: usize,
        at: &CudaSlice<f32>,
        log_scale: Option<&CudaSlice<f32>>,
        m: usize,
        weight: f64,
        out: &mut CudaViewMut<'_, f64>,
    ) -> Result<(), CudaError> {
        let tensor_cores = self.joint_on_tensor_cores(c);
        let (per_block, threads) = if tensor_cores {
            (JOINT_TC_COLUMNS as usize / c.max(1), JOINT_TC_THREADS)
        } else {
            (JOINT_CANDIDATES_PER_BLOCK as usize, JOINT_THREADS)
        };
        let cfg = LaunchConfig {
            grid_dim: (u32_of("grid", points.div_ceil(per_block))?, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        let kernel = data.joint_kernel(tensor_cores);
        let f = self.device.function(kernel)?;
        let (n32, k32, c32, m32) = (
            u32_of("N", points)?,
            u32_of("K", k)?,
            u32_of("C", c)?,
            u32_of("joint rows", m)?,
        );
        if idx.is_some_and(|i| i.len() < points) {
            return Err(bald_core::Error::ShapeMismatch {
                what: "candidate indices",
                expected: points,
                actual: idx.map_or(0, |i| i.len()),
            }
            .into());
        }
        // SAFETY: arguments match joint_entropy_<dtype> in joint.cu (and joint_entropy_tc_<dtype>
        // in joint_tc.cu, the same list, launched with C <= 64); data holds points * K * C
        // elements (or every pool point idx lists, idx holding `points` indices < N), at K * m
        // floats, log_scale m floats, out `points` f64s.
        unsafe {
            self.device.launch(&f, kernel, cfg, |b| {
                data.push_arg(b);
                match idx {
                    Some(i) => b.arg(i),
                    None => b.arg(&NULL),
                };
                b.arg(&n32).arg(&k32).arg(&c32).arg(at);
                match log_scale {
                    Some(s) => b.arg(s),
                    None => b.arg(&NULL),
                };
                b.arg(&m32).arg(&weight).arg(out);
            })
        }
    }
}

impl Backend for CudaBackend {
    type Error = CudaError;
    type Pool<'a, T: Element + 'a> = CudaPool<'a, T>;

    fn name(&self) -> &'static str {
        "cuda"
    }

    /// Uploads the pool when it fits the budget beside three f64 outputs per point (scores,
    /// conditional and joint entropies); else it will be streamed.
    fn prepare<'a, T: Element>(&self, lp: LogProbs<'a, T>) -> Result<CudaPool<'a, T>, CudaError> {
        let shape = lp.shape();
        u32_of("N", shape.n)?;
        let outputs = mul(shape.n, 3 * 8)?;
        let resident = self.upload_resident(&lp, outputs)?;
        Ok(CudaPool {
            shape,
            source: pool::Source::Host(lp),
            resident: std::sync::Mutex::new(resident),
        })
    }

    fn scores<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        score: PointScore,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.shape;
        check_score_args(score, shape, out.len(), workspace.len())?;
        let kind = score_kind(score);
        let scratch = score_scratch_per_point(kind, shape.c);
        let pass = self.plan(pool, "scores", mul(shape.n, 8)?, scratch)?;
        let mut dev = self.uninit::<f64>(shape.n, "scores")?;
        let mut counts = match scratch {
            0 => None,
            _ => Some(self.uninit::<u32>(mul(pass.chunk(), shape.c)?, "mode counters")?),
        };
        self.for_each_chunk(&pass, |range, data| {
            let points = range.len();
            let mut view = dev.slice_mut(range);
            self.launch_scores(
                data,
                points,
                shape.k,
                shape.c,
                kind,
                &mut view,
                None,
                counts.as_mut(),
            )
        })?;
        self.download(&dev, out, "scores")
    }

    fn entropies<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.shape;
        check_entropies_args(shape, entropy.len(), conditional.len())?;
        let pass = self.plan(pool, "entropies", mul(shape.n, 2 * 8)?, 0)?;
        let mut h = self.uninit::<f64>(shape.n, "entropies")?;
        let mut eh = self.uninit::<f64>(shape.n, "entropies")?;
        self.for_each_chunk(&pass, |range, data| {
            let points = range.len();
            let mut hv = h.slice_mut(range.clone());
            let mut ehv = eh.slice_mut(range);
            let kind = ScoreKind::Entropies;
            self.launch_scores(
                data,
                points,
                shape.k,
                shape.c,
                kind,
                &mut hv,
                Some(&mut ehv),
                None,
            )
        })?;
        self.download(&h, entropy, "entropies")?;
        self.download(&eh, conditional, "entropies")
    }

    /// An empty joint (M = 0) gives zeros without touching the device. Listed candidates are
    /// gathered on the device from a resident pool (from the host when it streams).
    fn joint_entropies<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        joint: &JointProbs<'_>,
        candidates: Option<&[usize]>,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.shape;
        check_joint_args(shape, joint, candidates, out.len(), workspace.len())?;
        if joint.m == 0 || out.is_empty() {
            out.fill(0.0);
            return Ok(());
        }
        let rows = mul(joint.m, joint.k)?;
        let fixed = mul(rows, 4)?
            .saturating_add(joint.m * 4)
            .saturating_add(mul(out.len(), 12)?);
        let pass = self.plan(pool, "joint entropies", fixed, 0)?;
        let stream = &self.device.stream;
        let up = driver("uploading the joint");
        let at = stream
            .clone_htod(&transpose_f32(joint.a, joint.m, joint.k))
            .map_err(up)?;
        let log_scale = match joint.log_scale {
            Some(s) => Some(
                stream
                    .clone_htod(&s.iter().map(|&x| x as f32).collect::<Vec<f32>>())
                    .map_err(driver("uploading the joint"))?,
            ),
            None => None,
        };
        let mut dev = self.uninit::<f64>(out.len(), "joint entropies")?;
        let (k, c) = (shape.k, shape.c);
        let ls = log_scale.as_ref();
        let (m, weight) = (joint.m, joint.weight);
        match candidates {
            None => self.for_each_chunk(&pass, |range, data| {
                let points = range.len();
                let mut view = dev.slice_mut(range);
                self.launch_joint(data, None, points, k, c, &at, ls, m, weight, &mut view)
            })?,
            Some(list) => {
                for (i, part) in list.chunks(pass.chunk()).enumerate() {
                    let start = i * pass.chunk();
                    let mut view = dev.slice_mut(start..start + part.len());
                    self.with_candidates(&pass, part, |data, idx| {
                        let points = part.len();
                        self.launch_joint(data, idx, points, k, c, &at, ls, m, weight, &mut view)
                    })?;
                }
            }
        }
        self.download(&dev, out, "joint entropies")
    }

    /// From the host values, or the one point copied back from a pool on the device.
    fn read_point<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        n: usize,
        out: &mut [T],
    ) -> Result<(), CudaError> {
        let shape = bald_core::PreparedPool::shape(pool);
        if n >= shape.n {
            return Err(bald_core::Error::IndexOutOfRange {
                index: n,
                len: shape.n,
            }
            .into());
        }
        if out.len() != shape.k * shape.c {
            return Err(bald_core::Error::ShapeMismatch {
                what: "out",
                expected: shape.k * shape.c,
                actual: out.len(),
            }
            .into());
        }
        out.copy_from_slice(&pool.point(self, n)?);
        Ok(())
    }

    /// A thousand candidates: 256 thread blocks, about two per SM of a large GPU.
    fn lazy_block(&self, _shape: bald_core::Shape) -> usize {
        1024
    }

    /// Every greedy step on the device: entropies once, then per pick the joint update (exact
    /// expansion or sampled draws, the same Philox draws as bald-core), and the joint entropies
    /// of all candidates with their scores and argmax (full greedy), or of bald-core's
    /// [`bald_core::LazyGreedy`] blocks, gathered on the device (lazy greedy); `workspace` is
    /// not used.
    fn batchbald<'a, T: Element + 'a>(
        &self,
        params: &BatchBald,
        pool: &CudaPool<'a, T>,
        _workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
        hooks: &mut Hooks<'_>,
    ) -> Result<usize, CudaError> {
        greedy::run(self, params, pool, out_indices, out_scores, hooks)
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
    ) -> Result<(), CudaError> {
        self.forward(head, features, n, k, seed, out)
    }
}

/// Row-major M x K (f64) to K x M (f32): the device layout of the joint.
pub(crate) fn transpose_f32(a: &[f64], m: usize, k: usize) -> Vec<f32> {
    let mut at = vec![0.0f32; m * k];
    for (row, a_row) in a.chunks_exact(k).enumerate() {
        for (s, &v) in a_row.iter().enumerate() {
            at[s * m + row] = v as f32;
        }
    }
    at
}
