/* cmd_gen.c -- `kforge gen`: the built-in point clouds (kf_gen_*: the tutorials' spiral and
 * Swiss roll, the clouds of `kforge eigsh --gen`) written as .npy, or as text, so they can be
 * plotted or checked elsewhere. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/npy.h"

void kfcli_help_gen(FILE *f)
{
    fputs("Usage: kforge gen spiral:N[:SEED] | swissroll:N[:SEED] [-o X.npy] [--dtype T]\n"
          "\n"
          "Writes the built-in point clouds, the very points `kforge eigsh --gen` solves on:\n"
          "spiral (2-D, the tutorial's noisy spiral) or swissroll (3-D), N points (1 to 1e8),\n"
          "deterministic for a SEED (default 1). With -o, an (N, d) .npy file (written\n"
          "atomically); without, one point per line on stdout, coordinates separated by spaces.\n"
          "\n"
          "Options:\n"
          "  -o, --output X.npy   the points, (N, d) of the dtype\n"
          "  --dtype T            float64 (default: the generator's own values) or float32\n"
          "  -h, --help           this text\n"
          "\n"
          "Exit status: 0 ok, 1 runtime failure (out of memory, cannot write), 2 usage.\n"
          "\n"
          "Examples:\n"
          "  kforge gen swissroll:100000 -o roll.npy\n"
          "  kforge gen spiral:1000:7 | head\n",
          f);
}

static int usage(const char *fmt, const char *arg)
{
    fputs("kforge gen: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(see 'kforge help gen')\n", stderr);
    return KFCLI_EXIT_USAGE;
}

int kfcli_gen(int argc, char **argv)
{
    const char *spec = NULL, *out = NULL;
    int f32 = 0;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            kfcli_help_gen(stdout);
            return KFCLI_EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--dtype")) {
            if (k + 1 >= argc)
                return usage("%s needs a value", a);
            const char *v = argv[++k];
            if (strcmp(a, "--dtype") != 0) {
                if (!*v)
                    return usage("%s needs a file name", a);
                out = v;
            } else if (!strcmp(v, "float32") || !strcmp(v, "float64")) {
                f32 = !strcmp(v, "float32");
            } else {
                return usage("--dtype must be float32 or float64, not '%s'", v);
            }
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (spec) {
            return usage("unexpected argument '%s' (one cloud at a time)", a);
        } else {
            spec = a;
        }
    }
    if (!spec)
        return usage("missing the cloud: spiral:N[:SEED] or swissroll:N[:SEED]%s", "");
    kf_gen g;
    char err[KFCLI_ERRLEN];
    if (kf_gen_parse(spec, &g, err, sizeof err) != KF_OK)
        return usage("%s", err);
    int d = kf_gen_dim(g.kind);
    double *x = malloc((size_t)g.n * (size_t)d * sizeof *x);
    if (!x) {
        fprintf(stderr, "kforge gen: out of memory for %lld points\n", (long long)g.n);
        return KFCLI_EXIT_RUNTIME;
    }
    kf_gen_points(&g, x);
    int64_t cnt = g.n * d;
    if (!out) {
        for (int64_t i = 0; i < g.n; i++)
            for (int c = 0; c < d; c++)
                printf(f32 ? "%.9g%c" : "%.17g%c", f32 ? (double)(float)x[i * d + c] : x[i * d + c],
                       c + 1 < d ? ' ' : '\n');
        free(x);
        return KFCLI_EXIT_OK;
    }
    kfcli_npy a = {.type = f32 ? KFCLI_NPY_F4 : KFCLI_NPY_F8, .ndim = 2,
                   .shape = {g.n, d}, .count = cnt, .data = x};
    if (f32) {
        float *y = malloc((size_t)cnt * sizeof *y);
        if (!y) {
            free(x);
            fprintf(stderr, "kforge gen: out of memory for %lld points\n", (long long)g.n);
            return KFCLI_EXIT_RUNTIME;
        }
        for (int64_t q = 0; q < cnt; q++)
            y[q] = (float)x[q];
        a.data = y;
    }
    int rc = kfcli_npy_write(out, &a, err, sizeof err);
    if (a.data != x)
        free(a.data);
    free(x);
    if (rc != 0) {
        fprintf(stderr, "kforge gen: %s\n", err);
        return KFCLI_EXIT_RUNTIME;
    }
    return KFCLI_EXIT_OK;
}
