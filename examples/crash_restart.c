/* examples/crash_restart.c - a worker process segfaults; its supervisor
 * starts a new one; the client loses one request, not the service.
 *
 * Python has no answer to this one: a worker process of a
 * multiprocessing.Pool that segfaults makes the pool hang, and one dead
 * worker of a ProcessPoolExecutor breaks every future
 * (BrokenProcessPool). Here a supervisor (tr_sup_start, ONE_FOR_ONE) owns
 * one PERMANENT child spec: the "worker" behaviour, run as a process
 * (.mode = TR_PROCESS) under the name "worker". The client (main) calls
 * the worker by name: "square" n is answered with n * n and the worker's
 * pid; "poison" makes it raise SIGSEGV. That one request fails with
 * TR_EDEAD, and the future says why (the exit reason: TR_ECRASHED). The
 * supervisor starts a new worker process under the same name; the name is
 * kept meanwhile, so the next call by name waits for the new worker and is
 * answered, from another pid.
 *
 * Why no lock and no shared memory: the crash stays in the worker's
 * address space; nothing the client or the supervisor holds can have been
 * half-written by it. In a thread the same segfault would take the whole
 * program down: that is what process mode is for.
 *
 * Its messages, drawn: docs/diagrams/crash_restart.svg */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "troupe.h"

static void
s_check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "crash_restart: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "poison")) {
        /* A deliberate segfault, plainly: no core file, and no handler
         * (a sanitizer's) in the way. */
        setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    if (!tr_msg_is(msg, "square"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &n);
    if (rc != 0)
        return rc;
    tr_msg_t *reply = NULL;
    if ((rc = tr_msg_create(&reply, "square")) == 0 &&
        (rc = tr_msg_add_int(reply, n * n)) == 0 &&
        (rc = tr_msg_add_int(reply, (int64_t)getpid())) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(worker, .handle = s_worker_handle)

/* One request by name: 0 and the answer and pid, or the ask's error and
 * (for TR_EDEAD) why the worker ended. */
static int
s_request(tr_node_t *node, const char *tag, int64_t n, int64_t *sq,
          int64_t *pid, int *why)
{
    tr_msg_t *msg, *reply = NULL;
    tr_future_t *fut;
    s_check(tr_msg_create(&msg, tag), "tr_msg_create");
    s_check(tr_msg_add_int(msg, n), "tr_msg_add_int");
    int rc = tr_ask(node, "worker", &msg, 5000, &fut);
    if (rc != 0) {
        tr_msg_destroy(&msg); /* not sent: still ours */
        return rc;
    }
    if ((rc = tr_future_get(fut, TR_FOREVER, &reply)) == TR_EDEAD)
        *why = tr_future_exit_reason(fut);
    tr_future_destroy(&fut);
    if (rc == 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        if ((rc = tr_read_int(&r, sq)) == 0)
            rc = tr_read_int(&r, pid);
        tr_msg_destroy(&reply);
        s_check(rc, "read reply");
    }
    return rc;
}

int
main(int argc, char **argv)
{
    /* First: in a child this runs its actor and exits the process. */
    s_check(tr_init(&argc, &argv), "tr_init");

    tr_node_t *node;
    tr_id_t sup;
    s_check(tr_node_create(&node, NULL), "tr_node_create");
    tr_child_spec_t spec = {.id = "worker",
                            .behaviour = "worker",
                            .spawn = {.name = "worker", .mode = TR_PROCESS},
                            .restart = TR_PERMANENT};
    s_check(tr_sup_start(node, &(tr_sup_opts_t){.strategy = TR_ONE_FOR_ONE},
                         &spec, 1, &sup),
            "tr_sup_start");
    printf("main: supervisor %llu started the worker process\n",
           (unsigned long long)sup);

    const char *plan[] = {"square", "square", "square", "poison", "square",
                          "square"};
    int failed = 0;
    int64_t first_pid = 0, last_pid = 0;
    for (int i = 0; i < 6; i++) {
        int64_t sq = 0, pid = 0;
        int why = 0;
        int rc = s_request(node, plan[i], i + 1, &sq, &pid, &why);
        if (rc == 0) {
            printf("main: %s %d = %lld, answered by pid %lld\n", plan[i],
                   i + 1, (long long)sq, (long long)pid);
            first_pid = first_pid ? first_pid : pid;
            last_pid = pid;
        } else {
            failed++;
            printf("main: %s %d failed: %s (the worker ended: %s)\n",
                   plan[i], i + 1, tr_strerror(rc), tr_strerror(why));
        }
    }

    tr_sup_child_t kids[1];
    int n = tr_sup_which_children(node, sup, kids, 1);
    s_check(n, "tr_sup_which_children");
    s_check(tr_node_destroy(&node), "tr_node_destroy");
    bool changed = first_pid != last_pid;
    printf("main: child '%s' was restarted %d time(s)\n", kids[0].id,
           n == 1 ? kids[0].restarts : -1);
    printf("crash_restart: %d of 6 requests failed, the pid changed: %s\n",
           failed, changed ? "yes" : "NO");
    return failed == 1 && changed ? 0 : 1;
}
