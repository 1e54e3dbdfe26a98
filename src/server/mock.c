/* mock.c — "@mock": a deterministic toy model behind the server's model table (model.h).
 *
 * Tokens: ids 0..255 are bytes; then specials <s>, </s>, <|system|>, <|user|>, <|assistant|>,
 * <|tool|>, <|end|>, <|tools|>. The "prompt template" is <|role|>content<|end|> per message and
 * ends with <|assistant|> (+ "<think>\n" when thinking is on).
 * Logits: each slot keeps a hash of every token fed; the next-token logits are a pseudo-random
 * function of that hash (favouring letters and space, with a small chance of </s>), so equal
 * histories and seeds give equal text, whatever else shares the batch. When the prompt holds
 * [[say:TEXT]], the reply is TEXT byte by byte and then </s> — how tests get reasoning, tool calls
 * and stop strings out of a model that has no weights.
 * Cost: each forward sleeps forward_us + rows * row_us, like a pass bound by reading weights. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/model.h"

enum { M_BOS = 256, M_EOS, M_SYSTEM, M_USER, M_ASSISTANT, M_TOOL, M_END, M_TOOLS, M_NSPECIAL };
static const char *const special_text[] = {"<s>", "</s>", "<|system|>", "<|user|>",
                                           "<|assistant|>", "<|tool|>", "<|end|>", "<|tools|>"};

#define SCRIPT_MAX 2048

typedef struct mock_slot {
    int used;
    int len;
    uint64_t h;
    char window[6];      /* last bytes fed, to find "[[say:" */
    int capturing;
    char script[SCRIPT_MAX];
    int script_len;
    int since_asst;      /* tokens fed since <|assistant|>, -1 when none */
    int start;           /* since_asst when the reply began, -1 before */
} mock_slot;

typedef struct mock {
    tl_mock_opts o;
    mock_slot *slots;
} mock;

static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int m_acquire(tl_srv_model *m, tl_err *err) {
    mock *k = m->ctx;
    for (int i = 0; i < k->o.max_slots; i++)
        if (!k->slots[i].used) {
            memset(&k->slots[i], 0, sizeof k->slots[i]);
            k->slots[i].used = 1;
            k->slots[i].since_asst = -1;
            k->slots[i].start = -1;
            k->slots[i].h = 0x1234567ull;
            return i;
        }
    return tl_err_set(err, TL_EBUSY, "mock: all %d slots are in use", k->o.max_slots);
}

static void m_release(tl_srv_model *m, int slot) {
    mock *k = m->ctx;
    if (slot >= 0 && slot < k->o.max_slots) k->slots[slot].used = 0;
}

static void feed(mock_slot *s, int32_t t) {
    s->h = mix(s->h ^ (uint64_t)(t + 1));
    s->len++;
    if (s->since_asst >= 0) s->since_asst++;
    if (t == M_ASSISTANT) {
        s->since_asst = 0;
        s->start = -1;
    }
    if (t >= 256) return;
    if (s->capturing) {
        if (t == ']' && s->script_len > 0 && s->script[s->script_len - 1] == ']') {
            s->script_len--;
            s->capturing = 0;
        } else if (s->script_len < SCRIPT_MAX) {
            s->script[s->script_len++] = (char)t;
        }
    }
    memmove(s->window, s->window + 1, 5);
    s->window[5] = (char)t;
    if (!memcmp(s->window, "[[say:", 6)) {
        s->capturing = 1;
        s->script_len = 0;
    }
}

static void logits_for(const mock *k, mock_slot *s, float *out) {
    int V = k->o.vocab_size;
    if (s->since_asst >= 0 && s->script_len > 0 && !s->capturing) {
        if (s->start < 0) s->start = s->since_asst;
        int i = s->since_asst - s->start;
        for (int v = 0; v < V; v++) out[v] = (float)(mix(s->h + (uint64_t)v) % 1000) / 1000.0f;
        int want = i < s->script_len ? (unsigned char)s->script[i] : M_EOS;
        out[want] = 20.0f;
        return;
    }
    for (int v = 0; v < V; v++) {
        float u = (float)(mix(s->h * 31 + (uint64_t)v) % 100000) / 100000.0f;
        int letter = (v >= 'a' && v <= 'z') || v == ' ';
        out[v] = letter ? 3.0f * u : v == M_EOS ? 3.0f * u - 2.6f : -10.0f;
    }
}

static int m_forward(tl_srv_model *m, const tl_batch_seq *seqs, int n, float *logits,
                     tl_err *err) {
    mock *k = m->ctx;
    int rows = 0, wi = 0;
    for (int i = 0; i < n; i++) {
        const tl_batch_seq *b = &seqs[i];
        if (b->slot < 0 || b->slot >= k->o.max_slots || !k->slots[b->slot].used)
            return tl_err_set(err, TL_EINVAL, "mock: forward on slot %d that is not acquired",
                              b->slot);
        mock_slot *s = &k->slots[b->slot];
        if (s->len + b->n_tokens > k->o.ctx_len)
            return tl_err_set(err, TL_ELIMIT, "mock: slot %d would pass the context (%d)", b->slot,
                              k->o.ctx_len);
        for (int j = 0; j < b->n_tokens; j++) {
            if (b->tokens[j] < 0 || b->tokens[j] >= k->o.vocab_size)
                return tl_err_set(err, TL_EINVAL, "mock: token %d out of range", b->tokens[j]);
            feed(s, b->tokens[j]);
        }
        rows += b->n_tokens;
        if (b->want_logits) logits_for(k, s, logits + (size_t)i * k->o.vocab_size);
        wi++;
    }
    long ns = ((long)k->o.forward_us + (long)rows * k->o.row_us) * 1000L;
    if (ns > 0) {
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int m_render(tl_srv_model *m, const tl_request *r, int n_messages, int add_gen,
                    char **prompt, int *opens_think, tl_err *err) {
    (void)m;
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) return tl_err_set(err, TL_ENOMEM, "mock: no memory");
#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (len + n_ + 1 > cap) {                                                                  \
            while (len + n_ + 1 > cap) cap *= 2;                                                   \
            char *nb = realloc(buf, cap);                                                          \
            if (!nb) {                                                                             \
                free(buf);                                                                         \
                return tl_err_set(err, TL_ENOMEM, "mock: no memory");                              \
            }                                                                                      \
            buf = nb;                                                                              \
        }                                                                                          \
        memcpy(buf + len, (s), n_);                                                                \
        len += n_;                                                                                 \
    } while (0)
    if (r->tools && !r->tool_choice_none) {
        char *t = json_dumps(r->tools, JSON_COMPACT);
        PUT("<|tools|>", 9);
        if (t) PUT(t, strlen(t));
        free(t);
        PUT("<|end|>", 7);
    }
    size_t i;
    json_t *msg;
    json_array_foreach(r->messages, i, msg) {
        if (n_messages >= 0 && i >= (size_t)n_messages) break;
        const char *role = json_string_value(json_object_get(msg, "role"));
        const char *c = json_string_value(json_object_get(msg, "content"));
        PUT("<|", 2);
        PUT(role, strlen(role));
        PUT("|>", 2);
        if (c) PUT(c, strlen(c));
        PUT("<|end|>", 7);
    }
    int think = add_gen && r->enable_thinking == 1;
    if (add_gen) PUT("<|assistant|>", 13);
    if (think) PUT("<think>\n", 8);
    buf[len] = 0;
    *prompt = buf;
    *opens_think = think;
    return 0;
#undef PUT
}

static int m_encode(tl_srv_model *m, const char *text, size_t len, int add_special, int32_t **ids,
                    size_t *n, tl_err *err) {
    (void)m;
    int32_t *out = malloc((len + 1) * sizeof *out);
    if (!out) return tl_err_set(err, TL_ENOMEM, "mock: no memory for %zu tokens", len + 1);
    size_t k = 0;
    if (add_special) out[k++] = M_BOS;
    for (size_t i = 0; i < len;) {
        int sp = -1;
        if (text[i] == '<')
            for (int s = 0; s < M_NSPECIAL - 256; s++) {
                size_t sl = strlen(special_text[s]);
                if (i + sl <= len && !memcmp(text + i, special_text[s], sl)) {
                    sp = s;
                    i += sl;
                    break;
                }
            }
        if (sp >= 0) out[k++] = 256 + sp;
        else out[k++] = (unsigned char)text[i++];
    }
    *ids = out;
    *n = k;
    return 0;
}

static const char *m_token_bytes(tl_srv_model *m, int32_t id, size_t *len) {
    static const char bytes[256] = {
#define B4(i) (char)(i), (char)(i + 1), (char)(i + 2), (char)(i + 3)
#define B16(i) B4(i), B4(i + 4), B4(i + 8), B4(i + 12)
#define B64(i) B16(i), B16(i + 16), B16(i + 32), B16(i + 48)
        B64(0), B64(64), B64(128), B64(192)};
    if (id >= 0 && id < 256) {
        *len = 1;
        return &bytes[id];
    }
    if (id >= 256 && id < M_NSPECIAL) {
        *len = strlen(special_text[id - 256]);
        return special_text[id - 256];
    }
    (void)m;
    *len = 0;
    return id >= 0 && id < m->vocab_size ? "" : NULL;
}

static int m_is_special(tl_srv_model *m, int32_t id) {
    (void)m;
    return id >= 256;
}
static int m_is_eog(tl_srv_model *m, int32_t id) {
    (void)m;
    return id == M_EOS || id == M_END;
}
static int64_t m_seq_bytes(tl_srv_model *m, int n) {
    (void)m;
    return (int64_t)n * 1024;
}

static void m_close(tl_srv_model *m) {
    if (!m) return;
    mock *k = m->ctx;
    if (k) free(k->slots);
    free(k);
    free(m);
}

int tl_mock_open(tl_srv_model **out, const tl_mock_opts *o, tl_err *err) {
    *out = NULL;
    if (o->vocab_size < M_NSPECIAL || o->ctx_len < 8 || o->max_slots < 1)
        return tl_err_set(err, TL_EINVAL, "mock: vocab >= %d, ctx >= 8 and slots >= 1 needed",
                          M_NSPECIAL);
    tl_srv_model *m = calloc(1, sizeof *m);
    mock *k = calloc(1, sizeof *k);
    if (k) k->slots = calloc((size_t)o->max_slots, sizeof *k->slots);
    if (!m || !k || !k->slots) {
        free(m);
        if (k) free(k->slots);
        free(k);
        return tl_err_set(err, TL_ENOMEM, "mock: no memory");
    }
    k->o = *o;
    if (o->load_ms > 0) {
        struct timespec ts = {o->load_ms / 1000, (long)(o->load_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(m->name, sizeof m->name, "@mock");
    m->vocab_size = o->vocab_size;
    m->ctx_len = o->ctx_len;
    m->max_slots = o->max_slots;
    m->max_batch_rows = 512;
    m->bos_id = M_BOS;
    m->ctx = k;
    m->slot_acquire = m_acquire;
    m->slot_release = m_release;
    m->forward = m_forward;
    m->render = m_render;
    m->encode = m_encode;
    m->token_bytes = m_token_bytes;
    m->is_special = m_is_special;
    m->is_eog = m_is_eog;
    m->seq_bytes = m_seq_bytes;
    m->close = m_close;
    *out = m;
    return 0;
}
