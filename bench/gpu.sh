#!/bin/sh
# bench/gpu.sh -- `make bench-gpu`: the CUDA backend's figures for docs/performance.md
# (issue 6). Needs an NVIDIA GPU and driver; prints the device first.
#   1. the tutorial's Gaussian kernel sum D=3 float32, M=N in {1e4, 1e5, 1e6}: time,
#      pairs per second, and the ratio to the 0.24 s exp-unit floor of an H100 at 1e6;
#      float64 at 1e5 and 1e6
#   2. D in {1, 16, 64} (float32, M=N=1e5); KMin K=10 (M=N=1e5)
#   3. the tutorial's spectral-coordinates run: eigsh on the 1e6-point Swiss roll,
#      block-sparse (the tutorial: 51.8 s; our aim: under 5 s), matvec time reported
#   sh bench/gpu.sh [BUILD]        (BENCH_QUICK=1: sizes / 10, no 1e6 eigsh)
B=${1:-build}
KF=$B/kforge
[ -x "$KF" ] || { echo "gpu.sh: $KF is missing: run 'make BUILD=$B all' first" >&2; exit 1; }
QUICK=${BENCH_QUICK:-0}
LOGS=$B/bench-gpu-logs
mkdir -p "$LOGS" || exit 1
rm -f "$LOGS"/*.txt
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/kforge-gpu-cache.XXXXXX") || exit 1
trap 'rm -rf "$CACHE"' EXIT
KFORGE_CACHE_DIR=$CACHE
export KFORGE_CACHE_DIR
unset KFORGE_JIT KFORGE_BACKEND KFORGE_DEVICE
failed=0
nlog=0

echo "### Device"
"$KF" devices || { echo "gpu.sh: no usable GPU: nothing to measure" >&2; exit 1; }
echo

size() { if [ "$QUICK" = 1 ]; then echo $(($1 / 10)); else echo "$1"; fi; }
G='Exp(-SqDist(x,y)/IntCst(2))*b'
# kb NAME ARGS...: kforge bench --backend cuda, output kept; $out = its log
kb() {
    nlog=$((nlog + 1))
    out=$LOGS/$(printf %02d $nlog)-$1.txt
    shift
    "$KF" bench "$@" --backend cuda >"$out" 2>&1 || { echo "gpu.sh: kforge bench $* failed (see $out)" >&2; failed=1; }
}
# the cuda row: median run ms (column 10) and ns/pair (column 12)
col() { awk -v c="$1" '$1 == "cuda" && NF >= 13 { v = $c } END { print (v == "" ? "n/a" : v) }' "$out"; }
XYB() { echo "-a x=Vi(0,$1) -a y=Vj(1,$1) -a b=Vj(2,1)"; }

echo "### Gaussian kernel sum on the GPU (kforge bench --backend cuda, median of 5; first run compiles)"
echo "| dtype | D | M=N | run, s | ns/pair | pairs/s | vs 0.24 s floor (1e6, f32) |"
echo "|---|---|---|---|---|---|---|"
for dt in float32 float64; do
    for n in 10000 100000 1000000; do
        [ "$dt" = float64 ] && [ "$n" = 10000 ] && continue
        n=$(size $n)
        # shellcheck disable=SC2046
        kb "gauss-$dt-$n" "$G" $(XYB 3) -r Sum --axis 1 -M "$n" -N "$n" --dtype "$dt" --repeat 5
        ms=$(col 10)
        ns=$(col 12)
        awk -v ms="$ms" -v ns="$ns" -v n="$n" -v dt="$dt" 'BEGIN {
            if (ms + 0 <= 0) { printf "| %s | 3 | %d | n/a | n/a | n/a | |\n", dt, n; exit }
            s = ms / 1000; r = (n == 1000000 && dt == "float32") ? sprintf("%.2fx", s / 0.24) : "";
            printf "| %s | 3 | %d | %.4f | %.5f | %.3g | %s |\n", dt, n, s, ns, 1e9 / ns, r }'
    done
done
for d in 1 16 64; do
    n=$(size 100000)
    # shellcheck disable=SC2046
    kb "gauss-d$d" "$G" $(XYB $d) -r Sum --axis 1 -M "$n" -N "$n" --dtype float32 --repeat 5
    awk -v ms="$(col 10)" -v ns="$(col 12)" -v n="$n" -v d="$d" 'BEGIN {
        if (ms + 0 <= 0) printf "| float32 | %d | %d | n/a | n/a | n/a | |\n", d, n;
        else printf "| float32 | %d | %d | %.4f | %.5f | %.3g | |\n", d, n, ms / 1000, ns, 1e9 / ns }'
done
n=$(size 100000)
kb kmin10 'SqDist(x,y)' -a 'x=Vi(0,3)' -a 'y=Vj(1,3)' -r KMin_ArgKMin -K 10 --axis 1 -M "$n" -N "$n" \
    --dtype float32 --repeat 5
echo
echo "KMin_ArgKMin K=10, D=3, float32, M=N=$n: $(col 10) ms, $(col 12) ns/pair"
echo

if [ "$QUICK" != 1 ]; then
    echo "### Spectral coordinates of the 1e6-point Swiss roll (the tutorial's run: 51.8 s)"
    nlog=$((nlog + 1))
    out=$LOGS/$(printf %02d $nlog)-eigsh-swissroll.txt
    t0=$(date +%s.%N)
    "$KF" eigsh --gen swissroll:1000000 --sigma 0.01 --block-sparse 0.05 -k 7 --ncv 40 --backend cuda \
        -v >"$out" 2>&1 || { echo "gpu.sh: eigsh failed (see $out)" >&2; failed=1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "wall time %.1f s (goal: under 5 s)\n", b - a }'
    grep -iE "matvec|eigenvalue|iteration|converged" "$out" | head -20
fi
exit $failed
