/* tests/test_nodes.c - nodes over tcp on 127.0.0.1 (runtime/remote.c):
 * tell and ask by name@node and by id, replies to the asker, monitors
 * across nodes (DOWN with the actor's reason, and TR_ENOCONN when its
 * node goes), spawn on another node, nodes learning of each other through
 * a seed, CURVE with the cluster file's allow-list (an unknown key and a
 * plain-text peer deliver nothing), the message size limit on the wire,
 * garbage and malformed frames from a raw peer (each counted and logged),
 * and bad options.
 *
 * Several nodes live in one test process, each with its own ZeroMQ
 * context, talking over real tcp. Tests wait on replies and messages
 * with deadlines; the only waits on time are the ones that show that
 * something does NOT happen (a refused node stays unconnected). Multi-host
 * runs in network namespaces are in tests/netns/. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

static _Atomic int s_echo_seen;

/* "echo" [v]: answers "ok" [v + 1, node tag of the sender's node]; a tell
 * "fwd" [v] is told back to its sender as "back" [v]. */
static int
s_echo(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    atomic_fetch_add(&s_echo_seen, 1);
    int64_t v = 0;
    tr_reader_t r;
    tr_reader_init(&r, msg);
    (void)tr_read_int(&r, &v);
    if (tr_msg_is(msg, "fwd")) {
        tr_msg_t *m;
        int rc = tr_msg_create(&m, "back");
        if (rc == 0 && (rc = tr_msg_add_int(m, v)) == 0)
            rc = tr_tell_id(tr_actor_node(self), tr_msg_sender(msg), &m);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "left")) {
        int64_t ms = tr_msg_deadline_left_ms(msg);
        return ts_reply_ints(self, msg, 1, &ms);
    }
    if (tr_msg_is(msg, "stop"))
        return TR_EFAILED; /* ends it, abnormally */
    if (tr_msg_is(msg, "note"))
        return 0; /* a tell, counted */
    int64_t out[1] = {v + 1};
    return ts_reply_ints(self, msg, 1, out);
}
TR_BEHAVIOUR(echo, .handle = s_echo);

/* "watcher": "watch" [id] monitors id and answers; every "$down" is kept
 * for "downs" (answers [count, last id, last reason]); "back" messages are
 * counted for "backs". */
typedef struct {
    int downs;
    int64_t last_id, last_reason;
    int backs;
    int64_t back_sum;
} s_watcher_t;

static int
s_watcher(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_watcher_t *w = state;
    int64_t v = 0;
    if (tr_msg_is(msg, "$down")) {
        tr_id_t who;
        int reason;
        if (tr_msg_exit(msg, &who, &reason) == 0) {
            w->downs++;
            w->last_id = (int64_t)who;
            w->last_reason = reason;
        }
        return 0;
    }
    if (tr_msg_is(msg, "back")) {
        tr_reader_t r;
        tr_reader_init(&r, msg);
        (void)tr_read_int(&r, &v);
        w->backs++;
        w->back_sum += v;
        return 0;
    }
    if (tr_msg_is(msg, "watch") || tr_msg_is(msg, "link")) {
        tr_reader_t r;
        tr_reader_init(&r, msg);
        (void)tr_read_int(&r, &v);
        int rc = tr_msg_is(msg, "watch") ? tr_monitor(self, (tr_id_t)v)
                                         : tr_link(self, (tr_id_t)v);
        int64_t out[1] = {rc};
        return ts_reply_ints(self, msg, 1, out);
    }
    if (tr_msg_is(msg, "fwd")) { /* tell "fwd" [v] to id v */
        tr_reader_t r;
        int64_t to = 0;
        tr_reader_init(&r, msg);
        (void)tr_read_int(&r, &to);
        (void)tr_read_int(&r, &v);
        tr_msg_t *m;
        int rc = tr_msg_create(&m, "fwd");
        if (rc == 0 && (rc = tr_msg_add_int(m, v)) == 0)
            rc = tr_tell_id(tr_actor_node(self), (tr_id_t)to, &m);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "askr")) { /* ask id v "inc" [5]; answer its v */
        tr_reader_t r;
        int64_t to = 0, got[1] = {0};
        tr_reader_init(&r, msg);
        (void)tr_read_int(&r, &to);
        tr_msg_t *m, *reply = NULL;
        int rc = tr_msg_create(&m, "inc");
        if (rc == 0 && (rc = tr_msg_add_int(m, 5)) == 0)
            rc = tr_call_id(tr_actor_node(self), (tr_id_t)to, &m, 10000,
                            &reply);
        tr_msg_destroy(&m);
        if (rc == 0)
            rc = ts_read_ints(reply, 1, got);
        tr_msg_destroy(&reply);
        int64_t out[2] = {rc, got[0]};
        return ts_reply_ints(self, msg, 2, out);
    }
    if (tr_msg_is(msg, "downs")) {
        int64_t out[3] = {w->downs, w->last_id, w->last_reason};
        return ts_reply_ints(self, msg, 3, out);
    }
    if (tr_msg_is(msg, "backs")) {
        int64_t out[2] = {w->backs, w->back_sum};
        return ts_reply_ints(self, msg, 2, out);
    }
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(watcher, .state_size = sizeof(s_watcher_t),
             .handle = s_watcher);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define S_UP_MS 10000

static tr_node_t *
s_plain(const char *name, const char *seeds)
{
    tr_node_opts_t o = {.name = name,
                        .listen = "tcp://127.0.0.1:*",
                        .seeds = seeds,
                        .insecure_plaintext = true,
                        .no_control = true,
                        .down_after_ms = 1000};
    return ts_node(&o);
}

static void
s_endpoint(tr_node_t *n, char *buf, size_t cap)
{
    ck_assert_int_eq(tr_node_endpoint(n, buf, cap), 0);
    ck_assert(strncmp(buf, "tcp://127.0.0.1:", 16) == 0);
}

/* b, and a that joins it (plain text): a is returned, b set. */
static tr_node_t *
s_plain_pair(tr_node_t **b)
{
    *b = s_plain("b", NULL);
    char ep[128];
    s_endpoint(*b, ep, sizeof ep);
    return s_plain("a", ep);
}

/* a, and b and c that join it (plain text), both up at a. */
static tr_node_t *
s_plain_trio(tr_node_t **b, tr_node_t **c)
{
    tr_node_t *a = s_plain("a", NULL);
    char ep[128];
    s_endpoint(a, ep, sizeof ep);
    *b = s_plain("b", ep);
    *c = s_plain("c", ep);
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    ck_assert_int_eq(tr_node_await(a, "c", S_UP_MS), 0);
    return a;
}

/* Poll the watcher's "downs" until it has at least n. */
static void
s_wait_downs(tr_node_t *node, const char *watcher, int n, int64_t *out)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        ck_assert_int_eq(ts_call_ints(node, watcher, ts_msg("downs"), 3, out),
                         0);
        if (out[0] >= n)
            return;
        ck_assert_msg(ts_now_ms() < until, "no DOWN came");
        /* DOWN travels over tcp: ask again (each call is a round trip) */
    }
}

/* ------------------------------------------------------------------ */
/* Plain text: messages                                                */
/* ------------------------------------------------------------------ */

START_TEST(ask_and_tell_by_name_at_node)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    ck_assert_int_eq(tr_node_await(b, "a", S_UP_MS), 0);

    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "echo@b", ts_msg_i("inc", 41), 1, v), 0);
    ck_assert_int_eq(v[0], 42);
    /* many, to see that every one comes back to its own ask */
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(ts_call_ints(a, "echo@b", ts_msg_i("inc", i), 1, v),
                         0);
        ck_assert_int_eq(v[0], i + 1);
    }
    /* name@self is the local name */
    ts_spawn(a, "echo", "here");
    ck_assert_int_eq(ts_call_ints(a, "here@a", ts_msg_i("inc", 1), 1, v), 0);
    ck_assert_int_eq(v[0], 2);

    /* whereis by name@node gives an id that works like any other */
    tr_id_t id = 0, local = 0;
    ck_assert_int_eq(tr_whereis(a, "echo@b", &id), 0);
    ck_assert_int_eq(tr_whereis(b, "echo", &local), 0);
    ck_assert(id == local);
    char where[64];
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "b");
    ck_assert_int_eq(ts_ask_id_ints(a, id, ts_msg_i("inc", 7), 1, v), 0);
    ck_assert_int_eq(v[0], 8);

    /* a tell from an actor of a to b, answered by a tell back */
    ts_spawn(a, "watcher", "w");
    tr_msg_t *m = ts_msg("fwd");
    ck_assert_int_eq(tr_msg_add_int(m, (int64_t)id), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 5), 0);
    ts_tell(a, "w", m);
    int64_t until = ts_now_ms() + TS_CALL_MS, backs[2] = {0, 0};
    while (backs[0] < 1) {
        ck_assert(ts_now_ms() < until);
        ck_assert_int_eq(ts_call_ints(a, "w", ts_msg("backs"), 2, backs), 0);
    }
    ck_assert_int_eq(backs[0], 1);
    ck_assert_int_eq(backs[1], 5);

    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(a_process_actor_talks_to_another_node)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    tr_id_t e = ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    tr_id_t w = 0;
    ck_assert_int_eq(tr_spawn(a, "watcher",
                              &(tr_spawn_opts_t){.name = "pw",
                                                 .mode = TR_PROCESS},
                              &w),
                     0);
    /* its ask to b, and the answer back to it */
    int64_t out[2];
    ck_assert_int_eq(ts_call_ints(a, "pw", ts_msg_i("askr", (int64_t)e), 2,
                                  out),
                     0);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 6);
    /* its tell to b, told back to it */
    tr_msg_t *m = ts_msg("fwd");
    ck_assert_int_eq(tr_msg_add_int(m, (int64_t)e), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 7), 0);
    ts_tell(a, "pw", m);
    int64_t until = ts_now_ms() + TS_CALL_MS, backs[2] = {0, 0};
    while (backs[0] < 1) {
        ck_assert(ts_now_ms() < until);
        ck_assert_int_eq(ts_call_ints(a, "pw", ts_msg("backs"), 2, backs), 0);
    }
    ck_assert_int_eq(backs[1], 7);
    /* and b's thread asks it directly, by name@node */
    ck_assert_int_eq(ts_call_ints(b, "pw@a", ts_msg("backs"), 2, backs), 0);
    ck_assert_int_eq(backs[0], 1);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(deadline_travels_as_time_left)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    tr_msg_t *m = ts_msg("left"), *reply = NULL;
    ck_assert_int_eq(tr_call(a, "echo@b", &m, 5000, &reply), 0);
    int64_t left[1];
    ts_ints(reply, 1, left);
    tr_msg_destroy(&reply);
    ck_assert_msg(left[0] > 0 && left[0] <= 5000, "left %lld",
                  (long long)left[0]);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(monitor_across_nodes_gets_the_reason)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    tr_id_t e = ts_spawn(b, "echo", "echo");
    ts_spawn(a, "watcher", "w");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);

    int64_t rc[1], d[3];
    ck_assert_int_eq(ts_call_ints(a, "w", ts_msg_i("watch", (int64_t)e), 1,
                                  rc),
                     0);
    ck_assert_int_eq(rc[0], 0);
    /* the watch is known there before the actor ends: a round trip after
     * it (same connection, in order) */
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "echo@b", ts_msg_i("inc", 1), 1, v), 0);
    ts_tell(a, "echo@b", ts_msg("stop"));
    s_wait_downs(a, "w", 1, d);
    ck_assert_int_eq(d[0], 1);
    ck_assert(d[1] == (int64_t)e);
    ck_assert_int_eq(d[2], TR_EFAILED);

    /* watching one that has already ended: DOWN at once */
    ck_assert_int_eq(ts_call_ints(a, "w", ts_msg_i("watch", (int64_t)e), 1,
                                  rc),
                     0);
    s_wait_downs(a, "w", 2, d);
    ck_assert(d[1] == (int64_t)e);

    /* an ask to it now fails at once, not at its deadline */
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(ts_ask_id_ints(a, e, ts_msg_i("inc", 1), 1, v),
                     TR_EDEAD);
    ck_assert(ts_now_ms() - t0 < TS_CALL_MS);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(node_going_down_gives_noconnection)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    tr_id_t e = ts_spawn(b, "echo", "echo");
    ts_spawn(a, "watcher", "w");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    int64_t rc[1], d[3], v[1];
    ck_assert_int_eq(ts_call_ints(a, "w", ts_msg_i("watch", (int64_t)e), 1,
                                  rc),
                     0);
    ck_assert_int_eq(ts_call_ints(a, "echo@b", ts_msg_i("inc", 1), 1, v), 0);
    /* b goes: its actor's DOWN (shutdown) or the node's (noconnection) */
    ts_destroy(&b);
    s_wait_downs(a, "w", 1, d);
    ck_assert(d[1] == (int64_t)e);
    ck_assert_msg(d[2] == TR_ESHUTDOWN || d[2] == TR_ENOCONN, "reason %lld",
                  (long long)d[2]);
    /* b is down: an ask by name says so */
    tr_node_peer_t peers[4];
    size_t n = 0;
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        ck_assert_int_eq(tr_node_peers(a, peers, 4, &n), 0);
        ck_assert_int_eq(n, 1);
        if (!peers[0].up)
            break;
        ck_assert_msg(ts_now_ms() < until, "b still up");
        ck_assert_int_eq(tr_node_await(a, "nobody", 10), TR_ETIMEDOUT);
    }
    ck_assert_str_eq(peers[0].name, "b");
    tr_msg_t *m = ts_msg_i("inc", 1);
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask_id(a, e, &m, 2000, &f), 0);
    tr_msg_t *reply = NULL;
    int got = tr_future_get(f, TR_FOREVER, &reply);
    ck_assert_msg(got == TR_ENOCONN || got == TR_EDEAD, "got %s",
                  tr_strerror(got));
    tr_future_destroy(&f);
    ts_destroy(&a);
}
END_TEST

START_TEST(watching_an_unknown_node_gives_noconnection)
{
    /* (a node that goes silent is in tests/netns: it needs a process of
     * its own to stop) */
    tr_node_t *b, *a = s_plain_pair(&b);
    ts_spawn(a, "watcher", "w");
    tr_id_t e = ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    /* an id of a node nobody knows: its tag is not b's */
    tr_id_t ghost = e ^ ((tr_id_t)0x5 << 44);
    int64_t rc[1], d[3];
    ck_assert_int_eq(ts_call_ints(a, "w", ts_msg_i("watch", (int64_t)ghost),
                                  1, rc),
                     0);
    s_wait_downs(a, "w", 1, d);
    ck_assert(d[1] == (int64_t)ghost);
    ck_assert_int_eq(d[2], TR_ENOCONN);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(spawn_on_another_node)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_spawn_on(a, "b", "echo",
                                 &(tr_spawn_opts_t){.name = "made"}, &id),
                     0);
    char where[64];
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "b");
    tr_id_t there = 0;
    ck_assert_int_eq(tr_whereis(b, "made", &there), 0);
    ck_assert(there == id);
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "made@b", ts_msg_i("inc", 9), 1, v), 0);
    ck_assert_int_eq(v[0], 10);
    /* errors come back as they are */
    ck_assert_int_eq(tr_spawn_on(a, "b", "no_such_behaviour", NULL, NULL),
                     TR_ENOENT);
    ck_assert_int_eq(tr_spawn_on(a, "b", "echo",
                                 &(tr_spawn_opts_t){.name = "made"}, NULL),
                     TR_EEXIST);
    ck_assert_int_eq(tr_spawn_on(a, "b", "echo",
                                 &(tr_spawn_opts_t){.link = true}, NULL),
                     TR_ENOTSUP);
    /* on itself: a plain spawn */
    ck_assert_int_eq(tr_spawn_on(a, "a", "echo", NULL, &id), 0);
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "a");
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

/* Where a supervisor's child runs now: its node's name into where. */
static tr_id_t
s_child_at(tr_node_t *n, tr_id_t sup, char *where, size_t cap)
{
    tr_sup_child_t kids[4];
    int got = tr_sup_which_children(n, sup, kids, 4);
    ck_assert_int_eq(got, 1);
    where[0] = '\0';
    if (kids[0].actor != 0 &&
        tr_id_node(n, kids[0].actor, where, cap) != 0)
        where[0] = '\0';
    return kids[0].actor;
}

START_TEST(a_supervisor_restarts_a_child_on_a_surviving_node)
{
    tr_node_t *b, *c, *a = s_plain_trio(&b, &c);
    tr_child_spec_t spec = {.id = "svc", .behaviour = "echo",
                            .spawn = {.name = "svc"}, .nodes = "b,c"};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(a, &(tr_sup_opts_t){.max_restarts = 5},
                                  &spec, 1, &sup),
                     0);
    char where[64];
    s_child_at(a, sup, where, sizeof where);
    ck_assert_str_eq(where, "b");
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "svc@b", ts_msg_i("inc", 1), 1, v), 0);
    /* b goes: the child comes back on c */
    ts_destroy(&b);
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        s_child_at(a, sup, where, sizeof where);
        if (strcmp(where, "c") == 0)
            break;
        ck_assert_msg(ts_now_ms() < until, "not restarted on c");
        ck_assert_int_eq(tr_node_await(a, "nobody", 20), TR_ETIMEDOUT);
    }
    ck_assert_int_eq(ts_call_ints(a, "svc@c", ts_msg_i("inc", 2), 1, v), 0);
    ck_assert_int_eq(v[0], 3);
    /* a child that dies on c (not its node) is restarted there too */
    ts_tell(a, "svc@c", ts_msg("stop"));
    until = ts_now_ms() + TS_CALL_MS;
    int rc = -1;
    while (rc != 0) {
        ck_assert_msg(ts_now_ms() < until, "not restarted after stop");
        tr_msg_t *m = ts_msg_i("inc", 5), *reply = NULL;
        rc = tr_call(a, "svc@c", &m, 1000, &reply);
        tr_msg_destroy(&m); /* still ours if the name did not resolve */
        tr_msg_destroy(&reply);
    }
    /* stopping the supervisor stops the child there */
    tr_id_t child = s_child_at(a, sup, where, sizeof where);
    ck_assert_int_eq(tr_stop(a, sup, TS_CALL_MS), 0);
    until = ts_now_ms() + TS_CALL_MS;
    tr_id_t still = child;
    while (still == child) {
        ck_assert_msg(ts_now_ms() < until, "child on c not stopped");
        if (tr_whereis(c, "svc", &still) != 0)
            still = 0;
    }
    ts_destroy(&c);
    ts_destroy(&a);
}
END_TEST

/* A task for pools whose workers live on other nodes: v -> v * v. */
static int
s_square(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t v[1];
    int rc = ts_read_ints(args, 1, v);
    if (rc == 0 && (rc = tr_msg_create(result, "sq")) == 0)
        rc = tr_msg_add_int(*result, v[0] * v[0]);
    return rc;
}
TR_TASK(square, s_square);

START_TEST(a_pool_with_workers_on_other_nodes_loses_no_task)
{
    tr_node_t *b, *c, *a = s_plain_trio(&b, &c);
    tr_pool_t *pool = NULL;
    ck_assert_int_eq(tr_pool_start(a, &(tr_pool_opts_t){.workers = 2,
                                                        .nodes = "b,c"},
                                   &pool),
                     0);
    enum { N = 400 };
    tr_future_t *f[N];
    for (int i = 0; i < N; i++) {
        tr_msg_t *m = ts_msg_i("x", i);
        ck_assert_int_eq(tr_pool_submit(pool, "square", &m, TR_DEFAULT,
                                        &f[i]),
                         0);
        if (i == N / 4) /* b goes with work in flight */
            ts_destroy(&b);
    }
    for (int i = 0; i < N; i++) {
        tr_msg_t *r = NULL;
        int rc = tr_future_get(f[i], TS_CALL_MS, &r);
        ck_assert_msg(rc == 0, "task %d: %s", i, tr_strerror(rc));
        int64_t v[1];
        ts_ints(r, 1, v);
        ck_assert_int_eq(v[0], (int64_t)i * i);
        tr_msg_destroy(&r);
        tr_future_destroy(&f[i]);
    }
    tr_pool_stats_t st;
    ck_assert_int_eq(tr_pool_stats(pool, &st), 0);
    ck_assert_int_eq(st.done, N);
    ck_assert_int_eq(st.failed, 0);
    int64_t until = ts_now_ms() + TS_CALL_MS;
    while (st.workers != 2) { /* back, on c */
        ck_assert_msg(ts_now_ms() < until, "workers %d", st.workers);
        ck_assert_int_eq(tr_node_await(a, "nobody", 10), TR_ETIMEDOUT);
        ck_assert_int_eq(tr_pool_stats(pool, &st), 0);
    }
    tr_node_stats_t cs;
    tr_node_stats(c, &cs);
    ck_assert_msg(cs.alive >= 3, "alive on c: %llu", /* spawner, workers */
                  (unsigned long long)cs.alive);
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, TS_CALL_MS), 0);
    /* bad input */
    ck_assert_int_eq(tr_pool_start(a, &(tr_pool_opts_t){.nodes = ""},
                                   &pool),
                     TR_EINVAL);
    ts_destroy(&c);
    ts_destroy(&a);
}
END_TEST

START_TEST(a_node_that_comes_back_under_its_name_is_a_new_one)
{
    tr_node_t *b = s_plain("b", NULL);
    char ep[128];
    s_endpoint(b, ep, sizeof ep);
    for (int round = 0; round < 3; round++) {
        tr_node_t *a = s_plain("a", ep);
        ts_spawn(a, "echo", "echo");
        ck_assert_int_eq(tr_node_await(b, "a", S_UP_MS), 0);
        int64_t v[1];
        ck_assert_int_eq(ts_call_ints(b, "echo@a", ts_msg_i("inc", round),
                                      1, v),
                         0);
        ck_assert_int_eq(v[0], round + 1);
        tr_id_t id = 0;
        ck_assert_int_eq(tr_whereis(a, "echo", &id), 0);
        char where[64];
        ck_assert_int_eq(tr_id_node(b, id, where, sizeof where), 0);
        ck_assert_str_eq(where, "a");
        ts_destroy(&a);
    }
    ts_destroy(&b);
}
END_TEST

/* The pipeline test's producer and sink (tr_pipeline_run's callbacks). */
typedef struct {
    int next, n;
    tr_node_t **kill; /* destroyed when a third is in */
    int64_t sum;
    uint64_t got;
    int bad;
} s_pipe_run_t;

static int
s_pipe_next(void *arg, tr_msg_t **item)
{
    s_pipe_run_t *r = arg;
    if (r->next == r->n)
        return 1;
    if (r->next == r->n / 3 && *r->kill != NULL)
        ts_destroy(r->kill); /* b goes with batches in flight */
    *item = ts_msg_i("x", r->next++);
    return 0;
}

static int
s_pipe_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_pipe_run_t *r = arg;
    int64_t v[1] = {0};
    if (rc != 0 || index != r->got || ts_read_ints(result, 1, v) != 0 ||
        v[0] != (int64_t)index * (int64_t)index)
        r->bad++;
    r->sum += v[0];
    r->got++;
    return 0;
}

START_TEST(a_pipeline_stage_on_other_nodes_survives_one_going)
{
    tr_node_t *b, *c, *a = s_plain_trio(&b, &c);
    tr_stage_opts_t st[] = {{.stage = "square", .place = TR_PLACE_NODE,
                             .node = "b|c", .workers = 2}};
    tr_pipeline_t *pipe = NULL;
    ck_assert_int_eq(tr_pipeline_start(a, &(tr_pipeline_opts_t){
                                              .stages = st, .nstages = 1,
                                              .batch = 16, .ordered = true},
                                       &pipe),
                     0);
    s_pipe_run_t r = {.n = 3000, .kill = &b};
    ck_assert_int_eq(tr_pipeline_run(pipe, s_pipe_next, &r, s_pipe_out, &r),
                     0);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(r.bad, 0);
    ck_assert_uint_eq(r.got, 3000);
    int64_t want = 0;
    for (int64_t i = 0; i < 3000; i++)
        want += i * i;
    ck_assert_int_eq(r.sum, want);
    ck_assert_int_eq(tr_pipeline_stop(&pipe, TS_CALL_MS), 0);
    ts_destroy(&c);
    ts_destroy(&a);
}
END_TEST

START_TEST(troupe_place_puts_actors_on_nodes_and_in_processes)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    ck_assert_int_eq(setenv("TROUPE_PLACE", "away=node b, near = node nobody|a"
                                            ",\n solo=process # comment",
                            1),
                     0);
    char where[64];
    tr_id_t id = 0;
    ck_assert_int_eq(tr_spawn(a, "echo", &(tr_spawn_opts_t){.name = "away"},
                              &id),
                     0);
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "b");
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "away@b", ts_msg_i("inc", 1), 1, v), 0);
    /* the first of nobody|a that is up: here */
    ck_assert_int_eq(tr_spawn(a, "echo", &(tr_spawn_opts_t){.name = "near"},
                              &id),
                     0);
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "a");
    /* a process actor, though the code says thread */
    ck_assert_int_eq(tr_spawn(a, "watcher",
                              &(tr_spawn_opts_t){.name = "solo"}, &id),
                     0);
    int64_t out[2];
    ck_assert_int_eq(ts_call_ints(a, "solo", ts_msg("backs"), 2, out), 0);
    /* (tr_kill works on process actors only: a thread's is TR_ENOTSUP) */
    ck_assert_int_eq(tr_kill(a, id), 0);
    /* names it does not mention are left alone; a bad text is an error */
    ck_assert_int_eq(tr_spawn(a, "echo", &(tr_spawn_opts_t){.name = "other"},
                              &id),
                     0);
    ck_assert_int_eq(tr_id_node(a, id, where, sizeof where), 0);
    ck_assert_str_eq(where, "a");
    ck_assert_int_eq(setenv("TROUPE_PLACE", "away=nowhere", 1), 0);
    ck_assert_int_eq(tr_spawn(a, "echo", &(tr_spawn_opts_t){.name = "away"},
                              NULL),
                     TR_EINVAL);
    ck_assert_int_eq(setenv("TROUPE_PLACE", "away=node nobody", 1), 0);
    ck_assert_int_eq(tr_spawn(a, "echo", &(tr_spawn_opts_t){.name = "away"},
                              NULL),
                     TR_ENOCONN);
    ck_assert_int_eq(unsetenv("TROUPE_PLACE"), 0);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

START_TEST(nodes_learn_of_each_other_through_a_seed)
{
    tr_node_t *s = s_plain("seed", NULL);
    char ep[128];
    s_endpoint(s, ep, sizeof ep);
    tr_node_t *x = s_plain("x", ep);
    ck_assert_int_eq(tr_node_await(x, "seed", S_UP_MS), 0);
    tr_node_t *y = s_plain("y", ep);
    /* y hears of x from the seed, x of y when y says hello */
    ck_assert_int_eq(tr_node_await(y, "x", S_UP_MS), 0);
    ck_assert_int_eq(tr_node_await(x, "y", S_UP_MS), 0);
    ts_spawn(x, "echo", "ex");
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(y, "ex@x", ts_msg_i("inc", 1), 1, v), 0);
    ck_assert_int_eq(v[0], 2);
    size_t n = 0;
    ck_assert_int_eq(tr_node_peers(y, NULL, 0, &n), 0);
    ck_assert_int_eq(n, 2);
    ts_destroy(&y);
    ts_destroy(&x);
    ts_destroy(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CURVE and the allow-list                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    char dir[256];
    char key[3][300];
    char pub[3][41];
    char cluster[300];
} s_keys_t;

/* Three key pairs; the cluster file lists only the first two. */
static void
s_keys(s_keys_t *k)
{
    ts_tmpdir(k->dir, sizeof k->dir, "troupe-keys");
    snprintf(k->cluster, sizeof k->cluster, "%s/cluster", k->dir);
    FILE *cf = fopen(k->cluster, "w");
    ck_assert_ptr_nonnull(cf);
    fprintf(cf, "# name key\n");
    for (int i = 0; i < 3; i++) {
        char sec[41];
        ck_assert_int_eq(zmq_curve_keypair(k->pub[i], sec), 0);
        snprintf(k->key[i], sizeof k->key[i], "%s/n%d.key", k->dir, i);
        FILE *f = fopen(k->key[i], "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%s\n", sec);
        fclose(f);
        ck_assert_int_eq(chmod(k->key[i], 0600), 0);
        if (i < 2)
            fprintf(cf, "n%d %s\n", i, k->pub[i]);
    }
    fclose(cf);
}

static tr_node_t *
s_curve(const s_keys_t *k, int i, const char *name, const char *seed_ep,
        const char *seed_key)
{
    /* a seed given by endpoint needs its key in the cluster file: write a
     * private copy with the endpoint on the seed's line */
    char cluster[320];
    snprintf(cluster, sizeof cluster, "%s", k->cluster);
    if (seed_ep != NULL) {
        snprintf(cluster, sizeof cluster, "%s/cluster-%s", k->dir, name);
        FILE *f = fopen(cluster, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "n0 %s %s\nn1 %s\n", seed_key, seed_ep, k->pub[1]);
        fclose(f);
    }
    tr_node_opts_t o = {.name = name,
                        .listen = "tcp://127.0.0.1:*",
                        .seeds = seed_ep,
                        .key_file = k->key[i],
                        .cluster_file = cluster,
                        .no_control = true,
                        .down_after_ms = 1000};
    return ts_node(&o);
}

START_TEST(curve_nodes_talk)
{
    s_keys_t k;
    s_keys(&k);
    tr_node_t *b = s_curve(&k, 0, "n0", NULL, NULL);
    char ep[128];
    s_endpoint(b, ep, sizeof ep);
    tr_node_t *a = s_curve(&k, 1, "n1", ep, k.pub[0]);
    ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "n0", S_UP_MS), 0);
    int64_t v[1];
    ck_assert_int_eq(ts_call_ints(a, "echo@n0", ts_msg_i("inc", 1), 1, v),
                     0);
    ck_assert_int_eq(v[0], 2);
    ts_destroy(&a);
    ts_destroy(&b);
    ts_rmtree(k.dir);
}
END_TEST

START_TEST(unknown_key_and_plain_text_deliver_nothing)
{
    s_keys_t k;
    s_keys(&k);
    ts_log_capture();
    tr_node_t *b = s_curve(&k, 0, "n0", NULL, NULL);
    char ep[128];
    s_endpoint(b, ep, sizeof ep);
    ts_spawn(b, "echo", "echo");
    atomic_store(&s_echo_seen, 0);
    /* key 2 is not in b's cluster file */
    tr_node_t *bad = s_curve(&k, 2, "n2", ep, k.pub[0]);
    /* a plain-text node against a CURVE one */
    tr_node_t *plain = s_plain("p", ep);
    ck_assert_int_eq(tr_node_await(bad, "n0", 1500), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_node_await(plain, "n0", 10), TR_ETIMEDOUT);
    tr_msg_t *m = ts_msg_i("inc", 1);
    ck_assert_int_eq(tr_tell(bad, "echo@n0", &m), TR_ENOCONN);
    tr_msg_destroy(&m);
    ck_assert_int_eq(atomic_load(&s_echo_seen), 0);
    size_t n = 0;
    ck_assert_int_eq(tr_node_peers(b, NULL, 0, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert(ts_log_count("refused a connection", k.pub[2]) >= 1);
    ts_destroy(&plain);
    ts_destroy(&bad);
    ts_destroy(&b);
    ts_rmtree(k.dir);
}
END_TEST

START_TEST(curve_options_are_checked)
{
    s_keys_t k;
    s_keys(&k);
    tr_node_t *n = NULL;
    tr_node_opts_t o = {.name = "x", .listen = "tcp://127.0.0.1:*",
                        .no_control = true};
    /* tcp without keys and without asking for plain text */
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL);
    o.key_file = k.key[0];
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL); /* no cluster */
    o.cluster_file = k.cluster;
    ck_assert_int_eq(chmod(k.key[0], 0644), 0);
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EPERM);
    ck_assert_int_eq(chmod(k.key[0], 0600), 0);
    ck_assert_int_eq(chmod(k.cluster, 0666), 0);
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EPERM);
    ck_assert_int_eq(chmod(k.cluster, 0644), 0);
    FILE *f = fopen(k.key[1], "w");
    fprintf(f, "not a key\n");
    fclose(f);
    o.key_file = k.key[1];
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL);
    o.key_file = k.key[0];
    ck_assert_int_eq(tr_node_create(&n, &o), 0);
    ts_destroy(&n);
    ck_assert_ptr_null(n);
    ts_rmtree(k.dir);
}
END_TEST

/* examples/python_client.py against a node, over tcp and ipc, with
 * CURVE: the client's key is one of the cluster file's. */
static void
s_python(const char *ep, const s_keys_t *k, const char *want)
{
    const char *script = getenv("TR_PYTHON_CLIENT");
    ck_assert_ptr_nonnull(script);
    char cmd[1024], out[4096] = "";
    snprintf(cmd, sizeof cmd,
             /* (not the TSan-built libzmq a TSan run preloads) */
             "env -u LD_LIBRARY_PATH timeout 60 /usr/bin/python3 %s %s echo "
             /* '=': a z85 key may begin with '-' */
             "--server-key='%s' "
             "--key-file=%s 2>&1",
             script, ep, k->pub[0], k->key[1]);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_msg(st == 0, "python_client failed (%d): %s", st, out);
    ck_assert_msg(strstr(out, "ask echo: ok [42]") != NULL, "%s", out);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
}

START_TEST(python_client_over_tcp_and_ipc)
{
    s_keys_t k;
    s_keys(&k);
    char listen[400];
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:*,ipc://%s/gw", k.dir);
    tr_node_opts_t o = {.name = "n0",
                        .listen = listen,
                        .key_file = k.key[0],
                        .cluster_file = k.cluster,
                        .no_control = true};
    tr_node_t *b = ts_node(&o);
    ts_spawn(b, "echo", "echo");
    atomic_store(&s_echo_seen, 0);
    char ep[128], ipc[320];
    s_endpoint(b, ep, sizeof ep);
    s_python(ep, &k, "then ask: ok [2]");
    snprintf(ipc, sizeof ipc, "ipc://%s/gw", k.dir);
    s_python(ipc, &k, "connected to node n0");
    /* per run: two asks and a tell */
    ck_assert_int_eq(atomic_load(&s_echo_seen), 6);
    /* the clients said bye: forgotten, not kept as nodes down */
    size_t n = 1;
    int64_t until = ts_now_ms() + TS_CALL_MS;
    while (n != 0) {
        ck_assert_msg(ts_now_ms() < until, "clients not forgotten");
        ck_assert_int_eq(tr_node_peers(b, NULL, 0, &n), 0);
        ck_assert_int_eq(tr_node_await(b, "nobody", 10), TR_ETIMEDOUT);
    }
    ts_destroy(&b);
    ts_rmtree(k.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits and bad input                                                */
/* ------------------------------------------------------------------ */

/* Wait until node n has counted at least want dropped connections. */
static uint64_t
s_wait_dropped(tr_node_t *n, uint64_t want)
{
    tr_node_stats_t st;
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        tr_node_stats(n, &st);
        if (st.dropped_connections >= want)
            return st.dropped_connections;
        ck_assert_msg(ts_now_ms() < until, "%llu dropped connections, not %llu",
                      (unsigned long long)st.dropped_connections,
                      (unsigned long long)want);
        /* the gateway reads its monitor with its timers: ask again */
        ck_assert_int_eq(tr_node_await(n, "nobody", 10), TR_ETIMEDOUT);
    }
}

START_TEST(oversize_on_the_wire_is_refused_and_the_node_goes_on)
{
    ts_log_capture();
    tr_node_t *b = NULL;
    tr_node_opts_t ob = {.name = "b", .listen = "tcp://127.0.0.1:*",
                         .insecure_plaintext = true, .no_control = true,
                         .max_message_bytes = 65536,
                         .down_after_ms = 1000};
    b = ts_node(&ob);
    char ep[128];
    s_endpoint(b, ep, sizeof ep);
    tr_node_opts_t oa = ob;
    oa.name = "a";
    oa.seeds = ep;
    oa.max_message_bytes = 1 << 20;
    tr_node_t *a = ts_node(&oa);
    ts_spawn(b, "echo", "echo");
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    atomic_store(&s_echo_seen, 0);
    tr_msg_t *m = ts_msg("big");
    static char blob[200000];
    ck_assert_int_eq(tr_msg_add_bin(m, blob, sizeof blob), 0);
    ts_tell(a, "echo@b", m); /* leaves a; b's socket refuses it */
    /* b keeps working: a normal call gets through (after ZeroMQ has
     * connected again) */
    int64_t v[1];
    int rc = TR_ETIMEDOUT;
    int64_t until = ts_now_ms() + TS_CALL_MS;
    while (rc != 0 && ts_now_ms() < until) {
        tr_msg_t *q = ts_msg_i("inc", 1), *reply = NULL;
        rc = tr_call(a, "echo@b", &q, 500, &reply);
        if (rc == 0)
            ts_ints(reply, 1, v);
        tr_msg_destroy(&q);
        tr_msg_destroy(&reply);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(v[0], 2);
    ck_assert_int_eq(atomic_load(&s_echo_seen) >= 1, 1);
    /* the big one never reached the actor */
    ck_assert_int_eq(ts_call_ints(a, "echo@b", ts_msg_i("inc", 2), 1, v), 0);
    /* b saw the connection cut, counted it and said so (at least: a
     * heartbeat missed on a loaded machine would count too); a sent
     * within its own limit, so refused nothing */
    s_wait_dropped(b, 1);
    ck_assert_int_ge(ts_log_count("node 'b': a connection to tcp://",
                                  "ended without a $bye: a message over "
                                  "max_message_bytes"),
                     1);
    tr_node_stats_t st;
    tr_node_stats(a, &st);
    ck_assert_uint_eq(st.oversize, 0);
    /* over a's own limit: refused before it leaves, and counted */
    m = ts_msg("big");
    static char huge[(1 << 20) + 1];
    ck_assert_int_eq(tr_msg_add_bin(m, huge, sizeof huge), 0);
    ck_assert_int_eq(tr_tell(a, "echo@b", &m), TR_EMSGSIZE);
    tr_msg_destroy(&m);
    tr_node_stats(a, &st);
    ck_assert_uint_eq(st.oversize, 1);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

/* Bytes that are not ZeroMQ at all, on a node's tcp port. */
static void
s_garbage(const char *ep, const void *data, size_t len)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(sscanf(ep, "tcp://%63[^:]:%d", host, &port), 2);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    ck_assert_int_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert(write(fd, data, len) == (ssize_t)len);
    /* the node hangs up on it: read until the end, with a deadline */
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        ;
    /* (a close, or a reset: the node dropped what it had not read) */
    ck_assert_msg(got == 0 || (got < 0 && errno == ECONNRESET),
                  "the node did not close a garbage connection (%s)",
                  got < 0 ? strerror(errno) : "?");
    close(fd);
}

START_TEST(garbage_on_the_tcp_port_is_dropped_and_the_node_goes_on)
{
    ts_log_capture();
    for (int curve = 0; curve < 2; curve++) {
        s_keys_t k;
        tr_node_t *b;
        if (curve) {
            s_keys(&k);
            b = s_curve(&k, 0, "n0", NULL, NULL);
        } else {
            b = s_plain("n0", NULL);
        }
        char ep[128];
        s_endpoint(b, ep, sizeof ep);
        ts_spawn(b, "echo", "echo");
        int lines = ts_log_count("node 'n0': a connection to tcp://",
                                 "ended without a $bye");
        static const char junk[] = "GET / HTTP/1.0\r\n\r\n\xff\x00\x13junk";
        s_garbage(ep, junk, sizeof junk);
        /* a ZMTP greeting, then nonsense */
        static const unsigned char zmtp[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1,
                                             0x7f, 3, 0, 'N', 'U', 'L', 'L',
                                             0xde, 0xad, 0xbe, 0xef};
        uint8_t big[600];
        memcpy(big, zmtp, sizeof zmtp);
        for (size_t i = sizeof zmtp; i < sizeof big; i++)
            big[i] = (uint8_t)(i * 7);
        s_garbage(ep, big, sizeof big);
        /* each counted and logged */
        ck_assert_uint_eq(s_wait_dropped(b, 2), 2);
        ck_assert_int_eq(ts_log_count("node 'n0': a connection to tcp://",
                                      "ended without a $bye"),
                         lines + 2);
        /* and it still serves */
        tr_node_t *a;
        if (curve)
            a = s_curve(&k, 1, "n1", ep, k.pub[0]);
        else
            a = s_plain("a", ep);
        ck_assert_int_eq(tr_node_await(a, "n0", S_UP_MS), 0);
        int64_t v[1];
        ck_assert_int_eq(ts_call_ints(a, "echo@n0", ts_msg_i("inc", 1), 1,
                                      v),
                         0);
        ck_assert_int_eq(v[0], 2);
        ts_destroy(&a);
        ts_destroy(&b);
        if (curve)
            ts_rmtree(k.dir);
    }
}
END_TEST

/* A peer written from docs/protocol.md alone: a raw DEALER, a client of
 * a plain-text node (it does not listen). */
typedef struct {
    void *ctx, *sock;
    uint64_t me; /* our one id: our tag in the top 20 bits */
} s_raw_t;

static void
s_put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
s_get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Header, tag, NUL, then the payload of pl (NULL: none), into buf; the
 * frame's length. */
static size_t
s_raw_frame(uint8_t *buf, size_t cap, uint8_t version, uint8_t flags,
            const char *tag, uint64_t sender, uint64_t target, uint64_t corr,
            const tr_msg_t *pl)
{
    size_t tl = strlen(tag), plen = 0;
    const void *p = pl != NULL ? tr_msg_payload(pl, &plen) : NULL;
    ck_assert(40 + tl + 1 + plen <= cap);
    buf[0] = 0x54;
    buf[1] = version;
    buf[2] = flags;
    buf[3] = (uint8_t)tl;
    s_put_le(buf + 4, 0, 4);
    s_put_le(buf + 8, sender, 8);
    s_put_le(buf + 16, target, 8);
    s_put_le(buf + 24, corr, 8);
    s_put_le(buf + 32, 0, 8); /* no deadline */
    memcpy(buf + 40, tag, tl + 1);
    if (plen > 0)
        memcpy(buf + 41 + tl, p, plen);
    return 41 + tl + plen;
}

static void
s_raw_send(s_raw_t *c, char box, const void *frame, size_t len)
{
    ck_assert_int_eq(zmq_send(c->sock, &box, 1, ZMQ_SNDMORE), 1);
    ck_assert_int_eq(zmq_send(c->sock, frame, len, 0), (int)len);
}

/* The next [box][frame] with box 'M' or 'I' (or 'C' if ctl), into buf;
 * its length. */
static size_t
s_raw_recv(s_raw_t *c, bool ctl, uint8_t *buf, size_t cap)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        int64_t left = until - ts_now_ms();
        ck_assert_msg(left > 0, "no answer from the node");
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        ck_assert_int_ge(zmq_poll(&it, 1, (long)left), 0);
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        char box = 0;
        ck_assert_int_eq(zmq_recv(c->sock, &box, 1, 0), 1);
        int64_t more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &ml);
        ck_assert(more);
        int n = zmq_recv(c->sock, buf, cap, 0);
        ck_assert(n >= 42 && (size_t)n <= cap);
        if ((box == 'C') == ctl)
            return (size_t)n;
    }
}

/* Connect to ep and say hello as a client called name; node_tag is the
 * node's (ours must differ). */
static void
s_raw_open(s_raw_t *c, const char *ep, const char *name, uint32_t node_tag)
{
    c->ctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(c->ctx);
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    ck_assert_ptr_nonnull(c->sock);
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, name, strlen(name));
    ck_assert_int_eq(zmq_connect(c->sock, ep), 0);
    uint32_t tag = node_tag == 0x5a5a5 ? 0x5a5a6 : 0x5a5a5;
    c->me = (uint64_t)tag << 44 | 1;
    /* $hello: version, name, tag, endpoint ("": a client), gateway id,
     * nonce; answered by a $welcome that echoes the nonce */
    tr_msg_t *pl = ts_msg("p");
    ck_assert_int_eq(tr_msg_add_uint(pl, 1), 0);
    ck_assert_int_eq(tr_msg_add_str(pl, name), 0);
    ck_assert_int_eq(tr_msg_add_uint(pl, tag), 0);
    ck_assert_int_eq(tr_msg_add_str(pl, ""), 0);
    ck_assert_int_eq(tr_msg_add_uint(pl, (uint64_t)tag << 44 | 2), 0);
    ck_assert_int_eq(tr_msg_add_uint(pl, 777), 0);
    uint8_t f[256];
    size_t n = s_raw_frame(f, sizeof f, 1, 0, "$hello", 0, 0, 0, pl);
    tr_msg_destroy(&pl);
    s_raw_send(c, 'C', f, n);
    n = s_raw_recv(c, true, f, sizeof f);
    ck_assert_int_eq(f[3], 8);
    ck_assert(memcmp(f + 40, "$welcome", 9) == 0);
}

static void
s_raw_close(s_raw_t *c)
{
    uint8_t f[64];
    size_t n = s_raw_frame(f, sizeof f, 1, 0, "$bye", 0, 0, 0, NULL);
    int linger = 1000; /* so that the $bye goes */
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    s_raw_send(c, 'C', f, n);
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
}

/* The node's counters, once n of its frames have been judged. */
static void
s_stats_settle(tr_node_t *n, uint64_t bad, uint64_t dead, uint64_t unhandled,
               tr_node_stats_t *st)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        tr_node_stats(n, st);
        if (st->bad_frames >= bad && st->dead_letters >= dead &&
            st->unhandled >= unhandled)
            return;
        ck_assert_msg(ts_now_ms() < until, "bad %llu, dead %llu, "
                      "unhandled %llu",
                      (unsigned long long)st->bad_frames,
                      (unsigned long long)st->dead_letters,
                      (unsigned long long)st->unhandled);
        ck_assert_int_eq(tr_node_await(n, "nobody", 10), TR_ETIMEDOUT);
    }
}

START_TEST(malformed_frames_over_tcp_are_counted_and_logged)
{
    ts_log_capture();
    tr_log_set_level(TR_LOG_INFO); /* a dead letter's line is INFO */
    tr_node_opts_t o = {.name = "b", .listen = "tcp://127.0.0.1:*",
                        .insecure_plaintext = true, .no_control = true,
                        .down_after_ms = 10000}; /* we do not ping */
    tr_node_t *b = ts_node(&o);
    char ep[128];
    s_endpoint(b, ep, sizeof ep);
    tr_id_t echo = ts_spawn(b, "echo", "echo");
    tr_id_t w = ts_spawn(b, "watcher", "w");
    uint32_t btag = (uint32_t)(echo >> 44);
    s_raw_t c;
    s_raw_open(&c, ep, "raw", btag);
    tr_node_stats_t st0, st;
    tr_node_stats(b, &st0);
    uint8_t f[256];
    tr_msg_t *one = ts_msg_i("p", 41);

    /* a truncated envelope: 20 bytes of a good ask */
    size_t n = s_raw_frame(f, sizeof f, 1, 0x01, "inc", c.me, echo, 1, one);
    s_raw_send(&c, 'M', f, 20);
    /* another version of the protocol */
    n = s_raw_frame(f, sizeof f, 2, 0x01, "inc", c.me, echo, 2, one);
    s_raw_send(&c, 'M', f, n);
    /* a tag the actor does not know, as an ask: an error reply comes */
    n = s_raw_frame(f, sizeof f, 1, 0x01, "zzz", c.me, w, 3, one);
    s_raw_send(&c, 'M', f, n);
    /* an id of this node that no actor has */
    tr_id_t nobody = (tr_id_t)btag << 44 | 0xabcdef;
    n = s_raw_frame(f, sizeof f, 1, 0, "note", c.me, nobody, 0, one);
    s_raw_send(&c, 'M', f, n);
    /* an id of no node at all */
    n = s_raw_frame(f, sizeof f, 1, 0, "note", c.me, 0, 0, one);
    s_raw_send(&c, 'M', f, n);
    /* one part only, no box */
    ck_assert_int_eq(zmq_send(c.sock, f, n, 0), (int)n);

    /* and the node still answers, on the same connection */
    n = s_raw_frame(f, sizeof f, 1, 0x01, "inc", c.me, echo, 4, one);
    s_raw_send(&c, 'M', f, n);
    bool unhandled = false, answered = false; /* (two actors: any order) */
    while (!unhandled || !answered) {
        n = s_raw_recv(&c, false, f, sizeof f);
        uint64_t corr = s_get_le(f + 24, 8);
        ck_assert_uint_eq(s_get_le(f + 16, 8), c.me);
        ck_assert(f[2] & 0x02); /* replies, nothing else */
        if (corr == 3) {
            ck_assert_int_eq(f[2], 0x06); /* REPLY | ERROR */
            ck_assert_int_eq((int32_t)s_get_le(f + 4, 4), TR_EUNHANDLED);
            unhandled = true;
        } else {
            ck_assert_uint_eq(corr, 4);
            tr_reader_t rd;
            int64_t v = 0;
            tr_reader_init_bytes(&rd, f + 41 + f[3], n - 41 - f[3]);
            ck_assert_int_eq(tr_read_int(&rd, &v), 0);
            ck_assert_int_eq(v, 42);
            answered = true;
        }
    }
    tr_msg_destroy(&one);

    /* each counted once, and logged */
    s_stats_settle(b, st0.bad_frames + 4, st0.dead_letters + 1,
                   st0.unhandled + 1, &st);
    ck_assert_uint_eq(st.bad_frames, st0.bad_frames + 4);
    ck_assert_uint_eq(st.dead_letters, st0.dead_letters + 1);
    ck_assert_uint_eq(st.unhandled, st0.unhandled + 1);
    ck_assert_int_eq(ts_log_count("node 'b': malformed frame from node "
                                  "'raw' dropped: ",
                                  "malformed message"),
                     1);
    ck_assert_int_eq(ts_log_count("node 'b': malformed frame from node "
                                  "'raw' dropped: ",
                                  "unsupported protocol version"),
                     1);
    char line[128];
    snprintf(line, sizeof line, "message 'zzz' from %llx not handled",
             (unsigned long long)c.me);
    ck_assert_int_eq(ts_log_count(line, NULL), 1);
    snprintf(line, sizeof line, "a message for %llx from another node "
             "dropped: no such actor", (unsigned long long)nobody);
    ck_assert_int_eq(ts_log_count("node 'b': ", line), 1);
    snprintf(line, sizeof line, "misaddressed frame from node 'raw' "
             "dropped: %llx to 0", (unsigned long long)c.me);
    ck_assert_int_eq(ts_log_count("node 'b': ", line), 1);
    ck_assert_int_eq(ts_log_count("node 'b': a message from 'raw' dropped: "
                                  "not two parts",
                                  NULL),
                     1);
    s_raw_close(&c);
    ts_destroy(&b);
}
END_TEST

START_TEST(bad_options_and_calls)
{
    tr_node_t *n = NULL;
    tr_node_opts_t o = {.name = "x", .no_control = true,
                        .insecure_plaintext = true};
    o.listen = "udp://127.0.0.1:7000";
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL);
    o.listen = NULL;
    o.seeds = "tcp://127.0.0.1:1";
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL); /* no listen */
    o.seeds = NULL;
    o.listen = "tcp://127.0.0.1:*";
    o.down_after_ms = -1;
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL);
    o.listen = "tcp://256.1.1.1:1";
    o.down_after_ms = 0;
    ck_assert_int_eq(tr_node_create(&n, &o), TR_EINVAL);
    ck_assert_ptr_null(n);

    /* a node that stays alone */
    tr_node_t *alone = ts_node(&(tr_node_opts_t){.no_control = true});
    char ep[64];
    ck_assert_int_eq(tr_node_endpoint(alone, ep, sizeof ep), TR_ENOENT);
    ck_assert_int_eq(tr_node_await(alone, "b", 10), TR_ENOCONN);
    ck_assert_int_eq(tr_node_connect(alone, "tcp://127.0.0.1:1"),
                     TR_ENOCONN);
    tr_id_t id;
    ck_assert_int_eq(tr_whereis(alone, "x@b", &id), TR_ENOCONN);
    tr_msg_t *m = ts_msg("x");
    ck_assert_int_eq(tr_tell(alone, "x@b", &m), TR_ENOCONN);
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr_spawn(alone, "echo",
                              &(tr_spawn_opts_t){.name = "a@b"}, NULL),
                     TR_EINVAL);
    ts_destroy(&alone);

    tr_node_t *a = s_plain("a", NULL);
    ck_assert_int_eq(tr_node_connect(a, "nobody"), TR_EINVAL);
    ck_assert_int_eq(tr_node_await(a, "b", 50), TR_ETIMEDOUT);
    /* a name on a node that never comes: bounded by the send timeout */
    m = ts_msg("x");
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_try_tell(a, "x@b", &m), TR_ENOCONN);
    ck_assert(ts_now_ms() - t0 < TS_CALL_MS);
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr_whereis(a, "@b", &id), TR_EINVAL);
    ck_assert_int_eq(tr_whereis(a, "x@", &id), TR_EINVAL);
    ts_destroy(&a);
}
END_TEST

START_TEST(link_to_another_node_is_refused)
{
    tr_node_t *b, *a = s_plain_pair(&b);
    ck_assert_int_eq(tr_node_await(a, "b", S_UP_MS), 0);
    tr_id_t e = ts_spawn(b, "echo", "echo");
    ts_spawn(a, "watcher", "w");
    int64_t rc[1];
    ck_assert_int_eq(ts_call_ints(a, "w", ts_msg_i("link", (int64_t)e), 1,
                                  rc),
                     0);
    ck_assert_int_eq(rc[0], TR_ENOTSUP);
    ts_destroy(&a);
    ts_destroy(&b);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("nodes");
    TCase *tc = tcase_create("plain");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ask_and_tell_by_name_at_node);
    tcase_add_test(tc, deadline_travels_as_time_left);
    tcase_add_test(tc, a_process_actor_talks_to_another_node);
    tcase_add_test(tc, monitor_across_nodes_gets_the_reason);
    tcase_add_test(tc, node_going_down_gives_noconnection);
    tcase_add_test(tc, watching_an_unknown_node_gives_noconnection);
    tcase_add_test(tc, spawn_on_another_node);
    tcase_add_test(tc, nodes_learn_of_each_other_through_a_seed);
    tcase_add_test(tc, a_node_that_comes_back_under_its_name_is_a_new_one);
    tcase_add_test(tc, troupe_place_puts_actors_on_nodes_and_in_processes);
    tcase_add_test(tc, a_supervisor_restarts_a_child_on_a_surviving_node);
    tcase_add_test(tc, a_pool_with_workers_on_other_nodes_loses_no_task);
    tcase_add_test(tc, a_pipeline_stage_on_other_nodes_survives_one_going);
    suite_add_tcase(s, tc);
    tc = tcase_create("curve");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, curve_nodes_talk);
    tcase_add_test(tc, unknown_key_and_plain_text_deliver_nothing);
    tcase_add_test(tc, curve_options_are_checked);
    tcase_add_test(tc, python_client_over_tcp_and_ipc);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oversize_on_the_wire_is_refused_and_the_node_goes_on);
    tcase_add_test(tc, bad_options_and_calls);
    tcase_add_test(tc, garbage_on_the_tcp_port_is_dropped_and_the_node_goes_on);
    tcase_add_test(tc, malformed_frames_over_tcp_are_counted_and_logged);
    tcase_add_test(tc, link_to_another_node_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
