/* runtime/chaos.c - faults on purpose, for users to test their services
 * as troupe's own tests do: TROUPE_CHAOS="seed=N,kill=P,stop=P,..." (or
 * tr_node_opts.chaos) makes a node SIGKILL and SIGSTOP its process actors
 * and delay and duplicate user messages, on a schedule the seed
 * reproduces, and log at the end what it did and what the runtime saw.
 *
 *   seed=N       the schedule (default 1)
 *   every=MS     how often the chaos thread draws (default 100)
 *   kill=P       each draw, SIGKILL a process actor with probability P
 *   stop=P       each draw, SIGSTOP one (a hang) with probability P ...
 *   stop_ms=MS   ... and SIGCONT it MS later (default 300)
 *   dup=P        each user message is sent twice with probability P
 *   delay=P      each user message waits with probability P ...
 *   delay_ms=MS  ... MS before it goes (the sender waits; default 10)
 *
 * What a seed fixes is each draw's decisions (kill or not, stop or not)
 * and the number its victim is chosen with: its place among the process
 * actors running then (n, in start order). So the same program with the
 * same seed kills the same actors at the same draws as long as the same
 * ones run at each draw; n itself is timing (how soon a child is up, how
 * soon a death is seen). Each fault's log line names its draw and place,
 * and the report counts the draws, so that runs can be compared. Message
 * faults draw from a generator per sending thread, seeded with the seed
 * and the thread's actor id: the same messages from the same actors get
 * the same faults, whatever the timing.
 */
#include "runtime/chaos.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "runtime/node.h"
#include "transport/clock.h"
#include "transport/log.h"

struct tr__chaos {
    tr_node_t *node;
    uint64_t seed;
    int every_ms, stop_ms, delay_ms;
    double kill, stop, dup, delay;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    long stopped[16]; /* SIGSTOPped pids, to wake at ... */
    uint64_t wake_at[16];
    int nstopped;
    uint64_t serial; /* this chaos among the process's (t_rng.serial) */
    uint64_t draws;  /* the chaos thread's only */
    _Atomic uint64_t kills, stops, dups, delays;
};

/* splitmix64: a small generator whose stream a seed fixes */
static uint64_t
s_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
s_unit(uint64_t *s)
{
    return (double)(s_next(s) >> 11) / 9007199254740992.0;
}

/* A thread's message-fault generator, for the chaos of serial. Not the
 * chaos's address: a node made after another is destroyed may get the
 * same one, and would go on with the old stream instead of its seed's. */
static _Thread_local struct {
    uint64_t serial;
    uint64_t state;
    bool inside; /* sending a duplicate: no fault on it */
} t_rng;

/* ------------------------------------------------------------------ */

static int
s_parse(tr__chaos_t *c, const char *spec)
{
    c->seed = 1;
    c->every_ms = 100;
    c->stop_ms = 300;
    c->delay_ms = 10;
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return TR_EINVAL;
    strcpy(buf, spec);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv != NULL;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            return TR_EINVAL;
        *eq = 0;
        const char *k = kv, *v = eq + 1;
        char *end;
        double d = strtod(v, &end);
        if (*v == 0 || *end != 0 || d < 0)
            return TR_EINVAL;
        if (strcmp(k, "seed") == 0)
            c->seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "every") == 0 && d >= 1 && d <= 3600000)
            c->every_ms = (int)d;
        else if (strcmp(k, "stop_ms") == 0 && d <= 3600000)
            c->stop_ms = (int)d;
        else if (strcmp(k, "delay_ms") == 0 && d <= 60000)
            c->delay_ms = (int)d;
        else if (strcmp(k, "kill") == 0 && d <= 1)
            c->kill = d;
        else if (strcmp(k, "stop") == 0 && d <= 1)
            c->stop = d;
        else if (strcmp(k, "dup") == 0 && d <= 1)
            c->dup = d;
        else if (strcmp(k, "delay") == 0 && d <= 1)
            c->delay = d;
        else
            return TR_EINVAL;
    }
    return 0;
}

/* A running process actor by its place among them (*place of *n), drawn
 * with r. */
static long
s_pick(tr_node_t *node, uint64_t r, tr_id_t *id, size_t *place, size_t *n)
{
    long pid = 0;
    pthread_mutex_lock(&node->mu);
    *n = 0;
    for (size_t i = 0; i < node->nactors; i++)
        *n += node->actors[i]->pid != 0 &&
              atomic_load(&node->actors[i]->up) &&
              !atomic_load(&node->actors[i]->dead);
    if (*n > 0) {
        size_t want = (size_t)(r % *n);
        *place = want;
        for (size_t i = 0, k = 0; i < node->nactors; i++) {
            tr__rec_t *rec = node->actors[i];
            if (rec->pid == 0 || !atomic_load(&rec->up) ||
                atomic_load(&rec->dead))
                continue;
            if (k++ == want) {
                pid = rec->pid;
                *id = rec->id;
                break;
            }
        }
    }
    pthread_mutex_unlock(&node->mu);
    return pid;
}

static void
s_wake_due(tr__chaos_t *c, bool all)
{
    uint64_t now = tr__now_ns();
    int k = 0;
    for (int i = 0; i < c->nstopped; i++) {
        if (all || now >= c->wake_at[i]) {
            kill((pid_t)c->stopped[i], SIGCONT);
        } else {
            c->stopped[k] = c->stopped[i];
            c->wake_at[k++] = c->wake_at[i];
        }
    }
    c->nstopped = k;
}

static void *
s_main(void *arg)
{
    tr__chaos_t *c = arg;
    pthread_setname_np(pthread_self(), "tr_chaos");
    uint64_t rng = c->seed;
    pthread_mutex_lock(&c->mu);
    while (!c->quit) {
        struct timespec ts;
        uint64_t due = tr__now_ns() + (uint64_t)c->every_ms * 1000000u;
        ts.tv_sec = (time_t)(due / 1000000000u);
        ts.tv_nsec = (long)(due % 1000000000u);
        while (!c->quit &&
               pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0)
            ;
        if (c->quit)
            break;
        s_wake_due(c, false);
        uint64_t draw = ++c->draws;
        double dk = s_unit(&rng), ds = s_unit(&rng);
        uint64_t rk = s_next(&rng), rs = s_next(&rng);
        tr_id_t id = 0;
        size_t place = 0, n = 0;
        long pid;
        if (dk < c->kill && (pid = s_pick(c->node, rk, &id, &place, &n)) > 0) {
            TR__LOG(TR_LOG_WARN, "chaos", "draw %llu: SIGKILL to actor %llx "
                    "(pid %ld, place %zu of %zu)", (unsigned long long)draw,
                    (unsigned long long)id, pid, place, n);
            kill((pid_t)pid, SIGKILL);
            atomic_fetch_add(&c->kills, 1);
        }
        if (ds < c->stop && c->nstopped < 16 &&
            (pid = s_pick(c->node, rs, &id, &place, &n)) > 0) {
            TR__LOG(TR_LOG_WARN, "chaos", "draw %llu: SIGSTOP to actor %llx "
                    "(pid %ld, place %zu of %zu) for %d ms",
                    (unsigned long long)draw, (unsigned long long)id, pid,
                    place, n, c->stop_ms);
            kill((pid_t)pid, SIGSTOP);
            c->stopped[c->nstopped] = pid;
            c->wake_at[c->nstopped++] =
                tr__now_ns() + (uint64_t)c->stop_ms * 1000000u;
            atomic_fetch_add(&c->stops, 1);
        }
    }
    s_wake_due(c, true); /* nobody stays stopped */
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int
tr__chaos_start(tr_node_t *node, const char *spec, tr__chaos_t **out)
{
    *out = NULL;
    tr__chaos_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TR_ENOMEM;
    static _Atomic uint64_t serials;
    c->node = node;
    c->serial = atomic_fetch_add(&serials, 1) + 1; /* 0: none yet */
    int rc = s_parse(c, spec);
    if (rc != 0) {
        free(c);
        return tr__refuse(TR_EINVAL, "TROUPE_CHAOS '%s': want seed=N, "
                          "every=MS, kill=P, stop=P, stop_ms=MS, dup=P, "
                          "delay=P, delay_ms=MS (P in 0..1)", spec);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((c->kill > 0 || c->stop > 0) &&
        pthread_create(&c->thread, NULL, s_main, c) == 0)
        c->running = true;
    TR__LOG(TR_LOG_WARN, "chaos", "on: seed=%llu every=%d kill=%g stop=%g "
            "stop_ms=%d dup=%g delay=%g delay_ms=%d",
            (unsigned long long)c->seed, c->every_ms, c->kill, c->stop,
            c->stop_ms, c->dup, c->delay, c->delay_ms);
    *out = c;
    return 0;
}

void
tr__chaos_stop(tr__chaos_t **cp)
{
    tr__chaos_t *c = *cp;
    if (c == NULL)
        return;
    *cp = NULL;
    if (c->running) {
        pthread_mutex_lock(&c->mu);
        c->quit = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    /* The report: a log line (warn, as the "on" line, so that it shows
     * by default) rather than a print, so that a program's sink gets it. */
    tr_node_stats_t st;
    tr_node_stats(c->node, &st);
    TR__LOG(TR_LOG_WARN, "chaos", "report (seed=%llu, %llu draws): "
            "injected %llu kills, %llu stops, %llu duplicated and %llu "
            "delayed messages; observed %llu actors failed, %llu exited, "
            "%llu dead letters", (unsigned long long)c->seed,
            (unsigned long long)c->draws, (unsigned long long)c->kills,
            (unsigned long long)c->stops, (unsigned long long)c->dups,
            (unsigned long long)c->delays, (unsigned long long)st.failed,
            (unsigned long long)st.exited,
            (unsigned long long)st.dead_letters);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

bool
tr__chaos_on_send(tr__chaos_t *c, tr_id_t sender)
{
    if (t_rng.inside || (c->dup <= 0 && c->delay <= 0))
        return false;
    if (t_rng.serial != c->serial) {
        t_rng.serial = c->serial;
        t_rng.state = c->seed ^ (sender * 0x9e3779b97f4a7c15ull);
    }
    double dd = s_unit(&t_rng.state), dl = s_unit(&t_rng.state);
    if (dl < c->delay) {
        atomic_fetch_add(&c->delays, 1);
        (void)poll(NULL, 0, c->delay_ms);
    }
    if (dd < c->dup) {
        atomic_fetch_add(&c->dups, 1);
        return true;
    }
    return false;
}

void
tr__chaos_inside(bool on)
{
    t_rng.inside = on;
}
