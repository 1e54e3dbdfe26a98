/* test_cuda_ops.c — every op of the CUDA backend against the scalar reference backend on random
 * inputs, odd sizes included: matmul for each weight format (dense F32/F16/BF16; MLX affine
 * 2/3/4/5/6/8 bits, groups 32/64/128, scales in F16/BF16/F32) at batch sizes that take the
 * GEMV path (1..8, aligned and misaligned x) and the tiled GEMM path (9, 70, 130), embed,
 * rmsnorm, rope, kv_store + paged attention (GQA, head dims 40..320, scrambled pages, 2 slots),
 * swiglu, add, mul_sigmoid, copy_rows, and the Gated DeltaNet group (conv, exact rule with the
 * state carried across calls and slot runs, gated rmsnorm, state clear).
 *
 * Tolerances (max |cuda - ref| over the output, relative to max(1, max |ref|)):
 *   matmul / embed 2e-4 (f32 sums vs double; the 4/8-bit GEMV folds s·Σxq + b·Σx),
 *   elementwise, norms, rope, attention 1e-4 (built with --use_fast_math),
 *   Gated DeltaNet outputs and state 1e-3 (fast exp in the decay, two calls of recurrence).
 * In CUDA builds it first runs the kernels' weight decoding (w_get, the 4/8-bit chunk dot) compiled
 * for the host against tl_wdesc_dequant_row: that part needs no GPU.
 * Run by `make test-cuda` only; without a GPU (or without CUDA in the build) it exits 77. */
#include <stdint.h>

#include "backend/backend.h"
#include "backend/ref/ref_gdn.h"
#include "tallow.h"
#include "test.h"

#ifdef TL_HAVE_CUDA
int tl_cuda_host_selfcheck(char *msg, size_t cap); /* cuda_backend.cu */
#endif

static tl_backend *R, *G; /* reference, CUDA */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float rnd(float lo, float hi) {
    return lo + (hi - lo) * (float)(rnd_u32() & 0xffffff) / 16777216.0f;
}
static float *rnd_vec(size_t n, float lo, float hi) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = rnd(lo, hi);
    return v;
}

/* A device copy of a host vector / the host copy of a device vector. */
static float *up(const float *h, size_t n) {
    float *d = G->alloc(G, n, TL_MEM_SCRATCH);
    if (n) G->to_device(G, d, h, n * sizeof(float));
    return d;
}
static float *down(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (n) G->to_host(G, h, d, n * sizeof(float));
    return h;
}
static void gfree(float *d, size_t n) { G->free(G, d, n, TL_MEM_SCRATCH); }

static void close_to(const char *what, const float *got, const float *want, size_t n,
                     double rtol) {
    double mx = 0.0, md = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)want[i]);
        if (a > mx) mx = a;
    }
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= md)) { /* NaN lands here too */
            md = d;
            at = i;
        }
    }
    double lim = rtol * (mx > 1.0 ? mx : 1.0);
    CHECKF(md <= lim, "%s: max |diff| %.3g at %zu (cuda %.8g, ref %.8g), limit %.3g", what, md,
           at, n ? got[at] : 0.0, n ? want[at] : 0.0, lim);
}

/* ---- weights -------------------------------------------------------------------------------- */

typedef struct hostw {
    tl_wdesc d;
    void *data, *scales, *biases;
} hostw;

static void put_dtype(tl_dtype t, void *base, size_t i, float v) {
    if (t == TL_DT_F32) ((float *)base)[i] = v;
    else if (t == TL_DT_F16) ((uint16_t *)base)[i] = tl_f32_to_f16(v);
    else ((uint16_t *)base)[i] = tl_f32_to_bf16(v);
}

static hostw make_dense(int rows, int cols, tl_dtype dt) {
    hostw h = {0};
    h.d.name = "dense";
    h.d.kind = TL_W_DENSE;
    h.d.rows = rows;
    h.d.cols = cols;
    h.d.dtype = dt;
    tl_wdesc_finish(&h.d);
    h.data = malloc(h.d.row_bytes * rows + 1);
    for (size_t i = 0; i < (size_t)rows * cols; i++) put_dtype(dt, h.data, i, rnd(-1, 1));
    h.d.data = h.data;
    return h;
}

static hostw make_affine(int rows, int cols, int bits, int gs, tl_dtype sdt) {
    hostw h = {0};
    h.d.name = "affine";
    h.d.kind = TL_W_AFFINE;
    h.d.rows = rows;
    h.d.cols = cols;
    h.d.dtype = sdt;
    h.d.bits = bits;
    h.d.group_size = gs;
    tl_wdesc_finish(&h.d);
    size_t nb = h.d.row_bytes * rows, ns = (size_t)rows * (cols / gs);
    h.data = malloc(nb + 1);
    for (size_t i = 0; i < nb; i++) ((uint8_t *)h.data)[i] = (uint8_t)rnd_u32();
    h.scales = malloc(ns * 4 + 4);
    h.biases = malloc(ns * 4 + 4);
    float qmax = (float)((1 << bits) - 1);
    for (size_t i = 0; i < ns; i++) {
        put_dtype(sdt, h.scales, i, rnd(0.5f, 2.0f) / qmax);
        put_dtype(sdt, h.biases, i, rnd(-1.0f, 0.0f));
    }
    h.d.data = h.data;
    h.d.scales = h.scales;
    h.d.biases = h.biases;
    return h;
}

static void hostw_free(hostw *h) {
    free(h->data);
    free(h->scales);
    free(h->biases);
}

static const char *dt_name(tl_dtype t) {
    return t == TL_DT_F32 ? "f32" : t == TL_DT_F16 ? "f16" : "bf16";
}

/* matmul and embed of one weight on both backends, at several batch sizes. */
static void check_weight(hostw *h, const char *label) {
    tl_err err = {0};
    tl_wmat *wr = NULL, *wg = NULL;
    CHECKF(R->weight_prepare(R, &h->d, &wr, &err) == 0, "%s: ref prepare: %s", label, err.msg);
    CHECKF(G->weight_prepare(G, &h->d, &wg, &err) == 0, "%s: cuda prepare: %s", label, err.msg);
    if (!wr || !wg) return;
    const int rows = h->d.rows, cols = h->d.cols;
    static const int ns[] = {1, 2, 3, 4, 5, 8, 9, 70, 130};
    for (size_t k = 0; k < TL_ARRAY_LEN(ns); k++) {
        const int n = ns[k];
        for (int mis = 0; mis < (n <= 8 ? 2 : 1); mis++) { /* mis: x at an odd float offset */
            size_t nx = (size_t)n * cols, ny = (size_t)n * rows;
            float *x = rnd_vec(nx, -1, 1), *yr = malloc(ny * sizeof *yr);
            R->matmul(R, wr, x, yr, n);
            float *xd = G->alloc(G, nx + 1, TL_MEM_SCRATCH);
            G->to_device(G, xd + mis, x, nx * sizeof(float));
            float *yd = G->alloc(G, ny, TL_MEM_SCRATCH);
            G->matmul(G, wg, xd + mis, yd, n);
            float *yg = down(yd, ny);
            char what[160];
            snprintf(what, sizeof what, "matmul %s %dx%d n=%d%s", label, rows, cols, n,
                     mis ? " (misaligned x)" : "");
            close_to(what, yg, yr, ny, 2e-4);
            free(x);
            free(yr);
            free(yg);
            gfree(xd, nx + 1);
            gfree(yd, ny);
        }
    }
    /* embed: some rows, repeated and last */
    int32_t ids[5] = {0, rows - 1, rows / 2, 0, rows > 3 ? 3 : 0};
    size_t ne = 5 * (size_t)cols;
    float *er = malloc(ne * sizeof *er), *ed = G->alloc(G, ne, TL_MEM_SCRATCH);
    R->embed(R, wr, ids, er, 5);
    G->embed(G, wg, ids, ed, 5);
    float *eg = down(ed, ne);
    char what[160];
    snprintf(what, sizeof what, "embed %s", label);
    close_to(what, eg, er, ne, 2e-4);
    free(er);
    free(eg);
    gfree(ed, ne);
    R->weight_free(R, wr);
    G->weight_free(G, wg);
}

static void test_matmul(void) {
    static const tl_dtype dts[] = {TL_DT_F32, TL_DT_F16, TL_DT_BF16};
    static const int dense_shapes[][2] = {{37, 77}, {1, 5}, {65, 128}, {130, 96}};
    char label[96];
    for (size_t t = 0; t < 3; t++)
        for (size_t s = 0; s < TL_ARRAY_LEN(dense_shapes); s++) {
            hostw h = make_dense(dense_shapes[s][0], dense_shapes[s][1], dts[t]);
            snprintf(label, sizeof label, "dense %s", dt_name(dts[t]));
            check_weight(&h, label);
            hostw_free(&h);
        }
    static const int bits[] = {2, 3, 4, 5, 6, 8};
    static const int gss[] = {32, 64, 128};
    for (size_t b = 0; b < TL_ARRAY_LEN(bits); b++)
        for (size_t g = 0; g < TL_ARRAY_LEN(gss); g++) {
            tl_dtype sdt = dts[(b + g) % 3];
            int cols = gss[g] * (g == 0 ? 3 : 2); /* 96, 128, 256 */
            hostw h = make_affine(37, cols, bits[b], gss[g], sdt);
            snprintf(label, sizeof label, "q%d g%d scales %s", bits[b], gss[g], dt_name(sdt));
            check_weight(&h, label);
            hostw_free(&h);
        }
    /* long rows: several 16-byte chunks per lane in the 4/8-bit GEMV */
    hostw h4 = make_affine(33, 2048, 4, 64, TL_DT_BF16);
    check_weight(&h4, "q4 g64 long rows");
    hostw_free(&h4);
    hostw h8 = make_affine(19, 1536, 8, 32, TL_DT_F16);
    check_weight(&h8, "q8 g32 long rows");
    hostw_free(&h8);
    /* a weight the CUDA backend must refuse cleanly */
    hostw bad = make_affine(4, 64, 4, 32, TL_DT_F32);
    bad.d.bits = 7;
    tl_err err = {0};
    tl_wmat *w = NULL;
    if (!strcmp(G->name, "cuda"))
        CHECK(G->weight_prepare(G, &bad.d, &w, &err) < 0 && w == NULL &&
              strstr(err.msg, "affine"));
    hostw_free(&bad);
}

/* ---- norms, rope, elementwise --------------------------------------------------------------- */

static void test_rmsnorm(void) {
    static const int dims[] = {1, 77, 256, 2048, 3000};
    for (size_t k = 0; k < TL_ARRAY_LEN(dims); k++) {
        int rows = 7, dim = dims[k];
        size_t n = (size_t)rows * dim;
        float *x = rnd_vec(n, -3, 3), *w = rnd_vec((size_t)dim, 0.5f, 1.5f);
        float *yr = malloc(n * sizeof *yr);
        float *xd = up(x, n), *wd = up(w, (size_t)dim), *yd = G->alloc(G, n, TL_MEM_SCRATCH);
        for (int withw = 0; withw < 2; withw++) {
            R->rmsnorm(R, yr, x, withw ? w : NULL, rows, dim, 1e-6f);
            G->rmsnorm(G, yd, xd, withw ? wd : NULL, rows, dim, 1e-6f);
            float *yg = down(yd, n);
            close_to(withw ? "rmsnorm w" : "rmsnorm", yg, yr, n, 1e-4);
            free(yg);
        }
        /* in place */
        memcpy(yr, x, n * sizeof *yr);
        R->rmsnorm(R, yr, yr, w, rows, dim, 1e-5f);
        G->rmsnorm(G, xd, xd, wd, rows, dim, 1e-5f);
        float *yg = down(xd, n);
        close_to("rmsnorm in place", yg, yr, n, 1e-4);
        free(yg);
        free(x);
        free(w);
        free(yr);
        gfree(xd, n);
        gfree(wd, (size_t)dim);
        gfree(yd, n);
    }
    /* gated rmsnorm: [rows, heads, dim] */
    int rows = 5, heads = 3, dim = 24;
    size_t n = (size_t)rows * heads * dim;
    float *o = rnd_vec(n, -2, 2), *z = rnd_vec(n, -4, 4), *w = rnd_vec((size_t)dim, 0.5f, 1.5f);
    float *od = up(o, n), *zd = up(z, n), *wd = up(w, (size_t)dim);
    R->gated_rmsnorm(R, o, z, w, rows, heads, dim, 1e-6f);
    G->gated_rmsnorm(G, od, zd, wd, rows, heads, dim, 1e-6f);
    float *og = down(od, n);
    close_to("gated_rmsnorm", og, o, n, 1e-4);
    free(o);
    free(z);
    free(w);
    free(og);
    gfree(od, n);
    gfree(zd, n);
    gfree(wd, (size_t)dim);
}

static void test_rope(void) {
    int32_t slot[4] = {0, 0, 1, 2}, pos[4] = {0, 1, 517, 7000};
    tl_rows rows = {.n = 4, .slot = slot, .pos = pos};
    static const int cfg[][3] = {{3, 64, 64}, {2, 128, 32}, {5, 40, 40}}; /* heads, hd, rot */
    for (size_t k = 0; k < TL_ARRAY_LEN(cfg); k++) {
        int nh = cfg[k][0], hd = cfg[k][1], rot = cfg[k][2];
        size_t n = (size_t)rows.n * nh * hd;
        float *x = rnd_vec(n, -1, 1), *f = malloc((size_t)(rot / 2) * sizeof *f);
        for (int i = 0; i < rot / 2; i++) f[i] = powf(10000.0f, -2.0f * i / rot);
        float *xd = up(x, n), *fd = up(f, (size_t)(rot / 2));
        if (k == 1) {
            if (G->rows_upload) G->rows_upload(G, &rows);
        } /* the uploaded and the on-the-fly path */
        R->rope(R, x, &rows, nh, hd, rot, f);
        G->rope(G, xd, &rows, nh, hd, rot, fd);
        float *xg = down(xd, n);
        close_to("rope", xg, x, n, 1e-4);
        rows.dev = NULL;
        free(x);
        free(f);
        free(xg);
        gfree(xd, n);
        gfree(fd, (size_t)(rot / 2));
    }
}

static void test_elementwise(void) {
    size_t n = 10007;
    float *g = rnd_vec(n, -8, 8), *u = rnd_vec(n, -2, 2), *y = rnd_vec(n, -2, 2);
    float *gd = up(g, n), *ud = up(u, n), *yd = up(y, n);
    R->swiglu(R, y, g, u, n);
    G->swiglu(G, yd, gd, ud, n);
    float *yg = down(yd, n);
    close_to("swiglu", yg, y, n, 1e-4);
    free(yg);
    R->add(R, y, u, n);
    G->add(G, yd, ud, n);
    yg = down(yd, n);
    close_to("add", yg, y, n, 1e-4);
    free(yg);
    R->mul_sigmoid(R, y, g, n);
    G->mul_sigmoid(G, yd, gd, n);
    yg = down(yd, n);
    close_to("mul_sigmoid", yg, y, n, 1e-4);
    free(yg);
    /* swiglu in place on gate, as the models call it */
    R->swiglu(R, g, g, u, n);
    G->swiglu(G, gd, gd, ud, n);
    yg = down(gd, n);
    close_to("swiglu in place", yg, g, n, 1e-4);
    free(yg);
    /* copy_rows: split [rows, 2*hd] into two [rows, hd]; and a stride-0 single block */
    int rows = 9, hd = 33;
    size_t ns = (size_t)rows * 2 * hd, nd = (size_t)rows * hd;
    float *src = rnd_vec(ns, -1, 1), *dst = rnd_vec(nd, -1, 1);
    float *sd = up(src, ns), *dd = up(dst, nd);
    R->copy_rows(R, dst, hd, 0, src, 2 * hd, hd, rows, hd);
    G->copy_rows(G, dd, hd, 0, sd, 2 * hd, hd, rows, hd);
    yg = down(dd, nd);
    close_to("copy_rows", yg, dst, nd, 0.0);
    free(yg);
    R->copy_rows(R, dst + 5, 0, 0, src + 7, 0, 0, 1, 100);
    G->copy_rows(G, dd + 5, 0, 0, sd + 7, 0, 0, 1, 100);
    yg = down(dd, nd);
    close_to("copy_rows one block", yg, dst, nd, 0.0);
    free(yg);
    free(g);
    free(u);
    free(y);
    free(src);
    free(dst);
    gfree(gd, n);
    gfree(ud, n);
    gfree(yd, n);
    gfree(sd, ns);
    gfree(dd, nd);
}

/* ---- KV cache + attention ------------------------------------------------------------------- */

/* Attention of random queries for `rows` over layer `layer` of the reference cache kvr and its
 * device copy kvg, on both backends: the outputs must agree within 1e-4. */
static void check_attention(const char *what, const tl_kv *kvr, const tl_kv *kvg, int layer,
                            const tl_rows *rows, int n_heads, int n_kv, int hd) {
    size_t nq = (size_t)rows->n * n_heads * hd;
    float *q = rnd_vec(nq, -2, 2), *or_ = malloc(nq * sizeof *or_);
    float *qd = up(q, nq), *od = G->alloc(G, nq, TL_MEM_SCRATCH);
    float scale = 1.0f / sqrtf((float)hd);
    R->attention(R, or_, q, kvr, layer, rows, n_heads, n_kv, hd, scale);
    G->attention(G, od, qd, kvg, layer, rows, n_heads, n_kv, hd, scale);
    float *og = down(od, nq);
    close_to(what, og, or_, nq, 1e-4);
    free(og);
    free(q);
    free(or_);
    gfree(qd, nq);
    gfree(od, nq);
}

static void test_attention(int n_heads, int n_kv, int hd) {
    const int layers = 2, page = 4, n_pages = 16, slots = 3, mpps = 8;
    const int kv_dim = n_kv * hd;
    int32_t table[3 * 8];
    for (int i = 0; i < slots * mpps; i++) table[i] = -1;
    /* slot 0: 10 tokens on pages 5, 2, 11; slot 2: 6 (7) tokens on pages 0, 15 */
    table[0] = 5;
    table[1] = 2;
    table[2] = 11;
    table[2 * mpps + 0] = 0;
    table[2 * mpps + 1] = 15;
    size_t pool = (size_t)n_pages * page * kv_dim;
    float *kr[2], *vr[2], *kg[2], *vg[2];
    for (int l = 0; l < layers; l++) {
        kr[l] = calloc(pool, sizeof(float));
        vr[l] = calloc(pool, sizeof(float));
        kg[l] = G->alloc(G, pool, TL_MEM_KV);
        vg[l] = G->alloc(G, pool, TL_MEM_KV);
    }
    tl_kv kvr = {.n_layers = layers, .kv_dim = kv_dim, .page_size = page, .n_pages = n_pages,
                 .max_slots = slots, .max_pages_per_slot = mpps, .k = kr, .v = vr,
                 .page_table = table};
    tl_kv kvg = kvr;
    kvg.k = kg;
    kvg.v = vg;
    if (G->kv_sync) G->kv_sync(G, &kvg);
    /* store all 16 tokens in one call: rows interleave the slots */
    int32_t sslot[16], spos[16];
    int na = 0, nb = 0;
    for (int i = 0; i < 16; i++) {
        if ((i % 3 == 2 && nb < 6) || na >= 10) {
            sslot[i] = 2;
            spos[i] = nb++;
        } else {
            sslot[i] = 0;
            spos[i] = na++;
        }
    }
    tl_rows srows = {.n = 16, .slot = sslot, .pos = spos};
    size_t nkv = 16 * (size_t)kv_dim;
    float *k = rnd_vec(nkv, -1, 1), *v = rnd_vec(nkv, -1, 1);
    float *kd = up(k, nkv), *vd = up(v, nkv);
    if (G->rows_upload) G->rows_upload(G, &srows);
    R->kv_store(R, &kvr, 1, &srows, k, v);
    G->kv_store(G, &kvg, 1, &srows, kd, vd);
    float *back = down(kg[1], pool);
    close_to("kv_store k pages", back, kr[1], pool, 0.0);
    free(back);
    back = down(vg[1], pool);
    close_to("kv_store v pages", back, vr[1], pool, 0.0);
    free(back);
    /* attention of rows at several positions of both slots */
    int32_t aslot[5] = {0, 2, 0, 2, 0}, apos[5] = {9, 5, 0, 2, 4};
    tl_rows arows = {.n = 5, .slot = aslot, .pos = apos};
    char what[96];
    snprintf(what, sizeof what, "attention heads %d/%d dim %d", n_heads, n_kv, hd);
    check_attention(what, &kvr, &kvg, 1, &arows, n_heads, n_kv, hd);
    free(k);
    free(v);
    gfree(kd, nkv);
    gfree(vd, nkv);
    for (int l = 0; l < layers; l++) {
        free(kr[l]);
        free(vr[l]);
        G->free(G, kg[l], pool, TL_MEM_KV);
        G->free(G, vg[l], pool, TL_MEM_KV);
    }
}

/* Decode rows over long contexts: few (row, head) blocks, so the positions are split over
 * blocks and merged (k_attention_combine). Pages are handed out in a scattered order; K and V
 * are random in the whole pool. */
static void test_attention_long(int n_heads, int n_kv, int hd, int ctx) {
    const int page = 16, slots = 2, mpps = (ctx + page - 1) / page, n_pages = slots * mpps + 3;
    const int kv_dim = n_kv * hd;
    int32_t *table = malloc((size_t)slots * mpps * sizeof *table);
    for (int i = 0; i < slots * mpps; i++) table[i] = (int32_t)((i * 7 + 3) % n_pages);
    size_t pool = (size_t)n_pages * page * kv_dim;
    float *kr = rnd_vec(pool, -1, 1), *vr = rnd_vec(pool, -1, 1);
    float *kg = up(kr, pool), *vg = up(vr, pool);
    float *krs[1] = {kr}, *vrs[1] = {vr}, *kgs[1] = {kg}, *vgs[1] = {vg};
    tl_kv kvr = {.n_layers = 1, .kv_dim = kv_dim, .page_size = page, .n_pages = n_pages,
                 .max_slots = slots, .max_pages_per_slot = mpps, .k = krs, .v = vrs,
                 .page_table = table};
    tl_kv kvg = kvr;
    kvg.k = kgs;
    kvg.v = vgs;
    if (G->kv_sync) G->kv_sync(G, &kvg);
    int32_t aslot[3] = {0, 1, 0}, apos[3] = {ctx - 1, ctx / 2 + 3, 70};
    for (int n = 1; n <= 3; n += 2) {
        tl_rows arows = {.n = n, .slot = aslot, .pos = apos};
        char what[112];
        snprintf(what, sizeof what, "attention heads %d/%d dim %d, %d rows, context %d", n_heads,
                 n_kv, hd, n, ctx);
        check_attention(what, &kvr, &kvg, 0, &arows, n_heads, n_kv, hd);
    }
    free(kr);
    free(vr);
    G->free(G, kg, pool, TL_MEM_SCRATCH);
    G->free(G, vg, pool, TL_MEM_SCRATCH);
    free(table);
}

/* ---- Gated DeltaNet ------------------------------------------------------------------------- */

static void test_gdn(int Hk, int Hv, int dk, int dv) {
    const int slots = 3, K = 4;
    const int C = 2 * Hk * dk + Hv * dv;
    tl_gdn_state sr = {.max_slots = slots, .conv_dim = C, .conv_k = K, .n_v_heads = Hv,
                       .n_k_heads = Hk, .dk = dk, .dv = dv};
    size_t nc = (size_t)slots * (K - 1) * C, nr = (size_t)slots * Hv * dk * dv;
    sr.conv = calloc(nc, sizeof(float));
    sr.rec = calloc(nr, sizeof(float));
    tl_gdn_state sg = sr;
    sg.conv = G->alloc(G, nc, TL_MEM_STATE);
    sg.rec = G->alloc(G, nr, TL_MEM_STATE);
    float *w = rnd_vec((size_t)C * K, -0.5f, 0.5f), *wd = up(w, (size_t)C * K);
    float *alog = rnd_vec((size_t)Hv, -1, 1), *dtb = rnd_vec((size_t)Hv, -1, 1);
    float *alogd = up(alog, (size_t)Hv), *dtbd = up(dtb, (size_t)Hv);
    /* call 1: runs slot 2 x3, slot 0, slot 1 x2; call 2: one token each of 1, 2; call 3: slot
     * 0 twice with slot 1 between (two runs of one slot: must stay in row order) */
    int32_t s1[6] = {2, 2, 2, 0, 1, 1}, p1[6] = {0, 1, 2, 0, 0, 1};
    int32_t s2[2] = {1, 2}, p2[2] = {2, 3};
    int32_t s3[3] = {0, 1, 0}, p3[3] = {1, 3, 2};
    tl_rows calls[3] = {{.n = 6, .slot = s1, .pos = p1}, {.n = 2, .slot = s2, .pos = p2},
                        {.n = 3, .slot = s3, .pos = p3}};
    for (int ci = 0; ci < 3; ci++) {
        tl_rows *rows = &calls[ci];
        const int n = rows->n;
        size_t nx = (size_t)n * C, nab = (size_t)n * Hv, no = (size_t)n * Hv * dv;
        float *x = rnd_vec(nx, -2, 2), *a = rnd_vec(nab, -3, 3), *b = rnd_vec(nab, -3, 3);
        float *xd = up(x, nx), *ad = up(a, nab), *bd = up(b, nab);
        float *o = malloc(no * sizeof *o), *od = G->alloc(G, no, TL_MEM_SCRATCH);
        if (ci != 1 && G->rows_upload) G->rows_upload(G, rows);
        R->gdn_conv(R, x, w, &sr, rows);
        G->gdn_conv(G, xd, wd, &sg, rows);
        float *xg = down(xd, nx);
        close_to("gdn_conv out", xg, x, nx, 1e-4);
        free(xg);
        R->gdn_rule(R, o, x, a, b, alog, dtb, &sr, rows);
        G->gdn_rule(G, od, xd, ad, bd, alogd, dtbd, &sg, rows);
        float *og = down(od, no);
        char what[96];
        snprintf(what, sizeof what, "gdn_rule out (call %d, Hk %d Hv %d dk %d dv %d)", ci + 1,
                 Hk, Hv, dk, dv);
        close_to(what, og, o, no, 1e-3);
        free(og);
        free(x);
        free(a);
        free(b);
        free(o);
        gfree(xd, nx);
        gfree(ad, nab);
        gfree(bd, nab);
        gfree(od, no);
        rows->dev = NULL;
    }
    float *cg = down(sg.conv, nc), *rg = down(sg.rec, nr);
    close_to("gdn conv state", cg, sr.conv, nc, 1e-4);
    close_to("gdn recurrent state", rg, sr.rec, nr, 1e-3);
    free(cg);
    free(rg);
    R->gdn_state_clear(R, &sr, 2);
    G->gdn_state_clear(G, &sg, 2);
    cg = down(sg.conv, nc);
    rg = down(sg.rec, nr);
    close_to("gdn conv state after clear", cg, sr.conv, nc, 1e-4);
    close_to("gdn recurrent state after clear", rg, sr.rec, nr, 1e-3);
    size_t per = (size_t)Hv * dk * dv;
    int zero = 1;
    for (size_t i = 0; i < per; i++) zero &= rg[2 * per + i] == 0.0f;
    CHECK(zero);
    free(cg);
    free(rg);
    free(sr.conv);
    free(sr.rec);
    G->free(G, sg.conv, nc, TL_MEM_STATE);
    G->free(G, sg.rec, nr, TL_MEM_STATE);
    free(w);
    free(alog);
    free(dtb);
    gfree(wd, (size_t)C * K);
    gfree(alogd, (size_t)Hv);
    gfree(dtbd, (size_t)Hv);
}

static void test_zero_sizes(void) {
    /* every op accepts n == 0 */
    tl_rows none = {.n = 0};
    G->add(G, NULL, NULL, 0);
    G->swiglu(G, NULL, NULL, NULL, 0);
    G->rmsnorm(G, NULL, NULL, NULL, 0, 8, 1e-6f);
    G->rope(G, NULL, &none, 2, 8, 8, NULL);
    G->copy_rows(G, NULL, 0, 0, NULL, 0, 0, 0, 4);
    G->sync(G);
    /* ...and leaves the backend working: a zero-size launch that raised a CUDA error would
     * show up in the next op's result */
    float x[3] = {1, 2, 3}, y[3] = {10, 20, 30};
    float *xd = up(x, 3), *yd = up(y, 3);
    G->add(G, yd, xd, 3);
    float *got = down(yd, 3);
    CHECKF(got[0] == 11 && got[1] == 22 && got[2] == 33, "add after zero-size ops: %g %g %g",
           got[0], got[1], got[2]);
    free(got);
    gfree(xd, 3);
    gfree(yd, 3);
}

int main(void) {
    /* TALLOW_CUDA_OPS_SELFTEST=cpu runs these checks on the CPU backend instead: a check of
     * the test itself (inputs, tolerances) on a machine without a GPU. */
    const char *self = getenv("TALLOW_CUDA_OPS_SELFTEST");
    int selftest = self && !strcmp(self, "cpu");
#ifdef TL_HAVE_CUDA
    /* The kernels' weight decoding compiled for the host: runs with or without a GPU. */
    char msg[512];
    int host_bad = tl_cuda_host_selfcheck(msg, sizeof msg);
    CHECKF(host_bad == 0, "host self-check of the CUDA weight decoding: %d mismatches; first: %s",
           host_bad, msg);
    if (!selftest && !tl_backend_cuda_available()) {
        if (host_bad) return test_done();
        printf("host self-check of the CUDA weight decoding passed\n");
        return test_skip("no CUDA device here");
    }
#endif
    if (!selftest && !tl_backend_cuda_available())
        return test_skip("no CUDA device here (or tallow was built without CUDA)");
    tl_err err = {0};
    R = tl_backend_ref_new();
    G = selftest ? tl_backend_cpu_new(1, &err) : tl_backend_cuda_new(0, &err);
    if (!G) {
        fprintf(stderr, "cannot start the CUDA backend: %s\n", err.msg);
        return 1;
    }
    test_matmul();
    test_rmsnorm();
    test_rope();
    test_elementwise();
    test_attention(4, 2, 64);
    test_attention(8, 8, 128);
    test_attention(6, 2, 40);
    test_attention(4, 1, 256);
    test_attention(2, 1, 320);
    test_attention_long(24, 8, 128, 1500); /* Llama-3.2-3B's heads */
    test_attention_long(8, 2, 256, 700);   /* Qwen3.5's full-attention heads */
    test_attention_long(4, 4, 40, 130);    /* just over one split */
    test_gdn(2, 4, 32, 24);
    test_gdn(1, 2, 128, 128);
    test_gdn(2, 2, 16, 300);
    test_gdn(1, 2, 160, 40); /* dk over 128: the state-in-global-memory kernel */
    test_zero_sizes();
    G->sync(G);
    G->destroy(G);
    R->destroy(R);
    return test_done();
}
