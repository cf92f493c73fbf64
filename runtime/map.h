/* runtime/map.h - small open-addressing hash maps: u64 -> pointer and
 * string -> pointer. Not thread-safe: each map belongs to one thread or
 * sits behind its owner's lock. Linear probing with backward-shift deletion
 * (no tombstones), so lookups stay short after many inserts and removals. */
#ifndef TR_RUNTIME_MAP_H
#define TR_RUNTIME_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr__map_slot {
    uint64_t key; /* 0 marks an empty slot: key 0 is not allowed */
    void *val;
} tr__map_slot_t;

typedef struct tr__map {
    tr__map_slot_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t len;
} tr__map_t;

void tr__map_init(tr__map_t *m);
void tr__map_free(tr__map_t *m);

/* Fibonacci hashing spreads sequential ids (the common key) well. */
static inline size_t
tr__map_slot_of(uint64_t h, size_t cap)
{
    return (size_t)((h * 0x9E3779B97F4A7C15ull) >> 7) & (cap - 1);
}

/* The value of key, or NULL. Inline: a lookup is on every send and
 * reply, and its call cost as much as the probe (profiled). */
static inline void *
tr__map_get(const tr__map_t *m, uint64_t key)
{
    if (m->cap == 0 || key == 0)
        return NULL;
    for (size_t i = tr__map_slot_of(key, m->cap);;
         i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].val;
        if (m->slots[i].key == 0)
            return NULL;
    }
}
/* Insert or replace. TR_ENOMEM (map unchanged), TR_EINVAL for key 0. */
int tr__map_put(tr__map_t *m, uint64_t key, void *val);
/* Remove and return the value (NULL if absent). */
void *tr__map_del(tr__map_t *m, uint64_t key);

/* Visit each entry; the callback must not change the map. */
#define TR__MAP_EACH(m, slot)                                               \
    for (tr__map_slot_t *slot = (m)->slots;                                 \
         (m)->slots && slot < (m)->slots + (m)->cap; slot++)                \
        if (slot->key != 0)

/* String keys, built on tr__map: the key is the string's 64-bit hash and
 * the value a short chain of entries, so a hash collision costs a strcmp
 * and never a wrong answer. The map keeps its own copy of each key. */
typedef struct tr__smap {
    tr__map_t by_hash;
    size_t len;
} tr__smap_t;

void tr__smap_init(tr__smap_t *m);
void tr__smap_free(tr__smap_t *m);
void *tr__smap_get(const tr__smap_t *m, const char *key);
/* Insert; TR_EEXIST if the key is there (map unchanged), TR_ENOMEM. */
int tr__smap_add(tr__smap_t *m, const char *key, void *val);
void *tr__smap_del(tr__smap_t *m, const char *key);
/* Call fn on each entry; fn must not change the map. */
void tr__smap_each(const tr__smap_t *m,
                   void (*fn)(const char *key, void *val, void *arg),
                   void *arg);

/* Make room for one more item in a growable array of items of elem bytes
 * (*cap doubles, from first). TR_ENOMEM leaves the array as it was. */
int tr__grow(void **items, size_t n, size_t *cap, size_t elem, size_t first);

#endif
