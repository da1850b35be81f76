"""Type stubs of bald's native module (called through the functions of ``bald``)."""

from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

class InputError(ValueError):
    """Bad input: a wrong shape or dtype, invalid values, or an argument out of range."""

class BackendError(RuntimeError):
    """A backend that is unavailable or that failed."""

def acquire(
    log_probs: Any,
    strategy: str,
    batch_size: int,
    num_samples: int,
    beta: float,
    seed: int,
    backend: str,
    input_kind: str,
    layout: str,
    greedy: str,
    past_limit: str,
    exclude: List[int],
    warn: Callable[[str], None],
    progress: Optional[Callable[[int, int], None]],
) -> Tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    List[int],
    str,
    float,
    List[str],
    npt.NDArray[np.float64],
    Optional[int],
    Optional[int],
]: ...
def scores(
    log_probs: Any, score: str, backend: str, input_kind: str, layout: str
) -> Tuple[npt.NDArray[np.float64], str, float]: ...
def dropout_keep_mask(
    seed: int, layer: int, k: int, units: int, rate: float
) -> npt.NDArray[np.bool_]: ...

# A shard's proposal: (bounds, indices, scores, previous, widening, evaluations).
_Proposal = Tuple[List[float], List[int], List[float], float, float, int]
# A pick: (bound, index, score).
_Pick = Tuple[float, int, float]

class Shard:
    """One shard of a pool: its log-probs, copied once, and its part of each greedy step."""

    def __init__(
        self,
        log_probs: Any,
        offset: int,
        whole_n: int,
        batch_size: int,
        num_samples: int,
        seed: int,
        greedy: str,
        past_limit: str,
        backend: str,
        exclude: List[int],
    ) -> None: ...
    def batch(self) -> int: ...
    def set_batch(self, batch: int) -> None: ...
    def propose(self) -> _Proposal: ...
    def point_of(self, index: int) -> Optional[Tuple[npt.NDArray[np.float64], float]]: ...
    def commit(
        self, keep: int, pick: _Pick, remote: Optional[Tuple[List[float], float]] = None
    ) -> None: ...

class Driver:
    """The driver's side of greedy BatchBALD over shards: the batch so far."""

    def __init__(
        self,
        k: int,
        c: int,
        whole_n: int,
        candidates: int,
        batch_size: int,
        num_samples: int,
        seed: int,
        greedy: str,
        past_limit: str,
    ) -> None: ...
    def batch(self) -> int: ...
    def done(self) -> bool: ...
    def merge(self, proposals: List[_Proposal]) -> Tuple[_Pick, List[int]]: ...
    def record(
        self, pick: _Pick, point: npt.NDArray[np.float64], evaluations: int
    ) -> Optional[str]: ...
    def finish(
        self,
    ) -> Tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        List[int],
        List[str],
        npt.NDArray[np.float64],
        Optional[int],
        Optional[int],
    ]: ...
