//! The vector abstraction the kernels are written against, once.
//!
//! A `Simd` value is a zero-sized token: holding one proves its instruction set is available
//! (tokens are only made by `isa::with_isa` after run-time detection, or at compile time for
//! the portable one). Methods are `#[inline(always)]` so that, inlined into a
//! `#[target_feature]` entry point, they compile to that ISA's instructions.

/// f32 vectors of `LANES` lanes with the integer and mask operations that exp and ln need.
pub trait Simd: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// An f32 vector.
    type V: Copy;
    /// An i32 vector.
    type I: Copy;
    /// A lane mask.
    type M: Copy;

    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// The first `LANES` values of `s` (panics if shorter).
    fn load(self, s: &[f32]) -> Self::V;
    /// Stores into the first `LANES` values of `s` (panics if shorter).
    fn store(self, v: Self::V, s: &mut [f32]);
    /// a + b.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// a - b.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// a * b.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// a * b + c (fused where the ISA has it).
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise max (b where either is NaN is not relied on).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise min.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Sum of the lanes, in f64.
    fn reduce(self, a: Self::V) -> f64;
    /// Lane i = the sum of the lanes of `vs[i]`, pairwise in f32, for `LANES` vectors (panics
    /// otherwise): one transposing tree instead of `LANES` horizontal sums.
    fn transpose_sums(self, vs: &[Self::V]) -> Self::V;

    /// f32 -> i32, truncating (inputs are already integral where used).
    fn to_int(self, a: Self::V) -> Self::I;
    /// i32 -> f32.
    fn to_float(self, a: Self::I) -> Self::V;
    /// Reinterpret f32 bits as i32.
    fn f2i_bits(self, a: Self::V) -> Self::I;
    /// Reinterpret i32 bits as f32.
    fn i2f_bits(self, a: Self::I) -> Self::V;
    /// All lanes `x`.
    fn splat_i(self, x: i32) -> Self::I;
    /// a + b (wrapping).
    fn add_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// a - b (wrapping).
    fn sub_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// a & b.
    fn and_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// a << 23 (into the exponent field).
    fn shl23(self, a: Self::I) -> Self::I;
    /// a >> 23, arithmetic.
    fn shr23(self, a: Self::I) -> Self::I;

    /// a < b.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// where m: a, else b.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;

    /// y * 2^n for integral `n` in [-126, 127], where 2^n is a normal number: one factor built
    /// in the exponent field (results below the normal range are rounded once, by the multiply).
    #[inline(always)]
    fn scale_normal(self, y: Self::V, n: Self::V) -> Self::V {
        let pow2 = self.shl23(self.add_i(self.to_int(n), self.splat_i(127)));
        self.mul(y, self.i2f_bits(pow2))
    }

    /// y * 2^n for integral `n` in [-150, 128] and y in [0.5, 2], right for subnormal and
    /// overflowing results: 2^n in two normal factors, so a subnormal result is rounded once.
    #[inline(always)]
    fn ldexp(self, y: Self::V, n: Self::V) -> Self::V {
        let n_int = self.to_int(n);
        let n1 = self.to_int(self.mul(n, self.splat(0.5)));
        let n2 = self.sub_i(n_int, n1);
        let pow2 = |k: Self::I| self.i2f_bits(self.shl23(self.add_i(k, self.splat_i(127))));
        self.mul(self.mul(y, pow2(n1)), pow2(n2))
    }
}

/// The portable implementation: one lane, plain f32 arithmetic, the same algorithms.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl Simd for Portable {
    const LANES: usize = 1;
    type V = f32;
    type I = i32;
    type M = bool;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> f32 {
        s[0]
    }
    #[inline(always)]
    fn store(self, v: f32, s: &mut [f32]) {
        s[0] = v;
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        // Unfused: a libm call per FMA would make the fallback far slower than it needs to be.
        a * b + c
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn reduce(self, a: f32) -> f64 {
        f64::from(a)
    }
    #[inline(always)]
    fn transpose_sums(self, vs: &[f32]) -> f32 {
        assert_eq!(vs.len(), 1);
        vs[0]
    }
    #[inline(always)]
    fn to_int(self, a: f32) -> i32 {
        a as i32
    }
    #[inline(always)]
    fn to_float(self, a: i32) -> f32 {
        a as f32
    }
    #[inline(always)]
    fn f2i_bits(self, a: f32) -> i32 {
        a.to_bits() as i32
    }
    #[inline(always)]
    fn i2f_bits(self, a: i32) -> f32 {
        f32::from_bits(a as u32)
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> i32 {
        x
    }
    #[inline(always)]
    fn add_i(self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    fn sub_i(self, a: i32, b: i32) -> i32 {
        a.wrapping_sub(b)
    }
    #[inline(always)]
    fn and_i(self, a: i32, b: i32) -> i32 {
        a & b
    }
    #[inline(always)]
    fn shl23(self, a: i32) -> i32 {
        a.wrapping_shl(23)
    }
    #[inline(always)]
    fn shr23(self, a: i32) -> i32 {
        a >> 23
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        if m {
            a
        } else {
            b
        }
    }
}
