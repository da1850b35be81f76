"""bald.epig and the EPIG strategies: the definition summed by brute force in NumPy, a known
value with exact zeros, every host backend, torch input, other layouts and input kinds, the
strategies' batches, and the errors (no targets, unused targets, another K or C)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import bald

EPIG_BUDGET = 1e-5


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool_and_targets(n: int = 60, m: int = 7, k: int = 9, c: int = 4, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    x = log_softmax(rng.normal(size=(n + m, k, c)) * rng.uniform(0.3, 4, size=(n + m, 1, 1)))
    x[rng.uniform(size=x.shape) < 0.1] = -np.inf  # exact zeros
    x[np.isneginf(x).all(axis=-1), 0] = 0.0
    x = log_softmax(x)
    return x[:n], x[n:]


def definition(lp: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """EPIG as the paper defines it: the C x C joint of each (point, target) pair over the K
    samples, I = H(y) + H(y*) - H(y, y*), with 0 log 0 = 0, averaged over the targets."""
    p, q = np.exp(lp), np.exp(lt)
    joint = np.einsum("nka,mkb->nmab", p, q) / p.shape[1]

    def h(x: np.ndarray, axes: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(x > 0, x * np.log(x), 0.0).sum(axis=axes)

    hy = h(p.mean(axis=1), -1)[:, None]
    hs = h(q.mean(axis=1), -1)[None, :]
    return (hy + hs - h(joint, (-2, -1))).mean(axis=1)


def test_the_definition_on_every_host_backend() -> None:
    lp, lt = pool_and_targets()
    want = definition(lp, lt)
    got = bald.epig(lp, lt, backend="scalar")
    np.testing.assert_allclose(got, np.maximum(want, 0), rtol=0, atol=EPIG_BUDGET)
    # float32 input: the definition on the same float32 values.
    lp32, lt32 = lp.astype(np.float32), lt.astype(np.float32)
    want32 = definition(lp32.astype(np.float64), lt32.astype(np.float64))
    np.testing.assert_allclose(bald.epig(lp32, lt32, backend="cpu"), np.maximum(want32, 0),
                               rtol=0, atol=EPIG_BUDGET)
    # Never above BALD: y* depends on the data only through the parameters.
    assert (got <= bald.scores(lp, "bald", backend="scalar") + EPIG_BUDGET).all()


def test_one_shared_coin_is_ln_2() -> None:
    # Two samples, each certain of another class, for the point and the target alike: the
    # authors' code of 2023 zeroed the joint entropy of a pair with an exact zero (2 ln 2).
    coin = np.array([[[0.0, -np.inf], [-np.inf, 0.0]]])
    for backend in ("scalar", "cpu"):
        got = bald.epig(coin, coin, backend=backend)
        assert abs(got[0] - math.log(2)) < 1e-6, (backend, got)


def test_torch_layouts_and_input_kinds() -> None:
    torch = pytest.importorskip("torch")
    lp, lt = pool_and_targets(seed=1)
    want = bald.epig(lp, lt, backend="cpu")
    got = bald.epig(torch.from_numpy(lp), torch.from_numpy(lt), backend="cpu")
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), want)
    # Logits in K x N x C, for the pool and the targets alike.
    logits_p, logits_t = lp + 3.0, lt - 1.0
    knc = lambda a: np.ascontiguousarray(a.transpose(1, 0, 2))  # noqa: E731
    np.testing.assert_allclose(
        bald.epig(knc(logits_p), knc(logits_t), backend="cpu", input_kind="logits",
                  layout="KNC"),
        want, rtol=0, atol=EPIG_BUDGET)


def test_the_strategies() -> None:
    lp, lt = pool_and_targets(n=80, seed=2)
    e = bald.epig(lp, lt, backend="cpu")
    top = bald.acquire(lp, "epig", 6, targets=lt, backend="cpu")
    np.testing.assert_array_equal(top.indices, np.lexsort((np.arange(80), -e))[:6])
    np.testing.assert_array_equal(top.scores, e[top.indices])
    for strategy in ("power-epig", "softmax-epig", "softrank-epig"):
        a = bald.acquire(lp, strategy, 6, targets=lt, backend="cpu", seed=3, exclude=[0, 1])
        b = bald.acquire(lp, strategy, 6, targets=lt, backend="cpu", seed=3, exclude=[0, 1])
        np.testing.assert_array_equal(a.indices, b.indices)
        assert len(set(a.indices.tolist())) == 6 and not {0, 1} & set(a.indices.tolist())
        np.testing.assert_array_equal(a.scores, e[a.indices])
        # A large beta draws the top-k (among the points left).
        sharp = bald.acquire(lp, strategy, 3, targets=lt, backend="cpu", beta=1e4)
        assert set(sharp.indices.tolist()) == set(top.indices[:3].tolist()), strategy
    b = bald.scores(lp, "bald", backend="cpu")
    for strategy in ("softmax-bald", "softrank-bald"):
        sharp = bald.acquire(lp, strategy, 3, backend="cpu", beta=1e4)
        assert set(sharp.indices.tolist()) == set(np.argsort(-b)[:3].tolist()), strategy


def test_errors() -> None:
    lp, lt = pool_and_targets()
    with pytest.raises(bald.InputError, match="strategy='epig' needs targets"):
        bald.acquire(lp, "epig", 3)
    with pytest.raises(bald.InputError, match="targets are for the EPIG strategies"):
        bald.acquire(lp, "bald", 3, targets=lt)
    with pytest.raises(bald.InputError, match=r"the targets are 7 x 5 x 4 .* pool is 60 x 9 x 4"):
        bald.epig(lp, lt[:, :5])
    with pytest.raises(bald.InputError, match=r"the targets are 7 x 9 x 3"):
        bald.acquire(lp, "power-epig", 3, targets=log_softmax(lt[:, :, :3]))


def batch_definition(lp: np.ndarray, lt: np.ndarray, batch: Any) -> float:
    """mean_m I(y_B; y*_m) by its definition: every configuration of the batch's labels."""
    p, q = np.exp(lp[list(batch)]), np.exp(lt)
    k, c = p.shape[1], p.shape[2]
    # P(config | w_k) over all C^b configurations: K x C^b.
    lik = np.ones((k, 1))
    for point in p:
        lik = (lik[:, :, None] * point[:, None, :]).reshape(k, -1)

    def h(x: np.ndarray) -> float:
        x = x[x > 0]
        return float(-(x * np.log(x)).sum())

    total = 0.0
    for target in q:
        joint = np.einsum("kb,kc->bc", lik, target) / k
        total += h(joint.sum(axis=1)) + h(joint.sum(axis=0)) - h(joint)
    return total / len(q)


def test_batch_epig() -> None:
    lp, lt = pool_and_targets(n=30, m=4, k=6, c=3, seed=5)
    exact = dict(targets=lt, num_samples=10**6)
    a = bald.acquire(lp, "batch-epig", 3, backend="cpu", **exact)
    assert a.strategy == "batch-epig" and a.regimes == ["exact"] * 3
    assert a.evaluations == [30, 29, 28]
    for t in range(3):
        want = batch_definition(lp, lt, a.indices[: t + 1].tolist())
        assert abs(a.scores[t] - want) <= EPIG_BUDGET, (t, a.scores[t], want)
        # No other candidate scores higher.
        for n in set(range(30)) - set(a.indices[:t].tolist()):
            other = batch_definition(lp, lt, [*a.indices[:t].tolist(), n])
            assert other <= want + 1e-4
    e = bald.epig(lp, lt, backend="cpu")
    assert a.indices[0] == int(np.argmax(e))
    want = bald.acquire(lp, "batch-epig", 3, backend="scalar", **exact)
    np.testing.assert_array_equal(a.indices, want.indices)
    # Sampled from the second pick (M C = 12 rows, 36 > 20), with every option of acquire.
    s = bald.acquire(lp, "batch-epig", 4, targets=lt, num_samples=20, seed=2, exclude=[a.indices[0]])
    assert s.regimes == ["exact", "sampled", "sampled", "sampled"]
    assert a.indices[0] not in s.indices.tolist() and len(set(s.indices.tolist())) == 4
    torch = pytest.importorskip("torch")
    t = bald.acquire(torch.from_numpy(lp), "batch-epig", 3, targets=torch.from_numpy(lt), num_samples=10**6)
    assert t.indices.tolist() == a.indices.tolist()
    with pytest.raises(bald.InputError, match="strategy='batch-epig' needs targets"):
        bald.acquire(lp, "batch-epig", 3)
