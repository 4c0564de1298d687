/*
 * store_int.h -- what the store's files share, and nobody else:
 *
 *   store_dir.c    the directory: where it is, whether it is trusted, its
 *                  descriptor, its CACHEDIR.TAG, removing things in it
 *   store_read.c   an entry's meta, verifying an entry, looking one up
 *   store_write.c  writing an entry (build directory, seal, publish)
 *
 * Everything works relative to the cache's directory descriptor (kfr_cache.dfd,
 * opened once with O_NOFOLLOW and checked on the descriptor), never by path:
 * a path can be pointed elsewhere between a check and a use, a descriptor
 * cannot.
 */
#ifndef KF_RUNTIME_CACHE_STORE_INT_H
#define KF_RUNTIME_CACHE_STORE_INT_H

#include <stdarg.h>
#include <sys/stat.h>

#include "runtime/cache/cache.h"

/* snprintf for paths and messages whose length was bounded earlier; a longer
 * result is cut, which at worst fails the open that follows. */
void kfr_store_fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
/* s for a message: printable ASCII, the rest as \xHH, at most cap-1. */
const char *kfr_store_printable(const char *s, char *buf, size_t cap);
/* Why st (of a file or directory) cannot be trusted, or NULL. */
const char *kfr_store_distrust(const struct stat *st, char *why, size_t cap);
/* A key names a directory: 64 lowercase hex digits, nothing else. */
int kfr_store_key_ok(const char *key);
/* The objects an entry may hold: kernel.so, kernel.cubin, kernel.ptx. */
int kfr_store_object_ok(const char *f);
int kfr_store_image_ok(const char *f); /* the GPU ones only */
/* Opens name under dfd as a directory, never through a link. fd or -1 (errno). */
int kfr_store_open_dir(int dfd, const char *name);
/* Removes name under dfd and, if it is a directory, what is in it, never
 * through a link. */
void kfr_store_remove_at(int dfd, const char *name);
/* Verifies entry key under the cache's descriptor dfd (store_read.c):
 * trust, meta, the object's size and SHA-256; want (may be NULL) is the
 * object the caller needs; with img the object is read into memory and the
 * hash taken over those bytes. KF_OK, KF_ERR_IO with why (*untrusted for
 * ownership or modes), KF_ERR_NOMEM. */
int kfr_store_verify(int dfd, const char *key, const char *want, char **img, size_t *len,
                     char *why, size_t cap, int *untrusted);
/* Whether c's directory carries kforge's CACHEDIR.TAG: only then does the
 * store remove anything in it that it did not just make itself. */
int kfr_store_tagged(const kfr_cache *c);

#endif
