#!/bin/sh
# run.sh BIN -- the tests of the kforge command BIN (build/kforge, and the
# ASan build build/asan/kforge): exit statuses, messages, outputs against the
# reference engine and against hand-computed values, help texts. Cases live in
# tests/cli/case_*.sh. Prints "N passed, N failed, N skipped" last (a skip is a
# group of cases that cannot run on this machine, with its SKIP line and reason);
# exits 1 if any failed. The commands' stdout and stderr go to files ($T/out,
# $T/err), shown only in a FAIL line's detail.
set -u
if [ $# != 1 ] || [ ! -x "$1" ]; then
    echo "usage: run.sh PATH-TO-KFORGE" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset KFORGE_THREADS KFORGE_JIT KFORGE_BACKEND KFORGE_DEVICE
# Never the user's ~/.cache: make test exports one cache for all phases;
# run alone, this script uses a private one.
if [ -z "${KFORGE_CACHE_DIR:-}" ]; then
    KFORGE_CACHE_DIR="$T/cache"
    export KFORGE_CACHE_DIR
fi
# Bytes, not characters: the .npy magic is not valid UTF-8.
LC_ALL=C
export LC_ALL
. "$HERE/lib.sh"
for c in "$HERE"/case_*.sh; do
    . "$c"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
