/* generate.c — the single-sequence generation loop (contract in engine/generate.h). */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>

const char *tl_finish_name(tl_finish f) {
    switch (f) {
    case TL_FINISH_STOP: return "stop";
    case TL_FINISH_LENGTH: return "length";
    case TL_FINISH_ABORT: return "abort";
    }
    return "?";
}

void tl_gen_result_free(tl_gen_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->text);
    r->ids = NULL;
    r->text = NULL;
}

static int is_stop_id(const int32_t *ids, int n, int32_t t) {
    for (int i = 0; i < n; i++)
        if (ids[i] == t) return 1;
    return 0;
}

/* Pass released text to the stop matcher, then to the result and the callback.
 * Returns 1 when generation must end (stop string or callback), 0 to go on, < 0 on error. */
static int emit_text(tl_stop *stop, tl_strbuf *text, const tl_gen_opts *o, const char *s, size_t n,
                     tl_gen_result *res, tl_err *err) {
    const char *e;
    size_t el;
    int hit = tl_stop_feed(stop, s, n, &e, &el, err);
    if (hit < 0) return hit;
    if (el) {
        if (tl_strbuf_add(text, e, el)) return tl_err_set(err, TL_ENOMEM, "generate: out of memory");
        if (o->on_text && o->on_text(o->cb_ctx, e, el)) {
            res->finish = TL_FINISH_ABORT;
            return 1;
        }
    }
    if (hit) {
        res->finish = TL_FINISH_STOP;
        res->stop_string = tl_stop_matched(stop);
        return 1;
    }
    return 0;
}

int tl_generate(tl_engine *e, int slot, const int32_t *prompt, int n_prompt, int n_cached,
                const tl_gen_opts *o, tl_gen_result *res, tl_err *err) {
    memset(res, 0, sizeof *res);
    res->stop_string = -1;
    res->stop_id = -1;
    if (n_prompt <= 0 || n_cached < 0 || n_cached >= n_prompt)
        return tl_err_set(err, TL_EINVAL, "generate: need at least one prompt token to prefill "
                          "(prompt %d tokens, %d cached)", n_prompt, n_cached);
    if (o->max_tokens < 0)
        return tl_err_set(err, TL_EINVAL, "generate: max_tokens must be >= 0");
    if (tl_slot_len(e, slot) != n_cached)
        return tl_err_set(err, TL_EINVAL, "generate: slot %d holds %d tokens, caller said %d",
                          slot, tl_slot_len(e, slot), n_cached);
    const tl_model_info *mi = tl_engine_info(e);
    int vocab = mi->vocab_size, ctx_len = tl_engine_ctx_len(e);
    if (n_prompt > ctx_len)
        return tl_err_set(err, TL_ELIMIT, "generate: the prompt has %d tokens but the context "
                          "holds %d (use a shorter prompt or a larger context)", n_prompt,
                          ctx_len);
    const int32_t *stop_ids = o->stop_ids ? o->stop_ids : mi->eos_ids;
    int n_stop_ids = o->stop_ids ? o->n_stop_ids : mi->n_eos;

    int rc = 0;
    tl_sampler *own = NULL, *sampler = o->sampler;
    tl_stop *stop = NULL;
    float *logits = NULL;
    tl_strbuf text = {0};
    char piece[4096];
    tl_tok_stream ds;
    if (o->tok) tl_tok_stream_init(&ds, o->tok, 0);
    if (!sampler) {
        tl_sample_params def;
        tl_sample_params_default(&def);
        if ((rc = tl_sampler_new(&own, o->sample ? o->sample : &def, vocab, err))) goto done;
        sampler = own;
        if ((rc = tl_sampler_accept(sampler, prompt, n_prompt, 0, err))) goto done;
    }
    if ((rc = tl_stop_new(&stop, o->stop_strs, o->n_stop_strs, err))) goto done;
    logits = tl_alloc((size_t)vocab * sizeof *logits, TL_MEM_SCRATCH);
    /* at most ctx_len - n_prompt + 1 tokens fit (the last one is never fed) */
    size_t cap_ids = (size_t)TL_MIN(o->max_tokens, ctx_len - n_prompt + 1) + 1;
    res->ids = malloc(cap_ids * sizeof *res->ids);
    if (!logits || !res->ids) {
        rc = tl_err_set(err, TL_ENOMEM, "generate: out of memory for %d logits", vocab);
        goto done;
    }
    if (tl_strbuf_add(&text, "", 0)) {
        rc = tl_err_set(err, TL_ENOMEM, "generate: out of memory");
        goto done;
    }

    tl_gen_stats *st = &res->stats;
    st->prompt_tokens = n_prompt;
    st->prefill_tokens = n_prompt - n_cached;
    st->t_start_ns = tl_now_ns();
    tl_batch_seq seq = {slot, n_prompt - n_cached, prompt + n_cached, 1};
    if ((rc = tl_engine_forward(e, &seq, 1, logits, err))) goto done;
    res->slot_tokens = n_prompt;
    res->finish = TL_FINISH_LENGTH;
    for (int i = 0; i < o->max_tokens; i++) {
        int32_t t = tl_sampler_sample(sampler, logits);
        uint64_t now = tl_now_ns();
        if (i == 0) st->t_first_ns = now;
        st->t_last_ns = now;
        res->ids[res->n_ids++] = t;
        st->generation_tokens = res->n_ids;
        if ((rc = tl_sampler_accept(sampler, &t, 1, 1, err))) goto done;
        if (is_stop_id(stop_ids, n_stop_ids, t)) {
            res->finish = TL_FINISH_STOP;
            res->stop_id = t;
            break;
        }
        if (o->tok) {
            size_t n = 0;
            if ((rc = tl_tok_stream_feed(&ds, t, piece, sizeof piece, &n, err))) goto done;
            int end = emit_text(stop, &text, o, piece, n, res, err);
            if (end < 0) {
                rc = end;
                goto done;
            }
            if (end) break;
        }
        if (i + 1 == o->max_tokens) break;
        if (res->slot_tokens + 1 > ctx_len) break; /* context full: finish "length" */
        seq = (tl_batch_seq){slot, 1, &t, 1};
        if ((rc = tl_engine_forward(e, &seq, 1, logits, err))) goto done;
        res->slot_tokens++;
    }
    if (o->tok && res->finish != TL_FINISH_STOP && res->finish != TL_FINISH_ABORT) {
        size_t n = 0;
        tl_tok_stream_flush(&ds, piece, sizeof piece, &n);
        int end = n ? emit_text(stop, &text, o, piece, n, res, err) : 0;
        if (end < 0) {
            rc = end;
            goto done;
        }
        if (!end) {
            const char *rest;
            size_t rn;
            tl_stop_flush(stop, &rest, &rn);
            if (rn) {
                if (tl_strbuf_add(&text, rest, rn)) {
                    rc = tl_err_set(err, TL_ENOMEM, "generate: out of memory");
                    goto done;
                }
                if (o->on_text) o->on_text(o->cb_ctx, rest, rn);
            }
        }
    }
    if (res->n_ids == 0) st->t_first_ns = st->t_last_ns = tl_now_ns();
    tl_mem_stats ms;
    tl_mem_get(&ms);
    st->peak_memory_bytes = ms.peak_total;
    tl_gen_stats_finish(st);
    res->text = text.p;
    res->text_len = text.n;
    text.p = NULL;
done:
    free(text.p);
    if (logits) tl_free(logits, (size_t)vocab * sizeof *logits, TL_MEM_SCRATCH);
    tl_stop_free(stop);
    tl_sampler_free(own);
    if (rc) tl_gen_result_free(res);
    return rc;
}
