/*
 * fuzz_parse.c -- libFuzzer target: the formula front end on arbitrary text.
 *
 * Input: lines; the first is the formula, up to 8 more are aliases. Runs
 * parse, check, simplify and print, then the whole public kf_compile (Sum,
 * libtcc). Must never crash, leak or hang; aborts on what can only be a
 * kforge bug: a JIT or internal failure on a formula the checker accepted, or
 * a canonical form that does not reprint as itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "kforge.h"

#define MAX_LINES 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The canonical form of a checked formula parses back to itself (unless that
 * hits a limit: chains written flat print nested). */
static void check_roundtrip(const char *canon)
{
    kfc_prog p;
    kfc_diag d;
    kfc_prog_init(&p);
    int st = kfc_parse(&p, canon, NULL, NULL, 0, &d);
    if (!st)
        st = kfc_check(&p, canon, NULL, NULL, 0, &d);
    if (!st)
        st = kfc_simplify(&p, &d);
    if (st && st != KF_ERR_LIMIT && st != KF_ERR_NOMEM) {
        fprintf(stderr, "canonical form does not reparse: %s\n  %s\n", canon, d.msg);
        abort();
    }
    if (!st) {
        char *again = kfc_print(&p, p.root);
        if (again && strcmp(again, canon) != 0) {
            fprintf(stderr, "canonical form not a fixed point:\n  %s\n  %s\n", canon, again);
            abort();
        }
        free(again);
    }
    kfc_prog_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kf_ctx *ctx; /* one context for the whole run: threads are costly to start */
    char *lines[MAX_LINES];
    int n = 0;
    size_t at = 0;
    while (n < MAX_LINES && at <= size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        if (!(lines[n] = malloc(len + 1)))
            break;
        memcpy(lines[n], data + at, len);
        lines[n++][len] = 0; /* an embedded NUL simply ends that line early */
        at += len + 1;
        if (!nl)
            break;
    }
    if (n == 0)
        return 0;
    const char *const *aliases = (const char *const *)lines + 1;

    kfc_prog p;
    kfc_diag d;
    kfc_prog_init(&p);
    int st = kfc_parse(&p, lines[0], NULL, aliases, n - 1, &d);
    if (!st)
        st = kfc_check(&p, lines[0], NULL, aliases, n - 1, &d);
    if (!st)
        st = kfc_simplify(&p, &d);
    if (st == KF_ERR_INTERNAL) {
        fprintf(stderr, "internal error: %s\n", d.msg);
        abort();
    }
    if (!st) {
        char *canon = kfc_print(&p, p.root), *dump = kfc_dump(&p);
        if (canon)
            check_roundtrip(canon);
        free(canon);
        free(dump);
    }
    kfc_prog_free(&p);

    if (!ctx) {
        kf_options o;
        kf_options_init(&o);
        o.threads = 1;
        ctx = kf_new(&o);
    }
    if (ctx && st == KF_OK) {
        kf_compile_opts co;
        kf_compile_opts_init(&co);
        co.jit = KF_JIT_TCC;
        kf_kernel *k = kf_compile(ctx, lines[0], aliases, n - 1, "Sum", 1, size % 2 ? KF_FLOAT32 : KF_FLOAT64,
                                  &co);
        int kst = k ? KF_OK : kf_status_of(ctx);
        if (kst == KF_ERR_JIT || kst == KF_ERR_INTERNAL) {
            fprintf(stderr, "kf_compile: %s: %s\n", kf_status_name(kst), kf_errmsg(ctx));
            abort();
        }
        kf_kernel_free(k);
    }
    for (int k = 0; k < n; k++)
        free(lines[k]);
    return 0;
}
