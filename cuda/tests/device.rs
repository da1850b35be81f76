//! The CUDA backend against the bald-core scalar oracle, with the budgets of
//! `bald_core::budget`. Every test needs a GPU: without one each prints why it is skipped and
//! passes (issue 7 runs them on the device machine).

use bald_testing::cases as common;
mod gpu;
use bald_testing::skip;

use bald_core::half::{bf16, f16};
use std::ops::ControlFlow;

use bald_core::owned::{
    batch_epig, batchbald, batchbald_with, entropies, epig, mc_dropout_forward, scores,
};
use bald_core::{
    budget, epig_reference, Backend, BatchBald, BatchEpig, DenseLayer, Greedy, Hooks, LogProbs,
    McDropoutHead, Pick, PointScore, Scalar, Shape,
};
use bald_cuda::testing::{self, argmax_of, overrun_scores, DeviceValues, HeadPlan};
use bald_cuda::{CudaBackend, ImageKind};
use common::{
    check_lazy_and_full, extreme_pool, f32_of, load_case, pool_and_targets, with_joint, PICK_CASES,
};
use gpu::{check_scores, gpu, gpu_grouped, gpu_tc};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scores_match_the_oracle((data, shape) in extreme_pool(40, 24, 24)) {
        let Some(gpu) = gpu() else { return Ok(()) };
        check_scores(gpu, &f32_of(&data), shape, 0.0);
    }

    /// The grouped kernels (G loads in flight, R rows a point at once): K over several groups
    /// of 16 with short tails, C from 1 (R = 32) past 32 (R = 1).
    #[test]
    fn grouped_scores_match_the_oracle((data, shape) in extreme_pool(30, 70, 40)) {
        let Some(gpu) = gpu_grouped() else { return Ok(()) };
        check_scores(gpu, &f32_of(&data), shape, 0.0);
        // f16 storage (16 loads in flight), against the oracle on the same f16 values.
        let d16: Vec<f16> = data.iter().map(|&x| f16::from_f64(x)).collect();
        if LogProbs::new(&d16, shape).is_ok() {
            check_scores(gpu, &d16, shape, 0.0);
        }
    }

    #[test]
    fn half_and_f64_input_match_the_oracle((data, shape) in extreme_pool(40, 24, 24)) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let d16: Vec<f16> = data.iter().map(|&x| f16::from_f64(x)).collect();
        let db16: Vec<bf16> = data.iter().map(|&x| bf16::from_f64(x)).collect();
        // f16 and bf16 widen to f32 exactly: the budget of f32 input.
        if let Ok(lp) = LogProbs::new(&d16, shape) {
            let want = entropies(&Scalar, &lp).unwrap();
            let got = entropies(gpu, &gpu.prepare(lp).unwrap()).unwrap();
            for n in 0..shape.n {
                prop_assert!((got.0[n] - want.0[n]).abs() <= budget::score_tolerance(shape.c));
                prop_assert!((got.1[n] - want.1[n]).abs() <= budget::score_tolerance(shape.c));
            }
        }
        if let Ok(lp) = LogProbs::new(&db16, shape) {
            let want = scores(&Scalar, &lp, PointScore::Bald).unwrap();
            let got = scores(gpu, &gpu.prepare(lp).unwrap(), PointScore::Bald).unwrap();
            for n in 0..shape.n {
                prop_assert!((got[n] - want[n]).abs() <= budget::score_tolerance(shape.c));
            }
        }
        // f64 pools are rounded to f32 on the device.
        let lp = LogProbs::new(&data, shape).unwrap();
        let want = scores(&Scalar, &lp, PointScore::Bald).unwrap();
        let got = scores(gpu, &gpu.prepare(lp).unwrap(), PointScore::Bald).unwrap();
        for n in 0..shape.n {
            prop_assert!((got[n] - want[n]).abs() <= budget::score_tolerance(shape.c) + budget::F32_INPUT);
        }
    }

    #[test]
    fn joint_entropies_match_the_oracle((data, shape) in extreme_pool(40, 24, 24), chosen in 0usize..4, samples in 1usize..60) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let data32 = f32_of(&data);
        joint_within_budget(gpu, &LogProbs::new(&data32, shape).unwrap(), chosen, samples)?;
    }

    /// The tensor-core kernel (3xTF32) within the same budget, exact and sampled joints, f32
    /// and f16 storage; C above 64 runs the f32 kernel.
    #[test]
    fn tensor_core_joint_entropies_match_the_oracle((data, shape) in extreme_pool(40, 24, 70), chosen in 0usize..4, samples in 1usize..60) {
        let Some(gpu) = gpu_tc() else { return Ok(()) };
        prop_assert_eq!(gpu.joint_on_tensor_cores(shape.c), shape.c <= 64);
        let data32 = f32_of(&data);
        joint_within_budget(gpu, &LogProbs::new(&data32, shape).unwrap(), chosen, samples)?;
        // f16 storage: against the oracle on the same f16 values.
        let halves: Vec<f16> = data.iter().map(|&v| f16::from_f64(v)).collect();
        joint_within_budget(gpu, &LogProbs::new(&halves, shape).unwrap(), chosen, samples)?;
    }

    /// BatchBALD and EPIG through the tensor-core steps pick what the scalar oracle picks.
    #[test]
    fn tensor_core_batchbald_and_epig_match_the_oracle((x, s, y, t) in pool_and_targets(40, 6, 24, 12), batch in 1usize..6, samples in 1usize..200, seed: u64) {
        let Some(gpu) = gpu_tc() else { return Ok(()) };
        let (x32, y32) = (f32_of(&x), f32_of(&y));
        let lp = LogProbs::new(&x32, s).unwrap();
        let targets = LogProbs::new(&y32, t).unwrap();
        let pool = gpu.prepare(lp).unwrap();
        let params = BatchBald { batch_size: batch, num_samples: samples, seed, greedy: Greedy::Lazy };
        let want = batchbald(&Scalar, &lp, params).unwrap();
        let got = batchbald(gpu, &pool, params).unwrap();
        prop_assert_eq!(got.indices.len(), want.indices.len());
        for i in 0..want.indices.len() {
            prop_assert!((got.scores[i] - want.scores[i]).abs() <= budget::BATCHBALD_SCORE * (1.0 + want.scores[i].abs()),
                "step {i}: {} vs {}", got.scores[i], want.scores[i]);
            if got.indices[i] != want.indices[i] {
                break;
            }
        }
        let mut e = vec![0.0; s.n];
        epig_reference(&lp, &targets, &mut e).unwrap();
        let got = epig(gpu, &pool, &targets).unwrap();
        for n in 0..s.n {
            prop_assert!((got[n] - e[n].max(0.0)).abs() <= budget::EPIG, "point {n}: {} vs {}", got[n], e[n]);
        }
    }

    #[test]
    fn epig_matches_the_oracle((x, s, y, t) in pool_and_targets(40, 8, 24, 24)) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let (x32, y32) = (f32_of(&x), f32_of(&y));
        let lp = LogProbs::new(&x32, s).unwrap();
        let targets = LogProbs::new(&y32, t).unwrap();
        let mut want = vec![0.0; s.n];
        epig_reference(&lp, &targets, &mut want).unwrap();
        let pool = gpu.prepare(lp).unwrap();
        let got = epig(gpu, &pool, &targets).unwrap();
        for n in 0..s.n {
            prop_assert!((got[n] - want[n].max(0.0)).abs() <= budget::EPIG,
                "point {n}: {} vs {}", got[n], want[n]);
        }
    }

    /// Batch EPIG on the device's joint steps, exact and sampled: the scalar backend's picks
    /// until the first near tie, and its scores while picks agree.
    #[test]
    fn batch_epig_matches_the_oracle((x, s, y, t) in pool_and_targets(40, 6, 24, 12), batch in 1usize..5, samples in 1usize..400, seed: u64) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let (x32, y32) = (f32_of(&x), f32_of(&y));
        let lp = LogProbs::new(&x32, s).unwrap();
        let targets = LogProbs::new(&y32, t).unwrap();
        let params = BatchEpig { batch_size: batch, num_samples: samples, seed };
        let want = batch_epig(&Scalar, &lp, &targets, params, &mut Hooks::default()).unwrap();
        let got = batch_epig(gpu, &gpu.prepare(lp).unwrap(), &targets, params, &mut Hooks::default()).unwrap();
        prop_assert_eq!(got.indices.len(), want.indices.len());
        for i in 0..want.indices.len() {
            prop_assert!((got.scores[i] - want.scores[i]).abs() <= budget::BATCHBALD_SCORE * (1.0 + want.scores[i].abs()),
                "step {i}: {} vs {}", got.scores[i], want.scores[i]);
            if got.indices[i] != want.indices[i] {
                break;
            }
        }
    }

    #[test]
    fn batchbald_matches_the_oracle((data, shape) in extreme_pool(40, 24, 24), batch in 1usize..6, samples in 1usize..200, seed: u64) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let data32 = f32_of(&data);
        let lp = LogProbs::new(&data32, shape).unwrap();
        let params = BatchBald { batch_size: batch, num_samples: samples, seed, greedy: bald_core::Greedy::Lazy };
        let want = batchbald(&Scalar, &lp, params).unwrap();
        let got = batchbald(gpu, &gpu.prepare(lp).unwrap(), params).unwrap();
        prop_assert_eq!(got.indices.len(), want.indices.len());
        // Picks agree until the first near tie; scores agree while picks do.
        for t in 0..want.indices.len() {
            if got.indices[t] != want.indices[t] {
                break;
            }
            prop_assert!((got.scores[t] - want.scores[t]).abs() <= budget::BATCHBALD_SCORE * (1.0 + want.scores[t].abs()),
                "step {t}: {} vs {}", got.scores[t], want.scores[t]);
        }
    }

    #[test]
    fn forward_matches_the_oracle(n in 1usize..70, k in 1usize..6, d in 1usize..80, h in 1usize..80, c in 1usize..20, seed: u64) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let w = |len: usize, salt: usize| -> Vec<f32> {
            (0..len).map(|i| (((i * 7919 + salt * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.8).collect()
        };
        let (w1, b1, w2, b2) = (w(h * d, 1), w(h, 2), w(c * h, 3), w(c, 4));
        let layers = [
            DenseLayer { weight: &w1, bias: &b1, inputs: d, outputs: h, dropout: 0.25 },
            DenseLayer { weight: &w2, bias: &b2, inputs: h, outputs: c, dropout: 0.5 },
        ];
        let head = McDropoutHead::new(&layers).unwrap();
        let x = w(n * d, 5);
        let want: Vec<f64> = mc_dropout_forward(&Scalar, &head, &x, n, k, seed).unwrap();
        let got: Vec<f32> = mc_dropout_forward(gpu, &head, &x, n, k, seed).unwrap();
        for i in 0..want.len() {
            prop_assert!((f64::from(got[i]) - want[i]).abs() <= budget::HEAD_LOG_PROB * (1.0 + want[i].abs()),
                "{i}: {} vs {}", got[i], want[i]);
        }
        // Other output types go through a staging buffer: the same f32 values, widened.
        let wide: Vec<f64> = mc_dropout_forward(gpu, &head, &x, n, k, seed).unwrap();
        prop_assert!(wide.iter().zip(&got).all(|(&a, &b)| a == f64::from(b)));
    }

    /// Pinned staging (chunks of `floats`, a short last one included) moves the same values
    /// as direct copies: the head's features up and log-probs down (f32 and f64 outputs), and
    /// the pool's upload (f32 and f64 pools).
    #[test]
    fn pinned_transfers_move_the_same_values(n in 1usize..70, k in 1usize..6, d in 1usize..80, hidden in 0usize..40, c in 2usize..12, floats in 1usize..700, seed: u64) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let staged = CudaBackend::new(0).unwrap().with_pinned_transfers(Some(floats));
        let w = |len: usize, salt: usize| -> Vec<f32> {
            (0..len).map(|i| (((i * 7919 + salt * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.8).collect()
        };
        // One layer, or two (hidden > 0): the activation buffers alternate.
        let width = if hidden > 0 { hidden } else { c };
        let (w1, b1, w2, b2) = (w(width * d, 1), w(width, 2), w(c * hidden, 3), w(c, 4));
        let first = DenseLayer { weight: &w1, bias: &b1, inputs: d, outputs: width, dropout: 0.25 };
        let second = DenseLayer { weight: &w2, bias: &b2, inputs: hidden, outputs: c, dropout: 0.5 };
        let layers = if hidden > 0 { vec![first, second] } else { vec![first] };
        let head = McDropoutHead::new(&layers).unwrap();
        // Pipelined when a point's features and log-probs fit a buffer, in pieces that do.
        let plan = testing::head_plan(&staged, &head, n, k).unwrap();
        if d.max(k * c) <= floats {
            prop_assert_eq!(plan, HeadPlan::Pipelined(n.min(floats / d).min(floats / (k * c))));
        } else {
            prop_assert_eq!(plan, HeadPlan::Direct(n));
        }
        let x = w(n * d, 5);
        let want: Vec<f32> = mc_dropout_forward(gpu, &head, &x, n, k, seed).unwrap();
        let got: Vec<f32> = mc_dropout_forward(&staged, &head, &x, n, k, seed).unwrap();
        prop_assert_eq!(&got, &want);
        let wide: Vec<f64> = mc_dropout_forward(&staged, &head, &x, n, k, seed).unwrap();
        prop_assert!(wide.iter().zip(&want).all(|(&a, &b)| a == f64::from(b)));
        // The head's output as a pool, uploaded both ways, f32 and f64.
        let shape = Shape::new(n, k, c);
        let lp = LogProbs::new(&want, shape).unwrap();
        let direct = scores(gpu, &gpu.prepare(lp).unwrap(), PointScore::Bald).unwrap();
        prop_assert_eq!(&scores(&staged, &staged.prepare(lp).unwrap(), PointScore::Bald).unwrap(), &direct);
        let lp64 = LogProbs::new(&wide, shape).unwrap();
        prop_assert_eq!(&scores(&staged, &staged.prepare(lp64).unwrap(), PointScore::Bald).unwrap(), &direct);
    }

    #[test]
    fn dropout_masks_are_the_cpus_bit_for_bit(inputs in 1usize..300, k in 1usize..40, p in 0.0f32..0.95, layer in 0usize..4, seed: u64) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let w = vec![0.0f32; inputs];
        let layer_spec = DenseLayer { weight: &w, bias: &[0.0], inputs, outputs: 1, dropout: p };
        let masks = gpu.dropout_masks(&layer_spec, layer, k, seed).unwrap();
        let scale = (1.0 / (1.0 - f64::from(p))) as f32;
        for s in 0..k {
            let cpu: Vec<bool> = layer_spec.kept_inputs(seed, layer as u32, s as u32).collect();
            for (j, keep) in cpu.into_iter().enumerate() {
                let want = if keep { scale } else { 0.0 };
                prop_assert_eq!(masks[s * inputs + j].to_bits(), want.to_bits(), "sample {} unit {}", s, j);
            }
        }
    }
}

#[test]
fn reference_cases_give_identical_picks() {
    let Some(gpu) = gpu() else { return };
    for (name, groups) in PICK_CASES {
        let case = load_case(name);
        let lp = LogProbs::new(&case.data, case.shape).unwrap();
        let pool = gpu.prepare(lp).unwrap();
        check_lazy_and_full(&case, name, groups, budget::BATCHBALD_SCORE, "cuda", |p| {
            batchbald(gpu, &pool, p).unwrap()
        });
    }
}

#[test]
fn chunked_pools_give_the_same_results_as_resident_ones() {
    let Some(gpu) = gpu() else { return };
    let case = load_case("r200_20_10");
    let lp = LogProbs::new(&case.data, case.shape).unwrap();
    let resident = gpu.prepare(lp).unwrap();
    assert!(resident.is_resident());
    // Room for the BatchBALD buffers below and a few dozen points at a time.
    let small = CudaBackend::new(0).unwrap().with_memory_limit(160_000);
    let chunked = small.prepare(lp).unwrap();
    assert!(!chunked.is_resident());
    for score in PointScore::ALL {
        assert_eq!(
            scores(gpu, &resident, score).unwrap(),
            scores(&small, &chunked, score).unwrap(),
            "{score:?}"
        );
    }
    for (num_samples, greedy) in [(50, Greedy::Lazy), (200, Greedy::Lazy), (200, Greedy::Full)] {
        let params = BatchBald {
            batch_size: 6,
            num_samples,
            seed: 11,
            greedy,
        };
        assert_eq!(
            batchbald(gpu, &resident, params).unwrap(),
            batchbald(&small, &chunked, params).unwrap()
        );
    }
}

#[test]
fn bad_input_gets_typed_errors() {
    let Some(gpu) = gpu() else { return };
    let shape = Shape::new(2, 2, 2);
    let mut data = vec![-(2f32).ln(); 8];
    data[3] = f32::NAN;
    assert!(matches!(
        gpu.validate(&data, shape),
        Err(bald_cuda::CudaError::Input(
            bald_core::Error::NotANumber { .. }
        ))
    ));
    let ok = vec![-(2f32).ln(); 8];
    let pool = gpu.prepare(LogProbs::new(&ok, shape).unwrap()).unwrap();
    let mut short = vec![0.0; 1];
    assert!(gpu
        .scores(&pool, PointScore::Bald, &mut short, &mut [])
        .is_err());
    // A batch larger than the pool is clamped to N.
    let params = BatchBald {
        batch_size: 10,
        num_samples: 100,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    };
    assert_eq!(batchbald(gpu, &pool, params).unwrap().indices.len(), 2);
    // Pinned staging buffers of an impossible size: a typed error, not cudarc's panic.
    let huge = CudaBackend::new(0)
        .unwrap()
        .with_pinned_transfers(Some(usize::MAX / 2));
    // The pool is smaller than a buffer: copied directly.
    assert!(huge.prepare(LogProbs::new(&ok, shape).unwrap()).is_ok());
    let w = [0.5f32; 4];
    let layers = [DenseLayer {
        weight: &w,
        bias: &[0.0, 0.0],
        inputs: 2,
        outputs: 2,
        dropout: 0.5,
    }];
    let head = McDropoutHead::new(&layers).unwrap();
    let got: Result<Vec<f32>, _> = mc_dropout_forward(&huge, &head, &[1.0, 2.0], 1, 2, 0);
    assert!(matches!(
        got,
        Err(bald_cuda::CudaError::Input(
            bald_core::Error::InvalidParameter {
                name: "pinned_transfers",
                ..
            }
        ))
    ));
}

#[test]
fn modules_load_as_cubin_and_come_from_the_disk_cache_in_later_processes() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shape = Shape::new(3, 2, 2);
    let data = vec![-(2f32).ln(); 12];
    let lp = LogProbs::new(&data, shape).unwrap();
    let run = || {
        let be = CudaBackend::new(0)
            .unwrap()
            .with_kernel_cache(Some(dir.path().to_path_buf()));
        let bald = scores(&be, &be.prepare(lp).unwrap(), PointScore::Bald).unwrap();
        assert!(bald.iter().all(|&b| b.abs() < 1e-9), "{bald:?}");
        let images = be.module_images();
        images
            .into_iter()
            .find(|(m, _)| *m == bald_kernels::Module::Scores)
            .unwrap()
            .1
            .unwrap()
    };
    // First use: compiled, loaded as the device's CUBIN, and stored.
    let first = run();
    assert_eq!(first.kind, ImageKind::Cubin);
    assert!(!first.cached);
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    assert_eq!(entries().len(), 1);
    // A new backend (as a new process would) loads it from the cache.
    let second = run();
    assert!(second.cached && second.kind == ImageKind::Cubin);
    // A corrupt entry is never loaded: compiled again, and the entry rewritten whole.
    let entry = &entries()[0];
    let mut bytes = std::fs::read(entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(entry, &bytes).unwrap();
    assert!(!run().cached);
    assert!(run().cached);
    // So is an entry of another module renamed into its place (a foreign key).
    std::fs::write(
        entry,
        b"bald kernel cache v1\nsource 00 arch sm_90 nvrtc 13.0 image Cubin\n",
    )
    .unwrap();
    assert!(!run().cached);
}

#[test]
fn an_empty_joint_gives_zeros() {
    let Some(gpu) = gpu() else { return };
    let case = load_case("r50_8_4");
    let lp = LogProbs::new(&case.data, case.shape).unwrap();
    let pool = gpu.prepare(lp).unwrap();
    let joint = bald_core::JointProbs {
        a: &[],
        log_scale: None,
        weight: 1.0,
        m: 0,
        k: case.shape.k,
    };
    let mut out = vec![f64::NAN; case.shape.n];
    let mut ws = vec![0.0; case.shape.k * case.shape.c];
    gpu.joint_entropies(&pool, &joint, None, &mut out, &mut ws)
        .unwrap();
    assert!(out.iter().all(|&h| h == 0.0));
    let mut want = vec![f64::NAN; case.shape.n];
    Scalar
        .joint_entropies(&lp, &joint, None, &mut want, &mut ws)
        .unwrap();
    assert_eq!(out, want);
}

/// Excluded points are never picked, the batch is clamped to the points left, the picks match
/// the oracle's with the same exclusion, and on_pick sees every pick and can stop the run.
#[test]
fn exclusion_and_on_pick_match_the_oracle() {
    let Some(gpu) = gpu() else { return };
    let (n, k, c) = (30, 6, 4);
    let mut data: Vec<f64> = (0..n * k * c)
        .map(|i| ((i * 7919 % 211) as f64 / 211.0 - 0.5) * 5.0)
        .collect();
    common::log_softmax_rows(&mut data, c);
    let data32 = f32_of(&data);
    let lp = LogProbs::new(&data32, Shape::new(n, k, c)).unwrap();
    let pool = gpu.prepare(lp).unwrap();
    let exclude: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
    for (batch, samples) in [(4, 1000), (12, 50)] {
        let params = BatchBald {
            batch_size: batch,
            num_samples: samples,
            seed: 5,
            greedy: bald_core::Greedy::Lazy,
        };
        let run = |b: &dyn Fn(&mut Hooks<'_>) -> bald_core::owned::Batch| {
            let mut seen = 0;
            let mut on_pick = |_: Pick| {
                seen += 1;
                ControlFlow::Continue(())
            };
            let batch = b(&mut Hooks {
                exclude: &exclude,
                on_pick: Some(&mut on_pick),
                entropies: None,
            });
            (batch, seen)
        };
        let (want, _) = run(&|h| batchbald_with(&Scalar, &lp, params, h).unwrap());
        let (got, seen) = run(&|h| batchbald_with(gpu, &pool, params, h).unwrap());
        assert_eq!(got.indices.len(), batch.min(10));
        assert_eq!(seen, got.indices.len());
        assert!(got.indices.iter().all(|i| i % 3 == 0), "{:?}", got.indices);
        assert_eq!(got.indices, want.indices, "batch {batch}");
    }
    let params = BatchBald {
        batch_size: 5,
        num_samples: 1000,
        seed: 0,
        greedy: bald_core::Greedy::Lazy,
    };
    let mut stop = |p: Pick| {
        if p.done == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let mut hooks = Hooks {
        exclude: &[],
        on_pick: Some(&mut stop),
        entropies: None,
    };
    let err = batchbald_with(gpu, &pool, params, &mut hooks).unwrap_err();
    assert!(err.to_string().contains("interrupted after 3"), "{err}");
    let mut out_of_range = Hooks {
        exclude: &[n],
        on_pick: None,
        entropies: None,
    };
    assert!(batchbald_with(gpu, &pool, params, &mut out_of_range).is_err());
    // Entropies handed in replace the first pass (uploaded, with the exclusion applied to
    // them), in both greedy modes; a wrong length is refused.
    let (h, eh) = bald_core::owned::entropies(gpu, &pool).unwrap();
    for greedy in [bald_core::Greedy::Lazy, bald_core::Greedy::Full] {
        let params = BatchBald { greedy, ..params };
        let mut given = Hooks {
            exclude: &exclude,
            entropies: Some((&h, &eh)),
            ..Hooks::default()
        };
        let mut computed = Hooks {
            exclude: &exclude,
            ..Hooks::default()
        };
        assert_eq!(
            batchbald_with(gpu, &pool, params, &mut given).unwrap(),
            batchbald_with(gpu, &pool, params, &mut computed).unwrap(),
            "{greedy:?}"
        );
        let mut short = Hooks {
            entropies: Some((&h[1..], &eh)),
            ..Hooks::default()
        };
        let err = batchbald_with(gpu, &pool, params, &mut short).unwrap_err();
        assert!(err.to_string().contains("entropies"), "{err}");
    }
}

/// Every candidate's score NaN: a typed error, not the sentinel index as a pick.
#[test]
fn an_all_nan_argmax_is_no_candidate() {
    let Some(gpu) = gpu() else { return };
    for n in [1usize, 300, 70_000] {
        let mut vals = vec![f64::NAN; n];
        assert_eq!(argmax_of(gpu, &vals).unwrap(), None, "n = {n}");
        // One comparable value among NaNs is found.
        vals[n / 2] = -1.0;
        assert_eq!(
            argmax_of(gpu, &vals).unwrap(),
            Some((n / 2, -1.0)),
            "n = {n}"
        );
    }
    let err = bald_cuda::CudaError::NoCandidate { step: 3 }.to_string();
    assert!(err.contains("step 3") && err.contains("NaN"), "{err}");
}

const FAULT_CHILD: &str = "BALD_CUDA_FAULT_CHILD";

/// A kernel that reads past its buffer, then the stream synchronised: the error names the
/// kernel (on a GPU the fault surfaces at the synchronisation, on the emulation at the
/// launch). Run in a child process, as a fault leaves the context unusable.
#[test]
fn fault_child() {
    if std::env::var_os(FAULT_CHILD).is_none() {
        return;
    }
    let gpu = CudaBackend::new(0).unwrap();
    let err = overrun_scores(&gpu).unwrap_err();
    println!("FAULT {err}");
    assert!(
        matches!(&err, bald_cuda::CudaError::Kernel { kernels, .. } if kernels[0] == "scores_f32")
    );
}

#[test]
fn a_kernel_fault_is_that_kernels_error() {
    if gpu().is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fault_child", "--nocapture"])
        .env(FAULT_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FAULT kernel scores_f32 failed"),
        "{stdout}"
    );
}

/// `data` on the device as its own buffer, and the pool read from there.
fn on_device<T: bald_core::Element>(
    gpu: &CudaBackend,
    data: &[T],
    shape: Shape,
) -> (
    DeviceValues,
    Result<bald_cuda::CudaPool<'static, T>, bald_cuda::CudaError>,
) {
    let values = DeviceValues::upload(gpu, data).unwrap();
    // SAFETY: the values stay allocated and unwritten while the pool lives (the caller keeps
    // `values` beyond the pool).
    let pool = unsafe { gpu.pool_on_device::<T>(values.ptr(), shape) };
    (values, pool)
}

#[test]
fn pools_on_the_device_give_the_results_of_uploaded_pools() {
    let Some(gpu) = gpu() else { return };
    for (name, groups) in PICK_CASES {
        let case = load_case(name);
        let data32 = f32_of(&case.data);
        let d16: Vec<f16> = case.data.iter().map(|&x| f16::from_f64(x)).collect();
        let (values, pool) = on_device(gpu, &data32, case.shape);
        let pool = pool.unwrap();
        assert!(pool.is_resident());
        assert!(bald_core::PreparedPool::host(&pool).is_none());
        check_lazy_and_full(&case, name, groups, budget::BATCHBALD_SCORE, "cuda", |p| {
            batchbald(gpu, &pool, p).unwrap()
        });
        // The same kernels on the same values: bit for bit the uploaded pool's results.
        let uploaded = gpu
            .prepare(LogProbs::new(&data32, case.shape).unwrap())
            .unwrap();
        let params = common::batchbald_params(&case);
        assert_eq!(
            batchbald(gpu, &pool, params).unwrap(),
            batchbald(gpu, &uploaded, params).unwrap(),
            "{name}"
        );
        for score in PointScore::ALL {
            assert_eq!(
                scores(gpu, &pool, score).unwrap(),
                scores(gpu, &uploaded, score).unwrap(),
                "{name} {score:?}"
            );
        }
        // A point read back from the device, and the standard errors that read the picks.
        let per = case.shape.k * case.shape.c;
        let last = case.shape.n - 1;
        let mut point = vec![0.0f32; per];
        gpu.read_point(&pool, last, &mut point).unwrap();
        assert_eq!(point, data32[last * per..], "{name}");
        assert!(gpu.read_point(&pool, case.shape.n, &mut point).is_err());
        let sampled = bald_core::BatchBald {
            num_samples: 3,
            ..params
        };
        let picks = batchbald(gpu, &pool, sampled).unwrap().indices;
        assert_eq!(
            bald_core::owned::standard_errors(gpu, &pool, sampled, &picks).unwrap(),
            bald_core::owned::standard_errors(gpu, &uploaded, sampled, &picks).unwrap(),
            "{name}"
        );
        // f64 values are rounded to f32 on the device as the upload rounds them on the host;
        // f16 values are read as they are.
        let (_values64, pool64) = on_device(gpu, &case.data, case.shape);
        let uploaded64 = gpu
            .prepare(LogProbs::new(&case.data, case.shape).unwrap())
            .unwrap();
        assert_eq!(
            batchbald(gpu, &pool64.unwrap(), params).unwrap(),
            batchbald(gpu, &uploaded64, params).unwrap(),
            "{name} f64"
        );
        if let Ok(lp16) = LogProbs::new(&d16, case.shape) {
            let (_values16, pool16) = on_device(gpu, &d16, case.shape);
            let pool16 = pool16.unwrap();
            let uploaded16 = gpu.prepare(lp16).unwrap();
            assert_eq!(
                batchbald(gpu, &pool16, params).unwrap(),
                batchbald(gpu, &uploaded16, params).unwrap(),
                "{name} f16"
            );
            assert_eq!(
                scores(gpu, &pool16, PointScore::Bald).unwrap(),
                scores(gpu, &uploaded16, PointScore::Bald).unwrap()
            );
        }
        // Dropping the pool leaves the caller's memory allocated and as it was.
        drop(pool);
        let bytes: Vec<u8> = data32.iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(values.download(gpu).unwrap(), bytes, "{name}");
    }
}

/// The error of a pool on the device, which must be `LogProbs::new`'s.
fn device_error<T: bald_core::Element>(
    gpu: &CudaBackend,
    data: &[T],
    shape: Shape,
) -> Option<bald_core::Error> {
    let want = LogProbs::new(data, shape).err();
    let (_values, pool) = on_device(gpu, data, shape);
    let got = match pool {
        Ok(_) => None,
        Err(bald_cuda::CudaError::Input(e)) => Some(e),
        Err(e) => panic!("not an input error: {e}"),
    };
    assert_eq!(got, want);
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pools_on_the_device_are_validated_with_the_host_errors(
        (data, shape) in extreme_pool(12, 6, 12),
        faults in proptest::collection::vec((0usize..1000, 0u8..5), 0..4),
    ) {
        let Some(gpu) = gpu() else { return Ok(()) };
        let mut data = data;
        let len = data.len();
        for (at, kind) in faults {
            let i = at % len;
            match kind {
                0 => data[i] = f64::NAN,
                1 => data[i] = f64::INFINITY,
                2 => data[i] += 0.01,
                // A whole row of -inf: probability 0 everywhere.
                3 => { let r = i / shape.c * shape.c; data[r..r + shape.c].fill(f64::NEG_INFINITY) }
                _ => data[i] -= 3e-3,
            }
        }
        device_error(gpu, &data, shape);
        device_error(gpu, &f32_of(&data), shape);
        let d16: Vec<f16> = data.iter().map(|&x| f16::from_f64(x)).collect();
        device_error(gpu, &d16, shape);
        let db16: Vec<bf16> = data.iter().map(|&x| bf16::from_f64(x)).collect();
        device_error(gpu, &db16, shape);
    }
}

#[test]
fn a_row_at_the_edge_of_the_tolerance_is_decided_on_the_host() {
    let Some(gpu) = gpu() else { return };
    // Every row sums to exp(d): log-sum d, inside the f64 tolerance by 1e-10 of it, where the
    // device's stricter test flags it and the host accepts it.
    let (n, k, c) = (30, 4, 3);
    let d = <f64 as bald_core::Element>::NORM_TOLERANCE * (1.0 - 1e-10);
    let row = [0.5f64, 0.3, 0.2].map(|p| p.ln() + d);
    let mut data: Vec<f64> = row.iter().copied().cycle().take(n * k * c).collect();
    // Points 0-4 sum to 1: the host's check starts at point 5.
    for (v, p) in data[..5 * k * c]
        .iter_mut()
        .zip([0.5f64, 0.3, 0.2].iter().cycle())
    {
        *v = p.ln();
    }
    let shape = Shape::new(n, k, c);
    assert_eq!(device_error(gpu, &data, shape), None);
    // And an error after it is found, at its own point.
    data[(17 * k + 2) * c + 1] = f64::NAN;
    assert_eq!(
        device_error(gpu, &data, shape),
        Some(bald_core::Error::NotANumber { n: 17, k: 2, c: 1 })
    );
}

#[test]
fn memory_that_is_not_the_pool_on_this_device_is_refused() {
    let Some(gpu) = gpu() else { return };
    let shape = Shape::new(4, 2, 2);
    let data = vec![-(2f32).ln(); 16];
    let values = DeviceValues::upload(gpu, &data).unwrap();
    let not_on_device = |r: Result<bald_cuda::CudaPool<'_, f32>, bald_cuda::CudaError>| {
        matches!(r, Err(bald_cuda::CudaError::NotOnDevice { .. }))
    };
    // SAFETY (each): the call must refuse the address before it reads anything.
    // A host address.
    assert!(not_on_device(unsafe {
        gpu.pool_on_device::<f32>(data.as_ptr() as u64, shape)
    }));
    // Misaligned.
    assert!(not_on_device(unsafe {
        gpu.pool_on_device::<f32>(values.ptr() + 2, shape)
    }));
    // Far past the end of the buffer.
    let huge = Shape::new(1 << 30, 16, 16);
    assert!(not_on_device(unsafe {
        gpu.pool_on_device::<f32>(values.ptr(), huge)
    }));
    // Past the end of memory.
    assert!(not_on_device(unsafe {
        gpu.pool_on_device::<f32>(u64::MAX - 3, shape)
    }));
    // Empty and overflowing shapes are input errors.
    assert!(matches!(
        unsafe { gpu.pool_on_device::<f32>(values.ptr(), Shape::new(0, 2, 2)) },
        Err(bald_cuda::CudaError::Input(
            bald_core::Error::EmptyDimension { .. }
        ))
    ));
    // A pool on the device is never evicted: an operation that does not fit beside it fails.
    let small = CudaBackend::new(0).unwrap().with_memory_limit(64);
    let pool = unsafe { small.pool_on_device::<f32>(values.ptr(), shape) }.unwrap();
    let params = BatchBald {
        batch_size: 2,
        num_samples: 100,
        seed: 0,
        greedy: Greedy::Lazy,
    };
    assert!(matches!(
        batchbald(&small, &pool, params),
        Err(bald_cuda::CudaError::DeviceMemory { .. })
    ));
    // bald-core's host driver refuses it with a typed error.
    assert!(matches!(
        params.greedy(
            &small,
            &pool,
            &mut [0.0; 4096],
            &mut [0; 2],
            &mut [0.0; 2],
            &mut Hooks::default()
        ),
        Err(bald_cuda::CudaError::Input(
            bald_core::Error::InvalidParameter { name: "pool", .. }
        ))
    ));
}

/// `gpu`'s joint-entropy step on `lp` against the scalar oracle, within the budget, with the
/// joint of its first `chosen` points (`samples` configurations when sampled): over every
/// candidate, and over them listed in reverse order, as in the full pass.
fn joint_within_budget<T: bald_core::Element>(
    gpu: &CudaBackend,
    lp: &LogProbs<'_, T>,
    chosen: usize,
    samples: usize,
) -> Result<(), TestCaseError> {
    let shape = lp.shape();
    let chosen: Vec<usize> = (0..chosen.min(shape.n)).collect();
    let pool = gpu.prepare(*lp).unwrap();
    with_joint(
        lp,
        &chosen,
        samples,
        |joint, want| -> Result<(), TestCaseError> {
            let mut got = vec![0.0; shape.n];
            let mut scratch = vec![0.0; shape.k * shape.c];
            gpu.joint_entropies(&pool, &joint.view(), None, &mut got, &mut scratch)
                .unwrap();
            for n in 0..shape.n {
                let tol = budget::JOINT_ENTROPY * (1.0 + want[n].abs());
                prop_assert!(
                    (got[n] - want[n]).abs() <= tol,
                    "{:?} candidate {n}: {} vs {}",
                    joint.regime(),
                    got[n],
                    want[n]
                );
            }
            let idx: Vec<usize> = (0..shape.n).rev().collect();
            let mut listed = vec![0.0; shape.n];
            gpu.joint_entropies(&pool, &joint.view(), Some(&idx), &mut listed, &mut scratch)
                .unwrap();
            for (j, &n) in idx.iter().enumerate() {
                prop_assert_eq!(listed[j], got[n]);
            }
            Ok(())
        },
    )
}
