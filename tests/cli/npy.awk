# npy.awk -- encodes numbers as little-endian binary for the CLI tests' .npy
# files, without numpy or a C helper. Input: whitespace-separated values
# (decimal numbers, nan, inf, -inf), or, with -v count=COUNT -v seed=S, COUNT
# pseudo-random values in [-1, 1) from a fixed LCG. Output: printf(1) octal
# escapes ("\000\360..."), 64 values a line, for `printf "$line"`.
# -v descr='<f8' | '<f4' | '<i8'. Subnormal floats are not supported.

function oct(b) { return sprintf("\\%03o", b) }

function enc(tok,   x, sign, ax, e, m, fr, out, i, b, bias, r, neg) {
    out = ""
    if (descr == "<i8") {
        x = tok + 0
        neg = x < 0
        if (neg) x = -x - 1  # two's complement: the bytes of -x-1, inverted
        for (i = 0; i < 8; i++) {
            b = x % 256
            x = (x - b) / 256
            out = out oct(neg ? 255 - b : b)
        }
        return out
    }
    if (tok ~ /^[+-]?nan$/)
        return descr == "<f4" ? "\\000\\000\\300\\177" : "\\000\\000\\000\\000\\000\\000\\370\\177"
    sign = (tok ~ /^-/) ? 1 : 0
    if (tok ~ /^[+-]?inf$/) {
        if (descr == "<f4") return "\\000\\000\\200" oct(127 + 128 * sign)
        return "\\000\\000\\000\\000\\000\\000\\360" oct(127 + 128 * sign)
    }
    x = tok + 0
    ax = x < 0 ? -x : x
    if (ax == 0) {
        if (descr == "<f4") return "\\000\\000\\000" oct(128 * sign)
        return "\\000\\000\\000\\000\\000\\000\\000" oct(128 * sign)
    }
    e = 0
    m = ax
    while (m >= 2) { m /= 2; e++ }
    while (m < 1) { m *= 2; e-- }
    if (descr == "<f4") {
        bias = e + 127
        r = int((m - 1) * 8388608 + 0.5)
        if (r == 8388608) { r = 0; bias++ }
        out = oct(r % 256) oct(int(r / 256) % 256) oct(int(r / 65536) + (bias % 2) * 128)
        return out oct(int(bias / 2) + 128 * sign)
    }
    bias = e + 1023
    fr = (m - 1) * 4503599627370496  # exact: m has 52 fraction bits
    for (i = 0; i < 6; i++) {
        b = fr % 256
        fr = (fr - b) / 256
        out = out oct(b)
    }
    return out oct(fr + (bias % 16) * 16) oct(int(bias / 16) + 128 * sign)
}

function emit(tok) {
    line = line enc(tok)
    if (++n % 64 == 0) { print line; line = "" }
}

BEGIN {
    if (count != "") {
        s = seed % 2147483646 + 1  # Park-Miller: products stay below 2^53, exact
        for (k = 0; k < count; k++) {
            s = (s * 16807) % 2147483647
            emit(sprintf("%.6f", 2 * s / 2147483647 - 1))
        }
        if (line != "") print line
        exit
    }
}
{ for (f = 1; f <= NF; f++) emit($f) }
END { if (count == "" && line != "") print line }
