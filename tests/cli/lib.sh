# lib.sh -- helpers for the CLI tests (sourced by run.sh): .npy files written
# by awk + printf and read back by od, so no numpy and no extra binary; the
# run/check functions keep the pass/fail/skip counts.
#   $BIN the kforge under test, $T a scratch directory, $HERE this folder.

passed=0
failed=0
skipped=0

pass() { passed=$((passed + 1)); }
# skip NAME REASON: a group of cases that cannot run here (one count, one line).
skip() {
    skipped=$((skipped + 1))
    echo "SKIP $1: $2"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
    if [ -s "$T/err" ]; then sed 's/^/    stderr: /' "$T/err" | head -n 8; fi
}

# Writes .npy header + data: mknpy FILE DESCR SHAPE VALUE...   (SHAPE as numpy
# prints it: "(3, 2)", "(4,)", "()"; values: numbers, nan, inf, -inf).
npy_head() {
    dict="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
    total=$(((10 + ${#dict} + 1 + 63) / 64 * 64))
    hl=$((total - 10))
    printf '\223NUMPY\001\000'
    printf "\\$(printf %03o $((hl % 256)))\\$(printf %03o $((hl / 256)))"
    printf '%s' "$dict"
    printf "%$((total - 10 - ${#dict} - 1))s\n" ""
}
npy_body() { while IFS= read -r line; do printf "$line"; done; }
mknpy() {
    f=$1 d=$2 s=$3
    shift 3
    { npy_head "$f" "$d" "$s"; echo "$@" | awk -v descr="$d" -f "$HERE/npy.awk" | npy_body; } >"$f"
}
# mkrand FILE DESCR ROWS COLS SEED: (ROWS, COLS) values in [-1, 1); COLS = 0 gives (ROWS,).
mkrand() {
    if [ "$4" = 0 ]; then s="($3,)" n=$3; else s="($3, $4)" n=$(($3 * $4)); fi
    { npy_head "$1" "$2" "$s"; awk -v descr="$2" -v count="$n" -v seed="$5" -f "$HERE/npy.awk" </dev/null | npy_body; } >"$1"
}

# Header length, shape text, descr, and the values one per line.
# A missing or tiny file reads as empty (the check that uses it then fails).
npy_hlen() {
    lo=$(od -A n -t u1 -j 8 -N 1 "$1" 2>/dev/null | tr -d ' ')
    hi=$(od -A n -t u1 -j 9 -N 1 "$1" 2>/dev/null | tr -d ' ')
    echo $((10 + ${lo:-0} + 256 * ${hi:-0}))
}
npyshape() { [ -f "$1" ] && head -c "$(npy_hlen "$1")" "$1" | sed -n "s/.*'shape': \(([0-9, ]*)\).*/\1/p"; }
npydescr() { [ -f "$1" ] && head -c "$(npy_hlen "$1")" "$1" | sed -n "s/.*'descr': '\([^']*\)'.*/\1/p"; }
npyvals() {
    [ -f "$1" ] || return 0
    case $(npydescr "$1") in '<f4') t=f4 ;; '<i8') t=d8 ;; *) t=f8 ;; esac
    od -A n -v -t $t -j "$(npy_hlen "$1")" "$1" | tr -s ' ' '\n' | grep -v '^$'
}

# Runs the command, keeping stdout in $T/out and stderr in $T/err; sets $rc.
run() {
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
}
# expect NAME RC [STDERR-SUBSTRING]: checks the last run.
expect() {
    if [ "$rc" != "$2" ]; then
        fail "$1: exit status $rc, expected $2"
    elif [ $# -ge 3 ] && ! grep -qF -- "$3" "$T/err"; then
        fail "$1: stderr lacks '$3'"
    else
        pass
    fi
}
# expect_out NAME SUBSTRING: stdout of the last run contains it.
expect_out() {
    if grep -qF -- "$2" "$T/out"; then pass; else fail "$1: stdout lacks '$2'"; fi
}
# same_vals NAME A B RTOL ATOL: same shape, descr and values within tolerance
# (nan matches nan, inf matches inf of the same sign).
same_vals() {
    if [ "$(npyshape "$2")" != "$(npyshape "$3")" ] || [ "$(npydescr "$2")" != "$(npydescr "$3")" ]; then
        fail "$1: $(npydescr "$2") $(npyshape "$2") vs $(npydescr "$3") $(npyshape "$3")"
        return
    fi
    npyvals "$2" >"$T/va"
    npyvals "$3" >"$T/vb"
    if bad=$(paste "$T/va" "$T/vb" | awk -v rt="$4" -v at="$5" '
        function isnum(s) { return s ~ /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/ }
        {
            a = $1; b = $2
            if (isnum(a) && isnum(b)) {
                d = a - b; if (d < 0) d = -d
                m = b < 0 ? -b : b
                if (d > at + rt * m) { print NR ": " a " vs " b; exit 1 }
            } else if (!(a ~ /nan/ && b ~ /nan/) && a != b) { print NR ": " a " vs " b; exit 1 }
        }'); then
        pass
    else
        fail "$1: values differ at $bad"
    fi
}
# vals_are NAME FILE "V1 V2 ...": exact values (as od prints them).
vals_are() {
    got=$(npyvals "$2" | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$3" ]; then pass; else fail "$1: values '$got', expected '$3'"; fi
}
# absent NAME FILE...: none of the files exists.
absent() {
    n=$1
    shift
    for f in "$@"; do
        if [ -e "$f" ]; then fail "$n: $f was written"; return; fi
    done
    pass
}
