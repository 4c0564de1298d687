/* t_docs.c -- docs/formulas.md names every operation and reduction, with ops.def's words. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"

KFT_TEST(docs_formulas_cover_tables)
{
    char *doc = kft_read_file("docs/formulas.md");
    KFT_CHECK(doc != NULL);
    if (!doc)
        return;
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        char pat[96];
        /* Each op has its own entry, "- **Name** (...)", with its DOC line verbatim. */
        snprintf(pat, sizeof pat, "- **%s** (", kfc_op_info[op].name);
        KFT_CHECKF(strstr(doc, pat) != NULL, "docs/formulas.md has no entry for %s", kfc_op_info[op].name);
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
