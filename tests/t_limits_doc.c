/* t_limits_doc.c -- docs/formulas.md's table of limits says what the code enforces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"

/* The row "| what | value |" reads value. */
static void row_is(const char *doc, const char *what, long long value)
{
    char pat[160];
    snprintf(pat, sizeof pat, "| %s | %lld |", what, value);
    KFT_CHECKF(strstr(doc, pat) != NULL, "docs/formulas.md lacks the row '%s'", pat);
}

KFT_TEST(docs_formulas_limits_match_code)
{
    char *doc = kft_read_file("docs/formulas.md");
    KFT_CHECK(doc != NULL);
    if (!doc)
        return;
    row_is(doc, "aliases", KFC_MAX_ALIASES);
    row_is(doc, "nodes in one program", KFC_MAX_NODES);
    row_is(doc, "nesting depth (parentheses, calls, unary operators)", KFC_MAX_DEPTH);
    row_is(doc, "dim of any node", KFC_MAX_DIM);
    row_is(doc, "sum of the dims of all nodes (values per pair of points)", KFC_MAX_TOTAL_DIM);
    row_is(doc, "K of KMin-like reductions", KFC_MAX_K);
    row_is(doc, "n*m of SoftDTW_SqDist and GradSoftDTW_SqDist (sequences of dims n, m: the DP table of one pair)",
           KFC_SOFTDTW_MAX_CELLS);
    free(doc);
}
