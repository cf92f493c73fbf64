/* tests/test_chaos.c - the chaos mode (runtime/chaos.c), as users would
 * use it: duplicated and delayed messages arrive as said, a bad spec is
 * refused, and a pool map whose process workers are SIGKILLed and
 * SIGSTOPped on a seeded schedule still gives every result exactly once,
 * without hanging.
 */
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "troupe.h"

typedef struct {
    int64_t n;
} s_sink_t;

static int
s_sink_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_sink_t *st = state;
    if (tr_msg_is(msg, "n")) {
        st->n++;
        return 0;
    }
    if (tr_msg_is(msg, "count"))
        return ts_reply_ints(self, msg, 1, &st->n);
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(csink, .state_size = sizeof(s_sink_t), .handle = s_sink_handle);

/* x -> x * x, after a millisecond of "work" */
static int
s_sq(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t x;
    tr_reader_init(&r, args);
    int rc = tr_read_int(&r, &x);
    if (rc != 0)
        return rc;
    (void)poll(NULL, 0, 1);
    if ((rc = tr_msg_create(result, "sq")) == 0)
        rc = tr_msg_add_int(*result, x * x);
    return rc;
}
TR_TASK(chaos_sq, s_sq);

START_TEST(duplicated_messages_arrive_twice_and_delayed_ones_late)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){.chaos = "seed=7,dup=1"});
    ts_spawn(node, "csink", "s");
    for (int i = 0; i < 50; i++)
        ts_tell(node, "s", ts_msg("n"));
    /* the call is duplicated too: its second answer comes late */
    int64_t n = 0;
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 100);
    ts_destroy(&node);

    node = ts_node(&(tr_node_opts_t){.chaos = "delay=1,delay_ms=20"});
    ts_spawn(node, "csink", "s");
    int64_t t0 = ts_now_ms();
    for (int i = 0; i < 10; i++)
        ts_tell(node, "s", ts_msg("n"));
    ck_assert_int_ge(ts_now_ms() - t0, 200);
    ck_assert_int_eq(ts_call_ints(node, "s", ts_msg("count"), 1, &n), 0);
    ck_assert_int_eq(n, 10); /* late, not lost */
    ts_destroy(&node);
}
END_TEST

START_TEST(bad_chaos_spec_is_refused)
{
    static const char *const bad[] = {"kill", "kill=2", "seed=x",
                                      "bogus=1", "stop=-1", "every=0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_node_t *node = NULL;
        ck_assert_int_eq(
            tr_node_create(&node, &(tr_node_opts_t){.chaos = bad[i]}),
            TR_EINVAL);
        ck_assert_ptr_null(node);
    }
}
END_TEST

/* 2,000 items on 3 process workers while chaos kills one every ~60 ms
 * (on average) and stops one now and then: every result, once, right. */
START_TEST(pool_map_under_kills_and_stops_loses_nothing)
{
    tr_node_t *node = ts_node(&(tr_node_opts_t){
        .chaos = "seed=3,every=30,kill=0.5,stop=0.2,stop_ms=150"});
    tr_pool_t *pool = NULL;
    ck_assert_int_eq(tr_pool_start(node,
                                   &(tr_pool_opts_t){.workers = 3,
                                                     .mode = TR_POOL_PROCESSES,
                                                     .max_retries = 1000,
                                                     .task_timeout_ms = 2000},
                                   &pool), 0);
    enum { N = 2000 };
    tr_msg_t **in = calloc(N, sizeof *in), **out = calloc(N, sizeof *out);
    int *rcs = calloc(N, sizeof *rcs);
    ck_assert(in && out && rcs);
    for (int i = 0; i < N; i++)
        in[i] = ts_msg_i("x", i);
    tr_map_opts_t o = {.chunk = 4};
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(tr_pool_map_array(pool, "chaos_sq", in, N, out, rcs, &o),
                     0);
    int64_t took = ts_now_ms() - t0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(rcs[i] == 0, "item %d: %s", i, tr_strerror(rcs[i]));
        int64_t v = 0;
        ck_assert_int_eq(ts_read_ints(out[i], 1, &v), 0);
        ck_assert_int_eq(v, (int64_t)i * i);
        tr_msg_destroy(&out[i]);
        tr_msg_destroy(&in[i]);
    }
    tr_pool_stats_t st;
    ck_assert_int_eq(tr_pool_stats(pool, &st), 0);
    ck_assert_uint_ge(st.worker_deaths, 1); /* the chaos did strike */
    fprintf(stderr, "chaos map: %d items in %lld ms, %llu worker deaths, "
            "%llu retries\n", N, (long long)took,
            (unsigned long long)st.worker_deaths,
            (unsigned long long)st.retried);
    free(in);
    free(out);
    free(rcs);
    ck_assert_int_eq(tr_pool_shutdown(&pool, false, TS_CALL_MS), 0);
    ts_destroy(&node);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, duplicated_messages_arrive_twice_and_delayed_ones_late);
    tcase_add_test(tc, bad_chaos_spec_is_refused);
    tcase_add_test(tc, pool_map_under_kills_and_stops_loses_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
