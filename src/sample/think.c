/* think.c — reasoning apart from the answer on streamed text (contract in
 * include/tallow/sample.h, tl_think_split). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow/sample.h"

static const char k_open[] = "<think>", k_close[] = "</think>";

void tl_think_split_init(tl_think_split *s, int start_in_think,
                         void (*out)(void *, int, const char *, size_t), void *ctx) {
    memset(s, 0, sizeof *s);
    s->in_think = start_in_think;
    s->after_tag = start_in_think;
    s->out = out;
    s->ctx = ctx;
}

static void split_emit(tl_think_split *s, const char *t, size_t n) {
    if (s->after_tag) {
        while (n && (*t == '\n' || *t == '\r')) t++, n--;
        if (!n) return;
        s->after_tag = 0;
    }
    s->out(s->ctx, s->in_think, t, n);
}

void tl_think_split_feed(tl_think_split *s, const char *text, size_t len) {
    size_t n = (size_t)s->n_hold + len;
    char small[512], *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) { /* no memory: pass the text through unsplit rather than lose it */
        split_emit(s, text, len);
        return;
    }
    memcpy(buf, s->hold, (size_t)s->n_hold);
    memcpy(buf + s->n_hold, text, len);
    s->n_hold = 0;
    size_t start = 0, i = 0;
    while (i < n) {
        const char *tag = s->in_think ? k_close : k_open;
        size_t tl = strlen(tag);
        if (buf[i] == '<') {
            size_t m = n - i < tl ? n - i : tl;
            if (!memcmp(buf + i, tag, m)) {
                if (i > start) split_emit(s, buf + start, i - start);
                if (m < tl) { /* a tag cut at the end of the text: wait for the rest */
                    memcpy(s->hold, buf + i, m);
                    s->n_hold = (int)m;
                    start = n;
                    break;
                }
                s->in_think = !s->in_think;
                s->after_tag = 1;
                i += tl;
                start = i;
                continue;
            }
        }
        i++;
    }
    if (start < n) split_emit(s, buf + start, n - start);
    if (buf != small) free(buf);
}

void tl_think_split_flush(tl_think_split *s) {
    if (s->n_hold) {
        int n = s->n_hold;
        s->n_hold = 0;
        split_emit(s, s->hold, (size_t)n);
    }
}
