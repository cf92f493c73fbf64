/* transport/pool.h - where message structs come from and go back to.
 *
 * Each thread keeps its own pool of free tr_msg_t structs. A message sent
 * to another thread is handed to ZeroMQ without a copy and comes back to
 * its pool when the receiver is done with it: the receiver pushes it onto
 * the owner pool's "remote" list with one compare-and-swap, and the owner
 * takes that whole list back at once when its local list runs dry (the
 * remote-free scheme of mimalloc and snmalloc).
 *
 * Why: profiled, a frame that ZeroMQ mallocs in the sender and frees in
 * the receiver falls outside glibc's lock-free fast bins at our sizes, and
 * the arena lock the two threads then fight over cost a third of tell
 * throughput. Pools also make the struct itself free of malloc. */
#ifndef TR_TRANSPORT_POOL_H
#define TR_TRANSPORT_POOL_H

#include "troupe.h"

/* A struct from the calling thread's pool (uninitialised, its pool field
 * set), or NULL when out of memory. */
tr_msg_t *tr__pool_get(void);

/* Give a struct back to the pool it came from, from any thread. Whatever
 * buffers it points to must have been released by the caller. */
void tr__pool_put(tr_msg_t *m);

/* Give back structs of one pool, linked by pool_next from first to last
 * and all of it, from a thread that is not the pool's: one exchange. */
void tr__pool_put_list(tr_msg_t *first, tr_msg_t *last);

#endif
