/* test_tok_hostile.c — tokenizer.json is outside data: malformed, truncated or unsupported
 * files fail with a clear error that names what and where (never a crash), and huge inputs
 * give correct ids or a clear limit error in bounded time. */
#include "tallow.h"
#include "test.h"

#include "core/core.h"

/* A small valid byte-level BPE tokenizer.json: the 256 byte tokens, merges for "he", "ll",
 * "hell", "hello"; `extra` is spliced into the top-level object (to add or override parts). */
static char *make_json(const char *merges, const char *pre, const char *extra) {
    size_t cap = 1 << 16;
    char *s = malloc(cap);
    size_t k = 0;
    k += (size_t)snprintf(s + k, cap - k, "{\"version\":\"1.0\",%s\"model\":{\"type\":\"BPE\",\"vocab\":{",
                          extra ? extra : "");
    /* GPT-2 byte alphabet: printable bytes are themselves, the rest map to U+0100.. */
    int shifted = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = keep ? (unsigned)b : 256u + (unsigned)shifted++;
        char u[8];
        int ul;
        if (cp < 0x80) u[0] = (char)cp, ul = 1;
        else u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), ul = 2;
        if (cp == '"' || cp == '\\') k += (size_t)snprintf(s + k, cap - k, "\"\\%c\":%d,", (char)cp, b);
        else k += (size_t)snprintf(s + k, cap - k, "\"%.*s\":%d,", ul, u, b);
    }
    k += (size_t)snprintf(s + k, cap - k,
                          "\"he\":256,\"ll\":257,\"hell\":258,\"hello\":259},\"merges\":%s},"
                          "\"pre_tokenizer\":%s,\"decoder\":{\"type\":\"ByteLevel\"},"
                          "\"added_tokens\":[{\"id\":260,\"content\":\"<|x|>\",\"special\":true}]}",
                          merges ? merges : "[\"h e\",[\"l\",\"l\"],\"he ll\",\"hell o\"]",
                          pre ? pre : "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}");
    return s;
}

static int load_str(const char *json, tl_tokenizer **tok, tl_err *err) {
    return tl_tok_load_mem(json, strlen(json), NULL, 0, "test.json", tok, err);
}

/* Expect a failure with code and a message containing `needle`. */
static void expect_fail(const char *json, int code, const char *needle) {
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    int rc = load_str(json, &tok, &err);
    CHECKF(rc == -code && tok == NULL && strstr(err.msg, needle), "want code %d with '%s', got %d: %s",
           code, needle, rc, err.msg);
    tl_tok_free(tok);
}

/* expect_fail on make_json(merges, pre, extra). */
static void expect_fail_in(const char *merges, const char *pre, const char *extra, int code,
                           const char *needle) {
    char *j = make_json(merges, pre, extra);
    expect_fail(j, code, needle);
    free(j);
}

static void test_small_ok(void) {
    char *j = make_json(NULL, NULL, NULL);
    tl_tokenizer *tok;
    tl_err err = {0};
    int rc = load_str(j, &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        int32_t *ids;
        size_t n;
        CHECK(!tl_tok_encode(tok, "hello<|x|>hel", 13, 0, &ids, &n, &err));
        /* byte tokens have the byte's value as id */
        CHECK(n == 4 && ids[0] == 259 && ids[1] == 260 && ids[2] == 256 && ids[3] == 'l');
        free(ids);
        tl_tok_free(tok);
    }
    /* Every truncation of a valid file is an error, never a crash. */
    size_t len = strlen(j);
    int all_fail = 1;
    for (size_t cut = 0; cut < len; cut += 7) {
        tl_tokenizer *t2 = NULL;
        if (!tl_tok_load_mem(j, cut, NULL, 0, "cut.json", &t2, &err)) all_fail = 0;
        tl_tok_free(t2);
    }
    CHECK(all_fail);
    free(j);
}

static void test_malformed(void) {
    expect_fail("", TL_EFORMAT, "not valid JSON");
    expect_fail("[1,2]", TL_EFORMAT, "top level");
    expect_fail("{\"model\": 5, \"decoder\":{\"type\":\"ByteLevel\"}}", TL_EFORMAT, "model must be");
    char *j;
    expect_fail_in("[\"h e\",\"q zz\"]", NULL, NULL, TL_EFORMAT,
                   "model.merges[1]: token \"zz\" is not in model.vocab");
    expect_fail_in("[\"h e\",\"hello\"]", NULL, NULL, TL_EFORMAT, "model.merges[1]");
    expect_fail_in("[\"h e\", 7]", NULL, NULL, TL_EFORMAT, "model.merges[1]");
    expect_fail_in("[\"x y\"]", NULL, NULL, TL_EFORMAT, "merged token \"xy\""); /* not a token */
    expect_fail_in(
        NULL,
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|[a-\"},\"behavior\":\"Isolated\"}",
        NULL, TL_EFORMAT, "pre_tokenizer.pattern.Regex: invalid regex at offset");
    expect_fail_in(NULL,
                   "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                   "{\"Regex\":\"\\\\p{Nope}\"},\"behavior\":\"Isolated\"}]}",
                   NULL, TL_EFORMAT, "pre_tokenizer.pretokenizers[0].pattern.Regex");
    expect_fail_in(NULL,
                   "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}",
                   NULL, TL_EUNSUP, "behavior 'Sideways'");
    expect_fail_in(NULL,
                   "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Isolated\"}",
                   NULL, TL_EUNSUP, "the last step must be ByteLevel");
    expect_fail_in(NULL,
                   "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":"
                   "\"ByteLevel\"}]}",
                   NULL, TL_EUNSUP, "ByteLevel is supported only as the last step");
    expect_fail_in(NULL, "null", NULL, TL_EUNSUP, "the last step must be ByteLevel");
    expect_fail_in(NULL, "{\"type\":\"Whitespace\"}", NULL, TL_EUNSUP,
                   "pre_tokenizer: pre-tokenizer type 'Whitespace' is not supported");
    expect_fail_in(NULL, NULL,
                   "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
                   "{\"type\":\"Lowercase\"}]},",
                   TL_EUNSUP, "normalizer.normalizers[1]: normalizer type 'Lowercase'");
    expect_fail_in(NULL, NULL, "\"post_processor\":{\"type\":\"RobertaProcessing\"},", TL_EUNSUP,
                   "post_processor: post-processor type 'RobertaProcessing'");
    expect_fail_in(NULL, NULL,
                   "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
                   "{\"SpecialToken\":{\"id\":\"<s>\"}},{\"Sequence\":{\"id\":\"A\"}}],"
                   "\"special_tokens\":{}},",
                   TL_EFORMAT, "special token '<s>' has no ids");
    /* JSON objects keep the last duplicate key: an unsupported "decoder" spliced in before the
     * good one is overridden (the file loads), and one appended after it is what counts. */
    j = make_json(NULL, NULL, "\"decoder\":{\"type\":\"WordPiece\"},");
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    int rc = load_str(j, &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    tl_tok_free(tok);
    free(j);
    j = make_json(NULL, NULL, NULL);
    j = realloc(j, strlen(j) + 64);
    strcpy(j + strlen(j) - 1, ",\"decoder\":{\"type\":\"WordPiece\"}}");
    expect_fail(j, TL_EUNSUP, "decoder");
    free(j);
    /* Likewise a bad added_tokens before the good one: overridden, "<|x|>" is still 260. */
    j = make_json(NULL, NULL, "\"added_tokens\":[{\"id\":-1,\"content\":\"x\"}],");
    tok = NULL;
    rc = load_str(j, &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(!tl_tok_encode(tok, "<|x|>", 5, 0, &ids, &n, &err) && n == 1 && ids[0] == 260);
        free(ids);
    }
    tl_tok_free(tok);
    free(j);
    j = make_json(NULL, NULL, NULL);
    j = realloc(j, strlen(j) + 64);
    strcpy(j + strlen(j) - 1, ",\"added_tokens\":[{\"id\":-1,\"content\":\"x\"}]}");
    expect_fail(j, TL_EFORMAT, "added_tokens[0]");
    free(j);
    expect_fail("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}},\"decoder\":{\"type\":\"ByteLevel\"}}",
                TL_EUNSUP, "model.type 'WordPiece'");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]},\"decoder\":{\"type\":"
                "\"ByteLevel\"}}", TL_EFORMAT, "model.vocab[\"a\"]");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1,\"b\":1},\"merges\":[]},\"decoder\":"
                "{\"type\":\"ByteLevel\"}}", TL_EFORMAT, "used twice");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999},\"merges\":[]},\"decoder\":"
                "{\"type\":\"ByteLevel\"}}", TL_EFORMAT, "model.vocab[\"a\"]");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{},\"merges\":[]},"
                "\"decoder\":{\"type\":\"ByteLevel\"}}", TL_EUNSUP, "byte_fallback");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", TL_EUNSUP, "decoder");
    /* A bad tokenizer_config.json is named too. */
    j = make_json(NULL, NULL, NULL);
    rc = tl_tok_load_mem(j, strlen(j), "{\"chat_template\": 5}", 20, "t.json", &tok, &err);
    CHECK(rc == -TL_EFORMAT && strstr(err.msg, "chat_template"));
    const char *cfg = "{\"chat_template\": [{\"name\":\"default\",\"template\":\"A\"},"
                      "{\"name\":\"tool_use\",\"template\":\"B\"}], \"bos_token\": {\"content\": \"<|x|>\"}}";
    rc = tl_tok_load_mem(j, strlen(j), cfg, strlen(cfg), "t.json", &tok, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK_STREQ(tl_tok_chat_template(tok), "A");
        CHECK_STREQ(tl_tok_chat_template_named(tok, "tool_use"), "B");
        CHECK(tl_tok_bos_id(tok) == 260);
        tl_tok_free(tok);
    }
    free(j);
    CHECK(tl_tok_load("/nonexistent/tokenizer.json", &tok, &err) == -TL_EIO && tok == NULL);
    CHECK(tl_tok_load_dir("/nonexistent", &tok, &err) == -TL_ENOTFOUND);
}

static void test_truncated_real(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", dir);
    char *buf;
    size_t n;
    tl_err err = {0};
    if (tl_read_file(path, 64u << 20, &buf, &n, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    size_t cuts[] = {1, 1000, n / 3, n - 2};
    for (size_t i = 0; i < TL_ARRAY_LEN(cuts); i++) {
        tl_tokenizer *tok = NULL;
        int rc = tl_tok_load_mem(buf, cuts[i], NULL, 0, "qwen3 cut", &tok, &err);
        CHECKF(rc == -TL_EFORMAT && strstr(err.msg, "not valid JSON"), "cut %zu: %s", cuts[i], err.msg);
        tl_tok_free(tok);
    }
    free(buf);
}

static void test_huge(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/llama-3.2/tokenizer.json", dir);
    tl_tokenizer *tok;
    tl_err err = {0};
    if (tl_tok_load(path, &tok, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    /* 100 MB of a paragraph: its ids must repeat exactly (the block starts with a letter and
     * ends with a newline, so no pre-token crosses a block boundary). */
    static const char block[] =
        "Tallow tokenizes text the way Hugging Face does, 1234567 times; 中文 and emoji 👍🏽 too.\n";
    size_t bl = sizeof block - 1, reps = (100u << 20) / bl, n = bl * reps;
    char *big = malloc(n);
    for (size_t i = 0; i < reps; i++) memcpy(big + i * bl, block, bl);
    int32_t *one, *ids;
    size_t n1, ni;
    CHECK(!tl_tok_encode(tok, block, bl, 0, &one, &n1, &err));
    uint64_t t0 = tl_now_ns();
    int rc = tl_tok_encode(tok, big, n, 0, &ids, &ni, &err);
    double s = (double)(tl_now_ns() - t0) / 1e9;
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        int same = ni == n1 * reps;
        for (size_t i = 0; same && i < ni; i += 997) same = ids[i] == one[i % n1];
        CHECK(same);
        printf("100 MB encoded in %.2f s (%.1f MB/s), %zu ids\n", s, 100.0 / s, ni);
        CHECK(s < 120);
        free(ids);
    }
    free(one);
    /* One 2 MB word is past the per-piece limit: a clear error, not gigabytes of memory. */
    memset(big, 'a', 2u << 20);
    rc = tl_tok_encode(tok, big, 2u << 20, 0, &ids, &ni, &err);
    CHECKF(rc == -TL_ELIMIT && strstr(err.msg, "pre-token"), "%d %s", rc, err.msg);
    /* 1 MB of spaces and of mixed punctuation: correct lengths, no blow-up. */
    memset(big, ' ', 1u << 20);
    rc = tl_tok_encode(tok, big, 1u << 19, 0, &ids, &ni, &err);
    CHECK(rc == 0);
    if (!rc) {
        char *back;
        size_t bl2;
        CHECK(!tl_tok_decode(tok, ids, ni, 0, &back, &bl2, &err) && bl2 == (1u << 19));
        free(back);
        free(ids);
    }
    /* Invalid UTF-8 everywhere: every byte becomes U+FFFD, decode is valid UTF-8. */
    for (size_t i = 0; i < (1u << 16); i++) big[i] = (char)(0x80 + (i % 64));
    rc = tl_tok_encode(tok, big, 1u << 16, 0, &ids, &ni, &err);
    CHECK(rc == 0);
    if (!rc) {
        char *back;
        size_t bl2;
        CHECK(!tl_tok_decode(tok, ids, ni, 0, &back, &bl2, &err) && bl2 == 3u * (1u << 16));
        CHECK(!memcmp(back, "\xef\xbf\xbd\xef\xbf\xbd", 6));
        free(back);
        free(ids);
    }
    free(big);
    tl_tok_free(tok);
}

int main(void) {
    test_small_ok();
    test_malformed();
    const char *dir = test_shared_dir();
    if (dir) {
        test_truncated_real(dir);
        test_huge(dir);
    } else {
        printf("../shared/fixtures absent: real-tokenizer parts skipped\n");
    }
    return test_done();
}
