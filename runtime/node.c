/* runtime/node.c - creating and destroying a node. Destroying is the
 * runtime's job end to end: actors stop in reverse start order within a
 * deadline, and whoever does not stop is named, never waited on forever. */
#include "runtime/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/behaviour.h"
#include "runtime/chaos.h"
#include "runtime/control.h"
#include "runtime/port.h"
#include "runtime/process.h"
#include "runtime/remote.h"
#include "runtime/rundir.h"
#include "runtime/step.h"
#include "runtime/trace.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"

/* After the deadline, stragglers still get this long once asked again. */
#define TR__GRACE_MS 100

tr_id_t
tr__node_new_id(tr_node_t *node)
{
    return atomic_fetch_add_explicit(&node->next_id, 1, memory_order_relaxed);
}

int
tr__node_list_push(void ***items, size_t *n, size_t *cap, void *item)
{
    if (tr__grow((void **)items, *n, cap, sizeof **items, 16) != 0)
        return TR_ENOMEM;
    (*items)[(*n)++] = item;
    return 0;
}

bool
tr__node_list_remove(void **items, size_t *n, const void *item)
{
    for (size_t i = 0; i < *n; i++) {
        if (items[i] == item) {
            /* Keep the order: it is the start order. */
            memmove(&items[i], &items[i + 1], (*n - i - 1) * sizeof *items);
            (*n)--;
            return true;
        }
    }
    return false;
}

int
tr__node_add_zombie(tr_node_t *node, pthread_t thread)
{
    if (tr__grow((void **)&node->zombies, node->nzombies, &node->capzombies,
                 sizeof *node->zombies, 16) != 0)
        return TR_ENOMEM;
    node->zombies[node->nzombies++] = thread;
    return 0;
}

void
tr__node_reap(tr_node_t *node)
{
    pthread_mutex_lock(&node->mu);
    size_t n = node->nzombies;
    pthread_t *z = node->zombies;
    node->zombies = NULL;
    node->nzombies = node->capzombies = 0;
    pthread_mutex_unlock(&node->mu);
    /* Each has only its last few instructions left to run. */
    for (size_t i = 0; i < n; i++)
        pthread_join(z[i], NULL);
    free(z);
}

static int
s_opt(const char *field, int value, int fallback, int *out)
{
    if (value < 0) {
        TR__LOG(TR_LOG_ERROR, "runtime", "tr_node_opts_t.%s = %d: must be "
                "0 (default) or positive", field, value);
        return TR_EINVAL;
    }
    *out = value ? value : fallback;
    return 0;
}

/* 1,000 actors need a few thousand descriptors (ZeroMQ gives each socket
 * one); Debian's default soft limit is 1024. Raise it to the hard limit,
 * as Go's runtime does, rather than fail at actor 500. */
static void
s_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            TR__LOG(TR_LOG_INFO, "runtime", "cannot raise RLIMIT_NOFILE: %s",
                    strerror(errno));
    }
}

/* Senders check liveness with plain loads when the ending actor can make
 * every thread issue a barrier for them (Linux 4.14+, not blocked by a
 * seccomp filter); else they use an atomic counter. */
static bool
s_fast_fence(void)
{
    static _Atomic int state; /* 0 unknown, 1 yes, 2 no */
    int s = atomic_load(&state);
    if (s == 0) {
        /* TROUPE_FENCE=atomic forces the portable protocol (tests run
         * both). */
        const char *f = getenv("TROUPE_FENCE");
        if (f != NULL && strcmp(f, "atomic") == 0) {
            atomic_store(&state, 2);
            return false;
        }
        long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        bool ok = q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                  syscall(__NR_membarrier,
                          MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                          0) == 0;
        s = ok ? 1 : 2;
        atomic_store(&state, s);
    }
    return s == 1;
}

void
tr__node_barrier(void)
{
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        TR__LOG(TR_LOG_ERROR, "runtime", "membarrier: %s", strerror(errno));
}

int
tr_node_create(tr_node_t **out, const tr_node_opts_t *opts)
{
    static const tr_node_opts_t defaults = {0};
    if (out == NULL)
        return TR_EINVAL;
    if (opts == NULL)
        opts = &defaults;
    tr__log_init_env();
    if (getenv("TROUPE_CHILD") != NULL && !tr__in_child_init)
        /* Started as a process actor, but main went on instead of handing
         * over to tr_init: refuse, or it would spawn its own children. */
        return tr__refuse(TR_ENOTSUP, "this process was started as a "
                          "process actor: main must call tr_init first");

    tr_node_opts_t o = *opts;
    int rc;
    if ((rc = s_opt("mailbox_hwm", opts->mailbox_hwm, 1000,
                    &o.mailbox_hwm)) != 0 ||
        (rc = s_opt("send_timeout_ms", opts->send_timeout_ms, 5000,
                    &o.send_timeout_ms)) != 0 ||
        (rc = s_opt("ask_timeout_ms", opts->ask_timeout_ms, 5000,
                    &o.ask_timeout_ms)) != 0 ||
        (rc = s_opt("shutdown_timeout_ms", opts->shutdown_timeout_ms, 5000,
                    &o.shutdown_timeout_ms)) != 0 ||
        (rc = s_opt("io_threads", opts->io_threads, 1, &o.io_threads)) != 0 ||
        (rc = s_opt("max_sockets", opts->max_sockets, 16384,
                    &o.max_sockets)) != 0 ||
        (rc = s_opt("log_level", opts->log_level, 0, &o.log_level)) != 0 ||
        (rc = s_opt("max_message_bytes", opts->max_message_bytes,
                    64 << 20, &o.max_message_bytes)) != 0)
        return rc;
    if (opts->name != NULL && (rc = tr__name_check(opts->name)) != 0)
        return rc;
    if (o.log_level != 0)
        tr_log_set_level(o.log_level);

    tr_node_t *node = calloc(1, sizeof *node);
    if (node == NULL)
        return TR_ENOMEM;
    node->opts = o;
    node->fast_fence = s_fast_fence();
    snprintf(node->name, sizeof node->name, "%s",
             opts->name ? opts->name : "node");
    node->opts.name = node->name;
    atomic_init(&node->next_id, 1);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&node->mu, NULL);
    pthread_mutex_init(&node->root_mu, NULL);
    pthread_mutex_init(&node->rundir_mu, NULL);
    pthread_cond_init(&node->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The runtime directory first, so that a refusal leaves nothing to
     * undo: one another user can write to is no place for endpoints
     * (runtime/rundir.c), and a node that could not use it for process
     * actors, its control endpoint or crash capsules does not start
     * (TR_EPERM; the log names the directory and what is wrong). It is
     * made now when the control endpoint needs it, else only checked. A
     * directory that cannot be made at all (no /tmp, a path too long)
     * costs those features, not the node: logged below. */
    const char *dir = NULL;
    int drc = 0;
    if (!tr__in_child_init)
        drc = o.no_control ? tr__rundir_check() : tr__node_rundir(node, &dir);
    if (drc == TR_EPERM) {
        TR__LOG(TR_LOG_ERROR, "runtime", "node '%s' not started: its "
                "runtime directory was refused", node->name);
        rc = drc;
        goto fail;
    }
    if ((rc = tr__reg_init(&node->reg)) != 0)
        goto fail;

    s_raise_fd_limit();
    tr__sock_raise_max_msg(o.max_message_bytes);
    node->zctx = zmq_ctx_new();
    if (node->zctx == NULL) {
        rc = TR_ESYS;
        goto fail_reg;
    }
    if (zmq_ctx_set(node->zctx, ZMQ_IO_THREADS, o.io_threads) != 0 ||
        zmq_ctx_set(node->zctx, ZMQ_MAX_SOCKETS, o.max_sockets) != 0) {
        TR__LOG(TR_LOG_ERROR, "runtime", "zmq_ctx_set: %s",
                zmq_strerror(zmq_errno()));
        rc = TR_EINVAL;
        zmq_ctx_term(node->zctx);
        goto fail_reg;
    }
    /* A trace, when asked for (docs/control.md). */
    const char *trace = o.trace ? o.trace : getenv("TROUPE_TRACE");
    tr__trace_t *tracing = NULL;
    if (trace != NULL && trace[0] != '\0' &&
        tr__trace_open(trace, tr__in_child_init, &tracing) != 0)
        TR__LOG(TR_LOG_WARN, "runtime", "node '%s': no trace", node->name);
    node->trace = tracing;
    /* Step mode, for teaching (runtime/step.c). */
    if (tr__step_start(node, &node->step) != 0)
        TR__LOG(TR_LOG_WARN, "runtime", "node '%s': no step mode",
                node->name);
    /* Faults on purpose, when asked for (runtime/chaos.c). A bad spec is
     * the caller's error: no node. */
    const char *chaos = o.chaos ? o.chaos : getenv("TROUPE_CHAOS");
    if (chaos != NULL && chaos[0] != '\0' && !tr__in_child_init &&
        (rc = tr__chaos_start(node, chaos, &node->chaos)) != 0) {
        tr__step_stop(&node->step);
        tr__trace_close(&tracing);
        node->trace = NULL;
        zmq_ctx_term(node->zctx);
        goto fail_reg;
    }
    /* Other nodes (runtime/remote.c): before any id is made, since ids
     * carry the node's tag. */
    if (!tr__in_child_init &&
        ((rc = tr__remote_prepare(node, &node->remote)) != 0 ||
         (node->remote != NULL &&
          (rc = tr__remote_start(node->remote)) != 0))) {
        tr__remote_stop(&node->remote);
        tr__chaos_stop(&node->chaos);
        tr__step_stop(&node->step);
        tr__trace_close(&tracing);
        node->trace = NULL;
        zmq_ctx_term(node->zctx);
        goto fail_reg;
    }
    if (node->remote != NULL)
        node->gw = tr__remote_rec_id(node->remote);
    /* The control endpoint (docs/control.md), in the node's runtime
     * directory; a node runs without one when it cannot be made. */
    if (!tr__in_child_init && !o.no_control) {
        int crc = drc != 0 ? drc : tr__control_start(node, &node->control);
        if (crc != 0)
            TR__LOG(TR_LOG_WARN, "runtime", "node '%s' has no control "
                    "endpoint: %s", node->name, tr_strerror(crc));
    }
    if (node->remote != NULL && (rc = tr__remote_spawner(node->remote)) != 0)
        TR__LOG(TR_LOG_WARN, "runtime", "node '%s' cannot run spawns for "
                "other nodes: %s", node->name, tr_strerror(rc));
    TR__LOG(TR_LOG_INFO, "runtime", "node '%s' up", node->name);
    *out = node;
    return 0;
fail_reg:
    tr__reg_fini(&node->reg);
fail:
    tr__rundir_remove(node->rundir); /* "" when none was made */
    pthread_mutex_destroy(&node->mu);
    pthread_mutex_destroy(&node->root_mu);
    pthread_mutex_destroy(&node->rundir_mu);
    pthread_cond_destroy(&node->cv);
    free(node);
    return rc;
}

const char *
tr_node_name(const tr_node_t *node)
{
    return node ? node->name : "";
}

void
tr_node_stats(tr_node_t *node, tr_node_stats_t *st)
{
    if (node == NULL || st == NULL)
        return;
    tr__stats_t *s = &node->stats;
    st->spawned = atomic_load(&s->spawned);
    st->exited = atomic_load(&s->exited);
    st->failed = atomic_load(&s->failed);
    st->dead_letters = atomic_load(&s->dead_letters);
    st->late_replies = atomic_load(&s->late_replies);
    st->unhandled = atomic_load(&s->unhandled);
    st->expired = atomic_load(&s->expired);
    st->bad_frames = atomic_load(&s->bad_frames);
    st->oversize = atomic_load(&s->oversize);
    st->dropped_connections = atomic_load(&s->dropped_connections);
    pthread_mutex_lock(&node->mu);
    st->alive = node->nactors;
    pthread_mutex_unlock(&node->mu);
}

int
tr_whereis(tr_node_t *node, const char *name, tr_id_t *id)
{
    if (node == NULL || id == NULL)
        return TR_EINVAL;
    int rc = tr__name_check(name);
    if (rc != 0)
        return rc;
    const char *at = strchr(name, '@');
    if (at != NULL && strcmp(at + 1, node->name) != 0)
        return tr__remote_whereis(node, name, (size_t)(at - name), at + 1,
                                  node->opts.ask_timeout_ms, id);
    char local[TR_NAME_MAX + 1];
    if (at != NULL) {
        snprintf(local, sizeof local, "%.*s", (int)(at - name), name);
        name = local;
    }
    return tr__reg_resolve(&node->reg, name, 0, 0, id);
}

int
tr_name_release(tr_node_t *node, const char *name)
{
    if (node == NULL)
        return tr__refuse(TR_EINVAL, "tr_name_release: NULL node");
    int rc = tr__name_check(name);
    return rc ? rc : tr__reg_release(&node->reg, name);
}

/* True when rec's parent (its linked spawner) still runs: the parent
 * stops it, as a supervisor stops its children. */
static bool
s_has_parent(tr_node_t *node, const tr__rec_t *rec)
{
    if (rec->parent == 0)
        return false;
    tr__rec_t *p = tr__reg_get(&node->reg, rec->parent);
    bool alive = p != NULL && !atomic_load(&p->dead);
    tr__rec_unref(&p);
    return alive;
}

/* The running actors, newest first, with references; with top_only, only
 * those that no running parent will stop. The node service comes last
 * wherever it started: process actors still starting or ending talk to
 * it. */
static tr__rec_t **
s_snapshot(tr_node_t *node, size_t *n, bool top_only)
{
    pthread_mutex_lock(&node->mu);
    size_t all = node->nactors, k = 0;
    tr__rec_t **recs = all ? calloc(all, sizeof *recs) : NULL;
    tr__rec_t *service = NULL;
    for (size_t i = 0; recs != NULL && i < all; i++) {
        tr__rec_t *rec = node->actors[all - 1 - i];
        if (top_only && s_has_parent(node, rec))
            continue;
        tr__rec_ref(rec);
        if (rec->id == node->service && !node->child)
            service = rec;
        else
            recs[k++] = rec;
    }
    if (service != NULL)
        recs[k++] = service;
    pthread_mutex_unlock(&node->mu);
    *n = k;
    if (k == 0) {
        free(recs);
        return NULL;
    }
    return recs;
}

int
tr__stop_async(tr_node_t *node, tr_id_t id, int reason)
{
    tr__port_t *port;
    int rc = tr__port_get(node, &port);
    return rc ? rc : tr__port_send_sys(port, id, TR__SYS_STOP, reason, 0);
}

static void
s_release(tr__rec_t **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tr__rec_unref(&recs[i]);
    free(recs);
}

/* Ask one actor to stop. When that cannot be sent (no port: out of
 * sockets or descriptors), shut the ZeroMQ context down instead: every
 * actor's next socket call then fails and its loop ends as a stop. */
static void
s_send_stop(tr_node_t *node, tr__port_t *port, tr_id_t id)
{
    int rc = port ? tr__port_send_sys(port, id, TR__SYS_STOP, TR_ESHUTDOWN, 0)
                  : TR_ESYS;
    if (rc == 0 || rc == TR_ENOENT || node->ctx_shut)
        return;
    TR__LOG(TR_LOG_WARN, "runtime", "node '%s': cannot send stop (%s); "
            "shutting the context down", node->name, tr_strerror(rc));
    node->ctx_shut = true;
    zmq_ctx_shutdown(node->zctx);
}

/* Wait for rec to end by deadline; a process actor that has not is
 * killed then (as a supervisor kills a child past its shutdown time) and
 * waited for a little longer. */
static int
s_wait_or_kill(tr_node_t *node, tr__rec_t *rec, uint64_t deadline)
{
    int rc = tr__rec_wait_ended(rec, deadline, NULL);
    if (rc != 0 && rec->pid > 0 && !node->child &&
        tr__proc_kill(node, rec->id, TR_EKILLED) == 0) {
        TR__LOG(TR_LOG_WARN, "runtime", "node '%s': process actor %s#%llx "
                "did not stop within %d ms: killed", node->name,
                rec->name[0] ? rec->name : rec->behaviour,
                (unsigned long long)rec->id, node->opts.shutdown_timeout_ms);
        rc = tr__rec_wait_ended(rec, tr__deadline_after_ms(TR__GRACE_MS),
                                NULL);
    }
    return rc;
}

/* Stop every actor, newest first, each waited for before the next (as a
 * supervisor stops its children), all within deadline. True if all ended.
 * An actor leaves the list before it is marked ended, so the loop ends. */
static bool
s_stop_all(tr_node_t *node, tr__port_t *port, uint64_t deadline)
{
    size_t n;
    tr__rec_t **recs;
    /* terminate callbacks cannot spawn (closing), but loop in case an
     * actor was mid-spawn when closing was set. */
    while ((recs = s_snapshot(node, &n, true)) != NULL) {
        for (size_t i = 0; i < n; i++) {
            s_send_stop(node, port, recs[i]->id);
            if (s_wait_or_kill(node, recs[i], deadline) != 0) {
                s_release(recs, n);
                return false;
            }
        }
        s_release(recs, n);
    }
    return true;
}

/* The deadline passed: ask everyone left at once, give them a grace, and
 * name those that still run. Returns how many did not stop. */
static size_t
s_report_stuck(tr_node_t *node, tr__port_t *port)
{
    size_t n, stuck = 0;
    tr__rec_t **recs = s_snapshot(node, &n, false);
    for (size_t i = 0; i < n; i++)
        s_send_stop(node, port, recs[i]->id);
    uint64_t grace = tr__deadline_after_ms(TR__GRACE_MS);
    for (size_t i = 0; i < n; i++) {
        if (s_wait_or_kill(node, recs[i], grace) == 0)
            continue;
        stuck++;
        TR__LOG(TR_LOG_ERROR, "runtime",
                "node '%s': actor %s#%llx (%s) did not stop within %d ms",
                node->name, recs[i]->name[0] ? recs[i]->name : "-",
                (unsigned long long)recs[i]->id, recs[i]->behaviour,
                node->opts.shutdown_timeout_ms);
    }
    s_release(recs, n);
    return stuck;
}

/* Wait until every actor thread has let go of the node. */
static bool
s_wait_threads(tr_node_t *node, uint64_t deadline)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u),
                          .tv_nsec = (long)(deadline % 1000000000u)};
    bool ok = true;
    pthread_mutex_lock(&node->mu);
    while (node->threads_live > 0 && ok)
        ok = pthread_cond_timedwait(&node->cv, &node->mu, &ts) != ETIMEDOUT ||
             node->threads_live == 0;
    pthread_mutex_unlock(&node->mu);
    return ok;
}

int
tr_node_destroy(tr_node_t **nodep)
{
    if (nodep == NULL || *nodep == NULL)
        return 0;
    tr_node_t *node = *nodep;
    tr__port_t *port = NULL;
    pthread_mutex_lock(&node->mu);
    bool any = node->nactors > 0;
    pthread_mutex_unlock(&node->mu);
    /* A port only to send stops: a node with no actor needs none. */
    if (any && tr__port_get(node, &port) != 0)
        port = NULL; /* s_send_stop copes: actor threads always have one */
    if (port != NULL && port->actor != NULL)
        return TR_EPERM;
    *nodep = NULL;
    atomic_store(&node->closing, 1);
    tr__control_stop(&node->control);
    tr__chaos_stop(&node->chaos);

    uint64_t deadline = tr__deadline_after_ms(node->opts.shutdown_timeout_ms);
    bool all = s_stop_all(node, port, deadline);
    if (!all && s_report_stuck(node, port) > 0) {
        /* Their threads still hold sockets and pointers into the node:
         * freeing it or terminating the context would crash or hang. */
        TR__LOG(TR_LOG_ERROR, "runtime", "node '%s' left running: some "
                "actors did not stop", node->name);
        return TR_ETIMEDOUT;
    }
    /* Process actors that did not stop are killed, and reaped. */
    tr__procs_shutdown(node, deadline);
    if (!s_wait_threads(node, tr__deadline_after_ms(TR__GRACE_MS))) {
        TR__LOG(TR_LOG_ERROR, "runtime", "node '%s': actor threads did not "
                "finish", node->name);
        return TR_ETIMEDOUT;
    }
    tr__node_reap(node);
    /* The gateway last: actors ending told other nodes through it. */
    tr__remote_stop(&node->remote);

    /* Close every thread's port, the caller's too. Other threads must be
     * done with the node by now (documented). */
    pthread_mutex_lock(&node->mu);
    tr__port_t **ports = node->ports;
    size_t nports = node->nports;
    node->ports = NULL;
    node->nports = node->capports = 0;
    pthread_mutex_unlock(&node->mu);
    for (size_t i = 0; i < nports; i++) {
        tr__port_close(ports[i]);
        tr__port_unref(&ports[i]);
    }
    free(ports);

    zmq_ctx_term(node->zctx);
    tr__msg_chain_release(node->shown_kept); /* ZeroMQ is done with all */
    node->shown_kept = NULL;
    if (!node->child) /* a child's directory is its parent's */
        tr__rundir_remove(node->rundir);
    TR__LOG(TR_LOG_INFO, "runtime", "node '%s' down", node->name);
    tr__step_stop(&node->step); /* every actor has ended */
    tr__trace_t *tracing = node->trace;
    node->trace = NULL;
    tr__trace_close(&tracing);
    tr__reg_fini(&node->reg);
    free(node->actors);
    pthread_mutex_destroy(&node->mu);
    pthread_mutex_destroy(&node->root_mu);
    pthread_mutex_destroy(&node->rundir_mu);
    pthread_cond_destroy(&node->cv);
    free(node);
    return 0;
}
