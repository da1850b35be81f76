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
    targets: Any = None,
    targets_kind: str = "log_probs",
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
def epig(
    log_probs: Any, targets: Any, backend: str, input_kind: str, layout: str, targets_kind: str
) -> Tuple[npt.NDArray[np.float64], str, float]: ...
def scores(
    log_probs: Any, score: str, backend: str, input_kind: str, layout: str
) -> Tuple[npt.NDArray[np.float64], str, float]: ...
def dropout_keep_mask(
    seed: int, layer: int, k: int, units: int, rate: float
) -> npt.NDArray[np.bool_]: ...

# A pick or an evaluation: (bound, index, score).
_Pick = Tuple[float, int, float]
# A shard's proposal: its best (bound, index, score), the best's point and conditional entropy,
# previous, widening, evaluations.
_Proposal = Tuple[
    Optional[_Pick], Optional[Tuple[npt.NDArray[np.float64], float]], float, float, int
]

# A strategy's settings: (strategy, batch_size, num_samples, beta, seed, greedy, past_limit).
_Settings = Tuple[str, int, int, float, int, str, str]
# A shard's best points: (keys, indices, scores).
_Ranked = Tuple[List[float], List[int], List[float]]

def check(
    settings: _Settings,
    dims: Tuple[int, ...],
    layout: str,
    exclude: List[int],
    targets: Optional[Tuple[int, ...]] = None,
) -> List[str]: ...
def rank(
    log_probs: Any,
    settings: _Settings,
    backend: str,
    input_kind: str,
    layout: str,
    offset: int,
    exclude: List[int],
    targets: Any = None,
) -> _Ranked: ...
def merge_ranked(
    parts: List[_Ranked], batch: int
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...

class Shard:
    """One shard of a pool: its values, copied once, and its part of each greedy step."""

    def __init__(
        self,
        log_probs: Any,
        settings: _Settings,
        offset: int,
        whole_n: int,
        backend: str,
        input_kind: str,
        layout: str,
        exclude: List[int],
    ) -> None: ...
    def tail(self, rest: int, picks: List[int]) -> _Ranked: ...
    def batch(self) -> int: ...
    def set_batch(self, batch: int) -> None: ...
    def propose(self) -> _Proposal: ...
    def evaluated(self) -> List[_Pick]: ...
    def point_of(self, index: int) -> Optional[Tuple[npt.NDArray[np.float64], float]]: ...
    def commit(
        self,
        keep: Optional[int],
        pick: _Pick,
        remote: Optional[Tuple[List[float], float]] = None,
    ) -> None: ...

class Driver:
    """The driver's side of greedy BatchBALD over shards: the batch so far."""

    def __init__(
        self, settings: _Settings, k: int, c: int, whole_n: int, candidates: int
    ) -> None: ...
    def tail(self) -> int: ...
    def picks(self) -> List[int]: ...
    def record_tail(self, parts: List[_Ranked]) -> None: ...
    def batch(self) -> int: ...
    def done(self) -> bool: ...
    def step(self, proposals: List[_Proposal]) -> Optional[Tuple[_Pick, int]]: ...
    def merge(
        self, proposals: List[_Proposal], lists: List[List[_Pick]]
    ) -> Tuple[_Pick, List[int]]: ...
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
