/* names.c -- the enum <-> name tables (names.h) and the public kf_*_name / kf_*_parse
 * functions of kforge.h. Each table is indexed by the enum's value; the spellings are
 * the CLI's, $KFORGE_JIT's and $KFORGE_BACKEND's, the cache keys' and the generated
 * sources' header comments', so changing one changes all of those (and every cache key). */
#include <stdio.h>
#include <string.h>

#include "compiler/base/names.h"

static const char *const dtype_names[] = {
    [KF_FLOAT32] = "float32",
    [KF_FLOAT64] = "float64",
};

static const char *const sum_names[] = {
    [KF_SUM_AUTO] = "auto", [KF_SUM_BLOCK] = "block", [KF_SUM_DIRECT] = "direct",
    [KF_SUM_F64] = "f64",   [KF_SUM_KAHAN] = "kahan",
};

static const char *const jit_names[] = {
    [KF_JIT_AUTO] = "auto",
    [KF_JIT_TCC] = "tcc",
    [KF_JIT_REFERENCE] = "reference",
    [KF_JIT_CC] = "cc",
};

static const char *const backend_names[] = {
    [KF_BACKEND_AUTO] = "auto",
    [KF_BACKEND_CPU] = "cpu",
    [KF_BACKEND_CUDA] = "cuda",
};

/* From the X-macro file itself, not from compiler/ir.h: base/ sits below the
 * compiler and includes nothing of it (the order is kfc_red_id's). */
static const char *const reduction_names[] = {
#define X(id, name, ...) name,
#include "compiler/reductions.def"
#undef X
};

#define TABLE(a) {a, (int)(sizeof a / sizeof a[0])}
static const struct {
    const char *const *names;
    int n;
} tables[KFC_NAMES_COUNT] = {
    [KFC_NAMES_DTYPE] = TABLE(dtype_names),
    [KFC_NAMES_SUM] = TABLE(sum_names),
    [KFC_NAMES_JIT] = TABLE(jit_names),
    [KFC_NAMES_BACKEND] = TABLE(backend_names),
    [KFC_NAMES_REDUCTION] = TABLE(reduction_names),
};
#undef TABLE

int kfc_names_count(kfc_names_kind t)
{
    return (int)t >= 0 && t < KFC_NAMES_COUNT ? tables[t].n : 0;
}

const char *kfc_names_get(kfc_names_kind t, int v)
{
    return v >= 0 && v < kfc_names_count(t) ? tables[t].names[v] : NULL;
}

int kfc_names_find(kfc_names_kind t, const char *name)
{
    if (!name)
        return -1;
    for (int v = 0; v < kfc_names_count(t); v++)
        if (strcmp(tables[t].names[v], name) == 0)
            return v;
    return -1;
}

void kfc_names_join(kfc_names_kind t, const char *sep, char *dst, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return;
    dst[0] = 0;
    for (int v = 0; v < kfc_names_count(t) && n < cap; v++) {
        int w = snprintf(dst + n, cap - n, "%s%s", v ? sep : "", tables[t].names[v]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* ---- the public functions (kforge.h) ---- */

static const char *name_or_q(kfc_names_kind t, int v)
{
    const char *s = kfc_names_get(t, v);
    return s ? s : "?";
}

const char *kf_dtype_name(kf_dtype t)
{
    return name_or_q(KFC_NAMES_DTYPE, (int)t);
}

const char *kf_sum_scheme_name(kf_sum_scheme s)
{
    return name_or_q(KFC_NAMES_SUM, (int)s);
}

const char *kf_jit_name(kf_jit j)
{
    return name_or_q(KFC_NAMES_JIT, (int)j);
}

const char *kf_backend_name(kf_backend b)
{
    return name_or_q(KFC_NAMES_BACKEND, (int)b);
}

int kf_dtype_parse(const char *name, kf_dtype *out)
{
    int v = kfc_names_find(KFC_NAMES_DTYPE, name);
    if (v < 0 || !out)
        return KF_ERR_ARG;
    *out = (kf_dtype)v;
    return KF_OK;
}

int kf_sum_scheme_parse(const char *name, kf_sum_scheme *out)
{
    int v = kfc_names_find(KFC_NAMES_SUM, name);
    if (v < 0 || !out)
        return KF_ERR_ARG;
    *out = (kf_sum_scheme)v;
    return KF_OK;
}

int kf_jit_parse(const char *name, kf_jit *out)
{
    int v = kfc_names_find(KFC_NAMES_JIT, name);
    if (v < 0 || !out)
        return KF_ERR_ARG;
    *out = (kf_jit)v;
    return KF_OK;
}

int kf_backend_parse(const char *name, kf_backend *out)
{
    int v = kfc_names_find(KFC_NAMES_BACKEND, name);
    if (v < 0 || !out)
        return KF_ERR_ARG;
    *out = (kf_backend)v;
    return KF_OK;
}

int kf_reduction_count(void)
{
    return kfc_names_count(KFC_NAMES_REDUCTION);
}

const char *kf_reduction_name(int i)
{
    return kfc_names_get(KFC_NAMES_REDUCTION, i);
}
