/* libm_syms.c -- the only external functions generated kernels may call: the
 * MATH column of compiler/ops.def, each function for double and for float. */
#include <math.h>

#include "compiler/ir.h"
#include "kernels/abi.h"

#define SYM(f) {#f, (void *)&f},
const kfk_sym kfk_libm_syms[] = {
#define LIBM(fn, proto, opt, cuda) SYM(fn) SYM(fn##f)
#define NOLIBM
#define X(id, name, nargs, nints, dimrule, cexpr, math, fold, deriv, doc) math
#include "compiler/ops.def"
#undef X
#undef LIBM
#undef NOLIBM
};
const int kfk_nlibm_syms = (int)(sizeof kfk_libm_syms / sizeof kfk_libm_syms[0]);
