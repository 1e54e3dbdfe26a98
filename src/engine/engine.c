/* engine.c — slots, the KV page pool, batches and snapshots over one loaded model.
 *
 * Design
 * - Backend: exact mode (opts.exact or TALLOW_EXACT=1) uses the scalar reference ("ref");
 *   otherwise CUDA when asked for, or for auto when a GPU is present (TALLOW_CUDA_AUTO=0 opts
 *   out), else the CPU backend ("cpu"), falling back to ref when it cannot start.
 * - KV cache: one pool of pages (TL_KV_PAGE_SIZE tokens of every KV layer's K and V), counted as
 *   TL_MEM_KV. It starts at about 512 tokens per slot and doubles when a pass needs more pages,
 *   up to max_slots * ctx_len tokens plus one page per slot of headroom (a pool that grows is
 *   copied once; page ids stay valid), so a short generation does not hold a whole context's
 *   worth of memory. Pages are refcounted:
 *   a slot's page table and every snapshot hold references. A write into a page that someone
 *   else also holds copies it first (copy on write), so snapshots never change.
 * - Per-slot recurrent state (Qwen3.5) is the architecture's, reached through the state hooks
 *   of model.h; snapshots keep a host copy of it (TL_MEM_STATE).
 * - tl_engine_forward validates everything and reserves every page it needs before running,
 *   so a failed call changes nothing. It then packs the rows of all sequences into passes of at
 *   most max_batch_rows rows (a long prompt spans several passes; rows of one slot stay
 *   consecutive and in order) and asks for logits only at each sequence's last token.
 * - All buffers are allocated at open: nothing is allocated per token. */
#include "engine/engine.h"
#include "backend/prof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_snapshot {
    const tl_engine *owner; /* page ids and state layout are this engine's */
    int len;
    int n_pages;
    int32_t *pages;       /* page ids; one reference each */
    void *state;          /* host copy of the slot's recurrent state (state_bytes) */
    size_t state_bytes;
};

struct tl_engine {
    tl_backend *be;
    tl_model *model;
    tl_device device;
    int ctx_len, max_slots, max_rows;
    int max_pages_per_slot;
    int max_pages;        /* the pool's limit; kv.n_pages is its current size */
    tl_kv kv;
    int32_t *page_ref;    /* [n_pages] */
    int32_t *free_pages;  /* stack of free page ids */
    int n_free;
    unsigned char *slot_used;
    int *slot_len;
    size_t state_bytes;   /* per slot, from the model's hooks (0 = none) */
    /* per-pass host scratch */
    int32_t *b_slot, *b_pos, *b_tok;   /* [max_rows] */
    int32_t *b_out, *b_seq;            /* [max_slots]: out row and its sequence index */
    float *b_logits;                   /* [max_slots, vocab] */
    int32_t *need;                     /* [max_slots]: validation marks */
};

/* ---- small accessors ------------------------------------------------------------------------ */

const tl_model_info *tl_engine_info(const tl_engine *e) { return &e->model->info; }
tl_device tl_engine_device(const tl_engine *e) { return e->device; }
int tl_engine_ctx_len(const tl_engine *e) { return e->ctx_len; }
int tl_engine_max_slots(const tl_engine *e) { return e->max_slots; }
int tl_engine_pages_used(const tl_engine *e) { return e->kv.n_pages - e->n_free; }
int tl_engine_pages_total(const tl_engine *e) { return e->kv.n_pages; }
tl_model *tl_engine_model(tl_engine *e) { return e->model; }
tl_backend *tl_engine_backend(tl_engine *e) { return e->be; }

/* ---- pages ---------------------------------------------------------------------------------- */

static int32_t *slot_pages(tl_engine *e, int slot) {
    return e->kv.page_table + (size_t)slot * e->max_pages_per_slot;
}

static void page_unref(tl_engine *e, int32_t p) {
    if (p < 0) return;
    TL_ALWAYS(e->page_ref[p] > 0);
    if (--e->page_ref[p] == 0) e->free_pages[e->n_free++] = p;
}

static int32_t page_take(tl_engine *e) {
    TL_ALWAYS(e->n_free > 0); /* callers reserved first */
    int32_t p = e->free_pages[--e->n_free];
    e->page_ref[p] = 1;
    return p;
}

/* Reset a slot's recurrent state (models that have one). */
static void slot_state_clear(tl_engine *e, int slot) {
    if (e->model->arch->state_clear) e->model->arch->state_clear(e->model, slot);
}

static void kv_changed(tl_engine *e) {
    if (e->be->kv_sync) e->be->kv_sync(e->be, &e->kv);
}

/* Grow the pool so that at least `need` pages are free (within max_pages). Copies the pages
 * into new buffers; on failure nothing changed. */
static int kv_grow(tl_engine *e, int need, tl_err *err) {
    tl_kv *kv = &e->kv;
    int old = kv->n_pages;
    int want = old + (need - e->n_free);
    if (want > e->max_pages) return -TL_ENOMEM; /* caller words the message */
    int n = TL_MIN(e->max_pages, TL_MAX(want, old * 2));
    size_t pf = (size_t)kv->page_size * kv->kv_dim, total = (size_t)n * pf;
    float **nk = calloc((size_t)kv->n_layers, sizeof *nk), **nv = calloc((size_t)kv->n_layers, sizeof *nv);
    int ok = nk && nv;
    for (int l = 0; ok && l < kv->n_layers; l++) {
        nk[l] = e->be->alloc(e->be, total, TL_MEM_KV);
        nv[l] = e->be->alloc(e->be, total, TL_MEM_KV);
        ok = nk[l] && nv[l];
    }
    if (!ok) {
        for (int l = 0; nk && nv && l < kv->n_layers; l++) {
            e->be->free(e->be, nk[l], total, TL_MEM_KV);
            e->be->free(e->be, nv[l], total, TL_MEM_KV);
        }
        free(nk);
        free(nv);
        return tl_err_set(err, TL_ENOMEM, "out of memory growing the KV cache to %d tokens", n *
                          kv->page_size);
    }
    for (int l = 0; l < kv->n_layers; l++) {
        if (old) {
            e->be->copy_rows(e->be, nk[l], (int)pf, 0, kv->k[l], (int)pf, 0, old, (int)pf);
            e->be->copy_rows(e->be, nv[l], (int)pf, 0, kv->v[l], (int)pf, 0, old, (int)pf);
        }
        e->be->free(e->be, kv->k[l], (size_t)old * pf, TL_MEM_KV);
        e->be->free(e->be, kv->v[l], (size_t)old * pf, TL_MEM_KV);
        kv->k[l] = nk[l];
        kv->v[l] = nv[l];
    }
    free(nk);
    free(nv);
    for (int p = n - 1; p >= old; p--) e->free_pages[e->n_free++] = p;
    kv->n_pages = n;
    kv_changed(e);
    return 0;
}

/* Drop the slot's pages from index `from` on. */
static void slot_drop_pages(tl_engine *e, int slot, int from) {
    int32_t *pt = slot_pages(e, slot);
    for (int i = from; i < e->max_pages_per_slot; i++) {
        page_unref(e, pt[i]);
        pt[i] = -1;
    }
}

/* Pages a slot needs to write positions [len, len+n): new pages plus shared pages to copy. */
static int pages_needed(tl_engine *e, int slot, int len, int n) {
    if (n <= 0 || e->kv.n_layers == 0) return 0;
    int ps = e->kv.page_size, need = 0;
    int32_t *pt = slot_pages(e, slot);
    for (int i = len / ps; i <= (len + n - 1) / ps; i++)
        if (pt[i] < 0 || e->page_ref[pt[i]] > 1) need++;
    return need;
}

/* Make positions [len, len+n) of the slot writable (pages reserved by the caller). */
static void pages_prepare(tl_engine *e, int slot, int len, int n) {
    if (n <= 0 || e->kv.n_layers == 0) return;
    int ps = e->kv.page_size;
    size_t pf = (size_t)ps * e->kv.kv_dim;
    int32_t *pt = slot_pages(e, slot);
    for (int i = len / ps; i <= (len + n - 1) / ps; i++) {
        if (pt[i] < 0) {
            pt[i] = page_take(e);
        } else if (e->page_ref[pt[i]] > 1) { /* copy on write */
            int32_t old = pt[i], np = page_take(e);
            for (int l = 0; l < e->kv.n_layers; l++) {
                e->be->copy_rows(e->be, e->kv.k[l] + np * pf, 0, 0, e->kv.k[l] + old * pf, 0, 0, 1,
                                 (int)pf);
                e->be->copy_rows(e->be, e->kv.v[l] + np * pf, 0, 0, e->kv.v[l] + old * pf, 0, 0, 1,
                                 (int)pf);
            }
            page_unref(e, old);
            pt[i] = np;
        }
    }
}

/* ---- open / close --------------------------------------------------------------------------- */

static tl_backend *pick_backend(const tl_engine_opts *o, tl_device *dev, tl_err *err) {
    const char *ex = getenv("TALLOW_EXACT");
    int exact = o->exact || (ex && *ex && strcmp(ex, "0") != 0);
    /* auto: CUDA when this build has it and a GPU answers (validated on an H200, see
     * docs/PERFORMANCE.md ## CUDA), unless exact mode or TALLOW_CUDA_AUTO=0 asks for the host.
     * A machine without a GPU or driver falls through to the CPU silently. */
    const char *ca = getenv("TALLOW_CUDA_AUTO");
    int cuda_auto = o->device == TL_DEVICE_AUTO && !exact && !(ca && !strcmp(ca, "0")) &&
                    tl_backend_cuda_available();
    if (o->device == TL_DEVICE_CUDA || cuda_auto) {
        tl_backend *be = tl_backend_cuda_new(0, err);
        if (be) {
            *dev = TL_DEVICE_CUDA;
            return be;
        }
        if (o->device == TL_DEVICE_CUDA) return NULL;
        if (err) *err = (tl_err){0};
    }
    *dev = TL_DEVICE_CPU;
    if (!exact) {
        tl_err e2 = {0};
        tl_backend *be = tl_backend_cpu_new(o->threads, &e2);
        if (be) return be;
    }
    tl_backend *be = tl_backend_ref_new();
    if (!be) tl_err_set(err, TL_ENOMEM, "out of memory creating the reference backend");
    return be;
}

void tl_engine_close(tl_engine *e) {
    if (!e) return;
    tl_backend *be = e->be;
    size_t pool = (size_t)e->kv.n_pages * e->kv.page_size * e->kv.kv_dim;
    for (int l = 0; l < e->kv.n_layers && e->kv.n_pages; l++) {
        if (e->kv.k) be->free(be, e->kv.k[l], pool, TL_MEM_KV);
        if (e->kv.v) be->free(be, e->kv.v[l], pool, TL_MEM_KV);
    }
    free(e->kv.k);
    free(e->kv.v);
    size_t S = (size_t)e->max_slots, R = (size_t)e->max_rows;
    tl_free(e->kv.page_table, S * e->max_pages_per_slot * sizeof(int32_t), TL_MEM_KV);
    tl_free(e->page_ref, (size_t)e->max_pages * sizeof(int32_t), TL_MEM_KV);
    tl_free(e->free_pages, (size_t)e->max_pages * sizeof(int32_t), TL_MEM_KV);
    tl_free(e->slot_used, S, TL_MEM_SCRATCH);
    tl_free(e->slot_len, S * sizeof(int), TL_MEM_SCRATCH);
    tl_free(e->b_slot, R * sizeof(int32_t), TL_MEM_SCRATCH);
    tl_free(e->b_pos, R * sizeof(int32_t), TL_MEM_SCRATCH);
    tl_free(e->b_tok, R * sizeof(int32_t), TL_MEM_SCRATCH);
    tl_free(e->b_out, S * sizeof(int32_t), TL_MEM_SCRATCH);
    tl_free(e->b_seq, S * sizeof(int32_t), TL_MEM_SCRATCH);
    tl_free(e->need, S * sizeof(int32_t), TL_MEM_SCRATCH);
    if (e->model)
        tl_free(e->b_logits, S * (size_t)e->model->info.vocab_size * sizeof(float), TL_MEM_SCRATCH);
    tl_model_close(e->model);
    if (be) be->destroy(be);
    free(e);
}

static int resolve_dir(const char *spec, char *out, size_t cap, tl_err *err) {
    if (!spec || !*spec) return tl_err_set(err, TL_EINVAL, "no model given");
    if (tl_dir_exists(spec)) {
        snprintf(out, cap, "%s", spec);
        return 0;
    }
    return tl_model_locate(spec, NULL, out, cap, err);
}

int tl_engine_open(tl_engine **out, const tl_engine_opts *opts, tl_err *err) {
    *out = NULL;
    tl_engine_opts o = *opts;
    char dir[4096];
    int rc = resolve_dir(o.model, dir, sizeof dir, err);
    if (rc) return rc;
    if (o.threads < 0 || o.max_slots < 0 || o.ctx_len < 0 || o.max_batch_rows < 0)
        return tl_err_set(err, TL_EINVAL, "engine options must not be negative");
    tl_engine *e = calloc(1, sizeof *e);
    if (!e) return tl_err_set(err, TL_ENOMEM, "out of memory");
    e->be = pick_backend(&o, &e->device, err);
    if (!e->be) {
        free(e);
        return -err->code;
    }
    const char *prof = getenv("TALLOW_PROFILE"); /* per-op time table on stderr at close */
    if (prof && *prof && strcmp(prof, "0") != 0) e->be = tl_backend_prof_wrap(e->be);
    if ((rc = tl_model_open(&e->model, dir, e->be, err))) goto fail;
    tl_model *m = e->model;
    int maxpos = m->info.max_position_embeddings > 0 ? m->info.max_position_embeddings : 4096;
    e->ctx_len = o.ctx_len ? o.ctx_len : TL_MIN(maxpos, 4096);
    if (e->ctx_len > maxpos) {
        rc = tl_err_set(err, TL_EINVAL, "context length %d is larger than the model's "
                        "max_position_embeddings %d", e->ctx_len, maxpos);
        goto fail;
    }
    e->max_slots = o.max_slots ? o.max_slots : 1;
    /* 128-row prefill passes suit the CPU matmul; the CUDA backend dequantizes each weight per
     * pass for cuBLAS, so fewer, larger passes pay there */
    e->max_rows = o.max_batch_rows ? o.max_batch_rows : e->device == TL_DEVICE_CUDA ? 512 : 128;
    if (e->max_slots > 4096 || e->max_rows > (1 << 16) || e->ctx_len > (1 << 24)) {
        rc = tl_err_set(err, TL_EINVAL, "engine options out of range (max_slots <= 4096, "
                        "max_batch_rows <= 65536)");
        goto fail;
    }
    if (e->max_rows < e->max_slots) e->max_rows = e->max_slots; /* one decode row per slot */

    /* KV page pool */
    tl_kv *kv = &e->kv;
    kv->n_layers = m->kv_layers;
    kv->kv_dim = m->kv_dim;
    kv->page_size = TL_KV_PAGE_SIZE;
    kv->max_slots = e->max_slots;
    e->max_pages_per_slot = (e->ctx_len + kv->page_size - 1) / kv->page_size;
    kv->max_pages_per_slot = e->max_pages_per_slot;
    e->max_pages = kv->n_layers ? e->max_slots * e->max_pages_per_slot + e->max_slots : 0;
    const char *ft = getenv("TALLOW_KV_FIRST_TOKENS"); /* tests: force growth early */
    int first_tokens = ft && atoi(ft) > 0 ? atoi(ft) : 512;
    int first = (TL_MIN(e->ctx_len, first_tokens) + kv->page_size - 1) / kv->page_size;
    int n_first = kv->n_layers ? TL_MIN(e->max_pages, e->max_slots * first + e->max_slots) : 0;
    kv->n_pages = 0;
    size_t S = (size_t)e->max_slots, R = (size_t)e->max_rows;
    kv->page_table = tl_alloc(S * e->max_pages_per_slot * sizeof(int32_t), TL_MEM_KV);
    e->page_ref = tl_alloc((size_t)e->max_pages * sizeof(int32_t), TL_MEM_KV);
    e->free_pages = tl_alloc((size_t)e->max_pages * sizeof(int32_t), TL_MEM_KV);
    kv->k = calloc((size_t)TL_MAX(kv->n_layers, 1), sizeof(float *));
    kv->v = calloc((size_t)TL_MAX(kv->n_layers, 1), sizeof(float *));
    e->slot_used = tl_alloc(S, TL_MEM_SCRATCH);
    e->slot_len = tl_alloc(S * sizeof(int), TL_MEM_SCRATCH);
    e->b_slot = tl_alloc(R * sizeof(int32_t), TL_MEM_SCRATCH);
    e->b_pos = tl_alloc(R * sizeof(int32_t), TL_MEM_SCRATCH);
    e->b_tok = tl_alloc(R * sizeof(int32_t), TL_MEM_SCRATCH);
    e->b_out = tl_alloc(S * sizeof(int32_t), TL_MEM_SCRATCH);
    e->b_seq = tl_alloc(S * sizeof(int32_t), TL_MEM_SCRATCH);
    e->need = tl_alloc(S * sizeof(int32_t), TL_MEM_SCRATCH);
    e->b_logits = tl_alloc(S * (size_t)m->info.vocab_size * sizeof(float), TL_MEM_SCRATCH);
    if (!kv->page_table || !e->page_ref || !e->free_pages || !kv->k || !kv->v || !e->slot_used ||
        !e->slot_len || !e->b_slot || !e->b_pos || !e->b_tok || !e->b_out || !e->b_seq ||
        !e->need || !e->b_logits) {
        rc = tl_err_set(err, TL_ENOMEM, "out of memory allocating the engine's tables");
        goto fail;
    }
    size_t pool;
    if (!tl_mul_ok((size_t)e->max_pages * kv->page_size, (size_t)kv->kv_dim, &pool) ||
        pool > ((size_t)1 << 40)) {
        rc = tl_err_set(err, TL_ENOMEM, "KV cache of %d slots x %d tokens is too large",
                        e->max_slots, e->ctx_len);
        goto fail;
    }
    for (size_t i = 0; i < S * e->max_pages_per_slot; i++) kv->page_table[i] = -1;
    if (n_first && (rc = kv_grow(e, n_first, err))) goto fail;
    kv_changed(e);

    tl_run_dims d = {.max_slots = e->max_slots, .max_rows = e->max_rows, .max_out = e->max_slots};
    if ((rc = tl_model_run_init(m, &d, err))) goto fail;
    e->state_bytes = m->arch->state_bytes ? m->arch->state_bytes(m) : 0;
    for (int s = 0; s < e->max_slots; s++) slot_state_clear(e, s);
    *out = e;
    return 0;
fail:
    tl_engine_close(e);
    return rc;
}

/* ---- slots ---------------------------------------------------------------------------------- */

static int slot_ok(const tl_engine *e, int slot) {
    return slot >= 0 && slot < e->max_slots && e->slot_used[slot];
}

int tl_slot_acquire(tl_engine *e, tl_err *err) {
    for (int s = 0; s < e->max_slots; s++) {
        if (e->slot_used[s]) continue;
        e->slot_used[s] = 1;
        e->slot_len[s] = 0;
        slot_state_clear(e, s);
        return s;
    }
    return tl_err_set(err, TL_EBUSY, "all %d sequence slots are in use", e->max_slots);
}

void tl_slot_release(tl_engine *e, int slot) {
    if (!slot_ok(e, slot)) return;
    slot_drop_pages(e, slot, 0);
    kv_changed(e);
    slot_state_clear(e, slot);
    e->slot_len[slot] = 0;
    e->slot_used[slot] = 0;
}

int tl_slot_len(const tl_engine *e, int slot) {
    return slot_ok(e, slot) ? e->slot_len[slot] : -TL_EINVAL;
}

int tl_slot_truncate(tl_engine *e, int slot, int n, tl_err *err) {
    if (!slot_ok(e, slot)) return tl_err_set(err, TL_EINVAL, "slot %d is not in use", slot);
    int len = e->slot_len[slot];
    if (n < 0 || n > len)
        return tl_err_set(err, TL_EINVAL, "cannot truncate slot %d to %d tokens (it holds %d)",
                          slot, n, len);
    if (n == len) return 0;
    if (e->state_bytes && n != 0)
        return tl_err_set(err, TL_EUNSUP, "%s keeps recurrent state: a slot can only go back to "
                          "0 tokens or to a snapshot, not to %d", e->model->info.arch_name, n);
    if (e->kv.n_layers) {
        slot_drop_pages(e, slot, (n + e->kv.page_size - 1) / e->kv.page_size);
        kv_changed(e);
    }
    if (n == 0) slot_state_clear(e, slot);
    e->slot_len[slot] = n;
    return 0;
}

/* ---- forward -------------------------------------------------------------------------------- */

static int run_pass(tl_engine *e, int n_rows, int n_out, float *logits, tl_err *err) {
    tl_model *m = e->model;
    tl_batch b = {0};
    b.rows.n = n_rows;
    b.rows.slot = e->b_slot;
    b.rows.pos = e->b_pos;
    b.tokens = e->b_tok;
    b.kv = e->kv.n_layers ? &e->kv : NULL;
    b.n_out = n_out;
    b.out_rows = e->b_out;
    /* Out rows of consecutive sequences (every decode step of one sequence, a batch where all
     * want logits) land in the caller's buffer directly; others go through b_logits, so a
     * vocabulary-sized row is not copied twice per token when it need not be. */
    size_t V = (size_t)m->info.vocab_size;
    int direct = n_out > 0 && e->b_seq[n_out - 1] - e->b_seq[0] == n_out - 1; /* b_seq ascends */
    b.logits = direct ? logits + (size_t)e->b_seq[0] * V : e->b_logits;
    if (e->be->rows_upload) e->be->rows_upload(e->be, &b.rows);
    int rc = m->arch->forward(m, &b, err);
    if (rc) return rc;
    for (int i = 0; i < n_out && !direct; i++)
        memcpy(logits + (size_t)e->b_seq[i] * V, e->b_logits + (size_t)i * V, V * sizeof(float));
    return 0;
}

int tl_engine_forward(tl_engine *e, const tl_batch_seq *seqs, int n_seqs, float *logits,
                      tl_err *err) {
    if (n_seqs < 0 || (n_seqs > 0 && !seqs))
        return tl_err_set(err, TL_EINVAL, "forward: bad sequence list");
    int V = e->model->info.vocab_size;
    /* 1. validate everything before changing anything */
    memset(e->need, 0, (size_t)e->max_slots * sizeof(int32_t));
    int pages = 0;
    for (int i = 0; i < n_seqs; i++) {
        const tl_batch_seq *s = &seqs[i];
        if (!slot_ok(e, s->slot))
            return tl_err_set(err, TL_EINVAL, "forward: sequence %d names slot %d, which is not "
                              "acquired", i, s->slot);
        if (e->need[s->slot])
            return tl_err_set(err, TL_EINVAL, "forward: slot %d appears twice", s->slot);
        e->need[s->slot] = 1;
        if (s->n_tokens < 0 || (s->n_tokens > 0 && !s->tokens))
            return tl_err_set(err, TL_EINVAL, "forward: sequence %d has no tokens", i);
        if (s->want_logits && s->n_tokens == 0)
            return tl_err_set(err, TL_EINVAL, "forward: sequence %d wants logits but feeds no "
                              "token", i);
        if (s->want_logits && !logits)
            return tl_err_set(err, TL_EINVAL, "forward: logits wanted but no output buffer");
        int len = e->slot_len[s->slot];
        if (s->n_tokens > e->ctx_len - len)
            return tl_err_set(err, TL_ELIMIT, "forward: slot %d holds %d tokens; %d more would "
                              "pass the context length %d", s->slot, len, s->n_tokens, e->ctx_len);
        for (int t = 0; t < s->n_tokens; t++)
            if (s->tokens[t] < 0 || s->tokens[t] >= V)
                return tl_err_set(err, TL_EINVAL, "forward: token %d (id %d) of sequence %d is "
                                  "outside the vocabulary (0..%d)", t, s->tokens[t], i, V - 1);
        pages += pages_needed(e, s->slot, len, s->n_tokens);
    }
    if (pages > e->n_free) {
        int rc = kv_grow(e, pages, err);
        if (rc == -TL_ENOMEM && pages - e->n_free > e->max_pages - e->kv.n_pages)
            return tl_err_set(err, TL_ENOMEM, "KV cache full: %d pages needed, %d free of %d "
                              "(held by slots and snapshots)", pages, e->n_free, e->max_pages);
        if (rc) return rc;
    }
    /* 2. reserve pages */
    for (int i = 0; i < n_seqs; i++)
        pages_prepare(e, seqs[i].slot, e->slot_len[seqs[i].slot], seqs[i].n_tokens);
    if (pages) kv_changed(e);
    /* 3. pack rows into passes */
    int n_rows = 0, n_out = 0, rc;
    for (int i = 0; i < n_seqs; i++) {
        const tl_batch_seq *s = &seqs[i];
        int base = e->slot_len[s->slot];
        for (int t = 0; t < s->n_tokens; t++) {
            e->b_slot[n_rows] = s->slot;
            e->b_pos[n_rows] = base + t;
            e->b_tok[n_rows] = s->tokens[t];
            if (t == s->n_tokens - 1 && s->want_logits) {
                e->b_out[n_out] = n_rows;
                e->b_seq[n_out++] = i;
            }
            n_rows++;
            if (n_rows == e->max_rows) {
                if ((rc = run_pass(e, n_rows, n_out, logits, err))) goto fail;
                n_rows = n_out = 0;
            }
        }
    }
    if (n_rows && (rc = run_pass(e, n_rows, n_out, logits, err))) goto fail;
    for (int i = 0; i < n_seqs; i++) e->slot_len[seqs[i].slot] += seqs[i].n_tokens;
    return 0;
fail:
    /* A pass failed midway: the slots' caches are in an unknown state; reset them. */
    for (int i = 0; i < n_seqs; i++) {
        int s = seqs[i].slot;
        slot_drop_pages(e, s, 0);
        slot_state_clear(e, s);
        e->slot_len[s] = 0;
    }
    kv_changed(e);
    return tl_err_prefix(err, "forward (the slots of this batch were reset): ");
}

/* ---- snapshots ------------------------------------------------------------------------------ */

int tl_slot_snapshot(tl_engine *e, int slot, tl_snapshot **out, tl_err *err) {
    *out = NULL;
    if (!slot_ok(e, slot)) return tl_err_set(err, TL_EINVAL, "snapshot: slot %d is not in use", slot);
    tl_snapshot *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ENOMEM, "out of memory");
    s->owner = e;
    s->len = e->slot_len[slot];
    s->n_pages = e->kv.n_layers ? (s->len + e->kv.page_size - 1) / e->kv.page_size : 0;
    s->state_bytes = e->state_bytes;
    if (s->n_pages) s->pages = malloc((size_t)s->n_pages * sizeof(int32_t));
    if (s->state_bytes) s->state = tl_alloc(s->state_bytes, TL_MEM_STATE);
    if ((s->n_pages && !s->pages) || (s->state_bytes && !s->state)) {
        free(s->pages);
        tl_free(s->state, s->state_bytes, TL_MEM_STATE);
        free(s);
        return tl_err_set(err, TL_ENOMEM, "out of memory taking a snapshot");
    }
    int32_t *pt = slot_pages(e, slot);
    for (int i = 0; i < s->n_pages; i++) {
        s->pages[i] = pt[i];
        e->page_ref[pt[i]]++;
    }
    if (s->state_bytes) e->model->arch->state_save(e->model, slot, s->state);
    *out = s;
    return 0;
}

int tl_slot_restore(tl_engine *e, int slot, const tl_snapshot *s, tl_err *err) {
    if (!s) return tl_err_set(err, TL_EINVAL, "restore: no snapshot");
    if (s->owner != e)
        return tl_err_set(err, TL_EINVAL, "restore: the snapshot belongs to another engine");
    if (!slot_ok(e, slot)) return tl_err_set(err, TL_EINVAL, "restore: slot %d is not in use", slot);
    if (s->len > e->ctx_len)
        return tl_err_set(err, TL_EINVAL, "restore: the snapshot holds %d tokens, more than the "
                          "context length %d", s->len, e->ctx_len);
    /* take the snapshot's references before dropping the slot's own (they may be the same) */
    for (int i = 0; i < s->n_pages; i++) e->page_ref[s->pages[i]]++;
    slot_drop_pages(e, slot, 0);
    int32_t *pt = slot_pages(e, slot);
    for (int i = 0; i < s->n_pages; i++) pt[i] = s->pages[i];
    kv_changed(e);
    if (s->state_bytes) e->model->arch->state_load(e->model, slot, s->state);
    else slot_state_clear(e, slot);
    e->slot_len[slot] = s->len;
    return 0;
}

int tl_snapshot_len(const tl_snapshot *s) { return s ? s->len : 0; }

size_t tl_snapshot_bytes(const tl_snapshot *s) {
    return s ? s->state_bytes + (size_t)s->n_pages * sizeof(int32_t) : 0;
}

void tl_snapshot_free(tl_engine *e, tl_snapshot *s) {
    if (!s) return;
    TL_ALWAYS(s->owner == e); /* freeing into another engine's pool would corrupt it */
    for (int i = 0; i < s->n_pages; i++) page_unref(e, s->pages[i]);
    free(s->pages);
    tl_free(s->state, s->state_bytes, TL_MEM_STATE);
    free(s);
}
