/* pool.c — the CPU backend's persistent thread pool.
 *
 * Design: n-1 workers are created once; the caller is thread 0. A run publishes (fn, ctx), bumps
 * a generation counter and does its own share; each worker waits for the generation to change,
 * runs its share and decrements `pending`; the caller spins (then yields) until pending is 0.
 * Waiting workers spin briefly (ops of one forward pass follow each other within microseconds)
 * and then sleep on a futex; the caller only issues the wake syscall when someone sleeps
 * (`sleeping` and `gen` are both seq_cst, so a worker that goes to sleep after the caller looked
 * sees the new generation inside futex_wait and returns at once). Nothing is allocated per run.
 * One run at a time: the pool belongs to one backend and ops are issued from one thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"

#define POOL_SPIN 20000

struct tl_pool {
    int n;
    pthread_t *th;
    _Atomic uint32_t gen;
    _Atomic int pending;
    _Atomic int sleeping;
    _Atomic int stop;
    tl_pool_fn fn;
    void *ctx;
};

typedef struct {
    tl_pool *p;
    int ith;
} pool_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void *pool_worker(void *argp) {
    pool_arg a = *(pool_arg *)argp;
    free(argp);
    tl_pool *p = a.p;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen) {
            if (++spins < POOL_SPIN) {
                cpu_relax();
                continue;
            }
            atomic_fetch_add(&p->sleeping, 1);
            futex_wait(&p->gen, seen);
            atomic_fetch_sub(&p->sleeping, 1);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&p->stop)) break;
        p->fn(p->ctx, a.ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

int tl_pool_new(tl_pool **out, int threads, tl_err *err) {
    *out = NULL;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)c : 1;
    }
    if (threads > 256) return tl_err_set(err, TL_EINVAL, "cpu backend: %d threads is too many (max 256)", threads);
    tl_pool *p = calloc(1, sizeof *p);
    if (!p) return tl_err_set(err, TL_ENOMEM, "cpu backend: out of memory for the thread pool");
    p->n = threads;
    p->th = calloc((size_t)threads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return tl_err_set(err, TL_ENOMEM, "cpu backend: out of memory for the thread pool");
    }
    for (int i = 1; i < threads; i++) {
        pool_arg *a = malloc(sizeof *a);
        int rc = ENOMEM;
        if (a) {
            a->p = p;
            a->ith = i;
            rc = pthread_create(&p->th[i], NULL, pool_worker, a);
        }
        if (rc != 0) {
            free(a);
            p->n = i; /* workers 1..i-1 exist: stop them */
            tl_pool_free(p);
            return tl_err_set(err, TL_ENOMEM, "cpu backend: cannot start worker thread %d of %d: %s",
                              i, threads, strerror(rc));
        }
    }
    *out = p;
    return 0;
}

int tl_pool_size(const tl_pool *p) { return p->n; }

void tl_pool_run(tl_pool *p, tl_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleeping) > 0) futex_wake_all(&p->gen);
    fn(ctx, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < POOL_SPIN) cpu_relax();
        else sched_yield();
    }
}

void tl_pool_free(tl_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        futex_wake_all(&p->gen);
        for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    }
    free(p->th);
    free(p);
}
