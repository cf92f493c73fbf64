/* examples/pubsub.c - a ticker publishes, a fast and a slow subscriber
 * listen: the slow one drops ticks, counted, and holds nobody back.
 *
 * ZeroMQ's PUB/SUB does this with a socket pair: PUB never blocks, and a
 * SUB that falls behind loses messages past its high-water mark, without
 * anyone counting them. Python's answer is a queue per subscriber:
 *     subs = [queue.Queue(maxsize=100) for _ in range(2)]
 *     for tick in range(2000):                 # the publisher
 *         for q in subs:
 *             try: q.put_nowait(tick)
 *             except queue.Full: dropped[q] += 1   # and a lock for that
 * Here the queue is the subscriber's own mailbox (its mailbox_hwm), the
 * topic does the put_nowait for each subscription from the publisher's
 * thread, and the counts are kept by troupe: tr_sub_stats says published
 * = delivered + dropped per subscriber. The dropped ticks are also logged
 * (a WARN line a second at most, on stderr). A topic made with
 * .reliable = true would make the ticker wait instead of dropping.
 *
 * The ticker publishes 2000 ticks as fast as it can and is done in a few
 * milliseconds, while "slow" takes 1 ms a tick. Nothing is shared: each
 * subscriber counts in its own state. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "troupe.h"

#define TICKS 2000

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "pubsub: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

static int
s_reply_int(tr_actor_t *self, const tr_msg_t *req, int64_t v)
{
    tr_msg_t *m;
    int rc = tr_msg_create(&m, "ok");
    if (rc == 0 && (rc = tr_msg_add_int(m, v)) == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc;
}

/* A subscriber: counts "tick"s; "count" answers how many. The slow one
 * (spawned with args "slow") works 1 ms on each. */
static int
s_sub_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    ((int64_t *)state)[1] = tr_msg_is(args, "slow");
    return 0;
}

static int
s_sub_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    int64_t *st = state; /* [0] ticks counted, [1] slow */
    if (tr_msg_is(msg, "count"))
        return s_reply_int(self, msg, st[0]);
    st[0]++;
    if (st[1])
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return 0;
}
TR_BEHAVIOUR(subscriber, .state_size = 2 * sizeof(int64_t),
             .init = s_sub_init, .handle = s_sub_handle);

/* The ticker declares the topic "ticks" on its node. "run" publishes
 * TICKS ticks; "count" [id] asks subscriber id for its count. That ask
 * goes the way its ticks went (one sender, one receiver: in order), so
 * the answer counts every tick delivered. */
static int
s_ticker_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)args;
    return tr_topic_create(tr_actor_node(self), "ticks", NULL, state);
}

static int
s_ticker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    tr_topic_t **topic = state;
    tr_node_t *node = tr_actor_node(self);
    int rc = 0;
    if (tr_msg_is(msg, "run")) {
        for (int64_t i = 0; i < TICKS && rc == 0; i++) {
            tr_msg_t *m;
            if ((rc = tr_msg_create(&m, "tick")) == 0 &&
                (rc = tr_msg_add_int(m, i)) == 0)
                rc = tr_publish(*topic, &m); /* never waits: drops */
            tr_msg_destroy(&m);
        }
        return rc ? rc : s_reply_int(self, msg, TICKS);
    }
    tr_reader_t r;
    int64_t id = 0;
    tr_msg_t *ask, *reply = NULL;
    tr_reader_init(&r, msg);
    if ((rc = tr_read_int(&r, &id)) == 0 &&
        (rc = tr_msg_create(&ask, "count")) == 0)
        rc = tr_call_id(node, (tr_id_t)id, &ask, TR_DEFAULT, &reply);
    if (rc == 0) {
        tr_reader_init(&r, reply);
        rc = tr_read_int(&r, &id);
        tr_msg_destroy(&reply);
    }
    return rc ? rc : s_reply_int(self, msg, id);
}

static void
s_ticker_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_topic_destroy((tr_topic_t **)state);
}
TR_BEHAVIOUR(ticker, .state_size = sizeof(tr_topic_t *),
             .init = s_ticker_init, .handle = s_ticker_handle,
             .terminate = s_ticker_terminate);

static int64_t
s_call(tr_node_t *node, const char *to, const char *tag, int64_t arg)
{
    tr_msg_t *m, *reply = NULL;
    int64_t v = 0;
    s_check(tr_msg_create(&m, tag), "message");
    s_check(tr_msg_add_int(m, arg), "message");
    s_check(tr_call(node, to, &m, 10000, &reply), tag);
    tr_reader_t r;
    tr_reader_init(&r, reply);
    s_check(tr_read_int(&r, &v), "reply");
    tr_msg_destroy(&reply);
    return v;
}

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "init");
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "node");
    tr_id_t fast, slow;
    tr_msg_t *slow_args;
    s_check(tr_msg_create(&slow_args, "slow"), "message");
    s_check(tr_spawn(node, "ticker", &(tr_spawn_opts_t){.name = "ticker"},
                     NULL), "spawn ticker");
    /* fast keeps up, and has room for the whole burst */
    s_check(tr_spawn(node, "subscriber",
                     &(tr_spawn_opts_t){.mailbox_hwm = TICKS}, &fast),
            "spawn fast");
    s_check(tr_spawn(node, "subscriber",
                     &(tr_spawn_opts_t){.mailbox_hwm = 100,
                                        .args = slow_args},
                     &slow),
            "spawn slow");
    tr_msg_destroy(&slow_args);
    const tr_sub_opts_t opts = {.tag = "tick"};
    s_check(tr_subscribe(node, fast, "ticks", &opts), "subscribe fast");
    s_check(tr_subscribe(node, slow, "ticks", &opts), "subscribe slow");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t n = s_call(node, "ticker", "run", 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("ticker: published %lld ticks in %.1f ms\n", (long long)n,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    bool exact = true;
    const char *names[2] = {"fast", "slow"};
    tr_id_t ids[2] = {fast, slow};
    for (int i = 0; i < 2; i++) {
        tr_sub_stats_t st;
        int64_t got = s_call(node, "ticker", "count", (int64_t)ids[i]);
        s_check(tr_sub_stats(node, ids[i], "ticks", &opts, &st), "stats");
        printf("%s: received %lld, delivered %llu, dropped %llu\n", names[i],
               (long long)got, (unsigned long long)st.delivered,
               (unsigned long long)st.dropped);
        exact = exact && st.published == (uint64_t)n &&
                st.delivered + st.dropped == st.published &&
                st.delivered == (uint64_t)got;
    }
    printf("published = delivered + dropped = received + dropped: %s\n",
           exact ? "yes" : "no");
    s_check(tr_node_destroy(&node), "destroy");
    return exact ? 0 : 1;
}
