/* tests/test_webservice.c - the webservice example, run as users run it,
 * checked with curl: the users endpoint answers in the order asked within
 * its deadline, /primes and /health answer, bad input gets 400, and a
 * primes worker killed during a burst of requests costs at most the
 * request it was running; the service goes on and the worker comes back.
 *
 * The example's path comes in TR_EXAMPLE_WEBSERVICE (tests/meson.build).
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

static pid_t s_pid;
static int s_port;
static FILE *s_out;

/* Start the example on a free port (for up to 60 s), with chaos (NULL:
 * none) in its environment; read its port. */
static void
s_start(const char *chaos)
{
    const char *exe = getenv("TR_EXAMPLE_WEBSERVICE");
    ck_assert_ptr_nonnull(exe);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    s_pid = fork();
    ck_assert_int_ge(s_pid, 0);
    if (s_pid == 0) {
        if (chaos != NULL)
            setenv("TROUPE_CHAOS", chaos, 1);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "0", "60", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s_out = fdopen(fds[0], "r");
    char line[256] = {0};
    ck_assert_ptr_nonnull(fgets(line, sizeof line, s_out));
    const char *p = strstr(line, "127.0.0.1:");
    ck_assert_ptr_nonnull(p);
    s_port = atoi(p + 10);
    ck_assert_int_gt(s_port, 0);
}

static void
s_setup(void)
{
    s_start(NULL);
}

/* Stop it as Ctrl-C would: it must say "stopped" and exit 0. */
static void
s_teardown(void)
{
    ck_assert_int_eq(kill(s_pid, SIGINT), 0);
    char line[256] = {0};
    ck_assert_ptr_nonnull(fgets(line, sizeof line, s_out));
    ck_assert_str_eq(line, "webservice: stopped\n");
    int st = 0;
    ck_assert_int_eq(waitpid(s_pid, &st, 0), s_pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    fclose(s_out);
}

/* Run curl with args (after the URL base is filled in); its output. */
static char *
s_curl(const char *fmt, ...)
{
    static char out[16384];
    char args[4096], cmd[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "curl -s -S --max-time 20 %s", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    ck_assert_int_eq(pclose(p), 0);
    return out;
}

START_TEST(users_come_back_in_the_order_asked_and_bad_input_is_400)
{
    char *o = s_curl("'http://127.0.0.1:%d/api/v1/users?user_ids=3,1,99,x,2' "
                     "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o,
        "[{\"id\":3,\"name\":\"Grace Hopper\",\"email\":\"grace@example.org\"},"
        "{\"id\":1,\"name\":\"Ada Lovelace\",\"email\":\"ada@example.org\"},"
        "{\"error\":\"no such user\"},{\"error\":\"not an id\"},"
        "{\"id\":2,\"name\":\"Alan Turing\",\"email\":\"alan@example.org\"}]"
        " 200");
    /* ten lookups of 20 ms each run side by side: well under 200 ms */
    int64_t t0 = ts_now_ms();
    o = s_curl("'http://127.0.0.1:%d/api/v1/users?user_ids=1,2,3,4,5,6,7,8,"
               "9,10' -w ' %%{http_code}'", s_port);
    ck_assert_int_lt(ts_now_ms() - t0, 2000);
    ck_assert_ptr_nonnull(strstr(o, "\"id\":10"));
    ck_assert_ptr_nonnull(strstr(o, "] 200"));
    o = s_curl("'http://127.0.0.1:%d/api/v1/users' -w ' %%{http_code}'",
               s_port);
    ck_assert_ptr_nonnull(strstr(o, " 400"));
    o = s_curl("'http://127.0.0.1:%d/health' -w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"status\":\"ok\"} 200");
    o = s_curl("'http://127.0.0.1:%d/primes?below=100000' "
               "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"below\":100000,\"count\":9592} 200");
    o = s_curl("'http://127.0.0.1:%d/primes?below=-5' -w ' %%{http_code}'",
               s_port);
    ck_assert_ptr_nonnull(strstr(o, " 400"));
    o = s_curl("'http://127.0.0.1:%d/nothing' -w ' %%{http_code}'", s_port);
    ck_assert_ptr_nonnull(strstr(o, " 404"));
}
END_TEST

/* The example's worker processes (its children), up to max. */
static int
s_workers(pid_t *pids, int max)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "pgrep -P %d", (int)s_pid);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    while (n < max && fscanf(p, "%d", &pids[n]) == 1)
        n++;
    pclose(p);
    return n;
}

/* CPU ticks a process has used (utime + stime), or -1 once gone. */
static long
s_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                                   "%*u %ld %ld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

START_TEST(a_worker_killed_in_a_burst_costs_at_most_its_own_request)
{
    pid_t w[4];
    ck_assert_int_eq(s_workers(w, 4), 2);
    long before = s_ticks(w[0]);
    /* 24 requests at once, each counting primes for a few tens of ms */
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd,
                       "curl -s --max-time 30 --parallel --parallel-max 24 "
                       "-w '%%{http_code}\\n' -o /dev/null");
    for (int i = 0; i < 24; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len,
                        " -o /dev/null 'http://127.0.0.1:%d/primes?below=%d'",
                        s_port, 300000 + i);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    /* kill the first worker once it is at work */
    int64_t end = ts_now_ms() + TS_CALL_MS;
    while (s_ticks(w[0]) <= before && ts_now_ms() < end)
        ;
    ck_assert_int_gt(s_ticks(w[0]), before);
    ck_assert_int_eq(kill(w[0], SIGKILL), 0);
    int ok = 0, failed = 0, other = 0, code;
    while (fscanf(p, "%d", &code) == 1) {
        if (code == 200)
            ok++;
        else if (code == 500)
            failed++;
        else
            other++;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok + failed, 24);
    ck_assert_int_le(failed, 1); /* only what that worker ran alone */
    /* the worker is back, and the service works */
    pid_t now[4];
    end = ts_now_ms() + TS_CALL_MS;
    int n;
    while ((n = s_workers(now, 4)) != 2 && ts_now_ms() < end)
        ;
    ck_assert_int_eq(n, 2);
    ck_assert(now[0] != w[0] && now[1] != w[0]);
    char *o = s_curl("'http://127.0.0.1:%d/primes?below=1000' "
                     "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"below\":1000,\"count\":168} 200");
}
END_TEST

/* Chaos mode on the service: its primes workers are SIGKILLed and
 * SIGSTOPped on a seeded schedule during 60 requests; each request gets
 * an answer (200, or 500 for one whose worker died under it), none hangs,
 * and the service still answers after. */
START_TEST(under_chaos_every_request_gets_an_answer)
{
    s_start("seed=5,every=40,kill=0.5,stop=0.3,stop_ms=100");
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd,
                       "curl -s --max-time 30 --parallel --parallel-max 12 "
                       "-w '%%{http_code}\\n' -o /dev/null");
    for (int i = 0; i < 60; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len,
                        " -o /dev/null 'http://127.0.0.1:%d/primes?below=%d'",
                        s_port, 200000 + i);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int ok = 0, failed = 0, other = 0, code;
    while (fscanf(p, "%d", &code) == 1) {
        if (code == 200)
            ok++;
        else if (code == 500)
            failed++;
        else
            other++;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok + failed, 60);
    /* How many fail depends on how long a request runs against the kill
     * schedule: on a loaded machine (the suite in parallel with others)
     * most tries are killed (48 of 60 with two busy loops on two CPUs).
     * What must hold: all answered, some in full, and the service after. */
    ck_assert_int_ge(ok, 1);
    fprintf(stderr, "webservice under chaos: %d ok, %d failed (500)\n", ok,
            failed);
    char *o = s_curl("'http://127.0.0.1:%d/health' -w ' %%{http_code}'",
                     s_port);
    ck_assert_str_eq(o, "{\"status\":\"ok\"} 200");
    s_teardown();
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("webservice");
    TCase *tc = tcase_create("webservice");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, users_come_back_in_the_order_asked_and_bad_input_is_400);
    tcase_add_test(tc, a_worker_killed_in_a_burst_costs_at_most_its_own_request);
    suite_add_tcase(s, tc);
    tc = tcase_create("chaos");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, under_chaos_every_request_gets_an_answer);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
