/* runtime/behaviour.h - the process-wide table of behaviours by name.
 * Process-wide (not per node) because a process actor's child must find
 * its behaviour by name before it has a node. */
#ifndef TR_RUNTIME_BEHAVIOUR_H
#define TR_RUNTIME_BEHAVIOUR_H

#include "troupe.h"

/* The behaviour registered under name, or NULL. The pointer stays valid
 * for the life of the process (entries are never removed). */
const tr_behaviour_t *tr__behaviour_find(const char *name);

/* Check a name for actors and behaviours: 1..TR_NAME_MAX bytes.
 * TR_EINVAL (NULL/empty), TR_ENAMETOOLONG. */
int tr__name_check(const char *name);

#endif
