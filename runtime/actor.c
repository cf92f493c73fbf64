/* runtime/actor.c - thread actors: spawn, the message loop, timers, and
 * the way out (terminate, drain, DOWN to monitors).
 *
 * The loop reads system messages first, then up to a batch of user
 * messages without blocking, and only polls when both are dry: a busy actor
 * never sleeps between messages, and a stop request is seen within one
 * batch. */
#include "runtime/actor.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/behaviour.h"
#include "runtime/capsule.h"
#include "runtime/future.h"
#include "runtime/node.h"
#include "runtime/place.h"
#include "runtime/process.h"
#include "runtime/remote.h"
#include "runtime/step.h"
#include "runtime/trace.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"

/* User messages handled in one run (then flush). */
#define TR__BATCH 64

/* While the mailbox stays full, the inbox is looked at between runs at
 * most this often: a look that finds nothing costs ZeroMQ a poll(2)
 * (profiled: one a run was a third of a busy process actor's syscalls),
 * and ZeroMQ itself reads its commands no more often than about this. */
#define TR__INBOX_EVERY_NS 1000000u

static tr_actor_t *s_current_actor(tr_node_t *node);

/* ------------------------------------------------------------------ */
/* Timers: a binary min-heap on due time, owned by the actor's thread.  */

static void
s_heap_swap(tr__timer_t *h, size_t i, size_t j)
{
    tr__timer_t t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void
s_heap_up(tr__timer_t *h, size_t i)
{
    while (i > 0 && h[(i - 1) / 2].due_ns > h[i].due_ns) {
        s_heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
s_heap_down(tr__timer_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].due_ns < h[m].due_ns)
            m = l;
        if (r < n && h[r].due_ns < h[m].due_ns)
            m = r;
        if (m == i)
            return;
        s_heap_swap(h, i, m);
        i = m;
    }
}

/* Remove entry i; its message goes to the caller. */
static tr_msg_t *
s_heap_remove(tr_actor_t *a, size_t i)
{
    tr_msg_t *msg = a->timers[i].msg;
    a->timers[i] = a->timers[--a->ntimers];
    if (i < a->ntimers) {
        s_heap_down(a->timers, a->ntimers, i);
        s_heap_up(a->timers, i);
    }
    return msg;
}

static int
s_own_thread(const tr_actor_t *self)
{
    if (self == NULL)
        return TR_EINVAL;
    return pthread_equal(pthread_self(), self->thread) ? 0 : TR_EPERM;
}

static int
s_timer_add(tr_actor_t *self, int ms, bool every, tr_msg_t **msg,
            uint64_t *timer)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    if (msg == NULL || *msg == NULL || ms < 0 || (every && ms == 0))
        return TR_EINVAL;
    if ((*msg)->kind != TR__MSG_BUILT)
        return TR_EINVAL;
    if (tr__grow((void **)&self->timers, self->ntimers, &self->captimers,
                 sizeof *self->timers, 4) != 0)
        return TR_ENOMEM;
    uint64_t interval = (uint64_t)ms * 1000000u;
    tr__timer_t t = {.id = ++self->next_timer,
                     .due_ns = tr__now_ns() + interval,
                     .interval_ns = every ? interval : 0,
                     .msg = *msg};
    t.msg->env = (tr__env_t){.sender = self->rec->id,
                             .target = self->rec->id};
    self->timers[self->ntimers] = t;
    s_heap_up(self->timers, self->ntimers++);
    *msg = NULL;
    if (timer != NULL)
        *timer = t.id;
    return 0;
}

int
tr_timer_after(tr_actor_t *self, int delay_ms, tr_msg_t **msg,
               uint64_t *timer)
{
    return s_timer_add(self, delay_ms, false, msg, timer);
}

int
tr_timer_every(tr_actor_t *self, int interval_ms, tr_msg_t **msg,
               uint64_t *timer)
{
    return s_timer_add(self, interval_ms, true, msg, timer);
}

int
tr_timer_cancel(tr_actor_t *self, uint64_t timer)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < self->ntimers; i++) {
        if (self->timers[i].id == timer) {
            tr_msg_t *msg = s_heap_remove(self, i);
            if (timer == self->firing_timer)
                self->firing_cancelled = true; /* its tick frees msg */
            else
                tr_msg_destroy(&msg);
            return 0;
        }
    }
    return TR_ENOENT;
}

/* ------------------------------------------------------------------ */
/* Identity                                                            */

tr_id_t
tr_self(const tr_actor_t *self)
{
    return self ? self->rec->id : 0;
}

const char *
tr_actor_name(const tr_actor_t *self)
{
    return (self && self->rec->name[0]) ? self->rec->name : NULL;
}

void
tr__actor_set_pool_stats(tr_actor_t *self, const int64_t v[8])
{
    pthread_mutex_lock(&self->rec->mu);
    memcpy(self->rec->pool_stats, v, sizeof self->rec->pool_stats);
    pthread_mutex_unlock(&self->rec->mu);
}

tr_node_t *
tr_actor_node(const tr_actor_t *self)
{
    return self ? self->node : NULL;
}

tr_id_t
tr_actor_parent(const tr_actor_t *self)
{
    return self ? self->rec->parent : 0;
}

void
tr_exit(tr_actor_t *self, int reason)
{
    if (s_own_thread(self) != 0) {
        TR__LOG(TR_LOG_ERROR, "runtime",
                "tr_exit called outside the actor's own thread: ignored");
        return;
    }
    if (!self->stopping) {
        self->stopping = true;
        self->reason = reason > 0 ? TR_EFAILED : reason;
    }
}

void
tr__actor_expose(tr_actor_t *a)
{
    char ep[TR__RUNDIR_MAX + 64];
    if (a->mailbox == NULL || atomic_load(&a->rec->exposed))
        return;
    tr__port_expose(a->port); /* replies come back over ipc too */
    if (tr__endpoint_ipc(a->node, ep, sizeof ep, a->rec->id,
                         TR__BOX_MAILBOX) != 0 ||
        zmq_bind(a->mailbox, ep) != 0) {
        TR__LOG(TR_LOG_ERROR, "runtime", "cannot bind %s: %s", ep,
                zmq_strerror(zmq_errno()));
        return;
    }
    atomic_store(&a->rec->exposed, true);
}

void
tr__actor_on_stop(tr_actor_t *a, int reason)
{
    if (!a->stopping) {
        a->stopping = true;
        a->reason = reason != 0 ? reason : TR_ESHUTDOWN;
    }
}

/* ------------------------------------------------------------------ */
/* Monitors and links                                                   */

/* Queue a "$down" or "$exit" for the handler: system messages arrive
 * while a handler may be running (in a future wait), so they are handed
 * over by the loop, in order, between messages. */
static void
s_enqueue_exit(tr_actor_t *a, const char *tag, tr_id_t who, int reason)
{
    tr_msg_t *m = NULL;
    int rc = tr__msg_create_sys(&m, tag);
    if (rc == 0 && (rc = tr_msg_add_int(m, (int64_t)who)) == 0 &&
        (rc = tr_msg_add_int(m, reason)) == 0) {
        if (a->pending_head > 0 && a->pending_head == a->npending)
            a->pending_head = a->npending = 0;
        rc = tr__grow((void **)&a->pending, a->npending, &a->cappending,
                      sizeof *a->pending, 4);
    }
    if (rc != 0) {
        tr_msg_destroy(&m);
        TR__LOG(TR_LOG_ERROR, "runtime", "%s of %llx lost: %s", tag,
                (unsigned long long)who, tr_strerror(rc));
        return;
    }
    m->env.sender = who;
    m->env.target = a->rec->id;
    a->pending[a->npending++] = m;
}

void
tr__actor_on_down(tr_actor_t *a, tr_id_t who, int reason)
{
    if (a->node->trace != NULL)
        tr__trace_add(a->node->trace, TR__TRACE_DOWN, a->rec->id, who, 0,
                      tr_strerror(reason));
    s_enqueue_exit(a, "$down", who, reason);
}

void
tr__actor_on_exit(tr_actor_t *a, tr_id_t who, int reason)
{
    /* Only if still linked: tr_unlink may have come first. A process
     * actor's links live in its parent's node (made there by a spawn with
     * .link or a tr_link of the other side), which sends only along
     * links: what this one unlinked itself is all it has to drop. */
    bool linked = tr__rec_unlink(a->rec, who);
    if (a->process_child && !linked)
        linked = tr__map_del(&a->unlinked, who) == NULL;
    if (!linked)
        return;
    if (a->trap_exits) {
        s_enqueue_exit(a, "$exit", who, reason);
    } else if (reason != 0 && !a->stopping) {
        TR__LOG(TR_LOG_INFO, "runtime", "linked %llx ended (%s): ending too",
                (unsigned long long)who, tr_strerror(reason));
        a->stopping = true;
        a->reason = reason;
    }
}

int
tr_monitor(tr_actor_t *self, tr_id_t target)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    if (target == 0 || target == self->rec->id)
        return tr__refuse(TR_EINVAL, "tr_monitor: target %llx",
                          (unsigned long long)target);
    tr__rec_t *rec;
    if ((rc = tr__port_peer(self->port, target, &rec)) == 0)
        rc = rec->kind == TR__REC_ACTOR
                 ? tr__port_watch(self->port, rec, target)
                 : TR_ENOENT; /* a plain thread */
    if (rc == TR_ENOENT) { /* already gone: DOWN at once, like noproc */
        s_enqueue_exit(self, "$down", target, TR_ENOENT);
        return 0;
    }
    if (rc != 0)
        return rc;
    uintptr_t n = (uintptr_t)tr__map_get(&self->port->monitoring, target);
    return tr__map_put(&self->port->monitoring, target, (void *)(n + 1));
}

int
tr_demonitor(tr_actor_t *self, tr_id_t target)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    return tr__map_del(&self->port->monitoring, target) ? 0 : TR_ENOENT;
}

int
tr_link(tr_actor_t *self, tr_id_t other)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    if (other == 0 || other == self->rec->id)
        return tr__refuse(TR_EINVAL, "tr_link: other %llx",
                          (unsigned long long)other);
    if (tr__id_foreign(self->node, other))
        return tr__refuse(TR_ENOTSUP, "tr_link: %llx lives on another node: "
                          "monitor it instead", (unsigned long long)other);
    if (self->node->child) {
        /* Links live with the records, in the parent's node: made there;
         * the mirror here lets this actor's exit signals through. */
        (void)tr__map_del(&self->unlinked, other); /* linked again */
        rc = tr__child_link(self, other, true);
        if (rc >= 0)
            rc = tr__rec_link_one(self->rec, other);
    } else {
        tr__rec_t *rec = tr__reg_get(&self->node->reg, other);
        rc = rec && rec->kind == TR__REC_ACTOR ? tr__rec_link(self->rec, rec)
                                               : TR_ENOENT;
        tr__rec_unref(&rec);
    }
    if (rc == TR_ENOENT) {
        /* Linking to the dead: its exit signal, now (noproc). */
        if (self->trap_exits)
            s_enqueue_exit(self, "$exit", other, TR_ENOENT);
        else if (!self->stopping)
            self->stopping = true, self->reason = TR_ENOENT;
        return 0;
    }
    return rc;
}

int
tr_unlink(tr_actor_t *self, tr_id_t other)
{
    int rc = s_own_thread(self);
    if (rc != 0)
        return rc;
    bool found = tr__rec_unlink(self->rec, other);
    if (self->node->child) {
        /* A signal already on its way from the parent's node is dropped
         * (if the map cannot grow, it may still end this actor). */
        (void)tr__map_put(&self->unlinked, other, (void *)1);
        if (tr__child_link(self, other, false) == 1)
            found = true;
        else if (!found) /* no link, so no signal on its way */
            (void)tr__map_del(&self->unlinked, other);
    } else {
        tr__rec_t *rec = tr__reg_get(&self->node->reg, other);
        if (rec != NULL)
            tr__rec_unlink(rec, self->rec->id);
        tr__rec_unref(&rec);
    }
    return found ? 0 : TR_ENOENT;
}

void
tr_trap_exits(tr_actor_t *self, bool trap)
{
    if (s_own_thread(self) == 0)
        self->trap_exits = trap;
}

int
tr_msg_exit(const tr_msg_t *msg, tr_id_t *who, int *reason)
{
    if (msg == NULL || (!tr_msg_is(msg, "$down") && !tr_msg_is(msg, "$exit")))
        return TR_EINVAL;
    tr_reader_t r;
    int64_t w, why;
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &w) != 0 || tr_read_int(&r, &why) != 0)
        return TR_EPROTO;
    if (who != NULL)
        *who = (tr_id_t)w;
    if (reason != NULL)
        *reason = (int)why;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Delivering one message                                               */

/* Out of line: inlined, its locks and log line made the handler's path
 * save more registers on every message (callgrind). */
__attribute__((noinline, cold)) static void
s_fail(tr_actor_t *a, int rc, const tr_msg_t *msg)
{
    if (a->stopping)
        return; /* the first reason stands: a stop cut the handler short */
    if (rc == TR_ECLOSED) {
        /* The context is shutting down under us (the last resort of
         * tr_node_destroy): a stop, not a failure. */
        a->stopping = true;
        a->reason = TR_ESHUTDOWN;
        return;
    }
    const char *tag = msg ? tr_msg_tag(msg) : "";
    pthread_mutex_lock(&a->rec->mu);
    snprintf(a->rec->last_tag, sizeof a->rec->last_tag, "%s", tag);
    pthread_mutex_unlock(&a->rec->mu);
    TR__LOG(TR_LOG_ERROR, "runtime", "actor failed handling '%s': %s", tag,
            tr_strerror(rc));
    a->stopping = true;
    a->reason = rc;
    if (msg != NULL)
        tr__capsule_crash(a, msg, rc);
}

static void
s_handle(tr_actor_t *a, const tr_msg_t *msg)
{
    if (a->cap.poison != 0 && tr__capsule_quarantine(a, msg))
        return;
    tr__capsule_note(&a->cap, msg);
    if (a->tagpage != NULL) { /* for the parent's crash report */
        /* A constant 64 bytes (tag, NUL, what follows) is a few moves; a
         * memcpy of the tag's length was a call (profiled). */
        const uint8_t *tag = msg->buf + TR__ENV_HDR;
        if (msg->len >= TR__ENV_HDR + TR__TAG_PAGE)
            memcpy(a->tagpage, tag, TR__TAG_PAGE);
        else
            memcpy(a->tagpage, tag, msg->taglen + 1);
    }
    a->port->cur_deadline = msg->env.deadline_ns;
    int rc = a->beh->handle(a, a->state, msg);
    a->port->cur_deadline = 0;
    if (a->tagpage != NULL && rc >= 0) /* not TR_EUNHANDLED either */
        a->tagpage[0] = '\0'; /* idle again: a crash now is not its fault */
    if (rc == 0) {
        a->cap.cur = NULL;
        return;
    }
    if (rc == TR_EUNHANDLED) {
        TR__STAT_INC(a->node, unhandled);
        TR__LOG(TR_LOG_WARN, "runtime", "message '%s' from %llx not handled",
                tr_msg_tag(msg), (unsigned long long)msg->env.sender);
        if (tr_msg_is_request(msg))
            (void)tr_reply_error(a, msg, TR_EUNHANDLED);
        a->cap.cur = NULL;
        return;
    }
    s_fail(a, rc > 0 ? TR_EFAILED : rc, msg);
    a->cap.cur = NULL;
}

/* A SYNC in the mailbox: everything its sender sent before it has been
 * read, so tell the sender (see TR__SYS_SYNC). */
static void
s_on_sync(tr_actor_t *a, const tr_msg_t *view)
{
    tr_reader_t r;
    int64_t token = 0;
    tr_reader_init(&r, view);
    if (tr_read_int(&r, &token) != 0) {
        TR__STAT_INC(a->node, bad_frames);
        return;
    }
    (void)tr__port_send_sys(a->port, view->env.sender, TR__SYS_SYNCED,
                            (int64_t)a->rec->id, token);
}

/* A user message for the handler, checked. */
static void
s_deliver_now(tr_actor_t *a, const tr_msg_t *msg)
{
    if (a->node->trace != NULL) {
        size_t len = 0;
        (void)tr_msg_payload(msg, &len);
        tr__trace_add(a->node->trace, TR__TRACE_RECV, a->rec->id,
                      msg->env.sender, (uint32_t)len, tr_msg_tag(msg));
    }
    s_handle(a, msg);
}

/* A frame from the mailbox, parsed (rc from tr__msg_view_recv). */
static void
s_deliver(tr_actor_t *a, const tr_msg_t *view, int rc)
{
    if (rc == 0 && view->env.flags == TR__F_SYSTEM &&
        view->env.code == TR__SYS_SYNC && view->env.sender != 0) {
        s_on_sync(a, view);
    } else if (rc != 0) {
        TR__STAT_INC(a->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "runtime", "malformed frame dropped: %s",
                tr_strerror(rc));
    } else if ((view->env.flags &
                (TR__F_REPLY | TR__F_SYSTEM | TR__F_BATCH)) ||
               ((view->env.flags & TR__F_REQUEST) &&
                (view->env.sender == 0 || view->env.corr == 0))) {
        /* An ask must say where the answer goes. (A tell may come from
         * no one: sender 0.) */
        TR__STAT_INC(a->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "runtime", "forged or misrouted frame '%s' "
                "from %llx dropped", tr_msg_tag(view),
                (unsigned long long)view->env.sender);
    } else if ((view->env.flags & TR__F_REQUEST) && view->env.deadline_ns &&
               tr__now_ns() >= view->env.deadline_ns) {
        /* The asker has given up already: the work would be wasted. */
        TR__STAT_INC(a->node, expired);
        TR__LOG(TR_LOG_DEBUG, "runtime", "expired request '%s' dropped",
                tr_msg_tag(view));
    } else if (a->step_fd < 0 || !tr__step_hold(a, (tr_msg_t *)view)) {
        s_deliver_now(a, view); /* (step mode holds it: the view is ours) */
    }
}

/* Step mode: handle the held message the learner picked; how many. */
static int
s_step_deliver(tr_actor_t *a)
{
    tr_msg_t *m = tr__step_take(a);
    if (m == NULL)
        return 0;
    s_deliver_now(a, m);
    tr_msg_destroy(&m);
    tr__step_done(a);
    return 1;
}

/* Hand queued "$down"/"$exit" messages to the handler; how many. */
static int
s_deliver_pending(tr_actor_t *a)
{
    int n = 0;
    while (a->pending_head < a->npending && !a->stopping) {
        tr_msg_t *m = a->pending[a->pending_head];
        a->pending[a->pending_head++] = NULL;
        s_handle(a, m);
        tr_msg_destroy(&m);
        n++;
    }
    if (a->pending_head == a->npending)
        a->pending_head = a->npending = 0;
    return n;
}

/* Fire due timers; returns how many fired. */
static int
s_fire_timers(tr_actor_t *a)
{
    int fired = 0;
    uint64_t now = tr__now_ns();
    while (a->ntimers > 0 && a->timers[0].due_ns <= now && !a->stopping) {
        tr__timer_t *t = &a->timers[0];
        tr_msg_t *msg = t->msg;
        if (t->interval_ns != 0) {
            /* Periodic: next slot after now, so a late actor gets one
             * tick, not a burst of missed ones. The handler may cancel
             * it: then the message is freed here, after the call. */
            t->due_ns += t->interval_ns;
            if (t->due_ns <= now)
                t->due_ns = now + t->interval_ns;
            a->firing_timer = t->id;
            a->firing_cancelled = false;
            s_heap_down(a->timers, a->ntimers, 0);
            s_handle(a, msg);
            a->firing_timer = 0;
            if (a->firing_cancelled)
                tr_msg_destroy(&msg);
        } else {
            msg = s_heap_remove(a, 0);
            s_handle(a, msg);
            tr_msg_destroy(&msg);
        }
        fired++;
    }
    return fired;
}

static bool
s_bad_frame(int rc)
{
    return rc == TR_EPROTO || rc == TR_EVERSION;
}

/* ------------------------------------------------------------------ */
/* Watched sockets and fds                                              */

static int
s_io_find(const tr_actor_t *a, const void *sock, int fd)
{
    for (int i = 0; i < a->nio; i++)
        if (a->io[i].fn != NULL &&
            (sock != NULL ? a->io[i].sock == sock
                          : a->io[i].sock == NULL && a->io[i].fd == fd))
            return i;
    return -1;
}

int
tr_actor_watch_io(tr_actor_t *self, void *sock, int fd, tr_io_fn fn)
{
    if (self == NULL || fn == NULL || (sock == NULL) == (fd < 0))
        return tr__refuse(TR_EINVAL, "tr_actor_watch_io: a socket or an fd, "
                          "and a function");
    if (!pthread_equal(pthread_self(), self->thread))
        return TR_EPERM;
    if (s_io_find(self, sock, fd) >= 0)
        return TR_EEXIST;
    if (self->nio == TR__IO_MAX)
        return tr__refuse(TR_ERANGE, "tr_actor_watch_io: %d watched already",
                          TR__IO_MAX);
    if (sock != NULL) {
        int rc = tr__sock_fd(sock, &fd);
        if (rc != 0)
            return rc;
    }
    /* A socket is looked at once first: input may be there already (its
     * fd only signals what comes later); an fd waits for poll. */
    self->io[self->nio++] = (struct tr__io){sock, fd, fn, sock != NULL};
    return 0;
}

int
tr_actor_unwatch_io(tr_actor_t *self, void *sock, int fd)
{
    if (self == NULL || (sock == NULL) == (fd < 0))
        return TR_EINVAL;
    if (!pthread_equal(pthread_self(), self->thread))
        return TR_EPERM;
    int i = s_io_find(self, sock, fd);
    if (i < 0)
        return TR_ENOENT;
    self->io[i].fn = NULL; /* the loop drops it (it may be running it) */
    return 0;
}

void *
tr_node_zmq_context(tr_node_t *node)
{
    return node ? node->zctx : NULL;
}

/* Whether a watched socket has input (and, for an fd, what poll said). */
static bool
s_io_has_input(struct tr__io *io)
{
    if (io->sock == NULL)
        return io->ready;
    int ev = 0;
    size_t len = sizeof ev;
    if (zmq_getsockopt(io->sock, ZMQ_EVENTS, &ev, &len) != 0)
        return true; /* let fn see the error */
    return (ev & ZMQ_POLLIN) != 0;
}

/* Run the callbacks of watched input that is ready, once each; how many
 * ran. Entries unwatched meanwhile are dropped. */
static int
s_io_run(tr_actor_t *a)
{
    int ran = 0;
    for (int i = 0; i < a->nio && !a->stopping; i++) {
        struct tr__io *io = &a->io[i];
        if (io->fn == NULL || !io->ready)
            continue;
        if (io->sock != NULL && !(io->ready = s_io_has_input(io)))
            continue;
        int rc = io->fn(a, a->state, io->sock, io->sock ? -1 : io->fd);
        ran++;
        if (rc != 0) {
            s_fail(a, rc > 0 ? TR_EFAILED : rc, NULL);
            break;
        }
        if (io->fn != NULL) /* a socket: still ready if it was not read dry */
            io->ready = io->sock != NULL && s_io_has_input(io);
    }
    int k = 0;
    for (int i = 0; i < a->nio; i++)
        if (a->io[i].fn != NULL)
            a->io[k++] = a->io[i];
    a->nio = k;
    return ran;
}

/* The loop. A socket is polled only after a recv on it gave EAGAIN (so
 * its ZMQ_FD can be polled directly), and read again only when its fd woke
 * us (or once a batch while busy): a failed recv costs a poll(2) inside
 * libzmq, and this way an actor pays one per wake-up, as a blocking
 * zmq_recv does. Watched input is served between batches. */
static void
s_loop(tr_actor_t *a)
{
    assert(a->port != NULL); /* opened before init: s_loop runs after it */
    struct pollfd *fds = a->fds;
    fds[0] = (struct pollfd){.fd = a->port->inbox_fd};
    fds[1] = (struct pollfd){.fd = a->mailbox_fd};
    tr_msg_t *view = &a->view;
    tr__msg_view_open(view);
    bool mailbox_drained = false;
    uint64_t inbox_seen = 0; /* when the inbox was last read */
    while (!a->stopping) {
        int rc;
        if (!a->port->inbox_drained) {
            inbox_seen = tr__now_ns();
            if ((rc = tr__port_pump(a->port, 0, NULL)) < 0) {
                s_fail(a, rc, NULL);
                break;
            }
        }
        int busy = s_deliver_pending(a) + s_fire_timers(a);
        if (a->step_fd >= 0 && !a->stopping)
            busy += s_step_deliver(a);
        while (busy < TR__BATCH && !a->stopping && !mailbox_drained &&
               a->npending == 0) {
            rc = tr__msg_view_recv(view, a->mailbox, false);
            if (rc == TR_EAGAIN) {
                mailbox_drained = true;
                break;
            }
            if (rc != 0 && !s_bad_frame(rc)) {
                s_fail(a, rc, NULL);
                break;
            }
            atomic_store_explicit(
                &a->rec->taken,
                atomic_load_explicit(&a->rec->taken, memory_order_relaxed) + 1,
                memory_order_relaxed); /* only this thread writes it */
            busy++;
            s_deliver(a, view, rc);
        }
        bool io_ready = false;
        if (a->nio > 0 && !a->stopping) {
            busy += s_io_run(a);
            for (int i = 0; i < a->nio; i++)
                io_ready |= a->io[i].ready;
        }
        if (busy > 0 && a->beh->flush != NULL && !a->stopping) {
            /* The end of a run: what the actor gathered goes on. */
            rc = a->beh->flush(a, a->state);
            if (rc != 0)
                s_fail(a, rc > 0 ? TR_EFAILED : rc, NULL);
        }
        if (busy >= TR__BATCH) {
            /* Still busy: look at the inbox between runs anyway, now and
             * then. */
            if (tr__now_ns() - inbox_seen >= TR__INBOX_EVERY_NS)
                a->port->inbox_drained = false;
            continue;
        }
        if (a->stopping || !a->port->inbox_drained || !mailbox_drained ||
            a->npending > 0)
            continue;
        /* All read dry: their fds may be polled (without waiting while
         * watched input is still there). */
        long timeout = io_ready ? 0 : -1;
        uint64_t due = a->ntimers > 0 ? a->timers[0].due_ns : 0;
        if (a->port->ntimed > 0) /* futures with a callback and a deadline */
            due = tr__deadline_min(due, tr__future_next_deadline(a->port));
        if (due != 0 && !io_ready)
            timeout = (long)tr__ms_left(due);
        int nio = a->nio, nfds = 2 + nio;
        for (int i = 0; i < nio; i++)
            fds[2 + i].fd = a->io[i].fd;
        if (a->step_fd >= 0) /* the stepper picked one of ours */
            fds[nfds++].fd = a->step_fd;
        if ((rc = tr__wait_fds(fds, nfds, timeout)) < 0) {
            s_fail(a, rc, NULL);
            break;
        }
        /* Read the inbox on its events, and when a future's deadline
         * may have come (the pump settles those). */
        if (fds[0].revents != 0 || a->port->ntimed > 0)
            a->port->inbox_drained = false;
        if (fds[1].revents != 0)
            mailbox_drained = false;
        for (int i = 0; i < nio; i++)
            if (fds[2 + i].revents != 0)
                a->io[i].ready = true;
    }
    tr__msg_view_close(view);
}

/* ------------------------------------------------------------------ */
/* Start and end                                                        */

/* Everything queued when the actor ends is a dead letter. Senders caught
 * between their liveness check and their send are waited for (see
 * s_announce in port.c), so what they send is drained and counted too. */
static void
s_drain(tr_actor_t *a)
{
    long n = tr__port_drain(a->node, a->rec, a->mailbox, true);
    atomic_fetch_add(&a->node->stats.dead_letters, (uint64_t)n);
    if (n > 0)
        TR__LOG(TR_LOG_INFO, "runtime", "%ld queued message%s dropped as "
                "dead letters", n, n == 1 ? "" : "s");
}

/* Tell watchers (DOWN) and links (exit signals) that this actor ended.
 * After a failed init there are no exit signals (tr_spawn reported the
 * failure already); the links made at spawn are just undone. */
void
tr__ties_send(tr__port_t *port, tr__rec_t *rec, int reason, bool init_ok)
{
    tr_id_t *mons, *links;
    size_t nmons, nlinks;
    tr_id_t me = rec->id;
    tr_node_t *node = atomic_load(&port->node);
    tr__rec_take_ties(rec, &mons, &nmons, &links, &nlinks);
    for (size_t i = 0; i < nmons; i++)
        (void)tr__port_send_sys(port, mons[i], TR__SYS_DOWN, (int64_t)me,
                                reason);
    for (size_t i = 0; i < nlinks; i++) {
        if (init_ok) {
            (void)tr__port_send_sys(port, links[i], TR__SYS_EXIT, (int64_t)me,
                                    reason);
        } else if (node != NULL) {
            tr__rec_t *o = tr__reg_get(&node->reg, links[i]);
            if (o != NULL)
                tr__rec_unlink(o, me);
            tr__rec_unref(&o);
        }
    }
    free(mons);
    free(links);
}

static void
s_log_exit(int reason, bool init_ok)
{
    if (!init_ok)
        TR__LOG(TR_LOG_WARN, "runtime", "init failed: %s",
                tr_strerror(reason));
    else if (reason == 0 || reason == TR_ESHUTDOWN)
        TR__LOG(TR_LOG_DEBUG, "runtime", "exited: %s", tr_strerror(reason));
    else
        TR__LOG(TR_LOG_INFO, "runtime", "exited abnormally: %s",
                tr_strerror(reason));
}

/* Everything between the last callback and "ended": no new sends, queued
 * messages counted, DOWN to watchers, sockets closed, unregistered and
 * off the node's list of running actors. */
static void
s_wind_down(tr_actor_t *a, int reason, bool init_ok)
{
    tr_node_t *node = a->node;
    tr__rec_t *rec = a->rec;
    atomic_store(&rec->dead, 1);
    tr__step_leave(a); /* what it held: dead letters */
    if (a->mailbox != NULL)
        s_drain(a);
    if (a->port != NULL) {
        /* A child's ties live in the parent's node, whose reaper sends
         * them when this process is gone. */
        if (!node->child)
            tr__ties_send(a->port, a->rec, reason, init_ok);
        tr__port_forget(a->port);
        tr__port_close(a->port);
        tr__port_unref(&a->port);
    }
    tr__sock_close(&a->mailbox);
    while (a->ntimers > 0) {
        tr_msg_t *msg = s_heap_remove(a, a->ntimers - 1);
        tr_msg_destroy(&msg);
    }
    free(a->timers);
    while (a->pending_head < a->npending)
        tr_msg_destroy(&a->pending[a->pending_head++]);
    free(a->pending);
    tr__map_free(&a->unlinked);
    free(a->state);
    tr__log_set_thread_label(NULL);

    tr__rec_finish(node, rec, reason, init_ok);
}

void *
tr__actor_main(void *arg)
{
    tr_actor_t *a = arg;
    tr_node_t *node = a->node;
    tr__rec_t *rec = a->rec;
    char ep[64];
    int rc;

    a->thread = pthread_self(); /* before any callback compares with it */
    a->step_fd = -1;
    atomic_store_explicit(&rec->tid, (long)gettid(), memory_order_relaxed);
    snprintf(a->label, sizeof a->label, "%s#%llx",
             rec->name[0] ? rec->name : a->beh->name,
             (unsigned long long)rec->id);
    tr__log_set_thread_label(a->label);
    /* So that top -H, perf and gdb show which actor a thread is (the
     * kernel keeps 15 bytes). */
    char comm[16];
    size_t clen = strnlen(a->label, sizeof comm - 1);
    memcpy(comm, a->label, clen);
    comm[clen] = '\0';
    pthread_setname_np(pthread_self(), comm);

    tr_msg_t *own_args = NULL; /* a child's, from its parent */
    if ((rc = tr__port_open_actor(node, rec, a, &a->port)) != 0)
        goto report;
    if (a->process_child) {
        if ((rc = tr__child_hello(a, &own_args)) != 0)
            goto report;
        a->args = own_args;
    }
    a->mailbox = tr__sock_open(node->zctx, ZMQ_PULL, 0, a->hwm, &rc);
    if (a->mailbox == NULL)
        goto report;
    tr__endpoint(ep, sizeof ep, rec->id, TR__BOX_MAILBOX);
    if (zmq_bind(a->mailbox, ep) != 0) {
        rc = tr__zerr(zmq_errno(), "bind mailbox");
        goto report;
    }
    if ((rc = tr__sock_fd(a->mailbox, &a->mailbox_fd)) != 0)
        goto report;
    if (node->child)
        tr__actor_expose(a); /* a child is there to be reached */
    tr__capsule_start(a);
    tr__step_join(a);
    if (a->beh->state_size > 0 &&
        (a->state = calloc(1, a->beh->state_size)) == NULL) {
        rc = TR_ENOMEM;
        goto report;
    }
    if (a->beh->init != NULL) {
        rc = a->beh->init(a, a->state, a->args);
        if (rc > 0)
            rc = TR_EFAILED;
        if (rc == 0 && a->stopping)
            rc = a->reason ? a->reason : TR_EFAILED; /* tr_exit in init */
    }
report:
    a->args = NULL; /* the spawner's: gone once it wakes */
    tr_msg_destroy(&own_args);
    bool init_ok = (rc == 0);
    int reason = rc;
    if (a->process_child && a->port != NULL)
        tr__child_started(a, rc);
    if (init_ok) {
        tr__rec_report_init(rec, 0);
        TR__LOG(TR_LOG_DEBUG, "runtime", "started (%s)", a->beh->name);
        if (node->trace != NULL) {
            char text[2 * TR_NAME_MAX + 2];
            snprintf(text, sizeof text, "%s/%s", rec->name, a->beh->name);
            tr__trace_add(node->trace, TR__TRACE_SPAWN, rec->id, rec->parent,
                          0, text);
            if (rec->replaces != 0)
                tr__trace_add(node->trace, TR__TRACE_RESTART, rec->id,
                              rec->replaces, 0, rec->name);
        }
        s_loop(a);
        reason = a->reason;
        if (a->beh->terminate != NULL) {
            a->in_terminate = true; /* it may still call and wait */
            a->beh->terminate(a, a->state, reason);
        }
        if (a->process_child)
            tr__child_exiting(a, reason);
    }
    s_log_exit(reason, init_ok);
    if (init_ok && node->trace != NULL) {
        tr__trace_add(node->trace, TR__TRACE_EXIT, rec->id, 0,
                      (uint32_t)reason, tr_strerror(reason));
        tr__trace_flush_thread(node->trace);
    }
    bool child = a->process_child;
    tr__rec_note_reason(rec, reason);
    s_wind_down(a, reason, init_ok);
    if (init_ok) {
        tr__stat_end(node, reason);
    } else {
        /* Only now: when tr_spawn returns the failure, the name is free
         * again and the actor no longer counts as alive. */
        tr__rec_report_init(rec, rc);
    }
    if (a->tagpage != NULL)
        munmap(a->tagpage, TR__TAG_PAGE);
    free(a);
    tr__rec_set_ended(rec, reason);
    if (child) { /* the main thread of a child: nobody joins it */
        pthread_mutex_lock(&node->mu);
        node->threads_live--;
        pthread_cond_broadcast(&node->cv);
        pthread_mutex_unlock(&node->mu);
        tr__rec_unref(&rec);
        return NULL;
    }

    /* Last touch of the node: after this, destroy may free it. */
    pthread_t self = pthread_self();
    pthread_mutex_lock(&node->mu);
    if (tr__node_add_zombie(node, self) != 0)
        pthread_detach(self); /* out of memory: nobody will join it */
    node->threads_live--;
    pthread_cond_broadcast(&node->cv);
    pthread_mutex_unlock(&node->mu);
    tr__rec_unref(&rec); /* the thread's reference */
    return NULL;
}

/* Registered before init (as OTP does): messages sent during init wait
 * in the mailbox, which inproc accepts before the bind. Adds the node
 * list's reference. */
static int
s_register(tr_node_t *node, tr__rec_t *rec)
{
    int rc;
    pthread_mutex_lock(&node->mu);
    if (atomic_load(&node->closing)) {
        rc = tr__refuse(TR_ECLOSED, "tr_spawn: node '%s' is being destroyed",
                        node->name);
    } else if ((rc = tr__reg_add(&node->reg, rec)) == 0) {
        rc = tr__node_list_push((void ***)&node->actors, &node->nactors,
                                &node->capactors, rec);
        if (rc == 0)
            tr__rec_ref(rec);
        else
            tr__reg_remove(&node->reg, rec, false, 0);
    }
    pthread_mutex_unlock(&node->mu);
    return rc;
}

void
tr__rec_finish(tr_node_t *node, tr__rec_t *rec, int reason, bool init_ok)
{
    /* A kept name that no earlier actor held is not kept by a failed
     * first start: there is nothing to wait for. */
    if (!init_ok && !rec->took_over)
        atomic_store(&rec->keep_name, false);
    tr__reg_remove(&node->reg, rec, true, reason);
    pthread_mutex_lock(&node->mu);
    bool listed =
        tr__node_list_remove((void **)node->actors, &node->nactors, rec);
    pthread_mutex_unlock(&node->mu);
    if (listed) {
        tr__rec_t *r = rec;
        tr__rec_unref(&r); /* the list's */
    }
}

void
tr__stat_end(tr_node_t *node, int reason)
{
    if (reason == 0 || reason == TR_ESHUTDOWN)
        TR__STAT_INC(node, exited);
    else
        TR__STAT_INC(node, failed);
}

static int
s_start_thread(tr_node_t *node, tr_actor_t *a)
{
    tr__rec_ref(a->rec); /* the thread's (a->rec), dropped when it ends */
    pthread_mutex_lock(&node->mu);
    node->threads_live++;
    pthread_mutex_unlock(&node->mu);
    pthread_t thread; /* the thread records its own id in a->thread */
    int rc = pthread_create(&thread, NULL, tr__actor_main, a);
    if (rc == 0)
        return 0;
    pthread_mutex_lock(&node->mu);
    node->threads_live--;
    pthread_mutex_unlock(&node->mu);
    tr__rec_t *r = a->rec;
    tr__rec_unref(&r);
    TR__LOG(TR_LOG_ERROR, "runtime", "pthread_create: %s", strerror(rc));
    return rc == EAGAIN ? TR_ENOMEM : TR_ESYS;
}

/* Like zactor_new: return once the actor is up (or has failed). */
static int
s_wait_init(tr__rec_t *rec)
{
    pthread_mutex_lock(&rec->mu);
    while (!rec->init_done)
        pthread_cond_wait(&rec->cv, &rec->mu);
    int rc = rec->init_rc;
    pthread_mutex_unlock(&rec->mu);
    return rc;
}

_Thread_local bool tr__place_off;

/* TROUPE_PLACE said "node b|c": the first of them that is up (this node
 * among them: here). */
static int
s_spawn_placed(tr_node_t *node, const char *nodes, const char *behaviour,
               const tr_spawn_opts_t *opts, tr_id_t *id)
{
    char list[TR_NAME_MAX + 1], *save = NULL;
    snprintf(list, sizeof list, "%s", nodes);
    int rc = TR_ENOCONN;
    for (char *at = strtok_r(list, "|", &save); at != NULL;
         at = strtok_r(NULL, "|", &save)) {
        bool here = strcmp(at, node->name) == 0;
        if (!here && tr_node_await(node, at, 0) != 0)
            continue;
        tr__place_off = true; /* placed: not again */
        rc = here ? tr_spawn(node, behaviour, opts, id)
                  : tr_spawn_on(node, at, behaviour, opts, id);
        tr__place_off = false;
        if (rc != TR_ENOCONN && rc != TR_ECLOSED)
            break;
    }
    if (rc == TR_ENOCONN)
        TR__LOG(TR_LOG_WARN, "runtime", "spawn of '%s': TROUPE_PLACE puts "
                "it on node %s, and none of them is up", opts->name, nodes);
    return rc;
}

int
tr_spawn(tr_node_t *node, const char *behaviour, const tr_spawn_opts_t *opts,
         tr_id_t *id)
{
    static const tr_spawn_opts_t defaults = {0};
    if (node == NULL || behaviour == NULL)
        return tr__refuse(TR_EINVAL, "tr_spawn: NULL %s",
                          node == NULL ? "node" : "behaviour");
    if (opts == NULL)
        opts = &defaults;
    bool process = opts->mode == TR_PROCESS;
    if ((!process && opts->mode != TR_THREAD) || opts->mailbox_hwm < 0 ||
        opts->heartbeat_ms < 0)
        return tr__refuse(TR_EINVAL, "tr_spawn: bad mode, mailbox_hwm or "
                          "heartbeat_ms");
    if (!process && (opts->executable != NULL || opts->heartbeat_ms != 0))
        return tr__refuse(TR_EINVAL, "tr_spawn: executable and heartbeat_ms "
                          "are for TR_PROCESS");
    if (node->child)
        return tr__refuse(TR_ENOTSUP, "tr_spawn: not from inside a process "
                          "actor (yet)");
    int rc;
    if (opts->name != NULL && (rc = tr__name_check(opts->name)) != 0)
        return rc;
    if (opts->name != NULL && strchr(opts->name, '@') != NULL)
        return tr__refuse(TR_EINVAL, "tr_spawn: name '%s': '@' is for "
                          "name@node (tr_spawn_on starts one there)",
                          opts->name);
    if ((rc = tr__name_check(behaviour)) != 0)
        return rc;
    /* Where TROUPE_PLACE puts an actor of this name: a mode, or nodes. */
    tr_spawn_opts_t placed;
    if (opts->name != NULL && !tr__place_off) {
        tr__place_t pl;
        if ((rc = tr__place_find(opts->name, &pl)) < 0)
            return rc;
        if (rc == 1 && pl.kind == 2)
            return s_spawn_placed(node, pl.node, behaviour, opts, id);
        if (rc == 1) {
            placed = *opts;
            placed.mode = pl.kind == 1 ? TR_PROCESS : TR_THREAD;
            if (pl.kind == 0)
                placed.executable = NULL, placed.heartbeat_ms = 0;
            opts = &placed;
            process = opts->mode == TR_PROCESS;
        }
    }
    /* Another executable registers its own behaviours. */
    const tr_behaviour_t *beh = tr__behaviour_find(behaviour);
    if (beh == NULL && opts->executable == NULL)
        return tr__refuse(TR_ENOENT, "tr_spawn: no behaviour '%s'",
                          behaviour);
    tr__node_reap(node);

    tr_msg_t *empty_args = NULL;
    const tr_msg_t *args = opts->args;
    if (args == NULL) {
        if ((rc = tr__msg_create_sys(&empty_args, "$args")) != 0)
            return rc;
        args = empty_args;
    }
    tr_actor_t *a = NULL;
    tr__rec_t *rec = NULL;
    bool registered = false;
    if ((rc = tr__rec_new(&rec, tr__node_new_id(node), TR__REC_ACTOR,
                          opts->name)) != 0)
        goto fail;
    snprintf(rec->behaviour, sizeof rec->behaviour, "%s", behaviour);
    atomic_store(&rec->keep_name, opts->keep_name && opts->name != NULL);
    if (opts->link) {
        /* spawn_link: linked before init runs, so no end goes unseen; the
         * spawner becomes the parent that stops it. */
        tr_actor_t *me = s_current_actor(node);
        if (me == NULL) {
            rc = tr__refuse(TR_EINVAL, "tr_spawn: link needs a spawning "
                            "actor");
            goto fail;
        }
        if ((rc = tr__rec_link(me->rec, rec)) != 0)
            goto fail;
        rec->parent = me->rec->id;
    }
    if (process) {
        rec->pid = -1; /* elsewhere from the start: senders use ipc */
        rec->hwm = opts->mailbox_hwm ? opts->mailbox_hwm
                                     : node->opts.mailbox_hwm;
    }
    if ((rc = s_register(node, rec)) != 0)
        goto fail;
    registered = true;
    if (process) {
        rc = tr__proc_start(node, rec, opts, args);
    } else if ((a = calloc(1, sizeof *a)) == NULL) {
        rc = TR_ENOMEM;
    } else {
        a->node = node;
        a->beh = beh;
        a->hwm = opts->mailbox_hwm ? opts->mailbox_hwm
                                   : node->opts.mailbox_hwm;
        a->args = args;
        a->rec = rec;
        rc = s_start_thread(node, a);
    }
    if (rc != 0)
        goto fail;
    rc = s_wait_init(rec);
    if (rc == 0) {
        TR__STAT_INC(node, spawned);
        if (id != NULL)
            *id = rec->id;
    }
    tr__rec_unref(&rec);
    tr_msg_destroy(&empty_args);
    return rc;
fail:
    if (registered) {
        atomic_store(&rec->dead, 1);
        tr__rec_finish(node, rec, rc, false);
    }
    if (rec != NULL && rec->parent != 0) {
        tr_actor_t *me = s_current_actor(node);
        if (me != NULL)
            tr__rec_unlink(me->rec, rec->id);
    }
    tr__rec_unref(&rec);
    free(a);
    tr_msg_destroy(&empty_args);
    return rc;
}

int
tr_spawn_n(tr_node_t *node, const char *behaviour, const tr_spawn_opts_t *opts,
           int n, tr_id_t *ids)
{
    if (n < 0 || (opts != NULL && opts->name != NULL))
        return TR_EINVAL;
    tr_id_t *got = calloc((size_t)n + 1, sizeof *got);
    if (got == NULL)
        return TR_ENOMEM;
    int rc = 0, i;
    for (i = 0; i < n; i++)
        if ((rc = tr_spawn(node, behaviour, opts, &got[i])) != 0)
            break;
    if (rc != 0) {
        while (i-- > 0)
            (void)tr_stop(node, got[i], TR_DEFAULT);
    } else if (ids != NULL) {
        memcpy(ids, got, (size_t)n * sizeof *ids);
    }
    free(got);
    return rc;
}

/* The calling thread's actor, when it is one of node's. */
static tr_actor_t *
s_current_actor(tr_node_t *node)
{
    tr__port_t *port;
    if (tr__port_get(node, &port) != 0)
        return NULL;
    return port->actor;
}

/* The checks tr_stop and tr_join share: not oneself, and the record of
 * id if it is registered (*rec NULL otherwise). */
static int
s_other(tr_node_t *node, tr_id_t id, int timeout_ms, tr__rec_t **rec)
{
    if (node == NULL || id == 0 || timeout_ms < TR_FOREVER)
        return TR_EINVAL;
    tr_actor_t *me = s_current_actor(node);
    if (me != NULL && me->rec->id == id)
        return TR_EPERM;
    *rec = tr__reg_get(&node->reg, id);
    return 0;
}

int
tr_stop(tr_node_t *node, tr_id_t id, int timeout_ms)
{
    tr__rec_t *rec = NULL;
    int rc = s_other(node, id, timeout_ms, &rec);
    if (rc != 0)
        return rc;
    if (rec == NULL || rec->kind != TR__REC_ACTOR) {
        tr__rec_unref(&rec);
        return TR_ENOENT;
    }
    tr__port_t *port;
    rc = tr__port_get(node, &port);
    if (rc == 0)
        rc = tr__port_send_sys(port, id, TR__SYS_STOP, TR_ESHUTDOWN, 0);
    if (rc == TR_ENOENT)
        rc = 0; /* ending already: wait for it all the same */
    if (rc == 0) {
        int ms = timeout_ms == TR_DEFAULT ? node->opts.shutdown_timeout_ms
                                          : timeout_ms;
        rc = tr__rec_wait_ended(rec, tr__deadline_after_ms(ms), NULL);
    }
    tr__rec_unref(&rec);
    return rc;
}

int
tr_join(tr_node_t *node, tr_id_t id, int timeout_ms, int *reason)
{
    tr__rec_t *rec = NULL;
    int rc = s_other(node, id, timeout_ms, &rec);
    if (rc != 0)
        return rc;
    if (rec == NULL)
        return tr__reg_grave(&node->reg, id, reason);
    rc = TR_ENOENT;
    if (rec->kind == TR__REC_ACTOR)
        rc = tr__rec_wait_ended(rec, tr__deadline_after_ms(timeout_ms),
                                reason);
    tr__rec_unref(&rec);
    return rc;
}

int
tr_kill(tr_node_t *node, tr_id_t id)
{
    tr__rec_t *rec = NULL;
    int rc = s_other(node, id, 0, &rec);
    if (rc != 0)
        return rc;
    if (rec == NULL || rec->kind != TR__REC_ACTOR ||
        atomic_load(&rec->dead)) {
        tr__rec_unref(&rec);
        return TR_ENOENT;
    }
    long pid = rec->pid;
    tr__rec_unref(&rec);
    if (pid != 0)
        return tr__proc_kill(node, id, TR_EKILLED);
    /* A thread cannot be ended from outside without leaving its locks and
     * memory in an unknown state: that is what process actors are for. */
    return tr__refuse(TR_ENOTSUP, "tr_kill: %llx is a thread actor (use "
                      "tr_stop)", (unsigned long long)id);
}
