/* t_blocks.c -- block-sparsity patterns: from a mask, transpose, validation of kf_ranges, and the row tasks built from them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sparse/ranges.h"
#include "harness.h"
#include "testutil.h"

static kf_ctx *ctx1(void)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    return kf_new(&o);
}

static int has(const char *msg, const char *part)
{
    return strstr(msg, part) != NULL;
}

/* Random cluster sizes 0..maxsz (empty clusters included) as sorted ranges. */
static int64_t random_ranges(kft_rng *g, int64_t nc, int64_t maxsz, int64_t *r)
{
    int64_t s = 0;
    for (int64_t k = 0; k < nc; k++) {
        int64_t len = (int64_t)(kft_rng_next(g) % (uint64_t)(maxsz + 1));
        r[2 * k] = s;
        r[2 * k + 1] = s += len;
    }
    return s;
}

/* Cluster of row i in sorted ranges (or -1). */
static int64_t cluster_of(const int64_t *r, int64_t nc, int64_t i)
{
    for (int64_t k = 0; k < nc; k++)
        if (i >= r[2 * k] && i < r[2 * k + 1])
            return k;
    return -1;
}

/* Checks one triple against the mask by brute force: every (row, inner)
 * pair is visited exactly once if its clusters' bit is set and never
 * otherwise, inner indices come in ascending order, and the reduced ranges
 * are non-empty and fully merged (no two consecutive ones touch). Returns
 * the number of violations. */
static int check_triple(const int64_t *ranges, const int64_t *slices, const int64_t *red,
                        int64_t nc, const int64_t *oranges, int64_t onc, int64_t rows,
                        int64_t inner, const uint8_t *mask, int transposed, int64_t ncj)
{
    int bad = 0;
    int *seen = calloc((size_t)inner + 1, sizeof *seen);
    for (int64_t i = 0; i < rows; i++) {
        int64_t a = cluster_of(ranges, nc, i);
        memset(seen, 0, ((size_t)inner + 1) * sizeof *seen);
        int64_t last = -1;
        if (a >= 0)
            for (int64_t q = a ? slices[a - 1] : 0; q < slices[a]; q++) {
                bad += red[2 * q] >= red[2 * q + 1];
                if (q > (a ? slices[a - 1] : 0))
                    bad += red[2 * q] == red[2 * q - 1];
                for (int64_t j = red[2 * q]; j < red[2 * q + 1]; j++) {
                    seen[j]++;
                    bad += j <= last;
                    last = j;
                }
            }
        for (int64_t j = 0; j < inner; j++) {
            int64_t b = cluster_of(oranges, onc, j);
            int want = a >= 0 && b >= 0 && mask[transposed ? b * ncj + a : a * ncj + b];
            bad += seen[j] != want;
        }
    }
    free(seen);
    return bad;
}

KFT_TEST(blocks_worked_example)
{
    /* docs/blocksparse.md: x in 2 clusters [0,3) [3,5), y in 3 clusters
     * [0,2) [2,4) [4,7); mask 1 1 0 / 0 1 1. */
    kf_ctx *ctx = ctx1();
    const int64_t ri[] = {0, 3, 3, 5}, rj[] = {0, 2, 2, 4, 4, 7};
    const uint8_t mask[] = {1, 1, 0, 0, 1, 1};
    kf_blocks *b = kf_blocks_from_mask(ctx, ri, 2, rj, 3, mask);
    KFT_CHECK(b != NULL);
    kf_ranges v;
    kf_blocks_view(b, &v);
    KFT_CHECK(v.nci == 2 && v.ncj == 3 && v.nredj == 2 && v.nredi == 3);
    const int64_t si[] = {1, 2}, redj[] = {0, 4, 2, 7};
    const int64_t sj[] = {1, 2, 3}, redi[] = {0, 3, 0, 5, 3, 5};
    KFT_CHECK(memcmp(v.ranges_i, ri, sizeof ri) == 0 && memcmp(v.ranges_j, rj, sizeof rj) == 0);
    KFT_CHECK(memcmp(v.slices_i, si, sizeof si) == 0 && memcmp(v.redranges_j, redj, sizeof redj) == 0);
    KFT_CHECK(memcmp(v.slices_j, sj, sizeof sj) == 0 && memcmp(v.redranges_i, redi, sizeof redi) == 0);
    KFT_CHECK(kfr_ranges_check(ctx, &v, 1, 5, 7) == KF_OK);
    KFT_CHECK(kfr_ranges_check(ctx, &v, 0, 7, 5) == KF_OK);
    kf_blocks_free(b);
    kf_free(ctx);
}

KFT_TEST(blocks_from_random_masks)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 21);
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        int64_t nci = (int64_t)(kft_rng_next(&g) % 7), ncj = (int64_t)(kft_rng_next(&g) % 7);
        int64_t ri[14], rj[14];
        int64_t M = random_ranges(&g, nci, 3, ri), N = random_ranges(&g, ncj, 3, rj);
        uint8_t mask[49];
        int density = (int)(kft_rng_next(&g) % 4); /* 0: empty .. 3: full */
        for (int64_t k = 0; k < nci * ncj; k++)
            mask[k] = (uint8_t)(density == 3 || (int)(kft_rng_next(&g) % 3) < density);
        kf_blocks *b = kf_blocks_from_mask(ctx, ri, nci, rj, ncj, mask);
        if (!b) {
            KFT_CHECKF(0, "from_mask failed: %s", kf_errmsg(ctx));
            continue;
        }
        kf_ranges v;
        kf_blocks_view(b, &v);
        bad += kfr_ranges_check(ctx, &v, 1, M, N) != KF_OK;
        bad += kfr_ranges_check(ctx, &v, 0, N, M) != KF_OK;
        bad += check_triple(v.ranges_i, v.slices_i, v.redranges_j, nci, rj, ncj, M, N, mask, 0,
                            ncj);
        bad += check_triple(v.ranges_j, v.slices_j, v.redranges_i, ncj, ri, nci, N, M, mask, 1,
                            ncj);
        /* A full mask over non-empty clusters merges into one range per row cluster. */
        if (density == 3 && N > 0)
            for (int64_t a = 0; a < nci; a++)
                if (ri[2 * a + 1] > ri[2 * a])
                    bad += v.slices_i[a] - (a ? v.slices_i[a - 1] : 0) != 1;

        /* Transposing twice gives the pattern back; once swaps the triples. */
        kf_blocks *t = kf_blocks_transpose(ctx, b), *tt = t ? kf_blocks_transpose(ctx, t) : NULL;
        kf_ranges vt, vtt;
        kf_blocks_view(t, &vt);
        kf_blocks_view(tt, &vtt);
        bad += !t || !tt;
        if (t && tt) {
            bad += vt.nci != v.ncj || vt.nredj != v.nredi || vt.ncj != v.nci ||
                   vt.nredi != v.nredj;
            bad += memcmp(vt.redranges_j, v.redranges_i, (size_t)(2 * v.nredi) * 8) != 0;
            bad += memcmp(vt.slices_j, v.slices_i, (size_t)v.nci * 8) != 0;
            bad += vtt.nci != v.nci || vtt.ncj != v.ncj || vtt.nredj != v.nredj ||
                   vtt.nredi != v.nredi;
            bad += memcmp(vtt.ranges_i, v.ranges_i, (size_t)(2 * v.nci) * 8) != 0 ||
                   memcmp(vtt.slices_i, v.slices_i, (size_t)v.nci * 8) != 0 ||
                   memcmp(vtt.redranges_j, v.redranges_j, (size_t)(2 * v.nredj) * 8) != 0 ||
                   memcmp(vtt.ranges_j, v.ranges_j, (size_t)(2 * v.ncj) * 8) != 0 ||
                   memcmp(vtt.slices_j, v.slices_j, (size_t)v.ncj * 8) != 0 ||
                   memcmp(vtt.redranges_i, v.redranges_i, (size_t)(2 * v.nredi) * 8) != 0;
        }
        kf_blocks_free(t);
        kf_blocks_free(tt);
        kf_blocks_free(b);
    }
    KFT_CHECKF(bad == 0, "%d violations", bad);
    kf_free(ctx);
}

KFT_TEST(blocks_from_mask_rejects_bad_input)
{
    kf_ctx *ctx = ctx1();
    const int64_t ri[] = {0, 3, 5, 3}, rj[] = {0, 2};
    const uint8_t mask[] = {1, 1};
    KFT_CHECK(kf_blocks_from_mask(ctx, ri, 2, rj, 1, mask) == NULL);
    KFT_CHECKF(has(kf_errmsg(ctx), "ranges_i[1] = [5, 3) is not a range"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_blocks_from_mask(ctx, ri, 1, rj, 1, NULL) == NULL);
    KFT_CHECK(has(kf_errmsg(ctx), "mask is NULL"));
    KFT_CHECK(kf_blocks_from_mask(ctx, ri, -1, rj, 1, mask) == NULL);
    KFT_CHECK(kf_blocks_from_mask(ctx, NULL, 1, rj, 1, mask) == NULL);
    KFT_CHECK(kf_blocks_from_mask(ctx, ri, INT64_MAX / 2, rj, 4, mask) == NULL);
    KFT_CHECK(kf_blocks_from_mask(NULL, ri, 1, rj, 1, mask) == NULL);
    KFT_CHECK(kf_blocks_transpose(ctx, NULL) == NULL && kf_status_of(ctx) == KF_ERR_ARG);
    /* Zero clusters: an empty but valid pattern. */
    kf_blocks *b = kf_blocks_from_mask(ctx, NULL, 0, NULL, 0, NULL);
    kf_ranges v;
    kf_blocks_view(b, &v);
    KFT_CHECK(b && v.nci == 0 && v.nredj == 0 && kfr_ranges_check(ctx, &v, 1, 4, 4) == KF_OK);
    kf_blocks_free(b);
    kf_blocks_free(NULL);
    kf_free(ctx);
}

/* ---- validation ---- */

KFT_TEST(ranges_check_rejects_each_invalid_case)
{
    kf_ctx *ctx = ctx1();
    /* A valid base over M = 10 rows, N = 8 inner: edited one field per case. */
    int64_t ri[6], si[3], rj[6], ii[6], sj[3], rii[6];
    struct {
        const char *what;
        int axis;
        int64_t idx, val; /* which array entry to set: see below */
        int arr;          /* 0 ranges, 1 slices, 2 red, 3 nc, 4 nred, 5 NULL ranges */
        const char *msg;
    } cases[] = {
        {"reversed", 1, 3, 2, 0, "kf_run_ranges: ranges_i[1] = [3, 2) is reversed"},
        {"below 0", 1, 0, -1, 0, "ranges_i[0] = [-1, 3) starts below 0"},
        {"beyond M", 1, 5, 11, 0, "ranges_i[2] = [7, 11) ends beyond the 10 rows of M"},
        {"overlap", 1, 2, 2, 0, "ranges_i[1] = [2, 5) overlaps or precedes ranges_i[0] = [0, 3)"},
        {"slices negative", 1, 0, -1, 1, "slices_i[0] = -1 is negative"},
        {"slices decreasing", 1, 2, 1, 1, "slices_i[2] = 1 is less than slices_i[1] = 2"},
        {"slices beyond", 1, 2, 4, 1, "slices_i[2] = 4 is beyond nredj = 3"},
        {"red reversed", 1, 1, 9, 2, "redranges_j[0] = [0, 9) ends beyond the 8 rows of N"},
        {"red reversed2", 1, 2, 7, 2, "redranges_j[1] = [7, 6) is reversed"},
        {"nc negative", 1, 0, -2, 3, "nci = -2 is negative"},
        {"nred negative", 1, 0, -1, 4, "nredj = -1 is negative"},
        {"NULL ranges", 1, 0, 0, 5, "ranges_i is NULL but nci = 3"},
        {"axis 0 beyond", 0, 1, 11, 0, "ranges_j[0] = [0, 11) ends beyond the 8 rows of N"},
        {"axis 0 red", 0, 5, 12, 2, "redranges_i[2] = [5, 12) ends beyond the 10 rows of M"},
        {"axis 0 slices", 0, 1, 0, 1, "slices_j[1] = 0 is less than slices_j[0] = 1"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t ri0[] = {0, 3, 3, 5, 7, 10}, si0[] = {1, 2, 3};
        const int64_t rj0[] = {0, 4, 1, 6, 6, 8}; /* redranges_j */
        const int64_t ii0[] = {0, 2, 2, 6, 6, 8}, sj0[] = {1, 2, 3};
        const int64_t rii0[] = {0, 3, 3, 9, 5, 10}; /* redranges_i */
        memcpy(ri, ri0, sizeof ri);
        memcpy(si, si0, sizeof si);
        memcpy(rj, rj0, sizeof rj);
        memcpy(ii, ii0, sizeof ii);
        memcpy(sj, sj0, sizeof sj);
        memcpy(rii, rii0, sizeof rii);
        kf_ranges v = {3, ri, si, 3, rj, 3, ii, sj, 3, rii};
        KFT_CHECKF(kfr_ranges_check(ctx, &v, 1, 10, 8) == KF_OK &&
                       kfr_ranges_check(ctx, &v, 0, 8, 10) == KF_OK,
                   "base: %s", kf_errmsg(ctx));
        int ax = cases[c].axis;
        int64_t *R = ax ? ri : ii, *S = ax ? si : sj, *D = ax ? rj : rii;
        switch (cases[c].arr) {
        case 0: R[cases[c].idx] = cases[c].val; break;
        case 1: S[cases[c].idx] = cases[c].val; break;
        case 2: D[cases[c].idx] = cases[c].val; break;
        case 3: *(ax ? &v.nci : &v.ncj) = cases[c].val; break;
        case 4: *(ax ? &v.nredj : &v.nredi) = cases[c].val; break;
        case 5: *(ax ? &v.ranges_i : &v.ranges_j) = NULL; break;
        }
        int rc = kfr_ranges_check(ctx, &v, ax, ax ? 10 : 8, ax ? 8 : 10);
        KFT_CHECKF(rc == KF_ERR_ARG && has(kf_errmsg(ctx), cases[c].msg),
                   "%s: got %s '%s', expected '%s'", cases[c].what, kf_status_name(rc),
                   kf_errmsg(ctx), cases[c].msg);
        /* The other triple is not read: the same edit passes on the other axis. */
        if (cases[c].arr != 3 && cases[c].arr != 5)
            KFT_CHECKF(kfr_ranges_check(ctx, &v, !ax, ax ? 8 : 10, ax ? 10 : 8) == KF_OK,
                       "%s: other axis: %s", cases[c].what, kf_errmsg(ctx));
    }
    KFT_CHECK(kfr_ranges_check(ctx, NULL, 1, 1, 1) == KF_ERR_ARG);
    kf_ranges e = {0};
    KFT_CHECK(kfr_ranges_check(ctx, &e, 2, 1, 1) == KF_ERR_ARG);
    KFT_CHECK(kfr_ranges_check(ctx, &e, 1, 5, 5) == KF_OK); /* no clusters: all neutral */
    kf_free(ctx);
}

/* ---- tasks ---- */

/* Checks the tasks of a valid pattern: every row exactly once, increasing,
 * each row's (jr, nr) the list of its cluster (or nr = 0 where the cluster's
 * list holds no pairs or no cluster covers the row). */
static int check_tasks(const kf_ranges *v, int64_t rows, const kfr_task *t, int64_t nt,
                       int64_t *maxpairs)
{
    int bad = 0;
    int64_t next = 0;
    *maxpairs = 0;
    for (int64_t k = 0; k < nt; k++) {
        bad += t[k].r0 != next || t[k].r1 <= t[k].r0;
        next = t[k].r1;
        int64_t pairs = 0;
        for (int64_t r = t[k].r0; r < t[k].r1 && r < rows; r++) {
            int64_t a = cluster_of(v->ranges_i, v->nci, r);
            int64_t q0 = a > 0 ? v->slices_i[a - 1] : 0, q1 = a >= 0 ? v->slices_i[a] : 0;
            int64_t p = 0;
            for (int64_t q = q0; q < q1; q++)
                p += v->redranges_j[2 * q + 1] - v->redranges_j[2 * q];
            if (p == 0)
                bad += t[k].nr != 0;
            else
                bad += t[k].jr != v->redranges_j + 2 * q0 || t[k].nr != q1 - q0;
            pairs += p;
        }
        *maxpairs = pairs > *maxpairs ? pairs : *maxpairs;
    }
    bad += next != rows;
    return bad;
}

KFT_TEST(ranges_tasks_cover_every_row_once)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 77);
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        int64_t nci = (int64_t)(kft_rng_next(&g) % 6), ri[12], si[6], red[40];
        int64_t s = 0, nred = 0, N = 6;
        for (int64_t a = 0; a < nci; a++) {
            s += (int64_t)(kft_rng_next(&g) % 3); /* a gap */
            ri[2 * a] = s;
            s += (int64_t)(kft_rng_next(&g) % 30);
            ri[2 * a + 1] = s;
            int64_t m = (int64_t)(kft_rng_next(&g) % 4);
            for (int64_t q = 0; q < m; q++) {
                int64_t x = (int64_t)(kft_rng_next(&g) % 7), y = (int64_t)(kft_rng_next(&g) % 7);
                red[2 * nred] = x < y ? x : y; /* may be empty */
                red[2 * nred + 1] = x < y ? y : x;
                nred++;
            }
            si[a] = nred;
        }
        int64_t rows = s + (int64_t)(kft_rng_next(&g) % 3);
        kf_ranges v = {nci, ri, si, nred, red, 0, NULL, NULL, 0, NULL};
        if (kfr_ranges_check(ctx, &v, 1, rows, N) != KF_OK) {
            bad++;
            continue;
        }
        int threads = 1 + (int)(kft_rng_next(&g) % 4);
        kfr_task *t;
        int64_t nt, maxp;
        if (kfr_ranges_tasks(ctx, &v, 1, rows, threads, &t, &nt) != KF_OK) {
            bad++;
            continue;
        }
        bad += check_tasks(&v, rows, t, nt, &maxp);
        free(t);
    }
    KFT_CHECKF(bad == 0, "%d violations", bad);

    /* Balance: one dense cluster of 1000 rows on 2 threads is cut into
     * blocks of at most about 1/8 of the work each; a pattern with no
     * pairs at all still covers every row (neutral values), in blocks. */
    const int64_t ri[] = {0, 1000}, si[] = {1}, red[] = {0, 50};
    kf_ranges v = {1, ri, si, 1, red, 0, NULL, NULL, 0, NULL};
    kfr_task *t;
    int64_t nt, maxp;
    KFT_CHECK(kfr_ranges_tasks(ctx, &v, 1, 1000, 2, &t, &nt) == KF_OK);
    KFT_CHECK(check_tasks(&v, 1000, t, nt, &maxp) == 0);
    KFT_CHECKF(nt >= 8 && maxp <= 1000 * 50 / 8 + 50, "%lld tasks, largest %lld pairs",
               (long long)nt, (long long)maxp);
    free(t);
    kf_ranges none = {0};
    KFT_CHECK(kfr_ranges_tasks(ctx, &none, 1, 1000, 2, &t, &nt) == KF_OK);
    KFT_CHECK(check_tasks(&none, 1000, t, nt, &maxp) == 0 && nt >= 8);
    free(t);
    KFT_CHECK(kfr_ranges_tasks(ctx, &none, 1, 0, 2, &t, &nt) == KF_OK && nt == 0);
    free(t);
    /* Axis 0 reads the mirror triple. */
    kf_ranges m = {0, NULL, NULL, 0, NULL, 1, ri, si, 1, red};
    KFT_CHECK(kfr_ranges_check(ctx, &m, 0, 1000, 50) == KF_OK);
    KFT_CHECK(kfr_ranges_tasks(ctx, &m, 0, 1000, 1, &t, &nt) == KF_OK && nt >= 4);
    KFT_CHECK(t[0].jr == red && t[0].nr == 1 && t[nt - 1].r1 == 1000);
    free(t);
    kf_free(ctx);
}

/* ---- allocation failures ---- */

KFT_TEST(blocks_nomem)
{
    kf_ctx *ctx = ctx1();
    const int64_t ri[] = {0, 3, 3, 5}, rj[] = {0, 2, 2, 4, 4, 7};
    const uint8_t mask[] = {1, 0, 1, 0, 1, 1};
    int bad = 0;
    for (int what = 0; what < 3; what++)
        for (int64_t n = 0; n < 1000; n++) {
            kf_blocks *b0 = what == 1 ? kf_blocks_from_mask(ctx, ri, 2, rj, 3, mask) : NULL;
            int64_t before = kft_failures(), nt = 0;
            kft_fail_after(n);
            kf_blocks *b = NULL;
            kfr_task *t = NULL;
            int rc = KF_OK;
            if (what == 0)
                b = kf_blocks_from_mask(ctx, ri, 2, rj, 3, mask);
            else if (what == 1)
                b = kf_blocks_transpose(ctx, b0);
            else {
                kf_ranges v = {2, ri, (const int64_t[]){1, 2}, 2, rj, 0, NULL, NULL, 0, NULL};
                rc = kfr_ranges_tasks(ctx, &v, 1, 5, 2, &t, &nt);
            }
            kft_fail_after(-1);
            int injected = kft_failures() != before;
            int failed = what == 2 ? rc != KF_OK : b == NULL;
            if (injected)
                bad += !failed || kf_status_of(ctx) != KF_ERR_NOMEM;
            else
                bad += failed;
            kf_blocks_free(b);
            kf_blocks_free(b0);
            free(t);
            if (!injected)
                break;
        }
    KFT_CHECKF(bad == 0, "%d calls did not fail cleanly", bad);
    kf_free(ctx);
}
