/* tests/test_tell_ask.c - the sending verbs and futures: tell by name and
 * id, ask/reply/call, error replies, every way an ask settles (reply,
 * error, TR_EDEAD with the exit reason, TR_ETIMEDOUT at the deadline), late
 * replies, deadlines carried in requests and inherited by nested asks,
 * expired requests, unhandled tags, the thread rules of futures and
 * replies, and hostile frames injected on the wire (a raw ZMQ_PUSH socket
 * of the test's own in the node's context, connected to an actor's
 * mailbox or inbox endpoint).
 *
 * No sleeping: a test waits for replies, for a deferred reply (an actor
 * keeps a copy of a request and answers when the awaited thing happened),
 * or polls a stats counter with a deadline where nothing else can tell.
 * Check forks per test: every node is created inside the test. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "runtime/node.h"
#include "runtime/actor.h"
#include "runtime/future.h"
#include "runtime/port.h"
#include "transport/envelope.h"
#include "transport/msg.h"
#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* Copy one msgpack value from r to out (containers included). */
static int
s_copy_value(tr_reader_t *r, tr_msg_t *out, int depth)
{
    int rc;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *p;
    size_t n;
    uint32_t c;
    if (depth > 16)
        return TR_ERANGE;
    switch (tr_read_type(r)) {
    case TR_TYPE_NIL:
        return (rc = tr_read_nil(r)) ? rc : tr_msg_add_nil(out);
    case TR_TYPE_BOOL:
        return (rc = tr_read_bool(r, &b)) ? rc : tr_msg_add_bool(out, b);
    case TR_TYPE_INT:
        if ((rc = tr_read_int(r, &i)) == 0)
            return tr_msg_add_int(out, i);
        return (rc = tr_read_uint(r, &u)) ? rc : tr_msg_add_uint(out, u);
    case TR_TYPE_DOUBLE:
        return (rc = tr_read_double(r, &d)) ? rc : tr_msg_add_double(out, d);
    case TR_TYPE_STR:
        return (rc = tr_read_str(r, &s, &n)) ? rc : tr_msg_add_strn(out, s, n);
    case TR_TYPE_BIN:
        return (rc = tr_read_bin(r, &p, &n)) ? rc : tr_msg_add_bin(out, p, n);
    case TR_TYPE_ARRAY:
        if ((rc = tr_read_array(r, &c)) != 0 ||
            (rc = tr_msg_add_array(out, c)) != 0)
            return rc;
        for (uint32_t k = 0; k < c; k++)
            if ((rc = s_copy_value(r, out, depth + 1)) != 0)
                return rc;
        return 0;
    case TR_TYPE_MAP:
        if ((rc = tr_read_map(r, &c)) != 0 ||
            (rc = tr_msg_add_map(out, c)) != 0)
            return rc;
        for (uint32_t k = 0; k < 2 * c; k++)
            if ((rc = s_copy_value(r, out, depth + 1)) != 0)
                return rc;
        return 0;
    default:
        return TR_EPROTO;
    }
}

/* Test-side view of one actor, for the thread-rule tests. */
static tr_actor_t *_Atomic s_leaked_self;
static tr_msg_t *s_leaked_req;

#define S_HELD_MAX 8

/* svc: one behaviour with a verb per thing to test (see the handler). */
typedef struct {
    tr_msg_t *held[S_HELD_MAX]; /* "hold": requests answered on release */
    int nheld;
    int64_t last_deadline, probes, deadlines;
    int64_t notreq_rc, notreq_err_rc, parse_rc, release_rc;
    int64_t marks, want_marks;
    tr_msg_t *mark_waiter;
} svc_t;

static int
s_svc_marks(tr_actor_t *self, svc_t *s)
{
    if (s->mark_waiter == NULL || s->marks < s->want_marks)
        return 0;
    int rc = ts_reply_ints(self, s->mark_waiter, 1, &s->marks);
    tr_msg_destroy(&s->mark_waiter);
    return rc;
}

static int
s_svc_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    svc_t *s = state;
    tr_node_t *node = tr_actor_node(self);
    int64_t v = 0;
    int rc;
    if (tr_msg_is(msg, "echo")) {
        /* Reply "echo" with a copy of every payload value. */
        tr_msg_t *r = NULL;
        tr_reader_t rd;
        tr_reader_init(&rd, msg);
        if ((rc = tr_msg_create(&r, "echo")) != 0)
            return rc;
        while (rc == 0 && !tr_read_done(&rd))
            rc = s_copy_value(&rd, r, 0);
        if (rc == 0)
            rc = tr_reply(self, msg, &r);
        tr_msg_destroy(&r);
        return rc;
    }
    if (tr_msg_is(msg, "fail"))
        return (rc = ts_read_ints(msg, 1, &v))
                   ? rc
                   : tr_reply_error(self, msg, (int)v);
    if (tr_msg_is(msg, "die"))
        return (rc = ts_read_ints(msg, 1, &v)) ? rc : (int)v;
    if (tr_msg_is(msg, "exit")) {
        if ((rc = ts_read_ints(msg, 1, &v)) != 0)
            return rc;
        tr_exit(self, (int)v);
        return 0;
    }
    if (tr_msg_is(msg, "hold")) {
        if (s->nheld == S_HELD_MAX)
            return TR_ERANGE;
        return tr_msg_dup(msg, &s->held[s->nheld++]);
    }
    if (tr_msg_is(msg, "release")) {
        /* Answer every held request "late" [i]. */
        s->release_rc = 0;
        for (int i = 0; i < s->nheld; i++) {
            int64_t k = i;
            tr_msg_t *r = NULL;
            if ((rc = tr_msg_create(&r, "late")) == 0 &&
                (rc = tr_msg_add_int(r, k)) == 0)
                rc = tr_reply(self, s->held[i], &r);
            tr_msg_destroy(&r);
            tr_msg_destroy(&s->held[i]);
            if (rc != 0)
                s->release_rc = rc;
        }
        s->nheld = 0;
        return 0;
    }
    if (tr_msg_is(msg, "deadline")) {
        s->deadlines++;
        int64_t out[2] = {tr_msg_deadline_left_ms(msg),
                          tr_msg_is_request(msg)};
        return ts_reply_ints(self, msg, 2, out);
    }
    if (tr_msg_is(msg, "probe")) {
        s->last_deadline = tr_msg_deadline_left_ms(msg);
        s->probes++;
        return 0;
    }
    if (tr_msg_is(msg, "last")) {
        int64_t out[2] = {s->last_deadline, s->probes};
        return ts_reply_ints(self, msg, 2, out);
    }
    if (tr_msg_is(msg, "fwd")) {
        /* Ask "b" for the deadline it sees, with timeout [v]. */
        if ((rc = ts_read_ints(msg, 1, &v)) != 0)
            return rc;
        tr_msg_t *m = NULL, *r = NULL;
        if ((rc = tr_msg_create(&m, "deadline")) != 0)
            return rc;
        rc = tr_call(node, "b", &m, (int)v, &r);
        tr_msg_destroy(&m);
        if (rc != 0)
            return tr_reply_error(self, msg, rc);
        int64_t out[2] = {0, 0};
        tr_reader_t rd;
        tr_reader_init(&rd, r);
        (void)tr_read_int(&rd, &out[0]);
        (void)tr_read_int(&rd, &out[1]);
        tr_msg_destroy(&r);
        return ts_reply_ints(self, msg, 2, out);
    }
    if (tr_msg_is(msg, "fwd_tell")) {
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "probe")) == 0)
            rc = tr_tell(node, "b", &m);
        tr_msg_destroy(&m);
        v = rc;
        return ts_reply_ints(self, msg, 1, &v);
    }
    if (tr_msg_is(msg, "call_other")) {
        /* tr_call "b" "echo" [41 + 1] from inside a handler. */
        tr_msg_t *m = NULL, *r = NULL;
        if ((rc = tr_msg_create(&m, "echo")) != 0 ||
            (rc = tr_msg_add_int(m, 42)) != 0) {
            tr_msg_destroy(&m);
            return rc;
        }
        rc = tr_call(node, "b", &m, TR_DEFAULT, &r);
        tr_msg_destroy(&m);
        if (rc == 0)
            rc = ts_read_ints(r, 1, &v);
        tr_msg_destroy(&r);
        if (rc != 0)
            return tr_reply_error(self, msg, rc);
        return ts_reply_ints(self, msg, 1, &v);
    }
    if (tr_msg_is(msg, "whoami")) {
        v = (int64_t)tr_msg_sender(msg);
        return ts_reply_ints(self, msg, 1, &v);
    }
    if (tr_msg_is(msg, "notreq")) {
        /* A tell: neither reply is allowed. */
        tr_msg_t *r = NULL;
        if ((rc = tr_msg_create(&r, "no")) != 0)
            return rc;
        s->notreq_rc = tr_reply(self, msg, &r);
        if (r == NULL)
            s->notreq_rc = 1; /* taken anyway: wrong */
        tr_msg_destroy(&r);
        s->notreq_err_rc = tr_reply_error(self, msg, TR_EFAILED);
        return 0;
    }
    if (tr_msg_is(msg, "badreply")) {
        tr_msg_t *r = NULL, *none = NULL;
        if ((rc = tr_msg_create(&r, "no")) != 0)
            return rc;
        int64_t out[6];
        out[0] = tr_reply_error(self, msg, 5);
        out[1] = tr_reply_error(self, msg, 0);
        out[2] = tr_reply(self, msg, NULL);
        out[3] = tr_reply(self, msg, &none);
        out[4] = tr_reply(NULL, msg, &r);
        out[5] = tr_reply(self, NULL, &r);
        bool kept = r != NULL;
        tr_msg_destroy(&r);
        if (!kept)
            out[5] = 1;
        return ts_reply_ints(self, msg, 6, out);
    }
    if (tr_msg_is(msg, "leak")) {
        /* Hand our actor handle and a copy of this request to the test. */
        if ((rc = tr_msg_dup(msg, &s_leaked_req)) != 0)
            return rc;
        atomic_store(&s_leaked_self, self);
        return ts_reply_ints(self, msg, 0, NULL);
    }
    if (tr_msg_is(msg, "parse")) {
        s->parse_rc = ts_read_ints(msg, 1, &v);
        return 0;
    }
    if (tr_msg_is(msg, "mark")) {
        s->marks++;
        return s_svc_marks(self, s);
    }
    if (tr_msg_is(msg, "await_mark")) {
        if ((rc = ts_read_ints(msg, 1, &s->want_marks)) != 0)
            return rc;
        tr_msg_destroy(&s->mark_waiter);
        if ((rc = tr_msg_dup(msg, &s->mark_waiter)) != 0)
            return rc;
        return s_svc_marks(self, s);
    }
    if (tr_msg_is(msg, "results")) {
        int64_t out[6] = {s->notreq_rc, s->notreq_err_rc, s->parse_rc,
                          s->release_rc, s->marks, s->deadlines};
        return ts_reply_ints(self, msg, 6, out);
    }
    if (tr_msg_is(msg, "block")) {
        /* Wait in a call to the gate; the outcome is not our failure. */
        tr_msg_t *m = NULL, *r = NULL;
        if ((rc = tr_msg_create(&m, "hold")) == 0)
            (void)tr_call(node, "gate", &m, TS_CALL_MS, &r);
        tr_msg_destroy(&m);
        tr_msg_destroy(&r);
        return 0;
    }
    return TR_EUNHANDLED;
}

static void
s_svc_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    svc_t *s = state;
    for (int i = 0; i < s->nheld; i++)
        tr_msg_destroy(&s->held[i]);
    tr_msg_destroy(&s->mark_waiter);
}

TR_BEHAVIOUR(svc, .state_size = sizeof(svc_t), .handle = s_svc_handle,
             .terminate = s_svc_terminate);

/* echo_strict: replies as example code does, returning tr_reply's code;
 * "mark" sets s_strict_marked. */
static ts_flag_t s_strict_marked = TS_FLAG_INIT;

static int
s_strict_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "mark")) {
        ts_flag_set(&s_strict_marked);
        return 0;
    }
    tr_msg_t *r = NULL;
    int rc = tr_msg_create(&r, "echo");
    if (rc == 0 && (rc = tr_reply(self, msg, &r)) != 0)
        tr_msg_destroy(&r);
    return rc;
}

TR_BEHAVIOUR(echo_strict, .handle = s_strict_handle);

/* polite: keeps "hold" requests and, when stopped, answers each from
 * terminate with TR_ESHUTDOWN (a terminate may still send). */
typedef struct {
    tr_msg_t *held;
} polite_t;

static int
s_polite_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    polite_t *p = state;
    if (tr_msg_is(msg, "sync"))
        return ts_reply_ints(self, msg, 0, NULL);
    if (!tr_msg_is(msg, "hold"))
        return TR_EUNHANDLED;
    tr_msg_destroy(&p->held);
    return tr_msg_dup(msg, &p->held);
}

static void
s_polite_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)reason;
    polite_t *p = state;
    if (p->held != NULL)
        (void)tr_reply_error(self, p->held, TR_ESHUTDOWN);
    tr_msg_destroy(&p->held);
}

TR_BEHAVIOUR(polite, .state_size = sizeof(polite_t),
             .handle = s_polite_handle, .terminate = s_polite_terminate);

/* ------------------------------------------------------------------ */
/* tell, ask, call, reply                                              */
/* ------------------------------------------------------------------ */

START_TEST(tell_reaches_the_actor_by_name_and_by_id)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    ts_tell(node, "s", ts_msg("probe"));
    tr_msg_t *m = ts_msg("probe");
    ck_assert_int_eq(tr_tell_id(node, s, &m), 0);
    ck_assert_ptr_null(m);
    m = ts_msg("probe");
    ck_assert_int_eq(tr_try_tell(node, "s", &m), 0);
    m = ts_msg("probe");
    ck_assert_int_eq(tr_try_tell_id(node, s, &m), 0);
    ck_assert_ptr_null(m);
    /* One sender's messages arrive in order: the call comes after. */
    int64_t v[2];
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("last"), 2, v), 0);
    ck_assert_int_eq(v[1], 4);
    ts_destroy(&node);
}
END_TEST

/* A message over the node's limit is refused at the sender (counted),
 * and stays the sender's; one at the limit goes. */
START_TEST(message_over_the_size_limit_is_emsgsize_and_stays_the_senders)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.max_message_bytes = 4096});
    ts_spawn(node, "svc", "s");
    static char big[5000];
    tr_msg_t *m = ts_msg("probe");
    ck_assert_int_eq(tr_msg_add_bin(m, big, sizeof big), 0);
    ck_assert_int_eq(tr_tell(node, "s", &m), TR_EMSGSIZE);
    ck_assert_ptr_nonnull(m); /* not taken */
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), TR_EMSGSIZE);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    m = ts_msg("probe");
    ck_assert_int_eq(tr_msg_add_bin(m, big, 3000), 0);
    ck_assert_int_eq(tr_tell(node, "s", &m), 0);
    int64_t v[2];
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("last"), 2, v), 0);
    ck_assert_int_eq(v[1], 1); /* only the one that fit came */
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    ck_assert_uint_eq(st.oversize, 2); /* the tell and the ask */
    ck_assert_str_eq(tr_strerror(TR_EMSGSIZE),
                     "message larger than the node allows");
    ts_destroy(&node);
    ck_assert_int_eq(
        tr_node_create(&node, &(tr_node_opts_t){.max_message_bytes = -1}),
        TR_EINVAL);
}
END_TEST

START_TEST(ask_and_reply_round_trip_carries_payloads)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", NULL);
    size_t big = 100000;
    uint8_t *blob = malloc(big);
    ck_assert_ptr_nonnull(blob);
    for (size_t i = 0; i < big; i++)
        blob[i] = (uint8_t)(i * 7 + 3);

    tr_msg_t *m = ts_msg("echo");
    ck_assert_int_eq(tr_msg_add_int(m, -5), 0);
    ck_assert_int_eq(tr_msg_add_uint(m, UINT64_MAX), 0);
    ck_assert_int_eq(tr_msg_add_double(m, 2.5), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "héllo"), 0);
    ck_assert_int_eq(tr_msg_add_nil(m), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, true), 0);
    ck_assert_int_eq(tr_msg_add_array(m, 2), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 1), 0);
    ck_assert_int_eq(tr_msg_add_map(m, 1), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "k"), 0);
    ck_assert_int_eq(tr_msg_add_int(m, INT64_MIN), 0);
    ck_assert_int_eq(tr_msg_add_bin(m, blob, big), 0);

    tr_future_t *f = NULL;
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_ask_id(node, s, &m, TS_CALL_MS, &f), 0);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, &reply), 0);
    ck_assert(tr_future_done(f));
    tr_future_destroy(&f);
    ck_assert_ptr_null(f);

    ck_assert_str_eq(tr_msg_tag(reply), "echo");
    ck_assert_uint_eq(tr_msg_sender(reply), s);
    ck_assert(!tr_msg_is_request(reply));
    tr_reader_t r;
    tr_reader_init(&r, reply);
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    uint32_t c;
    char str[16];
    const void *data;
    size_t len;
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, -5);
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(d == 2.5);
    ck_assert_int_eq(tr_read_str_copy(&r, str, sizeof str), 0);
    ck_assert_str_eq(str, "héllo");
    ck_assert_int_eq(tr_read_nil(&r), 0);
    ck_assert_int_eq(tr_read_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(tr_read_array(&r, &c), 0);
    ck_assert_uint_eq(c, 2);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(tr_read_map(&r, &c), 0);
    ck_assert_uint_eq(c, 1);
    ck_assert_int_eq(tr_read_str_copy(&r, str, sizeof str), 0);
    ck_assert_str_eq(str, "k");
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, INT64_MIN);
    ck_assert_int_eq(tr_read_bin(&r, &data, &len), 0);
    ck_assert_uint_eq(len, big);
    ck_assert(memcmp(data, blob, big) == 0);
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&reply);
    free(blob);
    ts_destroy(&node);
}
END_TEST

START_TEST(call_returns_the_reply_or_drops_it_when_not_wanted)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg_i("echo", 7), *reply = NULL;
    ck_assert_int_eq(tr_call(node, "s", &m, TS_CALL_MS, &reply), 0);
    ck_assert_ptr_null(m);
    int64_t v;
    ts_ints(reply, 1, &v);
    ck_assert_int_eq(v, 7);
    tr_msg_destroy(&reply);
    m = ts_msg_i("echo", 8);
    ck_assert_int_eq(tr_call(node, "s", &m, TS_CALL_MS, NULL), 0);
    ck_assert_ptr_null(m);
    /* Not sent (no such name): the message stays ours. */
    m = ts_msg("echo");
    ck_assert_int_eq(tr_call(node, "nobody", &m, TS_CALL_MS, &reply),
                     TR_ENOENT);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(reply);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

START_TEST(reply_error_settles_the_future_with_that_code)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    static const int codes[] = {TR_ERANGE, TR_EFAILED, TR_ETIMEDOUT, -1000};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        tr_msg_t *m = ts_msg_i("fail", codes[i]), *reply = NULL;
        tr_future_t *f = NULL;
        ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
        ck_assert_int_eq(tr_future_wait(f, TR_FOREVER), 0); /* settled */
        ck_assert_int_eq(tr_future_get(f, 0, &reply), codes[i]);
        ck_assert_ptr_null(reply);
        /* The outcome stays the same on every look. */
        ck_assert_int_eq(tr_future_get(f, 0, &reply), codes[i]);
        tr_future_destroy(&f);
    }
    /* The actor went on (an error reply is not a failure). */
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 1), 1, &v), 0);
    ts_destroy(&node);
}
END_TEST

/* Ask a verb that ends the actor without a reply; check the settlement. */
static void
s_ask_until_dead(const char *verb, int64_t arg, int want_reason)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg_i(verb, arg);
    tr_future_t *f = NULL;
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_EDEAD);
    ck_assert_int_lt(ts_now_ms() - t0, TS_CALL_MS / 2); /* not the deadline */
    ck_assert_int_eq(tr_future_exit_reason(f), want_reason);
    tr_future_destroy(&f);
    int reason = 1;
    ck_assert_int_eq(tr_join(node, s, TS_CALL_MS, &reason), 0);
    ck_assert_int_eq(reason, want_reason);
    ts_destroy(&node);
}

START_TEST(ask_settles_with_edead_and_the_reason_when_the_handler_fails)
{
    s_ask_until_dead("die", TR_ERANGE, TR_ERANGE);
}
END_TEST

START_TEST(ask_settles_with_edead_when_the_actor_calls_tr_exit)
{
    s_ask_until_dead("exit", TR_EPROTO, TR_EPROTO);
}
END_TEST

START_TEST(ask_settles_with_edead_when_the_actor_exits_normally)
{
    s_ask_until_dead("exit", 0, 0);
}
END_TEST

START_TEST(positive_exit_codes_become_efailed)
{
    s_ask_until_dead("exit", 3, TR_EFAILED);
}
END_TEST

/* A reply sent from terminate reaches the asker before the news of the
 * end: the ask settles with the reply's code, not TR_EDEAD. */
START_TEST(reply_sent_from_terminate_wins_over_the_end)
{
    tr_node_t *node = ts_node(NULL);
    for (int round = 0; round < 50; round++) {
        tr_id_t p = ts_spawn(node, "polite", NULL);
        tr_msg_t *m = ts_msg("hold");
        tr_future_t *f = NULL;
        ck_assert_int_eq(tr_ask_id(node, p, &m, TR_FOREVER, &f), 0);
        /* Once "sync" is answered, "hold" (sent before it) is held. */
        tr_msg_t *sync = ts_msg("sync");
        tr_future_t *fs = NULL;
        ck_assert_int_eq(tr_ask_id(node, p, &sync, TS_CALL_MS, &fs), 0);
        ck_assert_int_eq(tr_future_get(fs, TR_FOREVER, NULL), 0);
        tr_future_destroy(&fs);
        ck_assert_int_eq(tr_stop(node, p, TS_CALL_MS), 0);
        int rc = tr_future_get(f, TR_FOREVER, NULL);
        ck_assert_msg(rc == TR_ESHUTDOWN, "round %d: %s", round,
                      tr_strerror(rc));
        tr_future_destroy(&f);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(ask_to_a_silent_actor_times_out_at_its_deadline)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_ask(node, "s", &m, 150, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_ETIMEDOUT);
    ck_assert_int_ge(ts_now_ms() - t0, 150); /* never before the deadline */
    ck_assert(tr_future_done(f));
    ck_assert_int_eq(tr_future_wait(f, 0), 0);
    tr_future_destroy(&f);
    ts_destroy(&node);
}
END_TEST

START_TEST(ask_uses_the_node_ask_timeout_by_default)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.ask_timeout_ms = 200});
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_ask(node, "s", &m, TR_DEFAULT, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_ETIMEDOUT);
    int64_t dt = ts_now_ms() - t0;
    ck_assert_int_ge(dt, 200);
    ck_assert_int_lt(dt, 10000);
    tr_future_destroy(&f);
    ts_destroy(&node);
}
END_TEST

START_TEST(late_reply_is_dropped_counted_and_never_given_to_a_newer_ask)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, 100, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_ETIMEDOUT);
    tr_future_destroy(&f);

    /* The actor answers now ("late" [0]), then gets an echo [5]; both
     * replies reach our inbox in that order. */
    ts_tell(node, "s", ts_msg("release"));
    m = ts_msg_i("echo", 5);
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, &reply), 0);
    ck_assert_str_eq(tr_msg_tag(reply), "echo");
    int64_t v;
    ts_ints(reply, 1, &v);
    ck_assert_int_eq(v, 5);
    tr_msg_destroy(&reply);
    tr_future_destroy(&f);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.late_replies, 1);

    /* Same for a future destroyed while still pending. */
    m = ts_msg("hold");
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
    tr_future_destroy(&f);
    ts_tell(node, "s", ts_msg("release"));
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 6), 1, &v), 0);
    ck_assert_int_eq(v, 6);
    ts_stats(node, &st);
    ck_assert_uint_eq(st.late_replies, 2);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deadlines                                                           */
/* ------------------------------------------------------------------ */

/* Call "s" with m (taken) within timeout_ms, the deadline under test;
 * the reply's two ints in v. */
static void
s_call_within(tr_node_t *node, tr_msg_t *m, int timeout_ms, int64_t *v)
{
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_call(node, "s", &m, timeout_ms, &reply), 0);
    ts_ints(reply, 2, v);
    tr_msg_destroy(&reply);
}

START_TEST(deadline_travels_with_the_request)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.ask_timeout_ms = 7000});
    ts_spawn(node, "svc", "s");
    int64_t v[2];
    s_call_within(node, ts_msg("deadline"), 3000, v);
    ck_assert_int_gt(v[0], 0);
    ck_assert_int_le(v[0], 3000);
    ck_assert_int_eq(v[1], 1); /* a request */

    s_call_within(node, ts_msg("deadline"), TR_FOREVER, v);
    ck_assert_int_eq(v[0], TR_FOREVER);

    /* TR_DEFAULT: the node's 7000 ms. */
    s_call_within(node, ts_msg("deadline"), TR_DEFAULT, v);
    ck_assert_int_gt(v[0], 3000);
    ck_assert_int_le(v[0], 7000);
    ts_destroy(&node);
}
END_TEST

START_TEST(tell_messages_carry_no_deadline)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ts_spawn(node, "svc", "b");
    int64_t v[2];
    ts_tell(node, "s", ts_msg("probe"));
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("last"), 2, v), 0);
    ck_assert_int_eq(v[0], TR_FOREVER);
    ck_assert_int_eq(v[1], 1);
    /* Also a tell made while handling a request with a deadline. */
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("fwd_tell"), 1, v), 0);
    ck_assert_int_eq(v[0], 0);
    ck_assert_int_eq(ts_call_ints(node, "b", ts_msg("last"), 2, v), 0);
    ck_assert_int_eq(v[0], TR_FOREVER);
    ck_assert_int_eq(v[1], 1);
    ts_destroy(&node);
}
END_TEST

START_TEST(ask_inside_a_handler_inherits_the_remaining_deadline)
{
    /* The node's ask timeout is long, so an inherited deadline (at most
     * the outer 2000 ms) is told apart from the default one. */
    tr_node_t *node = ts_node(&(tr_node_opts_t){.ask_timeout_ms = 20000});
    ts_spawn(node, "svc", "s");
    ts_spawn(node, "svc", "b");
    int64_t v[2];
    s_call_within(node, ts_msg_i("fwd", TR_DEFAULT), 2000, v);
    ck_assert_int_gt(v[0], 0);
    ck_assert_int_le(v[0], 2000);
    ck_assert_int_eq(v[1], 1);

    /* An explicit timeout inside the handler is used as given. */
    s_call_within(node, ts_msg_i("fwd", 9000), 2000, v);
    ck_assert_int_gt(v[0], 2000);
    ck_assert_int_le(v[0], 9000);

    /* Handling a request without a deadline (TR_FOREVER), TR_DEFAULT is
     * the node's ask timeout. */
    s_call_within(node, ts_msg_i("fwd", TR_DEFAULT), TR_FOREVER, v);
    ck_assert_int_gt(v[0], 9000);
    ck_assert_int_le(v[0], 20000);
    ts_destroy(&node);
}
END_TEST

START_TEST(expired_requests_are_dropped_and_counted)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ts_spawn(node, "ts_gate", "gate");
    ts_gate_block(node, "s");
    /* Queued behind the blocked handler until long after its deadline. */
    tr_msg_t *m = ts_msg("deadline");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, 50, &f), 0);
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, NULL), TR_ETIMEDOUT);
    tr_future_destroy(&f);
    ts_gate_open(node);

    int64_t v[6];
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("results"), 6, v), 0);
    ck_assert_int_eq(v[5], 0); /* the handler never saw it */
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.late_replies, 0); /* and never answered */
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Unhandled, futures                                                  */
/* ------------------------------------------------------------------ */

START_TEST(unhandled_tag_settles_with_eunhandled_and_the_actor_goes_on)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("nope");
    ck_assert_int_eq(tr_call(node, "s", &m, TS_CALL_MS, NULL), TR_EUNHANDLED);
    ts_tell(node, "s", ts_msg("nope2"));
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 3), 1, &v), 0);
    ck_assert_int_eq(v, 3);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.unhandled, 2);
    ck_assert_uint_eq(st.failed, 0);
    char label[96];
    ts_label(label, sizeof label, "s", s);
    ck_assert_int_eq(ts_log_count("'nope'", label), 1);
    ck_assert_int_eq(ts_log_count("'nope2'", label), 1);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

typedef struct {
    tr_future_t *f;
    int wait_rc, get_rc, done_before;
} s_thief_t;

static void *
s_thief_main(void *arg)
{
    s_thief_t *t = arg;
    tr_msg_t *reply = NULL;
    t->wait_rc = tr_future_wait(t->f, 0);
    t->get_rc = tr_future_get(t->f, 1000, &reply);
    tr_msg_destroy(&reply);
    return NULL;
}

START_TEST(future_wait_from_another_thread_is_eperm)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
    s_thief_t t = {.f = f};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, s_thief_main, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.wait_rc, TR_EPERM);
    ck_assert_int_eq(t.get_rc, TR_EPERM);
    /* The owner still gets the answer. */
    ts_tell(node, "s", ts_msg("release"));
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_future_get(f, TS_CALL_MS, &reply), 0);
    ck_assert_str_eq(tr_msg_tag(reply), "late");
    tr_msg_destroy(&reply);
    tr_future_destroy(&f);
    ts_destroy(&node);
}
END_TEST

START_TEST(future_wait_zero_polls)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
    int64_t t0 = ts_now_ms();
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(tr_future_wait(f, 0), TR_ETIMEDOUT);
    ck_assert(!tr_future_done(f));
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_future_get(f, 0, &reply), TR_ETIMEDOUT);
    ck_assert_ptr_null(reply);
    ck_assert_int_lt(ts_now_ms() - t0, 5000); /* no waiting in there */
    ts_tell(node, "s", ts_msg("release"));
    ck_assert_int_eq(tr_future_wait(f, TS_CALL_MS), 0);
    ck_assert(tr_future_done(f));
    ck_assert_int_eq(tr_future_wait(f, 0), 0);
    ck_assert_int_eq(tr_future_get(f, 0, NULL), 0);
    tr_future_destroy(&f);
    ts_destroy(&node);
}
END_TEST

START_TEST(future_get_twice_gives_enoent_after_the_reply_was_taken)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    for (int drop = 0; drop < 2; drop++) {
        tr_msg_t *m = ts_msg_i("echo", 9), *reply = NULL;
        tr_future_t *f = NULL;
        ck_assert_int_eq(tr_ask(node, "s", &m, TS_CALL_MS, &f), 0);
        ck_assert_int_eq(tr_future_get(f, TR_FOREVER, drop ? NULL : &reply),
                         0);
        ck_assert(drop || reply != NULL);
        tr_msg_destroy(&reply);
        ck_assert_int_eq(tr_future_get(f, TR_FOREVER, &reply), TR_ENOENT);
        ck_assert_ptr_null(reply);
        ck_assert_int_eq(tr_future_get(f, 0, &reply), TR_ENOENT);
        tr_future_destroy(&f);
    }
    ts_destroy(&node);
}
END_TEST

/* Every ask settles: one still pending when its node goes settles with
 * TR_ECANCELED, and the future can still be read and freed. */
START_TEST(future_pending_at_node_destroy_settles_with_ecanceled)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_ask(node, "s", &m, TR_FOREVER, &f), 0);
    ck_assert_int_eq(tr_future_wait(f, 0), TR_ETIMEDOUT);
    ts_destroy(&node);
    ck_assert(tr_future_done(f));
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_future_get(f, TR_FOREVER, &reply), TR_ECANCELED);
    ck_assert_ptr_null(reply);
    tr_future_destroy(&f);
    ck_assert_ptr_null(f);
}
END_TEST

START_TEST(future_functions_accept_null)
{
    ck_assert_int_eq(tr_future_wait(NULL, 0), TR_EINVAL);
    ck_assert_int_eq(tr_future_get(NULL, 0, NULL), TR_EINVAL);
    ck_assert(!tr_future_done(NULL));
    ck_assert_int_eq(tr_future_exit_reason(NULL), 0);
    tr_future_t *f = NULL;
    tr_future_destroy(&f);
    tr_future_destroy(NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    tr_node_t *node;
    int calls, errors;
    int64_t first_id;
    bool same_id;
} s_asker_t;

static void *
s_asker_main(void *arg)
{
    s_asker_t *a = arg;
    a->same_id = true;
    for (int i = 0; i < a->calls; i++) {
        tr_msg_t *m = NULL, *reply = NULL;
        int64_t got = 0, id = 0;
        int rc = tr_msg_create(&m, "echo");
        if (rc == 0)
            rc = tr_msg_add_int(m, i);
        if (rc == 0)
            rc = tr_call(a->node, "s", &m, TS_CALL_MS, &reply);
        tr_msg_destroy(&m);
        if (rc == 0) {
            tr_reader_t r;
            tr_reader_init(&r, reply);
            rc = tr_read_int(&r, &got);
            tr_msg_destroy(&reply);
        }
        if (rc != 0 || got != i)
            a->errors++;
        /* Who the actor thinks we are: one id per thread. */
        if (i % 25 == 0) {
            if ((rc = tr_msg_create(&m, "whoami")) == 0)
                rc = tr_call(a->node, "s", &m, TS_CALL_MS, &reply);
            tr_msg_destroy(&m);
            if (rc == 0) {
                tr_reader_t r;
                tr_reader_init(&r, reply);
                rc = tr_read_int(&r, &id);
                tr_msg_destroy(&reply);
            }
            if (rc != 0)
                a->errors++;
            else if (a->first_id == 0)
                a->first_id = id;
            else if (a->first_id != id)
                a->same_id = false;
        }
    }
    return NULL;
}

START_TEST(many_threads_ask_at_once_each_with_its_own_port)
{
    enum { T = 8 };
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    s_asker_t a[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        a[i] = (s_asker_t){.node = node, .calls = 300};
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_asker_main, &a[i]),
                         0);
    }
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(a[i].errors, 0);
        ck_assert(a[i].same_id);
        ck_assert_int_ne(a[i].first_id, 0);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(a[i].first_id, a[j].first_id);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(an_actor_can_call_another_actor)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ts_spawn(node, "svc", "b");
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("call_other"), 1, &v), 0);
    ck_assert_int_eq(v, 42);
    ts_destroy(&node);
}
END_TEST

START_TEST(a_thread_id_is_not_an_actor)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    int64_t me = 0;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("whoami"), 1, &me), 0);
    ck_assert_int_ne(me, 0);
    tr_msg_t *m = ts_msg("probe");
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_tell_id(node, (tr_id_t)me, &m), TR_ENOENT);
    ck_assert_int_eq(tr_ask_id(node, (tr_id_t)me, &m, 100, &f), TR_ENOENT);
    ck_assert_int_eq(tr_tell_id(node, 0, &m), TR_ENOENT);
    ck_assert_int_eq(tr_ask_id(node, 0, &m, 100, &f), TR_ENOENT);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(f);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Refused sends                                                       */
/* ------------------------------------------------------------------ */

START_TEST(tell_to_an_ended_actor_gives_enoent_and_keeps_the_message)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t talked = ts_spawn(node, "svc", "talked");
    tr_id_t silent = ts_spawn(node, "svc", "silent");
    int64_t v;
    ck_assert_int_eq(
        ts_call_ints(node, "talked", ts_msg_i("echo", 1), 1, &v), 0);
    ck_assert_int_eq(tr_stop(node, talked, TS_CALL_MS), 0);
    ck_assert_int_eq(tr_stop(node, silent, TS_CALL_MS), 0);
    /* One we have a cached socket to, one we never talked to. */
    tr_id_t ids[2] = {talked, silent};
    const char *names[2] = {"talked", "silent"};
    for (int i = 0; i < 2; i++) {
        tr_msg_t *m = ts_msg("probe");
        tr_future_t *f = NULL;
        ck_assert_int_eq(tr_tell_id(node, ids[i], &m), TR_ENOENT);
        ck_assert_int_eq(tr_try_tell_id(node, ids[i], &m), TR_ENOENT);
        ck_assert_int_eq(tr_tell(node, names[i], &m), TR_ENOENT);
        ck_assert_int_eq(tr_try_tell(node, names[i], &m), TR_ENOENT);
        ck_assert_int_eq(tr_ask_id(node, ids[i], &m, 100, &f), TR_ENOENT);
        ck_assert_int_eq(tr_ask(node, names[i], &m, 100, &f), TR_ENOENT);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(tr_msg_tag(m), "probe");
        ck_assert_ptr_null(f);
        tr_msg_destroy(&m);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(sending_a_received_message_is_einval)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg_i("echo", 4), *reply = NULL;
    ck_assert_int_eq(tr_call(node, "s", &m, TS_CALL_MS, &reply), 0);
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_tell(node, "s", &reply), TR_EINVAL);
    ck_assert_int_eq(tr_tell_id(node, s, &reply), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell(node, "s", &reply), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell_id(node, s, &reply), TR_EINVAL);
    ck_assert_int_eq(tr_ask(node, "s", &reply, TS_CALL_MS, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask_id(node, s, &reply, TS_CALL_MS, &f), TR_EINVAL);
    ck_assert_ptr_null(f);
    /* Still ours and intact. */
    ck_assert_ptr_nonnull(reply);
    int64_t v;
    ts_ints(reply, 1, &v);
    ck_assert_int_eq(v, 4);
    /* A copy can be sent. */
    tr_msg_t *copy = NULL;
    ck_assert_int_eq(tr_msg_dup(reply, &copy), 0);
    ck_assert_int_eq(tr_call(node, "s", &copy, TS_CALL_MS, NULL), 0);
    tr_msg_destroy(&reply);
    ts_destroy(&node);
}
END_TEST

START_TEST(null_arguments_are_einval)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    tr_msg_t *m = ts_msg("probe"), *none = NULL;
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_tell(NULL, "s", &m), TR_EINVAL);
    ck_assert_int_eq(tr_tell(node, NULL, &m), TR_EINVAL);
    ck_assert_int_eq(tr_tell(node, "s", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_tell(node, "s", &none), TR_EINVAL);
    ck_assert_int_eq(tr_tell_id(NULL, s, &m), TR_EINVAL);
    ck_assert_int_eq(tr_tell_id(node, s, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_tell_id(node, s, &none), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell(NULL, "s", &m), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell(node, NULL, &m), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell_id(node, s, &none), TR_EINVAL);
    ck_assert_int_eq(tr_ask(NULL, "s", &m, 100, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask(node, NULL, &m, 100, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask(node, "s", NULL, 100, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask(node, "s", &m, 100, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_ask(node, "s", &m, -2, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask_id(node, s, &m, -100, &f), TR_EINVAL);
    ck_assert_int_eq(tr_ask_id(node, s, &none, 100, &f), TR_EINVAL);
    ck_assert_int_eq(tr_call(NULL, "s", &m, 100, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_call(node, NULL, &m, 100, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_call(node, "s", NULL, 100, NULL), TR_EINVAL);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(f);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

START_TEST(reply_from_a_non_actor_thread_is_eperm)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("leak"), 0, NULL), 0);
    tr_actor_t *self = atomic_load(&s_leaked_self);
    ck_assert_ptr_nonnull(self);
    ck_assert(tr_msg_is_request(s_leaked_req));
    tr_msg_t *r = ts_msg("forged");
    ck_assert_int_eq(tr_reply(self, s_leaked_req, &r), TR_EPERM);
    ck_assert_ptr_nonnull(r); /* still ours */
    ck_assert_int_eq(tr_reply_error(self, s_leaked_req, TR_EFAILED),
                     TR_EPERM);
    tr_msg_destroy(&r);
    tr_msg_destroy(&s_leaked_req);
    /* And no stray reply reached us: the next call gets its own. */
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 11), 1, &v), 0);
    ck_assert_int_eq(v, 11);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.late_replies, 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(reply_to_a_non_request_is_einval)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ts_tell(node, "s", ts_msg("notreq"));
    int64_t v[6];
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("results"), 6, v), 0);
    ck_assert_int_eq(v[0], TR_EINVAL);
    ck_assert_int_eq(v[1], TR_EINVAL);
    ts_destroy(&node);
}
END_TEST

START_TEST(reply_checks_its_arguments)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    int64_t v[6];
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("badreply"), 6, v), 0);
    ck_assert_int_eq(v[0], TR_EINVAL); /* error code >= 0 */
    ck_assert_int_eq(v[1], TR_EINVAL);
    ck_assert_int_eq(v[2], TR_EINVAL); /* NULL reply pointer */
    ck_assert_int_eq(v[3], TR_EINVAL); /* *reply NULL */
    ck_assert_int_eq(v[4], TR_EINVAL); /* NULL self */
    ck_assert_int_eq(v[5], TR_EINVAL); /* NULL request; reply kept */
    ts_destroy(&node);
}
END_TEST

typedef struct {
    tr_node_t *node;
    int rc;
} s_quitter_t;

static void *
s_quitter_main(void *arg)
{
    s_quitter_t *q = arg;
    tr_msg_t *m = NULL;
    tr_future_t *f = NULL;
    if ((q->rc = tr_msg_create(&m, "hold")) == 0)
        q->rc = tr_ask(q->node, "s", &m, TS_CALL_MS, &f);
    tr_msg_destroy(&m);
    tr_future_destroy(&f);
    return NULL; /* the thread's port goes with it */
}

START_TEST(reply_to_an_asker_that_is_gone_counts_a_dead_letter)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    s_quitter_t q = {.node = node, .rc = 1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, s_quitter_main, &q), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(q.rc, 0);
    /* The "hold" was sent before the thread ended; order between its pipe
     * and ours is not given, so wait until the actor holds it. */
    int64_t v[6];
    for (int64_t until = ts_now_ms() + TS_CALL_MS;;) {
        tr_node_stats_t st;
        ts_tell(node, "s", ts_msg("release"));
        ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("results"), 6, v), 0);
        ts_stats(node, &st);
        if (st.dead_letters > 0 || ts_now_ms() > until)
            break;
    }
    ck_assert_int_eq(v[3], 0); /* tr_reply said 0 */
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.dead_letters, 1);
    ck_assert_uint_eq(st.failed, 0);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile frames on the wire                                          */
/* ------------------------------------------------------------------ */

/* A raw PUSH socket of this thread in the node's context, connected to
 * id's mailbox or inbox. Close it with s_raw_close before destroying the
 * node (zmq_ctx_term waits for every socket). */
static void *
s_raw_open(tr_node_t *node, tr_id_t id, tr__box_t box)
{
    void *s = zmq_socket(node->zctx, ZMQ_PUSH);
    ck_assert_ptr_nonnull(s);
    int linger = 0;
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger),
                     0);
    char ep[64];
    tr__endpoint(ep, sizeof ep, id, box);
    ck_assert_int_eq(zmq_connect(s, ep), 0);
    return s;
}

static void
s_raw_close(void *s)
{
    ck_assert_int_eq(zmq_close(s), 0);
}

static void
s_raw_send(void *s, const void *buf, size_t len)
{
    ck_assert_int_eq(zmq_send(s, buf, len, 0), (int)len);
}

/* A frame: header, tag, NUL, payload. Returns its length. */
static size_t
s_frame(uint8_t *buf, const tr__env_t *env, const char *tag,
        const void *payload, size_t plen)
{
    size_t n = strlen(tag);
    tr__env_write(buf, env, n);
    memcpy(buf + TR__ENV_HDR, tag, n + 1);
    if (plen > 0)
        memcpy(buf + TR__ENV_HDR + n + 1, payload, plen);
    return TR__ENV_HDR + n + 1 + plen;
}

/* Send "mark" through raw and wait until the actor saw n marks: frames
 * from one socket arrive in order, so everything sent before it on raw
 * has been handled. */
static void
s_raw_sync(tr_node_t *node, void *raw, int64_t n)
{
    uint8_t buf[128];
    tr__env_t env = {0};
    s_raw_send(raw, buf, s_frame(buf, &env, "mark", NULL, 0));
    int64_t got = 0;
    ck_assert_int_eq(
        ts_call_ints(node, "s", ts_msg_i("await_mark", n), 1, &got), 0);
    ck_assert_int_eq(got, n);
}

START_TEST(bad_frames_in_a_mailbox_are_dropped_counted_and_logged)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    void *raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    uint8_t buf[256], good[256];
    tr__env_t env = {.sender = 12345};
    size_t glen = s_frame(good, &env, "probe", NULL, 0);

    s_raw_send(raw, good, 10);             /* truncated header */
    s_raw_send(raw, "", 0);                /* empty: a receipt, skipped */
    s_raw_send(raw, good, glen - 1);       /* the tag's NUL cut off */
    memcpy(buf, good, glen);
    buf[1] = TR__ENV_VERSION + 1;          /* another version */
    s_raw_send(raw, buf, glen);
    memcpy(buf, good, glen);
    buf[0] = 'X';                          /* bad magic */
    s_raw_send(raw, buf, glen);
    memcpy(buf, good, glen);
    buf[2] = 0x80;                         /* unknown flag bits */
    s_raw_send(raw, buf, glen);
    memcpy(buf, good, glen);
    buf[3] = 40;                           /* tag longer than the frame */
    s_raw_send(raw, buf, glen);
    /* Replies and system messages have no business in a mailbox. */
    tr__env_t reply = {.flags = TR__F_REPLY, .sender = 12345, .corr = 1};
    s_raw_send(raw, buf, s_frame(buf, &reply, "echo", NULL, 0));
    tr__env_t sys = {.flags = TR__F_SYSTEM, .code = TR__SYS_STOP};
    const uint8_t stop_payload[] = {0xee, 0x00}; /* [-18, 0] */
    s_raw_send(raw, buf, s_frame(buf, &sys, "$stop", stop_payload, 2));
    s_raw_sync(node, raw, 1);

    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.bad_frames, 8);
    /* The actor did not take the system frame as a stop. */
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 2), 1, &v), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_uint_eq(st.failed + st.exited, 0);

    char label[96];
    ts_label(label, sizeof label, "s", s);
    ck_assert_int_eq(ts_log_count("malformed frame", label), 6);
    ck_assert_int_eq(ts_log_count("unsupported protocol version", label), 1);
    ck_assert_int_eq(ts_log_count("misrouted frame", label), 2);
    s_raw_close(raw);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(malformed_payload_reaches_the_reader_as_eproto_or_etrunc)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    void *raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    uint8_t buf[256];
    tr__env_t env = {.sender = 12345};
    static const struct {
        uint8_t bytes[4];
        size_t len;
        int want;
    } cases[] = {
        {{0xc1}, 1, TR_EPROTO},             /* never used in msgpack */
        {{0xcd, 0x01}, 2, TR_ETRUNC},       /* uint16 cut short */
        {{0}, 0, TR_ETRUNC},                /* no value at all */
        {{0xa3, 'a', 'b', 'c'}, 4, TR_ETYPE}, /* a string, not an int */
        {{0xd2, 0xff, 0xff}, 3, TR_ETRUNC}, /* int32 cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_raw_send(raw, buf,
                   s_frame(buf, &env, "parse", cases[i].bytes, cases[i].len));
        s_raw_sync(node, raw, (int64_t)i + 1);
        int64_t v[6];
        ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("results"), 6, v), 0);
        ck_assert_msg(v[2] == cases[i].want, "case %zu: %s, want %s", i,
                      tr_strerror((int)v[2]), tr_strerror(cases[i].want));
    }
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.bad_frames, 0); /* the envelopes were fine */
    ck_assert_uint_eq(st.failed, 0);
    s_raw_close(raw);
    ts_destroy(&node);
}
END_TEST

START_TEST(unknown_tag_on_the_wire_is_unhandled_and_logged)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    void *raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    uint8_t buf[256];
    tr__env_t env = {.sender = 0x5eed};
    s_raw_send(raw, buf, s_frame(buf, &env, "zzz", NULL, 0));
    s_raw_sync(node, raw, 1);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.unhandled, 1);
    char label[96];
    ts_label(label, sizeof label, "s", s);
    ck_assert_int_eq(ts_log_count("'zzz'", label), 1);
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 1), 1, &v), 0);
    s_raw_close(raw);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(request_from_an_unknown_sender_is_answered_into_dead_letters)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    void *raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    uint8_t buf[256];
    tr__env_t env = {.flags = TR__F_REQUEST, .sender = 0xdead00, .corr = 5};
    const uint8_t one[] = {0x01};
    s_raw_send(raw, buf, s_frame(buf, &env, "echo", one, 1));
    s_raw_sync(node, raw, 1);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.dead_letters, 1);
    ck_assert_uint_eq(st.failed, 0);
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 1), 1, &v), 0);
    s_raw_close(raw);
    ts_destroy(&node);
}
END_TEST

/* A request frame with sender 0 passes the envelope check and
 * tr_msg_is_request says true, but tr_reply refuses it with TR_EINVAL
 * ("not a request"). A handler written like the examples and benches
 * (return tr_reply's code) then fails, so one forged frame stops any
 * actor. A malformed frame must be counted and dropped, never a crash
 * (STYLE.md 8, DESIGN.md 3). */
START_TEST(request_without_a_sender_does_not_kill_the_actor)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "echo_strict", "s");
    void *raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    uint8_t buf[256];
    tr__env_t env = {.flags = TR__F_REQUEST, .sender = 0, .corr = 5};
    s_raw_send(raw, buf, s_frame(buf, &env, "echo", NULL, 0));
    /* "mark" after it on the same socket: handled only if the actor
     * survived the forged request (else the wait runs out). */
    tr__env_t tell = {0};
    s_raw_send(raw, buf, s_frame(buf, &tell, "mark", NULL, 0));
    bool survived = ts_flag_wait(&s_strict_marked, 3000);
    s_raw_close(raw);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_msg(survived && st.failed == 0,
                  "regression: a forged request frame with sender 0 "
                  "made the actor fail (failed=%llu)",
                  (unsigned long long)st.failed);
    tr_msg_t *m = ts_msg("echo");
    ck_assert_int_eq(tr_call(node, "s", &m, TS_CALL_MS, NULL), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(bad_frames_in_an_inbox_are_dropped_counted_and_logged)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    /* Our own inbox too: a non-actor thread reads it while it waits. */
    int64_t me = 0;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("whoami"), 1, &me), 0);
    tr_id_t targets[2] = {s, (tr_id_t)me};
    uint8_t buf[256];
    for (int t = 0; t < 2; t++) {
        void *raw = s_raw_open(node, targets[t], TR__BOX_INBOX);
        tr__env_t user = {.sender = s};
        tr__env_t sys = {.flags = TR__F_SYSTEM, .code = 99};
        tr__env_t sys_bad = {.flags = TR__F_SYSTEM, .code = TR__SYS_STOP};
        tr__env_t reply = {.flags = TR__F_REPLY, .sender = s, .corr = 999};
        const uint8_t two[] = {0x01, 0x02};
        const uint8_t str[] = {0xa1, 'x'};
        s_raw_send(raw, "garbage", 7);
        s_raw_send(raw, buf, s_frame(buf, &user, "probe", NULL, 0));
        s_raw_send(raw, buf, s_frame(buf, &sys, "$what", two, 2));
        s_raw_send(raw, buf, s_frame(buf, &sys_bad, "$stop", str, 2));
        s_raw_send(raw, buf, s_frame(buf, &reply, "stray", NULL, 0));
        /* The actor reads its inbox in its loop, we read ours while we
         * wait on futures: call until all were seen (the order against
         * the calls' own messages is not given), each call a real event. */
        tr_node_stats_t st = {0};
        uint64_t want_bad = 4 * (uint64_t)(t + 1);
        uint64_t want_late = (uint64_t)t + 1;
        for (int64_t until = ts_now_ms() + TS_CALL_MS;
             (st.bad_frames < want_bad || st.late_replies < want_late) &&
             ts_now_ms() < until;) {
            int64_t v;
            ck_assert_int_eq(
                ts_call_ints(node, "s", ts_msg_i("echo", 1), 1, &v), 0);
            ts_stats(node, &st);
        }
        ck_assert_uint_eq(st.bad_frames, want_bad);
        ck_assert_uint_eq(st.late_replies, want_late);
        s_raw_close(raw);
    }
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.late_replies, 2);
    ck_assert_uint_eq(st.failed + st.exited, 0);
    int64_t v;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg_i("echo", 3), 1, &v), 0);
    ck_assert_int_eq(v, 3);
    char label[96];
    ts_label(label, sizeof label, "s", s);
    ck_assert_int_eq(ts_log_count("malformed frame in inbox", label), 1);
    ck_assert_int_eq(ts_log_count("in inbox dropped", label), 1);
    ck_assert_int_eq(ts_log_count("unknown system message", label), 2);
    ck_assert_int_eq(ts_log_count("malformed frame in inbox", NULL), 2);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Batches of replies (tr__port_send_batch) and the flush callback      */

/* batcher: holds "req" [v] asks; "flush" answers every held one with
 * [v * 10] in one batch (as the pool answers a worker's results). It
 * counts its runs: flush is called after each. */
#define S_BATCHER_MAX 16
typedef struct {
    tr_msg_t *held[S_BATCHER_MAX];
    int n;
    int64_t runs;  /* flush calls that followed messages */
    bool answer;   /* a "flush" came: answer at the end of the run */
} batcher_t;

static int
s_batcher_answer(tr_actor_t *self, batcher_t *b)
{
    tr_msg_t *batch = NULL;
    int rc = tr__batch_begin(&batch);
    for (int i = 0; i < b->n && rc == 0; i++) {
        tr_reader_t r;
        int64_t v = 0;
        tr_msg_t *res = NULL;
        tr_reader_init(&r, b->held[i]);
        if ((rc = tr_read_int(&r, &v)) != 0 ||
            (rc = tr_msg_create(&res, "r")) != 0 ||
            (rc = tr_msg_add_int(res, v * 10)) != 0) {
            tr_msg_destroy(&res);
            break;
        }
        res->env = (tr__env_t){.flags = TR__F_REPLY,
                               .corr = b->held[i]->env.corr,
                               .sender = tr_self(self),
                               .target = b->held[i]->env.sender};
        size_t len;
        const uint8_t *f = tr__msg_frame(res, &len);
        uint8_t *q = tr__batch_room(batch, len);
        if (q == NULL)
            rc = TR_ENOMEM;
        else
            memcpy(q, f, len);
        tr_msg_destroy(&res);
    }
    if (rc == 0 && b->n > 0)
        rc = tr__port_send_batch(self->port, b->held[0]->env.sender, &batch);
    tr_msg_destroy(&batch);
    for (int i = 0; i < b->n; i++)
        tr_msg_destroy(&b->held[i]);
    b->n = 0;
    return rc;
}

static int
s_batcher_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    batcher_t *b = state;
    (void)self;
    if (tr_msg_is(msg, "req") && b->n < S_BATCHER_MAX)
        return tr_msg_dup(msg, &b->held[b->n++]);
    if (tr_msg_is(msg, "flush")) {
        b->answer = true;
        return 0;
    }
    if (tr_msg_is(msg, "runs")) {
        tr_msg_t *r = NULL;
        int rc = tr_msg_create(&r, "runs");
        if (rc == 0 && (rc = tr_msg_add_int(r, b->runs)) == 0)
            rc = tr_reply(self, msg, &r);
        tr_msg_destroy(&r);
        return rc;
    }
    if (tr_msg_is(msg, "fail_flush"))
        return (b->runs = -1000), 0;
    if (tr_msg_is(msg, "noise"))
        return 0;
    return TR_EUNHANDLED;
}

static int
s_batcher_flush(tr_actor_t *self, void *state)
{
    batcher_t *b = state;
    if (b->runs < 0)
        return TR_ERANGE; /* "fail_flush": the actor fails with it */
    b->runs++;
    if (!b->answer)
        return 0;
    b->answer = false;
    return s_batcher_answer(self, b);
}

static void
s_batcher_terminate(tr_actor_t *self, void *state, int reason)
{
    batcher_t *b = state;
    (void)self, (void)reason;
    for (int i = 0; i < b->n; i++)
        tr_msg_destroy(&b->held[i]);
}

TR_BEHAVIOUR(batcher, .state_size = sizeof(batcher_t),
             .handle = s_batcher_handle, .flush = s_batcher_flush,
             .terminate = s_batcher_terminate);

static tr_future_t *
s_ask_req(tr_node_t *node, int64_t v)
{
    tr_future_t *f = NULL;
    tr_msg_t *m = ts_msg_i("req", v);
    ck_assert_int_eq(tr_ask(node, "b", &m, TS_CALL_MS, &f), 0);
    return f;
}

static int64_t
s_future_int(tr_future_t **f)
{
    tr_msg_t *r = NULL;
    ck_assert_int_eq(tr_future_get(*f, TS_CALL_MS, &r), 0);
    tr_reader_t rd;
    int64_t v = -1;
    tr_reader_init(&rd, r);
    ck_assert_int_eq(tr_read_int(&rd, &v), 0);
    tr_msg_destroy(&r);
    tr_future_destroy(f);
    return v;
}

START_TEST(a_batch_of_replies_settles_each_ask)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "batcher", "b");
    for (int round = 0; round < 2; round++) {
        /* 5 replies in one frame; then 1 (sent as a plain reply) */
        int n = round == 0 ? 5 : 1;
        tr_future_t *f[5];
        for (int i = 0; i < n; i++)
            f[i] = s_ask_req(node, i + 1);
        tr_msg_t *m = ts_msg("flush");
        ck_assert_int_eq(tr_tell(node, "b", &m), 0);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(s_future_int(&f[i]), (i + 1) * 10);
    }
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.bad_frames + st.late_replies, 0);
    ts_destroy(&node);
}
END_TEST

/* A batch frame for our inbox: flags, then the parts (each a length and
 * the bytes); returns its length. */
static size_t
s_batch_frame(uint8_t *buf, uint8_t flags, const uint8_t *const *parts,
              const size_t *lens, int n)
{
    tr__env_t env = {.flags = flags, .code = n};
    size_t len = s_frame(buf, &env, "$batch", NULL, 0);
    for (int i = 0; i < n; i++) {
        tr__put32(buf + len, (uint32_t)lens[i]);
        memcpy(buf + len + 4, parts[i], lens[i]);
        len += 4 + lens[i];
    }
    return len;
}

START_TEST(forged_batches_are_dropped_counted_and_spare_good_replies)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t s = ts_spawn(node, "svc", "s");
    ts_spawn(node, "batcher", "b");
    int64_t me = 0;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("whoami"), 1, &me), 0);
    tr_future_t *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = s_ask_req(node, i); /* held: only our forgeries answer */
    uint8_t rep[3][64], user[64], buf[512];
    size_t rl[3], ul;
    for (int i = 0; i < 3; i++) {
        tr__env_t e = {.flags = TR__F_REPLY, .corr = f[i]->corr};
        const uint8_t v[] = {(uint8_t)(70 + i)};
        rl[i] = s_frame(rep[i], &e, "r", v, 1);
    }
    tr__env_t ue = {.corr = f[1]->corr}; /* not a reply */
    ul = s_frame(user, &ue, "r", NULL, 0);
    void *raw = s_raw_open(node, (tr_id_t)me, TR__BOX_INBOX);
    /* f0's reply, then a part longer than what is left: f0 settles */
    const uint8_t *p1[] = {rep[0], rep[1]};
    size_t l1[] = {rl[0], rl[1]};
    size_t n1 = s_batch_frame(buf, TR__F_BATCH, p1, l1, 2);
    s_raw_send(raw, buf, n1 - 1);
    /* a part that is not a reply */
    const uint8_t *p2[] = {user};
    s_raw_send(raw, buf, s_batch_frame(buf, TR__F_BATCH, p2, &ul, 1));
    /* a batch with other flags, then one too short for a length */
    const uint8_t *p3[] = {rep[1]};
    s_raw_send(raw, buf,
               s_batch_frame(buf, TR__F_BATCH | TR__F_REPLY, p3, &rl[1], 1));
    size_t n4 = s_batch_frame(buf, TR__F_BATCH, NULL, NULL, 0);
    s_raw_send(raw, buf, n4 + 3);
    /* and a good one for f1 and f2 */
    const uint8_t *p5[] = {rep[1], rep[2]};
    size_t l5[] = {rl[1], rl[2]};
    s_raw_send(raw, buf, s_batch_frame(buf, TR__F_BATCH, p5, l5, 2));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s_future_int(&f[i]), 70 + i);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.bad_frames, 4);
    ck_assert_int_eq(ts_log_count("malformed batch", NULL), 4);
    s_raw_close(raw);
    /* A batch has no business in a mailbox. */
    raw = s_raw_open(node, s, TR__BOX_MAILBOX);
    s_raw_send(raw, buf, s_batch_frame(buf, TR__F_BATCH, p5, l5, 2));
    s_raw_sync(node, raw, 1);
    ts_stats(node, &st);
    ck_assert_uint_eq(st.bad_frames, 5);
    s_raw_close(raw);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

/* A future put into an array in place of another, between two waits on
 * that array, is found when it settles (the wait scans the array before
 * it blocks: the places it indexed before may be stale). */
START_TEST(next_done_finds_a_future_put_in_place_of_another)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "svc", "s");
    ts_spawn(node, "batcher", "b");
    /* Without deadlines: nothing else makes the wait look at them. */
    tr_future_t *futs[3];
    for (int i = 0; i < 3; i++) {
        tr_msg_t *q = ts_msg_i("req", i);
        ck_assert_int_eq(tr_ask(node, "b", &q, TR_FOREVER, &futs[i]), 0);
    }
    size_t n = 3;
    tr_future_t *done = NULL;
    ck_assert_int_eq(tr_future_next_done(futs, &n, 0, &done), TR_ETIMEDOUT);
    /* futs[1] makes room for an ask that is answered at once */
    tr_future_destroy(&futs[1]);
    tr_msg_t *m = ts_msg_i("echo", 7);
    ck_assert_int_eq(tr_ask(node, "s", &m, TR_FOREVER, &futs[1]), 0);
    /* FOREVER: a wait that missed it would never end (the case times
     * out), where one with a deadline would find it only then. */
    ck_assert_int_eq(tr_future_next_done(futs, &n, TR_FOREVER, &done), 0);
    ck_assert_uint_eq(n, 2);
    tr_msg_t *r = NULL;
    ck_assert_int_eq(tr_future_get(done, 0, &r), 0);
    ck_assert_str_eq(tr_msg_tag(r), "echo");
    tr_msg_destroy(&r);
    tr_future_destroy(&done);
    for (size_t i = 0; i < n; i++)
        tr_future_destroy(&futs[i]);
    ts_destroy(&node);
}
END_TEST

START_TEST(flush_runs_after_each_run_and_its_error_fails_the_actor)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "batcher", "b");
    int64_t runs = 0;
    for (int i = 0; i < 50; i++) {
        tr_msg_t *m = ts_msg("noise");
        ck_assert_int_eq(tr_tell(node, "b", &m), 0);
    }
    /* A run ends when the mailbox is read dry; the next ask may still
     * come within the run that answered the last one (a busy machine), so
     * ask until a run was counted. Never more runs than the messages
     * before the ask. */
    int64_t before = 50;
    do {
        ck_assert_int_eq(ts_call_ints(node, "b", ts_msg("runs"), 1, &runs),
                         0);
        ck_assert_int_le(runs, before);
        before++;
    } while (runs < 1 && before < 50 + 10000);
    ck_assert_int_ge(runs, 1);
    /* A held ask learns how the actor ended. */
    tr_future_t *f = s_ask_req(node, 1);
    tr_msg_t *m = ts_msg("fail_flush");
    ck_assert_int_eq(tr_tell(node, "b", &m), 0);
    ck_assert_int_eq(tr_future_get(f, TS_CALL_MS, NULL), TR_EDEAD);
    ck_assert_int_eq(tr_future_exit_reason(f), TR_ERANGE);
    tr_future_destroy(&f);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("tell_ask");
    TCase *tc = tcase_create("verbs");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, tell_reaches_the_actor_by_name_and_by_id);
    tcase_add_test(
        tc, message_over_the_size_limit_is_emsgsize_and_stays_the_senders);
    tcase_add_test(tc, ask_and_reply_round_trip_carries_payloads);
    tcase_add_test(tc, call_returns_the_reply_or_drops_it_when_not_wanted);
    tcase_add_test(tc, reply_error_settles_the_future_with_that_code);
    tcase_add_test(
        tc, ask_settles_with_edead_and_the_reason_when_the_handler_fails);
    tcase_add_test(tc, ask_settles_with_edead_when_the_actor_calls_tr_exit);
    tcase_add_test(tc, ask_settles_with_edead_when_the_actor_exits_normally);
    tcase_add_test(tc, positive_exit_codes_become_efailed);
    tcase_add_test(tc, ask_to_a_silent_actor_times_out_at_its_deadline);
    tcase_add_test(tc, reply_sent_from_terminate_wins_over_the_end);
    tcase_add_test(tc, ask_uses_the_node_ask_timeout_by_default);
    tcase_add_test(
        tc, late_reply_is_dropped_counted_and_never_given_to_a_newer_ask);
    tcase_add_test(tc, an_actor_can_call_another_actor);
    tcase_add_test(tc, a_thread_id_is_not_an_actor);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, deadline_travels_with_the_request);
    tcase_add_test(tc, tell_messages_carry_no_deadline);
    tcase_add_test(tc, ask_inside_a_handler_inherits_the_remaining_deadline);
    tcase_add_test(tc, expired_requests_are_dropped_and_counted);
    suite_add_tcase(s, tc);

    tc = tcase_create("futures");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc,
                   unhandled_tag_settles_with_eunhandled_and_the_actor_goes_on);
    tcase_add_test(tc, future_wait_from_another_thread_is_eperm);
    tcase_add_test(tc, future_wait_zero_polls);
    tcase_add_test(tc, future_get_twice_gives_enoent_after_the_reply_was_taken);
    tcase_add_test(tc, future_functions_accept_null);
    tcase_add_test(tc, future_pending_at_node_destroy_settles_with_ecanceled);
    tcase_add_test(tc, many_threads_ask_at_once_each_with_its_own_port);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc,
                   tell_to_an_ended_actor_gives_enoent_and_keeps_the_message);
    tcase_add_test(tc, sending_a_received_message_is_einval);
    tcase_add_test(tc, null_arguments_are_einval);
    tcase_add_test(tc, reply_from_a_non_actor_thread_is_eperm);
    tcase_add_test(tc, reply_to_a_non_request_is_einval);
    tcase_add_test(tc, reply_checks_its_arguments);
    tcase_add_test(tc, reply_to_an_asker_that_is_gone_counts_a_dead_letter);
    suite_add_tcase(s, tc);

    tc = tcase_create("wire");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, bad_frames_in_a_mailbox_are_dropped_counted_and_logged);
    tcase_add_test(tc,
                   malformed_payload_reaches_the_reader_as_eproto_or_etrunc);
    tcase_add_test(tc, unknown_tag_on_the_wire_is_unhandled_and_logged);
    tcase_add_test(
        tc, request_from_an_unknown_sender_is_answered_into_dead_letters);
    tcase_add_test(tc, bad_frames_in_an_inbox_are_dropped_counted_and_logged);
    tcase_add_test(tc, a_batch_of_replies_settles_each_ask);
    tcase_add_test(tc,
                   forged_batches_are_dropped_counted_and_spare_good_replies);
    tcase_add_test(tc, flush_runs_after_each_run_and_its_error_fails_the_actor);
    tcase_add_test(tc, next_done_finds_a_future_put_in_place_of_another);
    suite_add_tcase(s, tc);

    /* Regressions: each of these once failed against the runtime. */
    tc = tcase_create("regressions");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, request_without_a_sender_does_not_kill_the_actor);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
