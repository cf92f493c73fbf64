/* runtime/control.h - the node's control endpoint (docs/control.md). */
#ifndef TR_RUNTIME_CONTROL_H
#define TR_RUNTIME_CONTROL_H

#include "troupe.h"

typedef struct tr__control tr__control_t;

/* Write <rundir>/node and serve ipc://<rundir>/control from a thread of
 * its own (node->rundir must exist). Errors: TR_ENOMEM, TR_ESYS. */
int tr__control_start(tr_node_t *node, tr__control_t **out);

/* Stop serving (first thing in node destroy); *c is NULL after. */
void tr__control_stop(tr__control_t **c);

/* Ask actor id to stop with reason, without waiting (from any thread). */
int tr__stop_async(tr_node_t *node, tr_id_t id, int reason);

#endif
