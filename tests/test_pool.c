/* tests/test_pool.c - pools (tr_pool_*, the executor): tasks submitted to
 * N workers, threads (TR_POOL_THREADS) or processes (TR_POOL_PROCESSES),
 * and what the header promises about them: results and error codes,
 * credit-based load balancing (a slow task holds no queue), worker deaths
 * (retries, then TR_EWORKERDIED with the last worker's exit reason),
 * SIGKILL chaos while thousands of tasks run, per-task deadlines, cancel,
 * resize, shutdown (graceful, cancelling, past its deadline), bad input,
 * the counters, and resources (children, zombies, descriptors).
 *
 * Process workers are this very program, re-executed: ts_run_suite calls
 * tr_init first, which turns such a child into the worker. So every task
 * function is defined at file scope here (TR_TASK), and a task registered
 * at run time (tr_task_register) exists only in the test's process.
 *
 * Tests parametrised by mode are Check loop tests: iteration 0 runs a
 * thread pool, iteration 1 a process pool (s_mode).
 *
 * Nothing here sleeps to synchronise. A task that must stay busy until
 * the test says so is a "gate" task: it reads one byte from a FIFO that the
 * test holds open for reading and writing (s_gate_t), so the test releases
 * k of them by writing k bytes, and closing the FIFO releases all (they
 * read EOF). Waits are on futures, on the pool's counters or on files,
 * always with a deadline. Naps inside tasks (poll(NULL, 0, ms)) are work,
 * not synchronisation.
 *
 * Measured times are printed to stderr with the prefix "pool:" (see
 * meson-logs/testlog.txt). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "runtime/node.h"
#include "runtime/registry.h"
#include "support.h"
#include "troupe.h"

/* Deadline for the pool's counters or the children to reach a state that
 * they reach at once when all is well (a worker replaced, say). */
#define S_SETTLE_MS 10000

/* How far past its deadline a shutdown may return (a kill, a reap, a
 * loaded machine). */
#define S_GRACE_MS 600

/* square crashes its worker when given this. */
#define S_POISON (-666)

/* ------------------------------------------------------------------ */
/* Task functions (run in the workers: no Check calls)                 */
/* ------------------------------------------------------------------ */

/* *result = tag [v[0], ..., v[n-1]]. */
static int
s_result_ints(tr_msg_t **result, const char *tag, int n, const int64_t *v)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, tag);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = tr_msg_add_int(m, v[i]);
    if (rc != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    *result = m;
    return 0;
}

/* The first value of args, an int. */
static int
s_arg_int(const tr_msg_t *args, int64_t *v)
{
    if (args == NULL)
        return TR_EINVAL;
    return ts_read_ints(args, 1, v);
}

/* The first value of args, a string (a path). */
static int
s_arg_path(const tr_msg_t *args, char *buf, size_t cap)
{
    if (args == NULL)
        return TR_EINVAL;
    tr_reader_t r;
    tr_reader_init(&r, args);
    return tr_read_str_copy(&r, buf, cap);
}

/* Append "<pid>\n" to path in one write (O_APPEND: lines from several
 * processes do not mix). */
static int
s_append_pid(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return TR_ESYS;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    ssize_t w = write(fd, buf, (size_t)n);
    close(fd);
    return w == n ? 0 : TR_ESYS;
}

/* The default action of SIGSEGV, also under ASan (which would catch it
 * and exit or abort instead). */
static void
s_segv(void)
{
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
}

/* square [n]: "sq" [n * n]; [S_POISON]: segfault. */
static int
s_square(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t v = 0;
    int rc = s_arg_int(args, &v);
    if (rc != 0)
        return rc;
    if (v == S_POISON)
        s_segv();
    v *= v;
    return s_result_ints(result, "sq", 1, &v);
}
TR_TASK(square, s_square);

/* nap [ms]: works (sleeps) ms, then "nap" [ms]. */
static int
s_nap(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t ms = 0;
    int rc = s_arg_int(args, &ms);
    if (rc != 0)
        return rc;
    int64_t until = ts_now_ms() + ms;
    for (int64_t left = ms; left > 0; left = until - ts_now_ms())
        (void)poll(NULL, 0, (int)left);
    return s_result_ints(result, "nap", 1, &ms);
}
TR_TASK(nap, s_nap);

/* fail [code]: fails with code. */
static int
s_fail(const tr_msg_t *args, tr_msg_t **result)
{
    (void)result;
    int64_t code = 0;
    int rc = s_arg_int(args, &code);
    return rc != 0 ? rc : (int)code;
}
TR_TASK(fail, s_fail);

/* noresult: succeeds and leaves *result NULL. */
static int
s_noresult(const tr_msg_t *args, tr_msg_t **result)
{
    (void)args, (void)result;
    return 0;
}
TR_TASK(noresult, s_noresult);

/* nargs: "n" [how many values args holds] (0 for NULL args). */
static int
s_nargs(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t n = 0;
    if (args != NULL) {
        tr_reader_t r;
        tr_reader_init(&r, args);
        while (tr_read_skip(&r) == 0)
            n++;
    }
    return s_result_ints(result, "n", 1, &n);
}
TR_TASK(nargs, s_nargs);

/* echo: "echo" with args' payload as it is. */
static int
s_echo(const tr_msg_t *args, tr_msg_t **result)
{
    size_t len = 0;
    const void *p = args != NULL ? tr_msg_payload(args, &len) : NULL;
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "echo");
    if (rc == 0 && len > 0)
        rc = tr_msg_add_raw(m, p, len);
    if (rc != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    *result = m;
    return 0;
}
TR_TASK(echo, s_echo);

/* pid: "pid" [getpid()]. */
static int
s_pid(const tr_msg_t *args, tr_msg_t **result)
{
    (void)args;
    int64_t pid = getpid();
    return s_result_ints(result, "pid", 1, &pid);
}
TR_TASK(pid, s_pid);

/* note [path]: appends its pid to path, then "pid" [getpid()]. */
static int
s_note(const tr_msg_t *args, tr_msg_t **result)
{
    char path[256];
    int rc = s_arg_path(args, path, sizeof path);
    if (rc == 0)
        rc = s_append_pid(path);
    return rc != 0 ? rc : s_pid(args, result);
}
TR_TASK(note, s_note);

/* crash [path]: appends its pid to path, then segfaults. */
static int
s_crash(const tr_msg_t *args, tr_msg_t **result)
{
    (void)result;
    char path[256];
    int rc = s_arg_path(args, path, sizeof path);
    if (rc == 0)
        rc = s_append_pid(path);
    if (rc != 0)
        return rc;
    s_segv();
    return TR_EFAILED; /* not reached */
}
TR_TASK(crash, s_crash);

/* selfkill [path]: appends its pid to path, then SIGKILLs itself. */
static int
s_selfkill(const tr_msg_t *args, tr_msg_t **result)
{
    (void)result;
    char path[256];
    int rc = s_arg_path(args, path, sizeof path);
    if (rc == 0)
        rc = s_append_pid(path);
    if (rc != 0)
        return rc;
    raise(SIGKILL);
    return TR_EFAILED; /* not reached */
}
TR_TASK(selfkill, s_selfkill);

/* hang [path]: appends its pid to path, then never returns (without
 * burning a core). Process pools only. */
static int
s_hang(const tr_msg_t *args, tr_msg_t **result)
{
    (void)result;
    char path[256];
    int rc = s_arg_path(args, path, sizeof path);
    if (rc == 0)
        rc = s_append_pid(path);
    if (rc != 0)
        return rc;
    for (;;)
        pause();
}
TR_TASK(hang, s_hang);

/* gate [fifo]: reads one byte from the FIFO, then "gate" [the byte];
 * fails with TR_ETRUNC when the FIFO reads EOF (the test closed it). */
static int
s_gate(const tr_msg_t *args, tr_msg_t **result)
{
    char path[256];
    int rc = s_arg_path(args, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return TR_ESYS;
    unsigned char c = 0;
    ssize_t n;
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n != 1)
        return TR_ETRUNC;
    int64_t v = c;
    return s_result_ints(result, "gate", 1, &v);
}
TR_TASK(gate, s_gate);

/* Registered at run time (tr_task_register), in the test's process only:
 * "dyn" [n + 1000]. */
static int
s_dyn(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t v = 0;
    int rc = s_arg_int(args, &v);
    if (rc != 0)
        return rc;
    v += 1000;
    return s_result_ints(result, "dyn", 1, &v);
}

/* ------------------------------------------------------------------ */
/* Helpers: files, processes                                           */
/* ------------------------------------------------------------------ */

/* State and ppid of /proc/<pid>/stat; false if it is gone. */
static bool
s_proc_stat(long pid, char *state, long *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold ')' */
    if (p == NULL || p[1] == '\0' || p[2] == '\0')
        return false;
    *state = p[2];
    *ppid = strtol(p + 3, NULL, 10);
    return true;
}

/* Children of this process (forked by any of its threads): how many, how
 * many of them zombies, and the pids of the live ones (up to max) to
 * pids (may be NULL). Process workers are the only children here. */
static int
s_kids(int *zombies, pid_t *pids, int max)
{
    int children = 0, z = 0, live = 0;
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    pid_t me = getpid();
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        long pid = strtol(e->d_name, NULL, 10);
        char state;
        long ppid;
        if (!s_proc_stat(pid, &state, &ppid) || ppid != (long)me)
            continue;
        children++;
        if (state == 'Z')
            z++;
        else if (pids != NULL && live < max)
            pids[live++] = (pid_t)pid;
    }
    closedir(d);
    if (zombies != NULL)
        *zombies = z;
    return pids != NULL ? live : children;
}

/* Wait up to ms until this process has exactly n children and no
 * zombies; true once it has. */
static bool
s_wait_kids(int n, int ms)
{
    int64_t until = ts_now_ms() + ms;
    for (;;) {
        int z = 0;
        if (s_kids(&z, NULL, 0) == n && z == 0)
            return true;
        if (ts_now_ms() >= until)
            return false;
        (void)poll(NULL, 0, 2);
    }
}

/* True while pid is a process that has not ended (a zombie has). */
static bool
s_alive(pid_t pid)
{
    char state;
    long ppid;
    return s_proc_stat(pid, &state, &ppid) && state != 'Z' && state != 'X';
}

/* The pids path holds, one a line, up to max of them into pids (may be
 * NULL); how many lines (0 if there is no file). */
static int
s_lines(const char *path, long *pids, int max)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    long v;
    while (fscanf(f, "%ld", &v) == 1) {
        if (pids != NULL && n < max)
            pids[n] = v;
        n++;
    }
    fclose(f);
    return n;
}

/* Wait up to ms until path holds n lines; true once it does. */
static bool
s_wait_lines(const char *path, int n, int ms)
{
    int64_t until = ts_now_ms() + ms;
    while (s_lines(path, NULL, 0) != n) {
        if (ts_now_ms() >= until)
            return false;
        (void)poll(NULL, 0, 2);
    }
    return true;
}

static int
s_ncpus(void)
{
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static int
s_ncpus_affinity(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    return CPU_COUNT(&set);
}

/* ------------------------------------------------------------------ */
/* Helpers: the gate FIFO                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    char dir[64];
    char path[128];
    int fd; /* read-write: gate tasks open without waiting, and block in
             * read until a byte comes */
} s_gate_t;

static void
s_gate_make(s_gate_t *g)
{
    ts_tmpdir(g->dir, sizeof g->dir, "trpool");
    snprintf(g->path, sizeof g->path, "%s/gate", g->dir);
    ck_assert_int_eq(mkfifo(g->path, 0600), 0);
    g->fd = open(g->path, O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(g->fd, 0);
}

/* Let n gate tasks through (now or when they come). */
static void
s_gate_release(s_gate_t *g, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(write(g->fd, "g", 1), 1);
}

/* Close the FIFO: gate tasks still waiting fail with TR_ETRUNC. */
static void
s_gate_close(s_gate_t *g)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
    ts_rmtree(g->dir);
}

/* ------------------------------------------------------------------ */
/* Helpers: pools, tasks, futures                                      */
/* ------------------------------------------------------------------ */

/* Loop tests: iteration 0 is a thread pool, 1 a process pool. */
static tr_pool_mode_t
s_mode(int i)
{
    return i == 0 ? TR_POOL_THREADS : TR_POOL_PROCESSES;
}

static tr_pool_t *
s_start_opts(tr_node_t *node, const tr_pool_opts_t *o)
{
    tr_pool_t *p = NULL;
    ck_assert_int_eq(tr_pool_start(node, o, &p), 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ne(tr_pool_id(p), 0);
    return p;
}

static tr_pool_t *
s_start(tr_node_t *node, tr_pool_mode_t mode, int workers, int max_retries)
{
    tr_pool_opts_t o = {.workers = workers, .mode = mode,
                        .max_retries = max_retries};
    return s_start_opts(node, &o);
}

/* A graceful shutdown that must succeed. */
static void
s_shutdown(tr_pool_t **pool)
{
    ck_assert_int_eq(tr_pool_shutdown(pool, false, TS_CALL_MS), 0);
    ck_assert_ptr_null(*pool);
}

/* Submit task with args (taken; may be NULL); the submit must succeed. */
static tr_future_t *
s_submit(tr_pool_t *pool, const char *task, tr_msg_t *args, int timeout_ms)
{
    tr_future_t *f = NULL;
    int rc = tr_pool_submit(pool, task, &args, timeout_ms, &f);
    TS_CHECK(rc == 0);
    TS_CHECK(args == NULL); /* taken */
    TS_CHECK(f != NULL);
    return f;
}

static tr_future_t *
s_submit_i(tr_pool_t *pool, const char *task, int64_t v)
{
    return s_submit(pool, task, ts_msg_i("a", v), TR_FOREVER);
}

/* A "a" [path] message. */
static tr_msg_t *
s_path_msg(const char *path)
{
    tr_msg_t *m = ts_msg("a");
    ck_assert_int_eq(tr_msg_add_str(m, path), 0);
    return m;
}

/* n gate tasks (each holds a worker until the test lets it go) in gf. */
static void
s_gates(tr_pool_t *pool, s_gate_t *g, int n, tr_future_t **gf)
{
    for (int i = 0; i < n; i++)
        gf[i] = s_submit(pool, "gate", s_path_msg(g->path), TR_FOREVER);
}

/* The outcome of *f, which must settle within TS_CALL_MS (so that a hang
 * shows as such, not as the task's TR_ETIMEDOUT): the task's code; on 0
 * the reply's first int to *v (may be NULL) and the reply to *reply (may
 * be NULL: dropped). *f is freed unless keep. */
static int
s_outcome_keep(tr_future_t **f, int64_t *v, tr_msg_t **reply, bool keep)
{
    int wrc = tr_future_wait(*f, TS_CALL_MS);
    if (wrc != 0)
        ck_abort_msg("a task's future did not settle within %d ms (wait: "
                     "%s)", TS_CALL_MS, tr_strerror(wrc));
    TS_CHECK(tr_future_done(*f));
    tr_msg_t *r = NULL;
    int rc = tr_future_get(*f, 0, &r);
    if (rc == 0) {
        TS_CHECK(r != NULL);
        if (v != NULL)
            TS_CHECK(ts_read_ints(r, 1, v) == 0);
    } else {
        TS_CHECK(r == NULL);
    }
    if (reply != NULL)
        *reply = r;
    else
        tr_msg_destroy(&r);
    if (!keep)
        tr_future_destroy(f);
    return rc;
}

static int
s_outcome(tr_future_t **f, int64_t *v)
{
    return s_outcome_keep(f, v, NULL, false);
}

/* The pool's counters, into st filled with 0xff first (so that a field
 * left unset shows). */
static void
s_stats(tr_pool_t *pool, tr_pool_stats_t *st)
{
    memset(st, 0xff, sizeof *st);
    ck_assert_int_eq(tr_pool_stats(pool, st), 0);
}

/* A condition on the counters: the fields named in want that are >= 0
 * must equal it. */
typedef struct {
    int workers, idle;
    int64_t queued, running, done;
} s_want_t;

/* S_WANT(.running = 2, .queued = 1): the fields not named are S_ANY. The
 * named ones override the defaults on purpose (-Woverride-init). */
#define S_ANY (-1)
#define S_WANT(...)                                                         \
    __extension__({                                                         \
        _Pragma("GCC diagnostic push")                                      \
        _Pragma("GCC diagnostic ignored \"-Woverride-init\"")               \
        s_want_t w_ = {.workers = S_ANY, .idle = S_ANY, .queued = S_ANY,    \
                       .running = S_ANY, .done = S_ANY, __VA_ARGS__};       \
        _Pragma("GCC diagnostic pop")                                       \
        w_;                                                                 \
    })

static bool
s_stats_are(const tr_pool_stats_t *st, s_want_t w)
{
    return (w.workers < 0 || st->workers == w.workers) &&
           (w.idle < 0 || st->idle == w.idle) &&
           (w.queued < 0 || st->queued == (uint64_t)w.queued) &&
           (w.running < 0 || st->running == (uint64_t)w.running) &&
           (w.done < 0 || st->done == (uint64_t)w.done);
}

/* Wait up to S_SETTLE_MS for the counters to match w; the last ones seen
 * to *st (may be NULL). Fails the test, printing them, if they never do. */
static void
s_wait_stats(tr_pool_t *pool, s_want_t w, tr_pool_stats_t *st)
{
    tr_pool_stats_t s;
    int64_t until = ts_now_ms() + S_SETTLE_MS;
    for (;;) {
        s_stats(pool, &s);
        if (s_stats_are(&s, w))
            break;
        if (ts_now_ms() >= until)
            ck_abort_msg("pool stats never became workers %d idle %d queued "
                         "%lld running %lld done %lld (-1: any); last seen "
                         "workers %d idle %d queued %llu running %llu done "
                         "%llu",
                         w.workers, w.idle, (long long)w.queued,
                         (long long)w.running, (long long)w.done, s.workers,
                         s.idle, (unsigned long long)s.queued,
                         (unsigned long long)s.running,
                         (unsigned long long)s.done);
        (void)poll(NULL, 0, 2);
    }
    if (st != NULL)
        *st = s;
}

/* Run n squares (submitted all at once) and check every result. */
static void
s_squares(tr_pool_t *pool, int n)
{
    tr_future_t **f = calloc((size_t)n, sizeof *f);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++)
        f[i] = s_submit_i(pool, "square", i);
    for (int i = 0; i < n; i++) {
        int64_t v = -1;
        TS_CHECK(s_outcome(&f[i], &v) == 0);
        TS_CHECK(v == (int64_t)i * i);
    }
    free(f);
}

/* The pid of the worker that runs a "pid" task. */
static pid_t
s_worker_pid(tr_pool_t *pool)
{
    tr_future_t *f = s_submit(pool, "pid", NULL, TR_FOREVER);
    int64_t pid = 0;
    ck_assert_int_eq(s_outcome(&f, &pid), 0);
    ck_assert_int_gt(pid, 0);
    return (pid_t)pid;
}

/* ------------------------------------------------------------------ */
/* Results and errors                                                  */
/* ------------------------------------------------------------------ */

START_TEST(thousand_squares_all_get_the_right_result)
{
    tr_pool_mode_t mode = s_mode(_i);
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 2, 0);
    int64_t t0 = ts_now_us();
    s_squares(pool, 1000);
    int64_t took = ts_now_us() - t0;
    fprintf(stderr, "pool: 1000 squares on 2 %s workers in %.1f ms (%.1f us "
            "each)\n", mode == TR_POOL_THREADS ? "thread" : "process",
            took / 1000.0, took / 1000.0);
    /* The result message is the task's own (its tag too). */
    tr_future_t *f = s_submit_i(pool, "square", -12);
    tr_msg_t *reply = NULL;
    int64_t v = 0;
    ck_assert_int_eq(s_outcome_keep(&f, &v, &reply, false), 0);
    ck_assert_int_eq(v, 144);
    ck_assert(tr_msg_is(reply, "sq"));
    tr_msg_destroy(&reply);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.done = 1001, .queued = 0, .running = 0), &st);
    ck_assert_uint_eq(st.failed, 0);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(task_error_code_fails_the_future_with_exactly_that_code)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    const int codes[] = {TR_ERANGE, TR_EPROTO, TR_EFAILED, TR_EPERM,
                         TR_ETYPE, TR_ENOTSUP};
    const int n = (int)(sizeof codes / sizeof codes[0]);
    tr_future_t *f[sizeof codes / sizeof codes[0]];
    for (int i = 0; i < n; i++)
        f[i] = s_submit_i(pool, "fail", codes[i]);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(s_outcome(&f[i], NULL), codes[i]);
    /* A failing task is not a failing worker: the pool goes on. */
    s_squares(pool, 20);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.done = n + 20, .workers = 2), &st);
    ck_assert_uint_eq(st.failed, (uint64_t)n);
    ck_assert_uint_eq(st.worker_deaths, 0);
    ck_assert_uint_eq(st.retried, 0);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(unknown_task_name_fails_with_enoent)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 1, 0);
    tr_future_t *f = s_submit_i(pool, "no_such_task", 1);
    ck_assert_int_eq(s_outcome(&f, NULL), TR_ENOENT);
    /* The longest name there can be: accepted, and unknown. */
    char longest[TR_NAME_MAX + 1];
    memset(longest, 'x', TR_NAME_MAX);
    longest[TR_NAME_MAX] = '\0';
    f = s_submit_i(pool, longest, 1);
    ck_assert_int_eq(s_outcome(&f, NULL), TR_ENOENT);
    /* The worker is still there. */
    f = s_submit_i(pool, "square", 9);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 81);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(result_left_null_gives_an_empty_ok_message)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 1, 0);
    tr_future_t *f = s_submit(pool, "noresult", NULL, TR_FOREVER);
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(s_outcome_keep(&f, NULL, &reply, false), 0);
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(tr_msg_tag(reply), "ok");
    size_t len = 99;
    (void)tr_msg_payload(reply, &len);
    ck_assert_uint_eq(len, 0);
    tr_msg_destroy(&reply);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(payload_goes_to_the_task_and_back_unchanged)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 1, 0);
    tr_msg_t *args = ts_msg("a");
    const unsigned char bin[] = {0, 1, 2, 255, 0, 7};
    ck_assert_int_eq(tr_msg_add_str(args, "héllo, pool"), 0);
    ck_assert_int_eq(tr_msg_add_bin(args, bin, sizeof bin), 0);
    ck_assert_int_eq(tr_msg_add_int(args, INT64_MIN), 0);
    ck_assert_int_eq(tr_msg_add_uint(args, UINT64_MAX), 0);
    ck_assert_int_eq(tr_msg_add_double(args, -2.5), 0);
    ck_assert_int_eq(tr_msg_add_array(args, 2), 0);
    ck_assert_int_eq(tr_msg_add_nil(args), 0);
    ck_assert_int_eq(tr_msg_add_map(args, 1), 0);
    ck_assert_int_eq(tr_msg_add_str(args, "k"), 0);
    ck_assert_int_eq(tr_msg_add_bool(args, true), 0);
    tr_msg_t *copy = NULL;
    ck_assert_int_eq(tr_msg_dup(args, &copy), 0);
    tr_future_t *f = s_submit(pool, "echo", args, TR_FOREVER);
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(s_outcome_keep(&f, NULL, &reply, false), 0);
    size_t la = 0, lb = 0;
    const void *a = tr_msg_payload(copy, &la);
    const void *b = tr_msg_payload(reply, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    tr_msg_destroy(&reply);
    tr_msg_destroy(&copy);

    /* NULL args: the task sees no arguments. */
    f = s_submit(pool, "nargs", NULL, TR_FOREVER);
    int64_t n = -1;
    ck_assert_int_eq(s_outcome(&f, &n), 0);
    ck_assert_int_eq(n, 0);
    int64_t three[3] = {1, 2, 3};
    f = s_submit(pool, "nargs", ts_msg_ints("a", 3, three), TR_FOREVER);
    ck_assert_int_eq(s_outcome(&f, &n), 0);
    ck_assert_int_eq(n, 3);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(thread_workers_run_in_this_process_and_process_workers_in_children)
{
    tr_pool_mode_t mode = s_mode(_i);
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 2, 0);
    pid_t pid = s_worker_pid(pool);
    if (mode == TR_POOL_THREADS) {
        ck_assert_int_eq(pid, getpid());
        ck_assert_int_eq(s_kids(NULL, NULL, 0), 0);
    } else {
        ck_assert_int_ne(pid, getpid());
        char state;
        long ppid;
        ck_assert(s_proc_stat(pid, &state, &ppid));
        ck_assert_int_eq(ppid, getpid()); /* a child of ours */
        /* The two workers and nothing else. */
        ck_assert(s_wait_kids(2, S_SETTLE_MS));
    }
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(runtime_registered_task_runs_on_threads_and_is_enoent_on_processes)
{
    ck_assert_int_eq(tr_task_register("dyn", s_dyn), 0);
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *tp = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_pool_t *pp = s_start(node, TR_POOL_PROCESSES, 1, 0);
    tr_future_t *f = s_submit_i(tp, "dyn", 5);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 1005);
    /* A process worker runs the program from its start: no "dyn". */
    f = s_submit_i(pp, "dyn", 5);
    ck_assert_int_eq(s_outcome(&f, NULL), TR_ENOENT);
    f = s_submit_i(pp, "square", 5);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 25);
    s_shutdown(&pp);
    s_shutdown(&tp);
    ts_destroy(&node);
}
END_TEST

START_TEST(task_register_rejects_bad_input_and_duplicates)
{
    char toolong[TR_NAME_MAX + 2];
    memset(toolong, 'y', TR_NAME_MAX + 1);
    toolong[TR_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(tr_task_register(NULL, s_dyn), TR_EINVAL);
    ck_assert_int_eq(tr_task_register("", s_dyn), TR_EINVAL);
    ck_assert_int_eq(tr_task_register("dyn2", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_task_register(toolong, s_dyn), TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_task_register("square", s_dyn), TR_EEXIST);
    ck_assert_int_eq(tr_task_register("dyn2", s_dyn), 0);
    ck_assert_int_eq(tr_task_register("dyn2", s_dyn), TR_EEXIST);
    /* The longest name there can be is fine. */
    toolong[TR_NAME_MAX] = '\0';
    ck_assert_int_eq(tr_task_register(toolong, s_dyn), 0);
    /* "square" is still the TR_TASK one. */
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_future_t *f = s_submit_i(pool, "square", 3);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 9);
    f = s_submit_i(pool, toolong, 3);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 1003);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(zero_workers_means_the_number_of_cpus)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 0, 0);
    tr_pool_stats_t st;
    s_stats(pool, &st);
    ck_assert_msg(st.workers == s_ncpus() || st.workers == s_ncpus_affinity(),
                  "workers %d, CPUs online %d, in the affinity mask %d",
                  st.workers, s_ncpus(), s_ncpus_affinity());
    s_squares(pool, 50);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(pool_name_is_registered_taken_names_are_eexist_and_freed_at_shutdown)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_opts_t o = {.name = "px", .workers = 1, .mode = s_mode(_i)};
    tr_pool_t *pool = s_start_opts(node, &o);
    tr_id_t id = 0;
    ck_assert_int_eq(tr_whereis(node, "px", &id), 0);
    ck_assert_uint_eq(id, tr_pool_id(pool));

    /* The name is taken: by the pool, then by an actor. */
    tr_pool_t *other = NULL;
    ck_assert_int_eq(tr_pool_start(node, &o, &other), TR_EEXIST);
    ck_assert_ptr_null(other);
    (void)ts_spawn(node, "ts_gate", "taken");
    tr_pool_opts_t o2 = {.name = "taken", .workers = 1, .mode = s_mode(_i)};
    ck_assert_int_eq(tr_pool_start(node, &o2, &other), TR_EEXIST);
    ck_assert_ptr_null(other);

    /* The first pool still works. */
    s_squares(pool, 10);
    s_shutdown(&pool);
    ck_assert_int_eq(tr_whereis(node, "px", &id), TR_ENOENT);
    /* And the name can be used again. */
    pool = s_start_opts(node, &o);
    ck_assert_int_eq(tr_whereis(node, "px", &id), 0);
    ck_assert_uint_eq(id, tr_pool_id(pool));
    s_squares(pool, 10);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Load balancing                                                      */
/* ------------------------------------------------------------------ */

START_TEST(slow_task_does_not_delay_short_tasks_submitted_after_it)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    s_gate_t g;
    s_gate_make(&g);
    /* The slow task runs until the test lets it go. */
    tr_future_t *slow = s_submit(pool, "gate", s_path_msg(g.path),
                                 TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1), NULL);
    enum { N = 60 };
    tr_future_t *f[N];
    for (int i = 0; i < N; i++)
        f[i] = s_submit(pool, "nap", ts_msg_i("a", 2), TR_FOREVER);
    /* Every short one finishes on the other worker while the slow one
     * still runs: none was queued behind it. */
    for (int i = 0; i < N; i++) {
        ck_assert_msg(tr_future_wait(f[i], 10000) == 0, "short task %d of "
                      "%d not done while the slow one runs: queued behind "
                      "it?", i, N);
        int64_t v = 0;
        ck_assert_int_eq(s_outcome(&f[i], &v), 0);
        ck_assert_int_eq(v, 2);
    }
    ck_assert(!tr_future_done(slow));
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.running = 1, .queued = 0, .done = N), &st);
    ck_assert_int_eq(st.idle, 1);
    s_gate_release(&g, 1);
    int64_t byte = 0;
    ck_assert_int_eq(s_outcome(&slow, &byte), 0);
    ck_assert_int_eq(byte, 'g');
    s_shutdown(&pool);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

START_TEST(tasks_run_at_once_on_all_workers_and_the_rest_wait_queued)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 3, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *gf[3];
    s_gates(pool, &g, 3, gf);
    tr_future_t *sq = s_submit_i(pool, "square", 4);
    /* Three at once; the fourth waits for a worker. */
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.running = 3, .queued = 1), &st);
    ck_assert_int_eq(st.workers, 3);
    ck_assert_int_eq(st.idle, 0);
    ck_assert(!tr_future_done(sq));
    s_gate_release(&g, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s_outcome(&gf[i], NULL), 0);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&sq, &v), 0);
    ck_assert_int_eq(v, 16);
    s_wait_stats(pool, S_WANT(.running = 0, .queued = 0, .idle = 3,
                              .done = 4), NULL);
    s_shutdown(&pool);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Submits that ride together                                          */
/* ------------------------------------------------------------------ */

/* Messages the pool actor has taken out of its mailbox so far. */
static uint64_t
s_pool_taken(tr_node_t *node, tr_pool_t *pool)
{
    tr__rec_t *rec = tr__reg_get(&node->reg, tr_pool_id(pool));
    ck_assert_ptr_nonnull(rec);
    uint64_t n = atomic_load(&rec->taken);
    tr__rec_unref(&rec);
    return n;
}

/* A thread that submits faster than the pool actor reads adds its tasks
 * to the "submits" still waiting in the pool's mailbox (an open batch,
 * transport/msg.h): with both workers held, 20,000 submits reach the pool
 * in fewer messages than tasks, and every task still settles its own
 * future with its own result. */
START_TEST(submits_the_pool_is_behind_on_ride_in_fewer_messages_each_right)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *gf[2];
    s_gates(pool, &g, 2, gf);
    s_wait_stats(pool, S_WANT(.running = 2), NULL);
    enum { N = 20000 };
    tr_future_t **f = calloc(N, sizeof *f);
    ck_assert_ptr_nonnull(f);
    uint64_t before = s_pool_taken(node, pool);
    for (int i = 0; i < N; i++)
        f[i] = s_submit_i(pool, "square", i);
    s_wait_stats(pool, S_WANT(.running = 2, .queued = N), NULL);
    uint64_t msgs = s_pool_taken(node, pool) - before;
    fprintf(stderr, "pool: %d submits reached the pool in %llu messages\n",
            N, (unsigned long long)msgs);
    ck_assert_uint_lt(msgs, N);
    s_gate_release(&g, 2);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(s_outcome(&gf[i], NULL), 0);
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        TS_CHECK(s_outcome(&f[i], &v) == 0);
        TS_CHECK(v == (int64_t)i * i);
    }
    free(f);
    s_shutdown(&pool);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

/* t_ping: "ping" [v] is answered [v]. */
static int
s_ping_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    int64_t v = 0;
    int rc = ts_read_ints(msg, 1, &v);
    return rc ? rc : ts_reply_ints(self, msg, 1, &v);
}
TR_BEHAVIOUR(t_ping, .handle = s_ping_handle);

typedef struct {
    tr_node_t *node;
    tr_pool_t *pools[2];
    int seed, bad;
} s_mixer_t;

/* Submits to two pools in turn, with a call to another actor now and
 * then (an ask between two tasks breaks the run of ids a batch needs),
 * collecting in windows; counts wrong or failed results. */
static void *
s_mixer(void *arg)
{
    s_mixer_t *m = arg;
    enum { N = 3000, W = 64 };
    tr_future_t *f[W];
    int64_t want[W];
    for (int i = 0; i < N; i += W) {
        for (int k = 0; k < W; k++) {
            int64_t v = m->seed * 100000 + i + k;
            want[k] = v * v;
            f[k] = s_submit_i(m->pools[(i + k) % 3 == 0], "square", v);
            if ((i + k) % 50 == 0) {
                int64_t got = 0;
                if (ts_call_ints(m->node, "peer", ts_msg_i("ping", v), 1,
                                 &got) != 0 || got != v)
                    m->bad++;
            }
        }
        for (int k = 0; k < W; k++) {
            int64_t v = -1;
            if (s_outcome(&f[k], &v) != 0 || v != want[k])
                m->bad++;
        }
    }
    return NULL;
}

/* Four threads submit at once to two pools, with asks to another actor in
 * between: batches never mix pools, threads or broken runs of ids, and
 * every future settles with its own task's result. */
START_TEST(submits_from_threads_to_two_pools_between_asks_settle_right)
{
    tr_node_t *node = ts_node(NULL);
    (void)ts_spawn(node, "t_ping", "peer");
    tr_pool_t *pools[2] = {s_start(node, s_mode(_i), 2, 0),
                           s_start(node, s_mode(_i), 1, 0)};
    s_mixer_t m[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        m[t] = (s_mixer_t){node, {pools[0], pools[1]}, t + 1, 0};
        ck_assert_int_eq(pthread_create(&th[t], NULL, s_mixer, &m[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_int_eq(m[t].bad, 0);
    }
    s_shutdown(&pools[0]);
    s_shutdown(&pools[1]);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Worker deaths (process pools)                                       */
/* ------------------------------------------------------------------ */

START_TEST(crashing_task_fails_alone_with_eworkerdied_after_max_retries_plus_one_tries)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 2, 0); /* 2 retries */
    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/tries", dir);
    enum { N = 20 };
    tr_future_t *before[N], *after[N];
    for (int i = 0; i < N; i++)
        before[i] = s_submit_i(pool, "square", i);
    tr_future_t *crash = s_submit(pool, "crash", s_path_msg(path),
                                  TR_FOREVER);
    for (int i = 0; i < N; i++)
        after[i] = s_submit_i(pool, "square", 100 + i);

    ck_assert_int_eq(s_outcome_keep(&crash, NULL, NULL, true),
                     TR_EWORKERDIED);
    ck_assert_int_eq(tr_future_exit_reason(crash), TR_ECRASHED);
    tr_future_destroy(&crash);
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        ck_assert_int_eq(s_outcome(&before[i], &v), 0);
        ck_assert_int_eq(v, (int64_t)i * i);
        ck_assert_int_eq(s_outcome(&after[i], &v), 0);
        ck_assert_int_eq(v, (int64_t)(100 + i) * (100 + i));
    }
    /* Tried 1 + max_retries times alone, each time on another worker
     * process; once more before that if it was first given out in a
     * batch (the queue was deep), which does not count. */
    long pids[8];
    int tries = s_lines(path, pids, 8);
    ck_assert_int_ge(tries, 3);
    ck_assert_int_le(tries, 4);
    for (int i = 0; i < tries; i++) {
        ck_assert(pids[i] != getpid());
        for (int j = 0; j < i; j++)
            ck_assert(pids[i] != pids[j]);
    }

    /* The pool is whole again and the counters say what happened. */
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = 2, .idle = 2, .done = 2 * N + 1),
                 &st);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.worker_deaths, (uint64_t)tries);
    if (tries == 3) /* never in a batch: only its own re-dispatches */
        ck_assert_uint_eq(st.retried, 2);
    else /* and its batch's, sent back once (64 at most) */
        ck_assert_uint_le(st.retried, 2 + 64);
    ck_assert(s_wait_kids(2, S_SETTLE_MS));
    s_squares(pool, 100);
    s_shutdown(&pool);
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

START_TEST(max_retries_sets_the_tries_and_exit_reason_tells_how_the_worker_ended)
{
    tr_node_t *node = ts_node(NULL);
    char dir[64], p1[128], p2[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(p1, sizeof p1, "%s/none", dir);
    snprintf(p2, sizeof p2, "%s/one", dir);

    /* Negative: no retry at all. */
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 2, -1);
    tr_future_t *f = s_submit(pool, "crash", s_path_msg(p1), TR_FOREVER);
    ck_assert_int_eq(s_outcome_keep(&f, NULL, NULL, true), TR_EWORKERDIED);
    ck_assert_int_eq(tr_future_exit_reason(f), TR_ECRASHED);
    tr_future_destroy(&f);
    ck_assert_int_eq(s_lines(p1, NULL, 0), 1);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = 2, .done = 1), &st);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.worker_deaths, 1);
    s_shutdown(&pool);

    /* One retry; a worker that SIGKILLs itself ends with TR_EKILLED. */
    pool = s_start(node, TR_POOL_PROCESSES, 2, 1);
    f = s_submit(pool, "selfkill", s_path_msg(p2), TR_FOREVER);
    ck_assert_int_eq(s_outcome_keep(&f, NULL, NULL, true), TR_EWORKERDIED);
    ck_assert_int_eq(tr_future_exit_reason(f), TR_EKILLED);
    tr_future_destroy(&f);
    ck_assert_int_eq(s_lines(p2, NULL, 0), 2);
    s_wait_stats(pool, S_WANT(.workers = 2, .done = 1), &st);
    ck_assert_uint_eq(st.retried, 1);
    ck_assert_uint_eq(st.worker_deaths, 2);
    /* The poisoned square (a crash without side effects) fails alone. */
    tr_future_t *ok = s_submit_i(pool, "square", 6);
    f = s_submit_i(pool, "square", S_POISON);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, NULL), TR_EWORKERDIED);
    ck_assert_int_eq(s_outcome(&ok, &v), 0);
    ck_assert_int_eq(v, 36);
    s_wait_stats(pool, S_WANT(.workers = 2, .done = 3), &st);
    ck_assert_uint_eq(st.worker_deaths, 4);
    s_squares(pool, 20);
    s_shutdown(&pool);
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Chaos: SIGKILLs while thousands of tasks run                        */
/* ------------------------------------------------------------------ */

/* The killer thread. It finds the workers as the live children of this
 * process in /proc (process workers are this test's only children: see
 * thread_workers_run_in_this_process_and_process_workers_in_children),
 * picks one at random, opens a pidfd on it, checks through /proc that
 * the pid still is a live child of ours (so the pidfd is not a reused pid
 * of someone else's), and SIGKILLs it through the pidfd. It kills once
 * every `every` settled tasks, so the kills spread over the run and each
 * one hits a pool that is working. */
typedef struct {
    atomic_bool stop;
    atomic_long settled; /* tasks settled so far (the main thread's count) */
    atomic_int kills;
    int want;
    long every;
    uint64_t seed;
    pid_t me;
} s_chaos_t;

static int
s_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void *
s_killer_main(void *arg)
{
    s_chaos_t *c = arg;
    long next = c->every;
    while (atomic_load(&c->kills) < c->want && !atomic_load(&c->stop)) {
        if (atomic_load(&c->settled) < next) {
            (void)poll(NULL, 0, 1);
            continue;
        }
        pid_t kids[64];
        int n = s_kids(NULL, kids, 64);
        if (n == 0) { /* all being replaced */
            (void)poll(NULL, 0, 1);
            continue;
        }
        pid_t pid = kids[ts_rand(&c->seed) % (uint64_t)n];
        int pfd = s_pidfd_open(pid);
        if (pfd < 0)
            continue; /* gone meanwhile */
        char state;
        long ppid;
        if (s_proc_stat(pid, &state, &ppid) && ppid == (long)c->me &&
            state != 'Z' &&
            syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0) {
            atomic_fetch_add(&c->kills, 1);
            next = atomic_load(&c->settled) + c->every;
        }
        close(pfd);
    }
    return NULL;
}

START_TEST(process_pool_loses_no_task_while_workers_are_sigkilled_50_times)
{
    enum { N = 10000, WINDOW = 200, WORKERS = 3, KILLS = 50 };
    tr_node_t *node = ts_node(NULL);
    /* Retries enough that no task can be unlucky every time: that a task
     * fails after max_retries deaths is tested above. */
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, WORKERS, 10);
    s_wait_stats(pool, S_WANT(.workers = WORKERS, .idle = WORKERS), NULL);
    ck_assert(s_wait_kids(WORKERS, S_SETTLE_MS));

    static s_chaos_t c;
    atomic_init(&c.stop, false);
    atomic_init(&c.settled, 0);
    atomic_init(&c.kills, 0);
    c.want = KILLS;
    c.every = 150; /* 50 x 150 = 7,500 < N */
    c.seed = 0x9e3779b97f4a7c15ull;
    c.me = getpid();
    pthread_t killer;
    ck_assert_int_eq(pthread_create(&killer, NULL, s_killer_main, &c), 0);

    /* The main thread submits and collects: futures belong to it. At
     * least N tasks, more if the killer has not killed KILLS times yet. */
    static uint8_t seen[4 * N];
    memset(seen, 0, sizeof seen);
    tr_future_t *win[WINDOW] = {0};
    int64_t idx[WINDOW];
    int64_t t0 = ts_now_ms(), deadline = t0 + 60000;
    long submitted = 0, collected = 0;
    for (;;) {
        bool more = (submitted < N || atomic_load(&c.kills) < KILLS) &&
                    submitted < 4 * N && ts_now_ms() < deadline;
        if (!more && collected == submitted)
            break;
        int slot = (int)(submitted % WINDOW);
        if (!more)
            slot = (int)(collected % WINDOW);
        if (win[slot] != NULL) {
            /* The oldest outstanding: collect it. */
            /* No one task takes 10 s, kills or not: a pool that has
             * stopped working fails here soon. */
            int64_t left = deadline - ts_now_ms();
            left = left > 10000 ? 10000 : left > 0 ? left : 1;
            int wrc = tr_future_wait(win[slot], (int)left);
            if (wrc != 0)
                ck_abort_msg("task %lld never settled (wait: %s) after %lld "
                             "ms, %d kills", (long long)idx[slot],
                             tr_strerror(wrc), (long long)(ts_now_ms() - t0),
                             atomic_load(&c.kills));
            tr_msg_t *r = NULL;
            int rc = tr_future_get(win[slot], 0, &r);
            if (rc != 0)
                ck_abort_msg("task %lld failed: %s (exit reason %d), %d "
                             "kills", (long long)idx[slot], tr_strerror(rc),
                             tr_future_exit_reason(win[slot]),
                             atomic_load(&c.kills));
            int64_t v = -1;
            TS_CHECK(ts_read_ints(r, 1, &v) == 0);
            TS_CHECK(v == idx[slot] * idx[slot]);
            tr_msg_destroy(&r);
            /* Settled once: the reply is gone now. */
            TS_CHECK(tr_future_get(win[slot], 0, &r) == TR_ENOENT);
            TS_CHECK(seen[idx[slot]] == 0);
            seen[idx[slot]] = 1;
            tr_future_destroy(&win[slot]);
            collected++;
            atomic_fetch_add(&c.settled, 1);
        }
        if (more) {
            idx[slot] = submitted;
            win[slot] = s_submit_i(pool, "square", submitted);
            submitted++;
        }
    }
    int64_t took = ts_now_ms() - t0;
    atomic_store(&c.stop, true);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    ck_assert_int_eq(pthread_timedjoin_np(killer, NULL, &ts), 0);
    fprintf(stderr, "pool: %ld tasks on %d process workers, %d SIGKILLs, in "
            "%lld ms\n", submitted, WORKERS, atomic_load(&c.kills),
            (long long)took);
    ck_assert_msg(ts_now_ms() < deadline, "ran past the 60 s deadline");
    ck_assert_int_eq(atomic_load(&c.kills), KILLS);
    ck_assert_int_ge(submitted, N);
    ck_assert_int_eq(collected, submitted);
    for (long i = 0; i < submitted; i++)
        TS_CHECK(seen[i] == 1); /* none lost, none twice */

    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = WORKERS, .idle = WORKERS,
                              .queued = 0, .running = 0, .done = submitted),
                 &st);
    fprintf(stderr, "pool: chaos stats: worker_deaths %llu, retried %llu\n",
            (unsigned long long)st.worker_deaths,
            (unsigned long long)st.retried);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_ge(st.worker_deaths, 1);
    ck_assert_uint_le(st.worker_deaths, KILLS);
    /* A death sends back what its worker had: a batch when the queue
     * was deep (64 tasks at most). */
    ck_assert_uint_ge(st.retried, 1);
    ck_assert_uint_le(st.retried, st.worker_deaths * 64);
    ck_assert(s_wait_kids(WORKERS, S_SETTLE_MS));
    s_squares(pool, 100); /* and it still works */
    s_shutdown(&pool);
    ck_assert(s_wait_kids(0, S_SETTLE_MS));
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deadlines                                                           */
/* ------------------------------------------------------------------ */

START_TEST(process_task_past_its_deadline_is_etimedout_and_its_worker_replaced)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 1, 0);
    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/hang", dir);
    pid_t before = s_worker_pid(pool);
    int64_t t0 = ts_now_ms();
    tr_future_t *f = s_submit(pool, "hang", s_path_msg(path), 300);
    ck_assert_int_eq(s_outcome(&f, NULL), TR_ETIMEDOUT);
    int64_t took = ts_now_ms() - t0;
    fprintf(stderr, "pool: hung process task timed out after %lld ms "
            "(deadline 300)\n", (long long)took);
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 3000);
    long hung = 0;
    ck_assert_int_eq(s_lines(path, &hung, 1), 1);
    ck_assert_int_eq(hung, before);
    /* The pool answers the next task, on a new worker; the old one was
     * killed, and the timed-out task was not tried again. */
    pid_t after = s_worker_pid(pool);
    ck_assert_int_ne(after, before);
    ck_assert_int_eq(s_lines(path, NULL, 0), 1);
    int64_t until = ts_now_ms() + S_SETTLE_MS;
    while (s_alive(before) && ts_now_ms() < until)
        (void)poll(NULL, 0, 2);
    ck_assert(!s_alive(before));
    s_wait_stats(pool, S_WANT(.workers = 1, .idle = 1, .done = 3), NULL);
    ck_assert(s_wait_kids(1, S_SETTLE_MS));
    s_squares(pool, 20);
    s_shutdown(&pool);
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

START_TEST(thread_task_past_its_deadline_is_etimedout_and_its_late_result_ignored)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    int64_t t0 = ts_now_ms();
    tr_future_t *late = s_submit(pool, "nap", ts_msg_i("a", 700), 150);
    /* Settled (its outcome is read once, at the end). */
    ck_assert_int_eq(tr_future_wait(late, TS_CALL_MS), 0);
    int64_t took = ts_now_ms() - t0;
    fprintf(stderr, "pool: napping thread task timed out after %lld ms "
            "(deadline 150, nap 700)\n", (long long)took);
    ck_assert_int_ge(took, 100);
    ck_assert_int_lt(took, 650); /* before the nap ends */
    /* The one worker finishes the nap, then takes the next task: its
     * answer is the square, not the nap's late result. */
    tr_future_t *f = s_submit_i(pool, "square", 7);
    int64_t v = 0;
    tr_msg_t *reply = NULL;
    ck_assert_int_eq(s_outcome_keep(&f, &v, &reply, false), 0);
    ck_assert_int_eq(v, 49);
    ck_assert(tr_msg_is(reply, "sq"));
    tr_msg_destroy(&reply);
    /* The nap's result came meanwhile and did not change the outcome. */
    ck_assert_int_ge(ts_now_ms() - t0, 700);
    tr_msg_t *r = NULL;
    ck_assert_int_eq(tr_future_get(late, 0, &r), TR_ETIMEDOUT);
    ck_assert_ptr_null(r);
    tr_future_destroy(&late);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = 1, .idle = 1, .running = 0,
                              .done = 2), &st);
    ck_assert_uint_eq(st.failed, 1);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(pool_task_timeout_is_the_default_and_tr_forever_or_a_longer_one_overrides_it)
{
    tr_pool_mode_t mode = s_mode(_i);
    tr_node_t *node = ts_node(NULL);
    tr_pool_opts_t o = {.workers = 2, .mode = mode, .task_timeout_ms = 150};
    tr_pool_t *pool = s_start_opts(node, &o);
    int64_t v = 0;
    tr_future_t *f = s_submit(pool, "nap", ts_msg_i("a", 400), TR_FOREVER);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 400);
    f = s_submit(pool, "nap", ts_msg_i("a", 400), 5000);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 400);
    int64_t t0 = ts_now_ms();
    f = s_submit(pool, "nap", ts_msg_i("a", 1500), TR_DEFAULT);
    ck_assert_int_eq(s_outcome(&f, NULL), TR_ETIMEDOUT);
    int64_t took = ts_now_ms() - t0;
    ck_assert_int_ge(took, 100);
    ck_assert_int_lt(took, 1400);
    /* Shorter than the default: fine. */
    f = s_submit_i(pool, "square", 11);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 121);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = 2, .done = 4), &st);
    ck_assert_uint_eq(st.failed, 1);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cancel                                                              */
/* ------------------------------------------------------------------ */

START_TEST(cancel_of_a_queued_task_is_ecanceled_running_is_ebusy_done_is_enoent)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    s_gate_t g;
    s_gate_make(&g);
    char path[160];
    snprintf(path, sizeof path, "%s/ran", g.dir);
    tr_future_t *g1 = s_submit(pool, "gate", s_path_msg(g.path), TR_FOREVER);
    tr_future_t *g2 = s_submit(pool, "gate", s_path_msg(g.path), TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 2), NULL);
    tr_future_t *q1 = s_submit(pool, "note", s_path_msg(path), TR_FOREVER);
    tr_future_t *q2 = s_submit_i(pool, "square", 4);
    s_wait_stats(pool, S_WANT(.running = 2, .queued = 2), NULL);

    ck_assert_int_eq(tr_pool_cancel(pool, q1), 0);
    /* Settled (its outcome is read once, at the end). */
    ck_assert_int_eq(tr_future_wait(q1, TS_CALL_MS), 0);
    ck_assert_int_eq(tr_pool_cancel(pool, q1), TR_ENOENT); /* done */
    ck_assert_int_eq(tr_pool_cancel(pool, g1), TR_EBUSY);
    ck_assert_int_eq(tr_pool_cancel(pool, g2), TR_EBUSY);
    s_wait_stats(pool, S_WANT(.running = 2, .queued = 1), NULL);

    s_gate_release(&g, 2);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome_keep(&g1, &v, NULL, true), 0);
    ck_assert_int_eq(v, 'g');
    ck_assert_int_eq(s_outcome(&g2, NULL), 0);
    ck_assert_int_eq(s_outcome_keep(&q2, &v, NULL, true), 0);
    ck_assert_int_eq(v, 16);
    ck_assert_int_eq(tr_pool_cancel(pool, g1), TR_ENOENT); /* done */
    ck_assert_int_eq(tr_pool_cancel(pool, q2), TR_ENOENT);
    /* Canceled, and the canceled task never ran (everything submitted
     * after it has run). */
    ck_assert_int_eq(tr_future_get(q1, 0, NULL), TR_ECANCELED);
    s_wait_stats(pool, S_WANT(.running = 0, .queued = 0, .done = 4), NULL);
    ck_assert_int_eq(s_lines(path, NULL, 0), 0);
    tr_future_destroy(&q1);
    tr_future_destroy(&g1);
    tr_future_destroy(&q2);
    s_shutdown(&pool);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

START_TEST(cancel_of_a_future_that_is_not_the_pools_is_enoent)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *a = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_pool_t *b = s_start(node, TR_POOL_THREADS, 1, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *busy = s_submit(a, "gate", s_path_msg(g.path), TR_FOREVER);
    s_wait_stats(a, S_WANT(.running = 1), NULL);
    tr_future_t *queued = s_submit_i(a, "square", 5);
    s_wait_stats(a, S_WANT(.queued = 1), NULL);
    /* Pool b does not know a's tasks: neither the queued nor the running
     * one, and they go on. */
    ck_assert_int_eq(tr_pool_cancel(b, queued), TR_ENOENT);
    ck_assert_int_eq(tr_pool_cancel(b, busy), TR_ENOENT);
    /* Nor does a pool know an ask's future. */
    tr_id_t gate = ts_spawn(node, "ts_gate", "gate");
    tr_msg_t *m = ts_msg("hold");
    tr_future_t *ask = NULL;
    ck_assert_int_eq(tr_ask_id(node, gate, &m, TS_CALL_MS, &ask), 0);
    ck_assert_int_eq(tr_pool_cancel(a, ask), TR_ENOENT);
    ck_assert_int_eq(tr_pool_cancel(a, NULL), TR_EINVAL);
    ts_gate_open(node);
    ck_assert_int_eq(tr_future_get(ask, TS_CALL_MS, NULL), 0);
    tr_future_destroy(&ask);
    s_gate_release(&g, 1);
    ck_assert_int_eq(s_outcome(&busy, NULL), 0);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&queued, &v), 0);
    ck_assert_int_eq(v, 25);
    s_shutdown(&b);
    s_shutdown(&a);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Resize                                                              */
/* ------------------------------------------------------------------ */

START_TEST(resize_up_and_down_changes_the_workers_and_tasks_still_complete)
{
    tr_pool_mode_t mode = s_mode(_i);
    bool procs = mode == TR_POOL_PROCESSES;
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 2, 0);
    s_gate_t g;
    s_gate_make(&g);

    /* Up: four workers, four tasks at once. */
    ck_assert_int_eq(tr_pool_resize(pool, 4), 0);
    s_wait_stats(pool, S_WANT(.workers = 4, .idle = 4), NULL);
    if (procs)
        ck_assert(s_wait_kids(4, S_SETTLE_MS));
    tr_future_t *gf[4];
    s_gates(pool, &g, 4, gf);
    s_wait_stats(pool, S_WANT(.running = 4, .idle = 0), NULL);

    /* Down to one while all four are busy: they finish their tasks. */
    ck_assert_int_eq(tr_pool_resize(pool, 1), 0);
    tr_future_t *sq = s_submit_i(pool, "square", 6);
    s_gate_release(&g, 4);
    for (int i = 0; i < 4; i++) {
        int64_t v = 0;
        ck_assert_int_eq(s_outcome(&gf[i], &v), 0);
        ck_assert_int_eq(v, 'g');
    }
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&sq, &v), 0);
    ck_assert_int_eq(v, 36);
    s_wait_stats(pool, S_WANT(.workers = 1, .idle = 1, .running = 0,
                              .queued = 0), NULL);
    if (procs)
        ck_assert(s_wait_kids(1, S_SETTLE_MS));

    /* One at a time now. */
    gf[0] = s_submit(pool, "gate", s_path_msg(g.path), TR_FOREVER);
    gf[1] = s_submit(pool, "gate", s_path_msg(g.path), TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1, .queued = 1, .workers = 1),
                 NULL);
    s_gate_release(&g, 2);
    ck_assert_int_eq(s_outcome(&gf[0], NULL), 0);
    ck_assert_int_eq(s_outcome(&gf[1], NULL), 0);
    s_squares(pool, 50);

    /* Out of range: refused, nothing changes. */
    ck_assert_int_eq(tr_pool_resize(pool, 0), TR_EINVAL);
    ck_assert_int_eq(tr_pool_resize(pool, -3), TR_EINVAL);
    ck_assert_int_eq(tr_pool_resize(pool, 1025), TR_EINVAL);
    ck_assert_int_eq(tr_pool_resize(NULL, 2), TR_EINVAL);
    tr_pool_stats_t st;
    s_stats(pool, &st);
    ck_assert_int_eq(st.workers, 1);

    /* Up again. */
    ck_assert_int_eq(tr_pool_resize(pool, 3), 0);
    s_wait_stats(pool, S_WANT(.workers = 3, .idle = 3), &st);
    if (procs)
        ck_assert(s_wait_kids(3, S_SETTLE_MS));
    ck_assert_uint_eq(st.worker_deaths, 0); /* retiring is not dying */
    ck_assert_uint_eq(st.failed, 0);
    s_squares(pool, 50);
    s_shutdown(&pool);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Shutdown                                                            */
/* ------------------------------------------------------------------ */

/* A shutdown run by another thread, so that the test sees the pool while
 * it shuts down. */
typedef struct {
    tr_pool_t *pool; /* the shutter's copy of the handle */
    bool cancel;
    int timeout_ms;
    int rc;
    int64_t took_ms;
    ts_flag_t done;
} s_shut_t;

static void *
s_shutter_main(void *arg)
{
    s_shut_t *s = arg;
    int64_t t0 = ts_now_ms();
    s->rc = tr_pool_shutdown(&s->pool, s->cancel, s->timeout_ms);
    s->took_ms = ts_now_ms() - t0;
    ts_flag_set(&s->done);
    return NULL;
}

/* How a submit made while the pool shuts down was turned away. */
typedef enum {
    S_REFUSED = 1,     /* tr_pool_submit returned TR_ECLOSED (the header) */
    S_FUTURE_ECLOSED,  /* it returned 0, and the future failed TR_ECLOSED */
} s_closed_t;

/* Start s's shutdown on a new thread and return once a submit (of square
 * [3]) is turned away with TR_ECLOSED: the shutdown has begun. The header
 * has submit return TR_ECLOSED; a pool that answers it through the
 * future instead is also taken as "begun" here, so that the tests of
 * shutdown test the rest, and submit_during_shutdown_fails_its_future_with_eclosed
 * tells the two apart (the return value says which). A submit accepted
 * and still pending after 50 ms was queued before the shutdown began: it
 * goes to extra (up to max), their number to *nextra. The caller must
 * not use its handle once the shutter may have freed it. */
static s_closed_t
s_shutdown_begin(tr_pool_t *pool, s_shut_t *s, pthread_t *th,
                 tr_future_t **extra, int max, int *nextra)
{
    s->pool = pool;
    ck_assert_int_eq(pthread_create(th, NULL, s_shutter_main, s), 0);
    *nextra = 0;
    int64_t until = ts_now_ms() + S_SETTLE_MS;
    for (;;) {
        tr_msg_t *a = ts_msg_i("a", 3);
        tr_future_t *f = NULL;
        int rc = tr_pool_submit(pool, "square", &a, TR_FOREVER, &f);
        if (rc == TR_ECLOSED) {
            ck_assert_ptr_nonnull(a); /* refused: still ours */
            ck_assert_ptr_null(f);
            tr_msg_destroy(&a);
            return S_REFUSED;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_null(a);
        if (tr_future_wait(f, 50) == 0) {
            int frc = tr_future_get(f, 0, NULL);
            tr_future_destroy(&f);
            /* Queued before the shutdown, canceled by it: go on. */
            if (frc == TR_ECANCELED && s->cancel)
                continue;
            ck_assert_msg(frc == TR_ECLOSED, "a task submitted during the "
                          "shutdown settled with %d (%s) while the only "
                          "worker is held", frc, tr_strerror(frc));
            return S_FUTURE_ECLOSED;
        }
        ck_assert_int_lt(*nextra, max);
        extra[(*nextra)++] = f;
        ck_assert_msg(ts_now_ms() < until, "submits never got TR_ECLOSED");
    }
}

static void
s_shutdown_end(pthread_t th, s_shut_t *s)
{
    ck_assert(ts_flag_wait(&s->done, TS_CALL_MS));
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

START_TEST(graceful_shutdown_runs_queued_tasks_refuses_new_ones_and_frees_the_pool)
{
    tr_pool_mode_t mode = s_mode(_i);
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 1, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *run = s_submit(pool, "gate", s_path_msg(g.path),
                                TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1), NULL);
    enum { Q = 5 };
    tr_future_t *q[Q];
    for (int i = 0; i < Q; i++)
        q[i] = s_submit_i(pool, "square", 10 + i);
    s_wait_stats(pool, S_WANT(.queued = Q), NULL);

    s_shut_t s = {.cancel = false, .timeout_ms = TS_CALL_MS,
                  .done = TS_FLAG_INIT};
    tr_future_t *extra[400];
    int nextra = 0;
    pthread_t th;
    (void)s_shutdown_begin(pool, &s, &th, extra, 400, &nextra);
    pool = NULL; /* the shutter's from now on */
    /* The one worker is held: nothing queued has run, the shutdown waits
     * for it. */
    ck_assert(!ts_flag_wait(&s.done, 0));
    for (int i = 0; i < Q; i++)
        ck_assert(!tr_future_done(q[i]));

    s_gate_release(&g, 1);
    s_shutdown_end(th, &s);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_ptr_null(s.pool);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&run, &v), 0);
    ck_assert_int_eq(v, 'g');
    for (int i = 0; i < Q; i++) {
        ck_assert_int_eq(s_outcome(&q[i], &v), 0);
        ck_assert_int_eq(v, (10 + i) * (10 + i));
    }
    for (int i = 0; i < nextra; i++) {
        ck_assert_int_eq(s_outcome(&extra[i], &v), 0);
        ck_assert_int_eq(v, 9);
    }
    if (mode == TR_POOL_PROCESSES)
        ck_assert(s_wait_kids(0, S_SETTLE_MS));
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

START_TEST(shutdown_with_cancel_pending_cancels_queued_tasks_and_finishes_running_ones)
{
    tr_pool_mode_t mode = s_mode(_i);
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 1, 0);
    s_gate_t g;
    s_gate_make(&g);
    char path[160];
    snprintf(path, sizeof path, "%s/ran", g.dir);
    tr_future_t *run = s_submit(pool, "gate", s_path_msg(g.path),
                                TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1), NULL);
    enum { Q = 5 };
    tr_future_t *q[Q];
    for (int i = 0; i < Q; i++)
        q[i] = s_submit(pool, "note", s_path_msg(path), TR_FOREVER);
    s_wait_stats(pool, S_WANT(.queued = Q), NULL);

    s_shut_t s = {.cancel = true, .timeout_ms = TS_CALL_MS,
                  .done = TS_FLAG_INIT};
    tr_future_t *extra[400];
    int nextra = 0;
    pthread_t th;
    (void)s_shutdown_begin(pool, &s, &th, extra, 400, &nextra);
    pool = NULL;
    /* The queued ones fail now, while the running one still runs. */
    for (int i = 0; i < Q; i++) {
        ck_assert_msg(tr_future_wait(q[i], 5000) == 0,
                      "queued task %d not canceled while the running one "
                      "runs", i);
        ck_assert_int_eq(s_outcome(&q[i], NULL), TR_ECANCELED);
    }
    for (int i = 0; i < nextra; i++)
        ck_assert_int_eq(s_outcome(&extra[i], NULL), TR_ECANCELED);
    ck_assert(!tr_future_done(run));
    ck_assert(!ts_flag_wait(&s.done, 0));

    s_gate_release(&g, 1);
    s_shutdown_end(th, &s);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_ptr_null(s.pool);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&run, &v), 0); /* finished, not canceled */
    ck_assert_int_eq(v, 'g');
    ck_assert_int_eq(s_lines(path, NULL, 0), 0); /* no queued one ran */
    if (mode == TR_POOL_PROCESSES)
        ck_assert(s_wait_kids(0, S_SETTLE_MS));
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

START_TEST(submit_during_shutdown_fails_its_future_with_eclosed)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *run = s_submit(pool, "gate", s_path_msg(g.path),
                                TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1), NULL);
    s_shut_t s = {.cancel = false, .timeout_ms = TS_CALL_MS,
                  .done = TS_FLAG_INIT};
    tr_future_t *extra[400];
    int nextra = 0;
    pthread_t th;
    s_closed_t how = s_shutdown_begin(pool, &s, &th, extra, 400, &nextra);
    pool = NULL;
    s_gate_release(&g, 1);
    s_shutdown_end(th, &s);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(s_outcome(&run, NULL), 0);
    for (int i = 0; i < nextra; i++)
        ck_assert_int_eq(s_outcome(&extra[i], NULL), 0);
    s_gate_close(&g);
    ts_destroy(&node);
    /* The pool knows it is shutting down, not the submitter: the submit
     * is sent, and its future fails with TR_ECLOSED. */
    ck_assert_msg(how == S_FUTURE_ECLOSED, "tr_pool_submit during a "
                  "shutdown: expected its future to fail with TR_ECLOSED");
}
END_TEST

START_TEST(shutdown_past_its_deadline_kills_a_stuck_process_worker_and_returns_etimedout)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 2, 0);
    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/hang", dir);
    tr_future_t *stuck = s_submit(pool, "hang", s_path_msg(path),
                                  TR_FOREVER);
    ck_assert(s_wait_lines(path, 1, S_SETTLE_MS)); /* it runs */
    long hung = 0;
    ck_assert_int_eq(s_lines(path, &hung, 1), 1);
    s_squares(pool, 10); /* on the other worker */

    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, 500), TR_ETIMEDOUT);
    int64_t took = ts_now_ms() - t0;
    fprintf(stderr, "pool: shutdown with a stuck process task returned "
            "after %lld ms (deadline 500)\n", (long long)took);
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(s_outcome(&stuck, NULL), TR_ESHUTDOWN);
    /* "Shut the pool down within timeout_ms": at the deadline, give or
     * take a kill and a reap. */
    ck_assert_int_ge(took, 400);
    ck_assert_int_lt(took, 500 + S_GRACE_MS);
    /* The stuck worker was killed; no child is left. */
    ck_assert(s_wait_kids(0, S_SETTLE_MS));
    ck_assert(!s_alive((pid_t)hung));
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

START_TEST(shutdown_past_its_deadline_with_a_busy_thread_worker_returns_etimedout)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_future_t *busy = s_submit(pool, "nap", ts_msg_i("a", 2000),
                                 TR_FOREVER);
    s_wait_stats(pool, S_WANT(.running = 1), NULL);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, 300), TR_ETIMEDOUT);
    int64_t took = ts_now_ms() - t0;
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(s_outcome(&busy, NULL), TR_ESHUTDOWN);
    /* Settled at the deadline, not when the nap ended. */
    ck_assert_int_lt(ts_now_ms() - t0, 1900);
    fprintf(stderr, "pool: shutdown with a busy thread task returned after "
            "%lld ms (deadline 300)\n", (long long)took);
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 300 + S_GRACE_MS);
    /* The thread cannot be killed; it ends after its nap, and the node
     * then goes down cleanly. */
    ts_destroy(&node);
}
END_TEST

START_TEST(shutdown_with_tr_default_waits_the_nodes_shutdown_timeout)
{
    tr_node_opts_t no = {.shutdown_timeout_ms = 400};
    tr_node_t *node = ts_node(&no);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 1, 0);
    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/hang", dir);
    tr_future_t *stuck = s_submit(pool, "hang", s_path_msg(path),
                                  TR_FOREVER);
    ck_assert(s_wait_lines(path, 1, S_SETTLE_MS));
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_pool_shutdown(&pool, true, TR_DEFAULT), TR_ETIMEDOUT);
    int64_t took = ts_now_ms() - t0;
    fprintf(stderr, "pool: shutdown (TR_DEFAULT, node shutdown timeout "
            "400 ms) with a stuck process task returned after %lld ms\n",
            (long long)took);
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(s_outcome(&stuck, NULL), TR_ESHUTDOWN);
    ck_assert_int_ge(took, 300);
    ck_assert_int_lt(took, 400 + S_GRACE_MS);
    ck_assert(s_wait_kids(0, S_SETTLE_MS));
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad input                                                           */
/* ------------------------------------------------------------------ */

START_TEST(start_rejects_bad_input_and_leaves_nothing)
{
    tr_node_t *node = ts_node(NULL);
    tr_node_stats_t ns0, ns1;
    ts_stats(node, &ns0);
    tr_pool_t *p = NULL;
    tr_pool_opts_t o = {.workers = 1};
    ck_assert_int_eq(tr_pool_start(NULL, &o, &p), TR_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(tr_pool_start(node, &o, NULL), TR_EINVAL);
    const int bad[] = {-1, -1000, 1025, 100000, INT32_MIN};
    for (int m = 0; m < 2; m++) {
        o.mode = s_mode(m);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            o.workers = bad[i];
            ck_assert_int_eq(tr_pool_start(node, &o, &p), TR_EINVAL);
            ck_assert_ptr_null(p);
        }
    }
    o.workers = 1;
    o.mode = (tr_pool_mode_t)7;
    ck_assert_int_eq(tr_pool_start(node, &o, &p), TR_EINVAL);
    ck_assert_ptr_null(p);
    /* No actor and no child left behind. */
    ts_stats(node, &ns1);
    ck_assert_uint_eq(ns1.alive, ns0.alive);
    ck_assert_int_eq(s_kids(NULL, NULL, 0), 0);
    /* Good input still works. */
    o.mode = TR_POOL_THREADS;
    p = s_start_opts(node, &o);
    s_squares(p, 10);
    s_shutdown(&p);
    ts_destroy(&node);
}
END_TEST

/* The header's convention: "Option structs: zero means default, NULL
 * means all defaults." */
START_TEST(start_with_null_opts_is_a_default_thread_pool)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *p = NULL;
    ck_assert_int_eq(tr_pool_start(node, NULL, &p), 0);
    ck_assert_ptr_nonnull(p);
    tr_pool_stats_t st;
    s_stats(p, &st);
    ck_assert(st.workers == s_ncpus() || st.workers == s_ncpus_affinity());
    ck_assert_int_eq(s_worker_pid(p), getpid()); /* threads */
    s_squares(p, 10);
    s_shutdown(&p);
    ts_destroy(&node);
}
END_TEST

START_TEST(process_pool_executable_runs_that_program_and_a_missing_one_is_enoent)
{
    tr_node_t *node = ts_node(NULL);
    /* This program, named: the workers run its tasks. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    tr_pool_opts_t o = {.workers = 2, .mode = TR_POOL_PROCESSES,
                        .executable = self};
    tr_pool_t *p = s_start_opts(node, &o);
    pid_t pid = s_worker_pid(p);
    ck_assert_int_ne(pid, getpid());
    s_squares(p, 20);
    s_shutdown(&p);
    ck_assert(s_wait_kids(0, S_SETTLE_MS));

    /* A missing one: the spawn's error, and nothing left behind. The
     * baseline is taken now: the node's root supervisor and its process
     * service start with the first pool and stay. */
    tr_node_stats_t ns0, ns1;
    ts_stats(node, &ns0);
    o.executable = "/nonexistent/troupe-pool-worker";
    ck_assert_int_eq(tr_pool_start(node, &o, &p), TR_ENOENT);
    ck_assert_ptr_null(p);
    ck_assert(s_wait_kids(0, S_SETTLE_MS));
    ts_stats(node, &ns1);
    ck_assert_uint_eq(ns1.alive, ns0.alive);
    ts_destroy(&node);
}
END_TEST

START_TEST(submit_rejects_bad_input_and_leaves_args_with_the_caller)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    char toolong[TR_NAME_MAX + 2];
    memset(toolong, 'z', TR_NAME_MAX + 1);
    toolong[TR_NAME_MAX + 1] = '\0';
    tr_msg_t *args = ts_msg_i("a", 8);
    tr_future_t *f = NULL;
    ck_assert_int_eq(tr_pool_submit(NULL, "square", &args, TR_FOREVER, &f),
                     TR_EINVAL);
    ck_assert_int_eq(tr_pool_submit(pool, NULL, &args, TR_FOREVER, &f),
                     TR_EINVAL);
    ck_assert_int_eq(tr_pool_submit(pool, "", &args, TR_FOREVER, &f),
                     TR_EINVAL);
    ck_assert_int_eq(tr_pool_submit(pool, toolong, &args, TR_FOREVER, &f),
                     TR_ENAMETOOLONG);
    ck_assert_int_eq(tr_pool_submit(pool, "square", &args, TR_FOREVER, NULL),
                     TR_EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(args); /* refused: still ours */
    /* The same args, accepted now. */
    f = s_submit(pool, "square", args, TR_FOREVER);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 64);
    /* No arguments: *args NULL. */
    tr_msg_t *none = NULL;
    ck_assert_int_eq(tr_pool_submit(pool, "nargs", &none, TR_FOREVER, &f),
                     0);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 0);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.done = 2), &st);
    ck_assert_uint_eq(st.failed, 0); /* refused submits are no tasks */
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* A "submit" made by hand (another language, or a forgery): a name or an
 * args tag with a NUL inside is refused, also when what comes before the
 * NUL is a name the pool knows, and the pool goes on. */
START_TEST(hand_made_submits_with_a_nul_inside_a_name_or_tag_are_eproto)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    int64_t v = 0;
    tr_future_t *f = s_submit_i(pool, "square", 3); /* "square" interned */
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 9);
    static const struct {
        const char *name, *tag;
        size_t nlen, tlen;
    } bad[] = {{"square\0zz", "i", 9, 1}, {"square", "i\0j", 6, 3}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_msg_t *m = ts_msg("submit"), *r = NULL;
        const uint8_t three = 3; /* a msgpack fixint, the args payload */
        ck_assert_int_eq(tr_msg_add_strn(m, bad[i].name, bad[i].nlen), 0);
        ck_assert_int_eq(tr_msg_add_strn(m, bad[i].tag, bad[i].tlen), 0);
        ck_assert_int_eq(tr_msg_add_bin(m, &three, 1), 0);
        ck_assert_int_eq(tr_msg_add_int(m, TR_FOREVER), 0);
        ck_assert_int_eq(tr_call_id(node, tr_pool_id(pool), &m, TS_CALL_MS,
                                    &r),
                         TR_EPROTO);
        ck_assert_ptr_null(r);
    }
    f = s_submit_i(pool, "square", 4);
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 16);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(stats_resize_and_cancel_reject_null)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_pool_stats_t st;
    ck_assert_int_eq(tr_pool_stats(NULL, &st), TR_EINVAL);
    ck_assert_int_eq(tr_pool_stats(pool, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_resize(NULL, 2), TR_EINVAL);
    tr_future_t *f = s_submit_i(pool, "square", 2);
    ck_assert_int_eq(tr_pool_cancel(NULL, f), TR_EINVAL);
    ck_assert_int_eq(tr_pool_cancel(pool, NULL), TR_EINVAL);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f, &v), 0);
    ck_assert_int_eq(v, 4);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Counters                                                            */
/* ------------------------------------------------------------------ */

START_TEST(stats_count_done_failed_retried_and_worker_deaths)
{
    tr_pool_mode_t mode = s_mode(_i);
    bool procs = mode == TR_POOL_PROCESSES;
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, mode, 2, 0);
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.workers = 2, .idle = 2), &st);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.done, 0);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.worker_deaths, 0);

    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/tries", dir);
    enum { OK = 30, BAD = 5 };
    tr_future_t *f[OK + BAD + 2];
    int n = 0;
    for (int i = 0; i < OK; i++)
        f[n++] = s_submit_i(pool, "square", i);
    for (int i = 0; i < BAD; i++)
        f[n++] = s_submit_i(pool, "fail", TR_ERANGE);
    f[n++] = s_submit_i(pool, "no_such_task", 0);
    if (procs)
        f[n++] = s_submit(pool, "crash", s_path_msg(path), TR_FOREVER);
    int ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        int rc = s_outcome(&f[i], NULL);
        if (rc == 0)
            ok++;
        else
            failed++;
    }
    ck_assert_int_eq(ok, OK);
    ck_assert_int_eq(failed, n - OK);

    s_wait_stats(pool, S_WANT(.done = n, .workers = 2, .idle = 2,
                              .queued = 0, .running = 0), &st);
    ck_assert_uint_eq(st.failed, (uint64_t)(n - OK));
    /* The crash task: 3 tries alone, maybe one more in a batch (whose
     * other tasks were then sent back too). */
    if (procs) {
        ck_assert_uint_ge(st.worker_deaths, 3);
        ck_assert_uint_le(st.worker_deaths, 4);
        ck_assert_uint_ge(st.retried, 2);
        ck_assert_uint_le(st.retried, 2 + 16);
    } else {
        ck_assert_uint_eq(st.retried, 0);
        ck_assert_uint_eq(st.worker_deaths, 0);
    }
    s_shutdown(&pool);
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Resources                                                           */
/* ------------------------------------------------------------------ */

/* Descriptors are compared exactly around the node's whole life (as in
 * the process suite), and between pool cycles of one node: the first
 * cycle warms the node up (its root supervisor and, for process pools,
 * its process service start with the first pool and stay; sockets are
 * cached), after which the count must come back to at most 2 more than
 * then (the process suite's allowance for the socket cache) after every
 * cycle: a leak of one descriptor per pool shows by the last. ZeroMQ
 * closes sockets in its own thread, so each cycle waits (with a
 * deadline) for the count to come down. Running actors too. */
START_TEST(pools_leave_no_children_zombies_actors_or_fds_behind)
{
    tr_pool_mode_t mode = s_mode(_i);
    bool procs = mode == TR_POOL_PROCESSES;
    int fds0 = ts_fds();
    tr_node_t *node = ts_node(NULL);
    char dir[64], path[128];
    ts_tmpdir(dir, sizeof dir, "trpool");
    snprintf(path, sizeof path, "%s/tries", dir);
    tr_node_stats_t ns0, ns;
    int fds_warm = -1;
    for (int cycle = 0; cycle < 6; cycle++) {
        tr_pool_t *pool = s_start(node, mode, 3, 0);
        s_squares(pool, 60);
        if (procs) {
            ck_assert(s_wait_kids(3, S_SETTLE_MS));
            tr_future_t *f = s_submit(pool, "crash", s_path_msg(path),
                                      TR_FOREVER);
            ck_assert_int_eq(s_outcome(&f, NULL), TR_EWORKERDIED);
            s_wait_stats(pool, S_WANT(.workers = 3, .idle = 3), NULL);
        }
        s_squares(pool, 60);
        s_shutdown(&pool);
        /* Every worker process has ended and been reaped. */
        ck_assert(s_wait_kids(0, S_SETTLE_MS));
        if (cycle == 0) {
            ts_stats(node, &ns0);
            fds_warm = ts_fds();
            continue;
        }
        /* The pool's actors (pool, supervisor, workers) have ended. */
        int64_t until = ts_now_ms() + S_SETTLE_MS;
        do
            ts_stats(node, &ns);
        while (ns.alive != ns0.alive && ts_now_ms() < until &&
               poll(NULL, 0, 2) >= 0);
        ck_assert_uint_eq(ns.alive, ns0.alive);
        int fds;
        until = ts_now_ms() + 3000;
        while ((fds = ts_fds()) > fds_warm + 2 && ts_now_ms() < until)
            (void)poll(NULL, 0, 5);
        ck_assert_msg(fds <= fds_warm + 2, "cycle %d: %d descriptors, %d "
                      "after the first pool", cycle, fds, fds_warm);
    }
    ts_destroy(&node);
    ck_assert_int_eq(ts_fds(), fds0);
    ts_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *
s_tcase(Suite *s, const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* Loop tests over both modes: iteration 0 threads, 1 processes. */
/* ------------------------------------------------------------------ */
/* map                                                                 */
/* ------------------------------------------------------------------ */

/* An input of n "a" [i] items, made as asked (streaming), and what map
 * gave back: result i's square, the order of indexes seen, the most
 * items ever made but not yet answered. */
typedef struct s_feed {
    int64_t n, made;
    int64_t nap_every; /* item i with i % nap_every == 0 naps (0: none) */
    int64_t *got;      /* got[i]: result of item i (-1 until then) */
    int *rcs;
    uint64_t *order;   /* indexes in the order out saw them */
    int64_t seen, max_open;
    int stop_at;       /* out returns TR_ERANGE at this index (-1: never) */
} s_feed_t;

static int
s_feed_next(void *arg, tr_msg_t **item)
{
    s_feed_t *f = arg;
    if (f->made == f->n)
        return 1;
    int64_t i = f->made++;
    int64_t open = f->made - f->seen;
    if (open > f->max_open)
        f->max_open = open;
    /* nap items carry a duration; the others their index to square */
    if (f->nap_every > 0 && i % f->nap_every == 0) {
        int64_t v[2] = {i, 30};
        *item = ts_msg_ints("nap", 2, v);
    } else {
        *item = ts_msg_i("a", i);
    }
    return 0;
}

static int
s_feed_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_feed_t *f = arg;
    ck_assert_uint_lt(index, (uint64_t)f->n);
    ck_assert_int_eq(f->got[index], -1); /* once each */
    f->rcs[index] = rc;
    f->order[f->seen++] = index;
    int64_t v = 0;
    if (rc == 0) {
        ck_assert_ptr_nonnull(result);
        ck_assert_int_eq(ts_read_ints(result, 1, &v), 0);
    } else {
        ck_assert_ptr_null(result);
    }
    f->got[index] = v;
    return (int)index == f->stop_at ? TR_ERANGE : 0;
}

/* mapsq [i] -> [i * i]; "nap" [i, ms]: naps ms first, then [i * i]. */
static int
s_mapsq(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t v[2] = {0, 0};
    tr_reader_t r;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &v[0]);
    if (rc != 0)
        return rc;
    if (tr_msg_is(args, "nap") && tr_read_int(&r, &v[1]) == 0)
        (void)poll(NULL, 0, (int)v[1]);
    if (v[0] % 1000 == 999)
        return TR_ERANGE; /* an item that fails, alone */
    v[0] *= v[0];
    return s_result_ints(result, "sq", 1, v);
}
TR_TASK(mapsq, s_mapsq);

static void
s_feed_init(s_feed_t *f, int64_t n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->stop_at = -1;
    f->got = malloc((size_t)n * sizeof *f->got);
    f->rcs = calloc((size_t)n, sizeof *f->rcs);
    f->order = calloc((size_t)n, sizeof *f->order);
    ck_assert(f->got && f->rcs && f->order);
    for (int64_t i = 0; i < n; i++)
        f->got[i] = -1;
}

static void
s_feed_check(const s_feed_t *f)
{
    ck_assert_int_eq(f->seen, f->n);
    for (int64_t i = 0; i < f->n; i++) {
        if (i % 1000 == 999) {
            ck_assert_int_eq(f->rcs[i], TR_ERANGE);
        } else {
            ck_assert_int_eq(f->rcs[i], 0);
            ck_assert_int_eq(f->got[i], i * i);
        }
    }
}

static void
s_feed_free(s_feed_t *f)
{
    free(f->got);
    free(f->rcs);
    free(f->order);
}

static void
s_progress(void *arg, uint64_t done, uint64_t total)
{
    uint64_t *last = arg;
    ck_assert_uint_gt(done, last[0]); /* grows */
    last[0] = done;
    last[1] = total;
}

/* In order, with uneven durations (every 97th item naps 30 ms), for each
 * chunk size; items that fail give their own code; memory stays bounded
 * (items made but not answered never exceed window x chunk). */
START_TEST(map_gives_every_result_in_input_order_with_uneven_durations)
{
    static const int chunks[] = {1, 3, 50};
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        s_feed_t f;
        s_feed_init(&f, 2000);
        f.nap_every = 97;
        uint64_t prog[2] = {0, 0};
        tr_map_opts_t o = {.chunk = chunks[c], .window = 4, .total = 2000,
                           .progress = s_progress, .progress_arg = prog};
        ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_feed_next, &f,
                                     s_feed_out, &f, &o), 0);
        s_feed_check(&f);
        for (int64_t i = 0; i < f.n; i++)
            ck_assert_uint_eq(f.order[i], (uint64_t)i);
        ck_assert_int_le(f.max_open, 4 * chunks[c]);
        ck_assert_uint_eq(prog[0], 2000);
        ck_assert_uint_eq(prog[1], 2000);
        s_feed_free(&f);
    }
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* Unordered: every result once, and a slow first item does not hold the
 * others back (they come before it). */
START_TEST(map_unordered_gives_results_as_they_finish)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    s_feed_t f;
    s_feed_init(&f, 200);
    f.nap_every = 1000; /* item 0 naps */
    tr_map_opts_t o = {.chunk = 1, .window = 8, .unordered = true};
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_feed_next, &f, s_feed_out,
                                 &f, &o), 0);
    s_feed_check(&f);
    ck_assert_uint_ne(f.order[0], 0); /* item 0 was not first */
    s_feed_free(&f);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* An error of out stops the map with it; the tasks in flight are waited
 * for, and the pool goes on. */
START_TEST(map_stops_at_an_error_of_out_and_the_pool_goes_on)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 2, 0);
    s_feed_t f;
    s_feed_init(&f, 500);
    f.stop_at = 100;
    tr_map_opts_t o = {.chunk = 10, .window = 3};
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_feed_next, &f, s_feed_out,
                                 &f, &o), TR_ERANGE);
    ck_assert_int_lt(f.made, 500); /* stopped feeding */
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.running = 0, .queued = 0), &st);
    s_squares(pool, 10);
    s_feed_free(&f);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(map_array_fills_results_and_codes)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 2, 0);
    enum { N = 1500 };
    tr_msg_t *in[N], *out[N];
    int rcs[N];
    for (int i = 0; i < N; i++)
        in[i] = ts_msg_i("a", i);
    tr_map_opts_t o = {.chunk = 64};
    ck_assert_int_eq(tr_pool_map_array(pool, "mapsq", in, N, out, rcs, &o),
                     0);
    for (int i = 0; i < N; i++) {
        if (i % 1000 == 999) {
            ck_assert_int_eq(rcs[i], TR_ERANGE);
            ck_assert_ptr_null(out[i]);
            continue;
        }
        ck_assert_int_eq(rcs[i], 0);
        int64_t v = 0;
        ck_assert_int_eq(ts_read_ints(out[i], 1, &v), 0);
        ck_assert_int_eq(v, (int64_t)i * i);
        tr_msg_destroy(&out[i]);
    }
    for (int i = 0; i < N; i++)
        tr_msg_destroy(&in[i]);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

static int
s_no_next(void *arg, tr_msg_t **item)
{
    (void)arg, (void)item;
    return 1;
}

static int
s_no_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    (void)arg, (void)index, (void)rc, (void)result;
    return 0;
}

START_TEST(map_rejects_bad_input)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_map_opts_t neg = {.chunk = -1};
    tr_map_opts_t negw = {.window = -2};
    ck_assert_int_eq(tr_pool_map(NULL, "mapsq", s_no_next, NULL, s_no_out,
                                 NULL, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", NULL, NULL, s_no_out, NULL,
                                 NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_no_next, NULL, NULL, NULL,
                                 NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map(pool, NULL, s_no_next, NULL, s_no_out, NULL,
                                 NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_no_next, NULL, s_no_out,
                                 NULL, &neg), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_no_next, NULL, s_no_out,
                                 NULL, &negw), TR_EINVAL);
    /* An empty input is a map that ran. */
    ck_assert_int_eq(tr_pool_map(pool, "mapsq", s_no_next, NULL, s_no_out,
                                 NULL, NULL), 0);
    ck_assert_int_eq(tr_pool_map_array(pool, "mapsq", NULL, 0, NULL, NULL,
                                       NULL), 0);
    ck_assert_int_eq(tr_pool_map_array(pool, "mapsq", NULL, 3, NULL, NULL,
                                       NULL), TR_EINVAL);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* Items tasks: doubles squared (a chunk whose first item is negative
 * fails with TR_ERANGE), checking the sizes and the alignment they get. */
static int
s_sqd(const void *in, size_t in_size, void *out, size_t out_size, size_t n)
{
    if (in_size != sizeof(double) || out_size != sizeof(double))
        return TR_EINVAL;
    if ((uintptr_t)in % 16 != 0 || (uintptr_t)out % 16 != 0)
        return TR_EPROTO;
    const double *x = in;
    double *y = out;
    if (n > 0 && x[0] < 0)
        return TR_ERANGE;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * x[i];
    return 0;
}
TR_ITEMS_TASK(sqd, s_sqd);

/* Structs in, one int out: items of any size. */
typedef struct {
    int32_t a, b;
    char name[5];
} s_pair_t;

static int
s_pair_sum(const void *in, size_t in_size, void *out, size_t out_size,
           size_t n)
{
    if (in_size != sizeof(s_pair_t) || out_size != sizeof(int64_t))
        return TR_EINVAL;
    const s_pair_t *p = in;
    int64_t *o = out;
    for (size_t i = 0; i < n; i++)
        o[i] = (int64_t)p[i].a + p[i].b + p[i].name[0];
    return 0;
}
TR_ITEMS_TASK(pair_sum, s_pair_sum);

START_TEST(map_items_fills_the_output_array_in_chunks_of_any_size)
{
    static const int chunks[] = {0, 1, 7, 1000, 100000};
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    enum { N = 20011 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    ck_assert(x && y);
    for (int i = 0; i < N; i++)
        x[i] = i * 0.5;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        for (int i = 0; i < N; i++)
            y[i] = -1;
        uint64_t prog[2] = {0, 0};
        tr_map_opts_t o = {.chunk = chunks[c], .progress = s_progress,
                           .progress_arg = prog};
        if (chunks[c] == 1)
            o.window = 64;
        int n = chunks[c] == 1 ? 2000 : N; /* one task an item: fewer */
        ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, sizeof *x, y,
                                           sizeof *y, (size_t)n, NULL, &o),
                         0);
        for (int i = 0; i < n; i++)
            ck_assert(y[i] == x[i] * x[i]);
        ck_assert_uint_eq(prog[0], (uint64_t)n);
        ck_assert_uint_eq(prog[1], (uint64_t)n);
    }
    /* Structs of 16 bytes (with padding) to 8-byte results. */
    enum { M = 3001 };
    s_pair_t *ps = calloc(M, sizeof *ps);
    int64_t *sums = calloc(M, sizeof *sums);
    ck_assert(ps && sums);
    for (int i = 0; i < M; i++)
        ps[i] = (s_pair_t){i, 2 * i, "abcd"};
    tr_map_opts_t o = {.chunk = 100};
    ck_assert_int_eq(tr_pool_map_items(pool, "pair_sum", ps, sizeof *ps, sums,
                                       sizeof *sums, M, NULL, &o), 0);
    for (int i = 0; i < M; i++)
        ck_assert_int_eq(sums[i], 3 * (int64_t)i + 'a');
    free(ps);
    free(sums);
    free(x);
    free(y);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* A chunk that fails sets its items' codes and leaves their results; the
 * others are filled. Without rcs the failure is the map's. */
START_TEST(map_items_failed_chunks_set_codes_and_leave_results)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 2, 0);
    enum { N = 1000 };
    double x[N], y[N];
    int rcs[N];
    for (int i = 0; i < N; i++) {
        x[i] = (i == 300 || i == 710) ? -1 : i;
        y[i] = 42;
        rcs[i] = 1;
    }
    tr_map_opts_t o = {.chunk = 100};
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, sizeof *x, y,
                                       sizeof *y, N, rcs, &o), 0);
    for (int i = 0; i < N; i++) {
        if ((i >= 300 && i < 400) || (i >= 700 && i < 800)) {
            /* 710 is not first in its chunk: only 300's chunk fails */
            if (i >= 300 && i < 400) {
                ck_assert_int_eq(rcs[i], TR_ERANGE);
                ck_assert(y[i] == 42);
                continue;
            }
        }
        ck_assert_int_eq(rcs[i], 0);
        ck_assert(y[i] == x[i] * x[i]);
    }
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, sizeof *x, y,
                                       sizeof *y, N, NULL, &o), TR_ERANGE);
    /* Sizes the function refuses, an unknown task, a message task. */
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, 4, y, 4, 10, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "no_such_items", x, 8, y, 8, 10,
                                       NULL, NULL), TR_ENOENT);
    ck_assert_int_eq(tr_pool_map_items(pool, "square", x, 8, y, 8, 10, NULL,
                                       NULL), TR_EINVAL);
    /* ... and the pool goes on. */
    s_squares(pool, 10);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(map_items_rejects_bad_input)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    double x[4] = {1, 2, 3, 4}, y[4];
    tr_map_opts_t neg = {.chunk = -1}, negw = {.window = -1};
    ck_assert_int_eq(tr_pool_map_items(NULL, "sqd", x, 8, y, 8, 4, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, NULL, x, 8, y, 8, 4, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", NULL, 8, y, 8, 4, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, 8, NULL, 8, 4, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, 0, y, 8, 4, NULL,
                                       NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, 8, y, 8, 4, NULL,
                                       &neg), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, 8, y, 8, 4, NULL,
                                       &negw), TR_EINVAL);
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", x, (size_t)1 << 33, y,
                                       8, 4, NULL, NULL), TR_EINVAL);
    /* Nothing to do is a map that ran; registration refuses NULL and
     * names taken by either kind. */
    ck_assert_int_eq(tr_pool_map_items(pool, "sqd", NULL, 8, NULL, 8, 0,
                                       NULL, NULL), 0);
    ck_assert_int_eq(tr_items_task_register("sqd2", NULL), TR_EINVAL);
    ck_assert_int_eq(tr_items_task_register("sqd", s_sqd), TR_EEXIST);
    ck_assert_int_eq(tr_items_task_register("square", s_sqd), TR_EEXIST);
    ck_assert_int_eq(tr_task_register("sqd", s_square), TR_EEXIST);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* The pool ends with its workers' supervisor: what was pending fails
 * (TR_ESHUTDOWN), and later submits fail, rather than wait forever. */
START_TEST(pool_ends_with_its_workers_supervisor_and_nothing_hangs)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, s_mode(_i), 1, 0);
    s_gate_t g;
    s_gate_make(&g);
    tr_future_t *held = s_submit(pool, "gate", s_path_msg(g.path),
                                 TR_FOREVER);
    tr_future_t *queued = s_submit_i(pool, "square", 5);
    s_wait_stats(pool, S_WANT(.running = 1, .queued = 1), NULL);
    /* The root's children: the pool's supervisor is the only one. */
    tr_sup_child_t kids[4];
    ck_assert_int_eq(tr_sup_which_children(node, tr_node_root(node), kids,
                                           4), 1);
    s_gate_release(&g, 1); /* a thread worker must be able to stop */
    ck_assert_int_eq(tr_stop(node, kids[0].actor, TS_CALL_MS), 0);
    int rc = s_outcome(&queued, NULL);
    ck_assert_msg(rc == TR_ESHUTDOWN || rc == 0, "queued: %s",
                  tr_strerror(rc));
    rc = s_outcome(&held, NULL);
    ck_assert_msg(rc == TR_ESHUTDOWN || rc == 0, "held: %s",
                  tr_strerror(rc));
    ck_assert_int_eq(tr_join(node, tr_pool_id(pool), TS_CALL_MS, NULL), 0);
    tr_future_t *late = NULL;
    tr_msg_t *a = ts_msg_i("a", 1);
    rc = tr_pool_submit(pool, "square", &a, TR_FOREVER, &late);
    ck_assert_int_eq(rc, TR_ENOENT);
    tr_msg_destroy(&a);
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, TS_CALL_MS), 0);
    s_gate_close(&g);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Futures together                                                    */
/* ------------------------------------------------------------------ */

/* An actor that asks with a deadline, sets a callback and goes back to
 * its loop: the callback runs at the deadline (TR_ETIMEDOUT) though
 * nobody waits on the future. "go" [target] is answered from the
 * callback with the ask's outcome. */
typedef struct s_asker {
    tr_actor_t *self;
    tr_msg_t *go;
} s_asker_t;

static void
s_asker_then(void *arg, tr_future_t *fut)
{
    s_asker_t *a = arg;
    int rc = tr_future_get(fut, 0, NULL);
    tr_future_destroy(&fut);
    tr_msg_t *r = ts_msg_i("outcome", rc);
    (void)tr_reply(a->self, a->go, &r);
    tr_msg_destroy(&r);
    tr_msg_destroy(&a->go);
}

static int
s_asker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_asker_t *a = state;
    if (tr_msg_is(msg, "nop"))
        return 0; /* says nothing back: the silent target */
    int64_t target = 0;
    int rc = ts_read_ints(msg, 1, &target);
    if (rc != 0 || (rc = tr_msg_dup(msg, &a->go)) != 0)
        return rc;
    a->self = self;
    tr_msg_t *m = ts_msg("nop");
    tr_future_t *f = NULL;
    if ((rc = tr_ask_id(tr_actor_node(self), (tr_id_t)target, &m, 200,
                        &f)) != 0)
        return rc;
    return tr_future_then(f, s_asker_then, a);
}

static void
s_asker_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    tr_msg_destroy(&((s_asker_t *)state)->go);
}

TR_BEHAVIOUR(t_asker, .state_size = sizeof(s_asker_t),
             .handle = s_asker_handle, .terminate = s_asker_terminate);

START_TEST(callback_runs_at_the_deadline_of_an_ask_nobody_waits_on)
{
    tr_node_t *node = ts_node(NULL);
    tr_id_t asker = 0, silent = 0;
    ck_assert_int_eq(tr_spawn(node, "t_asker", NULL, &asker), 0);
    ck_assert_int_eq(tr_spawn(node, "t_asker", NULL, &silent), 0);
    tr_msg_t *go = ts_msg_i("go", (int64_t)silent), *reply = NULL;
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_call_id(node, asker, &go, TS_CALL_MS, &reply), 0);
    int64_t took = ts_now_ms() - t0;
    int64_t rc = 0;
    ck_assert_int_eq(ts_read_ints(reply, 1, &rc), 0);
    tr_msg_destroy(&reply);
    ck_assert_int_eq(rc, TR_ETIMEDOUT);
    ck_assert_int_ge(took, 190);
    ck_assert_int_lt(took, 2000);
    ts_destroy(&node);
}
END_TEST

/* Polling (timeout 0) reads the inbox: a loop of polls sees the result. */
START_TEST(polling_wait_any_makes_progress)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 1, 0);
    tr_future_t *f[1] = {s_submit_i(pool, "square", 6)};
    int64_t until = ts_now_ms() + TS_CALL_MS;
    size_t at = 9;
    int rc;
    while ((rc = tr_future_wait_any(f, 1, 0, &at)) == TR_ETIMEDOUT)
        ck_assert_int_lt(ts_now_ms(), until);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(at, 0);
    int64_t v = 0;
    ck_assert_int_eq(s_outcome(&f[0], &v), 0);
    ck_assert_int_eq(v, 36);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

START_TEST(wait_any_all_and_next_done_follow_completion_order)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 3, 0);
    /* naps of 300, 10, 150 ms: they settle 1, 2, 0 */
    static const int64_t ms[3] = {300, 10, 150};
    tr_future_t *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = s_submit_i(pool, "nap", ms[i]);
    size_t at = 99;
    ck_assert_int_eq(tr_future_wait_any(f, 3, TS_CALL_MS, &at), 0);
    ck_assert_uint_eq(at, 1);
    ck_assert_int_eq(tr_future_wait_all(f, 3, 0), TR_ETIMEDOUT);
    tr_future_t *left[3] = {f[0], f[1], f[2]}, *done = NULL;
    size_t n = 3;
    int64_t order[3];
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(tr_future_next_done(left, &n, TS_CALL_MS, &done), 0);
        ck_assert_uint_eq(n, (size_t)(2 - k));
        int64_t v = 0;
        tr_msg_t *r = NULL;
        ck_assert_int_eq(tr_future_get(done, 0, &r), 0);
        ck_assert_int_eq(ts_read_ints(r, 1, &v), 0);
        tr_msg_destroy(&r);
        order[k] = v;
    }
    ck_assert_int_eq(order[0], 10);
    ck_assert_int_eq(order[1], 150);
    ck_assert_int_eq(order[2], 300);
    ck_assert_int_eq(tr_future_wait_all(f, 3, 0), 0);
    ck_assert_int_eq(tr_future_next_done(left, &n, 0, &done), TR_EINVAL);
    tr_future_t *none[2] = {NULL, NULL};
    ck_assert_int_eq(tr_future_wait_any(none, 2, 0, NULL), TR_EINVAL);
    for (int i = 0; i < 3; i++)
        tr_future_destroy(&f[i]);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

/* wait_any over an array whose entries are replaced in place (not only
 * appended and taken by next_done), many settling at once: every index
 * it gives holds a settled future, and it never waits while one does. */
START_TEST(wait_any_over_an_array_changed_in_place_finds_every_settled_one)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_THREADS, 2, 0);
    enum { W = 100, TOTAL = 3000 };
    tr_future_t *f[W];
    int64_t next = 0, sum = 0, got = 0;
    for (int i = 0; i < W; i++)
        f[i] = s_submit_i(pool, "square", next++);
    /* all W settle before anyone looks: more than a look takes at once */
    tr_pool_stats_t st;
    s_wait_stats(pool, S_WANT(.running = 0, .queued = 0), &st);
    while (got < TOTAL) {
        size_t at = SIZE_MAX;
        ck_assert_int_eq(tr_future_wait_any(f, W, TS_CALL_MS, &at), 0);
        ck_assert_uint_lt(at, W);
        ck_assert(tr_future_done(f[at]));
        tr_msg_t *r = NULL;
        int64_t v = 0;
        ck_assert_int_eq(tr_future_get(f[at], 0, &r), 0);
        ck_assert_int_eq(ts_read_ints(r, 1, &v), 0);
        tr_msg_destroy(&r);
        tr_future_destroy(&f[at]);
        sum += v;
        got++;
        /* the slot gets a new task (or a settled stand-in at the end) */
        f[at] = s_submit_i(pool, "square", next < TOTAL ? next : 0);
        next++;
    }
    /* The rest, real ones among them (stand-ins add 0). */
    ck_assert_int_eq(tr_future_wait_all(f, W, TS_CALL_MS), 0);
    for (int i = 0; i < W; i++) {
        tr_msg_t *r = NULL;
        int64_t v = 0;
        ck_assert_int_eq(tr_future_get(f[i], 0, &r), 0);
        ck_assert_int_eq(ts_read_ints(r, 1, &v), 0);
        tr_msg_destroy(&r);
        sum += v;
        tr_future_destroy(&f[i]);
    }
    int64_t want = 0;
    for (int64_t i = 0; i < TOTAL; i++)
        want += i * i;
    ck_assert_int_eq(sum, want);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

typedef struct s_cb {
    int calls;
    int64_t sum;
    int errors;
} s_cb_t;

static void
s_collect(void *arg, tr_future_t *fut)
{
    s_cb_t *c = arg;
    c->calls++;
    tr_msg_t *r = NULL;
    int rc = tr_future_get(fut, 0, &r);
    int64_t v = 0;
    if (rc == 0 && ts_read_ints(r, 1, &v) == 0)
        c->sum += v;
    else
        c->errors++;
    tr_msg_destroy(&r);
}

static void
s_collect_and_free(void *arg, tr_future_t *fut)
{
    s_collect(arg, fut);
    tr_future_destroy(&fut);
}

/* Callbacks run once each, on this thread, while it waits on anything;
 * one set on a settled future runs at once; a second is TR_EEXIST; one
 * may destroy its future. */
START_TEST(then_runs_each_callback_once_on_the_asking_thread)
{
    tr_node_t *node = ts_node(NULL);
    tr_pool_t *pool = s_start(node, TR_POOL_PROCESSES, 2, 0);
    enum { N = 40 };
    tr_future_t *f[N];
    s_cb_t c = {0}, c2 = {0};
    for (int i = 0; i < N; i++) {
        f[i] = s_submit_i(pool, "square", i == 7 ? 1 << 20 : i);
        ck_assert_int_eq(tr_future_then(f[i], s_collect, &c), 0);
        ck_assert_int_eq(tr_future_then(f[i], s_collect, &c), TR_EEXIST);
    }
    tr_future_t *g = s_submit_i(pool, "fail", TR_ERANGE);
    ck_assert_int_eq(tr_future_then(g, s_collect_and_free, &c2), 0);
    g = NULL; /* the callback frees it */
    ck_assert_int_eq(tr_future_wait_all(f, N, TS_CALL_MS), 0);
    ck_assert_int_eq(c.calls, N);
    int64_t want = 0;
    for (int64_t i = 0; i < N; i++)
        want += i == 7 ? (int64_t)1 << 40 : i * i;
    ck_assert_int_eq(c.sum, want);
    ck_assert_int_eq(c.errors, 0);
    /* The failing one's callback runs at the next read of the inbox
     * after its answer came, whatever waits: once the pool has answered
     * it (done N + 1), the stats call's own wait reads it. */
    s_wait_stats(pool, S_WANT(.done = N + 1), NULL);
    tr_future_t *h = s_submit_i(pool, "square", 3);
    ck_assert_int_eq(tr_future_wait(h, TS_CALL_MS), 0);
    ck_assert_int_eq(c2.calls, 1);
    ck_assert_int_eq(c2.errors, 1);
    /* Settled already: at once. */
    s_cb_t c3 = {0};
    ck_assert_int_eq(tr_future_then(h, s_collect, &c3), 0);
    ck_assert_int_eq(c3.calls, 1);
    ck_assert_int_eq(c3.sum, 9);
    tr_future_destroy(&h);
    for (int i = 0; i < N; i++)
        tr_future_destroy(&f[i]);
    s_shutdown(&pool);
    ts_destroy(&node);
}
END_TEST

#define S_BOTH(tc, t) tcase_add_loop_test(tc, t, 0, 2)

static Suite *
s_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = s_tcase(s, "results", 30);
    S_BOTH(tc, thousand_squares_all_get_the_right_result);
    S_BOTH(tc, task_error_code_fails_the_future_with_exactly_that_code);
    S_BOTH(tc, unknown_task_name_fails_with_enoent);
    S_BOTH(tc, result_left_null_gives_an_empty_ok_message);
    S_BOTH(tc, payload_goes_to_the_task_and_back_unchanged);
    S_BOTH(tc, submits_the_pool_is_behind_on_ride_in_fewer_messages_each_right);
    S_BOTH(tc, submits_from_threads_to_two_pools_between_asks_settle_right);
    S_BOTH(tc,
           thread_workers_run_in_this_process_and_process_workers_in_children);
    tcase_add_test(
        tc, runtime_registered_task_runs_on_threads_and_is_enoent_on_processes);
    tcase_add_test(tc, task_register_rejects_bad_input_and_duplicates);
    tcase_add_test(tc, zero_workers_means_the_number_of_cpus);
    S_BOTH(tc,
           pool_name_is_registered_taken_names_are_eexist_and_freed_at_shutdown);

    tc = s_tcase(s, "balance", 30);
    S_BOTH(tc, slow_task_does_not_delay_short_tasks_submitted_after_it);
    S_BOTH(tc, tasks_run_at_once_on_all_workers_and_the_rest_wait_queued);

    tc = s_tcase(s, "deaths", 60);
    tcase_add_test(
        tc,
        crashing_task_fails_alone_with_eworkerdied_after_max_retries_plus_one_tries);
    tcase_add_test(
        tc,
        max_retries_sets_the_tries_and_exit_reason_tells_how_the_worker_ended);

    tc = s_tcase(s, "chaos", 120);
    tcase_add_test(
        tc, process_pool_loses_no_task_while_workers_are_sigkilled_50_times);

    tc = s_tcase(s, "deadlines", 30);
    tcase_add_test(
        tc, process_task_past_its_deadline_is_etimedout_and_its_worker_replaced);
    tcase_add_test(
        tc,
        thread_task_past_its_deadline_is_etimedout_and_its_late_result_ignored);
    S_BOTH(tc,
           pool_task_timeout_is_the_default_and_tr_forever_or_a_longer_one_overrides_it);

    tc = s_tcase(s, "cancel", 30);
    S_BOTH(tc,
           cancel_of_a_queued_task_is_ecanceled_running_is_ebusy_done_is_enoent);
    tcase_add_test(tc, cancel_of_a_future_that_is_not_the_pools_is_enoent);

    tc = s_tcase(s, "resize", 30);
    S_BOTH(tc, resize_up_and_down_changes_the_workers_and_tasks_still_complete);

    tc = s_tcase(s, "shutdown", 30);
    S_BOTH(tc,
           graceful_shutdown_runs_queued_tasks_refuses_new_ones_and_frees_the_pool);
    S_BOTH(tc,
           shutdown_with_cancel_pending_cancels_queued_tasks_and_finishes_running_ones);
    tcase_add_test(tc, submit_during_shutdown_fails_its_future_with_eclosed);
    tcase_add_test(
        tc,
        shutdown_past_its_deadline_kills_a_stuck_process_worker_and_returns_etimedout);
    tcase_add_test(
        tc,
        shutdown_past_its_deadline_with_a_busy_thread_worker_returns_etimedout);
    tcase_add_test(tc,
                   shutdown_with_tr_default_waits_the_nodes_shutdown_timeout);

    tc = s_tcase(s, "input", 30);
    tcase_add_test(tc, start_rejects_bad_input_and_leaves_nothing);
    tcase_add_test(tc, start_with_null_opts_is_a_default_thread_pool);
    tcase_add_test(
        tc,
        process_pool_executable_runs_that_program_and_a_missing_one_is_enoent);
    tcase_add_test(tc, submit_rejects_bad_input_and_leaves_args_with_the_caller);
    tcase_add_test(
        tc, hand_made_submits_with_a_nul_inside_a_name_or_tag_are_eproto);
    tcase_add_test(tc, stats_resize_and_cancel_reject_null);

    tc = s_tcase(s, "map", 60);
    S_BOTH(tc, map_gives_every_result_in_input_order_with_uneven_durations);
    S_BOTH(tc, map_unordered_gives_results_as_they_finish);
    tcase_add_test(tc, map_stops_at_an_error_of_out_and_the_pool_goes_on);
    tcase_add_test(tc, map_array_fills_results_and_codes);
    tcase_add_test(tc, map_rejects_bad_input);
    S_BOTH(tc, map_items_fills_the_output_array_in_chunks_of_any_size);
    S_BOTH(tc, map_items_failed_chunks_set_codes_and_leave_results);
    tcase_add_test(tc, map_items_rejects_bad_input);

    tc = s_tcase(s, "supervisor", 30);
    S_BOTH(tc, pool_ends_with_its_workers_supervisor_and_nothing_hangs);

    tc = s_tcase(s, "futures", 30);
    tcase_add_test(tc, wait_any_all_and_next_done_follow_completion_order);
    tcase_add_test(
        tc, wait_any_over_an_array_changed_in_place_finds_every_settled_one);
    tcase_add_test(tc, then_runs_each_callback_once_on_the_asking_thread);
    tcase_add_test(tc, callback_runs_at_the_deadline_of_an_ask_nobody_waits_on);
    tcase_add_test(tc, polling_wait_any_makes_progress);

    tc = s_tcase(s, "stats", 30);
    S_BOTH(tc, stats_count_done_failed_retried_and_worker_deaths);

    tc = s_tcase(s, "resources", 60);
    S_BOTH(tc, pools_leave_no_children_zombies_actors_or_fds_behind);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
