/* examples/process_hello.c - the hello actor, but in its own OS process.
 *
 * Replaces the Python tutorial's first multiprocessing example:
 *     p = multiprocessing.Process(target=worker, args=(1,))
 *     p.start(); p.join()          # worker(num) prints "Worker: 1"
 * Here the "worker" is a behaviour like any other (TR_BEHAVIOUR, at file
 * scope), and .mode = TR_PROCESS is the only change from a thread actor:
 * tr_spawn re-executes this very program, and tr_init at the top of main
 * turns that copy into the actor (it never returns there). The argument
 * travels as the spawn args, the actor's first message, as in hello.c.
 * main asks it "greet" with tr_call, it answers with its pid and then ends
 * itself with tr_exit(self, 0); tr_join is p.join().
 *
 * Why no lock and no shared memory: the worker's state lives in another
 * address space, and the only thing that crosses is a message (msgpack
 * over an ipc socket). Nothing is shared, so nothing needs guarding; the
 * same code runs unchanged as a thread (drop .mode).
 *
 * Each process has its own stdio buffer: s_say flushes every line, so the
 * lines of both processes come out in the order things happened.
 *
 * Its messages, drawn: docs/diagrams/process_hello.svg */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "troupe.h"

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "process_hello: %s: %s\n", what, tr_strerror(rc));
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

struct worker {
    int64_t num; /* from the spawn args, like args=(1,) */
};

/* Runs in the child process: getpid() is the child's, getppid() main's. */
static int
s_worker_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    struct worker *w = state;
    tr_reader_t r;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &w->num);
    if (rc != 0)
        return rc; /* fails the spawn: main's tr_spawn returns it */
    s_say("worker %lld: started as actor %llu in pid %ld (parent pid %ld)\n",
          (long long)w->num, (unsigned long long)tr_self(self),
          (long)getpid(), (long)getppid());
    return 0;
}

static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    struct worker *w = state;
    if (!tr_msg_is(msg, "greet"))
        return TR_EUNHANDLED;
    s_say("worker %lld: greeted by actor %llu, replying and exiting\n",
          (long long)w->num, (unsigned long long)tr_msg_sender(msg));
    tr_msg_t *reply = NULL;
    int rc = tr_msg_create(&reply, "hello");
    if (rc == 0 && (rc = tr_msg_add_int(reply, w->num)) == 0 &&
        (rc = tr_msg_add_int(reply, (int64_t)getpid())) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    if (rc == 0)
        tr_exit(self, 0); /* a normal end, once this callback returns */
    return rc;
}

TR_BEHAVIOUR(worker, .state_size = sizeof(struct worker),
             .init = s_worker_init, .handle = s_worker_handle)

int
main(int argc, char **argv)
{
    /* First: in the child this runs the worker and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");

    tr_node_t *node;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    s_say("main: running in pid %ld\n", (long)getpid());

    tr_msg_t *args;
    s_check(tr_msg_create(&args, "args"), "tr_msg_create");
    s_check(tr_msg_add_int(args, 1), "tr_msg_add_int"); /* args=(1,) */
    tr_id_t worker;
    int rc = tr_spawn(node, "worker",
                      &(tr_spawn_opts_t){.name = "worker", .mode = TR_PROCESS,
                                         .args = args},
                      &worker);
    tr_msg_destroy(&args); /* borrowed by tr_spawn: still ours */
    s_check(rc, "spawn worker");
    s_say("main: spawned worker actor %llu as a process\n",
          (unsigned long long)worker);

    /* A call to a process looks exactly like a call to a thread. */
    tr_msg_t *greet, *reply;
    s_check(tr_msg_create(&greet, "greet"), "tr_msg_create");
    s_check(tr_call(node, "worker", &greet, 5000, &reply), "call greet");
    int64_t num = 0, pid = 0;
    tr_reader_t r;
    tr_reader_init(&r, reply);
    if ((rc = tr_read_int(&r, &num)) == 0)
        rc = tr_read_int(&r, &pid);
    tr_msg_destroy(&reply);
    s_check(rc, "read reply");
    s_say("main: worker %lld says hello from pid %lld\n", (long long)num,
          (long long)pid);

    /* p.join(): wait for the worker's process to end, with a deadline. */
    int reason;
    s_check(tr_join(node, worker, 5000, &reason), "tr_join");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    bool other = pid != (int64_t)getpid();
    s_say("main: worker joined, exit reason %d (%s)\n", reason,
          tr_strerror(reason));
    s_say("process_hello: the worker ran in another process: %s\n",
          other ? "yes" : "NO");
    return reason == 0 && other ? 0 : 1;
}
