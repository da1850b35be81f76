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

#define DENSE_TM 64
#define DENSE_TN 64
#define DENSE_TK 16

// y[r, o] = sum_j (x_r[j] mask[s, j]) w[o, j] + bias[o] (ReLU when relu != 0) for the n * k
// rows r = point * k + s, with x_r = x + point * x_n_stride + s * x_k_stride (the first layer
// reads the features with x_k_stride = 0). 64 x 64 output tiles, 256 threads of 4 x 4 each.
extern "C" __global__ void __launch_bounds__(256)
dense_f32(const float* x, u64 x_n_stride, u64 x_k_stride, const float* mask, const float* w,
          const float* bias, u32 n, u32 k, u32 in, u32 out, u32 relu, float* y) {
    __shared__ float xs[DENSE_TK][DENSE_TM + 4];
    __shared__ float ws[DENSE_TK][DENSE_TN + 4];
    const u64 rows = (u64)n * k;
    const u64 r0 = (u64)blockIdx.x * DENSE_TM;
    const u32 o0 = blockIdx.y * DENSE_TN;
    const u32 tx = threadIdx.x % 16;
    const u32 ty = threadIdx.x / 16;
    float acc[4][4];
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc[p][q] = 0.0f;

    for (u32 i0 = 0; i0 < in; i0 += DENSE_TK) {
        for (u32 e = threadIdx.x; e < DENSE_TM * DENSE_TK; e += 256) {
            const u32 rr = e / DENSE_TK;
            const u32 ii = e % DENSE_TK;
            const u64 r = r0 + rr;
            const u32 i = i0 + ii;
            float v = 0.0f;
            if (r < rows && i < in) {
                const u64 point = r / k;
                const u64 s = r % k;
                v = x[point * x_n_stride + s * x_k_stride + i] * mask[s * in + i];
            }
            xs[ii][rr] = v;
        }
        for (u32 e = threadIdx.x; e < DENSE_TN * DENSE_TK; e += 256) {
            const u32 oo = e / DENSE_TK;
            const u32 ii = e % DENSE_TK;
            const u32 o = o0 + oo;
            const u32 i = i0 + ii;
            ws[ii][oo] = (o < out && i < in) ? w[(u64)o * in + i] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int ii = 0; ii < DENSE_TK; ii++) {
            float a[4], b[4];
#pragma unroll
            for (int p = 0; p < 4; p++) a[p] = xs[ii][ty + 16 * p];
#pragma unroll
            for (int q = 0; q < 4; q++) b[q] = ws[ii][tx + 16 * q];
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[p][q] = fmaf(a[p], b[q], acc[p][q]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int p = 0; p < 4; p++) {
        const u64 r = r0 + ty + 16 * p;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const u32 o = o0 + tx + 16 * q;
            if (r < rows && o < out) {
                float v = acc[p][q] + bias[o];
                if (relu != 0) v = fmaxf(v, 0.0f);
                y[r * out + o] = v;
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
