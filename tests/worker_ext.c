/* tests/worker_ext.c - another program for process actors (spawn with
 * .executable): it registers only "ext_echo", so the process suite can
 * start it with a behaviour it has and with one it has not. Started by
 * hand (not as a process actor), it says so and exits 2. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "troupe.h"

/* "echo" [v] is answered "ok" [v, pid]: the pid shows which program. */
static int
s_echo_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "echo"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t v = 0;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &v);
    if (rc != 0)
        return rc;
    tr_msg_t *reply = NULL;
    if ((rc = tr_msg_create(&reply, "ok")) == 0 &&
        (rc = tr_msg_add_int(reply, v)) == 0 &&
        (rc = tr_msg_add_int(reply, (int64_t)getpid())) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(ext_echo, .handle = s_echo_handle);

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv); /* as a process actor: runs it, never returns */
    fprintf(stderr, "%s: a worker for the process suite's process actors; "
            "not to be run by hand\n", argv[0]);
    return 2;
}
