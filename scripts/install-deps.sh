#!/bin/sh
# install-deps.sh -- installs the Debian packages kforge needs, if missing.
# Called once by the Makefile (build/.deps-ok remembers it). Needs root (or
# sudo) only when something is missing.
#   tcc, libtcc-dev     the in-memory JIT (libtcc) and its runtime library
#   clang, libclang-rt-14-dev   libFuzzer and the sanitizers for `make test`
#   libarpack2-dev, liblapack-dev, libblas-dev   the Lanczos eigensolver (ARPACK-ng's
#                       reverse-communication drivers) and the dense checks of its tests
#   libssl-dev          SHA-256 of cache keys (OpenSSL's libcrypto: well kept, everywhere)
#   make, gcc           the build itself (gcc is also the optimizing tier's default $CC)
#   g++                 compiles the generated CUDA kernels for the CPU in the emulation
#                       tests (tests/t_cuda_emu.c), so their logic is checked without a GPU
#   pkgconf             `pkg-config --libs kforge` in the install test (tests/install.sh):
#                       how an outside program finds the installed library
#   python3-numpy, python3-scipy   the Python package's arrays and scipy's LinearOperator/eigsh,
#                       which the tutorials (examples/python) use as KeOps users do
#   python3-matplotlib  the tutorials' figures (PNG files, Agg backend)
#   python3-pytest      the Python tests (tests/python.sh)
#   python3-venv, python3-setuptools   the test of `pip install ./python` in a venv (ensurepip,
#                       and the pyproject's build backend, offline)
#   libparpack2-dev, libopenmpi-dev, openmpi-bin   the distributed eigensolver
#                       (PARPACK, ARPACK's MPI twin, and Open MPI's mpicc and mpirun):
#                       optional for the build (it is on only when both are found),
#                       installed here so that CI builds it and runs tests/mpi/run.sh
set -eu
need=""
for pkg in tcc libtcc-dev libarpack2-dev liblapack-dev libblas-dev libssl-dev clang libclang-rt-14-dev gcc g++ make pkgconf \
    python3-numpy python3-scipy python3-matplotlib python3-pytest python3-venv python3-setuptools \
    libparpack2-dev libopenmpi-dev openmpi-bin; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need="$need $pkg"
    fi
done
if [ -z "$need" ]; then
    echo "install-deps: all Debian packages present"
    exit 0
fi
echo "install-deps: installing$need"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: missing packages:$need; run as root or install them" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need
