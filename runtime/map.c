/* runtime/map.c - open-addressing hash maps (see map.h). */
#include "runtime/map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "troupe.h"

static size_t
s_slot_of(uint64_t h, size_t cap)
{
    return tr__map_slot_of(h, cap);
}

void
tr__map_init(tr__map_t *m)
{
    memset(m, 0, sizeof *m);
}

void
tr__map_free(tr__map_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void
s_insert(tr__map_slot_t *slots, size_t cap, uint64_t key, void *val)
{
    size_t i = s_slot_of(key, cap);
    while (slots[i].key != 0 && slots[i].key != key)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].val = val;
}

int
tr__map_put(tr__map_t *m, uint64_t key, void *val)
{
    if (key == 0)
        return TR_EINVAL;
    if (m->cap != 0) {
        size_t i = s_slot_of(key, m->cap);
        for (; m->slots[i].key != 0; i = (i + 1) & (m->cap - 1)) {
            if (m->slots[i].key == key) {
                m->slots[i].val = val; /* replacing never allocates */
                return 0;
            }
        }
        if ((m->len + 1) * 2 <= m->cap) { /* room: the empty slot found */
            m->slots[i].key = key;
            m->slots[i].val = val;
            m->len++;
            return 0;
        }
    }
    /* Keep the load under 1/2: probes stay short. */
    if ((m->len + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        tr__map_slot_t *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return TR_ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key != 0)
                s_insert(ns, ncap, m->slots[i].key, m->slots[i].val);
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    s_insert(m->slots, m->cap, key, val);
    m->len++;
    return 0;
}

void *
tr__map_del(tr__map_t *m, uint64_t key)
{
    if (m->cap == 0 || key == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = s_slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->slots[i].val;
    /* Backward shift: pull later members of the cluster into the hole when
     * their home slot does not lie between the hole and themselves. */
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = s_slot_of(m->slots[j].key, m->cap);
        bool movable = (i <= j) ? (home <= i || home > j)
                                : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].val = NULL;
    m->len--;
    return val;
}

/* FNV-1a, forced non-zero (0 is not a valid tr__map key). */
static uint64_t
s_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

typedef struct s_sentry {
    struct s_sentry *next;
    void *val;
    char key[]; /* NUL-terminated copy */
} s_sentry_t;

void
tr__smap_init(tr__smap_t *m)
{
    memset(m, 0, sizeof *m);
}

void
tr__smap_free(tr__smap_t *m)
{
    TR__MAP_EACH(&m->by_hash, slot)
    {
        for (s_sentry_t *e = slot->val, *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    tr__map_free(&m->by_hash);
    m->len = 0;
}

void *
tr__smap_get(const tr__smap_t *m, const char *key)
{
    for (s_sentry_t *e = tr__map_get(&m->by_hash, s_hash_str(key)); e;
         e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

int
tr__smap_add(tr__smap_t *m, const char *key, void *val)
{
    uint64_t h = s_hash_str(key);
    s_sentry_t *head = tr__map_get(&m->by_hash, h);
    for (s_sentry_t *e = head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return TR_EEXIST;
    size_t klen = strlen(key);
    s_sentry_t *e = malloc(sizeof *e + klen + 1);
    if (e == NULL)
        return TR_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->val = val;
    e->next = head;
    if (tr__map_put(&m->by_hash, h, e) != 0) {
        free(e);
        return TR_ENOMEM;
    }
    m->len++;
    return 0;
}

void *
tr__smap_del(tr__smap_t *m, const char *key)
{
    uint64_t h = s_hash_str(key);
    s_sentry_t *head = tr__map_get(&m->by_hash, h);
    for (s_sentry_t **pp = &head; *pp; pp = &(*pp)->next) {
        s_sentry_t *e = *pp;
        if (strcmp(e->key, key) != 0)
            continue;
        *pp = e->next;
        if (head == NULL)
            tr__map_del(&m->by_hash, h);
        else
            tr__map_put(&m->by_hash, h, head); /* replaces: cannot fail */
        void *val = e->val;
        free(e);
        m->len--;
        return val;
    }
    return NULL;
}

void
tr__smap_each(const tr__smap_t *m,
              void (*fn)(const char *key, void *val, void *arg), void *arg)
{
    TR__MAP_EACH(&m->by_hash, slot)
    {
        for (s_sentry_t *e = slot->val; e != NULL; e = e->next)
            fn(e->key, e->val, arg);
    }
}

int
tr__grow(void **items, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    void *ni = realloc(*items, ncap * elem);
    if (ni == NULL)
        return TR_ENOMEM;
    *items = ni;
    *cap = ncap;
    return 0;
}
