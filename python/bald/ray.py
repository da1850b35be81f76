"""bald.ray: acquisition on a pool sharded across a Ray cluster, with the picks and scores that
``bald.acquire`` gives on the concatenated pool.

Install with ``pip install "bald[ray]"``. The pool stays where it is: each shard is held once,
by one actor, prepared once, and the driver holds the batch so far (its picks' K x C points)
and one proposal per shard per step.

A ``source`` is one of:

- a ``ray.data.Dataset`` with a column of per-point arrays (K x C, or C x K with
  ``layout="NCK"``; ``column``, ``"log_probs"`` by default), the output of a ``map_batches``
  inference; its blocks, in order, are the shards (``shards=`` groups consecutive blocks);
- a list of ``ObjectRef``\\ s of arrays, one shard each;
- a list of ``.npy`` paths that the workers can read, one shard each.

A shard's array is in ``layout`` (N x K x C by default, as ``bald.acquire``) and holds
``input_kind`` (float16, float32 or float64), validated by its actor as ``bald.acquire``
validates the whole pool. Global indices follow the order of the source.

Greedy BatchBALD runs one step at a time. Every shard evaluates its candidates until its own
best is certain and proposes that best with its K x C point. The best of the bests is the
step's pick whenever its own bound holds (always in the exact regime); the driver sends it to
every shard, which commits the step and makes its next proposal in the same call: one round
trip per step, moving one proposal per shard and one point to each. When the bests do not
settle a step (a sampled estimate above its own bound), the driver fetches every shard's
evaluations and merges them into the step of one lazy greedy over the whole pool. Past the
information limit, the PowerBALD tail is each shard's best keys, merged.

The strategies that rank points by one key (``bald``, ``entropy``, ..., ``random``,
``power-bald``) are each shard's best points, merged: every key is keyed by its point's index
in the whole pool, so the batch is the whole pool's.

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

from . import (
    Acquisition,
    InputError,
    _bald,
    _count,
    _exclude,
    _input,
    _layout_axes,
    _Progress,
    _warn,
)

__all__ = ["acquire", "scores"]


def _load(parts: Sequence[Any], column: str, n_axis: int) -> np.ndarray:
    """A shard's values from its parts (ObjectRefs already resolved by Ray, or paths), joined
    along the points' axis."""
    arrays = []
    for p in parts:
        if isinstance(p, (str, os.PathLike)):
            p = np.load(p, mmap_mode="r")
        if isinstance(p, dict):
            p = p[column]
        arrays.append(np.asarray(p))
    a = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=n_axis)
    if a.ndim != 3 or a.dtype not in (np.float16, np.float32, np.float64):
        raise InputError(
            f"a shard must be a 3-d array of float16, float32 or float64, not "
            f"{a.dtype} of shape {a.shape}"
        )
    return np.ascontiguousarray(a)


@ray.remote
class _ShardActor:
    """One shard: its values, then its part of a ranking or of each greedy step
    (``_bald.Shard``)."""

    def __init__(self, parts: List[Any], column: str, n_axis: int) -> None:
        # Ray resolves ObjectRefs passed inside a list only when asked.
        parts = [ray.get(p) if isinstance(p, ray.ObjectRef) else p for p in parts]
        self.values: Optional[np.ndarray] = _load(parts, column, n_axis)
        self.shard: Any = None

    def shape(self) -> Tuple[int, ...]:
        assert self.values is not None
        return tuple(int(d) for d in self.values.shape)

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def scores(self, score: str, backend: str, input_kind: str, layout: str) -> np.ndarray:
        assert self.values is not None
        out, _name, _seconds = _bald.scores(self.values, score, backend, input_kind, layout)
        return out

    def rank(self, args: Tuple[Any, ...], targets: Any) -> Any:
        """Its best points (args: settings, backend, input kind, layout, offset, excluded
        local indices; EPIG's targets, which Ray resolves)."""
        assert self.values is not None
        settings, backend, input_kind, layout, offset, exclude = args
        return _bald.rank(
            self.values, settings, backend, input_kind, layout, offset, exclude, targets
        )

    def prepare(self, args: Tuple[Any, ...]) -> int:
        """The greedy state (args: settings, offset, whole N, backend, input kind, layout,
        excluded local indices); its batch."""
        assert self.values is not None
        self.shard = _bald.Shard(self.values, *args)
        # Held once, by the shard.
        self.values = None
        return int(self.shard.batch())

    def set_batch(self, batch: int) -> None:
        self.shard.set_batch(batch)

    def propose(self) -> Any:
        return self.shard.propose()

    def evaluated(self) -> Any:
        return self.shard.evaluated()

    def point_of(self, index: int) -> Any:
        return self.shard.point_of(index)

    def advance(self, keep: Optional[int], pick: Any, remote: Any) -> Any:
        """Ends the step with the pick, then makes the next step's proposal: one round trip
        per step."""
        self.shard.commit(keep, pick, remote)
        return self.shard.propose()

    def tail(self, rest: int, picks: List[int]) -> Any:
        return self.shard.tail(rest, picks)

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
    """The actors of a source's shards, their shapes (in ``layout``) and offsets."""

    def __init__(
        self,
        source: Any,
        column: str,
        shards: Optional[int],
        layout: str,
        resources: Tuple[float, float],
        max_restarts: int,
    ) -> None:
        axes = _layout_axes(layout)
        if isinstance(source, ray.data.Dataset) and axes[0] != 0:
            raise InputError(
                f"a Dataset's rows are points: its column holds K x C (NKC) or C x K (NCK) "
                f"arrays, not layout '{layout}'"
            )
        # Spread over the nodes: each shard where it has a node's memory and cores to itself.
        options = {
            "num_cpus": resources[0],
            "num_gpus": resources[1],
            "max_restarts": max_restarts,
            "max_task_retries": 0,
            "scheduling_strategy": "SPREAD",
        }
        self.actors = [
            _ShardActor.options(**options).remote(p, column, axes[0])  # type: ignore[attr-defined]
            for p in _parts(source, column, shards)
        ]
        shapes = [self.loaded(i) for i in range(len(self.actors))]
        k, c = shapes[0][axes[1]], shapes[0][axes[2]]
        for i, s in enumerate(shapes):
            if (s[axes[1]], s[axes[2]]) != (k, c):
                raise InputError(
                    f"shard {i} has K = {s[axes[1]]}, C = {s[axes[2]]}: shard 0 has "
                    f"K = {k}, C = {c}"
                )
        self.sizes = [s[axes[0]] for s in shapes]
        self.offsets = list(np.cumsum([0] + self.sizes[:-1]))
        self.n, self.k, self.c = sum(self.sizes), k, c
        # The whole pool's array dimensions, in its layout.
        dims = list(shapes[0])
        dims[axes[0]] = self.n
        self.dims = dims

    def local(self, indices: List[int]) -> List[List[int]]:
        """Whole-pool indices as each shard's own."""
        mine: List[List[int]] = [[] for _ in self.actors]
        for i in indices:
            s = self.owner(i)
            mine[s].append(i - int(self.offsets[s]))
        return mine

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
    input_kind: str = "log_probs",
    layout: str = "NKC",
    num_cpus: float = 0,
    num_gpus: float = 0,
) -> np.ndarray:
    """Every point's ``score`` (one of ``bald.SCORES``), in the order of the source, float64:
    each shard scores its points where it is (``input_kind``, ``layout``: as in
    ``bald.scores``; ``num_cpus``, ``num_gpus``: as in ``acquire``)."""
    cluster = _Cluster(source, column, shards, layout, (num_cpus, num_gpus), 0)
    try:
        refs = [a.scores.remote(score, backend, input_kind, layout) for a in cluster.actors]
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
    beta: float = 1.0,
    seed: int = 0,
    backend: str = "cpu",
    input_kind: str = "log_probs",
    layout: str = "NKC",
    greedy: str = "lazy",
    past_limit: str = "power-bald",
    exclude: Any = None,
    progress: bool = True,
    targets: Any = None,
    num_cpus: float = 0,
    num_gpus: float = 0,
    max_restarts: int = 3,
    on_pick: Optional[Callable[[int, int], None]] = None,
) -> Acquisition:
    """Picks ``batch_size`` points of the sharded pool with ``strategy`` (one of
    ``bald.STRATEGIES``). The picks, scores, and BatchBALD's regimes, standard errors and
    information limit are those of ``bald.acquire`` on the concatenated pool with the same
    arguments, and so are its warnings and errors, given when they apply.

    ``num_samples``, ``beta``, ``seed``, ``input_kind``, ``layout``, ``greedy``,
    ``past_limit``, ``exclude`` (global indices), ``progress`` and ``targets`` (EPIG's, one
    array that every shard reads): as in ``bald.acquire``. ``softrank-*`` draws by ranks among
    the whole pool's scores, which the shards do not gather: an InputError.
    ``backend`` is where each shard computes: ``"cpu"``, ``"scalar"`` or ``"cuda"`` (with
    ``num_gpus``, so that Ray places each actor with a GPU; the GPU evaluates the shard's
    candidates, and its picks are the CPU's where the math is exact). ``num_cpus``,
    ``num_gpus``: what each shard's actor reserves (the SIMD backend uses every core of its
    node whatever it reserves; the actors are spread over the nodes). ``max_restarts``: how
    many times Ray restarts a shard's actor that dies. ``on_pick(done, total)`` is called after
    each BatchBALD pick.
    """
    batch_size = _count("batch_size", batch_size)
    settings = (
        strategy,
        batch_size,
        _count("num_samples", num_samples),
        float(beta),
        _count("seed", seed),
        greedy,
        past_limit,
    )
    start = time.perf_counter()
    cluster = _Cluster(source, column, shards, layout, (num_cpus, num_gpus), max_restarts)
    try:
        excluded = _exclude(exclude, cluster.n)
        # The arguments against the whole pool, before any work: bald.acquire's errors and
        # warnings.
        t = None if targets is None else _input(targets, layout, "cpu", input_kind)[0]
        dims = None if t is None else tuple(int(d) for d in t.shape)
        for message in _bald.check(settings, tuple(cluster.dims), layout, excluded, dims):
            _warn(message)
        pool = (backend, input_kind, layout)
        name = strategy.replace("_", "-").lower()
        if name == "batchbald":
            a = _batchbald(cluster, settings, pool, excluded, progress, on_pick)
        else:
            a = _ranked(cluster, settings, pool, excluded, None if t is None else ray.put(t))
        return dataclasses.replace(a, strategy=name, seconds=time.perf_counter() - start)
    finally:
        cluster.close()


def _ranked(
    cluster: _Cluster,
    settings: Tuple[Any, ...],
    pool: Tuple[str, str, str],
    excluded: List[int],
    targets: Any,
) -> Acquisition:
    """A strategy that ranks points by one key: each shard's best points, merged."""
    mine = cluster.local(excluded)
    refs = [
        a.rank.remote((settings, *pool, int(cluster.offsets[s]), mine[s]), targets)
        for s, a in enumerate(cluster.actors)
    ]
    parts = [cluster.get(s, r) for s, r in enumerate(refs)]
    indices, scores = _bald.merge_ranked(parts, settings[1])
    return Acquisition(
        indices=indices, scores=scores, strategy="", backend=f"shards ({pool[0]})", seconds=0.0
    )


def _batchbald(
    cluster: _Cluster,
    settings: Tuple[Any, ...],
    pool: Tuple[str, str, str],
    excluded: List[int],
    progress: bool,
    on_pick: Optional[Callable[[int, int], None]],
) -> Acquisition:
    mine = cluster.local(excluded)

    def args(s: int) -> Tuple[Any, ...]:
        return (settings, int(cluster.offsets[s]), cluster.n, *pool, mine[s])

    refs = [a.prepare.remote(args(s)) for s, a in enumerate(cluster.actors)]
    candidates = sum(cluster.get(s, r) for s, r in enumerate(refs))
    driver = _bald.Driver(settings, cluster.k, cluster.c, cluster.n, candidates)
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

    def evaluated(s: int) -> Any:
        # Proposed again: the state the other shards are in at this step.
        proposal(s)
        return cluster.get(s, cluster.actors[s].evaluated.remote())

    proposals = []
    if not driver.done():
        proposals = gather([a.propose.remote() for a in cluster.actors], proposal)
    bar = _Progress() if progress else None
    try:
        while not driver.done():
            settled = driver.step(proposals)
            if settled is not None:
                # The best of the shards' bests: its point came with its proposal.
                pick, owner = settled
                keep: List[Optional[int]] = [None] * len(cluster.actors)
                row, cond = proposals[owner][1]
            else:
                lists = gather([a.evaluated.remote() for a in cluster.actors], evaluated)
                pick, kept = driver.merge(proposals, lists)
                keep = list(kept)
                owner = cluster.owner(pick[1])
                actor = cluster.actors[owner]
                try:
                    row, cond = cluster.get(owner, actor.point_of.remote(pick[1]))
                except ray.exceptions.RayActorError:
                    cluster.get(owner, actor.replay.remote(args(owner), b, history[owner]))
                    proposal(owner)
                    row, cond = cluster.get(owner, actor.point_of.remote(pick[1]))
            remote = (row.tolist(), cond)
            steps = [
                (keep[s], pick, None if s == owner else remote) for s in range(len(cluster.actors))
            ]
            for s in range(len(cluster.actors)):
                history[s].append(steps[s])
            warning = driver.record(pick, row, sum(p[4] for p in proposals))
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
    rest = driver.tail()
    if rest > 0:
        # Each shard draws its part of the tail, never the greedy's picks.
        picks = driver.picks()
        parts = gather(
            [a.tail.remote(rest, picks) for a in cluster.actors],
            lambda s: cluster.get(s, cluster.actors[s].tail.remote(rest, picks)),
        )
        driver.record_tail(parts)
    indices, scores, evaluations, regimes, errors, limit, switched = driver.finish()
    return Acquisition(
        indices=indices,
        scores=scores,
        strategy="batchbald",
        backend=f"shards ({pool[0]})",
        seconds=0.0,
        evaluations=list(evaluations),
        regimes=list(regimes),
        standard_errors=errors,
        information_limit=limit,
        past_limit=settings[6].replace("_", "-").lower(),
        switched_after=switched,
    )
