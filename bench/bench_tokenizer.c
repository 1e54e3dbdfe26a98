/* bench_tokenizer.c — tokenizer speed, single thread: load time, encode and decode MB/s.
 *
 * usage: bench_tokenizer TOKENIZER_JSON [TEXT_FILE] [--mb N] [--lines]
 * --lines encodes each line (with its newline) as its own call, the way prompts arrive, instead
 * of the whole text in one call.
 * Without TEXT_FILE the text is tests/data/tok/corpus.jsonl's strings joined by "\n" and
 * repeated to N MB (default 8) — tools/bench_tokenizer.py builds the same text for Hugging Face
 * `tokenizers`, so the two figures compare. Best of 3 runs after a warm-up run. Times are the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a machine shared with other work still gives
 * comparable figures; the Python side uses time.thread_time(). */
#include <jansson.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow.h"

static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char *corpus_text(size_t want, size_t *n) {
    char *raw;
    size_t rl;
    tl_err err = {0};
    if (tl_read_file("tests/data/tok/corpus.jsonl", 64u << 20, &raw, &rl, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *one = malloc(cap);
    for (char *p = raw; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, NULL);
        json_t *t = json_object_get(o, "t");
        if (t) {
            size_t l = json_string_length(t);
            while (len + l + 1 > cap) one = realloc(one, cap *= 2);
            memcpy(one + len, json_string_value(t), l);
            len += l;
            one[len++] = '\n';
        }
        json_decref(o);
        p = nl + 1;
    }
    free(raw);
    char *out = malloc(want + len);
    size_t k = 0;
    while (k < want) {
        memcpy(out + k, one, len);
        k += len;
    }
    free(one);
    *n = k;
    return out;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_JSON [TEXT_FILE] [--mb N]\n");
        return 2;
    }
    const char *file = NULL;
    double mb = 8;
    int lines = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--lines")) lines = 1;
        else file = argv[i];
    }
    tl_err err = {0};
    tl_tokenizer *tok;
    uint64_t t0 = cpu_ns();
    if (tl_tok_load(argv[1], &tok, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double load_s = (double)(cpu_ns() - t0) / 1e9;
    char *text;
    size_t n;
    if (file) {
        if (tl_read_file(file, 1u << 30, &text, &n, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    } else {
        text = corpus_text((size_t)(mb * 1e6), &n);
        if (!text) return 1;
    }
    double best_enc = 1e30, best_dec = 1e30;
    int32_t *ids = NULL;
    size_t nid = 0;
    char *back = NULL;
    size_t bl = 0;
    for (int r = 0; r < 4; r++) {
        free(ids);
        t0 = cpu_ns();
        if (!lines) {
            if (tl_tok_encode(tok, text, n, 0, &ids, &nid, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
        } else { /* one call per line; the ids are gathered for the decode below */
            size_t cap = n / 2 + 16;
            ids = malloc(cap * sizeof *ids);
            nid = 0;
            for (size_t at = 0; at < n;) {
                const char *nl = memchr(text + at, '\n', n - at);
                size_t l = nl ? (size_t)(nl - (text + at)) + 1 : n - at;
                int32_t *li;
                size_t ln;
                if (tl_tok_encode(tok, text + at, l, 0, &li, &ln, &err)) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                if (nid + ln > cap) ids = realloc(ids, (cap = 2 * (nid + ln)) * sizeof *ids);
                memcpy(ids + nid, li, ln * sizeof *li);
                nid += ln;
                free(li);
                at += l;
            }
        }
        double e = (double)(cpu_ns() - t0) / 1e9;
        free(back);
        t0 = cpu_ns();
        if (tl_tok_decode(tok, ids, nid, 0, &back, &bl, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double d = (double)(cpu_ns() - t0) / 1e9;
        if (r > 0 && e < best_enc) best_enc = e;
        if (r > 0 && d < best_dec) best_dec = d;
    }
    printf("tallow  %s load %.3f s (cpu)  text %.2f MB  %zu ids  encode %.1f MB/s  decode %.1f MB/s  "
           "roundtrip %s\n", lines ? "lines" : "whole", load_s, (double)n / 1e6, nid, (double)n / 1e6 / best_enc,
           (double)bl / 1e6 / best_dec, bl == n && !memcmp(back, text, n) ? "exact" : "differs");
    free(ids);
    free(back);
    free(text);
    tl_tok_free(tok);
    return 0;
}
