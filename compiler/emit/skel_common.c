/* skel_common.c -- what both tiers' reduction skeletons share: per-component expansion of a
 * statement template (unrolled or looped) and the reduction families of compiler/reductions.def. */
#include <stdarg.h>
#include <stdio.h>

#include "compiler/emit/skel.h"

void kfc_buf_each_upto(kfc_buf *b, const char *indent, int64_t n, const char *tmpl, int64_t unroll_max)
{
    int unroll = n <= unroll_max;
    if (!unroll)
        kfc_buf_printf(b, "%sfor (kf_i64 kf_k = 0; kf_k < %lld; kf_k++) {", indent, (long long)n);
    for (int64_t c = 0; c < (unroll ? n : 1); c++) {
        kfc_buf_printf(b, "%s", unroll ? indent : " ");
        for (const char *t = tmpl; *t; t++) {
            if (*t == '@') {
                if (unroll)
                    kfc_buf_printf(b, "%lld", (long long)c);
                else
                    kfc_buf_printf(b, "kf_k");
            } else {
                kfc_buf_printf(b, "%c", *t);
            }
        }
        kfc_buf_printf(b, unroll ? "\n" : " }\n");
    }
}

void kfc_buf_eachf(kfc_buf *b, int64_t unroll_max, const char *indent, int64_t n, const char *fmt, ...)
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
    kfc_buf_each_upto(b, indent, n, t, unroll_max);
}

kfc_fam kfc_red_family(int id)
{
    return kfc_red_info[id].family;
}

kfc_redvar kfc_red_variant(int id)
{
    return kfc_red_info[id].variant;
}

int kfc_red_is_max(int id)
{
    return kfc_red_info[id].variant == KFC_RV_MAX;
}
