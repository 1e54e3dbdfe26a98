/* test_kernels.c — every fast path of the "cpu" backend against the scalar reference backend
 * ("ref", dot products in double over tl_wdesc_dequant_row), on random inputs of odd sizes, for
 * every kernel set this CPU runs (avx512, avx2, scalar: TALLOW_CPU_ISA) and 1, 2 and 3 threads.
 *
 * Tolerances (relative to max|y_ref| of the output, stated per path):
 * - dense f32/f16/bf16 and generic-bit (2/3/5/6) matmul: 2e-5 (f32 accumulation order only)
 * - 4/8-bit integer path, two-level int8 activations (the default): 2e-4
 * - 4/8-bit integer path, one-level int8 activations (TALLOW_CPU_XQ=1, opt-in speed mode):
 *   5e-2 of max|y| and RMS error below 3e-2 of RMS(y) — int8 rounding of activations with
 *   outliers; measured and printed (it is why one level is not the default)
 * - elementwise / norm / rope / attention / Gated DeltaNet ops: 1e-4 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "test.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_f(void) { return (float)rnd_u32() / 4294967296.f * 2.f - 1.f; } /* [-1, 1) */

/* Activations with a few outliers, like real hidden states. */
static void fill_x(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = rnd_f() * (rnd_u32() % 50 == 0 ? 8.f : 1.f);
}

typedef struct {
    double max_err, max_ref, se, sr;
} errstat;

static errstat compare(const float *y, const float *yref, size_t n) {
    errstat e = {0};
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - yref[i]);
        if (!(d <= e.max_err)) e.max_err = isnan(d) ? INFINITY : d;
        if (fabs(yref[i]) > e.max_ref) e.max_ref = fabs(yref[i]);
        e.se += d * d;
        e.sr += (double)yref[i] * yref[i];
    }
    return e;
}

static double rel(errstat e) { return e.max_ref > 0 ? e.max_err / e.max_ref : e.max_err; }
static double rms_rel(errstat e) { return e.sr > 0 ? sqrt(e.se / e.sr) : sqrt(e.se); }

static void put_half(void *p, tl_dtype dt, size_t i, float v) {
    if (dt == TL_DT_F16) ((uint16_t *)p)[i] = tl_f32_to_f16(v);
    else if (dt == TL_DT_BF16) ((uint16_t *)p)[i] = tl_f32_to_bf16(v);
    else ((float *)p)[i] = v;
}

typedef struct {
    tl_wdesc d;
    void *data, *scales, *biases;
} wbuf;

static void wbuf_affine(wbuf *b, int rows, int cols, int bits, int gs, tl_dtype sdt) {
    memset(b, 0, sizeof *b);
    size_t bytes = (size_t)rows * cols * bits / 8, ng = (size_t)rows * (cols / gs);
    b->data = malloc(bytes + 8);
    for (size_t i = 0; i < bytes; i++) ((uint8_t *)b->data)[i] = (uint8_t)rnd_u32();
    b->scales = malloc(ng * 4);
    b->biases = malloc(ng * 4);
    for (size_t i = 0; i < ng; i++) {
        put_half(b->scales, sdt, i, (0.002f + 0.02f * fabsf(rnd_f())) / (float)(1 << (bits - 4 > 0 ? bits - 4 : 0)));
        put_half(b->biases, sdt, i, 0.1f * rnd_f());
    }
    b->d = (tl_wdesc){.name = "test.affine", .kind = TL_W_AFFINE, .rows = rows, .cols = cols, .dtype = sdt,
                      .data = b->data, .bits = bits, .group_size = gs, .scales = b->scales, .biases = b->biases};
    tl_wdesc_finish(&b->d);
}

static void wbuf_dense(wbuf *b, int rows, int cols, tl_dtype dt) {
    memset(b, 0, sizeof *b);
    size_t n = (size_t)rows * cols;
    b->data = malloc(n * 4);
    for (size_t i = 0; i < n; i++) put_half(b->data, dt, i, 0.05f * rnd_f());
    b->d = (tl_wdesc){.name = "test.dense", .kind = TL_W_DENSE, .rows = rows, .cols = cols, .dtype = dt,
                      .data = b->data};
    tl_wdesc_finish(&b->d);
}

static void wbuf_free(wbuf *b) {
    free(b->data);
    free(b->scales);
    free(b->biases);
}

/* One matmul case on be vs ref; returns the error statistics. */
static errstat run_mm(tl_backend *be, tl_backend *ref, const wbuf *b, int n) {
    tl_err err = {0};
    tl_wmat *w = NULL, *wr = NULL;
    errstat e = {INFINITY, 1, 0, 0};
    int rc1 = be->weight_prepare(be, &b->d, &w, &err);
    int rc2 = ref->weight_prepare(ref, &b->d, &wr, &err);
    CHECKF(rc1 == 0 && rc2 == 0, "prepare: %s", err.msg);
    if (rc1 || rc2) return e;
    float *x = malloc((size_t)n * b->d.cols * 4), *y = malloc((size_t)n * b->d.rows * 4),
          *yr = malloc((size_t)n * b->d.rows * 4);
    fill_x(x, (size_t)n * b->d.cols);
    be->matmul(be, w, x, y, n);
    ref->matmul(ref, wr, x, yr, n);
    e = compare(y, yr, (size_t)n * b->d.rows);
    /* embed goes through the prepared (maybe repacked) layout too */
    int32_t ids[3] = {0, b->d.rows - 1, b->d.rows / 2};
    float *ey = malloc((size_t)3 * b->d.cols * 4), *eyr = malloc((size_t)3 * b->d.cols * 4);
    be->embed(be, w, ids, ey, 3);
    ref->embed(ref, wr, ids, eyr, 3);
    errstat ee = compare(ey, eyr, (size_t)3 * b->d.cols);
    CHECKF(ee.max_err == 0, "embed %s differs by %g", b->d.name, ee.max_err);
    free(ey);
    free(eyr);
    free(x);
    free(y);
    free(yr);
    be->weight_free(be, w);
    ref->weight_free(ref, wr);
    return e;
}

static void test_matmul(tl_backend *be, tl_backend *ref, const char *isa, int levels) {
    static const int bits_list[] = {2, 3, 4, 5, 6, 8};
    static const int gs_list[] = {32, 64, 128};
    static const tl_dtype sdts[] = {TL_DT_F16, TL_DT_BF16, TL_DT_F32};
    static const int ns[] = {1, 3, 17, 64};
    double worst1 = 0, worst2 = 0, worst_rms = 0;
    for (size_t bi = 0; bi < TL_ARRAY_LEN(bits_list); bi++)
        for (size_t gi = 0; gi < TL_ARRAY_LEN(gs_list); gi++)
            for (size_t ni = 0; ni < TL_ARRAY_LEN(ns); ni++) {
                int bits = bits_list[bi], gs = gs_list[gi], n = ns[ni];
                int rows = (int)(1 + rnd_u32() % 70), cols = gs * (int)(1 + rnd_u32() % 5);
                if (ni == 0) rows = 33; /* more than two row blocks, with a partial one */
                wbuf b;
                wbuf_affine(&b, rows, cols, bits, gs, sdts[(bi + gi + ni) % 3]);
                errstat e = run_mm(be, ref, &b, n);
                int intpath = bits == 4 || bits == 8;
                int two = intpath && levels != 1;
                if (!intpath) {
                    CHECKF(rel(e) < 2e-5, "%s bits %d gs %d [%d x %d] n %d: rel err %.3g", isa, bits, gs, rows,
                           cols, n, rel(e));
                } else if (two) {
                    worst2 = fmax(worst2, rel(e));
                    CHECKF(rel(e) < 2e-4, "%s bits %d gs %d [%d x %d] n %d (int8 x2): rel err %.3g", isa, bits, gs,
                           rows, cols, n, rel(e));
                } else {
                    worst1 = fmax(worst1, rel(e));
                    worst_rms = fmax(worst_rms, rms_rel(e));
                    CHECKF(rel(e) < 5e-2 && rms_rel(e) < 3e-2,
                           "%s bits %d gs %d [%d x %d] n %d (int8): rel err %.3g rms %.3g", isa, bits, gs, rows,
                           cols, n, rel(e), rms_rel(e));
                }
                wbuf_free(&b);
            }
    printf("  %s: int8 x2 worst rel err %.2e; int8 x1 worst rel err %.2e (rms %.2e)\n", isa, worst2, worst1,
           worst_rms);
    static const tl_dtype dts[] = {TL_DT_F32, TL_DT_F16, TL_DT_BF16};
    static const int dcols[] = {37, 64, 200};
    for (size_t di = 0; di < 3; di++)
        for (size_t ni = 0; ni < TL_ARRAY_LEN(ns); ni++) {
            wbuf b;
            int rows = 1 + (int)(rnd_u32() % 40);
            wbuf_dense(&b, rows, dcols[(di + ni) % 3], dts[di]);
            errstat e = run_mm(be, ref, &b, ns[ni]);
            CHECKF(rel(e) < 2e-5, "%s dense %s [%d x %d] n %d: rel err %.3g", isa, tl_dtype_name(dts[di]), rows,
                   b.d.cols, ns[ni], rel(e));
            wbuf_free(&b);
        }
}

/* Realistic shape at 4-bit gs64: the error a model sees, printed for the record. */
static void test_matmul_big(tl_backend *be, tl_backend *ref) {
    wbuf b;
    wbuf_affine(&b, 4100, 2048, 4, 64, TL_DT_BF16); /* > 4 MiB repacked: the huge-page mmap path */
    errstat e1 = run_mm(be, ref, &b, 1), e2 = run_mm(be, ref, &b, 32);
    printf("  [4100 x 2048] 4-bit gs64: n=1 rel err %.2e (rms %.2e); n=32 rel err %.2e (rms %.2e)\n", rel(e1),
           rms_rel(e1), rel(e2), rms_rel(e2));
    CHECK(rel(e1) < 2e-4);
    CHECK(rel(e2) < 2e-4);
    wbuf_free(&b);
}

/* Matrices wider than one 2048-column panel (stored panel by panel, the last one partial) and
 * a fused matmul_n of three weights sharing the input, against one matmul each. */
static void test_matmul_wide(tl_backend *be, tl_backend *ref, const char *isa) {
    static const int gs_list[] = {32, 64, 128};
    for (int bits = 4; bits <= 8; bits += 4)
        for (size_t gi = 0; gi < TL_ARRAY_LEN(gs_list); gi++)
            for (int n = 1; n <= 5; n++) { /* 1-2: decode panel by panel, 3-5: tiles */
                int gs = gs_list[gi], rows = 40, cols = 2 * 2048 + 3 * gs;
                wbuf b;
                wbuf_affine(&b, rows, cols, bits, gs, TL_DT_BF16);
                errstat e = run_mm(be, ref, &b, n);
                CHECKF(rel(e) < 2e-4, "%s wide bits %d gs %d [%d x %d] n %d: rel err %.3g", isa, bits, gs, rows,
                       cols, n, rel(e));
                wbuf_free(&b);
            }
    enum { NW = 3, COLS = 2048 + 64 };
    const int rws[NW] = {40, 16, 7}, ns[2] = {1, 19};
    wbuf b[NW];
    tl_wmat *w[NW];
    tl_err err = {0};
    for (int i = 0; i < NW; i++) {
        wbuf_affine(&b[i], rws[i], COLS, 4, 64, TL_DT_BF16);
        CHECKF(be->weight_prepare(be, &b[i].d, &w[i], &err) == 0, "prepare: %s", err.msg);
    }
    for (int k = 0; k < 2; k++) {
        int n = ns[k];
        float *x = malloc((size_t)n * COLS * 4), *y[NW], *yr[NW];
        fill_x(x, (size_t)n * COLS);
        for (int i = 0; i < NW; i++) {
            y[i] = malloc((size_t)n * rws[i] * 4);
            yr[i] = malloc((size_t)n * rws[i] * 4);
            be->matmul(be, w[i], x, yr[i], n);
        }
        tl_backend_matmul_n(be, NW, (const tl_wmat *const *)w, x, y, n);
        for (int i = 0; i < NW; i++) {
            errstat e = compare(y[i], yr[i], (size_t)n * rws[i]);
            CHECKF(e.max_err == 0, "%s matmul_n weight %d n %d differs from matmul by %g", isa, i, n, e.max_err);
            free(y[i]);
            free(yr[i]);
        }
        free(x);
    }
    for (int i = 0; i < NW; i++) {
        be->weight_free(be, w[i]);
        wbuf_free(&b[i]);
    }
}

static void check_close(const char *what, const char *isa, const float *y, const float *yr, size_t n, double tol) {
    errstat e = compare(y, yr, n);
    CHECKF(rel(e) < tol, "%s %s: rel err %.3g (tol %.1g)", isa, what, rel(e), tol);
}

static void test_ops(tl_backend *be, tl_backend *ref, const char *isa) {
    enum { N = 5, DIM = 300, BIG = 40000 };
    float *x = malloc(BIG * 4), *g = malloc(BIG * 4), *y = malloc(BIG * 4), *yr = malloc(BIG * 4), *w = malloc(DIM * 4);
    fill_x(x, BIG);
    fill_x(g, BIG);
    for (int i = 0; i < DIM; i++) w[i] = 1.f + 0.1f * rnd_f();
    /* rmsnorm: few rows (single thread) and many (pool), with and without weight, in place */
    for (int big = 0; big < 2; big++) {
        int rows = big ? BIG / DIM : N;
        be->rmsnorm(be, y, x, w, rows, DIM, 1e-6f);
        ref->rmsnorm(ref, yr, x, w, rows, DIM, 1e-6f);
        check_close("rmsnorm", isa, y, yr, (size_t)rows * DIM, 1e-5);
        memcpy(y, x, (size_t)rows * DIM * 4);
        be->rmsnorm(be, y, y, NULL, rows, DIM, 1e-6f);
        ref->rmsnorm(ref, yr, x, NULL, rows, DIM, 1e-6f);
        check_close("rmsnorm in place", isa, y, yr, (size_t)rows * DIM, 1e-5);
    }
    size_t sizes[] = {7, 1000, BIG};
    for (int si = 0; si < 3; si++) {
        size_t n = sizes[si];
        be->swiglu(be, y, g, x, n);
        ref->swiglu(ref, yr, g, x, n);
        check_close("swiglu", isa, y, yr, n, 1e-5);
        memcpy(y, x, n * 4);
        memcpy(yr, x, n * 4);
        be->mul_sigmoid(be, y, g, n);
        ref->mul_sigmoid(ref, yr, g, n);
        check_close("mul_sigmoid", isa, y, yr, n, 1e-5);
        be->add(be, y, g, n);
        ref->add(ref, yr, g, n);
        check_close("add", isa, y, yr, n, 1e-5);
    }
    /* rope: partial rotary (64 of 256) and full, positions far apart */
    int32_t slots[N] = {0, 0, 1, 0, 1}, pos[N] = {0, 1, 7, 2, 4000};
    tl_rows rows = {.n = N, .slot = slots, .pos = pos};
    float inv[128];
    for (int i = 0; i < 128; i++) inv[i] = powf(1e7f, -2.f * i / 64.f);
    memcpy(y, x, (size_t)N * 4 * 256 * 4);
    memcpy(yr, x, (size_t)N * 4 * 256 * 4);
    be->rope(be, y, &rows, 4, 256, 64, inv);
    ref->rope(ref, yr, &rows, 4, 256, 64, inv);
    check_close("rope", isa, y, yr, (size_t)N * 4 * 256, 1e-6);
    /* gated rmsnorm over 5 rows x 3 heads x 128 */
    memcpy(y, x, (size_t)N * 3 * 128 * 4);
    memcpy(yr, x, (size_t)N * 3 * 128 * 4);
    be->gated_rmsnorm(be, y, g, w, N, 3, 128, 1e-6f);
    ref->gated_rmsnorm(ref, yr, g, w, N, 3, 128, 1e-6f);
    check_close("gated_rmsnorm", isa, y, yr, (size_t)N * 3 * 128, 1e-5);
    /* copy_rows */
    memset(y, 0, 4000 * 4);
    memset(yr, 0, 4000 * 4);
    be->copy_rows(be, y, 50, 3, x, 70, 5, 9, 20);
    ref->copy_rows(ref, yr, 50, 3, x, 70, 5, 9, 20);
    check_close("copy_rows", isa, y, yr, 4000, 1e-9);
    free(x);
    free(g);
    free(y);
    free(yr);
    free(w);
}

/* Paged attention: 2 slots, pages out of order, GQA, a prefill batch (rows of slot 0 at
 * positions 0..11: blocks of rows share the 16 lanes of the flash kernel) and decode rows.
 * Shapes: D 72 (masked tails) with 3 q heads per kv head, and Qwen3.5's D 256 with 4. */
static void test_attention(tl_backend *be, tl_backend *ref, const char *isa, const int D, const int HQ,
                           const int HKV) {
    enum { L = 1, PS = 4, NP = 12, MPS = 6 };
    tl_kv kv = {.n_layers = L, .kv_dim = HKV * D, .page_size = PS, .n_pages = NP, .max_slots = 2,
                .max_pages_per_slot = MPS};
    float *kbuf = calloc((size_t)NP * PS * HKV * D, 4), *vbuf = calloc((size_t)NP * PS * HKV * D, 4);
    float *kl[1] = {kbuf}, *vl[1] = {vbuf};
    kv.k = kl;
    kv.v = vl;
    int32_t table[2 * MPS] = {5, 2, 9, 0, -1, -1, 1, 11, 3, 7, 4, -1};
    kv.page_table = table;
    enum { R = 14 };
    int32_t slot[R], pos[R];
    for (int i = 0; i < 12; i++) slot[i] = 0, pos[i] = i;
    slot[12] = 1, pos[12] = 17;
    slot[13] = 1, pos[13] = 18;
    /* fill slot 1's history directly */
    for (int t = 0; t < 17; t++) {
        float *kd = kbuf + ((size_t)table[MPS + t / PS] * PS + t % PS) * HKV * D;
        float *vd = vbuf + ((size_t)table[MPS + t / PS] * PS + t % PS) * HKV * D;
        fill_x(kd, HKV * D);
        fill_x(vd, HKV * D);
    }
    tl_rows rows = {.n = R, .slot = slot, .pos = pos};
    float *k = malloc((size_t)R * HKV * D * 4), *v = malloc((size_t)R * HKV * D * 4), *q = malloc((size_t)R * HQ * D * 4);
    fill_x(k, (size_t)R * HKV * D);
    fill_x(v, (size_t)R * HKV * D);
    fill_x(q, (size_t)R * HQ * D);
    float *o = malloc((size_t)R * HQ * D * 4), *orf = malloc((size_t)R * HQ * D * 4);
    be->kv_store(be, &kv, 0, &rows, k, v);
    be->attention(be, o, q, &kv, 0, &rows, HQ, HKV, D, 1.f / sqrtf(D));
    ref->attention(ref, orf, q, &kv, 0, &rows, HQ, HKV, D, 1.f / sqrtf(D));
    check_close("attention", isa, o, orf, (size_t)R * HQ * D, 1e-5);
    free(kbuf);
    free(vbuf);
    free(k);
    free(v);
    free(q);
    free(o);
    free(orf);
}

/* Gated DeltaNet conv + rule over 2 slots (a 5-token prefill and a decode row), twice so the
 * state carries over, then state clear. Shapes: Hk 2, Hv 4 (ratio 2), dk 32, dv 48 (odd
 * column blocks) and the real dk = dv = 128; a 40-token run goes through the chunked prefill. */
static void test_gdn(tl_backend *be, tl_backend *ref, const char *isa, const int HK, const int HV, const int DK,
                     const int DV, const int R) {
    enum { KC = 4, SL = 2 };
    const int C = 2 * HK * DK + HV * DV;
    tl_gdn_state st = {.max_slots = SL, .conv_dim = C, .conv_k = KC, .n_v_heads = HV, .n_k_heads = HK, .dk = DK, .dv = DV};
    tl_gdn_state sr = st;
    size_t cn = (size_t)SL * (KC - 1) * C, rn = (size_t)SL * HV * DK * DV;
    st.conv = calloc(cn, 4);
    st.rec = calloc(rn, 4);
    sr.conv = calloc(cn, 4);
    sr.rec = calloc(rn, 4);
    int32_t *slot = malloc((size_t)R * 4), *pos = malloc((size_t)R * 4);
    for (int i = 0; i < R; i++) slot[i] = i < R - 1 ? 0 : 1, pos[i] = i < R - 1 ? i : 0;
    tl_rows rows = {.n = R, .slot = slot, .pos = pos};
    float *w = malloc((size_t)C * KC * 4), *x = malloc((size_t)R * C * 4), *xr = malloc((size_t)R * C * 4);
    float *a = malloc((size_t)R * HV * 4), *b = malloc((size_t)R * HV * 4), alog[64], dtb[64];
    float *o = malloc((size_t)R * HV * DV * 4), *orf = malloc((size_t)R * HV * DV * 4);
    fill_x(w, (size_t)C * KC);
    for (int i = 0; i < HV; i++) alog[i] = 0.5f * rnd_f(), dtb[i] = rnd_f();
    for (int step = 0; step < 2; step++) {
        fill_x(x, (size_t)R * C);
        memcpy(xr, x, (size_t)R * C * 4);
        for (int i = 0; i < R * HV; i++) a[i] = 2 * rnd_f(), b[i] = 2 * rnd_f();
        be->gdn_conv(be, x, w, &st, &rows);
        ref->gdn_conv(ref, xr, w, &sr, &rows);
        check_close("gdn_conv", isa, x, xr, (size_t)R * C, 1e-5);
        be->gdn_rule(be, o, x, a, b, alog, dtb, &st, &rows);
        ref->gdn_rule(ref, orf, x, a, b, alog, dtb, &sr, &rows);
        check_close("gdn_rule out", isa, o, orf, (size_t)R * HV * DV, 1e-4);
        check_close("gdn_rule state", isa, st.rec, sr.rec, rn, 1e-4);
        check_close("gdn_conv state", isa, st.conv, sr.conv, cn, 1e-6);
    }
    be->gdn_state_clear(be, &st, 1);
    double s1 = 0;
    for (size_t i = rn / 2; i < rn; i++) s1 += fabsf(st.rec[i]);
    CHECK(s1 == 0);
    free(st.conv);
    free(st.rec);
    free(sr.conv);
    free(sr.rec);
    free(w);
    free(x);
    free(xr);
    free(o);
    free(orf);
    free(a);
    free(b);
    free(slot);
    free(pos);
}

/* The pool: task-queue runs (any subset of threads may drain them) mixed with static runs
 * (every thread must run its share) back to back, so a worker that wakes late for one job must
 * still find the next; every task done exactly once. A lost job hangs this test. */
typedef struct {
    _Atomic int next;
    int n;
    int done[64];
} pool_job;

static void pool_dyn(void *p, int ith, int nth) {
    pool_job *j = p;
    for (;;) {
        int t = atomic_fetch_add(&j->next, 1);
        if (t >= j->n) break;
        j->done[t]++;
    }
}

static void pool_static(void *p, int ith, int nth) {
    pool_job *j = p;
    int lo, hi;
    tl_split_range(j->n, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++) j->done[t]++;
}

static void test_pool(void) {
    for (int threads = 1; threads <= 3; threads++) {
        tl_pool *p = NULL;
        tl_err err = {0};
        CHECK(tl_pool_new(&p, threads, &err) == 0);
        if (!p) continue;
        int bad = 0;
        for (int i = 0; i < 3000; i++) {
            pool_job j = {.n = 1 + i % 64};
            atomic_store(&j.next, 0);
            if (i % 3) tl_pool_run_dyn(p, pool_dyn, &j);
            else tl_pool_run(p, pool_static, &j);
            for (int t = 0; t < j.n; t++) bad += j.done[t] != 1;
        }
        CHECKF(bad == 0, "%d threads: %d tasks not done exactly once", threads, bad);
        tl_pool_free(p);
    }
}

int main(void) {
    test_pool();
    tl_backend *ref = tl_backend_ref_new();
    CHECK(ref != NULL);
    if (!ref) return test_done();
    static const char *isas[] = {"avx512", "avx2", "scalar"};
    char seen[64] = "";
    for (size_t ii = 0; ii < TL_ARRAY_LEN(isas); ii++) {
        setenv("TALLOW_CPU_ISA", isas[ii], 1);
        for (int threads = 1; threads <= 3; threads++) {
            tl_err err = {0};
            tl_backend *be = tl_backend_cpu_new(threads, &err);
            CHECKF(be != NULL, "cpu backend: %s", err.msg);
            if (!be) continue;
            const char *isa = tl_backend_cpu_isa(be);
            if (threads == 1 && strstr(seen, isa)) { /* this CPU lacks the ISA: already tested */
                be->destroy(be);
                break;
            }
            if (threads == 1) {
                strcat(seen, isa);
                strcat(seen, " ");
            }
            printf("%s, %d thread(s)\n", isa, threads);
            test_matmul(be, ref, isa, 0);
            if (threads == 2) {
                setenv("TALLOW_CPU_XQ", "1", 1);
                tl_backend *b1 = tl_backend_cpu_new(2, &err);
                unsetenv("TALLOW_CPU_XQ");
                if (b1) {
                    test_matmul(b1, ref, isa, 1);
                    b1->destroy(b1);
                }
                test_matmul_big(be, ref);
            }
            test_matmul_wide(be, ref, isa);
            test_ops(be, ref, isa);
            test_attention(be, ref, isa, 72, 6, 2);
            test_attention(be, ref, isa, 256, 8, 2);
            test_gdn(be, ref, isa, 2, 4, 32, 48, 6);
            test_gdn(be, ref, isa, 2, 2, 128, 128, 6);
            test_gdn(be, ref, isa, 2, 4, 128, 128, 41); /* a 40-token run: the chunked form */
            /* conv_dim 2*1*24 + 2*20 = 88, not a multiple of 16: the masked tail of conv_silu;
             * a 2-token run is shorter than the kernel's K-1 = 3 history rows */
            test_gdn(be, ref, isa, 1, 2, 24, 20, 3);
            be->destroy(be);
        }
    }
    unsetenv("TALLOW_CPU_ISA");
    ref->destroy(ref);
    return test_done();
}
