"""Side by side: batchbald_redux 2.0.5 (torch, CPU) vs bald-cpu-simd on the same inputs.

Run through compare/run.sh, which makes the virtualenv. Not run in CI.
Prints the median of REPEATS runs of: a BatchBALD batch of 10 (num_samples 1000, float32
input, N=10000, K=20, C=10) and BALD with entropy (N=60000, K=100, C=10; bald with and without
validating the input in the same pass), each with toma's per-chunk garbage collection as
shipped and switched off (the fair comparison). The ratios are each row's time over bald's.
"""
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported by batchbald_redux
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import toma
import batchbald_redux.batchbald as bb

REPEATS = int(os.environ.get("REPEATS", "3"))
OUT = sys.argv[1]
ROOT = sys.argv[2]


def pool(n, k, c, seed):
    """Tempered logits with per-sample noise through log_softmax, float32."""
    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.1), np.log(8), (n, 1, 1)))
    b = np.exp(rng.uniform(np.log(0.05), np.log(4), (n, 1, 1)))
    logits = a * rng.normal(size=(n, 1, c)) + b * rng.normal(size=(n, k, c))
    logits -= logits.max(axis=2, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    return lp.astype(np.float32)


def median_time(f):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def redux(kind, lp):
    t = torch.from_numpy(lp)
    if kind == "batchbald":
        return bb.get_batchbald_batch(t, 10, 1000, dtype=torch.double).indices
    return bb.get_bald_batch(t, 10).indices


shipped_gc = toma.gc_cuda
rows = []
for kind, shape, seed in [("batchbald", (10000, 20, 10), 1), ("bald", (60000, 100, 10), 2)]:
    lp = pool(*shape, seed)
    path = os.path.join(OUT, f"pool_{kind}.npy")
    np.save(path, lp)
    for gc_mode in ["as shipped", "gc off"]:
        toma.gc_cuda = shipped_gc if gc_mode == "as shipped" else (lambda: None)
        secs, picks = median_time(lambda: redux(kind, lp))
        rows.append({"impl": f"batchbald_redux 2.0.5 ({gc_mode})", "kind": kind, "median_s": secs, "picks": list(picks)})
        print(json.dumps(rows[-1]), flush=True)
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "-p", "bald-cpu-simd", "--example", "compare", "--", path, kind, str(REPEATS)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        rows.append(json.loads(line))
        print(line, flush=True)

print()
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
for kind in ["batchbald", "bald"]:
    ours = [r for r in rows if r["kind"] == kind and r["impl"].startswith("bald-cpu-simd")]
    for r in rows:
        if r["kind"] == kind:
            ratios = "  ".join(f"x{r['median_s'] / o['median_s']:.1f}" for o in ours)
            print(f"{kind:10} {r['impl']:55} {r['median_s']:9.4f} s  {ratios}")
