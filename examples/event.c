/* examples/event.c - one "set" starts every waiter: a broadcast instead of
 * a shared flag.
 *
 * Replaces the Python tutorial's event:
 *     ev = threading.Event()
 *     N waiter threads: ev.wait(); print("started")   # block until set
 *     main:             ev.set()                      # wakes them all
 * Here no flag is shared. A "starter" actor keeps the subscribers' ids (its
 * private state); each waiter subscribes with a tr_call from its init, so
 * once tr_spawn returns, that waiter is on the list. main asks the starter
 * to "set", and the starter sends "start" to every subscriber: the
 * broadcast replaces the flag, and a message is the wake-up. A waiter is
 * not a blocked thread either, just an actor with an empty mailbox.
 *
 * Why no lock: the list and the "is set" bit belong to the starter alone,
 * changed one message at a time. Like an Event that stays set, a waiter
 * that subscribes after "set" is started at once.
 *
 * Its messages, drawn: docs/diagrams/event.svg */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

#define WAITERS 4

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "event: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

static int
s_start(tr_node_t *node, tr_id_t to)
{
    tr_msg_t *msg;
    int rc = tr_msg_create(&msg, "start");
    if (rc == 0 && (rc = tr_tell_id(node, to, &msg)) != 0)
        tr_msg_destroy(&msg);
    return rc;
}

struct starter {
    tr_id_t subs[WAITERS + 1]; /* room for the late one */
    int nsubs;
    bool set;
};

static int
s_starter_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct starter *s = state;
    tr_node_t *node = tr_actor_node(self);
    int rc = 0;
    if (tr_msg_is(msg, "subscribe")) {
        if (s->nsubs == WAITERS + 1)
            return tr_reply_error(self, msg, TR_ERANGE);
        s->subs[s->nsubs++] = tr_msg_sender(msg);
        if (s->set) /* already set: start it now, as ev.wait() returns */
            rc = s_start(node, tr_msg_sender(msg));
    } else if (tr_msg_is(msg, "set")) {
        if (!s->set) { /* like ev.set(), a second set changes nothing */
            printf("starter: set, starting %d waiters\n", s->nsubs);
            for (int i = 0; i < s->nsubs && rc == 0; i++)
                rc = s_start(node, s->subs[i]);
        }
        s->set = true;
    } else {
        return TR_EUNHANDLED;
    }
    if (rc != 0)
        return rc;
    tr_msg_t *reply; /* both are calls: the reply is the acknowledgement */
    if ((rc = tr_msg_create(&reply, "ok")) == 0 &&
        (rc = tr_reply(self, msg, &reply)) != 0)
        tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(starter, .state_size = sizeof(struct starter),
             .handle = s_starter_handle)

struct waiter {
    int64_t n; /* its number, from the spawn args */
};

static int
s_waiter_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    struct waiter *w = state;
    tr_reader_t r;
    tr_reader_init(&r, args);
    tr_msg_t *sub;
    int rc = tr_read_int(&r, &w->n);
    /* Synchronous, so the spawn returns only once this waiter is listed. */
    if (rc == 0 && (rc = tr_msg_create(&sub, "subscribe")) == 0)
        rc = tr_call(tr_actor_node(self), "starter", &sub, 5000, NULL);
    if (rc == 0)
        printf("waiter %lld: subscribed, waiting for start\n",
               (long long)w->n);
    return rc;
}

static int
s_waiter_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct waiter *w = state;
    if (!tr_msg_is(msg, "start"))
        return TR_EUNHANDLED;
    printf("waiter %lld: started\n", (long long)w->n);
    tr_exit(self, 0); /* its work is done; main joins it */
    return 0;
}

TR_BEHAVIOUR(waiter, .state_size = sizeof(struct waiter),
             .init = s_waiter_init, .handle = s_waiter_handle)

static tr_id_t
s_spawn_waiter(tr_node_t *node, int n)
{
    tr_msg_t *args;
    tr_id_t id;
    s_check(tr_msg_create(&args, "args"), "tr_msg_create");
    s_check(tr_msg_add_int(args, n), "tr_msg_add_int");
    int rc = tr_spawn(node, "waiter", &(tr_spawn_opts_t){.args = args}, &id);
    tr_msg_destroy(&args); /* borrowed by tr_spawn */
    s_check(rc, "spawn waiter");
    return id;
}

/* Join a waiter; true when it ended normally, i.e. it was started. */
static bool
s_started(tr_node_t *node, tr_id_t id)
{
    int reason;
    s_check(tr_join(node, id, 5000, &reason), "tr_join");
    return reason == 0;
}

int
main(void)
{
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    s_check(tr_spawn(node, "starter", &(tr_spawn_opts_t){.name = "starter"},
                     NULL),
            "spawn starter");
    tr_id_t waiters[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        waiters[i] = s_spawn_waiter(node, i + 1);

    printf("main: all %d waiters subscribed; ev.set()\n", WAITERS);
    tr_msg_t *set;
    s_check(tr_msg_create(&set, "set"), "tr_msg_create");
    s_check(tr_call(node, "starter", &set, 5000, NULL), "call set");

    int started = 0;
    for (int i = 0; i < WAITERS; i++)
        started += s_started(node, waiters[i]);
    printf("main: %d of %d waiters started\n", started, WAITERS);

    bool late = s_started(node, s_spawn_waiter(node, WAITERS + 1));
    printf("main: a late waiter %s (the event stays set)\n",
           late ? "started at once" : "did NOT start");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    return started == WAITERS && late ? 0 : 1;
}
