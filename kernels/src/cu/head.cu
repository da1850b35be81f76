// The MC-dropout head forward pass for the whole pool and all K samples (bald_core::forward):
// per layer, the dropout mask of every (sample, input unit), then a tiled dense layer over the
// N * K rows with the mask applied to its input as it is loaded, ReLU between layers, and
// log_softmax at the end.

// mask[s * units + j] = scale if unit j of layer `layer` is kept in sample s, else 0: the top 24
// bits of word j % 4 of Philox(seed; (j / 4, s, layer, Dropout)) >= threshold
// (bald_core::dropout_keep, integer-only so bit for bit the CPU's).
extern "C" __global__ void dropout_mask_f32(u32 key0, u32 key1, u32 layer, u32 k, u32 units,
                                            u32 threshold, float scale, float* mask) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (u64)k * units) return;
    const u32 s = (u32)(i / units);
    const u32 j = (u32)(i % units);
    const uint4 w = philox4x32_10(make_uint4(j / 4, s, layer, DOMAIN_DROPOUT), key0, key1);
    const u32 word = (j % 4 == 0) ? w.x : (j % 4 == 1) ? w.y : (j % 4 == 2) ? w.z : w.w;
    mask[i] = (word >> 8) >= threshold ? scale : 0.0f;
}

#define DENSE_TM 128
#define DENSE_TN 128
#define DENSE_TK 8
#define DENSE_PAD 4

// y[r, o] = sum_j (x_r[j] mask[s, j]) w[o, j] + bias[o] (ReLU when relu != 0) for the n * k
// rows r = point * k + s, with x_r = x + point * x_n_stride + s * x_k_stride (the first layer
// reads the features with x_k_stride = 0). 128 x 128 output tiles, 256 threads of 8 x 8 each
// (rows ty * 4 + {0..3} and 64 + ty * 4 + {0..3}, columns likewise with tx), reading their
// operands from shared memory as float4s; the next K-slice of the inputs is loaded into
// registers while the current one is multiplied.
extern "C" __global__ void __launch_bounds__(256, 2)
dense_f32(const float* x, u64 x_n_stride, u64 x_k_stride, const float* mask, const float* w,
          const float* bias, u32 n, u32 k, u32 in, u32 out, u32 relu, float* y) {
    __shared__ __align__(16) float xs[DENSE_TK][DENSE_TM + DENSE_PAD];
    __shared__ __align__(16) float ws[DENSE_TK][DENSE_TN + DENSE_PAD];
    const u64 rows = (u64)n * k;
    const u64 r0 = (u64)blockIdx.x * DENSE_TM;
    const u32 o0 = blockIdx.y * DENSE_TN;
    const u32 tx = threadIdx.x % 16;
    const u32 ty = threadIdx.x / 16;
    // This thread loads, per K-slice, 4 inputs of row `lr` and 4 weights of output `lr`.
    const u32 lr = threadIdx.x / 2;
    const u32 li = (threadIdx.x % 2) * 4;
    const u64 r = r0 + lr;
    const bool row_ok = r < rows;
    const u64 point = row_ok ? r / k : 0;
    const u64 s = row_ok ? r % k : 0;
    const float* xrow = x + point * x_n_stride + s * x_k_stride;
    const float* mrow = mask + s * in;
    const u32 o = o0 + lr;
    const bool out_ok = o < out;
    const float* wrow = w + (u64)(out_ok ? o : 0) * in;
    float xv[4], wv[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const u32 i = li + j;
        xv[j] = (row_ok && i < in) ? xrow[i] * mrow[i] : 0.0f;
        wv[j] = (out_ok && i < in) ? wrow[i] : 0.0f;
    }
    float acc[8][8];
#pragma unroll
    for (int p = 0; p < 8; p++)
#pragma unroll
        for (int q = 0; q < 8; q++) acc[p][q] = 0.0f;

    for (u32 i0 = 0; i0 < in; i0 += DENSE_TK) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            xs[li + j][lr] = xv[j];
            ws[li + j][lr] = wv[j];
        }
        __syncthreads();
        const u32 next = i0 + DENSE_TK;
        if (next < in) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const u32 i = next + li + j;
                xv[j] = (row_ok && i < in) ? xrow[i] * mrow[i] : 0.0f;
                wv[j] = (out_ok && i < in) ? wrow[i] : 0.0f;
            }
        }
#pragma unroll
        for (int ii = 0; ii < DENSE_TK; ii++) {
            const float4 a0 = *reinterpret_cast<const float4*>(&xs[ii][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&xs[ii][64 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&ws[ii][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&ws[ii][64 + tx * 4]);
            const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int p = 0; p < 8; p++)
#pragma unroll
                for (int q = 0; q < 8; q++) acc[p][q] = fmaf(a[p], b[q], acc[p][q]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int p = 0; p < 8; p++) {
        const u64 rr = r0 + (p < 4 ? ty * 4 + p : 64 + ty * 4 + (p - 4));
#pragma unroll
        for (int q = 0; q < 8; q++) {
            const u32 oo = o0 + (q < 4 ? tx * 4 + q : 64 + tx * 4 + (q - 4));
            if (rr < rows && oo < out) {
                float v = acc[p][q] + bias[oo];
                if (relu != 0) v = fmaxf(v, 0.0f);
                y[rr * out + oo] = v;
            }
        }
    }
}

// In place over `rows` rows of C logits: z - logsumexp(z), the sum in f64. A non-finite logit
// makes its row NaN, which the host reports.
extern "C" __global__ void log_softmax_f32(float* y, u64 rows, u32 c) {
    const u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    float* row = y + r * c;
    float mx = row[0];
    for (u32 j = 1; j < c; j++) mx = fmaxf(mx, row[j]);
    double sum = 0.0;
    for (u32 j = 0; j < c; j++) sum += exp((double)row[j] - (double)mx);
    const double lse = (double)mx + log(sum);
    for (u32 j = 0; j < c; j++) row[j] = (float)((double)row[j] - lse);
}
