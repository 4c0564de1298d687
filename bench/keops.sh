#!/bin/sh
# keops.sh BUILD -- a private Python environment with KeOps (pykeops from PyPI)
# for `make bench` to time KeOps' CPU engine beside kforge. Idempotent: the
# environment (BUILD/keops-venv) is made once. Prints the environment's python
# on stdout and exits 0, or one line saying why KeOps cannot be benched here
# on stdout and exits 1 (no python3 with venv, no network to PyPI, a failed
# install): the bench then prints that line instead of the KeOps column.
# KEOPS_VERSION (default 2.3) is the pykeops release installed.
set -u
B=${1:-build}
V=$B/keops-venv
VER=${KEOPS_VERSION:-2.3}
PY=$V/bin/python
if [ -x "$PY" ] && "$PY" -c 'import pykeops' >/dev/null 2>&1; then
    echo "$PY"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "no python3"; exit 1; }
rm -rf "$V"
python3 -m venv "$V" >"$B/keops-install.log" 2>&1 || {
    echo "python3 -m venv failed (see $B/keops-install.log)"; exit 1; }
# pykeops compiles its kernels with g++ at the first call: without it nothing runs.
command -v g++ >/dev/null 2>&1 || { echo "no g++ (pykeops compiles its kernels with it)"; exit 1; }
if ! timeout 600 "$V/bin/pip" install -q "pykeops==$VER" numpy >>"$B/keops-install.log" 2>&1; then
    echo "pip install pykeops==$VER failed: no network to PyPI? (see $B/keops-install.log)"
    rm -rf "$V"
    exit 1
fi
echo "$PY"
