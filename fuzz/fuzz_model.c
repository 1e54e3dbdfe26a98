/* fuzz_model.c — libFuzzer target: binding a tensor set to a model (src/model/model.c +
 * llama.c) and running it. The input is one safetensors file; the config is fixed: a micro
 * Llama (vocab 16, hidden 8, 1 layer, dense) or, when the input holds
 * model.embed_tokens.scales, the same shape at hidden 32 quantized (MLX 4-bit, group 32).
 * Whatever the tensors claim, loading either fails with a message or yields a model whose
 * forward pass reads only inside the tensors (ASan checks). Seeds: fuzz/seeds/fuzz_model/
 * (tools/make_tiny_models.py --fuzz-seeds). */
#include "fuzz_model_common.h"

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

static const char *const k_quant_names[] = {"model.embed_tokens.scales"};

/* one slot, a KV cache of one page */
static const fuzz_model_spec k_spec = {
    .dense = k_dense, .quant = k_quant, .quant_names = k_quant_names,
    .n_names = TL_ARRAY_LEN(k_quant_names), .dims = {.max_slots = 1, .max_rows = 4, .max_out = 1},
    .page_size = 16, .n_pages = 1, .pages_per_slot = 4, .page_table = {0, -1, -1, -1}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model f;
    if (fuzz_model_start(&f, &k_spec, data, size)) {
        int32_t slot[3] = {0, 0, 0}, pos[3] = {0, 1, 2}, tok[3] = {1, 15, 7}, out[1] = {2};
        float logits[16];
        tl_batch b = {.rows = {.n = 3, .slot = slot, .pos = pos}, .tokens = tok, .kv = &f.kv,
                      .n_out = 1, .out_rows = out, .logits = logits};
        (void)f.m->arch->forward(f.m, &b, &f.err);
    }
    fuzz_model_close(&f);
    return 0;
}
