/* graph.c -- graph operators of a kernel operator K: the degrees D = K 1
 * (computed once), L = diag(D) - K, L_norm = I - D^-1/2 K D^-1/2 and the
 * normalized affinity D^-1/2 K D^-1/2, built from the combinators. */
#include <math.h>
#include <stdlib.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

/* D = K 1 into d (n of dtype); KF_OK or the apply's status. */
static int degrees(kf_linop *K, void *d)
{
    void *ones = kfs_alloc(K->n, kfs_dsize(K->dtype));
    if (!ones)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory");
    for (int64_t i = 0; i < K->n; i++)
        kfs_set(K->dtype, ones, i, 1.0);
    int rc = kf_linop_apply(K, ones, d, 1);
    free(ones);
    return rc;
}

/* D^-1/2 K D^-1/2, or NULL with the message (a degree <= 0 or not finite is
 * KF_ERR_ARG naming the row: the normalization is undefined there). */
static kf_linop *affinity(kf_linop *K, const void *d)
{
    void *s = kfs_alloc(K->n, kfs_dsize(K->dtype));
    if (!s)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory"), NULL;
    for (int64_t i = 0; i < K->n; i++) {
        double v = kfs_get(K->dtype, d, i);
        if (!(v > 0) || !isfinite(v)) {
            free(s);
            return kfr_error(K->ctx, KF_ERR_ARG,
                             "kf_linop_graph: degree D[%lld] = %g; the normalized Laplacian needs "
                             "every degree > 0 and finite", (long long)i, v), NULL;
        }
        kfs_set(K->dtype, s, i, 1.0 / sqrt(v));
    }
    kf_linop *S = kf_linop_diag(K->ctx, K->dtype, K->n, s);
    free(s);
    kf_linop *KS = S ? kf_linop_compose(K, S) : NULL;
    kf_linop *A = KS ? kf_linop_compose(S, KS) : NULL;
    kf_linop_free(S);
    kf_linop_free(KS);
    return A;
}

kf_linop *kf_linop_graph(kf_linop *K, kf_graph kind, const void *deg, void *deg_out)
{
    if (!K)
        return NULL;
    kfr_clear_error(K->ctx);
    if (kind < KF_GRAPH_LAPLACIAN || kind > KF_GRAPH_AFFINITY_NORM)
        return kfr_error(K->ctx, KF_ERR_ARG, "kf_linop_graph: unknown kind %d", (int)kind), NULL;
    void *d = deg_out ? deg_out : kfs_alloc(K->n, kfs_dsize(K->dtype));
    if (!d)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory"), NULL;
    int rc = KF_OK;
    if (deg) {
        for (int64_t i = 0; i < K->n; i++)
            kfs_set(K->dtype, d, i, kfs_get(K->dtype, deg, i));
    } else {
        rc = degrees(K, d);
    }
    kf_linop *out = NULL;
    if (rc == KF_OK && kind == KF_GRAPH_LAPLACIAN) {
        kf_linop *D = kf_linop_diag(K->ctx, K->dtype, K->n, d);
        out = D ? kf_linop_sub(D, K) : NULL;
        kf_linop_free(D);
    } else if (rc == KF_OK) {
        kf_linop *A = affinity(K, d);
        if (A && kind == KF_GRAPH_LAPLACIAN_NORM) {
            kf_linop *I = kf_linop_identity(K->ctx, K->dtype, K->n);
            out = I ? kf_linop_sub(I, A) : NULL;
            kf_linop_free(I);
            kf_linop_free(A);
        } else {
            out = A;
        }
    }
    if (d != deg_out)
        free(d);
    return out;
}
