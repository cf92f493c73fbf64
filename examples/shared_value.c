/* examples/shared_value.c - a number that several processes update, with
 * no shared memory and no lock.
 *
 * Replaces the Python tutorial's shared-memory example:
 *     v = multiprocessing.Value('i', 0)
 *     child process: with v.get_lock(): v.value += 1
 *     parent: p.join(); print(v.value)
 * Here the number is the private state of a "value" actor. Four adder
 * processes never touch it: adder k sends "add" [k] N times, then calls
 * "sync" (as in counter.c: order is kept per sender, so its adds are all
 * counted before the sync is answered) and ends. main joins them, asks
 * "get" and prints the exact total, N x (1 + 2 + 3 + 4).
 *
 * Why an owning actor beats a lock on shared memory:
 *  - no lock to forget: v.value += 1 without get_lock() is a read, an add
 *    and a write that other processes interleave, and updates are lost
 *    without a sound; here there is no way to reach the number but a
 *    message, and the owner applies messages one at a time;
 *  - no torn reads: "get" is answered between two adds, never in the
 *    middle of one, however large the state grows (a struct, a table);
 *  - no stuck lock: a process killed while holding a lock leaves it held
 *    and everyone waits; a dead adder only loses the adds it never sent;
 *  - it works across processes and machines alike: the adders do not know
 *    or care where "value" runs (make it TR_PROCESS, or another node).
 *
 * Usage: shared_value [adds per adder]   (default 1000)
 *
 * Its messages, drawn: docs/diagrams/shared_value.svg (shared_value 2) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "troupe.h"

#define ADDERS 4

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "shared_value: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

struct value {
    int64_t v; /* Value('i', 0), except that nobody shares it */
};

static int
s_value_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct value *val = state;
    if (tr_msg_is(msg, "add")) {
        tr_reader_t r;
        int64_t k;
        tr_reader_init(&r, msg);
        int rc = tr_read_int(&r, &k);
        if (rc != 0)
            return rc; /* a malformed add: crash, loudly */
        val->v += k;
        return 0;
    }
    if (!tr_msg_is(msg, "sync") && !tr_msg_is(msg, "get"))
        return TR_EUNHANDLED;
    tr_msg_t *reply = NULL;
    int rc = tr_msg_create(&reply, "value");
    if (rc == 0 && (rc = tr_msg_add_int(reply, val->v)) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(value, .state_size = sizeof(struct value),
             .handle = s_value_handle)

/* On "go" [k, n]: send n "add" [k], sync, and end. Runs in its own
 * process; blocking in tr_tell and tr_call is fine, it has nothing else
 * to do. */
static int
s_adder_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_node_t *node = tr_actor_node(self);
    tr_reader_t r;
    int64_t k, n;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &k);
    if (rc == 0)
        rc = tr_read_int(&r, &n);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        tr_msg_t *add;
        if ((rc = tr_msg_create(&add, "add")) == 0 &&
            ((rc = tr_msg_add_int(add, k)) != 0 ||
             (rc = tr_tell(node, "value", &add)) != 0))
            tr_msg_destroy(&add); /* not sent: still ours */
    }
    tr_msg_t *sync;
    if (rc == 0 && (rc = tr_msg_create(&sync, "sync")) == 0)
        rc = tr_call(node, "value", &sync, 10000, NULL);
    if (rc != 0)
        return rc; /* crash: main's tr_join sees the reason */
    printf("adder %lld (pid %ld): added %lld x %lld, synced\n", (long long)k,
           (long)getpid(), (long long)n, (long long)k);
    fflush(stdout); /* its own process, its own stdio buffer */
    tr_exit(self, 0);
    return 0;
}

TR_BEHAVIOUR(adder, .handle = s_adder_handle)

int
main(int argc, char **argv)
{
    /* First: in a child this runs its actor and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000;
    if (n < 1) {
        fprintf(stderr, "usage: shared_value [adds per adder >= 1]\n");
        return 2;
    }
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    /* A thread of main's process; .mode = TR_PROCESS would do as well. */
    s_check(tr_spawn(node, "value", &(tr_spawn_opts_t){.name = "value"},
                     NULL),
            "spawn value");
    tr_id_t adders[ADDERS];
    tr_spawn_opts_t opts = {.mode = TR_PROCESS};
    s_check(tr_spawn_n(node, "adder", &opts, ADDERS, adders), "spawn adders");
    printf("main (pid %ld): %d adder processes, %lld adds each\n",
           (long)getpid(), ADDERS, (long long)n);
    fflush(stdout);

    tr_msg_t *msg;
    int64_t expected = 0;
    for (int i = 0; i < ADDERS; i++) { /* started together */
        s_check(tr_msg_create(&msg, "go"), "tr_msg_create");
        s_check(tr_msg_add_int(msg, i + 1), "tr_msg_add_int"); /* k */
        s_check(tr_msg_add_int(msg, n), "tr_msg_add_int");
        s_check(tr_tell_id(node, adders[i], &msg), "tell go");
        expected += (i + 1) * n;
    }
    for (int i = 0; i < ADDERS; i++) { /* p.join() */
        int reason;
        s_check(tr_join(node, adders[i], 30000, &reason), "tr_join");
        s_check(reason, "an adder");
    }

    tr_msg_t *reply; /* print(v.value) */
    s_check(tr_msg_create(&msg, "get"), "tr_msg_create");
    s_check(tr_call(node, "value", &msg, 5000, &reply), "call get");
    tr_reader_t r;
    int64_t v;
    tr_reader_init(&r, reply);
    int rc = tr_read_int(&r, &v);
    tr_msg_destroy(&reply);
    s_check(rc, "read value");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    printf("main: all %d adders joined\n", ADDERS);
    printf("value = %lld (expected %lld)\n", (long long)v,
           (long long)expected);
    return v == expected ? 0 : 1;
}
