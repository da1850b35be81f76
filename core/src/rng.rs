//! Philox4x32-10, the counter-based generator behind everything random in bald.
//!
//! Salmon, Moraes, Dror, Shaw (2011), "Parallel random numbers: as easy as 1, 2, 3". A draw is
//! a pure function of (key, counter): the key is the user's seed, the counter names what the
//! draw is for ([`Domain`] in the last word, then indices). Any backend, on any thread, in any
//! chunk order, computes the same bits for the same (seed, counter).

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// One Philox4x32 round function applied 10 times: 4 output words for a 4-word counter and a
/// 2-word key. Matches the Random123 known-answer vectors.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut x = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(x[0]);
        let p1 = u64::from(M1) * u64::from(x[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        x = [hi1 ^ x[1] ^ k[0], lo1, hi0 ^ x[3] ^ k[1], lo0];
    }
    x
}

/// What a draw is for: the last counter word, so that streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Domain {
    /// MC-dropout masks: counter (unit / 4, sample k, layer l, domain), word unit % 4.
    Dropout = 1,
    /// Random acquisition keys: counter (n low, n high, 0, domain).
    Random = 2,
    /// Gumbel noise of stochastic acquisition: counter (n low, n high, 0, domain).
    Gumbel = 3,
    /// Sampled joint-entropy configurations: counter (m, chosen point i, step t, domain).
    JointSample = 4,
    /// Batch EPIG's sampled configurations: counter (s, 0 or pick i + 1, 0, domain).
    EpigSample = 5,
}

/// The Philox key of a 64-bit seed.
#[inline]
pub fn key_of(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// A uniform f64 in [0, 1) with 53 random bits, from two words.
#[inline]
pub fn unit_f64(w0: u32, w1: u32) -> f64 {
    let bits = (u64::from(w0) << 21) ^ (u64::from(w1) >> 11);
    (bits & ((1u64 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform f64 in [0, 1) for pool point `n` in `domain` ([`Domain::Random`] or [`Domain::Gumbel`]).
#[inline]
pub fn point_uniform(seed: u64, domain: Domain, n: usize) -> f64 {
    let n = n as u64;
    let w = philox4x32_10([n as u32, (n >> 32) as u32, 0, domain as u32], key_of(seed));
    unit_f64(w[0], w[1])
}

/// A counter word: `x` as u32, or [`crate::Error::ShapeOverflow`] when it does not fit.
#[inline]
pub fn counter(x: usize) -> Result<u32, crate::Error> {
    u32::try_from(x).map_err(|_| crate::Error::ShapeOverflow)
}
