//! The `bald` crate and the `bald` binary agree: the library's calls, as a Rust user writes
//! them, pick what `bald acquire` picks on the same file, on every backend this machine has
//! (CUDA under the emulation, or on a GPU).

use std::process::Command;

use bald::npy::{write, NpyData};
use bald::{Device, Kind, Pool, Settings, Strategy};
use bald_testing::skip;

/// N x K x C log-probs of pseudo-random logits, as float32.
fn pool(n: usize, k: usize, c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * k * c);
    for i in 0..n * k {
        let row: Vec<f64> = (0..c)
            .map(|j| (((i * 7919 + j * 104_729 + i * j * 31) % 1000) as f64 / 1000.0 - 0.5) * 5.0)
            .collect();
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|v| (v - lse) as f32));
    }
    out
}

/// The picks and scores of `bald acquire` with `args`.
fn cli(args: &[&str]) -> (Vec<usize>, Vec<f64>) {
    let out = Command::new(env!("CARGO_BIN_EXE_bald"))
        .args(args)
        .output()
        .expect("the bald binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let indices = doc["indices"].as_array().unwrap();
    let scores = doc["scores"].as_array().unwrap();
    (
        indices
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect(),
        scores.iter().map(|v| v.as_f64().unwrap()).collect(),
    )
}

#[test]
fn the_library_picks_what_the_cli_picks() {
    let (n, k, c) = (300, 12, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.npy");
    std::fs::write(&path, write(&[n, k, c], &NpyData::F32(pool(n, k, c)))).unwrap();
    let file = path.to_str().unwrap();
    let mut devices = vec![("scalar", Device::Scalar), ("cpu", Device::Cpu)];
    if bald::backends::CudaBackend::new(0).is_ok() {
        devices.push(("cuda", Device::Cuda(0)));
    } else {
        skip::skipped("the library against the CLI on CUDA: no usable GPU");
    }
    // EPIG's targets: the pool's first 20 points stand in for them.
    let targets_path = dir.path().join("targets.npy");
    let values = pool(n, k, c);
    let targets_values = NpyData::F32(values[..20 * k * c].to_vec());
    std::fs::write(&targets_path, write(&[20, k, c], &targets_values)).unwrap();
    let targets_file = targets_path.to_str().unwrap();
    let targets = Pool::open(&targets_path).unwrap();
    let pool = Pool::open(&path).unwrap();
    for (name, device) in devices {
        let prepared = pool.on(device).unwrap();
        assert_eq!(prepared.backend(), name);
        for kind in Kind::ALL {
            let settings = Settings {
                batch_size: 12,
                num_samples: 500,
                seed: 7,
                ..Settings::default()
            };
            let mut options = bald::Options::default();
            let mut args = vec![
                "acquire",
                file,
                "--strategy",
                kind.name(),
                "--batch-size",
                "12",
                "--num-samples",
                "500",
                "--seed",
                "7",
                "--backend",
                name,
            ];
            if kind.needs_targets() {
                options = options.targets(&targets);
                args.extend(["--targets", targets_file]);
            }
            let a = prepared
                .acquire_with(Strategy::new(kind, settings), options)
                .unwrap();
            let (indices, scores) = cli(&args);
            assert_eq!(a.indices, indices, "{name} {kind}");
            // JSON carries every digit of an f64; serde_json reads it back within an ulp.
            for (x, y) in a.scores.iter().zip(&scores) {
                assert!(
                    (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0),
                    "{name} {kind}"
                );
            }
        }
    }
    // The form, auto device included.
    let a = bald::acquire(
        &pool,
        Strategy::batchbald(10).num_samples(1000),
        Device::auto(),
    )
    .unwrap();
    let (indices, _) = cli(&["acquire", file, "--num-samples", "1000"]);
    assert_eq!(a.indices, indices);
}
