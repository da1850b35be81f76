//! The MC-dropout head's forward pass on the device: the layers (`dense_f32`, masks from
//! Philox) and `log_softmax_f32` over chunks of points, in one of two ways:
//!
//! - direct (the default, as measured on the H200): per chunk of points that fits the memory
//!   budget, the features go up, the kernels run and the log-probs come down, one after the
//!   other on the backend's stream;
//! - pipelined, with [`CudaBackend::with_pinned_transfers`]: pieces of points that fit a pinned
//!   staging buffer flow through two slots. Piece i's features go up on the upload stream while
//!   the kernels run piece i - 1 on the backend's stream and piece i - 2's log-probs come down
//!   on the download stream; meanwhile the host fills the upload buffer of piece i + 1 and
//!   copies piece i - 1's log-probs out of their download buffer into the caller's memory
//!   (which touches its pages there, not inside a copy). Events order each slot's uses.

use std::sync::Arc;

use bald_core::{check_forward_args, DenseLayer, Element, McDropoutHead};
use bald_kernels::{Kernel, DENSE_TILE};
use cudarc::driver::{CudaEvent, CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

use crate::backend::{grid_for, mul, CudaBackend};
use crate::error::{driver, u32_of, CudaError};

/// What the head's kernels keep for a whole pass: masks, weights and biases on the device, the
/// two activation buffers (K rows of the widest layer output per point of a chunk) and the
/// kernels.
struct Layers<'h> {
    layers: &'h [DenseLayer<'h>],
    k: usize,
    c: usize,
    masks: Vec<CudaSlice<f32>>,
    weights: Vec<(CudaSlice<f32>, CudaSlice<f32>)>,
    bufs: [CudaSlice<f32>; 2],
    dense: CudaFunction,
    softmax: CudaFunction,
}

impl<'h> Layers<'h> {
    /// Device memory of the pass that does not grow with the points, in bytes.
    fn fixed_bytes(head: &McDropoutHead<'_>, k: usize) -> Result<usize, CudaError> {
        let mut fixed = 0usize;
        for l in head.layers() {
            let floats = (l.weight.len() + l.bias.len()).saturating_add(mul(k, l.inputs)?);
            fixed = fixed.saturating_add(mul(floats, 4)?);
        }
        Ok(fixed)
    }

    /// The floats of the widest layer output.
    fn width(head: &McDropoutHead<'_>) -> usize {
        let layers = head.layers();
        layers
            .iter()
            .map(|l| l.outputs)
            .max()
            .unwrap_or(head.classes())
    }

    /// Uploads the weights, makes the masks and allocates activations for `chunk` points.
    fn new(
        be: &CudaBackend,
        head: &'h McDropoutHead<'h>,
        k: usize,
        seed: u64,
        chunk: usize,
    ) -> Result<Self, CudaError> {
        let layers = head.layers();
        let masks = layers
            .iter()
            .enumerate()
            .map(|(l, layer)| be.masks_on_device(layer, l, k, seed))
            .collect::<Result<Vec<_>, _>>()?;
        let stream = &be.device.stream;
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
        let rows_cap = mul(chunk, k)?;
        let width = Self::width(head);
        Ok(Layers {
            layers,
            k,
            c: head.classes(),
            masks,
            weights,
            bufs: [
                be.uninit::<f32>(mul(rows_cap, width)?, "activations")?,
                be.uninit::<f32>(mul(rows_cap, width)?, "activations")?,
            ],
            dense: be.device.function(Kernel::DenseF32)?,
            softmax: be.device.function(Kernel::LogSoftmaxF32)?,
        })
    }

    /// Launches the layers and the log-softmax on `points` points of features `x` (on the
    /// backend's stream); returns the buffer that holds their points x K x C log-probs.
    fn run(
        &mut self,
        be: &CudaBackend,
        x: &CudaSlice<f32>,
        d: usize,
        points: usize,
    ) -> Result<&mut CudaSlice<f32>, CudaError> {
        let (k, rows) = (self.k, points * self.k);
        let (tm, tn) = DENSE_TILE;
        for (l, layer) in self.layers.iter().enumerate() {
            let (n32, k32) = (u32_of("N", points)?, u32_of("K", k)?);
            let (in32, out32) = (
                u32_of("layer inputs", layer.inputs)?,
                u32_of("layer outputs", layer.outputs)?,
            );
            let relu = u32::from(l + 1 < self.layers.len());
            let cfg = LaunchConfig {
                grid_dim: (
                    u32_of("grid", rows.div_ceil(tm as usize))?,
                    u32_of("grid", layer.outputs.div_ceil(tn as usize))?,
                    1,
                ),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            let [first, second] = &mut self.bufs;
            let (src, dst) = if l % 2 == 0 {
                (&*first, second)
            } else {
                (&*second, first)
            };
            // Layer 0 reads the features (shared by the K samples), later layers the previous
            // activations (K rows per point).
            let (input, n_stride, k_stride) = if l == 0 {
                (x, d as u64, 0u64)
            } else {
                (src, (k * layer.inputs) as u64, layer.inputs as u64)
            };
            let (w, bias) = &self.weights[l];
            let mask = &self.masks[l];
            // SAFETY: arguments match dense_f32 in head.cu; the input holds points rows (K
            // each after layer 0) of `inputs` floats, masks K x inputs, weights outputs x
            // inputs, dst rows x width >= rows x outputs, all of which it writes.
            unsafe {
                be.device.launch(&self.dense, Kernel::DenseF32, cfg, |b| {
                    b.arg(input).arg(&n_stride).arg(&k_stride).arg(mask);
                    b.arg(w)
                        .arg(bias)
                        .arg(&n32)
                        .arg(&k32)
                        .arg(&in32)
                        .arg(&out32);
                    b.arg(&relu).arg(dst);
                })
            }?;
        }
        // Layer l writes buffer (l + 1) % 2: the last one is layers.len() % 2.
        let last = &mut self.bufs[self.layers.len() % 2];
        let (rows64, c32) = (rows as u64, u32_of("C", self.c)?);
        // SAFETY: arguments match log_softmax_f32 in head.cu; last holds rows x C floats.
        unsafe {
            be.device
                .launch(&self.softmax, Kernel::LogSoftmaxF32, grid_for(rows)?, |b| {
                    b.arg(&mut *last).arg(&rows64).arg(&c32);
                })
        }?;
        Ok(last)
    }
}

/// Log-probs `part` (f32) into `dst`, converted to the output type; whether all were finite.
fn deliver<O: Element>(part: &[f32], dst: &mut [O]) -> bool {
    match O::as_f32_mut(dst) {
        Some(dst) => dst.copy_from_slice(part),
        None => {
            for (o, &v) in dst.iter_mut().zip(part) {
                *o = O::from_f64(f64::from(v));
            }
        }
    }
    part.iter().all(|v| v.is_finite())
}

/// The error of activations that overflow.
fn overflow() -> CudaError {
    bald_core::Error::InvalidParameter {
        name: "weight",
        reason: "activations overflow for this input",
    }
    .into()
}

/// How a forward pass runs: points per chunk (direct) or per piece (pipelined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadPlan {
    /// Chunks of this many points, one after the other.
    Direct(usize),
    /// Pieces of this many points through the pipeline.
    Pipelined(usize),
}

impl CudaBackend {
    /// How the forward pass of `head` over `n` points with K = `k` runs on this backend now:
    /// pipelined when transfers are staged and a point's features and log-probs fit a pinned
    /// buffer, in pieces that fit the buffers and the memory budget; else direct, in chunks
    /// that fit the budget.
    pub(crate) fn head_plan(
        &self,
        head: &McDropoutHead<'_>,
        n: usize,
        k: usize,
    ) -> Result<HeadPlan, CudaError> {
        let (c, d) = (head.classes(), head.inputs());
        let fixed = Layers::fixed_bytes(head, k)?;
        let width = Layers::width(head);
        let available = self.available()?;
        // Per point: two activation buffers of K rows of the widest output, its features and,
        // pipelined, a second slot of features and two of log-probs.
        let pipelined = self.staged() && d.max(k * c) <= self.staging.floats;
        let slots = if pipelined { 2 * (d + mul(k, c)?) } else { d };
        let per_point = mul(2 * k, width)?.saturating_add(slots).saturating_mul(4);
        let fits = available.saturating_sub(fixed) / per_point.max(1);
        if fits == 0 {
            return Err(CudaError::DeviceMemory {
                what: "the MC-dropout head",
                needed: fixed.saturating_add(per_point),
                available,
            });
        }
        Ok(if pipelined {
            let floats = self.staging.floats;
            HeadPlan::Pipelined(fits.min(floats / d).min(floats / (k * c)).min(n))
        } else {
            HeadPlan::Direct(fits.min(n))
        })
    }

    /// The MC-dropout head's forward pass ([`bald_core::Backend::mc_dropout_forward`]).
    pub(crate) fn forward<O: Element>(
        &self,
        head: &McDropoutHead<'_>,
        features: &[f32],
        n: usize,
        k: usize,
        seed: u64,
        out: &mut [O],
    ) -> Result<(), CudaError> {
        check_forward_args(head, features, n, k, out.len())?;
        let d = head.inputs();
        match self.head_plan(head, n, k)? {
            HeadPlan::Pipelined(piece) => {
                let mut layers = Layers::new(self, head, k, seed, piece)?;
                self.forward_pipelined(&mut layers, features, n, d, piece, out)
            }
            HeadPlan::Direct(chunk) => {
                let mut layers = Layers::new(self, head, k, seed, chunk)?;
                self.forward_direct(&mut layers, features, n, d, chunk, out)
            }
        }
    }

    /// Chunk after chunk on the backend's stream: features up, kernels, log-probs down.
    fn forward_direct<O: Element>(
        &self,
        layers: &mut Layers<'_>,
        features: &[f32],
        n: usize,
        d: usize,
        chunk: usize,
        out: &mut [O],
    ) -> Result<(), CudaError> {
        let (k, c) = (layers.k, layers.c);
        let mut x = self.uninit::<f32>(mul(chunk, d)?, "features")?;
        // A staging buffer only for outputs that are not f32.
        let direct = O::as_f32_mut(&mut []).is_some();
        let mut staging = vec![0.0f32; if direct { 0 } else { mul(chunk * k, c)? }];
        for start in (0..n).step_by(chunk) {
            let points = chunk.min(n - start);
            // Stream order: the copy starts after the previous chunk's kernels.
            self.device
                .stream
                .memcpy_htod(
                    &features[start * d..(start + points) * d],
                    &mut x.slice_mut(..points * d),
                )
                .map_err(driver("uploading features"))?;
            let last = layers.run(self, &x, d, points)?;
            // f32 output: straight into the caller's slice; else through a staging buffer.
            let dst = &mut out[start * k * c..(start + points) * k * c];
            let finite = match O::as_f32_mut(dst) {
                Some(dst) => {
                    self.download(last, dst, "log-probs")?;
                    dst.iter().all(|v| v.is_finite())
                }
                None => {
                    let host = &mut staging[..points * k * c];
                    self.download(last, host, "log-probs")?;
                    deliver(host, dst)
                }
            };
            if !finite {
                return Err(overflow());
            }
        }
        Ok(())
    }

    /// Pieces of `piece` points through two slots, the copies on their own streams and the
    /// host's copies beside the device's work (the module's docs).
    fn forward_pipelined<O: Element>(
        &self,
        layers: &mut Layers<'_>,
        features: &[f32],
        n: usize,
        d: usize,
        piece: usize,
        out: &mut [O],
    ) -> Result<(), CudaError> {
        let (k, c) = (layers.k, layers.c);
        let per_out = k * c;
        let [up, down] = self.copy_streams()?;
        let main: &Arc<_> = &self.device.stream;
        let (mut up_bufs, mut down_bufs) = self.pinned_buffers()?;
        let slots = |floats: usize, what: &str| -> Result<[CudaSlice<f32>; 2], CudaError> {
            let len = mul(piece, floats)?;
            Ok([self.uninit(len, what)?, self.uninit(len, what)?])
        };
        let mut x = slots(d, "features")?;
        let mut y = slots(per_out, "log-probs")?;
        let order = || driver("ordering the streams");
        // The copy streams use the slots only after their allocation on the backend's stream.
        up.join(main).map_err(order())?;
        down.join(main).map_err(order())?;
        let event = || self.device.ctx.new_event(None).map_err(order());
        // The kernels of each slot's last piece: its features and log-probs free after them.
        let computed: [CudaEvent; 2] = [event()?, event()?];
        let pieces = n.div_ceil(piece);
        let range = |i: usize| i * piece..((i + 1) * piece).min(n);
        for i in 0..=pieces {
            if i < pieces {
                let s = i % 2;
                let points = range(i);
                let len = points.len();
                // Up: fill the slot's buffer (its last copy done), then copy it once the
                // kernels of the slot's last piece have read its features.
                let host = up_bufs[s].values(self)?;
                host[..len * d].copy_from_slice(&features[points.start * d..points.end * d]);
                up.wait(&computed[s]).map_err(order())?;
                up_bufs[s].send(&up, &mut x[s].slice_mut(..len * d), "features")?;
                // The kernels, after the features are up; their log-probs go to the slot's
                // output once its last download is done.
                main.wait(&up_bufs[s].done).map_err(order())?;
                let last = layers.run(self, &x[s], d, len)?;
                main.wait(&down_bufs[s].done).map_err(order())?;
                main.memcpy_dtod(
                    &last.slice(..len * per_out),
                    &mut y[s].slice_mut(..len * per_out),
                )
                .map_err(driver("copying log-probs"))?;
                computed[s].record(main).map_err(order())?;
                // Down: after the kernels.
                down.wait(&computed[s]).map_err(order())?;
                down_bufs[s].fetch(&down, &y[s].slice(..len * per_out), "log-probs")?;
            }
            if i > 0 {
                // The host: the previous piece's log-probs into the caller's memory.
                let points = range(i - 1);
                let part = &down_bufs[(i - 1) % 2].values(self)?[..points.len() * per_out];
                if !deliver(part, &mut out[points.start * per_out..points.end * per_out]) {
                    return Err(overflow());
                }
            }
        }
        self.device.sync()
    }
}
