# case_cachecmd.sh -- kforge cache list|info|clear on a temporary cache
# directory: help and usage errors, an empty cache, an entry made by an
# optimized (cc) compile, clear by age and clear all, a refused directory.
CD="$T/cachecmd/kc"
kcache() { run "$BIN" cache "$@" --cache-dir "$CD"; }

run "$BIN" cache --help
expect "cache --help" 0
expect_out "cache --help: usage" "Usage: kforge cache"
run "$BIN" help cache
expect "help cache" 0
expect_out "help cache: example" "Examples"
run "$BIN" help
expect_out "help lists cache" "kforge cache list|info|clear"
run "$BIN" cache
expect "cache without a command" 2 "missing command"
kcache frob
expect "cache frob" 2 "unknown command 'frob'"
kcache list --older-than 3
expect "--older-than with list" 2 "--older-than goes with clear"
kcache clear --older-than soon
expect "--older-than soon" 2 "--older-than must be a number of days"
kcache clear --older-than nan
expect "--older-than nan" 2 "--older-than must be a number of days"
kcache info extra
expect "cache info extra" 2 "unexpected argument 'extra'"
run "$BIN" cache list --cache-dir ''
expect "--cache-dir ''" 2 "--cache-dir needs a directory"

# An empty cache (made on first use).
kcache info
expect "cache info (empty)" 0
expect_out "cache info: the directory" "directory  $CD"
expect_out "cache info: read-write" "mode       read-write"
expect_out "cache info: no entries" "entries    0"
kcache list
expect "cache list (empty)" 0
expect_out "cache list (empty): count" "0 entries"

if command -v "${CC:-cc}" >/dev/null 2>&1; then
    # An optimized compile (eval --jit cc, the cache from the environment) makes one entry.
    mknpy "$T/cx.npy" '<f8' '(2, 1)' 1 2
    mknpy "$T/cy.npy" '<f8' '(3,)' 1 2 3
    run env KFORGE_CACHE_DIR="$CD" "$BIN" eval 'SqDist(x,y)' --alias 'x=Vi(0,1)' --alias 'y=Vj(1,1)' \
        -r Sum --axis 1 --jit cc -o "$T/co.npy" "$T/cx.npy" "$T/cy.npy"
    expect "eval --jit cc fills the cache" 0
    vals_are "eval --jit cc values" "$T/co.npy" "5 2"
    kcache list
    expect "cache list (one entry)" 0
    expect_out "cache list: count" "1 entry"
    expect_out "cache list: reduction" "Sum axis=1 float64"
    expect_out "cache list: formula" "SqDist("
    if awk 'NR == 2 && $1 ~ /^[0-9a-f]+$/ && length($1) == 16 && $2 == "cc" { ok = 1 } END { exit !ok }' "$T/out"; then
        pass
    else
        fail "cache list: line 2 is not 'KEY16 cc ...': $(sed -n 2p "$T/out")"
    fi
    kcache info
    expect_out "cache info: one entry" "entries    1"
    kcache clear --older-than 1
    expect "cache clear --older-than 1" 0
    expect_out "clear --older-than 1 keeps a new entry" "removed 0 entries last used more than 1 day ago"
    kcache list
    expect_out "the entry is still listed" "1 entry"
    kcache clear
    expect "cache clear" 0
    expect_out "cache clear: count" "removed 1 entry from $CD"
    kcache list
    expect_out "cache clear empties it" "0 entries"
else
    skip "cache list/clear with an entry" "no C compiler '${CC:-cc}' on PATH"
fi

# A directory other users can write is refused: loading from it would run their code.
mkdir -p "$T/cachecmd/gw"
chmod 0777 "$T/cachecmd/gw"
run "$BIN" cache info --cache-dir "$T/cachecmd/gw"
expect "cache info on a world-writable directory" 0
expect_out "cache info: unusable" "mode       unusable: "
run "$BIN" cache list --cache-dir "$T/cachecmd/gw"
expect "cache list on a world-writable directory" 1 "is not usable"
run "$BIN" cache clear --cache-dir "$T/cachecmd/gw"
expect "cache clear on a world-writable directory" 1 "is not usable"
# A run with that directory still answers, and says once why the cache was not used.
mkrand "$T/cachecmd/x.npy" '<f4' 4 1 1
run env KFORGE_CACHE_DIR="$T/cachecmd/gw" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' -a 'y=Vj(1,1)' -r Sum --axis 1 --jit cc \
    -o "$T/cachecmd/o.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy"
if [ "$rc" = 1 ] || [ "$rc" = 0 ]; then pass; else fail "eval with a refused cache: exit status $rc"; fi
if [ "$(grep -c 'refusing cache directory' "$T/err")" = 1 ]; then pass; else
    fail "eval with a refused cache: the reason is not said exactly once: $(cat "$T/err")"; fi
run env KFORGE_THREADS=abc "$BIN" check 'x' -a 'x=Vi(0,1)'
if [ "$(grep -c "KFORGE_THREADS='abc'" "$T/err")" = 1 ]; then pass; else
    fail "a bad KFORGE_THREADS is said exactly once: $(cat "$T/err")"; fi
# --jit auto never waits long for the background build: a compiler that hangs
# (here: sleeps 30 s) costs a short run about a second, and the cancel is said
# with -v; a compiler that fails is said once, and the answer is still right.
printf '#!/bin/sh\nsleep 30\n' > "$T/cachecmd/slowcc"
printf '#!/bin/sh\necho broken >&2\nexit 1\n' > "$T/cachecmd/badcc"
chmod +x "$T/cachecmd/slowcc" "$T/cachecmd/badcc"
start=$(date +%s)
run env CC="$T/cachecmd/slowcc" KFORGE_CACHE_DIR="$T/cachecmd/c2" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' \
    -a 'y=Vj(1,1)' -r Sum --axis 1 -v -o "$T/cachecmd/o2.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy"
took=$(( $(date +%s) - start ))
expect "auto with a hanging compiler: the answer" 0 "was cancelled, nothing stored"
if [ "$took" -lt 15 ]; then pass; else fail "auto with a hanging compiler took $took s"; fi
run env CC="$T/cachecmd/badcc" KFORGE_CACHE_DIR="$T/cachecmd/c3" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' \
    -a 'y=Vj(1,1)' -r Sum --axis 1 -o "$T/cachecmd/o3.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy"
expect "auto with a failing compiler: still answers" 0
if [ "$(grep -c 'background build of the optimized kernel failed' "$T/err")" = 1 ]; then pass; else
    fail "a failed background build is said exactly once: $(cat "$T/err")"; fi
same_vals "auto with a failing compiler: values" "$T/cachecmd/o2.npy" "$T/cachecmd/o3.npy" 0 0
# kill -9 of kforge during a cc build: the compiler (and what it started) dies with it.
printf '#!/bin/sh\necho $$ > "%s"\nexec sleep 60\n' "$T/cachecmd/ccpid" > "$T/cachecmd/pidcc"
chmod +x "$T/cachecmd/pidcc"
rm -f "$T/cachecmd/ccpid"
env CC="$T/cachecmd/pidcc" KFORGE_CACHE_DIR="$T/cachecmd/c4" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' \
    -a 'y=Vj(1,1)' -r Sum --axis 1 --jit cc -o "$T/cachecmd/o4.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy" \
    >/dev/null 2>&1 &
kpid=$!
w=0
while [ ! -s "$T/cachecmd/ccpid" ] && [ $w -lt 100 ]; do sleep 0.1; w=$((w + 1)); done
kill -9 "$kpid" 2>/dev/null
wait "$kpid" 2>/dev/null
ccpid=$(cat "$T/cachecmd/ccpid" 2>/dev/null)
w=0
while [ -n "$ccpid" ] && kill -0 "$ccpid" 2>/dev/null && [ $w -lt 50 ]; do sleep 0.1; w=$((w + 1)); done
if [ -z "$ccpid" ]; then fail "kill -9 during a build: the compiler never started";
elif kill -0 "$ccpid" 2>/dev/null; then fail "kill -9 during a build: the compiler $ccpid still runs"; kill -9 "$ccpid";
else pass; fi
# An entry replaced by a link to someone's files: refused, and removing it
# removes the link only, never the files it points to (nor a plain file or
# a directory where kernel.so should be).
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    C5="$T/cachecmd/c5"
    mkdir -p "$T/cachecmd/victim/sub"
    echo keep > "$T/cachecmd/victim/precious"
    echo keep > "$T/cachecmd/victim/sub/also"
    ev5() { run env KFORGE_CACHE_DIR="$C5" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' -a 'y=Vj(1,1)' -r Sum \
        --axis 1 --jit cc -o "$T/cachecmd/o5.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy"; }
    ev5
    expect "cc entry for the link test" 0
    key=$(ls "$C5" | grep -E '^[0-9a-f]{32,}$' | head -n 1)
    if [ -n "$key" ]; then
        rm -rf "${C5:?}/$key"
        ln -s "$T/cachecmd/victim" "$C5/$key"
        ev5
        expect "an entry that is a link still answers" 0
        if [ -f "$T/cachecmd/victim/precious" ] && [ -f "$T/cachecmd/victim/sub/also" ]; then pass; else
            fail "removing a linked cache entry deleted the files it pointed to"; fi
        if [ ! -L "$C5/$key" ]; then pass; else fail "the linked entry is still there"; fi
        # kernel.so a directory, and the entry a plain file: removed whole, nothing left behind
        rm -rf "${C5:?}/$key"
        ev5
        if [ -d "$C5/$key" ]; then rm -f "$C5/$key/kernel.so"; mkdir -p "$C5/$key/kernel.so/x"; fi
        ev5
        expect "kernel.so as a directory: still answers" 0
        rm -rf "${C5:?}/$key"
        echo junk > "$C5/$key"
        ev5
        expect "an entry that is a plain file: still answers" 0
        if ls "$C5" | grep -q '^trash-'; then fail "trash left behind: $(ls "$C5")"; else pass; fi
    else
        fail "no entry directory in $C5: $(ls "$C5")"
    fi
fi
# A FIFO as an entry's meta or kernel.so: refused at once, by eval and by cache list (no hang).
if command -v "${CC:-cc}" >/dev/null 2>&1 && [ -n "${key:-}" ] && command -v mkfifo >/dev/null 2>&1; then
    for f in meta kernel.so; do
        rm -rf "${C5:?}/$key"
        ev5
        if [ -d "$C5/$key" ]; then rm -f "$C5/$key/$f"; mkfifo "$C5/$key/$f"; fi
        run timeout 30 env KFORGE_CACHE_DIR="$C5" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' -a 'y=Vj(1,1)' \
            -r Sum --axis 1 --jit cc -v -o "$T/cachecmd/o6.npy" "$T/cachecmd/x.npy" "$T/cachecmd/x.npy"
        expect "a FIFO as $f: eval answers" 0 "is not a regular file"
        rm -rf "${C5:?}/$key"
        ev5
        if [ -d "$C5/$key" ]; then rm -f "$C5/$key/$f"; mkfifo "$C5/$key/$f"; fi
        run timeout 30 "$BIN" cache list --cache-dir "$C5"
        if [ "$rc" != 124 ]; then pass; else fail "a FIFO as $f hangs cache list"; fi
    done
fi
# A directory that is not kforge's named as the cache (a home directory):
# clear refuses and removes nothing, even things named like kforge's leftovers.
H="$T/cachecmd/home"
mkdir -p "$H/trash-old" "$H/tmp-notes" "$H/Documents"
echo mine > "$H/trash-old/letter"
echo mine > "$H/tmp-notes/todo"
touch -d '2 days ago' "$H/trash-old" "$H/tmp-notes"
run env KFORGE_CACHE_DIR="$H" "$BIN" cache clear
expect "cache clear in a home directory refuses" 1 "is not a kforge cache"
if [ -f "$H/trash-old/letter" ] && [ -f "$H/tmp-notes/todo" ] && [ -d "$H/Documents" ]; then pass; else
    fail "cache clear deleted files in a directory that is not kforge's"; fi
if [ ! -e "$H/CACHEDIR.TAG" ]; then pass; else fail "a home directory was tagged as a cache"; fi
# A cache kforge made is tagged.
if [ -f "$CD/CACHEDIR.TAG" ] && head -n 1 "$CD/CACHEDIR.TAG" | grep -q '^Signature: 8a477f597d28d172789f06886806bc55$'; then
    pass; else fail "the cache kforge made carries no CACHEDIR.TAG"; fi
# A symbolic link as the cache directory: refused with a message, the answer still right.
mkdir -p "$T/cachecmd/realc"
ln -sfn "$T/cachecmd/realc" "$T/cachecmd/linkc"
mknpy "$T/cachecmd/lx.npy" '<f8' '(2, 1)' 1 2
run env KFORGE_CACHE_DIR="$T/cachecmd/linkc" "$BIN" eval 'SqDist(x,y)' -a 'x=Vi(0,1)' -a 'y=Vj(1,1)' -r Sum \
    --axis 1 -o "$T/cachecmd/lo.npy" "$T/cachecmd/lx.npy" "$T/cachecmd/lx.npy"
expect "a symlinked cache directory is refused, eval answers" 0 "is a symbolic link"
vals_are "symlinked cache: values" "$T/cachecmd/lo.npy" "1 1"
run "$BIN" cache info --cache-dir "$T/cachecmd/linkc"
expect_out "cache info names the refusal" "symbolic link"
# cache clear racing optimized builds: every eval answers (the object just
# built is loaded from its own bytes, whatever clear removes meanwhile).
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    CR="$T/cachecmd/race"
    ( i=0; while [ ! -e "$T/cachecmd/race.stop" ] && [ $i -lt 2000 ]; do
          "$BIN" cache clear --cache-dir "$CR" >/dev/null 2>&1; i=$((i + 1)); done ) &
    racer=$!
    bad=0
    for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
        run env KFORGE_CACHE_DIR="$CR" "$BIN" eval "SqDist(x,y)*IntCst($n)" -a 'x=Vi(0,1)' -a 'y=Vj(1,1)' \
            -r Sum --axis 1 --jit cc -o "$T/cachecmd/ro.npy" "$T/cachecmd/lx.npy" "$T/cachecmd/lx.npy"
        if [ "$rc" != 0 ]; then bad=$((bad + 1)); echo "race run $n: $(cat "$T/err")" >&2; fi
    done
    touch "$T/cachecmd/race.stop"
    wait "$racer"
    if [ "$bad" = 0 ]; then pass; else fail "$bad of 12 eval --jit cc runs failed while cache clear ran"; fi
fi
