# case_backend.sh -- --backend and --device on eval, bench and eigsh: bad values are
# usage errors (exit 2); cuda without a usable GPU is a runtime error (exit 1) naming the
# reason and writing nothing; auto and cpu give the CPU's answer here. On a GPU machine
# the cuda runs must succeed instead.
X='x=Vi(0,1)'
Y='y=Vj(1,1)'
run "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 -M 3 -N 4 --backend gpu -o "$T/b.npy"
expect "eval --backend gpu" 2 "--backend must be cpu, cuda or auto, not 'gpu'"
run "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 -M 3 -N 4 --device -1 -o "$T/b.npy"
expect "eval --device -1" 2 "--device must be a GPU ordinal"
run "$BIN" eigsh --gen spiral:200 --backend tpu
expect "eigsh --backend tpu" 2 "--backend must be auto, cpu or cuda, not 'tpu'"
run env KFORGE_BACKEND=gpu "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 -M 3 -N 4 -o "$T/b.npy"
expect "KFORGE_BACKEND=gpu" 2 "KFORGE_BACKEND='gpu' is not one of auto, cpu, cuda"
absent "bad backends write nothing" "$T/b.npy"
mknpy "$T/x.npy" '<f8' '(3, 1)' 1 2 3
mknpy "$T/y.npy" '<f8' '(2, 1)' 1 2
for be in cpu auto; do
    run "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 "$T/x.npy" "$T/y.npy" --backend "$be" -o "$T/$be.npy"
    expect "eval --backend $be" 0
    vals_are "eval --backend $be" "$T/$be.npy" "3 6 9"
done
if "$BIN" devices >/dev/null 2>&1; then
    run "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 "$T/x.npy" "$T/y.npy" --backend cuda -o "$T/cuda.npy"
    expect "eval --backend cuda on a GPU" 0
    vals_are "eval --backend cuda on a GPU" "$T/cuda.npy" "3 6 9"
else
    run "$BIN" eval 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 "$T/x.npy" "$T/y.npy" --backend cuda -o "$T/cuda.npy"
    expect "eval --backend cuda without a GPU" 1 "kforge eval: "
    absent "eval --backend cuda without a GPU" "$T/cuda.npy"
    run "$BIN" bench 'x*y' -a "$X" -a "$Y" -r Sum --axis 1 -M 100 -N 100 --backend cuda --repeat 1
    expect "bench --backend cuda without a GPU" 1 "cuda"
    run "$BIN" eigsh --gen spiral:300 -k 3 --backend cuda -q
    expect "eigsh --backend cuda without a GPU" 1 "kforge eigsh"
fi
