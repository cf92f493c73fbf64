/* runtime/step.h - step mode for teaching (TROUPE_STEP=1, docs/tools.md):
 * the node's thread actors take messages from their mailboxes as usual
 * but hold them; a stepper thread shows what is held on stderr and reads
 * on stdin which one is handled next. Off, an actor pays one test of
 * its step_fd per batch. */
#ifndef TR_RUNTIME_STEP_H
#define TR_RUNTIME_STEP_H

#include <stdbool.h>

#include "troupe.h"

typedef struct tr__step tr__step_t;
struct tr_actor;

/* When TROUPE_STEP asks for it (and no other node of this process steps
 * already): start the stepper. *out stays NULL otherwise. */
int tr__step_start(tr_node_t *node, tr__step_t **out);

/* After every actor has ended (node destroy). */
void tr__step_stop(tr__step_t **stp);

/* An actor starts: a user behaviour's thread actor is stepped (a->step_fd
 * becomes an eventfd the stepper wakes it with). */
void tr__step_join(struct tr_actor *a);

/* A user message came out of the mailbox: hold it (the view is taken
 * over, left empty) and return true, or false when stepping has been
 * switched off (then deliver it at once). */
bool tr__step_hold(struct tr_actor *a, tr_msg_t *view);

/* The held message chosen for this actor, or NULL; after handling it,
 * call tr__step_done. */
tr_msg_t *tr__step_take(struct tr_actor *a);
void tr__step_done(struct tr_actor *a);

/* The actor ends: what it still holds is dropped (dead letters). */
void tr__step_leave(struct tr_actor *a);

#endif
