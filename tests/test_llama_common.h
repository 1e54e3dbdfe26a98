/* test_llama_common.h — helpers of the Llama/engine tests: the golden reader (blocks
 * "name count" followed by count numbers, '#' comment lines; written by
 * tools/make_tiny_models.py), a tiny safetensors writer (to derive model directories: the f32
 * copy of a bf16 model, hostile variants), and a temporary directory. */
#ifndef TEST_LLAMA_COMMON_H
#define TEST_LLAMA_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"
#include "test.h"

#define LLAMA_DATA "tests/data/llama"

/* Read block `name` of a golden file as doubles; NULL if absent (test_golden). */
static inline double *golden_get(const char *path, const char *name, int *n) {
    size_t cnt = 0;
    double *v = test_golden(path, name, &cnt);
    if (v) *n = (int)cnt;
    return v;
}

/* ---- safetensors writer ------------------------------------------------------------------------ */
typedef struct st_entry {
    char name[256];
    const char *dtype;    /* "F32", "BF16", "U32", ... */
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} st_entry;

static inline int st_write(const char *path, const st_entry *e, int n) {
    size_t cap = 256 + (size_t)n * 400, len = 0, off = 0;
    char *h = malloc(cap);
    if (!h) return -1;
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", e[i].name, e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)e[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + e[i].nbytes);
        off += e[i].nbytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h);
        return -1;
    }
    uint64_t hl = len;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(lb, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len;
    for (int i = 0; i < n && ok; i++)
        ok = e[i].nbytes == 0 || fwrite(e[i].data, 1, e[i].nbytes, f) == e[i].nbytes;
    free(h);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static inline int copy_file(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb");
    if (!a) return -1;
    FILE *b = fopen(dst, "wb");
    if (!b) {
        fclose(a);
        return -1;
    }
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, k, b);
    fclose(a);
    return fclose(b);
}

static inline int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* A fresh temporary directory (path written into buf). */
static inline int make_tmpdir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/tallow-%s-XXXXXX", tag);
    return mkdtemp(buf) ? 0 : -1;
}

static inline void rm_rf(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Filter callback for copy_model: returns 0 to drop a tensor, 1 to keep it (may edit e). */
typedef int (*st_filter)(st_entry *e, void *ctx);

/* Copy model dir src to dst (config.json + one model.safetensors), passing every tensor through
 * filt (NULL: keep). to_f32: widen BF16/F16 tensors to F32. */
static inline int copy_model(const char *src, const char *dst, int to_f32, st_filter filt,
                             void *ctx) {
    tl_err err = {0};
    tl_st_set *st = NULL;
    if (tl_st_open_dir(&st, src, &err)) {
        fprintf(stderr, "copy_model: %s\n", err.msg);
        return -1;
    }
    int n = tl_st_count(st), m = 0;
    st_entry *es = calloc((size_t)n, sizeof *es);
    void **owned = calloc((size_t)n, sizeof *owned);
    for (int i = 0; i < n; i++) {
        const tl_tensor *t = tl_st_at(st, i);
        st_entry e = {0};
        snprintf(e.name, sizeof e.name, "%s", t->name);
        e.dtype = t->dtype == TL_DT_F32    ? "F32"
                  : t->dtype == TL_DT_BF16 ? "BF16"
                  : t->dtype == TL_DT_F16  ? "F16"
                  : t->dtype == TL_DT_U32  ? "U32"
                                           : "I32";
        e.ndim = t->ndim;
        for (int d = 0; d < t->ndim && d < 4; d++) e.shape[d] = t->shape[d];
        e.data = t->data;
        e.nbytes = t->nbytes;
        if (to_f32 && (t->dtype == TL_DT_BF16 || t->dtype == TL_DT_F16)) {
            size_t cnt = t->nbytes / 2;
            float *f = malloc(cnt * sizeof(float));
            const uint16_t *h = t->data;
            for (size_t j = 0; j < cnt; j++)
                f[j] = t->dtype == TL_DT_BF16 ? tl_bf16_to_f32(h[j]) : tl_f16_to_f32(h[j]);
            e.dtype = "F32";
            e.data = f;
            e.nbytes = cnt * sizeof(float);
            owned[i] = f;
        }
        if (filt && !filt(&e, ctx)) continue;
        es[m++] = e;
    }
    char p[4300];
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    int rc = st_write(p, es, m);
    char a[4300], b[4300];
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", dst);
    if (rc == 0) rc = copy_file(a, b);
    for (int i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(es);
    tl_st_free(st);
    return rc;
}

#endif
