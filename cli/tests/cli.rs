//! The `bald` binary as a user runs it: `acquire` on small `.npy` pools of each dtype with each
//! strategy, every bad-input class, and `experiment` with tiny settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bald_cli::npy::{write, NpyData};
use bald_core::half::f16;

const STRATEGIES: [&str; 10] = [
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
        println!("CUDA not checked: no usable GPU");
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
    for file in &files {
        for strategy in STRATEGIES {
            for backend in backends() {
                let out = bald(&[
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
                ]);
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
                assert!(["scalar", "cpu-simd", "cuda"].contains(&name), "{name}");
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
    fails_with(&["acquire", &p("ok.npy"), "--strategy", "magic"], "magic");
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
    for args in [
        &["--help"][..],
        &["acquire", "--help"],
        &["experiment", "--help"],
    ] {
        let o = bald(args);
        assert!(o.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn a_tiny_experiment_writes_sane_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let o = bald(&[
        "experiment",
        "--strategies",
        "random,bald,batchbald",
        "--budget",
        "40",
        "--acquire",
        "10",
        "--k",
        "4",
        "--epoch-samples",
        "128",
        "--max-epochs",
        "2",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for s in ["random", "bald", "batchbald", "labels to 90%"] {
        assert!(table.contains(s), "table lacks {s}: {table}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("table.md")).unwrap(),
        table
    );
    let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("strategy,seed,labels,accuracy"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    // 20, 30, 40 labels for each of 3 strategies.
    assert_eq!(rows.len(), 9);
    for r in &rows {
        let acc: f64 = r[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(["20", "30", "40"].contains(&r[2].as_str()));
    }
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
}

#[test]
fn experiment_reads_a_users_mnist_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    std::fs::copy(
        data.join("mnist5k-images-idx3-ubyte.gz"),
        dir.path().join("train-images-idx3-ubyte.gz"),
    )
    .unwrap();
    std::fs::copy(
        data.join("mnist5k-labels-idx1-ubyte.gz"),
        dir.path().join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let out = dir.path().join("exp");
    let o = bald(&[
        "experiment",
        "--mnist-dir",
        dir.path().to_str().unwrap(),
        "--strategies",
        "entropy",
        "--budget",
        "30",
        "--k",
        "3",
        "--epoch-samples",
        "64",
        "--max-epochs",
        "1",
        "--repeated",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("Repeated-MNIST from"), "{table}");
    let missing = bald(&[
        "experiment",
        "--mnist-dir",
        out.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("train-images-idx3-ubyte"),
        "{}",
        stderr(&missing)
    );
}
