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
    char *pend;        /* held-back text */
    size_t n_pend, cap_pend;
    char *out;         /* what the last call released */
    size_t cap_out;
    int matched;       /* index of the stop string that matched, -1 */
};

void tl_stop_free(tl_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->strs[i]);
    free(s->strs);
    free(s->lens);
    free(s->pend);
    free(s->out);
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
    s->n_pend = 0;
    s->matched = -1;
}

int tl_stop_matched(const tl_stop *s) { return s->matched; }

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *nb = realloc(*buf, c);
    if (!nb) return -1;
    *buf = nb;
    *cap = c;
    return 0;
}

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
    if (len > SIZE_MAX / 2 - s->n_pend || grow(&s->pend, &s->cap_pend, s->n_pend + len + 1))
        return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
    memcpy(s->pend + s->n_pend, text, len);
    s->n_pend += len;
    /* earliest complete stop string; on equal starts the longer one */
    size_t best = SIZE_MAX;
    int which = -1;
    for (int i = 0; i < s->n; i++) {
        const char *hit = memmem(s->pend, s->n_pend, s->strs[i], s->lens[i]);
        if (!hit) continue;
        size_t at = (size_t)(hit - s->pend);
        if (at < best || (at == best && s->lens[i] > s->lens[which])) {
            best = at;
            which = i;
        }
    }
    size_t release = which >= 0 ? best : s->n_pend - held_suffix(s, s->pend, s->n_pend);
    if (grow(&s->out, &s->cap_out, release + 1))
        return tl_err_set(err, TL_ENOMEM, "stop strings: out of memory");
    memcpy(s->out, s->pend, release);
    s->out[release] = 0;
    *emit = s->out;
    *emit_len = release;
    if (which >= 0) {
        s->matched = which;
        s->n_pend = 0;
        return 1;
    }
    memmove(s->pend, s->pend + release, s->n_pend - release);
    s->n_pend -= release;
    return 0;
}

void tl_stop_flush(tl_stop *s, const char **emit, size_t *emit_len) {
    *emit = "";
    *emit_len = 0;
    if (s->matched >= 0 || s->n_pend == 0) return;
    if (grow(&s->out, &s->cap_out, s->n_pend + 1)) return;
    memcpy(s->out, s->pend, s->n_pend);
    s->out[s->n_pend] = 0;
    *emit = s->out;
    *emit_len = s->n_pend;
    s->n_pend = 0;
}
