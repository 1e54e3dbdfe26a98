/* fuzz_sample.c — libFuzzer target for the sample module's inputs from outside: logit bias text
 * (tl_logit_bias_parse), stop strings and streamed text (tl_stop_*), the <think> splitter, and
 * the sampler on arbitrary logits (NaN, infinities) and parameters (rejected by
 * tl_sample_params_check or handled). The first byte picks the part. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow/sample.h"

static void drop(void *ctx, int r, const char *t, size_t n) {
    (void)ctx, (void)r;
    volatile char c = n ? t[n - 1] : 0; /* touch the bytes */
    (void)c;
}

static void fuzz_text(const uint8_t *d, size_t n) {
    /* segments separated by 0: the first up to 3 are stop strings, the rest text pieces */
    const char *segs[64];
    size_t lens[64];
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && k < 64; i++)
        if (i == n || d[i] == 0) {
            segs[k] = (const char *)d + start;
            lens[k++] = i - start;
            start = i + 1;
        }
    int nstop = k < 3 ? k : 3;
    char *stops[3];
    for (int i = 0; i < nstop; i++) {
        stops[i] = malloc(lens[i] + 1);
        memcpy(stops[i], segs[i], lens[i]);
        stops[i][lens[i]] = 0;
    }
    tl_stop *s;
    tl_err err;
    tl_think_split th;
    tl_think_split_init(&th, n & 1, drop, NULL);
    if (tl_stop_new(&s, (const char *const *)stops, nstop, &err) == 0) {
        for (int i = nstop; i < k; i++) {
            const char *e;
            size_t el;
            int hit = tl_stop_feed(s, segs[i], lens[i], &e, &el, &err);
            if (el) tl_think_split_feed(&th, e, el);
            if (hit) break;
        }
        const char *e;
        size_t el;
        tl_stop_flush(s, &e, &el);
        if (el) tl_think_split_feed(&th, e, el);
        tl_stop_free(s);
    }
    tl_think_split_flush(&th);
    for (int i = 0; i < nstop; i++) free(stops[i]);
}

static void fuzz_sampler(const uint8_t *d, size_t n) {
    if (n < 40) return;
    tl_sample_params p;
    tl_sample_params_default(&p);
    memcpy(&p.temperature, d, 4);
    memcpy(&p.top_p, d + 4, 4);
    memcpy(&p.min_p, d + 8, 4);
    memcpy(&p.presence_penalty, d + 12, 4);
    memcpy(&p.frequency_penalty, d + 16, 4);
    memcpy(&p.repetition_penalty, d + 20, 4);
    p.top_k = d[24];
    p.repetition_context_size = d[25];
    p.min_keep = d[26] & 7;
    memcpy(&p.seed, d + 27, 8);
    tl_logit_bias b = {d[35], (float)(int8_t)d[36]};
    p.bias = &b;
    p.n_bias = d[37] & 1;
    p.xtc_probability = d[38] / 255.0f;
    p.xtc_threshold = d[39] / 510.0f;
    int32_t prot[2] = {d[35], d[36]};
    p.xtc_protect = prot;
    p.n_xtc_protect = d[38] & 1 ? 2 : 0;
    d += 40, n -= 40;
    int V = (int)(n / 4);
    if (V < 1 || V > 4096) return;
    tl_sampler *s;
    tl_err err;
    if (tl_sampler_new(&s, &p, V, &err)) return;
    float *l = malloc((size_t)V * 4), *probs = malloc((size_t)V * 4);
    int32_t hist[4] = {0, (int32_t)(d[0] % V), (int32_t)(d[1] % V), V - 1};
    tl_sampler_accept(s, hist, 4, 1, &err);
    for (int r = 0; r < 3; r++) {
        memcpy(l, d, (size_t)V * 4);
        int32_t t = tl_sampler_sample(s, l);
        if (t < 0 || t >= V) abort();
        tl_sampler_accept(s, &t, 1, 1, &err);
    }
    memcpy(l, d, (size_t)V * 4);
    int kept = tl_sampler_probs(s, l, probs);
    if (kept < 1 || kept > V) abort();
    free(l);
    free(probs);
    tl_sampler_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: {
        char *s = malloc(size);
        memcpy(s, data + 1, size - 1);
        s[size - 1] = 0;
        tl_logit_bias *b;
        int nb;
        tl_err err = {0};
        if (tl_logit_bias_parse(s, &b, &nb, &err) == 0) {
            /* the documented ranges: ids in [0, INT32_MAX], biases in [-100, 100] */
            TL_ALWAYS(nb >= 0 && (nb == 0 || b));
            for (int i = 0; i < nb; i++)
                TL_ALWAYS(b[i].id >= 0 && b[i].bias >= -100.0f && b[i].bias <= 100.0f);
            free(b);
        } else {
            TL_ALWAYS(err.msg[0] != 0);
        }
        free(s);
        break;
    }
    case 1: fuzz_text(data + 1, size - 1); break;
    default: fuzz_sampler(data + 1, size - 1); break;
    }
    return 0;
}
