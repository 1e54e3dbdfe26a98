/* backend.h — the seam between architecture code and the hardware: a small table of ops over
 * batches of rows. Model code (src/model/) is written once against this table; the scalar
 * reference (backend/ref), the CPU backend (backend/cpu: SIMD + thread pool) and the CUDA backend
 * (backend/cuda, .cu only, extern "C") implement it.
 *
 * Conventions
 * - Activations are f32, row-major: a [n, dim] block is n rows of dim floats. Pointers passed to
 *   ops are backend buffers (from be->alloc): host memory on CPU, device memory on CUDA. Model
 *   code never dereferences them; it moves data with to_host / to_device.
 * - Weights are prepared once at load (weight_prepare) from a tl_wdesc that points into the
 *   mapped file; the backend may repack or upload (and counts that memory as TL_MEM_WEIGHTS).
 * - Row r of a batch belongs to sequence slot rows_slot[r] at absolute position rows_pos[r]
 *   (host arrays, mirrored by the backend if it needs them on the device).
 * - Ops do not fail: shapes were validated at load. Anything that can fail returns int + tl_err.
 * - Every op accepts n == 0 (does nothing). Buffers of one call do not overlap unless the op says
 *   "in place" or allows it.
 * - Optional ops (NULL in a table): rows_upload, kv_sync, matmul_n (tl_backend_matmul_n falls
 *   back to matmul), and the Gated DeltaNet group for a backend that does not run Qwen3.5 yet.
 *   Model code checks before use and fails with TL_EUNSUP.
 * - Memory: a backend counts what it allocates (alloc: the kind asked; weight_prepare repacks or
 *   uploads: TL_MEM_WEIGHTS). The mapped file bytes a weight points at are counted by model.c.
 */
#ifndef TL_BACKEND_H
#define TL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

typedef struct tl_backend tl_backend;
typedef struct tl_wmat tl_wmat; /* backend-specific prepared weight matrix */

typedef enum {
    TL_W_DENSE = 0, /* dtype F32 / F16 / BF16, [rows, cols] */
    TL_W_AFFINE,    /* MLX affine: packed U32 [rows, cols*bits/32], scales/biases [rows, cols/gs] */
} tl_wkind;

/* A weight matrix as found in the file: logical shape [rows = out, cols = in]; y = x · Wᵀ. */
typedef struct tl_wdesc {
    const char *name;       /* for messages */
    tl_wkind kind;
    int rows, cols;
    tl_dtype dtype;         /* DENSE: element dtype; AFFINE: dtype of scales and biases */
    const void *data;       /* DENSE: rows*cols elements; AFFINE: packed words */
    int bits, group_size;   /* AFFINE: bits 2,3,4,5,6,8; group 32,64,128 (docs/models.md §3) */
    const void *scales, *biases;
    size_t row_bytes;       /* bytes of one stored row of data (DENSE: cols*dtype size;
                             * AFFINE: cols*bits/8); set by tl_wdesc_finish */
} tl_wdesc;

/* Fill the derived fields (row_bytes) after kind/rows/cols/dtype/bits are set. */
void tl_wdesc_finish(tl_wdesc *w);

/* Dequantize row r of a described matrix into out[cols] (f32). Shared by every backend for
 * embeddings and by tests: this is the reference meaning of every weight format. */
void tl_wdesc_dequant_row(const tl_wdesc *w, int r, float *out);
/* One element of a dense/scale array of dtype F32, F16 or BF16, as f32. */
float tl_dtype_get_f32(tl_dtype t, const void *base, size_t i);

/* The paged KV cache of the full-attention layers, shared by all slots. Pages hold page_size
 * tokens of one layer's K (or V) for all kv heads: page p of layer l at
 * k[l] + p * page_size * kv_dim. page_table[slot * max_pages_per_slot + i] is the page holding
 * tokens [i*page_size, (i+1)*page_size) of that slot (-1 = none). The engine owns the page
 * allocator and the table; backends read the table (CUDA keeps a device copy, refreshed by
 * kv_sync). */
typedef struct tl_kv {
    int n_layers;            /* KV layers (full-attention layers only) */
    int kv_dim;              /* n_kv_heads * head_dim */
    int page_size;           /* tokens per page */
    int n_pages;
    int max_slots, max_pages_per_slot;
    float **k, **v;          /* [n_layers] backend buffers of n_pages*page_size*kv_dim floats */
    int32_t *page_table;     /* host, max_slots * max_pages_per_slot */
    void *dev;               /* backend-private mirror */
} tl_kv;

/* Per-row context of one forward pass. */
typedef struct tl_rows {
    int n;                   /* rows in the batch */
    const int32_t *slot;     /* [n] host */
    const int32_t *pos;      /* [n] host: absolute position of the row in its slot */
    void *dev;               /* backend-private device copy, set by rows_upload */
} tl_rows;

/* Gated DeltaNet per-layer state for all slots: conv [max_slots][K-1][conv_dim] and recurrent
 * [max_slots][Hv][Dk][Dv] (f32, HF orientation S[k][v]). */
typedef struct tl_gdn_state {
    int max_slots, conv_dim, conv_k, n_v_heads, n_k_heads, dk, dv;
    float *conv;             /* backend buffer */
    float *rec;              /* backend buffer */
} tl_gdn_state;

struct tl_backend {
    const char *name;        /* "ref", "cpu", "cuda" */
    void *ctx;
    void (*destroy)(tl_backend *be);

    /* memory: n floats (or bytes for alloc_bytes), zeroed; counted under kind */
    float *(*alloc)(tl_backend *be, size_t n_floats, tl_mem_kind kind);
    void (*free)(tl_backend *be, void *p, size_t n_floats, tl_mem_kind kind);
    void (*to_host)(tl_backend *be, void *dst, const void *src, size_t bytes);
    void (*to_device)(tl_backend *be, void *dst, const void *src, size_t bytes);
    void (*sync)(tl_backend *be);
    void (*rows_upload)(tl_backend *be, tl_rows *rows);   /* may be NULL on host backends */
    void (*kv_sync)(tl_backend *be, tl_kv *kv);           /* page table changed; may be NULL */

    /* Prepare a weight for matmul/embed. The tl_wdesc and the memory it points at outlive the
     * tl_wmat (the model keeps both); the backend may keep pointers into them. */
    int (*weight_prepare)(tl_backend *be, const tl_wdesc *d, tl_wmat **out, tl_err *err);
    void (*weight_free)(tl_backend *be, tl_wmat *w);
    /* Upload a small f32 vector (norm weights, biases) and return a backend buffer. */
    float *(*vec_upload)(tl_backend *be, const float *host, size_t n);

    /* y[n, w.rows] = x[n, w.cols] · Wᵀ */
    void (*matmul)(tl_backend *be, const tl_wmat *w, const float *x, float *y, int n);
    /* y[i] = x · w[i]ᵀ for i < nw (nw <= 8), every w[i] with the same cols: the projections that
     * share an input, in one pass (the CPU backend quantizes x once and runs one task grid).
     * May be NULL: callers use tl_backend_matmul_n, which then loops over matmul. */
    void (*matmul_n)(tl_backend *be, int nw, const tl_wmat *const *w, const float *x,
                     float *const *y, int n);
    /* y[n, w.cols] = W[ids[i]] (dequantized rows); ids on the host */
    void (*embed)(tl_backend *be, const tl_wmat *w, const int32_t *ids, float *y, int n);
    /* y = x / sqrt(mean(x²) + eps) * w, per row of dim, over n*groups rows (groups of `dim`
     * inside a row: q/k norm per head passes n*heads rows). w may be NULL (no scale). y may
     * equal x (in place). */
    void (*rmsnorm)(tl_backend *be, float *y, const float *x, const float *w, int rows, int dim,
                    float eps);
    /* In place, x: [rows.n, n_heads, head_dim]; rotate the first rot_dim dims of each head with
     * half-split pairing (i, i + rot_dim/2); angle = pos * inv_freq[i] (inv_freq: rot_dim/2
     * floats, backend buffer). */
    void (*rope)(tl_backend *be, float *x, const tl_rows *rows, int n_heads, int head_dim,
                 int rot_dim, const float *inv_freq);
    /* Store k, v ([rows.n, kv_dim]) into layer's pages at (slot, pos) of each row. */
    void (*kv_store)(tl_backend *be, tl_kv *kv, int layer, const tl_rows *rows, const float *k,
                     const float *v);
    /* Causal attention: row r attends to positions 0..pos[r] of its slot in layer's pages.
     * q: [n, n_heads*head_dim], out: same shape. GQA: head h uses kv head h / (n_heads/n_kv). */
    void (*attention)(tl_backend *be, float *out, const float *q, const tl_kv *kv, int layer,
                      const tl_rows *rows, int n_heads, int n_kv_heads, int head_dim,
                      float scale);
    /* y = silu(gate) * up, elementwise over n (gate/up/y may be distinct buffers) */
    void (*swiglu)(tl_backend *be, float *y, const float *gate, const float *up, size_t n);
    /* y += x */
    void (*add)(tl_backend *be, float *y, const float *x, size_t n);
    /* y *= sigmoid(g) */
    void (*mul_sigmoid)(tl_backend *be, float *y, const float *g, size_t n);
    /* Copy strided blocks: for each of `rows` rows, copy `width` floats from
     * src + r*src_stride + src_off to dst + r*dst_stride + dst_off. */
    void (*copy_rows)(tl_backend *be, float *dst, int dst_stride, int dst_off, const float *src,
                      int src_stride, int src_off, int rows, int width);

    /* Gated DeltaNet (Qwen3.5), see docs/models.md §1.4.
     * gdn_conv: causal depthwise conv + SiLU over x [n, conv_dim] in place, kernel w
     * [conv_dim, K] (w[c][K-1] multiplies the current token), using and updating each row's
     * slot conv state. Rows of one slot are consecutive and in position order. */
    void (*gdn_conv)(tl_backend *be, float *x, const float *w, tl_gdn_state *st,
                     const tl_rows *rows);
    /* gdn_rule: per row: q,k l2-normalised (q also scaled by dk^-1/2), beta = sigmoid(b),
     * g = -exp(A_log) * softplus(a + dt_bias); the delta-rule update of the slot's recurrent
     * state; out[n, Hv*dv] = Sᵀ q. qkv: [n, conv_dim] after conv (q | k | v blocks),
     * a, b: [n, Hv]; a_log, dt_bias: [Hv] backend vectors. Value head j uses key head j / (Hv/Hk). */
    void (*gdn_rule)(tl_backend *be, float *out, const float *qkv, const float *a,
                     const float *b, const float *a_log, const float *dt_bias, tl_gdn_state *st,
                     const tl_rows *rows);
    /* out = rmsnorm(o per head of dv, w[dv]) * silu(z), in place on o: [n, Hv*dv] */
    void (*gated_rmsnorm)(tl_backend *be, float *o, const float *z, const float *w, int rows,
                          int n_heads, int dim, float eps);
    /* Clear slot's state (conv + recurrent). Snapshots copy a slot's part of st->conv / st->rec
     * with to_host / to_device (slot s starts at s * per-slot floats). */
    void (*gdn_state_clear)(tl_backend *be, tl_gdn_state *st, int slot);
};


/* matmul_n when the backend has it, else one matmul per weight. */
static inline void tl_backend_matmul_n(tl_backend *be, int nw, const tl_wmat *const *w,
                                       const float *x, float *const *y, int n) {
    if (be->matmul_n) {
        be->matmul_n(be, nw, w, x, y, n);
        return;
    }
    for (int i = 0; i < nw; i++) be->matmul(be, w[i], x, y[i], n);
}

/* Constructors. threads: 0 = all cores. The ref backend is plain scalar C, single-threaded,
 * accumulating dot products in double: the meaning every other backend is tested against. */
tl_backend *tl_backend_ref_new(void);
tl_backend *tl_backend_cpu_new(int threads, tl_err *err);
tl_backend *tl_backend_cuda_new(int device, tl_err *err); /* -TL_EUNSUP without CUDA */
int tl_backend_cuda_available(void);

#endif
