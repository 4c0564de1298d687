# case_eval.sh -- eval results: hand-computed values, and the default engine
# against the reference engine (--jit reference) for both dtypes and axes.
A="--alias x=Vi(0,1) --alias y=Vj(1,1)"
mknpy "$T/x1.npy" '<f8' '(2, 1)' 1 2
mknpy "$T/y1.npy" '<f8' '(3,)' 1 2 3
run "$BIN" eval 'x*y' $A --reduction Sum --axis 1 -o "$T/o.npy" "$T/x1.npy" "$T/y1.npy"
expect "Sum axis 1" 0
vals_are "Sum axis 1 values" "$T/o.npy" "6 12"
[ "$(npyshape "$T/o.npy")" = "(2, 1)" ] && pass || fail "Sum axis 1 shape $(npyshape "$T/o.npy")"
run "$BIN" eval 'x*y' $A --reduction Sum --axis 0 -o "$T/o.npy" "$T/x1.npy" "$T/y1.npy"
expect "Sum axis 0" 0
vals_are "Sum axis 0 values" "$T/o.npy" "3 6 9"
# Min_ArgMin: values to -o, int64 indices to --index-out.
mknpy "$T/y2.npy" '<f8' '(4, 1)' 5 0.5 3 0.5
run "$BIN" eval 'SqDist(x,y)' $A -r Min_ArgMin --axis 1 -o "$T/o.npy" --index-out "$T/i.npy" "$T/x1.npy" "$T/y2.npy"
expect "Min_ArgMin" 0
vals_are "Min_ArgMin values" "$T/o.npy" "0.25 1"
vals_are "Min_ArgMin indices (first of ties)" "$T/i.npy" "1 2"
[ "$(npydescr "$T/i.npy")" = "<i8" ] && pass || fail "indices are not int64"
run "$BIN" eval 'SqDist(x,y)' $A -r ArgMax --axis 1 -o "$T/o.npy" "$T/x1.npy" "$T/y2.npy"
expect "ArgMax" 0
vals_are "ArgMax indices go to -o" "$T/o.npy" "0 0"
run "$BIN" eval 'SqDist(x,y)' $A -r KMin_ArgKMin -K 3 --axis 1 -o "$T/o.npy" --index-out "$T/i.npy" "$T/x1.npy" "$T/y2.npy"
expect "KMin_ArgKMin" 0
vals_are "KMin values" "$T/o.npy" "0.25 0.25 4 1 2.25 2.25"
vals_are "ArgKMin indices (ties in visiting order)" "$T/i.npy" "1 3 2 2 1 3"
# Complex numbers as (re, im) pairs: sum_j (1+2i) y_j with y = (3-i, i) is (5+5i) + (-2+i) = 3+6i.
mknpy "$T/zx.npy" '<f8' '(1, 2)' 1 2
mknpy "$T/zy.npy" '<f8' '(2, 2)' 3 -1 0 1
run "$BIN" eval 'ComplexMult(z,w)' --alias 'z=Vi(0,2)' --alias 'w=Vj(1,2)' -r Sum --axis 1 -o "$T/o.npy" "$T/zx.npy" "$T/zy.npy"
expect "complex Sum" 0
vals_are "complex Sum values" "$T/o.npy" "3 6"
run "$BIN" eval 'ComplexAbs(ComplexMult(z,w))' --alias 'z=Vi(0,2)' --alias 'w=Vj(1,2)' -r Max --axis 1 -o "$T/o.npy" "$T/zx.npy" "$T/zy.npy"
expect "complex modulus" 0
vals_are "complex modulus values (|5+5i|)" "$T/o.npy" "7.0710678118654755"
# An empty reduction (N = 0) gives the neutral values.
mknpy "$T/y0.npy" '<f8' '(0, 1)'
run "$BIN" eval 'x*y' $A -r Sum --axis 1 -o "$T/o.npy" "$T/x1.npy" "$T/y0.npy"
expect "empty Sum" 0
vals_are "empty Sum is 0" "$T/o.npy" "0 0"
run "$BIN" eval 'x*y' $A -r Min_ArgMin --axis 1 -o "$T/o.npy" --index-out "$T/i.npy" "$T/x1.npy" "$T/y0.npy"
vals_are "empty Min is +inf" "$T/o.npy" "inf inf"
vals_are "empty ArgMin is -1" "$T/i.npy" "-1 -1"
# A parameter, as (d,) and (1, d); a formula without i-variable needs -M.
mknpy "$T/p.npy" '<f8' '(1,)' 10
mknpy "$T/p2.npy" '<f8' '(1, 1)' 10
run "$BIN" eval 'x*y+p' $A --alias 'p=Pm(2,1)' -r Max --axis 1 -o "$T/o.npy" "$T/x1.npy" "$T/y1.npy" "$T/p.npy"
vals_are "parameter (d,)" "$T/o.npy" "13 16"
run "$BIN" eval 'x*y+p' $A --alias 'p=Pm(2,1)' -r Max --axis 1 -o "$T/o.npy" "$T/x1.npy" "$T/y1.npy" "$T/p2.npy"
vals_are "parameter (1, d)" "$T/o.npy" "13 16"
run "$BIN" eval 'y' --alias 'y=Vj(0,1)' -r Sum --axis 1 -M 2 -o "$T/o.npy" "$T/y1.npy"
expect "-M" 0
vals_are "-M gives the rows" "$T/o.npy" "6 6"
# An index the formula does not use: its file is not read.
run "$BIN" eval 'Var(1,1,1)' -r Sum --axis 0 -M 3 -o "$T/o.npy" /nonexistent.npy "$T/y1.npy"
expect "unused index" 0
vals_are "unused index values" "$T/o.npy" "3 6 9"

# The default engine against the reference engine, on random data.
G='Exp(-SqDist(x,y)/IntCst(2))*b'
GA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
for d in '<f4' '<f8'; do
    mkrand "$T/x.npy" "$d" 37 3 1
    mkrand "$T/y.npy" "$d" 300 3 2
    mkrand "$T/b.npy" "$d" 300 0 3
    if [ "$d" = '<f4' ]; then tol="1e-4 1e-5"; else tol="1e-12 1e-13"; fi
    for axis in 0 1; do
        for r in Sum LogSumExp Max_ArgMax; do
            run "$BIN" eval "$G" $GA -r $r --axis $axis -o "$T/a.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
            expect "$r axis $axis $d" 0
            run "$BIN" eval "$G" $GA -r $r --axis $axis --jit reference -o "$T/r.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
            expect "$r axis $axis $d reference" 0
            same_vals "$r axis $axis $d against the reference" "$T/a.npy" "$T/r.npy" $tol
        done
    done
    run "$BIN" eval 'SqDist(x,y)' $GA -r SumSoftMaxWeight --formula2 'b*x' --axis 1 --threads 1 -o "$T/a.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
    expect "SumSoftMaxWeight $d" 0
    run "$BIN" eval 'SqDist(x,y)' $GA -r SumSoftMaxWeight --formula2 'b*x' --axis 1 --jit reference -o "$T/r.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
    same_vals "SumSoftMaxWeight $d against the reference" "$T/a.npy" "$T/r.npy" $tol
    [ "$(npyshape "$T/a.npy")" = "(37, 3)" ] && pass || fail "SumSoftMaxWeight shape $(npyshape "$T/a.npy")"
done
# float32 sum schemes all run and agree with the reference.
for s in block direct f64 kahan; do
    run "$BIN" eval "$G" $GA -r Sum --axis 1 --sum-scheme $s -o "$T/a.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
    expect "--sum-scheme $s" 0
done
# --dtype float32 on float32 files; -v reports the run.
mkrand "$T/x.npy" '<f4' 37 3 1
mkrand "$T/y.npy" '<f4' 300 3 2
mkrand "$T/b.npy" '<f4' 300 0 3
run "$BIN" eval "$G" $GA -r Sum --axis 1 --dtype float32 -v --threads 2 --jit tcc -o "$T/a.npy" "$T/x.npy" "$T/y.npy" "$T/b.npy"
expect "--verbose" 0 "pairs/s"
expect "--verbose engine" 0 "engine tcc, 2 threads"
[ "$(npydescr "$T/a.npy")" = "<f4" ] && pass || fail "float32 output is $(npydescr "$T/a.npy")"
run "$BIN" eval $GA -r Sum --axis 1 -o "$T/a.npy" -- "-$G" "$T/x.npy" "$T/y.npy" "$T/b.npy"
expect "a formula after --" 0
