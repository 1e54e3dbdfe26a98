/* model_engine.c — the server's model table (model.h) over the real library: tl_engine for the
 * batched forward pass and slots, tl_tokenizer for text <-> ids, the model's own chat template.
 *
 * Everything here is read-only after open except the engine, which only the scheduler's engine
 * thread touches; encode / render / token_bytes run on connection threads concurrently (the
 * tokenizer and a compiled template are safe for that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/model.h"
#include "tallow/chat.h"
#include "tallow/engine.h"
#include "tallow/tokenizer.h"

typedef struct em {
    tl_engine *e;
    tl_tokenizer *tok;
    tl_chat_template *tpl;   /* NULL: the model has no chat template (chat endpoint refuses) */
    char *bos, *eos;
    int32_t stop_ids[16];
    int n_stop;
    int64_t kv_per_token, state_per_slot;
} em;

static int e_acquire(tl_srv_model *m, tl_err *err) {
    return tl_slot_acquire(((em *)m->ctx)->e, err);
}
static void e_release(tl_srv_model *m, int slot) { tl_slot_release(((em *)m->ctx)->e, slot); }
static int e_forward(tl_srv_model *m, const tl_batch_seq *seqs, int n, float *logits,
                     tl_err *err) {
    return tl_engine_forward(((em *)m->ctx)->e, seqs, n, logits, err);
}

static int e_render(tl_srv_model *m, const tl_request *r, int n_messages, int add_gen,
                    char **prompt, int *think, tl_err *err) {
    em *k = m->ctx;
    *prompt = NULL;
    if (!k->tpl)
        return tl_err_set(err, TL_EUNSUP, "the model has no chat template; use /v1/completions");
    json_t *sub = r->messages;
    if (n_messages >= 0 && (size_t)n_messages < json_array_size(r->messages)) {
        sub = json_array();
        for (int i = 0; i < n_messages; i++) json_array_append(sub, json_array_get(r->messages, i));
    } else {
        json_incref(sub);
    }
    char *msgs = json_dumps(sub, JSON_COMPACT);
    json_decref(sub);
    char *tools = r->tools && !r->tool_choice_none ? json_dumps(r->tools, JSON_COMPACT) : NULL;
    char *kw = r->template_kwargs ? json_dumps(r->template_kwargs, JSON_COMPACT) : NULL;
    tl_chat_opts o = {0};
    o.add_generation_prompt = add_gen;
    o.thinking = r->enable_thinking < 0 ? TL_THINKING_TEMPLATE
                 : r->enable_thinking ? TL_THINKING_ON : TL_THINKING_OFF;
    o.bos_token = k->bos;
    o.eos_token = k->eos;
    int rc = msgs ? tl_chat_template_render(k->tpl, msgs, tools, kw, &o, prompt, NULL, err)
                  : tl_err_set(err, TL_ENOMEM, "no memory for the messages");
    free(msgs);
    free(tools);
    free(kw);
    if (rc < 0) return rc;
    *think = tl_chat_prompt_opens_think(*prompt); /* the reply starts as reasoning */
    return 0;
}

static int e_encode(tl_srv_model *m, const char *text, size_t len, int add_special, int32_t **ids,
                    size_t *n, tl_err *err) {
    return tl_tok_encode(((em *)m->ctx)->tok, text, len, add_special ? TL_TOK_ADD_SPECIAL : 0, ids,
                         n, err);
}

static const char *e_token_bytes(tl_srv_model *m, int32_t id, size_t *len) {
    return tl_tok_token_bytes(((em *)m->ctx)->tok, id, len);
}
static int e_is_special(tl_srv_model *m, int32_t id) {
    return tl_tok_is_special(((em *)m->ctx)->tok, id);
}
static int e_is_eog(tl_srv_model *m, int32_t id) {
    em *k = m->ctx;
    for (int i = 0; i < k->n_stop; i++)
        if (k->stop_ids[i] == id) return 1;
    return 0;
}
static int e_snapshot(tl_srv_model *m, int slot, void **snap, size_t *bytes, tl_err *err) {
    em *k = m->ctx;
    tl_snapshot *s = NULL;
    int rc = tl_slot_snapshot(k->e, slot, &s, err);
    if (rc < 0) return rc;
    *snap = s;
    *bytes = tl_snapshot_bytes(s) + (size_t)tl_snapshot_len(s) * (size_t)k->kv_per_token;
    return 0;
}
static int e_restore(tl_srv_model *m, int slot, const void *snap, tl_err *err) {
    return tl_slot_restore(((em *)m->ctx)->e, slot, snap, err);
}
static int e_truncate(tl_srv_model *m, int slot, int n, tl_err *err) {
    return tl_slot_truncate(((em *)m->ctx)->e, slot, n, err);
}
static void e_snapshot_free(tl_srv_model *m, void *snap) {
    tl_snapshot_free(((em *)m->ctx)->e, snap);
}

static int64_t e_seq_bytes(tl_srv_model *m, int n) {
    em *k = m->ctx;
    return k->kv_per_token * n + k->state_per_slot;
}

static void e_close(tl_srv_model *m) {
    if (!m) return;
    em *k = m->ctx;
    if (k) {
        tl_chat_template_free(k->tpl);
        tl_tok_free(k->tok);
        tl_engine_close(k->e);
        free(k->bos);
        free(k->eos);
        free(k);
    }
    free(m);
}

static void add_stop(em *k, int32_t id) {
    if (id < 0 || k->n_stop == (int)TL_ARRAY_LEN(k->stop_ids)) return;
    for (int i = 0; i < k->n_stop; i++)
        if (k->stop_ids[i] == id) return;
    k->stop_ids[k->n_stop++] = id;
}

int tl_srv_engine_open(tl_srv_model **out, const tl_srv_engine_opts *o, tl_err *err) {
    *out = NULL;
    tl_srv_model *m = calloc(1, sizeof *m);
    em *k = calloc(1, sizeof *k);
    if (!m || !k) {
        free(m);
        free(k);
        return tl_err_set(err, TL_ENOMEM, "no memory");
    }
    m->ctx = k;
    m->close = e_close;
    tl_engine_opts eo = {0};
    eo.model = o->model;
    eo.device = (tl_device)o->device;
    eo.threads = o->threads;
    eo.max_slots = o->max_slots;
    eo.ctx_len = o->ctx_len;
    int rc = tl_engine_open(&k->e, &eo, err);
    if (rc < 0) {
        tl_err_prefix(err, "loading %s: ", o->model);
        e_close(m);
        return rc;
    }
    const tl_model_info *mi = tl_engine_info(k->e);
    rc = tl_tok_load_dir(mi->dir, &k->tok, err);
    if (rc < 0) {
        tl_err_prefix(err, "tokenizer of %s: ", mi->dir);
        e_close(m);
        return rc;
    }
    char *src = NULL;
    if (tl_chat_template_load(mi->dir, &src, &k->bos, &k->eos, err) == 0 && src) {
        rc = tl_chat_template_compile(&k->tpl, src, err);
        free(src);
        if (rc < 0) {
            tl_err_prefix(err, "chat template of %s: ", mi->dir);
            e_close(m);
            return rc;
        }
    }
    for (int i = 0; i < mi->n_eos && i < 8; i++) add_stop(k, mi->eos_ids[i]);
    add_stop(k, tl_tok_eos_id(k->tok));
    const char *base = strrchr(o->model, '/');
    snprintf(m->name, sizeof m->name, "%s", base && base[1] ? base + 1 : o->model);
    m->vocab_size = mi->vocab_size;
    m->synthetic = mi->synthetic;
    if (mi->synthetic)
        fprintf(stderr, "tallow serve: note: %s is a synthetic model (random weights written by "
                        "tallow synth): its speed and memory are the real shape's, its text is "
                        "noise\n", o->model);
    if (tl_tok_vocab_size(k->tok) > m->vocab_size) {
        rc = tl_err_set(err, TL_EFORMAT, "%s: the tokenizer has %d ids, the model only %d",
                        mi->dir, tl_tok_vocab_size(k->tok), mi->vocab_size);
        e_close(m);
        return rc;
    }
    m->ctx_len = tl_engine_ctx_len(k->e);
    m->max_slots = tl_engine_max_slots(k->e);
    m->max_batch_rows = 512;
    m->bos_id = mi->bos_id;
    k->kv_per_token = mi->kv_bytes_per_token;
    k->state_per_slot = mi->state_bytes_per_slot;
    m->slot_acquire = e_acquire;
    m->slot_release = e_release;
    m->forward = e_forward;
    m->render = e_render;
    m->encode = e_encode;
    m->token_bytes = e_token_bytes;
    m->is_special = e_is_special;
    m->is_eog = e_is_eog;
    m->seq_bytes = e_seq_bytes;
    m->has_snapshots = 1;
    m->can_truncate = mi->state_bytes_per_slot == 0;
    m->slot_snapshot = e_snapshot;
    m->slot_restore = e_restore;
    m->slot_truncate = e_truncate;
    m->snapshot_free = e_snapshot_free;
    *out = m;
    return 0;
}
