/* actors/pipeline.c - pipelines: producers, stages (each a pool) and a
 * sink, joined with credit-based flow.
 *
 * A pipeline actor ("tr_pipeline", a thread of the node) joins the
 * stages. Producers ask it to take a batch of items ("put"); it answers
 * once the first stage has room, so a producer with a few batches
 * unanswered waits: back-pressure. It hands batches to each stage's pool
 * as tasks (the internal task "tr_pipe_stage", which runs the stage's
 * function on each item of the batch in a worker), at most a window of
 * them at a time, and only while the next stage's queue has room; a
 * task's answer holds the batch's output, cut into one batch per
 * partition of the next stage. The sink asks for items ("pull") and gets
 * what came out of the last stage.
 *
 * What this is not: a dataflow engine with checkpoints. Exactly-once
 * rests on three things: the pool re-runs a batch whose worker died and
 * settles its future once, so the pipeline accepts each batch's output
 * once; a stateful partition (a stage with a finish or a state) whose
 * worker died is rebuilt by running its input again from a log the
 * pipeline keeps, the outputs it had already accepted being dropped by
 * batch number; and the sink drops any item whose id (index, sub) it has
 * seen. A stage function must therefore emit the same items for the same
 * input.
 *
 * Items travel as records in a batch (a msgpack bin of records,
 * little-endian, as the envelope is): seq (the index) u64,
 * sub (tells apart the items one input item became) u64, rc i32, tag
 * length u8, payload length u32, tag, payload.
 */
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/pool.h"
#include "runtime/deftab.h"
#include "runtime/future.h"
#include "runtime/place.h"
#include "runtime/behaviour.h"
#include "runtime/map.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/msg.h"
#include "troupe.h"

#define S_MAX_STAGES 64
#define S_MAX_WORKERS 1024
#define S_MAX_PRODUCERS 1024
#define S_TASK "tr_pipe_stage"
#define S_REC_HDR 25

/* ------------------------------------------------------------------ */
/* Records                                                             */

typedef struct s_buf {
    uint8_t *p;
    size_t len, cap;
} s_buf_t;

static int
s_buf_room(s_buf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *np = realloc(b->p, cap);
    if (np == NULL)
        return TR_ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int
s_buf_add(s_buf_t *b, const void *p, size_t len)
{
    int rc = s_buf_room(b, len);
    if (rc == 0 && len > 0) {
        memcpy(b->p + b->len, p, len);
        b->len += len;
    }
    return rc;
}

static void
s_buf_free(s_buf_t *b)
{
    free(b->p);
    *b = (s_buf_t){0};
}

typedef struct s_rec {
    uint64_t seq, sub;
    int32_t rc;
    uint8_t taglen;
    uint32_t plen;
    const char *tag;
    const uint8_t *payload;
    size_t size; /* the whole record */
} s_rec_t;

static int
s_rec_put(s_buf_t *b, uint64_t seq, uint64_t sub, int32_t rc,
          const char *tag, size_t taglen, const void *payload, size_t plen)
{
    if (taglen > TR_TAG_MAX || plen > UINT32_MAX)
        return TR_EINVAL;
    int e = s_buf_room(b, S_REC_HDR + taglen + plen);
    if (e != 0)
        return e;
    uint8_t *p = b->p + b->len;
    uint32_t pl = htole32((uint32_t)plen), urc = htole32((uint32_t)rc);
    seq = htole64(seq);
    sub = htole64(sub);
    memcpy(p, &seq, 8);
    memcpy(p + 8, &sub, 8);
    memcpy(p + 16, &urc, 4);
    p[20] = (uint8_t)taglen;
    memcpy(p + 21, &pl, 4);
    if (taglen > 0)
        memcpy(p + S_REC_HDR, tag, taglen);
    if (plen > 0)
        memcpy(p + S_REC_HDR + taglen, payload, plen);
    b->len += S_REC_HDR + taglen + plen;
    return 0;
}

/* The record at off of p[0..len): false if it is cut short. */
static bool
s_rec_get(const uint8_t *p, size_t len, size_t off, s_rec_t *r)
{
    if (off > len || len - off < S_REC_HDR)
        return false;
    p += off;
    uint32_t urc;
    memcpy(&r->seq, p, 8);
    memcpy(&r->sub, p + 8, 8);
    memcpy(&urc, p + 16, 4);
    r->seq = le64toh(r->seq);
    r->sub = le64toh(r->sub);
    r->rc = (int32_t)le32toh(urc);
    r->taglen = p[20];
    memcpy(&r->plen, p + 21, 4);
    r->plen = le32toh(r->plen);
    if (r->taglen > TR_TAG_MAX ||
        len - off - S_REC_HDR < (size_t)r->taglen + r->plen)
        return false;
    r->tag = (const char *)p + S_REC_HDR;
    r->payload = p + S_REC_HDR + r->taglen;
    r->size = S_REC_HDR + (size_t)r->taglen + r->plen;
    return true;
}

/* The record's item as a message (payload bytes made by troupe). */
static int
s_rec_msg(const s_rec_t *r, tr_msg_t **out)
{
    char tag[TR_TAG_MAX + 1];
    memcpy(tag, r->tag, r->taglen);
    tag[r->taglen] = 0;
    int rc = tr__msg_create_sys(out, r->taglen ? tag : "item");
    if (rc == 0 && r->plen > 0 &&
        (rc = tr__msg_add_trusted(*out, r->payload, r->plen)) != 0)
        tr_msg_destroy(out);
    return rc;
}

/* splitmix64's finaliser: ids and partitions from numbers. */
static uint64_t
s_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* FNV-1a, mixed: a key's partition. */
static uint64_t
s_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return s_mix(h);
}

/* ------------------------------------------------------------------ */
/* Stage functions by name                                             */

static tr__deftab_t s_defs = TR__DEFTAB_INIT(tr_stage_def_t);

static bool
s_def_find(const char *name, tr_stage_def_t *def)
{
    return tr__deftab_find(&s_defs, name, def);
}

int
tr_stage_register(const char *name, const tr_stage_def_t *def)
{
    int rc = tr__name_check(name);
    if (rc != 0)
        return rc;
    if (def == NULL || def->fn == NULL)
        return tr__refuse(TR_EINVAL, "stage '%s': no function", name);
    if (tr__task_fn(name) != NULL)
        return TR_EEXIST;
    return tr__deftab_add(&s_defs, name, def);
}

void
tr__stage_register_static(const char *name, const tr_stage_def_t *d)
{
    int rc = tr_stage_register(name, d);
    if (rc != 0) {
        fprintf(stderr, "troupe: cannot register stage '%s': %s\n", name,
                tr_strerror(rc));
        abort();
    }
}

/* ------------------------------------------------------------------ */
/* The worker's side: the task that runs a stage on a batch            */

struct tr_pipe_ctx {
    int stage;
    int nparts;       /* of the next stage */
    s_buf_t *outs;    /* one per partition */
    uint64_t *counts; /* items in each */
    uint64_t *mins;   /* the least index in each */
    uint64_t seq, sub; /* of the item being run */
    uint32_t k;       /* items it emitted so far */
};

static int
s_emit(tr_pipe_ctx_t *ctx, bool keyed, uint64_t h, tr_msg_t **item)
{
    if (ctx == NULL || item == NULL || *item == NULL)
        return tr__refuse(TR_EINVAL, "tr_pipe_emit: NULL argument");
    /* The k-th item made from (seq, sub) at this stage: an id that the
     * same run of the same input gives again. */
    uint64_t sub = s_mix(ctx->sub ^ s_mix(((uint64_t)ctx->stage << 40) +
                                          (uint64_t)ctx->k + 1));
    int p = 0;
    if (ctx->nparts > 1)
        p = (int)((keyed ? h : s_mix(ctx->seq ^ sub)) %
                  (uint64_t)ctx->nparts);
    size_t plen;
    const void *pl = tr_msg_payload(*item, &plen);
    const char *tag = tr_msg_tag(*item);
    int rc = s_rec_put(&ctx->outs[p], ctx->seq, sub, 0, tag, strlen(tag),
                       pl, plen);
    if (rc != 0)
        return rc;
    ctx->k++;
    ctx->counts[p]++;
    if (ctx->seq < ctx->mins[p])
        ctx->mins[p] = ctx->seq;
    tr_msg_destroy(item);
    return 0;
}

int
tr_pipe_emit(tr_pipe_ctx_t *ctx, tr_msg_t **item)
{
    return s_emit(ctx, false, 0, item);
}

int
tr_pipe_emit_key(tr_pipe_ctx_t *ctx, const void *key, size_t len,
                 tr_msg_t **item)
{
    if (key == NULL && len > 0)
        return tr__refuse(TR_EINVAL, "tr_pipe_emit_key: NULL key");
    return s_emit(ctx, true, s_hash(key, len), item);
}

/* A stateful stage's state in a worker: per (pipeline, stage, partition),
 * on the worker's thread. applied counts the batches it has taken. */
typedef struct s_wstate {
    uint64_t run;
    int stage, part;
    uint64_t applied;
    void *state;
    struct s_wstate *next;
} s_wstate_t;

static pthread_key_t s_wkey;
static pthread_once_t s_wonce = PTHREAD_ONCE_INIT;

static void
s_wfree(void *p)
{
    for (s_wstate_t *w = p, *n; w != NULL; w = n) {
        n = w->next;
        free(w->state);
        free(w);
    }
}

static void
s_wkey_make(void)
{
    (void)pthread_key_create(&s_wkey, s_wfree);
}

static s_wstate_t *
s_wstate(uint64_t run, int stage, int part, size_t size)
{
    (void)pthread_once(&s_wonce, s_wkey_make);
    s_wstate_t *head = pthread_getspecific(s_wkey);
    for (s_wstate_t *w = head; w != NULL; w = w->next)
        if (w->run == run && w->stage == stage && w->part == part)
            return w;
    s_wstate_t *w = calloc(1, sizeof *w);
    if (w == NULL || (size > 0 && (w->state = calloc(1, size)) == NULL)) {
        free(w);
        return NULL;
    }
    *w = (s_wstate_t){.run = run, .stage = stage, .part = part,
                      .state = w->state, .next = head};
    (void)pthread_setspecific(s_wkey, w);
    return w;
}

static void
s_wstate_drop(s_wstate_t *w)
{
    s_wstate_t *head = pthread_getspecific(s_wkey);
    if (head == w) {
        head = w->next;
    } else {
        for (s_wstate_t *x = head; x != NULL; x = x->next)
            if (x->next == w) {
                x->next = w->next;
                break;
            }
    }
    (void)pthread_setspecific(s_wkey, head);
    free(w->state);
    free(w);
}

/* The task's arguments, in this order. */
typedef struct s_targs {
    char fn[TR_NAME_MAX + 1];
    uint64_t run;
    int64_t stage, part;
    uint64_t kfirst, k;
    bool finish;
    int64_t nparts;
    const void *recs;
    size_t len;
} s_targs_t;

static int
s_targs_read(const tr_msg_t *args, s_targs_t *a)
{
    tr_reader_t r;
    tr_reader_init(&r, args);
    if (tr_read_str_copy(&r, a->fn, sizeof a->fn) != 0 ||
        tr_read_uint(&r, &a->run) != 0 || tr_read_int(&r, &a->stage) != 0 ||
        tr_read_int(&r, &a->part) != 0 ||
        tr_read_uint(&r, &a->kfirst) != 0 || tr_read_uint(&r, &a->k) != 0 ||
        tr_read_bool(&r, &a->finish) != 0 ||
        tr_read_int(&r, &a->nparts) != 0 ||
        tr_read_bin(&r, &a->recs, &a->len) != 0 || a->nparts < 1 ||
        a->nparts > S_MAX_WORKERS)
        return TR_EPROTO;
    return 0;
}

/* Run one item through a stage function or a task function. */
static int
s_run_item(tr_pipe_ctx_t *ctx, const tr_stage_def_t *def, tr_task_fn task,
           void *state, const s_rec_t *r)
{
    tr_msg_t *m = NULL;
    int rc = s_rec_msg(r, &m);
    if (rc != 0)
        return rc;
    if (task != NULL) {
        tr_msg_t *res = NULL;
        rc = task(m, &res);
        if (rc == 0 && res != NULL)
            rc = tr_pipe_emit(ctx, &res);
        tr_msg_destroy(&res);
    } else {
        rc = def->fn(ctx, state, m);
    }
    tr_msg_destroy(&m);
    return rc > 0 ? TR_EFAILED : rc;
}

/* "tr_pipe_stage": [fn, run, stage, part, kfirst, k, finish, nparts,
 * records] (kfirst..k: the stateful batches the records are, in order)
 * -> "out" [nparts, (count, least index, records) x nparts]. */
static int
s_stage_task(const tr_msg_t *args, tr_msg_t **result)
{
    s_targs_t a;
    int rc = s_targs_read(args, &a);
    if (rc != 0)
        return rc;
    tr_stage_def_t def = {0};
    tr_task_fn task = NULL;
    if (!s_def_find(a.fn, &def) && (task = tr__task_fn(a.fn)) == NULL) {
        tr_log(TR_LOG_WARN, "pipeline", "no stage or task '%s'", a.fn);
        return TR_ENOENT;
    }
    bool stateful = task == NULL && (def.finish != NULL ||
                                     def.state_size > 0);
    s_wstate_t *ws = NULL;
    if (stateful) {
        if ((ws = s_wstate(a.run, (int)a.stage, (int)a.part,
                           def.state_size)) == NULL)
            return TR_ENOMEM;
        /* A worker that has not seen the batches before these (it
         * replaced one that died): the pipeline runs them again first.
         * One that has seen these (a copy of a task) does nothing. */
        if (ws->applied < a.k && ws->applied + 1 != a.kfirst)
            return TR_ERESTARTING;
    }
    size_t np = (size_t)a.nparts;
    s_buf_t *outs = calloc(np, sizeof *outs);
    uint64_t *counts = calloc(np, sizeof *counts);
    uint64_t *mins = malloc(np * sizeof *mins);
    if (outs == NULL || counts == NULL || mins == NULL) {
        rc = TR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < np; i++)
        mins[i] = UINT64_MAX;
    tr_pipe_ctx_t ctx = {.stage = (int)a.stage, .nparts = (int)a.nparts,
                         .outs = outs, .counts = counts, .mins = mins};
    if (stateful && ws->applied >= a.k) {
        /* Taken already: what it gave was accepted then. */
    } else if (a.finish) {
        ctx.seq = TR_PIPE_NO_INDEX;
        ctx.sub = s_mix(((uint64_t)a.stage << 32) | (uint64_t)a.part);
        if (def.finish != NULL && ws != NULL) { /* (stateful) */
            int frc = def.finish(&ctx, ws->state);
            if (frc != 0)
                tr_log(TR_LOG_WARN, "pipeline", "stage '%s' finish: %s",
                       a.fn, tr_strerror(frc));
        }
    } else {
        const uint8_t *p = a.recs;
        s_rec_t r;
        for (size_t off = 0; off < a.len && rc == 0; off += r.size) {
            if (!s_rec_get(p, a.len, off, &r)) {
                rc = TR_EPROTO;
                break;
            }
            ctx.seq = r.seq;
            ctx.sub = r.sub;
            ctx.k = 0;
            int irc = r.rc;
            if (irc == 0)
                irc = s_run_item(&ctx, &def, task, ws ? ws->state : NULL,
                                 &r);
            if (irc == TR_ENOMEM) {
                rc = irc;
            } else if (irc != 0) {
                /* The item reaches the sink as its error. */
                int ep = np > 1 ? (int)(s_mix(r.seq ^ r.sub) % np) : 0;
                if ((rc = s_rec_put(&outs[ep], r.seq, r.sub, irc, "", 0,
                                    NULL, 0)) == 0) {
                    counts[ep]++;
                    mins[ep] = r.seq < mins[ep] ? r.seq : mins[ep];
                }
            }
        }
    }
    if (rc == 0 && (rc = tr_msg_create(result, "out")) == 0 &&
        (rc = tr_msg_add_int(*result, (int64_t)np)) == 0)
        for (size_t i = 0; i < np && rc == 0; i++)
            if ((rc = tr_msg_add_uint(*result, counts[i])) == 0 &&
                (rc = tr_msg_add_uint(*result, mins[i])) == 0)
                rc = tr_msg_add_bin(*result, outs[i].p, outs[i].len);
    if (rc != 0)
        tr_msg_destroy(result);
    else if (stateful && a.finish)
        s_wstate_drop(ws);
    else if (stateful && ws->applied < a.k)
        ws->applied = a.k;
done:
    for (size_t i = 0; outs != NULL && i < np; i++)
        s_buf_free(&outs[i]);
    free(outs);
    free(counts);
    free(mins);
    return rc;
}

TR_TASK(tr_pipe_stage, s_stage_task);

/* ------------------------------------------------------------------ */
/* The pipeline's description, shared by its actor and its clients    */

typedef struct s_stage_cfg {
    char name[TR_NAME_MAX + 1];
    char fn[TR_NAME_MAX + 1];
    int workers;
    tr_place_kind_t place;
    char node[TR_NAME_MAX + 1];
    bool keyed, stateful;
    int nparts;        /* keyed: workers, one pool each; else 1 */
    tr_pool_t **pools; /* nparts */
} s_stage_cfg_t;

/* A producer's side (used by one thread at a time). */
typedef struct s_prod {
    s_buf_t buf;
    uint64_t n, min;    /* items batched, the least index */
    uint64_t next;      /* the next item's number */
    tr_future_t **fs;   /* puts unanswered, oldest first */
    int nfs;
    bool ended;
} s_prod_t;

/* The sink's side. */
typedef struct s_sink {
    tr_future_t *pull;  /* the pull asked and not yet taken */
    tr_msg_t *cur;      /* the batch being handed out */
    const uint8_t *p;
    size_t len, off;
    bool end;
} s_sink_t;

struct tr_pipeline {
    tr_node_t *node;
    tr_id_t id;
    int nstages;
    s_stage_cfg_t *stages;
    int producers, batch, window, max_retries;
    bool ordered;
    s_prod_t *prods;
    s_sink_t sink;
};

/* ------------------------------------------------------------------ */
/* The pipeline actor                                                  */

typedef struct s_cond s_cond_t;

typedef struct s_batch {
    struct s_batch *next;
    s_buf_t b;
    uint64_t n, min;
    uint64_t k;         /* stateful: its number in the partition's log */
    uint64_t kfirst;    /* a replay: the first of the numbers it holds */
    bool finish, logged, replay;
    int stage, part;
    tr_future_t *f;
    s_cond_t *c;
} s_batch_t;

typedef struct s_part {
    tr_pool_t *pool;
    s_batch_t *qh, *qt; /* queued, oldest first */
    uint64_t qitems;
    s_batch_t **fly;    /* handed to the pool */
    int nfly, window;
    bool stateful;
    s_batch_t **log;    /* stateful: every batch taken, in order */
    size_t nlog, caplog, resend;
    uint64_t done_k;    /* batches whose output was accepted */
    uint64_t held_min;  /* stateful: the least index it has taken */
    bool finish_sent, finished;
} s_part_t;

typedef struct s_cstage {
    s_part_t *parts;
    int nparts;
    uint64_t limit;     /* queued items above which upstream waits */
    uint64_t maxb;      /* items a batch is coalesced up to */
    bool input_done, done;
} s_cstage_t;

/* A record waiting in the ordered sink. */
typedef struct s_oref {
    uint64_t seq, arrival;
    size_t off, size;
} s_oref_t;

struct s_cond {
    tr_pipeline_t *cfg;
    tr_actor_t *self;
    s_cstage_t *st;
    int n;
    uint64_t *prod_next;
    bool *prod_ended;
    int nended;
    tr_msg_t **held;    /* puts held back, oldest first */
    size_t nheld, capheld;
    tr_msg_t *pull;     /* the sink's pull, held */
    tr_id_t pulled_by;  /* the last pull answered: its asker and ask */
    uint64_t pulled_corr;
    s_buf_t ready;
    uint64_t nready, sink_limit;
    s_buf_t opend;      /* ordered: records waiting for their turn */
    s_oref_t *ord;
    size_t nord, capord;
    uint64_t arrival;
    tr__map_t seen;     /* ids at the sink, above `pruned` */
    uint64_t pruned;
    size_t prune_at;
    uint64_t in, out, inside, max_inside, nheld_total, replayed, dups;
    /* Ordered, no stateful stage: producers are held back while they are
     * this far ahead of the watermark (what the sink would hold). */
    uint64_t reorder;
};

static void s_pump(s_cond_t *c);

static void
s_count_inside(s_cond_t *c, int64_t d)
{
    c->inside = (uint64_t)((int64_t)c->inside + d);
    if (c->inside > c->max_inside)
        c->max_inside = c->inside;
}

/* The least index still inside: producers still putting, batches queued
 * or running, stateful partitions not finished. */
static uint64_t
s_watermark(s_cond_t *c)
{
    uint64_t wm = UINT64_MAX, P = (uint64_t)c->cfg->producers;
    for (uint64_t p = 0; p < P; p++)
        if (!c->prod_ended[p] && c->prod_next[p] * P + p < wm)
            wm = c->prod_next[p] * P + p;
    for (int s = 0; s < c->n; s++)
        for (int i = 0; i < c->st[s].nparts; i++) {
            s_part_t *pt = &c->st[s].parts[i];
            for (s_batch_t *b = pt->qh; b != NULL; b = b->next)
                wm = b->min < wm ? b->min : wm;
            for (int j = 0; j < pt->nfly; j++)
                if (!pt->fly[j]->replay && pt->fly[j]->min < wm)
                    wm = pt->fly[j]->min;
            if (pt->stateful && !pt->finished && pt->held_min < wm)
                wm = pt->held_min;
        }
    return wm;
}

static bool
s_all_done(s_cond_t *c)
{
    return c->nended == c->cfg->producers && c->nheld == 0 &&
           c->st[c->n - 1].done;
}

/* Drop from the seen set the ids below the watermark: nothing that
 * could still come has such an index (what would is a duplicate). */
static void
s_prune(s_cond_t *c, uint64_t wm)
{
    if (c->seen.len < c->prune_at)
        return;
    size_t cap = c->seen.len;
    uint64_t *dead = malloc(cap * sizeof *dead);
    if (dead != NULL) {
        size_t k = 0;
        TR__MAP_EACH(&c->seen, slot)
        {
            uint64_t seq = (uint64_t)(uintptr_t)slot->val - 1;
            if (seq < wm && k < cap)
                dead[k++] = slot->key;
        }
        for (size_t i = 0; i < k; i++)
            (void)tr__map_del(&c->seen, dead[i]);
        free(dead);
        c->pruned = wm;
    }
    c->prune_at = c->seen.len * 2 > 4096 ? c->seen.len * 2 : 4096;
}

/* True (and counted) when the sink has had this item already. */
static bool
s_dup(s_cond_t *c, const s_rec_t *r)
{
    if (r->seq != TR_PIPE_NO_INDEX && r->seq < c->pruned) {
        c->dups++;
        return true;
    }
    uint64_t key = s_mix(r->seq ^ s_mix(r->sub)) | 1;
    if (tr__map_get(&c->seen, key) != NULL) {
        c->dups++;
        return true;
    }
    uintptr_t v = r->seq == TR_PIPE_NO_INDEX ? UINTPTR_MAX
                                             : (uintptr_t)r->seq + 1;
    (void)tr__map_put(&c->seen, key, (void *)v);
    return false;
}

/* Records that came out of the last stage. */
static void
s_to_sink(s_cond_t *c, const uint8_t *p, size_t len)
{
    s_rec_t r;
    for (size_t off = 0; off < len; off += r.size) {
        if (!s_rec_get(p, len, off, &r)) {
            tr_log(TR_LOG_WARN, "pipeline", "malformed batch dropped");
            return;
        }
        if (s_dup(c, &r))
            continue;
        int rc = 0;
        if (c->cfg->ordered) {
            size_t at = c->opend.len;
            if ((rc = s_buf_add(&c->opend, p + off, r.size)) == 0 &&
                (rc = tr__grow((void **)&c->ord, c->nord, &c->capord,
                               sizeof *c->ord, 256)) == 0)
                c->ord[c->nord++] = (s_oref_t){r.seq, c->arrival++, at,
                                               r.size};
        } else if ((rc = s_buf_add(&c->ready, p + off, r.size)) == 0) {
            c->nready++;
        }
        if (rc == 0)
            s_count_inside(c, 1);
        else
            tr_log(TR_LOG_ERROR, "pipeline", "sink: %s", tr_strerror(rc));
    }
}

static int
s_oref_cmp(const void *a, const void *b)
{
    const s_oref_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Ordered: move what is below the watermark, in index order, to ready. */
static void
s_release_ordered(s_cond_t *c, uint64_t wm, bool all)
{
    size_t k = 0;
    for (size_t i = 0; i < c->nord; i++)
        k += all || c->ord[i].seq < wm;
    if (k == 0)
        return;
    qsort(c->ord, c->nord, sizeof *c->ord, s_oref_cmp);
    /* The first k are ready (sorted by index, released below wm). */
    s_buf_t rest = {0};
    size_t i = 0;
    for (; i < k; i++) {
        if (s_buf_add(&c->ready, c->opend.p + c->ord[i].off,
                      c->ord[i].size) != 0)
            break;
        c->nready++;
    }
    size_t nrest = 0;
    for (size_t j = i; j < c->nord; j++) {
        size_t at = rest.len;
        if (s_buf_add(&rest, c->opend.p + c->ord[j].off, c->ord[j].size)
            != 0)
            continue; /* out of memory: lost, and logged */
        c->ord[nrest] = c->ord[j];
        c->ord[nrest++].off = at;
    }
    if (nrest + i < c->nord)
        tr_log(TR_LOG_ERROR, "pipeline", "ordered sink: out of memory");
    s_buf_free(&c->opend);
    c->opend = rest;
    c->nord = nrest;
}

/* Answer the sink's pull if there is something to say. */
static void
s_serve(s_cond_t *c)
{
    bool all = s_all_done(c);
    if (c->cfg->ordered || c->seen.len >= c->prune_at) {
        uint64_t wm = s_watermark(c);
        if (c->cfg->ordered)
            s_release_ordered(c, wm, all);
        s_prune(c, wm);
    }
    if (c->pull == NULL)
        return;
    tr_msg_t *m = NULL;
    int rc = 0;
    if (c->nready > 0) {
        if ((rc = tr_msg_create(&m, "items")) == 0 &&
            (rc = tr_msg_add_uint(m, c->nready)) == 0)
            rc = tr_msg_add_bin(m, c->ready.p, c->ready.len);
    } else if (all && c->nord == 0) {
        rc = tr_msg_create(&m, "end");
    } else {
        return;
    }
    if (rc == 0)
        rc = tr_reply(c->self, c->pull, &m);
    tr_msg_destroy(&m);
    if (rc != 0) {
        tr_log(TR_LOG_WARN, "pipeline", "cannot answer the sink: %s",
               tr_strerror(rc));
        (void)tr_reply_error(c->self, c->pull, rc);
        return; /* the pull is dropped; the items wait for the next */
    }
    c->pulled_by = tr_msg_sender(c->pull);
    c->pulled_corr = c->pull->env.corr;
    tr_msg_destroy(&c->pull);
    s_count_inside(c, -(int64_t)c->nready);
    c->out += c->nready;
    c->nready = 0;
    c->ready.len = 0;
    s_pump(c); /* room at the sink again */
}

/* Queue records for partition pi of stage s (coalesced into the last
 * queued batch while it is small). */
static int
s_enqueue(s_cond_t *c, int s, int pi, const uint8_t *p, size_t len,
          uint64_t n, uint64_t min)
{
    if (n == 0)
        return 0;
    s_cstage_t *st = &c->st[s];
    s_part_t *pt = &st->parts[pi];
    s_batch_t *b = pt->qt;
    if (b == NULL || b->n + n > st->maxb) {
        if ((b = calloc(1, sizeof *b)) == NULL)
            return TR_ENOMEM;
        *b = (s_batch_t){.min = UINT64_MAX, .stage = s, .part = pi,
                         .c = c};
        if (pt->qt != NULL)
            pt->qt->next = b;
        else
            pt->qh = b;
        pt->qt = b;
    }
    int rc = s_buf_add(&b->b, p, len);
    if (rc != 0)
        return rc;
    b->n += n;
    b->min = min < b->min ? min : b->min;
    pt->qitems += n;
    s_count_inside(c, (int64_t)n);
    return 0;
}

/* Records for stage s, cut by partition if it has several. */
static int
s_route(s_cond_t *c, int s, const uint8_t *p, size_t len, uint64_t n,
        uint64_t min)
{
    if (s == c->n) {
        s_to_sink(c, p, len);
        return 0;
    }
    int np = c->st[s].nparts;
    if (np == 1)
        return s_enqueue(c, s, 0, p, len, n, min);
    s_rec_t r;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += r.size) {
        if (!s_rec_get(p, len, off, &r))
            return TR_EPROTO;
        int pi = (int)(s_mix(r.seq ^ r.sub) % (uint64_t)np);
        rc = s_enqueue(c, s, pi, p + off, r.size, 1, r.seq);
    }
    return rc;
}

/* A batch that cannot be run: its items reach the sink as rc. */
static void
s_fail_items(s_cond_t *c, s_batch_t *b, int rc)
{
    s_buf_t out = {0};
    s_rec_t r;
    for (size_t off = 0; off < b->b.len; off += r.size) {
        if (!s_rec_get(b->b.p, b->b.len, off, &r))
            break;
        (void)s_rec_put(&out, r.seq, r.sub, r.rc ? r.rc : rc, "", 0, NULL,
                        0);
    }
    s_to_sink(c, out.p, out.len);
    s_buf_free(&out);
}

static void
s_batch_free(s_batch_t *b)
{
    if (b != NULL) {
        s_buf_free(&b->b);
        free(b);
    }
}

static void s_on_result(void *arg, tr_future_t *f);

/* Hand batch b to its partition's pool. */
static int
s_submit(s_cond_t *c, s_part_t *pt, s_batch_t *b)
{
    const s_stage_cfg_t *sc = &c->cfg->stages[b->stage];
    int next = b->stage + 1 < c->n ? c->st[b->stage + 1].nparts : 1;
    tr_msg_t *a = NULL;
    int rc = tr_msg_create(&a, "pipe");
    if (rc == 0 && (rc = tr_msg_add_str(a, sc->fn)) == 0 &&
        (rc = tr_msg_add_uint(a, tr_self(c->self))) == 0 &&
        (rc = tr_msg_add_int(a, b->stage)) == 0 &&
        (rc = tr_msg_add_int(a, b->part)) == 0 &&
        (rc = tr_msg_add_uint(a, b->kfirst ? b->kfirst : b->k)) == 0 &&
        (rc = tr_msg_add_uint(a, b->k)) == 0 &&
        (rc = tr_msg_add_bool(a, b->finish)) == 0 &&
        (rc = tr_msg_add_int(a, next)) == 0 &&
        (rc = tr_msg_add_bin(a, b->b.p, b->b.len)) == 0 &&
        (rc = tr_pool_submit(pt->pool, S_TASK, &a, TR_DEFAULT, &b->f)) ==
            0 &&
        (rc = tr_future_then(b->f, s_on_result, b)) != 0)
        tr_future_destroy(&b->f);
    tr_msg_destroy(&a);
    if (rc == 0)
        pt->fly[pt->nfly++] = b;
    return rc;
}

/* A stateful partition being rebuilt: the log's batches from resend
 * whose output was accepted, as one task (up to 64 of them, 4 MiB),
 * whose output will be dropped; or the next batch not yet accepted, as
 * itself. NULL: out of memory. */
static s_batch_t *
s_next_replay(s_cond_t *c, s_part_t *pt, int s, int i)
{
    s_batch_t *e = pt->log[pt->resend];
    if (e->k > pt->done_k) {
        pt->resend++;
        return e;
    }
    s_batch_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    *b = (s_batch_t){.replay = true, .kfirst = e->k, .min = UINT64_MAX,
                     .stage = s, .part = i, .c = c};
    for (int n = 0; n < 64 && pt->resend < pt->nlog; n++) {
        e = pt->log[pt->resend];
        if (e->k > pt->done_k ||
            (n > 0 && b->b.len + e->b.len > ((size_t)4 << 20)) ||
            s_buf_add(&b->b, e->b.p, e->b.len) != 0)
            break;
        b->n += e->n;
        b->k = e->k;
        pt->resend++;
        c->replayed++;
    }
    if (b->k == 0) {
        s_batch_free(b);
        return NULL;
    }
    return b;
}

static bool
s_room(s_cond_t *c, int s)
{
    if (s == 0 && c->reorder > 0) {
        uint64_t P = (uint64_t)c->cfg->producers, ahead = 0;
        for (uint64_t p = 0; p < P; p++)
            if (c->prod_next[p] * P + p > ahead)
                ahead = c->prod_next[p] * P + p;
        uint64_t wm = s_watermark(c);
        if (wm != UINT64_MAX && ahead > wm && ahead - wm >= c->reorder)
            return false;
    }
    if (s == c->n) /* items held for their turn (ordered) do not count:
                    * they wait for others, which must be let through */
        return c->nready < c->sink_limit;
    uint64_t q = 0;
    for (int i = 0; i < c->st[s].nparts; i++)
        q += c->st[s].parts[i].qitems;
    return q < c->st[s].limit;
}

/* Hand out what may go, and mark stages done. */
static void
s_pump(s_cond_t *c)
{
    for (int s = 0; s < c->n; s++) {
        s_cstage_t *st = &c->st[s];
        bool done = true;
        for (int i = 0; i < st->nparts; i++) {
            s_part_t *pt = &st->parts[i];
            while (pt->nfly < pt->window) {
                s_batch_t *b = NULL;
                if (pt->stateful && pt->resend < pt->nlog) {
                    if ((b = s_next_replay(c, pt, s, i)) == NULL)
                        break; /* out of memory: at the next event */
                } else if (pt->qh != NULL && s_room(c, s + 1)) {
                    b = pt->qh;
                    if ((pt->qh = b->next) == NULL)
                        pt->qt = NULL;
                    b->next = NULL;
                    pt->qitems -= b->n;
                    if (pt->stateful) {
                        if (tr__grow((void **)&pt->log, pt->nlog,
                                     &pt->caplog, sizeof *pt->log, 64) != 0) {
                            s_fail_items(c, b, TR_ENOMEM);
                            s_count_inside(c, -(int64_t)b->n);
                            s_batch_free(b);
                            continue;
                        }
                        pt->log[pt->nlog++] = b;
                        pt->resend = pt->nlog;
                        b->k = b->kfirst = pt->nlog;
                        b->logged = true;
                        if (b->min < pt->held_min)
                            pt->held_min = b->min;
                    }
                } else if (st->input_done && pt->qh == NULL &&
                           pt->nfly == 0 && !pt->finished) {
                    if (!pt->stateful) {
                        pt->finished = true;
                        break;
                    }
                    if (pt->finish_sent)
                        break;
                    if ((b = calloc(1, sizeof *b)) == NULL)
                        break; /* tried again at the next event */
                    *b = (s_batch_t){.finish = true, .k = pt->nlog + 1,
                                     .kfirst = pt->nlog + 1, .stage = s,
                                     .part = i, .c = c};
                    pt->finish_sent = true;
                } else {
                    break;
                }
                int rc = s_submit(c, pt, b);
                if (rc != 0) {
                    tr_log(TR_LOG_ERROR, "pipeline", "stage %d: cannot "
                           "hand a batch over: %s", s, tr_strerror(rc));
                    if (!b->finish && !b->replay)
                        s_fail_items(c, b, rc);
                    if (!b->replay)
                        s_count_inside(c, -(int64_t)b->n);
                    if (b->finish)
                        pt->finished = true;
                    if (b->replay)
                        pt->resend = 0; /* the rebuild starts again */
                    if (!b->logged)
                        s_batch_free(b);
                    break;
                }
            }
            done &= pt->finished;
        }
        if (done && st->input_done && !st->done) {
            st->done = true;
            if (s + 1 < c->n)
                c->st[s + 1].input_done = true;
        }
    }
}

/* "put" [producer, eos, first, n, least index, records]: the producer's
 * items first..first+n-1 (its own count). Puts come in order, so one
 * whose first is behind is a copy of one taken already (at-least-once
 * delivery: answered, not taken twice). The put that stage 0 can take
 * now: route its items, answer it. */
static void
s_take_put(s_cond_t *c, const tr_msg_t *msg)
{
    tr_reader_t r;
    int64_t p;
    bool eos;
    uint64_t first, n, min;
    const void *recs;
    size_t len;
    tr_reader_init(&r, msg);
    int rc = 0;
    bool dup = false;
    bool bad = tr_read_int(&r, &p) != 0 || tr_read_bool(&r, &eos) != 0 ||
               tr_read_uint(&r, &first) != 0 || tr_read_uint(&r, &n) != 0 ||
               tr_read_uint(&r, &min) != 0 ||
               tr_read_bin(&r, &recs, &len) != 0 || p < 0 ||
               p >= c->cfg->producers;
    if (!bad && (first < c->prod_next[p] ||
                 (first == c->prod_next[p] && c->prod_ended[p])))
        dup = true; /* a put seen before (sent twice): taken already */
    else if (bad || first > c->prod_next[p])
        rc = TR_EPROTO; /* malformed, or one went missing: cannot happen
                         * in order */
    if (rc == 0 && !dup && (rc = s_route(c, 0, recs, len, n, min)) == 0) {
        c->prod_next[p] += n;
        c->in += n;
        if (eos) {
            c->prod_ended[p] = true;
            if (++c->nended == c->cfg->producers)
                c->st[0].input_done = true;
        }
    }
    tr_msg_t *ok = NULL;
    if (rc == 0 && (rc = tr_msg_create(&ok, "ok")) == 0 &&
        (rc = tr_reply(c->self, msg, &ok)) != 0)
        tr_msg_destroy(&ok);
    if (rc != 0)
        (void)tr_reply_error(c->self, msg, rc);
}

/* Puts held back go in as stage 0 makes room, oldest first. */
static void
s_take_held(s_cond_t *c)
{
    size_t i = 0;
    while (i < c->nheld && s_room(c, 0)) {
        s_take_put(c, c->held[i]);
        tr_msg_destroy(&c->held[i]);
        i++;
    }
    if (i > 0) {
        memmove(c->held, c->held + i, (c->nheld - i) * sizeof *c->held);
        c->nheld -= i;
    }
}

static void
s_after(s_cond_t *c)
{
    for (int round = 0; round < 2; round++) {
        s_pump(c);
        s_take_held(c);
    }
    s_serve(c);
}

/* Put batch b's items back at the front of its partition's queue in two
 * halves (they are still counted inside). 0, or TR_ENOMEM (nothing
 * changed). */
static int
s_split(s_cond_t *c, s_part_t *pt, const s_batch_t *b)
{
    s_batch_t *h[2] = {calloc(1, sizeof **h), calloc(1, sizeof **h)};
    int rc = h[0] && h[1] ? 0 : TR_ENOMEM;
    s_rec_t r;
    uint64_t i = 0;
    for (int k = 0; k < 2 && rc == 0; k++)
        *h[k] = (s_batch_t){.min = UINT64_MAX, .stage = b->stage,
                            .part = b->part, .c = c};
    for (size_t off = 0; off < b->b.len && rc == 0; off += r.size, i++) {
        if (!s_rec_get(b->b.p, b->b.len, off, &r)) {
            rc = TR_EPROTO;
            break;
        }
        s_batch_t *to = h[i < b->n / 2 ? 0 : 1];
        if ((rc = s_buf_add(&to->b, b->b.p + off, r.size)) == 0) {
            to->n++;
            to->min = r.seq < to->min ? r.seq : to->min;
        }
    }
    if (rc != 0 || h[0]->n == 0 || h[1]->n == 0) {
        s_batch_free(h[0]);
        s_batch_free(h[1]);
        return rc ? rc : TR_EPROTO;
    }
    h[1]->next = pt->qh;
    h[0]->next = h[1];
    pt->qh = h[0];
    if (pt->qt == NULL)
        pt->qt = h[1];
    pt->qitems += b->n;
    return 0;
}

/* A stage's task settled. */
static void
s_on_result(void *arg, tr_future_t *f)
{
    s_batch_t *b = arg;
    s_cond_t *c = b->c;
    s_part_t *pt = &c->st[b->stage].parts[b->part];
    tr_msg_t *reply = NULL;
    int rc = tr_future_get(f, 0, &reply);
    tr_future_destroy(&b->f);
    for (int i = 0; i < pt->nfly; i++)
        if (pt->fly[i] == b) {
            pt->fly[i] = pt->fly[--pt->nfly];
            break;
        }
    if (rc == TR_ERESTARTING && pt->stateful) {
        /* A new worker without the partition's state: run its input
         * again, then this batch (a finish is sent again after). */
        tr_log(TR_LOG_INFO, "pipeline", "stage %d partition %d: replaying "
               "%zu batches", b->stage, b->part, pt->nlog);
        pt->resend = 0;
        if (b->finish)
            pt->finish_sent = false;
        if (!b->logged)
            s_batch_free(b);
        s_after(c);
        tr_msg_destroy(&reply);
        return;
    }
    if (rc == TR_EWORKERDIED && !pt->stateful && !b->finish && b->n > 1 &&
        s_split(c, pt, b) == 0) {
        /* Its items go again in two halves, so that an item that kills
         * every worker it meets ends up failing alone. */
        s_batch_free(b);
        s_after(c);
        tr_msg_destroy(&reply);
        return;
    }
    if (rc != 0) {
        tr_log(TR_LOG_WARN, "pipeline", "stage %d: a batch of %llu items "
               "failed: %s", b->stage, (unsigned long long)b->n,
               tr_strerror(rc));
        if (b->replay)
            pt->resend = 0; /* the rebuild starts again */
        else if (!b->finish)
            s_fail_items(c, b, rc);
    } else if (!b->replay) {
        tr_reader_t r;
        int64_t np;
        tr_reader_init(&r, reply);
        if (tr_read_int(&r, &np) != 0)
            np = 0;
        for (int64_t i = 0; i < np; i++) {
            uint64_t n, min;
            const void *recs;
            size_t len;
            if (tr_read_uint(&r, &n) != 0 || tr_read_uint(&r, &min) != 0 ||
                tr_read_bin(&r, &recs, &len) != 0)
                break;
            int next = b->stage + 1;
            int erc = next < c->n
                          ? s_enqueue(c, next,
                                      (int)(i < c->st[next].nparts ? i : 0),
                                      recs, len, n, min)
                          : (s_to_sink(c, recs, len), 0);
            if (erc != 0)
                tr_log(TR_LOG_ERROR, "pipeline", "stage %d: %s", next,
                       tr_strerror(erc));
        }
    }
    if (!b->replay && !b->finish)
        s_count_inside(c, -(int64_t)b->n);
    if (pt->stateful && !b->finish && b->k > pt->done_k)
        pt->done_k = b->k;
    if (b->finish)
        pt->finished = true;
    b->replay = false;
    if (!b->logged)
        s_batch_free(b);
    tr_msg_destroy(&reply);
    s_after(c);
}

static int
s_cond_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_cond_t *c = state;
    tr_reader_t r;
    uint64_t ptr;
    tr_reader_init(&r, args);
    if (tr_read_uint(&r, &ptr) != 0)
        return TR_EINVAL;
    tr_pipeline_t *cfg = (tr_pipeline_t *)(uintptr_t)ptr;
    c->cfg = cfg;
    c->self = self;
    c->n = cfg->nstages;
    tr__map_init(&c->seen);
    c->prune_at = 4096;
    c->sink_limit = (uint64_t)cfg->batch * 8;
    c->st = calloc((size_t)c->n, sizeof *c->st);
    c->prod_next = calloc((size_t)cfg->producers, sizeof *c->prod_next);
    c->prod_ended = calloc((size_t)cfg->producers, sizeof *c->prod_ended);
    if (c->st == NULL || c->prod_next == NULL || c->prod_ended == NULL)
        return TR_ENOMEM;
    bool stateful = false;
    for (int s = 0; s < c->n; s++) {
        const s_stage_cfg_t *sc = &cfg->stages[s];
        s_cstage_t *st = &c->st[s];
        st->nparts = sc->nparts;
        if ((st->parts = calloc((size_t)sc->nparts, sizeof *st->parts)) ==
            NULL)
            return TR_ENOMEM;
        int total = 0;
        for (int i = 0; i < sc->nparts; i++) {
            s_part_t *pt = &st->parts[i];
            pt->pool = sc->pools[i];
            pt->stateful = sc->stateful;
            /* A stateful partition runs one batch at a time: its log
             * then says exactly what its state has seen. */
            pt->window = sc->stateful ? 1
                         : sc->keyed  ? cfg->window
                                      : cfg->window * sc->workers;
            pt->held_min = UINT64_MAX;
            total += pt->window;
            if ((pt->fly = calloc((size_t)pt->window, sizeof *pt->fly)) ==
                NULL)
                return TR_ENOMEM;
        }
        st->maxb = (uint64_t)cfg->batch * (sc->stateful ? 4 : 1);
        st->limit = (uint64_t)cfg->batch * (uint64_t)(total + sc->nparts);
        c->reorder += st->limit;
        stateful |= sc->stateful;
    }
    /* An ordered sink holds what comes ahead of a slow item; without a
     * stateful stage (whose state holds the watermark back until the
     * end) the producers are kept within reach of the watermark, so
     * that holding stays bounded too. */
    c->reorder = cfg->ordered && !stateful ? 2 * (c->reorder + c->sink_limit)
                                           : 0;
    return 0;
}

static int
s_reply_ints(tr_actor_t *self, const tr_msg_t *req, const int64_t *v,
             int n)
{
    int rc = tr__reply_ints(self, req, v, n);
    return rc ? tr_reply_error(self, req, rc) : 0;
}

static int
s_cond_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_cond_t *c = state;
    if (!tr_msg_is_request(msg))
        return TR_EUNHANDLED;
    if (tr_msg_is(msg, "put")) {
        if (c->nheld > 0 || !s_room(c, 0)) {
            tr_msg_t *keep = NULL;
            int rc = tr__grow((void **)&c->held, c->nheld, &c->capheld,
                              sizeof *c->held, 16);
            if (rc == 0 && (rc = tr_msg_dup(msg, &keep)) == 0) {
                c->held[c->nheld++] = keep;
                c->nheld_total++;
            }
            if (rc != 0)
                (void)tr_reply_error(self, msg, rc);
        } else {
            s_take_put(c, msg);
        }
        s_after(c);
        return 0;
    }
    if (tr_msg_is(msg, "pull")) {
        /* A copy of a pull answered already (at-least-once delivery):
         * what it would take would go to a settled future, and be lost.
         * A port numbers its asks in order. */
        if (tr_msg_sender(msg) == c->pulled_by &&
            msg->env.corr <= c->pulled_corr)
            return 0;
        if (c->pull != NULL) {
            /* The same pull twice (sent twice): the one held stands. A
             * new one replaces it: its asker has given it up. */
            if (tr_msg_sender(c->pull) == tr_msg_sender(msg) &&
                c->pull->env.corr == msg->env.corr)
                return 0;
            (void)tr_reply_error(self, c->pull, TR_ECANCELED);
            tr_msg_destroy(&c->pull);
        }
        int rc = tr_msg_dup(msg, &c->pull);
        if (rc != 0)
            return tr_reply_error(self, msg, rc);
        s_serve(c);
        return 0;
    }
    if (tr_msg_is(msg, "stats")) {
        int64_t v[7] = {(int64_t)c->in,         (int64_t)c->out,
                        (int64_t)c->inside,     (int64_t)c->max_inside,
                        (int64_t)c->nheld_total, (int64_t)c->replayed,
                        (int64_t)c->dups};
        return s_reply_ints(self, msg, v, 7);
    }
    return TR_EUNHANDLED;
}

static void
s_cond_terminate(tr_actor_t *self, void *state, int reason)
{
    s_cond_t *c = state;
    (void)reason;
    for (size_t i = 0; i < c->nheld; i++) {
        (void)tr_reply_error(self, c->held[i], TR_ESHUTDOWN);
        tr_msg_destroy(&c->held[i]);
    }
    free(c->held);
    if (c->pull != NULL)
        (void)tr_reply_error(self, c->pull, TR_ESHUTDOWN);
    tr_msg_destroy(&c->pull);
    for (int s = 0; c->st != NULL && s < c->n; s++) {
        for (int i = 0; i < c->st[s].nparts; i++) {
            s_part_t *pt = &c->st[s].parts[i];
            for (int j = 0; j < pt->nfly; j++) {
                tr_future_destroy(&pt->fly[j]->f);
                if (!pt->fly[j]->logged)
                    s_batch_free(pt->fly[j]);
            }
            for (s_batch_t *b = pt->qh, *nb; b != NULL; b = nb) {
                nb = b->next;
                s_batch_free(b);
            }
            for (size_t j = 0; j < pt->nlog; j++)
                s_batch_free(pt->log[j]);
            free(pt->log);
            free(pt->fly);
        }
        free(c->st[s].parts);
    }
    free(c->st);
    free(c->prod_next);
    free(c->prod_ended);
    s_buf_free(&c->ready);
    s_buf_free(&c->opend);
    free(c->ord);
    tr__map_free(&c->seen);
}

TR_BEHAVIOUR(tr_pipeline, .state_size = sizeof(s_cond_t),
             .init = s_cond_init, .handle = s_cond_handle,
             .terminate = s_cond_terminate);

/* ------------------------------------------------------------------ */
/* Placement: "STAGE=PLACE,..."                                        */

/* One "thread[:N]", "process[:N]" or "node NAME[:N]" (runtime/place.c
 * reads it; TROUPE_PLACE places plain actors the same way). */
static int
s_place_one(s_stage_cfg_t *sc, const char *v, const char *from)
{
    tr__place_t pl;
    int rc = tr__place_parse(v, from, &pl);
    if (rc != 0)
        return rc;
    sc->place = pl.kind == 0   ? TR_PLACE_THREAD
                : pl.kind == 1 ? TR_PLACE_PROCESS
                               : TR_PLACE_NODE;
    if (pl.kind == 2)
        snprintf(sc->node, sizeof sc->node, "%s", pl.node);
    if (pl.n > 0)
        sc->workers = pl.n;
    return 0;
}

typedef struct s_place_arg {
    s_stage_cfg_t *stages;
    int n;
    bool strict; /* a name that is no stage is an error (not: an actor's) */
} s_place_arg_t;

static int
s_place_fn(void *arg, const char *name, const char *place, const char *from)
{
    s_place_arg_t *a = arg;
    int s = 0;
    while (s < a->n && strcmp(a->stages[s].name, name) != 0)
        s++;
    if (s < a->n)
        return s_place_one(&a->stages[s], place, from);
    return a->strict ? tr__refuse(TR_EINVAL, "%s: no stage named '%s'", from,
                                  name)
                     : 0;
}

/* Apply a placement text to the stages. */
static int
s_place_apply(s_stage_cfg_t *stages, int n, const char *text,
              const char *from, bool strict)
{
    s_place_arg_t a = {stages, n, strict};
    return tr__place_each(text, from, s_place_fn, &a);
}

/* TROUPE_PLACE: a placement, or "@FILE" to read one from a file; names
 * that are no stage of this pipeline may place actors: skipped. */
static int
s_place_env(s_stage_cfg_t *stages, int n)
{
    char *text;
    const char *from;
    int rc = tr__place_env(&text, &from);
    if (rc == 0 && text != NULL)
        rc = s_place_apply(stages, n, text, from, false);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The clients' side                                                   */

static void
s_cfg_free(tr_pipeline_t *p)
{
    for (int s = 0; p->stages != NULL && s < p->nstages; s++) {
        for (int i = 0; p->stages[s].pools && i < p->stages[s].nparts; i++)
            if (p->stages[s].pools[i] != NULL)
                (void)tr_pool_shutdown(&p->stages[s].pools[i], true,
                                       TR_DEFAULT);
        free(p->stages[s].pools);
    }
    free(p->stages);
    for (int i = 0; p->prods != NULL && i < p->producers; i++) {
        s_buf_free(&p->prods[i].buf);
        for (int j = 0; j < p->prods[i].nfs; j++)
            tr_future_destroy(&p->prods[i].fs[j]);
        free(p->prods[i].fs);
    }
    free(p->prods);
    tr_future_destroy(&p->sink.pull);
    tr_msg_destroy(&p->sink.cur);
    free(p);
}

/* Check and copy the stages' options; placement applied. */
static int
s_cfg_stages(tr_pipeline_t *p, const tr_pipeline_opts_t *o)
{
    for (int s = 0; s < o->nstages; s++) {
        const tr_stage_opts_t *so = &o->stages[s];
        s_stage_cfg_t *sc = &p->stages[s];
        if (so->stage == NULL)
            return tr__refuse(TR_EINVAL, "pipeline: stage %d has no stage "
                              "function", s);
        int rc = tr__name_check(so->stage);
        if (rc == 0 && so->name != NULL)
            rc = tr__name_check(so->name);
        if (rc != 0)
            return tr__refuse(rc, "pipeline: stage %d: bad name", s);
        tr_stage_def_t def;
        bool is_stage = s_def_find(so->stage, &def);
        if (!is_stage && tr__task_fn(so->stage) == NULL)
            return tr__refuse(TR_ENOENT, "pipeline: stage %d: no stage or "
                              "task '%s'", s, so->stage);
        if (so->workers < 0 || so->workers > S_MAX_WORKERS ||
            (unsigned)so->place > TR_PLACE_NODE)
            return tr__refuse(TR_EINVAL, "pipeline: stage %d: workers %d, "
                              "place %d", s, so->workers, (int)so->place);
        snprintf(sc->fn, sizeof sc->fn, "%s", so->stage);
        snprintf(sc->name, sizeof sc->name, "%s",
                 so->name ? so->name : so->stage);
        for (int t = 0; t < s; t++)
            if (strcmp(p->stages[t].name, sc->name) == 0)
                return tr__refuse(TR_EINVAL, "pipeline: two stages named "
                                  "'%s'", sc->name);
        sc->workers = so->workers ? so->workers : 1;
        sc->place = so->place;
        if (so->node != NULL)
            snprintf(sc->node, sizeof sc->node, "%s", so->node);
        sc->stateful = is_stage && (def.finish != NULL ||
                                    def.state_size > 0);
        sc->keyed = so->keyed || sc->stateful;
    }
    int rc;
    if (o->place != NULL &&
        (rc = s_place_apply(p->stages, o->nstages, o->place,
                            "pipeline place", true)) != 0)
        return rc;
    if ((rc = s_place_env(p->stages, o->nstages)) != 0)
        return rc;
    /* "node b|c": workers on b, or on c while b is down (a pool's
     * nodes, in order of preference). */
    for (int s = 0; s < o->nstages; s++)
        if (p->stages[s].place == TR_PLACE_NODE)
            for (char *c = p->stages[s].node; *c; c++)
                if (*c == '|')
                    *c = ',';
    return 0;
}

int
tr_pipeline_start(tr_node_t *node, const tr_pipeline_opts_t *opts,
                  tr_pipeline_t **out)
{
    if (node == NULL || opts == NULL || out == NULL)
        return tr__refuse(TR_EINVAL, "tr_pipeline_start: NULL argument");
    const tr_pipeline_opts_t *o = opts;
    if (o->nstages < 1 || o->nstages > S_MAX_STAGES || o->stages == NULL)
        return tr__refuse(TR_EINVAL, "tr_pipeline_start: %d stages (1..%d)",
                          o->nstages, S_MAX_STAGES);
    if (o->producers < 0 || o->producers > S_MAX_PRODUCERS ||
        o->batch < 0 || o->batch > 1000000 || o->window < 0 ||
        o->window > 1024)
        return tr__refuse(TR_EINVAL, "tr_pipeline_start: producers %d, "
                          "batch %d, window %d", o->producers, o->batch,
                          o->window);
    tr_pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return TR_ENOMEM;
    p->node = node;
    p->nstages = o->nstages;
    p->producers = o->producers ? o->producers : 1;
    p->batch = o->batch ? o->batch : 256;
    p->window = o->window ? o->window : 8;
    p->max_retries = o->max_retries == 0 ? 10 : o->max_retries;
    p->ordered = o->ordered;
    int rc = 0;
    p->stages = calloc((size_t)o->nstages, sizeof *p->stages);
    p->prods = calloc((size_t)p->producers, sizeof *p->prods);
    if (p->stages == NULL || p->prods == NULL) {
        rc = TR_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < p->producers && rc == 0; i++) {
        p->prods[i].min = UINT64_MAX;
        if ((p->prods[i].fs = calloc((size_t)p->window,
                                     sizeof *p->prods[i].fs)) == NULL)
            rc = TR_ENOMEM;
    }
    if (rc != 0 || (rc = s_cfg_stages(p, o)) != 0)
        goto fail;
    for (int s = 0; s < p->nstages; s++) {
        s_stage_cfg_t *sc = &p->stages[s];
        sc->nparts = sc->keyed ? sc->workers : 1;
        if ((sc->pools = calloc((size_t)sc->nparts, sizeof *sc->pools)) ==
            NULL) {
            rc = TR_ENOMEM;
            goto fail;
        }
        tr_pool_opts_t po = {
            .workers = sc->keyed ? 1 : sc->workers,
            .mode = sc->place == TR_PLACE_PROCESS ? TR_POOL_PROCESSES
                                                  : TR_POOL_THREADS,
            .max_retries = p->max_retries,
            .nodes = sc->place == TR_PLACE_NODE ? sc->node : NULL,
        };
        for (int i = 0; i < sc->nparts; i++)
            if ((rc = tr_pool_start(node, &po, &sc->pools[i])) != 0)
                goto fail;
    }
    tr_msg_t *args = NULL;
    if ((rc = tr_msg_create(&args, "pipeline")) == 0 &&
        (rc = tr_msg_add_uint(args, (uint64_t)(uintptr_t)p)) == 0) {
        tr_spawn_opts_t so = {.name = o->name, .args = args};
        rc = tr_spawn(node, "tr_pipeline", &so, &p->id);
    }
    tr_msg_destroy(&args);
    if (rc != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    s_cfg_free(p);
    return rc;
}

/* Wait for producer pr's oldest put; 0 or its error. */
static int
s_put_wait(s_prod_t *pr, int timeout_ms)
{
    tr_future_t *f = pr->fs[0];
    int rc = tr_future_get(f, timeout_ms, NULL);
    if (rc == TR_ETIMEDOUT && !tr_future_done(f))
        return rc;
    tr_future_destroy(&pr->fs[0]);
    memmove(pr->fs, pr->fs + 1, (size_t)(pr->nfs - 1) * sizeof *pr->fs);
    pr->nfs--;
    return rc;
}

/* Send what producer p has batched (and its end with eos). With block
 * false it gives TR_EAGAIN instead of waiting for a put to be taken. */
static int
s_put_flush(tr_pipeline_t *pipe, int p, bool eos, bool block)
{
    s_prod_t *pr = &pipe->prods[p];
    int rc;
    while (pr->nfs > 0 && tr_future_done(pr->fs[0]))
        if ((rc = s_put_wait(pr, 0)) != 0)
            return rc;
    if (pr->nfs == pipe->window) {
        if (!block)
            return TR_EAGAIN;
        if ((rc = s_put_wait(pr, TR_FOREVER)) != 0)
            return rc;
    }
    tr_msg_t *m = NULL;
    if ((rc = tr_msg_create(&m, "put")) == 0 &&
        (rc = tr_msg_add_int(m, p)) == 0 &&
        (rc = tr_msg_add_bool(m, eos)) == 0 &&
        (rc = tr_msg_add_uint(m, pr->next - pr->n)) == 0 &&
        (rc = tr_msg_add_uint(m, pr->n)) == 0 &&
        (rc = tr_msg_add_uint(m, pr->min)) == 0 &&
        (rc = tr_msg_add_bin(m, pr->buf.p, pr->buf.len)) == 0 &&
        (rc = tr_ask_id(pipe->node, pipe->id, &m, TR_FOREVER,
                        &pr->fs[pr->nfs])) == 0) {
        pr->nfs++;
        pr->buf.len = 0;
        pr->n = 0;
        pr->min = UINT64_MAX;
        pr->ended = eos;
    }
    tr_msg_destroy(&m);
    return rc;
}

static int
s_put_add(tr_pipeline_t *pipe, int p, tr_msg_t **item)
{
    s_prod_t *pr = &pipe->prods[p];
    size_t plen;
    const void *pl = tr_msg_payload(*item, &plen);
    const char *tag = tr_msg_tag(*item);
    uint64_t seq = pr->next * (uint64_t)pipe->producers + (uint64_t)p;
    int rc = s_rec_put(&pr->buf, seq, 0, 0, tag, strlen(tag), pl, plen);
    if (rc != 0)
        return rc;
    pr->next++;
    pr->n++;
    pr->min = seq < pr->min ? seq : pr->min;
    tr_msg_destroy(item);
    return 0;
}

int
tr_pipeline_put(tr_pipeline_t *pipe, int producer, tr_msg_t **item)
{
    if (pipe == NULL || item == NULL || *item == NULL || producer < 0 ||
        producer >= pipe->producers)
        return tr__refuse(TR_EINVAL, "tr_pipeline_put: NULL argument or "
                          "producer %d", producer);
    s_prod_t *pr = &pipe->prods[producer];
    if (pr->ended)
        return TR_ECLOSED;
    int rc = s_put_add(pipe, producer, item);
    if (rc == 0 && pr->n >= (uint64_t)pipe->batch)
        rc = s_put_flush(pipe, producer, false, true);
    return rc;
}

int
tr_pipeline_flush(tr_pipeline_t *pipe, int producer)
{
    if (pipe == NULL || producer < 0 || producer >= pipe->producers)
        return tr__refuse(TR_EINVAL, "tr_pipeline_flush: producer %d",
                          producer);
    s_prod_t *pr = &pipe->prods[producer];
    if (pr->ended)
        return TR_ECLOSED;
    return pr->n > 0 ? s_put_flush(pipe, producer, false, true) : 0;
}

int
tr_pipeline_end(tr_pipeline_t *pipe, int producer)
{
    if (pipe == NULL || producer < 0 || producer >= pipe->producers)
        return tr__refuse(TR_EINVAL, "tr_pipeline_end: producer %d",
                          producer);
    s_prod_t *pr = &pipe->prods[producer];
    if (pr->ended)
        return TR_ECLOSED;
    int rc = s_put_flush(pipe, producer, true, true);
    /* Its last puts are answered once taken: wait, so that an error
     * (the pipeline stopping) is heard here. */
    while (rc == 0 && pr->nfs > 0)
        rc = s_put_wait(pr, TR_FOREVER);
    return rc;
}

/* Ask for the next items (one pull at a time). */
static int
s_pull(tr_pipeline_t *pipe)
{
    if (pipe->sink.pull != NULL || pipe->sink.end)
        return 0;
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "pull");
    if (rc == 0)
        rc = tr_ask_id(pipe->node, pipe->id, &m, TR_FOREVER,
                       &pipe->sink.pull);
    tr_msg_destroy(&m);
    return rc;
}

/* The next record the sink has: 0 (item made), 1 (end), TR_EAGAIN (none
 * yet, timeout 0), or an error. */
static int
s_sink_next(tr_pipeline_t *pipe, tr_msg_t **item, uint64_t *index, int *irc,
            int timeout_ms)
{
    s_sink_t *k = &pipe->sink;
    for (;;) {
        if (k->cur != NULL && k->off < k->len) {
            s_rec_t r;
            if (!s_rec_get(k->p, k->len, k->off, &r)) {
                tr_msg_destroy(&k->cur);
                return TR_EPROTO;
            }
            k->off += r.size;
            *index = r.seq;
            *irc = r.rc;
            *item = NULL;
            return r.rc != 0 ? 0 : s_rec_msg(&r, item);
        }
        tr_msg_destroy(&k->cur);
        if (k->end)
            return 1;
        int rc = s_pull(pipe);
        if (rc != 0)
            return rc;
        rc = tr_future_wait(k->pull, timeout_ms);
        if (rc != 0)
            return rc == TR_ETIMEDOUT && timeout_ms == 0 ? TR_EAGAIN : rc;
        tr_msg_t *reply = NULL;
        rc = tr_future_get(k->pull, 0, &reply);
        tr_future_destroy(&k->pull);
        if (rc != 0)
            return rc;
        if (tr_msg_is(reply, "end")) {
            k->end = true;
            tr_msg_destroy(&reply);
            continue;
        }
        tr_reader_t rd;
        uint64_t n;
        const void *bin;
        tr_reader_init(&rd, reply);
        if (tr_read_uint(&rd, &n) != 0 ||
            tr_read_bin(&rd, &bin, &k->len) != 0) {
            tr_msg_destroy(&reply);
            return TR_EPROTO;
        }
        k->cur = reply;
        k->p = bin;
        k->off = 0;
        /* Ask for more at once: the pipeline fills it meanwhile. */
        if ((rc = s_pull(pipe)) != 0)
            return rc;
    }
}

int
tr_pipeline_next(tr_pipeline_t *pipe, tr_msg_t **item, uint64_t *index,
                 int *rc, int timeout_ms)
{
    if (pipe == NULL || item == NULL || timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pipeline_next: NULL argument");
    uint64_t ix = 0;
    int irc = 0;
    int r = s_sink_next(pipe, item, &ix, &irc, timeout_ms);
    if (r == TR_EAGAIN)
        r = TR_ETIMEDOUT;
    if (index != NULL)
        *index = ix;
    if (rc != NULL)
        *rc = irc;
    return r;
}

int
tr_pipeline_run(tr_pipeline_t *pipe, tr_map_next_fn next, void *next_arg,
                tr_map_out_fn out, void *out_arg)
{
    if (pipe == NULL || next == NULL || out == NULL)
        return tr__refuse(TR_EINVAL, "tr_pipeline_run: NULL argument");
    s_prod_t *pr = &pipe->prods[0];
    if (pr->ended)
        return TR_ECLOSED;
    uint64_t batch = (uint64_t)pipe->batch;
    int rc = 0;
    bool input = true, eos = false; /* eos: the end is still to send */
    tr_msg_t *item = NULL;
    /* Never block on a put here: the sink, read by this same thread, may
     * be what the pipeline waits for. */
    while (rc == 0) {
        while ((input || eos) && rc == 0) {
            if (eos || pr->n >= batch) {
                rc = s_put_flush(pipe, 0, eos, false);
                if (rc == TR_EAGAIN) {
                    rc = 0;
                    break;
                }
                eos = false;
                continue;
            }
            int nrc = next(next_arg, &item);
            if (nrc == 1) {
                input = false;
                eos = true;
            } else if (nrc != 0) {
                rc = nrc;
            } else if (item == NULL) {
                rc = tr__refuse(TR_EINVAL, "tr_pipeline_run: next gave no "
                                "item");
            } else {
                rc = s_put_add(pipe, 0, &item);
                tr_msg_destroy(&item);
            }
        }
        /* Hand out what has come; wait when neither side can move. */
        while (rc == 0) {
            tr_msg_t *res = NULL;
            uint64_t ix;
            int irc;
            int src = s_sink_next(pipe, &res, &ix, &irc, 0);
            if (src == 0) {
                rc = out(out_arg, ix, irc, res);
                tr_msg_destroy(&res);
                continue;
            }
            if (src == 1) {
                while (rc == 0 && pr->nfs > 0)
                    rc = s_put_wait(pr, TR_FOREVER);
                return rc;
            }
            if (src != TR_EAGAIN) {
                rc = src;
                break;
            }
            bool sending = input || eos;
            bool room = pr->nfs < pipe->window ||
                        (pr->nfs > 0 && tr_future_done(pr->fs[0]));
            if ((input && pr->n < batch) || (sending && room))
                break;
            tr_future_t *fs[2] = {pipe->sink.pull,
                                  sending && pr->nfs > 0 ? pr->fs[0] : NULL};
            rc = tr_future_wait_any(fs, 2, TR_FOREVER, NULL);
            if (rc == 0 && fs[1] != NULL && tr_future_done(fs[1]))
                break;
        }
        while (rc == 0 && pr->nfs > 0 && tr_future_done(pr->fs[0]))
            rc = s_put_wait(pr, 0);
    }
    return rc;
}

int
tr_pipeline_stats(tr_pipeline_t *pipe, tr_pipeline_stats_t *st)
{
    if (pipe == NULL || st == NULL)
        return tr__refuse(TR_EINVAL, "tr_pipeline_stats: NULL argument");
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, "stats");
    if (rc == 0)
        rc = tr_call_id(pipe->node, pipe->id, &m, TR_DEFAULT, &reply);
    tr_msg_destroy(&m);
    int64_t v[7] = {0};
    if (rc == 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        for (int i = 0; i < 7 && rc == 0; i++)
            rc = tr_read_int(&r, &v[i]);
    }
    tr_msg_destroy(&reply);
    if (rc != 0)
        return rc;
    *st = (tr_pipeline_stats_t){.in = (uint64_t)v[0],
                                .out = (uint64_t)v[1],
                                .in_flight = (uint64_t)v[2],
                                .max_in_flight = (uint64_t)v[3],
                                .held = (uint64_t)v[4],
                                .replayed = (uint64_t)v[5],
                                .duplicates = (uint64_t)v[6]};
    for (int s = 0; s < pipe->nstages; s++)
        for (int i = 0; i < pipe->stages[s].nparts; i++) {
            tr_pool_stats_t ps;
            if ((rc = tr_pool_stats(pipe->stages[s].pools[i], &ps)) != 0)
                return rc;
            st->redelivered += ps.retried;
            st->worker_deaths += ps.worker_deaths;
        }
    return 0;
}

int
tr_pipeline_stop(tr_pipeline_t **pipep, int timeout_ms)
{
    if (pipep == NULL || *pipep == NULL || timeout_ms < TR_FOREVER)
        return tr__refuse(TR_EINVAL, "tr_pipeline_stop: NULL pipeline");
    tr_pipeline_t *p = *pipep;
    int rc = tr_stop(p->node, p->id, timeout_ms);
    if (rc == TR_ENOENT)
        rc = 0;
    if (rc == TR_ETIMEDOUT) {
        /* Still running: it reads the description, so that stays (and
         * so do the pools it uses). The node reports the actor. */
        tr_log(TR_LOG_ERROR, "pipeline", "the pipeline actor did not stop "
               "in time: its memory is left to it");
        *pipep = NULL;
        return rc;
    }
    /* Its futures are gone with it; the pools cancel what is queued. */
    for (int s = 0; s < p->nstages; s++)
        for (int i = 0; i < p->stages[s].nparts; i++) {
            int src = tr_pool_shutdown(&p->stages[s].pools[i], true,
                                       timeout_ms);
            if (rc == 0 && src != 0)
                rc = src;
        }
    s_cfg_free(p);
    *pipep = NULL;
    return rc;
}
