//! Test and benchmark helpers: the batchbald_redux reference cases, random pools and the
//! benchmarks' MC-dropout head.

use std::path::PathBuf;

use bald_core::joint::{dynamic_joint_workspace_len, DynamicJoint};
use bald_core::owned::Batch;
use bald_core::rng::{point_uniform, Domain};
use bald_core::{Backend, BatchBald, DenseLayer, Element, LogProbs, Scalar, Shape};
use serde_json::Value;

/// One reference case: f64 log-probs, its shape and batchbald_redux's JSON.
pub struct Case {
    pub data: Vec<f64>,
    pub shape: Shape,
    pub json: Value,
}

fn data_dir() -> PathBuf {
    // BALD_TEST_DATA first (test binaries carried to another machine), else relative to the
    // workspace, so that other crates' tests can include this module too.
    if let Some(dir) = std::env::var_os("BALD_TEST_DATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data")
}

pub fn load_case(name: &str) -> Case {
    let dir = data_dir();
    let bytes = std::fs::read(dir.join(format!("case_{name}.npy"))).unwrap();
    let array = bald::npy::parse(&bytes).unwrap();
    let bald::npy::NpyData::F64(data) = array.data else {
        panic!("case {name}: not float64")
    };
    let shape = array.shape;
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("case_{name}.json"))).unwrap(),
    )
    .unwrap();
    Case {
        data,
        shape: Shape::new(shape[0], shape[1], shape[2]),
        json,
    }
}

/// A JSON number or one of "NaN", "Infinity", "-Infinity".
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => panic!("not a number: {s}"),
        },
        _ => panic!("not a number: {v}"),
    }
}

pub fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

pub fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// log_softmax of each row of C logits, in place.
pub fn log_softmax_rows(x: &mut [f64], c: usize) {
    for row in x.chunks_exact_mut(c) {
        let lse = bald_core::log_sum_exp(row.iter().copied());
        for v in row.iter_mut() {
            *v -= lse;
        }
    }
}

/// The seed document's mixture example: 4 points, K = 20, C = 4.
pub fn seed_example() -> Vec<f64> {
    let pairs = [
        ([0.7, 0.1, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2]),
        ([0.1, 0.7, 0.1, 0.1], [0.2, 0.3, 0.3, 0.2]),
        ([0.1, 0.1, 0.7, 0.1], [0.2, 0.2, 0.3, 0.3]),
        ([0.1, 0.1, 0.1, 0.7], [0.3, 0.2, 0.2, 0.3]),
    ];
    let mut out = Vec::new();
    for (p1, p2) in pairs {
        for i in 0..20 {
            let m = i as f64 / 19.0;
            for c in 0..4 {
                let p: f64 = (1.0 - m) * p1[c] + m * p2[c];
                out.push(p.ln());
            }
        }
    }
    out
}

/// Pools with extreme rows for the backends' oracle tests: shapes below the given bounds,
/// temperatures 0.01 to 30 (tiny and huge log-prob magnitudes), and in three cases of four
/// about one entry in eight at -inf (never a whole row).
pub fn extreme_pool(
    n_below: usize,
    k_below: usize,
    c_below: usize,
) -> impl proptest::strategy::Strategy<Value = (Vec<f64>, Shape)> {
    use proptest::prelude::*;
    (1..n_below, 1..k_below, 1..c_below, 0.01f64..30.0, 0u8..4)
        .prop_flat_map(|(n, k, c, temp, zeros)| {
            let len = n * k * c;
            (
                Just(Shape::new(n, k, c)),
                prop::collection::vec(-3.0f64..3.0, len),
                Just(temp),
                prop::collection::vec(0u8..8, len),
                Just(zeros),
            )
        })
        .prop_map(|(shape, mut x, temp, mask, zeros)| {
            for (row, m) in x.chunks_exact_mut(shape.c).zip(mask.chunks_exact(shape.c)) {
                for (v, &mv) in row.iter_mut().zip(m) {
                    *v *= temp;
                    if zeros > 0 && mv == 0 {
                        *v = f64::NEG_INFINITY;
                    }
                }
                if row.iter().all(|v| *v == f64::NEG_INFINITY) {
                    row[0] = 0.0;
                }
            }
            log_softmax_rows(&mut x, shape.c);
            (x, shape)
        })
}

/// A pool and EPIG targets of [`extreme_pool`]'s kind from the same K samples over the same C
/// classes: (pool values, pool shape, target values, target shape), fewer than `n_below` points
/// and `m_below` targets.
pub fn pool_and_targets(
    n_below: usize,
    m_below: usize,
    k_below: usize,
    c_below: usize,
) -> impl proptest::strategy::Strategy<Value = (Vec<f64>, Shape, Vec<f64>, Shape)> {
    use proptest::prelude::*;
    (1..m_below).prop_flat_map(move |m| {
        extreme_pool(n_below + m, k_below, c_below)
            .prop_filter("a point besides the targets", move |(_, s)| s.n > m)
            .prop_map(move |(x, s)| {
                let (pool, targets) = x.split_at((s.n - m) * s.k * s.c);
                (
                    pool.to_vec(),
                    Shape::new(s.n - m, s.k, s.c),
                    targets.to_vec(),
                    Shape::new(m, s.k, s.c),
                )
            })
    })
}

/// The f32 rounding of f64 log-probs.
pub fn f32_of(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// The reference cases whose BatchBALD batch every backend must reproduce, with their tie
/// groups (`dup` holds copies: point i ties with i mod 20).
pub const PICK_CASES: [(&str, Option<usize>); 4] = [
    ("r50_8_4", None),
    ("r200_20_10", None),
    ("dup", Some(20)),
    ("doc4", None),
];

/// The BatchBALD parameters batchbald_redux ran `case` with.
pub fn batchbald_params(case: &Case) -> BatchBald {
    let bb = &case.json["batchbald"];
    BatchBald {
        batch_size: bb["batch_size"].as_u64().unwrap() as usize,
        num_samples: bb["num_samples"].as_u64().unwrap() as usize,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    }
}

/// `batch` against batchbald_redux's on `case` (`name`, `groups` as in [`PICK_CASES`]): scores
/// within `tol`, the same picks up to tie groups; in `doc4`, class-permuted copies, every order
/// is a tie and all four points are picked once. `label` names the backend in failures.
pub fn check_batchbald_picks(
    case: &Case,
    name: &str,
    groups: Option<usize>,
    tol: f64,
    batch: &Batch,
    label: &str,
) {
    let bb = &case.json["batchbald"];
    let want_scores = nums(&bb["scores"]);
    assert_eq!(
        batch.scores.len(),
        want_scores.len(),
        "{name} {label}: batch size"
    );
    for (got, want) in batch.scores.iter().zip(want_scores) {
        assert!(
            (got - want).abs() <= tol,
            "{name} {label}: score {got} vs {want} (tol {tol})"
        );
    }
    let group = |i: usize| groups.map_or(i, |g| i % g);
    if name == "doc4" {
        let mut sorted = batch.indices.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3], "{name} {label}: picks");
    } else {
        let got: Vec<usize> = batch.indices.iter().map(|&i| group(i)).collect();
        let want: Vec<usize> = indices(&bb["indices"]).iter().map(|&i| group(i)).collect();
        assert_eq!(got, want, "{name} {label}: picks");
    }
}

/// [`check_batchbald_picks`] for lazy and for full greedy (`run` makes the batch with the
/// parameters it gets), and lazy's picks are full's with scores within `tol`.
pub fn check_lazy_and_full(
    case: &Case,
    name: &str,
    groups: Option<usize>,
    tol: f64,
    label: &str,
    run: impl Fn(BatchBald) -> Batch,
) {
    let lazy = BatchBald {
        greedy: bald_core::Greedy::Lazy,
        ..batchbald_params(case)
    };
    let full = BatchBald {
        greedy: bald_core::Greedy::Full,
        ..lazy
    };
    let (a, b) = (run(lazy), run(full));
    check_batchbald_picks(case, name, groups, tol, &a, &format!("{label} lazy"));
    check_batchbald_picks(case, name, groups, tol, &b, &format!("{label} full"));
    assert_eq!(a.indices, b.indices, "{name} {label}: lazy vs full picks");
    for (x, y) in a.scores.iter().zip(&b.scores) {
        assert!((x - y).abs() <= tol, "{name} {label}: lazy {x} vs full {y}");
    }
}

/// A cheap reproducible f32 pool for benchmarks (10^9 values in seconds): tempered xorshift
/// logits through log_softmax.
pub fn random_pool(shape: Shape, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut out = vec![0.0f32; shape.n * shape.k * shape.c];
    for point in out.chunks_exact_mut(shape.k * shape.c) {
        let scale = 1.0 + 6.0 * (next() + 0.5);
        let means: Vec<f32> = (0..shape.c).map(|_| 4.0 * next()).collect();
        for row in point.chunks_exact_mut(shape.c) {
            for (v, m) in row.iter_mut().zip(&means) {
                *v = scale * (m + 2.0 * next());
            }
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            row.iter_mut().for_each(|v| *v -= lse);
        }
    }
    out
}

/// Random weights of Gal et al.'s MC-dropout head 3872 -> 128 -> 10 (dropout 0.25, 0.5), for
/// the benchmarks.
pub struct GalHead {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
}

impl Default for GalHead {
    fn default() -> Self {
        Self::new()
    }
}

impl GalHead {
    /// Inputs, hidden units, classes.
    pub const DIMS: (usize, usize, usize) = (3872, 128, 10);

    pub fn new() -> Self {
        let (d, h, c) = Self::DIMS;
        GalHead {
            w1: Self::values(h * d, 1),
            b1: Self::values(h, 2),
            w2: Self::values(c * h, 3),
            b2: Self::values(c, 4),
        }
    }

    pub fn layers(&self) -> [DenseLayer<'_>; 2] {
        let (d, h, c) = Self::DIMS;
        [
            DenseLayer {
                weight: &self.w1,
                bias: &self.b1,
                inputs: d,
                outputs: h,
                dropout: 0.25,
            },
            DenseLayer {
                weight: &self.w2,
                bias: &self.b2,
                inputs: h,
                outputs: c,
                dropout: 0.5,
            },
        ]
    }

    /// Features of n points (n x 3872).
    pub fn features(n: usize) -> Vec<f32> {
        Self::values(n * Self::DIMS.0, 5)
    }

    /// Flops of the dense layers over n points and k samples.
    pub fn flops(n: usize, k: usize) -> u64 {
        let (d, h, c) = Self::DIMS;
        (2 * n * k * (d * h + h * c)) as u64
    }

    fn values(len: usize, salt: u64) -> Vec<f32> {
        (0..len)
            .map(|i| ((point_uniform(salt, Domain::Random, i) - 0.5) * 0.05) as f32)
            .collect()
    }
}

/// The joint of `chosen` (added one point at a time with seed 5, as BatchBALD builds it) and the
/// scalar oracle's joint entropy of every pool point against it, handed to `check`.
pub fn with_joint<T: Element, R>(
    lp: &LogProbs<'_, T>,
    chosen: &[usize],
    samples: usize,
    check: impl FnOnce(&DynamicJoint<'_>, &[f64]) -> R,
) -> R {
    let shape = lp.shape();
    let mut ws = vec![0.0; dynamic_joint_workspace_len(shape, chosen.len(), samples).unwrap()];
    let mut joint = DynamicJoint::new(&mut ws, shape, chosen.len(), samples, 5).unwrap();
    for t in 0..chosen.len() {
        joint.add(lp, &chosen[..=t]).unwrap();
    }
    let mut want = vec![0.0; shape.n];
    let mut scratch = vec![0.0; shape.k * shape.c];
    Scalar
        .joint_entropies(lp, &joint.view(), None, &mut want, &mut scratch)
        .unwrap();
    check(&joint, &want)
}
