//! Stable replay of the fuzz targets (`fuzz/`): every committed corpus input and every past
//! crash (`fuzz/regressions/<target>/`), then a bounded random sweep. The bodies live in
//! `bald_testing::fuzzing`; a finding fails here exactly as it did under the fuzzer.

use std::path::PathBuf;

use bald_testing::fuzzing::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn corpus_and_past_crashes_replay() {
    for (target, body) in TARGETS {
        let corpus = inputs("corpus", target);
        let crashes = inputs("regressions", target);
        for (path, bytes) in corpus.iter().chain(&crashes) {
            let outcome = std::panic::catch_unwind(|| body(bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        }
        println!(
            "{target}: {} corpus inputs, {} past failures replayed",
            corpus.len(),
            crashes.len()
        );
    }
}

#[test]
fn random_sweep() {
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for (target, body) in TARGETS {
        let runs = if matches!(target, "npy" | "validation") {
            3000
        } else {
            300
        };
        for _ in 0..runs {
            let len = (next() % 400) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the npy inputs start like a real file, so the sweep gets past the magic.
            if target == "npy" && next() % 2 == 0 {
                let header =
                    b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4', 'fortran_order': False, 'shape': (";
                bytes.splice(0..0, header.iter().copied());
            }
            if std::panic::catch_unwind(|| body(&bytes)).is_err() {
                let path =
                    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{target}-failure"));
                std::fs::write(&path, &bytes).unwrap();
                panic!("{target}: a sweep input fails; saved to {}", path.display());
            }
        }
    }
}
