/* prof.c — an op-table wrapper that times every op of another backend (TALLOW_PROFILE=1).
 *
 * tl_backend_prof_wrap returns a backend whose ops call the inner backend's, then inner->sync
 * (so a GPU backend's time lands on the op that queued it), and add the wall time to a counter
 * per op. Matmuls are counted per weight family — the weight's name with the layer number taken
 * out ("layers.N.mlp.down_proj" -> "mlp.down_proj") — and split into decode calls (at most 8
 * rows) and prefill calls, with the bytes of weights they stream, so the table shows which
 * matrices reach the memory bandwidth and which ops eat the rest of a token's time. Destroying
 * the wrapper prints the table to stderr and destroys the inner backend.
 *
 * It is a developer's tool: timing adds a clock read per op (~20 ns) and the forced sync removes
 * a GPU backend's overlap, so the figures under it are a breakdown, not the speed. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/prof.h"

enum {
    P_MATMUL, P_EMBED, P_RMSNORM, P_ROPE, P_KV_STORE, P_ATTENTION, P_SWIGLU, P_ADD, P_MUL_SIGMOID,
    P_COPY_ROWS, P_GDN_CONV, P_GDN_RULE, P_GATED_RMSNORM, P_TO_HOST, P_OTHER, P_N
};
static const char *const op_names[P_N] = {
    "matmul", "embed", "rmsnorm", "rope", "kv_store", "attention", "swiglu", "add", "mul_sigmoid",
    "copy_rows", "gdn_conv", "gdn_rule", "gated_rmsnorm", "to_host", "other"};

#define PROF_FAMILIES 64

typedef struct {
    char name[64];
    uint64_t ns[2], calls[2], bytes[2]; /* [0] decode (n <= 8), [1] prefill */
} prof_family;

typedef struct {
    const tl_wmat *w;
    int family;
    size_t bytes;
} prof_weight;

typedef struct {
    tl_backend *in;
    uint64_t ns[P_N], calls[P_N];
    prof_family fam[PROF_FAMILIES];
    int n_fam;
    prof_weight *wts;
    size_t n_wts, cap_wts;
} prof_ctx;

static prof_ctx *pc(tl_backend *be) { return (prof_ctx *)be->ctx; }

static void done(prof_ctx *p, int op, uint64_t t0) {
    p->in->sync(p->in);
    p->ns[op] += tl_now_ns() - t0;
    p->calls[op]++;
}

/* "model.language_model.layers.12.linear_attn.in_proj_qkv" -> "linear_attn.in_proj_qkv" */
static void family_of(const char *name, char *out, size_t cap) {
    const char *s = name ? name : "(unnamed)";
    const char *l = strstr(s, "layers.");
    if (l) {
        const char *d = l + 7;
        while (*d >= '0' && *d <= '9') d++;
        if (*d == '.') s = d + 1;
    }
    snprintf(out, cap, "%s", s);
    size_t n = strlen(out);
    if (n > 7 && !strcmp(out + n - 7, ".weight")) out[n - 7] = 0;
}

static int family_index(prof_ctx *p, const char *fam) {
    for (int i = 0; i < p->n_fam; i++)
        if (!strcmp(p->fam[i].name, fam)) return i;
    if (p->n_fam == PROF_FAMILIES) return PROF_FAMILIES - 1; /* lumped into the last */
    snprintf(p->fam[p->n_fam].name, sizeof p->fam[0].name, "%s", fam);
    return p->n_fam++;
}

static size_t wdesc_bytes(const tl_wdesc *d) {
    size_t b = (size_t)d->rows * d->row_bytes;
    if (d->kind == TL_W_AFFINE && d->group_size > 0)
        b += (size_t)2 * d->rows * (d->cols / d->group_size) * tl_dtype_size(d->dtype);
    return b;
}

static const prof_weight *weight_of(prof_ctx *p, const tl_wmat *w) {
    for (size_t i = 0; i < p->n_wts; i++)
        if (p->wts[i].w == w) return &p->wts[i];
    return NULL;
}

/* ---- wrapped ops ------------------------------------------------------------------------------ */
static void p_destroy(tl_backend *be) {
    prof_ctx *p = pc(be);
    uint64_t tot = 0;
    for (int i = 0; i < P_N; i++) tot += p->ns[i];
    if (tot) {
        fprintf(stderr, "\ntallow profile (%s backend; wall time per op, synced):\n", p->in->name);
        fprintf(stderr, "  %-16s %10s %12s %7s\n", "op", "calls", "ms", "share");
        for (int i = 0; i < P_N; i++)
            if (p->calls[i])
                fprintf(stderr, "  %-16s %10llu %12.2f %6.1f%%\n", op_names[i],
                        (unsigned long long)p->calls[i], p->ns[i] / 1e6, 100.0 * p->ns[i] / tot);
        fprintf(stderr, "  matmul by weight (decode = calls of <= 8 rows; GB/s = weight bytes read / time):\n");
        fprintf(stderr, "  %-32s %8s %10s %8s | %8s %10s\n", "weight", "dec.calls", "dec.ms", "dec.GB/s",
                "pre.calls", "pre.ms");
        for (int i = 0; i < p->n_fam; i++) {
            prof_family *f = &p->fam[i];
            fprintf(stderr, "  %-32s %8llu %10.2f %8.1f | %8llu %10.2f\n", f->name,
                    (unsigned long long)f->calls[0], f->ns[0] / 1e6,
                    f->ns[0] ? (double)f->bytes[0] / (double)f->ns[0] : 0.0,
                    (unsigned long long)f->calls[1], f->ns[1] / 1e6);
        }
    }
    if (tot) {
        tl_mem_stats ms;
        tl_mem_get(&ms);
        fprintf(stderr, "  counted memory peaks (MB):");
        for (int k = 0; k < TL_MEM_KINDS; k++)
            fprintf(stderr, " %s %.1f", tl_mem_kind_name((tl_mem_kind)k), ms.peak[k] / 1e6);
        fprintf(stderr, "; total %.1f\n", ms.peak_total / 1e6);
    }
    tl_backend *in = p->in;
    free(p->wts);
    free(p);
    free(be);
    in->destroy(in);
}

static float *p_alloc(tl_backend *be, size_t n, tl_mem_kind k) { return pc(be)->in->alloc(pc(be)->in, n, k); }
static void p_free(tl_backend *be, void *x, size_t n, tl_mem_kind k) { pc(be)->in->free(pc(be)->in, x, n, k); }
static void p_to_host(tl_backend *be, void *d, const void *s, size_t n) {
    uint64_t t0 = tl_now_ns();
    pc(be)->in->to_host(pc(be)->in, d, s, n);
    done(pc(be), P_TO_HOST, t0);
}
static void p_to_device(tl_backend *be, void *d, const void *s, size_t n) {
    uint64_t t0 = tl_now_ns();
    pc(be)->in->to_device(pc(be)->in, d, s, n);
    done(pc(be), P_OTHER, t0);
}
static void p_sync(tl_backend *be) { pc(be)->in->sync(pc(be)->in); }
static void p_rows_upload(tl_backend *be, tl_rows *r) {
    uint64_t t0 = tl_now_ns();
    pc(be)->in->rows_upload(pc(be)->in, r);
    done(pc(be), P_OTHER, t0);
}
static void p_kv_sync(tl_backend *be, tl_kv *kv) {
    uint64_t t0 = tl_now_ns();
    pc(be)->in->kv_sync(pc(be)->in, kv);
    done(pc(be), P_OTHER, t0);
}

static int p_weight_prepare(tl_backend *be, const tl_wdesc *d, tl_wmat **out, tl_err *err) {
    prof_ctx *p = pc(be);
    int rc = p->in->weight_prepare(p->in, d, out, err);
    if (rc < 0 || !*out) return rc;
    if (p->n_wts == p->cap_wts) {
        size_t cap = p->cap_wts ? 2 * p->cap_wts : 256;
        prof_weight *nw = realloc(p->wts, cap * sizeof *nw);
        if (!nw) return 0; /* not profiled by name: counted under "?" */
        p->wts = nw;
        p->cap_wts = cap;
    }
    char fam[64];
    family_of(d->name, fam, sizeof fam);
    p->wts[p->n_wts++] = (prof_weight){*out, family_index(p, fam), wdesc_bytes(d)};
    return 0;
}

static void p_weight_free(tl_backend *be, tl_wmat *w) {
    prof_ctx *p = pc(be);
    for (size_t i = 0; i < p->n_wts; i++)
        if (p->wts[i].w == w) {
            p->wts[i] = p->wts[--p->n_wts];
            break;
        }
    p->in->weight_free(p->in, w);
}

static float *p_vec_upload(tl_backend *be, const float *h, size_t n) { return pc(be)->in->vec_upload(pc(be)->in, h, n); }

/* A matmul call of nw weights took dt: its time is shared among the weights' families by the
 * bytes each streams (all of it for one weight). */
static void count_matmul(prof_ctx *p, int nw, const tl_wmat *const *w, int n, uint64_t dt) {
    p->ns[P_MATMUL] += dt;
    p->calls[P_MATMUL]++;
    size_t total = 0;
    for (int i = 0; i < nw; i++) {
        const prof_weight *pw = weight_of(p, w[i]);
        total += pw ? pw->bytes : 0;
    }
    for (int i = 0; i < nw; i++) {
        const prof_weight *pw = weight_of(p, w[i]);
        int fi = pw ? pw->family : family_index(p, "?"), k = n > 8;
        size_t b = pw ? pw->bytes : 0;
        p->fam[fi].ns[k] += nw == 1 ? dt : total ? (uint64_t)((double)dt * (double)b / (double)total)
                                                 : dt / (uint64_t)nw;
        p->fam[fi].calls[k]++;
        p->fam[fi].bytes[k] += b;
    }
}

static void p_matmul(tl_backend *be, const tl_wmat *w, const float *x, float *y, int n) {
    prof_ctx *p = pc(be);
    uint64_t t0 = tl_now_ns();
    p->in->matmul(p->in, w, x, y, n);
    p->in->sync(p->in);
    count_matmul(p, 1, &w, n, tl_now_ns() - t0);
}

static void p_matmul_n(tl_backend *be, int nw, const tl_wmat *const *w, const float *x, float *const *y,
                       int n) {
    prof_ctx *p = pc(be);
    uint64_t t0 = tl_now_ns();
    tl_backend_matmul_n(p->in, nw, w, x, y, n);
    p->in->sync(p->in);
    count_matmul(p, nw, w, n, tl_now_ns() - t0);
}

#define TIMED(op, call)                                                                            \
    do {                                                                                           \
        uint64_t t0_ = tl_now_ns();                                                                \
        call;                                                                                      \
        done(pc(be), op, t0_);                                                                     \
    } while (0)

static void p_embed(tl_backend *be, const tl_wmat *w, const int32_t *ids, float *y, int n) {
    TIMED(P_EMBED, pc(be)->in->embed(pc(be)->in, w, ids, y, n));
}
static void p_rmsnorm(tl_backend *be, float *y, const float *x, const float *w, int rows, int dim, float eps) {
    TIMED(P_RMSNORM, pc(be)->in->rmsnorm(pc(be)->in, y, x, w, rows, dim, eps));
}
static void p_rope(tl_backend *be, float *x, const tl_rows *rows, int nh, int hd, int rd, const float *f) {
    TIMED(P_ROPE, pc(be)->in->rope(pc(be)->in, x, rows, nh, hd, rd, f));
}
static void p_kv_store(tl_backend *be, tl_kv *kv, int l, const tl_rows *rows, const float *k, const float *v) {
    TIMED(P_KV_STORE, pc(be)->in->kv_store(pc(be)->in, kv, l, rows, k, v));
}
static void p_attention(tl_backend *be, float *out, const float *q, const tl_kv *kv, int l, const tl_rows *rows,
                        int nh, int nkv, int hd, float sc) {
    TIMED(P_ATTENTION, pc(be)->in->attention(pc(be)->in, out, q, kv, l, rows, nh, nkv, hd, sc));
}
static void p_swiglu(tl_backend *be, float *y, const float *g, const float *u, size_t n) {
    TIMED(P_SWIGLU, pc(be)->in->swiglu(pc(be)->in, y, g, u, n));
}
static void p_add(tl_backend *be, float *y, const float *x, size_t n) { TIMED(P_ADD, pc(be)->in->add(pc(be)->in, y, x, n)); }
static void p_mul_sigmoid(tl_backend *be, float *y, const float *g, size_t n) {
    TIMED(P_MUL_SIGMOID, pc(be)->in->mul_sigmoid(pc(be)->in, y, g, n));
}
static void p_copy_rows(tl_backend *be, float *d, int ds, int doff, const float *s, int ss, int soff, int rows,
                        int width) {
    TIMED(P_COPY_ROWS, pc(be)->in->copy_rows(pc(be)->in, d, ds, doff, s, ss, soff, rows, width));
}
static void p_gdn_conv(tl_backend *be, float *x, const float *w, tl_gdn_state *st, const tl_rows *rows) {
    TIMED(P_GDN_CONV, pc(be)->in->gdn_conv(pc(be)->in, x, w, st, rows));
}
static void p_gdn_rule(tl_backend *be, float *out, const float *qkv, const float *a, const float *b,
                       const float *alog, const float *dtb, tl_gdn_state *st, const tl_rows *rows) {
    TIMED(P_GDN_RULE, pc(be)->in->gdn_rule(pc(be)->in, out, qkv, a, b, alog, dtb, st, rows));
}
static void p_gated_rmsnorm(tl_backend *be, float *o, const float *z, const float *w, int rows, int nh, int dim,
                            float eps) {
    TIMED(P_GATED_RMSNORM, pc(be)->in->gated_rmsnorm(pc(be)->in, o, z, w, rows, nh, dim, eps));
}
static void p_gdn_state_clear(tl_backend *be, tl_gdn_state *st, int slot) {
    TIMED(P_OTHER, pc(be)->in->gdn_state_clear(pc(be)->in, st, slot));
}

tl_backend *tl_backend_prof_wrap(tl_backend *in) {
    tl_backend *be = calloc(1, sizeof *be);
    prof_ctx *p = calloc(1, sizeof *p);
    if (!be || !p) {
        free(be);
        free(p);
        return in; /* not profiled, still usable */
    }
    p->in = in;
    *be = (tl_backend){
        .name = in->name, .ctx = p, .destroy = p_destroy, .alloc = p_alloc, .free = p_free,
        .to_host = p_to_host, .to_device = p_to_device, .sync = p_sync,
        .rows_upload = in->rows_upload ? p_rows_upload : NULL, .kv_sync = in->kv_sync ? p_kv_sync : NULL,
        .weight_prepare = p_weight_prepare, .weight_free = p_weight_free, .vec_upload = p_vec_upload,
        .matmul = p_matmul, .matmul_n = p_matmul_n, .embed = p_embed, .rmsnorm = p_rmsnorm, .rope = p_rope, .kv_store = p_kv_store,
        .attention = p_attention, .swiglu = p_swiglu, .add = p_add, .mul_sigmoid = p_mul_sigmoid,
        .copy_rows = p_copy_rows, .gdn_conv = in->gdn_conv ? p_gdn_conv : NULL,
        .gdn_rule = in->gdn_rule ? p_gdn_rule : NULL,
        .gated_rmsnorm = in->gated_rmsnorm ? p_gated_rmsnorm : NULL,
        .gdn_state_clear = in->gdn_state_clear ? p_gdn_state_clear : NULL};
    return be;
}

tl_backend *tl_backend_prof_inner(tl_backend *be) {
    return be && be->destroy == p_destroy ? pc(be)->in : be;
}
