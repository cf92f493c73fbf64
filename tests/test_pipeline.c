/* tests/test_pipeline.c - pipelines (tr_pipeline_*): producers, stages
 * (pools of thread or process workers) and a sink, and what the header
 * promises: every item once with its result, ordered and unordered sinks,
 * flat-map, filter and error items, keyed partitions and stateful stages
 * with a finish, end of stream counted per producer, SIGKILLed process
 * workers (nothing lost, nothing twice, stateful partitions rebuilt),
 * chaos mode (the same, in less than 3 times the fault-free time),
 * back-pressure (in flight stays bounded under a slow last stage),
 * placement from TROUPE_PLACE (text or file), and bad input.
 *
 * Process workers are this program re-executed (ts_run_suite calls
 * tr_init first), so every stage function is at file scope. Tests
 * parametrised by mode are loop tests: iteration 0 threads, 1 processes.
 * ck_assert runs only on the test's own threads, never in a worker.
 * Nothing sleeps to synchronise; naps inside stages are work. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

#define S_ERR_AT 13 /* tp_add1 fails this item with TR_ERANGE */

/* ------------------------------------------------------------------ */
/* Stage functions                                                     */

static int64_t
s_int(const tr_msg_t *m, int i)
{
    tr_reader_t r;
    int64_t v = -1;
    tr_reader_init(&r, m);
    for (int k = 0; k <= i; k++)
        if (tr_read_int(&r, &v) != 0)
            return -1;
    return v;
}

static int
s_emit_ints(tr_pipe_ctx_t *ctx, const char *tag, int n, const int64_t *v,
            const void *key, size_t klen)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, tag);
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_msg_add_int(m, v[i]);
    if (rc == 0)
        rc = key ? tr_pipe_emit_key(ctx, key, klen, &m)
                 : tr_pipe_emit(ctx, &m);
    tr_msg_destroy(&m);
    return rc;
}

static void
s_nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* [x] -> [x + 1]; item S_ERR_AT fails with TR_ERANGE when asked. */
static int
s_add1(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t x = s_int(item, 0);
    if (tr_msg_is(item, "e") && x == S_ERR_AT)
        return TR_ERANGE;
    int64_t v = x + 1;
    return s_emit_ints(ctx, tr_msg_tag(item), 1, &v, NULL, 0);
}
TR_STAGE(tp_add1, .fn = s_add1);

/* A plain task: [x] -> [2x]; odd x gives no result (dropped) for "f". */
static int
s_double(const tr_msg_t *args, tr_msg_t **result)
{
    int64_t x = s_int(args, 0);
    if (tr_msg_is(args, "f") && x % 2 != 0)
        return 0;
    int rc = tr_msg_create(result, tr_msg_tag(args));
    return rc ? rc : tr_msg_add_int(*result, 2 * x);
}
TR_TASK(tp_double, s_double);

/* Flat-map: [x] -> x % 3 items [x * 10 + j]. */
static int
s_split(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t x = s_int(item, 0);
    int rc = 0;
    for (int64_t j = 0; j < x % 3 && rc == 0; j++) {
        int64_t v = x * 10 + j;
        rc = s_emit_ints(ctx, "n", 1, &v, NULL, 0);
    }
    return rc;
}
TR_STAGE(tp_split, .fn = s_split);

/* [x] -> [x], with a nap: 1 ms for every 7th item (uneven: batches end
 * out of order), 30 us for "slow" items. */
static int
s_nap(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t x = s_int(item, 0);
    if (tr_msg_is(item, "slow"))
        s_nap_us(30);
    else if (x % 7 == 0)
        s_nap_us(1000);
    return s_emit_ints(ctx, tr_msg_tag(item), 1, &x, NULL, 0);
}
TR_STAGE(tp_nap, .fn = s_nap);

/* [x] -> "k" [x % 50], keyed by that key; 20 us of work. */
static int
s_key(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t k = s_int(item, 0) % 50;
    if (tr_msg_is(item, "slowk"))
        s_nap_us(20);
    return s_emit_ints(ctx, "k", 1, &k, &k, sizeof k);
}
TR_STAGE(tp_key, .fn = s_key);

/* Stateful: counts keys 0..49; at the end "c" [key, count] each. */
typedef struct {
    int64_t counts[50];
} s_counts_t;

static int
s_count(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)ctx;
    s_counts_t *c = state;
    int64_t k = s_int(item, 0);
    if (k < 0 || k >= 50)
        return TR_ERANGE;
    c->counts[k]++;
    return 0;
}

static int
s_count_finish(tr_pipe_ctx_t *ctx, void *state)
{
    s_counts_t *c = state;
    int rc = 0;
    for (int64_t k = 0; k < 50 && rc == 0; k++)
        if (c->counts[k] > 0) {
            int64_t v[2] = {k, c->counts[k]};
            rc = s_emit_ints(ctx, "c", 2, v, NULL, 0);
        }
    return rc;
}
TR_STAGE(tp_count, .fn = s_count, .finish = s_count_finish,
         .state_size = sizeof(s_counts_t));

/* Appends where it ran: [ints...] -> [ints..., pid, tid]; keyed by the
 * first int % 10 for the next stage. */
static int
s_whoami(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t v[8];
    int n = 0;
    tr_reader_t r;
    tr_reader_init(&r, item);
    while (n < 6 && tr_read_int(&r, &v[n]) == 0)
        n++;
    v[n++] = getpid();
    v[n++] = (int64_t)syscall(SYS_gettid);
    int64_t key = v[0] % 10;
    return s_emit_ints(ctx, "w", n, v, &key, sizeof key);
}
TR_STAGE(tp_whoami, .fn = s_whoami);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static tr_pipeline_t *
s_start(tr_node_t *node, const tr_stage_opts_t *st, int n,
        const tr_pipeline_opts_t *more)
{
    tr_pipeline_opts_t o = more ? *more : (tr_pipeline_opts_t){0};
    o.stages = st;
    o.nstages = n;
    tr_pipeline_t *p = NULL;
    int rc = tr_pipeline_start(node, &o, &p);
    ck_assert_msg(rc == 0, "tr_pipeline_start: %s", tr_strerror(rc));
    return p;
}

/* An input of n items tag [from..from+n), and what came out. */
typedef struct {
    const char *tag;
    int64_t at, n;
    int64_t out;            /* items handed to out */
    uint64_t last;          /* the last index (ordered checks) */
    bool in_order;
    uint8_t *seen;          /* per index */
    int64_t *val;           /* per index: the first int */
    int64_t errs, err_index, err_rc;
    int64_t most_inside;    /* put - out, at most */
    atomic_long *progress;  /* items out, for a killer thread */
    atomic_long *fed;       /* items in, for a killer thread */
} s_io_t;

static int
s_next(void *arg, tr_msg_t **item)
{
    s_io_t *io = arg;
    if (io->at == io->n)
        return 1;
    *item = ts_msg_i(io->tag, io->at++);
    if (io->fed != NULL)
        atomic_fetch_add(io->fed, 1);
    if (io->at - io->out > io->most_inside)
        io->most_inside = io->at - io->out;
    return 0;
}

static int
s_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_io_t *io = arg;
    io->out++;
    if (io->progress != NULL)
        atomic_fetch_add(io->progress, 1);
    if (io->out > 1 && index < io->last)
        io->in_order = false;
    io->last = index;
    if (rc != 0) {
        io->errs++;
        io->err_index = (int64_t)index;
        io->err_rc = rc;
        TS_CHECK(result == NULL);
        return 0;
    }
    TS_CHECK(result != NULL);
    if (index < (uint64_t)io->n) {
        TS_CHECK(io->seen[index] < 255);
        io->seen[index]++;
        io->val[index] = s_int(result, 0);
    }
    return 0;
}

static s_io_t
s_io(const char *tag, int64_t n)
{
    s_io_t io = {.tag = tag, .n = n, .in_order = true};
    io.seen = calloc((size_t)n, 1);
    io.val = calloc((size_t)n, sizeof *io.val);
    ck_assert(io.seen != NULL && io.val != NULL);
    return io;
}

static void
s_io_free(s_io_t *io)
{
    free(io->seen);
    free(io->val);
}

static tr_place_kind_t
s_mode(int i)
{
    return i == 0 ? TR_PLACE_THREAD : TR_PLACE_PROCESS;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */

START_TEST(three_stages_deliver_every_item_once_with_its_result)
{
    tr_node_t *node = ts_node(NULL);
    tr_place_kind_t m = s_mode(_i);
    tr_stage_opts_t st[] = {
        {.stage = "tp_add1", .workers = 2, .place = m},
        {.stage = "tp_double", .workers = 2, .place = m},
        {.name = "again", .stage = "tp_add1", .place = m},
    };
    tr_pipeline_t *p = s_start(node, st, 3, NULL);
    enum { N = 20000 };
    s_io_t io = s_io("n", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N);
    for (int64_t i = 0; i < N; i++) {
        TS_CHECK(io.seen[i] == 1);
        TS_CHECK(io.val[i] == (i + 1) * 2 + 1);
    }
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    ck_assert_uint_eq(s.in, N);
    ck_assert_uint_eq(s.out, N);
    ck_assert_uint_eq(s.in_flight, 0);
    ck_assert_uint_eq(s.duplicates, 0);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    ck_assert_ptr_null(p);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

START_TEST(ordered_sink_restores_input_order_behind_uneven_stages)
{
    tr_node_t *node = ts_node(NULL);
    tr_place_kind_t m = s_mode(_i);
    tr_stage_opts_t st[] = {
        {.stage = "tp_nap", .workers = 3, .place = m},
        {.stage = "tp_split", .workers = 2, .place = m},
    };
    tr_pipeline_opts_t o = {.ordered = true, .batch = 8, .window = 4};
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    enum { N = 2000 };
    s_io_t io = s_io("n", N);
    /* out records the first int per index: with the flat-map, items of
     * one index come in the order they were emitted (j = 0, 1). */
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert(io.in_order);
    int64_t want = 0;
    for (int64_t i = 0; i < N; i++) {
        want += i % 3;
        TS_CHECK(io.seen[i] == i % 3);
        if (i % 3 == 2)
            TS_CHECK(io.val[i] == i * 10 + 1); /* the last one out */
    }
    ck_assert_int_eq(io.out, want);
    /* What waits for its turn stays bounded: the producer is held within
     * reach of the slowest item (docs/pipelines.md). */
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    fprintf(stderr, "pipeline: ordered: most in flight %llu\n",
            (unsigned long long)s.max_in_flight);
    /* The stages' queues (batch x (window x workers + 1)) and the sink's
     * 8 batches; producers are held twice that ahead of the watermark. */
    uint64_t queues = 8 * (3 * 4 + 1) + 8 * (2 * 4 + 1) + 8 * 8;
    ck_assert_uint_le(s.max_in_flight, 3 * queues);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

START_TEST(unordered_sink_hands_items_out_as_they_come)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {{.stage = "tp_nap", .workers = 3}};
    tr_pipeline_opts_t o = {.batch = 4};
    tr_pipeline_t *p = s_start(node, st, 1, &o);
    enum { N = 400 };
    s_io_t io = s_io("n", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N);
    for (int64_t i = 0; i < N; i++)
        TS_CHECK(io.seen[i] == 1 && io.val[i] == i);
    /* Batches with a nap (every 7th item) overtaken by others. */
    ck_assert(!io.in_order);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

START_TEST(null_task_result_drops_the_item_and_stage_errors_reach_the_sink)
{
    tr_node_t *node = ts_node(NULL);
    tr_place_kind_t m = s_mode(_i);
    tr_stage_opts_t st[] = {
        {.stage = "tp_double", .place = m},
        {.stage = "tp_add1", .place = m},
    };
    tr_pipeline_t *p = s_start(node, st, 2, NULL);
    enum { N = 100 };
    /* "f": odd items are dropped by tp_double; even ones become 2x + 1. */
    s_io_t io = s_io("f", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N / 2);
    for (int64_t i = 0; i < N; i++)
        TS_CHECK(io.seen[i] == (i % 2 == 0) &&
                 (i % 2 != 0 || io.val[i] == 2 * i + 1));
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);

    /* "e": tp_add1 fails item 13; it reaches the sink as TR_ERANGE, the
     * others go on. */
    tr_stage_opts_t st2[] = {{.stage = "tp_add1", .place = m}};
    p = s_start(node, st2, 1, NULL);
    io = s_io("e", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N);
    ck_assert_int_eq(io.errs, 1);
    ck_assert_int_eq(io.err_index, S_ERR_AT);
    ck_assert_int_eq(io.err_rc, TR_ERANGE);
    ck_assert_int_eq(io.seen[S_ERR_AT], 0);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* Registered at run time: [x] -> [x * 3]. */
static int
s_triple(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t v = 3 * s_int(item, 0);
    return s_emit_ints(ctx, "n", 1, &v, NULL, 0);
}

START_TEST(stage_registered_at_run_time_runs_on_threads_not_in_processes)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_def_t d = {.fn = s_triple};
    ck_assert_int_eq(tr_stage_register("tp_triple", &d), 0);
    ck_assert_int_eq(tr_stage_register("tp_triple", &d), TR_EEXIST);
    tr_stage_opts_t st[] = {{.stage = "tp_triple", .workers = 2}};
    tr_pipeline_t *p = s_start(node, st, 1, NULL);
    s_io_t io = s_io("n", 500);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    for (int64_t i = 0; i < 500; i++)
        TS_CHECK(io.seen[i] == 1 && io.val[i] == 3 * i);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    /* A process worker is this program started again: it has no such
     * stage, and every item reaches the sink as TR_ENOENT. */
    ts_log_capture();
    st[0].place = TR_PLACE_PROCESS;
    p = s_start(node, st, 1, NULL);
    io = s_io("n", 50);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, 50);
    ck_assert_int_eq(io.errs, 50);
    ck_assert_int_eq(io.err_rc, TR_ENOENT);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Keyed and stateful stages                                           */

/* Counts from a keyed counting pipeline: counts[k] per key. */
typedef struct {
    int64_t counts[50];
    int64_t items;
    bool bad;
} s_tally_t;

static int
s_tally(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_tally_t *t = arg;
    int64_t k = rc == 0 ? s_int(result, 0) : -1;
    if (rc != 0 || index != TR_PIPE_NO_INDEX || k < 0 || k >= 50 ||
        t->counts[k] != 0)
        t->bad = true;
    else
        t->counts[k] = s_int(result, 1);
    t->items++;
    return 0;
}

static void
s_check_tally(const s_tally_t *t, int64_t n)
{
    ck_assert(!t->bad);
    ck_assert_int_eq(t->items, 50);
    for (int64_t k = 0; k < 50; k++)
        ck_assert_int_eq(t->counts[k], n / 50 + (k < n % 50));
}

START_TEST(stateful_keyed_stage_counts_by_key_and_emits_at_the_end)
{
    tr_node_t *node = ts_node(NULL);
    tr_place_kind_t m = s_mode(_i);
    tr_stage_opts_t st[] = {
        {.stage = "tp_key", .workers = 2, .place = m},
        {.stage = "tp_count", .workers = 3, .place = m},
    };
    tr_pipeline_t *p = s_start(node, st, 2, NULL);
    enum { N = 10007 };
    s_io_t io = s_io("n", N);
    s_tally_t t = {0};
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_tally, &t), 0);
    s_check_tally(&t, N);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* Per key, the thread that saw it (keyed stage of 4 partitions). */
typedef struct {
    int64_t tid[10];
    int64_t items;
    bool bad;
} s_where_t;

static int
s_where(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_where_t *w = arg;
    int64_t k = (int64_t)index % 10, tid = s_int(result, 4);
    if (rc != 0 || s_int(result, 0) != (int64_t)index)
        w->bad = true;
    else if (w->tid[k] == 0)
        w->tid[k] = tid;
    else if (w->tid[k] != tid)
        w->bad = true;
    w->items++;
    return 0;
}

START_TEST(emit_key_sends_each_key_to_one_partition)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.name = "a", .stage = "tp_whoami", .workers = 2},
        {.name = "b", .stage = "tp_whoami", .workers = 4, .keyed = true},
    };
    tr_pipeline_opts_t o = {.batch = 16};
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    s_io_t io = s_io("n", 3000);
    s_where_t w = {0};
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_where, &w), 0);
    ck_assert(!w.bad);
    ck_assert_int_eq(w.items, 3000);
    int distinct = 0;
    for (int k = 0; k < 10; k++) {
        bool first = true;
        for (int j = 0; j < k; j++)
            first &= w.tid[j] != w.tid[k];
        distinct += first;
    }
    ck_assert_int_gt(distinct, 1); /* spread over partitions */
    ck_assert_int_le(distinct, 4);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* End of stream, several producers                                    */

typedef struct {
    tr_pipeline_t *pipe;
    int producer, n;
    ts_flag_t *go; /* NULL: at once */
    int rc;
} s_producer_t;

static void *
s_producer_main(void *arg)
{
    s_producer_t *pr = arg;
    if (pr->go != NULL && !ts_flag_wait(pr->go, TS_CALL_MS)) {
        pr->rc = TR_ETIMEDOUT;
        return NULL;
    }
    for (int i = 0; i < pr->n && pr->rc == 0; i++) {
        tr_msg_t *m = ts_msg_i("n", i);
        if ((pr->rc = tr_pipeline_put(pr->pipe, pr->producer, &m)) != 0)
            tr_msg_destroy(&m);
    }
    if (pr->rc == 0)
        pr->rc = tr_pipeline_end(pr->pipe, pr->producer);
    if (pr->rc == 0) /* a second end is refused */
        pr->rc = tr_pipeline_end(pr->pipe, pr->producer) == TR_ECLOSED
                     ? 0
                     : TR_EFAILED;
    return NULL;
}

/* Take items until the end of stream, each index below total once
 * (seen): item n of
 * producer i has index n * np + i and comes out as n + 1; from producer
 * only, unless it is -1. Counts each into *progress when not NULL.
 * Returns how many came. */
static int
s_take_to_end(tr_pipeline_t *p, uint8_t *seen, uint64_t total, int np,
              int only, atomic_long *progress)
{
    int got = 0;
    for (;;) {
        tr_msg_t *m = NULL;
        uint64_t ix;
        int rc;
        int r = tr_pipeline_next(p, &m, &ix, &rc, TS_CALL_MS);
        if (r == 1)
            return got;
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_lt(ix, total);
        TS_CHECK((only < 0 || ix % (uint64_t)np == (uint64_t)only) &&
                 seen[ix]++ == 0 &&
                 s_int(m, 0) == (int64_t)(ix / (uint64_t)np) + 1);
        tr_msg_destroy(&m);
        got++;
        if (progress != NULL)
            atomic_fetch_add(progress, 1);
    }
}

START_TEST(end_of_stream_is_counted_per_producer)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {{.stage = "tp_add1", .workers = 2}};
    enum { P = 4, N = 2500 };
    tr_pipeline_opts_t o = {.producers = P, .batch = 64};
    tr_pipeline_t *p = s_start(node, st, 1, &o);
    static ts_flag_t go = TS_FLAG_INIT;
    s_producer_t prs[P];
    pthread_t th[P];
    for (int i = 0; i < P; i++) {
        /* The last producer waits until the others are all out. */
        prs[i] = (s_producer_t){p, i, N, i == P - 1 ? &go : NULL, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_producer_main,
                                        &prs[i]),
                         0);
    }
    static uint8_t seen[P * N];
    memset(seen, 0, sizeof seen);
    int got = 0;
    while (got < (P - 1) * N) {
        tr_msg_t *m = NULL;
        uint64_t ix;
        int rc;
        ck_assert_int_eq(tr_pipeline_next(p, &m, &ix, &rc, TS_CALL_MS), 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_lt(ix, P * N);
        ck_assert_uint_ne(ix % P, P - 1);
        TS_CHECK(seen[ix]++ == 0 && s_int(m, 0) == (int64_t)(ix / P) + 1);
        tr_msg_destroy(&m);
        got++;
    }
    /* Three producers have ended, one has not begun: no end yet. */
    tr_msg_t *none = NULL;
    ck_assert_int_eq(tr_pipeline_next(p, &none, NULL, NULL, 100),
                     TR_ETIMEDOUT);
    ts_flag_set(&go);
    got += s_take_to_end(p, seen, P * N, P, P - 1, NULL);
    ck_assert_int_eq(got, P * N);
    /* The end stays the end. */
    ck_assert_int_eq(tr_pipeline_next(p, &none, NULL, NULL, 0), 1);
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(prs[i].rc, 0);
    }
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SIGKILLed process workers                                           */

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
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0' || p[2] == '\0')
        return false;
    *state = p[2];
    *ppid = strtol(p + 3, NULL, 10);
    return true;
}

/* The live children of this process (the process workers), up to max. */
static int
s_kids(pid_t *pids, int max)
{
    int live = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    pid_t me = getpid();
    while ((e = readdir(d)) != NULL && live < max) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        long pid = strtol(e->d_name, NULL, 10);
        char state;
        long ppid;
        if (s_proc_stat(pid, &state, &ppid) && ppid == (long)me &&
            state != 'Z')
            pids[live++] = (pid_t)pid;
    }
    closedir(d);
    return live;
}

/* Kills a random process worker each time `every` more items are out,
 * through a pidfd checked to be a live child of ours. */
typedef struct {
    atomic_bool stop;
    atomic_long progress;
    atomic_int kills;
    int want;
    long every;
    uint64_t seed;
} s_killer_t;

static void *
s_killer_main(void *arg)
{
    s_killer_t *k = arg;
    long next = k->every;
    while (atomic_load(&k->kills) < k->want && !atomic_load(&k->stop)) {
        if (atomic_load(&k->progress) < next) {
            (void)poll(NULL, 0, 1);
            continue;
        }
        pid_t kids[64];
        int n = s_kids(kids, 64);
        if (n == 0) {
            (void)poll(NULL, 0, 1);
            continue;
        }
        pid_t pid = kids[ts_rand(&k->seed) % (uint64_t)n];
        int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pfd < 0)
            continue;
        char state;
        long ppid;
        if (s_proc_stat(pid, &state, &ppid) && ppid == (long)getpid() &&
            state != 'Z' &&
            syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0) {
            atomic_fetch_add(&k->kills, 1);
            next = atomic_load(&k->progress) + k->every;
        }
        close(pfd);
    }
    return NULL;
}

static void
s_killer_start(s_killer_t *k, pthread_t *th, int want, long every)
{
    atomic_init(&k->stop, false);
    atomic_init(&k->progress, 0);
    atomic_init(&k->kills, 0);
    k->want = want;
    k->every = every;
    k->seed = 0x9e3779b97f4a7c15ull;
    ck_assert_int_eq(pthread_create(th, NULL, s_killer_main, k), 0);
}

START_TEST(sigkilled_process_workers_lose_no_item_and_duplicate_none)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.stage = "tp_nap", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_add1", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_double", .workers = 1, .place = TR_PLACE_PROCESS},
    };
    tr_pipeline_opts_t o = {.batch = 32};
    tr_pipeline_t *p = s_start(node, st, 3, &o);
    enum { N = 30000, KILLS = 12 };
    static s_killer_t k;
    pthread_t th;
    s_killer_start(&k, &th, KILLS, N / (KILLS + 4));
    s_io_t io = s_io("slow", N);
    io.progress = &k.progress;
    int rc = tr_pipeline_run(p, s_next, &io, s_out, &io);
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(io.errs, 0);
    ck_assert_int_eq(io.out, N);
    for (int64_t i = 0; i < N; i++)
        TS_CHECK(io.seen[i] == 1 && io.val[i] == (i + 1) * 2);
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    fprintf(stderr, "pipeline: %d kills, %llu worker deaths, %llu batches "
            "redelivered, %llu duplicates dropped\n", atomic_load(&k.kills),
            (unsigned long long)s.worker_deaths,
            (unsigned long long)s.redelivered,
            (unsigned long long)s.duplicates);
    ck_assert_int_ge(atomic_load(&k.kills), KILLS / 2);
    ck_assert_uint_ge(s.worker_deaths, (uint64_t)atomic_load(&k.kills));
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* End of stream is counted per producer while workers die too: each of
 * the producers' items comes out once, and the end only after the last. */
START_TEST(end_of_stream_from_several_producers_survives_killed_workers)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.stage = "tp_nap", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_add1", .workers = 2, .place = TR_PLACE_PROCESS},
    };
    enum { P = 3, N = 3000, KILLS = 6 };
    tr_pipeline_opts_t o = {.producers = P, .batch = 32};
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    static s_killer_t k;
    pthread_t kt;
    s_killer_start(&k, &kt, KILLS, P * N / (KILLS + 3));
    s_producer_t prs[P];
    pthread_t th[P];
    for (int i = 0; i < P; i++) {
        prs[i] = (s_producer_t){p, i, N, NULL, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_producer_main,
                                        &prs[i]),
                         0);
    }
    static uint8_t seen[P * N];
    memset(seen, 0, sizeof seen);
    int got = s_take_to_end(p, seen, P * N, P, -1, &k.progress);
    atomic_store(&k.stop, true);
    pthread_join(kt, NULL);
    ck_assert_int_eq(got, P * N);
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(prs[i].rc, 0);
    }
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    fprintf(stderr, "pipeline: %d producers, %d kills, %llu batches "
            "redelivered\n", P, atomic_load(&k.kills),
            (unsigned long long)s.redelivered);
    ck_assert_int_ge(atomic_load(&k.kills), 1);
    ck_assert_uint_ge(s.worker_deaths, (uint64_t)atomic_load(&k.kills));
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    ts_destroy(&node);
}
END_TEST

START_TEST(sigkilled_stateful_partitions_are_rebuilt_and_counts_are_exact)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.stage = "tp_key", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_count", .workers = 2, .place = TR_PLACE_PROCESS},
    };
    tr_pipeline_opts_t o = {.batch = 32};
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    enum { N = 20000, KILLS = 8 };
    static s_killer_t k;
    pthread_t th;
    s_killer_start(&k, &th, KILLS, N / (KILLS + 4));
    s_io_t io = s_io("slowk", N);
    /* Only the finish's counts come out: the killer counts items in. */
    io.fed = &k.progress;
    s_tally_t t = {0};
    int rc = tr_pipeline_run(p, s_next, &io, s_tally, &t);
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    s_check_tally(&t, N);
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    fprintf(stderr, "pipeline: stateful: %d kills, %llu worker deaths, "
            "%llu batches replayed\n", atomic_load(&k.kills),
            (unsigned long long)s.worker_deaths,
            (unsigned long long)s.replayed);
    ck_assert_int_ge(atomic_load(&k.kills), 1);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* The chaos test's workload on a node with chaos (NULL: none) and
 * otherwise the same options: n items through two process stages, then
 * through a keyed stateful pair; every result once and right, every
 * count exact. Its time in ms, from the first start to the last stop;
 * the first pipeline's counters in *s. */
static int64_t
s_chaos_workload(const char *chaos, int64_t n, tr_pipeline_stats_t *s)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.chaos = chaos});
    tr_stage_opts_t st[] = {
        {.stage = "tp_nap", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_add1", .workers = 2, .place = TR_PLACE_PROCESS},
    };
    tr_pipeline_opts_t o = {.batch = 16};
    int64_t t0 = ts_now_ms();
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    s_io_t io = s_io("slow", n);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.errs, 0);
    ck_assert_int_eq(io.out, n);
    for (int64_t i = 0; i < n; i++)
        TS_CHECK(io.seen[i] == 1 && io.val[i] == i + 1);
    ck_assert_int_eq(tr_pipeline_stats(p, s), 0);
    ck_assert_uint_eq(s->in, n); /* copies of puts were not taken twice */
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);

    tr_stage_opts_t st2[] = {
        {.stage = "tp_key", .workers = 2, .place = TR_PLACE_PROCESS},
        {.stage = "tp_count", .workers = 2, .place = TR_PLACE_PROCESS},
    };
    p = s_start(node, st2, 2, &o);
    io = s_io("slowk", n);
    s_tally_t t = {0};
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_tally, &t), 0);
    s_check_tally(&t, n);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    int64_t took = ts_now_ms() - t0;
    s_io_free(&io);
    ts_destroy(&node);
    return took;
}

/* TROUPE_CHAOS's faults: workers killed, user messages sent twice or
 * late (puts, pulls, tasks, answers): the results do not change, and the
 * run takes less than 3 times the same run without faults.
 *
 * Why 8,000 items: the fault-free run is about 0.85 s here (1 to 2 s
 * under ASan or load), the 8 worker processes' starts included, which
 * both runs pay. The faults cost in proportion to it: a kill every ~250
 * ms (a restart and a batch of 16 again), 5% of the messages 2 ms late
 * and 5% twice; 1.0 to 1.4 times in all. What does not shrink with the
 * run, a kill at the very end (a restart, ~17 ms, more under ASan), is
 * a few percent of it. A shorter run would let that count for more, a
 * longer one would only take longer. */
START_TEST(chaos_kills_duplicates_and_delays_change_no_result)
{
    enum { N = 8000 };
    tr_pipeline_stats_t clean, s;
    int64_t t_clean = s_chaos_workload(NULL, N, &clean);
    ck_assert_uint_eq(clean.worker_deaths, 0);
    int64_t t_chaos = s_chaos_workload(
        "seed=5,every=50,kill=0.2,dup=0.05,delay=0.05,delay_ms=2", N, &s);
    fprintf(stderr, "pipeline: chaos: %lld ms fault-free, %lld ms under "
            "chaos (x%.2f); %llu worker deaths, %llu batches redelivered, "
            "%llu duplicates dropped\n", (long long)t_clean,
            (long long)t_chaos, (double)t_chaos / (double)t_clean,
            (unsigned long long)s.worker_deaths,
            (unsigned long long)s.redelivered,
            (unsigned long long)s.duplicates);
    ck_assert_int_lt(t_chaos, 3 * t_clean);
}
END_TEST

/* [x] -> [x]; item 666 SIGKILLs its worker (process stages only). */
static int
s_poison(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    int64_t x = s_int(item, 0);
    if (x == 666)
        raise(SIGKILL);
    return s_emit_ints(ctx, "n", 1, &x, NULL, 0);
}
TR_STAGE(tp_poison, .fn = s_poison);

START_TEST(an_item_that_kills_every_worker_fails_alone)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.stage = "tp_poison", .workers = 2, .place = TR_PLACE_PROCESS}};
    tr_pipeline_opts_t o = {.batch = 64, .max_retries = 1};
    tr_pipeline_t *p = s_start(node, st, 1, &o);
    enum { N = 1000 };
    s_io_t io = s_io("n", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N);
    ck_assert_int_eq(io.errs, 1);
    ck_assert_int_eq(io.err_index, 666);
    ck_assert_int_eq(io.err_rc, TR_EWORKERDIED);
    for (int64_t i = 0; i < N; i++)
        TS_CHECK(i == 666 || (io.seen[i] == 1 && io.val[i] == i));
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    fprintf(stderr, "pipeline: poison: %llu worker deaths to isolate it\n",
            (unsigned long long)s.worker_deaths);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Back-pressure                                                       */

START_TEST(slow_last_stage_holds_the_source_back_and_in_flight_is_bounded)
{
    tr_node_t *node = ts_node(NULL);
    tr_stage_opts_t st[] = {
        {.stage = "tp_add1", .workers = 2},
        {.stage = "tp_add1", .name = "b", .workers = 2},
        {.stage = "tp_nap", .workers = 1}, /* 30 us an item */
    };
    enum { BATCH = 16, WINDOW = 2, N = 20000 };
    tr_pipeline_opts_t o = {.batch = BATCH, .window = WINDOW};
    tr_pipeline_t *p = s_start(node, st, 3, &o);
    s_io_t io = s_io("slow", N);
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_out, &io), 0);
    ck_assert_int_eq(io.out, N);
    tr_pipeline_stats_t s;
    ck_assert_int_eq(tr_pipeline_stats(p, &s), 0);
    /* Per stage: a queue of at most (window x workers + 1) batches
     * before upstream waits, plus what runs, plus what one more upstream
     * batch adds; the sink holds 8 batches. */
    uint64_t per_stage = BATCH * (3 * (WINDOW * 2 + 1) + WINDOW * 2);
    uint64_t bound = 3 * per_stage + 8 * BATCH;
    fprintf(stderr, "pipeline: most in flight %llu (bound %llu), most put "
            "but not out %lld, %llu puts held\n",
            (unsigned long long)s.max_in_flight, (unsigned long long)bound,
            (long long)io.most_inside, (unsigned long long)s.held);
    ck_assert_uint_le(s.max_in_flight, bound);
    ck_assert_uint_gt(s.held, 0);
    /* The source was held back: it never got far ahead of the sink (the
     * producer's own window of puts comes on top). */
    ck_assert_int_le(io.most_inside, (int64_t)(bound + 2 * WINDOW * BATCH +
                                               BATCH));
    ck_assert_int_lt(io.most_inside, N / 4);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Placement                                                           */

/* Where stages a and b ran: [x, pid a, tid a, pid b, tid b]. */
typedef struct {
    int64_t pid_a, pid_b; /* the last seen */
    bool a_here, b_here;  /* ever in this process */
    bool a_away, b_away;
    int64_t items;
} s_placed_t;

static int
s_placed(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_placed_t *pl = arg;
    (void)index;
    if (rc != 0)
        return rc;
    int64_t a = s_int(result, 1), b = s_int(result, 3);
    pl->a_here |= a == getpid();
    pl->a_away |= a != getpid();
    pl->b_here |= b == getpid();
    pl->b_away |= b != getpid();
    pl->items++;
    return 0;
}

static s_placed_t
s_run_placed(tr_node_t *node, const char *place)
{
    tr_stage_opts_t st[] = {
        {.name = "a", .stage = "tp_whoami"},
        {.name = "b", .stage = "tp_whoami"},
    };
    tr_pipeline_opts_t o = {.place = place};
    tr_pipeline_t *p = s_start(node, st, 2, &o);
    s_io_t io = s_io("n", 200);
    s_placed_t pl = {0};
    ck_assert_int_eq(tr_pipeline_run(p, s_next, &io, s_placed, &pl), 0);
    ck_assert_int_eq(pl.items, 200);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    s_io_free(&io);
    return pl;
}

START_TEST(troupe_place_chooses_threads_or_processes_without_a_rebuild)
{
    tr_node_t *node = ts_node(NULL);
    /* The options say threads for both. */
    s_placed_t pl = s_run_placed(node, NULL);
    ck_assert(pl.a_here && !pl.a_away && pl.b_here && !pl.b_away);
    /* The pipeline's own place string. */
    pl = s_run_placed(node, "b=process:2");
    ck_assert(pl.a_here && !pl.a_away && !pl.b_here && pl.b_away);
    /* The environment wins over it. */
    ck_assert_int_eq(setenv("TROUPE_PLACE", " a = process:2 , b=thread ", 1),
                     0);
    pl = s_run_placed(node, "b=process:2");
    ck_assert(!pl.a_here && pl.a_away && pl.b_here && !pl.b_away);
    /* And a file, with comments and lines. */
    char dir[256], path[300];
    ts_tmpdir(dir, sizeof dir, "pipeline");
    snprintf(path, sizeof path, "%s/place", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# where the stages run\na=thread:1\nb=process\n", f);
    fclose(f);
    char env[320];
    snprintf(env, sizeof env, "@%s", path);
    ck_assert_int_eq(setenv("TROUPE_PLACE", env, 1), 0);
    pl = s_run_placed(node, NULL);
    ck_assert(pl.a_here && !pl.a_away && !pl.b_here && pl.b_away);
    ck_assert_int_eq(unsetenv("TROUPE_PLACE"), 0);
    ts_rmtree(dir);
    ts_destroy(&node);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad input                                                           */

static int
s_try(tr_node_t *node, const tr_stage_opts_t *st, int n,
      const tr_pipeline_opts_t *more)
{
    tr_pipeline_opts_t o = more ? *more : (tr_pipeline_opts_t){0};
    o.stages = st;
    o.nstages = n;
    tr_pipeline_t *p = (tr_pipeline_t *)&o; /* must stay as it is */
    int rc = tr_pipeline_start(node, &o, &p);
    ck_assert_ptr_eq(p, (tr_pipeline_t *)&o);
    return rc;
}

START_TEST(start_rejects_bad_input_with_clear_codes)
{
    tr_node_t *node = ts_node(NULL);
    ts_log_capture();
    tr_stage_opts_t ok[] = {{.stage = "tp_add1"}, {.stage = "tp_double"}};
    tr_pipeline_t *p = NULL;
    ck_assert_int_eq(tr_pipeline_start(NULL, NULL, &p), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_start(node, NULL, &p), TR_EINVAL);
    ck_assert_int_eq(s_try(node, ok, 0, NULL), TR_EINVAL);
    ck_assert_int_eq(s_try(node, NULL, 1, NULL), TR_EINVAL);
    ck_assert_int_eq(s_try(node, ok, 65, NULL), TR_EINVAL);
    tr_stage_opts_t nul[] = {{.stage = NULL}};
    ck_assert_int_eq(s_try(node, nul, 1, NULL), TR_EINVAL);
    tr_stage_opts_t unknown[] = {{.stage = "no_such_stage"}};
    ck_assert_int_eq(s_try(node, unknown, 1, NULL), TR_ENOENT);
    ck_assert_int_ge(ts_log_find("no_such_stage"), 0);
    tr_stage_opts_t many[] = {{.stage = "tp_add1", .workers = 1025}};
    ck_assert_int_eq(s_try(node, many, 1, NULL), TR_EINVAL);
    tr_stage_opts_t twice[] = {{.stage = "tp_add1"}, {.stage = "tp_add1"}};
    ck_assert_int_eq(s_try(node, twice, 2, NULL), TR_EINVAL);
    tr_stage_opts_t away[] = {{.stage = "tp_add1", .place = TR_PLACE_NODE,
                               .node = "b"}};
    ck_assert_int_eq(s_try(node, away, 1, NULL), TR_ENOCONN); /* alone */
    const char *bad[] = {"tp_add1", "tp_add1=", "tp_add1=fiber",
                         "tp_add1=thread:0", "tp_add1=process:x",
                         "tp_add1=thread:2000", "nope=thread",
                         "tp_add1=node", "tp_add1=node "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tr_pipeline_opts_t o = {.place = bad[i]};
        ck_assert_msg(s_try(node, ok, 2, &o) == TR_EINVAL, "%s", bad[i]);
    }
    tr_pipeline_opts_t o = {.place = "tp_double=node b:2"};
    ck_assert_int_eq(s_try(node, ok, 2, &o), TR_ENOCONN);
    o = (tr_pipeline_opts_t){.producers = -1};
    ck_assert_int_eq(s_try(node, ok, 2, &o), TR_EINVAL);
    o = (tr_pipeline_opts_t){.batch = -1};
    ck_assert_int_eq(s_try(node, ok, 2, &o), TR_EINVAL);
    ck_assert_int_eq(setenv("TROUPE_PLACE", "tp_add1=sideways", 1), 0);
    ck_assert_int_eq(s_try(node, ok, 2, NULL), TR_EINVAL);
    ck_assert_int_eq(setenv("TROUPE_PLACE", "@/nonexistent/place", 1), 0);
    ck_assert_int_eq(s_try(node, ok, 2, NULL), TR_EINVAL);
    ck_assert_int_eq(unsetenv("TROUPE_PLACE"), 0);

    /* Registration. */
    tr_stage_def_t none = {0};
    ck_assert_int_eq(tr_stage_register("x", &none), TR_EINVAL);
    ck_assert_int_eq(tr_stage_register("x", NULL), TR_EINVAL);
    tr_stage_def_t d = {.fn = s_add1};
    ck_assert_int_eq(tr_stage_register("tp_add1", &d), TR_EEXIST);
    ck_assert_int_eq(tr_stage_register("tp_double", &d), TR_EEXIST);
    ck_assert_int_eq(tr_stage_register("", &d), TR_EINVAL);

    /* A running pipeline: producers, ends and the sink. */
    p = s_start(node, ok, 2, NULL);
    tr_msg_t *m = ts_msg_i("n", 1);
    ck_assert_int_eq(tr_pipeline_put(NULL, 0, &m), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_put(p, 1, &m), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_put(p, -1, &m), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_put(p, 0, NULL), TR_EINVAL);
    ck_assert_ptr_nonnull(m); /* still ours */
    ck_assert_int_eq(tr_pipeline_put(p, 0, &m), 0);
    ck_assert_ptr_null(m);
    /* A batch of one goes out on a flush, before the end. */
    ck_assert_int_eq(tr_pipeline_flush(p, 1), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_flush(p, 0), 0);
    tr_msg_t *r = NULL;
    uint64_t ix = 7;
    int irc = 7;
    ck_assert_int_eq(tr_pipeline_next(p, &r, &ix, &irc, TS_CALL_MS), 0);
    ck_assert_uint_eq(ix, 0);
    ck_assert_int_eq(irc, 0);
    ck_assert_int_eq(s_int(r, 0), 4); /* (1 + 1) x 2 */
    tr_msg_destroy(&r);
    ck_assert_int_eq(tr_pipeline_flush(p, 0), 0); /* nothing batched */
    ck_assert_int_eq(tr_pipeline_end(p, 1), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_end(p, 0), 0);
    m = ts_msg_i("n", 2);
    ck_assert_int_eq(tr_pipeline_put(p, 0, &m), TR_ECLOSED);
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr_pipeline_end(p, 0), TR_ECLOSED);
    ck_assert_int_eq(tr_pipeline_flush(p, 0), TR_ECLOSED);
    ck_assert_int_eq(tr_pipeline_next(NULL, &r, &ix, &irc, 0), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_next(p, &r, NULL, NULL, TS_CALL_MS), 1);
    ck_assert_int_eq(tr_pipeline_run(p, NULL, NULL, NULL, NULL), TR_EINVAL);
    tr_pipeline_stats_t st;
    ck_assert_int_eq(tr_pipeline_stats(NULL, &st), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_stats(p, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_stop(NULL, TR_DEFAULT), TR_EINVAL);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), TR_EINVAL);
    ck_assert_int_eq(tr_pipe_emit(NULL, &m), TR_EINVAL);
    ts_destroy(&node);
}
END_TEST

START_TEST(stop_in_the_middle_of_a_stream_frees_everything)
{
    tr_node_t *node = ts_node(NULL);
    tr_place_kind_t m = s_mode(_i);
    tr_stage_opts_t st[] = {
        {.stage = "tp_nap", .workers = 2, .place = m},
        {.stage = "tp_count", .name = "c", .workers = 2, .place = m},
    };
    tr_pipeline_t *p = s_start(node, st, 2, NULL);
    for (int i = 0; i < 600; i++) {
        tr_msg_t *item = ts_msg_i("k", i % 50);
        ck_assert_int_eq(tr_pipeline_put(p, 0, &item), 0);
    }
    ck_assert_int_eq(tr_pipeline_stop(&p, TR_DEFAULT), 0);
    ck_assert_ptr_null(p);
    ts_destroy(&node);
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

#define S_BOTH(tc, t) tcase_add_loop_test(tc, t, 0, 2)

static Suite *
s_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = s_tcase(s, "results", 60);
    S_BOTH(tc, three_stages_deliver_every_item_once_with_its_result);
    S_BOTH(tc, ordered_sink_restores_input_order_behind_uneven_stages);
    tcase_add_test(tc, unordered_sink_hands_items_out_as_they_come);
    S_BOTH(tc, null_task_result_drops_the_item_and_stage_errors_reach_the_sink);
    tcase_add_test(
        tc, stage_registered_at_run_time_runs_on_threads_not_in_processes);

    tc = s_tcase(s, "keyed", 60);
    S_BOTH(tc, stateful_keyed_stage_counts_by_key_and_emits_at_the_end);
    tcase_add_test(tc, emit_key_sends_each_key_to_one_partition);

    tc = s_tcase(s, "producers", 60);
    tcase_add_test(tc, end_of_stream_is_counted_per_producer);

    tc = s_tcase(s, "chaos", 120);
    tcase_add_test(tc,
                   sigkilled_process_workers_lose_no_item_and_duplicate_none);
    tcase_add_test(
        tc, end_of_stream_from_several_producers_survives_killed_workers);
    tcase_add_test(
        tc, sigkilled_stateful_partitions_are_rebuilt_and_counts_are_exact);
    tcase_add_test(tc, chaos_kills_duplicates_and_delays_change_no_result);
    tcase_add_test(tc, an_item_that_kills_every_worker_fails_alone);

    tc = s_tcase(s, "backpressure", 60);
    tcase_add_test(
        tc, slow_last_stage_holds_the_source_back_and_in_flight_is_bounded);

    tc = s_tcase(s, "placement", 60);
    tcase_add_test(
        tc, troupe_place_chooses_threads_or_processes_without_a_rebuild);

    tc = s_tcase(s, "input", 60);
    tcase_add_test(tc, start_rejects_bad_input_with_clear_codes);
    S_BOTH(tc, stop_in_the_middle_of_a_stream_frees_everything);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
