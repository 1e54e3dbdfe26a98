/* backend.c — helpers shared by every backend: the reference meaning of each weight format.
 *
 * tl_wdesc_dequant_row is THE definition of what a stored weight row means (dense F32/F16/BF16
 * and MLX affine, docs/models.md §3); every backend's kernels are tested against it. It does no
 * validation: model.c checked shapes, dtypes and sizes when it built the tl_wdesc. */
#include "backend/backend.h"

#include <string.h>

/* Mapped tensors need not be aligned (safetensors does not pad data offsets), hence memcpy. */
float tl_dtype_get_f32(tl_dtype t, const void *base, size_t i) {
    const unsigned char *p = base;
    uint16_t h;
    float f;
    switch (t) {
    case TL_DT_F32: memcpy(&f, p + i * 4, 4); return f;
    case TL_DT_F16: memcpy(&h, p + i * 2, 2); return tl_f16_to_f32(h);
    case TL_DT_BF16: memcpy(&h, p + i * 2, 2); return tl_bf16_to_f32(h);
    default: return 0.0f; /* model.c admits only the three float dtypes */
    }
}

void tl_wdesc_finish(tl_wdesc *w) {
    if (w->kind == TL_W_AFFINE) w->row_bytes = (size_t)w->cols * (size_t)w->bits / 8;
    else w->row_bytes = (size_t)w->cols * tl_dtype_size(w->dtype);
}

/* Element c of a packed row: an LSB-first bit stream over little-endian bytes. For bits 2/4/8
 * this is the same as "element k of a uint32 word in bits [k*bits, (k+1)*bits)". */
static inline uint32_t affine_get(const uint8_t *row, int c, int bits) {
    size_t bit = (size_t)c * (size_t)bits;
    size_t byte = bit >> 3;
    unsigned sh = (unsigned)(bit & 7);
    uint32_t v = row[byte];
    if (sh + (unsigned)bits > 8) v |= (uint32_t)row[byte + 1] << 8;
    return (v >> sh) & ((1u << bits) - 1u);
}

void tl_wdesc_dequant_row(const tl_wdesc *w, int r, float *out) {
    size_t row_bytes = w->row_bytes;
    if (row_bytes == 0) { /* a caller that did not call tl_wdesc_finish */
        tl_wdesc tmp = *w;
        tl_wdesc_finish(&tmp);
        row_bytes = tmp.row_bytes;
    }
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * row_bytes;
    if (w->kind == TL_W_DENSE) {
        if (w->dtype == TL_DT_F32) {
            memcpy(out, row, (size_t)w->cols * sizeof(float));
            return;
        }
        for (int c = 0; c < w->cols; c++) out[c] = tl_dtype_get_f32(w->dtype, row, (size_t)c);
        return;
    }
    int ng = w->cols / w->group_size;
    for (int g = 0; g < ng; g++) {
        float s = tl_dtype_get_f32(w->dtype, w->scales, (size_t)r * (size_t)ng + (size_t)g);
        float b = tl_dtype_get_f32(w->dtype, w->biases, (size_t)r * (size_t)ng + (size_t)g);
        int c0 = g * w->group_size;
        for (int c = c0; c < c0 + w->group_size; c++)
            out[c] = s * (float)affine_get(row, c, w->bits) + b;
    }
}
