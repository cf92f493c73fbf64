/* runtime/trace.c - a node's trace: 64-byte records (docs/control.md)
 * kept by each thread in a buffer of its own and appended whole to the
 * file (O_APPEND: the writes of two threads never interleave), so
 * recording takes no lock. A thread finds its buffer through a
 * thread-local (trace generation, buffer) pair: a buffer belongs to its
 * trace, which frees them all at close, and a new trace has a new
 * generation, so a thread never touches a buffer of a closed trace.
 *
 * A record is stamped with the CPU's time-stamp counter where the
 * kernel itself keeps time with it (x86-64, clocksource tsc), a few
 * cycles where clock_gettime costs tens of nanoseconds; a buffer takes a
 * (counter, CLOCK_MONOTONIC) pair when its first record comes and
 * another when it is written, and its stamps become nanoseconds by
 * interpolating between the two. Elsewhere records take
 * CLOCK_MONOTONIC directly.
 *
 * A trace may also keep a ring of the last TR__TRACE_RING records in
 * memory, for the control endpoint's "events" (what `troupe dashboard`
 * draws). The ring is switched on by the control command "watch": a node
 * traced to no file gets a trace with no file, only the ring. Adding to
 * the ring takes a mutex: it is on only while someone watches.
 */
#include "runtime/trace.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "transport/clock.h"
#include "transport/log.h"

#define S_RECORDS 1024 /* a buffer: 64 KiB */

typedef struct s_rec {
    uint64_t ts, a, b;
    uint32_t size;
    uint8_t kind, pad[3];
    char text[32];
} s_rec_t;

_Static_assert(sizeof(s_rec_t) == 64, "a trace record is 64 bytes");

typedef struct s_buf {
    struct s_buf *next; /* the trace's list */
    size_t n;
    uint64_t tsc0, ns0; /* at the first record since the last write */
    s_rec_t r[S_RECORDS];
} s_buf_t;

struct tr__trace {
    int fd;             /* -1: no file, the ring only */
    uint64_t gen;
    pthread_mutex_t mu; /* the list of buffers */
    s_buf_t *bufs;
    _Atomic bool ring_on;
    pthread_mutex_t ring_mu; /* the ring below */
    s_rec_t *ring;           /* TR__TRACE_RING records, once on */
    uint64_t ring_next;      /* sequence number of the next record */
    uint64_t start_ns;
    bool tsc; /* records stamped with the time-stamp counter */
};

static _Atomic uint64_t s_gens;
static _Thread_local struct {
    uint64_t gen;
    s_buf_t *buf;
} t_cur;

/* The time-stamp counter, where the kernel keeps time with it: then it
 * runs at a constant rate, the same on every CPU. */
static bool
s_tsc_usable(void)
{
#if defined(__x86_64__)
    char cs[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
                    "current_clocksource", "r");
    if (f == NULL)
        return false;
    bool ok = fgets(cs, sizeof cs, f) != NULL && strcmp(cs, "tsc\n") == 0;
    fclose(f);
    return ok;
#else
    return false;
#endif
}

static inline uint64_t
s_stamp(const tr__trace_t *t)
{
#if defined(__x86_64__)
    if (t->tsc)
        return __rdtsc();
#endif
    (void)t;
    return tr__now_ns();
}

/* A buffer's counter stamps into nanoseconds, between the pair taken at
 * its first record and one taken now. */
static void
s_stamps_to_ns(const tr__trace_t *t, s_buf_t *b)
{
    if (!t->tsc || b->n == 0)
        return;
    uint64_t tsc1 = s_stamp(t), ns1 = tr__now_ns();
    double per = tsc1 > b->tsc0 ? (double)(ns1 - b->ns0) /
                                      (double)(tsc1 - b->tsc0)
                                : 0.0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t d = b->r[i].ts > b->tsc0 ? b->r[i].ts - b->tsc0 : 0;
        b->r[i].ts = b->ns0 + (uint64_t)((double)d * per);
    }
}

static void
s_write(tr__trace_t *t, s_buf_t *b)
{
    s_stamps_to_ns(t, b);
    size_t len = b->n * sizeof(s_rec_t);
    const char *p = (const char *)b->r;
    while (len > 0) {
        ssize_t w = write(t->fd, p, len);
        if (w <= 0)
            break; /* a full disk: the trace is cut short */
        p += w;
        len -= (size_t)w;
    }
    b->n = 0;
}

int
tr__trace_open(const char *path, bool child, tr__trace_t **out)
{
    char name[4096];
    if (child)
        snprintf(name, sizeof name, "%s.%ld", path, (long)getpid());
    else
        snprintf(name, sizeof name, "%s", path);
    tr__trace_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    t->fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                 0600);
    if (t->fd < 0) {
        TR__LOG(TR_LOG_ERROR, "trace", "cannot write the trace %s", name);
        free(t);
        return TR_ESYS;
    }
    uint8_t head[16] = "TRTRACE1";
    uint64_t now = tr__now_ns();
    for (int i = 0; i < 8; i++)
        head[8 + i] = (uint8_t)(now >> (8 * i));
    if (write(t->fd, head, sizeof head) != (ssize_t)sizeof head) {
        close(t->fd);
        free(t);
        return TR_ESYS;
    }
    t->gen = atomic_fetch_add(&s_gens, 1) + 1;
    t->start_ns = now;
    t->tsc = s_tsc_usable();
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->ring_mu, NULL);
    *out = t;
    return 0;
}

int
tr__trace_open_ring(tr__trace_t **out)
{
    tr__trace_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    t->fd = -1;
    t->gen = atomic_fetch_add(&s_gens, 1) + 1;
    t->start_ns = tr__now_ns();
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->ring_mu, NULL);
    *out = t;
    return 0;
}

int
tr__trace_ring_on(tr__trace_t *t)
{
    pthread_mutex_lock(&t->ring_mu);
    if (t->ring == NULL)
        t->ring = calloc(TR__TRACE_RING, sizeof *t->ring);
    bool ok = t->ring != NULL;
    pthread_mutex_unlock(&t->ring_mu);
    if (!ok)
        return TR_ENOMEM;
    atomic_store(&t->ring_on, true);
    return 0;
}

static void
s_fill(s_rec_t *r, uint64_t ts, int kind, uint64_t a, uint64_t b,
       uint32_t size, const char *text)
{
    r->ts = ts;
    r->a = a;
    r->b = b;
    r->size = size;
    r->kind = (uint8_t)kind;
    r->pad[0] = r->pad[1] = r->pad[2] = 0;
    /* NUL-padded, maybe full; a loop, not strnlen and a variable-length
     * memcpy (their calls cost more than the short tags they copy). */
    size_t n = 0;
    if (text != NULL)
        for (; n < sizeof r->text && text[n] != '\0'; n++)
            r->text[n] = text[n];
    for (; n < sizeof r->text; n++)
        r->text[n] = '\0';
}

static void
s_ring_add(tr__trace_t *t, int kind, uint64_t a, uint64_t b, uint32_t size,
           const char *text)
{
    pthread_mutex_lock(&t->ring_mu);
    s_fill(&t->ring[t->ring_next % TR__TRACE_RING], tr__now_ns(), kind, a, b,
           size, text);
    t->ring_next++;
    pthread_mutex_unlock(&t->ring_mu);
}

size_t
tr__trace_snapshot(tr__trace_t *t, uint64_t since, tr__trace_ev_t *out,
                   size_t cap, uint64_t *next)
{
    size_t n = 0;
    pthread_mutex_lock(&t->ring_mu);
    uint64_t end = t->ring_next;
    uint64_t first = end > TR__TRACE_RING ? end - TR__TRACE_RING : 0;
    if (since < first)
        since = first;
    uint64_t i = since;
    for (; t->ring != NULL && i < end && n < cap; i++, n++) {
        const s_rec_t *r = &t->ring[i % TR__TRACE_RING];
        tr__trace_ev_t *e = &out[n];
        e->seq = i;
        e->ts = r->ts - t->start_ns;
        e->a = r->a;
        e->b = r->b;
        e->size = r->size;
        e->kind = r->kind;
        memcpy(e->text, r->text, sizeof r->text);
        e->text[sizeof r->text] = '\0';
    }
    pthread_mutex_unlock(&t->ring_mu);
    *next = t->ring == NULL ? end : i;
    return n;
}

static s_buf_t *
s_mine(tr__trace_t *t)
{
    if (t_cur.gen == t->gen)
        return t_cur.buf;
    s_buf_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&t->mu);
    b->next = t->bufs;
    t->bufs = b;
    pthread_mutex_unlock(&t->mu);
    t_cur.gen = t->gen;
    t_cur.buf = b;
    return b;
}

void
tr__trace_add(tr__trace_t *t, int kind, uint64_t a, uint64_t b,
              uint32_t size, const char *text)
{
    if (atomic_load_explicit(&t->ring_on, memory_order_relaxed))
        s_ring_add(t, kind, a, b, size, text);
    if (t->fd < 0)
        return;
    s_buf_t *buf = s_mine(t);
    if (buf == NULL)
        return;
    if (buf->n == S_RECORDS)
        s_write(t, buf);
    uint64_t ts = s_stamp(t);
    if (buf->n == 0 && t->tsc) {
        buf->tsc0 = ts;
        buf->ns0 = tr__now_ns();
    }
    s_fill(&buf->r[buf->n++], ts, kind, a, b, size, text);
}

void
tr__trace_flush_thread(tr__trace_t *t)
{
    if (t == NULL || t->fd < 0 || t_cur.gen != t->gen || t_cur.buf == NULL)
        return;
    s_buf_t *b = t_cur.buf;
    s_write(t, b);
    /* The thread ends: its 64 KiB go back now, not at close (a traced
     * node may start and end thousands of actors). */
    pthread_mutex_lock(&t->mu);
    for (s_buf_t **p = &t->bufs; *p != NULL; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    free(b);
    t_cur.gen = 0;
    t_cur.buf = NULL;
}

void
tr__trace_close(tr__trace_t **tp)
{
    tr__trace_t *t = *tp;
    if (t == NULL)
        return;
    *tp = NULL;
    pthread_mutex_lock(&t->mu);
    s_buf_t *b = t->bufs;
    t->bufs = NULL;
    pthread_mutex_unlock(&t->mu);
    while (b != NULL) {
        s_buf_t *next = b->next;
        s_write(t, b);
        free(b);
        b = next;
    }
    if (t_cur.gen == t->gen)
        t_cur.gen = 0, t_cur.buf = NULL;
    if (t->fd >= 0)
        close(t->fd);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->ring_mu);
    free(t->ring);
    free(t);
}
