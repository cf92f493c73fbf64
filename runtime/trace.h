/* runtime/trace.h - recording what actors do (docs/control.md, Traces).
 * Off, each place that records costs one test of node->trace. */
#ifndef TR_RUNTIME_TRACE_H
#define TR_RUNTIME_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

typedef struct tr__trace tr__trace_t;

enum {
    TR__TRACE_SEND = 1,
    TR__TRACE_RECV = 2,
    TR__TRACE_SPAWN = 3,
    TR__TRACE_EXIT = 4,
    TR__TRACE_RESTART = 5,
    TR__TRACE_DOWN = 6,
};

/* Open path (a child process: path.<pid>) and write the header.
 * Errors: TR_ESYS, TR_ENOMEM. */
int tr__trace_open(const char *path, bool child, tr__trace_t **out);

/* A trace with no file: only the ring, once switched on (the control
 * command "watch" on a node traced to no file). Errors: TR_ENOMEM. */
int tr__trace_open_ring(tr__trace_t **out);

/* Keep the last TR__TRACE_RING records in memory too, from now on (any
 * thread; idempotent). Errors: TR_ENOMEM. */
#define TR__TRACE_RING 1024
int tr__trace_ring_on(tr__trace_t *t);

/* Copy up to cap ring records from sequence number since on (those
 * still in the ring), oldest first; *next is the sequence number after
 * the last one copied. ts is ns since the trace began. */
typedef struct tr__trace_ev {
    uint64_t seq, ts, a, b;
    uint32_t size;
    int kind;
    char text[33];
} tr__trace_ev_t;
size_t tr__trace_snapshot(tr__trace_t *t, uint64_t since, tr__trace_ev_t *out,
                          size_t cap, uint64_t *next);

/* Write every thread's records and close (node destroy, when the other
 * threads are done with the node). */
void tr__trace_close(tr__trace_t **t);

/* One record, into the calling thread's buffer (written out when full,
 * when the thread ends, and at close). text may be NULL. */
void tr__trace_add(tr__trace_t *t, int kind, uint64_t a, uint64_t b,
                   uint32_t size, const char *text);

/* Write the calling thread's records now and free its buffer (an actor
 * thread that ends; should it record again, it gets a new one). */
void tr__trace_flush_thread(tr__trace_t *t);

#endif
