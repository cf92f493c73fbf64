/* examples/futures.c - ask, wait with a deadline, and what happens to an
 * answer that comes too late.
 *
 * Replaces the Python tutorial's futures:
 *     fut = executor.submit(slow, delay)
 *     fut.result(timeout=0.5)   # the value, or TimeoutError
 * Here tr_ask sends a request and returns a future at once; tr_future_get
 * waits for the reply. The deadline travels inside the request, so the
 * "slow" actor sees how long its asker will wait (tr_msg_deadline_left_ms).
 * Every ask settles: with the reply, or with TR_ETIMEDOUT at the deadline.
 * A reply that comes after that is dropped and counted in the node's
 * late_replies, never handed to a later wait.
 *
 * The slow actor does not block while it "works": it keeps a copy of the
 * request (tr_msg_dup), arms a timer, and answers from the timer message
 * with tr_reply (a deferred reply). Meanwhile it takes other requests.
 *
 * Why no lock: the pending requests are the slow actor's private state;
 * a future belongs to the thread that asked, and the reply reaches it as a
 * message.
 *
 * Its messages, drawn: docs/diagrams/futures.svg */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

#define PENDING_MAX 8

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "futures: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

struct slow {
    tr_msg_t *pending[PENDING_MAX]; /* kept requests, by slot */
};

/* A request "work" [delay ms]: answer "done" [delay] after delay ms. The
 * timer message "due" [slot, delay] says which kept request to answer. */
static int
s_slow_work(tr_actor_t *self, struct slow *s, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t delay;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &delay);
    if (rc != 0 || delay < 0 || delay > 10000)
        return tr_reply_error(self, msg, rc ? rc : TR_ERANGE);
    printf("slow: got work %lld ms; the asker waits %lld ms more\n",
           (long long)delay, (long long)tr_msg_deadline_left_ms(msg));
    int slot = 0;
    while (slot < PENDING_MAX && s->pending[slot] != NULL)
        slot++;
    if (slot == PENDING_MAX)
        return tr_reply_error(self, msg, TR_EAGAIN);
    /* The handler only borrows msg: keep a copy to reply to later. */
    tr_msg_t *due = NULL;
    if ((rc = tr_msg_dup(msg, &s->pending[slot])) != 0)
        return rc;
    if ((rc = tr_msg_create(&due, "due")) == 0 &&
        (rc = tr_msg_add_int(due, slot)) == 0 &&
        (rc = tr_msg_add_int(due, delay)) == 0 &&
        (rc = tr_timer_after(self, (int)delay, &due, NULL)) == 0)
        return 0;
    tr_msg_destroy(&due);
    tr_msg_destroy(&s->pending[slot]);
    return rc;
}

/* The timer fired (it comes from ourselves): answer the kept request. */
static int
s_slow_due(tr_actor_t *self, struct slow *s, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t slot, delay;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &slot);
    if (rc == 0 && (rc = tr_read_int(&r, &delay)) == 0 &&
        (slot < 0 || slot >= PENDING_MAX || s->pending[slot] == NULL))
        rc = TR_EPROTO;
    if (rc != 0)
        return rc; /* a bug of ours: crash loudly */
    tr_msg_t *req = s->pending[slot], *reply = NULL;
    int64_t left = tr_msg_deadline_left_ms(req);
    printf("slow: work %lld ms done, %s\n", (long long)delay,
           left != 0 ? "replying" : "asker gave up, replying anyway");
    if ((rc = tr_msg_create(&reply, "done")) == 0 &&
        (rc = tr_msg_add_int(reply, delay)) == 0)
        rc = tr_reply(self, req, &reply); /* 0 even if dropped as late */
    tr_msg_destroy(&reply);
    tr_msg_destroy(&s->pending[slot]);
    return rc;
}

static int
s_slow_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    if (tr_msg_is(msg, "work"))
        return s_slow_work(self, state, msg);
    if (tr_msg_is(msg, "due") && tr_msg_sender(msg) == tr_self(self))
        return s_slow_due(self, state, msg);
    return TR_EUNHANDLED;
}

/* Requests still kept when the actor ends are ours to free. */
static void
s_slow_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self;
    (void)reason;
    struct slow *s = state;
    for (int i = 0; i < PENDING_MAX; i++)
        tr_msg_destroy(&s->pending[i]);
}

TR_BEHAVIOUR(slow, .state_size = sizeof(struct slow),
             .handle = s_slow_handle, .terminate = s_slow_terminate)

/* Ask for work of delay ms, wait up to timeout_ms; the ask's outcome. */
static int
s_ask_work(tr_node_t *node, int delay, int timeout_ms)
{
    tr_msg_t *req, *reply = NULL;
    tr_future_t *fut;
    tr_reader_t r;
    int64_t v = -1;
    s_check(tr_msg_create(&req, "work"), "tr_msg_create");
    s_check(tr_msg_add_int(req, delay), "tr_msg_add_int");
    printf("main: ask work %d ms, result(timeout=%d ms)\n", delay,
           timeout_ms);
    s_check(tr_ask(node, "slow", &req, timeout_ms, &fut), "tr_ask");
    /* The deadline is in the ask already: wait until the future settles. */
    int rc = tr_future_get(fut, TR_FOREVER, &reply);
    tr_future_destroy(&fut);
    if (rc == 0) {
        tr_reader_init(&r, reply);
        rc = tr_read_int(&r, &v); /* checked by the caller, with the rest */
        printf("main: answer '%s' %lld\n", tr_msg_tag(reply), (long long)v);
        tr_msg_destroy(&reply);
    } else {
        printf("main: no answer: %s\n", tr_strerror(rc));
    }
    return rc;
}

int
main(void)
{
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    s_check(tr_spawn(node, "slow", &(tr_spawn_opts_t){.name = "slow"}, NULL),
            "spawn slow");

    int fast = s_ask_work(node, 20, 500);  /* answered in time */
    int late = s_ask_work(node, 300, 100); /* main gives up at 100 ms */

    /* The late reply goes out at ~320 ms; main counts it as it reads its
     * inbox, which it does while it waits. So wait for one more answer, one
     * that the slow actor sends after the late one (per-sender order). */
    int flush = s_ask_work(node, 350, 2000);
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    printf("main: late_replies = %llu (the one that came after 100 ms)\n",
           (unsigned long long)st.late_replies);
    s_check(tr_node_destroy(&node), "tr_node_destroy");

    bool ok = fast == 0 && late == TR_ETIMEDOUT && flush == 0 &&
              st.late_replies == 1;
    printf("futures: %s\n", ok ? "ok" : "UNEXPECTED");
    return ok ? 0 : 1;
}
