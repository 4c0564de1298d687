/* cpu.c -- the CPU features and architecture that cc -march=native code depends on (cache key). */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "runtime/jit/jit.h"

/* Appends name to buf when have is nonzero. */
static void add(char *buf, size_t cap, int have, const char *name)
{
    size_t n = strlen(buf);
    if (have && n + strlen(name) + 2 < cap)
        snprintf(buf + n, cap - n, " %s", name);
}

void kfr_cpu_features(char *buf, size_t cap)
{
    struct utsname u;
    /* The machine the library was built for, then the kernel's word for it:
     * an x86-64 library running under a different personality still counts. */
#if defined(__x86_64__)
    const char *arch = "x86_64";
#elif defined(__aarch64__)
    const char *arch = "aarch64";
#elif defined(__i386__)
    const char *arch = "i386";
#else
    const char *arch = "other";
#endif
    snprintf(buf, cap, "%s/%s", arch, uname(&u) == 0 ? u.machine : "?");
#if defined(__x86_64__) || defined(__i386__)
    /* Every feature gcc's -march=native may turn on for the vector code we
     * generate: an object built with one of them must never load on a CPU
     * without it (SIGILL), so each is part of the key. */
    __builtin_cpu_init();
    add(buf, cap, __builtin_cpu_supports("sse4.2"), "sse4.2");
    add(buf, cap, __builtin_cpu_supports("popcnt"), "popcnt");
    add(buf, cap, __builtin_cpu_supports("avx"), "avx");
    add(buf, cap, __builtin_cpu_supports("avx2"), "avx2");
    add(buf, cap, __builtin_cpu_supports("fma"), "fma");
    add(buf, cap, __builtin_cpu_supports("bmi"), "bmi");
    add(buf, cap, __builtin_cpu_supports("bmi2"), "bmi2");
    add(buf, cap, __builtin_cpu_supports("avx512f"), "avx512f");
    add(buf, cap, __builtin_cpu_supports("avx512dq"), "avx512dq");
    add(buf, cap, __builtin_cpu_supports("avx512bw"), "avx512bw");
    add(buf, cap, __builtin_cpu_supports("avx512vl"), "avx512vl");
    add(buf, cap, __builtin_cpu_supports("avx512cd"), "avx512cd");
    add(buf, cap, __builtin_cpu_supports("avx512ifma"), "avx512ifma");
    add(buf, cap, __builtin_cpu_supports("avx512vbmi"), "avx512vbmi");
#else
    (void)add;
#endif
}

int kfr_cpu_vector_bits(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* -march=native on an AVX-512 CPU still gets 256-bit code from GCC (its
     * tuning prefers ymm); the cc tier asks for zmm explicitly
     * (kfr_cc_vector_flag) and the emitter doubles its lanes to fill them. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return 512;
#endif
    return 256;
}
