/* bench_kernels.c — speed of the CPU backend's matmul kernels against this machine's limits.
 *
 * First it measures the peak read bandwidth (a streaming read of a 1 GiB buffer in huge pages,
 * AVX-512 loads when available, with 1 and 2 threads of the backend's pool). Then, for the
 * Qwen3.5-2B and Llama-3.2-3B matrix shapes at MLX 4-bit group 64 (random weights), it times
 *   decode:  y = x·Wᵀ for n = 1 (GEMV), reported as GB/s of weight bytes read (the repacked
 *            layout: 4-bit values + bf16 scale and bias per group = 4.5 bits/weight) and as a
 *            fraction of the measured peak;
 *   prefill: n = 512 rows (GEMM), reported as GFLOP/s (2·rows·cols·n per call).
 * Each figure is the best of several runs (the machine is shared: take the best, not the mean).
 *
 * Usage: bench_kernels [--quick] [--threads N]   (default: 1 and 2 threads)
 * Environment: TALLOW_CPU_XQ=1 runs the one-level int8 activation path (see cpu_backend.c). */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"

static double now_s(void) { return (double)tl_now_ns() * 1e-9; }

/* CPU time of the calling thread: with 1 thread all kernel work runs on the caller, so work per
 * CPU-second shows the kernel's own speed even while other processes take the cores away. */
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* AnonHugePages of this process in MiB (-1 if unknown): whether the repacked weights got 2 MiB
 * pages, which decides the read bandwidth on this VM (docs/performance.md, Addendum). */
static long huge_mib(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

/* ---- peak read bandwidth ---------------------------------------------------------------------- */
typedef struct {
    const uint8_t *buf;
    size_t bytes;
    double sink[256];
} bw_job;

__attribute__((target("avx512f"))) static double read_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (double)_mm512_reduce_add_epi64(a0);
}

static double read_plain(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a ^= x;
        b ^= y;
    }
    return (double)(a ^ b);
}

static void job_bw(void *p, int ith, int nth) {
    bw_job *j = p;
    size_t per = (j->bytes / (size_t)nth) & ~(size_t)255;
    const uint8_t *b = j->buf + per * (size_t)ith;
    j->sink[ith] = __builtin_cpu_supports("avx512f") ? read_avx512(b, per) : read_plain(b, per);
}

static double measure_bw(tl_pool *pool, const uint8_t *buf, size_t bytes, int reps) {
    bw_job j = {.buf = buf, .bytes = bytes};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        tl_pool_run(pool, job_bw, &j);
        double gbs = (double)bytes / (now_s() - t0) * 1e-9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* ---- matmul ----------------------------------------------------------------------------------- */
typedef struct {
    const char *model, *what;
    int rows, cols;
} shape;

static const shape shapes[] = {
    {"Qwen3.5-2B", "ffn up/gate 6144x2048", 6144, 2048},
    {"Qwen3.5-2B", "ffn down 2048x6144", 2048, 6144},
    {"Qwen3.5-2B", "lm_head 248320x2048", 248320, 2048},
    {"Qwen3.5-2B", "z / out_proj 2048x2048", 2048, 2048},
    {"Qwen3.5-2B", "attn k/v 512x2048", 512, 2048},
    {"Qwen3.5-4B", "ffn down 2560x9216", 2560, 9216},
    {"Llama-3.2-3B", "ffn up/gate 8192x3072", 8192, 3072},
    {"Llama-3.2-3B", "ffn down 3072x8192", 3072, 8192},
    {"Llama-3.2-3B", "lm_head 128256x3072", 128256, 3072},
};

static int bench_shape(tl_backend *be, const shape *s, int quick, double peak, int threads) {
    uint64_t rng = 88172645463325252ull; /* random weights and activations: tl_splitmix64 */
    size_t wbytes = (size_t)s->rows * s->cols / 2, ng = (size_t)s->rows * (s->cols / 64);
    uint8_t *data = malloc(wbytes);
    uint16_t *sc = malloc(ng * 2), *bi = malloc(ng * 2);
    if (!data || !sc || !bi) {
        fprintf(stderr, "bench_kernels: out of memory for %s\n", s->what);
        free(data), free(sc), free(bi);
        return -1;
    }
    for (size_t i = 0; i < wbytes; i++) data[i] = (uint8_t)tl_splitmix64(&rng);
    for (size_t i = 0; i < ng; i++) {
        sc[i] = tl_f32_to_bf16(0.001f + (float)(tl_splitmix64(&rng) % 1000) * 1e-5f);
        bi[i] = tl_f32_to_bf16(-0.01f * (float)(tl_splitmix64(&rng) % 100) * 1e-2f);
    }
    tl_wdesc d = {.name = s->what, .kind = TL_W_AFFINE, .rows = s->rows, .cols = s->cols, .dtype = TL_DT_BF16,
                  .data = data, .bits = 4, .group_size = 64, .scales = sc, .biases = bi};
    tl_wdesc_finish(&d);
    /* Several prepared copies, cycled through, so that decode streams from DRAM as in a real
     * forward pass instead of re-reading a matrix that fits the 32 MiB L3. */
    size_t read_bytes = wbytes + ng * 4;
    size_t want = quick ? (192u << 20) : (512u << 20);
    int ncopies = (int)TL_MIN((size_t)48, TL_MAX((size_t)1, want / read_bytes + 1));
    if (read_bytes > (64u << 20)) ncopies = 1;
    tl_wmat *ws[48] = {0};
    tl_err err = {0};
    for (int c = 0; c < ncopies; c++)
        if (be->weight_prepare(be, &d, &ws[c], &err) < 0) {
            fprintf(stderr, "bench_kernels: %s\n", err.msg);
            for (int k = 0; k < c; k++) be->weight_free(be, ws[k]);
            free(data), free(sc), free(bi);
            return -1;
        }
    tl_wmat *w = ws[0];
    long huge = huge_mib();
    double total_mib = (double)read_bytes * ncopies / (1 << 20);
    /* the repacked copies are all the kernels read from now on */
    free(data), free(sc), free(bi);
    int nmax = 512;
    float *x = malloc((size_t)nmax * s->cols * sizeof(float)), *y = malloc((size_t)nmax * s->rows * sizeof(float));
    for (size_t i = 0; i < (size_t)nmax * s->cols; i++) x[i] = (float)((int)(tl_splitmix64(&rng) % 2001) - 1000) * 1e-3f;
    /* decode: n = 1, best of several passes over all copies */
    int passes = read_bytes > (64u << 20) ? (quick ? 3 : 8) : (quick ? 3 : 6);
    double best = 1e30;
    for (int c = 0; c < ncopies; c++) be->matmul(be, ws[c], x, y, 1);
    for (int r = 0; r < passes; r++) {
        double t0 = now_s();
        for (int c = 0; c < ncopies; c++) be->matmul(be, ws[c], x, y, 1);
        double t = (now_s() - t0) / ncopies;
        if (t < best) best = t;
    }
    double gbs = (double)read_bytes / best * 1e-9;
    printf("| %-12s | %-22s | %d | decode n=1 | %8.3f ms | %6.1f GB/s | %3.0f%% of peak | %.0f%% |\n", s->model,
           s->what, threads, best * 1e3, gbs, 100 * gbs / peak,
           huge < 0 ? 0.0 : TL_MIN(100.0, 100.0 * (double)huge / total_mib));
    /* prefill: n = 512 (not for the lm_head: only the last position goes through it) */
    if (s->rows < 100000) {
        int n = quick ? 128 : 512, preps = quick ? 2 : 3;
        double bcpu = 1e30;
        best = 1e30;
        for (int r = 0; r < preps; r++) {
            double t0 = now_s(), c0 = cpu_s();
            be->matmul(be, w, x, y, n);
            double t = now_s() - t0, ct = cpu_s() - c0;
            if (t < best) best = t;
            if (ct < bcpu) bcpu = ct;
        }
        double flop = 2.0 * s->rows * s->cols * n;
        char cpu_col[64] = "";
        if (threads == 1) snprintf(cpu_col, sizeof cpu_col, "%.1f per CPU-second", flop / bcpu * 1e-9);
        printf("| %-12s | %-22s | %d | prefill n=%d | %8.3f ms | %6.1f GFLOP/s | %s | |\n", s->model, s->what,
               threads, n, best * 1e3, flop / best * 1e-9, cpu_col);
    }
    fflush(stdout);
    free(x);
    free(y);
    for (int c = 0; c < ncopies; c++) be->weight_free(be, ws[c]);
    return 0;
}

int main(int argc, char **argv) {
    int quick = 0, only_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) only_threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_kernels [--quick] [--threads N]\n");
            return 2;
        }
    }
    size_t bytes = quick ? (256u << 20) : (1u << 30);
    uint8_t *buf = tl_alloc_huge(bytes, TL_MEM_SCRATCH);
    if (!buf) {
        fprintf(stderr, "bench_kernels: cannot allocate %zu bytes\n", bytes);
        return 1;
    }
    memset(buf, 1, bytes);
    double peak[3] = {0};
    for (int t = 1; t <= 2; t++) {
        tl_pool *pool;
        tl_err err = {0};
        if (tl_pool_new(&pool, t, &err) < 0) {
            fprintf(stderr, "bench_kernels: %s\n", err.msg);
            return 1;
        }
        peak[t] = measure_bw(pool, buf, bytes, quick ? 3 : 8);
        tl_pool_free(pool);
    }
    tl_free(buf, bytes, TL_MEM_SCRATCH);
    printf("peak read bandwidth (%zu MiB, huge pages, best of runs): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n",
           bytes >> 20, peak[1], peak[2]);
    const char *xq = getenv("TALLOW_CPU_XQ");
    printf("activations: %s-level int8\n\n", xq && strcmp(xq, "1") == 0 ? "one" : "two");
    printf("| model | matrix (rows x cols, 4-bit gs64) | threads | test | time | speed | vs peak | in huge pages |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int t = 1; t <= 2; t++) {
        if (only_threads && t != only_threads) continue;
        tl_err err = {0};
        tl_backend *be = tl_backend_cpu_new(t, &err);
        if (!be) {
            fprintf(stderr, "bench_kernels: %s\n", err.msg);
            return 1;
        }
        if (t == 1 || only_threads) fprintf(stderr, "kernels: %s\n", tl_backend_cpu_isa(be));
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            if (bench_shape(be, &shapes[i], quick, peak[t], t) < 0) return 1;
        be->destroy(be);
    }
    return 0;
}
