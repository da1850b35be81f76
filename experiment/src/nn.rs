//! The layers' batch operations on row-major f32 buffers, images channels-last
//! (batch x height x width x channels): matrix products through `gemm`, im2col, zero-padding and
//! kernel flipping (for input gradients as full convolutions), 2x2 max-pooling, ReLU, log-softmax cross-entropy, and Adam.

/// A row-major matrix, or the transpose of one, over a slice.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major `rows x cols` matrix.
    ///
    /// # Panics
    /// If `data` does not hold `rows * cols` values.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows} x {cols} matrix");
        Mat {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// (column stride, row stride) of the logical matrix in `data`.
    fn strides(&self) -> (isize, isize) {
        // Slices never exceed isize::MAX bytes, so neither dimension does.
        let (rows, cols) = (self.rows as isize, self.cols as isize);
        if self.transposed {
            (rows, 1)
        } else {
            (1, cols)
        }
    }
}

/// c = a b, or c += a b with `accumulate`; c is row-major `a.rows x b.cols`; on all cores with
/// `parallel`, else on the calling thread.
///
/// # Panics
/// If the shapes do not match.
pub fn matmul(c: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool, parallel: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert_eq!(c.len(), a.rows * b.cols, "output size");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let ((a_cs, a_rs), (b_cs, b_rs)) = (a.strides(), b.strides());
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: FFI-like boundary: every index (i, p) < (m, k) of a, (p, j) < (k, n) of b and
    // (i, j) of c lies inside its slice by the asserts and `Mat::new`'s; c is not aliased.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The backward pass of a dense layer y = x W^T + b (W in torch's out x in layout) from the
/// gradient of y (rows of `out`): the weight and bias gradients into `g_w` and `g_b`
/// (overwritten), the input gradient into `g_x` (resized to x's size).
pub fn dense_backward(
    g_y: &[f32],
    x: &[f32],
    w: Mat<'_>,
    (g_w, g_b): (&mut [f32], &mut [f32]),
    g_x: &mut Vec<f32>,
) {
    let (outputs, inputs) = (w.rows, w.cols);
    let rows = x.len() / inputs.max(1);
    let g_y = Mat::new(g_y, rows, outputs);
    matmul(g_w, g_y.t(), Mat::new(x, rows, inputs), false, true);
    g_b.fill(0.0);
    bias_grad(g_b, g_y.data);
    g_x.resize(rows * inputs, 0.0);
    matmul(g_x, g_y, w, false, true);
}

/// The machine's cores.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// The size of an image batch, channels-last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Images {
    /// Images in the batch.
    pub batch: usize,
    /// Height and width.
    pub side: usize,
    /// Channels.
    pub channels: usize,
}

impl Images {
    /// Values in the batch.
    pub fn len(&self) -> usize {
        self.batch * self.side * self.side * self.channels
    }

    /// The same images, `batch` of them.
    pub fn with_batch(self, batch: usize) -> Self {
        Images { batch, ..self }
    }

    /// Whether the batch holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The im2col matrix of a valid `k x k` convolution, stride 1: one row per output pixel
/// (batch, y, x), holding the k x k x channels input patch in (dy, dx, channel) order.
pub fn im2col(x: &[f32], shape: Images, k: usize, cols: &mut Vec<f32>) {
    assert_eq!(x.len(), shape.len());
    let Images {
        batch,
        side,
        channels,
    } = shape;
    let out = side + 1 - k;
    let run = k * channels;
    cols.clear();
    cols.reserve(batch * out * out * k * run);
    for image in x.chunks_exact(side * side * channels) {
        for y in 0..out {
            for x0 in 0..out {
                for dy in 0..k {
                    let at = ((y + dy) * side + x0) * channels;
                    cols.extend_from_slice(&image[at..at + run]);
                }
            }
        }
    }
}

/// `x` zero-padded by `by` pixels on every side, into `out`.
pub fn pad(x: &[f32], shape: Images, by: usize, out: &mut Vec<f32>) {
    assert_eq!(x.len(), shape.len());
    let (side, c) = (shape.side, shape.channels);
    let wide = side + 2 * by;
    out.clear();
    out.resize(shape.batch * wide * wide * c, 0.0);
    for (image, padded) in x
        .chunks_exact(side * side * c)
        .zip(out.chunks_exact_mut(wide * wide * c))
    {
        for (y, row) in image.chunks_exact(side * c).enumerate() {
            let at = ((y + by) * wide + by) * c;
            padded[at..at + side * c].copy_from_slice(row);
        }
    }
}

/// The weights of a `k x k` convolution (a (dy, dx, in) x out matrix, as [`im2col`]'s
/// products use) turned into those of its adjoint: the kernel flipped in space, inputs and
/// outputs swapped, a (dy, dx, out) x in matrix. The full convolution of an output gradient,
/// zero-padded by k - 1, with them is the input gradient.
pub fn flip_kernel(w: &[f32], k: usize, inputs: usize, outputs: usize, flipped: &mut Vec<f32>) {
    assert_eq!(w.len(), k * k * inputs * outputs);
    flipped.clear();
    flipped.resize(w.len(), 0.0);
    for dy in 0..k {
        for dx in 0..k {
            for i in 0..inputs {
                for o in 0..outputs {
                    let from = ((dy * k + dx) * inputs + i) * outputs + o;
                    let to = (((k - 1 - dy) * k + (k - 1 - dx)) * outputs + o) * inputs + i;
                    flipped[to] = w[from];
                }
            }
        }
    }
}

/// y = relu(x + bias) in place on rows of `bias.len()`.
pub fn bias_relu(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

/// y += bias on rows of `bias.len()`.
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// The gradient through a ReLU whose output was `y`: zero where y = 0.
pub fn relu_backward(grad: &mut [f32], y: &[f32]) {
    for (g, &v) in grad.iter_mut().zip(y) {
        if v <= 0.0 {
            *g = 0.0;
        }
    }
}

/// db += the column sums of `grad` (rows of `db.len()`).
pub fn bias_grad(db: &mut [f32], grad: &[f32]) {
    for row in grad.chunks_exact(db.len()) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// 2x2 max-pooling, stride 2 (a last odd row or column is dropped, as torch does), into `y`
/// (batch x side/2 x side/2 x channels), with the index into `x` of each output's maximum
/// (the first one on ties).
pub fn max_pool(x: &[f32], shape: Images, y: &mut [f32], argmax: &mut [usize]) {
    assert_eq!(x.len(), shape.len());
    let Images {
        batch,
        side,
        channels: c,
    } = shape;
    let half = side / 2;
    assert_eq!(y.len(), batch * half * half * c);
    assert_eq!(argmax.len(), y.len());
    let mut out = y.iter_mut().zip(argmax.iter_mut());
    for b in 0..batch {
        for py in 0..half {
            for px in 0..half {
                for ch in 0..c {
                    let at = |dy: usize, dx: usize| {
                        ((b * side + 2 * py + dy) * side + 2 * px + dx) * c + ch
                    };
                    let mut best = at(0, 0);
                    for i in [at(0, 1), at(1, 0), at(1, 1)] {
                        if x[i] > x[best] {
                            best = i;
                        }
                    }
                    let (v, arg) = out.next().expect("sized above");
                    *v = x[best];
                    *arg = best;
                }
            }
        }
    }
}

/// The adjoint of [`max_pool`]: each output's gradient to its maximum, zero elsewhere.
pub fn max_pool_backward(grad: &[f32], argmax: &[usize], dx: &mut [f32]) {
    dx.fill(0.0);
    for (&g, &i) in grad.iter().zip(argmax) {
        dx[i] += g;
    }
}

/// The mean cross-entropy of rows of logits against `labels`; `logits` becomes its gradient
/// (softmax - one-hot) / rows.
pub fn softmax_cross_entropy(logits: &mut [f32], labels: &[usize]) -> f64 {
    let classes = logits.len() / labels.len().max(1);
    assert_eq!(logits.len(), labels.len() * classes);
    let scale = 1.0 / labels.len() as f32;
    let mut loss = 0.0;
    for (row, &label) in logits.chunks_exact_mut(classes).zip(labels) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        loss += f64::from(lse - row[label]);
        for (j, v) in row.iter_mut().enumerate() {
            let p = (*v - lse).exp();
            *v = (p - if j == label { 1.0 } else { 0.0 }) * scale;
        }
    }
    loss / labels.len() as f64
}

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient, over any number of tensors.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// L2 weight decay of the tensors marked decayed.
    pub weight_decay: f32,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    step: i32,
}

impl Adam {
    /// Adam for tensors of the given lengths.
    pub fn new(lr: f32, weight_decay: f32, lengths: &[usize]) -> Self {
        Adam {
            lr,
            weight_decay,
            moments: lengths
                .iter()
                .map(|&n| (vec![0.0; n], vec![0.0; n]))
                .collect(),
            step: 0,
        }
    }

    /// One step: each (parameters, gradient, decayed) in the order of `new`'s lengths.
    pub fn step(&mut self, tensors: &mut [(&mut [f32], &[f32], bool)]) {
        assert_eq!(tensors.len(), self.moments.len());
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.step = self.step.saturating_add(1);
        let c1 = 1.0 - b1.powi(self.step);
        let c2 = 1.0 - b2.powi(self.step);
        for ((p, g, decayed), (m, v)) in tensors.iter_mut().zip(&mut self.moments) {
            assert_eq!(p.len(), g.len());
            assert_eq!(p.len(), m.len());
            let decay = if *decayed { self.weight_decay } else { 0.0 };
            for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m.iter_mut()).zip(v) {
                let g = g + decay * *p;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= self.lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The products of every transpose combination against the plain triple loop.
    #[test]
    fn matmul_matches_the_definition() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 * 0.5).collect();
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut want = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        let pairs = [
            (Mat::new(&a, m, k), Mat::new(&b, k, n)),
            (Mat::new(&at, k, m).t(), Mat::new(&b, k, n)),
            (Mat::new(&a, m, k), Mat::new(&bt, n, k).t()),
            (Mat::new(&at, k, m).t(), Mat::new(&bt, n, k).t()),
        ];
        for (a, b) in pairs {
            let mut c = vec![1.0f32; m * n];
            matmul(&mut c, a, b, false, true);
            assert_eq!(c, want);
            matmul(&mut c, a, b, true, false);
            let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
            assert_eq!(c, twice);
        }
    }

    /// im2col's rows are the patches, in (dy, dx, channel) order; padding places the image
    /// in the middle; flipping maps weight (dy, dx, in, out) to (k-1-dy, k-1-dx, out, in).
    #[test]
    fn im2col_pad_and_flip_place_values() {
        let shape = Images {
            batch: 2,
            side: 6,
            channels: 3,
        };
        let x: Vec<f32> = (0..shape.len()).map(|i| i as f32).collect();
        let mut cols = Vec::new();
        im2col(&x, shape, 3, &mut cols);
        assert_eq!(cols.len(), 2 * 4 * 4 * 27);
        // The patch of output pixel (1, 2) of image 1 starts at input (1, 2), channel 0.
        let row = &cols[(16 + 4 + 2) * 27..][..27];
        assert_eq!(row[0], x[((36 + 6) + 2) * 3]);
        assert_eq!(row[26], x[((36 + 3 * 6) + 4) * 3 + 2]);
        let mut padded = Vec::new();
        pad(&x, shape, 2, &mut padded);
        assert_eq!(padded.len(), 2 * 10 * 10 * 3);
        assert_eq!(padded[((100 + 2 * 10) + 2) * 3 + 1], x[36 * 3 + 1]);
        assert_eq!(padded.iter().sum::<f32>(), x.iter().sum::<f32>());
        let w: Vec<f32> = (0..3 * 3 * 2 * 5).map(|i| i as f32).collect();
        let mut f = Vec::new();
        flip_kernel(&w, 3, 2, 5, &mut f);
        for (dy, dx, i, o) in [(0, 1, 1, 4), (2, 0, 0, 3), (1, 1, 1, 0)] {
            let from = ((dy * 3 + dx) * 2 + i) * 5 + o;
            let to = (((2 - dy) * 3 + (2 - dx)) * 5 + o) * 2 + i;
            assert_eq!(f[to], w[from]);
        }
    }

    /// Max-pooling picks each window's maximum and routes gradients back to it.
    #[test]
    fn max_pool_and_its_gradient() {
        let shape = Images {
            batch: 1,
            side: 5,
            channels: 2,
        };
        let x: Vec<f32> = (0..50).map(|i| ((i * 17) % 23) as f32).collect();
        let (mut y, mut arg) = (vec![0.0; 8], vec![0; 8]);
        max_pool(&x, shape, &mut y, &mut arg);
        for (i, &v) in y.iter().enumerate() {
            let (py, px, c) = (i / 4, i / 2 % 2, i % 2);
            let window = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .map(|(dy, dx)| x[((2 * py + dy) * 5 + 2 * px + dx) * 2 + c]);
            assert_eq!(v, window.iter().fold(f32::MIN, |a, &b| a.max(b)));
            assert_eq!(x[arg[i]], v);
        }
        let mut dx = vec![1.0; 50];
        max_pool_backward(&[1.0; 8], &arg, &mut dx);
        assert_eq!(dx.iter().sum::<f32>(), 8.0);
    }
}
