//! Philox4x32-10 against the Random123 known-answer vectors.

use bald_core::rng::{philox4x32_10, point_uniform, unit_f64, Domain};

#[test]
fn random123_known_answers() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0; 4],
            [0; 2],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(philox4x32_10(ctr, key), want);
    }
}

#[test]
fn uniforms_are_in_range_and_look_uniform() {
    assert_eq!(unit_f64(0, 0), 0.0);
    assert!(unit_f64(u32::MAX, u32::MAX) < 1.0);
    let n = 20000;
    let xs: Vec<f64> = (0..n)
        .map(|i| point_uniform(42, Domain::Random, i))
        .collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    let mut buckets = [0usize; 10];
    for x in &xs {
        buckets[(x * 10.0) as usize] += 1;
    }
    for b in buckets {
        assert!((b as f64 - 2000.0).abs() < 200.0, "{buckets:?}");
    }
    // Streams differ by domain and by seed.
    assert_ne!(
        point_uniform(42, Domain::Random, 0),
        point_uniform(42, Domain::Gumbel, 0)
    );
    assert_ne!(
        point_uniform(42, Domain::Random, 0),
        point_uniform(43, Domain::Random, 0)
    );
}
