/* kern_avx512.c — AVX-512 (F/BW/VL + VNNI) kernels of the CPU backend, compiled with those ISA
 * flags (CMake gives *_avx512.c files -mavx512*); only called after tl_cpu_kern_pick saw the
 * CPU supports them.
 *
 * QR16 matmul: one 64-byte load holds 16 weight rows x 4 (8-bit) or 8 (4-bit, two nibbles)
 * columns, so each vpdpbusd multiplies 16 rows by one broadcast dword of int8 activations and
 * accumulates per row; no horizontal sums. A tile is 16 weight rows x M activation rows
 * (M <= 4): the weight bytes are loaded and unpacked once for M rows, which is what makes the
 * same kernel a GEMV for decode (M = 1, bandwidth-bound) and a blocked GEMM for prefill (the
 * caller walks many M-tiles over a row block that stays in L1). Per group the integer sums are
 * scaled in f32: y += s·d·Σq·xq + b·Σx. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

static inline __m512 load16_half(const uint8_t *p, int sdt) {
    if (sdt == TL_DT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    if (sdt == TL_DT_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    return _mm512_loadu_ps((const float *)p);
}

static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static inline __attribute__((always_inline)) void
qr16_tile(const tl_wmat *w, const tl_xq *x, float *y, int ldy, int m0, const int M, int rb,
          const int bits, const int two, int g0, int g1, int acc) {
    __m512 facc[4];
    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) facc[m] = _mm512_setzero_ps();
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    const int gs = w->gs, sb = w->sbytes, sdt = w->sdt;
    const uint8_t *gp = NULL;
    const int8_t *xq[4], *xq2[4];
    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
        xq[m] = x->q + (size_t)(m0 + m) * x->cols;
        xq2[m] = two ? x->q2 + (size_t)(m0 + m) * x->cols : NULL;
    }
    for (int g = g0; g < g1; g++, gp += w->gbytes) {
        if (g == g0 || g % w->pgroups == 0) gp = tl_qr16_group(w, rb, g); /* a panel starts */
        /* GEMV (M <= 2): low and high nibbles accumulate separately, two shorter dependency
         * chains per row — with one chain the M = 1 tile is bound by vpdpbusd latency (~32-40
         * GB/s from L3), with two ~46 GB/s; larger tiles have chains enough */
        const int split = bits == 4 && M <= 2;
        __m512i a1[4], a2[4], b1[4], b2[4];
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) a1[m] = a2[m] = b1[m] = b2[m] = _mm512_setzero_si512();
        const uint8_t *wb = gp + 32 * sb;
        const int k0 = g * gs;
        if (bits == 4) {
            for (int c = 0; c < gs / 8; c++) {
                __m512i v = _mm512_load_si512((const void *)(wb + 64 * c));
                __m512i lo = _mm512_and_si512(v, m0f);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
                _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                    a1[m] = _mm512_dpbusd_epi32(a1[m], lo, bcast4(xq[m] + k0 + 8 * c));
                    if (split) b1[m] = _mm512_dpbusd_epi32(b1[m], hi, bcast4(xq[m] + k0 + 8 * c + 4));
                    else a1[m] = _mm512_dpbusd_epi32(a1[m], hi, bcast4(xq[m] + k0 + 8 * c + 4));
                    if (two) {
                        a2[m] = _mm512_dpbusd_epi32(a2[m], lo, bcast4(xq2[m] + k0 + 8 * c));
                        if (split) b2[m] = _mm512_dpbusd_epi32(b2[m], hi, bcast4(xq2[m] + k0 + 8 * c + 4));
                        else a2[m] = _mm512_dpbusd_epi32(a2[m], hi, bcast4(xq2[m] + k0 + 8 * c + 4));
                    }
                }
            }
        } else {
            for (int c = 0; c < gs / 4; c++) {
                __m512i v = _mm512_load_si512((const void *)(wb + 64 * c));
                _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                    a1[m] = _mm512_dpbusd_epi32(a1[m], v, bcast4(xq[m] + k0 + 4 * c));
                    if (two) a2[m] = _mm512_dpbusd_epi32(a2[m], v, bcast4(xq2[m] + k0 + 4 * c));
                }
            }
        }
        if (split)
            _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
                a1[m] = _mm512_add_epi32(a1[m], b1[m]);
                if (two) a2[m] = _mm512_add_epi32(a2[m], b2[m]);
            }
        __m512 sc = load16_half(gp, sdt), bi = load16_half(gp + 16 * sb, sdt);
        bi = _mm512_fmadd_ps(sc, _mm512_set1_ps((float)x->z), bi);
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
            size_t gi = (size_t)(m0 + m) * x->groups + g;
            __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(a1[m], _mm512_set1_epi32(x->zs[2 * gi])));
            if (two)
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a2[m], _mm512_set1_epi32(x->zs[2 * gi + 1]))),
                                    _mm512_set1_ps(1.f / 254.f), f);
            facc[m] = _mm512_fmadd_ps(f, _mm512_mul_ps(sc, _mm512_set1_ps(x->d[gi])), facc[m]);
            facc[m] = _mm512_fmadd_ps(bi, _mm512_set1_ps(x->s[gi]), facc[m]);
        }
    }
    int nr = TL_MIN(16, w->rows - rb * 16);
    __mmask16 km = (__mmask16)((1u << nr) - 1u);
    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) {
        float *yp = y + (size_t)(m0 + m) * ldy + rb * 16;
        if (acc) facc[m] = _mm512_add_ps(facc[m], _mm512_maskz_loadu_ps(km, yp));
        _mm512_mask_storeu_ps(yp, km, facc[m]);
    }
}

#define QR16_CASE(M_, B_, T_)                                                                      \
    static void qr16_tile_##M_##_##B_##_##T_(const tl_wmat *w, const tl_xq *x, float *y, int ldy,  \
                                              int m0, int rb, int g0, int g1, int acc) {           \
        qr16_tile(w, x, y, ldy, m0, M_, rb, B_, T_, g0, g1, acc);                                  \
    }
#define QR16_CASES(B_, T_) QR16_CASE(1, B_, T_) QR16_CASE(2, B_, T_) QR16_CASE(3, B_, T_) QR16_CASE(4, B_, T_)
QR16_CASES(4, 0)
QR16_CASES(4, 1)
QR16_CASES(8, 0)
QR16_CASES(8, 1)

typedef void (*qr16_tile_fn)(const tl_wmat *, const tl_xq *, float *, int, int, int, int, int, int);
static const qr16_tile_fn qr16_tiles[2][2][4] = {
    {{qr16_tile_1_4_0, qr16_tile_2_4_0, qr16_tile_3_4_0, qr16_tile_4_4_0},
     {qr16_tile_1_4_1, qr16_tile_2_4_1, qr16_tile_3_4_1, qr16_tile_4_4_1}},
    {{qr16_tile_1_8_0, qr16_tile_2_8_0, qr16_tile_3_8_0, qr16_tile_4_8_0},
     {qr16_tile_1_8_1, qr16_tile_2_8_1, qr16_tile_3_8_1, qr16_tile_4_8_1}},
};

static void avx512_qr16_mm(const tl_wmat *w, const tl_xq *x, float *y, int ldy, int m0, int m1,
                           int rb0, int rb1) {
    int bi = w->bits == 8, ti = x->q2 != NULL;
    if (m1 - m0 <= 2 && w->pgroups < w->groups) {
        /* decode of a paneled matrix: panel by panel, each one sequential stream over the row
         * blocks, partial sums added in y */
        for (int g0 = 0; g0 < w->groups; g0 += w->pgroups)
            for (int rb = rb0; rb < rb1; rb++)
                qr16_tiles[bi][ti][m1 - m0 - 1](w, x, y, ldy, m0, rb, g0, TL_MIN(w->groups, g0 + w->pgroups), g0 > 0);
        return;
    }
    for (int rb = rb0; rb < rb1; rb++)
        for (int m = m0; m < m1; m += 4) {
            int M = TL_MIN(4, m1 - m);
            qr16_tiles[bi][ti][M - 1](w, x, y, ldy, m, rb, 0, w->groups, 0);
        }
}

/* ---- dense rows ------------------------------------------------------------------------------- */
static inline __m512 load_w16(const void *p, int dt, int c, __mmask16 k) {
    if (dt == TL_DT_F32) return _mm512_maskz_loadu_ps(k, (const float *)p + c);
    __m256i h = _mm256_maskz_loadu_epi16(k, (const uint16_t *)p + c);
    if (dt == TL_DT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) void
dense_tile(const void *row, int dt, int cols, const float *x, float *y, int ldy, int m0, const int M,
           int r) {
    __m512 acc[4];
    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
    int c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512 wv = load_w16(row, dt, c, 0xFFFF);
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)
            acc[m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (size_t)(m0 + m) * cols + c), acc[m]);
    }
    if (c < cols) {
        __mmask16 k = (__mmask16)((1u << (cols - c)) - 1u);
        __m512 wv = load_w16(row, dt, c, k);
        _Pragma("GCC unroll 8") for (int m = 0; m < M; m++)
            acc[m] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, x + (size_t)(m0 + m) * cols + c), acc[m]);
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < M; m++) y[(size_t)(m0 + m) * ldy + r] = _mm512_reduce_add_ps(acc[m]);
}

static void avx512_dense_mm(const tl_wmat *w, const float *x, float *y, int ldy, int n, int r0,
                            int r1, float *scratch) {
    const int cols = w->cols;
    for (int r = r0; r < r1; r++) {
        const void *row;
        int dt;
        if (w->kind == CPU_W_DENSE) {
            dt = w->desc.dtype;
            row = (const uint8_t *)w->desc.data + (size_t)r * cols * tl_dtype_size(w->desc.dtype);
        } else {
            tl_cpu_dequant_row(w, r, scratch);
            row = scratch;
            dt = TL_DT_F32;
        }
        int m = 0;
        for (; m + 4 <= n; m += 4) dense_tile(row, dt, cols, x, y, ldy, m, 4, r);
        for (; m < n; m++) dense_tile(row, dt, cols, x, y, ldy, m, 1, r);
    }
}

/* ---- vector helpers --------------------------------------------------------------------------- */
static float avx512_dot(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void avx512_axpy(float *y, float a, const float *x, int n) {
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, k,
                              _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}

/* Activation quantization, 16 lanes at a time; same arithmetic as tl_cpu_xq_rows (the default
 * rounding mode is round-half-even, like nearbyintf). */
static void avx512_xq_rows(const float *x, int cols, int gs, int z, int m0, int m1, int8_t *q, int8_t *q2,
                           float *d, float *s, int32_t *zs) {
    const int groups = cols / gs;
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int m = m0; m < m1; m++)
        for (int g = 0; g < groups; g++) {
            size_t o = (size_t)m * cols + (size_t)g * gs;
            const float *xg = x + o;
            __m512 amax = _mm512_setzero_ps(), sum = _mm512_setzero_ps();
            for (int j = 0; j < gs; j += 16) {
                __m512 v = _mm512_loadu_ps(xg + j);
                amax = _mm512_max_ps(amax, _mm512_abs_ps(v));
                sum = _mm512_add_ps(sum, v);
            }
            float am = _mm512_reduce_max_ps(amax);
            float id = am > 0.f ? 127.f / am : 0.f;
            __m512 idv = _mm512_set1_ps(id), k254 = _mm512_set1_ps(254.f);
            __m512i s1 = _mm512_setzero_si512(), s2 = s1;
            for (int j = 0; j < gs; j += 16) {
                __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xg + j), idv);
                __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m512i qi = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(r), lo), hi);
                s1 = _mm512_add_epi32(s1, qi);
                _mm_storeu_si128((__m128i *)(q + o + j), _mm512_cvtepi32_epi8(qi));
                if (q2) {
                    __m512 r2 = _mm512_mul_ps(_mm512_sub_ps(v, r), k254);
                    __m512i q2i = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(r2), lo), hi);
                    s2 = _mm512_add_epi32(s2, q2i);
                    _mm_storeu_si128((__m128i *)(q2 + o + j), _mm512_cvtepi32_epi8(q2i));
                }
            }
            size_t gi = (size_t)m * groups + g;
            d[gi] = am / 127.f;
            s[gi] = _mm512_reduce_add_ps(sum);
            zs[2 * gi] = z * _mm512_reduce_add_epi32(s1);
            zs[2 * gi + 1] = z * _mm512_reduce_add_epi32(s2);
        }
}

/* Gated DeltaNet step, 64 value columns at a time: for each column block both passes over the
 * dk rows of S run with the block's accumulators in registers (S block of 32 KiB stays in L1). */
static void avx512_gdn_step(float *S, int dk, int dv, float alpha, float beta, const float *k, const float *q,
                            const float *v, float *o, float *tmp) {
    if (dv % 16 != 0) {
        tl_cpu_gdn_step(S, dk, dv, alpha, beta, k, q, v, o, tmp);
        return;
    }
    const __m512 av = _mm512_set1_ps(alpha), bv = _mm512_set1_ps(beta);
    for (int jb = 0; jb < dv; jb += 64) {
        int nb = TL_MIN(4, (dv - jb) / 16);
        __m512 m[4], d[4], acc[4];
        for (int b = 0; b < 4; b++) m[b] = acc[b] = _mm512_setzero_ps();
        for (int i = 0; i < dk; i++) {
            float *Si = S + (size_t)i * dv + jb;
            __m512 ki = _mm512_set1_ps(k[i]);
            _Pragma("GCC unroll 4") for (int b = 0; b < 4; b++) {
                if (b >= nb) break;
                __m512 s = _mm512_mul_ps(_mm512_loadu_ps(Si + 16 * b), av);
                _mm512_storeu_ps(Si + 16 * b, s);
                m[b] = _mm512_fmadd_ps(ki, s, m[b]);
            }
        }
        for (int b = 0; b < nb; b++) d[b] = _mm512_mul_ps(bv, _mm512_sub_ps(_mm512_loadu_ps(v + jb + 16 * b), m[b]));
        for (int i = 0; i < dk; i++) {
            float *Si = S + (size_t)i * dv + jb;
            __m512 ki = _mm512_set1_ps(k[i]), qi = _mm512_set1_ps(q[i]);
            _Pragma("GCC unroll 4") for (int b = 0; b < 4; b++) {
                if (b >= nb) break;
                __m512 s = _mm512_fmadd_ps(ki, d[b], _mm512_loadu_ps(Si + 16 * b));
                _mm512_storeu_ps(Si + 16 * b, s);
                acc[b] = _mm512_fmadd_ps(qi, s, acc[b]);
            }
        }
        for (int b = 0; b < nb; b++) _mm512_storeu_ps(o + jb + 16 * b, acc[b]);
    }
}

static inline __m512 exp512(__m512 x);

/* Flash-style attention for a block of query vectors in the 16 lanes of a vector: Q is
 * transposed once (Qt[d][lane], scale folded in), then each key position costs D FMAs that give
 * its score for all lanes; the softmax runs online per lane over tiles of 16 positions (running
 * max m, sum l, rescale by exp(m_old - m_new)); each lane's output accumulates p_t·v_t. */
static void avx512_attn_block(float *const *outs, const float *const *qs, const int *qpos, int nq, int D,
                              float scale, const float *(*row)(const void *ctx, int kv, int t), const void *ctx,
                              float *scratch) {
    float *Qt = scratch, *P = Qt + 16 * D, *corr = P + 256, *O = corr + 256;
    int tmax = 0;
    int32_t posl[16];
    for (int i = 0; i < 16; i++) {
        posl[i] = i < nq ? qpos[i] : -1;
        if (i < nq && qpos[i] > tmax) tmax = qpos[i];
    }
    for (int d = 0; d < D; d++)
        for (int i = 0; i < 16; i++) Qt[d * 16 + i] = i < nq ? qs[i][d] * scale : 0.f;
    memset(O, 0, (size_t)nq * D * sizeof(float));
    const __m512i posv = _mm512_loadu_si512(posl);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m = ninf, l = _mm512_setzero_ps();
    const float *vp[16];
    for (int t0 = 0; t0 <= tmax; t0 += 16) {
        int T = TL_MIN(16, tmax + 1 - t0);
        __m512 s[16];
        for (int t = 0; t < T; t++) {
            const float *kr = row(ctx, 0, t0 + t);
            vp[t] = row(ctx, 1, t0 + t);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int d = 0;
            for (; d + 4 <= D; d += 4) {
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(kr[d]), _mm512_load_ps(Qt + 16 * d), a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(kr[d + 1]), _mm512_load_ps(Qt + 16 * (d + 1)), a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(kr[d + 2]), _mm512_load_ps(Qt + 16 * (d + 2)), a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(kr[d + 3]), _mm512_load_ps(Qt + 16 * (d + 3)), a3);
            }
            for (; d < D; d++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(kr[d]), _mm512_load_ps(Qt + 16 * d), a0);
            __m512 sc = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
            __mmask16 valid = _mm512_cmpge_epi32_mask(posv, _mm512_set1_epi32(t0 + t));
            s[t] = _mm512_mask_blend_ps(valid, ninf, sc);
        }
        __m512 mt = m;
        for (int t = 0; t < T; t++) mt = _mm512_max_ps(mt, s[t]);
        __mmask16 live = _mm512_cmp_ps_mask(mt, ninf, _CMP_NEQ_OQ);
        __m512 c = _mm512_mask_blend_ps(live, _mm512_set1_ps(1.f), exp512(_mm512_sub_ps(m, mt)));
        c = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ), c, _mm512_setzero_ps());
        l = _mm512_mul_ps(l, c);
        for (int t = 0; t < T; t++) {
            __mmask16 ok = _mm512_cmp_ps_mask(s[t], ninf, _CMP_NEQ_OQ);
            __m512 pt = _mm512_maskz_mov_ps(ok, exp512(_mm512_sub_ps(s[t], mt)));
            l = _mm512_add_ps(l, pt);
            _mm512_store_ps(P + 16 * t, pt);
        }
        m = mt;
        _mm512_store_ps(corr, c);
        for (int i = 0; i < nq; i++) {
            float *o = O + (size_t)i * D;
            __m512 ci = _mm512_set1_ps(corr[i]);
            for (int c0 = 0; c0 < D; c0 += 64) {
                int nb = TL_MIN(4, (D - c0 + 15) / 16);
                __mmask16 km[4];
                __m512 acc[4];
                for (int b = 0; b < 4; b++) {
                    int left = D - c0 - 16 * b;
                    km[b] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
                    acc[b] = _mm512_mul_ps(ci, _mm512_maskz_loadu_ps(km[b], o + c0 + 16 * b));
                }
                for (int t = 0; t < T; t++) {
                    float pv = P[16 * t + i];
                    if (pv == 0.f) continue;
                    __m512 pb = _mm512_set1_ps(pv);
                    for (int b = 0; b < nb; b++)
                        acc[b] = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(km[b], vp[t] + c0 + 16 * b), acc[b]);
                }
                for (int b = 0; b < nb; b++) _mm512_mask_storeu_ps(o + c0 + 16 * b, km[b], acc[b]);
            }
        }
    }
    float lv[16];
    _mm512_storeu_ps(lv, l);
    for (int i = 0; i < nq; i++) {
        float inv = lv[i] > 0.f ? 1.f / lv[i] : 0.f;
        for (int d = 0; d < D; d++) outs[i][d] = O[(size_t)i * D + d] * inv;
    }
}

/* exp(x) for |x| <= 88: x = n·ln2 + r, |r| <= ln2/2, degree-6 polynomial (rel. error ~2e-7);
 * -inf gives 0 (clamped to -88, then ~6e-39: callers mask it). */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.f)), _mm512_set1_ps(-88.f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.f / 720.f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, n);
}

/* conv_silu, 16 channels per vector (see tl_cpu_conv_silu for the order of work). */
static void avx512_conv_silu(float *x, int ldx, int n, const float *wt, int K, int nc, float *state, int lds,
                             float *tmp) {
    if (n <= 0) return;
    if (K > 8) { /* not a Qwen3.5 shape (K = 4): the portable loop */
        tl_cpu_conv_silu(x, ldx, n, wt, K, nc, state, lds, tmp);
        return;
    }
    tl_cpu_conv_tail(x, ldx, n, K, nc, state, lds, tmp);
    const __m512 one = _mm512_set1_ps(1.f);
    for (int r = n - 1; r >= 0; r--) {
        const float *in[8];
        for (int i = 0; i < K; i++) {
            int t = r - K + 1 + i;
            in[i] = t >= 0 ? x + (size_t)t * ldx : state + (size_t)(t + K - 1) * lds;
        }
        float *xr = x + (size_t)r * ldx;
        for (int c = 0; c < nc; c += 16) {
            __mmask16 km = nc - c >= 16 ? 0xFFFF : (__mmask16)((1u << (nc - c)) - 1u);
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < K; i++)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(km, wt + (size_t)i * nc + c),
                                      _mm512_maskz_loadu_ps(km, in[i] + c), acc);
            __m512 d = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), acc)));
            _mm512_mask_storeu_ps(xr + c, km, _mm512_div_ps(acc, d));
        }
    }
    for (int i = 0; i < K - 1; i++) memcpy(state + (size_t)i * lds, tmp + (size_t)i * nc, (size_t)nc * sizeof(float));
}

static void avx512_swiglu(float *y, const float *g, const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 gv = _mm512_maskz_loadu_ps(k, g + i), uv = _mm512_maskz_loadu_ps(k, u + i);
        __m512 d = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        _mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(_mm512_mul_ps(gv, uv), d));
    }
}

static void avx512_mul_sigmoid(float *y, const float *g, size_t n) {
    const __m512 one = _mm512_set1_ps(1.f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 gv = _mm512_maskz_loadu_ps(k, g + i), yv = _mm512_maskz_loadu_ps(k, y + i);
        __m512 d = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        _mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(yv, d));
    }
}

static const tl_cpu_kern kern_avx512 = {
    .isa = "avx512",
    .qr16_mm = avx512_qr16_mm,
    .dense_mm = avx512_dense_mm,
    .dot = avx512_dot,
    .axpy = avx512_axpy,
    .xq_rows = avx512_xq_rows,
    .gdn_step = avx512_gdn_step,
    .attn_block = avx512_attn_block,
    .conv_silu = avx512_conv_silu,
    .swiglu = avx512_swiglu,
    .mul_sigmoid = avx512_mul_sigmoid,
};

const tl_cpu_kern *tl_cpu_kern_avx512(void) { return &kern_avx512; }
