// Per-point scores over an N x K x C pool of log-probs, one pass over the data, in two layouts
// chosen by C (one kernel entry; the host picks the geometry with the same SCORES_WIDE_C):
//
// - Narrow (C <= SCORES_WIDE_C): a point has T = R * C threads (R: scores_rows below);
//   thread q of a point owns class q % C and the samples q / C, q / C + R, ...; a block holds
//   P = blockDim.x / T points (the host picks P = max(1, 256 / T)). Per-thread sums go through
//   shared memory; the point's first thread combines them. Dynamic shared memory:
//   blockDim.x * (3 * 8 + 4) bytes.
// - Wide (C > SCORES_WIDE_C, any C): one block of SCORES_WIDE_THREADS threads per point, thread
//   t owns classes t, t + blockDim.x, ...; per-thread partial results are combined by block
//   reductions. The mode count of SCORE_VAR_RATIOS_MODE needs `counts`, N x C zeroed u32s
//   (null for every other score).
//
// Two instantiations per storage type (the host's switch, CudaBackend::with_grouped_scores):
// - `scores_<dtype>` (G = 1, R = 1): one load in flight per thread, every value
//   added to the f64 sums on its own.
// - `scores_grouped_<dtype>` (G = 32 / sizeof(element): 8 f32s or 16 halves, R = max(1,
//   32 / C)): each thread issues G loads before it uses any, so that enough bytes are
//   in flight to keep up with the memory; the R * C threads of a point read R consecutive
//   rows, R * C contiguous values an instruction; each group of G terms is summed pairwise in
//   f32 and the group's sum added in f64, so the f32 -> f64 conversions and f64 adds are per
//   group. All terms of a sum have one sign (p >= 0, p * l <= 0), so the pairwise f32 sum of G
//   terms is within log2(G) * 2^-24 (at most 2.4e-7) of their exact sum, relatively; an entropy
//   built from such sums moves by at most that times (1 + ln C), a quarter of
//   budget::SCORES's (1 + ln C) * 1e-6.
//
// Accumulation across groups is in f64.

#define SCORES_WIDE_C 256u
#define SCORES_WIDE_THREADS 256

#define SCORE_ENTROPIES 0u        // out = entropy, out2 = conditional entropy
#define SCORE_ENTROPY 1u
#define SCORE_CONDITIONAL 2u
#define SCORE_BALD 3u
#define SCORE_VAR_RATIOS 4u       // 1 - max mean prob (also least confidence)
#define SCORE_VAR_RATIOS_MODE 5u  // 1 - f_mode / K
#define SCORE_MEAN_STD 6u         // population std
#define SCORE_MEAN_STD_UNBIASED 7u
#define SCORE_MARGIN 8u

// The score from the per-point sums, as bald_core::scores computes it.
__device__ __forceinline__ double score_of(u32 kind, double h, double eh, double top1,
                                           double top2, double stds, u32 f_mode, u32 k, u32 c) {
    switch (kind) {
        case SCORE_ENTROPIES:
        case SCORE_ENTROPY: return h;
        case SCORE_CONDITIONAL: return eh;
        case SCORE_BALD: return fmax(h - eh, 0.0);
        case SCORE_VAR_RATIOS: return 1.0 - top1;
        case SCORE_VAR_RATIOS_MODE: return 1.0 - (double)f_mode / k;
        case SCORE_MEAN_STD:
        case SCORE_MEAN_STD_UNBIASED: return stds / c;
        default: return 1.0 - (top1 - top2);  // SCORE_MARGIN
    }
}

// -FLT_MAX: p * max(l, -FLT_MAX) is 0 for l = -inf (p = 0), where p * l would be NaN.
__device__ __forceinline__ float lowest_f() { return __int_as_float(0xff7fffff); }

// The terms one value adds to a class's two sums: p and p l (p = exp l), for the first pass.
struct Moments {
    __device__ __forceinline__ void operator()(float l, float& a, float& b) const {
        const float p = expf(l);  // 0 for l = -inf: 0 log 0 = 0
        a = p;
        b = p * fmaxf(l, lowest_f());
    }
};

// The term one value adds to a class's sum of squared deviations from `mean`.
struct SquaredDeviation {
    float mean;
    __device__ __forceinline__ void operator()(float l, float& a, float& b) const {
        const float d = expf(l) - mean;
        a = d * d;
        b = 0.0f;
    }
};

// Adds f's two terms of the `count` values lp[base + s * stride + offset], s = 0, 1, ..., to a
// and b: G loads issued before any is used, each group's terms summed pairwise in f32, the
// sums added in f64.
template <class D, u32 G, class F>
__device__ __forceinline__ void fold_values(const typename D::T* lp, u64 base, u32 offset,
                                            u32 stride, u32 count, F f, double& a, double& b) {
    for (u32 j = 0; j < count; j += G) {
        float l[G];
#pragma unroll
        for (u32 u = 0; u < G; u++) {
            const u64 i = base + (u64)(j + u) * stride + offset;
            l[u] = j + u < count ? D::get(lp, i) : 0.0f;
        }
        float x[G], y[G];
#pragma unroll
        for (u32 u = 0; u < G; u++) {
            f(l[u], x[u], y[u]);
            if (j + u >= count) x[u] = y[u] = 0.0f;
        }
#pragma unroll
        for (u32 w = 1; w < G; w *= 2) {
#pragma unroll
            for (u32 u = 0; u + w < G; u += 2 * w) {
                x[u] += x[u + w];
                y[u] += y[u + w];
            }
        }
        a += x[0];
        b += y[0];
    }
}

// Sums p and p l (p = exp l) over the same values as fold_values: one value at a time into the
// f64 sums for G = 1 (the kernels of the first H200 run), G at a time for the grouped kernels.
// (ptxas gives the G = 1 kernels 48 registers with this indexing, as before the grouped ones.)
template <class D, u32 G>
__device__ __forceinline__ void class_moments(const typename D::T* lp, u64 base, u32 offset,
                                              u32 stride, u32 count, double& sum,
                                              double& plogp) {
    if constexpr (G == 1) {
        for (u32 s = 0; s < count; s++) {
            const float l = D::get(lp, base + (u64)s * stride + offset);
            const float p = expf(l);  // 0 for l = -inf: 0 log 0 = 0
            sum += p;
            if (p > 0.0f) plogp += (double)p * (double)l;
        }
    } else {
        fold_values<D, G>(lp, base, offset, stride, count, Moments(), sum, plogp);
    }
}

// The sum of (p - mean)^2 over the same values, as class_moments.
template <class D, u32 G>
__device__ __forceinline__ double class_squares(const typename D::T* lp, u64 base, u32 offset,
                                                u32 stride, u32 count, double mean) {
    double ss = 0.0;
    if constexpr (G == 1) {
        for (u32 s = 0; s < count; s++) {
            const double d = (double)expf(D::get(lp, base + (u64)s * stride + offset)) - mean;
            ss += d * d;
        }
    } else {
        double unused = 0.0;
        fold_values<D, G>(lp, base, offset, stride, count, SquaredDeviation{(float)mean}, ss,
                          unused);
    }
    return ss;
}

// The number of samples s = first, first + step, ... below k.
__device__ __forceinline__ u32 samples_from(u32 first, u32 step, u32 k) {
    return first < k ? (k - first - 1) / step + 1 : 0u;
}

// The rows of a point that the narrow layout reads at once: R = max(1, 32 / C) for the
// grouped kernels, so that a warp reads contiguous values; 1 otherwise (bald_kernels::scores_rows).
template <u32 G>
__device__ __forceinline__ u32 scores_rows(u32 c) {
    return G == 1 ? 1u : max(1u, 32u / c);
}

template <class D, u32 G>
__device__ __forceinline__ void scores_narrow(const typename D::T* lp, u32 n, u32 k, u32 c,
                                            u32 kind, double* out, double* out2) {
    extern __shared__ double smem[];
    const u32 rows = scores_rows<G>(c);
    const u32 per_point = rows * c;
    const u32 ppb = blockDim.x / per_point;
    double* s_sum = smem;
    double* s_ss = smem + blockDim.x;
    double* s_plogp = smem + 2 * blockDim.x;
    u32* s_count = (u32*)(smem + 3 * blockDim.x);

    const u32 t = threadIdx.x;
    const u32 local = t / per_point;
    const u32 q = t % per_point;
    const u32 row = q / c;
    const u32 cls = q % c;
    const u64 point = (u64)blockIdx.x * ppb + local;
    const bool active = local < ppb && point < n;
    const u64 base = point * k * c;
    const u32 o = local * per_point;  // the point's first thread
    const u32 count = active ? samples_from(row, rows, k) : 0u;

    const u32 stride = rows * c;
    const bool std_kind = kind == SCORE_MEAN_STD || kind == SCORE_MEAN_STD_UNBIASED;

    double sum = 0.0, plogp = 0.0, ss = 0.0;
    class_moments<D, G>(lp, base, q, stride, count, sum, plogp);
    // One row (G = 1): the thread holds its class's mean already.
    if (G == 1 && std_kind) ss = class_squares<D, G>(lp, base, q, stride, count, sum / k);
    s_sum[t] = sum;
    s_plogp[t] = plogp;
    s_ss[t] = ss;
    s_count[t] = 0u;
    __syncthreads();
    if constexpr (G > 1) {
        if (std_kind) {  // uniform over the block
            double total = 0.0;
            for (u32 r = 0; active && r < rows; r++) total += s_sum[o + r * c + cls];
            s_ss[t] = class_squares<D, G>(lp, base, q, stride, count, total / k);
            __syncthreads();
        }
    }

    if (kind == SCORE_VAR_RATIOS_MODE) {
        // The point's first thread counts the argmax of every sample (ties to the lower
        // class) into its point's C counters.
        if (active && q == 0) {
            for (u32 s = 0; s < k; s++) {
                const u64 r = base + (u64)s * c;
                u32 best = 0;
                float best_l = D::get(lp, r);
                for (u32 j = 1; j < c; j++) {
                    const float l = D::get(lp, r + j);
                    if (l > best_l) {
                        best_l = l;
                        best = j;
                    }
                }
                s_count[o + best] += 1u;
            }
        }
        __syncthreads();
    }

    if (active && q == 0) {
        const double denom = kind == SCORE_MEAN_STD_UNBIASED ? (double)(k - 1) : (double)k;
        double h = 0.0, eh = 0.0, top1 = 0.0, top2 = 0.0, stds = 0.0;
        u32 f_mode = 0;
        for (u32 j = 0; j < c; j++) {
            double total = 0.0, class_plogp = 0.0, class_ss = 0.0;
            for (u32 r = 0; r < rows; r++) {
                total += s_sum[o + r * c + j];
                class_plogp += s_plogp[o + r * c + j];
                class_ss += s_ss[o + r * c + j];
            }
            const double m = total / k;
            h += neg_x_ln_x(m);
            eh -= class_plogp;
            if (m > top1) {
                top2 = top1;
                top1 = m;
            } else if (m > top2) {
                top2 = m;
            }
            stds += sqrt(class_ss / denom);
            f_mode = max(f_mode, s_count[o + j]);
        }
        eh /= k;
        if (kind == SCORE_ENTROPIES) out2[point] = eh;
        out[point] = score_of(kind, h, eh, top1, top2, stds, f_mode, k, c);
    }
}

__device__ __forceinline__ float neg_inf_f() { return __int_as_float(0xff800000); }

// Block-wide sum of v (every thread gets the result); red holds SCORES_WIDE_THREADS doubles.
__device__ __forceinline__ double block_sum(double v, double* red) {
    __syncthreads();
    red[threadIdx.x] = v;
    __syncthreads();
    for (u32 half = SCORES_WIDE_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
        __syncthreads();
    }
    return red[0];
}

template <class D, u32 G>
__device__ __forceinline__ void scores_wide(const typename D::T* lp, u32 n, u32 k, u32 c,
                                            u32 kind, double* out, double* out2, u32* counts) {
    __shared__ double red[SCORES_WIDE_THREADS];
    __shared__ double red2[SCORES_WIDE_THREADS];
    __shared__ u32 red_i[SCORES_WIDE_THREADS];
    const u64 point = blockIdx.x;
    if (point >= n) return;  // uniform over the block
    const u64 base = point * k * c;
    const u32 t = threadIdx.x;
    const bool std_kind = kind == SCORE_MEAN_STD || kind == SCORE_MEAN_STD_UNBIASED;
    const double denom = kind == SCORE_MEAN_STD_UNBIASED ? (double)(k - 1) : (double)k;
    double h = 0.0, eh = 0.0, top1 = 0.0, top2 = 0.0, stds = 0.0;
    for (u32 cls = t; cls < c; cls += blockDim.x) {
        double sum = 0.0, plogp = 0.0;
        class_moments<D, G>(lp, base, cls, c, k, sum, plogp);
        const double m = sum / k;
        h += neg_x_ln_x(m);
        eh -= plogp;
        if (m > top1) {
            top2 = top1;
            top1 = m;
        } else if (m > top2) {
            top2 = m;
        }
        if (std_kind) {
            stds += sqrt(class_squares<D, G>(lp, base, cls, c, k, m) / denom);
        }
    }
    h = block_sum(h, red);
    eh = block_sum(eh, red) / k;
    stds = block_sum(stds, red);
    // The two largest means: merge the per-thread (top1, top2) pairs.
    __syncthreads();
    red[t] = top1;
    red2[t] = top2;
    __syncthreads();
    for (u32 half = SCORES_WIDE_THREADS / 2; half > 0; half /= 2) {
        if (t < half) {
            const double a1 = red[t], a2 = red2[t], b1 = red[t + half], b2 = red2[t + half];
            red[t] = fmax(a1, b1);
            red2[t] = fmax(fmin(a1, b1), fmax(a2, b2));
        }
        __syncthreads();
    }
    top1 = red[0];
    top2 = red2[0];
    u32 f_mode = 0;
    if (kind == SCORE_VAR_RATIOS_MODE) {
        // Per sample: the argmax class (ties to the lower class) by a block reduction, counted
        // into this point's C counters; then the largest count.
        u32* cnt = counts + point * c;
        for (u32 s = 0; s < k; s++) {
            const u64 row = base + (u64)s * c;
            float best_l = neg_inf_f();
            u32 best = 0xFFFFFFFFu;
            for (u32 cls = t; cls < c; cls += blockDim.x) {
                const float l = D::get(lp, row + cls);
                if (best == 0xFFFFFFFFu || l > best_l) {
                    best_l = l;
                    best = cls;
                }
            }
            __syncthreads();
            red[t] = best == 0xFFFFFFFFu ? neg_inf_f() : (double)best_l;
            red_i[t] = best;
            __syncthreads();
            for (u32 half = SCORES_WIDE_THREADS / 2; half > 0; half /= 2) {
                if (t < half) {
                    const double v = red[t + half];
                    const u32 i = red_i[t + half];
                    if (i != 0xFFFFFFFFu &&
                        (red_i[t] == 0xFFFFFFFFu || v > red[t] || (v == red[t] && i < red_i[t]))) {
                        red[t] = v;
                        red_i[t] = i;
                    }
                }
                __syncthreads();
            }
            if (t == 0) cnt[red_i[0]] += 1u;
        }
        __syncthreads();
        u32 mine = 0;
        for (u32 cls = t; cls < c; cls += blockDim.x) mine = max(mine, cnt[cls]);
        __syncthreads();
        red_i[t] = mine;
        __syncthreads();
        for (u32 half = SCORES_WIDE_THREADS / 2; half > 0; half /= 2) {
            if (t < half) red_i[t] = max(red_i[t], red_i[t + half]);
            __syncthreads();
        }
        f_mode = red_i[0];
    }
    if (t == 0) {
        if (kind == SCORE_ENTROPIES) out2[point] = eh;
        out[point] = score_of(kind, h, eh, top1, top2, stds, f_mode, k, c);
    }
}

template <class D, u32 G>
__device__ __forceinline__ void scores_body(const typename D::T* lp, u32 n, u32 k, u32 c,
                                            u32 kind, double* out, double* out2, u32* counts) {
    if (c > SCORES_WIDE_C) {
        scores_wide<D, G>(lp, n, k, c, kind, out, out2, counts);
    } else {
        scores_narrow<D, G>(lp, n, k, c, kind, out, out2);
    }
}

extern "C" __global__ void scores_f32(const float* lp, u32 n, u32 k, u32 c, u32 kind,
                                     double* out, double* out2, u32* counts) {
    scores_body<F32, 1>(lp, n, k, c, kind, out, out2, counts);
}

extern "C" __global__ void scores_f16(const u16* lp, u32 n, u32 k, u32 c, u32 kind,
                                     double* out, double* out2, u32* counts) {
    scores_body<F16, 1>(lp, n, k, c, kind, out, out2, counts);
}

extern "C" __global__ void scores_bf16(const u16* lp, u32 n, u32 k, u32 c, u32 kind,
                                      double* out, double* out2, u32* counts) {
    scores_body<BF16, 1>(lp, n, k, c, kind, out, out2, counts);
}

extern "C" __global__ void scores_grouped_f32(const float* lp, u32 n, u32 k, u32 c, u32 kind,
                                             double* out, double* out2, u32* counts) {
    scores_body<F32, 8>(lp, n, k, c, kind, out, out2, counts);
}

extern "C" __global__ void scores_grouped_f16(const u16* lp, u32 n, u32 k, u32 c, u32 kind,
                                             double* out, double* out2, u32* counts) {
    scores_body<F16, 16>(lp, n, k, c, kind, out, out2, counts);
}

extern "C" __global__ void scores_grouped_bf16(const u16* lp, u32 n, u32 k, u32 c, u32 kind,
                                              double* out, double* out2, u32* counts) {
    scores_body<BF16, 16>(lp, n, k, c, kind, out, out2, counts);
}

// Validation of a pool that is on the device already (a CUDA tensor handed over in place), the
// checks of bald_core::LogProbs::new: one thread per row (n, k), in a grid-stride loop over
// `rows` = N * K rows of C values. A row is suspect when a value is NaN or +inf, or when
// |log sum_c exp(lp)| (in f64, as the host computes it) is not within `tol`, which the caller
// sets a hair inside the host's tolerance: the host's exact check, run from the first suspect
// row on, then decides, and reports the first offending (n, k, c). The lowest suspect row goes
// to *first_bad by atomicMin (the caller sets it to ~0 first). f64 values are also rounded to
// f32 into out32 (the storage the other kernels read); NULL for the other types.
struct F64 {
    typedef double T;
    static __device__ __forceinline__ double get(const double* p, u64 i) { return p[i]; }
};

template <class D>
__device__ __forceinline__ void validate_body(const typename D::T* lp, u64 rows, u32 c, double tol,
                                              u64* first_bad, float* out32) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    for (u64 row = (u64)blockIdx.x * blockDim.x + threadIdx.x; row < rows; row += stride) {
        const u64 base = row * c;
        bool bad = false;
        double mx = neg_inf();
        for (u32 j = 0; j < c; j++) {
            const double v = (double)D::get(lp, base + j);
            if (out32) out32[base + j] = (float)v;
            bad = bad || v != v || v == -neg_inf();  // NaN or +inf
            mx = fmax(mx, v);
        }
        if (!bad) {
            // A row of all -inf (log sum = -inf) is refused, as on the host.
            double s = 0.0;
            for (u32 j = 0; j < c && mx != neg_inf(); j++) s += exp((double)D::get(lp, base + j) - mx);
            const double log_sum = mx == neg_inf() ? neg_inf() : mx + log(s);
            bad = !(fabs(log_sum) <= tol);
        }
        if (bad) atomicMin(first_bad, row);
    }
}

extern "C" __global__ void validate_f32(const float* lp, u64 rows, u32 c, double tol, u64* first_bad,
                                        float* out32) {
    validate_body<F32>(lp, rows, c, tol, first_bad, out32);
}

extern "C" __global__ void validate_f16(const u16* lp, u64 rows, u32 c, double tol, u64* first_bad,
                                        float* out32) {
    validate_body<F16>(lp, rows, c, tol, first_bad, out32);
}

extern "C" __global__ void validate_bf16(const u16* lp, u64 rows, u32 c, double tol, u64* first_bad,
                                         float* out32) {
    validate_body<BF16>(lp, rows, c, tol, first_bad, out32);
}

extern "C" __global__ void validate_f64(const double* lp, u64 rows, u32 c, double tol, u64* first_bad,
                                        float* out32) {
    validate_body<F64>(lp, rows, c, tol, first_bad, out32);
}
