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

static inline int test_done(void) {
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : (t_pass ? 0 : 77);
}
#endif
