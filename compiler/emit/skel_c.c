/* skel_c.c -- the reduction loop skeletons of generated C: per output row, the state's
 * neutral value, the fold of one term, and the finalization (compiler/reductions.def). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit/skel.h"

void kfc_fmt_double(char *dst, size_t cap, double v)
{
    /* %.17g round-trips every double; infinities and NaN have no C literal, and
     * an integer-looking "-0" would lose its sign, hence the special cases. */
    if (isnan(v)) {
        snprintf(dst, cap, "(0.0/0.0)");
        return;
    }
    if (isinf(v)) {
        snprintf(dst, cap, v > 0 ? "(1.0/0.0)" : "(-1.0/0.0)");
        return;
    }
    int n = snprintf(dst, cap, "%.17g", v);
    if (n > 0 && (size_t)n + 2 < cap && !strpbrk(dst, ".e"))
        memcpy(dst + n, ".0", 3);
}

/* Components up to this many are unrolled; libtcc emits a loop's overhead verbatim. */
#define UNROLL_MAX 4

void kfc_buf_each(kfc_buf *b, const char *indent, int64_t n, const char *tmpl)
{
    kfc_buf_each_upto(b, indent, n, tmpl, UNROLL_MAX);
}

/* Formats into a template for kfc_buf_each (names are generated identifiers). */
#define EACH(b, in, n, ...) kfc_buf_eachf(b, UNROLL_MAX, in, n, __VA_ARGS__)

/* Indentation of row-level and term-level code in the emitter's loops. */
#define ROW "        "
#define TERM "                "

/* ---- row state, term fold, finalization ---- */

/*
 * Where the row state lives. The output row itself holds whatever state has
 * the output's type and layout (Sum totals, Max/Min values, KMin slots, LSE
 * sums): the row belongs to this call until it is finished, and this keeps the
 * stack bounded by the formula's own scratch plus at most one extra array.
 *   kf_so  KF_T *  out + r*valdim  (when valdim > 0)
 *   kf_sx  kf_i64 * idx + r*idxdim (when idxdim > 0)
 *   kf_sv  KF_T[]  values of ArgMax/ArgMin/ArgKMin, which output none
 *   kf_sn  terms folded so far (first-term rule, KMin fill count, Sum blocks)
 */
static const char *vals_name(const kfc_red *r)
{
    return r->valdim > 0 ? "kf_so" : "kf_sv";
}

void kfc_skel_row_begin(kfc_buf *b, const kfc_red *r)
{
    int64_t D = r->D, K = r->K, E = r->E;
    kfc_buf_printf(b, ROW "/* row state: %s */\n", kfc_red_info[r->id].name);
    if (r->valdim > 0)
        kfc_buf_printf(b, ROW "KF_T *kf_so = kf_out + r * %lld;\n", (long long)r->valdim);
    if (r->idxdim > 0)
        kfc_buf_printf(b, ROW "kf_i64 *kf_sx = kf_idx + r * %lld;\n", (long long)r->idxdim);
    kfc_buf_printf(b, ROW "kf_i64 kf_sn = 0;\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        if (r->sum_scheme == KF_SUM_F64 && r->dtype == KF_FLOAT32) {
            kfc_buf_printf(b, ROW "double kf_sa[%lld];\n", (long long)D);
            EACH(b, ROW, D, "kf_sa[@] = 0;");
        } else {
            EACH(b, ROW, D, "kf_so[@] = 0;");
        }
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_BLOCK) {
            kfc_buf_printf(b, ROW "KF_T kf_sp[%lld];\n", (long long)D);
            EACH(b, ROW, D, "kf_sp[@] = 0;");
        }
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_KAHAN) {
            kfc_buf_printf(b, ROW "KF_T kf_sc[%lld];\n", (long long)D);
            EACH(b, ROW, D, "kf_sc[@] = 0;");
        }
        break;
    case KFC_FAM_MAXMIN:
        if (r->valdim == 0)
            kfc_buf_printf(b, ROW "KF_T kf_sv[%lld];\n", (long long)D);
        EACH(b, ROW, D, "%s[@] = %sKF_INF;", vals_name(r), kfc_red_is_max(r->id) ? "-" : "");
        if (r->idxdim > 0)
            EACH(b, ROW, D, "kf_sx[@] = -1;");
        break;
    case KFC_FAM_KMIN:
        if (r->valdim == 0)
            kfc_buf_printf(b, ROW "KF_T kf_sv[%lld];\n", (long long)(K * D));
        EACH(b, ROW, K * D, "%s[@] = KF_INF;", vals_name(r));
        if (r->idxdim > 0)
            EACH(b, ROW, K * D, "kf_sx[@] = -1;");
        break;
    case KFC_FAM_LSE:
        kfc_buf_printf(b, ROW "KF_T kf_sm = -KF_INF;\n");
        kfc_buf_printf(b, ROW "KF_T *kf_ss = kf_so + %d;\n", kfc_red_variant(r->id) == KFC_RV_SHIFT ? 1 : 0);
        EACH(b, ROW, E, "kf_ss[@] = 0;");
        if (kfc_red_variant(r->id) == KFC_RV_SOFTMAX)
            kfc_buf_printf(b, ROW "KF_T kf_s0 = 0;\n");
        break;
    }
}

static void term_sum(kfc_buf *b, const kfc_red *r, const char *f)
{
    int64_t D = r->D;
    if (r->dtype == KF_FLOAT64 || r->sum_scheme == KF_SUM_DIRECT) {
        EACH(b, TERM, D, "kf_so[@] += %s[@];", f);
    } else if (r->sum_scheme == KF_SUM_F64) {
        EACH(b, TERM, D, "kf_sa[@] += %s[@];", f);
    } else if (r->sum_scheme == KF_SUM_KAHAN) {
        /* Kahan: y = f - c; t = s + y; c = (t - s) - y; s = t. Once t is
         * infinite or NaN the compensation would be inf - inf = NaN and turn
         * an infinite sum into NaN: keep c = 0 then (t - t == 0 iff t is finite). */
        EACH(b, TERM, D, "{ KF_T kf_y = %s[@] - kf_sc[@]; KF_T kf_t = kf_so[@] + kf_y; "
                   "kf_sc[@] = kf_t - kf_t == 0 ? (kf_t - kf_so[@]) - kf_y : 0; kf_so[@] = kf_t; }", f);
    } else { /* BLOCK: the block counter runs across jr ranges */
        EACH(b, TERM, D, "kf_sp[@] += %s[@];", f);
        kfc_buf_printf(b, TERM "if (++kf_sn == %d) {\n", KFC_SUM_BLOCK);
        EACH(b, TERM "    ", D, "kf_so[@] += kf_sp[@]; kf_sp[@] = 0;");
        kfc_buf_printf(b, TERM "    kf_sn = 0;\n                }\n");
    }
}

/* jx: the index of component @ of the term ("j" for a term; a partial's
 * own index array when merging, kfc_skel_merge). */
static void term_maxmin_x(kfc_buf *b, const kfc_red *r, const char *f, const char *jx)
{
    /* The first term is always taken; then strictly better, or the first NaN. */
    const char *v = vals_name(r);
    const char *cmp = kfc_red_is_max(r->id) ? ">" : "<";
    char put[64] = "";
    if (r->idxdim > 0)
        snprintf(put, sizeof put, " kf_sx[@] = %s;", jx);
    EACH(b, TERM, r->D, "if (kf_sn == 0 || %s[@] %s %s[@] || (%s[@] != %s[@] && %s[@] == %s[@])) { %s[@] = %s[@];%s }",
         f, cmp, v, f, f, v, v, v, f, put);
    kfc_buf_printf(b, TERM "kf_sn++;\n");
}

static void term_maxmin(kfc_buf *b, const kfc_red *r, const char *f)
{
    term_maxmin_x(b, r, f, "j");
}

static void term_kmin_x(kfc_buf *b, const kfc_red *r, const char *f, const char *jx)
{
    /* Slots fill from the front, one per term, so the first min(kf_sn, K)
     * slots are the filled ones: that is the "idx == -1" test of the shared
     * semantics, without needing indices when only values are output. */
    const char *v = vals_name(r);
    long long K = r->K, D = r->D;
    char shift[128] = "", put[64] = "";
    if (r->idxdim > 0) {
        snprintf(shift, sizeof shift, " kf_sx[kf_q * %lld + @] = kf_sx[(kf_q - 1) * %lld + @];", D, D);
        snprintf(put, sizeof put, " kf_sx[kf_s * %lld + @] = %s;", D, jx);
    }
    kfc_buf_printf(b, TERM "kf_i64 kf_sl = kf_sn < %lld ? kf_sn : %lld;\n", K, K);
    EACH(b, TERM, D,
         "{ KF_T kf_v = %s[@]; kf_i64 kf_s = 0; "
         "while (kf_s < kf_sl && !kf_kless(kf_v, %s[kf_s * %lld + @])) kf_s++; "
         "if (kf_s < %lld) { "
         "for (kf_i64 kf_q = %lld; kf_q > kf_s; kf_q--) { %s[kf_q * %lld + @] = %s[(kf_q - 1) * %lld + @];%s } "
         "%s[kf_s * %lld + @] = kf_v;%s } }",
         f, v, D, K, K - 1, v, D, v, D, shift, v, D, put);
    kfc_buf_printf(b, TERM "kf_sn++;\n");
}

static void term_kmin(kfc_buf *b, const kfc_red *r, const char *f)
{
    term_kmin_x(b, r, f, "j");
}

/* s0: the weight of the term in SumSoftMaxWeight's denominator (NULL: 1,
 * a term; a partial's s0 when merging). */
static void term_lse_x(kfc_buf *b, const kfc_red *r, const char *f, const char *g, const char *s0x)
{
    /* Online update of the shared semantics; f == m guards +-inf terms. */
    char gc[64];
    if (g)
        snprintf(gc, sizeof gc, "%s[@]", g);
    else
        snprintf(gc, sizeof gc, "(KF_T)1");
    int s0 = kfc_red_variant(r->id) == KFC_RV_SOFTMAX;
    kfc_buf_printf(b, TERM "KF_T kf_sf = %s[0];\n", f);
    kfc_buf_printf(b, TERM "if (kf_sf > kf_sm) {\n");
    kfc_buf_printf(b, TERM "    KF_T kf_w = KF_EXP(kf_sm - kf_sf);\n");
    EACH(b, TERM "    ", r->E, "kf_ss[@] = kf_ss[@] * kf_w + %s;", gc);
    if (s0)
        kfc_buf_printf(b, TERM "    kf_s0 = kf_s0 * kf_w + %s;\n", s0x ? s0x : "1");
    kfc_buf_printf(b, TERM "    kf_sm = kf_sf;\n                } else {\n");
    kfc_buf_printf(b, TERM "    KF_T kf_w = kf_sf == kf_sm ? (KF_T)1 : KF_EXP(kf_sf - kf_sm);\n");
    EACH(b, TERM "    ", r->E, "kf_ss[@] += kf_w * %s;", gc);
    if (s0)
        kfc_buf_printf(b, TERM "    kf_s0 += kf_w%s%s;\n", s0x ? " * " : "", s0x ? s0x : "");
    kfc_buf_printf(b, TERM "}\n");
}

static void term_lse(kfc_buf *b, const kfc_red *r, const char *f, const char *g)
{
    term_lse_x(b, r, f, g, NULL);
}

void kfc_skel_term(kfc_buf *b, const kfc_red *r, const char *f, const char *g)
{
    kfc_buf_printf(b, TERM "/* fold the term */\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM: term_sum(b, r, f); break;
    case KFC_FAM_MAXMIN: term_maxmin(b, r, f); break;
    case KFC_FAM_KMIN: term_kmin(b, r, f); break;
    case KFC_FAM_LSE: term_lse(b, r, f, g); break;
    }
}

void kfc_skel_row_end(kfc_buf *b, const kfc_red *r)
{
    int64_t D = r->D, E = r->E;
    kfc_buf_printf(b, ROW "/* finalize row r */\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_F64)
            EACH(b, ROW, D, "kf_so[@] = (KF_T)kf_sa[@];");
        else if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_BLOCK)
            EACH(b, ROW, D, "kf_so[@] += kf_sp[@];");
        break;
    case KFC_FAM_MAXMIN:
    case KFC_FAM_KMIN:
        break; /* the state is the output */
    case KFC_FAM_LSE:
        switch (kfc_red_variant(r->id)) {
        case KFC_RV_LOG:
            EACH(b, ROW, E, "kf_so[@] = kf_sm + KF_LOG(kf_so[@]);");
            break;
        case KFC_RV_SOFTMAX:
            EACH(b, ROW, E, "kf_so[@] = kf_so[@] / kf_s0;");
            break;
        case KFC_RV_SHIFT: /* m is NaN when any sum is */
            EACH(b, ROW, E, "if (kf_ss[@] != kf_ss[@]) kf_sm = kf_ss[@];");
            kfc_buf_printf(b, ROW "kf_so[0] = kf_sm;\n");
            break;
        case KFC_RV_PLAIN: case KFC_RV_MAX: case KFC_RV_MIN: break; /* not LSE variants */
        }
        break;
    }
    /* kf_sn is read by some skeletons only; this keeps cc -Wall quiet for the others. */
    kfc_buf_printf(b, ROW "(void)kf_sn;\n");
}

/* ---- partial states and their merge (the CUDA split-j scheme, docs/cuda.md) ----
 *
 * A partial is the row state after folding one contiguous, NON-EMPTY chunk of
 * the inner range; merging the chunks' partials in chunk order gives the state
 * the sequential fold reaches. Non-empty matters because the first-term rules
 * have no "empty" marker to go by: Max/Min takes the first term whatever its
 * value (kf_sn == 0), so an empty chunk's neutral -inf/-1 would be taken as
 * a real term by the merge and keep index -1 against later ties; and a KMin
 * partial's real slots are counted, not marked. Every partial here describes
 * at least one term, so the merge's first partial is the sequential first
 * term's stand-in, and the rules carry over unchanged:
 *   SUM     the chunk's total per component (double for float32 with
 *           KF_SUM_F64, the state's own type otherwise; BLOCK's pending block
 *           added in), merged by the row's summation scheme as terms
 *   MAXMIN  the chunk's D values and (when the reduction outputs them) D
 *           indices, merged by the term rule: strictly better, or the first
 *           NaN over a non-NaN state (an earlier chunk wins ties, a NaN state
 *           is never replaced) -- exactly the sequential outcome
 *   KMIN    the chunk's K*D slots (values, indices when output) and, last in
 *           the index part, its real slot count min(K, chunk length): those
 *           slots are inserted in chunk and slot order with kf_kless, equal
 *           values after the ones already there (the earlier chunk wins ties)
 *   LSE     (m, the E sums, s0 for SumSoftMaxWeight), merged by the online
 *           update with the partial's sums as g and its s0 as the weight:
 *           the same branch and the same +-inf guard (m == m_state: w = 1)
 */

kfc_partial kfc_skel_partial(const kfc_red *r)
{
    kfc_partial p = {0, 0, r->dtype == KF_FLOAT64 ? 8 : 4};
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        p.nv = r->D;
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_F64)
            p.vbytes = 8;
        break;
    case KFC_FAM_MAXMIN:
        p.nv = r->D;
        p.nx = r->idxdim;
        break;
    case KFC_FAM_KMIN:
        p.nv = r->K * r->D;
        p.nx = r->idxdim + 1;
        break;
    case KFC_FAM_LSE:
        p.nv = 1 + r->E + (kfc_red_variant(r->id) == KFC_RV_SOFTMAX);
        break;
    }
    return p;
}

const char *kfc_skel_partial_type(const kfc_red *r)
{
    return kfc_skel_partial(r).vbytes == 8 && r->dtype == KF_FLOAT32 ? "double" : "KF_T";
}

void kfc_skel_partial_end(kfc_buf *b, const kfc_red *r, const char *pv, const char *px)
{
    int64_t D = r->D, K = r->K, E = r->E;
    kfc_buf_printf(b, ROW "/* the chunk's partial state */\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_F64)
            EACH(b, ROW, D, "%s[@] = kf_sa[@];", pv);
        else if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_BLOCK)
            EACH(b, ROW, D, "%s[@] = kf_so[@] + kf_sp[@];", pv);
        else
            EACH(b, ROW, D, "%s[@] = kf_so[@];", pv);
        break;
    case KFC_FAM_MAXMIN:
        EACH(b, ROW, D, "%s[@] = %s[@];", pv, vals_name(r));
        if (r->idxdim > 0)
            EACH(b, ROW, D, "%s[@] = kf_sx[@];", px);
        break;
    case KFC_FAM_KMIN:
        EACH(b, ROW, K * D, "%s[@] = %s[@];", pv, vals_name(r));
        if (r->idxdim > 0)
            EACH(b, ROW, K * D, "%s[@] = kf_sx[@];", px);
        kfc_buf_printf(b, ROW "%s[%lld] = kf_sn < %lld ? kf_sn : %lld;\n", px, (long long)r->idxdim,
                       (long long)K, (long long)K);
        break;
    case KFC_FAM_LSE:
        kfc_buf_printf(b, ROW "%s[0] = kf_sm;\n", pv);
        EACH(b, ROW, E, "%s[1 + @] = kf_ss[@];", pv);
        if (kfc_red_variant(r->id) == KFC_RV_SOFTMAX)
            kfc_buf_printf(b, ROW "%s[%lld] = kf_s0;\n", pv, (long long)(1 + E));
        break;
    }
    kfc_buf_printf(b, ROW "(void)kf_sn;\n");
}

void kfc_skel_merge(kfc_buf *b, const kfc_red *r, const char *pv, const char *px)
{
    char jx[64], s0[64];
    kfc_buf_printf(b, TERM "/* merge the next chunk's partial */\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        term_sum(b, r, pv);
        break;
    case KFC_FAM_MAXMIN:
        snprintf(jx, sizeof jx, "%s[@]", px);
        term_maxmin_x(b, r, pv, jx);
        break;
    case KFC_FAM_KMIN:
        /* slot k of the partial, component @: value pv[k*D + @], index px[k*D + @] */
        kfc_buf_printf(b, TERM "for (kf_i64 kf_pk = 0; kf_pk < %s[%lld]; kf_pk++) {\n", px,
                       (long long)r->idxdim);
        kfc_buf_printf(b, TERM "const KF_T *kf_pf = %s + kf_pk * %lld;\n", pv, (long long)r->D);
        if (r->idxdim > 0)
            kfc_buf_printf(b, TERM "const kf_i64 *kf_pj = %s + kf_pk * %lld;\n", px, (long long)r->D);
        term_kmin_x(b, r, "kf_pf", "kf_pj[@]");
        kfc_buf_printf(b, TERM "}\n");
        break;
    case KFC_FAM_LSE:
        kfc_buf_printf(b, TERM "const KF_T *kf_pg = %s + 1;\n", pv);
        snprintf(s0, sizeof s0, "%s[%lld]", pv, (long long)(1 + r->E));
        term_lse_x(b, r, pv, "kf_pg", kfc_red_variant(r->id) == KFC_RV_SOFTMAX ? s0 : NULL);
        break;
    }
}
