/* tests/support.h - helpers shared by the Check suites of tests/: nodes,
 * messages, calls and replies that abort the test on error, a one-shot
 * event between threads, a log sink that keeps what it is given, and the
 * runner's main(). Built into every suite executable (tests/meson.build).
 * What only one suite needs stays in that suite.
 *
 * Check forks per test: nothing here creates a ZeroMQ context or a node
 * until a test calls it, so call these from tests only (not from main or
 * an unchecked fixture). The state kept here (the log lines) is each test
 * process's own. At load time the one thing this module does is register
 * the "ts_gate" behaviour. */
#ifndef TESTS_SUPPORT_H
#define TESTS_SUPPORT_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

/* Deadline of calls and waits that must succeed: reached only when
 * something hangs. */
#define TS_CALL_MS 20000

/* For hot loops: ck_assert records a mark point (a write to the runner)
 * per call, which costs seconds over a million iterations. */
#define TS_CHECK(expr)                                                      \
    do {                                                                    \
        if (!(expr))                                                        \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #expr);           \
    } while (0)

/* ------------------------------------------------------------------ */
/* Time and numbers                                                    */
/* ------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in milliseconds, in microseconds. */
int64_t ts_now_ms(void);
int64_t ts_now_us(void);

/* xorshift64 over *state: the same sequence on every run for one seed. */
uint64_t ts_rand(uint64_t *state);

/* ------------------------------------------------------------------ */
/* Nodes                                                               */
/* ------------------------------------------------------------------ */

/* A new node (opts may be NULL); aborts the test if it cannot be made. */
tr_node_t *ts_node(const tr_node_opts_t *opts);

/* Destroy *node, which must succeed and leave *node NULL. */
void ts_destroy(tr_node_t **node);

/* Spawn beh under name (NULL: anonymous); the new id, never 0. */
tr_id_t ts_spawn(tr_node_t *node, const char *beh, const char *name);

/* tr_node_stats into *st, which is filled with 0xff bytes first so that a
 * field the node leaves unset shows. */
void ts_stats(tr_node_t *node, tr_node_stats_t *st);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* tag with no payload, with [v], with [v[0], ..., v[n-1]]. Abort the test
 * on error, so they are for the test's thread and helper threads, not for
 * handlers. */
tr_msg_t *ts_msg(const char *tag);
tr_msg_t *ts_msg_i(const char *tag, int64_t v);
tr_msg_t *ts_msg_ints(const char *tag, int n, const int64_t *v);

/* Read the first n ints of m into v; aborts the test if one is not there. */
void ts_ints(const tr_msg_t *m, int n, int64_t *v);

/* The same for handlers: returns the first reader error instead. */
int ts_read_ints(const tr_msg_t *m, int n, int64_t *v);

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

/* Tell name m (taken); the tell must succeed. */
void ts_tell(tr_node_t *node, const char *name, tr_msg_t *m);

/* Call name with m, deadline TS_CALL_MS; on 0 the reply's first n ints
 * are in out. Returns tr_call's code. For calls that are sent: m is
 * checked to be taken (tr_call takes it once sent, whatever happens). */
int ts_call_ints(tr_node_t *node, const char *name, tr_msg_t *m, int n,
                 int64_t *out);

/* Ask id with m (taken: destroyed if it could not be sent), deadline
 * TS_CALL_MS, and wait for the outcome; on 0 the reply goes to *reply
 * (reply NULL: dropped). Returns the ask's code, else the outcome's. */
int ts_ask_id(tr_node_t *node, tr_id_t id, tr_msg_t *m, tr_msg_t **reply);

/* ts_ask_id, then the reply's first n ints in out. */
int ts_ask_id_ints(tr_node_t *node, tr_id_t id, tr_msg_t *m, int n,
                   int64_t *out);

/* Inside a handler: reply "ok" [v[0], ..., v[n-1]]; a failed reply is the
 * handler's error. */
int ts_reply_ints(tr_actor_t *self, const tr_msg_t *req, int n,
                  const int64_t *v);

/* ------------------------------------------------------------------ */
/* The gate: makes an actor wait without sleeping                      */
/* ------------------------------------------------------------------ */

/* Behaviour "ts_gate": "hold" requests are kept (a deferred reply) until
 * "open", after which they are answered at once; "watch" [n] is answered
 * [held] once n requests are held (or at once when open). An actor whose
 * handler does tr_call(node, "gate", "hold") waits there, and reads
 * nothing else meanwhile. */

/* With a ts_gate running under the name "gate" (spawned by the test, so
 * that it chooses the start order), tell name "block", whose handler must
 * call the gate "hold", and return once the gate holds that call. */
void ts_gate_block(tr_node_t *node, const char *name);

/* Tell the gate "open": the held calls are answered. */
void ts_gate_open(tr_node_t *node);

/* ------------------------------------------------------------------ */
/* A one-shot event between threads (test-side shared memory)          */
/* ------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool set;
} ts_flag_t;

#define TS_FLAG_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

void ts_flag_set(ts_flag_t *f);

/* Wait up to ms (< 0, e.g. TR_FOREVER: no limit) for the flag; true if
 * set. */
bool ts_flag_wait(ts_flag_t *f, int ms);

/* ------------------------------------------------------------------ */
/* Log capture                                                         */
/* ------------------------------------------------------------------ */

/* Make the log sink one that keeps the first TS_LOG_LINES lines and their
 * levels (the sink is called under the logger's lock; the readers below
 * take a lock of ours). A line is kept up to TS_LOG_LINE_MAX - 1 bytes,
 * more than the logger's own limit, so a line it failed to cut shows.
 * tr_log_set_sink(NULL, NULL) goes back to stderr. */
#define TS_LOG_LINES 512
#define TS_LOG_LINE_MAX 1100

void ts_log_capture(void);

/* Lines given to the sink so far (kept or not). */
int ts_log_lines(void);

/* Kept line i (0 <= i < ts_log_lines(), i < TS_LOG_LINES) and its level. */
const char *ts_log_line(int i);
int ts_log_level(int i);

/* Index of the first kept line containing a, or -1. */
int ts_log_find(const char *a);

/* How many kept lines contain both a and b (b may be NULL). */
int ts_log_count(const char *a, const char *b);

/* "name#id" as actor threads label their log lines. */
void ts_label(char *buf, size_t cap, const char *name, tr_id_t id);

/* ------------------------------------------------------------------ */
/* Files and descriptors                                               */
/* ------------------------------------------------------------------ */

/* Entries of a directory other than "." and ".." (it must exist). */
int ts_count_dir(const char *path);

/* Open descriptors of this process (/proc/self/fd). */
int ts_fds(void);

/* A mkstemp/mkdtemp template: /tmp/<prefix>- and six random letters'
 * places (the X's mkstemp wants). */
void ts_template(char *buf, size_t cap, const char *prefix);

/* A fresh private directory (mkdtemp) named from ts_template. */
void ts_tmpdir(char *buf, size_t cap, const char *prefix);

/* Remove a directory and everything below it. */
void ts_rmtree(const char *dir);

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

/* Run s (the runner frees it); EXIT_SUCCESS if no test failed. */
int ts_run_suite(Suite *s);

#endif
