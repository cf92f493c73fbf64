/* tests/test_examples.c - run each program of examples/ and check what it
 * prints, so that the examples (read first by newcomers) cannot rot.
 *
 * Each example is its own executable; tests/meson.build gives its path in
 * TR_EXAMPLE_<NAME>. A test spawns it with stdout on a pipe, waits for it
 * to exit (killing it after S_DEADLINE_S), and checks exit status 0 and the
 * key lines. This process never creates a ZeroMQ context: the runtime runs
 * only in the children.
 *
 * Examples with process actors start processes of their own: they share
 * the example's stdout, so its end of file comes once every one of them is
 * gone. A process left running after the example exited, or a runtime
 * directory left behind (runtime/rundir.c), fails the test. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

extern char **environ;

/* Every example finishes in well under 5 s; 30 s leaves room for a loaded
 * machine and sanitizers. Check's own timeout is only the backstop. */
#define S_DEADLINE_S 30
#define S_OUT_MAX 65536

typedef struct {
    int status;              /* from waitpid */
    size_t len;              /* bytes in out, after the leading '\n' */
    char out[S_OUT_MAX + 2]; /* "\n" + stdout + NUL: every line is \n-led */
} s_run_t;

/* Read what the child wrote so far; true at end of file. Past S_OUT_MAX
 * the rest is read and dropped, so that the child never blocks on us. */
static bool
s_drain(int fd, s_run_t *run)
{
    char scratch[4096];
    for (;;) {
        size_t room = S_OUT_MAX - run->len;
        char *dst = room > 0 ? run->out + 1 + run->len : scratch;
        size_t cap = room > 0 ? room : sizeof scratch;
        ssize_t n = read(fd, dst, cap);
        if (n > 0) {
            if (room > 0)
                run->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return true;
        if (errno == EINTR)
            continue;
        ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
        return false;
    }
}

/* A node keeps its ipc endpoints in <base>/<pid>-<start> (runtime/rundir.c)
 * and removes it when destroyed: the example's must be gone. */
static void
s_assert_no_rundir(const char *name, pid_t pid)
{
    char base[512], prefix[32];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg != NULL && *xdg == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        access(xdg, W_OK) == 0)
        snprintf(base, sizeof base, "%s/troupe", xdg);
    else
        snprintf(base, sizeof base, "/tmp/troupe-%u", (unsigned)geteuid());
    snprintf(prefix, sizeof prefix, "%ld-", (long)pid);
    DIR *d = opendir(base);
    if (d == NULL)
        return; /* no node of this user ever made one */
    struct dirent *e;
    bool left = false;
    while ((e = readdir(d)) != NULL)
        left |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    ck_assert_msg(!left, "%s left its runtime directory %s/%s*", name, base,
                  prefix);
}

/* Run examples/<name> with one optional argument; fills *run. */
static void
s_run(const char *name, const char *arg, s_run_t *run)
{
    char var[64];
    snprintf(var, sizeof var, "TR_EXAMPLE_%s", name);
    for (char *p = var; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    const char *path = getenv(var);
    ck_assert_msg(path != NULL, "%s is not set: run via meson test", var);

    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    /* dup2 clears close-on-exec on the child's stdout only. */
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, fds[1], 1), 0);
    char *argv[] = {(char *)path, (char *)arg, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    ck_assert_msg(rc == 0, "spawn %s: %s", path, strerror(rc));
    ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);

    /* Wait on the child's output and on its pidfd (readable when it
     * exits) together, up to the deadline: no polling. */
    memset(run, 0, sizeof *run);
    run->out[0] = '\n';
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    ck_assert_msg(pidfd >= 0, "pidfd_open: %s", strerror(errno));
    int64_t deadline = ts_now_ms() + S_DEADLINE_S * 1000;
    bool eof = false;
    for (;;) {
        int64_t left = deadline - ts_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &run->status, 0);
            close(fds[0]);
            close(pidfd);
            run->out[1 + run->len] = '\0';
            ck_abort_msg("%s did not exit in %d s; output so far:%s", name,
                         S_DEADLINE_S, run->out);
        }
        struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN},
                              {.fd = eof ? -1 : fds[0], .events = POLLIN}};
        int n = poll(p, 2, (int)left);
        ck_assert_msg(n >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        if (n > 0 && p[1].revents)
            eof = s_drain(fds[0], run);
        if (n > 0 && p[0].revents)
            break;
    }
    close(pidfd);
    ck_assert_int_eq(waitpid(pid, &run->status, 0), pid);
    /* The example is gone; its process actors share the write end, so the
     * end of file says they are all gone too. Wait for it, not forever. */
    while (!eof) {
        int64_t left = deadline - ts_now_ms();
        run->out[1 + run->len] = '\0';
        ck_assert_msg(left > 0, "%s exited but a process it started still "
                      "holds its stdout; output:%s", name, run->out);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        ck_assert_msg(n >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        if (n > 0)
            eof = s_drain(fds[0], run);
    }
    close(fds[0]);
    run->out[1 + run->len] = '\0';
    ck_assert_msg(WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0,
                  "%s: exit status 0x%x; output:%s", name, run->status,
                  run->out);
    s_assert_no_rundir(name, pid);
}

/* True when the output holds this whole line. */
static bool
s_has_line(const s_run_t *run, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = run->out; (p = strstr(p, line)) != NULL; p++)
        if (p[-1] == '\n' && p[n] == '\n')
            return true;
    return false;
}

/* How many lines start with prefix. */
static int
s_count_lines(const s_run_t *run, const char *prefix)
{
    int count = 0;
    for (const char *p = run->out; (p = strchr(p, '\n')) != NULL; p++)
        count += strncmp(p + 1, prefix, strlen(prefix)) == 0;
    return count;
}

/* True when line is the last line (the one a reader looks at). */
static bool
s_last_line_is(const s_run_t *run, const char *line)
{
    size_t n = strlen(line);
    if (run->len <= n)
        return false;
    /* stdout is out[1..len] and ends with '\n'; out[0] is a '\n' too. */
    const char *start = run->out + run->len - n;
    return start[-1] == '\n' && strncmp(start, line, n) == 0 &&
           strcmp(start + n, "\n") == 0;
}

#define S_ASSERT_LINE(run, line)                                            \
    ck_assert_msg(s_has_line(run, line), "no line '%s' in:%s", line,        \
                  (run)->out)
#define S_ASSERT_LAST(run, line)                                            \
    ck_assert_msg(s_last_line_is(run, line), "last line is not '%s' in:%s", \
                  line, (run)->out)

static s_run_t s_out; /* large: static rather than on the stack */

START_TEST(hello_pinger_and_ponger_play_n_rounds)
{
    s_run("hello", "3", &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "ponger: got ping "), 3);
    S_ASSERT_LINE(&s_out, "pinger: got pong 3, all 3 rounds done, exiting");
    ck_assert_ptr_nonnull(strstr(s_out.out, "exit reason 0 (success)"));
    S_ASSERT_LINE(&s_out, "ponger: stopping: actor was stopped");
    S_ASSERT_LAST(&s_out, "hello: 3 round trips, done");
}
END_TEST

START_TEST(counter_total_is_exact)
{
    s_run("counter", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "worker "), 8);
    S_ASSERT_LINE(&s_out, "main: all 8 workers joined");
    S_ASSERT_LAST(&s_out, "total = 800000 (expected 800000)");
}
END_TEST

START_TEST(producer_consumer_loses_nothing_under_back_pressure)
{
    s_run("producer_consumer", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "consumer: consumed 100 items, in order: yes");
    S_ASSERT_LINE(&s_out, "checksum 5050, expected 5050: match");
    S_ASSERT_LAST(&s_out, "produced 100, consumed 100, lost 0, "
                          "held back yes");
}
END_TEST

START_TEST(event_set_starts_every_waiter)
{
    s_run("event", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "waiter "), 10);
    S_ASSERT_LINE(&s_out, "starter: set, starting 4 waiters");
    S_ASSERT_LINE(&s_out, "main: 4 of 4 waiters started");
    S_ASSERT_LAST(&s_out, "main: a late waiter started at once "
                          "(the event stays set)");
}
END_TEST

START_TEST(futures_late_reply_is_dropped_and_counted)
{
    s_run("futures", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "main: answer 'done' 20");
    S_ASSERT_LINE(&s_out, "main: no answer: timed out");
    S_ASSERT_LINE(&s_out, "main: answer 'done' 350");
    S_ASSERT_LINE(&s_out, "main: late_replies = 1 "
                          "(the one that came after 100 ms)");
    S_ASSERT_LAST(&s_out, "futures: ok");
}
END_TEST

START_TEST(process_hello_worker_runs_in_its_own_process)
{
    s_run("process_hello", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "worker 1: started as actor "), 1);
    ck_assert_int_eq(s_count_lines(&s_out, "main: worker 1 says hello from "
                                           "pid "), 1);
    S_ASSERT_LINE(&s_out, "main: worker joined, exit reason 0 (success)");
    S_ASSERT_LAST(&s_out, "process_hello: the worker ran in another "
                          "process: yes");
}
END_TEST

START_TEST(pipe_same_exchange_as_threads_and_as_processes)
{
    s_run("pipe", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "receiver (pid "), 2);
    ck_assert_int_eq(s_count_lines(&s_out, "sender (pid "), 4);
    ck_assert_int_eq(s_count_lines(&s_out, "main: sender joined (success), "
                                           "receiver stopped"), 2);
    S_ASSERT_LINE(&s_out, "pipe: as threads: one text there, one ack back: "
                          "yes");
    S_ASSERT_LAST(&s_out, "pipe: as processes: one text there, one ack "
                          "back: yes");
}
END_TEST

START_TEST(queue_between_processes_loses_nothing)
{
    s_run("queue", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "producer "), 2);
    S_ASSERT_LINE(&s_out, "consumer: 2000 items, each producer's in order: "
                          "yes");
    S_ASSERT_LAST(&s_out, "produced 2000, consumed 2000, lost 0");
}
END_TEST

START_TEST(shared_value_owned_by_an_actor_is_exact)
{
    s_run("shared_value", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "adder "), 4);
    S_ASSERT_LINE(&s_out, "main: all 4 adders joined");
    S_ASSERT_LAST(&s_out, "value = 10000 (expected 10000)");
}
END_TEST

START_TEST(crash_restart_loses_one_request_and_a_new_pid_answers)
{
    s_run("crash_restart", NULL, &s_out);
    ck_assert_int_eq(s_count_lines(&s_out, "main: square "), 5);
    S_ASSERT_LINE(&s_out, "main: poison 4 failed: actor died before "
                          "replying (the worker ended: process actor "
                          "crashed)");
    S_ASSERT_LINE(&s_out, "main: child 'worker' was restarted 1 time(s)");
    S_ASSERT_LAST(&s_out, "crash_restart: 1 of 6 requests failed, the pid "
                          "changed: yes");
}
END_TEST

START_TEST(tree_restarts_the_pair_together_and_the_logger_alone)
{
    s_run("tree", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "  writer: down: actor failed");
    S_ASSERT_LINE(&s_out, "  reader: down: actor was stopped");
    S_ASSERT_LINE(&s_out, "main: writer crash restarted: reader writer");
    S_ASSERT_LINE(&s_out, "  logger: down: actor failed");
    S_ASSERT_LINE(&s_out, "main: logger crash restarted: logger");
    S_ASSERT_LINE(&s_out, "top's child logger: restarted 1 time(s)");
    S_ASSERT_LINE(&s_out, "top's child pair: restarted 0 time(s)");
    S_ASSERT_LAST(&s_out, "tree: writer crash restarted reader and writer, "
                          "logger crash only logger: yes");
}
END_TEST

START_TEST(process_pool_counts_primes_alike_on_one_and_two_workers)
{
    s_run("process_pool", "300000", &s_out);
    /* pi(300000) = 25997; s_run checked exit status 0: both runs (one
     * worker, two) agreed. */
    ck_assert_ptr_nonnull(strstr(s_out.out, "\nprimes below 300000: 25997 ("));
}
END_TEST

START_TEST(thread_pool_waits_side_by_side_and_as_completed)
{
    s_run("thread_pool", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "main: fetch 1 done (50 ms)");
    S_ASSERT_LINE(&s_out, "main: fetch 3 done (100 ms)");
    S_ASSERT_LINE(&s_out, "main: fetch 4 done (150 ms)");
    S_ASSERT_LINE(&s_out, "main: fetch 2 done (200 ms)");
    S_ASSERT_LINE(&s_out, "main: fetch 0 done (250 ms)");
    /* The order they complete in is timing: not asserted. */
    ck_assert_int_eq(s_count_lines(&s_out, "main: 5 of 5 fetches, shortest "
                                           "first: "), 1);
    /* Side by side, not one after another (1000 ms): a generous bound. */
    const char *took = strstr(s_out.out, "\nmain: 5 fetches of 200 ms on 5 "
                                         "workers took ");
    ck_assert_msg(took != NULL, "no elapsed time in:%s", s_out.out);
    long ms = strtol(took + strlen("\nmain: 5 fetches of 200 ms on 5 "
                                   "workers took "), NULL, 10);
    ck_assert_msg(ms >= 190 && ms < 1000, "5 x 200 ms took %ld ms", ms);
    S_ASSERT_LAST(&s_out, "thread_pool: 10 of 10 tasks answered");
}
END_TEST

START_TEST(apply_async_callbacks_collect_the_total)
{
    s_run("apply_async", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "main: 20 tasks submitted, waiting");
    ck_assert_int_eq(s_count_lines(&s_out, "collect: cube("), 20);
    S_ASSERT_LINE(&s_out, "collect: cube(20) = 8000");
    S_ASSERT_LINE(&s_out, "main: 20 results, 0 errors");
    S_ASSERT_LAST(&s_out, "total = 44100 (expected 44100)");
}
END_TEST

START_TEST(chunked_data_matches_the_serial_result)
{
    s_run("chunked_data", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "1000000 ints in 100 chunks of 10000 on 4 worker "
                          "processes");
    S_ASSERT_LINE(&s_out, "serial: sum of squares 333332833333500000");
    S_ASSERT_LINE(&s_out, "pool:   sum of squares 333332833333500000");
    S_ASSERT_LAST(&s_out, "match: yes");
}
END_TEST

START_TEST(pubsub_slow_subscriber_drops_and_the_counts_add_up)
{
    s_run("pubsub", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "fast: received 2000, delivered 2000, dropped 0");
    const char *slow = strstr(s_out.out, "\nslow: received ");
    unsigned long got = 0, delivered = 0, dropped = 0;
    ck_assert_msg(slow != NULL &&
                      sscanf(slow, "\nslow: received %lu, delivered %lu, "
                             "dropped %lu", &got, &delivered, &dropped) == 3,
                  "no slow line in:%s", s_out.out);
    ck_assert_uint_gt(dropped, 0); /* 1 ms a tick: it fell behind */
    ck_assert_uint_eq(got, delivered);
    ck_assert_uint_eq(delivered + dropped, 2000);
    S_ASSERT_LAST(&s_out, "published = delivered + dropped = received + "
                          "dropped: yes");
}
END_TEST

START_TEST(wordcount_pipeline_matches_the_serial_count)
{
    s_run("wordcount", NULL, &s_out);
    S_ASSERT_LINE(&s_out, "6 files, 19235 words, 19 distinct");
    S_ASSERT_LAST(&s_out, "counts match the serial count: yes");
}
END_TEST

START_TEST(wordcount_with_a_killed_worker_gives_the_same_counts)
{
    s_run("wordcount", "--kill", &s_out);
    S_ASSERT_LINE(&s_out, "6 files, 19236 words, 20 distinct");
    /* How many batches it held depends on timing; that it died does not. */
    ck_assert_ptr_nonnull(strstr(s_out.out, "\na tokenize worker was killed "
                                            "and replaced: 1 worker death(s), "));
    S_ASSERT_LAST(&s_out, "counts match the serial count: yes");
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, S_DEADLINE_S + 10); /* backstop only */
    tcase_add_test(tc, hello_pinger_and_ponger_play_n_rounds);
    tcase_add_test(tc, counter_total_is_exact);
    tcase_add_test(tc, producer_consumer_loses_nothing_under_back_pressure);
    tcase_add_test(tc, event_set_starts_every_waiter);
    tcase_add_test(tc, futures_late_reply_is_dropped_and_counted);
    tcase_add_test(tc, process_hello_worker_runs_in_its_own_process);
    tcase_add_test(tc, pipe_same_exchange_as_threads_and_as_processes);
    tcase_add_test(tc, queue_between_processes_loses_nothing);
    tcase_add_test(tc, shared_value_owned_by_an_actor_is_exact);
    tcase_add_test(tc, crash_restart_loses_one_request_and_a_new_pid_answers);
    tcase_add_test(tc, tree_restarts_the_pair_together_and_the_logger_alone);
    tcase_add_test(tc, process_pool_counts_primes_alike_on_one_and_two_workers);
    tcase_add_test(tc, thread_pool_waits_side_by_side_and_as_completed);
    tcase_add_test(tc, apply_async_callbacks_collect_the_total);
    tcase_add_test(tc, chunked_data_matches_the_serial_result);
    tcase_add_test(tc, pubsub_slow_subscriber_drops_and_the_counts_add_up);
    tcase_add_test(tc, wordcount_pipeline_matches_the_serial_count);
    tcase_add_test(tc, wordcount_with_a_killed_worker_gives_the_same_counts);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
