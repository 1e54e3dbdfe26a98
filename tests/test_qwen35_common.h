/* test_qwen35_common.h — helpers of the Qwen3.5 tests: the deterministic input generator that
 * tools/qwen35_common.py hash_f32 mirrors bit for bit, and a reader for the golden text files
 * ("name count" then count floats). */
#ifndef TEST_QWEN35_COMMON_H
#define TEST_QWEN35_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static inline uint32_t q35_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* out[i] = value i of stream seed, in [-scale, scale) (see tools/qwen35_common.py) */
static inline void q35_hash_f32(uint32_t seed, size_t n, float scale, float *out) {
    for (size_t i = 0; i < n; i++) {
        uint32_t x = q35_mix32((uint32_t)i * 0x9E3779B1u + seed * 0x85EBCA77u);
        float v = (float)(x >> 8) * (1.0f / 8388608.0f) - 1.0f;
        out[i] = v * scale;
    }
}

/* Read array `name` from a golden file; returns malloc'd floats and sets *n, or NULL
 * (test_golden, narrowed to float). */
static inline float *q35_golden(const char *path, const char *name, size_t *n) {
    size_t cnt = 0;
    double *d = test_golden(path, name, &cnt);
    if (!d) return NULL;
    float *out = malloc((cnt ? cnt : 1) * sizeof(float));
    for (size_t i = 0; out && i < cnt; i++) out[i] = (float)d[i];
    free(d);
    if (out) *n = cnt;
    return out;
}

/* max |a - b| over n */
static inline float q35_maxdiff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        if (d < 0) d = -d;
        if (d > m || d != d) m = (d != d) ? 1e30f : d;
    }
    return m;
}

static inline float q35_maxabs(const float *a, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    return m;
}

#endif
