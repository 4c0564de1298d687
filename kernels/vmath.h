/* vmath.h -- the inline vector math (vmath.c) that optimizing-tier kernels embed as C text, and its constants. */
#ifndef KF_KERNELS_VMATH_H
#define KF_KERNELS_VMATH_H

#include "kforge.h"

/* C text of the inline math for dtype: static inline kf_vexp / kf_vlog
 * (float or double per KF_T) with their accuracy in comments, no libm,
 * no errno, no branches (so they vectorize); for float also kf_vexpns and
 * kf_vexpns2 (e^(s*c), compiler/emit/exp_fuse.c). */
const char *kfk_vmath_source(kf_dtype dtype);

/* The float exp's constants (kernels/vmath.c), as numbers here so that the
 * emitter can scale them for kf_vexpns2: e^r = 1 + r + C2 r^2 + ... + C6 r^6
 * on |r| <= ln2/2 (our Remez fit, relative error 3e-9), and ln2 = LN2_HI +
 * LN2_LO with LN2_HI the float nearest ln2. Each is a float exactly. */
#define KFK_EXPF_C2 4.999999403953552e-1
#define KFK_EXPF_C3 1.666652113199234e-1
#define KFK_EXPF_C4 4.166838899254799e-2
#define KFK_EXPF_C5 8.368710055947304e-3
#define KFK_EXPF_C6 1.381461275741458e-3
#define KFK_EXPF_LN2_HI 0.693147182464599609375
#define KFK_EXPF_LN2_LO -1.904654323148236e-09
/* The least float x with e^x >= FLT_MIN (the float just above -126 ln2):
 * below it the float exps give +0 (kernels/vmath.c). */
#define KFK_EXPF_XMIN -0x1.5d589ep+6
/* The double exp's: e^r = 1 + r + D2 r^2 + ... + D11 r^11 (our Remez fit,
 * relative error 3.6e-18), ln2 = LN2_HI + LN2_LO (fdlibm's split: k LN2_HI
 * is exact for |k| < 2^20). */
#define KFK_EXP_D2 0.5000000000000011
#define KFK_EXP_D3 0.16666666666666413
#define KFK_EXP_D4 0.041666666666530267
#define KFK_EXP_D5 0.008333333333494338
#define KFK_EXP_D6 0.0013888888943597566
#define KFK_EXP_D7 0.00019841269506764927
#define KFK_EXP_D8 2.48014931363218e-05
#define KFK_EXP_D9 2.755758628105193e-06
#define KFK_EXP_D10 2.7630233871620454e-07
#define KFK_EXP_D11 2.5000067274192672e-08
#define KFK_EXP_LN2_HI 6.93147180369123816490e-01
#define KFK_EXP_LN2_LO 1.90821492927058770002e-10

#endif
