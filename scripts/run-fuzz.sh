#!/bin/sh
# run-fuzz.sh SECONDS FUZZER... -- runs each libFuzzer binary for SECONDS on a
# scratch copy of its seed corpus (tests/fuzz/corpus_NAME), so the source tree
# is never written. Prints "N passed, N failed" (one per fuzzer).
set -u
secs=$1
shift
passed=0
failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    work=$(mktemp -d)
    seeds=tests/fuzz/corpus_${name#fuzz_}
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 "$work" >"$work.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -E 'stat::number_of_executed_units' "$work.log" | awk '{print $2}') runs)"
        passed=$((passed + 1))
    else
        echo "fuzz $name: FAILED"
        tail -n 60 "$work.log"
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
