/* spectral.c -- kf_spectral: eigenpairs of K, L = diag(D) - K or
 * L_norm = I - D^-1/2 K D^-1/2 with the degrees computed once, in three modes:
 *   DIRECT   kf_eigsh on the asked operator (what scipy's eigsh does);
 *   SHIFTED  the smallest of a Laplacian as the largest ('LA') of c I - L
 *            (c = 1: the normalized affinity; c = max D for L), lambda = c - mu;
 *   COARSE   SHIFTED started from a coarse solve: the same problem on a
 *            subsample (every (n/m)-th point of a block-sparse operator's sorted
 *            rows, keeping its pattern; else a random one), its eigenvectors
 *            extended to all points through the kernel (Nystrom /
 *            Nadaraya-Watson): the block solver's start block, or summed into
 *            ARPACK's v0. AUTO picks it for the block solver (149 -> 55 block
 *            applies on the 1e5 Swiss roll); ARPACK gains nothing from a start
 *            (its restarts, not the start, set its count).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

void kf_spectral_opts_init(kf_spectral_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    kf_eigsh_opts_init(&o->eig);
    o->mode = KF_SPECTRAL_AUTO;
}

static int smallest(kf_which w) { return w == KF_WHICH_SM || w == KF_WHICH_SA; }

/* Whether kf_spectral runs the block solver for o on n points (which: the
 * operator's, after the shift). AUTO: where it applies and the problem is
 * large (at 1e5 points it did 2.8x less kernel work than ARPACK, and in
 * float32 its double-precision Rayleigh-Ritz gave eigenvalues 10x closer to
 * float64's: docs/solvers.md); small problems keep ARPACK's machine precision. */
static int uses_block(const kf_spectral_opts *o, kf_which which, int64_t n)
{
    int bm = o->block > 0 ? o->block : o->eig.k + 1;
    return o->solver == KF_SOLVER_BLOCK ||
           (o->solver == KF_SOLVER_AUTO && which == KF_WHICH_LA && n >= KF_SOLVER_BLOCK_AUTO_N &&
            bm >= o->eig.k && bm <= KFS_MAX_BLOCK);
}

/* The subsample size of COARSE, or 0 when none makes sense for n and k.
 * Default: a quarter of the points for the block solver (measured on the
 * 1e5 Swiss roll: 149 block applies from a random start, 139 from 2,000
 * points, 90 from n/10, 64 from n/4; the coarse solve costs about (m/n)^2 of
 * the fine one's applies), else 2,000 points for ARPACK (whose restarts,
 * not the start, set its count). */
static int64_t coarse_size(const kf_spectral_opts *o, int64_t n, int block)
{
    int64_t m = o->coarse_n;
    if (m == 0) {
        m = block ? n / 4 : n / 4 < 2000 ? n / 4 : 2000;
        if (m < 4 * (int64_t)o->eig.k)
            m = 4 * (int64_t)o->eig.k;
    }
    int bm = o->block > 0 ? o->block : o->eig.k + 1;
    if (block && m < 3 * (int64_t)bm) /* the block solver needs 3 block <= m */
        return 0;
    return m > o->eig.k + 1 && m < n ? m : 0;
}

/* The operator whose eigenpairs are solved for, and (shifted modes) the
 * constant c of lambda = c - mu. D (n of dtype) is the degree vector. */
static kf_linop *target(kf_linop *K, int lap, int shifted, const void *D, double *c)
{
    *c = 0;
    if (lap == 0)
        return K->refs++, K;
    if (!shifted)
        return kf_linop_graph(K, (kf_graph)lap, D, NULL);
    if (lap == KF_GRAPH_LAPLACIAN_NORM) {
        *c = 1;
        return kf_linop_graph(K, KF_GRAPH_AFFINITY_NORM, D, NULL);
    }
    /* c I - L = (c I - diag(D)) + K, c = max D >= every eigenvalue of L would
     * need 2 max D; LA does not need c to bound anything, only to keep the
     * shift exact, so max D keeps the numbers small. */
    double mx = 0;
    for (int64_t i = 0; i < K->nloc; i++)
        mx = fmax(mx, kfs_get(K->dtype, D, i));
    if (kfs_max(K, &mx, 1) != KF_OK) /* max D over every rank's rows */
        return kfr_error(K->ctx, KF_ERR_INTERNAL, "kf_spectral: a reduction across ranks failed"),
               NULL;
    *c = mx;
    void *s = kfs_alloc(K->nloc, kfs_dsize(K->dtype));
    if (!s)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_spectral: out of memory"), NULL;
    for (int64_t i = 0; i < K->nloc; i++)
        kfs_set(K->dtype, s, i, mx - kfs_get(K->dtype, D, i));
    kf_linop *S = kfs_diag_like(K, s);
    free(s);
    kf_linop *T = S ? kf_linop_add(S, K) : NULL;
    kf_linop_free(S);
    return T;
}

/* The degrees D = K 1 (n of dtype, malloc'd), or NULL with the message. */
static void *degrees(kf_linop *K)
{
    size_t es = kfs_dsize(K->dtype);
    /* distributed: this rank's rows of D, from one collective matvec */
    int64_t n = K->nloc;
    char *b = kfs_alloc(2 * n + 1, es);
    if (!b)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_spectral: out of memory"), NULL;
    for (int64_t i = 0; i < n; i++)
        kfs_set(K->dtype, b, i, 1.0);
    if (kf_linop_apply(K, b, b + (size_t)n * es, 1) != KF_OK) {
        free(b);
        return NULL;
    }
    memmove(b, b + (size_t)n * es, (size_t)n * es);
    return b;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* m distinct indices in 0..n-1, ascending (keeps a block-sparse order local). */
static int64_t *subsample(int64_t n, int64_t m, uint64_t seed)
{
    int64_t *all = kfs_alloc(n, sizeof *all);
    if (!all)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        all[i] = i;
    uint64_t st = seed ^ 0x5bd1e995u;
    for (int64_t i = 0; i < m; i++) { /* partial Fisher-Yates */
        int64_t j = i + (int64_t)(kfs_rand(&st) % (uint64_t)(n - i));
        int64_t t = all[i];
        all[i] = all[j], all[j] = t;
    }
    qsort(all, (size_t)m, sizeof *all, cmp_i64);
    return all;
}

/* m of n rows spread evenly through them: row floor(r n / m) for r < m. A
 * block-sparse operator's rows are sorted by cluster, so this takes about
 * every (n/m)-th point of every cluster, and the subsample's clusters are
 * ranges again (kfs_map_ranges). */
int64_t *kfs_strided_rows(int64_t n, int64_t m)
{
    int64_t *idx = kfs_alloc(m, sizeof *idx);
    for (int64_t r = 0; idx && r < m; r++)
        idx[r] = (int64_t)((__int128)r * n / m);
    return idx;
}

/* The block-sparse pattern of a strided subsample: row idx[r] lies in [s, e)
 * iff ceil(s m / n) <= r < ceil(e m / n), so every range maps to a range of
 * the subsample (perhaps empty) and every kept block of the full pattern to
 * the same block of the subsample's: its pairs within the cutoff are all
 * still computed. sub: subsample x subsample; ext: every row x the
 * subsample (the extension of the coarse eigenvectors). */
static int64_t map_row(int64_t s, int64_t n, int64_t m)
{
    return (int64_t)(((__int128)s * m + n - 1) / n);
}

int kfs_map_ranges(const kf_ranges *rg, int64_t n, int64_t m, kfs_sub_ranges *sr)
{
    static const int64_t none[4] = {0, 0, 0, 0};
    return kfs_map_ranges_at(rg, n, m, none, sr);
}

int kfs_map_ranges_at(const kf_ranges *rg, int64_t n, int64_t m, const int64_t off[4],
                      kfs_sub_ranges *sr)
{
    int64_t a = 2 * rg->nci, b = 2 * rg->nredj, c = 2 * rg->ncj, d = 2 * rg->nredi;
    sr->buf = kfs_alloc(a + b + c + d + 1, sizeof *sr->buf);
    if (!sr->buf)
        return KF_ERR_NOMEM;
    int64_t *ri = sr->buf, *rj = ri + a, *cj = rj + b, *ci = cj + c;
    for (int64_t q = 0; q < a; q++)
        ri[q] = map_row(rg->ranges_i[q] + off[0], n, m) - off[2];
    for (int64_t q = 0; q < b; q++)
        rj[q] = map_row(rg->redranges_j[q] + off[1], n, m) - off[3];
    for (int64_t q = 0; q < c; q++)
        cj[q] = map_row(rg->ranges_j[q] + off[1], n, m) - off[3];
    for (int64_t q = 0; q < d; q++)
        ci[q] = map_row(rg->redranges_i[q] + off[0], n, m) - off[2];
    sr->sub = (kf_ranges){rg->nci, ri, rg->slices_i, rg->nredj, rj,
                          rg->ncj, cj, rg->slices_j, rg->nredi, ci};
    /* rows: the full ones; columns: the subsample's */
    sr->ext = (kf_ranges){rg->nci, rg->ranges_i, rg->slices_i, rg->nredj, rj,
                          rg->ncj, cj, rg->slices_j, rg->nredi, rg->redranges_i};
    return KF_OK;
}

/* The coarse-to-fine starting vector v0 (n of dtype): solve on m points,
 * extend each eigenvector f to every point x_i as the kernel average
 * sum_j K(x_i, s_j) f_j / sum_j K(x_i, s_j) (one kernel run of width k + 1
 * for all of them), scale by sqrt(D) for L_norm (its eigenvectors are
 * D^1/2 times smooth functions), normalize and sum.
 * Distributed (collective): the subsample is the same on every rank, the
 * coarse solve a distributed one on its m rows (each rank the subsample
 * rows among its own), its m x (k + 1) block allgathered (m is small), each
 * rank extends to its own rows against its j rows' subsample, and the norms
 * are sums over ranks; v0, X0 and D are the rank's rows. */
static int coarse_start(kf_linop *K, const kf_spectral_opts *o, const void *D, int64_t m,
                        void *v0, double *X0, kf_eigsh_report *rep)
{
    kf_ctx *ctx = K->ctx;
    kf_dtype t = K->dtype;
    size_t es = kfs_dsize(t);
    int64_t n = K->n, nl = K->nloc; /* global rows, and those held here */
    int k = o->eig.k, lap = o->laplacian;
    double t0 = kfs_now();
    kfs_sub_ranges sr = {0};
    int64_t *idx = K->has_rg ? kfs_strided_rows(n, m) : subsample(n, m, o->eig.seed);
    /* distributed: the subsample rows among this rank's rows and j rows */
    int64_t off[4] = {kfs_row0(K), K->dist ? K->j0 : 0, 0, 0};
    if (idx && K->dist)
        for (int64_t r = 0; r < m; r++) {
            off[2] += idx[r] < off[0];
            off[3] += idx[r] < off[1];
        }
    int rc = idx && (!K->has_rg || kfs_map_ranges_at(&K->rg, n, m, off, &sr) == KF_OK)
                 ? KF_OK
                 : kfr_error(ctx, KF_ERR_NOMEM, "kf_spectral: out of memory");
    if ((rc = kfs_agree(ctx, K->dist, rc)) != KF_OK) {
        free(idx), free(sr.buf);
        return rc;
    }
    void *store = NULL;
    kf_linop *sub = kfs_formula_subsample(K, idx, m, &store, K->has_rg ? &sr.sub : NULL);
    free(idx);
    if (!sub) {
        free(sr.buf);
        return kf_status_of(ctx);
    }
    int64_t sl = sub->nloc, sj = K->dist ? sub->nj : m; /* the sub-operator's rows, j rows */
    char *vals = kfs_alloc(k, es), *U = kfs_alloc(m * (k + 1), es), *G = kfs_alloc(nl * (k + 1), es);
    void *Ds = NULL;
    rc = vals && U && G ? KF_OK : kfr_error(ctx, KF_ERR_NOMEM, "kf_spectral: out of memory");
    kf_spectral_opts so = *o;
    /* AUTO for a Laplacian: shifted, or itself coarse when the subsample is
     * still large for the block solver (1e6 -> 2.5e5 -> 62,500 points). */
    so.mode = KF_SPECTRAL_AUTO;
    so.coarse_n = 0;
    if (!smallest(o->eig.which) || lap == 0)
        so.mode = KF_SPECTRAL_DIRECT;
    so.eig.v0 = NULL;
    so.eig.ncv = 0;
    so.eig.tol = 1e-4; /* a start vector needs no more */
    /* The caller's progress callbacks follow the fine solve: the coarse one's
     * counts would restart under them. Its end is logged instead (below). */
    so.eig.progress = NULL;
    so.eig.progress_residual = NULL;
    kf_eigsh_report srep;
    char *Uk = NULL;
    if (rc == KF_OK && (Uk = kfs_alloc(sl * k + 1, es)) == NULL)
        rc = kfr_error(ctx, KF_ERR_NOMEM, "kf_spectral: out of memory");
    if ((rc = kfs_agree(ctx, K->dist, rc)) == KF_OK) {
        rc = kf_spectral(sub, &so, vals, Uk, NULL, &srep, NULL);
        if (rc == KF_ERR_NOCONV) /* what did converge still makes a start; NaN columns are dropped */
            rc = KF_OK;
        rep->matvecs_coarse = srep.matvecs + 1;
        if (rc == KF_OK)
            kfr_log(ctx, KF_LOG_INFO, "kf_spectral: coarse start on %lld of %lld points (%s): "
                    "%lld matvecs, %.3g s", (long long)m, (long long)n,
                    K->has_rg ? "every (n/m)-th point, block-sparse" : "a random subsample, dense",
                    (long long)srep.matvecs, kfs_now() - t0);
    }
    if (rc == KF_OK && lap == KF_GRAPH_LAPLACIAN_NORM && !(Ds = degrees(sub)))
        rc = kf_status_of(ctx);
    if (rc == KF_OK) {
        /* U = [f_1 .. f_k, 1] on the subsample, f = D_s^-1/2 u for L_norm
         * (distributed: this rank's rows of it, at their place in U). */
        char *Ul = U + (size_t)(kfs_row0(sub) * (k + 1)) * es;
        for (int64_t j = 0; j < sl; j++) {
            double sc = Ds ? 1 / sqrt(kfs_get(t, Ds, j)) : 1;
            for (int c = 0; c < k; c++) {
                double u = kfs_get(t, Uk, j * k + c);
                kfs_set(t, Ul, j * (k + 1) + c, isnan(u) ? 0 : sc * u);
            }
            kfs_set(t, Ul, j * (k + 1) + k, 1.0);
        }
        if (K->dist && kf_comm_allgather_rows(K->dist->comm, U, m, kfs_row0(sub), sl,
                                              (int64_t)es * (k + 1)) != KF_OK)
            rc = kfr_error(ctx, KF_ERR_INTERNAL, "kf_spectral: gathering the coarse vectors "
                           "failed");
    }
    if (rc == KF_OK) {
        kf_kernel *ker = kfs_formula_kernel(K, k + 1);
        const void **args = calloc((size_t)K->nargs, sizeof *args);
        if (!ker || !args) {
            rc = ker ? kfr_error(ctx, KF_ERR_NOMEM, "kf_spectral: out of memory")
                     : kf_status_of(ctx);
        } else {
            for (int v = 0; v < K->nargs; v++) {
                int cat;
                int64_t dim;
                args[v] = K->args[v];
                if (v != K->var && kf_kernel_var(ker, v, &cat, &dim) == KF_OK && cat == 1)
                    args[v] = sub->args[v]; /* j-variables: the subsample */
            }
            /* the vector: the subsample's rows that are this rank's j rows */
            args[K->var] = U + (size_t)(off[3] * (k + 1)) * es;
            rc = nl == 0         ? KF_OK
                 : K->has_rg     ? kf_run_ranges(ker, nl, sj, args, K->nargs, &sr.ext, G, NULL)
                                 : kf_run(ker, nl, sj, args, K->nargs, G, NULL);
        }
        free(args);
    }
    double *acc = NULL, *nrm = NULL;
    if ((rc = kfs_agree(ctx, K->dist, rc)) == KF_OK) {
        acc = calloc((size_t)nl + 1, sizeof *acc);
        nrm = calloc((size_t)k + 1, sizeof *nrm);
        rc = acc && nrm ? KF_OK : kfr_error(ctx, KF_ERR_NOMEM, "kf_spectral: out of memory");
        rc = kfs_agree(ctx, K->dist, rc);
    }
    if (rc == KF_OK) {
        for (int64_t i = 0; i < nl; i++) {
            double w = kfs_get(t, G, i * (k + 1) + k);
            for (int c = 0; c < k; c++) {
                double f = w > 0 ? kfs_get(t, G, i * (k + 1) + c) / w : 0;
                if (lap == KF_GRAPH_LAPLACIAN_NORM)
                    f *= sqrt(kfs_get(t, D, i));
                kfs_set(t, G, i * (k + 1) + c, f);
                nrm[c] += f * f;
            }
        }
        if (kfs_sum(K, nrm, k) != KF_OK) /* over every rank's rows */
            rc = kfr_error(ctx, KF_ERR_INTERNAL, "kf_spectral: a reduction across ranks failed");
    }
    if (rc == KF_OK) {
        for (int c = 0; c < k; c++) {
            double sc = nrm[c] > 0 ? 1 / sqrt(nrm[c]) : 0;
            for (int64_t i = 0; i < nl; i++) {
                double f = sc * kfs_get(t, G, i * (k + 1) + c);
                acc[i] += f;
                if (X0) /* the block solver's start: the vectors themselves */
                    X0[i * k + c] = f;
            }
        }
        double tot = 0;
        for (int64_t i = 0; i < nl; i++)
            tot += acc[i] * acc[i];
        if (kfs_sum(K, &tot, 1) != KF_OK)
            rc = kfr_error(ctx, KF_ERR_INTERNAL, "kf_spectral: a reduction across ranks failed");
        uint64_t st = o->eig.seed;
        kfs_rand_skip(&st, kfs_row0(K)); /* this rank's rows of the serial stream */
        for (int64_t i = 0; rc == KF_OK && i < nl; i++) /* all zero: a random start */
            kfs_set(t, v0, i, tot > 0 && isfinite(tot) ? acc[i] : kfs_rand_sym(&st));
    }
    free(acc), free(nrm);
    free(vals), free(U), free(G), free(Uk), free(Ds);
    kf_linop_free(sub);
    free(store);
    free(sr.buf);
    rep->coarse_s = kfs_now() - t0;
    return rc;
}

/* lambda = c - mu for the first nc pairs (LA order: mu ascending), reversed
 * so that lambda ascends; values, vector columns and residuals move together. */
static void unshift(kf_dtype t, int64_t n, int k, int nc, double c, void *values, void *vectors,
                    double *residuals)
{
    for (int a = 0, b = nc - 1; a <= b; a++, b--) {
        double va = kfs_get(t, values, a), vb = kfs_get(t, values, b);
        kfs_set(t, values, a, c - vb);
        kfs_set(t, values, b, c - va);
        if (a == b)
            continue;
        if (residuals) {
            double r = residuals[a];
            residuals[a] = residuals[b], residuals[b] = r;
        }
        for (int64_t i = 0; vectors && i < n; i++) {
            double xa = kfs_get(t, vectors, i * k + a), xb = kfs_get(t, vectors, i * k + b);
            kfs_set(t, vectors, i * k + a, xb);
            kfs_set(t, vectors, i * k + b, xa);
        }
    }
}

/* The mode to run for o, or -1 with the message when the asked one cannot. */
static int resolve_mode(kf_linop *K, const kf_spectral_opts *o)
{
    int lap = o->laplacian, small = smallest(o->eig.which);
    int can_shift = lap != 0 && small;
    int can_coarse = K->kind == KFS_FORMULA && (can_shift || (lap == 0 && !small &&
                                                              o->eig.which != KF_WHICH_BE));
    switch (o->mode) {
    case KF_SPECTRAL_AUTO:
        /* COARSE for the block solver (a good start block cuts its iterations:
         * 149 -> 64 block applies at 1e5 points); never for ARPACK, whose
         * matvecs a start does not cut (docs/solvers.md). */
        if (can_shift && can_coarse && uses_block(o, KF_WHICH_LA, K->n) &&
            coarse_size(o, K->n, 1))
            return KF_SPECTRAL_COARSE;
        return can_shift ? KF_SPECTRAL_SHIFTED : KF_SPECTRAL_DIRECT;
    case KF_SPECTRAL_DIRECT:
        return KF_SPECTRAL_DIRECT;
    case KF_SPECTRAL_SHIFTED:
        if (can_shift)
            return KF_SPECTRAL_SHIFTED;
        kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: the shifted mode needs a Laplacian and "
                  "which = SM or SA");
        return -1;
    case KF_SPECTRAL_COARSE:
        if (can_coarse && coarse_size(o, K->n, uses_block(o, can_shift ? KF_WHICH_LA : o->eig.which, K->n)))
            return KF_SPECTRAL_COARSE;
        kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: the coarse mode needs a formula operator "
                  "(kf_linop_formula), a Laplacian with SM/SA or K with LA/LM, and "
                  "k + 1 < coarse_n < n (and 3 block <= coarse_n for the block solver)");
        return -1;
    }
    kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: unknown mode %d", (int)o->mode);
    return -1;
}

int kf_spectral(kf_linop *K, const kf_spectral_opts *o, void *values, void *vectors,
                double *residuals, kf_eigsh_report *report, kf_spectral_mode *mode_used)
{
    if (!K)
        return KF_ERR_ARG;
    double t_start = kfs_now();
    kfr_clear_error(K->ctx);
    kf_eigsh_report dummy, *rep = report ? report : &dummy;
    memset(rep, 0, sizeof *rep);
    if (!o || !values)
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: opts and values must not be NULL");
    if (!kfs_is_kernel(K))
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: K must be a kernel or formula operator");
    if (o->laplacian != 0 && o->laplacian != KF_GRAPH_LAPLACIAN &&
        o->laplacian != KF_GRAPH_LAPLACIAN_NORM)
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: laplacian = %d (0, KF_GRAPH_LAPLACIAN "
                         "or KF_GRAPH_LAPLACIAN_NORM)", o->laplacian);
    if (o->solver != KF_SOLVER_AUTO && o->solver != KF_SOLVER_ARPACK &&
        o->solver != KF_SOLVER_BLOCK)
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: solver = %d (KF_SOLVER_AUTO, _ARPACK "
                         "or _BLOCK)", (int)o->solver);
    if (o->eig.k < 1 || o->eig.k >= K->n || o->coarse_n < 0)
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: k = %d, coarse_n = %lld: expected "
                         "1 <= k < n = %lld and coarse_n >= 0", o->eig.k, (long long)o->coarse_n,
                         (long long)K->n);
    int mode = resolve_mode(K, o);
    if (mode < 0)
        return kf_status_of(K->ctx);
    if (mode_used)
        *mode_used = (kf_spectral_mode)mode;
    void *D = NULL, *v0 = NULL;
    int rc = KF_OK;
    if (o->laplacian != 0 && !(D = degrees(K)))
        return kf_status_of(K->ctx);
    double c = 0;
    int shifted = mode != KF_SPECTRAL_DIRECT && o->laplacian != 0;
    kf_linop *T = target(K, o->laplacian, shifted, D, &c);
    if (!T)
        rc = kf_status_of(K->ctx);
    kf_eigsh_opts eo = o->eig;
    if (shifted)
        eo.which = KF_WHICH_LA;
    int bm = o->block > 0 ? o->block : o->eig.k + 1;
    int block = uses_block(o, eo.which, K->n);
    double *X0 = NULL;
    if (rc == KF_OK && block && eo.which != KF_WHICH_LA)
        rc = kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: the block solver computes the largest "
                       "eigenpairs (LA) of the operator: a Laplacian's smallest in the shifted "
                       "or coarse mode, or K with LA");
    if (rc == KF_OK && block && (bm < o->eig.k || bm > KFS_MAX_BLOCK || 3 * (int64_t)bm > K->n))
        rc = kfr_error(K->ctx, KF_ERR_ARG, "kf_spectral: block = %d: expected k = %d <= block "
                       "<= %d and 3 block <= n = %lld", bm, o->eig.k, KFS_MAX_BLOCK,
                       (long long)K->n);
    if (rc == KF_OK && mode == KF_SPECTRAL_COARSE) {
        v0 = kfs_alloc(K->nloc + 1, kfs_dsize(K->dtype));
        X0 = block ? kfs_alloc(K->nloc * o->eig.k + 1, sizeof *X0) : NULL;
        rc = v0 && (X0 || !block) ? KF_OK
                                  : kfr_error(K->ctx, KF_ERR_NOMEM, "kf_spectral: out of memory");
        if ((rc = kfs_agree(K->ctx, K->dist, rc)) == KF_OK) /* coarse_start is collective */
            rc = coarse_start(K, o, D, coarse_size(o, K->n, block), v0, X0, rep);
        eo.v0 = v0;
    }
    if (rc == KF_OK) {
        kf_eigsh_report er;
        if (block)
            rc = kfs_lobpcg(T, &eo, X0, X0 ? o->eig.k : 0, bm, values, vectors, residuals, &er);
        else
            rc = kf_eigsh(T, &eo, values, vectors, residuals, &er);
        er.matvecs_coarse = rep->matvecs_coarse;
        er.coarse_s = rep->coarse_s;
        er.solver = block ? KF_SOLVER_BLOCK : KF_SOLVER_ARPACK;
        *rep = er;
        if ((rc == KF_OK || rc == KF_ERR_NOCONV) && shifted) {
            /* The converged pairs come first (mu ascending), NaN after. */
            int nc = rep->converged < o->eig.k ? rep->converged : o->eig.k;
            unshift(K->dtype, K->nloc, o->eig.k, nc, c, values, vectors, residuals);
        }
    }
    kf_linop_free(T);
    free(D), free(v0), free(X0);
    rep->total_s = kfs_now() - t_start;
    return rc;
}
