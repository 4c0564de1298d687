/* symmetry.c -- a numeric probe that a kernel FORMULA in x and y is symmetric,
 * K(x_i, x_j) = K(x_j, x_i), before eigsh trusts it as a symmetric matrix.
 *
 * Why numeric: canonical forms differ for symmetric formulas written two
 * ways (SqDist(x,y) and SqDist(y,x)), so the structure proves too little.
 * On a sample of the user's own points, with positive weights w, the row
 * sums sum_j K(x_i, x_j) w_j and the column sums sum_j K(x_j, x_i) w_j agree
 * to rounding for a symmetric K; the reference engine (double) computes both,
 * and sum_j |K(x_i, x_j)| w_j sets the scale of "rounding". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define PROBE_RTOL 1e-9

/* out[i] = sum over the sample of term(i, j) w (axis 1: over j; axis 0: over i). */
static int probe_sum(kf_ctx *ctx, const char *formula, const char *wdef, int axis, int64_t d,
                     const double *pts, const double *w, int64_t m, double *out)
{
    char ax[48], ay[48];
    snprintf(ax, sizeof ax, "x=Vi(0,%lld)", (long long)d);
    snprintf(ay, sizeof ay, "y=Vj(1,%lld)", (long long)d);
    const char *aliases[3] = {ax, ay, wdef};
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = KF_JIT_REFERENCE;
    o.backend = KF_BACKEND_CPU;
    kf_kernel *k = kf_compile(ctx, formula, aliases, 3, "Sum", axis, KF_FLOAT64, &o);
    if (!k)
        return kf_status_of(ctx);
    const void *args[3] = {pts, pts, w};
    int rc = kf_run(k, m, m, args, 3, out, NULL);
    kf_kernel_free(k);
    return rc;
}

int kfcli_symmetry_probe(kf_ctx *ctx, const char *formula, int64_t n, int64_t d, const double *x,
                         int sampled, char *why, size_t cap)
{
    int64_t m = kfcli_probe_count(n);
    size_t fl = strlen(formula) + 16;
    double *pts = malloc(sizeof(double) * (size_t)(m * d + 4 * m + 1));
    char *f = malloc(fl), *fa = malloc(fl);
    int rc = 2;
    if (!pts || !f || !fa) {
        snprintf(why, cap, "out of memory for the symmetry probe");
        goto done;
    }
    double *w = pts + m * d, *rows = w + m, *cols = rows + m, *mag = cols + m;
    /* Evenly spread over the cloud (inputs are often sorted by something). */
    for (int64_t s = 0; s < m; s++)
        memcpy(pts + s * d, x + (sampled ? s : kfcli_probe_row(s, n)) * d,
               sizeof(double) * (size_t)d);
    for (int64_t s = 0; s < m; s++)
        w[s] = 0.5 + (double)((s * 7919 + 13) % 101) / 101.0;
    snprintf(f, fl, "(%s)*w", formula);
    snprintf(fa, fl, "Abs(%s)*w", formula);
    if (probe_sum(ctx, f, "w=Vj(2,1)", 1, d, pts, w, m, rows) ||
        probe_sum(ctx, f, "w=Vi(2,1)", 0, d, pts, w, m, cols) ||
        probe_sum(ctx, fa, "w=Vj(2,1)", 1, d, pts, w, m, mag)) {
        snprintf(why, cap, "the symmetry probe of the kernel FORMULA failed: %s", kf_errmsg(ctx));
        rc = 2;
        goto done;
    }
    rc = 0;
    for (int64_t s = 0; s < m; s++) {
        double a = rows[s], b = cols[s];
        if (a == b || isnan(a) || isnan(b)) /* NaN: nothing to judge here */
            continue;
        if (!(fabs(a - b) <= PROBE_RTOL * mag[s])) {
            snprintf(why, cap,
                     "the kernel FORMULA is not symmetric: K(x_i, x_j) != K(x_j, x_i) (on %lld of "
                     "the points, the weighted row sum at point %lld is %.6g, the column sum %.6g); "
                     "eigsh needs a symmetric kernel matrix",
                     (long long)m, (long long)kfcli_probe_row(s, n), a, b);
            rc = 1;
            break;
        }
    }
done:
    free(pts);
    free(f);
    free(fa);
    return rc;
}
