/* jit_tcc.c -- compiles generated C in memory with libtcc and hands back the entry point. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtcc.h>

#include "runtime/rt.h"

/* The shared library (built with -DKFR_TCC_OPTIONAL) names libtcc weakly.
 * Debian's libtcc is a non-PIC static archive that no shared object can
 * hold, so libkforge.so.0 gets it from the program: one linked with
 * `pkg-config --libs kforge` (-Wl,-u,tcc_new -ltcc) carries libtcc and
 * exports it to the library; one that is not (Python's ctypes, a plain
 * -lkforge) still loads it, and then has no libtcc tier: kfr_tcc_available()
 * says so, KF_JIT_AUTO runs cc code (runtime/jit/tiers.c) and KF_JIT_TCC
 * fails with a message. The static archive names libtcc strongly, so a
 * static link pulls it in as before. */
#ifdef KFR_TCC_OPTIONAL
#pragma weak tcc_new
#pragma weak tcc_delete
#pragma weak tcc_set_error_func
#pragma weak tcc_set_options
#pragma weak tcc_set_lib_path
#pragma weak tcc_set_output_type
#pragma weak tcc_add_symbol
#pragma weak tcc_compile_string
#pragma weak tcc_add_file
#pragma weak tcc_relocate
#pragma weak tcc_get_symbol
#endif

int kfr_tcc_available(void)
{
#ifdef KFR_TCC_OPTIONAL
    /* Every function the tier calls: a program could define some of them. */
    return tcc_new && tcc_delete && tcc_set_error_func && tcc_set_options && tcc_set_lib_path &&
           tcc_set_output_type && tcc_add_symbol && tcc_compile_string && tcc_add_file &&
           tcc_relocate && tcc_get_symbol;
#else
    return 1;
#endif
}

/* Where Debian keeps libtcc1.a: the helpers (__fixunsdfdi, ...) that tcc's
 * code generator may call for some integer/float conversions. */
#define KFR_TCC_LIB_DIR "/usr/lib/x86_64-linux-gnu/tcc"

/* libtcc 0.9.27 is not thread-safe: compiling goes through global state (the
 * current TCCState pointer, the token and symbol tables). So every call into
 * libtcc happens under this lock, from tcc_new to tcc_get_symbol, and again
 * around tcc_delete. The relocated code itself is ordinary memory owned by its
 * state and runs without the lock. */
static pthread_mutex_t tcc_lock = PTHREAD_MUTEX_INITIALIZER;

struct kfr_tcc {
    TCCState *s;
};

/* The first message tcc reports; later ones are usually consequences. */
typedef struct tcc_errors {
    char first[400];
    int n;
} tcc_errors;

static void on_tcc_error(void *opaque, const char *msg)
{
    tcc_errors *e = opaque;
    if (e->n++ == 0)
        snprintf(e->first, sizeof e->first, "%s", msg);
}

/* Functions tcc's code generator may call on its own (struct copies, array
 * zeroing) even though the emitter never names them. */
static const kfk_sym implicit_syms[] = {
    {"memset", (void *)&memset},
    {"memcpy", (void *)&memcpy},
    {"memmove", (void *)&memmove},
};

/* One attempt: a fresh state, the source, the symbols, relocation. with_lib
 * adds libtcc1.a for the conversion helpers. Caller holds tcc_lock. Returns
 * the state or NULL with *e filled. */
static TCCState *try_compile(const char *src, int with_lib, tcc_errors *e, int *nomem)
{
    TCCState *s = tcc_new();
    if (!s) {
        *nomem = 1;
        return NULL;
    }
    tcc_set_error_func(s, e, on_tcc_error);
    /* Generated code includes nothing and links against nothing but the
     * symbols added below: no system headers, no libc. */
    tcc_set_options(s, "-nostdinc -nostdlib");
    if (with_lib)
        tcc_set_lib_path(s, KFR_TCC_LIB_DIR);
    if (tcc_set_output_type(s, TCC_OUTPUT_MEMORY) < 0)
        goto fail;
    for (int k = 0; k < kfk_nlibm_syms; k++)
        tcc_add_symbol(s, kfk_libm_syms[k].name, kfk_libm_syms[k].addr);
    for (size_t k = 0; k < sizeof implicit_syms / sizeof implicit_syms[0]; k++)
        tcc_add_symbol(s, implicit_syms[k].name, implicit_syms[k].addr);
    if (tcc_compile_string(s, src) < 0)
        goto fail;
    if (with_lib && tcc_add_file(s, KFR_TCC_LIB_DIR "/libtcc1.a") < 0)
        goto fail;
    if (tcc_relocate(s, TCC_RELOCATE_AUTO) < 0)
        goto fail;
    return s;
fail:
    tcc_delete(s);
    return NULL;
}

int kfr_tcc_compile(const char *src, const char *entry, kfr_tcc **jit, void **fn, kfc_diag *d)
{
    *jit = NULL;
    *fn = NULL;
    if (!kfr_tcc_available())
        return kfc_diag_set(d, KF_ERR_UNSUPPORTED, -1, -1,
                            "the libtcc engine is not in this process: libkforge.so gets libtcc "
                            "from the program (link it with `pkg-config --libs kforge`); use "
                            "the cc engine (KF_JIT_CC, KFORGE_JIT=cc) or auto");
    kfr_tcc *j = malloc(sizeof *j);
    if (!j)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    tcc_errors e = {{0}, 0};
    int nomem = 0;
    pthread_mutex_lock(&tcc_lock);
    TCCState *s = try_compile(src, 0, &e, &nomem);
    /* Only undefined helpers justify the second attempt with libtcc1.a; a
     * syntax error in generated code would fail again the same way. */
    if (!s && !nomem && strstr(e.first, "undefined symbol")) {
        tcc_errors e2 = {{0}, 0};
        s = try_compile(src, 1, &e2, &nomem);
        if (!s && e2.n)
            e = e2;
    }
    void *f = s ? tcc_get_symbol(s, entry) : NULL;
    if (s && !f) {
        snprintf(e.first, sizeof e.first, "entry point '%s' not found", entry);
        tcc_delete(s);
        s = NULL;
    }
    pthread_mutex_unlock(&tcc_lock);
    if (!s) {
        free(j);
        if (nomem)
            return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory (libtcc)");
        return kfc_diag_set(d, KF_ERR_JIT, -1, -1,
                            "JIT compilation of the generated C failed (a kforge bug, please "
                            "report it with `kforge check --emit c`): %s",
                            e.n || e.first[0] ? e.first : "unknown libtcc error");
    }
    j->s = s;
    *jit = j;
    *fn = f;
    return KF_OK;
}

void kfr_tcc_free(kfr_tcc *jit)
{
    if (!jit)
        return;
    pthread_mutex_lock(&tcc_lock);
    tcc_delete(jit->s);
    pthread_mutex_unlock(&tcc_lock);
    free(jit);
}
