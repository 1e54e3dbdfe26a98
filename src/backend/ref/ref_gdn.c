/* ref_gdn.c — scalar reference of the Gated DeltaNet ops (contract in ref_gdn.h; the math is
 * docs/models.md §1.4). Written for clarity first: every faster kernel (CPU SIMD, CUDA) is tested
 * against these. Sums are accumulated in double like the rest of the ref backend; the recurrent
 * state itself is f32. */
#include "backend/ref/ref_gdn.h"

#include <math.h>
#include <string.h>

float tl_gdn_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
float tl_gdn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static float silu(float x) { return x / (1.0f + expf(-x)); }

/* ---- conv ----------------------------------------------------------------------------------- */

void tl_ref_gdn_conv(tl_backend *be, float *x, const float *w, tl_gdn_state *st,
                     const tl_rows *rows) {
    const int C = st->conv_dim, K = st->conv_k, H = K - 1;
    for (int r = 0; r < rows->n; r++) {
        float *hist = st->conv + (size_t)rows->slot[r] * H * C; /* [K-1][C], oldest first */
        float *xr = x + (size_t)r * C;
        for (int c = 0; c < C; c++) {
            const float *wc = w + (size_t)c * K;
            float in = xr[c];
            double acc = (double)wc[K - 1] * in;
            for (int i = 0; i < H; i++) acc += (double)wc[i] * hist[(size_t)i * C + c];
            for (int i = 0; i + 1 < H; i++) hist[(size_t)i * C + c] = hist[(size_t)(i + 1) * C + c];
            if (H > 0) hist[(size_t)(H - 1) * C + c] = in;
            xr[c] = silu((float)acc);
        }
    }
}

/* ---- shared per-token pieces ---------------------------------------------------------------- */

/* dst = src / sqrt(Σsrc² + 1e-6) * scale (HF l2norm, eps on the sum) */
static void l2norm_scaled(float *dst, const float *src, int n, float scale) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)src[i] * src[i];
    float inv = (float)(1.0 / sqrt(ss + 1e-6)) * scale;
    for (int i = 0; i < n; i++) dst[i] = src[i] * inv;
}

/* log-decay g = -exp(A_log) * softplus(a + dt_bias) (≤ 0) */
static float gdn_log_decay(float a, float a_log, float dt_bias) {
    return -expf(a_log) * tl_gdn_softplus(a + dt_bias);
}

/* ---- exact recurrence ----------------------------------------------------------------------- */

void tl_ref_gdn_rule(tl_backend *be, float *out, const float *qkv, const float *a, const float *b,
                     const float *a_log, const float *dt_bias, tl_gdn_state *st,
                     const tl_rows *rows) {
    const int Hk = st->n_k_heads, Hv = st->n_v_heads, dk = st->dk, dv = st->dv;
    const int ratio = Hv / Hk, key_dim = Hk * dk, C = st->conv_dim;
    const float qscale = 1.0f / sqrtf((float)dk);
    float q[TL_GDN_MAX_DK], k[TL_GDN_MAX_DK];
    double m[TL_GDN_MAX_DK], acc[TL_GDN_MAX_DK];
    for (int r = 0; r < rows->n; r++) {
        const float *row = qkv + (size_t)r * C;
        for (int h = 0; h < Hv; h++) {
            const int kh = h / ratio;
            l2norm_scaled(q, row + (size_t)kh * dk, dk, qscale);
            l2norm_scaled(k, row + key_dim + (size_t)kh * dk, dk, 1.0f);
            const float *v = row + 2 * (size_t)key_dim + (size_t)h * dv;
            const float beta = tl_gdn_sigmoid(b[(size_t)r * Hv + h]);
            const float alpha = expf(gdn_log_decay(a[(size_t)r * Hv + h], a_log[h], dt_bias[h]));
            float *S = st->rec + (((size_t)rows->slot[r] * Hv + h) * dk) * dv; /* [dk][dv] */
            /* decay, then m = Sᵀk */
            for (int j = 0; j < dv; j++) m[j] = 0.0;
            for (int i = 0; i < dk; i++) {
                float *Si = S + (size_t)i * dv;
                for (int j = 0; j < dv; j++) {
                    Si[j] *= alpha;
                    m[j] += (double)Si[j] * k[i];
                }
            }
            /* delta = beta (v - m); S += k deltaᵀ; o = Sᵀq */
            float delta[TL_GDN_MAX_DK];
            for (int j = 0; j < dv; j++) delta[j] = beta * (v[j] - (float)m[j]);
            float *o = out + (size_t)r * Hv * dv + (size_t)h * dv;
            for (int j = 0; j < dv; j++) acc[j] = 0.0;
            for (int i = 0; i < dk; i++) {
                float *Si = S + (size_t)i * dv;
                for (int j = 0; j < dv; j++) {
                    Si[j] += k[i] * delta[j];
                    acc[j] += (double)Si[j] * q[i];
                }
            }
            for (int j = 0; j < dv; j++) o[j] = (float)acc[j];
        }
    }
}

/* ---- chunked form --------------------------------------------------------------------------- */

size_t tl_gdn_chunk_scratch_floats(int chunk, int dk, int dv) {
    size_t c = (size_t)chunk;
    return c * (3 * (size_t)dk + (size_t)dv) + 2 * c + 2 * c * c;
}

static float dot(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

/* One chunk of L tokens (rows r0..r0+L-1 of the batch, all of one slot) for v-head h. */
static void chunk_head(float *out, const float *qkv, const float *a, const float *b,
                       const float *a_log, const float *dt_bias, const tl_gdn_state *st, float *S,
                       int r0, int L, int h, int chunk, float *scratch) {
    const int Hk = st->n_k_heads, Hv = st->n_v_heads, dk = st->dk, dv = st->dv;
    const int kh = h / (Hv / Hk), key_dim = Hk * dk, C = st->conv_dim;
    const size_t cc = (size_t)chunk;
    float *Q = scratch, *K = Q + cc * dk, *W = K + cc * dk, *V = W + cc * dk;
    float *G = V + cc * dv, *B = G + cc, *A = B + cc, *QK = A + cc * cc;
    const float qscale = 1.0f / sqrtf((float)dk);

    float cum = 0.0f;
    for (int r = 0; r < L; r++) {
        const float *row = qkv + (size_t)(r0 + r) * C;
        l2norm_scaled(Q + (size_t)r * dk, row + (size_t)kh * dk, dk, qscale);
        l2norm_scaled(K + (size_t)r * dk, row + key_dim + (size_t)kh * dk, dk, 1.0f);
        memcpy(V + (size_t)r * dv, row + 2 * (size_t)key_dim + (size_t)h * dv,
               (size_t)dv * sizeof(float));
        B[r] = tl_gdn_sigmoid(b[(size_t)(r0 + r) * Hv + h]);
        cum += gdn_log_decay(a[(size_t)(r0 + r) * Hv + h], a_log[h], dt_bias[h]);
        G[r] = cum; /* Γ_r */
    }
    /* A[r][s] = β_r (k_r·k_s) e^(Γr-Γs), s<r ; QK[r][s] = (q_r·k_s) e^(Γr-Γs), s<=r */
    for (int r = 0; r < L; r++) {
        for (int s = 0; s <= r; s++) {
            float d = expf(G[r] - G[s]);
            const float *ks = K + (size_t)s * dk;
            if (s < r) A[(size_t)r * chunk + s] = B[r] * dot(K + (size_t)r * dk, ks, dk) * d;
            QK[(size_t)r * chunk + s] = dot(Q + (size_t)r * dk, ks, dk) * d;
        }
    }
    /* forward substitution with T = I + A: U = T⁻¹ diag(β) V (in V), W = T⁻¹ diag(β e^Γ) K */
    for (int r = 0; r < L; r++) {
        float *vr = V + (size_t)r * dv, *wr = W + (size_t)r * dk;
        const float *kr = K + (size_t)r * dk;
        const float be = B[r] * expf(G[r]);
        for (int j = 0; j < dv; j++) vr[j] *= B[r];
        for (int i = 0; i < dk; i++) wr[i] = be * kr[i];
        for (int s = 0; s < r; s++) {
            const float c = A[(size_t)r * chunk + s];
            const float *vs = V + (size_t)s * dv, *ws = W + (size_t)s * dk;
            for (int j = 0; j < dv; j++) vr[j] -= c * vs[j];
            for (int i = 0; i < dk; i++) wr[i] -= c * ws[i];
        }
    }
    /* V' = U - W S (in V); O = diag(e^Γ) Q S + QK V' */
    for (int r = 0; r < L; r++) {
        float *vr = V + (size_t)r * dv;
        const float *wr = W + (size_t)r * dk, *qr = Q + (size_t)r * dk;
        float *o = out + (size_t)(r0 + r) * Hv * dv + (size_t)h * dv;
        const float eg = expf(G[r]);
        for (int j = 0; j < dv; j++) o[j] = 0.0f;
        for (int i = 0; i < dk; i++) {
            const float *Si = S + (size_t)i * dv;
            const float wi = wr[i], qi = qr[i] * eg;
            for (int j = 0; j < dv; j++) {
                vr[j] -= wi * Si[j];
                o[j] += qi * Si[j];
            }
        }
        for (int s = 0; s <= r; s++) {
            const float c = QK[(size_t)r * chunk + s];
            const float *vs = V + (size_t)s * dv;
            for (int j = 0; j < dv; j++) o[j] += c * vs[j];
        }
    }
    /* S = e^(Γ_L) S + Σ_r e^(Γ_L - Γ_r) k_r v'_rᵀ */
    const float gl = G[L - 1], el = expf(gl);
    for (size_t i = 0; i < (size_t)dk * dv; i++) S[i] *= el;
    for (int r = 0; r < L; r++) {
        const float d = expf(gl - G[r]);
        const float *kr = K + (size_t)r * dk, *vr = V + (size_t)r * dv;
        for (int i = 0; i < dk; i++) {
            float *Si = S + (size_t)i * dv;
            const float ki = kr[i] * d;
            for (int j = 0; j < dv; j++) Si[j] += ki * vr[j];
        }
    }
}

void tl_gdn_rule_chunked(float *out, const float *qkv, const float *a, const float *b,
                         const float *a_log, const float *dt_bias, tl_gdn_state *st,
                         const tl_rows *rows, int chunk, float *scratch) {
    const int Hv = st->n_v_heads, dk = st->dk, dv = st->dv;
    if (chunk < 1) chunk = 1;
    int r0 = 0;
    while (r0 < rows->n) {
        int end = r0 + 1; /* run of consecutive rows of the same slot */
        while (end < rows->n && rows->slot[end] == rows->slot[r0]) end++;
        const int slot = rows->slot[r0];
        for (int c0 = r0; c0 < end; c0 += chunk) {
            const int L = TL_MIN(chunk, end - c0);
            for (int h = 0; h < Hv; h++) {
                float *S = st->rec + (((size_t)slot * Hv + h) * dk) * dv;
                chunk_head(out, qkv, a, b, a_log, dt_bias, st, S, c0, L, h, chunk, scratch);
            }
        }
        r0 = end;
    }
}

/* ---- gated RMSNorm, clear, sigmoid gate ----------------------------------------------------- */

void tl_ref_gated_rmsnorm(tl_backend *be, float *o, const float *z, const float *w, int rows,
                          int n_heads, int dim, float eps) {
    for (size_t g = 0; g < (size_t)rows * n_heads; g++) {
        float *x = o + g * dim;
        const float *zg = z + g * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
        const float inv = (float)(1.0 / sqrt(ss / dim + eps));
        for (int i = 0; i < dim; i++) x[i] = x[i] * inv * w[i] * silu(zg[i]);
    }
}

void tl_ref_gdn_state_clear(tl_backend *be, tl_gdn_state *st, int slot) {
    const size_t nc = (size_t)(st->conv_k - 1) * st->conv_dim;
    const size_t nr = (size_t)st->n_v_heads * st->dk * st->dv;
    memset(st->conv + (size_t)slot * nc, 0, nc * sizeof(float));
    memset(st->rec + (size_t)slot * nr, 0, nr * sizeof(float));
}

void tl_ref_mul_sigmoid(tl_backend *be, float *y, const float *g, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] *= tl_gdn_sigmoid(g[i]);
}
