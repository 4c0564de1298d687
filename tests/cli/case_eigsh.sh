# case_eigsh.sh -- kforge eigsh: help, every usage and input error (exit 2,
# nothing written), small spectra (ascending, first eigenvalue of a Laplacian
# ~0), output shapes and dtypes, FORMULA kernels against the named ones,
# determinism, and block-sparse eigenvectors in the ORIGINAL point order
# (equal to the dense ones up to sign). Small n (300) keeps each run short.
EIG="$T/eig"
mkdir -p "$EIG"
keig() { run "$BIN" eigsh "$@" --jit tcc; }

# ascending NAME FILE: the values of FILE are non-decreasing (and there are some).
ascending() {
    if npyvals "$2" | awk 'NR > 1 && $1 + 0 < prev + 0 { bad = 1 } { prev = $1; n++ } END { exit bad || !n }'; then
        pass
    else
        fail "$1: not ascending: $(npyvals "$2" | tr '\n' ' ')"
    fi
}
# first_small NAME FILE TOL: |first value| <= TOL.
first_small() {
    v=$(npyvals "$2" | head -n 1)
    if awk -v v="$v" -v t="$3" 'BEGIN { if (v < 0) v = -v; exit !(v != "" && v <= t) }'; then
        pass
    else
        fail "$1: first eigenvalue '$v', expected |.| <= $3"
    fi
}
# same_up_to_sign NAME A B K TOL: (n, K) matrices whose columns are unit
# vectors; every |<a_c, b_c>| >= 1 - TOL.
same_up_to_sign() {
    npyvals "$2" >"$T/va"
    npyvals "$3" >"$T/vb"
    if bad=$(paste "$T/va" "$T/vb" | awk -v k="$4" -v tol="$5" '
        { c = (NR - 1) % k; d[c] += $1 * $2; na[c] += $1 * $1; nb[c] += $2 * $2; n++ }
        END {
            if (n == 0 || n % k) { print "no values"; exit 1 }
            for (c = 0; c < k; c++) {
                r = d[c] / sqrt(na[c] * nb[c]); if (r < 0) r = -r
                if (r < 1 - tol) { print "column " c ": |cos| = " r; exit 1 }
            }
        }'); then
        pass
    else
        fail "$1: $bad"
    fi
}

# Help.
run "$BIN" eigsh --help
expect "eigsh --help" 0
expect_out "eigsh --help: usage" "Usage: kforge eigsh"
run "$BIN" help eigsh
expect "help eigsh" 0
expect_out "help eigsh: example" "kforge eigsh --gen spiral:10000"
run "$BIN" help
expect_out "help lists eigsh" "kforge eigsh --gen spiral:10000"

# Usage errors: exit 2, a message, no file.
keig -o "$EIG/e.npy"
expect "eigsh without points" 2 "missing the points"
absent "eigsh without points: no output" "$EIG/e.npy"
keig --gen spiral:100 --points "$EIG/x.npy"
expect "eigsh --gen and --points" 2 "not both"
keig --gen circle:100
expect "eigsh --gen circle" 2 "the generators are spiral:N[:SEED] and swissroll:N[:SEED]"
keig --gen spiral:0
expect "eigsh --gen spiral:0" 2 "point count must be"
keig --gen spiral:100:x
expect "eigsh --gen bad seed" 2 "seed must be"
keig --gen spiral:20 -k 20 -o "$EIG/e.npy"
expect "eigsh k = n" 2 "-k 20 must be smaller than the number of points (20)"
absent "eigsh k = n: no output" "$EIG/e.npy"
keig --gen spiral:20 -k 0
expect "eigsh k = 0" 2 "-k must be an integer"
keig --gen spiral:100 -k 5 --ncv 5
expect "eigsh ncv = k" 2 "--ncv 5 must be above -k (5)"
keig --gen spiral:100 --ncv 101
expect "eigsh ncv > n" 2 "at most the number of points (100)"
keig --gen spiral:100 --which XX
expect "eigsh --which XX" 2 "--which must be SM, LM, SA or LA"
keig --gen spiral:100 --laplacian sym
expect "eigsh --laplacian sym" 2 "--laplacian must be none, unnormalized or normalized"
keig --gen spiral:100 --sigma 0
expect "eigsh --sigma 0" 2 "--sigma must be a positive number"
keig --gen spiral:100 --sigma nan
expect "eigsh --sigma nan" 2 "--sigma must be a positive number"
keig --gen spiral:100 --tol -1
expect "eigsh --tol -1" 2 "--tol must be a number >= 0"
keig --gen spiral:100 --block-sparse 0
expect "eigsh --block-sparse 0" 2 "EPS must be a positive number"
keig --gen spiral:100 --block-sparse 0.1:x
expect "eigsh --block-sparse bad cutoff" 2 "CUTOFF must be a number >= 0"
keig --gen spiral:100 --mode fast
expect "eigsh --mode fast" 2 "--mode must be auto, direct, shifted or coarse"
keig --gen spiral:100 --frobnicate
expect "eigsh unknown option" 2 "unknown option '--frobnicate'"
run "$BIN" eigsh --gen spiral:100 -k
expect "eigsh -k without value" 2 "option -k needs a value"
keig --gen spiral:100 extra
expect "eigsh positional" 2 "unexpected argument 'extra'"
keig --gen spiral:100 -o "$EIG/same.npy" --vectors "$EIG/same.npy"
expect "eigsh -o = --vectors" 2 "name the same file"
keig --gen spiral:100 -o "$EIG/same2.npy" --vectors "$EIG/./same2.npy"
expect "eigsh -o = --vectors under two names" 2 "name the same file"
absent "eigsh wrote nothing for two names of one file" "$EIG/same2.npy"

# Kernel formulas: checked alone (caret on the user's text), scalar, own scale.
keig --gen spiral:100 --kernel 'Exp(-SqDist(x,z))'
expect "eigsh formula error" 2 "Exp(-SqDist(x,z))"
if grep -q '\^' "$T/err"; then pass; else fail "eigsh formula error: no caret"; fi
keig --gen spiral:100 --kernel 'x-y'
expect "eigsh vector formula" 2 "must be scalar (dim 1)"
keig --gen spiral:100 --kernel 'Exp(-SqDist(x,y))' --sigma 0.1
expect "eigsh formula with --sigma" 2 "write the scale into the FORMULA"
keig --gen spiral:100 --kernel 'Exp(-SqDist(x,y))' --block-sparse 0.1
expect "eigsh formula block-sparse without cutoff" 2 "needs the CUTOFF"
# Not symmetric: refused before any solve (residuals of a non-symmetric
# "eigenpair" would be meaningless); symmetric ones written either way pass.
keig --gen spiral:300 --kernel 'Exp(-Sum(x-y))' -k 3 -o "$EIG/asym.npy"
expect "eigsh refuses a non-symmetric kernel" 2 "the kernel FORMULA is not symmetric"
absent "nothing written for a non-symmetric kernel" "$EIG/asym.npy"
keig --gen spiral:300 --kernel 'Exp(-SqDist(x,y)*IntCst(20))*(IntCst(1)+Sum(x*x))' -k 3
expect "eigsh refuses a subtly non-symmetric kernel" 2 "not symmetric"
keig --gen spiral:300 --kernel 'Exp(-SqDist(y,x)*IntCst(20))*(IntCst(2)+Sum(x*y))' -k 3 --laplacian none
expect "eigsh accepts a symmetric kernel written with y first" 0

# Points files: NaN, inf, int64, bad shape.
mknpy "$EIG/nan.npy" '<f8' '(4, 2)' 0 0 1 1 nan 2 3 3
keig --points "$EIG/nan.npy" -k 1 -o "$EIG/e.npy"
expect "eigsh NaN point" 2 "point 2 has a NaN coordinate (column 0)"
absent "eigsh NaN point: no output" "$EIG/e.npy"
mknpy "$EIG/inf.npy" '<f4' '(3,)' 0 1 -inf
keig --points "$EIG/inf.npy" -k 1
expect "eigsh inf point" 2 "point 2 has a infinite coordinate"
mknpy "$EIG/int.npy" '<i8' '(3, 1)' 0 1 2
keig --points "$EIG/int.npy" -k 1
expect "eigsh int64 points" 2 "points must be '<f4' or '<f8'"
mknpy "$EIG/scalar.npy" '<f8' '()' 1
keig --points "$EIG/scalar.npy" -k 1
expect "eigsh 0-d points" 2 "points must be (n, d) or (n,)"
keig --points "$EIG/missing.npy"
expect "eigsh missing file" 2 "missing.npy"

# Spectra of the 300-point spiral: ascending, first eigenvalue of a Laplacian
# ~0, shapes and dtypes of the files.
keig --gen spiral:300 --dtype float64 --laplacian unnormalized -o "$EIG/lu.npy" --vectors "$EIG/lu_v.npy"
expect "eigsh spiral L" 0
expect_out "eigsh spiral L: report" "matvecs"
ascending "eigsh spiral L: ascending" "$EIG/lu.npy"
first_small "eigsh spiral L: lambda0 ~ 0" "$EIG/lu.npy" 1e-8
if [ "$(npyshape "$EIG/lu.npy")" = "(7,)" ] && [ "$(npyshape "$EIG/lu_v.npy")" = "(300, 7)" ] &&
    [ "$(npydescr "$EIG/lu_v.npy")" = "<f8" ]; then
    pass
else
    fail "eigsh spiral L: shapes $(npyshape "$EIG/lu.npy") $(npyshape "$EIG/lu_v.npy") $(npydescr "$EIG/lu_v.npy")"
fi
# The spectrum's shape is the tutorial's (0, 3.49, 14.2, 41.8, ... at N = 10^4,
# proportional to N): lambda1 / lambda2 ~ 3.49 / 14.2.
r=$(npyvals "$EIG/lu.npy" | awk 'NR == 2 { a = $1 } NR == 3 { b = $1 } END { print a / b }')
if awk -v r="$r" 'BEGIN { exit !(r > 0.18 && r < 0.32) }'; then pass; else fail "eigsh spiral L: lambda1/lambda2 = $r"; fi
keig --gen spiral:300 --dtype float64 -k 4 -o "$EIG/ln.npy"
expect "eigsh spiral L_norm" 0
ascending "eigsh spiral L_norm: ascending" "$EIG/ln.npy"
first_small "eigsh spiral L_norm: lambda0 ~ 0" "$EIG/ln.npy" 1e-10
keig --gen spiral:300 -k 3 -o "$EIG/f32.npy" --vectors "$EIG/f32_v.npy"
expect "eigsh spiral float32 (the --gen default)" 0
if [ "$(npydescr "$EIG/f32.npy")" = "<f4" ] && [ "$(npydescr "$EIG/f32_v.npy")" = "<f4" ]; then pass; else
    fail "eigsh float32: descr $(npydescr "$EIG/f32.npy")"; fi
first_small "eigsh spiral float32: lambda0 ~ 0" "$EIG/f32.npy" 1e-5
# Every mode gives the same spectrum.
for m in direct shifted coarse; do
    keig --gen spiral:300 --dtype float64 -k 4 --mode $m -o "$EIG/ln_$m.npy"
    expect "eigsh --mode $m" 0
    same_vals "eigsh --mode $m = auto" "$EIG/ln_$m.npy" "$EIG/ln.npy" 1e-7 1e-9
done
keig --gen spiral:300 --dtype float64 -k 3 --compare
expect "eigsh --compare" 0
expect_out "eigsh --compare: direct row" "direct"
expect_out "eigsh --compare: header" "max |dlambda|"
# No convergence: the message, exit 1, no file.
keig --gen spiral:300 -k 6 --maxiter 1 -o "$EIG/nc.npy"
expect "eigsh no convergence" 1 "eigenpairs converged (--maxiter, --ncv, --tol); no file written"
absent "eigsh no convergence: no output" "$EIG/nc.npy"
# Same seed, same bytes.
keig --gen spiral:300 --dtype float64 -k 3 --seed 5 -o "$EIG/s1.npy"
keig --gen spiral:300 --dtype float64 -k 3 --seed 5 -o "$EIG/s2.npy"
if cmp -s "$EIG/s1.npy" "$EIG/s2.npy"; then pass; else fail "eigsh: same seed, different output"; fi

# A FORMULA on the raw points equals the named kernel: gaussian sigma 0.5 is
# exp(-2 |x-y|^2); laplace sigma 1 is exp(-|x-y|); points from a float64 file.
mkrand "$EIG/p.npy" '<f8' 200 3 11
keig --points "$EIG/p.npy" --laplacian none -k 3 --sigma 0.5 -o "$EIG/g1.npy"
expect "eigsh --points gaussian K" 0
keig --points "$EIG/p.npy" --laplacian none -k 3 --kernel 'Exp(-SqDist(x,y)*IntCst(2))' -o "$EIG/g2.npy"
expect "eigsh --points FORMULA K" 0
same_vals "eigsh FORMULA = gaussian" "$EIG/g2.npy" "$EIG/g1.npy" 1e-9 1e-12
keig --points "$EIG/p.npy" --laplacian none --which LA -k 2 --kernel laplace --sigma 1 -o "$EIG/l1.npy"
keig --points "$EIG/p.npy" --laplacian none --which LA -k 2 --kernel 'Exp(-Norm2(x-y))' -o "$EIG/l2.npy"
same_vals "eigsh FORMULA = laplace" "$EIG/l2.npy" "$EIG/l1.npy" 1e-9 1e-12
keig --points "$EIG/p.npy" --kernel cauchy --sigma 0.3 -k 2 -o "$EIG/c.npy"
expect "eigsh cauchy" 0
first_small "eigsh cauchy: lambda0 ~ 0" "$EIG/c.npy" 1e-10

# Block-sparse: the vectors come back in the user's point order, equal to the
# dense ones up to sign (the truncated kernel is < e^-8 past 4 sigma).
keig --gen spiral:300 --dtype float64 -k 5 -o "$EIG/d.npy" --vectors "$EIG/d_v.npy"
expect "eigsh dense" 0
keig --gen spiral:300 --dtype float64 -k 5 --block-sparse 0.05 -o "$EIG/b.npy" --vectors "$EIG/b_v.npy"
expect "eigsh block-sparse" 0
expect_out "eigsh block-sparse: kept fraction" "kept"
expect_out "eigsh block-sparse: the fraction within the cutoff" "within the cutoff, counted on 300 rows"
same_vals "eigsh block-sparse values" "$EIG/b.npy" "$EIG/d.npy" 0 1e-4
same_up_to_sign "eigsh block-sparse vectors in the original order" "$EIG/b_v.npy" "$EIG/d_v.npy" 5 1e-3
# A cutoff past the cloud's diameter keeps every pair: the dense spectrum.
keig --gen spiral:300 --dtype float64 -k 5 --block-sparse 0.05:100 -o "$EIG/b2.npy"
expect "eigsh block-sparse with a cutoff keeping everything" 0
same_vals "eigsh block-sparse cutoff 100 = dense" "$EIG/b2.npy" "$EIG/d.npy" 1e-8 1e-12
# The block solver (LOBPCG): the same spectrum as ARPACK, its report, and what it refuses.
keig --gen spiral:600 --sigma 0.1 -k 5 --dtype float64 -o "$EIG/arp.npy" --vectors "$EIG/arpv.npy" -q
expect "eigsh arpack reference" 0
keig --gen spiral:600 --sigma 0.1 -k 5 --dtype float64 --solver block -o "$EIG/blk.npy" \
    --vectors "$EIG/blkv.npy" -q
expect "eigsh --solver block" 0
expect_out "eigsh --solver block: report" "block (LOBPCG)"
expect_out "eigsh --solver block: iterations" "block applies of 6 columns"
same_vals "eigsh --solver block: values as ARPACK's" "$EIG/blk.npy" "$EIG/arp.npy" 1e-7 1e-9
same_up_to_sign "eigsh --solver block: vectors as ARPACK's" "$EIG/blkv.npy" "$EIG/arpv.npy" 5 1e-6
keig --gen spiral:600 --sigma 0.1 -k 5 --dtype float64 --solver block --block 9 --mode coarse -o "$EIG/blc.npy" -q
expect "eigsh --solver block --block 9 --mode coarse" 0
same_vals "eigsh block coarse: values" "$EIG/blc.npy" "$EIG/arp.npy" 1e-7 1e-9
keig --gen spiral:600 -k 5 --solver lanczos
expect "eigsh --solver lanczos" 2 "--solver must be auto, arpack or block"
keig --gen spiral:600 -k 5 --solver block --block 0
expect "eigsh --block 0" 2 "--block must be an integer from 1 to 64"
keig --gen spiral:600 -k 5 --solver block --block 3
expect "eigsh --block below k" 2 "expected k = 5 <= block"
keig --gen spiral:600 -k 5 --solver block --mode direct
expect "eigsh --solver block --mode direct" 2 "largest eigenpairs"
# Block-sparse by default from 20000 points (gaussian, laplace): auto cells of half the cutoff.
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    run "$BIN" eigsh --gen swissroll:20000 --sigma 0.01 -k 2 --tol 1e-2 --jit cc -q
    expect "eigsh 20000 points: block-sparse by default" 0
    expect_out "eigsh 20000 points: auto cells" "block-sparse  auto: eps 0.02, cutoff 0.04"
    expect_out "eigsh 20000 points: the block solver by default" "solver        block (LOBPCG), auto"
else
    skip "eigsh block-sparse by default" "no C compiler '${CC:-cc}' on PATH"
fi
keig --gen spiral:600 --sigma 0.1 -k 3 --dtype float64 --block-sparse auto -o "$EIG/bsa.npy" -q
expect "eigsh --block-sparse auto" 0
expect_out "eigsh --block-sparse auto: report" "block-sparse  auto: eps 0.2, cutoff 0.4"
keig --gen spiral:600 --sigma 0.1 -k 3 --dtype float64 --block-sparse off -q
expect "eigsh --block-sparse off" 0
if grep -q "block-sparse" "$T/out"; then fail "eigsh --block-sparse off: still block-sparse"; else pass; fi
keig --gen spiral:600 --kernel 'Exp(-SqDist(x,y))' --block-sparse auto
expect "eigsh FORMULA with --block-sparse auto" 2 "a FORMULA kernel has no known scale"
