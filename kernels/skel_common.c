/* skel_common.c -- what both tiers' reduction skeletons share: per-component expansion of a
 * statement template (unrolled or looped) and the reduction families of kernels/reductions.def. */
#include <stdarg.h>
#include <stdio.h>

#include "kernels.h"

void kfk_buf_each_upto(kfk_buf *b, const char *indent, int64_t n, const char *tmpl, int64_t unroll_max)
{
    int unroll = n <= unroll_max;
    if (!unroll)
        kfk_buf_printf(b, "%sfor (kf_i64 kf_k = 0; kf_k < %lld; kf_k++) {", indent, (long long)n);
    for (int64_t c = 0; c < (unroll ? n : 1); c++) {
        kfk_buf_printf(b, "%s", unroll ? indent : " ");
        for (const char *t = tmpl; *t; t++) {
            if (*t == '@') {
                if (unroll)
                    kfk_buf_printf(b, "%lld", (long long)c);
                else
                    kfk_buf_printf(b, "kf_k");
            } else {
                kfk_buf_printf(b, "%c", *t);
            }
        }
        kfk_buf_printf(b, unroll ? "\n" : " }\n");
    }
}

void kfk_buf_eachf(kfk_buf *b, int64_t unroll_max, const char *indent, int64_t n, const char *fmt, ...)
{
    char t[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof t) {
        b->oom = 1; /* cannot happen with generated names; never emit a truncated line */
        return;
    }
    kfk_buf_each_upto(b, indent, n, t, unroll_max);
}

enum kfk_fam kfk_red_family(int id)
{
    switch (id) {
    case KFC_RED_SUM: return KFK_FAM_SUM;
    case KFC_RED_MAX: case KFC_RED_MIN: case KFC_RED_ARGMAX: case KFC_RED_ARGMIN:
    case KFC_RED_MAX_ARGMAX: case KFC_RED_MIN_ARGMIN: return KFK_FAM_MAXMIN;
    case KFC_RED_KMIN: case KFC_RED_ARGKMIN: case KFC_RED_KMIN_ARGKMIN: return KFK_FAM_KMIN;
    default: return KFK_FAM_LSE;
    }
}

int kfk_red_is_max(int id)
{
    return id == KFC_RED_MAX || id == KFC_RED_ARGMAX || id == KFC_RED_MAX_ARGMAX;
}
