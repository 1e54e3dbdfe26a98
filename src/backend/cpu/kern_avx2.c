/* kern_avx2.c — AVX2 + FMA kernels of the CPU backend for CPUs without AVX-512 (compiled with
 * -mavx2 -mfma -mf16c by CMake's *_avx2.c rule; only called after tl_cpu_kern_pick saw the CPU
 * supports them). The QR16 tile uses vpmaddubsw (u8 x s8 -> s16 pairs) + vpmaddwd: 4-bit
 * weights directly (15 * 127 * 2 fits int16); 8-bit ones split into nibbles (255 * 127 * 2 would
 * saturate). Dense rows and the vector helpers are plain 8-wide FMA loops. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load8_half(const uint8_t *p, int sdt) {
    if (sdt == TL_DT_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    if (sdt == TL_DT_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    return _mm256_loadu_ps((const float *)p);
}

/* QR16, one activation row at a time, 8 weight rows (half a 64-byte chunk) per pass. */
static void avx2_qr16_mm(const tl_wmat *w, const tl_xq *x, float *y, int ldy, int m0, int m1,
                         int rb0, int rb1) {
    const __m256i m0f = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    const int gs = w->gs, sb = w->sbytes;
    for (int rb = rb0; rb < rb1; rb++) {
        int nr = TL_MIN(16, w->rows - rb * 16);
        for (int m = m0; m < m1; m++) {
            __m256 facc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
            const int8_t *xq = x->q + (size_t)m * x->cols;
            const int8_t *xq2 = x->q2 ? x->q2 + (size_t)m * x->cols : NULL;
            for (int g = 0; g < w->groups; g++) {
                const uint8_t *gp = tl_qr16_group(w, rb, g);
                const uint8_t *wb = gp + 32 * sb;
                size_t gi = (size_t)m * x->groups + g;
                for (int h = 0; h < 2; h++) {
                    __m256i a1 = _mm256_setzero_si256(), a2 = _mm256_setzero_si256();
                    for (int c = 0; w->bits == 8 && c < gs / 4; c++) {
                        /* 8-bit: u8 x s8 pairs could pass int16 in maddubs, so split each
                         * weight into nibbles: q = 16 hi + lo */
                        __m256i v = _mm256_load_si256((const __m256i *)(wb + 64 * c + 32 * h));
                        __m256i lo = _mm256_and_si256(v, m0f);
                        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f);
                        int32_t xv;
                        memcpy(&xv, xq + g * gs + 4 * c, 4);
                        __m256i xb = _mm256_set1_epi32(xv);
                        a1 = _mm256_add_epi32(a1, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, xb), sixteen),
                                                                   _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xb), ones)));
                        if (xq2) {
                            memcpy(&xv, xq2 + g * gs + 4 * c, 4);
                            xb = _mm256_set1_epi32(xv);
                            a2 = _mm256_add_epi32(a2, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, xb), sixteen),
                                                                       _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xb), ones)));
                        }
                    }
                    for (int c = 0; w->bits == 4 && c < gs / 8; c++) {
                        __m256i v = _mm256_load_si256((const __m256i *)(wb + 64 * c + 32 * h));
                        __m256i lo = _mm256_and_si256(v, m0f);
                        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f);
                        int32_t xl, xh;
                        memcpy(&xl, xq + g * gs + 8 * c, 4);
                        memcpy(&xh, xq + g * gs + 8 * c + 4, 4);
                        __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)),
                                                     _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh)));
                        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(p, ones));
                        if (xq2) {
                            memcpy(&xl, xq2 + g * gs + 8 * c, 4);
                            memcpy(&xh, xq2 + g * gs + 8 * c + 4, 4);
                            p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)),
                                                 _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh)));
                            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(p, ones));
                        }
                    }
                    a1 = _mm256_sub_epi32(a1, _mm256_set1_epi32(x->zs[2 * gi]));
                    a2 = _mm256_sub_epi32(a2, _mm256_set1_epi32(x->zs[2 * gi + 1]));
                    __m256 f = _mm256_cvtepi32_ps(a1);
                    if (xq2) f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a2), _mm256_set1_ps(1.f / 254.f), f);
                    __m256 sc = load8_half(gp + 8 * h * sb, w->sdt);
                    __m256 bi = load8_half(gp + 16 * sb + 8 * h * sb, w->sdt);
                    bi = _mm256_fmadd_ps(sc, _mm256_set1_ps((float)x->z), bi);
                    facc[h] = _mm256_fmadd_ps(f, _mm256_mul_ps(sc, _mm256_set1_ps(x->d[gi])), facc[h]);
                    facc[h] = _mm256_fmadd_ps(bi, _mm256_set1_ps(x->s[gi]), facc[h]);
                }
            }
            float out[16];
            _mm256_storeu_ps(out, facc[0]);
            _mm256_storeu_ps(out + 8, facc[1]);
            memcpy(y + (size_t)m * ldy + rb * 16, out, (size_t)nr * sizeof(float));
        }
    }
}

static float avx2_dot(const float *a, const float *b, int n) {
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s);
    float r = hsum8(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void avx2_axpy(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void avx2_dense_mm(const tl_wmat *w, const float *x, float *y, int ldy, int n, int r0,
                          int r1, float *scratch) {
    for (int r = r0; r < r1; r++) {
        tl_cpu_dequant_row(w, r, scratch);
        for (int m = 0; m < n; m++) y[(size_t)m * ldy + r] = avx2_dot(x + (size_t)m * w->cols, scratch, w->cols);
    }
}

static const tl_cpu_kern kern_avx2 = {
    .isa = "avx2",
    .qr16_mm = avx2_qr16_mm,
    .dense_mm = avx2_dense_mm,
    .dot = avx2_dot,
    .axpy = avx2_axpy,
    .xq_rows = tl_cpu_xq_rows,
    .gdn_step = tl_cpu_gdn_step,
    .attn_block = NULL,
    .conv_silu = tl_cpu_conv_silu,
    .swiglu = tl_cpu_swiglu,
    .mul_sigmoid = tl_cpu_mul_sigmoid,
};

const tl_cpu_kern *tl_cpu_kern_avx2(void) { return &kern_avx2; }
