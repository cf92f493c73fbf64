/* runtime/place.h - where actors and pipeline stages run, chosen at
 * launch: the TROUPE_PLACE text (or "@FILE"), "NAME=PLACE[,...]" with
 * PLACE one of thread[:N], process[:N], node NAME[:N] or node b|c[:N]
 * (entries split by commas or lines; '#' starts a comment). */
#ifndef TR_RUNTIME_PLACE_H
#define TR_RUNTIME_PLACE_H

#include <stdbool.h>
#include <stddef.h>

#include "troupe.h"

typedef struct tr__place {
    int kind;                   /* 0 thread, 1 process, 2 node(s) */
    char node[TR_NAME_MAX + 1]; /* kind 2: "b" or "b|c" */
    int n;                      /* :N, or 0 */
} tr__place_t;

/* Read one PLACE. from names the text's source for the log.
 * Errors: TR_EINVAL (logged). */
int tr__place_parse(const char *v, const char *from, tr__place_t *out);

/* Call fn for each NAME=PLACE of text; stops at fn's first error.
 * Errors: TR_EINVAL (an entry without '=', logged), TR_ENOMEM, fn's. */
typedef int (*tr__place_fn)(void *arg, const char *name, const char *place,
                            const char *from);
int tr__place_each(const char *text, const char *from, tr__place_fn fn,
                   void *arg);

/* TROUPE_PLACE's text (read from its file for "@FILE") into a new
 * string (*out NULL when unset or empty); *from names where it came
 * from. Errors: TR_EINVAL (an unreadable or too long file), TR_ENOMEM. */
int tr__place_env(char **out, const char **from);

/* The place TROUPE_PLACE gives an actor called name: 1 (out set), 0
 * (none), or an error of tr__place_env / tr__place_parse. */
int tr__place_find(const char *name, tr__place_t *out);

/* Set by a thread while it spawns what was placed already (or asked for
 * by another node): TROUPE_PLACE is not read again. */
extern _Thread_local bool tr__place_off;

#endif
