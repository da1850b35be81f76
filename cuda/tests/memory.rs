//! Device memory: `with_memory_limit` is a hard cap on everything the backend allocates, pools
//! streamed in chunks give the results of resident ones, and uploads make no host copy of
//! f16/bf16 pools.
//!
//! The emulation's `CUDAEMU_MEM_TOTAL` makes any allocation past it fail, and
//! `CUDAEMU_MEM_FREE` fixes what `cuMemGetInfo` reports; both are read once per process, so
//! the workload runs in child processes of this test binary, one per memory setting, and the
//! parent compares what they print. Needs a GPU (or the emulation); skipped without one.

use bald_testing::cases as common;
use bald_testing::skip;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;

use bald_core::half::f16;
use bald_core::owned::{batchbald, entropies, mc_dropout_forward, scores};
use bald_core::{Backend, BatchBald, LogProbs, McDropoutHead, PointScore, Shape};
use bald_cuda::CudaBackend;
use common::{random_pool, GalHead};
use serde_json::{json, Value};
use skip::skipped;

/// Counts the bytes this thread allocates.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only adds a per-thread counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Host bytes allocated by this thread while `f` runs.
fn host_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATED.with(Cell::get);
    let r = f();
    (r, ALLOCATED.with(Cell::get) - before)
}

const MODE: &str = "BALD_MEMORY_TEST_MODE";
/// The hard cap of the `cap` mode, and the emulated device's whole memory there.
const CAP: usize = 4_718_592;

/// The workload of one child: scores, entropies, BatchBALD in both regimes and Gal et al.'s
/// head, printed as one JSON line.
#[test]
fn child_workload() {
    let Ok(mode) = std::env::var(MODE) else {
        return; // run by memory_settings_give_identical_results
    };
    let gpu = CudaBackend::new(0).unwrap();
    let gpu = match mode.as_str() {
        "cap" => gpu.with_memory_limit(CAP),
        _ => gpu,
    };
    let shape = Shape::new(600, 20, 10);
    let data = random_pool(shape, 3);
    let lp = LogProbs::new(&data, shape).unwrap();
    let pool = gpu.prepare(lp).unwrap();
    let mut out = serde_json::Map::new();
    out.insert("resident_at_prepare".into(), json!(pool.is_resident()));
    for score in PointScore::ALL {
        out.insert(
            score.name().into(),
            json!(scores(&gpu, &pool, score).unwrap()),
        );
    }
    out.insert("entropies".into(), json!(entropies(&gpu, &pool).unwrap()));
    // Exact for 4 steps, then sampled with a joint of 5000 rows (1.6 MB of buffers); sampled
    // from step 3 with 200 rows.
    for (batch_size, num_samples) in [(5, 5000), (6, 200)] {
        let params = BatchBald {
            batch_size,
            num_samples,
            seed: 21,
            greedy: bald_core::Greedy::Lazy,
        };
        let b = batchbald(&gpu, &pool, params).unwrap();
        out.insert(
            format!("batchbald_{num_samples}"),
            json!([b.indices, b.scores]),
        );
    }
    out.insert("resident_at_end".into(), json!(pool.is_resident()));
    if mode != "small" {
        // Gal et al.'s head at K = 100: 3.6 MB of weights and masks, 118 KB per point.
        let gal = GalHead::new();
        let layers = gal.layers();
        let head = McDropoutHead::new(&layers).unwrap();
        let x = GalHead::features(8);
        let lp: Vec<f32> = mc_dropout_forward(&gpu, &head, &x, 8, 100, 4).unwrap();
        out.insert("forward".into(), json!(lp));
    }
    println!("RESULT {}", Value::Object(out));
}

/// Runs the workload in a child with `env`.
fn child(mode: &str, env: &[(&str, String)]) -> serde_json::Map<String, Value> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_workload",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(MODE, mode)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, json)| json))
        .unwrap_or_else(|| {
            panic!(
                "{mode}: no result\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    match serde_json::from_str(line).unwrap() {
        Value::Object(m) => m,
        other => panic!("{other}"),
    }
}

#[test]
fn memory_settings_give_identical_results() {
    let Ok(gpu) = CudaBackend::new(0) else {
        skipped("the memory tests pass without checking: no usable GPU");
        return;
    };
    // The CUDAEMU_* settings act on the emulation only; a real GPU checks the cap alone.
    let emulated = gpu.device_name().contains("cudaemu");
    drop(gpu);
    let resident = child("resident", &[]);
    assert_eq!(resident["resident_at_prepare"], true);
    assert_eq!(resident["resident_at_end"], true);
    // The cap as the device's whole memory (one byte past it fails the allocation) and a free
    // amount of 1 TB: only the cap limits the plans. The pool (480 KB) stays resident; Gal's
    // head (3.6 MB of weights and masks) runs beside it in chunks of points.
    let cap = child(
        "cap",
        &[
            ("CUDAEMU_MEM_TOTAL", CAP.to_string()),
            ("CUDAEMU_MEM_FREE", (1u64 << 40).to_string()),
        ],
    );
    // A device that holds the pool but not the BatchBALD joint beside it (90% of 2 MB is
    // used): BatchBALD evicts the pool and streams it from then on.
    let small = if emulated {
        child("small", &[("CUDAEMU_MEM_TOTAL", "2000000".into())])
    } else {
        resident.clone()
    };
    assert_eq!(small["resident_at_prepare"], true);
    assert_eq!(small["resident_at_end"], !emulated);
    assert_eq!(cap["resident_at_prepare"], true);
    for (name, value) in &resident {
        if name.starts_with("resident_") {
            continue;
        }
        assert_eq!(&cap[name], value, "cap: {name}");
        if name != "forward" {
            assert_eq!(&small[name], value, "small: {name}");
        }
    }
}

#[test]
fn half_pools_are_uploaded_without_a_host_copy() {
    let Ok(gpu) = CudaBackend::new(0) else {
        skipped("the memory tests pass without checking: no usable GPU");
        return;
    };
    // 4M values: 8 MB of f16, 32 MB of f64.
    let shape = Shape::new(40_000, 10, 10);
    let data = random_pool(shape, 5);
    let d16: Vec<f16> = data.iter().map(|&x| f16::from_f32(x)).collect();
    let lp = LogProbs::new(&d16, shape).unwrap();
    let (pool, bytes) = host_bytes(|| gpu.prepare(lp).unwrap());
    assert!(pool.is_resident());
    println!(
        "f16 pool of {} bytes: {bytes} host bytes allocated by prepare",
        d16.len() * 2
    );
    assert!(bytes < 64 * 1024, "{bytes} host bytes for an f16 pool");
    // f64 is rounded to f32 through a bounded staging buffer, not a whole copy (16 MB).
    let d64: Vec<f64> = data.iter().map(|&x| f64::from(x)).collect();
    let lp = LogProbs::new(&d64, shape).unwrap();
    let (_, bytes) = host_bytes(|| gpu.prepare(lp).unwrap());
    println!(
        "f64 pool of {} bytes: {bytes} host bytes allocated by prepare",
        d64.len() * 8
    );
    assert!(
        bytes <= (4 << 20) + 64 * 1024,
        "{bytes} host bytes for an f64 pool"
    );
}
