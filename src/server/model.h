/* model.h — what the server needs from a model, as one small table of functions.
 *
 * The scheduler and the HTTP layer talk only to this table: slots, one batched forward pass, and
 * the text side (prompt rendering, tokenizing, token bytes). Two implementations:
 *   - model_engine.c: the real one over tl_engine (engine.h), tl_tokenizer and the chat template;
 *   - mock.c: "@mock", a deterministic toy model (byte tokens, hashed logits, a scripted reply
 *     when the last user message holds [[say:TEXT]]) with a configurable cost per forward pass.
 *     It lets the serving layer (HTTP, batching, cancellation, load) be tested and benchmarked
 *     without weights; it is never picked implicitly.
 *
 * Threads: forward/slot_* are called only from the scheduler's engine thread; encode, render,
 * token_bytes, is_special and is_eog from any thread at the same time (they read only). */
#ifndef TL_SERVER_MODEL_H
#define TL_SERVER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "server/request.h"

typedef struct tl_srv_model tl_srv_model;
struct tl_srv_model {
    char name[256];          /* id in /v1/models and responses */
    int vocab_size;
    int ctx_len;             /* tokens per slot */
    int synthetic;           /* random weights written by `tallow synth` */
    int max_slots;
    int max_batch_rows;      /* rows one forward pass takes */
    int bos_id;              /* -1 if none */
    int has_snapshots;       /* slot_snapshot / restore work (prefix cache) */
    int can_truncate;        /* a slot can go back to any shorter length (no recurrent state) */
    void *ctx;

    int (*slot_acquire)(tl_srv_model *m, tl_err *err);
    void (*slot_release)(tl_srv_model *m, int slot);
    int (*forward)(tl_srv_model *m, const tl_batch_seq *seqs, int n, float *logits, tl_err *err);
    /* Optional prefix-cache support (NULL when absent). */
    /* *bytes: what keeping it costs (state copy + the KV pages it holds on to). */
    int (*slot_snapshot)(tl_srv_model *m, int slot, void **snap, size_t *bytes, tl_err *err);
    int (*slot_restore)(tl_srv_model *m, int slot, const void *snap, tl_err *err);
    int (*slot_truncate)(tl_srv_model *m, int slot, int n, tl_err *err);
    void (*snapshot_free)(tl_srv_model *m, void *snap);

    /* Chat request -> prompt text: the chat template over the first n_messages of r (-1 = all),
     * with or without the assistant header. *opens_think: the prompt ends inside an open
     * <think> block. */
    int (*render)(tl_srv_model *m, const tl_request *r, int n_messages, int add_generation_prompt,
                  char **prompt, int *opens_think, tl_err *err);
    /* add_special: the tokenizer's post-processor (BOS). *ids malloc'd. */
    int (*encode)(tl_srv_model *m, const char *text, size_t len, int add_special, int32_t **ids,
                  size_t *n, tl_err *err);
    const char *(*token_bytes)(tl_srv_model *m, int32_t id, size_t *len);
    int (*is_special)(tl_srv_model *m, int32_t id); /* not shown in text */
    int (*is_eog)(tl_srv_model *m, int32_t id);     /* ends generation */
    /* Bytes of memory one more sequence of n tokens will take (KV + state). */
    int64_t (*seq_bytes)(tl_srv_model *m, int n_tokens);
    /* Rows per forward pass seen so far (mock: for tests) - optional. */
    void (*close)(tl_srv_model *m);
};

typedef struct tl_mock_opts {
    int vocab_size;     /* >= 264; bytes 0..255, then specials */
    int ctx_len;
    int max_slots;
    int forward_us;     /* cost of one forward pass (microseconds), like reading the weights */
    int row_us;         /* added cost per row */
    int load_ms;        /* time "loading" takes (tests of /health while loading) */
} tl_mock_opts;

int tl_mock_open(tl_srv_model **out, const tl_mock_opts *o, tl_err *err);

/* The real model: engine + tokenizer + chat template from the model directory. */
typedef struct tl_srv_engine_opts {
    const char *model;
    int device;          /* tl_device */
    int threads;
    int max_slots;
    int ctx_len;
} tl_srv_engine_opts;
int tl_srv_engine_open(tl_srv_model **out, const tl_srv_engine_opts *o, tl_err *err);

#endif
