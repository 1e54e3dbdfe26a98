/* tok_json.h — fast strict reading of tokenizer.json's model.vocab and model.merges
 * (tok_json.c). Callbacks return 0 or a negative TL_E* code (with err filled) to stop. */
#ifndef TL_TOK_JSON_H
#define TL_TOK_JSON_H

#include "tokenizer/tok_internal.h"

typedef struct tok_json_buf {
    char *s;
    size_t cap;
} tok_json_buf;

/* Byte ranges [start, end) of model.vocab (range[0]) and model.merges (range[1]) in the text.
 * Returns 1 when both were found in a well-bracketed top-level object, else 0. */
int tok_json_find_model_parts(const char *s, size_t n, size_t range[2][2]);

typedef int (*tok_json_vocab_fn)(void *ctx, const char *key, size_t klen, long long id, tl_err *err);
typedef int (*tok_json_merge_fn)(void *ctx, const char *a, size_t la, const char *b, size_t lb,
                                 size_t index, tl_err *err);

int tok_json_vocab(const char *doc, size_t off, size_t end, tok_json_vocab_fn fn, void *ctx,
                   const char *what, tl_err *err);
int tok_json_merges(const char *doc, size_t off, size_t end, tok_json_merge_fn fn, void *ctx,
                    const char *what, tl_err *err);

#endif
