/* examples/order.c - two writers, one printer: which line comes first?
 *
 * Replaces the Python tutorial's two threads printing to one console:
 *     t1 = Thread(target=lambda: [print("w1:", i) for i in (1, 2)])
 *     t2 = Thread(target=lambda: [print("w2:", i) for i in (1, 2)])
 * where the lines interleave however the scheduler likes. Here the
 * console is an actor, "printer", and each writer tells it its lines.
 * troupe promises one order only: the lines of one writer arrive in the
 * order it sent them. Between the writers nothing is promised.
 *
 * Run it as it is and the lines interleave however the threads ran. Run
 * it with TROUPE_STEP=1 and you are the scheduler: before each message is
 * handled, the terminal lists the messages waiting and you pick the next
 * one (enter: the oldest). Try to print "w2: 2" before "w1: 1" - you can.
 * Try to print "w1: 2" before "w1: 1" - step mode refuses: that is the
 * order troupe keeps.
 *
 * Why no lock: the printer is the only one that touches the console; the
 * writers only send it messages.
 *
 * Its messages, drawn: docs/diagrams/order.svg */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

#define LINES 2 /* per writer */

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "order: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* The printer: prints each "line"; answers "wait" [n] once it printed n
 * lines (it keeps the request until then). */
struct printer {
    int64_t printed, want;
    tr_msg_t *waiting;
};

static int
s_printer_done(tr_actor_t *self, struct printer *p)
{
    if (p->waiting == NULL || p->printed < p->want)
        return 0;
    tr_msg_t *answer = NULL;
    int rc = tr_msg_create(&answer, "printed");
    if (rc == 0)
        rc = tr_reply(self, p->waiting, &answer);
    tr_msg_destroy(&answer);
    tr_msg_destroy(&p->waiting);
    return rc;
}

static int
s_printer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct printer *p = state;
    tr_reader_t r;
    tr_reader_init(&r, msg);
    if (tr_msg_is(msg, "line")) {
        char text[64];
        int rc = tr_read_str_copy(&r, text, sizeof text);
        if (rc != 0)
            return rc;
        printf("printer: %s\n", text);
        fflush(stdout);
        p->printed++;
        return s_printer_done(self, p);
    }
    if (tr_msg_is(msg, "wait")) {
        int rc = tr_read_int(&r, &p->want);
        if (rc == 0)
            rc = tr_msg_dup(msg, &p->waiting);
        return rc == 0 ? s_printer_done(self, p) : rc;
    }
    return TR_EUNHANDLED;
}

static void
s_printer_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    struct printer *p = state;
    tr_msg_destroy(&p->waiting);
}
TR_BEHAVIOUR(printer, .state_size = sizeof(struct printer),
             .handle = s_printer_handle, .terminate = s_printer_terminate)

/* A writer: on "go", tells the printer LINES lines with its name. */
static int
s_writer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    for (int i = 1; i <= LINES; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s: %d", tr_actor_name(self), i);
        tr_msg_t *m = NULL;
        int rc = tr_msg_create(&m, "line");
        if (rc == 0)
            rc = tr_msg_add_str(m, text);
        if (rc == 0)
            rc = tr_tell(tr_actor_node(self), "printer", &m);
        tr_msg_destroy(&m);
        if (rc != 0)
            return rc;
    }
    return 0;
}
TR_BEHAVIOUR(writer, .handle = s_writer_handle)

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv);
    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, &(tr_node_opts_t){.name = "order"}),
            "node");
    s_check(tr_spawn(node, "printer", &(tr_spawn_opts_t){.name = "printer"},
                     NULL),
            "spawn printer");
    s_check(tr_spawn(node, "writer", &(tr_spawn_opts_t){.name = "w1"}, NULL),
            "spawn w1");
    s_check(tr_spawn(node, "writer", &(tr_spawn_opts_t){.name = "w2"}, NULL),
            "spawn w2");
    for (int i = 1; i <= 2; i++) {
        tr_msg_t *go = NULL;
        s_check(tr_msg_create(&go, "go"), "go");
        s_check(tr_tell(node, i == 1 ? "w1" : "w2", &go), "tell go");
    }
    /* Wait for all the lines (for an hour: in step mode a person picks
     * every message). */
    tr_msg_t *wait = NULL, *answer = NULL;
    s_check(tr_msg_create(&wait, "wait"), "wait");
    s_check(tr_msg_add_int(wait, 2 * LINES), "wait");
    s_check(tr_call(node, "printer", &wait, 3600 * 1000, &answer),
            "wait for the printer");
    tr_msg_destroy(&answer);
    printf("order: %d lines; each writer's in its order, the two mixed "
           "somehow\n", 2 * LINES);
    s_check(tr_node_destroy(&node), "destroy");
    return 0;
}
