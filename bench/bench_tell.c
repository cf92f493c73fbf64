/* bench/bench_tell.c - see bench_tell.h. The behaviours are registered
 * before main, so that a process actor started from the benchmark program
 * finds them. */
#include "bench_tell.h"

#include "bench_util.h"

#define PAYLOAD 64

/* sink: counts "data" messages; answers a kept "await" [n] request once
 * it has seen n since it started (data from the source may overtake the
 * request, which comes from another thread or process). */
typedef struct {
    long seen, want;
    tr_msg_t *waiter;
} sink_t;

static int
s_sink_done(tr_actor_t *self, sink_t *s)
{
    tr_msg_t *r = NULL;
    int rc = tr_msg_create(&r, "done");
    if (rc == 0)
        rc = tr_reply(self, s->waiter, &r);
    tr_msg_destroy(&r);
    tr_msg_destroy(&s->waiter);
    return rc;
}

static int
s_sink_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    sink_t *s = state;
    if (tr_msg_is(msg, "data"))
        return ++s->seen == s->want && s->waiter ? s_sink_done(self, s) : 0;
    if (tr_msg_is(msg, "await")) {
        tr_reader_t r;
        int64_t want;
        tr_reader_init(&r, msg);
        int rc = tr_read_int(&r, &want);
        if (rc != 0 || (rc = tr_msg_dup(msg, &s->waiter)) != 0)
            return rc;
        s->want = want;
        return s->seen >= s->want ? s_sink_done(self, s) : 0;
    }
    return TR_EUNHANDLED;
}

static void
s_sink_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_msg_destroy(&((sink_t *)state)->waiter);
}

TR_BEHAVIOUR(bench_sink, .state_size = sizeof(sink_t),
             .handle = s_sink_handle, .terminate = s_sink_terminate);

/* source: on "go" [sink id, n], tells n 64-byte "data" messages. */
static int
s_source_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t to = 0, n = 0;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &to);
    if (rc == 0)
        rc = tr_read_int(&r, &n);
    static const char payload[PAYLOAD - 2]; /* bin8 header: 2 bytes */
    tr_node_t *node = tr_actor_node(self);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "data")) == 0 &&
            (rc = tr_msg_add_bin(m, payload, sizeof payload)) == 0)
            rc = tr_tell_id(node, (tr_id_t)to, &m);
        tr_msg_destroy(&m);
    }
    return rc;
}

TR_BEHAVIOUR(bench_source, .handle = s_source_handle);

double
bt_throughput(tr_node_t *node, tr_mode_t mode, long msgs)
{
    tr_spawn_opts_t o = {.mode = mode};
    tr_id_t sink, source;
    bu_check(tr_spawn(node, "bench_sink", &o, &sink), "spawn sink");
    bu_check(tr_spawn(node, "bench_source", &o, &source), "spawn source");
    tr_msg_t *m = NULL;
    tr_future_t *f;
    bu_check(tr_msg_create(&m, "await"), "msg");
    bu_check(tr_msg_add_int(m, msgs), "msg");
    bu_check(tr_ask_id(node, sink, &m, TR_FOREVER, &f), "ask await");
    bu_check(tr_msg_create(&m, "go"), "msg");
    bu_check(tr_msg_add_int(m, (int64_t)sink), "msg");
    bu_check(tr_msg_add_int(m, msgs), "msg");
    double t0 = bu_now();
    bu_check(tr_tell_id(node, source, &m), "tell go");
    bu_check(tr_future_get(f, TR_FOREVER, NULL), "await");
    double dt = bu_now() - t0;
    tr_future_destroy(&f);
    bu_check(tr_stop(node, source, TR_DEFAULT), "stop");
    bu_check(tr_stop(node, sink, TR_DEFAULT), "stop");
    return (double)msgs / dt;
}
