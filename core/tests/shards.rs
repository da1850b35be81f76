//! A pool split in shards: every shard a `GreedyShard` over its part, each step their
//! proposals merged by `merge_step` and the pick committed on every shard, as a cluster's
//! driver does. The picks and scores are those of `BatchBald::run` on the whole pool, bit for
//! bit, in both regimes, lazy and full, however the pool is split, with excluded points.

use bald_core::{
    merge_step, pick_from_bests, Backend, BatchBald, Element, Greedy, GreedyShard, Hooks, LogProbs,
    Regime, Scalar, Shape,
};
use bald_testing::cases::random_pool;

/// Each point of a random pool three times (Repeated-MNIST's exact copies: ties everywhere).
fn repeated_pool(n: usize, k: usize, c: usize) -> (Vec<f32>, Shape) {
    let base = random_pool(Shape::new(n, k, c), 7);
    let mut data = Vec::with_capacity(3 * base.len());
    for point in base.chunks_exact(k * c) {
        for _ in 0..3 {
            data.extend_from_slice(point);
        }
    }
    (data, Shape::new(3 * n, k, c))
}

/// The batch of `params` from the pool cut at `cuts` (the shards' ends), with `exclude`
/// (indices in the whole pool): (picks, scores, the evaluations one lazy greedy over the whole
/// pool makes at each step, by `merge_step`'s count). Steps that the shards' bests settle
/// (`pick_from_bests`) are counted in `settled`.
fn sharded<B: Backend>(
    backend: &B,
    data: &[f32],
    shape: Shape,
    params: &BatchBald,
    cuts: &[usize],
    exclude: &[usize],
    settled: &mut usize,
) -> (Vec<usize>, Vec<f64>, Vec<usize>) {
    let kc = shape.k * shape.c;
    let starts: Vec<usize> = [&[0][..], &cuts[..cuts.len() - 1]].concat();
    let parts: Vec<LogProbs<'_, f32>> = starts
        .iter()
        .zip(cuts)
        .map(|(&a, &b)| LogProbs::new(&data[a * kc..b * kc], Shape::new(b - a, shape.k, shape.c)))
        .collect::<Result<_, _>>()
        .unwrap();
    let pools: Vec<B::Pool<'_, f32>> = parts
        .iter()
        .map(|lp| backend.prepare(*lp).map_err(|_| "prepare").unwrap())
        .collect();
    let b = params.picks(shape.n);
    let mut workspaces: Vec<Vec<f64>> = parts
        .iter()
        .map(|lp| vec![0.0; params.shard_workspace_len(lp.shape(), b).unwrap()])
        .collect();
    let mut shards = Vec::new();
    for ((pool, ws), (&start, &end)) in pools
        .iter()
        .zip(workspaces.iter_mut())
        .zip(starts.iter().zip(cuts))
    {
        let local: Vec<usize> = exclude
            .iter()
            .filter(|&&i| (start..end).contains(&i))
            .map(|&i| i - start)
            .collect();
        let shard = GreedyShard::new(backend, pool, params, (start, b), ws, &local, None)
            .map_err(|_| "new")
            .unwrap();
        shards.push(shard);
    }
    let b = b.min(shards.iter().map(|s| s.batch()).sum());
    for s in shards.iter_mut() {
        s.set_batch(b);
    }
    let (mut picks, mut scores, mut kept) = (vec![], vec![], vec![]);
    for _ in 0..b {
        for s in shards.iter_mut() {
            s.propose().map_err(|_| "propose").unwrap();
        }
        let (previous, widening) = (shards[0].previous(), shards[0].widening());
        for s in &shards {
            assert_eq!((s.previous(), s.widening()), (previous, widening));
        }
        let mut keep = vec![0; shards.len()];
        let merged = {
            let mut lists: Vec<_> = shards.iter().map(|s| s.evaluated().peekable()).collect();
            merge_step(&mut lists, &mut keep, previous, widening).unwrap()
        };
        // The bests alone, when they settle the step, decide what the merge decides.
        let pick = match pick_from_bests(shards.iter().map(|s| s.best()), previous, widening) {
            Some(pick) => {
                assert_eq!(pick, merged, "the bests' pick is the merge's");
                let kept: Vec<usize> = shards.iter().map(|s| s.kept(pick.score)).collect();
                assert_eq!(kept, keep, "each shard keeps what the merge keeps");
                *settled += 1;
                pick
            }
            None => merged,
        };
        let owner = shards
            .iter()
            .position(|s| s.point_of(pick.index).is_some())
            .unwrap();
        let (point, cond) = shards[owner].point_of(pick.index).unwrap();
        let row: Vec<f64> = point.iter().map(|v| v.to_f64()).collect();
        for (i, s) in shards.iter_mut().enumerate() {
            let remote = (i != owner).then_some((&row[..], cond));
            s.commit(keep[i], pick, remote).unwrap();
        }
        picks.push(pick.index);
        scores.push(pick.score);
        kept.push(keep.iter().sum());
    }
    (picks, scores, kept)
}

fn whole<B: Backend>(
    backend: &B,
    data: &[f32],
    shape: Shape,
    params: &BatchBald,
    exclude: &[usize],
) -> (Vec<usize>, Vec<f64>) {
    let lp = LogProbs::new(data, shape).unwrap();
    let pool = backend.prepare(lp).map_err(|_| "prepare").unwrap();
    let mut ws = vec![0.0; params.workspace_len(shape).unwrap()];
    let b = params.picks(shape.n);
    let (mut idx, mut sc) = (vec![0; b], vec![0.0; b]);
    let mut hooks = Hooks {
        exclude,
        ..Hooks::default()
    };
    let made = params
        .run(backend, &pool, &mut ws, &mut idx, &mut sc, &mut hooks)
        .map_err(|_| "run")
        .unwrap();
    idx.truncate(made);
    sc.truncate(made);
    (idx, sc)
}

#[test]
fn shards_pick_what_the_whole_pool_picks() {
    let (data, shape) = repeated_pool(40, 8, 4);
    let n = shape.n;
    let splits: [&[usize]; 4] = [&[n], &[50, n], &[7, 31, 32, 90, n], &[1, n]];
    let exclude = [3, 4, 5, 60, 119];
    for greedy in [Greedy::Lazy, Greedy::Full] {
        // 4^5 = 1024 configurations: exact throughout; 30: sampled from the third pick.
        for num_samples in [10_000, 30] {
            let params = BatchBald {
                batch_size: 6,
                num_samples,
                seed: 11,
                greedy,
            };
            for exclude in [&[][..], &exclude] {
                let want = whole(&Scalar, &data, shape, &params, exclude);
                assert_eq!(want.0.len(), 6);
                let mut settled = 0;
                let one = sharded(&Scalar, &data, shape, &params, &[n], exclude, &mut settled);
                for cuts in splits {
                    let got = sharded(&Scalar, &data, shape, &params, cuts, exclude, &mut settled);
                    let label = format!("{greedy:?} num_samples {num_samples} cuts {cuts:?}");
                    assert_eq!(got.0, want.0, "{label}: picks");
                    assert_eq!(got.1, want.1, "{label}: scores, bit for bit");
                    // The same lazy greedy: the same candidates evaluated at each step.
                    if greedy == Greedy::Lazy {
                        assert_eq!(got.2, one.2, "{label}: evaluations");
                    }
                }
                // Exact bounds hold: the bests settle every step. Sampled ones may not.
                let exact = (0..6)
                    .filter(|&t| params.regime_at(shape.c, t) == Regime::Exact)
                    .count();
                let steps = 6 * (splits.len() + 1);
                assert!(
                    settled >= exact * (splits.len() + 1) && settled <= steps,
                    "{greedy:?} num_samples {num_samples}: {settled} of {steps} steps settled"
                );
                if exact == 6 || greedy == Greedy::Full {
                    assert_eq!(
                        settled, steps,
                        "{greedy:?}: every step settled by the bests"
                    );
                }
            }
        }
    }
}

/// More picks than a shard has candidates: the batch is the whole pool's, and a shard with
/// nothing left proposes nothing.
#[test]
fn a_shard_runs_out_of_candidates() {
    let (data, shape) = repeated_pool(4, 5, 3);
    let params = BatchBald {
        batch_size: 10,
        num_samples: 1000,
        seed: 3,
        greedy: Greedy::Lazy,
    };
    let exclude = [0, 1];
    let want = whole(&Scalar, &data, shape, &params, &exclude);
    assert_eq!(want.0.len(), 10);
    let got = sharded(&Scalar, &data, shape, &params, &[3, 12], &exclude, &mut 0);
    assert_eq!((got.0, got.1), want);
}

/// A sampled step whose best beats its own bound by more than the widening (one in 12 here):
/// the bests do not settle it, and the merge of every shard's evaluations does, with the
/// picks of the whole pool.
#[test]
fn a_step_the_bests_do_not_settle() {
    let shape = Shape::new(120, 8, 4);
    let data = random_pool(shape, 1);
    let params = BatchBald {
        batch_size: 12,
        num_samples: 2,
        seed: 1,
        greedy: Greedy::Lazy,
    };
    let want = whole(&Scalar, &data, shape, &params, &[]);
    for cuts in [&[120][..], &[50, 120], &[7, 31, 32, 90, 120]] {
        let mut settled = 0;
        let got = sharded(&Scalar, &data, shape, &params, cuts, &[], &mut settled);
        assert_eq!((&got.0, &got.1), (&want.0, &want.1), "cuts {cuts:?}");
        assert!(settled < 12, "cuts {cuts:?}: a step needs the merge");
    }
}
