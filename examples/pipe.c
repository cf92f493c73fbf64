/* examples/pipe.c - two processes talk; the messages are those of threads.
 *
 * Replaces the Python tutorial's pipe example:
 *     parent_conn, child_conn = multiprocessing.Pipe()
 *     p = Process(target=child, args=(child_conn,)); p.start()
 *     parent_conn.send("hello")    # child(conn): print(conn.recv())
 *     p.join()
 * Here there is no pipe object to create, hand over and close: every actor
 * has a mailbox and an id, wherever it runs. The "sender" tells a string
 * to the "receiver" by name; the receiver prints it and tells an "ack"
 * back to whoever sent it (tr_msg_sender), then the sender ends itself and
 * main's tr_join returns. main runs the same two behaviours twice, first
 * as threads, then as processes (.mode = TR_PROCESS): not a line of the
 * actors changes, only the pids they print.
 *
 * Why no lock and no shared memory: each actor touches only its own state;
 * the string is copied into a message (msgpack) and the message moves, over
 * inproc between threads or an ipc socket between processes. s_say flushes
 * each line: each process has its own stdio buffer.
 *
 * Its messages, drawn: docs/diagrams/pipe.svg */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "troupe.h"

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "pipe: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

static void
s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* Send tag [s] to an actor, by name or (name NULL) by id. */
static int
s_send(tr_node_t *node, const char *name, tr_id_t to, const char *tag,
       const char *s)
{
    tr_msg_t *msg = NULL;
    int rc = tr_msg_create(&msg, tag);
    if (rc == 0 && (rc = tr_msg_add_str(msg, s)) == 0)
        rc = name ? tr_tell(node, name, &msg) : tr_tell_id(node, to, &msg);
    tr_msg_destroy(&msg); /* NULL after a successful send: a no-op then */
    return rc;
}

/* The receiver has no state: it prints each text and acks its sender. */
static int
s_receiver_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_reader_t r;
    char text[128];
    if (!tr_msg_is(msg, "text"))
        return TR_EUNHANDLED;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, text, sizeof text);
    if (rc != 0)
        return rc;
    s_say("receiver (pid %ld): got '%s' from actor %llu, sending ack\n",
          (long)getpid(), text, (unsigned long long)tr_msg_sender(msg));
    return s_send(tr_actor_node(self), NULL, tr_msg_sender(msg), "ack",
                  "got it");
}

TR_BEHAVIOUR(receiver, .handle = s_receiver_handle)

/* The spawn args are [text]: it goes out from init, like conn.send(). */
static int
s_sender_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)state;
    tr_reader_t r;
    char text[128];
    tr_reader_init(&r, args);
    int rc = tr_read_str_copy(&r, text, sizeof text);
    if (rc != 0)
        return rc;
    s_say("sender (pid %ld): sending '%s' to the receiver\n", (long)getpid(),
          text);
    return s_send(tr_actor_node(self), "receiver", 0, "text", text);
}

static int
s_sender_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_reader_t r;
    char text[128];
    if (!tr_msg_is(msg, "ack"))
        return TR_EUNHANDLED;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, text, sizeof text);
    if (rc != 0)
        return rc;
    s_say("sender (pid %ld): ack '%s' from actor %llu, done\n",
          (long)getpid(), text, (unsigned long long)tr_msg_sender(msg));
    tr_exit(self, 0);
    return 0;
}

TR_BEHAVIOUR(sender, .init = s_sender_init, .handle = s_sender_handle)

/* One exchange with both actors in mode: the sender's normal end (it
 * ends only on the ack) says the text went there and back. */
static bool
s_exchange(tr_node_t *node, tr_mode_t mode, const char *label)
{
    s_say("main (pid %ld): the pair as %s\n", (long)getpid(), label);
    tr_id_t receiver, sender;
    s_check(tr_spawn(node, "receiver",
                     &(tr_spawn_opts_t){.name = "receiver", .mode = mode},
                     &receiver),
            "spawn receiver");
    tr_msg_t *args;
    s_check(tr_msg_create(&args, "args"), "tr_msg_create");
    s_check(tr_msg_add_str(args, "hello through the pipe"), "add_str");
    int rc = tr_spawn(node, "sender",
                      &(tr_spawn_opts_t){.mode = mode, .args = args}, &sender);
    tr_msg_destroy(&args); /* borrowed by tr_spawn: still ours */
    s_check(rc, "spawn sender");

    int reason; /* p.join() */
    s_check(tr_join(node, sender, 5000, &reason), "tr_join sender");
    s_check(tr_stop(node, receiver, 5000), "tr_stop receiver");
    s_say("main: sender joined (%s), receiver stopped\n",
          tr_strerror(reason));
    return reason == 0;
}

int
main(int argc, char **argv)
{
    /* First: in a child this runs its actor and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");

    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    bool threads = s_exchange(node, TR_THREAD, "threads");
    bool processes = s_exchange(node, TR_PROCESS, "processes");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    s_say("pipe: as threads: one text there, one ack back: %s\n",
          threads ? "yes" : "NO");
    s_say("pipe: as processes: one text there, one ack back: %s\n",
          processes ? "yes" : "NO");
    return threads && processes ? 0 : 1;
}
