/* actors/pool.c - pools of workers: the executor.
 *
 * A pool is an actor ("tr_pool") plus a simple_one_for_one supervisor of
 * its workers ("tr_pool_worker", threads or processes). Clients ask the
 * pool ("submit"); the pool queues the task and hands it to a worker only
 * when that worker is idle: a worker says "ready" when it starts and
 * "done" after each task (credit-based load balancing, the ZeroMQ guide's
 * load-balancing broker). The pool answers the client's request with the
 * task's result.
 *
 * The pool tracks every task in flight and monitors every worker. When a
 * worker dies, its supervisor replaces it, and its task goes back to the
 * front of the queue, up to max_retries times; past that the task alone
 * fails with TR_EWORKERDIED and the worker's exit reason. Per-task
 * deadlines are checked by a timer armed for the soonest one; a process
 * worker past its task's deadline is killed (and replaced).
 *
 * Task functions are found by name (TR_TASK registers them before main),
 * so that a process worker, which is this program started again, runs
 * the same function.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/pool.h"
#include "runtime/deftab.h"
#include "runtime/actor.h"
#include "runtime/behaviour.h"
#include "runtime/future.h"
#include "runtime/map.h"
#include "runtime/node.h"
#include "runtime/port.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/msg.h"
#include "troupe.h"

#define TR__POOL_MAX_WORKERS 1024
#define TR__POOL_RETRIES 2

/* ------------------------------------------------------------------ */
/* Task functions by name                                              */

/* A task function or an items task function (one of the two). */
typedef struct s_taskdef {
    tr_task_fn fn;
    tr_items_fn items;
} s_taskdef_t;

static tr__deftab_t s_tasks = TR__DEFTAB_INIT(s_taskdef_t);

/* The definition named name (copied): false if there is none. */
static bool
s_task_find(const char *name, s_taskdef_t *def)
{
    return tr__deftab_find(&s_tasks, name, def);
}

static int
s_task_add(const char *name, tr_task_fn fn, tr_items_fn items)
{
    int rc = tr__name_check(name);
    if (rc != 0 || (fn == NULL && items == NULL))
        return rc ? rc : tr__refuse(TR_EINVAL, "task '%s': NULL function",
                                    name);
    s_taskdef_t d = {fn, items};
    return tr__deftab_add(&s_tasks, name, &d);
}

tr_task_fn
tr__task_fn(const char *name)
{
    s_taskdef_t def;
    return name != NULL && s_task_find(name, &def) ? def.fn : NULL;
}

int
tr_task_register(const char *name, tr_task_fn fn)
{
    return fn ? s_task_add(name, fn, NULL)
              : tr__refuse(TR_EINVAL, "tr_task_register: NULL fn");
}

int
tr_items_task_register(const char *name, tr_items_fn fn)
{
    return fn ? s_task_add(name, NULL, fn)
              : tr__refuse(TR_EINVAL, "tr_items_task_register: NULL fn");
}

static void
s_register_static(const char *name, int rc)
{
    if (rc != 0) {
        fprintf(stderr, "troupe: cannot register task '%s': %s\n", name,
                tr_strerror(rc));
        abort();
    }
}

void
tr__task_register_static(const char *name, tr_task_fn fn)
{
    s_register_static(name, tr_task_register(name, fn));
}

void
tr__items_task_register_static(const char *name, tr_items_fn fn)
{
    s_register_static(name, tr_items_task_register(name, fn));
}

/* ------------------------------------------------------------------ */
/* The worker                                                          */

typedef struct s_worker_state {
    tr_id_t pool;
    s_taskdef_t last; /* the last task function found (none are removed) */
    char last_name[TR_NAME_MAX + 1]; /* last's name, "" for none */
} s_worker_state_t;

static int
s_tell_pool(tr_actor_t *self, s_worker_state_t *w, tr_msg_t **m)
{
    int rc = tr_tell_id(tr_actor_node(self), w->pool, m);
    tr_msg_destroy(m);
    /* A pool that is gone will not come back: this worker is done too. */
    return rc == TR_ENOENT ? TR_ESHUTDOWN : rc;
}

static int
s_worker_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_worker_state_t *w = state;
    tr_reader_t r;
    int64_t pool;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &pool);
    if (rc != 0)
        return rc;
    w->pool = (tr_id_t)pool;
    tr_msg_t *m = NULL;
    if ((rc = tr_msg_create(&m, "ready")) != 0)
        return rc;
    return s_tell_pool(self, w, &m);
}

/* Run fn on one item (tag + payload). */
static int
s_run_one(tr_task_fn fn, const char *tag, const void *payload, size_t plen,
          tr_msg_t **result)
{
    tr_msg_t *args = NULL;
    int rc = tr__msg_create_sys(&args, tag);
    /* As they came: the task reads them with the checking reader, which
     * refuses bytes that are not msgpack (TR_EPROTO). */
    if (rc == 0 && plen > 0)
        rc = tr__msg_add_trusted(args, payload, plen);
    if (rc == 0) {
        rc = fn(args, result);
        if (rc > 0)
            rc = TR_EFAILED;
        if (rc != 0)
            tr_msg_destroy(result);
    }
    tr_msg_destroy(&args);
    return rc;
}

/* A map's chunk: "$chunk" [n, (tag, payload) x n] in, "$chunk" [(rc, tag,
 * payload) x n] out; an item that fails does not fail the others. */
static int
s_worker_chunk(tr_task_fn fn, const void *payload, size_t plen,
               tr_msg_t **out)
{
    tr_reader_t r;
    int64_t n;
    tr_reader_init_bytes(&r, payload, plen);
    int rc = tr_read_int(&r, &n);
    if (rc == 0 && (rc = tr__msg_create_sys(out, "$chunk")) != 0)
        return rc;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        char tag[TR_TAG_MAX + 2];
        const void *p;
        size_t len;
        if ((rc = tr_read_str_copy(&r, tag, sizeof tag)) != 0 ||
            (rc = tr_read_bin(&r, &p, &len)) != 0)
            break;
        tr_msg_t *res = NULL;
        int irc = s_run_one(fn, tag, p, len, &res);
        size_t rlen = 0;
        const void *rp = res ? tr_msg_payload(res, &rlen) : NULL;
        if ((rc = tr_msg_add_int(*out, irc)) == 0 &&
            (rc = tr_msg_add_str(*out, res ? tr_msg_tag(res) : "ok")) == 0)
            rc = tr_msg_add_bin(*out, rp, rlen);
        tr_msg_destroy(&res);
    }
    if (rc != 0)
        tr_msg_destroy(out);
    return rc;
}

/* An items chunk: "$items" [in_size, out_size, bin of n x in_size] in,
 * "$items" [bin of n x out_size] out. The function sees both on 16-byte
 * boundaries (a frame's bytes may lie anywhere: copied if need be). */
static int
s_worker_items(tr_items_fn fn, const void *payload, size_t plen,
               tr_msg_t **out)
{
    tr_reader_t r;
    uint64_t isz, osz;
    const void *in;
    size_t len;
    tr_reader_init_bytes(&r, payload, plen);
    if (tr_read_uint(&r, &isz) != 0 || tr_read_uint(&r, &osz) != 0 ||
        tr_read_bin(&r, &in, &len) != 0 || isz == 0 || len % isz != 0 ||
        osz > UINT32_MAX || (len / isz > 0 && osz > UINT32_MAX / (len / isz)))
        return TR_EPROTO;
    size_t n = len / isz, olen = n * osz;
    void *ibuf = NULL, *obuf = NULL;
    if (((uintptr_t)in % 16) != 0 && len > 0) {
        if ((ibuf = aligned_alloc(16, (len + 15) / 16 * 16)) == NULL)
            return TR_ENOMEM;
        memcpy(ibuf, in, len);
        in = ibuf;
    }
    int rc = 0;
    if ((obuf = aligned_alloc(16, olen ? (olen + 15) / 16 * 16 : 16)) ==
        NULL)
        rc = TR_ENOMEM;
    if (rc == 0) {
        rc = fn(in, (size_t)isz, obuf, (size_t)osz, n);
        if (rc > 0)
            rc = TR_EFAILED;
    }
    if (rc == 0 && (rc = tr__msg_create_sys(out, "$items")) == 0 &&
        (rc = tr_msg_add_bin(*out, obuf, olen)) != 0)
        tr_msg_destroy(out);
    free(ibuf);
    free(obuf);
    return rc;
}

/* "task" [n, (id, name, args tag, args payload) x n], name "" for the
 * previous task's: run them in turn,
 * then say "done" [n, (id, rc, result frame) x n]: the result's whole
 * frame (header, tag, payload), which the pool passes on to the client
 * with the header rewritten; an empty bin when rc is an error. */
static int
s_worker_task(tr_actor_t *self, s_worker_state_t *w, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t n;
    tr_msg_t *m = NULL;
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &n);
    if (rc == 0 && (rc = tr_msg_create(&m, "done")) == 0)
        rc = tr_msg_add_int(m, n);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        int64_t id;
        char name[TR_NAME_MAX + 1], tag[TR_TAG_MAX + 2];
        const void *payload;
        size_t plen;
        if ((rc = tr_read_int(&r, &id)) != 0 ||
            (rc = tr_read_str_copy(&r, name, sizeof name)) != 0 ||
            (rc = tr_read_str_copy(&r, tag, sizeof tag)) != 0 ||
            (rc = tr_read_bin(&r, &payload, &plen)) != 0)
            break; /* not from our pool: fail loudly */
        tr_msg_t *result = NULL;
        s_taskdef_t def;
        bool items = strcmp(tag, "$items") == 0, found = true;
        int trc;
        if (w->last_name[0] != 0 &&
            (name[0] == 0 || strcmp(w->last_name, name) == 0)) {
            def = w->last; /* "": the previous task's */
        } else if (s_task_find(name, &def)) {
            w->last = def;
            snprintf(w->last_name, sizeof w->last_name, "%s", name);
        } else {
            found = false;
        }
        if (!found) {
            tr_log(TR_LOG_WARN, "pool", "no task function '%s'", name);
            trc = TR_ENOENT;
        } else if (items != (def.items != NULL)) {
            tr_log(TR_LOG_WARN, "pool", "'%s' is %s items task", name,
                   items ? "not an" : "an");
            trc = TR_EINVAL;
        } else if (items) {
            trc = s_worker_items(def.items, payload, plen, &result);
        } else if (strcmp(tag, "$chunk") == 0) {
            trc = s_worker_chunk(def.fn, payload, plen, &result);
        } else {
            trc = s_run_one(def.fn, tag, payload, plen, &result);
        }
        if (trc == 0 && result == NULL) /* an empty "ok" */
            trc = tr__msg_create_sys(&result, "ok");
        size_t rlen = 0;
        const void *rp = result ? tr__msg_frame(result, &rlen) : NULL;
        if ((rc = tr_msg_add_int(m, id)) == 0 &&
            (rc = tr_msg_add_int(m, trc)) == 0)
            rc = tr_msg_add_bin(m, rp, rlen);
        tr_msg_destroy(&result);
    }
    if (rc != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    return s_tell_pool(self, w, &m);
}

static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    if (tr_msg_is(msg, "task"))
        return s_worker_task(self, state, msg);
    return TR_EUNHANDLED;
}

TR_BEHAVIOUR(tr_pool_worker, .state_size = sizeof(s_worker_state_t),
             .init = s_worker_init, .handle = s_worker_handle);

/* ------------------------------------------------------------------ */
/* The pool actor                                                      */

typedef struct s_task {
    uint64_t id;
    tr_id_t client;         /* who submitted it, and the ask's */
    uint64_t corr;          /* correlation id: answered at the end */
    const char *name;       /* interned in s_pool_t.names */
    uint32_t nlen, taglen;  /* of name and tag */
    char tag[TR_TAG_MAX + 2];
    int timeout_ms;         /* per try; 0: none */
    uint64_t deadline_ns;   /* of the running try; 0: none */
    int tries;              /* dispatches alone so far */
    bool solo;              /* never batched (a batch it was in died) */
    tr_id_t worker;         /* running on it; 0 while queued */
    size_t plen;
    struct s_task *next_free; /* in s_pool_t.free_tasks */
    unsigned char payload[]; /* the arguments, copied to each try */
} s_task_t;

/* Tasks with arguments this small are kept for reuse when done (a short
 * free list spares a malloc and a free a task). */
#define TR__POOL_SMALL_ARGS 48
#define TR__POOL_FREE_TASKS 1024

/* Tasks a worker is given at once when the queue is deep (fewer messages
 * and wake-ups a task); one at a time otherwise. */
#define TR__POOL_BATCH 64

typedef struct s_worker {
    tr_id_t id;
    uint64_t tasks[TR__POOL_BATCH]; /* handed to it; 0: done or dropped */
    int ntasks;                     /* 0 when idle */
    uint64_t first;         /* the first task of what it was last handed */
    bool retire;            /* stop it once its tasks are done */
} s_worker_t;

/* A queue of ids (tasks or idle workers); removed entries are skipped
 * when popped. */
typedef struct s_ring {
    uint64_t *v;
    size_t head, n, cap;
} s_ring_t;

typedef struct s_pool {
    tr_id_t sup;
    tr_pool_mode_t mode;
    int target;             /* workers wanted */
    int max_retries;
    int task_timeout_ms;
    tr__map_t tasks;        /* id -> s_task_t* */
    tr__map_t workers;      /* actor id -> s_worker_t* */
    s_ring_t queue;         /* task ids */
    s_ring_t idle;          /* worker ids */
    uint64_t next_task;
    uint64_t timer_due;     /* the armed deadline timer's due time; 0 */
    bool closing;
    tr_msg_t *shutdown_req; /* answered once nothing is left */
    uint64_t done, failed, retried, deaths;
    uint64_t shown_ns;      /* counters last shown to the control endpoint */
    s_task_t *free_tasks;   /* of TR__POOL_SMALL_ARGS room */
    int nfree_tasks;
    /* Task names, each kept once (a pool runs few functions): a task
     * points at its name here. last is the one found last. */
    char **names;
    size_t nnames, capnames, last;
    /* Answers held while a "done" is handled, then sent as one batch a
     * client (one frame and one wake-up of the client for a batch of
     * results). A result frame points into the "done". */
    bool holding;
    int nheld;
    struct s_held {
        tr_id_t to;
        uint64_t corr;
        int rc;
        const uint8_t *frame; /* rc 0: the worker's result frame */
        size_t len;
    } held[TR__POOL_BATCH];
} s_pool_t;

static int
s_ring_push(s_ring_t *q, uint64_t v, bool front)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        uint64_t *nv = malloc(cap * sizeof *nv);
        if (nv == NULL)
            return TR_ENOMEM;
        for (size_t i = 0; i < q->n; i++)
            nv[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = nv;
        q->cap = cap;
        q->head = 0;
    }
    if (front) {
        q->head = (q->head + q->cap - 1) % q->cap;
        q->v[q->head] = v;
    } else {
        q->v[(q->head + q->n) % q->cap] = v;
    }
    q->n++;
    return 0;
}

static uint64_t
s_ring_pop(s_ring_t *q)
{
    if (q->n == 0)
        return 0;
    uint64_t v = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return v;
}

/* A task with room for plen bytes of arguments. */
static s_task_t *
s_task_get(s_pool_t *p, size_t plen)
{
    if (plen <= TR__POOL_SMALL_ARGS && p->free_tasks != NULL) {
        s_task_t *t = p->free_tasks;
        p->free_tasks = t->next_free;
        p->nfree_tasks--;
        return t;
    }
    return malloc(sizeof(s_task_t) +
                  (plen <= TR__POOL_SMALL_ARGS ? TR__POOL_SMALL_ARGS : plen));
}

static void
s_task_put(s_pool_t *p, s_task_t *t)
{
    if (t->plen <= TR__POOL_SMALL_ARGS &&
        p->nfree_tasks < TR__POOL_FREE_TASKS) {
        t->next_free = p->free_tasks;
        p->free_tasks = t;
        p->nfree_tasks++;
    } else {
        free(t);
    }
}

/* Add held answer h to batch b, as the pool's reply: the worker's result
 * frame with its header rewritten, or an error frame. */
static int
s_batch_add(tr_msg_t *b, tr_id_t pool, const struct s_held *h)
{
    static const char etag[] = "$error";
    size_t len = h->rc == 0 ? h->len : TR__ENV_HDR + sizeof etag;
    uint8_t *q = tr__batch_room(b, len);
    if (q == NULL)
        return TR_ENOMEM;
    tr__env_t env = {.flags = TR__F_REPLY, .sender = pool, .target = h->to,
                     .corr = h->corr};
    if (h->rc == 0) {
        memcpy(q, h->frame, len);
        tr__env_write(q, &env, q[3]); /* the tag stays */
    } else {
        env.flags |= TR__F_ERROR;
        env.code = h->rc;
        tr__env_write(q, &env, sizeof etag - 1);
        memcpy(q + TR__ENV_HDR, etag, sizeof etag);
    }
    return 0;
}

/* Answer held[0..n), all for one client, in one batch. */
static void
s_answer_run(tr_actor_t *self, const struct s_held *held, int n)
{
    tr_msg_t *b = NULL;
    int rc = tr__batch_begin(&b);
    for (int i = 0; i < n && rc == 0; i++)
        rc = s_batch_add(b, tr_self(self), &held[i]);
    if (rc == 0)
        rc = tr__port_send_batch(self->port, held[0].to, &b);
    tr_msg_destroy(&b);
    if (rc == 0 || rc == TR_ENOENT) /* (gone: like a reply to no one) */
        return;
    tr_log(TR_LOG_WARN, "pool", "cannot answer %llx: %s",
           (unsigned long long)held[0].to, tr_strerror(rc));
    for (int i = 0; i < n; i++) /* the client must hear something */
        (void)tr__reply_to(self, held[i].to, held[i].corr,
                           held[i].rc ? held[i].rc : rc, 0, NULL, false);
}

/* Send the held answers: a batch to each client in turn. */
static void
s_flush(tr_actor_t *self, s_pool_t *p)
{
    for (int i = 0, j; i < p->nheld; i = j) {
        for (j = i + 1; j < p->nheld && p->held[j].to == p->held[i].to; j++)
            ;
        s_answer_run(self, &p->held[i], j - i);
    }
    p->nheld = 0;
}

/* Answer the task's client (rc 0: with the result frame a worker sent)
 * and forget the task. */
static void
s_settle(tr_actor_t *self, s_pool_t *p, s_task_t *t, int rc, int reason,
         const uint8_t *frame, size_t len)
{
    tr__map_del(&p->tasks, t->id);
    p->done++;
    if (rc != 0)
        p->failed++;
    if (p->holding && reason == 0 && p->nheld < TR__POOL_BATCH) {
        p->held[p->nheld++] =
            (struct s_held){t->client, t->corr, rc, frame, len};
    } else {
        tr_msg_t view, *r = NULL;
        if (rc == 0 && (tr__msg_sub_view(&view, frame, len) != 0 ||
                        tr_msg_dup(&view, &r) != 0))
            rc = TR_ENOMEM; /* (a frame s_on_done checked) */
        int src = tr__reply_to(self, t->client, t->corr, rc, reason, &r,
                               false);
        if (src != 0 && rc == 0)
            (void)tr__reply_to(self, t->client, t->corr, src, 0, NULL,
                               false);
        tr_msg_destroy(&r);
    }
    if (t->worker != 0) { /* abandoned: its result will be ignored */
        s_worker_t *w = tr__map_get(&p->workers, t->worker);
        for (int i = 0; w != NULL && i < w->ntasks; i++)
            if (w->tasks[i] == t->id)
                w->tasks[i] = 0;
    }
    s_task_put(p, t);
}

static void s_maybe_finish_shutdown(tr_actor_t *self, s_pool_t *p);

/* Arm the deadline timer for due (if sooner than the armed one). */
static void
s_arm(tr_actor_t *self, s_pool_t *p, uint64_t due)
{
    if (due == 0 || (p->timer_due != 0 && p->timer_due <= due))
        return;
    uint64_t now = tr__now_ns();
    int ms = due > now ? (int)((due - now + 999999) / 1000000) : 0;
    /* The due time rides along: a timer a sooner one replaced is
     * recognised when it fires, and ignored. */
    tr_msg_t *m = NULL;
    if (tr_msg_create(&m, "deadline") == 0 &&
        tr_msg_add_uint(m, due) == 0 && tr_timer_after(self, ms, &m, NULL) == 0)
        p->timer_due = due;
    tr_msg_destroy(&m);
}

/* Add task t to a "task" message. */
static int
s_add_task(tr_msg_t *m, const s_task_t *t, const s_task_t *prev)
{
    /* names are interned: the same pointer is the same name, sent as "" */
    uint32_t nlen = prev != NULL && prev->name == t->name ? 0 : t->nlen;
    if (t->plen > UINT32_MAX)
        return TR_EMSGSIZE;
    /* One append for the four values (heads of at most 9, 5, 5 and 5
     * bytes), written in place: profiled, four appends were a tenth of
     * the pool's work a task. */
    size_t most = 24 + nlen + t->taglen + t->plen;
    uint8_t *p = tr__msg_append(m, most), *q = p;
    if (p == NULL)
        return TR_ENOMEM;
    q += tr__mp_uint(q, t->id);
    q += tr__mp_put_str(q, t->name, nlen);
    q += tr__mp_put_str(q, t->tag, t->taglen);
    q += tr__mp_bin(q, (uint32_t)t->plen);
    if (t->plen > 0)
        memcpy(q, t->payload, t->plen);
    q += t->plen;
    m->len -= most - (size_t)(q - p); /* what was used */
    return 0;
}

/* The next queued task, or NULL. */
static s_task_t *
s_next_queued(s_pool_t *p)
{
    s_task_t *t = NULL;
    while (t == NULL && p->queue.n > 0)
        t = tr__map_get(&p->tasks, s_ring_pop(&p->queue));
    return t;
}

/* Hand queued tasks to idle workers: one each while the queue is short,
 * a share of it (up to TR__POOL_BATCH) when it is deep. A task with a
 * deadline or under suspicion goes alone. */
static void
s_dispatch(tr_actor_t *self, s_pool_t *p)
{
    tr_node_t *node = tr_actor_node(self);
    while (p->queue.n > 0 && p->idle.n > 0) {
        s_worker_t *w = tr__map_get(&p->workers, s_ring_pop(&p->idle));
        if (w == NULL || w->ntasks != 0 || w->retire)
            continue; /* gone, or listed twice */
        /* Deep: at least 4 tasks a worker wait. Then half a worker's
         * share goes at once (the rest stays for those that finish
         * first). Workers still starting count: the first one ready
         * must not take the tasks of those about to be. */
        size_t nw = p->workers.len > (size_t)p->target ? p->workers.len
                                                       : (size_t)p->target;
        if (nw == 0)
            nw = 1;
        size_t share = p->queue.n >= 4 * nw ? p->queue.n / (2 * nw) : 1;
        int want = share > TR__POOL_BATCH ? TR__POOL_BATCH : (int)share;
        s_task_t *batch[TR__POOL_BATCH];
        int n = 0;
        while (n < want) {
            s_task_t *t = s_next_queued(p);
            if (t == NULL)
                break;
            if (n > 0 && (t->solo || t->timeout_ms > 0)) {
                (void)s_ring_push(&p->queue, t->id, true); /* next time */
                break;
            }
            batch[n++] = t;
            if (t->solo || t->timeout_ms > 0)
                break;
        }
        if (n == 0) {
            (void)s_ring_push(&p->idle, w->id, true);
            break;
        }
        tr_msg_t *m = NULL;
        int rc = tr_msg_create(&m, "task");
        if (rc == 0)
            rc = tr_msg_add_int(m, n);
        for (int i = 0; i < n && rc == 0; i++)
            rc = s_add_task(m, batch[i], i > 0 ? batch[i - 1] : NULL);
        if (rc == 0)
            rc = tr_try_tell_id(node, w->id, &m);
        tr_msg_destroy(&m);
        if (rc != 0) {
            /* The tasks wait for the next worker. One that is ending
             * (TR_ENOENT) is dropped: its DOWN will come. */
            for (int i = n - 1; i >= 0; i--)
                (void)s_ring_push(&p->queue, batch[i]->id, true);
            if (rc == TR_ENOENT)
                continue;
            tr_log(TR_LOG_WARN, "pool", "cannot hand tasks to %llx: %s",
                   (unsigned long long)w->id, tr_strerror(rc));
            (void)s_ring_push(&p->idle, w->id, false);
            break; /* tried again at the next event */
        }
        for (int i = 0; i < n; i++) {
            s_task_t *t = batch[i];
            t->tries += n == 1; /* a batch that dies is not counted */
            t->worker = w->id;
            w->tasks[i] = t->id;
            if (t->timeout_ms > 0) {
                t->deadline_ns = tr__deadline_after_ms(t->timeout_ms);
                s_arm(self, p, t->deadline_ns);
            }
        }
        w->ntasks = n;
        w->first = batch[0]->id;
    }
}

static int
s_start_workers(tr_actor_t *self, s_pool_t *p, int n)
{
    tr_node_t *node = tr_actor_node(self);
    tr_msg_t *args = NULL;
    int rc = tr_msg_create(&args, "pool");
    if (rc == 0)
        rc = tr_msg_add_int(args, (int64_t)tr_self(self));
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_sup_start_child(node, p->sup, NULL, args, NULL);
    tr_msg_destroy(&args);
    return rc;
}

static int
s_pool_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_pool_t *p = state;
    tr_reader_t r;
    int64_t v[4];
    char exe[4096] = "", nodes[256] = "";
    tr_reader_init(&r, args);
    for (int i = 0; i < 4; i++)
        if (tr_read_int(&r, &v[i]) != 0)
            return TR_EINVAL;
    if (tr_read_type(&r) == TR_TYPE_STR &&
        tr_read_str_copy(&r, exe, sizeof exe) != 0)
        return TR_ENAMETOOLONG;
    if (tr_read_type(&r) == TR_TYPE_NIL)
        (void)tr_read_nil(&r);
    if (tr_read_type(&r) == TR_TYPE_STR &&
        tr_read_str_copy(&r, nodes, sizeof nodes) != 0)
        return TR_ENAMETOOLONG;
    p->mode = (tr_pool_mode_t)v[0];
    p->target = (int)v[1];
    p->max_retries = (int)v[2];
    p->task_timeout_ms = (int)v[3];
    tr__map_init(&p->tasks);
    tr__map_init(&p->workers);
    /* The workers' supervisor: a dying worker is always replaced (the
     * pool decides what becomes of its task), so no intensity limit. */
    tr_child_spec_t spec = {
        .id = "worker",
        .behaviour = "tr_pool_worker",
        .spawn = {.mode = p->mode == TR_POOL_PROCESSES ? TR_PROCESS
                                                        : TR_THREAD,
                  .executable = exe[0] ? exe : NULL},
        .restart = TR_PERMANENT,
        /* Workers on other nodes: the first of them that is up. */
        .nodes = nodes[0] ? nodes : NULL,
        /* Stopped idle (a shutdown waits for the tasks first), so a
         * worker that does not stop at once is stuck in a task: a
         * process one is killed, a thread one left (and reported). */
        .shutdown_ms = 100,
    };
    tr_sup_opts_t so = {.strategy = TR_SIMPLE_ONE_FOR_ONE,
                        .max_restarts = INT32_MAX, .period_ms = 1};
    int rc = tr_sup_start(tr_actor_node(self), &so, &spec, 1, &p->sup);
    /* Without its supervisor the pool has no workers: it ends with it,
     * so that clients hear (TR_ESHUTDOWN) instead of waiting. */
    if (rc != 0)
        return rc;
    tr_msg_t *show = NULL;
    if ((rc = tr_monitor(self, p->sup)) != 0 ||
        (rc = s_start_workers(self, p, p->target)) != 0 ||
        (rc = tr_msg_create(&show, "show")) != 0 ||
        (rc = tr_timer_every(self, 250, &show, NULL)) != 0)
        (void)tr_stop(tr_actor_node(self), p->sup, TR_DEFAULT);
    tr_msg_destroy(&show);
    return rc;
}

/* The interned copy of name (len bytes), or NULL when out of memory. */
static const char *
s_intern(s_pool_t *p, const char *name, size_t len)
{
    for (size_t k = 0; k < p->nnames; k++) {
        size_t i = (p->last + k) % p->nnames; /* the last one first */
        if (strncmp(p->names[i], name, len) == 0 && p->names[i][len] == 0) {
            p->last = i;
            return p->names[i];
        }
    }
    if (p->nnames == p->capnames) {
        size_t cap = p->capnames ? 2 * p->capnames : 8;
        char **nv = realloc(p->names, cap * sizeof *nv);
        if (nv == NULL)
            return NULL;
        p->names = nv;
        p->capnames = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, name, len);
    copy[len] = '\0';
    p->last = p->nnames;
    p->names[p->nnames++] = copy;
    return copy;
}

/* Queue a task for the ask corr of client: 0 or an error to answer. */
static int
s_new_task(s_pool_t *p, tr_id_t client, uint64_t corr, tr_reader_t *r)
{
    const char *name, *tag;
    size_t nlen, taglen, plen;
    const void *payload;
    int64_t timeout;
    int rc = tr_read_str(r, &name, &nlen);
    if (rc == 0)
        rc = tr_read_str(r, &tag, &taglen);
    if (rc == 0)
        rc = tr_read_bin(r, &payload, &plen);
    if (rc == 0)
        rc = tr_read_int(r, &timeout);
    if (rc != 0)
        return rc;
    if (nlen == 0 || nlen > TR_NAME_MAX || memchr(name, 0, nlen) != NULL ||
        taglen == 0 || taglen > TR_TAG_MAX + 1 ||
        memchr(tag, 0, taglen) != NULL)
        return TR_EPROTO;
    const char *iname = s_intern(p, name, nlen);
    s_task_t *t = iname != NULL ? s_task_get(p, plen) : NULL;
    if (t == NULL)
        return TR_ENOMEM;
    if (timeout == TR_DEFAULT)
        timeout = p->task_timeout_ms;
    t->id = ++p->next_task;
    t->client = client;
    t->corr = corr;
    t->name = iname;
    t->nlen = (uint32_t)nlen;
    t->taglen = (uint32_t)taglen;
    memcpy(t->tag, tag, taglen);
    t->tag[taglen] = '\0';
    t->timeout_ms = timeout > 0 && timeout <= INT32_MAX ? (int)timeout : 0;
    t->deadline_ns = 0;
    t->tries = 0;
    t->solo = false;
    t->worker = 0;
    t->plen = plen;
    if (plen > 0)
        memcpy(t->payload, payload, plen);
    if ((rc = tr__map_put(&p->tasks, t->id, t)) == 0 &&
        (rc = s_ring_push(&p->queue, t->id, false)) != 0)
        tr__map_del(&p->tasks, t->id);
    if (rc != 0)
        s_task_put(p, t);
    return rc;
}

/* "submit" [name, args tag, args payload, timeout ms], or "submits" [k,
 * (name, args tag, args payload, timeout ms) x k]: k tasks for the asks
 * whose ids follow the message's (tr__ask_many). */
static int
s_on_submit(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg, bool many)
{
    if (!tr_msg_is_request(msg))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t k = 1;
    tr_id_t client = tr_msg_sender(msg);
    uint64_t corr = msg->env.corr;
    tr_reader_init(&r, msg);
    if (many && (tr_read_int(&r, &k) != 0 || k < 1 || k > 1000000))
        return tr_reply_error(self, msg, TR_EPROTO);
    int rc = p->closing ? TR_ECLOSED : 0;
    for (int64_t i = 0; i < k; i++) {
        int trc = rc ? rc : s_new_task(p, client, corr + (uint64_t)i, &r);
        if (trc == TR_EPROTO)
            rc = trc; /* the rest cannot be read: all fail */
        if (trc != 0)
            (void)tr__reply_to(self, client, corr + (uint64_t)i, trc, 0,
                               NULL, false);
    }
    return 0; /* dispatched at the end of the run (s_pool_flush) */
}

/* "done" [n, (id, rc, tag, payload) x n] from a worker: it is idle
 * again. */
static int
s_on_done(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &n) != 0)
        return 0; /* not from a worker of ours: dropped */
    p->holding = true;
    uint64_t first = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t id, rc;
        const void *frame;
        size_t len;
        if (tr_read_int(&r, &id) != 0 || tr_read_int(&r, &rc) != 0 ||
            tr_read_bin(&r, &frame, &len) != 0)
            break;
        if (i == 0)
            first = (uint64_t)id;
        s_task_t *t = tr__map_get(&p->tasks, (uint64_t)id);
        if (t == NULL)
            continue;
        t->worker = 0;
        rc = rc < 0 ? rc : 0;
        tr_msg_t view;
        if (rc == 0 && tr__msg_sub_view(&view, frame, len) != 0) {
            tr_log(TR_LOG_WARN, "pool", "malformed result of task %lld "
                   "from %llx", (long long)id,
                   (unsigned long long)tr_msg_sender(msg));
            rc = TR_EPROTO;
        }
        s_settle(self, p, t, (int)rc, 0, frame, len);
    }
    p->holding = false;
    s_flush(self, p);
    s_worker_t *w = tr__map_get(&p->workers, tr_msg_sender(msg));
    /* A "done" for other tasks than the worker's latest (a copy of an
     * earlier one: at-least-once delivery) must not make it idle: what
     * it runs now would be forgotten, and lost if it died. */
    if (w != NULL && w->ntasks != 0 && first != w->first)
        w = NULL;
    if (w != NULL) {
        w->ntasks = 0;
        if (w->retire) {
            tr__map_del(&p->workers, w->id);
            (void)tr_sup_terminate_child(tr_actor_node(self), p->sup, NULL,
                                         w->id);
            free(w);
        } else {
            (void)s_ring_push(&p->idle, w->id, false);
        }
    }
    s_maybe_finish_shutdown(self, p);
    return 0; /* dispatched at the end of the run (s_pool_flush) */
}

static int
s_on_ready(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_id_t id = tr_msg_sender(msg);
    if (tr__map_get(&p->workers, id) != NULL)
        return 0;
    s_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL || tr__map_put(&p->workers, id, w) != 0) {
        free(w);
        return 0; /* it stays unused; the next ready may do better */
    }
    w->id = id;
    (void)tr_monitor(self, id);
    (void)s_ring_push(&p->idle, id, false);
    s_dispatch(self, p);
    return 0;
}

/* A worker ended: its tasks go back to the queue, or fail. A task that
 * was alone on it counts a try; a batch's tasks are tried again each
 * alone (one of them may be what killed it), and do not count. */
static int
s_on_down(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_id_t who;
    int reason;
    if (tr_msg_exit(msg, &who, &reason) != 0)
        return 0;
    if (who == p->sup) {
        tr_log(reason == TR_ESHUTDOWN ? TR_LOG_INFO : TR_LOG_ERROR, "pool",
               "the workers' supervisor ended (%s): the pool ends too",
               tr_strerror(reason));
        p->sup = 0;
        return reason != 0 ? reason : TR_ESHUTDOWN;
    }
    s_worker_t *w = tr__map_del(&p->workers, who);
    if (w == NULL)
        return 0;
    bool abnormal = reason != 0 && reason != TR_ESHUTDOWN;
    p->deaths += abnormal;
    bool batch = w->ntasks > 1;
    for (int i = w->ntasks - 1; i >= 0; i--) {
        s_task_t *t = w->tasks[i] ? tr__map_get(&p->tasks, w->tasks[i])
                                  : NULL;
        if (t == NULL)
            continue;
        t->worker = 0;
        t->deadline_ns = 0;
        t->solo |= batch && abnormal;
        if (abnormal && !batch && t->tries > p->max_retries) {
            tr_log(TR_LOG_WARN, "pool", "task %llu ('%s') failed: its "
                   "worker ended (%s) on each of %d tries",
                   (unsigned long long)t->id, t->name, tr_strerror(reason),
                   t->tries);
            s_settle(self, p, t, TR_EWORKERDIED, reason, NULL, 0);
        } else {
            p->retried += abnormal;
            if (s_ring_push(&p->queue, t->id, true) != 0)
                s_settle(self, p, t, TR_ENOMEM, 0, NULL, 0);
        }
    }
    free(w);
    s_dispatch(self, p);
    s_maybe_finish_shutdown(self, p);
    return 0;
}

/* The deadline timer: fail what is overdue, re-arm for the next. */
static int
s_on_deadline(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_reader_t r;
    uint64_t due = 0;
    tr_reader_init(&r, msg);
    if (tr_read_uint(&r, &due) != 0 || due != p->timer_due)
        return 0; /* replaced by a sooner one */
    uint64_t now = tr__now_ns(), next = 0;
    p->timer_due = 0;
    uint64_t late[64];
    size_t n = 0;
    TR__MAP_EACH(&p->tasks, slot)
    {
        s_task_t *t = slot->val;
        if (t->deadline_ns == 0 || t->worker == 0)
            continue; /* the clock runs only while a worker has it */
        if (t->deadline_ns <= now && n < 64)
            late[n++] = t->id;
        else if (next == 0 || t->deadline_ns < next)
            next = t->deadline_ns;
    }
    for (size_t i = 0; i < n; i++) {
        s_task_t *t = tr__map_get(&p->tasks, late[i]);
        tr_id_t worker = t->worker;
        s_settle(self, p, t, TR_ETIMEDOUT, 0, NULL, 0);
        /* A process can be stopped in the middle of anything; a thread
         * goes on and its result is ignored. */
        if (worker != 0 && p->mode == TR_POOL_PROCESSES)
            (void)tr_kill(tr_actor_node(self), worker);
    }
    if (n == 64)
        next = now; /* more to do at once */
    s_arm(self, p, next);
    s_maybe_finish_shutdown(self, p);
    return 0;
}

/* "cancel" [sender, corr]: the queued task that request made. */
static int
s_on_cancel(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t sender, corr;
    bool ask = tr_msg_is_request(msg); /* a tell: tr_pool_cancel_async */
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &sender) != 0 || tr_read_int(&r, &corr) != 0)
        return ask ? tr_reply_error(self, msg, TR_EINVAL) : 0;
    s_task_t *found = NULL;
    TR__MAP_EACH(&p->tasks, slot)
    {
        s_task_t *t = slot->val;
        if (t->client == (tr_id_t)sender && t->corr == (uint64_t)corr)
            found = t;
    }
    if (found == NULL || found->worker != 0)
        return !ask ? 0
                    : tr_reply_error(self, msg,
                                     found == NULL ? TR_ENOENT : TR_EBUSY);
    s_settle(self, p, found, TR_ECANCELED, 0, NULL, 0);
    s_maybe_finish_shutdown(self, p);
    if (!ask)
        return 0;
    tr_msg_t *ok = NULL;
    int rc = tr_msg_create(&ok, "ok");
    if (rc == 0)
        rc = tr_reply(self, msg, &ok);
    tr_msg_destroy(&ok);
    return rc;
}

/* The counters of tr_pool_stats_t, in its order. */
static void
s_counters(s_pool_t *p, int64_t v[8])
{
    int64_t idle = 0, running = 0;
    TR__MAP_EACH(&p->workers, slot)
    {
        s_worker_t *w = slot->val;
        idle += w->ntasks == 0;
        for (int i = 0; i < w->ntasks; i++)
            running += w->tasks[i] && tr__map_get(&p->tasks, w->tasks[i]);
    }
    int64_t c[8] = {(int64_t)p->workers.len,
                    idle,
                    (int64_t)(p->tasks.len - (size_t)running),
                    running,
                    (int64_t)p->done,
                    (int64_t)p->failed,
                    (int64_t)p->retried,
                    (int64_t)p->deaths};
    memcpy(v, c, sizeof c);
}

static int
s_on_stats(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    int64_t v[8];
    s_counters(p, v);
    return tr__reply_ints(self, msg, v, 8);
}

/* "resize" [n]: start more workers, or retire some (idle ones first). */
static int
s_on_resize(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &n) != 0 || n < 1 || n > TR__POOL_MAX_WORKERS)
        return tr_reply_error(self, msg, TR_EINVAL);
    int rc = 0;
    int have = p->target;
    p->target = (int)n;
    if (n > have) {
        rc = s_start_workers(self, p, (int)n - have);
    } else {
        int drop = have - (int)n;
        tr_node_t *node = tr_actor_node(self);
        /* Idle ones now, then busy ones once their task is done. */
        for (int pass = 0; pass < 2 && drop > 0; pass++) {
            tr_id_t ids[TR__POOL_MAX_WORKERS];
            int k = 0;
            TR__MAP_EACH(&p->workers, slot)
            {
                s_worker_t *w = slot->val;
                if (k < drop && !w->retire && (pass == 1 || w->ntasks == 0))
                    ids[k++] = w->id;
            }
            for (int i = 0; i < k; i++, drop--) {
                s_worker_t *w = tr__map_get(&p->workers, ids[i]);
                if (pass == 1 && w->ntasks != 0) {
                    w->retire = true;
                    continue;
                }
                tr__map_del(&p->workers, w->id);
                free(w);
                (void)tr_sup_terminate_child(node, p->sup, NULL, ids[i]);
            }
        }
    }
    s_dispatch(self, p);
    return rc ? tr_reply_error(self, msg, rc) : tr__reply_ints(self, msg, NULL,
                                                             0);
}

static void
s_maybe_finish_shutdown(tr_actor_t *self, s_pool_t *p)
{
    if (p->shutdown_req == NULL || p->tasks.len > 0)
        return;
    (void)tr__reply_ints(self, p->shutdown_req, NULL, 0);
    tr_msg_destroy(&p->shutdown_req);
}

/* "shutdown" [cancel]: no new tasks; answered once none is left. */
static int
s_on_shutdown(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    tr_reader_t r;
    bool cancel = false;
    tr_reader_init(&r, msg);
    (void)tr_read_bool(&r, &cancel);
    p->closing = true;
    if (cancel) {
        uint64_t queued[256];
        size_t n;
        do {
            n = 0;
            TR__MAP_EACH(&p->tasks, slot)
            {
                s_task_t *t = slot->val;
                if (t->worker == 0 && n < 256)
                    queued[n++] = t->id;
            }
            for (size_t i = 0; i < n; i++)
                s_settle(self, p, tr__map_get(&p->tasks, queued[i]),
                         TR_ECANCELED, 0, NULL, 0);
        } while (n == 256);
    }
    if (p->shutdown_req == NULL && tr_msg_dup(msg, &p->shutdown_req) != 0)
        return tr_reply_error(self, msg, TR_ENOMEM);
    s_maybe_finish_shutdown(self, p);
    return 0;
}

static int s_pool_dispatch_msg(tr_actor_t *self, s_pool_t *p,
                               const tr_msg_t *msg);

/* Handle a message; every 20 ms or so, show the counters to the control
 * endpoint (docs/control.md). */
static int
s_pool_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    return s_pool_dispatch_msg(self, state, msg);
}

static int
s_pool_dispatch_msg(tr_actor_t *self, s_pool_t *p, const tr_msg_t *msg)
{
    /* Most frequent first: one a task, one a worker's batch. */
    if (tr_msg_is(msg, "submit"))
        return s_on_submit(self, p, msg, false);
    if (tr_msg_is(msg, "done"))
        return s_on_done(self, p, msg);
    if (tr_msg_is(msg, "submits"))
        return s_on_submit(self, p, msg, true);
    if (tr_msg_is(msg, "show")) { /* a timer's, every 250 ms */
        p->shown_ns = 0;
        return 0;
    }
    if (tr_msg_is(msg, "ready"))
        return s_on_ready(self, p, msg);
    if (tr_msg_is(msg, "$down"))
        return s_on_down(self, p, msg);
    if (tr_msg_is(msg, "deadline"))
        return s_on_deadline(self, p, msg);
    if (tr_msg_is(msg, "cancel"))
        return s_on_cancel(self, p, msg);
    if (!tr_msg_is_request(msg))
        return TR_EUNHANDLED;
    if (tr_msg_is(msg, "stats"))
        return s_on_stats(self, p, msg);
    if (tr_msg_is(msg, "resize"))
        return s_on_resize(self, p, msg);
    if (tr_msg_is(msg, "shutdown"))
        return s_on_shutdown(self, p, msg);
    return TR_EUNHANDLED;
}

static void
s_pool_terminate(tr_actor_t *self, void *state, int reason)
{
    s_pool_t *p = state;
    (void)reason;
    /* Every client hears: what is left fails with TR_ESHUTDOWN. */
    uint64_t ids[256];
    size_t n;
    do {
        n = 0;
        TR__MAP_EACH(&p->tasks, slot)
        {
            if (n < 256)
                ids[n++] = slot->key;
        }
        for (size_t i = 0; i < n; i++)
            s_settle(self, p, tr__map_get(&p->tasks, ids[i]), TR_ESHUTDOWN, 0,
                     NULL, 0);
    } while (n == 256);
    if (p->shutdown_req != NULL)
        (void)tr_reply_error(self, p->shutdown_req, TR_ESHUTDOWN);
    tr_msg_destroy(&p->shutdown_req);
    /* A process worker still in a task is killed now rather than after
     * its shutdown time: what it works on has just failed. */
    if (p->mode == TR_POOL_PROCESSES) {
        TR__MAP_EACH(&p->workers, slot)
        {
            s_worker_t *w = slot->val;
            if (w->ntasks != 0)
                (void)tr_kill(tr_actor_node(self), w->id);
        }
    }
    if (p->sup != 0)
        (void)tr_stop(tr_actor_node(self), p->sup, TR_DEFAULT);
    TR__MAP_EACH(&p->workers, slot)
    {
        free(slot->val);
    }
    tr__map_free(&p->workers);
    tr__map_free(&p->tasks);
    free(p->queue.v);
    while (p->free_tasks != NULL) {
        s_task_t *t = p->free_tasks;
        p->free_tasks = t->next_free;
        free(t);
    }
    free(p->idle.v);
    for (size_t i = 0; i < p->nnames; i++)
        free(p->names[i]);
    free(p->names);
}

/* The end of a run of messages: the tasks they queued and the workers
 * they freed meet here, so that a run of submits fills a worker's batch
 * instead of each waking a worker for one task. */
static int
s_pool_flush(tr_actor_t *self, void *state)
{
    s_pool_t *p = state;
    s_dispatch(self, p);
    /* The counters the control endpoint shows, at most every 20 ms. */
    uint64_t now = tr__now_ns();
    if (now - p->shown_ns > 20000000u) {
        int64_t v[8];
        s_counters(p, v);
        tr__actor_set_pool_stats(self, v);
        p->shown_ns = now;
    }
    return 0;
}

TR_BEHAVIOUR(tr_pool, .state_size = sizeof(s_pool_t), .init = s_pool_init,
             .handle = s_pool_handle, .terminate = s_pool_terminate,
             .flush = s_pool_flush);

/* ------------------------------------------------------------------ */
/* The client's side                                                   */

struct tr_pool {
    tr_node_t *node;
    tr_id_t id;
};

int
tr_pool_start(tr_node_t *node, const tr_pool_opts_t *opts, tr_pool_t **out)
{
    if (node == NULL || out == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_start: NULL %s",
                          node ? "out" : "node");
    tr_pool_opts_t o = opts ? *opts : (tr_pool_opts_t){0};
    if (o.workers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o.workers = cpus > 0 ? (int)cpus : 1;
    }
    if (o.workers < 0 || o.workers > TR__POOL_MAX_WORKERS ||
        (o.mode != TR_POOL_THREADS && o.mode != TR_POOL_PROCESSES) ||
        o.task_timeout_ms < 0)
        return tr__refuse(TR_EINVAL, "tr_pool_start: workers %d, mode %d, "
                          "task_timeout_ms %d", o.workers, (int)o.mode,
                          o.task_timeout_ms);
    if (o.max_retries == 0)
        o.max_retries = TR__POOL_RETRIES;
    else if (o.max_retries < 0)
        o.max_retries = 0;
    tr_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return TR_ENOMEM;
    tr_msg_t *args = NULL;
    int rc = tr_msg_create(&args, "pool");
    if (rc == 0 && (rc = tr_msg_add_int(args, o.mode)) == 0 &&
        (rc = tr_msg_add_int(args, o.workers)) == 0 &&
        (rc = tr_msg_add_int(args, o.max_retries)) == 0 &&
        (rc = tr_msg_add_int(args, o.task_timeout_ms)) == 0)
        rc = o.executable ? tr_msg_add_str(args, o.executable)
                          : tr_msg_add_nil(args);
    if (rc == 0 && o.nodes != NULL)
        rc = strlen(o.nodes) < 256 && o.nodes[0]
                 ? tr_msg_add_str(args, o.nodes)
                 : tr__refuse(TR_EINVAL, "tr_pool_start: nodes '%.32s'",
                              o.nodes);
    tr_spawn_opts_t so = {.name = o.name, .args = args};
    if (rc == 0)
        rc = tr_spawn(node, "tr_pool", &so, &p->id);
    tr_msg_destroy(&args);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->node = node;
    *out = p;
    return 0;
}

tr_id_t
tr_pool_id(const tr_pool_t *pool)
{
    return pool ? pool->id : 0;
}

/* Add a task's fields to a "submit"/"submits" message. */
static int
s_add_submit(tr_msg_t *m, const char *task, const tr_msg_t *a,
             int timeout_ms)
{
    size_t plen = 0;
    const void *payload = a ? tr_msg_payload(a, &plen) : NULL;
    const char *tag = a ? tr_msg_tag(a) : "args";
    size_t nlen = strlen(task), tlen = a ? a->taglen : 4;
    if (plen > UINT32_MAX)
        return TR_EMSGSIZE;
    /* One append for the four values (their heads are at most 5, 5, 5
     * and 9 bytes), written in place: the hot path of every submit. */
    uint8_t *p = tr__msg_append(m, 24 + nlen + tlen + plen), *q = p;
    if (p == NULL)
        return TR_ENOMEM;
    q += tr__mp_put_str(q, task, (uint32_t)nlen);
    q += tr__mp_put_str(q, tag, (uint32_t)tlen);
    q += tr__mp_bin(q, (uint32_t)plen);
    if (plen > 0)
        memcpy(q, payload, plen);
    q += plen;
    q += tr__mp_int(q, timeout_ms);
    m->len -= 24 + nlen + tlen + plen - (size_t)(q - p); /* what was used */
    return 0;
}

/* What s_add_submit may append at most for this task. */
static size_t
s_submit_size(const char *task, const tr_msg_t *a)
{
    size_t plen = 0;
    if (a != NULL)
        (void)tr_msg_payload(a, &plen);
    return 24 + strlen(task) + (a ? a->taglen : 4) + plen;
}

/* Room a new "submits" keeps for tasks added to it later. */
#define S_OPEN_ROOM 4096

/* Add a task to the "submits" this thread handed to the pool open, if the
 * pool has not taken it yet (transport/msg.h, tr__msg_zmq_hand_open): the
 * task goes no later than a message of its own would, and a pool that is
 * behind reads every task it was behind on in one message. Returns 1 when
 * it cannot (a message of its own then). */
static int
s_submit_append(tr_pool_t *pool, tr__port_t *port, const char *task,
                const tr_msg_t *a, int timeout_ms, tr_future_t **fut)
{
    tr_msg_t *m = port->open.msg;
    /* The asks' ids must follow each other: no other ask in between. */
    if (m == NULL || port->open.to != pool->id ||
        port->next_corr != port->open.last_corr || port->open.k == UINT32_MAX)
        return 1;
    /* Only this thread writes len (the pool reads it once it sealed the
     * message, and then begin fails): read before begin, it is right or
     * the begin fails. The buffer must not move: room is checked. */
    size_t need = s_submit_size(task, a);
    if (need > m->cap - m->len ||
        m->len + need > (size_t)pool->node->opts.max_message_bytes)
        return 1;
    int rc = tr__future_new(port, pool->id, 0, fut);
    if (rc != 0)
        return rc;
    if (!tr__msg_open_begin(m, port->open.word)) { /* the pool has it */
        port->open.msg = NULL;
        tr__future_discard(fut);
        return 1;
    }
    rc = s_add_submit(m, task, a, timeout_ms);
    if (rc == 0)
        (void)tr__mp_head(m->buf + port->open.kpos, 0xce, ++port->open.k, 4);
    tr__msg_open_end(m, port->open.word);
    if (rc != 0) {
        port->open.msg = NULL;
        tr__future_discard(fut);
        return rc;
    }
    port->open.last_corr = (*fut)->corr;
    return 0;
}

/* A task is sent as "submits" [k, task...] (k as a 4-byte uint, so that
 * later tasks can be added in place), handed open to the pool when it is
 * in this process; with a trace or chaos on (where a message is to be
 * a message), as "submit" [task]. */
int
tr_pool_submit(tr_pool_t *pool, const char *task, tr_msg_t **args,
               int timeout_ms, tr_future_t **fut)
{
    if (pool == NULL || fut == NULL || timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pool_submit: NULL pool or future, "
                          "or timeout %d", timeout_ms);
    int rc = tr__name_check(task);
    if (rc != 0)
        return rc;
    const tr_msg_t *a = args ? *args : NULL;
    tr_node_t *node = pool->node;
    tr__port_t *port = NULL;
    bool open = node->trace == NULL && node->chaos == NULL &&
                tr__port_get(node, &port) == 0;
    tr_msg_t *m = NULL;
    if (!open) { /* one message a task, "submit" */
        if ((rc = tr_msg_create(&m, "submit")) == 0 &&
            (rc = s_add_submit(m, task, a, timeout_ms)) == 0)
            rc = tr_ask_id(node, pool->id, &m, TR_FOREVER, fut);
        tr_msg_destroy(&m);
        if (rc == 0 && args != NULL)
            tr_msg_destroy(args);
        return rc;
    }
    if ((rc = s_submit_append(pool, port, task, a, timeout_ms, fut)) <= 0) {
        if (rc == 0 && args != NULL)
            tr_msg_destroy(args);
        return rc;
    }
    uint8_t *kp = NULL;
    if ((rc = tr_msg_create(&m, "submits")) == 0 &&
        (kp = tr__msg_append(m, 5)) == NULL)
        rc = TR_ENOMEM;
    size_t kpos = kp ? (size_t)(kp - m->buf) : 0;
    if (rc == 0) {
        (void)tr__mp_head(kp, 0xce, 1, 4);
        rc = s_add_submit(m, task, a, timeout_ms);
    }
    if (rc == 0) {
        size_t max = (size_t)node->opts.max_message_bytes, room = S_OPEN_ROOM;
        if (m->len + room > max)
            room = max > m->len ? max - m->len : 0;
        if (room > 0 && tr__msg_append(m, room) != NULL) {
            m->len -= room; /* room only */
            m->open = true;
        }
    }
    tr_msg_t *sent = m;
    if (rc == 0)
        rc = tr__ask_many(node, pool->id, &m, TR_FOREVER, 1, fut);
    /* Read after the send, which set it (the pool never writes it). */
    port->open.msg = NULL;
    if (rc == 0 && sent->open && sent->open_word != 0) {
        port->open.msg = sent;
        port->open.word = sent->open_word;
        port->open.to = pool->id;
        port->open.last_corr = (*fut)->corr;
        port->open.kpos = kpos;
        port->open.k = 1;
    }
    tr_msg_destroy(&m);
    if (rc == 0 && args != NULL)
        tr_msg_destroy(args);
    return rc;
}

/* k tasks in one message (what map feeds at once): futs[i] settles with
 * args[i]'s task. The args stay the caller's. */
static int
s_submit_many(tr_pool_t *pool, const char *task, tr_msg_t *const *args,
              size_t k, int timeout_ms, tr_future_t **futs)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "submits");
    if (rc == 0)
        rc = tr_msg_add_int(m, (int64_t)k);
    for (size_t i = 0; i < k && rc == 0; i++)
        rc = s_add_submit(m, task, args[i], timeout_ms);
    if (rc == 0)
        rc = tr__ask_many(pool->node, pool->id, &m, TR_FOREVER, k, futs);
    tr_msg_destroy(&m);
    return rc;
}

/* Ask the pool and read the ints of its "ok". */
static int
s_call(tr_pool_t *pool, tr_msg_t **m, int timeout_ms, int64_t *v, int n)
{
    tr_msg_t *reply = NULL;
    int rc = tr_call_id(pool->node, pool->id, m, timeout_ms, &reply);
    tr_msg_destroy(m);
    if (rc == 0 && n > 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        for (int i = 0; i < n && rc == 0; i++)
            rc = tr_read_int(&r, &v[i]);
    }
    tr_msg_destroy(&reply);
    return rc;
}

/* A "cancel" [asker, corr] for fut's task. */
static int
s_cancel_msg(tr_pool_t *pool, tr_future_t *fut, tr_msg_t **m)
{
    if (pool == NULL || fut == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_cancel: NULL argument");
    if (fut->settled || fut->target != pool->id)
        return TR_ENOENT;
    int rc = tr_msg_create(m, "cancel");
    if (rc == 0 &&
        (rc = tr_msg_add_int(*m, (int64_t)fut->port->rec->id)) == 0)
        rc = tr_msg_add_int(*m, (int64_t)fut->corr);
    return rc;
}

int
tr_pool_cancel(tr_pool_t *pool, tr_future_t *fut)
{
    tr_msg_t *m = NULL;
    int rc = s_cancel_msg(pool, fut, &m);
    if (rc == 0)
        rc = s_call(pool, &m, TR_DEFAULT, NULL, 0);
    tr_msg_destroy(&m);
    /* On 0, fut has settled already: the pool sent its TR_ECANCELED
     * before the answer, to the same inbox, and the call read both. */
    return rc;
}

int
tr_pool_cancel_async(tr_pool_t *pool, tr_future_t *fut)
{
    tr_msg_t *m = NULL;
    int rc = s_cancel_msg(pool, fut, &m);
    if (rc == 0)
        rc = tr_try_tell_id(pool->node, pool->id, &m);
    tr_msg_destroy(&m);
    return rc;
}

int
tr_pool_resize(tr_pool_t *pool, int workers)
{
    if (pool == NULL || workers < 1 || workers > TR__POOL_MAX_WORKERS)
        return tr__refuse(TR_EINVAL, "tr_pool_resize: %d workers", workers);
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "resize");
    if (rc == 0 && (rc = tr_msg_add_int(m, workers)) == 0)
        rc = s_call(pool, &m, TR_FOREVER, NULL, 0);
    tr_msg_destroy(&m);
    return rc;
}

int
tr_pool_stats(tr_pool_t *pool, tr_pool_stats_t *st)
{
    if (pool == NULL || st == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_stats: NULL argument");
    tr_msg_t *m = NULL;
    int64_t v[8];
    int rc = tr_msg_create(&m, "stats");
    if (rc == 0)
        rc = s_call(pool, &m, TR_DEFAULT, v, 8);
    tr_msg_destroy(&m);
    if (rc != 0)
        return rc;
    *st = (tr_pool_stats_t){.workers = (int)v[0],
                            .idle = (int)v[1],
                            .queued = (uint64_t)v[2],
                            .running = (uint64_t)v[3],
                            .done = (uint64_t)v[4],
                            .failed = (uint64_t)v[5],
                            .retried = (uint64_t)v[6],
                            .worker_deaths = (uint64_t)v[7]};
    return 0;
}

int
tr_pool_shutdown(tr_pool_t **poolp, bool cancel_pending, int timeout_ms)
{
    if (poolp == NULL || *poolp == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_shutdown: NULL pool");
    tr_pool_t *pool = *poolp;
    if (timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pool_shutdown: timeout %d",
                          timeout_ms);
    if (timeout_ms == TR_DEFAULT)
        timeout_ms = pool->node->opts.shutdown_timeout_ms;
    uint64_t deadline = tr__deadline_after_ms(timeout_ms);
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "shutdown");
    if (rc == 0 && (rc = tr_msg_add_bool(m, cancel_pending)) == 0)
        rc = s_call(pool, &m, timeout_ms, NULL, 0);
    tr_msg_destroy(&m);
    if (rc == TR_EDEAD || rc == TR_ENOENT)
        rc = 0; /* ended already: nothing left to wait for */
    /* Stop it whatever the answer: what still runs fails TR_ESHUTDOWN.
     * Within what is left of the time (its workers' stop takes 100 ms
     * at most: see s_pool_init), but at least that. */
    int64_t left = tr__ms_left(deadline);
    int stop_ms = left < 0 ? TR_FOREVER : left < 200 ? 200 : (int)left;
    int src = tr_stop(pool->node, pool->id, stop_ms);
    if (rc == 0 && src != 0 && src != TR_ENOENT)
        rc = src;
    *poolp = NULL;
    free(pool);
    return rc;
}

/* ------------------------------------------------------------------ */
/* map                                                                 */

/* A task of the map in flight: its future and the items it carries. */
typedef struct s_slot {
    tr_future_t *f;
    uint64_t first; /* index of its first item */
    int count;
} s_slot_t;

typedef struct s_map {
    tr_pool_t *pool;
    const char *task;
    tr_map_next_fn next;
    void *next_arg;
    tr_map_out_fn out;
    void *out_arg;
    tr_map_opts_t o;
    s_slot_t *slots; /* in submission order */
    size_t nslots;
    tr_msg_t **items; /* a chunk being built (o.chunk) */
    tr_future_t **fs; /* scratch for wait_any (o.window) */
    uint64_t fed, done;
    bool input_done;
    bool bar;        /* draw the progress bar */
    int err;         /* the first error: stop feeding */
} s_map_t;

/* Tasks map submits in one message at most. */
#define TR__MAP_FEED 64

/* Build the next task's arguments (one item, or a "$chunk" of up to
 * o.chunk) into *args; *count is 0 at the end of the input. */
static int
s_map_build(s_map_t *m, tr_msg_t **args, int *count)
{
    tr_msg_t *item = NULL;
    int rc = 0, n = 0;
    bool chunked = m->o.chunk > 1;
    tr_msg_t **items = m->items;
    while (n < (chunked ? m->o.chunk : 1)) {
        rc = m->next(m->next_arg, &item);
        if (rc == 1) {
            m->input_done = true;
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (item == NULL) {
            rc = tr__refuse(TR_EINVAL, "tr_pool_map: next gave no item");
            break;
        }
        items[n++] = item;
        item = NULL;
    }
    if (rc == 0 && n > 0) {
        if (!chunked) {
            *args = items[0];
            items[0] = NULL;
        } else if ((rc = tr__msg_create_sys(args, "$chunk")) == 0) {
            rc = tr_msg_add_int(*args, n);
            for (int i = 0; i < n && rc == 0; i++) {
                size_t plen;
                const void *p = tr_msg_payload(items[i], &plen);
                if ((rc = tr_msg_add_str(*args, tr_msg_tag(items[i]))) == 0)
                    rc = tr_msg_add_bin(*args, p, plen);
            }
        }
    }
    for (int i = 0; i < n; i++)
        tr_msg_destroy(&items[i]);
    *count = rc == 0 ? n : 0;
    return rc;
}

/* Build up to want tasks and submit them in one message. */
static int
s_map_feed(s_map_t *m, size_t want)
{
    tr_msg_t *args[TR__MAP_FEED] = {0};
    int counts[TR__MAP_FEED];
    size_t k = 0;
    int rc = 0;
    want = want < TR__MAP_FEED ? want : TR__MAP_FEED;
    while (k < want && rc == 0 && !m->input_done) {
        if ((rc = s_map_build(m, &args[k], &counts[k])) == 0 &&
            counts[k] > 0)
            k++;
    }
    if (rc == 0 && k > 0) {
        tr_future_t *fs[TR__MAP_FEED];
        rc = k == 1 ? tr_pool_submit(m->pool, m->task, &args[0],
                                     m->o.timeout_ms, &fs[0])
                    : s_submit_many(m->pool, m->task, args, k,
                                    m->o.timeout_ms, fs);
        for (size_t i = 0; i < k && rc == 0; i++) {
            m->slots[m->nslots++] = (s_slot_t){fs[i], m->fed, counts[i]};
            m->fed += (uint64_t)counts[i];
        }
    }
    for (size_t i = 0; i < k; i++)
        tr_msg_destroy(&args[i]);
    return rc;
}

/* The progress bar: "[####   ] done/total" redrawn on stderr. */
static void
s_bar(uint64_t done, uint64_t total)
{
    if (total > 0) {
        int width = 40;
        done = done > total ? total : done;
        int fill = (int)(done * (uint64_t)width / total);
        fprintf(stderr, "\r[%.*s%*s] %llu/%llu", fill,
                "########################################", width - fill, "",
                (unsigned long long)done, (unsigned long long)total);
    } else {
        fprintf(stderr, "\r%llu done", (unsigned long long)done);
    }
    fflush(stderr);
}

/* Hand a settled task's results to out, item by item. */
static int
s_map_deliver(s_map_t *m, s_slot_t *s)
{
    tr_msg_t *reply = NULL;
    int frc = tr_future_get(s->f, 0, &reply);
    int rc = 0;
    if (frc != 0 || m->o.chunk <= 1) {
        for (int i = 0; i < s->count && rc == 0; i++)
            rc = m->out(m->out_arg, s->first + (uint64_t)i, frc,
                        frc ? NULL : reply);
    } else {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        for (int i = 0; i < s->count && rc == 0; i++) {
            int64_t irc;
            char tag[TR_TAG_MAX + 2];
            const void *p;
            size_t len;
            tr_msg_t *one = NULL;
            if ((rc = tr_read_int(&r, &irc)) != 0 ||
                (rc = tr_read_str_copy(&r, tag, sizeof tag)) != 0 ||
                (rc = tr_read_bin(&r, &p, &len)) != 0)
                break;
            if (irc == 0 && (rc = tr__msg_create_sys(&one, tag)) == 0 &&
                len > 0)
                rc = tr_msg_add_raw(one, p, len);
            if (rc == 0)
                rc = m->out(m->out_arg, s->first + (uint64_t)i, (int)irc,
                            irc ? NULL : one);
            tr_msg_destroy(&one);
        }
    }
    tr_msg_destroy(&reply);
    tr_future_destroy(&s->f);
    m->done += (uint64_t)s->count;
    if (m->o.progress != NULL)
        m->o.progress(m->o.progress_arg, m->done, m->o.total);
    if (m->bar)
        s_bar(m->done, m->o.total);
    return rc;
}

int
tr_pool_map(tr_pool_t *pool, const char *task, tr_map_next_fn next,
            void *next_arg, tr_map_out_fn out, void *out_arg,
            const tr_map_opts_t *opts)
{
    if (pool == NULL || next == NULL || out == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_map: NULL pool or callback");
    int rc = tr__name_check(task);
    if (rc != 0)
        return rc;
    s_map_t m = {.pool = pool, .task = task, .next = next,
                 .next_arg = next_arg, .out = out, .out_arg = out_arg};
    if (opts != NULL)
        m.o = *opts;
    if (m.o.chunk < 0 || m.o.window < 0 || m.o.chunk > 1000000 ||
        m.o.window > 100000 || m.o.timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pool_map: chunk %d, window %d, "
                          "timeout %d", m.o.chunk, m.o.window,
                          m.o.timeout_ms);
    if (m.o.chunk == 0)
        m.o.chunk = 1;
    if (m.o.window == 0) {
        tr_pool_stats_t st;
        if ((rc = tr_pool_stats(pool, &st)) != 0)
            return rc;
        m.o.window = 16 * (st.workers > 0 ? st.workers : 1);
    }
    m.bar = m.o.progress_bar && isatty(STDERR_FILENO);
    m.slots = calloc((size_t)m.o.window, sizeof *m.slots);
    m.fs = calloc((size_t)m.o.window, sizeof *m.fs);
    m.items = calloc((size_t)m.o.chunk, sizeof *m.items);
    if (m.slots == NULL || m.fs == NULL || m.items == NULL) {
        free(m.slots);
        free(m.fs);
        free(m.items);
        return TR_ENOMEM;
    }
    /* Feed in runs (one message for many tasks) once a quarter of the
     * window is free, or when nothing is in flight. */
    size_t low = (size_t)m.o.window / 4;
    low = low == 0 ? 1 : low > TR__MAP_FEED ? TR__MAP_FEED : low;
    for (;;) {
        if (m.nslots == 0 || (size_t)m.o.window - m.nslots >= low)
            while (m.err == 0 && !m.input_done &&
                   m.nslots < (size_t)m.o.window)
                m.err = s_map_feed(&m, (size_t)m.o.window - m.nslots);
        if (m.nslots == 0)
            break;
        /* The oldest task (in order), or whichever settles first. */
        size_t at = 0;
        if (m.o.unordered) {
            for (size_t i = 0; i < m.nslots; i++)
                m.fs[i] = m.slots[i].f;
            rc = tr_future_wait_any(m.fs, m.nslots, TR_FOREVER, &at);
        } else {
            rc = tr_future_wait(m.slots[0].f, TR_FOREVER);
        }
        if (rc != 0) { /* this thread is being stopped */
            if (m.err == 0)
                m.err = rc;
            for (size_t i = 0; i < m.nslots; i++)
                tr_future_destroy(&m.slots[i].f);
            m.nslots = 0;
            break;
        }
        s_slot_t s = m.slots[at];
        memmove(m.slots + at, m.slots + at + 1,
                (m.nslots - at - 1) * sizeof *m.slots);
        m.nslots--;
        if (m.err != 0) {
            tr_future_destroy(&s.f); /* stopping: results dropped */
            continue;
        }
        m.err = s_map_deliver(&m, &s);
    }
    if (m.bar)
        fputc('\n', stderr);
    free(m.slots);
    free(m.fs);
    free(m.items);
    return m.err;
}

/* tr_pool_map_array's input and output. */
typedef struct s_array {
    tr_msg_t *const *in;
    size_t n, at;
    tr_msg_t **out;
    int *rcs;
} s_array_t;

static int
s_array_next(void *arg, tr_msg_t **item)
{
    s_array_t *a = arg;
    if (a->at == a->n)
        return 1;
    if (a->in[a->at] == NULL)
        return tr__refuse(TR_EINVAL, "tr_pool_map_array: in[%zu] is NULL",
                          a->at);
    return tr_msg_dup(a->in[a->at++], item);
}

static int
s_array_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_array_t *a = arg;
    if (a->rcs != NULL)
        a->rcs[index] = rc;
    a->out[index] = NULL;
    return result ? tr_msg_dup(result, &a->out[index]) : 0;
}

int
tr_pool_map_array(tr_pool_t *pool, const char *task, tr_msg_t *const *in,
                  size_t n, tr_msg_t **out, int *rcs,
                  const tr_map_opts_t *opts)
{
    if (pool == NULL || (n > 0 && (in == NULL || out == NULL)))
        return tr__refuse(TR_EINVAL, "tr_pool_map_array: NULL argument");
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    s_array_t a = {.in = in, .n = n, .out = out, .rcs = rcs};
    tr_map_opts_t o = opts ? *opts : (tr_map_opts_t){0};
    if (o.total == 0)
        o.total = n;
    int rc = tr_pool_map(pool, task, s_array_next, &a, s_array_out, &a, &o);
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            tr_msg_destroy(&out[i]);
    return rc;
}

/* ------------------------------------------------------------------ */
/* map over a plain array                                              */

/* A chunk in flight: its future and the items it covers. */
typedef struct s_ichunk {
    tr_future_t *f;
    size_t first, count;
} s_ichunk_t;

/* Copy a settled chunk's results out; the chunk's error, or 0. */
static int
s_items_take(tr_future_t *f, const s_ichunk_t *c, void *out, size_t osz)
{
    tr_msg_t *reply = NULL;
    int rc = tr_future_get(f, 0, &reply);
    if (rc == 0) {
        tr_reader_t r;
        const void *p;
        size_t len;
        tr_reader_init(&r, reply);
        if (tr_read_bin(&r, &p, &len) != 0 || len != c->count * osz)
            rc = TR_EPROTO;
        else if (len > 0)
            memcpy((char *)out + c->first * osz, p, len);
    }
    tr_msg_destroy(&reply);
    return rc;
}

int
tr_pool_map_items(tr_pool_t *pool, const char *task, const void *in,
                  size_t in_size, void *out, size_t out_size, size_t n,
                  int *rcs, const tr_map_opts_t *opts)
{
    if (pool == NULL || in_size == 0 || (n > 0 && in == NULL) ||
        (n > 0 && out_size > 0 && out == NULL) || in_size > UINT32_MAX ||
        out_size > UINT32_MAX)
        return tr__refuse(TR_EINVAL, "tr_pool_map_items: NULL pool or "
                          "array, or item size %zu/%zu", in_size, out_size);
    int rc = tr__name_check(task);
    if (rc != 0)
        return rc;
    tr_map_opts_t o = opts ? *opts : (tr_map_opts_t){0};
    if (o.chunk < 0 || o.window < 0 || o.window > 100000 ||
        o.timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pool_map_items: chunk %d, window "
                          "%d, timeout %d", o.chunk, o.window, o.timeout_ms);
    if (n == 0)
        return 0;
    size_t big = in_size > out_size ? in_size : out_size;
    size_t most = (UINT32_MAX - 64) / big; /* one msgpack bin a chunk */
    if (o.chunk == 0 || o.window == 0) {
        tr_pool_stats_t st;
        if ((rc = tr_pool_stats(pool, &st)) != 0)
            return rc;
        size_t w = st.workers > 0 ? (size_t)st.workers : 1;
        if (o.window == 0)
            o.window = 4 * (int)w;
        if (o.chunk == 0) {
            size_t c = (n + 4 * w - 1) / (4 * w), cap = ((size_t)1 << 20) / big;
            c = c < cap ? c : cap;
            o.chunk = c == 0 ? 1 : c > INT32_MAX ? INT32_MAX : (int)c;
        }
    }
    size_t chunk = (size_t)o.chunk < most ? (size_t)o.chunk : most;
    if (chunk == 0)
        return tr__refuse(TR_EINVAL, "tr_pool_map_items: items of %zu "
                          "bytes are too large", big);
    if (o.total == 0)
        o.total = n;
    bool bar = o.progress_bar && isatty(STDERR_FILENO);
    s_ichunk_t *cs = calloc((size_t)o.window, sizeof *cs);
    tr_future_t **fs = calloc((size_t)o.window, sizeof *fs);
    if (cs == NULL || fs == NULL) {
        free(cs);
        free(fs);
        return TR_ENOMEM;
    }
    size_t fed = 0, nf = 0;
    uint64_t done = 0;
    int err = 0, first_fail = 0;
    for (;;) {
        while (err == 0 && fed < n && nf < (size_t)o.window) {
            size_t count = n - fed < chunk ? n - fed : chunk;
            tr_msg_t *a = NULL;
            tr_future_t *f = NULL;
            if ((rc = tr__msg_create_sys(&a, "$items")) == 0 &&
                (rc = tr_msg_add_uint(a, in_size)) == 0 &&
                (rc = tr_msg_add_uint(a, out_size)) == 0 &&
                (rc = tr_msg_add_bin(a, (const char *)in + fed * in_size,
                                     count * in_size)) == 0)
                rc = tr_pool_submit(pool, task, &a, o.timeout_ms, &f);
            tr_msg_destroy(&a);
            if (rc != 0) {
                err = rc;
                break;
            }
            /* A chunk's slot is found again by its future's place. */
            cs[nf] = (s_ichunk_t){f, fed, count};
            fs[nf++] = f;
            fed += count;
        }
        if (nf == 0)
            break;
        tr_future_t *f;
        size_t before = nf;
        rc = tr_future_next_done(fs, &nf, TR_FOREVER, &f);
        if (rc != 0) { /* this thread is being stopped */
            err = err ? err : rc;
            for (size_t i = 0; i < nf; i++)
                tr_future_destroy(&fs[i]);
            break;
        }
        /* next_done moved the last future into the settled one's place:
         * do the same with the chunks. */
        size_t at = 0;
        while (cs[at].f != f)
            at++;
        s_ichunk_t c = cs[at];
        cs[at] = cs[before - 1];
        int crc = s_items_take(f, &c, out, out_size);
        tr_future_destroy(&f);
        if (crc != 0 && first_fail == 0)
            first_fail = crc;
        if (rcs != NULL)
            for (size_t i = 0; i < c.count; i++)
                rcs[c.first + i] = crc;
        done += c.count;
        if (o.progress != NULL)
            o.progress(o.progress_arg, done, o.total);
        if (bar)
            s_bar(done, o.total);
    }
    if (bar)
        fputc('\n', stderr);
    free(cs);
    free(fs);
    if (err != 0)
        return err;
    return rcs == NULL ? first_fail : 0;
}
