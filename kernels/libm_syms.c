/* libm_syms.c -- the only external functions generated kernels may call. */
#include <math.h>

#include "kernels/abi.h"

#define SYM(f) {#f, (void *)&f}
const kfk_sym kfk_libm_syms[] = {
    SYM(exp),   SYM(expf),   SYM(log),   SYM(logf),   SYM(sin),   SYM(sinf),  SYM(cos),
    SYM(cosf),  SYM(asin),   SYM(asinf), SYM(acos),   SYM(acosf), SYM(atan),  SYM(atanf),
    SYM(atan2), SYM(atan2f), SYM(sqrt),  SYM(sqrtf),  SYM(pow),   SYM(powf),  SYM(floor),
    SYM(floorf), SYM(round), SYM(roundf), SYM(fabs),  SYM(fabsf),
};
const int kfk_nlibm_syms = (int)(sizeof kfk_libm_syms / sizeof kfk_libm_syms[0]);
