/* blocks.c -- kf_blocks, a block-sparsity pattern with its own storage: built from a cluster mask or kept pairs, transposed, viewed. */
#include <stdlib.h>
#include <string.h>

#include "runtime/sparse/ranges.h"

/* Both triples (kforge.h, kf_ranges). Every array is malloc'd, never NULL
 * (one spare byte when empty), and owned here. */
struct kf_blocks {
    int64_t nci, nredj, ncj, nredi;
    int64_t *ranges_i, *slices_i, *redranges_j;
    int64_t *ranges_j, *slices_j, *redranges_i;
};

static void *xmalloc(int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / size)
        return NULL;
    return malloc(count ? (size_t)count * size : 1);
}

static int64_t *dup64(const int64_t *a, int64_t n)
{
    int64_t *b = xmalloc(n, sizeof *b);
    if (b && n)
        memcpy(b, a, (size_t)n * sizeof *b);
    return b;
}

void kf_blocks_free(kf_blocks *b)
{
    if (!b)
        return;
    free(b->ranges_i);
    free(b->slices_i);
    free(b->redranges_j);
    free(b->ranges_j);
    free(b->slices_j);
    free(b->redranges_i);
    free(b);
}

void kf_blocks_view(const kf_blocks *b, kf_ranges *v)
{
    if (!v)
        return;
    if (!b) {
        memset(v, 0, sizeof *v);
        return;
    }
    *v = (kf_ranges){b->nci, b->ranges_i, b->slices_i, b->nredj, b->redranges_j,
                     b->ncj, b->ranges_j, b->slices_j, b->nredi, b->redranges_i};
}

/* Where the kept inner clusters of each outer cluster come from: a dense
 * mask (read by rows, or by columns for the mirror triple) or CSR lists. */
typedef struct kept_src {
    const uint8_t *mask;
    int64_t nci, ncj;
    int by_col;
    const int64_t *ptr, *idx;
} kept_src;

/* The kept inner clusters of outer cluster a, ascending: a pointer into the
 * CSR lists, or buf filled from the mask. */
static int64_t kept_list(const kept_src *s, int64_t a, int64_t *buf, const int64_t **list)
{
    if (!s->mask) {
        *list = s->idx + s->ptr[a];
        return s->ptr[a + 1] - s->ptr[a];
    }
    int64_t n = 0;
    if (s->by_col) {
        for (int64_t i = 0; i < s->nci; i++)
            if (s->mask[i * s->ncj + a])
                buf[n++] = i;
    } else {
        const uint8_t *row = s->mask + a * s->ncj;
        for (int64_t j = 0; j < s->ncj; j++)
            if (row[j])
                buf[n++] = j;
    }
    *list = buf;
    return n;
}

/* One triple: a copy of the outer ranges, slices, and the reduced inner
 * ranges, where kept inner clusters whose ranges touch (the next starts
 * where the run so far ends) become one range: the same pairs in the same
 * order, in fewer and longer loops. Empty outer clusters get empty lists
 * (they have no rows) and empty inner ranges are left out. */
static int build_triple(kf_ctx *ctx, const char *who, const int64_t *outer, int64_t nouter,
                        const int64_t *inner, int64_t ninner, const kept_src *src,
                        int64_t **ranges_out, int64_t **slices_out, int64_t **red_out,
                        int64_t *nred_out)
{
    int64_t *ranges = dup64(outer, 2 * nouter), *slices = xmalloc(nouter, sizeof *slices);
    int64_t *buf = src->mask ? xmalloc(ninner, sizeof *buf) : NULL;
    int64_t cap = 64, n = 0;
    int64_t *red = xmalloc(2 * cap, sizeof *red);
    if (!ranges || !slices || !red || (src->mask && !buf))
        goto nomem;
    for (int64_t a = 0; a < nouter; a++) {
        const int64_t *list;
        int64_t m = outer[2 * a + 1] > outer[2 * a] ? kept_list(src, a, buf, &list) : 0;
        int64_t first = n; /* this cluster's ranges start here */
        for (int64_t q = 0; q < m; q++) {
            int64_t s = inner[2 * list[q]], e = inner[2 * list[q] + 1];
            if (e <= s)
                continue;
            if (n > first && red[2 * n - 1] == s) {
                red[2 * n - 1] = e;
                continue;
            }
            if (n == cap) {
                /* cap ranges hold 2 cap values; double the ranges. */
                int64_t *bigger = (uint64_t)cap <= SIZE_MAX / (4 * sizeof *red)
                                      ? realloc(red, (size_t)cap * 4 * sizeof *red)
                                      : NULL;
                if (!bigger)
                    goto nomem;
                red = bigger;
                cap *= 2;
            }
            red[2 * n] = s;
            red[2 * n + 1] = e;
            n++;
        }
        slices[a] = n;
    }
    free(buf);
    *ranges_out = ranges;
    *slices_out = slices;
    *red_out = red;
    *nred_out = n;
    return KF_OK;
nomem:
    free(ranges);
    free(slices);
    free(buf);
    free(red);
    return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for the pattern (%lld x %lld clusters)",
                     who, (long long)nouter, (long long)ninner);
}

static kf_blocks *build(kf_ctx *ctx, const char *who, const int64_t *ranges_i, int64_t nci,
                        const int64_t *ranges_j, int64_t ncj, const kept_src *rows,
                        const kept_src *cols)
{
    kf_blocks *b = calloc(1, sizeof *b);
    if (!b) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    b->nci = nci;
    b->ncj = ncj;
    if (build_triple(ctx, who, ranges_i, nci, ranges_j, ncj, rows, &b->ranges_i, &b->slices_i,
                     &b->redranges_j, &b->nredj) != KF_OK ||
        build_triple(ctx, who, ranges_j, ncj, ranges_i, nci, cols, &b->ranges_j, &b->slices_j,
                     &b->redranges_i, &b->nredi) != KF_OK) {
        kf_blocks_free(b);
        return NULL;
    }
    return b;
}

/* Cluster ranges as from_mask needs them: each [start, end) with 0 <= start <= end. */
static int check_cluster_ranges(kf_ctx *ctx, const char *who, const char *name, const int64_t *r,
                                int64_t n)
{
    if (n < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %lld %s, expected >= 0", who, (long long)n, name);
    if (n > 0 && !r)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL with %lld clusters", who, name,
                         (long long)n);
    for (int64_t k = 0; k < n; k++)
        if (r[2 * k] < 0 || r[2 * k] > r[2 * k + 1])
            return kfr_error(ctx, KF_ERR_ARG, "%s: %s[%lld] = [%lld, %lld) is not a range", who,
                             name, (long long)k, (long long)r[2 * k], (long long)r[2 * k + 1]);
    return KF_OK;
}

kf_blocks *kf_blocks_from_mask(kf_ctx *ctx, const int64_t *ranges_i, int64_t nci,
                               const int64_t *ranges_j, int64_t ncj, const uint8_t *mask)
{
    static const char who[] = "kf_blocks_from_mask";
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    int64_t cells;
    if (check_cluster_ranges(ctx, who, "ranges_i", ranges_i, nci) != KF_OK ||
        check_cluster_ranges(ctx, who, "ranges_j", ranges_j, ncj) != KF_OK)
        return NULL;
    if (__builtin_mul_overflow(nci, ncj, &cells) || (uint64_t)cells > SIZE_MAX) {
        kfr_error(ctx, KF_ERR_ARG, "%s: a %lld x %lld mask overflows the address space", who,
                  (long long)nci, (long long)ncj);
        return NULL;
    }
    if (cells > 0 && !mask) {
        kfr_error(ctx, KF_ERR_ARG, "%s: mask is NULL with %lld x %lld clusters", who,
                  (long long)nci, (long long)ncj);
        return NULL;
    }
    kept_src rows = {.mask = mask, .nci = nci, .ncj = ncj, .by_col = 0};
    kept_src cols = {.mask = mask, .nci = nci, .ncj = ncj, .by_col = 1};
    return build(ctx, who, ranges_i, nci, ranges_j, ncj, &rows, &cols);
}

kf_blocks *kfr_blocks_from_csr(kf_ctx *ctx, const char *who, const int64_t *ranges_i, int64_t nci,
                               const int64_t *ranges_j, int64_t ncj, const int64_t *rowptr,
                               const int64_t *cols)
{
    /* The mirror lists: a counting sort of the pairs by column, stable, so
     * each column lists its rows in ascending order. */
    int64_t npairs = rowptr[nci];
    int64_t *tptr = xmalloc(ncj + 1, sizeof *tptr), *tidx = xmalloc(npairs, sizeof *tidx);
    kf_blocks *b = NULL;
    if (!tptr || !tidx) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %lld kept pairs", who,
                  (long long)npairs);
        goto done;
    }
    memset(tptr, 0, (size_t)(ncj + 1) * sizeof *tptr);
    for (int64_t q = 0; q < npairs; q++)
        tptr[cols[q] + 1]++;
    for (int64_t c = 0; c < ncj; c++)
        tptr[c + 1] += tptr[c];
    for (int64_t a = 0; a < nci; a++)
        for (int64_t q = rowptr[a]; q < rowptr[a + 1]; q++)
            tidx[tptr[cols[q]]++] = a;
    /* tptr[c] now holds the end of column c: shift back to starts. */
    for (int64_t c = ncj; c > 0; c--)
        tptr[c] = tptr[c - 1];
    tptr[0] = 0;
    kept_src r = {.ptr = rowptr, .idx = cols}, t = {.ptr = tptr, .idx = tidx};
    b = build(ctx, who, ranges_i, nci, ranges_j, ncj, &r, &t);
done:
    free(tptr);
    free(tidx);
    return b;
}

kf_blocks *kf_blocks_transpose(kf_ctx *ctx, const kf_blocks *b)
{
    static const char who[] = "kf_blocks_transpose";
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    if (!b) {
        kfr_error(ctx, KF_ERR_ARG, "%s: the pattern is NULL", who);
        return NULL;
    }
    kf_blocks *t = calloc(1, sizeof *t);
    if (!t) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    t->nci = b->ncj;
    t->nredj = b->nredi;
    t->ncj = b->nci;
    t->nredi = b->nredj;
    t->ranges_i = dup64(b->ranges_j, 2 * b->ncj);
    t->slices_i = dup64(b->slices_j, b->ncj);
    t->redranges_j = dup64(b->redranges_i, 2 * b->nredi);
    t->ranges_j = dup64(b->ranges_i, 2 * b->nci);
    t->slices_j = dup64(b->slices_i, b->nci);
    t->redranges_i = dup64(b->redranges_j, 2 * b->nredj);
    if (!t->ranges_i || !t->slices_i || !t->redranges_j || !t->ranges_j || !t->slices_j ||
        !t->redranges_i) {
        kf_blocks_free(t);
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    return t;
}
