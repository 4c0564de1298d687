# case_switch.sh -- a run that meets the swap to the optimized code reports both engines
# (issue 12). KFORGE_TEST_SWAP_AT_TASK (docs/api.md) puts the switch at a known task, so
# nothing here depends on timing; a private cache makes every build a miss.
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    SW="$T/swcache"
    SA="--alias x=Vi(0,3) --alias y=Vj(1,3) --alias b=Vj(2,1)"
    SF='Exp(-SqDist(x,y)*IntCst(3))*b'
    mkrand "$T/swx.npy" '<f4' 37 3 11
    mkrand "$T/swy.npy" '<f4' 300 3 12
    mkrand "$T/swb.npy" '<f4' 300 0 13
    # 37 rows on 2 threads: 8 blocks of 5 rows; tasks 0-2 run libtcc code, 3-7 cc code.
    run env KFORGE_CACHE_DIR="$SW" KFORGE_TEST_SWAP_AT_TASK=3 "$BIN" eval "$SF" $SA -r Sum \
        --axis 1 --threads 2 -v -o "$T/swa.npy" "$T/swx.npy" "$T/swy.npy" "$T/swb.npy"
    expect "switch mid-run: eval -v names both engines" 0 \
        "engine tcc, then cc from task 3 of 8 (59% of pairs on cc), 2 threads"
    run "$BIN" eval "$SF" $SA -r Sum --axis 1 --jit reference -o "$T/swr.npy" "$T/swx.npy" \
        "$T/swy.npy" "$T/swb.npy"
    expect "switch mid-run: the reference" 0
    same_vals "switch mid-run: the result matches the reference" "$T/swa.npy" "$T/swr.npy" 1e-4 1e-6
    # The next process finds the cc code in the cache: one engine, said plainly.
    run env KFORGE_CACHE_DIR="$SW" KFORGE_TEST_SWAP_AT_TASK=3 "$BIN" eval "$SF" $SA -r Sum \
        --axis 1 --threads 2 -v -o "$T/swa.npy" "$T/swx.npy" "$T/swy.npy" "$T/swb.npy"
    expect "switch: a cache hit runs cc only" 0 "engine cc, 2 threads"
    demo="$(dirname "$BIN")/examples/gauss_demo"
    if [ -x "$demo" ]; then
        run env KFORGE_CACHE_DIR="$T/swdemo" KFORGE_THREADS=2 KFORGE_TEST_SWAP_AT_TASK=2 "$demo" 400
        expect "switch: gauss_demo" 0
        expect_out "switch: gauss_demo says what ran" "engine:   tcc, then cc from task 2 of 8 (75% of pairs on cc), 2 threads"
    else
        skip "switch: gauss_demo" "$demo is not built"
    fi
    # A big run (10^8 pairs on 2 threads: the bar of 5e7 a worker, runtime/run.c) waits for
    # the build instead of starting on libtcc code: all on cc, and -v says how long it waited.
    mkrand "$T/bga.npy" '<f4' 10000 0 21
    mkrand "$T/bgb.npy" '<f4' 10000 0 22
    BA="--alias a=Vi(0,1) --alias b=Vj(1,1)"
    run env KFORGE_CACHE_DIR="$T/bgcache" "$BIN" eval 'a*b' $BA -r Sum --axis 1 --threads 2 -v \
        -o "$T/bgo.npy" "$T/bga.npy" "$T/bgb.npy"
    expect "big cold run: waits for the build" 0 "for the optimized (cc) build before 1e+08 pairs: cheaper"
    expect "big cold run: then runs cc only" 0 "engine cc, 2 threads"
    # ... but not for ever: a compiler still busy after 5 s leaves the run to libtcc code.
    # (The wrapper sleeps 7 s; the run ends before, so the build is cancelled at exit.)
    ccreal=$(command -v "${CC:-cc}")
    printf '#!/bin/sh\nsleep 7\nexec "%s" "$@"\n' "$ccreal" >"$T/slowcc"
    chmod +x "$T/slowcc"
    run env CC="$T/slowcc" KFORGE_CACHE_DIR="$T/bgslow" "$BIN" eval 'a*b+b' $BA -r Sum --axis 1 \
        --threads 2 -v -o "$T/bgo.npy" "$T/bga.npy" "$T/bgb.npy"
    expect "big cold run, hung compiler: waits 5 s at most" 0 \
        "for the optimized (cc) build before 1e+08 pairs, still running: starting on libtcc code"
    expect "big cold run, hung compiler: libtcc code" 0 "engine tcc, 2 threads"
else
    skip "switch mid-run" "no C compiler '${CC:-cc}' on PATH"
fi
