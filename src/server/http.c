/* http.c — the HTTP side of `tallow serve` (libmicrohttpd): routing, auth, CORS, body limits,
 * OpenAI response shapes, SSE streaming, /metrics, /tokenize.
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by a connection limit). A
 * generation request is parsed, rendered and tokenized on its connection thread, then handed to
 * the scheduler (sched.h); the connection thread waits for tokens and writes them. While it
 * waits it polls its socket: a client that hangs up cancels its sequence at once, and the
 * request-completed callback cancels it in every other case (failed write, timeout), so a slot
 * is never held for a client that is gone. */
#define _GNU_SOURCE
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/metrics.h"
#include "server/request.h"
#include "server/sched.h"
#include "tallow/chat.h"
#include "tallow/sample.h"

typedef struct server {
    const tl_server_opts *o;
    tl_srv_model *m;
    tl_sched *sched;
    tl_metrics metrics;
    atomic_int ready;
    atomic_ullong id_counter;
    int64_t created;
} server;

typedef struct conn {
    server *srv;
    tl_endpoint ep;
    const char *cors_origin; /* echoed in Access-Control-Allow-Origin, or NULL */
    tl_strbuf body;          /* the request body as it arrives */
    int too_big, responded;
    int body_oom; /* a grow of the body buffer failed: the request is answered 503 */
    struct MHD_Connection *mc;
    char url[256];           /* the path, for /v1/models/<id> */
    /* generation */
    tl_seq *seq;
    tl_request *req;         /* owned until handed to seq */
    int chat, opens_think;
    int bounds[4], n_bounds; /* prefix-cache boundaries in the prompt */
    char id[64];
    int64_t created;
    /* streaming state */
    int ev_sent;             /* events already written */
    size_t text_sent;        /* text already fed to the splitter */
    int sent_role, finished_stream;
    size_t tool_sent;        /* tools offered: content bytes already streamed */
    int tool_mode;           /* a tool call has begun: hold the rest */
    tl_think_split split;
    tl_strbuf d_content, d_reason; /* deltas collected by the splitter callback */
    tl_strbuf out;           /* bytes waiting to be written (out.n), from out_off on */
    size_t out_off;
    uint64_t last_write_ns;
} conn;

/* ---- helpers -------------------------------------------------------------------------------- */

/* A JSON string from bytes that may not be valid UTF-8 (each bad byte becomes U+FFFD), as a
 * token's bytes can be: byte-level BPE cuts characters between tokens. */
static json_t *jstr(const char *p, size_t n) {
    json_t *j = json_stringn(p, n);
    if (j) return j;
    char *o = malloc(n * 3 + 1);
    if (!o) return json_string("");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        json_t *t = len > 1 && i + len <= n ? json_stringn(p + i, len) : NULL; /* valid char? */
        if (len == 1 || t) {
            json_decref(t);
            memcpy(o + k, p + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(o, k);
    free(o);
    return j ? j : json_string("");
}

static void add_common_headers(conn *c, struct MHD_Response *r) {
    if (c->cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", c->cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

/* Queue r (adding the CORS headers) as the answer, counted in /metrics by status class. */
static enum MHD_Result queue_response(conn *c, int status, struct MHD_Response *r) {
    add_common_headers(c, r);
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)status, r);
    MHD_destroy_response(r);
    c->responded = 1;
    pthread_mutex_lock(&c->srv->metrics.mu);
    if (status / 100 < 6) c->srv->metrics.responses_by_class[status / 100]++;
    pthread_mutex_unlock(&c->srv->metrics.mu);
    return ret;
}

static enum MHD_Result respond(conn *c, int status, const char *ctype, char *body, size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    return queue_response(c, status, r);
}

static enum MHD_Result respond_json(conn *c, int status, json_t *doc) {
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!s) return MHD_NO;
    return respond(c, status, "application/json", s, strlen(s));
}

static enum MHD_Result respond_err(conn *c, const tl_api_err *e) {
    char *s = tl_api_err_json(e);
    if (!s) return MHD_NO;
    return respond(c, e->status, "application/json", s, strlen(s));
}

static enum MHD_Result fail(conn *c, int status, const char *type, const char *code,
                            const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(conn *c, int status, const char *type, const char *code,
                            const char *param, const char *fmt, ...) {
    tl_api_err e;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tl_api_err_set(&e, status, type, code, param, "%s", msg);
    return respond_err(c, &e);
}

/* 1 when the peer has closed its end (or the socket failed). */
static int peer_gone(conn *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static const char *route(const char *url, tl_endpoint *ep) {
    if (!strncmp(url, "/v1/", 4)) url += 3;
    if (!strcmp(url, "/chat/completions")) *ep = TL_EP_CHAT;
    else if (!strcmp(url, "/completions")) *ep = TL_EP_COMPLETION;
    else if (!strcmp(url, "/tokenize")) *ep = TL_EP_TOKENIZE;
    else if (!strcmp(url, "/detokenize")) *ep = TL_EP_DETOKENIZE;
    else if (!strcmp(url, "/models") || !strncmp(url, "/models/", 8)) *ep = TL_EP_MODELS;
    else if (!strcmp(url, "/health")) *ep = TL_EP_HEALTH;
    else if (!strcmp(url, "/metrics")) *ep = TL_EP_METRICS;
    else return NULL;
    return (*ep == TL_EP_MODELS || *ep == TL_EP_HEALTH || *ep == TL_EP_METRICS) ? "GET" : "POST";
}

static int key_ok(const char *want, const char *hdr) {
    if (!hdr || strncasecmp(hdr, "Bearer ", 7)) return 0;
    hdr += 7;
    while (*hdr == ' ') hdr++;
    size_t a = strlen(want), b = strlen(hdr);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned)(want[i] ^ (i < b ? hdr[i] : 0));
    return diff == 0;
}

/* ---- response building ---------------------------------------------------------------------- */

static void make_id(conn *c, const char *prefix) {
    unsigned long long n = atomic_fetch_add(&c->srv->id_counter, 1);
    uint64_t x = tl_now_ns() ^ (n * 0x9e3779b97f4a7c15ull);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    snprintf(c->id, sizeof c->id, "%s%016llx%04llx", prefix, (unsigned long long)x, n & 0xffff);
    c->created = (int64_t)time(NULL);
}

/* A token's bytes; "" (n = 0) for an id without any. */
static const char *tok_bytes(server *s, int32_t id, size_t *n) {
    const char *b = s->m->token_bytes(s->m, id, n);
    if (!b) b = "", *n = 0;
    return b;
}

static json_t *token_json(server *s, int32_t id, float lp, int with_bytes) {
    size_t n = 0;
    const char *b = tok_bytes(s, id, &n);
    json_t *o = json_pack("{s:o, s:f}", "token", jstr(b, n), "logprob", (double)lp);
    if (with_bytes) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer((unsigned char)b[i]));
        json_object_set_new(o, "bytes", arr);
    }
    return o;
}

/* Chat logprobs for events [from, to): {"content": [...]} */
static json_t *chat_logprobs(conn *c, int from, int to) {
    server *s = c->srv;
    tl_seq *q = c->seq;
    json_t *arr = json_array();
    for (int i = from; i < to; i++) {
        json_t *e = token_json(s, q->events[i].id, q->events[i].logprob, 1);
        json_t *tops = json_array();
        for (int k = 0; k < q->n_top; k++) {
            int32_t tid = q->top_ids[(size_t)i * q->n_top + k];
            if (tid < 0) continue;
            json_array_append_new(tops, token_json(s, tid, q->top_lps[(size_t)i * q->n_top + k], 1));
        }
        json_object_set_new(e, "top_logprobs", tops);
        json_array_append_new(arr, e);
    }
    return json_pack("{s:o}", "content", arr);
}

/* Completions logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"} */
static json_t *completion_logprobs(conn *c, int from, int to, size_t text_base) {
    server *s = c->srv;
    tl_seq *q = c->seq;
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = text_base;
    for (int i = from; i < to; i++) {
        size_t n = 0;
        const char *b = tok_bytes(s, q->events[i].id, &n);
        json_array_append_new(toks, jstr(b, n));
        json_array_append_new(lps, json_real(q->events[i].logprob));
        json_t *t = json_object();
        for (int k = 0; k < q->n_top; k++) {
            int32_t tid = q->top_ids[(size_t)i * q->n_top + k];
            if (tid < 0) continue;
            size_t tn = 0;
            const char *tb = tok_bytes(s, tid, &tn);
            json_t *key = jstr(tb, tn);
            json_object_set_new(t, json_string_value(key),
                                json_real(q->top_lps[(size_t)i * q->n_top + k]));
            json_decref(key);
        }
        json_array_append_new(tops, t);
        json_array_append_new(offs, json_integer((json_int_t)off));
        off = (size_t)q->events[i].text_end;
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps,
                     "top_logprobs", tops, "text_offset", offs);
}

static json_t *usage_json(conn *c) {
    tl_seq *q = c->seq;
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", q->n_prompt, "completion_tokens",
                     q->n_events, "total_tokens", q->n_prompt + q->n_events,
                     "prompt_tokens_details", "cached_tokens", q->cached_tokens);
}

static void set_reasoning(conn *c, json_t *msg, const char *r, size_t n) {
    int f = c->srv->o->reasoning_field;
    if (f & TL_REASONING_CONTENT) json_object_set_new(msg, "reasoning_content", jstr(r, n));
    if (f & TL_REASONING_REASONING) json_object_set_new(msg, "reasoning", jstr(r, n));
}

static void split_out(void *ctx, int is_reasoning, const char *t, size_t n) {
    conn *c = ctx;
    (void)tl_strbuf_add(is_reasoning ? &c->d_reason : &c->d_content, t, n); /* OOM: dropped */
}

static const char *finish_str(tl_srv_finish f) {
    return f == TL_SRV_FIN_LENGTH ? "length" : "stop";
}

/* Tool calls in the answer: Qwen's <tool_call> XML / JSON, Llama 3's JSON. Returns the parsed
 * tool_calls array (or NULL) and replaces *content with the text outside the calls. */
static json_t *parse_tool_calls(tl_strbuf *content);

/* ---- non-streaming -------------------------------------------------------------------------- */

static enum MHD_Result finish_plain(conn *c) {
    tl_seq *q = c->seq;
    server *s = c->srv;
    /* the sequence is done: its fields are stable */
    if (q->finish == TL_SRV_FIN_ERROR)
        return fail(c, 500, "server_error", "engine_error", NULL, "generation failed: %s", q->err);
    json_t *choice;
    if (c->chat) {
        tl_think_split_init(&c->split, c->opens_think, split_out, c);
        tl_think_split_feed(&c->split, q->text ? q->text : "", q->text_len);
        tl_think_split_flush(&c->split);
        json_t *tool_calls = c->req->tools && !c->req->tool_choice_none
                                 ? parse_tool_calls(&c->d_content)
                                 : NULL;
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        if (tool_calls && c->d_content.n == 0) json_object_set_new(msg, "content", json_null());
        else json_object_set_new(msg, "content",
                                 jstr(c->d_content.p ? c->d_content.p : "", c->d_content.n));
        if (c->d_reason.n) set_reasoning(c, msg, c->d_reason.p, c->d_reason.n);
        if (tool_calls) json_object_set_new(msg, "tool_calls", tool_calls);
        choice = json_pack("{s:i, s:o, s:s}", "index", 0, "message", msg, "finish_reason",
                           tool_calls ? "tool_calls" : finish_str(q->finish));
        json_object_set_new(choice, "logprobs",
                            c->req->logprobs ? chat_logprobs(c, 0, q->n_events) : json_null());
    } else {
        choice = json_pack("{s:i, s:o, s:s}", "index", 0, "text",
                           jstr(q->text ? q->text : "", q->text_len), "finish_reason",
                           finish_str(q->finish));
        json_object_set_new(choice, "logprobs",
                            c->req->logprobs ? completion_logprobs(c, 0, q->n_events, 0)
                                             : json_null());
    }
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o, s:s}", "id", c->id, "object",
                            c->chat ? "chat.completion" : "text_completion", "created",
                            (json_int_t)c->created, "model", s->m->name, "choices", choice,
                            "usage", usage_json(c), "system_fingerprint", "tallow-" TALLOW_VERSION);
    return respond_json(c, 200, doc);
}

/* ---- streaming ------------------------------------------------------------------------------ */

static void out_add(conn *c, const char *p, size_t n) {
    (void)tl_strbuf_add(&c->out, p, n); /* OOM: dropped */
}

/* One SSE event "data: <s>\n\n"; frees s (NULL: nothing). */
static void out_data(conn *c, char *s) {
    if (!s) return;
    out_add(c, "data: ", 6);
    out_add(c, s, strlen(s));
    out_add(c, "\n\n", 2);
    free(s);
}

static void out_event(conn *c, json_t *doc) {
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    out_data(c, s);
}

static json_t *chunk(conn *c, json_t *choice) {
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o]}", "id", c->id, "object",
                     c->chat ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)c->created, "model", c->srv->m->name, "system_fingerprint",
                     "tallow-" TALLOW_VERSION, "choices", choice);
}

/* With tools offered, streamed content is held back from where a tool call may begin: from
 * "<tool_call>" or "<|python_tag|>" (or a partial one at the end), or all of it when the answer
 * opens with a JSON object or list (Llama 3's form). Returns how far content may be sent. */
static size_t tool_safe_end(conn *c) {
    static const char *const marks[] = {"<tool_call>", "<|python_tag|>"};
    const char *d = c->d_content.p;
    size_t n = c->d_content.n;
    if (c->tool_mode || !d) return c->tool_sent;
    if (c->tool_sent == 0) {
        size_t i = 0;
        while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t')) i++;
        if (i == n) return 0; /* only blanks so far: undecided */
        if (d[i] == '{' || d[i] == '[') {
            c->tool_mode = 1;
            return 0;
        }
    }
    size_t end = n;
    for (size_t k = 0; k < TL_ARRAY_LEN(marks); k++) {
        const char *hit = memmem(d + c->tool_sent, n - c->tool_sent, marks[k], strlen(marks[k]));
        if (hit && (size_t)(hit - d) < end) {
            end = (size_t)(hit - d);
            c->tool_mode = 1;
        }
    }
    if (c->tool_mode) return end;
    for (size_t k = 0; k < TL_ARRAY_LEN(marks); k++) { /* a marker cut at the end */
        size_t ml = strlen(marks[k]);
        for (size_t l = TL_MIN(ml - 1, n - c->tool_sent); l > 0; l--)
            if (!memcmp(d + n - l, marks[k], l)) {
                if (n - l < end) end = n - l;
                break;
            }
    }
    return end;
}

/* Turn new events/text of the sequence into SSE events in c->out. Called with the sched lock. */
static void stream_produce(conn *c, int done) {
    tl_seq *q = c->seq;
    int holding_tools = c->chat && c->req->tools && !c->req->tool_choice_none;
    if (c->chat && !c->sent_role) {
        json_t *d = json_pack("{s:s, s:s}", "role", "assistant", "content", "");
        out_event(c, chunk(c, json_pack("{s:i, s:o, s:n, s:n}", "index", 0, "delta", d,
                                        "logprobs", "finish_reason")));
        c->sent_role = 1;
        tl_think_split_init(&c->split, c->opens_think, split_out, c);
    }
    int ev_to = q->n_events;
    size_t text_to = q->text_len;
    if (ev_to > c->ev_sent || text_to > c->text_sent) {
        size_t text_from = c->text_sent;
        if (c->chat) {
            size_t keep_content = c->d_content.n;
            size_t keep_reason = c->d_reason.n;
            if (text_to > c->text_sent)
                tl_think_split_feed(&c->split, q->text + c->text_sent, text_to - c->text_sent);
            if (done) tl_think_split_flush(&c->split);
            json_t *d = json_object();
            if (!holding_tools && c->d_content.n > keep_content)
                json_object_set_new(d, "content", jstr(c->d_content.p + keep_content,
                                                       c->d_content.n - keep_content));
            if (holding_tools) { /* stream what cannot be part of a tool call */
                size_t to = tool_safe_end(c);
                if (to > c->tool_sent)
                    json_object_set_new(d, "content", jstr(c->d_content.p + c->tool_sent,
                                                           to - c->tool_sent));
                c->tool_sent = to;
            }
            if (c->d_reason.n > keep_reason) {
                set_reasoning(c, d, c->d_reason.p + keep_reason, c->d_reason.n - keep_reason);
            }
            if (!holding_tools) c->d_content.n = 0; /* streamed: forget */
            c->d_reason.n = 0;
            json_t *lp = c->req->logprobs ? chat_logprobs(c, c->ev_sent, ev_to) : json_null();
            if (json_object_size(d) || c->req->logprobs)
                out_event(c, chunk(c, json_pack("{s:i, s:o, s:o, s:n}", "index", 0, "delta", d,
                                                "logprobs", lp, "finish_reason")));
            else {
                json_decref(d);
                json_decref(lp);
            }
        } else {
            json_t *lp = c->req->logprobs ? completion_logprobs(c, c->ev_sent, ev_to, text_from)
                                          : json_null();
            out_event(c, chunk(c, json_pack("{s:i, s:o, s:o, s:n}", "index", 0, "text",
                                            jstr(q->text ? q->text + text_from : "",
                                                 text_to - text_from),
                                            "logprobs", lp, "finish_reason")));
        }
        c->ev_sent = ev_to;
        c->text_sent = text_to;
    }
    if (!done) return;
    if (q->finish == TL_SRV_FIN_ERROR || q->finish == TL_SRV_FIN_CANCELLED) {
        tl_api_err e;
        tl_api_err_set(&e, 500, "server_error", "engine_error", NULL, "generation failed: %s",
                       q->err);
        out_data(c, tl_api_err_json(&e));
    } else {
        json_t *d = json_object();
        const char *fr = finish_str(q->finish);
        if (holding_tools) { /* the held tail: tool calls and the text around them */
            memmove(c->d_content.p, c->d_content.p + c->tool_sent, c->d_content.n - c->tool_sent);
            c->d_content.n -= c->tool_sent;
            json_t *tc = parse_tool_calls(&c->d_content);
            if (c->d_content.n)
                json_object_set_new(d, "content", jstr(c->d_content.p, c->d_content.n));
            if (tc) {
                size_t i;
                json_t *t;
                json_array_foreach(tc, i, t) json_object_set_new(t, "index", json_integer((json_int_t)i));
                json_object_set_new(d, "tool_calls", tc);
                fr = "tool_calls";
            }
        }
        if (c->chat)
            out_event(c, chunk(c, json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "delta", d,
                                            "logprobs", "finish_reason", fr)));
        else {
            json_decref(d);
            out_event(c, chunk(c, json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", "",
                                            "logprobs", "finish_reason", fr)));
        }
        if (c->req->include_usage) {
            json_t *u = chunk(c, json_pack("{}"));
            json_array_clear(json_object_get(u, "choices"));
            json_object_set_new(u, "usage", usage_json(c));
            out_event(c, u);
        }
    }
    out_add(c, "data: [DONE]\n\n", 14);
    c->finished_stream = 1;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    conn *c = cls;
    server *s = c->srv;
    (void)pos;
    for (;;) {
        if (c->out_off < c->out.n) {
            size_t n = TL_MIN(max, c->out.n - c->out_off);
            memcpy(buf, c->out.p + c->out_off, n);
            c->out_off += n;
            if (c->out_off == c->out.n) c->out_off = c->out.n = 0;
            c->last_write_ns = tl_now_ns();
            return (ssize_t)n;
        }
        if (c->finished_stream) return MHD_CONTENT_READER_END_OF_STREAM;
        tl_seq *q = c->seq;
        tl_sched_lock(s->sched);
        for (;;) {
            if (q->done || q->n_events != c->ev_sent || q->text_len != c->text_sent) {
                stream_produce(c, q->done);
                break;
            }
            tl_sched_wait(s->sched, q, 100);
            if (q->done || q->n_events != c->ev_sent || q->text_len != c->text_sent) continue;
            tl_sched_unlock(s->sched);
            int gone = peer_gone(c);
            tl_sched_lock(s->sched);
            if (gone) {
                tl_sched_unlock(s->sched);
                return MHD_CONTENT_READER_END_WITH_ERROR; /* completed callback cancels q */
            }
            if (tl_now_ns() - c->last_write_ns > (uint64_t)s->o->keepalive_ms * 1000000ull) {
                char ka[96];
                int n = snprintf(ka, sizeof ka, ": keepalive %d/%d\n\n", q->n_fed, q->n_prompt);
                out_add(c, ka, (size_t)n);
                break;
            }
        }
        tl_sched_unlock(s->sched);
    }
}

/* ---- endpoints ------------------------------------------------------------------------------ */

/* A prefix-cache boundary: the tokens of the first n_msgs messages (no assistant header), when
 * they are a prefix of the prompt. */
static void add_boundary(conn *c, int n_msgs, const int32_t *ids, size_t n_ids) {
    tl_srv_model *m = c->srv->m;
    char *text = NULL;
    int think;
    tl_err err;
    if (c->n_bounds >= (int)TL_ARRAY_LEN(c->bounds)) return;
    if (m->render(m, c->req, n_msgs, 0, &text, &think, &err) < 0) return;
    int32_t *b = NULL;
    size_t nb = 0;
    if (m->encode(m, text, strlen(text), 0, &b, &nb, &err) == 0 && nb > 0 && nb < n_ids &&
        !memcmp(b, ids, nb * sizeof *b) &&
        (c->n_bounds == 0 || (int)nb > c->bounds[c->n_bounds - 1]))
        c->bounds[c->n_bounds++] = (int)nb;
    free(b);
    free(text);
}

static enum MHD_Result do_generate(conn *c) {
    server *s = c->srv;
    tl_srv_model *m = s->m;
    tl_api_err ae;
    tl_err err = {0};
    c->chat = c->ep == TL_EP_CHAT;
    if (tl_request_parse(c->chat ? TL_REQ_CHAT : TL_REQ_COMPLETION, c->body.p, c->body.n,
                         m->vocab_size, &c->req, &ae) < 0)
        return respond_err(c, &ae);
    tl_request *r = c->req;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc;
    if (c->chat) {
        char *prompt = NULL;
        rc = m->render(m, r, -1, 1, &prompt, &c->opens_think, &err);
        if (rc < 0)
            return fail(c, 400, "invalid_request_error", "template_error", "messages",
                        "the chat template failed on these messages: %s", err.msg);
        rc = m->encode(m, prompt, strlen(prompt), 0, &ids, &n_ids, &err);
        free(prompt);
        if (rc == 0 && m->has_snapshots && s->o->prefix_cache_bytes > 0) {
            int nm = (int)json_array_size(r->messages);
            if (nm >= 2) add_boundary(c, nm - 1, ids, n_ids);
            add_boundary(c, nm, ids, n_ids);
        }
    } else if (r->prompt) {
        rc = m->encode(m, r->prompt, strlen(r->prompt), 1, &ids, &n_ids, &err);
    } else {
        ids = malloc((size_t)r->n_prompt_ids * sizeof *ids);
        rc = ids ? 0 : tl_err_set(&err, TL_ENOMEM, "no memory");
        if (ids) memcpy(ids, r->prompt_ids, (size_t)r->n_prompt_ids * sizeof *ids);
        n_ids = (size_t)r->n_prompt_ids;
    }
    if (rc < 0) {
        free(ids);
        return fail(c, 400, "invalid_request_error", "tokenizer_error",
                    c->chat ? "messages" : "prompt", "cannot tokenize the prompt: %s", err.msg);
    }
    const char *pp = c->chat ? "messages" : "prompt";
    if (n_ids == 0) {
        free(ids);
        return fail(c, 400, "invalid_request_error", "invalid_value", pp, "the prompt is empty");
    }
    int ctx = m->ctx_len;
    if ((long long)n_ids >= ctx) {
        free(ids);
        return fail(c, 400, "invalid_request_error", "context_length_exceeded", pp,
                    "the prompt is %zu tokens; the context holds %d (it needs room for at least "
                    "one generated token)",
                    n_ids, ctx);
    }
    int max_new = r->max_tokens > 0 ? r->max_tokens : ctx - (int)n_ids;
    if ((long long)n_ids + max_new > ctx) {
        free(ids);
        return fail(c, 400, "invalid_request_error", "context_length_exceeded",
                    "max_tokens",
                    "prompt (%zu tokens) + max_tokens (%d) = %lld passes the context of %d tokens; "
                    "lower max_tokens to at most %d",
                    n_ids, max_new, (long long)n_ids + max_new, ctx, ctx - (int)n_ids);
    }
    rc = tl_seq_new(&c->seq, r, ids, (int)n_ids, max_new, &err);
    free(ids);
    if (rc < 0) return fail(c, 500, "server_error", NULL, NULL, "%s", err.msg);
    memcpy(c->seq->snap_pos, c->bounds, sizeof c->bounds);
    c->seq->n_snap = c->n_bounds;
    /* from here the sequence owns the request; c->req stays readable while c->seq is held */
    rc = tl_sched_submit(s->sched, c->seq, &err);
    if (rc < 0) {
        tl_seq_free(c->seq);
        c->seq = NULL;
        c->req = NULL;
        if (rc == -TL_EBUSY)
            return fail(c, 429, "rate_limit_error", "queue_full", NULL, "%s", err.msg);
        return fail(c, 503, "server_error", rc == -TL_ENOMEM ? "memory_cap" : "unavailable", NULL,
                    "%s", err.msg);
    }
    make_id(c, c->chat ? "chatcmpl-" : "cmpl-");
    if (r->stream) {
        c->last_write_ns = tl_now_ns();
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, c, NULL);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        return queue_response(c, 200, resp);
    }
    /* wait for the whole answer, watching for the client going away */
    tl_sched_lock(s->sched);
    while (!c->seq->done) {
        tl_sched_wait(s->sched, c->seq, 100);
        if (c->seq->done) break;
        tl_sched_unlock(s->sched);
        int gone = peer_gone(c);
        tl_sched_lock(s->sched);
        if (gone) {
            tl_sched_unlock(s->sched);
            return MHD_NO; /* closes the connection; completed callback cancels the sequence */
        }
    }
    tl_sched_unlock(s->sched);
    return finish_plain(c);
}

static enum MHD_Result do_tokenize(conn *c) {
    server *s = c->srv;
    tl_api_err ae;
    tl_err err = {0};
    tl_request *r = NULL;
    int detok = c->ep == TL_EP_DETOKENIZE;
    if (tl_request_parse(detok ? TL_REQ_DETOKENIZE : TL_REQ_TOKENIZE, c->body.p, c->body.n,
                         s->m->vocab_size, &r, &ae) < 0)
        return respond_err(c, &ae);
    json_t *doc;
    if (detok) {
        tl_strbuf t = {0};
        for (int i = 0; i < r->n_tokens; i++) {
            size_t bl = 0;
            const char *b = s->m->token_bytes(s->m, r->tokens[i], &bl);
            if (b) (void)tl_strbuf_add(&t, b, bl);
        }
        doc = json_pack("{s:o}", "content", jstr(t.p ? t.p : "", t.n));
        free(t.p);
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        if (s->m->encode(s->m, r->content, strlen(r->content), r->add_special, &ids, &n, &err) < 0) {
            tl_request_free(r);
            return fail(c, 400, "invalid_request_error", "tokenizer_error", "content", "%s",
                        err.msg);
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            if (r->with_pieces) {
                size_t bl = 0;
                const char *b = tok_bytes(s, ids[i], &bl);
                json_array_append_new(arr, json_pack("{s:i, s:o}", "id", ids[i], "piece",
                                                     jstr(b, bl)));
            } else {
                json_array_append_new(arr, json_integer(ids[i]));
            }
        }
        free(ids);
        doc = json_pack("{s:o}", "tokens", arr);
    }
    tl_request_free(r);
    return respond_json(c, 200, doc);
}

static enum MHD_Result dispatch(conn *c) {
    server *s = c->srv;
    switch (c->ep) {
    case TL_EP_HEALTH:
        if (!atomic_load(&s->ready))
            return fail(c, 503, "unavailable_error", "loading", NULL, "the model is loading");
        return respond_json(c, 200, json_pack("{s:s}", "status", "ok"));
    case TL_EP_METRICS: {
        size_t n = 0;
        char *t = tl_metrics_render(&s->metrics, s->m ? s->m->name : "", &n);
        if (!t) return MHD_NO;
        return respond(c, 200, "text/plain; version=0.0.4", t, n);
    }
    default: break;
    }
    if (!atomic_load(&s->ready))
        return fail(c, 503, "unavailable_error", "loading", NULL, "the model is loading; retry");
    switch (c->ep) {
    case TL_EP_MODELS: {
        const char *id = strstr(c->url, "/models/");
        if (id && strcmp(id + 8, s->m->name))
            return fail(c, 404, "invalid_request_error", "model_not_found", "model",
                        "model '%.200s' is not served here (this server serves '%s')", id + 8,
                        s->m->name);
        json_t *model = json_pack("{s:s, s:s, s:I, s:s, s:i}", "id", s->m->name, "object", "model",
                                  "created", (json_int_t)s->created, "owned_by", "tallow",
                                  "context_length", s->m->ctx_len);
        if (s->m->synthetic) json_object_set_new(model, "synthetic", json_true());
        if (id) return respond_json(c, 200, model);
        return respond_json(c, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", model));
    }
    case TL_EP_TOKENIZE:
    case TL_EP_DETOKENIZE: return do_tokenize(c);
    case TL_EP_CHAT:
    case TL_EP_COMPLETION: return do_generate(c);
    default: return fail(c, 404, "invalid_request_error", "not_found", NULL, "not found");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    server *s = cls;
    (void)version;
    conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->srv = s;
        c->mc = mc;
        snprintf(c->url, sizeof c->url, "%s", url);
        *con_cls = c;
        const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
        if (origin)
            for (int i = 0; i < s->o->n_cors; i++)
                if (!strcmp(s->o->cors[i], "*") || !strcmp(s->o->cors[i], origin)) {
                    c->cors_origin = !strcmp(s->o->cors[i], "*") ? "*" : s->o->cors[i];
                    break;
                }
        const char *want = route(url, &c->ep);
        if (!want) c->ep = TL_EP_OTHER;
        pthread_mutex_lock(&s->metrics.mu);
        s->metrics.requests[c->ep]++;
        pthread_mutex_unlock(&s->metrics.mu);
        if (!strcmp(method, "OPTIONS")) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            add_common_headers(c, r);
            if (c->cors_origin) {
                MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                        "Authorization, Content-Type");
                MHD_add_response_header(r, "Access-Control-Max-Age", "600");
            }
            enum MHD_Result ret = MHD_queue_response(mc, 204, r);
            MHD_destroy_response(r);
            c->responded = 1;
            return ret;
        }
        if (!want)
            return fail(c, 404, "invalid_request_error", "not_found", NULL,
                        "no endpoint %.200s %.200s", method, url);
        if (strcmp(method, want))
            return fail(c, 405, "invalid_request_error", "method_not_allowed", NULL,
                        "%.200s needs %s, got %.32s", url, want, method);
        if (s->o->api_key && c->ep != TL_EP_HEALTH &&
            !key_ok(s->o->api_key,
                    MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization")))
            return fail(c, 401, "authentication_error", "invalid_api_key", NULL,
                        "missing or wrong API key (send Authorization: Bearer <key>)");
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o->max_body)
            return fail(c, 413, "invalid_request_error", "body_too_large", NULL,
                        "request body of %.32s bytes is over the limit of %zu (--max-body)", cl,
                        s->o->max_body);
        return MHD_YES;
    }
    if (c->responded) { /* answered early (401/413...): discard the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (c->too_big || c->body.n + n > s->o->max_body) {
            c->too_big = 1;
        } else if (!c->body_oom && tl_strbuf_add(&c->body, upload_data, n) < 0) {
            c->body_oom = 1; /* never parse a body with a chunk missing */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->too_big)
        return fail(c, 413, "invalid_request_error", "body_too_large", NULL,
                    "request body is over the limit of %zu bytes (--max-body)", s->o->max_body);
    if (c->body_oom || (!c->body.p && tl_strbuf_add(&c->body, "", 0) < 0))
        return fail(c, 503, "server_error", "memory_cap", NULL,
                    "out of memory reading the request body (%zu bytes read)", c->body.n);
    return dispatch(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    conn *c = *con_cls;
    (void)mc;
    (void)toe;
    if (!c) return;
    if (c->seq) tl_sched_release(s->sched, c->seq); /* cancels it if running; owns c->req */
    else tl_request_free(c->req);
    free(c->body.p);
    free(c->d_content.p);
    free(c->d_reason.p);
    free(c->out.p);
    free(c);
    *con_cls = NULL;
}

/* ---- tool calls ----------------------------------------------------------------------------- */

static json_t *parse_tool_calls(tl_strbuf *content) {
    char *text = strndup(content->p ? content->p : "", content->n);
    char *rest = NULL, *calls = NULL;
    tl_err err;
    if (!text || tl_chat_parse_tool_calls(text, TL_TOOLS_AUTO, &rest, &calls, &err) < 0) {
        free(text);
        return NULL;
    }
    free(text);
    json_t *tc = calls ? json_loads(calls, 0, NULL) : NULL;
    free(calls);
    if (!json_is_array(tc) || json_array_size(tc) == 0) { /* none: the text stays as it was */
        json_decref(tc);
        free(rest);
        return NULL;
    }
    /* the content buffer becomes the text outside the calls */
    content->n = 0;
    if (rest) (void)tl_strbuf_add(content, rest, strlen(rest));
    free(rest);
    return tc;
}

/* ---- run ------------------------------------------------------------------------------------ */

void tl_server_opts_default(tl_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->max_seqs = 8;
    o->max_queue = 64;
    o->prefill_chunk = 256;
    o->max_body = 8u << 20;
    o->reasoning_field = TL_REASONING_CONTENT;
    o->keepalive_ms = 2000;
    o->timeout_s = 60;
    o->mock = (tl_mock_opts){512, 4096, 64, 2000, 20, 0};
    o->prefix_cache_bytes = 256ll << 20;
}

int tl_server_run(const tl_server_opts *o, tl_err *err) {
    server *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ENOMEM, "no memory");
    s->o = o;
    s->created = (int64_t)time(NULL);
    tl_metrics_init(&s->metrics);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1) {
        free(s);
        return tl_err_set(err, TL_EINVAL, "--host '%s' is not an IPv4 address", o->host);
    }
    unsigned limit = (unsigned)(o->max_seqs + o->max_queue + 64);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_END);
    if (!d) {
        free(s);
        return tl_err_set(err, TL_ENET, "cannot listen on %s:%d (in use?)", o->host, o->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : o->port;
    fprintf(stderr, "tallow serve: listening on http://%s:%d (loading %s)\n", o->host, port,
            o->model);
    fflush(stderr);
    int rc;
    if (!strcmp(o->model, "@mock")) rc = tl_mock_open(&s->m, &o->mock, err);
    else rc = tl_srv_engine_open(&s->m, &o->engine, err);
    if (rc == 0) {
        tl_sched_opts so = {o->max_seqs, o->max_queue, o->prefill_chunk, o->mem_cap,
                            o->prefix_cache_bytes};
        rc = tl_sched_new(&s->sched, s->m, &so, &s->metrics, err);
    }
    if (rc < 0) {
        MHD_stop_daemon(d);
        if (s->m) s->m->close(s->m);
        tl_metrics_destroy(&s->metrics);
        free(s);
        return rc;
    }
    atomic_store(&s->ready, 1);
    fprintf(stderr, "tallow serve: ready: model %s, context %d, %d sequences at once, queue %d\n",
            s->m->name, s->m->ctx_len, TL_MIN(o->max_seqs, s->m->max_slots), o->max_queue);
    fflush(stderr);
    while (!o->stop || !*o->stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "tallow serve: stopping\n");
    MHD_quiesce_daemon(d);
    tl_sched_stop(s->sched); /* finishes every sequence: waiting connections return */
    MHD_stop_daemon(d);
    tl_sched_free(s->sched);
    s->m->close(s->m);
    tl_metrics_destroy(&s->metrics);
    free(s);
    return 0;
}
