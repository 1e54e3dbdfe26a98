/* ref.c — the scalar reference backend: every op written plainly, one loop nest each, dot
 * products accumulated in double. It is the meaning the fast CPU and CUDA kernels are tested
 * against, and what exact mode (TALLOW_EXACT=1) runs. Host memory only; single-threaded.
 *
 * Weights are used in place: a tl_wmat is the tl_wdesc itself plus a row buffer; matmul
 * dequantizes one weight row at a time (tl_wdesc_dequant_row) and dots it with every x row.
 * The Gated DeltaNet ops live in ref_gdn.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ref/ref_gdn.h"

/* Attention scores of one row: grows to the longest context seen (not per token). */
typedef struct ref_ctx {
    double *p;
    size_t cap;
} ref_ctx;

struct tl_wmat {
    tl_wdesc d;
    float *row; /* cols floats: one dequantized weight row */
};

static float *ref_alloc(tl_backend *be, size_t n, tl_mem_kind kind) {
    size_t bytes;
    if (!tl_mul_ok(n, sizeof(float), &bytes)) return NULL;
    return tl_alloc(bytes, kind);
}
static void ref_free(tl_backend *be, void *p, size_t n, tl_mem_kind kind) {
    tl_free(p, n * sizeof(float), kind);
}
static void ref_copy(tl_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void ref_sync(tl_backend *be) {}

static int ref_weight_prepare(tl_backend *be, const tl_wdesc *d, tl_wmat **out, tl_err *err) {
    tl_wmat *w = calloc(1, sizeof *w);
    if (!w) return tl_err_set(err, TL_ENOMEM, "ref backend: out of memory preparing %s", d->name);
    w->d = *d;
    tl_wdesc_finish(&w->d);
    w->row = tl_alloc((size_t)d->cols * sizeof(float), TL_MEM_SCRATCH);
    if (!w->row) {
        free(w);
        return tl_err_set(err, TL_ENOMEM, "ref backend: out of memory preparing %s", d->name);
    }
    *out = w;
    return 0;
}
static void ref_weight_free(tl_backend *be, tl_wmat *w) {
    if (!w) return;
    tl_free(w->row, (size_t)w->d.cols * sizeof(float), TL_MEM_SCRATCH);
    free(w);
}
static float *ref_vec_upload(tl_backend *be, const float *host, size_t n) {
    float *p = ref_alloc(be, n, TL_MEM_WEIGHTS);
    if (p && n) memcpy(p, host, n * sizeof(float));
    return p;
}

static void ref_matmul(tl_backend *be, const tl_wmat *wc, const float *x, float *y, int n) {
    tl_wmat *w = (tl_wmat *)wc; /* the row buffer is scratch */
    int rows = w->d.rows, cols = w->d.cols;
    for (int o = 0; o < rows; o++) {
        tl_wdesc_dequant_row(&w->d, o, w->row);
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * cols;
            double acc = 0.0;
            for (int c = 0; c < cols; c++) acc += (double)xi[c] * (double)w->row[c];
            y[(size_t)i * rows + o] = (float)acc;
        }
    }
}

static void ref_embed(tl_backend *be, const tl_wmat *w, const int32_t *ids, float *y, int n) {
    for (int i = 0; i < n; i++) tl_wdesc_dequant_row(&w->d, ids[i], y + (size_t)i * w->d.cols);
}

static void ref_rmsnorm(tl_backend *be, float *y, const float *x, const float *w, int rows,
                        int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * (double)xr[i];
        float inv = (float)(1.0 / sqrt(ss / dim + (double)eps));
        for (int i = 0; i < dim; i++) yr[i] = w ? (xr[i] * inv) * w[i] : xr[i] * inv;
    }
}

static void ref_rope(tl_backend *be, float *x, const tl_rows *rows, int n_heads, int head_dim,
                     int rot_dim, const float *inv_freq) {
    int half = rot_dim / 2;
    for (int r = 0; r < rows->n; r++) {
        float pos = (float)rows->pos[r];
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = pos * inv_freq[i];
                float c = cosf(a), s = sinf(a);
                float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x1 * c + x0 * s;
            }
        }
    }
}

static float *kv_at(float *base, const tl_kv *kv, int slot, int pos) {
    int page = kv->page_table[(size_t)slot * kv->max_pages_per_slot + pos / kv->page_size];
    return base + ((size_t)page * kv->page_size + (size_t)(pos % kv->page_size)) * kv->kv_dim;
}

static void ref_kv_store(tl_backend *be, tl_kv *kv, int layer, const tl_rows *rows,
                         const float *k, const float *v) {
    for (int r = 0; r < rows->n; r++) {
        memcpy(kv_at(kv->k[layer], kv, rows->slot[r], rows->pos[r]), k + (size_t)r * kv->kv_dim,
               (size_t)kv->kv_dim * sizeof(float));
        memcpy(kv_at(kv->v[layer], kv, rows->slot[r], rows->pos[r]), v + (size_t)r * kv->kv_dim,
               (size_t)kv->kv_dim * sizeof(float));
    }
}

static void ref_attention(tl_backend *be, float *out, const float *q, const tl_kv *kv, int layer,
                          const tl_rows *rows, int n_heads, int n_kv_heads, int head_dim,
                          float scale) {
    int group = n_heads / n_kv_heads;
    ref_ctx *c = be->ctx;
    for (int r = 0; r < rows->n; r++) {
        int slot = rows->slot[r], len = rows->pos[r] + 1;
        if ((size_t)len > c->cap) {
            size_t cap = TL_MAX((size_t)len, c->cap * 2);
            double *np = realloc(c->p, cap * sizeof(double));
            if (!np) tl_panic(__FILE__, __LINE__, "out of memory in reference attention");
            c->p = np;
            c->cap = cap;
        }
        double *p = c->p;
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + ((size_t)r * n_heads + h) * head_dim;
            int kvh = h / group;
            double mx = -INFINITY;
            for (int t = 0; t < len; t++) {
                const float *kt = kv_at(kv->k[layer], kv, slot, t) + (size_t)kvh * head_dim;
                double s = 0.0;
                for (int i = 0; i < head_dim; i++) s += (double)qh[i] * (double)kt[i];
                p[t] = s * scale;
                if (p[t] > mx) mx = p[t];
            }
            double sum = 0.0;
            for (int t = 0; t < len; t++) {
                p[t] = exp(p[t] - mx);
                sum += p[t];
            }
            float *oh = out + ((size_t)r * n_heads + h) * head_dim;
            for (int i = 0; i < head_dim; i++) {
                double acc = 0.0;
                for (int t = 0; t < len; t++)
                    acc += p[t] * (double)(kv_at(kv->v[layer], kv, slot, t)[kvh * head_dim + i]);
                oh[i] = (float)(acc / sum);
            }
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void ref_swiglu(tl_backend *be, float *y, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = silu(gate[i]) * up[i];
}
static void ref_add(tl_backend *be, float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
static void ref_copy_rows(tl_backend *be, float *dst, int dst_stride, int dst_off,
                          const float *src, int src_stride, int src_off, int rows, int width) {
    for (int r = 0; r < rows; r++)
        memmove(dst + (size_t)r * dst_stride + dst_off, src + (size_t)r * src_stride + src_off,
                (size_t)width * sizeof(float));
}

static void ref_destroy(tl_backend *be) {
    ref_ctx *c = be->ctx;
    if (c) free(c->p);
    free(c);
    free(be);
}

tl_backend *tl_backend_ref_new(void) {
    tl_backend *be = calloc(1, sizeof *be);
    ref_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    be->ctx = c;
    be->name = "ref";
    be->destroy = ref_destroy;
    be->alloc = ref_alloc;
    be->free = ref_free;
    be->to_host = ref_copy;
    be->to_device = ref_copy;
    be->sync = ref_sync;
    be->weight_prepare = ref_weight_prepare;
    be->weight_free = ref_weight_free;
    be->vec_upload = ref_vec_upload;
    be->matmul = ref_matmul;
    be->embed = ref_embed;
    be->rmsnorm = ref_rmsnorm;
    be->rope = ref_rope;
    be->kv_store = ref_kv_store;
    be->attention = ref_attention;
    be->swiglu = ref_swiglu;
    be->add = ref_add;
    be->mul_sigmoid = tl_ref_mul_sigmoid;
    be->copy_rows = ref_copy_rows;
    be->gdn_conv = tl_ref_gdn_conv;
    be->gdn_rule = tl_ref_gdn_rule;
    be->gated_rmsnorm = tl_ref_gated_rmsnorm;
    be->gdn_state_clear = tl_ref_gdn_state_clear;
    return be;
}
