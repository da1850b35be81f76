//! `bald experiment` as a user runs it: tiny runs, their outputs, a user's IDX data, every
//! argument mistake, and Ctrl-C.

use bald_testing::skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bald"))
        .args(args)
        .output()
        .expect("the bald binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Tiny training settings.
const FAST: [&str; 8] = [
    "--k",
    "4",
    "--epoch-samples",
    "128",
    "--max-epochs",
    "2",
    "--backend",
    "cpu",
];

/// The pool as it is, 10 labels a round, where a test does not say: not the default run's
/// repeated pool and batches of 20.
const PLAIN: [&str; 4] = ["--repeated", "1", "--acquire", "10"];

fn experiment(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["experiment", "--output", out.to_str().unwrap()];
    args.extend_from_slice(&FAST);
    for pair in PLAIN.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    args.extend_from_slice(extra);
    bald(&args)
}

/// (strategy, seed, labels, accuracy) rows of curves.csv.
fn rows(out: &Path) -> Vec<(String, u64, usize, f64)> {
    let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("strategy,seed,labels,accuracy,round_seconds")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// `--model cnn` on every backend: the head's K MC samples (bald-core's head on the backend,
/// the trunk on the CPU) give pools within the head's budget of the CPU backend's, the same
/// picks and the same curves (accuracies within one of the 60 test images). CUDA when a device
/// (or CI's emulation) is there.
#[test]
fn the_cnn_agrees_across_backends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    idx_subset(
        &data,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        3,
        300,
    );
    let run = |backend: &str| {
        let out = dir.path().join(backend);
        let pools = dir.path().join(format!("pools-{backend}"));
        let o = bald(&[
            "experiment",
            "--output",
            out.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--model",
            "cnn",
            "--strategies",
            "bald",
            "--budget",
            "16",
            "--acquire",
            "10",
            "--test-per-class",
            "20",
            "--k",
            "4",
            "--max-epochs",
            "2",
            "--backend",
            backend,
            "--save-pools",
            pools.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let saved = |ext: &str| std::fs::read(pools.join(format!("bald-seed0-round000.{ext}")));
        let npy = bald::npy::parse(&saved("npy").unwrap()).unwrap();
        let bald::npy::NpyData::F32(lp) = npy.data else {
            panic!("the saved pool is float32")
        };
        let facts: serde_json::Value = serde_json::from_slice(&saved("json").unwrap()).unwrap();
        (rows(&out), lp, facts["picks"].clone())
    };
    let (rows_cpu, lp_cpu, picks_cpu) = run("cpu");
    let mut backends = vec!["scalar"];
    if bald_cuda::CudaBackend::new(0).is_ok() {
        backends.push("cuda");
    } else {
        skip::skipped("the CNN experiment on CUDA: no usable GPU");
    }
    for backend in backends {
        let (rows, lp, picks) = run(backend);
        assert_eq!(lp.len(), lp_cpu.len(), "{backend}");
        let worst = lp
            .iter()
            .zip(&lp_cpu)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{backend}: pools differ by {worst}");
        assert_eq!(picks, picks_cpu, "{backend}");
        assert_eq!(rows.len(), rows_cpu.len(), "{backend}");
        for (a, b) in rows.iter().zip(&rows_cpu) {
            assert_eq!(a.2, b.2, "{backend}");
            assert!(
                (a.3 - b.3).abs() < 1.5 / 60.0,
                "{backend}: {a:?} against {b:?}"
            );
        }
    }
}

#[test]
fn experiment_has_help() {
    let o = bald(&["experiment", "--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
}

#[test]
fn presets_are_listed_fill_the_arguments_and_give_way_to_the_users() {
    let o = bald(&["experiment", "--list-presets"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    for name in ["batchbald-repeated", "gal2017", "gal2017-deterministic"] {
        assert!(list.contains(&format!("{name}: ")), "{list}");
    }
    let o = bald(&["experiment", "--preset", "gal2018"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown preset 'gal2018'"),
        "{}",
        stderr(&o)
    );
    // The preset's strategies and repetition, the user's budget: 2 rounds of each strategy.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let preset = ["--preset", "batchbald-repeated", "--budget", "60"];
    let o = bald(&[&["experiment", "--output", out][..], &FAST, &preset].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("Repeated-MNIST-5k (R = 3)"), "{table}");
    assert!(table.contains("labels to 87%"), "{table}");
    assert!(table.contains("20 per round, budget 60"), "{table}");
    let strategies: std::collections::BTreeSet<String> =
        rows(dir.path()).into_iter().map(|r| r.0).collect();
    assert_eq!(
        strategies.into_iter().collect::<Vec<_>>(),
        ["bald", "batchbald", "random"]
    );
}

#[test]
fn a_tiny_experiment_writes_sane_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let o = experiment(
        &out,
        &[
            "--strategies",
            "random,bald,batchbald",
            "--budget",
            "40",
            "--seeds",
            "2",
            "--thresholds",
            "0.3,0.99",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(stdout.starts_with(&table), "{stdout}");
    assert!(
        stdout.contains(" reached 30% test accuracy with 20 labels; ")
            && stdout.contains("(medians of 2 seeds)."),
        "one sentence read from the table: {stdout}"
    );
    assert!(
        stdout.ends_with(&format!(
            "The learning curves: {} (curves.csv and table.md beside it).\n",
            out.join("curves.svg").display()
        )),
        "the plot is named last: {stdout}"
    );
    for s in [
        "random",
        "bald",
        "batchbald",
        "labels to 30%",
        "labels to 99%",
        "> 40",
        "(-, -)",
        "10 classes",
    ] {
        assert!(table.contains(s), "table lacks {s}: {table}");
    }
    let rows = rows(&out);
    // 20, 30, 40 labels for each of 3 strategies and 2 seeds.
    assert_eq!(rows.len(), 18);
    for r in &rows {
        assert!((0.0..=1.0).contains(&r.3));
        assert!([20, 30, 40].contains(&r.2));
        assert!(r.1 < 2);
    }
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert!(svg.contains("<polygon"), "a band across seeds");
    assert!(svg.contains("stroke-dasharray"), "threshold lines");

    // Seed 1 alone, from --first-seed, gives seed 1's curves of the run above.
    let alone = dir.path().join("alone");
    let o = experiment(
        &alone,
        &[
            "--strategies",
            "random,bald,batchbald",
            "--budget",
            "40",
            "--first-seed",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let seed1: Vec<_> = rows.iter().filter(|r| r.1 == 1).cloned().collect();
    assert_eq!(crate::rows(&alone), seed1);
    let table = std::fs::read_to_string(alone.join("table.md")).unwrap();
    assert!(table.contains("1 seed(s) from seed 1"), "{table}");

    // --from-curves puts the two runs back together: seed 0 taken from the first run's file,
    // then merged with the run of seed 1 alone, gives the first run's curves and plot.
    let from = |out: &Path, files: &[&PathBuf], seeds: &str| {
        let files: Vec<String> = files
            .iter()
            .map(|f| f.join("curves.csv").display().to_string())
            .collect();
        experiment(
            out,
            &[
                "--strategies",
                "random,bald,batchbald",
                "--budget",
                "40",
                "--thresholds",
                "0.3,0.99",
                "--seeds",
                seeds,
                "--from-curves",
                &files.join(","),
            ],
        )
    };
    let seed0 = dir.path().join("seed0");
    let o = from(&seed0, &[&out], "1");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(crate::rows(&seed0).iter().all(|r| r.1 == 0));
    let merged = dir.path().join("merged");
    let o = from(&merged, &[&seed0, &alone], "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    // The same rows (their seconds are each run's own).
    assert_eq!(crate::rows(&merged), crate::rows(&out));
    assert_eq!(text(&merged, "curves.svg"), svg);
    // The table's rows agree up to the final accuracy (its times are from 4-decimal seconds).
    let cells = |t: String| -> Vec<Vec<String>> {
        t.lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.split('|').take(5).map(str::to_string).collect())
            .collect()
    };
    assert_eq!(
        cells(text(&merged, "table.md")),
        cells(text(&out, "table.md"))
    );
    // A curve twice, or missing, is a one-line error.
    for (files, seeds, want) in [
        (&[&out, &alone][..], "2", "random seed 1 is in"),
        (&[&alone][..], "2", "no curve of random seed 0"),
    ] {
        let o = from(&dir.path().join("bad"), files, seeds);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    }
}

/// `--model cnn`: Gal et al.'s CNN, its trunk once per image and its head on the backend; the
/// saved pools say which model made them.
#[test]
fn the_cnn_runs_rounds_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let pools = dir.path().join("pools");
    let o = experiment(
        &out,
        &[
            "--model",
            "cnn",
            "--strategies",
            "bald,batchbald",
            "--budget",
            "30",
            "--save-pools",
            pools.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("with the CNN"), "{table}");
    let rows = rows(&out);
    assert_eq!(rows.len(), 4, "20 and 30 labels for 2 strategies");
    assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r.3)));
    let facts = std::fs::read_to_string(pools.join("bald-seed0-round000.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&facts).unwrap();
    assert_eq!(facts["model"]["kind"], "cnn");
    assert_eq!(facts["k"], 4);
}

#[test]
fn saved_pools_reproduce_each_rounds_picks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let pools = dir.path().join("pools");
    let pools_arg = pools.to_str().unwrap();
    let o = experiment(
        &out,
        &[
            "--strategies",
            "batchbald,bald",
            "--budget",
            "40",
            "--save-pools",
            pools_arg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Rounds 0 and 1 acquire (20 and 30 labels); round 2 (40) ends the run.
    for strategy in ["batchbald", "bald"] {
        for round in 0..2 {
            let stem = pools.join(format!("{strategy}-seed0-round{round:03}"));
            let facts: serde_json::Value =
                serde_json::from_slice(&std::fs::read(stem.with_extension("json")).unwrap())
                    .unwrap();
            assert_eq!(facts["round"], round);
            assert_eq!(facts["labelled"], 20 + 10 * round);
            assert_eq!(facts["strategy"], strategy);
            assert_eq!(facts["model"]["kind"], "mlp");
            let (n, k, c) = (facts["n"].as_u64().unwrap() as usize, 4, 10);
            assert_eq!(facts["pool_indices"].as_array().unwrap().len(), n);
            assert_eq!(
                (facts["k"].as_u64(), facts["c"].as_u64()),
                (Some(4), Some(10))
            );
            let npy = stem.with_extension("npy");
            let bytes = std::fs::read(&npy).unwrap();
            let header = String::from_utf8_lossy(&bytes[10..128]);
            assert!(header.contains("'<f4'") && header.contains(&format!("({n}, {k}, {c})")));
            // `bald acquire` with the saved parameters picks what the round picked.
            let acq = &facts["acquire"];
            let again = bald(&[
                "acquire",
                npy.to_str().unwrap(),
                "--strategy",
                strategy,
                "--seed",
                &acq["seed"].to_string(),
                "--num-samples",
                &acq["num_samples"].to_string(),
                "--batch-size",
                &acq["batch_size"].to_string(),
                "--past-limit",
                acq["past_limit"].as_str().unwrap(),
                "--backend",
                "cpu",
            ]);
            assert!(again.status.success(), "{}", stderr(&again));
            let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            assert_eq!(v["indices"], facts["picks"], "{strategy} round {round}");
        }
        assert!(!pools
            .join(format!("{strategy}-seed0-round002.npy"))
            .exists());
    }
}

/// The EPIG strategies in the redundant set-up: each round draws its targets, the saved pools
/// hold them, and `bald acquire --targets` on a saved pool picks what the round picked.
#[test]
fn epig_rounds_draw_targets_that_the_saved_pools_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let pools = dir.path().join("pools");
    let o = experiment(
        &out,
        &[
            "--strategies",
            "epig,batch-epig",
            "--setup",
            "redundant",
            "--targets",
            "20",
            "--budget",
            "40",
            "--save-pools",
            pools.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("set-up redundant"), "{table}");
    assert!(table.contains("EPIG against 20 target inputs"), "{table}");
    let mut drawn = vec![];
    for strategy in ["epig", "batch-epig"] {
        for round in 0..2 {
            let stem = pools.join(format!("{strategy}-seed0-round{round:03}"));
            let facts: serde_json::Value =
                serde_json::from_slice(&std::fs::read(stem.with_extension("json")).unwrap())
                    .unwrap();
            assert_eq!(facts["setup"], "redundant");
            assert_eq!(facts["targets"], 20);
            let targets = stem.with_extension("targets.npy");
            let bytes = std::fs::read(&targets).unwrap();
            assert!(String::from_utf8_lossy(&bytes[10..128]).contains("(20, 4, 10)"));
            drawn.push(bytes);
            let acq = &facts["acquire"];
            let again = bald(&[
                "acquire",
                stem.with_extension("npy").to_str().unwrap(),
                "--strategy",
                strategy,
                "--targets",
                targets.to_str().unwrap(),
                "--seed",
                &acq["seed"].to_string(),
                "--num-samples",
                &acq["num_samples"].to_string(),
                "--batch-size",
                &acq["batch_size"].to_string(),
                "--backend",
                "cpu",
            ]);
            assert!(again.status.success(), "{}", stderr(&again));
            let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            assert_eq!(v["indices"], facts["picks"], "{strategy} round {round}");
        }
    }
    assert_ne!(drawn[0], drawn[1], "a fresh draw of targets each round");
}

/// `--pool-subset` scores a random subset of the pool each round, `--deterministic` one
/// forward pass without dropout: the saved pools show both (N = the subset, K = 1), the picks
/// are in the subset, no image is labelled twice, and `bald acquire` on a saved pool picks the
/// same.
#[test]
fn pool_subsets_and_deterministic_acquisition() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let pools = dir.path().join("pools");
    let o = experiment(
        &out,
        &[
            "--strategies",
            "entropy,var-ratios",
            "--budget",
            "50",
            "--pool-subset",
            "200",
            "--deterministic",
            "--save-pools",
            pools.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("scoring 200 random pool images"), "{table}");
    assert!(table.contains("--deterministic"), "{table}");
    for strategy in ["entropy", "var-ratios"] {
        let mut subsets = Vec::new();
        let mut labelled = std::collections::HashSet::new();
        for round in 0..3 {
            let stem = pools.join(format!("{strategy}-seed0-round{round:03}"));
            let facts: serde_json::Value =
                serde_json::from_slice(&std::fs::read(stem.with_extension("json")).unwrap())
                    .unwrap();
            assert_eq!(
                (facts["n"].as_u64(), facts["k"].as_u64()),
                (Some(200), Some(1))
            );
            assert_eq!(facts["deterministic"], true);
            assert_eq!(facts["pool_subset"], 200);
            let subset: Vec<u64> = facts["pool_indices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let distinct: std::collections::HashSet<_> = subset.iter().collect();
            assert_eq!(distinct.len(), 200);
            for p in facts["picks"].as_array().unwrap() {
                let image = subset[p.as_u64().unwrap() as usize];
                assert!(labelled.insert(image), "{image} labelled twice");
            }
            subsets.push(subset);
            let npy = stem.with_extension("npy");
            let again = bald(&[
                "acquire",
                npy.to_str().unwrap(),
                "--strategy",
                strategy,
                "--batch-size",
                "10",
                "--backend",
                "cpu",
            ]);
            assert!(again.status.success(), "{}", stderr(&again));
            let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            assert_eq!(v["indices"], facts["picks"], "{strategy} round {round}");
        }
        assert_ne!(subsets[0], subsets[1], "a fresh subset each round");
    }
}

#[test]
fn argument_mistakes_are_one_line_errors_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let o = out.to_str().unwrap();
    for (args, want) in [
        (
            &["--initial-per-class", "0", "--budget", "30"][..],
            "--initial-per-class must be at least 1",
        ),
        (&["--max-epochs", "0"], "--max-epochs must be at least 1"),
        (&["--budget", "10"], "below the 20 initial labels"),
        (&["--strategies", "bald,bald"], "lists bald twice"),
        (
            &["--strategies", "random,epig", "--targets", "0"],
            "--strategies epig needs --targets 1 or more",
        ),
        (&["--k", "1", "--strategies", "random,bald"], "--k 2"),
        (&["--thresholds", "0.9,1.5"], "--thresholds"),
        (&["--input-dropout", "1"], "--input-dropout"),
        (&["--data", "/no/such/folder"], "no such file or folder"),
        (&["--pool-subset", "0"], "--pool-subset must be at least 1"),
        (
            &["--first-seed", "18446744073709551615", "--seeds", "2"],
            "--first-seed + --seeds - 1 must fit",
        ),
        (
            &["--deterministic", "--strategies", "entropy,bald"],
            "bald needs MC",
        ),
        (
            &["--deterministic", "--strategies", "var-ratios-mode"],
            "is var-ratios",
        ),
    ] {
        let mut all = vec!["experiment", "--output", o];
        all.extend_from_slice(args);
        let r = bald(&all);
        assert!(!r.status.success(), "{args:?}");
        let err = stderr(&r);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let r = bald(&["experiment", "--acquire", "-3"]);
    assert!(stderr(&r).contains("0 or more"), "{}", stderr(&r));
    // A bad output folder fails at once, before any training.
    let start = Instant::now();
    let r = bald(&["experiment", "--output", "/proc/nope/exp"]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("/proc/nope"), "{}", stderr(&r));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "failed late: {:?}",
        start.elapsed()
    );
}

/// K = 4 holds at most ln 4 nats, which BatchBALD's batches of 20 reach once the model has
/// trained a little: the warning in full the first time, when it applies, the later rounds'
/// counted at the end.
#[test]
fn a_repeated_warning_is_given_once_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    #[rustfmt::skip]
    let o = bald(&[
        "experiment", "--output", out.to_str().unwrap(), "--k", "4", "--epoch-samples", "512",
        "--max-epochs", "5", "--backend", "cpu", "--repeated", "1", "--acquire", "20",
        "--strategies", "batchbald", "--budget", "140",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Which rounds reach it depends on training, whose floats depend on the CPU.
    let err = stderr(&o);
    assert_eq!(
        err.matches("BatchBALD reached ln K = 1.3863 nats").count(),
        1,
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    let more = last
        .strip_prefix("bald: warning: batchbald: the same warning in ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(matches!(more, Some(1..=5)), "{err}");
}

#[test]
fn no_validation_trains_for_max_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let o = experiment(
        &out,
        &[
            "--validation",
            "0",
            "--strategies",
            "random",
            "--budget",
            "20",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let acc = rows(&out)[0].3;
    // Untrained weights give chance (about 0.1); two epochs on 20 labels do much better.
    assert!(acc > 0.3, "accuracy {acc}");
}

/// Writes IDX files holding the embedded MNIST-5k's images of `classes` only, `limit` of
/// them evenly spaced (the data is in class order).
fn idx_subset(dir: &Path, images: &str, labels: &str, classes: u8, limit: usize) {
    use std::io::Read;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiment/data");
    let gunzip = |name: &str| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(data.join(name)).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let (img, lab) = (
        gunzip("mnist5k-images-idx3-ubyte.gz"),
        gunzip("mnist5k-labels-idx1-ubyte.gz"),
    );
    let all: Vec<usize> = (0..5000).filter(|&i| lab[8 + i] < classes).collect();
    let keep: Vec<usize> = all
        .iter()
        .copied()
        .step_by((all.len() / limit).max(1))
        .take(limit)
        .collect();
    let n = (keep.len() as u32).to_be_bytes();
    let mut new_img = img[..16].to_vec();
    new_img[4..8].copy_from_slice(&n);
    let mut new_lab = lab[..8].to_vec();
    new_lab[4..8].copy_from_slice(&n);
    for &i in &keep {
        new_img.extend_from_slice(&img[16 + 784 * i..16 + 784 * (i + 1)]);
        new_lab.push(lab[8 + i]);
    }
    std::fs::write(dir.join(images), new_img).unwrap();
    std::fs::write(dir.join(labels), new_lab).unwrap();
}

#[test]
fn experiment_reads_a_users_idx_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiment/data");
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
    let small = [
        "--strategies",
        "entropy",
        "--budget",
        "30",
        "--repeated",
        "2",
    ];
    let mut args = vec!["--mnist-dir", dir.path().to_str().unwrap()];
    args.extend_from_slice(&small);
    let o = experiment(&out, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("IDX data from"), "{table}");
    assert!(!table.contains("MNIST"), "{table}");

    // Kaggle's names, uncompressed, three classes, named by the images file itself.
    let kaggle = tempfile::tempdir().unwrap();
    idx_subset(
        kaggle.path(),
        "train-images.idx3-ubyte",
        "train-labels.idx1-ubyte",
        3,
        5000,
    );
    // A test set of its own, whole: 37 images, so every accuracy is a multiple of 1/37.
    idx_subset(
        kaggle.path(),
        "t10k-images.idx3-ubyte",
        "t10k-labels.idx1-ubyte",
        3,
        37,
    );
    for path in [
        kaggle.path().to_path_buf(),
        kaggle.path().join("train-images.idx3-ubyte"),
    ] {
        let o = experiment(
            &out,
            &[
                "--data",
                path.to_str().unwrap(),
                "--strategies",
                "bald",
                "--budget",
                "12",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(table.contains("3 classes"), "{table}");
        assert!(table.contains("6 initial labels"), "{table}");
        assert!(table.contains("test set: the 37 images of"), "{table}");
        for r in rows(&out) {
            let hits = r.3 * 37.0;
            assert!((hits - hits.round()).abs() < 1e-9, "{r:?}");
        }
    }
    // A test set of other classes than the training data's is refused.
    idx_subset(
        kaggle.path(),
        "t10k-images.idx3-ubyte",
        "t10k-labels.idx1-ubyte",
        4,
        2000,
    );
    let o = experiment(&out, &["--data", kaggle.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("in 4 classes"), "{}", stderr(&o));
    let missing = bald(&["experiment", "--data", out.to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("train-images-idx3-ubyte"),
        "{}",
        stderr(&missing)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_the_rounds_done_and_writes_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let mut args = vec![
        "experiment",
        "--output",
        out.to_str().unwrap(),
        "--strategies",
        "random",
        "--budget",
        "2000",
    ];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(&PLAIN);
    let child = Command::new(env!("CARGO_BIN_EXE_bald"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let csv = out.join("curves.csv");
    let lines = || {
        std::fs::read_to_string(&csv)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let start = Instant::now();
    while lines() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no rounds logged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let done = lines() - 1;
    assert!((2..200).contains(&done), "{done} rounds");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| random |"), "{table}");
    assert!(out.join("curves.svg").exists());
}
