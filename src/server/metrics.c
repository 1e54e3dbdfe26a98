/* metrics.c — Prometheus text exposition of the server's metrics (see metrics.h). */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void hist_init(tl_hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, (size_t)n * sizeof *le);
}

void tl_metrics_init(tl_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double tpot[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    static const double bs[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    static const double e2e[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    hist_init(&m->ttft, ttft, (int)TL_ARRAY_LEN(ttft));
    hist_init(&m->tpot, tpot, (int)TL_ARRAY_LEN(tpot));
    hist_init(&m->batch_seqs, bs, (int)TL_ARRAY_LEN(bs));
    hist_init(&m->e2e, e2e, (int)TL_ARRAY_LEN(e2e));
}

void tl_metrics_destroy(tl_metrics *m) { pthread_mutex_destroy(&m->mu); }

void tl_hist_add(tl_hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    if (i < h->n) h->count[i]++;
    h->total++;
    h->sum += v;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void put_hist(sbuf *b, const char *name, const char *help, const tl_hist *h) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
              (unsigned long long)h->total, name, h->sum, name, (unsigned long long)h->total);
}

static void put_counter(sbuf *b, const char *name, const char *help, uint64_t v) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
              (unsigned long long)v);
}
static void put_gauge(sbuf *b, const char *name, const char *help, int64_t v) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, (long long)v);
}

char *tl_metrics_render(tl_metrics *m, const char *model_name, size_t *len) {
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p) return NULL;
    b.p[0] = 0;
    static const char *ep[TL_EP_COUNT] = {"chat_completions", "completions", "tokenize",
                                          "detokenize",       "models",      "health",
                                          "metrics",          "other"};
    pthread_mutex_lock(&m->mu);
    sb_printf(&b, "# HELP tallow_info Model served.\n# TYPE tallow_info gauge\n"
                  "tallow_info{model=\"%s\"} 1\n", model_name);
    sb_printf(&b, "# HELP tallow_requests_total HTTP requests by endpoint.\n"
                  "# TYPE tallow_requests_total counter\n");
    for (int i = 0; i < TL_EP_COUNT; i++)
        sb_printf(&b, "tallow_requests_total{endpoint=\"%s\"} %llu\n", ep[i],
                  (unsigned long long)m->requests[i]);
    sb_printf(&b, "# HELP tallow_responses_total HTTP responses by status class.\n"
                  "# TYPE tallow_responses_total counter\n");
    for (int i = 2; i < 6; i++)
        sb_printf(&b, "tallow_responses_total{code=\"%dxx\"} %llu\n", i,
                  (unsigned long long)m->responses_by_class[i]);
    const struct { const char *name, *help; uint64_t v; } counters[] = {
        {"tallow_rejected_queue_full_total", "Requests refused with 429 (queue full).",
         m->rejected_queue_full},
        {"tallow_rejected_memory_total", "Requests refused by the memory cap.", m->rejected_memory},
        {"tallow_cancelled_total", "Sequences cancelled by a client disconnect.", m->cancelled},
        {"tallow_prompt_tokens_total", "Prompt tokens of admitted requests.", m->prompt_tokens},
        {"tallow_prompt_cached_tokens_total", "Prompt tokens reused from the prefix cache.",
         m->cached_prompt_tokens},
        {"tallow_generation_tokens_total", "Tokens generated.", m->generation_tokens},
        {"tallow_forward_passes_total", "Forward passes (batches) run.", m->forward_passes},
        {"tallow_batch_rows_total", "Rows (tokens) over all forward passes.", m->batch_rows_total},
        {"tallow_prefix_cache_hits_total", "Requests that reused a cached prefix.", m->prefix_hits},
        {"tallow_prefix_cache_misses_total", "Requests with no cached prefix.", m->prefix_misses},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(counters); i++)
        put_counter(&b, counters[i].name, counters[i].help, counters[i].v);
    const struct { const char *name, *help; int64_t v; } gauges[] = {
        {"tallow_prefix_cache_bytes", "Bytes held by the prefix cache.", m->prefix_bytes},
        {"tallow_prefix_cache_entries", "Entries in the prefix cache.", m->prefix_entries},
        {"tallow_queue_depth", "Requests waiting for a slot.", m->queue_depth},
        {"tallow_running_sequences", "Sequences being prefilled or decoded.", m->running},
        {"tallow_max_batch_sequences", "Most sequences in one forward pass so far.",
         m->max_batch_seqs},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(gauges); i++)
        put_gauge(&b, gauges[i].name, gauges[i].help, gauges[i].v);
    put_hist(&b, "tallow_time_to_first_token_seconds", "Request arrival to first token.", &m->ttft);
    put_hist(&b, "tallow_time_per_output_token_seconds", "Time between output tokens.", &m->tpot);
    put_hist(&b, "tallow_batch_sequences", "Sequences per forward pass.", &m->batch_seqs);
    put_hist(&b, "tallow_request_duration_seconds", "Request arrival to last token.", &m->e2e);
    pthread_mutex_unlock(&m->mu);
    tl_mem_stats st;
    tl_mem_get(&st);
    sb_printf(&b, "# HELP tallow_memory_bytes Counted memory by kind.\n"
                  "# TYPE tallow_memory_bytes gauge\n");
    for (int k = 0; k < TL_MEM_KINDS; k++)
        sb_printf(&b, "tallow_memory_bytes{kind=\"%s\"} %lld\n", tl_mem_kind_name((tl_mem_kind)k),
                  (long long)st.cur[k]);
    sb_printf(&b, "tallow_memory_bytes{kind=\"total\"} %lld\n", (long long)st.cur_total);
    put_gauge(&b, "tallow_memory_peak_bytes", "Peak counted memory.", st.peak_total);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
