// Per-point scores over an N x K x C pool of log-probs, one pass over the data.
//
// Block layout: blockDim.x = P * C threads for P points (the host picks P = max(1, 256 / C)),
// thread t owns class t % C of point blockIdx.x * P + t / C and loops over the K samples.
// Per-class sums go through shared memory; the class-0 thread of each point combines them.
// Accumulation is in f64. Dynamic shared memory: blockDim.x * (3 * 8 + 4) bytes.

#define SCORE_ENTROPIES 0u        // out = entropy, out2 = conditional entropy
#define SCORE_ENTROPY 1u
#define SCORE_CONDITIONAL 2u
#define SCORE_BALD 3u
#define SCORE_VAR_RATIOS 4u       // 1 - max mean prob (also least confidence)
#define SCORE_VAR_RATIOS_MODE 5u  // 1 - f_mode / K
#define SCORE_MEAN_STD 6u         // population std
#define SCORE_MEAN_STD_UNBIASED 7u
#define SCORE_MARGIN 8u

template <class D>
__device__ __forceinline__ void scores_body(const typename D::T* lp, u32 n, u32 k, u32 c,
                                            u32 kind, double* out, double* out2) {
    extern __shared__ double smem[];
    const u32 ppb = blockDim.x / c;
    double* s_mean = smem;
    double* s_std = smem + blockDim.x;
    double* s_plogp = smem + 2 * blockDim.x;
    u32* s_count = (u32*)(smem + 3 * blockDim.x);

    const u32 t = threadIdx.x;
    const u32 local = t / c;
    const u32 cls = t % c;
    const u64 point = (u64)blockIdx.x * ppb + local;
    const bool active = local < ppb && point < n;
    const u64 base = point * k * c;

    double sum = 0.0, plogp = 0.0, ss = 0.0;
    if (active) {
        for (u32 s = 0; s < k; s++) {
            const float l = D::get(lp, base + (u64)s * c + cls);
            const float p = expf(l);  // 0 for l = -inf: 0 log 0 = 0
            sum += p;
            if (p > 0.0f) plogp += (double)p * (double)l;
        }
        if (kind == SCORE_MEAN_STD || kind == SCORE_MEAN_STD_UNBIASED) {
            const double mean = sum / k;
            for (u32 s = 0; s < k; s++) {
                const double d = (double)expf(D::get(lp, base + (u64)s * c + cls)) - mean;
                ss += d * d;
            }
        }
    }
    const double denom = kind == SCORE_MEAN_STD_UNBIASED ? (double)(k - 1) : (double)k;
    s_mean[t] = sum / k;
    s_plogp[t] = plogp;
    s_std[t] = sqrt(ss / denom);
    s_count[t] = 0u;
    __syncthreads();

    if (kind == SCORE_VAR_RATIOS_MODE) {
        // The class-0 thread of each point counts the argmax of every sample (ties to the
        // lower class) into its point's C counters.
        if (active && cls == 0) {
            for (u32 s = 0; s < k; s++) {
                const u64 row = base + (u64)s * c;
                u32 best = 0;
                float best_l = D::get(lp, row);
                for (u32 j = 1; j < c; j++) {
                    const float l = D::get(lp, row + j);
                    if (l > best_l) {
                        best_l = l;
                        best = j;
                    }
                }
                s_count[local * c + best] += 1u;
            }
        }
        __syncthreads();
    }

    if (active && cls == 0) {
        const u32 o = local * c;
        double h = 0.0, eh = 0.0, top1 = 0.0, top2 = 0.0, stds = 0.0;
        u32 f_mode = 0;
        for (u32 j = 0; j < c; j++) {
            const double m = s_mean[o + j];
            h += neg_x_ln_x(m);
            eh -= s_plogp[o + j];
            if (m > top1) {
                top2 = top1;
                top1 = m;
            } else if (m > top2) {
                top2 = m;
            }
            stds += s_std[o + j];
            f_mode = max(f_mode, s_count[o + j]);
        }
        eh /= k;
        double r;
        switch (kind) {
            case SCORE_ENTROPIES: r = h; out2[point] = eh; break;
            case SCORE_ENTROPY: r = h; break;
            case SCORE_CONDITIONAL: r = eh; break;
            case SCORE_BALD: r = fmax(h - eh, 0.0); break;
            case SCORE_VAR_RATIOS: r = 1.0 - top1; break;
            case SCORE_VAR_RATIOS_MODE: r = 1.0 - (double)f_mode / k; break;
            case SCORE_MEAN_STD:
            case SCORE_MEAN_STD_UNBIASED: r = stds / c; break;
            default: r = 1.0 - (top1 - top2); break;  // SCORE_MARGIN
        }
        out[point] = r;
    }
}

extern "C" __global__ void scores_f32(const float* lp, u32 n, u32 k, u32 c, u32 kind,
                                      double* out, double* out2) {
    scores_body<F32>(lp, n, k, c, kind, out, out2);
}

extern "C" __global__ void scores_f16(const u16* lp, u32 n, u32 k, u32 c, u32 kind, double* out,
                                      double* out2) {
    scores_body<F16>(lp, n, k, c, kind, out, out2);
}

extern "C" __global__ void scores_bf16(const u16* lp, u32 n, u32 k, u32 c, u32 kind,
                                       double* out, double* out2) {
    scores_body<BF16>(lp, n, k, c, kind, out, out2);
}
