"""A drop-in for batchbald_redux (2.0.5): change only the import.

    # from batchbald_redux.batchbald import get_batchbald_batch
    from bald.compat.batchbald_redux import get_batchbald_batch

    batch = get_batchbald_batch(log_probs_N_K_C, batch_size, num_samples, dtype=torch.double)
    batch.indices, batch.scores  # lists, as batchbald_redux's CandidateBatch

Differences, all deliberate: probabilities of exactly 0 give 0 log 0 = 0 (batchbald_redux
gives NaN); BALD scores are clamped at 0 against rounding; in the sampled regime (C^t above
``num_samples``) the joint keeps its drawn configurations from step to step, keyed by the
seed, where batchbald_redux redraws them from torch's RNG at every step, so sampled picks
agree with it only statistically. BatchBALD goes on past its information limit, ln K, as
batchbald_redux does (``past_limit="continue"``).

Precision follows the input, as batchbald_redux's: float64 input (or ``dtype=torch.double``
for the batch functions) is computed in float64 on bald's scalar backend, within 1e-9 of the
float64 reference (a float64 CUDA tensor is copied to the host for it); float32 and float16
input in float32 arithmetic where the tensor is (a CUDA tensor on the CUDA backend, read in
place; anything else on the CPU), within 1e-6 (1 + ln C) nats for the entropies and 1e-5 for
BatchBALD's scores. ``device`` is accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List

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


def _backend(x: Any, dtype: Any = None) -> str:
    """The scalar backend (float64 arithmetic) for float64 input or ``dtype=torch.double``,
    else the best available."""
    double = False
    if dtype is not None:
        import torch

        double = dtype == torch.float64
    return "scalar" if double or bald._is_float64(x) else "auto"


def _list(values: Any) -> List[Any]:
    """A NumPy array or a tensor (on any device) as a list."""
    return list(values.tolist())


def get_batchbald_batch(
    log_probs_N_K_C: Any,
    batch_size: int,
    num_samples: int,
    dtype: Any = None,
    device: Any = None,
) -> CandidateBatch:
    """BatchBALD, as batchbald_redux's: ``scores[t]`` is the mutual information of the
    first t+1 picks with the model parameters."""
    a = bald.acquire(
        log_probs_N_K_C,
        "batchbald",
        batch_size,
        num_samples=num_samples,
        backend=_backend(log_probs_N_K_C, dtype),
        past_limit="continue",
        progress=False,
    )
    return CandidateBatch(_list(a.scores), _list(a.indices))


def get_bald_batch(
    log_probs_N_K_C: Any, batch_size: int, dtype: Any = None, device: Any = None
) -> CandidateBatch:
    """The top-``batch_size`` BALD scores, highest first."""
    a = bald.acquire(
        log_probs_N_K_C, "bald", batch_size, backend=_backend(log_probs_N_K_C, dtype)
    )
    return CandidateBatch(_list(a.scores), _list(a.indices))


def compute_entropy(log_probs_N_K_C: Any) -> Any:
    """H[mean_k p_k] of every point (float64; a torch tensor on the input's device for torch
    input, as batchbald_redux's)."""
    return bald.entropy(log_probs_N_K_C, backend=_backend(log_probs_N_K_C))


def compute_conditional_entropy(log_probs_N_K_C: Any) -> Any:
    """mean_k H[p_k] of every point (float64; a torch tensor on the input's device for torch
    input)."""
    return bald.conditional_entropy(log_probs_N_K_C, backend=_backend(log_probs_N_K_C))
