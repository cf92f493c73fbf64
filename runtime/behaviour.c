/* runtime/behaviour.c - process-wide behaviour table. Registration is rare
 * (program start) and lookups happen once per spawn, so a mutex and a
 * string map are plenty. */
#include "runtime/behaviour.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/map.h"
#include "transport/log.h"

typedef struct s_entry {
    tr_behaviour_t b;
    char name[TR_NAME_MAX + 1];
} s_entry_t;

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static tr__smap_t s_table; /* name -> s_entry_t*, never shrinks */

int
tr__name_check(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return tr__refuse(TR_EINVAL, "a name is NULL or empty");
    if (strnlen(name, TR_NAME_MAX + 1) > TR_NAME_MAX)
        return tr__refuse(TR_ENAMETOOLONG, "name '%.24s...' is longer "
                          "than %d bytes", name, TR_NAME_MAX);
    return 0;
}

int
tr_behaviour_register(const tr_behaviour_t *b)
{
    if (b == NULL || b->handle == NULL)
        return TR_EINVAL;
    int rc = tr__name_check(b->name);
    if (rc != 0)
        return rc;
    s_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return TR_ENOMEM;
    e->b = *b;
    snprintf(e->name, sizeof e->name, "%s", b->name);
    e->b.name = e->name;

    pthread_mutex_lock(&s_mu);
    rc = tr__smap_add(&s_table, e->name, e);
    pthread_mutex_unlock(&s_mu);
    if (rc != 0) {
        free(e);
        if (rc == TR_EEXIST)
            TR__LOG(TR_LOG_WARN, "runtime",
                    "behaviour '%s' is already registered", b->name);
    }
    return rc;
}

void
tr__behaviour_register_static(const tr_behaviour_t *b)
{
    int rc = tr_behaviour_register(b);
    if (rc != 0) {
        /* Runs before main(): no caller to return to. A duplicate name is
         * a programming error, so stop loudly rather than run the wrong
         * code under a name. */
        fprintf(stderr, "troupe: cannot register behaviour '%s': %s\n",
                b && b->name ? b->name : "(null)", tr_strerror(rc));
        abort();
    }
}

const tr_behaviour_t *
tr__behaviour_find(const char *name)
{
    if (name == NULL)
        return NULL;
    pthread_mutex_lock(&s_mu);
    s_entry_t *e = tr__smap_get(&s_table, name);
    pthread_mutex_unlock(&s_mu);
    return e ? &e->b : NULL;
}
