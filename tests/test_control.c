/* tests/test_control.c - the control endpoint (docs/control.md), asked as
 * a client would: a DEALER on ipc://<rundir>/control, msgpack requests.
 */
#include <check.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/node.h"
#include "support.h"
#include "troupe.h"

/* "sink": counts "n" messages; "count" answers it. */
typedef struct {
    int64_t n;
} s_sink_t;

static int
s_sink_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_sink_t *st = state;
    if (tr_msg_is(msg, "n")) {
        st->n++;
        return 0;
    }
    if (tr_msg_is(msg, "count"))
        return ts_reply_ints(self, msg, 1, &st->n);
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(sink, .state_size = sizeof(s_sink_t), .handle = s_sink_handle);

/* "watcher": "watch" [id] monitors id; "downs" answers the "$down"s seen. */
static int
s_watcher_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    int64_t *downs = state;
    if (tr_msg_is(msg, "$down")) {
        ++*downs;
        return 0;
    }
    if (tr_msg_is(msg, "watch")) {
        int64_t id = 0;
        ts_ints(msg, 1, &id);
        int64_t rc = tr_monitor(self, (tr_id_t)id);
        return ts_reply_ints(self, msg, 1, &rc);
    }
    if (tr_msg_is(msg, "downs"))
        return ts_reply_ints(self, msg, 1, downs);
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(watcher, .state_size = sizeof(int64_t),
             .handle = s_watcher_handle);

static int
s_twice(const tr_msg_t *args, tr_msg_t **result)
{
    (void)args, (void)result;
    return 0;
}
TR_TASK(twice, s_twice);

/* ------------------------------------------------------------------ */
/* A client                                                            */

typedef struct {
    void *ctx, *sock;
    msgpack_unpacked reply;
    zmq_msg_t frame; /* the reply's bytes: its strings point into them */
} s_client_t;

static void
s_open(s_client_t *c, tr_node_t *node)
{
    char ep[256];
    snprintf(ep, sizeof ep, "ipc://%s/control", node->rundir);
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0, timeo = TS_CALL_MS;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    ck_assert_int_eq(zmq_connect(c->sock, ep), 0);
    msgpack_unpacked_init(&c->reply);
    zmq_msg_init(&c->frame);
}

static void
s_close(s_client_t *c)
{
    msgpack_unpacked_destroy(&c->reply);
    zmq_msg_close(&c->frame);
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
}

/* Send raw bytes; the reply (a map) in c->reply. */
static const msgpack_object *
s_raw(s_client_t *c, const void *data, size_t len)
{
    ck_assert_int_ge(zmq_send(c->sock, data, len, 0), 0);
    ck_assert_int_ge(zmq_msg_recv(&c->frame, c->sock, 0), 0);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&c->reply, zmq_msg_data(&c->frame),
                                         zmq_msg_size(&c->frame), &off),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(c->reply.data.type, MSGPACK_OBJECT_MAP);
    return &c->reply.data;
}

/* [cmd] or [cmd, id] */
static const msgpack_object *
s_ask(s_client_t *c, const char *cmd, int64_t id)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, id ? 2 : 1);
    msgpack_pack_str(&pk, strlen(cmd));
    msgpack_pack_str_body(&pk, cmd, strlen(cmd));
    if (id)
        msgpack_pack_int64(&pk, id);
    const msgpack_object *o = s_raw(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return o;
}

static const msgpack_object *
s_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
            return &kv->val;
    }
    return NULL;
}

static int64_t
s_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = s_get(map, key);
    ck_assert_msg(v != NULL, "no %s", key);
    ck_assert(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64
                                                      : v->via.i64;
}

static bool
s_str_is(const msgpack_object *map, const char *key, const char *want)
{
    const msgpack_object *v = s_get(map, key);
    return v != NULL && v->type == MSGPACK_OBJECT_STR &&
           v->via.str.size == strlen(want) &&
           memcmp(v->via.str.ptr, want, v->via.str.size) == 0;
}

static bool
s_ok(const msgpack_object *r)
{
    const msgpack_object *v = s_get(r, "ok");
    return v != NULL && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/* The actor of ps named name, or NULL. */
static const msgpack_object *
s_find(const msgpack_object *ps, const char *name)
{
    const msgpack_object *a = s_get(ps, "actors");
    ck_assert_ptr_nonnull(a);
    for (uint32_t i = 0; i < a->via.array.size; i++)
        if (s_str_is(&a->via.array.ptr[i], "name", name))
            return &a->via.array.ptr[i];
    return NULL;
}

/* The id under name, or 0. */
static tr_id_t
s_whereis(tr_node_t *node, const char *name)
{
    tr_id_t id = 0;
    return tr_whereis(node, name, &id) == 0 ? id : 0;
}

/* ------------------------------------------------------------------ */

START_TEST(info_and_ps_show_the_node_and_what_its_actors_do)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "ctl"});
    tr_id_t id = ts_spawn(node, "sink", "sink1");
    for (int i = 0; i < 500; i++)
        ts_tell(node, "sink1", ts_msg("n"));
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "sink1", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 500);
    /* the node file */
    char path[256], line[256] = {0};
    snprintf(path, sizeof path, "%s/node", node->rundir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    char name[64];
    long pid = 0;
    ck_assert_int_eq(sscanf(line, "%63s %ld", name, &pid), 2);
    ck_assert_str_eq(name, "ctl");
    ck_assert_int_eq(pid, getpid());
    struct stat st;
    snprintf(path, sizeof path, "%s/control", node->rundir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0); /* the user's only */

    s_client_t c;
    s_open(&c, node);
    const msgpack_object *r = s_ask(&c, "info", 0);
    ck_assert(s_ok(r));
    ck_assert(s_str_is(r, "name", "ctl"));
    ck_assert_int_eq(s_int(r, "pid"), getpid());
    ck_assert_int_ge(s_int(r, "actors"), 1);
    ck_assert_int_ge(s_int(r, "uptime_ms"), 0);
    ck_assert_ptr_nonnull(s_get(r, "stats"));
    ck_assert_int_ge(s_int(s_get(r, "stats"), "spawned"), 1);
    ck_assert_int_eq(s_int(s_get(r, "stats"), "oversize"), 0);
    ck_assert_int_eq(s_int(s_get(r, "stats"), "dropped_connections"), 0);

    r = s_ask(&c, "ps", 0);
    ck_assert(s_ok(r));
    const msgpack_object *a = s_find(r, "sink1");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(s_int(a, "id"), (int64_t)id);
    ck_assert(s_str_is(a, "behaviour", "sink"));
    ck_assert(s_str_is(a, "mode", "thread"));
    ck_assert(s_str_is(a, "state", "running"));
    ck_assert_int_eq(s_int(a, "pid"), getpid());
    ck_assert_int_gt(s_int(a, "tid"), 0);
    ck_assert_int_eq(s_int(a, "in"), 501); /* 500 "n" and the "count" */
    ck_assert_int_eq(s_int(a, "mailbox"), 0);
    ck_assert_int_eq(s_int(a, "restarts"), 0);
    ck_assert(s_str_is(a, "last_failure", ""));
    s_close(&c);
    ts_destroy(&node);
}
END_TEST

/* tree: the root supervisor, a supervisor under it, its children in start
 * order; pools: a pool's counters. */
START_TEST(tree_and_pools_show_supervision_and_pool_counters)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t kids[2] = {
        {.id = "a", .behaviour = "sink", .spawn = {.name = "kid_a"},
         .restart = TR_PERMANENT},
        {.id = "b", .behaviour = "sink", .spawn = {.name = "kid_b"},
         .restart = TR_PERMANENT},
    };
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &(tr_sup_opts_t){.name = "sup1"},
                                  kids, 2, &sup), 0);
    tr_pool_t *pool = NULL;
    ck_assert_int_eq(tr_pool_start(node, &(tr_pool_opts_t){.name = "pool1",
                                                           .workers = 2},
                                   &pool), 0);
    for (int i = 0; i < 10; i++) {
        tr_future_t *f = NULL;
        ck_assert_int_eq(tr_pool_submit(pool, "twice", NULL, TR_DEFAULT, &f),
                         0);
        ck_assert_int_eq(tr_future_get(f, TS_CALL_MS, NULL), 0);
        tr_future_destroy(&f);
    }
    s_client_t c;
    s_open(&c, node);
    const msgpack_object *r = s_ask(&c, "tree", 0);
    ck_assert(s_ok(r));
    const msgpack_object *root = s_get(r, "tree");
    ck_assert_ptr_nonnull(root);
    ck_assert(s_get(root, "supervisor")->via.boolean);
    const msgpack_object *ch = s_get(root, "children");
    const msgpack_object *s1 = NULL;
    for (uint32_t i = 0; i < ch->via.array.size; i++)
        if (s_str_is(&ch->via.array.ptr[i], "name", "sup1"))
            s1 = &ch->via.array.ptr[i];
    ck_assert_ptr_nonnull(s1);
    ck_assert_int_eq(s_int(s1, "id"), (int64_t)sup);
    const msgpack_object *k = s_get(s1, "children");
    ck_assert_uint_eq(k->via.array.size, 2);
    ck_assert(s_str_is(&k->via.array.ptr[0], "name", "kid_a"));
    ck_assert(s_str_is(&k->via.array.ptr[1], "name", "kid_b"));
    ck_assert(!s_get(&k->via.array.ptr[0], "supervisor")->via.boolean);

    /* the pool shows its counters within a few hundred ms */
    int64_t done = 0, workers = 0, end = ts_now_ms() + TS_CALL_MS;
    do {
        r = s_ask(&c, "pools", 0);
        ck_assert(s_ok(r));
        const msgpack_object *p = s_get(r, "pools");
        for (uint32_t i = 0; i < p->via.array.size; i++)
            if (s_str_is(&p->via.array.ptr[i], "name", "pool1")) {
                done = s_int(&p->via.array.ptr[i], "done");
                workers = s_int(&p->via.array.ptr[i], "workers");
            }
    } while ((done < 10 || workers != 2) && ts_now_ms() < end);
    ck_assert_int_eq(done, 10);
    ck_assert_int_eq(workers, 2);
    s_close(&c);
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, TS_CALL_MS), 0);
    ts_destroy(&node);
}
END_TEST

/* stop and restart: a supervised child restarted comes back under its
 * name with restarts 1 and the failure named; a stopped one is gone. */
START_TEST(stop_and_restart_end_actors_and_restarts_are_counted)
{
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t kid = {.id = "k", .behaviour = "sink",
                           .spawn = {.name = "kid"},
                           .restart = TR_PERMANENT};
    ck_assert_int_eq(tr_sup_start(node, &(tr_sup_opts_t){.max_restarts = 5},
                                  &kid, 1, NULL), 0);
    tr_id_t plain = ts_spawn(node, "sink", "plain");
    tr_id_t old = s_whereis(node, "kid");
    ck_assert_uint_ne(old, 0);
    s_client_t c;
    s_open(&c, node);
    ts_log_capture();
    const msgpack_object *r = s_ask(&c, "restart", (int64_t)old);
    ck_assert(s_ok(r));
    int64_t end = ts_now_ms() + TS_CALL_MS;
    tr_id_t now = 0;
    while (((now = s_whereis(node, "kid")) == 0 || now == old) &&
           ts_now_ms() < end)
        ;
    ck_assert(now != 0 && now != old);
    r = s_ask(&c, "ps", 0);
    /* The new kid (the old one may still be on the list, ending). */
    const msgpack_object *a = NULL, *all = s_get(r, "actors");
    for (uint32_t i = 0; i < all->via.array.size && a == NULL; i++)
        if (s_int(&all->via.array.ptr[i], "id") == (int64_t)now)
            a = &all->via.array.ptr[i];
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(s_int(a, "restarts"), 1);
    ck_assert(!s_str_is(a, "last_failure", ""));
    ck_assert_int_ge(ts_log_find("restart of kid#"), 0); /* logged */

    r = s_ask(&c, "stop", (int64_t)plain);
    ck_assert(s_ok(r));
    end = ts_now_ms() + TS_CALL_MS;
    while (s_whereis(node, "plain") != 0 && ts_now_ms() < end)
        ;
    ck_assert_uint_eq(s_whereis(node, "plain"), 0);
    ck_assert_int_ge(ts_log_find("stop of plain#"), 0);
    tr_log_set_sink(NULL, NULL);

    /* bad requests: an answer, never silence */
    r = s_ask(&c, "stop", 999999);
    ck_assert(!s_ok(r));
    ck_assert_ptr_nonnull(s_get(r, "error"));
    r = s_ask(&c, "frobnicate", 0);
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\xc1\xc1", 2);
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\x91\xa4ps\0x", 6); /* a NUL inside the command */
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\x91\xa2ps\xc0", 5); /* bytes after the request */
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\x93\xa2ps\x01\x02", 6); /* too many arguments */
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\xdd\xff\xff\xff\xff\xa2ps", 8); /* a forged count */
    ck_assert(!s_ok(r));
    r = s_raw(&c, "\x91\xa2ps", 4); /* the same, well formed */
    ck_assert(s_ok(r));
    r = s_ask(&c, "stop", 0); /* no id */
    ck_assert(!s_ok(r));
    r = s_ask(&c, "info", 0); /* and it still answers */
    ck_assert(s_ok(r));
    s_close(&c);
    ts_destroy(&node);
}
END_TEST

START_TEST(no_control_means_no_endpoint_and_destroy_removes_it)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.no_control = true});
    ck_assert_str_eq(node->rundir, ""); /* nothing made */
    ts_destroy(&node);
    node = ts_node(NULL);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", node->rundir);
    ck_assert_int_eq(access(dir, F_OK), 0);
    ts_destroy(&node);
    ck_assert_int_ne(access(dir, F_OK), 0); /* removed */
}
END_TEST

/* A trace: every message sent and taken, the spawn and the exit. */
START_TEST(trace_records_sends_receives_spawns_and_exits)
{
    char dir[256], path[300];
    ts_tmpdir(dir, sizeof dir, "trace");
    snprintf(path, sizeof path, "%s/t.trace", dir);
    uint64_t t0 = (uint64_t)ts_now_us() * 1000u;
    tr_node_t *node = ts_node(&(tr_node_opts_t){.trace = path});
    tr_id_t sink = ts_spawn(node, "sink", "sink1");
    for (int i = 0; i < 100; i++)
        ts_tell(node, "sink1", ts_msg("n"));
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "sink1", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 100);
    /* a monitor's DOWN is recorded too */
    tr_id_t watcher = ts_spawn(node, "watcher", "watcher1");
    tr_id_t gone = ts_spawn(node, "sink", "sink2");
    tr_msg_t *w = ts_msg("watch");
    ck_assert_int_eq(tr_msg_add_int(w, (int64_t)gone), 0);
    ck_assert_int_eq(ts_call_ints(node, "watcher1", w, 1, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(tr_stop(node, gone, TS_CALL_MS), 0);
    int64_t deadline = ts_now_ms() + TS_CALL_MS, downs = 0;
    while (downs == 0 && ts_now_ms() < deadline)
        ck_assert_int_eq(
            ts_call_ints(node, "watcher1", ts_msg("downs"), 1, &downs), 0);
    ck_assert_int_eq(downs, 1);
    ts_destroy(&node);
    uint64_t t1 = (uint64_t)ts_now_us() * 1000u + 1000u;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char head[16], r[64];
    ck_assert_uint_eq(fread(head, 1, 16, f), 16);
    ck_assert(memcmp(head, "TRTRACE1", 8) == 0);
    int kinds[8] = {0}, to_sink = 0, n_tag = 0, exits = 0, down = 0;
    while (fread(r, 1, 64, f) == 64) {
        uint64_t ts, a, b;
        memcpy(&ts, r, 8);
        memcpy(&a, r + 8, 8);
        memcpy(&b, r + 16, 8);
        /* stamped in CLOCK_MONOTONIC nanoseconds, within the test */
        ck_assert_uint_ge(ts, t0);
        ck_assert_uint_le(ts, t1);
        if (r[28] == 6 && a == watcher && b == gone)
            down++;
        ck_assert_int_ge(r[28], 1);
        ck_assert_int_le(r[28], 6);
        kinds[r[28]]++;
        if (r[28] == 1 && b == sink)
            to_sink++;
        if (r[28] == 2 && a == sink && strncmp((char *)r + 32, "n", 32) == 0)
            n_tag++;
        if (r[28] == 4 && a == sink)
            exits++;
    }
    fclose(f);
    ck_assert_int_eq(to_sink, 101);   /* 100 "n" and the "count" */
    ck_assert_int_eq(n_tag, 100);     /* each taken */
    ck_assert_int_eq(kinds[1], kinds[2]); /* every send was taken */
    ck_assert_int_ge(kinds[3], 1);    /* the spawn */
    ck_assert_int_eq(exits, 1);
    ck_assert_int_eq(down, 1);
    unlink(path);
    ts_rmtree(dir);
}
END_TEST

/* Count the events of kind with tag in an "events" reply; the last seq
 * in *last. */
static int
s_events_count(const msgpack_object *r, const char *kind, const char *tag,
               int64_t *last)
{
    const msgpack_object *ev = s_get(r, "events");
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(ev->type, MSGPACK_OBJECT_ARRAY);
    int n = 0;
    for (uint32_t i = 0; i < ev->via.array.size; i++) {
        const msgpack_object *e = &ev->via.array.ptr[i];
        ck_assert_int_eq(e->type, MSGPACK_OBJECT_ARRAY);
        ck_assert_int_eq(e->via.array.size, 7);
        const msgpack_object *k = &e->via.array.ptr[2], *t = &e->via.array.ptr[6];
        ck_assert_int_eq(k->type, MSGPACK_OBJECT_STR);
        ck_assert_int_eq(t->type, MSGPACK_OBJECT_STR);
        if (last != NULL)
            *last = (int64_t)e->via.array.ptr[0].via.u64;
        if (k->via.str.size == strlen(kind) &&
            memcmp(k->via.str.ptr, kind, k->via.str.size) == 0 &&
            t->via.str.size == strlen(tag) &&
            memcmp(t->via.str.ptr, tag, t->via.str.size) == 0)
            n++;
    }
    return n;
}

/* watch: from then on the last messages are kept, and events hands them
 * out from a sequence number on; older ones fall out of the ring. */
START_TEST(watch_keeps_the_last_messages_for_events)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "watched"});
    ts_spawn(node, "sink", "sink1");
    ts_tell(node, "sink1", ts_msg("n")); /* before watch: not kept */
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "sink1", ts_msg("count"), 1, &n), 0);
    s_client_t c;
    s_open(&c, node);
    const msgpack_object *r = s_ask(&c, "events", 0);
    ck_assert(s_ok(r));
    ck_assert(!s_get(r, "watching")->via.boolean);
    ck_assert_int_eq(s_get(r, "events")->via.array.size, 0);
    r = s_ask(&c, "watch", 0);
    ck_assert(s_ok(r));
    ck_assert_int_eq(s_int(r, "ring"), 1024);
    for (int i = 0; i < 10; i++)
        ts_tell(node, "sink1", ts_msg("n"));
    ck_assert_int_eq(ts_call_ints(node, "sink1", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 11);
    r = s_ask(&c, "events", 0);
    ck_assert(s_ok(r));
    ck_assert(s_get(r, "watching")->via.boolean);
    int64_t last = -1;
    ck_assert_int_eq(s_events_count(r, "send", "n", &last), 10);
    ck_assert_int_eq(s_events_count(r, "recv", "n", NULL), 10);
    int64_t next = s_int(r, "next");
    ck_assert_int_eq(next, last + 1);
    /* From next on: nothing of the "n"s (the answer's SEND may be
     * recorded just after its asker read it: it can come now). */
    r = s_ask(&c, "events", next);
    ck_assert_int_eq(s_events_count(r, "send", "n", NULL), 0);
    ck_assert_int_eq(s_events_count(r, "recv", "n", NULL), 0);
    const msgpack_object *later = s_get(r, "events");
    for (uint32_t i = 0; i < later->via.array.size; i++)
        ck_assert_int_ge(later->via.array.ptr[i].via.array.ptr[0].via.i64,
                         next);
    ck_assert_int_eq(s_int(r, "next"), next + later->via.array.size);
    /* Past the ring: the oldest fall out. */
    for (int i = 0; i < 1500; i++)
        ts_tell(node, "sink1", ts_msg("n"));
    ck_assert_int_eq(ts_call_ints(node, "sink1", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 1511);
    r = s_ask(&c, "events", 1);
    const msgpack_object *ev = s_get(r, "events");
    ck_assert_int_eq(ev->via.array.size, 1024);
    ck_assert_int_eq(ev->via.array.ptr[0].via.array.ptr[0].via.u64,
                     (uint64_t)s_int(r, "next") - 1024);
    s_close(&c);
    ts_destroy(&node);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("control");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, info_and_ps_show_the_node_and_what_its_actors_do);
    tcase_add_test(tc, tree_and_pools_show_supervision_and_pool_counters);
    tcase_add_test(tc, stop_and_restart_end_actors_and_restarts_are_counted);
    tcase_add_test(tc, no_control_means_no_endpoint_and_destroy_removes_it);
    tcase_add_test(tc, trace_records_sends_receives_spawns_and_exits);
    tcase_add_test(tc, watch_keeps_the_last_messages_for_events);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
