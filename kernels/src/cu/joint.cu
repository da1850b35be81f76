// BatchBALD on the device: the joint-entropy step for every candidate, the candidates' scores,
// their argmax, and the two updates of the joint (exact expansion, sampled redraw).
//
// The joint of the chosen points is kept transposed, at[k * M + m] = a[m, k] (see
// bald_core::joint), so that a warp reads 32 consecutive rows m of one sample k.

#define JOINT_THREADS 256
#define JOINT_NB 4   // candidates per block
#define JOINT_KT 32  // samples per shared-memory tile

// H_n = weight * sum_m sum_c -x_mc (ln x_mc + s_m), x_mc = sum_k a[m, k] p_n(c | w_k), for the
// JOINT_NB candidates of this block. Each thread owns rows m (stride JOINT_THREADS) and a block
// of CB classes in registers; the candidates' probabilities are staged in shared memory in tiles
// of JOINT_KT samples. M x N x C is never stored. The sum over K is blocked (spans of about
// sqrt(K) samples, then the spans), so its f32 error stays within budget at any K.
template <class D, int CB>
__device__ __forceinline__ void joint_body(const typename D::T* lp, const u32* idx, u32 n, u32 k, u32 c,
                                           const float* at, const float* log_scale, u32 m,
                                           double weight, double* out) {
    __shared__ float ps[JOINT_NB][JOINT_KT][CB];
    __shared__ double red[JOINT_THREADS];
    const u64 n0 = (u64)blockIdx.x * JOINT_NB;
    // Tiles per span: about sqrt(K) samples a span.
    const u32 span_tiles = max(1u, (u32)ceilf(sqrtf((float)k) / JOINT_KT));
    double acc[JOINT_NB];
#pragma unroll
    for (int j = 0; j < JOINT_NB; j++) acc[j] = 0.0;

    for (u32 m_base = 0; m_base < m; m_base += JOINT_THREADS) {
        const u32 row = m_base + threadIdx.x;
        const bool row_ok = row < m;
        const double s = (log_scale != 0 && row_ok) ? (double)log_scale[row] : 0.0;
        for (u32 c0 = 0; c0 < c; c0 += CB) {
            // x sums the samples of one span, xs the spans: each f32 sum has about sqrt(K)
            // terms instead of K, so the rounding error no longer grows with K.
            float x[JOINT_NB][CB], xs[JOINT_NB][CB];
#pragma unroll
            for (int j = 0; j < JOINT_NB; j++)
#pragma unroll
                for (int cc = 0; cc < CB; cc++) x[j][cc] = xs[j][cc] = 0.0f;
            for (u32 k0 = 0, tile = 0; k0 < k; k0 += JOINT_KT, tile++) {
                if (tile == span_tiles) {
#pragma unroll
                    for (int j = 0; j < JOINT_NB; j++)
#pragma unroll
                        for (int cc = 0; cc < CB; cc++) {
                            xs[j][cc] += x[j][cc];
                            x[j][cc] = 0.0f;
                        }
                    tile = 0;
                }
                __syncthreads();
                for (u32 e = threadIdx.x; e < JOINT_NB * JOINT_KT * CB; e += JOINT_THREADS) {
                    const u32 j = e / (JOINT_KT * CB);
                    const u32 r = (e / CB) % JOINT_KT;
                    const u32 cc = e % CB;
                    const u64 cand = n0 + j;
                    const u32 kk = k0 + r;
                    const u32 cls = c0 + cc;
                    float p = 0.0f;
                    if (cand < n && kk < k && cls < c) {
                        const u64 point = idx != 0 ? (u64)idx[cand] : cand;
                        p = expf(D::get(lp, (point * k + kk) * c + cls));
                    }
                    ps[j][r][cc] = p;
                }
                __syncthreads();
                if (row_ok) {
                    const u32 kend = min((u32)JOINT_KT, k - k0);
                    for (u32 r = 0; r < kend; r++) {
                        const float a = at[(u64)(k0 + r) * m + row];
#pragma unroll
                        for (int j = 0; j < JOINT_NB; j++)
#pragma unroll
                            for (int cc = 0; cc < CB; cc++) x[j][cc] = fmaf(a, ps[j][r][cc], x[j][cc]);
                    }
                }
            }
            if (row_ok) {
#pragma unroll
                for (int j = 0; j < JOINT_NB; j++)
#pragma unroll
                    for (int cc = 0; cc < CB; cc++) {
                        const float v = xs[j][cc] + x[j][cc];
                        if (c0 + cc < c && v > 0.0f) acc[j] -= (double)v * ((double)logf(v) + s);
                    }
            }
        }
    }
#pragma unroll
    for (int j = 0; j < JOINT_NB; j++) {
        red[threadIdx.x] = acc[j];
        __syncthreads();
        for (u32 half = JOINT_THREADS / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0 && n0 + j < n) out[n0 + j] = weight * red[0];
        __syncthreads();
    }
}

// The class block is the smallest of 4, 8, 12, 16 that holds C (16 with several blocks beyond).
template <class D>
__device__ __forceinline__ void joint_dispatch(const typename D::T* lp, const u32* idx, u32 n,
                                               u32 k, u32 c, const float* at,
                                               const float* log_scale, u32 m, double weight,
                                               double* out) {
    if (c <= 4) {
        joint_body<D, 4>(lp, idx, n, k, c, at, log_scale, m, weight, out);
    } else if (c <= 8) {
        joint_body<D, 8>(lp, idx, n, k, c, at, log_scale, m, weight, out);
    } else if (c <= 12) {
        joint_body<D, 12>(lp, idx, n, k, c, at, log_scale, m, weight, out);
    } else {
        joint_body<D, 16>(lp, idx, n, k, c, at, log_scale, m, weight, out);
    }
}

// Launch: grid ceil(n / JOINT_NB) blocks of JOINT_THREADS threads, over n candidates: the
// points idx[0..n) of lp (lazy greedy's blocks, gathered here), or its first n points when idx
// is null. log_scale is null in the exact regime.
extern "C" __global__ void __launch_bounds__(JOINT_THREADS)
joint_entropy_f32(const float* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                  const float* log_scale, u32 m, double weight, double* out) {
    joint_dispatch<F32>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}

extern "C" __global__ void __launch_bounds__(JOINT_THREADS)
joint_entropy_f16(const u16* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                  const float* log_scale, u32 m, double weight, double* out) {
    joint_dispatch<F16>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}

extern "C" __global__ void __launch_bounds__(JOINT_THREADS)
joint_entropy_bf16(const u16* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                   const float* log_scale, u32 m, double weight, double* out) {
    joint_dispatch<BF16>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}

// In place over h (N joint entropies): the greedy score h_n - (cond_n + sum_i cond_chosen_i),
// -inf for the t chosen points (bald_core's Backend::select_candidate, same f64 operations).
extern "C" __global__ void candidate_scores_f64(double* h, const double* cond, const u32* chosen,
                                                u32 t, u32 n) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double shared = 0.0;
    bool taken = false;
    for (u32 j = 0; j < t; j++) {
        shared += cond[chosen[j]];
        taken = taken || chosen[j] == i;
    }
    h[i] = taken ? neg_inf() : h[i] - (cond[i] + shared);
}

__device__ __forceinline__ bool better(double v, u32 i, double best, u32 best_i) {
    return v > best || (v == best && i < best_i);
}

// Per-block (max, index) of vals[0..n), ties to the lower index; idx maps positions to indices
// (null: the position itself). Launch with 256 threads; run again over the block results with
// one block for the overall argmax.
extern "C" __global__ void __launch_bounds__(256)
argmax_f64(const double* vals, const u32* idx, u32 n, double* out_val, u32* out_idx) {
    __shared__ double sv[256];
    __shared__ u32 si[256];
    double best = neg_inf();
    u32 best_i = 0xFFFFFFFFu;
    for (u64 i = (u64)blockIdx.x * 256 + threadIdx.x; i < n; i += (u64)gridDim.x * 256) {
        const double v = vals[i];
        const u32 id = idx != 0 ? idx[i] : (u32)i;
        if (better(v, id, best, best_i)) {
            best = v;
            best_i = id;
        }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = best_i;
    __syncthreads();
    for (u32 half = 128; half > 0; half /= 2) {
        if (threadIdx.x < half && better(sv[threadIdx.x + half], si[threadIdx.x + half],
                                         sv[threadIdx.x], si[threadIdx.x])) {
            sv[threadIdx.x] = sv[threadIdx.x + half];
            si[threadIdx.x] = si[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out_val[blockIdx.x] = sv[0];
        out_idx[blockIdx.x] = si[0];
    }
}

// Exact regime: row m * C + c of the new joint is row m of the old one times p_new(c | w_k)
// (bald_core's DynamicJoint::expand_exact). The f64 joint is the master copy; at gets its f32
// rounding. One thread per (k, new row).
extern "C" __global__ void joint_expand_f64(const double* a_old, u32 rows, u32 k,
                                            const double* point_lp, u32 c, double* a_new,
                                            float* at) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    const u64 new_rows = (u64)rows * c;
    if (i >= new_rows * k) return;
    const u64 s = i / new_rows;
    const u64 r = i % new_rows;
    const double v = a_old[s * rows + r / c] * exp(point_lp[s * c + r % c]);
    a_new[i] = v;
    at[i] = (float)v;
}

// Sampled regime (bald_core's DynamicJoint::sample): row m draws one class of each chosen point
// i in [first, t) from component m / per with Philox counter (m, i, 0, JointSample) and adds
// its log-likelihoods to log_lik[m, k] (rows x K, kept from step to step; first = 0 starts it
// afresh). The host then merges repeated rows into the joint (bald_core::joint::
// merge_repeated_rows), as DynamicJoint does. One thread per row.
extern "C" __global__ void joint_sample_f64(const double* chosen_lp, u32 first, u32 t, u32 k,
                                            u32 c, u32 per, u32 key0, u32 key1,
                                            double* log_lik, u32 rows) {
    const u32 m = blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= rows) return;
    const u32 comp = m / per;
    double* ll = log_lik + (u64)m * k;
    if (first == 0) {
        for (u32 s = 0; s < k; s++) ll[s] = 0.0;
    }
    for (u32 i = first; i < t; i++) {
        const uint4 w = philox4x32_10(make_uint4(m, i, 0, DOMAIN_JOINT_SAMPLE), key0, key1);
        const double* row = chosen_lp + ((u64)i * k + comp) * c;
        double total = 0.0;
        for (u32 j = 0; j < c; j++) total += exp(row[j]);
        const double target = unit_f64(w.x, w.y) * total;
        double cum = 0.0;
        u32 pick = 0, last_positive = 0;
        bool found = false;
        for (u32 j = 0; j < c && !found; j++) {
            const double p = exp(row[j]);
            if (p > 0.0) {
                cum += p;
                last_positive = j;
                if (cum > target) {
                    pick = j;
                    found = true;
                }
            }
        }
        const u32 cls = found ? pick : last_positive;
        for (u32 s = 0; s < k; s++) ll[s] += chosen_lp[((u64)i * k + s) * c + cls];
    }
}
