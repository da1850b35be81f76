#!/usr/bin/env bash
# Builds everything the device run needs here (no GPU needed) into .device/ (git-ignored), with
# cuda/device/run.sh beside it: one device call then runs it all there (issue 18).
#   bash cuda/device/build.sh
#   device run, carry [".device"], command: bash .device/run.sh
# Holds: bald-cuda's test binaries, the CLI's test binaries (determinism, cli) and the `bald`
# binary they run, the device report (benches/report.rs), the acquisition round
# (cli/examples/gpu_round.rs), the torch comparison script with the batchbald_redux 2.0.5 and
# toma 1.1.0 wheels, and the Python package's wheel.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .device && mkdir -p .device/wheels
exes() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in sys.argv[1:]:
        print(m["target"]["name"], m["executable"])
' "$@"
}
cargo build --release -p bald-cli --bin bald --example gpu_round
cp target/release/bald target/release/examples/gpu_round .device/
cargo test -p bald-cuda -p bald-cli --release --no-run --message-format=json 2>/dev/null |
    exes device compile no_gpu scale memory bald_cuda determinism cli |
    while read -r name path; do cp "$path" ".device/$name"; done
cargo bench -p bald-cuda --bench report --no-run --message-format=json 2>/dev/null | exes report |
    while read -r name path; do cp "$path" ".device/$name"; done
# Debug info off: the carried folder must stay well under the device tool's 64 MiB.
strip --strip-debug .device/compile .device/no_gpu .device/device .device/scale .device/memory \
    .device/bald_cuda .device/determinism .device/cli .device/report .device/gpu_round .device/bald
# Python 3.12 there: pure-Python wheels for batchbald_redux, and bald's own abi3 wheel.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d .device/wheels \
    batchbald-redux==2.0.5 toma==1.1.0
maturin=$(command -v maturin || echo /work/torchenv/bin/maturin)
if [ -x "$maturin" ]; then
    "$maturin" build --release -m python/Cargo.toml -o .device/wheels
else
    echo "no maturin here: the Python package's wheel is not carried"
fi
cp cuda/device/run.sh cuda/device/torch_compare.py .device/
pwd > .device/built-in
du -sh .device
ls -la .device .device/wheels
