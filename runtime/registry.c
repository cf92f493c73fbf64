/* runtime/registry.c - records and the id/name registry of a node. */
#include "runtime/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/clock.h"

int
tr__rec_new(tr__rec_t **out, tr_id_t id, tr__rec_kind_t kind,
            const char *name)
{
    /* aligned_alloc: the struct has a cache-line-aligned member. */
    tr__rec_t *rec = aligned_alloc(_Alignof(tr__rec_t), sizeof *rec);
    if (rec == NULL)
        return TR_ENOMEM;
    memset(rec, 0, sizeof *rec);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&rec->mu, NULL);
    pthread_cond_init(&rec->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&rec->refs, 1);
    rec->id = id;
    rec->kind = kind;
    if (name != NULL)
        snprintf(rec->name, sizeof rec->name, "%s", name);
    *out = rec;
    return 0;
}

void
tr__rec_ref(tr__rec_t *rec)
{
    atomic_fetch_add_explicit(&rec->refs, 1, memory_order_relaxed);
}

void
tr__rec_unref(tr__rec_t **recp)
{
    tr__rec_t *rec = *recp;
    if (rec == NULL)
        return;
    *recp = NULL;
    if (atomic_fetch_sub_explicit(&rec->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&rec->mu);
    pthread_cond_destroy(&rec->cv);
    free(rec->monitors);
    free(rec);
}

int
tr__rec_monitor(tr__rec_t *rec, tr_id_t watcher)
{
    int rc = 0;
    pthread_mutex_lock(&rec->mu);
    if (rec->monitors_closed) {
        rc = TR_ENOENT;
    } else {
        rc = tr__grow((void **)&rec->monitors, rec->nmonitors,
                      &rec->capmonitors, sizeof *rec->monitors, 4);
        if (rc == 0)
            rec->monitors[rec->nmonitors++] = watcher;
    }
    pthread_mutex_unlock(&rec->mu);
    return rc;
}

void
tr__rec_take_monitors(tr__rec_t *rec, tr_id_t **ids, size_t *n)
{
    pthread_mutex_lock(&rec->mu);
    rec->monitors_closed = true;
    *ids = rec->monitors;
    *n = rec->nmonitors;
    rec->monitors = NULL;
    rec->nmonitors = rec->capmonitors = 0;
    pthread_mutex_unlock(&rec->mu);
}

void
tr__rec_set_ended(tr__rec_t *rec, int reason)
{
    pthread_mutex_lock(&rec->mu);
    rec->ended = true;
    rec->reason = reason;
    pthread_cond_broadcast(&rec->cv);
    pthread_mutex_unlock(&rec->mu);
}

int
tr__rec_wait_ended(tr__rec_t *rec, uint64_t deadline_ns, int *reason)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                          .tv_nsec = (long)(deadline_ns % 1000000000u)};
    int rc = 0;
    pthread_mutex_lock(&rec->mu);
    while (!rec->ended) {
        if (deadline_ns == 0) {
            pthread_cond_wait(&rec->cv, &rec->mu);
        } else if (pthread_cond_timedwait(&rec->cv, &rec->mu, &ts) ==
                   ETIMEDOUT) {
            if (!rec->ended)
                rc = TR_ETIMEDOUT;
            break;
        }
    }
    if (rc == 0 && reason != NULL)
        *reason = rec->reason;
    pthread_mutex_unlock(&rec->mu);
    return rc;
}

int
tr__reg_init(tr__registry_t *reg)
{
    memset(reg, 0, sizeof *reg);
    if (pthread_rwlock_init(&reg->lock, NULL) != 0)
        return TR_ENOMEM;
    return 0;
}

void
tr__reg_fini(tr__registry_t *reg)
{
    TR__MAP_EACH(&reg->by_id, slot)
    {
        tr__rec_t *rec = slot->val;
        tr__rec_unref(&rec);
    }
    tr__map_free(&reg->by_id);
    tr__smap_free(&reg->by_name);
    pthread_rwlock_destroy(&reg->lock);
}

int
tr__reg_add(tr__registry_t *reg, tr__rec_t *rec)
{
    int rc;
    pthread_rwlock_wrlock(&reg->lock);
    if (rec->name[0] != '\0' &&
        (rc = tr__smap_add(&reg->by_name, rec->name, rec)) != 0)
        goto out;
    if ((rc = tr__map_put(&reg->by_id, rec->id, rec)) != 0) {
        if (rec->name[0] != '\0')
            tr__smap_del(&reg->by_name, rec->name);
        goto out;
    }
    tr__rec_ref(rec);
out:
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

void
tr__reg_remove(tr__registry_t *reg, tr__rec_t *rec, bool record_exit,
               int reason)
{
    pthread_rwlock_wrlock(&reg->lock);
    tr__rec_t *held = tr__map_del(&reg->by_id, rec->id);
    if (held != NULL && rec->name[0] != '\0' &&
        tr__smap_get(&reg->by_name, rec->name) == rec)
        tr__smap_del(&reg->by_name, rec->name);
    if (record_exit) {
        reg->graves[reg->next_grave] =
            (tr__grave_t){.id = rec->id, .reason = reason};
        reg->next_grave = (reg->next_grave + 1) % TR__GRAVES;
    }
    pthread_rwlock_unlock(&reg->lock);
    tr__rec_unref(&held);
}

tr__rec_t *
tr__reg_get(tr__registry_t *reg, tr_id_t id)
{
    pthread_rwlock_rdlock(&reg->lock);
    tr__rec_t *rec = tr__map_get(&reg->by_id, id);
    if (rec != NULL)
        tr__rec_ref(rec);
    pthread_rwlock_unlock(&reg->lock);
    return rec;
}

tr__rec_t *
tr__reg_lookup(tr__registry_t *reg, const char *name)
{
    pthread_rwlock_rdlock(&reg->lock);
    tr__rec_t *rec = tr__smap_get(&reg->by_name, name);
    if (rec != NULL)
        tr__rec_ref(rec);
    pthread_rwlock_unlock(&reg->lock);
    return rec;
}

int
tr__reg_grave(tr__registry_t *reg, tr_id_t id, int *reason)
{
    int rc = TR_ENOENT;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < TR__GRAVES; i++) {
        if (reg->graves[i].id == id && id != 0) {
            if (reason != NULL)
                *reason = reg->graves[i].reason;
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}
