"""How many candidates an exact lazy greedy BatchBALD must evaluate on a pool, whatever its order.

    python tools/lazy-bounds/bounds.py POOL.npy [STEPS]

POOL.npy holds N x K x C log-probs (the greedy bench's target/bald-bench/realistic-47k.npy, or
any `bald experiment --save-pools` round). The script runs full greedy BatchBALD in f64 numpy
(exact joint while C^(t-1) <= 1000, else 1000 importance-sampled configurations, num_samples /
K per MC sample, as bald draws them) and prints, at each step t, the best gain and how many
candidates still have a bound above it (plus lazy's slack) under three kinds of bound:

- single: min(BALD(n), BALD(n) - I(y_n; y_b) over the picks b), the bounds bald's lazy greedy
  keeps between steps (LazyGreedy::tighten with pick_joint): each such candidate has to be
  evaluated at step t or at an earlier step where its gain was already below the best of t;
- pair: also the exact gain given any two picks (C^2 rows each, 10x cheaper than an
  evaluation at 1000 rows);
- oracle: also every candidate's gain at every earlier step (what a lazy greedy would know if
  it had evaluated everything before: the fewest evaluations any lazy greedy can make).

Not a test and not in CI: a measurement, with its figures in the README.
"""
import sys
import numpy as np

lp = np.load(sys.argv[1]).astype(np.float64)
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
N, K, C = lp.shape
P = np.exp(lp)
Pt = P.transpose(1, 0, 2).reshape(K, N * C)
rng = np.random.default_rng(0)


def neg_xlnx(x):
    return -np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


EH = neg_xlnx(P).sum(-1).mean(1)
bald = neg_xlnx(P.mean(1)).sum(-1) - EH


def joint_entropies(J, w=None, chunk=4000):
    """sum_m w_m sum_c -x ln x, x[m, c] = sum_k J[m, k] p_n[k, c], for every candidate n."""
    out = np.empty(N)
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        T = neg_xlnx(J @ Pt[:, s * C : e * C])
        if w is not None:
            T *= w[:, None]
        out[s:e] = T.reshape(J.shape[0], e - s, C).sum((0, 2))
    return out


def exact_joint(picks):
    J = np.full((1, K), 1.0 / K)
    for b in picks:
        J = (J[:, None, :] * P[b].T[None, :, :]).reshape(-1, K)
    return J


def exact_gains(picks):
    J = exact_joint(picks)
    return joint_entropies(J) - neg_xlnx(J.sum(1)).sum() - EH


def sampled_gains(picks, m=1000):
    per = m // K
    J = np.full((per * K, K), 1.0 / K)
    for b in picks:
        ys = np.concatenate(
            [rng.choice(C, size=per, p=P[b, k] / P[b, k].sum()) for k in range(K)]
        )
        J *= P[b][:, ys].T
    pa = J.sum(1)
    w = 1.0 / (pa * len(pa))
    return joint_entropies(J, w) - np.mean(-np.log(pa)) - EH


picks = []
single, pair, oracle = bald.copy(), bald.copy(), bald.copy()
totals = [0, 0, 0]
print("step  best gain  single  pair  oracle")
for t in range(1, steps + 1):
    exact = C ** (t - 1) <= 1000
    g = bald.copy() if t == 1 else exact_gains(picks) if exact else sampled_gains(picks)
    g[picks] = -np.inf
    best = g.max()
    slack = 1e-4 + (0.0 if exact else np.log(C) / (8 * np.sqrt(1000)))
    counts = []
    for bound in (single, np.minimum(single, pair), np.minimum(np.minimum(single, pair), oracle)):
        b = bound.copy()
        b[picks] = -np.inf
        counts.append(int((b > best + slack).sum()))
    print(f"{t:4}  {best:9.4f}  {counts[0]:6}  {counts[1]:4}  {counts[2]:6}", flush=True)
    oracle = np.minimum(oracle, g)
    new = int(g.argmax())
    single = np.minimum(single, exact_gains([new]))
    for b in picks:
        pair = np.minimum(pair, exact_gains([b, new]))
    picks.append(new)
print(f"picks {picks}")
