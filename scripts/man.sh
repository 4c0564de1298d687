#!/bin/sh
# man.sh KFORGE OUT -- the kforge(1) man page, generated from the command's
# own help texts (`kforge --help` and `kforge help CMD` for each command), so
# the page can never disagree with --help. Plain roff: each help text is
# verbatim (.nf) under its own section.
set -eu
K=$1
OUT=$2
ver=$("$K" --version | sed 's/^kforge //')
# roff escapes: backslashes doubled, a leading dot or quote protected.
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
{
    echo ".TH KFORGE 1 \"\" \"kforge $ver\" \"User Commands\""
    echo ".SH NAME"
    echo "kforge \\- reductions over all pairs of two point clouds, from KeOps formula strings"
    echo ".SH SYNOPSIS"
    echo ".nf"
    "$K" --help | esc
    echo ".fi"
    for c in eval check bench cache eigsh gen devices; do
        echo ".SH \"KFORGE $(echo "$c" | tr '[:lower:]' '[:upper:]')\""
        echo ".nf"
        "$K" help "$c" | esc
        echo ".fi"
    done
    echo ".SH SEE ALSO"
    echo "The documentation in share/doc/kforge: formulas.md (the formula language), api.md"
    echo "(the C API), cache.md, solvers.md, blocksparse.md, performance.md."
} >"$OUT"
