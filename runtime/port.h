/* runtime/port.h - a thread's own place in a node.
 *
 * Every thread that talks to a node has a port: an id, an inbox (a PULL
 * socket with no high-water mark, for replies and system messages, which
 * must never wait behind a full mailbox) and its own cache of sending
 * sockets, one per peer it talks to. Sockets are never shared between
 * threads: the port belongs to its thread. An actor's port is created by the
 * actor's thread and carries the actor's id; other threads (main, say) get
 * one on their first call, kept in thread-local storage and closed when the
 * thread exits or the node is destroyed.
 *
 * Futures of asks made by a thread are settled by that thread when it
 * reads its inbox (while waiting on a future, or in its actor loop). */
#ifndef TR_RUNTIME_PORT_H
#define TR_RUNTIME_PORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/map.h"
#include "runtime/node.h"
#include "runtime/registry.h"
#include "transport/msg.h"
#include "troupe.h"

struct tr_actor;

typedef enum {
    TR__BOX_MAILBOX = 0, /* user messages: bounded */
    TR__BOX_INBOX = 1,   /* replies and system messages: unbounded */
} tr__box_t;

typedef struct tr__peer {
    tr__rec_t *rec;  /* reference */
    void *sock[2];   /* PUSH to mailbox / inbox, connected lazily */
    bool hand;       /* inproc to a reader of views: hand messages over */
    bool show;       /* over ipc: frames shown, with a receipt now and then
                      * (tr__msg_zmq_show) */
    int nshown[2];   /* per box: messages shown since the last receipt */
    tr_msg_t *shown[2], *shown_last[2]; /* their chain (newest first, by
                                         * pool_next) and its oldest */
    bool shown_mixed[2]; /* of several pools */
    uint64_t used;   /* LRU tick */
    uint64_t token;  /* while retiring: the SYNC token awaited */
} tr__peer_t;

typedef struct tr__port {
    _Atomic int refs;
    _Atomic(tr_node_t *) node; /* NULL once closed */
    pthread_mutex_t mu;        /* close vs. thread exit vs. node destroy */
    pthread_t thread;          /* owner */
    tr__rec_t *rec;            /* own record (id) */
    void *inbox;               /* PULL, bound */
    int inbox_fd;              /* its ZMQ_FD, see tr__sock_fd */
    bool inbox_drained;        /* last recv gave EAGAIN: fd may be polled */
    int inbox_rcvtimeo;        /* ZMQ_RCVTIMEO as last set */
    tr__map_t peers;           /* id -> tr__peer_t*, at most TR__PEERS_MAX */
    tr__map_t retiring;        /* id -> tr__peer_t* evicted, awaiting SYNCED */
    uint64_t next_token;
    tr__map_t futures;         /* correlation id -> tr_future_t* pending */
    tr__map_t watching;        /* target id -> (void*)1: DOWN will come */
    tr__map_t monitoring;      /* target id -> count: tr_monitor'ed */
    uint64_t next_corr;
    /* The "submits" this thread handed to a pool open (actors/pool.c),
     * while it may still be appended to. */
    struct {
        tr_msg_t *msg;    /* NULL: none */
        uint64_t word;    /* tr__msg_open_begin's */
        tr_id_t to;       /* the pool */
        uint64_t last_corr; /* its last task's ask */
        size_t kpos;      /* where its task count is, in its frame */
        uint32_t k;
    } open;
    struct tr_future *free_futures; /* for reuse, owner thread only */
    struct tr_future **callbacks;   /* settled, with a callback to run */
    size_t ncallbacks, capcallbacks, cb_head;
    struct tr_future **timed;       /* with a callback and a deadline */
    size_t ntimed, captimed;
    /* Settled futures not yet handed out by next_done nor destroyed,
     * oldest first: tr_future_wait_any looks here before at its array. */
    struct tr_future *done_head, *done_tail;
    uint64_t settle_seq;            /* futures settled so far */
    const void *ws_futs;            /* the array wait_any last scanned */
    size_t ws_n;                    /* entries of it indexed then */
    int nfree_futures;
    uint64_t tick;
    struct tr_actor *actor;    /* the actor owning this thread, or NULL */
    uint64_t cur_deadline;     /* deadline of the request being handled */
    bool closed;
    bool exposed;              /* inbox bound on ipc too */
    int keep_peers;            /* pumping inside a send or lookup: a DOWN
                                * must not free a peer in use */
    struct tr__port *tls_next; /* the thread's list of ports, one a node */
    /* The peer of the last mailbox send, for the next one to the same
     * actor (s_send_hot); NULL once that peer leaves the cache. */
    struct tr__peer *hot;
    tr_id_t hot_to;
    _Atomic tr_id_t sending_to; /* mid-send to this id (see s_announce) */
} tr__port_t;

/* The calling thread's ports, one a node it used, newest first. */
extern _Thread_local tr__port_t *tr__tls_ports
    __attribute__((tls_model("initial-exec")));

int tr__port_get_slow(tr_node_t *node, tr__port_t **out);

/* The calling thread's port for node, created on first use.
 * Errors: TR_EINVAL (NULL node), TR_ECLOSED, TR_ENOMEM, TR_ESYS.
 * Inline for its usual case, one node a thread (on every send). */
static inline int
tr__port_get(tr_node_t *node, tr__port_t **out)
{
    tr__port_t *p = tr__tls_ports;
    if (p != NULL && node != NULL &&
        atomic_load_explicit(&p->node, memory_order_acquire) == node) {
        *out = p;
        return 0;
    }
    return tr__port_get_slow(node, out);
}

/* An actor thread's port, with the actor's record. */
int tr__port_open_actor(tr_node_t *node, tr__rec_t *rec,
                        struct tr_actor *actor, tr__port_t **out);

/* Close the port's sockets and fail its pending futures (TR_ECANCELED).
 * From the owner thread, or from node destroy once the owner is done. */
void tr__port_close(tr__port_t *port);

/* Take an actor's port out of its thread's list before the thread ends. */
void tr__port_forget(tr__port_t *port);
void tr__port_unref(tr__port_t **port);

/* The inbox endpoint of id / the mailbox endpoint of id. */
void tr__endpoint(char *buf, size_t cap, tr_id_t id, tr__box_t box);

/* How long a send may wait for room in a full mailbox: timeout_ms from
 * the first attempt (-1: none), but never past cap_ns (0: none). The clock
 * is read only when a send has to wait. */
typedef struct tr__wait {
    int64_t timeout_ms;
    uint64_t cap_ns;
} tr__wait_t;

#define TR__NOWAIT ((const tr__wait_t *)NULL)

/* Send *msg to id's mailbox or inbox; takes *msg on success. With wait
 * TR__NOWAIT, a full mailbox is TR_EAGAIN; else it waits as *wait says
 * while reading its own inbox. env fields other than sender and target
 * must be set by the caller. */
int tr__port_send(tr__port_t *port, tr_id_t to, tr_msg_t **msg, tr__box_t box,
                  const tr__wait_t *wait);

/* Send *msg to id's inbox (never waiting) as one part of a run: with
 * more, ZeroMQ holds it until a part to the same id without more ends the
 * run, and hands the run over at once (one wake-up of its reader for many
 * answers). The reader takes each part as a message of its own. A run
 * must be ended: after a failed part, the rest of the run may be dropped
 * (only when the reader is going away). */
int tr__port_send_part(tr__port_t *port, tr_id_t to, tr_msg_t **msg,
                       bool more);

/* Replies to one asker in one frame (TR__F_BATCH): tr__batch_begin makes
 * the frame, tr__batch_room gives room for each reply's frame (header,
 * tag, NUL, payload; the caller writes it, flags REPLY and corr set), and
 * tr__port_send_batch sends it to to's inbox, taking *batch. The reader
 * handles each reply as if it had come alone, in order. Only a reader of
 * this node's own runtime knows batches: to one elsewhere (through the
 * gateway) the replies go one frame each. Errors: TR_ENOMEM, and
 * tr__port_send's (TR_ENOENT: the asker is gone). */
int tr__batch_begin(tr_msg_t **batch);
uint8_t *tr__batch_room(tr_msg_t *batch, size_t len);
int tr__port_send_batch(tr__port_t *port, tr_id_t to, tr_msg_t **batch);

/* Read and handle what is in the inbox; with timeout_ms != 0 and nothing
 * there, first wait up to timeout_ms (-1: forever) for something. With
 * want, stop as soon as that future has settled (the rest waits for the
 * next pump). Returns the number handled or a TR_E* code. */
int tr__port_pump(tr__port_t *port, int timeout_ms, struct tr_future *want);

/* Send a system message of kind with payload a, b to id's inbox (or, for
 * SYNC, its mailbox; never waiting). */
int tr__port_send_sys(tr__port_t *port, tr_id_t to, int kind, int64_t a,
                      int64_t b);

/* The record of a running peer, from this thread's cache (borrowed: valid
 * until this thread's next send). TR_ENOENT if id is not running. */
int tr__port_peer(tr__port_t *port, tr_id_t id, tr__rec_t **rec);

/* Bind the inbox on ipc as well, so other processes can reach it. From
 * the port's own thread. */
void tr__port_expose(tr__port_t *port);

/* Send a system message with payload 0, 0 from the calling thread's
 * port. */
int tr__port_send_sys_from(tr_node_t *node, tr_id_t to, int kind);

/* Make sure a DOWN for target will reach this port. TR_ENOENT if the
 * target already ended. */
int tr__port_watch(tr__port_t *port, tr__rec_t *target, tr_id_t id);

/* Hand a frame from another node to local actor to, as it is (its sender
 * kept), without waiting: 0 (ZeroMQ has it), TR_EAGAIN (a full mailbox:
 * zm is still the caller's), TR_ENOENT (no such actor), TR_ECLOSED. */
int tr__port_forward(tr__port_t *port, zmq_msg_t *zm, tr_id_t to,
                     tr__box_t box);

/* After rec was marked dead (and, with membarrier, the barrier issued):
 * is some sender still between its liveness check and its send? */
bool tr__ports_sending_to(tr_node_t *node, tr__rec_t *rec);

/* Read sock (rec's mailbox or inbox, rec marked dead) dry, with fence
 * also of what senders still between their liveness check and their send
 * put there (waited for; without, the caller waited already): each
 * message read is let go (a handed one back to its pool). Returns how
 * many were user messages or bad frames (a SYNC is neither): the dead
 * letters of a mailbox. */
long tr__port_drain(tr_node_t *node, tr__rec_t *rec, void *sock, bool fence);

/* True when the calling thread is an actor being stopped. */
bool tr__port_stopping(const tr__port_t *port);

#endif
