/* fuzz_qwen35.c — libFuzzer target: binding a tensor set to the Qwen3.5 architecture
 * (src/model/qwen35.c: conv layout detection, norm offsets, Gated DeltaNet and gated attention
 * tensors, MLX quantized projections) and running it. The input is one safetensors file; the
 * config is fixed: a micro Qwen3.5 (vocab 16, hidden 8, one linear + one full layer, 1 key head
 * and 2 value heads of 4) or, when the input holds an embed_tokens.scales under any known prefix,
 * the same at hidden 32 with MLX 4-bit group 32. Whatever the tensors claim, loading either
 * fails with a message or yields a model whose forward pass (two slots, then a decode step)
 * reads only inside the tensors (ASan checks). Seeds: fuzz/seeds/fuzz_qwen35/
 * (tools/qwen35_fuzz_seeds.py). */
#include "fuzz_model_common.h"

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

static const char *const k_quant_names[] = {"model.embed_tokens.scales",
                                            "model.language_model.embed_tokens.scales",
                                            "language_model.model.embed_tokens.scales"};

/* two slots, a KV cache of one page each */
static const fuzz_model_spec k_spec = {
    .dense = k_dense, .quant = k_quant, .quant_names = k_quant_names,
    .n_names = TL_ARRAY_LEN(k_quant_names), .dims = {.max_slots = 2, .max_rows = 4, .max_out = 2},
    .page_size = 8, .n_pages = 2, .pages_per_slot = 2, .page_table = {0, -1, 1, -1}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model f;
    if (fuzz_model_start(&f, &k_spec, data, size)) {
        tl_model *m = f.m;
        int32_t slot[4] = {0, 0, 0, 1}, pos[4] = {0, 1, 2, 0}, tok[4] = {1, 15, 7, 3};
        int32_t out[2] = {2, 3};
        float logits[32];
        for (int s = 0; s < 2; s++) m->arch->state_clear(m, s);
        tl_batch b = {.rows = {.n = 4, .slot = slot, .pos = pos}, .tokens = tok, .kv = &f.kv,
                      .n_out = 2, .out_rows = out, .logits = logits};
        if (m->arch->forward(m, &b, &f.err) == 0) {
            int32_t s1[1] = {0}, p1[1] = {3}, t1[1] = {9}, o1[1] = {0};
            tl_batch b1 = {.rows = {.n = 1, .slot = s1, .pos = p1}, .tokens = t1, .kv = &f.kv,
                           .n_out = 1, .out_rows = o1, .logits = logits};
            (void)m->arch->forward(m, &b1, &f.err);
        }
    }
    fuzz_model_close(&f);
    return 0;
}
