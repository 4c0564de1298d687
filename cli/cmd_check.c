/* cmd_check.c -- `kforge check`: canonical form, dims, variable table, engine, generated C. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void kfcli_help_check(FILE *f)
{
    fputs(
        "Usage: kforge check FORMULA [--alias A]... [--reduction R [--axis 0|1] [-K N]\n"
        "                    [--formula2 F]] [--dtype float32|float64] [--emit c|cuda|ptx]\n"
        "\n"
        "Parses, checks and simplifies FORMULA without running it, and prints its canonical\n"
        "form (formula2's too), the reduction and output dims, the variable table (index,\n"
        "alias names, category, dim) and the engine that would run it. Errors are reported\n"
        "as by eval, with the offending line and a caret under the column.\n"
        "\n"
        "Options:\n"
        "  -a, --alias A        a variable name, e.g. x=Vi(0,3), y=Vj(1,3), p=Pm(2,1), x=Vi(3)\n"
        "  -r, --reduction R    also check a reduction (see 'kforge help eval'); --axis\n"
        "                       defaults to 1\n"
        "  --axis 0|1, -K N, --formula2 F, --sum-scheme S, --jit E   as for eval\n"
        "  --dtype T            float32 or float64 (default float64)\n"
        "  --emit c             print only the generated C source: the whole reduction kernel\n"
        "                       when a reduction is given, else the formula function; with\n"
        "                       --jit cc the optimizing tier's source (what $CC compiles),\n"
        "                       otherwise libtcc's\n"
        "  --emit cuda          print the CUDA source of the whole reduction kernel (needs\n"
        "                       --reduction; docs/cuda.md)\n"
        "  --emit ptx           compile that source with NVRTC (loaded at run time; no GPU\n"
        "                       needed) for " KF_CUDA_DEFAULT_ARCH " and print the PTX\n"
        "  -v, --verbose        log the compile; --dump: the program after each pass\n"
        "  -h, --help           this text\n"
        "\n"
        "Exit status: 0 the formula is valid, 1 runtime failure, 2 usage or formula error.\n"
        "\n"
        "Example:\n"
        "  kforge check 'Exp(-SqDist(x,y)/IntCst(2))*b' --alias 'x=Vi(0,3)' \\\n"
        "      --alias 'y=Vj(1,3)' --alias 'b=Vj(2,1)' --reduction Sum --axis 1\n",
        f);
}

/* The variable index an alias names, or -1 if it cannot be read (the compile
 * has then reported it): "x=Vi(0,3)", "x=Vi(3)" (index = position k),
 * "x=Var(0,3,0)". Only for the table: the compiler's reading is the law. */
static int alias_index(const char *s, int k, size_t *name_len)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *name = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    *name_len = (size_t)(p - name);
    while (*p == ' ')
        p++;
    if (*name_len == 0 || *p++ != '=')
        return -1;
    while (*p == ' ')
        p++;
    while (isalpha((unsigned char)*p))
        p++;
    while (*p == ' ')
        p++;
    if (*p++ != '(')
        return -1;
    long v[3];
    int n = 0;
    while (n < 3) {
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        v[n] = 0;
        while (isdigit((unsigned char)*p) && v[n] < 100000)
            v[n] = v[n] * 10 + (*p++ - '0');
        n++;
        while (*p == ' ')
            p++;
        if (*p == ')')
            break;
        if (*p++ != ',')
            return -1;
    }
    if (n == 1)
        return k;
    return v[0] < 100000 ? (int)v[0] : -1;
}

static void print_report(const kfcli_args *a, kf_ctx *ctx, kf_kernel *k)
{
    printf("formula:    %s\n", kf_kernel_canonical(k));
    if (kf_kernel_canonical2(k))
        printf("formula2:   %s\n", kf_kernel_canonical2(k));
    printf("dtype:      %s\n", kf_dtype_name(kf_kernel_dtype(k)));
    printf("dim:        %lld\n", (long long)kf_kernel_formula_dim(k));
    if (kf_kernel_reduction(k)) {
        int axis = kf_kernel_axis(k);
        printf("reduction:  %s over %s (axis %d): %s output rows\n", kf_kernel_reduction(k),
               axis == 1 ? "j" : "i", axis, axis == 1 ? "M" : "N");
        printf("output:     %lld value%s and %lld ind%s per row\n",
               (long long)kf_kernel_out_dim(k), kf_kernel_out_dim(k) == 1 ? "" : "s",
               (long long)kf_kernel_index_dim(k), kf_kernel_index_dim(k) == 1 ? "ex" : "ices");
    }
    printf("variables:\n  index  cat  dim  names\n");
    static const char *const cats[3] = {"i", "j", "p"};
    int nargs = kf_kernel_nargs(k);
    for (int v = 0; v < nargs; v++) {
        int cat;
        int64_t dim;
        if (kf_kernel_var(k, v, &cat, &dim) != KF_OK)
            continue;
        if (cat < 0) {
            printf("  %-5d  -    -    (not used)\n", v);
            continue;
        }
        printf("  %-5d  %-3s  %-4lld", v, cat <= 2 ? cats[cat] : "?", (long long)dim);
        const char *sep = " ";
        for (int q = 0; q < a->naliases; q++) {
            size_t nl;
            if (alias_index(a->aliases[q], q, &nl) == v) {
                const char *s = a->aliases[q];
                while (*s == ' ')
                    s++;
                printf("%s%.*s", sep, (int)nl, s);
                sep = ", ";
            }
        }
        putchar('\n');
    }
    printf("engine:     %s (%d thread%s)\n", kf_kernel_engine(k), kf_threads(ctx),
           kf_threads(ctx) == 1 ? "" : "s");
}

/* --emit cuda / ptx: exit 2 when the kernel has no reduction or NVRTC
 * rejects the source (its log on stderr), 1 when NVRTC cannot be loaded. */
static int emit_cuda(kf_ctx *ctx, kf_kernel *k, int ptx)
{
    char *text = NULL;
    int st = kf_kernel_cuda_text(k, ptx, KF_CUDA_DEFAULT_ARCH, &text);
    if (st != KF_OK) {
        fprintf(stderr, "kforge check: %s\n", kf_errmsg(ctx));
        return st == KF_ERR_ARG || st == KF_ERR_JIT ? KFCLI_EXIT_USAGE : KFCLI_EXIT_RUNTIME;
    }
    fputs(text, stdout);
    if (*text && text[strlen(text) - 1] != '\n')
        putchar('\n');
    free(text);
    return 0;
}

/* --emit c --jit cc: the optimizing tier's source (exit 2 without a reduction). */
static int emit_opt(kf_ctx *ctx, kf_kernel *k)
{
    char *text = NULL;
    int st = kf_kernel_opt_text(k, &text);
    if (st != KF_OK) {
        fprintf(stderr, "kforge check: %s\n", kf_errmsg(ctx));
        return st == KF_ERR_ARG ? KFCLI_EXIT_USAGE : KFCLI_EXIT_RUNTIME;
    }
    fputs(text, stdout);
    if (*text && text[strlen(text) - 1] != '\n')
        putchar('\n');
    free(text);
    return 0;
}

int kfcli_check(int argc, char **argv)
{
    kfcli_args a;
    kf_ctx *ctx = NULL;
    kf_kernel *k = NULL;
    int rc = kfcli_args_parse(KFCLI_CMD_CHECK, "check", argc, argv, &a);
    if (rc || a.help) {
        if (!rc)
            kfcli_help_check(stdout);
        goto done;
    }
    if (!a.formula) {
        fputs("kforge check: missing FORMULA (see 'kforge help check')\n", stderr);
        rc = KFCLI_EXIT_USAGE;
        goto done;
    }
    if (a.nfiles > 0) {
        fprintf(stderr, "kforge check: unexpected argument '%s' after the formula\n", a.files[0]);
        rc = KFCLI_EXIT_USAGE;
        goto done;
    }
    if (!(ctx = kfcli_ctx_new(&a, &rc)))
        goto done;
    if (!(k = kfcli_compile(ctx, &a, a.dtype < 0 ? KF_FLOAT64 : (kf_dtype)a.dtype, &rc)))
        goto done;
    if (a.emit && strcmp(a.emit, "c")) {
        rc = emit_cuda(ctx, k, !strcmp(a.emit, "ptx"));
    } else if (a.emit && a.jit == KF_JIT_CC) {
        rc = emit_opt(ctx, k);
    } else if (a.emit) {
        const char *src = kf_kernel_source(k);
        if (!src) {
            fputs("kforge check: no generated source for this engine\n", stderr);
            rc = KFCLI_EXIT_RUNTIME;
            goto done;
        }
        fputs(src, stdout);
        if (*src && src[strlen(src) - 1] != '\n')
            putchar('\n');
    } else {
        print_report(&a, ctx, k);
    }
    if (fflush(stdout) != 0) {
        fputs("kforge check: cannot write to stdout\n", stderr);
        rc = KFCLI_EXIT_RUNTIME;
    }
done:
    kf_kernel_free(k);
    kf_free(ctx);
    kfcli_args_free(&a);
    return rc;
}
