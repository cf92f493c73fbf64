/* runtime/step.c - step mode (TROUPE_STEP=1): one message at a time, the
 * learner picks which.
 *
 * Each stepped actor (a thread actor of a user behaviour) reads its
 * mailbox as usual but hands every user message to the node's stepper
 * instead of its handler (tr__step_hold: no copy, the frame is adopted).
 * The stepper thread waits until the node is quiet (no handler running,
 * every message sent to a stepped actor taken out of its mailbox), lists
 * the held messages on stderr, oldest first, and reads a choice on stdin;
 * it marks that message and wakes its actor through an eventfd, and the
 * actor handles it on its own thread as it would have. Only the oldest
 * held message of each (sender, receiver) pair can be chosen: troupe keeps
 * that order, and step mode shows, hands on, that it is the only one.
 *
 * It never blocks an actor for good: a stop still reaches it (its inbox
 * is polled as usual), "q" or the end of stdin lets everything run freely,
 * and the stepper lists again when a handler runs long (an ask between
 * two stepped actors waits for the learner to deliver it).
 */
#include "runtime/step.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/actor.h"
#include "runtime/node.h"
#include "transport/clock.h"
#include "transport/log.h"

#define S_LIST_MAX 64   /* messages listed at once */
#define S_SETTLE_MS 300 /* longest wait for a quiet node before listing */

typedef struct s_item {
    struct s_item *next;
    tr_actor_t *a;
    tr_msg_t *msg;
    uint64_t seq;
    tr_id_t from, to;
    bool chosen;
} s_item_t;

struct tr__step {
    tr_node_t *node;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s_item_t *head, *tail; /* held messages, oldest first */
    uint64_t seq;
    int busy;      /* chosen messages not yet handled */
    bool free;     /* stepping is over: everything runs */
    bool stop;
    int wake[2];   /* a byte here ends a wait on stdin */
    tr__rec_t **recs; /* stepped actors (references), for quiet */
    size_t nrecs, caprecs;
    uint64_t changes; /* bumped on every hold, take and done */
};

static _Atomic bool s_taken; /* one stepping node per process: one stdin */

/* ------------------------------------------------------------------ */
/* Text                                                                */

/* An actor as the learner knows it: name#id, <behaviour>#id, or
 * thread#id for a thread that is not an actor (main). */
static void
s_label(tr_node_t *node, tr_id_t id, char *buf, size_t cap)
{
    tr__rec_t *rec = tr__reg_get(&node->reg, id);
    if (rec != NULL && rec->kind == TR__REC_ACTOR)
        snprintf(buf, cap, "%s%s%s#%llx", rec->name[0] ? "" : "<",
                 rec->name[0] ? rec->name : rec->behaviour,
                 rec->name[0] ? "" : ">", (unsigned long long)id);
    else if (id == 0)
        snprintf(buf, cap, "nobody");
    else
        snprintf(buf, cap, "thread#%llx", (unsigned long long)id);
    tr__rec_unref(&rec);
}

/* The first values of a payload, shortly: 3, "text", true, ... */
static void
s_preview(const tr_msg_t *msg, char *buf, size_t cap)
{
    tr_reader_t r;
    tr_reader_init(&r, msg);
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < 4 && !tr_read_done(&r) && n + 16 < cap; i++) {
        int64_t v;
        const char *s;
        size_t sl;
        bool b;
        double d;
        if (i > 0)
            n += (size_t)snprintf(buf + n, cap - n, ", ");
        if (tr_read_int(&r, &v) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%lld", (long long)v);
        else if (tr_read_str(&r, &s, &sl) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "\"%.*s%s\"",
                                  (int)(sl > 24 ? 24 : sl), s,
                                  sl > 24 ? "..." : "");
        else if (tr_read_bool(&r, &b) == 0)
            n += (size_t)snprintf(buf + n, cap - n, b ? "true" : "false");
        else if (tr_read_double(&r, &d) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%g", d);
        else if (tr_read_nil(&r) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "nil");
        else if (tr_read_skip(&r) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "...");
        else
            break;
        if (n >= cap)
            n = cap - 1;
    }
    if (!tr_read_done(&r) && n + 5 < cap)
        snprintf(buf + n, cap - n, ", ...");
    for (char *p = buf; *p; p++) /* no escape sequences on the terminal */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* ------------------------------------------------------------------ */
/* The stepper                                                         */

static void
s_wake_actor(tr_actor_t *a)
{
    uint64_t one = 1;
    if (a->step_fd >= 0 && write(a->step_fd, &one, sizeof one) < 0)
        TR__LOG(TR_LOG_WARN, "step", "cannot wake an actor: %s",
                strerror(errno));
}

/* Under mu: no handler of a chosen message runs and every message sent to
 * a stepped actor has been taken from its mailbox (and so is held). */
static bool
s_quiet(tr__step_t *st)
{
    if (st->busy > 0)
        return false;
    for (size_t i = 0; i < st->nrecs; i++)
        if (atomic_load(&st->recs[i]->sent_to) !=
            atomic_load(&st->recs[i]->taken))
            return false;
    return true;
}

/* Wait (up to S_SETTLE_MS) for the node to be quiet twice in a row with
 * nothing changing between: then what is held is all there is. */
static void
s_settle(tr__step_t *st)
{
    uint64_t until = tr__deadline_after_ms(S_SETTLE_MS);
    uint64_t last = UINT64_MAX;
    pthread_mutex_lock(&st->mu);
    while (!st->stop && tr__now_ns() < until) {
        bool quiet = s_quiet(st);
        if (quiet && last == st->changes)
            break;
        last = quiet ? st->changes : UINT64_MAX;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2000000; /* the counters do not signal: look again */
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    pthread_mutex_unlock(&st->mu);
}

/* Switch stepping off: every held message goes to its actor, in order. */
static void
s_go_free(tr__step_t *st, const char *why)
{
    fprintf(stderr, "troupe step: %s: messages now go on freely\n", why);
    fflush(stderr);
    pthread_mutex_lock(&st->mu);
    st->free = true;
    for (s_item_t *it = st->head; it != NULL; it = it->next)
        s_wake_actor(it->a);
    pthread_mutex_unlock(&st->mu);
}

/* A line from stdin (without its newline); -1 at its end or on stop. */
static int
s_read_line(tr__step_t *st, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd fds[2] = {{.fd = 0, .events = POLLIN},
                                {.fd = st->wake[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (fds[1].revents != 0)
            return -1;
        char c;
        ssize_t k = read(0, &c, 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return n > 0 ? (buf[n] = '\0', 0) : -1;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        if (n + 1 < cap)
            buf[n++] = c;
    }
}

typedef struct {
    uint64_t seq;
    bool blocked; /* an older one of its pair waits */
    int after;    /* ... listed as this number */
} s_entry_t;

/* List what is held; the entries in e (how many). */
static int
s_list(tr__step_t *st, s_entry_t *e)
{
    char out[S_LIST_MAX * 160 + 256];
    size_t n = 0;
    int k = 0, total = 0;
    pthread_mutex_lock(&st->mu);
    for (s_item_t *it = st->head; it != NULL; it = it->next) {
        if (it->chosen) /* on its way */
            continue;
        total++;
        if (k == S_LIST_MAX)
            continue;
        e[k] = (s_entry_t){.seq = it->seq};
        for (int j = 0; j < k && !e[k].blocked; j++) {
            s_item_t *o = st->head;
            while (o != NULL && o->seq != e[j].seq)
                o = o->next;
            if (o != NULL && o->from == it->from && o->to == it->to)
                e[k].blocked = true, e[k].after = j + 1;
        }
        char from[TR_NAME_MAX + 24], to[TR_NAME_MAX + 24], pre[96];
        s_label(st->node, it->from, from, sizeof from);
        s_label(st->node, it->to, to, sizeof to);
        s_preview(it->msg, pre, sizeof pre);
        char tag[TR_TAG_MAX + 1];
        snprintf(tag, sizeof tag, "%s", tr_msg_tag(it->msg));
        for (char *p = tag; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        n += (size_t)snprintf(
            out + n, sizeof out - n, "  %2d) %s -> %s  '%s'%s%s%s%s\n", k + 1,
            from, to, tag, pre[0] ? " " : "", pre,
            tr_msg_is_request(it->msg) ? "  (an ask)" : "",
            e[k].blocked ? "  [waits for an older one]" : "");
        if (n >= sizeof out)
            n = sizeof out - 1;
        k++;
    }
    pthread_mutex_unlock(&st->mu);
    if (k == 0)
        return 0;
    fprintf(stderr, "\ntroupe step: %d message%s wait%s, oldest first:\n%s",
            total, total == 1 ? "" : "s", total == 1 ? "s" : "", out);
    if (total > k)
        fprintf(stderr, "  (and %d more)\n", total - k);
    fprintf(stderr, "deliver which? [1-%d, enter: the oldest, r: list again, "
            "q: run freely] ", k);
    fflush(stderr);
    return k;
}

/* Mark entry e chosen and wake its actor; false if it is gone. */
static bool
s_choose(tr__step_t *st, const s_entry_t *e, int number)
{
    pthread_mutex_lock(&st->mu);
    s_item_t *it = st->head;
    while (it != NULL && it->seq != e->seq)
        it = it->next;
    if (it != NULL && !it->chosen) {
        char to[TR_NAME_MAX + 24];
        s_label(st->node, it->to, to, sizeof to);
        fprintf(stderr, "troupe step: %d) '%s' goes to %s\n", number,
                tr_msg_tag(it->msg), to);
        fflush(stderr);
        it->chosen = true;
        st->busy++;
        s_wake_actor(it->a);
    }
    pthread_mutex_unlock(&st->mu);
    return it != NULL;
}

static void *
s_main(void *arg)
{
    tr__step_t *st = arg;
    pthread_setname_np(pthread_self(), "tr_step");
    s_entry_t e[S_LIST_MAX];
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (!st->stop && (st->free || st->head == NULL))
            pthread_cond_wait(&st->cv, &st->mu);
        bool stop = st->stop;
        pthread_mutex_unlock(&st->mu);
        if (stop)
            break;
        s_settle(st);
        int k = s_list(st, e);
        if (k == 0) { /* all held ones are on their way: wait for more */
            pthread_mutex_lock(&st->mu);
            uint64_t seen = st->changes;
            while (!st->stop && st->changes == seen)
                pthread_cond_wait(&st->cv, &st->mu);
            pthread_mutex_unlock(&st->mu);
            continue;
        }
        char line[64];
        for (;;) {
            if (s_read_line(st, line, sizeof line) != 0) {
                if (!st->stop)
                    s_go_free(st, "no more input");
                break;
            }
            char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
            char *end = p + strlen(p);
            while (end > p && (end[-1] == ' ' || end[-1] == '\r'))
                *--end = '\0';
            if (strcmp(p, "q") == 0) {
                s_go_free(st, "q");
                break;
            }
            if (strcmp(p, "r") == 0)
                break;
            int pick = 0;
            if (*p == '\0') {
                for (int i = 0; i < k && pick == 0; i++)
                    if (!e[i].blocked)
                        pick = i + 1;
            } else {
                char *num_end;
                long v = strtol(p, &num_end, 10);
                pick = *num_end == '\0' && v >= 1 && v <= k ? (int)v : 0;
                if (pick == 0) {
                    fprintf(stderr, "troupe step: '%s': a number from 1 to "
                            "%d, enter, r or q\ndeliver which? ", p, k);
                    fflush(stderr);
                    continue;
                }
                if (e[pick - 1].blocked) {
                    fprintf(stderr, "troupe step: %d must wait for %d: "
                            "messages from one sender to one receiver keep "
                            "their order\ndeliver which? ", pick,
                            e[pick - 1].after);
                    fflush(stderr);
                    continue;
                }
            }
            if (!s_choose(st, &e[pick - 1], pick))
                fprintf(stderr, "troupe step: that message is gone (its "
                        "actor ended)\n");
            break;
        }
        /* The handler runs: wait for it (not forever: it may wait on an
         * ask that only the learner can deliver). */
        uint64_t until = tr__deadline_after_ms(S_SETTLE_MS);
        pthread_mutex_lock(&st->mu);
        while (!st->stop && !st->free && st->busy > 0 &&
               tr__now_ns() < until) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&st->cv, &st->mu, &ts);
        }
        pthread_mutex_unlock(&st->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The node's side                                                     */

int
tr__step_start(tr_node_t *node, tr__step_t **out)
{
    *out = NULL;
    const char *env = getenv("TROUPE_STEP");
    if (env == NULL || env[0] == '\0' || strcmp(env, "0") == 0 ||
        node->child)
        return 0;
    bool no = false;
    if (!atomic_compare_exchange_strong(&s_taken, &no, true)) {
        TR__LOG(TR_LOG_WARN, "step", "node '%s' is not stepped: another "
                "node of this process is (one stdin)", node->name);
        return 0;
    }
    tr__step_t *st = calloc(1, sizeof *st);
    if (st == NULL) {
        atomic_store(&s_taken, false);
        return TR_ENOMEM;
    }
    st->node = node;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pipe2(st->wake, O_CLOEXEC) != 0 ||
        pthread_create(&st->thread, NULL, s_main, st) != 0) {
        TR__LOG(TR_LOG_ERROR, "step", "cannot start step mode: %s",
                strerror(errno));
        if (st->wake[0] > 0)
            close(st->wake[0]), close(st->wake[1]);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        free(st);
        atomic_store(&s_taken, false);
        return TR_ESYS;
    }
    fprintf(stderr, "troupe step: node '%s' runs one message at a time "
            "(TROUPE_STEP): you pick which\n", node->name);
    fflush(stderr);
    *out = st;
    return 0;
}

void
tr__step_stop(tr__step_t **stp)
{
    tr__step_t *st = *stp;
    if (st == NULL)
        return;
    *stp = NULL;
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    char x = 'x';
    if (write(st->wake[1], &x, 1) < 0)
        TR__LOG(TR_LOG_WARN, "step", "cannot wake the stepper");
    pthread_join(st->thread, NULL);
    close(st->wake[0]);
    close(st->wake[1]);
    while (st->head != NULL) { /* none: every actor left */
        s_item_t *it = st->head;
        st->head = it->next;
        tr_msg_destroy(&it->msg);
        free(it);
    }
    for (size_t i = 0; i < st->nrecs; i++)
        tr__rec_unref(&st->recs[i]);
    free(st->recs);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    atomic_store(&s_taken, false);
}

void
tr__step_join(tr_actor_t *a)
{
    a->step_fd = -1;
    tr__step_t *st = a->node->step;
    if (st == NULL || a->process_child ||
        strncmp(a->beh->name, "tr_", 3) == 0) /* the runtime's own */
        return;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return;
    pthread_mutex_lock(&st->mu);
    if (st->nrecs == st->caprecs) {
        size_t cap = st->caprecs ? 2 * st->caprecs : 8;
        tr__rec_t **v = realloc(st->recs, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&st->mu);
            close(fd);
            return;
        }
        st->recs = v;
        st->caprecs = cap;
    }
    tr__rec_ref(a->rec);
    st->recs[st->nrecs++] = a->rec;
    pthread_mutex_unlock(&st->mu);
    a->step_fd = fd;
}

bool
tr__step_hold(tr_actor_t *a, tr_msg_t *view)
{
    tr__step_t *st = a->node->step;
    s_item_t *it = malloc(sizeof *it);
    if (it == NULL)
        return false;
    pthread_mutex_lock(&st->mu);
    bool free_run = st->free;
    pthread_mutex_unlock(&st->mu);
    if (free_run || tr__msg_adopt(view, &it->msg) != 0) {
        free(it);
        return false;
    }
    it->next = NULL;
    it->a = a;
    it->from = it->msg->env.sender;
    it->to = a->rec->id;
    it->chosen = false;
    pthread_mutex_lock(&st->mu);
    it->seq = ++st->seq;
    if (st->tail != NULL)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    st->changes++;
    pthread_cond_broadcast(&st->cv);
    if (st->free) /* switched off meanwhile: deliver it */
        s_wake_actor(a);
    pthread_mutex_unlock(&st->mu);
    return true;
}

tr_msg_t *
tr__step_take(tr_actor_t *a)
{
    tr__step_t *st = a->node->step;
    uint64_t v;
    if (read(a->step_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        TR__LOG(TR_LOG_WARN, "step", "eventfd: %s", strerror(errno));
    tr_msg_t *msg = NULL;
    pthread_mutex_lock(&st->mu);
    s_item_t *prev = NULL, *it = st->head;
    while (it != NULL && !(it->a == a && (it->chosen || st->free)))
        prev = it, it = it->next;
    if (it != NULL) {
        if (prev != NULL)
            prev->next = it->next;
        else
            st->head = it->next;
        if (st->tail == it)
            st->tail = prev;
        msg = it->msg;
        if (!it->chosen)
            st->busy++; /* free: counted like a chosen one */
        free(it);
        st->changes++;
        /* More of its own to hand out freely: come again. */
        if (st->free)
            for (s_item_t *o = st->head; o != NULL; o = o->next)
                if (o->a == a) {
                    s_wake_actor(a);
                    break;
                }
    }
    pthread_mutex_unlock(&st->mu);
    return msg;
}

void
tr__step_done(tr_actor_t *a)
{
    tr__step_t *st = a->node->step;
    pthread_mutex_lock(&st->mu);
    st->busy--;
    st->changes++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void
tr__step_leave(tr_actor_t *a)
{
    tr__step_t *st = a->node->step;
    if (a->step_fd < 0 || st == NULL)
        return;
    uint64_t dropped = 0;
    pthread_mutex_lock(&st->mu);
    s_item_t **pp = &st->head;
    st->tail = NULL;
    while (*pp != NULL) {
        s_item_t *it = *pp;
        if (it->a == a) {
            *pp = it->next;
            if (it->chosen)
                st->busy--;
            tr_msg_destroy(&it->msg);
            free(it);
            dropped++;
        } else {
            st->tail = it;
            pp = &it->next;
        }
    }
    for (size_t i = 0; i < st->nrecs; i++)
        if (st->recs[i] == a->rec) {
            tr__rec_unref(&st->recs[i]);
            st->recs[i] = st->recs[--st->nrecs];
            break;
        }
    st->changes++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    atomic_fetch_add(&a->node->stats.dead_letters, dropped);
    close(a->step_fd);
    a->step_fd = -1;
}
