/* test_synth.c — `tallow synth` output: the published parameter counts (models.md §1.1.1: Qwen3.5-2B
 * 1,881,825,088 with the embedding once; Llama-3.2-3B 3,212,749,824 from §4.1's shapes), the
 * mlx-community tensor layout (§2.2, §3), loading through the normal store loader, determinism for
 * a seed, sane values, and a tokenizer that tallow's loader reads with the real special ids.
 * Full-depth counts are extrapolated from two shallow models: layers repeat with period 4
 * (Qwen3.5: 3 linear + 1 full) or 1 (Llama), so total = P(a) + (L - a)/(b - a) * (P(b) - P(a)). */
#include <sys/stat.h>

#include "store/store.h"
#include "test.h"

static char tmp[256];

/* Parameters from the shapes as written: packed weights count in*32/bits columns. */
static int64_t count_params(const tl_st_set *s, const tl_config *c) {
    int64_t n = 0;
    char mod[256], sc[300];
    for (int i = 0; i < tl_st_count(s); i++) {
        const tl_tensor *t = tl_st_at(s, i);
        size_t l = strlen(t->name);
        if (l > 7 && (!strcmp(t->name + l - 7, ".scales") || !strcmp(t->name + l - 7, ".biases")))
            continue;
        int64_t e = tl_tensor_numel(t);
        if (l > 7 && !strcmp(t->name + l - 7, ".weight")) {
            snprintf(mod, sizeof mod, "%.*s", (int)(l - 7), t->name);
            snprintf(sc, sizeof sc, "%s.scales", mod);
            if (tl_st_get(s, sc)) e = e * 32 / tl_config_quant_for(c, mod).bits;
        }
        n += e;
    }
    return n;
}

static int64_t synth_params(const char *like, int bits, int layers, uint64_t seed, const char *dir,
                            tl_config *keep, tl_st_set **keep_set) {
    tl_synth_opts o = {.like = like, .bits = bits, .seed = seed, .layers = layers, .out_dir = dir};
    tl_synth_info info;
    tl_err err = {0};
    int rc = tl_synth_write(&o, &info, &err);
    CHECKF(rc == 0, "synth %s: %s", like, err.msg);
    if (rc) return -1;
    tl_st_set *s = NULL;
    tl_config c;
    rc = tl_st_open_dir(&s, dir, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return -1;
    rc = tl_config_load(&c, dir, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) {
        tl_st_free(s);
        return -1;
    }
    int64_t n = count_params(s, &c);
    CHECKF(n == info.n_params, "counted %lld, synth says %lld", (long long)n, (long long)info.n_params);
    CHECK(c.synthetic == 1 && c.n_layers == layers);
    CHECK(c.quant.bits == (bits == 16 ? 0 : bits) && (bits == 16 || c.quant.group_size == 64));
    if (keep) *keep = c;
    else tl_config_free(&c);
    if (keep_set) *keep_set = s;
    else tl_st_free(s);
    return n;
}

/* Tensor prefix+name has dtype dt and shape [a, b, c] cut to nd dimensions. */
static int shape_is(const tl_st_set *s, const char *prefix, const char *suffix, tl_dtype dt, int nd,
                    int64_t a, int64_t b, int64_t c) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    const tl_tensor *t = tl_st_get(s, name);
    if (!t) {
        fprintf(stderr, "  missing tensor %s\n", name);
        return 0;
    }
    int ok = t->dtype == dt && t->ndim == nd && t->shape[0] == a && (nd < 2 || t->shape[1] == b) &&
             (nd < 3 || t->shape[2] == c);
    if (!ok)
        fprintf(stderr, "  %s: %s [%lld,%lld,%lld] nd %d\n", name, tl_dtype_name(t->dtype),
                (long long)t->shape[0], (long long)(nd > 1 ? t->shape[1] : 0),
                (long long)(nd > 2 ? t->shape[2] : 0), t->ndim);
    return ok;
}

static void test_qwen35_2b(void) {
    char d4[300], d8[300];
    snprintf(d4, sizeof d4, "%s/q2b-4", tmp);
    snprintf(d8, sizeof d8, "%s/q2b-8", tmp);
    tl_config c;
    tl_st_set *s = NULL;
    int64_t p4 = synth_params("qwen3.5-2b", 4, 4, 7, d4, &c, &s);
    if (p4 < 0) return;
    /* The published configuration (models.md §1.1) */
    CHECK(c.arch == TL_ARCH_QWEN35 && !strcmp(c.model_type, "qwen3_5"));
    CHECK(c.hidden_size == 2048 && c.n_heads == 8 && c.n_kv_heads == 2 && c.head_dim == 256);
    CHECK(c.intermediate_size == 6144 && c.vocab_size == 248320 && c.tie_word_embeddings);
    CHECK(c.linear_num_key_heads == 16 && c.linear_num_value_heads == 16);
    CHECK(c.partial_rotary_factor == 0.25f && c.rope_theta == 10000000.0f);
    CHECK(c.layer_is_full[3] && !c.layer_is_full[0] && !c.layer_is_full[2]);
    CHECK(c.n_eos == 2 && c.eos_ids[0] == 248046 && c.eos_ids[1] == 248044);
    /* The mlx-community layout (§2.2, §3) */
    const char *P = "language_model.model.";
    char n[256];
    CHECK(shape_is(s, P, "embed_tokens.weight", TL_DT_U32, 2, 248320, 256, 0));
    CHECK(shape_is(s, P, "embed_tokens.scales", TL_DT_BF16, 2, 248320, 32, 0));
    CHECK(shape_is(s, P, "layers.0.linear_attn.in_proj_qkv.weight", TL_DT_U32, 2, 6144, 256, 0));
    CHECK(shape_is(s, P, "layers.0.linear_attn.in_proj_a.biases", TL_DT_BF16, 2, 16, 32, 0));
    CHECK(shape_is(s, P, "layers.0.linear_attn.conv1d.weight", TL_DT_BF16, 3, 6144, 4, 1));
    CHECK(shape_is(s, P, "layers.0.linear_attn.A_log", TL_DT_F32, 1, 16, 0, 0));
    CHECK(shape_is(s, P, "layers.0.linear_attn.norm.weight", TL_DT_BF16, 1, 128, 0, 0));
    CHECK(shape_is(s, P, "layers.3.self_attn.q_proj.weight", TL_DT_U32, 2, 4096, 256, 0));
    CHECK(shape_is(s, P, "layers.3.self_attn.k_norm.weight", TL_DT_BF16, 1, 256, 0, 0));
    CHECK(shape_is(s, P, "layers.3.mlp.down_proj.scales", TL_DT_BF16, 2, 2048, 96, 0));
    CHECK(shape_is(s, P, "norm.weight", TL_DT_BF16, 1, 2048, 0, 0));
    CHECK(tl_st_get(s, "language_model.lm_head.weight") == NULL); /* tied */
    /* Values: a dequantized row has std ~0.02 and mean ~0; norms ~1 (already shifted). */
    snprintf(n, sizeof n, "%slayers.3.mlp.gate_proj", P);
    char wn[300], sn[300], bn[300];
    snprintf(wn, sizeof wn, "%s.weight", n);
    snprintf(sn, sizeof sn, "%s.scales", n);
    snprintf(bn, sizeof bn, "%s.biases", n);
    const tl_tensor *w = tl_st_get(s, wn), *sc = tl_st_get(s, sn), *bi = tl_st_get(s, bn);
    CHECKF(w && sc && bi, "%s: weight, scales or biases missing", n);
    if (w && sc && bi) {
        double sum = 0, sq = 0;
        const uint32_t *q = w->data;
        const uint16_t *ss = sc->data, *bb = bi->data;
        for (int col = 0; col < 2048; col++) {
            int g = col / 64;
            float v = tl_bf16_to_f32(ss[g]) * (float)((q[col / 8] >> (4 * (col % 8))) & 15) +
                      tl_bf16_to_f32(bb[g]);
            sum += v;
            sq += v * v;
        }
        double mean = sum / 2048, sd = sqrt(sq / 2048 - mean * mean);
        CHECKF(fabs(mean) < 0.004 && sd > 0.015 && sd < 0.027, "mean %g std %g", mean, sd);
    }
    snprintf(n, sizeof n, "%slayers.0.input_layernorm.weight", P);
    const tl_tensor *nw = tl_st_get(s, n);
    CHECKF(nw != NULL, "%s missing", n);
    if (nw) {
        float v = tl_bf16_to_f32(((const uint16_t *)nw->data)[5]);
        CHECKF(v > 0.9f && v < 1.1f, "norm weight %g", v);
    }
    tl_st_free(s);
    tl_config_free(&c);

    int64_t p8 = synth_params("qwen3.5-2b", 4, 8, 7, d8, NULL, NULL);
    if (p8 < 0) return;
    int64_t total = p4 + (24 - 4) / 4 * (p8 - p4);
    CHECKF(total == 1881825088LL, "Qwen3.5-2B: %lld parameters, published 1881825088", (long long)total);

    /* Determinism: the first 4 layers of the 8-layer model equal the 4-layer one's, seed 7 both. */
    tl_err err = {0};
    tl_st_set *a = NULL, *b = NULL;
    if (tl_st_open_dir(&a, d4, &err) == 0 && tl_st_open_dir(&b, d8, &err) == 0) {
        int same = 1;
        for (int i = 0; i < tl_st_count(a); i++) {
            const tl_tensor *x = tl_st_at(a, i), *y = tl_st_get(b, x->name);
            if (!y || y->nbytes != x->nbytes || memcmp(x->data, y->data, x->nbytes)) same = 0;
        }
        CHECK(same);
    }
    tl_st_free(a);
    tl_st_free(b);
    /* Another seed gives other weights. */
    int64_t p4b = synth_params("qwen3.5-2b", 4, 4, 8, d8, NULL, NULL);
    CHECK(p4b == p4);
    if (tl_st_open_dir(&a, d4, &err) == 0 && tl_st_open_dir(&b, d8, &err) == 0) {
        const tl_tensor *x = tl_st_get(a, "language_model.model.layers.0.mlp.up_proj.weight");
        const tl_tensor *y = tl_st_get(b, "language_model.model.layers.0.mlp.up_proj.weight");
        CHECK(x && y && memcmp(x->data, y->data, 64) != 0);
    }
    tl_st_free(a);
    tl_st_free(b);

    /* tallow's tokenizer reads the synthetic tokenizer: ids from HF tokenizers on the same file. */
    tl_tokenizer *tok = NULL;
    int rc = tl_tok_load_dir(d4, &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        int32_t *ids = NULL;
        size_t nid = 0;
        const char *text = "hi there<|im_end|>";
        rc = tl_tok_encode(tok, text, strlen(text), 0, &ids, &nid, &err);
        CHECKF(rc == 0, "%s", err.msg);
        CHECKF(rc == 0 && nid == 4 && ids[0] == 1033 && ids[1] == 11400 && ids[2] == 57285 &&
                   ids[3] == 248046,
               "got %zu ids", nid);
        free(ids);
        tl_tok_free(tok);
    }
}

static void test_llama(void) {
    char d1[300], d2[300];
    snprintf(d1, sizeof d1, "%s/l-1", tmp);
    snprintf(d2, sizeof d2, "%s/l-2", tmp);
    tl_config c;
    tl_st_set *s = NULL;
    int64_t p1 = synth_params("llama-3.2-3b", 16, 1, 1, d1, &c, &s);
    if (p1 < 0) return;
    CHECK(c.arch == TL_ARCH_LLAMA && c.hidden_size == 3072 && c.n_heads == 24 && c.n_kv_heads == 8);
    CHECK(c.head_dim == 128 && c.rope_factor == 32.0f && c.rope_theta == 500000.0f);
    CHECK(c.rms_norm_eps == 1e-5f && c.bos_id == 128000 && c.n_eos == 3 && c.eos_ids[2] == 128009);
    CHECK(shape_is(s, "model.", "embed_tokens.weight", TL_DT_BF16, 2, 128256, 3072, 0));
    CHECK(shape_is(s, "model.", "layers.0.self_attn.k_proj.weight", TL_DT_BF16, 2, 1024, 3072, 0));
    CHECK(shape_is(s, "model.", "layers.0.mlp.down_proj.weight", TL_DT_BF16, 2, 3072, 8192, 0));
    tl_st_free(s);
    tl_config_free(&c);
    int64_t p2 = synth_params("llama-3.2-3b", 4, 2, 1, d2, NULL, NULL);
    if (p2 < 0) return;
    int64_t total = p1 + 27 * (p2 - p1);
    CHECKF(total == 3212749824LL, "Llama-3.2-3B: %lld parameters, expected 3212749824", (long long)total);
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    int rc = tl_tok_load_dir(d2, &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        int32_t *ids = NULL;
        size_t nid = 0;
        rc = tl_tok_encode(tok, "hi there", 8, TL_TOK_ADD_SPECIAL, &ids, &nid, &err);
        CHECKF(rc == 0 && nid == 4 && ids[0] == 128000 && ids[1] == 1033, "%s", err.msg);
        free(ids);
        tl_tok_free(tok);
    }
}

static void test_errors(void) {
    tl_err err = {0};
    char d[300];
    snprintf(d, sizeof d, "%s/bad", tmp);
    tl_synth_opts o = {.like = "qwen3.5-7b", .bits = 4, .out_dir = d};
    CHECK(tl_synth_write(&o, NULL, &err) == -TL_EINVAL);
    CHECKF(strstr(err.msg, "qwen3.5-7b") && strstr(err.msg, "qwen3.5-2b"), "%s", err.msg);
    o.like = "qwen3.5-0.8b";
    o.bits = 3;
    CHECK(tl_synth_write(&o, NULL, &err) == -TL_EINVAL);
    o.bits = 4;
    o.layers = 25;
    CHECK(tl_synth_write(&o, NULL, &err) == -TL_EINVAL);
    CHECKF(strstr(err.msg, "1..24") != NULL, "%s", err.msg);
    o.layers = 1;
    o.out_dir = "/proc/nope/x";
    CHECK(tl_synth_write(&o, NULL, &err) == -TL_EIO);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/tl_test_synth_XXXXXX");
    if (!mkdtemp(tmp)) return test_skip("no temp dir");
    test_errors();
    test_qwen35_2b();
    test_llama();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return test_done();
}
