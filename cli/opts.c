/* opts.c -- the command line of every kforge command (eval, check, bench, cache) into a kfcli_args. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum {
    OPT_ALIAS, OPT_RED, OPT_AXIS, OPT_K, OPT_F2, OPT_DTYPE, OPT_THREADS, OPT_JIT, OPT_SUM,
    OPT_VERBOSE, OPT_DUMP, OPT_OUT, OPT_IDX, OPT_M, OPT_N, OPT_EMIT, OPT_HELP, OPT_REPEAT,
    OPT_SEED, OPT_CACHE_DIR, OPT_OLDER, OPT_BLOCK_SPARSE, OPT_BACKEND, OPT_DEVICE
};

/* One table for every command: `cmds` says which accept the option. */
static const struct opt {
    const char *lng; /* without "--", or NULL */
    char shrt;       /* or 0 */
    int arg;         /* takes a value */
    int cmds;
    int id;
} opts[] = {
#define EC (KFCLI_CMD_EVAL | KFCLI_CMD_CHECK)
#define ECB (KFCLI_CMD_EVAL | KFCLI_CMD_CHECK | KFCLI_CMD_BENCH)
#define EB (KFCLI_CMD_EVAL | KFCLI_CMD_BENCH)
    {"alias", 'a', 1, ECB, OPT_ALIAS},
    {"reduction", 'r', 1, ECB, OPT_RED},
    {"axis", 0, 1, ECB, OPT_AXIS},
    {NULL, 'K', 1, ECB, OPT_K},
    {"formula2", 0, 1, ECB, OPT_F2},
    {"dtype", 0, 1, ECB, OPT_DTYPE},
    {"threads", 0, 1, EB, OPT_THREADS},
    {"jit", 0, 1, ECB, OPT_JIT},
    {"sum-scheme", 0, 1, ECB, OPT_SUM},
    {"verbose", 'v', 0, ECB | KFCLI_CMD_CACHE, OPT_VERBOSE},
    {"dump", 0, 0, EC, OPT_DUMP},
    {"output", 'o', 1, KFCLI_CMD_EVAL, OPT_OUT},
    {"index-out", 0, 1, KFCLI_CMD_EVAL, OPT_IDX},
    {NULL, 'M', 1, EB, OPT_M},
    {NULL, 'N', 1, EB, OPT_N},
    {"emit", 0, 1, KFCLI_CMD_CHECK, OPT_EMIT},
    {"repeat", 0, 1, KFCLI_CMD_BENCH, OPT_REPEAT},
    {"seed", 0, 1, KFCLI_CMD_BENCH, OPT_SEED},
    {"cache-dir", 0, 1, KFCLI_CMD_BENCH | KFCLI_CMD_CACHE, OPT_CACHE_DIR},
    {"older-than", 0, 1, KFCLI_CMD_CACHE, OPT_OLDER},
    {"block-sparse", 0, 1, EB, OPT_BLOCK_SPARSE},
    {"backend", 0, 1, EB, OPT_BACKEND},
    {"device", 0, 1, EB, OPT_DEVICE},
    {"help", 'h', 0, ECB | KFCLI_CMD_CACHE, OPT_HELP},
#undef EC
#undef ECB
#undef EB
};
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))

int kfcli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int neg = *s == '-';
    const char *p = s + neg;
    if (*p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    v = neg ? -v : v;
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int usage(const kfcli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(const kfcli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kforge %s: ", a->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'kforge help %s')\n", a->cmd);
    va_end(ap);
    return KFCLI_EXIT_USAGE;
}

/* A plain decimal number (no hex, no nan; "inf" only when allow_inf) filling
 * all of s[0..n); returns 0 on success. */
static int parse_real(const char *s, size_t n, int allow_inf, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (allow_inf && !strcmp(buf, "inf")) {
        *out = INFINITY;
        return 0;
    }
    if (strpbrk(buf, "xXnNiI") || buf[0] == ' ' || buf[0] == '\t')
        return -1;
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end || errno || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static int set_value(kfcli_args *a, const struct opt *o, const char *name, const char *v)
{
    int64_t x;
    kf_dtype dt;
    switch (o->id) {
    case OPT_ALIAS:
        a->aliases[a->naliases++] = v;
        return 0;
    case OPT_RED:
        a->reduction = v;
        return 0;
    case OPT_AXIS:
        if (kfcli_parse_i64(v, 0, 1, &x))
            return usage(a, "%s must be 0 or 1, not '%s'", name, v);
        a->axis = (int)x;
        return 0;
    case OPT_K:
        if (kfcli_parse_i64(v, 1, 1000000000, &x))
            return usage(a, "%s must be a positive integer, not '%s'", name, v);
        a->k = (int)x;
        return 0;
    case OPT_F2:
        a->formula2 = v;
        return 0;
    case OPT_DTYPE:
        if (kf_dtype_parse(v, &dt) != KF_OK)
            return usage(a, "%s must be float32 or float64, not '%s'", name, v);
        a->dtype = dt;
        return 0;
    case OPT_THREADS:
        if (kfcli_parse_i64(v, 1, KF_MAX_THREADS, &x))
            return usage(a, "%s must be an integer from 1 to %d, not '%s'", name, KF_MAX_THREADS, v);
        a->threads = (int)x;
        return 0;
    case OPT_JIT:
        if (a->cmdmask & KFCLI_CMD_BENCH) { /* a list of tiers: cmd_bench.c reads it */
            a->jits = v;
            return 0;
        }
        if (kf_jit_parse(v, &a->jit) != KF_OK)
            return usage(a, "%s must be auto, tcc, cc or reference, not '%s'", name, v);
        return 0;
    case OPT_BACKEND:
        if (kf_backend_parse(v, &a->backend) != KF_OK)
            return usage(a, "%s must be cpu, cuda or auto, not '%s'", name, v);
        return 0;
    case OPT_DEVICE:
        if (kfcli_parse_i64(v, 0, 1023, &x))
            return usage(a, "%s must be a GPU ordinal from 0 to 1023, not '%s'", name, v);
        a->device = (int)x;
        return 0;
    case OPT_SUM:
        if (kf_sum_scheme_parse(v, &a->sum_scheme) != KF_OK)
            return usage(a, "%s must be block, direct, f64 or kahan, not '%s'", name, v);
        return 0;
    case OPT_OUT:
        a->out = v;
        return 0;
    case OPT_IDX:
        a->index_out = v;
        return 0;
    case OPT_M:
    case OPT_N:
        if (kfcli_parse_i64(v, 0, INT64_MAX, &x))
            return usage(a, "%s must be a non-negative integer, not '%s'", name, v);
        *(o->id == OPT_M ? &a->M : &a->N) = x;
        return 0;
    case OPT_REPEAT:
        if (kfcli_parse_i64(v, 1, 1000000, &x))
            return usage(a, "%s must be an integer from 1 to 1000000, not '%s'", name, v);
        a->repeat = (int)x;
        return 0;
    case OPT_SEED:
        if (kfcli_parse_i64(v, 0, INT64_MAX, &x))
            return usage(a, "%s must be a non-negative integer, not '%s'", name, v);
        a->seed = (uint64_t)x;
        a->seed_set = 1;
        return 0;
    case OPT_CACHE_DIR:
        if (!*v)
            return usage(a, "%s needs a directory, not ''", name);
        a->cache_dir = v;
        return 0;
    case OPT_OLDER: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        /* strtod also takes "nan", "inf" and hex: only plain decimals are days */
        if (!*v || *end || errno || !(d >= 0 && d <= 1e6) || strpbrk(v, "xXnNiI"))
            return usage(a, "%s must be a number of days from 0 to 1000000, not '%s'", name, v);
        a->older_than = d;
        return 0;
    }
    case OPT_BLOCK_SPARSE: {
        /* EPS:CUTOFF[:kmeans=ITERS]: grid cells of side EPS > 0 (or k-means started
         * from them, for dims where grid cells are useless); cluster pairs kept
         * within CUTOFF >= 0 (or inf) plus half of each cluster's extent
         * (docs/blocksparse.md) */
        const char *colon = strchr(v, ':');
        const char *third = colon ? strchr(colon + 1, ':') : NULL;
        size_t clen = colon ? (third ? (size_t)(third - colon - 1) : strlen(colon + 1)) : 0;
        double e, c;
        long iters = 0;
        if (third) {
            char *end;
            errno = 0;
            if (strncmp(third + 1, "kmeans=", 7) != 0 || !isdigit((unsigned char)third[8]) ||
                (iters = strtol(third + 8, &end, 10), *end) || errno || iters < 1 || iters > 1000)
                return usage(a, "%s: the third field must be kmeans=ITERS with 1 <= ITERS <= 1000 "
                                "(e.g. 0.5:1:kmeans=10), not '%s'", name, v);
        }
        if (!colon || parse_real(v, (size_t)(colon - v), 0, &e) || !(e > 0) ||
            parse_real(colon + 1, clen, 1, &c) || !(c >= 0))
            return usage(a, "%s must be EPS:CUTOFF[:kmeans=ITERS] with a cell size EPS > 0 and a "
                            "cutoff radius CUTOFF >= 0 or inf (e.g. 0.05:0.2), not '%s'", name, v);
        a->bs_eps = e;
        a->bs_cutoff = c;
        a->bs_kmeans = (int)iters;
        return 0;
    }
    case OPT_EMIT:
        if (strcmp(v, "c") && strcmp(v, "cuda") && strcmp(v, "ptx"))
            return usage(a, "%s must be c, cuda or ptx, not '%s'", name, v);
        a->emit = v;
        return 0;
    }
    return 0;
}

int kfcli_args_parse(int cmdmask, const char *cmd, int argc, char **argv, kfcli_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->cmdmask = cmdmask;
    a->older_than = -1;
    a->axis = -1;
    a->dtype = -1;
    a->M = a->N = -1;
    a->jit = KF_JIT_AUTO;
    a->sum_scheme = KF_SUM_AUTO;
    /* Each array has room for every argument, so appending never fails. */
    a->aliases = malloc(sizeof *a->aliases * (size_t)(argc + 1));
    a->files = malloc(sizeof *a->files * (size_t)(argc + 1));
    if (!a->aliases || !a->files) {
        fprintf(stderr, "kforge %s: out of memory\n", cmd);
        return KFCLI_EXIT_RUNTIME;
    }
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (only_positional || s[0] != '-' || s[1] == 0) {
            if (!a->formula)
                a->formula = s;
            else
                a->files[a->nfiles++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            only_positional = 1;
            continue;
        }
        const struct opt *o = NULL;
        const char *val = NULL;
        size_t nlen;
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            nlen = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            for (int k = 0; k < NOPTS && !o; k++)
                if (opts[k].lng && strlen(opts[k].lng) == nlen && !strncmp(opts[k].lng, s + 2, nlen))
                    o = &opts[k];
            if (o && eq) {
                if (!o->arg)
                    return usage(a, "option --%s takes no value", o->lng);
                val = eq + 1;
            }
        } else {
            for (int k = 0; k < NOPTS && !o; k++)
                if (opts[k].shrt == s[1])
                    o = &opts[k];
            if (o && s[2]) {
                if (!o->arg)
                    o = NULL; /* "-vx": no bundling */
                else
                    val = s + 2;
            }
        }
        if (!o || !(o->cmds & cmdmask)) {
            if (!a->formula)
                return usage(a, "unknown option '%s' (a formula that starts with '-' goes after --)",
                             s);
            return usage(a, "unknown option '%s'", s);
        }
        if (o->id == OPT_HELP) {
            a->help = 1;
            return 0;
        }
        if (o->id == OPT_VERBOSE) {
            a->verbose = 1;
            continue;
        }
        if (o->id == OPT_DUMP) {
            a->dump = 1;
            continue;
        }
        /* The option's name as typed, for messages. */
        char name[48];
        if (s[1] == '-')
            snprintf(name, sizeof name, "--%s", o->lng);
        else
            snprintf(name, sizeof name, "-%c", o->shrt);
        if (!val) {
            if (i + 1 >= argc)
                return usage(a, "option %s needs a value", name);
            val = argv[++i];
        }
        int rc = set_value(a, o, name, val);
        if (rc)
            return rc;
    }
    return 0;
}

void kfcli_args_free(kfcli_args *a)
{
    free(a->aliases);
    free(a->files);
    a->aliases = NULL;
    a->files = NULL;
}
