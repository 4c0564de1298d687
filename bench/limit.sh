#!/bin/sh
# limit.sh KERNEL.SO KERNEL.C -- the vector instructions per pair of an
# optimized kernel's hot loop, for `make bench`'s "limit" row: the innermost
# loop of the object (a backward jump whose range holds no other) with the
# most vector instructions is the loop over j, whose one iteration folds one
# j into KF_RB rows (KERNEL.C's #define). One j per iteration holds because
# the cc tier's source turns GCC's unroll-and-jam off (compiler/emit/emit_opt.c):
# with it, small float64 bodies held two j and this count was twice the truth.
# Prints "INSTR RB PER_PAIR FMAS": FMAS counts the multiplies and fused
# multiply-adds among INSTR, the operations only the FMA pipes take (on Zen 4
# and Zen 5 the adds, compares, shifts and copies go elsewhere), so FMAS / RB
# per pair at the FMA rate is the tighter floor there. Nothing when objdump is
# missing or no loop is found.
set -u
command -v objdump >/dev/null 2>&1 || exit 0
rb=$(sed -n 's/^#define KF_RB \([0-9][0-9]*\)$/\1/p' "$2" | head -n 1)
[ -n "$rb" ] || exit 0
objdump -d --no-show-raw-insn "$1" | awk -v rb="$rb" '
    function hex(s,   v, i, c) { # mawk has no strtonum
        v = 0
        for (i = 1; i <= length(s); i++) {
            c = index("0123456789abcdef", substr(s, i, 1))
            if (!c) break
            v = v * 16 + c - 1
        }
        return v
    }
    # lines: "  addr:\tmnemonic operands"
    /^ *[0-9a-f]+:\t/ {
        a = hex(substr($1, 1, length($1) - 1))
        n++; addr[n] = a; mn[n] = $2; ops[n] = $3
        if ($2 ~ /^j/ && $3 ~ /^[0-9a-f]+$/) {
            t = hex($3)
            if (t < a) { nb++; bsrc[nb] = a; btgt[nb] = t }
        }
    }
    END {
        best = 0
        for (q = 1; q <= nb; q++) {
            inner = 1
            for (r = 1; r <= nb; r++)
                if (r != q && bsrc[r] >= btgt[q] && bsrc[r] < bsrc[q]) { inner = 0; break }
            if (!inner) continue
            c = 0; f = 0
            for (i = 1; i <= n; i++)
                if (addr[i] >= btgt[q] && addr[i] <= bsrc[q] && mn[i] ~ /^v/ && ops[i] ~ /%[xyz]mm/) {
                    c++
                    if (mn[i] ~ /^vf(n)?m(add|sub)/ || mn[i] ~ /^vmulp/) f++
                }
            if (c > best) { best = c; bestf = f }
        }
        if (best > 0) printf "%d %d %.3f %d\n", best, rb, best / rb, bestf
    }'
