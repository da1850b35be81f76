"""Greedy BatchBALD steps on a pool sharded over Ray actors, against the same pool in process,
Ray's own cost per step, and how many steps needed the merge of every shard's evaluations
(BENCHMARKS.md, "Across a Ray cluster").

    RAY_USAGE_STATS_ENABLED=0 python python/benchmarks/ray_shards.py [N] [REPEATS]

The pool is MC-dropout-like: each point has its own class means and scale, and each of the K
samples perturbs them (not uniform noise, where every point looks alike). A step's time is the
mean of steps 2 to 10 of a batch of 10 (the first step evaluates many more candidates than
the others): in process, (T(10) - T(1)) / 9 from whole runs; over shards, from the times at
which the driver records each pick.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Dict, List

import numpy as np
import ray

import bald
import bald.ray

K, C, BATCH, NUM_SAMPLES = 20, 10, 10, 1000


def mc_pool(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, K, C), dtype=np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        scale = rng.uniform(1.0, 7.0, size=(b - a, 1, 1)).astype(np.float32)
        means = rng.uniform(-2.0, 2.0, size=(b - a, 1, C)).astype(np.float32)
        x = scale * (means + rng.uniform(-1.0, 1.0, size=(b - a, K, C)).astype(np.float32))
        x -= x.max(axis=-1, keepdims=True)
        out[a:b] = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    return out


def best(f: Callable[[], float], repeats: int) -> float:
    return min(f() for _ in range(repeats))


def in_process_step(lp: np.ndarray, repeats: int) -> float:
    def run(b: int) -> float:
        t = time.perf_counter()
        bald.acquire(
            lp,
            "batchbald",
            b,
            num_samples=NUM_SAMPLES,
            backend="cpu",
            past_limit="continue",
            progress=False,
        )
        return time.perf_counter() - t

    return (best(lambda: run(BATCH), repeats) - best(lambda: run(1), repeats)) / (BATCH - 1)


def sharded_step(refs: List[Any], repeats: int) -> float:
    def run() -> float:
        times: List[float] = []
        bald.ray.acquire(
            refs,
            "batchbald",
            BATCH,
            num_samples=NUM_SAMPLES,
            past_limit="continue",
            progress=False,
            on_pick=lambda done, total: times.append(time.perf_counter()),
        )
        return (times[-1] - times[0]) / (BATCH - 1)

    return best(run, repeats)


@ray.remote(num_cpus=0)
class _Echo:
    """A shard that computes nothing: the driver's calls alone."""

    def propose(self) -> Any:
        # A proposal: its best, the best's point and conditional entropy, previous, widening,
        # evaluations.
        return ((1.0, 0, 0.5), (np.zeros(K * C), 0.0), 0.0, 0.0, 1)

    def advance(self, keep: Any, pick: Any, remote: Any) -> Any:
        return self.propose()


def overhead(actors: int, steps: int = 200) -> float:
    """Seconds per step of the driver's round (the commit with the pick's point and the next
    proposal, from every shard) on shards that compute nothing."""
    echo = [_Echo.remote() for _ in range(actors)]  # type: ignore[attr-defined]
    proposals = ray.get([e.propose.remote() for e in echo])
    t = time.perf_counter()
    for _ in range(steps):
        pick = proposals[0][0]
        point, cond = proposals[0][1]
        remote = (point.tolist(), cond)
        proposals = ray.get([e.advance.remote(None, pick, remote) for e in echo])
    per = (time.perf_counter() - t) / steps
    for e in echo:
        ray.kill(e)
    return per


class _CountingDriver:
    """bald.ray's driver, counting the steps that needed every shard's evaluations."""

    merges = 0
    steps = 0
    Driver = bald._bald.Driver

    def __init__(self, *args: Any) -> None:
        self.driver = _CountingDriver.Driver(*args)

    def step(self, proposals: Any) -> Any:
        _CountingDriver.steps += 1
        return self.driver.step(proposals)

    def merge(self, *args: Any) -> Any:
        _CountingDriver.merges += 1
        return self.driver.merge(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver, name)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ray.init(include_dashboard=False, logging_level=logging.ERROR)
    setattr(bald._bald, "Driver", _CountingDriver)
    lp = mc_pool(n)
    results: Dict[str, float] = {"in process": in_process_step(lp, repeats)}
    for shards in (1, 2, 4):
        refs = [ray.put(p) for p in np.array_split(lp, shards)]
        results[f"{shards} actor(s)"] = sharded_step(refs, repeats)
        del refs
    base = results["in process"]
    print(
        f"N = {n}, K = {K}, C = {C}, batch {BATCH}, num_samples {NUM_SAMPLES}: "
        "seconds per greedy step (steps 2-10)"
    )
    for name, t in results.items():
        print(f"  {name}: {t * 1e3:.1f} ms ({t / base:.2f}x in process)")
    print(
        f"  steps the shards' bests did not settle (merged): {_CountingDriver.merges} of "
        f"{_CountingDriver.steps}"
    )
    for actors in (1, 2, 4, 8):
        print(f"  Ray's rounds alone, {actors} actor(s): {overhead(actors) * 1e3:.2f} ms per step")
    ray.shutdown()


if __name__ == "__main__":
    main()
