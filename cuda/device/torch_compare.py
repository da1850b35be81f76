"""The torch side of the device run (issue 18), on the same GPU in the same call as bald.

    python3 torch_compare.py peak              # fp32 GEMM rate (cuBLAS, TF32 off) and copy bandwidth
    python3 torch_compare.py head              # Gal et al.'s MC-dropout head 3872 -> 128 -> 10 in torch
    python3 torch_compare.py pool FILE         # writes the BatchBALD pool (60000 x 100 x 10 f32 .npy)
    python3 torch_compare.py redux FILE DTYPE  # batchbald_redux 2.0.5 on that pool (double|float)

Each prints one line starting with its name; times are medians over CUDA events (peak, head)
or wall time around a synchronised call (redux, as a user sees it).
"""

import json
import sys
import time

import numpy as np
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
# TORCH_COMPARE_CPU=1: on the CPU with small sizes, to check this script without a GPU.
CPU = bool(__import__("os").environ.get("TORCH_COMPARE_CPU"))
dev = torch.device("cpu" if CPU else "cuda")
SMALL = 100 if CPU else 1


def sync():
    if not CPU:
        torch.cuda.synchronize()


def event_ms(fn, reps):
    """Median milliseconds of fn() over reps runs after two warm-ups, by CUDA events."""
    for _ in range(2):
        fn()
    if CPU:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        return sorted(times)[len(times) // 2]
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def peak():
    n = 8192 // (SMALL // 10 if CPU else 1)
    g = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, generator=g)
    b = torch.randn(n, n, device=dev, generator=g)
    ms = event_ms(lambda: a @ b, 10)
    tflops = 2 * n**3 / (ms / 1e3) / 1e12
    x = torch.randn((1 << 29) // SMALL, device=dev, generator=g)  # 2 GiB
    y = torch.empty_like(x)
    cms = event_ms(lambda: y.copy_(x), 10)
    gbs = 2 * x.numel() * 4 / (cms / 1e3) / 1e9
    print(f"peak: torch {torch.__version__}, {'cpu' if CPU else torch.cuda.get_device_name()}: fp32 GEMM 8192^3 "
          f"(cuBLAS, TF32 off) {ms:.2f} ms = {tflops:.1f} TFLOP/s; copy 2 GiB {gbs:.0f} GB/s")
    print(f"BALD_FP32_TFLOPS={tflops:.2f}", file=sys.stderr)
    with open("/tmp/fp32_tflops", "w") as f:
        f.write(f"{tflops:.2f}")


def head():
    n, k, d, h, c = 60000 // SMALL, 100, 3872, 128, 10
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(n, d, device=dev, generator=g) * 0.5
    w1 = torch.randn(h, d, device=dev, generator=g) * 0.02
    b1 = torch.randn(h, device=dev, generator=g) * 0.02
    w2 = torch.randn(c, h, device=dev, generator=g) * 0.05
    b2 = torch.randn(c, device=dev, generator=g) * 0.02
    # Consistent MC dropout: one mask per sample k, the same for every point.
    m1 = (torch.rand(k, d, device=dev, generator=g) >= 0.25).float() / 0.75
    m2 = (torch.rand(k, h, device=dev, generator=g) >= 0.5).float() / 0.5
    out = torch.empty(n, k, c, device=dev)

    def per_sample():
        # The input mask folded into the weights: (x * m) W^T = x (W * m)^T, one GEMM per k.
        for s in range(k):
            hid = torch.relu(torch.addmm(b1, x, (w1 * m1[s]).t())) * m2[s]
            out[:, s, :] = torch.log_softmax(torch.addmm(b2, hid, w2.t()), dim=1)

    def chunked(points=6000 // SMALL):
        # All K masked weight matrices as one (3872 x K*128) GEMM per chunk of points.
        w1s = (w1.unsqueeze(0) * m1.unsqueeze(1)).reshape(k * h, d).t().contiguous()
        for p in range(0, n, points):
            hid = torch.relu(x[p:p + points] @ w1s + b1.repeat(k)).view(-1, k, h) * m2
            out[p:p + points] = torch.log_softmax(hid @ w2.t() + b2, dim=2)

    flops = 2 * n * k * (d * h + h * c)
    for name, fn in [("per-sample GEMMs", per_sample), ("one GEMM per 6000 points", chunked)]:
        ms = event_ms(fn, 5)
        print(f"head: torch {name}, N {n} K {k} 3872-128-10 fp32 on the device: {ms:.1f} ms, "
              f"{flops / (ms / 1e3) / 1e12:.1f} TFLOP/s")
    xh = x.cpu()
    sync()

    def host_to_host():
        x_dev = xh.to(dev)
        w1s = (w1.unsqueeze(0) * m1.unsqueeze(1)).reshape(k * h, d).t().contiguous()
        step = 6000 // SMALL
        for p in range(0, n, step):
            hid = torch.relu(x_dev[p:p + step] @ w1s + b1.repeat(k)).view(-1, k, h) * m2
            out[p:p + step] = torch.log_softmax(hid @ w2.t() + b2, dim=2)
        return out.cpu()

    times = []
    for rep in range(4):
        t = time.perf_counter()
        host_to_host()
        sync()
        if rep:
            times.append(time.perf_counter() - t)
    ms = sorted(times)[1] * 1e3
    print(f"head: torch one GEMM per 6000 points, host to host (features up, log-probs down): {ms:.1f} ms")


def pool(path):
    n, k, c = 60000 // SMALL, 100, 10
    g = torch.Generator(device=dev).manual_seed(0)
    # Per point a class preference and a temperature, per sample noise: MC-dropout-like.
    mean = torch.randn(n, 1, c, device=dev, generator=g) * 2.0
    scale = 0.5 + 3.0 * torch.rand(n, 1, 1, device=dev, generator=g)
    logits = scale * (mean + torch.randn(n, k, c, device=dev, generator=g))
    lp = torch.log_softmax(logits, dim=2).float().cpu().numpy()
    np.save(path, lp)
    print(f"pool: {path} {lp.shape} float32")


def redux(path, dtype_name):
    from batchbald_redux.batchbald import get_batchbald_batch
    import batchbald_redux

    dtype = {"double": torch.double, "float": torch.float}[dtype_name]
    lp = torch.from_numpy(np.load(path)).to(dev)
    sync()
    t = time.perf_counter()
    batch = get_batchbald_batch(lp, 10, 10000 // SMALL, dtype=dtype, device=dev)
    sync()
    s = time.perf_counter() - t
    print(f"redux: batchbald_redux {batchbald_redux.__version__ if hasattr(batchbald_redux, '__version__') else '2.0.5'} "
          f"dtype {dtype_name}: {s:.2f} s, picks {batch.indices}")
    with open(f"/tmp/redux-{dtype_name}.json", "w") as f:
        json.dump({"seconds": s, "indices": batch.indices, "scores": batch.scores}, f)


if __name__ == "__main__":
    what = sys.argv[1]
    {"peak": peak, "head": head, "pool": pool, "redux": redux}[what](*sys.argv[2:])
