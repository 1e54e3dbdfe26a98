/* metrics.h — the server's counters, gauges and histograms, written as Prometheus text.
 *
 * Thread-safe: every update takes the metrics mutex (updates are a few per token, far below the
 * cost of a forward pass). tl_metrics_render appends the exposition text to a malloc'd buffer. */
#ifndef TL_SERVER_METRICS_H
#define TL_SERVER_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define TL_HIST_MAX_BUCKETS 16

typedef struct tl_hist {
    int n;                               /* buckets (upper bounds, ascending; +Inf implied) */
    double le[TL_HIST_MAX_BUCKETS];
    uint64_t count[TL_HIST_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t total;
    double sum;
} tl_hist;

typedef enum {
    TL_EP_CHAT = 0,
    TL_EP_COMPLETION,
    TL_EP_TOKENIZE,
    TL_EP_DETOKENIZE,
    TL_EP_MODELS,
    TL_EP_HEALTH,
    TL_EP_METRICS,
    TL_EP_OTHER,
    TL_EP_COUNT
} tl_endpoint;

typedef struct tl_metrics {
    pthread_mutex_t mu;
    uint64_t requests[TL_EP_COUNT];
    uint64_t responses_by_class[6];      /* index status/100 */
    uint64_t rejected_queue_full, rejected_memory, cancelled;
    uint64_t prompt_tokens, cached_prompt_tokens, generation_tokens;
    uint64_t forward_passes, batch_rows_total;
    uint64_t prefix_hits, prefix_misses;
    int64_t prefix_bytes, prefix_entries;
    int queue_depth, running;
    int max_batch_seqs;                  /* most sequences seen in one forward pass */
    tl_hist ttft, tpot, batch_seqs, e2e;
} tl_metrics;

void tl_metrics_init(tl_metrics *m);
void tl_metrics_destroy(tl_metrics *m);
void tl_hist_add(tl_hist *h, double v);  /* caller holds m->mu */
/* Render everything (plus memory gauges from tl_mem_get) as Prometheus text; malloc'd. */
char *tl_metrics_render(tl_metrics *m, const char *model_name, size_t *len);

#endif
