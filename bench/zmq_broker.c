/* bench/zmq_broker.c - the thread pool's message pattern in raw libzmq: the
 * floor that any pool on ZeroMQ meets on this machine.
 *
 * A client thread sends one 16-byte task (id, x) a message to a broker
 * thread (PUSH -> PULL inproc) and keeps a window in flight. The broker
 * queues tasks and hands them to idle worker threads by credit, exactly
 * as troupe's pool does: one at a time while the queue is short, half a
 * worker's share (up to 64) in one message when 4 tasks a worker or more
 * wait. A worker answers a batch in one message; the broker sends the
 * results to the client as one multipart run, one part a task. No
 * envelope, no msgpack, no futures: what is left is ZeroMQ's own cost.
 */
#include "zmq_broker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench_util.h"

#define ZB_BATCH 64
#define ZB_MAX_WORKERS 16

typedef struct {
    uint64_t id;
    int64_t x;
} zb_task_t;

typedef struct {
    void *ctx;
    int index;
} zb_worker_arg_t;

static void *
s_socket(void *ctx, int type, const char *ep, bool bind)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0;
    bu_zcheck(s != NULL, "zmq_socket");
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    bu_zcheck((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) == 0, ep);
    return s;
}

/* A worker: a batch in, the same tasks' results out ([index][tasks]). */
static void *
s_worker(void *arg)
{
    zb_worker_arg_t *w = arg;
    pthread_setname_np(pthread_self(), "zb_worker");
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://zb-w%d", w->index);
    void *in = s_socket(w->ctx, ZMQ_PULL, ep, true);
    void *out = s_socket(w->ctx, ZMQ_PUSH, "inproc://zb-done", false);
    struct {
        uint64_t index;
        zb_task_t t[ZB_BATCH];
    } done;
    zb_task_t batch[ZB_BATCH];
    done.index = (uint64_t)w->index;
    bu_zcheck(zmq_send(out, &done, sizeof done.index, 0) >= 0, "ready");
    for (;;) {
        int len = zmq_recv(in, batch, sizeof batch, 0);
        bu_zcheck(len >= 0, "worker recv");
        if (len == 1)
            break; /* quit */
        int n = len / (int)sizeof(zb_task_t);
        for (int i = 0; i < n; i++)
            done.t[i] = batch[i]; /* ident: the result is x */
        bu_zcheck(zmq_send(out, &done,
                           sizeof done.index + (size_t)n * sizeof(zb_task_t),
                           0) >= 0,
                  "worker send");
    }
    zmq_close(in);
    zmq_close(out);
    return NULL;
}

typedef struct {
    void *ctx;
    int workers;
} zb_broker_arg_t;

/* The broker: a ring of queued tasks, a list of idle workers. */
static void *
s_broker(void *arg)
{
    zb_broker_arg_t *b = arg;
    pthread_setname_np(pthread_self(), "zb_broker");
    void *in = s_socket(b->ctx, ZMQ_PULL, "inproc://zb-in", true);
    void *out = s_socket(b->ctx, ZMQ_PUSH, "inproc://zb-out", false);
    void *done = s_socket(b->ctx, ZMQ_PULL, "inproc://zb-done", true);
    void *to[ZB_MAX_WORKERS];
    for (int i = 0; i < b->workers; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://zb-w%d", i);
        to[i] = s_socket(b->ctx, ZMQ_PUSH, ep, false);
    }
    size_t cap = 1 << 16, head = 0, nq = 0;
    zb_task_t *q = malloc(cap * sizeof *q);
    int idle[ZB_MAX_WORKERS], nidle = 0;
    if (q == NULL)
        abort();
    bool quit = false;
    zmq_pollitem_t items[2] = {{in, 0, ZMQ_POLLIN, 0},
                               {done, 0, ZMQ_POLLIN, 0}};
    while (!quit) {
        bu_zcheck(zmq_poll(items, 2, -1) >= 0, "broker poll");
        zb_task_t t;
        int len;
        while (!quit && (len = zmq_recv(in, &t, sizeof t, ZMQ_DONTWAIT)) >= 0) {
            if (len == 1) {
                quit = true;
                break;
            }
            if (nq == cap)
                abort(); /* the client's window is far below cap */
            q[(head + nq++) % cap] = t;
        }
        struct {
            uint64_t index;
            zb_task_t t[ZB_BATCH];
        } d;
        while ((len = zmq_recv(done, &d, sizeof d, ZMQ_DONTWAIT)) >= 0) {
            int n = (len - (int)sizeof d.index) / (int)sizeof(zb_task_t);
            for (int i = 0; i < n; i++)
                bu_zcheck(zmq_send(out, &d.t[i], sizeof d.t[i],
                                   i + 1 < n ? ZMQ_SNDMORE : 0) >= 0,
                          "broker reply");
            idle[nidle++] = (int)d.index;
        }
        while (nidle > 0 && nq > 0) {
            size_t nw = (size_t)b->workers;
            size_t share = nq >= 4 * nw ? nq / (2 * nw) : 1;
            size_t n = share > ZB_BATCH ? ZB_BATCH : share;
            zb_task_t batch[ZB_BATCH];
            for (size_t i = 0; i < n; i++) {
                batch[i] = q[head];
                head = (head + 1) % cap;
                nq--;
            }
            bu_zcheck(zmq_send(to[idle[--nidle]], batch, n * sizeof *batch,
                               0) >= 0,
                      "broker dispatch");
        }
    }
    for (int i = 0; i < b->workers; i++) {
        bu_zcheck(zmq_send(to[i], "q", 1, 0) >= 0, "quit");
        zmq_close(to[i]);
    }
    free(q);
    zmq_close(in);
    zmq_close(out);
    zmq_close(done);
    return NULL;
}

double
zb_rate(long n, int workers, int window)
{
    if (workers > ZB_MAX_WORKERS)
        workers = ZB_MAX_WORKERS;
    void *ctx = zmq_ctx_new();
    zb_broker_arg_t b = {ctx, workers};
    zb_worker_arg_t wa[ZB_MAX_WORKERS];
    pthread_t bt, wt[ZB_MAX_WORKERS];
    /* (inproc takes a connect before the bind since ZeroMQ 4.) */
    void *replies = s_socket(ctx, ZMQ_PULL, "inproc://zb-out", true);
    for (int i = 0; i < workers; i++)
        wa[i] = (zb_worker_arg_t){ctx, i};
    pthread_create(&bt, NULL, s_broker, &b);
    for (int i = 0; i < workers; i++)
        pthread_create(&wt[i], NULL, s_worker, &wa[i]);
    void *tasks = s_socket(ctx, ZMQ_PUSH, "inproc://zb-in", false);
    long sent = 0, got = 0;
    int64_t sum = 0;
    double t0 = bu_now();
    while (got < n) {
        while (sent < n && sent - got < window) {
            zb_task_t t = {(uint64_t)sent + 1, sent};
            bu_zcheck(zmq_send(tasks, &t, sizeof t, 0) >= 0, "client send");
            sent++;
        }
        zb_task_t r;
        bu_zcheck(zmq_recv(replies, &r, sizeof r, 0) >= 0, "client recv");
        sum += r.x;
        got++;
    }
    double dt = bu_now() - t0;
    bu_zcheck(zmq_send(tasks, "q", 1, 0) >= 0, "quit");
    pthread_join(bt, NULL);
    for (int i = 0; i < workers; i++)
        pthread_join(wt[i], NULL);
    zmq_close(tasks);
    zmq_close(replies);
    zmq_ctx_term(ctx);
    if (sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "zmq_broker: wrong sum %lld\n", (long long)sum);
        exit(1);
    }
    return (double)n / dt;
}
