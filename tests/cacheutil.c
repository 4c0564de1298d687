/* cacheutil.c -- helpers of the cache and tier tests (see cacheutil.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cacheutil.h"

extern char **environ;

char *kft_tmpdir(const char *tag)
{
    char *p = malloc(96);
    if (!p)
        return NULL;
    snprintf(p, 96, "/tmp/kft-%s-XXXXXX", tag);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void kft_rmtree(char *path)
{
    if (!path)
        return;
    /* Undo the tests' chmods first, or remove() cannot get inside. */
    chmod(path, 0700);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

int kft_count_entries(const char *dir, int *other)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0, o = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        /* The tag marks the directory as kforge's: neither entry nor leftover. */
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "CACHEDIR.TAG"))
            continue;
        if (strlen(e->d_name) == 64 && strspn(e->d_name, "0123456789abcdef") == 64)
            n++;
        else
            o++;
    }
    closedir(d);
    if (other)
        *other = o;
    return n;
}

static void on_log(void *user, int level, const char *msg)
{
    kft_logctx *c = user;
    int w = snprintf(c->log + c->len, sizeof c->log - c->len, "[%d] %s\n", level, msg);
    if (w > 0)
        c->len = c->len + (size_t)w < sizeof c->log ? c->len + (size_t)w : sizeof c->log - 1;
}

int kft_logctx_new(kft_logctx *c, const char *cache_dir, int threads, int no_cache)
{
    memset(c, 0, sizeof *c);
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    o.verbose = KF_LOG_INFO;
    o.log = on_log;
    o.log_user = c;
    o.cache_dir = cache_dir;
    o.no_cache = no_cache;
    c->ctx = kf_new(&o);
    return c->ctx ? 0 : -1;
}

void kft_logctx_free(kft_logctx *c)
{
    kf_free(c->ctx);
    c->ctx = NULL;
}

kft_env kft_env_set(const char *name, const char *value)
{
    const char *old = getenv(name);
    kft_env e = {name, old ? strdup(old) : NULL, old != NULL};
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return e;
}

void kft_env_restore(kft_env e)
{
    if (e.had && e.old)
        setenv(e.name, e.old, 1);
    else
        unsetenv(e.name);
    free(e.old);
}

kf_kernel *kft_compile_jit(kf_ctx *ctx, const kft_spec *s, kf_jit jit)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.k = s->k;
    o.formula2 = s->formula2;
    o.sum_scheme = s->scheme;
    o.jit = jit;
    kf_kernel *k = kf_compile(ctx, s->formula, s->aliases, s->naliases, s->reduction, s->axis,
                              s->dtype, &o);
    if (!k)
        fprintf(stderr, "  compile (jit %d) of %s / %s failed: %s\n", (int)jit, s->formula,
                s->reduction, kf_errmsg(ctx));
    return k;
}

int kft_vs_reference(const kft_spec *s, kf_kernel *k, int64_t M, int64_t N, double lo, double hi,
                     int grid, uint64_t seed)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    kf_ctx *rctx = kf_new(&o);
    kf_kernel *ref = rctx ? kft_compile_jit(rctx, s, KF_JIT_REFERENCE) : NULL;
    kft_data d;
    int bad = -1;
    if (ref && kft_data_make(&d, ref, M, N, lo, hi, grid, seed) == 0) {
        bad = kft_compare(s, k, ref, M, N, &d);
        kft_data_free(&d);
    }
    kf_kernel_free(ref);
    kf_free(rctx);
    return bad;
}

static const char *const GAUSS_AL[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"};

void kft_gauss_spec(kft_spec *s, char *formula, size_t cap, int c, kf_dtype dtype)
{
    snprintf(formula, cap, "Exp(-SqDist(x,y)*RatCst(1,%d))*b", c);
    kft_spec t = {formula, GAUSS_AL, 3, "Sum", 1, dtype, 0, NULL, KF_SUM_AUTO};
    *s = t;
}

pid_t kft_spawn_self(const char *task, const char *const *env, int *fd)
{
    /* The child's environment: ours, then KFT_CHILD and the extras. */
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **envp = calloc(n + extra + 2, sizeof *envp);
    char *child = malloc(strlen(task) + 16);
    int fds[2];
    if (!envp || !child || pipe(fds) != 0) {
        free(envp);
        free(child);
        return -1;
    }
    sprintf(child, "KFT_CHILD=%s", task);
    size_t k = 0;
    for (size_t q = 0; q < n; q++) {
        int overridden = !strncmp(environ[q], "KFT_CHILD=", 10);
        for (size_t e = 0; env && e < extra && !overridden; e++) {
            size_t len = strcspn(env[e], "=") + 1;
            overridden = !strncmp(environ[q], env[e], len);
        }
        if (!overridden)
            envp[k++] = environ[q];
    }
    for (size_t e = 0; e < extra; e++)
        envp[k++] = (char *)env[e];
    envp[k++] = child;
    envp[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {"kforge-tests", "--child", NULL};
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    pid_t pid;
    int rc = ENOENT;
    if (sl > 0) {
        self[sl] = 0;
        rc = posix_spawn(&pid, self, &fa, NULL, argv, envp);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    free(envp);
    free(child);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    *fd = fds[0];
    return pid;
}

int kft_wait_child(pid_t pid, int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t got;
    char sink[256];
    while ((got = read(fd, len + 1 < cap ? buf + len : sink,
                       len + 1 < cap ? cap - 1 - len : sizeof sink)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0 && len + 1 < cap)
            len += (size_t)got;
    buf[len] = 0;
    close(fd);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
