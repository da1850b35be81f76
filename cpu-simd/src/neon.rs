//! NEON (4 lanes, aarch64 baseline) implementation of [`Simd`].

use core::arch::aarch64::*;

use crate::simd::Simd;

/// Token: NEON (always present on aarch64).
#[derive(Clone, Copy, Debug)]
pub struct Neon(pub(crate) ());

macro_rules! simd_unsafe {
    ($e:expr) => {
        // SAFETY: NEON is part of the aarch64 baseline; loads and stores are bounds-checked by
        // the caller's `assert!` before the intrinsic runs.
        unsafe { $e }
    };
}

impl Simd for Neon {
    const LANES: usize = 4;
    type V = float32x4_t;
    type I = int32x4_t;
    type M = uint32x4_t;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        simd_unsafe!(vdupq_n_f32(x))
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> float32x4_t {
        assert!(s.len() >= 4);
        simd_unsafe!(vld1q_f32(s.as_ptr()))
    }
    #[inline(always)]
    fn store(self, v: float32x4_t, s: &mut [f32]) {
        assert!(s.len() >= 4);
        simd_unsafe!(vst1q_f32(s.as_mut_ptr(), v))
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vaddq_f32(a, b))
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vsubq_f32(a, b))
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vmulq_f32(a, b))
    }
    #[inline(always)]
    fn fma(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        simd_unsafe!(vfmaq_f32(c, a, b))
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vmaxq_f32(a, b))
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vminq_f32(a, b))
    }
    #[inline(always)]
    fn reduce(self, a: float32x4_t) -> f64 {
        let mut lanes = [0.0f32; 4];
        self.store(a, &mut lanes);
        (f64::from(lanes[0]) + f64::from(lanes[2])) + (f64::from(lanes[1]) + f64::from(lanes[3]))
    }
    #[inline(always)]
    fn transpose_sums(self, vs: &[float32x4_t]) -> float32x4_t {
        assert_eq!(vs.len(), 4);
        // Pairwise adds of neighbours: [a0+a1, a2+a3, b0+b1, b2+b3], then again across pairs.
        simd_unsafe!(vpaddq_f32(
            vpaddq_f32(vs[0], vs[1]),
            vpaddq_f32(vs[2], vs[3])
        ))
    }
    #[inline(always)]
    fn to_int(self, a: float32x4_t) -> int32x4_t {
        simd_unsafe!(vcvtq_s32_f32(a))
    }
    #[inline(always)]
    fn to_float(self, a: int32x4_t) -> float32x4_t {
        simd_unsafe!(vcvtq_f32_s32(a))
    }
    #[inline(always)]
    fn f2i_bits(self, a: float32x4_t) -> int32x4_t {
        simd_unsafe!(vreinterpretq_s32_f32(a))
    }
    #[inline(always)]
    fn i2f_bits(self, a: int32x4_t) -> float32x4_t {
        simd_unsafe!(vreinterpretq_f32_s32(a))
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> int32x4_t {
        simd_unsafe!(vdupq_n_s32(x))
    }
    #[inline(always)]
    fn add_i(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        simd_unsafe!(vaddq_s32(a, b))
    }
    #[inline(always)]
    fn sub_i(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        simd_unsafe!(vsubq_s32(a, b))
    }
    #[inline(always)]
    fn and_i(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        simd_unsafe!(vandq_s32(a, b))
    }
    #[inline(always)]
    fn shl23(self, a: int32x4_t) -> int32x4_t {
        simd_unsafe!(vshlq_n_s32::<23>(a))
    }
    #[inline(always)]
    fn shr23(self, a: int32x4_t) -> int32x4_t {
        simd_unsafe!(vshrq_n_s32::<23>(a))
    }
    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        simd_unsafe!(vcltq_f32(a, b))
    }
    #[inline(always)]
    fn select(self, m: uint32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        simd_unsafe!(vbslq_f32(m, a, b))
    }
}
