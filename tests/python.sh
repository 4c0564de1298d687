#!/bin/sh
# python.sh -- the Python package's tests (python/tests, pytest) over this tree's
# libkforge.so.0, the tutorials of examples/python among them. Run from the
# repository root; prints "N passed, N failed, N skipped" last (pytest's own
# count: errors count as failures). Without a Python that has numpy, scipy and
# pytest the phase is one skip, with the reason.
set -u
py=""
for c in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy, scipy, pytest' 2>/dev/null; then
        py=$c
        break
    fi
done
if [ -z "$py" ]; then
    echo "SKIP python: no python3 with numpy, scipy and pytest (Debian: python3-numpy python3-scipy python3-pytest)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
make -s shared build/kforge || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
KFORGE_LIB=$(pwd)/build/libkforge.so.0 PYTHONDONTWRITEBYTECODE=1 \
    "$py" -m pytest -q -rs -p no:cacheprovider python/tests >"$log" 2>&1
rc=$?
cat "$log"
last=$(grep -E '^[0-9]+ (passed|failed|skipped|error)|^(=+ )?[0-9]+ [a-z]+.* in [0-9.]+s' "$log" | tail -n 1)
n() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
p=$(n passed)
f=$(($(n failed) + $(n error)))
s=$(n skipped)
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "(pytest exited $rc)"; fi
echo "$p passed, $f failed, $s skipped"
[ "$f" = 0 ]
