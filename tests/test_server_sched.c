/* test_server_sched.c — the continuous-batching scheduler without HTTP, on the @mock model:
 * sequences join a running batch and leave it without draining it, each one's tokens are the
 * same as when it runs alone (same seed), cancelling frees the slot at once, a full queue is
 * refused, and the memory cap refuses work instead of failing later. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/sched.h"
#include "test.h"

static tl_srv_model *M;
static tl_sched *S;
static tl_metrics MET;

static tl_request *make_req(const char *body) {
    tl_request *r = NULL;
    tl_api_err e;
    int rc = tl_request_parse(TL_REQ_COMPLETION, body, strlen(body), M->vocab_size, &r, &e);
    CHECKF(rc == 0, "parse %s: %s", body, e.message);
    return r;
}

static tl_seq *submit(const char *prompt, int max_new, double temp, uint64_t seed) {
    char body[512];
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"temperature\":%g,\"seed\":%llu,"
             "\"logit_bias\":{\"257\":-100,\"262\":-100}}", prompt, temp,
             (unsigned long long)seed);
    tl_request *r = make_req(body);
    int32_t *ids = NULL;
    size_t n = 0;
    tl_err err;
    M->encode(M, r->prompt, strlen(r->prompt), 1, &ids, &n, &err);
    tl_seq *q = NULL;
    CHECK(tl_seq_new(&q, r, ids, (int)n, max_new, &err) == 0);
    free(ids);
    int rc = tl_sched_submit(S, q, &err);
    if (rc < 0) {
        tl_seq_free(q);
        return NULL;
    }
    return q;
}

/* Wait until q is done (or n_events reach at_least); returns its text (malloc'd). */
static char *wait_text(tl_seq *q, int at_least) {
    tl_sched_lock(S);
    while (!q->done && (at_least <= 0 || q->n_events < at_least)) tl_sched_wait(S, q, 100);
    char *t = strndup(q->text ? q->text : "", q->text_len);
    tl_sched_unlock(S);
    return t;
}

static void open_all(int max_seqs, int max_queue, int64_t mem_cap) {
    tl_mock_opts mo = {512, 1024, 8, 500, 10, 0};
    tl_err err;
    CHECK(tl_mock_open(&M, &mo, &err) == 0);
    tl_metrics_init(&MET);
    tl_sched_opts so = {max_seqs, max_queue, 4, mem_cap, 0};
    CHECK(tl_sched_new(&S, M, &so, &MET, &err) == 0);
}

static void close_all(void) {
    tl_sched_free(S);
    M->close(M);
    tl_metrics_destroy(&MET);
}

int main(void) {
    open_all(4, 8, 0);
    /* alone */
    const char *prompts[3] = {"a long story about", "short", "the middle one"};
    int lens[3] = {200, 10, 60};
    char *alone[3];
    for (int i = 0; i < 3; i++) {
        tl_seq *q = submit(prompts[i], lens[i], 0.9, 11 + i);
        alone[i] = wait_text(q, 0);
        CHECK(q->finish == TL_SRV_FIN_LENGTH && q->n_events == lens[i]);
        tl_sched_release(S, q);
    }
    /* together: the long one starts, the short one joins and leaves, the middle one joins later */
    uint64_t passes0 = MET.forward_passes;
    tl_seq *l = submit(prompts[0], lens[0], 0.9, 11);
    free(wait_text(l, 20));
    tl_seq *sh = submit(prompts[1], lens[1], 0.9, 12);
    char *t1 = wait_text(sh, 0);
    tl_sched_lock(S);
    int long_progress = l->n_events;
    tl_sched_unlock(S);
    CHECKF(long_progress < lens[0], "the long sequence is still running (%d tokens) when the "
           "short one is done: it was not drained", long_progress);
    tl_seq *mid = submit(prompts[2], lens[2], 0.9, 13);
    char *t2 = wait_text(mid, 0);
    char *t0 = wait_text(l, 0);
    CHECK_STREQ(t0, alone[0]);
    CHECK_STREQ(t1, alone[1]);
    CHECK_STREQ(t2, alone[2]);
    CHECKF(MET.max_batch_seqs >= 2, "max batch %d", MET.max_batch_seqs);
    CHECKF(MET.forward_passes - passes0 < (uint64_t)(lens[0] + lens[1] + lens[2]),
           "shared passes: %llu", (unsigned long long)(MET.forward_passes - passes0));
    tl_sched_release(S, l);
    tl_sched_release(S, sh);
    tl_sched_release(S, mid);
    free(t0), free(t1), free(t2);
    for (int i = 0; i < 3; i++) free(alone[i]);

    /* cancel: fill all 4 slots, cancel them, a new sequence runs at once */
    tl_seq *q[4];
    for (int i = 0; i < 4; i++) q[i] = submit("x", 900, 1.0, (uint64_t)i);
    for (int i = 0; i < 4; i++) free(wait_text(q[i], 2));
    CHECK(MET.running == 4);
    for (int i = 0; i < 4; i++) tl_sched_release(S, q[i]);
    tl_seq *after = submit("after", 5, 0, 1);
    free(wait_text(after, 0));
    CHECK(after->finish == TL_SRV_FIN_LENGTH && after->n_events == 5);
    CHECK(MET.cancelled >= 4);
    tl_sched_release(S, after);
    close_all();

    /* queue full */
    open_all(1, 1, 0);
    tl_seq *a = submit("a", 900, 1.0, 1);
    free(wait_text(a, 1)); /* running */
    tl_seq *b = submit("b", 5, 1.0, 1); /* queued */
    tl_seq *c = submit("c", 5, 1.0, 1); /* refused */
    CHECK(b != NULL && c == NULL);
    CHECK(MET.rejected_queue_full == 1);
    tl_sched_release(S, b); /* a waiting client goes away: its place in the queue is free */
    b = submit("b", 5, 1.0, 1);
    CHECK(b != NULL);
    tl_sched_release(S, a);
    free(wait_text(b, 0));
    CHECK(b->finish == TL_SRV_FIN_LENGTH);
    tl_sched_release(S, b);
    close_all();

    /* memory cap */
    open_all(2, 4, 1);
    CHECK(submit("a", 5, 1.0, 1) == NULL);
    CHECK(MET.rejected_memory == 1);
    close_all();
    return test_done();
}
