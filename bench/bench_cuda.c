/* bench_cuda.c — speed of the CUDA backend's main kernels at the real model shapes, on one GPU:
 *   - decode matmul (GEMV, 1 row) of MLX 4-bit g64 and bf16 weights: GB/s of weight bytes read;
 *   - prefill matmul (tiled GEMM, 512 rows): GFLOP/s;
 *   - paged attention of one decode row per head over 4096 cached tokens: GB/s of K+V read;
 *   - Gated DeltaNet exact rule (Qwen3.5-2B shape), decode (1 row) and prefill (512 rows of one
 *     slot): tokens/s of one layer.
 * Wall time around be->sync, median of 5 after a warm-up. Weights are random bytes (speed does
 * not depend on values). Without CUDA in the build (or no GPU) it says so and exits 0.
 *   usage: bench_cuda */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

#ifndef TL_HAVE_CUDA
int main(void) {
    printf("bench_cuda: built without CUDA (nvcc was not found at build time)\n");
    return 0;
}
#else

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of one call of fn over 5 timed runs (after one warm-up). */
typedef void (*bench_fn)(void *arg);
static double time_median(tl_backend *be, bench_fn fn, void *arg, int reps) {
    double t[5];
    fn(arg);
    be->sync(be);
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = tl_now_ns();
        for (int r = 0; r < reps; r++) fn(arg);
        be->sync(be);
        t[k] = (double)(tl_now_ns() - t0) * 1e-9 / reps;
    }
    qsort(t, 5, sizeof *t, cmp_d);
    return t[2];
}

static float *dev_random(tl_backend *be, size_t n) {
    float *h = malloc(n * sizeof *h);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    float *d = be->alloc(be, n, TL_MEM_SCRATCH);
    if (d) be->to_device(be, d, h, n * sizeof(float));
    free(h);
    return d;
}

typedef struct mm_arg {
    tl_backend *be;
    tl_wmat *w;
    float *x, *y;
    int n;
} mm_arg;
static void run_mm(void *p) {
    mm_arg *a = p;
    a->be->matmul(a->be, a->w, a->x, a->y, a->n);
}

static void bench_matmul(tl_backend *be, const char *label, int rows, int cols, int bits) {
    tl_wdesc d = {0};
    d.name = label;
    d.rows = rows;
    d.cols = cols;
    size_t ng = (size_t)rows * (cols / 64);
    void *scales = NULL, *biases = NULL;
    if (bits) {
        d.kind = TL_W_AFFINE;
        d.bits = bits;
        d.group_size = 64;
        d.dtype = TL_DT_BF16;
        scales = calloc(ng, 2);
        biases = calloc(ng, 2);
        for (size_t i = 0; i < ng; i++) ((uint16_t *)scales)[i] = 0x3c00; /* bf16 ~0.0078 */
        d.scales = scales;
        d.biases = biases;
    } else {
        d.kind = TL_W_DENSE;
        d.dtype = TL_DT_BF16;
    }
    tl_wdesc_finish(&d);
    size_t bytes = d.row_bytes * rows;
    uint8_t *data = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    if (!bits)
        for (size_t i = 0; i < bytes; i += 2) data[i + 1] = 0x3c; /* small bf16 values */
    d.data = data;
    tl_err err = {0};
    tl_wmat *w = NULL;
    if (be->weight_prepare(be, &d, &w, &err)) {
        printf("  %-28s cannot prepare: %s\n", label, err.msg);
        goto out;
    }
    size_t wbytes = bytes + (bits ? 2 * ng * sizeof(float) : 0);
    for (int n = 1; n <= 512; n *= 512) {
        float *x = dev_random(be, (size_t)n * cols), *y = be->alloc(be, (size_t)n * rows,
                                                                    TL_MEM_SCRATCH);
        mm_arg a = {be, w, x, y, n};
        double t = time_median(be, run_mm, &a, n == 1 ? 20 : 3);
        if (n == 1)
            printf("  %-28s decode  n=1   %8.1f us  %7.1f GB/s of weights\n", label, t * 1e6,
                   wbytes / t * 1e-9);
        else
            printf("  %-28s prefill n=%-3d %8.2f ms  %7.1f GFLOP/s\n", label, n, t * 1e3,
                   2.0 * n * rows * cols / t * 1e-9);
        be->free(be, x, (size_t)n * cols, TL_MEM_SCRATCH);
        be->free(be, y, (size_t)n * rows, TL_MEM_SCRATCH);
    }
    be->weight_free(be, w);
out:
    free(data);
    free(scales);
    free(biases);
}

typedef struct att_arg {
    tl_backend *be;
    tl_kv *kv;
    tl_rows *rows;
    float *q, *out;
    int nh, nkv, hd;
} att_arg;
static void run_att(void *p) {
    att_arg *a = p;
    a->be->attention(a->be, a->out, a->q, a->kv, 0, a->rows, a->nh, a->nkv, a->hd, 0.088f);
}

static void bench_attention(tl_backend *be, int nh, int nkv, int hd, int ctx) {
    const int page = 16, pages = ctx / page;
    tl_kv kv = {.n_layers = 1, .kv_dim = nkv * hd, .page_size = page, .n_pages = pages,
                .max_slots = 1, .max_pages_per_slot = pages};
    int32_t *pt = malloc((size_t)pages * sizeof *pt);
    for (int i = 0; i < pages; i++) pt[i] = (int32_t)(((size_t)i * 7) % pages); /* scattered */
    kv.page_table = pt;
    size_t pool = (size_t)pages * page * kv.kv_dim;
    float *k = dev_random(be, pool), *v = dev_random(be, pool);
    kv.k = &k;
    kv.v = &v;
    if (be->kv_sync) be->kv_sync(be, &kv);
    int32_t slot = 0, pos = ctx - 1;
    tl_rows rows = {.n = 1, .slot = &slot, .pos = &pos};
    if (be->rows_upload) be->rows_upload(be, &rows);
    float *q = dev_random(be, (size_t)nh * hd), *out = be->alloc(be, (size_t)nh * hd,
                                                                  TL_MEM_SCRATCH);
    att_arg a = {be, &kv, &rows, q, out, nh, nkv, hd};
    double t = time_median(be, run_att, &a, 20);
    printf("  attention %2d/%d heads x %3d, %5d tokens  %8.1f us  %7.1f GB/s of K+V\n", nh, nkv,
           hd, ctx, t * 1e6, 2.0 * pool * sizeof(float) / t * 1e-9);
    be->free(be, k, pool, TL_MEM_KV);
    be->free(be, v, pool, TL_MEM_KV);
    be->free(be, q, (size_t)nh * hd, TL_MEM_SCRATCH);
    be->free(be, out, (size_t)nh * hd, TL_MEM_SCRATCH);
    free(pt);
}

typedef struct gdn_arg {
    tl_backend *be;
    float *out, *qkv, *a, *b, *alog, *dtb;
    tl_gdn_state *st;
    tl_rows *rows;
} gdn_arg;
static void run_gdn(void *p) {
    gdn_arg *g = p;
    g->be->gdn_rule(g->be, g->out, g->qkv, g->a, g->b, g->alog, g->dtb, g->st, g->rows);
}

static void bench_gdn(tl_backend *be, int T) {
    const int Hk = 16, Hv = 16, dk = 128, dv = 128, K = 4, C = 2 * Hk * dk + Hv * dv;
    tl_gdn_state st = {.max_slots = 1, .conv_dim = C, .conv_k = K, .n_v_heads = Hv,
                       .n_k_heads = Hk, .dk = dk, .dv = dv};
    st.conv = be->alloc(be, (size_t)(K - 1) * C, TL_MEM_STATE);
    st.rec = be->alloc(be, (size_t)Hv * dk * dv, TL_MEM_STATE);
    int32_t *slot = calloc((size_t)T, sizeof *slot), *pos = malloc((size_t)T * sizeof *pos);
    for (int i = 0; i < T; i++) pos[i] = i;
    tl_rows rows = {.n = T, .slot = slot, .pos = pos};
    if (be->rows_upload) be->rows_upload(be, &rows);
    gdn_arg g = {be, be->alloc(be, (size_t)T * Hv * dv, TL_MEM_SCRATCH),
                 dev_random(be, (size_t)T * C), dev_random(be, (size_t)T * Hv),
                 dev_random(be, (size_t)T * Hv), dev_random(be, Hv), dev_random(be, Hv), &st,
                 &rows};
    double t = time_median(be, run_gdn, &g, T == 1 ? 20 : 2);
    printf("  gdn_rule 2B shape, %3d rows of one slot  %9.1f us  %9.0f tok/s (one layer)\n", T,
           t * 1e6, T / t);
    be->free(be, g.out, (size_t)T * Hv * dv, TL_MEM_SCRATCH);
    be->free(be, g.qkv, (size_t)T * C, TL_MEM_SCRATCH);
    be->free(be, g.a, (size_t)T * Hv, TL_MEM_SCRATCH);
    be->free(be, g.b, (size_t)T * Hv, TL_MEM_SCRATCH);
    be->free(be, g.alog, Hv, TL_MEM_SCRATCH);
    be->free(be, g.dtb, Hv, TL_MEM_SCRATCH);
    be->free(be, st.conv, (size_t)(K - 1) * C, TL_MEM_STATE);
    be->free(be, st.rec, (size_t)Hv * dk * dv, TL_MEM_STATE);
    free(slot);
    free(pos);
}

int main(void) {
    tl_err err = {0};
    tl_backend *be = tl_backend_cuda_new(0, &err);
    if (!be) {
        printf("bench_cuda: %s\n", err.msg);
        return 0;
    }
    printf("CUDA backend kernels (correctness: make test-cuda)\n");
    /* Qwen3.5-2B: hidden 2048, MLP 6144; Llama-3.2-3B: hidden 3072, MLP 8192 */
    bench_matmul(be, "q4 g64 2048->6144 (2B up)", 6144, 2048, 4);
    bench_matmul(be, "q4 g64 6144->2048 (2B down)", 2048, 6144, 4);
    bench_matmul(be, "q4 g64 3072->8192 (3B up)", 8192, 3072, 4);
    bench_matmul(be, "q8 g64 2048->6144", 6144, 2048, 8);
    bench_matmul(be, "bf16 2048->6144", 6144, 2048, 0);
    bench_matmul(be, "q4 g64 lm_head 2048->248320", 248320, 2048, 4);
    bench_attention(be, 8, 2, 256, 4096);   /* Qwen3.5-2B full-attention layer */
    bench_attention(be, 24, 8, 128, 4096);  /* Llama-3.2-3B */
    bench_gdn(be, 1);
    bench_gdn(be, 512);
    be->destroy(be);
    return 0;
}
#endif
