/* dlsyms.c -- binding a table of symbols from a dlopen'ed library (NVRTC, the
 * CUDA driver): the libraries kforge loads at run time instead of linking. */
#include <dlfcn.h>
#include <string.h>

#include "runtime/rt.h"

const char *kfr_dl_bind(void *lib, const kfr_dl_sym *syms, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        void *f = dlsym(lib, syms[k].name);
        if (!f)
            return syms[k].name;
        /* dlsym returns void *: memcpy into the typed pointer (ISO C forbids the cast) */
        memcpy(syms[k].slot, &f, syms[k].size);
    }
    return NULL;
}
