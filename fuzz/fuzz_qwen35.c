/* fuzz_qwen35.c — libFuzzer target: binding a tensor set to the Qwen3.5 architecture
 * (src/model/qwen35.c: conv layout detection, norm offsets, Gated DeltaNet and gated attention
 * tensors, MLX quantized projections) and running it. The input is one safetensors file; the
 * config is fixed: a micro Qwen3.5 (vocab 16, hidden 8, one linear + one full layer, 1 key head
 * and 2 value heads of 4) or, when the input holds an embed_tokens.scales under any known prefix,
 * the same at hidden 32 with MLX 4-bit group 32. Whatever the tensors claim, loading either
 * fails with a message or yields a model whose forward pass (two slots, then a decode step)
 * reads only inside the tensors (ASan checks). Seeds: fuzz/seeds/fuzz_qwen35/
 * (tools/qwen35_fuzz_seeds.py). */
#include <stdint.h>
#include <string.h>

#include "model/model.h"

#define Q35_MICRO(H, I, QUANT)                                                                     \
    "{\"model_type\":\"qwen3_5_text\",\"vocab_size\":16,\"hidden_size\":" #H                        \
    ",\"num_hidden_layers\":2,\"layer_types\":[\"linear_attention\",\"full_attention\"],"         \
    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":4,\"intermediate_size\":" #I \
    ",\"linear_num_key_heads\":1,\"linear_num_value_heads\":2,\"linear_key_head_dim\":4,"          \
    "\"linear_value_head_dim\":4,\"linear_conv_kernel_dim\":4,\"tie_word_embeddings\":true,"      \
    "\"rms_norm_eps\":1e-6,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":"       \
    "10000000.0,\"partial_rotary_factor\":0.5},\"max_position_embeddings\":64" QUANT "}"

static const char k_dense[] = Q35_MICRO(8, 16, "");
static const char k_quant[] = Q35_MICRO(32, 32, ",\"quantization\":{\"group_size\":32,\"bits\":4}");

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_err err;
    tl_st_set *st = tl_st_new();
    if (!st) return 0;
    if (tl_st_parse(st, "fuzz.safetensors", data, size, &err) != 0) {
        tl_st_free(st);
        return 0;
    }
    int quant = tl_st_get(st, "model.embed_tokens.scales") ||
                tl_st_get(st, "model.language_model.embed_tokens.scales") ||
                tl_st_get(st, "language_model.model.embed_tokens.scales");
    const char *cj = quant ? k_quant : k_dense;
    tl_config cfg;
    if (tl_config_parse(&cfg, "config.json", cj, strlen(cj), NULL, 0, &err) != 0) {
        tl_st_free(st);
        return 0;
    }
    tl_backend *be = tl_backend_ref_new();
    tl_model *m = NULL;
    if (tl_model_open_parts(&m, "fuzz", &cfg, st, be, &err) == 0) {
        tl_run_dims d = {.max_slots = 2, .max_rows = 4, .max_out = 2};
        if (tl_model_run_init(m, &d, &err) == 0) {
            /* a KV cache of one page per slot */
            enum { PS = 8 };
            float *k = be->alloc(be, (size_t)2 * PS * m->kv_dim, TL_MEM_KV);
            float *v = be->alloc(be, (size_t)2 * PS * m->kv_dim, TL_MEM_KV);
            float *kk[1] = {k}, *vv[1] = {v};
            int32_t pt[4] = {0, -1, 1, -1};
            tl_kv kv = {.n_layers = 1, .kv_dim = m->kv_dim, .page_size = PS, .n_pages = 2,
                        .max_slots = 2, .max_pages_per_slot = 2, .k = kk, .v = vv,
                        .page_table = pt};
            int32_t slot[4] = {0, 0, 0, 1}, pos[4] = {0, 1, 2, 0}, tok[4] = {1, 15, 7, 3};
            int32_t out[2] = {2, 3};
            float logits[32];
            for (int s = 0; s < 2; s++) m->arch->state_clear(m, s);
            tl_batch b = {.rows = {.n = 4, .slot = slot, .pos = pos}, .tokens = tok, .kv = &kv,
                          .n_out = 2, .out_rows = out, .logits = logits};
            if (m->arch->forward(m, &b, &err) == 0) {
                int32_t s1[1] = {0}, p1[1] = {3}, t1[1] = {9}, o1[1] = {0};
                tl_batch b1 = {.rows = {.n = 1, .slot = s1, .pos = p1}, .tokens = t1, .kv = &kv,
                               .n_out = 1, .out_rows = o1, .logits = logits};
                (void)m->arch->forward(m, &b1, &err);
            }
            be->free(be, k, (size_t)2 * PS * m->kv_dim, TL_MEM_KV);
            be->free(be, v, (size_t)2 * PS * m->kv_dim, TL_MEM_KV);
        }
        tl_model_close(m);
    } else {
        TL_ALWAYS(err.msg[0] != 0);
    }
    be->destroy(be);
    return 0;
}
