/* examples/queue.c - producer and consumer processes and a bounded queue
 * that is nobody's shared object.
 *
 * Replaces the Python tutorial's queue example:
 *     q = multiprocessing.Queue()
 *     producer process: q.put(item)     consumer process: item = q.get()
 * Here the queue is the consumer's own mailbox, bounded by the spawn option
 * mailbox_hwm. Two producer processes send "item" [producer, seq] to the
 * "consumer" process by name: tr_try_tell gives TR_EAGAIN when the mailbox
 * is full (counted as "held back"), then tr_tell waits for room, so a fast
 * producer cannot outrun a slow consumer and nothing is dropped. Each
 * producer ends its stream with a "done" [producer, count] call (Python's
 * sentinel): order is kept per sender, so once it is answered, all that
 * producer's items have been consumed. main joins the producers, then
 * asks "totals": produced (the sum of the counts), consumed, out of order.
 *
 * Why no lock and no shared memory: a multiprocessing.Queue is a pipe plus
 * a feeder thread plus locks, shared by every process that holds it. Here
 * the items, counts and sequence checks belong to the consumer alone, and
 * the runtime bounds the mailbox. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "troupe.h"

#define PRODUCERS 2
#define ITEMS 1000     /* per producer */
#define MAILBOX 8      /* the consumer's mailbox_hwm: the queue's bound */
#define WORK_NS 100000 /* the consumer's work per item: 0.1 ms */

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "queue: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* A message of tag with two integers. */
static int
s_msg(tr_msg_t **out, const char *tag, int64_t a, int64_t b)
{
    int rc = tr_msg_create(out, tag);
    if (rc == 0 && ((rc = tr_msg_add_int(*out, a)) != 0 ||
                    (rc = tr_msg_add_int(*out, b)) != 0))
        tr_msg_destroy(out);
    return rc;
}

struct consumer {
    int64_t last[PRODUCERS]; /* the last seq from each producer */
    int64_t produced, consumed, disorder; /* per-sender order: 0 */
};

static int
s_consumer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct consumer *c = state;
    bool item = tr_msg_is(msg, "item"), done = tr_msg_is(msg, "done");
    if (!item && !done && !tr_msg_is(msg, "totals"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t p = 0, n = 0; /* item [producer, seq], done [producer, count] */
    int rc = 0;
    tr_reader_init(&r, msg);
    if ((item || done) && (rc = tr_read_int(&r, &p)) == 0 &&
        (rc = tr_read_int(&r, &n)) == 0 && (p < 0 || p >= PRODUCERS))
        rc = TR_ERANGE;
    if (rc != 0)
        return rc; /* a malformed message: crash, loudly */
    if (item) {
        nanosleep(&(struct timespec){0, WORK_NS}, NULL); /* slow work */
        c->disorder += n != c->last[p] + 1;
        c->last[p] = n;
        c->consumed++;
        return 0;
    }
    c->produced += n; /* done: its sender's items are all consumed now */
    tr_msg_t *reply = NULL;
    if ((rc = s_msg(&reply, "totals", c->produced, c->consumed)) == 0 &&
        (rc = tr_msg_add_int(reply, c->disorder)) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(consumer, .state_size = sizeof(struct consumer),
             .handle = s_consumer_handle)

/* On "go" [producer]: put ITEMS items, then call "done", and end.
 * Blocking in tr_tell is fine: the producer has nothing else to do. */
static int
s_producer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_node_t *node = tr_actor_node(self);
    tr_reader_t r;
    int64_t p, held = 0;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &p);
    for (int64_t seq = 1; rc == 0 && seq <= ITEMS; seq++) {
        tr_msg_t *item;
        if ((rc = s_msg(&item, "item", p, seq)) != 0)
            break;
        if ((rc = tr_try_tell(node, "consumer", &item)) == TR_EAGAIN) {
            held++; /* full: q.put() would block here; so does tr_tell */
            rc = tr_tell(node, "consumer", &item);
        }
        tr_msg_destroy(&item); /* not sent: still ours */
    }
    tr_msg_t *done; /* the end of this producer's stream, synchronous */
    if (rc == 0 && (rc = s_msg(&done, "done", p, ITEMS)) == 0)
        rc = tr_call(node, "consumer", &done, 10000, NULL);
    if (rc != 0)
        return rc; /* crash: main's tr_join sees the reason */
    printf("producer %lld (pid %ld): put %d items, held back %lld times\n",
           (long long)p + 1, (long)getpid(), ITEMS, (long long)held);
    fflush(stdout); /* its own process, its own stdio buffer */
    tr_exit(self, 0);
    return 0;
}

TR_BEHAVIOUR(producer, .handle = s_producer_handle)

int
main(int argc, char **argv)
{
    /* First: in a child this runs its actor and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");

    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    s_check(tr_spawn(node, "consumer",
                     &(tr_spawn_opts_t){.name = "consumer",
                                        .mode = TR_PROCESS,
                                        .mailbox_hwm = MAILBOX},
                     NULL),
            "spawn consumer");
    tr_id_t producers[PRODUCERS];
    tr_spawn_opts_t opts = {.mode = TR_PROCESS};
    s_check(tr_spawn_n(node, "producer", &opts, PRODUCERS, producers),
            "spawn producers");
    printf("main: %d producer processes, %d items each, one consumer "
           "process with a mailbox of %d\n", PRODUCERS, ITEMS, MAILBOX);
    fflush(stdout); /* before the producers print */
    for (int p = 0; p < PRODUCERS; p++) { /* started together */
        tr_msg_t *go;
        s_check(s_msg(&go, "go", p, 0), "tr_msg_create");
        s_check(tr_tell_id(node, producers[p], &go), "tell go");
    }
    for (int p = 0; p < PRODUCERS; p++) { /* p.join() */
        int reason;
        s_check(tr_join(node, producers[p], 10000, &reason), "tr_join");
        s_check(reason, "a producer");
    }

    tr_msg_t *msg, *reply;
    s_check(tr_msg_create(&msg, "totals"), "tr_msg_create");
    s_check(tr_call(node, "consumer", &msg, 10000, &reply), "call totals");
    int64_t t[3] = {0}; /* produced, consumed, out of order */
    tr_reader_t r;
    int rc = 0;
    tr_reader_init(&r, reply);
    for (int k = 0; k < 3 && rc == 0; k++)
        rc = tr_read_int(&r, &t[k]);
    tr_msg_destroy(&reply);
    s_check(rc, "read totals");
    s_check(tr_node_destroy(&node), "tr_node_destroy");

    printf("consumer: %lld items, each producer's in order: %s\n",
           (long long)t[1], t[2] == 0 ? "yes" : "NO");
    printf("produced %lld, consumed %lld, lost %lld\n", (long long)t[0],
           (long long)t[1], (long long)(t[0] - t[1]));
    return t[0] == PRODUCERS * ITEMS && t[1] == t[0] && t[2] == 0 ? 0 : 1;
}
