/* runtime/deftab.c - see deftab.h. */
#include "runtime/deftab.h"

#include <stdio.h>
#include <string.h>

#include "runtime/behaviour.h"
#include "runtime/map.h"
#include "troupe.h"

/* An entry: the name (TR_NAME_MAX + 1 bytes), then the definition. */
#define S_NAME (TR_NAME_MAX + 1)

static unsigned char *
s_at(const tr__deftab_t *t, size_t i)
{
    return t->items + i * (S_NAME + t->size);
}

int
tr__deftab_add(tr__deftab_t *t, const char *name, const void *def)
{
    int rc = tr__name_check(name);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && rc == 0; i++)
        if (strcmp((const char *)s_at(t, i), name) == 0)
            rc = TR_EEXIST;
    if (rc == 0 && (rc = tr__grow((void **)&t->items, t->n, &t->cap,
                                  S_NAME + t->size, 16)) == 0) {
        unsigned char *e = s_at(t, t->n++);
        snprintf((char *)e, S_NAME, "%s", name); /* checked: it fits */
        memcpy(e + S_NAME, def, t->size);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

bool
tr__deftab_find(tr__deftab_t *t, const char *name, void *def)
{
    bool found = false;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && !found; i++) {
        const unsigned char *e = s_at(t, i);
        if (strcmp((const char *)e, name) == 0) {
            memcpy(def, e + S_NAME, t->size);
            found = true;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}
