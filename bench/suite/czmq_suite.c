/* bench/suite/czmq_suite.c - the suite's workloads on CZMQ's zactor
 * (system "czmq").
 *
 * Written the way CZMQ's own actors are: each actor is a zactor_fn that
 * signals its pipe once set up, then loops over its pipe (and, where
 * actors talk to each other, its own PULL socket, with a zpoller) until
 * "$TERM"; messages are strings (zstr) or pictures (zsock_send). An actor
 * that drives another owns it as a child zactor and talks through the
 * child's pipe. Workloads and checks: bench/suite/README.md (no mutex
 * workload). */
#include <czmq.h>

#include "suite.h"

static const char *s_sys = "czmq";
static int s_run; /* endpoints are new each run: an inproc endpoint is
                   * freed only some time after its socket closes */

/* "inproc://cz-<run>-<name>[-<i>]", prefixed with '@' (bind) or '>'
 * (connect) as zsock_new_* take it. */
static const char *
s_ep(char *buf, size_t cap, char how, const char *name, long i)
{
    if (i >= 0)
        snprintf(buf, cap, "%cinproc://cz-%d-%s-%ld", how, s_run, name, i);
    else
        snprintf(buf, cap, "%cinproc://cz-%d-%s", how, s_run, name);
    return buf;
}

/* ------------------------------------------------------------------ */
/* counter: "inc" adds one, "get" answers the count.                    */

static void
s_counter(zsock_t *pipe, void *args)
{
    (void)args;
    zsock_signal(pipe, 0);
    int64_t count = 0;
    char *cmd;
    while ((cmd = zstr_recv(pipe)) != NULL) {
        if (streq(cmd, "inc"))
            count++;
        else if (streq(cmd, "get"))
            zsock_send(pipe, "8", count);
        else if (streq(cmd, "$TERM")) {
            zstr_free(&cmd);
            break;
        }
        zstr_free(&cmd);
    }
}

/* True for "GO", false for "$TERM" (or an interrupted receive). */
static bool
s_go(zsock_t *pipe)
{
    char *cmd = zstr_recv(pipe);
    bool go = cmd && streq(cmd, "GO");
    zstr_free(&cmd);
    return go;
}

/* producer: owns a counter; on "GO", n (its argument) "inc" then "get";
 * answers the count. */
static void
s_producer(zsock_t *pipe, void *args)
{
    uint64_t n = *(uint64_t *)args;
    zactor_t *counter = zactor_new(s_counter, NULL);
    zsock_signal(pipe, 0);
    while (s_go(pipe)) {
        for (uint64_t i = 0; i < n; i++)
            zstr_send(counter, "inc");
        zstr_send(counter, "get");
        uint64_t count;
        zsock_recv(counter, "8", &count);
        zsock_send(pipe, "8", count);
    }
    zactor_destroy(&counter);
}

static void
s_counting(const su_spec_t *s)
{
    uint64_t n = (uint64_t)su_get(s, "n"), count = 0;
    zactor_t *producer = zactor_new(s_producer, &n);
    double t0 = su_now();
    zstr_send(producer, "GO");
    zsock_recv(producer, "8", &count);
    su_result_int(s->name, s_sys, su_now() - t0, (long long)count);
    zactor_destroy(&producer);
}

static void
s_fjthrput(const su_spec_t *s)
{
    long k = su_get(s, "k"), n = su_get(s, "n");
    zactor_t **w = calloc((size_t)k, sizeof *w);
    for (long i = 0; i < k; i++)
        w[i] = zactor_new(s_counter, NULL);
    uint64_t sum = 0, c;
    double t0 = su_now();
    for (long j = 0; j < n; j++)
        for (long i = 0; i < k; i++)
            zstr_send(w[i], "inc");
    for (long i = 0; i < k; i++) {
        zstr_send(w[i], "get");
        zsock_recv(w[i], "8", &c);
        sum += c;
    }
    su_result_int(s->name, s_sys, su_now() - t0, (long long)sum);
    for (long i = 0; i < k; i++)
        zactor_destroy(&w[i]);
    free(w);
}

/* ------------------------------------------------------------------ */
/* ping-pong: ping owns pong; on "GO", n (its argument) round trips,   */
/* answers the pongs it got.                                            */

static void
s_pong(zsock_t *pipe, void *args)
{
    (void)args;
    zsock_signal(pipe, 0);
    char *cmd;
    while ((cmd = zstr_recv(pipe)) != NULL) {
        bool term = streq(cmd, "$TERM");
        zstr_free(&cmd);
        if (term)
            break;
        zstr_send(pipe, "pong");
    }
}

static void
s_ping(zsock_t *pipe, void *args)
{
    uint64_t n = *(uint64_t *)args;
    zactor_t *pong = zactor_new(s_pong, NULL);
    zsock_signal(pipe, 0);
    while (s_go(pipe)) {
        uint64_t got = 0;
        for (uint64_t i = 0; i < n; i++) {
            zstr_send(pong, "ping");
            char *r = zstr_recv(pong);
            got += r && streq(r, "pong");
            zstr_free(&r);
        }
        zsock_send(pipe, "8", got);
    }
    zactor_destroy(&pong);
}

static void
s_pingpong(const su_spec_t *s)
{
    uint64_t n = (uint64_t)su_get(s, "n"), got = 0;
    zactor_t *ping = zactor_new(s_ping, &n);
    double t0 = su_now();
    zstr_send(ping, "GO");
    zsock_recv(ping, "8", &got);
    su_result_int(s->name, s_sys, su_now() - t0, (long long)got);
    zactor_destroy(&ping);
}

/* ------------------------------------------------------------------ */
/* ring: actor i PULLs tokens (left, hops) at endpoint ring-i and      */
/* PUSHes them to i + 1; the last one PUSHes (hops, i) to the driver,  */
/* which PUSHed the first one to actor 0.                               */

typedef struct {
    long idx, n; /* ring: n actors; big: n actors */
    long p;      /* big: pings */
} place_t;

static void
s_ring_actor(zsock_t *pipe, void *args)
{
    place_t *pl = args;
    char ep[96];
    zsock_t *in = zsock_new_pull(s_ep(ep, sizeof ep, '@', "ring", pl->idx));
    zsock_t *next = zsock_new_push(
        s_ep(ep, sizeof ep, '>', "ring", (pl->idx + 1) % pl->n));
    zsock_t *done = zsock_new_push(s_ep(ep, sizeof ep, '>', "done", -1));
    zpoller_t *poller = zpoller_new(pipe, in, NULL);
    zsock_signal(pipe, 0);
    for (;;) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which != in)
            break; /* "$TERM" (or interrupted) */
        uint64_t left, hops;
        zsock_recv(in, "88", &left, &hops);
        if (left == 0)
            zsock_send(done, "88", hops, (uint64_t)pl->idx);
        else
            zsock_send(next, "88", left - 1, hops + 1);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&in);
    zsock_destroy(&next);
    zsock_destroy(&done);
}

static void
s_ring(const su_spec_t *s)
{
    long r = su_get(s, "r"), t = su_get(s, "t");
    char ep[96];
    zsock_t *done = zsock_new_pull(s_ep(ep, sizeof ep, '@', "done", -1));
    zactor_t **a = calloc((size_t)r, sizeof *a);
    place_t *pl = calloc((size_t)r, sizeof *pl);
    for (long i = 0; i < r; i++) {
        pl[i] = (place_t){i, r, 0};
        a[i] = zactor_new(s_ring_actor, &pl[i]);
    }
    zsock_t *start = zsock_new_push(s_ep(ep, sizeof ep, '>', "ring", 0));
    uint64_t hops, pos;
    double t0 = su_now();
    zsock_send(start, "88", (uint64_t)t, (uint64_t)0);
    zsock_recv(done, "88", &hops, &pos);
    double dt = su_now() - t0;
    char check[48];
    snprintf(check, sizeof check, "%llu:%llu", (unsigned long long)hops,
             (unsigned long long)pos);
    su_result(s->name, s_sys, dt, check);
    for (long i = 0; i < r; i++)
        zactor_destroy(&a[i]);
    zsock_destroy(&start);
    zsock_destroy(&done);
    free(a);
    free(pl);
}

/* ------------------------------------------------------------------ */
/* big: actor i PULLs at endpoint big-i ping (0, from) and pong (1),   */
/* PUSHes to every other actor; after p pongs, PUSHes its count to the  */
/* driver. The driver starts it with "GO" through its pipe.             */

static void
s_big_actor(zsock_t *pipe, void *args)
{
    place_t *pl = args;
    char ep[96];
    zsock_t *in = zsock_new_pull(s_ep(ep, sizeof ep, '@', "big", pl->idx));
    zsock_t **peer = calloc((size_t)pl->n, sizeof *peer);
    for (long i = 0; i < pl->n; i++) {
        if (i == pl->idx)
            continue;
        peer[i] = zsock_new_push(s_ep(ep, sizeof ep, '>', "big", i));
    }
    zsock_t *done = zsock_new_push(s_ep(ep, sizeof ep, '>', "done", -1));
    zpoller_t *poller = zpoller_new(pipe, in, NULL);
    uint64_t rng = (uint64_t)pl->idx + 1;
    uint64_t p = (uint64_t)pl->p, pongs = 0;
    zsock_signal(pipe, 0);
    for (;;) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which == in) {
            uint8_t type;
            uint32_t from;
            zsock_recv(in, "14", &type, &from);
            if (type == 0) {
                zsock_send(peer[from], "14", (uint8_t)1, (uint32_t)0);
                continue;
            }
            if (++pongs == p) {
                zsock_send(done, "8", pongs);
                continue;
            }
        } else if (which == NULL || !s_go(pipe)) {
            break;
        }
        long to = su_big_peer(pl->idx, pl->n, &rng);
        zsock_send(peer[to], "14", (uint8_t)0, (uint32_t)pl->idx);
    }
    zpoller_destroy(&poller);
    for (long i = 0; i < pl->n; i++)
        zsock_destroy(&peer[i]);
    free(peer);
    zsock_destroy(&in);
    zsock_destroy(&done);
}

static void
s_big(const su_spec_t *s)
{
    long n = su_get(s, "a"), p = su_get(s, "p");
    if (n < 2)
        su_die("big: a must be at least 2");
    char ep[96];
    zsock_t *done = zsock_new_pull(s_ep(ep, sizeof ep, '@', "done", -1));
    zactor_t **a = calloc((size_t)n, sizeof *a);
    place_t *pl = calloc((size_t)n, sizeof *pl);
    for (long i = 0; i < n; i++) {
        pl[i] = (place_t){i, n, p};
        a[i] = zactor_new(s_big_actor, &pl[i]);
    }
    uint64_t sum = 0, v;
    double t0 = su_now();
    for (long i = 0; i < n; i++)
        zstr_send(a[i], "GO");
    for (long i = 0; i < n; i++) {
        zsock_recv(done, "8", &v);
        sum += v;
    }
    su_result_int(s->name, s_sys, su_now() - t0, (long long)sum);
    for (long i = 0; i < n; i++)
        zactor_destroy(&a[i]);
    zsock_destroy(&done);
    free(a);
    free(pl);
}

/* ------------------------------------------------------------------ */
/* pool: the driver PUSHes tasks x to w worker actors, which PUSH      */
/* 2x + 1 to a sink actor that answers the sum of n through its pipe.  */

static void
s_worker(zsock_t *pipe, void *args)
{
    (void)args;
    char ep[96];
    zsock_t *in = zsock_new_pull(s_ep(ep, sizeof ep, '>', "tasks", -1));
    zsock_t *out = zsock_new_push(s_ep(ep, sizeof ep, '>', "results", -1));
    zpoller_t *poller = zpoller_new(pipe, in, NULL);
    zsock_signal(pipe, 0);
    for (;;) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which != in)
            break; /* "$TERM" (or interrupted) */
        uint64_t x;
        zsock_recv(in, "8", &x);
        zsock_send(out, "8", 2 * x + 1);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&in);
    zsock_destroy(&out);
}

static void
s_sink(zsock_t *pipe, void *args)
{
    long n = *(long *)args;
    char ep[96];
    zsock_t *in = zsock_new_pull(s_ep(ep, sizeof ep, '@', "results", -1));
    zsock_signal(pipe, 0);
    uint64_t sum = 0, v;
    for (long i = 0; i < n; i++) {
        zsock_recv(in, "8", &v);
        sum += v;
    }
    zsock_send(pipe, "8", sum);
    char *cmd = zstr_recv(pipe); /* "$TERM" */
    zstr_free(&cmd);
    zsock_destroy(&in);
}

static void
s_pool(const su_spec_t *s)
{
    long w = su_get(s, "w"), n = su_get(s, "n");
    char ep[96];
    zsock_t *tasks = zsock_new_push(s_ep(ep, sizeof ep, '@', "tasks", -1));
    zactor_t *sink = zactor_new(s_sink, &n);
    zactor_t **wk = calloc((size_t)w, sizeof *wk);
    for (long i = 0; i < w; i++)
        wk[i] = zactor_new(s_worker, NULL);
    uint64_t sum = 0;
    double t0 = su_now();
    for (long x = 0; x < n; x++)
        zsock_send(tasks, "8", (uint64_t)x);
    zsock_recv(sink, "8", &sum);
    su_result_int(s->name, s_sys, su_now() - t0, (long long)sum);
    for (long i = 0; i < w; i++)
        zactor_destroy(&wk[i]);
    zactor_destroy(&sink);
    zsock_destroy(&tasks);
    free(wk);
}

/* ------------------------------------------------------------------ */
/* memory: n idle zactors (a thread and a pipe each).                   */

static void
s_idle(zsock_t *pipe, void *args)
{
    (void)args;
    zsock_signal(pipe, 0);
    char *cmd = zstr_recv(pipe); /* "$TERM" */
    zstr_free(&cmd);
}

static void
s_memory(const su_spec_t *s)
{
    long n = su_get(s, "n");
    zactor_t **a = calloc((size_t)n, sizeof *a);
    zactor_t *first = zactor_new(s_idle, NULL);
    long before = su_rss_kib(), alive = 0;
    for (long i = 0; i < n; i++)
        alive += (a[i] = zactor_new(s_idle, NULL)) != NULL;
    su_result_int(s->name, s_sys, (double)(su_rss_kib() - before), alive);
    for (long i = 0; i < n; i++)
        zactor_destroy(&a[i]);
    zactor_destroy(&first);
    free(a);
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*fn)(const su_spec_t *s);
} s_workloads[] = {
    {"pingpong", s_pingpong}, {"counting", s_counting},
    {"fjthrput", s_fjthrput}, {"ring", s_ring},
    {"big", s_big},           {"pool", s_pool},
    {"memory", s_memory},
};

int
main(int argc, char **argv)
{
    su_args_t a;
    su_parse_args(argc, argv, &a);
    zsys_set_max_sockets(65536); /* big: a x a sockets */
    zsys_handler_set(NULL);      /* no SIGINT handler of CZMQ's own */
    for (int i = 0; i < a.nspecs; i++) {
        size_t w = 0, nw = sizeof s_workloads / sizeof s_workloads[0];
        while (w < nw && strcmp(s_workloads[w].name, a.specs[i].name) != 0)
            w++;
        if (w == nw) {
            printf("SKIP %s %s (not written for CZMQ)\n", a.specs[i].name,
                   s_sys);
            continue;
        }
        for (int r = 0; r < a.rounds; r++, s_run++)
            s_workloads[w].fn(&a.specs[i]);
    }
    return 0;
}
