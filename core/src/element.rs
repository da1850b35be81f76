//! Input element types: f32, f64 and (feature `half`) f16, bf16.

/// A scalar type the pool's log-probabilities may be stored in.
///
/// All arithmetic happens in f64: an element is only read ([`Element::to_f64`]) or written
/// ([`Element::from_f64`], round to nearest).
pub trait Element: Copy + Send + Sync + core::fmt::Debug + PartialOrd + 'static {
    /// The type's name (`"f32"`, ...).
    const NAME: &'static str;
    /// Tolerance of the normalisation check: a row is accepted when
    /// `|log sum_c exp(lp[c])| <= NORM_TOLERANCE`. Wide enough for the type's rounding of log-probs
    /// computed in higher precision, tight enough to catch rows that are not log-probs.
    const NORM_TOLERANCE: f64;
    /// Widens to f64 (exact for every supported type).
    fn to_f64(self) -> f64;
    /// Rounds an f64 to this type.
    fn from_f64(x: f64) -> Self;
    /// The slice as its concrete type, so that backends can skip conversions or upload the
    /// raw storage (f16/bf16 bits) to a device.
    fn as_slice(s: &[Self]) -> ElementSlice<'_>;
    /// The slice as f32s when this type is f32 (else `None`), so that a backend can write f32
    /// results into it without a staging buffer.
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        let _ = s;
        None
    }
}

/// A slice of one of the supported element types, as its concrete type.
#[derive(Debug, Clone, Copy)]
pub enum ElementSlice<'a> {
    /// f64 elements.
    F64(&'a [f64]),
    /// f32 elements.
    F32(&'a [f32]),
    /// IEEE half-precision elements.
    #[cfg(feature = "half")]
    F16(&'a [half::f16]),
    /// bfloat16 elements.
    #[cfg(feature = "half")]
    Bf16(&'a [half::bf16]),
}

impl<'a> ElementSlice<'a> {
    /// The values in `range`, as the same type.
    pub fn slice(self, range: core::ops::Range<usize>) -> Self {
        match self {
            ElementSlice::F64(s) => ElementSlice::F64(&s[range]),
            ElementSlice::F32(s) => ElementSlice::F32(&s[range]),
            #[cfg(feature = "half")]
            ElementSlice::F16(s) => ElementSlice::F16(&s[range]),
            #[cfg(feature = "half")]
            ElementSlice::Bf16(s) => ElementSlice::Bf16(&s[range]),
        }
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    const NORM_TOLERANCE: f64 = 1e-4;
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_slice(s: &[f64]) -> ElementSlice<'_> {
        ElementSlice::F64(s)
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    const NORM_TOLERANCE: f64 = 1e-4;
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_slice(s: &[f32]) -> ElementSlice<'_> {
        ElementSlice::F32(s)
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
}

#[cfg(feature = "half")]
impl Element for half::f16 {
    const NAME: &'static str = "f16";
    const NORM_TOLERANCE: f64 = 1e-2;
    #[inline]
    fn to_f64(self) -> f64 {
        half::f16::to_f64(self)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        half::f16::from_f64(x)
    }
    fn as_slice(s: &[half::f16]) -> ElementSlice<'_> {
        ElementSlice::F16(s)
    }
}

#[cfg(feature = "half")]
impl Element for half::bf16 {
    const NAME: &'static str = "bf16";
    const NORM_TOLERANCE: f64 = 2e-2;
    #[inline]
    fn to_f64(self) -> f64 {
        half::bf16::to_f64(self)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        half::bf16::from_f64(x)
    }
    fn as_slice(s: &[half::bf16]) -> ElementSlice<'_> {
        ElementSlice::Bf16(s)
    }
}
