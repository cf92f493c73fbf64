/* runtime/chaos.h - faults on purpose (TROUPE_CHAOS; see chaos.c). */
#ifndef TR_RUNTIME_CHAOS_H
#define TR_RUNTIME_CHAOS_H

#include <stdbool.h>

#include "troupe.h"

typedef struct tr__chaos tr__chaos_t;

/* Parse spec and start injecting. Errors: TR_EINVAL (a bad spec: the log
 * says what is wanted), TR_ENOMEM. */
int tr__chaos_start(tr_node_t *node, const char *spec, tr__chaos_t **out);

/* Stop (SIGCONT what is stopped) and log what was injected and seen
 * (node destroy, before the actors stop). */
void tr__chaos_stop(tr__chaos_t **c);

/* A user message is about to leave sender's thread: maybe wait first;
 * true when it is to be sent twice. */
bool tr__chaos_on_send(tr__chaos_t *c, tr_id_t sender);

/* While on, this thread's sends draw no fault (the duplicate itself). */
void tr__chaos_inside(bool on);

#endif
