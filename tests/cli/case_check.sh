# case_check.sh -- `kforge check`: the report, --emit c, errors.
G='Exp(-SqDist(x,y)/IntCst(2))*b'
GA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
run "$BIN" check "$G" $GA
expect "check" 0
expect_out "check: canonical form" "formula:    Mult(Exp("
expect_out "check: variable x" "  0      i    3    x"
expect_out "check: variable b" "  2      j    1    b"
expect_out "check: engine" "engine:"
run "$BIN" check "$G" $GA -r Min_ArgMin --axis 0 --dtype float32
expect "check with a reduction" 0
expect_out "check: reduction" "reduction:  Min_ArgMin over i (axis 0): N output rows"
expect_out "check: output dims" "output:     1 value and 1 index per row"
expect_out "check: dtype" "dtype:      float32"
run "$BIN" check 'x|y' --alias 'x=Vi(3)' --alias 'y=Vj(3)' -r KMin -K 4
expect "check KMin, short aliases" 0
expect_out "check: short alias names" "  1      j    3    y"
expect_out "check: K" "4 values and 0 indices per row"
run "$BIN" check 'SqDist(x,y)' $GA -r LogSumExpWeight --formula2 'b*y'
expect_out "check: formula2" "formula2:"
run "$BIN" check 'Var(2,1,2)'
expect_out "check: unused indices" "(not used)"
run "$BIN" check "$G" $GA -r Sum --axis 1 --emit c
expect "--emit c" 0
expect_out "--emit c: the reduction kernel" "kf_reduce"
run "$BIN" check "$G" $GA --emit c
expect_out "--emit c without a reduction: the formula" "kf_formula"
# --emit c --jit cc: the optimizing tier's source, not libtcc's
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    run "$BIN" check "$G" $GA -r Sum --axis 1 --emit c --jit cc
    expect "--emit c --jit cc" 0
    expect_out "--emit c --jit cc: the optimizing tier's kernel" "optimizing tier"
    run "$BIN" check "$G" $GA -r Sum --axis 1 --emit c --jit tcc
    if grep -q "optimizing tier" "$T/out"; then fail "--emit c --jit tcc printed the optimizing tier's source"; else pass; fi
    run "$BIN" check "$G" $GA --emit c --jit cc
    expect "--emit c --jit cc without a reduction" 2 "give a reduction"
else
    skip "check --emit c --jit cc" "no C compiler '${CC:-cc}' on PATH"
fi
run "$BIN" check "$G" $GA --emit rust
expect "--emit rust" 2 "must be c, cuda or ptx, not 'rust'"
run "$BIN" check 'Exp(-SqDist(x,y)' $GA
expect "check: syntax error" 2 "kforge check: 1:17: "
if [ "$(sed -n 2p "$T/err")" = "  Exp(-SqDist(x,y)" ] && [ "$(sed -n 3p "$T/err")" = "                  ^" ]; then
    pass
else
    fail "check: caret lines"
fi
run "$BIN" check 'x+y' --alias 'x=Vi(0,3)' --alias 'y=Vj(1,2)'
expect "check: dim error" 2 "1:2:"
run "$BIN" check "$G" $GA extra.npy
expect "check: extra argument" 2 "unexpected argument 'extra.npy'"
run "$BIN" check
expect "check: no formula" 2 "missing FORMULA"
# A long formula is cut around the error, and control bytes never reach the terminal raw.
long="x$(printf '%0200d' 0 | sed 's/0/+x/g')+Foo(x)"
run "$BIN" check "$long" --alias 'x=Vi(0,1)'
expect "check: long formula" 2 "..."
if [ "$(sed -n 2p "$T/err" | wc -c)" -lt 130 ]; then pass; else fail "long formula line not cut"; fi
run "$BIN" check "$(printf 'x+\001Foo')" --alias 'x=Vi(0,1)'
expect "check: control byte" 2
if grep -q "$(printf '\001')" "$T/err"; then fail "control byte printed raw"; else pass; fi
