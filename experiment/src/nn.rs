//! The layers' batch operations on row-major f32 buffers, images channels-last
//! (batch x height x width x channels): matrix products through `gemm`, im2col and its adjoint,
//! 2x2 max-pooling, ReLU, log-softmax cross-entropy, and Adam.

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

/// c = a b, or c += a b with `accumulate`; c is row-major `a.rows x b.cols`, on all cores.
///
/// # Panics
/// If the shapes do not match.
pub fn matmul(c: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert_eq!(c.len(), a.rows * b.cols, "output size");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let ((a_cs, a_rs), (b_cs, b_rs)) = (a.strides(), b.strides());
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
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
            gemm::Parallelism::Rayon(threads),
        )
    }
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

/// The adjoint of [`im2col`]: `dx` = the sum of each patch gradient into its input pixels.
pub fn col2im(dcols: &[f32], shape: Images, k: usize, dx: &mut [f32]) {
    assert_eq!(dx.len(), shape.len());
    let Images { side, channels, .. } = shape;
    let out = side + 1 - k;
    let run = k * channels;
    assert_eq!(dcols.len(), shape.batch * out * out * k * run);
    dx.fill(0.0);
    let mut rows = dcols.chunks_exact(k * run);
    for image in dx.chunks_exact_mut(side * side * channels) {
        for y in 0..out {
            for x0 in 0..out {
                let row = rows.next().expect("one row per output pixel");
                for (dy, patch) in row.chunks_exact(run).enumerate() {
                    let at = ((y + dy) * side + x0) * channels;
                    for (d, &g) in image[at..at + run].iter_mut().zip(patch) {
                        *d += g;
                    }
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

/// 2x2 max-pooling, stride 2 (a last odd row or column is dropped, as torch does), with the
/// index into `x` of each output's maximum (the first one on ties).
pub fn max_pool(x: &[f32], shape: Images, y: &mut Vec<f32>, argmax: &mut Vec<u32>) {
    assert_eq!(x.len(), shape.len());
    assert!(u32::try_from(x.len()).is_ok(), "batch too large to index");
    let Images {
        batch,
        side,
        channels: c,
    } = shape;
    let half = side / 2;
    y.clear();
    argmax.clear();
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
                    y.push(x[best]);
                    // Checked above: every index fits.
                    argmax.push(best as u32);
                }
            }
        }
    }
}

/// The adjoint of [`max_pool`]: each output's gradient to its maximum, zero elsewhere.
pub fn max_pool_backward(grad: &[f32], argmax: &[u32], dx: &mut [f32]) {
    dx.fill(0.0);
    for (&g, &i) in grad.iter().zip(argmax) {
        dx[i as usize] += g;
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
            matmul(&mut c, a, b, false);
            assert_eq!(c, want);
            matmul(&mut c, a, b, true);
            let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
            assert_eq!(c, twice);
        }
    }

    /// <im2col(x), g> = <x, col2im(g)> for arbitrary x and g: the two are adjoint.
    #[test]
    fn col2im_is_im2col_adjoint() {
        let shape = Images {
            batch: 2,
            side: 6,
            channels: 3,
        };
        let x: Vec<f32> = (0..shape.len()).map(|i| ((i * 7) % 13) as f32).collect();
        let mut cols = Vec::new();
        im2col(&x, shape, 3, &mut cols);
        assert_eq!(cols.len(), 2 * 4 * 4 * 27);
        let g: Vec<f32> = (0..cols.len()).map(|i| ((i * 5) % 11) as f32).collect();
        let mut dx = vec![0.0; x.len()];
        col2im(&g, shape, 3, &mut dx);
        let lhs: f64 = cols.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| f64::from(a * b)).sum();
        assert_eq!(lhs, rhs);
        // The patch of output pixel (1, 2) of image 1 starts at input (1, 2), channel 0.
        let row = &cols[(16 + 4 + 2) * 27..][..27];
        assert_eq!(row[0], x[((36 + 6) + 2) * 3]);
        assert_eq!(row[26], x[((36 + 3 * 6) + 4) * 3 + 2]);
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
        let (mut y, mut arg) = (Vec::new(), Vec::new());
        max_pool(&x, shape, &mut y, &mut arg);
        assert_eq!(y.len(), 2 * 2 * 2);
        for (i, &v) in y.iter().enumerate() {
            let (py, px, c) = (i / 4, i / 2 % 2, i % 2);
            let window = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .map(|(dy, dx)| x[((2 * py + dy) * 5 + 2 * px + dx) * 2 + c]);
            assert_eq!(v, window.iter().fold(f32::MIN, |a, &b| a.max(b)));
            assert_eq!(x[arg[i] as usize], v);
        }
        let mut dx = vec![1.0; 50];
        max_pool_backward(&[1.0; 8], &arg, &mut dx);
        assert_eq!(dx.iter().sum::<f32>(), 8.0);
    }
}
