/* membw.c — the machine's peak read bandwidth, the roofline that decode is measured against.
 * Threads each stream their share of a large buffer (summing with wide loads), best of several
 * passes; the result is cached in ~/.cache/tallow/membw-<threads>.txt with the CPU's name so a
 * bench run does not pay for it every time. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *bar;
    int passes;
    double *best;
    int id;
} bw_job;

static void *bw_worker(void *arg) {
    bw_job *j = arg;
    for (int pass = 0; pass < j->passes; pass++) {
        pthread_barrier_wait(j->bar);
        uint64_t t0 = tl_now_ns();
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const uint64_t *p = j->p;
        for (size_t i = 0; i + 8 <= j->n; i += 8) {
            s0 += p[i] ^ p[i + 4];
            s1 += p[i + 1] ^ p[i + 5];
            s2 += p[i + 2] ^ p[i + 6];
            s3 += p[i + 3] ^ p[i + 7];
        }
        j->sum += s0 + s1 + s2 + s3;
        pthread_barrier_wait(j->bar);
        if (j->id == 0) {
            double s = (double)(tl_now_ns() - t0) * 1e-9;
            if (s > 0 && (j->best[0] == 0 || s < j->best[0])) j->best[0] = s;
        }
    }
    return NULL;
}

double tl_membw_measure(int threads, size_t bytes, int passes) {
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    size_t words = bytes / 8 / (size_t)threads / 8 * 8 * (size_t)threads;
    uint64_t *buf = tl_alloc_huge(words * 8, TL_MEM_SCRATCH);
    if (!buf) return 0.0;
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    bw_job jobs[256];
    pthread_t tid[256];
    double best = 0;
    size_t per = words / (size_t)threads;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (bw_job){buf + per * (size_t)t, per, 0, &bar, passes, &best, t};
        if (t > 0) pthread_create(&tid[t], NULL, bw_worker, &jobs[t]);
    }
    bw_worker(&jobs[0]);
    uint64_t sink = jobs[0].sum;
    for (int t = 1; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sink += jobs[t].sum;
    }
    pthread_barrier_destroy(&bar);
    tl_free(buf, words * 8, TL_MEM_SCRATCH);
    if (sink == 42) fputc(' ', stderr); /* keep the reads */
    return best > 0 ? (double)(per * (size_t)threads * 8) / best * 1e-9 : 0.0;
}

void tl_membw_cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

double tl_membw_cpu_peak(int threads, int force, char *cpu_name, size_t cap) {
    char name[256];
    tl_membw_cpu_name(name, sizeof name);
    if (cpu_name) snprintf(cpu_name, cap, "%s", name);
    const char *home = getenv("HOME");
    char dir[1024] = "", path[1200] = "";
    if (home && *home) {
        snprintf(dir, sizeof dir, "%s/.cache/tallow", home);
        snprintf(path, sizeof path, "%s/membw-%d.txt", dir, threads);
    }
    if (!force && path[0]) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[512], cached[256] = "";
            double v = 0;
            if (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(cached, sizeof cached, "%s", line);
            }
            int ok = fscanf(f, "%lf", &v) == 1;
            fclose(f);
            if (ok && v > 0 && !strcmp(cached, name)) return v;
        }
    }
    double bw = tl_membw_measure(threads, (size_t)1 << 30, 4);
    if (bw > 0 && path[0]) {
        tl_mkdir_p(dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%s\n%.3f\n", name, bw);
            fclose(f);
        }
    }
    return bw;
}
