/*
 * lobpcg.c -- the block eigensolver: the k largest eigenpairs of a symmetric
 * operator by LOBPCG (Knyazev's locally optimal block preconditioned
 * conjugate gradient, here without a preconditioner), for kf_spectral's
 * KF_SOLVER_BLOCK.
 *
 * Why a block method: a kernel operator applied to a block of m columns
 * evaluates the formula once per pair for all of them (docs/solvers.md: a
 * block of 8 costs about 1.5 single matvecs), and a block method, unlike
 * ARPACK, gains from a good start block (the coarse-to-fine start).
 *
 * One iteration, with X (n x m) the current Ritz vectors, AX = A X, theta
 * their Ritz values, P the previous search directions:
 *   W  = A X - X theta                    the residuals
 *   W -= X (X^T W), then orthonormalized  (SVQB: scaled Gram, eigenvectors)
 *   AW = A W                              the iteration's only operator apply
 *   Rayleigh-Ritz on S = [X W P]          G = S^T S, H = S^T A S; the pencil
 *                                         (H, G) through G's eigenvectors,
 *                                         dropping directions G calls
 *                                         dependent (Stathopoulos-Wu)
 *   X, AX = S C, AS C; P, AP = [W P] C_WP, [AW AP] C_WP (C's top m columns)
 * AX and AP are carried by these linear combinations, never recomputed; the
 * residuals reported at the end are computed afresh (one more apply).
 * Convergence: the wanted k (the largest of the m) have |A x - theta x| <=
 * tol |theta|. The m - k extra columns are guards: they speed the
 * convergence of the k-th pair and are not returned.
 *
 * Layout: S and AS are n x 3m row-major arrays whose column slices are X,
 * W, P; the tall products go row by row (gram, combine), the small dense
 * eigenproblems to LAPACK.
 * Everything is double whatever the operator's dtype; the operator gets
 * and returns its own dtype through two conversion buffers.
 * Distributed operators: each rank holds its rows of S and AS; the Gram and
 * Rayleigh matrices and the residual norms are sums over rows, reduced
 * across ranks (bit-identical everywhere), and the small eigenproblems are
 * solved redundantly on every rank, so all of them take the same steps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

/* LAPACK (Fortran interface, column-major) for the small eigenproblems. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
            double *w, double *work, const int *lwork, int *info);

static const char who[] = "kf_spectral (block solver)";

typedef struct lob {
    kf_linop *op;
    kfr_pool *pool;   /* the context's workers: the tall products run on them */
    const kf_eigsh_opts *o;
    kf_eigsh_report *rep;
    int64_t n;
    int m, k;
    double *S, *AS;   /* (n, 3m): X | W | P */
    void *bx, *by;    /* (n, m) of the op's dtype: what kf_linop_apply reads and writes */
    double *theta;    /* (m) Ritz values, ascending */
    double t0;
} lob;

/* ---- small dense pieces ---- */

/* ---- tall-thin products, by blocks of rows on the context's pool ----
 * Not through BLAS: the arrays are n x (at most 3m) with m <= 64, and the
 * reference BLAS Debian ships walks such arrays with strides (measured: a
 * third of the solve at n = 3000). Rows are cut into fixed blocks, partial
 * Gram matrices summed in block order: the same bits whatever the number of
 * threads. */
#define LOB_ROWS 1024 /* a block of S and AS stays in L2 while the tiles pass over it */

typedef struct rows_job {
    const double *A, *B, *B2; /* gram: A^T B (and A^T B2 when B2) */
    int p, q, ld;
    int64_t n;
    double *part;             /* (blocks, p, q) row-major partials (and a second set for B2) */
    const double *Ct;         /* combine / subtract: C (s x q) transposed: row-major s x q */
    int s, ldo;
    double *Out;
    int op;                   /* 0 gram, 1 combine (Out = A C), 2 subtract (Out -= A C),
                                 3 in place (see transform_op) */
    const double *Ct2;        /* in place: the second group's C (s2 x q) transposed, or NULL */
    int s2, d1, d2;           /* in place: its rows start at column s - s2 of A's slice; the
                                 groups' outputs go to columns d1 and d2 of A's rows */
} rows_job;

/* g (p x q row-major) += sum over rows [r0, r1) of a_r^T b_r, in register
 * tiles of 4 x 4: each tile runs down the rows with its 16 sums in
 * registers (accumulating every row's outer product into memory instead
 * was store-bound: 8000 cycles a row at p = q = 24). With sym, only tiles
 * on or above the diagonal (gram2 mirrors them). */
#define TILE 4
/* One clone per vector width, picked at load time by the CPU (GCC's
 * function multiversioning): the library is built for the baseline x86-64,
 * whose 2-double SSE2 vectors left these compute-bound tiles (a 3m x 3m
 * Gram is 36 multiply-adds per double read) at a quarter of an AVX-512
 * core. Contraction stays off in every clone, so every clone gives the
 * same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define LOB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LOB_CLONES
#endif
LOB_CLONES
static void gram_tiles(const double *A, int p, const double *B, int q, int ld, int64_t r0,
                       int64_t r1, int sym, double *g)
{
    for (int i0 = 0; i0 < p; i0 += TILE)
        for (int j0 = sym ? i0 - i0 % TILE : 0; j0 < q; j0 += TILE) {
            int ni = p - i0 < TILE ? p - i0 : TILE, nj = q - j0 < TILE ? q - j0 : TILE;
            double acc[TILE][TILE] = {{0}};
            if (ni == TILE && nj == TILE) {
                for (int64_t r = r0; r < r1; r++) {
                    const double *a = A + r * ld + i0, *b = B + r * ld + j0;
                    for (int i = 0; i < TILE; i++)
                        for (int j = 0; j < TILE; j++)
                            acc[i][j] += a[i] * b[j];
                }
            } else {
                for (int64_t r = r0; r < r1; r++) {
                    const double *a = A + r * ld + i0, *b = B + r * ld + j0;
                    for (int i = 0; i < ni; i++)
                        for (int j = 0; j < nj; j++)
                            acc[i][j] += a[i] * b[j];
                }
            }
            for (int i = 0; i < ni; i++)
                for (int j = 0; j < nj; j++)
                    g[(size_t)(i0 + i) * q + j0 + j] += acc[i][j];
        }
}

/* o (q) = a (s) C, C given transposed (row-major s x q), in register tiles
 * of 4: the sums stay in registers down the s terms (updating o in memory
 * for each term was store-bound). */
static inline void row_times(const double *a, int s, const double *Ct, int q, double *o)
{
    for (int j0 = 0; j0 < q; j0 += TILE) {
        int nj = q - j0 < TILE ? q - j0 : TILE;
        double acc[TILE] = {0};
        if (nj == TILE)
            for (int t2 = 0; t2 < s; t2++) {
                const double *c = Ct + (size_t)t2 * q + j0;
                for (int j = 0; j < TILE; j++)
                    acc[j] += a[t2] * c[j];
            }
        else
            for (int t2 = 0; t2 < s; t2++) {
                const double *c = Ct + (size_t)t2 * q + j0;
                for (int j = 0; j < nj; j++)
                    acc[j] += a[t2] * c[j];
            }
        for (int j = 0; j < nj; j++)
            o[j0 + j] = acc[j];
    }
}

/* GCC would turn the row copies below back into memcpy calls, one per row
 * and slice, which cost more than the copies (measured: 15% of a solve). */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) LOB_CLONES
static void rows_task(void *arg, int64_t t)
{
    const rows_job *J = arg;
    int64_t r0 = t * LOB_ROWS, r1 = r0 + LOB_ROWS < J->n ? r0 + LOB_ROWS : J->n;
    if (J->op == 0) {
        size_t pq = (size_t)J->p * J->q;
        double *g = J->part + (size_t)t * pq * (J->B2 ? 2 : 1);
        memset(g, 0, pq * (J->B2 ? 2 : 1) * sizeof *g);
        gram_tiles(J->A, J->p, J->B, J->q, J->ld, r0, r1, J->A == J->B && J->p == J->q, g);
        if (J->B2)
            gram_tiles(J->A, J->p, J->B2, J->q, J->ld, r0, r1, 0, g + pq);
        return;
    }
    if (J->op == 3) {
        /* The row is read whole before any of it is written: in place is safe. */
        double a[3 * KFS_MAX_BLOCK], o1[KFS_MAX_BLOCK], o2[KFS_MAX_BLOCK];
        for (int64_t r = r0; r < r1; r++) {
            double *row = (double *)J->A + r * J->ld;
            for (int c = 0; c < J->s; c++)
                a[c] = row[c];
            row_times(a, J->s, J->Ct, J->q, o1);
            if (J->Ct2)
                row_times(a + J->s - J->s2, J->s2, J->Ct2, J->q, o2);
            for (int c = 0; c < J->q; c++)
                row[J->d1 + c] = o1[c];
            for (int c = 0; J->Ct2 && c < J->q; c++)
                row[J->d2 + c] = o2[c];
        }
        return;
    }
    double sign = J->op == 1 ? 1 : -1, o1[KFS_MAX_BLOCK];
    for (int64_t r = r0; r < r1; r++) {
        double *o = J->Out + r * J->ldo;
        row_times(J->A + r * J->ld, J->s, J->Ct, J->q, o1);
        for (int j = 0; j < J->q; j++)
            o[j] = (J->op == 1 ? 0 : o[j]) + sign * o1[j];
    }
}

static int64_t row_blocks(int64_t n)
{
    return (n + LOB_ROWS - 1) / LOB_ROWS;
}

/* G (p x q, column-major) = A^T B, and H = A^T B2 when B2 (the Gram and the
 * Rayleigh matrices of one basis in one pass over its rows), for slices of
 * row-major arrays with leading dimension ld. KF_OK or KF_ERR_NOMEM. */
static int gram2_local(kfr_pool *pool, const double *A, int p, const double *B, const double *B2,
                       int q, int64_t n, int ld, double *G, double *H)
{
    int64_t nb = row_blocks(n);
    size_t pq = (size_t)p * q, sets = B2 ? 2 : 1;
    rows_job J = {.A = A, .B = B, .B2 = B2, .p = p, .q = q, .ld = ld, .n = n, .op = 0};
    J.part = malloc((size_t)(nb > 0 ? nb : 1) * pq * sets * sizeof *J.part);
    if (!J.part)
        return KF_ERR_NOMEM;
    if (nb > 0)
        kfr_pool_run(pool, nb, rows_task, &J);
    int sym = A == B && p == q;
    for (size_t e = 0; e < pq; e++) {
        int i = (int)(e / (size_t)q), j = (int)(e % (size_t)q);
        double g = 0, h = 0;
        for (int64_t t = 0; t < nb; t++) {
            g += J.part[(size_t)t * pq * sets + (sym && j < i ? (size_t)j * q + i : e)];
            if (B2)
                h += J.part[(size_t)t * pq * sets + pq + e];
        }
        G[i + j * p] = g;
        if (B2)
            H[i + j * p] = h;
    }
    free(J.part);
    return KF_OK;
}

/* gram2_local summed over the ranks of a distributed operator. */
static int gram2(lob *L, const double *A, int p, const double *B, const double *B2, int q,
                 int64_t n, int ld, double *G, double *H)
{
    int rc = gram2_local(L->pool, A, p, B, B2, q, n, ld, G, H);
    rc = kfs_agree(L->op->ctx, L->op->dist, rc);
    if (rc == KF_OK && kfs_sum(L->op, G, p * q) != KF_OK)
        rc = KF_ERR_INTERNAL;
    if (rc == KF_OK && B2 && kfs_sum(L->op, H, p * q) != KF_OK)
        rc = KF_ERR_INTERNAL;
    return rc;
}

/* C (s x q column-major) transposed into a new row-major array, or NULL. */
static double *transposed(const double *C, int s, int q)
{
    double *Ct = malloc((size_t)s * q * sizeof *Ct + 1);
    for (int t = 0; Ct && t < s; t++)
        for (int j = 0; j < q; j++)
            Ct[(size_t)t * q + j] = C[t + (size_t)j * s];
    return Ct;
}

/* Out (row-major n x q, leading dimension ldo) = A C (op 1) or Out -= A C
 * (op 2), A a slice of width s (leading dimension lda), C (s x q)
 * column-major. Out must not overlap A's columns. */
static int combine_op(kfr_pool *pool, int op, const double *A, int s, int lda, const double *C,
                      int q, int64_t n, double *Out, int ldo)
{
    /* C's rows contiguous, for the inner loop. */
    double *Ct = transposed(C, s, q);
    if (!Ct)
        return KF_ERR_NOMEM;
    rows_job J = {.A = A, .s = s, .ld = lda, .Ct = Ct, .q = q, .n = n, .Out = Out, .ldo = ldo,
                  .op = op};
    if (n > 0)
        kfr_pool_run(pool, row_blocks(n), rows_task, &J);
    free(Ct);
    return KF_OK;
}

/* In place, row by row, on the array A (n rows, leading dimension ld):
 * columns [d1, d1 + q) of each row become its first s columns times C
 * (s x q, column-major) and, when C2, columns [d2, d2 + q) its columns
 * [s - s2, s) times C2 (s2 x q). Each row is read whole before it is
 * written, so the slices may overlap: no scratch array, no copy back (the
 * Rayleigh-Ritz update and the orthonormalization were a third of the
 * solver's own time in such copies). */
static int transform_op(kfr_pool *pool, double *A, int s, int ld, const double *C, int q, int d1,
                        const double *C2, int s2, int d2, int64_t n)
{
    double *Ct = transposed(C, s, q), *Ct2 = C2 ? transposed(C2, s2, q) : NULL;
    int rc = Ct && (!C2 || Ct2) ? KF_OK : KF_ERR_NOMEM;
    rows_job J = {.A = A, .s = s, .ld = ld, .Ct = Ct, .q = q, .n = n, .op = 3, .Ct2 = Ct2,
                  .s2 = s2, .d1 = d1, .d2 = d2};
    if (rc == KF_OK && n > 0)
        kfr_pool_run(pool, row_blocks(n), rows_task, &J);
    free(Ct), free(Ct2);
    return rc;
}

/* Eigenvalues (ascending, w) and vectors (in a, column-major s x s) of the
 * symmetric a. KF_OK or KF_ERR_INTERNAL (LAPACK failed). */
static int syev(double *a, int s, double *w)
{
    int lwork = -1, info = 0;
    double q;
    dsyev_("V", "U", &s, a, &s, w, &q, &lwork, &info);
    lwork = info == 0 && q >= 1 ? (int)q : 3 * s;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work)
        return KF_ERR_NOMEM;
    dsyev_("V", "U", &s, a, &s, w, work, &lwork, &info);
    free(work);
    return info == 0 ? KF_OK : KF_ERR_INTERNAL;
}

/* The basis transform of a Gram matrix G (s x s, column-major): T (s x r)
 * with T^T G T = I over the r directions whose scaled eigenvalues exceed
 * drop times the largest (SVQB). Returns r, or -1 on a failure. */
static int svqb(const double *G, int s, double drop, double *T)
{
    double *d = malloc((size_t)s * sizeof *d), *a = malloc((size_t)s * s * sizeof *a);
    double *w = malloc((size_t)s * sizeof *w);
    int r = -1;
    if (!d || !a || !w)
        goto out;
    for (int i = 0; i < s; i++)
        d[i] = G[i + i * s] > 0 ? 1 / sqrt(G[i + i * s]) : 0;
    for (int j = 0; j < s; j++)
        for (int i = 0; i < s; i++)
            a[i + j * s] = d[i] * G[i + j * s] * d[j];
    if (syev(a, s, w) != KF_OK)
        goto out;
    double top = w[s - 1];
    r = 0;
    for (int c = 0; c < s; c++) {
        if (!(w[c] > drop * top) || !(top > 0))
            continue;
        double f = 1 / sqrt(w[c]);
        for (int i = 0; i < s; i++)
            T[i + r * s] = d[i] * a[i + c * s] * f;
        r++;
    }
out:
    free(d), free(a), free(w);
    return r;
}

/* ---- the operator ---- */

/* AW slice (width w, at column c0 of AS) = A (the slice at c0 of S). */
static int apply(lob *L, int c0, int w)
{
    kf_dtype t = L->op->dtype;
    int ld = 3 * L->m;
    int64_t n = L->n;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < w; c++)
            kfs_set(t, L->bx, i * w + c, L->S[i * ld + c0 + c]);
    double t0 = kfs_now();
    int rc = kf_linop_apply(L->op, L->bx, L->by, w);
    L->rep->matvec_s += kfs_now() - t0;
    if (rc != KF_OK)
        return rc;
    L->rep->matvecs += w;
    for (int64_t i = 0; i < n && rc == KF_OK; i++)
        for (int c = 0; c < w; c++) {
            double v = kfs_get(t, L->by, i * w + c);
            if (isnan(v)) {
                rc = kfr_error(L->op->ctx, KF_ERR_ARG, "%s: the operator gave NaN in row %lld",
                               who, (long long)(kfs_row0(L->op) + i));
                break;
            }
            L->AS[i * ld + c0 + c] = v;
        }
    if ((rc = kfs_agree(L->op->ctx, L->op->dist, rc)) != KF_OK)
        return rc;
    if (L->o->progress)
        L->o->progress(L->o->progress_user, L->rep->matvecs, kfs_now() - L->t0);
    return KF_OK;
}

/* ---- the steps ---- */

/* Orthonormalizes the slice of width w at c0 of S (and, with both, of AS
 * by the same transform). Dependent columns become zero. KF_OK or a status. */
static int orthonormalize(lob *L, int c0, int w, int both)
{
    int ld = 3 * L->m;
    double *G = malloc((size_t)w * w * sizeof *G), *T = calloc((size_t)w * w, sizeof *T);
    int rc = G && T ? KF_OK : KF_ERR_NOMEM;
    if (rc == KF_OK)
        rc = gram2(L, L->S + c0, w, L->S + c0, NULL, w, L->n, ld, G, NULL);
    if (rc == KF_OK && svqb(G, w, 1e-13, T) < 0)
        rc = KF_ERR_INTERNAL;
    for (int pass = 0; rc == KF_OK && pass < 1 + both; pass++)
        rc = transform_op(L->pool, (pass ? L->AS : L->S) + c0, w, ld, T, w, 0, NULL, 0, 0, L->n);
    free(G), free(T);
    return rc;
}

/* W = A X - X theta, made orthogonal to X and orthonormal; the residual
 * norms of the m columns (relative to |theta|) go into rel. */
static int residuals(lob *L, double *rel)
{
    int m = L->m, ld = 3 * m;
    int64_t n = L->n;
    double *nr = calloc((size_t)m, sizeof *nr), *Y = malloc((size_t)m * m * sizeof *Y);
    if (!nr || !Y) {
        free(nr), free(Y);
        return KF_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < m; c++) {
            double r = L->AS[i * ld + c] - L->theta[c] * L->S[i * ld + c];
            L->S[i * ld + m + c] = r;
            nr[c] += r * r;
        }
    if (kfs_sum(L->op, nr, m) != KF_OK) {
        free(nr), free(Y);
        return KF_ERR_INTERNAL;
    }
    for (int c = 0; c < m; c++)
        rel[c] = sqrt(nr[c]) / fmax(fabs(L->theta[c]), 1e-300);
    /* W -= X (X^T W): X is orthonormal (S C with C^T G C = I). */
    int rc = gram2(L, L->S, m, L->S + m, NULL, m, n, ld, Y, NULL);
    if (rc == KF_OK)
        rc = combine_op(L->pool, 2, L->S, m, ld, Y, m, n, L->S + m, ld);
    free(nr), free(Y);
    return rc == KF_OK ? orthonormalize(L, m, m, 0) : rc;
}

/* Rayleigh-Ritz on the first s columns of S (s = 2m: X W; 3m: X W P):
 * theta and the new X, AX, P, AP. *rank gets the dimension kept; KF_OK, or
 * KF_ERR_NOCONV when fewer than m directions are independent. */
static int rayleigh_ritz(lob *L, int s, int *rank)
{
    int m = L->m, ld = 3 * m;
    int64_t n = L->n;
    double *G = malloc((size_t)s * s * sizeof *G), *H = malloc((size_t)s * s * sizeof *H);
    double *T = calloc((size_t)s * s, sizeof *T), *Hr = malloc((size_t)s * s * sizeof *Hr);
    double *TH = malloc((size_t)s * s * sizeof *TH), *w = malloc((size_t)s * sizeof *w);
    double *C = calloc((size_t)s * m, sizeof *C);
    int rc = G && H && T && Hr && TH && w && C ? KF_OK : KF_ERR_NOMEM, r = 0;
    if (rc != KF_OK)
        goto out;
    if ((rc = gram2(L, L->S, s, L->S, L->AS, s, n, ld, G, H)) != KF_OK)
        goto out;
    for (int j = 0; j < s; j++)
        for (int i = 0; i < j; i++)
            H[i + j * s] = H[j + i * s] = 0.5 * (H[i + j * s] + H[j + i * s]);
    r = svqb(G, s, 1e-12, T);
    *rank = r;
    if (r < 0) {
        rc = KF_ERR_INTERNAL;
        goto out;
    }
    if (r < m) {
        rc = KF_ERR_NOCONV;
        goto out;
    }
    /* Hr = T^T H T (r x r) */
    for (int j = 0; j < r; j++)
        for (int i = 0; i < s; i++) {
            double a = 0;
            for (int q = 0; q < s; q++)
                a += H[i + q * s] * T[q + j * s];
            TH[i + j * s] = a; /* H T */
        }
    for (int j = 0; j < r; j++)
        for (int i = 0; i < r; i++) {
            double a = 0;
            for (int q = 0; q < s; q++)
                a += T[q + i * s] * TH[q + j * s];
            Hr[i + j * r] = a;
        }
    if ((rc = syev(Hr, r, w)) != KF_OK)
        goto out;
    /* C = T V_top (s x m): the m largest, ascending. */
    for (int c = 0; c < m; c++) {
        int src = r - m + c;
        L->theta[c] = w[src];
        for (int i = 0; i < s; i++) {
            double a = 0;
            for (int q = 0; q < r; q++)
                a += T[i + q * s] * Hr[q + src * r];
            C[i + c * s] = a;
        }
    }
    /* C's rows m.. are the W and P coefficients: a view with leading dimension s. */
    double *Cw = malloc((size_t)(s - m) * m * sizeof *Cw);
    if (!Cw) {
        rc = KF_ERR_NOMEM;
        goto out;
    }
    for (int c = 0; c < m; c++)
        for (int i = 0; i < s - m; i++)
            Cw[i + c * (s - m)] = C[m + i + c * s];
    /* In one pass over each row of S (then of AS): X = S C into X's slot and
     * P = S[:, m:s] Cw (the W and P part of it) into P's slot. */
    if ((rc = transform_op(L->pool, L->S, s, ld, C, m, 0, Cw, s - m, 2 * m, n)) == KF_OK)
        rc = transform_op(L->pool, L->AS, s, ld, C, m, 0, Cw, s - m, 2 * m, n);
    free(Cw);
out:
    free(G), free(H), free(T), free(Hr), free(TH), free(w), free(C);
    return rc;
}

/* ---- progress ---- */

/* What the ETA is estimated from: the worst residual and the time, a
 * window of iterations back (LOBPCG's residuals fall roughly geometrically,
 * with bumps as pairs lock in; the window smooths them). */
#define ETA_WINDOW 10
typedef struct res_hist {
    double res[ETA_WINDOW], t[ETA_WINDOW];
} res_hist;

static void report_residual(lob *L, res_hist *h, int it, double worst, double tol)
{
    double now = kfs_now() - L->t0, eta = -1;
    int slot = it % ETA_WINDOW;
    if (it >= ETA_WINDOW && h->res[slot] > worst && worst > 0 && now > h->t[slot]) {
        /* log10 of the residual per second over the window, extrapolated to tol */
        double rate = (log10(h->res[slot]) - log10(worst)) / (now - h->t[slot]);
        eta = worst > tol ? (log10(worst) - log10(tol)) / rate : 0;
    }
    h->res[slot] = worst;
    h->t[slot] = now;
    L->o->progress_residual(L->o->progress_user, L->rep->matvecs, now, worst, eta);
}

/* ---- the solve ---- */

int kfs_lobpcg(kf_linop *op, const kf_eigsh_opts *o, const double *X0, int m0, int m,
               void *values, void *vectors, double *resid, kf_eigsh_report *rep)
{
    kf_ctx *ctx = op->ctx;
    int64_t n = op->nloc; /* the rows held here; op->n for one process */
    int k = o->k;
    lob L = {.op = op, .pool = ctx->pool, .o = o, .rep = rep, .n = n, .m = m, .k = k,
             .t0 = kfs_now()};
    memset(rep, 0, sizeof *rep);
    rep->ncv = m;
    if (k < 1 || m < k || 3 * (int64_t)m > op->n || m > KFS_MAX_BLOCK)
        return kfr_error(ctx, KF_ERR_ARG, "%s: k = %d, block %d: expected 1 <= k <= block, "
                         "3 block <= n = %lld and block <= %d", who, k, m, (long long)op->n,
                         KFS_MAX_BLOCK);
    size_t es = kfs_dsize(op->dtype);
    L.S = kfs_alloc(n * 3 * m, sizeof(double));
    L.AS = kfs_alloc(n * 3 * m, sizeof(double));
    L.bx = kfs_alloc(n * m, es);
    L.by = kfs_alloc(n * m, es);
    L.theta = calloc((size_t)m, sizeof *L.theta);
    double *rel = calloc((size_t)m, sizeof *rel);
    int rc = L.S && L.AS && L.bx && L.by && L.theta && rel
                 ? KF_OK
                 : kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for a block of %d columns "
                             "of %lld rows", who, m, (long long)n);
    rc = kfs_agree(ctx, op->dist, rc);
    int ld = 3 * m;
    double tol = o->tol > 0 ? o->tol : (op->dtype == KF_FLOAT32 ? 1e-5 : 1e-10);
    int maxiter = o->maxiter > 0 ? o->maxiter : 1000;
    if (rc == KF_OK) {
        /* The start: X0's columns, then random ones from seed. */
        uint64_t st = o->seed;
        kfs_rand_skip(&st, kfs_row0(op) * (m - (X0 ? m0 : 0))); /* this rank's rows of the stream */
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < m; c++)
                L.S[i * ld + c] = c < m0 && X0 ? X0[i * m0 + c] : kfs_rand_sym(&st);
        rc = orthonormalize(&L, 0, m, 0);
    }
    if (rc == KF_OK)
        rc = apply(&L, 0, m);
    int rank = 0;
    if (rc == KF_OK) {
        /* Rayleigh-Ritz on X alone: W's slot is zero, so its directions drop. */
        for (int64_t i = 0; i < n; i++)
            memset(L.S + i * ld + m, 0, (size_t)2 * m * sizeof(double)),
                memset(L.AS + i * ld + m, 0, (size_t)2 * m * sizeof(double));
        rc = rayleigh_ritz(&L, m + m, &rank);
        if (rc == KF_ERR_NOCONV)
            rc = kfr_error(ctx, KF_ERR_ARG, "%s: the start block is rank deficient (%d of %d "
                           "directions)", who, rank, m);
    }
    int have_p = 0, it = 0, conv = 0;
    res_hist hist;
    memset(&hist, 0, sizeof hist);
    while (rc == KF_OK) {
        rc = residuals(&L, rel);
        if (rc != KF_OK)
            break;
        conv = 0;
        double worst = 0;
        for (int c = m - k; c < m; c++) {
            conv += rel[c] <= tol;
            worst = rel[c] > worst ? rel[c] : worst;
        }
        if (conv == k || it == maxiter)
            break;
        if (o->progress_residual)
            report_residual(&L, &hist, it, worst, tol);
        if ((rc = apply(&L, m, m)) != KF_OK)
            break;
        it++;
        rc = rayleigh_ritz(&L, have_p ? 3 * m : 2 * m, &rank);
        if (rc == KF_ERR_NOCONV && have_p) /* P made the basis dependent: once without it */
            rc = rayleigh_ritz(&L, 2 * m, &rank);
        if (rc == KF_ERR_NOCONV)
            rc = kfr_error(ctx, KF_ERR_INTERNAL, "%s: the search space collapsed to %d < %d "
                           "directions", who, rank, m);
        have_p = 1;
        /* P's directions must stay independent of the new X: project them out. */
        if (rc == KF_OK) {
            double *Y = malloc((size_t)m * m * sizeof *Y);
            if (!Y) {
                rc = KF_ERR_NOMEM;
                break;
            }
            rc = gram2(&L, L.S, m, L.S + 2 * m, NULL, m, n, ld, Y, NULL);
            if (rc == KF_OK) {
                rc = combine_op(L.pool, 2, L.S, m, ld, Y, m, n, L.S + 2 * m, ld);
                if (rc == KF_OK)
                    rc = combine_op(L.pool, 2, L.AS, m, ld, Y, m, n, L.AS + 2 * m, ld);
            }
            free(Y);
            if (rc == KF_OK)
                rc = orthonormalize(&L, 2 * m, m, 1);
        }
    }
    rep->iterations = it;
    rep->restarts = 0;
    rep->converged = conv;
    if (rc == KF_OK) {
        /* The wanted k, ascending, and their residuals afresh: one apply of
         * the whole block (the width already compiled; a width-k kernel
         * would be one more compile), not counted, as for kf_eigsh. */
        kf_dtype t = op->dtype;
        for (int c = 0; c < k; c++)
            kfs_set(t, values, c, L.theta[m - k + c]);
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < m; c++)
                kfs_set(t, L.bx, i * m + c, L.S[i * ld + c]);
        if (vectors)
            for (int64_t i = 0; i < n; i++)
                memcpy((char *)vectors + (size_t)(i * k) * es,
                       (const char *)L.bx + (size_t)(i * m + m - k) * es, (size_t)k * es);
        int st = kf_linop_apply(op, L.bx, L.by, m);
        if (st != KF_OK) {
            rc = st;
        } else {
            double *nr = calloc((size_t)k, sizeof *nr);
            for (int64_t i = 0; nr && i < n; i++)
                for (int c = 0; c < k; c++) {
                    int64_t q = i * m + m - k + c;
                    double r = kfs_get(t, L.by, q) - L.theta[m - k + c] * kfs_get(t, L.bx, q);
                    nr[c] += r * r;
                }
            rep->max_residual = 0;
            rc = kfs_agree(ctx, op->dist, nr ? KF_OK
                                              : kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory",
                                                          who));
            if (rc == KF_OK && kfs_sum(op, nr, k) != KF_OK)
                rc = kfr_error(ctx, KF_ERR_INTERNAL, "%s: a reduction across ranks failed", who);
            for (int c = 0; rc == KF_OK && c < k; c++) {
                if (resid)
                    resid[c] = sqrt(nr[c]);
                rep->max_residual = fmax(rep->max_residual, sqrt(nr[c]));
            }
            free(nr);
        }
        if (rc == KF_OK && conv < k)
            rc = kfr_error(ctx, KF_ERR_NOCONV, "%s: %d of %d eigenpairs met tol %g after %d "
                           "iterations (the largest relative residual is %.3g)", who, conv, k,
                           tol, it, rel[m - k]);
    } else if (rc == KF_ERR_NOMEM && !kf_errmsg(ctx)[0]) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory", who);
    } else if (rc == KF_ERR_INTERNAL && !kf_errmsg(ctx)[0]) {
        kfr_error(ctx, KF_ERR_INTERNAL, "%s: LAPACK's dsyev failed", who);
    }
    free(L.S), free(L.AS), free(L.bx), free(L.by), free(L.theta), free(rel);
    rep->total_s = kfs_now() - L.t0;
    rep->arpack_s = rep->total_s - rep->matvec_s;
    return rc;
}
