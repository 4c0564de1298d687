# case_keops.sh -- make test-keops' pieces, without pykeops: the runner parses, the driver
# compiles, and the driver reads every case of the corpus and draws its inputs (--parse).
if sh -n "$ROOT/tests/keops/run.sh"; then pass; else fail "tests/keops/run.sh has a syntax error"; fi
kpy=""
for c in python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1; then kpy=$c; break; fi
done
if [ -z "$kpy" ]; then
    skip keops-driver "no python3"
else
    # py_compile into $T: no __pycache__ left in the tree.
    if "$kpy" -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' \
        "$ROOT/tests/keops/compare.py" "$T/compare.pyc" 2>"$T/err"; then
        pass
    else
        fail "tests/keops/compare.py does not compile"
    fi
    npy=""
    for c in "$kpy" python3 /usr/bin/python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy' 2>/dev/null; then npy=$c; break; fi
    done
    if [ -z "$npy" ]; then
        skip keops-corpus "no python3 with numpy"
    elif PYTHONDONTWRITEBYTECODE=1 "$npy" "$ROOT/tests/keops/compare.py" --parse \
            "$ROOT/tests/keops/corpus.txt" >"$T/out" 2>"$T/err" && grep -q '^[0-9][0-9]* cases$' "$T/out"; then
        pass
    else
        fail "tests/keops/compare.py --parse tests/keops/corpus.txt: $(tail -n 1 "$T/err")"
    fi
fi
