"""Timing of bald's Python API (a benchmark script, not a test): `python python/bench.py`.

1. The Python call's overhead: `bald.acquire(x, "bald", 10)` on a 60000 x 100 x 10 float32
   pool, wall time of the call against the Rust compute time it reports (`seconds`:
   validation in the scoring pass, BALD, top 10). The target is under 5%.
2. Beside batchbald_redux 2.0.5 on torch (CPU, toma's gc off), when both are installed, on
   the inputs of `cpu-simd/compare/compare.py`: BALD on that pool, and a BatchBALD batch of 10
   (num_samples 1000) from 10000 x 20 x 10.

Prints the median of REPEATS (default 5) runs of each.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, List, Tuple

os.environ.setdefault("TQDM_DISABLE", "1")  # before batchbald_redux imports tqdm

import numpy as np

import bald

REPEATS = int(os.environ.get("REPEATS", "5"))


def pool(n: int, k: int, c: int, seed: int) -> np.ndarray:
    """Tempered logits with per-sample noise through log_softmax, float32 (compare.py's)."""
    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.1), np.log(8), (n, 1, 1)))
    b = np.exp(rng.uniform(np.log(0.05), np.log(4), (n, 1, 1)))
    logits = a * rng.normal(size=(n, 1, c)) + b * rng.normal(size=(n, k, c))
    logits -= logits.max(axis=2, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    return lp.astype(np.float32)


def median(f: Callable[[], Any]) -> Tuple[float, Any]:
    times: List[float] = []
    result = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    big = pool(60000, 100, 10, 2)
    bald.acquire(big, "bald", 10, backend="cpu")  # warm-up: threads, pages
    walls, rusts = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        r = bald.acquire(big, "bald", 10, backend="cpu")
        walls.append(time.perf_counter() - start)
        rusts.append(r.seconds)
    wall, rust = statistics.median(walls), statistics.median(rusts)
    print(f"BALD 60000x100x10 f32, backend {r.backend}: Python call {wall * 1e3:.2f} ms, "
          f"Rust compute {rust * 1e3:.2f} ms, overhead {100 * (wall - rust) / rust:.1f}%")
    try:
        import toma
        import torch
        import batchbald_redux.batchbald as bb
    except ImportError as e:
        print(f"batchbald_redux comparison skipped: {e}")
        return
    toma.gc_cuda = lambda: None  # the fair comparison: toma's per-chunk gc off
    t_big = torch.from_numpy(big)
    ours, picks = median(lambda: bald.acquire(big, "bald", 10, backend="cpu").indices.tolist())
    theirs, redux_picks = median(lambda: bb.get_bald_batch(t_big, 10).indices)
    print(f"BALD 60000x100x10: bald {ours:.4f} s, batchbald_redux {theirs:.4f} s "
          f"(x{theirs / ours:.1f}), same picks: {picks == redux_picks}")
    small = pool(10000, 20, 10, 1)
    t_small = torch.from_numpy(small)
    times = {}
    for greedy in ["lazy", "full"]:
        times[greedy], picks = median(lambda: bald.acquire(
            small, "batchbald", 10, num_samples=1000, backend="cpu", greedy=greedy).indices.tolist())
    theirs, redux_picks = median(
        lambda: bb.get_batchbald_batch(t_small, 10, 1000, dtype=torch.double).indices)
    print(f"BatchBALD 10000x20x10 batch 10, num_samples 1000: bald lazy {times['lazy']:.3f} s, "
          f"full {times['full']:.3f} s, batchbald_redux {theirs:.3f} s (x{theirs / times['lazy']:.0f} "
          f"and x{theirs / times['full']:.0f}); first 4 picks (exact regime) equal: "
          f"{picks[:4] == redux_picks[:4]}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
