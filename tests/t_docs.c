/* t_docs.c -- docs/formulas.md's operation list against compiler/ops.def, both ways (each op
 * with its arity and its DOC line; no entry for an op that does not exist), and its reductions
 * against compiler/reductions.def. The list is written by hand and checked here, not generated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"

/* The arity as docs/formulas.md writes it: "1 formula, 2 integers", "3 integers", "literal". */
static void arity_text(const kfc_opinfo *oi, char *dst, size_t cap)
{
    if (oi->nargs == 0 && oi->nints == 0) {
        snprintf(dst, cap, "literal");
        return;
    }
    char f[32] = "", i[32] = "";
    if (oi->nargs)
        snprintf(f, sizeof f, "%d formula%s", oi->nargs, oi->nargs > 1 ? "s" : "");
    if (oi->nints)
        snprintf(i, sizeof i, "%d integer%s", oi->nints, oi->nints > 1 ? "s" : "");
    snprintf(dst, cap, "%s%s%s", f, oi->nargs && oi->nints ? ", " : "", i);
}

KFT_TEST(docs_formulas_cover_tables)
{
    char *doc = kft_read_file("docs/formulas.md");
    KFT_CHECK(doc != NULL);
    if (!doc)
        return;
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        char pat[96], ar[64];
        /* Each op has its own entry, "- **Name** (arity; ...)", with its DOC line verbatim. */
        snprintf(pat, sizeof pat, "- **%s** (", kfc_op_info[op].name);
        const char *at = strstr(doc, pat);
        KFT_CHECKF(at != NULL, "docs/formulas.md has no entry for %s", kfc_op_info[op].name);
        arity_text(&kfc_op_info[op], ar, sizeof ar);
        KFT_CHECKF(at && strncmp(at + strlen(pat), ar, strlen(ar)) == 0 && at[strlen(pat) + strlen(ar)] == ';',
                   "docs/formulas.md: %s should read (%s; ...)", kfc_op_info[op].name, ar);
        KFT_CHECKF(strstr(doc, kfc_op_info[op].doc) != NULL, "docs/formulas.md: DOC of %s differs from ops.def",
                   kfc_op_info[op].name);
    }
    for (int r = 0; r < KFC_RED_COUNT; r++) {
        char pat[96];
        /* Its row in the reduction table, and its DOC line. */
        snprintf(pat, sizeof pat, "| `%s` |", kfc_red_info[r].name);
        KFT_CHECKF(strstr(doc, pat) != NULL, "docs/formulas.md has no table row for %s", kfc_red_info[r].name);
        snprintf(pat, sizeof pat, "- `%s`: `", kfc_red_info[r].name);
        const char *at = strstr(doc, pat);
        KFT_CHECKF(at && strncmp(at + strlen(pat), kfc_red_info[r].doc, strlen(kfc_red_info[r].doc)) == 0,
                   "docs/formulas.md: DOC of reduction %s differs from reductions.def", kfc_red_info[r].name);
    }
    KFT_CHECK(strstr(doc, "## Accuracy of float32 sums") != NULL);
    free(doc);
}

/* The other way: every entry of the "## Operations" section names an op of ops.def, once. */
KFT_TEST(docs_formulas_no_unknown_ops)
{
    char *doc = kft_read_file("docs/formulas.md");
    KFT_CHECK(doc != NULL);
    if (!doc)
        return;
    const char *sec = strstr(doc, "\n## Operations\n");
    KFT_CHECK(sec != NULL);
    if (!sec) {
        free(doc);
        return;
    }
    const char *end = strstr(sec + 1, "\n## ");
    if (!end)
        end = sec + strlen(sec);
    int seen[KFC_OP_COUNT] = {0}, entries = 0;
    for (const char *l = strstr(sec, "\n- **"); l && l < end; l = strstr(l + 1, "\n- **")) {
        const char *name = l + 5, *close = strstr(name, "**");
        if (!close || close > end)
            break;
        size_t len = (size_t)(close - name);
        int op = -1;
        for (int k = 0; k < KFC_OP_COUNT; k++)
            if (strlen(kfc_op_info[k].name) == len && memcmp(kfc_op_info[k].name, name, len) == 0)
                op = k;
        KFT_CHECKF(op >= 0, "docs/formulas.md documents '%.*s', which is not in ops.def", (int)len, name);
        if (op >= 0) {
            KFT_CHECKF(!seen[op], "docs/formulas.md documents %s twice", kfc_op_info[op].name);
            seen[op] = 1;
        }
        entries++;
    }
    KFT_CHECKF(entries == KFC_OP_COUNT, "docs/formulas.md has %d operation entries, ops.def %d rows", entries,
               KFC_OP_COUNT);
    free(doc);
}
