#!/usr/bin/env bash
# Issue 18's device run, in one call, on the device machine from the repository root with
# .device/ carried (cuda/device/build.sh builds it here). Every step has its own time limit
# and appends to $OUT/log.txt; one line per step goes to $OUT/summary.txt and is printed
# again at the end. Record the results in cuda/BENCHMARKS.md.
#   1. the bald-cuda tests for real, the CLI's tests and cross-backend determinism tests
#      (--backend cuda included);
#   2. fp32 GEMM rate and copy bandwidth (torch), then the device report (benches/report.rs):
#      copy, scores f32/f16, joint FLOP/s, BatchBALD lazy/full, the MC-dropout head, the
#      modules' CUBIN and PTX;
#   3. torch's consistent-dropout head, batchbald_redux 2.0.5 (double, float) against
#      `bald acquire --backend cuda` on the same pool file;
#   4. a full acquisition round (cli/examples/gpu_round.rs);
#   5. `bald experiment` on cuda and on cpu, same seed: the curves compared;
#   6. the Python package: bald.batchbald with backend cuda against cpu;
#   7. compute-sanitizer memcheck/racecheck/synccheck/initcheck on the device tests with 2
#      proptest cases (not the two that plant a fault on purpose).
set -uo pipefail
OUT=${OUT:-/tmp/bald-device}
mkdir -p "$OUT"
D=$PWD/.device
LOG=$OUT/log.txt
export BALD_TEST_DATA="$PWD/core/tests/data" BALD_KERNEL_CACHE=/tmp/bald-kernels PYTHONUNBUFFERED=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
# The test binaries hold the paths of the checkout they were built in (the bald binary, the
# data): that path leads here.
BUILT=$(cat "$D/built-in")
if [ ! -e "$BUILT" ]; then mkdir -p "$(dirname "$BUILT")" && ln -s "$PWD" "$BUILT"; fi
mkdir -p target/release && cp "$D/bald" target/release/bald
BALD=$PWD/target/release/bald
T0=$(date +%s)
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
# step NAME SECONDS COMMAND...: runs it under a time limit, its output into the log.
step() {
    local name=$1 limit=$2 start rc
    shift 2
    # STEP_LIMIT_MAX caps every limit: a dry run of this script's plumbing on the emulation.
    limit=$((limit < ${STEP_LIMIT_MAX:-100000} ? limit : ${STEP_LIMIT_MAX:-100000}))
    start=$(date +%s)
    echo "=== $name: $* ===" >> "$LOG"
    timeout "$limit" "$@" >> "$LOG" 2>&1
    rc=$?
    summary "$(printf '%-22s exit %3d %4ds (at %4ds)' "$name" "$rc" $(($(date +%s) - start)) $(($(date +%s) - T0)))"
    return $rc
}
{ date -u; nvidia-smi; } >> "$LOG" 2>&1

# 1. Correctness.
for t in compile no_gpu bald_cuda device scale memory determinism; do
    step "test-$t" 120 "$D/$t" --test-threads 1
done
step test-cli 180 "$D/cli" --test-threads 4
grep -E "^test result|^skipped|panicked" "$LOG" | sed 's/^/  /' | tee -a "$OUT/summary.txt"

# 2. Roofline and the device report.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$D"/wheels/*.whl >> "$LOG" 2>&1
export PYTHONPATH=/tmp/site
step peak 90 python3 "$D/torch_compare.py" peak
export BALD_FP32_TFLOPS=$(cat /tmp/fp32_tflops 2>/dev/null)
step report 150 "$D/report"

# 3. Against torch.
step torch-head 120 python3 "$D/torch_compare.py" head
step pool 60 python3 "$D/torch_compare.py" pool /tmp/pool.npy
for greedy in lazy full; do
    step "bald-$greedy" 60 sh -c "$BALD acquire /tmp/pool.npy --strategy batchbald --batch-size 10 \
        --num-samples 10000 --backend cuda --greedy $greedy > /tmp/bald-$greedy.json"
    cat "/tmp/bald-$greedy.json" >> "$LOG"
done
step redux-float 100 python3 "$D/torch_compare.py" redux /tmp/pool.npy float
step redux-double 120 python3 "$D/torch_compare.py" redux /tmp/pool.npy double
python3 - >> "$OUT/summary.txt" 2>&1 <<'EOF'
import json, os
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
for g in ["lazy", "full"]:
    b = load(f"/tmp/bald-{g}.json")
    if not b:
        continue
    print(f"  bald {g}: {b['seconds']:.3f} s acquisition (+ read {b['read_seconds']:.2f} s, "
          f"upload {b['prepare_seconds']:.3f} s), picks {b['indices']}, evaluations {b.get('evaluations')}")
    for d in ["float", "double"]:
        r = load(f"/tmp/redux-{d}.json")
        if r:
            same = next((i for i, (x, y) in enumerate(zip(b["indices"], r["indices"])) if x != y), 10)
            print(f"    vs batchbald_redux {d}: {r['seconds']:.2f} s = {r['seconds'] / b['seconds']:.1f}x; "
                  f"first {same} picks equal; redux picks {r['indices']}")
EOF

# 4. A full acquisition round.
step round 120 "$D/gpu_round"

# 5. The experiment on cuda and cpu, same seed.
for b in cuda cpu; do
    step "experiment-$b" 150 "$BALD" experiment --backend $b --seeds 1 --budget 50 \
        --strategies random,bald,batchbald --out /tmp/exp-$b
done
if cmp -s <(cut -d, -f1-4 /tmp/exp-cuda/curves.csv) <(cut -d, -f1-4 /tmp/exp-cpu/curves.csv); then
    summary "  experiment: cuda and cpu curves identical ($(($(wc -l < /tmp/exp-cpu/curves.csv) - 1)) rounds)"
else
    summary "  experiment: cuda and cpu curves DIFFER"
    paste -d'|' /tmp/exp-cuda/curves.csv /tmp/exp-cpu/curves.csv >> "$LOG"
fi

# 6. The Python package.
step python 90 python3 - <<'EOF'
import numpy as np, torch, bald
lp = np.load("/tmp/pool.npy")[:20000]
cpu = bald.batchbald(lp, 10, num_samples=10000, backend="cpu")
gpu = bald.batchbald(torch.from_numpy(lp), 10, num_samples=10000, backend="cuda")
print(f"python: cuda {gpu.indices.tolist()} {gpu.seconds:.3f} s, cpu {cpu.indices.tolist()} {cpu.seconds:.3f} s, same picks: {gpu.indices.tolist() == cpu.indices.tolist()}")
# A CUDA tensor read in place (DLPack): the same picks as the CPU tensor's, in each dtype.
for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
    t = torch.from_numpy(lp).to(dtype)
    want = bald.batchbald(t.float() if dtype == torch.bfloat16 else t, 10, num_samples=10000, backend="cpu")
    x = t.cuda()
    got = bald.batchbald(x, 10, num_samples=10000)
    print(f"python: CUDA tensor {dtype}: {got.backend} {got.seconds:.3f} s, same picks as the CPU tensor: {got.indices.tolist() == want.indices.tolist()}")
bad = torch.from_numpy(lp).cuda()
bad[123, 4, 5] = float("nan")
try:
    bald.batchbald(bad, 10)
    print("python: a CUDA tensor with a NaN was ACCEPTED")
except bald.InputError as e:
    print(f"python: a CUDA tensor with a NaN: InputError: {e}")
EOF
grep -E "^python:" "$LOG" | sed 's/^/  /' >> "$OUT/summary.txt"

# 7. compute-sanitizer on the device tests (few proptest cases), last: the slowest checks.
for tool in memcheck racecheck synccheck initcheck; do
    step "sanitizer-$tool" 60 env PROPTEST_CASES=2 compute-sanitizer --tool $tool \
        --error-exitcode 9 "$D/device" --test-threads 1 --skip fault
done
grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$LOG" | sed 's/^/  /' >> "$OUT/summary.txt"

echo "== log lines of note ==" >> "$OUT/summary.txt"
grep -E "^(peak|head|redux|round|pool|device|copy|scores|grouped|upload|joint|batchbald|modules|PTX)[: ]" "$LOG" |
    awk '!seen[$0]++' >> "$OUT/summary.txt"
echo; cat "$OUT/summary.txt"
