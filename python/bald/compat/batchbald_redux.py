"""A drop-in for batchbald_redux (2.0.5): change only the import.

    # from batchbald_redux.batchbald import get_batchbald_batch
    from bald.compat.batchbald_redux import get_batchbald_batch

    batch = get_batchbald_batch(log_probs_N_K_C, batch_size, num_samples, dtype=torch.double)
    batch.indices, batch.scores  # lists, as batchbald_redux's CandidateBatch

Differences, all deliberate: probabilities of exactly 0 give 0 log 0 = 0 (batchbald_redux
gives NaN); BALD scores are clamped at 0 against rounding; in the sampled regime (C^t above
``num_samples``) the joint keeps its drawn configurations from step to step, keyed by the
seed, where batchbald_redux redraws them from torch's RNG at every step, so sampled picks
agree with it only statistically. ``dtype`` and ``device`` are accepted and ignored: bald
computes in its own precision, where the tensor is (a CUDA tensor on the CUDA backend, read
in place; anything else on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List

import numpy as np

import bald

__all__ = [
    "CandidateBatch",
    "compute_conditional_entropy",
    "compute_entropy",
    "get_bald_batch",
    "get_batchbald_batch",
]


@dataclass
class CandidateBatch:
    """batchbald_redux's batch: pool indices in pick order, and one score per pick."""

    scores: List[float]
    indices: List[int]


def get_batchbald_batch(
    log_probs_N_K_C: Any,
    batch_size: int,
    num_samples: int,
    dtype: Any = None,
    device: Any = None,
) -> CandidateBatch:
    """BatchBALD, as batchbald_redux's: ``scores[t]`` is the mutual information of the
    first t+1 picks with the model parameters."""
    a = bald.acquire(log_probs_N_K_C, "batchbald", batch_size, num_samples=num_samples)
    return CandidateBatch(a.scores.tolist(), a.indices.tolist())


def get_bald_batch(
    log_probs_N_K_C: Any, batch_size: int, dtype: Any = None, device: Any = None
) -> CandidateBatch:
    """The top-``batch_size`` BALD scores, highest first."""
    a = bald.acquire(log_probs_N_K_C, "bald", batch_size)
    return CandidateBatch(a.scores.tolist(), a.indices.tolist())


def _like(x: Any, values: np.ndarray) -> Any:
    """``values`` as a torch double tensor on ``x``'s device for torch input (batchbald_redux's
    return type), as a NumPy float64 array otherwise."""
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        return torch.from_numpy(values).to(x.device)
    return values


def compute_entropy(log_probs_N_K_C: Any) -> Any:
    """H[mean_k p_k] of every point (float64)."""
    return _like(log_probs_N_K_C, bald.entropy(log_probs_N_K_C))


def compute_conditional_entropy(log_probs_N_K_C: Any) -> Any:
    """mean_k H[p_k] of every point (float64)."""
    return _like(log_probs_N_K_C, bald.conditional_entropy(log_probs_N_K_C))
