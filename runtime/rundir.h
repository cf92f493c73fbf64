/* runtime/rundir.h - the node's private runtime directory (see
 * rundir.c). */
#ifndef TR_RUNTIME_RUNDIR_H
#define TR_RUNTIME_RUNDIR_H

#include <stddef.h>

#include "troupe.h"

/* ipc endpoints are unix socket paths: 108 bytes at most, with room for
 * "/<id>.m" after the directory. */
#define TR__RUNDIR_MAX 80

/* Create this process's node directory (cleaning stale ones of dead
 * nodes first) and write its path to out. Errors: TR_EPERM (a base
 * directory others can write to), TR_ENAMETOOLONG, TR_ESYS. */
int tr__rundir_create(char *out, size_t cap);

/* Remove a node directory and its files. */
void tr__rundir_remove(const char *dir);

/* The start time of process pid (clock ticks since boot, /proc), or 0
 * when there is no such process. */
unsigned long long tr__pid_start_time(long pid);

#endif
