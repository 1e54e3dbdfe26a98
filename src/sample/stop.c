/* stop.c — stop strings matched on decoded text across token boundaries (contract in
 * include/tallow/sample.h). Text that could still grow into a stop string is held back; once a
 * stop string completes, the text before it is released and everything after is dropped. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow/sample.h"

struct tl_stop {
    int n;
    char **strs;
    size_t *lens;
    size_t max_len;
    tl_strbuf pend;    /* held-back text */
    tl_strbuf out;     /* what the last call released */
    int matched;       /* index of the stop string that matched, -1 */
};

void tl_stop_free(tl_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->strs[i]);
    free(s->strs);
    free(s->lens);
    free(s->pend.p);
    free(s->out.p);
    free(s);
}

int tl_stop_new(tl_stop **out, const char *const *strs, int n, tl_err *err) {
    *out = NULL;
    if (n < 0) return tl_err_set(err, TL_EINVAL, "stop strings: negative count");
    tl_stop *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
    s->matched = -1;
    if (n > 0) {
        s->strs = calloc((size_t)n, sizeof *s->strs);
        s->lens = calloc((size_t)n, sizeof *s->lens);
        if (!s->strs || !s->lens) goto oom;
    }
    for (int i = 0; i < n; i++) {
        if (!strs[i] || !*strs[i]) {
            tl_stop_free(s);
            return tl_err_set(err, TL_EINVAL, "stop string %d is empty", i + 1);
        }
        s->strs[i] = strdup(strs[i]);
        if (!s->strs[i]) goto oom;
        s->n = i + 1;
        s->lens[i] = strlen(strs[i]);
        if (s->lens[i] > s->max_len) s->max_len = s->lens[i];
    }
    s->n = n;
    *out = s;
    return 0;
oom:
    tl_stop_free(s);
    return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
}

void tl_stop_reset(tl_stop *s) {
    s->pend.n = 0;
    s->matched = -1;
}

int tl_stop_matched(const tl_stop *s) { return s->matched; }

/* Length of the longest suffix of text[0..n) that is a proper prefix of some stop string. */
static size_t held_suffix(const tl_stop *s, const char *text, size_t n) {
    size_t k = s->max_len ? s->max_len - 1 : 0;
    if (k > n) k = n;
    for (; k > 0; k--)
        for (int i = 0; i < s->n; i++)
            if (s->lens[i] > k && !memcmp(text + n - k, s->strs[i], k)) return k;
    return 0;
}

int tl_stop_feed(tl_stop *s, const char *text, size_t len, const char **emit, size_t *emit_len,
                 tl_err *err) {
    *emit = "";
    *emit_len = 0;
    if (s->matched >= 0) return 1;
    if (tl_strbuf_add(&s->pend, text, len) < 0)
        return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
    const char *pend = s->pend.p;
    size_t n_pend = s->pend.n;
    /* earliest complete stop string; on equal starts the longer one */
    size_t best = SIZE_MAX;
    int which = -1;
    for (int i = 0; i < s->n; i++) {
        const char *hit = memmem(pend, n_pend, s->strs[i], s->lens[i]);
        if (!hit) continue;
        size_t at = (size_t)(hit - pend);
        if (at < best || (at == best && s->lens[i] > s->lens[which])) {
            best = at;
            which = i;
        }
    }
    size_t release = which >= 0 ? best : n_pend - held_suffix(s, pend, n_pend);
    s->out.n = 0;
    if (tl_strbuf_add(&s->out, pend, release) < 0)
        return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
    *emit = s->out.p;
    *emit_len = release;
    if (which >= 0) {
        s->matched = which;
        s->pend.n = 0;
        return 1;
    }
    memmove(s->pend.p, pend + release, n_pend - release);
    s->pend.n -= release;
    return 0;
}

void tl_stop_flush(tl_stop *s, const char **emit, size_t *emit_len) {
    *emit = "";
    *emit_len = 0;
    if (s->matched >= 0 || s->pend.n == 0) return;
    s->out.n = 0;
    if (tl_strbuf_add(&s->out, s->pend.p, s->pend.n) < 0) return;
    *emit = s->out.p;
    *emit_len = s->pend.n;
    s->pend.n = 0;
}
