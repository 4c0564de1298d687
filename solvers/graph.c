/* graph.c -- graph operators of a kernel operator K: the degrees D = K 1
 * (computed once), L = diag(D) - K, L_norm = I - D^-1/2 K D^-1/2 and the
 * normalized affinity D^-1/2 K D^-1/2, built from the combinators. For a
 * distributed K every rank computes the degrees of its own rows (one
 * distributed matvec) and its diagonal factors hold those rows. */
#include <math.h>
#include <stdlib.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

/* D = K 1 into d (n of dtype); KF_OK or the apply's status. */
static int degrees(kf_linop *K, void *d)
{
    void *ones = kfs_alloc(K->nloc, kfs_dsize(K->dtype));
    if (!ones)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory");
    for (int64_t i = 0; i < K->nloc; i++)
        kfs_set(K->dtype, ones, i, 1.0);
    int rc = kf_linop_apply(K, ones, d, 1);
    free(ones);
    return rc;
}

/* D^-1/2 K D^-1/2, or NULL with the message (a degree <= 0 or not finite is
 * KF_ERR_ARG naming the row: the normalization is undefined there). */
static kf_linop *affinity(kf_linop *K, const void *d)
{
    void *s = kfs_alloc(K->nloc, kfs_dsize(K->dtype));
    int rc = s ? KF_OK : kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory");
    for (int64_t i = 0; rc == KF_OK && i < K->nloc; i++) {
        double v = kfs_get(K->dtype, d, i);
        if (!(v > 0) || !isfinite(v))
            rc = kfr_error(K->ctx, KF_ERR_ARG,
                           "kf_linop_graph: degree D[%lld] = %g; the normalized Laplacian needs "
                           "every degree > 0 and finite", (long long)(kfs_row0(K) + i), v);
        else
            kfs_set(K->dtype, s, i, 1.0 / sqrt(v));
    }
    if (kfs_agree(K->ctx, K->dist, rc) != KF_OK) {
        free(s);
        return NULL;
    }
    kf_linop *S = kfs_diag_like(K, s);
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
    void *d = deg_out ? deg_out : kfs_alloc(K->nloc, kfs_dsize(K->dtype));
    if (!d)
        return kfr_error(K->ctx, KF_ERR_NOMEM, "kf_linop_graph: out of memory"), NULL;
    int rc = KF_OK;
    if (deg) {
        for (int64_t i = 0; i < K->nloc; i++)
            kfs_set(K->dtype, d, i, kfs_get(K->dtype, deg, i));
    } else {
        rc = degrees(K, d);
    }
    kf_linop *out = NULL;
    if (rc == KF_OK && kind == KF_GRAPH_LAPLACIAN) {
        kf_linop *D = kfs_diag_like(K, d);
        out = D ? kf_linop_sub(D, K) : NULL;
        kf_linop_free(D);
    } else if (rc == KF_OK) {
        kf_linop *A = affinity(K, d);
        if (A && kind == KF_GRAPH_LAPLACIAN_NORM) {
            kf_linop *I = kfs_identity_like(K);
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
