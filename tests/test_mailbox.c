/* tests/test_mailbox.c - bounded mailboxes: a full mailbox refuses
 * (tr_try_tell: TR_EAGAIN) or makes the sender wait (tr_tell: up to the send
 * timeout or the deadline of the request being handled), everything that was
 * accepted arrives in send order from each sender, and system messages (stop)
 * never wait behind a full mailbox.
 *
 * How a mailbox is filled without sleeping: the worker's "block" handler
 * does a tr_call to a "gate" actor (ts_gate, tests/support.c), which
 * keeps the request (a deferred reply) until the test tells it "open".
 * The test learns that the worker is blocked by asking the gate "watch"
 * [n], answered once n requests are held. Meanwhile nothing reads the
 * worker's mailbox, so it fills.
 *
 * Check forks per test: every node is created inside the test. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"
#include "troupe.h"

/* Senders told apart by the worker (index carried in each message). */
#define S_SENDERS_MAX 16
/* Stop filling after this many accepted messages: the mailbox is unbounded. */
#define S_FILL_MAX 100000

/* "data" [sender, seq], what the worker checks the order of. */
static tr_msg_t *
s_data(int64_t sender, int64_t seq)
{
    int64_t v[2] = {sender, seq};
    return ts_msg_ints("data", 2, v);
}

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* worker: "block" waits in a tr_call to the gate; "data" [sender, seq]
 * checks that each sender's sequence goes 0, 1, 2, ...; "report" replies
 * [count, out_of_order]; "await" [n] replies the same once count >= n. */
typedef struct {
    int64_t next[S_SENDERS_MAX];
    int64_t count, bad;
    int64_t first_want, first_got; /* the first message out of order */
    int block_rc;
    tr_msg_t *waiter;
    int64_t want;
} worker_t;

static int
s_worker_answer(tr_actor_t *self, worker_t *w)
{
    if (w->waiter == NULL || w->count < w->want)
        return 0;
    int64_t v[4] = {w->count, w->bad, w->first_want, w->first_got};
    int rc = ts_reply_ints(self, w->waiter, 4, v);
    tr_msg_destroy(&w->waiter);
    return rc;
}

static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    worker_t *w = state;
    if (tr_msg_is(msg, "data")) {
        int64_t v[2];
        if (ts_read_ints(msg, 2, v) != 0 || v[0] < 0 ||
            v[0] >= S_SENDERS_MAX) {
            w->bad++;
        } else if (v[1] != w->next[v[0]]) {
            if (w->bad++ == 0) {
                w->first_want = w->next[v[0]];
                w->first_got = v[1];
            }
            if (v[1] >= w->next[v[0]])
                w->next[v[0]] = v[1] + 1;
        } else {
            w->next[v[0]] = v[1] + 1;
        }
        w->count++;
        return s_worker_answer(self, w);
    }
    if (tr_msg_is(msg, "block")) {
        tr_msg_t *hold = NULL, *reply = NULL;
        int rc = tr_msg_create(&hold, "hold");
        if (rc == 0)
            rc = tr_call(tr_actor_node(self), "gate", &hold, TS_CALL_MS,
                         &reply);
        tr_msg_destroy(&hold);
        tr_msg_destroy(&reply);
        /* Recorded, not returned: a stop while blocked gives
         * TR_ECANCELED here, and the stop's reason is what we check. */
        w->block_rc = rc;
        return 0;
    }
    if (tr_msg_is(msg, "report")) {
        int64_t v[3] = {w->count, w->bad, w->block_rc};
        return ts_reply_ints(self, msg, 3, v);
    }
    if (tr_msg_is(msg, "await")) {
        int rc = ts_read_ints(msg, 1, &w->want);
        if (rc != 0)
            return rc;
        tr_msg_destroy(&w->waiter);
        if ((rc = tr_msg_dup(msg, &w->waiter)) != 0)
            return rc;
        return s_worker_answer(self, w);
    }
    return TR_EUNHANDLED;
}

static int s_worker_reason = 1; /* terminate's reason, for the stop test */

static void
s_worker_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self;
    worker_t *w = state;
    tr_msg_destroy(&w->waiter);
    s_worker_reason = reason;
}

TR_BEHAVIOUR(worker, .state_size = sizeof(worker_t),
             .handle = s_worker_handle, .terminate = s_worker_terminate);

/* idle: takes anything. */
static int
s_idle_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return 0;
}

TR_BEHAVIOUR(idle, .handle = s_idle_handle);

/* ------------------------------------------------------------------ */
/* Fixture pieces                                                      */
/* ------------------------------------------------------------------ */

/* Spawn the gate and a worker named name (mailbox_hwm hwm, 0: node's),
 * and block the worker in the gate. */
static tr_id_t
s_blocked_worker(tr_node_t *node, const char *name, int hwm)
{
    tr_id_t id = 0;
    ts_spawn(node, "ts_gate", "gate");
    tr_spawn_opts_t o = {.name = name, .mailbox_hwm = hwm};
    ck_assert_int_eq(tr_spawn(node, "worker", &o, &id), 0);
    ts_gate_block(node, name);
    return id;
}

/* try_tell "data" [sender, seq...] until the mailbox refuses; returns how
 * many were accepted. The refused message is checked to be still ours. */
static int64_t
s_fill(tr_node_t *node, const char *name, int64_t sender, int64_t first)
{
    int64_t seq = first;
    for (;;) {
        tr_msg_t *m = s_data(sender, seq);
        int rc = tr_try_tell(node, name, &m);
        if (rc == TR_EAGAIN) {
            ck_assert_ptr_nonnull(m); /* still ours */
            ck_assert_str_eq(tr_msg_tag(m), "data");
            tr_msg_destroy(&m);
            return seq - first;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_null(m);
        seq++;
        ck_assert_msg(seq - first < S_FILL_MAX, "mailbox never filled");
    }
}

/* ------------------------------------------------------------------ */
/* Full mailbox                                                        */
/* ------------------------------------------------------------------ */

START_TEST(try_tell_returns_eagain_when_mailbox_is_full)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.mailbox_hwm = 50});
    tr_id_t w = s_blocked_worker(node, "w", 0);
    int64_t accepted = s_fill(node, "w", 0, 0);
    /* The bound is the mailbox's high-water mark; ZeroMQ's inproc pipe
     * adds the sender's (1) to it. */
    ck_assert_int_ge(accepted, 50);
    ck_assert_int_le(accepted, 52);

    /* Still full, by id too; the message stays the caller's each time. */
    for (int i = 0; i < 3; i++) {
        tr_msg_t *m = s_data(0, accepted);
        ck_assert_int_eq(tr_try_tell_id(node, w, &m), TR_EAGAIN);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(tr_try_tell(node, "w", &m), TR_EAGAIN);
        ck_assert_ptr_nonnull(m);
        tr_msg_destroy(&m);
    }
    ts_gate_open(node);
    int64_t v[4];
    ck_assert_int_eq(
        ts_call_ints(node, "w", ts_msg_i("await", accepted), 4, v), 0);
    ck_assert_int_eq(v[0], accepted);
    ck_assert_int_eq(v[1], 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(spawn_mailbox_hwm_overrides_the_node_default)
{
    tr_node_t *node = ts_node(NULL); /* default 1000 */
    s_blocked_worker(node, "w", 5);
    int64_t accepted = s_fill(node, "w", 0, 0);
    ck_assert_int_ge(accepted, 5);
    ck_assert_int_le(accepted, 7);
    ts_gate_open(node);
    ts_destroy(&node);
}
END_TEST

START_TEST(tell_times_out_when_mailbox_stays_full)
{
    tr_node_t *node =
        ts_node(&(tr_node_opts_t){.mailbox_hwm = 10, .send_timeout_ms = 150});
    tr_id_t w = s_blocked_worker(node, "w", 0);
    int64_t accepted = s_fill(node, "w", 0, 0);

    tr_msg_t *m = s_data(0, accepted);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_tell(node, "w", &m), TR_ETIMEDOUT);
    ck_assert_int_ge(ts_now_ms() - t0, 150);
    ck_assert_ptr_nonnull(m); /* still ours */
    t0 = ts_now_ms();
    ck_assert_int_eq(tr_tell_id(node, w, &m), TR_ETIMEDOUT);
    ck_assert_int_ge(ts_now_ms() - t0, 150);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);

    /* Nothing refused was delivered: the worker sees exactly accepted. */
    ts_gate_open(node);
    int64_t v[3];
    ck_assert_int_eq(ts_call_ints(node, "w", ts_msg("report"), 3, v), 0);
    ck_assert_int_eq(v[0], accepted);
    ck_assert_int_eq(v[1], 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(ask_to_a_full_mailbox_fails_at_its_own_deadline)
{
    /* send_timeout is long: the ask's own deadline must bound the wait. */
    tr_node_t *node = ts_node(
        &(tr_node_opts_t){.mailbox_hwm = 10, .send_timeout_ms = 20000});
    s_blocked_worker(node, "w", 0);
    s_fill(node, "w", 0, 0);

    tr_msg_t *m = ts_msg("report");
    tr_future_t *f = NULL;
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_ask(node, "w", &m, 200, &f), TR_ETIMEDOUT);
    int64_t dt = ts_now_ms() - t0;
    ck_assert_int_ge(dt, 200);
    ck_assert_int_lt(dt, 10000);
    ck_assert_ptr_null(f); /* out-parameter set on success only */
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ts_gate_open(node);
    ts_destroy(&node);
}
END_TEST

START_TEST(accepted_messages_all_arrive_in_send_order)
{
    tr_node_t *node =
        ts_node(&(tr_node_opts_t){.mailbox_hwm = 100, .send_timeout_ms = 50});
    s_blocked_worker(node, "w", 0);
    int64_t sent = s_fill(node, "w", 0, 0);
    /* A few refused blocking tells in between must not leave gaps. */
    for (int i = 0; i < 2; i++) {
        tr_msg_t *m = s_data(0, sent);
        ck_assert_int_eq(tr_tell(node, "w", &m), TR_ETIMEDOUT);
        tr_msg_destroy(&m);
    }
    ts_gate_open(node);
    /* Then many more through blocking tells, which wait for room. */
    for (int i = 0; i < 5000; i++, sent++)
        ts_tell(node, "w", s_data(0, sent));
    int64_t v[3];
    ck_assert_int_eq(ts_call_ints(node, "w", ts_msg("report"), 3, v), 0);
    ck_assert_int_eq(v[0], sent); /* none lost */
    ck_assert_int_eq(v[1], 0);    /* none out of order or duplicated */
    ck_assert_int_eq(v[2], 0);    /* the block's call got its reply */
    ts_destroy(&node);
}
END_TEST

START_TEST(stop_is_not_blocked_by_a_full_mailbox_and_counts_dead_letters)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.mailbox_hwm = 20});
    tr_id_t w = s_blocked_worker(node, "w", 0);

    /* An ask queued in the mailbox: it must settle with TR_EDEAD. */
    tr_msg_t *m = ts_msg("report");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "w", &m, TS_CALL_MS, &f), 0);
    int64_t accepted = s_fill(node, "w", 0, 0) + 1;

    tr_node_stats_t before, after;
    ts_stats(node, &before);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_stop(node, w, 5000), 0);
    ck_assert_int_lt(ts_now_ms() - t0, 2000); /* promptly, not at 5 s */
    ck_assert_int_eq(s_worker_reason, TR_ESHUTDOWN);
    ts_stats(node, &after);
    ck_assert_uint_eq(after.dead_letters - before.dead_letters,
                      (uint64_t)accepted);

    ck_assert_int_eq(tr_future_get(f, TS_CALL_MS, NULL), TR_EDEAD);
    ck_assert_int_eq(tr_future_exit_reason(f), TR_ESHUTDOWN);
    tr_future_destroy(&f);

    /* The name is free and sends fail as for any ended actor. */
    tr_id_t id;
    ck_assert_int_eq(tr_whereis(node, "w", &id), TR_ENOENT);
    m = s_data(0, 0);
    ck_assert_int_eq(tr_try_tell_id(node, w, &m), TR_ENOENT);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

/* A sender thread waiting for room when the target ends does not sit out
 * the send timeout. Either it sees the end (TR_ENOENT, the message still
 * its own), or the ending actor's drain made room and took the message,
 * which is then counted as a dead letter with the rest: nothing vanishes
 * unseen (runtime/registry.h, "dead" and "inflight"). */
typedef struct {
    tr_node_t *node;
    ts_flag_t full;
    int rc;
    bool msg_kept;
    int64_t accepted, waited_ms;
} s_waiter_t;

static void *
s_waiting_sender(void *arg)
{
    s_waiter_t *wt = arg;
    wt->accepted = s_fill(wt->node, "w", 1, 0);
    ts_flag_set(&wt->full);
    tr_msg_t *m = s_data(1, wt->accepted);
    int64_t t0 = ts_now_ms();
    wt->rc = tr_tell(wt->node, "w", &m);
    wt->waited_ms = ts_now_ms() - t0;
    wt->msg_kept = m != NULL;
    tr_msg_destroy(&m);
    return NULL;
}

START_TEST(blocked_tell_ends_when_the_target_ends)
{
    tr_node_t *node = ts_node(
        &(tr_node_opts_t){.mailbox_hwm = 10, .send_timeout_ms = 20000});
    tr_id_t w = s_blocked_worker(node, "w", 0);
    s_waiter_t wt = {.node = node, .full = TS_FLAG_INIT, .rc = 1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, s_waiting_sender, &wt), 0);
    ck_assert(ts_flag_wait(&wt.full, TS_CALL_MS));
    ck_assert_int_eq(tr_stop(node, w, 5000), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_lt(wt.waited_ms, 10000);
    tr_node_stats_t st;
    ts_stats(node, &st);
    if (wt.rc == TR_ENOENT) {
        ck_assert(wt.msg_kept);
        ck_assert_uint_eq(st.dead_letters, (uint64_t)wt.accepted);
    } else {
        ck_assert_int_eq(wt.rc, 0);
        ck_assert(!wt.msg_kept);
        ck_assert_uint_eq(st.dead_letters, (uint64_t)wt.accepted + 1);
    }
    ts_destroy(&node);
}
END_TEST

/* proxy: on "flood" fills the worker's mailbox with try_tell, then does one
 * blocking tr_tell and records its rc and how long it waited (the test
 * reads them with "result"). Used inside a request ("flood" asked) and to
 * be stopped while blocked (told). */
typedef struct {
    int64_t rc, waited_ms, accepted;
} proxy_t;

static ts_flag_t s_proxy_full = TS_FLAG_INIT;

static int
s_proxy_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    proxy_t *p = state;
    tr_node_t *node = tr_actor_node(self);
    if (tr_msg_is(msg, "flood")) {
        int rc;
        p->accepted = 0;
        for (;;) {
            tr_msg_t *m = NULL;
            if ((rc = tr_msg_create(&m, "data")) != 0 ||
                (rc = tr_msg_add_int(m, 2)) != 0 ||
                (rc = tr_msg_add_int(m, p->accepted)) != 0)
                return rc;
            rc = tr_try_tell(node, "w", &m);
            tr_msg_destroy(&m);
            if (rc == TR_EAGAIN)
                break;
            if (rc != 0 || ++p->accepted >= S_FILL_MAX)
                return TR_EFAILED;
        }
        ts_flag_set(&s_proxy_full);
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "data")) != 0)
            return rc;
        int64_t t0 = ts_now_ms();
        p->rc = tr_tell(node, "w", &m);
        p->waited_ms = ts_now_ms() - t0;
        tr_msg_destroy(&m);
        return 0; /* not a reply: the asker has given up by now */
    }
    if (tr_msg_is(msg, "result")) {
        int64_t v[3] = {p->rc, p->waited_ms, p->accepted};
        return ts_reply_ints(self, msg, 3, v);
    }
    return TR_EUNHANDLED;
}

static int s_proxy_reason = 1;

static void
s_proxy_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self;
    proxy_t *p = state;
    s_proxy_reason = reason;
    if (p->rc != 0)
        s_proxy_reason = (int)p->rc * 1000 + reason; /* both, for the test */
}

TR_BEHAVIOUR(proxy, .state_size = sizeof(proxy_t), .handle = s_proxy_handle,
             .terminate = s_proxy_terminate);

START_TEST(tell_inside_a_request_waits_no_longer_than_its_deadline)
{
    tr_node_t *node = ts_node(
        &(tr_node_opts_t){.mailbox_hwm = 10, .send_timeout_ms = 20000});
    s_blocked_worker(node, "w", 0);
    ck_assert_int_eq(
        tr_spawn(node, "proxy", &(tr_spawn_opts_t){.name = "p"}, NULL), 0);

    tr_msg_t *m = ts_msg("flood");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "p", &m, 300, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_ETIMEDOUT);
    tr_future_destroy(&f);

    int64_t v[3];
    ck_assert_int_eq(ts_call_ints(node, "p", ts_msg("result"), 3, v), 0);
    ck_assert_int_eq(v[0], TR_ETIMEDOUT);
    ck_assert_int_ge(v[2], 10);    /* it did fill the mailbox */
    ck_assert_int_le(v[1], 10000); /* the request's 300 ms, not 20 s */
    ts_gate_open(node);
    ts_destroy(&node);
}
END_TEST

START_TEST(actor_blocked_on_a_full_mailbox_can_be_stopped)
{
    tr_node_t *node = ts_node(
        &(tr_node_opts_t){.mailbox_hwm = 10, .send_timeout_ms = 20000});
    s_blocked_worker(node, "w", 0);
    tr_id_t p;
    ck_assert_int_eq(
        tr_spawn(node, "proxy", &(tr_spawn_opts_t){.name = "p"}, &p), 0);
    ts_tell(node, "p", ts_msg("flood"));
    ck_assert(ts_flag_wait(&s_proxy_full, TS_CALL_MS));

    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_stop(node, p, 10000), 0);
    ck_assert_int_lt(ts_now_ms() - t0, 5000);
    /* Its tell gave TR_ECANCELED; its terminate got TR_ESHUTDOWN. (The
     * flag may be set just before the blocking tell starts: a stop seen
     * first still cancels it.) */
    ck_assert_int_eq(s_proxy_reason, TR_ECANCELED * 1000 + TR_ESHUTDOWN);
    ts_gate_open(node);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Order and loss with many senders                                    */
/* ------------------------------------------------------------------ */

typedef struct {
    tr_node_t *node;
    int index, count;
    int rc;
} s_sender_t;

static void *
s_sender_main(void *arg)
{
    s_sender_t *s = arg;
    for (int i = 0; i < s->count && s->rc == 0; i++) {
        tr_msg_t *m = NULL;
        if ((s->rc = tr_msg_create(&m, "data")) == 0 &&
            (s->rc = tr_msg_add_int(m, s->index)) == 0 &&
            (s->rc = tr_msg_add_int(m, i)) == 0)
            s->rc = tr_tell(s->node, "w", &m);
        tr_msg_destroy(&m);
    }
    return NULL;
}

/* n threads each tell count messages to "w"; the worker checks that each
 * sender's sequence arrives 0, 1, 2... with no gap. */
static void
s_many_senders(tr_node_t *node, int n, int count)
{
    pthread_t t[S_SENDERS_MAX];
    s_sender_t s[S_SENDERS_MAX];
    for (int i = 0; i < n; i++) {
        s[i] = (s_sender_t){.node = node, .index = i, .count = count};
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_sender_main, &s[i]),
                         0);
    }
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_msg(s[i].rc == 0, "sender %d: %s", i, tr_strerror(s[i].rc));
    }
    int64_t v[4], want = (int64_t)n * count;
    ck_assert_int_eq(ts_call_ints(node, "w", ts_msg_i("await", want), 4, v),
                     0);
    ck_assert_int_eq(v[0], want);
    ck_assert_int_eq(v[1], 0);
}

START_TEST(each_sender_order_is_kept_with_several_senders)
{
    /* A small mailbox, so senders keep waiting for room and interleave. */
    tr_node_t *node = ts_node(&(tr_node_opts_t){.mailbox_hwm = 16});
    ck_assert_int_eq(
        tr_spawn(node, "worker", &(tr_spawn_opts_t){.name = "w"}, NULL), 0);
    s_many_senders(node, 4, 3000);
    ts_destroy(&node);
}
END_TEST

START_TEST(eight_threads_to_one_actor_lose_nothing)
{
    tr_node_t *node = ts_node(NULL);
    ck_assert_int_eq(
        tr_spawn(node, "worker", &(tr_spawn_opts_t){.name = "w"}, NULL), 0);
    s_many_senders(node, 8, 5000);
    ts_destroy(&node);
}
END_TEST

/* A thread keeps at most 256 sending sockets and closes the least recently
 * used one past that. Messages still queued in the closed socket's pipe
 * must not be overtaken by messages sent through its replacement. */
START_TEST(sender_order_is_kept_after_its_socket_cache_evicts_the_target)
{
    tr_node_t *node = ts_node(NULL);
    s_blocked_worker(node, "w", 0);
    /* More than ZeroMQ's inbound_poll_rate (100), so that the receiver
     * sees the new pipe while the old one still holds messages. */
    int64_t seq = 0;
    for (; seq < 400; seq++)
        ts_tell(node, "w", s_data(0, seq));

    /* Talk to 300 other actors: "w" becomes the least recently used. */
    enum { N = 300 };
    tr_id_t *ids = calloc(N, sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq(tr_spawn_n(node, "idle", NULL, N, ids), 0);
    for (int i = 0; i < N; i++) {
        tr_msg_t *m = ts_msg("ping");
        ck_assert_int_eq(tr_tell_id(node, ids[i], &m), 0);
    }
    for (; seq < 800; seq++)
        ts_tell(node, "w", s_data(0, seq));

    ts_gate_open(node);
    int64_t v[4];
    ck_assert_int_eq(ts_call_ints(node, "w", ts_msg_i("await", seq), 4, v),
                     0);
    ck_assert_int_eq(v[0], seq);
    ck_assert_msg(v[1] == 0,
                  "regression: %lld of %lld messages from one sender "
                  "arrived out of order (first: seq %lld where %lld was "
                  "due) after its socket to the target was evicted from "
                  "the sender's cache (runtime/port.c s_peer_get, "
                  "TR__PEERS_MAX)",
                  (long long)v[1], (long long)seq, (long long)v[3],
                  (long long)v[2]);
    free(ids);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* No message vanishes when its target ends mid-send                   */
/* ------------------------------------------------------------------ */

/* The counter counts what it handled; its terminate publishes the total
 * (test-side shared memory, only to observe). */
static _Atomic long s_counted = -1;

static int
s_count_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)self;
    if (!tr_msg_is(msg, "n"))
        return TR_EUNHANDLED;
    ++*(long *)state;
    return 0;
}

static void
s_count_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    atomic_store(&s_counted, *(long *)state);
}

TR_BEHAVIOUR(mbx_counter, .state_size = sizeof(long),
             .handle = s_count_handle, .terminate = s_count_terminate);

typedef struct {
    tr_node_t *node;
    tr_id_t to;
    long sent;       /* tells that returned 0 */
    int last;        /* the code that ended the loop */
    ts_flag_t *going; /* set once this thread has sent 1,000 */
} s_blaster_t;

static void *
s_blaster(void *arg)
{
    s_blaster_t *b = arg;
    for (;;) {
        tr_msg_t *m = ts_msg("n");
        int rc = tr_tell_id(b->node, b->to, &m);
        if (rc != 0) {
            tr_msg_destroy(&m);
            b->last = rc;
            ts_flag_set(b->going); /* never leave the test waiting */
            return NULL;
        }
        if (++b->sent == 1000)
            ts_flag_set(b->going);
    }
}

/* Four threads tell as fast as they can while the target is stopped: every
 * tell that returned 0 was either handled or counted as a dead letter,
 * and each thread ends with TR_ENOENT, never a hang. Run with both
 * liveness protocols (TROUPE_FENCE=atomic in tests/meson.build). */
START_TEST(no_message_vanishes_when_the_target_stops_mid_send)
{
    for (int round = 0; round < 20; round++) {
        atomic_store(&s_counted, -1);
        tr_node_t *node = ts_node(&(tr_node_opts_t){.mailbox_hwm = 64});
        tr_id_t to = 0;
        ck_assert_int_eq(tr_spawn(node, "mbx_counter", NULL, &to), 0);
        s_blaster_t b[4];
        pthread_t t[4];
        ts_flag_t going[4];
        for (int i = 0; i < 4; i++) {
            going[i] = (ts_flag_t)TS_FLAG_INIT;
            b[i] = (s_blaster_t){.node = node, .to = to, .going = &going[i]};
            ck_assert_int_eq(pthread_create(&t[i], NULL, s_blaster, &b[i]),
                             0);
        }
        /* Stop it while all four are in full flow. */
        for (int i = 0; i < 4; i++)
            ck_assert(ts_flag_wait(&going[i], TS_CALL_MS));
        tr_node_stats_t st;
        ck_assert_int_eq(tr_stop(node, to, TS_CALL_MS), 0);
        long sent = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            ck_assert_int_eq(b[i].last, TR_ENOENT);
            sent += b[i].sent;
        }
        ts_stats(node, &st);
        long counted = atomic_load(&s_counted);
        ck_assert_int_ge(counted, 0);
        ck_assert_msg(counted + (long)st.dead_letters == sent,
                      "round %d: sent %ld, handled %ld + dead letters %llu",
                      round, sent, counted,
                      (unsigned long long)st.dead_letters);
        ts_destroy(&node);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Watched sockets and fds                                             */
/* ------------------------------------------------------------------ */

#define TR__IO_TEST_MAX 20

/* "io": watches a PULL socket bound at inproc://io-<name> and a pipe
 * whose read end it gets from a global (the test writes the other end).
 * "count" answers [socket messages, pipe bytes]; a socket message "bad"
 * makes the callback fail; pipe byte 'u' unwatches the pipe. */
typedef struct {
    void *pull;
    int64_t msgs, bytes;
    tr_actor_t *self;
    tr_msg_t *held; /* a "hold" request, never answered */
} s_io_t;

static int s_io_pipe[2] = {-1, -1};
static tr_actor_t *_Atomic s_io_self;

static int
s_io_sock(tr_actor_t *self, void *state, void *sock, int fd)
{
    s_io_t *st = state;
    (void)self;
    ck_assert_ptr_eq(sock, st->pull);
    ck_assert_int_eq(fd, -1);
    char buf[16];
    /* a few a call: the loop calls again while more is there */
    for (int i = 0; i < 8; i++) {
        int n = zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0)
            return zmq_errno() == EAGAIN ? 0 : TR_ESYS;
        if (n == 3 && memcmp(buf, "bad", 3) == 0)
            return TR_EPROTO;
        st->msgs++;
    }
    return 0;
}

static int
s_io_fd(tr_actor_t *self, void *state, void *sock, int fd)
{
    s_io_t *st = state;
    ck_assert_ptr_null(sock);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == 'u')
            ck_assert_int_eq(tr_actor_unwatch_io(self, NULL, fd), 0);
    st->bytes += n > 0 ? n : 0;
    return 0;
}

static int
s_io_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_io_t *st = state;
    (void)args;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://io-%s", tr_actor_name(self));
    st->pull = zmq_socket(tr_node_zmq_context(tr_actor_node(self)), ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt(st->pull, ZMQ_LINGER, &zero, sizeof zero);
    if (st->pull == NULL || zmq_bind(st->pull, ep) != 0)
        return TR_ESYS;
    int rc = tr_actor_watch_io(self, st->pull, -1, s_io_sock);
    if (rc == 0 && s_io_pipe[0] >= 0)
        rc = tr_actor_watch_io(self, NULL, s_io_pipe[0], s_io_fd);
    st->self = self;
    s_io_self = self;
    return rc;
}

static int
s_io_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_io_t *st = state;
    if (tr_msg_is(msg, "count"))
        return ts_reply_ints(self, msg, 2, (int64_t[]){st->msgs, st->bytes});
    if (tr_msg_is(msg, "hold") && st->held == NULL)
        return tr_msg_dup(msg, &st->held);
    if (tr_msg_is(msg, "errors")) {
        /* the API's refusals, from the actor's own thread */
        int64_t v[6];
        v[0] = tr_actor_watch_io(self, st->pull, 3, s_io_sock);   /* both */
        v[1] = tr_actor_watch_io(self, NULL, -1, s_io_sock);      /* none */
        v[2] = tr_actor_watch_io(self, st->pull, -1, s_io_sock);  /* twice */
        v[3] = tr_actor_unwatch_io(self, NULL, 1000);             /* not */
        int pfd[TR__IO_TEST_MAX][2];
        int added = 0;
        v[4] = 0;
        for (; added < TR__IO_TEST_MAX; added++) {
            ck_assert_int_eq(pipe(pfd[added]), 0);
            int rc = tr_actor_watch_io(self, NULL, pfd[added][0], s_io_fd);
            if (rc != 0) {
                v[4] = rc;
                close(pfd[added][0]);
                close(pfd[added][1]);
                break;
            }
        }
        for (int i = 0; i < added; i++) {
            ck_assert_int_eq(tr_actor_unwatch_io(self, NULL, pfd[i][0]), 0);
            close(pfd[i][0]);
            close(pfd[i][1]);
        }
        v[5] = tr_actor_watch_io(NULL, st->pull, -1, s_io_sock);
        return ts_reply_ints(self, msg, 6, v);
    }
    return TR_EUNHANDLED;
}

static void
s_io_terminate(tr_actor_t *self, void *state, int reason)
{
    s_io_t *st = state;
    (void)self, (void)reason;
    zmq_close(st->pull);
    tr_msg_destroy(&st->held);
}

TR_BEHAVIOUR(io, .state_size = sizeof(s_io_t), .init = s_io_init,
             .handle = s_io_handle, .terminate = s_io_terminate);

static void *
s_io_push(tr_node_t *node, const char *name)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://io-%s", name);
    void *s = zmq_socket(tr_node_zmq_context(node), ZMQ_PUSH);
    int zero = 0;
    ck_assert_ptr_nonnull(s);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(s, ep), 0);
    return s;
}

/* Wait until "count" gives at least msgs and bytes; the last answer. */
static void
s_io_await(tr_node_t *node, const char *name, int64_t msgs, int64_t bytes,
           int64_t *v)
{
    int64_t end = ts_now_ms() + TS_CALL_MS;
    do {
        ck_assert_int_eq(ts_call_ints(node, name, ts_msg("count"), 2, v), 0);
    } while ((v[0] < msgs || v[1] < bytes) && ts_now_ms() < end);
    ck_assert_int_eq(v[0], msgs);
    ck_assert_int_eq(v[1], bytes);
}

/* A flood on the watched socket does not starve the mailbox: asks are
 * answered while it lasts, and every message is read. */
START_TEST(watched_socket_and_fd_are_read_between_messages)
{
    ck_assert_int_eq(pipe(s_io_pipe), 0);
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "io", "io1");
    void *push = s_io_push(node, "io1");
    enum { N = 20000 };
    int asked = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(zmq_send(push, "x", 1, 0), 1);
        if (i % 5000 == 0) {
            int64_t v[2];
            ck_assert_int_eq(ts_call_ints(node, "io1", ts_msg("count"), 2, v),
                             0);
            asked++;
        }
    }
    ck_assert_int_eq(write(s_io_pipe[1], "abcde", 5), 5);
    int64_t v[2];
    s_io_await(node, "io1", N, 5, v);
    ck_assert_int_eq(asked, 4);
    /* 'u' unwatches the pipe from inside its callback: what comes after
     * stays in the pipe. */
    ck_assert_int_eq(write(s_io_pipe[1], "u", 1), 1);
    s_io_await(node, "io1", N, 6, v);
    ck_assert_int_eq(write(s_io_pipe[1], "zz", 2), 2);
    ck_assert_int_eq(zmq_send(push, "y", 1, 0), 1); /* still watched */
    s_io_await(node, "io1", N + 1, 6, v);
    char left[4];
    ck_assert_int_eq(read(s_io_pipe[0], left, sizeof left), 2);
    zmq_close(push);
    ts_destroy(&node);
    close(s_io_pipe[0]);
    close(s_io_pipe[1]);
    s_io_pipe[0] = s_io_pipe[1] = -1;
}
END_TEST

/* A callback's error fails the actor with it (its monitor hears). */
START_TEST(watched_callback_error_fails_the_actor)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "io", "io2");
    tr_future_t *f = NULL;
    tr_msg_t *m = ts_msg("hold");
    ck_assert_int_eq(tr_ask(node, "io2", &m, TS_CALL_MS, &f), 0);
    int64_t v[2];
    s_io_await(node, "io2", 0, 0, v); /* the hold is in */
    void *push = s_io_push(node, "io2");
    ck_assert_int_eq(zmq_send(push, "bad", 3, 0), 3);
    ck_assert_int_eq(tr_future_wait(f, TS_CALL_MS), 0);
    ck_assert_int_eq(tr_future_get(f, 0, NULL), TR_EDEAD);
    ck_assert_int_eq(tr_future_exit_reason(f), TR_EPROTO);
    tr_future_destroy(&f);
    zmq_close(push);
    ts_destroy(&node);
}
END_TEST

START_TEST(watch_io_refuses_bad_input)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "io", "io3");
    int64_t v[6];
    ck_assert_int_eq(ts_call_ints(node, "io3", ts_msg("errors"), 6, v), 0);
    ck_assert_int_eq(v[0], TR_EINVAL);
    ck_assert_int_eq(v[1], TR_EINVAL);
    ck_assert_int_eq(v[2], TR_EEXIST);
    ck_assert_int_eq(v[3], TR_ENOENT);
    ck_assert_int_eq(v[4], TR_ERANGE); /* 16 at most: the socket + 15 */
    ck_assert_int_eq(v[5], TR_EINVAL);
    /* From another thread than the actor's. */
    tr_actor_t *self = s_io_self;
    ck_assert_int_eq(tr_actor_watch_io(self, NULL, 0, s_io_fd), TR_EPERM);
    ck_assert_int_eq(tr_actor_unwatch_io(self, NULL, 0), TR_EPERM);
    ck_assert_ptr_null(tr_node_zmq_context(NULL));
    /* still working after all that */
    int64_t c[2];
    ck_assert_int_eq(ts_call_ints(node, "io3", ts_msg("count"), 2, c), 0);
    ts_destroy(&node);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("mailbox");
    TCase *tc = tcase_create("full");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, try_tell_returns_eagain_when_mailbox_is_full);
    tcase_add_test(tc, spawn_mailbox_hwm_overrides_the_node_default);
    tcase_add_test(tc, tell_times_out_when_mailbox_stays_full);
    tcase_add_test(tc, ask_to_a_full_mailbox_fails_at_its_own_deadline);
    tcase_add_test(tc, accepted_messages_all_arrive_in_send_order);
    tcase_add_test(
        tc, stop_is_not_blocked_by_a_full_mailbox_and_counts_dead_letters);
    tcase_add_test(tc, blocked_tell_ends_when_the_target_ends);
    tcase_add_test(tc, tell_inside_a_request_waits_no_longer_than_its_deadline);
    tcase_add_test(tc, actor_blocked_on_a_full_mailbox_can_be_stopped);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, each_sender_order_is_kept_with_several_senders);
    tcase_add_test(tc, eight_threads_to_one_actor_lose_nothing);
    tcase_add_test(tc, no_message_vanishes_when_the_target_stops_mid_send);
    suite_add_tcase(s, tc);

    /* Regressions: each of these once failed against the runtime. */
    tc = tcase_create("io");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, watched_socket_and_fd_are_read_between_messages);
    tcase_add_test(tc, watched_callback_error_fails_the_actor);
    tcase_add_test(tc, watch_io_refuses_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("regressions");
    tcase_set_timeout(tc, 30);
    tcase_add_test(
        tc, sender_order_is_kept_after_its_socket_cache_evicts_the_target);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
