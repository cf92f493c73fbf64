/* runtime/future.h - the future behind an ask. A future belongs to the
 * thread that asked (its port): only that thread reads the inbox where the
 * reply lands, so settling needs no lock. */
#ifndef TR_RUNTIME_FUTURE_H
#define TR_RUNTIME_FUTURE_H

#include <stdbool.h>

#include "runtime/port.h"
#include "troupe.h"

struct tr_future {
    tr__port_t *port;     /* owner (reference) */
    uint64_t corr;        /* key in port->futures while pending */
    tr_id_t target;
    uint64_t deadline_ns; /* 0: none */
    bool settled;
    int rc;          /* outcome once settled */
    int exit_reason; /* with TR_EDEAD */
    tr_msg_t *reply; /* with rc == 0, until taken */
    bool taken;
    tr_future_cb then;           /* tr_future_then's, until called */
    void *then_arg;
    bool then_queued;            /* in port->callbacks */
    bool timed;                  /* in port->timed */
    bool in_done;                /* in port->done_head's list */
    struct tr_future *done_prev, *done_next;
    uint64_t seq;                /* port->settle_seq when it settled */
    size_t wait_ix;              /* where s_wait_many last saw it */
    struct tr_future *next_free; /* in port->free_futures */
};

/* Run the callbacks of futures that settled (tr_future_then), unless the
 * port is inside a send (they run at its next pump then). */
void tr__future_run_callbacks(tr__port_t *port);

/* Settle (TR_ETIMEDOUT) the futures with a callback whose deadline has
 * passed, and forget the settled ones; and the soonest deadline left
 * (0: none). For threads that do not wait on those futures. */
void tr__future_expire(tr__port_t *port);
uint64_t tr__future_next_deadline(const tr__port_t *port);

/* Freed futures a port keeps for reuse. */
#define TR__FREE_FUTURES 16

/* A pending future on port for an ask to target, registered under a fresh
 * correlation id. TR_ENOMEM. */
int tr__future_new(tr__port_t *port, tr_id_t target, uint64_t deadline_ns,
                   tr_future_t **out);

/* Settle (once): removes it from the port's pending table; takes reply. */
void tr__future_settle(tr_future_t *f, int rc, tr_msg_t *reply);

/* Answer a request with an error code and an exit reason, which the
 * asker reads with tr_future_exit_reason (a pool's TR_EWORKERDIED, say). */
int tr__reply_error_reason(tr_actor_t *self, const tr_msg_t *req, int code,
                           int reason);

/* Answer a request with "ok" [v[0], ..., v[n-1]] (n may be 0). */
int tr__reply_ints(tr_actor_t *self, const tr_msg_t *req, const int64_t *v,
                   int n);

/* Answer the ask corr of actor to (kept from its request: the request
 * itself need not be): with code < 0 an error (and exit reason), else
 * *reply (taken on success). With more, a part of a run of answers to the
 * same asker (tr__port_send_part): the run must end with more false. */
int tr__reply_to(tr_actor_t *self, tr_id_t to, uint64_t corr, int code,
                 int reason, tr_msg_t **reply, bool more);

/* An ask that k answers settle: k futures whose correlation ids follow
 * each other from the message's (futs[i]'s is the message's + i), for an
 * actor that answers each part of one request by itself (the pool's
 * "submits"). The rest as tr_ask_id. */
int tr__ask_many(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
                 size_t k, tr_future_t **futs);

/* Free a future that was never handed to the caller. */
void tr__future_discard(tr_future_t **f);

#endif
