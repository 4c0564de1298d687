/* t_redsetup.c -- kfc_red_setup: names, axis, K, formula2 and scalar rules, sum schemes,
 * output dims from compiler/reductions.def. */
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"

static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "s=Vi(2,1)"};

/* Sets up `red` for formula f (and f2) with K and scheme; returns the status. */
static int setup(kfc_red *r, kfc_diag *d, const char *f, const char *f2, const char *red, int axis,
                 kf_dtype dt, int K, kf_sum_scheme sch)
{
    kfc_prog p;
    kfc_prog_init(&p);
    kfc_diag_clear(d);
    int st = kfc_parse(&p, f, f2, al, 3, d);
    if (!st)
        st = kfc_check(&p, f, f2, al, 3, d);
    if (st) {
        fprintf(stderr, "  '%s': %s\n", f, d->msg);
        kfc_prog_free(&p);
        return -1;
    }
    st = kfc_red_setup(r, &p, red, axis, dt, K, sch, d);
    kfc_prog_free(&p);
    return st;
}

KFT_TEST(redsetup_unknown_names_the_valid_ones)
{
    kfc_red r;
    kfc_diag d;
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Summ", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECKF(strstr(d.msg, "'Summ'") && strstr(d.msg, "Sum, Max, Min") &&
                   strstr(d.msg, "Max_SumShiftExp"),
               "%s", d.msg);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, NULL, 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    /* case-sensitive, KeOps spelling */
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "sum", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    /* a long name is cut in the message */
    char longname[300];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    KFT_CHECK(setup(&r, &d, "x-y", NULL, longname, 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(strstr(d.msg, "...'") != NULL);
}

KFT_TEST(redsetup_axis_dtype_scheme_checks)
{
    kfc_red r;
    kfc_diag d;
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 2, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(strstr(d.msg, "axis") != NULL);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", -1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 1, (kf_dtype)7, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 1, KF_FLOAT32, 0, (kf_sum_scheme)9) == KF_ERR_ARG);
    /* schemes: AUTO -> BLOCK for float32; float64 is always F64 */
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 1, KF_FLOAT32, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.sum_scheme == KF_SUM_BLOCK);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 0, KF_FLOAT32, 0, KF_SUM_KAHAN) == KF_OK);
    KFT_CHECK(r.sum_scheme == KF_SUM_KAHAN && r.axis == 0 && r.dtype == KF_FLOAT32);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 1, KF_FLOAT64, 0, KF_SUM_KAHAN) == KF_OK);
    KFT_CHECK(r.sum_scheme == KF_SUM_F64);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Sum", 1, KF_FLOAT64, 0, KF_SUM_DIRECT) == KF_OK);
    KFT_CHECK(r.sum_scheme == KF_SUM_F64);
}

KFT_TEST(redsetup_k_rules)
{
    kfc_red r;
    kfc_diag d;
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "KMin", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(strstr(d.msg, "K") != NULL);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "ArgKMin", 1, KF_FLOAT64, KFC_MAX_K + 1, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "KMin_ArgKMin", 1, KF_FLOAT64, -3, KF_SUM_AUTO) == KF_ERR_ARG);
    /* K * D above the per-row limit: dim 32, K = 4096 */
    KFT_CHECK(setup(&r, &d, "TensorProd(Concat(x,Zero(5)),Concat(y,Zero(1)))", NULL, "KMin", 1,
                    KF_FLOAT64, KFC_MAX_K, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECKF(strstr(d.msg, "4096") != NULL, "%s", d.msg);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "KMin_ArgKMin", 1, KF_FLOAT64, 5, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.K == 5 && r.D == 3 && r.valdim == 15 && r.idxdim == 15);
    /* K is ignored where the reduction takes none */
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "Min_ArgMin", 1, KF_FLOAT64, -9, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.K == 0 && r.valdim == 3 && r.idxdim == 3);
}

KFT_TEST(redsetup_formula2_and_scalar_rules)
{
    kfc_red r;
    kfc_diag d;
    KFT_CHECK(setup(&r, &d, "s", NULL, "LogSumExpWeight", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(strstr(d.msg, "formula2") != NULL);
    KFT_CHECK(setup(&r, &d, "s", NULL, "SumSoftMaxWeight", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(setup(&r, &d, "x-y", "y", "Sum", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_ARG);
    KFT_CHECK(strstr(d.msg, "formula2") != NULL);
    KFT_CHECK(setup(&r, &d, "x-y", NULL, "LogSumExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_TYPE);
    KFT_CHECKF(strstr(d.msg, "dim 3") != NULL, "%s", d.msg);
    KFT_CHECK(setup(&r, &d, "x-y", "y", "SumSoftMaxWeight", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_ERR_TYPE);
    /* Max_SumShiftExp: formula2 optional */
    KFT_CHECK(setup(&r, &d, "s*(x|y)", NULL, "Max_SumShiftExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.E == 1 && r.valdim == 2 && r.idxdim == 0);
    KFT_CHECK(setup(&r, &d, "s*(x|y)", "y", "Max_SumShiftExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.E == 3 && r.valdim == 4 && r.idxdim == 0);
    KFT_CHECK(setup(&r, &d, "s", "Concat(x,y)", "LogSumExpWeight", 0, KF_FLOAT32, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.E == 6 && r.D == 1 && r.valdim == 6);
    KFT_CHECK(setup(&r, &d, "s", "x", "SumSoftMaxWeight", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.valdim == 3 && r.idxdim == 0);
    KFT_CHECK(setup(&r, &d, "s", NULL, "LogSumExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == KF_OK);
    KFT_CHECK(r.valdim == 1 && r.idxdim == 0 && r.E == 1);
}

KFT_TEST(redsetup_output_dims)
{
    static const struct {
        const char *red;
        int64_t valdim, idxdim;
    } want[] = {
        {"Sum", 3, 0}, {"Max", 3, 0}, {"Min", 3, 0}, {"ArgMax", 0, 3}, {"ArgMin", 0, 3},
        {"Max_ArgMax", 3, 3}, {"Min_ArgMin", 3, 3}, {"KMin", 6, 0}, {"ArgKMin", 0, 6},
        {"KMin_ArgKMin", 6, 6},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        kfc_red r;
        kfc_diag d;
        if (!KFT_CHECKF(setup(&r, &d, "x-y", NULL, want[k].red, 1, KF_FLOAT32, 2, KF_SUM_AUTO) == KF_OK,
                        "%s: %s", want[k].red, d.msg))
            continue;
        KFT_CHECKF(r.valdim == want[k].valdim && r.idxdim == want[k].idxdim, "%s: %lld %lld",
                   want[k].red, (long long)r.valdim, (long long)r.idxdim);
        KFT_CHECK(strcmp(kfc_red_info[r.id].name, want[k].red) == 0 && r.D == 3);
    }
}
