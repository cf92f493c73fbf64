/* examples/hello.c - two actors play ping-pong; main waits for one to end.
 *
 * Replaces the Python tutorial's first example:
 *     t = threading.Thread(target=task)   # task() prints a greeting
 *     t.start(); t.join()
 * Here the "task" is a behaviour (callbacks registered by name with
 * TR_BEHAVIOUR), tr_spawn starts it on its own thread, and tr_join is
 * Thread.join(). Two actors talk: the pinger sends "ping" n, the ponger
 * answers "pong" n, N times; then the pinger ends itself with
 * tr_exit(self, 0) and main's tr_join returns.
 *
 * Why no lock: each actor's state (the pinger's round counter) is touched
 * only by its own thread, one message at a time. The threads share
 * nothing; they only exchange messages.
 *
 * Usage: hello [N]   (N rounds, default 5)
 *
 * Its messages, drawn: docs/diagrams/hello.svg (hello 3) */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

/* Examples stop at the first error: say which call failed and why. */
static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "hello: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* Send tag [n] to an actor. A message not sent is still ours to free. */
static int
s_send(tr_node_t *node, tr_id_t to, const char *tag, int64_t n)
{
    tr_msg_t *msg = NULL;
    int rc = tr_msg_create(&msg, tag);
    if (rc == 0 && (rc = tr_msg_add_int(msg, n)) == 0)
        rc = tr_tell_id(node, to, &msg);
    tr_msg_destroy(&msg); /* NULL after a successful send: a no-op then */
    return rc;
}

/* The ponger has no state: it answers each ping to whoever sent it. */
static int
s_ponger_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "ping"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &n);
    if (rc != 0)
        return rc; /* a malformed ping: crash, loudly */
    printf("ponger: got ping %lld from actor %llu, sending pong %lld\n",
           (long long)n, (unsigned long long)tr_msg_sender(msg),
           (long long)n);
    return s_send(tr_actor_node(self), tr_msg_sender(msg), "pong", n);
}

/* Runs on the ponger's thread as it ends: here, when main destroys the node. */
static void
s_ponger_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self;
    (void)state;
    printf("ponger: stopping: %s\n", tr_strerror(reason));
}

TR_BEHAVIOUR(ponger, .handle = s_ponger_handle,
             .terminate = s_ponger_terminate)

struct pinger {
    int64_t rounds; /* N, from the spawn args */
    tr_id_t ponger; /* whom to ping, from the spawn args */
};

/* The spawn args are [N, ponger id]; the first ping goes out from init. */
static int
s_pinger_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    struct pinger *p = state;
    tr_reader_t r;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &p->rounds);
    if (rc == 0 && (rc = tr_read_uint(&r, &p->ponger)) == 0) {
        printf("pinger: got N = %lld and ponger id %llu, sending ping 1\n",
               (long long)p->rounds, (unsigned long long)p->ponger);
        rc = s_send(tr_actor_node(self), p->ponger, "ping", 1);
    }
    return rc; /* non-zero fails the spawn with this code */
}

static int
s_pinger_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct pinger *p = state;
    if (!tr_msg_is(msg, "pong"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &n);
    if (rc != 0)
        return rc;
    if (n >= p->rounds) {
        printf("pinger: got pong %lld, all %lld rounds done, exiting\n",
               (long long)n, (long long)p->rounds);
        tr_exit(self, 0); /* a normal end, once this callback returns */
        return 0;
    }
    printf("pinger: got pong %lld, sending ping %lld\n", (long long)n,
           (long long)n + 1);
    return s_send(tr_actor_node(self), p->ponger, "ping", n + 1);
}

TR_BEHAVIOUR(pinger, .state_size = sizeof(struct pinger),
             .init = s_pinger_init, .handle = s_pinger_handle)

int
main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1)
        rounds = 5; /* not a positive number: the default */
    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");

    tr_id_t ponger, pinger;
    s_check(tr_spawn(node, "ponger", &(tr_spawn_opts_t){.name = "ponger"},
                     &ponger),
            "spawn ponger");
    printf("main: spawned the ponger (actor %llu)\n",
           (unsigned long long)ponger);

    /* Like Thread(args=...): the arguments travel in a message. */
    tr_msg_t *args;
    s_check(tr_msg_create(&args, "args"), "tr_msg_create");
    s_check(tr_msg_add_int(args, rounds), "tr_msg_add_int");
    s_check(tr_msg_add_uint(args, ponger), "tr_msg_add_uint");
    int rc = tr_spawn(node, "pinger", &(tr_spawn_opts_t){.args = args},
                      &pinger);
    tr_msg_destroy(&args); /* borrowed by tr_spawn: still ours */
    s_check(rc, "spawn pinger");

    /* Thread.join(): wait for the pinger to end, with a deadline. */
    int reason;
    s_check(tr_join(node, pinger, 5000, &reason), "tr_join");
    printf("main: pinger %llu joined, exit reason %d (%s)\n",
           (unsigned long long)pinger, reason, tr_strerror(reason));

    /* The ponger is still running: destroy stops it (reason TR_ESHUTDOWN)
     * before it frees the node. */
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    printf("hello: %d round trips, done\n", rounds);
    return reason == 0 ? 0 : 1;
}
