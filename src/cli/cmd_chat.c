/* cmd_chat.c — `tallow chat`: a REPL (or a script on piped stdin) with history, a system prompt,
 * /reset, /thinking on|off, /stats, /quit.
 *
 * Each turn renders the whole conversation with the model's template, compares its ids with
 * what the slot holds and keeps the common prefix: a KV-only model truncates its slot there; a
 * model with recurrent state (Qwen3.5) cannot go back, so the chat takes snapshots of the slot
 * where the history ends inside each prompt and at the end of each reply, and restores the
 * longest one that is still a prefix. Only the rest is prefilled; the statistics line of each
 * turn says how many tokens were reused and how many prefilled. When the conversation no longer
 * fits the context, the oldest turns are dropped (the system prompt stays) and the chat says so. */
#define _GNU_SOURCE
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_generate.h"

/* Snapshots kept: where the last history ends and where the last reply ends (one of the two is
 * a prefix of the next turn's prompt); each holds a slot's whole recurrent state (about 20 MB for
 * Qwen3.5-2B). */
enum { MAX_SNAPS = 2 };

/* Ctrl-C while a reply streams stops that reply (the REPL goes on); at the prompt it quits.
 * A signal can only reach the program through a global, so this one is. */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static int show_or_stop(void *ctx, const char *text, size_t len) {
    cli_show_text(ctx, text, len);
    return g_interrupted;
}

typedef struct chat {
    cli_gen_args *a;
    cli_model *m;
    tl_sample_params sp;
    json_t *history;          /* messages, system first when given */
    tl_thinking thinking;
    int slot;
    int recurrent;            /* slot state cannot be truncated: use snapshots */
    int reuse;                /* 0 with --no-prefix-cache */
    int32_t *slot_ids;        /* what the slot holds */
    int n_slot, cap_slot;
    struct {
        tl_snapshot *s;
        int len;
    } snaps[MAX_SNAPS];
    int n_snaps;
    int turns;
    tl_gen_stats last;
    int has_last;
} chat;

static int role_is(json_t *msg, const char *role) {
    const char *r = json_string_value(json_object_get(msg, "role"));
    return r && !strcmp(r, role);
}

static void snaps_clear(chat *c, int keep_upto) {
    int k = 0;
    for (int i = 0; i < c->n_snaps; i++) {
        if (c->snaps[i].len <= keep_upto) c->snaps[k++] = c->snaps[i];
        else tl_snapshot_free(c->m->e, c->snaps[i].s);
    }
    c->n_snaps = k;
}

static void snap_take(chat *c) {
    if (!c->recurrent || !c->reuse) return;
    for (int i = 0; i < c->n_snaps; i++)
        if (c->snaps[i].len == c->n_slot) return;
    tl_snapshot *s;
    tl_err err = {0};
    if (tl_slot_snapshot(c->m->e, c->slot, &s, &err)) return; /* no snapshot: no reuse later */
    if (c->n_snaps == MAX_SNAPS) { /* drop the oldest */
        tl_snapshot_free(c->m->e, c->snaps[0].s);
        memmove(c->snaps, c->snaps + 1, (MAX_SNAPS - 1) * sizeof c->snaps[0]);
        c->n_snaps--;
    }
    c->snaps[c->n_snaps].s = s;
    c->snaps[c->n_snaps].len = c->n_slot;
    c->n_snaps++;
}

static int slot_ids_set(chat *c, const int32_t *ids, int n) {
    if (n > c->cap_slot) {
        int32_t *p = realloc(c->slot_ids, (size_t)n * sizeof *p);
        if (!p) return -1;
        c->slot_ids = p;
        c->cap_slot = n;
    }
    if (n > 0 && ids != c->slot_ids) memmove(c->slot_ids, ids, (size_t)n * sizeof *ids);
    c->n_slot = n;
    return 0;
}

/* Bring the slot back to a prefix of ids (at most n - 1 tokens). Returns the tokens kept. */
static int slot_rewind(chat *c, const int32_t *ids, int n) {
    tl_err err = {0};
    int l = 0;
    if (c->reuse)
        while (l < c->n_slot && l < n - 1 && c->slot_ids[l] == ids[l]) l++;
    if (!c->recurrent) {
        if (l < c->n_slot && tl_slot_truncate(c->m->e, c->slot, l, &err)) l = 0;
        if (l == 0 && c->n_slot > 0) tl_slot_truncate(c->m->e, c->slot, 0, &err);
        c->n_slot = l;
        return l;
    }
    if (l == c->n_slot) return l; /* the slot is a prefix already */
    int best = -1;
    for (int i = 0; i < c->n_snaps; i++)
        if (c->snaps[i].len <= l && (best < 0 || c->snaps[i].len > c->snaps[best].len)) best = i;
    if (best >= 0 && tl_slot_restore(c->m->e, c->slot, c->snaps[best].s, &err) == 0) {
        l = c->snaps[best].len;
    } else {
        tl_slot_release(c->m->e, c->slot);
        c->slot = tl_slot_acquire(c->m->e, &err);
        l = 0;
    }
    snaps_clear(c, l);
    c->n_slot = l;
    return l;
}

static void chat_reset(chat *c) {
    size_t keep = 0;
    json_t *first = json_array_get(c->history, 0);
    if (first && role_is(first, "system")) keep = 1;
    while (json_array_size(c->history) > keep) json_array_remove(c->history, keep);
    snaps_clear(c, -1);
    tl_err err = {0};
    tl_slot_release(c->m->e, c->slot);
    c->slot = tl_slot_acquire(c->m->e, &err);
    c->n_slot = 0;
    c->has_last = 0;
}

/* Render the history and encode it. */
static int chat_prompt(chat *c, char **rendered, int32_t **ids, size_t *n) {
    char *mj = json_dumps(c->history, JSON_COMPACT);
    if (!mj) return cli_error("your message is not valid UTF-8"), 2;
    int rc = cli_render(c->m, c->a, mj, c->thinking, 1, rendered);
    free(mj);
    if (rc) return rc;
    tl_err err = {0};
    if (tl_tok_encode(c->m->tok, *rendered, strlen(*rendered), 0, ids, n, &err)) {
        cli_error("tokenizing the conversation: %s", err.msg);
        return 1;
    }
    return 0;
}

/* Where the history ends inside the prompt: the ids of the conversation rendered without the
 * assistant's header, when they are a prefix of ids. The next turn renders this part again the
 * same way (a template may drop the reasoning of earlier replies, so the header and what
 * follows it may not come back), which makes it the snapshot to keep. 0 when unknown. */
static int history_boundary(chat *c, const int32_t *ids, int n) {
    char *mj = json_dumps(c->history, JSON_COMPACT), *r = NULL;
    if (!mj) return 0;
    int b = 0;
    tl_err err = {0};
    tl_chat_opts o = {0};
    o.thinking = c->thinking;
    o.bos_token = c->m->bos;
    o.eos_token = c->m->eos;
    if (tl_chat_render(c->m->tpl, mj, NULL, c->a->template_config, &o, &r, NULL, &err) == 0) {
        int32_t *h = NULL;
        size_t hn = 0;
        if (tl_tok_encode(c->m->tok, r, strlen(r), 0, &h, &hn, &err) == 0 && (int)hn < n &&
            !memcmp(h, ids, hn * sizeof *h))
            b = (int)hn;
        free(h);
    }
    free(r);
    free(mj);
    return b;
}

static void print_turn_stats(const tl_gen_stats *st, FILE *f) {
    fprintf(f, "[prompt %d tokens (reused %d, prefilled %d), %.1f tok/s · generation %d tokens, "
               "%.1f tok/s · ttft %.3f s · peak %.3f GB]\n",
            st->prompt_tokens, st->reused_tokens, st->prefill_tokens, st->prompt_tps,
            st->generation_tokens, st->generation_tps, st->ttft_ms / 1e3,
            (double)st->peak_memory_bytes / 1e9);
}

/* One user turn. Returns 0, or an exit code for errors that end the chat. */
static int chat_turn(chat *c, const char *user) {
    json_t *msg = json_pack("{s:s,s:s}", "role", "user", "content", user);
    if (!msg) {
        cli_error("your message is not valid UTF-8; not sent");
        return 0;
    }
    json_array_append_new(c->history, msg);
    int ctx = tl_engine_ctx_len(c->m->e);
    int reserve = c->a->max_tokens < ctx / 4 ? c->a->max_tokens : ctx / 4;
    if (reserve < 1) reserve = 1;
    char *rendered = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int dropped = 0, rc;
    json_t *saved = json_deep_copy(c->history); /* put back if the message cannot be sent */
    for (;;) {
        if ((rc = chat_prompt(c, &rendered, &ids, &n))) {
            if (saved) {
                json_decref(c->history);
                c->history = saved;
            }
            json_array_remove(c->history, json_array_size(c->history) - 1);
            return rc == 2 ? 0 : rc;
        }
        if ((long)n + reserve <= ctx) break;
        /* too long: drop the oldest turn after the system prompt, never the new message */
        json_t *first = json_array_get(c->history, 0);
        size_t from = role_is(first, "system");
        if (json_array_size(c->history) <= from + 1) {
            printf("[context: this message alone needs %zu tokens; the context holds %d with "
                   "room for %d to generate. Send something shorter, or restart with a larger "
                   "--ctx-len]\n", n, ctx, reserve);
            if (saved) { /* the conversation stays as it was */
                json_decref(c->history);
                c->history = saved;
                saved = NULL;
            }
            json_array_remove(c->history, json_array_size(c->history) - 1);
            free(rendered);
            free(ids);
            return 0;
        }
        /* a whole turn: the user message and the replies up to the next user message */
        json_array_remove(c->history, from);
        while (json_array_size(c->history) > from + 1 &&
               !role_is(json_array_get(c->history, from), "user"))
            json_array_remove(c->history, from);
        dropped++;
        free(rendered);
        free(ids);
        rendered = NULL, ids = NULL;
    }
    json_decref(saved);
    if (dropped)
        printf("[context full: dropped the oldest %d turn%s to fit %d tokens]\n", dropped,
               dropped == 1 ? "" : "s", ctx);

    tl_err err = {0};
    uint64_t t0 = tl_now_ns();
    int cached = slot_rewind(c, ids, (int)n);
    if (c->slot < 0) {
        cli_error("no free slot: %s", err.msg);
        free(rendered), free(ids);
        return 1;
    }
    /* recurrent state: prefill up to the end of the history and keep a snapshot there (the next
     * turn renders that part again); the rest goes through the generation loop */
    int boundary = c->recurrent && c->reuse ? history_boundary(c, ids, (int)n) : 0;
    if (boundary > c->n_slot) {
        tl_batch_seq seq = {c->slot, boundary - c->n_slot, ids + c->n_slot, 0};
        if (tl_engine_forward(c->m->e, &seq, 1, NULL, &err)) {
            cli_error("prefill failed: %s", err.msg);
            free(rendered), free(ids);
            return 1;
        }
        c->n_slot = boundary;
        snap_take(c);
    }
    int fed_before = c->n_slot;
    slot_ids_set(c, ids, c->n_slot); /* the slot holds ids[0..n_slot) now */

    cli_show show;
    cli_show_init(&show, stdout, tl_chat_prompt_opens_think(rendered), c->a->hide_thinking, 0);
    tl_gen_opts go = {0};
    go.sample = &c->sp;
    go.max_tokens = c->a->max_tokens;
    go.stop_ids = c->m->stop_ids;
    go.n_stop_ids = c->m->n_stop_ids;
    go.stop_strs = c->a->stops;
    go.n_stop_strs = c->a->n_stops;
    go.tok = c->m->tok;
    go.on_text = show_or_stop;
    go.cb_ctx = &show;
    tl_gen_result res;
    g_interrupted = 0;
    rc = tl_generate(c->m->e, c->slot, ids, (int)n, fed_before, &go, &res, &err);
    if (rc) {
        cli_error("generation failed: %s", err.msg);
        cli_show_free(&show);
        free(rendered), free(ids);
        return 1;
    }
    cli_show_finish(&show);
    fputc('\n', stdout);
    if (res.finish == TL_FINISH_ABORT) printf("[interrupted]\n");
    if (res.finish == TL_FINISH_LENGTH && res.n_ids < c->a->max_tokens)
        printf("[reply cut: the context (%d tokens) is full; the oldest turns make room next "
               "turn]\n", tl_engine_ctx_len(c->m->e));
    g_interrupted = 0;
    /* the slot now holds the prompt and every generated token but the last */
    int keep = res.slot_tokens;
    int32_t *held = malloc((size_t)(keep > 0 ? keep : 1) * sizeof *held);
    if (held) {
        memcpy(held, ids, (size_t)(keep < (int)n ? keep : (int)n) * sizeof *held);
        for (int i = (int)n; i < keep; i++) held[i] = res.ids[i - (int)n];
        free(c->slot_ids);
        c->slot_ids = held;
        c->cap_slot = c->n_slot = keep;
    } else { /* cannot track it: start over next turn */
        c->n_slot = 0;
        tl_slot_truncate(c->m->e, c->slot, 0, &err);
    }
    snap_take(c);
    res.stats.t_start_ns = t0;
    res.stats.prefill_tokens = (int)n - cached;
    tl_gen_stats_finish(&res.stats);
    print_turn_stats(&res.stats, stdout);
    fflush(stdout);
    c->last = res.stats;
    c->has_last = 1;
    c->turns++;

    json_t *am = json_pack("{s:s,s:s%}", "role", "assistant", "content",
                           show.content.p ? show.content.p : "", show.content.n);
    if (am && show.reasoning.n)
        json_object_set_new(am, "reasoning_content",
                            json_stringn(show.reasoning.p, show.reasoning.n));
    if (am) json_array_append_new(c->history, am);
    cli_show_free(&show);
    tl_gen_result_free(&res);
    free(rendered);
    free(ids);
    return 0;
}

static void chat_stats(chat *c) {
    tl_mem_stats ms;
    tl_mem_get(&ms);
    size_t snap_bytes = 0;
    for (int i = 0; i < c->n_snaps; i++) snap_bytes += tl_snapshot_bytes(c->snaps[i].s);
    printf("[stats] turns %d, messages %zu, slot %d of %d tokens, snapshots %d (%.1f MB), "
           "memory %.3f GB (peak %.3f GB), thinking %s\n",
           c->turns, json_array_size(c->history), c->n_slot, tl_engine_ctx_len(c->m->e),
           c->n_snaps, snap_bytes / 1e6, ms.cur_total / 1e9, ms.peak_total / 1e9,
           c->thinking == TL_THINKING_ON ? "on" : c->thinking == TL_THINKING_OFF ? "off"
                                                                              : "template default");
    if (c->has_last) tl_gen_stats_print(&c->last, stdout);
}

int cmd_chat(int argc, char **argv) {
    /* --no-prefix-cache is ours (prefill everything each turn: for checking the cache) */
    int reuse = 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--no-prefix-cache")) {
            reuse = 0;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i - 1) * sizeof *argv);
            argc--;
            i--;
        }
    cli_gen_args a;
    int rc = cli_gen_parse(&a, argc, argv, 1);
    if (rc != CLI_GO_ON) return rc;
    cli_model m;
    chat c = {0};
    int exit_code = cli_model_prepare(&m, &a);
    if (exit_code) goto out;
    if (!m.tok) {
        cli_error("%s has no tokenizer.json: chat needs one", m.dir);
        exit_code = 2;
        goto out;
    }
    if (!m.tpl) {
        cli_error("%s has no chat template (chat_template.jinja or \"chat_template\" in "
                  "tokenizer_config.json): chat needs one; use tallow generate "
                  "--ignore-chat-template for plain text", m.dir);
        exit_code = 2;
        goto out;
    }
    int ctx = a.ctx_len;
    if (!ctx) {
        int maxpos = m.cfg.max_position_embeddings > 0 ? m.cfg.max_position_embeddings : 4096;
        ctx = maxpos < 4096 ? maxpos : 4096;
    }
    if ((exit_code = cli_model_open_engine(&m, &a, ctx, 1))) goto out;
    if ((exit_code = cli_model_stop_ids(&m, &a))) goto out;
    const tl_model_info *mi = tl_engine_info(m.e);
    cli_gen_sampling(&a, &m, &c.sp);
    tl_err err = {0};
    if (tl_sample_params_check(&c.sp, mi->vocab_size, &err)) {
        cli_error("%s", err.msg);
        exit_code = 2;
        goto out;
    }
    if (a.verbose == 2) cli_gen_print_settings(stderr, &a, &c.sp);
    c.a = &a;
    c.m = &m;
    c.thinking = a.thinking;
    c.reuse = reuse;
    c.recurrent = mi->arch == TL_ARCH_QWEN35 || mi->state_bytes_per_slot > 0;
    c.history = json_array();
    if (a.system_prompt)
        json_array_append_new(c.history,
                              json_pack("{s:s,s:s}", "role", "system", "content", a.system_prompt));
    if ((c.slot = tl_slot_acquire(m.e, &err)) < 0) {
        cli_error("%s", err.msg);
        exit_code = 1;
        goto out;
    }
    int tty = isatty(0);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt ends getline */
    sigaction(SIGINT, &sa, NULL);
    if (tty)
        printf("tallow chat — %s (%s). /reset, /thinking on|off, /stats, /quit\n", m.dir,
               mi->arch_name ? mi->arch_name : "?");
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) {
            fputs(">> ", stdout);
            fflush(stdout);
        }
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0 || g_interrupted) break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (line[0] == '/') {
            if (!strcmp(line, "/quit") || !strcmp(line, "/exit") || !strcmp(line, "/q")) break;
            if (!strcmp(line, "/reset")) {
                chat_reset(&c);
                printf("[reset: history cleared%s]\n", a.system_prompt ? ", system prompt kept" : "");
            } else if (!strcmp(line, "/thinking on") || !strcmp(line, "/thinking off")) {
                c.thinking = line[11] == 'n' ? TL_THINKING_ON : TL_THINKING_OFF;
                printf("[thinking %s]\n", c.thinking == TL_THINKING_ON ? "on" : "off");
            } else if (!strcmp(line, "/stats")) {
                chat_stats(&c);
            } else if (!strcmp(line, "/help")) {
                printf("/reset  forget the conversation\n/thinking on|off\n/stats\n/quit\n");
            } else {
                printf("[unknown command '%s': /reset, /thinking on|off, /stats, /quit]\n", line);
            }
            fflush(stdout);
            continue;
        }
        if ((exit_code = chat_turn(&c, line))) break;
        if (c.slot < 0) {
            cli_error("lost the slot");
            exit_code = 1;
            break;
        }
    }
    free(line);
out:
    if (c.m) snaps_clear(&c, -1);
    if (c.history) json_decref(c.history);
    free(c.slot_ids);
    if (m.e && c.slot >= 0 && c.m) tl_slot_release(m.e, c.slot);
    cli_model_close(&m);
    cli_gen_args_free(&a);
    return exit_code;
}
