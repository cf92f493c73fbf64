/* bench/bench_core.c - troupe's cost on top of raw ZeroMQ, in one run.
 *
 * Each comparison runs the raw libzmq baseline and troupe on the same work,
 * alternating rounds so that both see the same machine, and prints the
 * median of each:
 *   BENCH <name> troupe=<v><unit> baseline=<v><unit> ratio=<troupe/baseline>
 *
 *  tell_throughput  one-way tell of 64-byte payloads between two thread
 *                   actors vs PUSH->PULL over inproc between two threads
 *  ask_rtt          ask + reply between a thread and an actor vs a raw
 *                   ping-pong over inproc (lower is better), where the
 *                   scheduler puts the threads; then pinned:
 *  ask_rtt_one_cpu  both threads on one CPU: the CPU cost of a round trip
 *  ask_rtt_two_cpus on two CPUs: dominated by waking the other core
 *  actor_memory     RSS per idle thread actor (1,000 of them) vs per idle
 *                   bare thread
 *  trace_overhead   tell_throughput with a trace recorded (TROUPE_TRACE,
 *                   a file in $TMPDIR, removed after) vs without
 *
 * Usage: bench_core [--quick] [name...]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "troupe.h"
#include "bench_tell.h"
#include "bench_util.h"

#define PAYLOAD 64

static long s_msgs = 2000000; /* per throughput round */
static int s_echo_cpu_then = -1; /* where the asker runs once echo started */
static long s_rtts = 50000;   /* per round-trip round */
static int s_rounds = 5;

static void s_pin(int cpu);

/* ------------------------------------------------------------------ */
/* Raw ZeroMQ baselines                                                 */

typedef struct {
    void *ctx;
    long n;
} raw_arg_t;

static void *
s_raw_sink(void *arg)
{
    raw_arg_t *a = arg;
    void *pull = zmq_socket(a->ctx, ZMQ_PULL);
    bu_zcheck(zmq_connect(pull, "inproc://raw-tput") == 0, "connect");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < a->n; i++)
        bu_zcheck(zmq_msg_recv(&m, pull, 0) >= 0, "recv");
    zmq_msg_close(&m);
    zmq_close(pull);
    return NULL;
}

/* msgs/s, sender and receiver on two threads, default HWM (1000). */
static double
s_raw_throughput(void *ctx)
{
    char buf[PAYLOAD] = {0};
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    bu_zcheck(zmq_bind(push, "inproc://raw-tput") == 0, "bind");
    raw_arg_t a = {ctx, s_msgs};
    pthread_t t;
    pthread_create(&t, NULL, s_raw_sink, &a);
    double t0 = bu_now();
    for (long i = 0; i < s_msgs; i++)
        bu_zcheck(zmq_send(push, buf, sizeof buf, 0) == PAYLOAD, "send");
    pthread_join(t, NULL);
    double dt = bu_now() - t0;
    zmq_close(push);
    return (double)s_msgs / dt;
}

static void *
s_raw_echo(void *arg)
{
    raw_arg_t *a = arg;
    void *s = zmq_socket(a->ctx, ZMQ_PAIR);
    bu_zcheck(zmq_connect(s, "inproc://raw-rtt") == 0, "connect");
    char buf[256];
    for (long i = 0; i < a->n; i++) {
        int n = zmq_recv(s, buf, sizeof buf, 0);
        bu_zcheck(n >= 0 && zmq_send(s, buf, (size_t)n, 0) == n, "echo");
    }
    zmq_close(s);
    return NULL;
}

/* Microseconds per round trip. */
static double
s_raw_rtt(void *ctx)
{
    char buf[PAYLOAD] = {0}, in[256];
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    bu_zcheck(zmq_bind(s, "inproc://raw-rtt") == 0, "bind");
    raw_arg_t a = {ctx, s_rtts};
    pthread_t t;
    pthread_create(&t, NULL, s_raw_echo, &a);
    s_pin(s_echo_cpu_then);
    double t0 = bu_now();
    for (long i = 0; i < s_rtts; i++) {
        bu_zcheck(zmq_send(s, buf, sizeof buf, 0) == PAYLOAD, "send");
        bu_zcheck(zmq_recv(s, in, sizeof in, 0) == PAYLOAD, "recv");
    }
    double dt = bu_now() - t0;
    pthread_join(t, NULL);
    zmq_close(s);
    return dt / (double)s_rtts * 1e6;
}

/* ------------------------------------------------------------------ */
/* troupe                                                               */

static int
s_echo_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    size_t len;
    const void *p = tr_msg_payload(msg, &len);
    tr_reader_t r;
    const void *data;
    size_t dlen;
    tr_reader_init_bytes(&r, p, len);
    tr_msg_t *reply;
    int rc = tr_read_bin(&r, &data, &dlen);
    if (rc == 0 && (rc = tr_msg_create(&reply, "echo")) == 0) {
        if ((rc = tr_msg_add_bin(reply, data, dlen)) != 0 ||
            (rc = tr_reply(self, msg, &reply)) != 0)
            tr_msg_destroy(&reply);
    }
    return rc;
}

TR_BEHAVIOUR(bench_echo, .handle = s_echo_handle);

static double
s_troupe_rtt(void *arg)
{
    static const char payload[PAYLOAD - 2];
    tr_node_t *node = arg;
    tr_id_t echo;
    bu_check(tr_spawn(node, "bench_echo", NULL, &echo), "spawn echo");
    s_pin(s_echo_cpu_then);
    double t0 = bu_now();
    for (long i = 0; i < s_rtts; i++) {
        tr_msg_t *m, *reply = NULL;
        tr_future_t *f;
        bu_check(tr_msg_create(&m, "ping"), "msg");
        bu_check(tr_msg_add_bin(m, payload, sizeof payload), "msg");
        bu_check(tr_ask_id(node, echo, &m, TR_DEFAULT, &f), "ask");
        bu_check(tr_future_get(f, TR_FOREVER, &reply), "reply");
        tr_msg_destroy(&reply);
        tr_future_destroy(&f);
    }
    double dt = bu_now() - t0;
    bu_check(tr_stop(node, echo, TR_DEFAULT), "stop");
    return dt / (double)s_rtts * 1e6;
}

/* ------------------------------------------------------------------ */
/* Placement                                                            */

/* Pin the calling thread to one CPU, or let it run anywhere (cpu < 0).
 * Threads inherit their creator's mask: a thread (or actor) started while
 * the caller is pinned to a CPU stays there. */
static void
s_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++)
        if (cpu < 0 || i == cpu)
            CPU_SET((int)i, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("bench_core: sched_setaffinity");
}

typedef double (*rtt_fn)(void *arg);

/* Round trips with the echo side started on echo_cpu and the asking side
 * then run on ask_cpu (-1 and -1: unpinned). */
static double
s_rtt_placed(rtt_fn fn, void *arg, int echo_cpu, int ask_cpu)
{
    s_pin(echo_cpu);
    s_echo_cpu_then = ask_cpu;
    double us = fn(arg);
    s_pin(-1);
    return us;
}

/* ------------------------------------------------------------------ */
/* Memory per idle actor                                                */

static long
s_rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static int
s_idle_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(bench_idle, .handle = s_idle_handle);

static pthread_mutex_t s_idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_idle_cv = PTHREAD_COND_INITIALIZER;
static bool s_idle_release;

static void *
s_idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_idle_mu);
    while (!s_idle_release)
        pthread_cond_wait(&s_idle_cv, &s_idle_mu);
    pthread_mutex_unlock(&s_idle_mu);
    return NULL;
}

static void
s_memory(int n)
{
    long before = s_rss_kib();
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, s_idle_thread, NULL) != 0) {
            fprintf(stderr, "bench_core: pthread_create failed\n");
            exit(1);
        }
    double bare = (double)(s_rss_kib() - before) / n;
    pthread_mutex_lock(&s_idle_mu);
    s_idle_release = true;
    pthread_cond_broadcast(&s_idle_cv);
    pthread_mutex_unlock(&s_idle_mu);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);

    tr_node_t *node;
    bu_check(tr_node_create(&node, NULL), "node");
    tr_id_t one;
    bu_check(tr_spawn(node, "bench_idle", NULL, &one), "spawn");
    before = s_rss_kib();
    bu_check(tr_spawn_n(node, "bench_idle", NULL, n, NULL), "spawn_n");
    double actor = (double)(s_rss_kib() - before) / n;
    bu_check(tr_node_destroy(&node), "destroy");
    printf("BENCH actor_memory troupe=%.1fKiB baseline=%.1fKiB ratio=%.2f\n",
           actor, bare, bare > 0 ? actor / bare : 0.0);
}

/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_msgs = 200000;
            s_rtts = 5000;
            s_rounds = 3;
        }
    }
    double tr[16], raw[16];

    if (bu_wanted(argc, argv, "tell_throughput")) {
        void *ctx = zmq_ctx_new();
        tr_node_t *node;
        bu_check(tr_node_create(&node, NULL), "node");
        for (int r = 0; r < s_rounds; r++) {
            raw[r] = s_raw_throughput(ctx);
            tr[r] = bt_throughput(node, TR_THREAD, s_msgs);
        }
        bu_check(tr_node_destroy(&node), "destroy");
        zmq_ctx_term(ctx);
        double t = bu_median(tr, s_rounds), b = bu_median(raw, s_rounds);
        printf("BENCH tell_throughput troupe=%.0fmsg/s baseline=%.0fmsg/s "
               "ratio=%.2f\n", t, b, t / b);
        fflush(stdout);
    }
    static const struct {
        const char *name;
        int echo_cpu, ask_cpu;
    } placements[] = {{"ask_rtt", -1, -1},
                      {"ask_rtt_one_cpu", 0, 0},
                      {"ask_rtt_two_cpus", 1, 0}};
    for (size_t p = 0; p < sizeof placements / sizeof placements[0]; p++) {
        if (!bu_wanted(argc, argv, placements[p].name))
            continue;
        if (placements[p].echo_cpu >= sysconf(_SC_NPROCESSORS_ONLN))
            continue;
        void *ctx = zmq_ctx_new();
        tr_node_t *node;
        bu_check(tr_node_create(&node, NULL), "node");
        for (int r = 0; r < s_rounds; r++) {
            raw[r] = s_rtt_placed(s_raw_rtt, ctx, placements[p].echo_cpu,
                                  placements[p].ask_cpu);
            tr[r] = s_rtt_placed(s_troupe_rtt, node, placements[p].echo_cpu,
                                 placements[p].ask_cpu);
        }
        bu_check(tr_node_destroy(&node), "destroy");
        zmq_ctx_term(ctx);
        double t = bu_median(tr, s_rounds), b = bu_median(raw, s_rounds);
        printf("BENCH %s troupe=%.2fus baseline=%.2fus ratio=%.2f\n",
               placements[p].name, t, b, t / b);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "trace_overhead")) {
        char path[512];
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/troupe-bench-%ld.trace",
                 tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
        tr_node_t *plain, *traced;
        bu_check(tr_node_create(&plain, NULL), "node");
        bu_check(tr_node_create(&traced, &(tr_node_opts_t){.trace = path}),
                 "traced node");
        long msgs = s_msgs / 8; /* two 64-byte records a message */
        for (int r = 0; r < s_rounds; r++) {
            raw[r] = bt_throughput(plain, TR_THREAD, msgs);
            tr[r] = bt_throughput(traced, TR_THREAD, msgs);
        }
        bu_check(tr_node_destroy(&plain), "destroy");
        bu_check(tr_node_destroy(&traced), "destroy");
        unlink(path);
        double t = bu_median(tr, s_rounds), b = bu_median(raw, s_rounds);
        printf("BENCH trace_overhead troupe=%.0fmsg/s baseline=%.0fmsg/s "
               "ratio=%.2f\n", t, b, t / b);
        printf("# trace_overhead: higher is better; tell throughput with "
               "every send and receive recorded vs the same without a "
               "trace (%ld messages a round, median of %d)\n", msgs,
               s_rounds);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "actor_memory"))
        s_memory(1000);
    return 0;
}
