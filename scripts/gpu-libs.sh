#!/bin/sh
# scripts/gpu-libs.sh DIR -- the shared libraries kforge links (besides libc), unpacked
# from Debian's packages into DIR/usr/lib/x86_64-linux-gnu, for a machine that has no
# package registry (the lent GPU machine of docs/cuda.md, "Running on a lent GPU").
# Run it here, carry DIR and the build folder, then on the GPU machine:
#   LD_LIBRARY_PATH=DIR/usr/lib/x86_64-linux-gnu:DIR/usr/lib/x86_64-linux-gnu/blas:...
# (the script prints the exact value).
set -e
DIR=${1:?usage: gpu-libs.sh DIR}
mkdir -p "$DIR/debs"
cd "$DIR/debs"
# libarpack2, LAPACK/BLAS (reference builds: the GPU machine does the heavy work),
# gfortran's runtime ARPACK needs, OpenSSL's libcrypto (the cache's SHA-256)
for p in libarpack2 liblapack3 libblas3 libgfortran5 libquadmath0 libssl3; do
    ls "$p"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null
done
for f in *.deb; do dpkg -x "$f" ..; done
cd ..
L=$(pwd)/usr/lib/x86_64-linux-gnu
echo "LD_LIBRARY_PATH=$L:$L/blas:$L/lapack"
