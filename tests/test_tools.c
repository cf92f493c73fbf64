/* tests/test_tools.c - the troupe command (tools/, docs/tools.md) against
 * real nodes: a test makes a node in this process (actors, a supervisor,
 * a pool), runs the built command on it and reads what it prints: ps,
 * tree, info, pools, ls and top, as text and as --json; top on a
 * pseudo-terminal, as a person runs it (its sort keys, and q or Ctrl-C
 * giving the terminal back); stop and restart and their effect on the
 * node; the exits for a node that is missing, gone (killed), refusing or
 * silent, and for usage errors; keygen's files; and traces:
 * a traced node sends a known number of messages, and the summary, the
 * Perfetto JSON and the SVG must agree with the trace file itself; so
 * must the traces of the small examples (build/examples/, found in
 * TR_EXAMPLE_<NAME>), which must hold what each example sends.
 *
 * The command is found in TR_TOOL_TROUPE (tests/meson.build);
 * TR_TOOL_WRAP, when set, is put before it (for instance "valgrind -q
 * --error-exitcode=99 --leak-check=full", see scripts/test). It runs with
 * stdout and stderr on pipes (top also on a pseudo-terminal), under a
 * deadline (then it is killed and the test fails): a command that hangs
 * fails, it does not stall the suite.
 * JSON and XML are checked with python3 (json, xml.dom.minidom), which
 * the tests need. Nothing sleeps to synchronise: a test waits for what it
 * needs (a join, a held gate, a count) with a deadline. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/node.h"
#include "support.h"
#include "troupe.h"

extern char **environ;

/* A command takes well under a second; the deadline is for hangs (and
 * for runs under valgrind). */
#define S_DEADLINE_MS 60000
#define S_OUT_MAX (1 << 20)

/* ------------------------------------------------------------------ */
/* Running the command                                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    int status; /* the exit status, or -1 when it did not exit */
    char *out, *err;
    size_t len[2];
} s_run_t;

static s_run_t s_r;

static void
s_run_free(void)
{
    free(s_r.out);
    free(s_r.err);
    memset(&s_r, 0, sizeof s_r);
}

/* The command's argv with args (NULL-terminated) after it: the wrapper's
 * words (TR_TOOL_WRAP, cut up in wrap), the tool, args. */
static void
s_tool_argv(const char *const *args, char *argv[64], char wrap[512])
{
    const char *tool = getenv("TR_TOOL_TROUPE");
    ck_assert_msg(tool != NULL, "TR_TOOL_TROUPE is not set");
    int argc = 0;
    const char *w = getenv("TR_TOOL_WRAP");
    wrap[0] = '\0';
    if (w != NULL && *w != '\0') {
        snprintf(wrap, 512, "%s", w);
        for (char *save, *t = strtok_r(wrap, " ", &save); t && argc < 16;
             t = strtok_r(NULL, " ", &save))
            argv[argc++] = t;
    }
    argv[argc++] = (char *)tool;
    for (int i = 0; args[i] != NULL && argc < 63; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
}

/* Run argv into s_r (what names it in messages); its exit status. Waits
 * for the end of both pipes, so for every process that holds them (an
 * example's process actors too), then for argv[0]'s exit. */
static int
s_exec(char *const *argv, const char *what)
{
    s_run_free();
    s_r.out = calloc(1, S_OUT_MAX + 1);
    s_r.err = calloc(1, S_OUT_MAX + 1);
    ck_assert(s_r.out != NULL && s_r.err != NULL);
    int p[2][2];
    ck_assert_int_eq(pipe2(p[0], O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(p[1], O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0][1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1][1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0][1]);
    close(p[1][1]);
    ck_assert_msg(rc == 0, "spawn %s: %s", argv[0], strerror(rc));

    char *buf[2] = {s_r.out, s_r.err};
    bool open[2] = {true, true};
    int64_t deadline = ts_now_ms() + S_DEADLINE_MS;
    while (open[0] || open[1]) {
        struct pollfd fds[2];
        int nfds = 0, which[2];
        for (int i = 0; i < 2; i++)
            if (open[i]) {
                fds[nfds] = (struct pollfd){.fd = p[i][0], .events = POLLIN};
                which[nfds++] = i;
            }
        int64_t left = deadline - ts_now_ms();
        if (left <= 0)
            break;
        if (poll(fds, (nfds_t)nfds, (int)left) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < nfds; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = which[k];
            char scratch[4096];
            size_t room = S_OUT_MAX - s_r.len[i];
            ssize_t n = read(p[i][0], room ? buf[i] + s_r.len[i] : scratch,
                             room ? room : sizeof scratch);
            if (n > 0 && room)
                s_r.len[i] += (size_t)n;
            else if (n == 0 || (n < 0 && errno != EINTR))
                open[i] = false;
        }
    }
    close(p[0][0]);
    close(p[1][0]);
    int status;
    bool hung = open[0] || open[1];
    if (hung)
        kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!hung, "%s did not end within %d ms", what,
                  S_DEADLINE_MS);
    s_r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ck_assert_msg(s_r.status != 99, "valgrind found errors:\n%s", s_r.err);
    return s_r.status;
}

/* Run the command with args (NULL-terminated) into s_r; its exit status. */
static int
s_runv(const char *const *args)
{
    char *argv[64], wrap[512], what[64];
    s_tool_argv(args, argv, wrap);
    snprintf(what, sizeof what, "troupe %s", args[0]);
    return s_exec(argv, what);
}

/* s_runv with the arguments given inline, and an expected exit status. */
#define S_RUN(expect, ...)                                                  \
    do {                                                                    \
        const char *s_args_[] = {__VA_ARGS__, NULL};                        \
        int s_rc_ = s_runv(s_args_);                                        \
        ck_assert_msg(s_rc_ == (expect),                                    \
                      "troupe %s: exit %d, not %d\nstdout:\n%s\nstderr:\n%s", \
                      s_args_[0], s_rc_, (expect), s_r.out, s_r.err);       \
    } while (0)

static void
s_out_has(const char *what)
{
    ck_assert_msg(strstr(s_r.out, what) != NULL, "no '%s' in:\n%s", what,
                  s_r.out);
}

static void
s_err_has(const char *what)
{
    ck_assert_msg(strstr(s_r.err, what) != NULL, "no '%s' on stderr:\n%s",
                  what, s_r.err);
}

/* Run python3 on a file: "import json, sys, xml.dom.minidom" and
 * p = sys.argv[1] come first, then code (statements separated by
 * newlines; an assert that fails fails the test, with what python said). */
static void
s_python(const char *file, const char *code)
{
    char prog[8192];
    snprintf(prog, sizeof prog,
             "import json, sys, xml.dom.minidom\np = sys.argv[1]\n%s\n",
             code);
    char *argv[] = {"python3", "-c", prog, (char *)file, NULL};
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    ck_assert_msg(rc == 0, "python3: %s", strerror(rc));
    char out[8192];
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "python3 check failed on %s:\n%s\n%s", file, code, out);
}

/* The last command's stdout into a file, then s_python on it. */
static void
s_python_out(const char *code)
{
    char path[64];
    ts_template(path, sizeof path, "tools-json");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, s_r.out, s_r.len[0]), (ssize_t)s_r.len[0]);
    close(fd);
    s_python(path, code);
    unlink(path);
}

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* "tt_echo": "block" waits on the gate (ts_gate_block); "crash" fails
 * it; anything else is taken and dropped. */
static int
s_echo_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "block"))
        return ts_call_ints(tr_actor_node(self), "gate", ts_msg("hold"), 0,
                            NULL) == 0
                   ? 0
                   : TR_EFAILED;
    if (tr_msg_is(msg, "crash"))
        return TR_EPROTO;
    return 0;
}
TR_BEHAVIOUR(tt_echo, .handle = s_echo_handle)

/* "tt_sink": counts "ping"s; "wait" [n] is answered [count] once n have
 * come (a kept request). */
typedef struct {
    int64_t n, want;
    tr_msg_t *waiting;
} s_sink_t;

static int
s_sink_check(tr_actor_t *self, s_sink_t *st)
{
    if (st->waiting == NULL || st->n < st->want)
        return 0;
    int rc = ts_reply_ints(self, st->waiting, 1, &st->n);
    tr_msg_destroy(&st->waiting);
    return rc;
}

static int
s_sink_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_sink_t *st = state;
    if (tr_msg_is(msg, "ping")) {
        st->n++;
        return s_sink_check(self, st);
    }
    if (tr_msg_is(msg, "wait")) {
        int rc = ts_read_ints(msg, 1, &st->want);
        if (rc == 0)
            rc = tr_msg_dup(msg, &st->waiting);
        return rc == 0 ? s_sink_check(self, st) : rc;
    }
    return 0; /* odd tags (the escaping test's) are taken and dropped */
}

static void
s_sink_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    s_sink_t *st = state;
    tr_msg_destroy(&st->waiting);
}
TR_BEHAVIOUR(tt_sink, .state_size = sizeof(s_sink_t),
             .handle = s_sink_handle, .terminate = s_sink_terminate)

/* "tt_pinger": "go" [n] tells "sink" n "ping"s, then answers. */
static int
s_pinger_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "go"))
        return TR_EUNHANDLED;
    int64_t n;
    int rc = ts_read_ints(msg, 1, &n);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "ping")) == 0 &&
            (rc = tr_msg_add_int(m, i)) == 0)
            rc = tr_tell(tr_actor_node(self), "sink", &m);
        tr_msg_destroy(&m);
    }
    return rc == 0 ? ts_reply_ints(self, msg, 1, &n) : rc;
}
TR_BEHAVIOUR(tt_pinger, .handle = s_pinger_handle)

static int
s_task(const tr_msg_t *args, tr_msg_t **result)
{
    (void)args, (void)result;
    return 0;
}
TR_TASK(tt_task, s_task);

/* ------------------------------------------------------------------ */
/* A node to look at                                                   */
/* ------------------------------------------------------------------ */

static struct {
    tr_node_t *node;
    char name[64], pid[24];
    tr_id_t e1, anon, sup, kid_a, kid_b;
    tr_pool_t *pool;
} s_fx;

/* A node named after the test and this process (several tests run at
 * once): e1 and an anonymous tt_echo, "gate", a supervisor "sup" with
 * kid_a (kept name) and an anonymous kid, and a pool "pool" of 2. */
static void
s_node(const char *test)
{
    snprintf(s_fx.name, sizeof s_fx.name, "tt_%s_%ld", test, (long)getpid());
    snprintf(s_fx.pid, sizeof s_fx.pid, "%ld", (long)getpid());
    s_fx.node = ts_node(&(tr_node_opts_t){.name = s_fx.name});
    s_fx.e1 = ts_spawn(s_fx.node, "tt_echo", "e1");
    s_fx.anon = ts_spawn(s_fx.node, "tt_echo", NULL);
    ts_spawn(s_fx.node, "ts_gate", "gate");
    tr_child_spec_t kids[2] = {
        {.id = "a", .behaviour = "tt_echo", .spawn = {.name = "kid_a"}},
        {.id = "b", .behaviour = "tt_echo"},
    };
    ck_assert_int_eq(tr_sup_start(s_fx.node,
                                  &(tr_sup_opts_t){.name = "sup",
                                                   .max_restarts = 10},
                                  kids, 2, &s_fx.sup),
                     0);
    tr_sup_child_t which[2];
    ck_assert_int_eq(tr_sup_which_children(s_fx.node, s_fx.sup, which, 2), 2);
    s_fx.kid_a = which[0].actor;
    s_fx.kid_b = which[1].actor;
    ck_assert_int_eq(tr_pool_start(s_fx.node,
                                   &(tr_pool_opts_t){.name = "pool",
                                                     .workers = 2},
                                   &s_fx.pool),
                     0);
}

static void
s_node_destroy(void)
{
    if (s_fx.pool != NULL)
        ck_assert_int_eq(tr_pool_shutdown(&s_fx.pool, false, TS_CALL_MS), 0);
    ts_destroy(&s_fx.node);
}

/* ------------------------------------------------------------------ */
/* ps, tree, info, pools, ls                                           */
/* ------------------------------------------------------------------ */

START_TEST(ps_lists_the_actors_found_by_pid_name_or_directory)
{
    s_node("ps");
    const char *by[3] = {s_fx.pid, s_fx.name, s_fx.node->rundir};
    for (int i = 0; i < 3; i++) {
        S_RUN(0, "ps", by[i]);
        s_out_has("ID");
        s_out_has("LAST FAILURE");
        s_out_has(" e1 ");
        s_out_has(" kid_a ");
        s_out_has(" pool ");
        s_out_has("tr_pool_worker");
        s_out_has("tr_supervisor");
        ck_assert_msg(s_r.len[1] == 0, "stderr: %s", s_r.err);
    }
    /* One line per actor, under the heading. */
    tr_node_stats_t st;
    ts_stats(s_fx.node, &st);
    int lines = 0;
    for (const char *p = s_r.out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_int_eq(lines, (int)st.alive + 1);
    s_node_destroy();
}
END_TEST

START_TEST(ps_json_has_every_field_of_every_actor)
{
    s_node("psjson");
    S_RUN(0, "ps", s_fx.pid, "--json");
    char code[2048];
    snprintf(code, sizeof code,
             "a = json.load(open(p))\n"
             "keys = {'id', 'name', 'behaviour', 'mode', 'pid', 'tid', "
             "'state', 'parent', 'mailbox', 'in', 'out', 'restarts', "
             "'last_failure'}\n"
             "assert all(set(x) == keys for x in a), a\n"
             "by = {x['name']: x for x in a if x['name']}\n"
             "e = by['e1']\n"
             "assert e['id'] == %llu and e['behaviour'] == 'tt_echo', e\n"
             "assert e['mode'] == 'thread' and e['pid'] == %ld, e\n"
             "assert e['state'] == 'running' and e['tid'] > 0, e\n"
             "assert by['kid_a']['parent'] == %llu, by['kid_a']\n"
             "assert by['pool']['behaviour'] == 'tr_pool'\n"
             "assert %llu in [x['id'] for x in a if not x['name']]\n"
             "assert len([x for x in a if x['behaviour'] == "
             "'tr_pool_worker']) == 2\n",
             (unsigned long long)s_fx.e1, (long)getpid(),
             (unsigned long long)s_fx.sup, (unsigned long long)s_fx.anon);
    s_python_out(code);
    s_node_destroy();
}
END_TEST

START_TEST(ps_shows_the_mailbox_of_a_blocked_actor)
{
    s_node("mailbox");
    ts_gate_block(s_fx.node, "e1"); /* e1 now waits in its handler */
    for (int i = 0; i < 5; i++)
        ts_tell(s_fx.node, "e1", ts_msg("x"));
    /* ps is a snapshot: the sends above have all returned, so the node
     * counts five messages not yet taken. */
    S_RUN(0, "ps", s_fx.pid, "--json");
    s_python_out("e = [x for x in json.load(open(p)) if x['name'] == "
                 "'e1'][0]\n"
                 "assert e['mailbox'] == 5 and e['in'] == 1, e\n"
                 "assert e['out'] >= 1, e\n");
    ts_gate_open(s_fx.node);
    s_node_destroy();
}
END_TEST

START_TEST(tree_draws_the_supervision_tree_and_names_the_rest)
{
    s_node("tree");
    S_RUN(0, "tree", s_fx.name);
    s_out_has("[root supervisor]");
    char line[128];
    snprintf(line, sizeof line, "|-- sup (tr_supervisor, id %llu) "
             "[supervisor]\n", (unsigned long long)s_fx.sup);
    s_out_has(line);
    snprintf(line, sizeof line, "|   |-- kid_a (tt_echo, id %llu)\n",
             (unsigned long long)s_fx.kid_a);
    s_out_has(line);
    snprintf(line, sizeof line, "|   `-- <tt_echo> (id %llu)\n",
             (unsigned long long)s_fx.kid_b);
    s_out_has(line);
    s_out_has("<tr_pool_worker>");
    s_out_has("not under a supervisor:");
    s_out_has("    e1 (tt_echo, id ");
    s_out_has("    pool (tr_pool, id ");

    S_RUN(0, "tree", s_fx.name, "--json");
    char code[1024];
    snprintf(code, sizeof code,
             "t = json.load(open(p))\n"
             "assert t['supervisor'] is True and t['id'] == %llu, t\n"
             "sup = [c for c in t['children'] if c['name'] == 'sup'][0]\n"
             "assert sup['supervisor'] and sup['id'] == %llu\n"
             "assert [c['name'] for c in sup['children']] == ['kid_a', '']\n"
             "assert all(not c['supervisor'] for c in sup['children'])\n",
             (unsigned long long)tr_node_root(s_fx.node),
             (unsigned long long)s_fx.sup);
    s_python_out(code);
    s_node_destroy();
}
END_TEST

START_TEST(info_and_pools_tell_the_node_and_its_pool)
{
    s_node("info");
    S_RUN(0, "info", s_fx.pid);
    char line[128];
    snprintf(line, sizeof line, "name      %s\n", s_fx.name);
    s_out_has(line);
    snprintf(line, sizeof line, "pid       %ld\n", (long)getpid());
    s_out_has(line);
    snprintf(line, sizeof line, "dir       %s\n", s_fx.node->rundir);
    s_out_has(line);
    s_out_has("\nstats\n  spawned ");

    S_RUN(0, "info", s_fx.pid, "--json");
    tr_node_stats_t st;
    ts_stats(s_fx.node, &st);
    char code[1024];
    snprintf(code, sizeof code,
             "i = json.load(open(p))\n"
             "assert i['name'] == '%s' and i['pid'] == %ld, i\n"
             "assert i['actors'] == %llu and i['uptime_ms'] >= 0, i\n"
             "assert i['dir'] == '%s', i\n"
             "assert i['stats']['spawned'] >= %llu, i\n",
             s_fx.name, (long)getpid(), (unsigned long long)st.alive,
             s_fx.node->rundir, (unsigned long long)st.spawned);
    s_python_out(code);

    S_RUN(0, "pools", s_fx.pid);
    s_out_has("WORKERS");
    s_out_has(" pool ");
    /* A pool shows its counters to the endpoint every 250 ms at most (and
     * on a message 20 ms after the last time): wait for both workers. */
    int64_t deadline = ts_now_ms() + TS_CALL_MS;
    do {
        S_RUN(0, "pools", s_fx.pid, "--json");
    } while (strstr(s_r.out, "\"workers\":2,") == NULL &&
             ts_now_ms() < deadline &&
             nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL) == 0);
    snprintf(code, sizeof code,
             "a = json.load(open(p))\n"
             "assert len(a) == 1 and a[0]['name'] == 'pool', a\n"
             "assert a[0]['id'] == %llu and a[0]['workers'] == 2, a\n"
             "assert a[0]['worker_deaths'] == 0, a\n",
             (unsigned long long)tr_pool_id(s_fx.pool));
    s_python_out(code);
    s_node_destroy();
}
END_TEST

START_TEST(ls_lists_this_node)
{
    s_node("ls");
    S_RUN(0, "ls");
    s_out_has(s_fx.name);
    s_out_has(s_fx.node->rundir);
    S_RUN(0, "ls", "--json");
    tr_node_stats_t st;
    ts_stats(s_fx.node, &st);
    char code[1024];
    snprintf(code, sizeof code,
             "a = [x for x in json.load(open(p)) if x['pid'] == %ld]\n"
             "assert len(a) == 1, a\n"
             "x = a[0]\n"
             "assert x['name'] == '%s' and x['dir'] == '%s', x\n"
             "assert x['status'] == 'up' and x['actors'] == %llu, x\n"
             "assert x['uptime_ms'] >= 0, x\n",
             (long)getpid(), s_fx.name, s_fx.node->rundir,
             (unsigned long long)st.alive);
    s_python_out(code);
    s_node_destroy();
}
END_TEST

/* ------------------------------------------------------------------ */
/* top                                                                 */
/* ------------------------------------------------------------------ */

START_TEST(top_prints_one_frame_when_not_on_a_terminal)
{
    s_node("top");
    for (int i = 0; i < 20; i++)
        ts_tell(s_fx.node, "e1", ts_msg("x"));
    /* stdout is a pipe: one frame, two looks --delay apart, no escape
     * sequences. */
    S_RUN(0, "top", s_fx.pid, "--delay", "50");
    char head[128];
    snprintf(head, sizeof head, "troupe top - node '%s' pid %ld, up ",
             s_fx.name, (long)getpid());
    s_out_has(head);
    s_out_has("IN/s");
    s_out_has("MAILBOX");
    s_out_has(" e1 ");
    s_out_has(" kid_a ");
    ck_assert_ptr_null(strchr(s_r.out, '\033'));
    /* --once also on a terminal; --sort name puts e1 before kid_a. */
    S_RUN(0, "top", s_fx.pid, "--once", "--delay", "10", "--sort", "name");
    const char *e1 = strstr(s_r.out, " e1 "), *kid = strstr(s_r.out, " kid_a ");
    ck_assert_msg(e1 != NULL && kid != NULL && e1 < kid, "%s", s_r.out);
    s_node_destroy();
}
END_TEST

/* troupe top on a pseudo-terminal, as a person runs it: what it wrote
 * (escape sequences and all), its pid and pidfd, and both ends of the
 * terminal; the slave stays open here too, so that its modes can be read
 * once the command has ended. */
typedef struct {
    int master, slave, pidfd;
    pid_t pid;
    char *out;
    size_t len;
    char frame[16384]; /* the last whole frame, after s_pty_frame */
} s_pty_t;

static void
s_pty_start(s_pty_t *t, const char *const *args)
{
    char *argv[64], wrap[512];
    s_tool_argv(args, argv, wrap);
    memset(t, 0, sizeof *t);
    /* Rows enough for every actor of s_node, so that none is cut. */
    struct winsize ws = {.ws_row = 50, .ws_col = 200};
    ck_assert_int_eq(openpty(&t->master, &t->slave, NULL, NULL, &ws), 0);
    struct termios tio;
    ck_assert_int_eq(tcgetattr(t->slave, &tio), 0);
    ck_assert(tio.c_lflag & ICANON && tio.c_lflag & ECHO); /* as it starts */
    t->out = calloc(1, S_OUT_MAX + 1);
    ck_assert_ptr_nonnull(t->out);
    t->pid = fork();
    ck_assert_int_ge(t->pid, 0);
    if (t->pid == 0) {
        /* This process has the node's threads: only plain system calls
         * until exec. A session of its own, with the pty as its
         * controlling terminal, so that Ctrl-C on it sends SIGINT. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setsid();
        if (ioctl(t->slave, TIOCSCTTY, 0) != 0 || dup2(t->slave, 0) < 0 ||
            dup2(t->slave, 1) < 0 || dup2(t->slave, 2) < 0)
            _exit(126);
        close(t->master);
        close(t->slave);
        execvp(argv[0], argv);
        _exit(127);
    }
    t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
    ck_assert_msg(t->pidfd >= 0, "pidfd_open: %s", strerror(errno));
    ck_assert_int_eq(fcntl(t->master, F_SETFL, O_NONBLOCK), 0);
}

/* Read what the command wrote so far (past S_OUT_MAX it is dropped: the
 * command must never block on us). */
static void
s_pty_drain(s_pty_t *t)
{
    char scratch[4096];
    for (;;) {
        size_t room = S_OUT_MAX - t->len;
        ssize_t n = read(t->master, room ? t->out + t->len : scratch,
                         room ? room : sizeof scratch);
        if (n > 0 && room)
            t->len += (size_t)n;
        else if (n <= 0 && errno != EINTR)
            return; /* EAGAIN: nothing more now */
    }
}

/* The end of what the command wrote, for a failure's message (which
 * must stay short enough for Check to pass on). */
static const char *
s_pty_tail(const s_pty_t *t)
{
    return t->out + (t->len > 3000 ? t->len - 3000 : 0);
}

/* The last whole frame into t->frame: from a cursor home to the erase
 * below that ends it. */
static bool
s_pty_frame(s_pty_t *t)
{
    const char *end = NULL, *home = NULL;
    for (const char *p = t->out; (p = strstr(p, "\033[J")) != NULL; p++)
        end = p;
    for (const char *p = t->out; end && (p = strstr(p, "\033[H")) != NULL &&
                                 p < end;
         p++)
        home = p;
    if (home == NULL)
        return false;
    snprintf(t->frame, sizeof t->frame, "%.*s", (int)(end - home), home);
    return true;
}

/* Wait until a whole frame holds every one of want (NULL-terminated);
 * then it is in t->frame. */
static void
s_pty_wait_frame(s_pty_t *t, const char *const *want)
{
    int64_t deadline = ts_now_ms() + S_DEADLINE_MS;
    for (;;) {
        s_pty_drain(t);
        if (s_pty_frame(t)) {
            bool all = true;
            for (int i = 0; want[i] != NULL && all; i++)
                all = strstr(t->frame, want[i]) != NULL;
            if (all)
                return;
        }
        int64_t left = deadline - ts_now_ms();
        ck_assert_msg(left > 0, "no frame with '%s' within %d ms; the "
                      "last it wrote:\n%s", want[0], S_DEADLINE_MS,
                      s_pty_tail(t));
        struct pollfd p[2] = {{.fd = t->master, .events = POLLIN},
                              {.fd = t->pidfd, .events = POLLIN}};
        ck_assert_int_ge(poll(p, 2, (int)left), 0);
        ck_assert_msg(!(p[1].revents & POLLIN), "troupe top ended:\n%s",
                      s_pty_tail(t));
    }
}

/* Wait for the command to exit, reading what it writes; its exit status
 * (-1: killed by a signal). */
static int
s_pty_wait_exit(s_pty_t *t)
{
    int64_t deadline = ts_now_ms() + S_DEADLINE_MS;
    for (;;) {
        s_pty_drain(t);
        int64_t left = deadline - ts_now_ms();
        if (left <= 0)
            kill(t->pid, SIGKILL);
        struct pollfd p[2] = {{.fd = t->master, .events = POLLIN},
                              {.fd = t->pidfd, .events = POLLIN}};
        ck_assert_int_ge(poll(p, 2, left > 0 ? (int)left : -1), 0);
        if (p[1].revents & POLLIN)
            break;
    }
    int status;
    ck_assert_int_eq(waitpid(t->pid, &status, 0), t->pid);
    s_pty_drain(t); /* all it wrote is in the pty by now */
    ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL,
                  "troupe top did not end within %d ms:\n%s", S_DEADLINE_MS,
                  s_pty_tail(t));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
s_pty_close(s_pty_t *t)
{
    close(t->pidfd);
    close(t->master);
    close(t->slave);
    free(t->out);
}

/* Is the terminal in the mode it had before (lines, echo)? */
static bool
s_pty_cooked(const s_pty_t *t)
{
    struct termios tio;
    ck_assert_int_eq(tcgetattr(t->slave, &tio), 0);
    return (tio.c_lflag & ICANON) && (tio.c_lflag & ECHO);
}

/* Position of the row of the actor named name in the last frame. */
static const char *
s_row(const s_pty_t *t, const char *name)
{
    char cell[64];
    snprintf(cell, sizeof cell, " %s ", name);
    const char *at = strstr(t->frame, cell);
    ck_assert_msg(at != NULL, "no row '%s' in:\n%s", name, t->frame);
    return at;
}

/* A frame drawn; the keys; then the way out (key) gives the terminal back
 * as it was and exits 0. */
static void
s_top_quits_with(const char *key)
{
    s_node("toppty");
    /* kid_a waits in its handler with five messages behind it: first by
     * mailbox depth, after e1 by name. */
    ts_gate_block(s_fx.node, "kid_a");
    for (int i = 0; i < 5; i++)
        ts_tell(s_fx.node, "kid_a", ts_msg("x"));
    s_pty_t t;
    s_pty_start(&t, (const char *[]){"top", s_fx.pid, "--delay", "100",
                                     NULL});
    s_pty_wait_frame(&t, (const char *[]){"sort: mailbox", " e1 ", " kid_a ",
                                          NULL});
    ck_assert_ptr_nonnull(strstr(t.out, "\033[?1049h")); /* its own screen */
    ck_assert_msg(!s_pty_cooked(&t), "keys are not taken one at a time");
    ck_assert_msg(s_row(&t, "kid_a") < s_row(&t, "e1"), "%s", t.frame);

    /* n sorts by name at once, without waiting for the next look. */
    ck_assert_int_eq(write(t.master, "n", 1), 1);
    s_pty_wait_frame(&t, (const char *[]){"sort: name", " e1 ", " kid_a ",
                                          NULL});
    ck_assert_msg(s_row(&t, "e1") < s_row(&t, "kid_a"), "%s", t.frame);
    ck_assert_msg(s_row(&t, "gate") < s_row(&t, "kid_a"), "%s", t.frame);
    /* m goes back. */
    ck_assert_int_eq(write(t.master, "m", 1), 1);
    s_pty_wait_frame(&t, (const char *[]){"sort: mailbox", NULL});
    ck_assert_msg(s_row(&t, "kid_a") < s_row(&t, "e1"), "%s", t.frame);

    size_t before = t.len;
    ck_assert_int_eq(write(t.master, key, strlen(key)), (ssize_t)strlen(key));
    ck_assert_int_eq(s_pty_wait_exit(&t), 0);
    /* The cursor and the main screen come back last, and the modes. */
    const char *back = strstr(t.out + before, "\033[?25h\033[?1049l");
    ck_assert_msg(back != NULL, "the screen was not given back:\n%s",
                  s_pty_tail(&t));
    ck_assert_ptr_null(strstr(back, "\033[?1049h"));
    ck_assert_msg(s_pty_cooked(&t), "the terminal modes were not restored");
    s_pty_close(&t);
    ts_gate_open(s_fx.node);
    s_node_destroy();
}

START_TEST(top_on_a_terminal_sorts_by_key_and_q_gives_it_back)
{
    s_top_quits_with("q");
}
END_TEST

START_TEST(top_on_a_terminal_ends_on_ctrl_c_and_gives_it_back)
{
    /* ^C through the terminal: SIGINT, as a person's Ctrl-C. */
    s_top_quits_with("\003");
}
END_TEST

/* ------------------------------------------------------------------ */
/* stop, restart                                                       */
/* ------------------------------------------------------------------ */

START_TEST(stop_ends_an_actor_by_name_or_id)
{
    s_node("stop");
    S_RUN(0, "stop", s_fx.pid, "e1");
    s_out_has("asked e1 (id ");
    int reason = 0;
    ck_assert_int_eq(tr_join(s_fx.node, s_fx.e1, TS_CALL_MS, &reason), 0);
    ck_assert_int_eq(reason, TR_ESHUTDOWN);

    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)s_fx.anon);
    S_RUN(0, "stop", s_fx.name, id);
    ck_assert_int_eq(tr_join(s_fx.node, s_fx.anon, TS_CALL_MS, &reason), 0);

    /* Gone now: no such actor. */
    S_RUN(1, "stop", s_fx.pid, "e1");
    s_err_has("has no actor 'e1'");
    S_RUN(1, "restart", s_fx.pid, id);
    s_node_destroy();
}
END_TEST

START_TEST(restart_makes_the_supervisor_start_the_child_again)
{
    s_node("restart");
    char label[32];
    snprintf(label, sizeof label, "kid_a#%llx", (unsigned long long)s_fx.kid_a);
    S_RUN(0, "restart", s_fx.pid, label); /* a log line's label works */
    s_out_has("ended kid_a (id ");
    int reason = 0;
    ck_assert_int_eq(tr_join(s_fx.node, s_fx.kid_a, TS_CALL_MS, &reason), 0);
    ck_assert_int_lt(reason, 0);
    ck_assert_int_ne(reason, TR_ESHUTDOWN);
    /* The kept name comes back on a new actor. */
    tr_id_t now = 0;
    int64_t deadline = ts_now_ms() + TS_CALL_MS;
    while ((tr_whereis(s_fx.node, "kid_a", &now) != 0 || now == s_fx.kid_a) &&
           ts_now_ms() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    ck_assert_uint_ne(now, 0);
    ck_assert_uint_ne(now, s_fx.kid_a);
    S_RUN(0, "ps", s_fx.pid, "--json");
    char code[512];
    snprintf(code, sizeof code,
             "k = [x for x in json.load(open(p)) if x['name'] == 'kid_a']\n"
             "assert len(k) == 1 and k[0]['id'] == %llu, k\n"
             "assert k[0]['restarts'] == 1, k\n"
             "assert k[0]['last_failure'] != '', k\n",
             (unsigned long long)now);
    s_python_out(code);
    s_node_destroy();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

START_TEST(a_missing_or_gone_node_exits_1_with_a_message)
{
    /* A pid that runs no node: this one, before it makes a node. */
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    S_RUN(1, "ps", pid);
    s_err_has("no node '");
    S_RUN(1, "info", "no_such_node_name");
    s_err_has("no node 'no_such_node_name'");
    S_RUN(1, "tree", "/nonexistent/troupe/dir");
    s_err_has("no node there");

    /* A node that was there: its directory goes with it. */
    s_node("gone");
    char dir[256];
    snprintf(dir, sizeof dir, "%s", s_fx.node->rundir);
    S_RUN(0, "ps", dir);
    s_node_destroy();
    S_RUN(1, "ps", dir);
    s_err_has("no node there");
    S_RUN(1, "ps", pid);
    ck_assert_uint_eq(s_r.len[0], 0);
}
END_TEST

START_TEST(a_killed_nodes_directory_is_stale_and_the_node_gone)
{
    /* The next node that starts under a runtime directory removes the
     * stale ones there (runtime/rundir.c), whoever runs it: this test's
     * nodes get a runtime directory of their own, and the command looks
     * there too. */
    char xdg[64];
    ts_tmpdir(xdg, sizeof xdg, "tools-xdg");
    ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", xdg, 1), 0);
    /* A node in a child process, which says where its directory is and
     * then waits to be killed: SIGKILL leaves the directory behind. */
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        tr_node_t *node = NULL;
        char name[64];
        snprintf(name, sizeof name, "tt_killed_%ld", (long)getpid());
        if (tr_node_create(&node, &(tr_node_opts_t){.name = name}) != 0)
            _exit(1);
        size_t len = strlen(node->rundir) + 1;
        if (write(p[1], node->rundir, len) != (ssize_t)len)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    char dir[256] = "";
    size_t len = 0;
    ssize_t n;
    while ((len == 0 || dir[len - 1] != '\0') && len < sizeof dir - 1 &&
           (n = read(p[0], dir + len, sizeof dir - 1 - len)) > 0)
        len += (size_t)n;
    dir[len] = '\0';
    close(p[0]);
    ck_assert_msg(len > 0 && dir[len - 1] == '\0', "no directory from the "
                  "child (%zu bytes)", len);
    ck_assert_msg(strncmp(dir, xdg, strlen(xdg)) == 0, "%s is not in %s",
                  dir, xdg);
    char spid[24], name[64];
    snprintf(spid, sizeof spid, "%ld", (long)pid);
    snprintf(name, sizeof name, "tt_killed_%ld", (long)pid);
    S_RUN(0, "ps", spid); /* up, before */
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0); /* left behind */

    /* ls skips it; ls --all lists it as stale. */
    S_RUN(0, "ls");
    ck_assert_ptr_null(strstr(s_r.out, dir));
    S_RUN(0, "ls", "--all");
    char line[512] = "";
    const char *at = strstr(s_r.out, dir);
    ck_assert_msg(at != NULL, "no %s in:\n%s", dir, s_r.out);
    while (at > s_r.out && at[-1] != '\n')
        at--;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
    ck_assert_msg(strncmp(line + strspn(line, " "), spid, strlen(spid)) == 0 &&
                      strstr(line, name) != NULL &&
                      strstr(line, " stale ") != NULL,
                  "not a stale row: %s", line);
    S_RUN(0, "ls", "--all", "--json");
    char code[1024];
    snprintf(code, sizeof code,
             "a = [x for x in json.load(open(p)) if x['dir'] == '%s']\n"
             "assert len(a) == 1, a\n"
             "x = a[0]\n"
             "assert x['status'] == 'stale' and x['pid'] == %ld, x\n"
             "assert x['name'] == '%s', x\n"
             "assert x['actors'] is None and x['uptime_ms'] is None, x\n",
             dir, (long)pid, name);
    s_python_out(code);

    /* Named by pid, by name or by directory: gone, said plainly. */
    S_RUN(1, "ps", spid);
    snprintf(line, sizeof line, "troupe: node '%s' is gone (its process has "
             "ended)\n", spid);
    s_err_has(line);
    ck_assert_uint_eq(s_r.len[0], 0);
    S_RUN(1, "info", name);
    s_err_has("is gone (its process has ended)");
    S_RUN(1, "ps", dir);
    snprintf(line, sizeof line, "node '%s' (pid %ld) in %s is gone\n", name,
             (long)pid, dir);
    s_err_has(line);
    ts_rmtree(xdg);
}
END_TEST

START_TEST(a_silent_or_refusing_node_exits_1_in_time)
{
    /* A directory that looks like a node's (a `node` file naming this
     * live process), first with a ROUTER that never answers ... */
    char dir[64], path[128], ep[160];
    ts_tmpdir(dir, sizeof dir, "tools-fake");
    snprintf(path, sizeof path, "%s/node", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "fake %ld %lld\n", (long)getpid(), (long long)time(NULL) * 1000);
    fclose(f);
    snprintf(path, sizeof path, "%s/control", dir);
    snprintf(ep, sizeof ep, "ipc://%s", path);
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_bind(router, ep), 0);
    int64_t t0 = ts_now_ms();
    S_RUN(1, "ps", dir, "--timeout", "300");
    s_err_has("did not answer 'ps' within 300 ms");
    ck_assert_int_lt(ts_now_ms() - t0, S_DEADLINE_MS / 2);
    S_RUN(1, "top", dir, "--once", "--timeout", "200");
    s_err_has("did not answer");
    zmq_close(router);
    zmq_ctx_term(ctx);

    /* ... then with a socket file nobody listens on. */
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_int_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd); /* bound, never listened on: connect is refused */
    S_RUN(1, "info", dir);
    s_err_has("refuses connections");
    ts_rmtree(dir);
}
END_TEST

START_TEST(a_pid_with_two_nodes_is_ambiguous)
{
    s_node("two");
    tr_node_t *other = ts_node(&(tr_node_opts_t){.name = s_fx.name});
    /* Same pid, same name: both are refused, and both directories are
     * named so that one can be picked. */
    S_RUN(1, "ps", s_fx.pid);
    s_err_has("is ambiguous: 2 nodes match");
    s_err_has(s_fx.node->rundir);
    s_err_has(other->rundir);
    ck_assert_uint_eq(s_r.len[0], 0);
    S_RUN(1, "info", s_fx.name);
    s_err_has("is ambiguous");
    const char *base = strrchr(other->rundir, '/') + 1;
    S_RUN(0, "info", base, "--json"); /* the directory's name is enough */
    char code[256];
    snprintf(code, sizeof code,
             "i = json.load(open(p))\n"
             "assert i['dir'] == '%s' and i['actors'] == 0, i\n",
             other->rundir);
    s_python_out(code);
    ts_destroy(&other);
    s_node_destroy();
}
END_TEST

START_TEST(usage_errors_exit_2)
{
    S_RUN(2, "frobnicate");
    s_err_has("unknown command 'frobnicate'");
    s_err_has("usage: troupe");
    S_RUN(2, "ps");
    s_err_has("missing argument");
    S_RUN(2, "ps", "1", "2");
    S_RUN(2, "ps", "1", "--frob");
    s_err_has("unknown option '--frob'");
    S_RUN(2, "ls", "--timeout");
    s_err_has("needs a value");
    S_RUN(2, "top", "1", "--delay", "x");
    S_RUN(2, "top", "1", "--sort", "size");
    s_err_has("--sort: 'size' is none of");
    S_RUN(2, "stop", "1");
    S_RUN(2, "trace");
    S_RUN(0, "--help");
    s_out_has("usage: troupe COMMAND");
    s_out_has("keygen");
}
END_TEST

/* ------------------------------------------------------------------ */
/* keygen                                                              */
/* ------------------------------------------------------------------ */

static void
s_read_key(const char *path, char *key, mode_t mode)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 0777) == mode, "%s: mode %o, not %o", path,
                  (unsigned)(st.st_mode & 0777), (unsigned)mode);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[128];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_int_eq(strlen(line), 41); /* 40 Z85 characters and \n */
    memcpy(key, line, 40);
    key[40] = '\0';
}

/* A key pair into dir/name.key (0600); its public key into pub. */
static void
s_keyfile(const char *dir, const char *name, char *pub, char *path,
          size_t cap)
{
    char sec[41];
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    snprintf(path, cap, "%s/%s.key", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", sec);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
}

START_TEST(ps_and_info_reach_a_node_over_tcp_with_its_keys)
{
    char dir[256], nkey[320], ckey[320], okey[320], cluster[320];
    char npub[41], cpub[41], opub[41];
    ts_tmpdir(dir, sizeof dir, "troupe-cli-keys");
    s_keyfile(dir, "node", npub, nkey, sizeof nkey);
    s_keyfile(dir, "cli", cpub, ckey, sizeof ckey);
    s_keyfile(dir, "other", opub, okey, sizeof okey);
    snprintf(cluster, sizeof cluster, "%s/cluster", dir);
    FILE *f = fopen(cluster, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "n %s\ncli %s\n", npub, cpub);
    fclose(f);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "n",
                                                .listen = "tcp://127.0.0.1:*",
                                                .key_file = nkey,
                                                .cluster_file = cluster});
    ts_spawn(node, "tt_echo", "far_echo");
    char ep[128];
    ck_assert_int_eq(tr_node_endpoint(node, ep, sizeof ep), 0);
    ck_assert_int_eq(setenv("TROUPE_KEY", ckey, 1), 0);
    ck_assert_int_eq(setenv("TROUPE_SERVER_KEY", npub, 1), 0);
    S_RUN(0, "ps", ep);
    s_out_has("far_echo");
    S_RUN(0, "ps", ep, "--json");
    s_out_has("\"far_echo\"");
    S_RUN(0, "info", ep);
    s_out_has("n");
    /* a key the node's cluster file does not have: refused, in time */
    ck_assert_int_eq(setenv("TROUPE_KEY", okey, 1), 0);
    S_RUN(1, "ps", ep, "--timeout", "1500");
    s_err_has("did not answer");
    /* no keys at all: a usage error that says what is missing */
    ck_assert_int_eq(unsetenv("TROUPE_SERVER_KEY"), 0);
    S_RUN(2, "ps", ep);
    s_err_has("TROUPE_SERVER_KEY");
    ck_assert_int_eq(unsetenv("TROUPE_KEY"), 0);
    ts_destroy(&node);
    ts_rmtree(dir);
}
END_TEST

START_TEST(keygen_writes_a_curve_pair_and_will_not_overwrite_it)
{
    char tmp[64], dir[96], key[128], pub[128];
    ts_tmpdir(tmp, sizeof tmp, "tools-keys");
    snprintf(dir, sizeof dir, "%s/keys", tmp); /* made by keygen */
    snprintf(key, sizeof key, "%s/node.key", dir);
    snprintf(pub, sizeof pub, "%s/node.pub", dir);
    mode_t old = umask(0); /* the modes must not depend on the umask */
    S_RUN(0, "keygen", dir);
    umask(old);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    char secret[41], public[41], derived[41];
    s_read_key(key, secret, 0600);
    s_read_key(pub, public, 0644);
    /* The public key is the secret's. */
    ck_assert_int_eq(zmq_curve_public(derived, secret), 0);
    ck_assert_str_eq(derived, public);
    s_out_has(public);

    S_RUN(1, "keygen", dir);
    s_err_has("exists: not overwriting");
    char again[41];
    s_read_key(key, again, 0600);
    ck_assert_str_eq(again, secret);

    S_RUN(0, "keygen", dir, "--force");
    s_read_key(key, again, 0600);
    ck_assert_str_ne(again, secret);
    s_read_key(pub, public, 0644);
    ck_assert_int_eq(zmq_curve_public(derived, again), 0);
    ck_assert_str_eq(derived, public);
    ck_assert_int_eq(ts_count_dir(dir), 2); /* no temporary file left */
    ts_rmtree(tmp);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Traces                                                              */
/* ------------------------------------------------------------------ */

/* What the trace file itself holds (read here, not by the tool). */
typedef struct {
    int records, sends, recvs, spawns, exits, restarts;
    int sends_tag, recvs_tag; /* of the tag asked for */
    int crashes;              /* EXIT with a reason < 0, not a stop */
    uint64_t ids[256];        /* distinct actor ids (a and b) */
    int nids;
} s_trace_t;

static void
s_trace_add_id(s_trace_t *t, uint64_t id)
{
    if (id == 0)
        return;
    for (int i = 0; i < t->nids; i++)
        if (t->ids[i] == id)
            return;
    ck_assert_int_lt(t->nids, 256);
    t->ids[t->nids++] = id;
}

static uint64_t
s_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

typedef struct {
    uint64_t a, b;
    int32_t size;
    int kind;
    char text[33];
} s_rec_t;

/* A trace and the files of its process actors (path.<pid>), read here,
 * not by the tool. */
typedef struct {
    s_rec_t *r;
    size_t n;
    int files;
} s_recs_t;

static void
s_recs_file(s_recs_t *t, const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    unsigned char rec[64];
    ck_assert_int_eq(fread(rec, 1, 16, f), 16);
    ck_assert_int_eq(memcmp(rec, "TRTRACE1", 8), 0);
    while (fread(rec, 1, 64, f) == 64) {
        if (t->n % 256 == 0) {
            t->r = realloc(t->r, (t->n + 256) * sizeof *t->r);
            ck_assert_ptr_nonnull(t->r);
        }
        s_rec_t *r = &t->r[t->n++];
        r->a = s_le(rec + 8, 8);
        r->b = s_le(rec + 16, 8);
        r->size = (int32_t)s_le(rec + 24, 4);
        r->kind = rec[28];
        memcpy(r->text, rec + 32, 32);
        r->text[32] = '\0';
    }
    fclose(f);
    t->files++;
}

static void
s_trace_read(const char *path, const char *tag, s_trace_t *t)
{
    s_recs_t rs = {0};
    s_recs_file(&rs, path);
    for (size_t i = 0; i < rs.n; i++) {
        const s_rec_t *r = &rs.r[i];
        t->records++;
        s_trace_add_id(t, r->a);
        s_trace_add_id(t, r->b);
        bool is_tag = tag != NULL && strcmp(r->text, tag) == 0;
        switch (r->kind) {
        case 1: t->sends++, t->sends_tag += is_tag; break;
        case 2: t->recvs++, t->recvs_tag += is_tag; break;
        case 3: t->spawns++; break;
        case 4:
            t->exits++;
            t->crashes += r->size < 0 && r->size != TR_ESHUTDOWN;
            break;
        case 5: t->restarts++; break;
        }
    }
    free(rs.r);
}

/* How many times needle is in the last command's output file. */
static int
s_count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *text = NULL;
    size_t cap = 0;
    ssize_t len = getdelim(&text, &cap, '\0', f);
    fclose(f);
    ck_assert_int_gt(len, 0);
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

#define S_PINGS 120

START_TEST(a_trace_counts_what_was_sent_and_converts_to_json_and_svg)
{
    char dir[64], trace[96], json[128], svg[128];
    ts_tmpdir(dir, sizeof dir, "tools-trace");
    snprintf(trace, sizeof trace, "%s/run.trace", dir);
    snprintf(json, sizeof json, "%s/run.json", dir);
    snprintf(svg, sizeof svg, "%s/run.svg", dir);
    ck_assert_int_eq(setenv("TROUPE_TRACE", trace, 1), 0);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "traced"});
    ck_assert_int_eq(unsetenv("TROUPE_TRACE"), 0);
    ts_spawn(node, "tt_sink", "sink");
    ts_spawn(node, "tt_pinger", "pinger");
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "pinger", ts_msg_i("go", S_PINGS), 1,
                                  &n),
                     0);
    ck_assert_int_eq(n, S_PINGS);
    ck_assert_int_eq(ts_call_ints(node, "sink", ts_msg_i("wait", S_PINGS), 1,
                                  &n),
                     0);
    ck_assert_int_eq(n, S_PINGS);
    /* A tag that needs escaping in JSON and in XML. */
    ts_tell(node, "sink", ts_msg("<a&b>\"q'\\"));
    /* ... taken before the node ends: a call after it (one sender's
     * messages arrive in order) */
    ck_assert_int_eq(ts_call_ints(node, "sink", ts_msg_i("wait", S_PINGS), 1,
                                  &n),
                     0);
    ts_destroy(&node); /* writes every buffer out */

    s_trace_t t = {0};
    s_trace_read(trace, "ping", &t);
    ck_assert_int_eq(t.sends_tag, S_PINGS);
    ck_assert_int_eq(t.recvs_tag, S_PINGS);

    /* The summary agrees with the file. */
    S_RUN(0, "trace", trace);
    s_out_has("SEND");
    s_out_has("ping");
    S_RUN(0, "trace", trace, "--json");
    char code[2048];
    snprintf(code, sizeof code,
             "s = json.load(open(p))\n"
             "assert s['records'] == %d, s['records']\n"
             "k = s['kinds']\n"
             "assert k['SEND'] == %d and k['RECV'] == %d, k\n"
             "assert k['SPAWN'] == %d and k['EXIT'] == %d, k\n"
             "tags = {x['tag']: x for x in s['tags']}\n"
             "assert tags['ping'] == {'tag': 'ping', 'sent': %d, "
             "'received': %d}, tags\n"
             "assert '<a&b>\"q\\'\\\\' in tags, tags\n"
             "a = {x['name']: x for x in s['actors']}\n"
             "assert a['pinger']['sent'] >= %d, a\n"
             "assert a['sink']['received'] >= %d, a\n"
             "assert len(s['actors']) == %d, s['actors']\n",
             t.records, t.sends, t.recvs, t.spawns, t.exits, S_PINGS,
             S_PINGS, S_PINGS, S_PINGS, t.nids);
    s_python_out(code);

    /* Perfetto: loads as JSON, a named track per actor, a flow per
     * message (an 's' and an 'f' with the same id). */
    S_RUN(0, "trace", trace, "--perfetto", json);
    snprintf(code, sizeof code,
             "d = json.load(open(p))\n"
             "ev = d['traceEvents']\n"
             "names = [e for e in ev if e['ph'] == 'M' and "
             "e['name'] == 'thread_name']\n"
             "assert len(names) == %d, names\n"
             "s = {e['id'] for e in ev if e['ph'] == 's'}\n"
             "f = {e['id'] for e in ev if e['ph'] == 'f'}\n"
             "assert s == f and len(s) >= %d, (len(s), len(f))\n"
             "pings = [e for e in ev if e['ph'] == 'X' and "
             "e['name'] == 'send ping']\n"
             "assert len(pings) == %d\n"
             "assert all(e['ts'] >= 0 for e in ev if 'ts' in e)\n",
             t.nids, S_PINGS, S_PINGS);
    s_python(json, code);

    /* SVG: well-formed XML, one lifeline per actor, an arrow per
     * message. */
    S_RUN(0, "trace", trace, "--svg", svg);
    s_python(svg, "xml.dom.minidom.parse(p)");
    snprintf(code, sizeof code,
             "d = xml.dom.minidom.parse(p)\n"
             "g = [e for e in d.getElementsByTagName('g')]\n"
             "lanes = [e for e in g if e.getAttribute('class') == "
             "'lifeline']\n"
             "assert len(lanes) == %d, len(lanes)\n"
             "msgs = [e for e in g if e.getAttribute('class') == 'message']\n"
             "assert len(msgs) == %d, len(msgs)\n"
             "texts = [t.firstChild.data for t in "
             "d.getElementsByTagName('text') if t.firstChild]\n"
             "assert '<a&b>\"q\\'\\\\' in texts, texts\n",
             t.nids, t.sends);
    s_python(svg, code);
    ck_assert_int_eq(s_count_in_file(svg, "class=\"lifeline\""), t.nids);

    /* Past --max messages, the diagram stops and says so. */
    S_RUN(0, "trace", trace, "--svg", svg, "--max", "10");
    s_err_has("shows the first 10 of");
    s_python(svg, "d = xml.dom.minidom.parse(p)\n"
                  "m = [e for e in d.getElementsByTagName('g') if "
                  "e.getAttribute('class') == 'message']\n"
                  "assert len(m) == 10, len(m)\n");
    ck_assert_int_eq(s_count_in_file(svg, "--max"), 2);

    /* Not a trace; no such file. */
    S_RUN(1, "trace", json);
    s_err_has("is not a troupe trace");
    S_RUN(1, "trace", "/nonexistent.trace");
    ts_rmtree(dir);
}
END_TEST

START_TEST(a_trace_shows_a_crash_and_the_restart)
{
    char dir[64], trace[96], svg[128];
    ts_tmpdir(dir, sizeof dir, "tools-crash");
    snprintf(trace, sizeof trace, "%s/crash.trace", dir);
    snprintf(svg, sizeof svg, "%s/crash.svg", dir);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "crashy",
                                                .trace = trace});
    tr_child_spec_t kid = {.id = "w", .behaviour = "tt_echo",
                           .spawn = {.name = "worker"}};
    tr_id_t sup, old, now = 0;
    ck_assert_int_eq(tr_sup_start(node, &(tr_sup_opts_t){.name = "sup"}, &kid,
                                  1, &sup),
                     0);
    ck_assert_int_eq(tr_whereis(node, "worker", &old), 0);
    ts_tell(node, "worker", ts_msg("crash"));
    ck_assert_int_eq(tr_join(node, old, TS_CALL_MS, NULL), 0);
    int64_t deadline = ts_now_ms() + TS_CALL_MS;
    while ((tr_whereis(node, "worker", &now) != 0 || now == old) &&
           ts_now_ms() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    ck_assert_uint_ne(now, old);
    ts_tell(node, "worker", ts_msg("after"));
    ts_destroy(&node);

    s_trace_t t = {0};
    s_trace_read(trace, NULL, &t);
    ck_assert_int_eq(t.restarts, 1);
    ck_assert_int_eq(t.crashes, 1);
    S_RUN(0, "trace", trace, "--svg", svg);
    /* The restarted worker stays on its lifeline: one fewer than ids. */
    s_python(svg, "d = xml.dom.minidom.parse(p)\n");
    ck_assert_int_eq(s_count_in_file(svg, "class=\"lifeline\""), t.nids - 1);
    ck_assert_int_eq(s_count_in_file(svg, "class=\"crash\""), 1);
    ck_assert_int_eq(s_count_in_file(svg, "class=\"restart\""), 1);
    ts_rmtree(dir);
}
END_TEST

START_TEST(a_trace_merges_the_files_of_process_actors)
{
    char dir[64], trace[96], json[128];
    ts_tmpdir(dir, sizeof dir, "tools-proc");
    snprintf(trace, sizeof trace, "%s/proc.trace", dir);
    snprintf(json, sizeof json, "%s/proc.json", dir);
    /* The environment, so that the process actor's node traces too. */
    ck_assert_int_eq(setenv("TROUPE_TRACE", trace, 1), 0);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.name = "procs"});
    ck_assert_int_eq(tr_spawn(node, "tt_sink",
                              &(tr_spawn_opts_t){.name = "sink",
                                                 .mode = TR_PROCESS},
                              NULL),
                     0);
    ts_spawn(node, "tt_pinger", "pinger");
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "pinger", ts_msg_i("go", 10), 1, &n),
                     0);
    ck_assert_int_eq(ts_call_ints(node, "sink", ts_msg_i("wait", 10), 1, &n),
                     0);
    ck_assert_int_eq(n, 10);
    ts_destroy(&node);
    ck_assert_int_eq(unsetenv("TROUPE_TRACE"), 0);

    /* The sink's RECVs are in proc.trace.<its pid>. */
    s_trace_t t = {0};
    s_trace_read(trace, "ping", &t);
    ck_assert_int_eq(t.sends_tag, 10);
    ck_assert_int_eq(t.recvs_tag, 0);
    S_RUN(0, "trace", trace, "--json");
    s_python_out("s = json.load(open(p))\n"
                 "assert len(s['files']) == 2, s['files']\n"
                 "assert s['files'][1]['pid'] > 0, s['files']\n"
                 "tags = {x['tag']: x for x in s['tags']}\n"
                 "assert tags['ping']['sent'] == 10, tags\n"
                 "assert tags['ping']['received'] == 10, tags\n"
                 "a = {x['name']: x for x in s['actors']}\n"
                 "assert a['sink']['pid'] == s['files'][1]['pid'], a\n");
    S_RUN(0, "trace", trace, "--perfetto", json);
    s_python(json, "ev = json.load(open(p))['traceEvents']\n"
                   "f = [e for e in ev if e['ph'] == 'f' and "
                   "e['pid'] != 1]\n"
                   "assert len(f) >= 10, len(f)\n");
    ts_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The examples, traced                                                */
/* ------------------------------------------------------------------ */

/* A record of a trace as the file has it. */

static void
s_recs_load(s_recs_t *t, const char *dir, const char *base)
{
    memset(t, 0, sizeof *t);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, base);
    s_recs_file(t, path);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t len = strlen(base);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *tail = e->d_name + len;
        if (strncmp(e->d_name, base, len) != 0 || tail[0] != '.' ||
            tail[1] == '\0' || strspn(tail + 1, "0123456789") !=
                                   strlen(tail + 1))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s_recs_file(t, path);
    }
    closedir(d);
}

/* The runtime's helper (a process actor's node service): the diagram
 * leaves it out, and so does the count of what the example sent. */
static bool
s_helper(const s_recs_t *t, uint64_t id)
{
    for (size_t i = 0; i < t->n && id != 0; i++) {
        const char *beh = strchr(t->r[i].text, '/');
        if (t->r[i].kind == 3 && t->r[i].a == id && beh != NULL)
            return strncmp(beh + 1, "tr_node_", 8) == 0;
    }
    return false;
}

static bool
s_user(const s_recs_t *t, const s_rec_t *r)
{
    return !s_helper(t, r->a) && !s_helper(t, r->b);
}

/* How many SENDs (kind 1) or RECVs (2) of a to b with tag. */
static int
s_recs_count(const s_recs_t *t, int kind, uint64_t a, uint64_t b,
             const char *tag)
{
    int n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->r[i].kind == kind && t->r[i].a == a && t->r[i].b == b &&
             strcmp(t->r[i].text, tag) == 0;
    return n;
}

/* An example's messages of one tag, as it sends them. */
typedef struct {
    const char *tag;
    int sent;
} s_sent_t;

/* Run examples/<name> (arg may be NULL) with TROUPE_TRACE, and check its
 * trace against what it sent (want, ending with a NULL tag): as many
 * SENDs of each tag between its actors, no other, and a RECV for each
 * (the k-th SEND of a sender, receiver and tag is the k-th RECV: one
 * sender's messages to one receiver arrive in order). Then the tool's
 * summary, Perfetto JSON and SVG must agree with the files. */
static void
s_traced_example(const char *name, const char *arg, const s_sent_t *want)
{
    char var[64], dir[64], base[64], trace[160], out[192], code[2048];
    snprintf(var, sizeof var, "TR_EXAMPLE_%s", name);
    for (char *p = var; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    const char *exe = getenv(var);
    ck_assert_msg(exe != NULL, "%s is not set: run via meson test", var);
    ts_tmpdir(dir, sizeof dir, "tools-example");
    snprintf(base, sizeof base, "%s.trace", name);
    snprintf(trace, sizeof trace, "%s/%s", dir, base);

    /* The environment: process actors, which run the example again,
     * trace into trace.<pid>. */
    ck_assert_int_eq(setenv("TROUPE_TRACE", trace, 1), 0);
    char *argv[] = {(char *)exe, (char *)arg, NULL};
    int rc = s_exec(argv, name);
    ck_assert_int_eq(unsetenv("TROUPE_TRACE"), 0);
    ck_assert_msg(rc == 0, "%s: exit %d\n%s\n%s", name, rc, s_r.out, s_r.err);

    s_recs_t t;
    s_recs_load(&t, dir, base);
    int sends = 0, total = 0, pairs = 0, restarts = 0;
    for (size_t i = 0; i < t.n; i++) {
        const s_rec_t *r = &t.r[i];
        if (r->kind == 1 && s_user(&t, r)) {
            sends++;
            /* Each SEND has its RECV: as many of each (sender, receiver,
             * tag) as there are SENDs. */
            int s = s_recs_count(&t, 1, r->a, r->b, r->text);
            int g = s_recs_count(&t, 2, r->b, r->a, r->text);
            ck_assert_msg(g == s, "%s: %d '%s' sent from %llu to %llu, %d "
                          "received", name, s, r->text,
                          (unsigned long long)r->a,
                          (unsigned long long)r->b, g);
        }
        if (r->kind == 1) { /* every SEND with its RECV, for Perfetto */
            int before = 0;
            for (size_t k = 0; k < i; k++)
                before += t.r[k].kind == 1 && t.r[k].a == r->a &&
                          t.r[k].b == r->b &&
                          strcmp(t.r[k].text, r->text) == 0;
            pairs += before < s_recs_count(&t, 2, r->b, r->a, r->text);
        }
        restarts += r->kind == 5 && s_user(&t, r);
    }
    for (int i = 0; want[i].tag != NULL; i++) {
        int n = 0;
        for (size_t k = 0; k < t.n; k++)
            n += t.r[k].kind == 1 && s_user(&t, &t.r[k]) &&
                 strcmp(t.r[k].text, want[i].tag) == 0;
        ck_assert_msg(n == want[i].sent, "%s sent %d '%s', its trace has %d",
                      name, want[i].sent, want[i].tag, n);
        total += want[i].sent;
    }
    ck_assert_msg(sends == total, "%s sent %d messages, its trace has %d",
                  name, total, sends);

    /* Actors: every id the diagram shows, an actor restarted under its
     * kept name on the lifeline of the one it replaces. */
    s_trace_t ids = {0};
    for (size_t i = 0; i < t.n; i++)
        if (s_user(&t, &t.r[i])) {
            s_trace_add_id(&ids, t.r[i].a);
            s_trace_add_id(&ids, t.r[i].b);
        }
    int lifelines = ids.nids - restarts;
    /* Ends: a bar for an actor that ended normally or on request, an X for
     * one that failed; one each, though a process actor's end is in its
     * own file and its node's. */
    int ends = 0, crashes = 0;
    for (int k = 0; k < ids.nids; k++)
        for (size_t i = 0; i < t.n; i++)
            if (t.r[i].kind == 4 && t.r[i].a == ids.ids[k]) {
                bool crash = t.r[i].size < 0 && t.r[i].size != TR_ESHUTDOWN;
                crashes += crash;
                ends += !crash;
                break;
            }

    /* The summary merged the same files and counts the same. */
    S_RUN(0, "trace", trace, "--json");
    snprintf(code, sizeof code,
             "s = json.load(open(p))\n"
             "assert len(s['files']) == %d, s['files']\n"
             "assert s['records'] == %zu, s['records']\n",
             t.files, t.n);
    s_python_out(code);

    /* Perfetto: JSON, a flow for every SEND whose RECV is there. */
    snprintf(out, sizeof out, "%s/%s.json", dir, name);
    S_RUN(0, "trace", trace, "--perfetto", out);
    snprintf(code, sizeof code,
             "ev = json.load(open(p))['traceEvents']\n"
             "s = [e['id'] for e in ev if e['ph'] == 's']\n"
             "f = [e['id'] for e in ev if e['ph'] == 'f']\n"
             "assert sorted(s) == sorted(f) and len(s) == %d, "
             "(len(s), len(f))\n",
             pairs);
    s_python(out, code);

    /* SVG: well-formed XML, one lifeline per actor, an arrow per message
     * the example sent, none without its RECV. */
    snprintf(out, sizeof out, "%s/%s.svg", dir, name);
    S_RUN(0, "trace", trace, "--svg", out);
    snprintf(code, sizeof code,
             "d = xml.dom.minidom.parse(p)\n"
             "g = d.getElementsByTagName('g')\n"
             "lanes = [e for e in g if e.getAttribute('class') == "
             "'lifeline']\n"
             "assert len(lanes) == %d, len(lanes)\n"
             "msgs = [e for e in g if e.getAttribute('class') == 'message']\n"
             "assert len(msgs) == %d, len(msgs)\n"
             "assert '(no RECV)' not in open(p).read()\n"
             "c = [e for e in d.getElementsByTagName('line') + g if "
             "e.getAttribute('class') in ('end', 'crash')]\n"
             "assert len([e for e in c if e.getAttribute('class') == 'end'])"
             " == %d, c\n"
             "assert len(c) == %d, c\n",
             lifelines, total, ends, ends + crashes);
    s_python(out, code);
    free(t.r);
    ts_rmtree(dir);
}

START_TEST(traced_hello_sends_what_it_says)
{
    /* hello N: the pinger pings N times, the ponger answers each. */
    s_traced_example("hello", "3",
                     (const s_sent_t[]){{"ping", 3}, {"pong", 3}, {NULL}});
}
END_TEST

START_TEST(traced_counter_sends_what_it_says)
{
    /* counter N, with its 8 workers: main tells each "go"; each tells the
     * counter N "inc"s and calls "sync"; main calls "get"; the counter
     * answers every call with "total" (8 + 1). */
    s_traced_example("counter", "10",
                     (const s_sent_t[]){{"go", 8},
                                        {"inc", 8 * 10},
                                        {"sync", 8},
                                        {"get", 1},
                                        {"total", 9},
                                        {NULL}});
}
END_TEST

START_TEST(traced_order_sends_what_it_says)
{
    /* main tells each of the two writers "go", each writer tells the
     * printer its LINES (2) lines, main calls the printer "wait", answered
     * "printed". */
    s_traced_example("order", NULL,
                     (const s_sent_t[]){{"go", 2},
                                        {"line", 4},
                                        {"wait", 1},
                                        {"printed", 1},
                                        {NULL}});
}
END_TEST

START_TEST(traced_pipe_sends_what_it_says_as_threads_and_processes)
{
    /* One text and one ack as threads, the same as processes (whose
     * records are in their own files); what the process actors say to
     * their node's service as they start and end is the runtime's. */
    s_traced_example("pipe", NULL,
                     (const s_sent_t[]){{"text", 2}, {"ack", 2}, {NULL}});
}
END_TEST

START_TEST(traced_tree_sends_what_it_says_across_restarts)
{
    /* Two tr_sup_start: main asks the root supervisor, then top, to
     * "start_child", answered "ok". Two crashes ("crash" to writer, then
     * to logger), each followed by a "ping" call to each of the three
     * names, answered "pong"; tr_sup_which_children asks top
     * "which_children", answered "children". The writer's crash is its
     * handler's error, not a signal: its process writes its records. */
    s_traced_example("tree", NULL,
                     (const s_sent_t[]){{"start_child", 2},
                                        {"ok", 2},
                                        {"crash", 2},
                                        {"ping", 6},
                                        {"pong", 6},
                                        {"which_children", 1},
                                        {"children", 1},
                                        {NULL}});
}
END_TEST

/* Not crash_restart: its first worker dies of SIGSEGV, and a process
 * that dies by a signal loses the records it had not written
 * (docs/control.md): what that worker took and answered is not in the
 * trace, so the trace cannot count what the example sent. */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("tools");
    TCase *tc = tcase_create("node");
    tcase_set_timeout(tc, 120); /* backstop only */
    tcase_add_test(tc, ps_lists_the_actors_found_by_pid_name_or_directory);
    tcase_add_test(tc, ps_json_has_every_field_of_every_actor);
    tcase_add_test(tc, ps_shows_the_mailbox_of_a_blocked_actor);
    tcase_add_test(tc, tree_draws_the_supervision_tree_and_names_the_rest);
    tcase_add_test(tc, info_and_pools_tell_the_node_and_its_pool);
    tcase_add_test(tc, ls_lists_this_node);
    tcase_add_test(tc, top_prints_one_frame_when_not_on_a_terminal);
    tcase_add_test(tc, top_on_a_terminal_sorts_by_key_and_q_gives_it_back);
    tcase_add_test(tc, top_on_a_terminal_ends_on_ctrl_c_and_gives_it_back);
    tcase_add_test(tc, stop_ends_an_actor_by_name_or_id);
    tcase_add_test(tc, restart_makes_the_supervisor_start_the_child_again);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_missing_or_gone_node_exits_1_with_a_message);
    tcase_add_test(tc, a_killed_nodes_directory_is_stale_and_the_node_gone);
    tcase_add_test(tc, a_silent_or_refusing_node_exits_1_in_time);
    tcase_add_test(tc, a_pid_with_two_nodes_is_ambiguous);
    tcase_add_test(tc, usage_errors_exit_2);
    tcase_add_test(tc, keygen_writes_a_curve_pair_and_will_not_overwrite_it);
    tcase_add_test(tc, ps_and_info_reach_a_node_over_tcp_with_its_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("trace");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_trace_counts_what_was_sent_and_converts_to_json_and_svg);
    tcase_add_test(tc, a_trace_shows_a_crash_and_the_restart);
    tcase_add_test(tc, a_trace_merges_the_files_of_process_actors);
    suite_add_tcase(s, tc);

    tc = tcase_create("examples");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, traced_hello_sends_what_it_says);
    tcase_add_test(tc, traced_counter_sends_what_it_says);
    tcase_add_test(tc, traced_order_sends_what_it_says);
    tcase_add_test(tc,
                   traced_pipe_sends_what_it_says_as_threads_and_processes);
    tcase_add_test(tc, traced_tree_sends_what_it_says_across_restarts);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
