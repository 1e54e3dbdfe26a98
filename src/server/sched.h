/* sched.h — continuous batching: one engine thread runs every live sequence through the model.
 *
 * Design. HTTP connection threads turn a request into a tl_seq (prompt tokens, sampling
 * parameters) and submit it; the engine thread owns the model. Each step of its loop:
 *   1. drops sequences whose client went away (their slot is released at once),
 *   2. admits queued sequences while a slot is free (FIFO),
 *   3. builds one batch: one row per decoding sequence, then prefill chunks of the sequences
 *      still reading their prompt, up to max_batch_rows (a long prompt is read over several
 *      steps, so it never stalls the others' decoding for more than one chunk),
 *   4. runs one forward pass and samples a token for every sequence that asked for logits,
 *   5. publishes tokens and text to each sequence and wakes its connection thread; finished
 *      sequences leave the batch without draining it.
 * Prefix cache: when a sequence's prefill reaches one of its snap_pos (the end of the system
 * prompt and history, the end of the conversation before the assistant header) and the end of
 * its prompt, the engine thread snapshots the slot (KV page references, Qwen3.5 state). A new
 * sequence restores the longest entry that is a prefix of its prompt (or, for models without
 * recurrent state, the longest common prefix after truncation) and prefills only the rest.
 * Entries are evicted least-recently-used past prefix_cache_bytes.
 * One mutex (sched->mu) guards the queue and everything a connection thread reads from a
 * sequence; the forward pass and sampling run without it. A sequence is freed when both the
 * engine thread and its connection have let go of it (refs). */
#ifndef TL_SERVER_SCHED_H
#define TL_SERVER_SCHED_H

#include <pthread.h>
#include <stdint.h>

#include "server/metrics.h"
#include "server/model.h"
#include "server/request.h"

typedef struct tl_sched tl_sched;

typedef struct tl_tok_event {
    int32_t id;
    float logprob;       /* log p(id) under the model's distribution (before sampling filters) */
    size_t text_end;     /* the sequence's text length after this token */
} tl_tok_event;

typedef enum {
    TL_SRV_FIN_NONE = 0,
    TL_SRV_FIN_STOP,      /* end-of-generation token or a stop string */
    TL_SRV_FIN_LENGTH,    /* max_tokens or the context */
    TL_SRV_FIN_ERROR,     /* the engine failed; err holds why */
    TL_SRV_FIN_CANCELLED,
} tl_srv_finish;

typedef struct tl_seq {
    /* set before submit, read-only after */
    tl_request *req;
    int32_t *prompt;         /* owned */
    int n_prompt;
    int max_new;             /* tokens to generate at most */
    int n_top;               /* top logprobs wanted per token */
    int snap_pos[4];         /* prompt positions worth a prefix-cache entry (ascending) */
    int n_snap;
    uint64_t t_arrive_ns;

    /* shared: under sched->mu */
    pthread_cond_t cv;       /* signalled when events, text or done change */
    tl_tok_event *events;
    int n_events, cap_events;
    int32_t *top_ids;        /* n_top per event */
    float *top_lps;
    char *text;              /* text emitted so far (stop strings removed, specials hidden) */
    size_t text_len, text_cap;
    int n_fed;               /* prompt tokens read so far (prefill progress) */
    int cached_tokens;       /* prompt tokens reused from the prefix cache */
    int done;
    tl_srv_finish finish;
    char err[512];
    int cancelled;
    int refs;

    /* engine thread only */
    int phase, slot;
    int n_gen;
    int32_t last_tok;
    void *sampler, *stop;
    unsigned char pend[8];
    int n_pend;
    uint64_t t_last_ns;
    struct tl_seq *next;     /* queue link */
} tl_seq;

typedef struct tl_sched_opts {
    int max_seqs;            /* sequences decoded together (<= model slots) */
    int max_queue;           /* waiting sequences before 429 */
    int prefill_chunk;       /* prompt tokens one sequence reads per step */
    int64_t mem_cap;         /* refuse new work past this many counted bytes (0 = no cap) */
    int64_t prefix_cache_bytes; /* prefix cache cap (0 = no prefix cache) */
} tl_sched_opts;

int tl_sched_new(tl_sched **out, tl_srv_model *m, const tl_sched_opts *o, tl_metrics *metrics,
                 tl_err *err);
/* Stop the engine thread: every queued or running sequence finishes with an error; submits
 * fail from then on. Releases still work. */
void tl_sched_stop(tl_sched *s);
void tl_sched_free(tl_sched *s);  /* stops, then frees (after every connection let go) */

/* Make a sequence for req with the given prompt (copied). The sequence owns req from here on
 * (also on failure); it is freed with the sequence. */
int tl_seq_new(tl_seq **out, tl_request *req, const int32_t *prompt, int n_prompt,
               int max_new, tl_err *err);
/* Hand the sequence to the engine thread. -TL_EBUSY: queue full (429); -TL_ENOMEM: the memory
 * cap would be passed (503); -TL_ERUNTIME: shutting down (503). On failure the caller still
 * owns seq. */
int tl_sched_submit(tl_sched *s, tl_seq *seq, tl_err *err);
/* The connection lets go: cancels the sequence if it is not done (its slot is freed on the
 * engine thread's next step) and frees it when the engine is done with it too. */
void tl_sched_release(tl_sched *s, tl_seq *seq);
/* Lock for reading seq's shared fields; wait up to timeout_ms for a change. */
void tl_sched_lock(tl_sched *s);
void tl_sched_unlock(tl_sched *s);
void tl_sched_wait(tl_sched *s, tl_seq *seq, int timeout_ms); /* with the lock held */
void tl_seq_free(tl_seq *seq); /* only for a sequence never submitted */

#endif
