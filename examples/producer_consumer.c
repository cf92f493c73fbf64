/* examples/producer_consumer.c - a fast producer, a slow consumer, and a
 * small mailbox between them that holds the producer back.
 *
 * Replaces the Python tutorial's semaphore (and the bounded queue it is
 * usually paired with):
 *     q = queue.Queue(maxsize=8)   # or a threading.Semaphore(8)
 *     producer: q.put(item)        # blocks while the queue is full
 *     consumer: item = q.get(); work(item)
 * Here the queue is the consumer's own mailbox, bounded by the spawn option
 * mailbox_hwm (a bound per sender: each producer gets its own 8 places).
 * tr_try_tell is put_nowait(): a full mailbox gives TR_EAGAIN at once, the
 * "semaphore is at zero" moment. tr_tell is put(): it waits for room, up to
 * a deadline. Nothing is dropped: a message is either in the mailbox or
 * still in the producer's hands.
 *
 * Why no lock: the consumer's count and checksum are its private state, and
 * the runtime bounds the mailbox, so there is no shared counter or queue to
 * guard. The end: the producer asks "end" with tr_call; order is kept per
 * sender, so the consumer handles every item before it answers.
 *
 * Its messages, drawn: docs/diagrams/producer_consumer.svg */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "troupe.h"

#define ITEMS 100
#define MAILBOX 8       /* like Queue(maxsize=8) */
#define WORK_NS 1000000 /* the consumer's work per item: 1 ms */

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "producer_consumer: %s: %s\n", what,
                tr_strerror(rc));
        exit(1);
    }
}

struct consumer {
    int64_t consumed, checksum;
    int64_t last, disorder; /* per-sender order: disorder stays 0 */
};

static int
s_consumer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct consumer *c = state;
    tr_reader_t r;
    int64_t item;
    if (tr_msg_is(msg, "item")) {
        tr_reader_init(&r, msg);
        int rc = tr_read_int(&r, &item);
        if (rc != 0)
            return rc;
        nanosleep(&(struct timespec){0, WORK_NS}, NULL); /* slow work */
        c->disorder += item != c->last + 1;
        c->last = item;
        c->consumed++;
        c->checksum += item;
        return 0;
    }
    if (!tr_msg_is(msg, "end"))
        return TR_EUNHANDLED;
    tr_msg_t *reply = NULL;
    int rc = tr_msg_create(&reply, "totals");
    if (rc == 0 && (rc = tr_msg_add_int(reply, c->consumed)) == 0 &&
        (rc = tr_msg_add_int(reply, c->checksum)) == 0 &&
        (rc = tr_msg_add_int(reply, c->disorder)) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(consumer, .state_size = sizeof(struct consumer),
             .handle = s_consumer_handle)

/* The producer is main: tell works from any thread, not only from actors. */
int
main(void)
{
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    tr_spawn_opts_t opts = {.name = "consumer", .mailbox_hwm = MAILBOX};
    s_check(tr_spawn(node, "consumer", &opts, NULL), "spawn consumer");
    printf("producer: sending %d items to a consumer with a mailbox of %d\n",
           ITEMS, MAILBOX);

    int64_t produced = 0, held_back = 0, expected = 0;
    for (int64_t i = 1; i <= ITEMS; i++) {
        tr_msg_t *msg;
        s_check(tr_msg_create(&msg, "item"), "tr_msg_create");
        s_check(tr_msg_add_int(msg, i), "tr_msg_add_int");
        int rc = tr_try_tell(node, "consumer", &msg);
        if (rc == TR_EAGAIN) {
            /* Full: put_nowait() would raise queue.Full here. Count it,
             * then wait for room like put() (up to the send timeout). */
            held_back++;
            rc = tr_tell(node, "consumer", &msg);
        }
        if (rc != 0)
            tr_msg_destroy(&msg); /* not sent: still ours */
        s_check(rc, "tell item");
        produced++;
        expected += i;
    }
    /* Fewer than ITEMS - MAILBOX: ZeroMQ lets a held sender go only once
     * about half the places are free again (its low-water mark), so the
     * producer then sends a burst before the next TR_EAGAIN. */
    printf("producer: all %lld items sent; held back %lld times "
           "(mailbox full)\n", (long long)produced, (long long)held_back);

    tr_msg_t *end, *reply;
    s_check(tr_msg_create(&end, "end"), "tr_msg_create");
    s_check(tr_call(node, "consumer", &end, 10000, &reply), "call end");
    int64_t got[3] = {0}; /* consumed, checksum, out of order */
    tr_reader_t r;
    int rc = 0;
    tr_reader_init(&r, reply);
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = tr_read_int(&r, &got[i]);
    tr_msg_destroy(&reply);
    s_check(rc, "read totals");
    s_check(tr_node_destroy(&node), "tr_node_destroy");

    bool in_order = got[2] == 0;
    bool ok = got[0] == produced && got[1] == expected && in_order &&
              held_back > 0;
    printf("consumer: consumed %lld items, in order: %s\n",
           (long long)got[0], in_order ? "yes" : "NO");
    printf("checksum %lld, expected %lld: %s\n", (long long)got[1],
           (long long)expected, got[1] == expected ? "match" : "MISMATCH");
    printf("produced %lld, consumed %lld, lost %lld, held back %s\n",
           (long long)produced, (long long)got[0],
           (long long)(produced - got[0]), held_back > 0 ? "yes" : "NO");
    return ok ? 0 : 1;
}
