/* cpu.h — internals of the "cpu" backend (not a public header): the thread pool, the prepared
 * weight layouts and the kernel table chosen at run time from CPUID.
 *
 * Weight layouts (tl_wmat):
 * - CPU_W_QR16: MLX affine 4- or 8-bit repacked at load into blocks of 16 rows. For row block rb
 *   and group g the bytes are: 16 scales, 16 biases (dtype of the file: f16, bf16 or f32), then
 *   the group's weights. 8-bit: gs/4 chunks of 64 bytes, chunk c = 16 rows x 4 columns
 *   (row-major within the chunk: row i at byte 4i holds columns 4c..4c+3). 4-bit: gs/8 chunks of
 *   64 bytes, row i's dword holds columns 8c+j (low nibble of byte j) and 8c+4+j (high nibble),
 *   j = 0..3. So a 64-byte load gives 16 rows x 4 (or 2 x 4) columns and the activations are
 *   read in natural order. Rows past `rows` are zero (scale 0, bias 0).
 *   The integer path multiplies those unsigned bytes with int8 activations (VNNI vpdpbusd) using
 *   Σx·(s·q+b) = s·d·Σxq·q + b·Σx per group, where xq = round(x/d) per group (d = amax/127).
 *   With two-level activations x ≈ d·(q1 + q2/254) the error is ~254x smaller at twice the
 *   integer work; the backend picks per call (see cpu_backend.c).
 * - CPU_W_DENSE: f32 / f16 / bf16 used in place from the mapped file (no copy).
 * - CPU_W_GENERIC: any other MLX affine (2/3/5/6 bits, or shapes the repack does not take),
 *   used in place through a straightforward dequantize-a-row path. */
#ifndef TL_BACKEND_CPU_H
#define TL_BACKEND_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* ---- thread pool ------------------------------------------------------------------------------
 * A fixed set of workers created once. tl_pool_run runs fn(ctx, ith, nth) on every thread (the
 * caller is thread 0) and returns when all are done. No allocation per run. */
typedef struct tl_pool tl_pool;
typedef void (*tl_pool_fn)(void *ctx, int ith, int nth);
int tl_pool_new(tl_pool **out, int threads, tl_err *err);
void tl_pool_free(tl_pool *p);
int tl_pool_size(const tl_pool *p);
void tl_pool_run(tl_pool *p, tl_pool_fn fn, void *ctx);
/* Like tl_pool_run for a fn that takes tasks from a shared queue until it is empty, so that the
 * caller alone can finish the job: returns without waiting for workers that did not join. */
void tl_pool_run_dyn(tl_pool *p, tl_pool_fn fn, void *ctx);

/* The share [*lo, *hi) of n items for thread ith of nth. */
static inline void tl_split_range(int n, int ith, int nth, int *lo, int *hi) {
    int base = n / nth, rem = n % nth;
    *lo = ith * base + (ith < rem ? ith : rem);
    *hi = *lo + base + (ith < rem ? 1 : 0);
}

/* ---- huge-page arena ---------------------------------------------------------------------------
 * Long-lived buffers smaller than a few 2 MiB pages (the 2048x2048 projections, k/v, the Gated
 * DeltaNet state of one layer) are carved one after another from 2 MiB-aligned MADV_HUGEPAGE
 * chunks instead of getting their own 4 KiB-page allocation: streamed through 4 KiB pages the
 * decode GEMV ran at ~50-60% of the read bandwidth (a TLB walk and a prefetch stream restart per
 * page). Carved memory is zero (fresh anonymous pages, never reused) and counted under its kind;
 * freeing a piece only uncounts it: chunks are unmapped with the arena (the backend), since
 * weights and state live as long as the engine. Not thread-safe: used from the issuing thread. */
typedef struct tl_cpu_arena {
    uint8_t *cur;
    size_t left;
    void **chunk;
    size_t *chunk_len;
    int n, cap;
} tl_cpu_arena;
/* n bytes, 64-byte aligned, zeroed, counted under kind; NULL when out of memory. */
void *tl_cpu_arena_get(tl_cpu_arena *a, size_t n, tl_mem_kind kind);
/* Whether p was carved from a. */
int tl_cpu_arena_owns(const tl_cpu_arena *a, const void *p);
void tl_cpu_arena_free_all(tl_cpu_arena *a);

/* ---- prepared weights ------------------------------------------------------------------------ */
typedef enum { CPU_W_QR16 = 1, CPU_W_DENSE, CPU_W_GENERIC } tl_cpu_wkind;

struct tl_wmat {
    tl_cpu_wkind kind;
    int rows, cols;
    tl_wdesc desc;         /* the file's description (data still points into the mapping) */
    /* QR16 */
    int bits, gs, groups;  /* groups = cols / gs */
    int sdt;               /* scale/bias dtype: TL_DT_F16, TL_DT_BF16 or TL_DT_F32 */
    int sbytes;            /* 2 or 4 */
    int rblocks;           /* ceil(rows / 16) */
    int pgroups;           /* groups per column panel (see tl_qr16_group) */
    size_t gbytes;         /* bytes of one (row block, group): 32*sbytes + 16*gs*bits/8 */
    uint8_t *packed;       /* rblocks * groups * gbytes, counted as TL_MEM_WEIGHTS */
    size_t packed_bytes;
    size_t packed_map;     /* length of the mmap holding packed (0: from tl_alloc; SIZE_MAX: carved
                            * from the backend's arena) */
};

/* QR16 matrices wider than one panel (2048 columns) are stored panel by panel: all row blocks
 * of columns [0, 2048), then all row blocks of the next 2048 columns, ... (a narrower matrix is
 * one panel: plain row-block order). Decode walks a panel's row blocks in one sequential stream
 * with the panel's int8 activations (4 KiB) staying in L1; with whole rows the activations of a
 * wide matrix (12-18 KiB) were pushed out of L1 by the streaming weights on every row block and
 * wide matrices decoded ~25% slower than 2048-column ones. Group g of row block rb: */
static inline const uint8_t *tl_qr16_group(const tl_wmat *w, int rb, int g) {
    int p = g / w->pgroups, pw = w->groups - p * w->pgroups;
    if (pw > w->pgroups) pw = w->pgroups;
    return w->packed + ((size_t)p * w->rblocks * w->pgroups + (size_t)rb * pw + (size_t)(g - p * w->pgroups)) *
                           w->gbytes;
}

/* Activations quantized per group for the QR16 path: row m has q[m*cols ..], d[m*groups ..]
 * (scale), s[m*groups ..] (exact float sum of the group), when two-level q2 (residual), and
 * zs[2*(m*groups+g) + level] = z·Σq of that level. The kernels use the weights centred on
 * z = 2^(bits-1): Σx·(s·q+b) = s·d·(Σxq·q − z·Σxq) + (b + z·s)·Σx, which halves the error that
 * the rounding of x leaves (it multiplies q − z instead of q). */
typedef struct tl_xq {
    int n, cols, gs, groups;
    const int8_t *q, *q2;  /* q2 NULL = one level */
    const float *d, *s;
    const int32_t *zs;
    int z;
} tl_xq;

#define TL_QR16_PANEL_COLS 2048

/* ---- kernel table (one per ISA) -------------------------------------------------------------- */
typedef struct tl_cpu_kern {
    const char *isa;
    /* y[m*ldy + r] for m in [m0, m1), rows of row blocks [rb0, rb1) (clipped to w->rows). */
    void (*qr16_mm)(const tl_wmat *w, const tl_xq *x, float *y, int ldy, int m0, int m1, int rb0,
                    int rb1);
    /* y[m*ldy + r] = dot(x[m*cols..], W row r) for m in [0, n), r in [r0, r1); dense dtype. */
    void (*dense_mm)(const tl_wmat *w, const float *x, float *y, int ldy, int n, int r0, int r1,
                     float *scratch);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);   /* y += a*x */
    /* Quantize activation rows for the QR16 path (same contract as tl_cpu_xq_rows). */
    void (*xq_rows)(const float *x, int cols, int gs, int z, int m0, int m1, int8_t *q, int8_t *q2,
                    float *d, float *s, int32_t *zs);
    /* One Gated DeltaNet token for one head, state S[dk][dv] in place: S *= alpha; m = Sᵀk;
     * delta = beta (v - m); S += k deltaᵀ; o = Sᵀq. tmp: dv floats. */
    void (*gdn_step)(float *S, int dk, int dv, float alpha, float beta, const float *k, const float *q,
                     const float *v, float *o, float *tmp);
    /* Causal attention of up to 16 query vectors (qs[i], at position qpos[i], all of one slot and
     * one kv head) over positions 0..max(qpos) of that slot's pages: outs[i] = softmax(q·K·scale) V.
     * kp/vp give the row of position t (already offset to the kv head). scratch: 16*D + 512 + 16*D
     * floats. May be NULL (the backend then does one query at a time). */
    void (*attn_block)(float *const *outs, const float *const *qs, const int *qpos, int nq, int D,
                       float scale, const float *(*row)(const void *ctx, int kv, int t), const void *ctx,
                       float *scratch);
    /* Causal depthwise conv + SiLU over n consecutive rows of one slot, nc channels:
     * x[r*ldx + c] = silu(Σ_i wt[i*nc + c] · in(r - K + 1 + i)[c]), in(t) = x row t (input) for
     * t >= 0, else state row t + K - 1 ([K-1] rows of stride lds, oldest first); the state then
     * holds the last K-1 inputs. wt is tap-major [K][nc]; tmp: (K-1)*nc floats. */
    void (*conv_silu)(float *x, int ldx, int n, const float *wt, int K, int nc, float *state, int lds,
                      float *tmp);
    void (*swiglu)(float *y, const float *g, const float *u, size_t n); /* y = silu(g) * u */
    void (*mul_sigmoid)(float *y, const float *g, size_t n);           /* y *= sigmoid(g) */
} tl_cpu_kern;

extern const tl_cpu_kern tl_cpu_kern_scalar;
const tl_cpu_kern *tl_cpu_kern_avx512(void); /* NULL when not compiled in */
const tl_cpu_kern *tl_cpu_kern_avx2(void);   /* NULL when not compiled in */

/* Choose the best kernel set this CPU runs; TALLOW_CPU_ISA=scalar|avx2|avx512 forces one. */
const tl_cpu_kern *tl_cpu_kern_pick(void);
/* The ISA of a cpu backend's kernels ("avx512", "avx2", "scalar"), for bench output. */
const char *tl_backend_cpu_isa(const tl_backend *be);

/* ---- helpers shared by the kernel files (quant.c) -------------------------------------------- */
/* Repack an MLX affine 4/8-bit matrix into QR16; matrices under 4 MiB are carved from arena
 * when it is not NULL. Returns 0 or -TL_E*. */
int tl_cpu_qr16_pack(tl_wmat *w, const tl_wdesc *d, tl_cpu_arena *arena, tl_err *err);
/* Free what tl_cpu_qr16_pack allocated (NULL-safe). */
void tl_cpu_qr16_free(tl_wmat *w);
/* Quantize rows [m0, m1) of x[n, cols] into xq buffers (laid out as in tl_xq): per group,
 * d = amax/127, v = x/d, q = round(v), q2 = round((v - q)·254) (round half to even). */
void tl_cpu_xq_rows(const float *x, int cols, int gs, int z, int m0, int m1, int8_t *q, int8_t *q2,
                    float *d, float *s, int32_t *zs);
/* Row r of a prepared matrix as f32 (any layout). */
void tl_cpu_dequant_row(const tl_wmat *w, int r, float *out);
/* The portable Gated DeltaNet step (the contract of tl_cpu_kern.gdn_step). */
void tl_cpu_gdn_step(float *S, int dk, int dv, float alpha, float beta, const float *k, const float *q,
                     const float *v, float *o, float *tmp);
/* conv_silu's first step: the last K-1 inputs (rows of x, or of the state for a run shorter
 * than K-1) into tmp, before the rows are overwritten. */
void tl_cpu_conv_tail(const float *x, int ldx, int n, int K, int nc, const float *state, int lds, float *tmp);
/* The portable conv_silu (the contract of tl_cpu_kern.conv_silu). */
void tl_cpu_conv_silu(float *x, int ldx, int n, const float *wt, int K, int nc, float *state, int lds,
                      float *tmp);
/* The portable swiglu (y = silu(g) * u) and mul_sigmoid (y *= sigmoid(g)) of the kernel table. */
void tl_cpu_swiglu(float *y, const float *g, const float *u, size_t n);
void tl_cpu_mul_sigmoid(float *y, const float *g, size_t n);

#endif
