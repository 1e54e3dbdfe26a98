/* fuzz_tokenizer.c — libFuzzer target for the tokenizer.
 *
 * First byte even: the rest is text for the real Llama 3.2 tokenizer (../shared/fixtures, or
 * $TALLOW_FUZZ_TOKENIZER; a small built-in tokenizer when absent). encode -> decode must not
 * crash, must give valid UTF-8, must give back the input exactly when it is valid UTF-8 (no
 * normalizer), and the streaming detokenizer fed one id at a time must give the same text.
 * First byte odd: the rest is a tokenizer.json to load (hostile file); when it loads, a short
 * fixed text is encoded and decoded with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tallow.h"
#include "../tests/utf8_valid.h"

static tl_tokenizer *g_tok;

static const char SMALL[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"Ġ\":3,\"c\":4},"
    "\"merges\":[\"a b\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true},"
    "\"decoder\":{\"type\":\"ByteLevel\"},\"added_tokens\":[{\"id\":5,\"content\":\"<x>\","
    "\"special\":true,\"lstrip\":true,\"rstrip\":true},{\"id\":6,\"content\":\"yy\","
    "\"single_word\":true,\"normalized\":true}],\"normalizer\":{\"type\":\"NFC\"}}";

static void roundtrip(const tl_tokenizer *tok, const char *s, size_t n, int exact) {
    int32_t *ids;
    size_t nid;
    tl_err err = {0};
    if (tl_tok_encode(tok, s, n, TL_TOK_ADD_SPECIAL, &ids, &nid, &err)) return;
    char *text;
    size_t tl;
    int skip = n && (s[0] & 1);
    if (tl_tok_decode(tok, ids, nid, skip, &text, &tl, &err)) abort();
    if (!utf8_valid(text, tl)) abort();
    if (exact && !skip && utf8_valid(s, n)) {
        /* Llama 3.2's post-processor adds <|begin_of_text|> in front. */
        const char *bos = "<|begin_of_text|>";
        size_t bl = strlen(bos);
        if (tl != n + bl || memcmp(text, bos, bl) || memcmp(text + bl, s, n)) abort();
    }
    size_t cap = tl_tok_stream_cap(tok), pl, al = 0;
    char *piece = malloc(cap), *acc = malloc(tl + 1);
    tl_tok_stream st;
    tl_tok_stream_init(&st, tok, skip);
    for (size_t i = 0; i < nid; i++) {
        if (tl_tok_stream_feed(&st, ids[i], piece, cap, &pl, &err)) abort();
        if (!utf8_valid(piece, pl) || al + pl > tl) abort();
        memcpy(acc + al, piece, pl);
        al += pl;
    }
    if (tl_tok_stream_flush(&st, piece, cap, &pl) || al + pl != tl) abort();
    memcpy(acc + al, piece, pl);
    if (memcmp(acc, text, tl)) abort();
    free(piece);
    free(acc);
    free(text);
    free(ids);
}

static int g_real;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    tl_err err = {0};
    const char *path = getenv("TALLOW_FUZZ_TOKENIZER");
    if (!path) path = "../shared/fixtures/tokenizers/llama-3.2/tokenizer.json";
    if (!tl_tok_load(path, &g_tok, &err)) g_real = 1;
    else if (tl_tok_load_mem(SMALL, sizeof SMALL - 1, NULL, 0, "small", &g_tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }
    fprintf(stderr, "fuzz_tokenizer: using %s tokenizer\n", g_real ? path : "the built-in small");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (!(data[0] & 1)) {
        roundtrip(g_tok, s, n, g_real);
        return 0;
    }
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    if (!tl_tok_load_mem(s, n, NULL, 0, "fuzz", &tok, &err)) {
        static const char text[] = "Hello <x> world yy  'S 123 \xe4\xb8\xad \xff";
        roundtrip(tok, text, sizeof text - 1, 0);
        tl_tok_free(tok);
    } else if (err.code == 0 || !err.msg[0]) {
        abort(); /* a failure must say why */
    }
    return 0;
}
