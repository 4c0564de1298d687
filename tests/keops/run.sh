#!/bin/sh
# run.sh BUILD [LINE ...] -- make test-keops: the formulas of tests/keops/corpus.txt through
# KeOps 2.3 (pykeops' Genred, CPU) and kforge (python/kforge over BUILD/libkforge.so.0) on
# the same inputs, one line per case, then "K of N formulas match" (tests/keops/compare.py).
# Optional, not part of make test: pykeops comes from PyPI into a private environment
# (scripts/keops-venv.sh, BUILD/keops-venv) and compiles each formula with g++ at its first
# call (seconds each; cached in BUILD/keops-test/keops). Exits 0 with one SKIP line when
# pykeops cannot be had; 1 when a case ends otherwise than the corpus expects. LINE numbers
# of the corpus run those cases only.
set -u
B=${1:-build}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! [ -r "$B/libkforge.so.0" ]; then
    echo "test-keops: $B/libkforge.so.0 is not built (make shared)"
    exit 1
fi
if ! PY=$(sh "$ROOT/scripts/keops-venv.sh" "$B"); then
    echo "SKIP test-keops: $PY"
    exit 0
fi
mkdir -p "$B/keops-test"
# Two threads for both engines: the figures are not timed, and the machine may be shared.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} KFORGE_THREADS=${KFORGE_THREADS:-2} \
PYTHONDONTWRITEBYTECODE=1 \
    "$PY" "$ROOT/tests/keops/compare.py" "$B" "$ROOT/tests/keops/corpus.txt" "$@"
