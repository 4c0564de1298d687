/* skel_opt.c -- the optimizing tier's reduction skeletons: per-lane row state over a block of
 * KF_RB rows, its neutral value, the branch-free fold of one term, and the finalization. */
#include <stdio.h>
#include <stdlib.h>

#include "compiler/emit/opt.h"

void kfc_opt_each(kfc_buf *b, const char *indent, int64_t n, const char *tmpl)
{
    kfc_buf_each_upto(b, indent, n, tmpl, KFC_OPT_UNROLL);
}

/* Formats a template for kfc_opt_each ('@' survives printf). */
#define EACH(b, in, n, ...) kfc_buf_eachf(b, KFC_OPT_UNROLL, in, n, __VA_ARGS__)

/* Indentation: block level, term level (inside the lane loop), uniform per-term level. */
#define BLK "        "
#define LANE "                    "
#define TERM "                "

/* Whether the state keeps indices: KMin and Max/Min values alone do not. */
static int keeps_idx(const kfc_red *r)
{
    return r->idxdim > 0;
}

int64_t kfc_opt_state_values(const kfc_red *r)
{
    int64_t D = r->D, K = r->K, E = r->E;
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM: return 3 * D;
    case KFC_FAM_MAXMIN: return 2 * D;
    case KFC_FAM_KMIN: return K * D * (keeps_idx(r) ? 2 : 1) + D;
    case KFC_FAM_LSE: break;
    }
    return 2 + 2 * E;
}

/*
 * Lane state ([component][KF_RB] arrays, one column per row of the block):
 *   kf_so  Sum totals (double kf_sa for float32 F64), kf_sp block partials,
 *          kf_sc Kahan compensations
 *   kf_sv, kf_sx  Max/Min best values and indices
 *   kf_kv, kf_kx  KMin slots (K*D rows, slot s of component c at s*D + c)
 *   kf_sm, kf_ss, kf_s0  LogSumExp family: running max, sums, softmax denominator
 *   kf_sn  terms visited so far: the same for every lane, so every test on
 *          it (first term, KMin fill, Sum block end) is a uniform branch
 *          outside the vectorized lane loop or a broadcast inside it.
 */
void kfc_opt_begin(kfc_buf *b, const kfc_red *r)
{
    long long D = r->D, K = r->K, E = r->E;
    int f32 = r->dtype == KF_FLOAT32;
    kfc_buf_printf(b, BLK "/* lane state: %s */\n", kfc_red_info[r->id].name);
    kfc_buf_printf(b, BLK "kf_i64 kf_sn = 0;\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        kfc_buf_printf(b, BLK "%s kf_so[%lld][KF_RB];\n", f32 && r->sum_scheme == KF_SUM_F64 ? "double" : "KF_T", D);
        if (f32 && r->sum_scheme == KF_SUM_BLOCK)
            kfc_buf_printf(b, BLK "KF_T kf_sp[%lld][KF_RB];\n", D);
        if (f32 && r->sum_scheme == KF_SUM_KAHAN)
            kfc_buf_printf(b, BLK "KF_T kf_sc[%lld][KF_RB];\n", D);
        kfc_buf_printf(b, BLK "KF_LANES {\n");
        EACH(b, BLK "    ", D, "kf_so[@][kf_l] = 0;");
        if (f32 && r->sum_scheme == KF_SUM_BLOCK)
            EACH(b, BLK "    ", D, "kf_sp[@][kf_l] = 0;");
        if (f32 && r->sum_scheme == KF_SUM_KAHAN)
            EACH(b, BLK "    ", D, "kf_sc[@][kf_l] = 0;");
        kfc_buf_printf(b, BLK "}\n");
        break;
    case KFC_FAM_MAXMIN:
        kfc_buf_printf(b, BLK "KF_T kf_sv[%lld][KF_RB];\n", D);
        if (keeps_idx(r))
            kfc_buf_printf(b, BLK "kf_i64 kf_sx[%lld][KF_RB];\n", D);
        kfc_buf_printf(b, BLK "KF_LANES {\n");
        EACH(b, BLK "    ", D, "kf_sv[@][kf_l] = %sKF_INF;", kfc_red_is_max(r->id) ? "-" : "");
        if (keeps_idx(r))
            EACH(b, BLK "    ", D, "kf_sx[@][kf_l] = -1;");
        kfc_buf_printf(b, BLK "}\n");
        break;
    case KFC_FAM_KMIN:
        kfc_buf_printf(b, BLK "KF_T kf_kv[%lld][KF_RB], kf_sf[%lld][KF_RB];\n", K * D, D);
        if (keeps_idx(r))
            kfc_buf_printf(b, BLK "kf_i64 kf_kx[%lld][KF_RB];\n", K * D);
        kfc_buf_printf(b, BLK "KF_LANES {\n");
        EACH(b, BLK "    ", K * D, "kf_kv[@][kf_l] = KF_INF;");
        if (keeps_idx(r))
            EACH(b, BLK "    ", K * D, "kf_kx[@][kf_l] = -1;");
        kfc_buf_printf(b, BLK "}\n");
        break;
    case KFC_FAM_LSE:
        kfc_buf_printf(b, BLK "KF_T kf_sm[KF_RB], kf_ss[%lld][KF_RB]%s;\n", E,
                       kfc_red_variant(r->id) == KFC_RV_SOFTMAX ? ", kf_s0[KF_RB]" : "");
        kfc_buf_printf(b, BLK "KF_LANES {\n");
        kfc_buf_printf(b, BLK "    kf_sm[kf_l] = -KF_INF;\n");
        EACH(b, BLK "    ", E, "kf_ss[@][kf_l] = 0;");
        if (kfc_red_variant(r->id) == KFC_RV_SOFTMAX)
            kfc_buf_printf(b, BLK "    kf_s0[kf_l] = 0;\n");
        kfc_buf_printf(b, BLK "}\n");
        break;
    }
}

static void term_sum(kfc_buf *b, const kfc_red *r, const char *f)
{
    long long D = r->D;
    if (r->dtype == KF_FLOAT64 || r->sum_scheme == KF_SUM_DIRECT || r->sum_scheme == KF_SUM_F64) {
        EACH(b, LANE, D, "kf_so[@][kf_l] += %s;", f);
    } else if (r->sum_scheme == KF_SUM_KAHAN) {
        /* As the libtcc tier: c kept at 0 once t is infinite or NaN. */
        EACH(b, LANE, D,
             "{ KF_T kf_y = (%s) - kf_sc[@][kf_l]; KF_T kf_s = kf_so[@][kf_l]; KF_T kf_t = kf_s + kf_y; "
             "kf_sc[@][kf_l] = kf_t - kf_t == 0 ? (kf_t - kf_s) - kf_y : 0; kf_so[@][kf_l] = kf_t; }",
             f);
    } else {
        EACH(b, LANE, D, "kf_sp[@][kf_l] += %s;", f);
    }
}

static void term_maxmin(kfc_buf *b, const kfc_red *r, const char *f)
{
    /* The first term is always taken; then strictly better, or the first NaN. */
    const char *cmp = kfc_red_is_max(r->id) ? ">" : "<";
    kfc_buf_printf(b, LANE "int kf_first = kf_sn == 0;\n");
    EACH(b, LANE, r->D,
         "{ KF_T kf_v = %s; KF_T kf_b = kf_sv[@][kf_l]; "
         "int kf_take = kf_first | (kf_v %s kf_b) | ((kf_v != kf_v) & (kf_b == kf_b)); "
         "kf_sv[@][kf_l] = kf_take ? kf_v : kf_b;%s }",
         f, cmp, keeps_idx(r) ? " kf_sx[@][kf_l] = kf_take ? j : kf_sx[@][kf_l];" : "");
}

/* Insertion as a branch-free pass over the K slots: once the carried value
 * goes in (slot unfilled, or the value is less than the slot's in the order
 * "NaN first, then numeric"), every later slot takes the previous one's
 * content, i.e. the shift down; the last drops. Slots fill from the front, so
 * "unfilled" is "slot >= terms so far" (kf_sn). The term's values wait in
 * kf_sf: the pass runs only when some lane's value beats its K-th slot, which
 * after the first few hundred terms is rare (k nearest neighbours). */
static void kmin_insert(kfc_buf *b, const kfc_red *r)
{
    long long K = r->K, D = r->D;
    int ix = keeps_idx(r);
    kfc_buf t = {0};
    kfc_buf_printf(&t, "{ KF_T kf_c = kf_sf[@][kf_l]; int kf_in = 0;%s", ix ? " kf_i64 kf_ci = j;" : "");
    int unroll = K <= 16;
    if (!unroll)
        kfc_buf_printf(&t, " for (kf_i64 kf_s = 0; kf_s < %lld; kf_s++)", K);
    for (long long s = 0; s < (unroll ? K : 1); s++) {
        char sl[32];
        if (unroll)
            snprintf(sl, sizeof sl, "%lld", s);
        else
            snprintf(sl, sizeof sl, "kf_s");
        kfc_buf_printf(&t,
                       " { KF_T kf_o = kf_kv[%s*%lld+@][kf_l];"
                       " kf_in = kf_in | (%s >= kf_sn) | ((kf_c != kf_c) & (kf_o == kf_o)) | (kf_c < kf_o);"
                       " kf_kv[%s*%lld+@][kf_l] = kf_in ? kf_c : kf_o; kf_c = kf_in ? kf_o : kf_c;",
                       sl, D, sl, sl, D);
        if (ix)
            kfc_buf_printf(&t,
                           " kf_i64 kf_oi = kf_kx[%s*%lld+@][kf_l];"
                           " kf_kx[%s*%lld+@][kf_l] = kf_in ? kf_ci : kf_oi; kf_ci = kf_in ? kf_oi : kf_ci;",
                           sl, D, sl, D);
        kfc_buf_printf(&t, " }");
    }
    kfc_buf_printf(&t, " }");
    kfc_buf_printf(b, TERM "{ int kf_any = kf_sn < %lld;\n", K);
    kfc_buf_printf(b, TERM "  KF_LANES {\n");
    EACH(b, TERM "    ", D,
         "{ KF_T kf_c = kf_sf[@][kf_l], kf_o = kf_kv[%lld*%lld+@][kf_l]; "
         "kf_any |= ((kf_c != kf_c) & (kf_o == kf_o)) | (kf_c < kf_o); }",
         K - 1, D);
    kfc_buf_printf(b, TERM "  }\n" TERM "  if (kf_any)\n" TERM "    KF_LANES {\n");
    if (t.oom)
        b->oom = 1;
    else
        kfc_opt_each(b, TERM "      ", D, t.s);
    free(t.s);
    kfc_buf_printf(b, TERM "    }\n" TERM "}\n");
}

static void term_kmin(kfc_buf *b, const kfc_red *r, const char *f)
{
    EACH(b, LANE, r->D, "kf_sf[@][kf_l] = %s;", f);
}

static void term_lse(kfc_buf *b, const kfc_red *r, const char *f, const char *g)
{
    /* The online update of the shared semantics, with both branches as
     * selects: one exp per term, of m - f or f - m; f == m guards +-inf. */
    char gc[256];
    snprintf(gc, sizeof gc, "%s", g ? g : "(KF_T)1");
    int s0 = kfc_red_variant(r->id) == KFC_RV_SOFTMAX;
    char f0[256];
    snprintf(f0, sizeof f0, "%s", f);
    for (char *p = f0; *p; p++)
        if (*p == '@')
            *p = '0';
    kfc_buf_printf(b, LANE "{ KF_T kf_f = %s, kf_m = kf_sm[kf_l];\n", f0);
    kfc_buf_printf(b, LANE "  int kf_gt = kf_f > kf_m;\n");
    /* float: e^-|f - m| as the fused exp of s = |f - m| >= 0 (or NaN),
     * c = -1: the same bits as e^(m - f) or e^(f - m) (negation is exact,
     * c = -1 a power of two), without the plain exp's overflow select
     * (1.07-1.15x faster on Zen 4). double keeps the plain exp: its fused
     * one clamps s on the chain and measured 5-7% slower here. */
    kfc_buf w = {0};
    if (r->dtype == KF_FLOAT32) {
        kfc_expns a;
        kfc_exp_scaled_args(-1.0, r->dtype, &a);
        kfc_expns_call(&w, &a, r->dtype, "(kf_gt ? kf_f - kf_m : kf_m - kf_f)");
    } else
        kfc_buf_printf(&w, "KF_EXP(kf_gt ? kf_m - kf_f : kf_f - kf_m)");
    if (w.oom)
        b->oom = 1;
    else
        kfc_buf_printf(b, LANE "  KF_T kf_w = kf_f == kf_m ? (KF_T)1 : %s;\n", w.s);
    free(w.s);
    EACH(b, LANE "  ", r->E,
         "{ KF_T kf_s = kf_ss[@][kf_l], kf_g = %s; kf_ss[@][kf_l] = kf_gt ? kf_s * kf_w + kf_g : kf_s + kf_w * kf_g; }",
         gc);
    if (s0)
        kfc_buf_printf(b, LANE "  kf_s0[kf_l] = kf_gt ? kf_s0[kf_l] * kf_w + 1 : kf_s0[kf_l] + kf_w;\n");
    kfc_buf_printf(b, LANE "  kf_sm[kf_l] = kf_gt ? kf_f : kf_m; }\n");
}

void kfc_opt_term(kfc_buf *b, const kfc_red *r, const char *f, const char *g)
{
    kfc_buf_printf(b, LANE "/* fold the term into lane kf_l */\n");
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM: term_sum(b, r, f); break;
    case KFC_FAM_MAXMIN: term_maxmin(b, r, f); break;
    case KFC_FAM_KMIN: term_kmin(b, r, f); break;
    case KFC_FAM_LSE: term_lse(b, r, f, g); break;
    }
}

void kfc_opt_after(kfc_buf *b, const kfc_red *r)
{
    if (kfc_red_family(r->id) == KFC_FAM_SUM && r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_BLOCK) {
        /* the block counter runs across jr ranges, as in the libtcc tier */
        kfc_buf_printf(b, TERM "if (++kf_sn == %d) {\n", KFC_SUM_BLOCK);
        kfc_buf_printf(b, TERM "    kf_sn = 0;\n");
        kfc_buf_printf(b, TERM "    KF_LANES {\n");
        EACH(b, TERM "        ", r->D, "kf_so[@][kf_l] += kf_sp[@][kf_l]; kf_sp[@][kf_l] = 0;");
        kfc_buf_printf(b, TERM "    }\n" TERM "}\n");
    } else {
        if (kfc_red_family(r->id) == KFC_FAM_KMIN)
            kmin_insert(b, r);
        kfc_buf_printf(b, TERM "kf_sn++;\n");
    }
}

void kfc_opt_end(kfc_buf *b, const kfc_red *r)
{
    long long D = r->D, E = r->E, K = r->K, vd = r->valdim, xd = r->idxdim;
    kfc_buf_printf(b, BLK "/* finalize the lanes of real rows */\n");
    kfc_buf_printf(b, BLK "for (int kf_l = 0; kf_l < kf_nb; kf_l++) {\n");
    if (vd > 0)
        kfc_buf_printf(b, BLK "    KF_T *kf_so_r = kf_out + (kf_rb + kf_l) * %lld;\n", vd);
    if (xd > 0)
        kfc_buf_printf(b, BLK "    kf_i64 *kf_sx_r = kf_idx + (kf_rb + kf_l) * %lld;\n", xd);
    const char *in = BLK "    ";
    switch (kfc_red_family(r->id)) {
    case KFC_FAM_SUM:
        if (r->dtype == KF_FLOAT32 && r->sum_scheme == KF_SUM_BLOCK)
            EACH(b, in, D, "kf_so_r[@] = kf_so[@][kf_l] + kf_sp[@][kf_l];");
        else
            EACH(b, in, D, "kf_so_r[@] = (KF_T)kf_so[@][kf_l];");
        break;
    case KFC_FAM_MAXMIN:
        if (vd > 0)
            EACH(b, in, D, "kf_so_r[@] = kf_sv[@][kf_l];");
        if (xd > 0)
            EACH(b, in, D, "kf_sx_r[@] = kf_sx[@][kf_l];");
        break;
    case KFC_FAM_KMIN:
        if (vd > 0)
            EACH(b, in, K * D, "kf_so_r[@] = kf_kv[@][kf_l];");
        if (xd > 0)
            EACH(b, in, K * D, "kf_sx_r[@] = kf_kx[@][kf_l];");
        break;
    case KFC_FAM_LSE:
        switch (kfc_red_variant(r->id)) {
        case KFC_RV_LOG:
            EACH(b, in, E, "kf_so_r[@] = kf_sm[kf_l] + KF_LOG(kf_ss[@][kf_l]);");
            break;
        case KFC_RV_SOFTMAX:
            EACH(b, in, E, "kf_so_r[@] = kf_ss[@][kf_l] / kf_s0[kf_l];");
            break;
        case KFC_RV_SHIFT: /* m is NaN when any sum is */
            kfc_buf_printf(b, "%sKF_T kf_m = kf_sm[kf_l];\n", in);
            EACH(b, in, E, "if (kf_ss[@][kf_l] != kf_ss[@][kf_l]) kf_m = kf_ss[@][kf_l];");
            kfc_buf_printf(b, "%skf_so_r[0] = kf_m;\n", in);
            EACH(b, in, E, "kf_so_r[1+@] = kf_ss[@][kf_l];");
            break;
        case KFC_RV_PLAIN: case KFC_RV_MAX: case KFC_RV_MIN: break; /* not LSE variants */
        }
        break;
    }
    kfc_buf_printf(b, BLK "}\n");
}
