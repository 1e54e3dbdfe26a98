/* generate.h — one sequence, from prompt ids to generated tokens: the loop that `tallow generate`,
 * `tallow chat` and `tallow bench` share.
 *
 * Contract of tl_generate:
 * - The slot already holds the first n_cached tokens of the prompt (the caller reused them: a
 *   truncated or restored slot); the loop prefills prompt[n_cached..n_prompt) in one forward
 *   (the engine chunks it) and needs n_cached < n_prompt so there is a last token to predict from.
 * - Then it samples until a stop id (counted as generated, as mlx-lm does; its text is not shown),
 *   a stop string completes on the decoded text (across token boundaries; the string is not
 *   shown), max_tokens are generated, or the slot's context is full (finish "length").
 * - When it returns, the slot holds prompt + every generated token but the last (which was never
 *   fed): tl_gen_result.slot_tokens says how many.
 * - Text is decoded with the streaming detokenizer (special tokens kept, so <think> is visible)
 *   and passed to on_text as it becomes final; on_text returning non-zero stops the loop
 *   (finish "abort").
 * - Timings follow mlx-lm (tallow/sample.h tl_gen_stats); peak memory is the counted peak of the
 *   process at the end (the caller may tl_mem_reset_peak before). */
#ifndef TL_GENERATE_H
#define TL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef enum {
    TL_FINISH_STOP = 0,    /* a stop id or a stop string */
    TL_FINISH_LENGTH = 1,  /* max_tokens or the context */
    TL_FINISH_ABORT = 2,   /* the callback asked to stop */
} tl_finish;

const char *tl_finish_name(tl_finish f); /* "stop", "length", "abort" */

typedef struct tl_gen_opts {
    const tl_sample_params *sample; /* used when sampler is NULL; NULL = greedy */
    tl_sampler *sampler;            /* optional: the caller's sampler (history kept by it) */
    int max_tokens;                 /* >= 0 */
    const int32_t *stop_ids;        /* NULL: the model's eos ids (tl_model_info) */
    int n_stop_ids;
    const char *const *stop_strs;
    int n_stop_strs;
    const tl_tokenizer *tok;        /* NULL: no text, ids only */
    int (*on_text)(void *ctx, const char *text, size_t len); /* non-zero = stop */
    void *cb_ctx;
} tl_gen_opts;

typedef struct tl_gen_result {
    int32_t *ids;           /* generated ids, stop id included (malloc'd) */
    int n_ids;
    char *text;             /* the text passed to on_text, concatenated (malloc'd, NUL-ended) */
    size_t text_len;
    tl_finish finish;
    int stop_string;        /* index of the stop string that ended it, -1 */
    int32_t stop_id;        /* the stop id that ended it, -1 */
    int slot_tokens;        /* tokens the slot holds now */
    tl_gen_stats stats;
} tl_gen_result;

int tl_generate(tl_engine *e, int slot, const int32_t *prompt, int n_prompt, int n_cached,
                const tl_gen_opts *opts, tl_gen_result *res, tl_err *err);
void tl_gen_result_free(tl_gen_result *r);

#endif
