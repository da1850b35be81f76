//! The `bald` binary as a user runs it: `acquire` on small `.npy` pools of each dtype with each
//! strategy, every bad-input class, the mistakes users make (layouts, K = 1, input kinds), and
//! what the output reports. The experiment's tests are in `experiment.rs`.

use bald_testing::skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bald::npy::{write, NpyData};
use bald_core::half::f16;

const STRATEGIES: [&str; 17] = [
    "random",
    "entropy",
    "bald",
    "var-ratios",
    "var-ratios-mode",
    "mean-std",
    "margin",
    "least-confidence",
    "batchbald",
    "power-bald",
    "softmax-bald",
    "softrank-bald",
    "epig",
    "power-epig",
    "softmax-epig",
    "softrank-epig",
    "batch-epig",
];

fn bald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bald"))
        .args(args)
        .output()
        .expect("the bald binary runs")
}

/// The backends to cross-check: the CPU ones, and CUDA when a GPU (or the emulation) is usable.
fn backends() -> Vec<&'static str> {
    let mut all = vec!["scalar", "cpu", "auto"];
    if bald_cuda::CudaBackend::new(0).is_ok() {
        all.push("cuda");
    } else {
        skip::skipped("--backend cuda in the CLI tests: no usable GPU");
    }
    all
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// N x K x C log-probs of pseudo-random logits.
fn pool(n: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * k * c);
    for i in 0..n * k {
        let row: Vec<f64> = (0..c)
            .map(|j| (((i * 7919 + j * 104_729 + i * j * 31) % 1000) as f64 / 1000.0 - 0.5) * 6.0)
            .collect();
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|v| v - lse));
    }
    out
}

fn save(dir: &Path, name: &str, shape: &[usize], data: NpyData) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, write(shape, &data)).unwrap();
    path
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "bald failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}

#[test]
fn acquire_every_strategy_on_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (30, 5, 4);
    let lp = pool(n, k, c);
    let files = [
        save(dir.path(), "f64.npy", &[n, k, c], NpyData::F64(lp.clone())),
        save(
            dir.path(),
            "f32.npy",
            &[n, k, c],
            NpyData::F32(lp.iter().map(|&v| v as f32).collect()),
        ),
        save(
            dir.path(),
            "f16.npy",
            &[n, k, c],
            NpyData::F16(lp.iter().map(|&v| f16::from_f64(v)).collect()),
        ),
    ];
    // EPIG's targets: the pool's first 6 points stand in for them.
    let targets = save(
        dir.path(),
        "targets.npy",
        &[6, k, c],
        NpyData::F64(lp[..6 * k * c].to_vec()),
    );
    for file in &files {
        for strategy in STRATEGIES {
            for backend in backends() {
                let mut args = vec![
                    "acquire",
                    file.to_str().unwrap(),
                    "--strategy",
                    strategy,
                    "--batch-size",
                    "7",
                    "--num-samples",
                    "50",
                    "--backend",
                    backend,
                ];
                if strategy.contains("epig") {
                    args.extend(["--targets", targets.to_str().unwrap()]);
                }
                let out = bald(&args);
                let v = json(&out);
                let idx: Vec<u64> = v["indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect();
                let scores = v["scores"].as_array().unwrap();
                assert_eq!(idx.len(), 7, "{strategy} {}", file.display());
                assert_eq!(scores.len(), 7);
                assert!(scores.iter().all(|s| s.as_f64().unwrap().is_finite()));
                let mut sorted = idx.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), 7, "picks are distinct");
                assert!(idx.iter().all(|&i| (i as usize) < n));
                assert_eq!(v["strategy"], strategy);
                assert!(v["seconds"].as_f64().unwrap() >= 0.0);
                let name = v["backend"].as_str().unwrap();
                assert!(["scalar", "cpu", "cuda"].contains(&name), "{name}");
            }
        }
    }
}

#[test]
fn backends_agree_and_batchbald_scores_are_cumulative() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (40, 6, 3);
    let file = save(dir.path(), "p.npy", &[n, k, c], NpyData::F64(pool(n, k, c)));
    let run = |backend: &str| {
        json(&bald(&[
            "acquire",
            file.to_str().unwrap(),
            "--backend",
            backend,
            "--batch-size",
            "4",
            "--num-samples",
            "1000",
        ]))
    };
    let scalar = run("scalar");
    for backend in backends() {
        assert_eq!(scalar["indices"], run(backend)["indices"], "{backend}");
    }
    let s: Vec<f64> = scalar["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // C^3 = 27 <= 1000: every step exact, so the cumulative scores never decrease.
    assert!(s.windows(2).all(|w| w[1] >= w[0] - 1e-12), "{s:?}");
}

#[test]
fn input_kinds_formats_and_batch_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (12, 3, 5);
    let lp = pool(n, k, c);
    let lp_file = save(dir.path(), "lp.npy", &[n, k, c], NpyData::F64(lp.clone()));
    let probs = save(
        dir.path(),
        "p.npy",
        &[n, k, c],
        NpyData::F64(lp.iter().map(|v| v.exp()).collect()),
    );
    let logits = save(
        dir.path(),
        "z.npy",
        &[n, k, c],
        NpyData::F64(lp.iter().map(|v| v + 3.0).collect()),
    );
    let pick = |file: &Path, kind: &str| {
        json(&bald(&[
            "acquire",
            file.to_str().unwrap(),
            "--input-kind",
            kind,
            "--strategy",
            "bald",
            "--backend",
            "scalar",
        ]))["indices"]
            .clone()
    };
    let want = pick(&lp_file, "log-probs");
    assert_eq!(pick(&probs, "probs"), want);
    assert_eq!(pick(&logits, "logits"), want);

    // Larger than the pool: clamped to N. Zero: an empty batch.
    let all = json(&bald(&[
        "acquire",
        lp_file.to_str().unwrap(),
        "--batch-size",
        "100",
        "--backend",
        "cpu",
    ]));
    assert_eq!(all["indices"].as_array().unwrap().len(), n);
    let none = json(&bald(&[
        "acquire",
        lp_file.to_str().unwrap(),
        "--batch-size",
        "0",
    ]));
    assert_eq!(none["indices"].as_array().unwrap().len(), 0);

    // CSV to a file.
    let out_file = dir.path().join("picks.csv");
    let o = bald(&[
        "acquire",
        lp_file.to_str().unwrap(),
        "--format",
        "csv",
        "--batch-size",
        "3",
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let csv = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "rank,index,score");
    assert_eq!(lines.len(), 4);
    assert!(lines[1].starts_with("0,"));
}

/// Non-zero exit and one line on stderr that contains `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let o = bald(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: {err:?} lacks {needle:?}"
    );
}

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (n, k, c) = (4, 2, 3);
    let lp = pool(n, k, c);
    fails_with(&["acquire", &p("missing.npy")], "cannot read");
    std::fs::write(p("text.npy"), "hello").unwrap();
    fails_with(&["acquire", &p("text.npy")], "not a .npy");
    // Wrong dtype: int32.
    let mut ints = write(&[n, k, c], &NpyData::F32(vec![0.0; n * k * c]));
    let at = ints.windows(3).position(|w| w == b"<f4").unwrap();
    ints[at..at + 3].copy_from_slice(b"<i4");
    std::fs::write(p("ints.npy"), ints).unwrap();
    fails_with(&["acquire", &p("ints.npy")], "dtype");
    save(
        dir.path(),
        "rank2.npy",
        &[n * k, c],
        NpyData::F64(lp.clone()),
    );
    fails_with(&["acquire", &p("rank2.npy")], "3-d");
    let mut nan = lp.clone();
    nan[5] = f64::NAN;
    save(dir.path(), "nan.npy", &[n, k, c], NpyData::F64(nan));
    fails_with(&["acquire", &p("nan.npy")], "NaN");
    let mut inf = lp.clone();
    inf[2] = f64::INFINITY;
    save(dir.path(), "inf.npy", &[n, k, c], NpyData::F64(inf));
    fails_with(&["acquire", &p("inf.npy")], "inf");
    let unnormalised: Vec<f64> = lp.iter().map(|v| v + 0.5).collect();
    save(
        dir.path(),
        "unnorm.npy",
        &[n, k, c],
        NpyData::F64(unnormalised),
    );
    fails_with(&["acquire", &p("unnorm.npy")], "normalis");
    save(dir.path(), "empty.npy", &[0, k, c], NpyData::F64(vec![]));
    fails_with(&["acquire", &p("empty.npy")], "N");
    save(dir.path(), "ok.npy", &[n, k, c], NpyData::F64(lp.clone()));
    fails_with(
        &["acquire", &p("ok.npy"), "--input-kind", "probs"],
        "probabilit",
    );

    // An output file is written whole or not at all: a failed run leaves no file.
    let out = p("out.json");
    fails_with(&["acquire", &p("nan.npy"), "--output", &out], "NaN");
    assert!(!Path::new(&out).exists());
    let o = bald(&["acquire", &p("ok.npy"), "--output", &out]);
    assert!(o.status.success());
    let before = std::fs::read(&out).unwrap();
    fails_with(&["acquire", &p("unnorm.npy"), "--output", &out], "normalis");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "a failed run left the old output alone"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")
    });
    assert_eq!(leftovers.count(), 0);
}

#[test]
fn more_than_1024_classes_run_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (6, 3, 1025);
    let file = save(
        dir.path(),
        "wide.npy",
        &[n, k, c],
        NpyData::F64(pool(n, k, c)),
    );
    let mut picks = Vec::new();
    for backend in backends() {
        for strategy in ["bald", "var-ratios-mode", "batchbald"] {
            let v = json(&bald(&[
                "acquire",
                file.to_str().unwrap(),
                "--strategy",
                strategy,
                "--batch-size",
                "3",
                "--backend",
                backend,
            ]));
            if backend == "auto" && bald_cuda::CudaBackend::new(0).is_ok() {
                assert_eq!(v["backend"], "cuda", "auto uses the GPU, C = 1025 included");
            }
            picks.push(((strategy, backend), v["indices"].clone()));
        }
    }
    for ((strategy, backend), idx) in &picks {
        let scalar = &picks
            .iter()
            .find(|((s, b), _)| s == strategy && *b == "scalar")
            .unwrap()
            .1;
        assert_eq!(idx, scalar, "{strategy} on {backend}");
    }
}

#[test]
fn cuda_backend_without_a_gpu_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = save(dir.path(), "p.npy", &[5, 2, 3], NpyData::F64(pool(5, 2, 3)));
    let o = bald(&["acquire", file.to_str().unwrap(), "--backend", "cuda"]);
    if bald_cuda::CudaBackend::new(0).is_err() {
        assert!(!o.status.success());
        assert!(stderr(&o).contains("--backend cuda"), "{}", stderr(&o));
    } else {
        assert!(o.status.success());
    }
}

#[test]
fn every_subcommand_has_help() {
    let mut all = vec![&["--help"][..], &["acquire", "--help"]];
    if cfg!(feature = "experiment") {
        all.push(&["experiment", "--help"]);
    }
    for args in all {
        let o = bald(args);
        assert!(o.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn argument_errors_keep_clap_hints_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let file = save(dir.path(), "p.npy", &[5, 2, 3], NpyData::F64(pool(5, 2, 3)));
    let f = file.to_str().unwrap();
    let o = bald(&["acquire", f, "--strategy", "bld"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("possible values: random, entropy, bald"),
        "{err}"
    );
    assert!(err.contains("a similar value exists: 'bald'"), "{err}");
    for (flag, want) in [("--batch-size", "0 or more"), ("--beta", "0 or more")] {
        let o = bald(&["acquire", f, flag, "-1"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(want), "{flag}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("unexpected argument"),
            "{}",
            stderr(&o)
        );
    }
}

/// `data` (N x K x C) with its first two or last two axes swapped.
fn transpose(data: &[f64], (n, k, c): (usize, usize, usize), knc: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(data.len());
    if knc {
        for j in 0..k {
            for i in 0..n {
                out.extend_from_slice(&data[(i * k + j) * c..(i * k + j + 1) * c]);
            }
        }
    } else {
        for i in 0..n {
            for l in 0..c {
                out.extend((0..k).map(|j| data[(i * k + j) * c + l]));
            }
        }
    }
    out
}

#[test]
fn layouts_and_the_warning_that_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (12, 5, 3);
    let lp = pool(n, k, c);
    let nkc = save(dir.path(), "nkc.npy", &[n, k, c], NpyData::F64(lp.clone()));
    let knc_data = transpose(&lp, (n, k, c), true);
    let knc = save(dir.path(), "knc.npy", &[k, n, c], NpyData::F64(knc_data));
    let nck_data = transpose(&lp, (n, k, c), false);
    let nck = save(dir.path(), "nck.npy", &[n, c, k], NpyData::F64(nck_data));
    let run = |file: &Path, layout: &str| {
        bald(&[
            "acquire",
            file.to_str().unwrap(),
            "--layout",
            layout,
            "--strategy",
            "bald",
            "--batch-size",
            "3",
            "--backend",
            "cpu",
        ])
    };
    let want = run(&nkc, "nkc");
    assert!(!stderr(&want).contains("warning"), "{}", stderr(&want));
    let want = json(&want);
    assert_eq!(
        (want["n"].as_u64(), want["k"].as_u64()),
        (Some(12), Some(5))
    );
    let from_knc = run(&knc, "knc");
    assert!(
        !stderr(&from_knc).contains("warning"),
        "{}",
        stderr(&from_knc)
    );
    let from_knc = json(&from_knc);
    assert_eq!(from_knc["indices"], want["indices"]);
    assert_eq!(from_knc["layout"], "knc");
    assert_eq!(json(&run(&nck, "nck"))["indices"], want["indices"]);
    // The K x N x C file read as N x K x C: N = 5 < K = 12, and the warning names the fix.
    let wrong = run(&knc, "nkc");
    assert!(
        stderr(&wrong).contains("--layout knc"),
        "{}",
        stderr(&wrong)
    );
    assert!(stderr(&wrong).contains("torch.stack"), "{}", stderr(&wrong));
}

#[test]
fn one_sample_and_num_samples_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let one = save(
        dir.path(),
        "k1.npy",
        &[6, 1, 3],
        NpyData::F64(pool(6, 1, 3)),
    );
    let f = one.to_str().unwrap();
    for strategy in ["bald", "batchbald", "mean-std", "power-bald"] {
        fails_with(&["acquire", f, "--strategy", strategy], "K >= 2");
        let o = bald(&["acquire", f, "--strategy", strategy]);
        assert!(!stderr(&o).contains(f), "the file is fine: {}", stderr(&o));
    }
    for strategy in ["entropy", "margin", "var-ratios", "random"] {
        json(&bald(&[
            "acquire",
            f,
            "--strategy",
            strategy,
            "--backend",
            "cpu",
        ]));
    }
    let six = save(
        dir.path(),
        "k6.npy",
        &[20, 6, 3],
        NpyData::F64(pool(20, 6, 3)),
    );
    let f = six.to_str().unwrap();
    fails_with(&["acquire", f, "--num-samples", "0"], "--num-samples");
    let o = bald(&[
        "acquire",
        f,
        "--num-samples",
        "2",
        "--batch-size",
        "4",
        "--backend",
        "cpu",
    ]);
    assert!(stderr(&o).contains("below K = 6"), "{}", stderr(&o));
    json(&o);
}

#[test]
fn input_kind_mistakes_get_the_fix_named() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (6, 3, 4);
    let lp = pool(n, k, c);
    let p = |name: &str, data: Vec<f64>| {
        save(dir.path(), name, &[n, k, c], NpyData::F64(data))
            .to_str()
            .unwrap()
            .to_string()
    };
    let probs = p("probs.npy", lp.iter().map(|v| v.exp()).collect());
    fails_with(&["acquire", &probs], "--input-kind probs");
    let logits = p("logits.npy", lp.iter().map(|v| v * 1.5 + 2.0).collect());
    fails_with(&["acquire", &logits], "--input-kind logits");
    // log-softmax in float16, saved as float32: just outside the tolerance.
    let rounded = save(
        dir.path(),
        "f16ish.npy",
        &[n, k, c],
        NpyData::F32(lp.iter().map(|v| (v + 0.002) as f32).collect()),
    );
    let rounded = rounded.to_str().unwrap();
    fails_with(&["acquire", rounded], "renormalises");
    let err = stderr(&bald(&["acquire", rounded]));
    assert!(
        err.contains("log sum exp = 0.002 (tolerance 0.0001)"),
        "{err}"
    );
    json(&bald(&[
        "acquire",
        rounded,
        "--input-kind",
        "logits",
        "--backend",
        "cpu",
    ]));
    fails_with(
        &["acquire", &logits, "--input-kind", "probs"],
        "--input-kind logits",
    );
}

#[test]
fn json_reports_the_run_and_each_picks_regime() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (30, 8, 4);
    let file = save(
        dir.path(),
        "p.npy",
        &[n, k, c],
        NpyData::F32(pool(n, k, c).iter().map(|&v| v as f32).collect()),
    );
    let args = [
        "acquire",
        file.to_str().unwrap(),
        "--batch-size",
        "4",
        "--num-samples",
        "20",
        "--seed",
        "7",
        "--backend",
        "cpu",
    ];
    let v = json(&bald(&args));
    for (key, want) in [
        ("n", 30),
        ("k", 8),
        ("c", 4),
        ("seed", 7),
        ("batch_size", 4),
        ("num_samples", 20),
        ("excluded", 0),
    ] {
        assert_eq!(v[key].as_u64(), Some(want), "{key}: {v}");
    }
    assert_eq!(v["input_kind"], "log-probs");
    assert_eq!(v["layout"], "nkc");
    assert!(v["read_seconds"].as_f64().unwrap() >= 0.0);
    assert!(v["prepare_seconds"].as_f64().unwrap() >= 0.0);
    // C^t <= 20 for t = 0, 1, 2 (1, 4, 16 rows); sampled from t = 3.
    assert_eq!(
        v["regimes"],
        serde_json::json!(["exact", "exact", "exact", "sampled"])
    );
    assert!((v["information_limit"]["ln_k"].as_f64().unwrap() - 8f64.ln()).abs() < 1e-12);
    // Lazy greedy (the default) evaluates at most N candidates a step; full evaluates N.
    assert_eq!(v["greedy"], "lazy");
    let lazy = v["evaluations"].as_array().unwrap();
    assert_eq!(lazy.len(), 4);
    assert!(
        lazy.iter().all(|e| (1..=30).contains(&e.as_u64().unwrap())),
        "{v}"
    );
    let full = json(&bald(&[&args[..], &["--greedy", "full"]].concat()));
    assert_eq!(full["greedy"], "full");
    assert_eq!(full["evaluations"], serde_json::json!([30, 30, 30, 30]));
    // The exact steps (t <= 2) pick the same; --greedy takes only lazy or full.
    assert_eq!(
        v["indices"].as_array().unwrap()[..3],
        full["indices"].as_array().unwrap()[..3]
    );
    let o = bald(&["acquire", file.to_str().unwrap(), "--greedy", "eager"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("possible values: lazy, full"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn past_limit_switches_stops_or_continues_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // K = 4 samples that disagree on many points: BatchBALD reaches ln 4 within a few picks.
    let (n, k, c) = (60, 4, 10);
    let data: Vec<f64> = pool(n, k, c).iter().map(|v| v * 2.0).collect();
    let data: Vec<f64> = data
        .chunks_exact(c)
        .flat_map(|row| {
            let lse = bald_core::log_sum_exp(row.iter().copied());
            row.iter().map(move |v| v - lse)
        })
        .collect();
    let file = save(dir.path(), "p.npy", &[n, k, c], NpyData::F64(data));
    let run = |mode: Option<&str>| {
        let mut args = vec![
            "acquire",
            file.to_str().unwrap(),
            "--batch-size",
            "20",
            "--backend",
            "cpu",
        ];
        if let Some(mode) = mode {
            args.extend(["--past-limit", mode]);
        }
        let o = bald(&args);
        (json(&o), stderr(&o))
    };
    let (go_on, err) = run(Some("continue"));
    let at = go_on["information_limit"]["reached_at_pick"]
        .as_u64()
        .unwrap() as usize;
    assert!((1..20).contains(&at), "{go_on}");
    assert!(
        err.contains(&format!("at pick {at} of 20")) && err.contains("--past-limit continue"),
        "{err}"
    );
    assert_eq!(
        go_on["past_limit"]["switched_after_pick"],
        serde_json::Value::Null
    );
    assert_eq!(go_on["indices"].as_array().unwrap().len(), 20);
    let greedy = &go_on["indices"].as_array().unwrap()[..at];

    let (stop, err) = run(Some("stop"));
    assert!(
        err.contains(&format!("stops there with {at} picks")),
        "{err}"
    );
    assert_eq!(stop["indices"].as_array().unwrap()[..], greedy[..]);
    assert_eq!(stop["past_limit"]["switched_after_pick"], at);

    let (power, err) = run(None);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "the other {} picks are drawn by PowerBALD",
            20 - at
        )),
        "{err}"
    );
    assert_eq!(power["past_limit"]["mode"], "power-bald");
    assert_eq!(power["past_limit"]["switched_after_pick"], at);
    let picks = power["indices"].as_array().unwrap();
    assert_eq!(picks.len(), 20);
    assert_eq!(picks[..at], greedy[..]);
    let distinct: std::collections::HashSet<u64> =
        picks.iter().map(|i| i.as_u64().unwrap()).collect();
    assert_eq!(distinct.len(), 20);
    let regimes = power["regimes"].as_array().unwrap();
    assert!(regimes[at..].iter().all(|r| r == "power-bald"), "{power}");
    assert!(regimes[..at].iter().all(|r| r == "exact" || r == "sampled"));
    assert_eq!(power["evaluations"].as_array().unwrap().len(), at);
    assert_eq!(power["standard_errors"].as_array().unwrap().len(), 20);
}

#[test]
fn outputs_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("out.json");
    // The pool does not even exist: the output's folder is what fails, first.
    for flag in ["--output", "--all-scores"] {
        fails_with(
            &["acquire", "absent.npy", flag, missing.to_str().unwrap()],
            flag,
        );
    }
    fails_with(
        &[
            "acquire",
            "absent.npy",
            "--output",
            dir.path().to_str().unwrap(),
        ],
        "is a folder",
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no file left behind"
    );
}

#[test]
fn batchbald_past_its_information_limit_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    // K = 2 samples that disagree completely on every point: one pick holds ln 2, all there is.
    let (n, k, c) = (6, 2, 2);
    let sure = (1.0f64 - 1e-12).ln();
    let data: Vec<f64> = (0..n)
        .flat_map(|_| [sure, f64::NEG_INFINITY, f64::NEG_INFINITY, sure])
        .collect();
    let file = save(dir.path(), "p.npy", &[n, k, c], NpyData::F64(data));
    let o = bald(&[
        "acquire",
        file.to_str().unwrap(),
        "--batch-size",
        "3",
        "--backend",
        "cpu",
    ]);
    let err = stderr(&o);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("ln K") && err.contains("power-bald"), "{err}");
    let v = json(&o);
    assert_eq!(v["information_limit"]["reached_at_pick"], 1);
}

#[test]
fn exclude_all_scores_and_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (25, 5, 3);
    let file = save(dir.path(), "p.npy", &[n, k, c], NpyData::F64(pool(n, k, c)));
    let f = file.to_str().unwrap();
    let text = dir.path().join("labelled.txt");
    std::fs::write(&text, "0, 3 5\n7\n").unwrap();
    // The same indices as a .npy of int64.
    let mut ints = write(&[4], &NpyData::F64(vec![0.0; 4]));
    let at = ints.windows(3).position(|w| w == b"<f8").unwrap();
    ints[at..at + 3].copy_from_slice(b"<i8");
    let data_at = ints.len() - 32;
    for (i, v) in [0i64, 3, 5, 7].iter().enumerate() {
        ints[data_at + 8 * i..data_at + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    let npy_file = dir.path().join("labelled.npy");
    std::fs::write(&npy_file, ints).unwrap();
    let excluded = [0u64, 3, 5, 7];
    for strategy in ["bald", "batchbald", "random", "power-bald", "entropy"] {
        for list in [&text, &npy_file] {
            let v = json(&bald(&[
                "acquire",
                f,
                "--strategy",
                strategy,
                "--batch-size",
                "30",
                "--exclude",
                list.to_str().unwrap(),
                "--backend",
                "cpu",
            ]));
            let idx: Vec<u64> = v["indices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            assert_eq!(idx.len(), n - 4, "{strategy}: clamped to the points left");
            assert!(
                idx.iter().all(|i| !excluded.contains(i)),
                "{strategy}: {idx:?}"
            );
            assert_eq!(v["excluded"], 4);
        }
    }
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1 99").unwrap();
    fails_with(
        &["acquire", f, "--exclude", bad.to_str().unwrap()],
        "index 99 is out of range",
    );
    std::fs::write(&bad, "0, 3 5\n7\n3\n").unwrap();
    fails_with(
        &["acquire", f, "--exclude", bad.to_str().unwrap()],
        "--exclude: index 3 is given twice",
    );

    // --all-scores: every point's BALD, whose top 3 are bald's picks.
    let all = dir.path().join("scores.npy");
    let v = json(&bald(&[
        "acquire",
        f,
        "--strategy",
        "bald",
        "--batch-size",
        "3",
        "--all-scores",
        all.to_str().unwrap(),
    ]));
    let scores = match bald::npy::parse(&std::fs::read(&all).unwrap())
        .unwrap()
        .data
    {
        NpyData::F64(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(scores.len(), n);
    for (pick, s) in v["indices"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["scores"].as_array().unwrap())
    {
        // serde_json parses floats to within an ulp or so.
        let (a, b) = (scores[pick.as_u64().unwrap() as usize], s.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-15 * a.abs(), "{a} vs {b}");
    }
    let bb_all = dir.path().join("bb.npy");
    json(&bald(&[
        "acquire",
        f,
        "--all-scores",
        bb_all.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read(&bb_all).unwrap(),
        std::fs::read(&all).unwrap(),
        "BatchBALD writes BALD"
    );

    // --verbose: one line per BatchBALD pick on stderr.
    let o = bald(&[
        "acquire",
        f,
        "--batch-size",
        "3",
        "--verbose",
        "--backend",
        "cpu",
    ]);
    let err = stderr(&o);
    for t in 1..=3 {
        assert!(err.contains(&format!("pick {t}/3: point ")), "{err}");
    }
    json(&o);
}

#[test]
fn epig_with_targets_and_its_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k, c) = (40, 6, 3);
    let lp = pool(n + 5, k, c);
    let file = save(
        dir.path(),
        "pool.npy",
        &[n, k, c],
        NpyData::F64(lp[..n * k * c].to_vec()),
    );
    let targets = save(
        dir.path(),
        "targets.npy",
        &[5, k, c],
        NpyData::F64(lp[n * k * c..].to_vec()),
    );
    let all = dir.path().join("all.npy");
    let (file, targets_file) = (file.to_str().unwrap(), targets.to_str().unwrap());
    let out = bald(&[
        "acquire",
        file,
        "--strategy",
        "epig",
        "--targets",
        targets_file,
        "--batch-size",
        "4",
        "--backend",
        "scalar",
        "--all-scores",
        all.to_str().unwrap(),
    ]);
    let v = json(&out);
    assert_eq!(v["targets"], 5);
    // Every point's EPIG, from the library; the picks are its top 4.
    let whole = bald::Pool::open(dir.path().join("pool.npy")).unwrap();
    let t = bald::Pool::open(&targets).unwrap();
    let want = bald::epig(&whole, &t, bald::Device::Scalar).unwrap();
    let got = bald::read_npy(&all).unwrap();
    assert_eq!(got.data, NpyData::F64(want.clone()));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
    let idx: Vec<usize> = v["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(idx, order[..4]);
    fails_with(
        &["acquire", file, "--strategy", "power-epig"],
        "--strategy power-epig needs --targets",
    );
    fails_with(
        &[
            "acquire",
            file,
            "--strategy",
            "bald",
            "--targets",
            targets_file,
        ],
        "--targets are for the EPIG strategies, not --strategy bald",
    );
    let other = save(
        dir.path(),
        "other.npy",
        &[5, k + 1, c],
        NpyData::F64(pool(5, k + 1, c)),
    );
    fails_with(
        &[
            "acquire",
            file,
            "--strategy",
            "epig",
            "--targets",
            other.to_str().unwrap(),
        ],
        "the targets are 5 x 7 x 3 (M x K x C) and the pool is 40 x 6 x 3",
    );
}
