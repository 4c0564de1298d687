#!/bin/sh
# run.sh BIN -- `mpirun -np P kforge eigsh` against the one-process results
# (docs/scale-out.md): P = 1, 2, 3 (oversubscribed on a small machine), the
# spiral and the Swiss roll in float64, dense and block-sparse, ARPACK
# (PARPACK) and the block solver, even and uneven row splits, a rank with no
# rows; eigenvalues to 1e-6, eigenvectors (gathered on rank 0, in the input
# order) to |<u, v>| >= 1 - 1e-6 column by column. In a build without MPI:
# the messages that say so, and the mpirun cases counted as one skip.
# Prints "N passed, N failed, N skipped" last. Cases stay small (about 20 s).
set -u
if [ $# != 1 ] || [ ! -x "$1" ]; then
    echo "usage: run.sh PATH-TO-KFORGE" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset KFORGE_THREADS KFORGE_JIT KFORGE_BACKEND KFORGE_DEVICE
if [ -z "${KFORGE_CACHE_DIR:-}" ]; then
    KFORGE_CACHE_DIR="$T/cache"
    export KFORGE_CACHE_DIR
fi
LC_ALL=C
export LC_ALL
. "$HERE/../cli/lib.sh"

# Which build: the MPI check comes before the points are read, so a
# one-point cloud tells them apart without starting MPI.
run "$BIN" eigsh --mpi --gen spiral:1
if grep -qF "MPI is not built into" "$T/err"; then
    expect "--mpi without MPI" 2 "--mpi: MPI is not built into this kforge"
    run "$BIN" eigsh --gen spiral:100 --mpi-split 50,50
    expect "--mpi-split without MPI" 2 "--mpi-split: MPI is not built into this kforge"
    OMPI_COMM_WORLD_SIZE=2 run "$BIN" eigsh --gen spiral:100
    expect "started by mpirun without MPI" 2 "started by an MPI launcher with 2 ranks"
    OMPI_COMM_WORLD_SIZE=1 run "$BIN" eigsh --gen spiral:100 -k 3
    expect "mpirun -np 1 without MPI runs as one process" 0
    skip "mpirun cases" "this kforge was built without MPI (no mpicc or PARPACK at build time)"
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" = 0 ]
    exit
fi
expect "an MPI build checks the points first" 2 "1 point: eigsh needs at least 2"
if ! command -v mpirun >/dev/null 2>&1; then
    skip "mpirun cases" "mpirun is not on the PATH"
    # The distributed planner (kf_plan_block_sparse_dist): each rank's rows, j
# hull, points and pattern are the one-process plan's bit for bit; even and
# uneven input slices, wanted splits moved to cluster starts, empty ranks, a
# single cell, cutoff 0, float32 and 64.
DP=$(dirname "$BIN")/mpi-tests/distplan
if [ -x "$DP" ]; then
    for c in "1 roll 64 3000 0.05 0.1" "2 roll 64 3000 0.05 0.1" "3 roll 32 3000 0.02 0.04" \
             "3 lattice 64 2000 0.125 0.25 0,1500,500" "2 lattice 64 2000 0.125 0.25 - 1900,100" \
             "3 roll 64 3000 0.05 0.1 1000,0,2000 3000,0,0" "3 lattice 64 500 100 1" \
             "2 lattice 32 700 0.01 0"; do
        np=${c%% *}
        run timeout 120 $MPIRUN -np "$np" "$DP" ${c#* }
        if [ "$rc" = 0 ] && [ "$(grep -c '^ok ' "$T/out")" = 2 ] && ! grep -q FAIL "$T/out"; then
            pass
        else
            fail "distplan -np $c: rc $rc, $(grep FAIL "$T/out" | head -n 1)"
        fi
    done
else
    fail "$DP is missing (make builds it in MPI builds)"
fi

echo "$passed passed, $failed failed, $skipped skipped"
    exit 0
fi
# Root (containers, CI) needs Open MPI's consent; more ranks than cores, --oversubscribe.
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
mpi() { np=$1; shift; run timeout 120 $MPIRUN -np "$np" "$BIN" eigsh -q "$@"; }
one() { run timeout 120 "$BIN" eigsh -q "$@"; }

# same_vecs NAME A B K: (n, K) files whose columns agree up to sign: for every
# column j, |<a_j, b_j>| / (|a_j| |b_j|) >= 1 - 1e-6.
same_vecs() {
    if [ "$(npyshape "$2")" != "$(npyshape "$3")" ]; then
        fail "$1: shapes $(npyshape "$2") and $(npyshape "$3")"
        return
    fi
    npyvals "$2" >"$T/va"
    npyvals "$3" >"$T/vb"
    if bad=$(paste "$T/va" "$T/vb" | awk -v k="$4" '
        { j = (NR - 1) % k; ab[j] += $1 * $2; aa[j] += $1 * $1; bb[j] += $2 * $2 }
        END {
            if (NR == 0) { print "no values"; exit 1 }
            for (j = 0; j < k; j++) {
                c = ab[j] / sqrt(aa[j] * bb[j]); if (c < 0) c = -c
                if (!(c >= 1 - 1e-6)) { print "column " j ": |cos| = " c; exit 1 }
            }
        }'); then
        pass
    else
        fail "$1: $bad"
    fi
}

# case NAME NP K SOLVE-OPTIONS...: the reference once, then mpirun with NP ranks
# (MPI_OPTS before the options); eigenvalues to 1e-6 relative (1e-9 absolute
# around 0), eigenvectors column by column, and the per-rank table of the report.
MPI_OPTS=""
case_vs() {
    name=$1 np=$2 k=$3
    shift 3
    one "$@" -k "$k" -o "$T/ref_vals.npy" --vectors "$T/ref_vecs.npy"
    if [ "$rc" != 0 ]; then fail "$name: the one-process run exited $rc"; return; fi
    # shellcheck disable=SC2086
    mpi "$np" $MPI_OPTS "$@" -k "$k" -o "$T/vals.npy" --vectors "$T/vecs.npy"
    expect "$name: mpirun -np $np" 0
    [ "$rc" = 0 ] || return
    same_vals "$name: eigenvalues" "$T/vals.npy" "$T/ref_vals.npy" 1e-6 1e-9
    same_vecs "$name: eigenvectors" "$T/vecs.npy" "$T/ref_vecs.npy" "$k"
    expect_out "$name: the report's rank table" "ranks         $np (MPI"
}

F64="--dtype float64"
case_vs "spiral, 1 rank (PARPACK alone)" 1 5 --gen spiral:1000 $F64
case_vs "spiral, 2 ranks" 2 5 --gen spiral:1000 $F64
MPI_OPTS="--mpi-split 100,600,300"
case_vs "spiral, 3 uneven ranks" 3 5 --gen spiral:1000 $F64
MPI_OPTS="--mpi-split 0,700,500"
case_vs "Swiss roll, 3 ranks, rank 0 without rows" 3 5 --gen swissroll:1200 --sigma 0.1 $F64
MPI_OPTS="--mpi-split 600,600,0"
case_vs "Swiss roll, K (no Laplacian), last rank without rows" 3 4 --gen swissroll:1200 \
    --sigma 0.1 --laplacian none $F64
MPI_OPTS=""
case_vs "Swiss roll, unnormalized Laplacian" 2 4 --gen swissroll:1200 --sigma 0.1 \
    --laplacian unnormalized $F64
case_vs "Swiss roll block-sparse, 3 ranks" 3 5 --gen swissroll:3000 --block-sparse 0.1 $F64
MPI_OPTS="--mpi-split 2000,500,500"
case_vs "Swiss roll block-sparse, uneven split at cluster boundaries" 3 5 --gen swissroll:3000 \
    --block-sparse 0.1 $F64
MPI_OPTS=""
case_vs "spiral, block solver (LOBPCG)" 2 4 --gen spiral:1000 --solver block $F64
MPI_OPTS="--mpi-split 0,600,600"
case_vs "Swiss roll, block solver, a rank without rows" 3 4 --gen swissroll:1200 --sigma 0.1 \
    --solver block $F64
MPI_OPTS=""
# The coarse mode: the subsample's solve distributed over the ranks (each the
# subsample rows among its own), extended to every rank's rows.
case_vs "coarse mode, dense spiral" 2 5 --gen spiral:1000 --mode coarse $F64
MPI_OPTS="--mpi-split 2000,500,500"
case_vs "coarse mode, block-sparse Swiss roll, uneven" 3 5 --gen swissroll:3000 \
    --block-sparse 0.1 --mode coarse $F64
MPI_OPTS="--mpi-split 0,1500,1500"
case_vs "coarse mode, block solver, block-sparse, rank 0 without rows" 3 4 \
    --gen swissroll:3000 --block-sparse 0.1 --mode coarse --solver block $F64
MPI_OPTS="--mpi-split 1200,0"
case_vs "coarse mode, K (LA), a rank without rows" 2 4 --gen swissroll:1200 --sigma 0.1 \
    --laplacian none --which LA --mode coarse $F64
MPI_OPTS=""

# --points from a file: each rank reads only its slice by offset (dense: its
# own rows, then an allgather of the j side; block-sparse: an even slice for
# the distributed planner). The same results as one process reading it whole.
"$BIN" gen spiral:1000 -o "$T/sp.npy" && "$BIN" gen swissroll:3000 -o "$T/sr.npy" &&
    "$BIN" gen swissroll:1200 --dtype float32 -o "$T/sr32.npy"
(HERE="$HERE/../cli" && mkrand "$T/line.npy" '<f8' 700 0 5) # npy.awk lives with lib.sh
case_vs "--points spiral, 2 ranks (rows read by offset)" 2 5 --points "$T/sp.npy"
MPI_OPTS="--mpi-split 0,700,300"
case_vs "--points spiral, 3 uneven ranks, rank 0 without rows" 3 5 --points "$T/sp.npy"
MPI_OPTS="--mpi-split 1400,1600,0"
case_vs "--points Swiss roll, K, last rank without rows" 3 4 --points "$T/sr.npy" --sigma 0.1 \
    --laplacian none
MPI_OPTS=""
case_vs "--points (n,) float64, 3 ranks" 3 4 --points "$T/line.npy" --sigma 0.1
case_vs "--points Swiss roll block-sparse, 3 ranks" 3 5 --points "$T/sr.npy" --block-sparse 0.1
case_vs "--points, a FORMULA kernel (the symmetry probe reads its rows)" 2 4 --points "$T/sp.npy" \
    --kernel 'Exp(-SqDist(x,y)*IntCst(200))'
case_vs "--points float32 file, as float64" 2 4 --points "$T/sr32.npy" --sigma 0.1 $F64
# --gen under MPI: each rank generates only its rows; the FORMULA probe
# generates its sample in one pass and reaches the one-process verdict.
case_vs "--gen, a FORMULA kernel, block-sparse" 2 4 --gen swissroll:1500 \
    --kernel 'Exp(-SqDist(x,y)*IntCst(50))' --block-sparse 0.1:0.4 $F64
one --gen swissroll:1500 --kernel 'Exp(-SqDist(x,y)*IntCst(50))*Norm2(x)' -k 3
verdict=$(grep -o "the weighted row sum .*" "$T/err")
mpi 2 --gen swissroll:1500 --kernel 'Exp(-SqDist(x,y)*IntCst(50))*Norm2(x)' -k 3
expect "--gen, an asymmetric FORMULA: the one-process probe's verdict" 2 "${verdict:-(none)}"
# A NaN in rank 1's slice: found by rank 1 alone, reported once by rank 0
# with the point's global index; a truncated file: refused by every rank's
# header check, before any rank reads.
cp "$T/sp.npy" "$T/nan.npy"
printf '\000\000\000\000\000\000\370\177' |
    dd of="$T/nan.npy" bs=1 seek=$((128 + 1401 * 8)) conv=notrunc 2>/dev/null
one --points "$T/nan.npy" -k 3
expect "a NaN, one process" 2 "nan.npy: point 700 has a NaN coordinate (column 1)"
mpi 2 --points "$T/nan.npy" -k 3
expect "a NaN in rank 1's rows" 2 "rank 1: $T/nan.npy: point 700 has a NaN coordinate (column 1)"
if [ "$(grep -c 'has a NaN' "$T/err")" = 1 ]; then pass; else fail "the NaN reported $(grep -c 'has a NaN' "$T/err") times"; fi
mpi 2 --points "$T/nan.npy" -k 3 --block-sparse 0.5
expect "a NaN in rank 1's rows, block-sparse" 2 "point 700 has a NaN coordinate (column 1)"
head -c 5000 "$T/sp.npy" >"$T/short.npy"
mpi 2 --points "$T/short.npy" -k 3
expect "a truncated file under mpirun" 2 "needs 16000 (truncated file)"

# float32 through PARPACK's single precision (pssaupd): the values of float32's accuracy.
one --gen spiral:1000 -k 4 -o "$T/ref_vals.npy"
mpi 2 --gen spiral:1000 -k 4 -o "$T/vals.npy"
expect "float32, 2 ranks" 0
same_vals "float32, 2 ranks: eigenvalues" "$T/vals.npy" "$T/ref_vals.npy" 1e-3 1e-5

# Only rank 0 prints: one header line for the whole job.
mpi 2 --gen spiral:300 -k 3
expect "2 ranks, one report" 0
if [ "$(grep -c '^points ' "$T/out")" = 1 ]; then pass; else fail "one report: $(grep -c '^points ' "$T/out") header lines"; fi

# Usage errors are every rank's, reported once, exit status 2.
mpi 2 --gen spiral:300 --mpi-split 100,100,100
expect "--mpi-split with 3 counts for 2 ranks" 2 "more counts than the 2 ranks"
mpi 2 --gen spiral:300 --mpi-split 100,100
expect "--mpi-split not adding up to n" 2 "expected 2 (one per rank) adding up to the 300 points"
mpi 2 --gen spiral:300 --mpi-split 100,x
expect "--mpi-split with a non-number" 2 "expected 2 row counts >= 0 separated by commas"


# The distributed planner's sort (solvers/distsort.c, built beside kforge by
# make in MPI builds): the rows of all ranks, in rank order, are the
# replicated planner's perm_x bit for bit; even and uneven slices, a rank
# given no points, a single cell (two ranks end up empty), float32 and 64.
# mpi_prog NAME CASE...: each CASE is "NP ARGS..."; the program prints two
# "ok" lines and no FAIL under mpirun -np NP.
mpi_prog() {
    prog=$(dirname "$BIN")/mpi-tests/$1
    shift
    if [ ! -x "$prog" ]; then
        fail "$prog is missing (make builds it in MPI builds)"
        return
    fi
    for c in "$@"; do
        np=${c%% *}
        run timeout 120 $MPIRUN -np "$np" "$prog" ${c#* }
        if [ "$rc" = 0 ] && [ "$(grep -c '^ok ' "$T/out")" = 2 ] && ! grep -q FAIL "$T/out"; then
            pass
        else
            fail "$(basename "$prog") -np $c: rc $rc, $(grep FAIL "$T/out" | head -n 1)"
        fi
    done
}
mpi_prog distsort "1 64 3000 3 0.2" "2 64 3000 3 0.2" "3 64 3000 3 0.2" "2 32 2000 2 0.05" \
    "3 32 2000 2 0.05 0,1500,500" "3 64 500 1 0.01 250,250,0" "3 64 3000 3 100"

# The distributed planner (kf_plan_block_sparse_dist): each rank's rows, j
# hull, points and pattern are the one-process plan's bit for bit; even and
# uneven input slices, wanted splits moved to cluster starts, empty ranks, a
# single cell, cutoff 0, float32 and 64.
mpi_prog distplan "1 roll 64 3000 0.05 0.1" "2 roll 64 3000 0.05 0.1" "3 roll 32 3000 0.02 0.04" \
    "3 lattice 64 2000 0.125 0.25 0,1500,500" "2 lattice 64 2000 0.125 0.25 - 1900,100" \
    "3 roll 64 3000 0.05 0.1 1000,0,2000 3000,0,0" "3 lattice 64 500 100 1" \
    "2 lattice 32 700 0.01 0"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
