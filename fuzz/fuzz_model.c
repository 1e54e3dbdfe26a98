/* fuzz_model.c — libFuzzer target: binding a tensor set to a model (src/model/model.c +
 * llama.c) and running it. The input is one safetensors file; the config is fixed: a micro
 * Llama (vocab 16, hidden 8, 1 layer, dense) or, when the input holds
 * model.embed_tokens.scales, the same shape at hidden 32 quantized (MLX 4-bit, group 32).
 * Whatever the tensors claim, loading either fails with a message or yields a model whose
 * forward pass reads only inside the tensors (ASan checks). Seeds: fuzz/seeds/fuzz_model/
 * (tools/make_tiny_models.py --fuzz-seeds). */
#include <stdint.h>
#include <string.h>

#include "model/model.h"

static const char k_dense[] =
    "{\"model_type\":\"llama\",\"vocab_size\":16,\"hidden_size\":8,\"num_hidden_layers\":1,"
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":16,"
    "\"tie_word_embeddings\":true,\"rms_norm_eps\":1e-5,\"rope_theta\":10000,"
    "\"max_position_embeddings\":64}";
static const char k_quant[] =
    "{\"model_type\":\"llama\",\"vocab_size\":16,\"hidden_size\":32,\"num_hidden_layers\":1,"
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":32,"
    "\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-5,\"rope_theta\":10000,"
    "\"max_position_embeddings\":64,\"quantization\":{\"group_size\":32,\"bits\":4}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_err err;
    tl_st_set *st = tl_st_new();
    if (!st) return 0;
    if (tl_st_parse(st, "fuzz.safetensors", data, size, &err) != 0) {
        tl_st_free(st);
        return 0;
    }
    const char *cj = tl_st_get(st, "model.embed_tokens.scales") ? k_quant : k_dense;
    tl_config cfg;
    if (tl_config_parse(&cfg, "config.json", cj, strlen(cj), NULL, 0, &err) != 0) {
        tl_st_free(st);
        return 0;
    }
    tl_backend *be = tl_backend_ref_new();
    tl_model *m = NULL;
    if (tl_model_open_parts(&m, "fuzz", &cfg, st, be, &err) == 0) {
        tl_run_dims d = {.max_slots = 1, .max_rows = 4, .max_out = 1};
        if (tl_model_run_init(m, &d, &err) == 0) {
            /* a KV cache of one page for one slot */
            enum { PS = 16 };
            float *k = be->alloc(be, (size_t)PS * m->kv_dim, TL_MEM_KV);
            float *v = be->alloc(be, (size_t)PS * m->kv_dim, TL_MEM_KV);
            float *kk[1] = {k}, *vv[1] = {v};
            int32_t pt[4] = {0, -1, -1, -1};
            tl_kv kv = {.n_layers = 1, .kv_dim = m->kv_dim, .page_size = PS, .n_pages = 1,
                        .max_slots = 1, .max_pages_per_slot = 4, .k = kk, .v = vv,
                        .page_table = pt};
            int32_t slot[3] = {0, 0, 0}, pos[3] = {0, 1, 2}, tok[3] = {1, 15, 7}, out[1] = {2};
            float logits[16];
            tl_batch b = {.rows = {.n = 3, .slot = slot, .pos = pos}, .tokens = tok, .kv = &kv,
                          .n_out = 1, .out_rows = out, .logits = logits};
            (void)m->arch->forward(m, &b, &err);
            be->free(be, k, (size_t)PS * m->kv_dim, TL_MEM_KV);
            be->free(be, v, (size_t)PS * m->kv_dim, TL_MEM_KV);
        }
        tl_model_close(m);
    } else {
        TL_ALWAYS(err.msg[0] != 0);
    }
    be->destroy(be);
    return 0;
}
