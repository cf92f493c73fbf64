/* examples/tree.c - a small supervision tree, and what restarts when which
 * child dies.
 *
 *     top (ONE_FOR_ONE)
 *     |-- logger            a thread actor
 *     `-- pair (ONE_FOR_ALL)
 *         |-- reader        a process actor
 *         `-- writer        a process actor
 *
 * Python has nothing to replace here: a thread or process that dies is
 * gone, and whatever depended on it is left to notice (or not). In Erlang
 * and here, a supervisor restarts children by a strategy: ONE_FOR_ONE
 * restarts only the child that died; ONE_FOR_ALL, for children that only
 * make sense together (a reader and a writer of one stream), stops the
 * others and restarts them all. Supervisors nest: "pair" is a child of
 * "top" (tr_sup_start with .parent), and a supervisor works the same with
 * thread and process children.
 *
 * main crashes "writer", then "logger", and prints each actor's id before
 * and after (tr_whereis). To know a restart is over, it joins the actors
 * that must end, then calls the new ones by name ("ping"): the names are
 * kept across restarts, so a call made meanwhile waits for the new actor.
 *
 * Why no lock and no shared memory: nothing the crashed actors held is
 * shared, so a restart only has to build fresh state; no survivor can be
 * left with half-updated data or a lock the dead one held.
 *
 * Its messages, drawn: docs/diagrams/tree.svg */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "troupe.h"

static const char *const s_names[] = {"logger", "reader", "writer"};

static void
s_check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "tree: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* Each process has its own stdio buffer: flush every line. */
static void
s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* All three children run this behaviour; they differ by name and mode. */
static int
s_member_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)state, (void)args;
    s_say("  %s: up as actor %llu (pid %ld)\n", tr_actor_name(self),
          (unsigned long long)tr_self(self), (long)getpid());
    return 0;
}

static int
s_member_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "crash"))
        return TR_EFAILED; /* an error from handle ends the actor */
    if (!tr_msg_is(msg, "ping"))
        return TR_EUNHANDLED;
    tr_msg_t *reply = NULL;
    int rc = tr_msg_create(&reply, "pong");
    if (rc == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

static void
s_member_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)state;
    s_say("  %s: down: %s\n", tr_actor_name(self), tr_strerror(reason));
}

TR_BEHAVIOUR(member, .init = s_member_init, .handle = s_member_handle,
             .terminate = s_member_terminate)

/* The ids of the three names now. */
static void
s_snapshot(tr_node_t *node, tr_id_t ids[3])
{
    for (int i = 0; i < 3; i++)
        s_check(tr_whereis(node, s_names[i], &ids[i]), s_names[i]);
}

/* Crash one child, wait for each actor in ends[] (by index) to end, then
 * for the new ones to answer; print which names got a new actor. */
static void
s_crash(tr_node_t *node, int victim, const int *ends, int nends,
        tr_id_t before[3], tr_id_t after[3])
{
    tr_msg_t *msg;
    s_say("main: crashing %s\n", s_names[victim]);
    s_check(tr_msg_create(&msg, "crash"), "tr_msg_create");
    s_check(tr_tell(node, s_names[victim], &msg), "tell crash");
    for (int i = 0; i < nends; i++)
        s_check(tr_join(node, before[ends[i]], 5000, NULL), "tr_join");
    for (int i = 0; i < 3; i++) {
        s_check(tr_msg_create(&msg, "ping"), "tr_msg_create");
        s_check(tr_call(node, s_names[i], &msg, 5000, NULL), "call ping");
    }
    s_snapshot(node, after);
    char line[128] = "";
    for (int i = 0; i < 3; i++)
        if (after[i] != before[i])
            strcat(strcat(line, " "), s_names[i]);
    s_say("main: %s crash restarted:%s\n", s_names[victim], line);
}

int
main(int argc, char **argv)
{
    /* First: in a child this runs its actor and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");

    tr_node_t *node;
    tr_id_t top, pair, ids[3][3]; /* [snapshot][logger, reader, writer] */
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    tr_child_spec_t logger = {.id = "logger", .behaviour = "member",
                              .spawn = {.name = "logger"}};
    tr_child_spec_t rw[2] = {
        {.id = "reader", .behaviour = "member",
         .spawn = {.name = "reader", .mode = TR_PROCESS}},
        {.id = "writer", .behaviour = "member",
         .spawn = {.name = "writer", .mode = TR_PROCESS}}};
    s_say("main: starting top (one_for_one) with logger\n");
    s_check(tr_sup_start(node, &(tr_sup_opts_t){.name = "top"}, &logger, 1,
                         &top),
            "start top");
    s_say("main: starting pair (one_for_all) under top\n");
    s_check(tr_sup_start(node,
                         &(tr_sup_opts_t){.name = "pair",
                                          .strategy = TR_ONE_FOR_ALL,
                                          .parent = top},
                         rw, 2, &pair),
            "start pair");
    s_snapshot(node, ids[0]);

    /* The writer dies: its supervisor stops the reader, restarts both. */
    s_crash(node, 2, (int[]){2, 1}, 2, ids[0], ids[1]);
    /* The logger dies: top restarts it alone; pair is left alone. */
    s_crash(node, 0, (int[]){0}, 1, ids[1], ids[2]);

    tr_sup_child_t kids[2];
    int n = tr_sup_which_children(node, top, kids, 2);
    s_check(n, "tr_sup_which_children");
    s_say("\n%-8s %8s %14s %14s\n", "name", "start", "writer crash",
          "logger crash");
    for (int i = 0; i < 3; i++)
        s_say("%-8s %8llu %14llu %14llu\n", s_names[i],
              (unsigned long long)ids[0][i], (unsigned long long)ids[1][i],
              (unsigned long long)ids[2][i]);
    for (int i = 0; i < n; i++)
        s_say("top's child %s: restarted %d time(s)\n", kids[i].id,
              kids[i].restarts);
    s_say("main: destroying the node stops the tree\n");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    bool ok = ids[1][0] == ids[0][0] && ids[1][1] != ids[0][1] &&
              ids[1][2] != ids[0][2] && ids[2][0] != ids[1][0] &&
              ids[2][1] == ids[1][1] && ids[2][2] == ids[1][2];
    s_say("tree: writer crash restarted reader and writer, logger crash "
          "only logger: %s\n", ok ? "yes" : "NO");
    return ok ? 0 : 1;
}
