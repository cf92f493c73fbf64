/* process_pool - CPU-bound tasks on a pool of process workers.
 *
 * The Python it answers (ProcessPoolExecutor / Pool.map):
 *
 *     def count_primes(lo, hi): ...
 *     with ProcessPoolExecutor(max_workers=2) as ex:
 *         futures = [ex.submit(count_primes, lo, lo + step) for lo in ...]
 *         total = sum(f.result() for f in futures)
 *
 * Here the task function is registered by name (TR_TASK), because a
 * process worker is this program started again: it finds the function by
 * name, not by address. The pool hands a task only to an idle worker, and
 * a worker that dies is replaced, its task tried again: the pool never
 * breaks. The program prints the count and the speedup of two workers
 * over one.
 *
 * Usage: process_pool [limit]   (default 2000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "troupe.h"

#define TASKS 16

static int
is_prime(int64_t n)
{
    if (n < 2)
        return 0;
    for (int64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

/* count_primes [lo, hi] -> "count" [n] */
static int
count_primes(const tr_msg_t *args, tr_msg_t **result)
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
        n += is_prime(i);
    if ((rc = tr_msg_create(result, "count")) == 0)
        rc = tr_msg_add_int(*result, n);
    return rc;
}

TR_TASK(count_primes, count_primes);

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Count the primes below limit on a pool of n process workers. */
static int
run(tr_node_t *node, int workers, int64_t limit, int64_t *count,
    double *secs)
{
    tr_pool_t *pool = NULL;
    tr_pool_opts_t opts = {.workers = workers, .mode = TR_POOL_PROCESSES};
    int rc = tr_pool_start(node, &opts, &pool);
    if (rc != 0)
        return rc;
    double t0 = now_s();
    tr_future_t *fut[TASKS] = {0};
    int64_t step = (limit + TASKS - 1) / TASKS;
    for (int i = 0; i < TASKS && rc == 0; i++) {
        tr_msg_t *args = NULL;
        if ((rc = tr_msg_create(&args, "range")) == 0 &&
            (rc = tr_msg_add_int(args, i * step)) == 0 &&
            (rc = tr_msg_add_int(args, (i + 1) * step)) == 0)
            rc = tr_pool_submit(pool, "count_primes", &args, TR_DEFAULT,
                                &fut[i]);
        tr_msg_destroy(&args);
    }
    *count = 0;
    for (int i = 0; i < TASKS; i++) {
        tr_msg_t *reply = NULL;
        if (fut[i] == NULL)
            continue;
        int frc = tr_future_get(fut[i], TR_FOREVER, &reply);
        if (frc == 0) {
            tr_reader_t r;
            int64_t n = 0;
            tr_reader_init(&r, reply);
            frc = tr_read_int(&r, &n);
            *count += n;
        }
        if (rc == 0)
            rc = frc;
        tr_msg_destroy(&reply);
        tr_future_destroy(&fut[i]);
    }
    *secs = now_s() - t0;
    int src = tr_pool_shutdown(&pool, false, TR_DEFAULT);
    return rc ? rc : src;
}

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv); /* a worker process starts here, and stays */
    int64_t limit = argc > 1 ? atoll(argv[1]) : 2000000;
    if (limit < TASKS) {
        fprintf(stderr, "usage: process_pool [limit >= %d]\n", TASKS);
        return 2;
    }
    tr_node_t *node = NULL;
    int rc = tr_node_create(&node, NULL);
    if (rc != 0) {
        fprintf(stderr, "node: %s\n", tr_strerror(rc));
        return 1;
    }
    int64_t one = 0, two = 0;
    double t1 = 0, t2 = 0;
    if ((rc = run(node, 1, limit, &one, &t1)) == 0)
        rc = run(node, 2, limit, &two, &t2);
    tr_node_destroy(&node);
    if (rc != 0) {
        fprintf(stderr, "process_pool: %s\n", tr_strerror(rc));
        return 1;
    }
    printf("primes below %lld: %lld (1 worker: %.2f s, 2 workers: %.2f s, "
           "speedup %.2fx)\n", (long long)limit, (long long)two, t1, t2,
           t2 > 0 ? t1 / t2 : 0.0);
    return one == two ? 0 : 1;
}
