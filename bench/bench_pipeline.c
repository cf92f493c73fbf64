/* bench/bench_pipeline.c - a pipeline of three stages with trivial work
 * (each passes an int on), one worker process each, between a source and
 * a sink on the main thread; items per second, against:
 *
 *  pipeline_zmq_ipc   the same shape in raw libzmq: three stage processes
 *                     joined by PUSH/PULL over ipc, one message per item
 *                     (what a chain of PUSH/PULL sockets is; it has no
 *                     acknowledgements, re-delivery or end-of-stream
 *                     counting, and loses what is queued toward a stage
 *                     that dies)
 *  pipeline_zmq_tcp   the same raw chain over tcp on 127.0.0.1, against
 *                     troupe's stages placed on a second node of this
 *                     process, so its items cross both nodes' gateways
 *                     over tcp
 *  pipeline_python    a chain of multiprocessing.Queue and three
 *                     multiprocessing.Process stages (bench/py_pipeline.py)
 *
 * Usage: bench_pipeline [--quick] [--batch=N] [--window=N] [name...]
 * (--batch, --window: the pipeline's options; 0, the default, is its
 * own default)
 * The program re-executes itself as the troupe pipeline's process workers
 * (tr_init) and as the raw chain's stages (--zmq-stage IN OUT).
 */
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "troupe.h"
#include "bench_util.h"

extern char **environ;

#define STAGES 3

static int s_rounds = 3;
static long s_items = 2000000;
static long s_py_items = 100000;
static const char *s_bench_dir = "bench";
static int s_batch, s_window; /* 0: the pipeline's defaults */

/* ------------------------------------------------------------------ */
/* troupe                                                              */

/* bpl_ident: [x] -> [x], the trivial stage. */
static int
s_ident(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    tr_reader_t r;
    int64_t x;
    tr_reader_init(&r, item);
    int rc = tr_read_int(&r, &x);
    tr_msg_t *m = NULL;
    if (rc == 0 && (rc = tr_msg_create(&m, "x")) == 0 &&
        (rc = tr_msg_add_int(m, x)) == 0)
        rc = tr_pipe_emit(ctx, &m);
    tr_msg_destroy(&m);
    return rc;
}

TR_STAGE(bpl_ident, .fn = s_ident);

typedef struct {
    long n, at, seen;
    int64_t sum;
} s_io_t;

static int
s_next(void *arg, tr_msg_t **item)
{
    s_io_t *io = arg;
    if (io->at == io->n)
        return 1;
    int rc = tr_msg_create(item, "x");
    if (rc == 0 && (rc = tr_msg_add_int(*item, io->at++)) != 0)
        tr_msg_destroy(item);
    return rc;
}

static int
s_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_io_t *io = arg;
    (void)index;
    if (rc != 0)
        return rc;
    tr_reader_t r;
    int64_t x;
    tr_reader_init(&r, result);
    if ((rc = tr_read_int(&r, &x)) != 0)
        return rc;
    io->sum += x;
    io->seen++;
    return 0;
}

/* Items per second through a troupe pipeline of process stages, or of
 * stages on another node (at: its name) over tcp. */
static double
s_troupe(tr_node_t *node, long n, const char *at)
{
    tr_stage_opts_t st[STAGES];
    for (int i = 0; i < STAGES; i++) {
        static char names[STAGES][8];
        snprintf(names[i], sizeof names[i], "s%d", i);
        st[i] = (tr_stage_opts_t){.name = names[i], .stage = "bpl_ident",
                                  .workers = 1,
                                  .place = at ? TR_PLACE_NODE
                                              : TR_PLACE_PROCESS,
                                  .node = at};
    }
    tr_pipeline_opts_t o = {.stages = st, .nstages = STAGES,
                            .batch = s_batch, .window = s_window};
    tr_pipeline_t *p = NULL;
    bu_check(tr_pipeline_start(node, &o, &p), "pipeline start");
    /* The workers are up: a pool's start returns once they are. */
    s_io_t io = {.n = n};
    double t0 = bu_now();
    bu_check(tr_pipeline_run(p, s_next, &io, s_out, &io), "run");
    double dt = bu_now() - t0;
    bu_check(tr_pipeline_stop(&p, TR_DEFAULT), "stop");
    if (io.seen != n || io.sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "bench_pipeline: troupe: %ld items, sum %lld\n",
                io.seen, (long long)io.sum);
        exit(1);
    }
    return (double)n / dt;
}

/* ------------------------------------------------------------------ */
/* The raw libzmq chain                                                */

/* A stage process: PULL from in (connect), PUSH to out (bind); an empty
 * message is the end, passed on. */
static int
s_zmq_stage(const char *in, const char *out)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    bu_zcheck(zmq_bind(push, out) == 0, out);
    bu_zcheck(zmq_connect(pull, in) == 0, in);
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        bu_zcheck(zmq_msg_recv(&m, pull, 0) >= 0, "recv");
        size_t len = zmq_msg_size(&m);
        int64_t x = 0;
        if (len == sizeof x) /* the trivial work: read it, pass it on */
            memcpy(&x, zmq_msg_data(&m), sizeof x);
        zmq_msg_close(&m);
        if (len == 0) {
            bu_zcheck(zmq_send(push, "", 0, 0) == 0, "send");
            break;
        }
        bu_zcheck(zmq_send(push, &x, sizeof x, 0) == sizeof x, "send");
    }
    /* Wait for the end to leave (linger 0 would drop it). */
    int ms = 5000;
    zmq_setsockopt(push, ZMQ_LINGER, &ms, sizeof ms);
    zmq_close(pull);
    zmq_close(push);
    zmq_ctx_term(ctx);
    return 0;
}

/* Items per second through the raw chain: source PUSH (bind ep0) ->
 * stage i (ep_i -> ep_i+1) -> sink PULL (connect ep3). */
static double
s_zmq(long n, bool tcp)
{
    char ep[STAGES + 1][128], dir[] = "/tmp/bench_pipeline.XXXXXX";
    if (!tcp && mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    for (int i = 0; i <= STAGES; i++) {
        if (tcp)
            snprintf(ep[i], sizeof ep[i], "tcp://127.0.0.1:%d",
                     27100 + (int)(getpid() % 500) * 8 + i);
        else
            snprintf(ep[i], sizeof ep[i], "ipc://%s/s%d", dir, i);
    }
    void *ctx = zmq_ctx_new();
    void *src = zmq_socket(ctx, ZMQ_PUSH), *sink = zmq_socket(ctx, ZMQ_PULL);
    bu_zcheck(zmq_bind(src, ep[0]) == 0, ep[0]);
    pid_t pids[STAGES];
    for (int i = 0; i < STAGES; i++) {
        char *argv[] = {"/proc/self/exe", "--zmq-stage", ep[i], ep[i + 1],
                        NULL};
        char self[4096];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0) {
            perror("readlink");
            exit(1);
        }
        self[k] = 0;
        argv[0] = self;
        if (posix_spawn(&pids[i], self, NULL, NULL, argv, environ) != 0) {
            perror("posix_spawn");
            exit(1);
        }
    }
    /* The sink connects last: the chain is there once an item passes. */
    bu_zcheck(zmq_connect(sink, ep[STAGES]) == 0, ep[STAGES]);
    int64_t probe = 0;
    bu_zcheck(zmq_send(src, &probe, sizeof probe, 0) == sizeof probe, "send");
    bu_zcheck(zmq_recv(sink, &probe, sizeof probe, 0) == sizeof probe,
              "recv");
    /* The source on a thread of its own, as troupe's producer and sink
     * share one thread but not one socket loop: here a simple loop each. */
    double t0 = bu_now();
    long got = 0, sent = 0;
    int64_t sum = 0;
    zmq_pollitem_t items[2] = {{sink, 0, ZMQ_POLLIN, 0},
                               {src, 0, ZMQ_POLLOUT, 0}};
    while (got < n) {
        /* Send while the chain takes (non-blocking), read what is there. */
        while (sent < n) {
            int64_t x = sent;
            if (zmq_send(src, &x, sizeof x, ZMQ_DONTWAIT) != sizeof x)
                break;
            sent++;
        }
        int64_t x;
        while (got < n && zmq_recv(sink, &x, sizeof x, ZMQ_DONTWAIT) ==
                              sizeof x) {
            sum += x;
            got++;
        }
        if (got < n)
            zmq_poll(items, sent < n ? 2 : 1, -1);
    }
    double dt = bu_now() - t0;
    bu_zcheck(zmq_send(src, "", 0, 0) == 0, "send end");
    char end;
    (void)zmq_recv(sink, &end, 1, 0);
    for (int i = 0; i < STAGES; i++)
        waitpid(pids[i], NULL, 0);
    int zero = 0;
    zmq_setsockopt(src, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(src);
    zmq_close(sink);
    zmq_ctx_term(ctx);
    if (!tcp) {
        for (int i = 0; i <= STAGES; i++)
            unlink(ep[i] + 6);
        rmdir(dir);
    }
    if (sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "bench_pipeline: zmq: wrong sum %lld\n",
                (long long)sum);
        exit(1);
    }
    return (double)n / dt;
}

/* ------------------------------------------------------------------ */
/* Python                                                              */

static const char *
s_python(void)
{
    const char *py = getenv("TROUPE_PYTHON");
    if (py != NULL && py[0] != 0)
        return py;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                 : "python3";
}

/* bench/py_pipeline.py's items per second, or 0. */
static double
s_py(long n, int rounds)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "timeout -s KILL 600 '%s' '%s/py_pipeline.py' %ld %d "
             "2>/dev/null",
             s_python(), s_bench_dir, n, rounds);
    FILE *p = popen(cmd, "r");
    double v = 0;
    if (p != NULL) {
        if (fscanf(p, "%lf", &v) != 1)
            v = 0;
        pclose(p);
    }
    return v;
}

/* ------------------------------------------------------------------ */

static double
s_median_troupe(tr_node_t *node, long n, const char *at)
{
    double v[16];
    for (int i = 0; i < s_rounds; i++)
        v[i] = s_troupe(node, n, at);
    return bu_median(v, s_rounds);
}

/* The pipeline on node a, its stages on node b: two nodes of this
 * process over tcp on 127.0.0.1 (plain text, as the raw chain). */
static double
s_median_troupe_tcp(long n)
{
    tr_node_t *a = NULL, *b = NULL;
    tr_node_opts_t o = {.name = "a", .listen = "tcp://127.0.0.1:*",
                        .insecure_plaintext = true, .no_control = true};
    bu_check(tr_node_create(&a, &o), "node a");
    char ep[128];
    bu_check(tr_node_endpoint(a, ep, sizeof ep), "endpoint");
    o.name = "b";
    o.seeds = ep;
    bu_check(tr_node_create(&b, &o), "node b");
    bu_check(tr_node_await(a, "b", 10000), "connect");
    double t = s_median_troupe(a, n, "b");
    bu_check(tr_node_destroy(&a), "destroy a");
    bu_check(tr_node_destroy(&b), "destroy b");
    return t;
}

static double
s_median_zmq(long n, bool tcp)
{
    double v[16];
    for (int i = 0; i < s_rounds; i++)
        v[i] = s_zmq(n, tcp);
    return bu_median(v, s_rounds);
}

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv); /* a process worker starts here, and stays */
    if (argc == 4 && strcmp(argv[1], "--zmq-stage") == 0)
        return s_zmq_stage(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_rounds = 1;
            s_items = 300000;
            s_py_items = 20000;
        }
        if (strncmp(argv[i], "--batch=", 8) == 0)
            s_batch = atoi(argv[i] + 8);
        if (strncmp(argv[i], "--window=", 9) == 0)
            s_window = atoi(argv[i] + 9);
    }
    const char *src = getenv("TROUPE_BENCH_DIR");
    if (src != NULL)
        s_bench_dir = src;
    bool ipc = bu_wanted(argc, argv, "pipeline_zmq_ipc"),
         tcp = bu_wanted(argc, argv, "pipeline_zmq_tcp"),
         py = bu_wanted(argc, argv, "pipeline_python");
    if (!ipc && !tcp && !py)
        return 0;
    tr_node_t *node = NULL;
    bu_check(tr_node_create(&node, NULL), "node");
    double t = s_median_troupe(node, s_items, NULL);
    if (ipc) {
        double z = s_median_zmq(s_items, false);
        printf("BENCH pipeline_zmq_ipc troupe=%.0fitems/s "
               "baseline=%.0fitems/s ratio=%.2f\n", t, z, t / z);
        printf("# %d process stages of a trivial step, %ld items, median "
               "of %d; baseline one ZeroMQ message an item, troupe "
               "batches on the wire\n", STAGES, s_items, s_rounds);
        fflush(stdout);
    }
    if (tcp) {
        double tt = s_median_troupe_tcp(s_items);
        double z = s_median_zmq(s_items, true);
        printf("BENCH pipeline_zmq_tcp troupe=%.0fitems/s "
               "baseline=%.0fitems/s ratio=%.2f\n", tt, z, tt / z);
        printf("# baseline over tcp://127.0.0.1; troupe's stages on another "
               "node of this process, through both gateways over tcp\n");
        fflush(stdout);
    }
    if (py) {
        double b = s_py(s_py_items, s_rounds);
        if (b > 0)
            printf("BENCH pipeline_python troupe=%.0fitems/s "
                   "baseline=%.0fitems/s ratio=%.2f\n", t, b, t / b);
        else
            printf("# pipeline_python troupe=%.0fitems/s: no figure from "
                   "%s %s/py_pipeline.py\n", t, s_python(), s_bench_dir);
        printf("# Python: multiprocessing.Queue between 3 Process stages, "
               "%ld items\n", s_py_items);
        fflush(stdout);
    }
    bu_check(tr_node_destroy(&node), "destroy");
    return 0;
}
