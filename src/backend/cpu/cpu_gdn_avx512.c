/* cpu_gdn_avx512.c — the chunked Gated DeltaNet delta rule with AVX-512 (contract and why in
 * cpu_gdn.h; the algebra is docs/models.md §1.4 step 8 and the scalar tl_gdn_rule_chunked).
 *
 * Per slot run, chunk of L <= 64 tokens and value head, with Γ the cumulative log decay:
 *   1. q̂, k̂ (l2-normalised, q scaled), v, β, Γ of the chunk into scratch;
 *   2. A[r][s] = β_r k̂_r·k̂_s e^(Γr−Γs) (s<r), QK[r][s] = q̂_r·k̂_s e^(Γr−Γs) (s<=r);
 *   3. forward substitution (I + A) U = diag(β) V and (I + A) W = diag(β e^Γ) K̂;
 *   4. row by row: V'_r = U_r − W_r S and O_r = e^Γr q̂_r S + Σ_{s<=r} QK[r][s] V'_s, both from
 *      one pass over S (16 accumulators for dv = 128);
 *   5. S = e^ΓL S + Σ_r e^(ΓL−Γr) k̂_r V'_rᵀ, two state rows at a time.
 * Vector widths are fixed per call (nk = dk/16, nv = dv/16) and the bodies are inlined for the
 * Qwen3.5 shape (128/128) so the accumulators stay in registers. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_gdn.h"
#include "backend/ref/ref_gdn.h"

int tl_cpu_gdn_chunked_ok(const tl_gdn_state *st) {
    return __builtin_cpu_supports("avx512f") && st->dk % 16 == 0 && st->dv % 16 == 0 &&
           st->dk > 0 && st->dv > 0 && st->dk <= TL_GDN_MAX_DK && st->dv <= TL_GDN_MAX_DK;
}

size_t tl_cpu_gdn_chunk_scratch_floats(int chunk, int dk, int dv) {
    return tl_gdn_chunk_scratch_floats(chunk, dk, dv) + (size_t)chunk * dk; /* + a transpose */
}

/* dst[i][r] = src[r][i] for r < 16, i < n */
static void transpose16(float *dst, const float *src, int n) {
    for (int r = 0; r < 16; r++)
        for (int i = 0; i < n; i++) dst[(size_t)i * 16 + r] = src[(size_t)r * n + i];
}

static inline float dot16(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline void scale16(float *dst, const float *src, float s, int n) {
    __m512 vs = _mm512_set1_ps(s);
    for (int i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_loadu_ps(src + i), vs));
}

/* Step 1 of a chunk, for value head h over rows r0..r0+L-1: l2-normalised q (scaled by
 * dk^-1/2) and k of its key head, v, beta = sigmoid(b) and the cumulative log decay G.
 * Returns G at the last row. */
static inline float chunk_load(float *Q, float *K, float *V, float *B, float *G, const float *qkv,
                              const float *a, const float *b, float ea, float dt_bias,
                              const tl_gdn_state *st, int r0, int L, int h) {
    const int Hk = st->n_k_heads, Hv = st->n_v_heads, dk = st->dk, dv = st->dv;
    const int kh = h / (Hv / Hk), key_dim = Hk * dk, C = st->conv_dim;
    const float qscale = 1.0f / sqrtf((float)dk);
    float cum = 0.0f;
    for (int r = 0; r < L; r++) {
        const float *row = qkv + (size_t)(r0 + r) * C;
        const float *q = row + (size_t)kh * dk, *k = row + key_dim + (size_t)kh * dk;
        scale16(Q + (size_t)r * dk, q, qscale / sqrtf(dot16(q, q, dk) + 1e-6f), dk);
        scale16(K + (size_t)r * dk, k, 1.0f / sqrtf(dot16(k, k, dk) + 1e-6f), dk);
        memcpy(V + (size_t)r * dv, row + 2 * (size_t)key_dim + (size_t)h * dv,
               (size_t)dv * sizeof(float));
        B[r] = tl_gdn_sigmoid(b[(size_t)(r0 + r) * Hv + h]);
        cum += -ea * tl_gdn_softplus(a[(size_t)(r0 + r) * Hv + h] + dt_bias);
        G[r] = cum;
    }
    return cum;
}

/* Step 2 of a chunk: A[r][s] = β_r k̂_r·k̂_s e^(Γr−Γs) (s<r), QK[r][s] = q̂_r·k̂_s e^(Γr−Γs)
 * (s<=r), rows of stride ld. */
static inline void chunk_scores(float *A, float *QK, int ld, const float *Q, const float *K,
                                const float *B, const float *G, int L, int dk) {
    for (int r = 0; r < L; r++) {
        const float *kr = K + (size_t)r * dk, *qr = Q + (size_t)r * dk;
        for (int s = 0; s <= r; s++) {
            const float d = expf(G[r] - G[s]);
            const float *ks = K + (size_t)s * dk;
            if (s < r) A[(size_t)r * ld + s] = B[r] * d * dot16(kr, ks, dk);
            QK[(size_t)r * ld + s] = d * dot16(qr, ks, dk);
        }
    }
}

static inline __attribute__((always_inline)) void
chunk_head(float *out, const float *qkv, const float *a, const float *b, float a_log,
           float dt_bias, const tl_gdn_state *st, float *S, int r0, int L, int h, int chunk,
           float *scratch, const int nk, const int nv) {
    const int Hv = st->n_v_heads, dk = nk * 16, dv = nv * 16;
    const size_t cc = (size_t)chunk;
    float *Q = scratch, *K = Q + cc * dk, *W = K + cc * dk, *V = W + cc * dk;
    float *G = V + cc * dv, *B = G + cc, *A = B + cc, *QK = A + cc * cc;
    const float ea = expf(a_log);

    /* 1 */
    chunk_load(Q, K, V, B, G, qkv, a, b, ea, dt_bias, st, r0, L, h);
    /* 2 */
    chunk_scores(A, QK, chunk, Q, K, B, G, L, dk);
    /* 3 */
    for (int r = 0; r < L; r++) {
        __m512 u[TL_GDN_MAX_DK / 16], w[TL_GDN_MAX_DK / 16];
        float *vr = V + (size_t)r * dv, *wr = W + (size_t)r * dk;
        const float *kr = K + (size_t)r * dk;
        const __m512 vb = _mm512_set1_ps(B[r]), vbe = _mm512_set1_ps(B[r] * expf(G[r]));
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) u[j] = _mm512_mul_ps(vb, _mm512_loadu_ps(vr + 16 * j));
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nk; j++) w[j] = _mm512_mul_ps(vbe, _mm512_loadu_ps(kr + 16 * j));
        for (int s = 0; s < r; s++) {
            const __m512 c = _mm512_set1_ps(A[(size_t)r * chunk + s]);
            const float *vs = V + (size_t)s * dv, *ws = W + (size_t)s * dk;
            _Pragma("GCC unroll 32")
            for (int j = 0; j < nv; j++) u[j] = _mm512_fnmadd_ps(c, _mm512_loadu_ps(vs + 16 * j), u[j]);
            _Pragma("GCC unroll 32")
            for (int j = 0; j < nk; j++) w[j] = _mm512_fnmadd_ps(c, _mm512_loadu_ps(ws + 16 * j), w[j]);
        }
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) _mm512_storeu_ps(vr + 16 * j, u[j]);
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nk; j++) _mm512_storeu_ps(wr + 16 * j, w[j]);
    }
    /* 4 */
    for (int r = 0; r < L; r++) {
        __m512 vp[TL_GDN_MAX_DK / 16], o[TL_GDN_MAX_DK / 16];
        float *vr = V + (size_t)r * dv;
        const float *wr = W + (size_t)r * dk, *qr = Q + (size_t)r * dk;
        const float eg = expf(G[r]);
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) {
            vp[j] = _mm512_loadu_ps(vr + 16 * j);
            o[j] = _mm512_setzero_ps();
        }
        for (int i = 0; i < dk; i++) {
            const __m512 wi = _mm512_set1_ps(wr[i]), qi = _mm512_set1_ps(qr[i] * eg);
            const float *Si = S + (size_t)i * dv;
            _Pragma("GCC unroll 32")
            for (int j = 0; j < nv; j++) {
                const __m512 sv = _mm512_loadu_ps(Si + 16 * j);
                vp[j] = _mm512_fnmadd_ps(wi, sv, vp[j]);
                o[j] = _mm512_fmadd_ps(qi, sv, o[j]);
            }
        }
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) _mm512_storeu_ps(vr + 16 * j, vp[j]);
        for (int s = 0; s <= r; s++) {
            const __m512 c = _mm512_set1_ps(QK[(size_t)r * chunk + s]);
            const float *vs = V + (size_t)s * dv;
            _Pragma("GCC unroll 32")
            for (int j = 0; j < nv; j++) o[j] = _mm512_fmadd_ps(c, _mm512_loadu_ps(vs + 16 * j), o[j]);
        }
        float *orow = out + (size_t)(r0 + r) * Hv * dv + (size_t)h * dv;
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) _mm512_storeu_ps(orow + 16 * j, o[j]);
    }
    /* 5: decay factors of each row's contribution, folded into K (K is not needed after this) */
    const float gl = G[L - 1];
    for (int r = 0; r < L; r++) scale16(K + (size_t)r * dk, K + (size_t)r * dk, expf(gl - G[r]), dk);
    const __m512 el = _mm512_set1_ps(expf(gl));
    for (int i = 0; i < dk; i += 2) {
        __m512 s0[TL_GDN_MAX_DK / 16], s1[TL_GDN_MAX_DK / 16];
        float *S0 = S + (size_t)i * dv, *S1 = S0 + dv;
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) {
            s0[j] = _mm512_mul_ps(el, _mm512_loadu_ps(S0 + 16 * j));
            s1[j] = _mm512_mul_ps(el, _mm512_loadu_ps(S1 + 16 * j));
        }
        for (int r = 0; r < L; r++) {
            const __m512 k0 = _mm512_set1_ps(K[(size_t)r * dk + i]);
            const __m512 k1 = _mm512_set1_ps(K[(size_t)r * dk + i + 1]);
            const float *vr = V + (size_t)r * dv;
            _Pragma("GCC unroll 32")
            for (int j = 0; j < nv; j++) {
                const __m512 x = _mm512_loadu_ps(vr + 16 * j);
                s0[j] = _mm512_fmadd_ps(k0, x, s0[j]);
                s1[j] = _mm512_fmadd_ps(k1, x, s1[j]);
            }
        }
        _Pragma("GCC unroll 32")
        for (int j = 0; j < nv; j++) {
            _mm512_storeu_ps(S0 + 16 * j, s0[j]);
            _mm512_storeu_ps(S1 + 16 * j, s1[j]);
        }
    }
}

/* The same for chunks of 16 tokens, organised for registers rather than rows: rows past L are
 * zero padding, and steps 4 and 5 run per 16-wide column slice of the state with one accumulator
 * per chunk row, so S is read twice and written once per chunk and every FMA takes its
 * broadcast operand from memory. */
#define C16 16
static void chunk16_head(float *out, const float *qkv, const float *a, const float *b, float a_log,
                         float dt_bias, const tl_gdn_state *st, float *S, int r0, int L, int h,
                         float *scratch) {
    const int Hv = st->n_v_heads, dk = st->dk, dv = st->dv, nk = dk / 16, nv = dv / 16;
    float *Q = scratch, *K = Q + C16 * dk, *W = K + C16 * dk, *V = W + C16 * dk;
    float *G = V + C16 * dv, *B = G + C16, *A = B + C16, *QK = A + C16 * C16;
    float *T = QK + C16 * C16; /* [dk][16] */
    const float ea = expf(a_log);
    memset(A, 0, 2 * C16 * C16 * sizeof(float)); /* A and QK */
    /* 1 */
    const float cum = chunk_load(Q, K, V, B, G, qkv, a, b, ea, dt_bias, st, r0, L, h);
    for (int r = L; r < C16; r++) {
        memset(Q + (size_t)r * dk, 0, (size_t)dk * sizeof(float));
        memset(K + (size_t)r * dk, 0, (size_t)dk * sizeof(float));
        memset(W + (size_t)r * dk, 0, (size_t)dk * sizeof(float));
        memset(V + (size_t)r * dv, 0, (size_t)dv * sizeof(float));
        B[r] = 0.0f;
        G[r] = cum;
    }
    /* 2 */
    chunk_scores(A, QK, C16, Q, K, B, G, L, dk);
    /* 3 */
    for (int r = 0; r < L; r++) {
        float *vr = V + (size_t)r * dv, *wr = W + (size_t)r * dk;
        const float *kr = K + (size_t)r * dk;
        const __m512 vb = _mm512_set1_ps(B[r]), vbe = _mm512_set1_ps(B[r] * expf(G[r]));
        for (int j = 0; j < nv; j++) {
            __m512 u = _mm512_mul_ps(vb, _mm512_loadu_ps(vr + 16 * j));
            for (int s = 0; s < r; s++)
                u = _mm512_fnmadd_ps(_mm512_set1_ps(A[r * C16 + s]),
                                     _mm512_loadu_ps(V + (size_t)s * dv + 16 * j), u);
            _mm512_storeu_ps(vr + 16 * j, u);
        }
        for (int j = 0; j < nk; j++) {
            __m512 w = _mm512_mul_ps(vbe, _mm512_loadu_ps(kr + 16 * j));
            for (int s = 0; s < r; s++)
                w = _mm512_fnmadd_ps(_mm512_set1_ps(A[r * C16 + s]),
                                     _mm512_loadu_ps(W + (size_t)s * dk + 16 * j), w);
            _mm512_storeu_ps(wr + 16 * j, w);
        }
    }
    for (int r = 0; r < L; r++) scale16(Q + (size_t)r * dk, Q + (size_t)r * dk, expf(G[r]), dk);
    /* transposed copies, so that the 16 broadcasts of a state row come from one address:
     * T = Wᵀ, then W's space holds (e^Γ Q)ᵀ */
    transpose16(T, W, dk);
    transpose16(W, Q, dk);
    const float *WT = T, *QT = W;
    /* 4 */
    for (int j = 0; j < nv; j++) {
        __m512 acc[C16];
        _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
            acc[r] = _mm512_loadu_ps(V + (size_t)r * dv + 16 * j);
        for (int i = 0; i < dk; i++) {
            const __m512 sv = _mm512_loadu_ps(S + (size_t)i * dv + 16 * j);
            _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
                acc[r] = _mm512_fnmadd_ps(_mm512_set1_ps(WT[(size_t)i * C16 + r]), sv, acc[r]);
        }
        _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
            _mm512_storeu_ps(V + (size_t)r * dv + 16 * j, acc[r]);
        _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++) acc[r] = _mm512_setzero_ps();
        for (int i = 0; i < dk; i++) {
            const __m512 sv = _mm512_loadu_ps(S + (size_t)i * dv + 16 * j);
            _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(QT[(size_t)i * C16 + r]), sv, acc[r]);
        }
        for (int s = 0; s < L; s++) {
            const __m512 vs = _mm512_loadu_ps(V + (size_t)s * dv + 16 * j);
            _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
                if (r >= s) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(QK[r * C16 + s]), vs, acc[r]);
        }
        for (int r = 0; r < L; r++)
            _mm512_storeu_ps(out + (size_t)(r0 + r) * Hv * dv + (size_t)h * dv + 16 * j, acc[r]);
    }
    /* 5 */
    const float gl = G[L - 1];
    for (int r = 0; r < L; r++) scale16(K + (size_t)r * dk, K + (size_t)r * dk, expf(gl - G[r]), dk);
    transpose16(Q, K, dk); /* Q's space: (decayed K)ᵀ */
    const float *KT = Q;
    const __m512 el = _mm512_set1_ps(expf(gl));
    for (int j = 0; j < nv; j++) {
        __m512 vr[C16];
        _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
            vr[r] = _mm512_loadu_ps(V + (size_t)r * dv + 16 * j);
        for (int i = 0; i < dk; i++) {
            float *Si = S + (size_t)i * dv + 16 * j;
            __m512 acc = _mm512_mul_ps(el, _mm512_loadu_ps(Si));
            _Pragma("GCC unroll 16") for (int r = 0; r < C16; r++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(KT[(size_t)i * C16 + r]), vr[r], acc);
            _mm512_storeu_ps(Si, acc);
        }
    }
}

static void chunk_head_128(float *out, const float *qkv, const float *a, const float *b,
                           float a_log, float dt_bias, const tl_gdn_state *st, float *S, int r0,
                           int L, int h, int chunk, float *scratch) {
    chunk_head(out, qkv, a, b, a_log, dt_bias, st, S, r0, L, h, chunk, scratch, 8, 8);
}

static void chunk_head_any(float *out, const float *qkv, const float *a, const float *b,
                           float a_log, float dt_bias, const tl_gdn_state *st, float *S, int r0,
                           int L, int h, int chunk, float *scratch) {
    chunk_head(out, qkv, a, b, a_log, dt_bias, st, S, r0, L, h, chunk, scratch, st->dk / 16,
               st->dv / 16);
}

void tl_cpu_gdn_rule_chunked(float *out, const float *qkv, const float *a, const float *b,
                             const float *a_log, const float *dt_bias, tl_gdn_state *st,
                             const tl_rows *rows, int chunk, int h0, int h1, float *scratch) {
    const int Hv = st->n_v_heads, dk = st->dk, dv = st->dv;
    if (chunk < 1) chunk = 1;
    if (chunk > TL_GDN_CHUNK_MAX) chunk = TL_GDN_CHUNK_MAX;
    const int fixed = dk == 128 && dv == 128;
    int r0 = 0;
    while (r0 < rows->n) {
        int end = r0 + 1;
        while (end < rows->n && rows->slot[end] == rows->slot[r0]) end++;
        const int slot = rows->slot[r0];
        for (int c0 = r0; c0 < end; c0 += chunk) {
            const int L = TL_MIN(chunk, end - c0);
            for (int h = h0; h < h1; h++) {
                float *S = st->rec + (((size_t)slot * Hv + h) * dk) * dv;
                if (chunk == C16)
                    chunk16_head(out, qkv, a, b, a_log[h], dt_bias[h], st, S, c0, L, h, scratch);
                else if (fixed)
                    chunk_head_128(out, qkv, a, b, a_log[h], dt_bias[h], st, S, c0, L, h, chunk,
                                   scratch);
                else
                    chunk_head_any(out, qkv, a, b, a_log[h], dt_bias[h], st, S, c0, L, h, chunk,
                                   scratch);
            }
        }
        r0 = end;
    }
}
