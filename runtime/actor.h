/* runtime/actor.h - a thread actor's insides: its mailbox, state, timers
 * and lifecycle flags. Only the actor's own thread touches them, except
 * where marked. */
#ifndef TR_RUNTIME_ACTOR_H
#define TR_RUNTIME_ACTOR_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>

#include "runtime/capsule.h"
#include "runtime/port.h"
#include "runtime/registry.h"
#include "transport/msg.h"
#include "troupe.h"

typedef struct tr__timer {
    uint64_t id;
    uint64_t due_ns;
    uint64_t interval_ns; /* 0: once */
    tr_msg_t *msg;
} tr__timer_t;

#define TR__IO_MAX 16

/* Bytes of the tag page a child keeps its current tag in (any tag and
 * its NUL fit). */
#define TR__TAG_PAGE 64
_Static_assert(TR_TAG_MAX + 1 <= TR__TAG_PAGE, "a tag fits the tag page");

struct tr_actor {
    tr_node_t *node;
    const tr_behaviour_t *beh;
    tr__rec_t *rec;   /* reference */
    tr__port_t *port; /* this thread's port, carrying rec's id */
    void *mailbox;    /* PULL, bound, bounded by hwm */
    int mailbox_fd;   /* its ZMQ_FD, see tr__sock_fd */
    void *state;
    int hwm;
    const tr_msg_t *args; /* the spawner's, borrowed during init only */
    pthread_t thread;     /* written by the spawner before the start */
    bool stopping;
    bool in_terminate; /* terminate runs: waits are no longer cut short */
    int reason;
    bool process_child;    /* the one actor of a child process */
    char *tagpage;         /* child: shared page with the current tag */
    uint64_t firing_timer; /* the timer whose message is being handled */
    bool firing_cancelled; /* ... and it was cancelled meanwhile */
    char label[TR_NAME_MAX + 24]; /* "name#id" for log lines */
    bool trap_exits;     /* exit signals arrive as "$exit" messages */
    tr__map_t unlinked;  /* child: ids it unlinked (their signals drop) */
    tr_msg_t **pending;  /* "$down"/"$exit" to deliver, in order */
    size_t npending, cappending, pending_head;
    tr__timer_t *timers; /* a binary min-heap on due_ns */
    size_t ntimers, captimers;
    uint64_t next_timer;
    struct tr__io {      /* tr_actor_watch_io's */
        void *sock;      /* or NULL for a plain fd */
        int fd;          /* the fd, or the socket's ZMQ_FD */
        tr_io_fn fn;     /* NULL: unwatched while the loop ran it */
        bool ready;      /* has input (a socket: until it reads dry) */
    } io[TR__IO_MAX];
    int nio;
    /* What its loop polls: inbox, mailbox, watched fds, the stepper's (in
     * the struct rather than on the loop's stack: profiled, that frame
     * made every idle actor thread touch one more 4 KiB stack page). */
    struct pollfd fds[3 + TR__IO_MAX];
    tr_msg_t view; /* the loop's view of what it reads, likewise */
    tr__capsule_st_t cap; /* the last messages, for a crash capsule */
    int step_fd;          /* step mode (runtime/step.c): its eventfd, or -1 */
};

/* Send DOWN to rec's watchers and exit signals to its links, through
 * port (after a failed init: just undo the links). */
void tr__ties_send(tr__port_t *port, tr__rec_t *rec, int reason,
                   bool init_ok);

/* An actor ended: unregister it (keeping a kept name) and take it off the
 * node's running list. */
void tr__rec_finish(tr_node_t *node, tr__rec_t *rec, int reason,
                    bool init_ok);

/* Count an end in the node's stats. */
void tr__stat_end(tr_node_t *node, int reason);

/* A pool actor's counters, for the control endpoint: workers, idle,
 * queued, running, done, failed, retried, worker deaths. */
void tr__actor_set_pool_stats(tr_actor_t *self, const int64_t v[8]);

/* The actor's thread body (a thread actor's thread, or a child process's
 * main thread). */
void *tr__actor_main(void *arg);

/* Bind the mailbox on ipc too (another process sends to it). */
void tr__actor_expose(struct tr_actor *a);

/* A stop request arrived (from the port's inbox). */
void tr__actor_on_stop(struct tr_actor *a, int reason);

/* A monitored actor ended: queue a "$down" for the handler. */
void tr__actor_on_down(struct tr_actor *a, tr_id_t who, int reason);

/* A linked actor ended: queue an "$exit", or end too (see tr_link). */
void tr__actor_on_exit(struct tr_actor *a, tr_id_t who, int reason);

#endif
