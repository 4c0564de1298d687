/*
 * cacheutil.h -- what the cache and tier tests share (t_cache.c, t_tiers.c,
 * t_cc_props.c): temporary cache directories, contexts that capture their
 * log, environment save/restore, "compile with engine E and compare with the
 * reference", and running this test binary again as a child process.
 */
#ifndef KF_TESTS_CACHEUTIL_H
#define KF_TESTS_CACHEUTIL_H

#include <sys/types.h>

#include "testutil.h"

/* A fresh directory under /tmp (malloc'd path), or NULL. */
char *kft_tmpdir(const char *tag);
/* Removes a directory tree (files and directories, links not followed) and frees path. */
void kft_rmtree(char *path);
/* Number of directory entries of dir whose names are 64 hex digits (cache
 * entries) and, if other != NULL, of any other names. -1 if dir is unreadable. */
int kft_count_entries(const char *dir, int *other);

/* A context whose log (up to KF_LOG_INFO) is kept in log. */
typedef struct kft_logctx {
    kf_ctx *ctx;
    char log[8192];
    size_t len;
} kft_logctx;
/* cache_dir may be NULL (the environment decides). Returns 0 or -1. */
int kft_logctx_new(kft_logctx *c, const char *cache_dir, int threads, int no_cache);
void kft_logctx_free(kft_logctx *c);

/* Sets (value NULL: unsets) an environment variable until kft_env_restore. */
typedef struct kft_env {
    const char *name;
    char *old;
    int had;
} kft_env;
kft_env kft_env_set(const char *name, const char *value);
void kft_env_restore(kft_env e);

/* Compiles s with engine jit on ctx (no engine check, unlike kft_compile). */
kf_kernel *kft_compile_jit(kf_ctx *ctx, const kft_spec *s, kf_jit jit);
/* Compares kernel k (compiled from s) with the reference on M x N data made
 * from seed (kft_data_make with lo, hi, grid). Returns mismatches, -1 on failure. */
int kft_vs_reference(const kft_spec *s, kf_kernel *k, int64_t M, int64_t N, double lo, double hi,
                     int grid, uint64_t seed);

/* The Gaussian kernel sum of the README, with a constant c in the bandwidth
 * (a different c is a different kernel: a fresh cache key). */
void kft_gauss_spec(kft_spec *s, char *formula, size_t cap, int c, kf_dtype dtype);

/* Starts this test binary again with KFT_CHILD=task in its environment
 * (extra "NAME=VALUE" settings in env, NULL-terminated, may be NULL); its
 * stdout comes back through *fd. Returns the pid or -1. */
pid_t kft_spawn_self(const char *task, const char *const *env, int *fd);
/* Reads the child's output into buf (NUL-terminated), waits for it;
 * returns its exit status (or -1 if it did not exit normally). */
int kft_wait_child(pid_t pid, int fd, char *buf, size_t cap);

#endif
