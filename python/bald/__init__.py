"""bald: Bayesian active learning scores and exact, fast BatchBALD batches.

Every function takes the MC-dropout predictions of a pool: an array of N points x K MC
samples x C classes (``layout="NKC"``, batchbald_redux's order; ``"NCK"`` is baal's) of
log-probabilities (``input_kind="log_probs"``), probabilities or logits, in float16, float32
or float64. NumPy arrays, anything with ``__array__`` or ``__dlpack__``, torch CPU tensors
(through DLPack), and CUDA arrays (torch CUDA tensors, or anything with ``__dlpack__`` on a
CUDA device, also in bfloat16) are accepted.

Results follow the input: for a torch tensor, ``Acquisition.indices``, ``Acquisition.scores``
and ``scores()`` are torch tensors on the tensor's device (int64 and float64); for anything
else they are NumPy arrays.

Precision, per backend and dtype: ``backend="scalar"`` computes in float64 whatever the input
dtype (the reference every other backend is tested against); ``"cpu"`` and ``"cuda"``
compute in float32 (every dtype is read as float32; long sums are folded into float64),
within ``1e-6 * (1 + ln C)`` nats of the float64 reference on the same input for the scores
and ``1e-5`` for BatchBALD's joint entropies and scores, so float64 input gets about
float32's accuracy there. float16 and bfloat16 values are exact in float32. ``bald.compat``
computes float64 input in float64 (on the scalar backend), as the library it replaces does.

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
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np
import numpy.typing as npt

from . import _bald
from ._bald import BackendError, InputError

__all__ = [
    "Acquisition",
    "BackendError",
    "InputError",
    "PAST_LIMIT",
    "acquire",
    "bald",
    "batchbald",
    "conditional_entropy",
    "dropout_keep_mask",
    "entropy",
    "epig",
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
    "softmax-bald",
    "softrank-bald",
    "epig",
    "power-epig",
    "softmax-epig",
    "softrank-epig",
    "batch-epig",
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
PAST_LIMIT = ("power-bald", "stop", "continue")
_DTYPES = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class Acquisition:
    """A batch: ``indices`` (int64 pool indices, in pick order) and their ``scores``
    (float64), as torch tensors on the input's device for torch input, NumPy arrays otherwise;
    the ``strategy``, the ``backend`` that ran it, and the ``seconds`` it took in Rust
    (validation included).

    For BatchBALD, ``scores[t]`` is the cumulative mutual information of the first t+1 picks
    with the model, and the other fields say how each pick was made (empty or ``None`` for
    other strategies), as ``bald acquire``'s JSON does:

    - ``evaluations``: the candidates evaluated at each greedy step;
    - ``regimes``: ``"exact"`` (the joint entropy over all C^t configurations),
      ``"sampled"`` (estimated from ``num_samples`` sampled configurations) or
      ``"power-bald"`` (drawn past the information limit, below), per pick;
    - ``standard_errors``: per pick, the standard error of a sampled score's estimate over its
      configurations (0 for exact and PowerBALD picks). The greedy picks the largest of noisy
      estimates, so a sampled score can exceed ln K, the most K MC samples can hold, by a few
      standard errors; that excess is estimation noise, not information;
    - ``information_limit``: the first pick (1-based) whose score reached 0.99 ln K, or None;
    - ``past_limit`` and ``switched_after``: what happened past that limit, and the greedy
      picks made before it took over (None when it did not). After a ``"power-bald"`` switch
      the later ``scores`` are those picks' BALD scores.
    """

    indices: Any
    scores: Any
    strategy: str
    backend: str
    seconds: float
    evaluations: List[int] = field(default_factory=list)
    regimes: List[str] = field(default_factory=list)
    standard_errors: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64)
    )
    information_limit: Optional[int] = None
    past_limit: Optional[str] = None
    switched_after: Optional[int] = None


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _like(x: Any, values: np.ndarray) -> Any:
    """``values`` as a torch tensor on ``x``'s device when ``x`` is a torch tensor, else as they
    are (NumPy)."""
    if _is_torch(x):
        import torch

        return torch.from_numpy(values).to(x.device)
    return values


def _is_float64(x: Any) -> bool:
    """Whether ``x`` holds float64 values (a NumPy array or a torch tensor)."""
    dtype = getattr(x, "dtype", None)
    if _is_torch(x):
        import torch

        return bool(dtype == torch.float64)
    return isinstance(dtype, np.dtype) and dtype == np.float64


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
    """``x`` as a C-contiguous, aligned NumPy array in ``layout``, without a copy when it is
    one."""
    if _is_torch(x):
        device = str(x.device)
        if device != "cpu":
            raise BackendError(
                f"a torch tensor on {device}: only CPU and CUDA tensors are read; "
                "move it with .cpu() first"
            )
        if x.requires_grad:
            x = x.detach()
        import torch

        if x.dtype == torch.bfloat16:  # NumPy has no bfloat16: exact in float32
            x = x.float()
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
    _layout_axes(layout)  # a known layout; the native module puts the axes in N x K x C order
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


def _exclude(exclude: Any, n: int) -> List[int]:
    """``exclude`` as a list of pool indices: any integer array-like (a list, a range, a NumPy
    array of any integer dtype, a torch tensor on any device), or a boolean mask of N."""
    if exclude is None:
        return []
    if _is_torch(exclude):
        exclude = exclude.detach().cpu().numpy()
    try:
        a = np.asarray(exclude)
    except Exception as e:  # not an array-like
        raise InputError(f"exclude: expected pool indices or a boolean mask: {e}") from None
    if a.ndim != 1:
        raise InputError(
            f"exclude: expected a 1-d sequence of pool indices, got shape {a.shape}"
        )
    if a.dtype == np.bool_:
        if a.shape[0] != n:
            raise InputError(
                f"exclude: a boolean mask needs one entry per pool point ({n}), not {a.shape[0]}"
            )
        return [int(i) for i in np.flatnonzero(a)]
    if a.size == 0:
        return []
    if not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"exclude: pool indices must be integers, not {a.dtype}")
    if a.min() < 0:
        raise InputError(
            f"exclude: index {int(a.min())} is out of range for a pool of {n} points"
        )
    return [int(i) for i in a]


# Seconds a BatchBALD run goes on before its progress shows.
_PROGRESS_DELAY = 2.0


class _Progress:
    """BatchBALD's progress on stderr once a run has gone on for ``_PROGRESS_DELAY`` seconds:
    a tqdm bar when tqdm is installed, else one line rewritten in place."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.bar: Any = None
        self.plain = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.start
        if self.bar is None and not self.plain:
            if elapsed < _PROGRESS_DELAY:
                return
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="bald", unit="pick", file=sys.stderr)
            except ImportError:
                self.plain = True
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        else:
            eta = elapsed / done * (total - done)
            sys.stderr.write(
                f"\rbald: {done}/{total} picks, {elapsed:.0f} s, ETA {eta:.0f} s"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.plain:
            sys.stderr.write("\n")


def _warn(message: str) -> None:
    """A warning of bald's, as the CLI gives it, pointing at the first line outside bald."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    caller: Any
    level, caller = 2, sys._getframe(1)
    while caller is not None and os.path.abspath(caller.f_code.co_filename).startswith(here):
        level += 1
        caller = caller.f_back
    warnings.warn(message, UserWarning, stacklevel=level)


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
    past_limit: str = "power-bald",
    exclude: Any = None,
    progress: bool = True,
    targets: Any = None,
) -> Acquisition:
    """Picks ``batch_size`` points of the pool with ``strategy`` (one of ``STRATEGIES``).

    ``num_samples``: BatchBALD's joint entropy is exact while C^t <= num_samples, sampled
    with that many configurations beyond; batch EPIG's targets' joint (M targets, C classes)
    is exact while C^t M C <= num_samples, sampled with at most that many rows beyond. ``beta``: the inverse temperature of the stochastic
    batches (``power-bald``: p ∝ BALD^beta; ``softmax-*``: p ∝ exp(beta score);
    ``softrank-*``: p ∝ rank^-beta). ``targets``: the EPIG strategies' (``epig``,
    ``power-epig``, ``softmax-epig``, ``softrank-epig``, ``batch-epig``) target predictions, as
    in ``bald.epig``; the other strategies refuse them.
    ``seed`` keys every random choice. ``backend``: ``"auto"`` (CUDA when a GPU is usable,
    else the CPU), ``"cpu"``, ``"cuda"`` or ``"scalar"`` (the f64 reference).
    ``greedy``: BatchBALD's ``"lazy"`` (the same picks, far fewer evaluations) or
    ``"full"`` greedy steps.

    ``past_limit`` (one of ``PAST_LIMIT``): the mutual information of a batch cannot exceed ln K,
    the most that K MC samples can tell; at K = 20 a batch often reaches it within 5 to 20
    picks, and later greedy picks are driven by noise while each still evaluates the
    candidates. ``"power-bald"`` (the default) draws the rest of the batch by PowerBALD
    (``beta``) among the remaining points, ``"stop"`` ends the batch there, ``"continue"``
    keeps the greedy going (batchbald_redux's behaviour). A warning is given at that pick.

    ``exclude``: pool indices never picked: a list, a range, a NumPy array of any integer
    dtype, a torch tensor (CPU or CUDA), or a boolean mask of N; a float, negative,
    out-of-range or repeated index is an InputError. A batch larger than the points left is
    clamped to them. ``progress``: a BatchBALD run that lasts more than two seconds shows its
    picks on stderr (a tqdm bar when tqdm is installed).

    Warnings (``UserWarning``, the CLI's words with Python's argument names): a pool in layout
    NKC with fewer points than MC samples (pass ``layout="KNC"`` for ``torch.stack(samples)``),
    ``num_samples`` below K, and the information limit above.

    Returns torch tensors on the input's device for torch input, NumPy arrays otherwise
    (``Acquisition``). Raises InputError for bad values or arguments (with a hint when the
    values look like probabilities or logits), BackendError when the backend is unavailable
    or fails, KeyboardInterrupt on Ctrl-C.
    """
    a, input_kind = _input(log_probs, layout, backend, input_kind)
    # A NumPy array keeps the caller's layout; a CUDA array is N x K x C already.
    n_axis = _layout_axes(layout)[0] if isinstance(a, np.ndarray) else 0
    excluded = _exclude(exclude, int(a.shape[n_axis]))
    t, t_kind = (None, "log_probs") if targets is None else _input(targets, layout, "cpu", input_kind)
    bar = _Progress() if progress else None
    try:
        (
            indices,
            scores,
            evaluations,
            name,
            seconds,
            regimes,
            standard_errors,
            information_limit,
            switched_after,
        ) = _bald.acquire(
            a,
            strategy,
            _count("batch_size", batch_size),
            _count("num_samples", num_samples),
            float(beta),
            _count("seed", seed),
            backend,
            input_kind,
            layout,
            greedy,
            past_limit,
            excluded,
            _warn,
            bar,
            t,
            t_kind,
        )
    finally:
        if bar is not None:
            bar.close()
    strategy = strategy.replace("_", "-").lower()
    batchbald = strategy == "batchbald"
    return Acquisition(
        indices=_like(log_probs, indices),
        scores=_like(log_probs, scores),
        strategy=strategy,
        backend=name,
        seconds=seconds,
        evaluations=list(evaluations),
        regimes=list(regimes),
        standard_errors=standard_errors,
        information_limit=information_limit,
        past_limit=past_limit.replace("_", "-").lower() if batchbald else None,
        switched_after=switched_after,
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
) -> Any:
    """Every point's ``score`` (one of ``SCORES``), as float64 values of N: a torch tensor on
    the input's device for torch input, a NumPy array otherwise."""
    a, input_kind = _input(log_probs, layout, backend, input_kind)
    out, _name, _seconds = _bald.scores(a, score, backend, input_kind, layout)
    return _like(log_probs, out)


def epig(
    log_probs: Any,
    targets: Any,
    *,
    backend: str = "auto",
    input_kind: str = "log_probs",
    layout: str = "NKC",
) -> Any:
    """Every pool point's EPIG (Bickford Smith et al., 2023) against ``targets``: the mean over
    the target inputs x*_m of I(y; y*_m), in nats, as float64 values of N (a torch tensor on
    the input's device for torch input, a NumPy array otherwise). ``targets`` are the model's
    predictions (M x K x C, in ``layout``, holding ``input_kind``) on inputs drawn from the
    distribution it will be asked about, from the same K posterior samples as the pool: one
    forward pass with the same dropout masks. Targets with another K or C are an InputError."""
    a, kind = _input(log_probs, layout, backend, input_kind)
    t, t_kind = _input(targets, layout, "cpu", input_kind)
    out, _name, _seconds = _bald.epig(a, t, backend, kind, layout, t_kind)
    return _like(log_probs, out)


def entropy(log_probs: Any, **kwargs: Any) -> Any:
    """The predictive entropy H[mean_k p_k] of every point, in nats."""
    return scores(log_probs, "entropy", **kwargs)


def conditional_entropy(log_probs: Any, **kwargs: Any) -> Any:
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
