/* bench/bench_pool.c - pools of workers against Python's executors, in one
 * run (Python's side is bench/py_pool.py; 2 workers on both sides).
 *
 *  pool_submit_process  trivial tasks per second, one task per message:
 *                       tr_pool_submit on 2 process workers, a window of
 *                       256 futures collected as they settle, vs
 *                       ProcessPoolExecutor.submit (a window of 256)
 *  pool_submit_thread   the same on 2 thread workers vs ThreadPoolExecutor
 *  pool_submit_thread_floor
 *                       the same troupe figure vs the same message pattern
 *                       in raw libzmq (bench/zmq_broker.c): the framework's
 *                       cost, and the most any pool on ZeroMQ gets here
 *  pool_map_chunk1      tr_pool_map, one item per task, vs
 *                       multiprocessing.Pool.map(chunksize=1)
 *  pool_map_chunked     tr_pool_map with chunks of 1,000 items vs Pool.map
 *                       with its default chunking (a no-op task)
 *  pool_speedup         CPU-bound speedup of 2 process workers over 1
 *                       (counting primes in 16 ranges) vs the same in
 *                       Python's ProcessPoolExecutor
 *  pool_chaos_lost      tasks lost or hung while a thread SIGKILLs random
 *                       process workers 50 times during 10,000 tasks, vs
 *                       ProcessPoolExecutor (BrokenProcessPool) under the
 *                       same killing
 *
 * Usage: bench_pool [--quick] [name...]
 * The program re-executes itself as the pool's process workers (tr_init).
 * The Python interpreter: $TROUPE_PYTHON, else /usr/bin/python3, else
 * python3 on the PATH.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "troupe.h"
#include "bench_util.h"
#include "zmq_broker.h"

#define WORKERS 2
#define WINDOW 256

static int s_rounds = 3;
static long s_submit_proc = 50000; /* tasks per round */
static long s_submit_thread = 150000;
static long s_py_submit_proc = 20000;
static long s_py_submit_thread = 100000;
static long s_map1 = 50000;
static long s_py_map1 = 40000;
static long s_mapc = 2000000;
static int s_chunk = 1000;
static long s_prime_limit = 3000000;  /* primes below this (C) */
static long s_py_prime_limit = 400000; /* and in Python */
static long s_chaos_tasks = 10000;
static int s_chaos_kills = 50;
static int s_chaos_interval_ms = 80;
static int s_chaos_task_us = 1000;
static double s_chaos_stall_s = 10; /* nothing settled that long: hung */

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ------------------------------------------------------------------ */
/* Task functions (found by name in the process workers)               */

static int
s_int_msg(const char *tag, int64_t v, tr_msg_t **out)
{
    int rc = tr_msg_create(out, tag);
    if (rc == 0 && (rc = tr_msg_add_int(*out, v)) != 0)
        tr_msg_destroy(out);
    return rc;
}

static int64_t
s_int_of(const tr_msg_t *m)
{
    tr_reader_t r;
    int64_t v = -1;
    tr_reader_init(&r, m);
    return tr_read_int(&r, &v) == 0 ? v : -1;
}

/* bp_ident [x] -> [x]: the trivial task (Python: def ident(x): return x) */
static int
s_ident(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t x;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &x);
    return rc ? rc : s_int_msg("r", x, result);
}

TR_TASK(bp_ident, s_ident);

/* bp_ident_items: the same on a chunk of an int64 array (Python's chunked
 * Pool.map runs ident on each item of a chunk the same way). */
static int
s_ident_items(const void *in, size_t in_size, void *out, size_t out_size,
              size_t n)
{
    if (in_size != sizeof(int64_t) || out_size != sizeof(int64_t))
        return TR_EINVAL;
    const int64_t *x = in;
    int64_t *y = out;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return 0;
}

TR_ITEMS_TASK(bp_ident_items, s_ident_items);

static int
s_is_prime(int64_t n)
{
    if (n < 2)
        return 0;
    for (int64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

/* bp_primes [lo, hi] -> [primes in lo..hi) */
static int
s_primes(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t lo, hi, n = 0;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &lo);
    if (rc == 0)
        rc = tr_read_int(&r, &hi);
    if (rc != 0)
        return rc;
    for (int64_t i = lo; i < hi; i++)
        n += s_is_prime(i);
    return s_int_msg("r", n, result);
}

TR_TASK(bp_primes, s_primes);

/* bp_nap [x, us] -> [x] after sleeping us microseconds */
static int
s_nap(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t x, us;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &x);
    if (rc == 0)
        rc = tr_read_int(&r, &us);
    if (rc != 0)
        return rc;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return s_int_msg("r", x, result);
}

TR_TASK(bp_nap, s_nap);

/* ------------------------------------------------------------------ */
/* Pools                                                               */

/* Wait until the pool has n workers, all idle (spawned and ready). */
static void
s_wait_ready(tr_pool_t *pool, int n)
{
    double end = bu_now() + 30;
    for (;;) {
        tr_pool_stats_t st;
        bu_check(tr_pool_stats(pool, &st), "pool stats");
        if (st.workers == n && st.idle == n)
            return;
        if (bu_now() > end) {
            fprintf(stderr, "bench_pool: workers not ready in 30 s\n");
            exit(1);
        }
        s_sleep_ms(2);
    }
}

static tr_pool_t *
s_pool(tr_node_t *node, tr_pool_mode_t mode, int workers)
{
    tr_pool_t *pool;
    tr_pool_opts_t o = {.workers = workers, .mode = mode};
    bu_check(tr_pool_start(node, &o, &pool), "pool start");
    s_wait_ready(pool, workers);
    return pool;
}

static void
s_submit(tr_pool_t *pool, const char *task, tr_msg_t **args,
         tr_future_t **fut)
{
    bu_check(tr_pool_submit(pool, task, args, TR_DEFAULT, fut), "submit");
}

/* Tasks per second: n bp_ident tasks, at most WINDOW in flight, each
 * collected as it settles (tr_future_next_done). */
static double
s_submit_rate(tr_pool_t *pool, long n)
{
    tr_future_t *fs[WINDOW];
    size_t nf = 0;
    long next = 0, got = 0;
    int64_t sum = 0;
    double t0 = bu_now();
    while (got < n) {
        while (next < n && nf < WINDOW) {
            tr_msg_t *a;
            bu_check(s_int_msg("x", next++, &a), "msg");
            s_submit(pool, "bp_ident", &a, &fs[nf++]);
        }
        tr_future_t *f;
        tr_msg_t *r = NULL;
        bu_check(tr_future_next_done(fs, &nf, TR_FOREVER, &f), "next_done");
        bu_check(tr_future_get(f, 0, &r), "task");
        sum += s_int_of(r);
        tr_msg_destroy(&r);
        tr_future_destroy(&f);
        got++;
    }
    double dt = bu_now() - t0;
    if (sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "bench_pool: submit: wrong sum %lld\n",
                (long long)sum);
        exit(1);
    }
    return (double)n / dt;
}

typedef struct {
    long n, at;
    int64_t sum;
    long seen;
} s_mapio_t;

static int
s_map_next(void *arg, tr_msg_t **item)
{
    s_mapio_t *io = arg;
    if (io->at == io->n)
        return 1;
    return s_int_msg("x", io->at++, item);
}

static int
s_map_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_mapio_t *io = arg;
    if (rc != 0)
        return rc;
    int64_t v = s_int_of(result);
    if (v != (int64_t)index)
        return TR_EPROTO; /* out of order, or wrong */
    io->sum += v;
    io->seen++;
    return 0;
}

/* Items per second through tr_pool_map (bp_ident). */
static double
s_map_rate(tr_pool_t *pool, long n, int chunk, int window)
{
    s_mapio_t io = {.n = n};
    tr_map_opts_t o = {.chunk = chunk, .window = window, .total = (uint64_t)n};
    double t0 = bu_now();
    bu_check(tr_pool_map(pool, "bp_ident", s_map_next, &io, s_map_out, &io,
                        &o),
            "map");
    double dt = bu_now() - t0;
    if (io.seen != n || io.sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "bench_pool: map: %ld results, sum %lld\n", io.seen,
                (long long)io.sum);
        exit(1);
    }
    return (double)n / dt;
}

/* Items per second through tr_pool_map_items (bp_ident_items) over an
 * int64 array 0..n-1 with its default chunks. */
static double
s_items_rate(tr_pool_t *pool, long n)
{
    int64_t *in = malloc((size_t)n * sizeof *in);
    int64_t *out = malloc((size_t)n * sizeof *out);
    if (in == NULL || out == NULL) {
        fprintf(stderr, "bench_pool: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++) {
        in[i] = i;
        out[i] = -1;
    }
    double t0 = bu_now();
    bu_check(tr_pool_map_items(pool, "bp_ident_items", in, sizeof *in, out,
                               sizeof *out, (size_t)n, NULL, NULL),
             "map_items");
    double dt = bu_now() - t0;
    int64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += out[i];
    if (sum != (int64_t)n * (n - 1) / 2 || out[n - 1] != n - 1) {
        fprintf(stderr, "bench_pool: map_items: wrong sum %lld\n",
                (long long)sum);
        exit(1);
    }
    free(in);
    free(out);
    return (double)n / dt;
}

/* Seconds to count the primes below limit in 16 tasks; *count gets it. */
static double
s_primes_time(tr_pool_t *pool, long limit, int64_t *count)
{
    enum { TASKS = 16 };
    tr_future_t *fs[TASKS];
    long step = (limit + TASKS - 1) / TASKS;
    double t0 = bu_now();
    for (int i = 0; i < TASKS; i++) {
        tr_msg_t *a;
        bu_check(s_int_msg("range", (int64_t)i * step, &a), "msg");
        bu_check(tr_msg_add_int(a, (int64_t)(i + 1) * step), "msg");
        s_submit(pool, "bp_primes", &a, &fs[i]);
    }
    *count = 0;
    for (int i = 0; i < TASKS; i++) {
        tr_msg_t *r = NULL;
        bu_check(tr_future_get(fs[i], TR_FOREVER, &r), "primes");
        *count += s_int_of(r);
        tr_msg_destroy(&r);
        tr_future_destroy(&fs[i]);
    }
    return bu_now() - t0;
}

/* ------------------------------------------------------------------ */
/* Chaos: a thread that SIGKILLs random children of this process        */

typedef struct {
    atomic_bool stop;
    int want, interval_ms, kills;
} s_killer_t;

/* The live (not zombie) children of this process: the process workers. */
static int
s_children(pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    pid_t me = getpid();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* after the command's name */
        char state;
        int ppid;
        if (p != NULL && sscanf(p + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == me && state != 'Z')
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static void *
s_killer(void *arg)
{
    s_killer_t *k = arg;
    unsigned seed = (unsigned)getpid();
    s_sleep_ms(k->interval_ms);
    while (!atomic_load(&k->stop) && k->kills < k->want) {
        pid_t kids[64];
        int n = s_children(kids, 64);
        if (n > 0 && kill(kids[rand_r(&seed) % n], SIGKILL) == 0) {
            k->kills++;
            s_sleep_ms(k->interval_ms);
        } else {
            s_sleep_ms(1); /* all restarting: try again soon */
        }
    }
    return NULL;
}

/* n bp_nap tasks on 2 process workers while the killer works: how many
 * failed or gave a wrong result (*lost) or never settled (*hung: none
 * settled for stall_s, or the run passed timeout_s). */
static void
s_chaos(tr_node_t *node, long n, double stall_s, double timeout_s,
        long *lost, long *hung, int *kills, double *secs,
        tr_pool_stats_t *st)
{
    tr_pool_t *pool = s_pool(node, TR_POOL_PROCESSES, WORKERS);
    s_killer_t k = {.want = s_chaos_kills, .interval_ms = s_chaos_interval_ms};
    pthread_t th;
    if (pthread_create(&th, NULL, s_killer, &k) != 0) {
        fprintf(stderr, "bench_pool: pthread_create failed\n");
        exit(1);
    }
    tr_future_t *fs[WINDOW];
    size_t nf = 0;
    long next = 0, got = 0;
    *lost = 0;
    *hung = 0;
    double t0 = bu_now(), end = t0 + timeout_s;
    while (got < n) {
        while (next < n && nf < WINDOW) {
            tr_msg_t *a;
            bu_check(s_int_msg("x", next++, &a), "msg");
            bu_check(tr_msg_add_int(a, s_chaos_task_us), "msg");
            s_submit(pool, "bp_nap", &a, &fs[nf++]);
        }
        double left = end - bu_now();
        if (left > stall_s)
            left = stall_s;
        tr_future_t *f;
        int rc = tr_future_next_done(fs, &nf, left > 0 ? (int)(left * 1e3)
                                                       : 0, &f);
        if (rc == TR_ETIMEDOUT) {
            *hung = n - got; /* in flight, and never submitted */
            break;
        }
        bu_check(rc, "next_done");
        tr_msg_t *r = NULL;
        rc = tr_future_get(f, 0, &r);
        if (rc != 0) {
            if (*lost < 5)
                fprintf(stderr, "bench_pool: chaos: a task failed: %s "
                        "(%s)\n", tr_strerror(rc),
                        tr_strerror(tr_future_exit_reason(f)));
            (*lost)++;
        } else if (s_int_of(r) < 0 || s_int_of(r) >= n) {
            (*lost)++;
        }
        tr_msg_destroy(&r);
        tr_future_destroy(&f);
        got++;
    }
    *secs = bu_now() - t0;
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    *kills = k.kills;
    for (size_t i = 0; i < nf; i++)
        tr_future_destroy(&fs[i]);
    bu_check(tr_pool_stats(pool, st), "pool stats");
    int rc = tr_pool_shutdown(&pool, true, 5000);
    if (rc != 0)
        fprintf(stderr, "bench_pool: chaos: shutdown: %s\n", tr_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Python's side                                                        */

static const char *s_bench_dir = "bench";

static const char *
s_python(void)
{
    const char *py = getenv("TROUPE_PYTHON");
    if (py != NULL && py[0] != 0)
        return py;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                 : "python3";
}

/* Run bench/py_pool.py with args (under `timeout`, so that a hung Python
 * cannot stall the run); read up to max numbers from its output line.
 * Returns how many were read (0: no figure). */
static int
s_py(const char *args, double *v, int max)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "timeout -s KILL 600 '%s' '%s/py_pool.py' %s 2>/dev/null",
             s_python(), s_bench_dir, args);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p != NULL) {
        while (n < max && fscanf(p, "%lf", &v[n]) == 1)
            n++;
        pclose(p);
    }
    return n;
}

static void
s_no_python(const char *name, double troupe, const char *unit)
{
    printf("# %s troupe=%.2f%s: no figure from %s %s/py_pool.py, no "
           "baseline\n", name, troupe, unit, s_python(), s_bench_dir);
}

/* ------------------------------------------------------------------ */
/* The comparisons                                                      */

static void
s_bench_submit(tr_node_t *node, bool processes)
{
    const char *name =
        processes ? "pool_submit_process" : "pool_submit_thread";
    long n = processes ? s_submit_proc : s_submit_thread;
    tr_pool_t *pool =
        s_pool(node, processes ? TR_POOL_PROCESSES : TR_POOL_THREADS, WORKERS);
    double r[8], fl[8];
    s_submit_rate(pool, n / 10); /* warm up */
    if (!processes)
        zb_rate(n / 10, WORKERS, WINDOW);
    for (int i = 0; i < s_rounds; i++) { /* alternating */
        r[i] = s_submit_rate(pool, n);
        if (!processes)
            fl[i] = zb_rate(n, WORKERS, WINDOW);
    }
    bu_check(tr_pool_shutdown(&pool, false, TR_DEFAULT), "shutdown");
    double t = bu_median(r, s_rounds);
    double floor_rate = processes ? 0 : bu_median(fl, s_rounds);
    char args[128];
    snprintf(args, sizeof args, "%s %ld %d %d",
             processes ? "submit_process" : "submit_thread",
             processes ? s_py_submit_proc : s_py_submit_thread, WINDOW,
             s_rounds);
    double py = 0;
    if (s_py(args, &py, 1) != 1) {
        s_no_python(name, t, "tasks/s");
        py = 0;
    } else {
        printf("BENCH %s troupe=%.0ftasks/s baseline=%.0ftasks/s "
               "ratio=%.2f\n", name, t, py, t / py);
        printf("# %s: higher is better; a window of %d futures on %d %s "
               "workers (troupe %ld tasks, Python %ld, median of %d "
               "rounds)\n", name, WINDOW, WORKERS,
               processes ? "process" : "thread", n,
               processes ? s_py_submit_proc : s_py_submit_thread, s_rounds);
    }
    if (!processes) {
        printf("BENCH pool_submit_thread_floor troupe=%.0ftasks/s "
               "baseline=%.0ftasks/s ratio=%.2f\n", t, floor_rate,
               t / floor_rate);
        printf("# pool_submit_thread_floor: higher is better; the baseline "
               "is the same message pattern (a task a message in, batches "
               "to 2 worker threads by credit, answers as one multipart "
               "run) in raw libzmq, no troupe (bench/zmq_broker.c)");
        if (py > 0)
            printf(": %.1fx ThreadPoolExecutor", floor_rate / py);
        printf("\n");
    }
}

static void
s_bench_map(tr_node_t *node, bool chunked)
{
    const char *name = chunked ? "pool_map_chunked" : "pool_map_chunk1";
    long n = chunked ? s_mapc : s_map1;
    int chunk = chunked ? s_chunk : 1;
    int window = chunked ? 0 : WINDOW;
    tr_pool_t *pool = s_pool(node, TR_POOL_PROCESSES, WORKERS);
    double r[8], rm[8];
    if (chunked) {
        s_items_rate(pool, n / 10); /* warm up */
        for (int i = 0; i < s_rounds; i++)
            r[i] = s_items_rate(pool, n);
        /* and the message-per-item map, for the record */
        s_map_rate(pool, n / 10, chunk, window);
        for (int i = 0; i < s_rounds; i++)
            rm[i] = s_map_rate(pool, n, chunk, window);
    } else {
        s_map_rate(pool, n / 10, chunk, window); /* warm up */
        for (int i = 0; i < s_rounds; i++)
            r[i] = s_map_rate(pool, n, chunk, window);
    }
    bu_check(tr_pool_shutdown(&pool, false, TR_DEFAULT), "shutdown");
    double t = bu_median(r, s_rounds);
    char args[128];
    long pyn = chunked ? s_mapc : s_py_map1;
    snprintf(args, sizeof args, "%s %ld %d", chunked ? "map_chunked" :
             "map_chunk1", pyn, s_rounds);
    double py;
    if (s_py(args, &py, 1) != 1) {
        s_no_python(name, t, "items/s");
        return;
    }
    printf("BENCH %s troupe=%.0fitems/s baseline=%.0fitems/s ratio=%.2f\n",
           name, t, py, t / py);
    if (chunked)
        printf("# %s: higher is better; tr_pool_map_items over an int64 "
               "array, default chunks, vs Pool.map(ident, range(n)) with its "
               "default chunksize, %ld items, median of %d rounds; "
               "tr_pool_map with a message per item, chunk %d: %.0f "
               "items/s\n", name, n, s_rounds, chunk,
               bu_median(rm, s_rounds));
    else
        printf("# %s: higher is better; tr_pool_map chunk 1, window %d vs "
               "Pool.map(chunksize=1) (troupe %ld items, Python %ld), "
               "median of %d rounds\n", name, WINDOW, n, pyn, s_rounds);
}

static void
s_bench_speedup(tr_node_t *node)
{
    double t[2][8];
    int64_t c1 = 0, c2 = 0;
    for (int i = 0; i < s_rounds; i++) {
        for (int w = 1; w <= 2; w++) {
            tr_pool_t *pool = s_pool(node, TR_POOL_PROCESSES, w);
            t[w - 1][i] =
                s_primes_time(pool, s_prime_limit, w == 1 ? &c1 : &c2);
            bu_check(tr_pool_shutdown(&pool, false, TR_DEFAULT), "shutdown");
        }
        if (c1 != c2) {
            fprintf(stderr, "bench_pool: primes: %lld vs %lld\n",
                    (long long)c1, (long long)c2);
            exit(1);
        }
    }
    double t1 = bu_median(t[0], s_rounds), t2 = bu_median(t[1], s_rounds);
    double sp = t1 / t2;
    char args[128];
    snprintf(args, sizeof args, "speedup %ld %d", s_py_prime_limit,
             s_rounds);
    double py[3];
    if (s_py(args, py, 3) != 3) {
        s_no_python("pool_speedup", sp, "x");
        return;
    }
    printf("BENCH pool_speedup troupe=%.2fx baseline=%.2fx ratio=%.2f\n", sp,
           py[0], sp / py[0]);
    printf("# pool_speedup: higher is better; 2 process workers over 1, "
           "primes below %ld in 16 tasks (troupe %.2f s -> %.2f s), Python "
           "below %ld (%.2f s -> %.2f s), median of %d rounds\n",
           s_prime_limit, t1, t2, s_py_prime_limit, py[1], py[2], s_rounds);
}

static void
s_bench_chaos(tr_node_t *node)
{
    long lost, hung;
    int kills;
    double secs;
    tr_pool_stats_t st;
    double stall_s = s_chaos_stall_s, timeout_s = 60;
    /* A warning for every kill and restart would bury the figures. */
    int level = tr_log_level();
    tr_log_set_level(TR_LOG_ERROR);
    s_chaos(node, s_chaos_tasks, stall_s, timeout_s, &lost, &hung, &kills,
            &secs, &st);
    tr_log_set_level(level);
    char args[128];
    snprintf(args, sizeof args, "chaos %ld %d %d %d %.0f", s_chaos_tasks,
             s_chaos_kills, s_chaos_interval_ms, s_chaos_task_us, timeout_s);
    double py[5]; /* lost+hung, failed, hung, kills, seconds */
    int got = s_py(args, py, 5);
    long ours = lost + hung;
    if (got != 5) {
        /* killed by `timeout`, or no Python: count everything as hung */
        py[0] = (double)s_chaos_tasks;
        py[1] = 0;
        py[2] = (double)s_chaos_tasks;
        py[3] = -1;
        py[4] = -1;
        printf("# pool_chaos_lost: no figure from Python (killed or "
               "missing): all %ld of its tasks counted as hung\n",
               s_chaos_tasks);
    }
    double ratio = ours == 0 ? 0.0 : (py[0] > 0 ? ours / py[0] : 1e9);
    printf("BENCH pool_chaos_lost troupe=%ldtasks baseline=%.0ftasks "
           "ratio=%.2f\n", ours, py[0], ratio);
    printf("# pool_chaos_lost: lower is better; %ld tasks of %d us, %d "
           "kills every %d ms (hung: nothing settled for %.0f s, or past "
           "%.0f s); troupe: %d kills, %ld failed, %ld hung, "
           "%llu retried, %.1f s; Python: %.0f kills, %.0f failed "
           "(BrokenProcessPool), %.0f hung, %.1f s\n",
           s_chaos_tasks, s_chaos_task_us, s_chaos_kills,
           s_chaos_interval_ms, stall_s, timeout_s, kills, lost, hung,
           (unsigned long long)st.retried, secs, py[3], py[1], py[2], py[4]);
}

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv); /* a process worker starts here, and stays */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_rounds = 1;
            s_submit_proc = 30000;
            s_submit_thread = 50000;
            s_py_submit_proc = 5000;
            s_py_submit_thread = 30000;
            s_map1 = 30000;
            s_py_map1 = 10000;
            s_mapc = 500000;
            s_prime_limit = 1500000;
            s_py_prime_limit = 200000;
            s_chaos_tasks = 2000;
            s_chaos_kills = 10;
            s_chaos_stall_s = 5;
        }
    }
    /* bench/py_pool.py sits next to this file in the source tree. */
    const char *src = getenv("TROUPE_BENCH_DIR");
    if (src != NULL)
        s_bench_dir = src;

    tr_node_t *node = NULL;
    if (bu_wanted(argc, argv, "pool_submit_process")) {
        bu_check(tr_node_create(&node, NULL), "node");
        s_bench_submit(node, true);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "pool_submit_thread") ||
        bu_wanted(argc, argv, "pool_submit_thread_floor")) {
        if (node == NULL)
            bu_check(tr_node_create(&node, NULL), "node");
        s_bench_submit(node, false);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "pool_map_chunk1")) {
        if (node == NULL)
            bu_check(tr_node_create(&node, NULL), "node");
        s_bench_map(node, false);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "pool_map_chunked")) {
        if (node == NULL)
            bu_check(tr_node_create(&node, NULL), "node");
        s_bench_map(node, true);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "pool_speedup")) {
        if (node == NULL)
            bu_check(tr_node_create(&node, NULL), "node");
        s_bench_speedup(node);
        fflush(stdout);
    }
    if (bu_wanted(argc, argv, "pool_chaos_lost")) {
        if (node == NULL)
            bu_check(tr_node_create(&node, NULL), "node");
        s_bench_chaos(node);
        fflush(stdout);
    }
    if (node != NULL)
        bu_check(tr_node_destroy(&node), "destroy");
    return 0;
}
