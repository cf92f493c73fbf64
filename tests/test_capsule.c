/* tests/test_capsule.c - crash capsules, replay and quarantine
 * (runtime/capsule.c, docs/control.md): an actor whose handler fails
 * leaves a capsule with the message, the messages before it, the reason
 * and the restart count; a process actor killed by a signal leaves one
 * from its signal handler, with a backtrace; `troupe capsule` prints them
 * and `troupe replay` hands the message again to the behaviour in this
 * very program (its main calls tr_init, which sees TROUPE_REPLAY); a
 * message that crashed a kept name N times in a row is quarantined.
 *
 * The command is in TR_TOOL_TROUPE (tests/meson.build). Nothing sleeps
 * to synchronise: restarts are waited for with a deadline, and a tell is
 * known to be handled when an ask sent after it is answered. */
#include <check.h>
#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/node.h"
#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */

/* "cap_worker": "boom" fails (TR_EPROTO); "third" fails when it is the
 * third message this actor took; "ping" is answered [n taken]; anything
 * else is taken. */
typedef struct {
    int64_t n;
} s_worker_t;

static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_worker_t *st = state;
    st->n++;
    if (tr_msg_is(msg, "boom"))
        return TR_EPROTO;
    if (tr_msg_is(msg, "third") && st->n == 3)
        return TR_EPROTO;
    if (tr_msg_is(msg, "ping"))
        return ts_reply_ints(self, msg, 1, &st->n);
    return 0;
}
TR_BEHAVIOUR(cap_worker, .state_size = sizeof(s_worker_t),
             .handle = s_worker_handle)

/* "cap_segv": "segv" raises SIGSEGV; "ping" is answered [1]. */
static int
s_segv_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "segv"))
        raise(SIGSEGV);
    if (tr_msg_is(msg, "ping")) {
        int64_t one = 1;
        return ts_reply_ints(self, msg, 1, &one);
    }
    return 0;
}
TR_BEHAVIOUR(cap_segv, .handle = s_segv_handle)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static char s_dir[64];

/* Capsules go to a directory of the test's own. */
static void
s_setup(void)
{
    ts_tmpdir(s_dir, sizeof s_dir, "capsule");
    ck_assert_int_eq(setenv("TROUPE_CAPSULES", s_dir, 1), 0);
}

static void
s_teardown(void)
{
    unsetenv("TROUPE_CAPSULES");
    ts_rmtree(s_dir);
}

/* The path of actor id's capsule (suffix: "" or "-q<n>"). */
static void
s_capsule_path(char *buf, size_t cap, const char *name, tr_id_t id,
               const char *suffix)
{
    snprintf(buf, cap, "%s/%s-%llx%s.capsule", s_dir, name,
             (unsigned long long)id, suffix);
}

/* Whether actor id has run its init (it is registered before). */
static bool
s_up(tr_node_t *node, tr_id_t id)
{
    tr__rec_t *rec = tr__reg_get(&node->reg, id);
    bool up = rec != NULL && atomic_load(&rec->up);
    tr__rec_unref(&rec);
    return up;
}

/* Wait until name is a new actor (not old) that has run its init; its
 * id. */
static tr_id_t
s_restarted(tr_node_t *node, const char *name, tr_id_t old)
{
    tr_id_t now = 0;
    int64_t deadline = ts_now_ms() + TS_CALL_MS;
    while ((tr_whereis(node, name, &now) != 0 || now == old ||
            !s_up(node, now)) &&
           ts_now_ms() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    ck_assert_uint_ne(now, old);
    ck_assert_uint_ne(now, 0);
    ck_assert(s_up(node, now));
    return now;
}

/* A capsule read with msgpack-c. */
typedef struct {
    char *data;
    msgpack_unpacked u;
} s_cap_t;

static const msgpack_object *
s_cap_load(s_cap_t *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no capsule at %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_gt(len, 0);
    c->data = malloc((size_t)len);
    ck_assert_uint_eq(fread(c->data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    msgpack_unpacked_init(&c->u);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&c->u, c->data, (size_t)len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, (size_t)len); /* one map, nothing after */
    ck_assert_int_eq(c->u.data.type, MSGPACK_OBJECT_MAP);
    return &c->u.data;
}

static void
s_cap_free(s_cap_t *c)
{
    msgpack_unpacked_destroy(&c->u);
    free(c->data);
}

static const msgpack_object *
s_get(const msgpack_object *m, const char *key)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    ck_abort_msg("no '%s' in the capsule", key);
    return NULL;
}

static int64_t
s_int(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = s_get(m, key);
    ck_assert(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return v->via.i64;
}

static void
s_str_is(const msgpack_object *m, const char *key, const char *want)
{
    const msgpack_object *v = s_get(m, key);
    ck_assert_int_eq(v->type, MSGPACK_OBJECT_STR);
    ck_assert_msg(v->via.str.size == strlen(want) &&
                      memcmp(v->via.str.ptr, want, v->via.str.size) == 0,
                  "%s is '%.*s', not '%s'", key, (int)v->via.str.size,
                  v->via.str.ptr, want);
}

/* Run the troupe command (args in a shell line); stdout+stderr and the
 * status. */
static char *
s_tool(int *status, const char *fmt, ...)
{
    static char out[1 << 16];
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *tool = getenv("TR_TOOL_TROUPE");
    ck_assert_ptr_nonnull(tool);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", tool, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static void
s_has(const char *text, const char *what)
{
    ck_assert_msg(strstr(text, what) != NULL, "no '%s' in:\n%s", what, text);
}

/* This test program: replay runs it again. */
static const char *
s_self(void)
{
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    return self;
}

static tr_msg_t *
s_msg2(const char *tag, int64_t i, const char *s)
{
    tr_msg_t *m = ts_msg_i(tag, i);
    ck_assert_int_eq(tr_msg_add_str(m, s), 0);
    return m;
}

/* A supervisor "sup" of one kept-name child. */
static tr_id_t
s_supervised(tr_node_t *node, const char *name, const char *beh,
             tr_mode_t mode)
{
    tr_child_spec_t kid = {.id = "k", .behaviour = beh,
                           .spawn = {.name = name, .mode = mode}};
    tr_id_t sup, id;
    ck_assert_int_eq(tr_sup_start(node,
                                  &(tr_sup_opts_t){.name = "sup",
                                                   .max_restarts = 20},
                                  &kid, 1, &sup),
                     0);
    ck_assert_int_eq(tr_whereis(node, name, &id), 0);
    return id;
}

/* ------------------------------------------------------------------ */

START_TEST(a_failed_handler_leaves_a_capsule_that_troupe_capsule_prints)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "caps"});
    tr_id_t old = s_supervised(node, "worker", "cap_worker", TR_THREAD);
    ts_tell(node, "worker", ts_msg_i("a", 1));
    ts_tell(node, "worker", ts_msg_i("b", 2));
    ts_tell(node, "worker", s_msg2("boom", 42, "x"));
    tr_id_t now = s_restarted(node, "worker", old);

    char path[256];
    s_capsule_path(path, sizeof path, "worker", old, "");
    s_cap_t c;
    const msgpack_object *r = s_cap_load(&c, path);
    ck_assert_int_eq(s_int(r, "troupe_capsule"), 1);
    s_str_is(r, "node", "caps");
    s_str_is(r, "name", "worker");
    s_str_is(r, "behaviour", "cap_worker");
    s_str_is(r, "mode", "thread");
    ck_assert_int_eq(s_int(r, "actor"), (int64_t)old);
    ck_assert_int_eq(s_int(r, "reason"), TR_EPROTO);
    ck_assert_int_eq(s_int(r, "signal"), 0);
    ck_assert_int_eq(s_int(r, "restarts"), 0);
    ck_assert_int_eq(s_int(r, "crashes_in_a_row"), 1);
    ck_assert(!s_get(r, "quarantined")->via.boolean);
    const msgpack_object *m = s_get(r, "message");
    ck_assert_int_eq(m->type, MSGPACK_OBJECT_MAP);
    s_str_is(m, "tag", "boom");
    /* The payload as sent: 42, "x". */
    const msgpack_object *p = s_get(m, "payload");
    ck_assert_int_eq(p->type, MSGPACK_OBJECT_BIN);
    ck_assert_uint_eq(p->via.bin.size, 3);
    ck_assert(memcmp(p->via.bin.ptr, "\x2a\xa1x", 3) == 0);
    /* The frame as received ends with the tag and the payload. */
    const msgpack_object *fr = s_get(m, "frame");
    ck_assert_uint_ge(fr->via.bin.size, 40 + 5 + 3);
    ck_assert(memcmp(fr->via.bin.ptr + fr->via.bin.size - 8, "boom\0\x2a\xa1x",
                     8) == 0);
    /* The two messages before it, oldest first. */
    const msgpack_object *rec = s_get(r, "recent");
    ck_assert_uint_eq(rec->via.array.size, 2);
    s_str_is(&rec->via.array.ptr[0], "tag", "a");
    s_str_is(&rec->via.array.ptr[1], "tag", "b");
    ck_assert_uint_eq(s_get(r, "backtrace")->via.array.size, 0);
    s_cap_free(&c);

    int st;
    char *o = s_tool(&st, "capsule %s", path);
    ck_assert_msg(st == 0, "%s", o);
    s_has(o, "worker (cap_worker, id ");
    s_has(o, "a thread actor of node 'caps'");
    s_has(o, "malformed message (-11)");
    s_has(o, "message    'boom' from #");
    s_has(o, ", a tell");
    s_has(o, "payload    3 bytes: 42, \"x\"");
    s_has(o, "'a' from #");
    s_has(o, "'b' from #");
    s_has(o, "troupe replay");
    o = s_tool(&st, "capsule %s --json", path);
    ck_assert_int_eq(st, 0);
    s_has(o, "\"tag\":\"boom\"");
    s_has(o, "\"recent\":[{\"tag\":\"a\"");
    /* Not a capsule, or no file: exit 1 with a message. */
    o = s_tool(&st, "capsule /etc/hostname");
    ck_assert_int_eq(st, 1);
    s_has(o, "not a crash capsule");
    o = s_tool(&st, "capsule %s/none.capsule", s_dir);
    ck_assert_int_eq(st, 1);
    /* The new worker still works. */
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "worker", ts_msg("ping"), 1, &n), 0);
    ck_assert_int_eq(n, 1);
    (void)now;
    ts_destroy(&node);
}
END_TEST

START_TEST(replay_hands_the_message_again_to_the_behaviour_alone)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "replays"});
    tr_id_t old = s_supervised(node, "worker", "cap_worker", TR_THREAD);
    ts_tell(node, "worker", s_msg2("boom", 7, "y"));
    tr_id_t mid = s_restarted(node, "worker", old);
    /* "third" fails only as the third message of an actor. */
    ts_tell(node, "worker", ts_msg("a"));
    ts_tell(node, "worker", ts_msg("b"));
    ts_tell(node, "worker", ts_msg("third"));
    s_restarted(node, "worker", mid);
    ts_destroy(&node);

    char boom[256], third[256];
    s_capsule_path(boom, sizeof boom, "worker", old, "");
    s_capsule_path(third, sizeof third, "worker", mid, "");
    int st;
    char *o = s_tool(&st, "replay %s %s", boom, s_self());
    ck_assert_msg(st == 0, "%s", o);
    s_has(o, "replaying 'boom' to a new cap_worker");
    s_has(o, "reproduced: cap_worker failed handling 'boom'");
    /* Alone, "third" is the first message: no failure. */
    o = s_tool(&st, "replay --timeout 300 %s %s", third, s_self());
    ck_assert_msg(st == 1, "%s", o);
    s_has(o, "not reproduced");
    /* Under gdb (when there is one): the program runs in the debugger and
     * the handler fails there again (replay's exit status 3). */
    if (system("gdb --version >/dev/null 2>&1") == 0) {
        /* (LeakSanitizer cannot run under ptrace) */
        const char *asan = getenv("ASAN_OPTIONS");
        char saved[512], opts[600];
        snprintf(saved, sizeof saved, "%s", asan ? asan : "");
        snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", saved,
                 saved[0] ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        o = s_tool(&st, "replay --gdb %s %s </dev/null", boom, s_self());
        if (asan != NULL)
            setenv("ASAN_OPTIONS", saved, 1);
        else
            unsetenv("ASAN_OPTIONS");
        s_has(o, "under gdb");
        s_has(o, "reproduced: cap_worker failed handling 'boom'");
        s_has(o, "exited with code 03");
    } else {
        printf("replay --gdb not tried: no gdb here\n");
    }
    /* Usage and bad files. */
    o = s_tool(&st, "replay %s", boom);
    ck_assert_int_eq(st, 2);
    o = s_tool(&st, "replay /etc/hostname %s", s_self());
    ck_assert_int_eq(st, 1);
    s_has(o, "not a crash capsule");
    o = s_tool(&st, "replay %s /nonexistent/program", boom);
    ck_assert_int_eq(st, 1);
    s_has(o, "cannot run");
}
END_TEST

START_TEST(a_process_actor_killed_by_a_signal_leaves_a_capsule)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "segvs"});
    tr_id_t id = 0;
    ck_assert_int_eq(tr_spawn(node, "cap_segv",
                              &(tr_spawn_opts_t){.name = "pseg",
                                                 .mode = TR_PROCESS},
                              &id),
                     0);
    ts_tell(node, "pseg", ts_msg("before"));
    ts_tell(node, "pseg", ts_msg_i("segv", 5));
    int reason = 0;
    ck_assert_int_eq(tr_join(node, id, TS_CALL_MS, &reason), 0);
    ck_assert_int_eq(reason, TR_ECRASHED);
    ts_destroy(&node);

    char path[256];
    s_capsule_path(path, sizeof path, "pseg", id, "");
    s_cap_t c;
    const msgpack_object *r = s_cap_load(&c, path);
    s_str_is(r, "mode", "process");
    ck_assert_int_eq(s_int(r, "signal"), SIGSEGV);
    ck_assert_int_eq(s_int(r, "reason"), TR_ECRASHED);
    const msgpack_object *m = s_get(r, "message");
    s_str_is(m, "tag", "segv");
    const msgpack_object *rec = s_get(r, "recent");
    ck_assert_uint_eq(rec->via.array.size, 1);
    s_str_is(&rec->via.array.ptr[0], "tag", "before");
    const msgpack_object *bt = s_get(r, "backtrace");
    ck_assert_uint_ge(bt->via.array.size, 3);
    s_cap_free(&c);
    int st;
    char *o = s_tool(&st, "capsule %s", path);
    ck_assert_int_eq(st, 0);
    s_has(o, "a process actor of node 'segvs'");
    s_has(o, "signal 11 (Segmentation fault)");
    s_has(o, "backtrace");
    /* Replayed in a thread: the signal ends the replaying program. */
    char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%shandle_segv=0", asan ? asan : "",
             asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    o = s_tool(&st, "replay %s %s", path, s_self());
    ck_assert_msg(st == 0, "%s", o);
    s_has(o, "reproduced:");
    s_has(o, "died of signal 11");
}
END_TEST

START_TEST(a_message_that_keeps_crashing_a_name_is_quarantined)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "quar",
                                                .quarantine_after = 2});
    tr_id_t a = s_supervised(node, "worker", "cap_worker", TR_THREAD);
    ts_tell(node, "worker", s_msg2("boom", 1, "z"));
    tr_id_t b = s_restarted(node, "worker", a);
    /* Another message in between: still "in a row" for the name. */
    ts_tell(node, "worker", ts_msg("other"));
    ts_tell(node, "worker", s_msg2("boom", 1, "z"));
    tr_id_t c = s_restarted(node, "worker", b);
    tr_node_stats_t st0, st1;
    ts_stats(node, &st0);
    /* The third time it is dropped, and the actor lives on. */
    ts_tell(node, "worker", s_msg2("boom", 1, "z"));
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "worker", ts_msg("ping"), 1, &n), 0);
    ck_assert_int_eq(n, 1); /* only the ping was handled */
    tr_id_t now = 0;
    ck_assert_int_eq(tr_whereis(node, "worker", &now), 0);
    ck_assert_uint_eq(now, c);
    ts_stats(node, &st1);
    ck_assert_uint_eq(st1.dead_letters, st0.dead_letters + 1);
    /* An ask of it settles with TR_EQUARANTINED. */
    tr_msg_t *m = s_msg2("boom", 1, "z"), *reply = NULL;
    ck_assert_int_eq(tr_call(node, "worker", &m, TS_CALL_MS, &reply),
                     TR_EQUARANTINED);
    tr_msg_destroy(&m);
    /* Another payload is another message: it crashes as before. */
    ts_tell(node, "worker", s_msg2("boom", 2, "z"));
    s_restarted(node, "worker", c);

    char path[256];
    s_capsule_path(path, sizeof path, "worker", b, "");
    s_cap_t cap;
    const msgpack_object *r = s_cap_load(&cap, path);
    ck_assert_int_eq(s_int(r, "restarts"), 1);
    ck_assert_int_eq(s_int(r, "crashes_in_a_row"), 2);
    s_cap_free(&cap);
    /* The quarantine capsules (one per dropped message). */
    int found = 0;
    for (int q = 1; q <= 2; q++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "-q%d", q);
        s_capsule_path(path, sizeof path, "worker", c, suffix);
        if (access(path, F_OK) != 0)
            continue;
        r = s_cap_load(&cap, path);
        ck_assert(s_get(r, "quarantined")->via.boolean);
        ck_assert_int_eq(s_int(r, "reason"), TR_EQUARANTINED);
        s_str_is(s_get(r, "message"), "tag", "boom");
        s_cap_free(&cap);
        found++;
    }
    ck_assert_int_eq(found, 2);
    int sts;
    char *o = s_tool(&sts, "capsule %s", path);
    ck_assert_int_eq(sts, 0);
    s_has(o, "QUARANTINED");
    ts_destroy(&node);
}
END_TEST

START_TEST(a_process_actor_quarantines_what_killed_its_predecessor)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "pquar",
                                                .quarantine_after = 1});
    tr_id_t a = s_supervised(node, "pw", "cap_segv", TR_PROCESS);
    ts_tell(node, "pw", ts_msg_i("segv", 9));
    tr_id_t b = s_restarted(node, "pw", a);
    tr_msg_t *m = ts_msg_i("segv", 9), *reply = NULL;
    ck_assert_int_eq(tr_call(node, "pw", &m, TS_CALL_MS, &reply),
                     TR_EQUARANTINED);
    tr_msg_destroy(&m);
    int64_t one = 0;
    ck_assert_int_eq(ts_call_ints(node, "pw", ts_msg("ping"), 1, &one), 0);
    ck_assert_int_eq(one, 1);
    tr_id_t now = 0;
    ck_assert_int_eq(tr_whereis(node, "pw", &now), 0);
    ck_assert_uint_eq(now, b);
    ts_destroy(&node);
}
END_TEST

START_TEST(quarantine_off_lets_the_message_crash_every_time)
{
    ck_assert_int_eq(setenv("TROUPE_QUARANTINE", "off", 1), 0);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "noquar"});
    tr_id_t id = s_supervised(node, "worker", "cap_worker", TR_THREAD);
    for (int i = 0; i < 5; i++) {
        ts_tell(node, "worker", ts_msg("boom"));
        id = s_restarted(node, "worker", id);
    }
    tr_node_stats_t st;
    ts_stats(node, &st);
    ck_assert_uint_eq(st.dead_letters, 0);
    ts_destroy(&node);
    unsetenv("TROUPE_QUARANTINE");
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("capsule");
    TCase *tc = tcase_create("capsule");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120); /* backstop only */
    tcase_add_test(tc, a_failed_handler_leaves_a_capsule_that_troupe_capsule_prints);
    tcase_add_test(tc, replay_hands_the_message_again_to_the_behaviour_alone);
    tcase_add_test(tc, a_process_actor_killed_by_a_signal_leaves_a_capsule);
    tcase_add_test(tc, a_message_that_keeps_crashing_a_name_is_quarantined);
    tcase_add_test(tc, a_process_actor_quarantines_what_killed_its_predecessor);
    tcase_add_test(tc, quarantine_off_lets_the_message_crash_every_time);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
