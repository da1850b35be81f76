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
