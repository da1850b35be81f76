"""The Python API as a user meets it: ``exclude`` in every form, the CLI's warnings and hints
when they apply, BatchBALD past its information limit, progress, return types that follow the
input, float64 precision in ``bald.compat``, and the standard errors of sampled scores."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

import bald
from bald.compat import batchbald_redux as compat


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def pool(n: int = 60, k: int = 8, c: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return log_softmax(rng.normal(size=(n, k, c)) * rng.uniform(0.2, 4.0, size=(n, 1, 1)))


def uncertain(n: int = 200, k: int = 6, c: int = 10, seed: int = 0) -> np.ndarray:
    """Points whose K samples disagree: BatchBALD reaches ln K within a few picks."""
    return log_softmax(np.random.default_rng(seed).normal(size=(n, k, c)) * 3.0)


def _torch():
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    return torch


# --- exclude ---------------------------------------------------------------------------------


def _excludes(n: int):
    yield "list", [0, 2]
    yield "range", range(0, 3, 2)
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64):
        yield f"numpy {np.dtype(dtype).name}", np.array([0, 2], dtype=dtype)
    mask = np.zeros(n, dtype=bool)
    mask[[0, 2]] = True
    yield "bool mask", mask
    yield "bool list", mask.tolist()


def test_exclude_takes_every_integer_array_like_and_masks():
    lp = pool(30, 6, 3, seed=1)
    lp = lp[np.argsort(-bald.scores(lp, "bald"), kind="stable")]  # the best by BALD first
    assert bald.bald(lp, 3).indices.tolist() == [0, 1, 2]
    for name, ex in _excludes(30):
        for strategy in ("bald", "batchbald", "power-bald", "random"):
            got = bald.acquire(lp, strategy, 28, exclude=ex).indices.tolist()
            assert 0 not in got and 2 not in got and len(got) == 28, (name, strategy)


def test_exclude_of_point_zero_alone_excludes_it():
    """np.array([0]) is falsy: it must still exclude point 0."""
    lp = pool(20, 6, 3, seed=2)
    best = int(bald.bald(lp, 1).indices[0])
    lp[[0, best]] = lp[[best, 0]]
    assert bald.bald(lp, 1).indices.tolist() == [0]
    for ex in (np.array([0]), [0], np.array([True] + [False] * 19)):
        for strategy in ("bald", "batchbald"):
            assert 0 not in bald.acquire(lp, strategy, 5, exclude=ex).indices.tolist()


def test_exclude_torch_tensors():
    torch = _torch()
    lp = pool(20, 6, 3, seed=3)
    best = int(bald.bald(lp, 1).indices[0])
    for ex in (torch.tensor([best]), torch.tensor([best], dtype=torch.int32)):
        assert best not in bald.bald(lp, 5, exclude=ex).indices.tolist()
    mask = torch.zeros(20, dtype=torch.bool)
    mask[best] = True
    assert best not in bald.batchbald(lp, 5, exclude=mask).indices.tolist()


@pytest.mark.parametrize(
    "ex,match",
    [
        ([1.0, 2.0], "integers"),
        (np.array([1.5]), "integers"),
        ([30], "out of range"),
        (np.array([-1]), "out of range"),
        ([3, 3], "given twice"),
        (np.array([[1, 2]]), "1-d"),
        (np.zeros(29, dtype=bool), "one entry per pool point"),
        (5, "1-d"),
    ],
)
def test_exclude_errors(ex, match):
    lp = pool(30, 6, 3)
    with pytest.raises(bald.InputError, match=match):
        bald.batchbald(lp, 3, exclude=ex)
    with pytest.raises(bald.InputError, match=match):
        bald.bald(lp, 3, exclude=ex)


# --- warnings --------------------------------------------------------------------------------


def test_a_knc_array_passed_as_nkc_warns():
    lp = pool(40, 8, 4, seed=4)
    knc = np.ascontiguousarray(lp.transpose(1, 0, 2))  # torch.stack(samples): 8 x 40 x 4
    with pytest.warns(UserWarning, match=r"N = 8 points and K = 40 .* layout='knc'"):
        bald.batchbald(knc, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bald.batchbald(knc, 3, layout="KNC")


def test_num_samples_below_k_warns():
    lp = pool(40, 8, 4, seed=5)
    with pytest.warns(UserWarning, match=r"num_samples=5 is below K = 8"):
        bald.batchbald(lp, 3, num_samples=5)


def test_information_limit_warns_at_its_pick_once(monkeypatch):
    """The warning comes when the limit is reached, before the batch goes on, and once."""
    lp = uncertain()
    seen = []

    class Recorder:
        def __init__(self) -> None:
            pass

        def __call__(self, done: int, total: int) -> None:
            seen.append((done, len(caught)))

        def close(self) -> None:
            pass

    monkeypatch.setattr(bald, "_Progress", Recorder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = bald.batchbald(lp, 30, past_limit="continue")
    limit = [w for w in caught if "ln K" in str(w.message)]
    assert len(limit) == 1, [str(w.message) for w in caught]
    at = a.information_limit
    assert at is not None and 1 <= at < 30
    assert a.scores[at - 1] >= 0.99 * math.log(6) > a.scores[at - 2]
    assert f"at pick {at} of 30" in str(limit[0].message)
    assert "past_limit='continue'" in str(limit[0].message)
    assert limit[0].filename == __file__  # points at the caller's line
    # Given at pick `at`, before pick at + 1 was reported.
    assert dict(seen)[at + 1] == 1 and dict(seen)[at] == 0


def test_warnings_as_errors_stop_the_batch():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="ln K"):
            bald.batchbald(uncertain(), 30, past_limit="continue")


# --- past the information limit --------------------------------------------------------------


def test_past_limit_modes():
    lp = uncertain(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        go_on = bald.batchbald(lp, 25, past_limit="continue", exclude=[7])
        power = bald.batchbald(lp, 25, exclude=[7])
        stop = bald.batchbald(lp, 25, past_limit="stop", exclude=[7])
    at = go_on.information_limit
    assert at is not None and at < 25
    assert power.information_limit == stop.information_limit == at
    assert go_on.switched_after is None and go_on.past_limit == "continue"
    assert go_on.regimes.count("power-bald") == 0 and len(go_on.indices) == 25
    # stop: the greedy's picks up to the limit, the same as continue's.
    assert stop.past_limit == "stop" and stop.switched_after == at
    assert stop.indices.tolist() == go_on.indices[:at].tolist()
    # power-bald: those picks, then PowerBALD among the others.
    assert power.past_limit == "power-bald" and power.switched_after == at
    assert power.indices[:at].tolist() == go_on.indices[:at].tolist()
    assert len(power.indices) == 25 and len(set(power.indices.tolist())) == 25
    assert 7 not in power.indices.tolist()
    assert power.regimes[at:] == ["power-bald"] * (25 - at)
    assert len(power.evaluations) == at
    # Its later scores are those picks' BALD scores.
    np.testing.assert_allclose(
        power.scores[at:], bald.scores(lp, "bald")[power.indices[at:]], rtol=0, atol=1e-5
    )
    again = bald.batchbald(lp, 25, exclude=[7])
    assert again.indices.tolist() == power.indices.tolist()
    with pytest.raises(bald.InputError, match="past_limit"):
        bald.batchbald(lp, 3, past_limit="never")


def test_compat_keeps_going_past_the_limit():
    lp = uncertain(seed=2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = compat.get_batchbald_batch(lp, 20, 1000)
        want = bald.batchbald(lp, 20, num_samples=1000, past_limit="continue")
    assert b.indices == want.indices.tolist() and len(b.indices) == 20


# --- progress --------------------------------------------------------------------------------


def test_progress_plain_line_without_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(bald, "_PROGRESS_DELAY", 0.0)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    bald.batchbald(pool(50, 8, 4), 4)
    err = capsys.readouterr().err
    assert "bald: 4/4 picks" in err and "ETA" in err and err.endswith("\n")


def test_progress_with_tqdm(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(bald, "_PROGRESS_DELAY", 0.0)
    bald.batchbald(pool(50, 8, 4), 4)
    assert "4/4" in capsys.readouterr().err


def test_progress_off_and_short_runs_are_quiet(monkeypatch, capsys):
    bald.batchbald(pool(50, 8, 4), 4)  # well under the two seconds
    monkeypatch.setattr(bald, "_PROGRESS_DELAY", 0.0)
    bald.batchbald(pool(50, 8, 4), 4, progress=False)
    assert capsys.readouterr().err == ""


# --- errors ----------------------------------------------------------------------------------


def test_errors_carry_the_hints():
    lp = pool(20, 6, 4)
    with pytest.raises(bald.InputError, match=r"look like probabilities: pass input_kind='probs'"):
        bald.batchbald(np.exp(lp), 3)
    with pytest.raises(bald.InputError, match=r"raw logits, pass input_kind='logits'"):
        bald.scores(lp * 3.0 + 5.0, "bald")
    with pytest.raises(bald.InputError, match=r"input_kind='logits'"):
        bald.bald(lp, 3, input_kind="probs")


def test_bfloat16_cpu_tensor_is_read_as_float32():
    torch = _torch()
    lp = pool(30, 6, 4, seed=6)
    x = torch.from_numpy(lp).to(torch.bfloat16)
    got = bald.scores(x, "bald", input_kind="logits")
    want = bald.scores(x.float(), "bald", input_kind="logits")
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert bald.batchbald(x, 3, input_kind="logits").indices.shape == (3,)


# --- return types ----------------------------------------------------------------------------


def test_results_follow_the_input_type():
    lp = pool(30, 6, 4, seed=7)
    a = bald.batchbald(lp, 3)
    assert isinstance(a.indices, np.ndarray) and a.indices.dtype == np.int64
    assert isinstance(a.scores, np.ndarray) and isinstance(bald.entropy(lp), np.ndarray)
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(lp)
    for strategy in ("batchbald", "bald", "power-bald"):
        t = bald.acquire(x, strategy, 3)
        assert isinstance(t.indices, torch.Tensor) and t.indices.dtype == torch.int64
        assert isinstance(t.scores, torch.Tensor) and t.scores.dtype == torch.float64
        assert t.indices.device == x.device
        assert t.indices.tolist() == bald.acquire(lp, strategy, 3).indices.tolist()
    s = bald.scores(x, "entropy")
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float64 and s.device == x.device


# --- precision -------------------------------------------------------------------------------


def _entropy_f64(lp: np.ndarray) -> np.ndarray:
    p = np.exp(lp).mean(axis=1)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1)


def test_compat_float64_input_gets_float64_accuracy():
    lp = pool(300, 20, 10, seed=8)
    want = _entropy_f64(lp)
    np.testing.assert_allclose(compat.compute_entropy(lp), want, rtol=0, atol=1e-9)
    eh = -(np.exp(lp) * lp).sum(axis=-1).mean(axis=1)
    np.testing.assert_allclose(compat.compute_conditional_entropy(lp), eh, rtol=0, atol=1e-9)
    # float32 input: float32 arithmetic, within the SCORES budget of the same values in f64.
    f32 = lp.astype(np.float32)
    got = compat.compute_entropy(f32)
    np.testing.assert_allclose(got, _entropy_f64(f32.astype(np.float64)), rtol=0, atol=1e-6 * (1 + math.log(10)))
    b = compat.get_batchbald_batch(lp, 3, 1000)
    ref = bald.batchbald(lp, 3, num_samples=1000, backend="scalar", past_limit="continue")
    assert b.indices == ref.indices.tolist() and b.scores == ref.scores.tolist()


def test_compat_float64_torch_tensors():
    torch = _torch()
    lp = pool(200, 20, 10, seed=9)
    h = compat.compute_entropy(torch.from_numpy(lp))
    assert h.dtype == torch.float64
    np.testing.assert_allclose(h.numpy(), _entropy_f64(lp), rtol=0, atol=1e-9)
    b = compat.get_batchbald_batch(torch.from_numpy(lp.astype(np.float32)), 3, 1000, dtype=torch.double)
    ref = bald.batchbald(lp.astype(np.float32), 3, num_samples=1000, backend="scalar", past_limit="continue")
    assert b.scores == ref.scores.tolist()


# --- sampled scores --------------------------------------------------------------------------


def test_sampled_scores_have_standard_errors():
    lp = uncertain(300, 20, 10, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = bald.batchbald(lp, 8, num_samples=200, past_limit="continue")
    assert a.regimes[:3] == ["exact", "exact", "exact"] and a.regimes[3:] == ["sampled"] * 5
    se = a.standard_errors
    assert se.shape == (8,) and se.dtype == np.float64
    assert np.all(se[:3] == 0) and np.all(se[3:] > 0) and np.all(se[3:] < 0.5)
    cpu = bald.batchbald(lp, 8, num_samples=200, past_limit="continue", backend="scalar")
    if cpu.indices.tolist() == a.indices.tolist():
        np.testing.assert_allclose(cpu.standard_errors, se, rtol=1e-6, atol=1e-9)
    assert len(bald.bald(lp, 3).standard_errors) == 0
