#!/bin/sh
# run-tests.sh -- `make test`: every test phase, then one closing line
# "N passed, N failed, N skipped" summing them all. A phase that cannot even
# build or run counts as one failure.
#   1. unit tests (build/kforge-tests)
#   2. CLI tests (tests/cli/*.sh)
#   3. MPI tests (tests/mpi/run.sh: mpirun -np 1..3 against one process; in a
#      build without MPI, its messages and one skip)
#   4. make install into a DESTDIR, an outside program built against it (tests/install.sh)
#   5. the Python package (tests/python.sh: pytest over libkforge.so, the tutorials)
#   6. unit tests under ASan + UBSan
#   7. CLI tests under ASan + UBSan
#   8. fuzzers, FUZZ_SECONDS each
# CI=true runs the fuzzers longer (60 s each) than a local run (10 s).
set -u
JOBS=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
skipped=0
log=$(mktemp)
# One private kernel cache for every phase: never the user's ~/.cache, and
# the ASan phases hit the entries the plain phases built.
KFORGE_CACHE_DIR=$(mktemp -d)
export KFORGE_CACHE_DIR
trap 'rm -f "$log"; rm -rf "$KFORGE_CACHE_DIR"' EXIT

# Adds the "N passed, N failed[, N skipped]" counts printed last by a command
# (a phase without skips may leave the third out); a command that fails
# without such a line counts as one failure.
count() {
    name=$1
    shift
    echo "== $name"
    t0=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    echo "   ($name: $(($(date +%s) - t0)) s)"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        s=$(echo "$line" | sed -E -n 's/^[0-9]+ passed, [0-9]+ failed, ([0-9]+) skipped.*/\1/p')
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + ${s:-0}))
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then failed=$((failed + 1)); echo "   ($name exited $rc)"; fi
    elif [ "$rc" = 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "   ($name failed with status $rc)"
    fi
}

count "build" make -s -j"$JOBS" all
count "unit tests" ./build/kforge-tests
count "CLI tests" sh tests/cli/run.sh build/kforge
count "MPI tests" sh tests/mpi/run.sh build/kforge
count "install (DESTDIR)" sh tests/install.sh
count "Python (pytest)" sh tests/python.sh
count "ASan/UBSan build" make -s -j"$JOBS" BUILD=build/asan SAN=1 build/asan/kforge-tests build/asan/kforge
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    count "unit tests (ASan/UBSan)" ./build/asan/kforge-tests
ASAN_OPTIONS=detect_leaks=1 count "CLI tests (ASan/UBSan)" sh tests/cli/run.sh build/asan/kforge
if [ "${CI:-}" = true ]; then secs=60; else secs=${FUZZ_SECONDS:-10}; fi
count "fuzzing (${secs}s per target)" make -s -j"$JOBS" fuzz FUZZ_SECONDS="$secs"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
