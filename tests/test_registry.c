/* tests/test_registry.c - who is addressable in a node: names and ids of
 * actors (tr_whereis, tr_spawn's name rules, ids never reused), the
 * process-wide behaviour table, and the hash maps underneath
 * (runtime/map.h), checked against a plain reference model under many
 * random inserts and deletes and on hand-made clusters that make deletion
 * shift entries backward across the end of the table.
 *
 * Check forks per test: every node is created inside the test. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/map.h"
#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Ask id "who"; the reply is [self id, name or nil]. */
static void
s_who(tr_node_t *node, tr_id_t id, tr_id_t *self, char *name, size_t cap)
{
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(ts_ask_id(node, id, ts_msg("who"), &reply), 0);
    tr_reader_t r;
    tr_reader_init(&r, reply);
    uint64_t v;
    ck_assert_int_eq(tr_read_uint(&r, &v), 0);
    *self = v;
    if (tr_read_type(&r) == TR_TYPE_NIL) {
        ck_assert_int_eq(tr_read_nil(&r), 0);
        name[0] = '\0';
    } else {
        ck_assert_int_eq(tr_read_str_copy(&r, name, cap), 0);
    }
    tr_msg_destroy(&reply);
}

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* What each callback saw of its actor (test-side shared memory; written
 * by the actor thread before the event the test waits on). */
typedef struct {
    tr_id_t id;
    char name[TR_NAME_MAX + 1];
    bool anonymous;
    tr_node_t *node;
} s_seen_t;

static s_seen_t s_seen_init, s_seen_term;
static _Atomic int s_inits, s_terms;
/* Actors of the concurrent-spawn test start and end at once, each in its
 * own thread: the last one seen wins, under this lock. */
static pthread_mutex_t s_seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void
s_see(tr_actor_t *self, s_seen_t *seen)
{
    const char *n = tr_actor_name(self);
    pthread_mutex_lock(&s_seen_mu);
    seen->id = tr_self(self);
    seen->anonymous = n == NULL;
    snprintf(seen->name, sizeof seen->name, "%s", n ? n : "");
    seen->node = tr_actor_node(self);
    pthread_mutex_unlock(&s_seen_mu);
}

static int
s_named_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)state, (void)args;
    s_see(self, &s_seen_init);
    atomic_fetch_add(&s_inits, 1);
    return 0;
}

/* "who": reply [id, name or nil]. */
static int
s_named_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "who"))
        return TR_EUNHANDLED;
    tr_msg_t *r = NULL;
    const char *name = tr_actor_name(self);
    int rc = tr_msg_create(&r, "me");
    if (rc == 0)
        rc = tr_msg_add_uint(r, tr_self(self));
    if (rc == 0)
        rc = name ? tr_msg_add_str(r, name) : tr_msg_add_nil(r);
    if (rc == 0)
        rc = tr_reply(self, msg, &r);
    tr_msg_destroy(&r);
    return rc;
}

static void
s_named_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)state, (void)reason;
    s_see(self, &s_seen_term);
    atomic_fetch_add(&s_terms, 1);
}

TR_BEHAVIOUR(named, .init = s_named_init, .handle = s_named_handle,
             .terminate = s_named_terminate);

/* flaky: init fails on the call numbered s_flaky_fail_at (1-based). */
static _Atomic int s_flaky_calls, s_flaky_terms;
static int s_flaky_fail_at;

static int
s_flaky_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self, (void)state, (void)args;
    return atomic_fetch_add(&s_flaky_calls, 1) + 1 == s_flaky_fail_at
               ? TR_ERANGE
               : 0;
}

static void
s_flaky_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)state;
    if (reason == TR_ESHUTDOWN)
        atomic_fetch_add(&s_flaky_terms, 1);
}

TR_BEHAVIOUR(flaky, .init = s_flaky_init, .handle = s_named_handle,
             .terminate = s_flaky_terminate);

/* Handlers for behaviours registered at run time: each replies with its
 * own tag, so the test sees which definition runs. */
static int
s_reply_tag(tr_actor_t *self, const tr_msg_t *msg, const char *tag)
{
    tr_msg_t *r = NULL;
    int rc = tr_msg_create(&r, tag);
    if (rc == 0)
        rc = tr_reply(self, msg, &r);
    tr_msg_destroy(&r);
    return rc;
}

static int
s_first_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    return s_reply_tag(self, msg, "first");
}

static int
s_second_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    return s_reply_tag(self, msg, "second");
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

START_TEST(whereis_finds_a_named_actor)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t a = ts_spawn(node, "named", "alpha");
    tr_id_t b = ts_spawn(node, "named", "beta");
    tr_id_t got = 0;
    ck_assert_int_eq(tr_whereis(node, "alpha", &got), 0);
    ck_assert_uint_eq(got, a);
    ck_assert_int_eq(tr_whereis(node, "beta", &got), 0);
    ck_assert_uint_eq(got, b);
    ck_assert_uint_ne(a, b);
    ts_destroy(&node);
}
END_TEST

START_TEST(whereis_gives_enoent_for_unknown_names_and_einval_for_null)
{
    tr_node_t *node = ts_node(NULL);
    ts_spawn(node, "named", "alpha");
    tr_id_t got = 12345;
    ck_assert_int_eq(tr_whereis(node, "alph", &got), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "alphaa", &got), TR_ENOENT);
    ck_assert_int_eq(tr_whereis(node, "ALPHA", &got), TR_ENOENT);
    ck_assert_uint_eq(got, 12345); /* untouched on error */
    ck_assert_int_eq(tr_whereis(NULL, "alpha", &got), TR_EINVAL);
    ck_assert_int_eq(tr_whereis(node, NULL, &got), TR_EINVAL);
    ck_assert_int_eq(tr_whereis(node, "alpha", NULL), TR_EINVAL);
    ts_destroy(&node);
}
END_TEST

START_TEST(whereis_gives_enoent_after_the_actor_ended)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t a = ts_spawn(node, "named", "alpha");
    ck_assert_int_eq(tr_stop(node, a, TS_CALL_MS), 0);
    tr_id_t got = 0;
    ck_assert_int_eq(tr_whereis(node, "alpha", &got), TR_ENOENT);
    tr_msg_t *m = ts_msg("who");
    ck_assert_int_eq(tr_tell(node, "alpha", &m), TR_ENOENT);
    ck_assert_int_eq(tr_tell_id(node, a, &m), TR_ENOENT);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

START_TEST(duplicate_name_gives_eexist_and_leaves_the_first_alone)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t a = ts_spawn(node, "named", "alpha");
    int inits = atomic_load(&s_inits);
    tr_id_t b = 777;
    tr_spawn_opts_t o = {.name = "alpha"};
    ck_assert_int_eq(tr_spawn(node, "named", &o, &b), TR_EEXIST);
    ck_assert_uint_eq(b, 777);                     /* not set on error */
    ck_assert_int_eq(atomic_load(&s_inits), inits); /* init never ran */
    /* Another behaviour under the same name: the name is what counts. */
    ck_assert_int_eq(tr_spawn(node, "flaky", &o, NULL), TR_EEXIST);

    tr_id_t got = 0, self = 0;
    char name[TR_NAME_MAX + 1];
    ck_assert_int_eq(tr_whereis(node, "alpha", &got), 0);
    ck_assert_uint_eq(got, a);
    s_who(node, a, &self, name, sizeof name);
    ck_assert_uint_eq(self, a);
    ck_assert_str_eq(name, "alpha");
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    ck_assert_uint_eq(st.spawned, 1);
    ck_assert_uint_eq(st.alive, 1);
    ts_destroy(&node);
}
END_TEST

START_TEST(name_of_name_max_bytes_is_accepted_and_one_more_is_too_long)
{
    tr_node_t *node = ts_node(NULL);
    char name[TR_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[TR_NAME_MAX] = '\0';
    tr_id_t a = ts_spawn(node, "named", name);
    tr_id_t got = 0;
    ck_assert_int_eq(tr_whereis(node, name, &got), 0);
    ck_assert_uint_eq(got, a);
    ck_assert_str_eq(s_seen_init.name, name);

    name[TR_NAME_MAX] = 'n';
    name[TR_NAME_MAX + 1] = '\0';
    tr_spawn_opts_t o = {.name = name};
    ck_assert_int_eq(tr_spawn(node, "named", &o, NULL), TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_whereis(node, name, &got), TR_ENAMETOOLONG);
    tr_msg_t *m = ts_msg("who");
    ck_assert_int_eq(tr_tell(node, name, &m), TR_ENAMETOOLONG);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

START_TEST(empty_name_gives_einval)
{
    tr_node_t *node = ts_node(NULL);
    tr_spawn_opts_t o = {.name = ""};
    tr_id_t id = 5;
    ck_assert_int_eq(tr_spawn(node, "named", &o, &id), TR_EINVAL);
    ck_assert_uint_eq(id, 5);
    ck_assert_int_eq(atomic_load(&s_inits), 0);
    tr_msg_t *m = ts_msg("who");
    ck_assert_int_eq(tr_tell(node, "", &m), TR_EINVAL);
    ck_assert_int_eq(tr_try_tell(node, "", &m), TR_EINVAL);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ts_destroy(&node);
}
END_TEST

START_TEST(name_is_free_again_after_its_actor_ended)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t prev = 0;
    for (int round = 0; round < 20; round++) {
        tr_id_t a = ts_spawn(node, "named", "phoenix");
        ck_assert_uint_ne(a, prev);
        tr_id_t got = 0, self = 0;
        char name[TR_NAME_MAX + 1];
        ck_assert_int_eq(tr_whereis(node, "phoenix", &got), 0);
        ck_assert_uint_eq(got, a);
        s_who(node, a, &self, name, sizeof name);
        ck_assert_uint_eq(self, a);
        /* The old id stays dead: a message to it is not delivered to the
         * new holder of the name. */
        if (prev != 0) {
            tr_msg_t *m = ts_msg("who");
            ck_assert_int_eq(tr_tell_id(node, prev, &m), TR_ENOENT);
            tr_msg_destroy(&m);
        }
        ck_assert_int_eq(tr_stop(node, a, TS_CALL_MS), 0);
        prev = a;
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(anonymous_actors_are_reachable_by_id_only)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t a = ts_spawn(node, "named", NULL);
    tr_id_t b = ts_spawn(node, "named", NULL);
    ck_assert_uint_ne(a, b);
    tr_id_t self = 0;
    char name[TR_NAME_MAX + 1] = "x";
    s_who(node, a, &self, name, sizeof name);
    ck_assert_uint_eq(self, a);
    ck_assert_str_eq(name, ""); /* nil: tr_actor_name gave NULL */
    s_who(node, b, &self, name, sizeof name);
    ck_assert_uint_eq(self, b);
    ck_assert(s_seen_init.anonymous);
    /* The behaviour's name is not a registered name. */
    tr_id_t got;
    ck_assert_int_eq(tr_whereis(node, "named", &got), TR_ENOENT);
    ts_destroy(&node);
}
END_TEST

START_TEST(actor_sees_its_id_name_and_node_in_every_callback)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t a = ts_spawn(node, "named", "cygnus");
    /* init ran before tr_spawn returned. */
    ck_assert_uint_eq(s_seen_init.id, a);
    ck_assert_str_eq(s_seen_init.name, "cygnus");
    ck_assert(!s_seen_init.anonymous);
    ck_assert_ptr_eq(s_seen_init.node, node);
    tr_id_t self = 0;
    char name[TR_NAME_MAX + 1];
    s_who(node, a, &self, name, sizeof name);
    ck_assert_uint_eq(self, a);
    ck_assert_str_eq(name, "cygnus");
    /* terminate ran before tr_stop returned. */
    ck_assert_int_eq(tr_stop(node, a, TS_CALL_MS), 0);
    ck_assert_uint_eq(s_seen_term.id, a);
    ck_assert_str_eq(s_seen_term.name, "cygnus");
    ck_assert_ptr_eq(s_seen_term.node, node);
    /* Outside an actor these have nothing to say. */
    ck_assert_uint_eq(tr_self(NULL), 0);
    ck_assert_ptr_null(tr_actor_name(NULL));
    ck_assert_ptr_null(tr_actor_node(NULL));
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Ids                                                                 */
/* ------------------------------------------------------------------ */

static int
s_cmp_id(const void *a, const void *b)
{
    tr_id_t x = *(const tr_id_t *)a, y = *(const tr_id_t *)b;
    return (x > y) - (x < y);
}

/* Sorts ids and checks that none repeats and none is 0. */
static void
s_assert_distinct(tr_id_t *ids, size_t n)
{
    qsort(ids, n, sizeof *ids, s_cmp_id);
    for (size_t i = 0; i < n; i++) {
        TS_CHECK(ids[i] != 0);
        if (i > 0)
            ck_assert_msg(ids[i] != ids[i - 1], "id %llx given twice",
                          (unsigned long long)ids[i]);
    }
}

START_TEST(ids_are_unique_and_never_reused)
{
    enum { SEQ = 300, LIVE = 40 };
    tr_node_t *node = ts_node(NULL);
    tr_id_t *ids = calloc(SEQ + LIVE, sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    /* One at a time: each ends before the next starts, so an id freed by
     * an exit could be handed out again if ids were reused. */
    for (int i = 0; i < SEQ; i++) {
        ids[i] = ts_spawn(node, "named", i % 2 ? "same" : NULL);
        ck_assert_int_eq(tr_stop(node, ids[i], TS_CALL_MS), 0);
    }
    for (int i = 0; i < LIVE; i++)
        ids[SEQ + i] = ts_spawn(node, "named", NULL);
    s_assert_distinct(ids, SEQ + LIVE);
    free(ids);
    ts_destroy(&node);
}
END_TEST

typedef struct {
    tr_node_t *node;
    tr_id_t ids[50];
    int rc;
} s_spawner_t;

static void *
s_spawner_main(void *arg)
{
    s_spawner_t *s = arg;
    for (int i = 0; i < 50 && s->rc == 0; i++) {
        s->rc = tr_spawn(s->node, "named", NULL, &s->ids[i]);
        if (s->rc == 0 && i % 2 == 0)
            s->rc = tr_stop(s->node, s->ids[i], TS_CALL_MS);
    }
    return NULL;
}

START_TEST(ids_are_unique_across_concurrent_spawns)
{
    enum { T = 4 };
    tr_node_t *node = ts_node(NULL);
    s_spawner_t sp[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        sp[i] = (s_spawner_t){.node = node};
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_spawner_main, &sp[i]),
                         0);
    }
    tr_id_t all[T * 50];
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(sp[i].rc, 0);
        memcpy(&all[i * 50], sp[i].ids, sizeof sp[i].ids);
    }
    s_assert_distinct(all, T * 50);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Behaviours and spawn_n                                              */
/* ------------------------------------------------------------------ */

START_TEST(unknown_behaviour_gives_enoent)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t id = 9;
    ck_assert_int_eq(tr_spawn(node, "no_such_behaviour", NULL, &id),
                     TR_ENOENT);
    ck_assert_uint_eq(id, 9);
    ck_assert_int_eq(tr_spawn(node, "Named", NULL, &id), TR_ENOENT);
    ck_assert_int_eq(tr_spawn(node, NULL, NULL, &id), TR_EINVAL);
    ck_assert_int_eq(tr_spawn(NULL, "named", NULL, &id), TR_EINVAL);
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    ck_assert_uint_eq(st.spawned, 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(behaviour_register_rejects_duplicates_and_bad_definitions)
{
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = "rt_first", .handle = s_first_handle}),
                     0);
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = "rt_first", .handle = s_second_handle}),
                     TR_EEXIST);
    /* A name taken by TR_BEHAVIOUR at start-up. */
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = "named", .handle = s_second_handle}),
                     TR_EEXIST);
    ck_assert_int_eq(tr_behaviour_register(NULL), TR_EINVAL);
    ck_assert_int_eq(
        tr_behaviour_register(&(tr_behaviour_t){.name = "rt_nohandle"}),
        TR_EINVAL);
    ck_assert_int_eq(tr_behaviour_register(
                         &(tr_behaviour_t){.handle = s_first_handle}),
                     TR_EINVAL);
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = "", .handle = s_first_handle}),
                     TR_EINVAL);
    char name[TR_NAME_MAX + 2];
    memset(name, 'b', sizeof name);
    name[TR_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = name, .handle = s_first_handle}),
                     TR_ENAMETOOLONG);
    name[TR_NAME_MAX] = '\0';
    ck_assert_int_eq(tr_behaviour_register(&(tr_behaviour_t){
                         .name = name, .handle = s_first_handle}),
                     0);

    /* The definition and its name were copied: changing ours afterwards
     * changes nothing, and the first registration is the one that runs. */
    char rt[] = "rt_copied";
    tr_behaviour_t b = {.name = rt, .handle = s_first_handle};
    ck_assert_int_eq(tr_behaviour_register(&b), 0);
    b.handle = s_second_handle;
    rt[0] = 'X';

    tr_node_t *node = ts_node(NULL);
    tr_id_t ids[3];
    ck_assert_int_eq(tr_spawn(node, "rt_first", NULL, &ids[0]), 0);
    ck_assert_int_eq(tr_spawn(node, "rt_copied", NULL, &ids[1]), 0);
    ck_assert_int_eq(tr_spawn(node, name, NULL, &ids[2]), 0);
    ck_assert_int_eq(tr_spawn(node, "Xt_copied", NULL, NULL), TR_ENOENT);
    for (int i = 0; i < 3; i++) {
        tr_msg_t *reply = NULL;
        ck_assert_int_eq(ts_ask_id(node, ids[i], ts_msg("hi"), &reply), 0);
        ck_assert_str_eq(tr_msg_tag(reply), "first");
        tr_msg_destroy(&reply);
    }
    ts_destroy(&node);
}
END_TEST

START_TEST(spawn_n_starts_n_actors_with_distinct_ids)
{
    enum { N = 25 };
    tr_node_t *node = ts_node(NULL);
    tr_id_t ids[N + 1];
    ids[N] = 4242; /* a sentinel: spawn_n writes n ids, no more */
    ck_assert_int_eq(tr_spawn_n(node, "named", NULL, N, ids), 0);
    ck_assert_uint_eq(ids[N], 4242);
    ck_assert_int_eq(atomic_load(&s_inits), N);
    for (int i = 0; i < N; i++) {
        tr_id_t self = 0;
        char name[TR_NAME_MAX + 1];
        s_who(node, ids[i], &self, name, sizeof name);
        ck_assert_uint_eq(self, ids[i]);
        ck_assert_str_eq(name, "");
    }
    s_assert_distinct(ids, N);
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    ck_assert_uint_eq(st.spawned, N);
    ck_assert_uint_eq(st.alive, N);

    /* ids may be NULL; n == 0 starts nothing. */
    ck_assert_int_eq(tr_spawn_n(node, "named", NULL, 3, NULL), 0);
    ck_assert_int_eq(tr_spawn_n(node, "named", NULL, 0, ids), 0);
    ck_assert_int_eq(atomic_load(&s_inits), N + 3);
    ts_destroy(&node);
}
END_TEST

START_TEST(spawn_n_rejects_names_and_negative_counts)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t ids[2] = {7, 7};
    ck_assert_int_eq(
        tr_spawn_n(node, "named", &(tr_spawn_opts_t){.name = "x"}, 2, ids),
        TR_EINVAL);
    ck_assert_int_eq(tr_spawn_n(node, "named", NULL, -1, ids), TR_EINVAL);
    ck_assert_int_eq(tr_spawn_n(node, "no_such", NULL, 2, ids), TR_ENOENT);
    ck_assert_uint_eq(ids[0], 7);
    ck_assert_int_eq(atomic_load(&s_inits), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(spawn_n_stops_the_started_ones_when_one_init_fails)
{
    tr_node_t *node = ts_node(NULL);
    s_flaky_fail_at = 5;
    tr_id_t ids[8] = {0};
    ck_assert_int_eq(tr_spawn_n(node, "flaky", NULL, 8, ids), TR_ERANGE);
    ck_assert_uint_eq(ids[0], 0); /* not filled on error */
    ck_assert_int_eq(atomic_load(&s_flaky_calls), 5);
    /* The four that started were stopped (and waited for) again. */
    ck_assert_int_eq(atomic_load(&s_flaky_terms), 4);
    tr_node_stats_t st;
    tr_node_stats(node, &st);
    ck_assert_uint_eq(st.spawned, 4);
    ck_assert_uint_eq(st.exited, 4);
    ts_destroy(&node);
}
END_TEST

/* Lookups from other threads while names come and go. */
typedef struct {
    tr_node_t *node;
    _Atomic int *stop;
    long found, lookups;
    int bad;
} s_looker_t;

static void *
s_looker_main(void *arg)
{
    s_looker_t *l = arg;
    while (!atomic_load(l->stop)) {
        tr_id_t id = 0;
        int rc = tr_whereis(l->node, "volatile", &id);
        l->lookups++;
        if (rc == 0 && id != 0)
            l->found++;
        else if (rc != TR_ENOENT)
            l->bad++;
        sched_yield(); /* leave the spawner some of the 2 cores */
    }
    return NULL;
}

START_TEST(lookups_race_safely_with_spawns_and_exits)
{
    tr_node_t *node = ts_node(NULL);
    _Atomic int stop = 0;
    s_looker_t l[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        l[i] = (s_looker_t){.node = node, .stop = &stop};
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_looker_main, &l[i]),
                         0);
    }
    for (int i = 0; i < 100; i++) {
        tr_id_t a = ts_spawn(node, "named", "volatile");
        ck_assert_int_eq(tr_stop(node, a, TS_CALL_MS), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(l[i].bad, 0);
        ck_assert_int_gt(l[i].lookups, 0);
    }
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Maps                                                                */
/* ------------------------------------------------------------------ */

/* The seed of ts_rand: the same sequence on every run. */
static uint64_t s_rng = 0x2545F4914F6CDD1Dull;

/* The map's home slot, as runtime/map.c computes it (white box: used to
 * build clusters on purpose). */
static size_t
s_home(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 7) & (cap - 1);
}

/* Linear probing's invariant: every slot between an entry's home and the
 * entry is occupied (else a lookup would stop short). Also len. */
static void
s_check_map_invariants(const tr__map_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == 0)
            continue;
        n++;
        for (size_t j = s_home(m->slots[i].key, m->cap); j != i;
             j = (j + 1) & (m->cap - 1))
            TS_CHECK(m->slots[j].key != 0);
    }
    TS_CHECK(n == m->len);
}

#define S_KEYS 4096

/* ops random puts, deletes and gets over the first nkeys of a key set,
 * checked op by op against a plain array. Invariants are checked every
 * `every` ops (1 for small tables, where it is cheap). */
static void
s_map_random(const uint64_t *keys, size_t nkeys, long ops, long every)
{
    static void *model[S_KEYS];
    for (size_t i = 0; i < nkeys; i++)
        model[i] = NULL;
    tr__map_t m;
    tr__map_init(&m);
    size_t len = 0, puts = 0, dels = 0, hits = 0;
    for (long op = 0; op < ops; op++) {
        size_t k = (size_t)(ts_rand(&s_rng) % nkeys);
        /* Phases: growing, mixed, shrinking, so that deletion runs on
         * both sparse and crowded tables. */
        unsigned r = (unsigned)(ts_rand(&s_rng) % 100);
        unsigned put_pct = op < ops * 3 / 10 ? 70 : op < ops * 7 / 10 ? 45 : 20;
        if (r < put_pct) {
            void *val = (void *)(uintptr_t)(ts_rand(&s_rng) | 1);
            TS_CHECK(tr__map_put(&m, keys[k], val) == 0);
            if (model[k] == NULL)
                len++;
            model[k] = val;
            puts++;
        } else if (r < put_pct + 25) {
            void *got = tr__map_del(&m, keys[k]);
            TS_CHECK(got == model[k]);
            if (model[k] != NULL) {
                len--;
                dels++;
            }
            model[k] = NULL;
        } else {
            void *got = tr__map_get(&m, keys[k]);
            TS_CHECK(got == model[k]);
            hits += got != NULL;
        }
        TS_CHECK(m.len == len);
        if (op % every == 0) {
            s_check_map_invariants(&m);
            for (size_t i = 0; i < nkeys; i++)
                TS_CHECK(tr__map_get(&m, keys[i]) == model[i]);
            size_t seen = 0;
            TR__MAP_EACH(&m, slot)
            {
                seen++;
                TS_CHECK(slot->val != NULL);
            }
            TS_CHECK(seen == len);
        }
    }
    s_check_map_invariants(&m);
    for (size_t i = 0; i < nkeys; i++)
        TS_CHECK(tr__map_get(&m, keys[i]) == model[i]);
    ck_assert_uint_gt(dels, (size_t)ops / 10); /* deletion was exercised */
    ck_assert_uint_gt(hits, (size_t)ops / 100);
    ck_assert_uint_gt(puts, (size_t)ops / 10);
    tr__map_free(&m);
    ck_assert_ptr_null(m.slots);
    ck_assert_uint_eq(m.len, 0);
}

START_TEST(map_matches_a_reference_model_over_100000_random_ops)
{
    /* Half the keys are small and sequential (actor ids), half are any
     * 64-bit value; all are drawn from a set small enough that puts and
     * deletes keep hitting present keys. */
    static uint64_t keys[S_KEYS];
    for (size_t i = 0; i < S_KEYS; i++)
        keys[i] = i < S_KEYS / 2 ? i + 1 : (ts_rand(&s_rng) | 1);
    s_map_random(keys, S_KEYS, 100000, 5000);
}
END_TEST

START_TEST(crowded_small_map_matches_a_reference_model_over_100000_ops)
{
    /* 12 keys whose home slots (in the 16- and 32-slot tables they can
     * live in) are the last few or the first two: every cluster wraps
     * around the end of the table, where deletion's backward shift has
     * its hardest case. */
    uint64_t keys[12];
    size_t n = 0;
    for (uint64_t k = 1; n < 12; k++) {
        size_t h = s_home(k, 32);
        if (h >= 28 || h <= 1)
            keys[n++] = k;
    }
    s_map_random(keys, 12, 100000, 1);
}
END_TEST

/* Keys whose home slot in a 16-slot table is home. */
static size_t
s_keys_at(size_t home, uint64_t *out, size_t n, uint64_t *next)
{
    size_t got = 0;
    for (; got < n; (*next)++)
        if (s_home(*next, 16) == home)
            out[got++] = *next;
    return got;
}

START_TEST(map_delete_shifts_clusters_back_across_the_table_end)
{
    /* A 16-slot table holds up to 8 entries. Build clusters that start at
     * slot 14 or 15 and wrap to 0, 1, 2...; delete each member in turn
     * (on a fresh map) and check that every other member is still found
     * and that no entry was left behind a hole. */
    static const size_t homes[][7] = {
        {15, 15, 15, 0, 0, 1, 14},
        {14, 15, 15, 15, 0, 2, 2},
        {15, 0, 15, 0, 1, 15, 1},
        {13, 14, 15, 0, 1, 2, 3},
        {15, 15, 15, 15, 15, 15, 15},
    };
    for (size_t c = 0; c < sizeof homes / sizeof homes[0]; c++) {
        uint64_t keys[7], next = 1;
        for (size_t i = 0; i < 7; i++)
            ck_assert_uint_eq(s_keys_at(homes[c][i], &keys[i], 1, &next), 1);
        for (size_t victim = 0; victim < 7; victim++) {
            tr__map_t m;
            tr__map_init(&m);
            for (size_t i = 0; i < 7; i++)
                ck_assert_int_eq(
                    tr__map_put(&m, keys[i], (void *)(uintptr_t)(i + 1)), 0);
            ck_assert_uint_eq(m.cap, 16); /* the layout we built for */
            s_check_map_invariants(&m);
            ck_assert_ptr_eq(tr__map_del(&m, keys[victim]),
                             (void *)(uintptr_t)(victim + 1));
            s_check_map_invariants(&m);
            for (size_t i = 0; i < 7; i++)
                ck_assert_ptr_eq(tr__map_get(&m, keys[i]),
                                 i == victim ? NULL
                                             : (void *)(uintptr_t)(i + 1));
            /* Deleting the rest one by one keeps the others findable. */
            for (size_t k = 0; k < 7; k++) {
                if (k == victim)
                    continue;
                ck_assert_ptr_eq(tr__map_del(&m, keys[k]),
                                 (void *)(uintptr_t)(k + 1));
                s_check_map_invariants(&m);
                for (size_t i = k + 1; i < 7; i++)
                    if (i != victim)
                        ck_assert_ptr_eq(tr__map_get(&m, keys[i]),
                                         (void *)(uintptr_t)(i + 1));
            }
            ck_assert_uint_eq(m.len, 0);
            tr__map_free(&m);
        }
    }
}
END_TEST

static int s_other;

START_TEST(map_rejects_key_zero_and_replacing_keeps_len)
{
    tr__map_t m;
    tr__map_init(&m);
    ck_assert_ptr_null(tr__map_get(&m, 1)); /* empty, never allocated */
    ck_assert_ptr_null(tr__map_del(&m, 1));
    ck_assert_int_eq(tr__map_put(&m, 0, &m), TR_EINVAL);
    ck_assert_uint_eq(m.len, 0);
    ck_assert_int_eq(tr__map_put(&m, 5, &m), 0);
    ck_assert_int_eq(tr__map_put(&m, 5, &s_other), 0);
    ck_assert_uint_eq(m.len, 1);
    ck_assert_ptr_eq(tr__map_get(&m, 5), &s_other);
    ck_assert_ptr_null(tr__map_get(&m, 0));
    ck_assert_ptr_null(tr__map_del(&m, 0));
    ck_assert_int_eq(tr__map_put(&m, UINT64_MAX, &m), 0);
    ck_assert_ptr_eq(tr__map_get(&m, UINT64_MAX), &m);
    ck_assert_uint_eq(m.len, 2);
    ck_assert_ptr_null(tr__map_del(&m, 6));
    ck_assert_uint_eq(m.len, 2);
    tr__map_free(&m);
}
END_TEST

START_TEST(smap_matches_a_reference_model_over_100000_random_ops)
{
    enum { NAMES = 1500 };
    static char names[NAMES][40];
    static void *model[NAMES];
    for (size_t i = 0; i < NAMES; i++) {
        /* Short, similar names (as actor names are), a few long ones. */
        if (i % 50 == 0)
            snprintf(names[i], sizeof names[i], "long-name-%019llu",
                     (unsigned long long)i);
        else
            snprintf(names[i], sizeof names[i], "w%zu", i);
        model[i] = NULL;
    }
    tr__smap_t m;
    tr__smap_init(&m);
    size_t len = 0, dels = 0;
    for (long op = 0; op < 100000; op++) {
        size_t k = (size_t)(ts_rand(&s_rng) % NAMES);
        unsigned r = (unsigned)(ts_rand(&s_rng) % 100);
        unsigned add_pct = op < 30000 ? 60 : op < 70000 ? 40 : 15;
        if (r < add_pct) {
            /* The key is copied: pass a temporary that we then wipe. */
            char tmp[40];
            memcpy(tmp, names[k], sizeof tmp);
            void *val = (void *)(uintptr_t)(ts_rand(&s_rng) | 1);
            int rc = tr__smap_add(&m, tmp, val);
            memset(tmp, 'Z', sizeof tmp - 1);
            if (model[k] != NULL) {
                TS_CHECK(rc == TR_EEXIST);
            } else {
                TS_CHECK(rc == 0);
                model[k] = val;
                len++;
            }
        } else if (r < add_pct + 30) {
            void *got = tr__smap_del(&m, names[k]);
            TS_CHECK(got == model[k]);
            if (model[k] != NULL) {
                len--;
                dels++;
            }
            model[k] = NULL;
        } else {
            TS_CHECK(tr__smap_get(&m, names[k]) == model[k]);
        }
        TS_CHECK(m.len == len);
        if (op % 10000 == 0)
            for (size_t i = 0; i < NAMES; i++)
                TS_CHECK(tr__smap_get(&m, names[i]) == model[i]);
    }
    for (size_t i = 0; i < NAMES; i++)
        TS_CHECK(tr__smap_get(&m, names[i]) == model[i]);
    ck_assert_ptr_null(tr__smap_get(&m, ""));
    ck_assert_ptr_null(tr__smap_get(&m, "w"));
    ck_assert_ptr_null(tr__smap_del(&m, "nobody"));
    ck_assert_uint_gt(dels, 5000);
    tr__smap_free(&m);
    ck_assert_uint_eq(m.len, 0);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("names");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, whereis_finds_a_named_actor);
    tcase_add_test(tc,
                   whereis_gives_enoent_for_unknown_names_and_einval_for_null);
    tcase_add_test(tc, whereis_gives_enoent_after_the_actor_ended);
    tcase_add_test(tc, duplicate_name_gives_eexist_and_leaves_the_first_alone);
    tcase_add_test(tc,
                   name_of_name_max_bytes_is_accepted_and_one_more_is_too_long);
    tcase_add_test(tc, empty_name_gives_einval);
    tcase_add_test(tc, name_is_free_again_after_its_actor_ended);
    tcase_add_test(tc, anonymous_actors_are_reachable_by_id_only);
    tcase_add_test(tc, actor_sees_its_id_name_and_node_in_every_callback);
    tcase_add_test(tc, lookups_race_safely_with_spawns_and_exits);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, ids_are_unique_and_never_reused);
    tcase_add_test(tc, ids_are_unique_across_concurrent_spawns);
    suite_add_tcase(s, tc);

    tc = tcase_create("behaviours");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, unknown_behaviour_gives_enoent);
    tcase_add_test(tc,
                   behaviour_register_rejects_duplicates_and_bad_definitions);
    tcase_add_test(tc, spawn_n_starts_n_actors_with_distinct_ids);
    tcase_add_test(tc, spawn_n_rejects_names_and_negative_counts);
    tcase_add_test(tc, spawn_n_stops_the_started_ones_when_one_init_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("maps");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, map_matches_a_reference_model_over_100000_random_ops);
    tcase_add_test(tc,
                   crowded_small_map_matches_a_reference_model_over_100000_ops);
    tcase_add_test(tc, map_delete_shifts_clusters_back_across_the_table_end);
    tcase_add_test(tc, map_rejects_key_zero_and_replacing_keeps_len);
    tcase_add_test(tc, smap_matches_a_reference_model_over_100000_random_ops);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
