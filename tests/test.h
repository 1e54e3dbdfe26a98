/* test.h — the smallest test harness: CHECK records a failure with file:line and goes on;
 * test_done() prints "N passed, N failed" and returns the exit code (77 = skipped). */
#ifndef TL_TEST_H
#define TL_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) t_pass++;                                                                        \
        else {                                                                                     \
            t_fail++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (cond) t_pass++;                                                                        \
        else {                                                                                     \
            t_fail++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    CHECKF(strcmp((a), (b)) == 0, "\n  got:      \"%s\"\n  expected: \"%s\"", (a), (b))

/* Path of the shared fixtures (../shared beside the checkout), or NULL when absent. */
static inline const char *test_shared_dir(void) {
    const char *e = getenv("TALLOW_SHARED");
    static char buf[4096];
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "../shared/fixtures");
    FILE *f = fopen("../shared/fixtures/MANIFEST.md", "r");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

static inline int test_skip(const char *why) {
    printf("SKIPPED: %s\n", why);
    return 77;
}

/* Run cmd through the shell; its stdout into out (NUL-terminated, at most cap - 1 bytes);
 * returns its exit code, -1 when it could not run or did not exit. */
static inline int test_run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Block `name` of a golden text file (blocks "name count" then count numbers; '#' starts a
 * comment line), as malloc'd doubles with *n = count; NULL when absent or cut short. Written by
 * tools/make_tiny_models.py and tools/make_tiny_qwen35.py / qwen35_common.py. */
static inline double *test_golden(const char *path, const char *name, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char tok[128];
    double *out = NULL;
    while (fscanf(f, "%127s", tok) == 1) {
        if (tok[0] == '#') {
            int c;
            while ((c = fgetc(f)) != '\n' && c != EOF) {
            }
            continue;
        }
        int cnt;
        if (fscanf(f, "%d", &cnt) != 1 || cnt < 0) break;
        int want = strcmp(tok, name) == 0;
        double *v = want ? malloc((size_t)(cnt ? cnt : 1) * sizeof(double)) : NULL;
        int i = 0;
        for (double x; i < cnt && fscanf(f, "%lf", &x) == 1; i++)
            if (v) v[i] = x;
        if (want) {
            if (v && i == cnt) {
                out = v;
                *n = (size_t)cnt;
            } else {
                free(v);
            }
            break;
        }
        if (i < cnt) break;
    }
    fclose(f);
    return out;
}

static inline int test_done(void) {
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : (t_pass ? 0 : 77);
}
#endif
