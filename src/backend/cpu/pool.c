/* pool.c — the CPU backend's persistent thread pool.
 *
 * Design: n-1 workers are created once; the caller is thread 0. A run publishes (fn, ctx), bumps
 * a generation counter, opens the job (open_gen = its generation) and does its own share; each
 * worker waits for the generation to change, joins the job if it is still open and runs it.
 * Two kinds of run:
 * - tl_pool_run (static shares by ith): every worker must run it; the caller waits until
 *   `pending` is 0.
 * - tl_pool_run_dyn (a task queue any subset of threads can drain): the caller drains it, closes
 *   the job and waits only for workers that joined (`active`). On a loaded machine a worker that
 *   is waiting for a CPU then costs nothing, instead of stalling every op until it runs.
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
    _Atomic uint32_t open_gen; /* generation of the job workers may still join (0: none) */
    _Atomic int active;        /* workers inside a job (or deciding whether to join) */
    tl_pool_fn fn;
    void *ctx;
    int dyn;
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
        /* Join job g only while it is open; a dynamic job may have been finished and closed by
         * the caller alone while this thread waited for a CPU. */
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open_gen) == g) {
            int dyn = p->dyn;
            p->fn(p->ctx, a.ith, p->n);
            if (!dyn) atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
        }
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
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

static void pool_post(tl_pool *p, tl_pool_fn fn, void *ctx, int dyn) {
    p->fn = fn;
    p->ctx = ctx;
    p->dyn = dyn;
    atomic_store(&p->pending, p->n - 1);
    /* Open the job before publishing its generation: a worker that sees the new generation must
     * find it open (a static job skipped by a worker would never finish). Only this thread writes
     * gen while a job can be posted. */
    uint32_t g = atomic_load(&p->gen) + 1;
    if (g == 0) g = 1; /* 0 means "no open job" */
    atomic_store(&p->open_gen, g);
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleeping) > 0) futex_wake_all(&p->gen);
}

static void pool_wait(_Atomic int *v) {
    int spins = 0;
    while (atomic_load_explicit(v, memory_order_acquire) > 0) {
        if (++spins < POOL_SPIN) cpu_relax();
        else sched_yield();
    }
}

void tl_pool_run(tl_pool *p, tl_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool_post(p, fn, ctx, 0);
    fn(ctx, 0, p->n);
    pool_wait(&p->pending); /* every worker must run its share */
    atomic_store(&p->open_gen, 0);
}

void tl_pool_run_dyn(tl_pool *p, tl_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool_post(p, fn, ctx, 1);
    fn(ctx, 0, p->n); /* returns when no task is left to take */
    /* Close the job, then wait only for workers that joined it: they are running (they were on
     * a CPU when they joined), so the wait is short; a worker that has not woken up yet will
     * see the job closed and skip it. (seq_cst: a worker that joins after this store sees it.) */
    atomic_store(&p->open_gen, 0);
    pool_wait(&p->active);
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
