#!/usr/bin/env bash
# Side-by-side timing of batchbald_redux 2.0.5 (torch, CPU) and bald-cpu-simd on the same
# inputs, in one run. Makes a virtualenv from PyPI (torch, numpy, batchbald-redux, toma).
# Usage: bash cpu-simd/compare/run.sh [WORKDIR]   (REPEATS=3 by default). Not run in CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q --upgrade pip
    "$work/venv/bin/pip" install -q numpy torch batchbald-redux==2.0.5 toma==1.1.0
fi
cargo build -q --release -p bald-cpu-simd --example compare --manifest-path "$root/Cargo.toml"
"$work/venv/bin/python" "$root/cpu-simd/compare/compare.py" "$work" "$root"
