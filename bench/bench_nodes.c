/* bench/bench_nodes.c - two nodes over tcp on 127.0.0.1, in one process.
 *
 *   node_ask_rtt_curve  an ask and its reply between nodes, CURVE on,
 *                       vs raw ZeroMQ REQ/REP over tcp without CURVE
 *   node_ask_rtt_plain  the same with troupe in plain text
 *   node_tell_rate      tells from one node's thread to an actor of the
 *                       other (plain text; the last one asked, so all
 *                       arrived) vs raw PUSH/PULL over tcp
 *
 * Round trips are microseconds per ask (lower is better, so the ratio is
 * troupe's cost: > 1 slower); the rate is messages a second. Median of
 * five rounds. --quick: fewer messages. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"

static int
s_echo(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    uint64_t *count = state;
    if (tr_msg_is(msg, "n")) {
        (*count)++;
        return 0;
    }
    if (tr_msg_is(msg, "count")) {
        tr_msg_t *m;
        int rc = tr_msg_create(&m, "count");
        if (rc == 0 && (rc = tr_msg_add_uint(m, *count)) == 0)
            rc = tr_reply(self, msg, &m);
        tr_msg_destroy(&m);
        return rc;
    }
    tr_msg_t *m;
    int rc = tr_msg_create(&m, "pong");
    if (rc == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    return rc;
}
TR_BEHAVIOUR(bn_echo, .state_size = sizeof(uint64_t), .handle = s_echo);

static char s_dir[64];

/* Two connected nodes, a and b, with bn_echo "echo" on b. */
static void
s_pair(bool curve, tr_node_t **a, tr_node_t **b, tr_id_t *echo)
{
    tr_node_opts_t o = {.listen = "tcp://127.0.0.1:*",
                        .insecure_plaintext = !curve,
                        .no_control = true};
    char key[2][96], cluster[96];
    if (curve) {
        snprintf(s_dir, sizeof s_dir, "/tmp/troupe-bench-XXXXXX");
        bu_zcheck(mkdtemp(s_dir) != NULL, "mkdtemp");
        snprintf(cluster, sizeof cluster, "%s/cluster", s_dir);
        FILE *cf = fopen(cluster, "w");
        for (int i = 0; i < 2; i++) {
            char pub[41], sec[41];
            bu_zcheck(zmq_curve_keypair(pub, sec) == 0, "keypair");
            snprintf(key[i], sizeof key[i], "%s/%d.key", s_dir, i);
            FILE *f = fopen(key[i], "w");
            fprintf(f, "%s\n", sec);
            fclose(f);
            chmod(key[i], 0600);
            fprintf(cf, "n%d %s\n", i, pub);
        }
        fclose(cf);
        o.cluster_file = cluster;
    }
    o.name = "b";
    o.key_file = key[0];
    bu_check(tr_node_create(b, &o), "node b");
    char ep[128];
    bu_check(tr_node_endpoint(*b, ep, sizeof ep), "endpoint");
    if (curve) {
        /* a needs b's key by its endpoint: a line of its own */
        FILE *cf = fopen(cluster, "r");
        char lines[2][128];
        bu_zcheck(fgets(lines[0], 128, cf) && fgets(lines[1], 128, cf),
                  "cluster");
        fclose(cf);
        lines[0][strcspn(lines[0], "\n")] = '\0';
        snprintf(cluster, sizeof cluster, "%s/cluster-a", s_dir);
        cf = fopen(cluster, "w");
        fprintf(cf, "%s %s\n%s", lines[0], ep, lines[1]);
        fclose(cf);
    }
    o.name = "a";
    o.key_file = key[1];
    o.seeds = ep;
    bu_check(tr_node_create(a, &o), "node a");
    bu_check(tr_node_await(*a, "b", 10000), "connect");
    bu_check(tr_spawn(*b, "bn_echo", &(tr_spawn_opts_t){.name = "echo"},
                      echo),
             "spawn");
}

static void
s_unpair(tr_node_t **a, tr_node_t **b)
{
    tr_node_destroy(a);
    tr_node_destroy(b);
    if (s_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s_dir);
        s_dir[0] = '\0';
    }
}

/* Microseconds per ask. */
static double
s_troupe_rtt(bool curve, int n)
{
    tr_node_t *a, *b;
    tr_id_t echo;
    s_pair(curve, &a, &b, &echo);
    double v[5];
    for (int round = 0; round < 5; round++) {
        double t0 = bu_now();
        for (int i = 0; i < n; i++) {
            tr_msg_t *m, *reply = NULL;
            bu_check(tr_msg_create(&m, "ping"), "msg");
            bu_check(tr_call_id(a, echo, &m, 5000, &reply), "call");
            tr_msg_destroy(&reply);
        }
        v[round] = (bu_now() - t0) / n * 1e6;
    }
    s_unpair(&a, &b);
    return bu_median(v, 5);
}

static void *
s_rep_main(void *arg)
{
    void *rep = arg;
    char buf[256];
    for (;;) {
        int got = zmq_recv(rep, buf, sizeof buf, 0);
        if (got < 0)
            break;
        if (zmq_send(rep, buf, (size_t)(got < 256 ? got : 256), 0) < 0)
            break;
    }
    return NULL;
}

static double
s_zmq_rtt(int n)
{
    void *ctx = zmq_ctx_new();
    void *rep = zmq_socket(ctx, ZMQ_REP), *req = zmq_socket(ctx, ZMQ_REQ);
    char ep[64];
    size_t len = sizeof ep;
    bu_zcheck(zmq_bind(rep, "tcp://127.0.0.1:*") == 0, "bind");
    zmq_getsockopt(rep, ZMQ_LAST_ENDPOINT, ep, &len);
    bu_zcheck(zmq_connect(req, ep) == 0, "connect");
    pthread_t t;
    pthread_create(&t, NULL, s_rep_main, rep);
    /* a frame the size of troupe's ping (header, tag) */
    char msg[46] = "ping";
    double v[5];
    for (int round = 0; round < 5; round++) {
        double t0 = bu_now();
        for (int i = 0; i < n; i++) {
            char buf[64];
            bu_zcheck(zmq_send(req, msg, sizeof msg, 0) >= 0, "send");
            bu_zcheck(zmq_recv(req, buf, sizeof buf, 0) >= 0, "recv");
        }
        v[round] = (bu_now() - t0) / n * 1e6;
    }
    zmq_close(req);
    zmq_ctx_shutdown(ctx); /* ends the REP thread's recv */
    pthread_join(t, NULL);
    zmq_close(rep);
    zmq_ctx_term(ctx);
    return bu_median(v, 5);
}

/* Messages a second from a's main thread to echo on b. */
static double
s_troupe_rate(int n)
{
    tr_node_t *a, *b;
    tr_id_t echo;
    s_pair(false, &a, &b, &echo);
    double v[5];
    uint64_t expect = 0;
    for (int round = 0; round < 5; round++) {
        double t0 = bu_now();
        for (int i = 0; i < n; i++) {
            tr_msg_t *m;
            bu_check(tr_msg_create(&m, "n"), "msg");
            bu_check(tr_tell_id(a, echo, &m), "tell");
        }
        expect += (uint64_t)n;
        tr_msg_t *m, *reply = NULL;
        bu_check(tr_msg_create(&m, "count"), "msg");
        bu_check(tr_call_id(a, echo, &m, 60000, &reply), "count");
        tr_reader_t r;
        uint64_t got = 0;
        tr_reader_init(&r, reply);
        bu_check(tr_read_uint(&r, &got), "read");
        tr_msg_destroy(&reply);
        if (got != expect) {
            fprintf(stderr, "bench_nodes: %llu of %llu tells arrived\n",
                    (unsigned long long)got, (unsigned long long)expect);
            exit(1);
        }
        v[round] = n / (bu_now() - t0);
    }
    s_unpair(&a, &b);
    return bu_median(v, 5);
}

static void *
s_pull_main(void *arg)
{
    void **a = arg;
    int n = *(int *)a[1];
    char buf[64];
    for (int i = 0; i < n; i++)
        if (zmq_recv(a[0], buf, sizeof buf, 0) < 0)
            break;
    return NULL;
}

static double
s_zmq_rate(int n)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
    char ep[64];
    size_t len = sizeof ep;
    bu_zcheck(zmq_bind(pull, "tcp://127.0.0.1:*") == 0, "bind");
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, ep, &len);
    bu_zcheck(zmq_connect(push, ep) == 0, "connect");
    char msg[42] = "n";
    double v[5];
    for (int round = 0; round < 5; round++) {
        pthread_t t;
        void *args[2] = {pull, &n};
        double t0 = bu_now();
        pthread_create(&t, NULL, s_pull_main, args);
        for (int i = 0; i < n; i++)
            bu_zcheck(zmq_send(push, msg, sizeof msg, 0) >= 0, "send");
        pthread_join(t, NULL);
        v[round] = n / (bu_now() - t0);
    }
    zmq_close(push);
    zmq_close(pull);
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
    for (int i = 1; i < argc; i++)
        quick |= strcmp(argv[i], "--quick") == 0;
    int n = quick ? 2000 : 20000;
    if (bu_wanted(argc, argv, "node_ask_rtt_curve") ||
        bu_wanted(argc, argv, "node_ask_rtt_plain")) {
        double raw = s_zmq_rtt(n);
        if (bu_wanted(argc, argv, "node_ask_rtt_curve")) {
            double t = s_troupe_rtt(true, n);
            printf("BENCH node_ask_rtt_curve troupe=%.1fus baseline=%.1fus "
                   "ratio=%.2f\n", t, raw, t / raw);
            printf("# baseline: ZeroMQ REQ/REP over tcp, no CURVE\n");
        }
        if (bu_wanted(argc, argv, "node_ask_rtt_plain")) {
            double t = s_troupe_rtt(false, n);
            printf("BENCH node_ask_rtt_plain troupe=%.1fus baseline=%.1fus "
                   "ratio=%.2f\n", t, raw, t / raw);
        }
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "node_tell_rate")) {
        int m = quick ? 20000 : 200000;
        double raw = s_zmq_rate(m);
        double t = s_troupe_rate(m);
        printf("BENCH node_tell_rate troupe=%.0fmsg/s baseline=%.0fmsg/s "
               "ratio=%.2f\n", t, raw, t / raw);
        printf("# baseline: ZeroMQ PUSH/PULL over tcp\n");
    }
    return 0;
}
