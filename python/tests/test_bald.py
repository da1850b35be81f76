"""The Python API of bald: reference cases, every strategy, score, input kind, dtype and
layout, odd arrays, errors, determinism, the batchbald_redux drop-in and the dropout masks."""

from __future__ import annotations

import json
import math
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import bald
from bald.compat import batchbald_redux as compat

DATA = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "data"
BACKENDS = ["scalar", "cpu"]
# bald_core::budget: SCORES x (1 + ln C) per point, BATCHBALD_SCORE for cumulative scores,
# F32_INPUT and F16_INPUT for rounded input.
SCORES = 1e-6
BATCHBALD_SCORE = 1e-5
F32_INPUT = 1e-5
F16_INPUT = 2e-2


def score_tolerance(c: int) -> float:
    return SCORES * (1 + math.log(c))


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool(n: int = 60, k: int = 8, c: int = 4, seed: int = 0) -> np.ndarray:
    """Log-probs N x K x C (float64) with some certain and some uncertain points."""
    rng = np.random.default_rng(seed)
    temp = rng.uniform(0.2, 4.0, size=(n, 1, 1))
    return log_softmax(rng.normal(size=(n, k, c)) * temp)


def load(name: str):
    lp = np.load(DATA / f"case_{name}.npy")
    with open(DATA / f"case_{name}.json") as f:
        return lp, json.load(f)


def floats(v):
    return np.array([float(x) for x in v])


CASES = ["doc4", "r50_8_4", "r200_20_10", "dup", "edge_zeros"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_reference_cases(name, backend):
    lp, case = load(name)
    c = lp.shape[2]
    ref = case.get("reference_0log0", case)
    tol = score_tolerance(c)
    np.testing.assert_allclose(bald.entropy(lp, backend=backend), floats(ref["entropies"]), rtol=0, atol=tol)
    np.testing.assert_allclose(
        bald.conditional_entropy(lp, backend=backend),
        floats(ref["conditional_entropies"]),
        rtol=0,
        atol=tol,
    )
    for strategy in ["bald", "batchbald"]:
        want = ref[strategy]
        kwargs = {}
        if strategy == "batchbald":
            kwargs["num_samples"] = int(case["batchbald"]["num_samples"])
        got = bald.acquire(lp, strategy, int(want["batch_size"]), backend=backend, **kwargs)
        atol = tol if strategy == "bald" else BATCHBALD_SCORE
        np.testing.assert_allclose(got.scores, floats(want["scores"]), rtol=0, atol=atol)
        if name == "doc4":
            continue  # class-permuted copies: every order ties
        if name == "dup":
            groups = case["tie_groups"]
            assert [groups[i] for i in got.indices] == [groups[i] for i in want["indices"]]
        elif strategy == "bald" and name != "edge_zeros" and case["bald"]["gap_kth_to_next"] == 0.0:
            assert sorted(got.indices) == sorted(want["indices"])
        else:
            assert got.indices.tolist() == want["indices"], strategy
        assert got.indices.dtype == np.int64 and got.scores.dtype == np.float64


STRATEGIES = bald.STRATEGIES


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_matches_the_reference_backend(strategy):
    lp = pool(80, 10, 5, seed=1)
    # EPIG's targets: the first 8 points stand in for them.
    targets = lp[:8] if "epig" in strategy else None
    # Past ln K too: the greedy all the way.
    args = dict(seed=3, past_limit="continue", targets=targets)
    want = bald.acquire(lp, strategy, 7, backend="scalar", **args)
    got = bald.acquire(lp, strategy, 7, backend="cpu", **args)
    assert got.strategy == strategy and got.backend == "cpu"
    assert len(got.indices) == 7 and len(set(got.indices.tolist())) == 7
    assert got.indices.tolist() == want.indices.tolist()
    np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=BATCHBALD_SCORE)
    assert got.seconds > 0
    if strategy == "batchbald":
        assert len(got.evaluations) == 7 and all(e >= 1 for e in got.evaluations)


@pytest.mark.parametrize("score", bald.SCORES)
def test_every_score(score):
    lp = pool(50, 6, 3, seed=2)
    want = bald.scores(lp, score, backend="scalar")
    got = bald.scores(lp, score, backend="cpu")
    assert got.shape == (50,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=score_tolerance(3))


def test_invariants():
    lp = pool(200, 12, 6, seed=4)
    h = bald.entropy(lp)
    b = bald.scores(lp, "bald")
    assert np.all(b >= 0) and np.all(b <= h + 1e-12) and np.all(h <= math.log(6) + 1e-12)


@pytest.mark.parametrize("kind", ["log_probs", "probs", "logits"])
def test_input_kinds(kind):
    lp = pool(40, 6, 4, seed=5)
    x = {"log_probs": lp, "probs": np.exp(lp), "logits": lp * 1.0 + 3.0}[kind]
    got = bald.acquire(x, "batchbald", 5, input_kind=kind)
    want = bald.acquire(lp, "batchbald", 5)
    assert got.indices.tolist() == want.indices.tolist()
    np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 0.0), (np.float32, F32_INPUT), (np.float16, F16_INPUT)])
def test_dtypes(dtype, tol):
    lp = pool(40, 6, 4, seed=6)
    x = lp.astype(dtype)
    kind = "logits" if dtype == np.float16 else "log_probs"  # float16 rounding unnormalises rows
    got = bald.scores(x, "bald", input_kind=kind)
    want = bald.scores(lp, "bald")
    np.testing.assert_allclose(got, want, rtol=0, atol=tol + score_tolerance(4))


def test_layouts_take_views_and_copies():
    lp = pool(30, 7, 5, seed=7)
    want = bald.acquire(lp, "batchbald", 4)
    nck = np.ascontiguousarray(lp.transpose(0, 2, 1))  # baal's order, copied once
    assert bald.acquire(nck, "batchbald", 4, layout="NCK").indices.tolist() == want.indices.tolist()
    view = lp.transpose(0, 2, 1)  # an N x C x K view of an N x K x C block: read in place
    assert bald.acquire(view, "batchbald", 4, layout="nck").indices.tolist() == want.indices.tolist()
    knc = np.ascontiguousarray(lp.transpose(1, 0, 2))
    assert bald.acquire(knc, "batchbald", 4, layout="KNC").indices.tolist() == want.indices.tolist()


def test_non_contiguous_read_only_and_misaligned_arrays():
    lp = pool(30, 7, 5, seed=8)
    want = bald.scores(lp, "bald")
    strided = np.repeat(lp, 2, axis=0)[::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(bald.scores(strided, "bald"), want)
    ro = lp.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(bald.scores(ro, "bald"), want)
    raw = np.zeros(lp.size * 8 + 1, dtype=np.uint8)
    mis = np.frombuffer(raw.data, dtype=np.float64, count=lp.size, offset=1).reshape(lp.shape)
    assert not mis.flags.aligned
    raw[1:] = np.frombuffer(lp.tobytes(), dtype=np.uint8)
    np.testing.assert_array_equal(bald.scores(mis, "bald"), want)
    np.testing.assert_array_equal(bald.scores(lp.tolist(), "bald"), want)  # a nested list


def test_determinism_and_seeds():
    lp = pool(300, 8, 10, seed=9)
    for strategy in ["batchbald", "power-bald", "random"]:
        kw = {"num_samples": 50} if strategy == "batchbald" else {}
        a = bald.acquire(lp, strategy, 8, seed=11, **kw)
        b = bald.acquire(lp, strategy, 8, seed=11, **kw)
        assert a.indices.tolist() == b.indices.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)
    r = [bald.acquire(lp, "random", 8, seed=s).indices.tolist() for s in range(3)]
    assert r[0] != r[1] or r[1] != r[2]


def test_greedy_modes_exclusion_and_clamping():
    lp = pool(50, 8, 3, seed=10)
    lazy = bald.acquire(lp, "batchbald", 5, greedy="lazy")
    full = bald.acquire(lp, "batchbald", 5, greedy="full")
    assert lazy.indices.tolist() == full.indices.tolist()
    assert sum(lazy.evaluations) < sum(full.evaluations) == 5 * 50
    ex = lazy.indices[:2].tolist()
    got = bald.acquire(lp, "batchbald", 5, exclude=ex)
    assert not set(ex) & set(got.indices.tolist())
    assert len(bald.acquire(lp, "bald", 500).indices) == 50
    assert len(bald.acquire(lp, "batchbald", 0).indices) == 0


def test_errors_are_typed():
    lp = pool(10, 4, 3)
    bad = lp.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(bald.InputError, match=r"point 3, sample 2, class 1"):
        bald.batchbald(bad, 2)
    with pytest.raises(bald.InputError, match="normalise"):
        bald.bald(lp + 1.0, 2)
    inf = lp.copy()
    inf[0, 0, 0] = np.inf
    with pytest.raises(bald.InputError):
        bald.scores(inf)
    with pytest.raises(bald.InputError, match="3-d"):
        bald.batchbald(lp[0], 2)
    with pytest.raises(bald.InputError, match="dtype"):
        bald.batchbald(lp.astype(np.int32), 2)
    with pytest.raises(bald.InputError):
        bald.batchbald(np.array([[["a"]]], dtype=object), 2)
    for empty in [(0, 4, 3), (5, 0, 3), (5, 4, 0)]:
        with pytest.raises(bald.InputError):
            bald.batchbald(np.zeros(empty), 2)
    with pytest.raises(bald.InputError, match="unknown strategy"):
        bald.acquire(lp, "nope")
    with pytest.raises(bald.InputError, match="unknown score"):
        bald.scores(lp, "nope")
    with pytest.raises(bald.InputError, match="batch_size"):
        bald.batchbald(lp, -1)
    with pytest.raises(bald.InputError, match="num_samples"):
        bald.batchbald(lp, 2, num_samples=0)
    with pytest.raises(bald.InputError, match="beta"):
        bald.acquire(lp, "power-bald", 2, beta=float("nan"))
    with pytest.raises(bald.InputError, match="out of range"):
        bald.batchbald(lp, 2, exclude=[10])
    with pytest.raises(bald.InputError, match="K >= 2"):
        bald.batchbald(lp[:, :1, :], 2)
    with pytest.raises(bald.InputError, match="layout"):
        bald.batchbald(lp, 2, layout="CKN")
    with pytest.raises(bald.InputError, match="sum to 1|normalise|probab"):
        bald.batchbald(np.exp(lp) * 2, 2, input_kind="probs")
    assert issubclass(bald.InputError, ValueError)
    assert issubclass(bald.BackendError, RuntimeError)


def _gpu_present() -> bool:
    """Whether a CUDA driver (a GPU's, or the emulation's) reports a device."""
    import ctypes

    for name in ("libcuda.so", "libcuda.so.1"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def test_unavailable_backend_is_a_backend_error():
    if _gpu_present():
        pytest.skip("a GPU is present: backend='cuda' is available")
    with pytest.raises(bald.BackendError, match="cuda"):
        bald.batchbald(pool(10, 4, 3), 2, backend="cuda")


def test_ctrl_c_stops_batchbald_between_picks():
    """SIGINT during a long BatchBALD raises KeyboardInterrupt within a greedy step."""
    # Python's own SIGINT handler, even where the test runs with SIGINT ignored (a shell's
    # background job: Python then keeps it ignored, and the signal would never arrive).
    script = (
        "import signal, sys, numpy as np, bald\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "x = np.random.default_rng(0).normal(size=(20000, 20, 10)).astype(np.float32)\n"
        "print('started', flush=True)\n"
        "bald.batchbald(x, 400, input_kind='logits', num_samples=1000, greedy='full', backend='cpu')\n"
        "print('finished', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "started"
    time.sleep(1.5)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert "KeyboardInterrupt" in err, err
    assert "finished" not in out
    assert time.monotonic() - sent < 20


def test_dropout_keep_mask():
    m = bald.dropout_keep_mask(seed=7, layer=1, k=50, units=333, rate=0.25)
    assert m.shape == (50, 333) and m.dtype == np.bool_
    assert abs(m.mean() - 0.75) < 0.02
    assert not np.array_equal(m[0], m[1])
    np.testing.assert_array_equal(m, bald.dropout_keep_mask(7, 1, 50, 333, 0.25))
    assert not np.array_equal(m, bald.dropout_keep_mask(7, 2, 50, 333, 0.25))
    assert bald.dropout_keep_mask(7, 1, 3, 9, 0.0).all()
    assert bald.dropout_keep_mask(7, 1, 0, 9, 0.5).shape == (0, 9)
    with pytest.raises(bald.InputError):
        bald.dropout_keep_mask(7, 1, 3, 9, 1.0)


def philox4x32_10(ctr, key):
    """Random123's Philox4x32-10, written from its specification."""
    m0, m1, w0, w1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    x, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + w0) & 0xFFFFFFFF, (k[1] + w1) & 0xFFFFFFFF]
        p0, p1 = m0 * x[0], m1 * x[2]
        x = [(p1 >> 32) ^ x[1] ^ k[0], p1 & 0xFFFFFFFF, (p0 >> 32) ^ x[3] ^ k[1], p0 & 0xFFFFFFFF]
    return x


def test_dropout_keep_mask_matches_the_heads_definition():
    """The mask against the MC-dropout head's definition, computed here independently: unit u
    of layer l is kept in sample j when the top 24 bits of word u % 4 of
    Philox4x32-10(counter (u / 4, j, l, 1), key (seed low, seed high)) are at least
    ceil(rate 2^24)."""
    assert philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    seed, layer, rate = 0x1234_5678_9ABC_DEF0, 2, 0.3
    m = bald.dropout_keep_mask(seed, layer, 5, 11, rate)
    threshold = math.ceil(rate * 2**24)
    key = [seed & 0xFFFFFFFF, seed >> 32]
    for j in range(5):
        for u in range(11):
            w = philox4x32_10([u // 4, j, layer, 1], key)[u % 4]
            assert m[j, u] == ((w >> 8) >= threshold), (j, u)


def test_compat_batchbald_redux_types():
    lp = pool(40, 8, 4, seed=12)
    b = compat.get_batchbald_batch(lp, 4, 1000)
    assert isinstance(b, compat.CandidateBatch)
    assert isinstance(b.indices, list) and all(isinstance(i, int) for i in b.indices)
    assert isinstance(b.scores, list) and all(isinstance(s, float) for s in b.scores)
    want = bald.batchbald(lp, 4, num_samples=1000, backend="scalar", past_limit="continue")
    assert b.indices == want.indices.tolist()
    b = compat.get_bald_batch(lp, 4, dtype=None, device=None)
    assert b.indices == bald.bald(lp, 4).indices.tolist()
    h = compat.compute_entropy(lp)
    assert isinstance(h, np.ndarray) and h.dtype == np.float64 and h.shape == (40,)
    eh = compat.compute_conditional_entropy(lp)
    assert isinstance(eh, np.ndarray) and np.all(eh <= h + 1e-12)


def _torch():
    try:
        import torch as t
    except ImportError:
        pytest.skip("torch is not installed: the torch tests are run by hand (see README)")
    return t


class DlpackOnly:
    """A host array that has the DLPack protocol and nothing else (as some libraries' arrays)."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_host_arrays_with_only_dlpack():
    lp = pool(40, 8, 4, seed=15)
    x = DlpackOnly(lp)
    assert bald.batchbald(x, 5).indices.tolist() == bald.batchbald(lp, 5).indices.tolist()
    np.testing.assert_array_equal(bald.scores(x, "bald"), bald.scores(lp, "bald"))


def test_torch_cpu_tensors_through_dlpack():
    t = _torch()
    lp = pool(40, 8, 4, seed=13)
    x = t.from_numpy(lp.astype(np.float32))
    want = bald.batchbald(lp.astype(np.float32), 5)
    assert bald.batchbald(x, 5).indices.tolist() == want.indices.tolist()
    assert bald.batchbald(x.requires_grad_(), 5).indices.tolist() == want.indices.tolist()
    nck = t.from_numpy(lp).permute(0, 2, 1)
    assert bald.batchbald(nck, 5, layout="NCK").indices.tolist() == bald.batchbald(lp, 5).indices.tolist()
    h = compat.compute_entropy(t.from_numpy(lp))
    assert isinstance(h, t.Tensor) and h.dtype == t.float64


def test_against_batchbald_redux():
    t = _torch()
    try:
        from batchbald_redux import batchbald as redux
    except ImportError:
        pytest.skip("batchbald_redux is not installed: run by hand (see README)")
    lp = t.from_numpy(pool(100, 10, 5, seed=14))
    for (got, want) in [
        (compat.get_bald_batch(lp, 6), redux.get_bald_batch(lp, 6)),
        (compat.get_batchbald_batch(lp, 3, 1000), redux.get_batchbald_batch(lp, 3, 1000, dtype=t.double)),
    ]:
        assert type(got.indices) is type(want.indices) and type(got.scores) is type(want.scores)
        assert got.indices == want.indices
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=BATCHBALD_SCORE)
    for ours, theirs in [
        (compat.compute_entropy, redux.compute_entropy),
        (compat.compute_conditional_entropy, redux.compute_conditional_entropy),
    ]:
        a, b = ours(lp), theirs(lp)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=score_tolerance(5))
