/* fuzz_model_common.h — what the model fuzz targets (fuzz_model.c, fuzz_qwen35.c) share: the
 * input parsed as one safetensors file, opened as a model on the reference backend with one of
 * two fixed configs (the quantized one when the input holds any of the given tensor names), and
 * a one-layer paged KV cache for the forward passes. A model that fails to open must say why. */
#ifndef TL_FUZZ_MODEL_COMMON_H
#define TL_FUZZ_MODEL_COMMON_H

#include <stdint.h>
#include <string.h>

#include "model/model.h"

typedef struct fuzz_model {
    tl_backend *be;
    tl_model *m;
    tl_err err;
} fuzz_model;

/* 1 with f->m open, or 0 with nothing left to free (the input was refused). */
static int fuzz_model_open(fuzz_model *f, const uint8_t *data, size_t size, const char *dense,
                           const char *quant, const char *const *quant_names, size_t n_names) {
    memset(f, 0, sizeof *f);
    tl_st_set *st = tl_st_new();
    if (!st) return 0;
    if (tl_st_parse(st, "fuzz.safetensors", data, size, &f->err) != 0) {
        tl_st_free(st);
        return 0;
    }
    const char *cj = dense;
    for (size_t i = 0; i < n_names; i++)
        if (tl_st_get(st, quant_names[i])) cj = quant;
    tl_config cfg;
    if (tl_config_parse(&cfg, "config.json", cj, strlen(cj), NULL, 0, &f->err) != 0) {
        tl_st_free(st);
        return 0;
    }
    f->be = tl_backend_ref_new();
    if (tl_model_open_parts(&f->m, "fuzz", &cfg, st, f->be, &f->err) == 0) return 1;
    TL_ALWAYS(f->err.msg[0] != 0);
    f->be->destroy(f->be);
    return 0;
}

static void fuzz_model_close(fuzz_model *f) {
    tl_model_close(f->m);
    f->be->destroy(f->be);
}

/* A KV cache of one layer: n_pages pages of page_size rows, page_table as given. */
typedef struct fuzz_kv {
    tl_kv kv;
    float *k[1], *v[1];
    size_t n;
    tl_backend *be;
} fuzz_kv;

static void fuzz_kv_init(fuzz_kv *f, const fuzz_model *fm, int page_size, int n_pages,
                         int max_slots, int max_pages_per_slot, int32_t *page_table) {
    f->be = fm->be;
    f->n = (size_t)n_pages * page_size * fm->m->kv_dim;
    f->k[0] = f->be->alloc(f->be, f->n, TL_MEM_KV);
    f->v[0] = f->be->alloc(f->be, f->n, TL_MEM_KV);
    f->kv = (tl_kv){.n_layers = 1, .kv_dim = fm->m->kv_dim, .page_size = page_size,
                    .n_pages = n_pages, .max_slots = max_slots,
                    .max_pages_per_slot = max_pages_per_slot, .k = f->k, .v = f->v,
                    .page_table = page_table};
}

static void fuzz_kv_free(fuzz_kv *f) {
    f->be->free(f->be, f->k[0], f->n, TL_MEM_KV);
    f->be->free(f->be, f->v[0], f->n, TL_MEM_KV);
}

#endif
