#!/bin/sh
# run.sh BUILD -- `make bench`: the figures of docs/performance.md, as Markdown
# tables on stdout, every ratio taken within this one run (the machine may be
# shared and noisy: compare ratios, not absolute times across runs).
#   1. the tutorial's Gaussian kernel sum, D=3, float32 and float64,
#      M=N in {1e4, 2e4, 1e5}: ns/pair of the libtcc and cc tiers, of the
#      hand-written loop bench/baseline/gauss.c (-O3 -march=native -ffast-math),
#      and of KeOps' CPU engine (pykeops from PyPI in a private environment,
#      scripts/keops-venv.sh; at 1e4 and 2e4; a skip line when it cannot be had);
#      then the limit: the machine's vector FMA rate (bench/baseline/fma.c)
#      times the vector instructions per pair of the cc kernel's hot loop
#      (bench/limit.sh);
#   2. other formulas at M=N=1e4 (D=16, 64 at 5000): Laplace, Cauchy, KMin
#      K=10, LogSumExp, Gaussian D in {1, 3, 16, 64}; then the Gaussian with
#      terms in the subnormal range (*IntCst(200)) against /IntCst(2), cc,
#      M=N=2e4, alternated twice (issue 12's goal: <= 1.2x);
#   3. compile times: libtcc, cc on a cold cache (a fresh temporary
#      KFORGE_CACHE_DIR), and a cache hit in a new process (kf_compile to a
#      runnable kernel);
#   4. block-sparse (bench/blocksparse.c): the tutorial's clouds at M=N=2e5,
#      sigma 0.05 and 0.01, ns per computed pair against dense; the whole
#      pipeline against dense at 2e4; planning with 10^4 clusters per cloud.
# libtcc is skipped at 1e5 (~12 ns/pair: two minutes alone); big sizes run
# fewer repeats. The raw `kforge bench` outputs are kept in BUILD/bench-logs.
# Environment: BENCH_THREADS (default 2), BENCH_QUICK=1 (sizes / 10, for tests;
# no KeOps), BENCH_KEOPS=0 (no KeOps).
set -u
B=${1:-build}
KF=$B/kforge
BASE=$B/bench/baseline_gauss
for f in "$KF" "$BASE"; do
    if [ ! -x "$f" ]; then
        echo "run.sh: $f is missing: run 'make BUILD=$B all' first" >&2
        exit 1
    fi
done
THREADS=${BENCH_THREADS:-2}
QUICK=${BENCH_QUICK:-0}
LOGS=$B/bench-logs
mkdir -p "$LOGS" || exit 1
rm -f "$LOGS"/*.txt # this run's logs only
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/kforge-bench-cache.XXXXXX") || exit 1
trap 'rm -rf "$CACHE"' EXIT
trap 'exit 130' INT TERM
KFORGE_CACHE_DIR=$CACHE
export KFORGE_CACHE_DIR
unset KFORGE_JIT KFORGE_CACHE
failed=0
nlog=0

# size N: N, or N/10 under BENCH_QUICK.
size() { if [ "$QUICK" = 1 ]; then echo $(($1 / 10)); else echo "$1"; fi; }

# kb NAME ARGS...: runs kforge bench, keeps its output in $LOGS, sets $out.
kb() {
    nlog=$((nlog + 1))
    log=$LOGS/$(printf %02d $nlog)-$1.txt
    shift
    if "$KF" bench "$@" --threads "$THREADS" >"$log" 2>&1; then :; else
        echo "run.sh: kforge bench $* failed (see $log)" >&2
        failed=1
    fi
    out=$log
}
# col TIER N: column N of the tier's row of the last bench ("n/a" if absent).
col() { awk -v t="$1" -v c="$2" '$1 == t && NF >= 13 { v = $c } END { print (v == "" ? "n/a" : v) }' "$out"; }
# ratio A B: A / B with two decimals, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.3f", a; else print a }'; }

G='Exp(-SqDist(x,y)/IntCst(2))*b'
XYB() { echo "--alias x=Vi(0,$1) --alias y=Vj(1,$1) --alias b=Vj(2,1)"; }

echo "## kforge bench ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
echo "- machine: ${model:-unknown CPU}, $(nproc 2>/dev/null || echo '?') cores;" \
    "AVX2: $(grep -q ' avx2' /proc/cpuinfo 2>/dev/null && echo yes || echo no)," \
    "AVX-512: $(grep -q ' avx512f' /proc/cpuinfo 2>/dev/null && echo yes || echo no)"
echo "- compiler: $(${CC:-cc} --version 2>/dev/null | head -n 1)"
echo "- kforge $("$KF" --version | sed 's/^kforge //'), $THREADS threads," \
    "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- command: make bench (bench/run.sh); ns/pair = median run time / (M*N)"
echo

# KeOps beside us, when it can be had (a private venv, pykeops from PyPI).
KPY=""
if [ "$QUICK" = 1 ] || [ "${BENCH_KEOPS:-1}" = 0 ]; then
    keops_skip="not run (BENCH_QUICK=1 or BENCH_KEOPS=0)"
elif KPY=$(sh "$(dirname "$0")/../scripts/keops-venv.sh" "$B"); then
    keops_skip=""
else
    keops_skip=$KPY
    KPY=""
fi
# KeOps imports its compiled modules from its build folder: an absolute path.
KBUILD=$(cd "$B" && pwd)/keops-build
# keops N DTYPE REPEAT: KeOps' CPU ns/pair on the Gaussian sum, or n/a.
keops() {
    [ -n "$KPY" ] || { echo "n/a"; return; }
    nlog=$((nlog + 1))
    klog=$LOGS/$(printf %02d $nlog)-keops-$2-$1.txt
    OMP_NUM_THREADS=$THREADS "$KPY" "$(dirname "$0")/keops_gauss.py" "$1" "$1" "$2" "$THREADS" "$3" \
        "$KBUILD" >"$klog" 2>&1 || { echo "run.sh: KeOps failed (see $klog)" >&2; }
    v=$(awk '/ns\/pair/ { print $1 }' "$klog" | tail -n 1)
    echo "${v:-n/a}"
}

# 1. The Gaussian kernel sum against the hand-written loop and KeOps.
echo "### Gaussian kernel sum, D=3: ns/pair (lower is better)"
echo
echo "| dtype | M=N | baseline loop | KeOps CPU | libtcc | cc | baseline / cc | KeOps / cc | libtcc / cc |"
echo "|---|---|---|---|---|---|---|---|---|"
limits=$LOGS/limits.txt
: >"$limits"
for dt in float32 float64; do
    for n0 in 10000 20000 100000; do
        n=$(size $n0)
        case $n0 in 10000) rep=5 ;; 20000) rep=3 ;; *) rep=1 ;; esac
        if [ "$n0" = 100000 ]; then tiers=cc; else tiers=tcc,cc; fi
        base=$("$BASE" "$n" "$n" "$dt" "$THREADS" "$rep" | awk '{ print $1 }')
        [ -n "$base" ] || { base=n/a; failed=1; }
        if [ "$n0" = 100000 ]; then ko="(skipped)"; else ko=$(keops "$n" "$dt" "$rep"); fi
        # shellcheck disable=SC2046
        kb "gauss-$dt-$n" "$G" $(XYB 3) -r Sum --axis 1 -M "$n" -N "$n" --dtype "$dt" \
            --jit "$tiers" --repeat "$rep"
        tcc=$(col tcc 12)
        cc=$(col cc 12)
        [ "$tiers" = cc ] && tcc="(skipped)"
        echo "| $dt | $n | $(fmt "$base") | $(fmt "$ko") | $(fmt "$tcc") | $(fmt "$cc") |" \
            "$(ratio "$base" "$cc") | $(ratio "$ko" "$cc") | $(ratio "$tcc" "$cc") |"
        so=$(sed -n 's/^cache entry (cc): //p' "$out" | head -n 1)
        [ "$n0" = 20000 ] && [ -n "$so" ] && echo "$dt|$cc|$so" >>"$limits"
    done
done
echo
[ -z "$keops_skip" ] || echo "KeOps CPU: skipped: $keops_skip"
[ -z "$keops_skip" ] || echo
[ -n "$KPY" ] && echo "(KeOps: $("$KPY" -c 'import pykeops; print("pykeops", pykeops.__version__)' 2>/dev/null | tail -n 1)," \
    "OMP_NUM_THREADS=$THREADS, its own random inputs of the same distribution, compile not timed.)"
[ -n "$KPY" ] && echo

# The limit: what the machine's vector FMA rate allows for the cc kernel's hot loop.
FMA=$B/bench/baseline_fma
if [ -x "$FMA" ] && [ -s "$limits" ]; then
    # The best of three: a shared machine only ever makes the rate look lower.
    rate=$(for r in 1 2 3; do "$FMA" "$THREADS" 0.3; done | awk '$1 + 0 > m { m = $1 + 0 } END { printf "%.4g", m }')
    bits=$("$FMA" 1 0.1 | awk '{ print $3 }')
    echo "### Limit: vector FMA rate x the cc kernel's vector instructions per pair"
    echo
    echo "Machine: $rate vector FMAs/s ($bits, $THREADS threads, bench/baseline/fma.c). Hot loop:"
    echo "the innermost loop of the cc object with the most vector instructions, per KF_RB pairs"
    echo "(bench/limit.sh). limit ns/pair = instructions per pair / FMA rate: every vector"
    echo "instruction priced as one FMA. FMA floor = the multiplies and FMAs alone at that rate: a"
    echo "bound even a core that issues every other operation on other pipes (Zen 4) cannot beat."
    echo
    echo "| dtype | M=N | vector instr / iteration | of them FMA/mul | pairs / iteration | limit ns/pair | FMA floor ns/pair | cc ns/pair | cc / limit | cc / FMA floor |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    while IFS='|' read -r dt cc so; do
        l=$(sh "$(dirname "$0")/limit.sh" "$so" "$(dirname "$so")/kernel.c")
        set -- $l
        if [ $# = 4 ]; then
            lim=$(awk -v p="$3" -v r="$rate" 'BEGIN { printf "%.4f", 1e9 * p / r }')
            flo=$(awk -v f="$4" -v b="$2" -v r="$rate" 'BEGIN { printf "%.4f", 1e9 * f / b / r }')
            echo "| $dt | $(size 20000) | $1 | $4 | $2 | $lim | $flo | $(fmt "$cc") | $(ratio "$cc" "$lim") | $(ratio "$cc" "$flo") |"
        else
            echo "| $dt | $(size 20000) | n/a (objdump?) | | | | | $(fmt "$cc") | | |"
        fi
    done <"$limits"
    echo
fi

# 2. Other formulas (float32): ns/pair per tier; compile times kept for table 3.
echo "### Other formulas, float32: ns/pair"
echo
echo "| formula | reduction | D | M=N | libtcc | cc | libtcc / cc |"
echo "|---|---|---|---|---|---|---|"
compiles=$LOGS/compiles.txt
: >"$compiles"
other() { # other LABEL FORMULA REDUCTION D N [bench options]
    label=$1 f=$2 red=$3 d=$4 n=$(size "$5")
    shift 5
    # shellcheck disable=SC2046
    kb "$label" "$f" $(XYB "$d") -r "$red" --axis 1 -M "$n" -N "$n" --jit tcc,cc --repeat 3 "$@"
    tcc=$(col tcc 12)
    cc=$(col cc 12)
    echo "| \`$f\` | $red | $d | $n | $(fmt "$tcc") | $(fmt "$cc") | $(ratio "$tcc" "$cc") |"
    # the cc row's compile was a miss (a new formula in a fresh cache): time a hit now,
    # from a new process, on a tiny size.
    miss_cache=$(col cc 3)
    tcc_ms=$(col tcc 4)
    cc_ms=$(col cc 4)
    # shellcheck disable=SC2046
    kb "$label-hit" "$f" $(XYB "$d") -r "$red" --axis 1 -M 100 -N 100 --jit cc --repeat 1 "$@"
    echo "$label|$tcc_ms|$miss_cache|$cc_ms|$(col cc 3)|$(col cc 4)" >>"$compiles"
}
other gauss-d1 "$G" Sum 1 10000
other gauss-d3 "$G" Sum 3 10000 --sum-scheme direct
other gauss-d16 "$G" Sum 16 5000
other gauss-d64 "$G" Sum 64 5000
other laplace 'Exp(-Norm2(x-y))*b' Sum 3 10000
other cauchy 'Inv(IntCst(1)+SqDist(x,y))*b' Sum 3 10000
other kmin 'SqDist(x,y)' KMin 3 10000 -K 10
other lse 'Minus(SqDist(x,y))/IntCst(2)' LogSumExp 3 10000
echo
echo "(The Gaussian D=3 row here uses --sum-scheme direct: one float accumulator, the"
echo "baseline loop's own scheme; table 1 uses the default block scheme.)"
echo

# 2b. The subnormal range (issue 12): with IntCst(200) nearly every term's exp
# is below FLT_MIN, where Intel CPUs took microcode assists before the flush.
# The two kernels alternate, so both rounds see the same machine.
echo "### Subnormal-range terms, float32 cc: ns/pair"
echo
echo "| round | \`Exp(-SqDist(x,y)/IntCst(2))*b\` | \`Exp(-SqDist(x,y)*IntCst(200))*b\` | ratio (goal <= 1.2) |"
echo "|---|---|---|---|"
GS='Exp(-SqDist(x,y)*IntCst(200))*b'
n=$(size 20000)
for r in 1 2; do
    # shellcheck disable=SC2046
    kb "normal-range-$r" "$G" $(XYB 3) -r Sum --axis 1 -M "$n" -N "$n" --jit cc --repeat 5
    a=$(col cc 12)
    # shellcheck disable=SC2046
    kb "subnormal-range-$r" "$GS" $(XYB 3) -r Sum --axis 1 -M "$n" -N "$n" --jit cc --repeat 5
    b=$(col cc 12)
    echo "| $r | $(fmt "$a") | $(fmt "$b") | $(ratio "$b" "$a") |"
done
echo

# 3. Compile times.
echo "### Compile times, ms (kf_compile as the caller sees it)"
echo
echo "| kernel | libtcc | cc, cold cache | cache hit, new process |"
echo "|---|---|---|---|"
while IFS='|' read -r label tcc_ms miss_cache cc_ms hit_cache hit_ms; do
    note=""
    [ "$miss_cache" = miss ] || note=" (cache: $miss_cache)"
    hnote=""
    [ "$hit_cache" = hit ] || hnote=" (cache: $hit_cache)"
    echo "| $label | $(fmt "$tcc_ms") | $(fmt "$cc_ms")$note | $(fmt "$hit_ms")$hnote |"
done <"$compiles"
echo
# 4. Block-sparse (issue 4): bench/blocksparse.c on the tutorial's clouds
# (docs/blocksparse.md), the cc tier, kforge's planner with cutoff 4 sigma.
BS=$B/bench/blocksparse
if [ -x "$BS" ]; then
    # bs NAME ARGS...: one table row from $BS, its stderr kept in $LOGS.
    bs() {
        nlog=$((nlog + 1))
        log=$LOGS/$(printf %02d $nlog)-$1.txt
        shift
        if "$BS" "$@" 2>"$log"; then :; else
            echo "run.sh: blocksparse $* failed (see $log)" >&2
            failed=1
        fi
    }
    echo "### Block-sparse Gaussian kernel sum, tutorial clouds, float32, cc tier"
    echo
    echo "Kept: the planner's pattern (cluster pairs whose boxes and radii allow a pair within 4 sigma)."
    echo "Dense ns/pair is timed on the first rows (10^4, 5000 at sigma 0.01) over all N;"
    echo "sparse ns/pair per COMPUTED pair; the goal is a ratio dense/sparse >= 0.8."
    echo
    echo "| M=N | sigma | eps | clusters | kept | dense ns/pair | sparse ns/computed pair |" \
        "dense / sparse | sparse run, s | planning | rel. error |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    bs bs-speed-005 speed "$(size 200000)" 0.05 0.05 "$THREADS" "$(size 10000)"
    bs bs-speed-001 speed "$(size 200000)" 0.01 0.01 "$THREADS" "$(size 5000)"
    echo
    echo "Whole pipeline (plan + sorting the inputs + sparse run + results back in the user's"
    echo "order) against one dense run, both over every row:"
    echo
    echo "| M=N | sigma | clusters | kept | dense, s | planning | sorting inputs | sparse run, s |" \
        "order back | pipeline, s | dense / pipeline |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    bs bs-pipeline pipeline "$(size 20000)" 0.05 0.05 "$THREADS"
    echo
    echo "Planning alone, two uniform clouds in the unit square (1/eps^2 cells each):"
    echo
    echo "| n | eps | cutoff | clusters | kept | cluster | sort | ranges | mask | total |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    bs bs-plan plan "$(size 200000)" 0.01 0.02 "$THREADS"
    echo
else
    echo "run.sh: $BS is missing: no block-sparse figures" >&2
    failed=1
fi
if [ "$failed" != 0 ]; then
    echo "run.sh: some benches failed; see $LOGS" >&2
    exit 1
fi
