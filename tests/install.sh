#!/bin/sh
# install.sh -- `make install` as a user would use it, into a DESTDIR: every
# file in place, an outside program (examples/api_example.c) built against
# the install with pkg-config, shared and static, and run; the man page from
# the help texts; `make uninstall` removes every file it put there. Run from
# the repository root; prints "N passed, N failed, N skipped" last.
set -u
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL install: $*"; }
if make -s install DESTDIR="$D" PREFIX=/usr >"$D/log" 2>&1; then ok; else bad "make install: $(tail -n 5 "$D/log")"; fi
for f in bin/kforge lib/libkforge.so.0 lib/libkforge.so lib/libkforge.a include/kforge.h \
    lib/pkgconfig/kforge.pc share/man/man1/kforge.1 share/doc/kforge/README.md \
    share/doc/kforge/formulas.md; do
    if [ -e "$D/usr/$f" ]; then ok; else bad "$f is not installed"; fi
done
# Only the public API is exported.
if nm -D --defined-only "$D/usr/lib/libkforge.so.0" | awk '{ print $3 }' | grep -v '^KFORGE_0$' |
    grep -qv '^kf_'; then bad "libkforge.so exports more than kf_*"; else ok; fi
if readelf -d "$D/usr/lib/libkforge.so.0" | grep -q 'SONAME.*libkforge.so.0'; then ok; else bad "no soname"; fi
PKG_CONFIG_PATH=$D/usr/lib/pkgconfig
export PKG_CONFIG_PATH
pc() { pkg-config --define-variable=prefix="$D/usr" "$@" kforge; }
if [ "$(pc --modversion)" = "$("$D/usr/bin/kforge" --version | sed 's/^kforge //')" ]; then ok; else
    bad "kforge.pc's version $(pc --modversion) is not the command's"; fi
# Shared: the program finds libkforge.so.0 in the install, not in the tree.
# shellcheck disable=SC2046
if cc -o "$D/prog" examples/api_example.c $(pc --cflags --libs) 2>"$D/err"; then ok; else
    bad "cc against the install (shared): $(head -n 5 "$D/err")"; fi
if LD_LIBRARY_PATH=$D/usr/lib ldd "$D/prog" 2>/dev/null | grep -q "libkforge.so.0 => $D/usr/lib/"; then ok; else
    bad "the program does not use the installed libkforge.so.0"; fi
if LD_LIBRARY_PATH=$D/usr/lib "$D/prog" >"$D/out" 2>&1; then ok; else bad "the shared program failed: $(tail -n 3 "$D/out")"; fi
# The libtcc tier reaches the shared library through the program (-Wl,-u,tcc_new -ltcc).
if LD_LIBRARY_PATH=$D/usr/lib KFORGE_JIT=tcc "$D/prog" >"$D/out_t" 2>&1 && cmp -s "$D/out" "$D/out_t"; then ok; else
    bad "the shared program has no libtcc engine: $(tail -n 3 "$D/out_t")"; fi
# A program without libtcc (as Python's ctypes loads it) still links and runs, on cc code; the
# tcc engine then fails with a message that says why.
# shellcheck disable=SC2046
if cc -o "$D/prog_n" examples/api_example.c $(pc --cflags) -L"$D/usr/lib" -lkforge 2>"$D/err"; then ok; else
    bad "cc against the install without libtcc: $(head -n 5 "$D/err")"; fi
if LD_LIBRARY_PATH=$D/usr/lib "$D/prog_n" >"$D/out_n" 2>&1 && cmp -s "$D/out" "$D/out_n"; then ok; else
    bad "the program without libtcc failed or printed otherwise: $(tail -n 3 "$D/out_n")"; fi
if ! LD_LIBRARY_PATH=$D/usr/lib KFORGE_JIT=tcc "$D/prog_n" >"$D/out_n" 2>&1 &&
    grep -q "libtcc engine is not in this process" "$D/out_n"; then ok; else
    bad "KFORGE_JIT=tcc without libtcc: $(tail -n 3 "$D/out_n")"; fi
# Static: libkforge.a and the private libraries pkg-config lists.
# shellcheck disable=SC2046
if cc -o "$D/prog_s" examples/api_example.c $(pc --cflags) "$D/usr/lib/libkforge.a" \
    $(pc --static --libs-only-l | sed 's/-lkforge//') 2>"$D/err"; then ok; else
    bad "cc against the install (static): $(head -n 5 "$D/err")"; fi
if ldd "$D/prog_s" 2>/dev/null | grep -q libkforge; then bad "the static program needs libkforge.so"; else ok; fi
if "$D/prog_s" >"$D/out_s" 2>&1 && cmp -s "$D/out" "$D/out_s"; then ok; else
    bad "the static program failed or printed otherwise: $(tail -n 3 "$D/out_s")"; fi
# The man page is the help texts.
if head -n 1 "$D/usr/share/man/man1/kforge.1" | grep -q '^\.TH KFORGE 1' &&
    grep -q '^\.SH "KFORGE EIGSH"' "$D/usr/share/man/man1/kforge.1" &&
    grep -qF -- "--block-sparse EPS[:CUTOFF]" "$D/usr/share/man/man1/kforge.1"; then ok; else
    bad "the man page lacks its sections or the help texts"; fi
if make -s uninstall DESTDIR="$D" PREFIX=/usr >"$D/log" 2>&1; then ok; else bad "make uninstall: $(tail -n 5 "$D/log")"; fi
left=$(find "$D/usr" -type f -o -type l | head -n 5)
if [ -z "$left" ]; then ok; else bad "make uninstall left: $left"; fi
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
