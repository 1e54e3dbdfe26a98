/* quant.c — the CPU backend's weight layouts and its portable (scalar) kernels.
 *
 * Contract: tl_cpu_qr16_pack turns an MLX affine 4/8-bit matrix into the QR16 layout described
 * in cpu.h (counted as TL_MEM_WEIGHTS, in huge pages when large); tl_cpu_xq_rows quantizes
 * activations per group for the integer path; the scalar kernel table computes exactly what the
 * SIMD tables compute (same integer sums, same per-group scaling) and runs on any CPU. The
 * choice of table is made once, from CPUID, by tl_cpu_kern_pick. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/cpu/cpu.h"

/* ---- element access --------------------------------------------------------------------------- */
/* A dense row with the dtype switch outside the loop: the AVX2 and scalar dense matmuls read
 * every row through this (tl_wdesc_dequant_row switches per element). */
static void dense_row(const tl_wdesc *d, int r, float *out) {
    size_t off = (size_t)r * (size_t)d->cols;
    switch (d->dtype) {
    case TL_DT_F32: memcpy(out, (const float *)d->data + off, (size_t)d->cols * sizeof(float)); break;
    case TL_DT_F16:
        for (int c = 0; c < d->cols; c++) out[c] = tl_f16_to_f32(((const uint16_t *)d->data)[off + c]);
        break;
    default:
        for (int c = 0; c < d->cols; c++) out[c] = tl_bf16_to_f32(((const uint16_t *)d->data)[off + c]);
        break;
    }
}

/* Unsigned value of row i (0..15), column j of (row block, group) bytes gp. */
static inline unsigned qr16_q(const tl_wmat *w, const uint8_t *gp, int i, int j) {
    const uint8_t *wb = gp + 32 * w->sbytes;
    if (w->bits == 8) return wb[(j >> 2) * 64 + i * 4 + (j & 3)];
    int c = j >> 3, k = j & 7;
    uint8_t byte = wb[c * 64 + i * 4 + (k & 3)];
    return k < 4 ? (byte & 0xFu) : (byte >> 4);
}

void tl_cpu_dequant_row(const tl_wmat *w, int r, float *out) {
    if (w->kind == CPU_W_DENSE) {
        dense_row(&w->desc, r, out);
        return;
    }
    if (w->kind == CPU_W_GENERIC) { /* 2/3/5/6 bits: the file layout, as every backend reads it */
        tl_wdesc_dequant_row(&w->desc, r, out);
        return;
    }
    int rb = r / 16, i = r % 16;
    for (int g = 0; g < w->groups; g++) {
        const uint8_t *gp = tl_qr16_group(w, rb, g);
        float s = tl_dtype_get_f32((tl_dtype)w->sdt, gp, (size_t)i);
        float b = tl_dtype_get_f32((tl_dtype)w->sdt, gp + 16 * w->sbytes, (size_t)i);
        for (int j = 0; j < w->gs; j++) out[g * w->gs + j] = s * (float)qr16_q(w, gp, i, j) + b;
    }
}

/* ---- QR16 repack ------------------------------------------------------------------------------ */
/* Big packed matrices come from anonymous mmap aligned to 2 MiB with MADV_HUGEPAGE: the kernel
 * zeroes each page once on first touch (tl_alloc_huge would memset on top of that), and the
 * 2 MiB pages are what lets the decode GEMV stream near the read bandwidth. */
#define QR16_HUGE ((size_t)2 << 20)

static void *huge_map(size_t len) {
    uint8_t *p = mmap(NULL, len + QR16_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + QR16_HUGE - 1) & ~(uintptr_t)(QR16_HUGE - 1);
    if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
    size_t tail = (size_t)((uintptr_t)p + len + QR16_HUGE - (a + len));
    if (tail) munmap((void *)(a + len), tail);
    madvise((void *)a, len, MADV_HUGEPAGE);
    return (void *)a;
}

#define ARENA_CHUNK ((size_t)16 << 20)

void *tl_cpu_arena_get(tl_cpu_arena *a, size_t n, tl_mem_kind kind) {
    n = (n + 63) & ~(size_t)63;
    if (n == 0 || n > ARENA_CHUNK) return NULL;
    if (n > a->left) {
        if (a->n == a->cap) {
            int cap = a->cap ? 2 * a->cap : 16;
            void **c = realloc(a->chunk, (size_t)cap * sizeof *c);
            if (!c) return NULL;
            a->chunk = c;
            size_t *l = realloc(a->chunk_len, (size_t)cap * sizeof *l);
            if (!l) return NULL;
            a->chunk_len = l;
            a->cap = cap;
        }
        void *p = huge_map(ARENA_CHUNK);
        if (!p) return NULL;
        a->chunk[a->n] = p;
        a->chunk_len[a->n++] = ARENA_CHUNK;
        a->cur = p;
        a->left = ARENA_CHUNK;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    tl_mem_add(kind, (int64_t)n);
    return p;
}

int tl_cpu_arena_owns(const tl_cpu_arena *a, const void *p) {
    for (int i = 0; i < a->n; i++)
        if ((const uint8_t *)p >= (const uint8_t *)a->chunk[i] &&
            (const uint8_t *)p < (const uint8_t *)a->chunk[i] + a->chunk_len[i])
            return 1;
    return 0;
}

void tl_cpu_arena_free_all(tl_cpu_arena *a) {
    for (int i = 0; i < a->n; i++) munmap(a->chunk[i], a->chunk_len[i]);
    free(a->chunk);
    free(a->chunk_len);
    *a = (tl_cpu_arena){0};
}

static uint8_t *packed_alloc(tl_wmat *w, size_t n, tl_cpu_arena *arena) {
    if (n < 2 * QR16_HUGE) {
        if (arena) {
            uint8_t *p = tl_cpu_arena_get(arena, n, TL_MEM_WEIGHTS);
            if (p) {
                w->packed_map = SIZE_MAX;
                return p;
            }
        }
        w->packed_map = 0;
        return tl_alloc(n, TL_MEM_WEIGHTS);
    }
    size_t len = (n + QR16_HUGE - 1) & ~(QR16_HUGE - 1);
    uint8_t *p = huge_map(len);
    if (!p) return NULL;
    w->packed_map = len;
    tl_mem_add(TL_MEM_WEIGHTS, (int64_t)n);
    return p;
}

void tl_cpu_qr16_free(tl_wmat *w) {
    if (!w->packed) return;
    if (w->packed_map == SIZE_MAX) {
        tl_mem_add(TL_MEM_WEIGHTS, -(int64_t)w->packed_bytes); /* the arena unmaps it later */
    } else if (w->packed_map) {
        munmap(w->packed, w->packed_map);
        tl_mem_add(TL_MEM_WEIGHTS, -(int64_t)w->packed_bytes);
    } else {
        tl_free(w->packed, w->packed_bytes, TL_MEM_WEIGHTS);
    }
    w->packed = NULL;
}

int tl_cpu_qr16_pack(tl_wmat *w, const tl_wdesc *d, tl_cpu_arena *arena, tl_err *err) {
    if (d->bits != 4 && d->bits != 8)
        return tl_err_set(err, TL_EUNSUP, "cpu backend: %s: QR16 takes 4 or 8 bits, not %d", d->name, d->bits);
    if (d->group_size != 32 && d->group_size != 64 && d->group_size != 128)
        return tl_err_set(err, TL_EUNSUP, "cpu backend: %s: group size %d (QR16 takes 32, 64, 128)",
                          d->name, d->group_size);
    if (d->cols % d->group_size != 0)
        return tl_err_set(err, TL_EFORMAT, "cpu backend: %s: %d columns is not a multiple of group size %d",
                          d->name, d->cols, d->group_size);
    if (d->dtype != TL_DT_F16 && d->dtype != TL_DT_BF16 && d->dtype != TL_DT_F32)
        return tl_err_set(err, TL_EUNSUP, "cpu backend: %s: scales of dtype %s", d->name,
                          tl_dtype_name(d->dtype));
    w->kind = CPU_W_QR16;
    w->bits = d->bits;
    w->gs = d->group_size;
    w->groups = d->cols / d->group_size;
    w->sdt = (int)d->dtype;
    w->sbytes = d->dtype == TL_DT_F32 ? 4 : 2;
    w->rblocks = (d->rows + 15) / 16;
    const char *pe = getenv("TALLOW_CPU_PANEL"); /* 0: whole rows (for comparison) */
    w->pgroups = pe && strcmp(pe, "0") == 0 ? w->groups : TL_MAX(1, TL_QR16_PANEL_COLS / w->gs);
    if (w->pgroups > w->groups) w->pgroups = w->groups;
    w->gbytes = (size_t)32 * w->sbytes + (size_t)16 * w->gs * w->bits / 8;
    size_t n;
    if (!tl_mul_ok((size_t)w->rblocks * (size_t)w->groups, w->gbytes, &n))
        return tl_err_set(err, TL_EINVAL, "cpu backend: %s: size overflows", d->name);
    w->packed = packed_alloc(w, n, arena);
    if (!w->packed)
        return tl_err_set(err, TL_ENOMEM, "cpu backend: %s: cannot allocate %zu bytes for the repacked weights",
                          d->name, n);
    w->packed_bytes = n;
    const uint8_t *src = d->data;
    size_t row_bits = (size_t)d->cols * (size_t)d->bits;
    const uint8_t *sc = d->scales, *bi = d->biases;
    /* Row by row, so the file is read sequentially (one stream, page faults in order); the
     * writes scatter inside the row block's region, which stays in L2. */
    for (int rb = 0; rb < w->rblocks; rb++) {
        for (int i = 0; i < 16; i++) {
            int r = rb * 16 + i;
            if (r >= d->rows) break; /* padding rows stay zero */
            const uint8_t *row = src + (size_t)r * (row_bits / 8);
            for (int g = 0; g < w->groups; g++) {
                uint8_t *gp = (uint8_t *)tl_qr16_group(w, rb, g);
                uint8_t *wb = gp + 32 * w->sbytes;
                size_t si = (size_t)r * w->groups + g;
                if (w->sbytes == 2) { /* constant sizes: inlined, and safe for unaligned files */
                    memcpy(gp + 2 * i, sc + 2 * si, 2);
                    memcpy(gp + 32 + 2 * i, bi + 2 * si, 2);
                } else {
                    memcpy(gp + 4 * i, sc + 4 * si, 4);
                    memcpy(gp + 64 + 4 * i, bi + 4 * si, 4);
                }
                int c0 = g * w->gs;
                if (w->bits == 8) {
                    for (int c = 0; c < w->gs / 4; c++) memcpy(wb + c * 64 + i * 4, row + c0 + 4 * c, 4);
                } else {
                    /* source bytes b0..b3 hold columns (0,1)..(6,7) low nibble first; the chunk
                     * wants byte j = column j | column j+4 << 4 */
                    for (int c = 0; c < w->gs / 8; c++) {
                        const uint8_t *b = row + (c0 + 8 * c) / 2;
                        uint8_t *o = wb + c * 64 + i * 4;
                        o[0] = (uint8_t)((b[0] & 0x0F) | (b[2] << 4));
                        o[1] = (uint8_t)((b[0] >> 4) | (b[2] & 0xF0));
                        o[2] = (uint8_t)((b[1] & 0x0F) | (b[3] << 4));
                        o[3] = (uint8_t)((b[1] >> 4) | (b[3] & 0xF0));
                    }
                }
            }
        }
    }
    return 0;
}

/* ---- activation quantization ------------------------------------------------------------------ */
void tl_cpu_xq_rows(const float *x, int cols, int gs, int z, int m0, int m1, int8_t *q, int8_t *q2,
                    float *d, float *s, int32_t *zs) {
    int groups = cols / gs;
    for (int m = m0; m < m1; m++) {
        for (int g = 0; g < groups; g++) {
            const float *xg = x + (size_t)m * cols + (size_t)g * gs;
            int8_t *qg = q + (size_t)m * cols + (size_t)g * gs;
            int8_t *q2g = q2 ? q2 + (size_t)m * cols + (size_t)g * gs : NULL;
            float amax = 0.f, sum = 0.f;
            for (int j = 0; j < gs; j++) {
                float a = fabsf(xg[j]);
                amax = a > amax ? a : amax;
                sum += xg[j];
            }
            float dd = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
            int32_t s1 = 0, s2 = 0;
            for (int j = 0; j < gs; j++) {
                float v = xg[j] * id, r = nearbyintf(v);
                r = r > 127.f ? 127.f : r < -127.f ? -127.f : r;
                qg[j] = (int8_t)r;
                s1 += qg[j];
                if (q2g) {
                    float r2 = nearbyintf((v - r) * 254.f);
                    r2 = r2 > 127.f ? 127.f : r2 < -127.f ? -127.f : r2;
                    q2g[j] = (int8_t)r2;
                    s2 += q2g[j];
                }
            }
            size_t gi = (size_t)m * groups + g;
            d[gi] = dd;
            s[gi] = sum;
            zs[2 * gi] = z * s1;
            zs[2 * gi + 1] = z * s2;
        }
    }
}

/* ---- scalar kernels --------------------------------------------------------------------------- */
static void scalar_qr16_mm(const tl_wmat *w, const tl_xq *x, float *y, int ldy, int m0, int m1,
                           int rb0, int rb1) {
    for (int rb = rb0; rb < rb1; rb++) {
        int nr = TL_MIN(16, w->rows - rb * 16);
        for (int m = m0; m < m1; m++) {
            float acc[16] = {0};
            for (int g = 0; g < w->groups; g++) {
                const uint8_t *gp = tl_qr16_group(w, rb, g);
                const int8_t *xq = x->q + (size_t)m * x->cols + (size_t)g * w->gs;
                const int8_t *xq2 = x->q2 ? x->q2 + (size_t)m * x->cols + (size_t)g * w->gs : NULL;
                float dd = x->d[(size_t)m * x->groups + g], xs = x->s[(size_t)m * x->groups + g];
                for (int i = 0; i < nr; i++) {
                    int32_t a1 = 0, a2 = 0;
                    for (int j = 0; j < w->gs; j++) {
                        int q = (int)qr16_q(w, gp, i, j);
                        a1 += q * xq[j];
                        if (xq2) a2 += q * xq2[j];
                    }
                    float sc = tl_dtype_get_f32((tl_dtype)w->sdt, gp, (size_t)i);
                    float bi = tl_dtype_get_f32((tl_dtype)w->sdt, gp + 16 * w->sbytes, (size_t)i);
                    a1 -= x->zs[2 * ((size_t)m * x->groups + g)];
                    a2 -= x->zs[2 * ((size_t)m * x->groups + g) + 1];
                    acc[i] += sc * dd * ((float)a1 + (float)a2 * (1.f / 254.f)) + (bi + (float)x->z * sc) * xs;
                }
            }
            for (int i = 0; i < nr; i++) y[(size_t)m * ldy + rb * 16 + i] = acc[i];
        }
    }
}

static float scalar_dot(const float *a, const float *b, int n) {
    float s = 0.f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void scalar_axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scalar_dense_mm(const tl_wmat *w, const float *x, float *y, int ldy, int n, int r0,
                            int r1, float *scratch) {
    for (int r = r0; r < r1; r++) {
        tl_cpu_dequant_row(w, r, scratch);
        for (int m = 0; m < n; m++) y[(size_t)m * ldy + r] = scalar_dot(x + (size_t)m * w->cols, scratch, w->cols);
    }
}

void tl_cpu_gdn_step(float *S, int dk, int dv, float alpha, float beta, const float *k, const float *q,
                     const float *v, float *o, float *tmp) {
    memset(tmp, 0, (size_t)dv * sizeof(float));
    for (int i = 0; i < dk; i++) {
        float *Si = S + (size_t)i * dv;
        for (int j = 0; j < dv; j++) {
            Si[j] *= alpha;
            tmp[j] += k[i] * Si[j];
        }
    }
    for (int j = 0; j < dv; j++) tmp[j] = beta * (v[j] - tmp[j]);
    memset(o, 0, (size_t)dv * sizeof(float));
    for (int i = 0; i < dk; i++) {
        float *Si = S + (size_t)i * dv;
        for (int j = 0; j < dv; j++) {
            Si[j] += k[i] * tmp[j];
            o[j] += q[i] * Si[j];
        }
    }
}

/* Rows are computed last to first, in place: row r reads the inputs of rows r-K+1..r, which
 * are still unwritten. The last K-1 inputs are saved to tmp first and become the state. */
void tl_cpu_conv_tail(const float *x, int ldx, int n, int K, int nc, const float *state, int lds, float *tmp) {
    for (int i = 0; i < K - 1; i++) {
        int t = n - (K - 1) + i;
        const float *src = t >= 0 ? x + (size_t)t * ldx : state + (size_t)(t + K - 1) * lds;
        memcpy(tmp + (size_t)i * nc, src, (size_t)nc * sizeof(float));
    }
}

void tl_cpu_conv_silu(float *x, int ldx, int n, const float *wt, int K, int nc, float *state, int lds,
                      float *tmp) {
    if (n <= 0) return;
    tl_cpu_conv_tail(x, ldx, n, K, nc, state, lds, tmp);
    for (int r = n - 1; r >= 0; r--) {
        float *xr = x + (size_t)r * ldx;
        for (int c = 0; c < nc; c++) {
            float acc = 0.f;
            for (int i = 0; i < K; i++) {
                int t = r - K + 1 + i;
                float in = t >= 0 ? x[(size_t)t * ldx + c] : state[(size_t)(t + K - 1) * lds + c];
                acc += wt[(size_t)i * nc + c] * in;
            }
            xr[c] = acc / (1.f + expf(-acc));
        }
    }
    for (int i = 0; i < K - 1; i++) memcpy(state + (size_t)i * lds, tmp + (size_t)i * nc, (size_t)nc * sizeof(float));
}

void tl_cpu_swiglu(float *y, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = g[i] / (1.f + expf(-g[i])) * u[i];
}

void tl_cpu_mul_sigmoid(float *y, const float *g, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] *= 1.f / (1.f + expf(-g[i]));
}

const tl_cpu_kern tl_cpu_kern_scalar = {
    .isa = "scalar",
    .qr16_mm = scalar_qr16_mm,
    .dense_mm = scalar_dense_mm,
    .dot = scalar_dot,
    .axpy = scalar_axpy,
    .xq_rows = tl_cpu_xq_rows,
    .gdn_step = tl_cpu_gdn_step,
    .attn_block = NULL,
    .conv_silu = tl_cpu_conv_silu,
    .swiglu = tl_cpu_swiglu,
    .mul_sigmoid = tl_cpu_mul_sigmoid,
};

#if defined(__x86_64__)
#include <cpuid.h>
/* F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c". */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

const tl_cpu_kern *tl_cpu_kern_pick(void) {
    const char *e = getenv("TALLOW_CPU_ISA");
    const tl_cpu_kern *k512 = NULL, *k2 = NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        cpu_has_f16c() && __builtin_cpu_supports("fma"))
        k512 = tl_cpu_kern_avx512();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        k2 = tl_cpu_kern_avx2();
#endif
    if (e && strcmp(e, "scalar") == 0) return &tl_cpu_kern_scalar;
    if (e && strcmp(e, "avx2") == 0 && k2) return k2;
    if (k512) return k512;
    if (k2) return k2;
    return &tl_cpu_kern_scalar;
}
