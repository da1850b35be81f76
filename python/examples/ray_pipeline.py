"""A Ray Data pipeline end to end: MC-dropout inference with ``map_batches``, then a BatchBALD
batch over the predictions where they are, with ``bald.ray.acquire``.

    RAY_USAGE_STATS_ENABLED=0 python examples/ray_pipeline.py

The model is a small torch MLP with dropout, left in training mode so that each of the K
forward passes draws its own masks; ``log_softmax`` gives the N x K x C log-probs that
``bald`` reads. On a cluster, ``ray.init(address="auto")`` and a larger pool are the only
changes.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import ray
import torch

import bald.ray

K = 20
CLASSES = 10


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(32, 64),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(64, CLASSES),
    )


class McDropout:
    """K stochastic forward passes of a batch of inputs: a ``log_probs`` column of K x C."""

    def __init__(self) -> None:
        self.model = model().train()  # dropout on: MC dropout

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        x = torch.as_tensor(batch["x"])
        rows = [int(i) for i in batch["id"]]
        with torch.no_grad():
            # The masks of each point's K passes depend on the point alone, so the predictions
            # do not depend on how Ray cuts the dataset into batches.
            out = []
            for i, row in zip(rows, x):
                torch.manual_seed(i)
                out.append(torch.log_softmax(self.model(row.expand(K, -1)), dim=-1))
        # The ids say which input each row is: Ray need not keep the dataset's order.
        return {"id": batch["id"], "log_probs": torch.stack(out).numpy().astype(np.float32)}


def pipeline(n: int = 2000, blocks: int = 4) -> Any:
    """The unlabelled pool as a Dataset of inputs, and its MC-dropout predictions."""
    x = np.random.default_rng(1).normal(size=(n, 32)).astype(np.float32)
    ds = ray.data.from_items([{"id": i, "x": x[i]} for i in range(n)]).repartition(blocks)
    return ds.map_batches(McDropout, batch_size=256, compute=ray.data.ActorPoolStrategy(size=1))


def main() -> None:
    ray.init(include_dashboard=False)
    predictions = pipeline().materialize()
    batch = bald.ray.acquire(predictions, "batchbald", 10, num_samples=1000)
    # Global indices follow the dataset's order; its id column names the inputs.
    ids = np.concatenate(ray.get(predictions.to_numpy_refs(column="id")))
    print("picked inputs", ids[batch.indices].tolist())
    print("cumulative mutual information", np.round(batch.scores, 4).tolist())


if __name__ == "__main__":
    main()
