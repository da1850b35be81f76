"""A small use of bald's Python API; `mypy --strict` checks it against the stubs in CI."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import bald
from bald.compat.batchbald_redux import CandidateBatch, get_batchbald_batch


def main() -> None:
    rng = np.random.default_rng(0)
    logits: npt.NDArray[np.float32] = rng.normal(size=(2000, 20, 10)).astype(np.float32)
    batch: bald.Acquisition = bald.batchbald(logits, 10, input_kind="logits", seed=1)
    picks: list[int] = batch.indices.tolist()
    print(f"BatchBALD picks {picks} on {batch.backend} in {batch.seconds:.3f} s")
    labelled = np.array([0, 7, 42])
    later = bald.batchbald(logits, 20, input_kind="logits", exclude=labelled, past_limit="stop")
    print(f"{len(later.indices)} picks, regimes {later.regimes}, limit at {later.information_limit}")
    scores: npt.NDArray[np.float64] = bald.scores(logits, "bald", input_kind="logits")
    print(f"best BALD {float(scores.max()):.4f}")
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    redux: CandidateBatch = get_batchbald_batch(log_probs, 5, 1000)
    print(f"batchbald_redux drop-in: {redux.indices}")
    mask: npt.NDArray[np.bool_] = bald.dropout_keep_mask(seed=0, layer=1, k=20, units=128, rate=0.5)
    print(f"dropout keeps {float(mask.mean()):.3f} of the units")
    try:
        bald.batchbald(logits, 10)  # logits are not log-probs
    except bald.InputError as e:
        print(f"InputError: {e}")


if __name__ == "__main__":
    main()
