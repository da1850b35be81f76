//! `bald::shard`: a pool split in shards picks what `bald::acquire` picks on the whole pool, for
//! 1, 2 and 5 shards of unequal sizes, in both regimes, lazy and full, on the scalar and CPU
//! backends, with excluded points and at the information limit.

use bald::npy::{NpyArray, NpyData};
use bald::shard::{self, Shard};
use bald::{Device, Greedy, PastLimit, Pool, PoolOptions, Strategy};
use bald_testing::cases::random_pool;

/// Each point of a random pool three times (Repeated-MNIST's exact copies: ties everywhere),
/// then 30 more points.
fn pool_values(k: usize, c: usize) -> (Vec<f32>, usize) {
    let base = bald_core::Shape::new(40, k, c);
    let mut data = Vec::new();
    for point in random_pool(base, 5).chunks_exact(k * c) {
        for _ in 0..3 {
            data.extend_from_slice(point);
        }
    }
    data.extend(random_pool(bald_core::Shape::new(30, k, c), 6));
    (data, 150)
}

fn shards(
    data: &[f32],
    (n, k, c): (usize, usize, usize),
    cuts: &[usize],
    strategy: &bald::BatchBald,
    device: Device,
    exclude: &[usize],
) -> Vec<Shard> {
    let mut start = 0;
    cuts.iter()
        .map(|&end| {
            let part = data[start * k * c..end * k * c].to_vec();
            let array = NpyArray {
                shape: vec![end - start, k, c],
                data: NpyData::F32(part),
            };
            let pool = Pool::from_array(array, PoolOptions::default()).unwrap();
            let mine = exclude
                .iter()
                .filter(|&&i| (start..end).contains(&i))
                .map(|&i| i - start)
                .collect();
            let s = Shard::new(pool, (start, n), strategy, device, mine).unwrap();
            start = end;
            s
        })
        .collect()
}

#[test]
fn shards_pick_what_the_whole_pool_picks() {
    let (k, c) = (10, 4);
    let (data, n) = pool_values(k, c);
    let whole = Pool::from_slice(&data, [n, k, c]).unwrap();
    let exclude = [0, 1, 2, 77, 149];
    let mut limits = 0;
    for device in [Device::Scalar, Device::Cpu] {
        for greedy in [Greedy::Lazy, Greedy::Full] {
            // 4^7 configurations: exact throughout; 40: sampled from the third pick.
            for num_samples in [20_000, 40] {
                for past_limit in [PastLimit::Continue, PastLimit::Stop] {
                    let strategy = Strategy::batchbald(8)
                        .num_samples(num_samples)
                        .greedy(greedy)
                        .seed(9)
                        .past_limit(past_limit);
                    let options = bald::Options {
                        exclude: &exclude,
                        ..Default::default()
                    };
                    let want = bald::acquire_with(&whole, strategy, device, options).unwrap();
                    limits += usize::from(want.information_limit.is_some());
                    for cuts in [&[n][..], &[61, n], &[1, 30, 31, 100, n]] {
                        let label =
                            format!("{device} {greedy:?} {num_samples} {past_limit:?} {cuts:?}");
                        let mut parts = shards(&data, (n, k, c), cuts, &strategy, device, &exclude);
                        let got = shard::acquire(&mut parts, &strategy).unwrap();
                        assert_eq!(got.indices, want.indices, "{label}");
                        assert_eq!(got.scores, want.scores, "{label}: bit for bit");
                        assert_eq!(got.regimes, want.regimes, "{label}");
                        assert_eq!(got.standard_errors, want.standard_errors, "{label}");
                        assert_eq!(got.information_limit, want.information_limit, "{label}");
                        assert_eq!(got.switched_at, want.switched_at, "{label}");
                        assert_eq!(got.warnings, want.warnings, "{label}");
                    }
                }
            }
        }
    }
    assert!(limits > 0, "no run reached ln K: the limit is untested");
}

#[test]
fn past_limit_power_bald_is_a_typed_error_and_a_shard_stays_on_the_host() {
    let (k, c) = (10, 4);
    let (data, n) = pool_values(k, c);
    let strategy = Strategy::batchbald(5);
    let mut parts = shards(&data, (n, k, c), &[70, n], &strategy, Device::Cpu, &[]);
    let e = shard::acquire(&mut parts, &strategy).unwrap_err();
    assert!(matches!(e, bald::Error::Argument(_)), "{e:?}");
    assert!(e.to_string().contains("past_limit"), "{e}");
    let pool = Pool::from_array(
        NpyArray {
            shape: vec![n, k, c],
            data: NpyData::F32(data.clone()),
        },
        PoolOptions::default(),
    )
    .unwrap();
    let e = Shard::new(pool, (0, n), &strategy, Device::Cuda(0), vec![])
        .err()
        .unwrap();
    assert!(matches!(e, bald::Error::Unavailable { .. }), "{e:?}");
}

/// A shard's invalid point gives the whole pool's error once its indices are the whole pool's.
#[test]
fn a_shards_error_at_its_offset_is_the_whole_pools() {
    let (k, c) = (10, 4);
    let (mut data, n) = pool_values(k, c);
    data[(137 * k + 2) * c + 1] = f32::NAN;
    let whole = Pool::from_slice(&data, [n, k, c]).unwrap_err();
    let part = NpyArray {
        shape: vec![n - 130, k, c],
        data: NpyData::F32(data[130 * k * c..].to_vec()),
    };
    let shard = Pool::from_array(part, PoolOptions::default()).unwrap_err();
    assert_ne!(shard.to_string(), whole.to_string());
    assert_eq!(shard.at_offset(130).to_string(), whole.to_string());
}
