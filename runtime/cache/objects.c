/*
 * objects.c -- the in-process table of loaded optimized objects, and loading
 * a cc entry of the store (store_read.c) into it: verified bytes, key checked
 * in them, loaded from a sealed memory file.
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
#define _GNU_SOURCE /* memfd_create, memmem */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
        close(node->fd);
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
        close(so->fd);
        free(so);
    }
}

const char kfr_so_key_marker[] = "kforge cache key ";

/* Whether the bytes carry key, and no other: every "kforge cache key " in
 * them is followed by key and its NUL, and there is one. Read from the bytes,
 * not from a symbol, because reaching a symbol means dlopen, and dlopen runs
 * the object's constructors. */
static int carries_key(const char *img, size_t len, const char *key)
{
    size_t m = strlen(kfr_so_key_marker), found = 0;
    const char *p = img, *end = img + len;
    while ((p = memmem(p, (size_t)(end - p), kfr_so_key_marker, m))) {
        p += m;
        if ((size_t)(end - p) < KFR_HEX_LEN + 1 || memcmp(p, key, KFR_HEX_LEN + 1) != 0)
            return 0;
        found++;
    }
    return found > 0;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: says the memory file may be mapped executable */
#endif

/* A sealed memory file holding img: its bytes can no longer change, so the
 * object dlopen maps is the one verified. fd, or -1 with errno. */
static int sealed_copy(const char *img, size_t len)
{
    int fd = memfd_create("kforge-kernel", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel before 6.3 does not know MFD_EXEC */
        fd = memfd_create("kforge-kernel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, img + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (done != len ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = done != len ? EIO : errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int kfr_so_open_image(const char *img, size_t len, const char *key, const char *entry,
                      kfr_so **spare, kfr_so **out, char *why, size_t cap)
{
    if (!carries_key(img, len, key)) {
        snprintf(why, cap, "the object does not carry its key (checked in its bytes; it was "
                           "not loaded, none of its code ran)");
        return KF_ERR_JIT;
    }
    if (!*spare) {
        snprintf(why, cap, "out of memory");
        return KF_ERR_NOMEM;
    }
    int fd = sealed_copy(img, len);
    if (fd < 0) {
        snprintf(why, cap, "cannot make a sealed memory file to load the object from: %s",
                 strerror(errno));
        return KF_ERR_JIT;
    }
    /* The fd stays open as long as the object is loaded: glibc knows an
     * object by its name, and a later object must not get this one's
     * /proc/self/fd/N while it is mapped. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, cap, "dlopen failed: %s", e ? e : "unknown error");
        close(fd);
        return KF_ERR_JIT;
    }
    /* Once more through the symbol (the JIT appends it to the source). */
    const char *own = dlsym(h, "kf_cache_key");
    void *fn = dlsym(h, KFK_ENTRY);
    size_t m = strlen(kfr_so_key_marker);
    if (!own || strncmp(own, kfr_so_key_marker, m) != 0 ||
        strncmp(own + m, key, KFR_HEX_LEN + 1) != 0 || !fn) {
        snprintf(why, cap, "%s", !own ? "the object carries no key"
                                 : !fn ? "the object has no " KFK_ENTRY
                                       : "the object carries another key");
        dlclose(h);
        close(fd);
        return KF_ERR_JIT;
    }
    kfr_so *node = *spare;
    *spare = NULL;
    memset(node, 0, sizeof *node);
    memcpy(node->key, key, KFR_HEX_LEN + 1);
    node->handle = h;
    node->fd = fd;
    /* POSIX guarantees object and function pointers convert (dlsym relies on it). */
    node->fn = (kfk_reduce_fn)fn;
    if (entry)
        snprintf(node->path, sizeof node->path, "%s", entry);
    *out = table_insert(node);
    return KF_OK;
}

kfr_found kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out,
                         char *why, size_t cap)
{
    *out = NULL;
    char *img = NULL, w[400], entry[PATH_MAX + 72];
    size_t len = 0;
    kfr_found f = kfr_entry_read(c, key, "kernel.so", &img, &len, why, cap);
    if (f != KFR_FOUND)
        return f;
    /* Verified bytes; the object's own key is the last check. */
    snprintf(entry, sizeof entry, "%s/%s/kernel.so", c->dir, key);
    int rc = kfr_so_open_image(img, len, key, entry, spare, out, w, sizeof w);
    free(img);
    if (rc == KF_ERR_NOMEM) {
        snprintf(why, cap, "cache entry %s: %s; not loading it", entry, w);
        return KFR_INVALID;
    }
    if (rc != KF_OK)
        return kfr_entry_reject(c, key, 0, w, why, cap);
    kfr_entry_touch(c, key);
    return KFR_FOUND;
}
