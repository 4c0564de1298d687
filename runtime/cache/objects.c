/*
 * objects.c -- the in-process table of loaded optimized objects, and loading
 * a cc entry of the store (store.c) into it.
 *
 * Process-wide by nature: its point is that two contexts (or two kernels) of
 * the same formula share one loaded object. A mutex guards it; an object is
 * unloaded (dlclose) when its last kernel is freed, so a long-running program
 * that compiles many formulas does not keep them all mapped. With the libtcc
 * mutex, this is the library's only process-wide state (docs/cache.md).
 *
 * Errors: kf_status and a (why, cap) reason; lookups return a kfr_found
 * (cache.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cache/cache.h"

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static kfr_so *table;

kfr_so *kfr_so_new(void)
{
    return calloc(1, sizeof(kfr_so));
}

kfr_so *kfr_so_find(const char *key)
{
    pthread_mutex_lock(&table_mu);
    kfr_so *s = table;
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&table_mu);
    return s;
}

/* Adds node (handle and fn set) unless key is there already: then the
 * existing object gets the reference and node's handle is closed. Returns
 * the table's object; node is consumed either way (freed if unused). */
static kfr_so *table_insert(kfr_so *node)
{
    pthread_mutex_lock(&table_mu);
    kfr_so *s = table;
    while (s && strcmp(s->key, node->key) != 0)
        s = s->next;
    if (s) {
        s->refs++;
    } else {
        node->refs = 1;
        node->next = table;
        table = node;
    }
    pthread_mutex_unlock(&table_mu);
    if (s) {
        dlclose(node->handle);
        free(node);
        return s;
    }
    return node;
}

void kfr_so_release(kfr_so *so)
{
    if (!so)
        return;
    pthread_mutex_lock(&table_mu);
    int last = --so->refs == 0;
    if (last) {
        kfr_so **p = &table;
        while (*p && *p != so)
            p = &(*p)->next;
        if (*p)
            *p = so->next;
    }
    pthread_mutex_unlock(&table_mu);
    if (last) {
        dlclose(so->handle);
        free(so);
    }
}

int kfr_so_open(const char *path, const char *key, int keep_path, kfr_so **spare, kfr_so **out,
                char *why, size_t cap)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, cap, "dlopen failed: %s", e ? e : "unknown error");
        return KF_ERR_JIT;
    }
    /* The key the object was built with (the JIT appends it to the source):
     * an object copied under another entry's name does not pass. */
    const char *own = dlsym(h, "kf_cache_key");
    void *fn = dlsym(h, KFK_ENTRY);
    if (!own || strncmp(own, key, KFR_HEX_LEN + 1) != 0 || !fn) {
        snprintf(why, cap, "%s", !own ? "the object carries no key"
                                 : !fn ? "the object has no " KFK_ENTRY
                                       : "the object carries another key");
        dlclose(h);
        return KF_ERR_JIT;
    }
    kfr_so *node = *spare;
    if (!node) {
        snprintf(why, cap, "out of memory");
        dlclose(h);
        return KF_ERR_NOMEM;
    }
    *spare = NULL;
    memset(node, 0, sizeof *node);
    memcpy(node->key, key, KFR_HEX_LEN + 1);
    node->handle = h;
    /* POSIX guarantees object and function pointers convert (dlsym relies on it). */
    node->fn = (kfk_reduce_fn)fn;
    if (keep_path)
        snprintf(node->path, sizeof node->path, "%s", path);
    *out = table_insert(node);
    return KF_OK;
}

kfr_found kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out,
                         char *why, size_t cap)
{
    *out = NULL;
    char obj[PATH_MAX], w[400];
    kfr_found f = kfr_entry_find(c, key, "kernel.so", obj, why, cap);
    if (f != KFR_FOUND)
        return f;
    /* Verified; the object's own key is the last check, after dlopen. */
    if (kfr_so_open(obj, key, 1, spare, out, w, sizeof w) != KF_OK)
        return kfr_entry_reject(c, key, 0, w, why, cap);
    kfr_entry_touch(c, key);
    return KFR_FOUND;
}
