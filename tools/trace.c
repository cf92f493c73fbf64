/* tools/trace.c - troupe trace: read a node's trace (docs/control.md:
 * a 16-byte header, then 64-byte records) and the FILE.<pid> traces of
 * its process actors, merge them by time, and
 *  - summarise them: records per kind, per actor, per tag (text or JSON);
 *  - turn them into Chrome/Perfetto trace events (--perfetto): a track per
 *    actor, and a flow arrow from each SEND to its RECV;
 *  - draw a message sequence diagram (--svg): a lifeline per actor, an
 *    arrow per message, a cross where an actor crashed, a mark where it
 *    was restarted.
 *
 * A SEND and a RECV are the same message when they are the k-th SEND and
 * the k-th RECV of one (sender, receiver, tag): messages from one sender
 * to one receiver arrive in order (one ZeroMQ pipe), so counting pairs
 * them without any id in the record. Pairing by count rather than by time
 * also survives a RECV stamped a hair before its SEND.
 *
 * Everything is read into memory: 64 bytes a record, so a million
 * messages (two records each) take about 200 MB. */
#include "tools/tool.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_HEADER 16
#define S_RECORD 64
#define S_TEXT 32
#define S_MAX_FILES 256

enum {
    K_SEND = 1,
    K_RECV = 2,
    K_SPAWN = 3,
    K_EXIT = 4,
    K_RESTART = 5,
    K_DOWN = 6,
    K_COUNT = 7,
};

static const char *const s_kind_name[K_COUNT] = {
    "?", "SEND", "RECV", "SPAWN", "EXIT", "RESTART", "DOWN"};

/* TR_ESHUTDOWN: an actor stopped on request ended normally, for the
 * diagram (every actor ends so when its node is destroyed). */
#define S_REASON_SHUTDOWN (-18)

typedef struct {
    uint64_t ts, a, b;
    int32_t size; /* EXIT: the reason, as a signed int */
    uint8_t kind;
    uint16_t file; /* index in s_trace.files */
    uint32_t seq;  /* position in its file: keeps the sort stable */
    char text[S_TEXT + 1];
    /* derived */
    int actor;  /* index of a in s_trace.actors */
    int other;  /* index of b, or -1 when b is 0 */
    int tag;    /* SEND, RECV: index in s_trace.tags */
    long match; /* SEND <-> RECV: the other record, or -1 */
    long orig;  /* index before the second sort */
} s_rec_t;

typedef struct {
    uint64_t id;
    char name[S_TEXT + 1], beh[S_TEXT + 1];
    bool spawned;     /* a SPAWN named it */
    long pid;         /* 0: the node's process; else a process file's */
    uint64_t counts[K_COUNT];
    int32_t last_reason;
    bool exited;
    int lane;          /* SVG: its lifeline */
    int alias;         /* restarts: the actor it replaced (union-find) */
} s_actor_t;

typedef struct {
    char text[S_TEXT + 1];
    uint64_t sent, received;
} s_tag_t;

typedef struct {
    char path[TT_PATH_MAX];
    long pid; /* 0 for the main file */
    uint64_t t0;
    size_t records, tail_bytes;
} s_file_t;

/* A flow key: sender, receiver, tag, with the lists of its SENDs and
 * RECVs in time order (linked through s_trace.next_*). */
typedef struct {
    uint64_t s, r;
    int tag;
    long send_head, send_tail, recv_head, recv_tail;
} s_flow_t;

static struct {
    s_rec_t *r;
    size_t n, cap;
    s_file_t files[S_MAX_FILES];
    int nfiles;
    uint64_t t0, t_end;
    uint64_t unknown; /* records of a kind we do not know */
    s_actor_t *actors;
    int nactors, actors_cap;
    int *actor_slot; /* open addressing over actors by id */
    size_t actor_slots;
    s_tag_t *tags;
    int ntags, tags_cap;
    int *tag_slot;
    size_t tag_slots;
    uint64_t kinds[K_COUNT];
} s_trace;

static void *
s_xrealloc(void *p, size_t n)
{
    assert(n > 0); /* callers ask for at least one element */
    void *q = realloc(p, n);
    if (q == NULL) {
        tt_err("out of memory");
        exit(TT_EXIT_FAIL);
    }
    return q;
}

static uint64_t
s_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t
s_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
s_hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t
s_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* Read one trace file into s_trace.r. 0 or TT_EXIT_FAIL (said why). */
static int
s_read_file(const char *path, long pid)
{
    if (s_trace.nfiles == S_MAX_FILES) {
        tt_err("%s: more than %d trace files: the rest are left out", path,
               S_MAX_FILES);
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        tt_err("%s: %s", path, strerror(errno));
        return TT_EXIT_FAIL;
    }
    unsigned char head[S_HEADER], buf[S_RECORD];
    if (fread(head, 1, S_HEADER, f) != S_HEADER ||
        memcmp(head, "TRTRACE1", 8) != 0) {
        tt_err("%s is not a troupe trace (no TRTRACE1 header)", path);
        fclose(f);
        return TT_EXIT_FAIL;
    }
    int fi = s_trace.nfiles++;
    s_file_t *file = &s_trace.files[fi];
    snprintf(file->path, sizeof file->path, "%s", path);
    file->pid = pid;
    file->t0 = s_le64(head + 8);
    size_t got;
    uint32_t seq = 0;
    while ((got = fread(buf, 1, S_RECORD, f)) == S_RECORD) {
        uint8_t kind = buf[28];
        if (kind == 0 || kind >= K_COUNT) {
            s_trace.unknown++;
            continue;
        }
        if (s_trace.n == s_trace.cap) {
            s_trace.cap = s_trace.cap ? 2 * s_trace.cap : 4096;
            s_trace.r = s_xrealloc(s_trace.r, s_trace.cap * sizeof *s_trace.r);
        }
        s_rec_t *r = &s_trace.r[s_trace.n++];
        memset(r, 0, sizeof *r);
        r->ts = s_le64(buf);
        r->a = s_le64(buf + 8);
        r->b = s_le64(buf + 16);
        r->size = (int32_t)s_le32(buf + 24);
        r->kind = kind;
        r->file = (uint16_t)fi;
        r->seq = seq++;
        memcpy(r->text, buf + 32, S_TEXT);
        r->text[S_TEXT] = '\0';
        r->match = -1;
        file->records++;
    }
    file->tail_bytes = got;
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        tt_err("%s: read error", path);
        return TT_EXIT_FAIL;
    }
    if (got > 0)
        tt_err("warning: %s ends in %zu bytes that are not a whole record "
               "(left out)", path, got);
    return 0;
}

static int
s_long_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* FILE.<pid> next to FILE: the traces of the node's process actors. */
static int
s_read_process_files(const char *path)
{
    char dir[TT_PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t blen = strlen(base);
    long *pids = NULL;
    size_t npids = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || n[blen] != '.' ||
            n[blen + 1] == '\0')
            continue;
        char *end;
        long pid = strtol(n + blen + 1, &end, 10);
        if (*end != '\0' || pid <= 0 || n[blen + 1] < '0' ||
            n[blen + 1] > '9')
            continue;
        pids = s_xrealloc(pids, (npids + 1) * sizeof *pids);
        pids[npids++] = pid;
    }
    closedir(d);
    if (npids > 0)
        qsort(pids, npids, sizeof *pids, s_long_cmp);
    int rc = 0;
    for (size_t i = 0; i < npids && rc == 0; i++) {
        char p[TT_PATH_MAX + 32];
        snprintf(p, sizeof p, "%s.%ld", path, pids[i]);
        rc = s_read_file(p, pids[i]);
    }
    free(pids);
    return rc;
}

static int
s_rec_cmp(const void *x, const void *y)
{
    const s_rec_t *a = x, *b = y;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* The index of actor id, added when new. */
static int
s_actor(uint64_t id)
{
    if ((size_t)s_trace.nactors * 2 >= s_trace.actor_slots) {
        size_t slots = s_trace.actor_slots ? 2 * s_trace.actor_slots : 256;
        int *t = s_xrealloc(NULL, slots * sizeof *t);
        for (size_t i = 0; i < slots; i++)
            t[i] = -1;
        for (int k = 0; k < s_trace.nactors; k++) {
            size_t h = s_hash64(s_trace.actors[k].id) & (slots - 1);
            while (t[h] >= 0)
                h = (h + 1) & (slots - 1);
            t[h] = k;
        }
        free(s_trace.actor_slot);
        s_trace.actor_slot = t;
        s_trace.actor_slots = slots;
    }
    size_t mask = s_trace.actor_slots - 1;
    size_t h = s_hash64(id) & mask;
    for (; s_trace.actor_slot[h] >= 0; h = (h + 1) & mask)
        if (s_trace.actors[s_trace.actor_slot[h]].id == id)
            return s_trace.actor_slot[h];
    if (s_trace.nactors == s_trace.actors_cap) {
        s_trace.actors_cap = s_trace.actors_cap ? 2 * s_trace.actors_cap : 64;
        s_trace.actors = s_xrealloc(
            s_trace.actors, (size_t)s_trace.actors_cap * sizeof *s_trace.actors);
    }
    int k = s_trace.nactors++;
    s_actor_t *a = &s_trace.actors[k];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->alias = k;
    a->lane = -1;
    s_trace.actor_slot[h] = k;
    return k;
}

/* The index of tag text, added when new. */
static int
s_tag(const char *text)
{
    if ((size_t)s_trace.ntags * 2 >= s_trace.tag_slots) {
        size_t slots = s_trace.tag_slots ? 2 * s_trace.tag_slots : 64;
        int *t = s_xrealloc(NULL, slots * sizeof *t);
        for (size_t i = 0; i < slots; i++)
            t[i] = -1;
        for (int k = 0; k < s_trace.ntags; k++) {
            size_t h = s_hash_str(s_trace.tags[k].text) & (slots - 1);
            while (t[h] >= 0)
                h = (h + 1) & (slots - 1);
            t[h] = k;
        }
        free(s_trace.tag_slot);
        s_trace.tag_slot = t;
        s_trace.tag_slots = slots;
    }
    size_t mask = s_trace.tag_slots - 1;
    size_t h = s_hash_str(text) & mask;
    for (; s_trace.tag_slot[h] >= 0; h = (h + 1) & mask)
        if (strcmp(s_trace.tags[s_trace.tag_slot[h]].text, text) == 0)
            return s_trace.tag_slot[h];
    if (s_trace.ntags == s_trace.tags_cap) {
        s_trace.tags_cap = s_trace.tags_cap ? 2 * s_trace.tags_cap : 32;
        s_trace.tags = s_xrealloc(s_trace.tags, (size_t)s_trace.tags_cap *
                                                    sizeof *s_trace.tags);
    }
    int k = s_trace.ntags++;
    memset(&s_trace.tags[k], 0, sizeof s_trace.tags[k]);
    memcpy(s_trace.tags[k].text, text, S_TEXT + 1);
    s_trace.tag_slot[h] = k;
    return k;
}

/* The flows, in open addressing by (sender, receiver, tag). */
static struct {
    s_flow_t *f;
    size_t n, slots;
} s_flows;

static size_t
s_flow_hash(uint64_t s, uint64_t r, int tag)
{
    return (size_t)s_hash64(s * 31 + s_hash64(r) + (uint64_t)tag);
}

static s_flow_t *
s_flow(uint64_t s, uint64_t r, int tag)
{
    if (s_flows.n * 2 >= s_flows.slots) {
        size_t slots = s_flows.slots ? 2 * s_flows.slots : 256;
        s_flow_t *t = s_xrealloc(NULL, slots * sizeof *t);
        for (size_t i = 0; i < slots; i++)
            t[i].tag = -1; /* empty */
        for (size_t i = 0; i < s_flows.slots; i++) {
            const s_flow_t *o = &s_flows.f[i];
            if (o->tag < 0)
                continue;
            size_t h = s_flow_hash(o->s, o->r, o->tag) & (slots - 1);
            /* clang-tidy's analyzer loses that the loop above set every
             * slot of t (slots is not a global it trusts across calls) */
            // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
            while (t[h].tag >= 0)
                h = (h + 1) & (slots - 1);
            t[h] = *o;
        }
        free(s_flows.f);
        s_flows.f = t;
        s_flows.slots = slots;
    }
    size_t mask = s_flows.slots - 1;
    size_t h = s_flow_hash(s, r, tag) & mask;
    /* every slot was set when the table was made (above); the analyzer
     * lets the global s_flows change across the hash call */
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
    for (; s_flows.f[h].tag >= 0; h = (h + 1) & mask) {
        s_flow_t *f = &s_flows.f[h];
        if (f->s == s && f->r == r && f->tag == tag)
            return f;
    }
    s_flows.n++;
    s_flows.f[h] = (s_flow_t){.s = s, .r = r, .tag = tag, .send_head = -1,
                              .send_tail = -1, .recv_head = -1,
                              .recv_tail = -1};
    return &s_flows.f[h];
}

/* Pair each SEND with its RECV: the k-th of each for one (sender,
 * receiver, tag). */
static void
s_match(void)
{
    size_t n = s_trace.n;
    long *next = s_xrealloc(NULL, (n ? n : 1) * sizeof *next);
    for (size_t i = 0; i < n; i++) {
        s_rec_t *r = &s_trace.r[i];
        next[i] = -1;
        if (r->kind != K_SEND && r->kind != K_RECV)
            continue;
        bool send = r->kind == K_SEND;
        s_flow_t *f = s_flow(send ? r->a : r->b, send ? r->b : r->a, r->tag);
        long *head = send ? &f->send_head : &f->recv_head;
        long *tail = send ? &f->send_tail : &f->recv_tail;
        if (*tail >= 0)
            next[*tail] = (long)i;
        else
            *head = (long)i;
        *tail = (long)i;
    }
    for (size_t h = 0; h < s_flows.slots; h++) {
        const s_flow_t *f = &s_flows.f[h];
        if (f->tag < 0)
            continue;
        for (long s = f->send_head, r = f->recv_head; s >= 0 && r >= 0;
             s = next[s], r = next[r]) {
            s_trace.r[s].match = r;
            s_trace.r[r].match = s;
        }
    }
    free(next);
    free(s_flows.f);
    memset(&s_flows, 0, sizeof s_flows);
}

/* Two stamps a picture must not take literally:
 *  - a node stamps a SEND once ZeroMQ has taken the message, so its RECV
 *    may be stamped a little earlier: such a SEND is moved to 1 ns before
 *    its RECV (no earlier than the sender's previous record, which came
 *    before the real send);
 *  - a SPAWN is stamped once init has run, after what init sent: it is
 *    moved to 1 ns before the actor's first record.
 * Then the records are sorted again. */
static void
s_causal(void)
{
    size_t n = s_trace.n;
    bool moved = false;
    for (size_t i = 0; i < n; i++) {
        s_rec_t *r = &s_trace.r[i];
        r->orig = (long)i;
        if (r->kind == K_SEND && r->match >= 0 &&
            s_trace.r[r->match].ts <= r->ts && s_trace.r[r->match].ts > 0) {
            r->ts = s_trace.r[r->match].ts - 1;
            moved = true;
        }
    }
    uint64_t *first = s_xrealloc(NULL, (size_t)(s_trace.nactors ? s_trace.nactors
                                                                : 1) *
                                           sizeof *first);
    for (int k = 0; k < s_trace.nactors; k++)
        first[k] = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const s_rec_t *r = &s_trace.r[i];
        assert(r->actor >= 0 && r->actor < s_trace.nactors); /* s_actor's */
        if (r->kind != K_SPAWN && r->ts < first[r->actor])
            first[r->actor] = r->ts;
    }
    for (size_t i = 0; i < n; i++) {
        s_rec_t *r = &s_trace.r[i];
        if (r->kind == K_SPAWN && r->ts >= first[r->actor] &&
            first[r->actor] > 0) {
            r->ts = first[r->actor] - 1;
            first[r->actor] = r->ts; /* a second SPAWN stays where it is */
            moved = true;
        }
    }
    free(first);
    if (!moved)
        return;
    qsort(s_trace.r, n, sizeof *s_trace.r, s_rec_cmp);
    long *pos = s_xrealloc(NULL, (n ? n : 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++)
        pos[s_trace.r[i].orig] = (long)i;
    for (size_t i = 0; i < n; i++)
        if (s_trace.r[i].match >= 0)
            s_trace.r[i].match = pos[s_trace.r[i].match];
    free(pos);
    if (s_trace.r[0].ts < s_trace.t0)
        s_trace.t0 = s_trace.r[0].ts;
}

/* Union-find over restarts: the first actor of a chain. */
static int
s_root(int k)
{
    while (s_trace.actors[k].alias != k) {
        s_trace.actors[k].alias =
            s_trace.actors[s_trace.actors[k].alias].alias;
        k = s_trace.actors[k].alias;
    }
    return k;
}

static int
s_load(const char *path)
{
    int rc = s_read_file(path, 0);
    if (rc == 0)
        rc = s_read_process_files(path);
    if (rc != 0)
        return rc;
    if (s_trace.n > 0)
        qsort(s_trace.r, s_trace.n, sizeof *s_trace.r, s_rec_cmp);
    s_trace.t0 = s_trace.files[0].t0;
    if (s_trace.n > 0) {
        if (s_trace.r[0].ts < s_trace.t0)
            s_trace.t0 = s_trace.r[0].ts;
        s_trace.t_end = s_trace.r[s_trace.n - 1].ts;
    } else {
        s_trace.t_end = s_trace.t0;
    }
    for (size_t i = 0; i < s_trace.n; i++) {
        s_rec_t *r = &s_trace.r[i];
        r->actor = s_actor(r->a);
        r->other = r->b != 0 ? s_actor(r->b) : -1;
        s_actor_t *a = &s_trace.actors[r->actor];
        a->counts[r->kind]++;
        s_trace.kinds[r->kind]++;
        if (r->kind == K_SEND || r->kind == K_RECV) {
            r->tag = s_tag(r->text);
            if (r->kind == K_SEND)
                s_trace.tags[r->tag].sent++;
            else
                s_trace.tags[r->tag].received++;
        }
        if (s_trace.files[r->file].pid != 0)
            a->pid = s_trace.files[r->file].pid;
        if (r->kind == K_SPAWN && !a->spawned) {
            /* "name/behaviour" */
            char *slash = strchr(r->text, '/');
            a->spawned = true;
            if (slash != NULL) {
                snprintf(a->name, sizeof a->name, "%.*s",
                         (int)(slash - r->text), r->text);
                snprintf(a->beh, sizeof a->beh, "%s", slash + 1);
            } else {
                snprintf(a->name, sizeof a->name, "%s", r->text);
            }
        } else if (r->kind == K_EXIT) {
            a->exited = true;
            a->last_reason = r->size;
        } else if (r->kind == K_RESTART && r->other >= 0) {
            int x = s_root(r->actor), y = s_root(r->other);
            if (x != y)
                s_trace.actors[x].alias = y;
        }
    }
    s_match();
    s_causal();
    return 0;
}

static void
s_free(void)
{
    free(s_trace.r);
    free(s_trace.actors);
    free(s_trace.actor_slot);
    free(s_trace.tags);
    free(s_trace.tag_slot);
    memset(&s_trace, 0, sizeof s_trace);
}

/* An actor's label: its name, else its behaviour, else its id; "#hex"
 * added as log lines do when asked for. */
static void
s_label(const s_actor_t *a, char *buf, size_t cap, bool with_id)
{
    const char *n = a->name[0] ? a->name : a->beh;
    if (n[0] && with_id)
        snprintf(buf, cap, "%s#%" PRIx64, n, a->id);
    else if (n[0])
        snprintf(buf, cap, "%s", n);
    else
        snprintf(buf, cap, "#%" PRIx64, a->id);
}

/* ------------------------------------------------------------------ */
/* Summary                                                             */
/* ------------------------------------------------------------------ */

static void
s_summary_json(void)
{
    FILE *f = stdout;
    fputs("{\"files\":[", f);
    for (int i = 0; i < s_trace.nfiles; i++) {
        fprintf(f, "%s{\"path\":", i ? "," : "");
        tt_json_str(f, s_trace.files[i].path);
        fprintf(f, ",\"pid\":%ld,\"records\":%zu}", s_trace.files[i].pid,
                s_trace.files[i].records);
    }
    fprintf(f, "],\"records\":%zu,\"duration_ns\":%" PRIu64 ",\"kinds\":{",
            s_trace.n, s_trace.t_end - s_trace.t0);
    for (int k = 1; k < K_COUNT; k++)
        fprintf(f, "%s\"%s\":%" PRIu64, k > 1 ? "," : "", s_kind_name[k],
                s_trace.kinds[k]);
    fprintf(f, ",\"unknown\":%" PRIu64 "},\"actors\":[", s_trace.unknown);
    for (int i = 0; i < s_trace.nactors; i++) {
        const s_actor_t *a = &s_trace.actors[i];
        fprintf(f, "%s{\"id\":%" PRIu64 ",\"name\":", i ? "," : "", a->id);
        tt_json_str(f, a->name);
        fputs(",\"behaviour\":", f);
        tt_json_str(f, a->beh);
        fprintf(f,
                ",\"pid\":%ld,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
                ",\"spawns\":%" PRIu64 ",\"exits\":%" PRIu64
                ",\"restarts\":%" PRIu64 ",\"downs\":%" PRIu64,
                a->pid, a->counts[K_SEND], a->counts[K_RECV],
                a->counts[K_SPAWN], a->counts[K_EXIT], a->counts[K_RESTART],
                a->counts[K_DOWN]);
        if (a->exited)
            fprintf(f, ",\"exit_reason\":%" PRId32 "}", a->last_reason);
        else
            fputs(",\"exit_reason\":null}", f);
    }
    fputs("],\"tags\":[", f);
    for (int i = 0; i < s_trace.ntags; i++) {
        fprintf(f, "%s{\"tag\":", i ? "," : "");
        tt_json_str(f, s_trace.tags[i].text);
        fprintf(f, ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 "}",
                s_trace.tags[i].sent, s_trace.tags[i].received);
    }
    fputs("]}\n", f);
}

static void
s_summary_text(void)
{
    char dur[32];
    uint64_t ns = s_trace.t_end - s_trace.t0;
    if (ns < 10000000)
        snprintf(dur, sizeof dur, "%.3f ms", (double)ns / 1e6);
    else
        tt_fmt_ms(dur, sizeof dur, (int64_t)(ns / 1000000));
    printf("%s: %zu records over %s\n", s_trace.files[0].path, s_trace.n,
           dur);
    for (int i = 1; i < s_trace.nfiles; i++)
        printf("  + %s (process %ld): %zu records\n", s_trace.files[i].path,
               s_trace.files[i].pid, s_trace.files[i].records);
    if (s_trace.unknown > 0)
        printf("  (%" PRIu64 " records of unknown kinds left out)\n",
               s_trace.unknown);
    putchar('\n');
    for (int k = 1; k < K_COUNT; k++)
        printf("  %-8s %10" PRIu64 "\n", s_kind_name[k], s_trace.kinds[k]);
    putchar('\n');

    tt_table_t t;
    tt_table_init(&t, 9, "lrlrrrrrl",
                  (const char *const[]){"ACTOR", "ID", "BEHAVIOUR", "SENT",
                                        "RECEIVED", "SPAWNS", "RESTARTS",
                                        "DOWNS", "EXIT"});
    for (int i = 0; i < s_trace.nactors; i++) {
        const s_actor_t *a = &s_trace.actors[i];
        char name[S_TEXT + 24], id[24], c[5][24], ex[24] = "-";
        snprintf(name, sizeof name, "%s", a->name[0] ? a->name : "-");
        tt_clean(name);
        char beh[S_TEXT + 1];
        snprintf(beh, sizeof beh, "%s", a->beh[0] ? a->beh : "-");
        tt_clean(beh);
        snprintf(id, sizeof id, "%" PRIu64, a->id);
        const uint64_t v[5] = {a->counts[K_SEND], a->counts[K_RECV],
                               a->counts[K_SPAWN], a->counts[K_RESTART],
                               a->counts[K_DOWN]};
        for (int k = 0; k < 5; k++)
            snprintf(c[k], sizeof c[k], "%" PRIu64, v[k]);
        if (a->exited)
            snprintf(ex, sizeof ex, "%" PRId32, a->last_reason);
        tt_table_add(&t, (const char *const[]){name, id, beh, c[0], c[1],
                                               c[2], c[3], c[4], ex});
    }
    tt_table_print(&t, stdout, 0, "\n");
    tt_table_free(&t);
    putchar('\n');

    tt_table_init(&t, 3, "lrr",
                  (const char *const[]){"TAG", "SENT", "RECEIVED"});
    for (int i = 0; i < s_trace.ntags; i++) {
        char tag[S_TEXT + 1], c[2][24];
        snprintf(tag, sizeof tag, "%s", s_trace.tags[i].text);
        tt_clean(tag);
        snprintf(c[0], sizeof c[0], "%" PRIu64, s_trace.tags[i].sent);
        snprintf(c[1], sizeof c[1], "%" PRIu64, s_trace.tags[i].received);
        tt_table_add(&t, (const char *const[]){tag, c[0], c[1]});
    }
    tt_table_print(&t, stdout, 0, "\n");
    tt_table_free(&t);
}

/* ------------------------------------------------------------------ */
/* Perfetto                                                            */
/* ------------------------------------------------------------------ */

/* Thread ids of the tracks: far above real ones, so that they never
 * meet a process's pid. */
#define S_TID0 2000000000u
#define S_NODE_PID 1

static void
s_us(FILE *f, uint64_t ns)
{
    fprintf(f, "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
}

static void
s_event_head(FILE *f, const char *ph, const s_rec_t *r)
{
    assert(r->actor >= 0 && r->actor < s_trace.nactors);
    const s_actor_t *a = &s_trace.actors[r->actor];
    /* actors is not NULL when nactors > 0 (asserted above); the analyzer
     * lets the global s_trace change across the fprintf calls before */
    fprintf(f, ",\n{\"ph\":\"%s\",\"pid\":%ld,\"tid\":%u,\"ts\":", ph,
            // NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
            a->pid ? a->pid : S_NODE_PID, S_TID0 + (unsigned)r->actor);
    s_us(f, r->ts - s_trace.t0);
}

static int
s_perfetto(const char *out)
{
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (f == NULL) {
        tt_err("%s: %s", out, strerror(errno));
        return TT_EXIT_FAIL;
    }
    /* The processes, then a named track per actor, in order of first
     * appearance. */
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
    fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,"
               "\"tid\":0,\"args\":{\"name\":",
            S_NODE_PID);
    char title[TT_PATH_MAX + 16];
    snprintf(title, sizeof title, "node (%s)", s_trace.files[0].path);
    tt_json_str(f, title);
    fputs("}}", f);
    for (int i = 1; i < s_trace.nfiles; i++) {
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%ld,"
                   "\"tid\":0,\"args\":{\"name\":",
                s_trace.files[i].pid);
        snprintf(title, sizeof title, "process actor %ld",
                 s_trace.files[i].pid);
        tt_json_str(f, title);
        fputs("}}", f);
    }
    for (int i = 0; i < s_trace.nactors; i++) {
        const s_actor_t *a = &s_trace.actors[i];
        char label[S_TEXT + 24];
        s_label(a, label, sizeof label, true);
        long pid = a->pid ? a->pid : S_NODE_PID;
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%ld,"
                   "\"tid\":%u,\"args\":{\"name\":",
                pid, S_TID0 + (unsigned)i);
        tt_json_str(f, label);
        fprintf(f, "}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\","
                   "\"pid\":%ld,\"tid\":%u,\"args\":{\"sort_index\":%d}}",
                pid, S_TID0 + (unsigned)i, i);
    }

    /* SEND and RECV are 'X' slices, not instants: flow arrows bind to
     * slices. Each lasts up to 1 us, never into the next record of its
     * track (slices of one track must nest). */
    uint64_t *dur = s_xrealloc(NULL, (s_trace.n ? s_trace.n : 1) *
                                         sizeof *dur);
    long *last = s_xrealloc(NULL, (size_t)(s_trace.nactors ? s_trace.nactors
                                                           : 1) *
                                      sizeof *last);
    for (int i = 0; i < s_trace.nactors; i++)
        last[i] = -1;
    for (size_t i = 0; i < s_trace.n; i++) {
        const s_rec_t *r = &s_trace.r[i];
        dur[i] = 1000;
        long p = last[r->actor];
        if (p >= 0 && r->ts - s_trace.r[p].ts < dur[p])
            dur[p] = r->ts - s_trace.r[p].ts;
        last[r->actor] = (long)i;
    }
    for (size_t i = 0; i < s_trace.n; i++) {
        const s_rec_t *r = &s_trace.r[i];
        const s_actor_t *o = r->other >= 0 ? &s_trace.actors[r->other] : NULL;
        char other[S_TEXT + 24] = "", name[S_TEXT + 40];
        if (o != NULL)
            s_label(o, other, sizeof other, true);
        switch (r->kind) {
        case K_SEND:
        case K_RECV:
            s_event_head(f, "X", r);
            fputs(",\"dur\":", f);
            /* dur[0..n) was filled above; the analyzer lets s_trace.n
             * change across the library calls of that loop */
            s_us(f, dur[i]); // NOLINT(clang-analyzer-core.CallAndMessage)
            snprintf(name, sizeof name, "%s %s",
                     r->kind == K_SEND ? "send" : "recv", r->text);
            fputs(",\"cat\":\"msg\",\"name\":", f);
            tt_json_str(f, name);
            fprintf(f, ",\"args\":{\"%s\":", r->kind == K_SEND ? "to"
                                                                : "from");
            tt_json_str(f, other);
            fprintf(f, ",\"size\":%" PRIu32 "}}", (uint32_t)r->size);
            if (r->match >= 0) {
                /* The flow's id: the SEND's index, the same at both ends. */
                long id = r->kind == K_SEND ? (long)i : r->match;
                s_event_head(f, r->kind == K_SEND ? "s" : "f", r);
                fprintf(f, ",\"cat\":\"msg\",\"name\":\"msg\",\"id\":%ld%s}",
                        id, r->kind == K_RECV ? ",\"bp\":\"e\"" : "");
            }
            break;
        default:
            s_event_head(f, "i", r);
            fputs(",\"s\":\"t\",\"cat\":\"actor\",\"name\":", f);
            char me[S_TEXT + 24];
            s_label(&s_trace.actors[r->actor], me, sizeof me, true);
            if (r->kind == K_SPAWN)
                snprintf(name, sizeof name, "spawn %s", me);
            else if (r->kind == K_EXIT)
                snprintf(name, sizeof name, "exit %s", r->text);
            else if (r->kind == K_RESTART)
                snprintf(name, sizeof name, "restart");
            else
                snprintf(name, sizeof name, "down %s", other);
            tt_json_str(f, name);
            fputs(",\"args\":{", f);
            if (r->kind == K_SPAWN)
                fputs("\"parent\":", f);
            else if (r->kind == K_RESTART)
                fputs("\"replaces\":", f);
            else if (r->kind == K_DOWN)
                fputs("\"ended\":", f);
            else
                fprintf(f, "\"code\":%" PRId32 ",\"reason\":", r->size);
            if (r->kind == K_EXIT)
                tt_json_str(f, r->text);
            else if (o != NULL)
                tt_json_str(f, other);
            else
                fputs("null", f);
            if (r->kind == K_DOWN) {
                fputs(",\"reason\":", f);
                tt_json_str(f, r->text);
            }
            fputs("}}", f);
        }
    }
    fputs("\n]}\n", f);
    free(dur);
    free(last);
    bool bad = ferror(f);
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0)
        bad = true;
    if (bad) {
        tt_err("%s: write error", out);
        return TT_EXIT_FAIL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* SVG: a message sequence diagram                                     */
/* ------------------------------------------------------------------ */

#define S_LANE_W 150   /* between two lifelines */
#define S_LEFT 80      /* room for times */
#define S_TOP 64       /* title, then the heads */
#define S_HEAD_H 34
#define S_STEP 22      /* between two events of one lifeline */
#define S_MAX_DEFAULT 300

/* A piece of lifeline: the actor under lane was alive from y0 to y1. */
typedef struct {
    int lane;
    int y0, y1;
} s_seg_t;

static int
s_x(int lane)
{
    return S_LEFT + S_LANE_W / 2 + lane * S_LANE_W;
}

/* Text cut to n characters (not bytes), with "..." when it was longer. */
static void
s_xml_cut(FILE *f, const char *s, int n)
{
    int chars = 0;
    size_t i = 0, len = strlen(s);
    for (; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == n)
            break;
    tt_xml_strn(f, s, i);
    if (i < len)
        fputs("...", f);
}

/* The runtime's own helper actors (a process actor's node service) are
 * plumbing, not part of the program's story: left out of the diagram
 * unless all. */
static bool
s_plumbing(const s_actor_t *a)
{
    return strncmp(a->beh, "tr_node_", 8) == 0;
}

static bool
s_shown(const s_rec_t *r, bool all)
{
    if (all)
        return true;
    return !s_plumbing(&s_trace.actors[r->actor]) &&
           (r->other < 0 || !s_plumbing(&s_trace.actors[r->other]));
}

static int
s_svg(const char *out, int max, bool all)
{
    size_t n = s_trace.n;
    /* Which records are drawn: all up to the max-th SEND, and the RECVs of
     * the SENDs drawn. */
    uint64_t sends = 0, drawn_sends = 0;
    size_t cut = n, hidden = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s_shown(&s_trace.r[i], all)) {
            hidden++;
            continue;
        }
        if (s_trace.r[i].kind != K_SEND)
            continue;
        sends++;
        if (cut == n && ++drawn_sends > (uint64_t)max) {
            cut = i;
            drawn_sends = (uint64_t)max;
        }
    }
    bool *drawn = calloc(n ? n : 1, sizeof *drawn);
    int *y = calloc(n ? n : 1, sizeof *y);
    if (drawn == NULL || y == NULL) {
        tt_err("out of memory");
        exit(TT_EXIT_FAIL);
    }
    /* A process actor's end is recorded twice when it traces too: by
     * itself, and by its node as it reaps it (the node cannot know that
     * the process wrote its records). An actor ends once: the first is
     * drawn. */
    bool *ended = calloc((size_t)(s_trace.nactors ? s_trace.nactors : 1),
                         sizeof *ended);
    if (ended == NULL) {
        tt_err("out of memory");
        exit(TT_EXIT_FAIL);
    }
    for (size_t i = 0; i < n; i++) {
        const s_rec_t *r = &s_trace.r[i];
        if (!s_shown(r, all))
            continue;
        if (i < cut)
            drawn[i] = !(r->kind == K_RECV && r->match >= 0 &&
                         (size_t)r->match >= cut);
        else if (r->kind == K_RECV && r->match >= 0 &&
                 (size_t)r->match < cut)
            drawn[i] = true;
        if (drawn[i] && r->kind == K_EXIT) {
            drawn[i] = !ended[r->actor];
            ended[r->actor] = true;
        }
    }
    free(ended);

    /* Lanes: one per chain of restarts, in order of first appearance. */
    int nlanes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!drawn[i])
            continue;
        int ks[2] = {s_trace.r[i].actor, s_trace.r[i].other};
        for (int j = 0; j < 2; j++) {
            if (ks[j] < 0)
                continue;
            s_actor_t *root = &s_trace.actors[s_root(ks[j])];
            if (root->lane < 0)
                root->lane = nlanes++;
            s_trace.actors[ks[j]].lane = root->lane;
        }
    }
    int *last_y = calloc((size_t)(nlanes ? nlanes : 1), sizeof *last_y);
    bool *alive = calloc((size_t)(nlanes ? nlanes : 1), sizeof *alive);
    int *seg_of = calloc((size_t)(nlanes ? nlanes : 1), sizeof *seg_of);
    s_seg_t *segs = NULL;
    int nsegs = 0;
    if (last_y == NULL || alive == NULL || seg_of == NULL) {
        tt_err("out of memory");
        exit(TT_EXIT_FAIL);
    }
    int y0 = S_TOP + S_HEAD_H + 10;
    for (int l = 0; l < nlanes; l++)
        last_y[l] = y0;

    /* Lay out: each event one step below the last of its lifeline, and
     * never above the one before it in time (so the page reads in time
     * order; events of other lifelines may share its row); a RECV below
     * its SEND; a spawn below the last event of the parent. A lifeline
     * that has no open piece gets one where its first event is. */
    int bottom = y0, prev = y0;
    for (size_t i = 0; i < n; i++) {
        if (!drawn[i])
            continue;
        const s_rec_t *r = &s_trace.r[i];
        int l = s_trace.actors[r->actor].lane;
        int ol = r->other >= 0 ? s_trace.actors[r->other].lane : -1;
        int v = last_y[l] + S_STEP;
        if (v < prev)
            v = prev;
        if (r->kind == K_RECV && r->match >= 0 && (size_t)r->match < i &&
            y[r->match] + S_STEP > v)
            v = y[r->match] + S_STEP;
        if ((r->kind == K_SPAWN || r->kind == K_DOWN) && ol >= 0 &&
            ol != l && last_y[ol] + S_STEP > v)
            v = last_y[ol] + S_STEP;
        y[i] = v;
        prev = v;
        last_y[l] = v;
        if (r->kind == K_SPAWN && ol >= 0 && ol != l)
            last_y[ol] = v;
        if (!alive[l] && r->kind != K_EXIT) {
            segs = s_xrealloc(segs, (size_t)(nsegs + 1) * sizeof *segs);
            segs[nsegs] = (s_seg_t){.lane = l,
                                    .y0 = r->kind == K_SPAWN ||
                                                  r->kind == K_RESTART
                                              ? v
                                              : y0,
                                    .y1 = v};
            seg_of[l] = nsegs++;
            alive[l] = true;
        }
        if (alive[l])
            segs[seg_of[l]].y1 = v;
        if (r->kind == K_EXIT)
            alive[l] = false;
        if (v > bottom)
            bottom = v;
    }
    /* Lifelines still alive at the end run to the bottom. */
    for (int s = 0; s < nsegs; s++)
        if (alive[segs[s].lane] && seg_of[segs[s].lane] == s)
            segs[s].y1 = bottom + S_STEP;
    /* An actor seen only as the other end of something, never doing
     * anything itself, still gets a lifeline. */
    for (int l = 0; l < nlanes; l++) {
        bool has = false;
        for (int s = 0; s < nsegs && !has; s++)
            has = segs[s].lane == l;
        if (!has) {
            segs = s_xrealloc(segs, (size_t)(nsegs + 1) * sizeof *segs);
            segs[nsegs++] = (s_seg_t){.lane = l, .y0 = y0,
                                      .y1 = bottom + S_STEP};
        }
    }

    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (f == NULL) {
        tt_err("%s: %s", out, strerror(errno));
        free(drawn), free(y), free(last_y), free(alive), free(seg_of);
        free(segs);
        return TT_EXIT_FAIL;
    }
    /* The line under the title, first: the page is as wide as it too
     * (11 px sans-serif: under 6.5 px a character). */
    char dur[32], note[256];
    uint64_t ns = s_trace.t_end - s_trace.t0;
    snprintf(dur, sizeof dur, "%.3f ms", (double)ns / 1e6);
    int len = snprintf(note, sizeof note, "%" PRIu64 " messages between %d "
                       "actors over %s", sends, nlanes, dur);
    if (drawn_sends < sends && len < (int)sizeof note)
        len += snprintf(note + len, sizeof note - (size_t)len,
                        "; the first %" PRIu64 " are drawn (--max)",
                        drawn_sends);
    if (hidden > 0 && len < (int)sizeof note)
        len += snprintf(note + len, sizeof note - (size_t)len,
                        "; %zu records of the runtime's own actors left out "
                        "(--all)",
                        hidden);
    int width = S_LEFT + nlanes * S_LANE_W + 20;
    if (width < 10 + len * 13 / 2 + 20)
        width = 10 + len * 13 / 2 + 20;
    if (width < 480)
        width = 480;
    int height = bottom + 2 * S_STEP + 40;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "font-size=\"11\">\n",
            width, height, width, height);
    fputs("<defs>\n"
          "<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
          "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
          "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker>\n"
          "<marker id=\"arrow-grey\" viewBox=\"0 0 10 10\" refX=\"10\" "
          "refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
          "orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" "
          "fill=\"#999\"/></marker>\n"
          "<style>\n"
          ".msg{stroke:#333;stroke-width:1.2;fill:none}\n"
          ".lost{stroke:#c33;stroke-width:1.2;fill:none;"
          "stroke-dasharray:4 3}\n"
          ".sys{stroke:#999;stroke-width:1;fill:none;stroke-dasharray:3 3}\n"
          ".life{stroke:#888;stroke-width:1.5;stroke-dasharray:6 4}\n"
          ".head{fill:#eef3fb;stroke:#4a6fa5}\n"
          ".tag{fill:#222}\n"
          ".note{fill:#666}\n"
          ".time{fill:#999;font-size:9px}\n"
          "</style>\n"
          "</defs>\n",
          f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width,
            height);
    /* Title. */
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\" "
               "font-weight=\"bold\">");
    tt_xml_str(f, s_trace.files[0].path);
    fprintf(f, "</text>\n<text x=\"10\" y=\"38\" class=\"note\">%s"
               "</text>\n",
            note);

    /* Lifelines: a head with the name (and behaviour, id), then pieces. */
    for (int l = 0; l < nlanes; l++) {
        const s_actor_t *a = NULL;
        for (int k = 0; k < s_trace.nactors && a == NULL; k++)
            if (s_trace.actors[k].lane == l && s_root(k) == k)
                a = &s_trace.actors[k];
        if (a == NULL)
            continue;
        int x = s_x(l);
        char label[S_TEXT + 24], sub[S_TEXT + 40];
        s_label(a, label, sizeof label, false);
        char pid[24] = "";
        if (a->pid != 0)
            snprintf(pid, sizeof pid, ", pid %ld", a->pid);
        if (a->name[0] && a->beh[0])
            snprintf(sub, sizeof sub, "%s #%" PRIx64 "%s", a->beh, a->id, pid);
        else if (a->spawned)
            snprintf(sub, sizeof sub, "#%" PRIx64 "%s", a->id, pid);
        else /* a thread that is no actor (main calling tr_tell, say) */
            snprintf(sub, sizeof sub, "not an actor here");
        fprintf(f, "<g class=\"lifeline\" id=\"lane-%d\">\n", l);
        fprintf(f, "<rect class=\"head\" x=\"%d\" y=\"%d\" width=\"%d\" "
                   "height=\"%d\" rx=\"4\"/>\n",
                x - S_LANE_W / 2 + 8, S_TOP, S_LANE_W - 16, S_HEAD_H);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                   "font-weight=\"bold\">",
                x, S_TOP + 14);
        s_xml_cut(f, label, 20);
        fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                   "class=\"note\" font-size=\"9\">",
                x, S_TOP + 27);
        s_xml_cut(f, sub, 26);
        fputs("</text>\n", f);
        for (int s = 0; s < nsegs; s++)
            if (segs[s].lane == l)
                fprintf(f, "<line class=\"life\" x1=\"%d\" y1=\"%d\" "
                           "x2=\"%d\" y2=\"%d\"/>\n",
                        x, segs[s].y0, x, segs[s].y1);
        fputs("</g>\n", f);
    }

    /* Events. */
    int last_time_y = -1000;
    for (size_t i = 0; i < n; i++) {
        if (!drawn[i])
            continue;
        const s_rec_t *r = &s_trace.r[i];
        int l = s_trace.actors[r->actor].lane;
        int ol = r->other >= 0 ? s_trace.actors[r->other].lane : -1;
        int x = s_x(l), v = y[i];
        if (r->kind == K_SEND && v - last_time_y >= 3 * S_STEP) {
            fprintf(f, "<text class=\"time\" x=\"4\" y=\"%d\">+%.3f ms"
                       "</text>\n",
                    v + 3, (double)(r->ts - s_trace.t0) / 1e6);
            last_time_y = v;
        }
        switch (r->kind) {
        case K_SEND: {
            bool matched = r->match >= 0 && drawn[r->match];
            int ox = ol >= 0 ? s_x(ol) : x + S_LANE_W / 2;
            int oy = matched ? y[r->match] : v + S_STEP / 2;
            fprintf(f, "<g class=\"message\">");
            if (ol == l) { /* to itself: a loop out to the right */
                fprintf(f, "<path class=\"%s\" d=\"M%d,%d h24 V%d h-24\" "
                           "marker-end=\"url(#arrow)\"/>",
                        matched ? "msg" : "lost", x, v,
                        oy > v ? oy : v + S_STEP / 2);
                fprintf(f, "<text class=\"tag\" x=\"%d\" y=\"%d\">", x + 28,
                        v + 8);
            } else {
                fprintf(f, "<line class=\"%s\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                           "y2=\"%d\" marker-end=\"url(#arrow)\"/>",
                        matched ? "msg" : "lost", x, v, ox, oy);
                fprintf(f, "<text class=\"tag\" x=\"%d\" y=\"%d\" "
                           "text-anchor=\"middle\">",
                        (x + ox) / 2, (v + oy) / 2 - 4);
            }
            s_xml_cut(f, r->text, 24);
            if (!matched)
                fputs(" (no RECV)", f);
            fputs("</text></g>\n", f);
            break;
        }
        case K_RECV:
            if (r->match >= 0 && drawn[r->match])
                break; /* drawn with its SEND */
            /* A message from outside the trace: a dashed stub. */
            fprintf(f, "<g class=\"message\"><line class=\"lost\" x1=\"%d\" "
                       "y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                       "marker-end=\"url(#arrow)\"/>",
                    ol >= 0 && ol != l ? s_x(ol) : x - 40, v - S_STEP / 2, x,
                    v);
            fprintf(f, "<text class=\"tag\" x=\"%d\" y=\"%d\" "
                       "text-anchor=\"end\">",
                    x - 4, v - 4);
            s_xml_cut(f, r->text, 24);
            fputs("</text></g>\n", f);
            break;
        case K_SPAWN:
            if (ol >= 0 && ol != l) {
                fprintf(f, "<line class=\"sys\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                           "y2=\"%d\" marker-end=\"url(#arrow-grey)\"/>",
                        s_x(ol), v, x, v);
                fprintf(f, "<text class=\"note\" x=\"%d\" y=\"%d\" "
                           "text-anchor=\"middle\">spawn</text>\n",
                        (x + s_x(ol)) / 2, v - 3);
            }
            fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"3\" fill=\"#4a6fa5\"/>"
                       "\n",
                    x, v);
            break;
        case K_EXIT:
            if (r->size < 0 && r->size != S_REASON_SHUTDOWN) {
                fprintf(f, "<g class=\"crash\"><path d=\"M%d,%d l12,12 "
                           "M%d,%d l-12,12\" stroke=\"#c00\" "
                           "stroke-width=\"2.5\"/>",
                        x - 6, v - 6, x + 6, v - 6);
                fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#c00\">", x + 10,
                        v + 4);
                s_xml_cut(f, r->text, 28);
                fputs("</text></g>\n", f);
            } else {
                fprintf(f, "<line class=\"end\" x1=\"%d\" y1=\"%d\" "
                           "x2=\"%d\" y2=\"%d\" stroke=\"#555\" "
                           "stroke-width=\"2\"/>\n",
                        x - 8, v, x + 8, v);
            }
            break;
        case K_RESTART:
            fprintf(f, "<g class=\"restart\"><circle cx=\"%d\" cy=\"%d\" "
                       "r=\"7\" fill=\"#fff4e0\" stroke=\"#e08a00\" "
                       "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\" "
                       "fill=\"#e08a00\">restarted as #%" PRIx64
                       "</text></g>\n",
                    x, v, x + 10, v + 4, r->a);
            break;
        case K_DOWN:
            if (ol >= 0 && ol != l) {
                fprintf(f, "<line class=\"sys\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                           "y2=\"%d\" marker-end=\"url(#arrow-grey)\"/>",
                        s_x(ol), v, x, v);
                fprintf(f, "<text class=\"note\" x=\"%d\" y=\"%d\" "
                           "text-anchor=\"middle\">DOWN ",
                        (x + s_x(ol)) / 2, v - 3);
                s_xml_cut(f, r->text, 20);
                fputs("</text>\n", f);
            }
            break;
        }
    }
    if (drawn_sends < sends) {
        fprintf(f, "<text x=\"10\" y=\"%d\" class=\"note\">... %" PRIu64
                   " more messages not drawn: troupe trace --max N draws "
                   "more</text>\n",
                bottom + 2 * S_STEP + 10, sends - drawn_sends);
    }
    fputs("</svg>\n", f);
    free(drawn), free(y), free(last_y), free(alive), free(seg_of);
    free(segs);
    bool bad = ferror(f);
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0)
        bad = true;
    if (bad) {
        tt_err("%s: write error", out);
        return TT_EXIT_FAIL;
    }
    if (drawn_sends < sends && f != stdout)
        tt_err("note: %s shows the first %" PRIu64 " of %" PRIu64
               " messages (--max N for more)",
               out, drawn_sends, sends);
    return 0;
}

int
tt_cmd_trace(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "json,perfetto,svg,max,all", 1, 1, &a, &rc))
        return rc;
    if (a.json && (a.perfetto || a.svg)) {
        tt_err("--json is for the summary; --perfetto and --svg write "
               "files");
        return TT_EXIT_USAGE;
    }
    rc = s_load(a.pos[0]);
    if (rc == 0 && a.perfetto)
        rc = s_perfetto(a.perfetto);
    if (rc == 0 && a.svg)
        rc = s_svg(a.svg, a.max > 0 ? a.max : S_MAX_DEFAULT, a.all);
    if (rc == 0 && !a.perfetto && !a.svg) {
        if (a.json)
            s_summary_json();
        else
            s_summary_text();
    }
    s_free();
    return rc;
}
