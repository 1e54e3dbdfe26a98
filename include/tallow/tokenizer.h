/* tallow/tokenizer.h — Hugging Face tokenizer.json (byte-level BPE) in C: text <-> token ids.
 *
 * Contract: tl_tok_encode gives the same ids as the Hugging Face `tokenizers` library for the
 * same tokenizer.json (added tokens split out first, normalizer, pre-tokenizer regexes, BPE
 * merges by rank, post-processor template). Input that is not valid UTF-8 is first made valid
 * the way Python's bytes.decode("utf-8", errors="replace") does (each maximal invalid
 * subsequence becomes U+FFFD), because HF only ever sees valid text. tl_tok_decode maps ids to
 * bytes and makes them valid UTF-8 the same way (String::from_utf8_lossy in HF).
 *
 * A loaded tl_tokenizer is read-only and may be used from several threads at once; the BPE
 * cache inside it is taken with a try-lock and skipped when another thread holds it.
 * Unsupported components (a normalizer, pre-tokenizer, model option, ...) fail the load with
 * TL_EUNSUP and a message naming the component and its JSON path. */
#ifndef TALLOW_TOKENIZER_H
#define TALLOW_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tl_err;
typedef struct tl_tokenizer tl_tokenizer;

/* Load tokenizer.json at json_path. tokenizer_config.json and chat_template.jinja in the same
 * directory are read when present (bos/eos/pad, add_bos_token, chat templates). */
int tl_tok_load(const char *json_path, tl_tokenizer **out, struct tl_err *err);
/* Load from a directory holding tokenizer.json (and optionally the two files above). */
int tl_tok_load_dir(const char *dir, tl_tokenizer **out, struct tl_err *err);
/* Load from memory. config_json may be NULL. `what` names the source in error messages. */
int tl_tok_load_mem(const char *json, size_t json_len, const char *config_json,
                    size_t config_len, const char *what, tl_tokenizer **out, struct tl_err *err);
void tl_tok_free(tl_tokenizer *tok);

/* Flags for tl_tok_encode. */
enum {
    TL_TOK_ADD_SPECIAL = 1, /* apply the post-processor template (Llama 3: <|begin_of_text|>) */
};

/* Encode len bytes of text. *ids is malloc'd (caller frees with free()), *n_ids its length.
 * Inputs over 1 GiB, and a single pre-token (one regex match, e.g. a run of letters) over
 * 1 MiB, fail with TL_ELIMIT rather than take unbounded memory; HF would encode them. */
int tl_tok_encode(const tl_tokenizer *tok, const char *text, size_t len, unsigned flags,
                  int32_t **ids, size_t *n_ids, struct tl_err *err);

/* Decode ids into a malloc'd NUL-terminated UTF-8 string (*len excludes the NUL; may be NULL).
 * skip_special drops added tokens marked special. Ids the vocabulary does not have (padding
 * rows of an embedding matrix, negative ids) are skipped, as Hugging Face does. */
int tl_tok_decode(const tl_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                  char **text, size_t *len, struct tl_err *err);

/* Streaming detokenizer: feed one id at a time; each call appends to out only complete,
 * valid UTF-8 and holds back a character cut between tokens. The concatenation of all outputs
 * plus tl_tok_stream_flush equals tl_tok_decode of the whole id list. */
typedef struct tl_tok_stream {
    const tl_tokenizer *tok;
    int skip_special;
    uint8_t pending[4];
    int n_pending;
} tl_tok_stream;
void tl_tok_stream_init(tl_tok_stream *s, const tl_tokenizer *tok, int skip_special);
/* Writes the new text to out (NUL-terminated) and its byte count to *n. cap must be at least
 * tl_tok_stream_cap(tok); a smaller buffer fails with TL_EINVAL and nothing is consumed. */
size_t tl_tok_stream_cap(const tl_tokenizer *tok);
int tl_tok_stream_feed(tl_tok_stream *s, int32_t id, char *out, size_t cap, size_t *n,
                       struct tl_err *err);
/* End of stream: a held-back incomplete character is written as U+FFFD. */
int tl_tok_stream_flush(tl_tok_stream *s, char *out, size_t cap, size_t *n);

/* ---- vocabulary facts ---- */
int tl_tok_vocab_size(const tl_tokenizer *tok);     /* 1 + the largest id */
/* Raw bytes of one token (not NUL-terminated); NULL for an unknown id. */
const char *tl_tok_token_bytes(const tl_tokenizer *tok, int32_t id, size_t *len);
/* Id of a token by its text: an added token's content, or a vocabulary token's raw bytes.
 * Returns -1 when there is none. */
int32_t tl_tok_token_id(const tl_tokenizer *tok, const char *text, size_t len);
int tl_tok_is_special(const tl_tokenizer *tok, int32_t id);

/* ---- tokenizer_config.json ---- */
/* Token strings and ids (NULL / -1 when not set). */
const char *tl_tok_bos(const tl_tokenizer *tok);
const char *tl_tok_eos(const tl_tokenizer *tok);
const char *tl_tok_pad(const tl_tokenizer *tok);
int32_t tl_tok_bos_id(const tl_tokenizer *tok);
int32_t tl_tok_eos_id(const tl_tokenizer *tok);
int32_t tl_tok_pad_id(const tl_tokenizer *tok);
int tl_tok_add_bos(const tl_tokenizer *tok); /* add_bos_token: 1, 0, or -1 when absent */
/* The chat template: chat_template.jinja beside the file when present, else the config's
 * chat_template string, else the entry named "default" of a list. NULL when there is none. */
const char *tl_tok_chat_template(const tl_tokenizer *tok);
/* A named template from a list form ("tool_use", ...); NULL when absent. */
const char *tl_tok_chat_template_named(const tl_tokenizer *tok, const char *name);

#ifdef __cplusplus
}
#endif
#endif
