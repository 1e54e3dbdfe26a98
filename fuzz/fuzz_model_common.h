/* fuzz_model_common.h — what the model fuzz targets (fuzz_model.c, fuzz_qwen35.c) share: the
 * input parsed as one safetensors file, opened as a model on the reference backend with one of
 * two fixed configs (the quantized one when the input holds any of the given tensor names), its
 * run state, and a one-layer paged KV cache for the target's forward passes. A model that fails
 * to open must say why. */
#ifndef TL_FUZZ_MODEL_COMMON_H
#define TL_FUZZ_MODEL_COMMON_H

#include <stdint.h>
#include <string.h>

#include "model/model.h"

/* What a target fixes: its two configs and the shape of its run. */
typedef struct fuzz_model_spec {
    const char *dense, *quant;        /* config.json texts */
    const char *const *quant_names;   /* any of these tensors present: the quant config */
    size_t n_names;
    tl_run_dims dims;
    int page_size, n_pages, pages_per_slot;
    int32_t page_table[8];            /* dims.max_slots * pages_per_slot entries */
} fuzz_model_spec;

typedef struct fuzz_model {
    tl_backend *be;
    tl_model *m;
    tl_err err;
    tl_kv kv;                         /* one layer of n_pages pages */
    float *k[1], *v[1];
    size_t kv_floats;
    int32_t page_table[8];
} fuzz_model;

/* 1 when f->m is open with its run state and f->kv is ready for a forward pass; 0 when the
 * input was refused. Either way fuzz_model_close(f) after. */
static int fuzz_model_start(fuzz_model *f, const fuzz_model_spec *s, const uint8_t *data,
                            size_t size) {
    memset(f, 0, sizeof *f);
    tl_st_set *st = tl_st_new();
    if (!st) return 0;
    if (tl_st_parse(st, "fuzz.safetensors", data, size, &f->err) != 0) {
        tl_st_free(st);
        return 0;
    }
    const char *cj = s->dense;
    for (size_t i = 0; i < s->n_names; i++)
        if (tl_st_get(st, s->quant_names[i])) cj = s->quant;
    tl_config cfg;
    if (tl_config_parse(&cfg, "config.json", cj, strlen(cj), NULL, 0, &f->err) != 0) {
        tl_st_free(st);
        return 0;
    }
    f->be = tl_backend_ref_new();
    if (tl_model_open_parts(&f->m, "fuzz", &cfg, st, f->be, &f->err) != 0) {
        TL_ALWAYS(f->err.msg[0] != 0);
        return 0;
    }
    if (tl_model_run_init(f->m, &s->dims, &f->err) != 0) return 0;
    memcpy(f->page_table, s->page_table, sizeof f->page_table);
    f->kv_floats = (size_t)s->n_pages * s->page_size * f->m->kv_dim;
    f->k[0] = f->be->alloc(f->be, f->kv_floats, TL_MEM_KV);
    f->v[0] = f->be->alloc(f->be, f->kv_floats, TL_MEM_KV);
    f->kv = (tl_kv){.n_layers = 1, .kv_dim = f->m->kv_dim, .page_size = s->page_size,
                    .n_pages = s->n_pages, .max_slots = s->dims.max_slots,
                    .max_pages_per_slot = s->pages_per_slot, .k = f->k, .v = f->v,
                    .page_table = f->page_table};
    return 1;
}

static void fuzz_model_close(fuzz_model *f) {
    if (f->k[0]) f->be->free(f->be, f->k[0], f->kv_floats, TL_MEM_KV);
    if (f->v[0]) f->be->free(f->be, f->v[0], f->kv_floats, TL_MEM_KV);
    tl_model_close(f->m);
    if (f->be) f->be->destroy(f->be);
}

#endif
