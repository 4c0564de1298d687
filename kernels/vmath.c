/* vmath.c -- the inline, vectorizable exp and log that optimizing-tier kernels carry as C text. */
#include "opt.h"

/*
 * Why our own: libm's scalar expf/logf are calls, so a loop calling them does
 * not vectorize; glibc's vector versions need -ffast-math and fall into a
 * slow path below about -87, which small bandwidths produce all the time.
 * These are plain C with no branches (ternaries become blends), no errno and
 * no tables, so GCC vectorizes them with the loop around them.
 *
 * exp: x = k ln2 + r, |r| <= ln2/2, k = round(x / ln2) by the 1.5*2^p magic
 * constant (no float->int conversion, so NaN is never converted); e^r by a
 * polynomial; 2^k applied as two factors 2^(k/2) 2^(k - k/2), each a normal
 * number, so results down to the smallest subnormal are rounded once (no slow
 * path, no flush to zero). x is clamped first, which keeps k in range:
 * below the clamp e^x rounds to 0, above it to inf; NaN passes the clamps
 * (comparisons are false) and propagates through r.
 * log: x = 2^e m, m in [sqrt(1/2), sqrt(2)], subnormals scaled by 2^23 (2^54)
 * first; log(m) by a polynomial in f = m - 1; specials selected at the end.
 * Measured max error over sweeps (tests/t_opt.c asserts it):
 * docs/performance.md.
 */

static const char vmath_f32[] =
    "/* inline float exp/log (kernels/vmath.c): no libm, no errno, vectorizable */\n"
    "static inline __attribute__((always_inline, unused)) float kf_vexp(float x)\n"
    "{\n"
    "    x = x < -104.0f ? -104.0f : x; /* e^-104 < half the smallest subnormal: 0 */\n"
    "    x = x > 89.0f ? 89.0f : x;     /* e^89 > FLT_MAX: inf */\n"
    "    float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5*2^23: k in the low bits */\n"
    "    float k = t - 12582912.0f;\n"
    "    int ki;\n"
    "    __builtin_memcpy(&ki, &t, 4);\n"
    "    ki -= 0x4B400000;\n"
    "    float r = x - k * 0.693359375f; /* Cody-Waite: ln2 = 0.693359375 - 2.12194440e-4 */\n"
    "    r = r - k * -2.12194440e-4f;\n"
    "    float p = 1.9875691500E-4f; /* Cephes expf: (e^r - 1 - r)/r^2 */\n"
    "    p = p * r + 1.3981999507E-3f;\n"
    "    p = p * r + 8.3334519073E-3f;\n"
    "    p = p * r + 4.1665795894E-2f;\n"
    "    p = p * r + 1.6666665459E-1f;\n"
    "    p = p * r + 5.0000001201E-1f;\n"
    "    p = p * (r * r) + r + 1.0f;\n"
    "    int k1 = ki >> 1, k2 = ki - k1;\n"
    "    int b1 = (k1 + 127) << 23, b2 = (k2 + 127) << 23;\n"
    "    float s1, s2;\n"
    "    __builtin_memcpy(&s1, &b1, 4);\n"
    "    __builtin_memcpy(&s2, &b2, 4);\n"
    "    return p * s1 * s2;\n"
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

static const char vmath_f64[] =
    "/* inline double exp/log (kernels/vmath.c): no libm, no errno, vectorizable */\n"
    "static inline __attribute__((always_inline, unused)) double kf_vexp(double x)\n"
    "{\n"
    "    x = x < -746.0 ? -746.0 : x; /* below: 0 */\n"
    "    x = x > 710.0 ? 710.0 : x;   /* above: inf */\n"
    "    double t = x * 1.4426950408889634 + 6755399441055744.0; /* 1.5*2^52 */\n"
    "    double k = t - 6755399441055744.0;\n"
    "    long long kl;\n"
    "    __builtin_memcpy(&kl, &t, 8);\n"
    "    int ki = (int)(kl - 0x4338000000000000LL); /* |k| <= 1077 */\n"
    "    double r = x - k * 6.93147180369123816490e-01; /* fdlibm ln2_hi: k*hi is exact */\n"
    "    r = r - k * 1.90821492927058770002e-10;\n"
    "    double p = 1.6059043836821613e-10; /* Taylor to r^13: error < r^14/14! ~ 4e-18 */\n"
    "    p = p * r + 2.08767569878681e-09;\n"
    "    p = p * r + 2.505210838544172e-08;\n"
    "    p = p * r + 2.755731922398589e-07;\n"
    "    p = p * r + 2.7557319223985893e-06;\n"
    "    p = p * r + 2.48015873015873e-05;\n"
    "    p = p * r + 0.0001984126984126984;\n"
    "    p = p * r + 0.001388888888888889;\n"
    "    p = p * r + 0.008333333333333333;\n"
    "    p = p * r + 0.041666666666666664;\n"
    "    p = p * r + 0.16666666666666666;\n"
    "    p = p * r + 0.5;\n"
    "    p = p * (r * r) + r + 1.0;\n"
    "    int k1 = ki >> 1, k2 = ki - k1;\n"
    "    long long b1 = (long long)(k1 + 1023) << 52, b2 = (long long)(k2 + 1023) << 52;\n"
    "    double s1, s2;\n"
    "    __builtin_memcpy(&s1, &b1, 8);\n"
    "    __builtin_memcpy(&s2, &b2, 8);\n"
    "    return p * s1 * s2;\n"
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
