/* bench/suite/troupe_suite.c - the suite's workloads on troupe.
 *
 * --mode thread (system "troupe") runs every actor as a thread actor;
 * --mode process (system "troupe-proc") as a process actor, so that every
 * message between actors crosses a process boundary (ipc). The driver is
 * the program's main thread in both. Thread mode also measures the
 * baselines of the bottleneck workloads: a pthread mutex and a C11 atomic
 * for "mutex", a bare pthread for "memory".
 *
 * The program re-executes itself as the process actors (tr_init at the
 * top of main), so every behaviour and task is registered before main.
 * Workloads, parameters and checks: bench/suite/README.md. */
#include <pthread.h>
#include <stdatomic.h>

#include "troupe.h"
#include "suite.h"

static tr_mode_t s_mode;
static const char *s_sys = "troupe";

static void
s_check(int rc, const char *what)
{
    if (rc != 0)
        su_die("%s: %s", what, tr_strerror(rc));
}

/* A message with a tag and n integers. */
static int
s_make(tr_msg_t **out, const char *tag, int n, const int64_t *v)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, tag);
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_msg_add_int(m, v[i]);
    if (rc != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Tell to with a tag and n integers. */
static int
s_tell(tr_node_t *node, tr_id_t to, const char *tag, int n, const int64_t *v)
{
    tr_msg_t *m = NULL;
    int rc = s_make(&m, tag, n, v);
    if (rc == 0 && (rc = tr_tell_id(node, to, &m)) != 0)
        tr_msg_destroy(&m);
    return rc;
}

/* Answer a request with n integers. */
static int
s_reply(tr_actor_t *self, const tr_msg_t *req, int n, const int64_t *v)
{
    tr_msg_t *m = NULL;
    int rc = s_make(&m, "ok", n, v);
    if (rc == 0 && (rc = tr_reply(self, req, &m)) != 0)
        tr_msg_destroy(&m);
    return rc;
}

/* Read n integers from a message. */
static int
s_read(const tr_msg_t *msg, int n, int64_t *v)
{
    tr_reader_t r;
    tr_reader_init(&r, msg);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_read_int(&r, &v[i]);
    return rc;
}

/* Call to with a tag and n integers (no deadline); the reply's first
 * nout integers into out. */
static void
s_call(tr_node_t *node, tr_id_t to, const char *tag, int n, const int64_t *v,
       int nout, int64_t *out)
{
    tr_msg_t *m = NULL, *r = NULL;
    s_check(s_make(&m, tag, n, v), tag);
    s_check(tr_call_id(node, to, &m, TR_FOREVER, &r), tag);
    s_check(s_read(r, nout, out), tag);
    tr_msg_destroy(&r);
}

static tr_id_t
s_spawn(tr_node_t *node, const char *behaviour)
{
    tr_id_t id;
    tr_spawn_opts_t o = {.mode = s_mode};
    s_check(tr_spawn(node, behaviour, &o, &id), behaviour);
    return id;
}

/* ------------------------------------------------------------------ */
/* ping-pong: ping sends "ping", pong answers "pong", n round trips.    */

typedef struct {
    tr_id_t pong;
    int64_t n, got;
    tr_msg_t *waiter; /* the driver's "go", answered at the end */
} ping_t;

static int
s_ping_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    ping_t *p = state;
    tr_node_t *node = tr_actor_node(self);
    if (tr_msg_is(msg, "pong")) {
        if (++p->got < p->n)
            return s_tell(node, p->pong, "ping", 0, NULL);
        int rc = s_reply(self, p->waiter, 1, &p->got);
        tr_msg_destroy(&p->waiter);
        return rc;
    }
    if (tr_msg_is(msg, "go")) {
        int64_t v[2];
        int rc = s_read(msg, 2, v);
        if (rc != 0 || (rc = tr_msg_dup(msg, &p->waiter)) != 0)
            return rc;
        p->pong = (tr_id_t)v[0], p->n = v[1], p->got = 0;
        return s_tell(node, p->pong, "ping", 0, NULL);
    }
    return TR_EUNHANDLED;
}

static void
s_ping_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_msg_destroy(&((ping_t *)state)->waiter);
}

TR_BEHAVIOUR(suite_ping, .state_size = sizeof(ping_t),
             .handle = s_ping_handle, .terminate = s_ping_terminate);

static int
s_pong_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "ping"))
        return TR_EUNHANDLED;
    return s_tell(tr_actor_node(self), tr_msg_sender(msg), "pong", 0, NULL);
}

TR_BEHAVIOUR(suite_pong, .handle = s_pong_handle);

static void
s_pingpong(tr_node_t *node, const su_spec_t *s)
{
    int64_t n = su_get(s, "n"), got;
    tr_id_t ping = s_spawn(node, "suite_ping"), pong = s_spawn(node,
                                                              "suite_pong");
    double t0 = su_now();
    s_call(node, ping, "go", 2, (int64_t[]){(int64_t)pong, n}, 1, &got);
    su_result_int(s->name, s_sys, su_now() - t0, got);
    s_check(tr_stop(node, ping, TR_DEFAULT), "stop");
    s_check(tr_stop(node, pong, TR_DEFAULT), "stop");
}

/* ------------------------------------------------------------------ */
/* counting: a producer tells a counter n "inc", then asks "get".       */
/* The counter is also the "mutex" workload's counter actor.            */

static int
s_counter_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    int64_t *count = state;
    if (tr_msg_is(msg, "inc")) {
        ++*count;
        return 0;
    }
    if (tr_msg_is(msg, "get") || tr_msg_is(msg, "sync"))
        return s_reply(self, msg, 1, count);
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(suite_counter, .state_size = sizeof(int64_t),
             .handle = s_counter_handle);

/* On "go" [counter, n]: n "inc" to the counter, then the counter's "get"
 * (or "sync", for the mutex workload) as the answer. */
static int
s_producer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    bool go = tr_msg_is(msg, "go");
    if (!go && !tr_msg_is(msg, "go-sync"))
        return TR_EUNHANDLED;
    int64_t v[2];
    int rc = s_read(msg, 2, v);
    tr_node_t *node = tr_actor_node(self);
    for (int64_t i = 0; i < v[1] && rc == 0; i++)
        rc = s_tell(node, (tr_id_t)v[0], "inc", 0, NULL);
    tr_msg_t *m = NULL, *r = NULL;
    if (rc == 0 && (rc = s_make(&m, go ? "get" : "sync", 0, NULL)) == 0)
        rc = tr_call_id(node, (tr_id_t)v[0], &m, TR_FOREVER, &r);
    int64_t count = 0;
    if (rc == 0 && (rc = s_read(r, 1, &count)) == 0)
        rc = s_reply(self, msg, 1, &count);
    tr_msg_destroy(&r);
    return rc;
}

TR_BEHAVIOUR(suite_producer, .handle = s_producer_handle);

static void
s_counting(tr_node_t *node, const su_spec_t *s)
{
    int64_t n = su_get(s, "n"), count;
    tr_id_t counter = s_spawn(node, "suite_counter");
    tr_id_t producer = s_spawn(node, "suite_producer");
    double t0 = su_now();
    s_call(node, producer, "go", 2, (int64_t[]){(int64_t)counter, n}, 1,
           &count);
    su_result_int(s->name, s_sys, su_now() - t0, count);
    s_check(tr_stop(node, producer, TR_DEFAULT), "stop");
    s_check(tr_stop(node, counter, TR_DEFAULT), "stop");
}

/* ------------------------------------------------------------------ */
/* fork-join throughput: the driver tells k counters n messages each,  */
/* round robin, then asks each for its count.                           */

static void
s_fjthrput(tr_node_t *node, const su_spec_t *s)
{
    long k = su_get(s, "k"), n = su_get(s, "n");
    tr_id_t *w = calloc((size_t)k, sizeof *w);
    for (long i = 0; i < k; i++)
        w[i] = s_spawn(node, "suite_counter");
    double t0 = su_now();
    for (long j = 0; j < n; j++)
        for (long i = 0; i < k; i++)
            s_check(s_tell(node, w[i], "inc", 0, NULL), "tell");
    int64_t sum = 0, c;
    for (long i = 0; i < k; i++) {
        s_call(node, w[i], "get", 0, NULL, 1, &c);
        sum += c;
    }
    su_result_int(s->name, s_sys, su_now() - t0, sum);
    for (long i = 0; i < k; i++)
        s_check(tr_stop(node, w[i], TR_DEFAULT), "stop");
    free(w);
}

/* ------------------------------------------------------------------ */
/* thread ring: a token [left, hops] goes round r actors; the one that  */
/* gets it with left == 0 reports hops and its index to actor 0, which  */
/* answers the driver's "go".                                           */

typedef struct {
    tr_id_t next, first;
    int64_t idx;
    tr_msg_t *waiter;
} ring_t;

static int
s_ring_token(tr_actor_t *self, ring_t *r, int64_t left, int64_t hops)
{
    if (left > 0)
        return s_tell(tr_actor_node(self), r->next, "tok", 2,
                      (int64_t[]){left - 1, hops + 1});
    if (r->idx != 0)
        return s_tell(tr_actor_node(self), r->first, "done", 2,
                      (int64_t[]){hops, r->idx});
    int rc = s_reply(self, r->waiter, 2, (int64_t[]){hops, 0});
    tr_msg_destroy(&r->waiter);
    return rc;
}

static int
s_ring_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    ring_t *r = state;
    int64_t v[3];
    int rc;
    if (tr_msg_is(msg, "tok"))
        return (rc = s_read(msg, 2, v)) ? rc : s_ring_token(self, r, v[0],
                                                             v[1]);
    if (tr_msg_is(msg, "go")) {
        if ((rc = s_read(msg, 1, v)) != 0 ||
            (rc = tr_msg_dup(msg, &r->waiter)) != 0)
            return rc;
        return s_ring_token(self, r, v[0], 0);
    }
    if (tr_msg_is(msg, "done")) {
        if ((rc = s_read(msg, 2, v)) != 0)
            return rc;
        rc = s_reply(self, r->waiter, 2, v);
        tr_msg_destroy(&r->waiter);
        return rc;
    }
    if (tr_msg_is(msg, "link")) {
        if ((rc = s_read(msg, 3, v)) != 0)
            return rc;
        r->next = (tr_id_t)v[0], r->first = (tr_id_t)v[1], r->idx = v[2];
        return s_reply(self, msg, 0, NULL);
    }
    return TR_EUNHANDLED;
}

static void
s_ring_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_msg_destroy(&((ring_t *)state)->waiter);
}

TR_BEHAVIOUR(suite_ring, .state_size = sizeof(ring_t),
             .handle = s_ring_handle, .terminate = s_ring_terminate);

static void
s_ring(tr_node_t *node, const su_spec_t *s)
{
    long r = su_get(s, "r"), t = su_get(s, "t");
    tr_id_t *a = calloc((size_t)r, sizeof *a);
    for (long i = 0; i < r; i++)
        a[i] = s_spawn(node, "suite_ring");
    /* calls, not tells: each actor knows its neighbour before a token
     * (from another sender, in no set order) can reach it */
    for (long i = 0; i < r; i++)
        s_call(node, a[i], "link", 3,
               (int64_t[]){(int64_t)a[(i + 1) % r], (int64_t)a[0], i}, 0,
               NULL);
    int64_t res[2];
    double t0 = su_now();
    s_call(node, a[0], "go", 1, (int64_t[]){t}, 2, res);
    double dt = su_now() - t0;
    char check[48];
    snprintf(check, sizeof check, "%lld:%lld", (long long)res[0],
             (long long)res[1]);
    su_result(s->name, s_sys, dt, check);
    for (long i = 0; i < r; i++)
        s_check(tr_stop(node, a[i], TR_DEFAULT), "stop");
    free(a);
}

/* ------------------------------------------------------------------ */
/* big: a actors; each pings a pseudo-random other, waits for its pong, */
/* p times, then tells the sink how many pongs it had.                  */

#define BIG_MAX 1024

typedef struct {
    tr_id_t sink;
    int64_t idx, n, p, pongs;
    uint64_t rng;
    tr_id_t peers[BIG_MAX];
} big_t;

static int
s_big_ping(tr_actor_t *self, big_t *b)
{
    long to = su_big_peer((long)b->idx, (long)b->n, &b->rng);
    return s_tell(tr_actor_node(self), b->peers[to], "ping", 0, NULL);
}

static int
s_big_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    big_t *b = state;
    tr_node_t *node = tr_actor_node(self);
    if (tr_msg_is(msg, "ping"))
        return s_tell(node, tr_msg_sender(msg), "pong", 0, NULL);
    if (tr_msg_is(msg, "pong")) {
        if (++b->pongs < b->p)
            return s_big_ping(self, b);
        return s_tell(node, b->sink, "done", 1, &b->pongs);
    }
    if (tr_msg_is(msg, "go")) {
        int rc = s_read(msg, 1, &b->p);
        return rc ? rc : s_big_ping(self, b);
    }
    if (tr_msg_is(msg, "init")) {
        /* [sink, idx, n, id 0, ..., id n-1] */
        tr_reader_t r;
        int64_t v;
        int rc;
        tr_reader_init(&r, msg);
        if ((rc = tr_read_int(&r, &v)) != 0)
            return rc;
        b->sink = (tr_id_t)v;
        if ((rc = tr_read_int(&r, &b->idx)) != 0 ||
            (rc = tr_read_int(&r, &b->n)) != 0)
            return rc;
        if (b->n < 2 || b->n > BIG_MAX)
            return TR_ERANGE;
        for (int64_t i = 0; i < b->n; i++) {
            if ((rc = tr_read_int(&r, &v)) != 0)
                return rc;
            b->peers[i] = (tr_id_t)v;
        }
        b->rng = (uint64_t)b->idx + 1;
        return s_reply(self, msg, 0, NULL);
    }
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(suite_big, .state_size = sizeof(big_t), .handle = s_big_handle);

/* The sink answers "await" [n] once n "done" [pongs] came (a done may
 * overtake the await: it comes from another sender). */
typedef struct {
    int64_t want, seen, sum;
    tr_msg_t *waiter;
} sink_t;

static int
s_sink_maybe(tr_actor_t *self, sink_t *k)
{
    if (k->waiter == NULL || k->seen < k->want)
        return 0;
    int rc = s_reply(self, k->waiter, 1, &k->sum);
    tr_msg_destroy(&k->waiter);
    return rc;
}

static int
s_sink_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    sink_t *k = state;
    int64_t v;
    int rc;
    if (tr_msg_is(msg, "done")) {
        if ((rc = s_read(msg, 1, &v)) != 0)
            return rc;
        k->sum += v, k->seen++;
        return s_sink_maybe(self, k);
    }
    if (tr_msg_is(msg, "await")) {
        if ((rc = s_read(msg, 1, &k->want)) != 0 ||
            (rc = tr_msg_dup(msg, &k->waiter)) != 0)
            return rc;
        return s_sink_maybe(self, k);
    }
    return TR_EUNHANDLED;
}

static void
s_sink_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_msg_destroy(&((sink_t *)state)->waiter);
}

TR_BEHAVIOUR(suite_sink, .state_size = sizeof(sink_t),
             .handle = s_sink_handle, .terminate = s_sink_terminate);

static void
s_big(tr_node_t *node, const su_spec_t *s)
{
    long n = su_get(s, "a"), p = su_get(s, "p");
    if (n < 2 || n > BIG_MAX)
        su_die("big: a must be 2..%d", BIG_MAX);
    tr_id_t *a = calloc((size_t)n, sizeof *a);
    tr_id_t sink = s_spawn(node, "suite_sink");
    for (long i = 0; i < n; i++)
        a[i] = s_spawn(node, "suite_big");
    for (long i = 0; i < n; i++) {
        tr_msg_t *m = NULL;
        s_check(s_make(&m, "init", 3, (int64_t[]){(int64_t)sink, i, n}),
                "init");
        for (long j = 0; j < n; j++)
            s_check(tr_msg_add_int(m, (int64_t)a[j]), "init");
        s_check(tr_call_id(node, a[i], &m, TR_FOREVER, NULL), "init");
    }
    tr_future_t *f;
    tr_msg_t *m = NULL, *r = NULL;
    s_check(s_make(&m, "await", 1, (int64_t[]){n}), "await");
    double t0 = su_now();
    s_check(tr_ask_id(node, sink, &m, TR_FOREVER, &f), "await");
    for (long i = 0; i < n; i++)
        s_check(s_tell(node, a[i], "go", 1, (int64_t[]){p}), "go");
    s_check(tr_future_get(f, TR_FOREVER, &r), "await");
    double dt = su_now() - t0;
    int64_t sum;
    s_check(s_read(r, 1, &sum), "await");
    su_result_int(s->name, s_sys, dt, sum);
    tr_msg_destroy(&r);
    tr_future_destroy(&f);
    for (long i = 0; i < n; i++)
        s_check(tr_stop(node, a[i], TR_DEFAULT), "stop");
    s_check(tr_stop(node, sink, TR_DEFAULT), "stop");
    free(a);
}

/* ------------------------------------------------------------------ */
/* pool: n trivial tasks (x -> 2x + 1) on w workers, at most 256 in     */
/* flight, collected as they settle; the check is their sum (n^2).      */
/* io: the same tasks, each sleeping s microseconds first (a stand-in   */
/* for blocking I/O).                                                   */

static int
s_task_inc(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t v[2] = {0, 0}; /* x, and for io the microseconds to sleep */
    tr_reader_t r;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &v[0]);
    if (rc == 0 && !tr_read_done(&r) && (rc = tr_read_int(&r, &v[1])) == 0)
        usleep((useconds_t)v[1]);
    return rc ? rc : s_make(result, "r", 1, (int64_t[]){2 * v[0] + 1});
}

TR_TASK(suite_inc, s_task_inc);

#define POOL_WINDOW 256

static void
s_pool_run(tr_node_t *node, const su_spec_t *s, long sleep_us)
{
    long w = su_get(s, "w"), n = su_get(s, "n");
    tr_pool_opts_t o = {.workers = (int)w,
                        .mode = s_mode == TR_PROCESS ? TR_POOL_PROCESSES
                                                     : TR_POOL_THREADS};
    tr_pool_t *pool;
    s_check(tr_pool_start(node, &o, &pool), "pool start");
    tr_future_t *futs[POOL_WINDOW];
    size_t inflight = 0;
    long sent = 0;
    int64_t sum = 0;
    double t0 = su_now();
    while (sent < n || inflight > 0) {
        while (sent < n && inflight < POOL_WINDOW) {
            tr_msg_t *m = NULL;
            s_check(s_make(&m, "x", sleep_us ? 2 : 1,
                           (int64_t[]){sent, sleep_us}),
                    "task");
            s_check(tr_pool_submit(pool, "suite_inc", &m, TR_FOREVER,
                                   &futs[inflight]),
                    "submit");
            inflight++, sent++;
        }
        tr_future_t *done;
        tr_msg_t *r = NULL;
        int64_t v;
        s_check(tr_future_next_done(futs, &inflight, TR_FOREVER, &done),
                "next_done");
        s_check(tr_future_get(done, 0, &r), "task");
        s_check(s_read(r, 1, &v), "result");
        sum += v;
        tr_msg_destroy(&r);
        tr_future_destroy(&done);
    }
    su_result_int(s->name, s_sys, su_now() - t0, sum);
    s_check(tr_pool_shutdown(&pool, false, TR_DEFAULT), "pool shutdown");
}

static void
s_pool(tr_node_t *node, const su_spec_t *s)
{
    s_pool_run(node, s, 0);
}

static void
s_io(tr_node_t *node, const su_spec_t *s)
{
    s_pool_run(node, s, su_get(s, "s"));
}

/* ------------------------------------------------------------------ */
/* mutex: t writers add 1 to one counter n times each.                  */
/* troupe: t producer actors tell the counter actor "inc" (no lock);    */
/* thread mode also times the lock (pthread mutex) and an atomic.       */

typedef struct {
    long n;
    pthread_mutex_t *mu;
    long *counter;
    atomic_long *atomic;
} writer_t;

static void *
s_mutex_writer(void *arg)
{
    writer_t *w = arg;
    for (long i = 0; i < w->n; i++) {
        pthread_mutex_lock(w->mu);
        ++*w->counter;
        pthread_mutex_unlock(w->mu);
    }
    return NULL;
}

static void *
s_atomic_writer(void *arg)
{
    writer_t *w = arg;
    for (long i = 0; i < w->n; i++)
        atomic_fetch_add_explicit(w->atomic, 1, memory_order_relaxed);
    return NULL;
}

static void
s_threads(const su_spec_t *s, const char *sys, void *(*fn)(void *))
{
    long t = su_get(s, "t"), n = su_get(s, "n");
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    long counter = 0;
    atomic_long atomic = 0;
    writer_t w = {n, &mu, &counter, &atomic};
    pthread_t *th = calloc((size_t)t, sizeof *th);
    double t0 = su_now();
    for (long i = 0; i < t; i++)
        if (pthread_create(&th[i], NULL, fn, &w) != 0)
            su_die("pthread_create failed");
    for (long i = 0; i < t; i++)
        pthread_join(th[i], NULL);
    double dt = su_now() - t0;
    su_result_int(s->name, sys, dt, fn == s_mutex_writer ? counter
                                                          : atomic_load(
                                                                &atomic));
    free(th);
}

static void
s_mutex(tr_node_t *node, const su_spec_t *s)
{
    long t = su_get(s, "t"), n = su_get(s, "n");
    tr_id_t counter = s_spawn(node, "suite_counter");
    tr_id_t *p = calloc((size_t)t, sizeof *p);
    tr_future_t **f = calloc((size_t)t, sizeof *f);
    for (long i = 0; i < t; i++)
        p[i] = s_spawn(node, "suite_producer");
    double t0 = su_now();
    /* each writer ends with a "sync" call, so its incs are all counted
     * before it answers (order holds per sender) */
    for (long i = 0; i < t; i++) {
        tr_msg_t *m = NULL;
        s_check(s_make(&m, "go-sync", 2, (int64_t[]){(int64_t)counter, n}),
                "go");
        s_check(tr_ask_id(node, p[i], &m, TR_FOREVER, &f[i]), "go");
    }
    s_check(tr_future_wait_all(f, (size_t)t, TR_FOREVER), "wait");
    int64_t total;
    s_call(node, counter, "get", 0, NULL, 1, &total);
    su_result_int(s->name, s_sys, su_now() - t0, total);
    for (long i = 0; i < t; i++) {
        s_check(tr_future_get(f[i], 0, NULL), "writer");
        tr_future_destroy(&f[i]);
        s_check(tr_stop(node, p[i], TR_DEFAULT), "stop");
    }
    s_check(tr_stop(node, counter, TR_DEFAULT), "stop");
    free(p);
    free(f);
    if (s_mode == TR_THREAD) {
        s_threads(s, "pthread-mutex", s_mutex_writer);
        s_threads(s, "c-atomic", s_atomic_writer);
    }
}

/* ------------------------------------------------------------------ */
/* memory: n idle actors; what they added to the machine's memory.      */

static int
s_idle_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(suite_idle, .handle = s_idle_handle);

static pthread_mutex_t s_idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_idle_cv = PTHREAD_COND_INITIALIZER;
static bool s_idle_release;
static long s_idle_started;

static void *
s_idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_idle_mu);
    s_idle_started++;
    while (!s_idle_release)
        pthread_cond_wait(&s_idle_cv, &s_idle_mu);
    pthread_mutex_unlock(&s_idle_mu);
    return NULL;
}

static void
s_memory_pthreads(const su_spec_t *s, long n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    s_idle_release = false, s_idle_started = 0;
    long before = su_rss_kib();
    for (long i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, s_idle_thread, NULL) != 0)
            su_die("pthread_create failed");
    for (;;) { /* every thread has run (its stack was touched) */
        pthread_mutex_lock(&s_idle_mu);
        long started = s_idle_started;
        pthread_mutex_unlock(&s_idle_mu);
        if (started == n)
            break;
        usleep(1000);
    }
    long kib = su_rss_kib() - before;
    pthread_mutex_lock(&s_idle_mu);
    s_idle_release = true;
    pthread_cond_broadcast(&s_idle_cv);
    pthread_mutex_unlock(&s_idle_mu);
    for (long i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
    su_result_int(s->name, "pthread", (double)kib, s_idle_started);
}

static void
s_memory(tr_node_t *node, const su_spec_t *s)
{
    long n = su_get(s, "n");
    static pid_t before[4096];
    int nbefore, nchildren = 0;
    tr_id_t *ids = calloc((size_t)n, sizeof *ids);
    tr_spawn_opts_t o = {.mode = s_mode};
    /* one first, so that what every actor needs once (the node's
     * threads, the first process's start-up) is not counted */
    tr_id_t first;
    tr_node_stats_t st0, st;
    s_check(tr_spawn(node, "suite_idle", &o, &first), "spawn");
    nbefore = su_children(before, 4096);
    tr_node_stats(node, &st0);
    long rss0 = su_rss_kib();
    s_check(tr_spawn_n(node, "suite_idle", &o, (int)n, ids), "spawn_n");
    long kib = su_rss_kib() - rss0;
    tr_node_stats(node, &st);
    long alive = (long)(st.alive - st0.alive);
    if (s_mode == TR_PROCESS) {
        kib += su_new_children_pss_kib(before, nbefore, &nchildren);
        if (nchildren != n)
            su_die("memory: %d new child processes, %ld actors", nchildren,
                   n);
    }
    su_result_int(s->name, s_sys, (double)kib, alive);
    for (long i = 0; i < n; i++)
        s_check(tr_stop(node, ids[i], TR_DEFAULT), "stop");
    s_check(tr_stop(node, first, TR_DEFAULT), "stop");
    free(ids);
    if (s_mode == TR_THREAD)
        s_memory_pthreads(s, n);
}

/* ------------------------------------------------------------------ */
/* starve: one writer floods the counter (its queue into the mailbox   */
/* full the whole time) while the driver calls "get" m times, 1 ms      */
/* apart; the figure is the median wait of a call. Each sender has its  */
/* own queue into the mailbox and the mailbox takes turns between them, */
/* so a call does not wait behind the flood.                            */

/* The flooder sends "inc" in runs of FLOOD_RUN, telling itself "more"  */
/* after each run (a long loop an actor can still be stopped in), until */
/* "stop".                                                              */
#define FLOOD_RUN 1000

typedef struct {
    tr_id_t counter;
    bool stopped;
} flooder_t;

static int
s_flooder_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    flooder_t *f = state;
    tr_node_t *node = tr_actor_node(self);
    if (tr_msg_is(msg, "stop")) {
        f->stopped = true;
        return s_reply(self, msg, 0, NULL);
    }
    if (tr_msg_is(msg, "go")) {
        int64_t to;
        int rc = s_read(msg, 1, &to);
        if (rc != 0)
            return rc;
        f->counter = (tr_id_t)to;
    } else if (!tr_msg_is(msg, "more")) {
        return TR_EUNHANDLED;
    }
    if (f->stopped)
        return 0;
    int rc = 0;
    for (int i = 0; i < FLOOD_RUN && rc == 0; i++)
        rc = s_tell(node, f->counter, "inc", 0, NULL);
    return rc ? rc : s_tell(node, tr_self(self), "more", 0, NULL);
}

TR_BEHAVIOUR(suite_flooder, .state_size = sizeof(flooder_t),
             .handle = s_flooder_handle);

static void
s_starve(tr_node_t *node, const su_spec_t *s)
{
    long m = su_get(s, "m"), answered = 0;
    tr_id_t counter = s_spawn(node, "suite_counter");
    tr_id_t flooder = s_spawn(node, "suite_flooder");
    s_check(s_tell(node, flooder, "go", 1, (int64_t[]){(int64_t)counter}),
            "go");
    usleep(10000); /* the flood under way */
    double *lat = calloc((size_t)m, sizeof *lat);
    int64_t c = 0, first = -1;
    for (long i = 0; i < m; i++) {
        double t0 = su_now();
        s_call(node, counter, "get", 0, NULL, 1, &c);
        lat[answered++] = su_now() - t0;
        if (first < 0)
            first = c;
        usleep(1000);
    }
    s_call(node, flooder, "stop", 0, NULL, 0, NULL);
    for (long i = 1; i < answered; i++) /* median */
        for (long j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
            double t = lat[j];
            lat[j] = lat[j - 1], lat[j - 1] = t;
        }
    printf("# starve %s: the counter handled %lld incs meanwhile\n", s_sys,
           (long long)(c - first));
    su_result_int(s->name, s_sys, lat[answered / 2], answered);
    free(lat);
    s_check(tr_stop(node, flooder, TR_DEFAULT), "stop");
    s_check(tr_stop(node, counter, TR_DEFAULT), "stop");
}

/* ------------------------------------------------------------------ */
/* deadlock: actors A and B each ask the other while handling a request */
/* (the shape of two threads taking two locks in opposite orders). With */
/* a lock both wait forever; here each ask carries a deadline of d ms,  */
/* settles with TR_ETIMEDOUT, and both actors go on. The figure is the  */
/* time until both are free again; the check, how many of the two       */
/* "start" calls came back.                                             */

static int
s_cycle_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "ping"))
        return s_reply(self, msg, 0, NULL);
    if (!tr_msg_is(msg, "start"))
        return TR_EUNHANDLED;
    int64_t v[2]; /* the other actor, the deadline */
    int rc = s_read(msg, 2, v);
    tr_msg_t *m = NULL;
    tr_future_t *f = NULL;
    if (rc == 0 && (rc = s_make(&m, "ping", 0, NULL)) == 0 &&
        (rc = tr_ask_id(tr_actor_node(self), (tr_id_t)v[0], &m, (int)v[1],
                        &f)) != 0)
        tr_msg_destroy(&m);
    if (rc != 0)
        return rc;
    int outcome = tr_future_get(f, TR_FOREVER, NULL);
    tr_future_destroy(&f);
    return s_reply(self, msg, 1, (int64_t[]){outcome});
}

TR_BEHAVIOUR(suite_cycle, .handle = s_cycle_handle);

static void
s_deadlock(tr_node_t *node, const su_spec_t *s)
{
    long d = su_get(s, "d");
    tr_id_t a = s_spawn(node, "suite_cycle"), b = s_spawn(node,
                                                          "suite_cycle");
    tr_future_t *f[2];
    tr_id_t pair[2][2] = {{a, b}, {b, a}};
    double t0 = su_now();
    for (int i = 0; i < 2; i++) {
        tr_msg_t *m = NULL;
        s_check(s_make(&m, "start", 2, (int64_t[]){(int64_t)pair[i][1], d}),
                "start");
        s_check(tr_ask_id(node, pair[i][0], &m, TR_FOREVER, &f[i]), "start");
    }
    long timedout = 0, back = 0;
    for (int i = 0; i < 2; i++) {
        tr_msg_t *r = NULL;
        int64_t outcome;
        s_check(tr_future_get(f[i], TR_FOREVER, &r), "start");
        s_check(s_read(r, 1, &outcome), "start");
        timedout += outcome == TR_ETIMEDOUT;
        back++;
        tr_msg_destroy(&r);
        tr_future_destroy(&f[i]);
    }
    double dt = su_now() - t0;
    printf("# deadlock %s: %ld of 2 asks timed out\n", s_sys, timedout);
    su_result_int(s->name, s_sys, dt, back);
    s_check(tr_stop(node, a, TR_DEFAULT), "stop");
    s_check(tr_stop(node, b, TR_DEFAULT), "stop");
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*fn)(tr_node_t *node, const su_spec_t *s);
} s_workloads[] = {
    {"pingpong", s_pingpong}, {"counting", s_counting},
    {"fjthrput", s_fjthrput}, {"ring", s_ring},
    {"big", s_big},           {"pool", s_pool},
    {"mutex", s_mutex},       {"memory", s_memory},
    {"io", s_io},             {"starve", s_starve},
    {"deadlock", s_deadlock},
};

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "tr_init"); /* process actors: never
                                                * returns */
    su_args_t a;
    su_parse_args(argc, argv, &a);
    if (a.mode == NULL || strcmp(a.mode, "thread") == 0) {
        s_mode = TR_THREAD, s_sys = "troupe";
    } else if (strcmp(a.mode, "process") == 0) {
        s_mode = TR_PROCESS, s_sys = "troupe-proc";
    } else {
        su_die("--mode is thread or process");
    }
    /* room for big's and the ring's actors (each has 2 sockets) */
    tr_node_opts_t no = {.name = "suite", .max_sockets = 65536};
    for (int i = 0; i < a.nspecs; i++) {
        size_t w = 0, nw = sizeof s_workloads / sizeof s_workloads[0];
        while (w < nw && strcmp(s_workloads[w].name, a.specs[i].name) != 0)
            w++;
        if (w == nw)
            su_die("unknown workload '%s'", a.specs[i].name);
        for (int r = 0; r < a.rounds; r++) {
            tr_node_t *node;
            s_check(tr_node_create(&node, &no), "node");
            s_workloads[w].fn(node, &a.specs[i]);
            s_check(tr_node_destroy(&node), "node destroy");
        }
    }
    return 0;
}
