/* runtime/future.c - waiting on an ask: the owner thread pumps its inbox
 * until the reply, the deadline, or the target's DOWN settles the future. */
#include "runtime/future.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor.h"
#include "transport/clock.h"
#include "transport/log.h"

int
tr__future_new(tr__port_t *port, tr_id_t target, uint64_t deadline_ns,
               tr_future_t **out)
{
    /* Futures are made and freed by the same thread: a short free list
     * in the port spares malloc on every ask. */
    tr_future_t *f = port->free_futures;
    if (f != NULL) {
        port->free_futures = f->next_free;
        port->nfree_futures--;
        memset(f, 0, sizeof *f);
    } else if ((f = calloc(1, sizeof *f)) == NULL) {
        return TR_ENOMEM;
    }
    f->corr = ++port->next_corr;
    if (tr__map_put(&port->futures, f->corr, f) != 0) {
        free(f);
        return TR_ENOMEM;
    }
    atomic_fetch_add(&port->refs, 1);
    f->port = port;
    f->target = target;
    f->deadline_ns = deadline_ns;
    *out = f;
    return 0;
}

void
tr__future_settle(tr_future_t *f, int rc, tr_msg_t *reply)
{
    if (f->settled) {
        tr_msg_destroy(&reply);
        return;
    }
    tr__map_del(&f->port->futures, f->corr);
    f->settled = true;
    f->rc = rc;
    f->reply = reply;
    /* For tr_future_wait_any over many futures: the settled ones are
     * looked at first, instead of the whole array. */
    tr__port_t *p = f->port;
    f->seq = ++p->settle_seq;
    f->in_done = true;
    f->done_next = NULL;
    f->done_prev = p->done_tail;
    if (p->done_tail != NULL)
        p->done_tail->done_next = f;
    else
        p->done_head = f;
    p->done_tail = f;
    if (f->then != NULL) {
        tr__port_t *port = f->port;
        if (tr__grow((void **)&port->callbacks, port->ncallbacks,
                     &port->capcallbacks, sizeof *port->callbacks, 8) == 0) {
            port->callbacks[port->ncallbacks++] = f;
            f->then_queued = true;
        } else {
            TR__LOG(TR_LOG_ERROR, "runtime", "out of memory: a future's "
                    "callback will not run");
        }
    }
}

/* Take f out of its port's list of settled futures. */
static void
s_done_unlink(tr_future_t *f)
{
    if (!f->in_done)
        return;
    tr__port_t *p = f->port;
    if (f->done_prev != NULL)
        f->done_prev->done_next = f->done_next;
    else
        p->done_head = f->done_next;
    if (f->done_next != NULL)
        f->done_next->done_prev = f->done_prev;
    else
        p->done_tail = f->done_prev;
    f->in_done = false;
}

void
tr__future_run_callbacks(tr__port_t *port)
{
    if (port->keep_peers > 0)
        return; /* inside a send: at the next pump */
    /* In order, by an index kept in the port: a callback may destroy
     * futures whose callbacks are queued (their slots become NULL), or
     * wait, which runs this again from where it is. */
    while (port->cb_head < port->ncallbacks) {
        tr_future_t *f = port->callbacks[port->cb_head++];
        if (f == NULL)
            continue;
        f->then_queued = false;
        tr_future_cb fn = f->then;
        f->then = NULL;
        fn(f->then_arg, f);
    }
    port->ncallbacks = port->cb_head = 0;
}

void
tr__future_expire(tr__port_t *port)
{
    uint64_t now = tr__now_ns();
    size_t k = 0;
    for (size_t i = 0; i < port->ntimed; i++) {
        tr_future_t *f = port->timed[i];
        if (!f->settled && now >= f->deadline_ns)
            tr__future_settle(f, TR_ETIMEDOUT, NULL);
        if (f->settled)
            f->timed = false;
        else
            port->timed[k++] = f;
    }
    port->ntimed = k;
}

uint64_t
tr__future_next_deadline(const tr__port_t *port)
{
    uint64_t next = 0;
    for (size_t i = 0; i < port->ntimed; i++)
        next = tr__deadline_min(next, port->timed[i]->deadline_ns);
    return next;
}

void
tr__future_discard(tr_future_t **fp)
{
    tr_future_t *f = *fp;
    if (f == NULL)
        return;
    *fp = NULL;
    tr__port_t *port = f->port;
    if (!f->settled && !port->closed)
        tr__map_del(&port->futures, f->corr);
    s_done_unlink(f);
    if (f->then_queued) { /* its callback will not run now */
        for (size_t i = port->cb_head; i < port->ncallbacks; i++)
            if (port->callbacks[i] == f)
                port->callbacks[i] = NULL;
    }
    if (f->timed) { /* no deadline to watch for it any more */
        for (size_t i = 0; i < port->ntimed; i++) {
            if (port->timed[i] == f) {
                port->timed[i] = port->timed[--port->ntimed];
                break;
            }
        }
    }
    tr_msg_destroy(&f->reply);
    if (!port->closed && port->nfree_futures < TR__FREE_FUTURES) {
        f->next_free = port->free_futures;
        port->free_futures = f;
        port->nfree_futures++;
    } else {
        free(f);
    }
    tr__port_unref(&port);
}

int
tr_future_wait(tr_future_t *f, int timeout_ms)
{
    if (f == NULL)
        return TR_EINVAL;
    if (f->settled)
        return 0;
    tr__port_t *port = f->port;
    if (!pthread_equal(pthread_self(), port->thread))
        return TR_EPERM;
    if (port->closed) {
        tr__future_settle(f, TR_ECANCELED, NULL);
        return 0;
    }
    uint64_t until = tr__deadline_after_ms(timeout_ms);
    for (;;) {
        /* pump looks before it sleeps: a reply already there costs no
         * wait, and timeout 0 never sleeps. */
        uint64_t wake = tr__deadline_min(f->deadline_ns, until);
        int ms = timeout_ms == 0 ? 0 : (int)tr__ms_left(wake);
        int rc = tr__port_pump(port, ms, f);
        if (f->settled)
            return 0;
        if (rc < 0)
            return rc;
        uint64_t now = tr__now_ns();
        if (f->deadline_ns != 0 && now >= f->deadline_ns) {
            tr__future_settle(f, TR_ETIMEDOUT, NULL);
            if (port->ncallbacks > 0) /* its own, if it has one */
                tr__future_run_callbacks(port);
            return 0;
        }
        if (tr__port_stopping(port))
            return TR_ECANCELED;
        if (timeout_ms == 0 || (until != 0 && now >= until))
            return TR_ETIMEDOUT;
    }
}

bool
tr_future_done(tr_future_t *f)
{
    if (f == NULL)
        return false;
    if (!f->settled)
        (void)tr_future_wait(f, 0);
    return f->settled;
}

int
tr_future_get(tr_future_t *f, int timeout_ms, tr_msg_t **reply)
{
    int rc = tr_future_wait(f, timeout_ms);
    if (rc != 0)
        return rc;
    if (f->rc != 0)
        return f->rc;
    if (f->taken)
        return TR_ENOENT;
    f->taken = true;
    if (reply != NULL) {
        *reply = f->reply;
        f->reply = NULL;
    } else {
        tr_msg_destroy(&f->reply);
    }
    return 0;
}

int
tr_future_exit_reason(const tr_future_t *f)
{
    return f != NULL ? f->exit_reason : 0;
}

void
tr_future_destroy(tr_future_t **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    tr_future_t *f = *fp;
    if (!f->settled && !f->port->closed &&
        !pthread_equal(pthread_self(), f->port->thread)) {
        /* The pending table belongs to the asking thread: leave it be
         * (the reply will be counted late) rather than race on it. */
        TR__LOG(TR_LOG_ERROR, "runtime",
                "tr_future_destroy from another thread than the asker's; "
                "future leaked");
        *fp = NULL;
        return;
    }
    tr__future_discard(fp);
}

/* A settled member of futs, by the index it was last seen at; the
 * oldest of those settled after seq (walking back from the newest), or
 * of the first 64 on the list (from the oldest). SIZE_MAX: none. */
static size_t
s_settled_member(tr__port_t *port, tr_future_t *const *futs, size_t n,
                 bool after, uint64_t seq)
{
    size_t found = SIZE_MAX;
    if (after) {
        for (tr_future_t *f = port->done_tail; f != NULL && f->seq > seq;
             f = f->done_prev)
            if (f->wait_ix < n && futs[f->wait_ix] == f)
                found = f->wait_ix;
        return found;
    }
    int k = 0;
    for (tr_future_t *f = port->done_head; f != NULL && k < 64;
         f = f->done_next, k++)
        if (f->wait_ix < n && futs[f->wait_ix] == f)
            return f->wait_ix;
    return found;
}

/* Wait until all (or any) of futs have settled; see tr_future_wait_all.
 * For any, the port's list of settled futures is looked at first, and the
 * array only once before each wait: the entries that next_done appends
 * and takes away keep their places known in between (O(1) a call). */
static int
s_wait_many(tr_future_t *const *futs, size_t n, int timeout_ms, bool all,
            size_t *index)
{
    if (futs == NULL || timeout_ms < TR_FOREVER)
        return TR_EINVAL;
    tr__port_t *port = NULL;
    for (size_t i = 0; i < n && port == NULL; i++)
        if (futs[i] != NULL)
            port = futs[i]->port;
    if (port == NULL)
        return tr__refuse(TR_EINVAL, "no future to wait for");
    if (!pthread_equal(pthread_self(), port->thread))
        return TR_EPERM;
    if (!all && port->ws_futs == (const void *)futs && port->ws_n <= n &&
        !port->closed) {
        /* The same array as last time: index what was appended. */
        for (size_t i = port->ws_n; i < n; i++) {
            if (futs[i] == NULL)
                continue;
            if (futs[i]->port != port)
                return tr__refuse(TR_EPERM, "futures of several threads");
            futs[i]->wait_ix = i;
        }
        port->ws_n = n;
        size_t at = s_settled_member(port, futs, n, false, 0);
        if (at != SIZE_MAX) {
            if (index != NULL)
                *index = at;
            if (port->ncallbacks > 0)
                tr__future_run_callbacks(port);
            return 0;
        }
    }
    uint64_t until = tr__deadline_after_ms(timeout_ms);
    bool pumped = false, scan = true;
    uint64_t wake = until, seen = 0;
    for (;;) {
        uint64_t now = tr__now_ns();
        size_t first = SIZE_MAX;
        bool pending = false;
        if (!scan) {
            /* Only what settled since the last look can be new. */
            first = s_settled_member(port, futs, n, true, seen);
        } else {
            wake = until;
            for (size_t i = 0; i < n; i++) {
                tr_future_t *f = futs[i];
                if (f == NULL)
                    continue;
                if (f->port != port)
                    return tr__refuse(TR_EPERM, "futures of several "
                                      "threads");
                f->wait_ix = i;
                if (!f->settled && port->closed)
                    tr__future_settle(f, TR_ECANCELED, NULL);
                else if (!f->settled && f->deadline_ns &&
                         now >= f->deadline_ns)
                    tr__future_settle(f, TR_ETIMEDOUT, NULL);
                if (f->settled) {
                    if (first == SIZE_MAX)
                        first = i;
                } else {
                    pending = true;
                    wake = tr__deadline_min(wake, f->deadline_ns);
                }
            }
            port->ws_futs = futs;
            port->ws_n = n;
        }
        seen = port->settle_seq;
        if (all ? (scan && !pending) : first != SIZE_MAX) {
            if (index != NULL)
                *index = first;
            if (port->ncallbacks > 0 && !port->closed)
                tr__future_run_callbacks(port);
            return 0;
        }
        /* A poll (timeout 0) reads what is there once before it says
         * no. */
        if (timeout_ms == 0 ? pumped : (until != 0 && now >= until))
            return TR_ETIMEDOUT;
        if (tr__port_stopping(port))
            return TR_ECANCELED;
        int64_t ms = timeout_ms == 0 ? 0 : tr__ms_left(wake);
        int rc = tr__port_pump(port, ms > INT32_MAX ? INT32_MAX : (int)ms,
                               NULL);
        pumped = true;
        if (rc < 0)
            return rc;
        /* Look at everything again for all, when the port closed, or at
         * a future's deadline. */
        scan = all || port->closed || (wake != 0 && tr__now_ns() >= wake);
    }
}

int
tr_future_wait_all(tr_future_t *const *futs, size_t n, int timeout_ms)
{
    return s_wait_many(futs, n, timeout_ms, true, NULL);
}

int
tr_future_wait_any(tr_future_t *const *futs, size_t n, int timeout_ms,
                   size_t *index)
{
    return s_wait_many(futs, n, timeout_ms, false, index);
}

int
tr_future_next_done(tr_future_t **futs, size_t *n, int timeout_ms,
                    tr_future_t **done)
{
    if (n == NULL || done == NULL)
        return TR_EINVAL;
    size_t i;
    int rc = s_wait_many(futs, *n, timeout_ms, false, &i);
    if (rc != 0)
        return rc;
    tr_future_t *f = futs[i];
    assert(f != NULL); /* s_wait_many's index is of a settled future */
    futs[i] = futs[*n - 1];
    futs[*n - 1] = f;
    if (futs[i] != NULL)
        futs[i]->wait_ix = i;
    f->wait_ix = SIZE_MAX; /* out of the set now, handed out */
    s_done_unlink(f);
    (*n)--;
    if (f->port->ws_futs == (const void *)futs)
        f->port->ws_n = *n;
    *done = f;
    return 0;
}

int
tr_future_then(tr_future_t *f, tr_future_cb fn, void *arg)
{
    if (f == NULL || fn == NULL)
        return TR_EINVAL;
    if (!pthread_equal(pthread_self(), f->port->thread))
        return TR_EPERM;
    if (f->then != NULL || f->then_queued)
        return TR_EEXIST;
    if (f->settled) {
        fn(arg, f);
        return 0;
    }
    if (f->deadline_ns != 0) {
        /* Nobody may wait on it: its deadline is watched by the port
         * (tr__future_expire), so the callback runs then at the latest. */
        tr__port_t *port = f->port;
        int rc = tr__grow((void **)&port->timed, port->ntimed,
                          &port->captimed, sizeof *port->timed, 8);
        if (rc != 0)
            return rc;
        port->timed[port->ntimed++] = f;
        f->timed = true;
    }
    f->then = fn;
    f->then_arg = arg;
    return 0;
}
