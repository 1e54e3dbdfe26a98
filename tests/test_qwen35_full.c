/* test_qwen35_full.c — one Gated DeltaNet layer and one gated attention layer at the real
 * Qwen3.5-2B and 4B shapes (16 key heads, 16/32 value heads of 128, r = 1 and 2; 8/16 query
 * heads and 2/4 KV heads of 256; RoPE on 64 of 256 dims), against transformers
 * (tools/qwen35_full_layers.py). The checkpoint is regenerated here, bit for bit, from the same
 * name-seeded hash, written to a temporary directory as bf16 safetensors (A_log f32) and run
 * through the engine: a 5-token prefill, then two decode steps. */
#include <math.h>

#include "tallow.h"
#include "test.h"
#include "test_llama_common.h"
#include "test_qwen35_common.h"

enum { VOCAB = 256, INTER = 512, HEAD = 256, DKV = 128, HK = 16, CONVK = 4 };
static const int32_t k_prompt[7] = {1, 17, 42, 99, 200, 7, 128};

typedef struct size_spec {
    const char *name;
    int hidden, hv, nh, nkv;
} size_spec;

static uint32_t fnv1a(const char *s) {
    uint32_t h = 0x811C9DC5u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x01000193u;
    return h;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The tensor's values as tools/qwen35_full_layers.py tensor_value() makes them. */
static void tensor_value(const char *name, int ndim, const int64_t *shape, float *out) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    uint32_t seed = fnv1a(name);
    if (ends_with(name, "A_log") || ends_with(name, "dt_bias")) {
        q35_hash_f32(seed, n, 1.0f, out);
    } else if (ends_with(name, "linear_attn.norm.weight")) {
        q35_hash_f32(seed, n, 0.5f, out);
        for (size_t i = 0; i < n; i++) out[i] += 1.0f;
    } else if (ndim == 1 || strstr(name, "conv1d")) {
        q35_hash_f32(seed, n, 0.5f, out);
    } else {
        int lg = 0;
        while ((2LL << lg) <= shape[ndim - 1]) lg++; /* floor(log2(fan_in)) */
        q35_hash_f32(seed, n, 1.0f / (float)(1 << (lg / 2)), out);
    }
}

typedef struct builder {
    st_entry e[64];
    void *data[64];
    int n;
} builder;

static void add(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    st_entry *e = &b->e[b->n];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ndim = ndim;
    e->shape[0] = d0, e->shape[1] = d1, e->shape[2] = d2;
    size_t n = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1) * (ndim > 2 ? (size_t)d2 : 1);
    float *f = malloc(n * sizeof(float));
    tensor_value(name, ndim, e->shape, f);
    if (ends_with(name, "A_log")) {
        e->dtype = "F32";
        e->data = f;
        e->nbytes = n * sizeof(float);
        b->data[b->n++] = f;
        return;
    }
    uint16_t *h = malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = tl_f32_to_bf16(f[i]);
    free(f);
    e->dtype = "BF16";
    e->data = h;
    e->nbytes = n * sizeof(uint16_t);
    b->data[b->n++] = h;
}

static int write_model(const char *dir, const size_spec *s) {
    builder b = {0};
    const int H = s->hidden, conv = 2 * HK * DKV + s->hv * DKV, vd = s->hv * DKV;
    add(&b, "model.embed_tokens.weight", 2, VOCAB, H, 0);
    add(&b, "model.norm.weight", 1, H, 0, 0);
    for (int l = 0; l < 2; l++) {
        char nm[160];
#define T(suffix, nd, a, bb, c)                                                                    \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);                                  \
        add(&b, nm, nd, a, bb, c);                                                                 \
    } while (0)
        T("input_layernorm.weight", 1, H, 0, 0);
        T("post_attention_layernorm.weight", 1, H, 0, 0);
        T("mlp.gate_proj.weight", 2, INTER, H, 0);
        T("mlp.up_proj.weight", 2, INTER, H, 0);
        T("mlp.down_proj.weight", 2, H, INTER, 0);
        if (l == 0) {
            T("linear_attn.in_proj_qkv.weight", 2, conv, H, 0);
            T("linear_attn.in_proj_z.weight", 2, vd, H, 0);
            T("linear_attn.in_proj_b.weight", 2, s->hv, H, 0);
            T("linear_attn.in_proj_a.weight", 2, s->hv, H, 0);
            T("linear_attn.conv1d.weight", 3, conv, 1, CONVK);
            T("linear_attn.dt_bias", 1, s->hv, 0, 0);
            T("linear_attn.A_log", 1, s->hv, 0, 0);
            T("linear_attn.norm.weight", 1, DKV, 0, 0);
            T("linear_attn.out_proj.weight", 2, H, vd, 0);
        } else {
            T("self_attn.q_proj.weight", 2, s->nh * HEAD * 2, H, 0);
            T("self_attn.k_proj.weight", 2, s->nkv * HEAD, H, 0);
            T("self_attn.v_proj.weight", 2, s->nkv * HEAD, H, 0);
            T("self_attn.o_proj.weight", 2, H, s->nh * HEAD, 0);
            T("self_attn.q_norm.weight", 1, HEAD, 0, 0);
            T("self_attn.k_norm.weight", 1, HEAD, 0, 0);
        }
#undef T
    }
    char p[4300], cfg[2048];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = st_write(p, b.e, b.n);
    for (int i = 0; i < b.n; i++) free(b.data[i]);
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"Qwen3_5ForCausalLM\"], \"model_type\": \"qwen3_5_text\", "
             "\"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
             "\"head_dim\": %d, \"linear_num_key_heads\": %d, \"linear_num_value_heads\": %d, "
             "\"linear_key_head_dim\": %d, \"linear_value_head_dim\": %d, "
             "\"linear_conv_kernel_dim\": %d, \"rms_norm_eps\": 1e-06, "
             "\"tie_word_embeddings\": true, \"max_position_embeddings\": 4096, "
             "\"layer_types\": [\"linear_attention\", \"full_attention\"], "
             "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000000.0, "
             "\"partial_rotary_factor\": 0.25}, \"dtype\": \"bfloat16\"}",
             VOCAB, s->hidden, INTER, s->nh, s->nkv, HEAD, HK, s->hv, DKV, DKV, CONVK);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (rc == 0) rc = write_text(p, cfg);
    return rc;
}

static void check_size(const size_spec *s, int exact) {
    char gname[32];
    size_t n = 0;
    snprintf(gname, sizeof gname, "logits_%s", s->name);
    float *ref = q35_golden("tests/data/qwen35/full_layers.txt", gname, &n);
    CHECK(ref && n == 3 * VOCAB);
    if (!ref) return;
    char dir[256];
    CHECK(make_tmpdir(dir, sizeof dir, "q35full") == 0);
    int rc = write_model(dir, s);
    CHECK(rc == 0);
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = dir, .exact = exact, .max_slots = 1, .ctx_len = 64, .threads = 2};
    if (rc == 0) rc = tl_engine_open(&e, &o, &err);
    CHECKF(rc == 0, "open %s: %s", s->name, err.msg);
    if (rc == 0) {
        /* the sizes the engine plans memory with (docs/models.md §1.4 and §1.5, one layer each) */
        const tl_model_info *in = tl_engine_info(e);
        int64_t conv = 2 * HK * DKV + (int64_t)s->hv * DKV;
        CHECK(in->n_full_attn_layers == 1);
        CHECK(in->state_bytes_per_slot == ((CONVK - 1) * conv + (int64_t)s->hv * DKV * DKV) * 4);
        CHECK(in->kv_bytes_per_token == 2LL * s->nkv * HEAD * 4);
        float lg[VOCAB];
        int slot = tl_slot_acquire(e, &err), done = 0;
        const int lens[3] = {5, 1, 1};
        double tol = exact ? 1e-4 : 1e-3;
        for (int step = 0; step < 3; step++) {
            tl_batch_seq q = {.slot = slot, .n_tokens = lens[step], .tokens = k_prompt + done,
                              .want_logits = 1};
            rc = tl_engine_forward(e, &q, 1, lg, &err);
            CHECKF(rc == 0, "forward: %s", err.msg);
            if (rc) break;
            done += lens[step];
            const float *want = ref + step * VOCAB;
            double re = q35_maxdiff(lg, want, VOCAB) / q35_maxabs(want, VOCAB);
            CHECKF(re <= tol, "Qwen3.5-%s shapes [%s] position %d: max|err| %.3g x max|logit|",
                   s->name, exact ? "ref" : "cpu", done - 1, re);
        }
        tl_engine_close(e);
    }
    rm_rf(dir);
    free(ref);
}

int main(void) {
    const size_spec sizes[] = {{"2b", 2048, 16, 8, 2}, {"4b", 2560, 32, 16, 4}};
    for (size_t i = 0; i < TL_ARRAY_LEN(sizes); i++) {
        check_size(&sizes[i], 1);
        check_size(&sizes[i], 0);
    }
    return test_done();
}
