/* bench_qwen35_gdn.c — prefill speed of the Gated DeltaNet delta rule at the Qwen3.5-2B shape
 * (16 key heads, 16 value heads, dk = dv = 128) and the 4B shape (32 value heads): the exact
 * recurrence (ref, cpu backend) against the chunked form (§1.4 step 8) at several chunk sizes.
 * Prints tokens per CPU-second of one layer (one thread); decides where the chunked form is used.
 *   usage: bench_qwen35_gdn [tokens=256] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_gdn.h"
#include "backend/ref/ref_gdn.h"

/* CPU time of this thread: on a shared machine wall time measures the neighbours. The kernels
 * compared here run on the calling thread (threads = 1). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(float *x, size_t n, uint32_t seed, float scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 2.0f * scale;
    }
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 256, threads = 1;
    const int Hk = 16, dk = 128, dv = 128, K = 4;
    for (int hv = 16; hv <= 32; hv *= 2) {
        int conv = 2 * Hk * dk + hv * dv;
        float *qkv = malloc((size_t)T * conv * sizeof(float));
        float *a = malloc((size_t)T * hv * sizeof(float)), *b = malloc((size_t)T * hv * sizeof(float));
        float *out = malloc((size_t)T * hv * dv * sizeof(float));
        float alog[32], dtb[32];
        fill(qkv, (size_t)T * conv, 1, 1.0f);
        fill(a, (size_t)T * hv, 2, 2.0f);
        fill(b, (size_t)T * hv, 3, 2.0f);
        fill(alog, 32, 4, 1.0f);
        fill(dtb, 32, 5, 1.0f);
        int32_t *slot = calloc((size_t)T, sizeof *slot), *pos = malloc((size_t)T * sizeof *pos);
        for (int i = 0; i < T; i++) pos[i] = i;
        tl_rows rows = {.n = T, .slot = slot, .pos = pos};
        float *rec = calloc((size_t)hv * dk * dv, sizeof(float));
        float *cst = calloc((size_t)(K - 1) * conv, sizeof(float));
        tl_gdn_state st = {.max_slots = 1, .conv_dim = conv, .conv_k = K, .n_v_heads = hv,
                           .n_k_heads = Hk, .dk = dk, .dv = dv, .conv = cst, .rec = rec};
        printf("Qwen3.5 %s shape (Hv=%d), %d tokens, one layer:\n", hv == 16 ? "2B" : "4B", hv, T);

        double t0 = now_s();
        tl_ref_gdn_rule(NULL, out, qkv, a, b, alog, dtb, &st, &rows);
        double t = now_s() - t0;
        printf("  exact, ref (scalar, double sums)   %8.1f tok/s\n", T / t);

        const int chunks[] = {16, 32, 64};
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            float *scr = malloc(tl_gdn_chunk_scratch_floats(chunks[c], dk, dv) * sizeof(float));
            t0 = now_s();
            tl_gdn_rule_chunked(out, qkv, a, b, alog, dtb, &st, &rows, chunks[c], scr);
            t = now_s() - t0;
            printf("  chunked C=%-2d (scalar)             %8.1f tok/s\n", chunks[c], T / t);
            free(scr);
        }
        if (tl_cpu_gdn_chunked_ok(&st)) {
            for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
                float *scr = malloc(tl_cpu_gdn_chunk_scratch_floats(chunks[c], dk, dv) * sizeof(float));
                tl_cpu_gdn_rule_chunked(out, qkv, a, b, alog, dtb, &st, &rows, chunks[c], 0, hv, scr);
                t0 = now_s();
                tl_cpu_gdn_rule_chunked(out, qkv, a, b, alog, dtb, &st, &rows, chunks[c], 0, hv, scr);
                t = now_s() - t0;
                printf("  chunked C=%-2d (AVX-512, 1 thread)  %8.1f tok/s\n", chunks[c], T / t);
                free(scr);
            }
        }
        tl_err err = {0};
        tl_backend *be = tl_backend_cpu_new(threads, &err);
        if (be) {
            float *qkv_d = be->alloc(be, (size_t)T * conv, TL_MEM_SCRATCH);
            float *out_d = be->alloc(be, (size_t)T * hv * dv, TL_MEM_SCRATCH);
            be->to_device(be, qkv_d, qkv, (size_t)T * conv * sizeof(float));
            be->gdn_rule(be, out_d, qkv_d, a, b, alog, dtb, &st, &rows); /* warm-up */
            t0 = now_s();
            be->gdn_rule(be, out_d, qkv_d, a, b, alog, dtb, &st, &rows);
            be->sync(be);
            t = now_s() - t0;
            printf("  exact, cpu backend (%d thread%s)     %8.1f tok/s\n", threads,
                   threads > 1 ? "s" : " ", T / t);
            be->free(be, qkv_d, (size_t)T * conv, TL_MEM_SCRATCH);
            be->free(be, out_d, (size_t)T * hv * dv, TL_MEM_SCRATCH);
            be->destroy(be);
        }
        free(qkv), free(a), free(b), free(out), free(slot), free(pos), free(rec), free(cst);
    }
    return 0;
}
