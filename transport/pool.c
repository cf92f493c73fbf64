/* transport/pool.c - per-thread pools of message structs with remote
 * frees (see pool.h).
 *
 * Lifetime: a pool holds one reference for its thread and one for every
 * struct it has handed out and not yet freed. When the thread exits the
 * pool is orphaned: its free structs are freed and its remote list is
 * closed with a marker, in one exchange; a struct coming back later finds
 * the marker and is freed by whoever brings it. A struct pushed before
 * the marker is the exiting owner's to free, so a pusher never touches
 * the pool after its push. The last reference frees the pool.
 */
#include "transport/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/msg.h"

/* Free structs a pool keeps from its own frees; past this they go back to
 * malloc. (What receivers return is kept whole: it is bounded by what was
 * in flight, and will be needed again by the same traffic.) */
#define TR__POOL_KEEP 256

/* The owner's fields and the ones other threads write live on separate
 * cache lines: profiled, sharing one line made every remote push fetch it
 * back from the owner's core. */
typedef struct tr__pool {
    tr_msg_t *local; /* owner thread only */
    long nlocal;
    _Alignas(64) _Atomic(tr_msg_t *) remote; /* pushed by other threads;
                                               * S_ORPHAN once it left */
    _Atomic long refs;
} tr__pool_t;

#define S_ORPHAN ((tr_msg_t *)(uintptr_t)1)

static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
/* initial-exec: a plain %fs-relative load, not a __tls_get_addr call per
 * message (this is a shared library). */
static _Thread_local tr__pool_t *s_mine
    __attribute__((tls_model("initial-exec")));

static void
s_unref(tr__pool_t *p, long n)
{
    if (n > 0 && atomic_fetch_sub(&p->refs, n) == n)
        free(p);
}

static void
s_free(tr_msg_t *m)
{
    free(m->spare);
    free(m);
}

/* Free a list of structs; returns how many. */
static long
s_free_list(tr_msg_t *m)
{
    long n = 0;
    for (tr_msg_t *next; m != NULL; m = next, n++) {
        next = m->pool_next;
        s_free(m);
    }
    return n;
}

static void
s_thread_exit(void *arg)
{
    tr__pool_t *p = arg;
    s_mine = NULL;
    long n = s_free_list(p->local);
    p->local = NULL;
    n += s_free_list(atomic_exchange(&p->remote, S_ORPHAN));
    s_unref(p, n + 1);
}

static void
s_make_key(void)
{
    pthread_key_create(&s_key, s_thread_exit);
}

static tr__pool_t *
s_pool(void)
{
    if (s_mine != NULL)
        return s_mine;
    pthread_once(&s_once, s_make_key);
    /* aligned_alloc: the struct has a cache-line-aligned member. */
    tr__pool_t *p = aligned_alloc(_Alignof(tr__pool_t), sizeof *p);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    atomic_init(&p->refs, 1);
    if (pthread_setspecific(s_key, p) != 0) {
        free(p);
        return NULL;
    }
    s_mine = p;
    return p;
}

tr_msg_t *
tr__pool_get(void)
{
    tr__pool_t *p = s_pool();
    if (p == NULL)
        return NULL;
    if (p->local == NULL && atomic_load_explicit(&p->remote,
                                                 memory_order_relaxed)) {
        /* Take back everything receivers returned, in one exchange, and
         * without walking it (a walk is a cache miss per struct, all on
         * the other core). nlocal counts only our own frees: the list
         * holds at most what was in flight plus TR__POOL_KEEP. */
        p->local = atomic_exchange(&p->remote, NULL);
        p->nlocal = 0;
    }
    tr_msg_t *m = p->local;
    if (m != NULL) {
        p->local = m->pool_next;
        if (p->nlocal > 0)
            p->nlocal--;
        /* The next one is likely on the other core's cache (a receiver
         * gave it back): fetch it while this one is being filled. */
        if (p->local != NULL)
            __builtin_prefetch(p->local, 1);
        return m;
    }
    if ((m = malloc(sizeof *m)) == NULL)
        return NULL;
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    m->pool = p;
    m->chain = NULL;
    atomic_init(&m->seal, 0); /* never open: generation 0, state 0 */
    m->spare = NULL;
    m->spare_cap = 0;
    return m;
}

void
tr__pool_put_list(tr_msg_t *first, tr_msg_t *last)
{
    tr__pool_t *p = first->pool;
    tr_msg_t *head = atomic_load_explicit(&p->remote, memory_order_acquire);
    do {
        if (head == S_ORPHAN) { /* its thread left: they go one by one */
            for (tr_msg_t *m = first, *next; m != NULL; m = next) {
                next = m == last ? NULL : m->pool_next;
                tr__pool_put(m);
            }
            return;
        }
        last->pool_next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &p->remote, &head, first, memory_order_release, memory_order_acquire));
}

void
tr__pool_put(tr_msg_t *m)
{
    tr__pool_t *p = m->pool;
    if (p == s_mine) {
        if (p->nlocal < TR__POOL_KEEP) {
            m->pool_next = p->local;
            p->local = m;
            p->nlocal++;
        } else {
            s_free(m);
            s_unref(p, 1);
        }
        return;
    }
    tr_msg_t *head = atomic_load_explicit(&p->remote, memory_order_acquire);
    do {
        if (head == S_ORPHAN) { /* its thread left: the struct goes */
            s_free(m);
            s_unref(p, 1);
            return;
        }
        m->pool_next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &p->remote, &head, m, memory_order_release, memory_order_acquire));
    /* Pushed: the owner takes it back, or frees it when it leaves. */
}
