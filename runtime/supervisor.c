/* runtime/supervisor.c - supervisors, Erlang/OTP style, plus backoff.
 *
 * A supervisor is an ordinary actor (behaviour "tr_supervisor") built on the
 * public API: it spawns its children linked to itself (spawn .link), traps
 * exits, and so learns of every child's end as an "$exit" message. What it
 * does then follows OTP's supervisor: restart types, strategies, restart
 * intensity, ordered shutdown. A child it stops on purpose is unlinked
 * first, so that end is not mistaken for a crash; an exit signal from
 * anything else (its own parent) ends the supervisor too.
 *
 * Specs reach the supervisor as msgpack in its spawn args (so a supervisor
 * could run in another process), one list a spec:
 *   id|nil, behaviour, name|nil, mode, mailbox_hwm, restart, shutdown_ms,
 *   heartbeat_ms, executable|nil, args tag|nil, args payload|nil
 *
 * Restarts are scheduled per child (due time: now, or after its backoff)
 * and made by one loop, s_start_due, which also turns a failed start into
 * one more end of that child: no recursion, however often starts fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/behaviour.h"
#include "runtime/control.h"
#include "runtime/node.h"
#include "runtime/remote.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "troupe.h"

#define S_SPEC_FIELDS 12
#define S_NODES_MAX 256

typedef struct s_child {
    char id[TR_NAME_MAX + 1];
    char behaviour[TR_NAME_MAX + 1];
    char name[TR_NAME_MAX + 1]; /* "" when anonymous */
    tr_mode_t mode;
    int hwm;
    tr_restart_t restart;
    int shutdown_ms;
    tr_msg_t *args;   /* owned; NULL when none */
    tr_id_t actor;    /* 0 while not running */
    int heartbeat_ms; /* TR_PROCESS: see tr_spawn_opts_t */
    char exe[256];    /* TR_PROCESS: another executable, "" for this one */
    char nodes[S_NODES_MAX]; /* where it may run, "" for here */
    int restarts;     /* how often it was restarted */
    int streak;       /* restarts in a row, for backoff */
    uint64_t started; /* when its actor last started (ns) */
    uint64_t due;     /* down, to be started at this time (0: not) */
} s_child_t;

typedef struct s_sup {
    tr_strategy_t strategy;
    int max_restarts; /* negative: none allowed */
    int period_ms;
    int backoff_min, backoff_max, jitter;
    s_child_t *kids; /* in start order */
    size_t nkids, capkids;
    s_child_t tmpl;  /* SIMPLE_ONE_FOR_ONE: the one spec */
    uint64_t *times; /* restart times within the period, a ring */
    size_t ntimes, captimes;
    uint64_t rng;
    uint64_t timer_due; /* when the pending restart timer fires (0: none) */
} s_sup_t;

/* How the log names a child: its id, or for a dynamic child (which has
 * none) its behaviour. */
static const char *
s_label(const s_child_t *c)
{
    return c->id[0] != '\0' ? c->id : c->behaviour;
}

/* ------------------------------------------------------------------ */
/* Specs to and from msgpack                                            */

static int
s_add_str_or_nil(tr_msg_t *m, const char *s)
{
    return s && *s ? tr_msg_add_str(m, s) : tr_msg_add_nil(m);
}

static int
s_encode_spec(tr_msg_t *m, const tr_child_spec_t *c)
{
    const tr_msg_t *args = c->spawn.args;
    size_t plen = 0;
    const void *payload = args ? tr_msg_payload(args, &plen) : NULL;
    int rc;
    if ((rc = tr_msg_add_array(m, S_SPEC_FIELDS)) != 0 ||
        (rc = s_add_str_or_nil(m, c->id)) != 0 ||
        (rc = tr_msg_add_str(m, c->behaviour)) != 0 ||
        (rc = s_add_str_or_nil(m, c->spawn.name)) != 0 ||
        (rc = tr_msg_add_int(m, c->spawn.mode)) != 0 ||
        (rc = tr_msg_add_int(m, c->spawn.mailbox_hwm)) != 0 ||
        (rc = tr_msg_add_int(m, c->restart)) != 0 ||
        (rc = tr_msg_add_int(m, c->shutdown_ms)) != 0 ||
        (rc = tr_msg_add_int(m, c->spawn.heartbeat_ms)) != 0 ||
        (rc = s_add_str_or_nil(m, c->spawn.executable)) != 0 ||
        (rc = s_add_str_or_nil(m, args ? tr_msg_tag(args) : NULL)) != 0 ||
        (rc = s_add_str_or_nil(m, c->nodes)) != 0)
        return rc;
    return args ? tr_msg_add_bin(m, payload, plen) : tr_msg_add_nil(m);
}

/* A string or nil into buf ("" for nil). */
static int
s_read_str_or_nil(tr_reader_t *r, char *buf, size_t cap)
{
    if (tr_read_type(r) == TR_TYPE_NIL) {
        buf[0] = '\0';
        return tr_read_nil(r);
    }
    return tr_read_str_copy(r, buf, cap);
}

static void
s_child_free(s_child_t *c)
{
    tr_msg_destroy(&c->args);
}

static int
s_decode_spec(tr_reader_t *r, s_child_t *c)
{
    uint32_t n;
    int64_t mode, hwm, restart, shutdown, heartbeat;
    char tag[TR_TAG_MAX + 1];
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = tr_read_array(r, &n)) != 0)
        return rc;
    if (n != S_SPEC_FIELDS)
        return TR_EPROTO;
    if ((rc = s_read_str_or_nil(r, c->id, sizeof c->id)) != 0 ||
        (rc = tr_read_str_copy(r, c->behaviour, sizeof c->behaviour)) != 0 ||
        (rc = s_read_str_or_nil(r, c->name, sizeof c->name)) != 0 ||
        (rc = tr_read_int(r, &mode)) != 0 || (rc = tr_read_int(r, &hwm)) != 0 ||
        (rc = tr_read_int(r, &restart)) != 0 ||
        (rc = tr_read_int(r, &shutdown)) != 0 ||
        (rc = tr_read_int(r, &heartbeat)) != 0 ||
        (rc = s_read_str_or_nil(r, c->exe, sizeof c->exe)) != 0 ||
        (rc = s_read_str_or_nil(r, tag, sizeof tag)) != 0 ||
        (rc = s_read_str_or_nil(r, c->nodes, sizeof c->nodes)) != 0)
        return rc;
    c->heartbeat_ms = (int)heartbeat;
    if (restart < TR_PERMANENT || restart > TR_TEMPORARY)
        return TR_EINVAL;
    c->mode = (tr_mode_t)mode;
    c->hwm = (int)hwm;
    c->restart = (tr_restart_t)restart;
    c->shutdown_ms = shutdown == 0 ? 5000 : (int)shutdown;
    if (tr_read_type(r) == TR_TYPE_NIL)
        return tr_read_nil(r);
    const void *p;
    size_t plen;
    if ((rc = tr_read_bin(r, &p, &plen)) != 0)
        return rc;
    if (tag[0] == '\0')
        return TR_EPROTO;
    if ((rc = tr_msg_create(&c->args, tag)) != 0 ||
        (rc = tr_msg_add_raw(c->args, p, plen)) != 0)
        s_child_free(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Children                                                             */

static s_child_t *
s_find_actor(s_sup_t *s, tr_id_t actor, size_t *index)
{
    for (size_t i = 0; i < s->nkids; i++) {
        if (actor != 0 && s->kids[i].actor == actor) {
            if (index != NULL)
                *index = i;
            return &s->kids[i];
        }
    }
    return NULL;
}

static s_child_t *
s_find_id(s_sup_t *s, const char *id, size_t *index)
{
    for (size_t i = 0; i < s->nkids; i++) {
        if (id[0] != '\0' && strcmp(s->kids[i].id, id) == 0) {
            if (index != NULL)
                *index = i;
            return &s->kids[i];
        }
    }
    return NULL;
}

static int
s_spawn(tr_actor_t *self, s_child_t *c)
{
    tr_spawn_opts_t o = {.name = c->name[0] ? c->name : NULL,
                         .mode = c->mode,
                         .mailbox_hwm = c->hwm,
                         .args = c->args,
                         .link = true,
                         .keep_name = c->name[0] != '\0',
                         .executable = c->exe[0] ? c->exe : NULL,
                         .heartbeat_ms = c->heartbeat_ms};
    tr_node_t *node = tr_actor_node(self);
    int rc = TR_ENOCONN;
    if (c->nodes[0] == '\0') {
        rc = tr_spawn(node, c->behaviour, &o, &c->actor);
    } else {
        /* The first node of the list that is up, this one included. */
        char list[S_NODES_MAX], *save = NULL;
        snprintf(list, sizeof list, "%s", c->nodes);
        for (char *at = strtok_r(list, ", ", &save); at != NULL;
             at = strtok_r(NULL, ", ", &save)) {
            if (strcmp(at, tr_node_name(node)) == 0) {
                rc = tr_spawn(node, c->behaviour, &o, &c->actor);
            } else if (tr_node_await(node, at, 0) == 0) {
                o.link = false;
                o.executable = NULL;
                if ((rc = tr_spawn_on(node, at, c->behaviour, &o,
                                      &c->actor)) == 0 &&
                    (rc = tr_monitor(self, c->actor)) != 0)
                    (void)tr__stop_async(node, c->actor, TR_ESHUTDOWN);
                if (rc == TR_ECLOSED) /* that node is going: the next */
                    rc = TR_ENOCONN;
                o.link = true;
                o.executable = c->exe[0] ? c->exe : NULL;
            }
            if (rc == 0 || rc == TR_ECLOSED)
                break;
        }
    }
    if (rc != 0) {
        c->actor = 0;
        return rc;
    }
    c->started = tr__now_ns();
    return 0;
}

/* Stop a child on purpose: unlinked first (its end is not a crash), asked
 * to stop within its shutdown time, then killed; a thread actor that does
 * not stop is reported and left. */
static void
s_stop(tr_actor_t *self, s_child_t *c)
{
    if (c->actor == 0)
        return;
    tr_node_t *node = tr_actor_node(self);
    if (tr__id_foreign(node, c->actor)) {
        /* On another node: asked, not waited for (its DOWN is ignored). */
        (void)tr_demonitor(self, c->actor);
        (void)tr__stop_async(node, c->actor, TR_ESHUTDOWN);
        c->actor = 0;
        return;
    }
    (void)tr_unlink(self, c->actor);
    int rc = tr_stop(node, c->actor, c->shutdown_ms);
    if (rc == TR_ETIMEDOUT) {
        rc = tr_kill(node, c->actor);
        if (rc == TR_ENOTSUP)
            TR__LOG(TR_LOG_ERROR, "supervisor", "child '%s' (%llx) did not "
                    "stop within %d ms and is a thread: left running",
                    s_label(c), (unsigned long long)c->actor,
                    c->shutdown_ms);
        else if (rc == 0)
            (void)tr_join(node, c->actor, c->shutdown_ms, NULL);
    }
    c->actor = 0;
}

/* Forget a child for good: its name is released. */
static void
s_remove(s_sup_t *s, size_t i, tr_node_t *node)
{
    s_child_t *c = &s->kids[i];
    if (c->name[0] != '\0')
        (void)tr_name_release(node, c->name);
    s_child_free(c);
    memmove(&s->kids[i], &s->kids[i + 1], (s->nkids - i - 1) * sizeof *c);
    s->nkids--;
}

static void
s_stop_all(tr_actor_t *self, s_sup_t *s)
{
    for (size_t i = s->nkids; i-- > 0;)
        s_stop(self, &s->kids[i]);
}

static int
s_add(s_sup_t *s, const s_child_t *c)
{
    if (s->nkids == s->capkids) {
        size_t ncap = s->capkids ? s->capkids * 2 : 8;
        s_child_t *n = realloc(s->kids, ncap * sizeof *n);
        if (n == NULL)
            return TR_ENOMEM;
        s->kids = n;
        s->capkids = ncap;
    }
    s->kids[s->nkids++] = *c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Restarts                                                             */

/* One more restart now: false when that is more than max_restarts within
 * period_ms (the intensity), as OTP counts it. */
static bool
s_allow_restart(s_sup_t *s)
{
    if (s->max_restarts < 0)
        return false;
    uint64_t now = tr__now_ns();
    uint64_t window = (uint64_t)s->period_ms * 1000000u;
    size_t k = 0;
    for (size_t i = 0; i < s->ntimes; i++)
        if (now - s->times[i] < window)
            s->times[k++] = s->times[i];
    s->ntimes = k;
    if (s->ntimes + 1 > (size_t)s->max_restarts)
        return false;
    if (s->ntimes == s->captimes) {
        size_t ncap = s->captimes ? s->captimes * 2 : 4;
        uint64_t *n = realloc(s->times, ncap * sizeof *n);
        if (n == NULL)
            return false;
        s->times = n;
        s->captimes = ncap;
    }
    s->times[s->ntimes++] = now;
    return true;
}

/* Backoff before restarting c: min x 2^streak up to max, +- jitter. */
static int
s_backoff_ms(s_sup_t *s, s_child_t *c)
{
    if (s->backoff_min <= 0)
        return 0;
    /* A child that ran longer than the longest backoff starts over. */
    if (tr__now_ns() - c->started > (uint64_t)s->backoff_max * 1000000u)
        c->streak = 0;
    int64_t ms = s->backoff_min;
    for (int i = 0; i < c->streak && ms < s->backoff_max; i++)
        ms *= 2;
    if (ms > s->backoff_max)
        ms = s->backoff_max;
    c->streak++;
    if (s->jitter > 0) {
        s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
        int64_t span = ms * s->jitter / 100;
        ms += (int64_t)(s->rng % (uint64_t)(2 * span + 1)) - span;
    }
    return ms < 1 ? 1 : (int)ms;
}

/* Give up: everything stops, newest first, names are released, and the
 * supervisor ends abnormally so that its own supervisor decides. */
static void
s_give_up(tr_actor_t *self, s_sup_t *s, const s_child_t *c, int reason)
{
    TR__LOG(TR_LOG_ERROR, "supervisor", "child '%s' ended (%s) once too "
            "often: more than %d restarts in %d ms; giving up", s_label(c),
            tr_strerror(reason), s->max_restarts < 0 ? 0 : s->max_restarts,
            s->period_ms);
    s_stop_all(self, s);
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].name[0] != '\0')
            (void)tr_name_release(tr_actor_node(self), s->kids[i].name);
    tr_exit(self, TR_EINTENSITY);
}

/* Child i ended (already marked down) with reason. Decide, per its restart
 * type and the strategy, within the intensity: schedule it (and the
 * siblings the strategy takes down with it) for a start now or after its
 * backoff. False when the supervisor gave up. */
static bool
s_on_end(tr_actor_t *self, s_sup_t *s, size_t i, int reason)
{
    tr_node_t *node = tr_actor_node(self);
    s_child_t *c = &s->kids[i];
    bool normal = reason == 0 || reason == TR_ESHUTDOWN;
    if (c->restart == TR_TEMPORARY ||
        (c->restart == TR_TRANSIENT && normal)) {
        s_remove(s, i, node);
        return true;
    }
    if (!s_allow_restart(s)) {
        s_give_up(self, s, c, reason);
        return false;
    }
    uint64_t due = tr__now_ns() + (uint64_t)s_backoff_ms(s, c) * 1000000u;
    c->due = due;
    /* The siblings the strategy takes down, newest first. A temporary one
     * is never restarted, not even so (OTP): it is dropped. */
    size_t from = s->strategy == TR_ONE_FOR_ALL    ? 0
                  : s->strategy == TR_REST_FOR_ONE ? i + 1
                                                   : s->nkids;
    for (size_t k = s->nkids; k-- > from;) {
        s_child_t *o = &s->kids[k];
        if (k == i || (o->actor == 0 && o->due == 0))
            continue;
        s_stop(self, o);
        if (o->restart == TR_TEMPORARY)
            s_remove(s, k, node);
        else
            o->due = due;
    }
    return true;
}

/* Start every child whose time has come, in start order; a start that
 * fails is one more end of that child (decided again by s_on_end). Then
 * arm the timer for the next one due. */
static int
s_start_due(tr_actor_t *self, s_sup_t *s)
{
    for (;;) {
        uint64_t now = tr__now_ns();
        size_t i;
        for (i = 0; i < s->nkids; i++)
            if (s->kids[i].actor == 0 && s->kids[i].due != 0 &&
                s->kids[i].due <= now)
                break;
        if (i == s->nkids)
            break;
        s_child_t *c = &s->kids[i];
        int rc = s_spawn(self, c);
        if (rc == TR_ECLOSED)
            return 0; /* the node is going down: nothing to restart */
        if (rc == 0) {
            c->due = 0;
            c->restarts++;
            TR__LOG(TR_LOG_INFO, "supervisor", "restarted '%s' as %llx",
                    s_label(c), (unsigned long long)c->actor);
            continue;
        }
        TR__LOG(TR_LOG_WARN, "supervisor", "restart of '%s' failed: %s",
                s_label(c), tr_strerror(rc));
        c->due = 0;
        if (!s_on_end(self, s, i, rc))
            return 0;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].actor == 0 && s->kids[i].due != 0 &&
            (next == 0 || s->kids[i].due < next))
            next = s->kids[i].due;
    if (next == 0 || (s->timer_due != 0 && s->timer_due <= next))
        return 0;
    tr_msg_t *m = NULL;
    int ms = (int)tr__ms_left(next);
    int rc = tr_msg_create(&m, "restart");
    if (rc == 0 && (rc = tr_timer_after(self, ms, &m, NULL)) != 0)
        tr_msg_destroy(&m);
    if (rc == 0)
        s->timer_due = next;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The behaviour                                                        */

static void s_terminate(tr_actor_t *self, void *state, int reason);

static int
s_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_sup_t *s = state;
    tr_reader_t r;
    int64_t v[7];
    int rc = 0;
    tr_reader_init(&r, args);
    for (int k = 0; k < 7 && rc == 0; k++)
        rc = tr_read_int(&r, &v[k]);
    if (rc != 0)
        return rc;
    s->strategy = (tr_strategy_t)v[0];
    s->max_restarts = v[1] == 0 ? 1 : (int)v[1];
    s->period_ms = v[2] == 0 ? 5000 : (int)v[2];
    s->backoff_min = (int)v[3];
    s->backoff_max = v[4] ? (int)v[4] : 30 * (int)v[3];
    s->jitter = (int)v[5];
    s->rng = tr__now_ns() | 1;
    tr_trap_exits(self, true);
    for (int64_t k = 0; k < v[6] && rc == 0; k++) {
        s_child_t c;
        if ((rc = s_decode_spec(&r, &c)) != 0)
            break;
        if (s->strategy == TR_SIMPLE_ONE_FOR_ONE) {
            s->tmpl = c; /* a template, started later */
            continue;
        }
        if ((c.id[0] && s_find_id(s, c.id, NULL)) ||
            (rc = s_spawn(self, &c)) != 0 || (rc = s_add(s, &c)) != 0) {
            rc = rc ? rc : TR_EEXIST;
            s_child_free(&c);
        }
    }
    if (rc != 0) { /* all or nothing, as OTP's start_link */
        s_terminate(self, s, rc); /* terminate is not called after init */
        memset(s, 0, sizeof *s);
    }
    return rc;
}

static void
s_terminate(tr_actor_t *self, void *state, int reason)
{
    s_sup_t *s = state;
    (void)reason;
    s_stop_all(self, s);
    for (size_t i = 0; i < s->nkids; i++) {
        if (s->kids[i].name[0] != '\0')
            (void)tr_name_release(tr_actor_node(self), s->kids[i].name);
        s_child_free(&s->kids[i]);
    }
    s_child_free(&s->tmpl);
    free(s->kids);
    free(s->times);
}

static int
s_reply_id(tr_actor_t *self, const tr_msg_t *req, tr_id_t id)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "ok");
    if (rc == 0 && (rc = tr_msg_add_uint(m, id)) == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc;
}

/* A request the supervisor refuses: the asker gets rc, the supervisor
 * goes on. */
static int
s_refuse(tr_actor_t *self, const tr_msg_t *req, int rc)
{
    return tr_msg_is_request(req) ? tr_reply_error(self, req, rc) : 0;
}

static int
s_handle_start(tr_actor_t *self, s_sup_t *s, const tr_msg_t *msg)
{
    tr_reader_t r;
    s_child_t c;
    tr_reader_init(&r, msg);
    int rc;
    if (tr_msg_is(msg, "start_dynamic")) {
        if (s->strategy != TR_SIMPLE_ONE_FOR_ONE)
            return s_refuse(self, msg, TR_EINVAL);
        c = s->tmpl;
        c.args = NULL;
        c.id[0] = '\0';
        c.name[0] = '\0';
        if (!tr_read_done(&r)) { /* tag, payload: the args */
            char tag[TR_TAG_MAX + 1];
            const void *p;
            size_t plen;
            if ((rc = tr_read_str_copy(&r, tag, sizeof tag)) != 0 ||
                (rc = tr_read_bin(&r, &p, &plen)) != 0 ||
                (rc = tr_msg_create(&c.args, tag)) != 0 ||
                (rc = tr_msg_add_raw(c.args, p, plen)) != 0) {
                s_child_free(&c);
                return s_refuse(self, msg, rc);
            }
        } else if (s->tmpl.args != NULL &&
                   (rc = tr_msg_dup(s->tmpl.args, &c.args)) != 0) {
            return s_refuse(self, msg, rc);
        }
    } else {
        if (s->strategy == TR_SIMPLE_ONE_FOR_ONE)
            return s_refuse(self, msg, TR_EINVAL);
        if ((rc = s_decode_spec(&r, &c)) != 0)
            return s_refuse(self, msg, rc);
        if (c.id[0] != '\0' && s_find_id(s, c.id, NULL) != NULL) {
            s_child_free(&c);
            return s_refuse(self, msg, TR_EEXIST);
        }
    }
    if ((rc = s_spawn(self, &c)) != 0 || (rc = s_add(s, &c)) != 0) {
        s_stop(self, &c);
        s_child_free(&c);
        return s_refuse(self, msg, rc);
    }
    if (c.id[0] == '\0' && s->strategy != TR_SIMPLE_ONE_FOR_ONE)
        /* No id given: one that no other child can have. */
        snprintf(s->kids[s->nkids - 1].id, sizeof c.id, "#%llx",
                 (unsigned long long)c.actor);
    return s_reply_id(self, msg, c.actor);
}

static int
s_handle_terminate(tr_actor_t *self, s_sup_t *s, const tr_msg_t *msg)
{
    tr_reader_t r;
    char id[TR_NAME_MAX + 1];
    uint64_t actor;
    size_t i;
    tr_reader_init(&r, msg);
    int rc = s_read_str_or_nil(&r, id, sizeof id);
    if (rc == 0)
        rc = tr_read_uint(&r, &actor);
    if (rc != 0)
        return s_refuse(self, msg, rc);
    s_child_t *c = id[0] ? s_find_id(s, id, &i) : s_find_actor(s, actor, &i);
    if (c == NULL)
        return s_refuse(self, msg, TR_ENOENT);
    s_stop(self, c);
    s_remove(s, i, tr_actor_node(self));
    return s_reply_id(self, msg, 0);
}

static int
s_handle_which(tr_actor_t *self, s_sup_t *s, const tr_msg_t *msg)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "children");
    if (rc == 0)
        rc = tr_msg_add_uint(m, s->nkids);
    for (size_t i = 0; i < s->nkids && rc == 0; i++) {
        if ((rc = tr_msg_add_str(m, s->kids[i].id)) == 0 &&
            (rc = tr_msg_add_uint(m, s->kids[i].actor)) == 0)
            rc = tr_msg_add_int(m, s->kids[i].restarts);
    }
    if (rc == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    return rc;
}

static int
s_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_sup_t *s = state;
    if (tr_msg_is(msg, "$exit") || tr_msg_is(msg, "$down")) {
        /* (a "$down": a child on another node) */
        tr_id_t who;
        int reason;
        size_t i;
        if (tr_msg_exit(msg, &who, &reason) != 0)
            return 0;
        s_child_t *c = s_find_actor(s, who, &i);
        if (c == NULL) {
            /* Our parent ended: so do we (OTP). From an actor we no longer
             * know (stopped with its group a moment ago): nothing to do. */
            if (who == tr_actor_parent(self) && tr_msg_is(msg, "$exit"))
                tr_exit(self, reason ? reason : TR_ESHUTDOWN);
            return 0;
        }
        c->actor = 0;
        TR__LOG(reason == 0 || reason == TR_ESHUTDOWN ? TR_LOG_INFO
                                                      : TR_LOG_WARN,
                "supervisor", "child '%s' (%llx) ended: %s", s_label(c),
                (unsigned long long)who, tr_strerror(reason));
        if (!s_on_end(self, s, i, reason))
            return 0;
        return s_start_due(self, s);
    }
    if (tr_msg_is(msg, "restart")) {
        s->timer_due = 0;
        return s_start_due(self, s);
    }
    if (tr_msg_is(msg, "start_child") || tr_msg_is(msg, "start_dynamic"))
        return s_handle_start(self, s, msg);
    if (tr_msg_is(msg, "terminate_child"))
        return s_handle_terminate(self, s, msg);
    if (tr_msg_is(msg, "which_children"))
        return s_handle_which(self, s, msg);
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(tr_supervisor, .state_size = sizeof(s_sup_t), .init = s_init,
             .handle = s_handle, .terminate = s_terminate);

/* ------------------------------------------------------------------ */
/* The calls                                                            */

static int
s_check_spec(const tr_child_spec_t *c, bool need_id)
{
    if (c == NULL || c->behaviour == NULL || (need_id && c->id == NULL))
        return tr__refuse(TR_EINVAL, "child spec: missing %s",
                          c == NULL ? "spec" : c->behaviour ? "id"
                                                            : "behaviour");
    if (c->restart < TR_PERMANENT || c->restart > TR_TEMPORARY ||
        c->shutdown_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "child spec '%s': bad restart or "
                          "shutdown_ms", c->id ? c->id : "");
    int rc = c->id ? tr__name_check(c->id) : 0;
    if (rc == 0 && c->spawn.name != NULL)
        rc = tr__name_check(c->spawn.name);
    if (rc == 0 && c->nodes != NULL &&
        (c->nodes[0] == '\0' || strlen(c->nodes) >= S_NODES_MAX))
        rc = tr__refuse(TR_EINVAL, "child spec '%s': nodes is empty or "
                        "longer than %d bytes", c->id ? c->id : "",
                        S_NODES_MAX - 1);
    return rc;
}

static int
s_call_id(tr_node_t *node, tr_id_t sup, tr_msg_t **m, tr_id_t *out)
{
    tr_msg_t *reply = NULL;
    uint64_t id = 0;
    /* No deadline: a supervisor always answers, and starting a child
     * takes as long as its init. */
    int rc = tr_call_id(node, sup, m, TR_FOREVER, &reply);
    if (rc == 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        rc = tr_read_uint(&r, &id);
    }
    tr_msg_destroy(&reply);
    if (rc == 0 && out != NULL)
        *out = id;
    return rc;
}

tr_id_t
tr_node_root(tr_node_t *node)
{
    if (node == NULL)
        return 0;
    pthread_mutex_lock(&node->root_mu);
    tr__rec_t *rec = node->root ? tr__reg_get(&node->reg, node->root) : NULL;
    bool alive = rec != NULL && !atomic_load(&rec->dead);
    tr__rec_unref(&rec);
    if (!alive) {
        /* Made on first use, and again if it ever gave up. */
        tr_msg_t *args = NULL;
        tr_id_t id = 0;
        int rc = tr_msg_create(&args, "sup");
        static const int64_t v[7] = {TR_ONE_FOR_ONE, 0, 0, 0, 0, 0, 0};
        for (int k = 0; k < 7 && rc == 0; k++)
            rc = tr_msg_add_int(args, v[k]);
        if (rc == 0)
            rc = tr_spawn(node, "tr_supervisor",
                          &(tr_spawn_opts_t){.args = args}, &id);
        tr_msg_destroy(&args);
        node->root = rc == 0 ? id : 0;
        if (rc != 0)
            TR__LOG(TR_LOG_ERROR, "supervisor", "cannot start the root "
                    "supervisor: %s", tr_strerror(rc));
    }
    tr_id_t root = node->root;
    pthread_mutex_unlock(&node->root_mu);
    return root;
}

int
tr_sup_start(tr_node_t *node, const tr_sup_opts_t *opts,
             const tr_child_spec_t *children, int n, tr_id_t *id)
{
    static const tr_sup_opts_t defaults = {0};
    if (node == NULL || n < 0 || (n > 0 && children == NULL))
        return tr__refuse(TR_EINVAL, "tr_sup_start: NULL node or children");
    if (opts == NULL)
        opts = &defaults;
    if (opts->strategy < TR_ONE_FOR_ONE ||
        opts->strategy > TR_SIMPLE_ONE_FOR_ONE || opts->period_ms < 0 ||
        opts->backoff_min_ms < 0 || opts->backoff_max_ms < 0 ||
        opts->backoff_jitter < 0 || opts->backoff_jitter > 100 ||
        (opts->backoff_max_ms != 0 &&
         opts->backoff_max_ms < opts->backoff_min_ms) ||
        (opts->strategy == TR_SIMPLE_ONE_FOR_ONE && n != 1))
        return tr__refuse(TR_EINVAL, "tr_sup_start: bad options");
    int rc;
    for (int i = 0; i < n; i++)
        if ((rc = s_check_spec(&children[i],
                               opts->strategy != TR_SIMPLE_ONE_FOR_ONE)) != 0)
            return rc;
    if (opts->name != NULL && (rc = tr__name_check(opts->name)) != 0)
        return rc;
    tr_id_t parent = opts->parent ? opts->parent : tr_node_root(node);
    if (parent == 0)
        return TR_ECLOSED;
    tr_msg_t *args = NULL, *m = NULL;
    int64_t v[7] = {opts->strategy,       opts->max_restarts,
                    opts->period_ms,      opts->backoff_min_ms,
                    opts->backoff_max_ms, opts->backoff_jitter, n};
    rc = tr_msg_create(&args, "sup");
    for (int k = 0; k < 7 && rc == 0; k++)
        rc = tr_msg_add_int(args, v[k]);
    for (int i = 0; i < n && rc == 0; i++)
        rc = s_encode_spec(args, &children[i]);
    /* The supervisor is its parent's child (its id: its name, or one the
     * parent makes), transient: a supervisor that gives up is restarted,
     * one stopped with tr_stop stays stopped. */
    tr_child_spec_t self = {.id = opts->name,
                            .behaviour = "tr_supervisor",
                            .spawn = {.name = opts->name, .args = args},
                            .restart = TR_TRANSIENT,
                            .shutdown_ms = TR_FOREVER};
    if (rc == 0 && (rc = tr_msg_create(&m, "start_child")) == 0 &&
        (rc = s_encode_spec(m, &self)) == 0)
        rc = s_call_id(node, parent, &m, id);
    tr_msg_destroy(&m);
    tr_msg_destroy(&args);
    return rc;
}

int
tr_sup_start_child(tr_node_t *node, tr_id_t sup, const tr_child_spec_t *spec,
                   const tr_msg_t *args, tr_id_t *child)
{
    if (node == NULL || sup == 0)
        return tr__refuse(TR_EINVAL, "tr_sup_start_child: NULL node or sup");
    int rc;
    tr_msg_t *m = NULL;
    if (spec != NULL) {
        if ((rc = s_check_spec(spec, true)) != 0)
            return rc;
        if ((rc = tr_msg_create(&m, "start_child")) == 0)
            rc = s_encode_spec(m, spec);
    } else {
        rc = tr_msg_create(&m, "start_dynamic");
        if (rc == 0 && args != NULL) {
            size_t plen;
            const void *p = tr_msg_payload(args, &plen);
            if ((rc = tr_msg_add_str(m, tr_msg_tag(args))) == 0)
                rc = tr_msg_add_bin(m, p, plen);
        }
    }
    if (rc == 0)
        rc = s_call_id(node, sup, &m, child);
    tr_msg_destroy(&m);
    return rc;
}

int
tr_sup_terminate_child(tr_node_t *node, tr_id_t sup, const char *child_id,
                       tr_id_t actor)
{
    if (node == NULL || sup == 0 || (child_id == NULL && actor == 0))
        return tr__refuse(TR_EINVAL, "tr_sup_terminate_child: no child");
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "terminate_child");
    if (rc == 0 && (rc = s_add_str_or_nil(m, child_id)) == 0 &&
        (rc = tr_msg_add_uint(m, actor)) == 0)
        rc = s_call_id(node, sup, &m, NULL);
    tr_msg_destroy(&m);
    return rc;
}

int
tr_sup_which_children(tr_node_t *node, tr_id_t sup, tr_sup_child_t *out,
                      int max)
{
    if (node == NULL || sup == 0 || max < 0 || (max > 0 && out == NULL))
        return tr__refuse(TR_EINVAL, "tr_sup_which_children: bad arguments");
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, "which_children");
    if (rc == 0)
        rc = tr_call_id(node, sup, &m, TR_FOREVER, &reply);
    tr_msg_destroy(&m);
    uint64_t n = 0;
    tr_reader_t r;
    if (rc == 0) {
        tr_reader_init(&r, reply);
        rc = tr_read_uint(&r, &n);
    }
    int k = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        tr_sup_child_t c = {0};
        uint64_t actor;
        int64_t restarts;
        if ((rc = tr_read_str_copy(&r, c.id, sizeof c.id)) == 0 &&
            (rc = tr_read_uint(&r, &actor)) == 0 &&
            (rc = tr_read_int(&r, &restarts)) == 0 && k < max) {
            c.actor = actor;
            c.restarts = (int)restarts;
            out[k++] = c;
        }
    }
    tr_msg_destroy(&reply);
    return rc < 0 ? rc : k;
}
