/* core.h — what every layer of tallow uses: errors as values, counted memory,
 * a clock that tests can drive, and a few checked-arithmetic helpers.
 *
 * Contract: library functions return int (0 = ok, negative = TL_E* code) and,
 * on failure, fill a tl_err with a message that names what is wrong and where
 * (file, tensor, byte offset, JSON path). Only main() exits. */
#ifndef TL_CORE_H
#define TL_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tallow.h"

#define TL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Set err (if non-NULL) and return -code so callers can `return tl_err_set(...)`. */
int tl_err_set(tl_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepend context ("while loading X: ") to an existing message; returns -err->code. */
int tl_err_prefix(tl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Always-on invariant for the program's own logic (never for input): prints and aborts. */
#define TL_ALWAYS(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) tl_panic(__FILE__, __LINE__, #cond);                                          \
    } while (0)
__attribute__((noreturn)) void tl_panic(const char *file, int line, const char *what);

/* ---- counted memory -------------------------------------------------------------------------
 * Every long-lived or large allocation goes through here so that peak memory is exact and the
 * server can refuse work before a limit is passed. Small parser allocations may use malloc. */
void *tl_alloc(size_t n, tl_mem_kind kind);         /* zeroed, 64-byte aligned; NULL on failure */
void *tl_alloc_huge(size_t n, tl_mem_kind kind);    /* like tl_alloc, tries transparent huge pages */
void tl_free(void *p, size_t n, tl_mem_kind kind);  /* n must be what was asked for */
/* Account for memory allocated elsewhere (mmap'd weights resident, device memory). */
void tl_mem_add(tl_mem_kind kind, int64_t delta);

/* ---- checked size arithmetic ---------------------------------------------------------------- */
static inline int tl_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int tl_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- time ----------------------------------------------------------------------------------- */
/* Monotonic nanoseconds. Tests may replace the source with tl_clock_set_fake(). */
uint64_t tl_now_ns(void);
void tl_clock_set_fake(uint64_t (*fn)(void *), void *ctx); /* NULL restores the real clock */

/* ---- files ---------------------------------------------------------------------------------- */
/* Read a whole file (NUL-terminated, len excludes the NUL). Fails cleanly past max_bytes. */
int tl_read_file(const char *path, size_t max_bytes, char **out, size_t *len, tl_err *err);
int tl_file_exists(const char *path);
int tl_dir_exists(const char *path);
/* snprintf into buf; returns -TL_EINVAL if it would not fit. */
int tl_path_join(char *buf, size_t cap, const char *a, const char *b);
/* mkdir -p (mode 0755): 0, or -1 with errno set (ENAMETOOLONG over 4095 bytes). */
int tl_mkdir_p(const char *dir);

/* ---- growable text -------------------------------------------------------------------------- */
typedef struct tl_strbuf {
    char *p;     /* NUL-terminated once anything was added; NULL before; owned (free(p)) */
    size_t n, cap;
} tl_strbuf;
/* Append n bytes of s, keeping a NUL after them. 0, or -TL_ENOMEM with the buffer unchanged. */
int tl_strbuf_add(tl_strbuf *b, const char *s, size_t n);

/* splitmix64: advances *x and returns its next well-mixed value (seeds, keys, test data). */
static inline uint64_t tl_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* bf16 / f16 <-> f32 */
static inline float tl_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
static inline uint16_t tl_f32_to_bf16(float f) { /* round to nearest even, NaN kept */
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(r >> 16);
}
float tl_f16_to_f32(uint16_t h);
uint16_t tl_f32_to_f16(float f);

#endif
