/* bench/bench_pubsub.c - fan-out of one publisher to K subscribers.
 *
 *   pubsub_fanout  a thread publishes N messages (64-byte payload) to a
 *                  topic with K thread-actor subscribers, vs raw ZeroMQ
 *                  PUB/SUB over inproc with K SUB threads
 *
 * The rate is messages delivered a second (N x K over the time from the
 * first publish until every subscriber has read all N). Queues are
 * large enough on both sides that nothing is dropped, so both move the
 * same messages. Remarks compare the design troupe did not take: a relay
 * actor that receives each publish and fans it out (what a broker or an
 * XPUB/XSUB proxy in the middle costs), and raw ZeroMQ in troupe's own
 * shape (one PUSH per subscriber: what XPUB's one send saves). Median of
 * five rounds. --quick:
 * fewer messages; --subs=K (default 4). */
#include <pthread.h>
#include <stdatomic.h>

#include "bench_util.h"

#define S_PAYLOAD 64
#define S_MAX_SUBS 64

/* ------------------------------------------------------------------ */
/* troupe                                                              */

/* A subscriber: counts what comes; "count" is answered with the count. */
static int
s_sink(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    uint64_t *count = state;
    if (!tr_msg_is_request(msg)) {
        (*count)++;
        return 0;
    }
    tr_msg_t *m;
    int rc = tr_msg_create(&m, "count");
    if (rc == 0 && (rc = tr_msg_add_uint(m, *count)) == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    return rc;
}
TR_BEHAVIOUR(bp_sink, .state_size = sizeof(uint64_t), .handle = s_sink);

/* The design not taken: one actor receives each publish and fans it out
 * to its subscribers with try_tell (ids given in init). */
typedef struct {
    tr_id_t subs[S_MAX_SUBS];
    int n;
} s_relay_t;

static int
s_relay_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    s_relay_t *r = state;
    tr_reader_t rd;
    uint64_t id;
    tr_reader_init(&rd, args);
    while (r->n < S_MAX_SUBS && tr_read_uint(&rd, &id) == 0)
        r->subs[r->n++] = id;
    return 0;
}

static int
s_relay(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_relay_t *r = state;
    size_t plen;
    const void *p = tr_msg_payload(msg, &plen);
    for (int i = 0; i < r->n; i++) {
        tr_msg_t *m;
        int rc = tr_msg_create(&m, "v");
        if (rc == 0)
            rc = tr_msg_add_raw(m, p, plen);
        if (rc == 0)
            rc = tr_try_tell_id(tr_actor_node(self), r->subs[i], &m);
        tr_msg_destroy(&m);
    }
    return 0;
}
TR_BEHAVIOUR(bp_relay, .state_size = sizeof(s_relay_t),
             .init = s_relay_init, .handle = s_relay);

static uint64_t
s_count(tr_node_t *node, tr_id_t id)
{
    tr_msg_t *m, *reply = NULL;
    bu_check(tr_msg_create(&m, "count"), "msg");
    bu_check(tr_call_id(node, id, &m, 60000, &reply), "count");
    tr_reader_t r;
    uint64_t got = 0;
    tr_reader_init(&r, reply);
    bu_check(tr_read_uint(&r, &got), "read");
    tr_msg_destroy(&reply);
    return got;
}

/* Wait until every sink has counted expect (the relay's copies come from
 * its thread, not ours: ask until they are all there). */
static void
s_wait_all(tr_node_t *node, const tr_id_t *subs, int k, uint64_t expect)
{
    for (int i = 0; i < k; i++) {
        uint64_t got;
        double until = bu_now() + 60;
        while ((got = s_count(node, subs[i])) < expect)
            if (bu_now() > until) {
                fprintf(stderr, "bench_pubsub: %llu of %llu arrived\n",
                        (unsigned long long)got, (unsigned long long)expect);
                exit(1);
            }
    }
}

static double s_publish_ns; /* the last run's publish loop, a message */

static double
s_troupe(int n, int k, bool relay)
{
    tr_node_t *node;
    tr_node_opts_t o = {.no_control = true, .mailbox_hwm = n + 1};
    bu_check(tr_node_create(&node, &o), "node");
    tr_id_t subs[S_MAX_SUBS], rel = 0;
    tr_topic_t *topic = NULL;
    bu_check(tr_topic_create(node, "t", NULL, &topic), "topic");
    tr_msg_t *args;
    bu_check(tr_msg_create(&args, "subs"), "msg");
    for (int i = 0; i < k; i++) {
        bu_check(tr_spawn(node, "bp_sink", NULL, &subs[i]), "spawn");
        bu_check(tr_subscribe(node, subs[i], "t", NULL), "subscribe");
        bu_check(tr_msg_add_uint(args, subs[i]), "msg");
    }
    if (relay)
        bu_check(tr_spawn(node, "bp_relay", &(tr_spawn_opts_t){.args = args},
                          &rel),
                 "relay");
    tr_msg_destroy(&args);
    char payload[S_PAYLOAD] = {0};
    double v[5], pv[5];
    for (int round = 0; round < 5; round++) {
        double t0 = bu_now();
        for (int i = 0; i < n; i++) {
            tr_msg_t *m;
            bu_check(tr_msg_create(&m, "v"), "msg");
            bu_check(tr_msg_add_bin(m, payload, sizeof payload), "msg");
            bu_check(relay ? tr_tell_id(node, rel, &m) : tr_publish(topic, &m),
                     "publish");
        }
        pv[round] = (bu_now() - t0) * 1e9 / n;
        s_wait_all(node, subs, k, (uint64_t)n * (uint64_t)(round + 1));
        v[round] = (double)n * k / (bu_now() - t0);
    }
    tr_topic_stats_t st;
    bu_check(tr_topic_stats(topic, &st), "stats");
    if (!relay && st.dropped != 0) {
        fprintf(stderr, "bench_pubsub: %llu dropped\n",
                (unsigned long long)st.dropped);
        exit(1);
    }
    tr_topic_destroy(&topic);
    bu_check(tr_node_destroy(&node), "destroy");
    s_publish_ns = bu_median(pv, 5);
    return bu_median(v, 5);
}

/* ------------------------------------------------------------------ */
/* Raw ZeroMQ                                                          */

typedef struct {
    void *sub;
    int n;
} s_sub_arg_t;

static void *
s_sub_main(void *arg)
{
    s_sub_arg_t *a = arg;
    char buf[S_PAYLOAD + 8];
    for (int i = 0; i < a->n; i++)
        if (zmq_recv(a->sub, buf, sizeof buf, 0) < 0)
            break;
    return NULL;
}

/* Raw ZeroMQ in troupe's shape: one PUSH per subscriber, k sends a
 * message (what XPUB's one send saves, without troupe's costs). */
static double
s_zmq_push(int n, int k)
{
    void *ctx = zmq_ctx_new();
    void *push[S_MAX_SUBS], *pull[S_MAX_SUBS];
    int zero = 0;
    for (int i = 0; i < k; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://bench-push-%d", i);
        pull[i] = zmq_socket(ctx, ZMQ_PULL);
        push[i] = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(pull[i], ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(push[i], ZMQ_SNDHWM, &zero, sizeof zero);
        bu_zcheck(zmq_bind(pull[i], ep) == 0, "bind");
        bu_zcheck(zmq_connect(push[i], ep) == 0, "connect");
    }
    char payload[1 + S_PAYLOAD] = "t";
    double v[5];
    for (int round = 0; round < 5; round++) {
        pthread_t t[S_MAX_SUBS];
        s_sub_arg_t args[S_MAX_SUBS];
        double t0 = bu_now();
        for (int i = 0; i < k; i++) {
            args[i] = (s_sub_arg_t){pull[i], n};
            pthread_create(&t[i], NULL, s_sub_main, &args[i]);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                bu_zcheck(zmq_send(push[j], payload, sizeof payload, 0) >= 0,
                          "send");
        for (int i = 0; i < k; i++)
            pthread_join(t[i], NULL);
        v[round] = (double)n * k / (bu_now() - t0);
    }
    for (int i = 0; i < k; i++) {
        zmq_close(push[i]);
        zmq_close(pull[i]);
    }
    zmq_ctx_term(ctx);
    return bu_median(v, 5);
}

static double
s_zmq(int n, int k)
{
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_XPUB);
    int zero = 0, one = 1;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &zero, sizeof zero); /* no drops */
    zmq_setsockopt(pub, ZMQ_XPUB_VERBOSE, &one, sizeof one);
    bu_zcheck(zmq_bind(pub, "inproc://bench-pubsub") == 0, "bind");
    void *subs[S_MAX_SUBS];
    for (int i = 0; i < k; i++) {
        subs[i] = zmq_socket(ctx, ZMQ_SUB);
        zmq_setsockopt(subs[i], ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(subs[i], ZMQ_SUBSCRIBE, "t", 1);
        bu_zcheck(zmq_connect(subs[i], "inproc://bench-pubsub") == 0,
                  "connect");
    }
    /* XPUB sees each subscription: once all k are in, nothing is lost to
     * a slow joiner */
    char sub[8];
    for (int i = 0; i < k; i++)
        bu_zcheck(zmq_recv(pub, sub, sizeof sub, 0) >= 0, "subscription");
    char payload[1 + S_PAYLOAD] = "t";
    double v[5];
    for (int round = 0; round < 5; round++) {
        pthread_t t[S_MAX_SUBS];
        s_sub_arg_t args[S_MAX_SUBS];
        double t0 = bu_now();
        for (int i = 0; i < k; i++) {
            args[i] = (s_sub_arg_t){subs[i], n};
            pthread_create(&t[i], NULL, s_sub_main, &args[i]);
        }
        for (int i = 0; i < n; i++)
            bu_zcheck(zmq_send(pub, payload, sizeof payload, 0) >= 0, "send");
        for (int i = 0; i < k; i++)
            pthread_join(t[i], NULL);
        v[round] = (double)n * k / (bu_now() - t0);
    }
    for (int i = 0; i < k; i++)
        zmq_close(subs[i]);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return bu_median(v, 5);
}

int
main(int argc, char **argv)
{
    if (tr_init(&argc, &argv) != 0)
        return 1;
    tr_log_set_level(TR_LOG_ERROR);
    bool quick = false;
    int k = 4;
    for (int i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "--quick") == 0;
        if (strncmp(argv[i], "--subs=", 7) == 0)
            k = atoi(argv[i] + 7);
    }
    if (k < 1 || k > S_MAX_SUBS) {
        fprintf(stderr, "bench_pubsub: --subs=1..%d\n", S_MAX_SUBS);
        return 1;
    }
    int n = quick ? 20000 : 200000;
    if (bu_wanted(argc, argv, "pubsub_fanout")) {
        double raw = s_zmq(n, k);
        double t = s_troupe(n, k, false);
        printf("BENCH pubsub_fanout troupe=%.0fmsg/s baseline=%.0fmsg/s "
               "ratio=%.2f\n", t, raw, t / raw);
        printf("# %d subscribers; baseline: ZeroMQ XPUB/SUB over inproc, "
               "one send a message; a publish took %.0fns (%.0fns a copy)\n",
               k, s_publish_ns, s_publish_ns / k);
        fflush(stdout);
        double r = s_troupe(n, k, true);
        printf("# a relay actor in between (publish = tell it, it fans "
               "out): %.0fmsg/s, %.2f of direct fan-out\n", r, r / t);
        double p = s_zmq_push(n, k);
        printf("# raw ZeroMQ, one PUSH per subscriber (k sends a message): "
               "%.0fmsg/s; troupe is %.2f of it, XPUB %.2fx it\n", p, t / p,
               raw / p);
    }
    return 0;
}
