/* test_store_config.c — config.json / generation_config.json parsing: the real published shapes
 * (Qwen3.5 VLM wrapper, text-only re-save, Llama-3.2 with llama3 RoPE, MLX quantization with
 * per-module overrides) and hostile configs, each failing with the file and the JSON path. */
#include "store/store.h"
#include "test.h"

/* Qwen3.5-2B as mlx-community ships it: VLM wrapper, rope_parameters, layer_types, quantization. */
static const char *qwen35_2b =
    "{\"architectures\":[\"Qwen3_5ForConditionalGeneration\"],\"model_type\":\"qwen3_5\","
    "\"tie_word_embeddings\":true,\"image_token_id\":248056,"
    "\"quantization\":{\"group_size\":64,\"bits\":4,\"mode\":\"affine\","
    "  \"language_model.model.layers.0.mlp.gate_proj\":{\"group_size\":32,\"bits\":8},"
    "  \"language_model.model.layers.0.linear_attn.in_proj_a\":false},"
    "\"quantization_config\":{\"group_size\":64,\"bits\":4,\"mode\":\"affine\"},"
    "\"text_config\":{\"model_type\":\"qwen3_5_text\",\"vocab_size\":248320,\"hidden_size\":2048,"
    "\"num_hidden_layers\":24,\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":256,"
    "\"intermediate_size\":6144,\"max_position_embeddings\":262144,\"rms_norm_eps\":1e-06,"
    "\"linear_num_key_heads\":16,\"linear_num_value_heads\":16,\"linear_key_head_dim\":128,"
    "\"linear_value_head_dim\":128,\"linear_conv_kernel_dim\":4,\"attn_output_gate\":true,"
    "\"full_attention_interval\":4,\"eos_token_id\":248044,\"dtype\":\"bfloat16\","
    "\"layer_types\":[\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\","
    "\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\","
    "\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\","
    "\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\","
    "\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\","
    "\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\"],"
    "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":10000000,"
    "\"partial_rotary_factor\":0.25,\"mrope_section\":[11,11,10],\"mrope_interleaved\":true}}}";

static const char *llama32_3b =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":128256,"
    "\"hidden_size\":3072,\"num_hidden_layers\":28,\"num_attention_heads\":24,"
    "\"num_key_value_heads\":8,\"head_dim\":128,\"intermediate_size\":8192,"
    "\"max_position_embeddings\":131072,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
    "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
    "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
    "\"attention_bias\":false,\"mlp_bias\":false,\"tie_word_embeddings\":true,"
    "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009],\"torch_dtype\":\"bfloat16\"}";

static void test_qwen35(void) {
    tl_config c;
    tl_err err = {0};
    const char *gen = "{\"bos_token_id\":248044,\"eos_token_id\":[248046,248044],"
                      "\"temperature\":0.6,\"top_k\":20,\"top_p\":0.95,\"do_sample\":true}";
    int rc = tl_config_parse(&c, "config.json", qwen35_2b, strlen(qwen35_2b), gen, strlen(gen), &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.arch == TL_ARCH_QWEN35);
    CHECK_STREQ(c.model_type, "qwen3_5");
    CHECK(c.vocab_size == 248320 && c.hidden_size == 2048 && c.n_layers == 24);
    CHECK(c.n_heads == 8 && c.n_kv_heads == 2 && c.head_dim == 256 && c.intermediate_size == 6144);
    CHECK(c.tie_word_embeddings == 1);
    CHECK(c.rope_theta == 10000000.0f && c.partial_rotary_factor == 0.25f && c.rope_factor == 0);
    CHECK(c.linear_num_key_heads == 16 && c.linear_num_value_heads == 16);
    CHECK(c.linear_key_head_dim == 128 && c.linear_value_head_dim == 128);
    CHECK(c.linear_conv_kernel_dim == 4 && c.attn_output_gate == 1);
    int nfull = 0;
    for (int i = 0; i < c.n_layers; i++) nfull += c.layer_is_full[i];
    CHECK(nfull == 6 && c.layer_is_full[3] && !c.layer_is_full[0] && c.layer_is_full[23]);
    CHECK(c.quant.bits == 4 && c.quant.group_size == 64);
    tl_quant q = tl_config_quant_for(&c, "language_model.model.layers.0.mlp.gate_proj");
    CHECK(q.bits == 8 && q.group_size == 32);
    q = tl_config_quant_for(&c, "language_model.model.layers.0.linear_attn.in_proj_a");
    CHECK(q.bits == 0);
    q = tl_config_quant_for(&c, "language_model.model.layers.1.mlp.gate_proj");
    CHECK(q.bits == 4 && q.group_size == 64);
    /* generation_config's eos list overrides text_config's single eos */
    CHECK(c.n_eos == 2 && c.eos_ids[0] == 248046 && c.eos_ids[1] == 248044);
    CHECK(c.bos_id == 248044);
    CHECK(c.has_temperature && fabsf(c.temperature - 0.6f) < 1e-6f);
    CHECK(c.has_top_k && c.top_k == 20 && c.has_top_p && !c.has_min_p);
    CHECK(!c.synthetic);
    CHECK_STREQ(c.torch_dtype, "bfloat16");
    tl_config_free(&c);

    /* Text-only re-save: flat, partial_rotary_factor at the top, interval instead of a list. */
    const char *flat = "{\"model_type\":\"qwen3_5_text\",\"vocab_size\":248320,\"hidden_size\":2560,"
                       "\"num_hidden_layers\":32,\"num_attention_heads\":16,\"num_key_value_heads\":4,"
                       "\"head_dim\":256,\"intermediate_size\":9216,\"linear_num_key_heads\":16,"
                       "\"linear_num_value_heads\":32,\"linear_key_head_dim\":128,"
                       "\"linear_value_head_dim\":128,\"linear_conv_kernel_dim\":4,"
                       "\"partial_rotary_factor\":0.25,\"rope_parameters\":{\"rope_theta\":10000000},"
                       "\"full_attention_interval\":4,\"eos_token_id\":248044,\"tallow_synthetic\":true}";
    rc = tl_config_parse(&c, "config.json", flat, strlen(flat), NULL, 0, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.arch == TL_ARCH_QWEN35 && c.n_layers == 32 && c.linear_num_value_heads == 32);
    CHECK(c.layer_is_full[3] && c.layer_is_full[31] && !c.layer_is_full[30]);
    CHECK(c.partial_rotary_factor == 0.25f && c.rope_theta == 10000000.0f);
    CHECK(c.n_eos == 1 && c.eos_ids[0] == 248044 && c.bos_id == -1);
    CHECK(c.quant.bits == 0 && c.synthetic == 1);
    tl_config_free(&c);

    /* Without partial_rotary_factor anywhere, Qwen3.5 rotates 64 of 256 dims as transformers'
     * default (0.25) does — not the whole head. */
    char *noprf = strdup(flat);
    char *p = strstr(noprf, "\"partial_rotary_factor\":0.25,");
    memmove(p, p + strlen("\"partial_rotary_factor\":0.25,"),
            strlen(p + strlen("\"partial_rotary_factor\":0.25,")) + 1);
    rc = tl_config_parse(&c, "config.json", noprf, strlen(noprf), NULL, 0, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK(c.partial_rotary_factor == 0.25f);
        tl_config_free(&c);
    }
    free(noprf);
}

static void test_llama(void) {
    tl_config c;
    tl_err err = {0};
    int rc = tl_config_parse(&c, "config.json", llama32_3b, strlen(llama32_3b), NULL, 0, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.arch == TL_ARCH_LLAMA && c.n_layers == 28 && c.n_heads == 24 && c.n_kv_heads == 8);
    CHECK(c.head_dim == 128 && c.vocab_size == 128256 && c.rms_norm_eps == 1e-5f);
    CHECK(c.rope_theta == 500000.0f && c.rope_factor == 32.0f && c.rope_low_freq_factor == 1.0f);
    CHECK(c.rope_high_freq_factor == 4.0f && c.rope_original_max_pos == 8192);
    CHECK(c.partial_rotary_factor == 1.0f && c.tie_word_embeddings == 1);
    CHECK(c.bos_id == 128000 && c.n_eos == 3 && c.eos_ids[2] == 128009);
    for (int i = 0; i < c.n_layers; i++) CHECK(c.layer_is_full[i] == 1);
    tl_config_free(&c);
    /* transformers 5 writes the llama3 scaling inside rope_parameters */
    const char *v5 = "{\"model_type\":\"llama\",\"vocab_size\":256,\"hidden_size\":64,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
                     "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,"
                     "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":8192}}";
    rc = tl_config_parse(&c, "config.json", v5, strlen(v5), NULL, 0, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(c.rope_theta == 500000.0f && c.rope_factor == 8.0f && c.head_dim == 16 && c.n_kv_heads == 4);
    tl_config_free(&c);
}

/* Replace the first occurrence of `from` in base by `to`, parse, expect code + needles. */
static void expect_bad(const char *base, const char *from, const char *to, const char *gen,
                       int code, const char *n1, const char *n2) {
    static char buf[8192];
    const char *p = strstr(base, from);
    if (!p) {
        CHECKF(0, "fixture text '%s' not found", from);
        return;
    }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
    tl_config c;
    tl_err err = {0};
    int rc = tl_config_parse(&c, "config.json", buf, strlen(buf), gen, gen ? strlen(gen) : 0, &err);
    CHECKF(rc == -code, "replacing %s by %s: rc %d want %d (%s)", from, to, rc, -code, err.msg);
    CHECKF(strstr(err.msg, gen && code != TL_EUNSUP ? "generation_config.json" : "config.json") != NULL, "%s", err.msg);
    if (n1) CHECKF(strstr(err.msg, n1) != NULL, "'%s' not in: %s", n1, err.msg);
    if (n2) CHECKF(strstr(err.msg, n2) != NULL, "'%s' not in: %s", n2, err.msg);
    if (rc == 0) tl_config_free(&c);
}

static void test_hostile(void) {
    const char *Q = qwen35_2b, *L = llama32_3b;
    expect_bad(Q, "\"num_attention_heads\":8", "\"num_attention_heads\":0", NULL, TL_EFORMAT,
               "$.text_config.num_attention_heads", "must be a positive integer");
    expect_bad(Q, "\"num_attention_heads\":8", "\"num_attention_heads\":\"8\"", NULL, TL_EFORMAT,
               "$.text_config.num_attention_heads", "must be a positive integer");
    expect_bad(Q, "\"hidden_size\":2048,", "", NULL, TL_EFORMAT, "$.text_config.hidden_size",
               "missing");
    expect_bad(Q, "\"num_key_value_heads\":2", "\"num_key_value_heads\":3", NULL, TL_EFORMAT,
               "num_key_value_heads", "divide");
    expect_bad(Q, "\"qwen3_5_text\"", "\"mamba\"", NULL, TL_EUNSUP,
               "$.text_config.model_type", "\"mamba\" is not supported");
    expect_bad(L, "\"llama\"", "\"gpt_oss\"", NULL, TL_EUNSUP, "$.model_type", "\"gpt_oss\"");
    expect_bad(L, "\"model_type\":\"llama\",", "", NULL, TL_EFORMAT, "$.model_type", "missing");
    expect_bad(L, "\"llama3\"", "\"yarn\"", NULL, TL_EUNSUP, "$.rope_scaling.rope_type", "yarn");
    expect_bad(L, "\"factor\":32.0", "\"factor\":-1", NULL, TL_EFORMAT, "$.rope_scaling.factor", NULL);
    expect_bad(L, "\"rms_norm_eps\":1e-05", "\"rms_norm_eps\":0", NULL, TL_EFORMAT,
               "$.rms_norm_eps", NULL);
    expect_bad(L, "\"eos_token_id\":[128001,128008,128009]", "\"eos_token_id\":[\"x\"]", NULL,
               TL_EFORMAT, "$.eos_token_id", NULL);
    expect_bad(L, "\"tie_word_embeddings\":true", "\"tie_word_embeddings\":1", NULL, TL_EFORMAT,
               "$.tie_word_embeddings", "true or false");
    expect_bad(L, "\"vocab_size\":128256", "\"vocab_size\":99999999999", NULL, TL_EFORMAT,
               "$.vocab_size", "between");
    expect_bad(Q, "\"full_attention\"],", "\"full_attention\",\"linear_attention\"],", NULL,
               TL_EFORMAT, "$.text_config.layer_types", "25 entries");
    expect_bad(Q, "\"linear_attention\",", "\"sliding\",", NULL, TL_EFORMAT,
               "$.text_config.layer_types", "entry 0");
    expect_bad(Q, "\"linear_num_value_heads\":16", "\"linear_num_value_heads\":-16", NULL,
               TL_EFORMAT, "$.text_config.linear_num_value_heads", NULL);
    expect_bad(Q, "\"linear_conv_kernel_dim\":4,", "", NULL, TL_EFORMAT,
               "$.text_config.linear_conv_kernel_dim", "missing");
    expect_bad(Q, "\"bits\":4,\"mode\"", "\"bits\":7,\"mode\"", NULL, TL_EUNSUP,
               "$.quantization.bits", NULL);
    expect_bad(Q, "\"group_size\":64,\"bits\":4,\"mode\":\"affine\",",
               "\"group_size\":64,\"bits\":4,\"mode\":\"mxfp4\",", NULL, TL_EUNSUP,
               "$.quantization.mode", "mxfp4");
    expect_bad(Q, "{\"group_size\":32,\"bits\":8}", "{\"group_size\":48,\"bits\":8}", NULL,
               TL_EUNSUP, "layers.0.mlp.gate_proj\"].group_size", NULL);
    expect_bad(Q, "\"partial_rotary_factor\":0.25", "\"partial_rotary_factor\":1.5", NULL,
               TL_EFORMAT, "$.text_config.rope_parameters.partial_rotary_factor", NULL);
    expect_bad(Q, "\"text_config\":{", "\"text_config\":7,\"x\":{", NULL, TL_EFORMAT,
               "$.text_config", "object");
    expect_bad(L, "}", "", NULL, TL_EFORMAT, "invalid JSON", "line");
    expect_bad(L, "{", "[", NULL, TL_EFORMAT, "invalid JSON", NULL);
    /* generation_config.json problems name that file */
    expect_bad(L, "{", "{", "{\"eos_token_id\":", TL_EFORMAT, "generation_config.json", "JSON");
    expect_bad(L, "{", "{", "{\"top_p\":0}", TL_EFORMAT, "$.top_p", NULL);
    expect_bad(L, "{", "{", "{\"temperature\":-1}", TL_EFORMAT, "$.temperature", NULL);
    expect_bad(L, "{", "{", "{\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}", TL_ELIMIT,
               "$.eos_token_id", NULL);
}

int main(void) {
    test_qwen35();
    test_llama();
    test_hostile();
    return test_done();
}
