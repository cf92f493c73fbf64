/* runtime/capsule.c - crash capsules, quarantine and replay (see
 * runtime/capsule.h and docs/control.md).
 *
 * A capsule is one msgpack map in a file, written by a small writer of
 * our own that needs no allocation and makes only async-signal-safe
 * calls: a process actor writes its capsule from the handler of the
 * signal that kills it (on an alternate stack, in case the stack is what
 * overflowed), then lets the signal end it as before, so its parent still
 * sees the real cause.
 *
 * Quarantine counts crashes per kept name: the record of the actor that
 * failed holds the hash of the message (FNV-1a of its tag and payload) and
 * how many times in a row that message crashed the name; the next actor
 * under the name inherits both (registry.c) and, past the limit, drops
 * that message instead of handling it. A process actor's crash is told
 * to its parent in a note file (<rundir>/<id>.crash) that the reaper reads,
 * and the parent tells the next child what to drop in its environment
 * (TROUPE_CRASHES).
 */
#include "runtime/capsule.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/actor.h"
#include "runtime/node.h"
#include "runtime/process.h"
#include "transport/log.h"

#define S_QUARANTINE_DEFAULT 3
#define S_BACKTRACE 48
#define S_PATH 512

/* ------------------------------------------------------------------ */
/* A msgpack writer into a file: a buffer on the stack, no allocation,  */
/* only write(2).                                                       */

typedef struct {
    int fd;
    bool failed;
    size_t n;
    uint8_t buf[2048];
} s_w_t;

static void
s_w_flush(s_w_t *w)
{
    const uint8_t *p = w->buf;
    size_t left = w->n;
    while (left > 0 && !w->failed) {
        ssize_t k = write(w->fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->failed = true;
            break;
        }
        p += k;
        left -= (size_t)k;
    }
    w->n = 0;
}

static void
s_w_bytes(s_w_t *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len > sizeof w->buf) { /* large: straight to the file */
        s_w_flush(w);
        while (len > 0 && !w->failed) {
            ssize_t k = write(w->fd, p, len);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                w->failed = true;
                break;
            }
            p += k;
            len -= (size_t)k;
        }
        return;
    }
    if (w->n + len > sizeof w->buf)
        s_w_flush(w);
    memcpy(w->buf + w->n, p, len);
    w->n += len;
}

static void
s_w_be(s_w_t *w, uint8_t head, uint64_t v, int bytes)
{
    uint8_t b[9];
    b[0] = head;
    for (int i = 0; i < bytes; i++)
        b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    s_w_bytes(w, b, (size_t)bytes + 1);
}

static void
s_w_map(s_w_t *w, uint32_t n)
{
    if (n < 16)
        s_w_be(w, (uint8_t)(0x80 | n), 0, 0);
    else
        s_w_be(w, 0xdf, n, 4);
}

static void
s_w_array(s_w_t *w, uint32_t n)
{
    if (n < 16)
        s_w_be(w, (uint8_t)(0x90 | n), 0, 0);
    else
        s_w_be(w, 0xdd, n, 4);
}

static void
s_w_strn(s_w_t *w, const char *s, size_t len)
{
    if (len < 32)
        s_w_be(w, (uint8_t)(0xa0 | len), 0, 0);
    else
        s_w_be(w, 0xdb, len, 4);
    s_w_bytes(w, s, len);
}

static void
s_w_str(s_w_t *w, const char *s)
{
    s_w_strn(w, s, strlen(s));
}

static void
s_w_int(s_w_t *w, int64_t v)
{
    if (v >= 0 && v < 128)
        s_w_be(w, (uint8_t)v, 0, 0);
    else
        s_w_be(w, 0xd3, (uint64_t)v, 8);
}

static void
s_w_bool(s_w_t *w, bool v)
{
    s_w_be(w, v ? 0xc3 : 0xc2, 0, 0);
}

static void
s_w_bin(s_w_t *w, const void *data, size_t len)
{
    s_w_be(w, 0xc6, len, 4);
    s_w_bytes(w, data, len);
}

static void
s_w_kstr(s_w_t *w, const char *k, const char *v)
{
    s_w_str(w, k);
    s_w_str(w, v);
}

static void
s_w_kint(s_w_t *w, const char *k, int64_t v)
{
    s_w_str(w, k);
    s_w_int(w, v);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* FNV-1a over the tag (with its NUL) and the payload: a message's
 * identity for quarantine, whoever sent it. Never 0 (0 means none). */
static uint64_t
s_hash(const tr_msg_t *msg)
{
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = msg->buf + TR__ENV_HDR;
    size_t len = msg->len > TR__ENV_HDR ? msg->len - TR__ENV_HDR : 0;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

/* Async-signal-safe decimal and hex. */
static char *
s_utoa(char *p, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v > 0);
    while (n > 0)
        *p++ = tmp[--n];
    *p = '\0';
    return p;
}

static char *
s_cat(char *p, const char *end, const char *s)
{
    while (*s && p < end - 1)
        *p++ = *s++;
    *p = '\0';
    return p;
}

/* The directory capsules go to: TROUPE_CAPSULES, or <rundir>/capsules;
 * made when the first capsule is written (by mkdir, async-signal-safe). */
static bool
s_dir(tr_node_t *node, char *buf, size_t cap)
{
    const char *env = getenv("TROUPE_CAPSULES");
    if (env != NULL && env[0] != '\0') {
        snprintf(buf, cap, "%s", env);
    } else {
        const char *rd = NULL;
        if (node->child)
            rd = node->rundir;
        else if (tr__node_rundir(node, &rd) != 0)
            return false;
        if (rd == NULL || rd[0] == '\0')
            return false;
        snprintf(buf, cap, "%s/capsules", rd);
    }
    return true;
}

/* <dir>/<name or behaviour>-<hex id>[-q<n>].capsule: the label's odd
 * characters become '_'. */
static void
s_path(char *buf, size_t cap, const char *dir, const tr__rec_t *rec,
       const char *beh, unsigned quarantine)
{
    char *end = buf + cap, num[24];
    char *p = s_cat(buf, end, dir);
    p = s_cat(p, end, "/");
    for (const char *s = rec->name[0] ? rec->name : beh; *s && p < end - 1;
         s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok)
            c = '_';
        *p++ = c;
    }
    *p = '\0';
    p = s_cat(p, end, "-");
    s_utoa(num, rec->id, 16);
    p = s_cat(p, end, num);
    if (quarantine > 0) {
        p = s_cat(p, end, "-q");
        s_utoa(num, quarantine, 10);
        p = s_cat(p, end, num);
    }
    s_cat(p, end, ".capsule");
}

static int
s_limit(tr_node_t *node)
{
    int n = node->opts.quarantine_after;
    if (n == 0) {
        const char *env = getenv("TROUPE_QUARANTINE");
        n = S_QUARANTINE_DEFAULT;
        if (env != NULL && env[0] != '\0') {
            char *end;
            long v = strtol(env, &end, 10);
            if (strcmp(env, "off") == 0 || (*end == '\0' && v <= 0))
                n = -1;
            else if (*end == '\0' && v < INT_MAX)
                n = (int)v;
            else
                TR__LOG(TR_LOG_WARN, "runtime", "TROUPE_QUARANTINE=%s: a "
                        "count or \"off\"; 3 it is", env);
        }
    }
    return n < 0 ? INT_MAX : n;
}

/* ------------------------------------------------------------------ */
/* Writing a capsule                                                   */

typedef struct {
    const char *path;
    tr_node_t *node;
    tr__rec_t *rec;
    const char *behaviour;
    bool process;
    const tr_msg_t *msg;
    const tr__capsule_st_t *cap; /* the ring */
    int reason, sig, restarts, in_a_row;
    bool quarantined;
    uint64_t hash;
    void *const *bt; /* backtrace addresses (signals), or NULL */
    int nbt;
} s_cap_t;

/* Each line of a backtrace_symbols_fd text as a string. */
static void
s_w_backtrace(s_w_t *w, void *const *bt, int nbt)
{
    if (bt == NULL || nbt <= 0) {
        s_w_array(w, 0);
        return;
    }
    /* backtrace_symbols_fd writes without allocating: into a memfd, read
     * back; on failure the raw addresses stand. */
    static char text[16384];
    ssize_t len = -1;
    int fd = memfd_create("tr-backtrace", MFD_CLOEXEC);
    if (fd >= 0) {
        backtrace_symbols_fd(bt, nbt, fd);
        if (lseek(fd, 0, SEEK_SET) == 0)
            len = read(fd, text, sizeof text);
        close(fd);
    }
    if (len <= 0) {
        s_w_array(w, (uint32_t)nbt);
        for (int i = 0; i < nbt; i++) {
            char num[24] = "0x";
            s_utoa(num + 2, (uint64_t)(uintptr_t)bt[i], 16);
            s_w_str(w, num);
        }
        return;
    }
    uint32_t lines = 0;
    for (ssize_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    s_w_array(w, lines);
    ssize_t start = 0;
    for (ssize_t i = 0; i < len && lines > 0; i++)
        if (text[i] == '\n') {
            s_w_strn(w, text + start, (size_t)(i - start));
            start = i + 1;
            lines--;
        }
}

static void
s_w_message(s_w_t *w, const tr_msg_t *m)
{
    if (m == NULL) {
        s_w_be(w, 0xc0, 0, 0); /* nil */
        return;
    }
    size_t plen = 0;
    const void *payload = tr_msg_payload(m, &plen);
    bool received = m->kind == TR__MSG_RECEIVED;
    s_w_map(w, received ? 6 : 5);
    s_w_kstr(w, "tag", tr_msg_tag(m));
    s_w_kint(w, "sender", (int64_t)m->env.sender);
    s_w_str(w, "request");
    s_w_bool(w, (m->env.flags & TR__F_REQUEST) != 0);
    s_w_kint(w, "corr", (int64_t)m->env.corr);
    s_w_str(w, "payload");
    s_w_bin(w, payload, plen);
    if (received) { /* the frame as it came, header and all */
        s_w_str(w, "frame");
        s_w_bin(w, m->buf, m->len);
    }
}

/* Write the capsule; async-signal-safe (the process actor's signal path
 * uses it). */
static bool
s_write(const s_cap_t *c)
{
    /* The directory: the path up to its last '/'. */
    char dir[S_PATH];
    size_t cut = 0;
    for (size_t i = 0; i < sizeof dir - 1 && c->path[i] != '\0'; i++)
        if (c->path[i] == '/')
            cut = i;
    memcpy(dir, c->path, cut);
    dir[cut] = '\0';
    if (cut > 0)
        (void)mkdir(dir, 0700); /* EEXIST is fine; open says the rest */
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    s_w_t w = {.fd = fd};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s_w_map(&w, 19);
    s_w_kint(&w, "troupe_capsule", 1);
    s_w_kstr(&w, "node", c->node->name);
    s_w_kint(&w, "pid", getpid());
    s_w_kint(&w, "time_ms",
             (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    s_w_kint(&w, "actor", (int64_t)c->rec->id);
    s_w_kstr(&w, "name", c->rec->name);
    s_w_kstr(&w, "behaviour", c->behaviour);
    s_w_kstr(&w, "mode", c->process ? "process" : "thread");
    s_w_kint(&w, "reason", c->reason);
    s_w_kstr(&w, "reason_text", tr_strerror(c->reason));
    s_w_kint(&w, "signal", c->sig);
    s_w_kint(&w, "restarts", c->restarts);
    s_w_kint(&w, "crashes_in_a_row", c->in_a_row);
    s_w_str(&w, "quarantined");
    s_w_bool(&w, c->quarantined);
    char num[24];
    s_utoa(num, c->hash, 16);
    s_w_kstr(&w, "hash", num);
    s_w_str(&w, "message");
    s_w_message(&w, c->msg);
    /* The ring, oldest first, without the message itself. */
    const tr__capsule_st_t *cap = c->cap;
    unsigned total = cap->nseen;
    /* The newest noted is the message itself when it is being handled. */
    unsigned self = cap->cur != NULL && total > 0 ? 1 : 0;
    unsigned have = total - self;
    if (have > TR__SEEN - 1)
        have = TR__SEEN - 1;
    s_w_str(&w, "recent");
    s_w_array(&w, have);
    for (unsigned i = 0; i < have; i++) {
        unsigned k = (total - self - have + i) % TR__SEEN;
        const tr__seen_t *s = &cap->seen[k];
        s_w_map(&w, 3);
        s_w_kstr(&w, "tag", s->tag);
        s_w_kint(&w, "sender", (int64_t)s->sender);
        s_w_kint(&w, "size", s->size);
    }
    s_w_str(&w, "seen");
    s_w_int(&w, total);
    s_w_str(&w, "backtrace");
    s_w_backtrace(&w, c->bt, c->nbt);
    s_w_flush(&w);
    close(fd);
    return !w.failed;
}

/* ------------------------------------------------------------------ */
/* Process actors: the signal path                                     */

static struct {
    tr_actor_t *a;
    char path[S_PATH];  /* its capsule */
    char note[S_PATH];  /* <rundir>/<id>.crash, for the parent */
    int restarts;
    uint64_t poison_hash; /* what crashed the name before, and how often */
    int streak;
    bool ready;
} s_child;

static void
s_note(uint64_t h)
{
    int fd = open(s_child.note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
    if (fd >= 0) {
        ssize_t k = write(fd, &h, sizeof h);
        (void)k;
        close(fd);
    }
}

static void
s_on_signal(int sig)
{
    int saved = errno;
    tr_actor_t *a = s_child.a;
    if (s_child.ready && a != NULL) {
        s_child.ready = false; /* once */
        void *bt[S_BACKTRACE];
        int nbt = backtrace(bt, S_BACKTRACE);
        const tr_msg_t *msg = a->cap.cur;
        uint64_t h = msg ? s_hash(msg) : 0;
        if (h != 0)
            s_note(h);
        s_cap_t c = {.path = s_child.path, .node = a->node, .rec = a->rec,
                     .behaviour = a->beh->name, .process = true, .msg = msg,
                     .cap = &a->cap, .reason = TR_ECRASHED, .sig = sig,
                     .restarts = s_child.restarts,
                     .in_a_row = h && h == s_child.poison_hash
                                     ? s_child.streak + 1
                                     : 1,
                     .hash = h, .bt = bt, .nbt = nbt};
        s_write(&c);
    }
    /* Die of it as before: the parent reads the signal. */
    signal(sig, SIG_DFL);
    errno = saved;
    raise(sig);
}

static void
s_child_start(tr_actor_t *a)
{
    s_child.a = a;
    const char *env = getenv("TROUPE_CRASHES");
    unsigned long long h = 0, poison = 0;
    int restarts = 0, streak = 0, at = 0;
    if (env != NULL && sscanf(env, "%d %llx %d %llx %n", &restarts, &h,
                              &streak, &poison, &at) == 4) {
        /* the rest is the parent node's name: the capsule says it */
        if (at > 0 && env[at] != '\0')
            snprintf(a->node->name, sizeof a->node->name, "%s", env + at);
        s_child.restarts = restarts;
        s_child.poison_hash = h;
        s_child.streak = streak;
        a->cap.poison = poison; /* the parent's limit decides */
    }
    char dir[S_PATH - 64];
    if (!s_dir(a->node, dir, sizeof dir))
        return;
    s_path(s_child.path, sizeof s_child.path, dir, a->rec, a->beh->name, 0);
    snprintf(s_child.note, sizeof s_child.note, "%s/%llx.crash",
             a->node->rundir, (unsigned long long)a->rec->id);
    /* backtrace loads libgcc on its first call: not in a signal handler. */
    void *bt[4];
    (void)backtrace(bt, 4);
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    s_child.ready = true;
}

/* ------------------------------------------------------------------ */
/* The actor's side                                                    */

void
tr__capsule_start(tr_actor_t *a)
{
    if (a->process_child) {
        s_child_start(a);
        return;
    }
    tr__rec_t *rec = a->rec;
    pthread_mutex_lock(&rec->mu);
    uint64_t h = rec->crash_hash;
    int streak = rec->crash_streak;
    pthread_mutex_unlock(&rec->mu);
    if (h != 0 && streak >= s_limit(a->node))
        a->cap.poison = h;
}

/* A replay writes no capsule: its own could overwrite the one it reads. */
static bool s_replaying;

/* Write a capsule for a (not from a signal). */
static void
s_capsule(tr_actor_t *a, const tr_msg_t *msg, int reason, uint64_t h,
          int in_a_row, unsigned quarantine)
{
    char dir[S_PATH - 64], path[S_PATH];
    if (s_replaying)
        return;
    if (!s_dir(a->node, dir, sizeof dir))
        return;
    s_path(path, sizeof path, dir, a->rec, a->beh->name, quarantine);
    int restarts = a->process_child ? s_child.restarts : a->rec->restarts;
    s_cap_t c = {.path = path, .node = a->node, .rec = a->rec,
                 .behaviour = a->beh->name, .process = a->process_child,
                 .msg = msg, .cap = &a->cap, .reason = reason,
                 .restarts = restarts, .in_a_row = in_a_row,
                 .quarantined = quarantine > 0, .hash = h};
    if (s_write(&c))
        TR__LOG(TR_LOG_WARN, "runtime", "%s '%s': capsule %s (troupe "
                "capsule prints it)", quarantine ? "quarantined" : "crashed on",
                msg ? tr_msg_tag(msg) : "", path);
    else
        TR__LOG(TR_LOG_WARN, "runtime", "cannot write the capsule %s: %s",
                path, strerror(errno));
}

void
tr__capsule_crash(tr_actor_t *a, const tr_msg_t *msg, int reason)
{
    uint64_t h = s_hash(msg);
    int in_a_row;
    if (a->process_child) {
        s_child.ready = false; /* a signal while ending is not this */
        in_a_row = h == s_child.poison_hash ? s_child.streak + 1 : 1;
        s_note(h);
    } else {
        tr__rec_t *rec = a->rec;
        pthread_mutex_lock(&rec->mu);
        if (rec->crash_hash == h) {
            rec->crash_streak++;
        } else {
            rec->crash_hash = h;
            rec->crash_streak = 1;
        }
        in_a_row = rec->crash_streak;
        pthread_mutex_unlock(&rec->mu);
    }
    s_capsule(a, msg, reason, h, in_a_row, 0);
}

bool
tr__capsule_quarantine(tr_actor_t *a, const tr_msg_t *msg)
{
    uint64_t h = s_hash(msg);
    if (h != a->cap.poison)
        return false;
    static _Atomic unsigned s_seq;
    unsigned n = atomic_fetch_add(&s_seq, 1) + 1;
    TR__STAT_INC(a->node, dead_letters);
    int in_a_row = a->process_child ? s_child.streak : a->rec->crash_streak;
    TR__LOG(TR_LOG_WARN, "runtime", "message '%s' from %llx crashed this "
            "actor's name %d times in a row: quarantined, not handled",
            tr_msg_tag(msg), (unsigned long long)msg->env.sender, in_a_row);
    s_capsule(a, msg, TR_EQUARANTINED, h, in_a_row, n);
    if (tr_msg_is_request(msg))
        (void)tr_reply_error(a, msg, TR_EQUARANTINED);
    return true;
}

/* ------------------------------------------------------------------ */
/* The parent's side of a process actor                                */

void
tr__capsule_child_ended(tr_node_t *node, tr__rec_t *rec)
{
    char note[S_PATH];
    snprintf(note, sizeof note, "%s/%llx.crash", node->rundir,
             (unsigned long long)rec->id);
    int fd = open(note, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    uint64_t h = 0;
    bool ok = read(fd, &h, sizeof h) == (ssize_t)sizeof h;
    close(fd);
    unlink(note);
    if (!ok || h == 0)
        return;
    pthread_mutex_lock(&rec->mu);
    if (rec->crash_hash == h) {
        rec->crash_streak++;
    } else {
        rec->crash_hash = h;
        rec->crash_streak = 1;
    }
    pthread_mutex_unlock(&rec->mu);
}

void
tr__capsule_child_env(tr_node_t *node, tr__rec_t *rec, char *buf, size_t cap)
{
    int limit = s_limit(node);
    pthread_mutex_lock(&rec->mu);
    uint64_t h = rec->crash_hash;
    int streak = rec->crash_streak;
    pthread_mutex_unlock(&rec->mu);
    snprintf(buf, cap, "TROUPE_CRASHES=%d %llx %d %llx %s", rec->restarts,
             (unsigned long long)h, streak,
             (unsigned long long)(h != 0 && streak >= limit ? h : 0),
             node->name);
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */

/* What replay needs of a capsule. */
typedef struct {
    char behaviour[TR_NAME_MAX + 1], name[TR_NAME_MAX + 1];
    char tag[TR_TAG_MAX + 1];
    const void *payload;
    size_t plen;
    bool request, has_msg;
} s_replay_t;

static int
s_key_is(const char *k, size_t kl, const char *want)
{
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

static int
s_read_message(tr_reader_t *r, s_replay_t *x)
{
    uint32_t n;
    int rc;
    if (tr_read_nil(r) == 0)
        return 0; /* no message: nothing to replay */
    if ((rc = tr_read_map(r, &n)) != 0)
        return rc;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const char *k;
        size_t kl;
        if ((rc = tr_read_str(r, &k, &kl)) != 0)
            break;
        if (s_key_is(k, kl, "tag")) {
            rc = tr_read_str_copy(r, x->tag, sizeof x->tag);
            x->has_msg = rc == 0;
        } else if (s_key_is(k, kl, "payload")) {
            rc = tr_read_bin(r, &x->payload, &x->plen);
        } else if (s_key_is(k, kl, "request")) {
            rc = tr_read_bool(r, &x->request);
        } else {
            rc = tr_read_skip(r);
        }
    }
    return rc;
}

static int
s_read_capsule(const void *data, size_t len, s_replay_t *x)
{
    tr_reader_t r;
    uint32_t n;
    bool magic = false;
    tr_reader_init_bytes(&r, data, len);
    int rc = tr_read_map(&r, &n);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const char *k;
        size_t kl;
        if ((rc = tr_read_str(&r, &k, &kl)) != 0)
            break;
        if (s_key_is(k, kl, "troupe_capsule")) {
            int64_t v;
            rc = tr_read_int(&r, &v);
            magic = rc == 0 && v == 1;
        } else if (s_key_is(k, kl, "behaviour")) {
            rc = tr_read_str_copy(&r, x->behaviour, sizeof x->behaviour);
        } else if (s_key_is(k, kl, "name")) {
            rc = tr_read_str_copy(&r, x->name, sizeof x->name);
        } else if (s_key_is(k, kl, "message")) {
            rc = s_read_message(&r, x);
        } else {
            rc = tr_read_skip(&r);
        }
    }
    return rc == 0 && !magic ? TR_EPROTO : rc;
}

/* Exit statuses of a replay (tools/replay.c reads them). */
#define S_REPLAY_HANDLED 0
#define S_REPLAY_FAILED 3
#define S_REPLAY_BAD 4

int
tr__capsule_replay_main(const char *path)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    s_replaying = true;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 ||
        st.st_size > (off_t)1 << 30) {
        fprintf(stderr, "troupe replay: cannot read the capsule %s: %s\n",
                path, fd < 0 ? strerror(errno) : "empty or too large");
        if (fd >= 0)
            close(fd);
        return S_REPLAY_BAD;
    }
    void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED) {
        fprintf(stderr, "troupe replay: cannot read %s\n", path);
        return S_REPLAY_BAD;
    }
    s_replay_t x;
    memset(&x, 0, sizeof x);
    int rc = s_read_capsule(data, (size_t)st.st_size, &x);
    if (rc != 0 || !x.has_msg || x.behaviour[0] == '\0') {
        fprintf(stderr, "troupe replay: %s is not a crash capsule with a "
                "message\n", path);
        munmap(data, (size_t)st.st_size);
        return S_REPLAY_BAD;
    }
    int status = S_REPLAY_BAD;
    tr_node_t *node = NULL;
    tr_msg_t *m = NULL, *reply = NULL;
    tr_id_t id = 0;
    const char *ms = getenv("TROUPE_REPLAY_MS");
    int wait_ms = ms && atoi(ms) > 0 ? atoi(ms) : 5000;
    /* Alone: no control endpoint, the behaviour as a thread actor (under
     * gdb, its crash stops this process), init with no arguments. */
    if ((rc = tr_node_create(&node, &(tr_node_opts_t){
                                        .name = "replay",
                                        .no_control = true,
                                        .quarantine_after = -1})) != 0) {
        fprintf(stderr, "troupe replay: no node: %s\n", tr_strerror(rc));
        goto done;
    }
    rc = tr_spawn(node, x.behaviour,
                  &(tr_spawn_opts_t){.name = x.name[0] ? x.name : NULL},
                  &id);
    if (rc != 0) {
        fprintf(stderr, "troupe replay: cannot start behaviour '%s': %s%s\n",
                x.behaviour, tr_strerror(rc),
                rc == TR_ENOENT ? " (is this the program that ran it?)"
                                : " (its init runs with no arguments)");
        goto done;
    }
    fprintf(stderr, "troupe replay: '%s' (%zu bytes of payload) to a new "
            "%s\n", x.tag, x.plen, x.behaviour);
    if ((rc = tr_msg_create(&m, x.tag)) == 0 && x.plen > 0)
        rc = tr_msg_add_raw(m, x.payload, x.plen);
    if (rc == 0) {
        if (x.request) {
            rc = tr_call_id(node, id, &m, wait_ms, &reply);
            if (rc == TR_ETIMEDOUT || rc == TR_EDEAD || rc == 0)
                rc = 0; /* how it went: the join says */
        } else {
            rc = tr_tell_id(node, id, &m);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "troupe replay: cannot deliver '%s': %s\n", x.tag,
                tr_strerror(rc));
        goto done;
    }
    int reason = 0;
    rc = tr_join(node, id, wait_ms, &reason);
    if (rc == 0 && reason != 0 && reason != TR_ESHUTDOWN) {
        fprintf(stderr, "troupe replay: reproduced: %s failed handling "
                "'%s': %s\n", x.behaviour, x.tag, tr_strerror(reason));
        status = S_REPLAY_FAILED;
    } else {
        fprintf(stderr, "troupe replay: not reproduced: '%s' was handled "
                "without failing (waited %d ms)\n", x.tag, wait_ms);
        status = S_REPLAY_HANDLED;
    }
done:
    tr_msg_destroy(&m);
    tr_msg_destroy(&reply);
    tr_node_destroy(&node);
    munmap(data, (size_t)st.st_size);
    return status;
}
