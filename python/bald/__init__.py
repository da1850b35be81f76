"""bald: Bayesian active learning scores and exact, fast BatchBALD batches.

Every function takes the MC-dropout predictions of a pool: an array of N points x K MC
samples x C classes (``layout="NKC"``, batchbald_redux's order; ``"NCK"`` is baal's) of
log-probabilities (``input_kind="log_probs"``), probabilities or logits, in float16, float32
or float64. NumPy arrays, anything with ``__array__`` or ``__dlpack__``, torch CPU tensors
(through DLPack), and CUDA arrays (torch CUDA tensors, or anything with ``__dlpack__`` on a
CUDA device, also in bfloat16) are accepted.

A C-contiguous, aligned array is read in place, without a copy; any other array is copied
once. Probabilities and logits are converted into a copy. A CUDA array goes straight to the
CUDA backend (``backend="auto"`` or ``"cuda"``) and is read where it is, never copied to the
host: it is validated on its GPU, and only the results come back. A torch CUDA tensor in
another layout, or not contiguous, is made contiguous on its GPU (a copy there), and its
probabilities or logits are converted there by torch (``torch.log``, ``torch.log_softmax``);
with ``backend="cpu"`` or ``"scalar"`` it is copied to the host first. The GIL is released
while Rust computes, and Ctrl-C stops a long BatchBALD between greedy steps.

    >>> import numpy as np, bald
    >>> logits = np.random.default_rng(0).normal(size=(1000, 20, 10)).astype(np.float32)
    >>> result = bald.batchbald(logits, 10, input_kind="logits")
    >>> result.indices  # int64 pool indices, in pick order
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional

import numpy as np
import numpy.typing as npt

from . import _bald
from ._bald import BackendError, InputError

__all__ = [
    "Acquisition",
    "BackendError",
    "InputError",
    "acquire",
    "bald",
    "batchbald",
    "conditional_entropy",
    "dropout_keep_mask",
    "entropy",
    "scores",
]

STRATEGIES = (
    "batchbald",
    "bald",
    "entropy",
    "var-ratios",
    "var-ratios-mode",
    "mean-std",
    "margin",
    "least-confidence",
    "power-bald",
    "random",
)
SCORES = (
    "entropy",
    "conditional-entropy",
    "bald",
    "var-ratios",
    "var-ratios-mode",
    "mean-std",
    "mean-std-unbiased",
    "margin",
    "least-confidence",
)
_DTYPES = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class Acquisition:
    """A batch: ``indices`` (int64 pool indices, in pick order) and their ``scores``
    (float64; for BatchBALD the cumulative mutual information of the first t+1 picks), the
    ``strategy``, the ``backend`` that ran it, and the ``seconds`` it took in Rust
    (validation included). ``evaluations`` holds the candidates BatchBALD evaluated at
    each greedy step (empty for other strategies)."""

    indices: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    strategy: str
    backend: str
    seconds: float
    evaluations: List[int] = field(default_factory=list)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


# DLPack's device type of CUDA memory.
_DLPACK_CUDA = 2


def _on_cuda(x: Any) -> bool:
    """Whether ``x`` is an array in CUDA device memory (a torch CUDA tensor, say)."""
    if isinstance(x, np.ndarray):
        return False
    device = getattr(x, "__dlpack_device__", None)
    if device is None:
        return False
    try:
        return int(device()[0]) == _DLPACK_CUDA
    except Exception:  # not a DLPack producer after all: read as any other array
        return False


def _layout_axes(layout: str) -> tuple[int, int, int]:
    axes = {"NKC": (0, 1, 2), "NCK": (0, 2, 1), "KNC": (1, 0, 2)}.get(layout.upper())
    if axes is None:
        raise InputError(f"unknown layout '{layout}': one of NKC, NCK, KNC")
    return axes


_nvrtc_looked_for = False


def _find_nvrtc() -> None:
    """Makes NVRTC 13 loadable by the CUDA backend when it is only in a pip wheel (the
    ``nvidia-cuda-nvrtc`` that torch's CUDA 13 wheels install, under ``site-packages/nvidia``,
    which is on no library path): loaded once by its path, it is the library that the backend's
    own load of ``libnvrtc.so.13`` then finds. Nothing is done when the system's loader finds
    NVRTC already, or on other systems than Linux."""
    global _nvrtc_looked_for
    if _nvrtc_looked_for:
        return
    _nvrtc_looked_for = True
    import ctypes
    import importlib.util
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libnvrtc.so.13")
        return
    except OSError:
        pass
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return
    for root in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cu13/lib", "cuda_nvrtc/lib"):
            path = os.path.join(root, sub, "libnvrtc.so.13")
            if os.path.exists(path):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                    return
                except OSError:
                    continue


def _input(x: Any, layout: str, backend: str, input_kind: str) -> tuple[Any, str]:
    """The pool as the native module reads it, and its input kind: a CUDA array for the CUDA
    backend (N x K x C log-probs, C-contiguous, on its GPU), else a NumPy array."""
    if backend.lower() in ("auto", "cuda"):
        _find_nvrtc()
    if not _on_cuda(x):
        return _pool(x, layout), input_kind
    if backend.lower() in ("cpu", "scalar"):
        if not _is_torch(x):
            raise InputError(
                f"a CUDA array is read by backend 'cuda' or 'auto', not '{backend}': "
                "copy it to the host first"
            )
        return _pool(x.detach().cpu(), layout), input_kind  # one copy to the host
    axes = _layout_axes(layout)
    if not _is_torch(x):
        if axes != (0, 1, 2) or input_kind.replace("_", "-").lower() != "log-probs":
            raise InputError(
                "a CUDA array other than a torch tensor must hold log-probs in layout NKC"
            )
        return x, input_kind
    import torch

    if x.requires_grad:
        x = x.detach()
    if x.dim() != 3:
        raise InputError(
            f"expected a 3-d array N x K x C ({layout}), got shape {tuple(x.shape)}"
        )
    x = x.permute(*axes)
    kind = input_kind.replace("_", "-").lower()
    if kind == "probs":
        x = torch.log(x)
    elif kind == "logits":
        x = torch.log_softmax(x, dim=-1)
    elif kind != "log-probs":
        raise InputError(f"unknown input_kind '{input_kind}': one of log-probs, probs, logits")
    return x.contiguous(), "log_probs"


def _pool(x: Any, layout: str) -> np.ndarray:
    """``x`` as a C-contiguous, aligned N x K x C NumPy array, without a copy when it is one."""
    if _is_torch(x):
        device = str(x.device)
        if device != "cpu":
            raise BackendError(
                f"a torch tensor on {device}: only CPU and CUDA tensors are read; "
                "move it with .cpu() first"
            )
        if x.requires_grad:
            x = x.detach()
        a = np.from_dlpack(x)
    else:
        try:
            # A host array with only the DLPack protocol (no __array__) through DLPack.
            dlpack_only = hasattr(x, "__dlpack__") and not hasattr(x, "__array__")
            a = np.from_dlpack(x) if dlpack_only else np.asarray(x)
        except Exception as e:  # an object that cannot be an array
            raise InputError(f"not an array: {e}") from None
    if a.dtype not in _DTYPES:
        raise InputError(
            f"expected float16, float32 or float64 values, got dtype {a.dtype}"
        )
    if a.ndim != 3:
        raise InputError(
            f"expected a 3-d array N x K x C ({layout}), got shape {a.shape}"
        )
    a = a.transpose(_layout_axes(layout))
    # A copy only when the values are not one C-contiguous, aligned block already.
    return np.require(a, requirements=["C_CONTIGUOUS", "ALIGNED"])


def _count(name: str, v: Any) -> int:
    try:
        i = operator.index(v)
    except TypeError:
        raise InputError(f"{name} must be a whole number, not {v!r}") from None
    if i < 0:
        raise InputError(f"{name} must be 0 or more, not {i}")
    return i


def acquire(
    log_probs: Any,
    strategy: str = "batchbald",
    batch_size: int = 10,
    *,
    num_samples: int = 10000,
    beta: float = 1.0,
    seed: int = 0,
    backend: str = "auto",
    input_kind: str = "log_probs",
    layout: str = "NKC",
    greedy: str = "lazy",
    exclude: Optional[Iterable[int]] = None,
) -> Acquisition:
    """Picks ``batch_size`` points of the pool with ``strategy`` (one of ``STRATEGIES``).

    ``num_samples``: BatchBALD's joint entropy is exact while C^t <= num_samples, sampled
    with that many configurations beyond. ``beta``: PowerBALD's inverse temperature.
    ``seed`` keys every random choice. ``backend``: ``"auto"`` (CUDA when a GPU is usable,
    else the CPU), ``"cpu"``, ``"cuda"`` or ``"scalar"`` (the f64 reference).
    ``greedy``: BatchBALD's ``"lazy"`` (the same picks, far fewer evaluations) or
    ``"full"`` greedy steps. ``exclude``: pool indices never picked. A batch larger than
    the pool is clamped to it.

    Raises InputError for bad values or arguments, BackendError when the backend is
    unavailable or fails, KeyboardInterrupt on Ctrl-C.
    """
    a, input_kind = _input(log_probs, layout, backend, input_kind)
    excluded = [_count("exclude index", i) for i in (exclude or [])]
    indices, scores, evaluations, name, seconds = _bald.acquire(
        a,
        strategy,
        _count("batch_size", batch_size),
        _count("num_samples", num_samples),
        float(beta),
        _count("seed", seed),
        backend,
        input_kind,
        greedy,
        excluded,
    )
    return Acquisition(
        indices=indices,
        scores=scores,
        strategy=strategy.replace("_", "-").lower(),
        backend=name,
        seconds=seconds,
        evaluations=list(evaluations),
    )


def batchbald(log_probs: Any, batch_size: int = 10, **kwargs: Any) -> Acquisition:
    """A BatchBALD batch: ``acquire(log_probs, "batchbald", batch_size, ...)``."""
    return acquire(log_probs, "batchbald", batch_size, **kwargs)


def bald(log_probs: Any, batch_size: int = 10, **kwargs: Any) -> Acquisition:
    """The top-``batch_size`` BALD batch: ``acquire(log_probs, "bald", batch_size, ...)``."""
    return acquire(log_probs, "bald", batch_size, **kwargs)


def scores(
    log_probs: Any,
    score: str = "bald",
    *,
    backend: str = "auto",
    input_kind: str = "log_probs",
    layout: str = "NKC",
) -> npt.NDArray[np.float64]:
    """Every point's ``score`` (one of ``SCORES``), as a float64 array of N."""
    a, input_kind = _input(log_probs, layout, backend, input_kind)
    out, _name, _seconds = _bald.scores(a, score, backend, input_kind)
    return out


def entropy(log_probs: Any, **kwargs: Any) -> npt.NDArray[np.float64]:
    """The predictive entropy H[mean_k p_k] of every point, in nats."""
    return scores(log_probs, "entropy", **kwargs)


def conditional_entropy(log_probs: Any, **kwargs: Any) -> npt.NDArray[np.float64]:
    """The expected conditional entropy mean_k H[p_k] of every point, in nats."""
    return scores(log_probs, "conditional-entropy", **kwargs)


def dropout_keep_mask(
    seed: int, layer: int, k: int, units: int, rate: float
) -> npt.NDArray[np.bool_]:
    """The dropout mask of bald's MC-dropout head (the ``experiment``'s consistent dropout):
    ``mask[j, u]`` is whether input unit ``u`` of layer ``layer`` is kept in MC sample ``j``,
    for drop rate ``rate`` in [0, 1). Kept units are scaled by 1 / (1 - rate). A torch model
    that multiplies its layer inputs by this mask reproduces bald's MC samples."""
    for name, v in (("seed", seed), ("layer", layer), ("k", k), ("units", units)):
        _count(name, v)
    if layer >= 2**32 or k >= 2**32 or units >= 2**32 or seed >= 2**64:
        raise InputError("seed must fit in 64 bits, and layer, k and units in 32")
    return _bald.dropout_keep_mask(seed, layer, k, units, float(rate))
