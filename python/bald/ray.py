"""bald.ray: acquisition on a pool sharded across a Ray cluster, with the picks and scores that
``bald.acquire`` gives on the concatenated pool.

Install with ``pip install "bald[ray]"``. The pool stays where it is: each shard is held once,
by one actor, prepared once, and the driver holds the batch so far (its picks' K x C points)
and one proposal per shard per step.

A ``source`` is one of:

- a ``ray.data.Dataset`` with a column of per-point K x C arrays (``column``, ``"log_probs"``
  by default), the output of a ``map_batches`` inference; its blocks, in order, are the
  shards (``shards=`` groups consecutive blocks);
- a list of ``ObjectRef``\\ s of N_i x K x C arrays, one shard each;
- a list of ``.npy`` paths (N_i x K x C) that the workers can read, one shard each.

Global indices follow the order of the source. Values are log-probs in N x K x C (float16,
float32 or float64), validated by each shard as ``bald.acquire`` validates the whole pool.

Greedy BatchBALD runs one step at a time: every shard evaluates its candidates until its own
best is certain, the driver merges their proposals into the step of one lazy greedy over the
whole pool, fetches the pick's point from its shard and sends it to every shard, which
commits the step and makes its next proposal in the same call: two round trips per step. Only
the proposals (the candidates each shard evaluated) and one K x C point cross the network. Score strategies (``bald``,
``entropy``, ...) are a map over the shards and an exact top-k merge.

An actor that dies during a run is restarted by Ray (``max_restarts``); it reloads its shard
from the source and replays the steps so far, and the batch is the one a run without the fault
gives.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import ray

from . import STRATEGIES, Acquisition, InputError, _bald, _count, _exclude, _Progress, _warn

__all__ = ["acquire", "scores"]

# The strategies that rank points by one score, each by the score of its name.
_TOP = tuple(s for s in STRATEGIES if s not in ("batchbald", "power-bald", "random"))


def _load(parts: Sequence[Any], column: str) -> np.ndarray:
    """A shard's values from its parts (ObjectRefs already resolved by Ray, or paths)."""
    arrays = []
    for p in parts:
        if isinstance(p, (str, os.PathLike)):
            p = np.load(p, mmap_mode="r")
        if isinstance(p, dict):
            p = p[column]
        arrays.append(np.asarray(p))
    a = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    if a.ndim != 3 or a.dtype not in (np.float16, np.float32, np.float64):
        raise InputError(
            f"a shard must be an N x K x C array of float16, float32 or float64, not "
            f"{a.dtype} of shape {a.shape}"
        )
    return np.ascontiguousarray(a)


@ray.remote
class _ShardActor:
    """One shard: its values, then its part of each greedy step (``_bald.Shard``)."""

    def __init__(self, number: int, parts: List[Any], column: str) -> None:
        self.number = number
        # Ray resolves ObjectRefs passed inside a list only when asked.
        parts = [ray.get(p) if isinstance(p, ray.ObjectRef) else p for p in parts]
        self.values: Optional[np.ndarray] = _load(parts, column)
        self.shard: Any = None

    def shape(self) -> Tuple[int, ...]:
        assert self.values is not None
        return tuple(int(d) for d in self.values.shape)

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def scores(self, score: str, backend: str) -> np.ndarray:
        assert self.values is not None
        out, _name, _seconds = _bald.scores(self.values, score, backend, "log_probs", "NKC")
        return out

    def prepare(self, args: Tuple[Any, ...]) -> int:
        """The greedy state (args: offset, whole N, batch size, num_samples, seed, greedy,
        past_limit, backend, excluded local indices); its batch."""
        assert self.values is not None
        self.shard = _bald.Shard(self.values, *args)
        # Held once, by the shard.
        self.values = None
        return int(self.shard.batch())

    def set_batch(self, batch: int) -> None:
        self.shard.set_batch(batch)

    def propose(self) -> Any:
        return self.shard.propose()

    def point_of(self, index: int) -> Any:
        return self.shard.point_of(index)

    def advance(self, keep: int, pick: Any, remote: Any) -> Any:
        """Ends the step with the pick, then makes the next step's proposal: one round trip
        per step."""
        self.shard.commit(keep, pick, remote)
        return self.shard.propose()

    def replay(self, args: Tuple[Any, ...], batch: int, history: List[Any]) -> None:
        """After a restart: the greedy state, then every step so far (each proposed again, then
        committed)."""
        self.prepare(args)
        self.shard.set_batch(batch)
        for keep, pick, remote in history:
            self.shard.propose()
            self.shard.commit(keep, pick, remote)


def _parts(source: Any, column: str, shards: Optional[int]) -> List[List[Any]]:
    """The source as its shards' parts, in order."""
    if isinstance(source, ray.data.Dataset):
        items: List[Any] = list(source.to_numpy_refs(column=column))
    elif isinstance(source, (list, tuple)):
        items = list(source)
    else:
        raise InputError(
            "source must be a ray.data.Dataset, a list of ObjectRefs or a list of .npy paths, "
            f"not {type(source).__name__}"
        )
    if not items:
        raise InputError("source holds no shards")
    for i, item in enumerate(items):
        if not isinstance(item, (ray.ObjectRef, str, os.PathLike)):
            raise InputError(
                f"shard {i}: an ObjectRef or a .npy path, not {type(item).__name__}"
            )
    count = len(items) if shards is None else _count("shards", shards)
    if count < 1:
        raise InputError("shards must be at least 1")
    bounds = np.linspace(0, len(items), min(count, len(items)) + 1).round().astype(int)
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class _Cluster:
    """The actors of a source's shards, their shapes and offsets."""

    def __init__(
        self,
        source: Any,
        column: str,
        shards: Optional[int],
        resources: Tuple[float, float],
        max_restarts: int,
    ) -> None:
        # Spread over the nodes: each shard where it has a node's memory and cores to itself.
        options = {
            "num_cpus": resources[0],
            "num_gpus": resources[1],
            "max_restarts": max_restarts,
            "max_task_retries": 0,
            "scheduling_strategy": "SPREAD",
        }
        self.actors = [
            _ShardActor.options(**options).remote(i, p, column)  # type: ignore[attr-defined]
            for i, p in enumerate(_parts(source, column, shards))
        ]
        shapes = [self.loaded(i) for i in range(len(self.actors))]
        k, c = shapes[0][1], shapes[0][2]
        for i, s in enumerate(shapes):
            if (s[1], s[2]) != (k, c):
                raise InputError(
                    f"shard {i} has K = {s[1]}, C = {s[2]}: shard 0 has K = {k}, C = {c}"
                )
        self.sizes = [s[0] for s in shapes]
        self.offsets = list(np.cumsum([0] + self.sizes[:-1]))
        self.n, self.k, self.c = sum(self.sizes), k, c

    def loaded(self, shard: int) -> Tuple[int, ...]:
        """Shard ``shard``'s shape, once its actor has read it; an actor that cannot read its
        shard dies in its constructor: an InputError naming the shard, not a hang."""
        try:
            shape: Tuple[int, ...] = self.get(shard, self.actors[shard].shape.remote())
            return shape
        except ray.exceptions.RayActorError as e:
            self.close()
            cause = getattr(e, "error_msg", None) or str(e)
            last = [line for line in cause.strip().splitlines() if line.strip()][-1]
            raise InputError(f"shard {shard} cannot be read: {last.strip()}") from None

    def owner(self, index: int) -> int:
        return bisect.bisect_right(self.offsets, index) - 1

    def get(self, shard: int, ref: Any) -> Any:
        """A call's result, its errors naming the shard and its points."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            # The shard's own error (its point indices the whole pool's), naming the shard.
            cause = e.cause
            if isinstance(cause, (InputError, _bald.BackendError)):
                raise type(cause)(f"shard {shard} ({self._points(shard)}): {cause}") from None
            raise

    def _points(self, shard: int) -> str:
        sizes = getattr(self, "sizes", None)
        if sizes is None:
            return "while loading"
        a = self.offsets[shard]
        return f"pool points {a}..{a + sizes[shard] - 1}"

    def close(self) -> None:
        for a in self.actors:
            ray.kill(a)


def scores(
    source: Any,
    score: str = "bald",
    *,
    column: str = "log_probs",
    shards: Optional[int] = None,
    backend: str = "cpu",
    num_cpus: float = 0,
    num_gpus: float = 0,
) -> np.ndarray:
    """Every point's ``score`` (one of ``bald.SCORES``), in the order of the source, float64:
    each shard scores its points where it is (``num_cpus``, ``num_gpus``: as in
    ``acquire``)."""
    cluster = _Cluster(source, column, shards, (num_cpus, num_gpus), 0)
    try:
        refs = [a.scores.remote(score, backend) for a in cluster.actors]
        return np.concatenate([cluster.get(i, r) for i, r in enumerate(refs)])
    finally:
        cluster.close()


def acquire(
    source: Any,
    strategy: str = "batchbald",
    batch_size: int = 10,
    *,
    column: str = "log_probs",
    shards: Optional[int] = None,
    num_samples: int = 10000,
    seed: int = 0,
    backend: str = "cpu",
    greedy: str = "lazy",
    past_limit: str = "stop",
    exclude: Any = None,
    num_cpus: float = 0,
    num_gpus: float = 0,
    max_restarts: int = 3,
    progress: bool = True,
    on_pick: Optional[Callable[[int, int], None]] = None,
) -> Acquisition:
    """Picks ``batch_size`` points of the sharded pool with ``strategy``: ``"batchbald"``, or a
    strategy that ranks points by one score (``"bald"``, ``"entropy"``, ``"var-ratios"``,
    ...). The picks, scores, evaluations' regimes and standard errors are those of
    ``bald.acquire`` on the concatenated pool with the same arguments.

    ``backend`` is where each shard computes: ``"cpu"`` or ``"scalar"``. ``past_limit``:
    ``"stop"`` (the default here) or ``"continue"``; ``"power-bald"`` draws its tail over the
    whole pool's scores, which the shards do not gather, and is an InputError. ``exclude``:
    global indices never picked, as in ``bald.acquire``. ``num_cpus``, ``num_gpus``: what each
    shard's actor reserves (the SIMD backend uses every core of its node whatever it
    reserves; the actors are spread over the nodes). ``max_restarts``: how many times Ray restarts a shard's actor that dies.
    ``on_pick(done, total)`` is called after each BatchBALD pick; ``progress`` shows a bar on
    stderr for runs longer than two seconds.
    """
    strategy = strategy.replace("_", "-").lower()
    batch_size = _count("batch_size", batch_size)
    if strategy != "batchbald" and strategy not in _TOP:
        raise InputError(
            f"bald.ray picks with batchbald or a score strategy ({', '.join(_TOP)}), "
            f"not '{strategy}'"
        )
    start = time.perf_counter()
    cluster = _Cluster(source, column, shards, (num_cpus, num_gpus), max_restarts)
    try:
        excluded = _exclude(exclude, cluster.n)
        seen = set()
        for i in excluded:
            if i >= cluster.n:
                raise InputError(
                    f"exclude: index {i} is out of range for a pool of {cluster.n} points"
                )
            if i in seen:
                raise InputError(f"exclude: index {i} is given twice")
            seen.add(i)
        if strategy == "batchbald":
            a = _batchbald(
                cluster, batch_size, num_samples, seed, backend, greedy, past_limit, excluded,
                progress, on_pick,
            )
        else:
            a = _top(cluster, strategy, batch_size, backend, excluded)
        return dataclasses.replace(a, strategy=strategy, seconds=time.perf_counter() - start)
    finally:
        cluster.close()


def _top(
    cluster: _Cluster, score: str, batch_size: int, backend: str, excluded: List[int]
) -> Acquisition:
    """The top-k of ``score`` over the shards: each shard's own top-k, merged (higher score
    first, ties to the lower index, as ``bald.acquire``)."""
    refs = [a.scores.remote(score, backend) for a in cluster.actors]
    mask = np.zeros(cluster.n, dtype=bool)
    mask[np.asarray(excluded, dtype=np.int64)] = True
    best_scores, best_indices = [], []
    for i, ref in enumerate(refs):
        s = cluster.get(i, ref)
        index = np.arange(len(s), dtype=np.int64) + cluster.offsets[i]
        keep = ~mask[index]
        s, index = s[keep], index[keep]
        order = np.lexsort((index, -s))[:batch_size]
        best_scores.append(s[order])
        best_indices.append(index[order])
    s, index = np.concatenate(best_scores), np.concatenate(best_indices)
    order = np.lexsort((index, -s))[:batch_size]
    return Acquisition(
        indices=index[order],
        scores=s[order],
        strategy="",
        backend=f"shards ({backend})",
        seconds=0.0,
    )


def _batchbald(
    cluster: _Cluster,
    batch_size: int,
    num_samples: int,
    seed: int,
    backend: str,
    greedy: str,
    past_limit: str,
    excluded: List[int],
    progress: bool,
    on_pick: Optional[Callable[[int, int], None]],
) -> Acquisition:
    mine: List[List[int]] = [[] for _ in cluster.actors]
    for i in excluded:
        s = cluster.owner(i)
        mine[s].append(i - cluster.offsets[s])
    params = (
        _count("batch_size", batch_size),
        _count("num_samples", num_samples),
        _count("seed", seed),
        greedy,
        past_limit,
        backend,
    )

    def args(s: int) -> Tuple[Any, ...]:
        return (int(cluster.offsets[s]), cluster.n, *params[:5], params[5], mine[s])

    refs = [a.prepare.remote(args(s)) for s, a in enumerate(cluster.actors)]
    candidates = sum(cluster.get(s, r) for s, r in enumerate(refs))
    driver = _bald.Driver(cluster.k, cluster.c, cluster.n, candidates, *params[:5])
    b = driver.batch()
    for s, r in enumerate([a.set_batch.remote(b) for a in cluster.actors]):
        cluster.get(s, r)
    # Each shard's steps so far, to replay on an actor that Ray restarted.
    history: List[List[Any]] = [[] for _ in cluster.actors]

    def gather(refs: List[Any], lost: Callable[[int], Any]) -> List[Any]:
        """The shards' results; an actor that died is restarted by Ray, replays the steps so
        far, and gives ``lost(s)`` instead."""
        out = []
        for s, ref in enumerate(refs):
            try:
                out.append(cluster.get(s, ref))
            except ray.exceptions.RayActorError:
                cluster.get(s, cluster.actors[s].replay.remote(args(s), b, history[s]))
                out.append(lost(s))
        return out

    def proposal(s: int) -> Any:
        return cluster.get(s, cluster.actors[s].propose.remote())

    proposals = []
    if not driver.done():
        proposals = gather([a.propose.remote() for a in cluster.actors], proposal)
    bar = _Progress() if progress else None
    try:
        while not driver.done():
            pick, keep = driver.merge(proposals)
            owner = cluster.owner(pick[1])

            actor = cluster.actors[owner]
            try:
                row, cond = cluster.get(owner, actor.point_of.remote(pick[1]))
            except ray.exceptions.RayActorError:
                cluster.get(owner, actor.replay.remote(args(owner), b, history[owner]))
                # Proposed again: the state the other shards are in at this step.
                proposal(owner)
                row, cond = cluster.get(owner, actor.point_of.remote(pick[1]))
            remote = (row.tolist(), cond)
            steps = [
                (keep[s], pick, None if s == owner else remote) for s in range(len(cluster.actors))
            ]
            for s in range(len(cluster.actors)):
                history[s].append(steps[s])
            warning = driver.record(pick, row, sum(p[5] for p in proposals))
            if warning is not None:
                _warn(warning)
            done = len(history[0])
            if on_pick is not None:
                on_pick(done, b)
            if bar is not None:
                bar(done, b)
            if driver.done():
                break
            # The step's commit and the next step's proposal, in one round trip.
            refs = [a.advance.remote(*steps[s]) for s, a in enumerate(cluster.actors)]
            proposals = gather(refs, proposal)
    finally:
        if bar is not None:
            bar.close()
    indices, scores, evaluations, regimes, errors, limit, switched = driver.finish()
    return Acquisition(
        indices=indices,
        scores=scores,
        strategy="batchbald",
        backend=f"shards ({backend})",
        seconds=0.0,
        evaluations=list(evaluations),
        regimes=list(regimes),
        standard_errors=errors,
        information_limit=limit,
        past_limit=past_limit.replace("_", "-").lower(),
        switched_after=switched,
    )
