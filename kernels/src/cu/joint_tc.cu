// The joint-entropy step on tensor cores (sm_80 and later): the same H_n as joint.cu's
// joint_entropy_*, with x[m, (n, c)] = sum_k a[m, k] p_n(c | w_k) computed as a GEMM of the
// joint's rows by the candidates' probabilities, and -x (ln x + s_m) as its epilogue.
//
// 3xTF32: each f32 operand is split into a TF32 high part and a TF32 low part (the rounding
// error of the high one), and a b = a_hi b_hi + a_hi b_lo + a_lo b_hi on the tensor cores,
// dropping a_lo b_lo (relative 2^-22): products to about f32 accuracy at TF32's rate. The sum
// over K is blocked as in joint.cu (spans of about sqrt(K) samples, then the spans), so its
// error stays within budget at any K.
//
// A block of TC_WARPS warps owns TC_COLS columns (n, c): floor(TC_COLS / C) candidates, C <= 64
// (the host uses joint.cu beyond). It walks the rows in passes of TC_ROWS; in each, the K
// samples in tiles of TC_KT: the tile of a (TC_ROWS x TC_KT) and of the probabilities
// (TC_KT x TC_COLS) are staged in shared memory, and warp w multiplies them into the
// accumulators of its 16 columns and the pass's 4 row tiles. The pass's x goes through shared
// memory to the epilogue, where thread t sums column t % TC_COLS over every other row in f64;
// the candidates' sums are combined in a fixed order (the result does not depend on timing).

#define TC_WARPS 4
#define TC_THREADS (TC_WARPS * 32)
#define TC_COLS 64
#define TC_ROWS 64
#define TC_KT 32
#define TC_A_LD (TC_KT + 4)    // row stride of the a tile (a multiple of 4 floats)
#define TC_B_LD (TC_COLS + 4)  // row stride of the probabilities' and x's tiles

#ifdef __CUDACC_RTC__
// NVRTC has no <mma.h>: the WMMA builtins that it wraps, for the m16n16k8 TF32 shape (row-major
// a and b: layout 0).
namespace tc {
struct frag_a { float x[4]; };
struct frag_b { float x[4]; };
struct frag_c { float x[8]; };
__device__ __forceinline__ void load_a(frag_a& f, const float* p, unsigned ldm) {
    __mma_tf32_m16n16k8_ld_a((int*)&f, (const int*)p, ldm, 0);
}
__device__ __forceinline__ void load_b(frag_b& f, const float* p, unsigned ldm) {
    __mma_tf32_m16n16k8_ld_b((int*)&f, (const int*)p, ldm, 0);
}
__device__ __forceinline__ void mma(frag_c& d, const frag_a& a, const frag_b& b) {
    __mma_tf32_m16n16k8_mma_f32((float*)&d, (const int*)&a, (const int*)&b, (const float*)&d, 0, 0);
}
__device__ __forceinline__ void store(float* p, const frag_c& f, unsigned ldm) {
    __mma_m16n16k8_st_c_f32(p, (const float*)&f, ldm, 0);
}
__device__ __forceinline__ float to_tf32(float x) {
    u32 u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
    return __uint_as_float(u);
}
}  // namespace tc
#else
// Elsewhere (the CPU emulation): the same operations through nvcuda::wmma.
#include <mma.h>
namespace tc {
using namespace nvcuda;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> frag_b;
typedef wmma::fragment<wmma::accumulator, 16, 16, 8, float> frag_c;
__device__ __forceinline__ void load_a(frag_a& f, const float* p, unsigned ldm) {
    wmma::load_matrix_sync(f, p, ldm);
}
__device__ __forceinline__ void load_b(frag_b& f, const float* p, unsigned ldm) {
    wmma::load_matrix_sync(f, p, ldm);
}
__device__ __forceinline__ void mma(frag_c& d, const frag_a& a, const frag_b& b) {
    wmma::mma_sync(d, a, b, d);
}
__device__ __forceinline__ void store(float* p, const frag_c& f, unsigned ldm) {
    wmma::store_matrix_sync(p, f, ldm, wmma::mem_row_major);
}
__device__ __forceinline__ float to_tf32(float x) { return wmma::__float_to_tf32(x); }
}  // namespace tc
#endif

// Splits the 4 values of an operand fragment into TF32 high and low parts.
template <class F>
__device__ __forceinline__ void split(const F& f, F& hi, F& lo) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        hi.x[i] = tc::to_tf32(f.x[i]);
        lo.x[i] = tc::to_tf32(f.x[i] - hi.x[i]);
    }
}

template <class D>
__device__ __forceinline__ void joint_tc_body(const typename D::T* lp, const u32* idx, u32 n,
                                              u32 k, u32 c, const float* at,
                                              const float* log_scale, u32 m, double weight,
                                              double* out) {
    __shared__ __align__(32) float as[TC_ROWS * TC_A_LD];
    __shared__ __align__(32) float bs[TC_KT * TC_B_LD];
    __shared__ __align__(32) float xs[TC_ROWS * TC_B_LD];
    __shared__ double red[TC_THREADS];
    const u32 t = threadIdx.x;
    const u32 warp = t / 32;
    const u32 nb = TC_COLS / c;  // candidates of this block
    const u32 cols = nb * c;
    const u64 n0 = (u64)blockIdx.x * nb;
    const u32 span_tiles = max(1u, (u32)ceilf(sqrtf((float)k) / TC_KT));
    const u32 col = t % TC_COLS;
    double acc = 0.0;

    for (u32 m_base = 0; m_base < m; m_base += TC_ROWS) {
        tc::frag_c total[4], span[4];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int i = 0; i < 8; i++) total[r].x[i] = span[r].x[i] = 0.0f;
        for (u32 k0 = 0, tile = 0; k0 < k; k0 += TC_KT, tile++) {
            if (tile == span_tiles) {
#pragma unroll
                for (int r = 0; r < 4; r++)
#pragma unroll
                    for (int i = 0; i < 8; i++) {
                        total[r].x[i] += span[r].x[i];
                        span[r].x[i] = 0.0f;
                    }
                tile = 0;
            }
            __syncthreads();
            // a[m, k] = at[k * m + row]: consecutive threads read consecutive rows.
            for (u32 e = t; e < TC_ROWS * TC_KT; e += TC_THREADS) {
                const u32 r = e % TC_ROWS, kk = e / TC_ROWS;
                const u32 row = m_base + r, s = k0 + kk;
                as[r * TC_A_LD + kk] = (row < m && s < k) ? at[(u64)s * m + row] : 0.0f;
            }
            for (u32 e = t; e < TC_KT * TC_COLS; e += TC_THREADS) {
                const u32 kk = e / TC_COLS, j = e % TC_COLS;
                const u64 cand = n0 + j / c;
                const u32 s = k0 + kk;
                float p = 0.0f;
                if (j < cols && cand < n && s < k) {
                    const u64 point = idx != 0 ? (u64)idx[cand] : cand;
                    p = expf(D::get(lp, (point * k + s) * c + j % c));
                }
                bs[kk * TC_B_LD + j] = p;
            }
            __syncthreads();
#pragma unroll
            for (int ks = 0; ks < TC_KT / 8; ks++) {
                tc::frag_b b, b_hi, b_lo;
                tc::load_b(b, bs + ks * 8 * TC_B_LD + warp * 16, TC_B_LD);
                split(b, b_hi, b_lo);
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    tc::frag_a a, a_hi, a_lo;
                    tc::load_a(a, as + r * 16 * TC_A_LD + ks * 8, TC_A_LD);
                    split(a, a_hi, a_lo);
                    // The small terms first.
                    tc::mma(span[r], a_lo, b_hi);
                    tc::mma(span[r], a_hi, b_lo);
                    tc::mma(span[r], a_hi, b_hi);
                }
            }
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 4; r++) {
#pragma unroll
            for (int i = 0; i < 8; i++) total[r].x[i] += span[r].x[i];
            tc::store(xs + r * 16 * TC_B_LD + warp * 16, total[r], TC_B_LD);
        }
        __syncthreads();
        if (col < cols && n0 + col / c < n) {
            for (u32 r = t / TC_COLS; r < TC_ROWS && m_base + r < m; r += TC_THREADS / TC_COLS) {
                const float v = xs[r * TC_B_LD + col];
                const double s = log_scale != 0 ? (double)log_scale[m_base + r] : 0.0;
                if (v > 0.0f) acc -= (double)v * ((double)logf(v) + s);
            }
        }
    }
    red[t] = acc;
    __syncthreads();
    if (t < nb && n0 + t < n) {
        double h = 0.0;
        for (u32 j = t * c; j < (t + 1) * c; j++)
            for (u32 half = 0; half < TC_THREADS; half += TC_COLS) h += red[half + j];
        out[n0 + t] = weight * h;
    }
}

// Launch: grid ceil(n / floor(TC_COLS / C)) blocks of TC_THREADS threads, C <= TC_COLS, over
// n candidates as joint_entropy_* (the points idx[0..n) of lp, or its first n points when idx
// is null; log_scale null in the exact regime); sm_80 or later.
extern "C" __global__ void __launch_bounds__(TC_THREADS)
joint_entropy_tc_f32(const float* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                     const float* log_scale, u32 m, double weight, double* out) {
    joint_tc_body<F32>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS)
joint_entropy_tc_f16(const u16* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                     const float* log_scale, u32 m, double weight, double* out) {
    joint_tc_body<F16>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS)
joint_entropy_tc_bf16(const u16* lp, const u32* idx, u32 n, u32 k, u32 c, const float* at,
                      const float* log_scale, u32 m, double weight, double* out) {
    joint_tc_body<BF16>(lp, idx, n, k, c, at, log_scale, m, weight, out);
}
