/*
 * cache.c -- the kernel cache: where it is and whether it can be trusted, the
 * key, loading an entry (verified before anything of it runs), storing one
 * (atomically, whatever other processes do), and the in-process table of
 * loaded objects. docs/cache.md is the user's description of all this.
 *
 *   DIR/KEY/meta        text: key, tier, formula, reduction, created, the
 *                       object's size and SHA-256 (written last: it vouches
 *                       for kernel.so, kernel.cubin or kernel.ptx)
 *   DIR/KEY/kernel.so   the object (tier cc); carries `kf_cache_key`
 *   DIR/KEY/kernel.c    the generated source, for debugging
 *   DIR/KEY/kernel.cubin or kernel.ptx   the GPU image (tier cuda; the meta
 *                       also names the arch and NVRTC version), and
 *   DIR/KEY/kernel.cu   its CUDA source, for debugging
 *   DIR/tmp-XXXXXX/     a build in progress, renamed to DIR/KEY when complete
 *   DIR/trash-*         an entry being removed
 */
#define _GNU_SOURCE /* mkdtemp, O_NOFOLLOW, utimensat */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compiler/emit/skel.h"
#include "runtime/cache/cache.h"

/* snprintf for paths and messages whose length was bounded earlier (the
 * directory's length is checked once in cache_path); a longer result is
 * cut, which at worst fails the open that follows. */
static void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

/* ---- trust: who may have written a file we are about to run ---- */

/* Ours or root's (root can replace our binaries anyway, so a team cache
 * installed by an administrator is as trusted as the library itself), and
 * writable by nobody else. */
static int trusted_owner(const struct stat *st)
{
    return st->st_uid == geteuid() || st->st_uid == 0;
}

/* Copies s for a message: printable ASCII, the rest as \xHH, at most cap-1. */
static const char *printable(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
    }
    buf[n] = 0;
    return buf;
}

/* Why st (of the file or directory named) cannot be trusted, or NULL. */
static const char *distrust(const struct stat *st, char *why, size_t cap)
{
    if (!trusted_owner(st))
        snprintf(why, cap, "it is owned by uid %u, not by you (uid %u)", (unsigned)st->st_uid,
                 (unsigned)geteuid());
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
        snprintf(why, cap, "it is %s-writable (mode %04o)",
                 (st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "group- and other"
                 : (st->st_mode & S_IWGRP)                          ? "group"
                                                                    : "other",
                 (unsigned)(st->st_mode & 07777));
    else
        return NULL;
    return why;
}

/* ---- the directory ---- */

/* mkdir -p; every directory it creates is 0700. 0 or -1 (errno). */
static int mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The directory the options and environment name, absolute; 0 or -1 (why set). */
static int cache_path(const kf_options *opt, kfr_cache *c)
{
    const char *env = getenv("KFORGE_CACHE");
    if (opt->no_cache) {
        snprintf(c->why, sizeof c->why, "the disk cache is disabled (kf_options.no_cache)");
        return -1;
    }
    if (env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)) {
        snprintf(c->why, sizeof c->why, "the disk cache is disabled (KFORGE_CACHE=%s)", env);
        return -1;
    }
    char base[PATH_MAX];
    const char *v;
    int n;
    if (opt->cache_dir && *opt->cache_dir)
        n = snprintf(base, sizeof base, "%s", opt->cache_dir);
    else if ((v = getenv("KFORGE_CACHE_DIR")) && *v)
        n = snprintf(base, sizeof base, "%s", v);
    /* The XDG spec says a relative $XDG_CACHE_HOME is invalid and ignored. */
    else if ((v = getenv("XDG_CACHE_HOME")) && *v == '/')
        n = snprintf(base, sizeof base, "%s/kforge", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(base, sizeof base, "%s/.cache/kforge", v);
    else {
        snprintf(c->why, sizeof c->why,
                 "no cache directory: none of KFORGE_CACHE_DIR, XDG_CACHE_HOME, HOME is set");
        return -1;
    }
    if (n > 0 && base[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            snprintf(c->why, sizeof c->why, "the cache directory is relative and the current "
                                            "directory is unknown");
            return -1;
        }
        n = snprintf(c->dir, sizeof c->dir, "%s/%s", cwd, base);
    } else {
        n = snprintf(c->dir, sizeof c->dir, "%s", base);
    }
    /* Room for "/KEY/kernel.so" and the temporary names under it. */
    if (n < 0 || (size_t)n + KFR_HEX_LEN + 32 >= sizeof c->dir) {
        c->dir[0] = 0;
        snprintf(c->why, sizeof c->why, "the cache directory's path is too long");
        return -1;
    }
    while (n > 1 && c->dir[n - 1] == '/')
        c->dir[--n] = 0;
    return 0;
}

/* For a directory that does not exist: can its nearest existing ancestor take it? */
static int creatable(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash)
            return 0;
        if (slash == p)
            slash[1] = 0;
        else
            *slash = 0;
        struct stat st;
        if (stat(p, &st) == 0)
            return S_ISDIR(st.st_mode) && access(p, W_OK | X_OK) == 0;
        if (errno != ENOENT || slash == p)
            return 0;
    }
}

void kfr_cache_locate(const kf_options *opt, kfr_cache *c, int create)
{
    memset(c, 0, sizeof *c);
    c->mode = -1;
    const char *t = getenv("TMPDIR");
    snprintf(c->tmp, sizeof c->tmp, "%s", t && t[0] == '/' && strlen(t) < 512 ? t : "/tmp");
    if (cache_path(opt, c) != 0)
        return;
    char q[300], why[160];
    printable(c->dir, q, sizeof q);
    struct stat st;
    if (stat(c->dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(c->why, sizeof c->why, "cache directory %s: %s", q, strerror(errno));
            return;
        }
        if (!create) {
            /* Not there yet: the first build creates it. */
            if (creatable(c->dir))
                c->mode = 1;
            else
                snprintf(c->why, sizeof c->why, "cache directory %s does not exist and cannot "
                                                "be created", q);
            return;
        }
        if (mkdir_p(c->dir) != 0 || stat(c->dir, &st) != 0) {
            snprintf(c->why, sizeof c->why, "cannot create cache directory %s: %s", q,
                     strerror(errno));
            return;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(c->why, sizeof c->why, "cache directory %s is not a directory", q);
        return;
    }
    if (distrust(&st, why, sizeof why)) {
        c->refused = 1;
        fmt(c->why, sizeof c->why,
                 "refusing cache directory %s: %s, and loading code from it would run what "
                 "someone else put there (chmod go-w it, or set KFORGE_CACHE_DIR to a directory "
                 "of your own)",
                 q, why);
        return;
    }
    /* access() alone would call every directory writable for root; the
     * owner's write bit is the owner's decision, and we honour it. */
    if (st.st_uid == geteuid() && (st.st_mode & S_IWUSR) && access(c->dir, W_OK | X_OK) == 0) {
        c->mode = 1;
        return;
    }
    c->mode = 0;
    snprintf(c->why, sizeof c->why,
             "cache directory %s is read-only (mode %04o, owner uid %u): cached kernels are "
             "loaded, new ones are built in a private temporary directory",
             q, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
}

/* ---- the in-process table ----
 * Process-wide by nature: its point is that two contexts (or two kernels)
 * of the same formula share one loaded object. A mutex guards it; an object
 * is unloaded (dlclose) when its last kernel is freed, so a long-running
 * program that compiles many formulas does not keep them all mapped. */
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

/* ---- key and metadata ---- */

/* The kernel's part of a key: the reduction and the canonical formulas. */
static void key_kernel(kfc_buf *b, const kf_kernel *k)
{
    const kfc_red *r = &k->red;
    kfc_buf_printf(b, "reduction %s id=%d axis=%d dtype=%s scheme=%s K=%d D=%d E=%d valdim=%lld "
                      "idxdim=%lld\n",
                   kfc_red_info[r->id].name, r->id, r->axis, kf_dtype_name(r->dtype),
                   kf_sum_scheme_name(r->sum_scheme), r->K, (int)r->D, (int)r->E, (long long)r->valdim,
                   (long long)r->idxdim);
    kfc_buf_printf(b, "formula %s\nformula2 %s\n", k->canon, k->canon2 ? k->canon2 : "-");
}

int kfr_cache_key(const kf_kernel *k, const kfr_cc *cc, char key[KFR_HEX_LEN + 1])
{
    char cpu[512];
    kfr_cpu_features(cpu, sizeof cpu);
    kfc_buf b = {0};
    /* Everything the object's behaviour depends on, one field per line: a
     * change in any of them must give another object. */
    kfc_buf_printf(&b, "kforge cache key 1\ncodegen %d\nemitter %s\ntier cc\n",
                   KFC_CODEGEN_VERSION, KFR_OPT_EMITTER_NAME);
    key_kernel(&b, k);
    kfc_buf_printf(&b, "cc %s size=%lld mtime_ns=%lld\ncc-words", cc->real, (long long)cc->size,
                   (long long)cc->mtime_ns);
    const char *w = cc->words;
    for (int q = 0; q < cc->nwords; q++, w += strlen(w) + 1)
        if (q > 0)
            kfc_buf_printf(&b, " %s", w);
    kfc_buf_printf(&b, "\nflags %s\ncpu %s\n", kfr_cc_flags(), cpu);
    int rc = b.oom ? KF_ERR_NOMEM : kfr_sha256_hex(b.s, b.len, key) == 0 ? KF_OK : KF_ERR_INTERNAL;
    free(b.s);
    return rc;
}

/* arch and the NVRTC version go into meta lines: anything but a short
 * word of [A-Za-z0-9_.] is replaced, so that no value can add a line. */
static const char *word(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.';
        buf[n++] = ok ? c : '_';
    }
    if (!n)
        buf[n++] = '-';
    buf[n] = 0;
    return buf;
}

int kfr_cache_key_cuda(const kf_kernel *k, const char *src, const char *arch,
                       const char *nvrtc_version, char key[KFR_HEX_LEN + 1])
{
    char a[32], v[32], ssha[KFR_HEX_LEN + 1] = "-";
    if (src && kfr_sha256_hex(src, strlen(src), ssha) != 0)
        return KF_ERR_INTERNAL;
    kfc_buf b = {0};
    /* As for cc: everything the image depends on. The arch is the one the
     * image is compiled for (sm_NN: CUBIN, compute_NN: PTX), so a CUBIN and
     * a PTX of one kernel have different keys. */
    kfc_buf_printf(&b, "kforge cache key 1\ncodegen %d\nemitter cuda\ntier cuda\n",
                   KFC_CODEGEN_VERSION);
    key_kernel(&b, k);
    word(arch, a, sizeof a);
    kfc_buf_printf(&b, "arch %s\nnvrtc %s\nnvrtc-options --gpu-architecture=%s %s\nsource %s\n", a,
                   word(nvrtc_version, v, sizeof v), a, kfr_nvrtc_flags(), ssha);
    int rc = b.oom ? KF_ERR_NOMEM : kfr_sha256_hex(b.s, b.len, key) == 0 ? KF_OK : KF_ERR_INTERNAL;
    free(b.s);
    return rc;
}

/* The reduction as entries show it: "Sum axis=1 float32", "KMin K=10 axis=0 float64". */
static void red_line(const kf_kernel *k, char *buf, size_t cap)
{
    const kfc_red *r = &k->red;
    char kk[32] = "";
    if (kfc_red_info[r->id].needs_k)
        snprintf(kk, sizeof kk, " K=%d", r->K);
    snprintf(buf, cap, "%s%s axis=%d %s", kfc_red_info[r->id].name, kk, r->axis,
             kf_dtype_name(r->dtype));
}

char *kfr_cache_meta(const kf_kernel *k, const char *key)
{
    char red[128];
    red_line(k, red, sizeof red);
    kfc_buf b = {0};
    kfc_buf_printf(&b, "kforge-cache 1\nkey %s\ntier cc\nreduction %s\nformula %s%s%s\n"
                       "created %lld\n",
                   key, red, k->canon, k->canon2 ? ";" : "", k->canon2 ? k->canon2 : "",
                   (long long)time(NULL));
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

char *kfr_cache_meta_cuda(const kf_kernel *k, const char *key, const char *arch,
                          const char *nvrtc_version)
{
    char red[128], a[32], v[32];
    red_line(k, red, sizeof red);
    kfc_buf b = {0};
    kfc_buf_printf(&b, "kforge-cache 1\nkey %s\ntier cuda\narch %s\nnvrtc %s\nreduction %s\n"
                       "formula %s%s%s\ncreated %lld\n",
                   key, word(arch, a, sizeof a), word(nvrtc_version, v, sizeof v), red, k->canon,
                   k->canon2 ? ";" : "", k->canon2 ? k->canon2 : "", (long long)time(NULL));
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* The short fields of a meta file; long lines (the formula) are skipped, so
 * this reads any meta with a fixed buffer and no heap. A cc entry vouches
 * for kernel.so with so_size/so_sha256; a cuda entry names its image file
 * (image) and vouches for it with image_size/image_sha256. */
typedef struct meta_fields {
    char key[KFR_HEX_LEN + 1], sha[KFR_HEX_LEN + 1], tier[16];
    char arch[32], image[16], image_sha[KFR_HEX_LEN + 1];
    int64_t so_size, image_size, created;
    int header;
} meta_fields;

/* The files a cuda entry's image may be. */
static int image_name_ok(const char *f)
{
    return f && (strcmp(f, "kernel.cubin") == 0 || strcmp(f, "kernel.ptx") == 0);
}

/* A key names a directory: it must be the hex we compute, nothing else. */
static int key_ok(const char *key)
{
    return key && strspn(key, "0123456789abcdef") == KFR_HEX_LEN && !key[KFR_HEX_LEN];
}

static void meta_field(meta_fields *m, const char *line)
{
    if (strcmp(line, "kforge-cache 1") == 0)
        m->header = 1;
    else if (strncmp(line, "key ", 4) == 0 && strlen(line + 4) == KFR_HEX_LEN)
        memcpy(m->key, line + 4, KFR_HEX_LEN + 1);
    else if (strncmp(line, "so_sha256 ", 10) == 0 && strlen(line + 10) == KFR_HEX_LEN)
        memcpy(m->sha, line + 10, KFR_HEX_LEN + 1);
    else if (strncmp(line, "tier ", 5) == 0)
        fmt(m->tier, sizeof m->tier, "%s", line + 5);
    else if (strncmp(line, "so_size ", 8) == 0)
        m->so_size = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "created ", 8) == 0)
        m->created = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "arch ", 5) == 0)
        fmt(m->arch, sizeof m->arch, "%s", line + 5);
    else if (strncmp(line, "image ", 6) == 0)
        fmt(m->image, sizeof m->image, "%s", line + 6);
    else if (strncmp(line, "image_size ", 11) == 0)
        m->image_size = strtoll(line + 11, NULL, 10);
    else if (strncmp(line, "image_sha256 ", 13) == 0 && strlen(line + 13) == KFR_HEX_LEN)
        memcpy(m->image_sha, line + 13, KFR_HEX_LEN + 1);
}

static int meta_scan(int fd, meta_fields *m)
{
    memset(m, 0, sizeof *m);
    m->so_size = -1;
    m->image_size = -1;
    char line[256], chunk[4096];
    size_t n = 0;
    int skipping = 0;
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t q = 0; q < got; q++) {
            char c = chunk[q];
            if (c == '\n') {
                line[n] = 0;
                if (!skipping)
                    meta_field(m, line);
                n = 0;
                skipping = 0;
            } else if (n + 1 < sizeof line) {
                line[n++] = c;
            } else {
                skipping = 1;
            }
        }
    }
    return got < 0 ? -1 : 0;
}

/* ---- removing ---- */

/* Removes a directory of plain files (an entry, a build, a trash). */
void kfr_cache_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

/* Takes an entry out of the cache: renamed first (atomic: no reader sees
 * half an entry), then deleted. 0 or -1. */
int kfr_cache_trash(const char *cachedir, const char *entry)
{
    static atomic_uint serial;
    char t[PATH_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fmt(t, sizeof t, "%s/trash-%ld-%u-%ld", cachedir, (long)getpid(),
             atomic_fetch_add(&serial, 1), (long)ts.tv_nsec);
    if (rename(entry, t) != 0)
        return -1;
    kfr_cache_remove_tree(t);
    return 0;
}

/* ---- loading ---- */

/* dlopen + the key check + the table. 0 with *out, or -1 with why. */
static int open_object(const char *path, const char *key, kfr_so **spare, kfr_so **out, char *why,
                       size_t cap, int keep_path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, cap, "dlopen failed: %s", e ? e : "unknown error");
        return -1;
    }
    const char *own = dlsym(h, "kf_cache_key");
    void *fn = dlsym(h, KFK_ENTRY);
    if (!own || strncmp(own, key, KFR_HEX_LEN + 1) != 0 || !fn) {
        snprintf(why, cap, "%s", !own ? "the object carries no key"
                                 : !fn ? "the object has no " KFK_ENTRY
                                       : "the object carries another key");
        dlclose(h);
        return -1;
    }
    kfr_so *node = *spare;
    if (!node) {
        snprintf(why, cap, "out of memory");
        dlclose(h);
        return -1;
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
    return 0;
}

/* Opens dir/name without following a link and checks it is a trusted
 * regular file. The fd, or -1 with why (and *untrusted for ownership). */
static int open_trusted(const char *dir, const char *name, struct stat *st, char *why, size_t cap,
                        int *untrusted)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, cap, "%s: %s", name, strerror(errno));
        return -1;
    }
    char w[160];
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(why, cap, "%s is not a regular file", name);
    } else if (distrust(st, w, sizeof w)) {
        snprintf(why, cap, "%s: %s", name, w);
        *untrusted = 1;
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* Reads exactly n bytes of fd into a malloc'd, NUL-terminated buffer.
 * 0 with *out; -1 when the file is shorter; -3 out of memory. */
static int read_image(int fd, int64_t n, char **out)
{
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return -3;
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, (size_t)(n - got), got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    if (got != n) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* The largest GPU image an entry may vouch for (a CUBIN is kilobytes to a
 * few megabytes); a meta claiming more is invalid rather than a huge malloc. */
#define KFR_MAX_IMAGE ((int64_t)256 << 20)

/* Checks the entry directory against key: trust (directory, meta, object),
 * the meta names key and a known tier, the object has the meta's size and
 * SHA-256. want, if not NULL, is the object the caller needs ("kernel.so",
 * "kernel.cubin", "kernel.ptx"): an entry holding another is invalid. With
 * img, the object is read into memory (*img malloc'd, NUL-terminated, *len)
 * and the hash is taken over those bytes, so what is returned is exactly
 * what was verified. 0; -1 with why (*untrusted set for ownership or
 * permissions); -3 out of memory (says nothing about the entry). */
static int verify_entry(const char *entry, const char *key, const char *want, meta_fields *m,
                        char **img, size_t *len, char *why, size_t cap, int *untrusted)
{
    struct stat st;
    char w[160];
    if (lstat(entry, &st) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "not a directory");
        return -1;
    }
    if (distrust(&st, w, sizeof w)) {
        snprintf(why, cap, "%s", w);
        *untrusted = 1;
        return -1;
    }
    int fd = open_trusted(entry, "meta", &st, why, cap, untrusted);
    if (fd < 0)
        return -1;
    int rc = meta_scan(fd, m);
    close(fd);
    int cc = strcmp(m->tier, "cc") == 0 && m->sha[0] && m->so_size >= 0;
    int cuda = strcmp(m->tier, "cuda") == 0 && m->arch[0] && image_name_ok(m->image) &&
               m->image_sha[0] && m->image_size >= 0;
    if (rc != 0 || !m->header || strcmp(m->key, key) != 0 || !(cc || cuda)) {
        snprintf(why, cap, "its metadata is incomplete or names another key");
        return -1;
    }
    const char *name = cc ? "kernel.so" : m->image, *sha = cc ? m->sha : m->image_sha;
    int64_t want_size = cc ? m->so_size : m->image_size;
    if (want && strcmp(want, name) != 0) {
        snprintf(why, cap, "it holds %s (tier %s), not %s", name, m->tier, want);
        return -1;
    }
    /* The object's bytes must be the ones the metadata vouches for: this
     * catches truncation and alteration BEFORE anything uses them. */
    fd = open_trusted(entry, name, &st, why, cap, untrusted);
    if (fd < 0)
        return -1;
    char got[KFR_HEX_LEN + 1] = "";
    int64_t size = -1;
    if (!img) {
        rc = kfr_sha256_fd(fd, got, &size);
    } else {
        char *buf = NULL;
        size = st.st_size;
        rc = size != want_size || size > KFR_MAX_IMAGE ? -1 : read_image(fd, size, &buf);
        if (rc == 0 && kfr_sha256_hex(buf, (size_t)size, got) != 0)
            rc = -1;
        if (rc == 0 && strcmp(got, sha) == 0) {
            *img = buf;
            *len = (size_t)size;
        } else {
            free(buf);
        }
    }
    close(fd);
    if (rc == -3) {
        snprintf(why, cap, "out of memory reading %s (%lld bytes)", name, (long long)want_size);
        return -3;
    }
    if (rc != 0 || size != want_size || strcmp(got, sha) != 0) {
        snprintf(why, cap, "%s (%lld bytes) does not match its metadata (%lld bytes, "
                           "sha256 %.12s...): truncated or altered",
                 name, (long long)size, (long long)want_size, sha);
        return -1;
    }
    return 0;
}

/* (cache.h) */
int kfr_cache_check_entry(const char *entry, const char *key, char *why, size_t cap, int *untrusted)
{
    meta_fields m;
    return verify_entry(entry, key, NULL, &m, NULL, NULL, why, cap, untrusted) == 0 ? 0 : -1;
}

/* The last use, for `kforge cache clear --older-than`: the meta's mtime. */
static void touch_last_use(const kfr_cache *c, const char *entry)
{
    if (c->mode == 1) {
        char meta[PATH_MAX];
        fmt(meta, sizeof meta, "%s/meta", entry);
        utimensat(AT_FDCWD, meta, NULL, 0);
    }
}

/* An entry that failed its checks (w says why): removed when c is writable.
 * The load's return value (-1 invalid, -2 untrusted), why filled. */
static int load_failed(const kfr_cache *c, const char *entry, int untrusted, const char *w,
                       char *why, size_t cap)
{
    char q[300];
    int removed = c->mode == 1 && kfr_cache_trash(c->dir, entry) == 0;
    snprintf(why, cap, "%s cache entry %s: %s; %s", untrusted ? "refusing" : "invalid",
             printable(entry, q, sizeof q), w,
             removed ? "removed it, rebuilding" : "not loading it, compiling anew");
    return untrusted ? -2 : -1;
}

int kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out, char *why,
                   size_t cap)
{
    *out = NULL;
    if (c->mode < 0)
        return 0;
    char entry[PATH_MAX], obj[PATH_MAX];
    fmt(entry, sizeof entry, "%s/%s", c->dir, key);
    fmt(obj, sizeof obj, "%s/kernel.so", entry);
    struct stat st;
    if (lstat(entry, &st) != 0 && errno == ENOENT)
        return 0;
    int untrusted = 0;
    char w[400];
    meta_fields m;
    int rc = verify_entry(entry, key, "kernel.so", &m, NULL, NULL, w, sizeof w, &untrusted);
    if (rc == 0)
        rc = open_object(obj, key, spare, out, w, sizeof w, 1);
    if (rc == 0) {
        touch_last_use(c, entry);
        return 1;
    }
    return load_failed(c, entry, untrusted, w, why, cap);
}

int kfr_cache_load_blob(const kfr_cache *c, const char *key, const char *fname, char **img,
                        size_t *len, char *why, size_t cap)
{
    *img = NULL;
    *len = 0;
    if (c->mode < 0)
        return 0;
    if (!key_ok(key) || !image_name_ok(fname)) {
        snprintf(why, cap, "kfr_cache_load_blob: bad key or file name (kernel.cubin or kernel.ptx)");
        return -1;
    }
    char entry[PATH_MAX];
    fmt(entry, sizeof entry, "%s/%s", c->dir, key);
    struct stat st;
    if (lstat(entry, &st) != 0 && errno == ENOENT)
        return 0;
    int untrusted = 0;
    char w[400], q[300];
    meta_fields m;
    int rc = verify_entry(entry, key, fname, &m, img, len, w, sizeof w, &untrusted);
    if (rc == 0) {
        touch_last_use(c, entry);
        return 1;
    }
    if (rc == -3) {
        /* Our memory, not the entry, failed: it stays. */
        snprintf(why, cap, "cache entry %s: %s; not loading it", printable(entry, q, sizeof q), w);
        return -1;
    }
    return load_failed(c, entry, untrusted, w, why, cap);
}

/* ---- building ---- */

static int write_all(int fd, const void *data, size_t n)
{
    const char *s = data;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes dir/name from n pieces of bytes, fsync'd. 0 or -1. */
typedef struct piece {
    const void *p;
    size_t n;
} piece;

static int write_pieces(const char *dir, const char *name, const piece *v, int n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    int rc = 0;
    for (int k = 0; k < n && !rc; k++)
        rc = write_all(fd, v[k].p, v[k].n);
    if (!rc)
        rc = fsync(fd);
    return close(fd) != 0 || rc != 0 ? -1 : 0;
}

/* Writes dir/name from up to three strings (b and c may be NULL), fsync'd. 0 or -1. */
static int write_file(const char *dir, const char *name, const char *a, const char *b,
                      const char *c)
{
    piece v[3] = {{a, strlen(a)}, {b, b ? strlen(b) : 0}, {c, c ? strlen(c) : 0}};
    return write_pieces(dir, name, v, 3);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A private build directory for an unwritable cache, under c->tmp. The key
 * is in its name so that no two different objects are ever dlopen'ed under
 * one path (glibc would hand back the first by name). */
static int private_dir(const kfr_cache *c, const char *key, char *out, size_t cap)
{
    fmt(out, cap, "%s/kforge-%.16s-XXXXXX", c->tmp, key);
    return mkdtemp(out) ? 0 : -1;
}

int kfr_cache_build(const kfr_cache *c, const kfr_cc *cc, const char *key, const char *src,
                    const char *meta, const atomic_int *cancel, kfr_so **spare, kfr_so **out,
                    int *stored, char *err, size_t cap)
{
    *out = NULL;
    *stored = 0;
    char tmp[PATH_MAX], path[PATH_MAX], obj[PATH_MAX];
    int shared = c->mode == 1;
    if (shared) {
        fmt(tmp, sizeof tmp, "%s/tmp-XXXXXX", c->dir);
        if (!mkdtemp(tmp))
            shared = 0; /* full disk, a vanished directory: build privately */
        else
            chmod(tmp, 0755); /* the entry it becomes: readable where the cache is */
    }
    if (!shared && private_dir(c, key, tmp, sizeof tmp) != 0) {
        snprintf(err, cap, "cannot create a temporary build directory: %s", strerror(errno));
        return KF_ERR_IO;
    }
    /* The key is hex we computed, never user text. */
    char tail[KFR_HEX_LEN + 128];
    snprintf(tail, sizeof tail,
             "\n/* The cache key, checked after dlopen (docs/cache.md). */\n"
             "const char kf_cache_key[] = \"%s\";\n",
             key);
    fmt(path, sizeof path, "%s/kernel.c", tmp);
    fmt(obj, sizeof obj, "%s/kernel.so", tmp);
    if (write_file(tmp, "kernel.c", src, tail, NULL) != 0) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        kfr_cache_remove_tree(tmp);
        return KF_ERR_IO;
    }
    int rc = kfr_cc_run(cc, path, obj, cancel, err, cap);
    if (rc != KF_OK) {
        kfr_cache_remove_tree(tmp);
        return rc;
    }
    /* The linker creates the object with the umask's mode; a group-writable
     * umask must not make our own entry untrusted. */
    chmod(obj, 0644);
    char sha[KFR_HEX_LEN + 1], sums[KFR_HEX_LEN + 64];
    int64_t size = -1;
    int fd = open(obj, O_RDONLY | O_CLOEXEC);
    int hashed = fd >= 0 && fsync(fd) == 0 && kfr_sha256_fd(fd, sha, &size) == 0;
    if (fd >= 0)
        close(fd);
    snprintf(sums, sizeof sums, "so_size %lld\nso_sha256 %s\n", (long long)size, sha);
    if (!hashed || write_file(tmp, "meta", meta, sums, NULL) != 0) {
        snprintf(err, cap, "cannot hash %s or write its metadata: %s", obj, strerror(errno));
        kfr_cache_remove_tree(tmp);
        return KF_ERR_IO;
    }

    char why[600];
    if (shared) {
        /* The whole entry appears at once, or not at all: rename of a
         * directory onto an existing (non-empty) one fails, so the first
         * complete build wins and later ones use it. */
        char entry[PATH_MAX];
        fmt(entry, sizeof entry, "%s/%s", c->dir, key);
        int renamed = 0;
        for (int attempt = 0; attempt < 3 && !renamed; attempt++) {
            if (rename(tmp, entry) == 0) {
                renamed = 1;
                fsync_dir(c->dir);
                break;
            }
            if (errno != EEXIST && errno != ENOTEMPTY)
                break;
            /* Someone else's entry: use it if valid; an invalid one is
             * removed by the load, and the rename is tried again. */
            if (kfr_cache_load(c, key, spare, out, why, sizeof why) == 1) {
                kfr_cache_remove_tree(tmp);
                *stored = 1;
                return KF_OK;
            }
        }
        if (renamed) {
            /* Loaded from its final place, through the same checks as any hit. */
            if (kfr_cache_load(c, key, spare, out, why, sizeof why) == 1) {
                *stored = 1;
                return KF_OK;
            }
            snprintf(err, cap, "the optimized object just stored does not load: %s", why);
            return KF_ERR_JIT;
        }
    }
    /* Private (or the shared store failed): load from the build directory,
     * then delete it; the mapping outlives the file. */
    rc = open_object(obj, key, spare, out, why, sizeof why, 0);
    kfr_cache_remove_tree(tmp);
    if (rc != 0) {
        snprintf(err, cap, "the optimized object does not load: %s", why);
        return KF_ERR_JIT;
    }
    return KF_OK;
}

/* ---- storing a GPU image ---- */

int kfr_cache_store_blob(const kfr_cache *c, const char *key, const char *fname, const void *img,
                         size_t len, const char *src, const char *meta, int *stored, char *err,
                         size_t cap)
{
    *stored = 0;
    if (cap)
        err[0] = 0;
    if (!key_ok(key) || !image_name_ok(fname) || !meta || (!img && len)) {
        snprintf(err, cap, "kfr_cache_store_blob: bad key, file name (kernel.cubin or kernel.ptx), "
                           "image or meta");
        return KF_ERR_ARG;
    }
    if (c->mode != 1)
        return KF_OK; /* read-only or no cache: the caller keeps its image */
    char tmp[PATH_MAX], entry[PATH_MAX];
    fmt(tmp, sizeof tmp, "%s/tmp-XXXXXX", c->dir);
    int made = mkdtemp(tmp) != NULL;
    if (!made && errno == ENOENT && mkdir_p(c->dir) == 0) {
        /* A writable cache may not exist yet (kfr_cache_locate without create). */
        fmt(tmp, sizeof tmp, "%s/tmp-XXXXXX", c->dir);
        made = mkdtemp(tmp) != NULL;
    }
    if (!made) {
        snprintf(err, cap, "cannot create a build directory in the cache: %s", strerror(errno));
        return KF_ERR_IO;
    }
    chmod(tmp, 0755); /* the entry it becomes: readable where the cache is */
    /* The source first and the meta last, as for kernel.so: the meta
     * vouches for the image, so an entry with a meta is complete. */
    char sha[KFR_HEX_LEN + 1], sums[KFR_HEX_LEN + 96];
    piece image = {img, len};
    int rc = src ? write_file(tmp, "kernel.cu", src, NULL, NULL) : 0;
    if (rc == 0)
        rc = write_pieces(tmp, fname, &image, 1);
    if (rc == 0 && kfr_sha256_hex(len ? img : "", len, sha) != 0) {
        errno = EIO;
        rc = -1;
    }
    if (rc == 0) {
        snprintf(sums, sizeof sums, "image %s\nimage_size %llu\nimage_sha256 %s\n", fname,
                 (unsigned long long)len, sha);
        rc = write_file(tmp, "meta", meta, sums, NULL);
    }
    if (rc != 0) {
        snprintf(err, cap, "cannot write the cache entry's files in %s: %s", tmp, strerror(errno));
        kfr_cache_remove_tree(tmp);
        return KF_ERR_IO;
    }
    /* The whole entry appears at once or not at all; the first complete
     * entry wins (rename onto a non-empty directory fails). */
    fmt(entry, sizeof entry, "%s/%s", c->dir, key);
    char why[600] = "";
    for (int attempt = 0; attempt < 3; attempt++) {
        if (rename(tmp, entry) == 0) {
            fsync_dir(c->dir);
            *stored = 1;
            return KF_OK;
        }
        if (errno != EEXIST && errno != ENOTEMPTY) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            break;
        }
        /* Someone else's entry: keep it if it is valid and of this kind;
         * otherwise move it away and try again. */
        meta_fields m;
        int untrusted = 0;
        int v = verify_entry(entry, key, fname, &m, NULL, NULL, why, sizeof why, &untrusted);
        if (v == 0) {
            kfr_cache_remove_tree(tmp);
            *stored = 1;
            return KF_OK;
        }
        if (v == -3 || (kfr_cache_trash(c->dir, entry) != 0 && errno != ENOENT))
            break;
    }
    kfr_cache_remove_tree(tmp);
    char q[300];
    snprintf(err, cap, "cannot store cache entry %s: %s", printable(entry, q, sizeof q),
             why[0] ? why : "it kept changing");
    return KF_ERR_IO;
}
