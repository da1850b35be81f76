"""EPIG of every pool point on N = 60000, K = 100, C = 10 with M = 100 targets (BENCHMARKS.md,
"EPIG"): bald.epig on the CPU backend beside the two peers, in one run, on the same values.

    python python/benchmarks/epig.py [N] [REPEATS]

Then greedy batch EPIG of 10 from the first 10^4 points (or N), with its evaluations per step.

- the authors' matmul estimator (fbickfordsmith/epig, `epig_from_probs_using_matmul`), written
  out here with the same torch operations: one [N, C, K] x [K, M·C] matmul, xlogy over the
  N x C x M·C joint, torch on 2 threads;
- baal's `EPIG` heuristic (baal 2.x, `baal.active.heuristics.EPIG().compute_score`), the same
  estimator on [N, C, K] predictions, when baal is installed (`pip install --no-deps baal
  structlog`).

Each is timed as the best of REPEATS runs from the predictions in memory (probabilities for the
peers, which take them; log-probs for bald), and its peak extra memory is estimated from the
arrays it makes. The scores are compared with bald's.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Dict

import numpy as np
import torch

import bald

K, C, M = 100, 10, 100


def predictions(n: int, seed: int = 0) -> np.ndarray:
    """MC-dropout-like log-probs: each point its own class means and scale, each sample a
    perturbation of them."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(1.0, 5.0, size=(n, 1, 1)).astype(np.float32)
    means = rng.uniform(-2.0, 2.0, size=(n, 1, C)).astype(np.float32)
    x = scale * (means + rng.uniform(-1.0, 1.0, size=(n, K, C)).astype(np.float32))
    x -= x.max(axis=-1, keepdims=True)
    out: np.ndarray = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    return out


def authors_matmul(probs_pool: torch.Tensor, probs_targ: torch.Tensor) -> torch.Tensor:
    """fbickfordsmith/epig's epig_from_probs_using_matmul, its operations in order."""
    n_t, k, c = probs_targ.shape

    def marginal_entropy(p: torch.Tensor) -> torch.Tensor:
        mean = p.mean(dim=1)
        return -torch.sum(torch.xlogy(mean, mean), dim=-1)

    entropy_pool = marginal_entropy(probs_pool)
    entropy_targ = marginal_entropy(probs_targ)
    pool = probs_pool.permute(0, 2, 1)  # [N, C, K]
    targ = probs_targ.permute(1, 0, 2).reshape(k, n_t * c)  # [K, M·C]
    joint = pool @ targ / k  # [N, C, M·C]
    entropy_joint = -torch.sum(torch.xlogy(joint, joint), dim=(-2, -1)) / n_t
    return entropy_pool + entropy_targ.mean() - entropy_joint


def best(f: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(2)
    lp = predictions(n + M)
    pool, targets = lp[:n], lp[n:]
    results: Dict[str, tuple[float, float, np.ndarray]] = {}
    seconds, ours = best(lambda: bald.epig(pool, targets, backend="cpu"), repeats)
    # bald holds the targets' rows (M·C x K f64) and two N-vectors beside the pool.
    results["bald (cpu)"] = (seconds, (M * C * K + 2 * n) * 8 / 2**20, ours)
    probs_pool = torch.from_numpy(np.exp(pool))
    probs_targ = torch.from_numpy(np.exp(targets))
    seconds, theirs = best(lambda: authors_matmul(probs_pool, probs_targ).numpy(), repeats)
    # The [N, C, M·C] float32 joint, and xlogy's result of the same size.
    joint_mib = 2 * n * C * M * C * 4 / 2**20
    results["authors' matmul estimator (torch, 2 threads)"] = (seconds, joint_mib, theirs)
    try:
        from baal.active.heuristics import EPIG  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as e:
        print(f"baal: not measured ({e})")
    else:
        nck_pool = probs_pool.permute(0, 2, 1).numpy()
        nck_targ = probs_targ.permute(0, 2, 1).numpy()
        epig = EPIG()
        seconds, baals = best(lambda: epig.compute_score(nck_pool, nck_targ), repeats)
        results["baal 2.x EPIG (torch, 2 threads)"] = (seconds, joint_mib, baals)
    print(f"EPIG, N = {n}, K = {K}, C = {C}, M = {M} targets, float32 input; best of {repeats}")
    flops = 2.0 * n * C * K * M * C
    fastest_peer = min(t for name, (t, _, _) in results.items() if not name.startswith("bald"))
    for name, (t, mib, scores) in results.items():
        diff = float(np.abs(np.asarray(scores, dtype=np.float64) - ours).max())
        print(
            f"  {name}: {t:.3f} s ({flops / t / 1e9:.1f} GFLOP/s of the joint's matmul), "
            f"~{mib:.0f} MiB beside the predictions, max |score - bald's| {diff:.2e}"
        )
    print(f"  bald against the faster peer: {fastest_peer / results['bald (cpu)'][0]:.2f}x")
    print(f"  joint's matmul: {flops:.3g} flop; ln C^2 = {math.log(C * C):.3f}")
    batch_epig(pool[: min(n, 10000)], targets)


def batch_epig(pool: np.ndarray, targets: np.ndarray) -> None:
    """Greedy batch EPIG of 10 (neither peer has one): its time, regimes and evaluations per
    step, at the default num_samples and at a tenth of it."""
    n = len(pool)
    print(f"batch EPIG of 10 from N = {n}, K = {K}, C = {C}, M = {M} targets")
    for num_samples in (10000, 1000):
        a = bald.acquire(
            pool, "batch-epig", 10, targets=targets, num_samples=num_samples, backend="cpu"
        )
        regimes = ", ".join(f"{r}" for r in a.regimes)
        print(
            f"  num_samples {num_samples}: {a.seconds:.2f} s ({a.seconds / 10:.2f} s a step); "
            f"evaluations {a.evaluations}; regimes {regimes}; "
            f"final score {float(a.scores[-1]):.4f} nats"
        )


if __name__ == "__main__":
    main()
