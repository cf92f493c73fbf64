/* bench/suite/zmq_suite.c - the suite's workloads on raw libzmq: the floor
 * troupe is built on.
 *
 * Each actor is a loop over its own sockets, nothing more: no envelope,
 * no registry, no supervision. --mode thread (system "libzmq") runs the
 * actors as threads talking over inproc; --mode process ("libzmq-ipc")
 * forks them (before the parent has a ZeroMQ context, each child making
 * its own) and they talk over ipc. The driver is the main thread; every
 * actor reports "ready" before the clock starts. Workloads and checks:
 * bench/suite/README.md (no mutex or memory workload: raw sockets are
 * not actors). */
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zmq.h>

#include "suite.h"

typedef void (*actor_fn)(void *ctx, long idx, const su_spec_t *s);

static bool s_proc;
static const char *s_sys = "libzmq";
static char s_dir[64]; /* process mode: the ipc endpoints' directory */
static pid_t s_parent;  /* the one process that removes s_dir */

#define MAX_KIDS 4096
static pthread_t s_threads[MAX_KIDS];
static pid_t s_pids[MAX_KIDS];
static int s_nkids;

static void
s_zcheck(bool ok, const char *what)
{
    if (!ok)
        su_die("%s: %s", what, zmq_strerror(errno));
}

/* The endpoint of name (and index i, when i >= 0). */
static void
s_ep(char *buf, size_t cap, const char *name, long i)
{
    char idx[24] = "";
    if (i >= 0)
        snprintf(idx, sizeof idx, "-%ld", i);
    if (s_proc)
        snprintf(buf, cap, "ipc://%s/%s%s", s_dir, name, idx);
    else
        snprintf(buf, cap, "inproc://%s%s", name, idx);
}

static void *
s_socket(void *ctx, int type, bool bind, const char *name, long i)
{
    char ep[128];
    s_ep(ep, sizeof ep, name, i);
    void *s = zmq_socket(ctx, type);
    s_zcheck(s != NULL, "socket");
    /* a last message (a result, "ready") must still go out after its
     * sender closed the socket, over ipc perhaps not yet connected */
    int linger = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (!bind && s_proc) {
        /* connect once the peer is bound (its ipc file exists): a connect
         * before the bind would wait for ZeroMQ's reconnect timer, inside
         * the timed part */
        struct stat st;
        double until = su_now() + 10;
        while (stat(ep + strlen("ipc://"), &st) != 0 && su_now() < until)
            usleep(200);
    }
    s_zcheck((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) == 0, ep);
    return s;
}

static void *
s_ctx_new(void)
{
    void *ctx = zmq_ctx_new();
    s_zcheck(ctx != NULL, "zmq_ctx_new");
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 65536); /* big: a x a sockets */
    return ctx;
}

/* Messages are a few int64 values back to back. */
static void
s_send(void *sock, int n, const int64_t *v)
{
    s_zcheck(zmq_send(sock, v, (size_t)n * sizeof *v, 0) ==
                 (int)((size_t)n * sizeof *v),
             "send");
}

static int
s_recv(void *sock, int64_t *v, int max)
{
    int len = zmq_recv(sock, v, (size_t)max * sizeof *v, 0);
    s_zcheck(len >= 0, "recv");
    return len / (int)sizeof *v;
}

/* Tell the driver this actor's sockets are set up. */
static void
s_ready(void *ctx)
{
    void *s = s_socket(ctx, ZMQ_PUSH, false, "ctl", -1);
    s_send(s, 1, (int64_t[]){1});
    zmq_close(s);
}

typedef struct {
    actor_fn fn;
    void *ctx;
    long idx;
    const su_spec_t *s;
} start_t;

static void *
s_trampoline(void *arg)
{
    start_t st = *(start_t *)arg;
    free(arg);
    st.fn(st.ctx, st.idx, st.s);
    return NULL;
}

/* Start an actor: a thread sharing ctx, or a forked process with a
 * context of its own (ctx is NULL then: the parent has none yet). */
static void
s_start(void *ctx, actor_fn fn, long idx, const su_spec_t *s)
{
    if (s_nkids == MAX_KIDS)
        su_die("too many actors");
    if (s_proc) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            su_die("fork failed");
        if (pid == 0) {
            void *own = s_ctx_new();
            fn(own, idx, s);
            zmq_ctx_term(own);
            _exit(0);
        }
        s_pids[s_nkids++] = pid;
        return;
    }
    start_t *st = malloc(sizeof *st);
    *st = (start_t){fn, ctx, idx, s};
    if (pthread_create(&s_threads[s_nkids++], NULL, s_trampoline, st) != 0)
        su_die("pthread_create failed");
}

static void
s_join_all(void)
{
    for (int i = 0; i < s_nkids; i++) {
        if (s_proc) {
            int status;
            if (waitpid(s_pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0)
                su_die("an actor process failed");
        } else {
            pthread_join(s_threads[i], NULL);
        }
    }
    s_nkids = 0;
}

/* The driver's context (created after the forks in process mode) and
 * its "ctl" socket, where actors say they are ready. The driver binds
 * every socket actors connect to before s_wait_ready (process mode: they
 * wait for the ipc file before connecting). */
static void *
s_driver(void **ctx, void **ctl)
{
    if (*ctx == NULL)
        *ctx = s_ctx_new();
    *ctl = s_socket(*ctx, ZMQ_PULL, true, "ctl", -1);
    return *ctx;
}

/* The ready barrier: returns once n actors said they are set up. */
static void
s_wait_ready(void *ctl, long n)
{
    int64_t v;
    for (long i = 0; i < n; i++)
        s_recv(ctl, &v, 1);
}

static void *
s_begin(void)
{
    return s_proc ? NULL : s_ctx_new();
}

static void
s_end(void *ctx, void *ctl)
{
    zmq_close(ctl);
    s_join_all();
    zmq_ctx_term(ctx);
}

/* ------------------------------------------------------------------ */

/* ping-pong's pong: answers n pings. */
static void
s_pong(void *ctx, long idx, const su_spec_t *s)
{
    (void)idx;
    long n = su_get(s, "n");
    void *pair = s_socket(ctx, ZMQ_PAIR, true, "pp", -1);
    s_ready(ctx);
    int64_t v;
    for (long i = 0; i < n; i++) {
        s_recv(pair, &v, 1);
        s_send(pair, 1, &v);
    }
    zmq_close(pair);
}

static void
s_pingpong(const su_spec_t *s)
{
    long n = su_get(s, "n"), got = 0;
    void *ctx = s_begin(), *ctl;
    s_start(ctx, s_pong, 0, s);
    s_driver(&ctx, &ctl);
    s_wait_ready(ctl, 1);
    void *pair = s_socket(ctx, ZMQ_PAIR, false, "pp", -1);
    double t0 = su_now();
    for (int64_t i = 0; i < n; i++) {
        int64_t v;
        s_send(pair, 1, &i);
        if (s_recv(pair, &v, 1) == 1 && v == i)
            got++;
    }
    su_result_int(s->name, s_sys, su_now() - t0, got);
    zmq_close(pair);
    s_end(ctx, ctl);
}

/* A counter at "cnt-idx": counts [0] messages until [1] ("get"), then
 * sends its count back and ends. */
static void
s_counter(void *ctx, long idx, const su_spec_t *s)
{
    (void)s;
    void *pair = s_socket(ctx, ZMQ_PAIR, true, "cnt", idx);
    s_ready(ctx);
    int64_t v, count = 0;
    for (;;) {
        s_recv(pair, &v, 1);
        if (v != 0)
            break;
        count++;
    }
    s_send(pair, 1, &count);
    zmq_close(pair);
}

/* counting (k = 1) and fork-join throughput: n messages to each of k
 * counters, round robin, then each count. */
static void
s_counters(const su_spec_t *s, long k, long n)
{
    if (k < 1 || k > MAX_KIDS)
        su_die("%s: k must be 1..%d", s->name, MAX_KIDS);
    void *ctx = s_begin(), *ctl;
    for (long i = 0; i < k; i++)
        s_start(ctx, s_counter, i, s);
    s_driver(&ctx, &ctl);
    s_wait_ready(ctl, k);
    void **pair = calloc((size_t)k, sizeof *pair);
    for (long i = 0; i < k; i++)
        pair[i] = s_socket(ctx, ZMQ_PAIR, false, "cnt", i);
    int64_t zero = 0, one = 1, sum = 0, c;
    double t0 = su_now();
    for (long j = 0; j < n; j++)
        for (long i = 0; i < k; i++)
            s_send(pair[i], 1, &zero);
    for (long i = 0; i < k; i++) {
        s_send(pair[i], 1, &one);
        s_recv(pair[i], &c, 1);
        sum += c;
    }
    su_result_int(s->name, s_sys, su_now() - t0, sum);
    for (long i = 0; i < k; i++)
        zmq_close(pair[i]);
    free(pair);
    s_end(ctx, ctl);
}

static void
s_counting(const su_spec_t *s)
{
    s_counters(s, 1, su_get(s, "n"));
}

static void
s_fjthrput(const su_spec_t *s)
{
    s_counters(s, su_get(s, "k"), su_get(s, "n"));
}

/* ring: token [left, hops]; [-1] stops. */
static void
s_ring_actor(void *ctx, long idx, const su_spec_t *s)
{
    long r = su_get(s, "r");
    void *in = s_socket(ctx, ZMQ_PULL, true, "ring", idx);
    void *next = s_socket(ctx, ZMQ_PUSH, false, "ring", (idx + 1) % r);
    void *done = s_socket(ctx, ZMQ_PUSH, false, "done", -1);
    s_ready(ctx);
    int64_t v[2];
    for (;;) {
        s_recv(in, v, 2);
        if (v[0] < 0)
            break;
        if (v[0] == 0)
            s_send(done, 2, (int64_t[]){v[1], idx});
        else
            s_send(next, 2, (int64_t[]){v[0] - 1, v[1] + 1});
    }
    zmq_close(in);
    zmq_close(next);
    zmq_close(done);
}

static void
s_ring(const su_spec_t *s)
{
    long r = su_get(s, "r"), t = su_get(s, "t");
    void *ctx = s_begin(), *ctl;
    for (long i = 0; i < r; i++)
        s_start(ctx, s_ring_actor, i, s);
    s_driver(&ctx, &ctl);
    void *done = s_socket(ctx, ZMQ_PULL, true, "done", -1);
    s_wait_ready(ctl, r);
    void **to = calloc((size_t)r, sizeof *to);
    for (long i = 0; i < r; i++)
        to[i] = s_socket(ctx, ZMQ_PUSH, false, "ring", i);
    int64_t res[2];
    double t0 = su_now();
    s_send(to[0], 2, (int64_t[]){t, 0});
    s_recv(done, res, 2);
    double dt = su_now() - t0;
    char check[48];
    snprintf(check, sizeof check, "%lld:%lld", (long long)res[0],
             (long long)res[1]);
    su_result(s->name, s_sys, dt, check);
    for (long i = 0; i < r; i++) {
        s_send(to[i], 1, (int64_t[]){-1});
        zmq_close(to[i]);
    }
    free(to);
    zmq_close(done);
    s_end(ctx, ctl);
}

/* big: [0, from] ping, [1] pong, [2, p] go, [3] stop. */
static void
s_big_actor(void *ctx, long idx, const su_spec_t *s)
{
    long n = su_get(s, "a");
    void *in = s_socket(ctx, ZMQ_PULL, true, "big", idx);
    void **peer = calloc((size_t)n, sizeof *peer);
    for (long i = 0; i < n; i++)
        if (i != idx)
            peer[i] = s_socket(ctx, ZMQ_PUSH, false, "big", i);
    void *done = s_socket(ctx, ZMQ_PUSH, false, "done", -1);
    s_ready(ctx);
    uint64_t rng = (uint64_t)idx + 1;
    int64_t v[2], p = 0, pongs = 0;
    for (;;) {
        s_recv(in, v, 2);
        if (v[0] == 0) {
            s_send(peer[v[1]], 1, (int64_t[]){1});
        } else if (v[0] == 1 && ++pongs == p) {
            s_send(done, 1, &pongs);
        } else if (v[0] == 1 || v[0] == 2) {
            if (v[0] == 2)
                p = v[1];
            s_send(peer[su_big_peer(idx, n, &rng)], 2,
                   (int64_t[]){0, idx});
        } else {
            break;
        }
    }
    for (long i = 0; i < n; i++)
        if (peer[i])
            zmq_close(peer[i]);
    free(peer);
    zmq_close(in);
    zmq_close(done);
}

static void
s_big(const su_spec_t *s)
{
    long n = su_get(s, "a"), p = su_get(s, "p");
    if (n < 2)
        su_die("big: a must be at least 2");
    void *ctx = s_begin(), *ctl;
    for (long i = 0; i < n; i++)
        s_start(ctx, s_big_actor, i, s);
    s_driver(&ctx, &ctl);
    void *done = s_socket(ctx, ZMQ_PULL, true, "done", -1);
    s_wait_ready(ctl, n);
    void **to = calloc((size_t)n, sizeof *to);
    for (long i = 0; i < n; i++)
        to[i] = s_socket(ctx, ZMQ_PUSH, false, "big", i);
    int64_t sum = 0, v;
    double t0 = su_now();
    for (long i = 0; i < n; i++)
        s_send(to[i], 2, (int64_t[]){2, p});
    for (long i = 0; i < n; i++) {
        s_recv(done, &v, 1);
        sum += v;
    }
    su_result_int(s->name, s_sys, su_now() - t0, sum);
    for (long i = 0; i < n; i++) {
        s_send(to[i], 1, (int64_t[]){3});
        zmq_close(to[i]);
    }
    free(to);
    zmq_close(done);
    s_end(ctx, ctl);
}

/* pool: the classic ventilator: the driver PUSHes tasks [x] to w workers,
 * which PUSH [2x + 1] to a sink that adds n of them up; [-1] stops a
 * worker. */
static void
s_worker(void *ctx, long idx, const su_spec_t *s)
{
    (void)idx, (void)s;
    void *in = s_socket(ctx, ZMQ_PULL, false, "tasks", -1);
    void *out = s_socket(ctx, ZMQ_PUSH, false, "results", -1);
    s_ready(ctx);
    int64_t x;
    while (s_recv(in, &x, 1) == 1 && x >= 0)
        s_send(out, 1, (int64_t[]){2 * x + 1});
    zmq_close(in);
    zmq_close(out);
}

static void
s_sink(void *ctx, long idx, const su_spec_t *s)
{
    (void)idx;
    long n = su_get(s, "n");
    void *in = s_socket(ctx, ZMQ_PULL, true, "results", -1);
    void *done = s_socket(ctx, ZMQ_PUSH, false, "done", -1);
    s_ready(ctx);
    int64_t v, sum = 0;
    for (long i = 0; i < n; i++) {
        s_recv(in, &v, 1);
        sum += v;
    }
    s_send(done, 1, &sum);
    zmq_close(in);
    zmq_close(done);
}

static void
s_pool(const su_spec_t *s)
{
    long w = su_get(s, "w"), n = su_get(s, "n");
    void *ctx = s_begin(), *ctl;
    s_start(ctx, s_sink, 0, s);
    for (long i = 0; i < w; i++)
        s_start(ctx, s_worker, i, s);
    s_driver(&ctx, &ctl);
    void *tasks = s_socket(ctx, ZMQ_PUSH, true, "tasks", -1);
    void *done = s_socket(ctx, ZMQ_PULL, true, "done", -1);
    s_wait_ready(ctl, w + 1);
    int64_t sum;
    double t0 = su_now();
    for (int64_t x = 0; x < n; x++)
        s_send(tasks, 1, &x);
    s_recv(done, &sum, 1);
    su_result_int(s->name, s_sys, su_now() - t0, sum);
    for (long i = 0; i < w; i++)
        s_send(tasks, 1, (int64_t[]){-1});
    zmq_close(tasks);
    zmq_close(done);
    s_end(ctx, ctl);
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*fn)(const su_spec_t *s);
} s_workloads[] = {
    {"pingpong", s_pingpong}, {"counting", s_counting},
    {"fjthrput", s_fjthrput}, {"ring", s_ring},
    {"big", s_big},           {"pool", s_pool},
};

static void
s_rmdir(void)
{
    if (s_dir[0] == '\0' || getpid() != s_parent)
        return;
    DIR *d = opendir(s_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", s_dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(s_dir);
}

int
main(int argc, char **argv)
{
    su_args_t a;
    su_parse_args(argc, argv, &a);
    if (a.mode == NULL || strcmp(a.mode, "thread") == 0) {
        s_proc = false, s_sys = "libzmq";
    } else if (strcmp(a.mode, "process") == 0) {
        s_proc = true, s_sys = "libzmq-ipc";
        s_parent = getpid();
        snprintf(s_dir, sizeof s_dir, "/tmp/troupe-suite-XXXXXX");
        if (mkdtemp(s_dir) == NULL)
            su_die("mkdtemp failed");
        atexit(s_rmdir);
    } else {
        su_die("--mode is thread or process");
    }
    for (int i = 0; i < a.nspecs; i++) {
        size_t w = 0, nw = sizeof s_workloads / sizeof s_workloads[0];
        while (w < nw && strcmp(s_workloads[w].name, a.specs[i].name) != 0)
            w++;
        if (w == nw) {
            printf("SKIP %s %s (no actors in raw sockets)\n",
                   a.specs[i].name, s_sys);
            continue;
        }
        for (int r = 0; r < a.rounds; r++)
            s_workloads[w].fn(&a.specs[i]);
    }
    return 0;
}
