/* sched.c — the engine thread and its continuous-batching loop (design in sched.h). */
#define _GNU_SOURCE
#include "server/sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tallow/sample.h"

enum { PH_QUEUED = 0, PH_PREFILL, PH_DECODE };

#define PC_MAX_ENTRIES 256

typedef struct pc_entry {
    int32_t *toks;
    int n;
    void *snap;
    int64_t bytes;
    uint64_t used; /* LRU clock */
} pc_entry;

struct tl_sched {
    tl_srv_model *m;
    tl_sched_opts o;
    tl_metrics *metrics;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work;      /* engine thread waits here for new work or cancellations */
    int stopping;
    tl_seq *q_head, *q_tail;  /* waiting sequences */
    int q_len;
    int64_t reserved;         /* bytes promised to queued and running sequences */
    tl_seq **running;         /* engine thread only */
    int n_running;
    /* engine thread scratch */
    tl_batch_seq *batch;
    tl_seq **batch_seq;
    float *logits, *scratch;
    size_t logits_bytes;
    uint64_t seed_counter;
    /* prefix cache: engine thread only */
    pc_entry pc[PC_MAX_ENTRIES];
    int pc_n;
    int64_t pc_bytes;
    uint64_t pc_clock;
};

/* ---- prefix cache (engine thread) ---- */

static void pc_publish(tl_sched *s) {
    pthread_mutex_lock(&s->metrics->mu);
    s->metrics->prefix_bytes = s->pc_bytes;
    s->metrics->prefix_entries = s->pc_n;
    pthread_mutex_unlock(&s->metrics->mu);
}

static void pc_drop(tl_sched *s, int i) {
    s->m->snapshot_free(s->m, s->pc[i].snap);
    free(s->pc[i].toks);
    s->pc_bytes -= s->pc[i].bytes;
    s->pc[i] = s->pc[--s->pc_n];
}

/* Snapshot q's slot (it holds q->prompt[0..n)) into the cache, evicting LRU entries. */
static void pc_insert(tl_sched *s, tl_seq *q, int n) {
    if (!s->m->has_snapshots || s->o.prefix_cache_bytes <= 0 || n <= 0) return;
    for (int i = 0; i < s->pc_n; i++)
        if (s->pc[i].n == n && !memcmp(s->pc[i].toks, q->prompt, (size_t)n * sizeof *q->prompt)) {
            s->pc[i].used = ++s->pc_clock;
            return;
        }
    tl_err err;
    void *snap = NULL;
    size_t bytes = 0;
    if (s->m->slot_snapshot(s->m, q->slot, &snap, &bytes, &err) < 0) return;
    if ((int64_t)bytes > s->o.prefix_cache_bytes) {
        s->m->snapshot_free(s->m, snap);
        return;
    }
    while (s->pc_n && (s->pc_n == PC_MAX_ENTRIES || s->pc_bytes + (int64_t)bytes >
                                                         s->o.prefix_cache_bytes)) {
        int lru = 0;
        for (int i = 1; i < s->pc_n; i++)
            if (s->pc[i].used < s->pc[lru].used) lru = i;
        pc_drop(s, lru);
    }
    int32_t *toks = malloc((size_t)n * sizeof *toks);
    if (!toks) {
        s->m->snapshot_free(s->m, snap);
        return;
    }
    memcpy(toks, q->prompt, (size_t)n * sizeof *toks);
    s->pc[s->pc_n++] = (pc_entry){toks, n, snap, (int64_t)bytes, ++s->pc_clock};
    s->pc_bytes += (int64_t)bytes;
    pc_publish(s);
}

/* Restore the best cached prefix into q's fresh slot; returns the tokens reused. */
static int pc_lookup(tl_sched *s, tl_seq *q) {
    if (!s->m->has_snapshots || s->o.prefix_cache_bytes <= 0 || s->pc_n == 0) return 0;
    int best = -1, best_len = 0;
    for (int i = 0; i < s->pc_n; i++) {
        pc_entry *e = &s->pc[i];
        int lim = TL_MIN(e->n, q->n_prompt - 1), l = 0;
        while (l < lim && e->toks[l] == q->prompt[l]) l++;
        if (l < e->n && !s->m->can_truncate) continue; /* state cannot go back */
        if (l > best_len) best = i, best_len = l;
    }
    if (best < 0) return 0;
    tl_err err;
    pc_entry *e = &s->pc[best];
    if (s->m->slot_restore(s->m, q->slot, e->snap, &err) < 0) return 0;
    if (best_len < e->n && s->m->slot_truncate(s->m, q->slot, best_len, &err) < 0) {
        s->m->slot_truncate(s->m, q->slot, 0, &err);
        return 0;
    }
    e->used = ++s->pc_clock;
    return best_len;
}

static void pc_clear(tl_sched *s) {
    while (s->pc_n) pc_drop(s, s->pc_n - 1);
}

/* ---- sequences ---- */

int tl_seq_new(tl_seq **out, tl_request *req, const int32_t *prompt, int n_prompt,
               int max_new, tl_err *err) {
    tl_seq *q = calloc(1, sizeof *q);
    if (!q) return tl_err_set(err, TL_ENOMEM, "no memory for a sequence");
    q->req = req;
    q->n_prompt = n_prompt;
    q->max_new = max_new;
    q->n_top = req && req->logprobs ? req->top_logprobs : 0;
    q->prompt = malloc((size_t)(n_prompt ? n_prompt : 1) * sizeof *q->prompt);
    q->slot = -1;
    if (!q->prompt) {
        free(q);
        tl_request_free(req);
        return tl_err_set(err, TL_ENOMEM, "no memory for a prompt of %d tokens", n_prompt);
    }
    memcpy(q->prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->t_arrive_ns = tl_now_ns();
    *out = q;
    return 0;
}

void tl_seq_free(tl_seq *q) {
    if (!q) return;
    tl_sampler_free(q->sampler);
    tl_stop_free(q->stop);
    pthread_cond_destroy(&q->cv);
    tl_request_free(q->req);
    free(q->prompt);
    free(q->events);
    free(q->top_ids);
    free(q->top_lps);
    free(q->text);
    free(q);
}

/* With s->mu held. q->text stays NULL until there is text; on failure it is unchanged. */
static int text_append(tl_seq *q, const char *p, size_t n) {
    if (!n) return 0;
    tl_strbuf b = {q->text, q->text_len, q->text_cap};
    int rc = tl_strbuf_add(&b, p, n);
    q->text = b.p;
    q->text_len = b.n;
    q->text_cap = b.cap;
    return rc;
}

static int event_append(tl_seq *q, int32_t id, float lp, const int32_t *tid, const float *tlp) {
    if (q->n_events == q->cap_events) {
        int nc = q->cap_events ? q->cap_events * 2 : 64;
        tl_tok_event *e = realloc(q->events, (size_t)nc * sizeof *e);
        if (!e) return -TL_ENOMEM;
        q->events = e;
        if (q->n_top) {
            int32_t *ti = realloc(q->top_ids, (size_t)nc * q->n_top * sizeof *ti);
            if (ti) q->top_ids = ti;
            float *tf = realloc(q->top_lps, (size_t)nc * q->n_top * sizeof *tf);
            if (tf) q->top_lps = tf;
            if (!ti || !tf) return -TL_ENOMEM;
        }
        q->cap_events = nc;
    }
    tl_tok_event *e = &q->events[q->n_events];
    e->id = id;
    e->logprob = lp;
    e->text_end = q->text_len;
    if (q->n_top) {
        memcpy(q->top_ids + (size_t)q->n_events * q->n_top, tid, (size_t)q->n_top * sizeof *tid);
        memcpy(q->top_lps + (size_t)q->n_events * q->n_top, tlp, (size_t)q->n_top * sizeof *tlp);
    }
    q->n_events++;
    return 0;
}

static void seq_finish(tl_sched *s, tl_seq *q, tl_srv_finish why, const char *msg);

/* ---- public entry points (connection threads) ---- */

void tl_sched_lock(tl_sched *s) { pthread_mutex_lock(&s->mu); }
void tl_sched_unlock(tl_sched *s) { pthread_mutex_unlock(&s->mu); }

void tl_sched_wait(tl_sched *s, tl_seq *q, int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cv, &s->mu, &ts);
}

int tl_sched_submit(tl_sched *s, tl_seq *q, tl_err *err) {
    int64_t need = s->m->seq_bytes ? s->m->seq_bytes(s->m, q->n_prompt + q->max_new) : 0;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return tl_err_set(err, TL_ERUNTIME, "the server is shutting down");
    }
    if (s->q_len >= s->o.max_queue) {
        int n = s->q_len;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->metrics->mu);
        s->metrics->rejected_queue_full++;
        pthread_mutex_unlock(&s->metrics->mu);
        return tl_err_set(err, TL_EBUSY,
                          "server busy: %d requests are already waiting (--max-queue); retry later",
                          n);
    }
    if (s->o.mem_cap > 0) {
        tl_mem_stats st;
        tl_mem_get(&st);
        if (st.cur_total + s->reserved + need > s->o.mem_cap) {
            pthread_mutex_unlock(&s->mu);
            pthread_mutex_lock(&s->metrics->mu);
            s->metrics->rejected_memory++;
            pthread_mutex_unlock(&s->metrics->mu);
            return tl_err_set(err, TL_ENOMEM,
                              "server memory cap reached: %lld bytes in use + %lld reserved + %lld "
                              "for this request > --mem-cap %lld; retry later",
                              (long long)st.cur_total, (long long)s->reserved, (long long)need,
                              (long long)s->o.mem_cap);
        }
    }
    s->reserved += need;
    q->refs = 2;
    q->phase = PH_QUEUED;
    q->next = NULL;
    if (s->q_tail) s->q_tail->next = q;
    else s->q_head = q;
    s->q_tail = q;
    s->q_len++;
    pthread_mutex_lock(&s->metrics->mu);
    s->metrics->queue_depth = s->q_len;
    pthread_mutex_unlock(&s->metrics->mu);
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void tl_sched_release(tl_sched *s, tl_seq *q) {
    if (!q) return;
    pthread_mutex_lock(&s->mu);
    if (!q->done && q->phase == PH_QUEUED) {
        /* still waiting: leave the queue now, so it holds no place another request could use */
        tl_seq **pp = &s->q_head, *prev = NULL;
        while (*pp && *pp != q) prev = *pp, pp = &(*pp)->next;
        if (*pp) {
            *pp = q->next;
            if (s->q_tail == q) s->q_tail = prev;
            s->q_len--;
            q->cancelled = 1;
            seq_finish(s, q, TL_SRV_FIN_CANCELLED, "cancelled while queued");
        }
    }
    if (!q->done) {
        q->cancelled = 1;
        pthread_cond_signal(&s->work);
    }
    int left = --q->refs;
    pthread_mutex_unlock(&s->mu);
    if (left == 0) tl_seq_free(q);
}

/* ---- engine thread ---- */

/* With s->mu held: the sequence is finished; wake its reader and drop the engine's reference. */
static void seq_finish(tl_sched *s, tl_seq *q, tl_srv_finish why, const char *msg) {
    if (q->slot >= 0) {
        s->m->slot_release(s->m, q->slot);
        q->slot = -1;
    }
    q->finish = why;
    if (msg) snprintf(q->err, sizeof q->err, "%s", msg);
    q->done = 1;
    int64_t need = s->m->seq_bytes ? s->m->seq_bytes(s->m, q->n_prompt + q->max_new) : 0;
    s->reserved -= need;
    pthread_mutex_lock(&s->metrics->mu);
    if (why == TL_SRV_FIN_CANCELLED) s->metrics->cancelled++;
    if (why == TL_SRV_FIN_STOP || why == TL_SRV_FIN_LENGTH)
        tl_hist_add(&s->metrics->e2e, (double)(tl_now_ns() - q->t_arrive_ns) / 1e9);
    pthread_mutex_unlock(&s->metrics->mu);
    pthread_cond_broadcast(&q->cv);
    if (--q->refs == 0) tl_seq_free(q);
}

static int seq_start(tl_sched *s, tl_seq *q, tl_err *err) {
    const tl_request *r = q->req;
    tl_sample_params p;
    tl_sample_params_default(&p);
    p.temperature = (float)r->temperature;
    p.top_k = r->top_k;
    p.top_p = (float)r->top_p;
    p.min_p = (float)r->min_p;
    p.presence_penalty = (float)r->presence_penalty;
    p.frequency_penalty = (float)r->frequency_penalty;
    p.repetition_penalty = (float)r->repetition_penalty;
    p.n_bias = r->n_bias;
    p.bias = r->bias;
    p.seed = r->has_seed ? r->seed : (tl_now_ns() ^ (++s->seed_counter * 0x9e3779b97f4a7c15ull));
    p.stream = 0;
    int rc = tl_sampler_new((tl_sampler **)&q->sampler, &p, s->m->vocab_size, err);
    if (rc < 0) return rc;
    rc = tl_sampler_accept(q->sampler, q->prompt, q->n_prompt, 0, err);
    if (rc < 0) return rc;
    if (r->n_stop > 0) {
        rc = tl_stop_new((tl_stop **)&q->stop, (const char *const *)r->stop, r->n_stop, err);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Bytes of complete UTF-8 characters at the start of p[0..n): holds back a cut character. */
static size_t utf8_complete(const unsigned char *p, size_t n) {
    size_t i = n;
    for (size_t back = 0; back < 4 && i > 0; back++) {
        unsigned char c = p[i - 1];
        if ((c & 0xC0) == 0x80) {
            i--;
            continue;
        }
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        size_t have = n - (i - 1);
        return have >= need ? n : i - 1;
    }
    return n; /* only continuation bytes: invalid anyway, let it through */
}

/* Log-softmax facts of raw logits: returns log-sum-exp. */
static float logsumexp(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(x[i] - mx));
    return mx + (float)log(sum);
}

static void top_n(const float *x, int n, int k, int32_t *ids, float *vals) {
    for (int j = 0; j < k; j++) {
        ids[j] = -1;
        vals[j] = -INFINITY;
    }
    for (int i = 0; i < n; i++) {
        if (x[i] <= vals[k - 1]) continue;
        int j = k - 1;
        while (j > 0 && x[i] > vals[j - 1]) {
            vals[j] = vals[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        vals[j] = x[i];
        ids[j] = i;
    }
}

/* Sample one token for q from logits, publish it. Returns 1 when q finished. s->mu NOT held. */
static int seq_step(tl_sched *s, tl_seq *q, float *logits, tl_err *err) {
    int V = s->m->vocab_size;
    float lp = 0;
    int32_t tid[TL_REQ_MAX_TOP_LOGPROBS];
    float tlp[TL_REQ_MAX_TOP_LOGPROBS];
    float lse = 0;
    if (q->req->logprobs) {
        memcpy(s->scratch, logits, (size_t)V * sizeof *logits);
        lse = logsumexp(s->scratch, V);
        if (q->n_top) {
            top_n(s->scratch, V, q->n_top, tid, tlp);
            for (int j = 0; j < q->n_top; j++) tlp[j] -= lse;
        }
    }
    int32_t tok = tl_sampler_sample(q->sampler, logits);
    if (q->req->logprobs) lp = s->scratch[tok] - lse;
    tl_err e2;
    tl_sampler_accept(q->sampler, &tok, 1, 1, &e2);
    q->n_gen++;
    q->last_tok = tok;
    uint64_t now = tl_now_ns();
    tl_srv_finish fin = TL_SRV_FIN_NONE;
    const char *emit = NULL;
    size_t emit_len = 0;
    int eog = s->m->is_eog(s->m, tok);
    if (eog) {
        fin = TL_SRV_FIN_STOP;
    } else if (!s->m->is_special(s->m, tok)) {
        size_t bl = 0;
        const char *b = s->m->token_bytes(s->m, tok, &bl);
        /* join with held-back bytes of a cut character */
        char tmp[512];
        const char *src = b;
        size_t n = bl;
        char *heap = NULL;
        if (q->n_pend) {
            size_t tot = q->n_pend + bl;
            char *dst = tot <= sizeof tmp ? tmp : (heap = malloc(tot));
            if (!dst) {
                q->finish = TL_SRV_FIN_ERROR;
                snprintf(q->err, sizeof q->err, "no memory for token text");
                return 1;
            }
            memcpy(dst, q->pend, (size_t)q->n_pend);
            memcpy(dst + q->n_pend, b, bl);
            src = dst;
            n = tot;
        }
        size_t ok = utf8_complete((const unsigned char *)src, n);
        size_t rest = n - ok;
        if (rest > sizeof q->pend) rest = 0, ok = n;
        unsigned char newpend[8];
        memcpy(newpend, src + ok, rest);
        if (q->stop) {
            int m = tl_stop_feed(q->stop, src, ok, &emit, &emit_len, err);
            if (m == 1) fin = TL_SRV_FIN_STOP, rest = 0;
        } else {
            /* emit points into src: copy it before src goes away */
            emit = src;
            emit_len = ok;
        }
        memcpy(q->pend, newpend, rest);
        q->n_pend = (int)rest;
        pthread_mutex_lock(&s->mu);
        text_append(q, emit, emit_len);
        pthread_mutex_unlock(&s->mu);
        emit_len = 0;
        free(heap);
    }
    if (fin == TL_SRV_FIN_NONE && q->n_gen >= q->max_new) fin = TL_SRV_FIN_LENGTH;
    if (fin == TL_SRV_FIN_NONE && q->n_prompt + q->n_gen >= s->m->ctx_len) fin = TL_SRV_FIN_LENGTH;
    pthread_mutex_lock(&s->mu);
    if (fin != TL_SRV_FIN_NONE && !(fin == TL_SRV_FIN_STOP && !eog)) {
        /* flush what the stop matcher and the UTF-8 joiner still hold */
        if (q->stop) {
            tl_stop_flush(q->stop, &emit, &emit_len);
            text_append(q, emit, emit_len);
        }
        if (q->n_pend) {
            text_append(q, "\xEF\xBF\xBD", 3); /* U+FFFD for the cut character */
            q->n_pend = 0;
        }
    }
    event_append(q, tok, lp, tid, tlp);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&s->mu);

    pthread_mutex_lock(&s->metrics->mu);
    s->metrics->generation_tokens++;
    if (q->n_gen == 1) tl_hist_add(&s->metrics->ttft, (double)(now - q->t_arrive_ns) / 1e9);
    else tl_hist_add(&s->metrics->tpot, (double)(now - q->t_last_ns) / 1e9);
    pthread_mutex_unlock(&s->metrics->mu);
    q->t_last_ns = now;
    if (fin != TL_SRV_FIN_NONE) {
        pthread_mutex_lock(&s->mu);
        q->finish = fin;
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    return 0;
}

static void remove_running(tl_sched *s, int i) {
    memmove(&s->running[i], &s->running[i + 1], (size_t)(s->n_running - i - 1) * sizeof *s->running);
    s->n_running--;
}

/* With s->mu held: take q out of the running set, then finish it. */
static void finish_running(tl_sched *s, tl_seq *q, tl_srv_finish why, const char *msg) {
    for (int j = 0; j < s->n_running; j++)
        if (s->running[j] == q) {
            remove_running(s, j);
            break;
        }
    seq_finish(s, q, why, msg);
}

static void *engine_main(void *arg) {
    tl_sched *s = arg;
    tl_srv_model *m = s->m;
    tl_err err;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* 1. drop cancelled sequences: their slots are free for the next admission */
        for (int i = 0; i < s->n_running;) {
            tl_seq *q = s->running[i];
            if (q->cancelled) {
                remove_running(s, i);
                seq_finish(s, q, TL_SRV_FIN_CANCELLED, "cancelled: the client went away");
            } else {
                i++;
            }
        }
        if (s->stopping) break;
        /* 2. admit */
        while (s->q_head && s->n_running < s->o.max_seqs) {
            tl_seq *q = s->q_head;
            if (q->cancelled) {
                s->q_head = q->next;
                if (!s->q_head) s->q_tail = NULL;
                s->q_len--;
                seq_finish(s, q, TL_SRV_FIN_CANCELLED, "cancelled while queued");
                continue;
            }
            int slot = m->slot_acquire(m, &err);
            if (slot < 0) break;
            s->q_head = q->next;
            if (!s->q_head) s->q_tail = NULL;
            s->q_len--;
            q->slot = slot;
            pthread_mutex_unlock(&s->mu);
            int rc = seq_start(s, q, &err);
            pthread_mutex_lock(&s->mu);
            if (rc < 0) {
                seq_finish(s, q, TL_SRV_FIN_ERROR, err.msg);
                continue;
            }
            q->phase = PH_PREFILL;
            s->running[s->n_running++] = q;
            pthread_mutex_unlock(&s->mu);
            int reused = pc_lookup(s, q);
            pthread_mutex_lock(&s->mu);
            q->n_fed = reused;
            q->cached_tokens = reused;
            pthread_mutex_lock(&s->metrics->mu);
            s->metrics->prompt_tokens += (uint64_t)q->n_prompt;
            s->metrics->cached_prompt_tokens += (uint64_t)reused;
            if (s->m->has_snapshots && s->o.prefix_cache_bytes > 0) {
                if (reused) s->metrics->prefix_hits++;
                else s->metrics->prefix_misses++;
            }
            pthread_mutex_unlock(&s->metrics->mu);
        }
        pthread_mutex_lock(&s->metrics->mu);
        s->metrics->queue_depth = s->q_len;
        s->metrics->running = s->n_running;
        pthread_mutex_unlock(&s->metrics->mu);
        if (s->n_running == 0) {
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        /* 3. build the batch: decode rows first, then prefill chunks */
        int nb = 0, rows = 0, budget = m->max_batch_rows;
        for (int i = 0; i < s->n_running; i++) {
            tl_seq *q = s->running[i];
            if (q->phase != PH_DECODE) continue;
            s->batch[nb] = (tl_batch_seq){q->slot, 1, &q->last_tok, 1};
            s->batch_seq[nb++] = q;
            rows++;
        }
        budget -= rows;
        for (int i = 0; i < s->n_running && budget > 0; i++) {
            tl_seq *q = s->running[i];
            if (q->phase != PH_PREFILL) continue;
            int left = q->n_prompt - q->n_fed;
            int chunk = TL_MIN(left, TL_MIN(budget, s->o.prefill_chunk));
            for (int k = 0; k < q->n_snap; k++) /* end the chunk at a cache boundary */
                if (q->snap_pos[k] > q->n_fed && q->snap_pos[k] < q->n_fed + chunk) {
                    chunk = q->snap_pos[k] - q->n_fed;
                    break;
                }
            if (chunk <= 0) continue;
            s->batch[nb] = (tl_batch_seq){q->slot, chunk, q->prompt + q->n_fed, chunk == left};
            s->batch_seq[nb++] = q;
            rows += chunk;
            budget -= chunk;
        }
        pthread_mutex_unlock(&s->mu);

        /* 4. one forward pass over every row */
        int rc = nb ? m->forward(m, s->batch, nb, s->logits, &err) : 0;
        if (rc < 0 && s->pc_n > 0) {
            /* the pages or memory the pass needs may be held by cached prefixes: give them back
             * and try once more (a failed pass changes nothing in the engine) */
            pc_clear(s);
            pc_publish(s);
            rc = m->forward(m, s->batch, nb, s->logits, &err);
        }
        pthread_mutex_lock(&s->metrics->mu);
        s->metrics->forward_passes++;
        s->metrics->batch_rows_total += (uint64_t)rows;
        tl_hist_add(&s->metrics->batch_seqs, nb);
        if (nb > s->metrics->max_batch_seqs) s->metrics->max_batch_seqs = nb;
        pthread_mutex_unlock(&s->metrics->mu);
        int finished[1024];
        int n_fin = 0;
        if (rc < 0) {
            pthread_mutex_lock(&s->mu);
            for (int i = 0; i < nb; i++)
                finish_running(s, s->batch_seq[i], TL_SRV_FIN_ERROR, err.msg);
            continue;
        }
        /* 5. sample and publish */
        for (int i = 0; i < nb; i++) {
            tl_seq *q = s->batch_seq[i];
            const tl_batch_seq *b = &s->batch[i];
            if (q->phase == PH_PREFILL) {
                pthread_mutex_lock(&s->mu);
                q->n_fed += b->n_tokens;
                pthread_mutex_unlock(&s->mu);
                /* the prompt's end is worth keeping only where a later prompt can cut it back
                 * to a common prefix (no recurrent state); otherwise only the boundaries are */
                int at_boundary = b->want_logits && s->m->can_truncate;
                for (int k = 0; k < q->n_snap; k++) at_boundary |= q->snap_pos[k] == q->n_fed;
                if (at_boundary) pc_insert(s, q, q->n_fed);
                if (!b->want_logits) continue;
                q->phase = PH_DECODE;
            }
            int done = seq_step(s, q, s->logits + (size_t)i * m->vocab_size, &err);
            if (done && n_fin < (int)TL_ARRAY_LEN(finished)) finished[n_fin++] = i;
        }
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < n_fin; k++) {
            tl_seq *q = s->batch_seq[finished[k]];
            finish_running(s, q, q->finish, NULL);
        }
    }
    /* shutting down: finish everything */
    while (s->n_running) {
        tl_seq *q = s->running[--s->n_running];
        seq_finish(s, q, TL_SRV_FIN_ERROR, "the server is shutting down");
    }
    while (s->q_head) {
        tl_seq *q = s->q_head;
        s->q_head = q->next;
        s->q_len--;
        seq_finish(s, q, TL_SRV_FIN_ERROR, "the server is shutting down");
    }
    s->q_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int tl_sched_new(tl_sched **out, tl_srv_model *m, const tl_sched_opts *o, tl_metrics *metrics,
                 tl_err *err) {
    *out = NULL;
    tl_sched *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ENOMEM, "no memory for the scheduler");
    s->m = m;
    s->o = *o;
    if (s->o.max_seqs <= 0 || s->o.max_seqs > m->max_slots) s->o.max_seqs = m->max_slots;
    if (s->o.max_seqs > 1024) s->o.max_seqs = 1024;
    if (s->o.max_queue < 0) s->o.max_queue = 0;
    if (s->o.prefill_chunk <= 0) s->o.prefill_chunk = 256;
    s->metrics = metrics;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    size_t n = (size_t)s->o.max_seqs;
    s->running = calloc(n, sizeof *s->running);
    s->batch = calloc(n, sizeof *s->batch);
    s->batch_seq = calloc(n, sizeof *s->batch_seq);
    s->logits_bytes = n * (size_t)m->vocab_size * sizeof(float);
    s->logits = tl_alloc(s->logits_bytes, TL_MEM_SCRATCH);
    s->scratch = tl_alloc((size_t)m->vocab_size * sizeof(float), TL_MEM_SCRATCH);
    if (!s->running || !s->batch || !s->batch_seq || !s->logits || !s->scratch) {
        tl_sched_free(s);
        return tl_err_set(err, TL_ENOMEM, "no memory for batch buffers (%d sequences x %d vocab)",
                          s->o.max_seqs, m->vocab_size);
    }
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        tl_sched_free(s);
        return tl_err_set(err, TL_ERUNTIME, "cannot start the engine thread");
    }
    s->thread_started = 1;
    *out = s;
    return 0;
}

void tl_sched_stop(tl_sched *s) {
    if (!s || !s->thread_started) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
}

void tl_sched_free(tl_sched *s) {
    if (!s) return;
    tl_sched_stop(s);
    if (s->m) pc_clear(s);
    free(s->running);
    free(s->batch);
    free(s->batch_seq);
    tl_free(s->logits, s->logits_bytes, TL_MEM_SCRATCH);
    if (s->m) tl_free(s->scratch, (size_t)s->m->vocab_size * sizeof(float), TL_MEM_SCRATCH);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    free(s);
}
