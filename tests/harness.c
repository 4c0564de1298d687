/* harness.c -- registers the tests and runs them, one child process per test
 * file; prints "N passed, N failed, N skipped" (see harness.h).
 *
 * The parent forks a child for each file that has a test to run and reads
 * its reports through a pipe, one line per event: "S i" (test i starts),
 * "E i p|f|s" (it passed, failed, was skipped), "D" (the file is done). A
 * child that dies, or exits before "D" or with a nonzero status (a sanitizer's
 * report at exit), is a crash: one failure, named with the file and the test
 * it was in. Fork, not exec: the children share what the constructors set up
 * (t_cache.c's private cache directory, whose removal is tied to the parent's
 * pid), and a fork of a process that has started no thread is safe.
 *
 * Each test's stdout and stderr (file descriptors 1 and 2, so the library's
 * log and the children it spawns too) go to a capture file, shown only when
 * the test fails or its process crashes (the parent replays it then). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KFT_MAX_TESTS 4096

static struct kft_test {
    const char *file, *name;
    kft_fn fn;
} tests[KFT_MAX_TESTS];
static int ntests;

/* The running test's state (in the child that runs it). */
static int current_failed, current_checks, current_skipped;
static char skip_reason[512];

void kft_register(const char *file, const char *name, kft_fn fn)
{
    if (ntests < KFT_MAX_TESTS)
        tests[ntests].file = file, tests[ntests].name = name, tests[ntests].fn = fn, ntests++;
}

int kft_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    current_checks++;
    if (ok)
        return 1;
    current_failed++;
    fprintf(stderr, "  %s:%d: check failed: %s", file, line, expr);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    return 0;
}

void kft_skip(const char *fmt, ...)
{
    if (current_skipped++)
        return; /* the first reason is the one printed */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
}

char *kft_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

static int by_file_then_name(const void *a, const void *b)
{
    const struct kft_test *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

/* write(2) all of buf, through EINTR and short writes. */
static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w, n -= (size_t)w;
    }
}

static void report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int fd, const char *fmt, ...)
{
    char line[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Copies the capture file cap (from its start) to fd. */
static void replay(int cap, int fd)
{
    char buf[8192];
    off_t at = 0;
    ssize_t got;
    while ((got = pread(cap, buf, sizeof buf, at)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0)
            write_all(fd, buf, (size_t)got), at += got;
}

/* The child's side: runs tests [from, to) of one file that match filter,
 * reporting to fd; cap < 0: no capture (verbose). Returns by exit(0), so
 * the atexit handlers and a sanitizer's leak check run in the child. */
static void run_file(int from, int to, const char *filter, int fd, int cap, int verbose)
{
    int out = dup(1), err = dup(2);
    if (out < 0 || err < 0)
        cap = -1;
    /* Line by line, so a capture keeps stdout and stderr in order and a crash
     * loses no printed line. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int t = from; t < to; t++) {
        if (filter && !strstr(tests[t].name, filter))
            continue;
        report(fd, "S %d\n", t);
        current_failed = current_checks = current_skipped = 0;
        skip_reason[0] = 0;
        if (verbose)
            fprintf(stderr, "RUN  %s\n", tests[t].name);
        fflush(stdout), fflush(stderr);
        if (cap >= 0 && ftruncate(cap, 0) == 0 && lseek(cap, 0, SEEK_SET) == 0) {
            dup2(cap, 1);
            dup2(cap, 2);
        }
        tests[t].fn();
        fflush(stdout), fflush(stderr);
        if (cap >= 0)
            dup2(out, 1), dup2(err, 2);
        char status;
        if (current_failed) {
            if (cap >= 0)
                replay(cap, 2);
            fprintf(stderr, "FAIL %s (%d check%s failed)\n", tests[t].name, current_failed,
                    current_failed == 1 ? "" : "s");
            status = 'f';
        } else if (current_skipped) {
            printf("SKIP %s: %s\n", tests[t].name, skip_reason);
            status = 's';
        } else if (current_checks == 0) {
            if (cap >= 0)
                replay(cap, 2);
            fprintf(stderr, "FAIL %s (no check ran: a test that cannot run calls KFT_SKIP)\n",
                    tests[t].name);
            status = 'f';
        } else {
            status = 'p';
        }
        fflush(stdout), fflush(stderr);
        report(fd, "E %d %c\n", t, status);
    }
    report(fd, "D\n");
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    exit(0);
}

/* A capture file, already unlinked, or -1. */
static int capture_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/kft-out-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

typedef struct counts {
    int passed, failed, skipped;
} counts;

/* The parent's side for one file: forks the child, reads its reports, waits
 * for it, and adds to c. */
static void fork_file(int from, int to, const char *filter, int verbose, counts *c)
{
    const char *file = tests[from].file;
    int fds[2];
    int cap = verbose ? -1 : capture_file();
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "CRASH %s: no pipe: %s\n", file, strerror(errno));
        c->failed++;
        if (cap >= 0)
            close(cap);
        return;
    }
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "CRASH %s: cannot fork: %s\n", file, strerror(errno));
        c->failed++;
        close(fds[0]), close(fds[1]);
        if (cap >= 0)
            close(cap);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        run_file(from, to, filter, fds[1], cap, verbose);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    int running = -1, last = -1, done = 0, planned = 0, ended = 0;
    for (int t = from; t < to; t++)
        planned += !filter || strstr(tests[t].name, filter) != NULL;
    char line[64];
    while (in && fgets(line, sizeof line, in)) {
        int t;
        char st;
        if (sscanf(line, "S %d", &t) == 1) {
            running = t;
        } else if (sscanf(line, "E %d %c", &t, &st) == 2) {
            running = -1, last = t, ended++;
            if (st == 'p')
                c->passed++;
            else if (st == 's')
                c->skipped++;
            else
                c->failed++;
        } else if (line[0] == 'D') {
            done = 1;
        }
    }
    if (in)
        fclose(in);
    else
        close(fds[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    char how[128] = "";
    if (WIFSIGNALED(ws))
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else if (!WIFEXITED(ws))
        snprintf(how, sizeof how, "stopped abnormally (wait status %#x)", ws);
    else if (WEXITSTATUS(ws) != 0)
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(ws));
    else if (!done)
        snprintf(how, sizeof how, "exited with status 0 before its tests were done");
    if (how[0]) {
        fflush(stdout);
        if (running >= 0 && cap >= 0 && lseek(cap, 0, SEEK_END) > 0) {
            fprintf(stderr, "  (output of %s up to the crash:)\n", tests[running].name);
            fflush(stderr);
            replay(cap, 2);
        }
        char where[256];
        if (running >= 0)
            snprintf(where, sizeof where, "in test %s", tests[running].name);
        else if (last >= 0)
            snprintf(where, sizeof where, "after test %s", tests[last].name);
        else
            snprintf(where, sizeof where, "before its first test");
        int unrun = planned - ended - (running >= 0);
        fprintf(stderr, "CRASH %s: %s (%s%s", file, how, where, unrun > 0 ? "; " : "");
        if (unrun > 0)
            fprintf(stderr, "%d test%s not run", unrun, unrun == 1 ? "" : "s");
        fprintf(stderr, ")\n");
        fflush(stderr);
        c->failed++;
    }
    if (cap >= 0)
        close(cap);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int verbose = getenv("KFT_VERBOSE") != NULL;
    counts c = {0, 0, 0};
    qsort(tests, (size_t)ntests, sizeof tests[0], by_file_then_name);
    for (int from = 0, to; from < ntests; from = to) {
        int any = 0;
        for (to = from; to < ntests && !strcmp(tests[to].file, tests[from].file); to++)
            any |= !filter || strstr(tests[to].name, filter) != NULL;
        if (any)
            fork_file(from, to, filter, verbose, &c);
    }
    printf("%d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped);
    return c.failed ? 1 : 0;
}
