/* cpu_backend.c — the "cpu" backend: the op table of backend.h on host memory, run on a
 * persistent thread pool with SIMD kernels chosen at run time (kern_avx512.c, kern_avx2.c,
 * scalar in quant.c).
 *
 * Threads: every op that is big enough is one pool run of a task queue (tl_pool_run_dyn): matmul
 * over (activation chunk, run of 16-row weight blocks), attention over (row block, kv head),
 * Gated DeltaNet over value heads / channel ranges (a task walks the batch rows in order, so a
 * slot's recurrence stays sequential), elementwise and norm ops over ranges. The caller alone can
 * drain any queue, so a worker the OS has preempted (the reference VM is shared) costs at most
 * the task it holds. Small ops run on the calling thread: a pool run costs ~1 µs.
 *
 * Memory: activation scratch (int8 activations, per-thread rows, attention scores) lives in the
 * backend and only grows — at weight_prepare for per-row buffers, on the first call that needs
 * more for the rest — so the steady-state hot path allocates nothing. Repacked weights are
 * counted as TL_MEM_WEIGHTS. Once a weight is repacked (QR16) the backend never reads the file
 * mapping of that tensor again (embed reads the repacked copy too), so the loader may release
 * those pages (tl_st_release) after weight_prepare; see tl_backend_cpu_weight_is_copied.
 *
 * Precision of the integer path (see cpu.h): activations are quantized per weight group to
 * int8 in two levels (x ≈ d·(q1 + q2/254)): matmul error ~5e-5 of max|y|, which keeps
 * end-to-end logits within the 1e-3 bar. One level is twice as fast in prefill but its error is
 * ~1-2% of max|y| on activations with outliers (test_kernels prints both); TALLOW_CPU_XQ=1 opts
 * into it, TALLOW_CPU_XQ=2 is the default. */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_gdn.h"
#include "backend/ref/ref_gdn.h"

typedef struct cpu_ctx {
    tl_pool *pool;
    int nth;
    const tl_cpu_kern *k;
    int xq_levels;            /* activation levels: 2 (default) or 1 (TALLOW_CPU_XQ=1) */
    /* per-thread float scratch (rows of a matrix, q/k/v copies): nth * tscratch_n floats */
    float *tscratch;
    size_t tscratch_n;
    /* int8 activations */
    int8_t *xq, *xq2;
    float *xd, *xs;
    int32_t *xz;              /* 2 per group */
    size_t xq_cap, xg_cap;    /* elements of xq/xq2, groups of xd/xs/xz */
    int flash;                /* blocked attention for prefill (TALLOW_CPU_FLASH=0: off) */
    int *ints;                /* attention row blocks */
    size_t ints_cap;
    tl_cpu_arena arena;       /* small weights and per-layer state, in huge pages (cpu.h) */
} cpu_ctx;

static cpu_ctx *ctx_of(tl_backend *be) { return (cpu_ctx *)be->ctx; }

static float *tscratch(cpu_ctx *c, int ith) { return c->tscratch + (size_t)ith * c->tscratch_n; }

/* Every threaded op is a task queue: threads take [lo, hi) ranges of `chunk` items from an
 * atomic counter until none is left, so the caller alone can finish any op (tl_pool_run_dyn)
 * and a worker waiting for a CPU on the shared VM never stalls it. */
static int task_take(_Atomic int *next, size_t n, size_t chunk, size_t *lo, size_t *hi) {
    size_t t = (size_t)atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
    *lo = t * chunk;
    if (*lo >= n) return 0;
    *hi = *lo + chunk < n ? *lo + chunk : n;
    return 1;
}

/* About 4 tasks per thread, a multiple of `align` items. */
static size_t task_chunk(size_t n, int nth, size_t align) {
    size_t c = (n + (size_t)(4 * nth) - 1) / (size_t)(4 * nth);
    c = (c + align - 1) / align * align;
    return c ? c : align;
}

/* Grow the per-thread scratch to at least n floats each (called on the issuing thread). */
static int tscratch_reserve(cpu_ctx *c, size_t n) {
    if (n <= c->tscratch_n) return 0;
    n = (n + 15) & ~(size_t)15;
    float *p = tl_alloc(n * (size_t)c->nth * sizeof(float), TL_MEM_SCRATCH);
    if (!p) return -TL_ENOMEM;
    if (c->tscratch) tl_free(c->tscratch, c->tscratch_n * (size_t)c->nth * sizeof(float), TL_MEM_SCRATCH);
    c->tscratch = p;
    c->tscratch_n = n;
    return 0;
}

static int ints_reserve(cpu_ctx *c, size_t n) {
    if (n <= c->ints_cap) return 0;
    size_t cap = n + n / 2;
    int *p = tl_alloc(cap * sizeof(int), TL_MEM_SCRATCH);
    if (!p) return -TL_ENOMEM;
    tl_free(c->ints, c->ints_cap * sizeof(int), TL_MEM_SCRATCH);
    c->ints = p;
    c->ints_cap = cap;
    return 0;
}

static int xq_reserve(cpu_ctx *c, size_t n_elems, size_t n_groups) {
    if (n_elems > c->xq_cap) {
        size_t cap = n_elems + n_elems / 2;
        int8_t *a = tl_alloc(cap, TL_MEM_SCRATCH), *b = tl_alloc(cap, TL_MEM_SCRATCH);
        if (!a || !b) {
            tl_free(a, cap, TL_MEM_SCRATCH);
            tl_free(b, cap, TL_MEM_SCRATCH);
            return -TL_ENOMEM;
        }
        tl_free(c->xq, c->xq_cap, TL_MEM_SCRATCH);
        tl_free(c->xq2, c->xq_cap, TL_MEM_SCRATCH);
        c->xq = a;
        c->xq2 = b;
        c->xq_cap = cap;
    }
    if (n_groups > c->xg_cap) {
        size_t cap = n_groups + n_groups / 2;
        float *a = tl_alloc(cap * sizeof(float), TL_MEM_SCRATCH), *b = tl_alloc(cap * sizeof(float), TL_MEM_SCRATCH);
        int32_t *z = tl_alloc(cap * 2 * sizeof(int32_t), TL_MEM_SCRATCH);
        if (!a || !b || !z) {
            tl_free(a, cap * sizeof(float), TL_MEM_SCRATCH);
            tl_free(b, cap * sizeof(float), TL_MEM_SCRATCH);
            tl_free(z, cap * 2 * sizeof(int32_t), TL_MEM_SCRATCH);
            return -TL_ENOMEM;
        }
        tl_free(c->xd, c->xg_cap * sizeof(float), TL_MEM_SCRATCH);
        tl_free(c->xs, c->xg_cap * sizeof(float), TL_MEM_SCRATCH);
        tl_free(c->xz, c->xg_cap * 2 * sizeof(int32_t), TL_MEM_SCRATCH);
        c->xd = a;
        c->xs = b;
        c->xz = z;
        c->xg_cap = cap;
    }
    return 0;
}

/* ---- memory ops ------------------------------------------------------------------------------- */
/* Recurrent state between 256 KiB and 8 MiB (one layer's Gated DeltaNet state: 1-2 MiB, read
 * and written every token) comes from the huge-page arena; bigger buffers get their own 2 MiB
 * pages. */
static int arena_kind(size_t bytes, tl_mem_kind kind) {
    return kind == TL_MEM_STATE && bytes >= ((size_t)256 << 10) && bytes < ((size_t)8 << 20);
}

static float *cpu_alloc(tl_backend *be, size_t n, tl_mem_kind kind) {
    size_t bytes;
    if (!tl_mul_ok(n, sizeof(float), &bytes)) return NULL;
    if (arena_kind(bytes, kind)) {
        float *p = tl_cpu_arena_get(&ctx_of(be)->arena, bytes, kind);
        if (p) return p;
    }
    return bytes >= ((size_t)8 << 20) ? tl_alloc_huge(bytes, kind) : tl_alloc(bytes, kind);
}

static void cpu_free(tl_backend *be, void *p, size_t n, tl_mem_kind kind) {
    if (p && tl_cpu_arena_owns(&ctx_of(be)->arena, p)) {
        tl_mem_add(kind, -(int64_t)((n * sizeof(float) + 63) & ~(size_t)63));
        return;
    }
    tl_free(p, n * sizeof(float), kind);
}

static void cpu_copy(tl_backend *be, void *dst, const void *src, size_t bytes) {
    if (dst != src && bytes) memmove(dst, src, bytes);
}

static void cpu_sync(tl_backend *be) {}

static float *cpu_vec_upload(tl_backend *be, const float *host, size_t n) {
    float *p = cpu_alloc(be, n, TL_MEM_WEIGHTS);
    if (p && n) memcpy(p, host, n * sizeof(float));
    return p;
}

/* ---- weights ---------------------------------------------------------------------------------- */
static int cpu_weight_prepare(tl_backend *be, const tl_wdesc *d, tl_wmat **out, tl_err *err) {
    cpu_ctx *c = ctx_of(be);
    *out = NULL;
    const char *name = d->name ? d->name : "(unnamed)";
    if (d->rows <= 0 || d->cols <= 0 || !d->data)
        return tl_err_set(err, TL_EINVAL, "cpu backend: %s: bad shape [%d, %d]", name, d->rows, d->cols);
    tl_wmat *w = calloc(1, sizeof *w);
    if (!w) return tl_err_set(err, TL_ENOMEM, "cpu backend: %s: out of memory", name);
    w->rows = d->rows;
    w->cols = d->cols;
    w->desc = *d;
    if (d->kind == TL_W_DENSE) {
        if (d->dtype != TL_DT_F32 && d->dtype != TL_DT_F16 && d->dtype != TL_DT_BF16) {
            free(w);
            return tl_err_set(err, TL_EUNSUP, "cpu backend: %s: dense weights of dtype %s", name,
                              tl_dtype_name(d->dtype));
        }
        w->kind = CPU_W_DENSE;
    } else {
        if (d->bits < 2 || d->bits > 8 || d->bits == 7 || d->group_size <= 0 ||
            d->cols % d->group_size != 0 || !d->scales || !d->biases ||
            (d->dtype != TL_DT_F32 && d->dtype != TL_DT_F16 && d->dtype != TL_DT_BF16)) {
            free(w);
            return tl_err_set(err, TL_EUNSUP,
                              "cpu backend: %s: affine weights with bits %d, group size %d, %d columns, scales %s",
                              name, d->bits, d->group_size, d->cols, tl_dtype_name(d->dtype));
        }
        const char *e = getenv("TALLOW_CPU_REPACK");
        int repack = !(e && strcmp(e, "0") == 0);
        if (repack && (d->bits == 4 || d->bits == 8) &&
            (d->group_size == 32 || d->group_size == 64 || d->group_size == 128)) {
            int rc = tl_cpu_qr16_pack(w, d, &c->arena, err);
            if (rc < 0) {
                free(w);
                return rc;
            }
        } else {
            w->kind = CPU_W_GENERIC;
        }
    }
    if (tscratch_reserve(c, (size_t)d->cols) < 0) {
        be->weight_free(be, w);
        return tl_err_set(err, TL_ENOMEM, "cpu backend: %s: out of memory for scratch rows", name);
    }
    *out = w;
    return 0;
}

static void cpu_weight_free(tl_backend *be, tl_wmat *w) {
    if (!w) return;
    tl_cpu_qr16_free(w);
    free(w);
}

/* ---- matmul ----------------------------------------------------------------------------------- */
#define MM_MAX 8 /* weights of one fused call */

typedef struct {
    cpu_ctx *c;
    int nw;                  /* weights sharing the input x */
    const tl_wmat *w[MM_MAX];
    float *y[MM_MAX];
    const float *x;
    int n;
    int levels;
    tl_xq xq;
    /* QR16 task grid: per activation chunk, weight i has tasks [toff[i], toff[i+1]) of rbchunk
     * row blocks; ntasks = ceil(n / mchunk) * toff[nw] */
    int mchunk, rbchunk, toff[MM_MAX + 1], ntasks;
    _Atomic int next;
    _Atomic int xnext; /* activation quantization: rows in chunks of xchunk */
    size_t xchunk;
} mm_job;

static void job_xq(void *p, int ith, int nth) {
    mm_job *j = p;
    size_t lo, hi;
    while (task_take(&j->xnext, (size_t)j->n, j->xchunk, &lo, &hi))
        j->c->k->xq_rows(j->x, j->w[0]->cols, j->w[0]->gs, j->xq.z, (int)lo, (int)hi, j->c->xq,
                         j->levels == 2 ? j->c->xq2 : NULL, j->c->xd, j->c->xs, j->c->xz);
}

/* Matmul work is handed out dynamically: tasks of (activation-row chunk, weight, run of row
 * blocks) taken from an atomic counter, so a thread that the OS preempts (this VM is shared)
 * delays only its current task instead of a static half of the matrix. Activation chunks keep
 * their int8 copy in L2 (~256 KiB); a run of row blocks is then read once per chunk and reused
 * from L1 across the chunk's M-tiles. Weights that share an input (q/k/v, gate/up, the Gated
 * DeltaNet projections) are one task grid: the input is quantized once, there is one pool run
 * and one tail instead of one per matrix. */
static void job_qr16(void *p, int ith, int nth) {
    mm_job *j = p;
    const tl_cpu_kern *k = j->c->k;
    const int per = j->toff[j->nw];
    for (;;) {
        int t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->ntasks) break;
        int mc = t / per, rt = t % per, i = 0;
        while (rt >= j->toff[i + 1]) i++;
        rt -= j->toff[i];
        const tl_wmat *w = j->w[i];
        int m0 = mc * j->mchunk, m1 = TL_MIN(j->n, m0 + j->mchunk);
        int rb0 = rt * j->rbchunk, rb1 = TL_MIN(w->rblocks, rb0 + j->rbchunk);
        k->qr16_mm(w, &j->xq, j->y[i], w->rows, m0, m1, rb0, rb1);
    }
}

/* Dense / generic weights: tasks of 16-row runs from the atomic counter (one weight). */
static void job_dense(void *p, int ith, int nth) {
    mm_job *j = p;
    for (;;) {
        int t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        int r0 = t * 16;
        if (r0 >= j->w[0]->rows) break;
        j->c->k->dense_mm(j->w[0], j->x, j->y[0], j->w[0]->rows, j->n, r0, TL_MIN(j->w[0]->rows, r0 + 16),
                          tscratch(j->c, ith));
    }
}

static void matmul_dense(cpu_ctx *c, const tl_wmat *w, const float *x, float *y, int n) {
    mm_job j = {.c = c, .nw = 1, .w = {w}, .y = {y}, .x = x, .n = n};
    atomic_store(&j.next, 0);
    if ((size_t)w->rows * w->cols * n < 65536) job_dense(&j, 0, 1);
    else tl_pool_run_dyn(c->pool, job_dense, &j);
}

/* Whether weights can share one QR16 task grid: same input width, group size and bits. */
static int qr16_fusable(const tl_wmat *const *w, int nw) {
    if (nw < 1 || nw > MM_MAX) return 0;
    for (int i = 0; i < nw; i++)
        if (w[i]->kind != CPU_W_QR16 || w[i]->cols != w[0]->cols || w[i]->gs != w[0]->gs ||
            w[i]->bits != w[0]->bits)
            return 0;
    return 1;
}

static void cpu_matmul_n(tl_backend *be, int nw, const tl_wmat *const *w, const float *x, float *const *y,
                         int n) {
    cpu_ctx *c = ctx_of(be);
    if (n <= 0 || nw <= 0) return;
    if (!qr16_fusable(w, nw)) {
        for (int i = 0; i < nw; i++) { /* one at a time (a single QR16 weight is fusable) */
            if (w[i]->kind == CPU_W_QR16) cpu_matmul_n(be, 1, &w[i], x, &y[i], n);
            else matmul_dense(c, w[i], x, y[i], n);
        }
        return;
    }
    mm_job j = {.c = c, .nw = nw, .x = x, .n = n};
    for (int i = 0; i < nw; i++) {
        j.w[i] = w[i];
        j.y[i] = y[i];
    }
    const tl_wmat *w0 = w[0];
    j.levels = c->xq_levels;
    size_t groups = (size_t)n * w0->groups;
    if (xq_reserve(c, (size_t)n * w0->cols, groups) < 0) {
        /* Out of memory for the activation copy: the dense path (slow, allocates nothing). */
        for (int i = 0; i < nw; i++) matmul_dense(c, w[i], x, y[i], n);
        return;
    }
    j.xq = (tl_xq){.n = n, .cols = w0->cols, .gs = w0->gs, .groups = w0->groups, .q = c->xq,
                   .q2 = j.levels == 2 ? c->xq2 : NULL, .d = c->xd, .s = c->xs, .zs = c->xz,
                   .z = 1 << (w0->bits - 1)};
    atomic_store(&j.xnext, 0);
    j.xchunk = (size_t)n;
    if ((size_t)n * w0->cols >= 65536 && c->nth > 1) {
        j.xchunk = task_chunk((size_t)n, c->nth, 1);
        tl_pool_run_dyn(c->pool, job_xq, &j);
    } else {
        job_xq(&j, 0, 1);
    }
    j.mchunk = TL_MAX(4, (int)((256u << 10) / (unsigned)w0->cols) & ~3);
    if (j.mchunk > n) j.mchunk = n;
    int nmc = (n + j.mchunk - 1) / j.mchunk, rblocks = 0;
    for (int i = 0; i < nw; i++) rblocks += w[i]->rblocks;
    /* about 8 tasks per thread, runs of at least one row block */
    int want = TL_MAX(1, 8 * c->nth / nmc);
    j.rbchunk = TL_MAX(1, (rblocks + want - 1) / want);
    j.toff[0] = 0;
    for (int i = 0; i < nw; i++) j.toff[i + 1] = j.toff[i] + (w[i]->rblocks + j.rbchunk - 1) / j.rbchunk;
    j.ntasks = nmc * j.toff[nw];
    atomic_store(&j.next, 0);
    if (j.ntasks == 1) job_qr16(&j, 0, 1); /* tiny matrix: no need to wake anyone */
    else tl_pool_run_dyn(c->pool, job_qr16, &j);
}

static void cpu_matmul(tl_backend *be, const tl_wmat *w, const float *x, float *y, int n) {
    cpu_matmul_n(be, 1, &w, x, &y, n);
}

static void cpu_embed(tl_backend *be, const tl_wmat *w, const int32_t *ids, float *y, int n) {
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * w->cols;
        if (ids[i] < 0 || ids[i] >= w->rows) memset(row, 0, (size_t)w->cols * sizeof(float));
        else tl_cpu_dequant_row(w, ids[i], row);
    }
}

/* ---- elementwise and row ops ------------------------------------------------------------------ */
#define CPU_PAR_MIN 32768 /* elements below which an op runs on the calling thread */

typedef struct {
    cpu_ctx *c;
    float *y;
    const float *a, *b;
    size_t n;
    int op; /* 0 swiglu, 1 add, 2 mul_sigmoid */
    _Atomic int next;
    size_t chunk;
} ew_job;

static void ew_range(ew_job *j, size_t lo, size_t hi) {
    switch (j->op) {
    case 0: j->c->k->swiglu(j->y + lo, j->a + lo, j->b + lo, hi - lo); break;
    case 1:
        for (size_t i = lo; i < hi; i++) j->y[i] += j->a[i];
        break;
    default: j->c->k->mul_sigmoid(j->y + lo, j->a + lo, hi - lo); break;
    }
}

static void job_ew(void *p, int ith, int nth) {
    ew_job *j = p;
    size_t lo, hi;
    while (task_take(&j->next, j->n, j->chunk, &lo, &hi)) ew_range(j, lo, hi);
}

static void run_ew(cpu_ctx *c, ew_job *j) {
    if (j->n >= CPU_PAR_MIN && c->nth > 1) {
        atomic_store(&j->next, 0);
        j->chunk = task_chunk(j->n, c->nth, 64);
        tl_pool_run_dyn(c->pool, job_ew, j);
    } else {
        ew_range(j, 0, j->n);
    }
}

static void cpu_swiglu(tl_backend *be, float *y, const float *gate, const float *up, size_t n) {
    ew_job j = {.c = ctx_of(be), .y = y, .a = gate, .b = up, .n = n, .op = 0};
    run_ew(ctx_of(be), &j);
}

static void cpu_add(tl_backend *be, float *y, const float *x, size_t n) {
    ew_job j = {.c = ctx_of(be), .y = y, .a = x, .b = NULL, .n = n, .op = 1};
    run_ew(ctx_of(be), &j);
}

static void cpu_mul_sigmoid(tl_backend *be, float *y, const float *g, size_t n) {
    ew_job j = {.c = ctx_of(be), .y = y, .a = g, .b = NULL, .n = n, .op = 2};
    run_ew(ctx_of(be), &j);
}

typedef struct {
    cpu_ctx *c;
    float *y;
    const float *x, *w, *z;
    int rows, dim, heads;
    float eps;
    _Atomic int next;
    size_t chunk;
} norm_job;

static void norm_rows(norm_job *j, int r0, int r1) {
    const tl_cpu_kern *k = j->c->k;
    for (int r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * j->dim;
        float *y = j->y + (size_t)r * j->dim;
        float ss = k->dot(x, x, j->dim);
        float s = 1.f / sqrtf(ss / (float)j->dim + j->eps);
        if (j->w)
            for (int i = 0; i < j->dim; i++) y[i] = x[i] * s * j->w[i];
        else
            for (int i = 0; i < j->dim; i++) y[i] = x[i] * s;
    }
}

static void job_norm(void *p, int ith, int nth) {
    norm_job *j = p;
    size_t lo, hi;
    while (task_take(&j->next, (size_t)j->rows, j->chunk, &lo, &hi)) norm_rows(j, (int)lo, (int)hi);
}

static void cpu_rmsnorm(tl_backend *be, float *y, const float *x, const float *w, int rows, int dim,
                        float eps) {
    cpu_ctx *c = ctx_of(be);
    norm_job j = {.c = c, .y = y, .x = x, .w = w, .rows = rows, .dim = dim, .eps = eps};
    if ((size_t)rows * dim >= CPU_PAR_MIN && rows >= c->nth && c->nth > 1) {
        atomic_store(&j.next, 0);
        j.chunk = task_chunk((size_t)rows, c->nth, 1);
        tl_pool_run_dyn(c->pool, job_norm, &j);
    } else {
        norm_rows(&j, 0, rows);
    }
}

/* Gated RMSNorm: rows*heads vectors of dim; o = rmsnorm(o)*w * silu(z). */
static void gnorm_rows(norm_job *j, int v0, int v1) {
    const tl_cpu_kern *k = j->c->k;
    for (int v = v0; v < v1; v++) {
        float *o = j->y + (size_t)v * j->dim;
        const float *z = j->z + (size_t)v * j->dim;
        float s = 1.f / sqrtf(k->dot(o, o, j->dim) / (float)j->dim + j->eps);
        for (int i = 0; i < j->dim; i++) o[i] = o[i] * s * (j->w ? j->w[i] : 1.f);
        k->swiglu(o, z, o, (size_t)j->dim);
    }
}

static void job_gnorm(void *p, int ith, int nth) {
    norm_job *j = p;
    size_t lo, hi;
    while (task_take(&j->next, (size_t)j->rows * j->heads, j->chunk, &lo, &hi)) gnorm_rows(j, (int)lo, (int)hi);
}

static void cpu_gated_rmsnorm(tl_backend *be, float *o, const float *z, const float *w, int rows,
                              int n_heads, int dim, float eps) {
    cpu_ctx *c = ctx_of(be);
    norm_job j = {.c = c, .y = o, .z = z, .w = w, .rows = rows, .heads = n_heads, .dim = dim, .eps = eps};
    if ((size_t)rows * n_heads * dim >= CPU_PAR_MIN && c->nth > 1) {
        atomic_store(&j.next, 0);
        j.chunk = task_chunk((size_t)rows * n_heads, c->nth, 1);
        tl_pool_run_dyn(c->pool, job_gnorm, &j);
    } else {
        gnorm_rows(&j, 0, rows * n_heads);
    }
}

static void cpu_rope(tl_backend *be, float *x, const tl_rows *rows, int n_heads, int head_dim,
                     int rot_dim, const float *inv_freq) {
    int half = rot_dim / 2;
    float cs[512], sn[512];
    for (int r = 0; r < rows->n; r++) {
        float pos = (float)rows->pos[r];
        for (int i0 = 0; i0 < half; i0 += 512) {
            int i1 = TL_MIN(half, i0 + 512);
            for (int i = i0; i < i1; i++) {
                float t = pos * inv_freq[i];
                cs[i - i0] = cosf(t);
                sn[i - i0] = sinf(t);
            }
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((size_t)r * n_heads + h) * head_dim;
                for (int i = i0; i < i1; i++) {
                    float a = v[i], b = v[i + half];
                    v[i] = a * cs[i - i0] - b * sn[i - i0];
                    v[i + half] = b * cs[i - i0] + a * sn[i - i0];
                }
            }
        }
    }
}

static void cpu_copy_rows(tl_backend *be, float *dst, int dst_stride, int dst_off, const float *src,
                          int src_stride, int src_off, int rows, int width) {
    for (int r = 0; r < rows; r++)
        memmove(dst + (size_t)r * dst_stride + dst_off, src + (size_t)r * src_stride + src_off,
                (size_t)width * sizeof(float));
}

/* ---- KV cache and attention ------------------------------------------------------------------- */
static float *kv_at(const tl_kv *kv, float *base, int slot, int pos) {
    int pi = pos / kv->page_size;
    if (slot < 0 || slot >= kv->max_slots || pi < 0 || pi >= kv->max_pages_per_slot) return NULL;
    int32_t page = kv->page_table[(size_t)slot * kv->max_pages_per_slot + pi];
    if (page < 0 || page >= kv->n_pages) return NULL;
    return base + ((size_t)page * kv->page_size + (size_t)(pos % kv->page_size)) * kv->kv_dim;
}

static void cpu_kv_store(tl_backend *be, tl_kv *kv, int layer, const tl_rows *rows, const float *k,
                         const float *v) {
    for (int r = 0; r < rows->n; r++) {
        float *kd = kv_at(kv, kv->k[layer], rows->slot[r], rows->pos[r]);
        float *vd = kv_at(kv, kv->v[layer], rows->slot[r], rows->pos[r]);
        if (!kd || !vd) continue; /* no page: the engine's invariant was broken; write nothing */
        memcpy(kd, k + (size_t)r * kv->kv_dim, (size_t)kv->kv_dim * sizeof(float));
        memcpy(vd, v + (size_t)r * kv->kv_dim, (size_t)kv->kv_dim * sizeof(float));
    }
}

typedef struct {
    cpu_ctx *c;
    float *out;
    const float *q;
    const tl_kv *kv;
    int layer;
    const tl_rows *rows;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    const int *blk; /* block b = rows [blk[b], blk[b+1]) */
    int ntasks;
    _Atomic int next;
} attn_job;

/* One (row, head): scores over positions 0..pos page by page, softmax, weighted sum of V. The
 * page table is read once per page, not per position (kv_at divides by the page size). */
static void attn_one(attn_job *j, int r, int h, float *sc) {
    const tl_cpu_kern *k = j->c->k;
    const tl_kv *kv = j->kv;
    int D = j->head_dim, group = j->n_heads / j->n_kv_heads, kvh = h / group, ps = kv->page_size;
    const float *q = j->q + ((size_t)r * j->n_heads + h) * D;
    float *o = j->out + ((size_t)r * j->n_heads + h) * D;
    int slot = j->rows->slot[r], npos = j->rows->pos[r] + 1;
    float mx = -INFINITY;
    for (int t0 = 0; t0 < npos; t0 += ps) {
        const float *kp = kv_at(kv, kv->k[j->layer], slot, t0); /* the page's first row */
        for (int t = t0; t < TL_MIN(npos, t0 + ps); t++) {
            const float *kt = kp ? kp + (size_t)(t - t0) * kv->kv_dim : NULL;
            float s = kt ? k->dot(q, kt + (size_t)kvh * D, D) * j->scale : -INFINITY;
            sc[t] = s;
            mx = s > mx ? s : mx;
        }
    }
    float sum = 0.f;
    for (int t = 0; t < npos; t++) {
        float e = sc[t] == -INFINITY ? 0.f : expf(sc[t] - mx);
        sc[t] = e;
        sum += e;
    }
    memset(o, 0, (size_t)D * sizeof(float));
    float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int t0 = 0; t0 < npos; t0 += ps) {
        const float *vp = kv_at(kv, kv->v[j->layer], slot, t0);
        if (!vp) continue;
        for (int t = t0; t < TL_MIN(npos, t0 + ps); t++)
            if (sc[t] != 0.f) k->axpy(o, sc[t] * inv, vp + (size_t)(t - t0) * kv->kv_dim + (size_t)kvh * D, D);
    }
}

/* Rows of the batch in blocks: consecutive rows of one slot, at most 16 query vectors (rows x
 * q heads per kv head) so that one block fills the lanes of attn_block. Decode rows (blocks of
 * one row) go one query at a time: with only G lanes busy the dot-product path is faster. */
typedef struct {
    attn_job *j;
    int kvh, slot;
} attn_rowctx;

static const float *attn_row(const void *p, int which, int t) {
    const attn_rowctx *c = p;
    const tl_kv *kv = c->j->kv;
    float *base = which ? kv->v[c->j->layer] : kv->k[c->j->layer];
    return kv_at(kv, base, c->slot, t) + (size_t)c->kvh * c->j->head_dim;
}

static void job_attn(void *p, int ith, int nth) {
    attn_job *j = p;
    float *sc = tscratch(j->c, ith);
    int G = j->n_heads / j->n_kv_heads, D = j->head_dim;
    for (;;) {
        int t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->ntasks) break;
        int b = t / j->n_kv_heads, kvh = t % j->n_kv_heads;
        int r0 = j->blk[b], r1 = j->blk[b + 1];
        if (r1 - r0 < 2 || !j->c->k->attn_block || !j->c->flash) {
            for (int r = r0; r < r1; r++)
                for (int g = 0; g < G; g++) attn_one(j, r, kvh * G + g, sc);
            continue;
        }
        float *outs[16];
        const float *qs[16];
        int qpos[16], nq = 0;
        for (int r = r0; r < r1; r++)
            for (int g = 0; g < G; g++, nq++) {
                size_t off = ((size_t)r * j->n_heads + (size_t)kvh * G + g) * D;
                outs[nq] = j->out + off;
                qs[nq] = j->q + off;
                qpos[nq] = j->rows->pos[r];
            }
        attn_rowctx rc = {j, kvh, j->rows->slot[r0]};
        j->c->k->attn_block(outs, qs, qpos, nq, D, j->scale, attn_row, &rc, sc);
    }
}

static int rows_pages_ok(const tl_kv *kv, int layer, const tl_rows *rows, int r) {
    for (int t = 0; t <= rows->pos[r]; t += kv->page_size)
        if (!kv_at(kv, kv->k[layer], rows->slot[r], t)) return 0;
    return 1;
}

static void cpu_attention(tl_backend *be, float *out, const float *q, const tl_kv *kv, int layer,
                          const tl_rows *rows, int n_heads, int n_kv_heads, int head_dim, float scale) {
    cpu_ctx *c = ctx_of(be);
    if (rows->n <= 0) return;
    int maxpos = 0, G = n_heads / n_kv_heads;
    for (int r = 0; r < rows->n; r++) maxpos = TL_MAX(maxpos, rows->pos[r] + 1);
    size_t need = TL_MAX((size_t)maxpos, (size_t)32 * head_dim + 512);
    if (tscratch_reserve(c, need) < 0 || ints_reserve(c, (size_t)rows->n + 1) < 0) {
        memset(out, 0, (size_t)rows->n * n_heads * head_dim * sizeof(float));
        return;
    }
    attn_job j = {.c = c, .out = out, .q = q, .kv = kv, .layer = layer, .rows = rows, .n_heads = n_heads,
                  .n_kv_heads = n_kv_heads, .head_dim = head_dim, .scale = scale};
    /* Blocks. A row whose slot misses a page (an engine bug) goes alone: attn_one skips the
     * missing positions instead of reading through a bad pointer. */
    int nb = 0;
    for (int r = 0; r < rows->n;) {
        c->ints[nb++] = r;
        int e = r + 1;
        if (G <= 16 && rows_pages_ok(kv, layer, rows, r))
            while (e < rows->n && rows->slot[e] == rows->slot[r] && (e - r + 1) * G <= 16 &&
                   rows_pages_ok(kv, layer, rows, e))
                e++;
        r = e;
    }
    c->ints[nb] = rows->n;
    j.blk = c->ints;
    j.ntasks = nb * n_kv_heads;
    atomic_store(&j.next, 0);
    if (j.ntasks == 1) job_attn(&j, 0, 1);
    else tl_pool_run_dyn(c->pool, job_attn, &j);
}

/* ---- Gated DeltaNet --------------------------------------------------------------------------- */
typedef struct {
    cpu_ctx *c;
    float *x, *out;
    const float *w, *qkv, *a, *b, *a_log, *dt_bias;
    tl_gdn_state *st;
    const tl_rows *rows;
    _Atomic int next; /* gdn_rule: next value head to take; gdn_conv: next channel chunk */
    size_t chunk;
} gdn_job;


/* Channels [lo, hi) of every row: the kernel is copied tap-major into thread scratch, then each
 * run of one slot's rows goes through conv_silu (rows of a slot are consecutive, in order). */
static void job_gdn_conv(void *p, int ith, int nth) {
    gdn_job *j = p;
    tl_gdn_state *st = j->st;
    const int C = st->conv_dim, K = st->conv_k;
    float *wt = tscratch(j->c, ith);
    size_t lo, hi;
    while (task_take(&j->next, (size_t)C, j->chunk, &lo, &hi)) {
        const int n = (int)(hi - lo);
        for (int i = 0; i < K; i++)
            for (int c = 0; c < n; c++) wt[(size_t)i * n + c] = j->w[(size_t)(lo + c) * K + i];
        for (int r0 = 0; r0 < j->rows->n;) {
            int r1 = r0 + 1, slot = j->rows->slot[r0];
            while (r1 < j->rows->n && j->rows->slot[r1] == slot) r1++;
            j->c->k->conv_silu(j->x + (size_t)r0 * C + lo, C, r1 - r0, wt, K, n,
                               st->conv + (size_t)slot * (K - 1) * C + lo, C, wt + (size_t)K * n);
            r0 = r1;
        }
    }
}

static void cpu_gdn_conv(tl_backend *be, float *x, const float *w, tl_gdn_state *st, const tl_rows *rows) {
    cpu_ctx *c = ctx_of(be);
    gdn_job j = {.c = c, .x = x, .w = w, .st = st, .rows = rows};
    atomic_store(&j.next, 0);
    j.chunk = TL_MIN((size_t)st->conv_dim, (size_t)1024);
    if (tscratch_reserve(c, j.chunk * (size_t)(2 * st->conv_k)) < 0) return;
    if ((size_t)rows->n * st->conv_dim >= CPU_PAR_MIN / 4 && c->nth > 1) {
        j.chunk = TL_MIN(j.chunk, task_chunk((size_t)st->conv_dim, c->nth, 16));
        tl_pool_run_dyn(c->pool, job_gdn_conv, &j);
    } else {
        job_gdn_conv(&j, 0, 1);
    }
}

static void job_gdn_rule(void *p, int ith, int nth) {
    gdn_job *j = p;
    const tl_cpu_kern *k = j->c->k;
    tl_gdn_state *st = j->st;
    int Hv = st->n_v_heads, Hk = st->n_k_heads, dk = st->dk, dv = st->dv;
    int rep = Hv / Hk, C = st->conv_dim;
    float *qn = tscratch(j->c, ith), *kn = qn + dk, *m = kn + dk;
    for (;;) { /* one value head per task, through every row in order */
        int h = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (h >= Hv) break;
        for (int r = 0; r < j->rows->n; r++) {
            const float *row = j->qkv + (size_t)r * C;
            int kh = h / rep;
            const float *q = row + (size_t)kh * dk, *kk = row + (size_t)Hk * dk + (size_t)kh * dk;
            const float *v = row + (size_t)2 * Hk * dk + (size_t)h * dv;
            float qs = 1.f / sqrtf(k->dot(q, q, dk) + 1e-6f) / sqrtf((float)dk);
            float ks = 1.f / sqrtf(k->dot(kk, kk, dk) + 1e-6f);
            for (int i = 0; i < dk; i++) {
                qn[i] = q[i] * qs;
                kn[i] = kk[i] * ks;
            }
            float beta = tl_gdn_sigmoid(j->b[(size_t)r * Hv + h]);
            float g = -expf(j->a_log[h]) * tl_gdn_softplus(j->a[(size_t)r * Hv + h] + j->dt_bias[h]);
            float alpha = expf(g);
            float *S = st->rec + ((size_t)j->rows->slot[r] * Hv + h) * (size_t)dk * dv;
            float *o = j->out + (size_t)r * Hv * dv + (size_t)h * dv;
            k->gdn_step(S, dk, dv, alpha, beta, kn, qn, v, o, m);
        }
    }
}

/* Prefill runs of one slot go through the chunked form (cpu_gdn_avx512.c, by the Qwen3.5 work):
 * it touches each head state twice per chunk instead of twice per token. */
static void job_gdn_chunked(void *p, int ith, int nth) {
    gdn_job *j = p;
    for (;;) {
        int h = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (h >= j->st->n_v_heads) break;
        tl_cpu_gdn_rule_chunked(j->out, j->qkv, j->a, j->b, j->a_log, j->dt_bias, j->st, j->rows, TL_GDN_CHUNK,
                                h, h + 1, tscratch(j->c, ith));
    }
}

static void cpu_gdn_rule(tl_backend *be, float *out, const float *qkv, const float *a, const float *b,
                         const float *a_log, const float *dt_bias, tl_gdn_state *st, const tl_rows *rows) {
    cpu_ctx *c = ctx_of(be);
    if (rows->n <= 0) return;
    gdn_job j = {.c = c, .out = out, .qkv = qkv, .a = a, .b = b, .a_log = a_log, .dt_bias = dt_bias,
                 .st = st, .rows = rows};
    int run = 1, longest = 1;
    for (int r = 1; r < rows->n; r++) {
        run = rows->slot[r] == rows->slot[r - 1] ? run + 1 : 1;
        longest = TL_MAX(longest, run);
    }
    if (longest >= TL_GDN_CHUNK_MIN && strcmp(c->k->isa, "avx512") == 0 && tl_cpu_gdn_chunked_ok(st) &&
        tscratch_reserve(c, tl_cpu_gdn_chunk_scratch_floats(TL_GDN_CHUNK, st->dk, st->dv)) == 0) {
        atomic_store(&j.next, 0);
        tl_pool_run_dyn(c->pool, job_gdn_chunked, &j);
        return;
    }
    if (tscratch_reserve(c, (size_t)2 * st->dk + st->dv) < 0) return;
    atomic_store(&j.next, 0);
    tl_pool_run_dyn(c->pool, job_gdn_rule, &j);
}

static void cpu_gdn_state_clear(tl_backend *be, tl_gdn_state *st, int slot) {
    if (slot < 0 || slot >= st->max_slots) return;
    size_t cn = (size_t)(st->conv_k - 1) * st->conv_dim, rn = (size_t)st->n_v_heads * st->dk * st->dv;
    memset(st->conv + (size_t)slot * cn, 0, cn * sizeof(float));
    memset(st->rec + (size_t)slot * rn, 0, rn * sizeof(float));
}

/* ---- construction ----------------------------------------------------------------------------- */
static void cpu_destroy(tl_backend *be) {
    if (!be) return;
    cpu_ctx *c = ctx_of(be);
    if (c) {
        tl_pool_free(c->pool);
        tl_free(c->tscratch, c->tscratch_n * (size_t)c->nth * sizeof(float), TL_MEM_SCRATCH);
        tl_free(c->xq, c->xq_cap, TL_MEM_SCRATCH);
        tl_free(c->xq2, c->xq_cap, TL_MEM_SCRATCH);
        tl_free(c->xd, c->xg_cap * sizeof(float), TL_MEM_SCRATCH);
        tl_free(c->xs, c->xg_cap * sizeof(float), TL_MEM_SCRATCH);
        tl_free(c->xz, c->xg_cap * 2 * sizeof(int32_t), TL_MEM_SCRATCH);
        tl_free(c->ints, c->ints_cap * sizeof(int), TL_MEM_SCRATCH);
        tl_cpu_arena_free_all(&c->arena);
        free(c);
    }
    free(be);
}

tl_backend *tl_backend_cpu_new(int threads, tl_err *err) {
    tl_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        tl_err_set(err, TL_ENOMEM, "cpu backend: out of memory");
        return NULL;
    }
    if (tl_pool_new(&c->pool, threads, err) < 0) {
        free(be);
        free(c);
        return NULL;
    }
    c->nth = tl_pool_size(c->pool);
    c->k = tl_cpu_kern_pick();
    c->xq_levels = 2;
    const char *fe = getenv("TALLOW_CPU_FLASH");
    c->flash = !(fe && strcmp(fe, "0") == 0);
    const char *e = getenv("TALLOW_CPU_XQ");
    if (e && (strcmp(e, "1") == 0 || strcmp(e, "2") == 0)) c->xq_levels = e[0] - '0';
    if (tscratch_reserve(c, 4096) < 0) {
        tl_pool_free(c->pool);
        free(be);
        free(c);
        tl_err_set(err, TL_ENOMEM, "cpu backend: out of memory for scratch");
        return NULL;
    }
    be->name = "cpu";
    be->ctx = c;
    be->destroy = cpu_destroy;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->to_host = cpu_copy;
    be->to_device = cpu_copy;
    be->sync = cpu_sync;
    be->rows_upload = NULL;
    be->kv_sync = NULL;
    be->weight_prepare = cpu_weight_prepare;
    be->weight_free = cpu_weight_free;
    be->vec_upload = cpu_vec_upload;
    be->matmul = cpu_matmul;
    be->matmul_n = cpu_matmul_n;
    be->embed = cpu_embed;
    be->rmsnorm = cpu_rmsnorm;
    be->rope = cpu_rope;
    be->kv_store = cpu_kv_store;
    be->attention = cpu_attention;
    be->swiglu = cpu_swiglu;
    be->add = cpu_add;
    be->mul_sigmoid = cpu_mul_sigmoid;
    be->copy_rows = cpu_copy_rows;
    be->gdn_conv = cpu_gdn_conv;
    be->gdn_rule = cpu_gdn_rule;
    be->gated_rmsnorm = cpu_gated_rmsnorm;
    be->gdn_state_clear = cpu_gdn_state_clear;
    return be;
}

/* The ISA of the kernels this backend runs ("avx512", "avx2", "scalar"), for bench output. */
const char *tl_backend_cpu_isa(const tl_backend *be) { return ((const cpu_ctx *)be->ctx)->k->isa; }
