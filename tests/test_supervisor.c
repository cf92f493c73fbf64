/* tests/test_supervisor.c - supervisors, after Erlang/OTP's
 * supervisor_SUITE: the four strategies, the three restart types, restart
 * intensity (and how it escalates up a tree, to the root), children that
 * fail in init, ordered shutdown (and a child that will not stop), backoff
 * with the child's name kept meanwhile, the API's exact codes, the root
 * supervisor and node destroy, tr_kill.
 *
 * Check forks per test: every node is created inside the test. Children
 * record their callbacks (init, crash, terminate) in a test-side log under
 * a mutex; tests read it to see what ran and in which order, and wait on it
 * with a deadline. A restart is seen by calling the child by its kept name
 * (senders by name wait across a restart) once the old actor was joined.
 * Nothing sleeps to synchronise.
 *
 * Note on the root: a supervisor is a TRANSIENT child of its parent (by
 * default the node's root supervisor): one that gives up comes back as a
 * new actor, one stopped with tr_stop stays stopped.
 *
 * The case "regressions" holds tests that once failed against the runtime
 * (the comment above each says what was wrong). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support.h"
#include "troupe.h"

/* The crash reason the tests use: any negative code but TR_EUNHANDLED. */
#define S_CRASH TR_EPROTO

/* ------------------------------------------------------------------ */
/* The test-side log of callbacks                                      */
/* ------------------------------------------------------------------ */

/* kind: 'I' init ran (arg: the second int of its args), 'F' init failed
 * on purpose (reason: its code), 'C' a handler is about to crash, 'T'
 * terminate (reason). label: the first int of the child's args (-1 when
 * it had none). */
typedef struct {
    char kind;
    int label;
    tr_id_t id;
    int reason;
    int64_t arg;
    int64_t us; /* monotonic, when recorded */
} s_ev_t;

#define S_EVS 512
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    s_ev_t ev[S_EVS];
} s_evs = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void
s_ev_add(char kind, int label, tr_id_t id, int reason, int64_t arg)
{
    int64_t us = ts_now_us();
    pthread_mutex_lock(&s_evs.mu);
    if (s_evs.n < S_EVS)
        s_evs.ev[s_evs.n] = (s_ev_t){kind, label, id, reason, arg, us};
    s_evs.n++;
    pthread_cond_broadcast(&s_evs.cv);
    pthread_mutex_unlock(&s_evs.mu);
}

static int
s_ev_n(void)
{
    pthread_mutex_lock(&s_evs.mu);
    int n = s_evs.n;
    pthread_mutex_unlock(&s_evs.mu);
    ck_assert_int_le(n, S_EVS);
    return n;
}

static s_ev_t
s_ev(int i)
{
    pthread_mutex_lock(&s_evs.mu);
    ck_assert(i >= 0 && i < s_evs.n && i < S_EVS);
    s_ev_t e = s_evs.ev[i];
    pthread_mutex_unlock(&s_evs.mu);
    return e;
}

/* Events of kind for label (label -1: any label); caller holds the lock. */
static int
s_ev_count_locked(char kind, int label)
{
    int k = 0;
    for (int i = 0; i < s_evs.n && i < S_EVS; i++)
        if (s_evs.ev[i].kind == kind &&
            (label < 0 || s_evs.ev[i].label == label))
            k++;
    return k;
}

static int
s_ev_count(char kind, int label)
{
    pthread_mutex_lock(&s_evs.mu);
    int k = s_ev_count_locked(kind, label);
    pthread_mutex_unlock(&s_evs.mu);
    return k;
}

/* Wait up to ms for at least n events of kind for label. */
static bool
s_ev_wait(char kind, int label, int n, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the condvar's clock */
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s_evs.mu);
    int rc = 0;
    while (s_ev_count_locked(kind, label) < n && rc == 0)
        rc = pthread_cond_timedwait(&s_evs.cv, &s_evs.mu, &ts);
    bool ok = s_ev_count_locked(kind, label) >= n;
    pthread_mutex_unlock(&s_evs.mu);
    return ok;
}

/* The k-th (0-based) event of kind for label; aborts if there is none. */
static s_ev_t
s_ev_nth(char kind, int label, int k)
{
    int n = s_ev_n();
    for (int i = 0; i < n; i++) {
        s_ev_t e = s_ev(i);
        if (e.kind == kind && (label < 0 || e.label == label) && k-- == 0)
            return e;
    }
    ck_abort_msg("no event %c for label %d", kind, label);
    return (s_ev_t){0};
}

/* Assert that events [from, from + n) are exactly kinds[i]/labels[i]
 * (and, for 'T', reasons[i]). */
static void
s_ev_expect(int from, int n, const char *kinds, const int *labels,
            const int *reasons)
{
    ck_assert_int_ge(s_ev_n(), from + n);
    for (int i = 0; i < n; i++) {
        s_ev_t e = s_ev(from + i);
        ck_assert_msg(e.kind == kinds[i] && e.label == labels[i],
                      "event %d is %c%d, expected %c%d", from + i, e.kind,
                      e.label, kinds[i], labels[i]);
        if (e.kind == 'T' && reasons != NULL)
            ck_assert_int_eq(e.reason, reasons[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

#define S_LABELS 32

/* Per label: init fails with s_fail_rc while s_fail_left is non-zero
 * (counting down when positive; negative: always). */
static _Atomic int s_fail_rc[S_LABELS];
static _Atomic int s_fail_left[S_LABELS];

/* Init of the child with this label (when >= 0) waits for s_hold_go. */
static _Atomic int s_hold_label = -1;
static ts_flag_t s_hold_entered = TS_FLAG_INIT;
static ts_flag_t s_hold_go = TS_FLAG_INIT;

/* "stick" blocks its handler on s_stick_go (nothing the runtime can
 * interrupt). */
static ts_flag_t s_stick_entered = TS_FLAG_INIT;
static ts_flag_t s_stick_go = TS_FLAG_INIT;

typedef struct {
    int label;
} kid_t;

/* kid: args "kid" [label, arg]; records 'I', 'F', 'C', 'T'.
 *  "who"        -> reply [self, label]
 *  "die" [r]    -> return r (a crash for r < 0)
 *  "quit" [r]   -> tr_exit(self, r)
 *  "stick"      -> block on s_stick_go
 *  "block"      -> call the gate "hold" and return its code */
static int
s_kid_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    kid_t *k = state;
    int64_t v[2] = {-1, 0};
    tr_reader_t r;
    tr_reader_init(&r, args);
    if (tr_read_int(&r, &v[0]) == 0)
        (void)tr_read_int(&r, &v[1]);
    k->label = (int)v[0];
    if (k->label >= 0 && k->label < S_LABELS) {
        int left = atomic_load(&s_fail_left[k->label]);
        if (left != 0) {
            if (left > 0)
                atomic_fetch_sub(&s_fail_left[k->label], 1);
            int rc = atomic_load(&s_fail_rc[k->label]);
            s_ev_add('F', k->label, tr_self(self), rc, v[1]);
            return rc;
        }
    }
    if (k->label >= 0 && k->label == atomic_load(&s_hold_label)) {
        ts_flag_set(&s_hold_entered);
        ts_flag_wait(&s_hold_go, TR_FOREVER);
    }
    s_ev_add('I', k->label, tr_self(self), 0, v[1]);
    return 0;
}

static int
s_kid_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    kid_t *k = state;
    int64_t v = 0;
    int rc;
    if (tr_msg_is(msg, "who")) {
        int64_t out[2] = {(int64_t)tr_self(self), k->label};
        return ts_reply_ints(self, msg, 2, out);
    }
    if (tr_msg_is(msg, "die")) {
        if ((rc = ts_read_ints(msg, 1, &v)) != 0)
            return rc;
        s_ev_add('C', k->label, tr_self(self), (int)v, 0);
        return (int)v;
    }
    if (tr_msg_is(msg, "quit")) {
        if ((rc = ts_read_ints(msg, 1, &v)) != 0)
            return rc;
        tr_exit(self, (int)v);
        return 0;
    }
    if (tr_msg_is(msg, "stick")) {
        ts_flag_set(&s_stick_entered);
        ts_flag_wait(&s_stick_go, TR_FOREVER);
        return 0;
    }
    if (tr_msg_is(msg, "block")) {
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "hold")) == 0)
            rc = tr_call(tr_actor_node(self), "gate", &m, TS_CALL_MS, NULL);
        tr_msg_destroy(&m);
        return rc;
    }
    return TR_EUNHANDLED;
}

static void
s_kid_terminate(tr_actor_t *self, void *state, int reason)
{
    kid_t *k = state;
    s_ev_add('T', k->label, tr_self(self), reason, 0);
}

TR_BEHAVIOUR(kid, .state_size = sizeof(kid_t), .init = s_kid_init,
             .handle = s_kid_handle, .terminate = s_kid_terminate);

/* plain: an actor that is not a supervisor; answers nothing. */
static int
s_plain_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(plain, .handle = s_plain_handle);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Spawn args built by s_args live until the test's teardown (specs
 * borrow them). */
#define S_ARGS 64
static tr_msg_t *s_argv[S_ARGS];
static int s_nargs;

static const tr_msg_t *
s_args2(int label, int64_t arg)
{
    ck_assert_int_lt(s_nargs, S_ARGS);
    int64_t v[2] = {label, arg};
    s_argv[s_nargs] = ts_msg_ints("kid", 2, v);
    return s_argv[s_nargs++];
}

static const tr_msg_t *
s_args(int label)
{
    return s_args2(label, 0);
}

static void
s_teardown(void)
{
    for (int i = 0; i < s_nargs; i++)
        tr_msg_destroy(&s_argv[i]);
    s_nargs = 0;
}

/* A kid spec: id, kept name (NULL: anonymous), label, restart type. */
static tr_child_spec_t
s_spec(const char *id, const char *name, int label, tr_restart_t restart)
{
    return (tr_child_spec_t){.id = id,
                             .behaviour = "kid",
                             .spawn = {.name = name, .args = s_args(label)},
                             .restart = restart};
}

/* Call name "who" (waiting across a restart): its actor id. */
static tr_id_t
s_who(tr_node_t *node, const char *name)
{
    int64_t v[2] = {0, 0};
    ck_assert_int_eq(ts_call_ints(node, name, ts_msg("who"), 2, v), 0);
    ck_assert_int_ne(v[0], 0);
    return (tr_id_t)v[0];
}

static void
s_tell_i(tr_node_t *node, const char *name, const char *tag, int64_t v)
{
    ts_tell(node, name, ts_msg_i(tag, v));
}

static void
s_tell_id_i(tr_node_t *node, tr_id_t id, const char *tag, int64_t v)
{
    tr_msg_t *m = ts_msg_i(tag, v);
    ck_assert_int_eq(tr_tell_id(node, id, &m), 0);
    ck_assert_ptr_null(m);
}

/* Join id and check its exit reason. */
static void
s_join(tr_node_t *node, tr_id_t id, int want)
{
    int reason = 12345;
    ck_assert_int_eq(tr_join(node, id, TS_CALL_MS, &reason), 0);
    ck_assert_int_eq(reason, want);
}

/* Crash the child named name (id old) with S_CRASH, wait for it to end,
 * and return the id of the actor that took its name over. */
static tr_id_t
s_crash_and_wait(tr_node_t *node, const char *name, tr_id_t old)
{
    s_tell_i(node, name, "die", S_CRASH);
    s_join(node, old, S_CRASH);
    tr_id_t now = s_who(node, name);
    ck_assert_uint_ne(now, old);
    return now;
}

/* which_children, checked. */
static int
s_which(tr_node_t *node, tr_id_t sup, tr_sup_child_t *out, int max)
{
    int n = tr_sup_which_children(node, sup, out, max);
    ck_assert_int_ge(n, 0);
    return n;
}

/* The entry of child id in sup (aborts if absent). */
static tr_sup_child_t
s_child(tr_node_t *node, tr_id_t sup, const char *id)
{
    tr_sup_child_t c[16];
    int n = s_which(node, sup, c, 16);
    for (int i = 0; i < n; i++)
        if (strcmp(c[i].id, id) == 0)
            return c[i];
    ck_abort_msg("no child '%s'", id);
    return c[0];
}

/* How many children sup has. */
static int
s_count(tr_node_t *node, tr_id_t sup)
{
    tr_sup_child_t c[16];
    int n = s_which(node, sup, c, 16);
    ck_assert_int_lt(n, 16);
    return n;
}

static bool
s_has_child(tr_node_t *node, tr_id_t sup, const char *id)
{
    tr_sup_child_t c[16];
    int n = s_which(node, sup, c, 16);
    for (int i = 0; i < n; i++)
        if (strcmp(c[i].id, id) == 0)
            return true;
    return false;
}

/* Ask sup until it has seen that actor old of child id ended: the child
 * is gone from its list or runs (or waits to run: 0) as another actor.
 * *found tells which. Each ask is a round trip; bounded by TS_CALL_MS.
 * (A supervisor reads its "$exit"s before its requests only when it
 * looks at its inbox: it may answer one request more first.) */
static tr_sup_child_t
s_child_settled(tr_node_t *node, tr_id_t sup, const char *id, tr_id_t old,
                bool *found)
{
    int64_t end = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        tr_sup_child_t c[16];
        int n = s_which(node, sup, c, 16), i = 0;
        while (i < n && strcmp(c[i].id, id) != 0)
            i++;
        *found = i < n;
        if (!*found || c[i].actor != old)
            return *found ? c[i] : (tr_sup_child_t){{0}, 0, 0};
        ck_assert_msg(ts_now_ms() < end, "'%s' still %llx", id,
                      (unsigned long long)old);
    }
}

/* The supervisor has forgotten child id (actor old), not restarted it. */
static void
s_child_forgotten(tr_node_t *node, tr_id_t sup, const char *id, tr_id_t old)
{
    bool found = true;
    tr_sup_child_t c = s_child_settled(node, sup, id, old, &found);
    ck_assert_msg(!found, "'%s' is there as %llx", id,
                  (unsigned long long)c.actor);
}

/* Ask sup until child id runs as another actor than old (and not 0):
 * each ask is a round trip; bounded by TS_CALL_MS. */
static tr_sup_child_t
s_child_changed(tr_node_t *node, tr_id_t sup, const char *id, tr_id_t old)
{
    int64_t end = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        tr_sup_child_t c = s_child(node, sup, id);
        if (c.actor != 0 && c.actor != old)
            return c;
        ck_assert_msg(ts_now_ms() < end, "child '%s' not restarted", id);
    }
}

/* ------------------------------------------------------------------ */
/* Strategies                                                          */
/* ------------------------------------------------------------------ */

START_TEST(one_for_one_restarts_only_the_crashed_child_under_its_name)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", "kc", 2, TR_PERMANENT)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 3, &sup), 0);
    ck_assert_uint_ne(sup, 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb"),
            c = s_who(node, "kc");

    tr_id_t b2 = s_crash_and_wait(node, "kb", b);
    ck_assert_uint_ne(b2, a);
    ck_assert_uint_ne(b2, c);
    ck_assert_uint_eq(s_who(node, "ka"), a);
    ck_assert_uint_eq(s_who(node, "kc"), c);

    /* Only b ended and started again: I0 I1 I2, then T1 I1. */
    const char kinds[] = {'I', 'I', 'I', 'C', 'T', 'I'};
    const int labels[] = {0, 1, 2, 1, 1, 1};
    const int reasons[] = {0, 0, 0, 0, S_CRASH, 0};
    ck_assert_int_eq(s_ev_n(), 6);
    s_ev_expect(0, 6, kinds, labels, reasons);
    ck_assert_uint_eq(s_ev(5).id, b2);

    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 3);
    ck_assert_str_eq(kids[1].id, "b");
    ck_assert_uint_eq(kids[1].actor, b2);
    ck_assert_int_eq(kids[1].restarts, 1);
    ck_assert_int_eq(kids[0].restarts + kids[2].restarts, 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(one_for_all_stops_others_newest_first_and_restarts_all_in_order)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", "kc", 2, TR_PERMANENT)};
    tr_sup_opts_t o = {.strategy = TR_ONE_FOR_ALL};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 3, &sup), 0);
    tr_id_t ids[3] = {s_who(node, "ka"), s_who(node, "kb"),
                      s_who(node, "kc")};

    s_tell_i(node, "kb", "die", S_CRASH);
    for (int i = 0; i < 3; i++)
        s_join(node, ids[i], i == 1 ? S_CRASH : TR_ESHUTDOWN);
    ck_assert(s_ev_wait('I', 2, 2, TS_CALL_MS)); /* c, started last */

    /* b crashed; c then a stopped (newest first); a, b, c started. */
    const char kinds[] = {'C', 'T', 'T', 'T', 'I', 'I', 'I'};
    const int labels[] = {1, 1, 2, 0, 0, 1, 2};
    const int reasons[] = {0, S_CRASH, TR_ESHUTDOWN, TR_ESHUTDOWN, 0, 0, 0};
    ck_assert_int_eq(s_ev_n(), 10);
    s_ev_expect(3, 7, kinds, labels, reasons);

    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 3);
    const char *names[] = {"ka", "kb", "kc"};
    for (int i = 0; i < 3; i++) {
        tr_id_t now = s_who(node, names[i]);
        ck_assert_uint_ne(now, ids[i]);
        ck_assert_uint_eq(kids[i].actor, now);
        ck_assert_uint_eq(s_ev(7 + i).id, now);
        ck_assert_int_eq(kids[i].restarts, 1);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(rest_for_one_restarts_the_crashed_child_and_those_after_it)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", "kc", 2, TR_PERMANENT),
                               s_spec("d", "kd", 3, TR_PERMANENT)};
    tr_sup_opts_t o = {.strategy = TR_REST_FOR_ONE};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 4, &sup), 0);
    const char *names[] = {"ka", "kb", "kc", "kd"};
    tr_id_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = s_who(node, names[i]);

    s_tell_i(node, "kb", "die", S_CRASH);
    s_join(node, ids[1], S_CRASH);
    s_join(node, ids[2], TR_ESHUTDOWN);
    s_join(node, ids[3], TR_ESHUTDOWN);
    ck_assert(s_ev_wait('I', 3, 2, TS_CALL_MS));

    /* b crashed; d then c stopped; b, c, d started; a untouched. */
    const char kinds[] = {'C', 'T', 'T', 'T', 'I', 'I', 'I'};
    const int labels[] = {1, 1, 3, 2, 1, 2, 3};
    const int reasons[] = {0, S_CRASH, TR_ESHUTDOWN, TR_ESHUTDOWN, 0, 0, 0};
    ck_assert_int_eq(s_ev_n(), 11);
    s_ev_expect(4, 7, kinds, labels, reasons);
    ck_assert_int_eq(s_ev_count('T', 0), 0);

    ck_assert_uint_eq(s_who(node, "ka"), ids[0]);
    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 4);
    ck_assert_int_eq(kids[0].restarts, 0);
    ck_assert_uint_eq(kids[0].actor, ids[0]);
    for (int i = 1; i < 4; i++) {
        tr_id_t now = s_who(node, names[i]);
        ck_assert_uint_ne(now, ids[i]);
        ck_assert_uint_eq(kids[i].actor, now);
        ck_assert_int_eq(kids[i].restarts, 1);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(simple_one_for_one_starts_children_from_the_template_with_own_args)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t tmpl = {.behaviour = "kid", .restart = TR_PERMANENT};
    tr_sup_opts_t o = {.strategy = TR_SIMPLE_ONE_FOR_ONE,
                       .max_restarts = 5};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &tmpl, 1, &sup), 0);
    tr_sup_child_t kids[8];
    ck_assert_int_eq(s_which(node, sup, kids, 8), 0); /* none at start */
    ck_assert_int_eq(s_ev_n(), 0);

    tr_id_t ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = 0;
        ck_assert_int_eq(tr_sup_start_child(node, sup, NULL,
                                            s_args2(10 + i, 100 + i),
                                            &ids[i]),
                         0);
        ck_assert_uint_ne(ids[i], 0);
        /* Its init ran (start_child returns after it) with its args. */
        s_ev_t e = s_ev_nth('I', 10 + i, 0);
        ck_assert_uint_eq(e.id, ids[i]);
        ck_assert_int_eq(e.arg, 100 + i);
        int64_t v[2];
        ck_assert_int_eq(ts_ask_id_ints(node, ids[i], ts_msg("who"), 2, v),
                         0);
        ck_assert_int_eq(v[1], 10 + i);
    }
    /* No args: init gets an empty "$args". */
    tr_id_t bare = 0;
    ck_assert_int_eq(tr_sup_start_child(node, sup, NULL, NULL, &bare), 0);
    ck_assert_uint_eq(s_ev_nth('I', -1, 3).id, bare);
    ck_assert_int_eq(s_ev_nth('I', -1, 3).label, -1);

    ck_assert_int_eq(s_which(node, sup, kids, 8), 4);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(kids[i].id, ""); /* dynamic: no spec id */
        ck_assert_uint_eq(kids[i].actor, ids[i]);
        ck_assert_int_eq(kids[i].restarts, 0);
    }

    /* A crashed dynamic permanent child comes back with its own args. */
    s_tell_id_i(node, ids[1], "die", S_CRASH);
    s_join(node, ids[1], S_CRASH);
    ck_assert(s_ev_wait('I', 11, 2, TS_CALL_MS));
    s_ev_t again = s_ev_nth('I', 11, 1);
    ck_assert_int_eq(again.arg, 101);
    ck_assert_uint_ne(again.id, ids[1]);
    ck_assert_int_eq(s_which(node, sup, kids, 8), 4);
    ck_assert_uint_eq(kids[1].actor, again.id);
    ck_assert_int_eq(kids[1].restarts, 1);
    ck_assert_uint_eq(kids[0].actor, ids[0]);
    ck_assert_uint_eq(kids[2].actor, ids[2]);

    /* Terminate by actor id: stopped with TR_ESHUTDOWN and forgotten. */
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, NULL, ids[2]), 0);
    s_join(node, ids[2], TR_ESHUTDOWN);
    ck_assert_int_eq(s_ev_nth('T', 12, 0).reason, TR_ESHUTDOWN);
    ck_assert_int_eq(s_which(node, sup, kids, 8), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_ne(kids[i].actor, ids[2]);
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, NULL, ids[2]),
                     TR_ENOENT);
    /* A dynamic supervisor takes no spec, only args. */
    tr_child_spec_t spec = s_spec("x", NULL, 20, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start_child(node, sup, &spec, NULL, NULL),
                     TR_EINVAL);
    ck_assert_int_eq(s_which(node, sup, kids, 8), 3);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Restart types                                                       */
/* ------------------------------------------------------------------ */

START_TEST(permanent_child_is_restarted_after_a_normal_exit_and_a_crash)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("p", "kp", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.max_restarts = 5};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    tr_id_t p1 = s_who(node, "kp");

    s_tell_i(node, "kp", "quit", 0);
    s_join(node, p1, 0);
    tr_id_t p2 = s_who(node, "kp");
    ck_assert_uint_ne(p2, p1);

    tr_id_t p3 = s_crash_and_wait(node, "kp", p2);
    ck_assert_uint_ne(p3, p1);

    s_tell_i(node, "kp", "quit", TR_ESHUTDOWN);
    s_join(node, p3, TR_ESHUTDOWN);
    tr_id_t p4 = s_who(node, "kp");
    ck_assert_uint_ne(p4, p3);

    tr_sup_child_t c = s_child(node, sup, "p");
    ck_assert_uint_eq(c.actor, p4);
    ck_assert_int_eq(c.restarts, 3);
    ck_assert_int_eq(s_ev_count('I', 0), 4);
    ts_destroy(&node);
}
END_TEST

START_TEST(transient_child_is_restarted_only_after_an_abnormal_end)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("x", "kx", 0, TR_TRANSIENT),
                               s_spec("y", "ky", 1, TR_TRANSIENT),
                               s_spec("z", "kz", 2, TR_TRANSIENT)};
    tr_sup_opts_t o = {.max_restarts = 5};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 3, &sup), 0);
    tr_id_t x = s_who(node, "kx"), y = s_who(node, "ky"),
            z = s_who(node, "kz");

    /* A crash: restarted. */
    tr_id_t x2 = s_crash_and_wait(node, "kx", x);
    ck_assert_int_eq(s_child(node, sup, "x").restarts, 1);

    /* A normal exit: not restarted, forgotten, its name released. */
    s_tell_i(node, "ky", "quit", 0);
    s_join(node, y, 0);
    s_child_forgotten(node, sup, "y", y);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "ky", &id), TR_ENOENT);

    /* A stop reason (TR_ESHUTDOWN) is not abnormal either. */
    s_tell_i(node, "kz", "quit", TR_ESHUTDOWN);
    s_join(node, z, TR_ESHUTDOWN);
    s_child_forgotten(node, sup, "z", z);
    ck_assert_int_eq(tr_whereis(node, "kz", &id), TR_ENOENT);

    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 1);
    ck_assert_str_eq(kids[0].id, "x");
    ck_assert_uint_eq(kids[0].actor, x2);
    ck_assert_int_eq(s_ev_count('I', 1) + s_ev_count('I', 2), 2);
    ts_destroy(&node);
}
END_TEST

START_TEST(temporary_child_is_never_restarted_and_is_forgotten)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("p", "kp", 0, TR_PERMANENT),
                               s_spec("t", "kt", 1, TR_TEMPORARY),
                               s_spec("u", "ku", 2, TR_TEMPORARY)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 3, &sup), 0);
    tr_id_t p = s_who(node, "kp"), t = s_who(node, "kt"),
            u = s_who(node, "ku");

    s_tell_i(node, "kt", "die", S_CRASH); /* a crash */
    s_join(node, t, S_CRASH);
    s_child_forgotten(node, sup, "t", t);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "kt", &id), TR_ENOENT);

    s_tell_i(node, "ku", "quit", 0); /* a normal exit */
    s_join(node, u, 0);
    s_child_forgotten(node, sup, "u", u);
    ck_assert_int_eq(tr_whereis(node, "ku", &id), TR_ENOENT);

    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 1);
    ck_assert_str_eq(kids[0].id, "p");
    ck_assert_uint_eq(kids[0].actor, p);
    ck_assert_int_eq(kids[0].restarts, 0);
    ck_assert_int_eq(s_ev_count('I', 1) + s_ev_count('I', 2), 2);
    /* Neither counted as a restart: the supervisor (1 in 5 s) is up. */
    ck_assert_uint_eq(s_who(node, "kp"), p);
    ck_assert_int_eq(tr_join(node, sup, 0, NULL), TR_ETIMEDOUT);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Intensity                                                           */
/* ------------------------------------------------------------------ */

START_TEST(third_crash_within_the_period_ends_the_supervisor_with_eintensity)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", "kc", 2, TR_PERMANENT)};
    tr_sup_opts_t o = {.name = "sup_i", .max_restarts = 2,
                       .period_ms = 5000};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 3, &sup), 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb"),
            c = s_who(node, "kc");

    /* Two restarts are within the intensity. */
    tr_id_t a2 = s_crash_and_wait(node, "ka", a);
    tr_id_t a3 = s_crash_and_wait(node, "ka", a2);
    ck_assert_int_eq(s_child(node, sup, "a").restarts, 2);
    ck_assert_int_eq(tr_join(node, sup, 0, NULL), TR_ETIMEDOUT);

    /* The third is one too many: the others stop, newest first. */
    int before = s_ev_n();
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    s_join(node, a3, S_CRASH);
    s_join(node, c, TR_ESHUTDOWN);
    s_join(node, b, TR_ESHUTDOWN);
    const char kinds[] = {'C', 'T', 'T', 'T'};
    const int labels[] = {0, 0, 2, 1};
    const int reasons[] = {0, S_CRASH, TR_ESHUTDOWN, TR_ESHUTDOWN};
    s_ev_expect(before, 4, kinds, labels, reasons);
    ck_assert_int_ge(ts_log_count("giving up", "'a'"), 1);

    /* Their names were released before it ended, not left kept: each is
     * free, or already taken by a child of the supervisor that the root
     * starts in its place (see the note at the top). */
    static const char *const names[] = {"ka", "kb", "kc"};
    const tr_id_t old[] = {a3, b, c};
    for (int i = 0; i < 3; i++) {
        tr_id_t id = 0;
        int rc = tr_whereis(node, names[i], &id);
        ck_assert_msg(rc == TR_ENOENT || (rc == 0 && id != old[i]),
                      "'%s': %s", names[i], tr_strerror(rc));
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(restarts_older_than_the_period_do_not_count)
{
    /* The same "die" four times would be quarantined the fourth time
     * (runtime/capsule.c): this test is about intensity. */
    tr_node_t *node = ts_node(&(tr_node_opts_t){.quarantine_after = -1});
    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.max_restarts = 1, .period_ms = 250};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    tr_id_t a = s_who(node, "ka");
    for (int i = 0; i < 2; i++) {
        a = s_crash_and_wait(node, "ka", a);
        /* The child runs on past the period (the wait must time out). */
        ck_assert_int_eq(tr_join(node, a, 300, NULL), TR_ETIMEDOUT);
    }
    ck_assert_int_eq(s_child(node, sup, "a").restarts, 2);
    /* Two within the period are one too many. */
    a = s_crash_and_wait(node, "ka", a);
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, a, S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    ts_destroy(&node);
}
END_TEST

START_TEST(negative_max_restarts_gives_up_at_the_first_crash)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_TRANSIENT)};
    tr_sup_opts_t o = {.max_restarts = -1};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb");

    s_tell_i(node, "kb", "die", S_CRASH);
    s_join(node, b, S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    s_join(node, a, TR_ESHUTDOWN);
    /* b crashed, and a was stopped at once: b was not started again.
     * (Then the root starts the supervisor again: more events.) */
    const char kinds[] = {'C', 'T', 'T'};
    const int labels[] = {1, 1, 0};
    const int reasons[] = {0, S_CRASH, TR_ESHUTDOWN};
    s_ev_expect(2, 3, kinds, labels, reasons);
    ts_destroy(&node);
}
END_TEST

START_TEST(supervisor_that_gives_up_is_restarted_by_its_parent_until_it_too)
{
    tr_node_t *node = ts_node(NULL);
    tr_sup_opts_t po = {.name = "top", .max_restarts = 1, .period_ms = 5000};
    tr_id_t top = 0;
    ck_assert_int_eq(tr_sup_start(node, &po, NULL, 0, &top), 0);

    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_sup_opts_t mo = {.name = "mid", .max_restarts = -1, .parent = top};
    tr_id_t mid = 0;
    ck_assert_int_eq(tr_sup_start(node, &mo, &spec, 1, &mid), 0);
    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, top, kids, 4), 1);
    ck_assert_str_eq(kids[0].id, "mid");
    ck_assert_uint_eq(kids[0].actor, mid);
    ck_assert(!s_has_child(node, tr_node_root(node), "mid"));
    tr_id_t a = s_who(node, "ka");

    /* mid gives up at once; top restarts it, and its child with it. */
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, mid, TR_EINTENSITY);
    tr_sup_child_t m2 = s_child_changed(node, top, "mid", mid);
    ck_assert_int_eq(m2.restarts, 1);
    tr_id_t who = 0;
    ck_assert_int_eq(tr_whereis(node, "mid", &who), 0);
    ck_assert_uint_eq(who, m2.actor);
    tr_id_t a2 = s_who(node, "ka");
    ck_assert_uint_ne(a2, a);
    ck_assert_int_eq(s_child(node, m2.actor, "a").actor, a2);

    /* Again within top's period: top gives up as well. */
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, a2, S_CRASH);
    s_join(node, m2.actor, TR_EINTENSITY);
    s_join(node, top, TR_EINTENSITY);
    ck_assert_int_eq(s_ev_count('I', 0), 2);
    ts_destroy(&node);
}
END_TEST

START_TEST(names_are_released_when_the_tree_gives_up_up_to_the_root)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t root = tr_node_root(node);
    ck_assert_uint_ne(root, 0);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_sup_opts_t o = {.name = "s", .max_restarts = -1};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t a = s_who(node, "ka");

    /* s gives up; the root (1 restart in 5 s) starts it again. */
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    tr_sup_child_t s2 = s_child_changed(node, root, "s", sup);
    tr_id_t a2 = s_who(node, "ka");
    ck_assert_uint_ne(a2, a);

    /* The second time the root gives up too: everything is stopped and
     * every kept name is released, not left restarting. */
    tr_id_t b2 = s_who(node, "kb");
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, s2.actor, TR_EINTENSITY);
    s_join(node, root, TR_EINTENSITY);
    s_join(node, b2, TR_ESHUTDOWN);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "ka", &id), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "kb", &id), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "s", &id), TR_ENOENT);
    tr_msg_t *m = ts_msg("who");
    ck_assert_int_eq(tr_call(node, "ka", &m, TS_CALL_MS, NULL), TR_ENOENT);
    tr_msg_destroy(&m);

    /* The node makes a new root on next use. */
    tr_id_t root2 = tr_node_root(node);
    ck_assert_uint_ne(root2, 0);
    ck_assert_uint_ne(root2, root);
    ck_assert_int_eq(s_count(node, root2), 0);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Children that fail in init                                          */
/* ------------------------------------------------------------------ */

START_TEST(start_fails_with_the_childs_init_code_and_stops_the_siblings)
{
    tr_node_t *node = ts_node(NULL);
    atomic_store(&s_fail_rc[1], TR_ERANGE);
    atomic_store(&s_fail_left[1], -1);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", "kc", 2, TR_PERMANENT)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 3, &sup), TR_ERANGE);
    ck_assert_uint_eq(sup, 0); /* set only on success */

    /* a started, b failed, a was stopped again, c never started. */
    const char kinds[] = {'I', 'F', 'T'};
    const int labels[] = {0, 1, 0};
    const int reasons[] = {0, 0, TR_ESHUTDOWN};
    ck_assert_int_eq(s_ev_n(), 3);
    s_ev_expect(0, 3, kinds, labels, reasons);
    s_join(node, s_ev(0).id, TR_ESHUTDOWN);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "ka", &id), TR_ENOENT);
    ck_assert_int_eq(s_count(node, tr_node_root(node)), 0);

    /* Once b can start, the same specs start. */
    atomic_store(&s_fail_left[1], 0);
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 3, &sup), 0);
    ck_assert_uint_ne(s_who(node, "kc"), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(failed_restart_counts_toward_the_intensity)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.max_restarts = 2, .period_ms = 5000};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    tr_id_t a = s_who(node, "ka");

    /* The first restart fails in init, the second works: two restarts
     * spent, one done. */
    atomic_store(&s_fail_rc[0], TR_ERANGE);
    atomic_store(&s_fail_left[0], 1);
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, a, S_CRASH);
    /* Not by name until the second restart ran: a call made meanwhile
     * may land on the actor that fails in init (and get TR_EDEAD). */
    ck_assert(s_ev_wait('I', 0, 2, TS_CALL_MS));
    tr_id_t a2 = s_who(node, "ka");
    ck_assert_uint_ne(a2, a);
    ck_assert_int_eq(s_ev_count('F', 0), 1);
    ck_assert_int_eq(s_child(node, sup, "a").restarts, 1);
    ck_assert_int_eq(ts_log_count("restart of 'a' failed", NULL), 1);

    /* So the next crash is the third within the period. */
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, a2, S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    ts_destroy(&node);
}
END_TEST

START_TEST(restart_that_keeps_failing_ends_the_supervisor_with_eintensity)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_sup_opts_t o = {.max_restarts = 3, .period_ms = 5000};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb");

    atomic_store(&s_fail_rc[0], TR_ERANGE);
    atomic_store(&s_fail_left[0], 3);
    s_tell_i(node, "ka", "die", S_CRASH);
    s_join(node, a, S_CRASH);
    s_join(node, sup, TR_EINTENSITY);
    s_join(node, b, TR_ESHUTDOWN);
    /* Three restarts allowed, three failed, the fourth refused. */
    ck_assert_int_eq(s_ev_count('F', 0), 3);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Shutdown                                                            */
/* ------------------------------------------------------------------ */

START_TEST(stop_stops_the_children_newest_first_with_eshutdown)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", NULL, 1, TR_TRANSIENT),
                               s_spec("c", "kc", 2, TR_TEMPORARY)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 3, &sup), 0);
    ck_assert_int_eq(s_ev_n(), 3);

    ck_assert_int_eq(tr_stop(node, sup, TS_CALL_MS), 0);
    s_join(node, sup, TR_ESHUTDOWN);
    const char kinds[] = {'T', 'T', 'T'};
    const int labels[] = {2, 1, 0};
    const int reasons[] = {TR_ESHUTDOWN, TR_ESHUTDOWN, TR_ESHUTDOWN};
    s_ev_expect(3, 3, kinds, labels, reasons);
    for (int i = 0; i < 3; i++)
        s_join(node, s_ev(i).id, TR_ESHUTDOWN);
    ts_destroy(&node);
}
END_TEST

START_TEST(child_that_does_not_stop_in_time_is_reported_and_left)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("stuck", NULL, 1, TR_PERMANENT)};
    specs[1].shutdown_ms = 200;
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), 0);
    tr_id_t stuck = s_child(node, sup, "stuck").actor;
    tr_id_t a = s_who(node, "ka");
    s_tell_id_i(node, stuck, "stick", 0);
    ck_assert(ts_flag_wait(&s_stick_entered, TS_CALL_MS));

    /* The supervisor gives up on it after its shutdown_ms, says so, and
     * goes on stopping the others (the deadline is a backstop). */
    ck_assert_int_eq(tr_stop(node, sup, 10000), 0);
    s_join(node, a, TR_ESHUTDOWN);
    ck_assert_int_eq(ts_log_count("did not stop", "'stuck'"), 1);
    ck_assert_int_eq(tr_join(node, stuck, 0, NULL), TR_ETIMEDOUT);
    ck_assert_int_eq(s_ev_count('T', 1), 0);

    /* Released, it ends as asked. */
    ts_flag_set(&s_stick_go);
    s_join(node, stuck, TR_ESHUTDOWN);
    ck_assert_int_eq(s_ev_nth('T', 1, 0).reason, TR_ESHUTDOWN);
    ts_destroy(&node);
}
END_TEST

START_TEST(child_waiting_in_a_call_is_stopped_without_the_answer)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "ts_gate", "gate");
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("g", "kg", 1, TR_PERMANENT)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), 0);
    tr_id_t g = s_who(node, "kg");
    ts_gate_block(node, "kg");

    /* Its wait is cut short by the stop: no report, TR_ESHUTDOWN. */
    ck_assert_int_eq(tr_stop(node, sup, TS_CALL_MS), 0);
    s_join(node, g, TR_ESHUTDOWN);
    ck_assert_int_eq(ts_log_count("did not stop", NULL), 0);
    ck_assert_int_eq(s_ev_nth('T', 1, 0).reason, TR_ESHUTDOWN);
    ts_gate_open(node);
    ts_destroy(&node);
}
END_TEST

START_TEST(terminate_child_stops_and_forgets_it_and_releases_its_name)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb");

    ck_assert_int_eq(tr_sup_terminate_child(node, sup, "b", 0), 0);
    s_join(node, b, TR_ESHUTDOWN);
    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 1);
    ck_assert_str_eq(kids[0].id, "a");
    ck_assert_uint_eq(kids[0].actor, a);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "kb", &id), TR_ENOENT);
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, "b", 0), TR_ENOENT);
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, "zz", 0), TR_ENOENT);
    /* Not a restart: the supervisor runs, and b may be added again. */
    ck_assert_int_eq(tr_join(node, sup, 0, NULL), TR_ETIMEDOUT);
    tr_id_t b2 = 0;
    ck_assert_int_eq(tr_sup_start_child(node, sup, &specs[1], NULL, &b2), 0);
    ck_assert_uint_eq(s_who(node, "kb"), b2);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Backoff                                                             */
/* ------------------------------------------------------------------ */

START_TEST(restart_waits_backoff_min_and_longer_after_each_crash_in_a_row)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("b", "kb", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.max_restarts = 10, .period_ms = 5000,
                       .backoff_min_ms = 50, .backoff_max_ms = 200};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    tr_id_t id = s_who(node, "kb");

    /* Lower bounds only: crash to next init, on the monotonic clock. */
    static const int64_t at_least_ms[] = {50, 100, 200};
    for (int i = 0; i < 3; i++) {
        id = s_crash_and_wait(node, "kb", id);
        int64_t gap_us = s_ev_nth('I', 0, i + 1).us - s_ev_nth('C', 0, i).us;
        ck_assert_msg(gap_us >= at_least_ms[i] * 1000,
                      "restart %d after %lld us, expected >= %lld ms", i + 1,
                      (long long)gap_us, (long long)at_least_ms[i]);
    }
    ck_assert_int_eq(s_child(node, sup, "b").restarts, 3);
    ts_destroy(&node);
}
END_TEST

START_TEST(name_is_kept_during_the_backoff_and_a_call_waits_for_the_new_child)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("w", "kw", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.backoff_min_ms = 500, .backoff_max_ms = 1000};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    tr_id_t w = s_who(node, "kw");

    s_tell_i(node, "kw", "die", S_CRASH);
    s_join(node, w, S_CRASH);
    /* Within the 500 ms: kept, restarting, no actor. */
    tr_id_t id = 12345;
    ck_assert_int_eq(tr_whereis(node, "kw", &id), TR_ERESTARTING);
    ck_assert_uint_eq(id, 12345);
    tr_msg_t *m = ts_msg("who");
    ck_assert_int_eq(tr_try_tell(node, "kw", &m), TR_ERESTARTING);
    ck_assert_ptr_nonnull(m); /* not sent: still ours */
    tr_msg_destroy(&m);
    bool found = false;
    tr_sup_child_t c = s_child_settled(node, sup, "w", w, &found);
    ck_assert(found);
    ck_assert_uint_eq(c.actor, 0);
    ck_assert_int_eq(c.restarts, 0);

    /* A call by name waits and the new child answers it. */
    tr_id_t w2 = s_who(node, "kw");
    ck_assert_uint_ne(w2, w);
    ck_assert_int_ge(s_ev_nth('I', 0, 1).us - s_ev_nth('C', 0, 0).us,
                     500 * 1000);
    ck_assert_int_eq(tr_whereis(node, "kw", &id), 0);
    ck_assert_uint_eq(id, w2);
    ck_assert_int_eq(s_child(node, sup, "w").restarts, 1);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The API's codes                                                     */
/* ------------------------------------------------------------------ */

START_TEST(duplicate_child_id_or_name_is_eexist)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("a", "kb", 1, TR_PERMANENT)};
    tr_id_t sup = 0;
    /* In one start: nothing is left running. */
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), TR_EEXIST);
    ck_assert_int_eq(s_ev_count('I', 1), 0);
    s_join(node, s_ev_nth('I', 0, 0).id, TR_ESHUTDOWN);
    ck_assert_int_eq(s_count(node, tr_node_root(node)), 0);

    tr_sup_opts_t o = {.name = "s"};
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 1, &sup), 0);
    tr_id_t a = s_who(node, "ka");
    tr_id_t id = 0;
    ck_assert_int_eq(tr_sup_start_child(node, sup, &specs[1], NULL, &id),
                     TR_EEXIST); /* id "a" again */
    tr_child_spec_t same_name = s_spec("b", "ka", 2, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start_child(node, sup, &same_name, NULL, &id),
                     TR_EEXIST); /* name "ka" is a's */
    ck_assert_uint_eq(id, 0);
    ck_assert_int_eq(s_ev_count('I', 2), 0);
    ck_assert_uint_eq(s_who(node, "ka"), a);
    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, sup, kids, 4), 1);

    /* A second supervisor under the same name (its id in the root). */
    tr_child_spec_t other = s_spec("x", "kx", 3, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start(node, &o, &other, 1, &id), TR_EEXIST);
    ck_assert_int_eq(s_ev_count('I', 3), 0);
    ck_assert_int_eq(s_which(node, tr_node_root(node), kids, 4), 1);
    ts_destroy(&node);
}
END_TEST

START_TEST(invalid_specs_and_options_are_refused_with_exact_codes)
{
    tr_node_t *node = ts_node(NULL);
    char long_id[TR_NAME_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    static const struct {
        const char *what;
        tr_child_spec_t spec;
        int rc;
    } bad[] = {
        {"no behaviour", {.id = "a"}, TR_EINVAL},
        {"no id", {.behaviour = "kid"}, TR_EINVAL},
        {"empty id", {.id = "", .behaviour = "kid"}, TR_EINVAL},
        {"restart 3", {.id = "a", .behaviour = "kid", .restart = 3},
         TR_EINVAL},
        {"restart -1", {.id = "a", .behaviour = "kid", .restart = -1},
         TR_EINVAL},
        {"shutdown -2", {.id = "a", .behaviour = "kid", .shutdown_ms = -2},
         TR_EINVAL},
        {"unknown behaviour", {.id = "a", .behaviour = "no_such_beh"},
         TR_ENOENT},
    };
    tr_id_t id = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(tr_sup_start(node, NULL, &bad[i].spec, 1, &id) ==
                          bad[i].rc,
                      "tr_sup_start: %s", bad[i].what);
    }
    tr_child_spec_t longs[] = {{.id = long_id, .behaviour = "kid"},
                               {.id = "a", .behaviour = "kid",
                                .spawn = {.name = long_id}}};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(tr_sup_start(node, NULL, &longs[i], 1, &id),
                         TR_ENAMETOOLONG);

    /* Options. */
    tr_child_spec_t ok = s_spec("a", NULL, 0, TR_PERMANENT);
    static const tr_sup_opts_t bad_opts[] = {
        {.strategy = 4},        {.strategy = -1},
        {.period_ms = -1},      {.backoff_min_ms = -1},
        {.backoff_max_ms = -1}, {.backoff_jitter = -1},
        {.backoff_jitter = 101},
    };
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++)
        ck_assert_msg(tr_sup_start(node, &bad_opts[i], &ok, 1, &id) ==
                          TR_EINVAL,
                      "bad option %zu", i);
    tr_sup_opts_t simple = {.strategy = TR_SIMPLE_ONE_FOR_ONE};
    tr_child_spec_t two[] = {ok, ok};
    ck_assert_int_eq(tr_sup_start(node, &simple, NULL, 0, &id), TR_EINVAL);
    ck_assert_int_eq(tr_sup_start(node, &simple, two, 2, &id), TR_EINVAL);
    ck_assert_int_eq(tr_sup_start(NULL, NULL, &ok, 1, &id), TR_EINVAL);
    ck_assert_int_eq(tr_sup_start(node, NULL, &ok, -1, &id), TR_EINVAL);
    ck_assert_int_eq(tr_sup_start(node, NULL, NULL, 1, &id), TR_EINVAL);
    tr_sup_opts_t dead_parent = {.parent = 0xdead};
    ck_assert_int_eq(tr_sup_start(node, &dead_parent, &ok, 1, &id),
                     TR_ENOENT);
    ck_assert_uint_eq(id, 0);
    ck_assert_int_eq(s_ev_n(), 0); /* no child ever started */

    /* The same checks on tr_sup_start_child. */
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, NULL, 0, &sup), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(tr_sup_start_child(node, sup, &bad[i].spec, NULL,
                                         &id) == bad[i].rc,
                      "tr_sup_start_child: %s", bad[i].what);
    ck_assert_int_eq(tr_sup_start_child(node, sup, &longs[0], NULL, &id),
                     TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_sup_start_child(node, sup, NULL, NULL, &id),
                     TR_EINVAL); /* a template needs SIMPLE_ONE_FOR_ONE */
    ck_assert_int_eq(tr_sup_start_child(node, 0, &ok, NULL, &id), TR_EINVAL);
    ck_assert_int_eq(tr_sup_start_child(NULL, sup, &ok, NULL, &id),
                     TR_EINVAL);
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, NULL, 0), TR_EINVAL);
    ck_assert_int_eq(tr_sup_terminate_child(node, 0, "a", 0), TR_EINVAL);
    tr_sup_child_t kids[2];
    ck_assert_int_eq(tr_sup_which_children(node, 0, kids, 2), TR_EINVAL);
    ck_assert_int_eq(tr_sup_which_children(node, sup, kids, -1), TR_EINVAL);
    ck_assert_int_eq(tr_sup_which_children(node, sup, NULL, 2), TR_EINVAL);
    ck_assert_int_eq(tr_sup_which_children(NULL, sup, kids, 2), TR_EINVAL);
    ck_assert_uint_eq(id, 0);
    ck_assert_int_eq(s_which(node, sup, kids, 2), 0);
    ck_assert_int_eq(s_ev_n(), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(which_children_gives_ids_actors_and_restart_counts_in_start_order)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT),
                               s_spec("c", NULL, 2, TR_TRANSIENT)};
    tr_sup_opts_t o = {.max_restarts = 5};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 3, &sup), 0);
    tr_id_t b = s_who(node, "kb");
    b = s_crash_and_wait(node, "kb", b);
    b = s_crash_and_wait(node, "kb", b);
    tr_child_spec_t d = s_spec("d", "kd", 3, TR_TEMPORARY);
    tr_id_t did = 0;
    ck_assert_int_eq(tr_sup_start_child(node, sup, &d, NULL, &did), 0);

    tr_sup_child_t kids[8];
    memset(kids, 0xff, sizeof kids);
    ck_assert_int_eq(s_which(node, sup, kids, 8), 4);
    static const char *const ids[] = {"a", "b", "c", "d"};
    const tr_id_t actors[] = {s_who(node, "ka"), b,
                              s_ev_nth('I', 2, 0).id, did};
    const int restarts[] = {0, 2, 0, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(kids[i].id, ids[i]);
        ck_assert_uint_eq(kids[i].actor, actors[i]);
        ck_assert_int_eq(kids[i].restarts, restarts[i]);
    }
    ck_assert_uint_eq(kids[4].actor, (tr_id_t)-1); /* untouched */
    /* Fewer slots: the first ones; none: how many fit (0). */
    memset(kids, 0, sizeof kids);
    ck_assert_int_eq(s_which(node, sup, kids, 2), 2);
    ck_assert_str_eq(kids[1].id, "b");
    ck_assert_str_eq(kids[2].id, "");
    ck_assert_int_eq(s_which(node, sup, NULL, 0), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(supervisor_calls_to_an_unknown_or_plain_actor_fail)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t plain = ts_spawn(node, "plain", NULL);
    tr_sup_child_t kids[2];
    ck_assert_int_eq(tr_sup_which_children(node, plain, kids, 2),
                     TR_EUNHANDLED);
    tr_child_spec_t ok = s_spec("a", NULL, 0, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start_child(node, plain, &ok, NULL, NULL),
                     TR_EUNHANDLED);
    ck_assert_int_eq(tr_sup_terminate_child(node, plain, "a", 0),
                     TR_EUNHANDLED);
    ck_assert_int_eq(tr_stop(node, plain, TS_CALL_MS), 0);
    ck_assert_int_eq(tr_sup_which_children(node, plain, kids, 2), TR_ENOENT);
    ck_assert_int_eq(tr_sup_which_children(node, 0xdead, kids, 2),
                     TR_ENOENT);
    ck_assert_int_eq(tr_sup_start_child(node, 0xdead, &ok, NULL, NULL),
                     TR_ENOENT);
    ck_assert_int_eq(s_ev_n(), 0);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The root, node destroy, kill                                        */
/* ------------------------------------------------------------------ */

START_TEST(root_supervisor_is_stable_and_lists_the_top_supervisors)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t root = tr_node_root(node);
    ck_assert_uint_ne(root, 0);
    ck_assert_uint_eq(tr_node_root(node), root);
    ck_assert_uint_eq(tr_node_root(NULL), 0);
    ck_assert_int_eq(s_count(node, root), 0);
    ck_assert_int_eq(tr_join(node, root, 0, NULL), TR_ETIMEDOUT);

    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_sup_opts_t named = {.name = "alpha"};
    tr_id_t s1 = 0, s2 = 0, s3 = 0;
    ck_assert_int_eq(tr_sup_start(node, &named, &spec, 1, &s1), 0);
    ck_assert_int_eq(tr_sup_start(node, NULL, NULL, 0, &s2), 0);
    tr_sup_opts_t under = {.parent = s2};
    ck_assert_int_eq(tr_sup_start(node, &under, NULL, 0, &s3), 0);
    ck_assert_uint_eq(tr_node_root(node), root);

    tr_sup_child_t kids[4];
    ck_assert_int_eq(s_which(node, root, kids, 4), 2);
    ck_assert_str_eq(kids[0].id, "alpha");
    ck_assert_uint_eq(kids[0].actor, s1);
    ck_assert_int_eq(kids[1].id[0], '#'); /* made by the root: "#<id>" */
    ck_assert_uint_eq(kids[1].actor, s2);
    ck_assert_int_eq(kids[0].restarts + kids[1].restarts, 0);
    ck_assert_int_eq(s_which(node, s2, kids, 4), 1);
    ck_assert_uint_eq(kids[0].actor, s3);
    /* A named supervisor is registered under its name. */
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "alpha", &id), 0);
    ck_assert_uint_eq(id, s1);
    ts_destroy(&node);
}
END_TEST

START_TEST(node_destroy_stops_the_whole_tree_with_eshutdown)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t s1_kids[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                                 s_spec("b", NULL, 1, TR_TRANSIENT)};
    tr_child_spec_t s2_kids[] = {s_spec("c", "kc", 2, TR_PERMANENT),
                                 s_spec("d", "kd", 3, TR_TEMPORARY)};
    tr_id_t s1 = 0, s2 = 0, s3 = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, s1_kids, 2, &s1), 0);
    ck_assert_int_eq(tr_sup_start(node, NULL, s2_kids, 2, &s2), 0);
    tr_sup_opts_t under = {.parent = s1};
    tr_child_spec_t s3_kid = s_spec("e", "ke", 4, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start(node, &under, &s3_kid, 1, &s3), 0);
    tr_child_spec_t late = s_spec("f", NULL, 5, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start_child(node, s2, &late, NULL, NULL), 0);
    ck_assert_int_eq(s_ev_n(), 6);

    ts_destroy(&node);
    /* Newest first at every level: s2 (f, d, c), then s1 (s3 (e), b,
     * a); each with TR_ESHUTDOWN. */
    const char kinds[] = {'T', 'T', 'T', 'T', 'T', 'T'};
    const int labels[] = {5, 3, 2, 4, 1, 0};
    const int reasons[] = {TR_ESHUTDOWN, TR_ESHUTDOWN, TR_ESHUTDOWN,
                           TR_ESHUTDOWN, TR_ESHUTDOWN, TR_ESHUTDOWN};
    ck_assert_int_eq(s_ev_n(), 12);
    s_ev_expect(6, 6, kinds, labels, reasons);
}
END_TEST

START_TEST(terminate_child_of_the_root_stops_a_supervisor_for_good)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_sup_opts_t o = {.name = "s"};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t root = tr_node_root(node);
    ck_assert_int_eq(tr_sup_terminate_child(node, root, "s", 0), 0);
    s_join(node, sup, TR_ESHUTDOWN);
    const char kinds[] = {'T', 'T'};
    const int labels[] = {1, 0};
    const int reasons[] = {TR_ESHUTDOWN, TR_ESHUTDOWN};
    s_ev_expect(2, 2, kinds, labels, reasons);
    ck_assert_int_eq(s_count(node, root), 0);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "s", &id), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "ka", &id), TR_ENOENT);
    ck_assert_int_eq(s_ev_n(), 4); /* nothing started again */
    ts_destroy(&node);
}
END_TEST

START_TEST(kill_of_a_thread_actor_is_enotsup_and_of_an_unknown_id_enoent)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, &spec, 1, &sup), 0);
    tr_id_t a = s_who(node, "ka");
    ck_assert_int_eq(tr_kill(node, a), TR_ENOTSUP);
    ck_assert_int_eq(tr_kill(node, sup), TR_ENOTSUP);
    ck_assert_int_eq(tr_kill(node, 0xdead), TR_ENOENT);
    ck_assert_int_eq(tr_kill(node, 0), TR_EINVAL);
    /* Nothing happened to them. */
    ck_assert_uint_eq(s_who(node, "ka"), a);
    ck_assert_int_eq(s_ev_count('T', -1), 0);
    tr_id_t plain = ts_spawn(node, "plain", NULL);
    ck_assert_int_eq(tr_stop(node, plain, TS_CALL_MS), 0);
    ck_assert_int_eq(tr_kill(node, plain), TR_ENOENT); /* ended */
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Regressions                                                         */
/* ------------------------------------------------------------------ */

/* Each of these once failed against the runtime (the comment above each
 * says what was wrong); they stay to keep it fixed. */

/* Was: ONE_FOR_ALL (and REST_FOR_ONE) treat an "$exit" from a child they
 * already stopped and replaced as an exit signal from their parent, and
 * end with its reason. Two children crash while the supervisor is busy
 * (here: in a start_child whose init waits); both "$exit"s are queued
 * together; the first restarts everyone (the second child is stopped:
 * already dead, and restarted as a new actor); the second "$exit", now
 * from an unknown id, reaches "Not a child: the parent (or another link)
 * ended" in s_handle (runtime/supervisor.c) and the supervisor exits with
 * S_CRASH instead of going on (OTP ignores an EXIT from an unknown pid
 * that is not its parent). */
static tr_node_t *s_busy_node;
static tr_id_t s_busy_sup;
static tr_child_spec_t s_busy_spec;
static int s_busy_rc = 1;

static void *
s_start_child_thread(void *arg)
{
    (void)arg;
    s_busy_rc = tr_sup_start_child(s_busy_node, s_busy_sup, &s_busy_spec,
                                   NULL, NULL);
    return NULL;
}

START_TEST(one_for_all_goes_on_after_two_children_crash_together)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_sup_opts_t o = {.strategy = TR_ONE_FOR_ALL, .max_restarts = 10};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t a = s_who(node, "ka"), b = s_who(node, "kb");

    /* Keep the supervisor busy in a handler. */
    atomic_store(&s_hold_label, 9);
    s_busy_node = node;
    s_busy_sup = sup;
    s_busy_spec = s_spec("slow", NULL, 9, TR_PERMANENT);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, s_start_child_thread, NULL),
                     0);
    ck_assert(ts_flag_wait(&s_hold_entered, TS_CALL_MS));
    s_tell_i(node, "ka", "die", S_CRASH);
    s_tell_i(node, "kb", "die", S_CRASH);
    s_join(node, a, S_CRASH);
    s_join(node, b, S_CRASH);
    ts_flag_set(&s_hold_go);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(s_busy_rc, 0);
    /* Both "$exit"s were read together (queued while it was busy) and
     * are handled before its next request: once the first one restarted
     * everyone, the second one comes next. */
    ck_assert(s_ev_wait('I', 0, 2, TS_CALL_MS));

    /* Both crashes are within the intensity: it must go on. */
    tr_sup_child_t kids[4];
    ck_assert_int_eq(tr_sup_which_children(node, sup, kids, 4), 3);
    ck_assert_int_eq(tr_join(node, sup, 0, NULL), TR_ETIMEDOUT);
    ck_assert_uint_ne(s_who(node, "ka"), a);
    ck_assert_uint_ne(s_who(node, "kb"), b);
    ts_destroy(&node);
}
END_TEST

/* Was: a TEMPORARY child stopped because a sibling crashed under
 * ONE_FOR_ALL is restarted with the others (s_start_down restarts every
 * child that is down, whatever its type). troupe.h: "TEMPORARY never";
 * OTP: a temporary child is not restarted even when a sibling's death
 * under one_for_all/rest_for_one terminated it. */
START_TEST(one_for_all_does_not_restart_a_temporary_sibling)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("p", "kp", 0, TR_PERMANENT),
                               s_spec("t", "kt", 1, TR_TEMPORARY)};
    tr_sup_opts_t o = {.strategy = TR_ONE_FOR_ALL};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t p = s_who(node, "kp"), t = s_who(node, "kt");
    s_crash_and_wait(node, "kp", p);
    s_join(node, t, TR_ESHUTDOWN);
    ck_assert_int_eq(s_ev_count('I', 1), 1); /* t not started again */
    ck_assert(!s_has_child(node, sup, "t"));
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "kt", &id), TR_ENOENT);
    ts_destroy(&node);
}
END_TEST

/* Was: a child that fails in init leaves its name kept (reserved) for
 * good. The supervisor spawns children with keep_name, and a spawn with
 * keep_name whose init fails leaves the name to the failed record
 * (tr__reg_remove keeps it); the supervisor releases only the names of
 * children it added. So after tr_sup_start or tr_sup_start_child failed
 * on that child, tr_whereis gives TR_ERESTARTING, senders by name wait
 * their whole timeout, and a plain spawn under the name gets TR_EEXIST. */
START_TEST(failed_start_leaves_no_name_kept)
{
    tr_node_t *node = ts_node(NULL);
    atomic_store(&s_fail_rc[1], TR_ERANGE);
    atomic_store(&s_fail_left[1], -1);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("b", "kb", 1, TR_PERMANENT)};
    tr_id_t sup = 0, id = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), TR_ERANGE);
    ck_assert_int_eq(tr_whereis(node, "ka", &id), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "kb", &id), TR_ENOENT);

    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 1, &sup), 0);
    tr_child_spec_t c = s_spec("c", "kc", 1, TR_PERMANENT);
    ck_assert_int_eq(tr_sup_start_child(node, sup, &c, NULL, NULL),
                     TR_ERANGE);
    ck_assert_int_eq(tr_whereis(node, "kc", &id), TR_ENOENT);
    tr_spawn_opts_t plain = {.name = "kc"};
    ck_assert_int_eq(tr_spawn(node, "plain", &plain, &id), 0);
    ts_destroy(&node);
}
END_TEST

/* Doubtful: troupe.h says "A supervisor is an actor: tr_stop stops it and
 * its tree", but a supervisor is a PERMANENT child of its parent (the
 * root by default), which restarts it, and its children with it, at
 * once. (tr_sup_terminate_child on the parent does stop it for good.)
 * Either tr_stop of a supervisor should not count as a crash for its
 * parent, or troupe.h should say to use tr_sup_terminate_child. */
START_TEST(supervisor_stopped_with_tr_stop_stays_stopped)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = s_spec("a", "ka", 0, TR_PERMANENT);
    tr_sup_opts_t o = {.name = "s"};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, &spec, 1, &sup), 0);
    ck_assert_int_eq(tr_stop(node, sup, TS_CALL_MS), 0);
    bool found = false;
    tr_sup_child_t c = s_child_settled(node, tr_node_root(node), "s", sup,
                                       &found);
    ck_assert_msg(!found || c.actor == 0, "the root restarted it as %llx",
                  (unsigned long long)c.actor);
    ck_assert_int_eq(s_ev_count('I', 0), 1);
    ts_destroy(&node);
}
END_TEST

/* Was: an unnamed supervisor's id in its parent is "sup<n>" from a
 * process-wide counter, so it can clash with a supervisor the user named
 * "sup1": tr_sup_start(NULL opts) then fails with TR_EEXIST although the
 * caller chose no name at all. */
START_TEST(unnamed_supervisor_does_not_clash_with_a_named_one)
{
    tr_node_t *node = ts_node(NULL);
    tr_sup_opts_t named = {.name = "sup1"};
    tr_id_t s1 = 0, s2 = 0;
    ck_assert_int_eq(tr_sup_start(node, &named, NULL, 0, &s1), 0);
    ck_assert_int_eq(tr_sup_start(node, NULL, NULL, 0, &s2), 0);
    ck_assert_uint_ne(s2, 0);
    ts_destroy(&node);
}
END_TEST

/* Was: backoff is per supervisor, not per child. While one child's
 * restart timer is pending (s->pending), a second child that crashes sets
 * no timer of its own and is restarted when the first one's fires: here
 * about 100 ms after its crash instead of at least backoff_min_ms (300).
 * (The other way round, a child can wait up to another child's longer
 * backoff.) The 100 ms gap is made by asking the supervisor until it has
 * passed: it only separates the two crashes, nothing waits on it. */
START_TEST(each_child_waits_its_own_backoff)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("x", "kx", 0, TR_PERMANENT),
                               s_spec("y", "ky", 1, TR_PERMANENT)};
    tr_sup_opts_t o = {.max_restarts = 10, .backoff_min_ms = 300,
                       .backoff_max_ms = 300};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 2, &sup), 0);
    tr_id_t x = s_who(node, "kx"), y = s_who(node, "ky");
    s_tell_i(node, "kx", "die", S_CRASH);
    s_join(node, x, S_CRASH);
    int64_t crashed = ts_now_ms();
    bool found = false;
    ck_assert_uint_eq(s_child_settled(node, sup, "x", x, &found).actor, 0);
    while (ts_now_ms() - crashed < 100)
        TS_CHECK(s_child(node, sup, "x").actor == 0);
    s_crash_and_wait(node, "ky", y);
    int64_t gap_us = s_ev_nth('I', 1, 1).us - s_ev_nth('C', 1, 0).us;
    ck_assert_msg(gap_us >= 300 * 1000, "y restarted %lld us after its crash",
                  (long long)gap_us);
    ts_destroy(&node);
}
END_TEST

/* Was: a named child that does not stop within its shutdown_ms when
 * tr_sup_terminate_child (or the supervisor's own end) stops it is left
 * running and forgotten (s_stop, s_remove); s_remove's tr_name_release
 * fails then (TR_EEXIST: an actor holds the name) and is not retried.
 * When that child does end, its name (spawned with keep_name) stays kept
 * for good: tr_whereis gives TR_ERESTARTING, senders by name wait their
 * whole timeout, a plain spawn under the name gets TR_EEXIST. */
START_TEST(name_of_a_child_left_running_is_released_when_it_ends)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("a", "ka", 0, TR_PERMANENT),
                               s_spec("st", "kst", 1, TR_PERMANENT)};
    specs[1].shutdown_ms = 100;
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, NULL, specs, 2, &sup), 0);
    tr_id_t st = s_who(node, "kst");
    s_tell_i(node, "kst", "stick", 0);
    ck_assert(ts_flag_wait(&s_stick_entered, TS_CALL_MS));
    ck_assert_int_eq(tr_sup_terminate_child(node, sup, "st", 0), 0);
    ts_flag_set(&s_stick_go);
    s_join(node, st, TR_ESHUTDOWN);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "kst", &id), TR_ENOENT);
    ts_destroy(&node);
}
END_TEST

/* Was: when one child of a restart is dropped instead of started, the
 * children after it are left down for good. s_start_down stops at the
 * first start that fails and hands over to s_on_child_end, counting on
 * it to call s_start_down again; but for a child it drops (TRANSIENT
 * whose start failed with a "normal" code, here init returning
 * TR_ESHUTDOWN; or TEMPORARY) s_on_child_end only removes it and
 * returns. Here ONE_FOR_ALL restarts p, drops t, and never starts q
 * again: its entry stays at actor 0, with no timer, and calls to "kq"
 * wait for nothing. */
START_TEST(restart_goes_on_after_a_child_it_drops)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t specs[] = {s_spec("p", "kp", 0, TR_PERMANENT),
                               s_spec("t", "kt", 1, TR_TRANSIENT),
                               s_spec("q", "kq", 2, TR_PERMANENT)};
    tr_sup_opts_t o = {.strategy = TR_ONE_FOR_ALL, .max_restarts = 5};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, specs, 3, &sup), 0);
    tr_id_t p = s_who(node, "kp"), q = s_who(node, "kq");
    atomic_store(&s_fail_rc[1], TR_ESHUTDOWN);
    atomic_store(&s_fail_left[1], 1);
    s_crash_and_wait(node, "kp", p);
    s_join(node, q, TR_ESHUTDOWN);
    ck_assert(s_ev_wait('F', 1, 1, TS_CALL_MS));
    int64_t v[2] = {0, 0};
    tr_msg_t *m = ts_msg("who");
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(tr_call(node, "kq", &m, 2000, &reply), 0);
    ts_ints(reply, 2, v);
    tr_msg_destroy(&reply);
    ck_assert_uint_ne((tr_id_t)v[0], q);
    ts_destroy(&node);
}
END_TEST

/* Was: tr_sup_start does not check opts->name: one longer than
 * TR_NAME_MAX is cut to make the supervisor's child id, and the parent
 * then fails to decode the spec (tr_read_str_copy): TR_ERANGE instead of
 * TR_ENAMETOOLONG, as every other too-long name gives. */
START_TEST(too_long_supervisor_name_is_enametoolong)
{
    tr_node_t *node = ts_node(NULL);
    char long_id[TR_NAME_MAX + 2];
    memset(long_id, 'n', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    tr_sup_opts_t o = {.name = long_id};
    tr_id_t id = 0;
    ck_assert_int_eq(tr_sup_start(node, &o, NULL, 0, &id), TR_ENAMETOOLONG);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *
s_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *
s_suite(void)
{
    Suite *s = suite_create("supervisor");
    TCase *tc = s_tcase(s, "strategies");
    tcase_add_test(tc,
                   one_for_one_restarts_only_the_crashed_child_under_its_name);
    tcase_add_test(
        tc, one_for_all_stops_others_newest_first_and_restarts_all_in_order);
    tcase_add_test(tc,
                   rest_for_one_restarts_the_crashed_child_and_those_after_it);
    tcase_add_test(
        tc, simple_one_for_one_starts_children_from_the_template_with_own_args);

    tc = s_tcase(s, "restart_types");
    tcase_add_test(
        tc, permanent_child_is_restarted_after_a_normal_exit_and_a_crash);
    tcase_add_test(tc, transient_child_is_restarted_only_after_an_abnormal_end);
    tcase_add_test(tc, temporary_child_is_never_restarted_and_is_forgotten);

    tc = s_tcase(s, "intensity");
    tcase_add_test(
        tc, third_crash_within_the_period_ends_the_supervisor_with_eintensity);
    tcase_add_test(tc, restarts_older_than_the_period_do_not_count);
    tcase_add_test(tc, negative_max_restarts_gives_up_at_the_first_crash);
    tcase_add_test(
        tc, supervisor_that_gives_up_is_restarted_by_its_parent_until_it_too);
    tcase_add_test(tc,
                   names_are_released_when_the_tree_gives_up_up_to_the_root);

    tc = s_tcase(s, "init_failure");
    tcase_add_test(
        tc, start_fails_with_the_childs_init_code_and_stops_the_siblings);
    tcase_add_test(tc, failed_restart_counts_toward_the_intensity);
    tcase_add_test(
        tc, restart_that_keeps_failing_ends_the_supervisor_with_eintensity);

    tc = s_tcase(s, "shutdown");
    tcase_add_test(tc, stop_stops_the_children_newest_first_with_eshutdown);
    tcase_add_test(tc, child_that_does_not_stop_in_time_is_reported_and_left);
    tcase_add_test(tc, child_waiting_in_a_call_is_stopped_without_the_answer);
    tcase_add_test(tc,
                   terminate_child_stops_and_forgets_it_and_releases_its_name);

    tc = s_tcase(s, "backoff");
    tcase_add_test(
        tc, restart_waits_backoff_min_and_longer_after_each_crash_in_a_row);
    tcase_add_test(
        tc, name_is_kept_during_the_backoff_and_a_call_waits_for_the_new_child);

    tc = s_tcase(s, "api");
    tcase_add_test(tc, duplicate_child_id_or_name_is_eexist);
    tcase_add_test(tc, invalid_specs_and_options_are_refused_with_exact_codes);
    tcase_add_test(
        tc, which_children_gives_ids_actors_and_restart_counts_in_start_order);
    tcase_add_test(tc, supervisor_calls_to_an_unknown_or_plain_actor_fail);

    tc = s_tcase(s, "root");
    tcase_add_test(tc, root_supervisor_is_stable_and_lists_the_top_supervisors);
    tcase_add_test(tc, node_destroy_stops_the_whole_tree_with_eshutdown);
    tcase_add_test(tc, terminate_child_of_the_root_stops_a_supervisor_for_good);
    tcase_add_test(
        tc, kill_of_a_thread_actor_is_enotsup_and_of_an_unknown_id_enoent);

    /* Each of these fails against the runtime today (see above). */
    tc = s_tcase(s, "regressions");
    tcase_add_test(tc, one_for_all_goes_on_after_two_children_crash_together);
    tcase_add_test(tc, one_for_all_does_not_restart_a_temporary_sibling);
    tcase_add_test(tc, failed_start_leaves_no_name_kept);
    tcase_add_test(tc, supervisor_stopped_with_tr_stop_stays_stopped);
    tcase_add_test(tc, unnamed_supervisor_does_not_clash_with_a_named_one);
    tcase_add_test(tc, each_child_waits_its_own_backoff);
    tcase_add_test(tc, too_long_supervisor_name_is_enametoolong);
    tcase_add_test(tc, name_of_a_child_left_running_is_released_when_it_ends);
    tcase_add_test(tc, restart_goes_on_after_a_child_it_drops);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
