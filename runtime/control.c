/* runtime/control.c - the control endpoint (docs/control.md): a thread of
 * the node that answers, on a ROUTER socket at ipc://<rundir>/control,
 * what the node's actors are and do. It reads the node's lists under
 * their locks and never waits on an actor, so a busy or stuck actor
 * cannot stop it from answering. It also writes <rundir>/node, which
 * lets `troupe ls` list nodes without asking them.
 */
#include "runtime/control.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/node.h"
#include "runtime/port.h"
#include "runtime/trace.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"

#define S_MAX_REQUEST TR__CONTROL_MAX_REQUEST

/* Requests are answered by the control thread and, for other nodes and
 * clients, by the gateway (tr__control_answer): one at a time, and never
 * while a node's control is being freed. */
static pthread_mutex_t s_answer_mu = PTHREAD_MUTEX_INITIALIZER;

struct tr__control {
    tr_node_t *node;
    pthread_t thread;
    void *stop_tx;      /* PAIR: a byte here ends the thread */
    void *router, *stop; /* the thread's: the endpoint, stop_tx's peer */
    char stop_ep[64];
    char path[TR__RUNDIR_MAX + 16];
    uint64_t started_ms, started_ns;
};

static uint64_t
s_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------ */
/* msgpack helpers                                                     */

static void
s_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
s_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    s_str(pk, k);
    s_str(pk, v);
}

static void
s_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    s_str(pk, k);
    msgpack_pack_int64(pk, v);
}

static void
s_error(msgpack_packer *pk, const char *text)
{
    msgpack_pack_map(pk, 2);
    s_str(pk, "ok");
    msgpack_pack_false(pk);
    s_kv_str(pk, "error", text);
}

/* ------------------------------------------------------------------ */
/* Snapshots of the node's actors                                      */

/* The running actors, each with a reference (free with s_recs_free). */
static size_t
s_recs(tr_node_t *node, tr__rec_t ***out)
{
    pthread_mutex_lock(&node->mu);
    size_t n = node->nactors;
    tr__rec_t **v = calloc(n ? n : 1, sizeof *v);
    if (v != NULL)
        for (size_t i = 0; i < n; i++) {
            v[i] = node->actors[i];
            tr__rec_ref(v[i]);
        }
    pthread_mutex_unlock(&node->mu);
    *out = v;
    return v ? n : 0;
}

static void
s_recs_free(tr__rec_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr__rec_unref(&v[i]);
    free(v);
}

static const char *
s_state(tr__rec_t *r)
{
    pthread_mutex_lock(&r->mu);
    bool init = r->init_done;
    pthread_mutex_unlock(&r->mu);
    if (atomic_load(&r->dead))
        return "stopping";
    return init ? "running" : "starting";
}

static void
s_actor(msgpack_packer *pk, tr__rec_t *r)
{
    bool process = r->pid != 0;
    int64_t sent = (int64_t)atomic_load(&r->sent_to);
    int64_t taken = (int64_t)atomic_load(&r->taken);
    msgpack_pack_map(pk, 13);
    s_kv_int(pk, "id", (int64_t)r->id);
    s_kv_str(pk, "name", r->name);
    s_kv_str(pk, "behaviour", r->behaviour);
    s_kv_str(pk, "mode", process ? "process" : "thread");
    s_kv_int(pk, "pid", process ? r->pid : (int64_t)getpid());
    s_kv_int(pk, "tid", process ? 0 : atomic_load(&r->tid));
    s_kv_str(pk, "state", s_state(r));
    s_kv_int(pk, "parent", (int64_t)r->parent);
    s_kv_int(pk, "mailbox", process ? -1 : (sent > taken ? sent - taken : 0));
    s_kv_int(pk, "in", process ? -1 : taken);
    s_kv_int(pk, "out", process ? -1 : (int64_t)atomic_load(&r->out));
    s_kv_int(pk, "restarts", r->restarts);
    s_kv_str(pk, "last_failure", r->last_failure);
}

static bool
s_is_sup(const tr__rec_t *r)
{
    return strcmp(r->behaviour, "tr_supervisor") == 0;
}

/* The subtree under id, children in start order (the node's list is in
 * start order). */
static void
s_tree(msgpack_packer *pk, tr__rec_t **v, size_t n, size_t at, int depth)
{
    tr__rec_t *r = v[at];
    size_t kids = 0;
    for (size_t i = 0; i < n; i++)
        kids += v[i]->parent == r->id && i != at;
    msgpack_pack_map(pk, 5);
    s_kv_int(pk, "id", (int64_t)r->id);
    s_kv_str(pk, "name", r->name);
    s_kv_str(pk, "behaviour", r->behaviour);
    s_str(pk, "supervisor");
    if (s_is_sup(r))
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    s_str(pk, "children");
    if (depth > 64) { /* a cycle cannot be, but do not trust it */
        msgpack_pack_array(pk, 0);
        return;
    }
    msgpack_pack_array(pk, (uint32_t)kids);
    for (size_t i = 0; i < n; i++)
        if (v[i]->parent == r->id && i != at)
            s_tree(pk, v, n, i, depth + 1);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static void
s_info(tr__control_t *c, msgpack_packer *pk)
{
    tr_node_stats_t st;
    tr_node_stats(c->node, &st);
    msgpack_pack_map(pk, 7);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
    s_kv_str(pk, "name", c->node->name);
    s_kv_int(pk, "pid", getpid());
    s_kv_int(pk, "started_ms", (int64_t)c->started_ms);
    s_kv_int(pk, "uptime_ms",
             (int64_t)((tr__now_ns() - c->started_ns) / 1000000u));
    s_kv_int(pk, "actors", (int64_t)st.alive);
    s_str(pk, "stats");
    msgpack_pack_map(pk, 11);
    s_kv_int(pk, "spawned", (int64_t)st.spawned);
    s_kv_int(pk, "alive", (int64_t)st.alive);
    s_kv_int(pk, "exited", (int64_t)st.exited);
    s_kv_int(pk, "failed", (int64_t)st.failed);
    s_kv_int(pk, "dead_letters", (int64_t)st.dead_letters);
    s_kv_int(pk, "late_replies", (int64_t)st.late_replies);
    s_kv_int(pk, "unhandled", (int64_t)st.unhandled);
    s_kv_int(pk, "expired", (int64_t)st.expired);
    s_kv_int(pk, "bad_frames", (int64_t)st.bad_frames);
    s_kv_int(pk, "oversize", (int64_t)st.oversize);
    s_kv_int(pk, "dropped_connections", (int64_t)st.dropped_connections);
}

static void
s_ps(tr__control_t *c, msgpack_packer *pk)
{
    tr__rec_t **v;
    size_t n = s_recs(c->node, &v);
    msgpack_pack_map(pk, 2);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
    s_str(pk, "actors");
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        s_actor(pk, v[i]);
    s_recs_free(v, n);
}

static void
s_tree_req(tr__control_t *c, msgpack_packer *pk)
{
    tr__rec_t **v;
    size_t n = s_recs(c->node, &v);
    size_t root = SIZE_MAX;
    for (size_t i = 0; i < n && root == SIZE_MAX; i++)
        if (v[i]->id == c->node->root)
            root = i;
    if (root == SIZE_MAX) {
        s_error(pk, "no root supervisor (nothing supervised yet)");
    } else {
        msgpack_pack_map(pk, 2);
        s_str(pk, "ok");
        msgpack_pack_true(pk);
        s_str(pk, "tree");
        s_tree(pk, v, n, root, 0);
    }
    s_recs_free(v, n);
}

static void
s_pools(tr__control_t *c, msgpack_packer *pk)
{
    tr__rec_t **v;
    size_t n = s_recs(c->node, &v), np = 0;
    for (size_t i = 0; i < n; i++)
        np += strcmp(v[i]->behaviour, "tr_pool") == 0;
    msgpack_pack_map(pk, 2);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
    s_str(pk, "pools");
    msgpack_pack_array(pk, (uint32_t)np);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i]->behaviour, "tr_pool") != 0)
            continue;
        int64_t s[8] = {0};
        pthread_mutex_lock(&v[i]->mu);
        memcpy(s, v[i]->pool_stats, sizeof s);
        pthread_mutex_unlock(&v[i]->mu);
        static const char *const keys[8] = {
            "workers", "idle", "queued", "running",
            "done", "failed", "retried", "worker_deaths"};
        msgpack_pack_map(pk, 10);
        s_kv_int(pk, "id", (int64_t)v[i]->id);
        s_kv_str(pk, "name", v[i]->name);
        for (int k = 0; k < 8; k++)
            s_kv_int(pk, keys[k], s[k]);
    }
    s_recs_free(v, n);
}

/* stop / restart: explicit, and logged. */
static void
s_end(tr__control_t *c, msgpack_packer *pk, int64_t id, bool restart)
{
    tr_node_t *node = c->node;
    tr__rec_t *r = tr__reg_get(&node->reg, (tr_id_t)id);
    if (r == NULL || r->kind != TR__REC_ACTOR) {
        tr__rec_unref(&r);
        s_error(pk, "no such actor");
        return;
    }
    TR__LOG(TR_LOG_WARN, "control", "%s of %s#%llx asked on the control "
            "endpoint", restart ? "restart" : "stop",
            r->name[0] ? r->name : r->behaviour, (unsigned long long)id);
    int rc;
    if (restart && r->pid != 0)
        rc = tr_kill(node, (tr_id_t)id);
    else
        rc = tr__stop_async(node, (tr_id_t)id,
                            restart ? TR_EKILLED : 0);
    tr__rec_unref(&r);
    if (rc != 0) {
        s_error(pk, tr_strerror(rc));
        return;
    }
    msgpack_pack_map(pk, 1);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
}

/* watch: keep the last messages in a ring (the node's trace, made with
 * no file when the node traces to none). The trace pointer is set once,
 * NULL to a trace, by this thread only; node destroy closes it after
 * stopping this thread. */
static void
s_watch(tr__control_t *c, msgpack_packer *pk)
{
    tr_node_t *node = c->node;
    tr__trace_t *t = node->trace;
    int rc = 0;
    if (t == NULL && (rc = tr__trace_open_ring(&t)) == 0)
        node->trace = t;
    if (rc == 0 && (rc = tr__trace_ring_on(t)) == 0)
        TR__LOG(TR_LOG_INFO, "control", "watching: the last %d trace records "
                "are kept for \"events\"", TR__TRACE_RING);
    if (rc != 0) {
        s_error(pk, tr_strerror(rc));
        return;
    }
    msgpack_pack_map(pk, 2);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
    s_kv_int(pk, "ring", TR__TRACE_RING);
}

static const char *const s_kinds[] = {"", "send", "recv", "spawn",
                                      "exit", "restart", "down"};

/* events [since]: the ring's records from sequence number since on,
 * as [seq, us since the node began, kind, a, b, size (the reason, for
 * an exit), text] arrays. */
static void
s_events(tr__control_t *c, msgpack_packer *pk, uint64_t since)
{
    tr__trace_t *t = c->node->trace;
    uint64_t next = 0;
    size_t n = 0;
    tr__trace_ev_t *ev = NULL;
    if (t != NULL && (ev = malloc(TR__TRACE_RING * sizeof *ev)) == NULL) {
        s_error(pk, tr_strerror(TR_ENOMEM));
        return;
    }
    if (t != NULL)
        n = tr__trace_snapshot(t, since, ev, TR__TRACE_RING, &next);
    msgpack_pack_map(pk, 4);
    s_str(pk, "ok");
    msgpack_pack_true(pk);
    s_str(pk, "watching");
    if (t != NULL)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    s_kv_int(pk, "next", (int64_t)next);
    s_str(pk, "events");
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const tr__trace_ev_t *e = &ev[i];
        int kind = e->kind;
        msgpack_pack_array(pk, 7);
        msgpack_pack_uint64(pk, e->seq);
        msgpack_pack_uint64(pk, e->ts / 1000u);
        s_str(pk, kind >= 1 && kind <= 6 ? s_kinds[kind] : "?");
        msgpack_pack_uint64(pk, e->a);
        msgpack_pack_uint64(pk, e->b);
        if (kind == TR__TRACE_EXIT)
            msgpack_pack_int64(pk, (int32_t)e->size);
        else
            msgpack_pack_uint32(pk, e->size);
        s_str(pk, e->text);
    }
    free(ev);
}

/* One request (a msgpack array) to its reply. */
static void
s_request(tr__control_t *c, const char *data, size_t len, msgpack_packer *pk)
{
    tr__control_req_t req;
    if (tr__control_parse(data, len, &req) != 0) {
        s_error(pk, "a request is a msgpack array: [command] or "
                    "[command, id]");
        return;
    }
    const char *cmd = req.cmd;
    if (strcmp(cmd, "info") == 0) {
        s_info(c, pk);
    } else if (strcmp(cmd, "ps") == 0) {
        s_ps(c, pk);
    } else if (strcmp(cmd, "tree") == 0) {
        s_tree_req(c, pk);
    } else if (strcmp(cmd, "pools") == 0) {
        s_pools(c, pk);
    } else if (strcmp(cmd, "watch") == 0) {
        s_watch(c, pk);
    } else if (strcmp(cmd, "events") == 0) {
        s_events(c, pk, req.nargs == 1 ? req.id : 0);
    } else if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0) {
        if (req.nargs != 1 || req.id == 0 || req.id > INT64_MAX)
            s_error(pk, "stop and restart take an actor id");
        else
            s_end(c, pk, (int64_t)req.id, cmd[0] == 'r');
    } else {
        s_error(pk, "unknown command (info, ps, tree, pools, watch, events, "
                    "stop, restart)");
    }
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */

static void *
s_main(void *arg)
{
    tr__control_t *c = arg;
    pthread_setname_np(pthread_self(), "tr_control");
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    void *router = c->router, *stop = c->stop;
    zmq_pollitem_t items[2] = {{router, 0, ZMQ_POLLIN, 0},
                               {stop, 0, ZMQ_POLLIN, 0}};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* the context is ending */
        }
        if (items[1].revents & ZMQ_POLLIN)
            break;
        /* [client id][empty, from REQ][request] */
        zmq_msg_t parts[3];
        int np = 0;
        bool more = true;
        while (more && np < 3) {
            zmq_msg_init(&parts[np]);
            if (zmq_msg_recv(&parts[np], router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&parts[np]);
                break;
            }
            more = zmq_msg_more(&parts[np]);
            np++;
        }
        while (more) { /* too many parts: drop the rest */
            zmq_msg_t junk;
            zmq_msg_init(&junk);
            if (zmq_msg_recv(&junk, router, ZMQ_DONTWAIT) < 0)
                more = false;
            else
                more = zmq_msg_more(&junk);
            zmq_msg_close(&junk);
        }
        if (np >= 2) {
            zmq_msg_t *req = &parts[np - 1];
            msgpack_sbuffer_clear(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            pthread_mutex_lock(&s_answer_mu);
            s_request(c, zmq_msg_data(req), zmq_msg_size(req), &pk);
            pthread_mutex_unlock(&s_answer_mu);
            /* the reply goes back the way it came */
            zmq_send(router, zmq_msg_data(&parts[0]),
                     zmq_msg_size(&parts[0]), ZMQ_SNDMORE);
            if (np == 3)
                zmq_send(router, "", 0, ZMQ_SNDMORE);
            zmq_send(router, sb.data, sb.size, 0);
        }
        for (int i = 0; i < np; i++)
            zmq_msg_close(&parts[i]);
    }
    msgpack_sbuffer_destroy(&sb);
    zmq_close(router);
    zmq_close(stop);
    return NULL;
}

/* The endpoint's sockets, bound before the node is listed (its file) and
 * before tr_node_create returns, so that a client that finds the node can
 * reach it; the thread takes them over (pthread_create is the barrier
 * ZeroMQ asks for when a socket changes threads). */
static int
s_open(tr__control_t *c)
{
    void *ctx = c->node->zctx;
    char ep[TR__RUNDIR_MAX + 32];
    snprintf(ep, sizeof ep, "ipc://%s", c->path);
    int timeo = 100;
    c->router = zmq_socket(ctx, ZMQ_ROUTER);
    c->stop_tx = zmq_socket(ctx, ZMQ_PAIR);
    c->stop = zmq_socket(ctx, ZMQ_PAIR);
    if (c->router == NULL || c->stop_tx == NULL || c->stop == NULL ||
        zmq_setsockopt(c->router, ZMQ_SNDTIMEO, &timeo, sizeof timeo) != 0 ||
        tr__sock_limits(c->router, S_MAX_REQUEST, 0) != 0 ||
        tr__sock_limits(c->stop_tx, TR__MAX_MSG_WAKE, 0) != 0 ||
        tr__sock_limits(c->stop, TR__MAX_MSG_WAKE, 0) != 0 ||
        zmq_bind(c->router, ep) != 0 || zmq_bind(c->stop_tx, c->stop_ep) != 0 ||
        zmq_connect(c->stop, c->stop_ep) != 0) {
        int rc = tr__zerr(zmq_errno(), "control endpoint");
        TR__LOG(TR_LOG_WARN, "control", "no control endpoint at %s: %s", ep,
                zmq_strerror(zmq_errno()));
        tr__sock_close(&c->router);
        tr__sock_close(&c->stop_tx);
        tr__sock_close(&c->stop);
        return rc;
    }
    chmod(c->path, 0600);
    return 0;
}

int
tr__control_start(tr_node_t *node, tr__control_t **out)
{
    *out = NULL;
    tr__control_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TR_ENOMEM;
    c->node = node;
    c->started_ms = s_unix_ms();
    c->started_ns = tr__now_ns();
    snprintf(c->path, sizeof c->path, "%s/control", node->rundir);
    snprintf(c->stop_ep, sizeof c->stop_ep, "inproc://tr-control-%p",
             (void *)c);
    int rc = s_open(c);
    if (rc != 0) {
        free(c);
        return rc;
    }
    /* <rundir>/node: name pid started_ms */
    char file[TR__RUNDIR_MAX + 16];
    snprintf(file, sizeof file, "%s/node", node->rundir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        char line[TR_NAME_MAX + 64];
        int n = snprintf(line, sizeof line, "%s %ld %llu\n", node->name,
                         (long)getpid(), (unsigned long long)c->started_ms);
        if (write(fd, line, (size_t)n) != n)
            TR__LOG(TR_LOG_WARN, "control", "cannot write %s", file);
        close(fd);
    }
    if (pthread_create(&c->thread, NULL, s_main, c) != 0) {
        tr__sock_close(&c->router);
        tr__sock_close(&c->stop_tx);
        tr__sock_close(&c->stop);
        free(c);
        return TR_ESYS;
    }
    *out = c;
    return 0;
}

void
tr__control_stop(tr__control_t **cp)
{
    tr__control_t *c = *cp;
    if (c == NULL)
        return;
    pthread_mutex_lock(&s_answer_mu);
    *cp = NULL;
    pthread_mutex_unlock(&s_answer_mu);
    zmq_send(c->stop_tx, "x", 1, 0);
    pthread_join(c->thread, NULL);
    zmq_close(c->stop_tx);
    free(c);
}

int
tr__control_answer(tr_node_t *node, const void *req, size_t len, void **out,
                   size_t *outlen)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pthread_mutex_lock(&s_answer_mu);
    if (node->control == NULL)
        s_error(&pk, "this node serves no control endpoint");
    else if (len > S_MAX_REQUEST)
        s_error(&pk, "request too long");
    else
        s_request(node->control, req, len, &pk);
    pthread_mutex_unlock(&s_answer_mu);
    if (sb.data == NULL)
        return TR_ENOMEM;
    *out = sb.data; /* the caller frees it */
    *outlen = sb.size;
    return 0;
}
