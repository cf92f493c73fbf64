/* runtime/tell.c - the sending verbs: tell, try_tell, ask, call, reply.
 * Each resolves the target, fills the envelope and hands the frame to the
 * calling thread's port. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "runtime/actor.h"
#include "runtime/behaviour.h"
#include "runtime/future.h"
#include "runtime/node.h"
#include "runtime/port.h"
#include "runtime/process.h"
#include "runtime/remote.h"
#include "transport/clock.h"
#include "transport/log.h"

/* A name to an id. A name kept across a restart makes the sender wait for
 * the next actor, as its send would wait for room: up to timeout_ms and
 * never past the deadline of the request being handled. */
static int
s_resolve(tr_node_t *node, const char *name, int64_t timeout_ms, tr_id_t *id)
{
    int rc = tr__name_check(name);
    if (rc != 0)
        return rc;
    tr__port_t *port;
    if ((rc = tr__port_get(node, &port)) != 0)
        return rc;
    const char *at = strchr(name, '@');
    if (at != NULL && strcmp(at + 1, node->name) != 0) /* another node's */
        return tr__remote_whereis(node, name, (size_t)(at - name), at + 1,
                                  timeout_ms, id);
    char local[TR_NAME_MAX + 1];
    if (at != NULL) { /* name@ourselves */
        snprintf(local, sizeof local, "%.*s", (int)(at - name), name);
        name = local;
    }
    rc = tr__reg_resolve(&node->reg, name, timeout_ms, port->cur_deadline,
                         id);
    if (rc == TR_ENOENT && node->child) {
        /* Not known here: ask the parent's node. */
        tr__rec_t *rec = NULL;
        if ((rc = tr__child_lookup(node, port, 0, name, &rec)) == 0)
            *id = rec->id;
        tr__rec_unref(&rec);
    }
    return rc;
}

static int
s_check(tr_node_t *node, tr_msg_t **msg, tr__port_t **port)
{
    if (node == NULL || msg == NULL || *msg == NULL)
        return tr__refuse(TR_EINVAL, "send: NULL %s",
                          node == NULL ? "node" : "message");
    if ((*msg)->kind != TR__MSG_BUILT) /* a borrowed message: dup it */
        return tr__refuse(TR_EINVAL, "send: message '%s' was received, "
                          "not built (tr_msg_dup it)", tr_msg_tag(*msg));
    return tr__port_get(node, port); /* TR_ECLOSED once destroy began */
}

static int
s_tell(tr_node_t *node, tr_id_t to, tr_msg_t **msg, bool dontwait)
{
    tr__port_t *port;
    int rc = s_check(node, msg, &port);
    if (rc != 0)
        return rc;
    if (to == 0)
        return TR_ENOENT;
    (*msg)->env.flags = 0;
    (*msg)->env.code = 0;
    (*msg)->env.corr = 0;
    (*msg)->env.deadline_ns = 0;
    tr__wait_t wait = {node->opts.send_timeout_ms, port->cur_deadline};
    return tr__port_send(port, to, msg, TR__BOX_MAILBOX,
                         dontwait ? TR__NOWAIT : &wait);
}

int
tr_tell_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg)
{
    return s_tell(node, to, msg, false);
}

int
tr_try_tell_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg)
{
    return s_tell(node, to, msg, true);
}

/* A send by name: resolve, send, and if the actor ended in between (the
 * send found it dead), resolve again: a kept name then waits for the next
 * actor, any other name is gone. send is s_tell or an ask. */
typedef int (*s_send_fn)(tr_node_t *node, tr_id_t to, tr_msg_t **msg,
                         void *arg);

static int
s_by_name(tr_node_t *node, const char *name, int64_t wait_ms, tr_msg_t **msg,
          s_send_fn send, void *arg)
{
    tr_id_t id = 0, last = 0;
    for (;;) {
        int rc = s_resolve(node, name, wait_ms, &id);
        if (rc != 0)
            return rc;
        if (id == last)
            return TR_ENOENT; /* the same, ended, actor: not kept */
        rc = send(node, id, msg, arg);
        if (rc != TR_ENOENT)
            return rc;
        last = id;
    }
}

/* (an s_send_fn: its argument is not const for the others) */
static int
s_tell_fn(tr_node_t *node, tr_id_t to, tr_msg_t **msg,
          void *dontwait) // cppcheck-suppress constParameter
{
    return s_tell(node, to, msg, dontwait != NULL);
}

int
tr_tell(tr_node_t *node, const char *name, tr_msg_t **msg)
{
    if (node == NULL)
        return tr__refuse(TR_EINVAL, "tr_tell: NULL node");
    return s_by_name(node, name, node->opts.send_timeout_ms, msg, s_tell_fn,
                     NULL);
}

int
tr_try_tell(tr_node_t *node, const char *name, tr_msg_t **msg)
{
    if (node == NULL)
        return tr__refuse(TR_EINVAL, "tr_try_tell: NULL node");
    return s_by_name(node, name, 0, msg, s_tell_fn, (void *)1);
}

int
tr__ask_many(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
             size_t k, tr_future_t **futs)
{
    tr__port_t *port;
    if (futs == NULL || k == 0 || timeout_ms < TR_FOREVER)
        return TR_EINVAL;
    int rc = s_check(node, msg, &port);
    if (rc != 0)
        return rc;
    tr__rec_t *target;
    if (port->hot != NULL && port->hot_to == to)
        /* the actor the last send went to (if it ended since, the send
         * finds out) */
        target = port->hot->rec;
    else if ((rc = tr__port_peer(port, to, &target)) != 0)
        return rc;
    if (target->kind != TR__REC_ACTOR)
        return TR_ENOENT;
    /* Like gen_server:call, watch the target: if it ends first, its DOWN
     * settles the ask at once instead of at the deadline. */
    if ((rc = tr__port_watch(port, target, to)) != 0)
        return rc;

    uint64_t deadline;
    if (timeout_ms == TR_DEFAULT)
        deadline = port->cur_deadline
                       ? port->cur_deadline
                       : tr__deadline_after_ms(node->opts.ask_timeout_ms);
    else
        deadline = tr__deadline_after_ms(timeout_ms); /* FOREVER: 0 */
    /* One thread makes them in a row: the ids follow each other. */
    size_t made = 0;
    for (; made < k && rc == 0; made++)
        if ((rc = tr__future_new(port, to, deadline, &futs[made])) != 0)
            break;
    if (rc == 0) {
        (*msg)->env.flags = TR__F_REQUEST;
        (*msg)->env.code = 0;
        (*msg)->env.corr = futs[0]->corr;
        (*msg)->env.deadline_ns = deadline;
        /* A full mailbox waits up to the ask's own deadline. */
        tr__wait_t wait = {deadline ? -1 : node->opts.send_timeout_ms,
                           deadline};
        rc = tr__port_send(port, to, msg, TR__BOX_MAILBOX, &wait);
    }
    if (rc != 0)
        while (made > 0)
            tr__future_discard(&futs[--made]);
    return rc;
}

int
tr_ask_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
          tr_future_t **fut)
{
    if (fut == NULL)
        return TR_EINVAL;
    return tr__ask_many(node, to, msg, timeout_ms, 1, fut);
}

typedef struct s_ask_args {
    int timeout_ms;
    tr_future_t **fut;
} s_ask_args_t;

static int
s_ask_fn(tr_node_t *node, tr_id_t to, tr_msg_t **msg, void *arg)
{
    s_ask_args_t *a = arg;
    return tr_ask_id(node, to, msg, a->timeout_ms, a->fut);
}

int
tr_ask(tr_node_t *node, const char *name, tr_msg_t **msg, int timeout_ms,
       tr_future_t **fut)
{
    if (node == NULL)
        return tr__refuse(TR_EINVAL, "tr_ask: NULL node");
    /* While a kept name restarts, wait within the ask's own time. */
    int wait = timeout_ms == TR_DEFAULT ? node->opts.ask_timeout_ms
                                        : timeout_ms;
    s_ask_args_t a = {timeout_ms, fut};
    return s_by_name(node, name, wait, msg, s_ask_fn, &a);
}

static int
s_await(tr_future_t *f, tr_msg_t **reply)
{
    int rc = tr_future_get(f, TR_FOREVER, reply);
    tr_future_destroy(&f);
    return rc;
}

int
tr_call(tr_node_t *node, const char *name, tr_msg_t **msg, int timeout_ms,
        tr_msg_t **reply)
{
    tr_future_t *f;
    int rc = tr_ask(node, name, msg, timeout_ms, &f);
    return rc ? rc : s_await(f, reply);
}

int
tr_call_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
           tr_msg_t **reply)
{
    tr_future_t *f;
    int rc = tr_ask_id(node, to, msg, timeout_ms, &f);
    return rc ? rc : s_await(f, reply);
}

/* Send *reply (flags and code set) to the asker to, as the answer to
 * corr; a part of a run with more (tr__port_send_part). */
static int
s_reply(tr_actor_t *self, tr_id_t to, uint64_t corr, tr_msg_t **reply,
        bool more)
{
    (*reply)->env.flags |= TR__F_REPLY;
    (*reply)->env.corr = corr;
    (*reply)->env.deadline_ns = 0;
    int rc = tr__port_send_part(self->port, to, reply, more);
    if (rc == TR_ENOENT) {
        /* The asker is gone: like gen_server:reply, not our failure. */
        TR__STAT_INC(self->node, dead_letters);
        TR__LOG(TR_LOG_DEBUG, "runtime", "reply to %llx dropped: asker gone",
                (unsigned long long)to);
        tr_msg_destroy(reply);
        rc = 0;
    }
    return rc;
}

static int
s_reply_check(tr_actor_t *self, const tr_msg_t *req)
{
    if (self == NULL || req == NULL)
        return TR_EINVAL;
    if (!pthread_equal(pthread_self(), self->thread))
        return TR_EPERM;
    if (!(req->env.flags & TR__F_REQUEST) || req->env.sender == 0)
        return TR_EINVAL;
    return 0;
}

int
tr_reply(tr_actor_t *self, const tr_msg_t *req, tr_msg_t **reply)
{
    int rc = s_reply_check(self, req);
    if (rc != 0)
        return rc;
    if (reply == NULL || *reply == NULL || (*reply)->kind != TR__MSG_BUILT)
        return TR_EINVAL;
    (*reply)->env.flags = 0;
    (*reply)->env.code = 0;
    return s_reply(self, req->env.sender, req->env.corr, reply, false);
}

int
tr__reply_to(tr_actor_t *self, tr_id_t to, uint64_t corr, int code,
             int reason, tr_msg_t **reply, bool more)
{
    if (code < 0) {
        tr_msg_t *msg;
        int rc = tr__msg_create_sys(&msg, "$error");
        if (rc != 0)
            return rc;
        msg->env.flags = TR__F_ERROR;
        msg->env.code = code;
        if (reason == 0 || (rc = tr_msg_add_int(msg, reason)) == 0)
            rc = s_reply(self, to, corr, &msg, more);
        tr_msg_destroy(&msg);
        return rc;
    }
    if (reply == NULL || *reply == NULL || (*reply)->kind != TR__MSG_BUILT)
        return TR_EINVAL;
    (*reply)->env.flags = 0;
    (*reply)->env.code = 0;
    return s_reply(self, to, corr, reply, more);
}

int
tr__reply_ints(tr_actor_t *self, const tr_msg_t *req, const int64_t *v,
               int n)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "ok");
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_msg_add_int(m, v[i]);
    if (rc == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc;
}

int
tr__reply_error_reason(tr_actor_t *self, const tr_msg_t *req, int code,
                       int reason)
{
    int rc = s_reply_check(self, req);
    if (rc != 0)
        return rc;
    if (code >= 0)
        return TR_EINVAL;
    return tr__reply_to(self, req->env.sender, req->env.corr, code, reason,
                        NULL, false);
}

int
tr_reply_error(tr_actor_t *self, const tr_msg_t *req, int code)
{
    return tr__reply_error_reason(self, req, code, 0);
}
