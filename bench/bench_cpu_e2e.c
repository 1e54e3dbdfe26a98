/* bench_cpu_e2e.c — prompt and generation speed of a whole model on the CPU backend, in wall time
 * and in CPU time of the calling thread.
 *
 * `tallow bench` is the user-facing benchmark; this one exists for the shared reference VM: with
 * --threads 1 every kernel runs on the calling thread, so tokens per CPU-second of that thread
 * show what the kernels do when the core is ours, even while other processes take it away (wall
 * time then only shows the load). Prompt: random token ids, one forward pass of --pp tokens
 * (the engine chunks it by its max_batch_rows); generation: --tg passes of one token each
 * (greedy is irrelevant to speed: the next id is the previous one + 1).
 *
 * Usage: bench_cpu_e2e MODEL_DIR [--pp N] [--tg N] [--threads N] [--reps N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tallow.h"
#include "tallow/engine.h"

static double wall_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_cpu_e2e MODEL_DIR [--pp N] [--tg N] [--threads N] [--reps N]\n");
        return 2;
    }
    int pp = 128, tg = 32, threads = 1, reps = 2;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--pp") == 0) pp = v;
        else if (strcmp(argv[i], "--tg") == 0) tg = v;
        else if (strcmp(argv[i], "--threads") == 0) threads = v;
        else if (strcmp(argv[i], "--reps") == 0) reps = v;
        else {
            fprintf(stderr, "bench_cpu_e2e: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (pp < 1 || tg < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_cpu_e2e: --pp, --tg, --threads and --reps must be >= 1\n");
        return 2;
    }
    tl_engine_opts o = {0};
    o.model = argv[1];
    o.threads = threads;
    o.ctx_len = pp + tg + 8;
    tl_err err = {0};
    tl_engine *e = NULL;
    double t0 = wall_s();
    if (tl_engine_open(&e, &o, &err) < 0) {
        fprintf(stderr, "bench_cpu_e2e: %s\n", err.msg);
        return 1;
    }
    double load = wall_s() - t0;
    int V = tl_engine_info(e)->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    int32_t *ids = malloc((size_t)pp * sizeof(int32_t));
    if (!logits || !ids) return 1;
    uint32_t rng = 12345;
    for (int i = 0; i < pp; i++) {
        rng = rng * 1664525u + 1013904223u;
        ids[i] = (int32_t)((rng >> 8) % (uint32_t)(V < 1000 ? V : 1000)) + (V > 2000 ? 1000 : 0);
    }
    double bp_w = 1e30, bp_c = 1e30, bg_w = 1e30, bg_c = 1e30;
    for (int r = 0; r < reps; r++) {
        int slot = tl_slot_acquire(e, &err);
        if (slot < 0) {
            fprintf(stderr, "bench_cpu_e2e: %s\n", err.msg);
            return 1;
        }
        tl_batch_seq s = {.slot = slot, .n_tokens = pp, .tokens = ids, .want_logits = 1};
        double w0 = wall_s(), c0 = cpu_s();
        if (tl_engine_forward(e, &s, 1, logits, &err) < 0) {
            fprintf(stderr, "bench_cpu_e2e: prompt: %s\n", err.msg);
            return 1;
        }
        double w1 = wall_s(), c1 = cpu_s();
        int32_t tok = ids[pp - 1];
        for (int i = 0; i < tg; i++) {
            tok = (tok + 1) % V;
            tl_batch_seq g = {.slot = slot, .n_tokens = 1, .tokens = &tok, .want_logits = 1};
            if (tl_engine_forward(e, &g, 1, logits, &err) < 0) {
                fprintf(stderr, "bench_cpu_e2e: generation: %s\n", err.msg);
                return 1;
            }
        }
        double w2 = wall_s(), c2 = cpu_s();
        tl_slot_release(e, slot);
        if (w1 - w0 < bp_w) bp_w = w1 - w0;
        if (c1 - c0 < bp_c) bp_c = c1 - c0;
        if (w2 - w1 < bg_w) bg_w = w2 - w1;
        if (c2 - c1 < bg_c) bg_c = c2 - c1;
    }
    printf("%s: %d thread(s), load %.1f s\n", argv[1], threads, load);
    printf("  prompt %d tokens: %.1f tok/s wall", pp, pp / bp_w);
    if (threads == 1) printf(", %.1f tok per CPU-second", pp / bp_c);
    printf("\n  generation %d tokens: %.2f tok/s wall", tg, tg / bg_w);
    if (threads == 1) printf(", %.2f tok per CPU-second", tg / bg_c);
    printf("\n");
    free(logits);
    free(ids);
    tl_engine_close(e);
    return 0;
}
