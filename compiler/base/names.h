/* names.h -- THE enum <-> name tables (dtype, sum scheme, JIT engine, backend, reduction),
 * behind the public kf_*_name / kf_*_parse functions of kforge.h, with the helpers that
 * messages listing the valid values are built from. One table per enum, in compiler/base/names.c. */
#ifndef KF_COMPILER_BASE_NAMES_H
#define KF_COMPILER_BASE_NAMES_H

#include <stddef.h>

#include "kforge.h"

/* Which table. */
typedef enum kfc_names_kind {
    KFC_NAMES_DTYPE = 0,     /* kf_dtype: float32 float64 */
    KFC_NAMES_SUM = 1,       /* kf_sum_scheme: auto block direct f64 kahan */
    KFC_NAMES_JIT = 2,       /* kf_jit: auto tcc reference cc */
    KFC_NAMES_BACKEND = 3,   /* kf_backend: auto cpu cuda */
    KFC_NAMES_REDUCTION = 4, /* the reductions of compiler/reductions.def, in its order */
    KFC_NAMES_COUNT
} kfc_names_kind;

/* Number of values of a table (values are 0 .. count-1). */
int kfc_names_count(kfc_names_kind t);
/* The name of value v (a static string), or NULL when v is out of range. */
const char *kfc_names_get(kfc_names_kind t, int v);
/* The value named `name` (exact, case-sensitive), or -1 (NULL included). */
int kfc_names_find(kfc_names_kind t, const char *name);
/* Every name of a table in value order, separated by sep, into dst (always
 * NUL-terminated; cut short when cap is too small): "auto, cpu, cuda". */
void kfc_names_join(kfc_names_kind t, const char *sep, char *dst, size_t cap);

#endif
