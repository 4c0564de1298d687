# case_bench.sh -- kforge bench: help, usage and formula errors, small runs of
# each tier whose results agree with the reference engine, the table's
# columns, the cache outcome of the cc tier (miss, then hit in a new process).
# Every run names its own cache directory: the user's cache is never touched.
G='Exp(-SqDist(x,y)/IntCst(2))*b'
GA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
BC="$T/bench-cache"
kbench() { run "$BIN" bench "$@" --cache-dir "$BC"; }
# ref_ok NAME TOL: the "reference engine" line of the last run lists at least
# one tier, each within TOL, with no index and no non-finite value differing.
ref_ok() {
    if awk -v tol="$2" '
        /^reference engine/ {
            seen = 1
            sub(/^[^:]*: /, "")
            n = split($0, part, ", ")
            for (k = 1; k <= n; k++) {
                split(part[k], w, " ")
                if (!(w[2] + 0 <= tol + 0) || part[k] ~ /mismatch/ || (part[k] ~ /indices/ && w[3] != "(0")) bad = 1
            }
            if (n < 1) bad = 1
        }
        END { exit !(seen && !bad) }' "$T/out"; then
        pass
    else
        fail "$1: $(grep '^reference engine' "$T/out" || echo 'no reference line')"
    fi
}
# row_ok NAME TIER: the tier has a 13-column row with a positive ns/pair.
row_ok() {
    if awk -v t="$2" '$1 == t && NF == 13 && $12 + 0 > 0 { ok = 1 } END { exit !ok }' "$T/out"; then
        pass
    else
        fail "$1: no '$2' row with ns/pair in: $(grep -v '^$' "$T/out" | head -n 12 | tr '\n' '|')"
    fi
}
# col_is NAME TIER COLUMN VALUE
col_is() {
    got=$(awk -v t="$2" -v c="$3" '$1 == t && NF == 13 { print $c }' "$T/out")
    if [ "$got" = "$4" ]; then pass; else fail "$1: column $3 of '$2' is '$got', expected '$4'"; fi
}

# Help and usage errors.
run "$BIN" bench --help
expect "bench --help" 0
expect_out "bench --help: usage" "Usage: kforge bench"
run "$BIN" help bench
expect "help bench" 0
expect_out "help bench: example" "Example"
run "$BIN" help
expect_out "help lists bench" "kforge bench FORMULA"
run "$BIN" bench
expect "bench without a formula" 2 "kforge bench: missing FORMULA"
run "$BIN" bench "$G" $GA --axis 1
expect "bench without --reduction" 2 "missing --reduction"
run "$BIN" bench "$G" $GA -r Sum
expect "bench without --axis" 2 "missing --axis"
kbench "$G" $GA -r Sum --axis 1 --jit tcc,gcc
expect "bench --jit with a bad tier" 2 "not 'gcc'"
kbench "$G" $GA -r Sum --axis 1 --repeat 0
expect "bench --repeat 0" 2 "--repeat must be"
kbench "$G" $GA -r Sum --axis 1 -M -5
expect "bench -M -5" 2 "-M must be"
kbench "$G" $GA -r Sum --axis 1 --seed x
expect "bench --seed x" 2 "--seed must be"
kbench "$G" $GA -r Sum --axis 1 x.npy
expect "bench with a file" 2 "makes its own inputs"
kbench "$G" $GA -r Sum --axis 1 -o out.npy
expect "bench -o" 2 "unknown option '-o'"
kbench 'Exp(-SqDist(x,y)' $GA -r Sum --axis 1
expect "bench formula error" 2 "kforge bench: 1:17: "
expect "bench formula error shows the formula" 2 "  Exp(-SqDist(x,y)"
kbench "$G" $GA -r Summ --axis 1
expect "bench unknown reduction" 2 "Summ"

# libtcc, float32, axis 1: the row, the header, agreement with the reference.
kbench "$G" $GA -r Sum --axis 1 -M 40 -N 300 --jit tcc --repeat 3 --threads 2
expect "bench tcc" 0
row_ok "bench tcc row" tcc
col_is "bench tcc engine" tcc 2 tcc
col_is "bench tcc: no optimized code, no cache" tcc 3 -
expect_out "bench sizes line" "M=40 N=300: 1.2e+04 pairs; 2 threads; 3 repeats; seed 1"
expect_out "bench canonical form" "canonical  "
ref_ok "bench tcc float32 against the reference" 1e-4
# float64, axis 0, LogSumExp; KMin with its indices; a weighted reduction.
kbench "$G" $GA -r LogSumExp --axis 0 -M 50 -N 20 --dtype float64 --jit tcc --repeat 1 --threads 3
expect "bench LogSumExp axis 0" 0
expect_out "bench axis 0 rows" "axis 0, float64, 20 output rows"
ref_ok "bench LogSumExp float64 against the reference" 1e-12
kbench 'SqDist(x,y)' $GA -r KMin_ArgKMin -K 3 --axis 1 -M 30 -N 200 --dtype float64 --jit tcc --repeat 1
expect "bench KMin_ArgKMin" 0
expect_out "bench KMin_ArgKMin K" "KMin_ArgKMin K=3"
ref_ok "bench KMin_ArgKMin: values and indices as the reference's" 1e-12
kbench 'SqDist(x,y)' $GA -r SumSoftMaxWeight --formula2 'b*x' --axis 1 -M 10 -N 50 --jit tcc --repeat 1
expect "bench SumSoftMaxWeight" 0
expect_out "bench formula2 shown" "formula2   "
ref_ok "bench SumSoftMaxWeight against the reference" 1e-4
# The reference engine as a tier of its own; tiers compared with each other.
kbench "$G" $GA -r Min_ArgMin --axis 1 -M 20 -N 30 --jit tcc,reference --repeat 1
expect "bench tcc,reference" 0
row_ok "bench reference row" reference
expect_out "bench tiers compared" "agreement, first 20 rows, max|diff|/max|value|: reference vs tcc"
# Empty sizes run and print no rate.
kbench "$G" $GA -r Sum --axis 1 -M 0 -N 10 --jit tcc --repeat 1
expect "bench M=0" 0
col_is "bench M=0: no ns/pair" tcc 12 -
# No progress line when stderr is not a terminal.
kbench "$G" $GA -r Sum --axis 1 -M 20 -N 20 --jit tcc --repeat 2
if grep -q 'run 1 of' "$T/err"; then fail "bench: a progress line on a non-terminal"; else pass; fi

# The optimizing tier, when there is a C compiler: miss, then a hit from a new process.
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    rm -rf "$BC"
    kbench "$G" $GA -r Sum --axis 1 -M 64 -N 500 --jit tcc,cc --repeat 1
    expect "bench tcc,cc" 0
    row_ok "bench cc row" cc
    col_is "bench cc engine" cc 2 cc
    col_is "bench cc: first compile is a miss" cc 3 miss
    expect_out "bench cc: the cache entry" "cache entry (cc): $BC/"
    entry=$(sed -n 's/^cache entry (cc): //p' "$T/out")
    if [ -n "$entry" ] && [ -f "$entry" ]; then pass; else fail "bench cc: entry '$entry' is not a file"; fi
    expect_out "bench cc vs tcc" "agreement, first 64 rows, max|diff|/max|value|: cc vs tcc"
    ref_ok "bench cc and tcc against the reference" 1e-4
    kbench "$G" $GA -r Sum --axis 1 -M 64 -N 500 --jit cc --repeat 1
    expect "bench cc again" 0
    col_is "bench cc: a new process hits the cache" cc 3 hit
    kbench "$G" $GA -r Sum --axis 1 -M 64 -N 500 --jit auto --repeat 1
    expect "bench auto" 0
    col_is "bench auto: cached optimized code at once" auto 2 cc
    expect_out "bench auto line" "auto: the optimized code came from the cache"
    # auto on a kernel not in the cache: libtcc answers, the cc build is waited for.
    kbench 'Inv(IntCst(1)+SqDist(x,y))*b' $GA -r Sum --axis 1 -M 30 -N 40 --jit auto --repeat 1
    expect "bench auto (miss)" 0
    expect_out "bench auto (miss): libtcc first" "auto: first answer after"
    col_is "bench auto (miss): optimized code after the wait" auto 2 cc
else
    skip "bench, the optimizing tier" "no C compiler '${CC:-cc}' on PATH"
fi

# make bench's pieces: the scripts parse, the baseline loop runs and checks its arguments.
for s in bench/run.sh scripts/keops-venv.sh bench/limit.sh; do
    if sh -n "$ROOT/$s"; then pass; else fail "$s has a syntax error"; fi
done
# The FMA probe (the limit row's machine rate) prints a positive rate and refuses bad arguments.
fmap="$(dirname "$BIN")/bench/baseline_fma"
if [ -x "$fmap" ]; then
    run "$fmap" 1 0.05
    expect "baseline_fma" 0
    if awk '$1 + 0 > 1e8 && $2 == "vfma/s" { ok = 1 } END { exit !ok }' "$T/out"; then pass; else
        fail "baseline_fma: no plausible rate: $(cat "$T/out")"; fi
    run "$fmap" 0
    expect "baseline_fma: bad thread count" 2 "usage: baseline_fma"
else
    skip "baseline_fma" "not built ($fmap)"
fi
# limit.sh reads the hot loop of a cc object: instructions, lanes, instructions per pair, and
# the multiplies/FMAs among them (the Gaussian has at least its 3 squares, 6 polynomial steps
# and the sum's FMA, and fewer than all).
if command -v "${CC:-cc}" >/dev/null 2>&1 && command -v objdump >/dev/null 2>&1; then
    LC="$T/limitcache"
    run env KFORGE_CACHE_DIR="$LC" "$BIN" bench 'Exp(-SqDist(x,y)/IntCst(2))*b' $GA -r Sum --axis 1 \
        -M 64 -N 64 --jit cc --repeat 1
    so=$(sed -n 's/^cache entry (cc): //p' "$T/out" | head -n 1)
    if [ -n "$so" ] && [ -f "$so" ]; then
        l=$(sh "$ROOT/bench/limit.sh" "$so" "$(dirname "$so")/kernel.c")
        if echo "$l" | awk '$1 > 10 && $2 >= 8 && $3 > 0 && $3 < 50 && $4 >= 10 && $4 < $1 { ok = 1 } END { exit !ok }'; then pass; else
            fail "limit.sh on the Gaussian's object: '$l'"; fi
    else
        fail "bench --jit cc printed no cache entry: $(cat "$T/out")"
    fi
else
    skip "bench/limit.sh" "no C compiler or no objdump"
fi
baseline="$(dirname "$BIN")/bench/baseline_gauss"
if [ -x "$baseline" ]; then
    run "$baseline" 64 50 float64 2 1
    expect "baseline_gauss" 0
    expect_out "baseline_gauss prints ns/pair" "ns/pair (median of 1; min"
    expect_out "baseline_gauss sizes" "gauss float64 M=64 N=50 threads=2"
    run "$baseline" 64 50 float16
    expect "baseline_gauss: bad dtype" 2 "dtype must be float32 or float64"
    run "$baseline" 0
    expect "baseline_gauss: bad size" 2 "M must be an integer"
else
    skip "baseline_gauss" "$baseline is not built"
fi
# Out of memory for the inputs: one line, exit 1, no cascade into the next
# tier (which used to run with no output buffer: "kf_run: out is NULL", exit 2).
# Not under ASan, whose shadow memory needs more address space than the limit.
case "$BIN" in
*/asan/*) skip "bench out of memory" "ulimit -v and AddressSanitizer do not mix" ;;
*)
    run sh -c "ulimit -v 600000 && exec \"\$0\" \"\$@\"" "$BIN" bench 'Exp(-SqDist(x,y))*b' -a 'x=Vi(0,3)' \
        -a 'y=Vj(1,3)' -a 'b=Vj(2,1)' -r Sum --axis 1 -M 100000000 -N 1000 --jit tcc,reference
    expect "bench out of memory: exit 1, said once" 1 "out of memory for the inputs"
    if grep -q "is NULL" "$T/err"; then fail "bench out of memory cascades: $(cat "$T/err")"; else pass; fi
    ;;
esac
