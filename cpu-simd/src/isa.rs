//! Instruction sets: detected once at run time, or forced for tests and benchmarks.

use std::sync::OnceLock;

/// An instruction-set level a kernel can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// One f32 lane, plain arithmetic: runs everywhere, the reference for the others.
    Portable,
    /// AVX2 + FMA, 8 lanes (x86-64).
    Avx2,
    /// AVX-512F, 16 lanes (x86-64).
    Avx512,
    /// NEON, 4 lanes (aarch64).
    Neon,
}

impl Isa {
    /// The best level this CPU supports, detected on first call and cached.
    pub fn detect() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| Isa::available().last().copied().unwrap_or(Isa::Portable))
    }

    /// Every level this CPU supports, from the portable one up.
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Portable];
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                out.push(Isa::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
        }
        #[cfg(target_arch = "aarch64")]
        out.push(Isa::Neon);
        out
    }

    /// Whether this CPU supports the level.
    pub fn is_available(self) -> bool {
        Isa::available().contains(&self)
    }

    /// Lowercase name (`"avx2"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }
}

/// Runs `$body` with `$s` bound to the token of `$isa`, inside a function compiled for that
/// ISA, so that the generic kernels it calls are inlined and compiled for it.
/// `$isa` must be available (checked when a backend is made).
macro_rules! dispatch {
    ($isa:expr, |$s:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::isa::Isa;
        match $isa {
            Isa::Portable => {
                let $s = $crate::simd::Portable;
                $body
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Isa::Avx2 => {
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2<R>(f: impl FnOnce($crate::x86::Avx2) -> R) -> R {
                    f($crate::x86::Avx2(()))
                }
                // SAFETY: an Isa::Avx2 backend is only made when AVX2 and FMA were detected.
                unsafe {
                    with_avx2(
                        #[inline(always)]
                        |$s| $body,
                    )
                }
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Isa::Avx512 => {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn with_avx512<R>(f: impl FnOnce($crate::x86::Avx512) -> R) -> R {
                    f($crate::x86::Avx512(()))
                }
                // SAFETY: an Isa::Avx512 backend is only made when AVX-512F was detected.
                unsafe {
                    with_avx512(
                        #[inline(always)]
                        |$s| $body,
                    )
                }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                let $s = $crate::neon::Neon(());
                $body
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("ISA checked when the backend was made"),
        }
    }};
}
pub(crate) use dispatch;
