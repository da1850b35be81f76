//! Test helpers: the batchbald_redux reference cases and random pools.
#![allow(dead_code)]

use std::path::PathBuf;

use bald_core::owned::Batch;
use bald_core::{BatchBald, Shape};
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

/// Reads a little-endian f64 C-order `.npy` (format 1.0 or 2.0).
pub fn read_npy_f64(bytes: &[u8]) -> (Vec<f64>, Vec<usize>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'descr': '<f8'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_str
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f64> = bytes[start + header_len..]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (data, shape)
}

pub fn load_case(name: &str) -> Case {
    let dir = data_dir();
    let bytes = std::fs::read(dir.join(format!("case_{name}.npy"))).unwrap();
    let (data, shape) = read_npy_f64(&bytes);
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
