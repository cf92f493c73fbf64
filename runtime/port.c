/* runtime/port.c - a thread's inbox, its sending sockets and the pumping
 * of replies and system messages (see port.h). */
#include "runtime/port.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "runtime/actor.h"
#include "runtime/future.h"
#include "runtime/process.h"
#include "runtime/remote.h"
#include "runtime/chaos.h"
#include "runtime/trace.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"

/* Sending sockets a thread keeps open. Past this, the least recently used
 * peer is retired: a SYNC goes down its mailbox connection, which is closed
 * only when the SYNCED comes back. Closing at once would let messages sent
 * on a new connection overtake those still queued on the old one. */
#define TR__PEERS_MAX 256

/* A blocked send wakes this often to see whether its target ended. */
#define TR__SEND_SLICE_MS 50
/* A full mailbox: first a blocking send this long, without the inbox. */
#define TR__SEND_BLOCK_MS 5

static pthread_key_t s_tls_key;
static pthread_once_t s_tls_once = PTHREAD_ONCE_INIT;
_Thread_local tr__port_t *tr__tls_ports
    __attribute__((tls_model("initial-exec"))); /* no __tls_get_addr */

static void s_tls_destructor(void *head);

static void
s_tls_key_make(void)
{
    pthread_key_create(&s_tls_key, s_tls_destructor);
}

void
tr__endpoint(char *buf, size_t cap, tr_id_t id, tr__box_t box)
{
    snprintf(buf, cap, "inproc://tr-%c-%llx", box == TR__BOX_INBOX ? 'i' : 'm',
             (unsigned long long)id);
}

/* Messages shown to a socket about to close (tr__msg_zmq_show) go back
 * when an empty receipt after them is done with (sent, or dropped at the
 * close); if even that cannot be queued (a full queue), ZeroMQ may read
 * them until its context ends, and the node keeps them till then. */
static void
s_peer_settle(tr__port_t *port, tr__peer_t *pe, int box)
{
    tr_msg_t *chain = pe->shown[box], *carrier;
    zmq_msg_t zm;
    pe->shown[box] = NULL;
    pe->nshown[box] = 0;
    if (chain == NULL)
        return;
    if (tr__msg_zmq_receipt(&zm, chain, &carrier) == 0) {
        if (zmq_msg_send(&zm, pe->sock[box], ZMQ_DONTWAIT) >= 0)
            return;
        tr__msg_zmq_abandon(carrier, &zm);
        carrier->chain = NULL;
        tr_msg_destroy(&carrier);
    }
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    tr_msg_t *last = pe->shown_last[box];
    pthread_mutex_lock(&node->mu);
    last->pool_next = node->shown_kept;
    node->shown_kept = chain;
    pthread_mutex_unlock(&node->mu);
}

static void
s_peer_free(tr__port_t *port, tr__peer_t *pe)
{
    /* Nothing queued toward an actor that ended will ever be read: do not
     * linger on it (an ipc peer would hold the close up). */
    int zero = 0;
    for (int i = 0; i < 2; i++)
        if (pe->sock[i] != NULL && atomic_load(&pe->rec->dead))
            zmq_setsockopt(pe->sock[i], ZMQ_LINGER, &zero, sizeof zero);
    for (int i = 0; i < 2; i++)
        if (pe->sock[i] != NULL)
            s_peer_settle(port, pe, i);
    tr__sock_close(&pe->sock[0]);
    tr__sock_close(&pe->sock[1]);
    tr__rec_unref(&pe->rec);
    free(pe);
}

/* Take id's peer out of the cache (it is the caller's then). */
static tr__peer_t *
s_peer_take(tr__port_t *port, tr_id_t id)
{
    tr__peer_t *pe = tr__map_del(&port->peers, id);
    if (pe != NULL && pe == port->hot)
        port->hot = NULL;
    return pe;
}

static void
s_peer_drop(tr__port_t *port, tr_id_t id)
{
    tr__peer_t *pe = s_peer_take(port, id);
    if (pe != NULL)
        s_peer_free(port, pe);
}

static void
s_tls_push(tr__port_t *port)
{
    pthread_once(&s_tls_once, s_tls_key_make);
    port->tls_next = tr__tls_ports;
    tr__tls_ports = port;
    pthread_setspecific(s_tls_key, tr__tls_ports);
}

static void
s_tls_remove(tr__port_t *port)
{
    for (tr__port_t **pp = &tr__tls_ports; *pp; pp = &(*pp)->tls_next) {
        if (*pp == port) {
            *pp = port->tls_next;
            port->tls_next = NULL;
            break;
        }
    }
    pthread_setspecific(s_tls_key, tr__tls_ports);
}

void
tr__port_expose(tr__port_t *port)
{
    char ep[TR__RUNDIR_MAX + 64];
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (port->exposed || node == NULL)
        return;
    if (tr__endpoint_ipc(node, ep, sizeof ep, port->rec->id, TR__BOX_INBOX) !=
            0 ||
        zmq_bind(port->inbox, ep) != 0) {
        TR__LOG(TR_LOG_ERROR, "runtime", "cannot bind an ipc inbox: %s",
                zmq_strerror(zmq_errno()));
        return;
    }
    port->exposed = true;
    if (port->rec->kind == TR__REC_PORT) /* an actor: once its mailbox is */
        atomic_store(&port->rec->exposed, true);
}

static int
s_port_new(tr_node_t *node, tr__rec_t *rec, tr__port_t **out)
{
    int rc;
    char ep[64];
    tr__port_t *port = calloc(1, sizeof *port);
    if (port == NULL)
        return TR_ENOMEM;
    atomic_init(&port->refs, 1);
    atomic_init(&port->node, node);
    pthread_mutex_init(&port->mu, NULL);
    port->thread = pthread_self();
    port->rec = rec;
    tr__map_init(&port->peers);
    tr__map_init(&port->retiring);
    tr__map_init(&port->futures);
    tr__map_init(&port->watching);
    tr__map_init(&port->monitoring);
    /* Replies and system messages must never wait: no high-water mark. */
    port->inbox_rcvtimeo = -1; /* ZeroMQ's default */
    port->inbox = tr__sock_open(node->zctx, ZMQ_PULL, 0, 0, &rc);
    if (port->inbox == NULL)
        goto fail;
    tr__endpoint(ep, sizeof ep, rec->id, TR__BOX_INBOX);
    if (zmq_bind(port->inbox, ep) != 0) {
        rc = tr__zerr(zmq_errno(), "bind inbox");
        goto fail;
    }
    if ((rc = tr__sock_fd(port->inbox, &port->inbox_fd)) != 0)
        goto fail;
    if (node->child)
        tr__port_expose(port); /* a child's peers are in other processes */
    *out = port;
    return 0;
fail:
    tr__sock_close(&port->inbox);
    pthread_mutex_destroy(&port->mu);
    free(port);
    return rc;
}

/* Every port of a node is on its list: node destroy closes them, and an
 * ending actor looks for senders caught mid-send (tr__ports_sending_to). */
static int
s_port_list(tr_node_t *node, tr__port_t *port)
{
    pthread_mutex_lock(&node->mu);
    int rc = tr__node_list_push((void ***)&node->ports, &node->nports,
                                &node->capports, port);
    if (rc == 0)
        atomic_fetch_add(&port->refs, 1); /* the node's reference */
    pthread_mutex_unlock(&node->mu);
    return rc;
}

int
tr__port_get_slow(tr_node_t *node, tr__port_t **out)
{
    if (node == NULL)
        return tr__refuse(TR_EINVAL, "NULL node");
    /* Drop ports of nodes destroyed meanwhile: a new node may reuse the
     * address of an old one, and its port must not be taken for ours. */
    for (tr__port_t **pp = &tr__tls_ports; *pp;) {
        tr__port_t *p = *pp;
        tr_node_t *pn = atomic_load_explicit(&p->node, memory_order_acquire);
        if (pn == node) {
            *out = p;
            return 0;
        }
        if (pn == NULL) {
            *pp = p->tls_next;
            pthread_setspecific(s_tls_key, tr__tls_ports);
            tr__port_unref(&p);
            continue;
        }
        pp = &p->tls_next;
    }
    if (atomic_load(&node->closing))
        return tr__refuse(TR_ECLOSED, "node '%s' is being destroyed",
                          node->name);
    if (node->child)
        /* Ids are the parent's to give: a new port here could take the
         * id, and so the ipc endpoint, of another actor. */
        return tr__refuse(TR_ENOTSUP, "in a process actor, only its own "
                          "thread can send");

    tr__rec_t *rec;
    tr__port_t *port;
    int rc = tr__rec_new(&rec, tr__node_new_id(node), TR__REC_PORT, NULL);
    if (rc != 0)
        return rc;
    if ((rc = s_port_new(node, rec, &port)) != 0) {
        tr__rec_unref(&rec);
        return rc;
    }
    if ((rc = tr__reg_add(&node->reg, rec)) != 0)
        goto fail;
    if ((rc = s_port_list(node, port)) != 0) {
        tr__reg_remove(&node->reg, rec, false, 0);
        goto fail;
    }
    s_tls_push(port);
    *out = port;
    return 0;
fail:
    tr__port_close(port);
    tr__port_unref(&port);
    return rc;
}

int
tr__port_open_actor(tr_node_t *node, tr__rec_t *rec, struct tr_actor *actor,
                    tr__port_t **out)
{
    tr__rec_ref(rec);
    tr__port_t *port;
    int rc = s_port_new(node, rec, &port);
    if (rc != 0) {
        tr__rec_unref(&rec);
        return rc;
    }
    port->actor = actor;
    if ((rc = s_port_list(node, port)) != 0) {
        tr__port_close(port);
        tr__port_unref(&port);
        return rc;
    }
    s_tls_push(port);
    *out = port;
    return 0;
}

void
tr__port_close(tr__port_t *port)
{
    pthread_mutex_lock(&port->mu);
    tr_node_t *node = atomic_load(&port->node);
    if (port->closed || node == NULL) {
        pthread_mutex_unlock(&port->mu);
        return;
    }
    port->closed = true;

    /* Pending asks of this thread can no longer be answered. */
    size_t n = port->futures.len, i = 0;
    tr_future_t **pending = n ? calloc(n, sizeof *pending) : NULL;
    TR__MAP_EACH(&port->futures, slot)
    {
        if (pending != NULL)
            pending[i++] = slot->val;
    }
    for (size_t k = 0; k < i; k++)
        tr__future_settle(pending[k], TR_ECANCELED, NULL);
    free(pending);
    tr__map_free(&port->futures);

    port->hot = NULL;
    TR__MAP_EACH(&port->peers, slot)
    {
        s_peer_free(port, slot->val);
    }
    tr__map_free(&port->peers);
    TR__MAP_EACH(&port->retiring, slot)
    {
        s_peer_free(port, slot->val);
    }
    tr__map_free(&port->retiring);
    tr__map_free(&port->watching);
    tr__map_free(&port->monitoring);
    /* What is still queued is dropped; closing the socket would drop it
     * too, but a message handed over (tr__msg_zmq_hand) must go back to
     * its pool. An actor's record is dead already, and its senders were
     * waited for when its mailbox was drained. */
    bool thread = port->rec->kind == TR__REC_PORT;
    if (thread)
        atomic_store(&port->rec->dead, 1);
    (void)tr__port_drain(node, port->rec, port->inbox, thread);
    tr__sock_close(&port->inbox);

    if (thread)
        tr__reg_remove(&node->reg, port->rec, false, 0);
    /* Unlisting may race with node destroy, which steals the list first;
     * then it is simply not found. */
    pthread_mutex_lock(&node->mu);
    bool listed = tr__node_list_remove((void **)node->ports, &node->nports,
                                       port);
    pthread_mutex_unlock(&node->mu);
    if (listed)
        atomic_fetch_sub(&port->refs, 1); /* cannot be the last */
    atomic_store_explicit(&port->node, NULL, memory_order_release);
    pthread_mutex_unlock(&port->mu);
}

void
tr__port_unref(tr__port_t **portp)
{
    tr__port_t *port = *portp;
    if (port == NULL)
        return;
    *portp = NULL;
    if (atomic_fetch_sub_explicit(&port->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (tr_future_t *f = port->free_futures, *next; f; f = next) {
        next = f->next_free;
        free(f);
    }
    free(port->callbacks);
    free(port->timed);
    tr__rec_unref(&port->rec);
    pthread_mutex_destroy(&port->mu);
    free(port);
}

/* Thread exit: close the thread's ports (not actor ports: actor threads
 * close theirs before they return, and leave the list empty). */
static void
s_tls_destructor(void *head)
{
    for (tr__port_t *p = head, *next; p != NULL; p = next) {
        next = p->tls_next;
        tr__port_close(p);
        tr__port_unref(&p);
    }
    tr__tls_ports = NULL;
}

void
tr__port_forget(tr__port_t *port)
{
    s_tls_remove(port);
}

bool
tr__port_stopping(const tr__port_t *port)
{
    return port->actor != NULL && port->actor->stopping &&
           !port->actor->in_terminate;
}

/* Retiring peers whose actor ended will never answer SYNC: let go. */
static void
s_retiring_reap(tr__port_t *port)
{
    tr_id_t dead[16];
    size_t n = 0;
    TR__MAP_EACH(&port->retiring, slot)
    {
        tr__peer_t *p = slot->val;
        if (n < 16 && atomic_load(&p->rec->dead))
            dead[n++] = slot->key;
    }
    for (size_t i = 0; i < n; i++)
        s_peer_free(port, tr__map_del(&port->retiring, dead[i]));
}

/* Make room in the cache: retire the least recently used peer. A peer
 * whose mailbox is full cannot take the SYNC now: it stays, and the cache
 * is over its size until the next try. */
static void
s_peer_evict(tr__port_t *port)
{
    s_retiring_reap(port);
    tr_id_t oldest = 0;
    uint64_t best = UINT64_MAX;
    TR__MAP_EACH(&port->peers, slot)
    {
        tr__peer_t *p = slot->val;
        if (p->used < best) {
            best = p->used;
            oldest = slot->key;
        }
    }
    tr__peer_t *pe = tr__map_get(&port->peers, oldest);
    if (pe == NULL)
        return;
    if (pe->sock[TR__BOX_MAILBOX] == NULL) { /* nothing to keep in order */
        s_peer_drop(port, oldest);
        return;
    }
    uint64_t token = ++port->next_token;
    int rc = tr__port_send_sys(port, oldest, TR__SYS_SYNC, (int64_t)token, 0);
    if (rc == TR_EAGAIN)
        return;
    pe = s_peer_take(port, oldest);
    if (pe == NULL)
        return; /* the send found it dead and dropped it */
    if (rc != 0 || tr__map_put(&port->retiring, oldest, pe) != 0) {
        s_peer_free(port, pe);
        return;
    }
    pe->token = token;
}

/* Let go of cached peers whose actor has ended (their sockets, and for
 * an ipc peer its reconnect attempts), but not the one touched last: a
 * caller may still hold its record (see tr__port_peer). */
static void
s_peers_sweep(tr__port_t *port)
{
    tr_id_t dead[32];
    size_t n;
    do {
        n = 0;
        TR__MAP_EACH(&port->peers, slot)
        {
            tr__peer_t *p = slot->val;
            if (n < 32 && p->used != port->tick &&
                atomic_load_explicit(&p->rec->dead, memory_order_relaxed))
                dead[n++] = slot->key;
        }
        for (size_t i = 0; i < n; i++)
            s_peer_drop(port, dead[i]);
    } while (n == 32);
    if (port->retiring.len > 0)
        s_retiring_reap(port);
}

/* Where a message for id goes: to id itself, or, for an actor of another
 * node, to this node's gateway (runtime/remote.c). */
static inline tr_id_t
s_via(const tr__port_t *port, tr_id_t id)
{
    const tr_node_t *node =
        atomic_load_explicit(&port->node, memory_order_relaxed);
    return node->gw != 0 && (id >> TR__TAG_SHIFT) != node->tag ? node->gw
                                                                : id;
}

/* The cached peer for id, or a new one; TR_ENOENT if id is not (or no
 * longer) running. */
static int
s_peer_get(tr__port_t *port, tr_id_t id, tr__peer_t **out)
{
    tr__peer_t *pe = tr__map_get(&port->peers, id);
    if (pe == NULL && port->retiring.len > 0 &&
        (pe = tr__map_del(&port->retiring, id)) != NULL) {
        /* Needed again before its SYNCED came: keep the connection (and
         * so the order); the SYNCED's token will no longer match. */
        pe->token = 0;
        if (tr__map_put(&port->peers, id, pe) != 0) {
            s_peer_free(port, pe);
            return TR_ENOMEM;
        }
    }
    if (pe != NULL) {
        if (atomic_load_explicit(&pe->rec->dead, memory_order_relaxed)) {
            s_peer_drop(port, id);
            return TR_ENOENT;
        }
        pe->used = ++port->tick;
        *out = pe;
        return 0;
    }
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    tr__rec_t *rec = tr__reg_get(&node->reg, id);
    if (rec == NULL && node->child) {
        port->keep_peers++; /* the lookup waits on our inbox */
        if (tr__child_lookup(node, port, id, NULL, &rec) != 0)
            rec = NULL;
        port->keep_peers--;
    }
    if (rec == NULL)
        return TR_ENOENT;
    if (atomic_load(&rec->dead)) {
        tr__rec_unref(&rec);
        return TR_ENOENT;
    }
    s_peers_sweep(port); /* a new peer: a good time to drop the dead */
    if (port->peers.len >= TR__PEERS_MAX)
        s_peer_evict(port);
    pe = calloc(1, sizeof *pe);
    if (pe == NULL || tr__map_put(&port->peers, id, pe) != 0) {
        free(pe);
        tr__rec_unref(&rec);
        return TR_ENOMEM;
    }
    pe->rec = rec;
    pe->used = ++port->tick;
    *out = pe;
    return 0;
}

int
tr__port_peer(tr__port_t *port, tr_id_t id, tr__rec_t **rec)
{
    tr__peer_t *pe;
    int rc = s_peer_get(port, s_via(port, id), &pe);
    if (rc == 0)
        *rec = pe->rec;
    return rc;
}

static int
s_peer_sock(tr__port_t *port, tr__peer_t *pe, tr__box_t box, void **out)
{
    if (pe->sock[box] != NULL) {
        *out = pe->sock[box];
        return 0;
    }
    if (box == TR__BOX_MAILBOX && pe->rec->kind != TR__REC_ACTOR)
        return TR_ENOENT; /* a plain thread has no mailbox */
    int rc;
    char ep[TR__RUNDIR_MAX + 64];
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    bool remote = pe->rec->pid != 0;
    /* inproc adds the sender's SNDHWM to the receiver's RCVHWM, and 0
     * means unbounded: 1 keeps the mailbox's own bound (almost) exact.
     * Over ipc the sender's queue is separate and must hold a stream. */
    int sndhwm = box == TR__BOX_MAILBOX
                     ? (remote ? (pe->rec->hwm ? pe->rec->hwm
                                               : node->opts.mailbox_hwm)
                               : 1)
                     : 0;
    void *s = tr__sock_open(node->zctx, ZMQ_PUSH, sndhwm, 0, &rc);
    if (s == NULL)
        return rc;
    if (remote) {
        /* The answer comes back over ipc: be reachable first. A peer
         * that binds only when asked (EXPOSE) is picked up quickly. */
        int ivl = 10, ivl_max = 1000;
        tr__port_expose(port);
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        /* ... and one whose process is gone is tried ever less often (the
         * peer goes at the next sweep or DOWN). */
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
        rc = tr__endpoint_ipc(node, ep, sizeof ep, pe->rec->id, box);
    } else {
        tr__endpoint(ep, sizeof ep, pe->rec->id, box);
    }
    if (rc != 0 || zmq_connect(s, ep) != 0) {
        rc = rc ? rc : tr__zerr(zmq_errno(), "connect");
        tr__sock_close(&s);
        return rc;
    }
    pe->sock[box] = s;
    /* A reader in this process that reads views: messages are handed
     * over (tr__msg_zmq_hand); over ipc they are shown, and lent as
     * receipts (tr__msg_zmq_show). */
    pe->hand = !remote && !pe->rec->raw_reader;
    pe->show = remote && !pe->rec->raw_reader;
    *out = s;
    return 0;
}

/* A full mailbox: wait for room until deadline, reading our own inbox
 * meanwhile (replies keep flowing, a stop request is seen), and giving up
 * when the target ends. Rare, so zmq_poll's cost does not matter here. */
static int
s_send_wait(tr__port_t *port, tr__rec_t *rec, void *sock, zmq_msg_t *zm,
            int flags, uint64_t deadline_ns)
{
    /* First ZeroMQ's own blocking send, for a short slice: one poll(2),
     * where a round of zmq_poll makes several (profiled: a stream into a
     * full mailbox stalls often, and each stall cost about seven system
     * calls). The inbox waits meanwhile, TR__SEND_BLOCK_MS at most. */
    int64_t first = tr__ms_left(deadline_ns);
    if (first != 0 && !atomic_load(&rec->dead) && !tr__port_stopping(port)) {
        int ms = (first < 0 || first > TR__SEND_BLOCK_MS) ? TR__SEND_BLOCK_MS
                                                          : (int)first;
        if (zmq_setsockopt(sock, ZMQ_SNDTIMEO, &ms, sizeof ms) == 0) {
            int rc = tr__zmsg_send(zm, sock, flags & ~ZMQ_DONTWAIT);
            if (rc != TR_EAGAIN)
                return rc;
        }
    }
    for (;;) {
        if (atomic_load(&rec->dead))
            return TR_ENOENT;
        if (tr__port_stopping(port))
            return TR_ECANCELED;
        int64_t left = tr__ms_left(deadline_ns);
        if (left == 0)
            return TR_ETIMEDOUT;
        int slice = (left < 0 || left > TR__SEND_SLICE_MS) ? TR__SEND_SLICE_MS
                                                           : (int)left;
        zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLOUT, 0},
                                   {port->inbox, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, slice) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return tr__zerr(zmq_errno(), "zmq_poll");
        }
        if (items[1].revents & ZMQ_POLLIN) {
            port->inbox_drained = false; /* zmq_poll saw something */
            port->keep_peers++;
            int rc = tr__port_pump(port, 0, NULL);
            port->keep_peers--;
            if (rc < 0)
                return rc;
        }
        if (items[0].revents & ZMQ_POLLOUT) {
            int rc = tr__zmsg_send(zm, sock, flags);
            if (rc != TR_EAGAIN)
                return rc;
        }
    }
}

/* "No message vanishes" (docs/design.md): a sender announces a send,
 * then checks that the target is alive; an ending actor marks itself dead,
 * then waits for announced sends to finish while it drains. With
 * membarrier(2) the sender's side is plain stores and loads, and the
 * ending actor (rare) pays the barrier for everyone; without it, an atomic
 * counter on the target does the same at two locked instructions a send.
 * Returns true when the target is dead. */
static inline bool
s_announce(tr_node_t *node, tr__port_t *port, tr__rec_t *rec, tr_id_t to)
{
    if (node->fast_fence) {
        atomic_store_explicit(&port->sending_to, to, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the compiler's part */
        return atomic_load_explicit(&rec->dead, memory_order_relaxed);
    }
    atomic_fetch_add(&rec->inflight, 1);
    return atomic_load(&rec->dead);
}

static inline void
s_retract(tr_node_t *node, tr__port_t *port, tr__rec_t *rec)
{
    if (node->fast_fence)
        atomic_store_explicit(&port->sending_to, 0, memory_order_release);
    else
        atomic_fetch_sub(&rec->inflight, 1);
}

bool
tr__ports_sending_to(tr_node_t *node, tr__rec_t *rec)
{
    if (!node->fast_fence)
        return atomic_load(&rec->inflight) != 0;
    bool any = false;
    pthread_mutex_lock(&node->mu);
    for (size_t i = 0; i < node->nports && !any; i++)
        any = atomic_load_explicit(&node->ports[i]->sending_to,
                                   memory_order_acquire) == rec->id;
    pthread_mutex_unlock(&node->mu);
    return any;
}

/* Sends that saw the dead record alive are waited for this many yields
 * at most. */
#define S_DRAIN_SPIN 100000

static long
s_drain_once(void *sock, tr_msg_t *view)
{
    long n = 0;
    int rc;
    while ((rc = tr__msg_view_recv(view, sock, false)) == 0 ||
           rc == TR_EPROTO || rc == TR_EVERSION)
        if (rc != 0 || !(view->env.flags & TR__F_SYSTEM)) /* not a SYNC */
            n++;
    return n;
}

long
tr__port_drain(tr_node_t *node, tr__rec_t *rec, void *sock, bool fence)
{
    tr_msg_t view;
    tr__msg_view_open(&view);
    long n = 0;
    if (fence && node->fast_fence)
        tr__node_barrier(); /* pairs with every sender's announce */
    for (long spin = 0; fence; spin++) {
        n += s_drain_once(sock, &view);
        if (!tr__ports_sending_to(node, rec) || spin > S_DRAIN_SPIN)
            break;
        sched_yield();
    }
    /* A sender that finished just now: one last look. */
    n += s_drain_once(sock, &view);
    tr__msg_view_close(&view);
    return n;
}

/* What a trace records of a send (user messages and answers), taken
 * before ZeroMQ has the message. */
typedef struct s_trace_note {
    uint32_t size;
    char tag[32];
} s_trace_note_t;

static void
s_trace_note(const tr_msg_t *msg, s_trace_note_t *t)
{
    size_t len = 0, i = 0;
    (void)tr_msg_payload(msg, &len);
    t->size = (uint32_t)len;
    /* A loop: tags are short, and a variable-length memcpy became `rep
     * movsb`, whose start-up was 8% of a traced tell stream (perf). */
    const char *tag = tr_msg_tag(msg);
    for (; i < sizeof t->tag - 1 && i < msg->taglen; i++)
        t->tag[i] = tag[i];
    t->tag[i] = '\0';
}

/* What a send ZeroMQ took counts: toward the target's mailbox (for the
 * control endpoint), and this thread's user messages and answers out
 * (only this thread writes that one). */
static inline void
s_count_sent(tr__port_t *port, tr__rec_t *rec, tr__box_t box, bool user)
{
    if (box == TR__BOX_MAILBOX)
        atomic_fetch_add_explicit(&rec->sent_to, 1, memory_order_relaxed);
    if (user) {
        tr__rec_t *me = port->rec;
        atomic_store_explicit(
            &me->out, atomic_load_explicit(&me->out, memory_order_relaxed) + 1,
            memory_order_relaxed);
    }
}

/* How a message goes to a peer (see s_frame). */
typedef enum { S_LENT, S_HANDED, S_SHOWN } s_how_t;

/* Over ipc, every this many messages to one socket is lent as a receipt
 * for the ones shown before it. */
#define S_RECEIPT_EVERY 32

/* The frame that carries msg to pe's box socket: the message itself
 * handed over to a reader in this process; over ipc shown, or lent as a
 * receipt for those shown before (a message with a heap buffer always
 * is: a large one is not kept waiting for later ones); else lent. After
 * the send, s_framed (sent) or s_unframed (not sent). */
static inline int
s_frame(const tr__peer_t *pe, tr__box_t box, tr_msg_t *msg, zmq_msg_t *zm,
        s_how_t *how)
{
    if (pe->hand) {
        *how = S_HANDED;
        if (msg->open)
            tr__msg_zmq_hand_open(msg, zm);
        else
            tr__msg_zmq_hand(msg, zm);
        return 0;
    }
    msg->open_word = 0; /* not handed: nothing can be appended */
    if (pe->show && !msg->heap && pe->nshown[box] < S_RECEIPT_EVERY - 1) {
        *how = S_SHOWN;
        tr__msg_zmq_show(msg, zm);
        return 0;
    }
    *how = S_LENT;
    msg->chain = pe->show ? pe->shown[box] : NULL;
    if (msg->chain != NULL) {
        msg->chain_last = pe->shown_last[box];
        msg->chain_mixed = pe->shown_mixed[box];
    }
    int rc = tr__msg_zmq_lend(msg, zm);
    if (rc != 0)
        msg->chain = NULL;
    return rc;
}

/* msg went (the caller forgets it): a shown one is kept on the chain; a
 * receipt took the chain. */
static inline void
s_framed(tr__peer_t *pe, tr__box_t box, tr_msg_t *msg, s_how_t how)
{
    if (how == S_SHOWN) {
        tr_msg_t *prev = pe->shown[box];
        msg->pool_next = prev;
        if (prev == NULL) {
            pe->shown_last[box] = msg;
            pe->shown_mixed[box] = false;
        } else if (msg->pool != prev->pool) {
            pe->shown_mixed[box] = true;
        }
        pe->shown[box] = msg;
        pe->nshown[box]++;
    } else if (how == S_LENT && pe->show) { /* msg may be gone already */
        pe->shown[box] = NULL;
        pe->nshown[box] = 0;
    }
}

/* msg did not go: it is the caller's again. */
static inline void
s_unframed(tr_msg_t *msg, zmq_msg_t *zm, s_how_t how)
{
    if (how == S_LENT) {
        tr__msg_zmq_abandon(msg, zm);
        msg->chain = NULL;
    } else {
        zmq_msg_close(zm); /* a handed or shown frame holds nothing */
    }
}

/* s_send's usual case, a message to the actor the last one went to, with
 * no chaos: the peer, its socket and the size checks are known good.
 * Profiled (callgrind, a tell stream between two process actors), this
 * is half the instructions of the general path. Nonzero: nothing was
 * sent, and the general path is to find out why (an ended actor, a full
 * mailbox) and wait, retry or fail as it does. */
static inline int
s_send_hot(tr__port_t *port, tr_node_t *node, tr_id_t to, tr_msg_t *msg,
           int flags)
{
    tr__peer_t *pe = port->hot;
    tr__rec_t *rec = pe->rec;
    bool user = !(msg->env.flags & TR__F_SYSTEM); /* msg is gone after */
    bool traced = node->trace != NULL && user;
    s_trace_note_t note;
    if (traced)
        s_trace_note(msg, &note);
    msg->env.sender = port->rec->id;
    msg->env.target = to;
    zmq_msg_t zm;
    s_how_t how;
    if (s_frame(pe, TR__BOX_MAILBOX, msg, &zm, &how) != 0)
        return TR_ENOMEM;
    int rc = s_announce(node, port, rec, to)
                 ? -1
                 : zmq_msg_send(&zm, pe->sock[TR__BOX_MAILBOX], flags);
    s_retract(node, port, rec);
    if (rc < 0) {
        s_unframed(msg, &zm, how);
        return TR_EAGAIN;
    }
    s_framed(pe, TR__BOX_MAILBOX, msg, how);
    pe->used = ++port->tick;
    if (traced)
        tr__trace_add(node->trace, TR__TRACE_SEND, port->rec->id, to,
                      note.size, note.tag);
    s_count_sent(port, rec, TR__BOX_MAILBOX, user);
    return 0;
}

static int
s_send(tr__port_t *port, tr_id_t to, tr_msg_t **msgp, tr__box_t box,
       const tr__wait_t *wait, int flags)
{
    if (port->closed)
        return TR_ECLOSED;
    tr__peer_t *pe;
    void *sock = NULL;
    tr_id_t via = s_via(port, to);
    int rc = s_peer_get(port, via, &pe);
    if (rc != 0)
        return rc;
    if ((rc = s_peer_sock(port, pe, box, &sock)) != 0)
        return rc;

    tr_msg_t *msg = *msgp;
    tr_node_t *lim = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (msg->len > (size_t)lim->opts.max_message_bytes) {
        TR__STAT_INC(lim, oversize);
        return tr__refuse(TR_EMSGSIZE, "message '%s' of %zu bytes: the node "
                          "allows %d", tr_msg_tag(msg), msg->len,
                          lim->opts.max_message_bytes);
    }
    msg->env.sender = port->rec->id;
    msg->env.target = to;
    zmq_msg_t zm;
    s_how_t how;
    if ((rc = s_frame(pe, box, msg, &zm, &how)) != 0)
        return rc;

    /* The peer (and its record) stays cached while we wait: only this
     * thread drops peers, and waiting does not. */
    tr__rec_t *rec = pe->rec;
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    s_trace_note_t note;
    bool user = !(msg->env.flags & TR__F_SYSTEM);
    bool traced = node->trace != NULL && user;
    /* Chaos (runtime/chaos.c): a user message may wait, or go twice. */
    tr_msg_t *twice = NULL;
    if (node->chaos != NULL && box == TR__BOX_MAILBOX &&
        !(msg->env.flags & TR__F_SYSTEM) &&
        tr__chaos_on_send(node->chaos, port->rec->id))
        (void)tr_msg_dup(msg, &twice);
    if (traced)
        s_trace_note(msg, &note);
    if (s_announce(node, port, rec, via)) {
        rc = TR_ENOENT;
    } else {
        rc = tr__zmsg_send(&zm, sock, flags);
        if (rc == TR_EAGAIN && wait != TR__NOWAIT) {
            uint64_t until = tr__deadline_min(
                tr__deadline_after_ms(wait->timeout_ms), wait->cap_ns);
            rc = s_send_wait(port, rec, sock, &zm, flags, until);
        }
    }
    s_retract(node, port, rec);
    if (rc == 0) {
        *msgp = NULL; /* ZeroMQ has it now, and gives it back when done */
        s_framed(pe, box, msg, how);
        if (traced)
            tr__trace_add(node->trace, TR__TRACE_SEND, port->rec->id, to,
                          note.size, note.tag);
        s_count_sent(port, rec, box, user);
        if (box == TR__BOX_MAILBOX && via == to) {
            /* not through a gateway: the next send may be hot */
            port->hot = pe;
            port->hot_to = to;
        }
        /* Last: this send may find the target dead and free pe (and
         * rec with it), clearing hot if it was pe. */
        if (twice != NULL) {
            tr__chaos_inside(true);
            (void)s_send(port, to, &twice, box, TR__NOWAIT, flags);
            tr__chaos_inside(false);
            tr_msg_destroy(&twice);
        }
        return 0;
    }
    tr_msg_destroy(&twice);
    s_unframed(msg, &zm, how);
    if (rc == TR_ENOENT)
        s_peer_drop(port, via);
    return rc;
}

int
tr__port_send(tr__port_t *port, tr_id_t to, tr_msg_t **msgp, tr__box_t box,
              const tr__wait_t *wait)
{
    if (box == TR__BOX_MAILBOX && port->hot != NULL && to == port->hot_to &&
        !port->closed) {
        tr_node_t *node = atomic_load_explicit(&port->node,
                                               memory_order_relaxed);
        if (node->chaos == NULL &&
            (*msgp)->len <= (size_t)node->opts.max_message_bytes &&
            s_send_hot(port, node, to, *msgp, ZMQ_DONTWAIT) == 0) {
            *msgp = NULL;
            return 0;
        }
    }
    return s_send(port, to, msgp, box, wait, ZMQ_DONTWAIT);
}

int
tr__port_forward(tr__port_t *port, zmq_msg_t *zm, tr_id_t to, tr__box_t box)
{
    if (port->closed)
        return TR_ECLOSED;
    tr__peer_t *pe;
    void *sock = NULL;
    int rc = s_peer_get(port, to, &pe);
    if (rc != 0 || (rc = s_peer_sock(port, pe, box, &sock)) != 0)
        return rc;
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    tr__rec_t *rec = pe->rec;
    rc = s_announce(node, port, rec, to) ? TR_ENOENT
                                         : tr__zmsg_send(zm, sock,
                                                         ZMQ_DONTWAIT);
    s_retract(node, port, rec);
    if (rc == 0)
        s_count_sent(port, rec, box, false); /* not this thread's own */
    if (rc == TR_ENOENT)
        s_peer_drop(port, to);
    return rc;
}

int
tr__port_send_part(tr__port_t *port, tr_id_t to, tr_msg_t **msgp, bool more)
{
    return s_send(port, to, msgp, TR__BOX_INBOX, TR__NOWAIT,
                  ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
}

int
tr__batch_begin(tr_msg_t **batch)
{
    int rc = tr__msg_create_sys(batch, "$batch");
    if (rc == 0) {
        (*batch)->env.flags = TR__F_BATCH;
        (*batch)->env.code = 0; /* how many */
    }
    return rc;
}

uint8_t *
tr__batch_room(tr_msg_t *batch, size_t len)
{
    uint8_t *p;
    if (len > UINT32_MAX - 4 || (p = tr__msg_append(batch, 4 + len)) == NULL)
        return NULL;
    tr__put32(p, (uint32_t)len);
    batch->env.code++;
    return p + 4;
}

/* The next reply of a batch's payload (*p, *left move past it) as a sub
 * view: 1 when there is none left, TR_EPROTO when what is left is not a
 * length and a reply frame. */
static int
s_batch_next(const uint8_t **p, size_t *left, tr_msg_t *sub)
{
    size_t len;
    if (*left == 0)
        return 1;
    if (*left < 4 || (len = tr__get32(*p)) > *left - 4 ||
        tr__msg_sub_view(sub, *p + 4, len) != 0 ||
        (sub->env.flags & (TR__F_REPLY | TR__F_BATCH)) != TR__F_REPLY)
        return TR_EPROTO;
    *p += 4 + len;
    *left -= 4 + len;
    return 0;
}

/* Each reply of a batch sent alone (for a reader that knows no batches). */
static int
s_send_unbatched(tr__port_t *port, tr_id_t to, const tr_msg_t *batch)
{
    size_t left = 0;
    const uint8_t *p = tr_msg_payload(batch, &left);
    tr_msg_t sub;
    int rc;
    while ((rc = s_batch_next(&p, &left, &sub)) == 0) {
        tr_msg_t *copy = NULL;
        if ((rc = tr_msg_dup(&sub, &copy)) != 0 ||
            (rc = tr__port_send_part(port, to, &copy, left > 0)) != 0) {
            tr_msg_destroy(&copy);
            return rc;
        }
    }
    return rc == 1 ? 0 : rc;
}

int
tr__port_send_batch(tr__port_t *port, tr_id_t to, tr_msg_t **batch)
{
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (node == NULL)
        return TR_ECLOSED;
    if ((*batch)->env.code > 1 && s_via(port, to) == to &&
        node->trace == NULL && node->chaos == NULL)
        return tr__port_send(port, to, batch, TR__BOX_INBOX, TR__NOWAIT);
    int rc = s_send_unbatched(port, to, *batch);
    if (rc == 0)
        tr_msg_destroy(batch);
    return rc;
}

int
tr__port_send_sys(tr__port_t *port, tr_id_t to, int kind, int64_t a,
                  int64_t b)
{
    static const char *const tags[] = {"$sys",    "$stop",  "$down",
                                       "$sync",   "$synced", "$exit",
                                       "$expose", "$ping",  "$pong",
                                       "$rmon"};
    tr_msg_t *msg;
    int rc = tr__msg_create_sys(
        &msg, kind > 0 && kind <= TR__SYS_RMON ? tags[kind] : tags[0]);
    if (rc != 0)
        return rc;
    msg->env.flags = TR__F_SYSTEM;
    msg->env.code = kind;
    if ((rc = tr_msg_add_int(msg, a)) == 0 &&
        (rc = tr_msg_add_int(msg, b)) == 0)
        rc = tr__port_send(port, to, &msg,
                           kind == TR__SYS_SYNC ? TR__BOX_MAILBOX
                                                : TR__BOX_INBOX,
                           TR__NOWAIT);
    tr_msg_destroy(&msg);
    return rc;
}

int
tr__port_watch(tr__port_t *port, tr__rec_t *target, tr_id_t id)
{
    if (id != target->id) {
        /* On another node. A DOWN of an earlier watch may be waiting
         * here (its node went away and came back): take it first, or it
         * would settle what is asked now. */
        port->keep_peers++;
        (void)tr__port_pump(port, 0, NULL);
        port->keep_peers--;
    }
    if (tr__map_get(&port->watching, id) != NULL)
        return 0;
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (id != target->id) { /* on another node: its gateway tells */
        int rc = tr__remote_watch(port, id);
        if (rc == 0)
            rc = tr__map_put(&port->watching, id, (void *)1);
        return rc;
    }
    if (node->child && target->pid != 0) {
        /* Its end is known where it lives: ask for the DOWN there. */
        int rc = tr__child_watch(node, port, target->id);
        if (rc == 0)
            rc = tr__map_put(&port->watching, target->id, (void *)1);
        return rc;
    }
    int rc = tr__rec_monitor(target, port->rec->id);
    if (rc == 0 && (rc = tr__map_put(&port->watching, target->id,
                                     (void *)1)) != 0) {
        /* The DOWN will still come and find nothing to do. */
        rc = 0;
    }
    return rc;
}

/* A watched actor ended: fail every ask still waiting on it, and tell the
 * actor if it monitors it. */
static void
s_on_down(tr__port_t *port, tr_id_t id, int reason)
{
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (node != NULL && node->child) {
        /* A child's record of a remote actor: gone with it. */
        tr__rec_t *rec = tr__reg_get(&node->reg, id);
        if (rec != NULL && rec->pid != 0) {
            atomic_store(&rec->dead, 1);
            tr__reg_remove(&node->reg, rec, false, 0);
        }
        tr__rec_unref(&rec);
    }
    tr__map_del(&port->watching, id);
    if (port->keep_peers == 0) { /* its sockets are of no more use */
        s_peer_drop(port, id);
        tr__peer_t *pe = tr__map_del(&port->retiring, id);
        if (pe != NULL)
            s_peer_free(port, pe);
    }
    if (tr__map_del(&port->monitoring, id) != NULL && port->actor != NULL)
        tr__actor_on_down(port->actor, id, reason);
    size_t n = 0;
    tr_future_t *dead[64];
    do {
        n = 0;
        TR__MAP_EACH(&port->futures, slot)
        {
            tr_future_t *f = slot->val;
            if (f->target == id && n < sizeof dead / sizeof dead[0])
                dead[n++] = f;
        }
        for (size_t i = 0; i < n; i++) {
            dead[i]->exit_reason = reason;
            tr__future_settle(dead[i], TR_EDEAD, NULL);
        }
    } while (n == sizeof dead / sizeof dead[0]);
}

static void
s_on_reply(tr__port_t *port, tr_msg_t *view)
{
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (node->trace != NULL) {
        size_t len = 0;
        (void)tr_msg_payload(view, &len);
        tr__trace_add(node->trace, TR__TRACE_RECV, port->rec->id,
                      view->env.sender, (uint32_t)len, tr_msg_tag(view));
    }
    tr_future_t *f = tr__map_get(&port->futures, view->env.corr);
    if (f == NULL) {
        TR__STAT_INC(node, late_replies);
        TR__LOG(TR_LOG_DEBUG, "runtime", "late reply '%s' from %llx dropped",
                tr_msg_tag(view), (unsigned long long)view->env.sender);
        return;
    }
    if (view->env.flags & TR__F_ERROR) {
        tr_reader_t r; /* an exit reason may come with the code */
        int64_t reason = 0;
        tr_reader_init(&r, view);
        if (tr_read_int(&r, &reason) == 0 && reason >= INT32_MIN &&
            reason <= 0)
            f->exit_reason = (int)reason;
        tr__future_settle(f, view->env.code < 0 ? view->env.code : TR_EFAILED,
                          NULL);
        return;
    }
    tr_msg_t *reply;
    if (tr__msg_adopt(view, &reply) != 0)
        tr__future_settle(f, TR_ENOMEM, NULL);
    else
        tr__future_settle(f, 0, reply);
}

/* A batch of replies (tr__port_send_batch): each handled as if alone. */
static void
s_on_batch(tr__port_t *port, const tr_msg_t *view)
{
    size_t left = 0;
    const uint8_t *p = tr_msg_payload(view, &left);
    tr_msg_t sub;
    int rc = view->env.flags == TR__F_BATCH ? 0 : TR_EPROTO;
    while (rc == 0 && (rc = s_batch_next(&p, &left, &sub)) == 0)
        s_on_reply(port, &sub);
    if (rc < 0) {
        tr_node_t *node =
            atomic_load_explicit(&port->node, memory_order_relaxed);
        TR__STAT_INC(node, bad_frames);
        TR__LOG(TR_LOG_WARN, "runtime", "malformed batch from %llx: the "
                "rest of it dropped", (unsigned long long)view->env.sender);
    }
}

/* DOWNs wait until the inbox has been read dry, so that a reply sent just
 * before its sender ended is taken before the DOWN fails the ask. */
typedef struct s_down {
    tr_id_t id;
    int reason;
} s_down_t;

static void
s_on_system(tr__port_t *port, tr_msg_t *view, s_down_t *downs, size_t *ndowns,
            size_t maxdowns)
{
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    tr_reader_t r;
    int64_t a = 0, b = 0;
    tr_reader_init(&r, view);
    if (tr_read_int(&r, &a) != 0 || tr_read_int(&r, &b) != 0)
        goto bad;
    switch (view->env.code) {
    case TR__SYS_STOP:
        if (port->actor == NULL)
            goto bad;
        tr__actor_on_stop(port->actor, (int)a);
        return;
    case TR__SYS_DOWN:
        if (*ndowns < maxdowns)
            downs[(*ndowns)++] = (s_down_t){(tr_id_t)a, (int)b};
        else
            s_on_down(port, (tr_id_t)a, (int)b);
        return;
    case TR__SYS_EXPOSE:
        tr__port_expose(port);
        if (port->actor != NULL)
            tr__actor_expose(port->actor);
        return;
    case TR__SYS_PING:
        (void)tr__port_send_sys(port, view->env.sender, TR__SYS_PONG,
                                (int64_t)port->rec->id, a);
        return;
    case TR__SYS_PONG:
        tr__proc_pong(node, (tr_id_t)a);
        return;
    case TR__SYS_EXIT:
        if (port->actor == NULL)
            goto bad;
        tr__actor_on_exit(port->actor, (tr_id_t)a, (int)b);
        return;
    case TR__SYS_SYNCED: {
        /* Everything we sent down the old connection has been read. */
        tr__peer_t *pe = tr__map_get(&port->retiring, (tr_id_t)a);
        if (pe != NULL && pe->token == (uint64_t)b)
            s_peer_free(port, tr__map_del(&port->retiring, (tr_id_t)a));
        return;
    }
    default:
        break;
    }
bad:
    TR__STAT_INC(node, bad_frames);
    TR__LOG(TR_LOG_WARN, "runtime", "malformed or unknown system message "
            "'%s' (kind %d) dropped", tr_msg_tag(view), (int)view->env.code);
}

static int
s_set_rcvtimeo(tr__port_t *port, int ms)
{
    if (ms == port->inbox_rcvtimeo)
        return 0;
    if (zmq_setsockopt(port->inbox, ZMQ_RCVTIMEO, &ms, sizeof ms) != 0)
        return tr__zerr(zmq_errno(), "ZMQ_RCVTIMEO");
    port->inbox_rcvtimeo = ms;
    return 0;
}

int
tr__port_pump(tr__port_t *port, int timeout_ms, struct tr_future *want)
{
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    if (port->closed || node == NULL)
        return TR_ECLOSED;
    s_down_t downs[16];
    size_t ndowns = 0;
    int handled = 0, rc = 0;
    tr_msg_t view;
    tr__msg_view_open(&view);
    /* A failed non-blocking recv costs a poll(2) inside libzmq. So: read
     * until the wanted reply, not until EAGAIN; and to wait, make one
     * blocking recv with a timeout, which is libzmq's own wait (one poll)
     * instead of a failed recv and then a poll of ours. */
    while (want == NULL || !want->settled) {
        int vrc;
        if (timeout_ms != 0 && handled == 0) {
            if ((vrc = s_set_rcvtimeo(port, timeout_ms)) == 0)
                vrc = tr__msg_view_recv(&view, port->inbox, true);
            timeout_ms = 0; /* one wait, then only what is there */
        } else {
            vrc = tr__msg_view_recv(&view, port->inbox, false);
        }
        port->inbox_drained = (vrc == TR_EAGAIN);
        if (vrc == TR_EAGAIN)
            break;
        if (vrc != 0 && vrc != TR_EPROTO && vrc != TR_EVERSION) {
            rc = vrc;
            break;
        }
        handled++;
        if (vrc != 0) {
            TR__STAT_INC(node, bad_frames);
            TR__LOG(TR_LOG_WARN, "runtime", "malformed frame in inbox: %s",
                    tr_strerror(vrc));
        } else if (view.env.flags & TR__F_BATCH) {
            s_on_batch(port, &view);
        } else if (view.env.flags & TR__F_REPLY) {
            s_on_reply(port, &view);
        } else if (view.env.flags & TR__F_SYSTEM) {
            s_on_system(port, &view, downs, &ndowns,
                        sizeof downs / sizeof downs[0]);
        } else {
            TR__STAT_INC(node, bad_frames);
            TR__LOG(TR_LOG_WARN, "runtime", "user message '%s' in inbox "
                    "dropped", tr_msg_tag(&view));
        }
    }
    tr__msg_view_close(&view);
    for (size_t i = 0; i < ndowns; i++)
        s_on_down(port, downs[i].id, downs[i].reason);
    if (port->ntimed > 0)
        tr__future_expire(port);
    if (port->ncallbacks > 0)
        tr__future_run_callbacks(port);
    return rc < 0 ? rc : handled;
}

int
tr__port_send_sys_from(tr_node_t *node, tr_id_t to, int kind)
{
    tr__port_t *port;
    int rc = tr__port_get(node, &port);
    return rc ? rc : tr__port_send_sys(port, to, kind, 0, 0);
}
