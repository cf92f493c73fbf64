/* examples/apply_async.c - tasks on a process pool, each result handed to
 * a callback that adds it to a total.
 *
 * The Python it answers (Pool.apply_async with a callback):
 *
 *     total = 0
 *     def collect(result):
 *         global total
 *         total += result
 *     with Pool(4) as pool:
 *         for n in range(1, 21):
 *             pool.apply_async(cube, (n,), callback=collect)
 *         pool.close()
 *         pool.join()
 *     print(total)
 *
 * tr_pool_submit is apply_async: it returns a future at once.
 * tr_future_then attaches the callback. tr_future_wait_all is close() +
 * join(): it waits for every future, and the callbacks run meanwhile.
 *
 * Why no lock on total: Python runs callbacks on a helper thread of the
 * pool, so anything they share with the main thread needs care. Here a
 * callback runs on the thread that submitted (main), while it waits on
 * its futures; the workers are other processes and only send messages.
 * The task function is registered with TR_TASK because each worker is
 * this program started again: it finds cube by name. */
#include <stdio.h>
#include <stdlib.h>

#include "troupe.h"

#define TASKS 20

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "apply_async: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* cube [n] -> "cube" [n, n * n * n], computed in a worker process */
static int
s_cube(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t n;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &n);
    if (rc == 0 && (rc = tr_msg_create(result, "cube")) == 0 &&
        (rc = tr_msg_add_int(*result, n)) == 0)
        rc = tr_msg_add_int(*result, n * n * n);
    return rc;
}

TR_TASK(cube, s_cube);

struct totals {
    int64_t total;
    int results, errors;
};

/* The callback: runs on main's thread once the future has settled. */
static void
s_collect(void *arg, tr_future_t *fut)
{
    struct totals *t = arg;
    tr_msg_t *reply = NULL;
    tr_reader_t r;
    int64_t n = 0, cube = 0;
    int rc = tr_future_get(fut, 0, &reply); /* settled: no wait */
    if (rc == 0) {
        tr_reader_init(&r, reply);
        if ((rc = tr_read_int(&r, &n)) == 0)
            rc = tr_read_int(&r, &cube);
    }
    if (rc == 0) {
        printf("collect: cube(%lld) = %lld\n", (long long)n,
               (long long)cube);
        t->total += cube;
        t->results++;
    } else { /* apply_async's error_callback */
        printf("collect: a task failed: %s\n", tr_strerror(rc));
        t->errors++;
    }
    tr_msg_destroy(&reply);
}

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "tr_init"); /* a worker stays here */
    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, NULL), "node");
    tr_pool_t *pool = NULL;
    tr_pool_opts_t opts = {.workers = 4, .mode = TR_POOL_PROCESSES};
    s_check(tr_pool_start(node, &opts, &pool), "pool");

    struct totals t = {0};
    tr_future_t *futs[TASKS];
    for (int i = 0; i < TASKS; i++) {
        tr_msg_t *args = NULL;
        s_check(tr_msg_create(&args, "cube"), "create");
        s_check(tr_msg_add_int(args, i + 1), "add");
        s_check(tr_pool_submit(pool, "cube", &args, TR_DEFAULT, &futs[i]),
                "submit");
        s_check(tr_future_then(futs[i], s_collect, &t), "then");
    }
    printf("main: %d tasks submitted, waiting\n", TASKS);
    /* close() + join(): every callback has run when this returns. */
    s_check(tr_future_wait_all(futs, TASKS, TR_FOREVER), "wait_all");
    for (int i = 0; i < TASKS; i++)
        tr_future_destroy(&futs[i]);
    int src = tr_pool_shutdown(&pool, false, TR_DEFAULT);
    tr_node_destroy(&node);
    s_check(src, "shutdown");

    /* 1^3 + ... + n^3 = (n (n + 1) / 2)^2 */
    int64_t expected = (int64_t)TASKS * (TASKS + 1) / 2;
    expected *= expected;
    printf("main: %d results, %d errors\n", t.results, t.errors);
    printf("total = %lld (expected %lld)\n", (long long)t.total,
           (long long)expected);
    return t.total == expected && t.results == TASKS ? 0 : 1;
}
