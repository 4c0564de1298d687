#!/bin/sh
# keops-venv.sh BUILD -- a private Python environment with KeOps (pykeops from
# PyPI, with numpy and scipy), shared by `make bench` (KeOps' CPU engine timed
# beside kforge, bench/run.sh) and `make test-keops` (both engines on a corpus
# of formulas, tests/keops/run.sh, which also imports kforge's package: that
# is what scipy is for). Idempotent: the environment (BUILD/keops-venv) is made
# once; one made before scipy was asked for gets scipy added. Prints the
# environment's python on stdout and exits 0, or one line saying why KeOps
# cannot be had here on stdout and exits 1 (no python3 with venv, no g++, no
# network to PyPI, a failed install): the callers print that line as their
# skip. KEOPS_VERSION (default 2.3) is the pykeops release installed.
set -u
B=${1:-build}
V=$B/keops-venv
VER=${KEOPS_VERSION:-2.3}
PY=$V/bin/python
LOG=$B/keops-install.log
if [ -x "$PY" ] && "$PY" -c 'import pykeops' >/dev/null 2>&1; then
    "$PY" -c 'import scipy' >/dev/null 2>&1 ||
        timeout 600 "$V/bin/pip" install -q scipy >>"$LOG" 2>&1 || {
        echo "pip install scipy into $V failed: no network to PyPI? (see $LOG)"; exit 1; }
    echo "$PY"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "no python3"; exit 1; }
mkdir -p "$B"
rm -rf "$V"
python3 -m venv "$V" >"$LOG" 2>&1 || {
    echo "python3 -m venv failed (see $LOG)"; exit 1; }
# pykeops compiles its kernels with g++ at the first call: without it nothing runs.
command -v g++ >/dev/null 2>&1 || { echo "no g++ (pykeops compiles its kernels with it)"; exit 1; }
if ! timeout 600 "$V/bin/pip" install -q "pykeops==$VER" numpy scipy >>"$LOG" 2>&1; then
    echo "pip install pykeops==$VER failed: no network to PyPI? (see $LOG)"
    rm -rf "$V"
    exit 1
fi
echo "$PY"
