/* tests/test_leaks.c - what many actor lifetimes and a flooded mailbox
 * leave behind: descriptors, threads, memory and child processes after
 * 10,000 spawn/stop cycles of thread actors, 1,000 of process actors and
 * 2,000 of supervised children, all read from /proc (and the heap in use
 * from mallinfo2); and a producer 100x faster than its consumer, which
 * must get back-pressure (tr_try_tell gives TR_EAGAIN, tr_tell waits)
 * while memory stays bounded and no message is lost or reordered.
 *
 * It is not a functional test of spawn or send (test_node, test_mailbox,
 * test_process do that): it counts what is left over.
 *
 * What "left over" means, precisely. An ended actor's ZeroMQ sockets are
 * freed by ZeroMQ's reaper thread, after zmq_close, once their pipes are
 * torn down; that needs the peer sockets to process the teardown, i.e.
 * the threads that talked to the actor to read their inbox again; and an
 * actor's OS thread exits a moment after tr_join saw it end. So figures
 * are compared once the process is quiet (s_quiet), and a run waits for
 * ZeroMQ when more than S_PACE_FDS descriptors of ended actors are
 * pending (s_pace): what is measured is then leaks, not how far ZeroMQ's
 * reaper can fall behind a tight loop on a loaded machine, which
 * ended_actors_sockets_are_reaped_after_an_unpaced_burst measures alone.
 *
 * Memory is compared after a warm-up, never against the empty process:
 * the first cycles fill what is meant to stay (the registry's tables,
 * per-thread message pools, glibc's cache of thread stacks and its
 * arenas, the ring of the last 1,024 ends tr_join answers for). The heap
 * in use must then come back within S_HEAP_SLACK_KB (a leak of 52 bytes a
 * thread cycle would pass it); resident memory, after malloc_trim, within
 * 2 MiB: glibc cannot give back a page that still holds one live chunk,
 * so RSS moves with fragmentation even when nothing leaks. Under
 * AddressSanitizer (whose quarantine holds freed memory back on purpose)
 * and ThreadSanitizer the memory figures are printed, not checked:
 * LeakSanitizer checks leaks there.
 *
 * Figures are printed to stderr with the prefix "leaks:" (see
 * meson-logs/testlog.txt) and recorded in docs/reliability.md.
 *
 * The process actors are this program, re-executed (ts_run_suite calls
 * tr_init first), so their behaviour is defined at file scope. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

/* The figures, and the supervised run's. */
#define S_THREAD_CYCLES 10000
#define S_PROCESS_CYCLES 1000
#define S_SUP_CYCLES 2000
#define S_BURST_CYCLES 2000

/* Cycles run before the base figures are read (see the file comment). */
#define S_WARMUP 300

/* What may stay after the warm-up: resident memory after malloc_trim,
 * and the heap in use (what fills up only slowly, as the ring of ends
 * and tables that double; nothing that grows with every cycle). KiB. */
#define S_RSS_SLACK_KB 2048
#define S_HEAP_SLACK_KB 512

/* A run waits for ZeroMQ's reaper when more descriptors than this are
 * open beyond the node's quiet count, until a quarter of them are left;
 * it looks every S_PACE_EVERY cycles. */
#define S_PACE_FDS 256
#define S_PACE_EVERY 10

/* Figures are sampled every this many cycles during a run. */
#define S_SAMPLE_EVERY 500

/* How far samples may stray during an unpaced run: up to about 3,000
 * descriptors of ended actors' sockets waiting to be reaped were seen on
 * a loaded 2-core machine. Sockets waiting to be reaped count against
 * ZeroMQ's socket limit (tr_node_opts_t.max_sockets, 16,384), so half of
 * it is the bound. Threads: actors' threads about to exit. */
#define S_FDS_TRANSIENT 8192
#define S_THREADS_TRANSIENT 64

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define S_CHECK_MEMORY 0
#else
#define S_CHECK_MEMORY 1
#endif

/* ------------------------------------------------------------------ */
/* /proc                                                               */
/* ------------------------------------------------------------------ */

/* The value of "key:" in /proc/self/status, or -1. */
static long
s_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "re");
    ck_assert_ptr_nonnull(f);
    char line[256];
    size_t n = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int
s_threads(void)
{
    return (int)s_status("Threads");
}

/* Resident set (VmRSS) in KiB, from /proc/self/statm: cheaper than
 * status, and it is read in the flood's send loop. */
static long
s_rss_kb(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    TS_CHECK(fd >= 0);
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    TS_CHECK(n > 0);
    buf[n] = '\0';
    long size = 0, resident = 0;
    TS_CHECK(sscanf(buf, "%ld %ld", &size, &resident) == 2);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* KiB the allocator has handed out and not had back (glibc's mallinfo2,
 * over all arenas): the most direct measure of a leak. */
static long
s_heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Children of this process, zombies included: every /proc/<pid>/stat
 * whose ppid is ours (the kernel may lack /proc/<pid>/task/<tid>/
 * children, CONFIG_PROC_CHILDREN). */
static int
s_children(void)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    int kids = 0;
    long me = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone meanwhile */
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the name may hold ')' */
        if (p == NULL || p[1] == '\0' || p[2] == '\0')
            continue;
        if (strtol(p + 3, NULL, 10) == me)
            kids++;
    }
    closedir(d);
    return kids;
}

/* True when this process has no child at all, not even one to reap:
 * waitid says ECHILD. WNOWAIT: a child it does find is left to the
 * node's reaper. */
static bool
s_no_child(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
           errno == ECHILD;
}

typedef struct {
    int fds;
    int threads;
    long rss_kb;
    long heap_kb;
    int children;
} s_res_t;

static s_res_t
s_res(void)
{
    return (s_res_t){.fds = ts_fds(), .threads = s_threads(),
                     .rss_kb = s_rss_kb(), .heap_kb = s_heap_kb(),
                     .children = s_children()};
}

/* What makes a node's threads process what ZeroMQ has for them: a call
 * to a long-lived actor (the keeper) from the test's thread and, with a
 * supervisor, one to it. */
typedef struct {
    tr_node_t *node; /* NULL: no node, nothing to poke */
    tr_id_t keeper;
    tr_id_t sup;     /* 0: none */
} s_poke_t;

static void s_ping(tr_node_t *node, tr_id_t id, int64_t v);

static void
s_poke(const s_poke_t *pk)
{
    if (pk == NULL || pk->node == NULL)
        return;
    s_ping(pk->node, pk->keeper, 0);
    if (pk->sup != 0) {
        tr_sup_child_t c[1];
        TS_CHECK(tr_sup_which_children(pk->node, pk->sup, c, 1) >= 0);
    }
}

/* The figures once the process is quiet: the same descriptor, thread
 * and child counts over 20 rounds of a poke and 1 ms (within
 * TS_CALL_MS), then memory after malloc_trim. No event marks the end of
 * ZeroMQ's teardown or of a thread's exit (see the file comment), so the
 * wait is for the condition, with a deadline, poking meanwhile. The trim:
 * glibc keeps freed heap for reuse, and RSS would show its high-water
 * mark instead of what is in use. */
static s_res_t
s_quiet(const s_poke_t *pk)
{
    int64_t until = ts_now_ms() + TS_CALL_MS;
    s_res_t last = s_res();
    for (int same = 0; same < 20 && ts_now_ms() < until;) {
        s_poke(pk);
        (void)poll(NULL, 0, 1);
        s_res_t now = s_res();
        if (now.fds == last.fds && now.threads == last.threads &&
            now.children == last.children) {
            same++;
        } else {
            same = 0;
        }
        last = now;
    }
    malloc_trim(0);
    last.rss_kb = s_rss_kb();
    last.heap_kb = s_heap_kb();
    return last;
}

/* The largest of each figure over a run's samples. */
static void
s_res_max(s_res_t *max, s_res_t now)
{
    if (now.fds > max->fds)
        max->fds = now.fds;
    if (now.threads > max->threads)
        max->threads = now.threads;
    if (now.rss_kb > max->rss_kb)
        max->rss_kb = now.rss_kb;
    if (now.heap_kb > max->heap_kb)
        max->heap_kb = now.heap_kb;
    if (now.children > max->children)
        max->children = now.children;
}

static void
s_res_print(const char *what, s_res_t r)
{
    fprintf(stderr, "leaks: %-24s fds %4d, threads %2d, RSS %6ld KiB, "
            "heap %6ld KiB, children %d\n", what, r.fds, r.threads,
            r.rss_kb, r.heap_kb, r.children);
}

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* lk_echo: "ping" [v] is answered "ok" [v]. The actor of every cycle,
 * thread or process. */
static int
s_echo_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "ping"))
        return TR_EUNHANDLED;
    int64_t v = 0;
    int rc = ts_read_ints(msg, 1, &v);
    if (rc != 0)
        return rc;
    return ts_reply_ints(self, msg, 1, &v);
}
TR_BEHAVIOUR(lk_echo, .handle = s_echo_handle);

/* lk_consumer: "item" [seq, bin] is checked against the sequence it
 * expects (seq 0, 1, 2, ...) and then costs spin_ns of this thread's CPU
 * (a busy loop, the consumer's fixed work); "report" is answered [items
 * seen, items out of sequence, first bad seq or -1, CPU ns spent in
 * handle]. Args: [spin_ns]. */
typedef struct {
    int64_t spin_ns;
    int64_t seen;
    int64_t bad;
    int64_t first_bad;
    int64_t cpu_ns;
} s_consumer_t;

static int64_t
s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
s_consumer_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    s_consumer_t *c = state;
    c->first_bad = -1;
    return ts_read_ints(args, 1, &c->spin_ns);
}

static int
s_consumer_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_consumer_t *c = state;
    if (tr_msg_is(msg, "item")) {
        int64_t t0 = s_cpu_ns();
        tr_reader_t r;
        tr_reader_init(&r, msg);
        int64_t seq = -1;
        const void *data = NULL;
        size_t len = 0;
        int rc = tr_read_int(&r, &seq);
        if (rc == 0)
            rc = tr_read_bin(&r, &data, &len);
        /* The payload's first bytes repeat seq: a mixed-up frame shows. */
        int64_t inner = -2;
        if (rc == 0 && len >= sizeof inner)
            memcpy(&inner, data, sizeof inner);
        if (rc != 0 || seq != c->seen || inner != seq) {
            if (c->bad++ == 0)
                c->first_bad = c->seen;
        }
        c->seen++;
        while (s_cpu_ns() - t0 < c->spin_ns)
            ; /* the fixed work: CPU time, not a sleep */
        c->cpu_ns += s_cpu_ns() - t0;
        return 0;
    }
    if (tr_msg_is(msg, "report")) {
        int64_t v[4] = {c->seen, c->bad, c->first_bad, c->cpu_ns};
        return ts_reply_ints(self, msg, 4, v);
    }
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(lk_consumer, .state_size = sizeof(s_consumer_t),
             .init = s_consumer_init, .handle = s_consumer_handle);

/* ------------------------------------------------------------------ */
/* Cycles                                                              */
/* ------------------------------------------------------------------ */

/* Call id "ping" [v]; the answer must be [v]. */
static void
s_ping(tr_node_t *node, tr_id_t id, int64_t v)
{
    tr_msg_t *m = NULL, *reply = NULL;
    TS_CHECK(tr_msg_create(&m, "ping") == 0 && tr_msg_add_int(m, v) == 0);
    TS_CHECK(tr_call_id(node, id, &m, TS_CALL_MS, &reply) == 0);
    int64_t got = -1;
    TS_CHECK(ts_read_ints(reply, 1, &got) == 0 && got == v);
    tr_msg_destroy(&reply);
}

/* One cycle of a run: i counts from 0 over the warm-up and the run. */
typedef void (*s_cycle_fn)(tr_node_t *node, void *arg, int i);

typedef struct {
    s_poke_t poke;
    bool paced;     /* wait for ZeroMQ's reaper past S_PACE_FDS */
    int floor;      /* descriptors of the quiet node before any cycle */
    s_res_t before; /* the empty process */
    s_res_t base;   /* after the warm-up, quiet */
    s_res_t max;    /* the largest samples during the run */
    s_res_t after;  /* after the run, quiet */
    s_res_t gone;   /* after node destroy, quiet */
    int64_t took_ms;
    int pauses;     /* times the run waited for the reaper */
    int64_t paused_ms;
} s_run_t;

/* Wait, poking, until ZeroMQ has reaped what ended actors left but a
 * quarter of S_PACE_FDS, if more than S_PACE_FDS are pending. Sockets it
 * never reaps are a leak: the deadline fails the test. */
static void
s_pace(s_run_t *r)
{
    if (ts_fds() <= r->floor + S_PACE_FDS)
        return;
    int64_t t0 = ts_now_ms();
    r->pauses++;
    while (ts_fds() > r->floor + S_PACE_FDS / 4) {
        TS_CHECK(ts_now_ms() - t0 < TS_CALL_MS);
        s_poke(&r->poke);
        (void)poll(NULL, 0, 1);
    }
    r->paused_ms += ts_now_ms() - t0;
}

/* warmup cycles, the base figures, n cycles sampled every
 * S_SAMPLE_EVERY, the figures after. */
static void
s_run(tr_node_t *node, s_cycle_fn fn, void *arg, int warmup, int n,
      s_run_t *r)
{
    r->floor = s_quiet(&r->poke).fds;
    for (int i = 0; i < warmup; i++) {
        fn(node, arg, i);
        if (r->paced && i % S_PACE_EVERY == 0)
            s_pace(r);
    }
    r->base = r->max = s_quiet(&r->poke);
    r->pauses = 0;
    r->paused_ms = 0;
    int64_t t0 = ts_now_ms();
    for (int i = 0; i < n; i++) {
        fn(node, arg, warmup + i);
        if ((i + 1) % S_SAMPLE_EVERY == 0)
            s_res_max(&r->max, s_res());
        if (r->paced && i % S_PACE_EVERY == 0)
            s_pace(r);
    }
    r->took_ms = ts_now_ms() - t0;
    r->after = s_quiet(&r->poke);
}

/* Print a run's figures and check them: back to the warm node's figures
 * once quiet, a bounded excursion meanwhile, and back to the empty
 * process's once the node is gone. */
static void
s_check(const char *what, int n, const s_run_t *r, bool check_rss)
{
    fprintf(stderr, "leaks: %d %s in %lld ms (%.3f ms each); %s",
            n, what, (long long)r->took_ms, (double)r->took_ms / n,
            r->paced ? "" : "unpaced\n");
    if (r->paced)
        fprintf(stderr, "waited %d times for ZeroMQ's reaper, %lld ms\n",
                r->pauses, (long long)r->paused_ms);
    s_res_print("before the node:", r->before);
    s_res_print("after the warm-up:", r->base);
    s_res_print("largest sample during:", r->max);
    s_res_print("after the cycles:", r->after);
    s_res_print("after node destroy:", r->gone);

    /* At most: a port keeps the last dead peer it talked to cached until
     * it next makes a new one (runtime/port.c, s_peers_sweep), so one
     * socket more or less may be open at either reading. */
    ck_assert_int_le(r->after.fds, r->base.fds);
    ck_assert_int_le(r->after.threads, r->base.threads);
    ck_assert_int_eq(r->after.children, 0);
    if (S_CHECK_MEMORY) {
        ck_assert_int_le(r->after.heap_kb - r->base.heap_kb,
                         S_HEAP_SLACK_KB);
        if (check_rss)
            ck_assert_int_le(r->after.rss_kb - r->base.rss_kb,
                             S_RSS_SLACK_KB);
    }
    /* Meanwhile: sockets waiting to be reaped and threads about to exit
     * come and go; a leak would pile up instead. At most the child that
     * just ended may still be waiting to be reaped. */
    ck_assert_int_le(r->max.fds, r->base.fds + S_FDS_TRANSIENT);
    ck_assert_int_le(r->max.threads, r->base.threads + S_THREADS_TRANSIENT);
    ck_assert_int_le(r->max.children, 1);

    ck_assert_int_eq(r->gone.fds, r->before.fds);
    ck_assert_int_eq(r->gone.threads, r->before.threads);
    ck_assert_int_eq(r->gone.children, 0);
    ck_assert(s_no_child());
}

/* One life: spawn lk_echo (mode; under the name "lk" on even i, which
 * is then called by name), one call, tr_stop, tr_join, whose reason must
 * be TR_ESHUTDOWN. */
static void
s_spawn_cycle(tr_node_t *node, void *arg, int i)
{
    const tr_mode_t *mode = arg;
    tr_spawn_opts_t o = {.mode = *mode, .name = i % 2 == 0 ? "lk" : NULL};
    tr_id_t id = 0;
    TS_CHECK(tr_spawn(node, "lk_echo", &o, &id) == 0 && id != 0);
    if (o.name != NULL) {
        tr_msg_t *m = NULL, *reply = NULL;
        TS_CHECK(tr_msg_create(&m, "ping") == 0 &&
                 tr_msg_add_int(m, i) == 0);
        TS_CHECK(tr_call(node, "lk", &m, TS_CALL_MS, &reply) == 0);
        int64_t got = -1;
        TS_CHECK(ts_read_ints(reply, 1, &got) == 0 && got == i);
        tr_msg_destroy(&reply);
    } else {
        s_ping(node, id, i);
    }
    TS_CHECK(tr_stop(node, id, TS_CALL_MS) == 0);
    int reason = 1;
    TS_CHECK(tr_join(node, id, TS_CALL_MS, &reason) == 0);
    TS_CHECK(reason == TR_ESHUTDOWN);
}

/* n spawn cycles of mode after warmup, on a node of their own (opts:
 * NULL for the defaults) with a keeper actor; checked with s_check, and
 * by the node's counters. */
static void
s_spawn_cycles(tr_mode_t mode, int warmup, int n, bool paced,
               const tr_node_opts_t *opts, const char *what)
{
    s_run_t r = {.before = s_quiet(NULL), .paced = paced};
    tr_node_t *node = ts_node(opts);
    r.poke = (s_poke_t){.node = node,
                        .keeper = ts_spawn(node, "lk_echo", "lk_keeper")};
    s_run(node, s_spawn_cycle, &mode, warmup, n, &r);
    tr_node_stats_t st;
    ts_stats(node, &st);
    ts_destroy(&node);
    r.gone = s_quiet(NULL);
    /* RSS after an unpaced run shows how much of the reaper's backlog
     * glibc kept: printed, not checked (see the file comment). */
    s_check(what, n, &r, paced);
    /* Every actor ended on request; the keeper and the node's own run. */
    ck_assert_uint_eq(st.spawned - st.alive, (uint64_t)(warmup + n));
    ck_assert_uint_eq(st.exited, (uint64_t)(warmup + n));
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.dead_letters, 0);
}

START_TEST(thread_actor_spawn_stop_cycles_leave_no_fds_threads_or_memory)
{
    s_spawn_cycles(TR_THREAD, S_WARMUP, S_THREAD_CYCLES, true, NULL,
                   "thread actor spawn/call/stop/join cycles");
}
END_TEST

/* Traced, each actor thread has a 64 KiB record buffer: an ending
 * thread writes it and gives it back, so a traced node that starts and
 * ends actors does not grow (1,000 buffers kept would be 64 MiB). */
START_TEST(traced_thread_actor_cycles_give_their_trace_buffers_back)
{
    char dir[256], path[300];
    ts_tmpdir(dir, sizeof dir, "leaks");
    snprintf(path, sizeof path, "%s/t.trace", dir);
    s_spawn_cycles(TR_THREAD, S_WARMUP, S_THREAD_CYCLES / 10, true,
                   &(tr_node_opts_t){.trace = path},
                   "traced thread actor cycles");
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    /* at least a spawn, a send, a receive and an exit a cycle */
    ck_assert_int_ge(sb.st_size, (off_t)(S_THREAD_CYCLES / 10) * 4 * 64);
    unlink(path);
    ts_rmtree(dir);
}
END_TEST

START_TEST(process_actor_spawn_stop_cycles_leave_no_children_fds_or_memory)
{
    s_spawn_cycles(TR_PROCESS, S_WARMUP / 10, S_PROCESS_CYCLES, true, NULL,
                   "process actor spawn/call/stop/join cycles");
}
END_TEST

/* The same as fast as it goes: however far ZeroMQ's reaper falls behind,
 * everything comes back once the node is quiet (RSS is only printed). */
START_TEST(ended_actors_sockets_are_reaped_after_an_unpaced_burst)
{
    s_spawn_cycles(TR_THREAD, S_WARMUP, S_BURST_CYCLES, false, NULL,
                   "thread actor spawn/call/stop/join cycles");
}
END_TEST

/* A supervised life: a simple_one_for_one child started with
 * tr_sup_start_child, called, ended with tr_sup_terminate_child (the
 * supervisor's books: its link, its child list). */
static void
s_sup_cycle(tr_node_t *node, void *arg, int i)
{
    tr_id_t sup = *(const tr_id_t *)arg, child = 0;
    TS_CHECK(tr_sup_start_child(node, sup, NULL, NULL, &child) == 0);
    s_ping(node, child, i);
    TS_CHECK(tr_sup_terminate_child(node, sup, NULL, child) == 0);
    int reason = 1;
    TS_CHECK(tr_join(node, child, TS_CALL_MS, &reason) == 0);
    TS_CHECK(reason == TR_ESHUTDOWN);
}

START_TEST(supervised_child_start_terminate_cycles_leave_nothing)
{
    s_run_t r = {.before = s_quiet(NULL), .paced = true};
    tr_node_t *node = ts_node(NULL);
    tr_child_spec_t spec = {.id = "echo", .behaviour = "lk_echo",
                            .restart = TR_TEMPORARY};
    tr_sup_opts_t so = {.strategy = TR_SIMPLE_ONE_FOR_ONE};
    tr_id_t sup = 0;
    ck_assert_int_eq(tr_sup_start(node, &so, &spec, 1, &sup), 0);
    r.poke = (s_poke_t){.node = node, .sup = sup,
                        .keeper = ts_spawn(node, "lk_echo", "lk_keeper")};
    s_run(node, s_sup_cycle, &sup, S_WARMUP, S_SUP_CYCLES, &r);
    tr_sup_child_t c[1];
    ck_assert_int_eq(tr_sup_which_children(node, sup, c, 1), 0);
    ck_assert_int_eq(tr_stop(node, sup, TS_CALL_MS), 0);
    ts_destroy(&node);
    r.gone = s_quiet(NULL);
    s_check("supervised start/call/terminate/join cycles", S_SUP_CYCLES,
            &r, true);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Flooding                                                            */
/* ------------------------------------------------------------------ */

/* The flood's figures: each item carries S_ITEM_BYTES, so that a queue
 * that did not hold the producer back would show in RSS at once (1,500
 * items at the least, 24 MiB), while the mailbox's own bound (S_HWM + 1
 * items from one sender, docs/design.md) is 1.6 MiB. */
#define S_ITEM_BYTES (16 * 1024)
#define S_HWM 100
#define S_ITEMS_MAX 20000
#if S_CHECK_MEMORY
#define S_ITEMS_MIN 1500
#else
/* Sanitizers make a send cost 10x more, and the consumer's work with it;
 * memory is not checked there, so four mailboxes' worth will do. */
#define S_ITEMS_MIN (4 * (S_HWM + 1))
#endif
/* The consumer's work per item is this many times the producer's CPU
 * cost of one send, measured first with a fast consumer; during the
 * flood a send costs the producer two to three times that (it wakes up
 * to refill the mailbox), and the ratio measured then must be >= 100. */
#define S_SLOWER 500
/* ... and under sanitizers, where the producer's instrumented send grows
 * more than the consumer's plain busy loop, >= 50. */
#if S_CHECK_MEMORY
#define S_RATIO_MIN 100.0
#else
#define S_RATIO_MIN 50.0
#endif
/* RSS may grow this much over the baseline while the flood runs: twice
 * the mailbox's bound plus room for the allocator (KiB). */
#define S_FLOOD_SLACK_KB (2 * (S_HWM + 1) * S_ITEM_BYTES / 1024 + 4096)

static tr_msg_t *
s_item(int64_t seq)
{
    static char data[S_ITEM_BYTES];
    memcpy(data, &seq, sizeof seq);
    tr_msg_t *m = NULL;
    TS_CHECK(tr_msg_create(&m, "item") == 0);
    TS_CHECK(tr_msg_add_int(m, seq) == 0);
    TS_CHECK(tr_msg_add_bin(m, data, sizeof data) == 0);
    return m;
}

/* The consumer's report: [seen, bad, first bad, CPU ns]. */
static void
s_report(tr_node_t *node, const char *name, int64_t v[4])
{
    ck_assert_int_eq(
        ts_call_ints(node, name, ts_msg("report"), 4, v), 0);
}

static int64_t
s_spin_for(int64_t send_ns)
{
    int64_t spin = send_ns * S_SLOWER;
    if (spin < 20000)
        spin = 20000; /* 20 us */
    if (spin > 20000000)
        spin = 20000000; /* 20 ms: a send cannot cost 40 us but broken */
    return spin;
}

START_TEST(flooded_consumer_holds_producer_back_memory_bounded_nothing_lost)
{
    tr_node_t *node = ts_node(NULL);

    /* 1. The producer's cost of one send, in its own CPU time, to a
     * consumer that does no work (spin 0). It also warms what the flood
     * uses: message pools, the cached socket, glibc's arenas. */
    int64_t zero = 0;
    tr_msg_t *args = ts_msg_ints("args", 1, &zero);
    tr_spawn_opts_t o = {.name = "fast", .mailbox_hwm = S_HWM, .args = args};
    ck_assert_int_eq(tr_spawn(node, "lk_consumer", &o, NULL), 0);
    tr_msg_destroy(&args);
    const int calib = 2000;
    int64_t c0 = s_cpu_ns();
    for (int i = 0; i < calib; i++) {
        tr_msg_t *m = s_item(i);
        TS_CHECK(tr_tell(node, "fast", &m) == 0);
    }
    int64_t send_ns = (s_cpu_ns() - c0) / calib;
    int64_t v[4];
    s_report(node, "fast", v);
    ck_assert_int_eq(v[0], calib);
    ck_assert_int_eq(v[1], 0);

    /* 2. The slow consumer: S_SLOWER x the send's cost per item; as many
     * items as take it about 2 s (within [S_ITEMS_MIN, S_ITEMS_MAX]). */
    int64_t spin = s_spin_for(send_ns);
    int64_t items = 2000000000 / spin;
    if (items < S_ITEMS_MIN)
        items = S_ITEMS_MIN;
    if (items > S_ITEMS_MAX)
        items = S_ITEMS_MAX;
    args = ts_msg_ints("args", 1, &spin);
    o = (tr_spawn_opts_t){.name = "slow", .mailbox_hwm = S_HWM,
                          .args = args};
    ck_assert_int_eq(tr_spawn(node, "lk_consumer", &o, NULL), 0);
    tr_msg_destroy(&args);

    /* 3. The flood: even items by tr_try_tell, and by tr_tell when that
     * says TR_EAGAIN (the message is still ours then); odd ones by
     * tr_tell. Wall time spent inside tr_tell is the back-pressure. RSS
     * is sampled every 50 items. */
    long rss0 = s_rss_kb(), rss_max = rss0;
    int64_t eagain = 0, tells = 0, waits = 0, tell_us = 0;
    int64_t t0 = ts_now_us(), p0 = s_cpu_ns();
    for (int64_t i = 0; i < items; i++) {
        tr_msg_t *m = s_item(i);
        if (i % 2 == 0) {
            int rc = tr_try_tell(node, "slow", &m);
            if (rc == 0)
                continue;
            TS_CHECK(rc == TR_EAGAIN);
            TS_CHECK(m != NULL); /* not sent: still ours */
            eagain++;
        }
        int64_t w0 = ts_now_us();
        TS_CHECK(tr_tell(node, "slow", &m) == 0);
        TS_CHECK(m == NULL);
        int64_t w = ts_now_us() - w0;
        tells++;
        tell_us += w;
        if (w > 1000)
            waits++;
        if (i % 50 == 0) {
            long rss = s_rss_kb();
            if (rss > rss_max)
                rss_max = rss;
        }
    }
    int64_t produce_us = ts_now_us() - t0;
    int64_t producer_cpu_ns = s_cpu_ns() - p0;
    s_report(node, "slow", v); /* after every item: one sender, in order */
    int64_t total_us = ts_now_us() - t0;
    long rss_end = s_rss_kb();
    tr_node_stats_t st;
    ts_stats(node, &st);
    ts_destroy(&node);

    double producer_per = (double)producer_cpu_ns / (double)items;
    double consumer_per = (double)v[3] / (double)items;
    fprintf(stderr, "leaks: flood: %lld items of %d KiB, mailbox_hwm %d; "
            "a send costs the producer %lld ns of CPU, an item the "
            "consumer %.0f ns (x%.0f)\n", (long long)items,
            S_ITEM_BYTES / 1024, S_HWM, (long long)send_ns, consumer_per,
            consumer_per / producer_per);
    fprintf(stderr, "leaks: flood: produced in %lld ms, consumed in %lld ms; "
            "%lld TR_EAGAIN, %lld of %lld tr_tell waited > 1 ms, %lld ms "
            "inside tr_tell\n", (long long)produce_us / 1000,
            (long long)total_us / 1000, (long long)eagain, (long long)waits,
            (long long)tells, (long long)tell_us / 1000);
    fprintf(stderr, "leaks: flood: RSS %ld KiB before, %ld KiB at most "
            "during (+%ld KiB; bound +%d KiB, %lld KiB if nothing held the "
            "producer back), %ld KiB after\n", rss0, rss_max,
            rss_max - rss0, S_FLOOD_SLACK_KB,
            (long long)(items * S_ITEM_BYTES / 1024), rss_end);

    /* Nothing lost, nothing out of order, nothing dropped as dead. */
    ck_assert_int_eq(v[0], items);
    ck_assert_int_eq(v[1], 0);
    ck_assert_int_eq(v[2], -1);
    ck_assert_uint_eq(st.dead_letters, 0);
    /* The producer really was 100x faster than its consumer (50x under
     * sanitizers, see S_RATIO_MIN). */
    ck_assert_double_ge(consumer_per / producer_per, S_RATIO_MIN);
    /* Back-pressure: tr_try_tell said TR_EAGAIN, tr_tell waited, and the
     * producer could go no faster than the consumer: all but a mailbox's
     * worth of items were produced at the consumer's pace, and most of
     * that time was spent waiting inside tr_tell. */
    ck_assert_int_gt(eagain, 0);
    ck_assert_int_gt(waits, 0);
    ck_assert_int_ge(produce_us * 1000,
                     (items - 2 * (S_HWM + 1)) * spin);
    ck_assert_int_ge(tell_us * 2, produce_us);
    /* Memory stayed bounded while the producer kept sending. */
    if (S_CHECK_MEMORY)
        ck_assert_int_le(rss_max - rss0, S_FLOOD_SLACK_KB);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("leaks");
    TCase *tc = tcase_create("cycles");
    /* A backstop: about 5 s for the threads and 8 s for the processes
     * alone, 3x that under ASan or a loaded machine. */
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc,
                   thread_actor_spawn_stop_cycles_leave_no_fds_threads_or_memory);
    tcase_add_test(tc,
                   traced_thread_actor_cycles_give_their_trace_buffers_back);
    tcase_add_test(
        tc, process_actor_spawn_stop_cycles_leave_no_children_fds_or_memory);
    tcase_add_test(tc, supervised_child_start_terminate_cycles_leave_nothing);
    tcase_add_test(tc, ended_actors_sockets_are_reaped_after_an_unpaced_burst);
    suite_add_tcase(s, tc);

    tc = tcase_create("flood");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, flooded_consumer_holds_producer_back_memory_bounded_nothing_lost);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
