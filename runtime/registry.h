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
    bool ties_closed;     /* DOWNs and exit signals sent: no new ties */
    tr_id_t *monitors;    /* ids to send DOWN to */
    size_t nmonitors, capmonitors;
    tr_id_t *links;       /* ids linked to this one (both ways) */
    size_t nlinks, caplinks;
    char last_tag[TR_TAG_MAX + 1]; /* tag being handled when it failed */

    /* Set at spawn, read-only after (pid: atomic, as a process actor's
     * record is shared before its process starts). */
    tr_id_t parent;       /* linked spawner that stops it (0: node) */
    _Atomic bool keep_name; /* the name stays reserved after it ends */
    bool took_over;       /* it took a kept name from an earlier actor */
    _Atomic long pid;     /* the process it lives in; 0: this one */
    int hwm;              /* its mailbox bound, for senders elsewhere */
    _Atomic bool exposed; /* its endpoints are bound on ipc too */
    bool raw_reader;      /* its sockets are read as frames of bytes (the
                           * gateway): nothing is handed to it */

    /* What the control endpoint shows (docs/control.md). sent_to is
     * bumped by senders of this process, on a line of its own; taken and
     * out only by the actor's own thread. */
    _Alignas(64) _Atomic uint64_t sent_to; /* into its mailbox */
    char pad2_[64 - sizeof(uint64_t)];
    _Atomic uint64_t taken; /* out of its mailbox */
    _Atomic uint64_t out;   /* sent by it */
    _Atomic long tid;       /* its thread (Linux tid), once it runs */
    int restarts;           /* of actors under its kept name before it */
    tr_id_t replaces;       /* the one whose kept name it took, or 0 */
    _Atomic bool up;        /* its init succeeded */
    int64_t pool_stats[8];  /* a pool actor's counters, under mu */
    char last_failure[96];  /* how the last of them failed; "" */
    uint64_t crash_hash;    /* under mu: the message that crashed the name
                             * last (runtime/capsule.c), and how many */
    int crash_streak;       /* times in a row; inherited like restarts */
} tr__rec_t;

typedef struct tr__grave {
    tr_id_t id;
    int reason;
} tr__grave_t;

#define TR__GRAVES 1024

typedef struct tr__registry {
    pthread_rwlock_t lock;
    tr__map_t by_id;    /* id -> rec (a reference) */
    tr__smap_t by_name; /* name -> rec (another reference); a kept name
                         * maps to its last, ended actor until taken */
    tr__grave_t graves[TR__GRAVES]; /* the last exits, a ring */
    size_t next_grave;
    pthread_mutex_t names_mu; /* with names_cv: waiting for a kept name */
    pthread_cond_t names_cv;
    uint64_t names_gen;       /* bumped whenever a name is taken or freed */
} tr__registry_t;

int tr__rec_new(tr__rec_t **out, tr_id_t id, tr__rec_kind_t kind,
                const char *name);

/* Its exit reason, known before DOWNs go out (a successor that takes its
 * kept name tells how it failed). */
void tr__rec_note_reason(tr__rec_t *rec, int reason);
void tr__rec_ref(tr__rec_t *rec);
void tr__rec_unref(tr__rec_t **rec);

/* Add watcher to rec's monitors: it gets DOWN when rec ends. TR_ENOENT if
 * rec has already sent its DOWNs. */
int tr__rec_monitor(tr__rec_t *rec, tr_id_t watcher);

/* Link a and b (each in the other's list). TR_ENOENT if either has
 * already ended (nothing changed). */
int tr__rec_link(tr__rec_t *a, tr__rec_t *b);

/* Add other to rec's links only (a process actor's mirror of a link made
 * in its parent's node). TR_ENOENT if rec has ended. */
int tr__rec_link_one(tr__rec_t *rec, tr_id_t other);

/* Drop other from rec's links; true if it was there. */
bool tr__rec_unlink(tr__rec_t *rec, tr_id_t other);

/* Close the monitor and link lists and hand them over (caller frees). */
void tr__rec_take_ties(tr__rec_t *rec, tr_id_t **monitors, size_t *nmon,
                       tr_id_t **links, size_t *nlinks);

/* The spawn handshake: init ran, with rc; wakes the spawner. */
void tr__rec_report_init(tr__rec_t *rec, int rc);

/* Remember the tag being handled when it failed (crash reports). */
void tr__rec_note_tag(tr__rec_t *rec, const char *tag);

/* Mark rec ended with reason and wake everyone waiting on it. */
void tr__rec_set_ended(tr__rec_t *rec, int reason);

/* Wait until rec ended or deadline_ns (0: forever). 0 or TR_ETIMEDOUT. */
int tr__rec_wait_ended(tr__rec_t *rec, uint64_t deadline_ns, int *reason);

int tr__reg_init(tr__registry_t *reg);
void tr__reg_fini(tr__registry_t *reg);

/* Add rec (by id, and by name when it has one). A kept name whose actor
 * ended is taken over by a rec with keep_name. TR_EEXIST, TR_ENOMEM. */
int tr__reg_add(tr__registry_t *reg, tr__rec_t *rec);

/* Remove rec; with record_exit, remember its reason among the graves. Its
 * name stays mapped to it (ended) when rec->keep_name. */
void tr__reg_remove(tr__registry_t *reg, tr__rec_t *rec, bool record_exit,
                    int reason);

/* Free a kept name that no running actor holds. 0, TR_ENOENT, TR_EEXIST. */
int tr__reg_release(tr__registry_t *reg, const char *name);

/* A new reference to the record for id / name, or NULL. A kept name
 * between two actors gives its ended record (dead set). */
tr__rec_t *tr__reg_get(tr__registry_t *reg, tr_id_t id);
tr__rec_t *tr__reg_lookup(tr__registry_t *reg, const char *name);

/* The id registered under name, waiting while the name is kept between
 * two actors: up to timeout_ms (0: not at all; -1: no limit but cap_ns)
 * and never past cap_ns (0: none). The clock is read only if it has to
 * wait. 0, TR_ENOENT, TR_ERESTARTING (still kept at the deadline). */
int tr__reg_resolve(tr__registry_t *reg, const char *name, int64_t timeout_ms,
                    uint64_t cap_ns, tr_id_t *id);

/* The recorded exit reason of an ended id. TR_ENOENT if not remembered. */
int tr__reg_grave(tr__registry_t *reg, tr_id_t id, int *reason);

#endif
