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
    fn reduce(self, a: __m256) -> f64 {
        // Pairwise in f64 vectors: lanes i + (i + 4), then halves again, in registers.
        simd_unsafe!({
            let q = _mm256_add_pd(
                _mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(a)),
            );
            let r = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd::<1>(q));
            _mm_cvtsd_f64(_mm_add_sd(r, _mm_unpackhi_pd(r, r)))
        })
    }
    #[inline(always)]
    fn transpose_sums(self, vs: &[__m256]) -> __m256 {
        assert_eq!(vs.len(), 8);
        // Halves of pairs added: 128-bit lane h of w[p] holds four partial sums of input
        // 2 p + h; the in-lane tree then leaves the sum of input 2 p + h in lane 4 h + p, so
        // the inputs are taken in the order that puts sum(vs[i]) in lane i.
        const ORDER: [usize; 8] = [0, 4, 1, 5, 2, 6, 3, 7];
        let mut w = [self.splat(0.0); 4];
        for (p, w) in w.iter_mut().enumerate() {
            *w = halves_256(self, vs[ORDER[2 * p]], vs[ORDER[2 * p + 1]]);
        }
        in_lane_sums_256(self, w)
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
    fn reduce(self, a: __m512) -> f64 {
        // Pairwise in f64 vectors: lanes i + (i + 8), then halves again, in registers.
        simd_unsafe!({
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
            let q = _mm512_add_pd(
                _mm512_cvtps_pd(_mm512_castps512_ps256(a)),
                _mm512_cvtps_pd(hi),
            );
            let q = _mm256_add_pd(_mm512_castpd512_pd256(q), _mm512_extractf64x4_pd::<1>(q));
            let r = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd::<1>(q));
            _mm_cvtsd_f64(_mm_add_sd(r, _mm_unpackhi_pd(r, r)))
        })
    }
    #[inline(always)]
    fn transpose_sums(self, vs: &[__m512]) -> __m512 {
        assert_eq!(vs.len(), 16);
        // Two rounds of 128-bit quarter shuffles leave, in quarter q of x[p], four partial
        // sums of input 4 p + q; the in-lane tree then puts the sum of input 4 p + q in lane
        // 4 q + p, so the inputs are taken in the order that puts sum(vs[i]) in lane i.
        const ORDER: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
        let mut w = [self.splat(0.0); 8];
        for (i, w) in w.iter_mut().enumerate() {
            let (a, b) = (vs[ORDER[2 * i]], vs[ORDER[2 * i + 1]]);
            *w = quarter_sums_512::<0b01_00_01_00, 0b11_10_11_10>(self, a, b);
        }
        let mut x = [self.splat(0.0); 4];
        for (i, x) in x.iter_mut().enumerate() {
            *x = quarter_sums_512::<0b10_00_10_00, 0b11_01_11_01>(self, w[2 * i], w[2 * i + 1]);
        }
        in_lane_sums_512(self, x)
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
    fn ldexp(self, y: __m512, n: __m512) -> __m512 {
        // vscalefps: y * 2^floor(n) with one rounding, subnormals and overflow included.
        simd_unsafe!(_mm512_scalef_ps(y, n))
    }
    #[inline(always)]
    fn scale_normal(self, y: __m512, n: __m512) -> __m512 {
        self.ldexp(y, n)
    }
}

/// Per 128-bit lane, [sum(x[0]), sum(x[1]), sum(x[2]), sum(x[3])] of that lane's four values.
#[inline(always)]
fn in_lane_sums_256(s: Avx2, x: [__m256; 4]) -> __m256 {
    simd_unsafe!({
        let s01 = s.add(
            _mm256_unpacklo_ps(x[0], x[1]),
            _mm256_unpackhi_ps(x[0], x[1]),
        );
        let s23 = s.add(
            _mm256_unpacklo_ps(x[2], x[3]),
            _mm256_unpackhi_ps(x[2], x[3]),
        );
        s.add(
            _mm256_shuffle_ps::<0b01_00_01_00>(s01, s23),
            _mm256_shuffle_ps::<0b11_10_11_10>(s01, s23),
        )
    })
}

/// Per 128-bit lane, [sum(x[0]), sum(x[1]), sum(x[2]), sum(x[3])] of that lane's four values.
#[inline(always)]
fn in_lane_sums_512(s: Avx512, x: [__m512; 4]) -> __m512 {
    simd_unsafe!({
        let s01 = s.add(
            _mm512_unpacklo_ps(x[0], x[1]),
            _mm512_unpackhi_ps(x[0], x[1]),
        );
        let s23 = s.add(
            _mm512_unpacklo_ps(x[2], x[3]),
            _mm512_unpackhi_ps(x[2], x[3]),
        );
        s.add(
            _mm512_shuffle_ps::<0b01_00_01_00>(s01, s23),
            _mm512_shuffle_ps::<0b11_10_11_10>(s01, s23),
        )
    })
}

/// [a.lo + a.hi | b.lo + b.hi] (128-bit halves).
#[inline(always)]
fn halves_256(s: Avx2, a: __m256, b: __m256) -> __m256 {
    simd_unsafe!(s.add(
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x31>(a, b)
    ))
}

/// The sum of two `vshuff32x4` selections of 128-bit quarters from a and b: LO = 0b01_00_01_00,
/// HI = 0b11_10_11_10 give [a.q0 + a.q2, a.q1 + a.q3, b.q0 + b.q2, b.q1 + b.q3]; LO =
/// 0b10_00_10_00, HI = 0b11_01_11_01 give [a.q0 + a.q1, a.q2 + a.q3, b.q0 + b.q1, b.q2 + b.q3].
#[inline(always)]
fn quarter_sums_512<const LO: i32, const HI: i32>(s: Avx512, a: __m512, b: __m512) -> __m512 {
    simd_unsafe!(s.add(
        _mm512_shuffle_f32x4::<LO>(a, b),
        _mm512_shuffle_f32x4::<HI>(a, b)
    ))
}
