/* tok_decode.c — ids -> text, whole or streamed one id at a time.
 *
 * Contract: the bytes of the tokens are concatenated and made valid UTF-8 the way Rust's
 * String::from_utf8_lossy does (HF's ByteLevel decoder): each maximal invalid subsequence
 * becomes U+FFFD. The stream version gives the same text in pieces: it holds back at most 3
 * bytes of a character cut between tokens, and writes only complete, valid UTF-8. Unknown ids
 * are skipped (HF does the same); special added tokens are skipped on request. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char *token_text(const tl_tokenizer *t, int32_t id, int skip_special, size_t *len) {
    if (id < 0 || id >= t->n_ids) return NULL;
    uint8_t f = t->tok_flags[id];
    if (!(f & TOK_F_PRESENT) || (skip_special && (f & TOK_F_SPECIAL))) return NULL;
    *len = t->tok_len[id];
    return t->arena + t->tok_off[id];
}

size_t tok_utf8_lossy(const uint8_t *s, size_t n, char *out, int *hold) {
    size_t i = 0, o = 0;
    if (hold) *hold = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            out[o++] = (char)s[i++];
            continue;
        }
        int l = tok_utf8_seq(s + i, n - i);
        if (l > 0) {
            memcpy(out + o, s + i, (size_t)l);
            o += (size_t)l, i += (size_t)l;
        } else if (l == 0 && hold) {
            *hold = (int)(n - i);
            break;
        } else {
            o += (size_t)tok_utf8_put(0xFFFD, out + o);
            i += l < 0 ? (size_t)-l : n - i;
        }
    }
    return o;
}

int tl_tok_decode(const tl_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                  char **text, size_t *len, tl_err *err) {
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0, l;
    for (size_t i = 0; i < n_ids; i++)
        if (token_text(tok, ids[i], skip_special, &l)) total += l;
    uint8_t *raw = malloc(total + 1);
    size_t cap;
    if (!tl_mul_ok(total, 3, &cap) || !tl_add_ok(cap, 1, &cap)) {
        free(raw);
        return tl_err_set(err, TL_ELIMIT, "tokenizer: decode of %zu bytes is too large", total);
    }
    char *out = malloc(cap);
    if (!raw || !out) {
        free(raw);
        free(out);
        return tl_err_set(err, TL_ENOMEM, "tokenizer: out of memory decoding %zu ids", n_ids);
    }
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *s = token_text(tok, ids[i], skip_special, &l);
        if (s) memcpy(raw + k, s, l), k += l;
    }
    size_t o = tok_utf8_lossy(raw, k, out, NULL);
    out[o] = 0;
    free(raw);
    *text = out;
    if (len) *len = o;
    return 0;
}

void tl_tok_stream_init(tl_tok_stream *s, const tl_tokenizer *tok, int skip_special) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->skip_special = skip_special;
}

size_t tl_tok_stream_cap(const tl_tokenizer *tok) { return 3 * (tok->max_token_len + 4) + 1; }

int tl_tok_stream_feed(tl_tok_stream *s, int32_t id, char *out, size_t cap, size_t *n, tl_err *err) {
    *n = 0;
    if (cap < tl_tok_stream_cap(s->tok))
        return tl_err_set(err, TL_EINVAL, "tokenizer: stream buffer of %zu bytes is below "
                          "tl_tok_stream_cap (%zu)", cap, tl_tok_stream_cap(s->tok));
    size_t l;
    const char *txt = token_text(s->tok, id, s->skip_special, &l);
    if (!txt) {
        out[0] = 0;
        return 0;
    }
    /* pending (<= 3 bytes) + this token, in one buffer. */
    uint8_t small[256], *buf = small;
    size_t m = (size_t)s->n_pending + l;
    if (m > sizeof small && !(buf = malloc(m)))
        return tl_err_set(err, TL_ENOMEM, "tokenizer: out of memory");
    memcpy(buf, s->pending, (size_t)s->n_pending);
    memcpy(buf + s->n_pending, txt, l);
    int hold;
    size_t o = tok_utf8_lossy(buf, m, out, &hold);
    memcpy(s->pending, buf + m - (size_t)hold, (size_t)hold);
    s->n_pending = hold;
    if (buf != small) free(buf);
    out[o] = 0;
    *n = o;
    return 0;
}

int tl_tok_stream_flush(tl_tok_stream *s, char *out, size_t cap, size_t *n) {
    *n = 0;
    if (cap < 16) return -TL_EINVAL;
    size_t o = tok_utf8_lossy(s->pending, (size_t)s->n_pending, out, NULL);
    s->n_pending = 0;
    out[o] = 0;
    *n = o;
    return 0;
}
