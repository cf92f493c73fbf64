/* runtime/deftab.h - a process-wide table of named definitions (pool
 * tasks, pipeline stages): filled mostly before main() by the TR_TASK and
 * TR_STAGE constructors, read by workers; a mutex guards it. */
#ifndef TR_RUNTIME_DEFTAB_H
#define TR_RUNTIME_DEFTAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct tr__deftab {
    pthread_mutex_t mu;
    unsigned char *items; /* n entries of (name, definition) */
    size_t n, cap;
    size_t size; /* bytes of one definition */
} tr__deftab_t;

#define TR__DEFTAB_INIT(type) {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, sizeof(type)}

/* Add name (checked: 1..63 bytes) with a copy of def. Errors: TR_EEXIST,
 * TR_ENOMEM, TR_EINVAL, TR_ENAMETOOLONG. */
int tr__deftab_add(tr__deftab_t *t, const char *name, const void *def);

/* Copy name's definition into def: false if there is none. */
bool tr__deftab_find(tr__deftab_t *t, const char *name, void *def);

#endif
