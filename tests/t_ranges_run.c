/*
 * t_ranges_run.c -- kf_run_ranges end to end: against dense kf_run with the
 * full mask (the same bits), against an independent per-row oracle on random
 * patterns (every reduction, both axes, both dtypes, libtcc and reference
 * engines), neutral rows, every invalid pattern rejected with nothing
 * written, and the same bits on 1, 2 and 3 threads with 500 clusters.
 *
 * THE ORACLE. For output row r with the list jr[0..2nr) the oracle gathers the
 * inner points of the list, in visiting order, into compact arrays and runs
 * the DENSE kf_run of the same kernel on that single row (M = 1 or N = 1);
 * returned indices are mapped back through the gather. That path never sees
 * a kf_ranges, and the visiting order (ties, first NaN, float32 sum blocks
 * counted across ranges) is the same by construction, so the comparison is
 * exact, bit for bit. (Each engine is its own oracle here; the engines'
 * agreement with the reference evaluator is t_reductions.c's job.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define GARBAGE 0x5a /* byte pattern prefilled into outputs: unwritten rows show */

/* the shared reduction suite (testutil.h) */
#define AL kft_red_al
#define NAL KFT_NRED_AL
#define REDS kft_red_cases
#define NREDS KFT_NRED
#define F_SUM KFT_F_SUM
#define F_EXT KFT_F_EXT
#define F_KMIN KFT_F_KMIN
#define F_LSE KFT_F_LSE

static const char *dtname(kf_dtype t)
{
    return t == KF_FLOAT32 ? "float32" : "float64";
}

static kf_ctx *ctx_threads(int threads)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    o.no_cache = 1; /* the cc case builds in a private directory: never ~/.cache */
    return kf_new(&o);
}

static kft_spec spec_of(const kft_red_case *r, int axis, kf_dtype dt, kf_sum_scheme scheme)
{
    kft_spec s = {r->f, AL, NAL, r->name, axis, dt, r->k, r->f2, scheme};
    return s;
}

/* ---- patterns ---- */


/* Contiguous clusters covering [0, n) exactly, sizes 0..maxsz (empty ones
 * included); returns the count, ranges in *r (malloc'd). */
static int64_t cover(kft_rng *g, int64_t n, int64_t maxsz, int64_t **r)
{
    int64_t s = 0, nc = 0, cap = n + 4;
    *r = malloc(sizeof **r * (size_t)(2 * cap));
    while (*r && (s < n || nc == 0)) {
        if (nc == cap) { /* empty clusters take no rows: the count is unbounded */
            int64_t *m = realloc(*r, sizeof **r * (size_t)(4 * cap));
            if (!m)
                break;
            *r = m, cap *= 2;
        }
        int64_t len = kft_rnd(g, maxsz + 1);
        if (s + len > n)
            len = n - s;
        (*r)[2 * nc] = s;
        (*r)[2 * nc + 1] = s += len;
        nc++;
    }
    return nc;
}


/* Both triples from kf_blocks_from_mask over clusters covering both clouds,
 * with a random mask of density about num/den (den = num: the full mask).
 * The pattern is copied out of the kf_blocks so that it can be freed. */
static int mask_pat(kf_ctx *ctx, kft_rng *g, int64_t M, int64_t N, int num, int den, kft_pat *p)
{
    memset(p, 0, sizeof *p);
    int64_t *ri, *rj;
    int64_t nci = cover(g, M, 9, &ri), ncj = cover(g, N, 9, &rj);
    uint8_t *mask = malloc((size_t)(nci * ncj) + 1);
    for (int64_t q = 0; q < nci * ncj; q++)
        mask[q] = kft_rnd(g, den) < num;
    kf_blocks *b = kf_blocks_from_mask(ctx, ri, nci, rj, ncj, mask);
    free(mask);
    free(ri);
    free(rj);
    if (!b) {
        fprintf(stderr, "  kf_blocks_from_mask: %s\n", kf_errmsg(ctx));
        return -1;
    }
    kf_ranges v;
    kf_blocks_view(b, &v);
    const int64_t nc[2] = {v.nci, v.ncj}, nr[2] = {v.nredj, v.nredi};
    const int64_t *R[2] = {v.ranges_i, v.ranges_j}, *S[2] = {v.slices_i, v.slices_j},
                  *D[2] = {v.redranges_j, v.redranges_i};
    for (int t = 0; t < 2; t++) {
        p->nc[t] = nc[t], p->nred[t] = nr[t];
        p->rng[t] = malloc(sizeof(int64_t) * (size_t)(2 * nc[t] + 1));
        p->sl[t] = malloc(sizeof(int64_t) * (size_t)(nc[t] + 1));
        p->red[t] = malloc(sizeof(int64_t) * (size_t)(2 * nr[t] + 1));
        memcpy(p->rng[t], R[t], sizeof(int64_t) * (size_t)(2 * nc[t]));
        memcpy(p->sl[t], S[t], sizeof(int64_t) * (size_t)nc[t]);
        memcpy(p->red[t], D[t], sizeof(int64_t) * (size_t)(2 * nr[t]));
    }
    kf_blocks_free(b);
    return 0;
}

/* The full pattern WITHOUT merging: every i-cluster lists every j-cluster's
 * range (empty ones included) in order, and the mirror. Same pairs in the
 * same order as dense, in many short ranges. */
static void split_full_pat(kft_rng *g, int64_t M, int64_t N, kft_pat *p)
{
    memset(p, 0, sizeof *p);
    int64_t *r[2], nc[2] = {cover(g, M, 40, &r[0]), cover(g, N, 40, &r[1])};
    for (int t = 0; t < 2; t++) {
        int64_t o = 1 - t;
        p->nc[t] = nc[t];
        p->rng[t] = r[t];
        p->sl[t] = malloc(sizeof(int64_t) * (size_t)nc[t]);
        p->nred[t] = nc[t] * nc[o];
        p->red[t] = malloc(sizeof(int64_t) * (size_t)(2 * p->nred[t] + 1));
        for (int64_t a = 0; a < nc[t]; a++) {
            memcpy(p->red[t] + 2 * a * nc[o], r[o], sizeof(int64_t) * (size_t)(2 * nc[o]));
            p->sl[t][a] = (a + 1) * nc[o];
        }
    }
}

/* The list of output row r in triple t: *jr and *nr (nr = 0 for uncovered rows). */
static void row_list(const kft_pat *p, int t, int64_t r, const int64_t **jr, int64_t *nr)
{
    *jr = NULL, *nr = 0;
    for (int64_t a = 0; a < p->nc[t]; a++)
        if (r >= p->rng[t][2 * a] && r < p->rng[t][2 * a + 1]) {
            int64_t q0 = a ? p->sl[t][a - 1] : 0;
            *jr = p->red[t] + 2 * q0;
            *nr = p->sl[t][a] - q0;
            return;
        }
}

/* ---- running and comparing ---- */

typedef struct res {
    void *out;
    int64_t *idx;
    size_t ob, ib; /* bytes */
} res;

static int res_alloc(res *o, const kf_kernel *k, int64_t rows)
{
    size_t es = kf_kernel_dtype(k) == KF_FLOAT32 ? 4 : 8;
    o->ob = (size_t)(rows * kf_kernel_out_dim(k)) * es;
    o->ib = (size_t)(rows * kf_kernel_index_dim(k)) * sizeof(int64_t);
    o->out = malloc(o->ob + 1);
    o->idx = malloc(o->ib + 1);
    if (!o->out || !o->idx)
        return -1;
    memset(o->out, GARBAGE, o->ob);
    memset(o->idx, GARBAGE, o->ib);
    return 0;
}

static void res_free(res *o)
{
    free(o->out), free(o->idx);
    o->out = NULL, o->idx = NULL;
}

static int run_ranges(kf_kernel *k, int64_t M, int64_t N, const kft_data *d, const kft_pat *p,
                      res *o)
{
    kf_ranges v = kft_pat_view(p);
    return kf_run_ranges(k, M, N, (const void *const *)d->arr, d->nargs, &v,
                         kf_kernel_out_dim(k) ? o->out : NULL,
                         kf_kernel_index_dim(k) ? o->idx : NULL);
}

/* The oracle's row r (see the header): into out_row/idx_row. Returns a kf_status. */
static int oracle_row(kf_kernel *k, const kft_data *d, int64_t r,
                      const int64_t *jr, int64_t nr, void *out_row, int64_t *idx_row)
{
    int axis = kf_kernel_axis(k);
    int outer = axis == 1 ? 0 : 1; /* the category that follows the output row */
    size_t es = kf_kernel_dtype(k) == KF_FLOAT32 ? 4 : 8;
    int64_t cnt = 0;
    for (int64_t q = 0; q < nr; q++)
        cnt += jr[2 * q + 1] > jr[2 * q] ? jr[2 * q + 1] - jr[2 * q] : 0;
    int64_t *map = malloc(sizeof *map * (size_t)(cnt + 1));
    const void *argp[NAL] = {NULL};
    void *gath[NAL] = {NULL};
    int st = KF_ERR_NOMEM;
    if (!map)
        goto done;
    for (int64_t q = 0, c = 0; q < nr; q++)
        for (int64_t t = jr[2 * q]; t < jr[2 * q + 1]; t++)
            map[c++] = t;
    for (int v = 0; v < d->nargs; v++) {
        if (d->cat[v] < 0)
            continue;
        size_t row = (size_t)d->dim[v] * es;
        if (d->cat[v] == 2) {
            argp[v] = d->arr[v];
        } else if (d->cat[v] == outer) {
            argp[v] = (const char *)d->arr[v] + (size_t)r * row;
        } else {
            if (!(gath[v] = malloc(row * (size_t)cnt + 1)))
                goto done;
            for (int64_t c = 0; c < cnt; c++)
                memcpy((char *)gath[v] + (size_t)c * row, (const char *)d->arr[v] + (size_t)map[c] * row,
                       row);
            argp[v] = gath[v];
        }
    }
    st = kf_run(k, axis == 1 ? 1 : cnt, axis == 1 ? cnt : 1, argp, d->nargs,
                kf_kernel_out_dim(k) ? out_row : NULL, kf_kernel_index_dim(k) ? idx_row : NULL);
    for (int64_t q = 0; st == KF_OK && q < kf_kernel_index_dim(k); q++)
        if (idx_row[q] >= 0)
            idx_row[q] = idx_row[q] < cnt ? map[idx_row[q]] : -999; /* out of the gather: wrong */
done:
    for (int v = 0; v < NAL; v++)
        free(gath[v]);
    free(map);
    return st;
}

/* Compares every row of a kf_run_ranges result with the oracle; prints the
 * first few mismatches with `what`. Returns the number of bad rows (-1 when
 * the oracle could not run). */
static int check_rows(kf_kernel *k, const kft_data *d, int64_t M, int64_t N, const kft_pat *p,
                      const res *got, const char *what)
{
    int axis = kf_kernel_axis(k);
    int64_t rows = axis == 1 ? M : N, vd = kf_kernel_out_dim(k), id = kf_kernel_index_dim(k);
    size_t es = kf_kernel_dtype(k) == KF_FLOAT32 ? 4 : 8;
    size_t vb = (size_t)vd * es, ib = (size_t)id * sizeof(int64_t);
    void *ov = malloc(vb + 1);
    int64_t *oi = malloc(ib + 1);
    int bad = 0;
    for (int64_t r = 0; r < rows && ov && oi; r++) {
        const int64_t *jr;
        int64_t nr;
        row_list(p, axis == 1 ? 0 : 1, r, &jr, &nr);
        memset(ov, GARBAGE, vb), memset(oi, GARBAGE, ib);
        if (oracle_row(k, d, r, jr, nr, ov, oi) != KF_OK) {
            fprintf(stderr, "  %s: the oracle failed on row %lld\n", what, (long long)r);
            bad = -1;
            break;
        }
        const char *gv = (const char *)got->out + (size_t)r * vb;
        const int64_t *gi = got->idx + r * id;
        if (memcmp(gv, ov, vb) || memcmp(gi, oi, ib)) {
            if (bad < 3) {
                fprintf(stderr, "  MISMATCH %s: row %lld (list of %lld ranges):", what,
                        (long long)r, (long long)nr);
                for (int64_t c = 0; c < vd && c < 6; c++)
                    fprintf(stderr, " [%lld] got %.9g want %.9g", (long long)c,
                            kft_get(gv, kf_kernel_dtype(k), c), kft_get(ov, kf_kernel_dtype(k), c));
                for (int64_t c = 0; c < id && c < 6; c++)
                    fprintf(stderr, " idx[%lld] got %lld want %lld", (long long)c,
                            (long long)gi[c], (long long)oi[c]);
                fputc('\n', stderr);
            }
            bad++;
        }
    }
    free(ov), free(oi);
    return bad;
}

/* A few NaNs in b (variable 4) so that "the first NaN wins" crosses ranges. */
static void add_nans(kft_data *d, kft_rng *g, int64_t n, kf_dtype dt)
{
    for (int q = 0; q < 2 && n > 0 && d->arr[4]; q++)
        kft_set(d->arr[4], dt, kft_rnd(g, n), NAN);
}

/* ---- 1. the full mask gives dense's bits ---- */

/* Runs k dense and with the full pattern (merged from a mask, and split
 * into every cluster pair); returns the number of differing runs. */
static int full_vs_dense(kf_ctx *ctx, kf_kernel *k, int64_t M, int64_t N, uint64_t seed,
                         const char *what)
{
    kft_data d;
    kft_rng g;
    kft_rng_seed(&g, seed);
    if (kft_data_make(&d, k, M, N, -1.5, 1.5, (int)(seed & 1), seed) != 0)
        return 1;
    add_nans(&d, &g, N, kf_kernel_dtype(k));
    int64_t rows = kf_kernel_axis(k) == 1 ? M : N;
    res dense = {0}, sp = {0};
    int bad = 0;
    if (res_alloc(&dense, k, rows) || kf_run(k, M, N, (const void *const *)d.arr, d.nargs,
                                              kf_kernel_out_dim(k) ? dense.out : NULL,
                                              kf_kernel_index_dim(k) ? dense.idx : NULL) != KF_OK) {
        fprintf(stderr, "  %s: dense run failed: %s\n", what, kf_errmsg(ctx));
        bad++;
        goto done;
    }
    for (int how = 0; how < 2; how++) {
        kft_pat p;
        if (how == 0 ? mask_pat(ctx, &g, M, N, 1, 1, &p) != 0 : (split_full_pat(&g, M, N, &p), 0)) {
            bad++;
            continue;
        }
        if (res_alloc(&sp, k, rows) || run_ranges(k, M, N, &d, &p, &sp) != KF_OK) {
            fprintf(stderr, "  %s: %s\n", what, kf_errmsg(ctx));
            bad++;
        } else if (memcmp(sp.out, dense.out, dense.ob) || memcmp(sp.idx, dense.idx, dense.ib)) {
            fprintf(stderr, "  MISMATCH %s: the full %s pattern differs from dense\n", what,
                    how ? "split" : "merged");
            bad++;
        }
        res_free(&sp);
        kft_pat_free(&p);
    }
done:
    res_free(&dense);
    kft_data_free(&d);
    return bad;
}

static void full_mask_engine(kf_jit jit)
{
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    int n = 0;
    for (int r = 0; r < NREDS; r++)
        for (int axis = 0; axis <= 1; axis++)
            for (int dt = 0; dt <= 1; dt++, n++) {
                kf_dtype t = dt ? KF_FLOAT64 : KF_FLOAT32;
                kft_spec s = spec_of(&REDS[r], axis, t, KF_SUM_AUTO);
                kf_kernel *k = kft_compile(ctx, &s, jit);
                if (!KFT_CHECK(k))
                    continue;
                char what[160];
                snprintf(what, sizeof what, "%s axis %d %s %s", REDS[r].name, axis, dtname(t),
                         kf_kernel_engine(k));
                /* 270 > 256: float32 sum blocks cross the ranges on axis 0 */
                int bad = full_vs_dense(ctx, k, 270, 40, (uint64_t)n * 7 + 1, what);
                KFT_CHECKF(bad == 0, "%s: %d", what, bad);
                kf_kernel_free(k);
            }
    kf_free(ctx);
}

KFT_TEST(ranges_run_full_mask_is_dense_tcc)
{
    full_mask_engine(KF_JIT_TCC);
}

KFT_TEST(ranges_run_full_mask_is_dense_reference)
{
    full_mask_engine(KF_JIT_REFERENCE);
}

/* Every float32 sum scheme: blocks, Kahan compensation and the f64
 * accumulator carry across ranges exactly as across one dense range. */
KFT_TEST(ranges_run_full_mask_sum_schemes)
{
    static const kf_sum_scheme S[] = {KF_SUM_BLOCK, KF_SUM_DIRECT, KF_SUM_F64, KF_SUM_KAHAN};
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    for (int q = 0; q < 4; q++)
        for (int axis = 0; axis <= 1; axis++) {
            kft_spec s = spec_of(&REDS[0], axis, KF_FLOAT32, S[q]);
            kf_kernel *k = kft_compile(ctx, &s, KF_JIT_TCC);
            if (!KFT_CHECK(k))
                continue;
            char what[96];
            snprintf(what, sizeof what, "Sum scheme %d axis %d", (int)S[q], axis);
            KFT_CHECKF(full_vs_dense(ctx, k, 600, 530, 40 + (uint64_t)q, what) == 0, "%s", what);
            kf_kernel_free(k);
        }
    kf_free(ctx);
}

/* The optimizing tier, one case per dtype (skipped, with the reason, when
 * this machine has no C compiler for it). */
KFT_TEST(ranges_run_full_mask_is_dense_cc)
{
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    const struct {
        int red, axis;
        kf_dtype dt;
    } C[] = {{0, 1, KF_FLOAT32}, {6, 0, KF_FLOAT64}}; /* Sum; Min_ArgMin */
    for (int c = 0; c < 2; c++) {
        kft_spec s = spec_of(&REDS[C[c].red], C[c].axis, C[c].dt, KF_SUM_AUTO);
        kf_compile_opts o;
        kf_compile_opts_init(&o);
        o.k = s.k, o.formula2 = s.formula2, o.jit = KF_JIT_CC;
        kf_kernel *k = kf_compile(ctx, s.formula, s.aliases, s.naliases, s.reduction, s.axis,
                                  s.dtype, &o);
        if (!k && kf_status_of(ctx) == KF_ERR_JIT && strstr(kf_errmsg(ctx), "no C compiler")) {
            kft_skip("%s", kf_errmsg(ctx));
            break;
        }
        if (!KFT_CHECKF(k, "%s", kf_errmsg(ctx)))
            continue;
        char what[96];
        snprintf(what, sizeof what, "%s axis %d %s %s", s.reduction, s.axis, dtname(s.dtype),
                 kf_kernel_engine(k));
        KFT_CHECKF(full_vs_dense(ctx, k, 517, 300, 90 + (uint64_t)c, what) == 0, "%s", what);
        kf_kernel_free(k);
    }
    kf_free(ctx);
}

/* ---- 2. random patterns against the oracle ---- */

static void random_engine(kf_jit jit)
{
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    int n = 0;
    for (int r = 0; r < NREDS; r++)
        for (int axis = 0; axis <= 1; axis++)
            for (int dt = 0; dt <= 1; dt++, n++) {
                kf_dtype t = dt ? KF_FLOAT64 : KF_FLOAT32;
                kft_spec s = spec_of(&REDS[r], axis, t, KF_SUM_AUTO);
                kf_kernel *k = kft_compile(ctx, &s, jit);
                if (!KFT_CHECK(k))
                    continue;
                uint64_t seed = 1000 + (uint64_t)n;
                kft_rng g;
                kft_rng_seed(&g, seed);
                int64_t M = 40 + kft_rnd(&g, 30), N = 30 + kft_rnd(&g, 300); /* up to 330 > 256 */
                kft_data d;
                if (!KFT_CHECK(kft_data_make(&d, k, M, N, -1.5, 1.5, (int)(seed & 1), seed) == 0)) {
                    kf_kernel_free(k);
                    continue;
                }
                add_nans(&d, &g, N, t);
                int64_t rows = axis == 1 ? M : N;
                for (int trial = 0; trial < 3; trial++) {
                    kft_pat p;
                    int made = trial == 0 ? (kft_random_pat(&g, M, N, 12, &p), 0)
                                          : mask_pat(ctx, &g, M, N, trial, 4, &p);
                    if (!KFT_CHECK(made == 0))
                        continue;
                    char what[160];
                    snprintf(what, sizeof what, "%s axis %d %s %s M=%lld N=%lld pattern %d",
                             REDS[r].name, axis, dtname(t), kf_kernel_engine(k), (long long)M,
                             (long long)N, trial);
                    res o = {0};
                    if (KFT_CHECK(res_alloc(&o, k, rows) == 0) &&
                        KFT_CHECKF(run_ranges(k, M, N, &d, &p, &o) == KF_OK, "%s: %s", what,
                                   kf_errmsg(ctx))) {
                        int bad = check_rows(k, &d, M, N, &p, &o, what);
                        KFT_CHECKF(bad == 0, "%s: %d bad rows", what, bad);
                    }
                    res_free(&o);
                    kft_pat_free(&p);
                }
                kft_data_free(&d);
                kf_kernel_free(k);
            }
    kf_free(ctx);
}

KFT_TEST(ranges_run_random_patterns_tcc)
{
    random_engine(KF_JIT_TCC);
}

KFT_TEST(ranges_run_random_patterns_reference)
{
    random_engine(KF_JIT_REFERENCE);
}

/* Neutral values spelled out (not only "what the oracle says"): rows no
 * cluster covers, and clusters whose list is empty or holds only empty
 * ranges, on a hand-made pattern. */
KFT_TEST(ranges_run_neutral_rows)
{
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    /* M = 10: rows 0-1 uncovered, [2,4) computes over j in [0,3), [4,6) has an
     * empty list, [6,8) only empty ranges, 8-9 uncovered. N = 5. */
    const int64_t ri[] = {2, 4, 4, 6, 6, 8}, si[] = {1, 1, 3}, rj[] = {0, 3, 2, 2, 5, 5};
    kf_ranges v = {3, ri, si, 3, rj, 0, NULL, NULL, 0, NULL};
    const char *al[] = {"x=Vi(0,1)", "y=Vj(1,1)"};
    double x[10], y[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 10; i++)
        x[i] = i;
    const void *args[2] = {x, y};
    const struct {
        const char *red;
        double neutral;
        int64_t idx; /* 0: no index */
    } C[] = {{"Sum", 0, 0},        {"Max_ArgMax", -INFINITY, -1}, {"Min_ArgMin", INFINITY, -1},
             {"LogSumExp", -INFINITY, 0}, {"KMin_ArgKMin", INFINITY, -1}};
    for (int c = 0; c < 5; c++) {
        kf_compile_opts o;
        kf_compile_opts_init(&o);
        o.k = 1;
        o.jit = KF_JIT_TCC;
        kf_kernel *k = kf_compile(ctx, "x*y", al, 2, C[c].red, 1, KF_FLOAT64, &o);
        if (!KFT_CHECKF(k, "%s", kf_errmsg(ctx)))
            continue;
        double out[10];
        int64_t idx[10];
        memset(out, GARBAGE, sizeof out), memset(idx, GARBAGE, sizeof idx);
        int st = kf_run_ranges(k, 10, 5, args, 2, &v, kf_kernel_out_dim(k) ? out : NULL,
                               kf_kernel_index_dim(k) ? idx : NULL);
        KFT_CHECKF(st == KF_OK, "%s: %s", C[c].red, kf_errmsg(ctx));
        for (int i = 0; i < 10; i++) {
            int computed = i == 2 || i == 3;
            double want = !computed ? C[c].neutral
                          : !strcmp(C[c].red, "Sum") ? x[i] * 6
                          : !strcmp(C[c].red, "Max_ArgMax") ? x[i] * 3
                          : !strcmp(C[c].red, "LogSumExp") ? x[i] * 3 + log(1 + exp(-x[i]) + exp(-2 * x[i]))
                                                            : x[i] * 1;
            int64_t wi = !computed ? C[c].idx : !strcmp(C[c].red, "Max_ArgMax") ? 2 : 0;
            if (!strcmp(C[c].red, "LogSumExp") && computed)
                KFT_CHECKF(fabs(out[i] - want) < 1e-12, "%s row %d: %.17g vs %.17g", C[c].red, i,
                           out[i], want);
            else
                KFT_CHECKF(out[i] == want, "%s row %d: %g vs %g", C[c].red, i, out[i], want);
            if (C[c].idx)
                KFT_CHECKF(idx[i] == wi, "%s row %d: index %lld vs %lld", C[c].red, i,
                           (long long)idx[i], (long long)wi);
        }
        kf_kernel_free(k);
    }
    /* No rows at all, and no clusters at all (every row neutral). */
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = KF_JIT_TCC;
    kf_kernel *k = kf_compile(ctx, "x*y", al, 2, "Min_ArgMin", 1, KF_FLOAT64, &o);
    if (KFT_CHECK(k)) {
        kf_ranges none = {0};
        double out[10];
        int64_t idx[10];
        KFT_CHECK(kf_run_ranges(k, 0, 5, args, 2, &none, out, idx) == KF_OK);
        memset(out, GARBAGE, sizeof out), memset(idx, GARBAGE, sizeof idx);
        KFT_CHECK(kf_run_ranges(k, 10, 5, args, 2, &none, out, idx) == KF_OK);
        int ok = 1;
        for (int i = 0; i < 10; i++)
            ok &= out[i] == INFINITY && idx[i] == -1;
        KFT_CHECK(ok);
        kf_kernel_free(k);
    }
    kf_free(ctx);
}

/* ---- 3. invalid patterns: rejected with their message, nothing written ---- */

KFT_TEST(ranges_run_rejects_invalid_patterns)
{
    kf_ctx *ctx = ctx_threads(2);
    if (!KFT_CHECK(ctx))
        return;
    const char *al[] = {"x=Vi(0,1)", "y=Vj(1,1)"};
    double x[10] = {0}, y[8] = {0};
    const void *args[2] = {x, y};
    kf_kernel *k[2] = {NULL, NULL}; /* by axis */
    for (int ax = 0; ax < 2; ax++) {
        kf_compile_opts o;
        kf_compile_opts_init(&o);
        o.jit = KF_JIT_TCC;
        k[ax] = kf_compile(ctx, "x-y", al, 2, "Min_ArgMin", ax, KF_FLOAT64, &o);
    }
    if (!KFT_CHECK(k[0] && k[1]))
        goto done;
    /* M = 10, N = 8; one field edited per case */
    struct {
        int axis;
        int arr; /* 0 ranges, 1 slices, 2 reduced ranges, 3 nc, 4 nred, 5 NULL ranges,
                    6 NULL slices, 7 NULL reduced ranges */
        int64_t idx, val;
        const char *msg;
    } cases[] = {
        {1, 0, 3, 2, "kf_run_ranges: ranges_i[1] = [3, 2) is reversed"},
        {1, 0, 0, -1, "kf_run_ranges: ranges_i[0] = [-1, 3) starts below 0"},
        {1, 0, 5, 11, "kf_run_ranges: ranges_i[2] = [7, 11) ends beyond the 10 rows of M"},
        {1, 0, 2, 2, "kf_run_ranges: ranges_i[1] = [2, 5) overlaps or precedes ranges_i[0] = [0, 3)"},
        {1, 1, 0, -1, "kf_run_ranges: slices_i[0] = -1 is negative"},
        {1, 1, 2, 1, "kf_run_ranges: slices_i[2] = 1 is less than slices_i[1] = 2"},
        {1, 1, 2, 4, "kf_run_ranges: slices_i[2] = 4 is beyond nredj = 3"},
        {1, 2, 1, 9, "kf_run_ranges: redranges_j[0] = [0, 9) ends beyond the 8 rows of N"},
        {1, 2, 2, 7, "kf_run_ranges: redranges_j[1] = [7, 6) is reversed"},
        {1, 2, 4, -1, "kf_run_ranges: redranges_j[2] = [-1, 8) starts below 0"},
        {1, 3, 0, -2, "kf_run_ranges: nci = -2 is negative"},
        {1, 4, 0, -1, "kf_run_ranges: nredj = -1 is negative"},
        {1, 5, 0, 0, "kf_run_ranges: ranges_i is NULL but nci = 3"},
        {1, 6, 0, 0, "kf_run_ranges: slices_i is NULL but nci = 3"},
        {1, 7, 0, 0, "kf_run_ranges: redranges_j is NULL but nredj = 3"},
        {0, 0, 1, 11, "kf_run_ranges: ranges_j[0] = [0, 11) ends beyond the 8 rows of N"},
        {0, 0, 2, 1, "kf_run_ranges: ranges_j[1] = [1, 6) overlaps or precedes ranges_j[0] = [0, 2)"},
        {0, 1, 1, 0, "kf_run_ranges: slices_j[1] = 0 is less than slices_j[0] = 1"},
        {0, 2, 5, 12, "kf_run_ranges: redranges_i[2] = [5, 12) ends beyond the 10 rows of M"},
        {0, 3, 0, -1, "kf_run_ranges: ncj = -1 is negative"},
        {0, 5, 0, 0, "kf_run_ranges: ranges_j is NULL but ncj = 3"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t ri[] = {0, 3, 3, 5, 7, 10}, si[] = {1, 2, 3}, rj[] = {0, 4, 1, 6, 0, 8};
        int64_t ii[] = {0, 2, 2, 6, 6, 8}, sj[] = {1, 2, 3}, rii[] = {0, 3, 3, 9, 5, 10};
        kf_ranges v = {3, ri, si, 3, rj, 3, ii, sj, 3, rii};
        int ax = cases[c].axis;
        int64_t *R = ax ? ri : ii, *S = ax ? si : sj, *D = ax ? rj : rii;
        int64_t rows = ax ? 10 : 8;
        double out[10];
        int64_t idx[10];
        /* the base pattern runs */
        KFT_CHECKF(kf_run_ranges(k[ax], 10, 8, args, 2, &v, out, idx) == KF_OK, "base: %s",
                   kf_errmsg(ctx));
        switch (cases[c].arr) {
        case 0: R[cases[c].idx] = cases[c].val; break;
        case 1: S[cases[c].idx] = cases[c].val; break;
        case 2: D[cases[c].idx] = cases[c].val; break;
        case 3: *(ax ? &v.nci : &v.ncj) = cases[c].val; break;
        case 4: *(ax ? &v.nredj : &v.nredi) = cases[c].val; break;
        case 5: *(ax ? &v.ranges_i : &v.ranges_j) = NULL; break;
        case 6: *(ax ? &v.slices_i : &v.slices_j) = NULL; break;
        case 7: *(ax ? &v.redranges_j : &v.redranges_i) = NULL; break;
        }
        memset(out, GARBAGE, sizeof out), memset(idx, GARBAGE, sizeof idx);
        int st = kf_run_ranges(k[ax], 10, 8, args, 2, &v, out, idx);
        KFT_CHECKF(st == KF_ERR_ARG && strstr(kf_errmsg(ctx), cases[c].msg),
                   "case %zu: got %s '%s', expected '%s'", c, kf_status_name(st), kf_errmsg(ctx),
                   cases[c].msg);
        int untouched = 1;
        for (int64_t b = 0; b < rows; b++) {
            uint64_t ob;
            memcpy(&ob, &out[b], 8);
            untouched &= ob == 0x5a5a5a5a5a5a5a5aull && (uint64_t)idx[b] == 0x5a5a5a5a5a5a5a5aull;
        }
        KFT_CHECKF(untouched, "case %zu: the output was written", c);
        /* The other triple is never read: the kernel of the other axis runs. */
        if (cases[c].arr < 3)
            KFT_CHECKF(kf_run_ranges(k[!ax], 10, 8, args, 2, &v, out, idx) == KF_OK,
                       "case %zu, other axis: %s", c, kf_errmsg(ctx));
    }
    /* No pattern at all; a pattern for bigger clouds than the run's. */
    double out[10];
    int64_t idx[10];
    KFT_CHECK(kf_run_ranges(k[1], 10, 8, args, 2, NULL, out, idx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "rg is NULL"));
    const int64_t ri[] = {0, 10}, si[] = {1}, rj[] = {0, 8};
    kf_ranges v = {1, ri, si, 1, rj, 0, NULL, NULL, 0, NULL};
    KFT_CHECK(kf_run_ranges(k[1], 9, 8, args, 2, &v, out, idx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "ends beyond the 9 rows of M"));
    KFT_CHECK(kf_run_ranges(k[1], 10, 7, args, 2, &v, out, idx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "ends beyond the 7 rows of N"));
    /* The usual kf_run checks come first, with kf_run_ranges' name. */
    KFT_CHECK(kf_run_ranges(k[1], 10, 8, args, 2, &v, NULL, idx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "kf_run_ranges: out is NULL"));
    KFT_CHECK(kf_run_ranges(k[1], 10, 8, args, 1, &v, out, idx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "kf_run_ranges: nargs is 1"));
    KFT_CHECK(kf_run_ranges(NULL, 10, 8, args, 2, &v, out, idx) == KF_ERR_ARG);
done:
    kf_kernel_free(k[0]);
    kf_kernel_free(k[1]);
    kf_free(ctx);
}

/* ---- 4. many clusters: the same bits on 1, 2 and 3 threads ---- */

KFT_TEST(ranges_run_many_clusters_threads)
{
    const int64_t M = 3000, N = 2800;
    const kft_red_case *R[3] = {&REDS[0], &REDS[6], &REDS[9]}; /* Sum, Min_ArgMin, KMin_ArgKMin */
    kf_ctx *ctx[3];
    for (int t = 0; t < 3; t++)
        ctx[t] = ctx_threads(t + 1);
    if (!KFT_CHECK(ctx[0] && ctx[1] && ctx[2]))
        goto done;
    kft_rng g;
    kft_rng_seed(&g, 4242);
    kft_pat p;
    /* about 500 clusters of 0..11 points per cloud, 1/16 of the pairs kept */
    if (!KFT_CHECK(mask_pat(ctx[0], &g, M, N, 1, 16, &p) == 0))
        goto done;
    KFT_CHECKF(p.nc[0] >= 400 && p.nc[1] >= 400, "%lld x %lld clusters", (long long)p.nc[0],
               (long long)p.nc[1]);
    for (int c = 0; c < 3; c++)
        for (int axis = 0; axis <= 1; axis++) {
            kf_dtype dt = c == 1 ? KF_FLOAT64 : KF_FLOAT32;
            kft_spec s = spec_of(R[c], axis, dt, KF_SUM_AUTO);
            kf_kernel *k[3] = {NULL, NULL, NULL};
            res o[3] = {{0}};
            kft_data d = {0};
            int64_t rows = axis == 1 ? M : N;
            for (int t = 0; t < 3; t++)
                if (!KFT_CHECK(k[t] = kft_compile(ctx[t], &s, KF_JIT_TCC)))
                    goto next;
            if (!KFT_CHECK(kft_data_make(&d, k[0], M, N, -1, 1, 0, 77 + (uint64_t)c) == 0))
                goto next;
            for (int t = 0; t < 3; t++)
                if (!KFT_CHECK(res_alloc(&o[t], k[t], rows) == 0) ||
                    !KFT_CHECKF(run_ranges(k[t], M, N, &d, &p, &o[t]) == KF_OK, "%s",
                                kf_errmsg(ctx[t])))
                    goto next;
            for (int t = 1; t < 3; t++)
                KFT_CHECKF(!memcmp(o[t].out, o[0].out, o[0].ob) &&
                               !memcmp(o[t].idx, o[0].idx, o[0].ib),
                           "%s axis %d: %d threads differ from 1", R[c]->name, axis, t + 1);
            if (c == 0) { /* and one of them against the oracle */
                char what[64];
                snprintf(what, sizeof what, "many clusters, Sum axis %d", axis);
                KFT_CHECKF(check_rows(k[0], &d, M, N, &p, &o[0], what) == 0, "%s", what);
            }
        next:
            for (int t = 0; t < 3; t++)
                res_free(&o[t]), kf_kernel_free(k[t]);
            kft_data_free(&d);
        }
    kft_pat_free(&p);
done:
    for (int t = 0; t < 3; t++)
        kf_free(ctx[t]);
}
