/* tests/test_log.c - the logger: WARN by default, tr_log_set_level and the
 * TROUPE_LOG override, lines that name their module and actor
 * ("name#id"), one sink call per whole line even from 8 threads at once,
 * and the default sink (stderr, one line per write).
 *
 * The level and the sink are process-wide and TROUPE_LOG is read once, at
 * first use: each test runs in its own forked process (Check's default),
 * so each starts from the defaults; tests that set TROUPE_LOG do so before
 * any troupe call. Tests that read stderr point fd 2 at a temporary file
 * for the time of the test. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Capture                                                             */
/* ------------------------------------------------------------------ */

/* A sink that keeps each line and its level is ts_log_capture
 * (tests/support.c); it also checks that it gets its argument back. */

/* stderr into a temporary file, and back. */
typedef struct {
    int saved, fd;
    char path[64];
} s_stderr_t;

static void
s_stderr_grab(s_stderr_t *e)
{
    ts_template(e->path, sizeof e->path, "troupe-test-log");
    e->fd = mkstemp(e->path);
    ck_assert_int_ge(e->fd, 0);
    fflush(stderr);
    e->saved = dup(STDERR_FILENO);
    ck_assert_int_ge(e->saved, 0);
    ck_assert_int_eq(dup2(e->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restore stderr; returns what was written (malloc'd, NUL-terminated). */
static char *
s_stderr_release(s_stderr_t *e)
{
    fflush(stderr);
    ck_assert_int_eq(dup2(e->saved, STDERR_FILENO), STDERR_FILENO);
    close(e->saved);
    off_t len = lseek(e->fd, 0, SEEK_END);
    ck_assert_int_ge(len, 0);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(e->fd, buf, (size_t)len, 0), len);
    buf[len] = '\0';
    close(e->fd);
    unlink(e->path);
    return buf;
}

/* ------------------------------------------------------------------ */
/* A scribe actor: logs what it is asked to                            */
/* ------------------------------------------------------------------ */

static int
s_scribe_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (!tr_msg_is(msg, "log"))
        return TR_EUNHANDLED;
    tr_reader_t r;
    int64_t level;
    char text[128];
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &level);
    if (rc == 0)
        rc = tr_read_str_copy(&r, text, sizeof text);
    if (rc != 0)
        return rc;
    tr_log((int)level, "app", "%s", text);
    tr_msg_t *reply = NULL;
    if ((rc = tr_msg_create(&reply, "done")) == 0 &&
        (rc = tr_reply(self, msg, &reply)) != 0)
        tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(scribe, .handle = s_scribe_handle);

static void
s_ask_log(tr_node_t *node, tr_id_t id, int level, const char *text)
{
    tr_msg_t *m = ts_msg_i("log", level);
    ck_assert_int_eq(tr_msg_add_str(m, text), 0);
    ck_assert_int_eq(ts_ask_id(node, id, m, NULL), 0);
}

/* ------------------------------------------------------------------ */
/* Levels                                                              */
/* ------------------------------------------------------------------ */

START_TEST(default_level_is_warn_and_info_is_not_emitted)
{
    unsetenv("TROUPE_LOG"); /* before the first use */
    ck_assert_int_eq(tr_log_level(), TR_LOG_WARN);
    ts_log_capture();
    tr_log(TR_LOG_DEBUG, "test", "debug line");
    tr_log(TR_LOG_INFO, "test", "info line");
    ck_assert_int_eq(ts_log_lines(), 0);
    tr_log(TR_LOG_WARN, "test", "warn line");
    tr_log(TR_LOG_ERROR, "test", "error line");
    ck_assert_int_eq(ts_log_lines(), 2);
    ck_assert_int_ge(ts_log_find("warn line"), 0);
    ck_assert_int_eq(ts_log_level(ts_log_find("warn line")), TR_LOG_WARN);
    ck_assert_int_eq(ts_log_level(ts_log_find("error line")), TR_LOG_ERROR);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(set_level_changes_the_level_and_clamps_it)
{
    unsetenv("TROUPE_LOG");
    ts_log_capture();
    tr_log_set_level(TR_LOG_INFO);
    ck_assert_int_eq(tr_log_level(), TR_LOG_INFO);
    tr_log(TR_LOG_INFO, "test", "now shown");
    tr_log(TR_LOG_DEBUG, "test", "still hidden");
    ck_assert_int_eq(ts_log_lines(), 1);
    ck_assert_int_eq(ts_log_level(0), TR_LOG_INFO);

    tr_log_set_level(TR_LOG_NONE);
    tr_log(TR_LOG_ERROR, "test", "not even errors");
    ck_assert_int_eq(ts_log_lines(), 1);

    tr_log_set_level(99);
    ck_assert_int_eq(tr_log_level(), TR_LOG_DEBUG);
    tr_log(TR_LOG_DEBUG, "test", "debug shown");
    ck_assert_int_eq(ts_log_lines(), 2);
    /* Levels outside the table are never emitted (nor crash). */
    tr_log(TR_LOG_NONE, "test", "level none");
    tr_log(99, "test", "level 99");
    tr_log(-1, "test", "level -1");
    ck_assert_int_eq(ts_log_lines(), 2);

    tr_log_set_level(-3);
    ck_assert_int_eq(tr_log_level(), TR_LOG_NONE);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(node_log_level_option_sets_the_level)
{
    unsetenv("TROUPE_LOG");
    ts_log_capture();
    tr_node_t *node = ts_node(
        &(tr_node_opts_t){.name = "loud", .log_level = TR_LOG_INFO});
    ck_assert_int_eq(tr_log_level(), TR_LOG_INFO);
    ck_assert_int_ge(ts_log_find("node 'loud' up"), 0);
    ts_destroy(&node);
    ck_assert_int_ge(ts_log_find("node 'loud' down"), 0);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(troupe_log_overrides_set_level_and_node_options)
{
    ck_assert_int_eq(setenv("TROUPE_LOG", "DEBUG", 1), 0); /* any case */
    ts_log_capture();
    ck_assert_int_eq(tr_log_level(), TR_LOG_DEBUG);
    tr_log_set_level(TR_LOG_ERROR);
    ck_assert_int_eq(tr_log_level(), TR_LOG_DEBUG);
    tr_node_t *node = ts_node(&(tr_node_opts_t){.log_level = TR_LOG_ERROR});
    ck_assert_int_eq(tr_log_level(), TR_LOG_DEBUG);
    tr_log(TR_LOG_DEBUG, "test", "debug shown");
    ck_assert_int_ge(ts_log_find("debug shown"), 0);
    /* The runtime's own debug lines come through too ("started" is
     * logged by the actor's thread before it reads its first message, so
     * it is there once a request was answered). */
    tr_id_t id = 0;
    ck_assert_int_eq(tr_spawn(node, "scribe", NULL, &id), 0);
    s_ask_log(node, id, TR_LOG_DEBUG, "asked");
    ck_assert_int_ge(ts_log_find("asked"), 0);
    ck_assert_int_ge(ts_log_find("started (scribe)"), 0);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(troupe_log_accepts_warning_as_warn)
{
    ck_assert_int_eq(setenv("TROUPE_LOG", "warning", 1), 0);
    ck_assert_int_eq(tr_log_level(), TR_LOG_WARN);
    tr_log_set_level(TR_LOG_DEBUG); /* forced by the environment */
    ck_assert_int_eq(tr_log_level(), TR_LOG_WARN);
}
END_TEST

START_TEST(invalid_troupe_log_is_ignored_with_a_message)
{
    ck_assert_int_eq(setenv("TROUPE_LOG", "loud", 1), 0);
    s_stderr_t e;
    s_stderr_grab(&e);
    int level = tr_log_level(); /* the first use reads TROUPE_LOG */
    char *out = s_stderr_release(&e);
    ck_assert_int_eq(level, TR_LOG_WARN);
    ck_assert_msg(strstr(out, "TROUPE_LOG=loud") != NULL &&
                      strstr(out, "ignored") != NULL,
                  "no message about TROUPE_LOG=loud; stderr was: '%s'", out);
    free(out);
    /* Not forced: the level can still be set. */
    tr_log_set_level(TR_LOG_INFO);
    ck_assert_int_eq(tr_log_level(), TR_LOG_INFO);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lines                                                               */
/* ------------------------------------------------------------------ */

START_TEST(lines_name_the_module_and_the_actor)
{
    unsetenv("TROUPE_LOG");
    ts_log_capture();
    tr_node_t *node = ts_node(NULL);
    tr_id_t named = 0, anon = 0;
    ck_assert_int_eq(
        tr_spawn(node, "scribe", &(tr_spawn_opts_t){.name = "quill"}, &named),
        0);
    ck_assert_int_eq(tr_spawn(node, "scribe", NULL, &anon), 0);
    s_ask_log(node, named, TR_LOG_WARN, "hello 42");
    s_ask_log(node, anon, TR_LOG_ERROR, "from nobody");
    tr_log(TR_LOG_WARN, "main", "outside");
    tr_log(TR_LOG_WARN, NULL, "no module");

    char want[128];
    snprintf(want, sizeof want, " app quill#%llx: hello 42",
             (unsigned long long)named);
    int i = ts_log_find(want);
    ck_assert_msg(i >= 0, "no line with '%s'", want);
    ck_assert_int_eq(ts_log_level(i), TR_LOG_WARN);
    ck_assert_ptr_null(strchr(ts_log_line(i), '\n')); /* no newline */
    ck_assert(strncmp(ts_log_line(i), "troupe ", 7) == 0);
    /* An anonymous actor is named by its behaviour. */
    snprintf(want, sizeof want, " app scribe#%llx: from nobody",
             (unsigned long long)anon);
    ck_assert_msg(ts_log_find(want) >= 0, "no line with '%s'", want);
    /* Outside an actor: module only. */
    ck_assert_int_ge(ts_log_find(" main: outside"), 0);
    ck_assert_int_ge(ts_log_find(" -: no module"), 0);
    ts_destroy(&node);
    tr_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(each_sink_call_is_one_whole_line_even_when_too_long)
{
    unsetenv("TROUPE_LOG");
    ts_log_capture();
    char *big = malloc(5001);
    ck_assert_ptr_nonnull(big);
    memset(big, 'q', 5000);
    big[5000] = '\0';
    tr_log(TR_LOG_ERROR, "test", "%s", big);
    tr_log(TR_LOG_ERROR, "test", "two\nparts");
    free(big);
    ck_assert_int_eq(ts_log_lines(), 2);
    size_t len = strlen(ts_log_line(0));
    ck_assert_uint_gt(len, 900); /* cut, not dropped */
    ck_assert_uint_lt(len, 1024);
    ck_assert_ptr_null(strchr(ts_log_line(0), '\n'));
    tr_log_set_sink(NULL, NULL);
}
END_TEST

/* 8 threads log at once into a sink that notices any overlap and checks
 * every line is whole (its text intact, in order per thread). */
enum { S_THREADS = 8, S_PER_THREAD = 2000, S_PAD = 300 };

static struct {
    _Atomic int inside, overlaps, bad;
    long next[S_THREADS];
    long count;
} s_race;

static void
s_race_sink(void *arg, int level, const char *line)
{
    (void)arg, (void)level;
    if (atomic_fetch_add(&s_race.inside, 1) != 0)
        atomic_fetch_add(&s_race.overlaps, 1);
    /* "... test: t<k> n<seq> <pad of 'a'+k>" */
    const char *p = strstr(line, " test: t");
    int k = -1;
    long seq = -1;
    int used = 0;
    if (p == NULL || sscanf(p, " test: t%d n%ld %n", &k, &seq, &used) < 2 ||
        k < 0 || k >= S_THREADS || used == 0) {
        atomic_fetch_add(&s_race.bad, 1);
    } else {
        const char *pad = p + used;
        size_t n = strlen(pad);
        bool ok = n == S_PAD;
        for (size_t i = 0; ok && i < n; i++)
            ok = pad[i] == 'a' + k;
        /* Only this call touches next[] and count: we are alone here
         * (or overlaps counts it). */
        if (!ok || seq != s_race.next[k])
            atomic_fetch_add(&s_race.bad, 1);
        s_race.next[k] = seq + 1;
        s_race.count++;
    }
    atomic_fetch_sub(&s_race.inside, 1);
}

static void *
s_race_main(void *arg)
{
    int k = (int)(intptr_t)arg;
    char pad[S_PAD + 1];
    memset(pad, 'a' + k, S_PAD);
    pad[S_PAD] = '\0';
    for (long i = 0; i < S_PER_THREAD; i++)
        tr_log(TR_LOG_WARN, "test", "t%d n%ld %s", k, i, pad);
    return NULL;
}

/* Run S_THREADS loggers (s_race_main) at once, and join them. */
static void
s_race_run(void)
{
    pthread_t t[S_THREADS];
    for (int k = 0; k < S_THREADS; k++)
        ck_assert_int_eq(
            pthread_create(&t[k], NULL, s_race_main, (void *)(intptr_t)k), 0);
    for (int k = 0; k < S_THREADS; k++)
        ck_assert_int_eq(pthread_join(t[k], NULL), 0);
}

START_TEST(eight_threads_logging_at_once_never_interleave)
{
    unsetenv("TROUPE_LOG");
    tr_log_set_sink(s_race_sink, NULL);
    s_race_run();
    tr_log_set_sink(NULL, NULL);
    ck_assert_int_eq(atomic_load(&s_race.overlaps), 0);
    ck_assert_int_eq(atomic_load(&s_race.bad), 0);
    ck_assert_int_eq(s_race.count, (long)S_THREADS * S_PER_THREAD);
    for (int k = 0; k < S_THREADS; k++)
        ck_assert_int_eq(s_race.next[k], S_PER_THREAD);
}
END_TEST

START_TEST(default_sink_writes_whole_lines_to_stderr)
{
    unsetenv("TROUPE_LOG");
    ts_log_capture();
    tr_log(TR_LOG_WARN, "test", "to the sink");
    tr_log_set_sink(NULL, NULL); /* back to stderr */
    s_stderr_t e;
    s_stderr_grab(&e);
    s_race_run();
    char *out = s_stderr_release(&e);
    ck_assert_int_eq(ts_log_lines(), 1); /* the custom sink got nothing more */

    /* Every line: "troupe ... test: t<k> n<seq> <pad>" and a newline. */
    long lines = 0, next[S_THREADS] = {0};
    for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL;
         line = nl + 1) {
        *nl = '\0';
        ck_assert_msg(strncmp(line, "troupe ", 7) == 0, "line: %.80s", line);
        const char *p = strstr(line, " test: t");
        ck_assert_ptr_nonnull(p);
        int k = -1, used = 0;
        long seq = -1;
        ck_assert_int_eq(sscanf(p, " test: t%d n%ld %n", &k, &seq, &used), 2);
        ck_assert(k >= 0 && k < S_THREADS);
        ck_assert_int_eq(seq, next[k]);
        next[k]++;
        ck_assert_uint_eq(strlen(p + used), S_PAD);
        lines++;
    }
    ck_assert_int_eq(lines, (long)S_THREADS * S_PER_THREAD);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("levels");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, default_level_is_warn_and_info_is_not_emitted);
    tcase_add_test(tc, set_level_changes_the_level_and_clamps_it);
    tcase_add_test(tc, node_log_level_option_sets_the_level);
    tcase_add_test(tc, troupe_log_overrides_set_level_and_node_options);
    tcase_add_test(tc, troupe_log_accepts_warning_as_warn);
    tcase_add_test(tc, invalid_troupe_log_is_ignored_with_a_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("lines");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lines_name_the_module_and_the_actor);
    tcase_add_test(tc, each_sink_call_is_one_whole_line_even_when_too_long);
    tcase_add_test(tc, eight_threads_logging_at_once_never_interleave);
    tcase_add_test(tc, default_sink_writes_whole_lines_to_stderr);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
