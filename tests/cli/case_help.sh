# case_help.sh -- --version, help texts, dispatch errors.
run "$BIN" --version
expect "--version" 0
expect_out "--version prints the version" "kforge 0."
run "$BIN" help
expect "help" 0
expect_out "help lists eval" "kforge eval FORMULA"
expect_out "help has an example" "Example"
for c in eval check; do
    run "$BIN" help $c
    expect "help $c" 0
    expect_out "help $c: usage" "Usage: kforge $c"
    expect_out "help $c: example" "Example"
    run "$BIN" $c --help
    expect "$c --help" 0
    expect_out "$c --help: usage" "Usage: kforge $c"
done
run "$BIN" help eval
expect_out "help eval: unused indices" "does not use is not read"
run "$BIN" help frobnicate
expect "help of an unknown command" 2 "no command 'frobnicate'"
run "$BIN"
expect "no command" 2 "Usage"
run "$BIN" frobnicate
expect "unknown command" 2 "kforge: unknown command 'frobnicate'"
