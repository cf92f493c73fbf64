/* runtime/registry.h - who is addressable in a node: a record per actor
 * and per thread port, by id and (for named actors) by name, plus the
 * last exits for tr_join after the fact.
 *
 * A record outlives its actor while anyone holds a reference (a sender's
 * socket cache, a joiner): references are counted. The registry's maps
 * are behind a rwlock (sends look names up, spawns and exits write); the
 * per-record fields that change after creation are atomics or behind the
 * record's own mutex, as marked. */
#ifndef TR_RUNTIME_REGISTRY_H
#define TR_RUNTIME_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/map.h"
#include "troupe.h"

typedef enum {
    TR__REC_PORT = 0, /* a non-actor thread: has an inbox only */
    TR__REC_ACTOR,    /* an actor: inbox and mailbox */
} tr__rec_kind_t;

typedef struct tr__rec {
    _Atomic int refs;
    tr_id_t id;
    tr__rec_kind_t kind;
    char name[TR_NAME_MAX + 1];      /* "" when anonymous */
    char behaviour[TR_NAME_MAX + 1]; /* actors only */

    /* Set once the actor stops taking messages. Senders bump inflight,
     * then read dead; the ending actor sets dead, then drains until
     * inflight is 0: either the sender sees dead and fails with TR_ENOENT,
     * or its message is drained and counted. Nothing vanishes unseen. */
    _Alignas(64) _Atomic int dead; /* own line: senders hammer inflight */
    _Atomic int inflight;
    char pad_[64 - 2 * sizeof(int)];

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled on init_done and on ended */
    bool init_done;     /* spawn handshake */
    int init_rc;
    bool ended;         /* terminate ran and the thread let go */
    int reason;         /* exit reason once ended */
    bool monitors_closed; /* DOWN sent: no new monitors */
    tr_id_t *monitors;    /* ids to send DOWN to */
    size_t nmonitors, capmonitors;
    char last_tag[TR_TAG_MAX + 1]; /* tag being handled when it failed */
} tr__rec_t;

typedef struct tr__grave {
    tr_id_t id;
    int reason;
} tr__grave_t;

#define TR__GRAVES 1024

typedef struct tr__registry {
    pthread_rwlock_t lock;
    tr__map_t by_id;    /* id -> rec (holds a reference) */
    tr__smap_t by_name; /* name -> rec (same reference as by_id) */
    tr__grave_t graves[TR__GRAVES]; /* the last exits, a ring */
    size_t next_grave;
} tr__registry_t;

int tr__rec_new(tr__rec_t **out, tr_id_t id, tr__rec_kind_t kind,
                const char *name);
void tr__rec_ref(tr__rec_t *rec);
void tr__rec_unref(tr__rec_t **rec);

/* Add watcher to rec's monitors: it gets DOWN when rec ends. TR_ENOENT if
 * rec has already sent its DOWNs. */
int tr__rec_monitor(tr__rec_t *rec, tr_id_t watcher);

/* Close the monitor list and hand it over (caller frees *ids). */
void tr__rec_take_monitors(tr__rec_t *rec, tr_id_t **ids, size_t *n);

/* Mark rec ended with reason and wake everyone waiting on it. */
void tr__rec_set_ended(tr__rec_t *rec, int reason);

/* Wait until rec ended or deadline_ns (0: forever). 0 or TR_ETIMEDOUT. */
int tr__rec_wait_ended(tr__rec_t *rec, uint64_t deadline_ns, int *reason);

int tr__reg_init(tr__registry_t *reg);
void tr__reg_fini(tr__registry_t *reg);

/* Add rec (by id, and by name when it has one). TR_EEXIST, TR_ENOMEM. */
int tr__reg_add(tr__registry_t *reg, tr__rec_t *rec);

/* Remove rec; with record_exit, remember its reason among the graves. */
void tr__reg_remove(tr__registry_t *reg, tr__rec_t *rec, bool record_exit,
                    int reason);

/* A new reference to the record for id / name, or NULL. */
tr__rec_t *tr__reg_get(tr__registry_t *reg, tr_id_t id);
tr__rec_t *tr__reg_lookup(tr__registry_t *reg, const char *name);

/* The recorded exit reason of an ended id. TR_ENOENT if not remembered. */
int tr__reg_grave(tr__registry_t *reg, tr_id_t id, int *reason);

#endif
