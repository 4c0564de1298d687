# case_errors.sh -- usage, formula and input errors: exit status 2 (1 for
# runtime failures), a message naming the culprit, and nothing written.
G='Exp(-SqDist(x,y)/IntCst(2))*b'
GA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
mkrand "$T/x.npy" '<f8' 5 3 1
mkrand "$T/y.npy" '<f8' 8 3 2
mkrand "$T/b.npy" '<f8' 8 0 3
O="$T/e.npy"
IN="$T/x.npy $T/y.npy $T/b.npy"
# ev EXTRA...: eval of the Gaussian kernel into $O with extra options (no files).
ev() { run "$BIN" eval "$G" $GA -r Sum --axis 1 -o "$O" "$@"; }

# A formula error: the message, the formula line, a caret under the column.
run "$BIN" eval 'Exp(-SqDist(x,y)' $GA -r Sum --axis 1 -o "$O" $IN
expect "syntax error" 2 "kforge eval: 1:17: "
expect "syntax error shows the formula" 2 "  Exp(-SqDist(x,y)"
if [ "$(sed -n 3p "$T/err")" = "                  ^" ]; then pass; else fail "caret line: '$(sed -n 3p "$T/err")'"; fi
absent "nothing written after a formula error" "$O"
run "$BIN" eval "$G" $GA -r SumSoftMaxWeight --formula2 'b*Foo(x)' --axis 1 -o "$O" $IN
expect "formula2 error" 2 "  --formula2 b*Foo(x)"
if [ "$(sed -n 3p "$T/err")" = "               ^" ]; then pass; else fail "formula2 caret: '$(sed -n 3p "$T/err")'"; fi
run "$BIN" eval "$G" --alias 'x=Vi(0,3' --alias 'y=Vj(1,3)' --alias 'b=Vj(2,1)' -r Sum --axis 1 -o "$O" $IN
expect "alias error" 2 "  --alias x=Vi(0,3"
# Complex operations want even dims; the caret is under the operation.
run "$BIN" eval 'b*ComplexAbs(x)' $GA -r Sum --axis 1 -o "$O" $IN
expect "complex dim error" 2 "1:3: ComplexAbs(f): argument 1 must be complex (an even dim: re, im pairs), got dim 3"
if [ "$(sed -n 3p "$T/err")" = "    ^" ]; then pass; else fail "complex caret: '$(sed -n 3p "$T/err")'"; fi
# A comparison chain reads differently in Python: refused at the second operator.
run "$BIN" eval 'b*(SqDist(x,y) < b < 1)' $GA -r Sum --axis 1 -o "$O" $IN
expect "chained comparison" 2 "1:20: comparisons do not chain"
if [ "$(sed -n 3p "$T/err")" = "                     ^" ]; then pass; else fail "chain caret: '$(sed -n 3p "$T/err")'"; fi
run "$BIN" eval 'Sinh(x)' $GA -r Sum --axis 1 -o "$O" $IN
expect "unsupported KeOps op" 2 "not supported yet: Sinh"
run "$BIN" eval "$G" $GA -r Summ --axis 1 -o "$O" $IN
expect "unknown reduction" 2 "Summ"

# Usage errors.
run "$BIN" eval "$G" $GA --axis 1 -o "$O" $IN
expect "missing --reduction" 2 "missing --reduction"
run "$BIN" eval "$G" $GA -r Sum -o "$O" $IN
expect "missing --axis" 2 "missing --axis"
run "$BIN" eval "$G" $GA -r Sum --axis 1 $IN
expect "missing -o" 2 "missing -o"
ev --axis 2 $IN
expect "bad --axis" 2 "--axis must be 0 or 1, not '2'"
ev --threads 0 $IN
expect "bad --threads" 2 "--threads must be an integer"
# The CLI's range is the library's (KF_MAX_THREADS): 1024 runs, 1025 is a usage error.
ev --threads 1025 $IN
expect "--threads above the library's limit" 2 "--threads must be an integer from 1 to 1024, not '1025'"
run "$BIN" eval "$G" $GA -r Sum --axis 1 --threads 1024 -o "$T/t1024.npy" $IN
expect "--threads at the library's limit" 0
rm -f "$T/t1024.npy"
ev --dtype float16 $IN
expect "bad --dtype" 2 "--dtype must be float32 or float64"
ev --jit gcc $IN
expect "bad --jit" 2 "--jit must be auto, tcc, cc or reference"
ev --frobnicate $IN
expect "unknown option" 2 "unknown option '--frobnicate'"
ev $IN -K
expect "option without its value" 2 "option -K needs a value"
ev --verbose=yes $IN
expect "flag with a value" 2 "takes no value"
ev --index-out "$O" $IN
expect "same -o and --index-out" 2 "same file"
# The same file under two names: compared by identity, not by the string.
run "$BIN" eval "$G" $GA -r Min_ArgMin --axis 1 -o "$T/same.npy" --index-out "$T/./same.npy" $IN
expect "same file, two names" 2 "name the same file"
absent "nothing written for two names of one file" "$T/same.npy"
mkdir -p "$T/sub"
ln -sf "$T/sub" "$T/sublink"
run "$BIN" eval "$G" $GA -r Min_ArgMin --axis 1 -o "$T/sub/s.npy" --index-out "$T/sublink/s.npy" $IN
expect "same file through a directory link" 2 "name the same file"
absent "nothing written through the link" "$T/sub/s.npy"
# Inputs that are not regular files: refused at once (no endless read, no hang).
run "$BIN" eval "$G" $GA -r Sum --axis 1 -o "$O" "$T/x.npy" /dev/zero "$T/b.npy"
expect "a device as input" 2 "/dev/zero: is a character device, not a regular file"
absent "nothing written for a device input" "$O"
rm -f "$T/fifo"
if mkfifo "$T/fifo" 2>/dev/null; then
    run timeout 20 "$BIN" eval "$G" $GA -r Sum --axis 1 -o "$O" "$T/x.npy" "$T/fifo" "$T/b.npy"
    expect "a FIFO as input" 2 "is a FIFO or pipe, not a regular file"
    rm -f "$T/fifo"
fi
run "$BIN" eval "$G" $GA -r Sum --axis 1 -o "$O" "$T/x.npy" "$T" "$T/b.npy"
expect "a directory as input" 2 "is a directory, not a regular file"
ev --index-out "$T/i.npy" $IN
expect "--index-out for Sum" 2 "gives no indices"
run "$BIN" eval 'SqDist(x,y)' $GA -r ArgMin --axis 1 -o "$O" --index-out "$T/i.npy" $IN
expect "--index-out for ArgMin" 2 "main output"
KFORGE_THREADS=abc run "$BIN" eval "$G" $GA -r Sum --axis 1 -o "$O" $IN
expect "bad KFORGE_THREADS" 2 "KFORGE_THREADS"
absent "nothing written after usage errors" "$O" "$T/i.npy"

# Input files.
ev "$T/x.npy" "$T/y.npy"
expect "too few files" 2 "needs 3 ARG files; got 2"
ev $IN "$T/b.npy"
expect "too many files" 2 "got 4"
ev "$T/x.npy" "$T/y.npy" "$T/missing.npy"
expect "missing file" 2 "$T/missing.npy: No such file"
mkrand "$T/b7.npy" '<f8' 7 0 3
ev "$T/x.npy" "$T/y.npy" "$T/b7.npy"
expect "N disagrees" 2 "$T/b7.npy has 7 rows but $T/y.npy has 8: j-variables must agree (N)"
mkrand "$T/x2.npy" '<f8' 5 2 1
ev "$T/x2.npy" "$T/y.npy" "$T/b.npy"
expect "wrong dim" 2 "$T/x2.npy: shape (5, 2) does not fit variable 0 (i-variable, dim 3); expected (M, 3)"
mkrand "$T/x1d.npy" '<f8' 5 0 1
ev "$T/x1d.npy" "$T/y.npy" "$T/b.npy"
expect "1-D file for a dim-3 variable" 2 "shape (5,) does not fit variable 0"
mkrand "$T/bf.npy" '<f4' 8 0 3
ev "$T/x.npy" "$T/y.npy" "$T/bf.npy"
expect "mixed dtypes" 2 "$T/bf.npy: 'descr' is '<f4' but the dtype is float64 (from $T/x.npy)"
ev --dtype float32 $IN
expect "--dtype disagrees with the files" 2 "$T/x.npy: 'descr' is '<f8' but the dtype is float32 (from --dtype)"
mknpy "$T/bi.npy" '<i8' '(8,)' 1 2 3 4 5 6 7 8
ev "$T/x.npy" "$T/y.npy" "$T/bi.npy"
expect "int64 input" 2 "$T/bi.npy: 'descr' is '<i8' (int64); expected '<f4' or '<f8'"
mknpy "$T/be.npy" '>f8' '(8,)' 1 2 3 4 5 6 7 8
ev "$T/x.npy" "$T/y.npy" "$T/be.npy"
expect "big-endian input" 2 "$T/be.npy: 'descr' is '>f8' (big-endian); expected '<f4' or '<f8'"
head -c 150 "$T/b.npy" >"$T/bt.npy"
ev "$T/x.npy" "$T/y.npy" "$T/bt.npy"
expect "truncated input" 2 "$T/bt.npy: data has"
printf 'not a numpy file at all' >"$T/bn.npy"
ev "$T/x.npy" "$T/y.npy" "$T/bn.npy"
expect "not .npy" 2 "$T/bn.npy: not a .npy file"
mknpy "$T/p3.npy" '<f8' '(3,)' 1 2 3
run "$BIN" eval 'x*p' --alias 'x=Vi(0,3)' --alias 'p=Pm(1,1)' -r Sum --axis 1 -N 1 -o "$O" "$T/x.npy" "$T/p3.npy"
expect "parameter shape" 2 "does not fit variable 1 (parameter, dim 1); expected (1,) or (1, 1)"
run "$BIN" eval 'y' --alias 'y=Vj(0,3)' -r Sum --axis 1 -o "$O" "$T/y.npy"
expect "no i-variable and no -M" 2 "the formula has no i-variable: give M"
run "$BIN" eval 'y' --alias 'y=Vj(0,3)' -r Sum --axis 1 -M 4 -N 9 -o "$O" "$T/y.npy"
expect "-N disagrees with the file" 2 "has 8 rows but -N is 9"
absent "nothing written after input errors" "$O"

# A failure never touches an existing output, and leaves no temporary file.
echo keep >"$O"
ev "$T/x.npy" "$T/y.npy" "$T/b7.npy"
if [ "$(cat "$O")" = keep ]; then pass; else fail "a failed eval changed the existing output"; fi
rm -f "$O"
if ls -a "$T" | grep -q kforge-tmp; then fail "temporary files left behind"; else pass; fi
# Runtime failure: the output cannot be written (exit 1).
ev -o "$T/no/such/dir/a.npy" $IN
expect "unwritable output" 1 "$T/no/such/dir/a.npy: cannot create a temporary file"
ev -o "$T" $IN
expect "output is a directory" 1 "not a regular file"
