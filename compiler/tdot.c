/*
 * tdot.c -- TensorDot's index arithmetic, from the lists of its node
 * (kfc_tdot, ir.h): the kept axes, their dims and strides in a, b and the
 * output. One place, so that the checker, the IR check, the emitters, the
 * reference evaluator and autodiff read the lists the same way.
 */
#include "compiler/ir.h"

/* Product of n dims, stopping past KFC_MAX_DIM (no overflow for any list). */
static int64_t prod(const int32_t *d, int n)
{
    int64_t p = 1;
    for (int k = 0; k < n && p <= KFC_MAX_DIM; k++)
        p *= d[k];
    return p;
}

static void strides(const int32_t *d, int n, int64_t *st)
{
    int64_t p = 1;
    for (int k = n - 1; k >= 0; k--) {
        st[k] = p;
        p = p <= KFC_MAX_DIM ? p * d[k] : p;
    }
}

static int contracted(const uint8_t *c, int nc, int ax)
{
    for (int t = 0; t < nc; t++)
        if (c[t] == ax)
            return 1;
    return 0;
}

void kfc_tdot_shape_of(const kfc_tdot *t, kfc_tdot_shape *s)
{
    s->nka = 0, s->nk = 0;
    for (int w = 0; w < 2; w++) {
        int n = w ? t->nb : t->na;
        for (int ax = 0; ax < n; ax++)
            if (!contracted(w ? t->cb : t->ca, t->nc, ax)) {
                s->kax[s->nk] = ax;
                s->kdim[s->nk++] = (w ? t->db : t->da)[ax];
            }
        if (!w)
            s->nka = s->nk;
    }
    for (int k = 0; k < s->nk; k++) {
        int64_t st = 1;
        for (int q = 0; q < s->nk; q++)
            if (t->perm[q] > t->perm[k] && st <= KFC_MAX_DIM)
                st *= s->kdim[q];
        s->ostride[k] = st;
    }
    for (int c = 0; c < t->nc; c++)
        s->cdim[c] = t->da[t->ca[c]];
    strides(t->da, t->na, s->astride);
    strides(t->db, t->nb, s->bstride);
    s->dim = prod(s->kdim, s->nk);
    s->dima = prod(t->da, t->na);
    s->dimb = prod(t->db, t->nb);
}
