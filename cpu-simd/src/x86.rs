//! AVX2+FMA (8 lanes) and AVX-512F (16 lanes) implementations of [`Simd`].

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use crate::simd::Simd;

/// Token: AVX2 and FMA are available (made only after detection).
#[derive(Clone, Copy, Debug)]
pub struct Avx2(pub(crate) ());

/// Token: AVX-512F is available (made only after detection).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(pub(crate) ());

macro_rules! simd_unsafe {
    ($e:expr) => {
        // SAFETY: the token proves the ISA was detected at run time; loads and stores are
        // bounds-checked by the caller's `assert!` before the intrinsic runs.
        unsafe { $e }
    };
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;
    type I = __m256i;
    type M = __m256;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        simd_unsafe!(_mm256_set1_ps(x))
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> __m256 {
        assert!(s.len() >= 8);
        simd_unsafe!(_mm256_loadu_ps(s.as_ptr()))
    }
    #[inline(always)]
    fn store(self, v: __m256, s: &mut [f32]) {
        assert!(s.len() >= 8);
        simd_unsafe!(_mm256_storeu_ps(s.as_mut_ptr(), v))
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_mul_ps(a, b))
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        simd_unsafe!(_mm256_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_max_ps(a, b))
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_min_ps(a, b))
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        simd_unsafe!(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn reduce(self, a: __m256) -> f64 {
        let mut lanes = [0.0f32; 8];
        self.store(a, &mut lanes);
        // Pairwise, in f64.
        let q: [f64; 4] = core::array::from_fn(|i| f64::from(lanes[i]) + f64::from(lanes[i + 4]));
        (q[0] + q[2]) + (q[1] + q[3])
    }
    #[inline(always)]
    fn to_int(self, a: __m256) -> __m256i {
        simd_unsafe!(_mm256_cvttps_epi32(a))
    }
    #[inline(always)]
    fn to_float(self, a: __m256i) -> __m256 {
        simd_unsafe!(_mm256_cvtepi32_ps(a))
    }
    #[inline(always)]
    fn f2i_bits(self, a: __m256) -> __m256i {
        simd_unsafe!(_mm256_castps_si256(a))
    }
    #[inline(always)]
    fn i2f_bits(self, a: __m256i) -> __m256 {
        simd_unsafe!(_mm256_castsi256_ps(a))
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m256i {
        simd_unsafe!(_mm256_set1_epi32(x))
    }
    #[inline(always)]
    fn add_i(self, a: __m256i, b: __m256i) -> __m256i {
        simd_unsafe!(_mm256_add_epi32(a, b))
    }
    #[inline(always)]
    fn sub_i(self, a: __m256i, b: __m256i) -> __m256i {
        simd_unsafe!(_mm256_sub_epi32(a, b))
    }
    #[inline(always)]
    fn and_i(self, a: __m256i, b: __m256i) -> __m256i {
        simd_unsafe!(_mm256_and_si256(a, b))
    }
    #[inline(always)]
    fn or_i(self, a: __m256i, b: __m256i) -> __m256i {
        simd_unsafe!(_mm256_or_si256(a, b))
    }
    #[inline(always)]
    fn shl23(self, a: __m256i) -> __m256i {
        simd_unsafe!(_mm256_slli_epi32::<23>(a))
    }
    #[inline(always)]
    fn shr23(self, a: __m256i) -> __m256i {
        simd_unsafe!(_mm256_srai_epi32::<23>(a))
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        simd_unsafe!(_mm256_blendv_ps(b, a, m))
    }
    #[inline(always)]
    fn select_i(self, m: __m256, a: __m256i, b: __m256i) -> __m256i {
        self.f2i_bits(self.select(m, self.i2f_bits(a), self.i2f_bits(b)))
    }
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;
    type I = __m512i;
    type M = __mmask16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        simd_unsafe!(_mm512_set1_ps(x))
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> __m512 {
        assert!(s.len() >= 16);
        simd_unsafe!(_mm512_loadu_ps(s.as_ptr()))
    }
    #[inline(always)]
    fn store(self, v: __m512, s: &mut [f32]) {
        assert!(s.len() >= 16);
        simd_unsafe!(_mm512_storeu_ps(s.as_mut_ptr(), v))
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_mul_ps(a, b))
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        simd_unsafe!(_mm512_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_max_ps(a, b))
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_min_ps(a, b))
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        simd_unsafe!(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn reduce(self, a: __m512) -> f64 {
        let mut lanes = [0.0f32; 16];
        self.store(a, &mut lanes);
        let q: [f64; 8] = core::array::from_fn(|i| f64::from(lanes[i]) + f64::from(lanes[i + 8]));
        ((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]))
    }
    #[inline(always)]
    fn to_int(self, a: __m512) -> __m512i {
        simd_unsafe!(_mm512_cvttps_epi32(a))
    }
    #[inline(always)]
    fn to_float(self, a: __m512i) -> __m512 {
        simd_unsafe!(_mm512_cvtepi32_ps(a))
    }
    #[inline(always)]
    fn f2i_bits(self, a: __m512) -> __m512i {
        simd_unsafe!(_mm512_castps_si512(a))
    }
    #[inline(always)]
    fn i2f_bits(self, a: __m512i) -> __m512 {
        simd_unsafe!(_mm512_castsi512_ps(a))
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m512i {
        simd_unsafe!(_mm512_set1_epi32(x))
    }
    #[inline(always)]
    fn add_i(self, a: __m512i, b: __m512i) -> __m512i {
        simd_unsafe!(_mm512_add_epi32(a, b))
    }
    #[inline(always)]
    fn sub_i(self, a: __m512i, b: __m512i) -> __m512i {
        simd_unsafe!(_mm512_sub_epi32(a, b))
    }
    #[inline(always)]
    fn and_i(self, a: __m512i, b: __m512i) -> __m512i {
        simd_unsafe!(_mm512_and_si512(a, b))
    }
    #[inline(always)]
    fn or_i(self, a: __m512i, b: __m512i) -> __m512i {
        simd_unsafe!(_mm512_or_si512(a, b))
    }
    #[inline(always)]
    fn shl23(self, a: __m512i) -> __m512i {
        simd_unsafe!(_mm512_slli_epi32::<23>(a))
    }
    #[inline(always)]
    fn shr23(self, a: __m512i) -> __m512i {
        simd_unsafe!(_mm512_srai_epi32::<23>(a))
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        simd_unsafe!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        simd_unsafe!(_mm512_mask_blend_ps(m, b, a))
    }
    #[inline(always)]
    fn select_i(self, m: __mmask16, a: __m512i, b: __m512i) -> __m512i {
        simd_unsafe!(_mm512_mask_blend_epi32(m, b, a))
    }
    #[inline(always)]
    fn ldexp(self, y: __m512, n: __m512) -> __m512 {
        // vscalefps: y * 2^floor(n) with one rounding, subnormals and overflow included.
        simd_unsafe!(_mm512_scalef_ps(y, n))
    }
}
