"""CUDA arrays through DLPack, read in place by the CUDA backend (never copied to the host).

Needs a CUDA driver: a GPU, or cudaemu, the CPU emulation of the driver API that CI has beside
the clone (`.ci/run` runs this file under it). Without one every test skips and says why.

The CUDA arrays here are made with the driver API through ctypes (cuMemAlloc, cuMemcpyHtoD, in
the device's primary context, as torch allocates) and handed over as DLPack capsules, as torch
hands over its CUDA tensors. A torch CUDA tensor is tested as well when torch sees a GPU.
"""

from __future__ import annotations

import ctypes
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import bald
from bald.compat import batchbald_redux as compat

from test_bald import BATCHBALD_SCORE, CASES, load, pool, score_tolerance


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER)]


_new_capsule = ctypes.pythonapi.PyCapsule_New
_new_capsule.restype = ctypes.py_object
_new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_DLTENSOR = b"dltensor"
# DLPack type codes: float 2, bfloat 4.
_TYPES = {np.dtype(np.float16): (2, 16), np.dtype(np.float32): (2, 32), np.dtype(np.float64): (2, 64)}


class Driver:
    """The CUDA driver API through ctypes, with the primary context of GPU 0 current."""

    def __init__(self) -> None:
        self.lib = None
        for name in ("libcuda.so", "libcuda.so.1"):
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if self.lib is None:
            pytest.skip("no CUDA driver (libcuda): run on a GPU, or under cudaemu as .ci/run does")
        self.check(self.lib.cuInit(0), "cuInit")
        ctx = ctypes.c_void_p()
        self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0), "cuDevicePrimaryCtxRetain")
        self.check(self.lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")

    def check(self, r: int, what: str) -> None:
        if r != 0:
            pytest.skip(f"the CUDA driver failed {what} ({r}): no usable GPU")

    def alloc(self, data: bytes) -> int:
        ptr = ctypes.c_uint64()
        assert self.lib.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(max(len(data), 1))) == 0
        assert self.lib.cuMemcpyHtoD_v2(ptr, data, ctypes.c_size_t(len(data))) == 0
        return ptr.value

    def read(self, ptr: int, size: int) -> bytes:
        out = ctypes.create_string_buffer(size)
        assert self.lib.cuMemcpyDtoH_v2(out, ctypes.c_uint64(ptr), ctypes.c_size_t(size)) == 0
        return out.raw

    def free(self, ptr: int) -> None:
        assert self.lib.cuMemFree_v2(ctypes.c_uint64(ptr)) == 0


@pytest.fixture(scope="module")
def driver() -> Driver:
    d = Driver()
    try:
        bald.scores(pool(4, 2, 2), backend="cuda")
    except bald.BackendError as e:
        pytest.skip(f"the CUDA backend is unavailable: {e}")
    return d


class CudaArray:
    """Values in CUDA device memory, handed over through DLPack like a torch CUDA tensor.
    ``bits`` gives raw 16-bit values with a DLPack type (bfloat16: code 4); ``strides`` (in
    elements) and ``offset`` (in elements, as DLPack's byte_offset) describe odd layouts."""

    def __init__(self, driver: Driver, values: np.ndarray, *, code_bits=None, strides=None, offset=0):
        self.driver = driver
        values = np.ascontiguousarray(values)
        self.host = values
        self.ptr = driver.alloc(values.tobytes())
        code, bits = code_bits or _TYPES[values.dtype]
        self.shape = (ctypes.c_int64 * values.ndim)(*values.shape)
        self.strides = None if strides is None else (ctypes.c_int64 * values.ndim)(*strides)
        self.deleted = 0
        self._deleter = DELETER(self._delete)
        self.managed = DLManagedTensor()
        shape = list(values.shape)
        if offset:
            shape[0] -= offset // max(1, int(np.prod(values.shape[1:])))
            self.shape = (ctypes.c_int64 * values.ndim)(*shape)
        t = self.managed.dl_tensor
        t.data = self.ptr
        t.device = DLDevice(2, 0)
        t.ndim = values.ndim
        t.dtype = DLDataType(code, bits, 1)
        t.shape = self.shape
        t.strides = self.strides
        t.byte_offset = offset * values.itemsize
        self.managed.deleter = self._deleter

    def _delete(self, _managed) -> None:
        self.deleted += 1

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        return _new_capsule(ctypes.addressof(self.managed), _DLTENSOR, None)

    def unchanged(self) -> bool:
        return self.driver.read(self.ptr, self.host.nbytes) == self.host.tobytes()

    def free(self) -> None:
        self.driver.free(self.ptr)


@pytest.mark.parametrize("name", CASES)
def test_reference_cases_read_in_place(driver, name):
    lp, case = load(name)
    lp32 = lp.astype(np.float32)
    x = CudaArray(driver, lp32)
    b = int(case["batchbald"]["batch_size"])
    for strategy in ["batchbald", "bald"]:
        kwargs = {"num_samples": int(case["batchbald"]["num_samples"])} if strategy == "batchbald" else {}
        got = bald.acquire(x, strategy, b, **kwargs)
        assert got.backend == "cuda"
        # The CUDA backend on the same values uploaded from the host: bit for bit.
        host = bald.acquire(lp32, strategy, b, backend="cuda", **kwargs)
        assert got.indices.tolist() == host.indices.tolist() and got.scores.tolist() == host.scores.tolist()
        # The CPU backend: the same scores within the budget.
        cpu = bald.acquire(lp32, strategy, b, backend="cpu", **kwargs)
        np.testing.assert_allclose(got.scores, cpu.scores, rtol=0, atol=BATCHBALD_SCORE)
        if name not in ("doc4", "dup") and strategy == "batchbald":
            assert got.indices.tolist() == cpu.indices.tolist()
    for score in bald.SCORES:
        np.testing.assert_array_equal(bald.scores(x, score), bald.scores(lp32, score, backend="cuda"))
    # One managed tensor per call, each released once; the values left where they were.
    assert x.deleted == 2 + len(bald.SCORES)
    assert x.unchanged()
    x.free()


def test_dtypes_and_greedy_modes(driver):
    lp = pool(70, 10, 5, seed=21)
    for dtype in (np.float16, np.float32, np.float64):
        a = lp.astype(dtype)
        x = CudaArray(driver, a)
        for greedy in ("lazy", "full"):
            got = bald.batchbald(x, 6, num_samples=200, greedy=greedy, seed=4)
            want = bald.batchbald(a, 6, num_samples=200, greedy=greedy, seed=4, backend="cuda")
            assert got.indices.tolist() == want.indices.tolist(), (dtype, greedy)
            assert got.scores.tolist() == want.scores.tolist()
        x.free()
    # bfloat16 (no NumPy type): the bits of the float32 values rounded to bfloat16, against
    # the CPU backend on those values renormalised (bfloat16's rounding moves a row's sum by
    # up to its tolerance, 2e-2).
    bits = ((lp.astype(np.float32).view(np.uint32) + 0x8000) >> 16).astype(np.uint16)
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    x = CudaArray(driver, bits, code_bits=(4, 16))
    got = bald.scores(x, "bald")
    want = bald.scores(widened, "bald", input_kind="logits", backend="cpu")
    np.testing.assert_allclose(got, want, rtol=0, atol=0.05)
    x.free()


def test_exclusion_strategies_and_offsets(driver):
    lp = pool(50, 8, 4, seed=22).astype(np.float32)
    x = CudaArray(driver, lp)
    for strategy in bald.STRATEGIES:
        # EPIG's targets (on the host): the first 6 points stand in for them.
        t = lp[:6] if "epig" in strategy else None
        got = bald.acquire(x, strategy, 5, seed=3, exclude=[0, 7], targets=t)
        want = bald.acquire(lp, strategy, 5, seed=3, exclude=[0, 7], backend="cuda", targets=t)
        assert got.indices.tolist() == want.indices.tolist(), strategy
        assert 0 not in got.indices and 7 not in got.indices
    x.free()
    # A DLPack byte offset: the pool starts 10 points into the buffer.
    x = CudaArray(driver, lp, offset=10 * 8 * 4)
    np.testing.assert_array_equal(bald.scores(x, "bald"), bald.scores(lp[10:], "bald", backend="cuda"))
    x.free()


def test_errors_are_the_hosts(driver):
    lp = pool(30, 6, 4, seed=23).astype(np.float32)
    for fault in ("nan", "inf", "unnormalised", "zeros", "probs"):
        bad = np.exp(lp) if fault == "probs" else lp.copy()
        if fault == "nan":
            bad[17, 3, 2] = np.nan
        elif fault == "inf":
            bad[9, 0, 1] = np.inf
        elif fault == "unnormalised":
            bad[12, 5] += 0.1
        else:
            bad[4, 2] = -np.inf
        bad[25, 1, 1] = np.nan  # a later fault: the first one is reported
        with pytest.raises(bald.InputError) as want:
            bald.scores(bad, "bald", backend="cpu")
        x = CudaArray(driver, bad)
        with pytest.raises(bald.InputError) as got:
            bald.batchbald(x, 3)
        assert str(got.value) == str(want.value), fault  # the hint included
        if fault == "probs":
            assert "input_kind='probs'" in str(got.value)
        assert x.deleted == 1 and x.unchanged()
        x.free()


def test_arrays_the_backend_cannot_read_are_input_errors(driver):
    lp = pool(20, 4, 3, seed=24).astype(np.float32)
    x = CudaArray(driver, lp[0])
    with pytest.raises(bald.InputError, match="3-d"):
        bald.batchbald(x, 2)
    x.free()
    x = CudaArray(driver, lp, strides=(1, 20, 80))
    with pytest.raises(bald.InputError, match="C-contiguous"):
        bald.batchbald(x, 2)
    x.free()
    x = CudaArray(driver, lp.view(np.int32), code_bits=(0, 32))
    with pytest.raises(bald.InputError, match="float16, bfloat16"):
        bald.batchbald(x, 2)
    x.free()
    x = CudaArray(driver, lp)
    with pytest.raises(bald.InputError, match="backend 'cuda' or 'auto'"):
        bald.batchbald(x, 2, backend="cpu")
    with pytest.raises(bald.InputError, match="NKC"):
        bald.batchbald(x, 2, layout="NCK")
    with pytest.raises(bald.InputError, match="log-probs"):
        bald.batchbald(x, 2, input_kind="probs")
    # A pointer that is no device memory (a host buffer's address).
    host = np.ascontiguousarray(lp)
    x.managed.dl_tensor.data = host.ctypes.data
    with pytest.raises(bald.InputError, match="not in this GPU's memory"):
        bald.batchbald(x, 2)
    x.managed.dl_tensor.data = x.ptr
    # A shape past the end of the allocation.
    x.shape[0] = 1 << 40
    with pytest.raises((bald.InputError, bald.BackendError)):
        bald.batchbald(x, 2)
    x.free()


def _torch_cuda():
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed: the torch CUDA test runs on the device machine")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU: the torch CUDA test runs on the device machine")
    return torch


def test_torch_cuda_tensors(driver):
    torch = _torch_cuda()
    lp = pool(300, 20, 10, seed=25)
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        cpu = torch.from_numpy(lp).to(dtype)
        gpu = cpu.cuda()
        got = bald.batchbald(gpu, 10, num_samples=1000)
        assert got.backend == "cuda"
        want = bald.batchbald(cpu.float() if dtype == torch.bfloat16 else cpu, 10, num_samples=1000, backend="cpu")
        assert got.indices.tolist() == want.indices.tolist(), dtype
    logits = torch.from_numpy(lp * 3).float()
    nck = logits.cuda().permute(0, 2, 1)
    got = bald.batchbald(nck, 10, layout="NCK", input_kind="logits")
    want = bald.batchbald(logits, 10, input_kind="logits", backend="cpu")
    assert got.indices.tolist() == want.indices.tolist()
    h = compat.compute_entropy(torch.from_numpy(lp).cuda())
    assert h.device.type == "cuda" and h.dtype == torch.float64
    assert math.isfinite(float(h.sum()))


def _loaded(name: str) -> str:
    """The path of the library ``name`` that this process's backend loaded: the first on
    LD_LIBRARY_PATH, else the one mapped (torch may have mapped its own NVRTC as well)."""
    for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        for suffix in ("", ".1", ".13"):
            path = os.path.join(d, name + suffix)
            if d and os.path.exists(path):
                return os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith(name):
                return os.path.realpath(path)
    pytest.skip(f"{name} is not loaded from a file")


def test_nvrtc_from_a_pip_wheel_is_found(driver, tmp_path):
    # The layout of the nvidia-cuda-nvrtc wheel (site-packages/nvidia/cu13/lib), on no library
    # path: only the driver is, as on a user's machine with torch's CUDA 13 wheels.
    bald.scores(pool(4, 2, 2), backend="cuda")
    nvrtc, cuda = _loaded("libnvrtc.so"), _loaded("libcuda.so")
    (tmp_path / "site" / "nvidia" / "cu13").mkdir(parents=True)
    (tmp_path / "site" / "nvidia" / "cu13" / "lib").symlink_to(os.path.dirname(nvrtc))
    (tmp_path / "driver").mkdir()
    (tmp_path / "driver" / "libcuda.so.1").symlink_to(cuda)
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path / "driver"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    code = "import bald, numpy as np; print(bald.batchbald(np.log(np.full((6, 2, 2), 0.5)), 2, backend='cuda').backend)"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "cuda", run.stderr
    # Without the wheel the backend says what it misses (unless this Python has one, torch's).
    import importlib.util

    if importlib.util.find_spec("nvidia") is not None:
        return
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "NVRTC not found" in run.stderr


def test_ray_shards_on_the_gpu(driver):
    """bald.ray with backend="cuda": each actor reserves half of a GPU and evaluates its
    shard's candidates there; the picks are the CPU's where the math is exact, the scores
    within BatchBALD's budget, and the ranked strategies' the whole pool's on CUDA."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import bald.ray

    lp = pool(120, 10, 4, seed=24).astype(np.float32)
    source_parts = np.split(lp, [50])
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        source = [ray.put(p) for p in source_parts]
        # Exact for 8 picks (4^7 configurations <= 20000).
        args = dict(num_samples=20000, seed=4, exclude=[3, 60], past_limit="continue")
        want = bald.acquire(lp, "batchbald", 8, backend="cpu", **args)
        got = bald.ray.acquire(
            source, "batchbald", 8, backend="cuda", num_gpus=0.5, progress=False, **args
        )
        assert got.indices.tolist() == want.indices.tolist()
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=BATCHBALD_SCORE)
        assert got.regimes == want.regimes
        for strategy in ("power-bald", "bald"):
            want = bald.acquire(lp, strategy, 8, backend="cuda", seed=4, exclude=[3, 60])
            got = bald.ray.acquire(
                source, strategy, 8, backend="cuda", num_gpus=0.5, seed=4, exclude=[3, 60]
            )
            assert got.indices.tolist() == want.indices.tolist(), strategy
            np.testing.assert_array_equal(got.scores, want.scores)
    finally:
        ray.shutdown()


def test_epig_on_the_gpu(driver):
    """EPIG of a pool read in place on the GPU, against targets on the host: the CPU's within
    the budget."""
    lp = pool(60, 8, 4, seed=25).astype(np.float32)
    targets = pool(9, 8, 4, seed=26).astype(np.float32)
    x = CudaArray(driver, lp)
    want = bald.epig(lp, targets, backend="cpu")
    np.testing.assert_allclose(bald.epig(x, targets), want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(bald.epig(lp, targets, backend="cuda"), want, rtol=0, atol=1e-5)
    got = bald.acquire(x, "epig", 5, targets=targets)
    assert got.indices.tolist() == bald.acquire(lp, "epig", 5, targets=targets,
                                                backend="cpu").indices.tolist()
    x.free()
