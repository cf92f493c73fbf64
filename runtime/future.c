/* runtime/future.c - waiting on an ask: the owner thread pumps its inbox
 * until the reply, the deadline, or the target's DOWN settles the future. */
#include "runtime/future.h"

#include <pthread.h>
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
