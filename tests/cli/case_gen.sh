# case_gen.sh -- kforge gen: the built-in clouds as .npy or text, exactly the points eigsh --gen
# solves on; usage errors.
G="$T/gen"
mkdir -p "$G"
run "$BIN" gen --help
expect "gen --help" 0
expect_out "gen --help: usage" "Usage: kforge gen"
run "$BIN" gen swissroll:300 -o "$G/roll.npy"
expect "gen swissroll:300" 0
if [ "$(npyshape "$G/roll.npy")" = "(300, 3)" ] && [ "$(npydescr "$G/roll.npy")" = "<f8" ]; then pass; else
    fail "gen swissroll: shape $(npyshape "$G/roll.npy") descr $(npydescr "$G/roll.npy")"; fi
run "$BIN" gen spiral:50:7 --dtype float32 -o "$G/sp.npy"
expect "gen spiral --dtype float32" 0
if [ "$(npyshape "$G/sp.npy")" = "(50, 2)" ] && [ "$(npydescr "$G/sp.npy")" = "<f4" ]; then pass; else
    fail "gen spiral float32: shape $(npyshape "$G/sp.npy") descr $(npydescr "$G/sp.npy")"; fi
run "$BIN" gen spiral:4
expect "gen spiral to stdout" 0
if [ "$(wc -l <"$T/out")" = 4 ] && awk 'NF != 2 { bad = 1 } END { exit bad }' "$T/out"; then pass; else
    fail "gen spiral:4 text: $(cat "$T/out")"; fi
# The same seed gives the same cloud, another seed another one.
run "$BIN" gen spiral:4:9
cp "$T/out" "$G/a.txt"
run "$BIN" gen spiral:4:9
if cmp -s "$T/out" "$G/a.txt"; then pass; else fail "gen spiral:4:9 is not deterministic"; fi
run "$BIN" gen spiral:4:10
if cmp -s "$T/out" "$G/a.txt"; then fail "gen: seeds 9 and 10 give the same cloud"; else pass; fi
# Exactly eigsh's points: the file through --points gives eigsh --gen's eigenvalues.
run "$BIN" eigsh --gen swissroll:300 -k 3 --jit tcc -q -o "$G/e1.npy"
expect "eigsh --gen swissroll:300" 0
run "$BIN" eigsh --points "$G/roll.npy" --dtype float32 -k 3 --jit tcc -q -o "$G/e2.npy"
expect "eigsh --points (gen's file)" 0
if cmp -s "$G/e1.npy" "$G/e2.npy"; then pass; else fail "gen's points are not eigsh --gen's"; fi
run "$BIN" gen
expect "gen without a cloud" 2 "missing the cloud"
run "$BIN" gen cube:10
expect "gen cube:10" 2 "kforge gen:"
run "$BIN" gen spiral:10 --dtype float16
expect "gen --dtype float16" 2 "--dtype must be float32 or float64"
run "$BIN" gen spiral:10 spiral:20
expect "gen two clouds" 2 "unexpected argument"
run "$BIN" gen spiral:10 -o
expect "gen -o without a file" 2 "-o needs a value"
run "$BIN" gen spiral:10 -o "$G/nodir/x.npy"
expect "gen -o into a missing directory" 1 "kforge gen:"
