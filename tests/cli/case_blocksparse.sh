# case_blocksparse.sh -- kforge eval/bench --block-sparse EPS:CUTOFF: results
# in the files' order matching a dense eval (a Gaussian with a generous cutoff
# to ~1e-6; with CUTOFF=inf the same bits, indices included, on both axes),
# every i- and j-variable permuted, --verbose, bad EPS:CUTOFF and unusable
# clouds rejected with exit status 2, bench's block-sparse report.
BA="--alias x=Vi(0,2) --alias y=Vj(1,2) --alias b=Vj(2,1) --alias a=Vi(3,1)"
mkrand "$T/bx.npy" '<f8' 300 2 11
mkrand "$T/by.npy" '<f8' 257 2 12
mkrand "$T/bb.npy" '<f8' 257 0 13
mkrand "$T/ba.npy" '<f8' 300 0 14
mkrand "$T/bx4.npy" '<f4' 300 2 11
mkrand "$T/by4.npy" '<f4' 257 2 12
mkrand "$T/bb4.npy" '<f4' 257 0 13
mkrand "$T/ba4.npy" '<f4' 300 0 14
# A Gaussian of width 0.1 (1/(2 sigma^2) = 50): beyond 0.7 = 7 sigma a term is below e^-24.5.
BG='Exp(-SqDist(x,y)*IntCst(50))*b*a'
for d in 8 4; do
    if [ $d = 8 ]; then F="$T/bx.npy $T/by.npy $T/bb.npy $T/ba.npy"; else F="$T/bx4.npy $T/by4.npy $T/bb4.npy $T/ba4.npy"; fi
    for axis in 0 1; do
        # shellcheck disable=SC2086
        run "$BIN" eval "$BG" $BA -r Sum --axis $axis --jit tcc -o "$T/bsdense.npy" $F
        expect "block-sparse f$d axis $axis: dense" 0
        # shellcheck disable=SC2086
        run "$BIN" eval "$BG" $BA -r Sum --axis $axis --jit tcc -o "$T/bssparse.npy" $F --block-sparse 0.2:0.7
        expect "block-sparse f$d axis $axis: sparse" 0
        same_vals "block-sparse f$d axis $axis Gaussian ~ dense" "$T/bssparse.npy" "$T/bsdense.npy" 1e-6 1e-6
    done
done
# k-means clusters (:kmeans=ITERS) with a generous cutoff: still the dense result.
# shellcheck disable=SC2086
run "$BIN" eval "$BG" $BA -r Sum --axis 1 --jit tcc -o "$T/bssparse.npy" $F --block-sparse 0.2:0.7:kmeans=5
expect "block-sparse k-means" 0
same_vals "block-sparse k-means Gaussian ~ dense" "$T/bssparse.npy" "$T/bsdense.npy" 1e-6 1e-6
for bad in 0.2:0.7:kmeans=0 0.2:0.7:kmeans= 0.2:0.7:means=3 0.2:0.7:kmeans=5x 0.1:1:2; do
    # shellcheck disable=SC2086
    run "$BIN" eval "$BG" $BA -r Sum --axis 1 -o "$T/bsbad.npy" $F --block-sparse $bad
    expect "block-sparse bad third field $bad" 2 "kmeans=ITERS"
done
absent "block-sparse bad k-means field writes nothing" "$T/bsbad.npy"
# A cutoff that drops pairs that matter: the result differs (the test can fail).
# shellcheck disable=SC2086
run "$BIN" eval "$BG" $BA -r Sum --axis 1 --jit tcc -o "$T/bssparse.npy" $F --block-sparse 0.2:0.05
npyvals "$T/bssparse.npy" >"$T/va"
npyvals "$T/bsdense.npy" >"$T/vb"
if cmp -s "$T/va" "$T/vb"; then fail "block-sparse small cutoff changes the result"; else pass; fi

# CUTOFF=inf keeps every pair: the same bits as dense, indices given back in
# the files' order (the inner perm) and rows in the files' order (the outer one).
F="$T/bx.npy $T/by.npy $T/bb.npy $T/ba.npy"
for axis in 0 1; do
    for r in Min_ArgMin KMin_ArgKMin; do
        # shellcheck disable=SC2086
        run "$BIN" eval 'SqDist(x,y)*a + b' $BA -r $r -K 3 --axis $axis --jit tcc -o "$T/bsdv.npy" --index-out "$T/bsdi.npy" $F
        # shellcheck disable=SC2086
        run "$BIN" eval 'SqDist(x,y)*a + b' $BA -r $r -K 3 --axis $axis --jit tcc -o "$T/bssv.npy" --index-out "$T/bssi.npy" $F --block-sparse 0.3:inf
        expect "block-sparse $r axis $axis" 0
        if cmp -s "$T/bsdv.npy" "$T/bssv.npy" && cmp -s "$T/bsdi.npy" "$T/bssi.npy"; then pass; else
            fail "block-sparse $r axis $axis with cutoff inf differs from dense"
        fi
    done
    # indices as the main output (ArgMax)
    # shellcheck disable=SC2086
    run "$BIN" eval 'x - y*b' $BA -r ArgMax --axis $axis --jit tcc -o "$T/bsdi.npy" $F
    # shellcheck disable=SC2086
    run "$BIN" eval 'x - y*b' $BA -r ArgMax --axis $axis --jit tcc -o "$T/bssi.npy" $F --block-sparse 0.25:inf
    if cmp -s "$T/bsdi.npy" "$T/bssi.npy"; then pass; else fail "block-sparse ArgMax axis $axis differs"; fi
done
# hand-checked: x = 0, 10, 0.1 (M=3), y = 10.05, 0.02 (N=2): with eps 1 and cutoff 0.5
# only the near pairs count; row 1's nearest y is index 0, rows 0 and 2 index 1.
mknpy "$T/bshx.npy" '<f8' '(3, 1)' 0 10 0.1
mknpy "$T/bshy.npy" '<f8' '(2, 1)' 10.05 0.02
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r ArgMin --axis 1 --jit tcc \
    -o "$T/bso.npy" "$T/bshx.npy" "$T/bshy.npy" --block-sparse 1:0.5 -v
expect "block-sparse hand-checked" 0 "kept 50.00% of the pairs"
vals_are "block-sparse indices in the files' order" "$T/bso.npy" "1 0 1"
grep -q "2 x 2 clusters" "$T/err" && pass || fail "block-sparse --verbose lacks the cluster counts"
grep -q "planning [0-9.]* ms" "$T/err" && pass || fail "block-sparse --verbose lacks the planning time"
# no pair at all within reach: neutral values
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Min_ArgMin --axis 0 --jit tcc \
    -o "$T/bso.npy" --index-out "$T/bsi.npy" "$T/bshx.npy" "$T/bshy.npy" --block-sparse 0.01:0
vals_are "block-sparse nothing kept: +inf" "$T/bso.npy" "inf inf"
vals_are "block-sparse nothing kept: index -1" "$T/bsi.npy" "-1 -1"
# empty clouds
mknpy "$T/bsh0.npy" '<f8' '(0, 1)'
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Sum --axis 1 --jit tcc \
    -o "$T/bso.npy" "$T/bsh0.npy" "$T/bshy.npy" --block-sparse 1:1
expect "block-sparse M = 0" 0
[ "$(npyshape "$T/bso.npy")" = "(0, 1)" ] && pass || fail "block-sparse M = 0 shape $(npyshape "$T/bso.npy")"
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Sum --axis 1 --jit tcc \
    -o "$T/bso.npy" "$T/bshx.npy" "$T/bsh0.npy" --block-sparse 1:1
expect "block-sparse N = 0" 0
vals_are "block-sparse N = 0 gives 0" "$T/bso.npy" "0 0 0"

# Bad EPS:CUTOFF, and clouds it cannot cluster: exit 2, nothing written.
rm -f "$T/bso.npy"
for v in 0:1 -1:1 abc 0.1 0.1: :1 0.1:-1 0.1:nan nan:1 inf:1 0x1p3:1 1e999:1; do
    run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Sum --axis 1 \
        -o "$T/bso.npy" "$T/bshx.npy" "$T/bshy.npy" --block-sparse "$v"
    expect "bad --block-sparse '$v'" 2 "--block-sparse must be EPS:CUTOFF"
done
run "$BIN" eval 'x' --alias 'x=Vi(0,1)' -r Sum --axis 1 -N 4 -o "$T/bso.npy" "$T/bshx.npy" --block-sparse 1:1
expect "block-sparse without a j-variable" 2 "the formula has no j-variable"
mkrand "$T/bsh3.npy" '<f8' 4 3 5
run "$BIN" eval 'Sum(x)*Sum(y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,3)' -r Sum --axis 1 \
    -o "$T/bso.npy" "$T/bshx.npy" "$T/bsh3.npy" --block-sparse 1:1
expect "block-sparse dims differ" 2 "variable 0 has dim 1, variable 1 dim 3"
mknpy "$T/bshn.npy" '<f8' '(3, 1)' 0 nan 1
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Sum --axis 1 \
    -o "$T/bso.npy" "$T/bshn.npy" "$T/bshy.npy" --block-sparse 1:1
expect "block-sparse NaN coordinate" 2 "non-finite coordinate"
run "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' -r Sum --axis 1 \
    -o "$T/bso.npy" "$T/bshx.npy" "$T/bshy.npy" --block-sparse 1e-300:1
expect "block-sparse eps too small" 2 "too small"
absent "block-sparse failures write nothing" "$T/bso.npy"
run "$BIN" check 'x' --alias 'x=Vi(0,1)' --block-sparse 1:1
expect "check has no --block-sparse" 2 "unknown option '--block-sparse'"
run "$BIN" help eval
expect_out "eval help mentions --block-sparse" "--block-sparse EPS:CUTOFF"

# bench: dense and block-sparse side by side, kept fraction, error, speed-up.
run "$BIN" bench "$BG" $BA -r Sum --axis 1 -M 3000 -N 2000 --dtype float64 --jit tcc --repeat 1 \
    --block-sparse 0.1:0.7 --cache-dir "$T/bench-cache"
expect "bench --block-sparse" 0
expect_out "bench --block-sparse clusters" "clusters"
expect_out "bench --block-sparse kept" "of the pairs"
if awk '$1 == "tcc" && $2 == "tcc" && NF == 9 { e = $9 } END { exit !(e != "" && e + 0 < 1e-6) }' "$T/out"; then pass; else
    fail "bench --block-sparse: no tcc row with a small relative error: $(grep '^tcc' "$T/out" | tail -n 1)"
fi
run "$BIN" bench "$BG" $BA -r Sum --axis 1 --block-sparse 1
expect "bench bad --block-sparse" 2 "--block-sparse must be EPS:CUTOFF"
run "$BIN" help bench
expect_out "bench help mentions --block-sparse" "--block-sparse EPS:CUTOFF"
# leave nothing behind for the cases that follow (some check that files are absent)
for f in ba ba4 bb bb4 bx bx4 by by4 bsdense bssparse bsdv bsdi bssv bssi bsh0 bsh3 bshn bshx bshy bsi bso; do
    rm -f "$T/$f.npy"
done
# The tutorial reproduced (examples/block_sparse.c), small.
ex="$(dirname "$BIN")/examples/block_sparse"
if [ -x "$ex" ]; then
    run "$ex" 1500
    expect "block_sparse example" 0
    expect_out "block_sparse example: kept fraction" "% of the original kernel matrix."
    expect_out "block_sparse example: the planner" "kforge's planner"
    expect_out "block_sparse example: relative error" "Relative error: "
    expect_out "block_sparse example: engine" "engine: "
    run "$ex" 0
    expect "block_sparse example: bad size" 2 "usage: block_sparse"
else
    skip "block_sparse example" "$ex is not built"
fi
