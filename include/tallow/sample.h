/* tallow/sample.h — logits -> next token, stop strings on decoded text, generation statistics.
 *
 * Sampler. One tl_sampler per sequence. The chain, in this order (transformers' order):
 *   logit bias -> penalties -> temperature -> top-k -> top-p -> min-p -> XTC -> draw
 * - logit bias: added to the logits of the given ids.
 * - presence / frequency penalty (OpenAI semantics): over the tokens *generated* so far, with no
 *   window: logit -= presence * (count > 0) + frequency * count.
 * - repetition penalty (transformers / CTRL): over the last repetition_context_size tokens of the
 *   whole context (prompt + generated; 0 = all of it), each distinct token once:
 *   logit < 0 ? logit * p : logit / p.
 * - temperature 0 (or top_k 1) = greedy: argmax after bias and penalties, no RNG draw.
 * - top-k keeps the tokens whose logit is >= the k-th largest (ties kept); top-p keeps the tokens
 *   whose ascending cumulative probability is > 1 - top_p; min-p keeps the tokens with
 *   probability >= min_p * max probability; each keeps at least min_keep tokens.
 * - The draw uses a per-sampler xoshiro256** generator seeded from (seed, stream) by splitmix64:
 *   the same seed and stream give the same tokens whatever else runs beside it (batches).
 *
 * Stop matcher. Stop strings are matched on decoded text across token boundaries: text that could
 * still be the start of a stop string is held back until it is known not to be; the stop string
 * itself is never emitted.
 *
 * Every call returns 0 or a negative TL_E* code and fills a tl_err. */
#ifndef TALLOW_SAMPLE_H
#define TALLOW_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tl_err;

typedef struct tl_logit_bias {
    int32_t id;
    float bias;
} tl_logit_bias;

typedef struct tl_sample_params {
    float temperature;            /* >= 0; 0 = greedy */
    int top_k;                    /* 0 = off */
    float top_p;                  /* (0, 1]; 1 = off */
    float min_p;                  /* [0, 1]; 0 = off */
    int min_keep;                 /* tokens top-p / min-p always keep; 0 means 1 */
    float presence_penalty;       /* [-2, 2] in OpenAI's API; 0 = off */
    float frequency_penalty;      /* 0 = off */
    float repetition_penalty;     /* > 0; 1 = off (0 is read as 1) */
    int repetition_context_size;  /* last N context tokens; 0 = the whole context */
    int n_bias;
    const tl_logit_bias *bias;    /* copied by tl_sampler_new */
    uint64_t seed;
    uint64_t stream;              /* e.g. the index inside a batch: distinct streams, same seed */
    /* XTC ("exclude top choices", mlx-lm's apply_xtc), last in the chain: with probability
     * xtc_probability, every token whose probability is > xtc_threshold except the least likely
     * of them is removed; xtc_protect ids (newline, eos) never are. 0 = off. */
    float xtc_probability;        /* [0, 1] */
    float xtc_threshold;          /* [0, 0.5] */
    int n_xtc_protect;
    const int32_t *xtc_protect;   /* copied by tl_sampler_new */
} tl_sample_params;

/* Parse a logit bias as users write it: a JSON object {"123": -5.0, ...} or 123:-5,77:2. Ids in
 * [0, INT32_MAX] (the vocabulary is checked by tl_sample_params_check), biases in [-100, 100].
 * *out is malloc'd (free()); errors name the entry or the byte offset. */
int tl_logit_bias_parse(const char *s, tl_logit_bias **out, int *n, struct tl_err *err);

/* The defaults of a plain run: temperature 0 (greedy), every filter off. */
void tl_sample_params_default(tl_sample_params *p);
/* Checks ranges (temp >= 0, top_p in (0,1], min_p in [0,1], top_k >= 0, rep. penalty > 0,
 * bias ids in [0, vocab)) and names the field that is wrong. vocab_size <= 0 skips the id check. */
int tl_sample_params_check(const tl_sample_params *p, int vocab_size, struct tl_err *err);

typedef struct tl_sampler tl_sampler;

int tl_sampler_new(tl_sampler **out, const tl_sample_params *p, int vocab_size,
                   struct tl_err *err);
void tl_sampler_free(tl_sampler *s);
/* Forget the history (prompt and generated tokens) and reseed. */
void tl_sampler_reset(tl_sampler *s);
/* Record context tokens: prompt tokens (generated = 0) feed only the repetition penalty;
 * generated tokens (generated = 1) feed all penalties. */
int tl_sampler_accept(tl_sampler *s, const int32_t *ids, int n, int generated, struct tl_err *err);
/* Pick the next token from logits[vocab_size]; logits is used as scratch and changed. Does not
 * record the token: call tl_sampler_accept(s, &tok, 1, 1, err) when it is kept. */
int32_t tl_sampler_sample(tl_sampler *s, float *logits);
/* The distribution the draw would use: probs[vocab_size] (0 for filtered tokens; greedy gives a
 * one-hot). logits is changed. Returns the number of tokens kept. For tests and logprobs. */
int tl_sampler_probs(tl_sampler *s, float *logits, float *probs);

/* ---- stop strings ------------------------------------------------------------------------- */
typedef struct tl_stop tl_stop;

int tl_stop_new(tl_stop **out, const char *const *strs, int n, struct tl_err *err);
void tl_stop_free(tl_stop *s);
void tl_stop_reset(tl_stop *s);
/* Feed decoded text. *emit / *emit_len receive the text that may be shown now (valid until the
 * next call). Returns 1 when a stop string completed (emit holds the text before it; anything
 * after it is dropped and later feeds emit nothing), 0 otherwise, < 0 on error. */
int tl_stop_feed(tl_stop *s, const char *text, size_t len, const char **emit, size_t *emit_len,
                 struct tl_err *err);
/* At the end of generation: the text still held back (empty after a match). */
void tl_stop_flush(tl_stop *s, const char **emit, size_t *emit_len);
/* Index of the stop string that matched, or -1. */
int tl_stop_matched(const tl_stop *s);

/* ---- generation statistics ---------------------------------------------------------------- */
/* Timing semantics are mlx-lm's (stream_generate): prompt tps = prefilled tokens / (start .. first
 * token sampled), i.e. the prefill including the first decode step; generation tps = generated
 * tokens / (first token .. last token), as mlx-lm computes it; the eos token counts as
 * generated. */
typedef struct tl_gen_stats {
    int prompt_tokens;        /* tokens of the prompt */
    int prefill_tokens;       /* of those, fed through the model this time */
    int reused_tokens;        /* of those, found in the cache (prompt_tokens - prefill_tokens) */
    int generation_tokens;
    double prompt_tps;
    double generation_tps;
    double ttft_ms;           /* start .. first token sampled */
    double total_ms;
    int64_t peak_memory_bytes;
    uint64_t t_start_ns, t_first_ns, t_last_ns; /* raw clock readings */
} tl_gen_stats;

/* Fill the derived fields (tps, ttft, total) from the raw readings and the counts. */
void tl_gen_stats_finish(tl_gen_stats *st);
/* mlx-lm's lines, exactly:
 *   Prompt: N tokens, X.XXX tokens-per-sec
 *   Generation: N tokens, Y.YYY tokens-per-sec
 *   Peak memory: Z.ZZZ GB            (decimal GB)
 * followed by "Time to first token: T.TTT s" (ours). */
void tl_gen_stats_print(const tl_gen_stats *st, FILE *f);
/* Only mlx-lm's three lines, each preceded by prefix (e.g. "[model] "). */
void tl_gen_stats_print_mlx(const tl_gen_stats *st, FILE *f, const char *prefix);

/* ---- reasoning apart from the answer, on streamed text ------------------------------------
 * Splits streamed text at <think> / </think> (tags may arrive cut between pieces) and passes
 * each part to out with is_reasoning set; the tags themselves and the newlines right after a
 * tag are dropped. start_in_think: the prompt opened the block (tl_chat_prompt_opens_think). */
typedef struct tl_think_split {
    int in_think;
    int after_tag;          /* drop newlines that directly follow a tag */
    char hold[16];          /* a tag cut between pieces */
    int n_hold;
    void (*out)(void *ctx, int is_reasoning, const char *text, size_t len);
    void *ctx;
} tl_think_split;

void tl_think_split_init(tl_think_split *s, int start_in_think,
                         void (*out)(void *, int, const char *, size_t), void *ctx);
void tl_think_split_feed(tl_think_split *s, const char *text, size_t len);
void tl_think_split_flush(tl_think_split *s);

#ifdef __cplusplus
}
#endif
#endif
