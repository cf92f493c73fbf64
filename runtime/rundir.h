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
 * directory, or a node directory found there, that another user can write
 * to; the log says which and why), TR_ENAMETOOLONG, TR_ESYS. */
int tr__rundir_create(char *out, size_t cap);

/* Check the base directory without making anything: 0 when it is private
 * or not there yet. Errors: TR_EPERM (another user can write to it; the
 * log says which and why), TR_ESYS (not a directory). */
int tr__rundir_check(void);

/* Remove a node directory and its files. */
void tr__rundir_remove(const char *dir);

/* The start time of process pid (clock ticks since boot, /proc), or 0
 * when there is no such process. */
unsigned long long tr__pid_start_time(long pid);

#endif
