# case_docs.sh -- the README's C API example is examples/api_example.c verbatim
# and runs; the README shows the CLI example that help prints.
if [ -f "$ROOT/README.md" ] && [ -f "$ROOT/examples/api_example.c" ]; then
    awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$ROOT/README.md" >"$T/readme_api.c"
    if cmp -s "$T/readme_api.c" "$ROOT/examples/api_example.c"; then pass; else
        fail "README.md's C block differs from examples/api_example.c"
    fi
    if grep -qF "kforge eval 'Exp(-SqDist(x,y)/IntCst(2))*b'" "$ROOT/README.md"; then pass; else
        fail "README.md lacks the CLI example"
    fi
else
    fail "README.md or examples/api_example.c missing"
fi
ex="$(dirname "$BIN")/examples/api_example"
if [ -x "$ex" ]; then
    run "$ex"
    expect "api_example runs" 0
    expect_out "api_example a[0]" "a[0] = 2.220498"
    expect_out "api_example a[1]" "a[1] = 1.628280"
else
    skip "api_example" "$ex is not built"
fi
demo="$(dirname "$BIN")/examples/gauss_demo"
if [ -x "$demo" ]; then
    run "$demo" 400
    expect "gauss_demo (small)" 0
    expect_out "gauss_demo reports ns/pair" "ns/pair"
    run "$demo" 5
    expect "gauss_demo: bad size" 2 "usage: gauss_demo"
else
    skip "gauss_demo" "$demo is not built"
fi
