/* examples/counter.c - many writers, one total, no lock.
 *
 * Replaces the Python tutorial's lock example: 10 threads each run
 *     with lock:          # lock = threading.Lock()
 *         counter += 1    # a global (or a multiprocessing.Value)
 * and the program prints the total; without the lock, increments get lost.
 *
 * Here the total is the private state of a "counter" actor. The 8 workers
 * never touch it: they send "inc" messages, and only the counter's thread,
 * one message at a time, adds to it. Nothing is shared, so there is nothing
 * to lock and nothing to lose. The bounded mailbox gives back-pressure too:
 * when the counter falls behind, a worker's tr_tell waits for room instead
 * of piling up memory.
 *
 * A subtlety worth learning: order is kept per sender only (as in Erlang);
 * the mailbox takes turns between senders. So a "get" from main could
 * overtake incs still queued from the workers. Instead each worker ends
 * with a synchronous tr_call "sync": its own incs are all handled before
 * the sync is answered (same sender, same order). main joins every worker,
 * so every inc has been counted when main asks "get".
 *
 * Usage: counter [increments per worker]   (default 100000)
 *
 * Its messages, drawn: docs/diagrams/counter.svg (counter 3) */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

#define WORKERS 8

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "counter: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

struct counter {
    int64_t total; /* the shared counter, except that nobody shares it */
};

static int
s_counter_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct counter *c = state;
    if (tr_msg_is(msg, "inc")) {
        c->total++;
        return 0;
    }
    if (!tr_msg_is(msg, "sync") && !tr_msg_is(msg, "get"))
        return TR_EUNHANDLED;
    tr_msg_t *reply = NULL; /* set on success only */
    int rc = tr_msg_create(&reply, "total");
    if (rc == 0 && (rc = tr_msg_add_int(reply, c->total)) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(counter, .state_size = sizeof(struct counter),
             .handle = s_counter_handle)

/* On "go" [n]: send n incs, sync, and end. Blocking this worker's thread
 * in tr_tell and tr_call is fine: the worker has nothing else to do. */
static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_node_t *node = tr_actor_node(self);
    tr_reader_t r;
    tr_id_t counter;
    int64_t n;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &n);
    if (rc == 0)
        rc = tr_whereis(node, "counter", &counter); /* once, not per inc */
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        tr_msg_t *inc;
        if ((rc = tr_msg_create(&inc, "inc")) == 0 &&
            (rc = tr_tell_id(node, counter, &inc)) != 0)
            tr_msg_destroy(&inc); /* not sent: still ours */
    }
    tr_msg_t *sync;
    if (rc == 0 && (rc = tr_msg_create(&sync, "sync")) == 0)
        /* Generous: under valgrind, 800000 messages take a while. */
        rc = tr_call(node, "counter", &sync, 60000, NULL);
    if (rc != 0)
        return rc; /* crash: main's tr_join sees the reason */
    printf("worker %llu: sent %lld incs, synced\n",
           (unsigned long long)tr_self(self), (long long)n);
    tr_exit(self, 0);
    return 0;
}

TR_BEHAVIOUR(worker, .handle = s_worker_handle)

int
main(int argc, char **argv)
{
    int64_t incs = argc > 1 ? atoll(argv[1]) : 100000;
    if (incs < 1) {
        fprintf(stderr, "usage: counter [increments per worker >= 1]\n");
        return 2;
    }
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    s_check(tr_spawn(node, "counter", &(tr_spawn_opts_t){.name = "counter"},
                     NULL),
            "spawn counter");

    tr_msg_t *msg;
    tr_id_t workers[WORKERS];
    s_check(tr_spawn_n(node, "worker", NULL, WORKERS, workers), "spawn");
    printf("main: %d workers will each send %lld incs to the counter\n",
           WORKERS, (long long)incs);
    /* Spawned one by one, they start together: each waits for its "go". */
    for (int i = 0; i < WORKERS; i++) {
        s_check(tr_msg_create(&msg, "go"), "tr_msg_create");
        s_check(tr_msg_add_int(msg, incs), "tr_msg_add_int");
        s_check(tr_tell_id(node, workers[i], &msg), "tell go");
    }
    for (int i = 0; i < WORKERS; i++) {
        int reason;
        s_check(tr_join(node, workers[i], 60000, &reason), "tr_join");
        s_check(reason, "a worker");
    }
    printf("main: all %d workers joined\n", WORKERS);

    tr_msg_t *reply;
    s_check(tr_msg_create(&msg, "get"), "tr_msg_create");
    s_check(tr_call(node, "counter", &msg, 5000, &reply), "call get");
    tr_reader_t r;
    int64_t total;
    tr_reader_init(&r, reply);
    int rc = tr_read_int(&r, &total);
    tr_msg_destroy(&reply);
    s_check(rc, "read total");
    s_check(tr_node_destroy(&node), "tr_node_destroy");

    printf("total = %lld (expected %lld)\n", (long long)total,
           (long long)(WORKERS * incs));
    return total == WORKERS * incs ? 0 : 1;
}
