/* vmath.c -- the inline, vectorizable exp and log that optimizing-tier kernels carry as C text.
 * The text is part of every optimized kernel's source and cache key (KFC_CODEGEN_VERSION). */
#include "kernels/vmath.h"

/*
 * Why our own: libm's scalar expf/logf are calls, so a loop calling them does
 * not vectorize; glibc's vector versions need -ffast-math and fall into a
 * slow path below about -87, which small bandwidths produce all the time.
 * These are plain C with no branches (ternaries become blends), no errno and
 * no tables, so GCC vectorizes them with the loop around them.
 *
 * exp: x = k ln2 + r, |r| <= ln2/2, k = round(x / ln2) by the 1.5*2^p magic
 * constant (k is then an integer, so converting it is exact); p = e^r by a polynomial. No
 * floating-point operation may produce a subnormal or underflow: without FTZ
 * (which we must not turn on) x86 takes a microcode assist per such lane,
 * ~2.5x the whole kernel when small bandwidths put most arguments below -87
 * (-708 in double), even where the answer is 0. So 2^k is applied in integer:
 * normal results add k to p's exponent field (exact). Below the smallest
 * normal number the two dtypes differ:
 *   float: the result is flushed to +0: arguments below KFK_EXPF_XMIN
 *     (-87.3365, the least float whose e^x is normal) are masked to +0 by
 *     one compare, which also makes any clamp needless (the lanes that
 *     would wrap the exponent field are the masked ones). A subnormal e^x
 *     would be multiplied into the term and added to the sum, and on Intel
 *     each of those operations takes the assist too (measured 3.8x slower
 *     for Exp(-SqDist*200), issue 12); the liberty is < 1.18e-38 absolute
 *     per term, documented in docs/formulas.md and docs/performance.md.
 *   double: the subnormal's bits are p 2^(k+1074), a normal number below
 *     2^52, rounded half-even to an integer by adding 2^52 and reading the
 *     low bits: one rounding, as IEEE would do it, so results are
 *     bit-identical to p * 2^k (e^x < 2.2e-308 needs x < -708: rare).
 *
 * float, tuned first on the AMD Zen 3 we bench on, then on AVX-512 (Zen 4)
 * (docs/performance.md): the loop is limited by the vector registers in
 * flight, so both the operation count and the length of the dependency
 * chain cost time. Hence: k's bits shifted straight into the exponent field
 * (t's magic bits shift out); Cody-Waite with FMA (ln2 as the float nearest
 * it plus a tiny tail); a degree-6 minimax polynomial (our Remez fit with
 * c0 = c1 = 1, relative error 3e-9) whose two highest terms take r before
 * the tail correction, so they start 4 cycles earlier (the correction,
 * < 3e-7, is far below their weight); the flush as one compare on the
 * argument, off the chain, which AVX-512 folds into the exponent add as a
 * zero-masking. x > 88.72 (inf) and NaN by the last select.
 * kf_vexpns(s, c, cl) is e^(s*c) for an s that is >= 0, -0 or NaN and a
 * negative constant c (the Gaussian's -SqDist/2): the emitter proves both
 * (compiler/emit/exp_fuse.c). t = s*(c log2 e) does not wait for the product
 * s*c, no overflow test (x <= 0), and no NaN select: k's bits come from a
 * conversion (VEXPF_KI), so a NaN s gives a NaN p and p's bits pass
 * unchanged; kf_vexpns2 (c a power of two) flushes on s itself (s > st).
 * 0.86 ulp over the s tested.
 * double: the same design with a degree-11 minimax polynomial (relative
 * error 3.6e-18), the subnormal choice and the range tests as selects (AVX2
 * has no 64-bit integer min/max), and its own kf_vexpns/kf_vexpns2 (clamp at
 * -746). 0.93 ulp over 4e7 random arguments in [-750, 712].
 * log: x = 2^e m, m in [sqrt(1/2), sqrt(2)], subnormals scaled by 2^23 (2^54)
 * first; log(m) by a polynomial in f = m - 1; specials selected at the end.
 * Measured max error over sweeps (tests/t_opt.c asserts it):
 * docs/performance.md.
 */

#define STR_(x) #x
#define STR(x) STR_(x)

/* The float exp's core from t = xc log2e + 1.5*2^23 (computed by the
 * caller) to the result bits, shared by kf_vexp, kf_vexpns and kf_vexpns2:
 * reduction r = xc - k ln2 (RED: two FMAs), polynomial (POLY), 2^k (TAIL).
 * Leaves float `res`. The constants are compiler/emit/opt.h's, written once. */
#define VEXPF_K                                                                                    \
    "    float k = t - 12582912.0f;\n"                                                             \
    "    unsigned tb;\n"                                                                           \
    "    __builtin_memcpy(&tb, &t, 4);\n"                                                          \
    "    unsigned kb = tb << 23; /* k << 23: the magic's own bits shift out */\n"
/* The same k << 23 through a conversion, for the fused exps, which have no
 * NaN select: for a NaN s every step carries the NaN to p, and the NaN k
 * converts to 0x80000000 (x86's "integer indefinite"; AArch64 gives 0),
 * which shifts to 0, so p's NaN bits come out unchanged. Finite k is an
 * integer below 2^31 in every lane whose result is kept. */
#define VEXPF_KI                                                                                   \
    "    float k = t - 12582912.0f;\n"                                                             \
    "    unsigned kb = (unsigned)(int)k << 23;\n"
#define VEXPF_RED                                                                                  \
    "    float r1 = __builtin_fmaf(-k, " STR(KFK_EXPF_LN2_HI) "f, xc); /* ln2 rounded to float */\n" \
    "    float r = __builtin_fmaf(-k, " STR(KFK_EXPF_LN2_LO) "f, r1); /* and the rest of ln2 */\n"
#define VEXPF_POLY                                                                                 \
    "    float p = " STR(KFK_EXPF_C6) "f; /* e^r: degree-6 minimax, c0 = c1 = 1 */\n"              \
    "    p = p * r1 + " STR(KFK_EXPF_C5) "f;\n"                                                    \
    "    p = p * r1 + " STR(KFK_EXPF_C4) "f;\n"                                                    \
    "    p = p * r + " STR(KFK_EXPF_C3) "f;\n"                                                     \
    "    p = p * r + " STR(KFK_EXPF_C2) "f;\n"                                                     \
    "    p = p * r + 1.0f;\n"                                                                      \
    "    p = p * r + 1.0f;\n"
/* p 2^k; flushed to +0 where FLUSH (a C condition) holds: the argument is
 * below KFK_EXPF_XMIN, i.e. e^x < FLT_MIN, so no subnormal ever reaches the
 * sum; every other kept lane's exponent field stays in range (normal). */
#define VEXPF_TAIL(FLUSH)                                                                          \
    "    unsigned pb;\n"                                                                           \
    "    __builtin_memcpy(&pb, &p, 4);\n"                                                          \
    "    unsigned nb = pb + kb; /* p 2^k by adding to its exponent field */\n"                     \
    "    nb = " FLUSH " ? 0u : nb; /* e^x < FLT_MIN (1.18e-38): +0 */\n"                           \
    "    float res;\n"                                                                             \
    "    __builtin_memcpy(&res, &nb, 4);\n"
#define XMIN_F STR(KFK_EXPF_XMIN) "f"

static const char vmath_f32[] =
    "/* inline float exp/log (kernels/vmath.c): no libm, no errno, vectorizable */\n"
    "/* the fused exps' NaN needs no select where a NaN float converts to an int whose\n"
    " * low 9 bits are 0 (x86: 0x80000000, AArch64: 0); elsewhere it gets one */\n"
    "#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)\n"
    "#define KF_VEXP_NAN(s, r) (r)\n"
    "#else\n"
    "#define KF_VEXP_NAN(s, r) ((s) != (s) ? (s) : (r))\n"
    "#endif\n"
    "static inline __attribute__((always_inline, unused)) float kf_vexp(float x)\n"
    "{\n"
    "    float xc = x;\n"
    "    float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5*2^23: k in the low bits */\n"
    VEXPF_K VEXPF_RED VEXPF_POLY VEXPF_TAIL("x < " XMIN_F)
    "    /* 88.7228317 is the largest x with e^x <= FLT_MAX; x + inf: inf, or NaN for NaN */\n"
    "    return x <= 88.7228317f ? res : x + __builtin_inff();\n"
    "}\n"
    "/* e^(s*c) for s >= 0, -0 or NaN and c < 0 (cl = c log2 e); NaN in p, not by a select */\n"
    "static inline __attribute__((always_inline, unused)) float kf_vexpns(float s, float c, float cl)\n"
    "{\n"
    "    float xc = s * c;\n"
    "    float t = s * cl + 12582912.0f;\n"
    VEXPF_KI VEXPF_RED VEXPF_POLY VEXPF_TAIL("xc < " XMIN_F)
    "    return KF_VEXP_NAN(s, res);\n"
    "}\n"
    "/* kf_vexpns for c a power of two, bit for bit, without the product s*c:\n"
    " * l1, l2 are ln2's two parts over c, q1..q6 the polynomial's coefficients\n"
    " * times c^1..c^6, so r is (s*c - k ln2)/c, exactly, and st = KFK_EXPF_XMIN/c\n"
    " * (compiler/emit/exp_fuse.c): s > st iff s*c < KFK_EXPF_XMIN, as c is 2^e */\n"
    "static inline __attribute__((always_inline, unused)) float kf_vexpns2(float s, float cl, float st,\n"
    "    float l1, float l2, float q1, float q2, float q3, float q4, float q5, float q6)\n"
    "{\n"
    "    float t = s * cl + 12582912.0f;\n"
    VEXPF_KI
    "    float r1 = __builtin_fmaf(-k, l1, s);\n"
    "    float r = __builtin_fmaf(-k, l2, r1);\n"
    "    float p = q6;\n"
    "    p = p * r1 + q5;\n"
    "    p = p * r1 + q4;\n"
    "    p = p * r + q3;\n"
    "    p = p * r + q2;\n"
    "    p = p * r + q1;\n"
    "    p = p * r + 1.0f;\n"
    VEXPF_TAIL("s > st")
    "    return KF_VEXP_NAN(s, res);\n"
    "}\n"
    "static inline __attribute__((always_inline, unused)) float kf_vlog(float x)\n"
    "{\n"
    "    int sub = x < 1.17549435e-38f; /* subnormal, zero or negative */\n"
    "    float xs = sub ? x * 8388608.0f : x;\n"
    "    int ix;\n"
    "    __builtin_memcpy(&ix, &xs, 4);\n"
    "    int e = ((ix >> 23) & 0xff) - 127 - (sub ? 23 : 0);\n"
    "    int im = (ix & 0x007fffff) | 0x3f800000;\n"
    "    float m;\n"
    "    __builtin_memcpy(&m, &im, 4); /* [1, 2) */\n"
    "    int big = m > 1.41421356f;\n"
    "    m = big ? m * 0.5f : m;\n"
    "    e += big;\n"
    "    float f = m - 1.0f, fe = (float)e, z = f * f;\n"
    "    float y = 7.0376836292E-2f; /* Cephes logf */\n"
    "    y = y * f - 1.1514610310E-1f;\n"
    "    y = y * f + 1.1676998740E-1f;\n"
    "    y = y * f - 1.2420140846E-1f;\n"
    "    y = y * f + 1.4249322787E-1f;\n"
    "    y = y * f - 1.6668057665E-1f;\n"
    "    y = y * f + 2.0000714765E-1f;\n"
    "    y = y * f - 2.4999993993E-1f;\n"
    "    y = y * f + 3.3333331174E-1f;\n"
    "    y = y * f * z;\n"
    "    y = y + fe * -2.12194440e-4f;\n"
    "    y = y - 0.5f * z;\n"
    "    float res = f + y;\n"
    "    res = res + fe * 0.693359375f;\n"
    "    res = x == 0.0f ? -__builtin_inff() : res;\n"
    "    res = x < 0.0f ? __builtin_nanf(\"\") : res;\n"
    "    res = x == __builtin_inff() ? x : res;\n"
    "    return x != x ? x : res;\n"
    "}\n";

/* The double exp in the same pieces: t = xc log2e + 1.5*2^52 -> k and its
 * bits (K), r = xc - k ln2 (RED), the degree-11 polynomial, its two top
 * steps on r before the tail correction (POLY), 2^k with the subnormal path
 * (TAIL: a select, not a max: AVX2 has no 64-bit integer max). */
#define VEXPD_K                                                                                    \
    "    double k = t - 6755399441055744.0;\n"                                                     \
    "    unsigned long long tb;\n"                                                                 \
    "    __builtin_memcpy(&tb, &t, 8);\n"                                                          \
    "    unsigned long long kb = tb << 52; /* k << 52: the magic's own bits shift out */\n"
#define VEXPD_RED                                                                                  \
    "    double r1 = __builtin_fma(-k, " STR(KFK_EXP_LN2_HI) ", xc); /* fdlibm's ln2_hi: exact */\n" \
    "    double r = __builtin_fma(-k, " STR(KFK_EXP_LN2_LO) ", r1);\n"
#define VEXPD_POLY                                                                                 \
    "    double p = " STR(KFK_EXP_D11) "; /* e^r: degree-11 minimax, c0 = c1 = 1 */\n"             \
    "    p = p * r1 + " STR(KFK_EXP_D10) ";\n"                                                     \
    "    p = p * r1 + " STR(KFK_EXP_D9) ";\n"                                                      \
    "    p = p * r + " STR(KFK_EXP_D8) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D7) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D6) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D5) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D4) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D3) ";\n"                                                       \
    "    p = p * r + " STR(KFK_EXP_D2) ";\n"                                                       \
    "    p = p * r + 1.0;\n"                                                                       \
    "    p = p * r + 1.0;\n"
#define VEXPD_TAIL                                                                                 \
    "    unsigned long long pb;\n"                                                                 \
    "    __builtin_memcpy(&pb, &p, 8);\n"                                                          \
    "    unsigned long long nb = pb + kb; /* p 2^k by its exponent field: normal results */\n"     \
    "    long long sub = (long long)nb < 0x0010000000000000LL; /* exponent field <= 0 */\n"       \
    "    unsigned long long bs = (kb + (2097ULL << 52)) & 0x7ff0000000000000ULL; /* 2^(k+1074) */\n" \
    "    double sv, res;\n"                                                                        \
    "    __builtin_memcpy(&sv, &bs, 8);\n"                                                         \
    "    double v = p * sv + 4503599627370496.0; /* 2^52 + p 2^(k+1074) rounded: */\n"             \
    "    unsigned long long sb;\n"                                                                 \
    "    __builtin_memcpy(&sb, &v, 8);\n"                                                          \
    "    sb -= 0x4330000000000000ULL; /* the subnormal's bits (2^-1074 units) */\n"               \
    "    sb = sub ? sb : nb;\n"                                                                    \
    "    __builtin_memcpy(&res, &sb, 8);\n"

static const char vmath_f64[] =
    "/* inline double exp/log (kernels/vmath.c): no libm, no errno, vectorizable */\n"
    "static inline __attribute__((always_inline, unused)) double kf_vexp(double x)\n"
    "{\n"
    "    double xc = x;\n"
    "    double t = x * 1.4426950408889634 + 6755399441055744.0; /* 1.5*2^52 */\n"
    VEXPD_K VEXPD_RED VEXPD_POLY VEXPD_TAIL
    "    res = x < -746.0 ? 0.0 : res; /* e^-746 < half the smallest subnormal */\n"
    "    /* 709.78271289338397 is the largest x with e^x <= DBL_MAX; x + inf: inf or NaN */\n"
    "    return x <= 709.78271289338397 ? res : x + __builtin_inf();\n"
    "}\n"
    "/* e^(s*c) for s >= 0, -0 or NaN and c < 0 (cl = c log2 e, sl = bits of 746/|c|) */\n"
    "static inline __attribute__((always_inline, unused)) double kf_vexpns(double s, double c, double cl,\n"
    "    long long sl)\n"
    "{\n"
    "    long long si;\n"
    "    __builtin_memcpy(&si, &s, 8);\n"
    "    si = si < sl ? si : sl; /* s*c below -746, +inf, +NaN: -746; -0 and -NaN stay */\n"
    "    double sc;\n"
    "    __builtin_memcpy(&sc, &si, 8);\n"
    "    double xc = sc * c;\n"
    "    double t = sc * cl + 6755399441055744.0;\n"
    VEXPD_K VEXPD_RED VEXPD_POLY VEXPD_TAIL
    "    return s != s ? s : res;\n"
    "}\n"
    "/* kf_vexpns for c a power of two, bit for bit, without the product s*c */\n"
    "static inline __attribute__((always_inline, unused)) double kf_vexpns2(double s, double cl, long long sl,\n"
    "    double l1, double l2, double q1, double q2, double q3, double q4, double q5, double q6,\n"
    "    double q7, double q8, double q9, double q10, double q11)\n"
    "{\n"
    "    long long si;\n"
    "    __builtin_memcpy(&si, &s, 8);\n"
    "    si = si < sl ? si : sl;\n"
    "    double sc;\n"
    "    __builtin_memcpy(&sc, &si, 8);\n"
    "    double t = sc * cl + 6755399441055744.0;\n"
    VEXPD_K
    "    double r1 = __builtin_fma(-k, l1, sc);\n"
    "    double r = __builtin_fma(-k, l2, r1);\n"
    "    double p = q11;\n"
    "    p = p * r1 + q10;\n"
    "    p = p * r1 + q9;\n"
    "    p = p * r + q8;\n"
    "    p = p * r + q7;\n"
    "    p = p * r + q6;\n"
    "    p = p * r + q5;\n"
    "    p = p * r + q4;\n"
    "    p = p * r + q3;\n"
    "    p = p * r + q2;\n"
    "    p = p * r + q1;\n"
    "    p = p * r + 1.0;\n"
    VEXPD_TAIL
    "    return s != s ? s : res;\n"
    "}\n"
    "static inline __attribute__((always_inline, unused)) double kf_vlog(double x)\n"
    "{\n"
    "    int sub = x < 2.2250738585072014e-308; /* subnormal, zero or negative */\n"
    "    double xs = sub ? x * 18014398509481984.0 : x; /* 2^54 */\n"
    "    long long ix;\n"
    "    __builtin_memcpy(&ix, &xs, 8);\n"
    "    int hi = (int)(ix >> 32);\n"
    "    int e = ((hi >> 20) & 0x7ff) - 1023 - (sub ? 54 : 0);\n"
    "    long long im = (ix & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;\n"
    "    double m;\n"
    "    __builtin_memcpy(&m, &im, 8); /* [1, 2) */\n"
    "    int big = m > 1.4142135623730951;\n"
    "    m = big ? m * 0.5 : m;\n"
    "    e += big;\n"
    "    /* fdlibm e_log.c: log(1+f) = f - hfsq + s*(hfsq + R(z)), s = f/(2+f) */\n"
    "    double f = m - 1.0, de = (double)e;\n"
    "    double s = f / (2.0 + f), z = s * s, hfsq = 0.5 * f * f;\n"
    "    double R = 1.479819860511658591e-01;\n"
    "    R = R * z + 1.531383769920937332e-01;\n"
    "    R = R * z + 1.818357216161805012e-01;\n"
    "    R = R * z + 2.222219843214978396e-01;\n"
    "    R = R * z + 2.857142874366239149e-01;\n"
    "    R = R * z + 3.999999999940941908e-01;\n"
    "    R = R * z + 6.666666666666735130e-01;\n"
    "    R = R * z;\n"
    "    double res = de * 6.93147180369123816490e-01 -\n"
    "                 ((hfsq - (s * (hfsq + R) + de * 1.90821492927058770002e-10)) - f);\n"
    "    res = x == 0.0 ? -__builtin_inf() : res;\n"
    "    res = x < 0.0 ? __builtin_nan(\"\") : res;\n"
    "    res = x == __builtin_inf() ? x : res;\n"
    "    return x != x ? x : res;\n"
    "}\n";

const char *kfk_vmath_source(kf_dtype dtype)
{
    return dtype == KF_FLOAT32 ? vmath_f32 : vmath_f64;
}
