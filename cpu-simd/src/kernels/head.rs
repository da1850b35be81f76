//! The MC-dropout head's dense layers (`head.cu`).

use crate::simd::Simd;

/// out[r, o] = act(sum_j x[r, j] wt[j, o] + b[o]) for a block of rows of `x` (row stride
/// `x_stride`), `wt` being `inputs x outputs_padded` (a multiple of the lane count, zero columns
/// beyond the real outputs); `out` has row stride `outputs_padded`. Loops run over panels of
/// two output vectors outermost, so a panel of `wt` stays in cache across the row block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn dense<S: Simd>(
    s: S,
    x: &[f32],
    rows: usize,
    x_stride: usize,
    inputs: usize,
    wt: &[f32],
    bias: &[f32],
    outputs_padded: usize,
    relu: bool,
    out: &mut [f32],
) {
    let lanes = S::LANES;
    debug_assert_eq!(outputs_padded % lanes, 0);
    let mut o = 0;
    while o < outputs_padded {
        let width = if o + 2 * lanes <= outputs_padded {
            2
        } else {
            1
        };
        let panel = Panel {
            wt,
            bias,
            stride: outputs_padded,
            o,
            relu,
        };
        let mut r = 0;
        while r + 4 <= rows {
            match width {
                2 => dense_tile::<S, 4, 2>(s, x, r, x_stride, inputs, &panel, out),
                _ => dense_tile::<S, 4, 1>(s, x, r, x_stride, inputs, &panel, out),
            }
            r += 4;
        }
        while r < rows {
            match width {
                2 => dense_tile::<S, 1, 2>(s, x, r, x_stride, inputs, &panel, out),
                _ => dense_tile::<S, 1, 1>(s, x, r, x_stride, inputs, &panel, out),
            }
            r += 1;
        }
        o += width * lanes;
    }
}

/// Columns o..o + W lanes of the transposed weights, with bias and activation.
struct Panel<'a> {
    wt: &'a [f32],
    bias: &'a [f32],
    stride: usize,
    o: usize,
    relu: bool,
}

/// An R x W-vector tile of the output: R rows broadcast against W weight vectors.
#[inline(always)]
fn dense_tile<S: Simd, const R: usize, const W: usize>(
    s: S,
    x: &[f32],
    r0: usize,
    x_stride: usize,
    inputs: usize,
    panel: &Panel<'_>,
    out: &mut [f32],
) {
    let lanes = S::LANES;
    let zero = s.splat(0.0);
    let mut acc = [[zero; W]; R];
    for j in 0..inputs {
        let mut w = [zero; W];
        for (v, wv) in w.iter_mut().enumerate() {
            *wv = s.load(&panel.wt[j * panel.stride + panel.o + v * lanes..]);
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xv = s.splat(x[(r0 + r) * x_stride + j]);
            for (a, &wv) in acc_r.iter_mut().zip(&w) {
                *a = s.fma(xv, wv, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let row = &mut out[(r0 + r) * panel.stride..];
        for (v, &a) in acc_r.iter().enumerate() {
            let at = panel.o + v * lanes;
            let mut y = s.add(a, s.load(&panel.bias[at..]));
            if panel.relu {
                y = s.max(y, zero);
            }
            s.store(y, &mut row[at..]);
        }
    }
}
