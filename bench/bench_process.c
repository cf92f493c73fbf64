/* bench/bench_process.c - process actors against their floors, in one run.
 *
 *  process_tell_throughput  one-way tell of 64-byte payloads from one
 *                           process actor to another (ipc) vs raw PUSH->PULL
 *                           over ipc between two processes
 *  restart_p50 / _p99       SIGKILL of a supervised process worker until it
 *                           answers a call again (200 kills) vs starting a
 *                           bare process and one round trip with it over ipc
 *  spawn_latency            tr_spawn of a process actor + first round trip
 *                           vs Python's multiprocessing.Process().start() +
 *                           first round trip over a Pipe (bench/py_spawn.py)
 *
 * Usage: bench_process [--quick] [name...]
 * The program re-executes itself: as a child actor (tr_init) and as the raw
 * baseline's peer (--raw-sink, --raw-echo).
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "troupe.h"
#include "bench_tell.h"
#include "bench_util.h"

#define PAYLOAD 64

extern char **environ;

static long s_msgs = 1000000;
static int s_rounds = 9;
static int s_kills = 200;
static int s_spawns = 20;

static pid_t
s_spawn_self(char *const argv[])
{
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "bench_process: posix_spawn: %s\n", strerror(rc));
        exit(1);
    }
    return pid;
}

/* ------------------------------------------------------------------ */
/* Raw peers (this program, re-executed)                                */

static int
s_raw_sink(const char *ep, long n)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    bu_zcheck(zmq_connect(pull, ep) == 0, "connect");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < n; i++)
        bu_zcheck(zmq_msg_recv(&m, pull, 0) >= 0, "recv");
    zmq_msg_close(&m);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    return 0;
}

static int
s_raw_echo(const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    bu_zcheck(zmq_connect(s, ep) == 0, "connect");
    char buf[256];
    int n = zmq_recv(s, buf, sizeof buf, 0);
    bu_zcheck(n >= 0 && zmq_send(s, buf, (size_t)n, 0) == n, "echo");
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* msgs/s from this process to a raw sink process over ipc. */
static double
s_raw_throughput(void)
{
    char ep[128], n[32];
    snprintf(ep, sizeof ep, "ipc:///tmp/troupe-bench-%d.ipc", (int)getpid());
    snprintf(n, sizeof n, "%ld", s_msgs);
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    bu_zcheck(zmq_bind(push, ep) == 0, "bind");
    char *argv[] = {"bench_process", "--raw-sink", ep, n, NULL};
    pid_t pid = s_spawn_self(argv);
    char buf[PAYLOAD] = {0};
    double t0 = bu_now();
    for (long i = 0; i < s_msgs; i++)
        bu_zcheck(zmq_send(push, buf, sizeof buf, 0) == PAYLOAD, "send");
    int status;
    waitpid(pid, &status, 0);
    double dt = bu_now() - t0;
    zmq_close(push);
    zmq_ctx_term(ctx);
    unlink(ep + 6);
    return (double)s_msgs / dt;
}

/* ms to start a bare process and make one round trip with it. */
static double
s_raw_start(void *ctx)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/troupe-bench-e%d.ipc", (int)getpid());
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    bu_zcheck(zmq_bind(s, ep) == 0, "bind");
    char *argv[] = {"bench_process", "--raw-echo", ep, NULL};
    char buf[PAYLOAD] = {0}, in[256];
    double t0 = bu_now();
    pid_t pid = s_spawn_self(argv);
    bu_zcheck(zmq_send(s, buf, sizeof buf, 0) == PAYLOAD, "send");
    bu_zcheck(zmq_recv(s, in, sizeof in, 0) == PAYLOAD, "recv");
    double ms = (bu_now() - t0) * 1e3;
    waitpid(pid, NULL, 0);
    zmq_close(s);
    unlink(ep + 6);
    return ms;
}

/* ------------------------------------------------------------------ */
/* Actors                                                               */

/* echo: answers "pid" with its pid. */
static int
s_echo_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "pid"))
        return TR_EUNHANDLED;
    tr_msg_t *r = NULL;
    int rc = tr_msg_create(&r, "pid");
    if (rc == 0 && (rc = tr_msg_add_int(r, getpid())) == 0)
        rc = tr_reply(self, msg, &r);
    tr_msg_destroy(&r);
    return rc;
}

TR_BEHAVIOUR(bp_echo, .handle = s_echo_handle);

/* The pid of whoever answers "pid" under name (waits across restarts). */
static long
s_pid_of(tr_node_t *node, const char *name)
{
    for (;;) {
        tr_msg_t *m = NULL, *r = NULL;
        bu_check(tr_msg_create(&m, "pid"), "msg");
        int rc = tr_call(node, name, &m, 5000, &r);
        tr_msg_destroy(&m);
        if (rc == TR_EDEAD || rc == TR_ENOENT)
            continue; /* asked the incarnation that was just killed */
        bu_check(rc, "call pid");
        tr_reader_t rd;
        int64_t pid;
        tr_reader_init(&rd, r);
        bu_check(tr_read_int(&rd, &pid), "read pid");
        tr_msg_destroy(&r);
        return (long)pid;
    }
}

static void
s_restart(void)
{
    tr_node_t *node;
    bu_check(tr_node_create(&node, NULL), "node");
    tr_child_spec_t spec = {.id = "echo",
                            .behaviour = "bp_echo",
                            .spawn = {.name = "echo", .mode = TR_PROCESS}};
    tr_sup_opts_t so = {.max_restarts = s_kills + 10, .period_ms = 1000};
    bu_check(tr_sup_start(node, &so, &spec, 1, NULL), "sup");
    double *t = calloc((size_t)s_kills, sizeof *t);
    long pid = s_pid_of(node, "echo");
    for (int i = 0; i < s_kills; i++) {
        double t0 = bu_now();
        kill((pid_t)pid, SIGKILL);
        long next;
        while ((next = s_pid_of(node, "echo")) == pid)
            ; /* the old one answered before it died */
        t[i] = (bu_now() - t0) * 1e3;
        pid = next;
    }
    double raw[32];
    int nraw = s_kills < 32 ? s_kills : 32;
    void *ctx = zmq_ctx_new();
    for (int i = 0; i < nraw; i++)
        raw[i] = s_raw_start(ctx);
    zmq_ctx_term(ctx);
    bu_check(tr_node_destroy(&node), "destroy");
    double p50 = bu_pct(t, s_kills, 0.5), p99 = bu_pct(t, s_kills, 0.99);
    double r50 = bu_pct(raw, nraw, 0.5), r99 = bu_pct(raw, nraw, 0.99);
    printf("BENCH restart_p50 troupe=%.2fms baseline=%.2fms ratio=%.2f\n",
           p50, r50, p50 / r50);
    printf("BENCH restart_p99 troupe=%.2fms baseline=%.2fms ratio=%.2f\n",
           p99, r99, p99 / r99);
    printf("# restart: SIGKILL to answering again, %d kills; baseline: start "
           "a bare process + one ipc round trip\n", s_kills);
    free(t);
}

/* Python's figure: the median ms printed by bench/py_spawn.py, or < 0. */
static double
s_python_spawn(const char *self_dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "python3 '%s/py_spawn.py' %d 2>/dev/null",
             self_dir, s_spawns);
    FILE *p = popen(cmd, "r");
    double ms = -1;
    if (p != NULL) {
        if (fscanf(p, "%lf", &ms) != 1)
            ms = -1;
        pclose(p);
    }
    return ms;
}

static void
s_spawn_latency(const char *self_dir)
{
    tr_node_t *node;
    bu_check(tr_node_create(&node, NULL), "node");
    double *t = calloc((size_t)s_spawns, sizeof *t);
    for (int i = 0; i < s_spawns; i++) {
        tr_id_t id;
        double t0 = bu_now();
        bu_check(tr_spawn(node, "bp_echo",
                         &(tr_spawn_opts_t){.mode = TR_PROCESS}, &id),
                "spawn");
        tr_msg_t *m = NULL, *r = NULL;
        bu_check(tr_msg_create(&m, "pid"), "msg");
        tr_future_t *f;
        bu_check(tr_ask_id(node, id, &m, 5000, &f), "ask");
        bu_check(tr_future_get(f, TR_FOREVER, &r), "reply");
        t[i] = (bu_now() - t0) * 1e3;
        tr_future_destroy(&f);
        tr_msg_destroy(&r);
        bu_check(tr_stop(node, id, TR_DEFAULT), "stop");
    }
    bu_check(tr_node_destroy(&node), "destroy");
    double ours = bu_pct(t, s_spawns, 0.5);
    double py = s_python_spawn(self_dir);
    if (py > 0)
        printf("BENCH spawn_latency troupe=%.2fms baseline=%.2fms "
               "ratio=%.2f\n", ours, py, ours / py);
    else
        printf("# spawn_latency troupe=%.2fms: python3 not found, no "
               "baseline\n", ours);
    free(t);
}

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv);
    if (argc == 4 && strcmp(argv[1], "--raw-sink") == 0)
        return s_raw_sink(argv[2], atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "--raw-echo") == 0)
        return s_raw_echo(argv[2]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_msgs = 200000;
            s_rounds = 1;
            s_kills = 30;
            s_spawns = 5;
        }
    }
    /* bench/py_spawn.py sits next to this file in the source tree. */
    const char *src = getenv("TROUPE_BENCH_DIR");
    if (src == NULL)
        src = "bench";

    if (bu_wanted(argc, argv, "process_tell_throughput")) {
        tr_node_t *node;
        bu_check(tr_node_create(&node, NULL), "node");
        /* Rounds alternate which side goes first, so that a machine
         * getting slower or faster over the run favours neither. */
        double tr[16], raw[16];
        for (int r = 0; r < s_rounds; r++) {
            if (r % 2 == 0) {
                raw[r] = s_raw_throughput();
                tr[r] = bt_throughput(node, TR_PROCESS, s_msgs);
            } else {
                tr[r] = bt_throughput(node, TR_PROCESS, s_msgs);
                raw[r] = s_raw_throughput();
            }
        }
        bu_check(tr_node_destroy(&node), "destroy");
        double t = bu_pct(tr, s_rounds, 0.5), b = bu_pct(raw, s_rounds, 0.5);
        printf("BENCH process_tell_throughput troupe=%.0fmsg/s "
               "baseline=%.0fmsg/s ratio=%.2f\n", t, b, t / b);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "restart_p50") ||
        bu_wanted(argc, argv, "restart_p99")) {
        s_restart();
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "spawn_latency"))
        s_spawn_latency(src);
    return 0;
}
