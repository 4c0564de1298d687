/* t_cache.c -- the kernel cache: keys, hits across processes, concurrent builders, damaged
 * and untrusted entries, read-only directories, list and clear; then the GPU images (CUBIN,
 * PTX) stored beside the objects, and NVRTC producing them. Also keeps the whole test
 * binary off the user's ~/.cache (see private_cache). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache/cache.h"
#include "runtime/jit/jit.h" /* the keys, kfr_cc */
#include "runtime/cuda/cuda_api.h"
#include "cacheutil.h"
#include "harness.h"

/* ---- every test of this binary uses a private cache ----
 * kf_compile's default policy stores optimized kernels in the cache; tests
 * must never write the user's. Unless the caller chose a directory, one is
 * made under $TMPDIR for this process and removed at exit. */
static char private_dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void private_cache_remove(void)
{
    if (private_dir[0] && getpid() == (pid_t)strtol(private_dir + sizeof "/tmp/kft-" - 1, NULL, 10))
        nftw(private_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((constructor)) static void private_cache(void)
{
    const char *d = getenv("KFORGE_CACHE_DIR");
    if (d && *d)
        return;
    snprintf(private_dir, sizeof private_dir, "/tmp/kft-%ld-XXXXXX", (long)getpid());
    if (!mkdtemp(private_dir)) {
        private_dir[0] = 0;
        setenv("KFORGE_CACHE", "off", 1);
        return;
    }
    setenv("KFORGE_CACHE_DIR", private_dir, 1);
    atexit(private_cache_remove);
}

/* ---- the child side of the multi-process tests ----
 * KFT_CHILD="JIT C DTYPE": compile the Gaussian sum with bandwidth constant C
 * (kft_gauss_spec) for engine JIT (cc or auto; auto waits for its build),
 * check it against the reference and print one line:
 *   cache=N total_ms=T engine=E ok=1 entry=PATH
 * Exit status 0 when the results are right. Runs before main and never
 * returns to it. */
static void child_main(const char *task)
{
    char jit[16] = "", f[128];
    int c = 0, dt = 0;
    if (sscanf(task, "%15s %d %d", jit, &c, &dt) != 3)
        _exit(90);
    kf_options o;
    kf_options_init(&o);
    o.threads = 2;
    kf_ctx *ctx = kf_new(&o);
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, c, dt ? KF_FLOAT64 : KF_FLOAT32);
    kf_kernel *k = ctx ? kft_compile_jit(ctx, &s, strcmp(jit, "cc") ? KF_JIT_AUTO : KF_JIT_CC)
                       : NULL;
    if (!k)
        _exit(91);
    kf_compile_stats st;
    kf_kernel_stats(k, &st);
    int waited = kf_kernel_wait(k);
    int bad = kft_vs_reference(&s, k, 50, 70, -1, 1, 0, 7);
    printf("cache=%d total_ms=%.3f engine=%s ok=%d wait=%d entry=%s\n", st.cache, st.total_s * 1e3,
           kf_kernel_engine(k), bad == 0, waited, st.cache_entry ? st.cache_entry : "-");
    fflush(stdout);
    kf_kernel_free(k);
    kf_free(ctx);
    _exit(bad == 0 && waited == KF_OK ? 0 : 92);
}

__attribute__((constructor)) static void child_dispatch(void)
{
    const char *task = getenv("KFT_CHILD");
    if (task)
        child_main(task);
}

/* ---- helpers of the parent side ---- */

/* Value of "name=" in a child's output line, or -1. */
static double out_num(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    return p ? atof(p + strlen(name)) : -1;
}

/* Runs one child task against cache dir and returns its exit status; its output in out. */
static int run_child(const char *dir, const char *task, char *out, size_t cap)
{
    char env[4200];
    snprintf(env, sizeof env, "KFORGE_CACHE_DIR=%s", dir);
    const char *envs[] = {env, NULL};
    int fd;
    pid_t pid = kft_spawn_self(task, envs, &fd);
    if (pid < 0)
        return -1;
    return kft_wait_child(pid, fd, out, cap);
}

/* Path of the only entry's file `name` in dir, into buf; 0 or -1. */
static int entry_file(const char *dir, const char *name, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d)))
        if (strlen(e->d_name) == 64 && strspn(e->d_name, "0123456789abcdef") == 64) {
            snprintf(buf, cap, "%s/%s/%s", dir, e->d_name, name);
            found = 0;
        }
    closedir(d);
    return found;
}

/* Compiles spec s with KF_JIT_CC on ctx, checks it, returns the cache outcome (-1 on failure). */
static int cc_outcome(kf_ctx *ctx, const kft_spec *s, char *entry, size_t cap)
{
    kf_kernel *k = kft_compile_jit(ctx, s, KF_JIT_CC);
    if (!k)
        return -1;
    kf_compile_stats st;
    int outcome = kf_kernel_stats(k, &st) == KF_OK ? st.cache : -1;
    if (entry)
        snprintf(entry, cap, "%s", st.cache_entry ? st.cache_entry : "");
    if (!KFT_CHECKF(strcmp(kf_kernel_engine(k), "cc") == 0, "engine %s", kf_kernel_engine(k)) ||
        !KFT_CHECK(kft_vs_reference(s, k, 40, 60, -1, 1, 0, 3) == 0))
        outcome = -1;
    kf_kernel_free(k);
    return outcome;
}

/* ---- tests ---- */

KFT_TEST(cache_hit_after_miss_across_processes)
{
    char *dir = kft_tmpdir("xproc");
    char out[1024];
    KFT_CHECK(dir != NULL);
    if (!dir)
        return;
    int rc = run_child(dir, "cc 3 0", out, sizeof out);
    KFT_CHECKF(rc == 0 && out_num(out, "cache=") == KF_CACHE_MISS, "rc %d: %s", rc, out);
    KFT_CHECKF(strstr(out, "engine=cc") && strstr(out, dir), "%s", out);
    KFT_CHECK(kft_count_entries(dir, NULL) == 1);
    rc = run_child(dir, "cc 3 0", out, sizeof out);
    KFT_CHECKF(rc == 0 && out_num(out, "cache=") == KF_CACHE_HIT, "rc %d: %s", rc, out);
    /* The target is 5 ms from kf_compile to a runnable kernel in a new
     * process; the bound here is wide for loaded machines and sanitizers. */
    KFT_CHECKF(out_num(out, "total_ms=") >= 0 && out_num(out, "total_ms=") < 50, "%s", out);
    /* auto finds the cc entry too, and float64 is another entry */
    rc = run_child(dir, "auto 3 0", out, sizeof out);
    KFT_CHECKF(rc == 0 && out_num(out, "cache=") == KF_CACHE_HIT && strstr(out, "engine=cc"),
               "rc %d: %s", rc, out);
    rc = run_child(dir, "auto 3 1", out, sizeof out);
    KFT_CHECKF(rc == 0 && out_num(out, "cache=") == KF_CACHE_MISS && strstr(out, "engine=cc"),
               "rc %d: %s", rc, out);
    KFT_CHECK(kft_count_entries(dir, NULL) == 2);
    kft_rmtree(dir);
}

KFT_TEST(cache_eight_processes_build_one_entry)
{
    enum { NPROC = 8 };
    char *dir = kft_tmpdir("eight");
    KFT_CHECK(dir != NULL);
    if (!dir)
        return;
    char env[4200];
    snprintf(env, sizeof env, "KFORGE_CACHE_DIR=%s", dir);
    const char *envs[] = {env, NULL};
    pid_t pid[NPROC];
    int fd[NPROC];
    for (int p = 0; p < NPROC; p++)
        pid[p] = kft_spawn_self("cc 5 0", envs, &fd[p]);
    int misses = 0;
    for (int p = 0; p < NPROC; p++) {
        char out[1024];
        int rc = pid[p] < 0 ? -1 : kft_wait_child(pid[p], fd[p], out, sizeof out);
        KFT_CHECKF(rc == 0, "process %d: status %d: %s", p, rc, pid[p] < 0 ? "not started" : out);
        misses += out_num(out, "cache=") == KF_CACHE_MISS;
    }
    KFT_CHECK(misses >= 1);
    int other = -1;
    KFT_CHECKF(kft_count_entries(dir, &other) == 1 && other == 0, "%d entries, %d others",
               kft_count_entries(dir, NULL), other);
    /* ... and it is valid: listed, and a new process loads it */
    char out[1024];
    int rc = run_child(dir, "cc 5 0", out, sizeof out);
    KFT_CHECKF(rc == 0 && out_num(out, "cache=") == KF_CACHE_HIT, "rc %d: %s", rc, out);
    kft_rmtree(dir);
}

/* Damages the only entry's kernel.so with how (0 truncate, 1 flip a byte),
 * then checks that the next compile rebuilds it and says so. */
static void damaged_entry_rebuilt(int how)
{
    char *dir = kft_tmpdir("damage");
    kft_logctx lc;
    char f[128], so[4400];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 11 + how, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(entry_file(dir, "kernel.so", so, sizeof so) == 0);
    struct stat st;
    KFT_CHECK(stat(so, &st) == 0 && st.st_size > 1000);
    if (how == 0) {
        KFT_CHECK(truncate(so, st.st_size / 2) == 0);
    } else {
        int fd = open(so, O_RDWR);
        unsigned char byte = 0;
        KFT_CHECK(fd >= 0 && pread(fd, &byte, 1, st.st_size / 2) == 1);
        byte ^= 0x5a;
        KFT_CHECK(pwrite(fd, &byte, 1, st.st_size / 2) == 1);
        close(fd);
    }
    lc.len = 0;
    lc.log[0] = 0;
    /* Not a hit (the table let go of it when the kernel was freed): rebuilt. */
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECKF(strstr(lc.log, "invalid cache entry") && strstr(lc.log, "truncated or altered"),
               "log: %s", lc.log);
    KFT_CHECK(kft_count_entries(dir, NULL) == 1);
    lc.len = 0;
    lc.log[0] = 0;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_HIT);
    KFT_CHECKF(!strstr(lc.log, "invalid"), "log: %s", lc.log);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

KFT_TEST(cache_truncated_object_is_rebuilt)
{
    damaged_entry_rebuilt(0);
}

KFT_TEST(cache_altered_object_is_rebuilt)
{
    damaged_entry_rebuilt(1);
}

/* An entry whose object and metadata agree but belong to another key (a
 * copied entry): dlopen works, the embedded key does not match. */
KFT_TEST(cache_entry_with_foreign_key_is_rebuilt)
{
    char *dir = kft_tmpdir("foreign");
    kft_logctx lc;
    char fa[128], fb[128], ea[4400], eb[4400];
    kft_spec a, b;
    kft_gauss_spec(&a, fa, sizeof fa, 21, KF_FLOAT32);
    kft_gauss_spec(&b, fb, sizeof fb, 22, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    KFT_CHECK(cc_outcome(lc.ctx, &a, ea, sizeof ea) == KF_CACHE_MISS);
    KFT_CHECK(cc_outcome(lc.ctx, &b, eb, sizeof eb) == KF_CACHE_MISS);
    /* copy a's object into b's entry and patch b's metadata to a's hash */
    char *ma = strdup(ea), *mb = strdup(eb);
    strcpy(strrchr(ma, '/'), "/meta");
    strcpy(strrchr(mb, '/'), "/meta");
    char *ta = kft_read_file(ma), *tb = kft_read_file(mb);
    KFT_CHECK(ta && tb);
    if (ta && tb) {
        char *sa = strstr(ta, "so_size "), *sb = strstr(tb, "so_size ");
        KFT_CHECK(sa && sb);
        if (sa && sb) {
            strcpy(sb, sa); /* the size and sha lines of a, after b's key */
            FILE *w = fopen(mb, "w");
            KFT_CHECK(w && fputs(tb, w) >= 0);
            if (w)
                fclose(w);
            char *obj = kft_read_file(ea);
            struct stat st;
            stat(ea, &st);
            FILE *o = fopen(eb, "w");
            KFT_CHECK(obj && o && fwrite(obj, 1, (size_t)st.st_size, o) == (size_t)st.st_size);
            if (o)
                fclose(o);
            free(obj);
        }
    }
    free(ta), free(tb), free(ma), free(mb);
    lc.len = 0;
    lc.log[0] = 0;
    KFT_CHECK(cc_outcome(lc.ctx, &b, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECKF(strstr(lc.log, "does not carry its key") && strstr(lc.log, "none of its code ran"),
               "log: %s", lc.log);
    KFT_CHECK(cc_outcome(lc.ctx, &b, NULL, 0) == KF_CACHE_HIT);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

/* Replaces the entry's kernel.so (path so) by the object built from the C
 * text code, and its meta's size and hash by the new object's: an entry
 * that passes every check of the store but the key. */
static int plant_object(const char *dir, const char *so, const char *code)
{
    char src[4400], cmd[9000];
    snprintf(src, sizeof src, "%s/planted.c", dir);
    FILE *w = fopen(src, "w");
    if (!w || fputs(code, w) < 0) {
        if (w)
            fclose(w);
        return -1;
    }
    fclose(w);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -o '%s' '%s'", so, src);
    if (system(cmd) != 0)
        return -1;
    struct stat st;
    char *obj = kft_read_file(so), hex[KFR_HEX_LEN + 1], meta[4400];
    if (!obj || stat(so, &st) != 0 || kfr_sha256_hex(obj, (size_t)st.st_size, hex) != KF_OK) {
        free(obj);
        return -1;
    }
    free(obj);
    snprintf(meta, sizeof meta, "%s", so);
    strcpy(strrchr(meta, '/'), "/meta");
    char *text = kft_read_file(meta), *cut = text ? strstr(text, "so_size ") : NULL;
    if (!cut) {
        free(text);
        return -1;
    }
    *cut = 0;
    w = fopen(meta, "w");
    int ok = w && fprintf(w, "%sso_size %lld\nso_sha256 %s\n", text, (long long)st.st_size, hex) > 0;
    if (w)
        fclose(w);
    free(text);
    return ok ? 0 : -1;
}

/* An object with a constructor, in an entry whose meta vouches for it (as
 * someone with write access to the cache could plant): its key is checked
 * in its bytes before dlopen, so the constructor never runs. The object
 * even exports kf_cache_key with the right value, which is all the check
 * after dlopen used to look at. */
KFT_TEST(cache_planted_constructor_never_runs)
{
    char *dir = kft_tmpdir("ctor");
    kft_logctx lc;
    char f[128], so[4400], marker[4400], code[6000];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 23, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    KFT_CHECK(cc_outcome(lc.ctx, &s, so, sizeof so) == KF_CACHE_MISS);
    char key[KFR_HEX_LEN + 1] = "";
    char *slash = strrchr(so, '/');
    if (KFT_CHECK(slash && slash - so > KFR_HEX_LEN))
        memcpy(key, slash - KFR_HEX_LEN, KFR_HEX_LEN);
    snprintf(marker, sizeof marker, "%s/constructor-ran", dir);
    snprintf(code, sizeof code,
             "#include <fcntl.h>\n#include <unistd.h>\n"
             "const char kf_cache_key[] = \"%s\";\n"
             "int kf_reduce(void) { return 0; }\n"
             "__attribute__((constructor)) static void planted(void)\n"
             "{ int fd = open(\"%s\", O_WRONLY | O_CREAT, 0600); if (fd >= 0) close(fd); }\n",
             key, marker);
    KFT_CHECK(plant_object(dir, so, code) == 0);
    lc.len = 0;
    lc.log[0] = 0;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECKF(strstr(lc.log, "does not carry its key"), "log: %s", lc.log);
    KFT_CHECK(access(marker, F_OK) != 0 && errno == ENOENT);
    /* the rebuilt entry is a hit again */
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_HIT);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

/* The directory is opened once and used through its descriptor: a cache
 * whose path is pointed elsewhere after kfr_cache_locate (a /tmp/kc swapped
 * by someone else) keeps reading and writing the directory that was checked. */
KFT_TEST(cache_path_swapped_after_locate)
{
    char *dir = kft_tmpdir("swap");
    if (!KFT_CHECK(dir))
        return;
    char a[4400], moved[4400], ghost[4500];
    snprintf(a, sizeof a, "%s/kc", dir);
    snprintf(moved, sizeof moved, "%s/kc-checked", dir);
    KFT_CHECK(mkdir(a, 0700) == 0);
    kf_options o;
    kf_options_init(&o);
    o.cache_dir = a;
    kfr_cache c;
    kfr_cache_locate(&o, &c, 0);
    KFT_CHECKF(c.mode == 1 && c.dfd >= 0, "mode %d: %s", c.mode, c.why);
    /* the path now names another directory, holding an entry of its own */
    KFT_CHECK(rename(a, moved) == 0 && mkdir(a, 0700) == 0);
    const char *key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    snprintf(ghost, sizeof ghost, "%s/%s", a, key);
    KFT_CHECK(mkdir(ghost, 0700) == 0);
    char *img = NULL, why[600], err[600];
    size_t len = 0;
    KFT_CHECK(kfr_entry_read(&c, key, "kernel.cubin", &img, &len, why, sizeof why) == KFR_ABSENT);
    /* and what is written lands in the checked directory */
    const char *meta = "kforge-cache 1\nkey 00112233445566778899aabbccddeeff00112233445566778899"
                       "aabbccddeeff\ntier cuda\narch sm_90\n";
    int stored = 0;
    KFT_CHECKF(kfr_cache_store_blob(&c, key, "kernel.cubin", "\x7f" "ELF", 4, NULL, meta, &stored,
                                    err, sizeof err) == KF_OK && stored == 1, "%s", err);
    KFT_CHECK(kft_count_entries(moved, NULL) == 1);
    char p[4600];
    snprintf(p, sizeof p, "%s/meta", ghost);
    KFT_CHECK(access(p, F_OK) != 0);
    KFT_CHECKF(kfr_entry_read(&c, key, "kernel.cubin", &img, &len, why, sizeof why) == KFR_FOUND &&
                   len == 4,
               "%s", why);
    free(img);
    kfr_cache_close(&c);
    kft_rmtree(dir);
}

/* A symbolic link as the cache directory is refused (whoever can change
 * the link would choose what is loaded), with a message that says so; the
 * kernel still compiles and runs, without the disk cache. */
KFT_TEST(cache_symlinked_dir_is_refused)
{
    char *dir = kft_tmpdir("link");
    if (!KFT_CHECK(dir))
        return;
    char real[4400], link[4400];
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    KFT_CHECK(mkdir(real, 0700) == 0 && symlink(real, link) == 0);
    kft_logctx lc;
    if (!KFT_CHECK(kft_logctx_new(&lc, link, 1, 0) == 0)) {
        kft_rmtree(dir);
        return;
    }
    const char *d = NULL;
    int mode = 9;
    KFT_CHECK(kf_cache_dir(lc.ctx, &d, &mode) == KF_OK && mode == -1);
    KFT_CHECKF(strstr(kf_errmsg(lc.ctx), "symbolic link") && strstr(kf_errmsg(lc.ctx), real),
               "%s", kf_errmsg(lc.ctx));
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 24, KF_FLOAT32);
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_DISABLED);
    KFT_CHECKF(strstr(lc.log, "[0] kforge cache: refusing cache directory"), "log: %s", lc.log);
    KFT_CHECK(kft_count_entries(real, NULL) == 0);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

/* The tag: a directory kforge made, or one holding only kforge's names, is
 * tagged and cleared; one with anything else in it (a home directory named
 * as the cache) is used, never tagged, and `clear` refuses to touch it; in a
 * tagged one, clear removes only names kforge gives. */
KFT_TEST(cache_clear_touches_only_kforge_things)
{
    char *dir = kft_tmpdir("tag");
    if (!KFT_CHECK(dir))
        return;
    char home[4400], p[4600];
    snprintf(home, sizeof home, "%s/home", dir);
    KFT_CHECK(mkdir(home, 0700) == 0);
    /* someone's files that look like kforge's leftovers, old */
    const char *theirs[] = {"trash-2019", "tmp-my-photos", "trash-1-2-3", "tmp-abcdef"};
    struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    for (int q = 0; q < 4; q++) {
        snprintf(p, sizeof p, "%s/%s", home, theirs[q]);
        KFT_CHECK(mkdir(p, 0700) == 0);
        snprintf(p, sizeof p, "%s/%s/keep.txt", home, theirs[q]);
        FILE *w = fopen(p, "w");
        KFT_CHECK(w && fputs("mine\n", w) >= 0);
        if (w)
            fclose(w);
        snprintf(p, sizeof p, "%s/%s", home, theirs[q]);
        KFT_CHECK(utimensat(AT_FDCWD, p, old, 0) == 0);
    }
    kft_logctx lc;
    if (!KFT_CHECK(kft_logctx_new(&lc, home, 1, 0) == 0)) {
        kft_rmtree(dir);
        return;
    }
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 25, KF_FLOAT32);
    /* used as a cache all the same (entries are stored and found) ... */
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_HIT);
    snprintf(p, sizeof p, "%s/CACHEDIR.TAG", home);
    KFT_CHECK(access(p, F_OK) != 0);
    /* ... but never cleared */
    int64_t removed = -1;
    KFT_CHECK(kf_cache_clear(lc.ctx, -1, &removed) == KF_ERR_IO && removed == 0);
    KFT_CHECKF(strstr(kf_errmsg(lc.ctx), "not a kforge cache") &&
                   strstr(kf_errmsg(lc.ctx), "nothing removed"),
               "%s", kf_errmsg(lc.ctx));
    for (int q = 0; q < 4; q++) {
        snprintf(p, sizeof p, "%s/%s/keep.txt", home, theirs[q]);
        KFT_CHECKF(access(p, F_OK) == 0, "%s was removed", p);
    }
    KFT_CHECK(kft_count_entries(home, NULL) == 1);
    kft_logctx_free(&lc);
    /* a directory kforge makes is tagged; clear there removes entries and
     * kforge's leftovers, and leaves other names alone */
    char made[4400];
    snprintf(made, sizeof made, "%s/made/cache", dir);
    if (!KFT_CHECK(kft_logctx_new(&lc, made, 1, 0) == 0)) {
        kft_rmtree(dir);
        return;
    }
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    snprintf(p, sizeof p, "%s/CACHEDIR.TAG", made);
    char *tag = kft_read_file(p);
    KFT_CHECKF(tag && !strncmp(tag, "Signature: 8a477f597d28d172789f06886806bc55\n", 44), "%s",
               tag ? tag : "no tag");
    free(tag);
    for (int q = 0; q < 4; q++) {
        snprintf(p, sizeof p, "%s/%s", made, theirs[q]);
        KFT_CHECK(mkdir(p, 0700) == 0 && utimensat(AT_FDCWD, p, old, 0) == 0);
    }
    KFT_CHECK(kf_cache_clear(lc.ctx, -1, &removed) == KF_OK && removed == 1);
    int kept[4] = {1, 1, 0, 0}; /* trash-1-2-3 and tmp-abcdef are kforge's names */
    for (int q = 0; q < 4; q++) {
        snprintf(p, sizeof p, "%s/%s", made, theirs[q]);
        KFT_CHECKF((access(p, F_OK) == 0) == kept[q], "%s %s", p, kept[q] ? "removed" : "kept");
    }
    KFT_CHECK(kft_count_entries(made, NULL) == 0);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

KFT_TEST(cache_group_writable_dir_is_refused)
{
    char *dir = kft_tmpdir("gw");
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 31, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    KFT_CHECK(chmod(dir, 0770) == 0);
    const char *d = NULL;
    int mode = 9;
    KFT_CHECK(kf_cache_dir(lc.ctx, &d, &mode) == KF_OK && mode == -1 && d && !strcmp(d, dir));
    KFT_CHECKF(strstr(kf_errmsg(lc.ctx), "group-writable") && strstr(kf_errmsg(lc.ctx), "refusing"),
               "%s", kf_errmsg(lc.ctx));
    /* auto still compiles (libtcc now, cc privately), with an error line */
    kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
    KFT_CHECK(k != NULL);
    KFT_CHECKF(strstr(lc.log, "[0] kforge cache: refusing cache directory") &&
                   strstr(lc.log, "group-writable (mode 0770)"),
               "log: %s", lc.log);
    kf_compile_stats st;
    KFT_CHECK(k && kf_kernel_stats(k, &st) == KF_OK && st.cache == KF_CACHE_DISABLED);
    KFT_CHECK(k && kft_vs_reference(&s, k, 30, 40, -1, 1, 0, 5) == 0);
    KFT_CHECK(k && kf_kernel_wait(k) == KF_OK && !strcmp(kf_kernel_engine(k), "cc"));
    KFT_CHECK(k && kft_vs_reference(&s, k, 30, 40, -1, 1, 0, 5) == 0);
    kf_kernel_free(k);
    KFT_CHECK(kft_count_entries(dir, NULL) == 0);
    /* an entry written by someone else into our directory is refused too */
    KFT_CHECK(chmod(dir, 0700) == 0);
    char entry[4400];
    KFT_CHECK(cc_outcome(lc.ctx, &s, entry, sizeof entry) == KF_CACHE_MISS);
    *strrchr(entry, '/') = 0;
    KFT_CHECK(chmod(entry, 0777) == 0);
    lc.len = 0;
    lc.log[0] = 0;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECKF(strstr(lc.log, "[0] kforge cache: refusing cache entry") &&
                   strstr(lc.log, "other-writable"),
               "log: %s", lc.log);
    if (geteuid() == 0) { /* only root can give a file away */
        KFT_CHECK(entry_file(dir, "", entry, sizeof entry) == 0);
        KFT_CHECK(chown(entry, 12345, 12345) == 0);
        lc.len = 0;
        lc.log[0] = 0;
        KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
        KFT_CHECKF(strstr(lc.log, "owned by uid 12345"), "log: %s", lc.log);
    }
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

/* Read-only: the owner's write bit is off (0500). Root passes access(W_OK)
 * checks anyway, which is why kforge honours the mode bits instead. */
KFT_TEST(cache_read_only_dir_is_used)
{
    char *dir = kft_tmpdir("ro");
    kft_logctx lc;
    char f[128], g[128];
    kft_spec s, t;
    kft_gauss_spec(&s, f, sizeof f, 41, KF_FLOAT64);
    kft_gauss_spec(&t, g, sizeof g, 42, KF_FLOAT64);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 2, 0) == 0))
        return;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(chmod(dir, 0500) == 0);
    const char *d = NULL;
    int mode = 9;
    KFT_CHECK(kf_cache_dir(lc.ctx, &d, &mode) == KF_OK && mode == 0);
    KFT_CHECKF(strstr(kf_errmsg(lc.ctx), "read-only"), "%s", kf_errmsg(lc.ctx));
    char entry[4400];
    KFT_CHECK(cc_outcome(lc.ctx, &s, entry, sizeof entry) == KF_CACHE_HIT);
    KFT_CHECKF(strncmp(entry, dir, strlen(dir)) == 0, "%s", entry);
    /* a miss is built privately: correct, and nothing written */
    KFT_CHECK(cc_outcome(lc.ctx, &t, entry, sizeof entry) == KF_CACHE_DISABLED);
    KFT_CHECK(entry[0] == 0);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    int64_t removed = -1;
    KFT_CHECK(kf_cache_clear(lc.ctx, -1, &removed) == KF_ERR_IO && removed == 0);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

static int collect(void *user, const kf_cache_entry *e)
{
    char *buf = user;
    size_t n = strlen(buf);
    snprintf(buf + n, 4096 - n, "%s|%s|%s|%s|%lld|%lld\n", e->tier, e->reduction, e->formula,
             e->path, (long long)e->size_bytes, (long long)e->last_use);
    return 0;
}

KFT_TEST(cache_list_and_clear)
{
    char *dir = kft_tmpdir("list");
    kft_logctx lc;
    char f[128], g[128];
    kft_spec s, t;
    kft_gauss_spec(&s, f, sizeof f, 51, KF_FLOAT32);
    kft_gauss_spec(&t, g, sizeof g, 52, KF_FLOAT64);
    t.axis = 0;
    t.aliases = (const char *const[]){"x=Vi(0,3)", "y=Vj(1,3)", "b=Vi(2,1)"};
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    static char buf[4096];
    buf[0] = 0;
    KFT_CHECK(kf_cache_list(lc.ctx, collect, buf) == KF_OK && buf[0] == 0);
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(cc_outcome(lc.ctx, &t, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(kf_cache_list(lc.ctx, collect, buf) == KF_OK);
    KFT_CHECKF(strstr(buf, "cc|Sum axis=1 float32|Mult(Exp(Mult(Minus(SqDist(") &&
                   strstr(buf, "cc|Sum axis=0 float64|") && strstr(buf, "/kernel.so|"),
               "%s", buf);
    /* last use: make one entry 3 days old */
    char meta[4400];
    KFT_CHECK(entry_file(dir, "meta", meta, sizeof meta) == 0);
    struct timespec old[2] = {{time(NULL) - 3 * 86400, 0}, {time(NULL) - 3 * 86400, 0}};
    KFT_CHECK(utimensat(AT_FDCWD, meta, old, 0) == 0);
    int64_t removed = -1;
    KFT_CHECK(kf_cache_clear(lc.ctx, 4, &removed) == KF_OK && removed == 0);
    KFT_CHECK(kf_cache_clear(lc.ctx, 2, &removed) == KF_OK && removed == 1);
    KFT_CHECK(kft_count_entries(dir, NULL) == 1);
    KFT_CHECK(kf_cache_clear(lc.ctx, -1, &removed) == KF_OK && removed == 1);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 0 && other == 0);
    KFT_CHECK(kf_cache_list(NULL, collect, buf) == KF_ERR_ARG);
    KFT_CHECK(kf_cache_list(lc.ctx, NULL, buf) == KF_ERR_ARG);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

KFT_TEST(cache_dir_resolution)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    kft_env e1 = kft_env_set("KFORGE_CACHE_DIR", NULL), e2 = kft_env_set("XDG_CACHE_HOME", "/x/y"),
            e3 = kft_env_set("HOME", "/h"), e4 = kft_env_set("KFORGE_CACHE", NULL);
    kf_ctx *ctx = kf_new(&o);
    const char *d = NULL;
    int mode;
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && d && !strcmp(d, "/x/y/kforge"));
    setenv("XDG_CACHE_HOME", "relative", 1); /* invalid per the XDG spec: ignored */
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && d && !strcmp(d, "/h/.cache/kforge"));
    setenv("KFORGE_CACHE_DIR", "/dev/null/k//", 1); /* even root cannot create it */
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && d && !strcmp(d, "/dev/null/k"));
    KFT_CHECKF(mode == -1 && strstr(kf_errmsg(ctx), "/dev/null/k"), "%s", kf_errmsg(ctx));
    setenv("KFORGE_CACHE", "off", 1);
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && mode == -1 &&
              strstr(kf_errmsg(ctx), "KFORGE_CACHE=off"));
    kf_free(ctx);
    char given[16] = "/opt/a";
    o.cache_dir = given;
    ctx = kf_new(&o);
    strcpy(given, "/changed"); /* the context keeps its own copy */
    unsetenv("KFORGE_CACHE");
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && d && !strcmp(d, "/opt/a"));
    KFT_CHECK(kf_cache_dir(ctx, NULL, &mode) == KF_ERR_ARG);
    kf_free(ctx);
    o.no_cache = 1;
    ctx = kf_new(&o);
    KFT_CHECK(kf_cache_dir(ctx, &d, &mode) == KF_OK && mode == -1 && d == NULL &&
              strstr(kf_errmsg(ctx), "no_cache"));
    kf_free(ctx);
    kft_env_restore(e4), kft_env_restore(e3), kft_env_restore(e2), kft_env_restore(e1);
}

/* What a crash could leave: a build directory (never loaded, cleared once
 * stale) and, were the protocol broken, an entry without its metadata
 * (rebuilt, never loaded). */
KFT_TEST(cache_leftovers_of_a_crash)
{
    char *dir = kft_tmpdir("crash");
    kft_logctx lc;
    char f[128], meta[4400], tmp[4400];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 71, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECK(entry_file(dir, "meta", meta, sizeof meta) == 0 && unlink(meta) == 0);
    snprintf(tmp, sizeof tmp, "%s/tmp-a1b2c3", dir);
    KFT_CHECK(mkdir(tmp, 0700) == 0);
    snprintf(tmp, sizeof tmp, "%s/tmp-a1b2c3/kernel.so", dir);
    FILE *w = fopen(tmp, "w");
    KFT_CHECK(w && fputs("half an object", w) >= 0);
    if (w)
        fclose(w);
    lc.len = 0;
    lc.log[0] = 0;
    KFT_CHECK(cc_outcome(lc.ctx, &s, NULL, 0) == KF_CACHE_MISS);
    KFT_CHECKF(strstr(lc.log, "invalid cache entry") && strstr(lc.log, "meta"), "%s", lc.log);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 1);
    /* a young build directory may belong to a running build: kept */
    int64_t removed = -1;
    KFT_CHECK(kf_cache_clear(lc.ctx, 1, &removed) == KF_OK && removed == 0);
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 1);
    snprintf(tmp, sizeof tmp, "%s/tmp-a1b2c3", dir);
    struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    KFT_CHECK(utimensat(AT_FDCWD, tmp, old, 0) == 0);
    KFT_CHECK(kf_cache_clear(lc.ctx, 1, &removed) == KF_OK && removed == 0);
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

/* ---- GPU images (tier cuda): kfr_cache_store_blob / kfr_cache_load_blob ---- */

/* A cuda-tier fixture: a compiled kernel (libtcc: only its canonical form
 * and reduction matter here), a cache on dir, a key and meta for arch. */
typedef struct blob_fx {
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kf_kernel *k;
    kfr_cache c;
    char key[KFR_HEX_LEN + 1];
    char *meta;
} blob_fx;

/* x must be zeroed (blob_fx_free frees whatever was made). */
static int blob_fx_new(blob_fx *x, const char *dir, int c, const char *arch)
{
    kft_gauss_spec(&x->s, x->f, sizeof x->f, c, KF_FLOAT32);
    if (kft_logctx_new(&x->lc, dir, 1, 0) != 0)
        return -1;
    x->k = kft_compile_jit(x->lc.ctx, &x->s, KF_JIT_TCC);
    if (!x->k)
        return -1;
    kfr_cache_locate(&x->lc.ctx->opt, &x->c, 1);
    if (kfr_cache_key_cuda(x->k, "// cuda source\n", arch, "13.0", x->key) != KF_OK)
        return -1;
    x->meta = kfr_cache_meta_cuda(x->k, x->key, arch, "13.0");
    return x->meta ? 0 : -1;
}

static void blob_fx_free(blob_fx *x)
{
    free(x->meta);
    if (x->k) /* located after the kernel was made */
        kfr_cache_close(&x->c);
    kf_kernel_free(x->k);
    if (x->lc.ctx)
        kft_logctx_free(&x->lc);
    memset(x, 0, sizeof *x);
}

/* A binary image with NULs and every byte value, headed like an ELF file. */
static void fake_image(unsigned char *img, size_t n)
{
    for (size_t q = 0; q < n; q++)
        img[q] = (unsigned char)(q * 7 + q / 251);
    memcpy(img, "\x7f" "ELF", 4);
}

/* A fresh kfr_cache on dir, as another process would see it, loads key's fname. */
static int fresh_load(const char *dir, const char *key, const char *fname, char **img, size_t *len,
                      char *why, size_t cap)
{
    kf_options o;
    kf_options_init(&o);
    o.cache_dir = dir;
    kfr_cache c;
    kfr_cache_locate(&o, &c, 0);
    int r = kfr_cache_load_blob(&c, key, fname, img, len, why, cap);
    kfr_cache_close(&c);
    return r;
}

KFT_TEST(cache_cuda_key_and_meta)
{
    char *dir = kft_tmpdir("ckey");
    blob_fx x = {0};
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 81, "sm_90") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char k2[KFR_HEX_LEN + 1];
    KFT_CHECK(kfr_cache_key_cuda(x.k, "// cuda source\n", "sm_90", "13.0", k2) == KF_OK &&
              !strcmp(k2, x.key));
    KFT_CHECK(kfr_cache_key_cuda(x.k, "// cuda source\n", "compute_90", "13.0", k2) == KF_OK &&
              strcmp(k2, x.key));
    KFT_CHECK(kfr_cache_key_cuda(x.k, "// cuda source\n", "sm_80", "13.0", k2) == KF_OK &&
              strcmp(k2, x.key));
    KFT_CHECK(kfr_cache_key_cuda(x.k, "// cuda source\n", "sm_90", "13.1", k2) == KF_OK &&
              strcmp(k2, x.key));
    KFT_CHECK(kfr_cache_key_cuda(x.k, "// other source\n", "sm_90", "13.0", k2) == KF_OK &&
              strcmp(k2, x.key));
    /* not the cc tier's key for the same kernel */
    kfr_cc cc;
    char why[256];
    if (kfr_cc_find(&cc, why, sizeof why) == 0)
        KFT_CHECK(kfr_cache_key(x.k, &cc, k2) == KF_OK && strcmp(k2, x.key));
    KFT_CHECKF(strstr(x.meta, "tier cuda\narch sm_90\nnvrtc 13.0\nreduction Sum axis=1 float32\n") &&
                   strstr(x.meta, x.key),
               "%s", x.meta);
    /* a value cannot add a line to the meta */
    char *m = kfr_cache_meta_cuda(x.k, x.key, "sm_90\nimage kernel.so", "13.0");
    KFT_CHECKF(m && strstr(m, "arch sm_90_image_kernel.so\n"), "%s", m ? m : "NULL");
    free(m);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

KFT_TEST(cache_cuda_blob_store_and_load)
{
    char *dir = kft_tmpdir("blob");
    blob_fx x = {0};
    static unsigned char img[5000];
    fake_image(img, sizeof img);
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 82, "sm_90") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char err[600], why[600], p[4400];
    char *got = NULL;
    size_t len = 0;
    /* no entry yet */
    KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 0 && !got);
    int stored = -1;
    KFT_CHECKF(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, "// src\n",
                                    x.meta, &stored, err, sizeof err) == KF_OK && stored == 1,
               "%s", err);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    snprintf(p, sizeof p, "%s/%s/kernel.cu", dir, x.key);
    char *src = kft_read_file(p);
    KFT_CHECK(src && !strcmp(src, "// src\n"));
    free(src);
    snprintf(p, sizeof p, "%s/%s/meta", dir, x.key);
    char *meta = kft_read_file(p);
    KFT_CHECKF(meta && strstr(meta, "tier cuda\n") && strstr(meta, "arch sm_90\n") &&
                   strstr(meta, "image kernel.cubin\nimage_size 5000\nimage_sha256 "),
               "%s", meta ? meta : "NULL");
    free(meta);
    snprintf(p, sizeof p, "%s/%s", dir, x.key);
    int untrusted = 0;
    KFT_CHECKF(kfr_cache_check_entry(&x.c, x.key, why, sizeof why, &untrusted) == 0, "%s", why);
    /* loaded back by a fresh cache handle: the same bytes, NUL after them */
    KFT_CHECKF(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1, "%s", why);
    KFT_CHECK(got && len == sizeof img && !memcmp(got, img, len) && got[len] == 0);
    free(got);
    got = NULL;
    /* a second store of the same key keeps the first entry, leaves no build behind */
    stored = -1;
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    /* a load touches the last use */
    snprintf(p, sizeof p, "%s/%s/meta", dir, x.key);
    struct timespec old[2] = {{time(NULL) - 5 * 86400, 0}, {time(NULL) - 5 * 86400, 0}};
    struct stat st;
    KFT_CHECK(utimensat(AT_FDCWD, p, old, 0) == 0);
    KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1);
    free(got);
    got = NULL;
    KFT_CHECK(stat(p, &st) == 0 && st.st_mtime > time(NULL) - 3600);
    /* misuse: another file name is refused and the entry stays */
    KFT_CHECK(fresh_load(dir, x.key, "kernel.so", &got, &len, why, sizeof why) == -1 && !got);
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "../x", img, 4, NULL, x.meta, &stored, err,
                                   sizeof err) == KF_ERR_ARG && stored == 0);
    KFT_CHECK(kfr_cache_store_blob(&x.c, "../../etc", "kernel.ptx", img, 4, NULL, x.meta, &stored,
                                   err, sizeof err) == KF_ERR_ARG && stored == 0);
    KFT_CHECK(kft_count_entries(dir, NULL) == 1);
    /* the entry holds a CUBIN: asked for PTX under its key, it is invalid (and replaced) */
    KFT_CHECK(fresh_load(dir, x.key, "kernel.ptx", &got, &len, why, sizeof why) == -1 && !got);
    KFT_CHECKF(strstr(why, "invalid cache entry") && strstr(why, "holds kernel.cubin"), "%s", why);
    KFT_CHECK(kft_count_entries(dir, &other) == 0 && other == 0);
    /* PTX: text, given without its NUL, comes back as a C string */
    const char *ptx = "//\n.version 8.0\n.target sm_90\n.address_size 64\n";
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.ptx", ptx, strlen(ptx), NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    KFT_CHECK(fresh_load(dir, x.key, "kernel.ptx", &got, &len, why, sizeof why) == 1);
    KFT_CHECK(got && len == strlen(ptx) && !strcmp(got, ptx));
    free(got);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

/* Damages the image (0 truncate, 1 flip a byte, 2 replace the meta's hash):
 * the load refuses it, removes it, and a new store makes it valid again. */
static void damaged_blob(int how)
{
    char *dir = kft_tmpdir("dblob");
    blob_fx x = {0};
    static unsigned char img[3000];
    fake_image(img, sizeof img);
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 83 + how, "sm_90") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char err[600], why[600], p[4400];
    int stored = 0;
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    snprintf(p, sizeof p, "%s/%s/kernel.cubin", dir, x.key);
    if (how == 0) {
        KFT_CHECK(truncate(p, sizeof img / 2) == 0);
    } else if (how == 1) {
        int fd = open(p, O_RDWR);
        unsigned char byte = 0;
        KFT_CHECK(fd >= 0 && pread(fd, &byte, 1, 1234) == 1);
        byte ^= 0x01;
        KFT_CHECK(pwrite(fd, &byte, 1, 1234) == 1);
        close(fd);
    } else {
        snprintf(p, sizeof p, "%s/%s/meta", dir, x.key);
        char *m = kft_read_file(p);
        char *h = m ? strstr(m, "image_sha256 ") : NULL;
        KFT_CHECK(h != NULL);
        if (h) {
            h[13] = h[13] == '0' ? '1' : '0';
            FILE *w = fopen(p, "w");
            KFT_CHECK(w && fputs(m, w) >= 0);
            if (w)
                fclose(w);
        }
        free(m);
    }
    char *got = NULL;
    size_t len = 0;
    KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == -1 && !got);
    KFT_CHECKF(strstr(why, "invalid cache entry") && strstr(why, "kernel.cubin") &&
                   strstr(why, "truncated or altered") && strstr(why, "removed it"),
               "%s", why);
    KFT_CHECK(kft_count_entries(dir, NULL) == 0);
    /* rebuilt by the caller: valid again */
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1 &&
              len == sizeof img && !memcmp(got, img, len));
    free(got);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

KFT_TEST(cache_cuda_truncated_blob_is_rebuilt)
{
    damaged_blob(0);
}

KFT_TEST(cache_cuda_altered_blob_is_rebuilt)
{
    damaged_blob(1);
}

KFT_TEST(cache_cuda_blob_with_wrong_hash_is_rebuilt)
{
    damaged_blob(2);
}

/* An invalid entry already in place when storing: moved away, ours wins. */
KFT_TEST(cache_cuda_store_replaces_invalid_entry)
{
    char *dir = kft_tmpdir("rblob");
    blob_fx x = {0};
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 87, "sm_80") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char p[4400], err[600], why[600];
    snprintf(p, sizeof p, "%s/%s", dir, x.key);
    KFT_CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/%s/kernel.cubin", dir, x.key);
    FILE *w = fopen(p, "w");
    KFT_CHECK(w && fputs("half an image", w) >= 0);
    if (w)
        fclose(w);
    const char img[] = "\x7f" "ELF and the rest";
    int stored = 0;
    KFT_CHECKF(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                    &stored, err, sizeof err) == KF_OK && stored == 1,
               "%s", err);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    char *got = NULL;
    size_t len = 0;
    KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1 &&
              len == sizeof img && !memcmp(got, img, len));
    free(got);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

KFT_TEST(cache_cuda_group_writable_blob_is_refused)
{
    char *dir = kft_tmpdir("gblob");
    blob_fx x = {0};
    static unsigned char img[2000];
    fake_image(img, sizeof img);
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 88, "sm_90") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char err[600], why[600], p[4400];
    char *got = NULL;
    size_t len = 0;
    int stored = 0;
    for (int what = 0; what < 2; what++) {
        /* 0: the entry's directory, 1: the image itself */
        KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                       &stored, err, sizeof err) == KF_OK && stored == 1);
        snprintf(p, sizeof p, "%s/%s%s", dir, x.key, what ? "/kernel.cubin" : "");
        KFT_CHECK(chmod(p, what ? 0664 : 0775) == 0);
        KFT_CHECK(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == -2 &&
                  !got);
        KFT_CHECKF(strstr(why, "refusing cache entry") && strstr(why, "group-writable") &&
                       (!what || strstr(why, "kernel.cubin")),
                   "%s", why);
        KFT_CHECK(kft_count_entries(dir, NULL) == 0);
    }
    /* and a umask that would make files group-writable does not make ours untrusted */
    mode_t um = umask(0002);
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    umask(um);
    KFT_CHECKF(fresh_load(dir, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1, "%s", why);
    free(got);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

KFT_TEST(cache_cuda_read_only_cache)
{
    char *dir = kft_tmpdir("roblob");
    blob_fx x = {0}, y = {0};
    static unsigned char img[1500];
    fake_image(img, sizeof img);
    int ok = dir && blob_fx_new(&x, dir, 89, "sm_90") == 0 && blob_fx_new(&y, dir, 90, "sm_90") == 0;
    if (!KFT_CHECK(ok)) {
        blob_fx_free(&y);
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char err[600], why[600];
    int stored = 0;
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, NULL, x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    KFT_CHECK(chmod(dir, 0500) == 0);
    kf_options o;
    kf_options_init(&o);
    o.cache_dir = dir;
    kfr_cache c;
    kfr_cache_locate(&o, &c, 0);
    KFT_CHECKF(c.mode == 0, "mode %d: %s", c.mode, c.why);
    /* hits load ... */
    char *got = NULL;
    size_t len = 0;
    KFT_CHECK(kfr_cache_load_blob(&c, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 1 &&
              len == sizeof img && !memcmp(got, img, len));
    free(got);
    got = NULL;
    /* ... stores do nothing, and say so with KF_OK */
    stored = -1;
    KFT_CHECK(kfr_cache_store_blob(&c, y.key, "kernel.cubin", img, sizeof img, NULL, y.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 0);
    KFT_CHECK(kfr_cache_load_blob(&c, y.key, "kernel.cubin", &got, &len, why, sizeof why) == 0);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 1 && other == 0);
    /* a damaged entry in a read-only cache is refused but cannot be removed */
    KFT_CHECK(chmod(dir, 0700) == 0);
    char p[4400];
    snprintf(p, sizeof p, "%s/%s/kernel.cubin", dir, x.key);
    KFT_CHECK(truncate(p, 10) == 0);
    KFT_CHECK(chmod(dir, 0500) == 0);
    KFT_CHECK(kfr_cache_load_blob(&c, x.key, "kernel.cubin", &got, &len, why, sizeof why) == -1 &&
              !got);
    KFT_CHECKF(strstr(why, "not loading it"), "%s", why);
    KFT_CHECK(kft_count_entries(dir, NULL) == 1);
    /* no cache at all: nothing found, nothing stored */
    kfr_cache_close(&c);
    o.no_cache = 1;
    kfr_cache_locate(&o, &c, 0);
    KFT_CHECK(c.mode == -1);
    KFT_CHECK(kfr_cache_load_blob(&c, x.key, "kernel.cubin", &got, &len, why, sizeof why) == 0);
    KFT_CHECK(kfr_cache_store_blob(&c, y.key, "kernel.cubin", img, sizeof img, NULL, y.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 0);
    blob_fx_free(&y);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

KFT_TEST(cache_cuda_list_and_clear)
{
    char *dir = kft_tmpdir("lblob");
    blob_fx x = {0}, y = {0};
    static unsigned char img[1200];
    fake_image(img, sizeof img);
    int ok = dir && blob_fx_new(&x, dir, 91, "sm_90") == 0 &&
             blob_fx_new(&y, dir, 92, "compute_90") == 0;
    if (!KFT_CHECK(ok)) {
        blob_fx_free(&y);
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char err[600];
    int stored = 0;
    const char *ptx = ".version 8.0\n.target sm_90\n";
    KFT_CHECK(kfr_cache_store_blob(&x.c, x.key, "kernel.cubin", img, sizeof img, "// a\n", x.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    KFT_CHECK(kfr_cache_store_blob(&y.c, y.key, "kernel.ptx", ptx, strlen(ptx), NULL, y.meta,
                                   &stored, err, sizeof err) == KF_OK && stored == 1);
    /* and an optimized object beside them, when there is a C compiler */
    kfr_cc cc;
    char why[256];
    int have_cc = kfr_cc_find(&cc, why, sizeof why) == 0;
    if (have_cc)
        KFT_CHECK(cc_outcome(x.lc.ctx, &x.s, NULL, 0) == KF_CACHE_MISS);
    static char buf[4096];
    buf[0] = 0;
    KFT_CHECK(kf_cache_list(x.lc.ctx, collect, buf) == KF_OK);
    KFT_CHECKF(strstr(buf, "cuda|Sum axis=1 float32 sm_90|Mult(Exp(") &&
                   strstr(buf, "/kernel.cubin|") &&
                   strstr(buf, "cuda|Sum axis=1 float32 compute_90|") &&
                   strstr(buf, "/kernel.ptx|") && (!have_cc || strstr(buf, "cc|Sum axis=1 float32|")),
               "%s", buf);
    int n = 0;
    for (const char *q = buf; (q = strchr(q, '\n')); q++)
        n++;
    KFT_CHECKF(n == 2 + have_cc, "%d entries: %s", n, buf);
    /* a damaged image is not listed */
    char p[4400];
    snprintf(p, sizeof p, "%s/%s/kernel.ptx", dir, y.key);
    KFT_CHECK(truncate(p, 3) == 0);
    buf[0] = 0;
    KFT_CHECK(kf_cache_list(x.lc.ctx, collect, buf) == KF_OK);
    KFT_CHECKF(!strstr(buf, "kernel.ptx") && strstr(buf, "kernel.cubin"), "%s", buf);
    /* clear by age, then all */
    snprintf(p, sizeof p, "%s/%s/meta", dir, x.key);
    struct timespec old[2] = {{time(NULL) - 3 * 86400, 0}, {time(NULL) - 3 * 86400, 0}};
    KFT_CHECK(utimensat(AT_FDCWD, p, old, 0) == 0);
    int64_t removed = -1;
    KFT_CHECK(kf_cache_clear(x.lc.ctx, 2, &removed) == KF_OK && removed == 1);
    KFT_CHECK(access(p, F_OK) != 0);
    KFT_CHECK(kf_cache_clear(x.lc.ctx, -1, &removed) == KF_OK && removed == 1 + have_cc);
    int other = -1;
    KFT_CHECK(kft_count_entries(dir, &other) == 0 && other == 0);
    blob_fx_free(&y);
    blob_fx_free(&x);
    kft_rmtree(dir);
}

/* ---- NVRTC to CUBIN and PTX (no GPU needed) ---- */

KFT_TEST(cache_cuda_nvrtc_cubin_and_ptx)
{
    char ver[32] = "x";
    if (kfr_nvrtc_version_string(ver, sizeof ver) != KF_OK) {
        KFT_CHECK(ver[0] == 0);
        KFT_SKIP("NVRTC cannot be loaded (no libnvrtc.so*)");
    }
    int major = -1, minor = -1;
    char expect[32];
    KFT_CHECK(kfr_nvrtc_version(&major, &minor) == KF_OK);
    snprintf(expect, sizeof expect, "%d.%d", major, minor);
    KFT_CHECKF(!strcmp(ver, expect) && major >= 11, "%s", ver);
    char tiny[2];
    KFT_CHECK(kfr_nvrtc_version_string(tiny, sizeof tiny) == KF_ERR_ARG);
    KFT_CHECK(strstr(kfr_nvrtc_flags(), "--fmad=false") != NULL);

    char *dir = kft_tmpdir("nvrtc");
    blob_fx x = {0};
    if (!KFT_CHECK(dir && blob_fx_new(&x, dir, 93, "sm_80") == 0)) {
        blob_fx_free(&x);
        kft_rmtree(dir);
        return;
    }
    char *src = NULL, msg[600];
    KFT_CHECKF(kfr_cuda_text(x.k, 0, NULL, &src, msg, sizeof msg) == KF_OK && src, "%s", msg);
    kfc_diag d;
    kfc_diag_clear(&d);
    char *img = NULL;
    size_t len = 0;
    /* a CUBIN for sm_80 and sm_90: ELF images */
    for (int a = 0; a < 2 && src; a++) {
        const char *arch = a ? "sm_90" : "sm_80";
        int st = kfr_nvrtc_compile(src, arch, 1, &img, &len, &d);
        KFT_CHECKF(st == KF_OK && img && len > 64 && !memcmp(img, "\x7f" "ELF", 4), "%s: %d %s",
                   arch, st, d.msg);
        if (st != KF_OK)
            continue;
        /* stored and loaded back through the cache under its key */
        char key[KFR_HEX_LEN + 1], err[600], why[600];
        char *meta = NULL;
        KFT_CHECK(kfr_cache_key_cuda(x.k, src, arch, ver, key) == KF_OK &&
                  (meta = kfr_cache_meta_cuda(x.k, key, arch, ver)));
        int stored = 0;
        KFT_CHECKF(kfr_cache_store_blob(&x.c, key, "kernel.cubin", img, len, src, meta, &stored,
                                        err, sizeof err) == KF_OK && stored == 1,
                   "%s", err);
        char *back = NULL;
        size_t blen = 0;
        KFT_CHECKF(fresh_load(dir, key, "kernel.cubin", &back, &blen, why, sizeof why) == 1 &&
                       blen == len && !memcmp(back, img, len),
                   "%s", why);
        free(back);
        free(meta);
        free(img);
        img = NULL;
    }
    KFT_CHECK(kft_count_entries(dir, NULL) == 2);
    /* PTX: for compute_80, and for sm_80 (which means compute_80 for PTX) */
    for (int a = 0; a < 2 && src; a++) {
        const char *arch = a ? "sm_80" : "compute_80";
        int st = kfr_nvrtc_compile(src, arch, 0, &img, &len, &d);
        KFT_CHECKF(st == KF_OK && img && strstr(img, ".target sm_80") && len == strlen(img) &&
                       strstr(img, "kf_reduce_cuda"),
                   "%s: %d %s", arch, st, d.msg);
        free(img);
        img = NULL;
    }
    /* kfr_nvrtc_ptx is the same compile */
    char *ptx = NULL;
    KFT_CHECK(src && kfr_nvrtc_ptx(src, "sm_90", &ptx, &d) == KF_OK && ptx &&
              strstr(ptx, ".target sm_90"));
    free(ptx);
    /* a CUBIN needs a real architecture; bad names are refused before NVRTC runs */
    KFT_CHECK(kfr_nvrtc_compile("int x;", "compute_90", 1, &img, &len, &d) == KF_ERR_ARG && !img);
    KFT_CHECKF(strstr(d.msg, "sm_90"), "%s", d.msg);
    KFT_CHECK(kfr_nvrtc_compile("int x;", "sm_90 -G", 1, &img, &len, &d) == KF_ERR_ARG && !img);
    /* a compile error: NVRTC's log */
    int st = kfr_nvrtc_compile("__global__ void k() { nope(); }", "sm_90", 1, &img, &len, &d);
    KFT_CHECKF(st == KF_ERR_JIT && !img && strstr(d.msg, "nope"), "%d %s", st, d.msg);
    free(src);
    blob_fx_free(&x);
    kft_rmtree(dir);
}
