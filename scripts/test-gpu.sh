#!/bin/sh
# scripts/test-gpu.sh [BUILD] -- `make test-gpu`: the CUDA tests on a machine with an
# NVIDIA GPU and driver (docs/cuda.md). Without one it says so and fails: these tests
# exist to run on the device. Ends with the line "N passed, N failed".
B=${1:-build}
for f in "$B/kforge" "$B/kforge-tests"; do
    [ -x "$f" ] || { echo "test-gpu: $f is missing: run 'make BUILD=$B all $B/kforge-tests' first" >&2; exit 1; }
done
echo "== GPU"
if ! "$B/kforge" devices; then
    echo "test-gpu: no usable GPU (see above): the CUDA tests need one" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
echo "== CUDA unit tests (kforge-tests cuda)"
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
"$B/kforge-tests" cuda 2>&1 | tee "$out"
p=$(awk '/passed,.*failed/ { p = $1 } END { print p + 0 }' "$out")
f=$(awk '/passed,.*failed/ { f = $3 } END { print f + 0 }' "$out")
echo "== CLI on the GPU"
dir=$(mktemp -d) || exit 1
G='Exp(-SqDist(x,y)/IntCst(2))*b'
for be in cpu cuda; do
    if "$B/kforge" bench "$G" -a 'x=Vi(0,3)' -a 'y=Vj(1,3)' -a 'b=Vj(2,1)' -r Sum -M 20000 -N 20000 \
        --dtype float32 --jit tcc --backend "$be" --repeat 1 >"$dir/$be.txt" 2>&1; then
        p=$((p + 1))
    else
        echo "FAIL kforge bench --backend $be:"; cat "$dir/$be.txt"; f=$((f + 1))
    fi
done
if "$B/kforge" eigsh --gen spiral:10000 --laplacian unnormalized -k 7 --backend cuda >"$dir/eigsh.txt" 2>&1 &&
    grep -q "3.4" "$dir/eigsh.txt"; then
    p=$((p + 1))
else
    echo "FAIL kforge eigsh --backend cuda:"; cat "$dir/eigsh.txt"; f=$((f + 1))
fi
rm -rf "$dir"
echo "$p passed, $f failed"
[ "$f" = 0 ]
