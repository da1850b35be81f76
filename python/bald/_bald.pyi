"""Type stubs of bald's native module (called through the functions of ``bald``)."""

from typing import Any, List, Tuple

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
    greedy: str,
    exclude: List[int],
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], List[int], str, float]: ...
def scores(
    log_probs: Any, score: str, backend: str, input_kind: str
) -> Tuple[npt.NDArray[np.float64], str, float]: ...
def dropout_keep_mask(
    seed: int, layer: int, k: int, units: int, rate: float
) -> npt.NDArray[np.bool_]: ...
