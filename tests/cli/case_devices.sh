# case_devices.sh -- kforge devices: one line per GPU where the NVIDIA driver
# sees one, else exit 1 with the reason on stderr; its help; the toolkit's
# stub libcuda named as such.
run "$BIN" devices --help
expect "devices --help" 0
expect_out "devices --help: usage" "Usage: kforge devices"
expect_out "devices --help: the line format" "ORDINAL: NAME, cc MAJOR.MINOR"
run "$BIN" help devices
expect "help devices" 0
expect_out "help devices: usage" "Usage: kforge devices"
run "$BIN" help
expect_out "help lists devices" "kforge devices"
run "$BIN" devices extra
expect "devices with an argument" 2 "unexpected argument 'extra'"
run "$BIN" devices
if [ "$rc" = 0 ]; then
    # A GPU machine: every stdout line describes a device, numbered from 0.
    n=$(wc -l <"$T/out")
    line='^[0-9]+: .+, cc [0-9]+\.[0-9]+, [0-9]+ SMs, [0-9.]+ GiB \([0-9.]+ GiB free\), '
    line="$line"'[0-9]+ KiB smem/block, driver [0-9]+\.[0-9]+$'
    if [ "$n" -ge 1 ] && [ -z "$(grep -vE "$line" "$T/out")" ]; then
        pass
    else
        fail "devices: unexpected output: $(head -n 3 "$T/out")"
    fi
    if head -n 1 "$T/out" | grep -q '^0: '; then pass; else fail "devices: the first line is not device 0"; fi
else
    expect "devices without a GPU" 1 "kforge devices: no CUDA device: "
    if [ -s "$T/out" ]; then fail "devices without a GPU wrote to stdout"; else pass; fi
    # The CUDA toolkit's stub libcuda, when it is here and no driver is, is named as such.
    stubs=/usr/local/cuda/lib64/stubs
    if [ -f "$stubs/libcuda.so" ] && grep -qF "libcuda.so.1 cannot be loaded" "$T/err"; then
        run env LD_LIBRARY_PATH="$stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BIN" devices
        expect "devices with the stub libcuda" 1 "stub libcuda: no NVIDIA driver is installed"
    fi
fi
