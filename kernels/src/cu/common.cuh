// Shared by every bald module (prepended to each .cu by bald-kernels): integer types, element
// loads for f32/f16/bf16 storage, Philox4x32-10 as in bald-core, and -x ln x.

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;

// Element storage: a pool is f32, or the bits of f16 / bf16 in u16.
struct F32 {
    typedef float T;
    static __device__ __forceinline__ float get(const float* p, u64 i) { return p[i]; }
};
struct F16 {
    typedef u16 T;
    static __device__ __forceinline__ float get(const u16* p, u64 i) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
        return f;
    }
};
struct BF16 {
    typedef u16 T;
    static __device__ __forceinline__ float get(const u16* p, u64 i) {
        return __uint_as_float(((u32)p[i]) << 16);
    }
};

// Philox4x32-10 (Salmon et al. 2011), bit for bit bald_core::rng::philox4x32_10.
__device__ __forceinline__ uint4 philox4x32_10(uint4 x, u32 key0, u32 key1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key0 += 0x9E3779B9u;
            key1 += 0xBB67AE85u;
        }
        const u32 hi0 = __umulhi(0xD2511F53u, x.x), lo0 = 0xD2511F53u * x.x;
        const u32 hi1 = __umulhi(0xCD9E8D57u, x.z), lo1 = 0xCD9E8D57u * x.z;
        x = make_uint4(hi1 ^ x.y ^ key0, lo1, hi0 ^ x.w ^ key1, lo0);
    }
    return x;
}

// Counter domains (bald_core::rng::Domain).
#define DOMAIN_DROPOUT 1u
#define DOMAIN_JOINT_SAMPLE 4u

// bald_core::rng::unit_f64: a uniform double in [0, 1) with 53 bits.
__device__ __forceinline__ double unit_f64(u32 w0, u32 w1) {
    const u64 bits = (((u64)w0) << 21) ^ (((u64)w1) >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// -inf as a double (NVRTC has no INFINITY without headers).
__device__ __forceinline__ double neg_inf() { return __longlong_as_double(0xfff0000000000000ll); }

// -x ln x with 0 ln 0 = 0.
__device__ __forceinline__ double neg_x_ln_x(double x) { return x > 0.0 ? -x * log(x) : 0.0; }
