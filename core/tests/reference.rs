//! The seed example and the batchbald_redux 2.0.5 reference cases.

use bald_testing::cases as common;

use bald_core::owned::{batchbald, scores, top_k_batch};
use bald_core::{BatchBald, LogProbs, PointScore, Regime, Scalar, Shape};
use common::{batchbald_params, check_lazy_and_full, indices, load_case, nums, seed_example};

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y} (tol {tol})");
    }
}

#[test]
fn seed_example_known_values() {
    let data = seed_example();
    let lp = LogProbs::new(&data, Shape::new(4, 20, 4)).unwrap();
    let cond = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
    let ent = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
    for n in 0..4 {
        assert!(
            (cond[n] - 1.2069).abs() < 5e-5,
            "conditional entropy {}",
            cond[n]
        );
        assert!((ent[n] - 1.2376).abs() < 5e-5, "entropy {}", ent[n]);
    }
    // And the same input as stored by the reference generator.
    let case = load_case("doc4");
    assert_close(&case.data, &data, 1e-15, "doc4 input");
}

/// Entropies, conditional entropies, BALD and BatchBALD of one case against the reference.
fn check_case(name: &str, tie_groups: Option<usize>) {
    let case = load_case(name);
    let lp = LogProbs::new(&case.data, case.shape).unwrap();
    let j = &case.json;
    let ent = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
    let cond = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
    assert_close(&ent, &nums(&j["entropies"]), 1e-12, "entropies");
    assert_close(
        &cond,
        &nums(&j["conditional_entropies"]),
        1e-12,
        "conditional",
    );

    let group = |i: usize| tie_groups.map_or(i, |g| i % g);
    let bald_ref = &j["bald"];
    let bald = top_k_batch(
        &Scalar,
        &lp,
        PointScore::Bald,
        bald_ref["batch_size"].as_u64().unwrap() as usize,
    )
    .unwrap();
    assert_close(
        &bald.scores,
        &nums(&bald_ref["scores"]),
        1e-9,
        "bald scores",
    );
    let picks: Vec<usize> = bald.indices.iter().map(|&i| group(i)).collect();
    let want: Vec<usize> = indices(&bald_ref["indices"])
        .iter()
        .map(|&i| group(i))
        .collect();
    if name != "doc4" {
        assert_eq!(picks, want, "bald picks");
    }

    let bb = &j["batchbald"];
    let params = batchbald_params(&case);
    let regimes = bb["regime_per_step"].as_array().unwrap();
    for (t, r) in regimes.iter().enumerate() {
        let want = if r == "exact" {
            Regime::Exact
        } else {
            Regime::Sampled
        };
        assert_eq!(
            params.regime_at(case.shape.c, t),
            want,
            "regime of step {t}"
        );
    }
    let batch = batchbald(&Scalar, &lp, params).unwrap();
    check_lazy_and_full(&case, name, tie_groups, 1e-9, "scalar", |p| {
        batchbald(&Scalar, &lp, p).unwrap()
    });
    assert_close(
        &batch.scores,
        &nums(&j["check"]["batchbald_scores_bruteforce_numpy"]),
        1e-9,
        "batchbald vs brute force",
    );
}

#[test]
fn reference_doc4() {
    check_case("doc4", None);
}

#[test]
fn reference_r50_8_4() {
    check_case("r50_8_4", None);
}

#[test]
fn reference_r200_20_10() {
    check_case("r200_20_10", None);
}

#[test]
fn reference_dup() {
    check_case("dup", Some(20));
}

#[test]
fn reference_edge_zeros_with_0log0() {
    let case = load_case("edge_zeros");
    assert!(case.data.contains(&f64::NEG_INFINITY));
    let lp = LogProbs::new(&case.data, case.shape).unwrap();
    let r = &case.json["reference_0log0"];
    let ent = scores(&Scalar, &lp, PointScore::Entropy).unwrap();
    let cond = scores(&Scalar, &lp, PointScore::ConditionalEntropy).unwrap();
    assert_close(&ent, &nums(&r["entropies"]), 1e-12, "entropies");
    assert_close(
        &cond,
        &nums(&r["conditional_entropies"]),
        1e-12,
        "conditional",
    );
    let bald = top_k_batch(&Scalar, &lp, PointScore::Bald, 4).unwrap();
    assert_eq!(bald.indices, indices(&r["bald"]["indices"]));
    assert_close(&bald.scores, &nums(&r["bald"]["scores"]), 1e-9, "bald");
    let batch = batchbald(
        &Scalar,
        &lp,
        BatchBald {
            batch_size: 3,
            num_samples: 1000,
            seed: 0,
            greedy: bald_core::Greedy::Lazy,
        },
    )
    .unwrap();
    assert_eq!(batch.indices, indices(&r["batchbald"]["indices"]));
    assert_close(
        &batch.scores,
        &nums(&r["batchbald"]["scores"]),
        1e-9,
        "batchbald",
    );
}
