/* examples/thread_pool.c - I/O-bound tasks on a pool of thread workers,
 * their results taken as they complete.
 *
 * The Python it answers (ThreadPoolExecutor and as_completed):
 *
 *     def fetch(url, ms): ...   # waits on a socket, returns the page
 *     with ThreadPoolExecutor(max_workers=5) as ex:
 *         futures = [ex.submit(fetch, url, ms) for url, ms in work]
 *         for f in as_completed(futures):
 *             print(f.result())
 *
 * A task here "fetches" by waiting (poll(NULL, 0, ms) stands for a socket
 * or a timer) and answers "page" [id, ms]. The pool (.mode =
 * TR_POOL_THREADS) runs each task on one of its worker threads;
 * tr_future_next_done gives the futures back in the order they settle,
 * as as_completed does. Then five tasks of 200 ms each on five workers:
 * they wait side by side, so together they take about 200 ms, not 1 s.
 *
 * A thread pool may register its task function at run time
 * (tr_task_register); a process pool needs TR_TASK (see process_pool.c).
 *
 * Why no lock: a task shares nothing with the others; its arguments come
 * in a message and its result goes back in one, to the thread that
 * submitted it (the futures belong to main).
 *
 * Its messages, drawn: docs/diagrams/thread_pool.svg */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "troupe.h"

#define WORKERS 5

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "thread_pool: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fetch [id, ms] -> "page" [id, ms]: wait ms, as for an answer. */
static int
s_fetch(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t id, ms;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &id);
    if (rc == 0)
        rc = tr_read_int(&r, &ms);
    if (rc != 0)
        return rc;
    poll(NULL, 0, (int)ms); /* the worker thread blocks; the others go on */
    if ((rc = tr_msg_create(result, "page")) == 0 &&
        (rc = tr_msg_add_int(*result, id)) == 0)
        rc = tr_msg_add_int(*result, ms);
    return rc;
}

/* Submit n fetches; fetch i waits ms[i]. */
static void
s_submit(tr_pool_t *pool, const int *ms, int n, tr_future_t **futs)
{
    for (int i = 0; i < n; i++) {
        tr_msg_t *args = NULL;
        s_check(tr_msg_create(&args, "fetch"), "create");
        s_check(tr_msg_add_int(args, i), "add");
        s_check(tr_msg_add_int(args, ms[i]), "add");
        s_check(tr_pool_submit(pool, "fetch", &args, TR_DEFAULT, &futs[i]),
                "submit");
    }
}

/* Take a future's "page" [id, ms]; false if it failed. */
static bool
s_page(tr_future_t **fut, int64_t *id, int64_t *ms)
{
    tr_msg_t *page = NULL;
    tr_reader_t r;
    int rc = tr_future_get(*fut, 0, &page);
    if (rc == 0) {
        tr_reader_init(&r, page);
        if ((rc = tr_read_int(&r, id)) == 0)
            rc = tr_read_int(&r, ms);
    }
    if (rc != 0)
        printf("main: a fetch failed: %s\n", tr_strerror(rc));
    tr_msg_destroy(&page);
    tr_future_destroy(fut);
    return rc == 0;
}

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "tr_init");
    s_check(tr_task_register("fetch", s_fetch), "register");
    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, NULL), "node");
    tr_pool_t *pool = NULL;
    tr_pool_opts_t opts = {.workers = WORKERS, .mode = TR_POOL_THREADS};
    s_check(tr_pool_start(node, &opts, &pool), "pool");

    /* 1. as_completed: the shortest wait comes back first. */
    const int ms[WORKERS] = {250, 50, 200, 100, 150};
    tr_future_t *futs[WORKERS];
    s_submit(pool, ms, WORKERS, futs);
    size_t left = WORKERS;
    int got = 0, in_order = 1;
    int64_t last = 0;
    while (left > 0) {
        tr_future_t *done = NULL;
        int64_t id = -1, wait = 0;
        s_check(tr_future_next_done(futs, &left, TR_FOREVER, &done), "next");
        if (s_page(&done, &id, &wait) && wait == ms[id]) {
            printf("main: fetch %lld done (%lld ms)\n", (long long)id,
                   (long long)wait);
            got++;
            in_order &= wait >= last;
            last = wait;
        }
    }
    printf("main: %d of %d fetches, shortest first: %s\n", got, WORKERS,
           in_order ? "yes" : "no");

    /* 2. Five waits of 200 ms side by side on five workers. */
    const int same[WORKERS] = {200, 200, 200, 200, 200};
    int64_t t0 = s_now_ms();
    s_submit(pool, same, WORKERS, futs);
    s_check(tr_future_wait_all(futs, WORKERS, TR_FOREVER), "wait_all");
    int64_t elapsed = s_now_ms() - t0;
    int same_got = 0;
    for (int i = 0; i < WORKERS; i++) {
        int64_t id = -1, wait = 0;
        same_got += s_page(&futs[i], &id, &wait) && id == i && wait == 200;
    }
    printf("main: %d fetches of 200 ms on %d workers took %lld ms "
           "(one after another: 1000 ms)\n", same_got, WORKERS,
           (long long)elapsed);

    int src = tr_pool_shutdown(&pool, false, TR_DEFAULT);
    tr_node_destroy(&node);
    s_check(src, "shutdown");
    printf("thread_pool: %d of %d tasks answered\n", got + same_got,
           2 * WORKERS);
    return got + same_got == 2 * WORKERS ? 0 : 1;
}
