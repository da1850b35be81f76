"""bald.ray on a local Ray: a pool sharded 1, 2 and 5 ways (unequal sizes) from every source
kind picks what bald.acquire picks on the concatenated pool, in both regimes, with the
PowerBALD tail, a step that needs the merge, logits and other layouts; the strategies that
rank points by one key, and scores; the same warnings; errors that name the shard; a 3-node cluster with the shards spread over its nodes;
an actor killed in the middle of a run; and a Ray Data pipeline end to end."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest

ray = pytest.importorskip("ray")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import bald  # noqa: E402
import bald.ray  # noqa: E402

CUTS = {1: [], 2: [130], 5: [7, 60, 61, 150]}


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool(n: int = 200, k: int = 10, c: int = 4) -> np.ndarray:
    """Each of n/4 points 3 times (ties), then n/4 more, as float32 log-probs."""
    rng = np.random.default_rng(0)
    base = log_softmax(rng.normal(size=(n // 4, k, c)) * rng.uniform(0.5, 3, size=(n // 4, 1, 1)))
    more = log_softmax(rng.normal(size=(n // 4, k, c)) * 2)
    return np.concatenate([np.repeat(base, 3, axis=0), more]).astype(np.float32)


@pytest.fixture(scope="module")
def local() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def sources(lp: np.ndarray, shards: int, kind: str, tmp: Path) -> Any:
    parts = np.split(lp, CUTS[shards])
    if kind == "refs":
        return [ray.put(p) for p in parts]
    if kind == "npy":
        paths = []
        for i, p in enumerate(parts):
            paths.append(str(tmp / f"shard{i}.npy"))
            np.save(paths[-1], p)
        return paths
    return ray.data.from_numpy(parts)  # one block per part, in order


def same(got: bald.Acquisition, want: bald.Acquisition) -> None:
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.scores, want.scores)  # bit for bit
    assert got.regimes == want.regimes
    np.testing.assert_array_equal(got.standard_errors, want.standard_errors)
    assert got.information_limit == want.information_limit
    assert got.switched_after == want.switched_after


@pytest.mark.parametrize("kind", ["refs", "npy", "dataset"])
@pytest.mark.parametrize("shards", [1, 2, 5])
def test_shards_pick_what_the_concatenated_pool_picks(
    local: None, kind: str, shards: int, tmp_path: Path
) -> None:
    lp = pool()
    source = sources(lp, shards, kind, tmp_path)
    column = "data" if kind == "dataset" else "log_probs"
    exclude = [0, 1, 2, 131, 199]
    # Exact throughout (4^7 <= 20000), and sampled from the third pick (40).
    for num_samples in (20000, 40):
        args = dict(num_samples=num_samples, past_limit="continue", exclude=exclude, seed=3)
        want = bald.acquire(lp, "batchbald", 8, backend="cpu", **args)
        got = bald.ray.acquire(source, "batchbald", 8, column=column, **args)
        same(got, want)
        assert got.backend == "shards (cpu)"
    # The PowerBALD tail past the limit: each shard's best keys, merged.
    args = dict(num_samples=40, exclude=exclude, seed=3)
    with pytest.warns(UserWarning, match="reached ln K"):
        want = bald.acquire(lp, "batchbald", 12, backend="cpu", **args)
    assert "power-bald" in want.regimes
    with pytest.warns(UserWarning, match="reached ln K"):
        got = bald.ray.acquire(source, "batchbald", 12, column=column, **args)
    same(got, want)
    # The strategies that rank points by one key.
    for strategy, args in [
        ("bald", {}),
        ("var-ratios", {}),
        ("random", dict(seed=7)),
        ("power-bald", dict(seed=2, beta=2.0)),
        ("power-bald", dict(beta=0.0)),
    ]:
        want = bald.acquire(lp, strategy, 12, backend="cpu", exclude=exclude, **args)
        got = bald.ray.acquire(source, strategy, 12, column=column, exclude=exclude, **args)
        np.testing.assert_array_equal(got.indices, want.indices, err_msg=strategy)
        np.testing.assert_array_equal(got.scores, want.scores, err_msg=strategy)
    np.testing.assert_array_equal(
        bald.ray.scores(source, "mean-std", column=column), bald.scores(lp, "mean-std", backend="cpu")
    )


class CountingDriver:
    """bald.ray's driver, counting the steps that needed every shard's evaluations."""

    merges = 0
    Driver = bald._bald.Driver

    def __init__(self, *args: Any) -> None:
        self.driver = CountingDriver.Driver(*args)

    def merge(self, *args: Any) -> Any:
        CountingDriver.merges += 1
        return self.driver.merge(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver, name)


@pytest.mark.parametrize("shards", [1, 2, 5])
def test_a_step_the_bests_do_not_settle_merges_every_shards_evaluations(
    local: None, shards: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sampled estimate above its own bound, at one step of 12 on this pool.
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.normal(size=(120, 8, 4)) * 2).astype(np.float32)
    source = [ray.put(p) for p in np.split(lp, {1: [], 2: [50], 5: [7, 31, 32, 90]}[shards])]
    args = dict(num_samples=2, seed=0, past_limit="continue")
    with pytest.warns(UserWarning):
        want = bald.acquire(lp, "batchbald", 12, backend="cpu", **args)
    monkeypatch.setattr(bald.ray._bald, "Driver", CountingDriver)
    CountingDriver.merges = 0
    with pytest.warns(UserWarning):
        got = bald.ray.acquire(source, "batchbald", 12, **args)
    same(got, want)
    assert 0 < CountingDriver.merges < 12


def test_the_limit_stops_the_batch_and_warns(local: None) -> None:
    lp = pool()
    source = [ray.put(p) for p in np.split(lp, CUTS[2])]
    with pytest.warns(UserWarning, match="reached ln K") as caught:
        want = bald.acquire(lp, "batchbald", 12, backend="cpu", past_limit="stop")
    with pytest.warns(UserWarning, match="reached ln K") as got_warnings:
        got = bald.ray.acquire(source, "batchbald", 12, past_limit="stop")
    assert [str(w.message) for w in got_warnings] == [str(w.message) for w in caught]
    same(got, want)
    assert got.switched_after is not None
    # The warnings on the arguments, before any work, as bald.acquire gives them.
    with pytest.warns(UserWarning) as caught:
        bald.acquire(lp, "batchbald", 3, backend="cpu", num_samples=4)
    with pytest.warns(UserWarning) as got_warnings:
        bald.ray.acquire(source, "batchbald", 3, num_samples=4, progress=False)
    assert [str(w.message) for w in got_warnings] == [str(w.message) for w in caught]
    assert "num_samples=4 is below K = 10" in str(caught[0].message)


def test_epig_over_shards(local: None) -> None:
    lp = pool()
    targets = lp[::20][:8]
    source = [ray.put(p) for p in np.split(lp, CUTS[5])]
    for strategy in ("epig", "power-epig", "softmax-epig"):
        args = dict(targets=targets, exclude=[4, 150], seed=6, beta=3.0)
        want = bald.acquire(lp, strategy, 9, backend="cpu", **args)
        got = bald.ray.acquire(source, strategy, 9, **args)
        np.testing.assert_array_equal(got.indices, want.indices, err_msg=strategy)
        np.testing.assert_array_equal(got.scores, want.scores, err_msg=strategy)
    with pytest.raises(bald.InputError, match="softrank-epig.* whole pool's scores"):
        bald.ray.acquire(source, "softrank-epig", 9, targets=targets)
    with pytest.raises(bald.InputError, match="needs targets"):
        bald.ray.acquire(source, "epig", 9)
    with pytest.raises(bald.InputError, match="batch-epig.* whole pool in one process"):
        bald.ray.acquire(source, "batch-epig", 9, targets=targets)


@pytest.mark.parametrize("kind", ["refs", "dataset"])
def test_logits_and_other_layouts(local: None, kind: str, tmp_path: Path) -> None:
    logits = np.random.default_rng(4).normal(size=(90, 10, 4)).astype(np.float32) * 2
    for layout, axes in [("NCK", (0, 2, 1)), ("KNC", (1, 0, 2))]:
        if kind == "dataset" and layout == "KNC":
            with pytest.raises(bald.InputError, match="a Dataset's rows are points"):
                bald.ray.acquire(ray.data.from_numpy(logits), layout=layout, column="data")
            continue
        a = np.ascontiguousarray(logits.transpose(axes))
        parts = np.split(a, [40], axis=axes.index(0))
        source: Any = [ray.put(p) for p in parts]
        if kind == "dataset":
            source = ray.data.from_numpy(parts)
        column = "data" if kind == "dataset" else "log_probs"
        args = dict(input_kind="logits", layout=layout, seed=1, exclude=[3, 50])
        for strategy in ("batchbald", "power-bald", "entropy"):
            want = bald.acquire(a, strategy, 6, backend="cpu", **args)
            got = bald.ray.acquire(source, strategy, 6, column=column, **args)
            np.testing.assert_array_equal(got.indices, want.indices, err_msg=strategy)
            np.testing.assert_array_equal(got.scores, want.scores, err_msg=strategy)
        np.testing.assert_array_equal(
            bald.ray.scores(source, "bald", column=column, input_kind="logits", layout=layout),
            bald.scores(a, "bald", backend="cpu", input_kind="logits", layout=layout),
        )


def test_bad_shards_are_errors_that_name_them(local: None, tmp_path: Path) -> None:
    lp = pool()
    np.save(tmp_path / "a.npy", lp)
    other = log_softmax(np.random.default_rng(1).normal(size=(30, 10, 5))).astype(np.float32)
    with pytest.raises(bald.InputError, match=r"shard 1 has K = 10, C = 5: shard 0 has K = 10, C = 4"):
        bald.ray.acquire([ray.put(lp), ray.put(other)], "batchbald", 5)
    bad = lp.copy()
    bad[137, 2, 1] = np.nan
    source = [ray.put(p) for p in np.split(bad, CUTS[2])]
    with pytest.raises(bald.InputError) as single:
        bald.acquire(bad, "batchbald", 5, backend="cpu")
    assert "point 137, sample 2, class 1" in str(single.value)
    # The whole pool's error, naming the shard.
    with pytest.raises(bald.InputError) as e:
        bald.ray.acquire(source, "batchbald", 5, past_limit="stop")
    assert str(e.value) == f"shard 1 (pool points 130..199): {single.value}"
    with pytest.raises(bald.InputError, match=r"shard 1 cannot be read: .*No such file"):
        bald.ray.acquire([str(tmp_path / "a.npy"), str(tmp_path / "missing.npy")], "bald", 5)
    with pytest.raises(bald.InputError, match="not a source|ray.data.Dataset"):
        bald.ray.acquire(lp, "batchbald", 5)
    with pytest.raises(bald.InputError, match="out of range for a pool of 200 points"):
        bald.ray.acquire([ray.put(lp)], "batchbald", 5, exclude=[200])
    with pytest.raises(bald.InputError, match="exclude: index 3 is given twice"):
        bald.ray.acquire([ray.put(lp)], "power-bald", 5, exclude=[3, 3])
    with pytest.raises(bald.InputError, match="unknown strategy 'badd'"):
        bald.ray.acquire([ray.put(lp)], "badd", 5)


def shard_pids() -> List[int]:
    """The processes of the shard actors, by the title Ray gives them."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"_ShardActor" in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return sorted(pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_actor_killed_mid_run_is_restarted_and_the_batch_is_the_same(local: None) -> None:
    lp = pool()
    source = [ray.put(p) for p in np.split(lp, CUTS[5])]
    args = dict(num_samples=40, past_limit="continue", seed=5)
    want = bald.acquire(lp, "batchbald", 10, backend="cpu", **args)
    killed = []

    def kill(done: int, total: int) -> None:
        if done in (3, 6):
            pid = shard_pids()[done % 5]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    got = bald.ray.acquire(source, "batchbald", 10, on_pick=kill, **args)
    assert len(killed) == 2
    same(got, want)


def test_a_three_node_cluster_spreads_the_shards() -> None:
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, logging_level="ERROR")
        lp = pool()
        source = [ray.put(p) for p in np.split(lp, [70, 140])]
        cl = bald.ray._Cluster(source, "log_probs", None, "NKC", (1, 0), 0)
        nodes = ray.get([a.node.remote() for a in cl.actors])
        cl.close()
        assert len(set(nodes)) == 3, nodes
        args = dict(num_samples=40, past_limit="continue")
        want = bald.acquire(lp, "batchbald", 8, backend="cpu", **args)
        same(bald.ray.acquire(source, "batchbald", 8, num_cpus=1, **args), want)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_ray_data_pipeline_end_to_end() -> None:
    pytest.importorskip("torch")
    examples = Path(__file__).resolve().parents[1] / "examples"
    sys.path.insert(0, str(examples))
    import ray_pipeline

    # The workers import the example's model as the driver does.
    ray.shutdown()
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([str(examples), *sys.path])}}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", runtime_env=env)
    try:
        predictions = ray_pipeline.pipeline(n=600, blocks=3).materialize()
        got = bald.ray.acquire(predictions, "batchbald", 10, num_samples=1000)
        lp = np.concatenate(ray.get(predictions.to_numpy_refs(column="log_probs")))
        assert lp.shape == (600, ray_pipeline.K, ray_pipeline.CLASSES)
        want = bald.acquire(lp, "batchbald", 10, num_samples=1000, backend="cpu", past_limit="stop")
        same(got, want)
    finally:
        ray.shutdown()
