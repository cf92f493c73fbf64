/* runtime/node.h - the node's internals, shared by the runtime's files. */
#ifndef TR_RUNTIME_NODE_H
#define TR_RUNTIME_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/registry.h"
#include "runtime/rundir.h"
#include "troupe.h"

struct tr__port;
typedef struct tr__remote tr__remote_t;

typedef struct tr__stats {
    _Atomic uint64_t spawned, exited, failed, dead_letters, late_replies,
        unhandled, expired, bad_frames, oversize, dropped_connections;
} tr__stats_t;

struct tr_node {
    void *zctx;
    tr_node_opts_t opts; /* defaults filled in */
    char name[TR_NAME_MAX + 1];
    tr__registry_t reg;
    _Atomic uint64_t next_id;
    _Atomic int closing; /* destroy has begun: no new actors */
    bool ctx_shut;       /* destroy had to zmq_ctx_shutdown (its thread) */
    bool fast_fence;     /* membarrier(2) registered: see s_announce */
    tr__stats_t stats;
    uint32_t tag;          /* distributed: in the top bits of every id */
    tr_id_t gw;            /* distributed: the gateway's id; else 0 */
    tr__remote_t *remote;  /* many nodes (runtime/remote.c), or NULL */
    pthread_mutex_t root_mu; /* makes the root supervisor once */
    tr_id_t root;

    /* Processes (runtime/process.c). */
    pthread_mutex_t rundir_mu;
    char rundir[TR__RUNDIR_MAX]; /* "" until made (or given, in a child) */
    bool child;                  /* runs one process actor for a parent */
    long parent_pid;             /* in a child: the parent node's pid */
    tr_id_t service;             /* the node service actor (parent side),
                                  * or its id in the parent (child side) */
    struct tr__procs *procs;     /* process actors and their reaper */
    struct tr__control *control; /* the control endpoint, or NULL */
    /* recording (TROUPE_TRACE), or NULL; atomic because the control
     * endpoint may set it once while actors run ("watch") */
    struct tr__trace *_Atomic trace;
    struct tr__chaos *chaos;     /* injecting faults (TROUPE_CHAOS), or NULL */
    struct tr__step *step;       /* step mode (TROUPE_STEP), or NULL */

    pthread_mutex_t mu; /* guards the lists below */
    tr_msg_t *shown_kept; /* shown messages of closed sockets, released
                           * after zmq_ctx_term (see s_peer_settle) */
    pthread_cond_t cv;  /* signalled when an actor thread lets go */
    tr__rec_t **actors; /* running actors in start order (references) */
    size_t nactors, capactors;
    struct tr__port **ports; /* ports of non-actor threads (references) */
    size_t nports, capports;
    pthread_t *zombies; /* ended actor threads, to join */
    size_t nzombies, capzombies;
    size_t threads_live; /* actor threads not yet in zombies */
};

/* A full memory barrier on every thread of the process (membarrier(2));
 * only when node->fast_fence. */
void tr__node_barrier(void);

/* A fresh id, never reused within the node. */
tr_id_t tr__node_new_id(tr_node_t *node);

/* Append to a growable array of pointer-sized items under node->mu. */
int tr__node_list_push(void ***items, size_t *n, size_t *cap, void *item);
/* Remove the first occurrence; true if found. */
bool tr__node_list_remove(void **items, size_t *n, const void *item);

/* Remember an ended actor thread for joining (under node->mu). */
int tr__node_add_zombie(tr_node_t *node, pthread_t thread);

/* Join ended actor threads (called on spawn and at destroy). */
void tr__node_reap(tr_node_t *node);

#define TR__STAT_INC(node, field)                                           \
    atomic_fetch_add_explicit(&(node)->stats.field, 1, memory_order_relaxed)

#endif
