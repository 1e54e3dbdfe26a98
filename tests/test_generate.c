/* test_generate.c — the library generation loop on a tiny Llama (tests/data/llama/llama-a) with
 * the 256-id test tokenizer (tests/data/sample/tok256): greedy runs repeat, seeded runs repeat
 * and differ by seed, stop strings cut across token boundaries, stop ids end and count, the
 * context limit ends with "length", a reused prefix gives the same tokens as a fresh prefill,
 * and the statistics count what happened. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/core.h"
#include "engine/generate.h"
#include "test.h"

static char g_dir[64];
static const char *k_links[][2] = {
    {"tests/data/llama/llama-a/bf16/config.json", "config.json"},
    {"tests/data/llama/llama-a/bf16/model.safetensors", "model.safetensors"},
    {"tests/data/sample/tok256/tokenizer.json", "tokenizer.json"},
    {"tests/data/sample/tok256/tokenizer_config.json", "tokenizer_config.json"},
};

static int make_model_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/tallow-gen-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    for (size_t i = 0; i < TL_ARRAY_LEN(k_links); i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        if (!realpath(k_links[i][0], src)) return -1;
        snprintf(dst, sizeof dst, "%s/%s", g_dir, k_links[i][1]);
        if (symlink(src, dst)) return -1;
    }
    return 0;
}

static void remove_model_dir(void) {
    for (size_t i = 0; i < TL_ARRAY_LEN(k_links); i++) {
        char dst[PATH_MAX];
        snprintf(dst, sizeof dst, "%s/%s", g_dir, k_links[i][1]);
        unlink(dst);
    }
    rmdir(g_dir);
}

static tl_engine *g_e;
static tl_tokenizer *g_tok;

/* Run a generation in a fresh slot. */
static int run(const int32_t *prompt, int n, const tl_gen_opts *o, tl_gen_result *r) {
    tl_err err = {0};
    int slot = tl_slot_acquire(g_e, &err);
    if (slot < 0) return -1;
    int rc = tl_generate(g_e, slot, prompt, n, 0, o, r, &err);
    if (rc) fprintf(stderr, "generate: %s\n", err.msg);
    tl_slot_release(g_e, slot);
    return rc;
}

static char *piece(int32_t id) {
    char *t = NULL;
    tl_err err;
    if (tl_tok_decode(g_tok, &id, 1, 0, &t, NULL, &err)) return strdup("");
    return t;
}

int main(void) {
    if (!tl_file_exists("tests/data/llama/llama-a/bf16/model.safetensors") ||
        !tl_file_exists("tests/data/sample/tok256/tokenizer.json"))
        return test_skip("tiny model or test tokenizer missing");
    if (make_model_dir()) return test_skip("cannot make a temporary model directory");
    tl_err err = {0};
    tl_engine_opts eo = {0};
    eo.model = g_dir;
    eo.device = TL_DEVICE_CPU;
    eo.threads = 1;
    eo.max_slots = 2;
    eo.ctx_len = 128;
    int rc = tl_engine_open(&g_e, &eo, &err);
    CHECKF(rc == 0, "engine: %s", err.msg);
    rc = rc ? rc : tl_tok_load_dir(g_dir, &g_tok, &err);
    CHECKF(rc == 0, "tokenizer: %s", err.msg);
    if (rc) {
        remove_model_dir();
        return test_done();
    }
    int32_t *prompt;
    size_t np;
    const char *ptext = "Hello world, tell me a story.";
    CHECK(tl_tok_encode(g_tok, ptext, strlen(ptext), 0, &prompt, &np, &err) == 0);
    int n = (int)np;
    int32_t no_stop = -1; /* an id that never comes: no eos in these runs */

    /* greedy, twice: the same ids; statistics count them */
    tl_gen_opts o = {0};
    o.max_tokens = 24;
    o.stop_ids = &no_stop;
    o.n_stop_ids = 1;
    o.tok = g_tok;
    tl_gen_result a, b;
    CHECK(run(prompt, n, &o, &a) == 0);
    CHECK(run(prompt, n, &o, &b) == 0);
    CHECK(a.n_ids == 24 && b.n_ids == 24);
    CHECK(!memcmp(a.ids, b.ids, 24 * sizeof(int32_t)));
    CHECK(a.finish == TL_FINISH_LENGTH && a.stop_id == -1 && a.stop_string == -1);
    CHECK(a.stats.prompt_tokens == n && a.stats.prefill_tokens == n);
    CHECK(a.stats.generation_tokens == 24);
    CHECK(a.slot_tokens == n + 23);
    CHECK(a.stats.t_first_ns >= a.stats.t_start_ns && a.stats.t_last_ns >= a.stats.t_first_ns);
    CHECK(a.stats.peak_memory_bytes > 0);
    /* the streamed text is the decoding of the ids */
    char *whole = NULL;
    CHECK(tl_tok_decode(g_tok, a.ids, 24, 0, &whole, NULL, &err) == 0);
    CHECK_STREQ(a.text, whole);
    tl_gen_result_free(&b);

    /* seeded sampling: same seed same ids, another seed other ids */
    tl_sample_params sp;
    tl_sample_params_default(&sp);
    sp.temperature = 1.0f;
    sp.seed = 1234;
    o.sample = &sp;
    tl_gen_result s1, s2, s3;
    CHECK(run(prompt, n, &o, &s1) == 0);
    CHECK(run(prompt, n, &o, &s2) == 0);
    sp.seed = 99;
    CHECK(run(prompt, n, &o, &s3) == 0);
    CHECK(!memcmp(s1.ids, s2.ids, 24 * sizeof(int32_t)));
    CHECK(memcmp(s1.ids, s3.ids, 24 * sizeof(int32_t)) != 0);
    tl_gen_result_free(&s1), tl_gen_result_free(&s2), tl_gen_result_free(&s3);
    o.sample = NULL;

    /* a stop string made of the end of one token's text and the start of the next */
    char *pieces[24];
    for (int i = 0; i < 24; i++) pieces[i] = piece(a.ids[i]);
    int k = -1;
    char stop[64] = {0};
    size_t off = 0;
    for (int i = 0; i + 1 < 24 && k < 0; i++) {
        size_t l0 = strlen(pieces[i]), l1 = strlen(pieces[i + 1]);
        if (l0 >= 1 && l1 >= 1 && l0 + l1 < sizeof stop) {
            snprintf(stop, sizeof stop, "%s%s", pieces[i] + (l0 > 2 ? l0 - 2 : 0), pieces[i + 1]);
            const char *first = strstr(whole, stop);
            if (first && (size_t)(first - whole) == off + l0 - (l0 > 2 ? 2 : l0)) k = i;
        }
        off += l0;
    }
    CHECKF(k >= 0, "no token boundary usable for a stop string in '%s'", whole);
    if (getenv("TL_TEST_VERBOSE")) printf("text: %s\nstop at token %d: \"%s\"\n", whole, k, stop);
    if (k >= 0) {
        const char *stops[] = {"never appears", stop};
        o.stop_strs = stops;
        o.n_stop_strs = 2;
        tl_gen_result c;
        CHECK(run(prompt, n, &o, &c) == 0);
        CHECK(c.finish == TL_FINISH_STOP && c.stop_string == 1);
        CHECKF(c.n_ids == k + 2, "stopped after %d tokens, expected %d", c.n_ids, k + 2);
        size_t cut = (size_t)(strstr(whole, stop) - whole);
        CHECKF(c.text_len == cut && !strncmp(c.text, whole, cut), "text '%s' stop '%s'", c.text,
               stop);
        CHECK(c.stats.generation_tokens == k + 2);
        tl_gen_result_free(&c);
        o.stop_strs = NULL;
        o.n_stop_strs = 0;
    }

    /* a stop id: ends there, counts as generated, its text is not shown */
    int at = 6;
    while (at < 23) {
        int seen = 0;
        for (int i = 0; i < at; i++) seen |= a.ids[i] == a.ids[at];
        if (!seen) break;
        at++;
    }
    int32_t eos = a.ids[at];
    o.stop_ids = &eos;
    tl_gen_result d;
    CHECK(run(prompt, n, &o, &d) == 0);
    CHECK(d.finish == TL_FINISH_STOP && d.stop_id == eos);
    CHECK(d.n_ids == at + 1 && d.stats.generation_tokens == at + 1);
    char *before = NULL;
    CHECK(tl_tok_decode(g_tok, a.ids, (size_t)at, 0, &before, NULL, &err) == 0);
    CHECK_STREQ(d.text, before);
    free(before);
    tl_gen_result_free(&d);
    o.stop_ids = &no_stop;

    /* reuse: the slot keeps the first 5 prompt tokens, the loop prefills the rest; the tokens
     * are those of a fresh run */
    int slot = tl_slot_acquire(g_e, &err);
    tl_batch_seq seq = {slot, n, prompt, 0};
    CHECK(tl_engine_forward(g_e, &seq, 1, NULL, &err) == 0);
    CHECK(tl_slot_truncate(g_e, slot, 5, &err) == 0);
    tl_gen_result e;
    CHECK(tl_generate(g_e, slot, prompt, n, 5, &o, &e, &err) == 0);
    CHECK(e.stats.prefill_tokens == n - 5 && e.stats.reused_tokens == 5);
    CHECK(e.n_ids == 24 && !memcmp(e.ids, a.ids, 24 * sizeof(int32_t)));
    tl_gen_result_free(&e);
    /* contract errors: nothing to prefill, or a slot that does not hold what is claimed */
    CHECK(tl_generate(g_e, slot, prompt, n, n, &o, &e, &err) == -TL_EINVAL);
    CHECK(tl_generate(g_e, slot, prompt, n, 3, &o, &e, &err) == -TL_EINVAL);
    tl_slot_release(g_e, slot);

    /* the context fills: finish "length" before max_tokens */
    o.max_tokens = 1000;
    tl_gen_result f;
    CHECK(run(prompt, n, &o, &f) == 0);
    CHECK(f.finish == TL_FINISH_LENGTH);
    CHECKF(f.slot_tokens == 128 && f.n_ids == 128 - n + 1, "slot %d ids %d", f.slot_tokens,
           f.n_ids);
    tl_gen_result_free(&f);

    for (int i = 0; i < 24; i++) free(pieces[i]);
    free(whole);
    tl_gen_result_free(&a);
    free(prompt);
    tl_tok_free(g_tok);
    tl_engine_close(g_e);
    remove_model_dir();
    return test_done();
}
