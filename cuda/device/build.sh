#!/usr/bin/env bash
# Builds bald-cuda's test and bench binaries here (no GPU needed) into .device/ (git-ignored),
# with cuda/device/run.sh beside them: one device call then runs everything there.
#   bash cuda/device/build.sh
#   device run, carry [".device"], command: bash .device/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .device && mkdir -p .device
exes() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in sys.argv[1:]:
        print(m["target"]["name"], m["executable"])
' "$@"
}
cargo test -p bald-cuda --release --no-run --message-format=json 2>/dev/null | exes device compile no_gpu scale memory bald_cuda |
    while read -r name path; do cp "$path" ".device/$name"; done
cargo bench -p bald-cuda --no-run --message-format=json 2>/dev/null | exes kernels |
    while read -r name path; do cp "$path" ".device/$name"; done
# Debug info off: the carried folder must stay well under the device tool's 64 MiB.
strip --strip-debug .device/compile .device/no_gpu .device/device .device/scale .device/memory .device/bald_cuda .device/kernels
cp cuda/device/run.sh .device/run.sh
ls -la .device
