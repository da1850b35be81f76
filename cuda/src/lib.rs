//! bald-cuda: bald's [`Backend`] on NVIDIA GPUs, with the hand-written kernels of
//! `bald-kernels` compiled by NVRTC at first use for the device's own architecture.
//!
//! - Nothing CUDA is linked: cudarc loads libcuda and libnvrtc at run time. [`CudaBackend::new`]
//!   probes for both first and returns [`CudaError::NoDriver`], [`CudaError::NoNvrtc`] or
//!   [`CudaError::NoDevice`] on machines without them; no path panics there.
//! - The pool is uploaded once by [`Backend::prepare`] (f32, or f16/bf16 bits; f64 pools are
//!   rounded to f32) and stays on the device; BatchBALD runs every greedy step there, the joint
//!   included, and brings back only the picks and their scores. A pool larger than the memory
//!   budget (free device memory, or [`CudaBackend::with_memory_limit`]) is streamed in chunks
//!   of points by every pass, with the same results.
//! - Dropout masks come from the same Philox stream as bald-core, bit for bit.
//!
//! Accuracy: probabilities and the joint-entropy products are f32, sums f64; the budgets of
//! `bald_core::budget` apply as to the CPU backends.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod device;
mod error;
mod pool;

use bald_core::rng::key_of;
use bald_core::{
    check_entropies_args, check_forward_args, check_joint_args, check_score_args,
    joint::dynamic_joint_workspace_len, Backend, BatchBald, DenseLayer, Element, JointProbs,
    LogProbs, McDropoutHead, PointScore, StdKind,
};
use bald_kernels::{Kernel, ScoreKind, DENSE_TILE, JOINT_CANDIDATES_PER_BLOCK, JOINT_THREADS};
use cudarc::driver::{
    CudaSlice, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};

pub use device::{compile, driver_present, nvrtc_present};
pub use error::CudaError;
pub use pool::CudaPool;

use device::Device;
use error::{driver, u32_of};
use pool::{device_bytes, DeviceData};

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// The CUDA backend on one GPU.
pub struct CudaBackend {
    device: Device,
    memory_limit: Option<usize>,
}

impl core::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.device.name)
            .field("arch", &self.device.arch)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}

/// Launch geometry of `count` independent items, one thread each.
fn grid_for(count: usize) -> Result<LaunchConfig, CudaError> {
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

/// A null device pointer, for optional kernel arguments.
const NULL: u64 = 0;

impl CudaBackend {
    /// The backend on GPU `ordinal` (0 for the first). Errors, without panicking, when there
    /// is no driver, no NVRTC or no such GPU.
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        Ok(CudaBackend {
            device: Device::open(ordinal)?,
            memory_limit: None,
        })
    }

    /// Caps the device memory the backend plans with at `bytes` (the default is 90% of the
    /// free memory). Pools beyond the cap are processed in chunks; picks do not change.
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

    /// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written, per second) over
    /// buffers of `bytes`: the memory bound the benchmarks compare the score pass against.
    #[doc(hidden)]
    pub fn copy_bandwidth_gbs(&self, bytes: usize) -> Result<f64, CudaError> {
        let stream = &self.device.stream;
        let len = bytes / 4;
        let src = self.zeros::<f32>(len, "copy buffers")?;
        let mut dst = self.zeros::<f32>(len, "copy buffers")?;
        let reps = 10;
        let mut elapsed = 0.0;
        for rep in 0..=reps {
            let start = std::time::Instant::now();
            stream
                .memcpy_dtod(&src, &mut dst)
                .map_err(driver("copying on the device"))?;
            stream
                .synchronize()
                .map_err(driver("copying on the device"))?;
            // The first copy warms up and is not counted.
            if rep > 0 {
                elapsed += start.elapsed().as_secs_f64();
            }
        }
        Ok(2.0 * (len * 4 * reps) as f64 / elapsed / 1e9)
    }

    /// A zeroed device buffer of `len` elements; `what` names it in the error.
    fn zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        len: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        self.device
            .stream
            .alloc_zeros::<T>(len)
            .map_err(driver(format!("allocating {what}")))
    }

    /// Device memory the backend may plan with, in bytes.
    fn budget(&self) -> Result<usize, CudaError> {
        let usable = self.device.free_memory()? / 10 * 9;
        Ok(self.memory_limit.map_or(usable, |l| l.min(usable)))
    }

    /// Points per chunk when each point needs `per_point` bytes and `fixed` bytes are needed
    /// besides; errors when not even one point fits.
    fn points_per_chunk(&self, per_point: usize, fixed: usize) -> Result<usize, CudaError> {
        let budget = self.budget()?;
        let room = budget.saturating_sub(fixed) / per_point.max(1);
        if room == 0 {
            return Err(CudaError::Unsupported {
                what: "device memory",
                reason: format!(
                    "{budget} bytes available, {} needed for one point",
                    per_point + fixed
                ),
            });
        }
        Ok(room)
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
        self.device
            .stream
            .clone_dtoh(&mask)
            .map_err(driver("downloading masks"))
    }

    fn masks_on_device(
        &self,
        layer: &DenseLayer<'_>,
        layer_index: usize,
        k: usize,
        seed: u64,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let len = bald_core::Shape::new(k, layer.inputs, 1).elements()?;
        let stream = &self.device.stream;
        let mut mask = self.zeros::<f32>(len, "masks")?;
        let f = self.device.function(Kernel::DropoutMaskF32)?;
        let [key0, key1] = key_of(seed);
        let (l32, k32, units) = (
            u32_of("layer", layer_index)?,
            u32_of("K", k)?,
            u32_of("layer inputs", layer.inputs)?,
        );
        let threshold = bald_core::keep_threshold(layer.dropout);
        let scale = (1.0 / (1.0 - f64::from(layer.dropout))) as f32;
        let mut b = stream.launch_builder(&f);
        b.arg(&key0).arg(&key1).arg(&l32).arg(&k32).arg(&units);
        b.arg(&threshold).arg(&scale).arg(&mut mask);
        // SAFETY: arguments match dropout_mask_f32 in head.cu; mask holds k * units floats.
        unsafe { b.launch(grid_for(len)?) }.map_err(driver("launch dropout_mask_f32"))?;
        Ok(mask)
    }

    /// Launches the score kernel over `points` points of `data` into `out` (and `out2` for
    /// [`ScoreKind::Entropies`]), each holding `points` f64s.
    #[allow(clippy::too_many_arguments)]
    fn launch_scores(
        &self,
        data: &DeviceData,
        points: usize,
        k: usize,
        c: usize,
        kind: ScoreKind,
        out: &mut CudaViewMut<'_, f64>,
        out2: Option<&mut CudaViewMut<'_, f64>>,
    ) -> Result<(), CudaError> {
        if c > 1024 {
            return Err(CudaError::Unsupported {
                what: "C",
                reason: format!("the score kernels take at most 1024 classes, not {c}"),
            });
        }
        let per_block = (256 / c).max(1);
        let block = per_block * c;
        let cfg = LaunchConfig {
            grid_dim: (u32_of("grid", points.div_ceil(per_block))?, 1, 1),
            block_dim: (u32_of("block", block)?, 1, 1),
            shared_mem_bytes: u32_of("shared memory", block * (3 * 8 + 4))?,
        };
        let kernel = data.scores_kernel();
        let f = self.device.function(kernel)?;
        let (n32, k32, c32, kind32) = (
            u32_of("N", points)?,
            u32_of("K", k)?,
            u32_of("C", c)?,
            kind as u32,
        );
        let mut b = self.device.stream.launch_builder(&f);
        data.push_arg(&mut b);
        b.arg(&n32).arg(&k32).arg(&c32).arg(&kind32).arg(out);
        match out2 {
            Some(o) => b.arg(o),
            None => b.arg(&NULL),
        };
        // SAFETY: arguments match scores_<dtype> in scores.cu; data holds points * K * C
        // elements and the outputs `points` f64s (the callers slice them so).
        unsafe { b.launch(cfg) }.map_err(driver(format!("launch {}", kernel.name())))?;
        Ok(())
    }

    /// Launches the joint-entropy kernel over `points` candidates of `data` into `out`
    /// (`points` f64s), with the transposed joint `at` (K x m) and optional row log-scales.
    #[allow(clippy::too_many_arguments)]
    fn launch_joint(
        &self,
        data: &DeviceData,
        points: usize,
        k: usize,
        c: usize,
        at: &CudaSlice<f32>,
        log_scale: Option<&CudaSlice<f32>>,
        m: usize,
        weight: f64,
        out: &mut CudaViewMut<'_, f64>,
    ) -> Result<(), CudaError> {
        let per_block = JOINT_CANDIDATES_PER_BLOCK as usize;
        let cfg = LaunchConfig {
            grid_dim: (u32_of("grid", points.div_ceil(per_block))?, 1, 1),
            block_dim: (JOINT_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let kernel = data.joint_kernel();
        let f = self.device.function(kernel)?;
        let (n32, k32, c32, m32) = (
            u32_of("N", points)?,
            u32_of("K", k)?,
            u32_of("C", c)?,
            u32_of("joint rows", m)?,
        );
        let mut b = self.device.stream.launch_builder(&f);
        data.push_arg(&mut b);
        b.arg(&n32).arg(&k32).arg(&c32).arg(at);
        match log_scale {
            Some(s) => b.arg(s),
            None => b.arg(&NULL),
        };
        b.arg(&m32).arg(&weight).arg(out);
        // SAFETY: arguments match joint_entropy_<dtype> in joint.cu; data holds points * K * C
        // elements, at K * m floats, log_scale m floats, out `points` f64s.
        unsafe { b.launch(cfg) }.map_err(driver(format!("launch {}", kernel.name())))?;
        Ok(())
    }

    /// Scratch of [`CudaBackend::argmax`] over `n` values.
    fn argmax_buffers(&self, n: usize) -> Result<ArgmaxBuffers, CudaError> {
        let blocks = n.div_ceil(256).clamp(1, 1024);
        Ok(ArgmaxBuffers {
            block_val: self.zeros(blocks, "argmax buffers")?,
            block_idx: self.zeros(blocks, "argmax buffers")?,
            best_val: self.zeros(1, "argmax buffers")?,
            best_idx: self.zeros(1, "argmax buffers")?,
        })
    }

    /// The device argmax of `vals` (ties to the lower index): (index, value).
    /// With `bufs` from [`CudaBackend::argmax_buffers`] for `vals.len()` values, allocated once
    /// per acquisition rather than once per pick.
    fn argmax(
        &self,
        vals: &CudaSlice<f64>,
        bufs: &mut ArgmaxBuffers,
    ) -> Result<(usize, f64), CudaError> {
        let n = vals.len();
        let stream = &self.device.stream;
        let blocks = bufs.block_val.len();
        let ArgmaxBuffers {
            block_val,
            block_idx,
            best_val,
            best_idx,
        } = bufs;
        let f = self.device.function(Kernel::ArgmaxF64)?;
        let (n32, blocks32) = (u32_of("N", n)?, u32_of("blocks", blocks)?);
        let cfg = |grid: u32| LaunchConfig {
            grid_dim: (grid, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = stream.launch_builder(&f);
        b.arg(vals)
            .arg(&NULL)
            .arg(&n32)
            .arg(&mut *block_val)
            .arg(&mut *block_idx);
        // SAFETY: arguments match argmax_f64 in joint.cu; vals holds n f64s, the outputs one
        // entry per block.
        unsafe { b.launch(cfg(blocks32)) }.map_err(driver("launch argmax_f64"))?;
        let mut b = stream.launch_builder(&f);
        b.arg(&*block_val).arg(&*block_idx).arg(&blocks32);
        b.arg(&mut *best_val).arg(&mut *best_idx);
        // SAFETY: as above, over the `blocks` block results with one block.
        unsafe { b.launch(cfg(1)) }.map_err(driver("launch argmax_f64"))?;
        let down = driver("downloading the argmax");
        let v = stream.clone_dtoh(&*best_val).map_err(down)?;
        let i = stream
            .clone_dtoh(&*best_idx)
            .map_err(driver("downloading the argmax"))?;
        Ok((i[0] as usize, v[0]))
    }
}

/// Per-block and final (value, index) pairs of the two-pass argmax.
struct ArgmaxBuffers {
    block_val: CudaSlice<f64>,
    block_idx: CudaSlice<u32>,
    best_val: CudaSlice<f64>,
    best_idx: CudaSlice<u32>,
}

/// Row-major M x K (f64) to K x M (f32): the device layout of the joint.
fn transpose_f32(a: &[f64], m: usize, k: usize) -> Vec<f32> {
    let mut at = vec![0.0f32; m * k];
    for (row, a_row) in a.chunks_exact(k).enumerate() {
        for (s, &v) in a_row.iter().enumerate() {
            at[s * m + row] = v as f32;
        }
    }
    at
}

impl Backend for CudaBackend {
    type Error = CudaError;
    type Pool<'a, T: Element + 'a> = CudaPool<'a, T>;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn prepare<'a, T: Element>(&self, lp: LogProbs<'a, T>) -> Result<CudaPool<'a, T>, CudaError> {
        let shape = lp.shape();
        u32_of("N", shape.n)?;
        // Per point: its log-probs, plus three f64 outputs (scores, conditional entropies,
        // joint entropies) that BatchBALD keeps for the whole pool.
        let per_point = shape.k * shape.c * device_bytes::<T>() + 3 * 8;
        let chunk = self.points_per_chunk(per_point, 0)?;
        if chunk >= shape.n {
            let data = self.upload(&lp, 0..shape.n)?;
            return Ok(CudaPool {
                host: lp,
                resident: Some(data),
                chunk: shape.n,
            });
        }
        // Streaming: the pool's outputs stay, chunks of data come and go (half the budget each,
        // one chunk at a time).
        let outputs = shape.n * 3 * 8;
        let chunk = self.points_per_chunk(shape.k * shape.c * device_bytes::<T>(), outputs)?;
        Ok(CudaPool {
            host: lp,
            resident: None,
            chunk,
        })
    }

    fn scores<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        score: PointScore,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.host.shape();
        check_score_args(score, shape, out.len(), workspace.len())?;
        let stream = &self.device.stream;
        let mut dev = self.zeros::<f64>(shape.n, "scores")?;
        self.for_each_chunk(pool, |range, data| {
            let points = range.len();
            let mut view = dev.slice_mut(range);
            self.launch_scores(
                data,
                points,
                shape.k,
                shape.c,
                score_kind(score),
                &mut view,
                None,
            )
        })?;
        stream
            .memcpy_dtoh(&dev, out)
            .map_err(driver("downloading scores"))
    }

    fn entropies<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        entropy: &mut [f64],
        conditional: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.host.shape();
        check_entropies_args(shape, entropy.len(), conditional.len())?;
        let stream = &self.device.stream;
        let mut h = self.zeros::<f64>(shape.n, "entropies")?;
        let mut eh = self.zeros::<f64>(shape.n, "entropies")?;
        self.for_each_chunk(pool, |range, data| {
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
            )
        })?;
        stream
            .memcpy_dtoh(&h, entropy)
            .map_err(driver("downloading entropies"))?;
        stream
            .memcpy_dtoh(&eh, conditional)
            .map_err(driver("downloading entropies"))
    }

    fn joint_entropies<T: Element>(
        &self,
        pool: &CudaPool<'_, T>,
        joint: &JointProbs<'_>,
        out: &mut [f64],
        workspace: &mut [f64],
    ) -> Result<(), CudaError> {
        let shape = pool.host.shape();
        check_joint_args(shape, joint, out.len(), workspace.len())?;
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
        let mut dev = self.zeros::<f64>(shape.n, "joint entropies")?;
        self.for_each_chunk(pool, |range, data| {
            let points = range.len();
            let mut view = dev.slice_mut(range);
            let (k, c) = (shape.k, shape.c);
            let ls = log_scale.as_ref();
            self.launch_joint(
                data,
                points,
                k,
                c,
                &at,
                ls,
                joint.m,
                joint.weight,
                &mut view,
            )
        })?;
        stream
            .memcpy_dtoh(&dev, out)
            .map_err(driver("downloading joint entropies"))
    }

    /// Every greedy step on the device: conditional entropies once, then per pick the joint
    /// update (exact expansion or sampled redraw, same Philox draws as bald-core), the joint
    /// entropies of all candidates, their scores and the argmax. Only the picks and their
    /// scores come back; `workspace` is not used.
    fn batchbald<'a, T: Element + 'a>(
        &self,
        params: &BatchBald,
        pool: &CudaPool<'a, T>,
        _workspace: &mut [f64],
        out_indices: &mut [usize],
        out_scores: &mut [f64],
    ) -> Result<usize, CudaError> {
        DeviceGreedy {
            backend: self,
            params: *params,
            pool,
        }
        .run(out_indices, out_scores)
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
        check_forward_args(head, features, n, k, out.len())?;
        let layers = head.layers();
        let masks = layers
            .iter()
            .enumerate()
            .map(|(l, layer)| self.masks_on_device(layer, l, k, seed))
            .collect::<Result<Vec<_>, _>>()?;
        let stream = &self.device.stream;
        let up = |what: &'static str| driver(format!("uploading {what}"));
        let weights = layers
            .iter()
            .map(|l| {
                Ok((
                    stream.clone_htod(l.weight).map_err(up("weights"))?,
                    stream.clone_htod(l.bias).map_err(up("biases"))?,
                ))
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        // Per point: its features and two activation buffers of K rows of the widest layer.
        let d = head.inputs();
        let width = head.max_width();
        let per_point = 4 * (d + 2 * k * width);
        let fixed: usize = layers
            .iter()
            .map(|l| 4 * (l.weight.len() + l.bias.len()))
            .sum();
        let chunk = self.points_per_chunk(per_point, fixed)?;
        let c = head.classes();
        let (tm, tn) = DENSE_TILE;
        let dense = self.device.function(Kernel::DenseF32)?;
        let softmax = self.device.function(Kernel::LogSoftmaxF32)?;
        for start in (0..n).step_by(chunk) {
            let points = chunk.min(n - start);
            let rows = points * k;
            let x = stream
                .clone_htod(&features[start * d..(start + points) * d])
                .map_err(up("features"))?;
            let mut bufs = [
                self.zeros::<f32>(rows * width, "activations")?,
                self.zeros::<f32>(rows * width, "activations")?,
            ];
            for (l, layer) in layers.iter().enumerate() {
                let (n32, k32) = (u32_of("N", points)?, u32_of("K", k)?);
                let (in32, out32) = (
                    u32_of("layer inputs", layer.inputs)?,
                    u32_of("layer outputs", layer.outputs)?,
                );
                let relu = u32::from(l + 1 < layers.len());
                let cfg = LaunchConfig {
                    grid_dim: (
                        u32_of("grid", rows.div_ceil(tm as usize))?,
                        u32_of("grid", layer.outputs.div_ceil(tn as usize))?,
                        1,
                    ),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                let [first, second] = &mut bufs;
                let (src, dst) = if l % 2 == 0 {
                    (&*first, second)
                } else {
                    (&*second, first)
                };
                // Layer 0 reads the features (shared by the K samples), later layers the
                // previous activations (K rows per point).
                let (input, n_stride, k_stride) = if l == 0 {
                    (&x, d as u64, 0u64)
                } else {
                    (src, (k * layer.inputs) as u64, layer.inputs as u64)
                };
                let (w, bias) = &weights[l];
                let mut b = stream.launch_builder(&dense);
                b.arg(input).arg(&n_stride).arg(&k_stride).arg(&masks[l]);
                b.arg(w)
                    .arg(bias)
                    .arg(&n32)
                    .arg(&k32)
                    .arg(&in32)
                    .arg(&out32);
                b.arg(&relu).arg(dst);
                // SAFETY: arguments match dense_f32 in head.cu; the input holds points rows
                // (K each after layer 0) of `inputs` floats, masks K x inputs, weights
                // outputs x inputs, dst rows x width >= rows x outputs.
                unsafe { b.launch(cfg) }.map_err(driver("launch dense_f32"))?;
            }
            // Layer l writes buffer (l + 1) % 2: the last one is layers.len() % 2.
            let last = &mut bufs[layers.len() % 2];
            let (rows64, c32) = (rows as u64, u32_of("C", c)?);
            let mut b = stream.launch_builder(&softmax);
            b.arg(&mut *last).arg(&rows64).arg(&c32);
            // SAFETY: arguments match log_softmax_f32 in head.cu; last holds rows x C floats.
            unsafe { b.launch(grid_for(rows)?) }.map_err(driver("launch log_softmax_f32"))?;
            let host = stream
                .clone_dtoh(&last.slice(..rows * c))
                .map_err(driver("downloading log-probs"))?;
            if host.iter().any(|v| !v.is_finite()) {
                return Err(bald_core::Error::InvalidParameter {
                    name: "weight",
                    reason: "activations overflow for this input",
                }
                .into());
            }
            let dst = &mut out[start * k * c..(start + points) * k * c];
            for (o, &v) in dst.iter_mut().zip(&host) {
                *o = O::from_f64(f64::from(v));
            }
        }
        Ok(())
    }
}

/// The state of one device-resident BatchBALD acquisition.
struct DeviceGreedy<'b, 'p, 'a, T: Element> {
    backend: &'b CudaBackend,
    params: BatchBald,
    pool: &'p CudaPool<'a, T>,
}

impl<T: Element> DeviceGreedy<'_, '_, '_, T> {
    fn run(&self, out_indices: &mut [usize], out_scores: &mut [f64]) -> Result<usize, CudaError> {
        let be = self.backend;
        let stream = &be.device.stream;
        let host = self.pool.host;
        let shape = host.shape();
        let (n, k, c) = (shape.n, shape.k, shape.c);
        let b = self.params.picks(n);
        if b == 0 {
            return Ok(0);
        }
        let num_samples = self.params.num_samples;
        // Capacities: rows the joint can reach, rows of the exact regime, chosen points kept.
        let rows_cap = dynamic_joint_workspace_len(shape, b - 1, num_samples)? / (k + 1);
        let mut exact_cap = 1usize;
        for _ in 0..b - 1 {
            match exact_cap.checked_mul(c) {
                Some(r) if r <= num_samples => exact_cap = r,
                _ => break,
            }
        }
        let per = (num_samples / k).max(1);
        let kept = (b - 1).max(1);
        let mut cond = be.zeros::<f64>(n, "entropies")?;
        let mut h = be.zeros::<f64>(n, "entropies")?;
        let mut a64 = [
            be.zeros::<f64>(k * exact_cap, "the joint")?,
            be.zeros::<f64>(k * exact_cap, "the joint")?,
        ];
        let mut at = be.zeros::<f32>(k * rows_cap, "the joint")?;
        let mut log_scale = be.zeros::<f32>(rows_cap, "the joint")?;
        let mut classes = be.zeros::<u32>(rows_cap * kept, "the joint")?;
        let mut chosen_lp = be.zeros::<f64>(kept * k * c, "chosen points")?;
        let mut chosen = be.zeros::<u32>(b, "chosen points")?;
        let mut argmax_bufs = be.argmax_buffers(n)?;

        be.for_each_chunk(self.pool, |range, data| {
            let points = range.len();
            let mut view = cond.slice_mut(range);
            be.launch_scores(data, points, k, c, ScoreKind::Conditional, &mut view, None)
        })?;
        // t = 0: one row, a = 1/K.
        let up = |what: &'static str| driver(format!("uploading {what}"));
        let start = vec![1.0 / k as f64; k];
        stream
            .memcpy_htod(&start, &mut a64[0])
            .map_err(up("the joint"))?;
        let start32: Vec<f32> = start.iter().map(|&v| v as f32).collect();
        stream
            .memcpy_htod(&start32, &mut at)
            .map_err(up("the joint"))?;
        let (k32, c32, n32) = (u32_of("K", k)?, u32_of("C", c)?, u32_of("N", n)?);
        let [key0, key1] = key_of(self.params.seed);
        let mut rows = 1usize;
        let mut cur = 0usize;
        let mut sampled = false;
        for t in 0..b {
            if t > 0 {
                let newest = out_indices[t - 1];
                let lp: Vec<f64> = host.point(newest).iter().map(|x| x.to_f64()).collect();
                let mut slot = chosen_lp.slice_mut((t - 1) * k * c..t * k * c);
                stream
                    .memcpy_htod(&lp, &mut slot)
                    .map_err(up("chosen points"))?;
                let idx = out_indices[..t]
                    .iter()
                    .map(|&i| u32_of("N", i))
                    .collect::<Result<Vec<u32>, _>>()?;
                let mut slot = chosen.slice_mut(..t);
                stream
                    .memcpy_htod(&idx, &mut slot)
                    .map_err(up("chosen points"))?;
                let exact_rows = rows
                    .checked_mul(c)
                    .filter(|&r| !sampled && r <= num_samples);
                if let Some(new_rows) = exact_rows {
                    let f = be.device.function(Kernel::JointExpandF64)?;
                    let rows32 = u32_of("joint rows", rows)?;
                    let point = chosen_lp.slice((t - 1) * k * c..t * k * c);
                    let [x, y] = &mut a64;
                    let (old, new) = if cur == 0 { (&*x, y) } else { (&*y, x) };
                    let mut bld = stream.launch_builder(&f);
                    bld.arg(old).arg(&rows32).arg(&k32).arg(&point).arg(&c32);
                    bld.arg(new).arg(&mut at);
                    // SAFETY: arguments match joint_expand_f64 in joint.cu; old holds K x rows,
                    // new and at K x rows * C <= K x exact_cap, point K x C.
                    unsafe { bld.launch(grid_for(k * new_rows)?) }
                        .map_err(driver("launch joint_expand_f64"))?;
                    cur = 1 - cur;
                    rows = new_rows;
                } else {
                    let new_rows = per * k;
                    let f = be.device.function(Kernel::JointResampleF64)?;
                    let (t32, per32, rows32) = (
                        u32_of("batch", t)?,
                        u32_of("samples", per)?,
                        u32_of("joint rows", new_rows)?,
                    );
                    let mut bld = stream.launch_builder(&f);
                    bld.arg(&chosen_lp)
                        .arg(&t32)
                        .arg(&k32)
                        .arg(&c32)
                        .arg(&per32);
                    bld.arg(&t32)
                        .arg(&key0)
                        .arg(&key1)
                        .arg(&mut classes)
                        .arg(&mut at);
                    bld.arg(&mut log_scale).arg(&rows32);
                    // SAFETY: arguments match joint_resample_f64 in joint.cu (step = t, as
                    // bald-core counts it); chosen_lp holds t x K x C, classes t x rows,
                    // at K x rows, log_scale rows, rows <= rows_cap.
                    unsafe { bld.launch(grid_for(new_rows)?) }
                        .map_err(driver("launch joint_resample_f64"))?;
                    rows = new_rows;
                    sampled = true;
                }
            }
            let weight = if sampled { 1.0 / rows as f64 } else { 1.0 };
            let scale = if sampled { Some(&log_scale) } else { None };
            be.for_each_chunk(self.pool, |range, data| {
                let points = range.len();
                let mut view = h.slice_mut(range);
                be.launch_joint(data, points, k, c, &at, scale, rows, weight, &mut view)
            })?;
            let f = be.device.function(Kernel::CandidateScoresF64)?;
            let t32 = u32_of("batch", t)?;
            let mut bld = stream.launch_builder(&f);
            bld.arg(&mut h).arg(&cond).arg(&chosen).arg(&t32).arg(&n32);
            // SAFETY: arguments match candidate_scores_f64 in joint.cu; h and cond hold N f64s,
            // chosen at least t indices < N.
            unsafe { bld.launch(grid_for(n)?) }.map_err(driver("launch candidate_scores_f64"))?;
            let (best, score) = be.argmax(&h, &mut argmax_bufs)?;
            out_indices[t] = best;
            out_scores[t] = score;
        }
        Ok(b)
    }
}
