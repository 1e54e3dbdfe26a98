/* core.c — errors, counted memory, clock, files. */
#define _GNU_SOURCE
#include "core/core.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

int tl_err_set(tl_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return -code;
}

int tl_err_prefix(tl_err *err, const char *fmt, ...) {
    if (!err) return -TL_EINVAL;
    char pre[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", pre, old);
    return -(err->code ? err->code : TL_EINVAL);
}

__attribute__((noreturn)) void tl_panic(const char *file, int line, const char *what) {
    fprintf(stderr, "tallow: internal error at %s:%d: %s\n", file, line, what);
    abort();
}

/* ---- memory ---- */
static _Atomic int64_t g_cur[TL_MEM_KINDS], g_peak[TL_MEM_KINDS];
static _Atomic int64_t g_cur_total, g_peak_total;

static void atomic_max(_Atomic int64_t *a, int64_t v) {
    int64_t old = atomic_load(a);
    while (v > old && !atomic_compare_exchange_weak(a, &old, v)) {
    }
}

void tl_mem_add(tl_mem_kind kind, int64_t delta) {
    if ((unsigned)kind >= TL_MEM_KINDS) kind = TL_MEM_OTHER;
    int64_t c = atomic_fetch_add(&g_cur[kind], delta) + delta;
    int64_t t = atomic_fetch_add(&g_cur_total, delta) + delta;
    if (delta > 0) {
        atomic_max(&g_peak[kind], c);
        atomic_max(&g_peak_total, t);
    }
}

void tl_mem_get(tl_mem_stats *out) {
    for (int k = 0; k < TL_MEM_KINDS; k++) {
        out->cur[k] = atomic_load(&g_cur[k]);
        out->peak[k] = atomic_load(&g_peak[k]);
    }
    out->cur_total = atomic_load(&g_cur_total);
    out->peak_total = atomic_load(&g_peak_total);
}

void tl_mem_reset_peak(void) {
    for (int k = 0; k < TL_MEM_KINDS; k++) atomic_store(&g_peak[k], atomic_load(&g_cur[k]));
    atomic_store(&g_peak_total, atomic_load(&g_cur_total));
}

const char *tl_mem_kind_name(tl_mem_kind k) {
    static const char *names[] = {"weights", "kv", "state", "scratch", "other"};
    return (unsigned)k < TL_MEM_KINDS ? names[k] : "?";
}

void *tl_alloc(size_t n, tl_mem_kind kind) {
    if (n == 0) n = 1;
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, r) != 0) return NULL;
    memset(p, 0, r);
    tl_mem_add(kind, (int64_t)n);
    return p;
}

void *tl_alloc_huge(size_t n, tl_mem_kind kind) {
    if (n < (4u << 20)) return tl_alloc(n, kind);
    size_t r = (n + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    void *p = NULL;
    if (posix_memalign(&p, 2u << 20, r) != 0) return NULL;
    madvise(p, r, MADV_HUGEPAGE);
    memset(p, 0, r);
    tl_mem_add(kind, (int64_t)n);
    return p;
}

void tl_free(void *p, size_t n, tl_mem_kind kind) {
    if (!p) return;
    if (n == 0) n = 1;
    free(p);
    tl_mem_add(kind, -(int64_t)n);
}

/* ---- clock ---- */
static uint64_t (*g_fake_clock)(void *);
static void *g_fake_ctx;

uint64_t tl_now_ns(void) {
    if (g_fake_clock) return g_fake_clock(g_fake_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tl_clock_set_fake(uint64_t (*fn)(void *), void *ctx) {
    g_fake_clock = fn;
    g_fake_ctx = ctx;
}

/* ---- files ---- */
int tl_read_file(const char *path, size_t max_bytes, char **out, size_t *len, tl_err *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return tl_err_set(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tl_err_set(err, TL_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return tl_err_set(err, TL_ELIMIT, "%s: file is %lld bytes, over the limit of %zu", path,
                          (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return tl_err_set(err, TL_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return tl_err_set(err, TL_EIO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
}

int tl_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int tl_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tl_path_join(char *buf, size_t cap, const char *a, const char *b) {
    int n = snprintf(buf, cap, "%s%s%s", a, (a[0] && a[strlen(a) - 1] != '/') ? "/" : "", b);
    return (n < 0 || (size_t)n >= cap) ? -TL_EINVAL : 0;
}

int tl_mkdir_p(const char *dir) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return errno = ENAMETOOLONG, -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* ---- f16 ---- */
float tl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

uint16_t tl_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t x = v.u, sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

int tl_strbuf_add(tl_strbuf *b, const char *s, size_t n) {
    size_t need;
    if (!tl_add_ok(b->n, n, &need) || !tl_add_ok(need, 1, &need)) return -TL_ENOMEM;
    if (need > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < need) {
            if (c > SIZE_MAX / 2) return -TL_ENOMEM;
            c *= 2;
        }
        char *np = realloc(b->p, c);
        if (!np) return -TL_ENOMEM;
        b->p = np;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}
