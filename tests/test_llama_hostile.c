/* test_llama_hostile.c — model directories that are wrong at the model level (the file format
 * itself is test_store's): a missing tensor, a misshapen one, a dense weight of the wrong dtype,
 * MLX quantization that is inconsistent (scales without biases, bits the config contradicts, an
 * unsupported group size), an unknown architecture, config values that do not fit. Each must fail
 * to open with a clear error naming the tensor / key and no crash; the engine stays usable. */
#include "test.h"
#include "test_llama_common.h"
#include "tallow.h"

#define SRC LLAMA_DATA "/llama-a/bf16"
#define SRCQ LLAMA_DATA "/llama-a/q4"

static char g_tmp[256];
static int g_case;

typedef struct edit {
    const char *drop;      /* tensor to leave out */
    const char *reshape;   /* tensor whose first dim is changed */
    const char *redtype;   /* tensor written with dtype I32 */
} edit;

static int filt(st_entry *e, void *ctx) {
    const edit *ed = ctx;
    if (ed->drop && !strcmp(e->name, ed->drop)) return 0;
    if (ed->reshape && !strcmp(e->name, ed->reshape)) {
        /* same bytes, other shape: [rows/2, cols*2] */
        e->shape[0] /= 2;
        e->shape[1] *= 2;
    }
    if (ed->redtype && !strcmp(e->name, ed->redtype)) e->dtype = "I32", e->shape[1] /= 2;
    return 1;
}

/* Make a variant dir of src with edits and optional config text replaced; open it; expect
 * failure with code and every needle in the message. */
static void expect_fail(const char *what, const char *src, edit ed, const char *cfg_from,
                        const char *cfg_to, int code, const char *n1, const char *n2) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/case%d", g_tmp, g_case++);
    mkdir(dir, 0755);
    CHECKF(copy_model(src, dir, 0, filt, &ed) == 0, "%s: making %s", what, dir);
    if (cfg_from) {
        char p[600], *txt = NULL;
        size_t len = 0;
        tl_err e0 = {0};
        snprintf(p, sizeof p, "%s/config.json", dir);
        CHECK(tl_read_file(p, 1 << 20, &txt, &len, &e0) == 0);
        char *at = txt ? strstr(txt, cfg_from) : NULL;
        CHECKF(at != NULL, "%s: config has no \"%s\"", what, cfg_from);
        if (at) {
            char *out = malloc(len + strlen(cfg_to) + 1);
            size_t pre = (size_t)(at - txt);
            memcpy(out, txt, pre);
            strcpy(out + pre, cfg_to);
            strcat(out, at + strlen(cfg_from));
            write_text(p, out);
            free(out);
        }
        free(txt);
    }
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = dir, .exact = 1, .ctx_len = 64};
    int rc = tl_engine_open(&e, &o, &err);
    CHECKF(rc == -code, "%s: got %d (%s), expected -%d", what, rc, err.msg, code);
    CHECKF(e == NULL, "%s: engine returned on failure", what);
    CHECKF(n1 == NULL || strstr(err.msg, n1), "%s: message lacks \"%s\": %s", what, n1, err.msg);
    CHECKF(n2 == NULL || strstr(err.msg, n2), "%s: message lacks \"%s\": %s", what, n2, err.msg);
    if (rc == 0) tl_engine_close(e);
    else printf("ok  %-34s %s\n", what, err.msg);
}

int main(void) {
    if (!tl_file_exists(SRC "/config.json")) return test_skip("tests/data/llama is missing");
    if (make_tmpdir(g_tmp, sizeof g_tmp, "hostile")) return test_skip("no temp dir");
    edit none = {0};
    tl_mem_stats m0, m1;
    tl_mem_get(&m0);

    expect_fail("missing tensor", SRC, (edit){.drop = "model.layers.1.mlp.up_proj.weight"}, NULL,
                NULL, TL_ENOTFOUND, "model.layers.1.mlp.up_proj.weight", "missing");
    expect_fail("missing final norm", SRC, (edit){.drop = "model.norm.weight"}, NULL, NULL,
                TL_ENOTFOUND, "model.norm.weight", NULL);
    expect_fail("misshapen q_proj", SRC,
                (edit){.reshape = "model.layers.0.self_attn.q_proj.weight"}, NULL, NULL,
                TL_EFORMAT, "model.layers.0.self_attn.q_proj.weight", "[32, 128]");
    expect_fail("misshapen embedding", SRC, (edit){.reshape = "model.embed_tokens.weight"}, NULL,
                NULL, TL_EFORMAT, "model.embed_tokens.weight", "expected [256, 64]");
    expect_fail("dense weight of dtype I32", SRC,
                (edit){.redtype = "model.layers.0.mlp.down_proj.weight"}, NULL, NULL, TL_EFORMAT,
                "model.layers.0.mlp.down_proj.weight", "I32");
    expect_fail("config: hidden_size disagrees", SRC, none, "\"hidden_size\": 64",
                "\"hidden_size\": 128", TL_EFORMAT, "model.embed_tokens.weight", "[256, 128]");
    expect_fail("config: more layers than tensors", SRC, none, "\"num_hidden_layers\": 2",
                "\"num_hidden_layers\": 3", TL_ENOTFOUND, "model.layers.2.", "missing");
    expect_fail("unknown architecture", SRC, none, "\"model_type\": \"llama\"",
                "\"model_type\": \"gpt2\"", TL_EUNSUP, "gpt2", "not supported");
    expect_fail("config: not JSON", SRC, none, "{", "{,", TL_EFORMAT, "config.json", NULL);
    expect_fail("attention bias asked for", SRC, none, "\"attention_bias\": false",
                "\"attention_bias\": true", TL_EUNSUP, "attention_bias", NULL);
    expect_fail("MLX: biases missing", SRCQ,
                (edit){.drop = "model.layers.0.self_attn.k_proj.biases"}, NULL, NULL, TL_EFORMAT,
                "model.layers.0.self_attn.k_proj", "biases");
    expect_fail("MLX: config bits contradict shapes", SRCQ, none, "\"bits\": 4", "\"bits\": 8",
                TL_EFORMAT, "bits 8", "bits 4");
    expect_fail("MLX: misshapen scales", SRCQ,
                (edit){.reshape = "model.layers.1.mlp.gate_proj.scales"}, NULL, NULL, TL_EFORMAT,
                "model.layers.1.mlp.gate_proj.scales", NULL);

    /* after all that, a good model still opens and runs */
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = SRC, .exact = 1, .ctx_len = 64};
    CHECKF(tl_engine_open(&e, &o, &err) == 0, "%s", err.msg);
    if (e) {
        int s = tl_slot_acquire(e, &err);
        int32_t t[3] = {1, 2, 3};
        float lg[256];
        tl_batch_seq b = {.slot = s, .n_tokens = 3, .tokens = t, .want_logits = 1};
        CHECK(tl_engine_forward(e, &b, 1, lg, &err) == 0);
        tl_engine_close(e);
    }
    tl_mem_get(&m1);
    CHECKF(m1.cur_total == m0.cur_total, "failed opens leaked counted memory: %lld -> %lld",
           (long long)m0.cur_total, (long long)m1.cur_total);
    rm_rf(g_tmp);
    return test_done();
}
