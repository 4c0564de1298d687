/*
 * cc_key.c -- what names a cache entry: the key (SHA-256 of a text listing
 * everything the compiled code depends on) and the meta text, for the cc
 * tier's objects and the CUDA backend's GPU images. The only code that reads
 * a kernel's fields on behalf of the cache; the store (runtime/cache/) gets
 * the key and the text and never sees the kernel.
 *
 * The texts hashed here must not change by a byte unless the code they name
 * does: every existing entry is found by them (docs/cache.md, "The key").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/base/buf.h"
#include "runtime/jit/jit.h"

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
