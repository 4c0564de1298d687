/*
 * jit_cc.c -- runs the system C compiler on generated code (no shell, a
 * timeout, cancellable), and builds an optimized object as an entry of the
 * kernel cache: the store (runtime/cache/store_write.c) provides the build
 * directory, the meta and the atomic publish; this file puts the source and
 * the compiler's output in it, and loads the result (runtime/cache/objects.c).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/jit/jit.h"

extern char **environ;

/* A compile of one kernel takes 50-300 ms; a minute means the compiler hangs. */
#define KFR_CC_TIMEOUT_MS 60000
/* How often a waiting build looks at its cancel flag. */
#define KFR_CC_POLL_MS 20

/* Flags of every optimized build, the one list both the command line and
 * the cache key are made from. -fno-math-errno lets sqrt and friends be
 * inlined as instructions; -fno-trapping-math lets if-conversion and
 * vectorization evaluate both sides of a select. Neither changes a value the
 * user can see (NaN, inf and signed zeros stay IEEE: no -ffast-math). -w:
 * warnings about generated code help nobody; errors still come through. */
#define KFR_CC_FLAGS                                                                               \
    "-O3 -march=native -fPIC -shared -fno-math-errno -fno-trapping-math "                          \
    "-fno-semantic-interposition -w"
#define KFR_CC_MAX_FLAGS 16

/* On AVX-512 CPUs GCC's tuning keeps to 256-bit vectors unless asked: the
 * emitter's lanes fill 512-bit ones (kfr_cpu_vector_bits). */
#define KFR_CC_ZMM "-mprefer-vector-width=512"

const char *kfr_cc_flags(void)
{
    return kfr_cpu_vector_bits() >= 512 ? KFR_CC_FLAGS " " KFR_CC_ZMM " -lm" : KFR_CC_FLAGS " -lm";
}

/* Resolves a command name through $PATH like execvp would; 0 and *out set, or -1. */
static int search_path(const char *name, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        struct stat st;
        if (stat(name, &st) != 0 || !S_ISREG(st.st_mode) || access(name, X_OK) != 0 ||
            strlen(name) >= cap)
            return -1;
        strcpy(out, name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        /* An empty element means the current directory, as for execvp. */
        int w = n ? snprintf(out, cap, "%.*s/%s", (int)n, path, name)
                  : snprintf(out, cap, "./%s", name);
        struct stat st;
        if (w > 0 && (size_t)w < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return 0;
        path += n;
        if (*path == ':')
            path++;
    }
    return -1;
}

int kfr_cc_find(kfr_cc *cc, char *why, size_t cap)
{
    memset(cc, 0, sizeof *cc);
    const char *spec = getenv("CC");
    if (!spec || !*spec)
        spec = "cc";
    /* Split on blanks, never through a shell: $CC is a command and its
     * arguments, and nothing in it is interpreted. */
    size_t used = 0;
    for (const char *s = spec; *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        size_t n = strcspn(s, " \t");
        if (cc->nwords == KFR_CC_MAX_WORDS || used + n + 1 > sizeof cc->words) {
            snprintf(why, cap, "$CC has more than %d words or %zu bytes", KFR_CC_MAX_WORDS,
                     sizeof cc->words - 1);
            return KF_ERR_JIT;
        }
        memcpy(cc->words + used, s, n);
        cc->words[used + n] = 0;
        used += n + 1;
        cc->nwords++;
        s += n;
    }
    if (cc->nwords == 0) {
        snprintf(why, cap, "$CC is blank");
        return KF_ERR_JIT;
    }
    struct stat st;
    const char *from = getenv("CC") && *getenv("CC") ? "$CC" : "the default cc";
    if (search_path(cc->words, cc->path, sizeof cc->path) != 0 ||
        !realpath(cc->path, cc->real) || stat(cc->real, &st) != 0) {
        /* A path names one file: say what is wrong with it, not "not in PATH". */
        if (strchr(cc->words, '/') && stat(cc->words, &st) == 0)
            snprintf(why, cap, "no C compiler: '%.100s' (from %s) is %s", cc->words, from,
                     S_ISDIR(st.st_mode)   ? "a directory"
                     : !S_ISREG(st.st_mode) ? "not a regular file"
                                            : "not executable");
        else if (strchr(cc->words, '/'))
            snprintf(why, cap, "no C compiler: '%.100s' (from %s) does not exist", cc->words, from);
        else
            snprintf(why, cap, "no C compiler: '%.100s' (from %s) was not found in PATH",
                     cc->words, from);
        return KF_ERR_JIT;
    }
    cc->size = st.st_size;
    cc->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return KF_OK;
}

/* ---- at most one compiler per core at once, process-wide ----
 * Every kf_compile of a new formula may start a background build; a program
 * compiling fifty formulas must not fork fifty compilers. */
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cv = PTHREAD_COND_INITIALIZER;
static int slots_busy;

/* Waits for a slot; 0, or -1 if cancelled meanwhile. */
static int slot_take(const atomic_int *cancel)
{
    int limit = kfr_cpu_count();
    pthread_mutex_lock(&slots_mu);
    while (slots_busy >= limit && !(cancel && atomic_load(cancel))) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += KFR_CC_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&slots_cv, &slots_mu, &ts);
    }
    int ok = !(cancel && atomic_load(cancel));
    if (ok)
        slots_busy++;
    pthread_mutex_unlock(&slots_mu);
    return ok ? 0 : -1;
}

static void slot_give(void)
{
    pthread_mutex_lock(&slots_mu);
    slots_busy--;
    pthread_cond_signal(&slots_cv);
    pthread_mutex_unlock(&slots_mu);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The supervisor's answer to its parent's death (PR_SET_PDEATHSIG): the
 * whole group, compiler, cc1, as and itself, dies with the kforge process,
 * so a `kill -9` of kforge never leaves a compiler running on. */
static void supervisor_orphaned(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
}

/* Starts the compiler with stdin from /dev/null and stdout+stderr into the
 * pipe, under a supervisor process that leads a process group of its own
 * (so a timeout or cancel kills cc1 and as too: kill(-pid)) and dies, with
 * the group, when the thread that started it does. Between fork and exec
 * only async-signal-safe calls: this process has other threads. *pid is
 * the supervisor's; its exit status is the compiler's (127: exec failed). */
static int spawn(const kfr_cc *cc, int dirfd, const char *src, const char *out, int wfd,
                 pid_t *pid)
{
    const char *argv[KFR_CC_MAX_WORDS + KFR_CC_MAX_FLAGS + 8];
    int n = 0;
    const char *w = cc->words;
    for (int q = 0; q < cc->nwords; q++, w += strlen(w) + 1)
        argv[n++] = q == 0 ? cc->path : w;
    char flags[] = KFR_CC_FLAGS;
    for (char *save = NULL, *f = strtok_r(flags, " ", &save); f && n < KFR_CC_MAX_WORDS + KFR_CC_MAX_FLAGS;
         f = strtok_r(NULL, " ", &save))
        argv[n++] = f;
    if (kfr_cpu_vector_bits() >= 512)
        argv[n++] = KFR_CC_ZMM;
    argv[n++] = "-o";
    argv[n++] = out;
    argv[n++] = src;
    argv[n++] = "-lm";
    argv[n] = NULL;

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0)
        return errno;
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(devnull);
        return e;
    }
    if (p == 0) {
        setpgid(0, 0);
        /* The build directory, by descriptor: src and out are names in it. */
        if (fchdir(dirfd) != 0)
            _exit(126);
        /* Only the pipe and /dev/null: an inherited descriptor of another
         * build's pipe would hold back that build's end of output. */
        if (dup2(devnull, 0) < 0 || dup2(wfd, 1) < 0 || dup2(wfd, 2) < 0)
            _exit(126);
        close_range(3, ~0U, 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = supervisor_orphaned;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGUSR1);
        if (getppid() != parent) /* the parent died before prctl */
            kill(0, SIGKILL);
        pid_t c = fork();
        if (c == 0) {
            /* The default signal actions and no mask: a caller that blocks
             * or ignores SIGCHLD/SIGPIPE must not change how the compiler runs. */
            sa.sa_handler = SIG_DFL;
            for (int s = 1; s < NSIG; s++)
                sigaction(s, &sa, NULL);
            execve(cc->path, (char *const *)argv, environ);
            _exit(127);
        }
        if (c < 0)
            _exit(126);
        close(1);
        close(2);
        int st;
        while (waitpid(c, &st, 0) < 0)
            if (errno != EINTR)
                _exit(126);
        if (WIFSIGNALED(st)) { /* the same death, so the caller's message names the signal */
            sa.sa_handler = SIG_DFL;
            sigaction(WTERMSIG(st), &sa, NULL);
            kill(getpid(), WTERMSIG(st));
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126);
    }
    setpgid(p, p); /* also here: a kill(-p) right after fork must find the group */
    close(devnull);
    *pid = p;
    return 0;
}

/* Keeps the first cap-1 bytes of the compiler's output; control characters other
 * than newlines become '?' (UTF-8 quotes in gcc's messages pass through). */
static void keep_output(char *buf, size_t cap, size_t *len, const char *data, size_t n)
{
    for (size_t q = 0; q < n && *len + 1 < cap; q++) {
        char c = data[q];
        buf[(*len)++] = (c == '\n' || (unsigned char)c >= 0x20) && c != 0x7f ? c : '?';
    }
    buf[*len < cap ? *len : cap - 1] = 0;
}

int kfr_cc_run(const kfr_cc *cc, int dirfd, const char *src, const char *out,
               const atomic_int *cancel, char *err, size_t cap)
{
    err[0] = 0;
    if (slot_take(cancel) != 0) {
        snprintf(err, cap, "the build was cancelled");
        return KF_ERR_JIT;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        slot_give();
        snprintf(err, cap, "cannot run the C compiler: pipe: %s", strerror(errno));
        return KF_ERR_JIT;
    }
    pid_t pid = -1;
    int rc = spawn(cc, dirfd, src, out, fds[1], &pid);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        slot_give();
        snprintf(err, cap, "cannot run the C compiler %s: %s", cc->path, strerror(rc));
        return KF_ERR_JIT;
    }

    char text[1536];
    size_t len = 0;
    text[0] = 0;
    int64_t deadline = now_ms() + KFR_CC_TIMEOUT_MS;
    int why_killed = 0; /* 1 timeout, 2 cancelled */
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            why_killed = 2;
            break;
        }
        if (now_ms() > deadline) {
            why_killed = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, KFR_CC_POLL_MS);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        char chunk[512];
        ssize_t got = read(fds[0], chunk, sizeof chunk);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            break; /* EOF: the compiler and its children closed their output */
        keep_output(text, sizeof text, &len, chunk, (size_t)got);
    }
    if (why_killed)
        kill(-pid, SIGKILL);
    close(fds[0]);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    slot_give();
    /* A caller that set SIGCHLD to SIG_IGN makes the child unwaitable
     * (ECHILD): the exit status is lost and loading the object decides. */
    int ok = !why_killed && (w < 0 ? errno == ECHILD : WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (ok)
        return KF_OK;
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = 0;
    if (why_killed == 1)
        snprintf(err, cap, "the C compiler %s ran over %d s and was killed", cc->path,
                 KFR_CC_TIMEOUT_MS / 1000);
    else if (why_killed == 2)
        snprintf(err, cap, "the build was cancelled");
    else if (WIFSIGNALED(st))
        snprintf(err, cap, "the C compiler %s was killed by signal %d: %s", cc->path,
                 WTERMSIG(st), text);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && !text[0])
        snprintf(err, cap, "the C compiler %s could not be started (exit status 127)", cc->path);
    else
        snprintf(err, cap, "the C compiler %s failed (exit status %d): %s", cc->path,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1, text[0] ? text : "(no message)");
    return KF_ERR_JIT;
}

/* ---- building an entry ---- */

int kfr_cc_build(const kfr_cache *c, const kfr_cc *cc, const char *key, const char *src,
                 const char *meta, const atomic_int *cancel, kfr_so **spare, kfr_so **out,
                 int *stored, char *err, size_t cap)
{
    *out = NULL;
    *stored = 0;
    kfr_entry_tx tx;
    int rc = kfr_entry_begin(c, key, 1, &tx, err, cap);
    if (rc != KF_OK)
        return rc;
    /* The key is hex we computed, never user text. The loader reads it from
     * the object's bytes before dlopen (kfr_so_key_marker), and from the
     * symbol after. */
    char tail[KFR_HEX_LEN + 160];
    snprintf(tail, sizeof tail,
             "\n/* The cache key, checked before and after dlopen (docs/cache.md). */\n"
             "const char kf_cache_key[] = \"%s%s\";\n",
             kfr_so_key_marker, key);
    kfr_bytes source[2] = {{src, strlen(src)}, {tail, strlen(tail)}};
    char *img = NULL;
    size_t len = 0;
    rc = kfr_entry_write(&tx, "kernel.c", source, 2, err, cap);
    if (rc == KF_OK)
        rc = kfr_cc_run(cc, kfr_entry_dirfd(&tx), "kernel.c", "kernel.so", cancel, err, cap);
    if (rc == KF_OK)
        rc = kfr_entry_seal(&tx, meta, "kernel.so", &img, &len, err, cap);
    if (rc != KF_OK) {
        kfr_entry_abort(&tx);
        return rc;
    }

    /* What is loaded is the bytes just sealed, in memory: nothing another
     * process does to the cache meanwhile (a `cache clear`, another build)
     * can take them away or change them. */
    char why[600], entry[PATH_MAX + 72] = "";
    if (tx.shared) {
        /* The first complete build wins: an entry already there (valid, or
         * removed by a lookup, then tried again) is kept, and ours dropped;
         * both were built from the same key. */
        for (int attempt = 0; attempt < 3; attempt++) {
            int exists;
            if (kfr_entry_publish(&tx, &exists, why, sizeof why) != KF_OK)
                break;
            if (!exists || kfr_cache_check_entry(c, key, why, sizeof why, &(int){0}) == KF_OK) {
                *stored = 1;
                break;
            }
            if (!kfr_cache_is_ours(c) || (kfr_cache_trash(c, key) != KF_OK && errno != ENOENT))
                break;
        }
        if (*stored)
            snprintf(entry, sizeof entry, "%s/%s/kernel.so", c->dir, key);
    }
    kfr_entry_abort(&tx);
    rc = kfr_so_open_image(img, len, key, *stored ? entry : NULL, spare, out, why, sizeof why);
    free(img);
    if (rc != KF_OK) {
        *stored = 0;
        snprintf(err, cap, "the optimized object does not load: %s", why);
        return rc == KF_ERR_NOMEM ? KF_ERR_NOMEM : KF_ERR_JIT;
    }
    return KF_OK;
}
