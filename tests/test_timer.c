/* tests/test_timer.c - actor timers: a one-shot fires once and never
 * early, a periodic one keeps firing until cancelled (and not at all
 * after), late actors get one catch-up tick rather than a burst, timer
 * messages come from the actor itself, and the thread and argument rules
 * give their exact codes. Timers die with their actor (run under ASan or
 * valgrind to see them freed).
 *
 * The "ticker" actor keeps the test's request (a deferred reply) and
 * answers when the awaited tick has come, so the test waits for an event,
 * never a fixed time. Check forks per test: nodes are created inside. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "troupe.h"

#define S_VALS 8

/* Call "t" (the ticker) with tag [args...]; up to n ints of the reply in
 * out. */
static int
s_call(tr_node_t *node, const char *tag, int nargs, const int64_t *args,
       int n, int64_t *out)
{
    return ts_call_ints(node, "t", ts_msg_ints(tag, nargs, args), n, out);
}

/* ------------------------------------------------------------------ */
/* The ticker                                                          */
/* ------------------------------------------------------------------ */

/* Kept requests, answered later, one slot per kind of wait. */
enum { W_FIRE, W_TICKS, W_PROBE, W_SELF, W_ORDER, W_ZERO, W_SLOW, W_MAX };

typedef struct {
    tr_msg_t *waiter[W_MAX];
    int64_t t0_us;
    int64_t fires, fire_elapsed_us, fire_ok;
    uint64_t after_id;
    uint64_t every_id;
    int64_t ticks, want_ticks, ticks_start_us, ticks_ok;
    int64_t order[3], norder;
    int64_t slow_at[4], nslow;
    uint64_t self_id;
} ticker_t;

static tr_actor_t *_Atomic s_leaked_self;
static _Atomic int s_ticker_ended;

static int
s_answer(tr_actor_t *self, ticker_t *t, int slot, int n, const int64_t *v)
{
    if (t->waiter[slot] == NULL)
        return 0;
    int rc = ts_reply_ints(self, t->waiter[slot], n, v);
    tr_msg_destroy(&t->waiter[slot]);
    return rc;
}

static int
s_keep(ticker_t *t, int slot, const tr_msg_t *req)
{
    tr_msg_destroy(&t->waiter[slot]);
    return tr_msg_dup(req, &t->waiter[slot]);
}

/* A timer message: tag [v]. */
static int
s_timer_msg(const char *tag, int64_t v, tr_msg_t **out)
{
    int rc = tr_msg_create(out, tag);
    if (rc == 0 && (rc = tr_msg_add_int(*out, v)) != 0)
        tr_msg_destroy(out);
    return rc;
}

/* How a timer message must look: from ourselves, no request, no
 * deadline. */
static bool
s_timer_shape_ok(tr_actor_t *self, const tr_msg_t *msg)
{
    return tr_msg_sender(msg) == tr_self(self) && !tr_msg_is_request(msg) &&
           tr_msg_deadline_left_ms(msg) == TR_FOREVER;
}

static int
s_ticker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    ticker_t *t = state;
    int64_t a[2] = {0, 0};
    tr_msg_t *m = NULL;
    int rc;

    /* --- requests from the test --- */
    if (tr_msg_is(msg, "after")) { /* [delay]: reply at the fire */
        if ((rc = ts_read_ints(msg, 1, a)) != 0 ||
            (rc = s_keep(t, W_FIRE, msg)) != 0)
            return rc;
        if ((rc = s_timer_msg("fire", 77, &m)) != 0)
            return rc;
        t->t0_us = ts_now_us();
        rc = tr_timer_after(self, (int)a[0], &m, &t->after_id);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "every")) { /* [interval, n]: reply at tick n */
        if ((rc = ts_read_ints(msg, 2, a)) != 0 ||
            (rc = s_keep(t, W_TICKS, msg)) != 0)
            return rc;
        if ((rc = s_timer_msg("tick", 5, &m)) != 0)
            return rc;
        t->want_ticks = a[1];
        t->ticks_ok = 1;
        t->ticks_start_us = ts_now_us();
        rc = tr_timer_every(self, (int)a[0], &m, &t->every_id);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "cancel")) { /* reply [rc, ticks so far] */
        int64_t v[2] = {tr_timer_cancel(self, t->every_id), t->ticks};
        return ts_reply_ints(self, msg, 2, v);
    }
    if (tr_msg_is(msg, "cancel_id")) { /* [id]: reply [rc] */
        if ((rc = ts_read_ints(msg, 1, a)) != 0)
            return rc;
        int64_t v = tr_timer_cancel(self, (uint64_t)a[0]);
        return ts_reply_ints(self, msg, 1, &v);
    }
    if (tr_msg_is(msg, "probe_after")) { /* [delay]: reply [ticks, fires] */
        if ((rc = ts_read_ints(msg, 1, a)) != 0 ||
            (rc = s_keep(t, W_PROBE, msg)) != 0)
            return rc;
        if ((rc = s_timer_msg("probe", 0, &m)) != 0)
            return rc;
        rc = tr_timer_after(self, (int)a[0], &m, NULL);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "badargs")) {
        int64_t v[S_VALS];
        if ((rc = s_timer_msg("x", 0, &m)) != 0)
            return rc;
        tr_msg_t *none = NULL;
        uint64_t id = 4242;
        v[0] = tr_timer_every(self, 0, &m, &id);
        v[1] = tr_timer_after(self, -1, &m, &id);
        v[2] = tr_timer_every(self, -5, &m, &id);
        v[3] = tr_timer_after(self, 10, NULL, &id);
        v[4] = tr_timer_after(self, 10, &none, &id);
        v[5] = tr_timer_every(NULL, 10, &m, &id);
        v[6] = tr_timer_cancel(NULL, 1);
        v[7] = (m != NULL && id == 4242) ? 0 : 1; /* kept, id untouched */
        tr_msg_destroy(&m);
        return ts_reply_ints(self, msg, S_VALS, v);
    }
    if (tr_msg_is(msg, "cancel_unknown")) {
        int64_t v[2] = {tr_timer_cancel(self, 987654321),
                        tr_timer_cancel(self, 0)};
        return ts_reply_ints(self, msg, 2, v);
    }
    if (tr_msg_is(msg, "leak")) {
        atomic_store(&s_leaked_self, self);
        return ts_reply_ints(self, msg, 0, NULL);
    }
    if (tr_msg_is(msg, "many")) { /* [n]: n far timers, one fast ticker */
        if ((rc = ts_read_ints(msg, 1, a)) != 0)
            return rc;
        for (int64_t i = 0; i < a[0]; i++) {
            if ((rc = s_timer_msg("far", i, &m)) != 0)
                return rc;
            /* A big payload each, so a leak would show. */
            char pad[300] = {0};
            if ((rc = tr_msg_add_bin(m, pad, sizeof pad)) != 0 ||
                (rc = (i % 2 ? tr_timer_every(self, 60000, &m, NULL)
                             : tr_timer_after(self, 60000, &m, NULL))) != 0) {
                tr_msg_destroy(&m);
                return rc;
            }
        }
        if ((rc = s_timer_msg("tick", 0, &m)) != 0)
            return rc;
        t->want_ticks = INT64_MAX;
        t->ticks_ok = 1;
        rc = tr_timer_every(self, 1, &m, NULL);
        tr_msg_destroy(&m);
        return rc ? rc : ts_reply_ints(self, msg, 0, NULL);
    }
    if (tr_msg_is(msg, "zero")) {
        if ((rc = s_keep(t, W_ZERO, msg)) != 0 ||
            (rc = s_timer_msg("zfire", 0, &m)) != 0)
            return rc;
        rc = tr_timer_after(self, 0, &m, NULL);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "order")) { /* due in 30, 10, 20 ms */
        if ((rc = s_keep(t, W_ORDER, msg)) != 0)
            return rc;
        static const int delay[3] = {30, 10, 20};
        for (int i = 0; i < 3; i++) {
            if ((rc = s_timer_msg("ord", delay[i], &m)) != 0)
                return rc;
            rc = tr_timer_after(self, delay[i], &m, NULL);
            tr_msg_destroy(&m);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (tr_msg_is(msg, "self_cancel")) {
        if ((rc = s_keep(t, W_SELF, msg)) != 0 ||
            (rc = s_timer_msg("selftick", 4321, &m)) != 0)
            return rc;
        rc = tr_timer_every(self, 5, &m, &t->self_id);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "slow")) { /* ticks every 10 ms, first one slow */
        if ((rc = s_keep(t, W_SLOW, msg)) != 0 ||
            (rc = s_timer_msg("slowtick", 0, &m)) != 0)
            return rc;
        rc = tr_timer_every(self, 10, &m, &t->every_id);
        tr_msg_destroy(&m);
        return rc;
    }
    if (tr_msg_is(msg, "quit")) {
        tr_exit(self, 0);
        return 0;
    }

    /* --- timer messages --- */
    if (tr_msg_is(msg, "fire")) {
        t->fires++;
        t->fire_elapsed_us = ts_now_us() - t->t0_us;
        int64_t payload = 0;
        t->fire_ok = s_timer_shape_ok(self, msg) &&
                     ts_read_ints(msg, 1, &payload) == 0 && payload == 77;
        int64_t v[4] = {t->fire_elapsed_us, t->fire_ok, t->fires,
                        (int64_t)t->after_id};
        return s_answer(self, t, W_FIRE, 4, v);
    }
    if (tr_msg_is(msg, "tick")) {
        t->ticks++;
        if (!s_timer_shape_ok(self, msg))
            t->ticks_ok = 0;
        if (t->ticks == t->want_ticks) {
            int64_t v[3] = {ts_now_us() - t->ticks_start_us, t->ticks,
                            t->ticks_ok};
            return s_answer(self, t, W_TICKS, 3, v);
        }
        return 0;
    }
    if (tr_msg_is(msg, "probe")) {
        int64_t v[2] = {t->ticks, t->fires};
        return s_answer(self, t, W_PROBE, 2, v);
    }
    if (tr_msg_is(msg, "zfire")) {
        int64_t v = s_timer_shape_ok(self, msg);
        return s_answer(self, t, W_ZERO, 1, &v);
    }
    if (tr_msg_is(msg, "ord")) {
        if ((rc = ts_read_ints(msg, 1, a)) != 0)
            return rc;
        t->order[t->norder++] = a[0];
        return t->norder == 3 ? s_answer(self, t, W_ORDER, 3, t->order) : 0;
    }
    if (tr_msg_is(msg, "selftick")) {
        /* Cancel the very timer whose message we are handling, then use
         * the message: the handler borrows it for the whole call. A new
         * message made meanwhile must not reuse its memory. */
        int64_t v[3];
        v[0] = tr_timer_cancel(self, t->self_id);
        tr_msg_t *other = NULL;
        if ((rc = s_timer_msg("zzzzzzzz", 1, &other)) != 0)
            return rc;
        int64_t payload = 0;
        v[1] = tr_msg_is(msg, "selftick");
        v[2] = ts_read_ints(msg, 1, &payload) == 0 && payload == 4321;
        tr_msg_destroy(&other);
        return s_answer(self, t, W_SELF, 3, v);
    }
    if (tr_msg_is(msg, "slowtick")) {
        t->slow_at[t->nslow++] = ts_now_us();
        if (t->nslow == 1) {
            /* Simulated work, 100 ms of it: the ticks due meanwhile are
             * missed. (A busy handler, not a way to wait for anything.) */
            int64_t until = ts_now_us() + 100000;
            while (ts_now_us() < until)
                ;
        }
        if (t->nslow == 4) {
            (void)tr_timer_cancel(self, t->every_id);
            return s_answer(self, t, W_SLOW, 4, t->slow_at);
        }
        return 0;
    }
    return TR_EUNHANDLED;
}

static void
s_ticker_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    ticker_t *t = state;
    for (int i = 0; i < W_MAX; i++)
        tr_msg_destroy(&t->waiter[i]);
    atomic_store(&s_ticker_ended, 1);
}

TR_BEHAVIOUR(ticker, .state_size = sizeof(ticker_t),
             .handle = s_ticker_handle, .terminate = s_ticker_terminate);

/* The ticker, under the name s_call talks to. */
static tr_id_t
s_ticker(tr_node_t *node)
{
    return ts_spawn(node, "ticker", "t");
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

START_TEST(after_delivers_once_no_sooner_than_the_delay)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t arg = 50, v[4];
    ck_assert_int_eq(s_call(node, "after", 1, &arg, 4, v), 0);
    ck_assert_int_ge(v[0], 50000); /* never early */
    ck_assert_int_eq(v[1], 1);     /* from itself, not a request, no
                                      deadline, payload intact */
    ck_assert_int_eq(v[2], 1);
    ck_assert_int_ne(v[3], 0);     /* it had an id */
    /* Still once, after four more delays. */
    arg = 200;
    int64_t p[2];
    ck_assert_int_eq(s_call(node, "probe_after", 1, &arg, 2, p), 0);
    ck_assert_int_eq(p[1], 1);
    ts_destroy(&node);
}
END_TEST

START_TEST(every_delivers_repeatedly)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t args[2] = {20, 5}, v[3];
    ck_assert_int_eq(s_call(node, "every", 2, args, 3, v), 0);
    ck_assert_int_ge(v[0], 5 * 20000); /* the fifth tick: >= 100 ms */
    ck_assert_int_eq(v[1], 5);
    ck_assert_int_eq(v[2], 1); /* every tick came from itself */
    int64_t c[2];
    ck_assert_int_eq(s_call(node, "cancel", 0, NULL, 2, c), 0);
    ck_assert_int_eq(c[0], 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(cancel_stops_a_periodic_timer)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t args[2] = {10, 3}, v[3];
    ck_assert_int_eq(s_call(node, "every", 2, args, 3, v), 0);
    int64_t c[2];
    ck_assert_int_eq(s_call(node, "cancel", 0, NULL, 2, c), 0);
    ck_assert_int_eq(c[0], 0);
    ck_assert_int_ge(c[1], 3);
    /* Ten intervals later, no tick came in between. */
    int64_t arg = 100, p[2];
    ck_assert_int_eq(s_call(node, "probe_after", 1, &arg, 2, p), 0);
    ck_assert_int_eq(p[0], c[1]);
    /* It is gone: a second cancel finds nothing. */
    ck_assert_int_eq(s_call(node, "cancel", 0, NULL, 2, c), 0);
    ck_assert_int_eq(c[0], TR_ENOENT);
    ts_destroy(&node);
}
END_TEST

START_TEST(cancel_of_an_unknown_or_fired_timer_is_enoent)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t v[4];
    ck_assert_int_eq(s_call(node, "cancel_unknown", 0, NULL, 2, v), 0);
    ck_assert_int_eq(v[0], TR_ENOENT);
    ck_assert_int_eq(v[1], TR_ENOENT);
    int64_t arg = 1;
    ck_assert_int_eq(s_call(node, "after", 1, &arg, 4, v), 0);
    int64_t id = v[3], rc = 1;
    ck_assert_int_eq(s_call(node, "cancel_id", 1, &id, 1, &rc), 0);
    ck_assert_int_eq(rc, TR_ENOENT);
    ts_destroy(&node);
}
END_TEST

START_TEST(timers_from_another_thread_are_eperm)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    ck_assert_int_eq(s_call(node, "leak", 0, NULL, 0, NULL), 0);
    tr_actor_t *self = atomic_load(&s_leaked_self);
    ck_assert_ptr_nonnull(self);
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr_msg_create(&m, "fire"), 0);
    uint64_t id = 4242;
    ck_assert_int_eq(tr_timer_after(self, 10, &m, &id), TR_EPERM);
    ck_assert_int_eq(tr_timer_every(self, 10, &m, &id), TR_EPERM);
    ck_assert_ptr_nonnull(m); /* still ours */
    ck_assert_uint_eq(id, 4242);
    ck_assert_int_eq(tr_timer_cancel(self, 1), TR_EPERM);
    tr_msg_destroy(&m);
    /* Nothing was scheduled: the actor never gets a "fire". */
    int64_t arg = 50, p[2];
    ck_assert_int_eq(s_call(node, "probe_after", 1, &arg, 2, p), 0);
    ck_assert_int_eq(p[1], 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(bad_timer_arguments_are_einval)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t v[S_VALS];
    ck_assert_int_eq(s_call(node, "badargs", 0, NULL, S_VALS, v), 0);
    ck_assert_int_eq(v[0], TR_EINVAL); /* every 0 */
    ck_assert_int_eq(v[1], TR_EINVAL); /* after -1 */
    ck_assert_int_eq(v[2], TR_EINVAL); /* every -5 */
    ck_assert_int_eq(v[3], TR_EINVAL); /* NULL msg pointer */
    ck_assert_int_eq(v[4], TR_EINVAL); /* NULL *msg */
    ck_assert_int_eq(v[5], TR_EINVAL); /* NULL self */
    ck_assert_int_eq(v[6], TR_EINVAL); /* cancel, NULL self */
    ck_assert_int_eq(v[7], 0);         /* message kept, id untouched */
    ts_destroy(&node);
}
END_TEST

START_TEST(zero_delay_timer_fires_promptly)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t v = 0;
    ck_assert_int_eq(s_call(node, "zero", 0, NULL, 1, &v), 0);
    ck_assert_int_eq(v, 1);
    ts_destroy(&node);
}
END_TEST

START_TEST(one_shot_timers_fire_in_due_order)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t v[3];
    ck_assert_int_eq(s_call(node, "order", 0, NULL, 3, v), 0);
    ck_assert_int_eq(v[0], 10);
    ck_assert_int_eq(v[1], 20);
    ck_assert_int_eq(v[2], 30);
    ts_destroy(&node);
}
END_TEST

START_TEST(late_periodic_timer_gives_one_tick_not_a_burst)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t at[4];
    ck_assert_int_eq(s_call(node, "slow", 0, NULL, 4, at), 0);
    /* Tick 1 took 100 ms; tick 2 is the one catch-up; tick 3 comes a
     * whole interval after it, not at once to make up for the ~9 missed
     * ones. */
    ck_assert_int_ge(at[1] - at[0], 100000);
    ck_assert_int_ge(at[2] - at[1], 5000);
    ck_assert_int_ge(at[3] - at[2], 5000);
    ts_destroy(&node);
}
END_TEST

START_TEST(timers_die_with_their_actor)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t t = s_ticker(node);
    int64_t n = 100;
    ck_assert_int_eq(s_call(node, "many", 1, &n, 0, NULL), 0);
    ck_assert_int_eq(tr_stop(node, t, TS_CALL_MS), 0);
    ck_assert_int_eq(atomic_load(&s_ticker_ended), 1);
    /* And through tr_exit, with timers pending, then the node. */
    atomic_store(&s_ticker_ended, 0);
    t = s_ticker(node);
    ck_assert_int_eq(s_call(node, "many", 1, &n, 0, NULL), 0);
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr_msg_create(&m, "quit"), 0);
    ck_assert_int_eq(tr_tell_id(node, t, &m), 0);
    int reason = 1;
    ck_assert_int_eq(tr_join(node, t, TS_CALL_MS, &reason), 0);
    ck_assert_int_eq(reason, 0);
    t = s_ticker(node);
    ck_assert_int_eq(s_call(node, "many", 1, &n, 0, NULL), 0);
    ts_destroy(&node); /* freed by destroy's stop: ASan/valgrind check */
}
END_TEST

/* A handler borrows its message for the whole call (troupe.h). A periodic
 * timer's message belongs to the timer, and tr_timer_cancel frees it: when
 * the handler of a tick cancels that same timer, the message it is
 * handling is freed under it (and the next tr_msg_create reuses it; ASan
 * does not see this, as freed structs go back to a per-thread pool). */
START_TEST(cancel_from_its_own_tick_keeps_the_message_for_the_call)
{
    tr_node_t *node = ts_node(NULL);
    s_ticker(node);
    int64_t v[3];
    ck_assert_int_eq(s_call(node, "self_cancel", 0, NULL, 3, v), 0);
    ck_assert_int_eq(v[0], 0); /* the cancel itself worked */
    ck_assert_msg(v[1] == 1 && v[2] == 1,
                  "regression: a periodic timer cancelled from inside its "
                  "own tick frees the message the handler is still "
                  "handling (tag intact: %lld, payload intact: %lld; "
                  "runtime/actor.c tr_timer_cancel destroys the heap "
                  "entry's msg that s_fire_timers passed to the handler)",
                  (long long)v[1], (long long)v[2]);
    /* And no tick after the cancel. */
    int64_t arg = 50, p[2];
    ck_assert_int_eq(s_call(node, "probe_after", 1, &arg, 2, p), 0);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("timers");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, after_delivers_once_no_sooner_than_the_delay);
    tcase_add_test(tc, every_delivers_repeatedly);
    tcase_add_test(tc, cancel_stops_a_periodic_timer);
    tcase_add_test(tc, cancel_of_an_unknown_or_fired_timer_is_enoent);
    tcase_add_test(tc, timers_from_another_thread_are_eperm);
    tcase_add_test(tc, bad_timer_arguments_are_einval);
    tcase_add_test(tc, zero_delay_timer_fires_promptly);
    tcase_add_test(tc, one_shot_timers_fire_in_due_order);
    tcase_add_test(tc, late_periodic_timer_gives_one_tick_not_a_burst);
    tcase_add_test(tc, timers_die_with_their_actor);
    suite_add_tcase(s, tc);

    /* Regressions: each of these once failed against the runtime. */
    tc = tcase_create("regressions");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cancel_from_its_own_tick_keeps_the_message_for_the_call);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
