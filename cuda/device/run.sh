#!/usr/bin/env bash
# On the device machine, from the repository root, with .device/ carried (cuda/device/build.sh):
# the bald-cuda tests for real (unit, device, scale, memory), the device tests again under
# compute-sanitizer memcheck and racecheck (fewer proptest cases), then the criterion benches. Logs go to $OUT (the device
# tool's folder), a summary last. Record the results in cuda/BENCHMARKS.md.
set -uo pipefail
OUT=${OUT:-/tmp/bald-device}
mkdir -p "$OUT"
export BALD_TEST_DATA="$PWD/core/tests/data"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
{ date -u; nvidia-smi; } > "$OUT/device.txt" 2>&1
for t in compile no_gpu bald_cuda device scale memory; do
    .device/$t --test-threads 1 > "$OUT/test-$t.txt" 2>&1
    summary "test $t: exit $? ($(grep -E '^test result' "$OUT/test-$t.txt" | tail -1))"
done
if command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
        PROPTEST_CASES=4 compute-sanitizer --tool $tool --error-exitcode 9 \
            .device/device --test-threads 1 > "$OUT/sanitizer-$tool.txt" 2>&1
        summary "compute-sanitizer $tool: exit $? ($(grep -E 'ERROR SUMMARY' "$OUT/sanitizer-$tool.txt" | tail -1))"
    done
else
    summary "compute-sanitizer: not found"
fi
.device/kernels --bench --noplot > "$OUT/bench.txt" 2>&1
summary "bench: exit $?"
grep -E "^(device|limits|batchbald):|^[a-z_]+/|time:|thrpt:" "$OUT/bench.txt" | sed 's/  */ /g' |
    tee -a "$OUT/summary.txt"
