/* actors/pubsub.c - topics, subscriptions and fan-out (docs/pubsub.md).
 *
 * Each node that has topics runs one service actor, "tr_pubsub", which
 * owns the node's table of topics and subscriptions: it adds and removes
 * subscriptions (they are requests to it, from any node or process), and
 * it monitors every subscriber, so a subscriber's end removes its
 * subscriptions. The table is shared with the threads of this process:
 * a publish reads the topic's list of subscriptions under the topic's
 * read lock, takes a reference to each, lets the lock go and sends each
 * subscriber its copy from the publishing thread itself, with no relay in
 * between (measured in docs/pubsub.md: a relay actor, or ZeroMQ XPUB,
 * costs more than it saves, or loses the exact per-subscriber counts).
 *
 * A copy goes into the subscriber's mailbox with try_tell: a full mailbox
 * drops the copy and counts it, the documented contract of PUB/SUB; a
 * reliable topic waits for room instead, up to a deadline for the whole
 * publish. What is not in this process (a process actor's child, another
 * node) publishes by sending "pub" to the topic node's service, which
 * then publishes it.
 *
 * Locks, outermost first: s_mu (the list of tables), a table's lock (its
 * lists), a topic's lock (its subscriptions). Publishers take only the
 * last. Topics and subscriptions are reference counted: a handle, a
 * table and a publish in flight each hold one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "runtime/map.h"
#include "runtime/node.h"
#include "runtime/port.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/msg.h"
#include "troupe.h"

#define S_SERVICE "tr_pubsub"
#define S_WARN_NS 1000000000ull /* one WARN line a second a subscription */
#define S_STACK_SUBS 32         /* fan-out to this many without malloc */
#define S_RETRY_MS 500          /* subscribe again to a node's new service */

/* ------------------------------------------------------------------ */
/* The table                                                           */

typedef struct s_sub {
    _Atomic int refs;
    tr_id_t id;
    char pattern[TR_TAG_MAX + 1];
    bool prefix;
    char tag[TR_TAG_MAX + 1]; /* "": the topic's name */
    /* A subscription to another node's topic, kept on the subscriber's
     * side: node names that node, upstream its service. Such a
     * subscription matches no topic here: it is served by "fwd"s. */
    char node[TR_NAME_MAX + 1];
    tr_id_t upstream;
    /* On the topic's side: the subscriber is another node's service, which
     * gets "fwd" [node, topic, timeout] + payload to fan out there. */
    bool relay;
    _Atomic uint64_t published, delivered, dropped;
    _Atomic uint64_t warned_ns; /* last WARN line */
    _Atomic uint64_t warned_dropped;
} s_sub_t;

typedef struct s_table s_table_t;

struct tr_topic {
    _Atomic int refs;
    char name[TR_TAG_MAX + 1];
    bool reliable;
    int timeout_ms;
    pthread_rwlock_t lock; /* subs, node, closed */
    s_sub_t **subs;
    size_t nsubs, capsubs;
    tr_node_t *node; /* NULL once the node's service ended */
    bool closed;     /* withdrawn or node gone */
    s_table_t *table; /* under s_mu: NULL once either is gone */
    _Atomic uint64_t published, delivered, dropped;
};

struct s_table {
    s_table_t *next; /* in s_tables, under s_mu */
    tr_node_t *node;
    pthread_mutex_t mu; /* the lists below */
    tr_topic_t **topics;
    size_t ntopics, captopics;
    s_sub_t **subs;
    size_t nsubs, capsubs;
};

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static s_table_t *s_tables;
/* Held while a service starts, so that two threads starting one for the
 * same node do not both spawn it (the loser would see the name taken
 * before the winner's init has made the table). */
static pthread_mutex_t s_start_mu = PTHREAD_MUTEX_INITIALIZER;

static void
s_sub_unref(s_sub_t *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        free(s);
}

static void
s_topic_unref(tr_topic_t *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->nsubs; i++)
        s_sub_unref(t->subs[i]);
    free(t->subs);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static bool
s_matches(const s_sub_t *s, const char *topic)
{
    if (s->node[0] != '\0') /* another node's topics */
        return false;
    return s->prefix ? strncmp(topic, s->pattern, strlen(s->pattern)) == 0
                     : strcmp(topic, s->pattern) == 0;
}

/* The pattern alone, whatever node it is for. */
static bool
s_pattern_matches(const s_sub_t *s, const char *topic)
{
    return s->prefix ? strncmp(topic, s->pattern, strlen(s->pattern)) == 0
                     : strcmp(topic, s->pattern) == 0;
}

/* Add s to t's list (table lock held). */
static int
s_topic_attach(tr_topic_t *t, s_sub_t *s)
{
    pthread_rwlock_wrlock(&t->lock);
    int rc = tr__grow((void **)&t->subs, t->nsubs, &t->capsubs,
                      sizeof *t->subs, 4);
    if (rc == 0) {
        atomic_fetch_add(&s->refs, 1);
        t->subs[t->nsubs++] = s;
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static void
s_topic_detach(tr_topic_t *t, const s_sub_t *s)
{
    s_sub_t *gone = NULL;
    pthread_rwlock_wrlock(&t->lock);
    for (size_t i = 0; i < t->nsubs; i++)
        if (t->subs[i] == s) {
            gone = t->subs[i];
            /* keep the order: older subscriptions get their copy first */
            memmove(&t->subs[i], &t->subs[i + 1],
                    (t->nsubs - i - 1) * sizeof *t->subs);
            t->nsubs--;
            break;
        }
    pthread_rwlock_unlock(&t->lock);
    s_sub_unref(gone);
}

/* This process's table of node, or NULL (s_mu held). */
static s_table_t *
s_table_of(const tr_node_t *node)
{
    for (s_table_t *t = s_tables; t; t = t->next)
        if (t->node == node)
            return t;
    return NULL;
}

static void
s_table_drop_sub(s_table_t *tb, size_t i)
{
    s_sub_t *s = tb->subs[i];
    for (size_t k = 0; k < tb->ntopics; k++)
        if (s_matches(s, tb->topics[k]->name))
            s_topic_detach(tb->topics[k], s);
    tb->subs[i] = tb->subs[--tb->nsubs];
    s_sub_unref(s);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

/* A topic name or pattern: 1..TR_TAG_MAX bytes, no '@', no leading '$'.
 * A prefix pattern may be empty (every topic). */
static int
s_name_check(const char *name, bool prefix, const char *fn)
{
    if (name == NULL || (name[0] == '\0' && !prefix) || name[0] == '$' ||
        strchr(name, '@') != NULL)
        return tr__refuse(TR_EINVAL, "%s: topic '%s' is NULL, empty, "
                          "starts with '$' or has '@'", fn,
                          name ? name : "(null)");
    if (strnlen(name, TR_TAG_MAX + 1) > TR_TAG_MAX)
        return tr__refuse(TR_ENAMETOOLONG, "%s: topic '%.24s...' is longer "
                          "than %d bytes", fn, name, TR_TAG_MAX);
    return 0;
}

/* Split "name@node" into name (copied) and the node (NULL: this one). */
static int
s_split(tr_node_t *node, const char *full, bool prefix, char *name,
        const char **at_node, const char *fn)
{
    if (full == NULL)
        return s_name_check(NULL, prefix, fn);
    const char *at = strchr(full, '@');
    size_t len = at ? (size_t)(at - full) : strlen(full);
    if (len > TR_TAG_MAX)
        return tr__refuse(TR_ENAMETOOLONG, "%s: topic '%.24s...' is longer "
                          "than %d bytes", fn, full, TR_TAG_MAX);
    memcpy(name, full, len);
    name[len] = '\0';
    int rc = s_name_check(name, prefix, fn);
    if (rc != 0)
        return rc;
    *at_node = NULL;
    if (at != NULL) {
        if (at[1] == '\0' || strnlen(at + 1, TR_NAME_MAX + 1) > TR_NAME_MAX)
            return tr__refuse(TR_EINVAL, "%s: bad node in '%s'", fn, full);
        if (strcmp(at + 1, tr_node_name(node)) != 0)
            *at_node = at + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fan-out                                                             */

static void
s_dropped(tr_topic_t *t, const char *topic, s_sub_t *s, const char *why)
{
    atomic_fetch_add(&s->dropped, 1);
    if (t != NULL)
        atomic_fetch_add(&t->dropped, 1);
    uint64_t now = tr__now_ns(), last = atomic_load(&s->warned_ns);
    if ((last == 0 || now - last >= S_WARN_NS) &&
        atomic_compare_exchange_strong(&s->warned_ns, &last, now)) {
        uint64_t all = atomic_load(&s->dropped);
        uint64_t before = atomic_exchange(&s->warned_dropped, all);
        tr_log(TR_LOG_WARN, "pubsub", "topic '%s': subscriber %llx %s: "
               "%llu dropped since the last line, %llu in all", topic,
               (unsigned long long)s->id, why,
               (unsigned long long)(all - before), (unsigned long long)all);
    }
}

/* How a copy goes: to which topic, waiting for room until deadline (0:
 * not at all), counted in t (NULL: a forwarded copy, counted only in its
 * subscription); timed_out is set once a wait ran out, after which nobody
 * is waited for. */
typedef struct s_how {
    tr_topic_t *t;
    const char *topic;
    uint64_t deadline;
    bool timed_out;
} s_how_t;

static int
s_copy(const s_sub_t *s, s_how_t *how, tr_node_t *node, const void *payload,
       size_t plen, tr_msg_t **out)
{
    int rc;
    if (s->relay) { /* "fwd" [node, ms left or 0, topic] + payload */
        int64_t left = 0;
        if (how->deadline != 0) {
            uint64_t now = tr__now_ns();
            left = how->deadline > now
                       ? (int64_t)((how->deadline - now) / 1000000) + 1
                       : 1;
        }
        if ((rc = tr_msg_create(out, "fwd")) == 0 &&
            (rc = tr_msg_add_str(*out, tr_node_name(node))) == 0 &&
            (rc = tr_msg_add_int(*out, left)) == 0)
            rc = tr_msg_add_str(*out, how->topic);
    } else {
        rc = tr_msg_create(out, s->tag[0] ? s->tag : how->topic);
    }
    if (rc == 0 && plen > 0)
        rc = tr_msg_add_raw(*out, payload, plen);
    return rc;
}

/* One copy to s. */
static int
s_deliver(s_how_t *how, tr_node_t *node, s_sub_t *s, const void *payload,
          size_t plen)
{
    atomic_fetch_add(&s->published, 1);
    tr_msg_t *m = NULL;
    int rc = s_copy(s, how, node, payload, plen, &m);
    if (rc == 0) {
        if (how->deadline == 0 || how->timed_out) {
            rc = tr_try_tell_id(node, s->id, &m);
        } else {
            /* tr_tell_id waits the node's send timeout; a topic has its
             * own, so this is the port's send with a deadline. */
            tr__port_t *port;
            if ((rc = tr__port_get(node, &port)) == 0) {
                m->env.flags = 0;
                m->env.code = 0;
                m->env.corr = 0;
                m->env.deadline_ns = 0;
                tr__wait_t wait = {-1, how->deadline};
                rc = tr__port_send(port, s->id, &m, TR__BOX_MAILBOX, &wait);
            }
            if (rc == TR_ETIMEDOUT)
                how->timed_out = true;
        }
    }
    tr_msg_destroy(&m);
    if (rc == 0) {
        atomic_fetch_add(&s->delivered, 1);
        if (how->t != NULL)
            atomic_fetch_add(&how->t->delivered, 1);
        return 0;
    }
    s_dropped(how->t, how->topic, s,
              rc == TR_EAGAIN || rc == TR_ETIMEDOUT ? "is slow (mailbox full)"
              : rc == TR_ENOENT                     ? "has ended"
                                                    : tr_strerror(rc));
    return rc == TR_EAGAIN || rc == TR_ENOENT ? 0 : rc;
}

/* Deliver to subs[0..n) (a reference each, given back here). */
static int
s_deliver_all(s_how_t *how, tr_node_t *node, s_sub_t **subs, size_t n,
              const void *payload, size_t plen)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int one = s_deliver(how, node, subs[i], payload, plen);
        if (rc == 0)
            rc = one;
        s_sub_unref(subs[i]);
    }
    return rc;
}

/* Publish payload to t's subscriptions from this thread. */
static int
s_fan_out(tr_topic_t *t, const void *payload, size_t plen)
{
    s_sub_t *stack[S_STACK_SUBS], **subs = stack;
    pthread_rwlock_rdlock(&t->lock);
    if (t->closed) {
        pthread_rwlock_unlock(&t->lock);
        return t->node ? TR_ENOENT : TR_ECLOSED;
    }
    tr_node_t *node = t->node;
    size_t n = t->nsubs;
    if (n > S_STACK_SUBS && (subs = malloc(n * sizeof *subs)) == NULL) {
        pthread_rwlock_unlock(&t->lock);
        return TR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        subs[i] = t->subs[i];
        atomic_fetch_add(&subs[i]->refs, 1);
    }
    pthread_rwlock_unlock(&t->lock);

    atomic_fetch_add(&t->published, 1);
    s_how_t how = {.t = t, .topic = t->name};
    if (t->reliable)
        how.deadline = tr__deadline_after_ms(
            t->timeout_ms ? t->timeout_ms : node->opts.send_timeout_ms);
    int rc = s_deliver_all(&how, node, subs, n, payload, plen);
    if (subs != stack)
        free(subs);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The service                                                         */

typedef struct s_service {
    s_table_t *table;
    uint64_t retry; /* timer while relays are to be made again; 0: none */
} s_service_t;

static int
s_service_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)args;
    s_service_t *sv = state;
    s_table_t *tb = calloc(1, sizeof *tb);
    if (tb == NULL)
        return TR_ENOMEM;
    tb->node = tr_actor_node(self);
    pthread_mutex_init(&tb->mu, NULL);
    pthread_mutex_lock(&s_mu);
    int rc = s_table_of(tb->node) ? TR_EEXIST : 0;
    if (rc == 0) {
        tb->next = s_tables;
        s_tables = tb;
    }
    pthread_mutex_unlock(&s_mu);
    if (rc != 0) {
        pthread_mutex_destroy(&tb->mu);
        free(tb);
        return rc;
    }
    sv->table = tb;
    return 0;
}

static void
s_service_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self;
    (void)reason;
    s_service_t *sv = state;
    s_table_t *tb = sv->table;
    if (tb == NULL)
        return;
    pthread_mutex_lock(&s_mu);
    for (s_table_t **p = &s_tables; *p; p = &(*p)->next)
        if (*p == tb) {
            *p = tb->next;
            break;
        }
    pthread_mutex_lock(&tb->mu);
    for (size_t i = 0; i < tb->ntopics; i++) {
        tr_topic_t *t = tb->topics[i];
        pthread_rwlock_wrlock(&t->lock);
        t->closed = true;
        t->node = NULL; /* handles may outlive the node */
        pthread_rwlock_unlock(&t->lock);
        t->table = NULL;
        s_topic_unref(t);
    }
    for (size_t i = 0; i < tb->nsubs; i++)
        s_sub_unref(tb->subs[i]);
    pthread_mutex_unlock(&tb->mu);
    pthread_mutex_unlock(&s_mu);
    free(tb->topics);
    free(tb->subs);
    pthread_mutex_destroy(&tb->mu);
    free(tb);
    sv->table = NULL;
}

/* A request's fields: [subscriber, pattern, prefix, tag or nil, node or
 * nil (another node's topics), relay]. */
typedef struct s_req {
    tr_id_t id;
    char pattern[TR_TAG_MAX + 1];
    bool prefix;
    char tag[TR_TAG_MAX + 1];
    char node[TR_NAME_MAX + 1];
    bool relay;
} s_req_t;

static int
s_req_read(const tr_msg_t *msg, s_req_t *q)
{
    tr_reader_t r;
    uint64_t id = 0;
    tr_reader_init(&r, msg);
    memset(q, 0, sizeof *q);
    int rc = tr_read_uint(&r, &id);
    if (rc == 0)
        rc = tr_read_str_copy(&r, q->pattern, sizeof q->pattern);
    if (rc == 0)
        rc = tr_read_bool(&r, &q->prefix);
    if (rc == 0 && tr_read_nil(&r) != 0)
        rc = tr_read_str_copy(&r, q->tag, sizeof q->tag);
    if (rc == 0 && tr_read_nil(&r) != 0)
        rc = tr_read_str_copy(&r, q->node, sizeof q->node);
    if (rc == 0)
        rc = tr_read_bool(&r, &q->relay);
    q->id = id;
    if (rc == 0 && id == 0)
        rc = TR_EINVAL;
    return rc != 0 ? TR_EINVAL : 0;
}

static ssize_t
s_find_sub(const s_table_t *tb, const s_req_t *q)
{
    for (size_t i = 0; i < tb->nsubs; i++) {
        const s_sub_t *s = tb->subs[i];
        if (s->id == q->id && s->prefix == q->prefix &&
            strcmp(s->pattern, q->pattern) == 0 &&
            strcmp(s->node, q->node) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static tr_topic_t *
s_find_topic(const s_table_t *tb, const char *name)
{
    for (size_t i = 0; i < tb->ntopics; i++)
        if (strcmp(tb->topics[i]->name, name) == 0)
            return tb->topics[i];
    return NULL;
}

/* Another subscription of this node's to (node, pattern, prefix) than
 * the one at skip (table lock held)? */
static bool
s_relayed(const s_table_t *tb, const s_sub_t *like, const s_sub_t *skip)
{
    for (size_t i = 0; i < tb->nsubs; i++) {
        const s_sub_t *s = tb->subs[i];
        if (s != skip && s->prefix == like->prefix &&
            strcmp(s->node, like->node) == 0 &&
            strcmp(s->pattern, like->pattern) == 0)
            return true;
    }
    return false;
}

/* A request [self, pattern, prefix, nil, nil, relay] to the service of
 * another node (its id: to). */
static int
s_upstream_msg(tr_actor_t *self, const char *tag, const s_sub_t *like,
               tr_msg_t **out)
{
    int rc = tr_msg_create(out, tag);
    if (rc == 0 && (rc = tr_msg_add_uint(*out, tr_self(self))) == 0 &&
        (rc = tr_msg_add_str(*out, like->pattern)) == 0 &&
        (rc = tr_msg_add_bool(*out, like->prefix)) == 0 &&
        (rc = tr_msg_add_nil(*out)) == 0 &&
        (rc = tr_msg_add_nil(*out)) == 0)
        rc = tr_msg_add_bool(*out, true);
    return rc;
}

/* The first subscription of this node to (node, pattern, prefix): this
 * service subscribes there, once, as a relay, and fans out here what it
 * forwards: one copy a message crosses the wire, whatever the number of
 * subscribers here, and a slow one here drops here without holding the
 * connection that every other message between the two nodes shares. */
static int
s_upstream_sub(tr_actor_t *self, s_sub_t *s)
{
    char service[2 * TR_NAME_MAX + 2];
    snprintf(service, sizeof service, "%s@%s", S_SERVICE, s->node);
    tr_node_t *node = tr_actor_node(self);
    int rc = tr_whereis(node, service, &s->upstream);
    tr_msg_t *m = NULL;
    if (rc == 0 && (rc = s_upstream_msg(self, "sub", s, &m)) == 0)
        rc = tr_call_id(node, s->upstream, &m, TR_DEFAULT, NULL);
    tr_msg_destroy(&m);
    if (rc == TR_EEXIST) /* it kept us through a DOWN of its own */
        rc = 0;
    /* When that service ends (or its node goes), subscribe again to the
     * next one: see s_on_retry. */
    if (rc == 0)
        rc = tr_monitor(self, s->upstream);
    if (rc != 0)
        s->upstream = 0;
    return rc;
}

/* The last one gone: unsubscribe there, without waiting (the node may be
 * down; its service drops relays it sees end anyway). */
static void
s_upstream_unsub(tr_actor_t *self, const s_sub_t *s)
{
    tr_msg_t *m = NULL;
    if (s->upstream != 0 && s_upstream_msg(self, "unsub", s, &m) == 0)
        (void)tr_try_tell_id(tr_actor_node(self), s->upstream, &m);
    tr_msg_destroy(&m);
}

static int
s_on_sub(tr_actor_t *self, s_table_t *tb, const s_req_t *q)
{
    s_sub_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TR_ENOMEM;
    atomic_init(&s->refs, 1);
    s->id = q->id;
    s->prefix = q->prefix;
    s->relay = q->relay;
    snprintf(s->pattern, sizeof s->pattern, "%s", q->pattern);
    snprintf(s->tag, sizeof s->tag, "%s", q->tag);
    snprintf(s->node, sizeof s->node, "%s", q->node);
    pthread_mutex_lock(&tb->mu);
    int rc = s_find_sub(tb, q) >= 0 ? TR_EEXIST : 0;
    if (rc == 0 && !q->prefix && !q->node[0] &&
        s_find_topic(tb, q->pattern) == NULL)
        rc = TR_ENOENT;
    bool first = rc == 0 && q->node[0] && !s_relayed(tb, s, NULL);
    for (size_t i = 0; i < tb->nsubs && rc == 0 && q->node[0] && !first; i++)
        if (strcmp(tb->subs[i]->node, s->node) == 0)
            s->upstream = tb->subs[i]->upstream;
    pthread_mutex_unlock(&tb->mu);
    /* Only this thread changes the table: nothing came in between. */
    if (rc == 0 && first)
        rc = s_upstream_sub(self, s);
    pthread_mutex_lock(&tb->mu);
    if (rc == 0)
        rc = tr__grow((void **)&tb->subs, tb->nsubs, &tb->capsubs,
                      sizeof *tb->subs, 8);
    if (rc == 0) {
        tb->subs[tb->nsubs++] = s;
        for (size_t k = 0; k < tb->ntopics && rc == 0; k++)
            if (s_matches(s, tb->topics[k]->name))
                rc = s_topic_attach(tb->topics[k], s);
        if (rc != 0)
            s_table_drop_sub(tb, tb->nsubs - 1);
    } else {
        s_sub_unref(s);
    }
    pthread_mutex_unlock(&tb->mu);
    if (rc != 0)
        return rc;
    /* One DOWN per target however often it is monitored: the subscriber's
     * end removes all its subscriptions at once. An actor that has ended
     * already gives its DOWN at once. */
    return tr_monitor(self, q->id);
}

static bool
s_has_subs(const s_table_t *tb, tr_id_t id)
{
    for (size_t i = 0; i < tb->nsubs; i++)
        if (tb->subs[i]->id == id)
            return true;
    return false;
}

/* Drop subscription i (lock held); if it was the last one of this node to
 * another node's (pattern, prefix), say so there. */
static void
s_drop(tr_actor_t *self, s_table_t *tb, size_t i)
{
    s_sub_t *s = tb->subs[i];
    if (s->node[0] && !s_relayed(tb, s, s))
        s_upstream_unsub(self, s);
    s_table_drop_sub(tb, i);
}

static int
s_on_unsub(tr_actor_t *self, s_table_t *tb, const s_req_t *q)
{
    pthread_mutex_lock(&tb->mu);
    ssize_t i = s_find_sub(tb, q);
    if (i >= 0)
        s_drop(self, tb, (size_t)i);
    bool more = s_has_subs(tb, q->id);
    pthread_mutex_unlock(&tb->mu);
    if (i < 0)
        return TR_ENOENT;
    if (!more)
        (void)tr_demonitor(self, q->id);
    return 0;
}

/* A relay's upstream ended: try again every S_RETRY_MS until every
 * subscription to another node has one. */
static int
s_arm_retry(tr_actor_t *self, s_service_t *sv)
{
    if (sv->retry != 0)
        return 0;
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "retry");
    if (rc == 0)
        rc = tr_timer_every(self, S_RETRY_MS, &m, &sv->retry);
    tr_msg_destroy(&m);
    return rc;
}

static int
s_on_retry(tr_actor_t *self, s_service_t *sv)
{
    /* Only this thread changes the list of subscriptions and their
     * upstreams: it reads them without the lock, and may call. */
    s_table_t *tb = sv->table;
    bool left = false;
    for (size_t i = 0; i < tb->nsubs; i++) {
        s_sub_t *s = tb->subs[i];
        if (s->node[0] == '\0' || s->upstream != 0)
            continue;
        /* Not while its node is down: the lookup would wait for it, and
         * this service has other work meanwhile. */
        if (tr_node_await(tr_actor_node(self), s->node, 0) != 0 ||
            s_upstream_sub(self, s) != 0) {
            left = true;
            continue;
        }
        for (size_t j = i + 1; j < tb->nsubs; j++) { /* the same relay */
            s_sub_t *o = tb->subs[j];
            if (o->upstream == 0 && o->prefix == s->prefix &&
                strcmp(o->node, s->node) == 0 &&
                strcmp(o->pattern, s->pattern) == 0)
                o->upstream = s->upstream;
        }
        tr_log(TR_LOG_INFO, "pubsub", "subscribed to '%s%s' at node '%s' "
               "again", s->pattern, s->prefix ? "*" : "", s->node);
    }
    if (!left) {
        (void)tr_timer_cancel(self, sv->retry);
        sv->retry = 0;
    }
    return 0;
}

static int
s_on_down(tr_actor_t *self, s_service_t *sv, const tr_msg_t *msg)
{
    s_table_t *tb = sv->table;
    tr_id_t who = 0;
    int reason = 0;
    if (tr_msg_exit(msg, &who, &reason) != 0)
        return 0;
    pthread_mutex_lock(&tb->mu);
    size_t before = tb->nsubs, lost = 0;
    for (size_t i = tb->nsubs; i-- > 0;)
        if (tb->subs[i]->id == who)
            s_drop(self, tb, i);
    size_t dropped = before - tb->nsubs;
    for (size_t i = 0; i < tb->nsubs; i++)
        if (tb->subs[i]->node[0] && tb->subs[i]->upstream == who) {
            tb->subs[i]->upstream = 0;
            lost++;
        }
    pthread_mutex_unlock(&tb->mu);
    if (dropped > 0)
        tr_log(TR_LOG_DEBUG, "pubsub", "subscriber %llx ended (%s): %zu "
               "subscriptions dropped", (unsigned long long)who,
               tr_strerror(reason), dropped);
    if (lost == 0)
        return 0;
    tr_log(TR_LOG_WARN, "pubsub", "the service %llx of another node ended "
           "(%s): %zu subscriptions get nothing until it is back",
           (unsigned long long)who, tr_strerror(reason), lost);
    return s_arm_retry(self, sv);
}

static int
s_on_stats(tr_actor_t *self, s_table_t *tb, const tr_msg_t *msg,
           const s_req_t *q)
{
    int64_t v[3] = {0, 0, 0};
    pthread_mutex_lock(&tb->mu);
    ssize_t i = s_find_sub(tb, q);
    if (i >= 0) {
        const s_sub_t *s = tb->subs[i];
        v[0] = (int64_t)atomic_load(&s->published);
        v[1] = (int64_t)atomic_load(&s->delivered);
        v[2] = (int64_t)atomic_load(&s->dropped);
    }
    pthread_mutex_unlock(&tb->mu);
    if (i < 0)
        return tr_reply_error(self, msg, TR_ENOENT);
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "ok");
    for (int k = 0; k < 3 && rc == 0; k++)
        rc = tr_msg_add_int(m, v[k]);
    if (rc == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    return rc;
}

/* "pub" [topic] + the payload: a publish from elsewhere. */
static int
s_on_pub(s_table_t *tb, const tr_msg_t *msg)
{
    tr_reader_t r;
    const char *name;
    size_t len, plen;
    const uint8_t *payload = tr_msg_payload(msg, &plen);
    char topic[TR_TAG_MAX + 1];
    tr_reader_init(&r, msg);
    if (tr_read_str(&r, &name, &len) != 0 || len == 0 || len > TR_TAG_MAX) {
        tr_log(TR_LOG_WARN, "pubsub", "malformed publish from %llx dropped",
               (unsigned long long)tr_msg_sender(msg));
        return 0;
    }
    memcpy(topic, name, len);
    topic[len] = '\0';
    const uint8_t *rest = (const uint8_t *)name + len;
    pthread_mutex_lock(&tb->mu);
    tr_topic_t *t = s_find_topic(tb, topic);
    if (t != NULL)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&tb->mu);
    if (t == NULL) {
        tr_log(TR_LOG_WARN, "pubsub", "publish from %llx to unknown topic "
               "'%s' dropped", (unsigned long long)tr_msg_sender(msg), topic);
        return 0;
    }
    int rc = s_fan_out(t, rest, plen - (size_t)(rest - payload));
    if (rc != 0)
        tr_log(TR_LOG_WARN, "pubsub", "publish from %llx to '%s': %s",
               (unsigned long long)tr_msg_sender(msg), topic,
               tr_strerror(rc));
    s_topic_unref(t);
    return rc == TR_ECANCELED ? rc : 0;
}

/* "fwd" [node, ms, topic] + payload from a topic of node, to which this
 * node subscribed as a relay: fan it out to this node's subscriptions of
 * it, waiting up to ms for room when the topic is reliable (0: not). */
static int
s_on_fwd(tr_actor_t *self, s_table_t *tb, const tr_msg_t *msg)
{
    tr_reader_t r;
    char from[TR_NAME_MAX + 1], topic[TR_TAG_MAX + 1];
    const char *name;
    size_t len, plen;
    int64_t ms = 0;
    const uint8_t *payload = tr_msg_payload(msg, &plen);
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, from, sizeof from);
    if (rc == 0)
        rc = tr_read_int(&r, &ms);
    if (rc == 0 && (rc = tr_read_str(&r, &name, &len)) == 0 &&
        (len == 0 || len > TR_TAG_MAX))
        rc = TR_EPROTO;
    if (rc != 0) {
        tr_log(TR_LOG_WARN, "pubsub", "malformed forward from %llx dropped",
               (unsigned long long)tr_msg_sender(msg));
        return 0;
    }
    memcpy(topic, name, len);
    topic[len] = '\0';
    /* what was published follows the topic's name */
    size_t at = (size_t)((const uint8_t *)name + len - payload);
    s_sub_t *stack[S_STACK_SUBS], **subs = stack;
    size_t n = 0, cap = S_STACK_SUBS;
    pthread_mutex_lock(&tb->mu);
    for (size_t i = 0; i < tb->nsubs; i++) {
        s_sub_t *s = tb->subs[i];
        if (strcmp(s->node, from) != 0 || !s_pattern_matches(s, topic))
            continue;
        if (n == cap) {
            s_sub_t **more = malloc(2 * cap * sizeof *more);
            if (more == NULL) { /* those found so far still get it */
                tr_log(TR_LOG_ERROR, "pubsub", "forward of '%s': out of "
                       "memory, %zu subscriptions served", topic, n);
                break;
            }
            memcpy(more, subs, n * sizeof *more);
            if (subs != stack)
                free(subs);
            subs = more;
            cap *= 2;
        }
        atomic_fetch_add(&s->refs, 1);
        subs[n++] = s;
    }
    pthread_mutex_unlock(&tb->mu);
    s_how_t how = {.topic = topic};
    if (ms > 0)
        how.deadline = tr__deadline_after_ms((int)ms);
    int one = s_deliver_all(&how, tr_actor_node(self), subs, n,
                            payload + at, plen - at);
    if (subs != stack)
        free(subs);
    return one == TR_ECANCELED ? one : 0;
}

static int
s_service_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_service_t *sv = state;
    if (tr_msg_is(msg, "$down"))
        return s_on_down(self, sv, msg);
    if (tr_msg_is(msg, "retry"))
        return tr_msg_sender(msg) == tr_self(self) ? s_on_retry(self, sv)
                                                   : TR_EUNHANDLED;
    if (tr_msg_is(msg, "fwd"))
        return s_on_fwd(self, sv->table, msg);
    if (tr_msg_is(msg, "pub"))
        return s_on_pub(sv->table, msg);
    bool sub = tr_msg_is(msg, "sub"), unsub = tr_msg_is(msg, "unsub");
    if (!sub && !unsub && !tr_msg_is(msg, "stats"))
        return TR_EUNHANDLED;
    s_req_t q;
    int rc = s_req_read(msg, &q);
    if (!tr_msg_is_request(msg)) { /* a relay's unsub: nobody waits */
        if (rc == 0 && unsub)
            (void)s_on_unsub(self, sv->table, &q);
        return 0;
    }
    if (rc == 0 && !sub && !unsub)
        return s_on_stats(self, sv->table, msg, &q);
    if (rc == 0)
        rc = sub ? s_on_sub(self, sv->table, &q)
                 : s_on_unsub(self, sv->table, &q);
    if (rc != 0)
        return tr_reply_error(self, msg, rc);
    tr_msg_t *ok = NULL;
    if ((rc = tr_msg_create(&ok, "ok")) == 0)
        rc = tr_reply(self, msg, &ok);
    tr_msg_destroy(&ok);
    return rc;
}

TR_BEHAVIOUR(tr_pubsub, .state_size = sizeof(s_service_t),
             .init = s_service_init, .handle = s_service_handle,
             .terminate = s_service_terminate);

/* This process's table of node, starting the service if there is none.
 * NULL and 0 in a process actor's child: its node's service is the
 * parent's, reached by name. */
static int
s_table(tr_node_t *node, s_table_t **out)
{
    *out = NULL;
    if (node->child)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&s_start_mu);
    for (int tries = 0; tries < 2 && rc == 0; tries++) {
        pthread_mutex_lock(&s_mu);
        *out = s_table_of(node);
        pthread_mutex_unlock(&s_mu);
        if (*out != NULL)
            break;
        if (tries == 0)
            rc = tr_spawn(node, S_SERVICE,
                          &(tr_spawn_opts_t){.name = S_SERVICE}, NULL);
        else /* a user's actor holds the name */
            rc = tr__refuse(TR_EEXIST, "pubsub: the name '%s' is taken",
                            S_SERVICE);
    }
    pthread_mutex_unlock(&s_start_mu);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Topics                                                              */

int
tr_topic_create(tr_node_t *node, const char *name,
                const tr_topic_opts_t *opts, tr_topic_t **out)
{
    if (node == NULL || out == NULL)
        return tr__refuse(TR_EINVAL, "tr_topic_create: NULL %s",
                          node ? "out" : "node");
    int rc = s_name_check(name, false, "tr_topic_create");
    if (rc != 0)
        return rc;
    tr_topic_opts_t o = opts ? *opts : (tr_topic_opts_t){0};
    if (o.timeout_ms < 0)
        return tr__refuse(TR_EINVAL, "tr_topic_create: timeout_ms %d",
                          o.timeout_ms);
    if (node->child)
        return tr__refuse(TR_ENOTSUP, "tr_topic_create: topics live on "
                          "nodes, not in process actors");
    s_table_t *tb;
    if ((rc = s_table(node, &tb)) != 0)
        return rc;
    tr_topic_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    atomic_init(&t->refs, 1); /* the handle's */
    snprintf(t->name, sizeof t->name, "%s", name);
    t->reliable = o.reliable;
    t->timeout_ms = o.timeout_ms;
    t->node = node;
    pthread_rwlock_init(&t->lock, NULL);

    pthread_mutex_lock(&s_mu);
    if ((tb = s_table_of(node)) == NULL) /* the node is being destroyed */
        rc = TR_ECLOSED;
    if (rc == 0) {
        pthread_mutex_lock(&tb->mu);
        if (s_find_topic(tb, name) != NULL)
            rc = TR_EEXIST;
        else
            rc = tr__grow((void **)&tb->topics, tb->ntopics, &tb->captopics,
                          sizeof *tb->topics, 8);
        for (size_t i = 0; i < tb->nsubs && rc == 0; i++)
            if (s_matches(tb->subs[i], name))
                rc = s_topic_attach(t, tb->subs[i]);
        if (rc == 0) {
            atomic_fetch_add(&t->refs, 1); /* the table's */
            tb->topics[tb->ntopics++] = t;
            t->table = tb;
        }
        pthread_mutex_unlock(&tb->mu);
    }
    pthread_mutex_unlock(&s_mu);
    if (rc != 0) {
        s_topic_unref(t);
        return rc;
    }
    *out = t;
    return 0;
}

void
tr_topic_destroy(tr_topic_t **topic)
{
    if (topic == NULL || *topic == NULL)
        return;
    tr_topic_t *t = *topic;
    *topic = NULL;
    pthread_mutex_lock(&s_mu);
    s_table_t *tb = t->table;
    if (tb != NULL) {
        pthread_mutex_lock(&tb->mu);
        for (size_t i = 0; i < tb->ntopics; i++)
            if (tb->topics[i] == t) {
                tb->topics[i] = tb->topics[--tb->ntopics];
                break;
            }
        t->table = NULL;
        pthread_rwlock_wrlock(&t->lock);
        t->closed = true;
        pthread_rwlock_unlock(&t->lock);
        pthread_mutex_unlock(&tb->mu);
        s_topic_unref(t); /* the table's */
    }
    pthread_mutex_unlock(&s_mu);
    s_topic_unref(t); /* the handle's */
}

int
tr_publish(tr_topic_t *topic, tr_msg_t **msg)
{
    if (topic == NULL || msg == NULL || *msg == NULL)
        return tr__refuse(TR_EINVAL, "tr_publish: NULL %s",
                          topic ? "message" : "topic");
    if ((*msg)->kind != TR__MSG_BUILT)
        return tr__refuse(TR_EINVAL, "tr_publish: message '%s' was "
                          "received, not built (tr_msg_dup it)",
                          tr_msg_tag(*msg));
    size_t plen;
    const void *payload = tr_msg_payload(*msg, &plen);
    int rc = s_fan_out(topic, payload, plen);
    if (rc == 0)
        tr_msg_destroy(msg);
    return rc;
}

int
tr_publish_to(tr_node_t *node, const char *topic, tr_msg_t **msg)
{
    if (node == NULL || msg == NULL || *msg == NULL)
        return tr__refuse(TR_EINVAL, "tr_publish_to: NULL %s",
                          node ? "message" : "node");
    char name[TR_TAG_MAX + 1];
    const char *on;
    int rc = s_split(node, topic, false, name, &on, "tr_publish_to");
    if (rc != 0)
        return rc;
    if (on == NULL && !node->child) {
        /* Here: publish from this thread, as tr_publish. */
        tr_topic_t *t = NULL;
        pthread_mutex_lock(&s_mu);
        s_table_t *tb = s_table_of(node);
        if (tb != NULL) {
            pthread_mutex_lock(&tb->mu);
            if ((t = s_find_topic(tb, name)) != NULL)
                atomic_fetch_add(&t->refs, 1);
            pthread_mutex_unlock(&tb->mu);
        }
        pthread_mutex_unlock(&s_mu);
        if (t == NULL)
            return TR_ENOENT;
        rc = tr_publish(t, msg);
        s_topic_unref(t);
        return rc;
    }
    char service[2 * TR_NAME_MAX + 2];
    snprintf(service, sizeof service, "%s%s%s", S_SERVICE, on ? "@" : "",
             on ? on : "");
    size_t plen;
    const void *payload = tr_msg_payload(*msg, &plen);
    tr_msg_t *m = NULL;
    if ((rc = tr_msg_create(&m, "pub")) == 0 &&
        (rc = tr_msg_add_str(m, name)) == 0 && plen > 0)
        rc = tr_msg_add_raw(m, payload, plen);
    if (rc == 0)
        rc = tr_tell(node, service, &m);
    tr_msg_destroy(&m);
    if (rc == 0)
        tr_msg_destroy(msg);
    return rc;
}

int
tr_topic_stats(tr_topic_t *topic, tr_topic_stats_t *st)
{
    if (topic == NULL || st == NULL)
        return tr__refuse(TR_EINVAL, "tr_topic_stats: NULL argument");
    pthread_rwlock_rdlock(&topic->lock);
    st->subscribers = topic->nsubs;
    pthread_rwlock_unlock(&topic->lock);
    st->published = atomic_load(&topic->published);
    st->delivered = atomic_load(&topic->delivered);
    st->dropped = atomic_load(&topic->dropped);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                       */

/* Ask this node's service to do tag with the request; for another node's
 * topic ("name@node") it is that service that subscribes there (as a
 * relay, once for all its subscribers) and keeps the counts. */
static int
s_request(tr_node_t *node, const char *tag, tr_id_t subscriber,
          const char *topic, const tr_sub_opts_t *opts, tr_msg_t **reply,
          const char *fn)
{
    tr_sub_opts_t o = opts ? *opts : (tr_sub_opts_t){0};
    if (node == NULL || subscriber == 0)
        return tr__refuse(TR_EINVAL, "%s: %s", fn,
                          node ? "subscriber 0" : "NULL node");
    char name[TR_TAG_MAX + 1];
    const char *on;
    int rc = s_split(node, topic, o.prefix, name, &on, fn);
    if (rc != 0)
        return rc;
    if (o.tag != NULL) {
        if (o.tag[0] == '\0' || o.tag[0] == '$')
            return tr__refuse(TR_EINVAL, "%s: tag '%s' is empty or starts "
                              "with '$'", fn, o.tag);
        if (strnlen(o.tag, TR_TAG_MAX + 1) > TR_TAG_MAX)
            return tr__refuse(TR_ENAMETOOLONG, "%s: tag '%.24s...' is "
                              "longer than %d bytes", fn, o.tag, TR_TAG_MAX);
    }
    s_table_t *tb; /* a prefix or a relay may come before any topic */
    if (strcmp(tag, "sub") == 0 && (rc = s_table(node, &tb)) != 0)
        return rc;
    tr_msg_t *m = NULL;
    if ((rc = tr_msg_create(&m, tag)) == 0 &&
        (rc = tr_msg_add_uint(m, subscriber)) == 0 &&
        (rc = tr_msg_add_str(m, name)) == 0 &&
        (rc = tr_msg_add_bool(m, o.prefix)) == 0 &&
        (rc = o.tag ? tr_msg_add_str(m, o.tag) : tr_msg_add_nil(m)) == 0 &&
        (rc = on ? tr_msg_add_str(m, on) : tr_msg_add_nil(m)) == 0 &&
        (rc = tr_msg_add_bool(m, false)) == 0)
        /* TR_ENOENT: no service here, or none there (no topics) */
        rc = tr_call(node, S_SERVICE, &m, TR_DEFAULT, reply);
    tr_msg_destroy(&m);
    return rc;
}

int
tr_subscribe(tr_node_t *node, tr_id_t subscriber, const char *topic,
             const tr_sub_opts_t *opts)
{
    return s_request(node, "sub", subscriber, topic, opts, NULL,
                     "tr_subscribe");
}

int
tr_unsubscribe(tr_node_t *node, tr_id_t subscriber, const char *topic,
               const tr_sub_opts_t *opts)
{
    return s_request(node, "unsub", subscriber, topic, opts, NULL,
                     "tr_unsubscribe");
}

int
tr_sub_stats(tr_node_t *node, tr_id_t subscriber, const char *topic,
             const tr_sub_opts_t *opts, tr_sub_stats_t *st)
{
    if (st == NULL)
        return tr__refuse(TR_EINVAL, "tr_sub_stats: NULL stats");
    tr_msg_t *reply = NULL;
    int rc = s_request(node, "stats", subscriber, topic, opts, &reply,
                       "tr_sub_stats");
    if (rc == 0) {
        tr_reader_t r;
        int64_t v[3] = {0, 0, 0};
        tr_reader_init(&r, reply);
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = tr_read_int(&r, &v[i]);
        if (rc == 0) {
            st->published = (uint64_t)v[0];
            st->delivered = (uint64_t)v[1];
            st->dropped = (uint64_t)v[2];
        } else {
            rc = TR_EPROTO;
        }
    }
    tr_msg_destroy(&reply);
    return rc;
}
