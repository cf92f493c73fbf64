/* examples/chunked_data.c - a large array processed in chunks on a pool
 * of process workers, checked against the same work done serially.
 *
 * The Python it answers (the tutorial's data processing):
 *
 *     def process_data(chunk): return [x * x for x in chunk]
 *     data = list(range(1000000))
 *     chunks = [data[i:i + 10000] for i in range(0, len(data), 10000)]
 *     pool = Pool(4)
 *     results = [pool.apply_async(process_data, (c,)) for c in chunks]
 *     pool.close(); pool.join()
 *     out = [y for r in results for y in r.get()]
 *
 * That Python builds every chunk and every pending result up front. Here
 * tr_pool_map streams: its next callback cuts the next chunk of 10,000
 * ints off the array only when a worker can take it (at most .window
 * tasks are in flight), and its out callback copies each chunk's result
 * into place, in input order. So the messages in flight stay about a
 * megabyte (8 tasks of 40 KB in, 80 KB out) whatever the array's size.
 *
 * Why chunks of our own and not .chunk = 10000 over a million one-int
 * items: every item is a message (a tag and a payload), and the chunk
 * carries each one's tag and bytes. A chunk of 10,000 ints as one
 * msgpack bin is one 40 KB message, read with one tr_read_bin. .chunk
 * suits items that are messages of their own (file names, records).
 * With .progress_bar, map draws a bar on stderr when it is a terminal.
 *
 * Why no shared memory: a worker gets a copy of its chunk in a message
 * and sends back a new one; the arrays belong to main alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe.h"

#define N 1000000
#define CHUNK 10000

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "chunked_data: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* process_data [bin of int32] -> "squares" [bin of int64], x -> x * x */
static int
s_process_data(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    const void *data;
    size_t len;
    tr_reader_init(&r, args);
    int rc = tr_read_bin(&r, &data, &len);
    if (rc != 0)
        return rc;
    size_t n = len / sizeof(int32_t);
    int64_t *sq = malloc(n * sizeof *sq);
    if (sq == NULL)
        return TR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int32_t x;
        memcpy(&x, (const char *)data + i * sizeof x, sizeof x);
        sq[i] = (int64_t)x * x;
    }
    if ((rc = tr_msg_create(result, "squares")) == 0)
        rc = tr_msg_add_bin(*result, sq, n * sizeof *sq);
    free(sq);
    return rc;
}

TR_TASK(process_data, s_process_data);

struct job {
    const int32_t *data;
    int64_t *out;
    size_t at; /* the next chunk starts here */
};

/* map's input: the next chunk of data, or 1 at the end. */
static int
s_next(void *arg, tr_msg_t **item)
{
    struct job *j = arg;
    if (j->at == N)
        return 1;
    size_t n = N - j->at < CHUNK ? N - j->at : CHUNK;
    int rc = tr_msg_create(item, "chunk");
    if (rc == 0 &&
        (rc = tr_msg_add_bin(*item, j->data + j->at, n * sizeof *j->data))
            != 0)
        tr_msg_destroy(item);
    j->at += n;
    return rc;
}

/* map's output: chunk number index, in order; copy it into place. */
static int
s_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    struct job *j = arg;
    tr_reader_t r;
    const void *sq;
    size_t len;
    if (rc != 0)
        return rc; /* stop the map: a chunk failed */
    tr_reader_init(&r, result);
    if ((rc = tr_read_bin(&r, &sq, &len)) != 0)
        return rc;
    size_t first = (size_t)index * CHUNK;
    if (first + len / sizeof *j->out > N)
        return TR_ERANGE;
    memcpy(j->out + first, sq, len);
    return 0;
}

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "tr_init"); /* a worker stays here */
    int32_t *data = malloc(N * sizeof *data);
    int64_t *serial = malloc(N * sizeof *serial);
    int64_t *pooled = calloc(N, sizeof *pooled);
    if (data == NULL || serial == NULL || pooled == NULL)
        s_check(TR_ENOMEM, "arrays");
    int64_t serial_sum = 0, pooled_sum = 0;
    for (int32_t i = 0; i < N; i++) {
        data[i] = i;
        serial[i] = (int64_t)i * i; /* the same work, done here */
        serial_sum += serial[i];
    }

    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, NULL), "node");
    tr_pool_t *pool = NULL;
    tr_pool_opts_t opts = {.workers = 4, .mode = TR_POOL_PROCESSES};
    s_check(tr_pool_start(node, &opts, &pool), "pool");
    struct job j = {.data = data, .out = pooled};
    tr_map_opts_t mo = {.total = (N + CHUNK - 1) / CHUNK,
                        .progress_bar = true};
    int rc = tr_pool_map(pool, "process_data", s_next, &j, s_out, &j, &mo);
    int src = tr_pool_shutdown(&pool, false, TR_DEFAULT);
    tr_node_destroy(&node);
    s_check(rc, "map");
    s_check(src, "shutdown");

    for (size_t i = 0; i < N; i++)
        pooled_sum += pooled[i];
    bool match = memcmp(serial, pooled, N * sizeof *serial) == 0;
    printf("%d ints in %d chunks of %d on 4 worker processes\n", N,
           N / CHUNK, CHUNK);
    printf("serial: sum of squares %lld\n", (long long)serial_sum);
    printf("pool:   sum of squares %lld\n", (long long)pooled_sum);
    printf("match: %s\n", match ? "yes" : "no");
    free(data);
    free(serial);
    free(pooled);
    return match ? 0 : 1;
}
