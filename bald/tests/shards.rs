//! `bald::shard`: a pool split in shards picks what `bald::acquire` picks on the whole pool, for
//! 1, 2 and 5 shards of unequal sizes, in both regimes, lazy and full, on the scalar and CPU
//! backends, with excluded points and at the information limit (stop, continue, and the
//! PowerBALD tail); and the strategies that rank points by one key.

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
    let (mut limits, mut tails) = (0, 0);
    for device in [Device::Scalar, Device::Cpu] {
        for greedy in [Greedy::Lazy, Greedy::Full] {
            // 20000: exact for 8 picks (4^7 configurations), sampled after; 40: from the third.
            for num_samples in [20_000, 40] {
                for past_limit in PastLimit::ALL {
                    let strategy = Strategy::batchbald(11)
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
                    tails += usize::from(want.regimes.contains(&bald::PickRegime::PowerBald));
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
    assert!(tails > 0, "no PowerBALD tail: it is untested");
}

/// A sampled step whose best beats its own bound by more than the widening: the driver
/// merges every shard's evaluations (bald-core's `a_step_the_bests_do_not_settle` has this
/// pool's steps, on the scalar backend).
#[test]
fn a_step_the_bests_do_not_settle() {
    let (n, k, c) = (120, 8, 4);
    let data = random_pool(bald_core::Shape::new(n, k, c), 1);
    let whole = Pool::from_slice(&data, [n, k, c]).unwrap();
    for device in [Device::Scalar, Device::Cpu] {
        let strategy = Strategy::batchbald(12)
            .num_samples(2)
            .seed(1)
            .past_limit(PastLimit::Continue);
        let want = bald::acquire_with(&whole, strategy, device, Default::default()).unwrap();
        for cuts in [&[n][..], &[50, n], &[7, 31, 32, 90, n]] {
            let mut parts = shards(&data, (n, k, c), cuts, &strategy, device, &[]);
            let got = shard::acquire(&mut parts, &strategy).unwrap();
            assert_eq!(got.indices, want.indices, "{device} {cuts:?}");
            assert_eq!(got.scores, want.scores, "{device} {cuts:?}: bit for bit");
        }
    }
}

/// The strategies that rank points by one key: each shard's best points, merged, are the
/// whole pool's batch, with excluded points.
#[test]
fn ranked_shards_pick_what_the_whole_pool_picks() {
    let (k, c) = (10, 4);
    let (data, n) = pool_values(k, c);
    let whole = Pool::from_slice(&data, [n, k, c]).unwrap();
    let exclude = [0, 1, 2, 77, 149];
    let targets = Pool::from_slice(&data[..20 * k * c], [20, k, c]).unwrap();
    let options_targets = |s: &bald::Strategy| s.needs_targets().then_some(&targets);
    let (softmax, epig) = (bald::StochasticMode::Softmax, bald::Measure::Epig);
    let strategies: [bald::Strategy; 8] = [
        Strategy::power_bald(12).seed(4).into(),
        Strategy::power_bald(12).beta(0.0).into(),
        Strategy::random(12).seed(8).into(),
        Strategy::top(bald::Score::Bald, 12).into(),
        Strategy::top(bald::Score::VariationRatios, 200).into(),
        Strategy::epig(12).into(),
        Strategy::stochastic(softmax, epig, 12)
            .seed(3)
            .beta(20.0)
            .into(),
        Strategy::stochastic(softmax, bald::Measure::Bald, 12).into(),
    ];
    for device in [Device::Scalar, Device::Cpu] {
        for strategy in &strategies {
            let strategy: &bald::Strategy = strategy;
            let options = bald::Options {
                exclude: &exclude,
                targets: options_targets(strategy),
                ..Default::default()
            };
            let want = bald::acquire_with(&whole, *strategy, device, options).unwrap();
            for cuts in [&[n][..], &[61, n], &[1, 30, 31, 100, n]] {
                let mut start = 0;
                let mut parts = vec![];
                for &end in cuts {
                    let part =
                        Pool::from_slice(&data[start * k * c..end * k * c], [end - start, k, c])
                            .unwrap();
                    let mine: Vec<usize> = exclude
                        .iter()
                        .filter(|&&i| (start..end).contains(&i))
                        .map(|&i| i - start)
                        .collect();
                    parts.push(
                        part.on(device)
                            .unwrap()
                            .rank(*strategy, (start, &mine), options_targets(strategy))
                            .unwrap(),
                    );
                    start = end;
                }
                let got = bald::rank::merge(&parts, strategy.batch_size());
                let label = format!("{device} {} {cuts:?}", strategy.name());
                assert_eq!(got.indices, want.indices, "{label}");
                assert_eq!(got.scores, want.scores, "{label}: bit for bit");
            }
        }
    }
}

/// Shards on the GPU pick what the CPU picks on the whole pool: the same picks where the
/// math is exact, scores within the BatchBALD budget. Skipped without a usable GPU (the CUDA
/// emulation runs it in CI).
#[test]
fn cuda_shards_pick_what_the_cpu_picks() {
    if bald::backends::CudaBackend::new(0).is_err() {
        bald_testing::skip::skipped("shards on CUDA: no usable GPU");
        return;
    }
    let (k, c) = (10, 4);
    let (data, n) = pool_values(k, c);
    let whole = Pool::from_slice(&data, [n, k, c]).unwrap();
    let exclude = [0, 1, 2, 77, 149];
    for past_limit in [PastLimit::PowerBald, PastLimit::Continue] {
        // Exact for 8 picks (4^7 configurations), sampled after.
        let strategy = Strategy::batchbald(11)
            .num_samples(20_000)
            .seed(9)
            .past_limit(past_limit);
        let options = bald::Options {
            exclude: &exclude,
            ..Default::default()
        };
        let want = bald::acquire_with(&whole, strategy, Device::Cpu, options).unwrap();
        let cuts = [61, n];
        let mut parts = shards(
            &data,
            (n, k, c),
            &cuts,
            &strategy,
            Device::Cuda(0),
            &exclude,
        );
        let got = shard::acquire(&mut parts, &strategy).unwrap();
        let exact = want.regimes.iter().filter(|r| r.name() == "exact").count();
        assert!(exact >= 8, "{exact} exact picks");
        assert_eq!(got.indices[..8], want.indices[..8], "{past_limit:?}");
        for (g, w) in got.scores.iter().zip(&want.scores).take(8) {
            assert!(
                (g - w).abs() <= bald_core::budget::BATCHBALD_SCORE,
                "{past_limit:?}: {g} against {w}"
            );
        }
        assert_eq!(got.regimes[..8], want.regimes[..8]);
    }
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

/// Softrank's probabilities follow ranks among the whole pool's scores: no shard's ranking.
#[test]
fn softrank_is_no_shards_ranking() {
    let (k, c) = (10, 4);
    let (data, n) = pool_values(k, c);
    let pool = Pool::from_slice(&data, [n, k, c]).unwrap();
    let strategy = Strategy::stochastic(bald::StochasticMode::SoftRank, bald::Measure::Bald, 5);
    let e = pool
        .on(Device::Cpu)
        .unwrap()
        .rank(strategy, (0, &[]), None)
        .unwrap_err();
    assert!(matches!(e, bald::Error::Argument(_)), "{e:?}");
    assert!(e.to_string().contains("whole pool's scores"), "{e}");
}
