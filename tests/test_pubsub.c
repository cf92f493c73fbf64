/* tests/test_pubsub.c - topics and subscriptions (actors/pubsub.c):
 * delivery to thread and process subscribers, prefix and exact matching,
 * unsubscribing, a subscriber that ends, a slow subscriber that drops
 * (counted exactly, logged, the publisher never held), reliable topics
 * that wait and then time out, a subscriber on another node, and bad
 * input.
 *
 * Counting a subscriber's messages needs no waiting on time: the test's
 * thread publishes and then asks the subscriber, over the same connection,
 * so the answer comes after every copy that was delivered. Only copies
 * sent by another thread (the service, another node) are polled for, with
 * a deadline. */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* The subscriber                                                      */
/* ------------------------------------------------------------------ */

#define S_TAGS 8

/* "sink": counts every message that is not a request: in all, the sum
 * of their first ints, how often an int was not larger than the last
 * (order), and per tag. Requests: "count" -> [total, sum, out of order],
 * "seen" [tag] -> [count of that tag], "pubto" [topic, v] -> publishes
 * [v] by name, "subme" [topic] subscribes itself (tag "me"). A "block"
 * tell waits on the gate. No ck_assert here: it may run in a process. */
typedef struct {
    int64_t total, sum, disorder, last;
    struct {
        char tag[TR_TAG_MAX + 1];
        int64_t n;
    } tags[S_TAGS];
} s_sink_t;

static int
s_sink_seen(tr_actor_t *self, s_sink_t *k, const tr_msg_t *msg)
{
    char tag[TR_TAG_MAX + 1] = "";
    tr_reader_t r;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, tag, sizeof tag);
    if (rc != 0)
        return rc;
    int64_t n = 0;
    for (int i = 0; i < S_TAGS; i++)
        if (strcmp(k->tags[i].tag, tag) == 0)
            n = k->tags[i].n;
    return ts_reply_ints(self, msg, 1, &n);
}

static int
s_sink_pubto(tr_actor_t *self, const tr_msg_t *msg)
{
    char topic[2 * TR_NAME_MAX + 2] = "";
    int64_t v = 0;
    tr_reader_t r;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, topic, sizeof topic);
    if (rc == 0)
        rc = tr_read_int(&r, &v);
    tr_msg_t *m = NULL;
    if (rc == 0 && (rc = tr_msg_create(&m, "v")) == 0 &&
        (rc = tr_msg_add_int(m, v)) == 0)
        rc = tr_publish_to(tr_actor_node(self), topic, &m);
    tr_msg_destroy(&m);
    int64_t out = rc;
    return ts_reply_ints(self, msg, 1, &out);
}

/* "subme" [topic]: subscribe itself, tag "me"; answers [rc]. */
static int
s_sink_subme(tr_actor_t *self, const tr_msg_t *msg)
{
    char topic[2 * TR_NAME_MAX + 2] = "";
    tr_reader_t r;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, topic, sizeof topic);
    if (rc == 0)
        rc = tr_subscribe(tr_actor_node(self), tr_self(self), topic,
                          &(tr_sub_opts_t){.tag = "me"});
    int64_t out = rc;
    return ts_reply_ints(self, msg, 1, &out);
}

static int
s_sink(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_sink_t *k = state;
    if (tr_msg_is_request(msg)) {
        if (tr_msg_is(msg, "count")) {
            int64_t v[3] = {k->total, k->sum, k->disorder};
            return ts_reply_ints(self, msg, 3, v);
        }
        if (tr_msg_is(msg, "seen"))
            return s_sink_seen(self, k, msg);
        if (tr_msg_is(msg, "pubto"))
            return s_sink_pubto(self, msg);
        if (tr_msg_is(msg, "subme"))
            return s_sink_subme(self, msg);
        return TR_EUNHANDLED;
    }
    if (tr_msg_is(msg, "block")) {
        tr_msg_t *m = NULL;
        int rc = tr_msg_create(&m, "hold");
        if (rc == 0)
            rc = tr_call(tr_actor_node(self), "gate", &m, TS_CALL_MS, NULL);
        tr_msg_destroy(&m);
        return rc;
    }
    int64_t v = 0;
    tr_reader_t r;
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &v) == 0) {
        if (k->total > 0 && v <= k->last)
            k->disorder++;
        k->last = v;
        k->sum += v;
    }
    k->total++;
    for (int i = 0; i < S_TAGS; i++) {
        if (k->tags[i].tag[0] == '\0')
            snprintf(k->tags[i].tag, sizeof k->tags[i].tag, "%s",
                     tr_msg_tag(msg));
        if (strcmp(k->tags[i].tag, tr_msg_tag(msg)) == 0) {
            k->tags[i].n++;
            break;
        }
    }
    return 0;
}
TR_BEHAVIOUR(sink, .state_size = sizeof(s_sink_t), .handle = s_sink);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static tr_id_t
s_spawn_sink(tr_node_t *node, const char *name, tr_mode_t mode, int hwm)
{
    tr_id_t id = 0;
    tr_spawn_opts_t o = {.name = name, .mode = mode, .mailbox_hwm = hwm};
    ck_assert_int_eq(tr_spawn(node, "sink", &o, &id), 0);
    return id;
}

static void
s_publish_ints(tr_topic_t *t, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        tr_msg_t *m = ts_msg_i("v", i);
        TS_CHECK(tr_publish(t, &m) == 0);
        TS_CHECK(m == NULL);
    }
}

/* [total, sum, out of order] of sink name. */
static void
s_count(tr_node_t *node, const char *name, int64_t out[3])
{
    ck_assert_int_eq(ts_call_ints(node, name, ts_msg("count"), 3, out), 0);
}

static int64_t
s_seen(tr_node_t *node, const char *name, const char *tag)
{
    tr_msg_t *m = ts_msg("seen");
    ck_assert_int_eq(tr_msg_add_str(m, tag), 0);
    int64_t n = -1;
    ck_assert_int_eq(ts_call_ints(node, name, m, 1, &n), 0);
    return n;
}

/* Poll sink name until it has counted n (copies from other threads). */
static void
s_wait_count(tr_node_t *node, const char *name, int64_t n, int64_t out[3])
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    for (;;) {
        s_count(node, name, out);
        if (out[0] >= n)
            return;
        ck_assert_msg(ts_now_ms() < until, "%s has %lld of %lld", name,
                      (long long)out[0], (long long)n);
    }
}

/* Poll the topic's node until the subscription is gone. */
static void
s_wait_unsubscribed(tr_node_t *node, tr_id_t id, const char *topic)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    tr_sub_stats_t st;
    while (tr_sub_stats(node, id, topic, NULL, &st) == 0)
        ck_assert_msg(ts_now_ms() < until, "still subscribed");
    ck_assert_int_eq(tr_sub_stats(node, id, topic, NULL, &st), TR_ENOENT);
}

static void
s_sub_stats(tr_node_t *node, tr_id_t id, const char *topic,
            const tr_sub_opts_t *o, tr_sub_stats_t *st)
{
    ck_assert_int_eq(tr_sub_stats(node, id, topic, o, st), 0);
    ck_assert(st->published == st->delivered + st->dropped);
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */
/* ------------------------------------------------------------------ */

START_TEST(thread_subscribers_get_every_publish_in_order)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "prices", NULL, &t), 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    tr_id_t b = s_spawn_sink(node, "b", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, a, "prices",
                                  &(tr_sub_opts_t){.tag = "tick"}),
                     0);
    ck_assert_int_eq(tr_subscribe(node, b, "prices", NULL), 0);
    s_publish_ints(t, 1, 500);

    int64_t c[3];
    s_count(node, "a", c);
    ck_assert_int_eq(c[0], 500);
    ck_assert_int_eq(c[1], 500 * 501 / 2);
    ck_assert_int_eq(c[2], 0); /* in publish order */
    ck_assert_int_eq(s_seen(node, "a", "tick"), 500);
    /* no tag chosen: the topic's name */
    ck_assert_int_eq(s_seen(node, "b", "prices"), 500);

    tr_sub_stats_t st;
    s_sub_stats(node, a, "prices", NULL, &st);
    ck_assert_uint_eq(st.published, 500);
    ck_assert_uint_eq(st.delivered, 500);
    ck_assert_uint_eq(st.dropped, 0);
    tr_topic_stats_t ts;
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.published, 500);
    ck_assert_uint_eq(ts.subscribers, 2);
    ck_assert_uint_eq(ts.delivered, 1000);
    ck_assert_uint_eq(ts.dropped, 0);

    /* by name, from this thread */
    tr_msg_t *m = ts_msg_i("v", 501);
    ck_assert_int_eq(tr_publish_to(node, "prices", &m), 0);
    ck_assert_ptr_null(m);
    s_count(node, "a", c);
    ck_assert_int_eq(c[0], 501);
    tr_topic_destroy(&t);
    ck_assert_ptr_null(t);
    ts_destroy(&node);
}
END_TEST

START_TEST(publish_from_an_actor_and_a_thread_of_its_own)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &t), 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    s_spawn_sink(node, "pub", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, a, "news", NULL), 0);
    /* an actor publishes by name (from its own thread) */
    for (int i = 1; i <= 20; i++) {
        tr_msg_t *m = ts_msg("pubto");
        ck_assert_int_eq(tr_msg_add_str(m, "news"), 0);
        ck_assert_int_eq(tr_msg_add_int(m, i), 0);
        int64_t rc = -1;
        ck_assert_int_eq(ts_call_ints(node, "pub", m, 1, &rc), 0);
        ck_assert_int_eq(rc, 0);
    }
    int64_t c[3];
    s_wait_count(node, "a", 20, c);
    ck_assert_int_eq(c[1], 20 * 21 / 2);
    ck_assert_int_eq(c[2], 0); /* one publisher: in order */
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

START_TEST(process_subscriber_gets_them_and_publishes_by_name)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "prices", NULL, &t), 0);
    tr_id_t p = s_spawn_sink(node, "p", TR_PROCESS, 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, p, "prices", NULL), 0);
    ck_assert_int_eq(tr_subscribe(node, a, "prices", NULL), 0);
    s_publish_ints(t, 1, 200);
    int64_t c[3];
    s_count(node, "p", c);
    ck_assert_int_eq(c[0], 200);
    ck_assert_int_eq(c[1], 200 * 201 / 2);
    ck_assert_int_eq(c[2], 0);

    /* the process publishes by name: its node's service is the parent's */
    tr_msg_t *m = ts_msg("pubto");
    ck_assert_int_eq(tr_msg_add_str(m, "prices"), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 1000), 0);
    int64_t rc = -1;
    ck_assert_int_eq(ts_call_ints(node, "p", m, 1, &rc), 0);
    ck_assert_int_eq(rc, 0);
    s_wait_count(node, "a", 201, c);
    ck_assert_int_eq(c[1], 200 * 201 / 2 + 1000);

    /* the process subscribes itself, from its own handler */
    tr_topic_t *news = NULL;
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &news), 0);
    m = ts_msg("subme");
    ck_assert_int_eq(tr_msg_add_str(m, "news"), 0);
    ck_assert_int_eq(ts_call_ints(node, "p", m, 1, &rc), 0);
    ck_assert_int_eq(rc, 0);
    s_publish_ints(news, 1, 7);
    ck_assert_int_eq(s_seen(node, "p", "me"), 7);

    /* a process that ends is dropped */
    ck_assert_int_eq(tr_kill(node, p), 0);
    s_wait_unsubscribed(node, p, "prices");
    s_wait_unsubscribed(node, p, "news");
    tr_topic_destroy(&news);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Matching and subscriptions                                          */
/* ------------------------------------------------------------------ */

START_TEST(prefix_and_exact_matching)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *eur = NULL, *usd = NULL, *news = NULL, *gbp = NULL;
    ck_assert_int_eq(tr_topic_create(node, "prices.eur", NULL, &eur), 0);
    ck_assert_int_eq(tr_topic_create(node, "prices.usd", NULL, &usd), 0);
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &news), 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    tr_id_t b = s_spawn_sink(node, "b", TR_THREAD, 0);
    tr_id_t all = s_spawn_sink(node, "all", TR_THREAD, 0);
    const tr_sub_opts_t pre = {.prefix = true};
    ck_assert_int_eq(tr_subscribe(node, a, "prices.", &pre), 0);
    ck_assert_int_eq(tr_subscribe(node, b, "prices.eur", NULL), 0);
    ck_assert_int_eq(tr_subscribe(node, all, "", &pre), 0);
    /* "prices" is a prefix of both, but not a topic */
    ck_assert_int_eq(tr_subscribe(node, b, "prices", NULL), TR_ENOENT);
    /* a prefix that matches nothing yet is fine */
    ck_assert_int_eq(tr_subscribe(node, b, "weather.", &pre), 0);
    /* the same subscription twice */
    ck_assert_int_eq(tr_subscribe(node, a, "prices.", &pre), TR_EEXIST);

    s_publish_ints(eur, 1, 3);
    s_publish_ints(usd, 1, 2);
    s_publish_ints(news, 1, 1);
    /* a topic declared after the subscription matches it too */
    ck_assert_int_eq(tr_topic_create(node, "prices.gbp", NULL, &gbp), 0);
    s_publish_ints(gbp, 1, 4);

    ck_assert_int_eq(s_seen(node, "a", "prices.eur"), 3);
    ck_assert_int_eq(s_seen(node, "a", "prices.usd"), 2);
    ck_assert_int_eq(s_seen(node, "a", "prices.gbp"), 4);
    ck_assert_int_eq(s_seen(node, "a", "news"), 0);
    ck_assert_int_eq(s_seen(node, "b", "prices.eur"), 3);
    int64_t c[3];
    s_count(node, "b", c);
    ck_assert_int_eq(c[0], 3);
    s_count(node, "all", c);
    ck_assert_int_eq(c[0], 10);

    tr_sub_stats_t st;
    s_sub_stats(node, a, "prices.", &pre, &st);
    ck_assert_uint_eq(st.published, 9);
    ck_assert_uint_eq(st.delivered, 9);
    /* the exact kind of that pattern is another subscription */
    ck_assert_int_eq(tr_sub_stats(node, a, "prices.", NULL, &st), TR_ENOENT);
    tr_topic_destroy(&eur);
    tr_topic_destroy(&usd);
    tr_topic_destroy(&news);
    tr_topic_destroy(&gbp);
    ts_destroy(&node);
}
END_TEST

START_TEST(unsubscribe_stops_delivery)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &t), 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, a, "news", NULL), 0);
    s_publish_ints(t, 1, 5);
    ck_assert_int_eq(tr_unsubscribe(node, a, "news", NULL), 0);
    s_publish_ints(t, 6, 5);
    int64_t c[3];
    s_count(node, "a", c);
    ck_assert_int_eq(c[0], 5);
    ck_assert_int_eq(tr_unsubscribe(node, a, "news", NULL), TR_ENOENT);
    tr_sub_stats_t st;
    ck_assert_int_eq(tr_sub_stats(node, a, "news", NULL, &st), TR_ENOENT);
    tr_topic_stats_t ts;
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.subscribers, 0);
    ck_assert_uint_eq(ts.published, 10);
    /* subscribe again: counted afresh */
    ck_assert_int_eq(tr_subscribe(node, a, "news", NULL), 0);
    s_publish_ints(t, 11, 1);
    s_sub_stats(node, a, "news", NULL, &st);
    ck_assert_uint_eq(st.published, 1);
    /* a withdrawn topic delivers nothing, its subscription stays and
     * matches the topic declared again */
    tr_topic_destroy(&t);
    tr_msg_t *m = ts_msg_i("v", 12);
    ck_assert_int_eq(tr_publish_to(node, "news", &m), TR_ENOENT);
    ck_assert_ptr_nonnull(m); /* still ours */
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &t), 0);
    s_publish_ints(t, 13, 1);
    s_count(node, "a", c);
    ck_assert_int_eq(c[0], 7);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

START_TEST(a_subscriber_that_ends_is_dropped)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "news", NULL, &t), 0);
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    tr_id_t b = s_spawn_sink(node, "b", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, a, "news", NULL), 0);
    ck_assert_int_eq(tr_subscribe(node, a, "ne",
                                  &(tr_sub_opts_t){.prefix = true}),
                     0);
    ck_assert_int_eq(tr_subscribe(node, b, "news", NULL), 0);
    ck_assert_int_eq(tr_stop(node, a, TS_CALL_MS), 0);
    s_wait_unsubscribed(node, a, "news");
    tr_sub_stats_t st;
    ck_assert_int_eq(tr_sub_stats(node, a, "ne",
                                  &(tr_sub_opts_t){.prefix = true}, &st),
                     TR_ENOENT);
    tr_topic_stats_t ts;
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.subscribers, 1);
    s_publish_ints(t, 1, 3);
    int64_t c[3];
    s_count(node, "b", c);
    ck_assert_int_eq(c[0], 3);
    /* an actor that has ended already is dropped at once */
    ck_assert_int_eq(tr_subscribe(node, a, "news", NULL), 0);
    s_wait_unsubscribed(node, a, "news");
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Slow subscribers                                                    */
/* ------------------------------------------------------------------ */

#define S_FLOOD 5000

START_TEST(slow_subscriber_drops_and_never_holds_the_publisher)
{
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(node, "ticks", NULL, &t), 0);
    ts_spawn(node, "ts_gate", "gate");
    tr_id_t slow = s_spawn_sink(node, "slow", TR_THREAD, 50);
    tr_id_t fast = s_spawn_sink(node, "fast", TR_THREAD, 2 * S_FLOOD);
    ck_assert_int_eq(tr_subscribe(node, slow, "ticks", NULL), 0);
    ck_assert_int_eq(tr_subscribe(node, fast, "ticks", NULL), 0);
    ts_gate_block(node, "slow");

    /* the slow one reads nothing now: every publish still returns */
    int64_t t0 = ts_now_ms();
    s_publish_ints(t, 1, S_FLOOD);
    int64_t took = ts_now_ms() - t0;

    tr_sub_stats_t ss, fs;
    s_sub_stats(node, slow, "ticks", NULL, &ss);
    ck_assert_uint_eq(ss.published, S_FLOOD);
    ck_assert_uint_gt(ss.dropped, 0);
    ck_assert_uint_lt(ss.delivered, S_FLOOD / 2); /* about its hwm */
    ts_gate_open(node);
    int64_t c[3];
    s_count(node, "slow", c);
    ck_assert_int_eq(c[0], (int64_t)ss.delivered); /* exactly */
    ck_assert_int_eq(c[2], 0); /* what came, came in order */
    s_sub_stats(node, fast, "ticks", NULL, &fs);
    ck_assert_uint_eq(fs.delivered, S_FLOOD);
    ck_assert_uint_eq(fs.dropped, 0);
    s_count(node, "fast", c);
    ck_assert_int_eq(c[0], S_FLOOD);

    /* logged, at most once a second */
    int lines = ts_log_count("topic 'ticks'", "is slow");
    ck_assert_int_ge(lines, 1);
    ck_assert_int_le(lines, 1 + took / 1000 + 1);
    ck_assert_int_eq(ts_log_count("topic 'ticks'", "fast"), 0);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

START_TEST(reliable_topic_waits_instead_of_dropping)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    tr_topic_opts_t o = {.reliable = true, .timeout_ms = TS_CALL_MS};
    ck_assert_int_eq(tr_topic_create(node, "orders", &o, &t), 0);
    /* a tiny mailbox: the publisher has to wait for room again and again */
    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 5);
    ck_assert_int_eq(tr_subscribe(node, a, "orders", NULL), 0);
    s_publish_ints(t, 1, 3000);
    int64_t c[3];
    s_count(node, "a", c);
    ck_assert_int_eq(c[0], 3000);
    ck_assert_int_eq(c[2], 0);
    tr_sub_stats_t st;
    s_sub_stats(node, a, "orders", NULL, &st);
    ck_assert_uint_eq(st.delivered, 3000);
    ck_assert_uint_eq(st.dropped, 0);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

START_TEST(reliable_topic_times_out_on_a_stuck_subscriber)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    tr_topic_opts_t o = {.reliable = true, .timeout_ms = 200};
    ck_assert_int_eq(tr_topic_create(node, "orders", &o, &t), 0);
    ts_spawn(node, "ts_gate", "gate");
    tr_id_t slow = s_spawn_sink(node, "slow", TR_THREAD, 5);
    tr_id_t fast = s_spawn_sink(node, "fast", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, slow, "orders", NULL), 0);
    ck_assert_int_eq(tr_subscribe(node, fast, "orders", NULL), 0);
    ts_gate_block(node, "slow");

    /* publishes go through until the stuck one's mailbox is full; then
     * one waits its timeout and fails */
    int64_t i = 1, t0 = 0;
    int rc = 0;
    for (; i < 1000; i++) {
        tr_msg_t *m = ts_msg_i("v", i);
        t0 = ts_now_ms();
        rc = tr_publish(t, &m);
        if (rc != 0) {
            ck_assert_ptr_nonnull(m); /* still ours */
            tr_msg_destroy(&m);
            break;
        }
    }
    ck_assert_int_eq(rc, TR_ETIMEDOUT);
    ck_assert_int_ge(ts_now_ms() - t0, 190);
    ck_assert_int_lt(i, 1000);

    tr_sub_stats_t st;
    s_sub_stats(node, slow, "orders", NULL, &st);
    ck_assert_uint_eq(st.published, (uint64_t)i);
    ck_assert_uint_eq(st.dropped, 1); /* the one that timed out */
    s_sub_stats(node, fast, "orders", NULL, &st);
    ck_assert_uint_eq(st.delivered, (uint64_t)i); /* the others got it */
    ts_gate_open(node);
    int64_t c[3];
    s_count(node, "slow", c);
    ck_assert_int_eq(c[0], i - 1);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Across nodes                                                        */
/* ------------------------------------------------------------------ */

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

START_TEST(subscriber_on_another_node)
{
    tr_node_t *a = s_plain("a", NULL);
    char ep[128];
    ck_assert_int_eq(tr_node_endpoint(a, ep, sizeof ep), 0);
    tr_node_t *b = s_plain("b", ep);
    ck_assert_int_eq(tr_node_await(b, "a", TS_CALL_MS), 0);
    ck_assert_int_eq(tr_node_await(a, "b", TS_CALL_MS), 0);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(a, "prices", NULL, &t), 0);
    tr_id_t s = s_spawn_sink(b, "s", TR_THREAD, 0);
    const tr_sub_opts_t o = {.tag = "tick"};
    ck_assert_int_eq(tr_subscribe(b, s, "prices@a", &o), 0);
    ck_assert_int_eq(tr_subscribe(b, s, "nope@a", NULL), TR_ENOENT);

    s_publish_ints(t, 1, 300);
    int64_t c[3];
    s_wait_count(b, "s", 300, c);
    ck_assert_int_eq(c[0], 300);
    ck_assert_int_eq(c[1], 300 * 301 / 2);
    ck_assert_int_eq(c[2], 0);
    ck_assert_int_eq(s_seen(b, "s", "tick"), 300);
    tr_sub_stats_t st;
    s_sub_stats(b, s, "prices@a", &o, &st);
    ck_assert_uint_eq(st.delivered, 300);

    /* published from b, by name */
    tr_msg_t *m = ts_msg_i("v", 1000);
    ck_assert_int_eq(tr_publish_to(b, "prices@a", &m), 0);
    s_wait_count(b, "s", 301, c);
    ck_assert_int_eq(c[1], 300 * 301 / 2 + 1000);

    /* the subscriber ends: a drops it */
    ck_assert_int_eq(tr_stop(b, s, TS_CALL_MS), 0);
    s_wait_unsubscribed(b, s, "prices@a");
    tr_topic_destroy(&t);
    ts_destroy(&b);
    ts_destroy(&a);
}
END_TEST

/* Poll topic stats until it has n subscriptions. */
static void
s_wait_subscribers(tr_topic_t *t, uint64_t n)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    tr_topic_stats_t ts;
    for (;;) {
        ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
        if (ts.subscribers == n)
            return;
        ck_assert_msg(ts_now_ms() < until, "%llu subscribers, not %llu",
                      (unsigned long long)ts.subscribers,
                      (unsigned long long)n);
        sched_yield(); /* a tell on its way over tcp: nothing to ask */
    }
}

START_TEST(relay_sends_one_copy_and_a_slow_one_drops_there)
{
    tr_node_t *a = s_plain("a", NULL);
    char ep[128];
    ck_assert_int_eq(tr_node_endpoint(a, ep, sizeof ep), 0);
    tr_node_t *b = s_plain("b", ep);
    ck_assert_int_eq(tr_node_await(b, "a", TS_CALL_MS), 0);
    ck_assert_int_eq(tr_node_await(a, "b", TS_CALL_MS), 0);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(a, "ticks", NULL, &t), 0);
    ts_spawn(b, "ts_gate", "gate");
    tr_id_t slow = s_spawn_sink(b, "slow", TR_THREAD, 20);
    tr_id_t fast = s_spawn_sink(b, "fast", TR_THREAD, 2000);
    ck_assert_int_eq(tr_subscribe(b, slow, "ticks@a", NULL), 0);
    ck_assert_int_eq(tr_subscribe(b, fast, "ticks@a", NULL), 0);
    /* two subscribers on b, one subscription on a: b's relay */
    tr_topic_stats_t ts;
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.subscribers, 1);
    ts_gate_block(b, "slow");

    s_publish_ints(t, 1, 500); /* never held by b's slow one */
    int64_t c[3];
    s_wait_count(b, "fast", 500, c);
    ck_assert_int_eq(c[1], 500 * 501 / 2);
    ck_assert_int_eq(c[2], 0);
    tr_sub_stats_t st;
    int64_t until = ts_now_ms() + TS_CALL_MS;
    do {
        s_sub_stats(b, slow, "ticks@a", NULL, &st);
        ck_assert(ts_now_ms() < until);
    } while (st.published < 500);
    ck_assert_uint_gt(st.dropped, 0); /* dropped on b, counted on b */
    ck_assert_uint_lt(st.delivered, 500);
    ts_gate_open(b);
    s_wait_count(b, "slow", (int64_t)st.delivered, c);
    ck_assert_int_eq(c[0], (int64_t)st.delivered);
    ck_assert_int_eq(c[2], 0);
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.delivered, 500); /* one copy a publish to b */
    ck_assert_uint_eq(ts.dropped, 0);

    /* the last subscriber on b goes: so does b's relay on a */
    ck_assert_int_eq(tr_unsubscribe(b, slow, "ticks@a", NULL), 0);
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.subscribers, 1);
    ck_assert_int_eq(tr_stop(b, fast, TS_CALL_MS), 0);
    s_wait_unsubscribed(b, fast, "ticks@a");
    s_wait_subscribers(t, 0);
    tr_topic_destroy(&t);
    ts_destroy(&b);
    ts_destroy(&a);
}
END_TEST

START_TEST(reliable_topic_reaches_another_node_without_drops)
{
    tr_node_t *a = s_plain("a", NULL);
    char ep[128];
    ck_assert_int_eq(tr_node_endpoint(a, ep, sizeof ep), 0);
    tr_node_t *b = s_plain("b", ep);
    ck_assert_int_eq(tr_node_await(b, "a", TS_CALL_MS), 0);
    ck_assert_int_eq(tr_node_await(a, "b", TS_CALL_MS), 0);
    tr_topic_t *t = NULL;
    tr_topic_opts_t o = {.reliable = true, .timeout_ms = TS_CALL_MS};
    ck_assert_int_eq(tr_topic_create(a, "orders", &o, &t), 0);
    /* a mailbox of 5 on b: b's relay waits, and so does the publisher */
    tr_id_t s = s_spawn_sink(b, "s", TR_THREAD, 5);
    ck_assert_int_eq(tr_subscribe(b, s, "orders@a", NULL), 0);
    s_publish_ints(t, 1, 2000);
    int64_t c[3];
    s_wait_count(b, "s", 2000, c);
    ck_assert_int_eq(c[1], 2000 * 2001 / 2);
    ck_assert_int_eq(c[2], 0);
    tr_sub_stats_t st;
    s_sub_stats(b, s, "orders@a", NULL, &st);
    ck_assert_uint_eq(st.published, 2000);
    ck_assert_uint_eq(st.dropped, 0);
    tr_topic_stats_t ts;
    ck_assert_int_eq(tr_topic_stats(t, &ts), 0);
    ck_assert_uint_eq(ts.dropped, 0);
    tr_topic_destroy(&t);
    ts_destroy(&b);
    ts_destroy(&a);
}
END_TEST

START_TEST(relay_subscribes_again_when_the_service_is_back)
{
    ts_log_capture();
    tr_node_t *a = s_plain("a", NULL);
    char ep[128];
    ck_assert_int_eq(tr_node_endpoint(a, ep, sizeof ep), 0);
    tr_node_t *b = s_plain("b", ep);
    ck_assert_int_eq(tr_node_await(b, "a", TS_CALL_MS), 0);
    ck_assert_int_eq(tr_node_await(a, "b", TS_CALL_MS), 0);
    tr_topic_t *t = NULL;
    ck_assert_int_eq(tr_topic_create(a, "prices", NULL, &t), 0);
    tr_id_t s = s_spawn_sink(b, "s", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(b, s, "prices@a", NULL), 0);
    s_publish_ints(t, 1, 1);
    int64_t c[3];
    s_wait_count(b, "s", 1, c);

    /* a's service goes (its topics with it) and a new one starts */
    tr_id_t service = 0;
    ck_assert_int_eq(tr_whereis(a, "tr_pubsub", &service), 0);
    ck_assert_int_eq(tr_stop(a, service, TS_CALL_MS), 0);
    tr_msg_t *m = ts_msg_i("v", 2);
    ck_assert_int_eq(tr_publish(t, &m), TR_ECLOSED);
    tr_msg_destroy(&m);
    tr_topic_destroy(&t);
    ck_assert_int_eq(tr_topic_create(a, "prices", NULL, &t), 0);

    /* b subscribes there again by itself: publish until one arrives */
    int64_t until = ts_now_ms() + TS_CALL_MS, v = 2;
    for (;;) {
        s_publish_ints(t, (int)v++, 1);
        s_count(b, "s", c);
        if (c[0] > 1)
            break;
        ck_assert_msg(ts_now_ms() < until, "b never subscribed again");
        s_wait_subscribers(t, 1); /* then the next publish gets there */
    }
    ck_assert_int_ge(ts_log_count("pubsub", "get nothing until it is back"),
                     1);
    tr_topic_destroy(&t);
    ts_destroy(&b);
    ts_destroy(&a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad input                                                           */
/* ------------------------------------------------------------------ */

START_TEST(bad_input_gives_clear_errors)
{
    tr_node_t *node = ts_node(NULL);
    tr_topic_t *t = NULL;
    char long_name[TR_TAG_MAX + 2], longest[TR_TAG_MAX + 1];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memcpy(longest, long_name, TR_TAG_MAX);
    longest[TR_TAG_MAX] = '\0'; /* the longest that is allowed */
    ck_assert_int_eq(tr_topic_create(NULL, "x", NULL, &t), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, "x", NULL, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, NULL, NULL, &t), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, "", NULL, &t), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, "$sys", NULL, &t), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, "x@y", NULL, &t), TR_EINVAL);
    ck_assert_int_eq(tr_topic_create(node, long_name, NULL, &t),
                     TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_topic_create(node, "x",
                                     &(tr_topic_opts_t){.timeout_ms = -5},
                                     &t),
                     TR_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(tr_topic_create(node, longest, NULL, &t), 0);
    tr_topic_t *dup = NULL;
    ck_assert_int_eq(tr_topic_create(node, longest, NULL, &dup),
                     TR_EEXIST);
    tr_topic_destroy(&t);
    tr_topic_destroy(&t); /* NULL: nothing */
    tr_topic_destroy(NULL);

    ck_assert_int_eq(tr_topic_create(node, "x", NULL, &t), 0);
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr_publish(t, &m), TR_EINVAL);
    ck_assert_int_eq(tr_publish(t, NULL), TR_EINVAL);
    m = ts_msg("v");
    ck_assert_int_eq(tr_publish(NULL, &m), TR_EINVAL);
    ck_assert_int_eq(tr_publish_to(node, "unknown", &m), TR_ENOENT);
    ck_assert_int_eq(tr_publish_to(node, "", &m), TR_EINVAL);
    ck_assert_int_eq(tr_publish_to(node, long_name, &m), TR_ENAMETOOLONG);
    ck_assert_ptr_nonnull(m);
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr_topic_stats(t, NULL), TR_EINVAL);

    tr_id_t a = s_spawn_sink(node, "a", TR_THREAD, 0);
    ck_assert_int_eq(tr_subscribe(node, 0, "x", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(NULL, a, "x", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(node, a, NULL, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(node, a, "", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(node, a, long_name, NULL),
                     TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_subscribe(node, a, "unknown", NULL), TR_ENOENT);
    ck_assert_int_eq(tr_subscribe(node, a, "x",
                                  &(tr_sub_opts_t){.tag = "$down"}),
                     TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(node, a, "x", &(tr_sub_opts_t){.tag = ""}),
                     TR_EINVAL);
    ck_assert_int_eq(tr_subscribe(node, a, "x",
                                  &(tr_sub_opts_t){.tag = long_name}),
                     TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_subscribe(node, a, "x@", NULL), TR_EINVAL);
    /* a node this one is not connected to */
    int rc = tr_subscribe(node, a, "x@elsewhere", NULL);
    ck_assert_msg(rc == TR_ENOCONN || rc == TR_ENOENT, "%s",
                  tr_strerror(rc));
    tr_sub_stats_t st;
    ck_assert_int_eq(tr_sub_stats(node, a, "x", NULL, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_sub_stats(node, a, "x", NULL, &st), TR_ENOENT);
    /* x@<this node> is x */
    char self_topic[80];
    snprintf(self_topic, sizeof self_topic, "x@%s", tr_node_name(node));
    ck_assert_int_eq(tr_subscribe(node, a, self_topic, NULL), 0);
    ck_assert_int_eq(tr_sub_stats(node, a, "x", NULL, &st), 0);
    tr_topic_destroy(&t);
    ts_destroy(&node);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("pubsub");
    TCase *tc = tcase_create("delivery");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, thread_subscribers_get_every_publish_in_order);
    tcase_add_test(tc, publish_from_an_actor_and_a_thread_of_its_own);
    tcase_add_test(tc, process_subscriber_gets_them_and_publishes_by_name);
    tcase_add_test(tc, prefix_and_exact_matching);
    tcase_add_test(tc, unsubscribe_stops_delivery);
    tcase_add_test(tc, a_subscriber_that_ends_is_dropped);
    suite_add_tcase(s, tc);
    tc = tcase_create("slow");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slow_subscriber_drops_and_never_holds_the_publisher);
    tcase_add_test(tc, reliable_topic_waits_instead_of_dropping);
    tcase_add_test(tc, reliable_topic_times_out_on_a_stuck_subscriber);
    suite_add_tcase(s, tc);
    tc = tcase_create("nodes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, subscriber_on_another_node);
    tcase_add_test(tc, relay_sends_one_copy_and_a_slow_one_drops_there);
    tcase_add_test(tc, reliable_topic_reaches_another_node_without_drops);
    tcase_add_test(tc, relay_subscribes_again_when_the_service_is_back);
    suite_add_tcase(s, tc);
    tc = tcase_create("input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_input_gives_clear_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
