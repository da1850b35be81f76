"""Would a pairwise bound prune lazy greedy BatchBALD's evaluations? (issue 15)

A candidate's gain given the batch S is BALD(n) - I(y_n; y_S) <= BALD(n) - max_s I(y_n; y_s),
and I(y_n; y_s) costs K C^2 per pair instead of M K C per evaluation. For each step of a batch
chosen by `bald acquire`, prints how many candidates that bound (alone) would leave to evaluate,
beside those whose BALD exceeds the step's gain and lazy greedy's actual evaluations.

    bald acquire POOL.npy --num-samples 1000 --backend cpu > acquire.json
    python tools/lazy-bounds/pairwise.py POOL.npy acquire.json      # needs numpy
"""
import json
import sys

import numpy as np

lp = np.load(sys.argv[1]).astype(np.float64)
N, K, C = lp.shape
p = np.exp(lp)
pm = p.mean(1)
H = -(pm * np.log(np.where(pm > 0, pm, 1))).sum(1)
EH = -(p * np.where(p > 0, lp, 0)).sum(2).mean(1)
bald = H - EH
a = json.load(open(sys.argv[2]))
picks, scores = a["indices"], a["scores"]
gains = np.diff([0] + scores)
maxmi = np.zeros(N)
for t, (s, g) in enumerate(zip(picks, gains)):
    pb = bald - maxmi
    print(
        f"step {t}: gain {g:.3f}  #BALD>g {np.sum(bald > g - 1e-4):6d}  "
        f"#pairwise-bound>g {np.sum(pb > g - 1e-4):6d}  lazy evals {a['evaluations'][t]}"
    )
    J = np.einsum("kc,nkd->ncd", p[s], p) / K  # the joint of (y_s, y_n), N x C x C
    Hj = -(J * np.log(np.where(J > 0, J, 1))).sum((1, 2))
    maxmi = np.maximum(maxmi, H + H[s] - Hj)
