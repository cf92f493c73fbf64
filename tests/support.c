/* tests/support.c - helpers shared by the Check suites (see support.h).
 * Check forks per test, so the state here (the caught log lines) is each
 * test process's own and starts empty. */
#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Time and numbers                                                    */
/* ------------------------------------------------------------------ */

int64_t
ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ts_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t
ts_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */
/* ------------------------------------------------------------------ */

tr_node_t *
ts_node(const tr_node_opts_t *opts)
{
    tr_node_t *node = NULL;
    ck_assert_int_eq(tr_node_create(&node, opts), 0);
    ck_assert_ptr_nonnull(node);
    return node;
}

void
ts_destroy(tr_node_t **node)
{
    ck_assert_int_eq(tr_node_destroy(node), 0);
    ck_assert_ptr_null(*node);
}

tr_id_t
ts_spawn(tr_node_t *node, const char *beh, const char *name)
{
    tr_id_t id = 0;
    tr_spawn_opts_t o = {.name = name};
    ck_assert_int_eq(tr_spawn(node, beh, &o, &id), 0);
    ck_assert_uint_ne(id, 0);
    return id;
}

void
ts_stats(tr_node_t *node, tr_node_stats_t *st)
{
    memset(st, 0xff, sizeof *st);
    tr_node_stats(node, st);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

tr_msg_t *
ts_msg(const char *tag)
{
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr_msg_create(&m, tag), 0);
    ck_assert_ptr_nonnull(m);
    return m;
}

tr_msg_t *
ts_msg_i(const char *tag, int64_t v)
{
    return ts_msg_ints(tag, 1, &v);
}

tr_msg_t *
ts_msg_ints(const char *tag, int n, const int64_t *v)
{
    tr_msg_t *m = ts_msg(tag);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(tr_msg_add_int(m, v[i]), 0);
    return m;
}

void
ts_ints(const tr_msg_t *m, int n, int64_t *v)
{
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(tr_read_int(&r, &v[i]), 0);
}

int
ts_read_ints(const tr_msg_t *m, int n, int64_t *v)
{
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (int i = 0; i < n; i++) {
        int rc = tr_read_int(&r, &v[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

void
ts_tell(tr_node_t *node, const char *name, tr_msg_t *m)
{
    ck_assert_int_eq(tr_tell(node, name, &m), 0);
    ck_assert_ptr_null(m);
}

int
ts_call_ints(tr_node_t *node, const char *name, tr_msg_t *m, int n,
             int64_t *out)
{
    tr_msg_t *reply = NULL;
    int rc = tr_call(node, name, &m, TS_CALL_MS, &reply);
    ck_assert_ptr_null(m); /* tr_call takes it once sent, whatever happens */
    if (rc == 0) {
        ts_ints(reply, n, out);
        tr_msg_destroy(&reply);
    }
    return rc;
}

int
ts_ask_id(tr_node_t *node, tr_id_t id, tr_msg_t *m, tr_msg_t **reply)
{
    tr_msg_t *r = NULL;
    tr_future_t *f = NULL;
    int rc = tr_ask_id(node, id, &m, TS_CALL_MS, &f);
    tr_msg_destroy(&m); /* not sent: still ours */
    if (rc != 0)
        return rc;
    rc = tr_future_get(f, TR_FOREVER, &r);
    tr_future_destroy(&f);
    if (reply != NULL)
        *reply = r;
    else
        tr_msg_destroy(&r);
    return rc;
}

int
ts_ask_id_ints(tr_node_t *node, tr_id_t id, tr_msg_t *m, int n,
               int64_t *out)
{
    tr_msg_t *reply = NULL;
    int rc = ts_ask_id(node, id, m, &reply);
    if (rc == 0) {
        ts_ints(reply, n, out);
        tr_msg_destroy(&reply);
    }
    return rc;
}

int
ts_reply_ints(tr_actor_t *self, const tr_msg_t *req, int n,
              const int64_t *v)
{
    tr_msg_t *r = NULL;
    int rc = tr_msg_create(&r, "ok");
    for (int i = 0; rc == 0 && i < n; i++)
        rc = tr_msg_add_int(r, v[i]);
    if (rc == 0)
        rc = tr_reply(self, req, &r);
    tr_msg_destroy(&r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The gate                                                            */
/* ------------------------------------------------------------------ */

#define S_HELD_MAX 8

typedef struct {
    tr_msg_t *held[S_HELD_MAX];
    int nheld;
    tr_msg_t *watch;
    int64_t want;
    bool open;
} s_gate_t;

/* Answer the watch once enough are held (or the gate is open). */
static int
s_gate_check(tr_actor_t *self, s_gate_t *g)
{
    if (g->watch == NULL || (g->nheld < g->want && !g->open))
        return 0;
    int64_t n = g->nheld;
    int rc = ts_reply_ints(self, g->watch, 1, &n);
    tr_msg_destroy(&g->watch);
    return rc;
}

static int
s_gate_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_gate_t *g = state;
    int rc;
    if (tr_msg_is(msg, "hold")) {
        if (g->open)
            return ts_reply_ints(self, msg, 0, NULL);
        if (g->nheld == S_HELD_MAX)
            return tr_reply_error(self, msg, TR_ERANGE);
        if ((rc = tr_msg_dup(msg, &g->held[g->nheld])) != 0)
            return rc;
        g->nheld++;
        return s_gate_check(self, g);
    }
    if (tr_msg_is(msg, "watch")) {
        if ((rc = ts_read_ints(msg, 1, &g->want)) != 0)
            return rc;
        tr_msg_destroy(&g->watch);
        if ((rc = tr_msg_dup(msg, &g->watch)) != 0)
            return rc;
        return s_gate_check(self, g);
    }
    if (tr_msg_is(msg, "open")) {
        g->open = true;
        for (int i = 0; i < g->nheld; i++) {
            if ((rc = ts_reply_ints(self, g->held[i], 0, NULL)) != 0)
                return rc;
            tr_msg_destroy(&g->held[i]);
        }
        g->nheld = 0;
        return s_gate_check(self, g);
    }
    return TR_EUNHANDLED;
}

static void
s_gate_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    s_gate_t *g = state;
    for (int i = 0; i < g->nheld; i++)
        tr_msg_destroy(&g->held[i]);
    tr_msg_destroy(&g->watch);
}

TR_BEHAVIOUR(ts_gate, .state_size = sizeof(s_gate_t),
             .handle = s_gate_handle, .terminate = s_gate_terminate);

void
ts_gate_block(tr_node_t *node, const char *name)
{
    ts_tell(node, name, ts_msg("block"));
    int64_t held = 0;
    ck_assert_int_eq(ts_call_ints(node, "gate", ts_msg_i("watch", 1), 1,
                                  &held),
                     0);
    ck_assert_int_eq(held, 1);
}

void
ts_gate_open(tr_node_t *node)
{
    ts_tell(node, "gate", ts_msg("open"));
}

/* ------------------------------------------------------------------ */
/* Flags                                                               */
/* ------------------------------------------------------------------ */

void
ts_flag_set(ts_flag_t *f)
{
    pthread_mutex_lock(&f->mu);
    f->set = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

bool
ts_flag_wait(ts_flag_t *f, int ms)
{
    /* pthread_cond_timedwait takes a CLOCK_REALTIME deadline. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ms >= 0) {
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (!f->set && rc == 0)
        rc = ms < 0 ? pthread_cond_wait(&f->cv, &f->mu)
                    : pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    bool set = f->set;
    pthread_mutex_unlock(&f->mu);
    return set;
}

/* ------------------------------------------------------------------ */
/* Log capture                                                         */
/* ------------------------------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    int n;
    int level[TS_LOG_LINES];
    char line[TS_LOG_LINES][TS_LOG_LINE_MAX];
} s_log = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
s_log_sink(void *arg, int level, const char *line)
{
    ck_assert_ptr_eq(arg, &s_log); /* the sink gets its argument back */
    pthread_mutex_lock(&s_log.mu);
    if (s_log.n < TS_LOG_LINES) {
        s_log.level[s_log.n] = level;
        snprintf(s_log.line[s_log.n], sizeof s_log.line[0], "%s", line);
    }
    s_log.n++;
    pthread_mutex_unlock(&s_log.mu);
}

void
ts_log_capture(void)
{
    tr_log_set_sink(s_log_sink, &s_log);
}

int
ts_log_lines(void)
{
    pthread_mutex_lock(&s_log.mu);
    int n = s_log.n;
    pthread_mutex_unlock(&s_log.mu);
    return n;
}

const char *
ts_log_line(int i)
{
    ck_assert(i >= 0 && i < ts_log_lines() && i < TS_LOG_LINES);
    return s_log.line[i];
}

int
ts_log_level(int i)
{
    ck_assert(i >= 0 && i < ts_log_lines() && i < TS_LOG_LINES);
    return s_log.level[i];
}

int
ts_log_find(const char *a)
{
    int at = -1;
    pthread_mutex_lock(&s_log.mu);
    for (int i = 0; i < s_log.n && i < TS_LOG_LINES && at < 0; i++)
        if (strstr(s_log.line[i], a) != NULL)
            at = i;
    pthread_mutex_unlock(&s_log.mu);
    return at;
}

int
ts_log_count(const char *a, const char *b)
{
    int n = 0;
    pthread_mutex_lock(&s_log.mu);
    for (int i = 0; i < s_log.n && i < TS_LOG_LINES; i++)
        if (strstr(s_log.line[i], a) && (b == NULL || strstr(s_log.line[i], b)))
            n++;
    pthread_mutex_unlock(&s_log.mu);
    return n;
}

void
ts_label(char *buf, size_t cap, const char *name, tr_id_t id)
{
    snprintf(buf, cap, "%s#%llx", name, (unsigned long long)id);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int
ts_run_suite(Suite *s)
{
    /* A suite that spawns process actors re-executes itself: the child
     * becomes the actor here and never runs the suite. */
    tr_init(NULL, NULL);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ------------------------------------------------------------------ */
/* Files and descriptors                                               */
/* ------------------------------------------------------------------ */

int
ts_count_dir(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int
ts_fds(void)
{
    return ts_count_dir("/proc/self/fd");
}

void
ts_template(char *buf, size_t cap, const char *prefix)
{
    int n = snprintf(buf, cap, "/tmp/%s-", prefix);
    ck_assert(n > 0 && (size_t)n + 7 <= cap);
    memset(buf + n, 'X', 6);
    buf[n + 6] = '\0';
}

void
ts_tmpdir(char *buf, size_t cap, const char *prefix)
{
    ts_template(buf, cap, prefix);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
ts_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            ts_rmtree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
