/* opt_text.c -- the optimizing tier's C source of a compiled kernel: kf_kernel_opt_text
 * (`kforge check --emit c --jit cc`). The same text the background build compiles
 * (tiers.c), less the cache-key line the build appends. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/jit/jit.h"
#include "runtime/rt.h"

int kf_kernel_opt_text(kf_kernel *k, char **text)
{
    if (text)
        *text = NULL;
    if (!k)
        return KF_ERR_ARG;
    kfr_clear_error(k->ctx);
    if (!text)
        return kfr_error(k->ctx, KF_ERR_ARG, "kf_kernel_opt_text: text is NULL");
    if (!k->has_red)
        return kfr_error(k->ctx, KF_ERR_ARG,
                         "the optimizing tier compiles whole reductions: give a reduction "
                         "(--reduction)");
    kfc_diag d;
    kfc_diag_clear(&d);
    *text = KFR_EMIT_OPT(&k->prog, &k->red, &d);
    if (*text)
        return KF_OK;
    return kfr_error(k->ctx, d.status ? d.status : KF_ERR_NOMEM, "%s",
                     d.msg[0] ? d.msg : "out of memory");
}
