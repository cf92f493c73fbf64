/* runtime/registry.c - records and the id/name registry of a node. */
#include "runtime/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/clock.h"
#include "troupe.h"

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
    free(rec->links);
    free(rec);
}

int
tr__rec_monitor(tr__rec_t *rec, tr_id_t watcher)
{
    int rc = TR_ENOENT;
    pthread_mutex_lock(&rec->mu);
    if (!rec->ties_closed) {
        rc = tr__grow((void **)&rec->monitors, rec->nmonitors,
                      &rec->capmonitors, sizeof *rec->monitors, 4);
        if (rc == 0)
            rec->monitors[rec->nmonitors++] = watcher;
    }
    pthread_mutex_unlock(&rec->mu);
    return rc;
}

static int
s_link_add(tr__rec_t *rec, tr_id_t other)
{
    for (size_t i = 0; i < rec->nlinks; i++)
        if (rec->links[i] == other)
            return 0;
    int rc = tr__grow((void **)&rec->links, rec->nlinks, &rec->caplinks,
                      sizeof *rec->links, 4);
    if (rc == 0)
        rec->links[rec->nlinks++] = other;
    return rc;
}

/* Caller holds rec->mu, or calls it on a list no one else can reach. */
static bool
s_unlink_locked(tr__rec_t *rec, tr_id_t other)
{
    for (size_t i = 0; i < rec->nlinks; i++) {
        if (rec->links[i] == other) {
            rec->links[i] = rec->links[--rec->nlinks];
            return true;
        }
    }
    return false;
}

int
tr__rec_link(tr__rec_t *a, tr__rec_t *b)
{
    if (a == b)
        return TR_EINVAL;
    /* Both locks, in id order, so two links made at once cannot deadlock
     * and an ending actor sees either both halves or neither. */
    tr__rec_t *first = a->id < b->id ? a : b, *second = first == a ? b : a;
    pthread_mutex_lock(&first->mu);
    pthread_mutex_lock(&second->mu);
    int rc = TR_ENOENT;
    if (!a->ties_closed && !b->ties_closed &&
        (rc = s_link_add(a, b->id)) == 0 && (rc = s_link_add(b, a->id)) != 0)
        s_unlink_locked(a, b->id); /* all or nothing */
    pthread_mutex_unlock(&second->mu);
    pthread_mutex_unlock(&first->mu);
    return rc;
}

int
tr__rec_link_one(tr__rec_t *rec, tr_id_t other)
{
    pthread_mutex_lock(&rec->mu);
    int rc = rec->ties_closed ? TR_ENOENT : s_link_add(rec, other);
    pthread_mutex_unlock(&rec->mu);
    return rc;
}

bool
tr__rec_unlink(tr__rec_t *rec, tr_id_t other)
{
    pthread_mutex_lock(&rec->mu);
    bool found = s_unlink_locked(rec, other);
    pthread_mutex_unlock(&rec->mu);
    return found;
}

void
tr__rec_take_ties(tr__rec_t *rec, tr_id_t **monitors, size_t *nmon,
                  tr_id_t **links, size_t *nlinks)
{
    pthread_mutex_lock(&rec->mu);
    rec->ties_closed = true;
    *monitors = rec->monitors;
    *nmon = rec->nmonitors;
    *links = rec->links;
    *nlinks = rec->nlinks;
    rec->monitors = rec->links = NULL;
    rec->nmonitors = rec->capmonitors = rec->nlinks = rec->caplinks = 0;
    pthread_mutex_unlock(&rec->mu);
}

void
tr__rec_report_init(tr__rec_t *rec, int rc)
{
    pthread_mutex_lock(&rec->mu);
    rec->init_done = true;
    rec->init_rc = rc;
    if (rc == 0)
        atomic_store(&rec->up, true);
    pthread_cond_broadcast(&rec->cv);
    pthread_mutex_unlock(&rec->mu);
}

void
tr__rec_note_reason(tr__rec_t *rec, int reason)
{
    pthread_mutex_lock(&rec->mu);
    rec->reason = reason;
    pthread_mutex_unlock(&rec->mu);
}

void
tr__rec_note_tag(tr__rec_t *rec, const char *tag)
{
    pthread_mutex_lock(&rec->mu);
    snprintf(rec->last_tag, sizeof rec->last_tag, "%s", tag);
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&reg->names_mu, NULL);
    pthread_cond_init(&reg->names_cv, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

static void
s_unref_value(const char *key, void *val, void *arg)
{
    (void)key, (void)arg;
    tr__rec_t *rec = val;
    tr__rec_unref(&rec);
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
    tr__smap_each(&reg->by_name, s_unref_value, NULL);
    tr__smap_free(&reg->by_name);
    pthread_rwlock_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->names_mu);
    pthread_cond_destroy(&reg->names_cv);
}

static void
s_names_changed(tr__registry_t *reg)
{
    pthread_mutex_lock(&reg->names_mu);
    reg->names_gen++;
    pthread_cond_broadcast(&reg->names_cv);
    pthread_mutex_unlock(&reg->names_mu);
}

int
tr__reg_add(tr__registry_t *reg, tr__rec_t *rec)
{
    int rc = 0;
    tr__rec_t *old = NULL;
    bool named = rec->name[0] != '\0';
    pthread_rwlock_wrlock(&reg->lock);
    if (named) {
        tr__rec_t *cur = tr__smap_get(&reg->by_name, rec->name);
        if (cur != NULL) {
            /* Only a kept name between two actors can be taken over. */
            if (!(cur->keep_name && rec->keep_name &&
                  atomic_load(&cur->dead))) {
                rc = TR_EEXIST;
                goto out;
            }
            old = tr__smap_del(&reg->by_name, rec->name);
            rec->took_over = true;
            /* A restart: what the control endpoint tells of the name. */
            rec->restarts = old->restarts + 1;
            rec->replaces = old->id;
            pthread_mutex_lock(&old->mu);
            if (old->reason < 0)
                snprintf(rec->last_failure, sizeof rec->last_failure,
                         "%s%s%s%s", tr_strerror(old->reason),
                         old->last_tag[0] ? " handling '" : "",
                         old->last_tag, old->last_tag[0] ? "'" : "");
            else
                memcpy(rec->last_failure, old->last_failure,
                       sizeof rec->last_failure);
            rec->crash_hash = old->crash_hash; /* for quarantine */
            rec->crash_streak = old->crash_streak;
            pthread_mutex_unlock(&old->mu);
        }
        if ((rc = tr__smap_add(&reg->by_name, rec->name, rec)) != 0) {
            if (old != NULL && tr__smap_add(&reg->by_name, rec->name, old) == 0)
                old = NULL; /* put back (cannot fail: the slot was free) */
            goto out;
        }
        tr__rec_ref(rec); /* the name map's reference */
    }
    if ((rc = tr__map_put(&reg->by_id, rec->id, rec)) != 0) {
        if (named) {
            tr__smap_del(&reg->by_name, rec->name);
            tr__rec_unref(&rec);
            rec = NULL;
        }
        goto out;
    }
    tr__rec_ref(rec);
out:
    pthread_rwlock_unlock(&reg->lock);
    tr__rec_unref(&old);
    if (rc == 0 && named)
        s_names_changed(reg);
    return rc;
}

void
tr__reg_remove(tr__registry_t *reg, tr__rec_t *rec, bool record_exit,
               int reason)
{
    tr__rec_t *named = NULL;
    pthread_rwlock_wrlock(&reg->lock);
    tr__rec_t *held = tr__map_del(&reg->by_id, rec->id);
    if (rec->name[0] != '\0' && !rec->keep_name &&
        tr__smap_get(&reg->by_name, rec->name) == rec)
        named = tr__smap_del(&reg->by_name, rec->name);
    if (record_exit) {
        reg->graves[reg->next_grave] =
            (tr__grave_t){.id = rec->id, .reason = reason};
        reg->next_grave = (reg->next_grave + 1) % TR__GRAVES;
    }
    pthread_rwlock_unlock(&reg->lock);
    tr__rec_unref(&held);
    if (named != NULL) {
        tr__rec_unref(&named);
        s_names_changed(reg);
    } else if (rec->keep_name) {
        s_names_changed(reg); /* waiters see it restarting now */
    }
}

int
tr__reg_release(tr__registry_t *reg, const char *name)
{
    tr__rec_t *old = NULL;
    int rc = TR_ENOENT;
    pthread_rwlock_wrlock(&reg->lock);
    tr__rec_t *cur = tr__smap_get(&reg->by_name, name);
    if (cur != NULL) {
        if (atomic_load(&cur->dead)) {
            old = tr__smap_del(&reg->by_name, name);
            rc = 0;
        } else {
            /* Held: no longer kept, it goes when its actor ends. */
            atomic_store(&cur->keep_name, false);
            rc = TR_EEXIST;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    if (old != NULL) {
        tr__rec_unref(&old);
        s_names_changed(reg);
    }
    return rc;
}

int
tr__reg_resolve(tr__registry_t *reg, const char *name, int64_t timeout_ms,
                uint64_t cap_ns, tr_id_t *id)
{
    uint64_t deadline_ns = 0;
    struct timespec ts = {0};
    for (int round = 0;; round++) {
        pthread_mutex_lock(&reg->names_mu);
        uint64_t gen = reg->names_gen;
        pthread_mutex_unlock(&reg->names_mu);

        tr__rec_t *rec = tr__reg_lookup(reg, name);
        if (rec == NULL)
            return TR_ENOENT;
        bool dead = atomic_load(&rec->dead);
        bool kept = dead && rec->keep_name;
        if (!dead)
            *id = rec->id;
        tr__rec_unref(&rec);
        if (!dead)
            return 0;
        if (!kept)
            return TR_ENOENT; /* ending, and the name goes with it */
        if (timeout_ms == 0)
            return TR_ERESTARTING;
        if (round == 0) {
            deadline_ns = tr__deadline_min(tr__deadline_after_ms(timeout_ms),
                                           cap_ns);
            ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
            ts.tv_nsec = (long)(deadline_ns % 1000000000u);
        }
        if (deadline_ns != 0 && tr__now_ns() >= deadline_ns)
            return TR_ERESTARTING;
        /* Kept between two actors: wait for the name to change hands. */
        pthread_mutex_lock(&reg->names_mu);
        int wrc = 0;
        while (reg->names_gen == gen && wrc != ETIMEDOUT)
            wrc = deadline_ns ? pthread_cond_timedwait(&reg->names_cv,
                                                       &reg->names_mu, &ts)
                              : pthread_cond_wait(&reg->names_cv,
                                                  &reg->names_mu);
        pthread_mutex_unlock(&reg->names_mu);
    }
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
