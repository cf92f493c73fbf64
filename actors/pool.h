/* actors/pool.h - what the pool shares with the other ready-made actors
 * (the pipeline runs its stages as pool tasks). */
#ifndef TR_ACTORS_POOL_H
#define TR_ACTORS_POOL_H

#include "troupe.h"

/* The task function registered under name (TR_TASK or
 * tr_task_register), or NULL: none, or an items task. */
tr_task_fn tr__task_fn(const char *name);

#endif
